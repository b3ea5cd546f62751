"""The catalog pages: browse and search by subsystem, one indicator's page, editing targets and thresholds.

Everything a user would notice: what is listed and in what order, the words and numbers shown, who may edit,
what an edit keeps (the old version) and records (the audit log), and the clear message when input is wrong.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from cityops.accounts.models import AuditEntry
from cityops.accounts.service import Actor
from cityops.catalog.models import Domain, Indicator, IndicatorVersion
from cityops.catalog.pages import PAGE_SIZE, input_number, parse_number
from cityops.catalog.service import load_catalog
from cityops.clock import FrozenClock
from cityops.db.engine import Database
from cityops.geo.models import Subject
from cityops.i18n import fold, format_moment
from conftest import AgencyKey, catalog_restored, login

RATE = "hcc.ty_le_dung_han"  # higher is better, 0–100 %, targets 98 (2025) and 99 (2026), thresholds 95 / 90
CPI = "ktxh.chi_so_gia_tieu_dung"  # lower is better, thresholds 104 / 105
RECEIVED = "hcc.ho_so_tiep_nhan"  # neutral, no thresholds
RESTRICTED = "attt.su_kien"  # restricted to its owner, Sở Khoa học và Công nghệ


# --- helpers --------------------------------------------------------------------------------------------


def text_of(page: str) -> str:
    """The visible text of a page, tags removed and spaces collapsed, entities decoded."""
    without_tags = re.sub(r"<[^>]+>", " ", re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", page, flags=re.S))
    return " ".join(html.unescape(without_tags).split())


def codes_listed(page: str) -> list[str]:
    return re.findall(r'<tr data-indicator="([^"]+)"', page)


def form_token(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found is not None
    return found[1]


def post_edit(
    client: TestClient,
    code: str,
    *,
    targets: list[tuple[str, str, str]],
    warning: str = "",
    critical: str = "",
    version: str | None = None,
    token: str | None = None,
) -> Any:
    """Send the editing form as a browser would, with the token and version of the page just loaded."""
    page = client.get(f"/catalog/{code}")
    found = re.search(r'name="version" value="(\d+)"', page.text)
    return client.post(
        f"/catalog/{code}",
        data={
            "csrf_token": token if token is not None else form_token(page.text),
            "version": version if version is not None else (found[1] if found else "1"),
            "target_year": [year for year, _, _ in targets],
            "target_value": [value for _, value, _ in targets],
            "target_subject": [subject for _, _, subject in targets],
            "warning": warning,
            "critical": critical,
        },
        follow_redirects=False,
    )


def stored(database: Database, code: str) -> Indicator:
    with database.reading() as session:
        indicator = session.scalar(select(Indicator).where(Indicator.code == code))
        assert indicator is not None
        return indicator


@pytest.fixture
def catalog_kept(database: Database) -> Iterator[None]:
    """Put every indicator's targets, thresholds and version back after a test that edits them."""
    with catalog_restored(database):
        yield


def communes(database: Database, count: int) -> list[tuple[str, str]]:
    with database.reading() as session:
        rows = session.execute(
            select(Subject.code, Subject.name_vi).where(Subject.kind == "commune").order_by(Subject.code).limit(count)
        )
        return [(code, name) for code, name in rows]


def send(client: TestClient, key: AgencyKey, *items: tuple[str, str, str, float]) -> None:
    answer = client.post(
        "/api/v1/observations",
        headers=key.headers,
        json={
            "observations": [
                {"indicator": code, "subject": subject, "period": period, "value": value}
                for code, subject, period, value in items
            ]
        },
    )
    assert answer.status_code == 200 and answer.json()["rejected_count"] == 0, answer.text


# --- numbers as people type them --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "lang", "number"),
    [
        ("98,5", "vi", 98.5),
        ("98.5", "vi", 98.5),
        ("1.234,5", "vi", 1234.5),
        ("1.234", "vi", 1234.0),
        ("1.234.567", "vi", 1234567.0),
        ("1.234.567,25", "vi", 1234567.25),
        ("1234,5", "vi", 1234.5),
        ("1 234,5", "vi", 1234.5),
        ("−2,5", "vi", -2.5),
        ("0.123", "vi", 0.123),
        ("1.234", "en", 1.234),
        ("1,234", "en", 1234.0),
        ("1,234.5", "en", 1234.5),
        ("1.234,5", "en", 1234.5),
        ("98,5", "en", 98.5),
        ("100", "en", 100.0),
    ],
)
def test_numbers_are_read_the_vietnamese_or_the_english_way(typed: str, lang: str, number: float) -> None:
    assert parse_number(typed, lang) == number


