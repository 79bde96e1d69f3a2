"""Every firmware-shaped capture parses, loses no element, and writes back to the same infoset.

The captures are AMT's own replies (plus three request-shaped files), so writing them back in the style they
came in must reproduce what AMT sent: same names, namespaces, order and values, and AMT's prefix letters.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from outband.proto.wsman import Envelope, Style, parse_envelope
from outband.proto.wsman.namespaces import SOAP
from outband.testing.infoset import assert_same_infoset, element_count, to_element

_CAPTURES = Path(__file__).resolve().parents[3] / "shared" / "conformance" / "wsman-responses"
_FILES = sorted(str(p.relative_to(_CAPTURES)) for p in _CAPTURES.rglob("*.xml")) if _CAPTURES.is_dir() else []
_REPLIES = [name for name in _FILES if b"RelatesTo>" in (_CAPTURES / name).read_bytes()]
"""Captures of AMT's replies; the rest are console requests in GWM's default-namespace style."""
_BODY = f"{{{SOAP}}}Body"

EXPECTED_CAPTURES = 218
"""The README of the capture set announces 218 envelopes; fewer means files went missing."""


def test_every_capture_is_collected(conformance_dir: Path) -> None:
    assert len(_FILES) == EXPECTED_CAPTURES == len(list(conformance_dir.rglob("*.xml")))
    assert len(_REPLIES) == EXPECTED_CAPTURES - 3  # put.xml, getuuid.xml and getuuid-bad.xml are requests


def _native_style(env: Envelope) -> Style:
    """Replies relate to a request; the three request-shaped captures do not."""
    return Style.RESPONSE if env.header.relates_to is not None else Style.REQUEST


def _body(xml: bytes) -> etree._Element:
    body = to_element(xml).find(_BODY)
    assert body is not None
    return body


@pytest.mark.parametrize("name", _FILES)
def test_capture_round_trips(conformance_dir: Path, name: str) -> None:
    original = (conformance_dir / name).read_bytes()
    env = parse_envelope(original)
    native = _native_style(env)

    written = env.to_bytes(native)
    assert_same_infoset(original, written)

    # The body is the same whichever style carries it; only the header differs between styles.
    for style in Style:
        rewritten_body = _body(env.to_bytes(style))
        assert element_count(rewritten_body) == element_count(_body(original)), f"{style}: elements lost or added"
        assert_same_infoset(_body(original), rewritten_body, keep_leaf_blanks=True)

    # Writing is stable: what we wrote parses to the same envelope and writes to the same bytes.
    again = parse_envelope(written)
    assert again == env
    assert again.to_bytes(native) == written


@pytest.mark.parametrize("name", _REPLIES)
def test_reply_written_with_amts_prefix_letters(conformance_dir: Path, name: str) -> None:
    """AMT's prefix letters (a..f fixed, then g.. per body namespace) come back on every element."""
    original = (conformance_dir / name).read_bytes()
    written = to_element(parse_envelope(original).to_bytes(Style.RESPONSE))
    expected = [(el.prefix, el.tag) for el in to_element(original).iter(tag=etree.Element)]
    assert [(el.prefix, el.tag) for el in written.iter(tag=etree.Element)] == expected


def test_significant_trailing_blank_survives(conformance_dir: Path) -> None:
    """AMT really sends an SMBIOS PartNumber ending in a blank; the value keeps it (the comparator strips)."""
    env = parse_envelope((conformance_dir / "cim/physical/memory/pull.xml").read_bytes())
    assert env.body is not None
    items = getattr(env.body, "items", [])
    assert items[0]["PartNumber"] == "CT16G4SFD824A.M16FE "
    assert b"<h:PartNumber>CT16G4SFD824A.M16FE </h:PartNumber>" in env.to_bytes(Style.RESPONSE)


# ------------------------------------------------------------------------------------- the comparator itself

