"""Photos of reports: judged by their content (Pillow: JPEG, PNG or WebP only), re-encoded without any metadata
(EXIF and its GPS position, XMP, comments, colour profiles) and kept under `settings.data_dir / "photos"` with a
generated name — never under the web root, never under the citizen's file name."""

from __future__ import annotations

import hashlib
import io
import secrets
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

MAX_PHOTOS = 5
MAX_SIDE = 2560  # larger photos are scaled down (they are shown on a phone)
MAX_PIXELS = 60_000_000  # refused before decoding: a "decompression bomb"
FORMATS = {"JPEG": ("image/jpeg", ".jpg"), "PNG": ("image/png", ".png"), "WEBP": ("image/webp", ".webp")}


class PhotoRefused(ValueError):
    """A photo that is not taken: `code` is one of type, unreadable."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class CleanPhoto:
    """A photo ready to store: the re-encoded bytes and what is known of them."""

    content: bytes
    content_type: str
    extension: str
    width: int
    height: int

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


def clean(content: bytes) -> CleanPhoto:
    """The photo re-encoded without metadata, in its own format (JPEG, PNG or WebP), turned upright by its EXIF
    orientation and scaled to at most MAX_SIDE; PhotoRefused("type") for anything else."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(content)) as probe:
                kind = probe.format or ""
                if kind not in FORMATS:
                    raise PhotoRefused("type")
                if probe.width * probe.height > MAX_PIXELS:
                    raise PhotoRefused("unreadable")
                probe.load()
                image = ImageOps.exif_transpose(probe)
    except PhotoRefused:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise PhotoRefused("type") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise PhotoRefused("unreadable") from exc
    if max(image.size) > MAX_SIDE:
        image.thumbnail((MAX_SIDE, MAX_SIDE))
    content_type, extension = FORMATS[kind]
    output = io.BytesIO()
    # A new image holds only pixels: no EXIF, XMP, ICC profile or text chunks are carried over.
    if kind == "JPEG":
        bare = Image.new("RGB", image.size)
        bare.paste(image.convert("RGB"))
        bare.save(output, "JPEG", quality=85, optimize=True)
    elif kind == "PNG":
        mode = image.mode if image.mode in ("1", "L", "LA", "P", "RGB", "RGBA") else "RGBA"
        bare = Image.new(mode, image.size)
        if mode == "P":
            bare.putpalette(image.getpalette() or [])
        bare.paste(image.convert(mode) if image.mode != mode else image)
        bare.save(output, "PNG", optimize=True)
    else:
        has_alpha = image.mode in ("RGBA", "LA") or "transparency" in image.info
        mode = "RGBA" if has_alpha else "RGB"
        bare = Image.new(mode, image.size)
        bare.paste(image.convert(mode))
        bare.save(output, "WEBP", quality=85)
    return CleanPhoto(output.getvalue(), content_type, extension, image.width, image.height)


def folder(data_dir: Path) -> Path:
    return data_dir / "photos"


def store(data_dir: Path, photo: CleanPhoto) -> str:
    """Write the photo under the photos folder; its storage key (a relative path with a random name)."""
    key = f"{secrets.token_hex(2)}/{secrets.token_urlsafe(18)}{photo.extension}"
    path = folder(data_dir) / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(photo.content)
    return key


def path_of(data_dir: Path, storage_key: str) -> Path | None:
    """The file of a stored photo, or None when the key points outside the folder or the file is gone."""
    base = folder(data_dir).resolve()
    path = (base / storage_key).resolve()
    if base not in path.parents or not path.is_file():
        return None
    return path


def remove(data_dir: Path, storage_key: str) -> None:
    path = path_of(data_dir, storage_key)
    if path is not None:
        path.unlink(missing_ok=True)
