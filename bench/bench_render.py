"""Render speed: the in-memory mastering against the ffmpeg-pass pipeline it replaced and
against bare espeak-ng synthesis plus one plain encode, all in the same run."""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from audio import MediaStore, Renderer, RenderSettings, normalize
from audio.engines.espeak import EspeakEngine
from audio.ffmpeg import run_ffmpeg
from audio.mastering import master
from audio.pcm_master import master_samples
from audio.speech import join_sentences, read_wav, speak_sentences

# About 60 words of a typical commune notice; ten of them make the long one.
PARAGRAPH = (
    "UBND xã thông báo: từ 7h30 đến 11h ngày 15-17/3, trạm y tế xã tổ chức tiêm phòng cho "
    "trẻ em dưới 5 tuổi tại nhà văn hóa thôn. Đề nghị các gia đình đưa con em đến đúng giờ, "
    "mang theo sổ tiêm chủng và thẻ BHYT. Mọi thắc mắc xin liên hệ ĐT 0912.345.678 hoặc "
    "cán bộ y tế thôn để được hướng dẫn."
)
# The goals' text: 30 s of speech (the chime and silences come on top).
THIRTY_S = PARAGRAPH + " Xin trân trọng cảm ơn bà con. Đề nghị các thôn thông báo rộng rãi."
TEXTS = {"~60 words": PARAGRAPH, "~600 words": " ".join([PARAGRAPH] * 10)}
GOAL_RENDER_S = 0.2
GOAL_FIRST_S = 0.05


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(run: Callable[[], object]) -> tuple[float, float]:
    """Wall seconds and CPU seconds (this process and its ffmpeg children) of one call."""
    cpu, children = time.process_time(), _children_cpu()
    started = time.perf_counter()
    run()
    wall = time.perf_counter() - started
    return wall, time.process_time() - cpu + _children_cpu() - children


def fresh_renderer(root: Path) -> Renderer:
    """A renderer with an empty store: nothing is a cache hit."""
    store_dir = Path(tempfile.mkdtemp(dir=root, prefix="store-"))
    return Renderer(MediaStore(store_dir), RenderSettings())


def render_now(root: Path, text: str) -> None:
    fresh_renderer(root).render_text(text)


def render_whole_encode(root: Path, text: str) -> None:
    """The render as it was before the encode was cut in two: one stream, one core."""
    import audio.pcm_master as mastering

    split_point = mastering._split_point
    mastering._split_point = lambda samples, rate: None  # type: ignore[assignment]
    try:
        render_now(root, text)
    finally:
        mastering._split_point = split_point  # type: ignore[assignment]


def render_before(root: Path, text: str) -> None:
    """The pipeline this one replaced, step by step: sentences joined by ffmpeg, then
    `audio.mastering.master` (chime and levels measured by ffmpeg, encoded and measured
    again until on target), then stored."""
    renderer = fresh_renderer(root)
    work = Path(tempfile.mkdtemp(dir=renderer.store.tmp_dir))
    spoken = renderer.spoken_text(text)
    parts = list(speak_sentences(spoken, renderer.engine("espeak"), work))
    join_sentences([part.wav for part in parts], work / "speech.wav")
    master(work / "speech.wav", work / "out.mp3", renderer.settings.mastering)
    renderer.store.put_file(work / "out.mp3", move=True)
    shutil.rmtree(work)


def bare_and_encode(engine: EspeakEngine, text: str, out: Path) -> None:
    """The floor: normalisation, one espeak-ng call for the whole text and one plain MP3
    encode of that PCM (no chime, no levels), with the renderer's encoder settings."""
    pcm, rate = engine.synthesize_pcm(normalize(text))
    run_ffmpeg(
        ["-y", "-f", "s16le", "-ar", str(rate), "-ac", "1", "-i", "pipe:0", "-c:a", "libmp3lame",
         "-b:a", "48k", "-compression_level", "7", "-f", "mp3", str(out)],
        input=pcm,
    )  # fmt: skip


def first_sentence_speech(root: Path, text: str) -> None:
    """Normalised and the first sentence spoken: what the progress display shows first."""
    work = Path(tempfile.mkdtemp(dir=root))
    next(fresh_renderer(root).render_sentences(text, work))


def first_sentence_mp3(root: Path, text: str) -> None:
    """Normalised, the first sentence spoken and mastered to a playable MP3 (chime included)."""
    renderer = fresh_renderer(root)
    work = Path(tempfile.mkdtemp(dir=root))
    first = next(renderer.render_sentences(text, work))
    speech, rate = read_wav(first.wav)
    master_samples(speech, rate, work / "first.mp3", renderer.settings.mastering)


def stage_costs(root: Path, runs: int) -> dict[str, list[float]]:
    """CPU seconds of each step of `runs` renders of THIRTY_S, by wrapping the functions the
    renderer calls: each step's own thread (the encode's figure includes its ffmpeg child),
    the whole mastering every thread of the process."""
    import audio.pcm_master as mastering
    import audio.render as rendering
    from audio.engines import espeak

    costs: dict[str, list[float]] = {}

    def wrap(
        owner: Any, name: str, label: str, clock: Callable[[], float] = time.thread_time
    ) -> None:
        original = getattr(owner, name)

        def counted(*args: Any, **kwargs: Any) -> Any:
            cpu = clock() + _children_cpu()
            try:
                return original(*args, **kwargs)
            finally:
                spent = clock() + _children_cpu() - cpu
                costs.setdefault(label, []).append(spent)

        setattr(owner, name, counted)

    wrap(rendering, "normalize", "normalise")
    wrap(espeak.EspeakEngine, "synthesize", "speak (all sentences)")
    wrap(rendering, "joined_samples", "join in memory")
    wrap(mastering, "integrated_lufs", "loudness (libebur128)")
    wrap(mastering, "_compress", "compressor (pedalboard)")
    wrap(mastering, "oversampled_peaks", "oversampled peaks (limiter)")
    wrap(mastering, "_finish", "gain and limiter")
    wrap(mastering, "_encode", "encode (LAME, in process, both parts)", time.process_time)
    wrap(mastering, "_decoded", "decode (miniaudio)")
    wrap(mastering, "true_peak_dbtp", "true peak of the decode")
    wrap(rendering, "master_samples", "mastering, all of it", time.process_time)
    for _ in range(runs):
        render_now(root, THIRTY_S)
    return costs


