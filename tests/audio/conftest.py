"""Shared fixtures for the audio tests: real espeak-ng speech synthesised once per test run."""

from __future__ import annotations

from pathlib import Path

import pytest

from audio import get_engine, normalize

TEXTS = {
    "short": "Xin chào bà con.",
    "numbers": "Ngày 14/01/2021 có 1.671 hộ, 81% dân số, giá 25.000đ/kg, ĐT 0912.345.678.",
    "long": (
        "UBND xã thông báo: từ 7h30 đến 11h ngày 15-17/3, trạm y tế xã tổ chức tiêm phòng "
        "cho trẻ em dưới 5 tuổi. Đề nghị các gia đình đưa con em đến đúng giờ, mang theo "
        "sổ tiêm chủng và thẻ BHYT. Mọi thắc mắc xin liên hệ số 0912.345.678. "
    )
    * 3,
}


@pytest.fixture(scope="session")
def speech_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One WAV per entry of TEXTS, spoken by the real espeak-ng vi voice."""
    directory = tmp_path_factory.mktemp("speech")
    engine = get_engine("espeak", voice="vi", rate_wpm=150)
    for name, text in TEXTS.items():
        engine.synthesize(normalize(text), directory / f"{name}.wav")
    return directory
