"""VNC Authentication (RFB security type 2) sans-I/O: the DES and key handling against published vectors, and the
server's and client's handshakes for RFB 3.3, 3.7 and 3.8 -- the caller's grant/deny decision point, the
refusal reasons, and the things that must never let a client in (no verify, a wrong or empty password)."""

from __future__ import annotations

import struct

import pytest
from tests.redir.test_rfb import Surface, pump

from outband.proto.rfb import RGB565, ClientInitialised, RfbClient, RfbProtocolError, RfbServer
from outband.proto.rfb.server import ServerState, VncLoginAttempt
from outband.proto.rfb.vncauth import des_ecb, response_matches, vnc_key, vnc_response

PASSWORD = "Kvm5900!"


def test_des_is_single_des_as_the_fips_81_vector_says() -> None:
    # FIPS 81 appendix B: key 0123456789ABCDEF, "Now is the time for all " in ECB mode.
    out = des_ecb(bytes.fromhex("0123456789abcdef"), b"Now is the time for all ")
    assert out.hex() == "3fa40e8a984d48156a271787ab8883f9893d51ec4b563b53"


def test_the_key_is_the_first_8_bytes_bit_reversed_and_nul_padded() -> None:
    assert vnc_key("password") == bytes.fromhex("0e86ceceeef64e26")  # p = 0x70 -> 0x0e, a = 0x61 -> 0x86 ...
    assert vnc_key("pass") == bytes.fromhex("0e86cece00000000")
    assert vnc_key("password-and-more") == vnc_key("password")


def test_the_response_is_the_challenge_encrypted_with_the_reversed_key() -> None:
    challenge = bytes(range(16))
    assert vnc_response(PASSWORD, challenge) == des_ecb(vnc_key(PASSWORD), challenge)
    assert response_matches(PASSWORD, challenge, vnc_response(PASSWORD, challenge))
    assert not response_matches("Kvm5900?", challenge, vnc_response(PASSWORD, challenge))
    assert not response_matches(PASSWORD, challenge, vnc_response(PASSWORD, challenge)[:15])
    assert not response_matches("", challenge, vnc_response("", challenge))  # an empty password never matches
    with pytest.raises(ValueError, match="16 bytes"):
        vnc_response(PASSWORD, b"short")


def vnc_server() -> RfbServer:
    server = RfbServer(Surface(64, 32), name="sim", vnc_auth=True)
    server.start()
    return server


def login(server: RfbServer, client: RfbClient) -> VncLoginAttempt:
    """Run the handshake up to the server's decision point."""
    pump(server, client)
    events = server.events()
    assert events == [VncLoginAttempt()]
    assert server.state is ServerState.DECIDING
    return events[0]


def test_right_password_granted_then_the_desktop_is_served() -> None:
    server, client = vnc_server(), RfbClient(password=PASSWORD)
    login(server, client)
    assert server.verify(PASSWORD)
    server.grant()
    pump(server, client)
    assert client.ready
    assert client.name == "sim"
    assert client.rgb() == Surface(64, 32).expected_rgb(RGB565)
    assert isinstance(server.events()[0], ClientInitialised)


def test_wrong_password_is_denied_with_the_reason_and_the_server_goes_deaf() -> None:
    server, client = vnc_server(), RfbClient(password="Wrong99!")
    login(server, client)
    assert not server.verify(PASSWORD)
    with pytest.raises(RuntimeError, match="verified"):
        server.grant()
    server.deny("authentication failed")
    assert server.closed
    with pytest.raises(RfbProtocolError, match="refused the connection: authentication failed"):
        client.receive_data(server.data_to_send())
    server.receive_data(b"\x01" + bytes(10))  # whatever the client sends now is ignored
    assert server.data_to_send() == b""
    assert server.events() == []


def test_a_grant_needs_a_matching_verify_first() -> None:
    server = vnc_server()
    with pytest.raises(RuntimeError, match="no VNC response"):
        server.verify(PASSWORD)
    server.receive_data(b"RFB 003.008\n\x02" + bytes(16))
    assert server.events() == [VncLoginAttempt()]
    with pytest.raises(RuntimeError, match="verified"):
        server.grant()  # nothing verified yet
    assert not server.verify("")
    with pytest.raises(RuntimeError, match="verified"):
        server.grant()


