"""The declarative base and the column types every domain shares."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Integer, MetaData
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# A 64-bit key that still autoincrements on SQLite (where only INTEGER PRIMARY KEY does).
BigId = BigInteger().with_variant(Integer(), "sqlite")
JsonType = JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """A time-zone-aware datetime stored as UTC; SQLite hands back aware values too."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    """The base of every table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def import_all_models() -> None:
    """Import every domain's models so that Base.metadata knows every table."""
    from cityops.accounts import models as _accounts  # noqa: F401
    from cityops.alerts import models as _alerts  # noqa: F401
    from cityops.cameras import models as _cameras  # noqa: F401
    from cityops.catalog import models as _catalog  # noqa: F401
    from cityops.connectors.spreadsheet import models as _spreadsheet  # noqa: F401
    from cityops.feedback import models as _feedback  # noqa: F401
    from cityops.feeds import models as _feeds  # noqa: F401
    from cityops.geo import models as _geo  # noqa: F401
    from cityops.incidents import models as _incidents  # noqa: F401
    from cityops.notifications import models as _notifications  # noqa: F401
    from cityops.observations import models as _observations  # noqa: F401
    from cityops.reports import models as _reports  # noqa: F401
    from cityops.soc import models as _soc  # noqa: F401
    from cityops.wall import models as _wall  # noqa: F401
