"""POST /api/v1/observations: good items are stored, each bad one is answered with its index, code and reasons."""

from __future__ import annotations

from typing import Any

import pytest
from observations_support import assert_english, assert_vietnamese, item, send_ok, send_raw, series

from conftest import AgencyKey, count_rows, make_key

NINE_DIMENSIONS = {f"chieu_{n}": "x" for n in range(9)}

# (the bad item, its rejection code, the field named, the Vietnamese reason, the English reason)
REJECTIONS: list[Any] = [
    pytest.param(
        "một chuỗi",
        "not_an_object",
        None,
        "Phần tử phải là một đối tượng JSON.",
        "The item must be a JSON object.",
        id="not_an_object",
    ),
    pytest.param(
        item(unit="ho_so"),
        "unknown_field",
        "unit",
        "Trường không được hỗ trợ: unit.",
        "Unsupported field: unit.",
        id="unknown_field",
    ),
    pytest.param(
        {"indicator": "hcc.ho_so_tiep_nhan", "subject": "40", "period": "2026-10"},
        "missing_field",
        "value",
        "Thiếu trường bắt buộc: value.",
        "Missing required field: value.",
        id="missing_field",
    ),
    pytest.param(
        item(subject=40),
        "wrong_type",
        "subject",
        "Trường subject phải là chuỗi.",
        "The field subject must be a string.",
        id="wrong_type",
    ),
    pytest.param(
        item(indicator="hcc.khong_ton_tai"),
        "unknown_indicator",
        "indicator",
        "Không có chỉ tiêu mã hcc.khong_ton_tai.",
        "There is no indicator hcc.khong_ton_tai.",
        id="unknown_indicator",
    ),
    pytest.param(
        item(indicator="giaoduc.so_truong", period="2025-2026", value=1520),
        "indicator_not_in_feed",
        "indicator",
        "Khóa API này không được gửi chỉ tiêu giaoduc.so_truong (không thuộc luồng dữ liệu nào của khóa).",
        "This API key may not send indicator giaoduc.so_truong (it is in none of the key's feeds).",
        id="indicator_not_in_feed",
    ),
    pytest.param(
        item(feed="igate_cu"),
        "unknown_feed",
        "feed",
        "Khóa API này không có luồng dữ liệu mã igate_cu.",
        "This API key has no feed igate_cu.",
        id="unknown_feed",
    ),
    pytest.param(
        item(subject="99999"),
        "unknown_subject",
        "subject",
        "Không có đơn vị hành chính hoặc đối tượng mã 99999.",
        "There is no administrative unit or subject with code 99999.",
        id="unknown_subject",
    ),
    pytest.param(
        item(period="2026-13"),
        "invalid_period",
        "period",
        'Kỳ "2026-13" không hợp lệ. Dùng 2026-11-27, 2026-11, 2026-Q3, 2026, 2025-2026 hoặc thời điểm RFC 3339 '
        "có múi giờ (2026-11-27T08:30:00+07:00).",
        'Invalid period "2026-13". Use 2026-11-27, 2026-11, 2026-Q3, 2026, 2025-2026 or an RFC 3339 instant '
        "with its offset (2026-11-27T08:30:00+07:00).",
        id="invalid_period",
    ),
    pytest.param(
        item(period="2026-10-15"),
        "period_type_mismatch",
        "period",
        "Chỉ tiêu hcc.ho_so_tiep_nhan được báo cáo theo tháng, nhưng kỳ gửi lên là ngày.",
        "Indicator hcc.ho_so_tiep_nhan is reported per month, but the period sent is a day.",
        id="period_type_mismatch",
    ),
    pytest.param(
        item(period="2026-12"),
        "period_in_future",
        "period",
        "Kỳ 2026-12 chưa bắt đầu; không nhận số liệu cho tương lai.",
        "The period 2026-12 has not started yet; values for the future are not accepted.",
        id="period_in_future",
    ),
    pytest.param(
        item(value="12345"),
        "invalid_value",
        "value",
        "Giá trị phải là một số (không phải chuỗi hay true/false) hoặc null kèm lý do.",
        "The value must be a number (not a string or true/false), or null with a reason.",
        id="invalid_value-string",
    ),
    pytest.param(
        item(value=True),
        "invalid_value",
        "value",
        "Giá trị phải là một số (không phải chuỗi hay true/false) hoặc null kèm lý do.",
        "The value must be a number (not a string or true/false), or null with a reason.",
        id="invalid_value-boolean",
    ),
    pytest.param(
        item(value=None),
        "null_without_reason",
        "null_reason",
        "Giá trị null cần kèm trường null_reason giải thích vì sao không có số liệu.",
        "A null value needs a null_reason field saying why there is no figure.",
        id="null_without_reason",
    ),
    pytest.param(
        item(indicator="hcc.ty_le_dung_han", value=100.5),
        "value_out_of_range",
        "value",
        "Giá trị 100.5 nằm ngoài khoảng hợp lệ [0; 100] của chỉ tiêu hcc.ty_le_dung_han.",
        "The value 100.5 is outside the valid range [0; 100] of indicator hcc.ty_le_dung_han.",
        id="value_out_of_range-above",
    ),
    pytest.param(
        item(value=-1),
        "value_out_of_range",
        "value",
        "Giá trị -1 nằm ngoài khoảng hợp lệ [0; —] của chỉ tiêu hcc.ho_so_tiep_nhan.",
        "The value -1 is outside the valid range [0; —] of indicator hcc.ho_so_tiep_nhan.",
        id="value_out_of_range-below",
    ),
    pytest.param(
        item(dimensions=["kenh", "truc_tuyen"]),
        "dimensions_not_object",
        "dimensions",
        'Trường dimensions phải là một đối tượng tên → giá trị, ví dụ {"kenh": "truc_tuyen"}.',
        'The dimensions field must be an object of name → value, e.g. {"kenh": "truc_tuyen"}.',
        id="dimensions_not_object",
    ),
    pytest.param(
        item(dimensions=NINE_DIMENSIONS),
        "too_many_dimensions",
        "dimensions",
        "Tối đa 8 chiều dữ liệu cho một giá trị.",
        "At most 8 dimensions per value.",
        id="too_many_dimensions",
    ),
    pytest.param(
        item(dimensions={"Kenh": "truc_tuyen"}),
        "invalid_dimension_name",
        "dimensions",
        'Tên chiều "Kenh" không hợp lệ: chỉ dùng chữ thường a-z, chữ số và dấu gạch dưới, bắt đầu bằng chữ.',
        'Invalid dimension name "Kenh": use lower-case a-z, digits and underscores, starting with a letter.',
        id="invalid_dimension_name",
    ),
    pytest.param(
        item(dimensions={"gioi_tinh": "nu"}),
        "unknown_dimension",
        "dimensions",
        "Chỉ tiêu hcc.ho_so_tiep_nhan không có chiều gioi_tinh; các chiều hợp lệ: co_quan, kenh, linh_vuc.",
        "Indicator hcc.ho_so_tiep_nhan has no dimension gioi_tinh; valid dimensions: co_quan, kenh, linh_vuc.",
        id="unknown_dimension",
    ),
    pytest.param(
        item(dimensions={"kenh": ""}),
        "invalid_dimension_value",
        "dimensions",
        "Giá trị của chiều kenh phải là chuỗi dài từ 1 đến 100 ký tự.",
        "The value of dimension kenh must be a string of 1 to 100 characters.",
        id="invalid_dimension_value",
    ),
    pytest.param(
        item(source_ref="x" * 256),
        "text_too_long",
        "source_ref",
        "Trường source_ref dài quá 255 ký tự.",
        "The field source_ref is longer than 255 characters.",
        id="text_too_long",
    ),
]


