"""Real-browser tests of the web shell: Debian's Chromium, driven by Playwright, against the app under uvicorn.

One browser and one live server per module, on the SQLite backend only (the pages do not depend on the
database engine; the API tests run on both). Every test fails when the page logs a console error, a script
throws, a request fails, a response is 400 or more without the test expecting it, or anything is asked of a
host other than 127.0.0.1 (no CDN, no font service: the app serves everything itself).
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import uvicorn
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Request,
    Response,
    Route,
    WebError,
    expect,
    sync_playwright,
)

from cityops.accounts import service as accounts
from cityops.clock import FrozenClock
from cityops.web.app import create_app
from conftest import PASSWORD, PERSONAS, START, AgencyKey, Backend, _clean, make_key, service_missing

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
HCC_INDICATORS = ["hcc.ho_so_tiep_nhan", "hcc.ho_so_dung_han", "hcc.ty_le_dung_han"]
REFRESH_WAIT_MS = 15_000  # the home table polls every 10 s


# --- the live server --------------------------------------------------------------------------------


@dataclass
class LiveServer:
    """The app under uvicorn on 127.0.0.1, with its users and an agency key."""

    url: str
    backend: Backend
    key: AgencyKey


@pytest.fixture(scope="module")
def live_server(sqlite_backend: Backend) -> Iterator[LiveServer]:
    """The real app on a free port in a background thread; users for every persona and the iGate key."""
    backend = sqlite_backend
    clock = FrozenClock(START)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server: uvicorn.Server | None = None
    thread: threading.Thread | None = None
    try:
        with backend.database.writing() as session:
            for username, (role, agency) in PERSONAS.items():
                accounts.create_user(
                    session,
                    accounts.SYSTEM,
                    clock(),
                    username=username,
                    password=PASSWORD,
                    role=role,
                    agency_code=agency,
                )
        key = make_key(
            backend.database, clock(), agency="trung_tam_phuc_vu_hcc", feed="hcc_igate", indicators=HCC_INDICATORS
        )
        app = create_app(backend.settings, clock=clock, database=backend.database)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=5)
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="uvicorn", daemon=True)
        thread.start()
        deadline = time.monotonic() + 15
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                pytest.fail("the live server did not start")
            time.sleep(0.02)
        yield LiveServer(f"http://127.0.0.1:{port}", backend, key)
    finally:
        if server is not None and thread is not None:
            server.should_exit = True
            thread.join(timeout=15)
            assert not thread.is_alive(), "the live server did not stop"
        sock.close()
        _clean(backend)


# --- the browser and what it must not do --------------------------------------------------------------


@dataclass
class Watch:
    """Everything that went wrong in the browser during one test."""

    problems: list[str] = field(default_factory=list)
    expected: set[tuple[int, str]] = field(default_factory=set)
    active: bool = True

    def expect_status(self, status: int, path: str) -> None:
        """Let a response with this status on this path through: the test asserts on it."""
        self.expected.add((status, path))

    def attach(self, context: BrowserContext) -> None:
        context.route("**/*", self._route)
        context.on("console", self._console)
        context.on("weberror", self._web_error)
        context.on("requestfailed", self._request_failed)
        context.on("response", self._response)

    def _add(self, problem: str) -> None:
        if self.active:
            self.problems.append(problem)

    def _route(self, route: Route) -> None:
        url = route.request.url
        if urlsplit(url).hostname != "127.0.0.1":
            self._add(f"request to another host: {url}")
            route.abort("blockedbyclient")
            return
        route.continue_()

    def _console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        url = message.location.get("url", "")
        status = re.match(r"Failed to load resource: the server responded with a status of (\d+)", message.text)
        if status and (int(status[1]), urlsplit(url).path) in self.expected:
            return  # Chromium's own note about a response the test expects
        self._add(f"console error: {message.text} ({url})")

    def _web_error(self, error: WebError) -> None:
        self._add(f"uncaught error: {error.error}")

    def _request_failed(self, request: Request) -> None:
        if request.failure == "net::ERR_ABORTED":
            # Cancelled by the browser itself: a favicon or a table refresh cut short by the next page.
            # A refused or broken connection, a blocked host or an error answer is reported otherwise.
            return
        self._add(f"request failed: {request.method} {request.url}: {request.failure}")

    def _response(self, response: Response) -> None:
        if response.status >= 400 and (response.status, urlsplit(response.url).path) not in self.expected:
            self._add(f"HTTP {response.status}: {response.request.method} {response.url}")

    def finish(self) -> list[str]:
        """Stop watching (closing pages aborts their requests) and say what went wrong."""
        self.active = False
        return list(self.problems)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless; never a downloaded browser."""
    if not os.path.exists(CHROMIUM):
        service_missing(f"Chromium at {CHROMIUM}", "install it with `make .venv/.debian` (Debian package chromium)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def _new_context(
    browser: Browser, server: LiveServer, watch: Watch, *, phone: bool = False, state: Any = None
) -> BrowserContext:
    context = browser.new_context(
        base_url=server.url,
        viewport=PHONE if phone else DESKTOP,
        is_mobile=phone,
        has_touch=phone,
        storage_state=state,
        timezone_id="Asia/Ho_Chi_Minh",
    )
    context.set_default_timeout(10_000)
    watch.attach(context)
    return context


