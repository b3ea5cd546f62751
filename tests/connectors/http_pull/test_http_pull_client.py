"""The protocol code on its own (no database): the limits that protect the worker — answer size, redirects — and
how a server's Retry-After is read."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from cityops.connectors.http_pull.client import Paging, PullError, PullRequest, fetch_pages
from connectors.http_pull.source import Reply, Seen, SourceServer, answer, record


def items(document: Any) -> Sequence[Any]:
    return list(document["data"]["items"])


def pull(request: PullRequest) -> list[Any]:
    return [page.records for page in fetch_pages(request, items)]


def test_an_answer_over_the_size_limit_is_refused(source: SourceServer) -> None:
    source.script(Reply(body=answer(*[record("40", "10/2026", n, n) for n in range(200)])))

    with pytest.raises(PullError) as refused:
        pull(PullRequest(source.url(), max_bytes=4096))

    assert (refused.value.code, refused.value.retryable) == ("response_too_large", False)
    assert refused.value.details == {"limit_mb": "0.00390625"}


def test_redirects_that_do_not_end_are_refused(source: SourceServer) -> None:
    source.answer = lambda seen: Reply(302, b"", {"Location": f"{seen.path}x"})

    with pytest.raises(PullError) as refused:
        pull(PullRequest(source.url(), max_redirects=3))

    assert refused.value.code == "too_many_redirects"
    assert len(source.seen) == 4


@pytest.mark.parametrize(
    ("headers", "wait"),
    [
        ({"Retry-After": "120"}, 120.0),
        ({"Retry-After": "Fri, 27 Nov 2026 03:00:30 GMT", "Date": "Fri, 27 Nov 2026 03:00:00 GMT"}, 30.0),
        ({"Retry-After": "soon"}, None),
        ({}, None),
    ],
)
def test_retry_after_is_read_in_seconds_or_as_a_date(
    source: SourceServer, headers: dict[str, str], wait: float | None
) -> None:
    source.script(Reply(503, {"error": "busy"}, headers))

    with pytest.raises(PullError) as refused:
        pull(PullRequest(source.url()))

    assert (refused.value.code, refused.value.retryable) == ("http_status", True)
    assert refused.value.details.get("retry_after") == wait


@pytest.mark.parametrize(("status", "retryable"), [(500, True), (502, True), (429, True), (400, False), (410, False)])
def test_only_statuses_that_may_pass_are_retryable(source: SourceServer, status: int, retryable: bool) -> None:
    source.script(Reply(status, {"error": "x"}))

    with pytest.raises(PullError) as refused:
        pull(PullRequest(source.url()))

    assert (refused.value.code, refused.value.retryable, refused.value.details["status"]) == (
        "http_status",
        retryable,
        status,
    )


def test_page_paging_sends_the_since_parameter_with_every_page(source: SourceServer) -> None:
    def reply(seen: Seen) -> Reply:
        page = seen.query["p"]
        return Reply(body=answer() if page == "3" else answer(record("40", f"{page}/2026")))

    source.answer = reply

    pages = pull(
        PullRequest(source.url(), params={"tu": "2026-11-01"}, paging=Paging("page", page_param="p", page_size=1))
    )

    assert len(pages) == 3
    assert [seen.query for seen in source.seen] == [{"tu": "2026-11-01", "p": str(n)} for n in (1, 2, 3)]
