"""The `cityops` command: serve, worker, db, catalog, geo, agencies, feeds, users, keys, demo."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import click
from sqlalchemy.orm import Session

from cityops.accounts import service as accounts
from cityops.accounts.roles import ROLES
from cityops.clock import system_clock
from cityops.db.engine import Database
from cityops.settings import Settings


def _settings() -> Settings:
    return Settings()


@contextmanager
def _database(ready: bool = True) -> Iterator[tuple[Settings, Database]]:
    from cityops.setup import ensure_ready

    settings = _settings()
    database = Database(settings.resolved_database_url)
    try:
        if ready:
            ensure_ready(settings, database)
        yield settings, database
    finally:
        database.dispose()


def _run(action: Callable[[Session], Any]) -> Any:
    """Run one writing action; turn a refused request into a clear message and exit code 1."""
    from cityops.catalog.service import CatalogError

    with _database() as (_, database):
        try:
            with database.writing() as session:
                return action(session)
        except (accounts.AccountError, CatalogError) as exc:
            raise click.ClickException(str(exc)) from exc


@click.group()
@click.version_option(package_name="cityops")
def main() -> None:
    """cityops — Trung tâm Giám sát, Điều hành Thông minh (Intelligent Operations Center)."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Web processes sharing the port (PostgreSQL only); with more than one, run `cityops worker` apart.",
)
def serve(host: str, port: int, workers: int) -> None:
    """Run the web application."""
    import os

    import uvicorn

    from cityops.web.app import create_app
    from cityops.web.observability import configure_logging

    with _database() as (settings, database):
        configure_logging(settings.log_format)
        # uvicorn's own lines go through the same handler (JSON, with request ids); its access log is off: the
        # request metrics and the request id in each line say what it would.
        if workers == 1:
            app = create_app(settings, database=database, worker=settings.embedded_worker)
            uvicorn.run(
                app,
                host=host,
                port=port,
                log_config=None,
                access_log=False,
                proxy_headers=True,
                forwarded_allow_ips=settings.forwarded_allow_ips,
            )
            return
        if database.dialect != "postgresql":
            raise click.ClickException("several web processes need PostgreSQL (CITYOPS_DATABASE_URL)")
    # Every process builds its own app from the environment; the scheduled work runs in `cityops worker` only.
    os.environ["CITYOPS_EMBEDDED_WORKER"] = "false"
    click.echo(f"{workers} web processes on {host}:{port}; run `cityops worker` for the scheduled work", err=True)
    uvicorn.run(
        "cityops.web.app:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=None,
        access_log=False,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
    )


@main.command()
@click.option(
    "--tick-seconds",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Seconds between rounds (default: CITYOPS_WORKER_TICK_SECONDS, 10); keep it at 15 or less so that a late "
    "feed is noticed within a minute.",
)
def worker(tick_seconds: float | None) -> None:
    """Run the scheduled work until stopped (SIGTERM, Ctrl+C): lateness of feeds, due pulls, subscriptions.

    Several workers may run at once (on PostgreSQL, on several machines): each piece of work is claimed by one.
    """
    import asyncio
    import logging
    import signal

    from cityops.i18n import LANGUAGES, format_number, translate
    from cityops.web.observability import configure_logging
    from cityops.worker import Worker

    with _database() as (settings, database):
        # cityops' own messages at INFO; libraries only from WARNING (an HTTP client's request lines may hold a token).
        configure_logging(settings.log_format, logging.WARNING)
        logging.getLogger("cityops").setLevel(logging.INFO)
        seconds = tick_seconds if tick_seconds is not None else settings.worker_tick_seconds

        async def run() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signal_number in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signal_number, stop.set)
            await Worker(database, system_clock, settings.resolved_secret_key, settings=settings).run(stop, seconds)

        for language in LANGUAGES:
            click.echo(translate("lateness.worker_started", language, seconds=format_number(seconds, language)))
            if seconds > 15:
                click.echo(translate("lateness.tick_too_slow", language, seconds=format_number(seconds, language)))
        asyncio.run(run())
        for language in LANGUAGES:
            click.echo(translate("lateness.worker_stopped", language))


