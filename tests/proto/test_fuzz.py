"""Hostile bytes into parse_envelope: a valid Envelope or a DecodeError, every time, promptly, in bounded memory.

Inputs: every capture truncated at many offsets, captures with flipped bytes, random bytes, XML-shaped token
soup, structural mutations of real captures (elements deleted, duplicated, moved, renamed, re-texted), and
resource-exhaustion shapes (deep, wide, long, many attributes, many namespaces).

Hangs cannot be asserted away with timings, so every parse runs in a worker thread that must answer within
``HANG_LIMIT``: far beyond any real parse, it only fires on a genuine hang (lxml releases the GIL while parsing,
so a parser stuck in C still lets the test fail).  Memory is checked with tracemalloc, which sees Python's
allocations only; libxml2's own tree is bounded by the 4 MiB input cap and its depth/amplification limits.
"""

from __future__ import annotations

import random
import subprocess
import sys
import threading
import traceback
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from outband.proto.wsman import DecodeError, Envelope, Style, parse_envelope
from outband.proto.wsman.namespaces import ADDRESSING, ENUMERATION, SOAP, WSMAN
from outband.proto.wsman.xml import MAX_DEPTH, MAX_ELEMENTS, MAX_ENVELOPE_BYTES
from outband.testing.infoset import infoset_differences

_CAPTURES = Path(__file__).resolve().parents[3] / "shared" / "conformance" / "wsman-responses"
_FILES = sorted(_CAPTURES.rglob("*.xml")) if _CAPTURES.is_dir() else []
_BLOBS = {str(p.relative_to(_CAPTURES)): p.read_bytes() for p in _FILES}

HANG_LIMIT = 60.0
"""Seconds one parse may take before the test calls it a hang (a real one takes well under a millisecond)."""


def outcome(data: bytes) -> Envelope | DecodeError:
    """Parse ``data`` in a worker thread; fail the test on a hang or on any exception but DecodeError."""
    result: list[Envelope | BaseException] = []

    def work() -> None:
        try:
            result.append(parse_envelope(data))
        except BaseException as exc:  # reported below, with its traceback
            result.append(exc)

    worker = threading.Thread(target=work, name="fuzz-parse", daemon=True)
    worker.start()
    worker.join(HANG_LIMIT)
    if worker.is_alive():
        frame = sys._current_frames().get(worker.ident or 0)
        where = "".join(traceback.format_stack(frame)) if frame is not None else "(no frame)"
        pytest.fail(f"parse_envelope hung on {len(data)} bytes {data[:120]!r}...\n{where}")
    got = result[0]
    if isinstance(got, DecodeError):
        return got
    if isinstance(got, BaseException):
        raise AssertionError(f"{type(got).__name__} instead of DecodeError on {data[:200]!r}") from got
    return got


def check(data: bytes) -> Envelope | DecodeError:
    """:func:`outcome`, plus: whatever we accept we can also write back, in both styles, as XML we accept."""
    got = outcome(data)
    if isinstance(got, Envelope):
        for style in Style:
            reread = outcome(got.to_bytes(style))
            assert isinstance(reread, Envelope), f"we wrote XML we cannot read back ({style}): {reread}"
    return got


def body_losses(data: bytes, env: Envelope) -> list[str]:
    """Where the body we write back departs from the body we accepted (envelope.py promises: nowhere)."""
    body_tag = etree.QName(SOAP, "Body").text
    accepted = etree.fromstring(data).find(body_tag)
    assert accepted is not None
    losses = []
    for style in Style:
        written = etree.fromstring(env.to_bytes(style)).find(body_tag)
        assert written is not None
        # Only a fault's Code values are QNames; elsewhere "a:Sender" is plain text that must stay as it is.
        is_fault = accepted.find(etree.QName(SOAP, "Fault").text) is not None
        losses += [f"{style.name}: {d}" for d in infoset_differences(accepted, written, resolve_qname_text=is_fault)]
    return losses


# ------------------------------------------------------------------------------------------- truncation


def test_captures_are_present() -> None:
    assert len(_BLOBS) > 200


