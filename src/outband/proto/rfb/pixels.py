"""RFB pixel formats and the conversions the codecs need, done with byte-string operations (no per-pixel loop).

A true-colour pixel is ``(r << red_shift) | (g << green_shift) | (b << blue_shift)`` in ``bits_per_pixel`` bits,
little- or big-endian.  AMT's default is 16-bit RGB565 little-endian; MeshCommander switches to 8-bit RGB332
or to grey: a format whose green and blue maxima are zero is AMT's grey mode (the red channel carries the
luminance), not a red-only picture (AMT-PROTOCOLS.md §4.5).

The server side keeps its picture as palette indices (one byte per pixel, as a VGA adapter does), so turning a
region into any pixel format is one ``bytes.translate`` per output byte lane: :class:`PaletteEncoder`.  The
client side turns received pixels back into RGB for a screenshot the same way, by byte lanes: :func:`to_rgb`.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

from .errors import RfbProtocolError

RGB = tuple[int, int, int]
_FORMAT: Final = struct.Struct(">BBBBHHHBBB3x")
PIXEL_FORMAT_SIZE: Final = 16
SUPPORTED_BPP: Final = (8, 16, 32)


@dataclass(frozen=True, slots=True)
class PixelFormat:
    bits_per_pixel: int
    depth: int
    big_endian: bool
    true_colour: bool
    red_max: int
    green_max: int
    blue_max: int
    red_shift: int
    green_shift: int
    blue_shift: int

    # ------------------------------------------------------------------------------------------ wire form

    def encode(self) -> bytes:
        return _FORMAT.pack(self.bits_per_pixel, self.depth, int(self.big_endian), int(self.true_colour),
                            self.red_max, self.green_max, self.blue_max, self.red_shift, self.green_shift,
                            self.blue_shift)

    @classmethod
    def decode(cls, data: bytes) -> PixelFormat:
        """Parse and validate: only the true-colour formats the codecs can produce are accepted."""
        bpp, depth, big, true, rmax, gmax, bmax, rsh, gsh, bsh = _FORMAT.unpack_from(data)
        fmt = cls(bpp, depth, bool(big), bool(true), rmax, gmax, bmax, rsh, gsh, bsh)
        fmt.validate()
        return fmt

    def validate(self) -> None:
        if self.bits_per_pixel not in SUPPORTED_BPP:
            raise RfbProtocolError(f"{self.bits_per_pixel} bits per pixel is not supported (8, 16 or 32)")
        if not self.true_colour:
            raise RfbProtocolError("colour-map pixel formats are not supported, only true colour")
        if not 0 < self.depth <= self.bits_per_pixel:
            raise RfbProtocolError(f"depth {self.depth} does not fit {self.bits_per_pixel} bits per pixel")
        if self.red_max == 0:
            raise RfbProtocolError("a pixel format needs a red (or grey) channel")
        for name, top, shift in self._channels():
            if top > 255 or top & (top + 1):
                raise RfbProtocolError(f"{name} maximum {top} is not 2^n - 1 with n <= 8")
            if top and shift + top.bit_length() > self.bits_per_pixel:
                raise RfbProtocolError(f"{name} channel (shift {shift}) does not fit the pixel")

    def _channels(self) -> tuple[tuple[str, int, int], ...]:
        return (("red", self.red_max, self.red_shift), ("green", self.green_max, self.green_shift),
                ("blue", self.blue_max, self.blue_shift))

    # ------------------------------------------------------------------------------------------ properties

    @property
    def bytes_per_pixel(self) -> int:
        return self.bits_per_pixel // 8

    @property
    def grey(self) -> bool:
        """AMT's grey modes: only the red channel, holding the luminance."""
        return self.green_max == 0 and self.blue_max == 0

    @property
    def cpixel_lanes(self) -> tuple[int, ...]:
        """Byte lanes of a pixel that a ZRLE/RLE "CPIXEL" keeps: all of them, except for 32-bit true colour of
        depth <= 24 whose colour bits fit in the three least (or most) significant bytes."""
        return _cpixel_lanes(self)

    @property
    def cpixel_size(self) -> int:
        return len(self.cpixel_lanes)

    # ------------------------------------------------------------------------------------------ single pixels

    def value_of(self, rgb: RGB) -> int:
        r, g, b = rgb
        if self.grey:
            luma = (299 * r + 587 * g + 114 * b + 500) // 1000
            return _scale(luma, 255, self.red_max) << self.red_shift
        return ((_scale(r, 255, self.red_max) << self.red_shift) | (_scale(g, 255, self.green_max) << self.green_shift)
                | (_scale(b, 255, self.blue_max) << self.blue_shift))

    def pixel_bytes(self, value: int) -> bytes:
        return value.to_bytes(self.bytes_per_pixel, "big" if self.big_endian else "little")

    def rgb_of(self, pixel: bytes) -> RGB:
        value = int.from_bytes(pixel, "big" if self.big_endian else "little")
        r = _scale((value >> self.red_shift) & self.red_max, self.red_max, 255)
        if self.grey:
            return r, r, r
        return (r, _scale((value >> self.green_shift) & self.green_max, self.green_max, 255),
                _scale((value >> self.blue_shift) & self.blue_max, self.blue_max, 255))


