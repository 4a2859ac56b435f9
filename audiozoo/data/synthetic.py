"""SyntheticNotes: the built-in default dataset of procedural pitched notes.

Every config runs on a fresh machine without a download because this dataset is
made on the fly. Each example is one note with a MIDI pitch, a velocity and a
timbre family, NSynth-style, so pitch- and family-conditioned models have
something meaningful to learn:

* ``sine``   - the fundamental alone;
* ``square`` - odd harmonics with amplitude 1/n (no even harmonics at all);
* ``saw``    - all harmonics with amplitude 1/n;
* ``pluck``  - all harmonics, partial n decaying at a rate proportional to n, so
  the note starts bright and mellows (a closed-form discrete summation, Moorer 1976);
* ``bell``   - inharmonic partials at 1, 2.76, 5.40, 8.93, 13.34, 18.64 times the
  fundamental (a free bar's modes), each decaying exponentially, faster when higher.

Partials at or above Nyquist are dropped, so nothing aliases. Every note has an
attack/decay/sustain/release envelope and is scaled so its peak is exactly
``0.9 * velocity / 127``. Each note also gets a random start phase and a detune of
at most 5 cents, unlabelled, so notes sharing labels are not identical.

A note lasts 1 s (or ``segment_length`` samples if that is longer); a shorter
``segment_length`` is a crop at an offset drawn from the rng that ``example`` is
given, so successive epochs see different parts of the same note while the note
itself depends only on (seed, index); ``crop="start"`` takes the onset instead.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence

import numpy as np

from audiozoo.data.base import DataError, DatasetMixin, Example, check_crop

FAMILY_NAMES: tuple[str, ...] = ("sine", "square", "saw", "pluck", "bell")
VELOCITIES: tuple[int, ...] = (25, 50, 75, 100, 127)
MAX_PEAK = 0.9

# (attack s, decay s, sustain level, release s). Pluck and bell decay through their
# partials, so their envelopes only shape the onset and avoid a click at the end.
_ENVELOPES = {
    "sine": (0.01, 0.1, 0.8, 0.2),
    "square": (0.01, 0.1, 0.7, 0.2),
    "saw": (0.01, 0.1, 0.7, 0.2),
    "pluck": (0.002, 0.05, 1.0, 0.05),
    "bell": (0.002, 0.05, 1.0, 0.1),
}
_BELL_RATIOS = np.array([1.0, 2.756, 5.404, 8.933, 13.344, 18.64])
_BELL_AMPS = np.array([1.0, 0.7, 0.5, 0.35, 0.25, 0.18])
_BELL_DECAYS = np.array([1.5, 3.0, 5.0, 7.0, 9.0, 12.0])  # 1/s
_PLUCK_BRIGHTNESS = 0.85  # partial n starts at 0.85**n
_PLUCK_DECAY = 2.5  # 1/s; partial n decays at n * this rate
_MAX_DETUNE_CENTS = 5.0


@dataclasses.dataclass(frozen=True)
class NoteSpec:
    """One synthetic note: its labels and its unlabelled variation."""

    pitch: int  # MIDI note number
    family: int  # index into the dataset's ``families``
    velocity: int  # one of VELOCITIES
    phase: float  # start phase of the fundamental, cycles
    detune_cents: float  # within +-_MAX_DETUNE_CENTS


def midi_to_hz(pitch: float) -> float:
    """Equal-tempered frequency of a MIDI note number (A4 = 69 = 440 Hz)."""
    return 440.0 * 2.0 ** ((pitch - 69) / 12)


def velocity_to_peak(velocity: int) -> float:
    """Peak amplitude of a note of this MIDI velocity (linear, 127 -> 0.9)."""
    return MAX_PEAK * velocity / 127


def render_note(
    pitch: int,
    family: str,
    velocity: int,
    *,
    sample_rate: int,
    num_samples: int,
    phase: float = 0.0,
    detune_cents: float = 0.0,
) -> np.ndarray:
    """Renders one full note as float32 [num_samples] with peak ``velocity_to_peak``.

    ``phase`` (in cycles of the fundamental) and ``detune_cents`` vary the waveform
    without changing what the note is labelled as.
    """
    if family not in _ENVELOPES:
        raise DataError(f"unknown synthetic family {family!r}; valid names: {', '.join(FAMILY_NAMES)}")
    f0 = midi_to_hz(pitch + detune_cents / 100)
    if f0 >= sample_rate / 2:
        raise DataError(
            f"pitch {pitch} ({f0:.0f} Hz) is not below Nyquist ({sample_rate / 2:.0f} Hz); "
            "lower the pitch or raise the sample rate"
        )
    t = np.arange(num_samples) / sample_rate
    # Unwrapped phase of the fundamental in cycles; float64 keeps long notes precise.
    turns = t * f0 + phase
    wave = _TIMBRES[family](turns, t, f0, sample_rate)
    wave = wave * _adsr(family, num_samples, sample_rate)
    peak = np.max(np.abs(wave))
    return (wave * (velocity_to_peak(velocity) / peak)).astype(np.float32)


def _adsr(family: str, num_samples: int, sample_rate: int) -> np.ndarray:
    """Piecewise-linear attack/decay/sustain/release envelope over the whole note."""
    attack, decay, sustain, release = _ENVELOPES[family]
    end = num_samples / sample_rate
    times = [0.0, attack, attack + decay, end - release, end]
    levels = [0.0, 1.0, sustain, sustain, 0.0]
    return np.interp(np.arange(num_samples) / sample_rate, times, levels)


def _num_harmonics(f0: float, sample_rate: int, step: int = 1) -> int:
    """How many of the harmonics 1, 1+step, 1+2*step, ... lie below Nyquist."""
    highest = int(np.ceil(sample_rate / 2 / f0)) - 1  # strictly below Nyquist
    return (highest - 1) // step + 1


@functools.lru_cache(maxsize=256)
def _wavetable(step: int, num_harmonics: int) -> np.ndarray:
    """One period of sum_k sin(2 pi n_k x) / n_k, n_k = 1, 1+step, ...; one wrap sample.

    The table is 16x oversampled relative to its top harmonic so that linear
    interpolation between entries stays accurate; it is read-only because cached.
    """
    harmonics = 1 + step * np.arange(num_harmonics)
    size = max(2048, 16 * 2 ** int(np.ceil(np.log2(harmonics[-1] + 1))))
    spectrum = np.zeros(size // 2 + 1, np.complex128)
    # irfft of -i * a * size / 2 at bin n is a * sin(2 pi n x).
    spectrum[harmonics] = -0.5j * size / harmonics
    table = np.fft.irfft(spectrum, size)
    table = np.append(table, table[0])
    table.setflags(write=False)
    return table


def _lookup(table: np.ndarray, cycles: np.ndarray) -> np.ndarray:
    """Linearly interpolated wavetable read at phases in [0, 1)."""
    pos = cycles * (len(table) - 1)
    i = pos.astype(np.int64)
    frac = pos - i
    return table[i] + (table[i + 1] - table[i]) * frac


# Each timbre maps (turns: phase of the fundamental in cycles, t: seconds, f0: Hz,
# sample_rate) to an unnormalised waveform.


def _sine(turns, t, f0, sample_rate):
    return np.sin(2 * np.pi * np.mod(turns, 1.0))


def _square(turns, t, f0, sample_rate):
    return _lookup(_wavetable(2, _num_harmonics(f0, sample_rate, step=2)), np.mod(turns, 1.0))


def _saw(turns, t, f0, sample_rate):
    return _lookup(_wavetable(1, _num_harmonics(f0, sample_rate)), np.mod(turns, 1.0))


def _pluck(turns, t, f0, sample_rate):
    """sum_{n=1..N} q(t)^n sin(n theta) in closed form: Im z (1 - z^N) / (1 - z).

    With q(t) = q0 exp(-r t), partial n decays at rate n r: higher harmonics die
    first, like a plucked string. q0 < 1 keeps the denominator away from zero.
    """
    n = _num_harmonics(f0, sample_rate)
    theta = 2 * np.pi * np.mod(turns, 1.0)
    q = _PLUCK_BRIGHTNESS * np.exp(-_PLUCK_DECAY * t)
    z = q * np.exp(1j * theta)
    if _PLUCK_BRIGHTNESS**n < 1e-9:
        # The truncation term q^N is negligible (and slow as it underflows): low notes.
        return (z / (1 - z)).imag
    z_n = q**n * np.exp(1j * n * theta)
    return (z * (1 - z_n) / (1 - z)).imag


def _bell(turns, t, f0, sample_rate):
    keep = _BELL_RATIOS * f0 < sample_rate / 2
    out = np.zeros_like(t)
    for ratio, amp, rate in zip(_BELL_RATIOS[keep], _BELL_AMPS[keep], _BELL_DECAYS[keep]):
        # Inharmonic partials share no period, so each wraps its own phase.
        out += amp * np.exp(-rate * t) * np.sin(2 * np.pi * np.mod(ratio * turns, 1.0))
    return out


_TIMBRES = {"sine": _sine, "square": _square, "saw": _saw, "pluck": _pluck, "bell": _bell}


class SyntheticNotes(DatasetMixin):
    """Procedural notes; see the module docstring.

    Example keys: ``audio`` float32 [segment_length], ``pitch`` int32 (MIDI),
    ``family`` int32 (index into ``self.families``, which is ``FAMILY_NAMES`` unless
    a subset was asked for), ``velocity`` int32 (one of ``VELOCITIES``).
    ``pitch_range`` is inclusive at both ends.
    """

    def __init__(
        self,
        num_examples: int = 4096,
        *,
        sample_rate: int = 16000,
        segment_length: int = 16000,
        seed: int = 0,
        pitch_range: Sequence[int] = (36, 84),
        families: Sequence[str] | str = FAMILY_NAMES,
        crop: str = "random",
    ):
        _check_positive("num_examples", num_examples)
        self.crop = check_crop(crop)
        _check_positive("sample_rate", sample_rate)
        _check_positive("segment_length", segment_length)
        if int(seed) < 0:
            raise DataError(f"seed must be >= 0, got {seed}; set --config.data.seed to a non-negative int")
        self.num_examples = int(num_examples)
        self.sample_rate = int(sample_rate)
        self.segment_length = int(segment_length)
        self.seed = int(seed)
        self.pitch_range = _check_pitch_range(pitch_range, self.sample_rate)
        self.families = _check_families(families)
        # A note is 1 s long, or the whole segment if that is longer.
        self.note_length = max(self.sample_rate, self.segment_length)

    def __len__(self) -> int:
        return self.num_examples

    @property
    def num_families(self) -> int:
        return len(self.families)

    @property
    def num_pitches(self) -> int:
        return self.pitch_range[1] - self.pitch_range[0] + 1

    def note_spec(self, index: int) -> NoteSpec:
        """What note ``index`` is: a function of (seed, index) only."""
        index = self._check_index(index)
        # A child stream of the seed, distinct from any rng handed to `example`.
        rng = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(index,)))
        return NoteSpec(
            pitch=int(rng.integers(self.pitch_range[0], self.pitch_range[1] + 1)),
            family=int(rng.integers(self.num_families)),
            velocity=VELOCITIES[int(rng.integers(len(VELOCITIES)))],
            # Unlabelled variation, so notes with equal labels (and the train and
            # eval splits) are not sample-for-sample copies of each other.
            phase=float(rng.random()),
            detune_cents=float(rng.uniform(-_MAX_DETUNE_CENTS, _MAX_DETUNE_CENTS)),
        )

    def note(self, index: int) -> np.ndarray:
        """The full, uncropped note ``index`` as float32 [note_length]."""
        return self._render(self.note_spec(index))

    def example(self, index: int, rng: np.random.Generator) -> Example:
        spec = self.note_spec(index)
        audio = self._render(spec)
        offset = int(rng.integers(self.note_length - self.segment_length + 1))
        offset = offset if self.crop == "random" else 0
        return {
            "audio": audio[offset : offset + self.segment_length],
            "pitch": np.int32(spec.pitch),
            "family": np.int32(spec.family),
            "velocity": np.int32(spec.velocity),
        }

    def _render(self, spec: NoteSpec) -> np.ndarray:
        return render_note(
            spec.pitch,
            self.families[spec.family],
            spec.velocity,
            sample_rate=self.sample_rate,
            num_samples=self.note_length,
            phase=spec.phase,
            detune_cents=spec.detune_cents,
        )


def _check_positive(name: str, value: int) -> None:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise DataError(f"{name} must be a positive integer, got {value!r}")


def _check_pitch_range(pitch_range: Sequence[int], sample_rate: int) -> tuple[int, int]:
    try:
        low, high = (int(p) for p in pitch_range)
    except (TypeError, ValueError):
        raise DataError(
            f"pitch_range must be two MIDI numbers (low, high), got {pitch_range!r}"
        ) from None
    if not 0 <= low <= high <= 127:
        raise DataError(
            f"pitch_range {pitch_range!r} must satisfy 0 <= low <= high <= 127 (MIDI numbers); "
            "fix --config.data.pitch_range"
        )
    # The detuned top note must stay below Nyquist too.
    if midi_to_hz(high + _MAX_DETUNE_CENTS / 100) >= sample_rate / 2:
        raise DataError(
            f"pitch_range top {high} ({midi_to_hz(high):.0f} Hz) is not below Nyquist "
            f"({sample_rate / 2:.0f} Hz at sample_rate {sample_rate}); lower the range's top "
            "or raise the sample rate"
        )
    return low, high


def _check_families(families: Sequence[str] | str) -> tuple[str, ...]:
    # A string (e.g. from a command-line override) is a comma-separated list.
    if isinstance(families, str):
        families = [f.strip() for f in families.split(",") if f.strip()]
    families = tuple(families)
    valid = ", ".join(FAMILY_NAMES)
    if not families:
        raise DataError(f"families is empty; choose some of: {valid}")
    unknown = [f for f in families if f not in FAMILY_NAMES]
    if unknown:
        raise DataError(f"unknown synthetic families {unknown}; valid names: {valid}")
    if len(set(families)) != len(families):
        raise DataError(f"families {families} lists a name twice; each family gets one label id")
    return families