@pytest.mark.parametrize("typed", ["", "abc", "1,2,3", "1.23.4", "1.234,5,6", "12e3", "1..2", "+-1", "١٢", "inf", "."])
def test_what_is_not_a_number_is_refused(typed: str) -> None:
    with pytest.raises(ValueError):
        parse_number(typed, "vi")


@pytest.mark.parametrize("value", [98.0, 98.5, 1234567.25, 0.30000000000000004, 1e16, -3.75, 0.0])
def test_a_number_shown_in_a_form_reads_back_the_same(value: float) -> None:
    for lang in ("vi", "en"):
        assert parse_number(input_number(value, lang), lang) == value
    assert input_number(1234.5, "vi") == "1.234,5"


# --- who may see the pages --------------------------------------------------------------------------


def test_anonymous_is_sent_to_log_in(client: TestClient) -> None:
    for path in ("/catalog", f"/catalog/{RATE}"):
        answer = client.get(path, follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"] == f"/login?next={path}"
    posted = client.post(f"/catalog/{RATE}", data={"warning": "1"}, follow_redirects=False)
    assert posted.status_code == 303 and posted.headers["location"] == f"/login?next=/catalog/{RATE}"


def test_a_citizen_may_not_browse_the_catalog(client: TestClient, personas: dict[str, str]) -> None:
    login(client, "citizen")
    assert client.get("/catalog").status_code == 403
    assert client.get(f"/catalog/{RATE}").status_code == 403


def test_the_menu_leads_to_the_catalog(client: TestClient, personas: dict[str, str]) -> None:
    login(client, "leader")
    assert '<a href="/catalog">Danh mục chỉ tiêu</a>' in client.get("/").text
    assert '<a href="/catalog">Indicator catalog</a>' in client.get("/?lang=en").text


# --- the list -------------------------------------------------------------------------------------------


def test_the_nine_subsystems_come_in_their_order_with_every_indicator(
    client: TestClient, personas: dict[str, str], database: Database
) -> None:
    with database.reading() as session:
        order = [name for (name,) in session.execute(select(Domain.name_vi).order_by(Domain.sort_order))]
        expected = [
            code
            for (code,) in session.execute(
                select(Indicator.code).join(Domain).order_by(Domain.sort_order, Indicator.code)
            )
        ]
    assert len(order) == 9
    login(client, "leader")
    seen_domains: list[str] = []
    seen: list[str] = []
    page_number = 1
    while True:
        page = client.get("/catalog", params={"page": page_number})
        assert page.status_code == 200
        listed = codes_listed(page.text)
        assert 0 < len(listed) <= PAGE_SIZE
        seen += listed
        for heading in re.findall(r'<h2 id="domain-[a-z]+-title">([^<]+?) <span', page.text):
            if not seen_domains or seen_domains[-1] != heading:
                seen_domains.append(heading)
        if 'rel="next"' not in page.text:
            break
        page_number += 1
    assert page_number == -(-len(expected) // PAGE_SIZE) > 1  # long enough to be paged
    assert seen == expected  # a leader sees every indicator, restricted ones too, in catalog order
    assert seen_domains == order
    assert "Hiển thị 101–109 trong 109 chỉ tiêu" in text_of(page.text) or len(expected) != 109


def test_a_row_shows_name_code_unit_period_owner_collection_and_latest_value(
    client: TestClient, personas: dict[str, str], hcc_key: AgencyKey
) -> None:
    send(client, hcc_key, (RECEIVED, "40", "2026-10", 12345.5))
    login(client, "leader")
    page = client.get("/catalog", params={"domain": "hcc"})
    row = re.search(rf'<tr data-indicator="{re.escape(RECEIVED)}">(.*?)</tr>', page.text, re.S)
    assert row is not None
    words = text_of(row[1])
    for shown in ("Hồ sơ tiếp nhận", RECEIVED, "hồ sơ", "Hằng tháng", "Trung tâm Phục vụ hành chính công tỉnh Nghệ An"):
        assert shown in words, (shown, words)
    assert "Tự động" in words
    assert "12.345,5 2026-10" in words
    manual = re.search(r'<tr data-indicator="ktxh\.[a-z_]+">(.*?)</tr>', client.get("/catalog?domain=ktxh").text, re.S)
    assert manual is not None and "Thủ công" in text_of(manual[1])
    english = text_of(client.get("/catalog", params={"domain": "hcc", "lang": "en"}).text)
    assert "Dossiers received" in english and "Monthly" in english and "12,345.5" in english
    assert "Automatic" in english and "dossiers" in english


def test_the_domain_filter_keeps_one_subsystem(client: TestClient, personas: dict[str, str]) -> None:
    login(client, "operator")
    page = client.get("/catalog", params={"domain": "yte"})
    listed = codes_listed(page.text)
    assert listed and all(code.startswith("yte.") for code in listed)
    assert re.findall(r'<h2 id="domain-([a-z]+)-title"', page.text) == ["yte"]
    assert '<option value="yte" selected>Y tế</option>' in page.text
    # An unknown subsystem is ignored rather than answered with an error.
    assert len(codes_listed(client.get("/catalog", params={"domain": "khong_co"}).text)) == PAGE_SIZE


@pytest.mark.parametrize("typed", ["đúng hạn", "dung han", "ĐÚNG HẠN", "Dung Han"])
def test_search_finds_vietnamese_names_with_or_without_diacritics(
    client: TestClient, personas: dict[str, str], typed: str
) -> None:
    login(client, "leader")
    page = client.get("/catalog", params={"q": typed})
    listed = codes_listed(page.text)
    assert RATE in listed and "hcc.ho_so_dung_han" in listed
    assert all("dung han" in fold(name) for name in re.findall(r'<td><a href="/catalog/[^"]+">([^<]+)</a>', page.text))
    assert f'value="{html.escape(typed)}"' in page.text  # the search box keeps what was typed


def test_a_search_that_finds_nothing_says_so(client: TestClient, personas: dict[str, str]) -> None:
    login(client, "leader")
    page = client.get("/catalog", params={"q": "không có chỉ tiêu này\x00%_"})
    assert page.status_code == 200
    assert codes_listed(page.text) == []
    assert "Không tìm thấy chỉ tiêu nào khớp với" in text_of(page.text)
    assert client.get("/catalog", params={"page": "999"}).status_code == 200
    assert client.get("/catalog", params={"page": "-1x"}).status_code == 200


def test_restricted_indicators_are_hidden_from_other_agencies(client: TestClient, personas: dict[str, str]) -> None:
    login(client, "officer_b")  # Sở Giáo dục và Đào tạo: not the owner of the security indicators
    listed = codes_listed(client.get("/catalog", params={"domain": "attt"}).text)
    assert RESTRICTED not in listed
    hidden = client.get(f"/catalog/{RESTRICTED}")
    assert hidden.status_code == 404
    assert "Không tìm thấy chỉ tiêu" in hidden.text and "Tỷ lệ" not in hidden.text
    assert client.get(f"/catalog/{RATE}").status_code == 200
    client.cookies.clear()
    login(client, "leader")
    assert client.get(f"/catalog/{RESTRICTED}").status_code == 200


# --- one indicator's page -------------------------------------------------------------------------------


def test_the_indicator_page_shows_its_definition_targets_and_thresholds(
    client: TestClient, personas: dict[str, str], database: Database
) -> None:
    current = stored(database, RATE)  # who loaded the catalog last depends on the tests before this one
    changed = format_moment(current.updated_at, "vi")
    login(client, "leader")
    page = client.get(f"/catalog/{RATE}")
    assert page.status_code == 200
    words = text_of(page.text)
    for shown in (
        "Tỷ lệ hồ sơ giải quyết đúng hạn",
        "Dossiers resolved on time (%)",
        "Tỷ lệ phần trăm hồ sơ giải quyết trước và đúng hạn",
        "Đơn vị tính % (phần trăm)",
        "Kỳ Hằng tháng",
        "Tử số: Hồ sơ giải quyết đúng hạn",
        "Mẫu số: Hồ sơ đã giải quyết",
        "Chiều đánh giá Càng cao càng tốt",
        "Cơ quan chủ quản Trung tâm Phục vụ hành chính công tỉnh Nghệ An",
        "Hệ thống nguồn iGate",
        "Thu thập Tự động",
        "Phạm vi xem Công khai",
        "Quyết định 766/QĐ-TTg",
        "2025 Toàn tỉnh 98%",
        "2026 Toàn tỉnh 99%",
        "Cảnh báo khi giá trị xuống dưới 95%",
        "Nghiêm trọng khi giá trị xuống dưới 90%",
        f"Phiên bản {current.version} · cập nhật bởi {current.updated_by} lúc {changed}",
    ):
        assert shown in words, shown
    assert '<a href="/catalog/hcc.ho_so_dung_han">' in page.text
    assert "Sửa kế hoạch" not in words  # a leader sees no form
    cpi = text_of(client.get(f"/catalog/{CPI}").text)
    assert "Càng thấp càng tốt" in cpi and "Cảnh báo khi giá trị vượt quá 104 điểm" in cpi
    assert "Nghiêm trọng khi giá trị vượt quá 105 điểm" in cpi
    english = text_of(client.get(f"/catalog/{RATE}", params={"lang": "en"}).text)
    assert "Higher is better" in english and "Warning when the value falls below 95%" in english
    assert (
        "Monthly" in english and f"Version {current.version} · updated by {current.updated_by} on {changed}" in english
    )


def test_an_unknown_indicator_is_a_clear_404(client: TestClient, personas: dict[str, str]) -> None:
    login(client, "leader")
    for code in ("khong.co_chi_tieu", "x" * 200, "a%00b"):
        answer = client.get(f"/catalog/{code}")
        assert answer.status_code == 404
        assert "Không tìm thấy chỉ tiêu" in answer.text


def test_latest_values_by_commune_in_a_table_sorted_as_asked(
    client: TestClient, personas: dict[str, str], hcc_key: AgencyKey, database: Database
) -> None:
    (a, name_a), (b, name_b), (c, name_c) = communes(database, 3)
    send(
        client,
        hcc_key,
        (RECEIVED, a, "2026-10", 1234.5),
        (RECEIVED, b, "2026-09", 98.5),
        (RECEIVED, b, "2026-10", 20000),
        (RECEIVED, c, "2026-10", 7),
        (RECEIVED, "40", "2026-10", 99999),
    )
    login(client, "officer_a")

    def table(**params: str) -> list[list[str]]:
        page = client.get(f"/catalog/{RECEIVED}", params=params)
        assert page.status_code == 200
        body = re.search(r'<table class="communes">.*?<tbody>(.*?)</tbody>', page.text, re.S)
        assert body is not None
        return [
            [text_of(cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
            for row in re.findall(r"<tr data-subject=[^>]*>(.*?)</tr>", body[1], re.S)
        ]

    by_name = table()
    assert [row[0] for row in by_name] == sorted([name_a, name_b, name_c], key=fold)
    assert {row[0]: row[1] for row in by_name} == {name_a: "1.234,5", name_b: "20.000", name_c: "7"}
    assert all(row[2] == "2026-10" and row[3] == "27/11/2026 10:00" for row in by_name)  # newest period only
    assert [row[1] for row in table(sort="value", order="desc")] == ["20.000", "1.234,5", "7"]
    assert [row[1] for row in table(sort="value")] == ["7", "1.234,5", "20.000"]
    assert [row[0] for row in table(sort="name", order="desc")] == sorted([name_a, name_b, name_c], key=fold)[::-1]
    page = client.get(f"/catalog/{RECEIVED}", params={"sort": "value", "order": "desc"})
    assert '<th scope="col" class="num" aria-sort="descending">' in page.text
    assert "3 xã, phường có số liệu" in text_of(page.text)
    assert "1,234.5" in client.get(f"/catalog/{RECEIVED}", params={"lang": "en"}).text


def test_the_history_chart_reads_the_series_api_through_data_attributes(
    client: TestClient, personas: dict[str, str], hcc_key: AgencyKey, database: Database
) -> None:
    [(commune, _)] = communes(database, 1)
    send(client, hcc_key, (RATE, "40", "2026-09", 96.25), (RATE, "40", "2026-10", 97.5), (RATE, commune, "2026-10", 1))
    login(client, "leader")
    page = client.get(f"/catalog/{RATE}")
    chart = re.search(r'<div id="history-chart"[^>]*>', page.text, re.S)
    assert chart is not None
    attributes = dict(re.findall(r'(data-[a-z-]+)="([^"]*)"', chart[0]))
    assert attributes["data-target"] == "99.0" and attributes["data-warning"] == "95.0"
    assert attributes["data-critical"] == "90.0" and attributes["data-unit"] == "%"
    series = client.get(html.unescape(attributes["data-series-url"]))
    assert series.status_code == 200
    assert [(item["period"], item["value"]) for item in series.json()["items"]] == [
        ("2026-09", 96.25),
        ("2026-10", 97.5),
    ]
    # No inline script: every script is a file the app serves itself.
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page.text, re.S)
    assert scripts and all('src="/static/' in attrs and not body.strip() for attrs, body in scripts)
    for asset in ("/static/vendor/echarts.min.js", "/static/catalog-chart.js", "/static/catalog.css"):
        assert asset in page.text
        assert client.get(asset).status_code == 200, asset
    assert "onclick" not in page.text and "javascript:" not in page.text


# --- editing targets and thresholds -----------------------------------------------------------------------


@pytest.mark.usefixtures("catalog_kept")
@pytest.mark.parametrize("editor", ["operator", "admin"])
def test_an_operator_or_admin_edits_targets_and_thresholds_as_a_new_version(
    client: TestClient, personas: dict[str, str], database: Database, clock: FrozenClock, editor: str
) -> None:
    first = stored(database, RATE).version  # 1 with the default catalog as loaded
    new = first + 1
    login(client, editor)
    page = client.get(f"/catalog/{RATE}")
    assert "Sửa kế hoạch và ngưỡng cảnh báo" in page.text
    answer = post_edit(
        client,
        RATE,
        targets=[("2025", "98", ""), ("2026", "99,5", ""), ("2027", "99.75", ""), ("", "", "")],
        warning="96,5",
        critical="92",
    )
    assert answer.status_code == 303, text_of(answer.text)
    assert answer.headers["location"] == f"/catalog/{RATE}?saved={new}#main"
    indicator = stored(database, RATE)
    assert indicator.version == new and indicator.updated_by == editor
    assert indicator.targets == [
        {"year": 2025, "value": 98.0, "subject": ""},
        {"year": 2026, "value": 99.5, "subject": ""},
        {"year": 2027, "value": 99.75, "subject": ""},
    ]
    assert indicator.thresholds == {"warning": 96.5, "critical": 92.0}
    with database.reading() as session:
        old = session.scalars(
            select(IndicatorVersion).where(IndicatorVersion.indicator_id == indicator.id).order_by(IndicatorVersion.id)
        ).all()[-1]
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "indicator.update")).one()
    assert old.version == first and old.changed_by == editor and old.changed_at == clock()
    assert old.definition["targets"][1] == {"year": 2026, "value": 99.0, "subject": ""}
    assert old.definition["thresholds"] == {"warning": 95.0, "critical": 90.0}
    assert old.definition["name_vi"] == "Tỷ lệ hồ sơ giải quyết đúng hạn"  # the whole old definition is kept
    assert (entry.actor, entry.entity_type, entry.entity_id) == (editor, "indicator", RATE)
    assert entry.details["version"] == new and entry.details["source"] == "ui"
    assert entry.details["fields"] == ["targets", "thresholds"]
    assert entry.details["before"]["thresholds"] == {"warning": 95.0, "critical": 90.0}
    assert entry.ip

    words = text_of(client.get(answer.headers["location"]).text)
    assert f"Đã lưu. Chỉ tiêu nay ở phiên bản {new}." in words
    assert f"Phiên bản {new} · cập nhật bởi {editor} lúc 27/11/2026 10:00" in words
    assert "2026 Toàn tỉnh 99,5%" in words and "2027 Toàn tỉnh 99,75%" in words
    assert "Cảnh báo khi giá trị xuống dưới 96,5%" in words
    assert f"{first} Được thay bằng phiên bản {new} bởi {editor} lúc 27/11/2026 10:00" in words
    assert "2025: 98; 2026: 99 95 / 90" in words  # the old version's targets and thresholds
    audit_page = client.get("/admin/audit")
    if editor == "admin":
        assert "indicator.update" in audit_page.text and RATE in audit_page.text


@pytest.mark.usefixtures("catalog_kept")
def test_a_target_for_one_commune_and_a_removed_row(
    client: TestClient, personas: dict[str, str], database: Database
) -> None:
    [(commune, name)] = communes(database, 1)
    login(client, "operator")
    answer = post_edit(client, RATE, targets=[("2026", "99", ""), ("2026", "97", commune), ("", "", "")])
    assert answer.status_code == 303
    assert stored(database, RATE).targets == [
        {"year": 2026, "value": 99.0, "subject": ""},
        {"year": 2026, "value": 97.0, "subject": commune},
    ]
    words = text_of(client.get(f"/catalog/{RATE}").text)
    assert f"2026 {name} 97%" in words and "2025 Toàn tỉnh" not in words


@pytest.mark.usefixtures("catalog_kept")
@pytest.mark.parametrize("persona", ["leader", "officer_a", "officer_b", "citizen"])
def test_other_roles_see_no_form_and_may_not_post(
    client: TestClient, personas: dict[str, str], database: Database, persona: str
) -> None:
    first = stored(database, RATE).version
    login(client, persona)
    page = client.get(f"/catalog/{RATE}")
    assert "Sửa kế hoạch" not in page.text and 'name="target_year"' not in page.text
    client.get("/login")  # a CSRF cookie and token, as a forged form would carry
    token = form_token(client.get("/login").text)
    answer = client.post(
        f"/catalog/{RATE}",
        data={"csrf_token": token, "version": first, "target_year": "2026", "target_value": "1", "warning": "1"},
        follow_redirects=False,
    )
    assert answer.status_code == 403
    assert stored(database, RATE).version == first


@pytest.mark.usefixtures("catalog_kept")
def test_a_post_without_the_form_token_changes_nothing(
    client: TestClient, personas: dict[str, str], database: Database
) -> None:
    before = stored(database, RATE)
    login(client, "operator")
    answer = post_edit(client, RATE, targets=[("2026", "50", "")], token="forged")
    assert answer.status_code == 403
    assert "Phiên biểu mẫu đã hết hạn" in text_of(answer.text)
    assert 'value="50"' in answer.text  # what was typed is still there to send again
    after = stored(database, RATE)
    assert (after.version, after.targets) == (before.version, before.targets)


@pytest.mark.usefixtures("catalog_kept")
@pytest.mark.parametrize(
    ("code", "targets", "warning", "critical", "field", "message"),
    [
        (RATE, [("2026", "99", "")], "90", "95", "threshold-warning", "ngưỡng cảnh báo (90%) không được nhỏ hơn"),
        (
            CPI,
            [("2026", "104,5", "")],
            "106",
            "105",
            "threshold-warning",
            "ngưỡng cảnh báo (106 điểm) không được lớn hơn",
        ),
        (RECEIVED, [], "10", "", "threshold-warning", "không đặt được ngưỡng"),
        (RATE, [("1999", "99", "")], "", "", "target-1-year", "Năm phải là số nguyên từ 2000 đến 2100."),
        (RATE, [("năm", "99", "")], "", "", "target-1-year", "Năm phải là số nguyên từ 2000 đến 2100."),
        (RATE, [("", "99", "")], "", "", "target-1-year", "Nhập năm của chỉ tiêu kế hoạch."),
        (RATE, [("2026", "", "")], "", "", "target-1-value", "Nhập giá trị kế hoạch."),
        (RATE, [("2026", "chín mươi", "")], "", "", "target-1-value", "“chín mươi” không phải là số."),
        (
            RATE,
            [("2026", "100,5", "")],
            "",
            "",
            "target-1-value",
            "100,5% lớn hơn mức cao nhất cho phép của chỉ tiêu (100%)",
        ),
        (RATE, [("2026", "-1", "")], "", "", "target-1-value", "-1% nhỏ hơn mức thấp nhất cho phép của chỉ tiêu (0%)"),
        (RATE, [("2026", "99", ""), ("2026", "98", "")], "", "", "target-2-year", "đã có chỉ tiêu kế hoạch ở dòng 1"),
        (RATE, [("2026", "99", "99999")], "", "", "target-1-subject", "Không có đơn vị hành chính"),
        (RATE, [], "1.2.3", "", "threshold-warning", "“1.2.3” không phải là số."),
    ],
)
def test_wrong_entries_are_refused_with_a_clear_message(
    client: TestClient,
    personas: dict[str, str],
    database: Database,
    code: str,
    targets: list[tuple[str, str, str]],
    warning: str,
    critical: str,
    field: str,
    message: str,
) -> None:
    before = stored(database, code)
    login(client, "operator")
    answer = post_edit(client, code, targets=targets, warning=warning, critical=critical)
    assert answer.status_code == 422
    assert message in text_of(answer.text), text_of(answer.text)
    assert f'id="{field}"' in answer.text
    assert re.search(rf'id="{field}"[^>]*aria-invalid="true"', answer.text, re.S), field
    assert f'href="#{field}"' in answer.text  # the summary leads to the field
    after = stored(database, code)
    assert (after.version, after.targets, after.thresholds) == (before.version, before.targets, before.thresholds)


@pytest.mark.usefixtures("catalog_kept")
def test_messages_are_in_english_for_an_english_reader(client: TestClient, personas: dict[str, str]) -> None:
    login(client, "operator")
    client.get("/catalog", params={"lang": "en"})
    answer = post_edit(client, RATE, targets=[("2026", "ninety", "")], warning="90", critical="95")
    assert answer.status_code == 422
    words = text_of(answer.text)
    assert "“ninety” is not a number." in words
    # the thresholds are checked once the numbers read; here the first problem is enough to stop
    answer = post_edit(client, RATE, targets=[("2026", "99.5", "")], warning="90", critical="95")
    assert "the warning threshold (90%) may not be below the critical one (95%)" in text_of(answer.text)


@pytest.mark.usefixtures("catalog_kept")
def test_saving_without_a_change_makes_no_version(
    client: TestClient, personas: dict[str, str], database: Database
) -> None:
    first = stored(database, RATE).version
    login(client, "operator")
    page = client.get(f"/catalog/{RATE}")
    years = re.findall(r'name="target_year" value="([^"]*)"', page.text)
    values = re.findall(r'name="target_value" value="([^"]*)"', page.text)
    warning = re.search(r'name="warning" value="([^"]*)"', page.text)
    critical = re.search(r'name="critical" value="([^"]*)"', page.text)
    assert years[:2] == ["2025", "2026"] and values[:2] == ["98", "99"] and warning and critical
    answer = post_edit(
        client,
        RATE,
        targets=[(year, value, "") for year, value in zip(years, values, strict=True)],
        warning=warning[1],
        critical=critical[1],
    )
    assert answer.status_code == 303 and answer.headers["location"].endswith("?unchanged=1#main")
    assert stored(database, RATE).version == first
    assert "Không có thay đổi nào" in text_of(client.get(answer.headers["location"]).text)


@pytest.mark.usefixtures("catalog_kept")
def test_two_people_editing_at_once_do_not_overwrite_each_other(
    client: TestClient, personas: dict[str, str], database: Database
) -> None:
    seen = str(stored(database, RATE).version)  # both pages were loaded at this version
    login(client, "operator")
    first = post_edit(client, RATE, targets=[("2026", "99,5", "")], warning="95", critical="90", version=seen)
    assert first.status_code == 303
    late = post_edit(client, RATE, targets=[("2026", "97", "")], warning="95", critical="90", version=seen)
    assert late.status_code == 409
    words = text_of(late.text)
    now = int(seen) + 1
    assert f"Chưa lưu: chỉ tiêu vừa được operator sửa lúc 27/11/2026 10:00 (nay là phiên bản {now})" in words
    assert f'name="version" value="{now}"' in late.text and 'value="97"' in late.text
    assert stored(database, RATE).targets == [{"year": 2026, "value": 99.5, "subject": ""}]


@pytest.mark.usefixtures("catalog_kept")
def test_a_later_catalog_load_overwrites_an_edit_but_keeps_it_as_a_version(
    client: TestClient, personas: dict[str, str], database: Database, clock: FrozenClock
) -> None:
    """What the edit form warns about: the files win on `cityops catalog load`; the edit stays in history."""
    first = stored(database, RATE).version
    login(client, "operator")
    assert post_edit(client, RATE, targets=[("2026", "99,5", "")], warning="96", critical="91").status_code == 303
    assert "cityops catalog load" in text_of(client.get(f"/catalog/{RATE}").text)
    with database.writing() as session:
        report = load_catalog(session, Actor("system"), clock())
    assert report.indicators_updated == 1
    indicator = stored(database, RATE)
    assert indicator.version == first + 2 and indicator.thresholds == {"warning": 95.0, "critical": 90.0}
    with database.reading() as session:
        kept = session.scalars(
            select(IndicatorVersion).where(
                IndicatorVersion.indicator_id == indicator.id, IndicatorVersion.version == first + 1
            )
        ).one()
    assert kept.definition["thresholds"] == {"warning": 96.0, "critical": 91.0}
