"""observation days: the daily roll-up of instant indicators

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-28 04:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import cityops.db.base

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "observation_days",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("indicator_id", sa.Integer(), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=False),
        sa.Column("day_key", sa.String(length=10), nullable=False),
        sa.Column("day_start", cityops.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("period_key", sa.String(length=40), nullable=False),
        sa.Column("period_start", cityops.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("null_reason", sa.Text(), nullable=False),
        sa.Column("received_at", cityops.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["indicator_id"], ["indicators.id"], name=op.f("fk_observation_days_indicator_id_indicators")
        ),
        sa.ForeignKeyConstraint(["subject_id"], ["subjects.id"], name=op.f("fk_observation_days_subject_id_subjects")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_observation_days")),
        sa.UniqueConstraint("indicator_id", "subject_id", "day_key", name="uq_observation_days_key"),
    )
    op.create_index(
        "ix_observation_days_indicator_day", "observation_days", ["indicator_id", "day_start"], unique=False
    )
    # The readings stored before: the roll-up made from them once (the code that keeps it is the code that makes it).
    from sqlalchemy.orm import Session

    from cityops.observations.rollup import rebuild_days

    session = Session(bind=op.get_bind())
    rebuild_days(session)
    session.flush()


def downgrade() -> None:
    op.drop_index("ix_observation_days_indicator_day", table_name="observation_days")
    op.drop_table("observation_days")
