"""Settings of an http_pull feed: where to GET, how to authenticate, how the answer is paged, which field is the
"since" cursor, and how the records map to observations.

    {
      "url": "https://lgsp.nghean.gov.vn/igate/api/thong-ke/ho-so",
      "auth": "header", "auth_header": "X-API-Key", "token": "…",      stored encrypted, never shown back
      "params": {"donVi": "40"},
      "paging": "page", "page_param": "page", "size_param": "size", "page_size": 100,
      "since_param": "tuNgay", "cursor_path": "ngayCapNhat",
      "mapping": {"records": "data.items", "subject": "maDonVi", …}     see cityops.connectors.mapping
    }

A mistake is answered in Vietnamese and English, at the field it concerns.
"""

from __future__ import annotations

import re
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from cityops.connectors.mapping import Mapping
from cityops.i18n import both

# A header name is an RFC 9110 token; a value visible ASCII and spaces (no line breaks that could add a header).
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$", re.ASCII)
_HEADER_VALUE = re.compile(r"^[\x20-\x7e]{0,1000}$", re.ASCII)
_PARAM_NAME = re.compile(r"^[^\s\x00-\x1f\x7f&=#]{1,100}$")
_PARAM_VALUE = re.compile(r"^[^\x00-\x1f\x7f]{0,1000}$")
_PATH = re.compile(r"^[^\s.]+(\.[^\s.]+)*$")
# Credentials belong in `auth` and `token` (encrypted), never in plain headers.
CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})


def _invalid(code: str, **params: Any) -> PydanticCustomError:
    """A validation error whose reason reads in Vietnamese, then English (it fills feeds.error.invalid_settings)."""
    vietnamese, english = both(f"http_pull.settings.{code}", **params)
    return PydanticCustomError(f"http_pull_{code}", "{reason}", {"reason": f"{vietnamese} / {english}"})


class HttpPullSettings(BaseModel):
    """Where to GET, how to authenticate, and how the answer maps to observations."""

    model_config = ConfigDict(extra="forbid", validate_default=True)

    url: str = Field(max_length=2000)
    auth: Literal["none", "bearer", "header", "basic"] = "none"
    username: str = Field(default="", max_length=200)
    token: SecretStr | None = None  # the bearer token, the header's value, or the basic password
    auth_header: str = ""
    headers: dict[str, str] = Field(default_factory=dict, max_length=20)
    timeout_seconds: float = Field(default=30.0, gt=0, le=300)
    paging: Literal["none", "page", "offset", "next_link"] = "none"
    page_param: str = "page"
    size_param: str = ""
    page_size: int = Field(default=100, ge=1, le=10_000)
    first_page: int = Field(default=1, ge=0, le=1)
    offset_param: str = "offset"
    next_path: str = ""
    max_pages: int = Field(default=100, ge=1, le=10_000)
    since_param: str = ""
    since_start: str = Field(default="", max_length=200)
    cursor_path: str = ""
    params: dict[str, str] = Field(default_factory=dict, max_length=30)
    mapping: Mapping

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        value = value.strip()
        try:
            parts = urlsplit(value)
            if parts.port == 0:  # .port also raises ValueError for a port that is not a number up to 65535
                raise ValueError("port 0")
        except ValueError:
            raise _invalid("url_scheme") from None
        if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in value):
            raise _invalid("url_scheme")
        if parts.username is not None or parts.password is not None:
            raise _invalid("url_credentials")
        if parts.fragment:
            raise _invalid("url_fragment")
        return value

    @field_validator("username")
    @classmethod
    def _username(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("auth") == "basic" and (not value or ":" in value or not value.isprintable()):
            raise _invalid("username_needed")
        return value

    @field_validator("token")
    @classmethod
    def _token(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        auth = info.data.get("auth")
        secret = value.get_secret_value() if value is not None else ""
        if auth in ("bearer", "header", "basic"):
            if not secret.strip():
                raise _invalid("token_needed", auth=auth)
            if auth != "basic" and not _HEADER_VALUE.match(secret):
                raise _invalid("token_characters")
        return value

    @field_validator("auth_header")
    @classmethod
    def _auth_header(cls, value: str, info: ValidationInfo) -> str:
        value = value.strip()
        if info.data.get("auth") == "header" and not _HEADER_NAME.match(value):
            raise _invalid("auth_header_needed")
        return value

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        auth_header = str(info.data.get("auth_header") or "").lower()
        for name, text in value.items():
            if not _HEADER_NAME.match(name):
                raise _invalid("header_name", name=name[:60])
            if not _HEADER_VALUE.match(text):
                raise _invalid("header_value", name=name[:60])
            if name.lower() in CREDENTIAL_HEADERS or (auth_header and name.lower() == auth_header):
                raise _invalid("header_credentials", name=name[:60])
        return value

    @field_validator("page_param", "size_param", "offset_param", "since_param")
    @classmethod
    def _param_name(cls, value: str, info: ValidationInfo) -> str:
        value = value.strip()
        if value and not _PARAM_NAME.match(value):
            raise _invalid("param_name", name=value[:60])
        paging = info.data.get("paging")
        if not value and (
            (info.field_name == "page_param" and paging == "page")
            or (info.field_name == "offset_param" and paging == "offset")
        ):
            raise _invalid("paging_param_needed", paging=paging)
        return value

    @field_validator("next_path", "cursor_path")
    @classmethod
    def _path(cls, value: str, info: ValidationInfo) -> str:
        value = value.strip()
        if value and not _PATH.match(value):
            raise _invalid("path", path=value[:60])
        if info.field_name == "next_path" and info.data.get("paging") == "next_link" and not value:
            raise _invalid("next_path_needed")
        if info.field_name == "cursor_path" and bool(value) != bool(info.data.get("since_param")):
            raise _invalid("since_pair")
        return value

    @field_validator("since_start")
    @classmethod
    def _since_start(cls, value: str, info: ValidationInfo) -> str:
        if value and not info.data.get("since_param"):
            raise _invalid("since_pair")
        if not _PARAM_VALUE.match(value):
            raise _invalid("param_value", name="since_start")
        return value

    @field_validator("params")
    @classmethod
    def _params(cls, value: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        paging = info.data.get("paging")
        managed = {info.data.get("since_param") or ""}
        if paging == "page":
            managed |= {info.data.get("page_param") or "", info.data.get("size_param") or ""}
        elif paging == "offset":
            managed |= {info.data.get("offset_param") or "", info.data.get("size_param") or ""}
        managed.discard("")
        for name, text in value.items():
            if not _PARAM_NAME.match(name):
                raise _invalid("param_name", name=name[:60])
            if not _PARAM_VALUE.match(text):
                raise _invalid("param_value", name=name[:60])
            if name in managed:
                raise _invalid("param_managed", name=name[:60])
        return value
