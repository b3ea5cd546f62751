"""Files attached to incidents: what kinds are taken (judged by their content, not only their name), where the
bytes are kept (under `settings.data_dir / "attachments"`, never under the web root, with a generated name),
and the file name shown back on download.
"""

from __future__ import annotations

import io
import os
import secrets
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from urllib.parse import quote


@dataclass(frozen=True)
class Kind:
    """A kind of file taken as an attachment."""

    code: str
    content_type: str
    extensions: tuple[str, ...]
    label: str


KINDS = {
    kind.code: kind
    for kind in (
        Kind("pdf", "application/pdf", (".pdf",), "PDF"),
        Kind("jpeg", "image/jpeg", (".jpg", ".jpeg"), "JPEG"),
        Kind("png", "image/png", (".png",), "PNG"),
        Kind("webp", "image/webp", (".webp",), "WebP"),
        Kind(
            "docx",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            (".docx",),
            "Word (DOCX)",
        ),
        Kind(
            "xlsx",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            (".xlsx",),
            "Excel (XLSX)",
        ),
        Kind("text", "text/plain; charset=utf-8", (".txt", ".csv", ".log"), "text"),
    )
}
ALLOWED_EXTENSIONS = tuple(extension for kind in KINDS.values() for extension in kind.extensions)
# Control characters a plain-text file may hold: tab, line feed, form feed, carriage return.
_TEXT_CONTROLS = {"\t", "\n", "\f", "\r"}


def _office_kind(content: bytes) -> str | None:
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            names = archive.namelist()  # the central directory only: nothing is decompressed
    except (zipfile.BadZipFile, ValueError, OSError):
        return None
    if "[Content_Types].xml" not in names:
        return None
    if any(name.startswith("word/") for name in names):
        return "docx"
    if any(name.startswith("xl/") for name in names):
        return "xlsx"
    return None


def _is_text(content: bytes) -> bool:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        return False
    return not any(unicodedata.category(char) == "Cc" and char not in _TEXT_CONTROLS for char in text)


def sniff(content: bytes) -> str | None:
    """The kind of a file by its first bytes (and, for Word and Excel, its zip directory); None when not taken."""
    if content.startswith(b"%PDF-"):
        return "pdf"
    if content.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if content.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if content[:4] == b"RIFF" and content[8:12] == b"WEBP":
        return "webp"
    if content.startswith(b"PK\x03\x04"):
        return _office_kind(content)
    if _is_text(content):
        return "text"
    return None


def clean_filename(name: str) -> str:
    """The name to show and offer on download: no folders, no control characters, at most 200 characters."""
    base = PureWindowsPath(PurePosixPath(name or "").name).name
    base = "".join(char for char in unicodedata.normalize("NFC", base) if unicodedata.category(char)[0] != "C")
    base = base.strip().strip(".") or "tep"
    if len(base) > 200:
        stem, dot, extension = base.rpartition(".")
        base = (stem[: 200 - len(extension) - 1] + dot + extension) if dot and len(extension) <= 10 else base[:200]
    return base


def extension_of(name: str) -> str:
    """The lower-case extension with its dot ('.pdf'), or ''."""
    return PurePosixPath(name.lower()).suffix


def store(directory: Path, incident_id: int, content: bytes) -> str:
    """Write the bytes under a generated name; the storage key (relative to the directory)."""
    key = f"{incident_id}/{secrets.token_hex(16)}"
    target = directory / key
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(target.name + ".part")
    with temporary.open("wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, target)
    return key


def path_of(directory: Path, storage_key: str) -> Path | None:
    """Where a stored file is, if it is inside the directory and exists."""
    root = directory.resolve()
    candidate = (root / storage_key).resolve()
    if not candidate.is_relative_to(root) or not candidate.is_file():
        return None
    return candidate


def remove(directory: Path, storage_key: str) -> None:
    """Delete a stored file (after a transaction that failed); nothing when it is not there."""
    found = path_of(directory, storage_key)
    if found is not None:
        found.unlink(missing_ok=True)


def content_disposition(filename: str) -> str:
    """`attachment` with an ASCII fallback name and the real (UTF-8) name, as RFC 6266 asks."""
    fallback = "".join(
        char if char.isascii() and (char.isalnum() or char in "._- ") else "_"
        for char in unicodedata.normalize("NFKD", filename)
        if not unicodedata.combining(char)
    )
    return f"attachment; filename=\"{fallback or 'file'}\"; filename*=UTF-8''{quote(filename, safe='')}"
