"""Catalog export (JSON, CSV, XLSX) and import back: round trips, dry runs, versions, rejections, who may."""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import Workbook, load_workbook
from sqlalchemy import delete, func, select

from cityops.accounts.models import AuditEntry
from cityops.accounts.service import Actor
from cityops.catalog.exchange import (
    FIXED_COLUMNS,
    INDICATOR_SHEET,
    MAX_IMPORT_BYTES,
    README_SHEET,
    REASON_DEFAULTS,
    parse_number,
    plain_number,
)
from cityops.catalog.models import Indicator, IndicatorVersion
from cityops.catalog.schemas import DomainFile, IndicatorDef
from cityops.catalog.service import load_catalog, read_catalog
from cityops.clock import FrozenClock
from cityops.db.engine import Database
from cityops.i18n import both, catalog
from conftest import AgencyKey, Backend, csrf_header, login
from test_cli import cityops, ok

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "catalog.md"
KEY_IN_HEADER = re.compile(r"\(([a-z0-9_]+)\)\s*$")
TARGETED = "hcc.ty_le_dung_han"  # targets 2025 = 98, 2026 = 99; warning 95, critical 90; 0–100 %


@pytest.fixture
def restore_catalog(database: Database, clock: FrozenClock) -> Iterator[None]:
    """Put the default catalog back after a test that imports into it."""
    yield
    defaults = {indicator.code for file in read_catalog().domains for indicator in file.indicators}
    with database.writing() as session:
        session.execute(IndicatorVersion.__table__.delete())
        session.execute(delete(Indicator).where(Indicator.code.not_in(defaults)))
        load_catalog(session, Actor("test"), clock())
        session.execute(IndicatorVersion.__table__.delete())
        session.execute(Indicator.__table__.update().values(version=1))


def _indicator(database: Database, code: str) -> Indicator:
    with database.reading() as session:
        indicator = session.scalar(select(Indicator).where(Indicator.code == code))
        assert indicator is not None
        session.expunge(indicator)
        return indicator


def _audit(database: Database, action: str) -> list[AuditEntry]:
    with database.reading() as session:
        entries = list(session.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)))
        session.expunge_all()
        return entries


def _count(database: Database, model: Any) -> int:
    with database.reading() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def export(client: TestClient, fmt: str) -> bytes:
    answer = client.get(f"/api/v1/catalog/export?format={fmt}")
    assert answer.status_code == 200, answer.text
    return answer.content


def upload(client: TestClient, app: Any, content: bytes, name: str, *, dry_run: bool = False, mime: str = "") -> Any:
    return client.post(
        f"/api/v1/catalog/import?dry_run={str(dry_run).lower()}",
        files={"file": (name, content, mime or "application/octet-stream")},
        headers=csrf_header(client, app),
    )


def _csv_rows(content: bytes) -> tuple[list[str], list[list[str]]]:
    rows = list(csv.reader(io.StringIO(content.decode("utf-8-sig"), newline="")))
    keys = [KEY_IN_HEADER.search(header)[1] for header in rows[0]]  # type: ignore[index]
    return keys, rows[1:]


def _csv_bytes(header: list[str], rows: list[list[str]], delimiter: str = ",") -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=delimiter)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8-sig")


def _set_xlsx(content: bytes, code: str, key: str, value: Any) -> bytes:
    """Change one cell of the indicator sheet with openpyxl, as a person would in Excel."""
    workbook = load_workbook(io.BytesIO(content))
    sheet = workbook[INDICATOR_SHEET]
    keys = [KEY_IN_HEADER.search(str(cell.value))[1] for cell in sheet[2]]  # type: ignore[index]
    for row in sheet.iter_rows(min_row=3):
        if row[keys.index("code")].value == code:
            row[keys.index(key)].value = value
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _xlsx_row_of(content: bytes, code: str) -> int:
    sheet = load_workbook(io.BytesIO(content))[INDICATOR_SHEET]
    return next(row[1].row for row in sheet.iter_rows(min_row=3) if row[1].value == code)


# --- numbers as people write them ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("98,5", 98.5),
        ("98.5", 98.5),
        ("1.234.567,5", 1234567.5),
        ("1,234,567.5", 1234567.5),
        ("1 234 567", 1234567.0),
        ("-20", -20.0),
        ("2,5e3", 2500.0),
        ("0,00001", 0.00001),
    ],
)
def test_vietnamese_and_english_numbers_are_read(text: str, value: float) -> None:
    assert parse_number(text) == value


