"""The `audiozoo` command line.

    audiozoo train --config configs/NAME.py --workdir DIR [--config.a.b=v ...] [--distributed]
    audiozoo generate --workdir DIR --seconds S --out FILE.wav [--batch N] [--temperature T]
    audiozoo evaluate --workdir DIR [--confusion FILE.png]     (classifiers)
    audiozoo classify FILE.wav --workdir DIR [--top K]         (classifiers)
    audiozoo stats --config configs/NAME.py --out STATS.json   (front-end normalisation)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


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
    gen.add_argument("--seconds", type=float, required=True)
    gen.add_argument("--out", required=True, help="output .wav/.flac; with --batch > 1, "
                     "clips go to NAME_0.wav, NAME_1.wav, ...")
    gen.add_argument("--batch", type=int, default=1)
    gen.add_argument("--temperature", type=float, default=1.0)
    gen.add_argument("--method", default="random")
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--global-id", type=int, default=None,
                     help="conditioning id (e.g. the family) for globally conditioned models")

    ev = verbs.add_parser("evaluate", help="accuracy, mAP and a confusion matrix on the eval split")
    ev.add_argument("--workdir", required=True)
    ev.add_argument("--split", default="eval", choices=("train", "eval"))
    ev.add_argument("--batch", type=int, default=32)
    ev.add_argument("--confusion", default=None, help="PNG path (default WORKDIR/confusion.png)")

    cl = verbs.add_parser("classify", help="classify one audio file with a trained classifier")
    cl.add_argument("file")
    cl.add_argument("--workdir", required=True)
    cl.add_argument("--top", type=int, default=5)

    st = verbs.add_parser("stats", help="mean/std of a config's front-end features on its train data")
    st.add_argument("--config", required=True)
    st.add_argument("--out", required=True, help="JSON file for the statistics")
    st.add_argument("--batches", type=int, default=50, help="train batches to read")
    return parser


def main(argv: list[str] | None = None) -> int:
    from audiozoo.config import ConfigError, split_overrides

    argv = sys.argv[1:] if argv is None else argv
    try:
        rest, overrides = split_overrides(argv)
        args = _parser().parse_args(rest)
        if overrides and args.verb not in ("train", "stats"):
            raise ConfigError(f"--config.* overrides apply to `train` and `stats`, not `{args.verb}`")
        verbs = {"train": _train, "generate": _generate, "evaluate": _evaluate,
                 "classify": _classify, "stats": _stats}
        return verbs[args.verb](args, overrides)
    except (ConfigError, ValueError, FileNotFoundError, RuntimeError) as e:
        print(f"audiozoo: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("audiozoo: interrupted; finished training steps were checkpointed, rerun the "
              "same command to resume", file=sys.stderr)
        return 130


def _train(args, overrides) -> int:
    from audiozoo.config import apply_overrides, load_config

    if args.distributed:
        from audiozoo.train.mesh import initialize_distributed

        initialize_distributed(args.coordinator, args.num_processes, args.process_id)
    from audiozoo.train.loop import train

    config = apply_overrides(load_config(args.config), overrides)
    train(config, args.workdir)
    print(f"trained: {args.workdir} (metrics.jsonl, loss.png, samples/, checkpoints/)")
    return 0


def _generate(args, overrides) -> int:
    import jax
    import jax.numpy as jnp

    from audiozoo.audio.io import write_audio
    from audiozoo.train.loop import restore_latest

    if args.seconds <= 0:
        raise ValueError(f"--seconds={args.seconds} must be > 0")
    _, task, state = restore_latest(args.workdir)
    global_cond = None
    if task.model.uses_global:
        gid, num_ids = args.global_id or 0, task.model.num_global_ids
        if not 0 <= gid < num_ids:
            raise ValueError(f"--global-id={gid} is outside the model's ids 0..{num_ids - 1}")
        global_cond = jnp.full((args.batch,), gid, jnp.int32)
    elif args.global_id is not None:
        raise ValueError(f"--global-id given, but the model in {args.workdir} is not globally conditioned")
    audio = task.generate(state.params, jax.random.key(args.seed), int(args.seconds * task.sample_rate),
                          batch_size=args.batch, global_cond=global_cond,
                          temperature=args.temperature, method=args.method)
    for path, clip in zip(_output_paths(args.out, args.batch), audio):
        write_audio(path, clip, task.sample_rate)
        print(f"wrote {path} ({len(clip) / task.sample_rate:.2f} s at {task.sample_rate} Hz)")
    return 0


def _restore_classifier(workdir):
    from audiozoo.config import ConfigError
    from audiozoo.train.loop import restore_latest

    config, task, state = restore_latest(workdir)
    if not hasattr(task, "predict"):
        raise ConfigError(f"the model in {workdir} ({config.model.name}) is not a classifier")
    return config, task, state


def _evaluate(args, overrides) -> int:
    from pathlib import Path

    from audiozoo import evaluation
    from audiozoo.data import class_names, make_dataset

    config, task, state = _restore_classifier(args.workdir)
    dataset = make_dataset(config.data, args.split)
    logits, labels = evaluation.predict_dataset(task, state, dataset, args.batch)
    report = evaluation.classification_report(logits, labels, task.multi_label)
    print(f"{args.split}: {len(dataset)} examples, accuracy {report['accuracy']:.4f}, "
          f"mAP {report['mAP']:.4f}")
    if "confusion" in report:
        names = class_names(config.data, task.label_key) or [str(i) for i in range(task.num_classes)]
        path = Path(args.confusion or Path(args.workdir) / "confusion.png")
        evaluation.plot_confusion(report["confusion"], names, path)
        print(f"wrote {path}")
    return 0


def _classify(args, overrides) -> int:
    import jax
    import numpy as np

    from audiozoo.audio.io import read_audio
    from audiozoo.data import class_names

    config, task, state = _restore_classifier(args.workdir)
    audio = read_audio(args.file, config.data.sample_rate)
    windows = _windows(audio, config.data.segment_length)
    # Long files: average the logits of consecutive windows.
    logits = np.asarray(task.predict(state, windows)).mean(axis=0)
    names = class_names(config.data, task.label_key) or [str(i) for i in range(task.num_classes)]
    # Per-class sigmoid for multi-label models, a softmax over classes otherwise.
    scores = jax.nn.sigmoid(logits) if task.multi_label else jax.nn.softmax(logits)
    scores = np.asarray(scores)
    for i in np.argsort(-scores)[: args.top]:
        print(f"{names[i]}\t{scores[i]:.4f}")
    return 0


def _windows(audio, length: int):
    """Consecutive segment_length windows covering the file (the last zero-padded)."""
    import numpy as np

    count = max(1, -(-len(audio) // length))
    padded = np.zeros(count * length, np.float32)
    padded[: len(audio)] = audio
    return padded.reshape(count, length)


def _stats(args, overrides) -> int:
    from audiozoo.audio.stats import FeatureStats
    from audiozoo.audio.frontend import Frontend
    from audiozoo.config import apply_overrides, load_config
    from audiozoo.data import BatchLoader, make_dataset

    config = apply_overrides(load_config(args.config), overrides)
    # Statistics of the raw features: normalisation off while measuring them.
    config.frontend.update(mean=0.0, std=1.0)
    frontend = Frontend.from_config(config.frontend)
    loader = BatchLoader(make_dataset(config.data, "train"), seed=config.data.seed,
                         global_batch_size=config.train.batch_size)
    stats = FeatureStats()
    for step in range(min(args.batches, int(loader.steps_per_epoch))):
        stats.update(frontend(loader.host_batch(step)["audio"]))
    stats.save(args.out)
    print(f"mean {stats.mean:.6f} std {stats.std:.6f} over {stats.count} values; train with "
          f"--config.frontend.mean={stats.mean:.6f} --config.frontend.std={stats.std:.6f}")
    return 0


def _output_paths(out: str, batch: int) -> list[Path]:
    out = Path(out)
    if batch == 1:
        return [out]
    return [out.with_name(f"{out.stem}_{i}{out.suffix}") for i in range(batch)]


if __name__ == "__main__":
    sys.exit(main())
