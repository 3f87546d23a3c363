"""Everything the model encoders need about the input, updated once per 10 ms hop.

:class:`FeatureContext` owns the streaming :class:`~kelly_edge.features.mel.MelExtractor` and
derives, from each hop's samples, power spectrum and log-mel frame: levels and the silence gate,
onsets and tempo, chroma at three time scales, the key (with hysteresis), the 16 descriptors of
:class:`~kelly_edge.models.spec.Desc` and the per-16th onset accents of the current and previous
bar. The engine reads the results as attributes after each :meth:`FeatureContext.update` and
passes them to the encoders in :mod:`kelly_edge.features.encode`.

Real-time rules: every array is allocated in ``__init__``; ``update`` writes into them (the only
per-hop allocation is the output of ``np.fft.rfft``). Public arrays are read-only views of those
buffers: they change on every update, so copy one if you need to keep it. Any input (NaN, inf,
huge values, full-scale noise) gives finite features.

Per hop, in batches, on read: ``update`` does only what must see every hop (the spectrum,
levels, onsets, tempo, the mel EMA, rings). Two computations are queued and done in batches,
because numpy's per-call overhead, not arithmetic, is what a hop costs: the instantaneous chroma
(:class:`~kelly_edge.features.chroma.InstantaneousChroma`, up to 8 hops) and the spectral shape
(:class:`~kelly_edge.features.spectral.SpectralShape`); their moving averages advance by the
closed form of the per-hop recursion, so the values equal hop-by-hop ones to float rounding.
What is *derived* from the state (the normalised chroma, the mel summary, the key correlations,
the level range, the normalised bar accents) is computed when first read after an update,
flushing those batches first: reading is never stale, whatever the read pattern. The encoders
read on the hops that run a model; the others skip it. The key's hysteresis is the one decision
taken on a schedule: every :data:`KEY_EVERY` hops (80 ms, with the chroma batch) rather than
every hop.

Time constants are exponential moving averages (EMA) unless a ring buffer is named: "~1 s" means
an EMA whose time constant is one second.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from kelly_edge.features import chroma as chroma_mod
from kelly_edge.features import key as key_mod
from kelly_edge.features import spectral as spectral_mod
from kelly_edge.features.mel import AMIN, MelExtractor, sine_power_reference
from kelly_edge.features.mel import hz_to_mel
from kelly_edge.features.onset import OnsetDetector, SpectralFlux, TempoEstimator
from kelly_edge.models import spec
from kelly_edge.models.spec import Desc

log = logging.getLogger(__name__)

SAMPLE_CLIP = 1.0
"""Samples (after input gain) are clipped to ±full scale, as an ADC or a preamp would: levels stay
within the -100..0 dBFS of :class:`Desc` and wild input (1e30, int16-scaled floats) stays finite."""
LEVEL_FLOOR_DB = -100.0
MEL_SUMMARY_FLOOR_DB = -120.0  # below any real input's noise floor; hides the rate-dependent amin floor
GAIN_RANGE_DB = (-120.0, 60.0)

SUMMARY_TAU_S = 1.0  # mel_summary
CHROMA_TAU_S = 1.0  # chroma_window, bass_chroma
CHROMA_LONG_TAU_S = 20.0  # chroma_long (the emotion model's tonal memory)
CHROMA_SHORT_TAU_S = 0.25  # chroma_short, bass_short: "the chord sounding now" (~half a beat)
CHROMA_NOW_TAU_S = 0.08  # chroma_now, bass_now: the last few hops, so a chord change shows within ~0.1 s
SPECTRAL_TAU_S = 1.0  # centroid, roll-off, flatness, low/high ratio
LONG_TAU_S = 3.0  # level_db_long, onset_strength, silence share
RANGE_WINDOW_S = 3.0  # ring of hop levels for level_range_db
ONSET_RATE_WINDOW_S = 3.0  # ring of onset flags for onset_rate

KEY_EVERY = 8  # hops between key decisions (key_mod.KeyTracker steps): ~80 ms

_DB_TO_LN = math.log(10.0) / 10.0  # dB -> natural log of power
_HALF_DB = 10.0 * math.log10(2.0)
_HIST_STEP_DB = 0.5  # level histogram resolution for the p10/p90 range
_HIST_LO_DB = LEVEL_FLOOR_DB
_HIST_BINS = int(round((20.0 * math.log10(SAMPLE_CLIP) - _HIST_LO_DB) / _HIST_STEP_DB)) + 2

# descriptor slots, resolved once (a dict lookup per use adds up at 100 hops a second)
_D = Desc.INDEX
_LEVEL, _LEVEL_LONG, _CREST, _SILENCE, _RANGE = (
    _D[n] for n in ("level_db", "level_db_long", "crest_db", "silence", "level_range_db"))
_ONSET_RATE, _ONSET_STRENGTH, _TEMPO, _PULSE = (
    _D[n] for n in ("onset_rate", "onset_strength", "tempo_bpm", "pulse_clarity"))
_KEY_CLARITY, _MODE_MARGIN = _D["key_clarity"], _D["mode_margin"]
_SPECTRAL = slice(_D["centroid_hz"], _D["centroid_hz"] + spectral_mod.N_VALUES)  # SpectralShape's order
assert tuple(Desc.NAMES[_SPECTRAL]) == ("centroid_hz", "rolloff_hz", "flatness", "low_ratio", "high_ratio")
_WIN, _LONG, _BASS, _SHORT, _BASS_SHORT, _NOW, _BASS_NOW = range(7)  # rows of the chroma EMA matrix
_max, _min = np.maximum.reduce, np.minimum.reduce  # the ufunc reductions, without ndarray.max's wrapper


def _alpha(tau_s: float, hop_s: float) -> float:
    """EMA coefficient for a time constant ``tau_s`` at one update per ``hop_s``."""
    return 1.0 - math.exp(-hop_s / tau_s)


def mel_reference_db(n_fft: int, *, n_mels: int = spec.N_MELS, fmax: float = 8000.0) -> float:
    """dB that a full-scale sine below 1 kHz reaches in its mel band; subtracted for ``mel_summary``.

    The window-energy constant: a full-scale sine puts ``3·n_fft²/32`` of one-sided power into
    the rfft of a periodic Hann window (Parseval; see :func:`~kelly_edge.features.mel.sine_power_reference`),
    and a Slaney-normalised band in the linear (< 1 kHz) mel region weighs it by at most
    ``2 / (f_hi - f_lo) = 1 / Δ`` where ``Δ`` is the band spacing in Hz (23.4 Hz for 128 bands
    up to 8 kHz). So ``10·log10(3·n_fft² / (32·Δ))`` is 0 dB for a full-scale sine, whatever the
    sample rate or FFT size (36.2 dB at n_fft 1024, 42.3 dB at 2048). Sines above 1 kHz fall in
    wider bands and read lower, as in any Slaney-normalised mel spectrogram.
    """
    max_mel = float(hz_to_mel(np.array([fmax]))[0])
    spacing_hz = (max_mel / (n_mels + 1)) * (200.0 / 3.0)
    return 10.0 * math.log10(sine_power_reference(n_fft) / spacing_hz)


def _readonly(a: np.ndarray) -> np.ndarray:
    view = a.view()
    view.flags.writeable = False
    return view


class FeatureContext:
    """Per-hop feature state of the input (see the module docstring for the rules).

    Read-only attributes after each :meth:`update` (arrays are float32 views):

    - ``mel`` (128,) the current log-mel frame, dB (librosa-equal, not level-referenced).
    - ``mel_summary`` (64,) ~1 s mean of the dB frame, pairs of bands averaged in power
      (``10·log10((p_a + p_b)/2)``), dB relative to a full-scale sine (:func:`mel_reference_db`):
      a steady full-scale sine below 1 kHz reads about -3..-6 dB (its main lobe spreads over
      the band and the pair average halves it); floored at -120 dB so silence reads the same
      at every sample rate.
    - ``chroma_window`` (12,) ~1 s, ``chroma_long`` (12,) ~20 s, ``bass_chroma`` (12,) ~1 s of
      27.5–250 Hz: pitch-class magnitude of the non-silent hops, max 1 while playing; all zero when
      nothing above the gate was heard; during silence each fades as ``exp(-silent_for_s/tau)``
      (tau 1 s, 20 s, 1 s), and an EMA quieter than a tone at the gate fades towards 0 too.
    - ``chroma_short``, ``bass_short`` (12,) the same over ~0.25 s: the chord sounding now;
      ``chroma_now``, ``bass_now`` over ~0.08 s: a chord change shows in them within ~0.1 s (in
      the 0.25 s window the new chord needs ~0.17 s to outweigh the old one).
    - ``key_corr`` (24,) correlations of ``chroma_long`` with the Bellman–Budge profiles as
      heard with harmonics (:data:`~kelly_edge.features.key.AUDIO_PROFILES`; C..B major, C..B minor);
      ``tonic``, ``major``, ``key_name``: the held key, from a :class:`~kelly_edge.features.key.KeyTracker`
      over the ~1 s chroma's correlations (C major until something is heard);
      ``key_clarity`` the held key's correlation; ``key_known`` False until a key was heard.
    - ``descriptors`` (16,) in :data:`Desc.NAMES` order and units.
    - ``level_db`` hop RMS dBFS after input gain (floor -100); ``silent`` level below the gate;
      ``silent_for_s`` time continuously below the gate; ``onset`` an onset was confirmed this
      hop (one hop after its peak); ``onset_strength`` this hop's flux (0 when silent).
    - ``heard_bar`` (16,) onset strength per 16th step of the bar in progress, ``heard_prev_bar``
      (16,) of the completed bar before, each max 1 (zero if no onsets).

    Descriptor notes (units as in :class:`Desc`):

    - ``level_range_db``: p90 - p10 of the hop levels of the last 3 s (ring), each level floored
      at the gate, so pauses count as "down to the gate" rather than -100 dB.
    - ``onset_rate``: onsets in the last 3 s (ring) / 3 s. ``onset_strength``: ~3 s mean of the
      gated flux, in dB per mel band per hop (legato piano ~0.7, noise ~1, clicks out of
      silence ~3).
    - ``tempo_bpm``/``pulse_clarity``: see :class:`~kelly_edge.features.onset.TempoEstimator`
      (0 while unknown).
    - ``centroid_hz``, ``rolloff_hz``, ``flatness``, ``low_ratio``, ``high_ratio``: ~1 s means over
      *non-silent* hops only (they hold during silence: they describe the last playing, not the
      noise floor). Flatness is taken over the 128 mel band powers (0..8 kHz), where white noise
      reads ~0.8 and a tone ~0. Computed in batches: :class:`~kelly_edge.features.spectral.SpectralShape`.
    - ``key_clarity``: the *best* key's correlation and ``mode_margin`` best major minus best
      minor; they may differ briefly from the held key while hysteresis waits.
    - ``silence``: ~3 s mean of the silent flag (1.0 before anything is heard). ``crest_db``: 0
      for a silent hop.
    """

    def __init__(self, *, sample_rate: int, gate_db: float = -50.0, input_gain_db: float = 0.0) -> None:
        if sample_rate < 8000:
            raise ValueError(f"FeatureContext: sample_rate {sample_rate} Hz is too low (need >= 8000)")
        self.sample_rate = int(sample_rate)
        self._mel = MelExtractor(sample_rate=self.sample_rate)
        self.hop_length = self._mel.hop_length
        self.n_fft = self._mel.n_fft
        self.hop_s = self.hop_length / self.sample_rate
        hop_s = self.hop_s
        self.gate_db = -50.0
        self.input_gain_db = 0.0
        self._gain = 1.0
        self.set_input_gain_db(input_gain_db)

        # input sanitising
        h = self.hop_length
        self._x = np.zeros(h, dtype=np.float32)
        self._abs = np.zeros(h, dtype=np.float32)
        self._bad = np.zeros(h, dtype=bool)

        # mel summary
        self.mel_ref_db = mel_reference_db(self.n_fft)
        self._summary_floor = MEL_SUMMARY_FLOOR_DB
        floor_db = 10.0 * math.log10(AMIN)
        self._mel_ema = np.full(spec.N_MELS, floor_db, dtype=np.float32)
        self._mel_tmp = np.zeros(spec.N_MELS, dtype=np.float32)
        self._mel_summary = np.full(spec.N_MELS // 2, floor_db - self.mel_ref_db, dtype=np.float32)
        self._a_summary = _alpha(SUMMARY_TAU_S, hop_s)

        # chroma
        self._ifchroma = chroma_mod.InstantaneousChroma(
            sample_rate=self.sample_rate, n_fft=self.n_fft, hop_length=self.hop_length
        )
        # The seven chroma EMAs (rows _WIN, _LONG, _BASS, _SHORT, _BASS_SHORT, _NOW, _BASS_NOW of
        # one matrix) take the hop's chroma (1 s, 20 s), its bass chroma (1 s), the chroma and bass
        # chroma again (0.25 s, 0.08 s); zero on silent hops. The chroma is computed in
        # batches (InstantaneousChroma.flush), so the EMAs advance a batch at a time by their
        # closed form: e_n = (1-a)^n e_0 + sum_j a (1-a)^(n-1-j) v_j over the batch's hops j.
        b = chroma_mod.BATCH
        self._chroma_ema = np.zeros((7, 12), dtype=np.float64)
        self._chroma_long_ema = self._chroma_ema[_LONG]
        a1, a20 = _alpha(CHROMA_TAU_S, hop_s), _alpha(CHROMA_LONG_TAU_S, hop_s)
        a_s = _alpha(CHROMA_SHORT_TAU_S, hop_s)
        a_n = _alpha(CHROMA_NOW_TAU_S, hop_s)
        ages = np.arange(b - 1, -1, -1, dtype=np.float64)  # of hop j in a full batch
        self._chroma_weights = np.stack([a * (1.0 - a) ** ages for a in (a1, a20, a_s, a_n)])  # (4, b)
        n = np.arange(b + 1, dtype=np.float64)
        self._chroma_decay = np.stack([(1.0 - a) ** n for a in (a1, a20, a1, a_s, a_s, a_n, a_n)], axis=1)[:, :, None]
        self._voiced = np.zeros((4, b), dtype=np.float64)  # 1.0 for a pending hop above the gate
        self._chroma_w = np.zeros((4, b), dtype=np.float64)
        self._chroma_sums = np.zeros((4, 24), dtype=np.float64)  # [w1, w20, w_short, w_now] x [chroma, bass]
        # of the sums as (8, 12): win, long, bass, short, bass short, now, bass now
        self._chroma_rows = np.array([0, 2, 1, 4, 5, 6, 7], dtype=np.intp)
        self._chroma_in = np.zeros((7, 12), dtype=np.float64)
        # the EMAs normalised to max 1, all seven at once (a row each, the EMA's order); the public
        # chroma arrays are rows of it. Per row: the scale, and the fade rate (1/tau) in silence.
        self._chroma_out = np.zeros((7, 12), dtype=np.float32)
        self._chroma_norm = np.zeros((7, 12), dtype=np.float64)
        self._chroma_scale = np.zeros((7, 1), dtype=np.float64)
        taus = {_WIN: CHROMA_TAU_S, _LONG: CHROMA_LONG_TAU_S, _BASS: CHROMA_TAU_S, _SHORT: CHROMA_SHORT_TAU_S,
                _BASS_SHORT: CHROMA_SHORT_TAU_S, _NOW: CHROMA_NOW_TAU_S, _BASS_NOW: CHROMA_NOW_TAU_S}
        self._chroma_fade_rate = np.array([[-1.0 / taus[r]] for r in range(7)], dtype=np.float64)
        self._chroma_fade = np.zeros((7, 1), dtype=np.float64)
        (self._chroma_window, self._chroma_long, self._bass_chroma, self._chroma_short, self._bass_short,
         self._chroma_now, self._bass_now) = (self._chroma_out[r] for r in range(7))
        self._chroma_floor = 0.0
        self.set_gate_db(gate_db)

        # key
        self._key_corr = np.zeros(key_mod.N_KEYS, dtype=np.float32)
        self._key_corr64 = np.zeros(key_mod.N_KEYS, dtype=np.float64)  # same dtype as the EMA: no cast buffer
        self._key_idx = -1  # held key, -1 before any
        self._key_now64 = np.zeros(key_mod.N_KEYS, dtype=np.float64)  # of the ~1 s chroma: the tracker's evidence
        self._key_tracker = key_mod.KeyTracker()
        self._best_key = (0, True, 0.0, 0.0)  # key_mod.best_key of the current correlations

        # spectral descriptors
        self._spectral = spectral_mod.SpectralShape(
            freqs=self._mel.freqs, n_mels=spec.N_MELS, hop_s=hop_s, tau_s=SPECTRAL_TAU_S
        )

        # levels
        self._a_long = _alpha(LONG_TAU_S, hop_s)
        self._power_long = 0.0
        n_range = max(1, round(RANGE_WINDOW_S / hop_s))
        self._range_ring = np.zeros(n_range, dtype=np.int32)
        self._range_i = 0
        self._range_filled = 0
        self._hist = np.zeros(_HIST_BINS, dtype=np.int64)
        self._hist_cum = np.zeros(_HIST_BINS, dtype=np.int64)  # int64: searched with Python ints, no cast

        # onsets
        self._flux = SpectralFlux(n_bands=spec.N_MELS, initial=floor_db)  # starts from a silent window
        self._detector = OnsetDetector(hop_s=hop_s)
        self._tempo = TempoEstimator(hop_s=hop_s)
        n_rate = max(1, round(ONSET_RATE_WINDOW_S / hop_s))
        self._onset_ring = np.zeros(n_rate, dtype=bool)
        self._onset_i = 0
        self._onset_count = 0
        self._rate_window_s = n_rate * hop_s

        # bars
        self._bar_raw = np.zeros(spec.N_STEPS, dtype=np.float32)
        self._prev_bar_raw = np.zeros(spec.N_STEPS, dtype=np.float32)
        self._heard_bar = np.zeros(spec.N_STEPS, dtype=np.float32)
        self._heard_prev_bar = np.zeros(spec.N_STEPS, dtype=np.float32)
        self._last_step = -1

        self._desc = np.zeros(len(Desc.NAMES), dtype=np.float32)
        self._desc[_LEVEL] = LEVEL_FLOOR_DB
        self._desc[_LEVEL_LONG] = LEVEL_FLOOR_DB
        self._desc[_SILENCE] = 1.0  # nothing heard yet

        # public scalars
        self.level_db = LEVEL_FLOOR_DB
        self.silent = True
        self.silent_for_s = 0.0
        self.onset = False
        self.onset_strength = 0.0
        self.tempo_bpm = 0.0
        self.pulse_clarity = 0.0
        self.tonic = 0
        self.major = True
        self.key_known = False
        self.key_name = key_mod.key_name(0, True)
        self.hops = 0

        # the hop count each derived group was last computed at (see "Per hop vs on read")
        self._summary_at = self._chroma_at = self._key_at = self._desc_at = self._bar_at = 0

        # public read-only views (the derived ones are returned by the properties below)
        self.mel = _readonly(self._mel.frame)
        self.power = _readonly(self._mel.power)
        self._mel_summary_view = _readonly(self._mel_summary)
        self._chroma_window_view = _readonly(self._chroma_window)
        self._chroma_long_view = _readonly(self._chroma_long)
        self._bass_chroma_view = _readonly(self._bass_chroma)
        self._chroma_short_view = _readonly(self._chroma_short)
        self._bass_short_view = _readonly(self._bass_short)
        self._chroma_now_view = _readonly(self._chroma_now)
        self._bass_now_view = _readonly(self._bass_now)
        self._key_corr_view = _readonly(self._key_corr)
        self._desc_view = _readonly(self._desc)
        self._heard_bar_view = _readonly(self._heard_bar)
        self.heard_prev_bar = _readonly(self._heard_prev_bar)

    # --- derived outputs, computed on first read after an update ------------------------------

    @property
    def mel_summary(self) -> np.ndarray:
        if self._summary_at != self.hops:
            self._finish_summary()
        return self._mel_summary_view

    @property
    def chroma_window(self) -> np.ndarray:
        if self._chroma_at != self.hops:
            self._finish_chroma()
        return self._chroma_window_view

    @property
    def chroma_long(self) -> np.ndarray:
        if self._chroma_at != self.hops:
            self._finish_chroma()
        return self._chroma_long_view

    @property
    def bass_chroma(self) -> np.ndarray:
        if self._chroma_at != self.hops:
            self._finish_chroma()
        return self._bass_chroma_view

    @property
    def chroma_short(self) -> np.ndarray:
        if self._chroma_at != self.hops:
            self._finish_chroma()
        return self._chroma_short_view

    @property
    def bass_short(self) -> np.ndarray:
        if self._chroma_at != self.hops:
            self._finish_chroma()
        return self._bass_short_view

    @property
    def chroma_now(self) -> np.ndarray:
        if self._chroma_at != self.hops:
            self._finish_chroma()
        return self._chroma_now_view

    @property
    def bass_now(self) -> np.ndarray:
        if self._chroma_at != self.hops:
            self._finish_chroma()
        return self._bass_now_view

    @property
    def key_corr(self) -> np.ndarray:
        if self._key_at != self.hops:
            self._finish_key()
        return self._key_corr_view

    @property
    def key_clarity(self) -> float:
        """The held key's correlation now (0 before any key)."""
        if self._key_at != self.hops:
            self._finish_key()
        return float(self._key_corr64[self._key_idx]) if self._key_idx >= 0 else 0.0

    @property
    def descriptors(self) -> np.ndarray:
        if self._desc_at != self.hops:
            self._finish_descriptors()
        return self._desc_view

    @property
    def heard_bar(self) -> np.ndarray:
        if self._bar_at != self.hops:
            self._bar_at = self.hops
            chroma_mod.normalize_max(self._bar_raw, out=self._heard_bar)
        return self._heard_bar_view

    # --- live settings -----------------------------------------------------------------------

    def set_input_gain_db(self, db: float) -> None:
        """Input gain applied before every measurement, dB (clamped to -120..+60; NaN is 0)."""
        db = float(db) if math.isfinite(float(db)) else 0.0
        self.input_gain_db = min(GAIN_RANGE_DB[1], max(GAIN_RANGE_DB[0], db))
        self._gain = 10.0 ** (self.input_gain_db / 20.0)

    def set_gate_db(self, db: float) -> None:
        """Level gate, dBFS: hops below it are silent (no onsets, no chroma, no spectral update)."""
        db = float(db)
        self.gate_db = min(0.0, max(LEVEL_FLOOR_DB, db)) if math.isfinite(db) else -50.0
        self._update_chroma_floor()

    def _update_chroma_floor(self) -> None:
        # chroma of a sine at the gate level: chroma below it fades towards zero. The chroma sums
        # bin magnitudes; a Hann main lobe's magnitudes sum to ~1.63 x the root of its power.
        self._chroma_floor = 1.63 * math.sqrt(sine_power_reference(self.n_fft) * 10.0 ** (self.gate_db / 10.0))

    # --- per hop -----------------------------------------------------------------------------

    def update(self, hop: np.ndarray, *, step: int) -> None:
        """Consume one hop ``(hop_length,)`` of mono samples; ``step`` is the 16th step 0..15 of the bar."""
        if hop.shape != (self.hop_length,):
            raise ValueError(f"FeatureContext.update expects a ({self.hop_length},) hop, got shape {hop.shape}")
        x = self._x
        x[...] = hop  # casts to float32 in place (cheaper than np.copyto's wrapper)
        if self._gain != 1.0:
            x *= self._gain
        # fast path: finite, in-range input (the usual case) needs no cleaning; max/min are NaN
        # when any sample is, so the comparison below also catches NaN
        peak = max(float(_max(x)), -float(_min(x)))
        if not peak <= SAMPLE_CLIP:  # NaN/inf (count as 0) or over full scale (clipped)
            np.isfinite(x, out=self._bad)
            np.logical_not(self._bad, out=self._bad)
            np.copyto(x, 0.0, where=self._bad)
            np.clip(x, -SAMPLE_CLIP, SAMPLE_CLIP, out=x)
            np.abs(x, out=self._abs)
            peak = float(self._abs.max())
        ms_sum = float(np.dot(x, x))
        self.hops += 1

        self._update_level(ms_sum / x.size, peak)
        frame = self._mel.push(x)
        self._update_summary(frame)
        self._update_onsets(frame, step)
        self._update_chroma()
        if self.hops % KEY_EVERY == 0:
            self._update_key()
        if not self.silent:  # the spectral means describe the last playing, not the noise floor
            self._spectral.push(self._mel.power, self._mel.mel_power)

    def _update_level(self, ms: float, peak: float) -> None:
        """Levels from the hop's mean square and peak |sample| (after gain and clipping)."""
        d = self._desc
        level = 10.0 * math.log10(ms) if ms > 0.0 else LEVEL_FLOOR_DB
        self.level_db = max(LEVEL_FLOOR_DB, level)
        self.silent = self.level_db < self.gate_db
        self.silent_for_s = self.silent_for_s + self.hop_s if self.silent else 0.0
        d[_LEVEL] = self.level_db
        d[_CREST] = 20.0 * math.log10(peak / math.sqrt(ms)) if ms > 0.0 and peak > 0.0 else 0.0

        self._power_long += self._a_long * (ms - self._power_long)
        d[_LEVEL_LONG] = max(LEVEL_FLOOR_DB, 10.0 * math.log10(self._power_long)) if self._power_long > 0 else LEVEL_FLOOR_DB
        d[_SILENCE] += self._a_long * ((1.0 if self.silent else 0.0) - d[_SILENCE])

        # a ring of ~3 s of hop levels as a histogram (p90 - p10 on read: _finish_descriptors);
        # levels below the gate count as the gate so pauses between notes read as "gate-deep"
        # dynamics rather than as -100 dB.
        lv = max(self.level_db, self.gate_db)
        b = min(_HIST_BINS - 1, max(0, int((lv - _HIST_LO_DB) / _HIST_STEP_DB)))
        if self._range_filled == self._range_ring.size:
            self._hist[self._range_ring[self._range_i]] -= 1
        else:
            self._range_filled += 1
        self._range_ring[self._range_i] = b
        self._hist[b] += 1
        self._range_i = (self._range_i + 1) % self._range_ring.size

    def _update_summary(self, frame: np.ndarray) -> None:
        np.subtract(frame, self._mel_ema, out=self._mel_tmp)
        self._mel_tmp *= self._a_summary
        self._mel_ema += self._mel_tmp

    def _finish_summary(self) -> None:
        self._summary_at = self.hops
        # pairs combined in power, 10*log10((p_a + p_b) / 2): a tone filling one band of a pair
        # reads 3 dB down instead of being averaged with the other band's -80 dB floor
        np.multiply(self._mel_ema, _DB_TO_LN, out=self._mel_tmp)
        np.logaddexp(self._mel_tmp[0::2], self._mel_tmp[1::2], out=self._mel_summary)
        self._mel_summary *= 1.0 / _DB_TO_LN
        self._mel_summary -= self.mel_ref_db + _HALF_DB
        np.maximum(self._mel_summary, self._summary_floor, out=self._mel_summary)

    def _update_onsets(self, frame: np.ndarray, step: int) -> None:
        d = self._desc
        flux = self._flux.update(frame)
        strength = 0.0 if self.silent or not math.isfinite(flux) else flux
        self.onset_strength = strength
        self.onset = self._detector.update(strength)
        self._tempo.update(strength)

        old = self._onset_ring[self._onset_i]
        self._onset_ring[self._onset_i] = self.onset
        self._onset_count += int(self.onset) - int(old)
        self._onset_i = (self._onset_i + 1) % self._onset_ring.size
        d[_ONSET_RATE] = self._onset_count / self._rate_window_s
        d[_ONSET_STRENGTH] += self._a_long * (strength - d[_ONSET_STRENGTH])
        self.tempo_bpm = d[_TEMPO] = self._tempo.tempo_bpm
        self.pulse_clarity = d[_PULSE] = self._tempo.pulse_clarity

        step = int(step) % spec.N_STEPS
        if step < self._last_step:  # bar wrapped
            self._prev_bar_raw[...] = self._bar_raw
            self._bar_raw[...] = 0.0
            chroma_mod.normalize_max(self._prev_bar_raw, out=self._heard_prev_bar)
        self._last_step = step
        if strength > 0.0:
            self._bar_raw[step] += strength

    def _update_chroma(self) -> None:
        # pushed every hop (silent or not) so the phase history stays one hop apart
        ic = self._ifchroma
        if ic.pending == chroma_mod.BATCH:
            self._flush_chroma()
        self._voiced[:, ic.pending] = 0.0 if self.silent else 1.0
        ic.push(self._mel.spectrum, self._mel.power)

    def _flush_chroma(self) -> None:
        """Advance the chroma EMAs over the pending hops (see ``__init__``)."""
        n = self._ifchroma.pending
        if n == 0:
            return
        frames = self._ifchroma.flush()  # (n, 2, 12)
        w = self._chroma_w[:, :n]
        np.multiply(self._chroma_weights[:, chroma_mod.BATCH - n :], self._voiced[:, :n], out=w)
        np.matmul(w, frames.reshape(n, 24), out=self._chroma_sums)
        np.take(self._chroma_sums.reshape(8, 12), self._chroma_rows, axis=0, out=self._chroma_in)
        self._chroma_ema *= self._chroma_decay[n]
        self._chroma_ema += self._chroma_in

    def _finish_chroma(self) -> None:
        self._chroma_at = self.hops
        self._flush_chroma()
        # each row / max(its peak, the floor), as chroma_mod.normalize_max, for the seven rows in
        # five ufuncs (the harmony model reads them every hop). The EMAs are >= 0, so a row whose
        # peak is 0 is all zeros and stays 0 whatever it is divided by.
        scale = self._chroma_scale
        _max(self._chroma_ema, axis=1, keepdims=True, out=scale)
        np.maximum(scale, max(self._chroma_floor, 1e-300), out=scale)
        np.divide(1.0, scale, out=scale)
        np.multiply(self._chroma_ema, scale, out=self._chroma_norm)
        if self.silent_for_s > 0.0:
            # once the input is silent, each chroma fades like its own window empties, so "the
            # last second" is ~0 a few seconds into a pause while the ~20 s memory lingers
            np.multiply(self._chroma_fade_rate, self.silent_for_s, out=self._chroma_fade)
            np.exp(self._chroma_fade, out=self._chroma_fade)
            self._chroma_norm *= self._chroma_fade
        np.copyto(self._chroma_out, self._chroma_norm, casting="same_kind")

    def _finish_key(self) -> None:
        """The 24 key correlations and the best key, from the raw ~20 s EMA (Pearson ignores
        scale, so the silence fade of ``chroma_long`` never blurs the key)."""
        self._key_at = self.hops
        self._flush_chroma()
        corr = key_mod.key_correlations(self._chroma_long_ema, self._key_corr64)
        np.copyto(self._key_corr, corr, casting="same_kind")
        self._best_key = key_mod.best_key(corr)

    def _update_key(self) -> None:
        """One key decision (every :data:`KEY_EVERY` hops): the key tracker's step on the ~1 s
        chroma's correlations (skipped while silent: a pause is no evidence)."""
        self._flush_chroma()
        window = self._chroma_ema[_WIN]
        if self.silent_for_s > 0.0 or not float(window.max()) > 0.0:
            return
        corr = key_mod.key_correlations(window, self._key_now64)
        if not float(corr.max()) > 0.0:
            return  # nothing tonal heard (flat chroma): no evidence
        self._set_key(self._key_tracker.update(corr))

    def _set_key(self, index: int) -> None:
        if index != self._key_idx:
            log.debug("key -> %s", key_mod.key_name(index % 12, index < 12))
        self._key_idx = index
        self.tonic = index % spec.N_PITCH_CLASSES
        self.major = index < spec.N_PITCH_CLASSES
        self.key_known = True
        self.key_name = key_mod.key_name(self.tonic, self.major)

    def _finish_descriptors(self) -> None:
        """The descriptors taken from derived state: the level range and the key's two."""
        self._desc_at = self.hops
        d = self._desc
        np.cumsum(self._hist, out=self._hist_cum)  # p90 - p10 of the ring's levels
        n = self._range_filled
        lo = int(np.searchsorted(self._hist_cum, math.ceil(0.1 * n)))
        hi = int(np.searchsorted(self._hist_cum, math.ceil(0.9 * n)))
        d[_RANGE] = (hi - lo) * _HIST_STEP_DB
        if self._key_at != self.hops:
            self._finish_key()
        _, _, d[_KEY_CLARITY], d[_MODE_MARGIN] = self._best_key
        self._spectral.flush()
        np.copyto(d[_SPECTRAL], self._spectral.values, casting="same_kind")