@pytest.fixture
def watch() -> Watch:
    return Watch()


@pytest.fixture
def open_page(browser: Browser, live_server: LiveServer, watch: Watch) -> Iterator[Callable[..., Page]]:
    """Open a page in a fresh context (desktop or phone, anonymous or with a saved log-in); check it at the end."""
    contexts: list[BrowserContext] = []

    def opener(*, phone: bool = False, state: Any = None) -> Page:
        context = _new_context(browser, live_server, watch, phone=phone, state=state)
        contexts.append(context)
        return context.new_page()

    yield opener
    problems = watch.finish()
    for context in contexts:
        context.close()
    assert not problems, "the browser saw problems:\n" + "\n".join(problems)


@pytest.fixture
def page(open_page: Callable[..., Page]) -> Page:
    """An anonymous desktop page (1366×768)."""
    return open_page()


def log_in(page: Page, username: str, password: str = PASSWORD) -> None:
    """Fill in and send the Vietnamese log-in form."""
    page.goto("/login")
    page.get_by_label("Tên đăng nhập", exact=True).fill(username)
    page.get_by_label("Mật khẩu", exact=True).fill(password)
    page.get_by_role("button", name="Đăng nhập", exact=True).click()


@pytest.fixture(scope="module")
def leader_state(browser: Browser, live_server: LiveServer) -> Any:
    """The cookies of a leader logged in through the form, for tests that only need to be logged in."""
    watch = Watch()
    context = _new_context(browser, live_server, watch)
    page = context.new_page()
    log_in(page, "leader")
    expect(page).to_have_url(f"{live_server.url}/")
    state = context.storage_state()
    problems = watch.finish()
    context.close()
    assert not problems, "the browser saw problems while logging in:\n" + "\n".join(problems)
    return state


def wait_for_fonts(page: Page) -> None:
    page.evaluate("document.fonts.ready.then(() => true)")


# --- the tests -----------------------------------------------------------------------------------------


