"""One problem-details shape (RFC 9457) for every API error, with a code and Vietnamese and English messages."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from cityops.i18n import both, catalog

PROBLEM_MEDIA_TYPE = "application/problem+json"
# Every problem code, as the translation catalog names them (problem.<code>.title).
PROBLEM_CODES = tuple(
    key.split(".")[1] for key in catalog("vi") if key.startswith("problem.") and key.endswith(".title")
)


class Problem(Exception):
    """An API error: raised anywhere below a route, answered as application/problem+json."""

    def __init__(
        self,
        status: int,
        code: str,
        /,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
        **params: Any,
    ) -> None:
        super().__init__(code)
        self.status = status
        self.code = code
        self.params = params
        self.headers = headers or {}
        self.extra = extra or {}

    def body(self, language: str = "vi", instance: str = "") -> dict[str, Any]:
        """The problem document."""
        title_vi, title_en = both(f"problem.{self.code}.title")
        detail_vi, detail_en = both(f"problem.{self.code}.detail", **self.params)
        english = language == "en"
        document: dict[str, Any] = {
            "type": f"/docs/problems#{self.code}",
            "title": title_en if english else title_vi,
            "status": self.status,
            "detail": detail_en if english else detail_vi,
            "code": self.code,
            "message_vi": detail_vi,
            "message_en": detail_en,
        }
        if instance:
            document["instance"] = instance
        document.update(self.extra)
        return document

    def response(self, language: str = "vi", instance: str = "") -> Response:
        """The HTTP answer."""
        return Response(
            orjson.dumps(self.body(language, instance)),
            status_code=self.status,
            media_type=PROBLEM_MEDIA_TYPE,
            headers=self.headers,
        )
