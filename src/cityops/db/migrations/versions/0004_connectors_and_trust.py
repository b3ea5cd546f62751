"""feeds with connectors, schedules and runs; expected periods; alerts; ingest rejections

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 20:49:30.672530
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import cityops.db.base

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=True),
        sa.Column("feed_id", sa.Integer(), nullable=True),
        sa.Column("subject_id", sa.Integer(), nullable=True),
        sa.Column("title_vi", sa.Text(), nullable=False),
        sa.Column("title_en", sa.Text(), nullable=False),
        sa.Column(
            "details", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("started_at", cityops.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", cityops.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", cityops.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("fire_count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["agency_id"], ["agencies.id"], name=op.f("fk_alerts_agency_id_agencies")),
        sa.ForeignKeyConstraint(["feed_id"], ["feeds.id"], name=op.f("fk_alerts_feed_id_feeds"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["subject_id"], ["subjects.id"], name=op.f("fk_alerts_subject_id_subjects")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
        sa.UniqueConstraint("key", name=op.f("uq_alerts_key")),
    )
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.create_index("ix_alerts_state_agency", ["state", "agency_id"], unique=False)

    op.create_table(
        "feed_expectations",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("feed_id", sa.Integer(), nullable=False),
        sa.Column("period_type", sa.String(length=20), nullable=False),
        sa.Column("period_key", sa.String(length=40), nullable=False),
        sa.Column("period_start", cityops.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("period_end", cityops.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("due_at", cityops.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("late_at", cityops.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("received_at", cityops.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("on_time", sa.Boolean(), nullable=True),
        sa.Column("late_marked_at", cityops.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["feed_id"], ["feeds.id"], name=op.f("fk_feed_expectations_feed_id_feeds"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feed_expectations")),
        sa.UniqueConstraint("feed_id", "period_key", name="uq_feed_expectations_feed_period"),
    )
    with op.batch_alter_table("feed_expectations", schema=None) as batch_op:
        batch_op.create_index("ix_feed_expectations_feed_start", ["feed_id", "period_start"], unique=False)
        batch_op.create_index("ix_feed_expectations_state_late_at", ["state", "late_at"], unique=False)

    op.create_table(
        "feed_runs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("feed_id", sa.Integer(), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("started_at", cityops.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", cityops.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("received", sa.Integer(), nullable=False),
        sa.Column("accepted", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("error_code", sa.String(length=64), nullable=False),
        sa.Column("retryable", sa.Boolean(), nullable=True),
        sa.Column("message_vi", sa.Text(), nullable=False),
        sa.Column("message_en", sa.Text(), nullable=False),
        sa.Column(
            "details", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.ForeignKeyConstraint(["feed_id"], ["feeds.id"], name=op.f("fk_feed_runs_feed_id_feeds"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feed_runs")),
    )
    with op.batch_alter_table("feed_runs", schema=None) as batch_op:
        batch_op.create_index("ix_feed_runs_feed_started", ["feed_id", "started_at"], unique=False)

    op.create_table(
        "alert_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("alert_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("event", sa.String(length=16), nullable=False),
        sa.Column("at", cityops.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "details", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["alerts.id"], name=op.f("fk_alert_events_alert_id_alerts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_events")),
    )
    with op.batch_alter_table("alert_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alert_events_alert_id"), ["alert_id"], unique=False)

    op.create_table(
        "ingest_rejections",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("batch_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("feed_id", sa.Integer(), nullable=True),
        sa.Column("indicator_id", sa.Integer(), nullable=True),
        sa.Column("item_index", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("field", sa.String(length=64), nullable=False),
        sa.Column("message_vi", sa.Text(), nullable=False),
        sa.Column("message_en", sa.Text(), nullable=False),
        sa.Column("item", sa.Text(), nullable=False),
        sa.Column("received_at", cityops.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["ingest_batches.id"],
            name=op.f("fk_ingest_rejections_batch_id_ingest_batches"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["feed_id"], ["feeds.id"], name=op.f("fk_ingest_rejections_feed_id_feeds"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["indicator_id"],
            ["indicators.id"],
            name=op.f("fk_ingest_rejections_indicator_id_indicators"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ingest_rejections")),
    )
    with op.batch_alter_table("ingest_rejections", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ingest_rejections_batch_id"), ["batch_id"], unique=False)
        batch_op.create_index("ix_ingest_rejections_feed_received", ["feed_id", "received_at"], unique=False)

    with op.batch_alter_table("feeds", schema=None) as batch_op:
        batch_op.add_column(sa.Column("description", sa.Text(), nullable=False, server_default=sa.text("''")))
        batch_op.add_column(
            sa.Column(
                "settings",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=False,
                server_default=sa.text("'{}'"),
            )
        )
        batch_op.add_column(sa.Column("secrets", sa.Text(), nullable=False, server_default=sa.text("''")))
        batch_op.add_column(
            sa.Column(
                "secret_names",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=False,
                server_default=sa.text("'[]'"),
            )
        )
        batch_op.add_column(sa.Column("cadence", sa.String(length=64), nullable=False, server_default=sa.text("''")))
        batch_op.add_column(sa.Column("grace_minutes", sa.Integer(), nullable=False, server_default=sa.text("0")))
        batch_op.add_column(
            sa.Column("coverage", sa.String(length=16), nullable=False, server_default=sa.text("'province'"))
        )
        batch_op.add_column(
            sa.Column(
                "subject_codes",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=False,
                server_default=sa.text("'[]'"),
            )
        )
        batch_op.add_column(sa.Column("paused", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("cursor", sa.Text(), nullable=False, server_default=sa.text("''")))
        batch_op.add_column(sa.Column("poll_seconds", sa.Integer(), nullable=False, server_default=sa.text("0")))
        batch_op.add_column(sa.Column("next_run_at", cityops.db.base.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("lease_owner", sa.String(length=64), nullable=False, server_default=sa.text("''"))
        )
        batch_op.add_column(sa.Column("lease_until", cityops.db.base.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("updated_at", cityops.db.base.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f("ix_feeds_next_run_at"), ["next_run_at"], unique=False)

    with op.batch_alter_table("ingest_batches", schema=None) as batch_op:
        batch_op.add_column(sa.Column("feed_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("source", sa.String(length=32), nullable=False, server_default=sa.text("'push'")))
        batch_op.add_column(sa.Column("created", sa.Integer(), nullable=False, server_default=sa.text("0")))
        batch_op.add_column(sa.Column("replaced", sa.Integer(), nullable=False, server_default=sa.text("0")))
        batch_op.add_column(sa.Column("unchanged", sa.Integer(), nullable=False, server_default=sa.text("0")))
        batch_op.create_index(batch_op.f("ix_ingest_batches_feed_id"), ["feed_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_ingest_batches_feed_id_feeds"), "feeds", ["feed_id"], ["id"], ondelete="SET NULL"
        )

    # Existing rows got the defaults above; the models have none, so drop them (a second pass: SQLite copies the table).
    with op.batch_alter_table("feeds", schema=None) as batch_op:
        batch_op.alter_column("description", server_default=None)
        batch_op.alter_column("settings", server_default=None)
        batch_op.alter_column("secrets", server_default=None)
        batch_op.alter_column("secret_names", server_default=None)
        batch_op.alter_column("cadence", server_default=None)
        batch_op.alter_column("grace_minutes", server_default=None)
        batch_op.alter_column("coverage", server_default=None)
        batch_op.alter_column("subject_codes", server_default=None)
        batch_op.alter_column("paused", server_default=None)
        batch_op.alter_column("cursor", server_default=None)
        batch_op.alter_column("poll_seconds", server_default=None)
        batch_op.alter_column("lease_owner", server_default=None)
    with op.batch_alter_table("ingest_batches", schema=None) as batch_op:
        batch_op.alter_column("source", server_default=None)
        batch_op.alter_column("created", server_default=None)
        batch_op.alter_column("replaced", server_default=None)
        batch_op.alter_column("unchanged", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("ingest_batches", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_ingest_batches_feed_id_feeds"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_ingest_batches_feed_id"))
        batch_op.drop_column("unchanged")
        batch_op.drop_column("replaced")
        batch_op.drop_column("created")
        batch_op.drop_column("source")
        batch_op.drop_column("feed_id")

    with op.batch_alter_table("feeds", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_feeds_next_run_at"))
        batch_op.drop_column("updated_at")
        batch_op.drop_column("lease_until")
        batch_op.drop_column("lease_owner")
        batch_op.drop_column("next_run_at")
        batch_op.drop_column("poll_seconds")
        batch_op.drop_column("cursor")
        batch_op.drop_column("paused")
        batch_op.drop_column("subject_codes")
        batch_op.drop_column("coverage")
        batch_op.drop_column("grace_minutes")
        batch_op.drop_column("cadence")
        batch_op.drop_column("secret_names")
        batch_op.drop_column("secrets")
        batch_op.drop_column("settings")
        batch_op.drop_column("description")

    with op.batch_alter_table("ingest_rejections", schema=None) as batch_op:
        batch_op.drop_index("ix_ingest_rejections_feed_received")
        batch_op.drop_index(batch_op.f("ix_ingest_rejections_batch_id"))

    op.drop_table("ingest_rejections")
    with op.batch_alter_table("alert_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alert_events_alert_id"))

    op.drop_table("alert_events")
    with op.batch_alter_table("feed_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_feed_runs_feed_started")

    op.drop_table("feed_runs")
    with op.batch_alter_table("feed_expectations", schema=None) as batch_op:
        batch_op.drop_index("ix_feed_expectations_state_late_at")
        batch_op.drop_index("ix_feed_expectations_feed_start")

    op.drop_table("feed_expectations")
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_index("ix_alerts_state_agency")

    op.drop_table("alerts")
