"""HTTP Digest authentication (RFC 2617/7616, MD5) as Intel AMT speaks it, for both ends of the wire.

Theory of operation
-------------------
Everything here is sans-I/O: strings and bytes in, strings and result objects out. Time comes from an
injectable clock and randomness from :mod:`secrets`, so every state machine can be driven by a test.

*Client* (the console). :class:`DigestClient` keeps the last challenge a device sent and answers each
request with the next nonce count, so a conversation costs one round trip instead of two. AMT accepts a
nonce reused with an increasing ``nc`` but may drop it at any time, so on every 401 the caller feeds the
new challenge back in. The pure functions underneath (:func:`ha1`, :func:`ha2`, :func:`compute_response`,
:func:`build_authorization`) serve callers that carry digest fields in another framing, such as the
redirection protocol's binary login.

*Server* (the engine). :class:`DigestVerifier` issues nonces and checks answers. AMT's security history
is the specification: CVE-2017-5689 accepted an empty ``response``, so only exactly 32 hex digits are
compared, in constant time, and every other field (realm, nonce, uri, qop, nc, cnonce) must match what we
issued. Credentials are HA1 values, never passwords, and an unknown user costs the same work as a known
one. Ten consecutive failures lock every login out for 5 s, doubling per round up to 80 s, as AMT does;
an hour without failures forgets the history. The HTTP header path (:meth:`DigestVerifier.verify`) and
the binary redirection path (:meth:`DigestVerifier.verify_fields`) share one comparison, so neither can
quietly become the weaker door. The HTTP layer answers every rejection with a 401 carrying a fresh
:meth:`DigestVerifier.challenge`, passing ``stale=True`` when the result says so.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeAlias

__all__ = [
    "MAX_HEADER_LENGTH",
    "AuthResult",
    "Challenge",
    "CredentialStore",
    "DigestClient",
    "DigestError",
    "DigestVerifier",
    "Reason",
    "amt_digest_password",
    "build_authorization",
    "compute_response",
    "generate_amt_realm",
    "ha1",
    "ha1_from_amt_digest_password",
    "ha2",
    "is_amt_realm",
    "parse_authorization",
    "parse_challenge",
]

MAX_HEADER_LENGTH = 4096
"""Longest header value (and longest single field) we look at; real ones are a few hundred bytes."""

LOCKOUT_THRESHOLD = 10
LOCKOUT_BASE_SECONDS = 5.0
LOCKOUT_MAX_SECONDS = 80.0
LOCKOUT_RESET_SECONDS = 3600.0

QOPS = ("auth", "auth-int")

_HEX32 = re.compile(r"[0-9a-fA-F]{32}")
_NC = re.compile(r"[0-9a-fA-F]{8}")
_AMT_REALM = re.compile(r"Digest:[0-9A-Fa-f]{32}")
_CTL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_SCHEME = re.compile(r"[ \t]*([A-Za-z][A-Za-z0-9._~+/-]*)(?:[ \t]+|\Z)")
_PARAM = re.compile(r'([!#$%&\'*+.^_`|~0-9A-Za-z-]+)[ \t]*=[ \t]*(?:"((?:[^"\\]|\\.)*)"|([^ \t,"]*))[ \t]*')
_ESCAPE = re.compile(r"\\(.)")


class DigestError(ValueError):
    """A digest header or value we refuse to interpret. Messages never quote field values, so they are
    safe to log even when the input held a password by mistake."""


# --- shared helpers -----------------------------------------------------------------------------------


def _md5_hex(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _utf8(text: str) -> bytes:
    # surrogatepass: hostile input must end in a rejection, never in a UnicodeEncodeError.
    return text.encode("utf-8", "surrogatepass")


def _quote(value: str) -> str:
    if _CTL.search(value):
        raise DigestError("control character in a digest field")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _split_scheme(value: str) -> tuple[str, str]:
    """Cap and sanity-check first so that nothing downstream ever sees an unbounded string."""
    if len(value) > MAX_HEADER_LENGTH:
        raise DigestError(f"header longer than {MAX_HEADER_LENGTH} characters")
    if _CTL.search(value):
        raise DigestError("control character in header")
    m = _SCHEME.match(value)
    if m is None:
        raise DigestError("no authentication scheme")
    return m.group(1).lower(), value[m.end() :]


def _parse_params(rest: str) -> dict[str, str]:
    """Parse ``name=value`` pairs as real AMT peers write them: any spacing around commas and ``=``,
    quoted or bare values, commas inside quotes. Duplicates are refused: two ``response`` fields would
    leave it to chance which one a later check reads."""
    params: dict[str, str] = {}
    pos = 0
    while True:
        while pos < len(rest) and rest[pos] in " \t,":
            pos += 1
        if pos == len(rest):
            return params
        m = _PARAM.match(rest, pos)
        if m is None:
            raise DigestError(f"malformed parameter at offset {pos}")
        name = m.group(1).lower()
        if name in params:
            raise DigestError(f"duplicate parameter {name[:32]!r}")
        quoted = m.group(2)
        params[name] = _ESCAPE.sub(r"\1", quoted) if quoted is not None else m.group(3)
        pos = m.end()
        if pos < len(rest) and rest[pos] != ",":
            raise DigestError(f"expected ',' at offset {pos}")


# --- client side: parsing and computing ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Challenge:
    """One parsed ``WWW-Authenticate: Digest`` challenge; ``qop`` is empty for RFC 2069 servers."""

    realm: str
    nonce: str
    qop: tuple[str, ...] = ()
    opaque: str | None = None
    stale: bool = False
    algorithm: str = "MD5"


def parse_challenge(header_value: str) -> Challenge:
    """Parse the value of a ``WWW-Authenticate`` header (without the header name)."""
    scheme, rest = _split_scheme(header_value)
    if scheme != "digest":
        raise DigestError("not a Digest challenge")
    p = _parse_params(rest)
    realm, nonce = p.get("realm"), p.get("nonce")
    if realm is None or not nonce:
        raise DigestError("challenge lacks realm or nonce")
    qop = tuple(q for q in (s.strip().lower() for s in p.get("qop", "").split(",")) if q)
    return Challenge(
        realm=realm,
        nonce=nonce,
        qop=qop,
        opaque=p.get("opaque"),
        stale=p.get("stale", "").lower() == "true",
        algorithm=p.get("algorithm", "MD5"),
    )


def parse_authorization(header_value: str) -> dict[str, str]:
    """Parse the value of an ``Authorization: Digest`` header into lower-cased field names.

    Only syntax is checked here; whether the fields authenticate anyone is :class:`DigestVerifier`'s job.
    """
    scheme, rest = _split_scheme(header_value)
    if scheme != "digest":
        raise DigestError("not a Digest authorization")
    return _parse_params(rest)


def ha1(username: str, realm: str, password: str) -> str:
    """HA1 = MD5(user:realm:password) in lower-case hex: what the engine stores instead of a password,
    and what AMT's ``NetworkAdminPassword`` carries during host-based setup."""
    return _md5_hex(_utf8(f"{username}:{realm}:{password}"))


