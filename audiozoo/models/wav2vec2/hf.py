"""Loading Hugging Face wav2vec 2.0 checkpoints from a local directory, with no network.

Hugging Face transformers' modeling_wav2vec2.py (`Wav2Vec2Model`, `Wav2Vec2ForPreTraining`,
itself a port of fairseq's wav2vec2.py for Baevski et al. 2020, arXiv 2006.11477) names every
tensor; `hf_names` maps our parameter tree onto those names, `config_from_hf` maps config.json
onto the module fields. The positional convolution's weight norm is read under both PyTorch
namings (`parametrizations.weight.original0/1` and the older `weight_g/weight_v`) or from a
plain folded `weight`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax.numpy as jnp
import numpy as np
from flax import linen as nn
from flax import traverse_util

from audiozoo.models.hf_checkpoint import (CheckpointFormatError, Names, as_is, check_shapes,
                                           conv, conv_kernel, dense, layer_norm, load_hf_dir,
                                           take, take_all)
from audiozoo.models.wav2vec2.backbone import Wav2Vec2
from audiozoo.models.wav2vec2.pretraining import Wav2Vec2ForPreTraining

# config.json keys -> module fields, with HF's defaults for keys an older file leaves out.
_HF_FIELDS = {
    "conv_dim": ("conv_dim", (512,) * 7),
    "conv_kernel": ("conv_kernel", (10, 3, 3, 3, 3, 2, 2)),
    "conv_stride": ("conv_stride", (5, 2, 2, 2, 2, 2, 2)),
    "conv_bias": ("conv_bias", False),
    "feat_extract_norm": ("feat_extract_norm", "group"),
    "hidden_size": ("hidden", 768),
    "num_hidden_layers": ("num_layers", 12),
    "num_attention_heads": ("num_heads", 12),
    "intermediate_size": ("intermediate", 3072),
    "num_conv_pos_embeddings": ("num_conv_pos_embeddings", 128),
    "num_conv_pos_embedding_groups": ("num_conv_pos_embedding_groups", 16),
    "do_stable_layer_norm": ("do_stable_layer_norm", False),
    "layer_norm_eps": ("layer_norm_eps", 1e-5),
    "hidden_dropout": ("hidden_dropout", 0.1),
    "attention_dropout": ("attention_dropout", 0.1),
    "activation_dropout": ("activation_dropout", 0.1),
    "feat_proj_dropout": ("feat_proj_dropout", 0.0),
    "layerdrop": ("layerdrop", 0.1),
    "mask_time_prob": ("mask_time_prob", 0.05),
    "mask_time_length": ("mask_time_length", 10),
    "mask_time_min_masks": ("mask_time_min_masks", 2),
    "mask_feature_prob": ("mask_feature_prob", 0.0),
    "mask_feature_length": ("mask_feature_length", 10),
    "mask_feature_min_masks": ("mask_feature_min_masks", 0),
}
_HF_PRETRAINING_FIELDS = {
    "num_codevector_groups": 2, "num_codevectors_per_group": 320, "codevector_dim": 256,
    "proj_codevector_dim": 256, "feat_quantizer_dropout": 0.0,
}
# Tensors of Wav2Vec2ForPreTraining's head, dropped when only the encoder is asked for.
_PRETRAINING_HEAD = ("quantizer.", "project_hid.", "project_q.")
# Weight-norm (g, v) of the positional conv: torch.nn.utils.parametrizations names, then the
# older torch.nn.utils.weight_norm names.
_WEIGHT_NORM_NAMES = (("parametrizations.weight.original0", "parametrizations.weight.original1"),
                      ("weight_g", "weight_v"))


def config_from_hf(config: dict) -> dict[str, Any]:
    """`Wav2Vec2` fields from a Hugging Face `config.json` dict (HF defaults for missing keys)."""
    if config.get("model_type", "wav2vec2") != "wav2vec2":
        raise CheckpointFormatError(f"config.json has model_type={config['model_type']!r}; "
                                    f"wav2vec2.from_hf reads 'wav2vec2' checkpoints only")
    for key in ("hidden_act", "feat_extract_activation"):
        if config.get(key, "gelu") != "gelu":
            raise CheckpointFormatError(f"config.json {key}={config[key]!r} is not supported "
                                        f"(only 'gelu')")
    if config.get("add_adapter") or config.get("adapter_attn_dim") is not None:
        raise CheckpointFormatError("config.json enables adapters (add_adapter / adapter_attn_dim), "
                                    "which wav2vec2.from_hf does not support")
    fields = {}
    for key, (field, default) in _HF_FIELDS.items():
        value = config.get(key, default)
        fields[field] = tuple(value) if isinstance(value, list) else value
    return fields


def hf_names(model: Wav2Vec2) -> Names:
    """(flax param path, HF tensor name, converter) for every parameter of a `Wav2Vec2` except
    the positional conv's weight norm (see `_pos_conv_weights`)."""
    for i in range(len(model.conv_dim)):
        path, name = ("feature_extractor", f"conv_layers_{i}"), f"feature_extractor.conv_layers.{i}"
        yield from conv(path + ("conv",), f"{name}.conv", bias=model.conv_bias)
        if model.feat_extract_norm == "layer" or i == 0:
            yield from layer_norm(path + ("layer_norm",), f"{name}.layer_norm")
    yield from layer_norm(("feature_projection", "layer_norm"), "feature_projection.layer_norm")
    yield from dense(("feature_projection", "projection"), "feature_projection.projection")
    if model.has_mask_embedding:
        yield ("masked_spec_embed",), "masked_spec_embed", as_is
    yield ("pos_conv_embed", "bias"), "encoder.pos_conv_embed.conv.bias", as_is
    yield from layer_norm(("encoder", "norm"), "encoder.layer_norm")
    for i in range(model.num_layers):
        path, name = ("encoder", f"layers_{i}"), f"encoder.layers.{i}"
        for ours, theirs in (("query", "q_proj"), ("key", "k_proj"), ("value", "v_proj"),
                             ("out", "out_proj")):
            yield from dense(path + ("attention", ours), f"{name}.attention.{theirs}")
        yield from layer_norm(path + ("attention_norm",), f"{name}.layer_norm")
        yield from dense(path + ("mlp", "fc1"), f"{name}.feed_forward.intermediate_dense")
        yield from dense(path + ("mlp", "fc2"), f"{name}.feed_forward.output_dense")
        yield from layer_norm(path + ("mlp_norm",), f"{name}.final_layer_norm")


