"""wav2vec 2.0: shapes, parameter counts, masking, quantiser, loss, training, HF parity."""

import functools
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from audiozoo.config import load_config
from audiozoo.models import build_model
from audiozoo.models import wav2vec2 as w2v
from audiozoo.models.hf_checkpoint import CheckpointFormatError

CONFIGS = os.path.join(os.path.dirname(__file__), "..", "configs")
# A small model with the BASE feature encoder's kernels and strides (320 samples per frame).
TINY = dict(conv_dim=(8,) * 7, hidden=16, num_layers=1, num_heads=2, intermediate=32,
            num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=2)
# Smaller still, for tests that compile gradients: three conv layers, 50 samples per frame.
MINI = dict(TINY, conv_dim=(8, 8, 8), conv_kernel=(10, 3, 3), conv_stride=(5, 2, 5))


def random_variables(module, *args, seed=0):
    """Variables of the right shapes drawn in NumPy: skips compiling dozens of initialisers
    (the trainer test and the checkpoint tests cover the real init and real weights)."""
    rng = np.random.RandomState(seed)
    shapes = jax.eval_shape(lambda: module.init(jax.random.key(0), *args))
    return jax.tree.map(lambda s: jnp.asarray(rng.normal(0, 0.3, s.shape) + (s.ndim == 1 and 0.5),
                                              jnp.float32), shapes)


def num_params(module, *args):
    shapes = jax.eval_shape(lambda: module.init(jax.random.key(0), *args))
    return sum(x.size for x in jax.tree.leaves(shapes["params"]))


# ---- model ------------------------------------------------------------------------------
def test_one_second_gives_49_frames():
    assert w2v.feature_frames(16000, (10, 3, 3, 3, 3, 2, 2), (5, 2, 2, 2, 2, 2, 2)) == 49
    model = w2v.Wav2Vec2(**TINY)
    x = jnp.asarray(np.random.RandomState(0).uniform(-1, 1, (2, 16000)), jnp.float32)
    hidden = jax.jit(model.apply)(random_variables(model, x), x)
    assert hidden.shape == (2, 49, 16)
    assert np.all(np.isfinite(hidden))
    with pytest.raises(ValueError, match="too few"):
        jax.eval_shape(model.init, jax.random.key(0), x[:, :399])


def test_parameter_counts_equal_hugging_face():
    # transformers 5.23 on the meta device: Wav2Vec2Model(Wav2Vec2Config()) = 94,371,712,
    # Wav2Vec2ForPreTraining = 95,044,608, Wav2Vec2ForSequenceClassification (2 labels) =
    # 94,569,090; LARGE LV-60k (layer norm, stable layer norm, conv bias): 315,438,720 and
    # 316,177,152.
    x, mask = jnp.zeros((1, 400)), jnp.zeros((1, 1), bool)
    assert num_params(w2v.Wav2Vec2Base(), x) == 94_371_712
    assert num_params(w2v.Wav2Vec2ForPreTraining(wav2vec2=w2v.Wav2Vec2Base()), x, mask) == 95_044_608
    assert num_params(w2v.Wav2Vec2BaseClassifier(num_classes=2), x) == 94_569_090
    assert num_params(w2v.Wav2Vec2Large(), x) == 315_438_720
    assert num_params(w2v.Wav2Vec2ForPreTraining(wav2vec2=w2v.Wav2Vec2Large()), x, mask) == 316_177_152


def test_masked_frames_take_the_mask_embedding():
    # Layer norm in the feature encoder keeps frames local (group norm spans the utterance).
    model = w2v.Wav2Vec2(**TINY, feat_extract_norm="layer")
    x = jnp.asarray(np.random.RandomState(1).randn(1, 4000) * 0.1, jnp.float32)
    variables = random_variables(model, x)
    apply = jax.jit(lambda x, mask: model.apply(variables, x, mask_time_indices=mask))
    none, mask = jnp.zeros((1, 12), bool), jnp.zeros((1, 12), bool).at[0, 3:6].set(True)
    # Audio that only frames 3-5 see (samples 1040-1920; frame t reads 320 t ... 320 t + 399)
    # changes the output unless those frames are masked.
    x2 = x.at[0, 1400:1500].set(0.5)
    assert not np.allclose(apply(x2, none), apply(x, none), atol=1e-4)
    np.testing.assert_allclose(apply(x2, mask), apply(x, mask), atol=1e-5)


