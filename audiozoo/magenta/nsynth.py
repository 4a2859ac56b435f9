"""magenta's pretrained NSynth WaveNet autoencoder (`wavenet-ckpt`) as an audiozoo workdir.

Engel et al. 2017, "Neural Audio Synthesis of Musical Notes with WaveNet Autoencoders"
(arXiv 1704.01279), section 3.1, as magenta builds it in models/nsynth/wavenet/h512_bo16.py
(`Config.build` for training and encoding, `FastGenerationConfig.build` for its queue-based
generator), with the layers of wavenet/masked.py (`conv1d`: variables `<scope>/W` of shape
[1, filter_length, in, out] and `<scope>/biases` [out]) and the codec of nsynth/utils.py.

The graph, and where audiozoo holds each part (`WaveNetAutoencoder` configured by
`nsynth_config`):

- Input: x -> `utils.mu_law` (floor(128 f(x)), f the mu = 255 companding) -> x / 128, one
  value per sample: `task.mu_law="magenta"` and the scalar encoder input (class / 128 - 1).
- Encoder: `ae_startconv` (non-causal, kernel 3) -> 30 x [relu -> `ae_dilatedconv_i` (kernel
  3, dilation 2^(i mod 10), non-causal) -> relu -> `ae_res_i` 1x1, added] -> `ae_bottleneck`
  1x1 to 16 -> average pool over 512 (`ae_pool`): `audiozoo.nn.encoder.DilatedEncoder`.
- Decoder: the scaled input shifted right by one -> `startconv` (causal, kernel 3, 1 -> 512):
  `decoder_scalar_input`, `decoder_input_kernel=3`; `skip_start` 1x1 starts the skip sum;
  30 x [`dilatedconv_i` (causal, kernel 3) + `cond_map_i`(encoding) -> sigmoid(first half) *
  tanh(second half) -> `res_i` added to the residual stream, `skip_i` added to the skips];
  relu -> `out1` + `cond_map_out1`(encoding) -> relu -> `logits` (256): `WaveNet` with
  `condition_output`, the encoding repeated 512 times (`Config._condition`).
- Output: classes c -> `utils.inv_mu_law(c - 128)`, as fastgen.py's `generate_audio_sample`.
- Encoding a clip cuts it to whole hops first (`utils.trim_for_encoding`, used by
  fastgen.encode): `task.partial_frame="trim"`; a 4 s note gives 125 x 16, 40,000 samples 78 x 16.

The weights map one to one, with three exact rewrites: each gate's halves are swapped
(`swap_halves`: audiozoo's gate is tanh(first) * sigmoid(second)); the conditioning
projections' biases are added to the bias of the layer they feed (`dilatedconv_i`, `out1`),
since both are added to the same sum at every time step; and `res_30` is checked but not
kept: its output, the residual stream after the last layer, feeds nothing in magenta's graph
either. The imported weights are the raw variables, which magenta's own `fastgen.encode` and
`fastgen.synthesize` restore (`tf.train.Saver()`); `ema=True` takes the moving averages
(decay 0.9999) that train.py kept beside them instead.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from audiozoo.config import base_config
from audiozoo.magenta.checkpoint import (EMA_SUFFIX, TFCheckpoint, check_variables, swap_halves,
                                         write_workdir)
from audiozoo.tasks import build_task

# h512_bo16.py, Config.__init__: `learning_rate_schedule`, for continuing training from the
# imported step (train.py uses the rate of the largest key <= global_step).
LR_SCHEDULE = {0: 2e-4, 90000: 4e-4 / 3, 120000: 6e-5, 150000: 4e-5, 180000: 2e-5,
               210000: 6e-6, 240000: 2e-6}
NUM_CLASSES = 256  # the decoder's `logits` and utils.mu_law's 8 bits
# The variable scopes of h512_bo16's two graphs (any other top-level scope is not the model's).
MODEL_SCOPE = re.compile(r"(ae_)?(startconv|dilatedconv_\d+|res_\d+|bottleneck|skip_start|"
                         r"skip_\d+|cond_map_\d+|cond_map_out1|out1|logits)")


@dataclasses.dataclass(frozen=True)
class NSynthShape:
    """The sizes `Config.build` hard-codes; the default is h512_bo16 (the published model).
    Smaller ones describe checkpoints of the same graph at another size (e.g. in tests)."""

    layers: int = 30           # num_layers (decoder)
    stages: int = 10           # num_stages: dilation 2^(i mod stages)
    width: int = 512           # residual width; the dilated convs make 2 * width
    skip_width: int = 256
    ae_layers: int = 30
    ae_stages: int = 10
    ae_width: int = 128
    bottleneck_width: int = 16  # Config.ae_bottleneck_width
    hop_length: int = 512       # Config.ae_hop_length
    filter_length: int = 3      # filter_length and ae_filter_length


H512_BO16 = NSynthShape()


# ---- the checkpoint's variables (masked.conv1d: W [1, k, in, out], biases [out]) -----------

def _conv(scope: str, kernel: int, cin: int, cout: int) -> dict[str, tuple[int, ...]]:
    return {f"{scope}/W": (1, kernel, cin, cout), f"{scope}/biases": (cout,)}


def variable_shapes(shape: NSynthShape = H512_BO16) -> dict[str, tuple[int, ...]]:
    """{variable name: shape} of every variable `Config.build` creates."""
    k, w, s, a, z = (shape.filter_length, shape.width, shape.skip_width, shape.ae_width,
                     shape.bottleneck_width)
    table = _conv("ae_startconv", k, 1, a)
    for i in range(1, shape.ae_layers + 1):
        table |= _conv(f"ae_dilatedconv_{i}", k, a, a) | _conv(f"ae_res_{i}", 1, a, a)
    table |= _conv("ae_bottleneck", 1, a, z)
    table |= _conv("startconv", k, 1, w) | _conv("skip_start", 1, w, s)
    for i in range(1, shape.layers + 1):
        table |= (_conv(f"dilatedconv_{i}", k, w, 2 * w) | _conv(f"cond_map_{i}", 1, z, 2 * w)
                  | _conv(f"res_{i}", 1, w, w) | _conv(f"skip_{i}", 1, w, s))
    table |= (_conv("out1", 1, s, s) | _conv("cond_map_out1", 1, z, s)
              | _conv("logits", 1, s, NUM_CLASSES))
    return table


def is_model_variable(name: str) -> bool:
    return MODEL_SCOPE.fullmatch(name.split("/")[0]) is not None


# ---- the audiozoo model ---------------------------------------------------------------------

def model_fields(shape: NSynthShape = H512_BO16) -> dict:
    """`WaveNetAutoencoder` fields that make exactly `Config.build`'s graph."""
    for layers, stages, what in ((shape.layers, shape.stages, "decoder"),
                                 (shape.ae_layers, shape.ae_stages, "encoder")):
        if layers % stages:
            raise ValueError(f"{what}: {layers} layers do not split into stacks of {stages}")
    return dict(
        num_classes=NUM_CLASSES, encoder_input="scalar", encoder_layers=shape.ae_layers,
        encoder_stacks=shape.ae_layers // shape.ae_stages, encoder_kernel=shape.filter_length,
        encoder_channels=shape.ae_width, latent_channels=shape.bottleneck_width,
        hop_length=shape.hop_length, bottleneck="none", decoder_layers=shape.layers,
        decoder_stacks=shape.layers // shape.stages, kernel_size=shape.filter_length,
        residual_channels=shape.width, gate_channels=2 * shape.width,
        skip_channels=shape.skip_width, upsample="repeat", skip_start=True,
        decoder_scalar_input=True, decoder_input_kernel=shape.filter_length)


