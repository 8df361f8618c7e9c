"""Template store schema migrations: data saved under an older schema survives an upgrade."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from api.store import TemplateStore, metadata, migrate
from parallels.spec import spec_digest


def test_upgrade_from_0001_keeps_every_template_and_backfills_digests(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    migrate(engine, "0001")
    rows = [
        ("a", 1, {"name": "a", "nodes": [{"id": "x", "project": {"uri": "r"}}]}, "alice"),
        ("a", 2, {"nodes": [{"project": {"uri": "r"}, "id": "y"}], "name": "a"}, "bob"),
        ("b", 1, {"name": "b", "nodes": [{"id": "z", "project": {"uri": "é"}}]}, None),
    ]
    with engine.begin() as conn:
        for name, version, spec, owner in rows:
            conn.execute(
                sa.text(
                    "INSERT INTO templates (name, version, spec, owner, created_at) "
                    "VALUES (:n, :v, json(:s), :o, :t)"
                ),
                {"n": name, "v": version, "s": sa.JSON().bind_processor(engine.dialect)(spec),
                 "o": owner, "t": datetime(2026, 1, 1, tzinfo=UTC)},
            )  # fmt: skip
    engine.dispose()

    store = TemplateStore(url)  # upgrades to head on open
    for name, version, spec, owner in rows:
        t = store.get(name, version)
        assert (t.spec, t.owner) == (spec, owner)
        assert t.digest == spec_digest(spec)
    assert [t.version for t in store.versions("a")] == [1, 2]
    assert store.get("a").version == 2
    # Key order does not change a digest: the same content is recognised after the upgrade.
    assert store.get("a", 1).digest == spec_digest(dict(reversed(rows[0][2].items())))
    assert store.update("a", rows[1][2], "carol").version == 3

    with store.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diffs == [], f"store.py tables differ from the migrations: {diffs}"


def test_fresh_store_is_at_the_latest_revision(tmp_path):
    store = TemplateStore(f"sqlite:///{tmp_path / 'new.db'}")
    with store.engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == "0002"
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
