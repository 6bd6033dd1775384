"""Written Vietnamese to spoken words: exact expected readings for every rule."""

from __future__ import annotations

import unicodedata

import pytest

from audio import normalize, split_sentences
from audio.abbreviations import ABBREVIATIONS
from audio.normalize.numbers import cardinal

CASES: list[tuple[str, str]] = [
    # cardinals: mười/mươi, mốt, tư, lăm, linh, trăm/nghìn/triệu/tỷ
    ("10 hộ", "mười hộ"),
    ("15 hộ", "mười lăm hộ"),
    ("21 hộ", "hai mươi mốt hộ"),
    ("24 hộ", "hai mươi tư hộ"),
    ("105 hộ", "một trăm linh năm hộ"),
    ("1.671 hộ", "một nghìn sáu trăm bảy mươi mốt hộ"),
    ("năm 2021", "năm hai nghìn không trăm hai mươi mốt"),
    ("1.000.005 đồng", "một triệu không trăm linh năm đồng"),
    ("3.500.000.000 đồng", "ba tỷ năm trăm triệu đồng"),
    # decimals, percentages, money
    ("2,5 ha", "hai phẩy năm héc ta"),
    ("81%", "tám mươi mốt phần trăm"),
    ("0,05%", "không phẩy không năm phần trăm"),
    ("25.000đ", "hai mươi lăm nghìn đồng"),
    ("1,5 triệu đồng", "một phẩy năm triệu đồng"),
    ("1,25 triệu đ", "một phẩy hai mươi lăm triệu đồng"),
    ("25.000đ/kg", "hai mươi lăm nghìn đồng một ki lô gam"),
    # times
    ("7h30", "bảy giờ ba mươi phút"),
    ("14:00", "mười bốn giờ"),
    ("7h-11h", "bảy giờ đến mười một giờ"),
    ("từ 7h30 - 11h00", "từ bảy giờ ba mươi phút đến mười một giờ"),
    # dates
    ("14/01/2021", "ngày mười bốn tháng một năm hai nghìn không trăm hai mươi mốt"),
    ("ngày 2/9", "ngày hai tháng chín"),
    ("ngày 14-1", "ngày mười bốn tháng một"),
    ("ngày 15-17/3", "ngày mười lăm đến mười bảy tháng ba"),
    ("tháng 4", "tháng tư"),
    ("tháng 3/2021", "tháng ba năm hai nghìn không trăm hai mươi mốt"),
    ("Sáng 2/9, họp", "Sáng ngày hai tháng chín, họp"),
    # phone numbers
    ("0912.345.678", "không chín một hai, ba bốn năm, sáu bảy tám"),
    ("ĐT: 0987654321", "điện thoại: không chín tám bảy sáu năm bốn ba hai một"),
    ("gọi 024 3825 1234", "gọi không hai bốn, ba tám hai năm, một hai ba bốn"),
    # units
    ("50 kg", "năm mươi ki lô gam"),
    ("12 m3", "mười hai mét khối"),
    ("60 km/h", "sáu mươi ki lô mét trên giờ"),
    ("25-30°C", "hai mươi lăm đến ba mươi độ xê"),
    ("100mm", "một trăm mi li mét"),
    ("5 km", "năm ki lô mét"),
    ("3 m", "ba mét"),
    ("-5°C", "âm năm độ xê"),
    # ordinals and weekdays
    ("thứ 2", "thứ hai"),
    ("thứ 4", "thứ tư"),
    ("lần thứ 3", "lần thứ ba"),
    ("lần thứ 1", "lần thứ nhất"),
    ("Thứ 7, Chủ nhật", "Thứ bảy, Chủ nhật"),
    # Roman numerals after numbering words
    ("quý II", "quý hai"),
    ("khóa XV", "khóa mười lăm"),
    ("Đại hội lần thứ XIII", "Đại hội lần thứ mười ba"),
    ("thế kỷ XXI", "thế kỷ hai mươi mốt"),
    # addresses and document references
    ("số 12/3", "số mười hai trên ba"),
    ("Nghị quyết số 17/NQ-CP", "Nghị quyết số mười bảy trên en quy xê pê"),
    (
        "Nghị định 100/2019/NĐ-CP",
        "Nghị định một trăm trên hai nghìn không trăm mười chín trên en đê xê pê",
    ),
    # abbreviations
    ("UBND xã", "ủy ban nhân dân xã"),
    ("HĐND huyện", "hội đồng nhân dân huyện"),
    ("UBMTTQ xã", "ủy ban mặt trận tổ quốc xã"),
    ("Sở TT và TT", "Sở thông tin và truyền thông"),
    ("Sở TT&TT", "Sở thông tin và truyền thông"),
    (
        "CNTT, PCCC, BHYT, BHXH",
        "công nghệ thông tin, phòng cháy chữa cháy, bảo hiểm y tế, bảo hiểm xã hội",
    ),
    ("THCS và THPT", "trung học cơ sở và trung học phổ thông"),
    ("HTX, CSGT", "hợp tác xã, cảnh sát giao thông"),
    ("ĐT 741", "đường tỉnh bảy trăm bốn mươi mốt"),
    ("QL1A", "quốc lộ một a"),
    ("TP.HCM", "thành phố Hồ Chí Minh"),
    ("V/v tiêm phòng", "về việc tiêm phòng"),
    ("BTC", "bê tê xê"),
    # plain text and punctuation
    ("Xin chào bà con", "Xin chào bà con"),
    ("Hội nghị (mở rộng) - toàn xã", "Hội nghị, mở rộng, toàn xã"),
    ("THÔNG BÁO\nTiêm phòng", "THÔNG BÁO. Tiêm phòng"),
]


