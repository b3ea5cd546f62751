"""The video wall's pages: the 3 × 3 wall in one 5760×3240 window (`/wall`), one tile alone (`/wall/tile/<n>`),
a tile's content as a partial (`/wall/tile/<n>/content?view=<i>`, what wall.js swaps in), the heartbeat wall.js polls
to reload after a server restart, and the operators' no-JS form that chooses what each tile shows (`/wall/setup`)."""

from __future__ import annotations

import secrets
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, RedirectResponse, Response

from cityops import __version__
from cityops.accounts.roles import Principal
from cityops.accounts.service import Actor
from cityops.catalog.models import Domain
from cityops.clock import LOCAL_TZ
from cityops.i18n import translate
from cityops.wall import service
from cityops.wall.models import WallLayout
from cityops.web.deps import client_ip, language, parts
from cityops.web.pages import form_csrf_ok, form_text, render, require_page

router = APIRouter(include_in_schema=False)
# Changes with every start of the server process: wall.js reloads the page when it sees another one.
STARTED = secrets.token_hex(8)
LIVE_JS = Path(__file__).resolve().parents[1] / "web" / "static" / "live.js"
REFRESH_SECONDS = 30
HEARTBEAT_SECONDS = 30


def _tiles(request: Request) -> list[dict[str, Any]]:
    app_parts = parts(request)
    with app_parts.db.reading() as session:
        layout = session.scalar(select(WallLayout).where(WallLayout.active.is_(True)).order_by(WallLayout.id).limit(1))
        if layout is not None:
            return service.normalise(layout.tiles)
    with app_parts.db.writing() as session:
        return service.layout_tiles(session, app_parts.clock())


