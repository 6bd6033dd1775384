"""Every table the API hands out as a file, written one way: CSV or Excel (.xlsx), headers in
the reader's language, times in Viet Nam time, and cells a spreadsheet would run as a formula
defused.

CSV starts with a UTF-8 byte-order mark: without it Excel reads the file as the machine's
legacy code page and garbles every Vietnamese letter. The .xlsx is written by XlsxWriter
(times as real date cells, so they sort and filter in Excel).

A cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return is a formula to Excel and
LibreOffice (`=HYPERLINK(...)`, `=cmd|...`); a user name, a title or an audit detail chosen by
someone else must not become one on an auditor's computer. Such text is written with a leading
apostrophe in CSV, which spreadsheets show as text and do not display, and as a plain string
cell in .xlsx. Numbers stay numbers.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import quote

import xlsxwriter
from fastapi import Request
from fastapi.responses import Response

from api.console.i18n import Words, language_of
from schedules.localtime import LOCAL_TZ

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
BOM = "\ufeff"
TIME_FORMAT = "%d/%m/%Y %H:%M:%S"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
FileFormat = Literal["csv", "xlsx"]


def cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def local_time(value: datetime) -> datetime:
    """Viet Nam wall-clock time of a stored instant (a time without an offset is UTC)."""
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(LOCAL_TZ)


def text_of(value: Any, lang: str) -> Any:
    """A cell as CSV writes it: times as dd/mm/yyyy HH:MM:SS, decimals with the language's
    separator (a comma in Vietnamese)."""
    if isinstance(value, datetime):
        return local_time(value).strftime(TIME_FORMAT)
    if isinstance(value, float):
        shown = f"{value:g}"
        return shown.replace(".", ",") if lang == "vi" else shown
    return cell(value)


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]], lang: str = "vi") -> str:
    out = io.StringIO()
    out.write(BOM)
    writer = csv.writer(out)
    writer.writerow([cell(h) for h in header])
    for row in rows:
        writer.writerow([text_of(v, lang) for v in row])
    return out.getvalue()


def xlsx_bytes(header: Sequence[str], rows: Iterable[Sequence[Any]], sheet: str) -> bytes:
    out = io.BytesIO()
    # strings_to_formulas off: text from users is never a formula, whatever it starts with.
    book = xlsxwriter.Workbook(
        out, {"in_memory": True, "strings_to_formulas": False, "strings_to_urls": False}
    )
    page = book.add_worksheet(sheet[:31])
    bold = book.add_format({"bold": True})
    when = book.add_format({"num_format": "dd/mm/yyyy hh:mm:ss"})
    widths = [len(h) for h in header]
    for c, title in enumerate(header):
        page.write_string(0, c, title, bold)
    for r, row in enumerate(rows, start=1):
        for c, value in enumerate(row):
            if value is None:
                continue
            if isinstance(value, datetime):
                page.write_datetime(r, c, local_time(value).replace(tzinfo=None), when)
                widths[c] = max(widths[c], 19)
            elif isinstance(value, bool):
                page.write_boolean(r, c, value)
            elif isinstance(value, int | float):
                page.write_number(r, c, value)
            else:
                text = str(value)
                page.write_string(r, c, text)
                widths[c] = max(widths[c], min(len(text), 60))
    for c, width in enumerate(widths):
        page.set_column(c, c, width + 2)
    page.freeze_panes(1, 0)
    book.close()
    return out.getvalue()


def export_words(request: Request) -> Words:
    """The reader's language: the console's switch (`?lang=`, its cookie), else Vietnamese."""
    return Words(language_of(request))


def table_response(
    request: Request,
    table: str,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    filename: str,
    fmt: FileFormat = "csv",
) -> Response:
    """A table as a download: headers from the locales (`export.<table>.<column>`)."""
    words = export_words(request)
    header = [words(f"export.{table}.{c}") for c in columns]
    name = f"{filename}.{fmt}"
    disposition = f"attachment; filename=\"{name}\"; filename*=UTF-8''{quote(name)}"
    if fmt == "xlsx":
        return Response(
            xlsx_bytes(header, rows, words(f"export.{table}.sheet")),
            media_type=XLSX_TYPE,
            headers={"Content-Disposition": disposition},
        )
    return Response(
        csv_text(header, rows, words.lang).encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": disposition},
    )
