"""The `cityops` command: serve, db, catalog, geo, agencies, feeds, users, keys, demo."""

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
def serve(host: str, port: int) -> None:
    """Run the web application."""
    import uvicorn

    from cityops.web.app import create_app

    with _database() as (settings, database):
        uvicorn.run(create_app(settings, database=database), host=host, port=port, log_level="info")


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
    """Feeds."""


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
def feeds_create(code: str, agency: str, indicators: tuple[str, ...], name: str) -> None:
    """Create a feed: an agreed flow of data from one agency."""
    from cityops.feeds.service import create_feed

    codes = [code_ for value in indicators for code_ in value.split(",") if code_.strip()]
    feed = _run(
        lambda session: create_feed(
            session,
            accounts.Actor("cli"),
            system_clock(),
            code=code,
            agency_code=agency,
            indicator_codes=[c.strip() for c in codes],
            name=name,
        )
    )
    click.echo(f"feed created: {feed.code} ({len(codes)} indicators)")


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
def users_create(username: str, role: str, agency: str, full_name: str, language: str, password: str) -> None:
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
        )
    )
    click.echo(f"user created: {user.username} ({user.role})")


@users.command("update")
@click.option("--username", required=True)
@click.option("--role", type=click.Choice(ROLES), default=None)
@click.option("--agency", default=None, help="Agency code; an empty string removes the agency.")
@click.option("--active/--inactive", default=None, help="Allow or stop log-ins.")
@click.option("--new-password", is_flag=True, help="Ask for a new password.")
def users_update(username: str, role: str | None, agency: str | None, active: bool | None, new_password: bool) -> None:
    """Change a user's role, agency, active state or password (audited; their sessions end)."""
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
