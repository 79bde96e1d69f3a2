"""KVM end to end: our KvmSession against the engine's KVM kind over the redirection listener.  The screen is
the sim console's text drawn by the framebuffer, read back glyph by glyph from the pixels our client decoded;
keys typed over KVM reach the shell SOL talks to; screenshots are valid PNG; a local VNC bridge relays a
viewer; a platform display that is pixels already (as a VM's) is served as it is, its input passed through; and
the KVM channel's opening, consent and switch behave as AMT's do."""

from __future__ import annotations

import asyncio
import struct
import zlib

import pytest
from tests.redir._kit import audit_ids, eventually, instant_machine
from tests.redir._mediakit import enable_kvm, media_engine

from outband.aio.errors import AuthenticationError
from outband.aio.redirection import RedirectionClient, SessionRefused, open_tcp_stream
from outband.aio.tls import fingerprint_of
from outband.client.amt import AmtClient
from outband.client.ider import IderSession
from outband.client.kvm import KvmChannel, KvmSession, VncBridge, encode_png, open_kvm_channel
from outband.client.redirection import SolSession
from outband.client.streams import direct_stream
from outband.engine.platforms.base import BootDevice
from outband.engine.platforms.console import TextScreen
from outband.engine.platforms.framebuffer import FONT, VGA_PALETTE, TextFramebuffer
from outband.proto.redir.frames import SessionKind
from outband.proto.redir.kvm import KVM_START
from outband.proto.redir.scsi import BytesMedium
from outband.proto.rfb import RGB332, RGB565, RGB888, PixelFormat, RfbClient
from outband.proto.rfb.pixels import PaletteEncoder
from outband.testing.images import iso_image


def kvm_session(r, **kwargs) -> KvmSession:
    return KvmSession(r.host, "admin", r.password, port=r.port, timeout=10.0, **kwargs)


def screen_text(kvm: KvmSession, grid: TextScreen, size: tuple[int, int] | None = None) -> list[str]:
    """What the client's decoded pixels show, read glyph by glyph (colours mapped back to the VGA palette)."""
    fmt = kvm.framebuffer.format
    encoder = PaletteEncoder(fmt, VGA_PALETTE)
    index_of = {fmt.rgb_of(encoder.pixels[i]): i for i in range(len(VGA_PALETTE))}
    rgb = kvm.rfb.rgb()
    indices = bytes(index_of[tuple(rgb[k : k + 3])] for k in range(0, len(rgb), 3))  # type: ignore[index]
    return TextFramebuffer(grid, size=size).read_text(indices)


