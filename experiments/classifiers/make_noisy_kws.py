"""A noisy, reverberant keyword-spotting set with held-out speakers, made here without downloads.

Twenty words (Speech Commands' digits and commands: yes no up down left right on off stop go
zero ... nine) spoken by espeak-ng (Debian package espeak-ng) in several English accents and
voice variants, each take at its own speed (130-190 words per minute) and pitch; a "speaker"
is one accent + voice pair. Every 1 s, 16 kHz clip is

1. the trimmed word at a random position,
2. convolved with the impulse response of a simulated room: a direct path, 6-14 early
   reflections in the first 40 ms, and a diffuse tail of Gaussian noise whose high band
   decays faster than its low band (RT60 0.2-1.0 s), at a direct-to-reverberant ratio of
   -3 to 8 dB,
3. mixed with a random 1 s of background noise at an SNR uniform in [0, 15] dB. Noise kinds:
   babble (four to six other espeak-ng talkers reading sentences that hold none of the
   words), coloured noise (1/f^beta, beta uniform in [0, 2]), mains hum with harmonics over a
   fan-like rumble, band-passed pink noise with tremolo synthesised by sox, and music
   rendered by fluidsynth from a General MIDI soundfont (Debian timgm6mb-soundfont),
4. set to a random level (RMS -35 to -15 dBFS).

Splits by speaker, as Speech Commands splits by speaker: validation and test speakers are
never heard in training. The test speakers have an accent no training speaker has
(en-gb-scotland) or a voice variant none has (f4), the validation speakers likewise (en-us-nyc,
m6). Rooms and noise recordings come from two disjoint pools: training clips use the first,
validation and test clips the second (its babble from other accents and voices, its hum at
60 Hz instead of 50 Hz, other instruments). The training pool's noise files and impulse
responses are also written to `_background_noise_/` and `_room_impulse_responses_/` for
augmentation (folders starting with "_" are not classes).

Layout (Speech Commands v0.02's):

    OUT/yes/3f2a9c01_nohash_0.wav ...   one folder per word; SPEAKER_nohash_TAKE.wav
    OUT/validation_list.txt, OUT/testing_list.txt   clips of the held-out speakers
    OUT/_background_noise_/*.wav, OUT/_room_impulse_responses_/*.wav
    OUT/manifest.json                   speakers, splits, settings (written last)

Deterministic for a seed (numpy generators keyed by seed and purpose; espeak-ng, sox and
fluidsynth are deterministic). About two minutes on two CPU cores:

    python experiments/classifiers/make_noisy_kws.py --out data/noisy_kws
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from audiozoo.audio.io import write_audio
from audiozoo.data import passages
from audiozoo.data.soundfont import DEFAULT_SOUNDFONT

RATE = 16000
CLIP = RATE  # 1 s
WORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go", "zero", "one",
         "two", "three", "four", "five", "six", "seven", "eight", "nine")
TRAIN_ACCENTS = ("en-us", "en-gb", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd")
TRAIN_VOICES = ("m1", "m2", "m3", "m5", "m7", "f1", "f2", "f5")
# Held-out speakers: an accent and a voice no training speaker has, each with heard partners.
SPLIT_SPEAKERS = {
    "validation": [("en-us-nyc", v) for v in ("m1", "f2", "m5")] + [("en-us", "m6"), ("en-gb", "m6")],
    "test": [("en-gb-scotland", v) for v in ("m2", "f1", "m7", "f4")] + [("en-us", "f4"), ("en-gb-x-rp", "f4")],
}
# Talkers of the two noise pools' babble: the training pool's are training speakers, the
# held-out pool's are heard nowhere else.
BABBLE_SPEAKERS = {"train": [(a, v) for a in TRAIN_ACCENTS for v in TRAIN_VOICES],
                   "heldout": [(a, v) for a in ("en-029", "en-gb-x-rp", "en-us") for v in ("m4", "f3", "m8")]}
# Sentences without any of the twenty words (nor "to", "for", "won", ...).
SENTENCES = (
    "The weather was pleasant that morning in the valley",
    "Please bring the blue basket inside the kitchen",
    "She asked whether the library would be open late",
    "A small boat drifted slowly past the harbour wall",
    "We should paint the fence before the summer ends",
    "His brother plays the violin in a city orchestra",
    "The children laughed at the clever puppet show",
    "Fresh bread smells wonderful early in the day",
    "They planted tomatoes beside the garden path",
    "Heavy rain made the old bridge slippery and dangerous",
    "My neighbour keeps bees behind her little cottage",
    "The museum displays paintings by local artists",
)
# Noise pools: mains frequency and General MIDI programs of the music per pool.
MAINS_HZ = {"train": 50.0, "heldout": 60.0}
MUSIC_PROGRAMS = {"train": (0, 24, 40), "heldout": (19, 48, 73)}  # piano, guitar, violin / organ, strings, flute
NOISE_SECONDS = 10.0
FILES_PER_KIND = 3
ROOMS_PER_POOL = {"train": 40, "heldout": 20}
TAKES = {"train": 3, "validation": 2, "test": 3}
SNR_DB, RT60_S, DRR_DB, LEVEL_DBFS = (0.0, 15.0), (0.2, 1.0), (-3.0, 8.0), (-35.0, -15.0)


def speaker_id(accent: str, voice: str) -> str:
    return hashlib.sha1(f"{accent}+{voice}".encode()).hexdigest()[:8]


def rng_for(seed: int, *purpose) -> np.random.Generator:
    """A generator keyed by the seed and a purpose (strings hashed stably)."""
    keys = [int(hashlib.sha1(str(p).encode()).hexdigest()[:8], 16) for p in purpose]
    return np.random.default_rng([seed, *keys])


# ---- speech --------------------------------------------------------------------------------
def speak(text: str, accent: str, voice: str, speed: int, pitch: int) -> np.ndarray:
    """espeak-ng's rendering of `text`, float32 at 16 kHz."""
    done = subprocess.run(["espeak-ng", "-v", f"{accent}+{voice}", "-s", str(speed), "-p", str(pitch),
                           "--stdout", text], capture_output=True, check=True)
    audio, rate = sf.read(io.BytesIO(done.stdout), dtype="float32")
    return soxr.resample(audio, rate, RATE).astype(np.float32)


