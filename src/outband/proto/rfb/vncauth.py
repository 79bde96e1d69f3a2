"""VNC Authentication (RFB security type 2, RFC 6143 §7.2.2), both ends.

The server sends 16 random bytes; the client encrypts them with DES in ECB mode, keyed by the password, and
sends the 16 bytes back.  The key is the password's first 8 bytes (NUL-padded) with the bits of every byte
reversed -- an accident of the original VNC code that every implementation has had to copy.  AMT's port 5900
uses it with the RFB password of IPS_KVMRedirectionSettingData (exactly 8 characters, AMT-PROTOCOLS.md §4.5).

DES is single DES: ``TripleDES`` with the 8-byte key repeated three times computes the same thing, and the
24-byte key keeps clear of the deprecation ``cryptography`` attaches to 8-byte TripleDES keys.  This is weak
cryptography by today's standards and only as strong as AMT made it: a captured challenge and response can be
attacked offline, which is why port 5900 stays off until a console asks for it (DESIGN.md security rules).

The server side compares responses with :func:`hmac.compare_digest`, and nothing shorter than a whole
response, or made with an empty password, can match (the CVE-2017-5689 lesson).
"""

from __future__ import annotations

import hmac
import secrets
from typing import Final

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes

CHALLENGE_LENGTH: Final = 16
KEY_LENGTH: Final = 8

_REVERSED: Final = bytes(int(f"{b:08b}"[::-1], 2) for b in range(256))


def vnc_key(password: str) -> bytes:
    """The DES key VNC makes of a password: its first 8 bytes (UTF-8, NUL-padded), each bit-reversed."""
    raw = password.encode("utf-8")[:KEY_LENGTH].ljust(KEY_LENGTH, b"\0")
    return raw.translate(_REVERSED)


def des_ecb(key: bytes, data: bytes) -> bytes:
    """Single DES, ECB, of whole 8-byte blocks."""
    if len(key) != KEY_LENGTH or len(data) % 8:
        raise ValueError("DES takes an 8-byte key and whole 8-byte blocks")
    encryptor = Cipher(TripleDES(key * 3), modes.ECB()).encryptor()  # noqa: S305 - what RFB specifies
    return encryptor.update(data) + encryptor.finalize()


def vnc_response(password: str, challenge: bytes) -> bytes:
    """The client's answer to ``challenge``: the challenge DES-encrypted with :func:`vnc_key`."""
    if len(challenge) != CHALLENGE_LENGTH:
        raise ValueError(f"a VNC challenge has {CHALLENGE_LENGTH} bytes, not {len(challenge)}")
    return des_ecb(vnc_key(password), challenge)


def new_challenge() -> bytes:
    return secrets.token_bytes(CHALLENGE_LENGTH)


def response_matches(password: str, challenge: bytes, response: bytes) -> bool:
    """Whether ``response`` answers ``challenge`` for ``password``: an empty password never matches, and the
    comparison takes the same time wherever the bytes differ."""
    if not password or len(response) != CHALLENGE_LENGTH:
        return False
    return hmac.compare_digest(vnc_response(password, challenge), bytes(response))


__all__ = ["CHALLENGE_LENGTH", "des_ecb", "new_challenge", "response_matches", "vnc_key", "vnc_response"]
