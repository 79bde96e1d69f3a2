"""RFB 3.8 as AMT's KVM speaks it: pixel formats, the RAW and RLE codecs (AMT's framing and standard ZRLE),
the server and client handshakes and update logic, the Intel cut-text extensions, keysyms, the viewer relay,
and every cap a hostile peer could push on."""

from __future__ import annotations

import random
import struct
import zlib
from collections.abc import Sequence

import pytest

from outband.proto.rfb import (
    GREY4,
    GREY8,
    RGB332,
    RGB565,
    RGB888,
    ClientInitialised,
    CutText,
    DesktopResized,
    FramebufferUpdated,
    KeyEvent,
    KvmData,
    KvmExt,
    PixelFormat,
    PointerEvent,
    RfbClient,
    RfbProtocolError,
    RfbServer,
)
from outband.proto.rfb.client import MAX_FRAMEBUFFER_BYTES
from outband.proto.rfb.encodings import PixelBuffer, RectDecoder, RectEncoder, pack_indices, unpack_indices
from outband.proto.rfb.keys import Keysym, TerminalKeyboard, keysyms_for_text
from outband.proto.rfb.messages import (
    MAX_CUT_TEXT,
    Encoding,
    KvmExtCommand,
    ServerMessage,
    encode_key_event,
    encode_pointer_event,
    encode_set_encodings,
    encode_set_pixel_format,
    encode_update_request,
    kvm_ext_payload,
)
from outband.proto.rfb.pixels import PaletteEncoder, expand_cpixels, to_rgb
from outband.proto.rfb.relay import ViewerFilter

FORMATS = {"rgb565": RGB565, "rgb332": RGB332, "rgb888": RGB888, "grey8": GREY8, "grey4": GREY4,
           "rgb888-be": PixelFormat(32, 24, True, True, 255, 255, 255, 16, 8, 0),
           "rgb565-be": PixelFormat(16, 16, True, True, 31, 63, 31, 11, 5, 0),
           "bgr233": PixelFormat(8, 8, False, True, 7, 7, 3, 0, 3, 6),
           "rgb-depth32": PixelFormat(32, 32, False, True, 255, 255, 255, 0, 8, 16)}
PALETTE = [(0, 0, 0), (0, 0, 170), (0, 170, 0), (170, 85, 0), (170, 170, 170), (255, 255, 85), (255, 255, 255),
           *[(i * 9 % 256, i * 37 % 256, i * 91 % 256) for i in range(7, 40)]]


class Surface:
    """An indexed test picture."""

    def __init__(self, width: int, height: int, colours: int = 3, seed: int = 1) -> None:
        rng = random.Random(seed)
        self.width, self.height = width, height
        self.palette: Sequence[tuple[int, int, int]] = PALETTE
        self.pixels = bytearray(rng.randrange(colours) for _ in range(width * height))

    def region(self, x: int, y: int, width: int, height: int) -> bytes:
        return b"".join(bytes(self.pixels[(y + r) * self.width + x : (y + r) * self.width + x + width])
                        for r in range(height))

    def expected_rgb(self, fmt: PixelFormat) -> bytes:
        encoder = PaletteEncoder(fmt, self.palette)
        return to_rgb(encoder.pixels_of(bytes(self.pixels)), fmt)


def connect(server: RfbServer, client: RfbClient) -> None:
    server.start()
    pump(server, client)


def pump(server: RfbServer, client: RfbClient) -> None:
    while True:
        down, up = server.data_to_send(), client.data_to_send()
        if down:
            client.receive_data(down)
        if up:
            server.receive_data(up)
        if not down and not up:
            return


# ---------------------------------------------------------------------------------------------- pixels


def test_pixel_formats_round_trip_and_amt_default_is_little_endian_rgb565() -> None:
    for fmt in FORMATS.values():
        assert PixelFormat.decode(fmt.encode()) == fmt
    assert RGB565.encode() == bytes([16, 16, 0, 1, 0, 31, 0, 63, 0, 31, 11, 5, 0, 0, 0, 0])
    assert RGB565.pixel_bytes(RGB565.value_of((255, 0, 0))) == b"\x00\xf8"
    assert RGB565.pixel_bytes(RGB565.value_of((255, 255, 255))) == b"\xff\xff"
    assert RGB332.value_of((255, 255, 0)) == 0b11111100