@lru_cache(maxsize=64)
def _cpixel_lanes(fmt: PixelFormat) -> tuple[int, ...]:
    lanes = tuple(range(fmt.bytes_per_pixel))
    if fmt.bits_per_pixel != 32 or fmt.depth > 24:
        return lanes
    used = 0
    for _, top, shift in fmt._channels():
        used |= top << shift
    if used < 1 << 24:
        significant = (0, 1, 2)  # the low three bytes of the value
    elif used & 0xFF == 0:
        significant = (1, 2, 3)
    else:
        return lanes
    # byte lane k of a little-endian pixel holds value bits 8k..8k+7; big-endian reverses the lanes
    return tuple(sorted(3 - k if fmt.big_endian else k for k in significant))


def _scale(value: int, source_max: int, target_max: int) -> int:
    return (value * target_max + source_max // 2) // source_max if source_max else 0


RGB565: Final = PixelFormat(16, 16, False, True, 31, 63, 31, 11, 5, 0)
"""AMT's default format (little-endian pixels, §4.5)."""
RGB332: Final = PixelFormat(8, 8, False, True, 7, 7, 3, 5, 2, 0)
"""MeshCommander's 8-bit colour mode."""
GREY8: Final = PixelFormat(8, 8, False, True, 255, 0, 0, 0, 0, 0)
"""MeshCommander's 8-bit grey mode."""
GREY4: Final = PixelFormat(8, 4, False, True, 15, 0, 0, 0, 0, 0)
"""MeshCommander's 4-bit grey mode."""
RGB888: Final = PixelFormat(32, 24, False, True, 255, 255, 255, 16, 8, 0)
"""32-bit true colour, blue in the first byte on the wire (what most VNC viewers ask for)."""


# --------------------------------------------------------------------------------------------- server side


class PaletteEncoder:
    """Palette indices -> pixels of one format: per byte lane, a 256-entry translation table."""

    def __init__(self, fmt: PixelFormat, palette: Sequence[RGB]) -> None:
        if len(palette) > 256:
            raise ValueError("a palette has at most 256 colours")
        self.format = fmt
        colours = list(palette) + [(0, 0, 0)] * (256 - len(palette))
        pixels = [fmt.pixel_bytes(fmt.value_of(c)) for c in colours]
        self.pixels: tuple[bytes, ...] = tuple(pixels)
        """Full pixel bytes of each palette index."""
        self._lanes = tuple(bytes(p[k] for p in pixels) for k in range(fmt.bytes_per_pixel))
        lanes = fmt.cpixel_lanes
        self.cpixels: tuple[bytes, ...] = tuple(bytes(p[k] for k in lanes) for p in pixels)
        self._cpixel_lanes = tuple(self._lanes[k] for k in lanes)

    def pixels_of(self, indices: bytes) -> bytes:
        """Pixel bytes for a run of indices (RAW encoding)."""
        return _interleave(indices, self._lanes)

    def cpixels_of(self, indices: bytes) -> bytes:
        """Compressed pixels for a run of indices (raw RLE tiles)."""
        return _interleave(indices, self._cpixel_lanes)


def _interleave(indices: bytes, lanes: tuple[bytes, ...]) -> bytes:
    if len(lanes) == 1:
        return indices.translate(lanes[0])
    out = bytearray(len(indices) * len(lanes))
    for k, table in enumerate(lanes):
        out[k :: len(lanes)] = indices.translate(table)
    return bytes(out)


# --------------------------------------------------------------------------------------------- client side


def expand_cpixels(data: bytes, fmt: PixelFormat) -> bytes:
    """Compressed pixels (``cpixel_size`` bytes each) back to full pixels: the dropped lane reads as zero."""
    lanes = fmt.cpixel_lanes
    width = fmt.bytes_per_pixel
    if len(lanes) == width:
        return bytes(data)
    count = len(data) // len(lanes)
    out = bytearray(count * width)
    for source, lane in enumerate(lanes):
        out[lane::width] = data[source :: len(lanes)]
    return bytes(out)


def to_rgb(pixels: bytes, fmt: PixelFormat) -> bytes:
    """Packed RGB (3 bytes per pixel) from pixels of ``fmt``: each channel gathered from the byte lanes that
    hold its bits (OR-ed as one big integer, no carries can occur), then scaled to 8 bits by a table."""
    width = fmt.bytes_per_pixel
    count = len(pixels) // width
    lanes = [bytes(pixels[k::width]) for k in range(width)]
    channels = []
    for top, shift in ((fmt.red_max, fmt.red_shift), (fmt.green_max, fmt.green_shift),
                       (fmt.blue_max, fmt.blue_shift)):
        channels.append(_channel(lanes, fmt, top, shift, count))
    if fmt.grey:
        channels = [channels[0]] * 3
    out = bytearray(count * 3)
    for k, channel in enumerate(channels):
        out[k::3] = channel
    return bytes(out)


def _channel(lanes: list[bytes], fmt: PixelFormat, top: int, shift: int, count: int) -> bytes:
    if top == 0:
        return bytes(count)
    width = len(lanes)
    raw = 0
    for k, lane in enumerate(lanes):
        position = (width - 1 - k) if fmt.big_endian else k  # which byte of the value this lane is
        low = position * 8
        if low + 8 <= shift or low >= shift + top.bit_length():
            continue
        table = bytes((((b << low) >> shift) & top) for b in range(256))
        raw |= int.from_bytes(lane.translate(table), "little")
    values = raw.to_bytes(count, "little")
    return values.translate(bytes(_scale(v, top, 255) if v <= top else 0 for v in range(256)))


__all__ = [
    "GREY4",
    "GREY8",
    "PIXEL_FORMAT_SIZE",
    "RGB",
    "RGB332",
    "RGB565",
    "RGB888",
    "PaletteEncoder",
    "PixelFormat",
    "expand_cpixels",
    "to_rgb",
]
