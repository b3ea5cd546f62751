"""Every setting in one place, read from CITYOPS_* environment variables (or a .env file)."""

from __future__ import annotations

import secrets
from functools import cached_property
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """The settings of one cityops installation."""

    model_config = SettingsConfigDict(env_prefix="CITYOPS_", env_file=".env", extra="ignore")

    data_dir: Path = Field(default=Path("cityops-data"), description="Where the database and files live.")
    database_url: str = Field(default="", description="SQLAlchemy URL; empty means SQLite in data_dir.")
    secret_key: str = Field(default="", description="Signs CSRF tokens; empty means one kept in data_dir.")
    province_code: str = Field(default="40", description="The province this center watches (2025 code).")
    default_language: str = "vi"
    max_body_bytes: int = 16 * 1024 * 1024
    max_batch_items: int = 10_000
    forwarded_allow_ips: str = Field(
        default="127.0.0.1",
        description="Proxies whose X-Forwarded-For/-Proto are trusted (comma-separated addresses; the client address "
        "of rate limits and logs comes from them).",
    )
    outbound_allow: str = Field(
        default="",
        description="Internal networks or hosts that connectors, webhooks and cameras may reach (comma-separated, "
        "e.g. 10.20.0.0/16); empty: public addresses only.",
    )
    metrics_token: str = Field(default="", description="Bearer token of GET /metrics; empty: /metrics is off.")
    log_format: str = Field(default="json", pattern="^(json|text)$", description="Log lines: json or text.")
    backup_dir: Path | None = Field(default=None, description="Where `cityops backup` writes; empty: data_dir/backups.")
    backup_keep: int = Field(default=14, ge=1, description="How many archives `cityops backup` keeps.")
    max_concurrent_requests: int = Field(
        default=64, gt=0, description="Requests inside one web process at once; more are answered 503 Retry-After."
    )
    session_hours: int = 12
    cookie_secure: bool = Field(default=False, description="Set true behind HTTPS.")
    login_max_failures: int = 5
    login_lockout_minutes: int = 15
    idempotency_hours: int = 24
    demo_interval_seconds: float = 10.0
    demo_mqtt_broker: str = Field(default="127.0.0.1:1883", description="host:port of the demo's MQTT; empty: none.")
    embedded_worker: bool = Field(default=True, description="Run the worker in `cityops serve` and `cityops demo`.")
    worker_tick_seconds: float = Field(default=10.0, gt=0, description="Seconds between worker rounds (keep ≤ 15).")
    public_url: str = Field(default="http://127.0.0.1:8000", description="Where users reach the app (in e-mails).")
    smtp_host: str = Field(default="", description="SMTP server for e-mail notifications; empty: no e-mail.")
    smtp_port: int = 25
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = False
    smtp_sender: str = Field(default="cityops@localhost", description="The From address of e-mail notifications.")
    max_attachment_bytes: int = Field(default=10 * 1024 * 1024, description="Largest file attached to an incident.")
    feedback_retention_days: int = Field(
        default=365, ge=0, description="Days after closing that a report keeps its citizen's personal data; 0 keeps it."
    )
    feedback_rate_limit: int = Field(default=5, ge=1, description="Public report POSTs per client and window.")
    feedback_rate_window_seconds: int = Field(default=600, ge=1)
    max_photo_bytes: int = Field(default=8 * 1024 * 1024, description="Largest photo of a citizen's report.")
    open311_jurisdiction: str = Field(default="nghean.gov.vn", description="The Open311 jurisdiction_id.")
    map_tile_url: str = Field(default="", description="Map tiles ({z}/{x}/{y}) on the province's server; empty: none.")
    brief_time: str = Field(
        default="07:00", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", description="When the daily brief is made (local)."
    )
    report_font: Path = Field(
        default=Path("/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf"),
        description="The TrueType font embedded in PDF reports (with its Bold beside it: NotoSans-Bold.ttf).",
    )
    camera_probe_timeout_seconds: float = Field(default=8.0, gt=0, description="Longest wait for one camera probe.")
    camera_probe_concurrency: int = Field(default=8, ge=1, description="Cameras probed at the same time.")
    camera_live_viewers: int = Field(default=4, ge=1, description="Live viewers of one camera at the same time.")
    camera_snapshot_cache_seconds: float = Field(default=3.0, ge=0, description="How long a fetched snapshot is kept.")
    camera_allow_private_addresses: bool = Field(
        default=True, description="Cameras may be on private or loopback addresses (they usually are: the police LAN)."
    )

    @cached_property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to a SQLite file under the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'cityops.db').resolve()}"

    @cached_property
    def resolved_secret_key(self) -> str:
        """The secret key, created once and kept in the data directory when not set."""
        if self.secret_key:
            return self.secret_key
        self.data_dir.mkdir(parents=True, exist_ok=True)
        path = self.data_dir / "secret_key"
        if not path.exists():
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        return path.read_text().strip()


def get_settings() -> Settings:
    """Read the settings from the environment."""
    return Settings()