def _ago(moment: datetime | None, now: datetime, lang: str) -> str:
    """ "cập nhật 5 phút trước" — minutes, then hours, then days."""
    if moment is None:
        return translate("wall.updated.never", lang)
    minutes = max(0, int((now - moment).total_seconds() // 60))
    if minutes < 1:
        return translate("wall.updated.now", lang)
    if minutes < 120:
        return translate("wall.updated.minutes", lang, n=minutes)
    if minutes < 48 * 60:
        return translate("wall.updated.hours", lang, n=minutes // 60)
    return translate("wall.updated.days", lang, n=minutes // (24 * 60))


def _content(
    request: Request, principal: Principal, tiles: list[dict[str, Any]], picks: dict[int, int]
) -> dict[int, dict[str, Any]]:
    """The shown view of each picked tile (position → view index), rendered with one look at the alerts."""
    app_parts = parts(request)
    lang = language(request)
    now = app_parts.clock()
    result = {}
    with app_parts.db.reading() as session:
        ctx = service.context(session, principal, now, lang, app_parts.settings.province_code)
        for tile in tiles:
            position = tile["position"]
            if position not in picks:
                continue
            index = picks[position] % len(tile["views"])
            view = service.render_view(ctx, tile["views"][index])
            view.update(
                index=index,
                count=len(tile["views"]),
                position=position,
                ago=_ago(view["updated_at"], now, lang),
            )
            result[position] = view
    return result


def _page_context(request: Request, tiles: list[dict[str, Any]], content: dict[int, dict[str, Any]]) -> dict[str, Any]:
    now = parts(request).clock()
    return {
        "tiles": [{**tile, "content": content[tile["position"]]} for tile in tiles if tile["position"] in content],
        "refresh": REFRESH_SECONDS,
        "heartbeat": HEARTBEAT_SECONDS,
        "started": STARTED,
        "live_js": LIVE_JS.exists(),
        "clock_text": now.astimezone(LOCAL_TZ).strftime("%H:%M"),
    }


@router.get("/wall")
async def wall(request: Request, principal: Principal = Depends(require_page("read_data"))) -> Response:
    """The whole wall in one 5760×3240 window: nine tiles of 1920×1080, dark, each refreshed and rotated."""
    tiles = await run_in_threadpool(_tiles, request)
    content = await run_in_threadpool(_content, request, principal, tiles, {t["position"]: 0 for t in tiles})
    return render(request, "wall/wall.html", {**_page_context(request, tiles, content), "single": False})


def _position(n: int) -> int:
    if n not in service.POSITIONS:
        raise HTTPException(404)
    return n


@router.get("/wall/tile/{n}")
async def wall_tile(request: Request, n: int, principal: Principal = Depends(require_page("read_data"))) -> Response:
    """One tile alone, full-screen: for a wall of nine separate windows."""
    position = _position(n)
    tiles = await run_in_threadpool(_tiles, request)
    content = await run_in_threadpool(_content, request, principal, tiles, {position: 0})
    return render(request, "wall/wall.html", {**_page_context(request, tiles, content), "single": True})


@router.get("/wall/tile/{n}/content")
async def wall_tile_content(
    request: Request, n: int, view: int = 0, principal: Principal = Depends(require_page("read_data"))
) -> Response:
    """The content of one tile's view (index `view`, wrapping round), swapped in by wall.js."""
    position = _position(n)
    tiles = await run_in_threadpool(_tiles, request)
    content = await run_in_threadpool(_content, request, principal, tiles, {position: max(0, min(view, 999))})
    response = render(request, "wall/_tile.html", {"view": content[position]})
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/wall/heartbeat")
async def wall_heartbeat(request: Request, principal: Principal = Depends(require_page("read_data"))) -> Response:
    """The server's version and the id of this start: a wall reloads itself when the id changes."""
    return JSONResponse(
        {"version": __version__, "started": STARTED, "at": parts(request).clock().isoformat()},
        headers={"Cache-Control": "no-store"},
    )


# --- setup ------------------------------------------------------------------------------------------------------


def _choices(request: Request) -> list[tuple[str, str]]:
    lang = language(request)
    with parts(request).db.reading() as session:
        domains = list(session.scalars(select(Domain).order_by(Domain.sort_order, Domain.code)))
    options = [(kind, translate(f"wall.kind.{kind}", lang)) for kind in service.PLAIN_KINDS]
    options += [
        (f"board:{d.code}", translate("wall.kind.board_of", lang, name=d.name_vi if lang == "vi" else d.name_en))
        for d in domains
    ]
    options.append(("indicator", translate("wall.kind.indicator", lang)))
    return options


def _values_of(tiles: list[dict[str, Any]]) -> dict[str, str]:
    values: dict[str, str] = {}
    for tile in tiles:
        n = tile["position"]
        values[f"t{n}_rotate"] = str(tile["rotate_seconds"])
        for slot, view in enumerate(tile["views"][: service.MAX_VIEWS], start=1):
            values[f"t{n}_v{slot}"] = service.view_choice(view)
            values[f"t{n}_v{slot}_code"] = str(view.get("code", ""))
    return values


def _setup_context(
    request: Request, values: dict[str, str], errors: dict[str, list[str]], notice: str = ""
) -> dict[str, Any]:
    return {
        "values": values,
        "errors": errors,
        "choices": _choices(request),
        "positions": service.POSITIONS,
        "slots": range(1, service.MAX_VIEWS + 1),
        "low": service.MIN_ROTATE,
        "high": service.MAX_ROTATE,
        "notice": notice,
        "saved": request.query_params.get("saved") == "1",
    }


@router.get("/wall/setup")
async def wall_setup(request: Request, principal: Principal = Depends(require_page("handle_alerts"))) -> Response:
    """The form: for each of the nine positions, its views (one, or several in rotation) and the seconds of each."""
    tiles = await run_in_threadpool(_tiles, request)
    context = await run_in_threadpool(_setup_context, request, _values_of(tiles), {})
    return render(request, "wall/setup.html", context)


@router.post("/wall/setup")
async def wall_setup_save(request: Request, principal: Principal = Depends(require_page("handle_alerts"))) -> Response:
    """Save the layout; the form again with what is wrong (422) and what was typed when it cannot be saved."""
    app_parts = parts(request)
    lang = language(request)
    raw = await request.form()
    values: dict[str, str] = {}
    entered = []
    for n in service.POSITIONS:
        choices, codes = [], []
        for slot in range(1, service.MAX_VIEWS + 1):
            choice = form_text(raw.get(f"t{n}_v{slot}"), 80)
            code = form_text(raw.get(f"t{n}_v{slot}_code"), 80)
            values[f"t{n}_v{slot}"], values[f"t{n}_v{slot}_code"] = choice, code
            choices.append(choice)
            codes.append(code if choice == "indicator" else "")
        rotate = form_text(raw.get(f"t{n}_rotate"), 12)
        values[f"t{n}_rotate"] = rotate
        entered.append(service.TileIn(n, choices, codes, rotate))

    if not form_csrf_ok(request, raw):
        context = await run_in_threadpool(_setup_context, request, values, {}, translate("login.csrf", lang))
        return render(request, "wall/setup.html", context, status_code=403)

    actor, moment = Actor.of(principal, client_ip(request)), app_parts.clock()

    def run() -> list[tuple[str, str, dict[str, Any]]]:
        with app_parts.db.writing() as session:
            checked = service.check_tiles(session, entered)
            if checked.errors:
                return checked.errors
            service.update_layout(session, actor, moment, checked.tiles)
            return []

    problems = await run_in_threadpool(run)
    if problems:
        errors: dict[str, list[str]] = {}
        for field_id, key, params in problems:
            errors.setdefault(field_id, []).append(translate(key, lang, **params))
        context = await run_in_threadpool(_setup_context, request, values, errors)
        return render(request, "wall/setup.html", context, status_code=422)
    return RedirectResponse("/wall/setup?saved=1", status_code=303)