def test_grey_formats_carry_luminance_in_the_red_channel() -> None:
    assert GREY8.value_of((255, 255, 255)) == 255
    assert GREY8.value_of((0, 0, 255)) == 29  # blue is dark
    assert GREY4.value_of((170, 170, 170)) == 10
    assert GREY8.rgb_of(bytes([128])) == (128, 128, 128)


@pytest.mark.parametrize(("fmt", "reason"), [
    (PixelFormat(24, 24, False, True, 255, 255, 255, 16, 8, 0), "bits per pixel"),
    (PixelFormat(8, 8, False, False, 7, 7, 3, 5, 2, 0), "colour-map"),
    (PixelFormat(16, 16, False, True, 30, 63, 31, 11, 5, 0), "2\\^n - 1"),
    (PixelFormat(16, 16, False, True, 31, 63, 31, 12, 5, 0), "does not fit"),
    (PixelFormat(8, 8, False, True, 0, 7, 3, 5, 2, 0), "red"),
    (PixelFormat(16, 24, False, True, 31, 63, 31, 11, 5, 0), "depth"),
])
def test_unusable_pixel_formats_are_protocol_errors(fmt: PixelFormat, reason: str) -> None:
    with pytest.raises(RfbProtocolError, match=reason):
        PixelFormat.decode(fmt.encode())


def test_compressed_pixels_drop_the_unused_byte_of_24_bit_colour() -> None:
    assert RGB888.cpixel_lanes == (0, 1, 2)
    assert FORMATS["rgb888-be"].cpixel_lanes == (1, 2, 3)
    assert FORMATS["rgb-depth32"].cpixel_lanes == (0, 1, 2, 3)
    assert RGB565.cpixel_lanes == (0, 1)
    assert expand_cpixels(b"\x01\x02\x03\x04\x05\x06", RGB888) == b"\x01\x02\x03\x00\x04\x05\x06\x00"


@pytest.mark.parametrize("name", list(FORMATS))
def test_palette_conversion_and_rgb_read_back_agree_pixel_by_pixel(name: str) -> None:
    fmt = FORMATS[name]
    encoder = PaletteEncoder(fmt, PALETTE)
    indices = bytes(range(len(PALETTE)))
    pixels = encoder.pixels_of(indices)
    width = fmt.bytes_per_pixel
    assert [pixels[i * width : (i + 1) * width] for i in range(len(indices))] == [
        fmt.pixel_bytes(fmt.value_of(c)) for c in PALETTE]
    rgb = to_rgb(pixels, fmt)
    assert [tuple(rgb[i * 3 : i * 3 + 3]) for i in range(len(indices))] == [
        fmt.rgb_of(fmt.pixel_bytes(fmt.value_of(c))) for c in PALETTE]


# ---------------------------------------------------------------------------------------------- codecs


@pytest.mark.parametrize("bits", [1, 2, 4])
def test_bit_packing_is_most_significant_first_and_reversible(bits: int) -> None:
    values = bytes(i % (1 << bits) for i in range(64))
    packed = pack_indices(values, bits)
    assert len(packed) == 64 * bits // 8
    assert unpack_indices(packed, bits) == values
    assert pack_indices(bytes([1, 0, 1, 1, 0, 0, 0, 1]), 1) == bytes([0b10110001])


@pytest.mark.parametrize(("colours", "width", "sub"), [(1, 64, 1), (2, 64, 2), (4, 64, 4), (16, 64, 16),
                                                       (17, 64, 0), (2, 13, 0), (3, 4, 3), (3, 2, 0)])
def test_tile_sub_encoding_follows_the_colour_count(colours: int, width: int, sub: int) -> None:
    surface = Surface(width, 8, colours)
    surface.pixels[: min(colours, len(surface.pixels))] = bytes(range(colours))[: len(surface.pixels)]
    encoder = RectEncoder(PaletteEncoder(RGB565, PALETTE), Encoding.RLE)
    assert encoder.tile(width, bytes(surface.pixels))[0] == sub