def test_classifier_train_vs_eval_and_grad():
    model = build_model({"name": "wav2vec2_classifier", "num_classes": 5, "classifier_proj_size": 12,
                         **MINI})
    assert model.input_kind == "waveform"
    x = jnp.asarray(np.random.RandomState(2).randn(2, 1000) * 0.1, jnp.float32)  # 19 frames
    params = random_variables(model, x)["params"]

    def train_loss(params, rng):
        logits = model.apply({"params": params}, x, train=True, rngs={"dropout": rng})
        return jnp.mean(jax.nn.log_softmax(logits)[:, 0]), logits

    @jax.jit
    def run(params, rng):
        eval_logits = model.apply({"params": params}, x)
        features = model.apply({"params": params}, x, method=model.features)
        (_, train_logits), grads = jax.value_and_grad(train_loss, has_aux=True)(params, rng)
        return eval_logits, features, train_logits, grads

    logits, features, train_logits, grads = run(params, jax.random.key(2))
    assert logits.shape == (2, 5) and logits.dtype == jnp.float32 and features.shape == (2, 12)
    assert not np.allclose(train_logits, logits)  # dropout, LayerDrop and time masking
    np.testing.assert_allclose(run(params, jax.random.key(3))[0], logits)  # eval: no randomness
    norms = [float(jnp.linalg.norm(g)) for g in jax.tree.leaves(grads)]
    assert all(np.isfinite(norms)) and max(norms) > 0


# ---- masking and distractors ------------------------------------------------------------
def test_mask_span_count_follows_hugging_face_rounding():
    # mask_length 1 makes spans disjoint, so masked frames = spans = int(6.5 + U[0, 1)):
    # 6 or 7, each half of the time.
    keys = jax.random.split(jax.random.key(0), 2000)
    masks = jax.jit(jax.vmap(lambda k: w2v.compute_mask(k, 3, 100, 0.065, 1, 2)))(keys)
    counts = np.asarray(masks.sum(-1))  # [draws, batch]
    assert set(np.unique(counts)) == {6, 7}
    assert np.all(counts == counts[:, :1])  # one count per call, as HF
    assert abs(counts.mean() - 6.5) < 0.06
    # Every start position is used: uniform starts over the whole sequence.
    assert masks.any(axis=(0, 1)).all()


def test_mask_spans_of_one_second():
    # 49 frames, mask_prob 0.65 (the paper's p = 0.065 times M = 10): int(3.185 + U) = 3 or 4
    # spans of 10 frames with distinct starts, possibly overlapping: runs of >= 10 frames.
    compute = jax.jit(w2v.compute_mask, static_argnums=(1, 2))
    masks = np.asarray(compute(jax.random.key(1), 256, 49))
    counts = masks.sum(-1)
    assert counts.min() >= 12 and counts.max() <= 40 and len(np.unique(counts)) > 5
    for row in masks[:32]:
        edges = np.flatnonzero(np.diff(np.concatenate([[0], row.astype(int), [0]])))
        assert np.all(edges[1::2] - edges[0::2] >= 10)
    # Long inputs: 1 - (1 - 0.065) ** 10 = 49% of frames masked, as the paper reports.
    long = np.asarray(compute(jax.random.key(2), 64, 2000))
    assert abs(long.mean() - 0.49) < 0.01


def test_negatives_are_other_masked_frames_of_the_same_utterance():
    mask = np.zeros((2, 30), bool)
    mask[0, [2, 3, 4, 10, 20]] = True
    mask[1, 5:15] = True
    neg = np.asarray(w2v.sample_negative_indices(jax.random.key(0), jnp.asarray(mask), 200))
    for b in range(2):
        for t in np.flatnonzero(mask[b]):
            drawn = neg[b, t]
            assert mask[b, drawn].all() and not (drawn == t).any()
            others = set(np.flatnonzero(mask[b])) - {t}
            assert set(drawn) == others  # 200 draws hit every other masked frame


