"""Where one of the zoo table's calls spends its time: the same jitted call `zoo.py` times (same
model, batch, input and train step), run under `jax.profiler.trace`, with the profile's
operations summed by name per call.

    python experiments/benchmark/profile_step.py wavenet --mode train
    python experiments/benchmark/profile_step.py ast --mode infer --top 15

Prints the call's median wall time, then one row per operation name (numbered duplicates such
as `dot.12` summed as `dot`): milliseconds per call, how many ran per call, and the share of
the time the operations named in the profile add up to. On XLA:CPU convolutions run
asynchronously and show up only as a few short entries; their work is inside the executor's
wait, so a row's share is of the named operations, not of the wall time.
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import re
import sys
import tempfile
from pathlib import Path

import jax

sys.path.insert(0, str(Path(__file__).resolve().parent))
import zoo  # noqa: E402

from audiozoo.benchmarking import call_seconds, device_label  # noqa: E402

# The runtime's own bookkeeping, not operations of the program.
RUNTIME = re.compile(r"^\$|Thunk|PjRt|PjitFunction|SlinkyThreadPool|ParseArguments|"
                     r"AllocateOutputBuffers")


def operation_times(call, calls: int) -> tuple[collections.Counter, collections.Counter]:
    """(microseconds, count) per operation name, summed over `calls` profiled calls."""
    with tempfile.TemporaryDirectory() as folder:
        with jax.profiler.trace(folder, create_perfetto_trace=True):
            for _ in range(calls):
                jax.block_until_ready(call())
        trace = next(Path(folder).rglob("*perfetto_trace.json.gz"))
        events = json.load(gzip.open(trace))["traceEvents"]
    total, count = collections.Counter(), collections.Counter()
    for event in events:
        if event.get("ph") != "X" or "dur" not in event or RUNTIME.search(event["name"]):
            continue
        name = re.sub(r"\.\d+$", "", event["name"])
        total[name] += event["dur"]
        count[name] += 1
    return total, count


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", choices=[m for m in zoo.WORKLOADS if m != "wavenet_generation"])
    parser.add_argument("--mode", choices=["train", "infer"], default="train")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    parser.add_argument("--calls", type=int, default=3, help="profiled calls (after a warm-up)")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    workload = zoo.WORKLOADS[args.model]
    call = zoo.jax_calls(workload, args.dtype)[args.mode]
    seconds = call_seconds(call, args.calls, "median")  # after a compile-and-warm-up call
    total, count = operation_times(call, args.calls)
    named = sum(total.values())
    print(f"{args.model} {args.mode}, batch {workload.batch}, {args.dtype}, {device_label()}: "
          f"{1e3 * seconds:.1f} ms per call (median of {args.calls}); the named "
          f"operations add up to {named / args.calls / 1e3:.1f} ms")
    print()
    print("| operation | ms per call | per call | share |")
    print("|---|---|---|---|")
    for name, micros in total.most_common(args.top):
        print(f"| {name} | {micros / args.calls / 1e3:.1f} | {count[name] // args.calls} "
              f"| {micros / named:.1%} |")


if __name__ == "__main__":
    main()
