"""The one import rule (DESIGN.md "Layers"): proto is sans-I/O, and engine and console meet only on the wire.

Imports are read from the source with :mod:`ast`, not by importing the modules, so an import hidden inside a
function, a method or an ``if TYPE_CHECKING`` block counts too, and a module that fails to import still gets
checked.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

_SRC = Path(__file__).resolve().parents[2] / "src"
_PACKAGE = _SRC / "outband"

_IO_MODULES = ("asyncio", "socket", "ssl", "selectors", "aiohttp", "threading")
"""Standard and third-party modules that do I/O or concurrency; none belongs in a sans-I/O core."""

_ABOVE_PROTO = ("outband.aio", "outband.client", "outband.engine", "outband.console", "outband.cli",
                "outband.testing")


def _module_name(path: Path, root: Path = _SRC) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, root: Path = _SRC) -> Iterator[tuple[int, str]]:
    """``(line, absolute module name)`` for every import statement anywhere in the file.

    ``from x import y`` yields both ``x`` and ``x.y`` (``y`` may be a submodule); relative imports are resolved
    against the file's own package.
    """
    module = _module_name(path, root)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.split(".")
                if node.level > 1:
                    anchor = anchor[: -(node.level - 1)]
                base = ".".join([*anchor, node.module] if node.module else anchor)
            else:
                base = node.module or ""
            yield node.lineno, base
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}"


def _modules_of(package: str) -> list[Path]:
    return sorted((_PACKAGE / package).rglob("*.py"))


def _violations(package: str, forbidden: tuple[str, ...]) -> list[str]:
    found = []
    for path in _modules_of(package):
        for line, name in _imports(path):
            if any(name == f or name.startswith(f + ".") for f in forbidden):
                found.append(f"{path.relative_to(_SRC)}:{line} imports {name}")
    return sorted(set(found))


def test_proto_tree_is_found() -> None:
    """Guard against a vacuous pass: the walk must actually see the protocol cores."""
    names = {_module_name(p) for p in _modules_of("proto")}
    assert {"outband.proto.wsman.envelope", "outband.proto.cim.model", "outband.proto.digest"} <= names


def test_proto_does_no_io() -> None:
    assert _violations("proto", _IO_MODULES) == []


def test_proto_imports_nothing_above_it() -> None:
    assert _violations("proto", _ABOVE_PROTO) == []


@pytest.mark.parametrize(("package", "other"), [("engine", "console"), ("console", "engine")])
def test_engine_and_console_meet_only_on_the_wire(package: str, other: str) -> None:
    assert _violations(package, (f"outband.{other}",)) == []


# ------------------------------------------------------------------------ the import reader itself


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import socket\n", "socket"),
        ("import asyncio.streams as s\n", "asyncio.streams"),
        ("def f():\n    import ssl\n", "ssl"),
        ("class C:\n    def m(self):\n        from threading import Lock\n", "threading"),
        ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import selectors\n", "selectors"),
        ("from ...engine import core\n", "outband.engine"),
        ("from ... import cli\n", "outband.cli"),
        ("from ..cim import model\n", "outband.proto.cim"),
        ("from . import envelope\n", "outband.proto.wsman.envelope"),
    ],
)
def test_reader_sees_every_form_of_import(tmp_path: Path, source: str, expected: str) -> None:
    path = tmp_path / "outband" / "proto" / "wsman" / "probe.py"
    path.parent.mkdir(parents=True)
    path.write_text(source, encoding="utf-8")
    assert expected in {name for _, name in _imports(path, tmp_path)}
