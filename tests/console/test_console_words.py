"""What the controller records in English (alarm details, event codes, why a live broadcast
ended) is read back into the reader's words, in Viet Nam time with comma decimals; numbers in
the pages take the language's separator."""

from __future__ import annotations

import pytest

from api.console.bulletins import poll_status
from api.console.device_words import ALARM_DETAILS, alarm_detail, event_words, play_detail
from api.console.i18n import Words
from api.console.live import reason_key
from api.console.pages import day_from_text, num

VI, EN = Words("vi"), Words("en")

# One detail of each kind, written as controller/health/alarm_rules.py writes it.
DETAILS = [
    (
        "offline",
        "offline since 2026-12-05 06:20:15 UTC (lost)",
        "Mất kết nối từ 05/12/2026 13:20 (Mất tín hiệu)",
    ),
    ("flapping", "6+ state changes within 300 s", "Đổi trạng thái 6 lần trở lên trong 300 giây"),
    ("speaker_fault", "speaker check failed", "Kiểm tra loa báo lỗi"),
    ("amplifier_fault", "amplifier check failed", "Kiểm tra âm ly báo lỗi"),
    ("mains_lost", "on battery (38 %)", "Đang chạy pin (còn 38 %)"),
    ("mains_lost", "on battery (? %)", "Đang chạy pin (còn không rõ)"),
    ("low_battery", "battery at 12 %", "Pin còn 12 %"),
    ("over_temperature", "71.5 °C (limit 70 °C)", "71,5 °C (giới hạn 70 °C)"),
    ("storage_low", "120 MB free", "Còn trống 120 MB"),
    (
        "clock_offset",
        "+1500 ms from the controller's clock (two way; limit 1000 ms)",
        "Lệch +1500 ms so với đồng hồ máy chủ (đo hai chiều; giới hạn 1000 ms)",
    ),
    (
        "clock_offset",
        "-2500.5 ms from true time by chrony (limit 1000 ms)",
        "Lệch -2500,5 ms so với giờ chuẩn (giới hạn 1000 ms)",
    ),
    (
        "dead_air",
        "item s1-n0-1 due 2026-12-05 23:30:00 UTC not played (missed)",
        "Lượt phát lúc 06/12/2026 06:30 không được phát (Không phát)",
    ),
    ("media_failing", "3 failed downloads in 600 s", "3 lần tải âm thanh thất bại trong 600 giây"),
    (
        "firmware_outdated",
        "runs 1.0.0, latest is 1.2.0",
        "Đang chạy bản 1.0.0, bản mới nhất là 1.2.0",
    ),
]


@pytest.mark.parametrize(("kind", "detail", "words"), DETAILS)
def test_alarm_details_read_in_vietnamese(kind: str, detail: str, words: str) -> None:
    assert alarm_detail(kind, detail, VI) == words


def test_every_kind_with_a_pattern_is_tested_and_english_stays_english() -> None:
    assert {k for k, _, _ in DETAILS} == set(ALARM_DETAILS)
    assert alarm_detail("mains_lost", "on battery (38 %)", EN) == "On battery (38 % left)"
    assert alarm_detail("over_temperature", "71.5 °C (limit 70 °C)", EN).startswith("71.5 °C")
    # A text the rules never write is not shown as English: the kind already names the alarm.
    assert alarm_detail("speaker_fault", "something new", VI) == ""


def test_events_read_as_words() -> None:
    alarm = {"source": "alarm", "type": "speaker_fault raised", "detail": "speaker check failed"}
    assert event_words(alarm, VI) == ("Lỗi loa — phát sinh", "Kiểm tra loa báo lỗi")
    node = {"source": "node", "type": "alert_finished", "detail": ""}
    assert event_words(node, VI) == ("Phát xong cảnh báo", "")
    state = {"source": "state", "type": "offline", "detail": "online → offline: clean_stop"}
    assert event_words(state, VI) == (
        "Mất kết nối",
        "Đang hoạt động → Mất kết nối: thiết bị tự ngắt",
    )
    unknown = {"source": "node", "type": "something_new", "detail": "x"}
    assert event_words(unknown, VI) == ("Sự kiện khác", "")


def said(reason: str) -> str:
    key, values = reason_key(reason)
    return VI(key, **values)