def test_leader_sees_live_values_in_vietnamese_then_english(page: Page, live_server: LiveServer) -> None:
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login\?next=/$"))
    log_in(page, "leader")
    expect(page).to_have_url(f"{live_server.url}/")
    expect(page.locator("html")).to_have_attribute("lang", "vi")
    expect(page.locator("header .brand")).to_have_text("Trung tâm Giám sát, Điều hành Thông minh")
    expect(
        page.get_by_role("heading", level=2, name="Các chỉ tiêu và giá trị mới nhất")
    ).to_be_visible()  # the table, below the overview
    expect(page.locator("header nav")).to_contain_text("leader · Lãnh đạo")
    expect(page.locator("thead")).to_contain_text("Giá trị mới nhất")
    received = page.locator('tr[data-indicator="hcc.ho_so_tiep_nhan"]')
    rate = page.locator('tr[data-indicator="hcc.ty_le_dung_han"]')
    expect(received).to_contain_text("Hồ sơ tiếp nhận")
    expect(received).to_contain_text("Hành chính công")
    expect(rate).to_contain_text("Tỷ lệ hồ sơ giải quyết đúng hạn")
    expect(received.locator("td.value")).to_have_text("Chưa có dữ liệu")

    # A marker on the window survives only if the table is refreshed in place, not by reloading the page.
    page.evaluate("window.__notReloaded = true")
    answer = httpx.post(
        f"{live_server.url}/api/v1/observations",
        headers=live_server.key.headers,
        json={
            "observations": [
                {"indicator": "hcc.ho_so_tiep_nhan", "subject": "40", "period": "2026-10", "value": 12345},
                {"indicator": "hcc.ty_le_dung_han", "subject": "40", "period": "2026-10", "value": 12.5},
            ]
        },
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["accepted"] == 2, answer.text
    expect(received.locator("td.value")).to_have_text("12.345", timeout=REFRESH_WAIT_MS)
    expect(rate.locator("td.value")).to_have_text("12,5")
    expect(received).to_contain_text("2026-10")
    assert page.evaluate("window.__notReloaded === true"), "the page reloaded instead of refreshing the table"

    switch = page.locator("#lang-switch")
    expect(switch).to_have_text("English")
    switch.click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("header .brand")).to_have_text("Intelligent Operations Center")
    expect(
        page.get_by_role("heading", level=2, name="Indicators and their latest values")
    ).to_be_visible()  # the table, below the overview
    expect(page.locator("header nav")).to_contain_text("leader · Leader")
    expect(received).to_contain_text("Dossiers received")
    expect(received).to_contain_text("Public administrative services")
    expect(received.locator("td.value")).to_have_text("12,345")
    expect(rate.locator("td.value")).to_have_text("12.5")
    expect(page.locator("#lang-switch")).to_have_text("Tiếng Việt")
    # The table's own refresh (no ?lang= on its URL) keeps the chosen language from the cookie.
    partial = page.request.get("/partials/home-values")
    assert partial.status == 200
    assert "Dossiers received" in partial.text() and "12,345" in partial.text()

    session = next(c for c in page.context.cookies() if c["name"] == "cityops_session")
    page.get_by_role("button", name="Log out", exact=True).click()
    expect(page).to_have_url(f"{live_server.url}/login")
    expect(page.get_by_role("heading", level=1)).to_have_text("Log in")
    expect(page.get_by_label("Username", exact=True)).to_be_visible()
    assert not [c for c in page.context.cookies() if c["name"] == "cityops_session"]
    # The session is closed on the server too, not only forgotten by the browser.
    stale = httpx.get(f"{live_server.url}/", cookies={session["name"]: session["value"]}, timeout=10)
    assert stale.status_code == 303 and stale.headers["location"].startswith("/login")


def focused(page: Page) -> str:
    """Which element has the focus: its id, its class, or the button's text."""
    return str(
        page.evaluate(
            "(() => { const e = document.activeElement;"
            " if (e.tagName === 'BUTTON') return 'button:' + e.textContent.trim();"
            " return e.id || e.className || e.tagName.toLowerCase(); })()"
        )
    )


def test_wrong_password_with_the_keyboard(page: Page, watch: Watch) -> None:
    watch.expect_status(401, "/login")
    page.goto("/login")
    skip = page.locator("a.skip")
    expect(skip).to_have_attribute("href", "#main")
    expect(skip).to_have_text("Bỏ qua đến nội dung chính")
    expect(page.locator("#username")).to_be_focused()  # autofocus

    # One full round of Tab from the user name: every control, in reading order, the skip link first.
    stops = []
    for _ in range(8):
        page.keyboard.press("Tab")
        stops.append(focused(page))
    known = {"password", "button:Đăng nhập", "skip", "brand", "lang-switch", "username"}
    assert [stop for stop in stops if stop in known] == [
        "password",
        "button:Đăng nhập",
        "skip",
        "brand",
        "lang-switch",
        "username",
        "password",
    ], stops

    # The skip link shows itself when focused and leads to the content.
    for _ in range(4):  # back from the password: user name, language, brand, skip link
        page.keyboard.press("Shift+Tab")
    assert focused(page) == "skip"
    box = skip.bounding_box()
    assert box is not None and box["x"] >= 0 and box["y"] >= 0, box
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/login#main$"))

    # Log in with the keyboard alone, with a wrong password.
    page.goto("/login")
    expect(page.locator("#username")).to_be_focused()
    page.keyboard.type("operator")
    page.keyboard.press("Tab")
    page.keyboard.type("sai-mật-khẩu")
    page.keyboard.press("Tab")
    assert focused(page) == "button:Đăng nhập"
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid", "the focused button shows no focus ring"
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.keyboard.press("Enter")
    assert posted.value.status == 401
    alert = page.get_by_role("alert")
    expect(alert).to_have_text("Tên đăng nhập hoặc mật khẩu không đúng.")
    expect(page.locator("html")).to_have_attribute("lang", "vi")
    expect(page).to_have_url(re.compile(r"/login$"))
    assert not [c for c in page.context.cookies() if c["name"] == "cityops_session"]
    expect(page.get_by_label("Mật khẩu", exact=True)).to_have_value("")


CONTRAST_SCRIPT = (Path(__file__).parent / "contrast.js").read_text()


