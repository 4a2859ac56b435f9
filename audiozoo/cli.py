"""The `audiozoo` command line.

    audiozoo train --config configs/NAME.py --workdir DIR [--config.a.b=v ...] [--distributed]
    audiozoo generate --workdir DIR --seconds S --out FILE.wav [--batch N] [--temperature T]
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
    return parser


def main(argv: list[str] | None = None) -> int:
    from audiozoo.config import ConfigError, split_overrides

    argv = sys.argv[1:] if argv is None else argv
    try:
        rest, overrides = split_overrides(argv)
        args = _parser().parse_args(rest)
        if overrides and args.verb != "train":
            raise ConfigError(f"--config.* overrides only apply to `train`, not `{args.verb}`")
        return {"train": _train, "generate": _generate}[args.verb](args, overrides)
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
    from audiozoo.tasks import build_task
    from audiozoo.train.loop import load_workdir_config

    if args.seconds <= 0:
        raise ValueError(f"--seconds={args.seconds} must be > 0")
    config = load_workdir_config(args.workdir)
    task = build_task(config)
    params = _restore_params(task, args.workdir)
    global_cond = None
    if task.model.uses_global:
        gid, num_ids = args.global_id or 0, task.model.num_global_ids
        if not 0 <= gid < num_ids:
            raise ValueError(f"--global-id={gid} is outside the model's ids 0..{num_ids - 1}")
        global_cond = jnp.full((args.batch,), gid, jnp.int32)
    elif args.global_id is not None:
        raise ValueError(f"--global-id given, but the model in {args.workdir} is not globally conditioned")
    audio = task.generate(params, jax.random.key(args.seed), int(args.seconds * task.sample_rate),
                          batch_size=args.batch, global_cond=global_cond,
                          temperature=args.temperature, method=args.method)
    for path, clip in zip(_output_paths(args.out, args.batch), audio):
        write_audio(path, clip, task.sample_rate)
        print(f"wrote {path} ({len(clip) / task.sample_rate:.2f} s at {task.sample_rate} Hz)")
    return 0


def _restore_params(task, workdir):
    """Parameters of the workdir's latest checkpoint, restored into the task's state layout."""
    import jax

    from audiozoo.train.checkpoint import Checkpointer

    shapes = jax.eval_shape(task.init_state, jax.random.key(0), task.dummy_batch(1))
    return Checkpointer(workdir).restore_state(shapes).params


def _output_paths(out: str, batch: int) -> list[Path]:
    out = Path(out)
    if batch == 1:
        return [out]
    return [out.with_name(f"{out.stem}_{i}{out.suffix}") for i in range(batch)]


if __name__ == "__main__":
    sys.exit(main())
