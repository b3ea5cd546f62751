"""places registry: tourist sites, hospitals, schools, markets … with coordinates and commune

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 20:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import cityops.db.base

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "places",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("name_vi", sa.String(length=255), nullable=False),
        sa.Column("name_en", sa.String(length=255), nullable=False),
        sa.Column("latitude", sa.Float(), nullable=False),
        sa.Column("longitude", sa.Float(), nullable=False),
        sa.Column("commune_id", sa.Integer(), nullable=True),
        sa.Column("address", sa.String(length=500), nullable=False),
        sa.Column("owner_agency_id", sa.Integer(), nullable=True),
        sa.Column(
            "attributes", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("source", sa.String(length=255), nullable=False),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.Column("created_at", cityops.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", cityops.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["commune_id"], ["subjects.id"], name=op.f("fk_places_commune_id_subjects")),
        sa.ForeignKeyConstraint(["owner_agency_id"], ["agencies.id"], name=op.f("fk_places_owner_agency_id_agencies")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_places")),
        sa.UniqueConstraint("code", name=op.f("uq_places_code")),
    )
    with op.batch_alter_table("places", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_places_commune_id"), ["commune_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_places_kind"), ["kind"], unique=False)
        batch_op.create_index(batch_op.f("ix_places_owner_agency_id"), ["owner_agency_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("places", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_places_owner_agency_id"))
        batch_op.drop_index(batch_op.f("ix_places_kind"))
        batch_op.drop_index(batch_op.f("ix_places_commune_id"))

    op.drop_table("places")
