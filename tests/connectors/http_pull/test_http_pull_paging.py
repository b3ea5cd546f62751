"""Paging: by page number, by offset, or by the next link each answer gives — every page is fetched, and paging
that never ends (or loops, or leads to another host) fails the run with the reason instead of looping."""

from __future__ import annotations

from typing import Any

from cityops.clock import FrozenClock
from cityops.db.engine import Database
from connectors.http_pull.source import (
    RECEIVED,
    Reply,
    Seen,
    SourceServer,
    answer,
    make_feed,
    record,
    run,
    settings,
    stored,
)

# Seven months of the province's dossiers, 2026-01 … 2026-07.
RECORDS = [record("40", f"{month:02d}/2026", 1000 + month, 900 + month) for month in range(1, 8)]
ALL_RECEIVED = {(RECEIVED, "40", f"2026-{month:02d}"): 1000 + month for month in range(1, 8)}


def received(database: Database) -> dict[tuple[str, str, str], float | None]:
    return {key: value for key, value in stored(database).items() if key[0] == RECEIVED}


def by_page(seen: Seen) -> Reply:
    page, size = int(seen.query.get("trang", "1")), int(seen.query.get("soBanGhi", "100"))
    return Reply(body=answer(*RECORDS[(page - 1) * size : page * size], tongSo=len(RECORDS)))


def by_offset(seen: Seen) -> Reply:
    start, size = int(seen.query.get("offset", "0")), int(seen.query.get("limit", "100"))
    return Reply(body=answer(*RECORDS[start : start + size]))


def test_page_paging_fetches_every_page(database: Database, clock: FrozenClock, source: SourceServer) -> None:
    source.answer = by_page
    feed_id = make_feed(
        database,
        clock,
        settings(source, paging="page", page_param="trang", size_param="soBanGhi", page_size=3, params={"nam": "2026"}),
    )

    result = run(database, feed_id, clock)

    assert (result["status"], result["accepted"], result["details"]["pages"]) == ("ok", 14, 3)
    assert [seen.query for seen in source.seen] == [
        {"nam": "2026", "trang": "1", "soBanGhi": "3"},
        {"nam": "2026", "trang": "2", "soBanGhi": "3"},
        {"nam": "2026", "trang": "3", "soBanGhi": "3"},
    ]
    assert received(database) == ALL_RECEIVED


def test_page_paging_ends_with_an_empty_page_when_the_last_is_full(
    database: Database, clock: FrozenClock, source: SourceServer
) -> None:
    source.answer = by_page
    feed_id = make_feed(
        database, clock, settings(source, paging="page", page_param="trang", size_param="soBanGhi", page_size=7)
    )

    result = run(database, feed_id, clock)

    assert (result["status"], result["accepted"], result["details"]["pages"]) == ("ok", 14, 2)
    assert [seen.query["trang"] for seen in source.seen] == ["1", "2"]


def test_page_numbers_may_start_at_zero(database: Database, clock: FrozenClock, source: SourceServer) -> None:
    source.answer = lambda seen: by_page(
        Seen(seen.path, {**seen.query, "trang": str(int(seen.query["trang"]) + 1)}, {})
    )
    feed_id = make_feed(
        database,
        clock,
        settings(source, paging="page", page_param="trang", size_param="soBanGhi", page_size=4, first_page=0),
    )

    assert run(database, feed_id, clock)["accepted"] == 14
    assert [seen.query["trang"] for seen in source.seen] == ["0", "1"]
    assert received(database) == ALL_RECEIVED


def test_offset_paging_fetches_every_page(database: Database, clock: FrozenClock, source: SourceServer) -> None:
    source.answer = by_offset
    feed_id = make_feed(
        database, clock, settings(source, paging="offset", offset_param="offset", size_param="limit", page_size=2)
    )

    result = run(database, feed_id, clock)

    assert (result["status"], result["accepted"], result["details"]["pages"]) == ("ok", 14, 4)
    assert [seen.query["offset"] for seen in source.seen] == ["0", "2", "4", "6"]
    assert received(database) == ALL_RECEIVED


