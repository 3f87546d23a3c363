"""MelExtractor and the mel filterbank against librosa (librosa is used only here, in tests)."""

from __future__ import annotations

import librosa
import numpy as np
import pytest

from kelly_edge.features.mel import MelExtractor, hop_length_for, mel_filterbank, n_fft_for, power_to_db_frame

RATES = (16000, 22050, 44100, 48000, 96000)


@pytest.mark.parametrize(
    ("rate", "n_fft", "hop"),
    [(16000, 1024, 160), (22050, 1024, 220), (44100, 2048, 441), (48000, 2048, 480), (96000, 4096, 960)],
)
def test_window_and_hop_sizes(rate: int, n_fft: int, hop: int) -> None:
    assert n_fft_for(rate) == n_fft
    assert hop_length_for(rate) == hop


@pytest.mark.parametrize("rate", RATES)
def test_filterbank_matches_librosa(rate: int) -> None:
    n_fft = n_fft_for(rate)
    ours = mel_filterbank(sample_rate=rate, n_fft=n_fft)
    ref = librosa.filters.mel(sr=rate, n_fft=n_fft, n_mels=128, fmin=0.0, fmax=8000.0, htk=False, norm="slaney")
    assert ours.shape == ref.shape == (128, n_fft // 2 + 1)
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-6)


def test_filterbank_other_ranges_match_librosa() -> None:
    ours = mel_filterbank(sample_rate=44100, n_fft=2048, n_mels=40, fmin=50.0, fmax=11025.0)
    ref = librosa.filters.mel(sr=44100, n_fft=2048, n_mels=40, fmin=50.0, fmax=11025.0)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-6)


def _librosa_frames(y: np.ndarray, rate: int) -> np.ndarray:
    """librosa's log-mel of ``y`` framed like the extractor: column k is the window ending at hop k.

    The extractor starts from a window of zeros, so ``n_fft - hop`` zeros are prepended; then
    column k of the center=False spectrogram covers exactly the samples held after hop k. The dB
    conversion is applied per column, as the extractor does per frame.
    """
    n_fft, hop = n_fft_for(rate), hop_length_for(rate)
    padded = np.concatenate([np.zeros(n_fft - hop, dtype=np.float32), y])
    mel = librosa.feature.melspectrogram(
        y=padded, sr=rate, n_fft=n_fft, hop_length=hop, center=False, window="hann",
        power=2.0, n_mels=128, fmin=0.0, fmax=8000.0,
    )
    return np.stack(
        [librosa.power_to_db(mel[:, j], ref=1.0, amin=1e-10, top_db=80.0) for j in range(mel.shape[1])], axis=1
    )


def _pushed_frames(y: np.ndarray, rate: int) -> np.ndarray:
    ext = MelExtractor(sample_rate=rate)
    h = ext.hop_length
    return np.stack([ext.push(y[i * h : (i + 1) * h]).copy() for i in range(y.size // h)], axis=1)


def _chirp_and_noise(rate: int, seconds: float = 1.5) -> np.ndarray:
    rng = np.random.default_rng(rate)
    t = np.arange(int(rate * seconds)) / rate
    y = 0.5 * np.sin(2 * np.pi * (60.0 * t + 2000.0 * t**2)) + 0.02 * rng.standard_normal(t.size)
    y[: rate // 10] = 0.0  # leading silence: the dB floor and top_db clamp are exercised too
    return y.astype(np.float32)


@pytest.mark.parametrize("rate", RATES)
def test_streamed_frames_match_librosa_on_chirp(rate: int) -> None:
    y = _chirp_and_noise(rate)
    ours = _pushed_frames(y, rate)
    ref = _librosa_frames(y, rate)
    k = min(ours.shape[1], ref.shape[1])
    assert k >= 140
    np.testing.assert_allclose(ours[:, :k], ref[:, :k], rtol=0, atol=1e-3)


def test_streamed_frames_match_librosa_on_rendered_music(render_cache) -> None:
    y, rate = render_cache("bach/bwv66.6", seconds=6.0)
    ours = _pushed_frames(y, rate)
    ref = _librosa_frames(y, rate)
    k = min(ours.shape[1], ref.shape[1])
    assert k >= 500
    assert float(ours.max()) > -20.0  # the music is actually there
    np.testing.assert_allclose(ours[:, :k], ref[:, :k], rtol=0, atol=1e-3)


def test_push_reuses_its_buffers() -> None:
    ext = MelExtractor(sample_rate=22050)
    rng = np.random.default_rng(0)
    hops = rng.standard_normal((5, ext.hop_length)).astype(np.float32)
    first = ext.push(hops[0])
    power = ext.power
    for hop in hops[1:]:
        assert ext.push(hop) is first
        assert ext.power is power
    assert first.shape == (128,) and first.dtype == np.float32
    assert ext.power.shape == ext.freqs.shape == (ext.n_fft // 2 + 1,)
    assert ext.freqs[1] == pytest.approx(22050 / ext.n_fft)


def test_power_is_the_windowed_spectrum_of_the_last_n_fft_samples() -> None:
    ext = MelExtractor(sample_rate=16000)
    rng = np.random.default_rng(1)
    y = rng.standard_normal(ext.hop_length * 20).astype(np.float32)
    for i in range(20):
        ext.push(y[i * ext.hop_length : (i + 1) * ext.hop_length])
    window = np.hanning(ext.n_fft + 1)[:-1]  # periodic Hann
    expected = np.abs(np.fft.rfft(y[-ext.n_fft :] * window)) ** 2
    np.testing.assert_allclose(ext.power, expected, rtol=1e-6, atol=1e-9)


def test_push_rejects_a_wrong_hop_size() -> None:
    ext = MelExtractor(sample_rate=22050)
    with pytest.raises(ValueError, match="220"):
        ext.push(np.zeros(256, dtype=np.float32))


def test_power_to_db_frame_matches_librosa() -> None:
    rng = np.random.default_rng(2)
    power = rng.exponential(size=128) ** 6  # wide dynamic range: top_db clamps some bands
    power[:5] = 0.0
    out = np.empty(128)
    power_to_db_frame(power, out=out)
    np.testing.assert_allclose(out, librosa.power_to_db(power, ref=1.0, amin=1e-10, top_db=80.0), atol=1e-9)
