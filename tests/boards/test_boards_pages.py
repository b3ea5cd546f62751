"""The subsystem boards (/boards, /boards/<domain>): every monitored item with its value against target in words,
the communes best to worst, drill-down to a commune and back, the period selector, 404s, English, visibility."""

from __future__ import annotations

import html
import re

from boards_support import HEALTH_INDICATORS, communes, health_items, health_key, seed
from fastapi.testclient import TestClient
from sqlalchemy import select

from cityops.catalog.models import Domain, Indicator
from cityops.clock import FrozenClock
from cityops.db.engine import Database
from conftest import login


def article(page: str, code: str) -> str:
    """The card of one indicator on a board, as text without tags (entities decoded)."""
    start = page.index(f'id="indicator-{code}"')
    return page[start : page.index("</article>", start)]


def words(fragment: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def test_the_health_board_shows_every_item_against_target_by_commune_and_drills_down(
    client: TestClient, database: Database, clock: FrozenClock, personas: dict[str, str]
) -> None:
    key = health_key(database, clock())
    places = communes(database)
    seed(client, key, health_items([code for code, _, _ in places]))
    login(client, "leader")

    index = client.get("/boards")
    assert index.status_code == 200
    with database.reading() as session:
        domains = list(session.scalars(select(Domain).order_by(Domain.sort_order)))
        health = list(
            session.scalars(
                select(Indicator).join(Domain, Domain.id == Indicator.domain_id).where(Domain.code == "yte")
            )
        )
    assert len(domains) == 9
    for domain in domains:
        assert f'href="/boards/{domain.code}"' in index.text and domain.name_vi in index.text

    page = client.get("/boards/yte")
    assert page.status_code == 200
    text = page.text
    # Every monitored item of the domain is there, each with its own card.
    assert len(health) >= 19
    for indicator in health:
        assert f'id="indicator-{indicator.code}"' in text and html.escape(indicator.name_vi) in text
    # Statuses in words against targets and thresholds, Vietnamese numbers.
    rate = words(article(text, "yte.ty_le_tiem_chung_day_du"))  # (98 + 88 + 80) / 300, computed from communes
    assert "88,67%" in rate and "Cần theo dõi" in rate and "Kế hoạch: 95%" in rate
    assert "tính từ 3/130 xã, phường" in rate and "Tháng 11/2026" in rate
    coverage = words(article(text, "yte.ty_le_bao_phu_bhyt"))
    assert "96%" in coverage and "Đạt" in coverage and "cập nhật 27/11/2026 10:00" in coverage
    beds = words(article(text, "yte.cong_suat_giuong"))
    assert "97%" in beds and "Không đạt" in beds
    records = words(article(text, "yte.ty_le_hssk_dien_tu"))
    assert "Chưa có số liệu" in records
    assert 'class="card board-item stale" id="indicator-yte.co_so_kcb"' in text  # sent ten days ago
    assert "Số liệu cũ" in words(article(text, "yte.co_so_kcb")) and "Số liệu cũ" not in coverage
    assert 'class="card board-item" id="indicator-yte.ty_le_bao_phu_bhyt"' in text
    # Plan vs actual: the trend (October, November) carries the target of each period, and the table says it.
    assert '"targets": [95.0, 95.0]' in article(text, "yte.ty_le_tiem_chung_day_du")
    assert "Tháng 10/2026 83,67% 95% Tháng 11/2026 88,67% 95%" in rate and "đạt 93,3% kế hoạch" in rate

    # By commune: best first, each a link to the commune's board.
    (best_code, best_name, _), (mid_code, mid_name, _), (worst_code, worst_name, _) = places
    by_commune = article(text, "yte.ty_le_tiem_chung_day_du")
    positions = [by_commune.index(f"subject={code}") for code in (best_code, mid_code, worst_code)]
    assert positions == sorted(positions)
    listed = words(by_commune)
    assert listed.index(best_name) < listed.index(mid_name) < listed.index(worst_name)
    assert "98%" in words(by_commune) and "80%" in words(by_commune)
    lower_first = article(text, "yte.cong_suat_giuong")
    assert "Chưa có số liệu theo xã, phường" in words(lower_first)

    # Drill down to the worst commune, then back to the province.
    link = re.search(rf'href="(\?[^"]*subject={worst_code}[^"]*)"', by_commune)
    assert link is not None
    commune_page = client.get("/boards/yte" + html.unescape(link[1]))
    assert commune_page.status_code == 200
    crumbs = words(commune_page.text[commune_page.text.index('class="crumbs"') :].split("</nav>")[0])
    assert f"Nghệ An › {worst_name}" in crumbs
    commune_rate = words(article(commune_page.text, "yte.ty_le_tiem_chung_day_du"))
    assert "80%" in commune_rate and "Không đạt" in commune_rate
    assert "Theo xã, phường" not in commune_page.text  # a commune has no communes below it
    back = re.search(r'href="([^"]+)" id="board-back"', commune_page.text)
    assert back is not None
    province_again = client.get(html.unescape(back[1]))
    assert province_again.status_code == 200 and "Cần theo dõi" in words(
        article(province_again.text, "yte.ty_le_tiem_chung_day_du")
    )
    assert 'id="board-back"' not in province_again.text

    # The period selector changes the series: 7 days, then 30 days of outpatient visits.
    week = client.get("/boards/yte", params={"range": "7d"})
    month = client.get("/boards/yte", params={"range": "30d"})
    assert "Bảng số liệu (7 kỳ)" in words(article(week.text, "yte.luot_kham_ngoai_tru"))
    assert "Bảng số liệu (30 kỳ)" in words(article(month.text, "yte.luot_kham_ngoai_tru"))
    assert re.search(r'<option value="7d" selected>', week.text)
    # … a range that is not offered falls back to the default and says so; one for another commune keeps it.
    odd = client.get("/boards/yte", params={"range": "5sy"})
    assert odd.status_code == 200 and "30 ngày qua" in words(odd.text.split('id="board-notice"')[1][:400])
    kept = client.get("/boards/yte", params={"range": "7d", "subject": worst_code})
    assert f'name="subject" value="{worst_code}"' in kept.text and "(7 kỳ)" not in kept.text

    # Unknown subsystem or commune: a 404 page, in words.
    missing = client.get("/boards/khong-co")
    assert missing.status_code == 404 and "Không có phân hệ mã “khong-co”" in html.unescape(missing.text)
    nowhere = client.get("/boards/yte", params={"subject": "99999"})
    assert nowhere.status_code == 404 and "99999" in nowhere.text
    assert client.get("/boards/yte", params={"subject": "40"}).status_code == 200  # the province itself

    # English: words and numbers the English way.
    english = client.get("/boards/yte", params={"lang": "en"})
    rate_en = words(article(english.text, "yte.ty_le_tiem_chung_day_du"))
    assert "88.67%" in rate_en and "Watch" in rate_en and "Plan: 95%" in rate_en
    assert "computed from 3/130 communes" in rate_en and "11/2026" in rate_en and "Tháng" not in rate_en
    assert "Off target" in words(article(english.text, "yte.cong_suat_giuong"))
    assert set(HEALTH_INDICATORS) <= {m for m in re.findall(r'id="indicator-([^"]+)"', english.text)}


def test_agencies_see_only_what_they_may_on_the_boards(
    client: TestClient, database: Database, personas: dict[str, str]
) -> None:
    with database.reading() as session:
        restricted = list(
            session.scalars(
                select(Indicator)
                .join(Domain, Domain.id == Indicator.domain_id)
                .where(Domain.code == "antt", Indicator.access == "restricted")
            )
        )
    assert restricted
    login(client, "officer_a")  # health department: not the police's restricted indicators
    officer = client.get("/boards/antt")
    assert officer.status_code == 200
    for indicator in restricted:
        assert f'id="indicator-{indicator.code}"' not in officer.text
    client.cookies.clear()
    login(client, "leader")
    leader = client.get("/boards/antt")
    for indicator in restricted:
        assert f'id="indicator-{indicator.code}"' in leader.text
    client.cookies.clear()
    assert client.get("/boards/yte", follow_redirects=False).status_code in (302, 303)  # log in first
