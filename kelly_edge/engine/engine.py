"""One hop of the box: features -> budgeted models -> generator -> MIDI sink.

The same ``Engine.process_hop`` runs for a WAV file and for the live loop, so an offline run is a
faithful rehearsal of the stage. Time is audio time (samples consumed / sample rate).

Model rates (config ``models.<name>.rate``): ``hop`` models are tried every hop; ``step``, ``beat``
and ``bar`` models for each 16th step that starts a step, beat or bar. The generator plans each
step one step ahead of its grid time so micro-timing can move notes early.

Spreading: a bar's first step needs all five models; run in the hop that plans it, they and the
generator made that hop the slowest of the bar by far (its p99.9). So when a step needs more than
:data:`SPREAD_ABOVE` models (by default: beats and bars), they run *one per hop* in the
:data:`PRERUN_HOPS` hops just before the one that plans it (never before the previous step was
planned, so the generator state they read is the same); what is left (a deferred model, a tempo
too fast for the window) runs in the planning hop as before. Their audio features are then at
most ~50 ms older, against 1 s windows. Steps needing fewer models run them in the planning hop,
which keeps most hops free of inference.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from kelly_edge.config.schema import models_dir
from kelly_edge.emotion import thesaurus
from kelly_edge.emotion.follow import EmotionFollower
from kelly_edge.engine.clock import TempoGrid
from kelly_edge.engine.model_state import ModelStates
from kelly_edge.engine.playlog import PlayLog
from kelly_edge.engine.scheduler import Scheduler
from kelly_edge.engine.timing import HopTimes
from kelly_edge.features import encode
from kelly_edge.features.context import FeatureContext
from kelly_edge.generate.generator import Generator
from kelly_edge.generate.progression import ProgressionMemory
from kelly_edge.midi.sinks import MidiSink
from kelly_edge.models import spec
from kelly_edge.models.fallbacks import make_fallback
from kelly_edge.models.runner import LoadedModel, load_all
from kelly_edge.models.spec import Desc, Emo
from kelly_edge.tempo.source import TempoSource, file_tempo_source

log = logging.getLogger(__name__)

REPORT_EVERY_S = 1.0
MAX_EMOTION_SAMPLES = 4 * 3600  # the report keeps the last four hours of the emotion path
HEAR_EVERY_HOPS = 2
"""Harmony at the hop rate runs every this many hops (20 ms at 22.05 kHz): half the cost of every
hop (the chroma it reads is computed per run, not in batches), for ~5 ms more lag on average."""
PRERUN_HOPS = 5  # hops before a step is planned in which its models may run, one per hop
SPREAD_ABOVE = 1  # a step needing more models than this spreads them over the hops before it


@dataclass
class EmotionSample:
    t: float
    valence: float
    arousal: float
    label: str


@dataclass
class RunStats:
    """What a run report needs; filled as the engine goes."""

    hop_times: HopTimes = field(default_factory=HopTimes)  # bounded: recent window + histogram
    emotion: deque[EmotionSample] = field(default_factory=lambda: deque(maxlen=MAX_EMOTION_SAMPLES))
    keys: Counter[str] = field(default_factory=Counter)
    silent_hops: int = 0
    played: PlayLog = field(default_factory=PlayLog)  # the box's beats, chords and tempo (bounded)


class Engine:
    """The whole pipeline for one audio stream at ``sample_rate``.

    ``models`` maps spec names to loaded models (default: load from the config's models folder,
    falling back per model). ``clock`` is the scheduler's clock (injectable for tests). ``tempo``
    is polled at the end of every hop and its tempo applied (default: the one a recording can
    drive, :func:`~kelly_edge.tempo.source.file_tempo_source`; the live box passes its own).
    """

    def __init__(
        self,
        config: Any,
        sink: MidiSink,
        *,
        sample_rate: int,
        models: Mapping[str, LoadedModel] | None = None,
        clock: Callable[[], float] = time.perf_counter,
        tempo: TempoSource | None = None,
    ) -> None:
        self.config = config
        self.sample_rate = sample_rate
        self.ctx = FeatureContext(
            sample_rate=sample_rate, gate_db=config.audio.gate_db, input_gain_db=config.audio.input_gain_db
        )
        self.hop_length = self.ctx.hop_length
        self.grid = TempoGrid(config.tempo.bpm)
        self.tempo = tempo if tempo is not None else file_tempo_source(config)
        self.tempo.prepare(self.ctx)
        self.tempo_changes = 0
        self.sink = sink
        memory = ProgressionMemory() if config.generator.progression_memory else None
        # harmony every hop: the chord voice and bass strike when a change is heard, not on a 16th
        self._hear_chords = config.models.harmony.rate == "hop"
        self.generator = Generator(config.generator, sink, memory, reactive=self._hear_chords)
        self.scheduler = Scheduler(budget_s=config.scheduler.budget_ms / 1000.0, clock=clock)
        self._inputs = {s.name: np.zeros(s.n_in, dtype=np.float32) for s in spec.MODELS}
        self.model_states = ModelStates(  # the one owner of each model's source and on/off switch
            config, self.scheduler, self.generator, models if models is not None else load_all(models_dir(config)),
            initial={s.name: make_fallback(s.name)(self._neutral_input(s)) for s in spec.MODELS},
            audio_time=lambda: self.time_s,
        )
        self._rates = {s.name: config.models.get(s.name).rate for s in spec.MODELS}
        self._priority = [s.name for s in sorted(spec.MODELS, key=lambda m: m.priority)]
        # (harmony at the hop rate is run by _hear_chord, every HEAR_EVERY_HOPS hops)
        self._hop_rate = [name for name in self._priority if self._rates[name] == "hop" and not (name == "harmony" and self._hear_chords)]
        self._due_at = [  # the models each 16th of the bar needs, in priority order
            tuple(name for name in self._priority if self._rates[name] == "step"
                  or (self._rates[name] == "beat" and step % 4 == 0) or (self._rates[name] == "bar" and step == 0))
            for step in range(spec.N_STEPS)
        ]
        self._marked_step = -1  # the step whose models were last marked due
        intent = thesaurus.by_name(config.emotion.intent) if config.emotion.intent else None
        # the one owner of the followed emotion (training's dynamics rows use the same class)
        self.emotion = EmotionFollower(intent, float(config.emotion.intent_amount))
        self.vadi = self.emotion.vadi  # the heard emotion, smoothed (updated in place)
        self.emotion_vadi = self.emotion.emotion_vadi  # ... blended with the intent: what the music follows
        self._pad = np.zeros(self.hop_length, dtype=np.float32)
        self._emotion_out = np.zeros(spec.EMOTION.n_out, dtype=np.float32)
        self._samples = 0
        self._heard = False
        self._next_step = 0
        self._next_report_t = 0.0
        self.stats = RunStats()
        self.closed = False

    # --- model helpers ------------------------------------------------------------------------
    def _neutral_input(self, s: spec.ModelSpec) -> np.ndarray:
        x = np.zeros(s.n_in, dtype=np.float32)
        silent_desc = np.zeros(16, dtype=np.float32)
        silent_desc[Desc.INDEX["level_db"]] = silent_desc[Desc.INDEX["level_db_long"]] = -100.0
        silent_desc[Desc.INDEX["silence"]] = 1.0
        if s is spec.EMOTION:
            z12, z24 = np.zeros(12, np.float32), np.zeros(24, np.float32)
            return encode.encode_emotion(
                x, mel_summary=np.full(64, -100.0, np.float32), chroma_window=z12, chroma_long=z12,
                key_corr=z24, tonic=0, descriptors=silent_desc,
            )
        if s is spec.DYNAMICS:
            return encode.encode_dynamics(x, vadi=np.zeros(4, np.float32), descriptors=silent_desc, accents=np.zeros(16, np.float32))
        return x

    @property
    def models(self) -> Mapping[str, LoadedModel]:
        """Each model as it is now, read-only (:attr:`model_states` changes them)."""
        return self.model_states.models

    def model_status(self) -> dict[str, str]:
        return self.model_states.statuses()

    def _run_emotion(self) -> None:
        ctx = self.ctx
        x = encode.encode_emotion(
            self._inputs["emotion"], mel_summary=ctx.mel_summary, chroma_window=ctx.chroma_window,
            chroma_long=ctx.chroma_long, key_corr=ctx.key_corr, tonic=ctx.tonic, descriptors=ctx.descriptors,
        )
        self.scheduler.try_run("emotion", x)

    def _run_harmony(self) -> bool:
        x = encode.encode_harmony_context(self._inputs["harmony"], self.ctx)
        return self.scheduler.try_run("harmony", x)

    def _hear_chord(self, t: float) -> None:
        """Harmony at the hop rate: every :data:`HEAR_EVERY_HOPS` hops, run the model on this
        hop's features and let the generator follow the chord at once (it strikes at ``t`` on a
        change, logged at ``t``)."""
        if self.ctx.hops % HEAR_EVERY_HOPS:
            return
        self.scheduler.mark_due("harmony")
        if not self._run_harmony():
            return
        ctx = self.ctx
        if self.generator.hear_chord(self.scheduler.output("harmony"), now=t, tonic=ctx.tonic, major=ctx.major):
            self.stats.played.chord_at(t, self.generator.current_chord)

    def _run_melody(self, step: int) -> None:
        ctx = self.ctx
        x = encode.encode_melody(
            self._inputs["melody"], vadi=self.emotion_vadi, tonic=ctx.tonic, major=ctx.major,
            chord=self.generator.current_chord, prev_notes=self.generator.melody_history, step=step,
            heard_chroma=ctx.chroma_window,
        )
        self.scheduler.try_run("melody", x)

    def _run_dynamics(self) -> None:
        x = encode.encode_dynamics(
            self._inputs["dynamics"], vadi=self.emotion_vadi, descriptors=self.ctx.descriptors, accents=self.ctx.heard_bar
        )
        self.scheduler.try_run("dynamics", x)

    def _run_groove(self) -> None:
        ctx = self.ctx
        x = encode.encode_groove(
            self._inputs["groove"], vadi=self.emotion_vadi, heard_bar=ctx.heard_bar, heard_prev_bar=ctx.heard_prev_bar,
            tempo_bpm=self.grid.bpm, onset_rate=float(ctx.descriptors[Desc.INDEX["onset_rate"]]),
            prev_hits=self.generator.prev_hits,
        )
        self.scheduler.try_run("groove", x)

    def _run_pending(self, step: int | None, limit: int = len(spec.MODELS)) -> None:
        """Try pending models in priority order, at most ``limit`` of them (step-bound ones only
        when ``step``, the 16th in the bar they are for, is given)."""
        slots = self.scheduler.slots
        for name in self._priority:
            if limit <= 0:
                return
            if not slots[name].pending:
                continue
            if name == "emotion":
                self._run_emotion()
                self._follow_emotion()
            elif step is None:
                continue
            elif name == "harmony":
                self._run_harmony()
            elif name == "melody":
                self._run_melody(step)
            elif name == "dynamics":
                self._run_dynamics()
            elif name == "groove":
                self._run_groove()
            limit -= 1

    def _mark_step_due(self, k: int) -> None:
        """Mark the models that step ``k`` (absolute 16th index) needs, once per step."""
        if k == self._marked_step:
            return
        self._marked_step = k
        for name in self._due_at[k % spec.N_STEPS]:
            self.scheduler.mark_due(name)

    def _run_models(self, t: float) -> None:
        """The hop's model runs outside planning: one of the next step's models in the last
        :data:`PRERUN_HOPS` hops before it is planned (if it needs more than :data:`SPREAD_ABOVE`),
        else a pending emotion model. Either way one attempt per hop, so a deferred model's
        estimate decays at one step per hop."""
        k = self._next_step
        if len(self._due_at[k % spec.N_STEPS]) > SPREAD_ABOVE:
            grid = self.grid
            hop_s = self.ctx.hop_s
            hops_left = (grid.time_of(k) - grid.step_s - t) / hop_s  # > 0: not planned this hop
            window = min(PRERUN_HOPS, int(grid.step_s / hop_s) - 1)  # all after the previous step's planning
            if 0.0 < hops_left <= window:
                self._mark_step_due(k)
                self._run_pending(k % spec.N_STEPS, limit=1)
                return
        self._run_pending(None)

    def _follow_emotion(self) -> None:
        """Smooth the recognised VADI and lean it toward the intent (:class:`EmotionFollower`)."""
        self.emotion.follow(self.scheduler.output("emotion")[Emo.VADI], self.time_s)

    # --- the hop ------------------------------------------------------------------------------
    @property
    def time_s(self) -> float:
        """Audio time consumed so far."""
        return self._samples / self.sample_rate

    @property
    def played(self) -> PlayLog:
        """What the box played on its timeline: beats, downbeats, chords, tempo (read-only use)."""
        return self.stats.played

    def process_hop(self, hop: np.ndarray) -> None:
        """Consume one hop of mono float32 samples (``hop_length`` of them, fewer at the very end)."""
        sched = self.scheduler
        sched.begin_hop()
        t_start = self.time_s
        self._samples += len(hop)
        t = self.time_s
        ctx = self.ctx
        if len(hop) < self.hop_length:  # the last, partial hop of a file: zero-pad, keep its true length
            self._pad[: len(hop)] = hop
            self._pad[len(hop) :] = 0.0
            hop = self._pad
        ctx.update(hop, step=self.grid.step_in_bar(t_start))
        for name in self._hop_rate:
            sched.mark_due(name)
        self._run_models(t)
        if not ctx.silent:
            self._heard = True
        # closed until the player is first heard; closes again after the tail of silence
        gate_open = self._heard and ctx.silent_for_s < self.config.audio.silence_tail_s
        if self._hear_chords and gate_open:
            self._hear_chord(t)
        grid = self.grid
        while grid.time_of(self._next_step) < t + grid.step_s:
            k = self._next_step
            step = k % spec.N_STEPS
            self._mark_step_due(k)
            self._run_pending(step)
            self.generator.plan_step(
                step_index=k, t_step=grid.time_of(k), step_s=grid.step_s, tonic=ctx.tonic, major=ctx.major,
                emotion=self._emotion_for_generator(), melody=sched.output("melody"),
                harmony=sched.output("harmony"), dynamics=sched.output("dynamics"), groove=sched.output("groove"),
                gate_open=gate_open, player_onset_rate=float(ctx.descriptors[Desc.INDEX["onset_rate"]]),
            )
            # the tempo path: the tempo followed, not the rate of a grid bending onto a beat
            bpm = self.tempo.tracked_bpm or grid.bpm
            self.stats.played.step(k, grid.time_of(k), bpm, self.generator.current_chord, gate_open)
            self._next_step += 1
        self.generator.advance(t)
        self._observe(t)
        self._follow_tempo(t)
        self.stats.hop_times.add(sched.end_hop())

    def _emotion_for_generator(self) -> np.ndarray:
        np.copyto(self._emotion_out, self.scheduler.output("emotion"))
        self._emotion_out[Emo.VADI] = self.emotion_vadi
        return self._emotion_out

    def _observe(self, t: float) -> None:
        ctx = self.ctx
        if ctx.silent:
            self.stats.silent_hops += 1
        else:
            self.stats.keys[ctx.key_name] += 1
        if t >= self._next_report_t:
            v, a = float(self.emotion_vadi[0]), float(self.emotion_vadi[1])
            self.stats.emotion.append(EmotionSample(round(t, 3), round(v, 4), round(a, 4), thesaurus.nearest(v, a).name))
            self._next_report_t += REPORT_EVERY_S

    def recent_hop_times(self, n: int) -> np.ndarray:
        """The last ``n`` hop processing times (s), oldest first (at most the last minute)."""
        return self.stats.hop_times.recent(n)

    # --- control ------------------------------------------------------------------------------
    def _follow_tempo(self, t: float) -> None:
        """Apply what the tempo source says after this hop (a tempo, or a bent rate that pulls
        the grid onto the player's beat); it takes effect from the next step planned."""
        bpm = self.tempo.poll(t, self.ctx, self.grid)
        if bpm is not None and abs(bpm - self.grid.bpm) > 1e-6:
            self.set_tempo(bpm)
            self.tempo_changes += 1

    def set_tempo(self, bpm: float) -> None:
        self.grid.set_bpm(bpm, self.time_s)
        self.sink.set_tempo(self.time_s, bpm)

    def set_intent(self, name: str | None, amount: float) -> None:
        """Lean the music toward the thesaurus emotion ``name`` by ``amount`` 0..1 (None: follow
        the playing only). The config object is updated too, so status shows what is in force."""
        self.config = dataclasses.replace(
            self.config, emotion=dataclasses.replace(self.config.emotion, intent=name, intent_amount=amount)
        )
        # in force now, not at the emotion model's next run
        self.emotion.set_intent(thesaurus.by_name(name) if name else None, amount)

    def restart_bar(self) -> None:
        """A bar starts now (MIDI Start): the next planned step is a downbeat at the current time.

        Step numbers keep increasing (the generator and its queue stay consistent); the grid is
        re-anchored so the first step of the next bar index falls at ``time_s``.
        """
        bar = -(-self._next_step // spec.N_STEPS) * spec.N_STEPS  # round up to a bar start
        self._next_step = bar
        self.grid.restart_at(bar, self.time_s)

    def panic(self) -> None:
        self.generator.panic(self.time_s)

    def close(self) -> None:
        """End the run: every note off at the current audio time; the sink is closed by its owner."""
        if not self.closed:
            self.closed = True
            self.generator.close(self.time_s)

