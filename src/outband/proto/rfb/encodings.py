"""Rectangle encodings: RAW and AMT's RLE (encoding 16), both directions.

AMT's RLE rectangle (MeshCommander ``amt-desktop``): after the rectangle header, a big-endian u32 length and
that many bytes of deflate data.  Unless zlib was switched on with the Intel ``KvmExtCmd`` extension, every
rectangle is a single stored (uncompressed) deflate block: ``00``, LEN and NLEN (little-endian u16), then the
tile data, which MeshCommander reads without its inflater.  With zlib on, the rectangles carry one continuous
deflate stream, each ending with a sync flush.  MeshCommander creates its inflater for a raw stream but resets
it at every channel start, and the reset of its bundled ``zlib-inflate.js`` returns it to zlib framing: the
stream must open with a zlib header, so ours does (AMT-PROTOCOLS.md §4.5 reads "raw deflate, window -15" from
the creation alone).  The tile data is ZRLE's (RFC 6143 §7.7.6): per 64x64 tile a
sub-encoding byte, 0 raw CPIXELs, 1 solid, 2-16 packed palette, 128 plain RLE, 130-255 palette RLE.  AMT sends
one tile per rectangle; a standard ZRLE server sends many (and a zlib header), which the decoder accepts too.

Packed palette rows are padded to a byte in ZRLE but MeshCommander reads them unpadded; the encoder only packs
tiles whose width makes the two readings agree (a multiple of the pixels per byte) and sends the others raw.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import Final

from .errors import RfbProtocolError
from .messages import TILE, Encoding, encode_rect_header
from .pixels import PaletteEncoder, PixelFormat, expand_cpixels

SOLID: Final = 1
RAW_TILE: Final = 0
PLAIN_RLE: Final = 128
MAX_PACKED_PALETTE: Final = 16

# _SHIFT_TO[s][v] = v << s (pack); _TAKE[bits][k][b] = the k-th field of width ``bits`` in byte b (unpack)
_VALUES: Final = bytes(range(256))
_SHIFT_TO: Final = {s: bytes((v << s) & 0xFF for v in range(256)) for s in range(8)}
_TAKE: Final = {bits: [bytes((b >> (8 - bits * (k + 1))) & ((1 << bits) - 1) for b in range(256))
                       for k in range(8 // bits)] for bits in (1, 2, 4)}


def _bits_for(palette_size: int) -> int:
    return 1 if palette_size <= 2 else 2 if palette_size <= 4 else 4


def distinct(indices: bytes, limit: int) -> list[int]:
    """The different values in ``indices``, or ``limit + 1`` of them when there are more: each round removes
    one value with ``bytes.translate``, so a tile costs a few passes in C instead of a set of 4096 ints."""
    found: list[int] = []
    rest = indices
    while rest and len(found) <= limit:
        found.append(rest[0])
        rest = rest.translate(None, rest[:1])
    return found


def pack_indices(values: bytes, bits: int) -> bytes:
    """Palette positions (one per byte, each < 2**bits) packed most significant field first."""
    per = 8 // bits
    count = len(values) // per
    packed = 0
    for k in range(per):
        packed |= int.from_bytes(values[k::per].translate(_SHIFT_TO[8 - bits * (k + 1)]), "big")
    return packed.to_bytes(count, "big")


def unpack_indices(packed: bytes, bits: int) -> bytes:
    per = 8 // bits
    out = bytearray(len(packed) * per)
    for k, table in enumerate(_TAKE[bits]):
        out[k::per] = packed.translate(table)
    return bytes(out)


# --------------------------------------------------------------------------------------------- server side


class RectEncoder:
    """Encodes rectangles of palette indices for one client: its pixel format, its chosen encoding, and (for
    RLE) the deflate stream that must stay continuous across rectangles once zlib is on."""

    def __init__(self, palette: PaletteEncoder, encoding: Encoding) -> None:
        if encoding not in (Encoding.RAW, Encoding.RLE):
            raise ValueError(f"cannot encode {encoding!r}")
        self.palette = palette
        self.encoding = encoding
        self.compressing = False
        self._deflate: zlib._Compress | None = None

    def set_compression(self, on: bool) -> None:
        """The Intel extension switches zlib on or off; the stream continues where it was when it comes back
        on, as the client's inflater does (it only ever sees the compressed rectangles)."""
        self.compressing = on
        if on and self._deflate is None:
            self._deflate = zlib.compressobj(6, zlib.DEFLATED, 15)

    def rect(self, x: int, y: int, width: int, height: int, indices: bytes) -> bytes:
        """Header and body of one rectangle (at most one 64x64 tile)."""
        if self.encoding is Encoding.RAW:
            return encode_rect_header(x, y, width, height, Encoding.RAW) + self.palette.pixels_of(indices)
        body = self._wrap(self.tile(width, indices))
        return encode_rect_header(x, y, width, height, Encoding.RLE) + struct.pack(">I", len(body)) + body

    def tile(self, width: int, indices: bytes) -> bytes:
        """ZRLE tile data: solid, packed palette (up to 16 colours) or raw."""
        colours = distinct(indices, MAX_PACKED_PALETTE)
        cpixels = self.palette.cpixels
        if len(colours) == 1:
            return bytes([SOLID]) + cpixels[indices[0]]
        bits = _bits_for(len(colours))
        if len(colours) <= MAX_PACKED_PALETTE and width % (8 // bits) == 0:
            order = sorted(colours)
            position = bytearray(256)
            for n, colour in enumerate(order):
                position[colour] = n
            return (bytes([len(order)]) + b"".join(cpixels[c] for c in order)
                    + pack_indices(indices.translate(position), bits))
        return bytes([RAW_TILE]) + self.palette.cpixels_of(indices)

    def _wrap(self, data: bytes) -> bytes:
        if self.compressing and self._deflate is not None:
            return self._deflate.compress(data) + self._deflate.flush(zlib.Z_SYNC_FLUSH)
        return b"\x00" + struct.pack("<HH", len(data), len(data) ^ 0xFFFF) + data


# --------------------------------------------------------------------------------------------- client side


@dataclass(slots=True)
class PixelBuffer:
    """A client's copy of the framebuffer, in its pixel format, row after row."""

    width: int
    height: int
    format: PixelFormat
    pixels: bytearray

    @classmethod
    def blank(cls, width: int, height: int, fmt: PixelFormat) -> PixelBuffer:
        return cls(width, height, fmt, bytearray(width * height * fmt.bytes_per_pixel))

    def put(self, x: int, y: int, width: int, height: int, data: bytes) -> None:
        step = width * self.format.bytes_per_pixel
        stride = self.width * self.format.bytes_per_pixel
        start = (y * self.width + x) * self.format.bytes_per_pixel
        for row in range(height):
            at = start + row * stride
            self.pixels[at : at + step] = data[row * step : (row + 1) * step]

    def fill(self, x: int, y: int, width: int, height: int, pixel: bytes) -> None:
        line = pixel * width
        stride = self.width * self.format.bytes_per_pixel
        start = (y * self.width + x) * self.format.bytes_per_pixel
        for row in range(height):
            at = start + row * stride
            self.pixels[at : at + len(line)] = line


def rle_output_cap(width: int, height: int, fmt: PixelFormat) -> int:
    """Most tile data a legitimate width x height RLE rectangle can hold: every pixel as its own run (CPIXEL
    plus a length byte) and a full palette per tile."""
    tiles = -(-width // TILE) * -(-height // TILE)
    cpixel = fmt.cpixel_size
    return tiles * (1 + MAX_PACKED_PALETTE * cpixel) + width * height * (cpixel + 1)


def rle_body_cap(width: int, height: int, fmt: PixelFormat) -> int:
    """Most bytes an RLE rectangle's body may announce: the output cap plus deflate's stored-block overhead."""
    out = rle_output_cap(width, height, fmt)
    return out + 5 * (out // 0xFFFF + 1) + 64


class RectDecoder:
    """Decodes RAW and RLE rectangles into a :class:`PixelBuffer`; keeps the inflate stream between them."""

    def __init__(self) -> None:
        self._inflate: zlib._Decompress | None = None

    def raw(self, target: PixelBuffer, x: int, y: int, width: int, height: int, body: bytes) -> None:
        target.put(x, y, width, height, body)

    def rle(self, target: PixelBuffer, x: int, y: int, width: int, height: int, body: bytes) -> None:
        data = self._unwrap(body, rle_output_cap(width, height, target.format))
        pos = 0
        for ty in range(y, y + height, TILE):
            for tx in range(x, x + width, TILE):
                pos = self._tile(target, data, pos, tx, ty, min(TILE, x + width - tx), min(TILE, y + height - ty))
        if pos != len(data):
            raise RfbProtocolError(f"{len(data) - pos} bytes left over after the tiles of an RLE rectangle")

    def _unwrap(self, body: bytes, cap: int) -> bytes:
        if len(body) > 5 and body[0] == 0 and int.from_bytes(body[1:3], "little") == len(body) - 5:
            return body[5:]  # AMT without zlib: one stored block, read as MeshCommander reads it
        if self._inflate is None:
            zlib_header = len(body) >= 2 and body[0] & 0x0F == 8 and (body[0] << 8 | body[1]) % 31 == 0
            self._inflate = zlib.decompressobj(15 if zlib_header else -15)
        try:
            data = self._inflate.decompress(body, cap + 1)
        except zlib.error as exc:
            raise RfbProtocolError(f"bad deflate data in an RLE rectangle: {exc}") from None
        if len(data) > cap or self._inflate.unconsumed_tail:
            raise RfbProtocolError(f"an RLE rectangle inflates beyond {cap} bytes")
        return data

    def _tile(self, target: PixelBuffer, data: bytes, pos: int, x: int, y: int, width: int, height: int) -> int:
        fmt = target.format
        cpixel = fmt.cpixel_size
        count = width * height
        sub = _byte(data, pos)
        pos += 1
        if sub == RAW_TILE:
            end = _need(data, pos, count * cpixel)
            target.put(x, y, width, height, expand_cpixels(data[pos:end], fmt))
            return end
        if sub == SOLID:
            end = _need(data, pos, cpixel)
            target.fill(x, y, width, height, expand_cpixels(data[pos:end], fmt))
            return end
        if 2 <= sub <= MAX_PACKED_PALETTE:
            palette, pos = _palette(data, pos, sub, fmt)
            bits = _bits_for(sub)
            row_bytes = (width * bits + 7) // 8
            end = _need(data, pos, row_bytes * height)
            if (width * bits) % 8 == 0:
                indices = unpack_indices(data[pos:end], bits)
            else:
                indices = b"".join(unpack_indices(data[pos + r * row_bytes : pos + (r + 1) * row_bytes], bits)[:width]
                                   for r in range(height))
            target.put(x, y, width, height, _lookup(indices, palette, sub))
            return end
        if sub == PLAIN_RLE:
            pixels, pos = _runs(data, pos, count, fmt, None)
            target.put(x, y, width, height, pixels)
            return pos
        if sub >= 130:
            palette, pos = _palette(data, pos, sub - 128, fmt)
            pixels, pos = _runs(data, pos, count, fmt, palette)
            target.put(x, y, width, height, pixels)
            return pos
        raise RfbProtocolError(f"RLE sub-encoding {sub} is undefined")


def _byte(data: bytes, pos: int) -> int:
    if pos >= len(data):
        raise RfbProtocolError("RLE tile data ends early")
    return data[pos]


def _need(data: bytes, pos: int, length: int) -> int:
    if pos + length > len(data):
        raise RfbProtocolError("RLE tile data ends early")
    return pos + length


def _palette(data: bytes, pos: int, size: int, fmt: PixelFormat) -> tuple[list[bytes], int]:
    cpixel = fmt.cpixel_size
    end = _need(data, pos, size * cpixel)
    full = expand_cpixels(data[pos:end], fmt)
    width = fmt.bytes_per_pixel
    return [full[i * width : (i + 1) * width] for i in range(size)], end


def _lookup(indices: bytes, palette: list[bytes], size: int) -> bytes:
    if indices.translate(None, _VALUES[:size]):
        raise RfbProtocolError(f"palette index {max(indices)} beyond a palette of {size}")
    width = len(palette[0])
    lanes = [bytes(p[k] for p in palette).ljust(256, b"\0") for k in range(width)]
    if width == 1:
        return indices.translate(lanes[0])
    out = bytearray(len(indices) * width)
    for k, table in enumerate(lanes):
        out[k::width] = indices.translate(table)
    return bytes(out)


def _runs(data: bytes, pos: int, count: int, fmt: PixelFormat, palette: list[bytes] | None) -> tuple[bytes, int]:
    """Plain RLE (``palette`` None: CPIXEL + length) or palette RLE (index byte, bit 7 marking a run)."""
    cpixel = fmt.cpixel_size
    out = bytearray()
    filled = 0
    while filled < count:
        if palette is None:
            end = _need(data, pos, cpixel)
            pixel = expand_cpixels(data[pos:end], fmt)
            pos = end
            run_follows = True
        else:
            index = _byte(data, pos)
            pos += 1
            if index & 0x7F >= len(palette):
                raise RfbProtocolError(f"palette index {index & 0x7F} beyond a palette of {len(palette)}")
            pixel = palette[index & 0x7F]
            run_follows = bool(index & 0x80)
        run = 1
        if run_follows:
            while True:
                step = _byte(data, pos)
                pos += 1
                run += step
                if step != 255:
                    break
        if filled + run > count:
            raise RfbProtocolError("an RLE run overflows its tile")
        out += pixel * run
        filled += run
    return bytes(out), pos


__all__ = [
    "PixelBuffer",
    "RectDecoder",
    "RectEncoder",
    "distinct",
    "pack_indices",
    "rle_body_cap",
    "rle_output_cap",
    "unpack_indices",
]
