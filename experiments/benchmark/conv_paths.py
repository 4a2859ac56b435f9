"""XLA:CPU's convolution against the same convolution as tap matmuls, per input shape: the
measurements behind `audiozoo.nn.convolution`'s choice of path.

    python experiments/benchmark/conv_paths.py            # the shapes the zoo's CNNs meet
    python experiments/benchmark/conv_paths.py --grid     # every map of 1-16 x 1-16 positions

For each shape: milliseconds per call of the forward pass and of the forward + gradient (with
respect to input and kernel), through `jax.lax.conv_general_dilated` and through
`conv_as_tap_matmuls`, and the path `conv_general_dilated` picks. The "picked / best" column is
the picked path's time over the faster one's (1.00 = the rule chose the faster path).
"""

from __future__ import annotations

import argparse
import itertools

import jax
import jax.numpy as jnp
import numpy as np

from audiozoo.benchmarking import call_seconds, device_label
from audiozoo.nn.convolution import conv_as_tap_matmuls, conv_general_dilated

DN = ("NHWC", "HWIO", "NHWC")
# (height, width, kernel, stride, channels): the late stages of ResNet-18 / DenseNet / VGG /
# Inception on a 1 s log-mel (101 x 64 frames x bins) and GANSynth's first blocks.
ZOO_SHAPES = [
    (4, 2, 3, 1, 512), (7, 4, 3, 2, 256), (7, 4, 3, 1, 256), (13, 8, 3, 2, 128),
    (13, 8, 3, 1, 128), (26, 16, 3, 1, 64), (3, 2, 3, 1, 512), (2, 16, 3, 1, 256),
    (6, 4, 5, 1, 128), (51, 32, 3, 2, 64),
]


def picks_taps(h: int, w: int, kernel: int, stride: int, channels: int) -> bool:
    x = jax.ShapeDtypeStruct((1, h, w, channels), jnp.float32)
    k = jax.ShapeDtypeStruct((kernel, kernel, channels, channels), jnp.float32)
    pad = [(kernel // 2, kernel // 2)] * 2
    jaxpr = jax.make_jaxpr(lambda x, k: conv_general_dilated(
        x, k, (stride, stride), pad, dimension_numbers=DN))(x, k)
    return all(str(e.primitive) != "conv_general_dilated" for e in jaxpr.eqns)


def time_paths(h, w, kernel, stride, channels, batch, repeats):
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((batch, h, w, channels)), jnp.float32)
    k = jnp.asarray(rng.standard_normal((kernel, kernel, channels, channels)) * 0.01, jnp.float32)
    pad = [(kernel // 2, kernel // 2)] * 2
    paths = {
        "lax": lambda x, k: jax.lax.conv_general_dilated(x, k, (stride, stride), pad,
                                                          dimension_numbers=DN),
        "taps": lambda x, k: conv_as_tap_matmuls(x, k, (stride, stride), pad),
    }
    times = {}
    for name, fn in paths.items():
        forward = jax.jit(fn)
        grad = jax.jit(jax.value_and_grad(lambda x, k, fn=fn: jnp.sum(fn(x, k) ** 2), (0, 1)))
        times[name] = (call_seconds(lambda: forward(x, k), repeats) * 1e3,
                       call_seconds(lambda: grad(x, k), repeats) * 1e3)
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--grid", action="store_true",
                        help="every H x W in {1,2,3,4,6,8,16}^2 for kernels 3, 5, 7 (stride 1) "
                             "and 3, 7 (stride 2) at 128 channels")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if args.grid:
        shapes = [(h, w, k, s, 128) for k, s in [(3, 1), (5, 1), (7, 1), (3, 2), (7, 2)]
                  for h, w in itertools.product([1, 2, 3, 4, 6, 8, 16], repeat=2)]
    else:
        shapes = ZOO_SHAPES
    print(f"jax {jax.__version__}, {jax.default_backend()}, float32, batch {args.batch}; "
          "ms per call, best of", args.repeats)
    print()
    print("| map | kernel / stride | channels | device | lax fwd | taps fwd | lax fwd+grad "
          "| taps fwd+grad | picked | picked / best (fwd, fwd+grad) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for h, w, kernel, stride, channels in shapes:
        t = time_paths(h, w, kernel, stride, channels, args.batch, args.repeats)
        picked = "taps" if picks_taps(h, w, kernel, stride, channels) else "lax"
        ratios = [t[picked][i] / min(t["lax"][i], t["taps"][i]) for i in range(2)]
        print(f"| {h} x {w} | {kernel} x {kernel} / {stride} | {channels} | {device_label()} "
              f"| {t['lax'][0]:.2f} | {t['taps'][0]:.2f} | {t['lax'][1]:.2f} "
              f"| {t['taps'][1]:.2f} | {picked} | {ratios[0]:.2f}, {ratios[1]:.2f} |",
              flush=True)


if __name__ == "__main__":
    main()