def ha2(method: str, uri: str, qop: str | None = None, body_hash: str | None = None) -> str:
    """HA2 = MD5(method:uri), or MD5(method:uri:MD5(body)) for ``auth-int``, which protects the body."""
    if qop == "auth-int":
        if body_hash is None:
            raise DigestError("auth-int needs the body hash")
        return _md5_hex(_utf8(f"{method}:{uri}:{body_hash}"))
    return _md5_hex(_utf8(f"{method}:{uri}"))


def compute_response(
    *,
    ha1: str,
    method: str,
    uri: str,
    nonce: str,
    qop: str | None = None,
    nc: str = "",
    cnonce: str = "",
    body: bytes = b"",
) -> str:
    """The 32-hex ``response`` for a precomputed HA1. ``qop=None`` is RFC 2069 (AMT redirection auth
    type 3): no nc and cnonce in the hash, and therefore no replay protection."""
    if _HEX32.fullmatch(ha1) is None:
        raise DigestError("HA1 must be 32 hex digits")
    if qop is not None and qop not in QOPS:
        raise DigestError("unsupported qop")
    h2 = ha2(method, uri, qop, _md5_hex(body) if qop == "auth-int" else None)
    if qop is None:
        return _md5_hex(_utf8(f"{ha1.lower()}:{nonce}:{h2}"))
    return _md5_hex(_utf8(f"{ha1.lower()}:{nonce}:{nc}:{cnonce}:{qop}:{h2}"))