@pytest.mark.parametrize("text", ["", "abc", "98,5%", "1,2,3.4.5", "nan", "inf", "1e999", "--1"])
def test_what_is_not_a_number_is_refused(text: str) -> None:
    assert parse_number(text) is None


def test_numbers_are_written_plainly_and_read_back_exactly() -> None:
    for value in (98.0, 98.5, 0.1 + 0.2, 1e-5, 123456789.123, 1e20, -0.5):
        assert parse_number(plain_number(value)) == value
    assert plain_number(98.0) == "98" and plain_number(1e-5) == "0.00001"


# --- export ---------------------------------------------------------------------------------------------


def test_json_export_has_the_shape_of_the_data_files_and_every_field(
    client: TestClient, personas: dict[str, str]
) -> None:
    login(client, "admin")
    answer = client.get("/api/v1/catalog/export?format=json")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/json")
    assert answer.headers["content-disposition"] == 'attachment; filename="cityops-catalog-2026-11-27.json"'
    document = answer.json()
    assert set(document) == {"agencies", "units", "domains"}
    files = read_catalog()
    assert {agency["code"] for agency in document["agencies"]} == {agency.code for agency in files.agencies}
    assert {unit["code"] for unit in document["units"]} == set(files.units)
    assert [entry["domain"]["code"] for entry in document["domains"]][:2] == ["ktxh", "hcc"]
    for entry in document["domains"]:
        DomainFile.model_validate(entry)  # each domain entry is exactly a catalog data file
        for indicator in entry["indicators"]:
            assert list(indicator) == list(IndicatorDef.model_fields)
    by_code = {i["code"]: i for entry in document["domains"] for i in entry["indicators"]}
    assert len(by_code) == sum(len(file.indicators) for file in files.domains)
    assert by_code[TARGETED]["targets"] == [
        {"year": 2025, "value": 98.0, "subject": ""},
        {"year": 2026, "value": 99.0, "subject": ""},
    ]
    assert by_code[TARGETED]["thresholds"] == {"warning": 95.0, "critical": 90.0}
    assert by_code[TARGETED]["owner"] == "trung_tam_phuc_vu_hcc"
    assert "Tỷ lệ" in answer.text  # Vietnamese letters as they are, not \\u escapes


def test_csv_export_is_utf8_with_bom_one_row_per_indicator(client: TestClient, personas: dict[str, str]) -> None:
    login(client, "operator")
    answer = client.get("/api/v1/catalog/export?format=csv")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert answer.headers["content-disposition"] == 'attachment; filename="cityops-catalog-2026-11-27.csv"'
    assert answer.content.startswith(b"\xef\xbb\xbf")
    keys, rows = _csv_rows(answer.content)
    assert answer.content.decode("utf-8-sig").startswith("Lĩnh vực / Domain (domain),Mã chỉ tiêu / Indicator code")
    assert set(FIXED_COLUMNS) <= set(keys)
    assert [key for key in keys if key.startswith("target_")] == [f"target_{year}" for year in range(2025, 2031)]
    assert len(rows) == sum(len(file.indicators) for file in read_catalog().domains)
    row = dict(zip(keys, next(row for row in rows if row[keys.index("code")] == TARGETED), strict=True))
    assert row["target_2025"] == "98" and row["target_2026"] == "99" and row["target_2027"] == ""
    assert row["threshold_warning"] == "95" and row["min"] == "0" and row["max"] == "100"
    assert row["name_vi"] == "Tỷ lệ hồ sơ giải quyết đúng hạn"
    received = next(row for row in rows if row[keys.index("code")] == "hcc.ho_so_tiep_nhan")
    assert received[keys.index("dimensions")] == "kenh; linh_vuc; co_quan"


