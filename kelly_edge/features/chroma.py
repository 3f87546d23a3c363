"""Chroma (pitch-class energy) from the mel extractor's spectrum.

Two ways, sharing one band taper (weight 1 inside ``[fmin, fmax]``, falling as cos² over a
quarter octave outside each edge, so a partial crossing an edge does not make the chroma jump):

- :func:`chroma_filterbank`: a static ``(12, n_bins)`` matrix; ``fb @ power`` folds each FFT bin
  onto the pitch classes near its *centre* frequency. Cheap, but a 46 ms window has bins 21.5 Hz
  apart (22.05 kHz / 1024) while A1 and Bb1 are 6.5 Hz apart: below ~400 Hz a bin cannot tell
  neighbouring semitones apart, so each bin's weight is a Gaussian over pitch classes as wide as
  the bin is in semitones (at least one) and low notes come out smeared over 3–5 classes.
- :class:`InstantaneousChroma` (what the feature context uses): the phase advance of each bin
  between two consecutive hops gives the *instantaneous frequency* of the partial that dominates
  it (phase vocoder), precise to a fraction of a semitone even for bass notes, because every bin
  of a partial's main lobe reports the partial's true frequency. Each bin's power goes to the
  pitch classes near that frequency (Gaussian, ``sigma`` semitones). On rendered Bach chorales it
  correlates ~0.9 with the score's pitch-class durations, against ~0.5 for the static filterbank.
"""

from __future__ import annotations

import numpy as np

from kelly_edge.models import spec

CHROMA_FMIN = 27.5  # A0, lowest piano note
CHROMA_FMAX = 2000.0  # above this, upper partials blur harmony more than they reveal it (on rendered
# chorales a 1.5–2 kHz top edge found the key more often than 5 kHz)
BASS_FMIN = 27.5
BASS_FMAX = 250.0  # roughly B3: where bass lines live
TAPER_OCTAVES = 0.25
LUT_STEPS = 200  # pitch-class resolution of the instantaneous chroma's weight table, per semitone
COMPRESSIONS = ("magnitude", "power", "log")
"""What each FFT bin contributes: its magnitude |X| (the default), its power |X|², or log(1 + γ|X|)."""
LOG_GAMMA = 1.0 / 8.0  # the "log" compression's γ, per unit of |X| (a full-scale sine peaks at ~n_fft/4)
BATCH = 8  # hops an InstantaneousChroma computes at once at most (80 ms: the key decision's period)


def _band_taper(freqs: np.ndarray, fmin: float, fmax: float, taper_octaves: float) -> np.ndarray:
    """1 inside [fmin, fmax], falling as cos² to 0 over ``taper_octaves`` outside each edge."""
    with np.errstate(divide="ignore"):
        octs = np.log2(np.maximum(freqs, 1e-9))
    below = np.clip((np.log2(fmin) - octs) / taper_octaves, 0.0, 1.0)
    above = np.clip((octs - np.log2(fmax)) / taper_octaves, 0.0, 1.0)
    outside = np.maximum(below, above)
    taper = np.cos(0.5 * np.pi * outside) ** 2
    taper[(outside >= 1.0) | (freqs <= 0)] = 0.0  # exactly zero, so unused bins can be skipped
    return taper


def chroma_filterbank(
    *,
    sample_rate: int,
    n_fft: int,
    fmin: float = CHROMA_FMIN,
    fmax: float = CHROMA_FMAX,
    taper_octaves: float = TAPER_OCTAVES,
    tuning_hz: float = 440.0,
) -> np.ndarray:
    """Pitch-class filterbank ``(12, n_fft//2+1) float32``; row 0 is C, row 9 is A.

    ``chroma = fb @ power`` is the power (|X|²) of the spectrum folded onto the 12 pitch classes.
    """
    if not 0 < fmin < fmax:
        raise ValueError(f"chroma_filterbank: need 0 < fmin < fmax, got {fmin}, {fmax}")
    freqs = np.fft.rfftfreq(n_fft, d=1.0 / sample_rate)
    df = sample_rate / n_fft
    taper = _band_taper(freqs, fmin, fmax, taper_octaves)
    used = taper > 0
    f = freqs[used]
    pitch = 69.0 + 12.0 * np.log2(f / tuning_hz)  # MIDI pitch of each bin centre
    lo = np.maximum(f - 0.5 * df, 1e-3)
    width = np.maximum(12.0 * np.log2((f + 0.5 * df) / lo), 1.0)  # bin width in semitones, >= 1
    pcs = np.arange(spec.N_PITCH_CLASSES, dtype=np.float64)[:, None]
    dist = np.mod(pitch[None, :] - pcs + 6.0, 12.0) - 6.0  # signed distance to each pitch class
    weights = np.exp(-0.5 * (dist / (0.5 * width[None, :])) ** 2)
    weights /= weights.sum(axis=0, keepdims=True)
    fb = np.zeros((spec.N_PITCH_CLASSES, freqs.size), dtype=np.float64)
    fb[:, used] = weights * taper[used][None, :]
    return fb.astype(np.float32)