@pytest.mark.parametrize(("bad", "code", "field", "message_vi", "message_en"), REJECTIONS)
def test_a_bad_item_is_rejected_with_its_index_code_and_reasons_while_the_good_one_is_stored(
    client, hcc_key: AgencyKey, database, bad: Any, code: str, field: str | None, message_vi: str, message_en: str
) -> None:
    good = item(period="2026-09", value=11000)

    answer = send_ok(client, hcc_key, good, bad)

    assert answer["received"] == 2
    assert answer["accepted"] == 1
    assert answer["rejected_count"] == 1
    assert answer["rejected"] == [
        {"index": 1, "code": code, "field": field, "message_vi": message_vi, "message_en": message_en}
    ]
    assert_vietnamese(message_vi)
    assert_english(message_en)
    assert count_rows(database, "observations") == 1


def test_a_batch_mixing_good_and_bad_items_stores_every_good_one(client, hcc_key: AgencyKey, database) -> None:
    batch = [
        item(period="2026-07", value=10100),
        item(period="2026-08", value="nhiều"),
        item(indicator="hcc.ho_so_dung_han", period="2026-08", value=9800),
        item(subject="00000"),
        item(subject="16681", period="2026-08", value=420),
        item(indicator="hcc.ty_le_dung_han", value=101),
        item(indicator="hcc.ty_le_dung_han", period="2026-08", value=97.5),
    ]

    answer = send_ok(client, hcc_key, *batch)

    assert (answer["received"], answer["accepted"], answer["created"], answer["rejected_count"]) == (7, 4, 4, 3)
    assert [(r["index"], r["code"]) for r in answer["rejected"]] == [
        (1, "invalid_value"),
        (3, "unknown_subject"),
        (5, "value_out_of_range"),
    ]
    assert count_rows(database, "observations") == 4
    province = series(client, hcc_key.headers, "hcc.ho_so_tiep_nhan", subject="40")
    assert [(row["period"], row["value"]) for row in province["items"]] == [("2026-07", 10100.0)]
    commune = series(client, hcc_key.headers, "hcc.ho_so_tiep_nhan", subject="16681")
    assert [(row["period"], row["value"], row["subject_name"]) for row in commune["items"]] == [
        ("2026-08", 420.0, "Phường Thành Vinh")
    ]
    rate = series(client, hcc_key.headers, "hcc.ty_le_dung_han", subject="40")
    assert [row["value"] for row in rate["items"]] == [97.5]