def test_xlsx_export_is_a_bilingual_workbook_with_numbers_as_numbers(
    client: TestClient, personas: dict[str, str]
) -> None:
    login(client, "leader")
    answer = client.get("/api/v1/catalog/export?format=xlsx")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == XLSX
    assert answer.headers["content-disposition"] == 'attachment; filename="cityops-catalog-2026-11-27.xlsx"'
    workbook = load_workbook(io.BytesIO(answer.content))
    assert workbook.sheetnames[:2] == [INDICATOR_SHEET, README_SHEET]
    sheet = workbook[INDICATOR_SHEET]
    assert sheet.freeze_panes == "C3"
    assert sheet["A1"].value == "Lĩnh vực" and sheet["A2"].value == "Domain (domain)"
    assert sheet["B1"].value == "Mã chỉ tiêu" and sheet["B2"].value == "Indicator code (code)"
    assert sheet["A1"].font.bold
    assert sheet.column_dimensions["B"].width == 34 and sheet.column_dimensions["D"].width == 44
    keys = [KEY_IN_HEADER.search(str(cell.value))[1] for cell in sheet[2]]  # type: ignore[index]
    row = next(row for row in sheet.iter_rows(min_row=3, values_only=True) if row[1] == TARGETED)
    assert row[keys.index("target_2026")] == 99 and isinstance(row[keys.index("target_2026")], int | float)
    assert isinstance(row[keys.index("monitored_item")], int)
    assert row[keys.index("threshold_critical")] == 90
    readme = [str(cell) for line in workbook[README_SHEET].iter_rows(values_only=True) for cell in line if cell]
    text = "\n".join(readme)
    assert "Danh mục chỉ tiêu cityops" in text and "cityops indicator catalog" in text
    for key in keys:
        assert key in readme, key  # every column explained
    assert "không bị xóa" in text and "never deleted" in text
    for title in ("Lĩnh vực", "Đơn vị tính", "Cơ quan"):
        assert title in workbook.sheetnames


def test_each_principal_exports_only_what_they_may_see(
    client: TestClient, personas: dict[str, str], database: Database, hcc_key: AgencyKey
) -> None:
    def codes(content: bytes) -> set[str]:
        return {i["code"] for entry in json.loads(content)["domains"] for i in entry["indicators"]}

    with database.reading() as session:
        restricted = set(session.scalars(select(Indicator.code).where(Indicator.access == "restricted")))
        everything = set(session.scalars(select(Indicator.code)))
    assert restricted and all(code.startswith(("attt.", "antt.")) for code in restricted)
    for username in ("admin", "operator", "leader"):
        login(client, username)
        assert codes(export(client, "json")) == everything, username
    for username in ("officer_a", "officer_b"):  # health and education: the police's and security's are hidden
        login(client, username)
        assert codes(export(client, "json")) == everything - restricted, username
        _, rows = _csv_rows(export(client, "csv"))
        assert len(rows) == len(everything - restricted)
        sheet = load_workbook(io.BytesIO(export(client, "xlsx")))[INDICATOR_SHEET]
        assert not restricted & {row[1] for row in sheet.iter_rows(min_row=3, values_only=True)}
    login(client, "citizen")
    assert client.get("/api/v1/catalog/export").json()["code"] == "forbidden"
    client.cookies.clear()
    anonymous = client.get("/api/v1/catalog/export?format=xlsx")
    assert anonymous.status_code == 401 and anonymous.json()["code"] == "unauthenticated"
    by_key = client.get("/api/v1/catalog/export?format=csv", headers=hcc_key.headers)
    assert by_key.status_code == 200
    assert len(_csv_rows(by_key.content)[1]) == len(everything - restricted)
    wrong = client.get("/api/v1/catalog/export?format=pdf", headers=hcc_key.headers)
    assert wrong.status_code == 422 and wrong.json()["code"] == "validation_failed"


# --- round trips ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["json", "csv", "xlsx"])
def test_export_then_import_changes_nothing(
    client: TestClient, app: Any, personas: dict[str, str], database: Database, fmt: str, restore_catalog: None
) -> None:
    login(client, "admin")
    content = export(client, fmt)
    total = _count(database, Indicator)
    for dry_run in (True, False):
        answer = upload(client, app, content, f"cityops-catalog-2026-11-27.{fmt}", dry_run=dry_run)
        assert answer.status_code == 200, answer.text
        report = answer.json()
        assert report["dry_run"] is dry_run and report["format"] == fmt
        assert (report["created"], report["updated"], report["rejected_rows"]) == (0, 0, 0), report["rejected"][:3]
        assert report["unchanged"] == report["rows"] == total
        assert {item["outcome"] for item in report["indicators"]} == {"unchanged"}
    assert _count(database, IndicatorVersion) == 0
    assert _indicator(database, TARGETED).version == 1
    assert _audit(database, "indicator.update") == []
    imports = _audit(database, "catalog.import")
    assert len(imports) == 1 and imports[0].actor == "admin" and imports[0].details["unchanged"] == total


