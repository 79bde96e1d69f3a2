"""Compare an engine reply with a real-firmware capture: same action, resource URI, element names and order,
namespaces and value kinds (the values themselves differ per device; tests assert the ones that matter)."""

from __future__ import annotations

from pathlib import Path

from outband.proto.cim.model import CimObject
from outband.proto.wsman import Envelope, parse_envelope
from outband.proto.wsman.envelope import PullResponse


def load_capture(conformance_dir: Path, relative: str) -> Envelope:
    return parse_envelope((conformance_dir / relative).read_bytes())


def _objects(envelope: Envelope) -> list[CimObject]:
    body = envelope.body
    if isinstance(body, PullResponse):
        return [item for item in body.items if isinstance(item, CimObject)]
    assert isinstance(body, CimObject), f"expected an object body, got {body!r}"
    return [body]


def _kind(value: object) -> str:
    if isinstance(value, list):
        return "list[" + ",".join(sorted({_kind(v) for v in value})) + "]"
    return type(value).__name__


def assert_same_shape(ours: Envelope, capture: Envelope) -> None:
    assert ours.fault is None, f"engine answered a fault: {ours.fault!r}"
    assert ours.header.action == capture.header.action
    assert ours.header.resource_uri == capture.header.resource_uri
    mine, theirs = _objects(ours), _objects(capture)
    assert len(mine) == len(theirs)
    for a, b in zip(mine, theirs, strict=True):
        assert (a.element, a.namespace) == (b.element, b.namespace)
        assert a.names() == b.names(), f"{a.element}: fields {a.names()} != capture {b.names()}"
        for name in b.names():
            if isinstance(b[name], list) and not b[name]:
                continue
            assert _kind(a[name]) == _kind(b[name]), f"{a.element}.{name}: {a[name]!r} vs capture {b[name]!r}"