def test_a_batch_of_only_bad_items_is_answered_and_stores_nothing(client, hcc_key: AgencyKey, database) -> None:
    answer = send_ok(client, hcc_key, None, [], 7, item(value=None))

    assert answer["accepted"] == 0
    assert [(r["index"], r["code"]) for r in answer["rejected"]] == [
        (0, "not_an_object"),
        (1, "not_an_object"),
        (2, "not_an_object"),
        (3, "null_without_reason"),
    ]
    assert count_rows(database, "observations") == 0


def test_every_reason_of_every_rejection_is_finished_vietnamese_and_english(client, hcc_key: AgencyKey) -> None:
    bad_items = [param.values[0] for param in REJECTIONS if not param.marks]

    answer = send_ok(client, hcc_key, *bad_items)

    assert answer["rejected_count"] == len(bad_items)
    for rejection in answer["rejected"]:
        assert_vietnamese(rejection["message_vi"])
        assert_english(rejection["message_en"])


@pytest.mark.parametrize("not_an_object", [[], "", 0, False, "kenh=truc_tuyen"])
def test_dimensions_that_are_not_an_object_are_rejected_not_taken_as_no_dimensions(
    client, hcc_key: AgencyKey, database, not_an_object: Any
) -> None:
    send_ok(client, hcc_key, item(value=12000))

    answer = send_ok(client, hcc_key, item(value=1, dimensions=not_an_object))

    assert [(r["code"], r["field"]) for r in answer["rejected"]] == [("dimensions_not_object", "dimensions")]
    assert series(client, hcc_key.headers, "hcc.ho_so_tiep_nhan", subject="40")["items"][0]["value"] == 12000
    assert count_rows(database, "observation_history") == 0


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        (item(indicator=None), "indicator"),
        (item(indicator=["hcc.ho_so_tiep_nhan"]), "indicator"),
        (item(subject={"code": "40"}), "subject"),
        (item(period=202610), "period"),
        (item(source_ref=0), "source_ref"),
        (item(source_ref=["so-1"]), "source_ref"),
        (item(value=None, null_reason=0), "null_reason"),
    ],
)
def test_a_field_of_the_wrong_type_is_rejected_as_wrong_type(client, hcc_key: AgencyKey, bad: Any, field: str) -> None:
    answer = send_ok(client, hcc_key, bad)

    assert [(r["code"], r["field"]) for r in answer["rejected"]] == [("wrong_type", field)]


@pytest.mark.parametrize(
    "dimension_value", [123, None, "x" * 101, {"ma": "truc_tuyen"}], ids=["number", "null", "too_long", "object"]
)
def test_a_dimension_value_that_is_not_a_short_string_is_rejected(
    client, hcc_key: AgencyKey, dimension_value: Any
) -> None:
    answer = send_ok(client, hcc_key, item(dimensions={"kenh": dimension_value}))

    assert [r["code"] for r in answer["rejected"]] == ["invalid_dimension_value"]


def test_a_null_reason_over_500_characters_is_too_long(client, hcc_key: AgencyKey) -> None:
    answer = send_ok(client, hcc_key, item(value=None, null_reason="Hệ thống bảo trì. " * 30))

    assert [(r["code"], r["field"]) for r in answer["rejected"]] == [("text_too_long", "null_reason")]
    assert answer["rejected"][0]["message_en"] == "The field null_reason is longer than 500 characters."


def test_a_null_with_only_blank_reason_is_rejected(client, hcc_key: AgencyKey) -> None:
    answer = send_ok(client, hcc_key, item(value=None, null_reason="   "))

    assert [r["code"] for r in answer["rejected"]] == ["null_without_reason"]


