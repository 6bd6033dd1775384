"""Things spelled rather than counted: phone numbers, document codes, addresses, letter codes."""

from __future__ import annotations

import re

from audio.normalize.numbers import cardinal, digits

__all__ = [
    "LETTER_NAMES",
    "read_addresses",
    "read_admin_units",
    "read_km_posts",
    "read_legal_references",
    "read_letter_codes",
    "read_number_letters",
    "read_phones_and_roads",
    "spell",
    "spell_consonant_codes",
]

# Letter names as announcers spell codes ("NQ-CP" -> "en quy xê pê"): the short
# alphabet names, with "e lờ", "e rờ" kept long because "lờ"/"rờ" alone are hard to hear.
LETTER_NAMES: dict[str, str] = {
    "A": "a", "Ă": "á", "Â": "ớ", "B": "bê", "C": "xê", "D": "dê", "Đ": "đê",
    "E": "e", "Ê": "ê", "F": "ép", "G": "giê", "H": "hát", "I": "i", "J": "gi",
    "K": "ca", "L": "e lờ", "M": "em", "N": "en", "O": "o", "Ô": "ô", "Ơ": "ơ",
    "P": "pê", "Q": "quy", "R": "e rờ", "S": "ét", "T": "tê", "U": "u", "Ư": "ư",
    "V": "vê", "W": "vê kép", "X": "ích", "Y": "i dài", "Z": "dét",
}  # fmt: skip

_CAPS = "A-ZĐĂÂÊÔƠƯ"
_VOWELS = set("AĂÂEÊIOÔƠUƯY")

# "0912.345.678", "0912 345 678", "0987654321", "024.3825.1234": groups of digits joined by
# single dots or spaces; the digit count (10 or 11) is checked in code, not in the pattern.
_PHONE = re.compile(r"(?<![\w.,])0\d{1,10}(?:[ .]\d{2,10})*(?![\w])(?![.,]\d)")
_ROAD = re.compile(r"(?<![^\W_])ĐT\s*[.:]?\s*(?=\d)")
# "17/NQ-CP", "100/2019/NĐ-CP", "01/QĐ-UBND": number, optional year, then a letter code;
# Party documents put a dash first ("05-NQ/ĐU", "15-CT/TU"), and a code may end in a number
# ("31/2024/QH15").
_CODE_PART = rf"[{_CAPS}]+\d*"
_LEGAL = re.compile(
    rf"(?<![\w/])(\d+)((?:/\d{{2,4}})*)([-/])({_CODE_PART}(?:[-&./]{_CODE_PART})*)(?![\w])"
)
_CODE_RUNS = re.compile(rf"[{_CAPS}]+|\d+")
_ADDRESS = re.compile(r"(?i:\b(số|ngõ|ngách|hẻm|kiệt|nhà|phòng))\s+(\d+(?:/\d+)+)(?![\w/])")
# Short service numbers ("gọi 114") are dialled, so they are read digit by digit.
_HOTLINE = re.compile(
    r"(?i:\b(gọi|tổng đài|đường dây nóng|hotline|qua số|số điện thoại)(?:\s+(?:ngay|số))?)"
    r"\s+(1\d{2,3})(?![\w/])(?![.,]\d)"
)
# Hotlines of the 1800 (free) and 1900 (paid) kinds: "1800 1091", "1900.6769", "19009068".
_SERVICE = re.compile(
    r"(?<![\w.,/])(1[89]00)[ .]?(\d{4}|\d{6}|\d{2}[ .]\d{2}|\d{3}[ .]\d{3}|\d{2}[ .]\d{2}[ .]\d{2})"
    r"(?![\w])(?![.,]\d)"
)
# Kilometre posts with optional chainage: "Km12+500", "Km 15", "K12+300", "km 5+400".
_KM_POST = re.compile(
    r"(?<![\w])(?:(?:Km|KM)\s?(\d+)(?:\s?\+\s?(\d+))?|(?:km|K)\s?(\d+)\s?\+\s?(\d+))(?![\w])"
)
# "P. 12, Q. 3", "X. Tân Lập, H. Đồng Phú": a unit letter with a dot at the start of an
# address element (after a comma, "tại", "trú"...), so initials in names are left alone.
_ADMIN_UNITS = {"P": "phường", "Q": "quận", "X": "xã", "H": "huyện", "TT": "thị trấn",
                "TX": "thị xã", "TP": "thành phố", "Tp": "thành phố"}  # fmt: skip
_ADMIN_UNIT = re.compile(
    r"(^|[,;:(]\s*|(?i:\b(?:tại|trú|ở|thuộc|địa\s+chỉ|về)\s+))"
    rf"({'|'.join(_ADMIN_UNITS)})\.\s*(?=\d|[{_CAPS}])",
    re.MULTILINE,
)
# Letters then a number: "hạng B2", "A1", "kênh N2", "H5N1", "PM2.5".
_LETTER_CODE = re.compile(
    rf"(?<![\w.,/+-])([{_CAPS}]{{1,3}})(\d+(?:\.\d+)?)((?:[{_CAPS}]+\d*)*)(?![\w])(?!-\d)"
)
_NUMBER_LETTER = re.compile(rf"(?<![\w.,])(\d+)([{_CAPS}])(?![\w])")
_CONSONANT_CODE = re.compile(rf"(?<![\w])[{_CAPS}]{{2,6}}(?![\w])")