# ---- quantiser and loss -----------------------------------------------------------------
def test_gumbel_straight_through_reaches_the_quantiser_weights():
    q = w2v.GumbelVectorQuantizer(num_groups=2, num_vars=8, codevector_dim=6)
    x = jnp.asarray(np.random.RandomState(0).randn(2, 5, 4), jnp.float32)
    params = random_variables(q, x)["params"]
    book = np.asarray(params["codevectors"]).reshape(2, 8, 3)

    def run(params, train):
        return q.apply({"params": params}, x, temperature=1.5, train=train,
                       rngs={"gumbel": jax.random.key(1)})

    @jax.jit
    def check(params):
        grads = jax.grad(lambda p: jnp.sum(run(p, True)[0] ** 2))(params)
        return run(params, True), grads, run(params, False)[0], run(params, False)[0]

    (out, ppl), grads, eval_a, eval_b = check(params)
    # Forward is hard: each group's slice is exactly one codebook entry.
    for g in range(2):
        piece = np.asarray(out).reshape(10, 2, 3)[:, g]
        assert np.all(np.min(np.abs(piece[:, None] - book[g][None]).sum(-1), axis=1) < 1e-6)
    assert 1.0 <= float(ppl) <= 16.0
    # Backward is soft: the straight-through gradient reaches the logits' projection.
    assert float(jnp.abs(grads["weight_proj"]["kernel"]).sum()) > 0
    # Eval is argmax: deterministic.
    np.testing.assert_array_equal(eval_a, eval_b)


def test_pretraining_loss_extremes():
    rng = np.random.RandomState(0)
    targets = jnp.asarray(rng.randn(1, 6, 4), jnp.float32)
    mask = jnp.ones((1, 6), bool)
    negatives = w2v.sample_negative_indices(jax.random.key(0), mask, 5)
    loss_fn = jax.jit(functools.partial(w2v.pretraining_loss, num_codevectors=8,
                                        diversity_loss_weight=0.1))
    good, m = loss_fn(targets, targets, jnp.float32(8.0), mask, negatives)
    bad, _ = loss_fn(-targets, targets, jnp.float32(8.0), mask, negatives)
    assert float(m["accuracy"]) == 1.0 and float(m["diversity_loss"]) == 0.0
    assert float(good) < 0.5 < float(bad)
    # A collapsed codebook: every distractor equals its positive and is left out.
    same = jnp.ones((1, 6, 4))
    _, m = loss_fn(same, same, jnp.float32(1.0), mask, negatives)
    assert float(m["contrastive_loss"]) == 0.0
    np.testing.assert_allclose(float(m["diversity_loss"]), 7 / 8)


# ---- training through the real trainer --------------------------------------------------
@pytest.mark.slow
def test_tiny_pretraining_config_learns(tmp_path):
    from audiozoo.train.loop import train

    config = load_config(os.path.join(CONFIGS, "wav2vec2_tiny_pretrain.py"))
    config.train.update(num_steps=24, log_every=8, eval_every=0, checkpoint_every=24)
    config.data.update(num_train=64, segment_length=8000)  # 24 frames: half the work
    # No dropout: fewer random streams to compile (compiling dominates this test).
    config.model.update(hidden_dropout=0.0, attention_dropout=0.0, feat_proj_dropout=0.0)
    config.task.feat_quantizer_dropout = 0.0
    state = train(config, tmp_path)
    records = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
    losses = [r["loss"] for r in records]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0] - 0.02
    temperatures = [r["temperature"] for r in records]
    assert temperatures == sorted(temperatures, reverse=True) and temperatures[0] < 2.0
    assert int(state.extra["counters"]["num_updates"]) == 24
    for key in ("contrastive_loss", "diversity_loss", "codevector_perplexity", "accuracy"):
        assert np.isfinite(records[-1][key])


