"""One throughput table for the whole zoo, each model beside its PyTorch peer in the same run.

    pip install -e '.[parity]'          # torch, transformers, wavenet_vocoder (the peers)
    python experiments/benchmark/zoo.py                       # every row, float32 + bfloat16
    python experiments/benchmark/zoo.py --models resnet18 ast --dtypes float32

Rows: inference (forward, eval mode) and training (forward, float32 cross-entropy, backward
and an Adam update) throughput at the stated batch and input, in examples/s (audio samples/s
for WaveNet). Peers, run with torch's threads set to this machine's cores: the same CNN
architectures written in torch (experiments/benchmark/torch_peers.py, parameter counts checked
equal), Hugging Face's ASTForAudioClassification and Wav2Vec2Model / ...ForSequenceClassification
(random init from the same config), r9y9's wavenet_vocoder WaveNet (weight norm off, as
audiozoo's) for training and its incremental_forward for generation. bfloat16 rows: audiozoo
with model dtype bfloat16 (parameters float32), the peer under torch.autocast(bfloat16).
Ratio = audiozoo / peer throughput (above 1 = audiozoo faster). Every figure is the median of
`--repeats` rounds after a compile-and-warm-up call, each round timing one audiozoo call and
then one peer call, so that the machine's speed drifting during the run moves both alike.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

sys.path.insert(0, str(Path(__file__).resolve().parent))
from torch_peers import cnn_peer, parameter_count, sincnet_peer  # noqa: E402

from audiozoo import generation  # noqa: E402
from audiozoo.benchmarking import device_label, interleaved_seconds  # noqa: E402
from audiozoo.models import build_model  # noqa: E402
from audiozoo.models.wavenet import WaveNet  # noqa: E402

CNNS = ("resnet18", "alexnet", "vgg11", "inception_v1", "densenet121", "squeezenet1_1", "cnn14")
WAVENET = dict(num_layers=20, num_stacks=2, kernel_size=2, residual_channels=64,
               gate_channels=128, skip_channels=64, num_classes=256)


@dataclasses.dataclass
class Workload:
    name: str           # the row's model
    batch: int
    shape: tuple        # one example's input
    what: str           # the input, in words
    unit: str = "examples/s"


WORKLOADS = {
    **{m: Workload(m, 16, (101, 64), "1 s log-mel, 101 x 64") for m in CNNS},
    "sincnet": Workload("sincnet", 16, (3200,), "200 ms at 16 kHz (TIMIT, 462 speakers)"),
    "ast": Workload("ast", 2, (1024, 128), "fbank 1024 x 128 (AST base)"),
    "wav2vec2": Workload("wav2vec2", 4, (16000,), "1 s at 16 kHz (base)"),
    "wavenet": Workload("wavenet", 4, (4096,), "20 layers / 2 stacks, R64 G128 S64, mu-law 256",
                        "samples/s"),
    "wavenet_generation": Workload("wavenet_generation", 1, (2048,),
                                   "same net, 2,048 generated samples", "samples/s"),
}


# ---- audiozoo -----------------------------------------------------------------------------
def jax_model(name: str, dtype: str):
    fields = {"name": name, "dtype": dtype}
    if name in CNNS:
        fields["num_classes"] = 35
    elif name == "ast":
        fields["num_classes"] = 527
    elif name == "sincnet":
        fields["num_classes"] = 462
    elif name.startswith("wavenet"):
        fields.update(WAVENET, name="wavenet")
    return build_model(fields)


def jax_inputs(w: Workload):
    rng = np.random.default_rng(0)
    if w.name.startswith("wavenet"):
        return jnp.asarray(rng.integers(0, 256, (w.batch, *w.shape)), jnp.int32)
    return jnp.asarray(rng.standard_normal((w.batch, *w.shape)), jnp.float32)


def jax_forward(model, variables, x):
    if isinstance(model, WaveNet):   # codes in, logits out
        return model.apply(variables, x)
    return model.apply(variables, x, train=False)


def jax_train_step(model, x, labels):
    """fwd + float32 cross-entropy + bwd + Adam, one jitted function of (params, rest, opt)."""
    opt = optax.adam(1e-4)
    wavenet = isinstance(model, WaveNet)

    def loss_fn(params, rest, rng):
        variables = {"params": params, **rest}
        if wavenet:
            logits = model.apply(variables, x)
        elif rest:  # batch statistics update in training mode
            logits, rest = model.apply(variables, x, train=True, rngs={"dropout": rng},
                                       mutable=list(rest))
        else:
            logits = model.apply(variables, x, train=True, rngs={"dropout": rng})
        logits = logits.astype(jnp.float32)
        if wavenet:  # next-sample prediction
            logits, targets = logits[:, :-1], x[:, 1:]
        else:
            targets = labels
        return optax.softmax_cross_entropy_with_integer_labels(logits, targets).mean(), rest

    @jax.jit
    def step(params, rest, opt_state, rng):
        (loss, rest), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, rest, rng)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), rest, opt_state, loss

    return step, opt


def jax_calls(w: Workload, dtype: str) -> dict:
    """{"infer": call, "train": call, "params": count}: the jitted calls to time."""
    x = jax_inputs(w)
    if w.name == "wavenet_generation":
        net = jax_model("wavenet", dtype)
        variables = net.init(jax.random.key(0), x[:, :8])
        return {"infer": lambda: generation.sample(net, variables, jax.random.key(1),
                                                   w.shape[0], batch_size=w.batch)}
    model = jax_model(w.name, dtype)
    variables = model.init(jax.random.key(0), x)
    forward = jax.jit(lambda v, x: jax_forward(model, v, x))
    calls = {"infer": lambda: forward(variables, x),
             "params": sum(int(np.prod(p.shape)) for p in jax.tree.leaves(variables["params"]))}
    trainee, trained = model, variables
    if w.name == "wav2vec2":  # train the sequence classifier, as the classify task does
        trainee = build_model({"name": "wav2vec2_classifier", "num_classes": 35,
                               "classifier_proj_size": 256, "dtype": dtype})
        trained = trainee.init(jax.random.key(0), x)
    params, rest = trained["params"], {k: v for k, v in trained.items() if k != "params"}
    labels = jnp.zeros((w.batch,), jnp.int32)
    step, opt = jax_train_step(trainee, x, labels)
    opt_state = opt.init(params)
    rng = jax.random.key(2)
    calls["train"] = lambda: step(params, rest, opt_state, rng)
    return calls


# ---- PyTorch peers ------------------------------------------------------------------------
def torch_model(name: str):
    if name in CNNS:
        return cnn_peer(name, 35, 64)
    if name == "sincnet":
        return sincnet_peer(462, 3200)
    if name == "ast":
        import transformers
        return transformers.ASTForAudioClassification(transformers.ASTConfig(num_labels=527))
    if name == "wav2vec2":
        import transformers
        return transformers.Wav2Vec2Model(transformers.Wav2Vec2Config())
    from wavenet_vocoder import WaveNet
    return WaveNet(out_channels=256, layers=20, stacks=2, residual_channels=64, gate_channels=128,
                   skip_out_channels=64, kernel_size=2, dropout=0.0, weight_normalization=False)


def torch_inputs(w: Workload):
    import torch
    rng = np.random.default_rng(0)
    if w.name.startswith("wavenet"):
        codes = torch.from_numpy(rng.integers(0, 256, (w.batch, *w.shape)))
        return torch.nn.functional.one_hot(codes, 256).transpose(1, 2).float(), codes
    x = torch.from_numpy(rng.standard_normal((w.batch, *w.shape)).astype(np.float32))
    return (x[:, None] if w.name in CNNS else x), None


def torch_logits(name, model, x):
    out = model(x)
    if name in ("ast",):
        return out.logits
    if name == "wav2vec2":
        return out.last_hidden_state
    return out


def torch_calls(w: Workload, dtype: str) -> dict:
    """{"infer": call, "train": call, "params": count} for the peer (no bfloat16 generation:
    r9y9's sampler hands the probabilities to numpy)."""
    import torch
    name = "wavenet" if w.name == "wavenet_generation" else w.name
    model = torch_model(name)
    x, codes = torch_inputs(w)
    autocast = (torch.autocast("cpu", dtype=torch.bfloat16) if dtype == "bfloat16"
                else contextlib.nullcontext())
    if w.name == "wavenet_generation":
        if dtype == "bfloat16":
            return {}
        model.eval()

        def generate():
            with torch.no_grad(), autocast:
                model.incremental_forward(T=w.shape[0], softmax=True, quantize=True)
        return {"infer": generate}

    def infer():
        model.eval()  # the same module trains below: each call sets its own mode
        with torch.no_grad(), autocast:
            torch_logits(name, model, x)
    calls = {"infer": infer, "params": parameter_count(model)}
    trainee = model
    if name == "wav2vec2":  # train the classifier head version, as audiozoo's classify task
        import transformers
        trainee = transformers.Wav2Vec2ForSequenceClassification(
            transformers.Wav2Vec2Config(num_labels=35))
    opt = torch.optim.Adam(trainee.parameters(), 1e-4)
    labels = torch.zeros(w.batch, dtype=torch.long)

    def train():
        trainee.train()
        with autocast:
            logits = torch_logits("ast" if name == "wav2vec2" else name, trainee, x).float()
            if name == "wavenet":
                loss = torch.nn.functional.cross_entropy(logits[:, :, :-1], codes[:, 1:])
            else:
                loss = torch.nn.functional.cross_entropy(logits, labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    calls["train"] = train
    return calls


def measure(w: Workload, dtype: str, repeats: int, peers: bool) -> tuple[dict, dict]:
    """Throughput per mode of audiozoo and of its peer, each audiozoo call timed in turn with
    the peer's (median of `repeats` rounds), so that the machine's drift hits both alike."""
    ours, theirs = jax_calls(w, dtype), (torch_calls(w, dtype) if peers else {})
    scale = w.batch * (w.shape[0] if w.name.startswith("wavenet") else 1)
    rates = ({"params": ours.get("params")}, {"params": theirs.get("params")})
    for mode in ("infer", "train"):
        if mode not in ours:
            continue
        calls = {"ours": ours[mode], **({"peer": theirs[mode]} if mode in theirs else {})}
        seconds = interleaved_seconds(calls, repeats, "median")
        rates[0][mode] = scale / seconds["ours"]
        if "peer" in seconds:
            rates[1][mode] = scale / seconds["peer"]
    return rates


# ---- the table ----------------------------------------------------------------------------
def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=list(WORKLOADS), choices=list(WORKLOADS))
    parser.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"],
                        choices=["float32", "bfloat16"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-peers", action="store_true", help="audiozoo rows only")
    args = parser.parse_args()
    if not args.no_peers:
        import torch
        torch.set_num_threads(os.cpu_count())
        peer_version = f", torch {torch.__version__} ({torch.get_num_threads()} threads)"
    else:
        peer_version = ""
    print(f"jax {jax.__version__}{peer_version}; {device_label()}; median of {args.repeats}")
    print()
    print("| model | input | device | batch | dtype | mode | audiozoo | peer | ratio |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in args.models:
        w = WORKLOADS[name]
        for dtype in args.dtypes:
            ours, peer = measure(w, dtype, args.repeats, not args.no_peers)
            if None not in (peer["params"], ours["params"]) and peer["params"] != ours["params"]:
                print(f"| {name}: parameter counts differ, audiozoo {ours['params']:,} vs peer "
                      f"{peer['params']:,} |")
            for mode in ("infer", "train"):
                if mode not in ours:
                    continue
                theirs = peer.get(mode)
                ratio = f"{ours[mode] / theirs:.2f}" if theirs else "-"
                theirs = _figure(theirs) if theirs else "-"
                print(f"| {name} | {w.what} | {device_label()} | {w.batch} | {dtype} | {mode} "
                      f"| {_figure(ours[mode])} {w.unit} | {theirs} | {ratio} |", flush=True)


def _figure(rate: float) -> str:
    """Throughput with three significant digits below 100 (AST's 0.2 examples/s would
    otherwise round away the difference a change makes)."""
    return f"{rate:,.1f}" if rate >= 100 else f"{rate:.3g}"


if __name__ == "__main__":
    main()
