"""The protocol of an http_pull feed: GET JSON pages from a REST endpoint (the LGSP / iGate style), with its
authentication headers, its paging and its limits. Plain httpx and the standard library, nothing of cityops: what
the pages mean is the caller's business (it passes how to find the records and the next link of a page).

Every failure is a PullError with a code, whether retrying can help, and details for the message:

    http_status          the server answered an error (5xx, 429 and 408 are worth retrying; Retry-After is kept)
    http_unauthorized    401 or 403: the token or password is wrong, expired or lacks the right
    http_not_found       404: the address is wrong or the endpoint was moved
    timeout              no answer within the timeout (retryable)
    connection_failed    the server cannot be reached, or the connection broke (retryable)
    not_json             the answer is not JSON (an HTML login page, a proxy's error page, a cut-off body)
    response_too_large   an answer over the size limit
    redirect_other_host  a redirect to another host (credentials are never sent there)
    too_many_redirects   redirects that do not end
    too_many_pages       more pages than the limit
    paging_loop          the same page again (the server ignores the paging parameters, or its next link loops)
    address_refused      the host is an internal address not allowed (cityops.outbound; not retried)
    request_invalid      a request httpx refuses to send (a header value it cannot encode …)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from cityops.outbound import GuardedTransport, OutboundRefused

PAGING_MODES = ("none", "page", "offset", "next_link")
DEFAULT_MAX_BYTES = 20 * 1024 * 1024
DEFAULT_MAX_REDIRECTS = 5
_RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
_SNIPPET = 200


class PullError(Exception):
    """A GET that did not bring a JSON page; `code` says why, `retryable` whether trying again can help."""

    def __init__(self, code: str, /, *, retryable: bool, **details: Any) -> None:
        self.code = code
        self.retryable = retryable
        self.details = details
        super().__init__(f"{code}: {details}")


@dataclass(frozen=True)
class Paging:
    """How the endpoint splits its answer.

    page: ?<page_param>=first_page, first_page+1 … (&<size_param>=page_size) until a page has fewer than page_size
    records; offset: ?<offset_param>=0, page_size, … likewise; next_link: follow the URL each answer gives (the
    caller finds it) until there is none. The page size must not exceed what the server gives at most, or paging
    would stop after the first (short) page.
    """

    mode: str = "none"
    page_param: str = "page"
    size_param: str = ""
    page_size: int = 100
    first_page: int = 1
    offset_param: str = "offset"
    max_pages: int = 100


@dataclass(frozen=True)
class PullRequest:
    """What to GET: the address, its headers (authentication included), query parameters, limits."""

    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)
    basic_auth: tuple[str, str] | None = None
    timeout_seconds: float = 30.0
    paging: Paging = field(default_factory=Paging)
    max_bytes: int = DEFAULT_MAX_BYTES
    max_redirects: int = DEFAULT_MAX_REDIRECTS


@dataclass
class Page:
    """One JSON answer: its number (from 1), the URL it came from, the document and its records."""

    number: int
    url: str
    document: Any
    records: Sequence[Any]


def fetch_pages(
    request: PullRequest,
    records_of: Callable[[Any], Sequence[Any]],
    next_link_of: Callable[[Any], Any] | None = None,
    *,
    transport: httpx.BaseTransport | None = None,
) -> Iterator[Page]:
    """GET every page of the answer, one after the other; PullError when one cannot be had.

    `records_of(document)` finds a page's records (its errors pass through); `next_link_of(document)` its next
    URL, for next_link paging (absent, null or "" ends the paging).
    """
    paging = request.paging
    if paging.mode not in PAGING_MODES:
        raise ValueError(f"unknown paging mode {paging.mode!r}")
    auth = httpx.BasicAuth(*request.basic_auth) if request.basic_auth else None
    timeout = httpx.Timeout(request.timeout_seconds)
    transport = transport or GuardedTransport()  # no internal address unless an admin allows it (cityops.outbound)
    with httpx.Client(timeout=timeout, transport=transport, follow_redirects=False) as client:
        getter = _Getter(client, request, auth)
        if paging.mode == "next_link":
            yield from _follow_links(getter, request, records_of, next_link_of)
        else:
            yield from _numbered_pages(getter, request, records_of)


def _numbered_pages(
    getter: _Getter, request: PullRequest, records_of: Callable[[Any], Sequence[Any]]
) -> Iterator[Page]:
    paging = request.paging
    offset = 0
    previous: Sequence[Any] | None = None
    for number in range(1, paging.max_pages + 2):
        if number > paging.max_pages:
            raise PullError("too_many_pages", retryable=False, max_pages=paging.max_pages)
        params = dict(request.params)
        if paging.mode == "page":
            params[paging.page_param] = str(paging.first_page + number - 1)
        elif paging.mode == "offset":
            params[paging.offset_param] = str(offset)
        if paging.mode != "none" and paging.size_param:
            params[paging.size_param] = str(paging.page_size)
        answer = getter.get(request.url, params)
        if answer is None:  # 204 No Content: nothing (more) to read
            return
        url, document = answer
        records = records_of(document)
        if previous is not None and records and list(records) == list(previous):
            raise PullError("paging_loop", retryable=False, page=number)
        yield Page(number, url, document, records)
        if paging.mode == "none" or len(records) < paging.page_size:
            return
        previous = records
        offset += len(records)


def _follow_links(
    getter: _Getter,
    request: PullRequest,
    records_of: Callable[[Any], Sequence[Any]],
    next_link_of: Callable[[Any], Any] | None,
) -> Iterator[Page]:
    if next_link_of is None:
        raise ValueError("next_link paging needs next_link_of")
    url: str | None = request.url
    params: Mapping[str, str] | None = request.params
    seen: set[str] = set()
    number = 0
    while url:
        number += 1
        if number > request.paging.max_pages:
            raise PullError("too_many_pages", retryable=False, max_pages=request.paging.max_pages)
        answer = getter.get(url, params)
        if answer is None:
            return
        final_url, document = answer
        seen.add(final_url)
        yield Page(number, final_url, document, records_of(document))
        link = next_link_of(document)
        if link is None or link == "":
            return
        if not isinstance(link, str):
            raise PullError("not_json", retryable=False, reason=f"the next link is not a text: {str(link)[:60]}")
        url = urljoin(final_url, link.strip())
        params = None  # a next link carries its own query
        _check_same_origin(request.url, url)
        if url in seen:
            raise PullError("paging_loop", retryable=False, page=number + 1)


class _Getter:
    """GETs one URL: same-origin redirects followed by hand, the body read up to the limit, parsed as JSON."""

    def __init__(self, client: httpx.Client, request: PullRequest, auth: httpx.Auth | None) -> None:
        self.client = client
        self.request = request
        self.auth = auth

    def get(self, url: str, params: Mapping[str, str] | None) -> tuple[str, Any] | None:
        """The final URL and the JSON document; None for 204 No Content."""
        for _ in range(self.request.max_redirects + 1):
            response = self._send(url, params)
            try:
                location = response.headers.get("location")
                if response.is_redirect and location:
                    target = urljoin(str(response.url), location)
                    _check_same_origin(str(response.url), target)
                    url, params = target, None
                    continue
                return self._answer(response)
            finally:
                response.close()
        raise PullError("too_many_redirects", retryable=False, limit=self.request.max_redirects)

    def _answer(self, response: httpx.Response) -> tuple[str, Any] | None:
        if response.status_code == 204:
            return None
        if response.status_code >= 400:
            raise _status_error(response, self._read(response, _SNIPPET * 4))
        if not 200 <= response.status_code < 300:
            raise PullError("http_status", retryable=False, status=response.status_code, reason=_phrase(response))
        body = self._read(response, self.request.max_bytes)
        return str(response.url), _parse_json(body, response.headers.get("content-type", ""))

    def _send(self, url: str, params: Mapping[str, str] | None) -> httpx.Response:
        try:
            built = self.client.build_request("GET", url, params=dict(params) if params else None)
            built.headers.update(self.request.headers)
            return self.client.send(built, auth=self.auth, stream=True)
        except httpx.TimeoutException as exc:
            raise PullError(
                "timeout", retryable=True, seconds=f"{self.request.timeout_seconds:g}", host=_host(url)
            ) from exc
        except OutboundRefused as exc:
            raise PullError("address_refused", retryable=False, host=_host(url), reason=str(exc)) from exc
        except (httpx.NetworkError, httpx.RemoteProtocolError, httpx.ProxyError) as exc:
            raise PullError("connection_failed", retryable=True, host=_host(url), reason=_reason(exc)) from exc
        except (httpx.HTTPError, httpx.InvalidURL, UnicodeError, ValueError) as exc:
            raise PullError("request_invalid", retryable=False, reason=_reason(exc)) from exc

    def _read(self, response: httpx.Response, limit: int) -> bytes:
        """The body, at most `limit` bytes: an error answer's first bytes, a page whole (PullError above it)."""
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in response.iter_bytes():
                chunks.append(chunk)
                size += len(chunk)
                if size > limit:
                    if response.status_code >= 400:
                        break
                    raise PullError(
                        "response_too_large", retryable=False, limit_mb=f"{self.request.max_bytes / 1048576:g}"
                    )
        except httpx.TimeoutException as exc:
            raise PullError(
                "timeout", retryable=True, seconds=f"{self.request.timeout_seconds:g}", host=_host(str(response.url))
            ) from exc
        except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:
            raise PullError(
                "connection_failed", retryable=True, host=_host(str(response.url)), reason=_reason(exc)
            ) from exc
        return b"".join(chunks)


