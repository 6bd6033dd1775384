"""Registering nodes in bulk from a CSV file: every row is checked first, then all are added in
one transaction, or none when any row is wrong."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlmodel import Session, col, select

from controller.core.models import Area, Node
from controller.fleet.registry import Registry
from protocol import valid_id

COLUMNS = ("id", "name", "area", "lat", "lon", "hardware", "installed_on")
ALIASES = {"node_id": "id", "area_id": "area", "installed": "installed_on"}
REQUIRED = ("id", "name", "area")
MAX_ROWS = 10_000
MAX_PROBLEMS = 200


Problem = tuple[int, str]  # (line number, what is wrong)


class NodeImportError(ValueError):
    """Rows that cannot be imported; `problems` says what, line by line."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems)
        shown = [f"line {line}: {text}" for line, text in self.problems[:MAX_PROBLEMS]]
        more = f"\n… and {len(problems) - len(shown)} more" if len(problems) > len(shown) else ""
        super().__init__(
            f"{len(problems)} problem(s) in the CSV file; nothing was imported:\n"
            + "\n".join(shown)
            + more
        )


@dataclass
class NodeRow:
    line: int
    id: str
    name: str
    area: str
    lat: float | None = None
    lon: float | None = None
    hardware: str = ""
    installed_on: date | None = None


def parse_date(text: str) -> date:
    """ISO (2025-03-14) or the Vietnamese day/month/year (14/03/2025)."""
    for fmt in ("%Y-%m-%d", "%d/%m/%Y"):
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise ValueError(f"install date {text[:40]!r}: write it as 2025-03-14 or 14/03/2025")


def _number(text: str, name: str, low: float, high: float) -> float | None:
    if not text:
        return None
    try:
        value = float(text.replace(",", "."))
    except ValueError:
        raise ValueError(f"{name} {text[:40]!r} is not a number") from None
    if not low <= value <= high:
        raise ValueError(f"{name} {value:g} is outside {low:g}…{high:g}")
    return value


def _row(line: int, cells: dict[str, str]) -> NodeRow:
    """One row, or ValueError with every problem of the row joined."""
    problems: list[str] = []
    node_id, name, area = cells.get("id", ""), cells.get("name", ""), cells.get("area", "")
    if not valid_id(node_id):
        problems.append(f"id {node_id[:70]!r}: use lowercase letters, digits, '-', '_' or '.'")
    if not name or len(name) > 200:
        problems.append("name is missing" if not name else "name is longer than 200 characters")
    if not valid_id(area):
        problems.append(f"area {area[:70]!r} is not an area id" if area else "area is missing")
    row = NodeRow(line, node_id, name, area, hardware=cells.get("hardware", ""))
    before = len(problems)
    for field, check in (
        ("lat", lambda t: _number(t, "lat", -90, 90)),
        ("lon", lambda t: _number(t, "lon", -180, 180)),
        ("installed_on", lambda t: parse_date(t) if t else None),
    ):
        try:
            setattr(row, field, check(cells.get(field, "")))
        except ValueError as exc:
            problems.append(str(exc))
    if len(problems) == before and (row.lat is None) != (row.lon is None):
        problems.append("give both lat and lon, or neither")
    if len(row.hardware) > 100:
        problems.append("hardware is longer than 100 characters")
    if problems:
        raise ValueError("; ".join(problems))
    return row


def read_csv(text: str) -> tuple[list[NodeRow], list[Problem]]:
    """The good rows and the problems of the others; NodeImportError when the file itself is
    unusable (empty, columns wrong, too long)."""
    text = text.lstrip("\ufeff")  # the byte-order mark spreadsheet programs write
    if not text.strip():
        raise NodeImportError([(1, "the file is empty; the first line names the columns")])
    first = text.splitlines()[0]
    delimiter = ";" if first.count(";") > first.count(",") else ","
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    try:
        return _read(reader)
    except csv.Error as exc:  # a NUL byte, a field over the size limit…
        raise NodeImportError([(reader.line_num, f"not readable as CSV: {exc}")]) from None


def _read(reader: Any) -> tuple[list[NodeRow], list[Problem]]:
    header = [ALIASES.get(h.strip().lower(), h.strip().lower()) for h in next(reader)]
    unknown = [h for h in header if h not in COLUMNS]
    missing = [c for c in REQUIRED if c not in header]
    if unknown or missing:
        parts = [f"unknown column(s) {', '.join(unknown)[:200]}"] if unknown else []
        parts += [f"missing column(s) {', '.join(missing)}"] if missing else []
        raise NodeImportError([(1, f"{'; '.join(parts)}; the columns are {', '.join(COLUMNS)}")])
    rows: list[NodeRow] = []
    problems: list[Problem] = []
    first_line: dict[str, int] = {}
    for cells in reader:
        line = reader.line_num
        if not any(c.strip() for c in cells):
            continue
        if len(rows) + len(problems) >= MAX_ROWS:
            raise NodeImportError([(line, f"more than {MAX_ROWS} rows; split the file")])
        if len(cells) != len(header):
            problems.append((line, f"{len(cells)} fields, the header has {len(header)}"))
            continue
        try:
            row = _row(line, {h: c.strip() for h, c in zip(header, cells, strict=True)})
        except ValueError as exc:
            problems.append((line, str(exc)))
            continue
        if row.id in first_line:
            problems.append((line, f"node {row.id} is also on line {first_line[row.id]}"))
            continue
        first_line[row.id] = line
        rows.append(row)
    if not rows and not problems:
        problems.append((2, "no nodes below the header line"))
    return rows, problems


def check_registry(session: Session, rows: list[NodeRow]) -> list[Problem]:
    """What the registry refuses: ids already taken, areas that do not exist."""
    taken = set(session.exec(select(Node.id).where(col(Node.id).in_([r.id for r in rows]))).all())
    areas = set(session.exec(select(Area.id)).all())
    problems: list[Problem] = []
    for r in rows:
        if r.id in taken:
            problems.append((r.line, f"node {r.id} is already registered"))
        if r.area not in areas:
            problems.append((r.line, f"area {r.area} does not exist"))
    return problems


def checked_rows(session: Session, text: str) -> list[NodeRow]:
    """Every row of the file, checked against the format and the registry; NodeImportError
    lists every problem of every row, in line order."""
    rows, problems = read_csv(text)
    problems += check_registry(session, rows)
    if problems:
        raise NodeImportError(problems)
    return rows


def add_rows(
    registry: Registry, session: Session, rows: list[NodeRow]
) -> list[tuple[Node, dict[str, Any]]]:
    """Register checked rows (the caller commits, so it is all or nothing)."""
    return [
        registry.add_node(
            session,
            r.id,
            r.name,
            r.area,
            lat=r.lat,
            lon=r.lon,
            hardware=r.hardware,
            installed_on=r.installed_on,
        )
        for r in rows
    ]
