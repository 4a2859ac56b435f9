"""The `audiozoo` command line.

    audiozoo train --config configs/NAME.py --workdir DIR [--config.a.b=v ...] [--distributed]
    audiozoo generate --workdir DIR --seconds S --out FILE.wav [--batch N] [--temperature T]
                      [--method M] [--prime FILE.wav] [--global-id I] [--local-cond F.npy]
    audiozoo encode FILE.wav --workdir DIR --out LATENT.npy    (autoencoders)
    audiozoo decode LATENT.npy --workdir DIR --out FILE.wav
    audiozoo interpolate A.wav B.wav --workdir DIR --weights 0.5 --out MIX.wav
    audiozoo vocode IN.wav [IN2.wav ...] --workdir DIR --out OUT.wav   (vocoders; or --mel F.npy)
    audiozoo generate --workdir DIR --pitch 60 [--pitch 64 ...] --out NOTE.wav  (GANSynth)
    audiozoo generate --workdir DIR --midi SONG.mid --out SONG.wav                 (GANSynth)
    audiozoo interpolate --workdir DIR --pitch 60 --weights 0 0.5 1 --out MIX.wav (GANSynth)
    audiozoo evaluate --workdir DIR [--data DIR] [--confusion FILE.png] [--config.data.a=v]
    audiozoo evaluate --workdir GAN_DIR --classifier CLS_DIR [--samples N] [--k 50]
                      [--seed S] [--report FILE.json]          (GANSynth: IS, PA, PE, FID, NDB)
    audiozoo evaluate --workdir VOCODER_DIR [--data DIR] [--audio-dir DIR] [--report F.json]
                      (vocoders: log-mel distance and spectral convergence vs Griffin-Lim)
    audiozoo classify FILE_OR_DIR ... --workdir DIR [--top K] [--out FILE.csv|.json]
                      [--pooling P] [--min-db DB]                   (classifiers)
    audiozoo stats --config configs/NAME.py --out STATS.json   (front-end normalisation)
    audiozoo baseline (--config configs/NAME.py | --workdir DIR) [--split S] [--data DIR]
                      [--report F.json]   (logistic regression on log-mel statistics)
    audiozoo import magenta-nsynth wavenet-ckpt/model.ckpt-200000 --workdir DIR [--ema]
    audiozoo import magenta-gansynth acoustic_only --workdir DIR
                      (magenta's published checkpoints; needs the `magenta` extra)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="audiozoo", description=__doc__.split("\n")[0])
    verbs = parser.add_subparsers(dest="verb", required=True)

    train = verbs.add_parser("train", help="train a config (resumes from the workdir's latest checkpoint)")
    train.add_argument("--config", required=True, help="a configs/*.py file with get_config()")
    train.add_argument("--workdir", required=True, help="checkpoints, metrics, samples go here")
    train.add_argument("--distributed", action="store_true",
                       help="multi-host: call jax.distributed.initialize() first")
    train.add_argument("--coordinator", default=None,
                       help="with --distributed: process 0's host:port (auto-detected on "
                       "TPU pods and SLURM)")
    train.add_argument("--num-processes", type=int, default=None)
    train.add_argument("--process-id", type=int, default=None)

    gen = verbs.add_parser("generate", help="sample audio from a trained workdir")
    gen.add_argument("--workdir", required=True)
    gen.add_argument("--seconds", type=float, default=None,
                     help="length (WaveNet; GANSynth notes have the length they were trained on)")
    gen.add_argument("--pitch", type=int, action="append", default=None,
                     help="GANSynth: MIDI pitch of a note (repeat for several; one timbre per "
                     "--batch row is held across them)")
    gen.add_argument("--midi", default=None,
                     help="GANSynth: play a Standard MIDI File note by note into one WAV")
    gen.add_argument("--seconds-per-timbre", type=float, default=0.0,
                     help="GANSynth --midi: 0 holds one timbre (picked by --seed); S > 0 moves "
                     "between random timbres every S seconds")
    gen.add_argument("--out", required=True, help="output .wav/.flac; with --batch > 1, "
                     "clips go to NAME_0.wav, NAME_1.wav, ...")
    gen.add_argument("--batch", type=int, default=1)
    gen.add_argument("--temperature", type=float, default=1.0)
    gen.add_argument("--method", default="random",
                     help="random, argmax, greedy, mode or top_p; greedy and mode decide "
                     "voicing from the predictive entropy (see audiozoo.generation.sampling)")
    gen.add_argument("--top-p", type=float, default=0.9, help="nucleus mass for --method top_p")
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--global-id", type=int, default=None,
                     help="conditioning id (e.g. the family) for globally conditioned models")
    gen.add_argument("--local-cond", default=None,
                     help=".npy of frame-rate features [frames, ch] or [batch, frames, ch] "
                     "covering the prime and the new samples")
    gen.add_argument("--prime", default=None,
                     help="a WAV to continue: the model hears it first, and the output files "
                     "start with it")
    gen.add_argument("--chunk-seconds", type=float, default=1.0,
                     help="audio made per scan; each chunk is appended to the files as it "
                     "is made (Ctrl-C keeps what is done)")

    enc = verbs.add_parser("encode", help="audio -> an autoencoder's latent (.npy): embeddings "
                           "[frames, ch], or codes [frames] for a discrete bottleneck")
    enc.add_argument("files", nargs="+", help="audio files; several give OUT_0.npy, OUT_1.npy, ...")
    enc.add_argument("--workdir", required=True)
    enc.add_argument("--out", required=True, help="output .npy")

    dec = verbs.add_parser("decode", help="latents (.npy from `encode`) -> audio, batched, with "
                           "the fast generator")
    dec.add_argument("files", nargs="+", help=".npy latents of equal length; one clip each")
    _add_decoding_args(dec)

    mix = verbs.add_parser("interpolate", help="mix two sounds' latents and decode (timbre mixing)")
    mix.add_argument("files", nargs="*", metavar="A B", help="two audio files (autoencoders)")
    mix.add_argument("--weights", type=float, nargs="+", default=[0.5],
                     help="weights of B: latent (1 - w) * A + w * B; one clip per weight")
    mix.add_argument("--pitch", type=int, default=None,
                     help="GANSynth: the pitch at which two random timbres are interpolated "
                     "(spherically; --seed picks them)")
    _add_decoding_args(mix)

    voc = verbs.add_parser("vocode", help="vocoders: audio -> its log-mel frames -> audio with "
                           "the fast generator (copy synthesis), or --mel frames made elsewhere")
    voc.add_argument("files", nargs="*", help="audio files; several are vocoded as one batch "
                     "into OUT_0.wav, OUT_1.wav, ..., each as long as its input")
    voc.add_argument("--mel", action="append", default=None, metavar="FEATURES.npy",
                     help="normalised log-mel frames [frames, n_mels] as the model's front end "
                     "makes them (repeat for several); instead of audio files")
    voc.add_argument("--mel-hop", type=int, default=None,
                     help="with --mel: the samples per frame they were made with (checked "
                     "against the model's)")
    voc.add_argument("--global-id", type=int, default=None,
                     help="speaker or instrument id for globally conditioned vocoders")
    _add_decoding_args(voc)

    ev = verbs.add_parser("evaluate", help="classifiers: accuracy, mAP, per-class scores, a "
                          "confusion matrix and every file's prediction, on the eval split or "
                          "other data; GANSynth: IS, pitch accuracy and entropy, FID and NDB of "
                          "generated and real notes; vocoders: log-mel distance and spectral "
                          "convergence of copy synthesis against Griffin-Lim from the same "
                          "features")
    ev.add_argument("--workdir", required=True)
    ev.add_argument("--classifier", default=None,
                    help="GANSynth: the workdir of a pitch classifier trained with "
                    "configs/gansynth_pitch_classifier.py")
    ev.add_argument("--samples", type=int, default=12800,
                    help="GANSynth: notes generated (and real notes read) per metric; "
                    "vocoders: at most this many clips of the split")
    ev.add_argument("--k", type=int, default=50, help="GANSynth: NDB's number of k-means bins")
    ev.add_argument("--seed", type=int, default=0,
                    help="GANSynth: latents, pitches and the real notes picked")
    ev.add_argument("--split", default="eval", choices=("train", "eval"),
                    help="split of the config's data (with --config.data.* overrides applied)")
    ev.add_argument("--data", default=None,
                    help="evaluate on every file of this folder (classifiers: of class "
                    "subfolders; vocoders: every audio file below it, whole) instead")
    ev.add_argument("--audio-dir", default=None,
                    help="vocoders: write each clip's WaveNet and Griffin-Lim reconstructions here")
    ev.add_argument("--batch", type=int, default=32, help="notes or clips per model call")
    ev.add_argument("--confusion", default=None, help="PNG path (default WORKDIR/confusion.png)")
    ev.add_argument("--report", default=None,
                    help="JSON report path (default: beside the PNG, same name with .json; "
                    "GANSynth: WORKDIR/gansynth_eval.json)")

    cl = verbs.add_parser("classify", help="classify audio files (or folders of them) with a "
                          "trained classifier, batched")
    cl.add_argument("files", nargs="*", help="audio files and folders (searched recursively)")
    cl.add_argument("--list", default=None, help="a text file naming audio files, one per line")
    cl.add_argument("--workdir", required=True)
    cl.add_argument("--top", type=int, default=5)
    cl.add_argument("--out", default=None, help="also write the results to a .csv or .json file")
    cl.add_argument("--batch", type=int, default=64, help="windows per model call")
    cl.add_argument("--pooling", default="mean_logits",
                    choices=("mean_logits", "mean_probs", "max"),
                    help="how the windows of a long file are combined")
    cl.add_argument("--min-db", type=float, default=-60.0,
                    help="skip windows quieter than this RMS level in dBFS (-inf keeps all)")
    cl.add_argument("--skip-bad", action="store_true",
                    help="report unreadable files (corrupt, empty, NaN) and classify the rest "
                         "instead of stopping")

    _add_import_parser(verbs)

    st = verbs.add_parser("stats", help="mean/std of a config's front-end features on its train data")
    st.add_argument("--config", required=True)
    st.add_argument("--out", required=True, help="JSON file for the statistics")
    st.add_argument("--batches", type=int, default=50, help="train batches to read")

    bl = verbs.add_parser("baseline", help="fit a logistic regression on log-mel mean/std to a "
                          "config's train split; report it like `evaluate`")
    bl.add_argument("--config", default=None, help="a configs/*.py file (default: the "
                    "workdir's config.json, so the baseline sees that run's data)")
    bl.add_argument("--workdir", default=None, help="a trained classifier's workdir; the "
                    "report goes to WORKDIR/baseline.json")
    bl.add_argument("--split", default="eval", choices=("train", "eval"))
    bl.add_argument("--data", default=None, help="report on every file of this folder of "
                    "class subfolders instead")
    bl.add_argument("--l2", type=float, default=1e-3, help="weight of l2 / 2 ||W||^2")
    bl.add_argument("--batch", type=int, default=64, help="clips per feature batch")
    bl.add_argument("--report", default=None, help="JSON report path")
    return parser


def _add_decoding_args(parser) -> None:
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--out", required=True, help="output .wav; several clips go to "
                        "NAME_0.wav, NAME_1.wav, ...")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--method", default="random", help="random, argmax, greedy, mode or top_p")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--chunk-seconds", type=float, default=1.0)


def _add_import_parser(verbs) -> None:
    imp = verbs.add_parser("import", help="turn a published checkpoint into a workdir "
                           "(reading it needs TensorFlow: pip install 'audiozoo[magenta]')")
    sources = imp.add_subparsers(dest="source", required=True)
    ns = sources.add_parser("magenta-nsynth", help="magenta's NSynth WaveNet autoencoder "
                            "(wavenet-ckpt.tar, the h512_bo16 model)")
    ns.add_argument("checkpoint", help="the checkpoint prefix, e.g. "
                    "wavenet-ckpt/model.ckpt-200000 (or its folder)")
    ns.add_argument("--workdir", required=True, help="the new workdir")
    ns.add_argument("--ema", action="store_true", help="take the moving-average weights "
                    "training kept (magenta's own scripts use the raw ones, the default)")
    gs = sources.add_parser("magenta-gansynth", help="a GANSynth checkpoint folder as magenta "
                            "releases it (acoustic_only/, all_instruments/)")
    gs.add_argument("checkpoint", help="the unzipped folder: experiment.json and stage_NNNNN/")
    gs.add_argument("--workdir", required=True, help="the new workdir")


def _import_checkpoint(args, overrides) -> int:
    from audiozoo import magenta

    if args.source == "magenta-nsynth":
        workdir = magenta.import_nsynth(args.checkpoint, args.workdir, ema=args.ema)
        verbs = "audiozoo encode / decode / interpolate"
    else:
        workdir = magenta.import_gansynth(args.checkpoint, args.workdir)
        verbs = "audiozoo generate --pitch / interpolate --pitch"
    print(f"imported {args.checkpoint} into {workdir} (use it with {verbs} --workdir {workdir})")
    return 0


def main(argv: list[str] | None = None) -> int:
    from audiozoo.config import ConfigError, split_overrides

    from_console = argv is None
    argv = sys.argv[1:] if argv is None else argv
    try:
        rest, overrides = split_overrides(argv)
        args = _parser().parse_args(rest)
        _check_overrides(args.verb, overrides)
        verbs = {"train": _train, "generate": _generate, "encode": _encode, "decode": _decode,
                 "interpolate": _interpolate, "vocode": _vocode, "evaluate": _evaluate,
                 "classify": _classify, "stats": _stats, "baseline": _baseline,
                 "import": _import_checkpoint}
        return verbs[args.verb](args, overrides)
    except (ConfigError, ValueError, FileNotFoundError, RuntimeError) as e:
        print(f"audiozoo: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # e.g. a filesystem that turned read-only or full mid-run
        print(f"audiozoo: error: {e.filename or 'I/O'}: {e.strerror or e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        print(f"audiozoo: {getattr(e, 'message', '') or INTERRUPTED}", file=sys.stderr)
        if from_console:
            _exit_now(130)
        return 130


INTERRUPTED = "interrupted; the files already written are complete (none is left half-written)"


def _exit_now(code: int) -> None:
    """Exits without interpreter teardown: after a KeyboardInterrupt that unwound out of XLA,
    tearing down the runtime can segfault. Every file is closed or renamed by now."""
    import os

    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


# Data fields that are part of what the model was trained to read: not overridable at
# evaluation time.
MODEL_INPUT_FIELDS = ("data.sample_rate", "data.segment_length")


def _check_overrides(verb: str, overrides) -> None:
    """train, stats and baseline take any override; evaluate and classify only those that
    select data (--config.data.*), never ones that change the trained model."""
    from audiozoo.config import ConfigError

    if verb in ("train", "stats", "baseline"):
        return
    for key, _ in overrides:
        if verb not in ("evaluate", "classify"):
            raise ConfigError(f"--config.{key}: overrides apply to `train`, `stats`, and "
                              f"(data only) `evaluate` and `classify`, not `{verb}`")
        if not key.startswith("data.") or key in MODEL_INPUT_FIELDS:
            raise ConfigError(f"--config.{key}: `{verb}` takes only --config.data.* overrides that "
                              "select data (not data.sample_rate or data.segment_length); the "
                              "model, front end and task are fixed by the trained workdir")


def _train(args, overrides) -> int:
    from audiozoo.config import apply_overrides, load_config

    given = [flag for flag, value in (("--coordinator", args.coordinator),
                                      ("--num-processes", args.num_processes),
                                      ("--process-id", args.process_id)) if value is not None]
    if given and not args.distributed:
        raise ValueError(f"{', '.join(given)} {'applies' if len(given) == 1 else 'apply'} to "
                         "multi-host runs only: add --distributed")
    if args.distributed:
        from audiozoo.train.mesh import initialize_distributed

        initialize_distributed(args.coordinator, args.num_processes, args.process_id)
    from audiozoo.models import unlisted_fields
    from audiozoo.train.loop import train

    config = load_config(args.config)
    # Any field of the model is an override, though the config file leaves it out.
    config = apply_overrides(config, overrides, {"model": unlisted_fields(config.model)})
    train(config, args.workdir)
    logs = ", tensorboard/" if config.train.get("tensorboard", True) else ""
    print(f"trained: {args.workdir} (metrics.jsonl, loss.png, samples/, checkpoints/{logs})")
    return 0


def _generate(args, overrides) -> int:
    import jax

    _check_generate_args(args)
    run = _load(args.workdir, "generate")
    task, state = run.task, run.state
    if task.makes_notes:
        return _generate_notes(args, task, state)
    if args.pitch or args.midi:
        raise ValueError(f"--{'pitch' if args.pitch else 'midi'} applies to GANSynth workdirs; "
                         f"the model in {args.workdir} is {run.config.model.name}")
    if args.seconds is None:
        raise ValueError("--seconds is required: how much audio to generate")
    rate = task.sample_rate
    if int(args.seconds * rate) < 1:
        raise ValueError(f"--seconds={args.seconds} is less than one sample at {rate} Hz")
    conditioning = {}
    if args.global_id is not None or task.model.uses_global:
        conditioning["global_cond"] = _global_ids(task, args)
    if args.local_cond is not None:
        conditioning["local_cond"] = _local_cond(args.local_cond)
    # The files hold the prime as the model heard it (a prior: the stack's decoding of it),
    # then the new samples.
    gen, to_audio, head, keep = task.audio_stream(
        state.params, jax.random.key(args.seed), int(args.seconds * rate), batch_size=args.batch,
        prime_audio=_prime_audio(args.prime, rate), temperature=args.temperature,
        method=args.method, top_p=args.top_p, **conditioning)
    return _stream(gen, to_audio, rate, args, head, None if keep is None else [keep] * args.batch)


def _check_generate_args(args) -> None:
    if args.seconds is not None:
        _check_number("--seconds", args.seconds, "> 0", lambda x: x > 0)
    if args.batch < 1:
        raise ValueError(f"--batch={args.batch} must be >= 1 (clips made at once)")
    _check_number("--top-p", args.top_p, "in (0, 1]", lambda x: 0 < x <= 1)
    _check_number("--seconds-per-timbre", args.seconds_per_timbre, ">= 0", lambda x: x >= 0)
    _check_streaming_args(args)


def _check_streaming_args(args) -> None:
    """The flags that generate, decode and interpolate share."""
    _check_number("--chunk-seconds", args.chunk_seconds, "> 0", lambda x: x > 0)
    _check_number("--temperature", args.temperature, ">= 0", lambda x: x >= 0)


def _check_number(flag: str, value: float, rule: str, ok) -> None:
    # inf and nan parse as floats; nan fails every comparison, inf never finishes.
    if not (np.isfinite(value) and ok(value)):
        raise ValueError(f"{flag}={value} must be {rule} and finite")


def _load(workdir, verb: str):
    """The trained workdir (`audiozoo.load`), or a ConfigError naming the verbs that apply
    when `verb` does not fit its model."""
    from audiozoo.config import ConfigError
    from audiozoo.trained import load

    run = load(workdir)
    if verb not in run.verbs:
        use = ", ".join(f"`audiozoo {v}`" for v in run.verbs) or "none (load it in Python)"
        raise ConfigError(f"`audiozoo {verb}` does not apply to the {run.config.task.name} model "
                          f"({run.config.model.name}) in {workdir}; its verbs are: {use}")
    return run


def _stream(gen, to_audio, rate: int, args, head=None, lengths=None) -> int:
    """Streams gen's clips to --out (one file per batch row, each cut at its entry of
    `lengths` if given) and reports what was written."""
    from audiozoo.generation.stream import stream_to_files
    from audiozoo.interrupt import graceful_interrupt

    paths = _output_paths(args.out, gen.code.shape[0])
    with graceful_interrupt("the current chunk"):
        written, interrupted = stream_to_files(
            gen, paths, to_audio, rate, chunk_size=max(1, int(args.chunk_seconds * rate)),
            head=head, lengths=lengths)
    for i, path in enumerate(paths):
        length = written if lengths is None else min(written, lengths[i])
        print(f"wrote {path} ({length / rate:.2f} s at {rate} Hz)")
    if interrupted:
        print("audiozoo: interrupted; the files hold every chunk made so far", file=sys.stderr)
        return 130
    return 0


def _global_ids(task, args, batch_size: int | None = None):
    try:
        return task.global_ids(args.global_id, batch_size or args.batch)
    except ValueError as e:
        raise ValueError(f"--global-id: {e} (workdir {args.workdir})") from None


def _local_cond(path):
    """Frame-rate features from a .npy file: [frames, ch] (every clip) or [batch, frames, ch]."""
    if path is None:
        return None
    try:
        features = np.load(path)
    except (OSError, ValueError) as e:
        raise ValueError(f"--local-cond {path!r} is not a readable .npy array: {e}") from e
    return features[None] if features.ndim == 2 else features


def _prime_audio(path, rate: int):
    from audiozoo.audio.io import read_audio

    return None if path is None else read_audio(path, rate)


def _encode(args, overrides) -> int:
    from audiozoo.audio.io import read_audio

    _require_suffix(args.out, ".npy", "a latent is a .npy array (`audiozoo decode` reads it)")
    run = _load(args.workdir, "encode")
    for path, out in zip(args.files, _output_paths(args.out, len(args.files))):
        latent = run.encode(read_audio(path, run.sample_rate))  # refuses empty/unreadable files
        _save_npy(out, latent)
        what = "codes" if run.model.discrete else "embeddings"
        print(f"wrote {out}: {what} {list(latent.shape)} ({latent.shape[0]} frames of "
              f"{run.task.frame_length} samples)")
    return 0


def _require_suffix(path, suffix: str, why: str) -> None:
    """An output path that must end in `suffix`, checked before any work."""
    if path is not None and Path(path).suffix.lower() != suffix:
        raise ValueError(f"{path}: name a {suffix} file; {why}")


def _save_npy(path: Path, array: np.ndarray) -> None:
    """Atomically: readers see the old file or the whole new one."""
    from audiozoo.files import atomic_path

    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, array)


def _decode(args, overrides) -> int:
    run = _load(args.workdir, "decode")
    latents = [run.task.check_file_latent(_read_npy(path), repr(path)) for path in args.files]
    return _decode_to_files(run, run.task.stack_file_latents(run.variables, latents), args)


def _read_npy(path) -> np.ndarray:
    try:
        return np.load(path)
    except (OSError, ValueError) as e:
        raise ValueError(f"{path!r} is not a readable .npy array: {e}") from e


def _vocode(args, overrides) -> int:
    """Copy synthesis of audio files, or vocoding of --mel frames, batched and streamed."""
    import jax

    from audiozoo.audio.io import read_audio

    _check_streaming_args(args)
    run = _load(args.workdir, "vocode")
    task = run.task
    if args.mel_hop is not None and (not args.mel or args.mel_hop != task.hop_length):
        raise ValueError(f"--mel-hop={args.mel_hop}: this vocoder's frames are "
                         f"{task.hop_length} samples apart at {run.sample_rate} Hz"
                         + ("" if args.mel else " (and --mel-hop applies only to --mel)"))
    clips = [read_audio(path, run.sample_rate) for path in args.files] if args.files else None
    mels = [_read_npy(path) for path in args.mel] if args.mel else None
    features, lengths = task.batch_inputs(clips, mels, [repr(path) for path in args.mel or ()])
    gen, to_audio, head = task.vocoding(
        run.state.params, features, jax.random.key(args.seed),
        num_samples=max(lengths), global_cond=_global_ids(task, args, len(features)),
        temperature=args.temperature, method=args.method)
    return _stream(gen, to_audio, run.sample_rate, args, head, lengths)


def _is_vocoder(task) -> bool:
    from audiozoo.tasks.vocoder import VocoderTask

    return isinstance(task, VocoderTask)


def _evaluate_vocoder(args, overrides, run) -> int:
    """Vocoders: copy synthesis of held-out clips against Griffin-Lim from the same frames."""
    import os

    from audiozoo import evaluation, inference, vocoder_evaluation
    from audiozoo.audio.io import read_audio
    from audiozoo.config import apply_overrides
    from audiozoo.data import make_dataset

    if args.classifier or args.confusion:
        raise ValueError("--classifier and --confusion do not apply to vocoder workdirs")
    if args.samples < 1 or args.batch < 1:
        raise ValueError("--samples and --batch must be >= 1")
    config = apply_overrides(run.config, overrides)
    if args.data:
        paths = inference.collect_files([args.data])[:args.samples]
        clips = [read_audio(path, run.sample_rate) for path in paths]
        names = [os.path.relpath(path, args.data) for path in paths]
    else:
        dataset = make_dataset(config.data, args.split)
        names = [f"{args.split}_{i}" for i in range(min(len(dataset), args.samples))]
        clips = [dataset[i]["audio"] for i in range(len(names))]
    report = vocoder_evaluation.evaluate_vocoder(
        run.task, run.state, clips, names, batch_size=args.batch, seed=args.seed,
        audio_dir=args.audio_dir)
    report.update(workdir=str(args.workdir), data=args.data or args.split)
    print(f"{report['clips']} clips, {report['audio_seconds']:.1f} s of audio")
    print(vocoder_evaluation.format_table(report))
    path = Path(args.report or Path(args.workdir) / "vocoder_eval.json")
    evaluation.write_report(report, path)
    print(f"wrote {path}")
    return 0


def _generate_notes(args, task, state) -> int:
    """GANSynth: one note per (--batch row, --pitch), each row one timbre; or a MIDI file."""
    import jax

    if args.midi is not None:
        return _perform_midi(args, task, state)
    if not args.pitch:
        raise ValueError("GANSynth makes notes: give their MIDI pitches with --pitch 60 "
                         "[--pitch 64 ...], or a MIDI file with --midi FILE")
    if args.seconds is not None:
        raise ValueError(f"--seconds does not apply to GANSynth: its notes are "
                         f"{task.config.data.segment_length / task.sample_rate:g} s long, as trained")
    autoregressive = {"--prime": args.prime, "--local-cond": args.local_cond,
                      "--global-id": args.global_id}
    given = [flag for flag, value in autoregressive.items() if value is not None]
    if given:
        raise ValueError(f"{', '.join(given)} apply to WaveNet workdirs, not to GANSynth")
    audio = task.notes(state, args.pitch, jax.random.key(args.seed), args.batch)
    names = [f"{pitch}" for pitch in args.pitch]
    paths = _output_paths(args.out, args.batch)
    for row, base in zip(audio, paths):
        for clip, path in zip(row, _output_paths(base, len(names), names)):
            _write_note(path, clip, task.sample_rate)
    return 0


def _perform_midi(args, task, state) -> int:
    """GANSynth: a MIDI file played note by note into one WAV."""
    import jax

    from audiozoo.audio import midi
    from audiozoo.audio.io import write_audio

    if args.pitch or args.batch != 1 or args.seconds is not None:
        raise ValueError("--midi takes the pitches and times from the file: leave out --pitch, "
                         "--seconds and --batch")
    notes = midi.read_notes(args.midi)
    audio = task.perform(state, notes, jax.random.key(args.seed), args.seconds_per_timbre,
                         source=args.midi)
    write_audio(args.out, audio, task.sample_rate)
    print(f"wrote {args.out} ({len(notes)} notes, {len(audio) / task.sample_rate:.2f} s at "
          f"{task.sample_rate} Hz)")
    return 0


def _write_note(path, clip, rate: int) -> None:
    """Writes a generated note; one that overshoots full scale is scaled down, and says so."""
    from audiozoo.audio.io import write_audio

    peak = float(np.max(np.abs(clip)))
    if peak > 1.0:
        clip = clip / peak
    write_audio(path, clip, rate)
    print(f"wrote {path} ({len(clip) / rate:.2f} s at {rate} Hz"
          + (f", scaled by 1/{peak:.3f} to fit full scale)" if peak > 1.0 else ")"))


def _interpolate(args, overrides) -> int:
    from audiozoo.audio.io import read_audio

    run = _load(args.workdir, "interpolate")
    if run.task.makes_notes:
        return _interpolate_notes(args, run.task, run.state)
    if len(args.files) != 2 or args.pitch is not None:
        raise ValueError("autoencoders interpolate two sounds: `audiozoo interpolate A.wav B.wav "
                         "--workdir DIR --weights ...` (no --pitch)")
    a, b = (read_audio(path, run.sample_rate) for path in args.files)
    return _decode_to_files(run, run.task.mixed_latent(run.variables, a, b, args.weights), args)


def _interpolate_notes(args, task, state) -> int:
    import jax

    if args.files or args.pitch is None:
        raise ValueError("GANSynth interpolates two random timbres (picked by --seed) at one "
                         "pitch: `audiozoo interpolate --workdir DIR --pitch 60 --weights 0 0.5 "
                         "1 --out MIX.wav`, no audio files")
    audio = task.interpolate(state, args.pitch, jax.random.key(args.seed), args.weights)
    for clip, path in zip(audio, _output_paths(args.out, len(audio))):
        _write_note(path, clip, task.sample_rate)
    return 0


def _decode_to_files(run, latent, args) -> int:
    """Top-down to the level-1 latent, then stream the audio to one file per batch row."""
    import jax

    _check_streaming_args(args)
    gen, to_audio = run.task.decoding(run.variables, latent, jax.random.key(args.seed),
                                      temperature=args.temperature, method=args.method)
    return _stream(gen, to_audio, run.sample_rate, args)


def _evaluate(args, overrides) -> int:
    from audiozoo import evaluation, plots
    from audiozoo.config import apply_overrides
    from audiozoo.data import labelled_folder, make_dataset

    run = _load(args.workdir, "evaluate")
    if run.task.makes_notes:
        return _evaluate_gan(args, overrides, run.config, run.task, run.state)
    if _is_vocoder(run.task):
        return _evaluate_vocoder(args, overrides, run)
    if args.classifier:
        raise ValueError(f"--classifier applies to GANSynth workdirs; {args.workdir} holds a "
                         f"classifier, which `audiozoo evaluate --workdir {args.workdir}` "
                         "evaluates by itself")
    _require_suffix(args.confusion, ".png", "the confusion matrix is drawn as a PNG image")
    config, task, state = apply_overrides(run.config, overrides), run.task, run.state
    labels = run.labels
    if args.data:
        dataset, what = labelled_folder(config.data, args.data), args.data
    else:
        dataset, what = make_dataset(config.data, args.split), args.split
    report = evaluation.evaluate(task, state, dataset, labels, batch_size=args.batch,
                                 model=config.model.name, data=what)
    print(f"{what}: {report['examples']} examples, accuracy {report['accuracy']:.4f}, "
          f"mAP {report['mAP']:.4f}, macro F1 {report['macro']['f1']:.4f}")
    png = Path(args.confusion or Path(args.workdir) / "confusion.png")
    if "confusion" in report:
        plots.plot_confusion(report["confusion"]["counts"], labels.classes, png,
                             evaluation.report_title(report))
        print(f"wrote {png}")
    path = Path(args.report or png.with_suffix(".json"))
    evaluation.write_report(report, path)
    print(f"wrote {path}")
    return 0


def _evaluate_gan(args, overrides, config, task, state) -> int:
    """GANSynth: the Table 1 metrics of generated and held-out real notes."""
    from audiozoo import evaluation, gan_evaluation
    from audiozoo.config import apply_overrides

    if not args.classifier:
        raise ValueError(f"{args.workdir} is a GANSynth workdir: its metrics need a pitch "
                         "classifier, `--classifier CLS_WORKDIR` (train one with "
                         "configs/gansynth_pitch_classifier.py)")
    if args.data or args.confusion:
        raise ValueError("--data and --confusion apply to classifier workdirs, not to GANSynth")
    apply_overrides(config, overrides)  # e.g. --config.data.root: where the real notes are now
    classifier = gan_evaluation.PitchClassifier.restore(args.classifier)
    report = gan_evaluation.evaluate_gansynth(
        task, state, classifier, gan_workdir=args.workdir, num_samples=args.samples,
        seed=args.seed, k=args.k, batch_size=args.batch)
    print(_metrics_table(report))
    path = Path(args.report or Path(args.workdir) / "gansynth_eval.json")
    evaluation.write_report(report, path)
    print(f"wrote {path}")
    return 0


def _metrics_table(report: dict) -> str:
    lines = [f"{'':10} {'notes':>6} {'IS':>8} {'PA':>7} {'PE':>7} {'FID':>10} {'NDB/k':>7}"]
    for name in ("generated", "real"):
        r = report[name]
        lines.append(f"{name:10} {r['examples']:6d} {r['inception_score']:8.3f} "
                     f"{r['pitch_accuracy']:7.3f} {r['pitch_entropy']:7.3f} {r['fid']:10.3f} "
                     f"{r['ndb_over_k']:7.3f}")
    return "\n".join(lines)


def _classify(args, overrides) -> int:
    from audiozoo import inference
    from audiozoo.config import apply_overrides

    if args.top < 1:
        raise ValueError(f"--top={args.top} must be >= 1 (classes shown per file)")
    if args.out:
        inference.results_format(args.out)  # a wrong suffix stops before any work
    run = _load(args.workdir, "classify")
    config, labels = apply_overrides(run.config, overrides), run.labels
    top = min(args.top, len(labels.classes))
    files = inference.collect_files(args.files, args.list, tuple(config.data.get("extensions", ())) or
                                    inference.DEFAULT_EXTENSIONS)
    classifier = run.classifier(batch_size=args.batch, min_db=args.min_db, pooling=args.pooling)
    results = classifier.classify(files, skip_bad=args.skip_bad)
    for result in results:
        print(inference.describe(result, labels.classes, top, args.min_db))
    if args.out:
        inference.write_results(results, labels.classes, args.out, top)
        print(f"wrote {args.out}", file=sys.stderr)
    return 0


def _stats(args, overrides) -> int:
    from audiozoo.audio.stats import normalisation_advice
    from audiozoo.config import apply_overrides, load_config
    from audiozoo.data import make_dataset
    from audiozoo.tasks.classify import feature_stats

    config = apply_overrides(load_config(args.config), overrides)
    stats = feature_stats(config, make_dataset(config.data, "train"), args.batches)
    stats.save(args.out)
    print(normalisation_advice(config.frontend.kind, stats))
    return 0


def _baseline(args, overrides) -> int:
    from audiozoo import evaluation
    from audiozoo.baseline import run_baseline
    from audiozoo.checkpoint import load_workdir_config
    from audiozoo.config import apply_overrides, load_config

    if not (args.config or args.workdir):
        raise ValueError("give the data to fit on: --config configs/NAME.py, or --workdir DIR "
                         "of a trained classifier (its config.json)")
    config = load_config(args.config) if args.config else load_workdir_config(args.workdir)
    config = apply_overrides(config, overrides)
    report = run_baseline(config, split=args.split, data=args.data, l2=args.l2,
                          batch_size=args.batch)
    print(f"{report['data']}: {report['examples']} examples, accuracy {report['accuracy']:.4f}, "
          f"mAP {report['mAP']:.4f}, macro F1 {report['macro']['f1']:.4f} ({report['model']})")
    path = args.report or (Path(args.workdir) / "baseline.json" if args.workdir else None)
    if path:
        evaluation.write_report(report, path)
        print(f"wrote {path}")
    return 0


def _output_paths(out: str, batch: int, names=None) -> list[Path]:
    """OUT itself for one clip, else OUT_0.wav, OUT_1.wav, ... (or OUT_NAME.wav per name)."""
    out = Path(out)
    if batch == 1:
        return [out]
    names = names or range(batch)
    return [out.with_name(f"{out.stem}_{name}{out.suffix}") for name in names]


if __name__ == "__main__":
    sys.exit(main())