@pytest.mark.parametrize("name", list(FORMATS))
@pytest.mark.parametrize("encoding", [Encoding.RAW, Encoding.RLE])
@pytest.mark.parametrize("colours", [1, 2, 5, 40])
def test_rectangles_decode_to_what_was_encoded(name: str, encoding: Encoding, colours: int) -> None:
    fmt = FORMATS[name]
    surface = Surface(64, 40, colours, seed=colours)
    encoder = RectEncoder(PaletteEncoder(fmt, PALETTE), encoding)
    rect = encoder.rect(0, 0, 64, 40, bytes(surface.pixels))
    assert struct.unpack_from(">HHHHi", rect) == (0, 0, 64, 40, encoding)
    target = PixelBuffer.blank(64, 40, fmt)
    decoder = RectDecoder()
    if encoding is Encoding.RAW:
        decoder.raw(target, 0, 0, 64, 40, rect[12:])
    else:
        body = rect[16:]
        assert struct.unpack_from(">I", rect, 12)[0] == len(body)
        assert body[0] == 0
        assert struct.unpack_from("<HH", body, 1) == (len(body) - 5, (len(body) - 5) ^ 0xFFFF)
        decoder.rle(target, 0, 0, 64, 40, body)
    assert to_rgb(bytes(target.pixels), fmt) == surface.expected_rgb(fmt)


def test_with_zlib_on_the_deflate_stream_runs_on_across_rectangles() -> None:
    surface = Surface(128, 64, 40)
    encoder = RectEncoder(PaletteEncoder(RGB565, PALETTE), Encoding.RLE)
    encoder.set_compression(True)
    target, decoder = PixelBuffer.blank(128, 64, RGB565), RectDecoder()
    for tx in (0, 64):
        rect = encoder.rect(tx, 0, 64, 64, surface.region(tx, 0, 64, 64))
        body = rect[16:]
        assert body[0] != 0  # compressed, not a stored block
        decoder.rle(target, tx, 0, 64, 64, body)
    encoder.set_compression(False)
    again = encoder.rect(0, 0, 64, 64, surface.region(0, 0, 64, 64))
    assert again[16] == 0
    decoder.rle(target, 0, 0, 64, 64, again[16:])
    assert to_rgb(bytes(target.pixels), RGB565) == surface.expected_rgb(RGB565)


def _cpixel(fmt: PixelFormat, rgb: tuple[int, int, int]) -> bytes:
    full = fmt.pixel_bytes(fmt.value_of(rgb))
    return bytes(full[k] for k in fmt.cpixel_lanes)


def test_plain_and_palette_rle_tiles_and_a_standard_zrle_stream_decode() -> None:
    """What AMT (and ZRLE servers) send beyond what our encoder writes: runs, palette runs, and many tiles per
    rectangle in a zlib stream with its header."""
    fmt = RGB888
    red, blue, white = (255, 0, 0), (0, 0, 255), (255, 255, 255)
    # 64x64 plain RLE: 1 + 12*255 + 2 = 3063 red, 1 + 4*255 + 8 = 1029 blue, then 4 single whites (= 4096)
    plain = (bytes([128]) + _cpixel(fmt, red) + bytes([255] * 12 + [2]) + _cpixel(fmt, blue) + bytes([255] * 4 + [8])
             + b"".join(_cpixel(fmt, white) + bytes([0]) for _ in range(4)))
    target = PixelBuffer.blank(64, 64, fmt)
    RectDecoder().rle(target, 0, 0, 64, 64, stream_body(plain))
    rgb = to_rgb(bytes(target.pixels), fmt)
    colours = [tuple(rgb[i * 3 : i * 3 + 3]) for i in range(4096)]
    assert colours == [red] * 3063 + [blue] * 1029 + [white] * 4
    # 16x16 palette RLE: index 1 (blue) as a run of 1 + 253, then two single reds
    palette_rle = bytes([130]) + _cpixel(fmt, red) + _cpixel(fmt, blue) + bytes([0x81, 253, 0, 0])
    # an 80x16 rectangle is two tiles, 64x16 solid white and the 16x16 above, in one zlib stream
    stream = zlib.compressobj(6, zlib.DEFLATED, 15)
    body = stream.compress(bytes([1]) + _cpixel(fmt, white) + palette_rle) + stream.flush(zlib.Z_SYNC_FLUSH)
    wide = PixelBuffer.blank(80, 16, fmt)
    RectDecoder().rle(wide, 0, 0, 80, 16, body)
    rgb = to_rgb(bytes(wide.pixels), fmt)
    rows = [[tuple(rgb[(y * 80 + x) * 3 : (y * 80 + x) * 3 + 3]) for x in range(80)] for y in range(16)]
    assert all(row[:64] == [white] * 64 for row in rows)
    tile = [colour for row in rows for colour in row[64:]]
    assert tile == [blue] * 254 + [red] * 2


