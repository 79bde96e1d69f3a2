"""The simulated machine's display: its 80x25 text console drawn as a VGA text-mode picture, for KVM.

VGA text mode shows 80x25 character cells of 9x16 pixels (720x400) or 8x16 (640x400), each cell a glyph in
a foreground colour on a background colour from the 16-colour palette, chosen by the cell's attribute byte
(low nibble foreground, bits 4-6 background).  :class:`TextFramebuffer` keeps that picture as one palette
index per pixel -- exactly what the RFB server encodes -- and redraws only the text rows the console reports
as changed (plus the rows the cursor left or entered), the next time a region is asked for.  A framebuffer
larger than the text (1024x768, say) shows the text centred on black.

The font is our own: 5x7 glyphs with two descender rows, written below as hex rows, stretched to the 8x16
cell (columns 1-5; rows 1-15, most rows doubled).  Every printable ASCII character has a distinct glyph, so
a screenshot can be read back into text (:meth:`TextFramebuffer.read_text`); anything else shows as a box.

:class:`TextDisplay` makes a text console a platform :class:`~outband.engine.platforms.base.Display`, the sim's
``SimMachine.display``: each KVM session gets its own framebuffer of the console's screen (what SOL shows is
what KVM shows) and its own :class:`~outband.proto.rfb.keys.TerminalKeyboard`, which turns key events into the
bytes a terminal would type for the same console input SOL writes to.  The pointer has nothing to point at on
a text screen and is ignored.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final, Protocol

from ...proto.rfb.keys import TerminalKeyboard

RGB = tuple[int, int, int]
CELL_HEIGHT: Final = 16
GLYPH_WIDTH: Final = 8
CURSOR_ROWS: Final = (14, 15)
"""Scan lines of the underline cursor (the VGA default shape)."""

VGA_PALETTE: Final[tuple[RGB, ...]] = (
    (0, 0, 0), (0, 0, 170), (0, 170, 0), (0, 170, 170), (170, 0, 0), (170, 0, 170), (170, 85, 0),
    (170, 170, 170), (85, 85, 85), (85, 85, 255), (85, 255, 85), (85, 255, 255), (255, 85, 85),
    (255, 85, 255), (255, 255, 85), (255, 255, 255),
)
"""The 16 colours of the VGA text palette, indexed by attribute nibble."""

# Each glyph: 9 rows of 5 bits (bit 4 = leftmost column): 7 body rows, then 2 descender rows.
_GLYPHS: Final = {
    " ": "00 00 00 00 00 00 00 00 00", "!": "04 04 04 04 04 00 04 00 00", '"': "0A 0A 0A 00 00 00 00 00 00",
    "#": "0A 0A 1F 0A 1F 0A 0A 00 00", "$": "04 0F 14 0E 05 1E 04 00 00", "%": "18 19 02 04 08 13 03 00 00",
    "&": "0C 12 14 08 15 12 0D 00 00", "'": "04 04 00 00 00 00 00 00 00", "(": "02 04 08 08 08 04 02 00 00",
    ")": "08 04 02 02 02 04 08 00 00", "*": "00 04 15 0E 15 04 00 00 00", "+": "00 04 04 1F 04 04 00 00 00",
    ",": "00 00 00 00 00 0C 04 08 00", "-": "00 00 00 1F 00 00 00 00 00", ".": "00 00 00 00 00 0C 0C 00 00",
    "/": "00 01 02 04 08 10 00 00 00", "0": "0E 11 13 15 19 11 0E 00 00", "1": "04 0C 04 04 04 04 0E 00 00",
    "2": "0E 11 01 02 04 08 1F 00 00", "3": "1F 02 04 02 01 11 0E 00 00", "4": "02 06 0A 12 1F 02 02 00 00",
    "5": "1F 10 1E 01 01 11 0E 00 00", "6": "06 08 10 1E 11 11 0E 00 00", "7": "1F 01 02 04 08 08 08 00 00",
    "8": "0E 11 11 0E 11 11 0E 00 00", "9": "0E 11 11 0F 01 02 0C 00 00", ":": "00 0C 0C 00 0C 0C 00 00 00",
    ";": "00 0C 0C 00 0C 04 08 00 00", "<": "02 04 08 10 08 04 02 00 00", "=": "00 00 1F 00 1F 00 00 00 00",
    ">": "08 04 02 01 02 04 08 00 00", "?": "0E 11 01 02 04 00 04 00 00", "@": "0E 11 01 0D 15 15 0E 00 00",
    "A": "0E 11 11 11 1F 11 11 00 00", "B": "1E 11 11 1E 11 11 1E 00 00", "C": "0E 11 10 10 10 11 0E 00 00",
    "D": "1C 12 11 11 11 12 1C 00 00", "E": "1F 10 10 1E 10 10 1F 00 00", "F": "1F 10 10 1E 10 10 10 00 00",
    "G": "0E 11 10 17 11 11 0F 00 00", "H": "11 11 11 1F 11 11 11 00 00", "I": "0E 04 04 04 04 04 0E 00 00",
    "J": "07 02 02 02 02 12 0C 00 00", "K": "11 12 14 18 14 12 11 00 00", "L": "10 10 10 10 10 10 1F 00 00",
    "M": "11 1B 15 15 11 11 11 00 00", "N": "11 11 19 15 13 11 11 00 00", "O": "0E 11 11 11 11 11 0E 00 00",
    "P": "1E 11 11 1E 10 10 10 00 00", "Q": "0E 11 11 11 15 12 0D 00 00", "R": "1E 11 11 1E 14 12 11 00 00",
    "S": "0F 10 10 0E 01 01 1E 00 00", "T": "1F 04 04 04 04 04 04 00 00", "U": "11 11 11 11 11 11 0E 00 00",
    "V": "11 11 11 11 11 0A 04 00 00", "W": "11 11 11 15 15 15 0A 00 00", "X": "11 11 0A 04 0A 11 11 00 00",
    "Y": "11 11 11 0A 04 04 04 00 00", "Z": "1F 01 02 04 08 10 1F 00 00", "[": "0E 08 08 08 08 08 0E 00 00",
    "\\": "00 10 08 04 02 01 00 00 00", "]": "0E 02 02 02 02 02 0E 00 00", "^": "04 0A 11 00 00 00 00 00 00",
    "_": "00 00 00 00 00 00 00 1F 00", "`": "08 04 02 00 00 00 00 00 00", "a": "00 00 0E 01 0F 11 0F 00 00",
    "b": "10 10 16 19 11 11 1E 00 00", "c": "00 00 0E 10 10 11 0E 00 00", "d": "01 01 0D 13 11 11 0F 00 00",
    "e": "00 00 0E 11 1F 10 0E 00 00", "f": "06 09 08 1C 08 08 08 00 00", "g": "00 00 0F 11 11 0F 01 11 0E",
    "h": "10 10 16 19 11 11 11 00 00", "i": "04 00 0C 04 04 04 0E 00 00", "j": "02 00 06 02 02 02 02 12 0C",
    "k": "10 10 12 14 18 14 12 00 00", "l": "0C 04 04 04 04 04 0E 00 00", "m": "00 00 1A 15 15 11 11 00 00",
    "n": "00 00 16 19 11 11 11 00 00", "o": "00 00 0E 11 11 11 0E 00 00", "p": "00 00 1E 11 11 1E 10 10 10",
    "q": "00 00 0D 13 11 0F 01 01 01", "r": "00 00 16 19 10 10 10 00 00", "s": "00 00 0E 10 0E 01 1E 00 00",
    "t": "08 08 1C 08 08 09 06 00 00", "u": "00 00 11 11 11 13 0D 00 00", "v": "00 00 11 11 11 0A 04 00 00",
    "w": "00 00 11 11 15 15 0A 00 00", "x": "00 00 11 0A 04 0A 11 00 00", "y": "00 00 11 11 11 0F 01 11 0E",
    "z": "00 00 1F 02 04 08 1F 00 00", "{": "02 04 04 08 04 04 02 00 00", "|": "04 04 04 04 04 04 04 00 00",
    "}": "08 04 04 02 04 04 08 00 00", "~": "00 00 08 15 02 00 00 00 00",
}
_MISSING: Final = "1F 11 11 11 11 11 1F 00 00"
"""A hollow box for characters the font does not have."""
_ROW_HEIGHTS: Final = (2, 2, 1, 2, 1, 2, 2, 2, 1)
"""Scan lines per glyph row: 7 body rows in 12 lines (1..12), two descender rows in 3 (13..15)."""


def _stretch(spec: str) -> tuple[int, ...]:
    """A 9-row 5-bit glyph -> 16 scan lines of 8 bits (columns 1-5; scan line 0 blank)."""
    lines = [0]
    for value, height in zip((int(v, 16) for v in spec.split()), _ROW_HEIGHTS, strict=True):
        lines += [value << 2] * height
    return tuple(lines)


FONT: Final[dict[str, tuple[int, ...]]] = {ch: _stretch(spec) for ch, spec in _GLYPHS.items()}
"""Printable ASCII -> 16 scan lines, bit 7 the leftmost pixel."""
MISSING_GLYPH: Final = _stretch(_MISSING)
_READ_BACK: Final = {glyph[: CURSOR_ROWS[0]]: ch for ch, glyph in FONT.items()}


class TextGrid(Protocol):
    """What is drawn: the console's text screen (``console.TextScreen``)."""

    width: int
    height: int
    cells: list[list[tuple[str, int]]]
    cursor: tuple[int, int]

    def add_listener(self, listener: Callable[[frozenset[int]], None]) -> Callable[[], None]: ...


