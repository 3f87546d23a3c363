"""Fuzzing the audio input edge: random bytes, truncations and header mutations of valid WAVs, odd
formats, and extreme samples (NaN, inf, huge finite values, DC, full scale, denormals).

Every case goes through the real command (``kelly-edge run``): in process for the bulk, a few in a
child process. The outcome is a clean run (a complete .mid whose notes are all released and a
parseable report) or clean ``kelly-edge: error:`` lines with exit code 2 and no output file at all:
never a traceback, an internal error, a hang or a half-written file.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from kelly_edge.audio.wav import write_wav
from tests.reliability.rel_cli import DEMO, assert_clean, run_in_process, run_subprocess

SR = 22050
N_RANDOM = 30  # mutations of valid files (seeded: the same cases every run)


def _valid_wav_bytes(tmp: Path, seconds: float = 0.6, **kw: object) -> bytes:
    t = np.arange(int(seconds * SR)) / SR
    x = 0.4 * np.sin(2 * np.pi * 220 * t) * (t % 0.25 < 0.15)
    path = tmp / "valid.wav"
    write_wav(path, x, SR, **kw)  # type: ignore[arg-type]
    return path.read_bytes()


def _run(tmp: Path, name: str, data: bytes) -> None:
    wav = tmp / f"{name}.wav"
    wav.write_bytes(data)
    mid, rep = tmp / f"{name}.mid", tmp / f"{name}.json"
    outcome = run_in_process(["-q", "run", "--input", str(wav), "--midi-out", str(mid), "--report", str(rep)])
    assert_clean(outcome, [mid, rep], what=name)


def _mutations(valid: bytes, rng: np.random.Generator) -> list[tuple[str, bytes]]:
    cases: list[tuple[str, bytes]] = []
    for i in range(N_RANDOM):
        kind = i % 6
        data = bytearray(valid)
        if kind == 0:  # truncated anywhere (the header included)
            cut = int(rng.integers(0, len(data)))
            cases.append((f"trunc{cut}", bytes(data[:cut])))
        elif kind == 1:  # random bytes flipped in the header
            for _ in range(int(rng.integers(1, 4))):
                data[int(rng.integers(0, 44))] = int(rng.integers(0, 256))
            cases.append((f"hdrflip{i}", bytes(data)))
        elif kind == 2:  # a header field set to an extreme value
            offset, fmt = [(22, "<H"), (24, "<I"), (34, "<H"), (40, "<I"), (16, "<I"), (4, "<I"), (20, "<H")][
                int(rng.integers(0, 7))]
            value = int(rng.choice([0, 1, 3, 7, 0xFFFF, 0xFFFFFFFF, 8000, 200000, 65535])) & (
                0xFFFF if fmt == "<H" else 0xFFFFFFFF)
            struct.pack_into(fmt, data, offset, value)
            cases.append((f"field{offset}_{value}", bytes(data)))
        elif kind == 3:  # pure random bytes, sometimes behind a plausible RIFF header
            noise = rng.integers(0, 256, int(rng.integers(1, 3000)), dtype=np.uint8).tobytes()
            cases.append((f"random{i}", (b"RIFF\x00\x10\x00\x00WAVE" + noise) if i % 2 else noise))
        elif kind == 4:  # the sample data replaced by random bytes (any PCM bytes are valid samples)
            data[44:] = rng.integers(0, 256, len(data) - 44, dtype=np.uint8).tobytes()
            cases.append((f"noisydata{i}", bytes(data)))
        else:  # extra chunks with lying sizes before the data
            junk = b"LIST" + struct.pack("<I", int(rng.choice([0, 3, 1000, 0x7FFFFFFF]))) + b"abc"
            cases.append((f"junkchunk{i}", bytes(data[:36]) + junk + bytes(data[36:])))
    return cases


def test_random_truncated_and_mutated_wavs_end_cleanly(tmp_path: Path) -> None:
    valid = _valid_wav_bytes(tmp_path)
    rng = np.random.default_rng(7)
    fixed = [
        ("empty", b""), ("text", b"hello, this is not audio\n" * 20), ("riff_only", b"RIFF"),
        ("header_only", valid[:44]), ("no_fmt", b"RIFF\x24\x00\x00\x00WAVEdata\x00\x00\x00\x00"),
        ("mp3ish", b"ID3\x03\x00\x00\x00" + bytes(500)), ("one_sample", valid[:46]),
        ("zero_channels", valid[:22] + b"\x00\x00" + valid[24:]),
    ]
    for name, data in fixed + _mutations(valid, rng):
        _run(tmp_path, name, data)


@pytest.mark.parametrize("bits,is_float,channels,rate", [
    (8, False, 1, 16000), (24, False, 2, 44100), (32, False, 6, 96000), (32, True, 1, 48000), (64, True, 3, 22050),
])
def test_every_supported_format_runs(tmp_path: Path, bits: int, is_float: bool, channels: int, rate: int) -> None:
    t = np.arange(int(0.5 * rate)) / rate
    x = np.stack([0.3 * np.sin(2 * np.pi * (220 + 50 * c) * t) for c in range(channels)], axis=1)
    path = tmp_path / "fmt.wav"
    write_wav(path, x, rate, bits=bits, is_float=is_float)
    mid, rep = tmp_path / "fmt.mid", tmp_path / "fmt.json"
    outcome = run_in_process(["-q", "run", "--input", str(path), "--midi-out", str(mid), "--report", str(rep)])
    assert outcome.code == 0, outcome.stderr
    assert_clean(outcome, [mid, rep], what=f"{bits}-bit")


def _extreme(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(n) / SR
    tone = 0.4 * np.sin(2 * np.pi * 330 * t)
    if kind == "nan":
        x = tone.copy()
        x[rng.integers(0, n, n // 20)] = np.nan
    elif kind == "all_nan":
        x = np.full(n, np.nan)
    elif kind == "inf":
        x = tone.copy()
        x[rng.integers(0, n, n // 20)] = np.inf
        x[rng.integers(0, n, n // 20)] = -np.inf
    elif kind == "huge":  # finite but far beyond full scale: squares overflow float32
        x = tone * 3e38
    elif kind == "denormal":
        x = tone * 1e-42
    elif kind == "dc":
        x = np.full(n, 0.7)
    elif kind == "full_scale":
        x = np.where(tone >= 0, 1.0, -1.0)
    elif kind == "noise":
        x = np.clip(rng.standard_normal(n), -1.0, 1.0)
    else:  # silence
        x = np.zeros(n)
    return x


@pytest.mark.parametrize("kind", ["nan", "all_nan", "inf", "huge", "denormal", "dc", "full_scale", "noise", "silence"])
def test_extreme_samples_give_a_complete_midi_file(tmp_path: Path, kind: str) -> None:
    rng = np.random.default_rng(3)
    n = int(2.0 * SR)
    x = np.concatenate([_extreme(kind, n, rng), 0.4 * np.sin(2 * np.pi * 262 * np.arange(n) / SR)])  # then playing
    path = tmp_path / f"{kind}.wav"
    with np.errstate(all="ignore"):
        write_wav(path, x, SR, bits=64 if kind in ("huge", "denormal") else 32, is_float=True)
    mid, rep = tmp_path / f"{kind}.mid", tmp_path / f"{kind}.json"
    outcome = run_in_process(["-q", "run", "--input", str(path), "--midi-out", str(mid), "--report", str(rep)])
    assert outcome.code == 0, outcome.stderr  # a strange signal is still a signal: the box plays on
    assert_clean(outcome, [mid, rep], what=kind)
    # the playing after the strange part is heard: the box has not been poisoned by it
    import json

    report = json.loads(rep.read_text())
    assert report["notes"] > 0, f"no notes after {kind}: the input poisoned the features"


def test_a_few_cases_through_a_real_process(tmp_path: Path) -> None:
    valid = _valid_wav_bytes(tmp_path, seconds=1.0)
    nan = tmp_path / "nan.wav"
    with np.errstate(all="ignore"):
        write_wav(nan, _extreme("nan", SR, np.random.default_rng(1)), SR, bits=32, is_float=True)
    cases = {
        "garbage": np.random.default_rng(2).integers(0, 256, 4000, dtype=np.uint8).tobytes(),
        "truncated": valid[: len(valid) // 2],
        "empty": b"",
        "nan": nan.read_bytes(),
        "valid": valid,
    }
    for name, data in cases.items():
        wav = tmp_path / f"p_{name}.wav"
        wav.write_bytes(data)
        mid, rep = tmp_path / f"p_{name}.mid", tmp_path / f"p_{name}.json"
        outcome = run_subprocess(["-q", "run", "--input", str(wav), "--midi-out", str(mid), "--report", str(rep)])
        assert_clean(outcome, [mid, rep], what=f"process {name}")
        assert outcome.code == (0 if name in ("nan", "valid") else 2), outcome.stderr
    # a missing input, an output folder that does not exist, an output that is a folder
    for name, argv in {
        "missing": ["--input", str(tmp_path / "nope.wav"), "--midi-out", str(tmp_path / "m.mid")],
        "no_folder": ["--input", str(DEMO), "--midi-out", str(tmp_path / "no" / "m.mid")],
        "is_dir": ["--input", str(DEMO), "--midi-out", str(tmp_path)],
    }.items():
        outcome = run_subprocess(["-q", "run", *argv])
        assert outcome.code == 2 and len([ln for ln in outcome.stderr.splitlines() if ln.strip()]) == 1, (name, outcome)
        assert_clean(outcome, [], what=name)
