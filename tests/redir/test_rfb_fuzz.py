"""RFB's decoders against truncated, oversized and garbage input: the server, the client, the rectangle
decoder, the viewer relay and the KVM channel opening either work or raise their protocol error -- never
another exception, a hang, or an allocation beyond their caps."""

from __future__ import annotations

import contextlib
import struct
import tracemalloc

from hypothesis import given
from hypothesis import strategies as st

from outband.proto.redir.frames import MessageType, ProtocolError
from outband.proto.redir.kvm import ChannelOpening
from outband.proto.rfb import RGB332, RGB565, RGB888, RfbClient, RfbProtocolError, RfbServer
from outband.proto.rfb.client import MAX_FRAMEBUFFER_BYTES
from outband.proto.rfb.encodings import PixelBuffer, RectDecoder, RectEncoder
from outband.proto.rfb.messages import (
    ClientMessage,
    Encoding,
    ServerMessage,
    encode_cut_text,
    encode_key_event,
    encode_pointer_event,
    encode_set_encodings,
    encode_set_pixel_format,
    encode_update_request,
    kvm_ext_payload,
)
from outband.proto.rfb.pixels import PaletteEncoder
from outband.proto.rfb.relay import ViewerFilter

from .test_fuzz import CUTS, FUZZ, chunked, soup
from .test_rfb import PALETTE, Surface

CLIENT_MESSAGES = [
    encode_set_pixel_format(RGB332), encode_set_pixel_format(RGB888), encode_set_encodings([16, 0, 1092, -223]),
    encode_set_encodings([0]), encode_update_request(False, 0, 0, 64, 64), encode_update_request(True, 5, 5, 900, 3),
    encode_key_event(True, 0x61), encode_pointer_event(1, 3, 4),
    encode_cut_text(ClientMessage.CLIENT_CUT_TEXT, b"clip"),
    encode_cut_text(ClientMessage.CLIENT_CUT_TEXT, kvm_ext_payload(4, 1)),
    encode_cut_text(ClientMessage.CLIENT_CUT_TEXT, kvm_ext_payload(2)),
]
CLIENT_OVERSIZED = [bytes.fromhex("06000000ffffffff"), bytes.fromhex("0200ffff"), bytes.fromhex("0200010000000010")]
SERVER_HANDSHAKE = b"RFB 003.008\n\x01\x01\0\0\0\0" + struct.pack(">HH", 100, 70) + RGB565.encode() + b"\0\0\0\x03sim"


def _server_messages() -> list[bytes]:
    encoder = RectEncoder(PaletteEncoder(RGB565, PALETTE), Encoding.RLE)
    raw = RectEncoder(PaletteEncoder(RGB565, PALETTE), Encoding.RAW)
    tile = bytes(Surface(64, 64, 5).pixels)
    return [
        struct.pack(">BxH", 0, 1) + encoder.rect(0, 0, 64, 64, tile),
        struct.pack(">BxH", 0, 2) + raw.rect(64, 0, 8, 8, bytes(64)) + encoder.rect(0, 64, 4, 6, bytes(24)),
        struct.pack(">BxH", 0, 1) + struct.pack(">HHHHi", 0, 0, 120, 80, -223),
        bytes([2]), struct.pack(">BxHH", 1, 0, 1) + bytes(6),
        encode_cut_text(ServerMessage.SERVER_CUT_TEXT, b"\0KvmDataChannel\0x"),
        bytes.fromhex("03000000ffffffff"), bytes.fromhex("0000ffff"),
        struct.pack(">BxH", 0, 1) + struct.pack(">HHHHiI", 0, 0, 64, 64, 16, 0xFFFFFFFF),
    ]


@FUZZ
@given(data=soup(CLIENT_MESSAGES + CLIENT_OVERSIZED), cuts=CUTS, version=st.sampled_from([b"3.003", b"3.007",
                                                                                          b"3.008"]))
def test_rfb_server(data: bytes, cuts: list[int], version: bytes) -> None:
    server = RfbServer(Surface(100, 70, 4))
    server.start()
    prefix = b"RFB 00" + version + b"\n" + (b"" if version == b"3.003" else b"\x01") + b"\x01"
    tracemalloc.start()
    try:
        for chunk in chunked(prefix + data, cuts):
            server.receive_data(chunk)
            server.events()
            server.refresh()
            server.data_to_send()
    except RfbProtocolError:
        pass
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert peak < 4 * 1024 * 1024


@FUZZ
@given(data=soup(_server_messages()), cuts=CUTS)
def test_rfb_client(data: bytes, cuts: list[int]) -> None:
    client = RfbClient()
    tracemalloc.start()
    try:
        for chunk in chunked(SERVER_HANDSHAKE + data, cuts):
            client.receive_data(chunk)
            client.events()
            client.data_to_send()
    except RfbProtocolError:
        pass
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert peak < 4 * 1024 * 1024
    assert len(client.framebuffer.pixels) <= MAX_FRAMEBUFFER_BYTES


@FUZZ
@given(garbage=st.binary(max_size=400), width=st.integers(1, 64), height=st.integers(1, 64),
       fmt=st.sampled_from([RGB565, RGB332, RGB888]), stored=st.booleans())
def test_rle_rectangles(garbage: bytes, width: int, height: int, fmt, stored: bool) -> None:
    body = (b"\x00" + struct.pack("<HH", len(garbage), len(garbage) ^ 0xFFFF) + garbage) if stored else garbage
    target = PixelBuffer.blank(64, 64, fmt)
    with contextlib.suppress(RfbProtocolError):
        RectDecoder().rle(target, 0, 0, width, height, body)
    assert len(target.pixels) == 64 * 64 * fmt.bytes_per_pixel


@FUZZ
@given(data=st.one_of(soup([b"RFB 003.008\n", b"RFB 003.003\n", b"\x01", *CLIENT_MESSAGES, *CLIENT_OVERSIZED])),
       cuts=CUTS)
def test_viewer_relay(data: bytes, cuts: list[int]) -> None:
    relay = ViewerFilter()
    try:
        for chunk in chunked(data, cuts):
            assert len(relay.feed(chunk)) <= len(data) + 4 * 256
    except RfbProtocolError:
        pass


@FUZZ
@given(data=st.binary(max_size=40), cuts=CUTS)
def test_kvm_channel_opening(data: bytes, cuts: list[int]) -> None:
    opening = ChannelOpening(MessageType.IDER_START_REPLY)
    rest = b""
    try:
        for chunk in chunked(data, cuts):
            after = opening.feed(chunk)
            rest += after or b""
    except ProtocolError:
        return
    if opening.done:
        assert data[0] == 0x41
        assert rest == data[8:]