class TextFramebuffer:
    """A pixel picture of a :class:`TextGrid` (an RFB :class:`~outband.proto.rfb.server.IndexedSurface`).

    ``cell_width`` is 9 (720x400, the VGA default) or 8 (640x400).  :meth:`attach` follows the grid's changes
    (and calls ``on_change``); without it, call :meth:`invalidate` after changing the grid.
    """

    def __init__(self, grid: TextGrid, *, cell_width: int = 9, size: tuple[int, int] | None = None) -> None:
        if cell_width not in (8, 9):
            raise ValueError("VGA text cells are 8 or 9 pixels wide")
        self.grid = grid
        self.cell_width = cell_width
        self.palette: Sequence[RGB] = VGA_PALETTE
        self.text_width = grid.width * cell_width
        self.text_height = grid.height * CELL_HEIGHT
        self.width, self.height = self.text_width, self.text_height
        self._pixels = bytearray()
        self._origin = (0, 0)
        self._dirty: set[int] = set()
        self._drawn_cursor: tuple[int, int] | None = None
        self._cells: dict[tuple[str, int], tuple[bytes, ...]] = {}
        self._detach: Callable[[], None] | None = None
        self._on_change: Callable[[], None] | None = None
        self.resize(*(size or (self.text_width, self.text_height)))

    # ------------------------------------------------------------------------------------------ following

    def attach(self, on_change: Callable[[], None] | None = None) -> None:
        """Follow the grid's changes; ``on_change`` is told after each (a KVM session wakes up on it)."""
        self.detach()
        self._on_change = on_change
        self._detach = self.grid.add_listener(self._changed)
        self.invalidate()

    def detach(self) -> None:
        if self._detach is not None:
            self._detach()
            self._detach = None

    def _changed(self, rows: frozenset[int]) -> None:
        self._dirty.update(rows)
        if self._on_change is not None:
            self._on_change()

    def invalidate(self, rows: frozenset[int] | None = None) -> None:
        self._dirty.update(range(self.grid.height) if rows is None else rows)

    def resize(self, width: int, height: int) -> None:
        """A new display size (at least the text's): the text is centred and everything is redrawn."""
        if width < self.text_width or height < self.text_height:
            raise ValueError(f"the text needs at least {self.text_width}x{self.text_height} pixels")
        self.width, self.height = width, height
        self._pixels = bytearray(width * height)
        self._origin = ((width - self.text_width) // 2, (height - self.text_height) // 2)
        self._drawn_cursor = None
        self.invalidate()

    # ------------------------------------------------------------------------------------------ surface

    def region(self, x: int, y: int, width: int, height: int) -> bytes:
        self._render()
        pixels = memoryview(self._pixels)
        start = y * self.width + x
        return b"".join([pixels[at : at + width] for at in range(start, start + height * self.width, self.width)])

    def _render(self) -> None:
        cursor = self.grid.cursor
        if cursor != self._drawn_cursor:
            for moved in (self._drawn_cursor, cursor):
                if moved is not None and 0 <= moved[0] < self.grid.height:
                    self._dirty.add(moved[0])
            self._drawn_cursor = cursor
        if not self._dirty:
            return
        ox, oy = self._origin
        for row in sorted(self._dirty):
            if not 0 <= row < self.grid.height:
                continue
            cells = [self._cell(ch, attr) for ch, attr in self.grid.cells[row]]
            if cursor[0] == row and 0 <= cursor[1] < len(cells):
                ch, attr = self.grid.cells[row][cursor[1]]
                cells[cursor[1]] = self._cell(ch, attr, cursor=True)
            for line in range(CELL_HEIGHT):
                at = (oy + row * CELL_HEIGHT + line) * self.width + ox
                self._pixels[at : at + self.text_width] = b"".join(c[line] for c in cells)
        self._dirty.clear()

    def _cell(self, ch: str, attribute: int, *, cursor: bool = False) -> tuple[bytes, ...]:
        key = (ch, attribute | (0x100 if cursor else 0))
        cell = self._cells.get(key)
        if cell is None:
            fg, bg = attribute & 0x0F, (attribute >> 4) & 0x07
            lines = list(FONT.get(ch, MISSING_GLYPH))
            if cursor:
                for line in CURSOR_ROWS:
                    lines[line] = 0xFF
            cell = tuple(self._scan_line(bits, fg, bg) for bits in lines)
            if len(self._cells) < 4096:
                self._cells[key] = cell
        return cell

    def _scan_line(self, bits: int, fg: int, bg: int) -> bytes:
        pixels = bytes(fg if bits & (0x80 >> x) else bg for x in range(GLYPH_WIDTH))
        return pixels + (pixels[-1:] if self.cell_width == 9 and bits == 0xFF else bytes([bg]) * (self.cell_width - 8))

    # ------------------------------------------------------------------------------------------ reading back

    def read_text(self, pixels: bytes | None = None) -> list[str]:
        """The text shown, recognised glyph by glyph from palette indices (ours by default, or a decoded
        copy of the same size): each cell's pixels that differ from its background colour form the glyph.
        Scan lines 14-15 are left out (the cursor draws there; no two glyphs differ only there).  A cell whose
        pattern is no known glyph reads as ``?``."""
        self._render()
        source = self._pixels if pixels is None else pixels
        ox, oy = self._origin
        lines = []
        for row in range(self.grid.height):
            text = []
            for col in range(self.grid.width):
                x0, y0 = ox + col * self.cell_width, oy + row * CELL_HEIGHT
                bg = source[(y0 + 1) * self.width + x0]  # column 0 of scan line 1 is never ink
                scan = []
                for line in range(CURSOR_ROWS[0]):
                    at = (y0 + line) * self.width + x0
                    chunk = source[at : at + GLYPH_WIDTH]
                    scan.append(sum(0x80 >> x for x in range(GLYPH_WIDTH) if chunk[x] != bg))
                text.append(_READ_BACK.get(tuple(scan), "?"))
            lines.append("".join(text))
        return lines


class TextConsole(Protocol):
    """What a :class:`TextDisplay` shows and types into (the sim's ``SimConsole``)."""

    @property
    def hostname(self) -> str: ...

    @property
    def screen(self) -> TextGrid: ...

    def input(self, data: bytes) -> None: ...


class TextDisplay:
    """A text console as a platform display (:class:`~outband.engine.platforms.base.Display`)."""

    def __init__(self, console: TextConsole, *, size: tuple[int, int] | None = None) -> None:
        self.console = console
        self.size = size
        """The desktop size of the sessions opened from now on (None: the text's, 720x400); a larger one shows
        the text centred."""

    @property
    def hostname(self) -> str:
        return self.console.hostname

    def view(self) -> TextView:
        return TextView(self.console, size=self.size)


class TextView(TextFramebuffer):
    """One KVM session's view of a :class:`TextDisplay`: its own picture of the screen and its own keyboard."""

    def __init__(self, console: TextConsole, *, size: tuple[int, int] | None = None) -> None:
        super().__init__(console.screen, size=size)
        self.console = console
        self.keyboard = TerminalKeyboard()

    def key(self, keysym: int, down: bool) -> None:
        typed = self.keyboard.event(keysym, down)
        if typed:
            self.console.input(typed)

    def pointer(self, buttons: int, x: int, y: int) -> None:
        """Nothing to point at on a text screen."""


__all__ = ["CELL_HEIGHT", "FONT", "MISSING_GLYPH", "VGA_PALETTE", "TextConsole", "TextDisplay", "TextFramebuffer",
           "TextGrid", "TextView"]
