"""The XML parser under hostile input: no entity, DTD, file or network is ever touched, and caps hold.

Each case is an attack seen against SOAP stacks (ECOSYSTEM.md B1, AMT-PROTOCOLS.md §7).  Where an attack would
read a file or open a connection, the test plants a marker file or listens on loopback and checks that nothing
was read or dialled, rather than trusting an error message.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree

from outband.proto.cim.model import CimObject, XmlFragment
from outband.proto.wsman import DecodeError, parse_envelope
from outband.proto.wsman import xml as wsxml

SOAP_NS = "http://www.w3.org/2003/05/soap-envelope"
GENERAL = "http://intel.com/wbem/wscim/1/amt-schema/1/AMT_GeneralSettings"


def envelope(field_xml: str = "<h:HostName>host</h:HostName>", prolog: str = "") -> bytes:
    """A Put-shaped envelope of AMT_GeneralSettings whose only field content is ``field_xml``."""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>{prolog}'
        f'<s:Envelope xmlns:s="{SOAP_NS}"><s:Header></s:Header><s:Body>'
        f'<h:AMT_GeneralSettings xmlns:h="{GENERAL}">{field_xml}</h:AMT_GeneralSettings>'
        "</s:Body></s:Envelope>"
    ).encode()


MARKER = "outband-secret-7f3c9b"


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "secret.txt"
    path.write_text(MARKER, encoding="utf-8")
    return path


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A loopback TCP listener that an entity or DTD fetch would dial; tests assert nobody did."""
    server = socket.create_server(("127.0.0.1", 0))
    server.setblocking(False)
    try:
        yield server
    finally:
        server.close()


def assert_never_dialled(server: socket.socket) -> None:
    try:
        conn, _ = server.accept()
    except BlockingIOError:
        return
    conn.close()
    pytest.fail("parsing opened a network connection")


def url_of(server: socket.socket, path: str) -> str:
    host, port = server.getsockname()[:2]
    return f"http://{host}:{port}/{path}"


def refuse(data: bytes) -> DecodeError:
    with pytest.raises(DecodeError) as info:
        parse_envelope(data)
    return info.value


# ------------------------------------------------------------------------------------ entities and DTDs


def test_external_entity_file_is_never_read(secret_file: Path) -> None:
    data = envelope(
        "<h:HostName>&xxe;</h:HostName>",
        f'<!DOCTYPE s:Envelope [<!ENTITY xxe SYSTEM "{secret_file.as_uri()}">]>',
    )
    error = refuse(data)
    assert MARKER not in str(error)
    assert "DOCTYPE" in str(error)


def test_external_entity_url_is_never_fetched(listener: socket.socket) -> None:
    data = envelope(
        "<h:HostName>&xxe;</h:HostName>",
        f'<!DOCTYPE s:Envelope [<!ENTITY xxe SYSTEM "{url_of(listener, "xxe")}">]>',
    )
    refuse(data)
    assert_never_dialled(listener)


def test_external_dtd_is_never_fetched(listener: socket.socket) -> None:
    refuse(envelope(prolog=f'<!DOCTYPE s:Envelope SYSTEM "{url_of(listener, "evil.dtd")}">'))
    assert_never_dialled(listener)


def test_parameter_entities_are_never_expanded_or_fetched(listener: socket.socket, secret_file: Path) -> None:
    prolog = (
        "<!DOCTYPE s:Envelope ["
        f'<!ENTITY % file SYSTEM "{secret_file.as_uri()}">'
        f'<!ENTITY % remote SYSTEM "{url_of(listener, "p.dtd")}">'
        "%remote;%file;]>"
    )
    error = refuse(envelope(prolog=prolog))
    assert MARKER not in str(error)
    assert_never_dialled(listener)


_ENDLESS_SOURCES = ("/dev/zero", "/dev/urandom", "/proc/self/fd/0")
"""Files an attacker can name on any Linux host whose reads never end (stdin is a pipe nobody closes)."""