def next_link_pages(source: SourceServer, link: Any) -> None:
    """Pages of two records; each answer's links.next is `link(page number)` until the last."""

    def reply(seen: Seen) -> Reply:
        page = int(seen.query.get("p", "1"))
        body: dict[str, Any] = answer(*RECORDS[(page - 1) * 2 : page * 2])
        if page * 2 < len(RECORDS):
            body["links"] = {"next": link(page + 1)}
        else:
            body["links"] = {"next": None}
        return Reply(body=body)

    source.answer = reply


def test_next_link_paging_follows_absolute_and_relative_links(
    database: Database, clock: FrozenClock, source: SourceServer
) -> None:
    next_link_pages(source, lambda page: source.url(f"/igate/api/ho-so?p={page}") if page % 2 else f"?p={page}")
    feed_id = make_feed(
        database,
        clock,
        settings(source, paging="next_link", next_path="links.next"),
    )

    result = run(database, feed_id, clock)

    assert (result["status"], result["accepted"], result["details"]["pages"]) == ("ok", 14, 4)
    assert [seen.query for seen in source.seen] == [{}, {"p": "2"}, {"p": "3"}, {"p": "4"}]
    assert received(database) == ALL_RECEIVED


def test_paging_that_does_not_end_fails_the_run_at_the_page_limit(
    database: Database, clock: FrozenClock, source: SourceServer
) -> None:
    source.answer = lambda seen: Reply(body=answer(record("40", f"{seen.query['trang']}/2026")))
    feed_id = make_feed(database, clock, settings(source, paging="page", page_param="trang", page_size=1, max_pages=5))
    delays: list[float] = []

    result = run(database, feed_id, clock, delays)

    assert (result["status"], result["attempts"], delays) == ("failed", 1, [])
    assert result["error"]["code"] == "too_many_pages" and result["error"]["retryable"] is False
    assert "hơn 5 trang" in result["error"]["message_vi"]
    assert "more than 5 pages" in result["error"]["message_en"]
    assert len(source.seen) == 5
    assert stored(database) == {}


def test_a_server_that_ignores_the_page_parameter_fails_the_run_as_a_paging_loop(
    database: Database, clock: FrozenClock, source: SourceServer
) -> None:
    source.script(Reply(body=answer(*RECORDS[:3])))
    feed_id = make_feed(database, clock, settings(source, paging="page", page_param="trang", page_size=3))

    result = run(database, feed_id, clock)

    assert (result["status"], result["error"]["code"]) == ("failed", "paging_loop")
    assert result["error"]["message_vi"].startswith("Trang 2 lặp lại một trang trước")
    assert result["error"]["message_en"].startswith("Page 2 repeats an earlier page")
    assert len(source.seen) == 2


def test_a_next_link_that_loops_fails_the_run(database: Database, clock: FrozenClock, source: SourceServer) -> None:
    next_link_pages(source, lambda page: "?p=1")
    feed_id = make_feed(database, clock, settings(source, paging="next_link", next_path="links.next"))

    result = run(database, feed_id, clock)

    assert (result["status"], result["error"]["code"]) == ("failed", "paging_loop")
    assert len(source.seen) == 2


def test_a_next_link_to_another_host_is_not_followed(
    database: Database, clock: FrozenClock, source: SourceServer
) -> None:
    next_link_pages(source, lambda page: f"http://thu-thap-du-lieu.example/ho-so?p={page}")
    feed_id = make_feed(
        database,
        clock,
        settings(source, paging="next_link", next_path="links.next", auth="bearer", token="bi-mat-2026"),
    )

    result = run(database, feed_id, clock)

    assert (result["status"], result["error"]["code"], result["error"]["retryable"]) == (
        "failed",
        "redirect_other_host",
        False,
    )
    assert "thu-thap-du-lieu.example" in result["error"]["message_en"]
    assert "máy chủ khác" in result["error"]["message_vi"]
    assert len(source.seen) == 1