def stream_body(tile: bytes) -> bytes:
    return b"\x00" + struct.pack("<HH", len(tile), len(tile) ^ 0xFFFF) + tile


@pytest.mark.parametrize(("tile", "reason"), [
    (bytes([17]), "undefined"),
    (bytes([129]), "undefined"),
    (bytes([2, 0, 0, 0, 0, 0, 0]), "ends early"),
    (bytes([128]) + b"\0\0\0" + bytes([255] * 20), "overflows|ends early"),
    (bytes([130]) + bytes(6) + bytes([5]), "beyond a palette"),
    (bytes([1, 0, 0, 0, 9]), "left over"),
])
def test_broken_tiles_are_protocol_errors(tile: bytes, reason: str) -> None:
    with pytest.raises(RfbProtocolError, match=reason):
        RectDecoder().rle(PixelBuffer.blank(64, 64, RGB888), 0, 0, 8, 8, stream_body(tile))


def test_a_packed_tile_pointing_past_its_palette_is_refused() -> None:
    tile = bytes([3]) + bytes(9) + bytes([0b11111111]) * 16  # 2-bit indices of 3 on an 8x8 tile
    with pytest.raises(RfbProtocolError, match="beyond a palette"):
        RectDecoder().rle(PixelBuffer.blank(8, 8, RGB888), 0, 0, 8, 8, stream_body(tile))


def test_inflating_past_the_cap_and_bad_deflate_are_refused() -> None:
    bomb = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = bomb.compress(bytes(1 << 20)) + bomb.flush(zlib.Z_SYNC_FLUSH)
    with pytest.raises(RfbProtocolError, match="inflates beyond"):
        RectDecoder().rle(PixelBuffer.blank(8, 8, RGB565), 0, 0, 8, 8, body)
    with pytest.raises(RfbProtocolError, match="deflate"):
        RectDecoder().rle(PixelBuffer.blank(8, 8, RGB565), 0, 0, 8, 8, b"\xff\xff\xff\xff\xff\xff")


# ---------------------------------------------------------------------------------------------- sessions


@pytest.mark.parametrize("name", ["rgb565", "rgb332", "rgb888", "grey8"])
@pytest.mark.parametrize("encodings", [(16, 0, -223), (0,)], ids=["rle", "raw"])
def test_a_client_sees_the_server_picture_in_its_format(name: str, encodings: tuple[int, ...]) -> None:
    surface = Surface(200, 130, 5)
    server, client = RfbServer(surface, name="sim"), RfbClient(pixel_format=FORMATS[name], encodings=encodings)
    connect(server, client)
    assert client.name == "sim"
    assert client.updates == 1
    assert client.rgb() == surface.expected_rgb(FORMATS[name])
    assert isinstance(server.events()[0], ClientInitialised)