@pytest.mark.parametrize(("written", "spoken"), CASES)
def test_normalize_reads_like_an_announcer(written: str, spoken: str) -> None:
    assert normalize(written) == spoken


def test_table_is_large_enough() -> None:
    assert len(CASES) >= 40
    assert len(ABBREVIATIONS) >= 40


def test_nfc_is_applied_and_letters_are_kept() -> None:
    decomposed = "Thông báo của Ủy ban"
    assert normalize(unicodedata.normalize("NFD", decomposed)) == decomposed


def test_extra_abbreviations_extend_and_override() -> None:
    extra = {"HTX": "hợp tác xã nông nghiệp", "KDC": "khu dân cư"}
    assert normalize("HTX và KDC số 3", extra) == "hợp tác xã nông nghiệp và khu dân cư số ba"


@pytest.mark.parametrize(
    ("n", "words"),
    [(0, "không"), (11, "mười một"), (55, "năm mươi lăm"), (1010, "một nghìn không trăm mười"),
     (10**12, "một nghìn tỷ")],
)  # fmt: skip
def test_cardinal_edges(n: int, words: str) -> None:
    assert cardinal(n) == words


def test_split_sentences_keeps_abbreviation_dots() -> None:
    text = "TP. Hồ Chí Minh có 9 triệu dân. Xã ta họp lúc 7h!\nHết"
    assert split_sentences(text) == [
        "TP. Hồ Chí Minh có 9 triệu dân.",
        "Xã ta họp lúc 7h!",
        "Hết",
    ]


def test_announcement_set_is_read_exactly() -> None:
    from tests.audio.cases import load_cases

    cases = load_cases()
    assert len(cases) >= 60
    wrong = [(written, normalize(written), spoken) for written, spoken in cases
             if normalize(written) != spoken]  # fmt: skip
    assert wrong == [], f"{len(wrong)} of {len(cases)} sentences read differently"


@pytest.mark.parametrize(
    ("written", "spoken"),
    [("gọi ngay 114.", "gọi ngay một một bốn."), ("trực 24/24 giờ", "trực hai mươi tư trên hai mươi tư giờ"),
     ("cấp IV", "cấp bốn"), ("báo động III", "báo động ba"), ("thuế GTGT", "thuế giá trị gia tăng")],
)  # fmt: skip
def test_rules_added_for_the_announcement_set(written: str, spoken: str) -> None:
    assert normalize(written) == spoken