_PARSE_EACH = """
import json, sys
from outband.proto.wsman import DecodeError, parse_envelope
for path in sys.argv[1:]:
    data = ('<!DOCTYPE s:Envelope [<!ENTITY %% p SYSTEM "file://%s"> %%p;]>' % path).encode()
    data += b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body></s:Body></s:Envelope>'
    try:
        parse_envelope(data)
        outcome = "accepted"
    except DecodeError:
        outcome = "DecodeError"
    except Exception as exc:
        outcome = type(exc).__name__
    print(json.dumps([path, outcome]), flush=True)
"""


def test_parameter_entity_naming_an_endless_file_cannot_hang_the_parser() -> None:
    """Run in a child process: a parser stuck in C cannot be interrupted, only killed."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", _PARSE_EACH, *_ENDLESS_SOURCES],
            stdin=subprocess.PIPE, capture_output=True, timeout=10, check=False,
        )
    except subprocess.TimeoutExpired as timeout:
        finished = (timeout.stdout or b"").decode().splitlines()
        pytest.fail(f"parser hung; finished only {finished}")
    outcomes = dict(json.loads(line) for line in done.stdout.decode().splitlines())
    assert outcomes == dict.fromkeys(_ENDLESS_SOURCES, "DecodeError"), done.stderr.decode()


def test_internal_entity_is_refused() -> None:
    data = envelope("<h:HostName>&name;</h:HostName>", '<!DOCTYPE s:Envelope [<!ENTITY name "injected">]>')
    refuse(data)


def test_billion_laughs_is_refused_without_expansion() -> None:
    levels = ['<!ENTITY lol0 "lol">'] + [f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)]
    error = refuse(envelope("<h:HostName>&lol9;</h:HostName>", f"<!DOCTYPE s:Envelope [{''.join(levels)}]>"))
    assert "lollol" not in str(error)


def test_quadratic_blowup_is_refused() -> None:
    """One large entity referenced many times: megabytes in, terabytes if it were expanded."""
    declaration = f'<!DOCTYPE s:Envelope [<!ENTITY big "{"x" * 100_000}">]>'
    refuse(envelope("<h:HostName>" + "&big;" * 100_000 + "</h:HostName>", declaration))


@pytest.mark.parametrize(
    "doctype",
    ["<!DOCTYPE s:Envelope>", "<!DOCTYPE html>", '<!DOCTYPE s:Envelope PUBLIC "-//W3C//DTD XHTML 1.0//EN" "">',
     "<!DOCTYPE s:Envelope []>"],
)
def test_doctype_of_any_kind_is_refused(doctype: str) -> None:
    assert "DOCTYPE" in str(refuse(envelope(prolog=doctype)))


def test_undeclared_entity_reference_is_refused() -> None:
    refuse(envelope("<h:HostName>&undeclared;</h:HostName>"))


def test_character_references_are_ordinary_text() -> None:
    env = parse_envelope(envelope("<h:HostName>&#60;&#x26;&amp;&lt;&gt;&quot;&apos;</h:HostName>"))
    assert isinstance(env.body, CimObject)
    assert env.body["HostName"] == "<&&<>\"'"


# ----------------------------------------------------------------------- XInclude, CDATA, comments, PIs


def test_xinclude_is_kept_as_inert_markup(secret_file: Path) -> None:
    include = (
        '<h:DomainName><xi:include xmlns:xi="http://www.w3.org/2001/XInclude" '
        f'href="{secret_file.as_uri()}" parse="text"></xi:include></h:DomainName>'
    )
    env = parse_envelope(envelope(include))
    assert isinstance(env.body, CimObject)
    value = env.body["DomainName"]
    assert isinstance(value, XmlFragment)
    assert "XInclude" in value.xml
    assert MARKER not in env.to_bytes().decode()


def test_cdata_is_accepted_as_text_and_written_escaped() -> None:
    env = parse_envelope(envelope("<h:HostName><![CDATA[a<b & >c]]></h:HostName>"))
    assert isinstance(env.body, CimObject)
    assert env.body["HostName"] == "a<b & >c"
    written = env.to_bytes()
    assert b"CDATA" not in written
    assert b"a&lt;b &amp; &gt;c" in written


def test_comments_and_processing_instructions_are_dropped() -> None:
    data = envelope(
        "<!-- before --><h:HostName>ab<!-- inside -->cd<?php system('id'); ?>ef</h:HostName><?pi after?>",
    ).replace(b"<s:Header>", b"<s:Header><!-- header comment --><?target data?>")
    env = parse_envelope(data)
    assert isinstance(env.body, CimObject)
    assert env.body.names() == ["HostName"]
    assert env.body["HostName"] == "abcdef"
    assert env.header.extra == ()
    written = env.to_bytes()
    assert b"<!--" not in written
    assert b"<?php" not in written
    assert b"<?pi" not in written


# ------------------------------------------------------------------------------------------------- caps


def test_oversize_input_is_refused_before_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    def parser_must_not_run(*args: object, **kwargs: object) -> etree._Element:
        raise AssertionError("the XML parser ran on an oversize document")

    monkeypatch.setattr(etree, "fromstring", parser_must_not_run)  # the very module xml.py calls into
    # Not even XML: had the parser run, the error would be "malformed XML", not the size limit.
    error = refuse(b"\x00" * (wsxml.MAX_ENVELOPE_BYTES + 1))
    assert error.limit
    assert "limit" in str(error)


def test_size_limit_is_inclusive_and_configurable() -> None:
    data = envelope()
    assert parse_envelope(data, max_bytes=len(data)).body is not None
    with pytest.raises(DecodeError) as info:
        parse_envelope(data, max_bytes=len(data) - 1)
    assert info.value.limit


def _nested(depth: int) -> str:
    """A field holding an unmodelled element tree; the whole document is ``depth`` elements deep."""
    inner_levels = depth - 4  # Envelope, Body, AMT_GeneralSettings, DomainName
    return "<h:DomainName>" + "<x:n xmlns:x='urn:x'>" * inner_levels + "</x:n>" * inner_levels + "</h:DomainName>"


def test_depth_limit_is_exact() -> None:
    assert isinstance(parse_envelope(envelope(_nested(wsxml.MAX_DEPTH))).body, CimObject)
    with pytest.raises(DecodeError) as info:
        parse_envelope(envelope(_nested(wsxml.MAX_DEPTH + 1)))
    assert info.value.limit


def test_element_count_limit_is_exact() -> None:
    fields = "<h:A></h:A>" * (wsxml.MAX_ELEMENTS - 4)  # Envelope, Header, Body and the instance are the rest
    assert isinstance(parse_envelope(envelope(fields)).body, CimObject)
    with pytest.raises(DecodeError) as info:
        parse_envelope(envelope(fields + "<h:A></h:A>"))
    assert info.value.limit


# ------------------------------------------------------------------------------------- shape and encoding


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"   \n\t ",
        b"<a/>",
        b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body/></s:Envelope>',  # SOAP 1.1
        f'<s:Envelope xmlns:s="{SOAP_NS}"><s:Header/></s:Envelope>'.encode(),  # no Body
        f'<s:Envelope xmlns:s="{SOAP_NS}"><s:Body/><s:Body/></s:Envelope>'.encode(),
        f'<s:Envelope xmlns:s="{SOAP_NS}"><s:Body><a/><b/></s:Body></s:Envelope>'.encode(),
        b'<?xml version="1.0" encoding="x-no-such-encoding"?><a/>',
        b'<?xml version="1.0" encoding="UTF-8"?>\xff\xfe<a/>',
        "<?xml version='1.0' encoding='UTF-8'?><a>\u00e9</a>".encode("latin-1"),
    ],
    ids=["empty", "blank", "foreign-root", "soap11", "no-body", "two-bodies", "two-body-children",
         "unknown-encoding", "stray-bom", "mislabelled-latin1"],
)
def test_unacceptable_documents_are_decode_errors(data: bytes) -> None:
    refuse(data)


def test_utf16_envelope_reads_like_utf8() -> None:
    text = envelope("<h:HostName>h\u00f4te</h:HostName>").decode().replace('encoding="UTF-8"', 'encoding="UTF-16"')
    assert parse_envelope(text.encode("utf-16")) == parse_envelope(envelope("<h:HostName>h\u00f4te</h:HostName>"))