def test_a_client_with_an_empty_password_is_never_let_in() -> None:
    server, client = vnc_server(), RfbClient(password="")
    login(server, client)
    assert not server.verify("")  # even if the stored password were empty
    assert not server.verify(PASSWORD)


@pytest.mark.parametrize(("version", "offer"), [(b"RFB 003.008\n", b"\x01\x02"), (b"RFB 003.007\n", b"\x01\x02"),
                                                (b"RFB 003.003\n", struct.pack(">I", 2))])
def test_server_offers_only_vnc_authentication_and_a_fresh_challenge(version: bytes, offer: bytes) -> None:
    challenges = []
    for _ in range(2):
        server = vnc_server()
        assert server.data_to_send() == b"RFB 003.008\n"
        server.receive_data(version)
        out = server.data_to_send()
        assert out.startswith(offer)
        if version != b"RFB 003.003\n":
            assert len(out) == 2
            with pytest.raises(RfbProtocolError, match="not offered"):
                vnc_server_at(version).receive_data(b"\x01")  # None is not on offer
            server.receive_data(b"\x02")
            out = server.data_to_send()
        else:
            out = out[4:]
        assert len(out) == 16
        challenges.append(out)
    assert challenges[0] != challenges[1]


def vnc_server_at(version: bytes) -> RfbServer:
    server = vnc_server()
    server.receive_data(version)
    server.data_to_send()
    return server


@pytest.mark.parametrize("version", [b"RFB 003.003\n", b"RFB 003.007\n"])
def test_older_clients_get_a_bare_failed_result_and_read_it(version: bytes) -> None:
    server = vnc_server()
    server.data_to_send()
    server.receive_data(version)
    head = server.data_to_send()
    if version == b"RFB 003.007\n":
        server.receive_data(b"\x02")
        head += server.data_to_send()
    server.receive_data(bytes(16))
    server.verify(PASSWORD)
    server.deny("authentication failed")
    assert server.data_to_send() == struct.pack(">I", 1)  # no reason string before 3.8
    client = RfbClient(password=PASSWORD)
    with pytest.raises(RfbProtocolError, match="authentication failed"):
        client.receive_data(version + head + struct.pack(">I", 1))


@pytest.mark.parametrize("version", [b"RFB 003.003\n", b"RFB 003.007\n", b"RFB 003.008\n"])
def test_every_version_logs_in_with_the_right_password(version: bytes) -> None:
    server = vnc_server()
    server.data_to_send()
    client = RfbClient(password=PASSWORD)
    client.receive_data(version)  # the client speaks the older version...
    server.receive_data(client.data_to_send())  # ...and the server follows it
    login(server, client)
    assert server.verify(PASSWORD)
    server.grant()
    pump(server, client)
    assert client.ready
    assert client.version == server.version


def test_a_client_init_sent_with_the_response_is_read_after_the_grant() -> None:
    server = vnc_server_at(b"RFB 003.008\n")
    server.receive_data(b"\x02")
    challenge = server.data_to_send()
    server.receive_data(vnc_response(PASSWORD, challenge) + b"\x01")
    assert server.events() == [VncLoginAttempt()]
    assert server.verify(PASSWORD)
    server.grant()
    out = server.data_to_send()
    assert out[:4] == bytes(4)  # SecurityResult OK, then ServerInit at once
    assert struct.unpack_from(">HH", out, 4) == (64, 32)
    assert server.events() == [ClientInitialised(True, (3, 8))]


def test_the_client_prefers_vnc_authentication_only_when_it_has_a_password() -> None:
    with_password = RfbClient(password=PASSWORD)
    with_password.receive_data(b"RFB 003.008\n\x02\x01\x02")
    assert with_password.data_to_send() == b"RFB 003.008\n\x02"
    inside_redirection = RfbClient(password=PASSWORD)
    inside_redirection.receive_data(b"RFB 003.008\n\x01\x01")  # AMT's 16994 KVM offers None only
    assert inside_redirection.data_to_send() == b"RFB 003.008\n\x01"
    with pytest.raises(RfbProtocolError, match="only None"):
        RfbClient().receive_data(b"RFB 003.008\n\x01\x02")