_SAME = '<a:R xmlns:a="urn:r" xmlns:b="urn:b"><a:X k="1" b:j="2">v</a:X><a:Y/></a:R>'


@pytest.mark.parametrize(
    "variant",
    [
        '<R xmlns="urn:r"><X xmlns:q="urn:b" q:j="2" k="1">\n  v\n</X><Y></Y></R>',  # prefixes, order of attrs
        '<?xml version="1.0"?>\n<z:R xmlns:z="urn:r"><!-- c --><z:X k="1" xmlns:b="urn:b" b:j="2"><![CDATA[v]]>'
        "</z:X><?pi x?><z:Y/></z:R>",  # comments, PIs, CDATA
    ],
)
def test_comparator_ignores_what_peers_cannot_see(variant: str) -> None:
    assert_same_infoset(_SAME, variant)


@pytest.mark.parametrize(
    ("variant", "complaint"),
    [
        ('<a:R xmlns:a="urn:r" xmlns:b="urn:b"><a:X k="1" b:j="2">v</a:X></a:R>', "children"),
        ('<a:R xmlns:a="urn:r" xmlns:b="urn:b"><a:Y/><a:X k="1" b:j="2">v</a:X></a:R>', "children"),
        ('<a:R xmlns:a="urn:r" xmlns:b="urn:b"><a:X k="1" b:j="2">w</a:X><a:Y/></a:R>', "text"),
        ('<a:R xmlns:a="urn:r" xmlns:b="urn:b"><a:X k="1" j="2">v</a:X><a:Y/></a:R>', "attributes"),
        ('<a:R xmlns:a="urn:r" xmlns:b="urn:x"><a:X k="1" b:j="2">v</a:X><a:Y/></a:R>', "attributes"),
        ('<a:R xmlns:a="urn:r" xmlns:b="urn:b"><a:X k="1" b:j="2">v</a:X><b:Y/></a:R>', "children"),
        ('<a:R xmlns:a="urn:r" xmlns:b="urn:b"><a:X k="1" b:j="2">v</a:X><a:Y>t</a:Y></a:R>', "text"),
    ],
)
def test_comparator_reports_what_peers_see(variant: str, complaint: str) -> None:
    with pytest.raises(AssertionError, match=complaint):
        assert_same_infoset(_SAME, variant)


def test_comparator_compares_leaf_blanks_only_when_asked() -> None:
    padded, trimmed = '<r xmlns="urn:r">\n  <v>PN </v>\n</r>', '<r xmlns="urn:r"><v>PN</v></r>'
    assert_same_infoset(padded, trimmed)
    with pytest.raises(AssertionError, match="text 'PN ' became 'PN'"):
        assert_same_infoset(padded, trimmed, keep_leaf_blanks=True)
    assert_same_infoset(padded, '<r xmlns="urn:r"><v>PN </v></r>', keep_leaf_blanks=True)
    indented = '<r xmlns="urn:r"><v>\n      PN </v></r>'  # pretty-printing broke the line before the value
    assert_same_infoset(indented, '<r xmlns="urn:r"><v>PN </v></r>', keep_leaf_blanks=True)


def test_comparator_resolves_qname_text_only_when_asked() -> None:
    one = '<a:V xmlns:a="urn:soap">a:Sender</a:V>'
    other = '<s:V xmlns:s="urn:soap">s:Sender</s:V>'
    assert_same_infoset(one, other, resolve_qname_text=True)
    with pytest.raises(AssertionError, match="text"):
        assert_same_infoset(one, other)
    with pytest.raises(AssertionError, match="text"):
        assert_same_infoset(one, '<a:V xmlns:a="urn:soap" xmlns:s="urn:other">s:Sender</a:V>', resolve_qname_text=True)


def test_element_count_counts_elements_only() -> None:
    assert element_count(_SAME) == 3
    assert element_count("<r><!-- c --><?p?><x>t</x></r>") == 2
