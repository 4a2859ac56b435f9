"""Self-attention on XLA:CPU: all heads at once against `attend_per_head` (a loop over heads,
two at a time), beside PyTorch's fused `scaled_dot_product_attention` in the same run: the
measurements behind `audiozoo.nn.transformer`'s choice of path on CPU. The first row is the
textbook order, softmax(q k^T / sqrt(d)) then times v; the others normalise the output instead
of the probabilities (`attend`'s `normalise_output`).

    python experiments/benchmark/attention_paths.py           # AST base's 1,214 patches
    python experiments/benchmark/attention_paths.py --tokens 499 1214 --batch 2

Milliseconds per call (best of --repeats) of softmax(q k^T / sqrt(d)) v for q, k, v of
[batch, heads, tokens, head_dim], forward only and with gradients; the ratio column is
first row's time over the row's time (above 1 = faster than the textbook order).
"""

from __future__ import annotations

import argparse
import functools
import os

import jax
import jax.numpy as jnp
import numpy as np

from audiozoo.benchmarking import call_seconds, device_label
from audiozoo.nn.transformer import attend, attend_per_head


def jax_rows(q, repeats: int) -> dict[str, dict[str, float]]:
    rows = {}
    softmax_first = functools.partial(attend, normalise_output=False)
    for name, fn in (("all heads, softmax first", softmax_first),
                     ("all heads, output normalised", attend), ("per head", attend_per_head)):
        forward = jax.jit(fn)
        grad = jax.jit(jax.grad(lambda q, k, v: jnp.sum(fn(q, k, v) ** 2), (0, 1, 2)))
        rows[name] = {"forward": call_seconds(lambda: forward(q, q, q), repeats),
                      "gradient": call_seconds(lambda: grad(q, q, q), repeats)}
    return rows


def torch_row(q: np.ndarray, repeats: int) -> dict[str, float] | None:
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(os.cpu_count())
    x = torch.from_numpy(q)
    sdpa = torch.nn.functional.scaled_dot_product_attention
    with torch.no_grad():
        forward = call_seconds(lambda: sdpa(x, x, x), repeats)
    y = x.clone().requires_grad_(True)
    gradient = call_seconds(lambda: (sdpa(y, y, y) ** 2).sum().backward(), repeats)
    return {"forward": forward, "gradient": gradient}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, nargs="+", default=[1214])
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--heads", type=int, default=12)
    parser.add_argument("--head-dim", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"jax {jax.__version__}; {device_label()}; best of {args.repeats}; float32")
    print()
    print("| tokens | batch x heads x head_dim | path | forward ms | ratio | gradient ms | ratio |")
    print("|---|---|---|---|---|---|---|")
    for tokens in args.tokens:
        q = np.random.default_rng(0).standard_normal(
            (args.batch, args.heads, tokens, args.head_dim)).astype(np.float32)
        rows = jax_rows(jnp.asarray(q), args.repeats)
        peer = torch_row(q, args.repeats)
        if peer:
            rows["torch sdpa (peer)"] = peer
        base = rows["all heads, softmax first"]
        for name, row in rows.items():
            print(f"| {tokens} | {args.batch} x {args.heads} x {args.head_dim} | {name} "
                  f"| {1e3 * row['forward']:.1f} | {base['forward'] / row['forward']:.2f} "
                  f"| {1e3 * row['gradient']:.1f} | {base['gradient'] / row['gradient']:.2f} |",
                  flush=True)


if __name__ == "__main__":
    main()