def test_one_target_edited_in_excel_makes_one_new_version(
    client: TestClient, app: Any, personas: dict[str, str], database: Database, restore_catalog: None
) -> None:
    login(client, "operator")
    edited = _set_xlsx(export(client, "xlsx"), TARGETED, "target_2026", 99.5)
    row = _xlsx_row_of(edited, TARGETED)

    preview = upload(client, app, edited, "chi-tieu.xlsx", dry_run=True).json()
    assert (preview["updated"], preview["created"], preview["rejected_rows"]) == (1, 0, 0)
    [change] = [item for item in preview["indicators"] if item["outcome"] == "updated"]
    assert change["code"] == TARGETED and change["sheet"] == INDICATOR_SHEET and change["row"] == row
    assert (change["previous_version"], change["version"]) == (1, 2)
    assert change["changes"] == [
        {
            "field": "targets",
            "old": [{"year": 2025, "value": 98.0, "subject": ""}, {"year": 2026, "value": 99.0, "subject": ""}],
            "new": [{"year": 2025, "value": 98.0, "subject": ""}, {"year": 2026, "value": 99.5, "subject": ""}],
        }
    ]
    assert "Chạy thử" in preview["message_vi"] and "Dry run" in preview["message_en"]
    assert _indicator(database, TARGETED).version == 1 and _audit(database, "indicator.update") == []

    applied = upload(client, app, edited, "chi-tieu.xlsx").json()
    assert (applied["updated"], applied["unchanged"]) == (1, applied["rows"] - 1)
    indicator = _indicator(database, TARGETED)
    assert indicator.version == 2 and indicator.updated_by == "operator"
    assert indicator.targets[1] == {"year": 2026, "value": 99.5, "subject": ""}
    with database.reading() as session:
        old = session.scalar(select(IndicatorVersion).where(IndicatorVersion.indicator_id == indicator.id))
        assert old is not None and old.version == 1 and old.definition["targets"][1]["value"] == 99.0
        assert old.changed_by == "operator"
    [entry] = _audit(database, "indicator.update")
    assert entry.entity_id == TARGETED and entry.actor == "operator"
    assert entry.details["version"] == 2 and entry.details["fields"] == ["targets"]
    assert entry.details["source"] == "import" and entry.details["file"] == "chi-tieu.xlsx"
    assert entry.ip  # from where

    audit_page = client.get("/api/v1/audit")
    assert audit_page.status_code == 403  # an operator cannot read the audit log; the admin can
    login(client, "admin")
    assert any(item["action"] == "indicator.update" for item in client.get("/api/v1/audit").json()["items"])

    again = upload(client, app, edited, "chi-tieu.xlsx").json()
    assert again["updated"] == 0 and _indicator(database, TARGETED).version == 2


def test_vietnamese_decimal_commas_are_read_in_csv_and_xlsx(
    client: TestClient, app: Any, personas: dict[str, str], database: Database, restore_catalog: None
) -> None:
    login(client, "admin")
    keys, rows = _csv_rows(export(client, "csv"))
    for row in rows:
        if row[keys.index("code")] == TARGETED:
            row[keys.index("target_2026")] = "98,5"
            row[keys.index("threshold_warning")] = "96,25"
    header = [f"({key})" for key in keys]
    # Excel set to Vietnamese saves CSV with ";" between cells and "," as the decimal mark.
    report = upload(client, app, _csv_bytes(header, rows, delimiter=";"), "vi.csv").json()
    assert (report["updated"], report["rejected_rows"]) == (1, 0), report["rejected"]
    indicator = _indicator(database, TARGETED)
    assert indicator.targets[1]["value"] == 98.5 and indicator.thresholds["warning"] == 96.25

    typed_text = _set_xlsx(export(client, "xlsx"), TARGETED, "target_2026", "97,75")
    report = upload(client, app, typed_text, "vi.xlsx").json()
    assert (report["updated"], report["rejected_rows"]) == (1, 0), report["rejected"]
    assert _indicator(database, TARGETED).targets[1]["value"] == 97.75
    assert _indicator(database, TARGETED).version == 3


# --- bad rows are rejected alone ---------------------------------------------------------------------