def nsynth_config(shape: NSynthShape = H512_BO16):
    """The workdir's config: the model above, magenta's codec and framing, and (to continue
    training) train.py's Adam and piecewise rate over 6144-sample crops of batch 32."""
    c = base_config("autoencoder")
    c.model.update(model_fields(shape))
    c.task.update(mu_law="magenta", partial_frame="trim")
    c.data.update(name="synthetic_nsynth", segment_length=6144, pitch_range=(24, 84))
    boundaries = sorted(step for step in LR_SCHEDULE if step)
    c.optim.update(name="adam", learning_rate=LR_SCHEDULE[0], schedule="piecewise",
                   warmup_steps=0, eps=1e-8, grad_clip_norm=0.0, lr_boundaries=tuple(boundaries),
                   lr_values=tuple(LR_SCHEDULE[b] for b in boundaries))
    c.train.update(num_steps=200_000, batch_size=32, log_every=100, eval_every=5000,
                   checkpoint_every=5000)
    return c


def to_params(read, shape: NSynthShape = H512_BO16) -> dict:
    """The `WaveNetAutoencoder` parameter tree from `read(variable name)` (see the module
    docstring for the rewrites)."""
    return {"encoder": _encoder(read, shape), "decoder": _decoder(read, shape)}


def _dense(read, scope: str) -> dict:
    return {"kernel": read(f"{scope}/W")[0, 0], "bias": read(f"{scope}/biases")}