def trim(audio: np.ndarray, floor_db: float = -40.0) -> np.ndarray:
    """Without the leading and trailing parts quieter than floor_db below the peak (10 ms
    frames), keeping 20 ms on each side."""
    frames = audio[: len(audio) // 160 * 160].reshape(-1, 160)
    level = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)
    loud = np.flatnonzero(level > level.max() + floor_db)
    start, stop = max(loud[0] * 160 - 320, 0), min((loud[-1] + 1) * 160 + 320, len(audio))
    return audio[start:stop]


def word_take(word: str, accent: str, voice: str, rng: np.random.Generator) -> np.ndarray:
    """One take of `word`, trimmed, at most 0.9 s (spoken faster until it fits)."""
    speed, pitch = int(rng.integers(130, 191)), int(rng.integers(20, 81))
    while True:
        audio = trim(speak(word, accent, voice, speed, pitch))
        if len(audio) <= 0.9 * RATE or speed > 400:
            return audio[: int(0.9 * RATE)]
        speed += 40


# ---- rooms ---------------------------------------------------------------------------------
def room_impulse_response(rng: np.random.Generator) -> np.ndarray:
    """A simulated room: direct path at tap 0, early reflections, a two-band diffuse tail."""
    rt60 = rng.uniform(*RT60_S)
    taps = int(1.2 * rt60 * RATE)
    t = np.arange(taps) / RATE
    rir = np.zeros(taps)
    rir[0] = 1.0
    for _ in range(rng.integers(6, 15)):
        delay = rng.uniform(0.001, 0.040)
        rir[int(delay * RATE)] += rng.choice([-1, 1]) * rng.uniform(0.2, 0.7) * np.exp(-6.9 * delay / rt60)
    # Air and walls absorb high frequencies faster: above 1 kHz the tail decays in 0.6 RT60.
    low_band = np.fft.rfftfreq(taps, 1 / RATE) < 1000.0
    low, high = (np.fft.irfft(np.fft.rfft(rng.standard_normal(taps)) * mask, taps)
                 for mask in (low_band, ~low_band))
    tail = low * np.exp(-6.9 * t / rt60) + high * np.exp(-6.9 * t / (0.6 * rt60))
    tail[: int(0.005 * RATE)] = 0.0  # the diffuse field builds up after the first reflections
    drr = rng.uniform(*DRR_DB)
    tail *= np.sqrt(np.sum(rir**2) * 10 ** (-drr / 10) / np.sum(tail**2))
    rir = rir + tail
    return (rir / np.sqrt(np.sum(rir**2))).astype(np.float32)


