"""Administrative abbreviations of Vietnamese notices and the rule that expands them."""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["ABBREVIATIONS", "expand_abbreviations"]

# Matching is case-sensitive and on whole tokens: "TP" expands, "tp" inside a word does not.
# Callers extend or override entries with an admin-managed dictionary (extra_abbreviations).
ABBREVIATIONS: dict[str, str] = {
    # Bodies of government and mass organisations
    "UBND": "ủy ban nhân dân",
    "HĐND": "hội đồng nhân dân",
    "UBMTTQ": "ủy ban mặt trận tổ quốc",
    "MTTQ": "mặt trận tổ quốc",
    "UBKT": "ủy ban kiểm tra",
    "BCH": "ban chấp hành",
    "BCĐ": "ban chỉ đạo",
    "HĐ": "hội đồng",
    "HND": "hội nông dân",
    "HLHPN": "hội liên hiệp phụ nữ",
    "LHPN": "liên hiệp phụ nữ",
    "ĐTNCS": "đoàn thanh niên cộng sản",
    "CCB": "cựu chiến binh",
    "HTX": "hợp tác xã",
    "CAND": "công an nhân dân",
    "QĐND": "quân đội nhân dân",
    "CSGT": "cảnh sát giao thông",
    "DQTV": "dân quân tự vệ",
    "ĐBQH": "đại biểu quốc hội",
    "XHCN": "xã hội chủ nghĩa",
    "CHXHCN": "cộng hòa xã hội chủ nghĩa",
    # Sectors
    "TT và TT": "thông tin và truyền thông",
    "TT&TT": "thông tin và truyền thông",
    "CNTT": "công nghệ thông tin",
    "NN&PTNT": "nông nghiệp và phát triển nông thôn",
    "TN&MT": "tài nguyên và môi trường",
    "GD&ĐT": "giáo dục và đào tạo",
    "LĐTB&XH": "lao động thương binh và xã hội",
    "KT-XH": "kinh tế xã hội",
    "PCCC": "phòng cháy chữa cháy",
    "PCTT": "phòng chống thiên tai",
    "TKCN": "tìm kiếm cứu nạn",
    "ANTT": "an ninh trật tự",
    "ATGT": "an toàn giao thông",
    "ATTP": "an toàn thực phẩm",
    "ATVSTP": "an toàn vệ sinh thực phẩm",
    "BHYT": "bảo hiểm y tế",
    "BHXH": "bảo hiểm xã hội",
    "BHTN": "bảo hiểm thất nghiệp",
    "GTGT": "giá trị gia tăng",
    "TNCN": "thu nhập cá nhân",
    "KHHGĐ": "kế hoạch hóa gia đình",
    "NTM": "nông thôn mới",
    "GPMB": "giải phóng mặt bằng",
    "CMND": "chứng minh nhân dân",
    "CCCD": "căn cước công dân",
    "SĐT": "số điện thoại",
    "ĐT": "điện thoại",
    "TTYT": "trung tâm y tế",
    "TYT": "trạm y tế",
    "BV": "bệnh viện",
    "THCS": "trung học cơ sở",
    "THPT": "trung học phổ thông",
    "MN": "mầm non",
    "COVID-19": "cô vít mười chín",
    # Places and roads
    "TP.HCM": "thành phố Hồ Chí Minh",
    "TP. HCM": "thành phố Hồ Chí Minh",
    "HCM": "Hồ Chí Minh",
    "TP.": "thành phố",
    "TP": "thành phố",
    "Tp.": "thành phố",
    "TX": "thị xã",
    "QL": "quốc lộ",
    "VN": "Việt Nam",
    # Documents, titles and letter headings
    "V/v": "về việc",
    "K/g": "kính gửi",
    "Đ/c": "đồng chí",
    "đ/c": "đồng chí",
    "QĐ": "quyết định",
    "NĐ": "nghị định",
    "NQ": "nghị quyết",
    "CT": "chủ tịch",
    "PCT": "phó chủ tịch",
    "GĐ": "giám đốc",
    "PGĐ": "phó giám đốc",
    "CN": "chủ nhật",
}

_TOKEN_START = r"(?<![^\W_])"
_TOKEN_END = r"(?![^\W\d_])"


def _pattern(table: Mapping[str, str]) -> re.Pattern[str]:
    # Longest first, so "UBMTTQ" wins over "MTTQ" and "TP.HCM" over "TP".
    keys = sorted(table, key=len, reverse=True)
    alternatives = "|".join(r"\s+".join(map(re.escape, key.split())) for key in keys)
    return re.compile(f"{_TOKEN_START}(?:{alternatives}){_TOKEN_END}")


_DEFAULT_PATTERN = _pattern(ABBREVIATIONS)


def expand_abbreviations(text: str, extra: Mapping[str, str] | None = None) -> str:
    """Replace every known abbreviation in `text`; `extra` entries add to or override the table."""
    table: Mapping[str, str] = ABBREVIATIONS
    pattern = _DEFAULT_PATTERN
    if extra:
        table = {**ABBREVIATIONS, **{k.strip(): v for k, v in extra.items() if k.strip()}}
        pattern = _pattern(table)
    lookup = {" ".join(key.split()): value for key, value in table.items()}

    def replace(match: re.Match[str]) -> str:
        expansion = lookup[" ".join(match.group(0).split())]
        # "QL1A" -> "quốc lộ 1A": keep the number apart from the expanded words.
        following = match.string[match.end() : match.end() + 1]
        return expansion + " " if following.isalnum() else expansion

    return pattern.sub(replace, text)