@pytest.mark.slow
def test_tiny_pretraining_config_beats_chance(tmp_path):
    """The whole tiny config (300 steps): the contrastive loss leaves chance level, ln(K + 1)."""
    from audiozoo.train.loop import train

    config = load_config(os.path.join(CONFIGS, "wav2vec2_tiny_pretrain.py"))
    train(config, tmp_path)
    records = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
    final = [r for r in records if r["split"] == "eval"][-1]
    chance = np.log(config.task.num_negatives + 1)
    assert final["contrastive_loss"] < chance - 0.4
    assert final["accuracy"] > 3 / (config.task.num_negatives + 1)


# ---- Hugging Face parity ----------------------------------------------------------------
HF_SMALL = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                conv_dim=(32, 32, 32), conv_kernel=(10, 3, 3), conv_stride=(5, 2, 2),
                num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4)
VARIANTS = {"base": dict(feat_extract_norm="group", do_stable_layer_norm=False),
            "stable": dict(feat_extract_norm="layer", do_stable_layer_norm=True, conv_bias=True)}


def hf_model(cls_name, variant, **extra):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.Wav2Vec2Config(**HF_SMALL, **VARIANTS[variant], **extra)
    return getattr(transformers, cls_name)(config).eval()


def save_torch_bin(model, path, rename=None):
    """A pytorch_model.bin directory (transformers 5 always writes safetensors)."""
    import torch

    model.config.save_pretrained(path)
    state = {k: v for k, v in model.state_dict().items()}
    if rename:
        state = {rename(k): v for k, v in state.items()}
    torch.save(state, os.path.join(path, "pytorch_model.bin"))


def waveforms(batch=2, samples=1200, seed=0):
    return np.random.RandomState(seed).randn(batch, samples).astype(np.float32) * 0.3


@pytest.mark.parametrize("variant", ["base", "stable"])
def test_hidden_states_match_hugging_face(variant, tmp_path):
    torch = pytest.importorskip("torch")

    model = hf_model("Wav2Vec2Model", variant)
    if variant == "base":
        model.save_pretrained(tmp_path)  # safetensors
    else:
        save_torch_bin(model, tmp_path)  # the torch pickle path
    module, variables = w2v.from_hf(tmp_path)
    x = waveforms()
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).last_hidden_state.numpy()
    ours = np.asarray(module.apply(variables, jnp.asarray(x)))
    assert ours.shape == ref.shape == (2, 59, 32)
    assert np.abs(ours - ref).max() <= 1e-4
    if variant == "stable":  # padded batches (HF passes attention_mask to layer-norm models)
        padding = np.ones(x.shape, np.int64)
        padding[1, 700:] = 0
        x[1, 700:] = 0
        with torch.no_grad():
            ref = model(torch.from_numpy(x), attention_mask=torch.from_numpy(padding)).last_hidden_state
        ours = module.apply(variables, jnp.asarray(x), attention_mask=jnp.asarray(padding))
        assert np.abs(np.asarray(ours) - ref.numpy()).max() <= 1e-4


