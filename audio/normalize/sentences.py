"""Sentence splitting and the punctuation tidy-up that shapes the pauses of synthetic speech."""

from __future__ import annotations

import re

__all__ = ["prepare_lines", "split_sentences", "tidy_punctuation"]

# Words that end with a dot without ending a sentence ("TP. Hồ Chí Minh", "ThS. Nguyễn").
_DOTTED_WORDS = frozenset(
    {"TP", "Tp", "TX", "TT", "Q", "P", "H", "X", "GS", "PGS", "TS", "ThS", "BS", "KS", "CN", "v.v"}
)
_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"”')\]]*\s+")
_LAST_WORD = re.compile(r"([^\W\d_][\w.]*)\.$")


def split_sentences(text: str) -> list[str]:
    """Sentences of `text` with their end punctuation; line breaks always end a sentence."""
    sentences: list[str] = []
    for line in text.splitlines():
        pending = ""
        start = 0
        for match in _SENTENCE_END.finditer(line):
            piece = line[start : match.end()].strip()
            start = match.end()
            last = _LAST_WORD.search(piece)
            if last and (last.group(1) in _DOTTED_WORDS or len(last.group(1)) == 1):
                pending = f"{pending} {piece}".strip()
                continue
            sentences.append(f"{pending} {piece}".strip())
            pending = ""
        tail = f"{pending} {line[start:].strip()}".strip()
        if tail:
            sentences.append(tail)
    return [sentence for sentence in sentences if any(ch.isalnum() for ch in sentence)]


_TYPOGRAPHY = str.maketrans({"–": "-", "—": "-", "‐": "-", "−": "-", "“": '"', "”": '"',
                             "‘": "'", "’": "'", "\u00a0": " ", "\t": " "})  # fmt: skip
_BULLET = re.compile(r"^\s*(?:[-+*•●▪]|\d+[.)])\s+", re.MULTILINE)
_SPACED_DASH = re.compile(r"[ ]+-[ ]+")
_BRACKETS = re.compile(r"[ ]*[()\[\]{}][ ]*")
_SYMBOLS = {"&": " và ", "+": " cộng ", "=": " bằng ", "%": " phần trăm ", "/": " ", "-": " ",
            "\"": " ", "*": " ", "#": " ", "_": " ", "~": " khoảng "}  # fmt: skip
_SYMBOL = re.compile("|".join(map(re.escape, _SYMBOLS)))
_SPACE_BEFORE_MARK = re.compile(r"[ ]+([,.;:!?…])")
_REPEATED_MARKS = re.compile(r"([,;:])(?:[ ]*[,;:])+|,[ ]*([.!?])|([.!?])[ ]*[,;:]")
_SPACES = re.compile(r"[ ]{2,}")


def prepare_lines(text: str) -> str:
    """Typographic variants made plain, list bullets dropped, one line per sentence or heading."""
    text = _BULLET.sub("", text.translate(_TYPOGRAPHY))
    lines = [" ".join(line.split()) for line in text.splitlines()]
    lines = [line for line in lines if line]
    # A heading or list item without end punctuation still deserves a sentence pause.
    return "\n".join(
        line if line[-1] in ".!?…:;," or index == len(lines) - 1 else line + "."
        for index, line in enumerate(lines)
    )


def tidy_punctuation(text: str) -> str:
    """Leftover symbols spoken or dropped; dashes and brackets become commas (short pauses)."""
    text = _SPACED_DASH.sub(", ", text)
    text = _BRACKETS.sub(", ", text)
    text = _SYMBOL.sub(lambda m: _SYMBOLS[m.group(0)], text)
    text = _SPACE_BEFORE_MARK.sub(r"\1", text)
    text = _REPEATED_MARKS.sub(lambda m: m.group(3) or m.group(2) or m.group(1), text)
    lines = [_SPACES.sub(" ", line).lstrip(" ,;:").rstrip(" ,;") for line in text.splitlines()]
    return "\n".join(line for line in lines if line)
