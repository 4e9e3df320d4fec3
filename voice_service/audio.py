"""G.711 mu-law and WAV helpers for the simulator and the test agent (numpy; `audioop` is gone in Python 3.13).

The sidecar itself never transcodes: Twilio and Deepgram both speak mulaw 8 kHz, so this module is only
imported by tools that turn WAV files into phone audio and back.
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

RATE = 8000
FRAME_BYTES = 160  # 20 ms of mulaw at 8 kHz: one Twilio media frame
_BIAS = 0x84


def mulaw_encode(samples: np.ndarray) -> bytes:
    """16-bit linear PCM -> mu-law bytes (ITU-T G.711 on 14 bits, bit-exact with audioop.lin2ulaw)."""
    x = samples.astype(np.int32) >> 2
    negative = x < 0
    magnitude = np.minimum(np.where(negative, -x, x), 8159) + (_BIAS >> 2)
    segment = np.clip(np.floor(np.log2(magnitude)).astype(np.int32) - 5, 0, 7)
    value = np.where(magnitude > 0x1FFF, 0x7F, (segment << 4) | ((magnitude >> (segment + 1)) & 0x0F))
    return (value ^ np.where(negative, 0x7F, 0xFF)).astype(np.uint8).tobytes()


def mulaw_decode(data: bytes) -> np.ndarray:
    """mu-law bytes -> 16-bit linear PCM."""
    u = ~np.frombuffer(data, dtype=np.uint8).astype(np.int32) & 0xFF
    exponent = (u >> 4) & 0x07
    magnitude = (((u & 0x0F) << 3) + _BIAS) << exponent
    return np.where(u & 0x80, _BIAS - magnitude, magnitude - _BIAS).astype(np.int16)


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Float samples at `from_rate` -> `to_rate`: a windowed-sinc low-pass (no aliasing when going down),
    then linear interpolation onto the new time grid. Plenty for speech on a phone line."""
    if from_rate == to_rate or samples.size == 0:
        return samples.astype(np.float64)
    x = samples.astype(np.float64)
    if to_rate < from_rate:
        cutoff = 0.45 * to_rate / from_rate  # cycles per input sample, just under the new Nyquist
        taps = np.arange(-64, 65)
        kernel = 2 * cutoff * np.sinc(2 * cutoff * taps) * np.hamming(taps.size)
        x = np.convolve(x, kernel / kernel.sum(), mode="same")
    duration = x.size / from_rate
    grid = np.arange(int(duration * to_rate)) / to_rate
    return np.interp(grid, np.arange(x.size) / from_rate, x)


def read_wav_as_mulaw(path: str | Path) -> bytes:
    """Any PCM WAV (8/16/24/32-bit, any rate, mono or stereo) -> mulaw 8 kHz mono."""
    with wave.open(str(path), "rb") as wav:
        channels, width, rate = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
        raw = wav.readframes(wav.getnframes())
    if width == 1:
        samples = (np.frombuffer(raw, dtype=np.uint8).astype(np.float64) - 128) * 256
    elif width == 2:
        samples = np.frombuffer(raw, dtype="<i2").astype(np.float64)
    elif width == 3:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        samples = (((b[:, 2] << 24) | (b[:, 1] << 16) | (b[:, 0] << 8)) >> 16).astype(np.float64)
    elif width == 4:
        samples = np.frombuffer(raw, dtype="<i4").astype(np.float64) / 65536
    else:
        raise ValueError(f"unsupported WAV sample width: {width} bytes")
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1)
    pcm = np.clip(np.round(resample(samples, rate, RATE)), -32768, 32767).astype(np.int16)
    return mulaw_encode(pcm)


def write_mulaw_as_wav(path: str | Path, data: bytes) -> None:
    """Save mulaw 8 kHz as an ordinary 16-bit PCM WAV any player opens."""
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(mulaw_decode(data).astype("<i2").tobytes())


def tone(seconds: float, frequency: float = 440.0, amplitude: float = 6000.0) -> bytes:
    """A soft tone in mulaw: the test agent's stand-in for speech."""
    t = np.arange(int(seconds * RATE)) / RATE
    envelope = np.minimum(1.0, np.minimum(t, t[::-1] if t.size else t) * 50)  # 20 ms fade in and out
    return mulaw_encode((amplitude * envelope * np.sin(2 * np.pi * frequency * t)).astype(np.int16))


SILENCE_BYTE = 0xFF  # mu-law for zero