def summary(samples: list[tuple[float, float]]) -> tuple[float, float, float]:
    """Median wall, fastest wall and median CPU seconds."""
    walls = [wall for wall, _ in samples]
    return statistics.median(walls), min(walls), statistics.median(cpu for _, cpu in samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=9, help="runs of each row (median shown)")
    parser.add_argument(
        "--stages", action="store_true", help="also the CPU time of each step of a render"
    )
    args = parser.parse_args()
    engine = EspeakEngine()
    engine.synthesize_pcm("khởi động")  # first call loads the library; not part of the timing
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        result = fresh_renderer(root).render_text(THIRTY_S)  # warms imports and caches
        speech_s = len(engine.synthesize_pcm(normalize(THIRTY_S))[0]) / 2 / 22050
        rows: dict[str, Callable[[], object]] = {
            "render now (in-memory, encoded in two parts)": lambda: render_now(root, THIRTY_S),
            "render encoded in one part, same run": lambda: render_whole_encode(root, THIRTY_S),
            "render before (ffmpeg passes), same run": lambda: render_before(root, THIRTY_S),
            "bare espeak-ng + one plain encode": lambda: bare_and_encode(
                engine, THIRTY_S, root / "plain.mp3"
            ),
            "first sentence: speech ready": lambda: first_sentence_speech(root, THIRTY_S),
            "first sentence: mastered MP3 ready": lambda: first_sentence_mp3(root, THIRTY_S),
        }
        measured: dict[str, list[tuple[float, float]]] = {name: [] for name in rows}
        for _ in range(args.repeat):  # interleaved, so that load changes hit every row alike
            for name, run in rows.items():
                measured[name].append(timed(run))
        print(f"30 s text: {len(THIRTY_S.split())} words, {speech_s:.1f} s of speech, "
              f"{result.duration_s:.1f} s rendered (chime and silences included); "
              f"{args.repeat} runs each, load average {os.getloadavg()[0]:.1f} on "
              f"{os.cpu_count()} cores")  # fmt: skip
        header = f"{'':<46} {'median s':>9} {'fastest s':>9} {'CPU s':>7}"
        print(header + "\n" + "-" * len(header))
        for name, samples in measured.items():
            median, fastest, cpu = summary(samples)
            print(f"{name:<46} {median:>9.3f} {fastest:>9.3f} {cpu:>7.3f}")
        now = summary(measured["render now (in-memory, encoded in two parts)"])[0]
        first = summary(measured["first sentence: speech ready"])[0]
        first_mp3 = summary(measured["first sentence: mastered MP3 ready"])[0]
        print(
            f"\ngoal: 30 s of speech normalised and rendered in <= {GOAL_RENDER_S} s: "
            f"{'met' if now <= GOAL_RENDER_S else 'not met'} ({now:.3f} s median)"
        )
        print(f"goal: first sentence ready for preview in <= {GOAL_FIRST_S * 1000:.0f} ms: "
              f"speech {'met' if first <= GOAL_FIRST_S else 'not met'} ({first * 1000:.0f} ms), "
              f"mastered MP3 {'met' if first_mp3 <= GOAL_FIRST_S else 'not met'} "
              f"({first_mp3 * 1000:.0f} ms)")  # fmt: skip

        print(f"\n{'text':<11} {'words':>5} {'audio s':>8} {'render s':>9} {'RTF':>7}"
              f" {'before s':>9} {'espeak s':>9}")  # fmt: skip
        for label, text in TEXTS.items():
            renderer = fresh_renderer(root)
            started = time.perf_counter()
            rendered = renderer.render_text(text)
            render_s = time.perf_counter() - started
            before_s, _ = timed(lambda text=text: render_before(root, text))  # type: ignore[misc]
            started = time.perf_counter()
            engine.synthesize_pcm(normalize(text))
            raw_s = time.perf_counter() - started
            print(f"{label:<11} {len(text.split()):>5} {rendered.duration_s:>8.1f}"
                  f" {render_s:>9.3f} {render_s / rendered.duration_s:>7.4f}"
                  f" {before_s:>9.3f} {raw_s:>9.3f}")  # fmt: skip
        if args.stages:
            print(f"\nCPU ms per render of the 30 s text, by step (mean of {args.repeat}):")
            for step, spent in stage_costs(root, args.repeat).items():
                per_render = sum(spent) / args.repeat
                print(
                    f"  {step:<30} {per_render * 1000:>6.1f}  ({len(spent) / args.repeat:g} calls)"
                )
    print("\nCPU s counts this process and its ffmpeg children; the machine is shared, so the")
    print("median of interleaved runs and the CPU time say more than one run's wall time.")
    print(f"(numpy {np.__version__}; the 30 s row renders a new store each run: no cache hits.)")


if __name__ == "__main__":
    main()