@main.command()
@click.option("--to", "folder", type=click.Path(file_okay=False, path_type=Path), help="Default: <data dir>/backups.")
def backup(folder: Path | None) -> None:
    """Write an archive of the database and the data directory's files (not the secret key)."""
    from cityops import backup as backups

    with _database() as (settings, database):
        try:
            made = backups.backup(settings, database, system_clock(), folder)
        except backups.BackupError as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(f"{made.path} ({made.size:,} bytes)")
    for old in made.removed:
        click.echo(f"removed {old.name} (keeping the newest {settings.backup_keep})")
    if not settings.secret_key:
        click.echo(f"keep {settings.data_dir / 'secret_key'} safe as well: it is not in the archive", err=True)


@main.command()
@click.argument("archive", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="Replace the database's content without asking.")
def restore(archive: Path, yes: bool) -> None:
    """Put an archive's database and files back (the server and workers should be stopped)."""
    from cityops import backup as backups
    from cityops.setup import ensure_ready

    if not yes:
        click.confirm(f"Replace this installation's database and files with {archive.name}?", abort=True)
    with _database(ready=False) as (settings, database):
        try:
            manifest = backups.restore(settings, database, archive)
        except backups.BackupError as exc:
            raise click.ClickException(str(exc)) from exc
        ensure_ready(settings, database)  # an older archive is migrated to this code's schema
    click.echo(f"restored {archive.name}: made {manifest.get('made_at')} by cityops {manifest.get('cityops')}")


@main.group()
def db() -> None:
    """The database."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate every table (and load the province and the default catalog when empty)."""
    with _database() as (settings, _):
        click.echo(f"database ready: {settings.resolved_database_url.split('@')[-1]}")


@main.group()
def catalog() -> None:
    """The indicator catalog."""


@catalog.command("load")
@click.argument("folder", required=False, type=click.Path(exists=True, file_okay=False, path_type=Path))
def catalog_load(folder: Path | None) -> None:
    """Load or update the catalog from FOLDER (default: the catalog that ships with cityops)."""
    from cityops.catalog.service import DEFAULT_CATALOG_DIR, load_catalog

    report = _run(
        lambda session: load_catalog(session, accounts.Actor("cli"), system_clock(), folder or DEFAULT_CATALOG_DIR)
    )
    click.echo(
        f"domains: {report.domains}; indicators created: {report.indicators_created}, "
        f"updated: {report.indicators_updated}, unchanged: {report.indicators_unchanged}; "
        f"agencies created: {report.agencies_created}"
    )


@catalog.command("export")
@click.option("--format", "fmt", type=click.Choice(["json", "csv", "xlsx"]), default="json", show_default=True)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The file to write ('-' for standard output); default: cityops-catalog-<date>.<format> here.",
)
def catalog_export(fmt: str, output: Path | None) -> None:
    """Export the whole catalog as JSON (the data files' shape), CSV or XLSX."""
    from cityops.catalog.exchange import Format, export_catalog

    with _database() as (_, database), database.reading() as session:
        result = export_catalog(session, None, system_clock(), cast(Format, fmt))
    if str(output) == "-":
        sys.stdout.buffer.write(result.content)
        return
    target = output or Path(result.filename)
    target.write_bytes(result.content)
    click.echo(f"{result.indicators} indicators exported to {target}", err=True)


@catalog.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Only show what would change; write nothing.")
@click.option(
    "--format", "fmt", type=click.Choice(["json", "csv", "xlsx"]), default=None, help="Default: by extension."
)
def catalog_import(file: Path, dry_run: bool, fmt: str | None) -> None:
    """Import a catalog file (JSON, CSV or XLSX): every good row is applied, each bad one said why.

    Indicators absent from the file are kept. Exits with 1 when the file is refused or any row is rejected.
    """
    from cityops.catalog.exchange import MAX_IMPORT_BYTES, Format, ImportRefused, import_catalog

    if file.stat().st_size > MAX_IMPORT_BYTES:
        raise click.ClickException(f"{file}: larger than {MAX_IMPORT_BYTES} bytes / lớn hơn {MAX_IMPORT_BYTES} byte")
    content = file.read_bytes()
    with _database() as (_, database):
        try:
            with database.reading() if dry_run else database.writing() as session:
                report = import_catalog(
                    session,
                    accounts.Actor("cli"),
                    system_clock(),
                    content,
                    filename=file.name,
                    fmt=cast(Format | None, fmt),
                    dry_run=dry_run,
                )
        except ImportRefused as refused:
            vi, en = refused.messages()
            raise click.ClickException(f"{vi}\n{en}") from refused
    for item in report.outcomes:
        if item.outcome == "unchanged":
            continue
        version = f"v{item.previous_version} → v{item.version}" if item.previous_version else f"v{item.version}"
        click.echo(f"{item.outcome}\t{item.code}\t{version}\t{item.where.text('en')}")
        for change in item.changes:
            click.echo(f"\t{change.field}: {change.old!r} → {change.new!r}")
    for rejection in report.rejected:
        click.echo(
            f"rejected\t{rejection.code or '-'}\t{rejection.where.text('en')}\t{rejection.field}\t"
            f"{rejection.message_vi} / {rejection.message_en}"
        )
    vi, en = report.summary()
    click.echo(vi)
    click.echo(en)
    if report.rejected:
        sys.exit(1)