def bass_chroma_filterbank(
    *, sample_rate: int, n_fft: int, fmin: float = BASS_FMIN, fmax: float = BASS_FMAX
) -> np.ndarray:
    """Chroma filterbank of the bass band only (27.5–250 Hz), ``(12, n_fft//2+1) float32``.

    Used for the bass note (chord root / inversion). Its pitch resolution is limited by the bin
    spacing: with a 46 ms window, neighbouring bass semitones share bins.
    """
    return chroma_filterbank(sample_rate=sample_rate, n_fft=n_fft, fmin=fmin, fmax=fmax)


def normalize_max(x: np.ndarray, *, out: np.ndarray, floor: float = 0.0) -> np.ndarray:
    """``out = x / max(max(x), floor)``; all zero when ``max(x) <= 0``.

    A positive ``floor`` makes quiet input fade towards zero instead of being blown up to max 1
    (e.g. the chroma energy of a tone at the level gate).
    """
    peak = float(x.max())
    if not peak > 0.0:
        out[...] = 0.0
        return out
    if out.dtype == x.dtype:
        np.multiply(x, 1.0 / max(peak, floor), out=out)
    else:  # copy-cast first: a mixed-dtype ufunc would allocate a cast buffer
        np.copyto(out, x, casting="same_kind")
        out *= 1.0 / max(peak, floor)
    return out