def _status_error(response: httpx.Response, body: bytes) -> PullError:
    status = response.status_code
    snippet = body[:_SNIPPET].decode("utf-8", "replace").strip()
    details: dict[str, Any] = {"status": status, "reason": _phrase(response), "body": snippet}
    if status in (401, 403):
        return PullError("http_unauthorized", retryable=False, **details)
    if status == 404:
        return PullError("http_not_found", retryable=False, url=_without_query(str(response.url)), **details)
    retry_after = _retry_after(response)
    if retry_after is not None:
        details["retry_after"] = retry_after
    return PullError("http_status", retryable=status in _RETRYABLE_STATUSES, **details)


def _phrase(response: httpx.Response) -> str:
    return response.reason_phrase or httpx.codes.get_reason_phrase(response.status_code) or "?"


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds the server asks to wait (Retry-After: seconds, or a date against the answer's own Date)."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
        now = parsedate_to_datetime(response.headers.get("date", ""))
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None or now.tzinfo is None:
        return None
    return max(0.0, (when - now).total_seconds())


def _parse_json(body: bytes, content_type: str) -> Any:
    if not body.strip():
        raise PullError("not_json", retryable=False, reason="empty answer")
    try:
        return json.loads(body)
    except UnicodeDecodeError as exc:
        raise PullError("not_json", retryable=False, reason=f"not UTF-8 text: {exc.reason}") from exc
    except json.JSONDecodeError as exc:
        kind = content_type.split(";")[0].strip().lower() or "?"
        reason = f"{exc.msg} at line {exc.lineno}, column {exc.colno} (content type {kind})"
        if "html" in kind or body.lstrip()[:1] == b"<":
            reason += "; an HTML page: a login page or a proxy's error page?"
        raise PullError("not_json", retryable=False, reason=reason[:300]) from exc


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


def _check_same_origin(current: str, target: str) -> None:
    """Credentials go with every request: a redirect or next link may lead to the same host only (http may
    become https on it, never the reverse)."""
    scheme, host, port = _origin(current)
    new_scheme, new_host, new_port = _origin(target)
    same = (new_scheme, new_host, new_port) == (scheme, host, port)
    upgraded = scheme == "http" and new_scheme == "https" and new_host == host
    if not (same or upgraded):
        raise PullError("redirect_other_host", retryable=False, host=host, target=_without_query(target)[:200])


def _host(url: str) -> str:
    return urlsplit(url).hostname or url[:60]


def _without_query(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def _reason(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text[:200]