@pytest.mark.parametrize("name", sorted(_BLOBS))
def test_truncated_capture(name: str) -> None:
    data = _BLOBS[name]
    offsets = sorted({*range(0, len(data), max(1, len(data) // 48)), *range(max(0, len(data) - 16), len(data))})
    refused = 0
    for offset in offsets:
        if isinstance(check(data[:offset]), DecodeError):
            refused += 1
    assert refused >= len(offsets) - 16  # only the last few cuts (trailing whitespace) can still be whole


# ------------------------------------------------------------------------------------- random mutations

_FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_FUZZ
@given(name=st.sampled_from(sorted(_BLOBS)), flips=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)),
                                                             min_size=1, max_size=8))
def test_flipped_bytes(name: str, flips: list[tuple[float, int]]) -> None:
    data = bytearray(_BLOBS[name])
    for where, value in flips:
        data[min(int(where * len(data)), len(data) - 1)] = value
    check(bytes(data))


@_FUZZ
@given(st.binary(max_size=4096))
def test_random_bytes(data: bytes) -> None:
    assert isinstance(check(data), DecodeError) or data.lstrip().startswith((b"<", b"\xef\xbb\xbf", b"\xff", b"\xfe"))


_TOKENS = [
    "<", ">", "/", "</", "/>", "=", '"', "'", "&", ";", "&amp;", "&#0;", "&#x110000;", "&lt;", "<!--", "-->",
    "<![CDATA[", "]]>", "<?", "?>", "<!DOCTYPE", "<!ENTITY", "%", " ", "\n", "\x00", "\ufffe", "\ud7ff",
    "s:Envelope", "s:Header", "s:Body", "a:Action", "w:Selector", "Name", "xmlns", "xmlns:s", "xsi:nil",
    f'xmlns:s="{SOAP}"', f'xmlns:a="{ADDRESSING}"', f'xmlns:w="{WSMAN}"', f'xmlns:e="{ENUMERATION}"',
    "e:PullResponse", "e:Items", "e:EnumerationContext", "e:EndOfSequence", "h:", "x", "1", "true",
]


@_FUZZ
@given(st.lists(st.sampled_from(_TOKENS), max_size=200), st.sampled_from(["utf-8", "utf-16", "latin-1"]))
def test_token_soup(tokens: list[str], encoding: str) -> None:
    check("".join(tokens).encode(encoding, errors="replace"))


# ---------------------------------------------------------------------------------- structural mutations

_NAME_POOL = [
    (SOAP, "Envelope"), (SOAP, "Header"), (SOAP, "Body"), (SOAP, "Fault"), (SOAP, "Value"), (SOAP, "Subcode"),
    (ADDRESSING, "Action"), (ADDRESSING, "EndpointReference"), (ADDRESSING, "Address"),
    (ADDRESSING, "ReferenceParameters"), (WSMAN, "SelectorSet"), (WSMAN, "Selector"), (WSMAN, "ResourceURI"),
    (WSMAN, "Item"), (WSMAN, "MaxEnvelopeSize"), (ENUMERATION, "Items"), (ENUMERATION, "PullResponse"),
    (ENUMERATION, "EnumerateResponse"), (ENUMERATION, "Pull"), (ENUMERATION, "Enumerate"),
    (ENUMERATION, "Release"), (ENUMERATION, "EnumerationContext"), (ENUMERATION, "MaxElements"),
    ("http://schemas.dmtf.org/wbem/wscim/1/common", "Datetime"),
    ("http://intel.com/wbem/wscim/1/amt-schema/1/AMT_GeneralSettings", "AMT_GeneralSettings"),
    ("http://intel.com/wbem/wscim/1/amt-schema/1/AMT_GeneralSettings", "PowerSource"),
    (None, "Name"), (None, "plain"),
]
_TEXT_POOL = ["", " ", "0", "-1", "99999999999999", "true", "x:y", "a:Sender", "b:Nope", "uuid:1", "&<>\"'",
              "\u00e9\u4e2d", "P1DT2H", "http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/Nope"]


def _name(ns: str | None, local: str) -> str:
    return etree.QName(ns, local).text if ns else local


def _mutate(root: etree._Element, rng: random.Random) -> None:
    elements = list(root.iter(tag=etree.Element))[1:]
    if not elements:
        return
    target = rng.choice(elements)
    parent = target.getparent()
    assert parent is not None
    kind = rng.randrange(7)
    if kind == 0:
        parent.remove(target)
    elif kind == 1:
        parent.insert(parent.index(target), etree.fromstring(etree.tostring(target)))
    elif kind == 2:
        target.text = rng.choice(_TEXT_POOL)
    elif kind == 3:
        target.set(_name(*rng.choice(_NAME_POOL)), rng.choice(_TEXT_POOL))
    elif kind == 4:
        target.tag = _name(*rng.choice(_NAME_POOL))
    elif kind == 5:
        rng.choice(elements).append(etree.Element(_name(*rng.choice(_NAME_POOL))))
    else:
        destination = rng.choice(elements)
        if destination is not target and target not in destination.iterancestors():
            destination.append(target)


def _mutated(name: str, seed: int, rounds: int) -> bytes:
    root = etree.fromstring(_BLOBS[name])
    rng = random.Random(seed)
    for _ in range(rounds):
        _mutate(root, rng)
    return etree.tostring(root)


_MUTATIONS = {"name": st.sampled_from(sorted(_BLOBS)), "seed": st.integers(0, 2**32 - 1), "rounds": st.integers(1, 6)}


@_FUZZ
@given(**_MUTATIONS)
def test_structural_mutation(name: str, seed: int, rounds: int) -> None:
    check(_mutated(name, seed, rounds))


@_FUZZ
@given(**_MUTATIONS)
def test_structural_mutation_is_refused_or_kept_whole(name: str, seed: int, rounds: int) -> None:
    data = _mutated(name, seed, rounds)
    got = outcome(data)
    if isinstance(got, Envelope):
        assert body_losses(data, got) == []


# ------------------------------------------------------------------------------------- resource shapes

_ENV_OPEN = (
    f'<s:Envelope xmlns:s="{SOAP}"><s:Body>'
    '<h:AMT_GeneralSettings xmlns:h="http://intel.com/wbem/wscim/1/amt-schema/1/AMT_GeneralSettings">'
)
_ENV_CLOSE = "</h:AMT_GeneralSettings></s:Body></s:Envelope>"

_MEMORY_FACTOR = 64
"""Python heap may grow to this multiple of the input (a typed object model costs more than its text)."""

_SHAPES = {
    "deep-past-limit": _ENV_OPEN + "<h:A>" * (MAX_DEPTH * 2) + "</h:A>" * (MAX_DEPTH * 2) + _ENV_CLOSE,
    "deep-past-libxml2": _ENV_OPEN + "<h:A>" * 300 + "</h:A>" * 300 + _ENV_CLOSE,
    "wide-past-limit": _ENV_OPEN + "<h:A></h:A>" * (MAX_ELEMENTS + 10) + _ENV_CLOSE,
    "wide-fields": _ENV_OPEN + "<h:PowerSource>1</h:PowerSource>" * 20_000 + _ENV_CLOSE,
    "many-attributes": _ENV_OPEN + "<h:A " + " ".join(f'x{i}="{i}"' for i in range(2_000)) + "></h:A>" + _ENV_CLOSE,
    "many-namespaces": _ENV_OPEN + "<h:A " + " ".join(f'xmlns:p{i}="urn:{i}"' for i in range(60_000))
    + "></h:A>" + _ENV_CLOSE,
    "long-text": _ENV_OPEN + "<h:HostName>" + "x" * (MAX_ENVELOPE_BYTES - 400) + "</h:HostName>" + _ENV_CLOSE,
    "long-attribute": _ENV_OPEN + '<h:A v="' + "y" * (MAX_ENVELOPE_BYTES - 400) + '"></h:A>' + _ENV_CLOSE,
    "long-name": _ENV_OPEN + "<h:" + "N" * 1_000_000 + "></h:" + "N" * 1_000_000 + ">" + _ENV_CLOSE,
    "many-selectors": f'<s:Envelope xmlns:s="{SOAP}" xmlns:w="{WSMAN}"><s:Header><w:SelectorSet>'
    + '<w:Selector Name="k">v</w:Selector>' * 20_000 + "</w:SelectorSet></s:Header><s:Body></s:Body></s:Envelope>",
    "oversize": _ENV_OPEN + "<h:HostName>" + "x" * MAX_ENVELOPE_BYTES + "</h:HostName>" + _ENV_CLOSE,
}


@pytest.mark.parametrize("shape", sorted(_SHAPES))
def test_resource_shapes_are_bounded(shape: str) -> None:
    data = _SHAPES[shape].encode()
    tracemalloc.start()
    try:
        got = check(data) if len(data) < 1_000_000 else outcome(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < _MEMORY_FACTOR * len(data) + 1_000_000, f"{shape}: {peak} bytes for a {len(data)}-byte input"
    if shape.endswith("past-limit") or shape.endswith("past-libxml2") or shape == "oversize":
        assert isinstance(got, DecodeError)


_PARSE_STDIN = """
import sys
from outband.proto.wsman import DecodeError, parse_envelope
try:
    parse_envelope(sys.stdin.buffer.read())
    print("accepted")
except DecodeError:
    print("DecodeError")
"""


def test_attribute_flood_at_the_size_cap_is_not_a_hang() -> None:
    """150k attributes on one field fit in 2 MB; a linear parser needs a fraction of a second for them.

    Run in a child process so that, while the bug stands, the runaway parse is killed instead of competing
    with the rest of the suite for the GIL.
    """
    data = (_ENV_OPEN + "<h:A " + " ".join(f'x{i}="{i}"' for i in range(150_000)) + "></h:A>" + _ENV_CLOSE).encode()
    try:
        done = subprocess.run([sys.executable, "-c", _PARSE_STDIN], input=data, capture_output=True,
                              timeout=10, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail("parse_envelope was still busy after 10 s")
    assert done.stdout.decode().strip() in ("accepted", "DecodeError"), done.stderr.decode()
