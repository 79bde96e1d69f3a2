"""Reading a CSV file of devices: one device per row, every row judged on its own.

Columns (header required, any order): ``name`` (required), ``host``, ``username``, ``password``, ``tls``
(true/false), ``http_port``, ``tls_port``, ``fingerprint``, ``tags`` (separated by ``;`` or spaces),
``group``, and for devices that dial in: ``transport`` (direct, the default, or cira), ``uuid``,
``cira_username``, ``cira_password``.  A direct row needs a host, a CIRA row a UUID.  Missing usernames and
passwords can come from defaults given with the upload.  A bad row is reported with its line number and does
not stop the others.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any, Final

from pydantic import ValidationError

from ..db.models import Transport
from ..schemas import DeviceCreate

COLUMNS: Final = ("name", "host", "username", "password", "tls", "http_port", "tls_port", "fingerprint", "tags",
                  "group", "transport", "uuid", "cira_username", "cira_password")
REQUIRED: Final = ("name",)
_OPTIONAL: Final = ("host", "http_port", "tls_port", "fingerprint", "group", "transport", "uuid", "cira_username",
                    "cira_password")
"""Columns passed to the model as written when not empty."""
_TRUE: Final = frozenset({"1", "true", "yes", "y", "on"})
_FALSE: Final = frozenset({"", "0", "false", "no", "n", "off"})


class CsvFormatError(ValueError):
    """The file as a whole cannot be read (encoding, header)."""


@dataclass(slots=True)
class ParsedRow:
    line: int
    name: str | None
    spec: DeviceCreate | None = None
    error: str | None = None


def describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"])
        parts.append(f"{where}: {item['msg']}" if where else item["msg"])
    return "; ".join(parts)


def parse_devices_csv(data: bytes, *, username: str | None = None, password: str | None = None,
                      max_rows: int = 100_000) -> list[ParsedRow]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CsvFormatError("the file is not UTF-8 text") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [column.strip().lower() for column in next(reader)]
    except StopIteration:
        raise CsvFormatError("the file is empty") from None
    except csv.Error as exc:
        raise CsvFormatError(f"line 1: {exc}") from None
    unknown = [c for c in header if c not in COLUMNS]
    if unknown:
        raise CsvFormatError(f"unknown column(s) {', '.join(map(repr, unknown))}; known: {', '.join(COLUMNS)}")
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise CsvFormatError(f"missing column(s) {', '.join(missing)}")
    if len(set(header)) != len(header):
        raise CsvFormatError("a column appears twice in the header")

    rows: list[ParsedRow] = []
    seen: dict[tuple[str, str], int] = {}
    try:
        for record in reader:
            if not any(cell.strip() for cell in record):
                continue
            if len(rows) >= max_rows:
                raise CsvFormatError(f"more than {max_rows} devices in one file")
            rows.append(_row(reader.line_num, header, record, username, password, seen))
    except csv.Error as exc:
        raise CsvFormatError(f"line {reader.line_num}: {exc}") from None
    return rows


def _row(line: int, header: list[str], record: list[str], username: str | None, password: str | None,
         seen: dict[tuple[str, str], int]) -> ParsedRow:
    if len(record) != len(header):
        return ParsedRow(line, None, error=f"{len(record)} fields, the header has {len(header)}")
    cells = {column: cell.strip() for column, cell in zip(header, record, strict=True)}
    name = cells.get("name") or None
    fields: dict[str, Any] = {"name": cells.get("name", "")}
    fields["username"] = cells.get("username") or username or "admin"
    chosen_password = cells.get("password") or password
    if not chosen_password:
        return ParsedRow(line, name, error="no password (neither in the row nor as a default)")
    fields["password"] = chosen_password
    tls = cells.get("tls", "").lower()
    if tls not in _TRUE | _FALSE:
        return ParsedRow(line, name, error=f"tls: {tls!r} is not true or false")
    fields["use_tls"] = tls in _TRUE
    for column in _OPTIONAL:
        if cells.get(column):
            fields[column] = cells[column]
    fields["tags"] = cells.get("tags", "").replace(";", " ").split()
    try:
        spec = DeviceCreate.model_validate(fields)
    except ValidationError as exc:
        return ParsedRow(line, name, error=describe(exc))
    keys = [("name", repr(spec.name))]
    if spec.transport is Transport.CIRA:  # the MPS tells CIRA devices apart by UUID
        keys.append(("uuid", str(spec.uuid)))
    for key in keys:
        if key in seen:
            return ParsedRow(line, spec.name, error=f"{key[0]} {key[1]} already used on line {seen[key]}")
    seen.update(dict.fromkeys(keys, line))
    return ParsedRow(line, spec.name, spec=spec)
