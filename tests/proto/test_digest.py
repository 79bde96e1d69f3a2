"""Digest authentication: RFC vectors, AMT's wire shapes, the client/verifier pair, the hostile list
(CVE-2017-5689 and friends) and AMT's anti-hammering lockout, all on a fake clock."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import re
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from outband.proto import digest
from outband.proto.digest import (
    MAX_HEADER_LENGTH,
    DigestClient,
    DigestError,
    DigestVerifier,
    Reason,
    amt_digest_password,
    build_authorization,
    compute_response,
    generate_amt_realm,
    ha1,
    ha1_from_amt_digest_password,
    ha2,
    is_amt_realm,
    parse_authorization,
    parse_challenge,
)

REALM = "Digest:F3EB554784E729164447A89F60B641C5"
USER, PASSWORD = "admin", "P@ssw0rd!"
AMT_CHALLENGE = (
    'Digest realm="Digest:F3EB554784E729164447A89F60B641C5", '
    'nonce="bQali2IAAAAAAAAAn0xaWCOcxNsRcEHX",stale="false",qop="auth"'
)


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_verifier(**kwargs) -> tuple[DigestVerifier, FakeClock]:
    clock = FakeClock()
    verifier = DigestVerifier({USER: ha1(USER, REALM, PASSWORD)}, realm=REALM, clock=clock, **kwargs)
    return verifier, clock


def answer(
    verifier: DigestVerifier,
    *,
    nonce: str | None = None,
    method: str = "POST",
    uri: str = "/wsman",
    username: str = USER,
    realm: str = REALM,
    password: str = PASSWORD,
    qop: str | None = "auth",
    nc: str = "00000001",
    cnonce: str = "0a4f113b",
    body: bytes = b"",
) -> dict[str, str]:
    """Fields of a correct answer to a fresh challenge, unless an argument says otherwise."""
    nonce = nonce if nonce is not None else parse_challenge(verifier.challenge()).nonce
    response = compute_response(
        ha1=ha1(username, realm, password),
        method=method,
        uri=uri,
        nonce=nonce,
        qop=qop,
        nc=nc,
        cnonce=cnonce,
        body=body,
    )
    fields = {"username": username, "realm": realm, "nonce": nonce, "uri": uri, "response": response}
    if qop is not None:
        fields |= {"qop": qop, "nc": nc, "cnonce": cnonce}
    return fields


def as_header(fields: dict[str, str]) -> str:
    return "Digest " + ", ".join(f'{k}="{v}"' for k, v in fields.items())


# --- vectors --------------------------------------------------------------------------------------------


def test_rfc2617_example():
    h1 = ha1("Mufasa", "testrealm@host.com", "Circle Of Life")
    response = compute_response(
        ha1=h1,
        method="GET",
        uri="/dir/index.html",
        nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
        qop="auth",
        nc="00000001",
        cnonce="0a4f113b",
    )
    assert response == "6629fae49393a05397450978507c4ef1"


def test_rfc7616_md5_example():
    response = compute_response(
        ha1=ha1("Mufasa", "http-auth@example.org", "Circle of Life"),
        method="GET",
        uri="/dir/index.html",
        nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
        qop="auth",
        nc="00000001",
        cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
    )
    assert response == "8ca523f5e9506fed4657c9700eebdbec"


def test_rfc2069_no_qop_matches_independent_computation():
    h1 = ha1("Mufasa", "testrealm@host.com", "CircleOfLife")
    nonce = "dcd98b7102dd2f0e8b11d0f600bfb0c093"
    response = compute_response(ha1=h1, method="GET", uri="/dir/index.html", nonce=nonce)
    assert response == md5(f"{h1}:{nonce}:{md5('GET:/dir/index.html')}")
    assert response == "1949323746fe6a43ef61f9606e7febea"


def test_auth_int_hashes_the_body():
    body = b"<Envelope/>"
    expected_ha2 = md5(f"POST:/wsman:{hashlib.md5(body).hexdigest()}")
    assert ha2("POST", "/wsman", "auth-int", hashlib.md5(body).hexdigest()) == expected_ha2
    args = {"ha1": "0" * 32, "method": "POST", "uri": "/wsman", "nonce": "n", "nc": "00000001", "cnonce": "c"}
    assert compute_response(**args, qop="auth-int", body=body) == md5(
        f"{'0' * 32}:n:00000001:c:auth-int:{expected_ha2}"
    )
    assert compute_response(**args, qop="auth-int", body=body) != compute_response(
        **args, qop="auth-int", body=b"<Other/>"
    )
    with pytest.raises(DigestError):
        ha2("POST", "/wsman", "auth-int")


def test_ha1_matches_hashlib():
    # go-wsman-messages' hash_test.go vector, checked against hashlib rather than trusted.
    assert ha1("test", "realm", "pass") == md5("test:realm:pass") == "cccddec7bd6f77524ddac0e981fe5ba8"


def test_amt_digest_password_is_base64_of_raw_md5():
    value = amt_digest_password(USER, REALM, PASSWORD)
    assert value == base64.b64encode(hashlib.md5(f"{USER}:{REALM}:{PASSWORD}".encode()).digest()).decode()
    assert ha1_from_amt_digest_password(value) == ha1(USER, REALM, PASSWORD)


@pytest.mark.parametrize("value", ["", "not base64!", base64.b64encode(b"x" * 15).decode(), "QUFB=QUFB"])
def test_ha1_from_amt_digest_password_rejects_garbage(value):
    with pytest.raises(DigestError):
        ha1_from_amt_digest_password(value)


@pytest.mark.parametrize("bad", ["", "0" * 31, "0" * 33, "g" * 32])
def test_compute_response_rejects_bad_ha1(bad):
    with pytest.raises(DigestError):
        compute_response(ha1=bad, method="GET", uri="/", nonce="n")


# --- parsing --------------------------------------------------------------------------------------------


def test_parse_real_amt_challenge():
    ch = parse_challenge(AMT_CHALLENGE)
    assert (ch.realm, ch.nonce, ch.qop, ch.stale, ch.opaque, ch.algorithm) == (
        REALM,
        "bQali2IAAAAAAAAAn0xaWCOcxNsRcEHX",
        ("auth",),
        False,
        None,
        "MD5",
    )


@pytest.mark.parametrize(
    ("header", "realm", "nonce", "qop", "stale", "opaque"),
    [
        ('digest realm="r",nonce="n"', "r", "n", (), False, None),
        (
            'Digest  realm = "a, b" ,, nonce=abc,qop="auth, auth-int"',
            "a, b",
            "abc",
            ("auth", "auth-int"),
            False,
            None,
        ),
        ('Digest realm="q\\"x", nonce="n", stale=TRUE, opaque="o"', 'q"x', "n", (), True, "o"),
        ('Digest realm="", nonce="n=="', "", "n==", (), False, None),
    ],
)
def test_parse_challenge_variants(header, realm, nonce, qop, stale, opaque):
    ch = parse_challenge(header)
    assert (ch.realm, ch.nonce, ch.qop, ch.stale, ch.opaque) == (realm, nonce, qop, stale, opaque)


@pytest.mark.parametrize(
    "header",
    [
        "",
        "Digest",
        'Basic realm="x"',
        'Digest realm="x"',
        'Digest nonce="n"',
        'Digest realm="x, nonce="n"',
        'Digest realm="x" nonce="n"',
        'Digest realm="x", realm="y", nonce="n"',
        'Digest realm="x",\r\n nonce="n"',
        'Digest realm="x", nonce="n", =v',
        "Digest realm=" + "x" * MAX_HEADER_LENGTH + ', nonce="n"',
    ],
)
def test_parse_challenge_rejects(header):
    with pytest.raises(DigestError):
        parse_challenge(header)


@pytest.mark.parametrize(
    "header",
    [
        # go-wsman-messages style: qop and nc quoted
        'Digest username="admin",realm="R",nonce="N",uri="/wsman",response="X",qop="auth",nc="00000001",'
        'cnonce="c="',
        # MeshCommander style: qop and nc bare, spaces after commas
        'Digest username="admin", realm="R", nonce="N", uri="/wsman", response="X", qop=auth, nc=00000001, '
        'cnonce="c=", algorithm="MD5"',
    ],
)
def test_parse_authorization_client_styles(header):
    fields = parse_authorization(header)
    assert fields["qop"] == "auth"
    assert fields["nc"] == "00000001"
    assert fields["cnonce"] == "c="
    assert fields["uri"] == "/wsman"


@given(st.text(max_size=300))
def test_parsers_raise_only_digest_error(text):
    for parse in (parse_challenge, parse_authorization):
        for value in (text, "Digest " + text):
            with contextlib.suppress(DigestError):
                parse(value)


# --- client ---------------------------------------------------------------------------------------------


def test_client_header_shape():
    client = DigestClient("Mufasa", "Circle Of Life", cnonce_factory=lambda: "0a4f113b")
    client.handle_challenge(
        'Digest realm="testrealm@host.com", qop="auth,auth-int", '
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
    )
    assert client.authorization("GET", "/dir/index.html") == (
        'Digest username="Mufasa",realm="testrealm@host.com",nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",'
        'uri="/dir/index.html",response="6629fae49393a05397450978507c4ef1",qop=auth,nc=00000001,'
        'cnonce="0a4f113b",algorithm=MD5,opaque="5ccc069c403ebaf9f0171e9517f40e41"'
    )


def test_client_reuses_nonce_and_counts_up_then_resets_on_new_challenge():
    client = DigestClient(USER, PASSWORD)
    with pytest.raises(DigestError):
        client.authorization("POST", "/wsman")
    client.handle_challenge(AMT_CHALLENGE)
    first, second = (parse_authorization(client.authorization("POST", "/wsman")) for _ in range(2))
    assert (first["nc"], second["nc"]) == ("00000001", "00000002")
    assert first["nonce"] == second["nonce"] == "bQali2IAAAAAAAAAn0xaWCOcxNsRcEHX"
    assert first["cnonce"] != second["cnonce"]
    client.handle_challenge(AMT_CHALLENGE.replace("bQali2", "zzzzzz"))
    third = parse_authorization(client.authorization("POST", "/wsman"))
    assert (third["nc"], third["nonce"][:6]) == ("00000001", "zzzzzz")
    client.reset()
    assert client.challenge is None


def test_quotes_and_backslashes_survive_the_round_trip():
    username, uri = 'a"b\\c', '/x"y'
    verifier = DigestVerifier({username: ha1(username, REALM, PASSWORD)}, realm=REALM, clock=FakeClock())
    client = DigestClient(username, PASSWORD)
    client.handle_challenge(verifier.challenge())
    header = client.authorization("POST", uri)
    assert 'username="a\\"b\\\\c"' in header
    assert parse_authorization(header)["username"] == username
    assert verifier.verify("POST", header, expected_uri=uri).ok


@pytest.mark.parametrize(
    "challenge",
    ['Digest realm="r", nonce="n", algorithm=SHA-256', 'Digest realm="r", nonce="n", qop="auth-conf"'],
)
def test_client_refuses_what_it_cannot_answer(challenge):
    with pytest.raises(DigestError):
        DigestClient(USER, PASSWORD).handle_challenge(challenge)


def test_client_needs_exactly_one_secret():
    with pytest.raises(ValueError, match="exactly one"):
        DigestClient(USER)
    with pytest.raises(ValueError, match="exactly one"):
        DigestClient(USER, PASSWORD, ha1="0" * 32)


@pytest.mark.parametrize("field", ["username", "realm", "nonce", "uri", "cnonce"])
def test_build_authorization_refuses_header_injection(field):
    kwargs = {"username": "u", "realm": "r", "nonce": "n", "uri": "/", "response": "0" * 32}
    kwargs |= {"qop": "auth", "nc": "00000001", "cnonce": "c", field: "x\r\nX-Evil: 1"}
    with pytest.raises(DigestError):
        build_authorization(**kwargs)


# --- verifier: AMT shapes and round trips ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        (REALM, True),
        ("Digest:" + "ab" * 16, True),
        ("Digest:" + "A" * 31, False),
        ("Digest:" + "A" * 33, False),
        ("digest:" + "A" * 32, False),
        ("Digest:" + "G" * 32, False),
        (REALM + "\n", False),
        ("", False),
    ],
)
def test_is_amt_realm(value, valid):
    assert is_amt_realm(value) is valid


def test_generated_realm_is_amt_shaped_uppercase_and_random():
    realms = {generate_amt_realm() for _ in range(5)}
    assert len(realms) == 5
    assert all(re.fullmatch(r"Digest:[0-9A-F]{32}", r) for r in realms)
    assert is_amt_realm(DigestVerifier({}).realm)


def test_challenge_has_amts_exact_shape():
    verifier, _ = make_verifier()

    def shape(stale: str, qop: str) -> str:
        return 'Digest realm="' + REALM + '", nonce="[0-9a-f]{32}",stale="' + stale + '",qop="' + qop + '"'

    assert re.fullmatch(shape("false", "auth"), verifier.challenge())
    assert re.fullmatch(shape("true", "auth"), verifier.challenge(stale=True))
    both, _ = make_verifier(offer_auth_int=True)
    assert re.fullmatch(shape("false", "auth,auth-int"), both.challenge())
    nonces = {parse_challenge(verifier.challenge()).nonce for _ in range(50)}
    assert len(nonces) == 50


@pytest.mark.parametrize(("qop_offer", "prefer_int"), [(False, False), (True, True), (True, False)])
def test_client_verifier_round_trip_with_nonce_reuse(qop_offer, prefer_int):
    verifier, _ = make_verifier(offer_auth_int=qop_offer)
    client = DigestClient(USER, PASSWORD, prefer_auth_int=prefer_int)
    client.handle_challenge(verifier.challenge())
    for i in range(1, 4):
        body = b"<Envelope>%d</Envelope>" % i
        header = client.authorization("POST", "/wsman", body)
        assert parse_authorization(header)["qop"] == ("auth-int" if prefer_int else "auth")
        assert parse_authorization(header)["nc"] == f"{i:08x}"
        result = verifier.verify("POST", header, body, expected_uri="/wsman", peer=("10.0.0.9", 5000))
        assert result.ok, result
        assert (result.username, result.peer) == (USER, ("10.0.0.9", 5000))


def test_auth_int_rejects_a_tampered_body():
    verifier, _ = make_verifier(offer_auth_int=True)
    client = DigestClient(USER, PASSWORD, prefer_auth_int=True)
    client.handle_challenge(verifier.challenge())
    header = client.authorization("POST", "/wsman", b"<PowerOn/>")
    assert verifier.verify("POST", header, b"<PowerOff/>").reason is Reason.BAD_CREDENTIALS


def test_client_with_stored_ha1_and_callable_store_with_uppercase_ha1():
    store = {USER: ha1(USER, REALM, PASSWORD).upper()}
    verifier = DigestVerifier(store.get, realm=REALM, clock=FakeClock())
    client = DigestClient(USER, ha1=ha1(USER, REALM, PASSWORD))
    client.handle_challenge(verifier.challenge())
    assert verifier.verify("POST", client.authorization("POST", "/wsman")).ok
    del store[USER]  # ACL change applies to the very next login
    assert verifier.verify("POST", client.authorization("POST", "/wsman")).reason is Reason.BAD_CREDENTIALS


def test_uppercase_response_and_quoted_algorithm_accepted():
    verifier, _ = make_verifier()
    fields = answer(verifier)
    fields |= {"response": fields["response"].upper(), "algorithm": "MD5"}
    assert verifier.verify("POST", as_header(fields)).ok


def test_redirection_style_fields_share_the_same_checks():
    verifier, _ = make_verifier()
    fields = answer(verifier, uri="/RedirectionService", nc="00000002", cnonce="f" * 32)
    assert verifier.verify_fields("POST", fields, expected_uri="/RedirectionService").ok
    fields = answer(verifier, uri="/RedirectionService", nc="00000002")
    fields["response"] = ""
    assert verifier.verify_fields("POST", fields).reason is Reason.MALFORMED


def test_no_qop_only_when_allowed_and_only_once():
    verifier, _ = make_verifier()
    fields = answer(verifier, qop=None, uri="/RedirectionService")
    assert verifier.verify_fields("POST", fields).reason is Reason.BAD_QOP
    fields = answer(verifier, qop=None, uri="/RedirectionService")
    assert verifier.verify_fields("POST", fields, allow_no_qop=True).ok
    again = verifier.verify_fields("POST", fields, allow_no_qop=True)
    assert (again.ok, again.stale) == (False, True)


def test_unknown_user_costs_the_same_computation(monkeypatch):
    calls: list[str] = []
    real = digest.compute_response

    def counting(**kwargs):
        calls.append(kwargs["ha1"])
        return real(**kwargs)

    monkeypatch.setattr(digest, "compute_response", counting)
    verifier, _ = make_verifier()
    assert (
        verifier.verify_fields("POST", answer(verifier, username="nobody")).reason is Reason.BAD_CREDENTIALS
    )
    assert verifier.verify_fields("POST", answer(verifier, password="wrong")).reason is Reason.BAD_CREDENTIALS
    assert len(calls) == 2
    assert calls[0] != ha1("nobody", REALM, PASSWORD)


# --- the hostile list -----------------------------------------------------------------------------------


Mutation = Callable[[dict[str, str]], dict[str, str]]


def _set(**changes: str) -> Mutation:
    return lambda f: f | changes


def _drop(name: str) -> Mutation:
    return lambda f: {k: v for k, v in f.items() if k != name}


def _resp(edit: Callable[[str], str]) -> Mutation:
    return lambda f: f | {"response": edit(f["response"])}


HOSTILE = [
    ("empty-response-CVE-2017-5689", _set(response=""), Reason.MALFORMED),
    ("truncated-to-1", _resp(lambda r: r[:1]), Reason.MALFORMED),
    ("truncated-to-31", _resp(lambda r: r[:31]), Reason.MALFORMED),
    ("32-non-hex", _set(response="z" * 32), Reason.MALFORMED),
    ("33-chars", _resp(lambda r: r + "0"), Reason.MALFORMED),
    (
        "response-off-by-one-digit",
        _resp(lambda r: r[:31] + ("0" if r[31] != "0" else "1")),
        Reason.BAD_CREDENTIALS,
    ),
    ("missing-response", _drop("response"), Reason.MALFORMED),
    ("missing-username", _drop("username"), Reason.MALFORMED),
    ("missing-uri", _drop("uri"), Reason.MALFORMED),
    ("missing-nonce", _drop("nonce"), Reason.MALFORMED),
    ("missing-realm", _drop("realm"), Reason.MALFORMED),
    ("missing-cnonce", _drop("cnonce"), Reason.MALFORMED),
    ("empty-cnonce", _set(cnonce=""), Reason.MALFORMED),
    ("missing-nc", _drop("nc"), Reason.MALFORMED),
    ("nc-7-digits", _set(nc="0000001"), Reason.MALFORMED),
    ("nc-9-digits", _set(nc="000000001"), Reason.MALFORMED),
    ("nc-non-hex", _set(nc="0000000g"), Reason.MALFORMED),
    ("qop-missing", _drop("qop"), Reason.BAD_QOP),
    ("qop-not-offered", _set(qop="auth-int"), Reason.BAD_QOP),
    ("qop-unknown", _set(qop="auth-conf"), Reason.BAD_QOP),
    ("algorithm-sha256", _set(algorithm="SHA-256"), Reason.BAD_ALGORITHM),
    ("algorithm-md5-sess", _set(algorithm="MD5-sess"), Reason.BAD_ALGORITHM),
]


@pytest.mark.parametrize("path", ["header", "fields"])
@pytest.mark.parametrize(("mutate", "reason"), [pytest.param(m, r, id=i) for i, m, r in HOSTILE])
def test_hostile_fields_rejected(path, mutate, reason):
    verifier, _ = make_verifier()
    good = answer(verifier)
    fields = mutate(good)

    def check(f):
        return (
            verifier.verify("POST", as_header(f)) if path == "header" else verifier.verify_fields("POST", f)
        )

    result = check(fields)
    assert (result.ok, result.reason, result.username, result.counted) == (False, reason, None, True)
    assert check(good).ok  # the same answer unmutated would have passed


@pytest.mark.parametrize(
    ("make_answer", "verify_kwargs", "reason"),
    [
        pytest.param(lambda v: answer(v, realm="Digest:" + "0" * 32), {}, Reason.BAD_REALM, id="wrong-realm"),
        pytest.param(
            lambda v: answer(v, uri="/other"), {"expected_uri": "/wsman"}, Reason.BAD_URI, id="wrong-uri"
        ),
        pytest.param(lambda v: answer(v, username="Admin"), {}, Reason.BAD_CREDENTIALS, id="wrong-username"),
        pytest.param(
            lambda v: answer(v, password="p@ssw0rd!"), {}, Reason.BAD_CREDENTIALS, id="wrong-password"
        ),
        pytest.param(lambda v: answer(v, method="GET"), {}, Reason.BAD_CREDENTIALS, id="wrong-method"),
        pytest.param(lambda v: answer(v, nc="00000000"), {}, Reason.REPLAY, id="nc-zero"),
        pytest.param(
            lambda v: answer(v, password="wrong", nonce="0" * 32),
            {},
            Reason.BAD_CREDENTIALS,
            id="bad-on-unknown-nonce",
        ),
    ],
)
def test_hostile_answers_rejected(make_answer, verify_kwargs, reason):
    verifier, _ = make_verifier()
    result = verifier.verify("POST", as_header(make_answer(verifier)), **verify_kwargs)
    assert (result.ok, result.reason, result.stale, result.counted) == (False, reason, False, True)
    assert result.claimed_username is not None


def test_unknown_nonce_with_right_password_is_stale_not_a_failure():
    verifier, _ = make_verifier()
    result = verifier.verify("POST", as_header(answer(verifier, nonce="0" * 32)))
    assert (result.ok, result.reason, result.stale, result.counted) == (
        False,
        Reason.STALE_NONCE,
        True,
        False,
    )


def test_nonce_expires_when_idle_and_after_its_lifetime():
    verifier, clock = make_verifier(nonce_idle_timeout=300, nonce_lifetime=900)
    nonce = parse_challenge(verifier.challenge()).nonce
    clock.advance(301)
    assert verifier.verify("POST", as_header(answer(verifier, nonce=nonce))).reason is Reason.STALE_NONCE
    nonce = parse_challenge(verifier.challenge()).nonce
    for nc in range(1, 4):  # kept busy, so never idle, but still finite
        clock.advance(299)
        assert verifier.verify("POST", as_header(answer(verifier, nonce=nonce, nc=f"{nc:08x}"))).ok
    clock.advance(299)
    assert verifier.verify("POST", as_header(answer(verifier, nonce=nonce, nc="00000004"))).stale


@pytest.mark.parametrize(("first", "second"), [("00000001", "00000001"), ("00000005", "00000004")])
def test_replayed_nc_rejected(first, second):
    verifier, _ = make_verifier()
    nonce = parse_challenge(verifier.challenge()).nonce
    assert verifier.verify("POST", as_header(answer(verifier, nonce=nonce, nc=first))).ok
    result = verifier.verify("POST", as_header(answer(verifier, nonce=nonce, nc=second)))
    assert result.reason is Reason.REPLAY


def test_outstanding_nonces_are_capped():
    verifier, _ = make_verifier(max_nonces=4)
    first = parse_challenge(verifier.challenge()).nonce
    for _ in range(4):
        verifier.challenge()
    assert verifier.verify("POST", as_header(answer(verifier, nonce=first))).reason is Reason.STALE_NONCE


@pytest.mark.parametrize(
    ("header", "reason", "counted"),
    [
        (None, Reason.MISSING, False),
        ("Basic YWRtaW46cGFzcw==", Reason.UNSUPPORTED_SCHEME, False),
        ("Digest " + "x" * MAX_HEADER_LENGTH, Reason.MALFORMED, True),
        ('Digest username="admin", response="", response="' + "0" * 32 + '"', Reason.MALFORMED, True),
        ("Digest username=admin realm=x", Reason.MALFORMED, True),
        ("", Reason.MALFORMED, True),
    ],
)
def test_header_level_rejections(header, reason, counted):
    verifier, _ = make_verifier()
    result = verifier.verify("POST", header)
    assert (result.ok, result.reason, result.counted) == (False, reason, counted)


def test_oversized_but_otherwise_valid_header_rejected():
    verifier, _ = make_verifier()
    fields = answer(verifier)
    padded = as_header(fields) + ', x="' + "a" * MAX_HEADER_LENGTH + '"'
    assert verifier.verify("POST", padded).reason is Reason.MALFORMED
    assert verifier.verify("POST", as_header(fields)).ok


@settings(max_examples=300)
@given(st.text(max_size=600))
def test_garbage_headers_are_rejected_never_raised(text):
    verifier = DigestVerifier({USER: ha1(USER, REALM, PASSWORD)}, realm=REALM, clock=FakeClock())
    for header in (text, "Digest " + text):
        assert not verifier.verify("POST", header).ok


_FIELD_NAMES = st.sampled_from(
    ["username", "realm", "nonce", "uri", "response", "qop", "nc", "cnonce", "algorithm"]
)


@given(st.dictionaries(_FIELD_NAMES, st.text(max_size=40)), st.binary(max_size=20))
def test_garbage_fields_are_rejected_never_raised(fields, body):
    verifier = DigestVerifier({USER: ha1(USER, REALM, PASSWORD)}, realm=REALM, clock=FakeClock())
    assert not verifier.verify_fields("POST", fields, body, allow_no_qop=True).ok


_FIELD_TEXT = st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=20)


@given(username=_FIELD_TEXT, password=st.text(max_size=20), uri=_FIELD_TEXT, body=st.binary(max_size=50))
def test_round_trip_for_any_printable_credentials(username, password, uri, body):
    """Quotes and backslashes in names must survive build -> parse unchanged, or the hashes disagree."""
    verifier = DigestVerifier({username: ha1(username, REALM, password)}, realm=REALM, clock=FakeClock())
    client = DigestClient(username, password)
    client.handle_challenge(verifier.challenge())
    assert verifier.verify("PUT", client.authorization("PUT", uri, body), body, expected_uri=uri).ok


# --- anti-hammering -------------------------------------------------------------------------------------


def fail(verifier: DigestVerifier, times: int = 1) -> None:
    for _ in range(times):
        result = verifier.verify("POST", as_header(answer(verifier, password="guess")))
        assert result.reason in (Reason.BAD_CREDENTIALS, Reason.LOCKED_OUT)


def succeeds(verifier: DigestVerifier) -> bool:
    return verifier.verify("POST", as_header(answer(verifier))).ok


def test_ten_failures_lock_out_even_the_right_password_for_five_seconds():
    verifier, clock = make_verifier()
    fail(verifier, 9)
    assert verifier.locked_out_for() == 0.0
    fail(verifier)
    assert verifier.locked_out_for() == 5.0
    result = verifier.verify("POST", as_header(answer(verifier)), peer="10.0.0.2")  # another source, too
    assert (result.ok, result.reason, result.counted) == (False, Reason.LOCKED_OUT, False)
    assert verifier.verify_fields("POST", answer(verifier)).reason is Reason.LOCKED_OUT
    clock.advance(4.9)
    assert not succeeds(verifier)
    assert verifier.locked_out_for() == pytest.approx(0.1)
    clock.advance(0.1)
    assert succeeds(verifier)


def test_success_resets_the_consecutive_count():
    verifier, _ = make_verifier()
    fail(verifier, 9)
    assert succeeds(verifier)
    fail(verifier, 9)
    assert verifier.locked_out_for() == 0.0
    assert succeeds(verifier)


def test_stale_and_non_digest_attempts_do_not_count():
    verifier, _ = make_verifier()
    for _ in range(20):
        verifier.verify("POST", as_header(answer(verifier, nonce="0" * 32)))
        verifier.verify("POST", "Basic YWRtaW46cGFzcw==")
    assert verifier.locked_out_for() == 0.0


def test_lockout_doubles_per_round_caps_at_80_and_forgets_after_an_hour():
    verifier, clock = make_verifier()
    periods = []
    for _ in range(6):
        fail(verifier, 10)
        periods.append(verifier.locked_out_for())
        clock.advance(periods[-1])
    assert periods == [5, 10, 20, 40, 80, 80]
    clock.advance(3600 - 80 - 1)  # 59:59 since the last failure is not quiet enough
    fail(verifier, 10)
    assert verifier.locked_out_for() == 80
    clock.advance(80 + 3600)
    assert succeeds(verifier)
    fail(verifier, 10)
    assert verifier.locked_out_for() == 5