def test_pretraining_loss_matches_hugging_face(tmp_path):
    torch = pytest.importorskip("torch")

    model = hf_model("Wav2Vec2ForPreTraining", "base", num_codevectors_per_group=16,
                     codevector_dim=16, proj_codevector_dim=12, num_negatives=7)
    # Older checkpoints name the weight-norm halves weight_g / weight_v.
    save_torch_bin(model, tmp_path, rename=lambda k: k.replace("parametrizations.weight.original0",
                   "weight_g").replace("parametrizations.weight.original1", "weight_v"))
    module, variables = w2v.from_hf(tmp_path, pretraining=True)
    x, frames = waveforms(), 59
    mask = w2v.compute_mask(jax.random.key(1), 2, frames, 0.2, 2, 2)
    negatives = w2v.sample_negative_indices(jax.random.key(2), mask, 7)
    hf_negatives = np.asarray(negatives) + np.arange(2)[:, None, None] * frames  # HF flattens
    with torch.no_grad():
        ref = model(torch.from_numpy(x), mask_time_indices=torch.from_numpy(np.asarray(mask)),
                    sampled_negative_indices=torch.from_numpy(hf_negatives))
    out = module.apply(variables, jnp.asarray(x), mask, train=False)
    loss, metrics = w2v.pretraining_loss(out.projected_states, out.projected_quantized_states,
                                         out.codevector_perplexity, mask, negatives,
                                         num_codevectors=32)
    num_masked = int(np.asarray(mask).sum())  # HF sums over masked frames
    np.testing.assert_allclose(float(loss), ref.loss.item() / num_masked, rtol=1e-4)
    np.testing.assert_allclose(float(metrics["contrastive_loss"]),
                               ref.contrastive_loss.item() / num_masked, rtol=1e-4)
    np.testing.assert_allclose(float(out.codevector_perplexity), ref.codevector_perplexity.item(),
                               rtol=1e-5)
    # Without pretraining=True the same checkpoint gives the encoder alone.
    encoder, enc_vars = w2v.from_hf(tmp_path)
    assert isinstance(encoder, w2v.Wav2Vec2) and "quantizer" not in enc_vars["params"]


def test_parameter_counts_match_transformers_on_the_meta_device():
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    x, mask = jnp.zeros((1, 400)), jnp.zeros((1, 1), bool)
    with torch.device("meta"):
        for name, ours in (("Wav2Vec2Model", w2v.Wav2Vec2Base()),
                           ("Wav2Vec2ForPreTraining",
                            w2v.Wav2Vec2ForPreTraining(wav2vec2=w2v.Wav2Vec2Base()))):
            theirs = getattr(transformers, name)(transformers.Wav2Vec2Config())
            args = (x, mask) if name == "Wav2Vec2ForPreTraining" else (x,)
            assert num_params(ours, *args) == sum(p.numel() for p in theirs.parameters())


def test_from_hf_folded_weight_norm_and_bad_tensors(tmp_path):
    from safetensors.numpy import load_file, save_file

    model = hf_model("Wav2Vec2Model", "base")
    model.save_pretrained(tmp_path)
    weights = load_file(str(tmp_path / "model.safetensors"))
    # A positional conv saved as a plain weight (weight norm removed) loads to the same weight.
    _, reference = w2v.from_hf(tmp_path)
    base = "encoder.pos_conv_embed.conv."
    g, v = (weights.pop(base + f"parametrizations.weight.original{i}") for i in (0, 1))
    folded = g * v / np.linalg.norm(v, axis=(0, 1), keepdims=True)
    save_file({**weights, base + "weight": folded}, tmp_path / "model.safetensors")
    _, loaded = w2v.from_hf(tmp_path)
    conv, ref_conv = loaded["params"]["pos_conv_embed"], reference["params"]["pos_conv_embed"]
    np.testing.assert_allclose(w2v.weight_norm(conv["weight_g"], conv["weight_v"]),
                               w2v.weight_norm(ref_conv["weight_g"], ref_conv["weight_v"]),
                               atol=1e-6)
    weights[base + "weight"] = folded
    save_file({**weights, "lm_head.weight": np.zeros((4, 32), np.float32)},
              tmp_path / "model.safetensors")
    with pytest.raises(CheckpointFormatError, match="lm_head.weight"):
        w2v.from_hf(tmp_path)
    del weights["encoder.layers.1.final_layer_norm.bias"]
    save_file(weights, tmp_path / "model.safetensors")
    with pytest.raises(CheckpointFormatError, match="encoder.layers.1.final_layer_norm.bias"):
        w2v.from_hf(tmp_path)
    weights["encoder.layers.1.final_layer_norm.bias"] = np.zeros(32, np.float32)
    save_file(weights, tmp_path / "model.safetensors")
    with pytest.raises(CheckpointFormatError, match="without the pretraining head"):
        w2v.from_hf(tmp_path, pretraining=True)