class InstantaneousChroma:
    """Chroma and bass chroma from instantaneous frequencies, computed for batches of hops.

    Hops are fed with :meth:`push` (the rfft ``(n_fft//2+1,) complex128`` of the current frame and its
    power, float64, from a :class:`~kelly_edge.features.mel.MelExtractor` advanced by exactly one
    hop since the previous push) and computed in batches by :meth:`flush`, which returns each
    pending hop's ``(2, 12)`` chroma and bass chroma (pitch-class power). A push copies ~100 bins;
    a flush runs the 14 ufuncs below once for up to :data:`BATCH` hops, where hop by hop they
    cost ~15 µs a hop in call overhead. :meth:`update` is push + flush for one hop, filling
    ``chroma`` (12,) and ``bass`` (12,). Only bins up to the top taper edge are processed; every
    buffer is preallocated, constants are folded, and per-bin constants are tiled to the batch's
    shape (a broadcasting ufunc would allocate a buffer).

    The phase advance is unambiguous within ±n_fft/(2·hop) bins of the bin centre (±2.3 at
    1024/220), wider than the ±2-bin main lobe of a Hann window, so every bin of a stable
    partial's lobe is attributed to the partial's frequency. Partials closer than about two bins
    (43 Hz at 22.05 kHz / 1024, 47 Hz at 48 kHz / 2048) share bins and their frequencies blur:
    notes from A1 (55 Hz) up are resolved, a bass guitar's low E1 (41 Hz) is not reliably.
    """

    def __init__(
        self,
        *,
        sample_rate: int,
        n_fft: int,
        hop_length: int,
        fmin: float = CHROMA_FMIN,
        fmax: float = CHROMA_FMAX,
        bass_fmin: float = BASS_FMIN,
        bass_fmax: float = BASS_FMAX,
        sigma: float = 0.3,
        tuning_hz: float = 440.0,
        compression: str = "magnitude",
    ) -> None:
        if compression not in COMPRESSIONS:
            raise ValueError(f"InstantaneousChroma: compression {compression!r}, expected one of {', '.join(COMPRESSIONS)}")
        self.compression = compression
        n_bins = n_fft // 2 + 1
        freqs = np.fft.rfftfreq(n_fft, d=1.0 / sample_rate)
        main = _band_taper(freqs, fmin, fmax, TAPER_OCTAVES)
        bass = _band_taper(freqs, bass_fmin, bass_fmax, TAPER_OCTAVES)
        used = np.nonzero((main > 0) | (bass > 0))[0]
        self._lo = int(used[0]) if used.size else 1
        self._hi = min(n_bins, int(used[-1]) + 1) if used.size else 2
        k = np.arange(self._lo, self._hi, dtype=np.float64)
        nb = k.size
        self._taper_main = main[self._lo : self._hi]
        self._taper_bass = bass[self._lo : self._hi]
        # Per hop, for each bin k: the phase advance minus the advance expected of the bin centre,
        # wrapped to [-pi, pi), is the deviation dev; the partial sits at k + dev * dev_to_bins
        # bins, i.e. at MIDI pitch 12 * log2(bins * bin_hz / tuning) + 69, whose pitch class picks
        # a row of the weight table. The constants are folded: ``_turn`` = pi - expected (so one
        # mod 2pi gives dev + pi); the partial is at (dev + pi + _k0) * dev_to_bins bins with
        # ``_k0`` = k / dev_to_bins - pi, and the table row is mod(log2(that / dev_to_bins) *
        # 12 * LUT_STEPS + _row0, 12 * LUT_STEPS), truncated (_row0 holds log2(dev_to_bins) and
        # the + 0.5 that rounds).
        expected = np.mod(2.0 * np.pi * k * hop_length / n_fft + np.pi, 2.0 * np.pi) - np.pi
        turn = np.pi - expected
        dev_to_bins = n_fft / (2.0 * np.pi * hop_length)
        k0 = k / dev_to_bins - np.pi
        bin_hz = sample_rate / n_fft
        self._min_p = np.float64(1.0 / (bin_hz * dev_to_bins))  # frequencies below 1 Hz count as 1 Hz
        self._rows = np.float64(12 * LUT_STEPS)
        self._row0 = np.float64(
            (12.0 * np.log2(bin_hz * dev_to_bins) + 69.0 - 12.0 * np.log2(tuning_hz)) * LUT_STEPS + 0.5
        )
        b = BATCH
        self._batch = b
        self._turn = np.tile(turn, (b, 1))
        self._k0 = np.tile(k0, (b, 1))
        self._spec = np.zeros((b + 1, nb), dtype=np.complex128)  # row 0: the hop before the batch
        self._pw = np.zeros((b, 2, nb), dtype=np.float64)  # the power, twice: main and bass rows
        self._tapers = np.tile(np.stack([self._taper_main, self._taper_bass]), (b, 1, 1))
        self._phase = np.zeros((b + 1, nb), dtype=np.float64)
        self._d = np.zeros((b, nb), dtype=np.float64)
        self._idx = np.zeros((b, nb), dtype=np.intp)
        self._w = np.zeros((b, nb, 12), dtype=np.float64)
        self._frames = np.zeros((b, 2, 12), dtype=np.float64)
        self._n = 0
        # Each bin's Gaussian weights over the 12 pitch classes depend only on its pitch class
        # (a real number in [0, 12)): tabulated once every 1/LUT_STEPS semitone, already
        # normalised to sum 1, so a hop does one table lookup instead of ~12 ops on (12, nb).
        steps = 12 * LUT_STEPS
        pc = np.arange(steps + 1, dtype=np.float64) / LUT_STEPS  # row steps == row 0 (pc 12 == 0)
        dist = np.abs(pc[:, None] - np.arange(12, dtype=np.float64)[None, :])
        dist = np.minimum(dist, 12.0 - dist) / sigma
        table = np.exp(-0.5 * dist * dist)
        self._table = table / np.maximum(table.sum(axis=1, keepdims=True), 1e-12)  # (steps + 1, 12)
        self.frames = np.zeros((2, 12), dtype=np.float64)  # the last hop of the last flush
        self.chroma = self.frames[0]  # (12,) views of it
        self.bass = self.frames[1]

    @property
    def pending(self) -> int:
        """Hops pushed since the last flush."""
        return self._n

    def push(self, spectrum: np.ndarray, power: np.ndarray) -> None:
        """Queue one hop (copies its bins); call :meth:`flush` before :data:`BATCH` are pending."""
        n = self._n
        if n == self._batch:
            raise RuntimeError(f"InstantaneousChroma: {n} hops pending, flush first")
        lo, hi = self._lo, self._hi
        self._spec[n + 1] = spectrum[lo:hi]
        row = self._pw[n, 0]
        if self.compression == "power":
            row[...] = power[lo:hi]
        else:
            np.sqrt(power[lo:hi], out=row)
            if self.compression == "log":
                row *= LOG_GAMMA
                np.log1p(row, out=row)
        self._pw[n, 1] = row
        self._n = n + 1

    def flush(self) -> np.ndarray:
        """Chroma of every pending hop, oldest first: a ``(n, 2, 12)`` view (rows chroma, bass),
        valid until the next push."""
        n = self._n
        self._n = 0
        if n == 0:
            return self._frames[:0]
        spec_ = self._spec[: n + 1]
        phase = self._phase[: n + 1]
        np.arctan2(spec_.imag, spec_.real, out=phase)
        self._spec[0] = self._spec[n]  # the next batch's previous hop
        d = self._d[:n]
        np.subtract(phase[1:], phase[:-1], out=d)
        d += self._turn[:n]
        np.mod(d, 2.0 * np.pi, out=d)  # deviation from the bin centre's advance + pi, radians
        d += self._k0[:n]  # the partial's frequency, in bins / dev_to_bins
        np.maximum(d, self._min_p, out=d)
        np.log2(d, out=d)
        d *= self._rows
        d += self._row0
        np.mod(d, self._rows, out=d)  # pitch class x LUT_STEPS, + 0.5: in [0, 12 * LUT_STEPS)
        idx = self._idx[:n]
        np.copyto(idx, d, casting="unsafe")  # truncation of a value >= 0: the nearest row
        w = self._w[:n]
        np.take(self._table, idx, axis=0, out=w, mode="clip")  # (n, nb, 12) weights, rows sum to 1
        pw = self._pw[:n]
        pw *= self._tapers[:n]  # (n, 2, nb): main and bass power
        frames = self._frames[:n]
        np.matmul(pw, w, out=frames)
        self.frames[...] = frames[n - 1]
        return frames

    def update(self, spectrum: np.ndarray, power: np.ndarray) -> None:
        """One hop at once: fill ``chroma`` and ``bass`` (flushes any pending hops first)."""
        if self._n:
            self.flush()
        self.push(spectrum, power)
        self.flush()