def test_updates_are_64_pixel_tiles_and_incremental_ones_carry_only_changes() -> None:
    surface = Surface(200, 130)
    server, client = RfbServer(surface), RfbClient()
    connect(server, client)
    first = next(e for e in client.events() if isinstance(e, FramebufferUpdated))
    assert len(first.rectangles) == 4 * 3
    assert max(w for _, _, w, _ in first.rectangles) == 64
    assert max(h for *_, h in first.rectangles) == 64
    assert server.data_to_send() == b""  # the automatic incremental request waits: nothing changed
    surface.pixels[130 * 200 - 1] ^= 1
    server.refresh()
    pump(server, client)
    assert [e for e in client.events() if isinstance(e, FramebufferUpdated)] == [
        FramebufferUpdated(((192, 128, 8, 2),))]
    assert client.rgb() == surface.expected_rgb(RGB565)


def test_a_first_request_marked_incremental_still_gets_the_whole_picture() -> None:
    surface = Surface(64, 64)
    server = RfbServer(surface)
    server.start()
    server.receive_data(b"RFB 003.008\n\x01\x01" + encode_update_request(True, 0, 0, 64, 64))
    out = server.data_to_send()
    assert out.endswith(struct.pack(">HHHHi", 0, 0, 64, 64, 0) + PaletteEncoder(RGB565, PALETTE).pixels_of(
        bytes(surface.pixels)))


@pytest.mark.parametrize(("version", "expect"), [(b"RFB 003.003\n", struct.pack(">I", 1)),
                                                 (b"RFB 003.007\n", bytes([1, 1])),
                                                 (b"RFB 003.889\n", bytes([1, 1]))])
def test_server_handshake_per_client_version(version: bytes, expect: bytes) -> None:
    server = RfbServer(Surface(8, 8))
    server.start()
    assert server.data_to_send() == b"RFB 003.008\n"
    server.receive_data(version)
    assert server.data_to_send() == expect
    if version != b"RFB 003.003\n":
        server.receive_data(b"\x01")
        result = server.data_to_send()
        assert result == (b"\0\0\0\0" if version.endswith(b"889\n") else b"")  # 3.7 has no result for None
    server.receive_data(b"\x00")
    init = server.data_to_send()
    assert struct.unpack_from(">HH", init) == (8, 8)
    assert init[4:20] == RGB565.encode()


@pytest.mark.parametrize(("server_bytes", "version"), [
    (b"RFB 003.003\n" + struct.pack(">I", 1), b"RFB 003.003\n"),
    (b"RFB 003.007\n" + bytes([2, 2, 1]), b"RFB 003.007\n"),
    (b"RFB 004.000\n", None),
])
def test_client_handshake_with_older_servers(server_bytes: bytes, version: bytes | None) -> None:
    client = RfbClient()
    if version is None:
        with pytest.raises(RfbProtocolError, match="not spoken"):
            client.receive_data(server_bytes)
        return
    client.receive_data(server_bytes)
    sent = client.data_to_send()
    assert sent.startswith(version)
    assert sent.endswith(b"\x01")  # (security None chosen and) shared ClientInit


@pytest.mark.parametrize(("server_bytes", "reason"), [
    (b"RFB 003.008\n\x00" + struct.pack(">I", 4) + b"busy", "busy"),
    (b"RFB 003.008\n\x01\x02", "only None"),
    (b"RFB 003.008\n\x01\x01" + struct.pack(">I", 1) + struct.pack(">I", 6) + b"denied", "denied"),
    (b"RFB 003.003\n" + struct.pack(">I", 2), "only None"),
    (b"HTTP/1.1 200", "not an RFB"),
])
def test_client_reports_refusals_and_unusable_servers(server_bytes: bytes, reason: str) -> None:
    with pytest.raises(RfbProtocolError, match=reason):
        RfbClient().receive_data(server_bytes)


def test_desktop_size_is_announced_to_clients_that_listed_it_and_clipped_for_others() -> None:
    surface = Surface(64, 64)
    server, client = RfbServer(surface), RfbClient()
    connect(server, client)
    surface.width, surface.height = 128, 64
    surface.pixels = bytearray(128 * 64)
    server.refresh()
    pump(server, client)
    events = client.events()
    assert DesktopResized(128, 64) in events
    assert (client.framebuffer.width, client.framebuffer.height) == (128, 64)
    raw_server, raw_client = RfbServer(Surface(64, 64)), RfbClient(encodings=(0,))
    connect(raw_server, raw_client)
    raw_server.surface.width = 128  # type: ignore[misc]
    raw_server.surface.pixels = bytearray(128 * 64)  # type: ignore[attr-defined]
    raw_server.refresh()
    pump(raw_server, raw_client)
    assert raw_client.framebuffer.width == 64


