"""Boot media for the IDE-R tests come from :mod:`outband.testing.images` (the images the QEMU tests boot);
these two keep the (label, message) argument order the console's web tests still import them with."""

from __future__ import annotations

from outband.testing import images


def iso_image(label: str, message: str, *, blocks: int = 64, filler: bytes = b"") -> bytes:
    return images.iso_image(message, label=label, blocks=blocks, filler=filler)


def floppy_image(label: str, message: str) -> bytes:
    return images.floppy_image(message, label=label)
