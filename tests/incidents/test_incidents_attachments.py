"""Files attached to incidents: taken by their content, refused clearly (nothing stored), kept outside the web root,
downloaded byte for byte as attachments, only by those who may see the incident."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any

from incidents_support import signed_in, trail

from cityops.clock import FrozenClock
from cityops.db.engine import Database
from cityops.web.app import WEB_DIR, create_app
from conftest import Backend, count_rows


def png(width: int = 2, height: int = 2) -> bytes:
    """A real PNG image (grey pixels)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def docx() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<w:document/>")
    return buffer.getvalue()


EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 48 + b"This program cannot be run"


def stored_files(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file()) if root.exists() else []


def test_attachments_are_checked_by_content_stored_outside_the_web_root_and_downloaded_as_sent(
    app: Any, backend: Backend, database: Database, clock: FrozenClock, personas: dict[str, str]
) -> None:
    root = backend.settings.data_dir / "attachments"
    before = set(stored_files(root))  # other tests' files outlive their rows: compare with what was there
    with signed_in(app, "operator", "handler_a", "officer_b", "leader") as (operator, handler, officer_b, leader):
        number = operator.post(
            "/api/v1/incidents", json={"title": "Ảnh hiện trường", "category": "y_te", "severity": "medium"}
        ).json()["id"]
        image = png()
        sent = handler.post(
            f"/api/v1/incidents/{number}/attachments", files={"file": ("hiện trường/../ảnh 1.png", image, "image/png")}
        )
        assert sent.status_code == 201, sent.text
        (attachment,) = sent.json()["attachments"]
        assert attachment["filename"] == "ảnh 1.png" and attachment["content_type"] == "image/png"
        assert attachment["size"] == len(image) and attachment["uploaded_by"] == "handler_a"
        assert trail(database, number)[-1] == "attachment"

        # The bytes live under the data directory, under a generated name, not under the web root.
        (kept,) = set(stored_files(root)) - before
        assert kept.read_bytes() == image and "ảnh" not in kept.name and kept.suffix == ""
        assert not kept.resolve().is_relative_to(WEB_DIR.resolve())

        downloaded = leader.get(attachment["url"])
        assert downloaded.status_code == 200 and downloaded.content == image
        assert downloaded.headers["content-type"] == "image/png"
        assert downloaded.headers["content-disposition"].startswith("attachment;")
        assert "filename*=UTF-8''%E1%BA%A3nh%201.png" in downloaded.headers["content-disposition"]
        assert downloaded.headers["x-content-type-options"] == "nosniff"
        assert officer_b.get(attachment["url"]).status_code == 404  # another agency's incident
        assert officer_b.get(f"/api/v1/incidents/{number}/attachments/999").json()["code"] == "incident_not_found"
        missing = leader.get(f"/api/v1/incidents/{number}/attachments/999999")
        assert missing.status_code == 404 and missing.json()["code"] == "incident_attachment_not_found"

        # Refusals: clear, and nothing is stored.
        rows = count_rows(database, "incident_attachments")
        events = len(trail(database, number))
        renamed = handler.post(
            f"/api/v1/incidents/{number}/attachments", files={"file": ("bao_cao.pdf", EXE, "application/pdf")}
        )
        assert renamed.status_code == 415 and renamed.json()["code"] == "incident_attachment_type"
        assert "bao_cao.pdf" in renamed.json()["message_vi"] and "Không có gì được lưu" in renamed.json()["message_vi"]
        assert "PDF" in renamed.json()["message_en"]
        lying = handler.post(f"/api/v1/incidents/{number}/attachments", files={"file": ("bien_ban.pdf", image)})
        assert lying.status_code == 415 and lying.json()["reason"] == "attachment_mismatch"
        assert "PNG" in lying.json()["message_vi"]
        empty = handler.post(f"/api/v1/incidents/{number}/attachments", files={"file": ("rong.txt", b"")})
        assert empty.status_code == 422 and empty.json()["reason"] == "attachment_empty"
        no_file = handler.post(f"/api/v1/incidents/{number}/attachments", data={"ghi_chu": "thiếu tệp"})
        assert no_file.status_code == 422 and no_file.json()["reason"] == "attachment_missing"
        assert (
            officer_b.post(f"/api/v1/incidents/{number}/attachments", files={"file": ("a.png", image)}).status_code
            == 404
        )
        assert count_rows(database, "incident_attachments") == rows
        assert len(trail(database, number)) == events
        assert set(stored_files(root)) - before == {kept}

        # Word files and plain text are taken too, by their content.
        word = handler.post(f"/api/v1/incidents/{number}/attachments", files={"file": ("Biên bản.docx", docx())})
        assert word.status_code == 201 and word.json()["attachments"][-1]["content_type"].endswith("document")
        note = handler.post(
            f"/api/v1/incidents/{number}/attachments", files={"file": ("ghi chú.txt", "Đã xử lý.\n".encode())}
        )
        assert note.status_code == 201 and note.json()["attachments"][-1]["content_type"].startswith("text/plain")

    # Over the size limit: refused before anything is written.
    small = backend.settings.model_copy(update={"max_attachment_bytes": 100})
    limited = create_app(small, clock=clock, database=database)
    before = stored_files(root)
    with signed_in(limited, "handler_a") as (handler,):
        big = handler.post(f"/api/v1/incidents/{number}/attachments", files={"file": ("lon.png", png() + bytes(200))})
        assert big.status_code == 413 and big.json()["code"] == "incident_attachment_too_large"
        assert "100" in big.json()["message_vi"] and "Không có gì được lưu" in big.json()["message_vi"]
    assert stored_files(root) == before
    assert count_rows(database, "incident_attachments") == 3
