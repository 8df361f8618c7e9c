"""Template content digests (a push of an unchanged spec makes no new version) and an owner index.

Revision ID: 0002
Revises: 0001
"""

import hashlib
import json

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def _digest(spec: object) -> str:
    # Frozen copy of parallels.spec.spec_digest as of this revision: migrations must not change
    # when application code does.
    canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def upgrade() -> None:
    with op.batch_alter_table("templates") as batch:
        batch.add_column(sa.Column("digest", sa.String(64), nullable=True))
    templates = sa.table(
        "templates", sa.column("id", sa.Integer), sa.column("spec", sa.JSON), sa.column("digest")
    )
    conn = op.get_bind()
    for row in conn.execute(sa.select(templates.c.id, templates.c.spec)).all():
        conn.execute(
            templates.update().where(templates.c.id == row.id).values(digest=_digest(row.spec))
        )
    with op.batch_alter_table("templates") as batch:
        batch.alter_column("digest", existing_type=sa.String(64), nullable=False)
    op.create_index("ix_templates_owner", "templates", ["owner"])


def downgrade() -> None:
    op.drop_index("ix_templates_owner", "templates")
    with op.batch_alter_table("templates") as batch:
        batch.drop_column("digest")