def _conv_params(read, scope: str) -> dict:
    return {"kernel": read(f"{scope}/W")[0], "bias": read(f"{scope}/biases")}


def _encoder(read, shape: NSynthShape) -> dict:
    params = {"start": _conv_params(read, "ae_startconv"), "latent": _dense(read, "ae_bottleneck")}
    for i in range(shape.ae_layers):
        params[f"dilated_{i}"] = _conv_params(read, f"ae_dilatedconv_{i + 1}")
        params[f"residual_{i}"] = _dense(read, f"ae_res_{i + 1}")
    return params


def _decoder(read, shape: NSynthShape) -> dict:
    out1 = _dense(read, "out1")
    params = {
        "input_proj": _conv_params(read, "startconv"),
        "skip_start_proj": _dense(read, "skip_start"),
        "output_hidden": {"kernel": out1["kernel"],
                          "bias": out1["bias"] + read("cond_map_out1/biases")},
        "output_cond": {"kernel": read("cond_map_out1/W")[0, 0]},
        "output_logits": _dense(read, "logits"),
    }
    for i in range(shape.layers):
        params[f"blocks_{i}"] = _block(read, i + 1, last=i == shape.layers - 1)
    return params


def _block(read, n: int, last: bool) -> dict:
    """Decoder layer n (1-based, magenta's numbering)."""
    dilated, cond = _conv_params(read, f"dilatedconv_{n}"), _dense(read, f"cond_map_{n}")
    block = {
        "dilated": {"kernel": swap_halves(dilated["kernel"]),
                    "bias": swap_halves(dilated["bias"] + cond["bias"])},
        "local_proj": {"kernel": swap_halves(cond["kernel"])},
        "skip_proj": _dense(read, f"skip_{n}"),
    }
    if not last:  # the last res_n feeds nothing (see the module docstring)
        block["residual_proj"] = _dense(read, f"res_{n}")
    return block


# ---- the import -----------------------------------------------------------------------------

def import_nsynth(checkpoint: str | Path, workdir: str | Path, *, ema: bool = False,
                  shape: NSynthShape = H512_BO16) -> Path:
    """Reads magenta's NSynth WaveNet checkpoint (a prefix such as
    wavenet-ckpt/model.ckpt-200000, or its directory), checks its variables, and writes a
    workdir that `audiozoo encode / decode / interpolate` and `audiozoo.load` use. ema: take
    the ExponentialMovingAverage weights instead of the raw ones magenta's scripts use."""
    ckpt = TFCheckpoint(checkpoint)
    expected = variable_shapes(shape)
    suffix = f"/{EMA_SUFFIX}" if ema else ""
    if ema:  # the averages must be there too, each with its variable's shape
        expected |= {name + suffix: dims for name, dims in expected.items()}
    left = check_variables(ckpt, expected, is_model_variable)
    params = to_params(lambda name: ckpt.read(name + suffix), shape)
    task = build_task(nsynth_config(shape))
    step = ckpt.global_step or 0
    note = {"source": ckpt.prefix, "model": "magenta nsynth/wavenet/h512_bo16.py",
            "shape": dataclasses.asdict(shape), "weights": "ema" if ema else "raw",
            "global_step": step, "training_variables_not_imported": len(left)}
    return write_workdir(Path(workdir), task, params, step=step, note=note)