def readable_contrast(page: Page) -> None:
    """Every visible text meets WCAG AA contrast against what is behind it: 4.5:1, or 3:1 for large text (24 px, or
    bold 18.66 px). Charts, maps' markers and decorative parts are left out (contrast.js)."""
    too_low = page.evaluate(CONTRAST_SCRIPT)
    assert not too_low, "text below WCAG AA contrast:\n" + "\n".join(too_low[:20])


def no_sideways_scroll(page: Page) -> None:
    # clientWidth is the layout viewport (the device width on a phone); a phone browser would zoom out to
    # show anything wider, so innerWidth grows with the content and cannot tell.
    content, screen = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert content <= screen, f"the page is wider than the screen: {content} > {screen} px"


def test_screenshots_desktop_and_phone(open_page: Callable[..., Page], leader_state: Any) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    for phone, size in ((False, "1366x768"), (True, "390x844")):
        page = open_page(phone=phone)
        page.goto("/login")
        expect(page.get_by_role("heading", level=1)).to_have_text("Đăng nhập")
        wait_for_fonts(page)
        no_sideways_scroll(page)
        page.screenshot(path=ARTIFACTS / f"login-{size}.png")

        page = open_page(phone=phone, state=leader_state)
        page.goto("/")
        received = page.locator('tr[data-indicator="hcc.ho_so_tiep_nhan"]')
        expect(received).to_contain_text("Hồ sơ tiếp nhận")
        domain = received.locator("td").first
        if phone:
            expect(domain).to_be_hidden()  # the subsystem and update columns give way on a phone
        else:
            expect(domain).to_be_visible()
        wait_for_fonts(page)
        no_sideways_scroll(page)
        page.screenshot(path=ARTIFACTS / f"home-{size}.png")
    for name in ("login-1366x768", "login-390x844", "home-1366x768", "home-390x844"):
        assert (ARTIFACTS / f"{name}.png").stat().st_size > 10_000, name


def test_pages_use_the_served_noto_sans(open_page: Callable[..., Page], leader_state: Any) -> None:
    page = open_page(state=leader_state)
    fonts: list[str] = []
    page.on("response", lambda r: fonts.append(f"{r.status} {urlsplit(r.url).path}") if ".woff2" in r.url else None)
    page.goto("/")
    expect(page.locator("header .brand")).to_have_text("Trung tâm Giám sát, Điều hành Thông minh")
    wait_for_fonts(page)
    family = page.evaluate("getComputedStyle(document.body).fontFamily")
    assert family.replace('"', "").startswith("Noto Sans,"), family
    assert page.evaluate("document.fonts.check('16px \"Noto Sans\"', 'Tiếng Việt')")
    assert page.evaluate("document.fonts.check('bold 16px \"Noto Sans\"', 'Trung tâm Giám sát, Điều hành')")
    loaded = page.evaluate(
        "[...document.fonts].filter(f => f.family.replace(/\"/g, '') === 'Noto Sans' && f.status === 'loaded')"
        ".map(f => f.weight + ' ' + f.unicodeRange)"
    )
    # The Vietnamese subset (ạ…ỹ) is the one that matters here, in the regular and the bold weight.
    for weight in ("400", "700"):
        assert any(face.startswith(weight) and "U+1EA0-1EF9" in face for face in loaded), loaded
    assert "200 /static/vendor/noto-sans-vietnamese-400.woff2" in fonts, fonts
    assert "200 /static/vendor/noto-sans-vietnamese-700.woff2" in fonts, fonts


def test_the_watch_reports_what_it_must(page: Page, watch: Watch) -> None:
    page.goto("/login")
    page.evaluate("fetch('http://192.0.2.1/font.woff2').catch(() => null)")
    assert page.evaluate("fetch('/static/missing.css').then(r => r.status)") == 404
    page.evaluate("console.error('a console error')")
    page.evaluate("setTimeout(() => { throw new Error('an uncaught error') }, 0)")
    page.wait_for_timeout(200)
    seen = "\n".join(watch.problems)
    # The page's Content-Security-Policy stops the request before it leaves the browser, and says so.
    assert "http://192.0.2.1/font.woff2' violates the following Content Security Policy" in seen, seen
    assert "HTTP 404: GET" in seen and "/static/missing.css" in seen, seen
    assert "console error: a console error" in seen, seen
    assert "uncaught error: an uncaught error" in seen, seen
    watch.problems.clear()  # seen and checked: the fixture must not fail the test for them
