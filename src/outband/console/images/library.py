"""The console's library of boot images (ISO 9660 CDs and floppy images) for IDE-R.

Theory of operation: an image is uploaded in pieces, each an ordinary HTTP request no larger than the API's
body cap, so any image size works through any proxy and an interrupted upload resumes where it stopped::

    create(name, kind, size[, sha256])  -> state "uploading", received 0     (limits checked up front)
    append(id, offset=received, bytes)  -> received grows; offset != received is a conflict (resume from it)
    the last byte arrives               -> SHA-256 checked against the expected one, the content checked
                                           (a CD must be ISO 9660), state "ready"; a failed check deletes it

Each image is two files under ``<data dir>/images``: ``<id>.img`` (the bytes) and ``<id>.json`` (what this
module knows about it, replaced atomically).  The SHA-256 is computed as the bytes arrive; after a restart
mid-upload it is recomputed from what is on disk.  Images are read-only once ready (IDE-R serves them so).
Limits: each image at most ``max_image_bytes``, all of them together at most ``max_total_bytes``, and never
more than the free disk space.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import json
import os
import re
import secrets
import shutil
import weakref
from collections.abc import AsyncIterator, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Final, Literal

from ..runtime import Runtime

ImageKind = Literal["cd", "floppy"]
ImageState = Literal["uploading", "ready"]

MAX_IMAGE_BYTES: Final = 16 * 1024**3
MAX_TOTAL_BYTES: Final = 64 * 1024**3
SECTOR: Final = {"cd": 2048, "floppy": 512}
"""An image is a whole number of the drive's blocks."""
ISO_SIGNATURE_AT: Final = 16 * 2048 + 1
ISO_SIGNATURE: Final = b"CD001"
WRITE_BATCH: Final = 1024 * 1024
"""Bytes gathered before one write to disk (a thread hop per network read would cost more than the write)."""
_ID = re.compile(r"^[0-9a-f]{16}$")


class ImageError(Exception):
    """An image request that cannot be honoured; ``kind`` says which HTTP answer fits."""

    def __init__(self, kind: Literal["invalid", "conflict", "too_large", "not_found"], message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True, slots=True)
class Image:
    id: str
    name: str
    kind: ImageKind
    size: int
    received: int
    state: ImageState
    created_at: dt.datetime
    created_by: str | None
    expected_sha256: str | None = None
    sha256: str | None = None

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "created_at": self.created_at.isoformat()})

    @classmethod
    def from_json(cls, text: str) -> Image:
        fields = json.loads(text)
        fields["created_at"] = dt.datetime.fromisoformat(fields["created_at"])
        return cls(**fields)


class _Upload:
    """An upload in progress in this process: the running digest of bytes [0, offset)."""

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.digest = hashlib.sha256()
        self.offset = 0


