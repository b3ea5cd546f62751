"""The settings of an http_pull feed are checked when the feed is created: a mistake names its field and says what
is wrong in Vietnamese and English, and no feed is created."""

from __future__ import annotations

from typing import Any

import pytest

from cityops.clock import FrozenClock
from cityops.db.engine import Database
from cityops.feeds.service import FeedError
from conftest import count_rows
from connectors.http_pull.source import MAPPING, make_feed

URL = "https://lgsp.nghean.gov.vn/igate/api/ho-so"


def good(**changes: Any) -> dict[str, Any]:
    return {"url": URL, "mapping": MAPPING, **changes}


@pytest.mark.parametrize(
    ("given", "field", "vietnamese", "english"),
    [
        pytest.param(good(url="ftp://lgsp.nghean.gov.vn/x"), "url", "http:// hoặc https://", "http:// or https://"),
        pytest.param(good(url="lgsp.nghean.gov.vn/x"), "url", "có tên máy chủ", "with a host name", id="no_scheme"),
        pytest.param(
            good(url="https://hcc:matkhau@lgsp.nghean.gov.vn/x"),
            "url",
            "Không ghi tên đăng nhập, mật khẩu trong URL",
            "Do not put a user name or password in the URL",
            id="credentials_in_url",
        ),
        pytest.param(good(auth="bearer"), "token", "cần mã truy cập", "needs a token", id="bearer_without_token"),
        pytest.param(
            good(auth="header", token="abc"),
            "auth_header",
            "cần tên tiêu đề",
            "needs the header's name",
            id="no_header",
        ),
        pytest.param(
            good(auth="basic", token="abc"), "username", "cần tên đăng nhập", "needs a username", id="basic_no_user"
        ),
        pytest.param(
            good(auth="bearer", token="abc\r\nX-Evil: 1"),
            "token",
            "không xuống dòng",
            "without line breaks",
            id="token_with_line_break",
        ),
        pytest.param(
            good(headers={"Authorization": "Bearer abc"}),
            "headers",
            "chứa thông tin xác thực",
            "carries credentials",
            id="credentials_in_plain_headers",
        ),
        pytest.param(good(headers={"X Don Vi": "1"}), "headers", "tên tiêu đề", "header name", id="bad_header_name"),
        pytest.param(
            good(paging="next_link"), "next_path", "cần next_path", "needs next_path", id="next_link_without_path"
        ),
        pytest.param(
            good(paging="page", params={"page": "2"}),
            "params",
            "do phân trang hoặc mốc “since” đặt",
            "is set by the paging",
            id="param_set_by_paging",
        ),
        pytest.param(
            good(since_param="tuNgay"), "cursor_path", "cả since_param", "both since_param", id="since_without_path"
        ),
        pytest.param(
            good(cursor_path="capNhat"), "cursor_path", "cả since_param", "both since_param", id="path_without_since"
        ),
        pytest.param(good(paging="scroll"), "paging", "", "", id="unknown_paging"),
        pytest.param(good(timeout_seconds=0), "timeout_seconds", "", "", id="zero_timeout"),
        pytest.param(good(page_size=0), "page_size", "", "", id="zero_page_size"),
        pytest.param(
            good(mapping={**MAPPING, "subject": {"path": "a", "value": "40"}}),
            "mapping.subject",
            "",
            "exactly one of path, value or topic",
            id="mapping_field_with_two_sources",
        ),
        pytest.param(good(mapping={**MAPPING, "observations": []}), "mapping.observations", "", "", id="no_outputs"),
    ],
)
def test_a_mistake_in_the_settings_is_refused_at_its_field(
    database: Database, clock: FrozenClock, given: dict[str, Any], field: str, vietnamese: str, english: str
) -> None:
    with pytest.raises(FeedError) as refused:
        make_feed(database, clock, given)

    assert refused.value.code == "invalid_settings"
    assert refused.value.params["field"] == field
    assert refused.value.message_vi.startswith(f"Cấu hình kết nối không hợp lệ ở “{field}”: ")
    assert refused.value.message_en.startswith(f"The connector settings are not valid at “{field}”: ")
    assert vietnamese in refused.value.message_vi
    assert english in refused.value.message_en
    assert count_rows(database, "feeds") == 0


@pytest.mark.parametrize(
    ("given", "code", "field", "english"),
    [
        pytest.param(good(proxy="http://x"), "settings_unknown_field", "proxy", "does not use", id="unknown"),
        pytest.param({"url": URL}, "settings_missing", "mapping", "lack the required field", id="missing"),
    ],
)
def test_an_unknown_or_missing_setting_is_named(
    database: Database, clock: FrozenClock, given: dict[str, Any], code: str, field: str, english: str
) -> None:
    with pytest.raises(FeedError) as refused:
        make_feed(database, clock, given)

    assert (refused.value.code, refused.value.params["field"]) == (code, field)
    assert f"“{field}”" in refused.value.message_vi
    assert english in refused.value.message_en


def test_every_documented_setting_is_accepted(database: Database, clock: FrozenClock) -> None:
    make_feed(
        database,
        clock,
        good(
            auth="header",
            auth_header="X-API-Key",
            token="k-2026",
            headers={"X-Don-Vi": "000.00.40.H40"},
            params={"donVi": "40"},
            timeout_seconds=12.5,
            paging="page",
            page_param="trang",
            size_param="soBanGhi",
            page_size=500,
            first_page=0,
            max_pages=20,
            since_param="tuNgay",
            since_start="2026-01-01",
            cursor_path="capNhat",
        ),
    )

    assert count_rows(database, "feeds") == 1
