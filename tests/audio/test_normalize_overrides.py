"""Inline overrides: `[[shown|reading]]` fixes one reading in one announcement."""

from __future__ import annotations

import pytest

from audio import find_overrides, normalize, shown_text, split_sentences
from audio.normalize import Override


@pytest.mark.parametrize(
    ("written", "spoken"),
    [
        ("Mời [[UBND|ủy ban nhân dân]] xã họp.", "Mời ủy ban nhân dân xã họp."),
        # The reading passes every rule untouched: digits, capitals, slashes and codes stay.
        ("Tại [[Km12+500|cây số 12]] hôm nay.", "Tại cây số 12 hôm nay."),
        ("Theo [[05-NQ/ĐU|nghị quyết số 5 của Đảng ủy]].", "Theo nghị quyết số 5 của Đảng ủy."),
        ("[[HTX Ea Kar|hợp tác xã Ê a Ca]] thông báo", "hợp tác xã Ê a Ca thông báo"),
        # The rest of the text is read as always, around the override.
        ("Lúc 7h, [[TDP|tổ dân phố]] số 3 họp", "Lúc bảy giờ, tổ dân phố số ba họp"),
        # Spaces inside an override are tidied; several overrides keep their order.
        ("[[A| ây  ]] và [[B|bi]]", "ây và bi"),
    ],
)
def test_override_reading_is_spoken_as_written(written: str, spoken: str) -> None:
    assert normalize(written) == spoken


def test_without_override_the_rules_read_the_same_words() -> None:
    assert normalize("Tại Km12+500 hôm nay.") == "Tại ki lô mét mười hai cộng năm trăm hôm nay."
    assert normalize("UBND") == "ủy ban nhân dân"


def test_override_wins_over_the_dictionary() -> None:
    extra = {"Ea Kar": "Ê a Ca"}
    assert normalize("Xã [[Ea Kar|Ia Ca]] và Ea Kar", extra) == "Xã Ia Ca và Ê a Ca"


def test_overrides_and_what_is_shown() -> None:
    text = "Mời [[UBND|ủy ban nhân dân]] và [[ HĐND |hội đồng nhân dân]] dự họp."
    assert shown_text(text) == "Mời UBND và HĐND dự họp."
    assert find_overrides(text) == [
        Override("UBND", "ủy ban nhân dân"),
        Override("HĐND", "hội đồng nhân dân"),
    ]


@pytest.mark.parametrize("written", ["[[UBND]] họp", "[[UBND|]] họp", "[[UBND|  ]] họp"])
def test_incomplete_markup_is_not_an_override(written: str) -> None:
    assert find_overrides(written) == []
    assert shown_text(written) == written


def test_private_use_characters_in_the_text_cannot_pose_as_overrides() -> None:
    assert normalize("Họp \ue000 [[A|ây]] \ue001 nhé") == "Họp ây nhé"


def test_an_override_keeps_its_sentence_boundaries() -> None:
    spoken = normalize("Thông báo của [[TP.|thành phố]]. Mời dự họp.")
    assert split_sentences(spoken) == ["Thông báo của thành phố.", "Mời dự họp."]