def reverberate(audio: np.ndarray, rir: np.ndarray) -> np.ndarray:
    n = 1 << (len(audio) + len(rir) - 2).bit_length()
    return np.fft.irfft(np.fft.rfft(audio, n) * np.fft.rfft(rir, n), n)[: len(audio)].astype(np.float32)


# ---- noise ---------------------------------------------------------------------------------
def rms_normalised(audio: np.ndarray) -> np.ndarray:
    return (audio / np.sqrt(np.mean(audio**2) + 1e-12)).astype(np.float32)


def coloured(rng: np.random.Generator, length: int) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(length))
    freqs = np.arange(len(spectrum)) / length
    beta = rng.uniform(0.0, 2.0)
    shaping = np.where(freqs > 0, np.maximum(freqs, 1 / length) ** (-beta / 2), 0.0)
    return rms_normalised(np.fft.irfft(spectrum * shaping, length))


def babble(rng: np.random.Generator, length: int, talkers: list[tuple[str, str]]) -> np.ndarray:
    mix = np.zeros(length, np.float32)
    for _ in range(rng.integers(4, 7)):
        accent, voice = talkers[rng.integers(len(talkers))]
        speech = np.zeros(0, np.float32)
        while len(speech) < length:
            sentence = SENTENCES[rng.integers(len(SENTENCES))]
            speech = np.concatenate([speech, speak(sentence, accent, voice, int(rng.integers(140, 200)),
                                                   int(rng.integers(20, 81)))])
        start = rng.integers(len(speech) - length + 1)
        mix += rms_normalised(speech[start:start + length])
    return rms_normalised(mix)


