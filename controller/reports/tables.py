"""A report as a table (Vietnamese or English headers), and as an Excel workbook: the figures
per child area with the total, and a sheet of every play it counted, in Viet Nam time."""

from __future__ import annotations

import io
from datetime import datetime
from typing import Any

import xlsxwriter

from controller.reports.report import OWN, Figures, Report
from controller.reports.sources import Category
from schedules.localtime import as_local

CATEGORY_NAMES = {
    "vi": {
        Category.policy_law: "chính sách, pháp luật",
        Category.local_news: "tin địa phương",
        Category.emergency: "khẩn cấp",
        Category.relay: "tiếp sóng",
        Category.live: "phát trực tiếp",
    },
    "en": {
        Category.policy_law: "policy and law",
        Category.local_news: "local news",
        Category.emergency: "emergency",
        Category.relay: "relayed programmes",
        Category.live: "live",
    },
}

_HEAD = {
    "vi": {
        "area_id": "Mã khu vực",
        "area": "Khu vực",
        "kind": "Cấp",
        "nodes": "Số cụm loa",
        "plays": "Lượt phát – {}",
        "hours": "Giờ phát – {}",
        "plays_total": "Tổng lượt phát",
        "hours_total": "Tổng giờ phát",
        "plays_without_end": "Lượt phát không báo kết thúc",
        "not_played": "Lượt dự kiến không phát",
        "alerts": "Số cảnh báo",
        "alert_targets": "Lượt cụm loa nhận cảnh báo",
        "alert_confirmed": "Lượt đã xác nhận",
        "confirmation_pct": "Tỷ lệ xác nhận (%)",
        "confirm_median_s": "Thời gian xác nhận trung vị (giây)",
        "confirm_max_s": "Thời gian xác nhận tối đa (giây)",
        "availability_pct": "Tỷ lệ trực tuyến (%)",
        "online_h": "Giờ trực tuyến",
        "known_h": "Giờ theo dõi",
        "faults": "Số sự cố",
        "faults_cleared": "Sự cố đã khắc phục",
        "repair_median_h": "Thời gian khắc phục trung vị (giờ)",
        "repair_max_h": "Thời gian khắc phục tối đa (giờ)",
    },
    "en": {
        "area_id": "Area id",
        "area": "Area",
        "kind": "Level",
        "nodes": "Loudspeakers",
        "plays": "Plays – {}",
        "hours": "Hours aired – {}",
        "plays_total": "Plays, total",
        "hours_total": "Hours aired, total",
        "plays_without_end": "Plays with no reported end",
        "not_played": "Planned, not played",
        "alerts": "Alerts",
        "alert_targets": "Loudspeakers alerted",
        "alert_confirmed": "Confirmed",
        "confirmation_pct": "Confirmation rate (%)",
        "confirm_median_s": "Median time to confirm (s)",
        "confirm_max_s": "Longest time to confirm (s)",
        "availability_pct": "Availability (%)",
        "online_h": "Hours online",
        "known_h": "Hours observed",
        "faults": "Faults",
        "faults_cleared": "Faults repaired",
        "repair_median_h": "Median time to repair (h)",
        "repair_max_h": "Longest time to repair (h)",
    },
}

KIND_NAMES = {
    "vi": {
        "province": "tỉnh",
        "district": "huyện",
        "commune": "xã",
        "village": "thôn",
        OWN: "cụm loa đặt trực tiếp",
        "total": "tổng",
    },
    "en": {
        "province": "province",
        "district": "district",
        "commune": "commune",
        "village": "village",
        OWN: "own loudspeakers",
        "total": "total",
    },
}

_SINGLE = [
    "plays_total",
    "hours_total",
    "plays_without_end",
    "not_played",
    "alerts",
    "alert_targets",
    "alert_confirmed",
    "confirmation_pct",
    "confirm_median_s",
    "confirm_max_s",
    "availability_pct",
    "online_h",
    "known_h",
    "faults",
    "faults_cleared",
    "repair_median_h",
    "repair_max_h",
]


def header(lang: str) -> list[str]:
    h, cats = _HEAD[lang], CATEGORY_NAMES[lang]
    out = [h["area_id"], h["area"], h["kind"], h["nodes"]]
    for c in Category:
        out += [h["plays"].format(cats[c]), h["hours"].format(cats[c])]
    return out + [h[k] for k in _SINGLE]


