"""The decision-support API and pages: plan vs actual, rankings and anomalies over HTTP, in Vietnamese and English,
the access rule on restricted indicators, problems for bad input, and the anomaly list and marks on a board."""

from __future__ import annotations

import html
import re

from fastapi.testclient import TestClient
from insights_support import (
    LINEAR,
    RATE,
    RESTRICTED,
    RESTRICTED_PARTS,
    SHIFT,
    SPIKE,
    anomaly_items,
    communes,
    key,
    progress_items,
    rate_items,
    seed,
)

from cityops.accounts import service as accounts
from cityops.clock import FrozenClock
from cityops.db.engine import Database
from conftest import PASSWORD, login


def words(fragment: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def camera_items() -> list[dict[str, object]]:
    return [
        {"indicator": RESTRICTED_PARTS[0], "subject": "40", "period": "2026-11-20T02:00:00Z", "value": 90},
        {"indicator": RESTRICTED_PARTS[1], "subject": "40", "period": "2026-11-20T02:00:00Z", "value": 100},
    ]


def test_progress_api_and_page_with_access_by_agency(
    client: TestClient, database: Database, clock: FrozenClock, personas: dict[str, str]
) -> None:
    seed(client, key(database, clock()), progress_items() + camera_items())
    with database.writing() as session:
        accounts.create_user(
            session,
            accounts.SYSTEM,
            clock(),
            username="police",
            password=PASSWORD,
            role="officer",
            agency_code="cong_an_tinh",
        )
    assert client.get("/api/v1/insights/progress").status_code == 401
    # An officer of another agency (education) sees no restricted indicator of the police.
    login(client, "officer_b")
    answer = client.get("/api/v1/insights/progress")
    assert answer.status_code == 200, answer.text
    codes = {item["indicator"] for item in answer.json()["items"]}
    assert LINEAR in codes and RESTRICTED not in codes and not any(code.startswith("antt.") for code in codes)
    assert client.get(f"/api/v1/insights/rankings/{RESTRICTED}").status_code == 404
    assert RESTRICTED not in client.get("/insights").text
    # The police's officer and the leader do.
    for user in ("police", "leader"):
        login(client, user)
        items = {item["indicator"]: item for item in client.get("/api/v1/insights/progress").json()["items"]}
        assert items[RESTRICTED]["actual"] == 90 and items[RESTRICTED]["status"] == "off_track"
    linear = items[LINEAR]
    assert linear["status"] == "off_track" and linear["reason"] == "projected_short"
    assert linear["message_vi"] == "Dự báo chỉ đạt 74,4% kế hoạch vào 31/12/2026 (1.860 so với 2.500)."
    assert linear["message_en"].startswith("Projected only 74.4% of the target by 31/12/2026")
    assert linear["as_of"].startswith("2026-09-30T17:00:00")
    only = client.get("/api/v1/insights/progress", params={"domain": "ktxh"}).json()["items"]
    assert only and all(item["indicator"].startswith("ktxh.") for item in only)

    page = client.get("/insights", params={"domain": "ktxh"})
    assert page.status_code == 200
    row = words(page.text[page.text.index(f'id="progress-{LINEAR}"') :].split("</tr>")[0])
    assert "Chậm tiến độ" in row and "Dự báo chỉ đạt 74,4% kế hoạch vào 31/12/2026" in row and "1.450" in row
    assert 'class="row-bad"' in page.text and "/insights/anomalies" in page.text
    english = client.get("/insights", params={"domain": "ktxh", "lang": "en"})
    assert "Off track" in english.text and "Projected only 74.4% of the target" in english.text


def test_rankings_and_anomalies_over_http(
    client: TestClient, database: Database, clock: FrozenClock, personas: dict[str, str]
) -> None:
    places = communes(database)
    agency_key = key(database, clock())
    seed(client, agency_key, anomaly_items(places))
    seed(client, agency_key, [i for i in rate_items(places) if i["indicator"] != SPIKE])
    login(client, "leader")
    ranked = client.get(f"/api/v1/insights/rankings/{RATE}").json()
    assert [(row["rank"], row["unit"], row["change"]) for row in ranked["rows"]] == [
        (1, places[0], 2),
        (2, places[2], -1),
        (3, places[1], -1),
    ]
    index = client.get("/api/v1/insights/rankings/index.dich_vu_cong")
    assert index.status_code == 200 and len(index.json()["rows"]) == 3
    page = client.get(f"/insights/rankings/{RATE}")
    assert page.status_code == 200 and "▲ tăng 2 bậc" in page.text and "▼ giảm 1 bậc" in page.text
    assert "Tháng 10/2026" in words(page.text)
    agencies = client.get("/api/v1/insights/rankings/plan.on_track", params={"by": "agency"})
    assert agencies.status_code == 200 and agencies.json()["by"] == "agency"
    # Bad input: a whole-request problem in both languages.
    bad = client.get(f"/api/v1/insights/rankings/{RATE}", params={"by": "district"})
    assert bad.status_code == 422 and bad.json()["code"] == "insights_bad_parameter" and bad.json()["message_en"]
    unknown = client.get("/api/v1/insights/rankings/hcc.khong_co")
    assert unknown.status_code == 404 and unknown.json()["code"] == "insights_unknown_code"
    assert client.get("/api/v1/insights/anomalies", params={"since": "hôm qua"}).status_code == 422
    assert client.get("/insights/rankings/hcc.khong_co").status_code == 404

    found = client.get("/api/v1/insights/anomalies", params={"since": "2026-01-01", "indicator": [SPIKE, SHIFT]}).json()
    kinds = {(item["indicator"], item["subject"], item["kind"]) for item in found["items"]}
    assert (SPIKE, places[0], "spike") in kinds and (SHIFT, places[1], "level_shift") in kinds
    assert all(item["message_vi"] and item["message_en"] for item in found["items"])

    # On the board of public administration: the list "Bất thường" and the marks on the trend's points.
    board = client.get("/boards/hcc", params={"subject": places[0]})
    assert board.status_code == 200
    listed = words(board.text[board.text.index('id="board-anomalies"') :].split("</section>")[0])
    assert "Bất thường" in listed and "Tăng đột biến" in listed and "Tháng 10/2026" in listed
    assert "Hồ sơ tiếp nhận" in listed and "600 hồ sơ" in listed
    card = board.text[board.text.index(f'id="indicator-{SPIKE}"') :].split("</article>")[0]
    assert '"anomalies": [{"index":' in html.unescape(card) and 'class="point-anomaly"' in card
    shifted = words(client.get("/boards/hcc", params={"subject": places[1], "lang": "en"}).text)
    assert "Level shift" in shifted and "Sustained change of level since 01/07/2026" in shifted
    calm = client.get("/boards/hcc", params={"subject": places[2]})
    assert 'id="anomalies-none"' in calm.text
