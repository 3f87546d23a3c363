"""Streaming log-mel frames, one per 10 ms hop, numerically equal to librosa's.

The models were specified against librosa's log-mel spectrogram (Slaney mel scale, Slaney area
normalisation, periodic Hann window, ``power_to_db(ref=1, amin=1e-10, top_db=80)``), and the
trainer computes features offline. To keep the stomp-box light, nothing here imports librosa:
the filterbank is rebuilt in numpy and tested against librosa in ``tests/features``.

The extractor is *streaming*: each ``push`` takes one hop of new samples and returns the frame
whose window ends at the newest sample (librosa's ``center=False`` framing). All buffers are
allocated once in ``__init__``; ``push`` writes into them, so the per-hop path allocates nothing
beyond the output of ``np.fft.rfft``.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from kelly_edge.models import spec

log = logging.getLogger(__name__)

AMIN = 1e-10
"""Power floor before ``log10`` (librosa's ``amin``): -100 dB."""

_F_SP = 200.0 / 3.0  # Slaney: Hz per mel below 1 kHz
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP  # 15 mel
_LOGSTEP = math.log(6.4) / 27.0


def hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney mel of frequencies in Hz: linear below 1 kHz, logarithmic above. ``(n,) float64``."""
    hz = np.asarray(hz, dtype=np.float64)
    mel = hz / _F_SP
    high = hz >= _MIN_LOG_HZ
    mel[high] = _MIN_LOG_MEL + np.log(hz[high] / _MIN_LOG_HZ) / _LOGSTEP
    return mel


def mel_to_hz(mel: np.ndarray) -> np.ndarray:
    """Inverse of :func:`hz_to_mel`. ``(n,) float64`` Hz."""
    mel = np.asarray(mel, dtype=np.float64)
    hz = _F_SP * mel
    high = mel >= _MIN_LOG_MEL
    hz[high] = _MIN_LOG_HZ * np.exp(_LOGSTEP * (mel[high] - _MIN_LOG_MEL))
    return hz


def mel_filterbank(
    *,
    sample_rate: int,
    n_fft: int,
    n_mels: int = spec.N_MELS,
    fmin: float = 0.0,
    fmax: float = 8000.0,
) -> np.ndarray:
    """Slaney mel filterbank ``(n_mels, n_fft//2+1) float32``, equal to ``librosa.filters.mel``.

    Triangles between mel-spaced edges, each scaled by ``2 / (f_hi - f_lo)`` (area
    normalisation) so a band's output is a power *density*, comparable across band widths.
    """
    if sample_rate <= 0 or n_fft <= 0 or n_mels <= 0:
        raise ValueError(f"mel_filterbank: sample_rate, n_fft and n_mels must be positive, got {sample_rate}, {n_fft}, {n_mels}")
    fft_freqs = np.fft.rfftfreq(n_fft, d=1.0 / sample_rate)
    min_mel, max_mel = hz_to_mel(np.array([fmin, fmax]))
    edges = mel_to_hz(np.linspace(min_mel, max_mel, n_mels + 2))
    fdiff = np.diff(edges)
    ramps = np.subtract.outer(edges, fft_freqs)
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights.astype(np.float32)


def n_fft_for(sample_rate: int) -> int:
    """FFT size for a sample rate: the power of two nearest (in log terms) to 46 ms of samples.

    46 ms is librosa's default window at 22.05 kHz; keeping the window *duration* roughly constant
    keeps frequency resolution and time smearing alike across interfaces (16 kHz -> 1024,
    22.05 kHz -> 1024, 44.1/48 kHz -> 2048, 96 kHz -> 4096).
    """
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    return 1 << max(4, round(math.log2(0.046 * sample_rate)))


def hop_length_for(sample_rate: int) -> int:
    """Hop of ~10 ms in samples: ``round(sample_rate / 100)`` (22.05 kHz gives 220).

    The hop is not exactly 10 ms at every rate; whoever needs exact time uses
    ``hop_length / sample_rate``.
    """
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    return max(1, round(sample_rate / 100))


def periodic_hann(n: int, dtype: type = np.float64) -> np.ndarray:
    """Periodic ("DFT-even") Hann window ``(n,)``, as ``scipy.signal.get_window('hann', n)``."""
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)).astype(dtype)


def sine_power_reference(n_fft: int) -> float:
    """One-sided power a full-scale sine puts into the rfft of a periodic Hann window: ``3·n_fft²/32``.

    By Parseval, ``sum |X_k|^2`` over the one-sided spectrum of ``A·sin`` windowed by a Hann of
    ``sum(w²) = 3n/8`` is ``A²·3n²/32``. Dividing by it makes levels independent of n_fft.
    """
    return 3.0 * n_fft * n_fft / 32.0


class MelExtractor:
    """Streaming log-mel: push one hop ``(hop_length,) float32``, get a ``(n_mels,) float32`` dB frame.

    Attributes (read-only, overwritten by each ``push``):

    - ``spectrum`` ``(n_fft//2+1,) complex128``: rfft of the Hann-windowed last n_fft samples.
    - ``power`` ``(n_fft//2+1,) float64``: ``|spectrum|²``.
    - ``freqs`` ``(n_fft//2+1,) float64``: centre frequency of each power bin, Hz.
    - ``mel_power`` ``(n_mels,) float64``: the mel band powers before dB.
    - ``frame`` ``(n_mels,) float32``: the returned dB frame (same object each call).

    The spectrum is computed in float64: numpy's rfft writes a float64 input straight into a
    preallocated ``out``, whereas a float32 input costs a work copy per call.
    """

    def __init__(
        self,
        *,
        sample_rate: int,
        n_mels: int = spec.N_MELS,
        fmin: float = 0.0,
        fmax: float = 8000.0,
        top_db: float = 80.0,
    ) -> None:
        self.sample_rate = int(sample_rate)
        self.n_fft = n_fft_for(self.sample_rate)
        self.hop_length = hop_length_for(self.sample_rate)
        if self.hop_length > self.n_fft:
            raise ValueError(f"hop {self.hop_length} longer than window {self.n_fft}")
        self.n_mels = int(n_mels)
        self.top_db = float(top_db)
        fmax = min(float(fmax), self.sample_rate / 2.0)
        self.n_bins = self.n_fft // 2 + 1
        self.filterbank = mel_filterbank(
            sample_rate=self.sample_rate, n_fft=self.n_fft, n_mels=self.n_mels, fmin=fmin, fmax=fmax
        )
        self._fb64 = self.filterbank.astype(np.float64)
        # bins above the top band's edge have all-zero weights: the per-hop product skips them
        used = np.nonzero(self._fb64.any(axis=0))[0]
        self._n_used = int(used[-1]) + 1 if used.size else 1
        self._fb_used = np.ascontiguousarray(self._fb64[:, : self._n_used])
        self.window = periodic_hann(self.n_fft)
        self.freqs = np.fft.rfftfreq(self.n_fft, d=1.0 / self.sample_rate)
        # Ring storage twice the window: the current window is always the contiguous slice
        # storage[pos - n_fft : pos]; when a hop would run past the end, the last n_fft - hop
        # samples are copied (non-overlapping) back to the start. No per-hop allocation.
        self._storage = np.zeros(2 * self.n_fft, dtype=np.float64)
        self._pos = self.n_fft
        self._windowed = np.zeros(self.n_fft, dtype=np.float64)
        self.spectrum = np.zeros(self.n_bins, dtype=np.complex128)
        self.power = np.zeros(self.n_bins, dtype=np.float64)
        self._power_used = self.power[: self._n_used]
        self.mel_power = np.zeros(self.n_mels, dtype=np.float64)
        self._db = np.zeros(self.n_mels, dtype=np.float64)
        self.frame = np.full(self.n_mels, 10.0 * math.log10(AMIN), dtype=np.float32)

    @property
    def samples(self) -> np.ndarray:
        """The current analysis window ``(n_fft,) float64``, oldest sample first (a view)."""
        return self._storage[self._pos - self.n_fft : self._pos]

    def push(self, hop: np.ndarray) -> np.ndarray:
        """Slide one hop ``(hop_length,)`` into the window and return the new dB frame ``(n_mels,)``.

        The returned array is the extractor's own buffer, overwritten by the next call; copy it
        if you need to keep it. Samples must be finite (the feature context sanitises input).
        """
        n, h = self.n_fft, self.hop_length
        if hop.shape != (h,):
            raise ValueError(f"MelExtractor.push expects a ({h},) hop, got shape {hop.shape}")
        if self._pos + h > self._storage.shape[0]:
            keep = n - h
            self._storage[:keep] = self._storage[self._pos - keep : self._pos]
            self._pos = keep
        self._storage[self._pos : self._pos + h] = hop
        self._pos += h
        np.multiply(self._storage[self._pos - n : self._pos], self.window, out=self._windowed)
        np.fft.rfft(self._windowed, out=self.spectrum)
        np.abs(self.spectrum, out=self.power)
        np.square(self.power, out=self.power)
        np.dot(self._fb_used, self._power_used, out=self.mel_power)
        power_to_db_frame(self.mel_power, out=self._db, top_db=self.top_db)
        np.copyto(self.frame, self._db, casting="same_kind")
        return self.frame


def power_to_db_frame(power: np.ndarray, *, out: np.ndarray, top_db: float | None = 80.0) -> np.ndarray:
    """``librosa.power_to_db(power, ref=1.0, amin=1e-10, top_db)`` of one frame, written into ``out``.

    ``out`` must have ``power``'s dtype (a mixed-dtype ufunc would allocate a cast buffer).
    """
    np.maximum(power, AMIN, out=out)
    np.log10(out, out=out)
    np.multiply(out, 10.0, out=out)
    if top_db is not None:
        np.maximum(out, out.max() - top_db, out=out)
    return out
