"""The product behind every dense and 1 x 1 layer's kernel gradient, x^T g over many rows,
as XLA:CPU computes it and as PyTorch does, beside the forward product of the same size.

    pip install -e '.[parity]'          # torch
    python experiments/benchmark/kernel_gradients.py

x [rows, in] and g [rows, out] -> x^T g [in, out]: a contraction over all the rows with a
small output, which a training step computes once per layer (WaveNet's 1 x 1s at batch
4 x 4,096: 16,384 rows into 64 x 64 or 64 x 128; its dilated convolutions' two taps: 128 x 128).
Forms: "x^T g" (`jax.lax.dot_general` contracting the rows, what autodiff emits), "from [in,
rows]" (the operands materialised with the rows last, then contracted), "forward" (x @ w with
w [in, out]: the same arithmetic with the rows kept, for scale), and "two in one call" (two
independent x^T g in one jitted function: whether XLA:CPU runs them side by side). Each form
and its torch counterpart are timed in turn in every round (milliseconds per call, median of
--repeats); GFLOP/s counts 2 * rows * in * out per product; "torch / jax" is torch's time for
the same products over jax's (above 1: jax is faster).
"""

from __future__ import annotations

import argparse
import os

import jax
import jax.numpy as jnp
import numpy as np

from audiozoo.benchmarking import device_label, interleaved_seconds

SHAPES = [(16384, 64, 64), (16384, 64, 128), (16384, 128, 128), (2428, 768, 3072)]


def forms(x: np.ndarray, g: np.ndarray) -> dict:
    """{form: (jax call, torch call, products per call)} for x [rows, in], g [rows, out]."""
    import torch

    rows = (((0,), (0,)), ((), ()))
    by_rows = jax.jit(lambda a, b: jax.lax.dot_general(a, b, rows))
    rows_last = jax.jit(lambda a, b: jax.lax.dot_general(a, b, (((1,), (1,)), ((), ()))))
    two = jax.jit(lambda a, b, c, d: (jax.lax.dot_general(a, b, rows),
                                      jax.lax.dot_general(c, d, rows)))
    forward = jax.jit(lambda a, b: a @ b)
    w = g[: x.shape[1]]
    jx, jg, jw, jx_last, jg_last = map(jnp.asarray, (x, g, w, x.T.copy(), g.T.copy()))
    tx, tg, tw, tx_last, tg_last = map(torch.from_numpy, (x, g, w, x.T.copy(), g.T.copy()))
    return {
        "x^T g": (lambda: by_rows(jx, jg), lambda: tx.T @ tg, 1),
        "from [in, rows]": (lambda: rows_last(jx_last, jg_last), lambda: tx_last @ tg_last.T, 1),
        "forward": (lambda: forward(jx, jw), lambda: tx @ tw, 1),
        "two in one call": (lambda: two(jx, jg, jx, jg), lambda: (tx.T @ tg, tx.T @ tg), 2),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(os.cpu_count())
    print(f"jax {jax.__version__}, torch {torch.__version__} ({torch.get_num_threads()} threads); "
          f"{device_label()}; float32; median of {args.repeats}")
    print()
    print("| rows x in x out | form | device | jax ms | jax GFLOP/s | torch ms | torch / jax |")
    print("|---|---|---|---|---|---|---|")
    rng = np.random.default_rng(0)
    for rows, features_in, features_out in SHAPES:
        x = rng.standard_normal((rows, features_in)).astype(np.float32)
        g = rng.standard_normal((rows, features_out)).astype(np.float32)
        products = forms(x, g)
        calls = {(name, side): pair[side] for name, pair in products.items() for side in (0, 1)}
        seconds = interleaved_seconds(calls, args.repeats, "median")
        flops = 2 * rows * features_in * features_out
        for name, (_, _, count) in products.items():
            ours, peer = seconds[(name, 0)], seconds[(name, 1)]
            print(f"| {rows} x {features_in} x {features_out} | {name} | {device_label()} "
                  f"| {ours * 1e3:.2f} | {count * flops / ours / 1e9:.0f} | {peer * 1e3:.2f} "
                  f"| {peer / ours:.2f} |", flush=True)


if __name__ == "__main__":
    main()