def test_a_bad_unit_or_owner_rejects_only_its_row(
    client: TestClient, app: Any, personas: dict[str, str], database: Database, restore_catalog: None
) -> None:
    login(client, "admin")
    keys, rows = _csv_rows(export(client, "csv"))
    code_at = keys.index("code")
    numbers = {row[code_at]: index + 2 for index, row in enumerate(rows)}  # row 1 is the header
    changes = {
        "hcc.ho_so_tiep_nhan": ("unit", "ho_so_khong_co"),
        "yte.luot_kham_ngoai_tru": ("owner", "so_khong_ton_tai"),
        TARGETED: ("target_2026", "99,9"),
        "hcc.ho_so_qua_han": ("target_2026", "nhiều"),
    }
    for row in rows:
        if row[code_at] in changes:
            key, value = changes[row[code_at]]
            row[keys.index(key)] = value
    report = upload(client, app, _csv_bytes([f"({key})" for key in keys], rows), "bad-rows.csv").json()
    assert report["updated"] == 1 and report["rejected_rows"] == 3
    rejected = {item["code"]: item for item in report["rejected"]}
    assert set(rejected) == set(changes) - {TARGETED}
    unit = rejected["hcc.ho_so_tiep_nhan"]
    assert (unit["row"], unit["sheet"], unit["field"], unit["reason"]) == (
        numbers["hcc.ho_so_tiep_nhan"],
        None,
        "unit",
        "unknown_unit",
    )
    assert "ho_so_khong_co" in unit["message_vi"] and "Không có đơn vị tính" in unit["message_vi"]
    assert "There is no unit" in unit["message_en"]
    owner = rejected["yte.luot_kham_ngoai_tru"]
    assert (owner["field"], owner["reason"]) == ("owner", "unknown_agency")
    assert "Không có cơ quan" in owner["message_vi"] and "no agency" in owner["message_en"]
    number = rejected["hcc.ho_so_qua_han"]
    assert (number["field"], number["reason"]) == ("target_2026", "not_a_number")
    assert "nhiều" in number["message_vi"]
    assert _indicator(database, TARGETED).targets[1]["value"] == 99.9  # the good row is applied
    assert _indicator(database, "hcc.ho_so_tiep_nhan").unit == "ho_so"  # the bad ones are not
    assert _indicator(database, "yte.luot_kham_ngoai_tru").version == 1


def test_xlsx_rejections_name_the_sheet_and_row(
    client: TestClient, app: Any, personas: dict[str, str], database: Database, restore_catalog: None
) -> None:
    login(client, "admin")
    content = _set_xlsx(export(client, "xlsx"), "vbdt.van_ban_den", "period", "fortnight")
    content = _set_xlsx(content, "vbdt.van_ban_di", "name_vi", None)
    report = upload(client, app, content, "sai.xlsx", dry_run=True).json()
    rejected = {item["code"]: item for item in report["rejected"]}
    period = rejected["vbdt.van_ban_den"]
    assert period["sheet"] == INDICATOR_SHEET and period["row"] == _xlsx_row_of(content, "vbdt.van_ban_den")
    assert (period["field"], period["reason"]) == ("period", "invalid_choice")
    assert "fortnight" in period["message_vi"] and "school_year" in period["message_en"]
    name = rejected["vbdt.van_ban_di"]
    assert (name["field"], name["reason"]) == ("name_vi", "missing") and name["message_vi"] == "Thiếu giá trị bắt buộc."
    assert report["unchanged"] == report["rows"] - 2