@main.group()
def geo() -> None:
    """Administrative units."""


@geo.command("load")
@click.option("--province", default=None, help="Province code (2025); default: CITYOPS_PROVINCE_CODE.")
def geo_load(province: str | None) -> None:
    """Load a province and its communes and wards (2025 two-level structure)."""
    from cityops.geo.service import ensure_commune_agencies, load_province

    code = province or _settings().province_code

    def load(session: Session) -> tuple[int, int]:
        return load_province(session, code), ensure_commune_agencies(session, system_clock())

    try:
        count, agencies_created = _run(load)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"administrative units: {count}; commune People's Committees created: {agencies_created}")


@geo.group("places")
def geo_places() -> None:
    """The places registry: tourist sites, hospitals, schools, markets …"""


@geo_places.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def geo_places_import(file: Path) -> None:
    """Import places from a CSV (UTF-8, with a header) or GeoJSON (Point features) FILE; same code = update."""
    from cityops.geo.places_file import PlaceFileError
    from cityops.geo.service import import_places
    from cityops.i18n import both

    settings = _settings()
    data = file.read_bytes()
    try:
        report = _run(
            lambda session: import_places(
                session,
                accounts.Actor("cli"),
                system_clock(),
                data,
                province_code=settings.province_code,
                max_rows=settings.max_batch_items,
            )
        )
    except PlaceFileError as exc:
        vietnamese, english = both(f"problem.{exc.code}.detail", **exc.params)
        raise click.ClickException(f"{file.name}: {vietnamese}\n{english}") from exc
    for rejection in report.rejected:
        place = f" ({rejection.place})" if rejection.place else ""
        click.echo(f"row {rejection.row}{place}: {rejection.message_vi}\n    {rejection.message_en}")
    counts = {
        "received": report.received,
        "accepted": report.accepted,
        "created": report.created,
        "updated": report.updated,
        "unchanged": report.unchanged,
        "rejected": len(report.rejected),
    }
    for line in both("geo.places_import.summary", **counts):
        click.echo(line)


@main.group()
def agencies() -> None:
    """Agencies."""


@agencies.command("create")
@click.option("--code", required=True)
@click.option("--name-vi", required=True, help="Vietnamese name, with diacritics.")
@click.option("--name-en", default="")
@click.option("--kind", type=click.Choice(accounts.AGENCY_KINDS), default="department", show_default=True)
@click.option("--parent", default="", help="Parent agency code.")
def agencies_create(code: str, name_vi: str, name_en: str, kind: str, parent: str) -> None:
    """Create an agency."""
    agency = _run(
        lambda session: accounts.create_agency(
            session,
            accounts.Actor("cli"),
            system_clock(),
            code=code,
            name_vi=name_vi,
            name_en=name_en,
            kind=kind,
            parent_code=parent,
        )
    )
    click.echo(f"agency created: {agency.code}")


@main.group()
def feeds() -> None:
    """Feeds: agreed flows of data from agencies (kind, settings, cadence, what they cover)."""


def _feeds_action(action: Callable[[Session, Settings], Any]) -> Any:
    """Run one writing action on feeds; a refusal becomes its message in Vietnamese and English, exit code 1."""
    from cityops.feeds.service import FeedError

    with _database() as (settings, database):
        try:
            with database.writing() as session:
                return action(session, settings)
        except FeedError as exc:
            raise click.ClickException(f"{exc.message_vi}\n{exc.message_en}") from exc
        except accounts.AccountError as exc:
            raise click.ClickException(str(exc)) from exc