def build_authorization(
    *,
    username: str,
    realm: str,
    nonce: str,
    uri: str,
    response: str,
    qop: str | None = None,
    nc: str | None = None,
    cnonce: str | None = None,
    opaque: str | None = None,
) -> str:
    """Format an ``Authorization`` value in the spelling AMT and its clients use (qop and nc bare).

    Values with control characters are refused: they would let a caller inject header lines.
    """
    parts = [
        f"username={_quote(username)}",
        f"realm={_quote(realm)}",
        f"nonce={_quote(nonce)}",
        f"uri={_quote(uri)}",
        f"response={_quote(response)}",
    ]
    if qop is not None:
        if qop not in QOPS or nc is None or _NC.fullmatch(nc) is None or not cnonce:
            raise DigestError("qop needs a known qop, an 8-hex-digit nc and a cnonce")
        parts += [f"qop={qop}", f"nc={nc}", f"cnonce={_quote(cnonce)}"]
    parts.append("algorithm=MD5")
    if opaque is not None:
        parts.append(f"opaque={_quote(opaque)}")
    return "Digest " + ",".join(parts)


def amt_digest_password(username: str, realm: str, password: str) -> str:
    """``DigestPassword`` for ``AddUserAclEntryEx``/``SetAdminAclEntryEx``: base64 of the *raw* 16-byte
    HA1 (unlike host-based setup, which sends it as hex)."""
    return base64.b64encode(hashlib.md5(_utf8(f"{username}:{realm}:{password}")).digest()).decode("ascii")


def ha1_from_amt_digest_password(value: str) -> str:
    """Turn a received ``DigestPassword`` into the hex HA1 the verifier stores."""
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DigestError("DigestPassword is not base64") from exc
    if len(raw) != 16:
        raise DigestError("DigestPassword must decode to 16 bytes")
    return raw.hex()


def _new_cnonce() -> str:
    return secrets.token_hex(16)


class DigestClient:
    """Answers challenges for one account and reuses the last nonce with an increasing ``nc``.

    Not thread- or task-safe: the asyncio layer serialises requests per device, which AMT wants anyway.
    """

    def __init__(
        self,
        username: str,
        password: str | None = None,
        *,
        ha1: str | None = None,
        prefer_auth_int: bool = False,
        cnonce_factory: Callable[[], str] = _new_cnonce,
    ) -> None:
        if (password is None) == (ha1 is None):
            raise ValueError("give exactly one of password or ha1")
        if ha1 is not None and _HEX32.fullmatch(ha1) is None:
            raise DigestError("HA1 must be 32 hex digits")
        self.username = username
        self._password = password
        self._fixed_ha1 = ha1
        self._prefer_auth_int = prefer_auth_int
        self._cnonce_factory = cnonce_factory
        self._challenge: Challenge | None = None
        self._ha1 = ""
        self._qop: str | None = None
        self._nc = 0

    @property
    def challenge(self) -> Challenge | None:
        return self._challenge

    def handle_challenge(self, header_value: str) -> Challenge:
        """Adopt a new challenge (from any 401) and restart the nonce count."""
        ch = parse_challenge(header_value)
        if ch.algorithm.upper() != "MD5":
            raise DigestError("only algorithm MD5 is supported")
        if not ch.qop:
            qop = None
        elif "auth" in ch.qop and not (self._prefer_auth_int and "auth-int" in ch.qop):
            qop = "auth"
        elif "auth-int" in ch.qop:
            qop = "auth-int"
        else:
            raise DigestError("server offers no qop we support")
        if self._password is not None:
            self._ha1 = ha1(self.username, ch.realm, self._password)
        elif self._fixed_ha1 is not None:
            self._ha1 = self._fixed_ha1
        self._challenge, self._qop, self._nc = ch, qop, 0
        return ch

    def reset(self) -> None:
        """Forget the challenge, e.g. after the connection dropped; the next request goes unauthenticated."""
        self._challenge, self._qop, self._nc = None, None, 0

    def authorization(self, method: str, uri: str, body: bytes = b"") -> str:
        """The ``Authorization`` value for the next request under the current challenge."""
        ch = self._challenge
        if ch is None:
            raise DigestError("no challenge to answer yet")
        if self._nc >= 0xFFFFFFFF:
            raise DigestError("nonce count exhausted; request a new challenge")
        self._nc += 1
        qop, nc, cnonce = self._qop, f"{self._nc:08x}", self._cnonce_factory()
        response = compute_response(
            ha1=self._ha1, method=method, uri=uri, nonce=ch.nonce, qop=qop, nc=nc, cnonce=cnonce, body=body
        )
        return build_authorization(
            username=self.username,
            realm=ch.realm,
            nonce=ch.nonce,
            uri=uri,
            response=response,
            qop=qop,
            nc=nc if qop else None,
            cnonce=cnonce if qop else None,
            opaque=ch.opaque,
        )


