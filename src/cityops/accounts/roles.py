"""Roles and what each may do — declared as data, checked in one place."""

from __future__ import annotations

from dataclasses import dataclass, field

ROLES = ("admin", "operator", "leader", "officer", "handler", "public")

# Roles that see every agency's data; the others see their own agency's subtree (and what is not restricted).
PROVINCE_WIDE_ROLES = frozenset({"admin", "operator", "leader"})

PERMISSIONS: dict[str, frozenset[str]] = {
    "admin": frozenset(
        {
            "read_data",
            "read_audit",
            "manage_accounts",
            "manage_catalog",
            "manage_feeds",
            "supply_data",
            "manage_alerts",
            "handle_alerts",
            "manage_incidents",
            "handle_incidents",
            "manage_notifications",
            "receive_notifications",
            "manage_personal_data",
            "manage_cameras",
            "view_video",
            "manage_security",
            "manage_reports",
        }
    ),
    # The center's operators: define rules, decide on alerts, dispatch and close incidents of every agency.
    "operator": frozenset(
        {
            "read_data",
            "manage_catalog",
            "manage_feeds",
            "supply_data",
            "manage_alerts",
            "handle_alerts",
            "manage_incidents",
            "handle_incidents",
            "receive_notifications",
            "manage_cameras",
            "view_video",
            "manage_security",
            "manage_reports",
        }
    ),
    # Leaders read everything, the brief and the reports included; camera images (personal data, Decree
    # 13/2023/NĐ-CP) only through the center's operators.
    "leader": frozenset({"read_data", "receive_notifications"}),
    # An agency's officer supplies its data (uploads to its own agency's feeds), watches its feeds' health and
    # works on its agency's incidents; a handler works on its agency's incidents.
    # An officer also watches the live video of their own agency's cameras (the police's, for the police).
    "officer": frozenset({"read_data", "supply_data", "handle_incidents", "receive_notifications", "view_video"}),
    "handler": frozenset({"read_data", "handle_incidents", "receive_notifications"}),
    "public": frozenset({"receive_notifications"}),
    # An agency system's API key: reads what its agency may see, writes through its feeds; a citizen app's key files
    # citizens' reports over Open311.
    "api_key": frozenset({"read_data", "write_observations", "supply_data", "submit_reports"}),
}


@dataclass(frozen=True)
class Principal:
    """Who is asking: a logged-in user or an API key, with the agencies whose data they may see."""

    role: str
    label: str
    user_id: int | None = None
    api_key_id: int | None = None
    agency_id: int | None = None
    agency_ids: frozenset[int] = field(default_factory=frozenset)
    feed_ids: tuple[int, ...] = ()
    language: str = "vi"
    csrf_exempt: bool = False

    def can(self, permission: str) -> bool:
        """Whether the role holds a permission."""
        return permission in PERMISSIONS.get(self.role, frozenset())

    @property
    def province_wide(self) -> bool:
        """Whether this principal sees every agency's restricted data."""
        return self.role in PROVINCE_WIDE_ROLES
