"""In-process binding to libespeak-ng (from the espeakng-loader wheel) through ctypes."""

from __future__ import annotations

import ctypes
import threading
from pathlib import Path

from audio.errors import EngineUnavailable

__all__ = ["EspeakLibrary", "load_library"]

# Values from espeak-ng's speak_lib.h.
_AUDIO_OUTPUT_SYNCHRONOUS = 0x02
_INITIALIZE_DONT_EXIT = 0x8000
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_PARAM_RATE = 1
_PARAM_VOLUME = 2
_PARAM_PITCH = 3
_EE_OK = 0
# At the default volume (100) the vi voice saturates near full scale; at 60 its peaks stay
# about 2.5 dB below, and mastering sets the final level anyway.
_VOLUME = 60
_DEFAULT_PITCH = 50

_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)

# libespeak-ng keeps one global synthesiser: every call into it goes through this lock.
_LOCK = threading.Lock()
_LOADED: EspeakLibrary | None = None
_LOAD_ERROR: EngineUnavailable | None = None


class EspeakLibrary:
    """The initialised library; `synthesize` returns 16-bit mono PCM at `sample_rate`.

    The synthesiser carries state from one utterance to the next (re-initialising does not
    reset it), so the same text may differ by a few samples between calls in one process.
    Renders are cached by text and settings, not by audio, so this costs nothing.
    """

    def __init__(self, lib: ctypes.CDLL, data_path: str) -> None:
        self._lib = lib
        self._chunks: list[bytes] = []
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
            ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]  # fmt: skip
        rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path.encode(), _INITIALIZE_DONT_EXIT
        )
        if rate <= 0:
            raise EngineUnavailable(f"espeak-ng failed to initialise with data at {data_path}")
        self.sample_rate: int = rate
        # Kept on the instance: ctypes would free the trampoline if nothing referenced it.
        self._callback = _SynthCallback(self._collect)
        lib.espeak_SetSynthCallback(self._callback)

    def _collect(self, wav: ctypes.Array[ctypes.c_short], count: int, _events: int) -> int:
        if wav and count > 0:
            self._chunks.append(ctypes.string_at(wav, count * 2))
        return 0

    def synthesize(self, text: str, voice: str, rate_wpm: int, pitch: int | None) -> bytes:
        """Speak `text` with `voice`; returns raw little-endian 16-bit samples."""
        encoded = text.encode("utf-8")
        with _LOCK:
            if self._lib.espeak_SetVoiceByName(voice.encode()) != _EE_OK:
                raise EngineUnavailable(f"espeak-ng has no voice named {voice!r}")
            self._lib.espeak_SetParameter(_PARAM_RATE, rate_wpm, 0)
            self._lib.espeak_SetParameter(_PARAM_VOLUME, _VOLUME, 0)
            # Set every time: the library remembers the previous caller's pitch.
            self._lib.espeak_SetParameter(
                _PARAM_PITCH, _DEFAULT_PITCH if pitch is None else pitch, 0
            )
            self._chunks = []
            status = self._lib.espeak_Synth(
                encoded, len(encoded) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None
            )
            self._lib.espeak_Synchronize()
            pcm, self._chunks = b"".join(self._chunks), []
        if status != _EE_OK:
            raise EngineUnavailable(f"espeak-ng refused the text (status {status})")
        return pcm


def load_library() -> EspeakLibrary:
    """The process-wide library, initialised on first use; EngineUnavailable if it cannot load."""
    global _LOADED, _LOAD_ERROR
    with _LOCK:
        if _LOADED is not None:
            return _LOADED
        if _LOAD_ERROR is not None:
            raise _LOAD_ERROR
        try:
            import espeakng_loader

            lib_path = Path(espeakng_loader.get_library_path())
            data_path = str(espeakng_loader.get_data_path())
            _LOADED = EspeakLibrary(ctypes.CDLL(str(lib_path)), data_path)
        except EngineUnavailable as exc:
            _LOAD_ERROR = exc
            raise
        except (ImportError, OSError, AttributeError) as exc:
            # Remembered so that every announcement does not retry a broken install.
            _LOAD_ERROR = EngineUnavailable(f"libespeak-ng could not be loaded: {exc}")
            raise _LOAD_ERROR from exc
        return _LOADED