def decode_png(data: bytes) -> tuple[int, int, bytes]:
    """Width, height and RGB of an 8-bit RGB PNG with filter 0 rows (what encode_png writes)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    at, idat, width, height = 8, b"", 0, 0
    while at < len(data):
        length = struct.unpack_from(">I", data, at)[0]
        kind, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        assert struct.unpack_from(">I", data, at + 8 + length)[0] == zlib.crc32(kind + body)
        if kind == b"IHDR":
            width, height = struct.unpack_from(">II", body)
            assert body[8:] == bytes([8, 2, 0, 0, 0])
        elif kind == b"IDAT":
            idat += body
        at += 12 + length
    raw = zlib.decompress(idat)
    rows = [raw[y * (width * 3 + 1) : (y + 1) * (width * 3 + 1)] for y in range(height)]
    assert all(row[0] == 0 for row in rows)
    return width, height, b"".join(row[1:] for row in rows)


# ---------------------------------------------------------------------------------------------- framebuffer


def test_the_framebuffer_draws_the_text_screen_and_reads_it_back() -> None:
    screen = TextScreen()
    screen.write(b"Hello, \x1b[1;44mVGA\x1b[0m world!\r\nsecond line_ gjpqy")
    framebuffer = TextFramebuffer(screen)
    framebuffer.attach()
    assert (framebuffer.width, framebuffer.height) == (720, 400)
    text = framebuffer.read_text()
    assert text[0].rstrip() == "Hello, VGA world!"
    assert text[1].rstrip() == "second line_ gjpqy"
    cell = framebuffer.region(7 * 9, 0, 9, 16)  # the "V": bright white on blue
    assert set(cell) == {1, 15}
    screen.write(b"\r\nmore")
    assert framebuffer.read_text()[2].rstrip() == "more"
    framebuffer.detach()


def test_every_printable_character_has_its_own_glyph_and_the_cursor_is_drawn() -> None:
    assert len(set(FONT.values())) == len(FONT) == 95
    screen = TextScreen()
    screen.write(bytes(range(0x20, 0x7F)))
    framebuffer = TextFramebuffer(screen, cell_width=8)
    assert "".join(framebuffer.read_text()[:2]).rstrip() == "".join(map(chr, range(0x20, 0x7F)))
    col = screen.cursor[1]
    underline = framebuffer.region(col * 8, screen.cursor[0] * 16 + 14, 8, 2)
    assert set(underline) == {7}


def test_a_larger_display_centres_the_text() -> None:
    screen = TextScreen()
    screen.write(b"centred")
    framebuffer = TextFramebuffer(screen, size=(1024, 768))
    assert framebuffer.read_text()[0].startswith("centred")
    assert set(framebuffer.region(0, 0, 1024, 184)) == {0}  # (768 - 400) / 2 rows of black above the text
    with pytest.raises(ValueError, match="at least"):
        framebuffer.resize(640, 400)


# ---------------------------------------------------------------------------------------------- sessions


@pytest.mark.parametrize("fmt", [RGB565, RGB332, RGB888], ids=["rgb565", "rgb332", "rgb888"])
async def test_the_client_sees_the_console_and_a_key_press_updates_the_picture(fmt: PixelFormat) -> None:
    async with media_engine() as r:
        async with kvm_session(r, pixel_format=fmt) as kvm:
            grid = r.machine.console.screen
            assert (kvm.framebuffer.width, kvm.framebuffer.height) == (720, 400)
            assert screen_text(kvm, grid) == grid.text()
            updates = kvm.updates
            await kvm.type_text("echo typed-over-kvm\n")
            await kvm.wait_for(lambda k: sum("typed-over-kvm" in line for line in screen_text(k, grid)) == 2)
            assert kvm.updates > updates
            assert screen_text(kvm, grid) == grid.text()
        await eventually(lambda: 1809 in audit_ids(r))
        assert audit_ids(r)[-2:] == [1808, 1809]


class PixelDisplay:
    """A platform display that is pixels already, as a VM's is: a 64x32 picture in four colours, its own view,
    recording the input it is given."""

    hostname = "pixel-machine"
    palette = ((0, 0, 0), (255, 0, 0), (0, 255, 0), (0, 0, 255))
    width, height = 64, 32

    def __init__(self) -> None:
        self.pixels = bytearray(([1] * 32 + [2] * 32) * 32)  # red left half, green right half
        self.on_change = None
        self.attached = False
        self.input: list[tuple[object, ...]] = []

    def view(self) -> PixelDisplay:
        return self

    def region(self, x: int, y: int, width: int, height: int) -> bytes:
        return b"".join(bytes(self.pixels[row * self.width + x : row * self.width + x + width])
                        for row in range(y, y + height))

    def attach(self, on_change=None) -> None:
        self.attached, self.on_change = True, on_change

    def detach(self) -> None:
        self.attached, self.on_change = False, None

    def key(self, keysym: int, down: bool) -> None:
        self.input.append(("key", keysym, down))

    def pointer(self, buttons: int, x: int, y: int) -> None:
        self.input.append(("pointer", buttons, x, y))

    def rgb(self) -> bytes:
        return b"".join(bytes(self.palette[index]) for index in self.pixels)


async def test_a_display_that_is_pixels_already_is_shown_as_it_is_and_gets_keys_and_the_pointer() -> None:
    display = PixelDisplay()
    machine = instant_machine()
    machine.display = display
    async with media_engine(machine=machine) as r:
        async with kvm_session(r, pixel_format=RGB888) as kvm:
            assert (kvm.framebuffer.width, kvm.framebuffer.height) == (64, 32)
            assert kvm.rfb.name == "pixel-machine"
            assert kvm.rfb.rgb() == display.rgb()
            display.pixels[: 64 * 8] = bytes([3]) * (64 * 8)  # the top 8 rows turn blue
            display.on_change()
            await kvm.wait_for(lambda k: k.rfb.rgb() == display.rgb())
            await kvm.key(0xFFE3, down=True)  # Control_L: a keysym passed on as it is, not typed as text
            await kvm.pointer(10, 20, buttons=1)
            await eventually(lambda: len(display.input) == 2)
            assert display.input == [("key", 0xFFE3, True), ("pointer", 1, 10, 20)]
        await eventually(lambda: 1809 in audit_ids(r))
        assert not display.attached
        assert audit_ids(r)[-2:] == [1808, 1809]


async def test_kvm_and_sol_share_one_console() -> None:
    async with media_engine() as r, kvm_session(r) as kvm:
        grid = r.machine.console.screen
        async with SolSession(r.host, "admin", r.password, port=r.port, timeout=10.0) as sol:
            await kvm.type_text("hostname\n")
            seen = b""
            while b"outband-sim\r\n" not in seen:
                seen += await asyncio.wait_for(sol.read(), 10)
            await sol.write(b"echo from-sol\r")
            await kvm.wait_for(lambda k: any(line.startswith("from-sol") for line in screen_text(k, grid)))


async def test_a_screenshot_is_a_png_of_the_decoded_picture() -> None:
    async with media_engine(kvm_size=(1024, 768)) as r, kvm_session(r) as kvm:
        png = kvm.screenshot()
        width, height, rgb = decode_png(png)
        assert (width, height) == (1024, 768)
        assert rgb == kvm.rfb.rgb()
        assert screen_text(kvm, r.machine.console.screen, size=(1024, 768)) == r.machine.console.screen.text()
    with pytest.raises(ValueError, match="not 2x2"):
        encode_png(2, 2, b"\0" * 11)


async def test_a_vnc_viewer_is_relayed_with_amt_rle_filtered_out() -> None:
    async with media_engine() as r:
        factory = direct_stream(r.host, r.port, timeout=10.0)
        channels: list[KvmChannel] = []

        async def open_channel() -> KvmChannel:
            channel = await open_kvm_channel(factory, "admin", r.password, host=r.host)
            channels.append(channel)
            return channel

        bridge = VncBridge(open_channel)
        server = await asyncio.start_server(bridge.serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        viewer = RfbClient(pixel_format=RGB888, encodings=(16, 0, -223))  # a standard viewer wants ZRLE first
        while viewer.updates == 0:
            viewer.receive_data(await asyncio.wait_for(reader.read(65536), 10))
            writer.write(viewer.data_to_send())
        assert viewer.framebuffer.width == 720
        grid = r.machine.console.screen
        encoder = PaletteEncoder(RGB888, VGA_PALETTE)
        index_of = {encoder.pixels[i]: i for i in range(16)}
        pixels = bytes(viewer.framebuffer.pixels)
        indices = bytes(index_of[pixels[k : k + 4]] for k in range(0, len(pixels), 4))
        assert TextFramebuffer(grid).read_text(indices) == grid.text()
        writer.close()
        await eventually(lambda: channels[0].client.session.closed)
        server.close()
        await server.wait_closed()
        assert bridge.viewers == 1
        assert bridge.errors == []


async def test_kvm_needs_its_switch_and_the_users_consent() -> None:
    async with media_engine() as r:
        amt = AmtClient(r.env.host, transport=r.env.transport())
        assert (await amt.invoke("CIM_KVMRedirectionSAP", "RequestStateChange",
                                 {"RequestedState": 3}))["ReturnValue"] == 0
        with pytest.raises(SessionRefused, match="not enabled"):
            await kvm_session(r).open()
        await enable_kvm(r.env, consent=True)
        optin = await amt.get("IPS_OptInService")
        optin["OptInRequired"] = 1  # KVM needs consent
        await amt.put(optin)
        with pytest.raises(AuthenticationError):
            await kvm_session(r).open()
        assert (await amt.invoke("IPS_OptInService", "StartOptIn"))["ReturnValue"] == 0
        code = int(r.machine.screen_messages[-1].rsplit(" ", 1)[1])
        assert (await amt.invoke("IPS_OptInService", "SendOptInCode", {"OptInCode": code}))["ReturnValue"] == 0
        async with kvm_session(r) as kvm:
            assert kvm.updates >= 1


async def test_a_console_that_does_not_open_the_channel_properly_is_dropped() -> None:
    async with media_engine() as r:
        stream = await open_tcp_stream(r.host, r.port)
        client = await RedirectionClient.login(stream, SessionKind.KVM, "admin", r.password)
        client.session.decoder.switch_to_raw()
        await client.send(b"\x42" + bytes(7))  # not 0x40
        assert await asyncio.wait_for(client.receive(), 10) is None
        await client.aclose()
        await eventually(lambda: 1809 in audit_ids(r))


async def test_kvm_and_ide_r_run_over_tls_with_a_pinned_certificate(tmp_path) -> None:
    async with media_engine(tls_dir=tmp_path) as r:
        pin = fingerprint_of(tmp_path / "cert.pem")
        async with KvmSession(r.host, "admin", r.password, port=r.tls_port, tls=True, fingerprint=pin,
                              timeout=10.0) as kvm:
            assert screen_text(kvm, r.machine.console.screen) == r.machine.console.screen.text()
        image = BytesMedium(iso_image("over tls", label="TLSCD"))
        async with IderSession(r.host, "admin", r.password, port=r.tls_port, tls=True, fingerprint=pin,
                               cd=image, timeout=10.0):
            lines: list[str] = []
            assert await r.machine.console.storage.boot(BootDevice.IDER_CD, lines.append) is not None
            assert lines[0] == "Booted from IDE-R CD-ROM: TLSCD"


async def test_rfb_garbage_after_the_opening_closes_the_session_cleanly(caplog: pytest.LogCaptureFixture) -> None:
    async with media_engine() as r:
        stream = await open_tcp_stream(r.host, r.port)
        client = await RedirectionClient.login(stream, SessionKind.KVM, "admin", r.password)
        client.session.decoder.switch_to_raw()
        await client.send(KVM_START)
        received = b""
        while len(received) < 8 + 12:
            item = await asyncio.wait_for(client.receive(), 10)
            assert item is not None
            received += item.data  # type: ignore[union-attr]
        await client.send(b"RFB 003.008\n\x01\x01" + bytes([0xEE]) * 40)  # then an unknown message type
        while (item := await asyncio.wait_for(client.receive(), 10)) is not None:
            pass
        await client.aclose()
        await eventually(lambda: 1809 in audit_ids(r))
        assert not [rec for rec in caplog.records if rec.levelname == "ERROR"]