# --- server side --------------------------------------------------------------------------------------


def generate_amt_realm() -> str:
    """A realm in AMT's shape, which RPS insists on before it activates a device."""
    return "Digest:" + secrets.token_hex(16).upper()


def is_amt_realm(value: str) -> bool:
    return _AMT_REALM.fullmatch(value) is not None


CredentialStore: TypeAlias = Mapping[str, str] | Callable[[str], str | None]
"""username -> HA1 hex. A callable is consulted on every login, so ACL changes apply at once."""


class Reason(enum.StrEnum):
    """Why a login was refused: for the audit log and the HTTP layer's choice of reply, never for the
    peer (every refusal looks the same on the wire)."""

    OK = "ok"
    MISSING = "missing"  # no Authorization header at all: a first request, not an attempt
    UNSUPPORTED_SCHEME = "unsupported_scheme"  # e.g. Basic (wsl's default); cannot succeed, not counted
    LOCKED_OUT = "locked_out"
    MALFORMED = "malformed"
    BAD_REALM = "bad_realm"
    BAD_URI = "bad_uri"
    BAD_QOP = "bad_qop"
    BAD_ALGORITHM = "bad_algorithm"
    BAD_CREDENTIALS = "bad_credentials"  # wrong response OR unknown user: deliberately one reason
    REPLAY = "replay"
    STALE_NONCE = "stale_nonce"  # right credentials on a nonce we no longer hold: retry, not a failure


@dataclass(frozen=True, slots=True)
class AuthResult:
    """Outcome of one login. ``username`` is set only on success; ``claimed_username`` is for the audit
    log. ``counted`` says the attempt counted towards anti-hammering (AMT audit event 1605)."""

    reason: Reason
    username: str | None = None
    claimed_username: str | None = None
    stale: bool = False
    counted: bool = False
    peer: object = None

    @property
    def ok(self) -> bool:
        return self.reason is Reason.OK


@dataclass(slots=True)
class _NonceState:
    issued: float
    used: float
    last_nc: int = 0


