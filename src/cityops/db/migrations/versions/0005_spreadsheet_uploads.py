"""spreadsheet uploads: each file sent to a spreadsheet feed, its items and per-row errors, preview → committed

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 21:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import cityops.db.base

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.JSON:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "spreadsheet_uploads",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("feed_id", sa.Integer(), nullable=False),
        sa.Column("uploaded_by", sa.String(length=128), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("api_key_id", sa.Integer(), nullable=True),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("format", sa.String(length=8), nullable=False),
        sa.Column("sheet", sa.String(length=100), nullable=False),
        sa.Column("layout", sa.String(length=8), nullable=False),
        sa.Column("rows_read", sa.Integer(), nullable=False),
        sa.Column("item_count", sa.Integer(), nullable=False),
        sa.Column("error_count", sa.Integer(), nullable=False),
        sa.Column("reading", _json(), nullable=False),
        sa.Column("items", _json(), nullable=False),
        sa.Column("errors", _json(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", cityops.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("committed_at", cityops.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("discarded_at", cityops.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("batch_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("run_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("result", _json(), nullable=False),
        sa.ForeignKeyConstraint(
            ["feed_id"], ["feeds.id"], name=op.f("fk_spreadsheet_uploads_feed_id_feeds"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_spreadsheet_uploads_user_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["api_key_id"],
            ["api_keys.id"],
            name=op.f("fk_spreadsheet_uploads_api_key_id_api_keys"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_spreadsheet_uploads")),
    )
    with op.batch_alter_table("spreadsheet_uploads", schema=None) as batch_op:
        batch_op.create_index("ix_spreadsheet_uploads_feed_created", ["feed_id", "created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("spreadsheet_uploads", schema=None) as batch_op:
        batch_op.drop_index("ix_spreadsheet_uploads_feed_created")
    op.drop_table("spreadsheet_uploads")