def test_the_second_of_two_items_with_the_same_key_is_a_duplicate_of_the_first(
    client, hcc_key: AgencyKey, database
) -> None:
    answer = send_ok(
        client,
        hcc_key,
        item(value=100, dimensions={"kenh": "truc_tuyen"}),
        item(value=200),
        item(value=300, dimensions={"kenh": "truc_tuyen"}),
    )

    assert answer["rejected"] == [
        {
            "index": 2,
            "code": "duplicate_in_batch",
            "field": None,
            "message_vi": "Trùng với phần tử số 0 trong cùng lô (cùng chỉ tiêu, đối tượng, kỳ và chiều).",
            "message_en": "Same as item 0 of this batch (same indicator, subject, period and dimensions).",
        }
    ]
    online = series(client, hcc_key.headers, "hcc.ho_so_tiep_nhan", subject="40", dimensions="kenh=truc_tuyen")
    assert [row["value"] for row in online["items"]] == [100.0]
    assert count_rows(database, "observations") == 2


def test_a_key_cannot_send_another_agencys_indicator(client, hcc_key: AgencyKey, database, clock) -> None:
    make_key(database, clock(), agency="so_gd_dt", feed="csdl_nganh_gd", indicators=["giaoduc.so_truong"])

    answer = send_ok(client, hcc_key, item(indicator="giaoduc.so_truong", period="2025-2026", value=1520))

    assert [(r["code"], r["field"]) for r in answer["rejected"]] == [("indicator_not_in_feed", "indicator")]
    assert count_rows(database, "observations") == 0


def test_a_key_cannot_write_through_another_agencys_feed(client, hcc_key: AgencyKey, database, clock) -> None:
    other = make_key(database, clock(), agency="so_gd_dt", feed="csdl_nganh_gd", indicators=["hcc.ho_so_tiep_nhan"])

    answer = send_ok(client, hcc_key, item(feed=other.feed))

    assert [(r["code"], r["field"]) for r in answer["rejected"]] == [("unknown_feed", "feed")]
    assert count_rows(database, "observations") == 0


def test_a_feed_named_by_the_item_is_used_when_it_supplies_the_indicator(client, hcc_key: AgencyKey, database) -> None:
    answer = send_ok(client, hcc_key, item(feed=hcc_key.feed))

    assert answer["accepted"] == 1
    stored = series(client, hcc_key.headers, "hcc.ho_so_tiep_nhan", subject="40")["items"]
    assert [row["feed"] for row in stored] == ["hcc_igate"]


def test_a_text_holding_nul_is_rejected_rather_than_breaking_the_batch(client, hcc_key: AgencyKey, database) -> None:
    answer = send_ok(
        client,
        hcc_key,
        item(period="2026-09", value=1),
        item(source_ref="so\u0000-1"),
        item(value=None, null_reason="bảo trì\u0000"),
        item(dimensions={"kenh": "truc\u0000tuyen"}),
        item(subject="16681\u0000"),
        item(indicator="hcc.ho_so_tiep_nhan\u0000"),
        item(feed="hcc_igate\u0000"),
    )

    assert [(r["index"], r["code"], r["field"]) for r in answer["rejected"]] == [
        (1, "wrong_type", "source_ref"),
        (2, "wrong_type", "null_reason"),
        (3, "invalid_dimension_value", "dimensions"),
        (4, "unknown_subject", "subject"),
        (5, "unknown_indicator", "indicator"),
        (6, "unknown_feed", "feed"),
    ]
    assert count_rows(database, "observations") == 1


def test_a_period_at_the_edge_of_the_calendar_is_an_invalid_period(client, hcc_key: AgencyKey) -> None:
    answer = send_ok(client, hcc_key, item(period="0001-01"), item(period="9999-12"))

    assert [r["code"] for r in answer["rejected"]] == ["invalid_period", "invalid_period"]


def test_a_number_a_double_cannot_hold_rejects_only_its_item(client, hcc_key: AgencyKey, database) -> None:
    good = '{"indicator": "hcc.ho_so_tiep_nhan", "subject": "16681", "period": "2026-10", "value": 5}'
    bad = '{"indicator": "hcc.ho_so_tiep_nhan", "subject": "40", "period": "2026-10", "value": V}'
    for number in ("1e400", "-1e400", "NaN", "Infinity", "1" + "0" * 400):
        answer = send_raw(client, hcc_key, '{"observations": [' + good + ", " + bad.replace("V", number) + "]}")
        assert answer.status_code == 200, (number, answer.text)
        body = answer.json()
        assert body["accepted"] == 1, number
        assert [(r["index"], r["code"]) for r in body["rejected"]] == [(1, "value_not_finite")], number
    assert count_rows(database, "observations") == 1