def test_why_a_live_broadcast_ended() -> None:
    assert said("stopped by canbo-tinh") == "canbo-tinh đã dừng"
    assert said("its longest time ran out") == "đã hết thời lượng tối đa"
    assert said("no audio source for 20 s") == "máy chủ không nhận được âm thanh quá lâu"
    assert said("weird") == "đã dừng"


def test_numbers_take_the_language_separator() -> None:
    assert num({"lang": "vi"}, 36.0, 1) == "36,0"
    assert num({"lang": "en"}, 36.0, 1) == "36.0"
    assert num({"lang": "vi"}, -2.5, 1, sign=True) == "-2,5"
    assert num({"lang": "vi"}, 1500, 0, sign=True) == "+1500"
    assert num({"lang": "vi"}, 70) == "70"
    assert num({"lang": "vi"}, None) == "—"


def test_days_as_people_type_them() -> None:
    from datetime import date

    assert day_from_text("05/12/2026") == date(2026, 12, 5)
    assert day_from_text(" 5/1/2027 ") == date(2027, 1, 5)
    assert day_from_text("2026-12-05") == date(2026, 12, 5)
    for slip in ("31/02/2026", "12/2026", "hôm nay", "31/12/9999", "01/01/0001", ""):
        assert day_from_text(slip) is None, slip


# How a followed feed's last poll went, as controller/bulletins/feeds.py records it.
POLLS = [
    ("ok", "đọc được", "read"),
    ("not modified", "không có gì mới", "nothing new"),
    ("HTTP 404", "máy chủ trả lời mã HTTP 404", "the server answered HTTP 404"),
    (
        "refused: not a public address allowed for feeds",
        "bị từ chối: không phải địa chỉ công cộng được phép",
        "refused: not a public address allowed for feeds",
    ),
    ("feed too large: more than 2 MB", "nguồn tin quá lớn", "the feed is too large"),
    (
        "not an RSS or Atom feed: junk",
        "không phải nguồn tin RSS hay Atom",
        "not an RSS or Atom feed",
    ),
    ("unreachable: ConnectError", "không kết nối được", "unreachable"),
    ("error", "lỗi khi đọc", "failed to read"),
]


@pytest.mark.parametrize(("status", "vi", "en"), POLLS)
def test_a_feeds_last_poll_is_read_in_the_readers_words(status: str, vi: str, en: str) -> None:
    assert (poll_status(status, VI), poll_status(status, EN)) == (vi, en)


def test_a_poll_status_no_pattern_knows_is_not_shown_in_english() -> None:
    assert poll_status("something new: 127.0.0.1", VI) == "" and poll_status(None, VI) == ""


# Why an item ended as it did, as a node reports it (docs/protocol.md, "Playing").
PLAYS = [
    ("live broadcast ended", "buổi nói trực tiếp đã kết thúc", "the live broadcast ended"),
    ("media not ready", "loa chưa có tệp âm thanh", "the loudspeaker did not have the audio"),
    ("late by 8200 ms", "trễ 8,2 giây", "8.2 s late"),
    ("removed in timeline v7", "đã bỏ khỏi lịch", "taken off the programme"),
    ("pre-empted by alert 5f1c", "nhường cho cảnh báo khẩn cấp", "gave way to an emergency alert"),
    (
        "preempted by flood (emergency)",
        "nhường cho bản tin ưu tiên hơn",
        "gave way to a more urgent item",
    ),
    ("stop command", "dừng theo lệnh", "stopped by a command"),
]


@pytest.mark.parametrize(("detail", "vi", "en"), PLAYS)
def test_why_an_item_ended_is_read_in_the_readers_words(detail: str, vi: str, en: str) -> None:
    assert (play_detail(detail, VI), play_detail(detail, EN)) == (vi, en)


def test_a_reason_no_pattern_knows_is_not_shown_in_english() -> None:
    assert play_detail("the dog ate it", VI) == "" and play_detail(None, EN) == ""


def test_every_alert_template_has_a_name_in_both_languages() -> None:
    from api.console.i18n import catalogue
    from controller.alerts.alert_templates import TEMPLATES

    for lang in ("vi", "en"):
        words = catalogue(lang)
        assert [k for k in TEMPLATES if f"alert.tpl_{k}" not in words] == [], lang
    # In Vietnamese the button says what is broadcast.
    assert all(catalogue("vi")[f"alert.tpl_{k}"] == title for k, (title, _) in TEMPLATES.items())
