"""Administrative abbreviations of Vietnamese notices and the rule that expands them."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

__all__ = ["ABBREVIATIONS", "CONTEXTUAL_ABBREVIATIONS", "expand_abbreviations"]

# Matching is case-sensitive and on whole tokens: "TP" expands, "tp" inside a word does not.
# Callers extend or override entries with an admin-managed dictionary (extra_abbreviations).
ABBREVIATIONS: dict[str, str] = {
    # Bodies of government and mass organisations
    "UBND": "ủy ban nhân dân",
    "HĐND": "hội đồng nhân dân",
    "UBMTTQ": "ủy ban mặt trận tổ quốc",
    "MTTQ": "mặt trận tổ quốc",
    "UBKT": "ủy ban kiểm tra",
    "BCH": "ban chấp hành",  # "ban chỉ huy" before military and disaster words, see below
    "BCHQS": "ban chỉ huy quân sự",
    "CHQS": "chỉ huy quân sự",
    "NVQS": "nghĩa vụ quân sự",
    "DQCĐ": "dân quân cơ động",
    "DQTT": "dân quân thường trực",
    "TW": "trung ương",
    "TƯ": "trung ương",
    "T.Ư": "trung ương",
    "PBT": "phó bí thư",
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
    "HKTT": "hộ khẩu thường trú",
    "TDP": "tổ dân phố",
    "KDC": "khu dân cư",
    "BVTV": "bảo vệ thực vật",
    "LMLM": "lở mồm long móng",
    "TBA": "trạm biến áp",
    "MBA": "máy biến áp",
    "USD": "đô la Mỹ",
    # Letter codes with a vowel are not spelled by the generic rule (they could be words).
    "ATM": "a tê em",
    "OTP": "ô tê pê",
    "UV": "u vê",
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

# Abbreviations whose reading depends on the words that follow: (pattern matched right after
# the abbreviation, reading) in order; the first match wins, and without one the plain table
# applies (or, for a key not in it, the text is left as written).
CONTEXTUAL_ABBREVIATIONS: dict[str, tuple[tuple[str, str], ...]] = {
    # The command of the military and of disaster response vs the executive committee of
    # the Party, the Youth Union and the mass organisations.
    "BCH": (
        (r"\s+(?:(?i:quân\s+sự|phòng,?\s+chống|phòng\s+thủ|phòng\s+cháy|tìm\s+kiếm)"
         r"|QS|PCTT|TKCN|PCCC|PCCCR|PTDS)\b", "ban chỉ huy"),
    ),
    # "SN 1990" is a year of birth; "SN 12" a house number.
    "SN": ((r"\s*:?\s*(?:19|20)\d\d\b", "sinh năm"), (r"\s*:?\s*\d", "số nhà")),
}  # fmt: skip
_CONTEXT_PATTERNS = {
    key: tuple((re.compile(pattern), reading) for pattern, reading in rules)
    for key, rules in CONTEXTUAL_ABBREVIATIONS.items()
}

_TOKEN_START = r"(?<![^\W_])"
_TOKEN_END = r"(?![^\W\d_])"


def _pattern(*tables: Iterable[str]) -> re.Pattern[str]:
    # Longest first, so "UBMTTQ" wins over "MTTQ" and "TP.HCM" over "TP".
    keys = sorted({key for table in tables for key in table}, key=len, reverse=True)
    alternatives = "|".join(r"\s+".join(map(re.escape, key.split())) for key in keys)
    return re.compile(f"{_TOKEN_START}(?:{alternatives}){_TOKEN_END}")


_DEFAULT_PATTERN = _pattern(CONTEXTUAL_ABBREVIATIONS, ABBREVIATIONS)


def expand_abbreviations(text: str, extra: Mapping[str, str] | None = None) -> str:
    """Replace every known abbreviation in `text`; `extra` entries add to or override the table."""
    table: Mapping[str, str] = ABBREVIATIONS
    pattern = _DEFAULT_PATTERN
    overridden: set[str] = set()
    if extra:
        overrides = {k.strip(): v for k, v in extra.items() if k.strip()}
        overridden = set(overrides)
        table = {**ABBREVIATIONS, **overrides}
        pattern = _pattern(CONTEXTUAL_ABBREVIATIONS, table)
    lookup = {" ".join(key.split()): value for key, value in table.items()}

    def replace(match: re.Match[str]) -> str:
        key = " ".join(match.group(0).split())
        expansion = lookup.get(key)
        if key in _CONTEXT_PATTERNS and key not in overridden:
            for context, reading in _CONTEXT_PATTERNS[key]:
                if context.match(match.string, match.end()):
                    expansion = reading
                    break
        if expansion is None:
            return match.group(0)
        # "QL1A" -> "quốc lộ 1A": keep the number apart from the expanded words.
        following = match.string[match.end() : match.end() + 1]
        return expansion + " " if following.isalnum() else expansion

    return pattern.sub(replace, text)
