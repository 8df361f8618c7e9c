"""The template store: immutable, versioned DAG templates in any SQLAlchemy database.

Every save of a name makes version n+1; a run records the exact version it used. The schema is
managed by Alembic migrations (api/migrations), applied on start, so an upgrade never loses data.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from pydantic import BaseModel, Field
from sqlalchemy.exc import IntegrityError, OperationalError

from parallels.errors import ParallelsError
from parallels.spec import spec_digest

metadata = sa.MetaData()
templates = sa.Table(
    "templates",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(128), nullable=False, index=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("spec", sa.JSON, nullable=False),
    sa.Column("owner", sa.String(255), nullable=True, index=True),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("name", "version", name="uq_templates_name_version"),
)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class NotFound(ParallelsError):
    pass


class Conflict(ParallelsError):
    pass


class StoreUnavailable(ParallelsError):
    retryable = True


class Template(BaseModel):
    name: str
    version: int
    spec: dict[str, Any]
    owner: str | None
    created_at: datetime
    digest: str = Field(description="content hash of the spec (key order does not matter)")


def migrate(engine: sa.Engine, revision: str = "head") -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def _row(r: sa.Row[Any]) -> Template:
    created = r.created_at if r.created_at.tzinfo else r.created_at.replace(tzinfo=UTC)
    return Template(
        name=r.name,
        version=r.version,
        spec=r.spec,
        owner=r.owner,
        created_at=created,
        digest=r.digest,
    )


class TemplateStore:
    def __init__(self, url: str) -> None:
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.engine = sa.create_engine(url, pool_pre_ping=True)
        try:
            migrate(self.engine)
        except OperationalError as e:
            raise StoreUnavailable(f"template store unreachable: {e.orig}") from e

    def create(self, name: str, spec: dict[str, Any], owner: str | None) -> Template:
        if self._latest_version(name) is not None:
            raise Conflict(f"template '{name}' already exists: update it to add a version")
        return self._insert(name, 1, spec, owner)

    def update(
        self, name: str, spec: dict[str, Any], owner: str | None, *, viewer: str | None = None
    ) -> Template:
        self._check_visible(name, viewer)
        latest = self._latest_version(name)
        if latest is None:
            raise NotFound(f"template '{name}' not found")
        return self._insert(name, latest + 1, spec, owner)

    def get(self, name: str, version: int | None = None, *, viewer: str | None = None) -> Template:
        self._check_visible(name, viewer)
        q = sa.select(templates).where(templates.c.name == name)
        q = (
            q.where(templates.c.version == version)
            if version is not None
            else q.order_by(templates.c.version.desc()).limit(1)
        )
        with self.engine.connect() as conn:
            row = conn.execute(q).first()
        if row is None:
            what = f"version {version} of template '{name}'" if version else f"template '{name}'"
            raise NotFound(f"{what} not found")
        return _row(row)

    def versions(self, name: str, *, viewer: str | None = None) -> list[Template]:
        self._check_visible(name, viewer)
        q = sa.select(templates).where(templates.c.name == name).order_by(templates.c.version)
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
        if not rows:
            raise NotFound(f"template '{name}' not found")
        return [_row(r) for r in rows]

    def list(
        self, offset: int = 0, limit: int = 50, *, viewer: str | None = None
    ) -> tuple[list[Template], int]:
        """The latest version of each template (of `viewer`'s, when given), by name."""
        names = sa.select(templates.c.name, sa.func.max(templates.c.version).label("v"))
        if viewer is not None:
            names = names.where(templates.c.name.in_(_owned_by(viewer)))
        latest = names.group_by(templates.c.name).subquery()
        q = (
            sa.select(templates)
            .join(latest, (templates.c.name == latest.c.name) & (templates.c.version == latest.c.v))
            .order_by(templates.c.name)
            .offset(offset)
            .limit(limit)
        )
        count = sa.select(sa.func.count()).select_from(latest)
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
            total = int(conn.execute(count).scalar_one())
        return [_row(r) for r in rows], total

    def delete(self, name: str, *, viewer: str | None = None) -> int:
        self._check_visible(name, viewer)
        with self.engine.begin() as conn:
            n = conn.execute(sa.delete(templates).where(templates.c.name == name)).rowcount
        if not n:
            raise NotFound(f"template '{name}' not found")
        return int(n)

    def _check_visible(self, name: str, viewer: str | None) -> None:
        """A template belongs to whoever saved its version 1; others (not admins, whose viewer is
        None) are told it does not exist, so names of other users' templates do not leak."""
        if viewer is None:
            return
        q = sa.select(sa.literal(1)).where(templates.c.name.in_(_owned_by(viewer)),
                                           templates.c.name == name)  # fmt: skip
        with self.engine.connect() as conn:
            if conn.execute(q).first() is None:
                raise NotFound(f"template '{name}' not found")

    def _latest_version(self, name: str) -> int | None:
        q = sa.select(sa.func.max(templates.c.version)).where(templates.c.name == name)
        with self.engine.connect() as conn:
            v = conn.execute(q).scalar()
        return int(v) if v is not None else None

    def _insert(self, name: str, version: int, spec: dict[str, Any], owner: str | None) -> Template:
        now = datetime.now(UTC)
        digest = spec_digest(spec)
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    templates.insert().values(
                        name=name,
                        version=version,
                        spec=spec,
                        owner=owner,
                        created_at=now,
                        digest=digest,
                    )
                )
        except IntegrityError as e:
            # Two saves raced for the same version: the loser asks the client to retry.
            raise Conflict(f"template '{name}' version {version} was saved concurrently") from e
        return Template(
            name=name, version=version, spec=spec, owner=owner, created_at=now, digest=digest
        )


def _owned_by(user: str) -> sa.Select[tuple[str]]:
    return sa.select(templates.c.name).where(templates.c.version == 1, templates.c.owner == user)
