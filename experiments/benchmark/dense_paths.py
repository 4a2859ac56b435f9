"""XLA:CPU's float32 matmul against the same product as a 1 x 1 convolution, per shape: the
measurements behind `audiozoo.nn.dense`'s choice of path.

    python experiments/benchmark/dense_paths.py            # the dense layers the zoo runs
    python experiments/benchmark/dense_paths.py --grid     # rows x (in, out) grid

x [rows, in] @ kernel [in, out] as `jax.lax.dot_general` (which XLA:CPU hands to YNNPACK) and
as a width-1 convolution (which XLA rewrites into a dot that its Eigen runtime computes),
milliseconds per call of the forward pass and of the forward + gradient, both paths timed in
turn in every round so that the machine's drift hits both alike; best of --repeats rounds.
"picked" is the path `audiozoo.nn.dense.dot_general` takes; "picked / best" its time over
the faster path's (1.00 = the rule chose the faster path).
"""

from __future__ import annotations

import argparse
import itertools

import jax
import jax.numpy as jnp
import numpy as np

from audiozoo.benchmarking import device_label, interleaved_seconds
from audiozoo.nn import dense

# (rows, in, out): WaveNet's 1 x 1s at batch 4 x 4,096 (residual / skip, output, logits),
# AST base at batch 2 x 1,214 tokens (qkv, out, MLP in / out), wav2vec 2.0 base at
# batch 4 x 49 frames (qkv, MLP in), a CNN classifier head.
ZOO_SHAPES = [
    (16384, 64, 64), (16384, 64, 128), (16384, 64, 256),
    (2428, 768, 768), (2428, 768, 2304), (2428, 768, 3072), (2428, 3072, 768),
    (196, 768, 2304), (196, 768, 3072), (16, 512, 35),
]


def time_paths(rows: int, features_in: int, features_out: int, repeats: int):
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((rows, features_in)), jnp.float32)
    k = jnp.asarray(rng.standard_normal((features_in, features_out)) * 0.05, jnp.float32)
    paths = {"dot": lambda x, k: jax.lax.dot_general(x, k, (((1,), (0,)), ((), ()))),
             "conv": dense.matmul_as_conv}
    calls = {}
    for name, fn in paths.items():
        forward = jax.jit(fn)
        grad = jax.jit(jax.value_and_grad(lambda x, k, fn=fn: jnp.sum(fn(x, k) ** 2), (0, 1)))
        calls[(name, 0)] = lambda forward=forward: forward(x, k)
        calls[(name, 1)] = lambda grad=grad: grad(x, k)
    seconds = interleaved_seconds(calls, repeats)
    return {name: [seconds[(name, i)] * 1e3 for i in range(2)] for name in paths}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--grid", action="store_true",
                        help="rows in {64, 256, 1024, 4096, 16384} x (in, out) from 64 to 3072")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    if args.grid:
        widths = [(64, 64), (64, 256), (256, 256), (768, 768), (768, 3072), (3072, 768)]
        shapes = [(r, i, o) for r, (i, o) in itertools.product([64, 256, 1024, 4096, 16384],
                                                               widths)
                  if r * i * o <= 4096 * 768 * 3072]
    else:
        shapes = ZOO_SHAPES
    print(f"jax {jax.__version__}, {device_label()}, float32; ms per call, best of "
          f"{args.repeats} interleaved rounds")
    print()
    print("| rows x in -> out | device | dot fwd | conv fwd | dot fwd+grad | conv fwd+grad "
          "| picked | picked / best (fwd, fwd+grad) |")
    print("|---|---|---|---|---|---|---|---|")
    for rows, features_in, features_out in shapes:
        t = time_paths(rows, features_in, features_out, args.repeats)
        picked = "conv" if dense.cpu_dot_is_slow(rows, features_in, features_out) else "dot"
        ratios = [t[picked][i] / min(t["dot"][i], t["conv"][i]) for i in range(2)]
        print(f"| {rows} x {features_in} -> {features_out} | {device_label()} "
              f"| {t['dot'][0]:.2f} | {t['conv'][0]:.2f} | {t['dot'][1]:.2f} "
              f"| {t['conv'][1]:.2f} | {picked} | {ratios[0]:.2f}, {ratios[1]:.2f} |",
              flush=True)


if __name__ == "__main__":
    main()
