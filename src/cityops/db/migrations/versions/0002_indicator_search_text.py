"""indicator search text, folded for search without diacritics

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 18:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from cityops.i18n import fold

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("indicators") as batch:
        batch.add_column(sa.Column("search_text", sa.Text(), nullable=False, server_default=sa.text("''")))
    connection = op.get_bind()
    rows = connection.execute(sa.text("SELECT id, code, name_vi, name_en FROM indicators")).all()
    for row in rows:
        connection.execute(
            sa.text("UPDATE indicators SET search_text = :text WHERE id = :id"),
            {"text": fold(f"{row.code} {row.name_vi} {row.name_en}"), "id": row.id},
        )


def downgrade() -> None:
    with op.batch_alter_table("indicators") as batch:
        batch.drop_column("search_text")
