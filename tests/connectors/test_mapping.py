"""The declarative mapping from a JSON document to observation items: paths, constants, code tables, date formats,
several observations per record, dimensions — and a clear rejection for each record it cannot read."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from cityops.connectors.mapping import MISSING, Mapping, MappingFailed, apply, dig, records_of


def mapping(**changes: Any) -> Mapping:
    base: dict[str, Any] = {
        "records": "data.items",
        "subject": "maDonVi",
        "period": "kyBaoCao",
        "observations": [{"indicator": {"value": "hcc.ho_so_tiep_nhan"}, "value": "soTiepNhan"}],
    }
    return Mapping.model_validate({**base, **changes})


def document(*records: Any) -> dict[str, Any]:
    return {"data": {"items": list(records)}}


def test_dig_follows_dotted_paths_through_objects_and_lists() -> None:
    found = {"a": {"b": [{"c": 1}, {"c": 2}]}, "x": None}
    assert dig(found, "a.b.1.c") == 2
    assert dig(found, "") is found
    assert dig(found, "x") is None
    assert dig(found, "a.b.2.c") is MISSING
    assert dig(found, "a.z") is MISSING
    assert dig([5, 6], "1") == 6
    assert dig("text", "a") is MISSING


def test_each_record_becomes_an_item_as_the_data_sharing_api_takes_it() -> None:
    items, rejected = apply(
        mapping(source_ref="id"),
        document(
            {"maDonVi": "40", "kyBaoCao": "10/2026", "soTiepNhan": "12.345", "id": "HS-1"},
            {"maDonVi": "16681", "kyBaoCao": "2026-10", "soTiepNhan": 420, "id": 7},
        ),
    )

    assert rejected == []
    assert items == [
        {
            "indicator": "hcc.ho_so_tiep_nhan",
            "subject": "40",
            "period": "2026-10",
            "value": 12345,
            "source_ref": "HS-1",
        },
        {"indicator": "hcc.ho_so_tiep_nhan", "subject": "16681", "period": "2026-10", "value": 420, "source_ref": "7"},
    ]


def test_a_record_gives_several_observations_with_shared_and_own_dimensions() -> None:
    rules = mapping(
        dimensions={"co_quan": {"value": "so_tu_phap"}, "linh_vuc": "linhVuc"},
        observations=[
            {
                "indicator": {"value": "hcc.ho_so_tiep_nhan"},
                "value": "truc_tuyen",
                "dimensions": {"kenh": {"value": "truc_tuyen"}},
            },
            {
                "indicator": {"value": "hcc.ho_so_tiep_nhan"},
                "value": "truc_tiep",
                "dimensions": {"kenh": {"value": "truc_tiep"}},
            },
            {"indicator": {"value": "hcc.ho_so_dung_han"}, "value": {"path": "dungHan"}},
        ],
    )

    items, rejected = apply(
        rules,
        document(
            {
                "maDonVi": "40",
                "kyBaoCao": "10/2026",
                "linhVuc": "ho_tich",
                "truc_tuyen": 80,
                "truc_tiep": 20,
                "dungHan": 95,
            }
        ),
    )

    assert rejected == []
    assert [(item["indicator"], item["value"], item["dimensions"]) for item in items] == [
        ("hcc.ho_so_tiep_nhan", 80, {"co_quan": "so_tu_phap", "linh_vuc": "ho_tich", "kenh": "truc_tuyen"}),
        ("hcc.ho_so_tiep_nhan", 20, {"co_quan": "so_tu_phap", "linh_vuc": "ho_tich", "kenh": "truc_tiep"}),
        ("hcc.ho_so_dung_han", 95, {"co_quan": "so_tu_phap", "linh_vuc": "ho_tich"}),
    ]


def test_the_indicator_may_come_from_the_record_through_a_code_table() -> None:
    rules = mapping(
        subject={"path": "donVi", "map": {"NA": "40", "TV": "16681"}},
        observations=[
            {
                "indicator": {"path": "chiTieu", "map": {"TN": "hcc.ho_so_tiep_nhan", "DH": "hcc.ho_so_dung_han"}},
                "value": "giaTri",
            }
        ],
    )

    items, rejected = apply(
        rules,
        document(
            {"donVi": "NA", "kyBaoCao": "10/2026", "chiTieu": "TN", "giaTri": 5},
            {"donVi": "TV", "kyBaoCao": "10/2026", "chiTieu": "DH", "giaTri": 6},
            {"donVi": "HN", "kyBaoCao": "10/2026", "chiTieu": "TN", "giaTri": 7},
            {"donVi": "NA", "kyBaoCao": "10/2026", "chiTieu": "XX", "giaTri": 8},
        ),
    )

    assert [(item["subject"], item["indicator"], item["value"]) for item in items] == [
        ("40", "hcc.ho_so_tiep_nhan", 5),
        ("16681", "hcc.ho_so_dung_han", 6),
    ]
    assert [(r.index, r.code, r.field) for r in rejected] == [
        (2, "mapping_unmapped", "subject"),
        (3, "mapping_unmapped", "indicator"),
    ]
    assert rejected[0].message_vi == "Bản ghi 2: giá trị “HN” của trường “subject” không có trong bảng chuyển mã."
    assert rejected[0].message_en == "Record 2: the value “HN” of “subject” is not in the code table."


def test_a_numeric_code_is_looked_up_as_written() -> None:
    rules = mapping(subject={"path": "maTinh", "map": {"40": "40"}})

    items, rejected = apply(rules, document({"maTinh": 40.0, "kyBaoCao": "10/2026", "soTiepNhan": 1}))

    assert rejected == [] and items[0]["subject"] == "40"


@pytest.mark.parametrize(
    ("rule", "raw", "period"),
    [
        ({"path": "ky", "format": "dd/mm/yyyy"}, "27/11/2026", "2026-11-27"),
        ({"path": "ky", "format": "dd/mm/yyyy"}, "05/01/2026 07:00", "2026-01-05T00:00:00+00:00"),
        ({"path": "ky", "format": "epoch_s"}, 1795748400, "2026-11-27T03:00:00+00:00"),
        ({"path": "ky", "format": "epoch_ms"}, 1795748400000, "2026-11-27T03:00:00+00:00"),
        ({"path": "ky", "format": "epoch_s"}, "1795748400", "2026-11-27T03:00:00+00:00"),
        ({"path": "ky"}, "Quý 3/2026", "2026-Q3"),
        ({"path": "ky"}, 2026, "2026"),
        ({"value": "2026-10"}, None, "2026-10"),
    ],
)
def test_periods_are_read_in_the_declared_format(rule: dict[str, Any], raw: Any, period: str) -> None:
    items, rejected = apply(mapping(period=rule), document({"maDonVi": "40", "ky": raw, "soTiepNhan": 1}))

    assert rejected == []
    assert items[0]["period"] == period


@pytest.mark.parametrize(
    ("rule", "raw"),
    [
        ({"path": "ky", "format": "dd/mm/yyyy"}, "2026-11-27"),  # not the declared format: the source changed
        ({"path": "ky", "format": "dd/mm/yyyy"}, "31/02/2026"),
        ({"path": "ky", "format": "epoch_ms"}, "hôm qua"),
        ({"path": "ky", "format": "epoch_s"}, True),
        ({"path": "ky"}, "32/01/2026"),
        ({"path": "ky"}, {"thang": 10}),
    ],
)
def test_a_period_that_cannot_be_read_rejects_its_record(rule: dict[str, Any], raw: Any) -> None:
    items, rejected = apply(mapping(period=rule), document({"maDonVi": "40", "ky": raw, "soTiepNhan": 1}))

    assert items == []
    assert [(r.code, r.field) for r in rejected] == [("mapping_unreadable", "period")]


def test_values_are_read_as_numbers_scaled_and_null_is_kept_with_a_reason() -> None:
    rules = mapping(observations=[{"indicator": {"value": "x.ty_le"}, "value": {"path": "tyLe", "scale": 100}}])

    items, rejected = apply(
        rules,
        document(
            {"maDonVi": "40", "kyBaoCao": "10/2026", "tyLe": "0,925"},
            {"maDonVi": "40", "kyBaoCao": "09/2026", "tyLe": 0.5},
            {"maDonVi": "40", "kyBaoCao": "08/2026", "tyLe": None},
            {"maDonVi": "40", "kyBaoCao": "07/2026", "tyLe": "N/A"},
            {"maDonVi": "40", "kyBaoCao": "06/2026", "tyLe": 0.07},
        ),
    )

    assert [(item["period"], item["value"]) for item in items] == [
        ("2026-10", 92.5),
        ("2026-09", 50),
        ("2026-08", None),
        ("2026-06", 7),
    ]
    assert items[2]["null_reason"]
    assert [(r.index, r.code, r.message_en) for r in rejected] == [
        (3, "mapping_unreadable", "Record 3: the value “N/A” of “value” cannot be read.")
    ]


def test_a_missing_field_rejects_its_record_and_names_the_path() -> None:
    rules = mapping(dimensions={"kenh": "kenh"})

    items, rejected = apply(
        rules,
        document(
            {"maDonVi": "40", "kyBaoCao": "10/2026", "soTiepNhan": 1, "kenh": "truc_tuyen"},
            {"maDonVi": "40", "kyBaoCao": "10/2026", "soTiepNhan": 2},
            {"maDonVi": None, "kyBaoCao": "10/2026", "soTiepNhan": 3, "kenh": "truc_tiep"},
            "một dòng chữ",
        ),
        first_index=1,
    )

    assert len(items) == 1
    assert [(r.index, r.code, r.field) for r in rejected] == [
        (2, "mapping_missing", "dimensions.kenh"),
        (3, "mapping_missing", "subject"),
        (4, "mapping_missing", "subject"),
    ]
    assert rejected[0].message_vi == "Bản ghi 2: thiếu trường “dimensions.kenh” (đường dẫn “kenh”)."
    assert rejected[0].message_en == "Record 2: the field “dimensions.kenh” is missing (path “kenh”)."


def test_the_records_may_be_the_document_itself_or_one_object() -> None:
    rules = mapping(records="")
    one = {"maDonVi": "40", "kyBaoCao": "10/2026", "soTiepNhan": 1}

    assert len(apply(rules, [one, one])[0]) == 2
    assert len(apply(rules, one)[0]) == 1
    assert records_of(mapping(records="data.items"), {"data": {"items": one}}) == [one]


def test_null_records_mean_nothing_new() -> None:
    assert records_of(mapping(), {"data": {"items": None}}) == []


@pytest.mark.parametrize(
    ("found", "reason"),
    [
        ({"result": []}, "no 'data.items' in the document"),
        ({"data": {"rows": []}}, "no 'data.items' in the document"),
        ({"data": {"items": "không có"}}, "data.items is not a list of records"),
        ({"data": {"items": 3}}, "data.items is not a list of records"),
        ([], "no 'data.items' in the document"),
    ],
)
def test_a_document_without_its_records_is_a_changed_structure(found: Any, reason: str) -> None:
    with pytest.raises(MappingFailed, match=reason):
        apply(mapping(), found)


def test_levels_of_an_mqtt_topic_can_fill_fields() -> None:
    rules = mapping(
        records="",
        subject={"topic": 2},
        period="t",
        observations=[{"indicator": {"topic": 3, "map": {"toc_do": "gt.toc_do"}}, "value": "v"}],
    )

    items, rejected = apply(rules, {"t": "2026-11-27T09:55:00+07:00", "v": 42}, topic="nghean/camera/16681/toc_do")
    assert rejected == []
    assert items[0] == {
        "indicator": "gt.toc_do",
        "subject": "16681",
        "period": "2026-11-27T09:55:00+07:00",
        "value": 42,
    }

    _, rejected = apply(rules, {"t": "2026-11-27T09:55:00+07:00", "v": 42}, topic="nghean/camera")
    assert [(r.code, r.field) for r in rejected] == [("mapping_missing", "subject")]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"subject": {"path": "a", "value": "40"}}, "exactly one of path, value or topic"),
        ({"subject": {}}, "exactly one of path, value or topic"),
        ({"period": {"path": "ky", "format": "mm/dd/yyyy"}}, "format is one of"),
        ({"observations": []}, "at least 1 item"),
        ({"subject": {"path": "a", "regex": ".*"}}, "Extra inputs are not permitted"),
        ({"subject": {"topic": 99}}, "less than or equal to 20"),
    ],
)
def test_a_mapping_that_cannot_work_is_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        mapping(**changes)