def spell(code: str) -> str:
    """Letter by letter, digits by digit: "NĐ-CP" -> "en đê xê pê"."""
    words = []
    for char in code:
        if char.upper() in LETTER_NAMES:
            words.append(LETTER_NAMES[char.upper()])
        elif char.isdigit():
            words.append(digits(char))
    return " ".join(words)


def _spell_code(code: str) -> str:
    """ "NQ/ĐU" -> "en quy trên đê u", "QH15" -> "quy hát mười lăm": slashes are "trên"."""
    return " trên ".join(
        " ".join(spell(run) if not run.isdigit() else cardinal(int(run))
                 for run in _CODE_RUNS.findall(part))
        for part in code.split("/")
    )  # fmt: skip


def _phone_prefix(groups: list[str]) -> int:
    """How many leading groups make a 10- or 11-digit phone number, or 0 if none do."""
    total, best = 0, 0
    for index, group in enumerate(groups, start=1):
        total += len(group)
        if total in (10, 11):
            best = index
        if total >= 11:
            break
    return best


def _read_phone(match: re.Match[str]) -> str:
    raw = match.group(0)
    groups = re.split(r"[ .]", raw)
    used = _phone_prefix(groups)
    if not used:
        return raw
    # Pauses where the writer put separators help listeners note the number down.
    spoken = ", ".join(digits(group) for group in groups[:used])
    rest = " ".join(groups[used:])
    return f"{spoken} {rest}" if rest else spoken


def _read_service_number(match: re.Match[str]) -> str:
    """ "1800 1091" -> "một tám không không, một không chín một": a pause after the prefix."""
    groups = (match.group(1), *re.split(r"[ .]", match.group(2)))
    return ", ".join(digits(group) for group in groups)


def _is_phone_ahead(text: str) -> bool:
    match = _PHONE.match(text)
    return bool(match and _phone_prefix(re.split(r"[ .]", match.group(0))))


def read_phones_and_roads(text: str) -> str:
    """Phone and service numbers digit by digit; "ĐT" before a road number is "đường tỉnh"."""

    def road(match: re.Match[str]) -> str:
        if _is_phone_ahead(text[match.end() :]):
            return match.group(0)
        # "đường ĐT 741" must not become "đường đường tỉnh".
        before = text[: match.start()].rstrip().lower()
        return "tỉnh " if before.endswith("đường") else "đường tỉnh "

    text = _ROAD.sub(road, text)
    text = _SERVICE.sub(_read_service_number, text)
    text = _HOTLINE.sub(lambda m: m.group(0)[: m.start(2) - m.start()] + digits(m.group(2)), text)
    return _PHONE.sub(_read_phone, text)


def read_legal_references(text: str) -> str:
    """ "17/NQ-CP" -> "mười bảy trên en quy xê pê": slashes are "trên", dashes are silent."""

    def replace(match: re.Match[str]) -> str:
        number, years, separator, code = match.groups()
        parts = [cardinal(int(number))]
        parts += [cardinal(int(year)) for year in years.split("/") if year]
        # The dash of "05-NQ/ĐU" is silent; slashes are "trên".
        head = " trên ".join(parts)
        return f"{head} {'trên ' if separator == '/' else ''}{_spell_code(code)}"

    return _LEGAL.sub(replace, text)


def read_km_posts(text: str) -> str:
    """ "Km12+500" -> "ki lô mét mười hai cộng năm trăm"."""

    def replace(match: re.Match[str]) -> str:
        post = match.group(1) or match.group(3)
        chainage = match.group(2) or match.group(4)
        words = f"ki lô mét {cardinal(int(post))}"
        return f"{words} cộng {cardinal(int(chainage))}" if chainage else words

    return _KM_POST.sub(replace, text)


def read_admin_units(text: str) -> str:
    """ "P. 12, Q. 3" -> "phường 12, quận 3" at the start of address elements."""
    return _ADMIN_UNIT.sub(lambda m: f"{m.group(1)}{_ADMIN_UNITS[m.group(2)]} ", text)


def read_letter_codes(text: str) -> str:
    """Letters followed by a number: "B2" -> "bê hai", "PM2.5" -> "pê em hai chấm năm"."""

    def replace(match: re.Match[str]) -> str:
        letters, number, rest = match.groups()
        whole, _, decimal = number.partition(".")
        spoken = cardinal(int(whole)) + (f" chấm {digits(decimal)}" if decimal else "")
        tail = _spell_code(rest) if rest else ""
        return " ".join(part for part in (spell(letters), spoken, tail) if part)

    return _LETTER_CODE.sub(replace, text)


def read_addresses(text: str) -> str:
    """ "số 12/3" -> "số mười hai trên ba" (the common Northern reading of house numbers)."""

    def replace(match: re.Match[str]) -> str:
        numbers = " trên ".join(cardinal(int(part)) for part in match.group(2).split("/"))
        return f"{match.group(1)} {numbers}"

    return _ADDRESS.sub(replace, text)


def read_number_letters(text: str) -> str:
    """Road and class codes: "1A" -> "một a", "9B" -> "chín bê"."""
    return _NUMBER_LETTER.sub(
        lambda m: f"{cardinal(int(m.group(1)))} {LETTER_NAMES[m.group(2)]}", text
    )


def spell_consonant_codes(text: str) -> str:
    """Capitals without a vowel ("BTC", "KCN") cannot be words, so they are spelled out."""

    def replace(match: re.Match[str]) -> str:
        code = match.group(0)
        return code if _VOWELS & set(code) else spell(code)

    return _CONSONANT_CODE.sub(replace, text)
