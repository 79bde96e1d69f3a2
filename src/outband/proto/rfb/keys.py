"""Keysyms (X11 ``keysymdef.h`` values, as RFB KeyEvents carry them) and their meaning on a text terminal.

AMT recognises Latin-1 and the "miscellany" keysyms (MeshCommander ``amt-desktop``).  A client types text by
sending each character's keysym down and up (:func:`keysyms_for_text`); the simulated machine turns key-down
events into the bytes a terminal would read (:class:`TerminalKeyboard`): Return is CR, the arrows are ANSI
cursor sequences, Control with a letter is the control character, Alt prefixes ESC.
"""

from __future__ import annotations

import enum
from typing import Final


class Keysym(enum.IntEnum):
    BACKSPACE = 0xFF08
    TAB = 0xFF09
    RETURN = 0xFF0D
    ESCAPE = 0xFF1B
    HOME = 0xFF50
    LEFT = 0xFF51
    UP = 0xFF52
    RIGHT = 0xFF53
    DOWN = 0xFF54
    PAGE_UP = 0xFF55
    PAGE_DOWN = 0xFF56
    END = 0xFF57
    INSERT = 0xFF63
    KP_ENTER = 0xFF8D
    F1 = 0xFFBE
    SHIFT_L = 0xFFE1
    SHIFT_R = 0xFFE2
    CONTROL_L = 0xFFE3
    CONTROL_R = 0xFFE4
    META_L = 0xFFE7
    META_R = 0xFFE8
    ALT_L = 0xFFE9
    ALT_R = 0xFFEA
    DELETE = 0xFFFF


UNICODE_KEYSYM: Final = 0x01000000
"""X11's keysyms for characters outside Latin-1: this offset plus the code point."""

_TEXT_KEYS: Final = {"\r": Keysym.RETURN, "\n": Keysym.RETURN, "\t": Keysym.TAB, "\b": Keysym.BACKSPACE,
                     "\x7f": Keysym.BACKSPACE, "\x1b": Keysym.ESCAPE}


def keysyms_for_text(text: str) -> list[int]:
    """The keysym of each character (Return for a line end); other control characters are refused."""
    out = []
    for ch in text:
        if ch in _TEXT_KEYS:
            out.append(int(_TEXT_KEYS[ch]))
        elif ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0:
            raise ValueError(f"control character {ch!r} has no key")
        else:
            out.append(ord(ch) if ord(ch) <= 0xFF else UNICODE_KEYSYM + ord(ch))
    return out


_TERMINAL_BYTES: Final = {
    Keysym.BACKSPACE: b"\x7f", Keysym.TAB: b"\t", Keysym.RETURN: b"\r", Keysym.KP_ENTER: b"\r",
    Keysym.ESCAPE: b"\x1b", Keysym.UP: b"\x1b[A", Keysym.DOWN: b"\x1b[B", Keysym.RIGHT: b"\x1b[C",
    Keysym.LEFT: b"\x1b[D", Keysym.HOME: b"\x1b[H", Keysym.END: b"\x1b[F", Keysym.INSERT: b"\x1b[2~",
    Keysym.DELETE: b"\x1b[3~", Keysym.PAGE_UP: b"\x1b[5~", Keysym.PAGE_DOWN: b"\x1b[6~",
}
_FUNCTION_KEYS: Final = (b"\x1bOP", b"\x1bOQ", b"\x1bOR", b"\x1bOS", b"\x1b[15~", b"\x1b[17~", b"\x1b[18~",
                         b"\x1b[19~", b"\x1b[20~", b"\x1b[21~", b"\x1b[23~", b"\x1b[24~")
_CONTROL: Final = frozenset({Keysym.CONTROL_L, Keysym.CONTROL_R})
_ALT: Final = frozenset({Keysym.ALT_L, Keysym.ALT_R, Keysym.META_L, Keysym.META_R})


class TerminalKeyboard:
    """Key events in, terminal input bytes out; remembers which modifiers are held."""

    def __init__(self) -> None:
        self._control: set[int] = set()
        self._alt: set[int] = set()

    def event(self, keysym: int, down: bool) -> bytes:
        for group, held in ((_CONTROL, self._control), (_ALT, self._alt)):
            if keysym in group:
                if down:
                    held.add(keysym)
                else:
                    held.discard(keysym)
                return b""
        if not down:
            return b""
        data = self._bytes(keysym)
        return b"\x1b" + data if data and self._alt else data

    def _bytes(self, keysym: int) -> bytes:
        if keysym in _TERMINAL_BYTES:
            return _TERMINAL_BYTES[Keysym(keysym)]
        if Keysym.F1 <= keysym < Keysym.F1 + len(_FUNCTION_KEYS):
            return _FUNCTION_KEYS[keysym - Keysym.F1]
        if 0x20 <= keysym <= 0xFF and keysym != 0x7F:
            char = chr(keysym)
        elif keysym & 0xFF000000 == UNICODE_KEYSYM:
            char = chr(keysym & 0x1FFFFF) if (keysym & 0xFFFFFF) <= 0x10FFFF else ""
        else:
            return b""  # shift, caps lock, keys a terminal has no byte for
        if self._control and char.isascii() and (char.isalpha() or char in "@[\\]^_ "):
            return bytes([ord(char.upper()) & 0x1F])
        return char.encode("utf-8", "replace")


__all__ = ["UNICODE_KEYSYM", "Keysym", "TerminalKeyboard", "keysyms_for_text"]