def _r(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _line(area_id: str, name: str, kind: str, f: Figures, lang: str) -> list[Any]:
    out: list[Any] = [area_id, name, KIND_NAMES[lang].get(kind, kind), f.nodes]
    for c in Category:
        out += [f.plays[c], round(f.aired_ms[c] / 3_600_000, 3)]
    rate, avail = f.confirmation_rate, f.availability
    return [
        *out,
        sum(f.plays.values()),
        round(sum(f.aired_ms.values()) / 3_600_000, 3),
        f.plays_without_end,
        f.not_played,
        f.alerts,
        f.alert_targets,
        f.alert_confirmed,
        _r(rate * 100 if rate is not None else None, 2),
        _r(f.confirm_median_ms / 1000 if f.confirm_median_ms is not None else None, 1),
        _r(f.confirm_max_ms / 1000 if f.confirm_max_ms is not None else None, 1),
        _r(avail * 100 if avail is not None else None, 2),
        round(f.online_ms / 3_600_000, 3),
        round(f.known_ms / 3_600_000, 3),
        f.faults,
        f.faults_cleared,
        _r(f.repair_median_ms / 3_600_000 if f.repair_median_ms is not None else None, 3),
        _r(f.repair_max_ms / 3_600_000 if f.repair_max_ms is not None else None, 3),
    ]


def lines(report: Report, lang: str) -> list[list[Any]]:
    """One line per child area (and the area's own loudspeakers), then the area's total."""
    out = [_line(r.area_id, r.name, r.kind, r.figures, lang) for r in report.rows]
    out.append(_line(report.area_id, report.name, "total", report.total, lang))
    return out


_PLAY_HEAD = {
    "vi": [
        "Nguồn",
        "Mã dòng nhật ký",
        "Cụm loa",
        "Khu vực",
        "Loại",
        "Mã phát",
        "Tiêu đề",
        "Giờ dự kiến",
        "Bắt đầu",
        "Kết thúc",
        "Thời lượng (giây)",
    ],
    "en": [
        "Source",
        "Log row id",
        "Loudspeaker",
        "Area",
        "Category",
        "Item id",
        "Title",
        "Planned",
        "Started",
        "Ended",
        "Duration (s)",
    ],
}
_SOURCE_NAMES = {
    "vi": {"delivery": "nhật ký phát", "alert_receipt": "xác nhận cảnh báo"},
    "en": {"delivery": "playback log", "alert_receipt": "alert receipt"},
}


def _local(dt: datetime | None) -> datetime | None:
    # Excel has no time zones: Viet Nam wall-clock time, as people read it.
    return None if dt is None else as_local(dt).replace(tzinfo=None)


def xlsx(report: Report, lang: str = "vi") -> bytes:
    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"in_memory": True, "strings_to_formulas": False})
    bold = book.add_format({"bold": True, "text_wrap": True, "valign": "top"})
    when = book.add_format({"num_format": "dd/mm/yyyy hh:mm:ss"})
    day = book.add_format({"num_format": "dd/mm/yyyy"})
    title = {"vi": "Báo cáo", "en": "Report"}[lang]
    sheet = book.add_worksheet({"vi": "Báo cáo", "en": "Report"}[lang])
    sheet.write_string(0, 0, f"{title}: {report.name} ({report.area_id})", bold)
    sheet.write_string(1, 0, {"vi": "Từ ngày", "en": "From"}[lang])
    sheet.write_datetime(1, 1, datetime.combine(report.window.first, datetime.min.time()), day)
    sheet.write_string(1, 2, {"vi": "Đến ngày", "en": "To"}[lang])
    sheet.write_datetime(1, 3, datetime.combine(report.window.last, datetime.min.time()), day)
    top = 3
    for c, text in enumerate(header(lang)):
        sheet.write_string(top, c, text, bold)
    for r, line in enumerate(lines(report, lang), start=top + 1):
        for c, value in enumerate(line):
            if value is None:
                continue
            if isinstance(value, str):
                sheet.write_string(r, c, value)
            else:
                sheet.write_number(r, c, value)
    sheet.set_column(0, 1, 22)
    sheet.set_column(2, len(header(lang)), 14)
    sheet.freeze_panes(top + 1, 2)

    log = book.add_worksheet({"vi": "Nhật ký", "en": "Log"}[lang])
    for c, text in enumerate(_PLAY_HEAD[lang]):
        log.write_string(0, c, text, bold)
    for r, p in enumerate(report.sources.plays, start=1):
        log.write_string(r, 0, _SOURCE_NAMES[lang][p.source])
        log.write_number(r, 1, p.id)
        log.write_string(r, 2, p.node_id)
        log.write_string(r, 3, p.area_id)
        log.write_string(r, 4, CATEGORY_NAMES[lang][p.category])
        log.write_string(r, 5, p.item_id)
        log.write_string(r, 6, p.title)
        for c, dt in ((7, p.planned_start), (8, p.started_at), (9, p.ended_at)):
            local = _local(dt)
            if local is not None:
                log.write_datetime(r, c, local, when)
        if p.aired_ms is not None:
            log.write_number(r, 10, p.aired_ms / 1000)
    log.set_column(0, 10, 18)
    book.close()
    return out.getvalue()