def _settings_file(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    import json

    try:
        settings = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as exc:
        raise click.ClickException(
            f"{path.name}: không đọc được tệp cấu hình JSON ({exc})\n{path.name}: cannot read the JSON settings ({exc})"
        ) from exc
    if not isinstance(settings, dict):
        raise click.ClickException(
            f"{path.name}: cấu hình phải là một đối tượng JSON\n{path.name}: the settings must be a JSON object"
        )
    return settings


def _codes(values: tuple[str, ...]) -> list[str]:
    return [code.strip() for value in values for code in value.split(",") if code.strip()]


@feeds.command("create")
@click.option("--code", required=True)
@click.option("--agency", required=True, help="The agency that supplies the feed.")
@click.option(
    "--indicator",
    "indicators",
    multiple=True,
    required=True,
    help="An indicator code the feed supplies (repeat, or separate with commas).",
)
@click.option("--name", default="")
@click.option("--kind", default="push", show_default=True, help="Connector kind: push, http_pull, spreadsheet, mqtt.")
@click.option("--cadence", default="", help='Expected cadence, e.g. "daily by 17:00" or "hằng tháng trước ngày 5".')
@click.option("--grace", default=0, show_default=True, type=int, help="Grace period after each deadline, in minutes.")
@click.option("--coverage", type=click.Choice(["province", "communes", "list"]), default="province", show_default=True)
@click.option("--subject", "subjects", multiple=True, help="A subject code to cover (repeat, or separate with commas).")
@click.option(
    "--settings-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The kind's settings as a JSON file; its secrets are stored encrypted.",
)
@click.option("--poll-seconds", default=0, show_default=True, type=int, help="Scheduled kinds: seconds between pulls.")
def feeds_create(
    code: str,
    agency: str,
    indicators: tuple[str, ...],
    name: str,
    kind: str,
    cadence: str,
    grace: int,
    coverage: str,
    subjects: tuple[str, ...],
    settings_file: Path | None,
    poll_seconds: int,
) -> None:
    """Create a feed: an agreed flow of data from one agency."""
    from cityops.feeds.service import create_feed

    codes = _codes(indicators)
    given = _settings_file(settings_file)
    feed = _feeds_action(
        lambda session, settings: create_feed(
            session,
            accounts.Actor("cli"),
            system_clock(),
            code=code,
            agency_code=agency,
            indicator_codes=codes,
            name=name,
            kind=kind,
            settings=given,
            secret_key=settings.resolved_secret_key,
            cadence=cadence,
            grace_minutes=grace,
            coverage=coverage,
            subject_codes=_codes(subjects),
            poll_seconds=poll_seconds,
        )
    )
    click.echo(f"feed created: {feed.code} ({len(codes)} indicators)")


@feeds.command("list")
def feeds_list() -> None:
    """Every feed: code, agency, kind, cadence, grace, state, last run (never a secret)."""
    from cityops.accounts.roles import Principal
    from cityops.feeds import service

    everyone = Principal(role="admin", label="cli")

    def listing(session: Session, _settings: Settings) -> list[str]:
        feeds_ = service.visible_feeds(session, everyone)
        last = service.last_runs(session, [feed.id for feed in feeds_])
        lines = []
        for feed in feeds_:
            out = service.feed_out(session, feed, "en", last.get(feed.id))
            run = out["last_run"]
            last_run = f"{run['status']} {run['started_at']}" if run else "never run"
            secrets = f"secrets set: {','.join(out['secrets_set'])}" if out["secrets_set"] else "no secrets"
            lines.append(
                "\t".join(
                    [
                        feed.code,
                        str(out["agency"]),
                        feed.kind,
                        feed.cadence or "-",
                        f"grace {feed.grace_minutes} min",
                        "paused" if feed.paused else "active",
                        last_run,
                        secrets,
                    ]
                )
            )
        return lines

    for line in _feeds_action(listing):
        click.echo(line)


def _set_paused(code: str, paused: bool) -> None:
    from cityops.feeds.service import update_feed

    _feeds_action(
        lambda session, _settings: update_feed(session, accounts.Actor("cli"), system_clock(), code, {"paused": paused})
    )
    click.echo(f"feed {'paused' if paused else 'resumed'}: {code}")


@feeds.command("pause")
@click.argument("code")
def feeds_pause(code: str) -> None:
    """Pause a feed: no scheduled pulls and no lateness until it resumes."""
    _set_paused(code, True)


@feeds.command("resume")
@click.argument("code")
def feeds_resume(code: str) -> None:
    """Resume a paused feed."""
    _set_paused(code, False)


@feeds.command("run")
@click.argument("code")
def feeds_run(code: str) -> None:
    """Run a scheduled feed's pull now (retrying transient errors); print the run. Exit code 1 when it failed."""
    from cityops.connectors.runner import run_feed
    from cityops.feeds import service
    from cityops.i18n import LANGUAGES, translate

    with _database() as (settings, database):
        try:
            with database.reading() as session:
                feed = service.get_feed(session, code)
                feed_id, kind = feed.id, feed.kind
        except service.FeedError as exc:
            raise click.ClickException(f"{exc.message_vi}\n{exc.message_en}") from exc
        if not service.is_scheduled(kind):
            message = (translate("problem.feed_not_pullable.detail", lang, feed=code, kind=kind) for lang in LANGUAGES)
            raise click.ClickException("\n".join(message))
        run = run_feed(database, feed_id, system_clock, settings.resolved_secret_key, trigger="manual")
        with database.writing() as session:
            service.audit_manual_run(
                session, accounts.Actor("cli"), system_clock(), service.get_feed(session, code), run
            )
    click.echo(
        f"run {run['id']}: {run['status']} — received {run['received']}, accepted {run['accepted']}, "
        f"rejected {run['rejected']}, attempts {run['attempts']}"
    )
    if run["error"]:
        error = run["error"]
        click.echo(f"{error['code']} ({'retrying may help' if error['retryable'] else 'retrying will not help'})")
        click.echo(error["message_vi"])
        click.echo(error["message_en"])
    if run["status"] == "failed":
        sys.exit(1)


@main.group()
def users() -> None:
    """Users."""


@users.command("create")
@click.option("--username", required=True)
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--agency", default="", help="Agency code (required for officer and handler).")
@click.option("--full-name", default="")
@click.option("--language", type=click.Choice(["vi", "en"]), default="vi", show_default=True)
@click.option(
    "--password",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    help="At least 10 characters; asked for when not given.",
)
@click.option("--email", default="", help="Where e-mail notifications go.")
@click.option("--phone", default="", help="For SMS/Zalo gateways (webhooks).")
@click.option("--head", is_flag=True, help="The head of the agency (escalations reach them).")
def users_create(
    username: str,
    role: str,
    agency: str,
    full_name: str,
    language: str,
    password: str,
    email: str,
    phone: str,
    head: bool,
) -> None:
    """Create a user."""
    user = _run(
        lambda session: accounts.create_user(
            session,
            accounts.Actor("cli"),
            system_clock(),
            username=username,
            password=password,
            role=role,
            agency_code=agency,
            full_name=full_name,
            language=language,
            email=email,
            phone=phone,
            is_agency_head=head,
        )
    )
    click.echo(f"user created: {user.username} ({user.role})")


@users.command("update")
@click.option("--username", required=True)
@click.option("--role", type=click.Choice(ROLES), default=None)
@click.option("--agency", default=None, help="Agency code; an empty string removes the agency.")
@click.option("--active/--inactive", default=None, help="Allow or stop log-ins.")
@click.option("--new-password", is_flag=True, help="Ask for a new password.")
@click.option("--email", default=None, help="Where e-mail notifications go; an empty string: none.")
@click.option("--phone", default=None)
@click.option("--head/--not-head", default=None, help="Whether the user heads their agency (escalations).")
def users_update(
    username: str,
    role: str | None,
    agency: str | None,
    active: bool | None,
    new_password: bool,
    email: str | None,
    phone: str | None,
    head: bool | None,
) -> None:
    """Change a user's role, agency, active state, password, e-mail, phone or headship (audited)."""
    password = click.prompt("New password", hide_input=True, confirmation_prompt=True) if new_password else None
    _run(
        lambda session: accounts.update_user(
            session,
            accounts.Actor("cli"),
            system_clock(),
            username,
            role=role,
            agency_code=agency,
            active=active,
            password=password,
            email=email,
            phone=phone,
            is_agency_head=head,
        )
    )
    click.echo(f"user updated: {username}")


@users.command("list")
def users_list() -> None:
    """Every user with role, agency and state."""
    for user in _run(accounts.list_users):
        agency = user.agency.code if user.agency else "-"
        state = "active" if user.is_active else "inactive"
        click.echo(f"{user.username}\t{user.role}\t{agency}\t{state}")


@main.group()
def soc() -> None:
    """Information security: the syslog listeners (docs/security-operations.md)."""


@soc.command("listen")
@click.option("--udp", default="", help="Address for syslog over UDP, e.g. 127.0.0.1:5514 (repeatable as one).")
@click.option("--tcp", default="", help="Address for syslog over TCP (octet counting or newline framing).")
def soc_listen(udp: str, tcp: str) -> None:
    """Receive syslog (RFC 5424, RFC 3164, CEF) until stopped; events are stored in batches."""
    import asyncio
    import signal

    from cityops.soc.listener import Listener, parse_address

    try:
        udp_address = parse_address(udp) if udp else None
        tcp_address = parse_address(tcp) if tcp else None
    except ValueError as exc:
        raise click.ClickException(f"not an address host:port: {exc}") from exc
    if udp_address is None and tcp_address is None:
        raise click.ClickException("give --udp and/or --tcp")
    with _database() as (_, database):
        listener = Listener(database, system_clock)

        async def run() -> None:
            await listener.start(udp_address, tcp_address)
            click.echo(f"soc: listening udp={listener.udp_address} tcp={listener.tcp_address}", err=True)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for name in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(name, stop.set)
            while not stop.is_set():
                try:
                    await asyncio.wait_for(stop.wait(), 60)
                except TimeoutError:
                    click.echo(f"soc: {listener.stats.snapshot()}", err=True)
            await listener.stop()
            click.echo(f"soc: stopped {listener.stats.snapshot()}", err=True)

        asyncio.run(run())


@main.group()
def keys() -> None:
    """API keys of agency systems."""


@keys.command("create")
@click.option("--agency", required=True)
@click.option("--feed", "feed_codes", multiple=True, help="A feed the key may write (repeat).")
@click.option("--name", default="")
def keys_create(agency: str, feed_codes: tuple[str, ...], name: str) -> None:
    """Create a key; the key itself is printed once, alone on the last line."""
    key, secret = _run(
        lambda session: accounts.create_api_key(
            session, accounts.Actor("cli"), system_clock(), agency_code=agency, feed_codes=list(feed_codes), name=name
        )
    )
    click.echo(f"API key created for {agency} (prefix {key.prefix}); it is shown only this once:")
    click.echo(secret)


@keys.command("list")
def keys_list() -> None:
    """Every key: prefix, agency, feeds, created, last used, revoked (never the key itself)."""
    for key, feeds in _run(accounts.list_api_keys):
        last_used = key.last_used_at.isoformat(timespec="seconds") if key.last_used_at else "never"
        revoked = f"revoked {key.revoked_at.isoformat(timespec='seconds')}" if key.revoked_at else "active"
        click.echo(
            f"{key.prefix}\t{key.agency.code}\t{','.join(feeds) or '-'}\t{key.name}\tused {last_used}\t{revoked}"
        )


@keys.command("revoke")
@click.argument("prefix")
def keys_revoke(prefix: str) -> None:
    """Revoke the key with this prefix (the part after cok_)."""
    _run(lambda session: accounts.revoke_api_key(session, accounts.Actor("cli"), system_clock(), prefix))
    click.echo(f"API key revoked: {prefix}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--interval", default=None, type=float, help="Seconds between simulator rounds.")
def demo(host: str, port: int, interval: float | None) -> None:
    """Start the app with the simulator playing the agencies through the real API."""
    from cityops.demo.runner import run_demo

    with _database() as (settings, database):
        run_demo(
            settings,
            database,
            host=host,
            port=port,
            interval=interval if interval is not None else settings.demo_interval_seconds,
            echo=click.echo,
        )


@main.group()
def rules() -> None:
    """Alert rules: load them from a TOML file, list them."""


@rules.command("load")
@click.argument("file", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
def rules_load(file: Path | None) -> None:
    """Create or update (by code) the rules of FILE (default: the rules shipped with cityops)."""
    from cityops.alerts.rules import RulesFileError, load_rules

    try:
        changed = _run(lambda session: load_rules(session, accounts.Actor("cli"), system_clock(), file))
    except RulesFileError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"alert rules created or changed: {changed}")


@rules.command("list")
def rules_list() -> None:
    """Every rule: code, kind, what it watches, severity, enabled."""
    from sqlalchemy import select

    from cityops.alerts.models import AlertRule
    from cityops.alerts.rules import rules_fields

    def listing(session: Session) -> list[dict[str, Any]]:
        return rules_fields(session, list(session.scalars(select(AlertRule).order_by(AlertRule.code))))

    for rule in _run(listing):
        what = rule["indicator"] or rule["feed"] or rule["params"].get("category", "") or "*"
        state = "enabled" if rule["enabled"] else "disabled"
        click.echo(f"{rule['code']}\t{rule['kind']}\t{what}\t{rule['severity']}\t{state}\t{rule['name_vi']}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