class DigestVerifier:
    """Issues nonces and verifies digest logins for one realm, with AMT's global anti-hammering.

    One instance should serve every listener of an engine (WS-MAN and redirection), because AMT counts
    failures across all of them and regardless of source. Not thread- or task-safe.
    """

    def __init__(
        self,
        credentials: CredentialStore,
        *,
        realm: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        offer_auth_int: bool = False,
        nonce_idle_timeout: float = 300.0,
        nonce_lifetime: float = 3600.0,
        max_nonces: int = 1024,
    ) -> None:
        self.realm = generate_amt_realm() if realm is None else realm
        if not self.realm or _CTL.search(self.realm) or '"' in self.realm or "\\" in self.realm:
            raise ValueError("realm must be non-empty and free of quotes, backslashes and control characters")
        if max_nonces < 1:
            raise ValueError("max_nonces must be at least 1")
        self._lookup: Callable[[str], str | None] = (
            credentials.get if isinstance(credentials, Mapping) else credentials
        )
        self._clock = clock
        self.qops: tuple[str, ...] = QOPS if offer_auth_int else ("auth",)
        self._idle = nonce_idle_timeout
        self._lifetime = nonce_lifetime
        self._max_nonces = max_nonces
        self._nonces: OrderedDict[str, _NonceState] = OrderedDict()  # least recently used first
        self._dummy_ha1 = secrets.token_hex(16)
        self._failures = 0
        self._rounds = 0
        self._locked_until = float("-inf")
        self._last_failure: float | None = None

    # nonces

    def issue_nonce(self) -> str:
        """Register and return a fresh nonce; the redirection login sends it in its own framing.

        Hex only: one widely used client splits the challenge on '=', so base64 padding would break it.
        """
        now = self._clock()
        while self._nonces:  # idle expiry follows LRU order, so expired nonces sit at the front
            oldest = next(iter(self._nonces.values()))
            if now - oldest.used <= self._idle:
                break
            self._nonces.popitem(last=False)
        while len(self._nonces) >= self._max_nonces:  # a flood of 401s must not grow memory
            self._nonces.popitem(last=False)
        nonce = secrets.token_hex(16)
        self._nonces[nonce] = _NonceState(issued=now, used=now)
        return nonce

    def challenge(self, stale: bool = False) -> str:
        """A ``WWW-Authenticate`` value in AMT's exact spacing (clients have been seen to depend on it)."""
        return (
            f'Digest realm="{self.realm}", nonce="{self.issue_nonce()}",'
            f'stale="{"true" if stale else "false"}",qop="{",".join(self.qops)}"'
        )

    def _live_nonce(self, nonce: str, now: float) -> _NonceState | None:
        state = self._nonces.get(nonce)
        if state is not None and (now - state.used > self._idle or now - state.issued > self._lifetime):
            del self._nonces[nonce]
            return None
        return state

    # anti-hammering

    def _locked_out(self, now: float) -> bool:
        if self._last_failure is not None and now - self._last_failure >= LOCKOUT_RESET_SECONDS:
            self._failures, self._rounds, self._last_failure = 0, 0, None
        return now < self._locked_until

    def locked_out_for(self) -> float:
        """Seconds until logins are considered again (0.0 when not locked out)."""
        return max(0.0, self._locked_until - self._clock())

    def _fail(self, reason: Reason, username: str | None, peer: object, now: float) -> AuthResult:
        self._last_failure = now
        self._failures += 1
        if self._failures >= LOCKOUT_THRESHOLD:
            self._locked_until = now + min(LOCKOUT_BASE_SECONDS * 2**self._rounds, LOCKOUT_MAX_SECONDS)
            self._rounds = min(self._rounds + 1, 8)
            self._failures = 0
        return AuthResult(reason, claimed_username=username, counted=True, peer=peer)

    def judge_other_login(self, matched: bool, *, peer: object = None) -> AuthResult:
        """The outcome of a login checked by another protocol that shares this anti-hammering (port 5900's
        VNC password): refused while logins are locked out, whatever ``matched`` says; a mismatch counts as a
        failure, a match clears the count, as a digest login does."""
        now = self._clock()
        if self._locked_out(now):
            return AuthResult(Reason.LOCKED_OUT, peer=peer)
        if not matched:
            return self._fail(Reason.BAD_CREDENTIALS, None, peer, now)
        self._failures = 0
        return AuthResult(Reason.OK, peer=peer)

    # verification

    def verify(
        self,
        method: str,
        authorization: str | None,
        body: bytes = b"",
        *,
        expected_uri: str | None = None,
        peer: object = None,
        allow_no_qop: bool = False,
    ) -> AuthResult:
        """Check an ``Authorization`` header value (``None`` when the request had none).

        ``peer`` does not influence the decision (AMT locks out globally); it is carried into the result
        for the audit record.
        """
        if authorization is None:
            return AuthResult(Reason.MISSING, peer=peer)
        now = self._clock()
        if self._locked_out(now):
            return AuthResult(Reason.LOCKED_OUT, peer=peer)
        try:
            scheme, rest = _split_scheme(authorization)
            if scheme != "digest":
                return AuthResult(Reason.UNSUPPORTED_SCHEME, peer=peer)
            fields = _parse_params(rest)
        except DigestError:
            return self._fail(Reason.MALFORMED, None, peer, now)
        return self.verify_fields(
            method, fields, body, expected_uri=expected_uri, peer=peer, allow_no_qop=allow_no_qop
        )

    def verify_fields(
        self,
        method: str,
        fields: Mapping[str, str],
        body: bytes = b"",
        *,
        expected_uri: str | None = None,
        peer: object = None,
        allow_no_qop: bool = False,
    ) -> AuthResult:
        """Check already-parsed digest fields (lower-case names), as the redirection login delivers them.

        ``allow_no_qop`` admits RFC 2069 answers (redirection auth type 3). Without nc there is no replay
        protection, so such a nonce is good for one login only.
        """
        now = self._clock()
        username = fields.get("username")
        if self._locked_out(now):
            return AuthResult(Reason.LOCKED_OUT, claimed_username=username, peer=peer)
        realm, nonce, uri, response = (fields.get(k) for k in ("realm", "nonce", "uri", "response"))
        qop, nc, cnonce = fields.get("qop"), fields.get("nc", ""), fields.get("cnonce", "")
        if any(len(v) > MAX_HEADER_LENGTH for v in fields.values()):
            return self._fail(Reason.MALFORMED, None, peer, now)
        if not username or realm is None or not nonce or not uri or response is None:
            return self._fail(Reason.MALFORMED, username, peer, now)
        # CVE-2017-5689: an empty or truncated response must never reach a prefix-length comparison.
        if _HEX32.fullmatch(response) is None:
            return self._fail(Reason.MALFORMED, username, peer, now)
        if fields.get("algorithm", "MD5").upper() != "MD5":
            return self._fail(Reason.BAD_ALGORITHM, username, peer, now)
        if qop is None:
            if not allow_no_qop:
                return self._fail(Reason.BAD_QOP, username, peer, now)
        elif qop not in self.qops:
            return self._fail(Reason.BAD_QOP, username, peer, now)
        elif _NC.fullmatch(nc) is None or not cnonce:
            return self._fail(Reason.MALFORMED, username, peer, now)
        if realm != self.realm:
            return self._fail(Reason.BAD_REALM, username, peer, now)
        if expected_uri is not None and uri != expected_uri:
            return self._fail(Reason.BAD_URI, username, peer, now)

        # Unknown users are hashed against a random HA1 so timing does not reveal who exists.
        stored = self._lookup(username)
        known = stored is not None and _HEX32.fullmatch(stored) is not None
        secret = stored if stored is not None and known else self._dummy_ha1
        expected = compute_response(
            ha1=secret, method=method, uri=uri, nonce=nonce, qop=qop, nc=nc, cnonce=cnonce, body=body
        )
        if not (hmac.compare_digest(expected, response.lower()) and known):
            return self._fail(Reason.BAD_CREDENTIALS, username, peer, now)

        state = self._live_nonce(nonce, now)
        if state is None:
            return AuthResult(Reason.STALE_NONCE, claimed_username=username, stale=True, peer=peer)
        if qop is None:
            del self._nonces[nonce]
        else:
            count = int(nc, 16)
            if count <= state.last_nc:
                return self._fail(Reason.REPLAY, username, peer, now)
            state.last_nc, state.used = count, now
            self._nonces.move_to_end(nonce)
        self._failures = 0
        return AuthResult(Reason.OK, username=username, claimed_username=username, peer=peer)