def test_a_pixel_format_change_mid_session_takes_effect() -> None:
    surface = Surface(64, 64, 5)
    server, client = RfbServer(surface), RfbClient()
    connect(server, client)
    client.set_pixel_format(RGB332)
    pump(server, client)
    assert client.rgb() == surface.expected_rgb(RGB332)
    assert any(e == type(e)(RGB332) for e in server.events() if type(e).__name__ == "SetPixelFormat")


def test_input_and_cut_text_become_events_and_intel_extensions_are_answered() -> None:
    server, client = RfbServer(Surface(64, 64)), RfbClient()
    connect(server, client)
    server.events()
    client.events()
    client.key(0x61, True)
    client.pointer(1, 10, 20)
    client.cut_text("hello")
    client.kvm_ext(KvmExtCommand.SET_COMPRESSION, 1)
    client.kvm_ext(KvmExtCommand.SET_DECIMATION, 3)
    client.kvm_data()
    pump(server, client)
    assert server.events() == [KeyEvent(True, 0x61), PointerEvent(1, 10, 20), CutText("hello"),
                               KvmExt(4, 1), KvmExt(2, 3), KvmData(b"")]
    assert client.events() == [KvmExt(KvmExtCommand.COMPRESSION_REPORT, 1), KvmExt(1, 3, b"\0")]
    surface = server.surface
    assert isinstance(surface, Surface)
    surface.pixels[0] ^= 1
    server.refresh()
    out = server.data_to_send()
    assert out[16 + 4] != 0  # the next RLE tile is compressed
    client.receive_data(out)
    assert client.rgb() == surface.expected_rgb(RGB565)


def test_a_colour_map_and_a_bell_from_a_generic_server_are_read() -> None:
    server, client = RfbServer(Surface(8, 8)), RfbClient()
    connect(server, client)
    client.events()
    client.receive_data(bytes([ServerMessage.SET_COLOUR_MAP_ENTRIES, 0]) + struct.pack(">HH", 0, 2) + bytes(12)
                        + bytes([ServerMessage.BELL]))
    assert [type(e).__name__ for e in client.events()] == ["Bell"]


# ---------------------------------------------------------------------------------------------- caps


def server_after_init() -> RfbServer:
    server = RfbServer(Surface(8, 8))
    server.start()
    server.receive_data(b"RFB 003.008\n\x01\x01")
    server.data_to_send()
    return server


@pytest.mark.parametrize(("data", "reason"), [
    (struct.pack(">BxxxI", 6, MAX_CUT_TEXT + 1), "cut text"),
    (struct.pack(">BxH", 2, 1000), "encodings"),
    (bytes([7]), "unknown client message"),
    (encode_set_pixel_format(PixelFormat(8, 8, False, False, 0, 0, 0, 0, 0, 0)), "colour-map"),
])
def test_server_refuses_oversized_and_unknown_client_messages(data: bytes, reason: str) -> None:
    with pytest.raises(RfbProtocolError, match=reason):
        server_after_init().receive_data(data)


def test_server_refuses_a_security_type_it_did_not_offer_and_a_flood() -> None:
    server = RfbServer(Surface(8, 8))
    server.start()
    with pytest.raises(RfbProtocolError, match="not offered"):
        server.receive_data(b"RFB 003.008\n\x02")
    with pytest.raises(RfbProtocolError, match="more than"):
        server_after_init().receive_data(struct.pack(">BxxxI", 6, MAX_CUT_TEXT) + bytes(MAX_CUT_TEXT)
                                         + bytes(MAX_CUT_TEXT))


def client_after_init(width: int = 64, height: int = 64, encodings: tuple[int, ...] = (16, 0, -223)) -> RfbClient:
    client = RfbClient(encodings=encodings)
    client.receive_data(b"RFB 003.008\n\x01\x01\0\0\0\0" + struct.pack(">HH", width, height) + RGB565.encode()
                        + struct.pack(">I", 3) + b"sim")
    client.data_to_send()
    return client