def hum(rng: np.random.Generator, length: int, mains: float) -> np.ndarray:
    t = np.arange(length) / RATE
    tone = sum(rng.uniform(0.2, 1.0) / k * np.sin(2 * np.pi * k * mains * t + rng.uniform(0, 6.3))
               for k in range(1, 8))
    rumble = soxr.resample(rng.standard_normal(length // 40 + 1), RATE / 40, RATE)[:length]
    return rms_normalised(rms_normalised(tone) + rng.uniform(0.3, 1.0) * rms_normalised(rumble))


def sox_noise(rng: np.random.Generator, length: int) -> np.ndarray:
    """Band-passed pink noise with a slow tremolo (a fan, running water), made by sox."""
    centre, width = int(rng.integers(300, 2500)), int(rng.integers(200, 1500))
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "n.wav")
        subprocess.run(["sox", "-R", "-n", "-r", str(RATE), "-b", "16", path, "synth", str(length / RATE),
                        "pinknoise", "band", str(centre), str(width), "tremolo",
                        f"{rng.uniform(0.5, 6):.2f}", f"{rng.uniform(20, 70):.0f}"], check=True)
        audio, _ = sf.read(path, dtype="float32")
    return rms_normalised(np.resize(audio, length))


def music(rng: np.random.Generator, length: int, programs: tuple[int, ...]) -> np.ndarray:
    program = int(programs[rng.integers(len(programs))])
    piece = passages.compose(program, length / RATE, int(rng.integers(2**31)))
    audio, _ = passages.render_passage(piece, sample_rate=RATE, num_samples=length,
                                       soundfont=DEFAULT_SOUNDFONT, gain=passages.DEFAULT_GAIN)
    return rms_normalised(audio)


def noise_pool(seed: int, pool: str) -> dict[str, np.ndarray]:
    """{name: float32 noise of NOISE_SECONDS} of one pool."""
    length = int(NOISE_SECONDS * RATE)
    makers = {"babble": lambda r: babble(r, length, BABBLE_SPEAKERS[pool]),
              "coloured": lambda r: coloured(r, length),
              "hum": lambda r: hum(r, length, MAINS_HZ[pool]),
              "fan": lambda r: sox_noise(r, length),
              "music": lambda r: music(r, length, MUSIC_PROGRAMS[pool])}
    return {f"{kind}_{i}": make(rng_for(seed, "noise", pool, kind, i))
            for kind, make in makers.items() for i in range(FILES_PER_KIND)}


# ---- clips ---------------------------------------------------------------------------------
def noisy_clip(speech: np.ndarray, rir: np.ndarray, noise: np.ndarray,
               rng: np.random.Generator) -> np.ndarray:
    """speech placed in 1 s, reverberated, mixed with a crop of noise at a random SNR, at a
    random level."""
    clip = np.zeros(CLIP, np.float32)
    start = rng.integers(CLIP - len(speech) + 1)
    clip[start:start + len(speech)] = speech
    clip = reverberate(clip, rir)
    offset = rng.integers(len(noise) - CLIP + 1)
    crop = noise[offset:offset + CLIP]
    snr = rng.uniform(*SNR_DB)
    mixed = clip + crop * np.sqrt(np.mean(clip**2) / (np.mean(crop**2) * 10 ** (snr / 10)))
    level = 10 ** (rng.uniform(*LEVEL_DBFS) / 20) / np.sqrt(np.mean(mixed**2))
    mixed = mixed * level
    peak = np.max(np.abs(mixed))
    return mixed / peak * 0.99 if peak > 0.99 else mixed  # a level, not clipping


def speakers() -> dict[str, list[tuple[str, str]]]:
    train = [(a, v) for a in TRAIN_ACCENTS for v in TRAIN_VOICES]
    return {"train": train, **SPLIT_SPEAKERS}


def make(out: Path, seed: int, takes: dict[str, int], words=WORDS) -> dict:
    if out.exists() and any(out.iterdir()):
        raise SystemExit(f"{out} is not empty; give a new --out")
    pools = {pool: noise_pool(seed, pool) for pool in ("train", "heldout")}
    rooms = {pool: [room_impulse_response(rng_for(seed, "room", pool, i)) for i in range(n)]
             for pool, n in ROOMS_PER_POOL.items()}
    for name, audio in pools["train"].items():
        write_audio(out / "_background_noise_" / f"{name}.wav", audio / np.max(np.abs(audio)) * 0.5, RATE)
    for i, rir in enumerate(rooms["train"]):
        write_audio(out / "_room_impulse_responses_" / f"room_{i:02d}.wav", rir / np.max(np.abs(rir)) * 0.9, RATE)
    lists = {"validation": [], "test": []}
    for split, people in speakers().items():
        pool = "train" if split == "train" else "heldout"
        noises = list(pools[pool].values())
        for accent, voice in people:
            for word in words:
                for take in range(takes[split]):
                    rng = rng_for(seed, "clip", accent, voice, word, take)
                    speech = word_take(word, accent, voice, rng)
                    clip = noisy_clip(speech, rooms[pool][rng.integers(len(rooms[pool]))],
                                      noises[rng.integers(len(noises))], rng)
                    name = f"{word}/{speaker_id(accent, voice)}_nohash_{take}.wav"
                    write_audio(out / name, clip, RATE)
                    if split != "train":
                        lists[split].append(name)
        print(f"{split}: {len(people)} speakers", flush=True)
    for split, names in lists.items():
        (out / f"{split if split == 'validation' else 'testing'}_list.txt").write_text("\n".join(names) + "\n")
    manifest = {"seed": seed, "words": list(words), "sample_rate": RATE, "takes": takes,
                "speakers": {speaker_id(a, v): {"accent": a, "voice": v, "split": split}
                             for split, people in speakers().items() for a, v in people},
                "snr_db": SNR_DB, "rt60_s": RT60_S, "drr_db": DRR_DB, "level_dbfs": LEVEL_DBFS,
                "noise_files_per_pool": {p: sorted(n) for p, n in pools.items()}}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="data/noisy_kws", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--takes", type=int, nargs=3, default=[TAKES[s] for s in TAKES],
                        metavar=("TRAIN", "VALIDATION", "TEST"), help="takes per speaker and word")
    parser.add_argument("--words", nargs="+", default=list(WORDS))
    args = parser.parse_args(argv)
    manifest = make(args.out, args.seed, dict(zip(TAKES, args.takes)), tuple(args.words))
    counts = {s: sum(1 for v in manifest["speakers"].values() if v["split"] == s) for s in TAKES}
    print(f"wrote {args.out}: {len(args.words)} words, speakers {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