def test_new_indicators_are_created_and_missing_ones_kept(
    client: TestClient, app: Any, personas: dict[str, str], database: Database, restore_catalog: None
) -> None:
    login(client, "operator")
    total = _count(database, Indicator)
    base = {
        "monitored_item": 1,
        "unit": "ho_so",
        "period": "month",
        "owner": "trung_tam_phuc_vu_hcc",
        "min": 0,
    }
    document = {
        "domains": [
            {
                "domain": {"code": "hcc", "name_vi": "Hành chính công", "name_en": "Public administrative services"},
                "indicators": [
                    # A ratio of two indicators that are new in the same file.
                    {
                        **base,
                        "code": "hcc.ty_le_buu_chinh",
                        "name_vi": "Tỷ lệ hồ sơ qua bưu chính",
                        "name_en": "Share of dossiers by post",
                        "unit": "percent",
                        "aggregation": "ratio",
                        "numerator": "hcc.ho_so_buu_chinh",
                        "denominator": "hcc.ho_so_tiep_nhan",
                        "max": 100,
                        "targets": [{"year": 2026, "value": 10}],
                    },
                    {**base, "code": "hcc.ho_so_buu_chinh", "name_vi": "Hồ sơ qua bưu chính", "name_en": "By post"},
                    # A ratio leaning on a row that is rejected (unknown unit) is rejected too.
                    {**base, "code": "hcc.ho_so_sai", "name_vi": "Sai", "name_en": "Wrong", "unit": "cai_gi"},
                    {
                        **base,
                        "code": "hcc.ty_le_sai",
                        "name_vi": "Tỷ lệ sai",
                        "name_en": "Wrong share",
                        "aggregation": "ratio",
                        "numerator": "hcc.ho_so_sai",
                        "denominator": "hcc.ho_so_tiep_nhan",
                    },
                    {**base, "code": "yte.trong_hcc", "name_vi": "Lạc chỗ", "name_en": "Misplaced"},
                    {**base, "code": "hcc.ho_so_buu_chinh", "name_vi": "Lặp", "name_en": "Twice"},
                ],
            },
            {
                "domain": {"code": "khongco"},
                "indicators": [{**base, "code": "khongco.x", "name_vi": "X", "name_en": "X"}],
            },
        ]
    }
    content = json.dumps(document, ensure_ascii=False).encode()
    report = upload(client, app, content, "moi.json").json()
    assert report["created"] == 2 and report["rejected_rows"] == 5
    assert report["not_in_file"] == total  # every indicator already there was left alone
    assert "không bị xóa" in report["message_vi"] and "never deleted" in report["message_en"]
    reasons = {(item["code"], item["field"], item["reason"]) for item in report["rejected"]}
    assert reasons == {
        ("hcc.ho_so_sai", "unit", "unknown_unit"),
        ("hcc.ty_le_sai", "numerator", "unknown_indicator"),
        ("yte.trong_hcc", "code", "code_prefix"),
        ("hcc.ho_so_buu_chinh", "code", "duplicate_code"),
        ("khongco.x", "domain", "unknown_domain"),
    }
    twice = next(item for item in report["rejected"] if item["reason"] == "duplicate_code")
    assert twice["path"] == "domains[0].indicators[5]" and twice["row"] == 6
    assert "domains[0].indicators[1]" in twice["message_vi"]
    assert _count(database, Indicator) == total + 2
    created = _indicator(database, "hcc.ty_le_buu_chinh")
    assert created.version == 1 and created.updated_by == "operator" and created.numerator_code == "hcc.ho_so_buu_chinh"
    assert {entry.entity_id for entry in _audit(database, "indicator.create")} == {
        "hcc.ty_le_buu_chinh",
        "hcc.ho_so_buu_chinh",
    }
    login(client, "leader")
    assert client.get("/api/v1/indicators/hcc.ty_le_buu_chinh").json()["targets"] == [
        {"year": 2026, "value": 10.0, "subject": ""}
    ]


def test_json_import_rejects_odd_values_by_row(
    client: TestClient, app: Any, personas: dict[str, str], database: Database
) -> None:
    login(client, "admin")
    good = {"code": "hcc.x", "name_vi": "X", "name_en": "X", "unit": "ho_so", "period": "month"}
    items = [
        {**good, "owner": "trung_tam_phuc_vu_hcc", "min": 5, "max": 1},
        {**good, "owner": "trung_tam_phuc_vu_hcc", "name_vi": "A\u0000B"},
        {**good, "owner": "trung_tam_phuc_vu_hcc", "targets": [{"year": 2026, "value": "NaN"}], "extra": 1},
        {**good, "owner": "trung_tam_phuc_vu_hcc", "monitored_item": 10**30},
        {**good, "owner": "trung_tam_phuc_vu_hcc", "name_en": "x" * 300},
        {**good, "owner": "trung_tam_phuc_vu_hcc", "aggregation": "ratio"},
        {**good, "owner": "trung_tam_phuc_vu_hcc", "targets": [{"year": 2026, "value": 1, "subject": "99999"}]},
        {**good, "owner": "trung_tam_phuc_vu_hcc", "targets": [{"year": 2026, "value": 1, "subject": "16\u0000681"}]},
        "not an object",
    ]
    content = json.dumps({"domains": [{"domain": {"code": "hcc"}, "indicators": items}]}).encode()
    content = content.replace(b'"NaN"', b"NaN")
    report = upload(client, app, content, "odd.json", dry_run=True).json()
    assert report["rejected_rows"] == len(items) and report["created"] == 0
    reasons = {(item["row"], item["field"], item["reason"]) for item in report["rejected"]}
    assert {
        (1, "min", "min_above_max"),
        (2, "name_vi", "control_character"),
        (3, "extra", "unknown_field"),
        (4, "monitored_item", "too_large"),
        (5, "name_en", "too_long"),
        (6, "aggregation", "ratio_parts"),
        (7, "targets.0", "unknown_subject"),
        (8, "targets.0", "control_character"),
        (9, "(row)", "not_an_object"),
    } <= reasons
    for item in report["rejected"]:
        assert item["message_vi"] and item["message_en"] and item["message_vi"] != item["message_en"]