def _head_names() -> Names:
    """The quantiser's projection and the two output projections of ForPreTraining (the
    codebook, stored with a leading axis of 1, is read by `_head_params`)."""
    yield from dense(("quantizer", "weight_proj"), "quantizer.weight_proj")
    yield from dense(("project_hid",), "project_hid")
    yield from dense(("project_q",), "project_q")


def _pos_conv_weights(weights: dict, prefix: str, used: set[str]) -> dict[tuple[str, ...], np.ndarray]:
    """weight_g [k] and weight_v [k, in / groups, out] from either weight-norm naming, or from a
    plain folded `weight` (then v = weight and g = |weight|, which reproduces it exactly)."""
    base = f"{prefix}encoder.pos_conv_embed.conv."
    for g_name, v_name in _WEIGHT_NORM_NAMES:
        if base + v_name in weights:
            g = take(weights, base + g_name, used).reshape(-1)
            v = conv_kernel(take(weights, base + v_name, used))
            return {("pos_conv_embed", "weight_g"): g, ("pos_conv_embed", "weight_v"): v}
    v = conv_kernel(take(weights, base + "weight", used))
    return {("pos_conv_embed", "weight_g"): np.linalg.norm(v, axis=(1, 2)),
            ("pos_conv_embed", "weight_v"): v}


def _backbone_params(model: Wav2Vec2, weights: dict, prefix: str, used: set[str]) -> dict:
    flat = take_all(weights, hf_names(model), used, prefix)
    flat.update(_pos_conv_weights(weights, prefix, used))
    return flat


def _head_params(weights: dict, used: set[str]) -> dict:
    flat = {("quantizer", "codevectors"): take(weights, "quantizer.codevectors", used)[0]}
    flat.update(take_all(weights, _head_names(), used))
    return flat


def from_hf(path: str | Path, *, pretraining: bool = False) -> tuple[nn.Module, dict]:
    """(module, variables) from a local Hugging Face `Wav2Vec2Model` or `Wav2Vec2ForPreTraining`
    directory (config.json + model.safetensors or pytorch_model.bin); no network.

    Default: the `Wav2Vec2` encoder, `module.apply(variables, waveform)` -> last hidden state;
    a ForPreTraining checkpoint's quantiser and projections are then left out on purpose.
    `pretraining=True`: `Wav2Vec2ForPreTraining` with its head (the checkpoint must have it).
    Any other tensor in the checkpoint (a CTC or classification head, adapters) is an error.
    """
    config, weights = load_hf_dir(path)
    model = Wav2Vec2(**config_from_hf(config))
    prefix = "wav2vec2." if any(k.startswith("wav2vec2.") for k in weights) else ""
    used: set[str] = set()
    flat = _backbone_params(model, weights, prefix, used)
    if pretraining:
        if prefix != "wav2vec2.":
            raise CheckpointFormatError(f"{path} holds a Wav2Vec2Model without the pretraining "
                                        f"head; load it with pretraining=False")
        head = {k: config.get(k, v) for k, v in _HF_PRETRAINING_FIELDS.items()}
        module = Wav2Vec2ForPreTraining(wav2vec2=model, **head)
        flat = {("wav2vec2", *p): v for p, v in flat.items()}
        flat.update(_head_params(weights, used))
    else:
        module = model
        used.update(k for k in weights if k.startswith(_PRETRAINING_HEAD))
    unused = sorted(set(weights) - used)
    if unused:
        raise CheckpointFormatError(
            f"{path}: {len(unused)} checkpoint tensors have no place in the model, e.g. "
            f"{unused[:3]}; from_hf reads Wav2Vec2Model and Wav2Vec2ForPreTraining checkpoints")
    params = traverse_util.unflatten_dict({k: jnp.asarray(v) for k, v in flat.items()})
    example = (jnp.zeros((1, _min_samples(model)), jnp.float32),)
    if pretraining:
        example += (jnp.zeros((1, 1), bool),)  # the mask_time_indices argument
    check_shapes(module, params, *example, where=path)
    return module, {"params": params}


def _min_samples(model: Wav2Vec2) -> int:
    """The shortest input that gives one frame."""
    samples = 1
    for k, s in reversed(list(zip(model.conv_kernel, model.conv_stride))):
        samples = (samples - 1) * s + k
    return samples