@pytest.mark.parametrize(("data", "reason"), [
    (struct.pack(">BxH", 0, 1) + struct.pack(">HHHHi", 60, 0, 8, 8, 0), "outside"),
    (struct.pack(">BxH", 0, 1) + struct.pack(">HHHHi", 0, 0, 8, 8, 5), "not asked for"),
    (struct.pack(">BxH", 0, 1) + struct.pack(">HHHHiI", 0, 0, 8, 8, 16, 1 << 30), "larger than"),
    (struct.pack(">BxH", 0, 1) + struct.pack(">HHHHi", 0, 0, 60000, 60000, -223), "larger than this client"),
    (struct.pack(">BxxxI", 3, MAX_CUT_TEXT + 1), "cut text"),
    (struct.pack(">BxHH", 1, 65535, 2), "beyond 65536"),
    (bytes([9]), "unknown server message"),
])
def test_client_refuses_hostile_server_messages(data: bytes, reason: str) -> None:
    with pytest.raises(RfbProtocolError, match=reason):
        client_after_init().receive_data(data)


def test_client_refuses_an_oversized_desktop_and_name() -> None:
    side = int((MAX_FRAMEBUFFER_BYTES // 2) ** 0.5) + 2
    with pytest.raises(RfbProtocolError, match="larger than"):
        client_after_init(side, side)
    with pytest.raises(RfbProtocolError, match="name"):
        RfbClient().receive_data(b"RFB 003.008\n\x01\x01\0\0\0\0" + bytes(20) + struct.pack(">I", 1 << 20))


# ---------------------------------------------------------------------------------------------- keys and relay


def test_text_becomes_keysyms_and_control_characters_are_refused() -> None:
    assert keysyms_for_text("aZ 1\n\t\u00e9\u20ac") == [0x61, 0x5A, 0x20, 0x31, Keysym.RETURN, Keysym.TAB, 0xE9,
                                                        0x010020AC]
    with pytest.raises(ValueError, match="control character"):
        keysyms_for_text("\x07")


def test_the_terminal_keyboard_types_what_a_terminal_would() -> None:
    keyboard = TerminalKeyboard()

    def press(*keys: int) -> bytes:
        out = b""
        for key in keys:
            out += keyboard.event(key, True)
        for key in reversed(keys):
            out += keyboard.event(key, False)
        return out

    assert press(0x61) == b"a"
    assert press(Keysym.RETURN) == b"\r"
    assert press(Keysym.CONTROL_L, 0x63) == b"\x03"
    assert press(Keysym.ALT_L, 0x78) == b"\x1bx"
    assert press(Keysym.UP) == b"\x1b[A"
    assert press(Keysym.F1) == b"\x1bOP"
    assert press(Keysym.SHIFT_L, 0x41) == b"A"
    assert press(0x010020AC) == "\u20ac".encode()
    assert keyboard.event(0x61, False) == b""


def test_the_viewer_filter_drops_amt_rle_and_intel_extensions_only() -> None:
    viewer = (b"RFB 003.008\n" + b"\x01" + b"\x01" + encode_set_encodings([16, 5, 1092, -223])
              + encode_key_event(True, 0x61) + encode_pointer_event(0, 1, 2))
    relay = ViewerFilter()
    out = b"".join(relay.feed(viewer[i : i + 3]) for i in range(0, len(viewer), 3))
    assert out == (b"RFB 003.008\n\x01\x01" + encode_set_encodings([5, -223, 0]) + encode_key_event(True, 0x61)
                   + encode_pointer_event(0, 1, 2))
    old = ViewerFilter()
    assert old.feed(b"RFB 003.003\n\x01" + encode_set_encodings([0, 16])) == (
        b"RFB 003.003\n\x01" + encode_set_encodings([0]))


def test_kvm_ext_payload_layout() -> None:
    assert kvm_ext_payload(KvmExtCommand.SET_COMPRESSION, 1) == b"\0KvmExtCmd\0\x04\x01"