class ImageLibrary:
    def __init__(self, root: Path, *, max_image_bytes: int = MAX_IMAGE_BYTES,
                 max_total_bytes: int = MAX_TOTAL_BYTES) -> None:
        self.root = root
        self.max_image_bytes = max_image_bytes
        self.max_total_bytes = max_total_bytes
        self._uploads: dict[str, _Upload] = {}
        self._in_use: dict[str, int] = {}

    # ------------------------------------------------------------------------------------------ reading

    def list(self) -> list[Image]:
        if not self.root.is_dir():
            return []
        images = [self._load(path) for path in self.root.glob("*.json")]
        return sorted((i for i in images if i is not None), key=lambda i: (i.name.lower(), i.id))

    def get(self, image_id: str) -> Image:
        image = self._load(self._meta(image_id)) if _ID.match(image_id) else None
        if image is None:
            raise ImageError("not_found", "no such image")
        return image

    def path(self, image: Image) -> Path:
        return self.root / f"{image.id}.img"

    def _meta(self, image_id: str) -> Path:
        return self.root / f"{image_id}.json"

    def _load(self, path: Path) -> Image | None:
        try:
            return Image.from_json(path.read_text())
        except (OSError, ValueError, TypeError, KeyError):
            return None

    # ------------------------------------------------------------------------------------------ uploading

    def create(self, name: str, kind: ImageKind, size: int, *, expected_sha256: str | None = None,
               created_by: str | None = None) -> Image:
        block = SECTOR[kind]
        if size <= 0 or size % block:
            raise ImageError("invalid", f"a {kind} image is a whole number of {block}-byte blocks, not {size} bytes")
        if size > self.max_image_bytes:
            raise ImageError("too_large", f"an image is at most {self.max_image_bytes} bytes")
        if sum(i.size for i in self.list()) + size > self.max_total_bytes:
            raise ImageError("too_large", f"the library holds at most {self.max_total_bytes} bytes; delete images "
                                          "first")
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        if shutil.disk_usage(self.root).free < size:
            raise ImageError("too_large", "not enough free disk space for the image")
        image = Image(secrets.token_hex(8), name, kind, size, 0, "uploading",
                      dt.datetime.now(dt.UTC).replace(microsecond=0), created_by,
                      expected_sha256.lower() if expected_sha256 else None)
        self.path(image).touch(mode=0o600)
        self._save(image)
        return image

    async def append(self, image_id: str, offset: int, data: AsyncIterator[bytes]) -> Image:
        """Write ``data`` at ``offset`` (which must be what was received so far); finishes the image when the
        last byte arrives."""
        upload = self._uploads.setdefault(image_id, _Upload())
        async with upload.lock:
            image = self.get(image_id)
            if image.state != "uploading":
                raise ImageError("conflict", "the image is complete; it cannot be changed")
            if offset != image.received:
                raise ImageError("conflict", f"the upload continues at byte {image.received}, not {offset}")
            if upload.offset != image.received:  # a restart (or a failed write) lost the running digest
                upload.digest, upload.offset = await asyncio.to_thread(self._digest_of, image)
            received = await self._write(image, upload, data)
            image = replace(image, received=received)
            if received == image.size:
                image = await self._finish(image, upload.digest.hexdigest())
                self._uploads.pop(image_id, None)
            else:
                self._save(image)
            return image

    async def _write(self, image: Image, upload: _Upload, data: AsyncIterator[bytes]) -> int:
        position = image.received
        pending = bytearray()
        with open(self.path(image), "r+b") as file:  # noqa: ASYNC230  (writes go to a thread below)
            file.truncate(position)  # drop what a failed request may have left past the last good byte
            async for piece in data:
                if position + len(pending) + len(piece) > image.size:
                    raise ImageError("invalid", f"more data than the declared size of {image.size} bytes")
                pending += piece
                if len(pending) >= WRITE_BATCH:
                    position = await self._flush(file.fileno(), position, pending, upload)
            if pending:
                position = await self._flush(file.fileno(), position, pending, upload)
        return position

    @staticmethod
    async def _flush(fd: int, position: int, pending: bytearray, upload: _Upload) -> int:
        chunk = bytes(pending)
        pending.clear()
        await asyncio.to_thread(_write_all, fd, chunk, position)
        upload.digest.update(chunk)
        upload.offset = position + len(chunk)
        return upload.offset

    def _digest_of(self, image: Image) -> tuple[hashlib._Hash, int]:
        digest = hashlib.sha256()
        with open(self.path(image), "rb") as file:
            remaining = image.received
            while remaining:
                block = file.read(min(remaining, WRITE_BATCH))
                if not block:
                    break
                digest.update(block)
                remaining -= len(block)
        return digest, image.received - remaining

    async def _finish(self, image: Image, sha256: str) -> Image:
        problem = None
        if image.expected_sha256 is not None and image.expected_sha256 != sha256:
            problem = f"SHA-256 mismatch: expected {image.expected_sha256}, the upload has {sha256}"
        elif image.kind == "cd" and not await asyncio.to_thread(self._is_iso, image):
            problem = "not an ISO 9660 image (no CD001 volume descriptor at sector 16)"
        if problem is not None:
            self._remove(image.id)
            raise ImageError("invalid", f"{problem}; the upload was discarded")
        image = replace(image, state="ready", sha256=sha256)
        self.path(image).chmod(0o400)
        self._save(image)
        return image

    def _is_iso(self, image: Image) -> bool:
        with open(self.path(image), "rb") as file:
            file.seek(ISO_SIGNATURE_AT)
            return file.read(len(ISO_SIGNATURE)) == ISO_SIGNATURE

    def _save(self, image: Image) -> None:
        meta = self._meta(image.id)
        temporary = meta.with_suffix(".tmp")
        temporary.write_text(image.to_json())
        temporary.replace(meta)

    # ------------------------------------------------------------------------------------------ use, delete

    @contextlib.contextmanager
    def using(self, image: Image) -> Iterator[Path]:
        """The image's file, protected from deletion while the block runs."""
        if image.state != "ready":
            raise ImageError("conflict", "the image is still being uploaded")
        self._in_use[image.id] = self._in_use.get(image.id, 0) + 1
        try:
            yield self.path(image)
        finally:
            self._in_use[image.id] -= 1
            if not self._in_use[image.id]:
                del self._in_use[image.id]

    def in_use(self, image: Image) -> bool:
        return image.id in self._in_use

    def delete(self, image_id: str) -> Image:
        image = self.get(image_id)
        if image_id in self._in_use:
            raise ImageError("conflict", "the image is being served to a device; stop that first")
        self._remove(image_id)
        return image

    def _remove(self, image_id: str) -> None:
        self._uploads.pop(image_id, None)
        for path in (self.root / f"{image_id}.json", self.root / f"{image_id}.img"):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def _write_all(fd: int, data: bytes, position: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, position)
        view, position = view[written:], position + written


_libraries: weakref.WeakKeyDictionary[Runtime, ImageLibrary] = weakref.WeakKeyDictionary()


def image_library(runtime: Runtime) -> ImageLibrary:
    """The runtime's library, in ``<data dir>/images``."""
    library = _libraries.get(runtime)
    if library is None:
        library = _libraries[runtime] = ImageLibrary(runtime.settings.data_dir / "images")
    return library