# --- bad files are refused whole, never a 500 ------------------------------------------------------


def _zip_that_is_not_a_workbook() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hello.txt", "xin chào")
    return buffer.getvalue()


def _zip_bomb() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/worksheets/sheet1.xml", b"0" * (65 * 1024 * 1024))
    return buffer.getvalue()


def _workbook_without_catalog() -> bytes:
    workbook = Workbook()
    workbook.active.append(["Họ tên", "Tuổi"])
    workbook.active.append(["Nguyễn Văn A", 30])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


# name → (the bytes, or a function making them; the problem code)
BAD_FILES: dict[str, tuple[bytes | Callable[[], bytes], str]] = {
    "random.csv": ("Họ tên,Tuổi\nNguyễn Văn A,30\n".encode(), "catalog_file_not_catalog"),
    "random.json": (b'{"hello": "world"}', "catalog_file_not_catalog"),
    "list.json": (b"[1, 2, 3]", "catalog_file_not_catalog"),
    "broken.json": (b'{"domains": [', "catalog_file_unreadable"),
    "broken.xlsx": (b"these bytes are not a zip archive", "catalog_file_unreadable"),
    "not-a-workbook.xlsx": (_zip_that_is_not_a_workbook, "catalog_file_unreadable"),
    "people.xlsx": (_workbook_without_catalog, "catalog_file_not_catalog"),
    "utf16.csv": ("Lĩnh vực,Mã\n".encode("utf-16"), "catalog_file_unreadable"),
    "empty.csv": (b"", "catalog_file_not_catalog"),
    "binary.csv": (b"\x00\x01\x02domain,code", "catalog_file_unreadable"),
    "many.json": (
        json.dumps({"domains": [{"domain": {"code": "hcc"}, "indicators": [{}] * 5001}]}).encode(),
        "catalog_file_too_many_rows",
    ),
    "bomb.xlsx": (_zip_bomb, "catalog_file_unreadable"),
    "deep.json": (b'{"domains": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "catalog_file_unreadable"),
}


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_a_file_that_is_not_a_catalog_is_refused_clearly(
    client: TestClient, app: Any, personas: dict[str, str], database: Database, name: str
) -> None:
    made, code = BAD_FILES[name]
    content = made() if callable(made) else made
    login(client, "admin")
    answer = upload(client, app, content, name)
    assert answer.status_code == 422, answer.text
    problem = answer.json()
    assert problem["code"] == code
    assert "Không có thay đổi nào được ghi" in problem["message_vi"] and "Nothing was changed" in problem["message_en"]
    assert _audit(database, "catalog.import") == []


def test_wrong_columns_are_named(client: TestClient, app: Any, personas: dict[str, str]) -> None:
    login(client, "admin")
    keys, rows = _csv_rows(export(client, "csv"))
    drop = keys.index("owner")
    header = [f"({key})" for index, key in enumerate(keys) if index != drop] + ["Ghi chú"]
    trimmed = [[cell for index, cell in enumerate(row) if index != drop] + [""] for row in rows]
    problem = upload(client, app, _csv_bytes(header, trimmed), "cot.csv").json()
    assert problem["code"] == "catalog_file_columns"
    assert "owner" in problem["message_vi"] and "Ghi chú" in problem["message_vi"]
    assert "Missing: owner" in problem["message_en"]


def test_an_oversized_upload_is_refused_with_413(
    client: TestClient, app: Any, personas: dict[str, str], database: Database
) -> None:
    login(client, "admin")
    answer = upload(client, app, b"a," * (MAX_IMPORT_BYTES // 2 + 1), "huge.csv")
    assert answer.status_code == 413
    assert answer.json()["code"] == "catalog_file_too_large"
    assert str(MAX_IMPORT_BYTES) in answer.json()["message_vi"]


def test_an_upload_without_a_file_is_explained(client: TestClient, app: Any, personas: dict[str, str]) -> None:
    login(client, "admin")
    as_json = client.post("/api/v1/catalog/import", json={"domains": []}, headers=csrf_header(client, app))
    assert as_json.status_code == 422 and as_json.json()["code"] == "catalog_file_missing"
    other_field = client.post(
        "/api/v1/catalog/import", files={"tep": ("a.csv", b"x")}, headers=csrf_header(client, app)
    )
    assert other_field.status_code == 422 and other_field.json()["code"] == "catalog_file_missing"


# --- who may import ---------------------------------------------------------------------------------------


def test_only_admins_and_operators_may_import(
    client: TestClient, app: Any, personas: dict[str, str], database: Database, hcc_key: AgencyKey
) -> None:
    login(client, "admin")
    content = export(client, "json")
    for username in ("admin", "operator"):
        login(client, username)
        assert upload(client, app, content, "c.json", dry_run=True).status_code == 200, username
    for username in ("leader", "officer_a", "officer_b", "citizen"):
        login(client, username)
        answer = upload(client, app, content, "c.json")
        assert answer.status_code == 403 and answer.json()["code"] == "forbidden", username
    login(client, "operator")
    no_token = client.post("/api/v1/catalog/import", files={"file": ("c.json", content)})
    assert no_token.status_code == 403 and no_token.json()["code"] == "csrf_failed"
    client.cookies.clear()
    anonymous = client.post("/api/v1/catalog/import", files={"file": ("c.json", content)})
    assert anonymous.status_code == 401 and anonymous.json()["code"] == "unauthenticated"
    by_key = client.post("/api/v1/catalog/import", files={"file": ("c.json", content)}, headers=hcc_key.headers)
    assert by_key.status_code == 403 and by_key.json()["code"] == "forbidden"
    assert _audit(database, "catalog.import") == []  # all of the above were dry runs or refused


def test_the_import_route_is_described_in_openapi(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    body = schema["paths"]["/api/v1/catalog/import"]["post"]["requestBody"]["content"]
    assert body["multipart/form-data"]["schema"]["properties"]["file"]["format"] == "binary"
    assert "/api/v1/catalog/export" in schema["paths"]


# --- the command line ---------------------------------------------------------------------------------


def test_the_cli_exports_and_imports(
    backend: Backend, database: Database, tmp_path: Path, restore_catalog: None
) -> None:
    url = backend.settings.resolved_database_url
    for fmt in ("csv", "xlsx"):
        ok(cityops(tmp_path, f"catalog export --format {fmt} --output catalog.{fmt}", database_url=url))
        assert (tmp_path / f"catalog.{fmt}").stat().st_size > 10_000
    unchanged = ok(cityops(tmp_path, "catalog import catalog.xlsx --dry-run", database_url=url))
    assert "giữ nguyên: 109" in unchanged and "unchanged: 109" in unchanged
    edited = _set_xlsx((tmp_path / "catalog.xlsx").read_bytes(), TARGETED, "target_2026", "99,5")
    (tmp_path / "edited.xlsx").write_bytes(edited)
    output = ok(cityops(tmp_path, "catalog import edited.xlsx", database_url=url))
    assert f"updated\t{TARGETED}\tv1 → v2" in output and "targets:" in output
    assert _indicator(database, TARGETED).version == 2
    [entry] = _audit(database, "indicator.update")
    assert entry.actor == "cli" and entry.details["source"] == "import"

    (tmp_path / "random.csv").write_text("a,b\n1,2\n")
    result = cityops(tmp_path, "catalog import random.csv", database_url=url)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "không phải danh mục chỉ tiêu" in result.stderr and "not a cityops indicator catalog" in result.stderr

    keys, rows = _csv_rows((tmp_path / "catalog.csv").read_bytes())
    rows[0][keys.index("unit")] = "khong_co"
    (tmp_path / "bad.csv").write_bytes(_csv_bytes([f"({key})" for key in keys], rows))
    result = cityops(tmp_path, "catalog import bad.csv", database_url=url)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "rejected" in result.stdout and "Không có đơn vị tính" in result.stdout and "row 2" in result.stdout


def test_every_rejection_reason_reads_in_both_languages() -> None:
    reasons = [key for key in catalog("vi") if key.startswith("catalog_exchange.reason.")]
    assert len(reasons) > 20
    for key in reasons:
        vi, en = both(key, **REASON_DEFAULTS)
        assert vi != en, key


# --- the documentation --------------------------------------------------------------------------------


def test_the_catalog_doc_explains_every_column_and_problem() -> None:
    text = DOCS.read_text(encoding="utf-8")
    for key in FIXED_COLUMNS:
        assert f"`{key}`" in text, key
    codes = {key.split(".")[1] for key in catalog("vi") if key.startswith("problem.catalog_file_")}
    assert codes
    for code in codes:
        assert f"`{code}`" in text, code
    for field in IndicatorDef.model_fields:
        assert f"`{field}`" in text, field
