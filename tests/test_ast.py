"""AST and the shared Transformer encoder: patch grid, parameter count, shapes, variable
length, training, Hugging Face import, parity with transformers / torch."""

import functools
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from safetensors.numpy import save_file

from audiozoo.models import ast as ast_lib
from audiozoo.models.ast import AST, from_hf, patch_grid, resize_time_positions
from audiozoo.models import model_class
from audiozoo.models.hf_checkpoint import CheckpointFormatError
from audiozoo.nn.transformer import Encoder, EncoderBlock

# 32 bins x 100 frames -> 2 x 9 patches; the same shape as the HF parity config below.
TINY = dict(num_frames=100, num_mel_bins=32, hidden=32, num_layers=2, num_heads=4, mlp_dim=64)

# AST base, 527 AudioSet classes, 1024 x 128 input (12 x 101 = 1212 patches):
#   patch conv          768 * 16 * 16 + 768                    =    197,376
#   cls + dist tokens   2 * 768                                =      1,536
#   position embedding  (1212 + 2) * 768                       =    932,352
#   12 layers x (4 * (768 * 768 + 768)       attention        = 2,362,368
#                + 768 * 3072 + 3072 + 3072 * 768 + 768  MLP   = 4,722,432
#                + 2 * 2 * 768)              LayerNorms        =     3,072)  = 85,054,464
#   encoder LayerNorm   2 * 768                                =      1,536
#   head LayerNorm + Linear  2 * 768 + 768 * 527 + 527         =    406,799
#   total                                                      = 86,594,063
# (= sum(p.numel()) of transformers' ASTForAudioClassification(ASTConfig(num_labels=527)).)
AST_BASE_PARAMS = 86_594_063


def _count(module, frames, bins):
    x = jax.ShapeDtypeStruct((1, frames, bins), jnp.float32)
    params = jax.eval_shape(module.init, jax.random.key(0), x)["params"]
    return sum(int(np.prod(p.shape)) for p in jax.tree.leaves(params))


def _apply(model, variables, x, method="__call__"):
    # Jitted: a tiny compile is cheaper than running the encoder op by op.
    return jax.jit(functools.partial(model.apply, method=method))(variables, x)


def _fbank(batch, frames, bins=32, seed=0):
    return jax.random.normal(jax.random.key(seed), (batch, frames, bins))


@pytest.fixture(scope="module")
def tiny():
    model = AST(num_classes=7, **TINY)
    return model, jax.jit(model.init)(jax.random.key(1), _fbank(1, 100))


def test_patch_grid_of_the_paper():
    assert patch_grid(1024, 128, 16, 10, 10) == (12, 101)
    assert AST(num_classes=527).num_patches == 1212


def test_registry_name():
    assert model_class("ast") is AST and AST.input_kind == "fbank"


def test_parameter_count_ast_base():
    assert _count(AST(num_classes=527), 1024, 128) == AST_BASE_PARAMS


def test_parameter_count_matches_transformers():
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    with torch.device("meta"):  # shapes only: no memory, no initialisation cost
        hf = transformers.ASTForAudioClassification(transformers.ASTConfig(num_labels=527))
    assert sum(p.numel() for p in hf.parameters()) == AST_BASE_PARAMS


def test_shapes(tiny):
    model, variables = tiny
    x = _fbank(3, 100)
    assert _apply(model, variables, x).shape == (3, 7)
    assert _apply(model, variables, x, "features").shape == (3, 32)
    assert _apply(model, variables, x, "encode").shape == (3, 2 + 18, 32)


def test_patches_are_frequency_major(tiny):
    model, variables = tiny
    # Patches overlap by 6; frames 0..9 x bins 16..25 lie in the patch f=1, t=0 only, which is
    # token 2 + 1 * t_dim when patches are flattened frequency-major.
    x = jnp.zeros((1, 100, 32)).at[0, :10, 16:26].set(1.0)
    tokens = model.apply(variables, x, method=model.embed)
    base = model.apply(variables, jnp.zeros_like(x), method=model.embed)
    changed = np.flatnonzero(np.abs(np.asarray(tokens - base)).max(axis=(0, 2)) > 0)
    assert changed.tolist() == [2 + 1 * 9]


def test_position_interpolation_is_identity_at_native_length(tiny):
    model, variables = tiny
    pos = model.apply(variables, 100, method=model.position_embeddings)
    np.testing.assert_array_equal(pos, variables["params"]["pos_embed"])
    # num_frames not a multiple of the stride: 105 frames have the same 9 time patches.
    same = model.apply(variables, 105, method=model.position_embeddings)
    np.testing.assert_array_equal(same, variables["params"]["pos_embed"])


def test_position_interpolation_resamples_time_only(tiny):
    model, variables = tiny
    pos = model.apply(variables, 56, method=model.position_embeddings)  # t_dim 5
    table = variables["params"]["pos_embed"]
    assert pos.shape == (1, 2 + 2 * 5, 32)
    np.testing.assert_array_equal(pos[:, :2], table[:, :2])  # special tokens untouched
    # A grid linear in time stays linear; frequency rows never mix.
    f, t = jnp.meshgrid(jnp.arange(2.0), jnp.arange(9.0), indexing="ij")
    grid = jnp.stack([100 * f + t, f], axis=-1)
    out = resize_time_positions(grid, 5)
    np.testing.assert_allclose(out[..., 1], [[0] * 5, [1] * 5])
    np.testing.assert_allclose(np.diff(out[..., 0], axis=1), 9 / 5, rtol=1e-5)
    np.testing.assert_allclose(out[:, 2, 0], [4.0, 104.0], rtol=1e-6)  # centres stay aligned


@pytest.mark.parametrize("frames", [40, 160])
def test_other_input_lengths_run(tiny, frames):
    model, variables = tiny
    logits = _apply(model, variables, _fbank(2, frames))
    assert logits.shape == (2, 7) and np.isfinite(logits).all()


def test_bad_inputs(tiny):
    model, variables = tiny
    with pytest.raises(ValueError, match="fbank"):
        model.apply(variables, _fbank(1, 100, bins=64))
    with pytest.raises(ValueError, match="smaller than one 16 x 16 patch"):
        model.apply(variables, _fbank(1, 10))


def test_jit_grad_finite_and_dropout(tiny):
    model, variables = tiny
    model = model.clone(dropout=0.1, attention_dropout=0.1)  # the same parameters
    x = _fbank(2, 100)
    labels = jnp.array([1, 3])

    @jax.jit
    def loss_and_grad(params, rng):
        def loss(p):
            logits = model.apply({"params": p}, x, train=True, rngs={"dropout": rng})
            return -jnp.take_along_axis(jax.nn.log_softmax(logits), labels[:, None], 1).mean()
        return jax.value_and_grad(loss)(params)

    value, grads = loss_and_grad(variables["params"], jax.random.key(1))
    assert np.isfinite(value)
    assert all(np.isfinite(g).all() for g in jax.tree.leaves(grads))
    assert np.abs(grads["pos_embed"]).max() > 0 and np.abs(grads["cls_token"]).max() > 0
    # Dropout is on in training (another rng, another loss) and off in evaluation.
    assert loss_and_grad(variables["params"], jax.random.key(2))[0] != value
    evaluate = jax.jit(lambda v, rng: model.apply(v, x, rngs={"dropout": rng}))
    np.testing.assert_array_equal(evaluate(variables, jax.random.key(1)),
                                  evaluate(variables, jax.random.key(2)))


# ---- the shared encoder ----------------------------------------------------------------------

def test_encoder_padding_mask_hides_padded_frames():
    encoder = Encoder(num_layers=2, num_heads=2, mlp_dim=16, layer_norm_first=False)
    x = jax.random.normal(jax.random.key(0), (2, 6, 8))
    mask = jnp.array([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]])
    variables = jax.jit(encoder.init)(jax.random.key(1), x, mask)
    noisy = x.at[0, 4:].set(100.0)  # changes only padded frames of the first example
    run = jax.jit(encoder.apply)
    out, out_noisy = run(variables, x, mask), run(variables, noisy, mask)
    np.testing.assert_allclose(out[0, :4], out_noisy[0, :4], atol=1e-5)
    np.testing.assert_array_equal(out[1], out_noisy[1])
    # post-LN ends on a LayerNorm (unit scale at init): every frame is normalised.
    np.testing.assert_allclose(out.mean(-1), 0.0, atol=1e-5)
    np.testing.assert_allclose(out.std(-1), 1.0, atol=1e-3)


def test_encoder_layer_drop_only_in_training():
    encoder = Encoder(num_layers=4, num_heads=2, mlp_dim=16, layer_drop=0.5)
    x = jax.random.normal(jax.random.key(0), (1, 5, 8))
    variables = jax.jit(encoder.init)(jax.random.key(1), x)
    run = jax.jit(lambda rng, train: encoder.apply(variables, x, train=train,
                                                   rngs={"dropout": rng}), static_argnums=1)
    trained = {np.asarray(run(jax.random.key(s), True)).tobytes() for s in range(6)}
    assert len(trained) > 1  # different layers skipped for different draws
    np.testing.assert_array_equal(run(jax.random.key(0), False), run(jax.random.key(1), False))


@pytest.mark.parametrize("layer_norm_first", [False, True])
def test_encoder_block_matches_torch(layer_norm_first):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    dim, heads = 16, 4
    ref = torch.nn.TransformerEncoderLayer(dim, heads, dim_feedforward=32, dropout=0.0,
                                           activation="gelu", layer_norm_eps=1e-5,
                                           batch_first=True, norm_first=layer_norm_first).eval()
    with torch.no_grad():  # non-trivial LayerNorm parameters
        for norm in (ref.norm1, ref.norm2):
            norm.weight.normal_(1.0, 0.3), norm.bias.normal_(0.0, 0.3)
    w = {k: v.detach().numpy() for k, v in ref.state_dict().items()}
    dense = lambda weight, bias: {"kernel": weight.T, "bias": bias}
    qw, kw, vw = np.split(w["self_attn.in_proj_weight"], 3)
    qb, kb, vb = np.split(w["self_attn.in_proj_bias"], 3)
    params = {
        "attention": {"query": dense(qw, qb), "key": dense(kw, kb), "value": dense(vw, vb),
                      "out": dense(w["self_attn.out_proj.weight"], w["self_attn.out_proj.bias"])},
        "attention_norm": {"scale": w["norm1.weight"], "bias": w["norm1.bias"]},
        "mlp": {"fc1": dense(w["linear1.weight"], w["linear1.bias"]),
                "fc2": dense(w["linear2.weight"], w["linear2.bias"])},
        "mlp_norm": {"scale": w["norm2.weight"], "bias": w["norm2.bias"]},
    }
    block = EncoderBlock(num_heads=heads, mlp_dim=32, layer_norm_eps=1e-5,
                         layer_norm_first=layer_norm_first)
    x = np.random.default_rng(0).normal(size=(2, 7, dim)).astype(np.float32)
    mask = np.ones((2, 7), bool)
    mask[0, 5:] = False
    ours = jax.jit(block.apply)({"params": params}, x, mask)
    with torch.no_grad():
        theirs = ref(torch.from_numpy(x), src_key_padding_mask=torch.from_numpy(~mask)).numpy()
    # torch's fast path may zero padded frames; compare the real ones.
    np.testing.assert_allclose(np.asarray(ours)[mask], theirs[mask], atol=1e-5)


# ---- Hugging Face import without torch: our own tree written under the checkpoint names ------

def _to_hf(params):
    """Our params under the on-disk Hugging Face names (the inverse of from_hf's mapping)."""
    p = ast_lib.HF_PREFIX
    out = {
        f"{p}embeddings.patch_embeddings.projection.weight":
            params["patch_embed"]["kernel"].transpose(3, 2, 0, 1),
        f"{p}embeddings.patch_embeddings.projection.bias": params["patch_embed"]["bias"],
        f"{p}embeddings.cls_token": params["cls_token"],
        f"{p}embeddings.distillation_token": params["dist_token"],
        f"{p}embeddings.position_embeddings": params["pos_embed"],
        f"{p}layernorm.weight": params["encoder"]["norm"]["scale"],
        f"{p}layernorm.bias": params["encoder"]["norm"]["bias"],
        "classifier.layernorm.weight": params["head_norm"]["scale"],
        "classifier.layernorm.bias": params["head_norm"]["bias"],
        "classifier.dense.weight": params["head"]["kernel"].T,
        "classifier.dense.bias": params["head"]["bias"],
    }
    layout = "encoder.layer.{}."
    for i in range(TINY["num_layers"]):
        for path, name in ast_lib.HF_LAYER_NAMES[layout].items():
            node = params["encoder"][f"layers_{i}"]
            for key in path:
                node = node[key]
            base = f"{p}{layout.format(i)}{name}"
            out[f"{base}.weight"] = node["scale"] if "scale" in node else node["kernel"].T
            out[f"{base}.bias"] = node["bias"]
    return {k: np.ascontiguousarray(v, np.float32) for k, v in out.items()}


def _write_checkpoint(directory, weights):
    config = dict(model_type="audio-spectrogram-transformer", hidden_size=32, num_hidden_layers=2,
                  num_attention_heads=4, intermediate_size=64, layer_norm_eps=1e-12,
                  patch_size=16, frequency_stride=10, time_stride=10, max_length=100,
                  num_mel_bins=32, hidden_act="gelu", qkv_bias=True,
                  id2label={str(i): f"class {i}" for i in range(7)})
    directory.mkdir(exist_ok=True)
    (directory / "config.json").write_text(json.dumps(config))
    save_file(weights, str(directory / "model.safetensors"))
    return directory


def test_from_hf_round_trip(tiny, tmp_path):
    model, variables = tiny
    path = _write_checkpoint(tmp_path / "ckpt", _to_hf(variables["params"]))
    module, loaded = from_hf(path)
    assert module == model
    x = _fbank(2, 100)
    np.testing.assert_array_equal(_apply(module, loaded, x), _apply(model, variables, x))


def test_from_hf_errors(tiny, tmp_path):
    _, variables = tiny
    weights = _to_hf(variables["params"])
    with pytest.raises(CheckpointFormatError, match="config.json is missing"):
        from_hf(tmp_path)
    missing = dict(weights)
    del missing["audio_spectrogram_transformer.encoder.layer.1.output.dense.bias"]
    with pytest.raises(CheckpointFormatError, match="encoder.layer.1.output.dense.bias"):
        from_hf(_write_checkpoint(tmp_path / "missing", missing))
    extra = dict(weights, **{"classifier.extra.weight": np.zeros(3, np.float32)})
    with pytest.raises(CheckpointFormatError, match="classifier.extra.weight"):
        from_hf(_write_checkpoint(tmp_path / "extra", extra))
    buffers = dict(weights, **{f"{ast_lib.HF_PREFIX}position_ids": np.zeros(3, np.float32)})
    from_hf(_write_checkpoint(tmp_path / "buffers", buffers))  # known buffers are ignored
    pos = f"{ast_lib.HF_PREFIX}embeddings.position_embeddings"
    short = dict(weights, **{pos: weights[pos][:, :-1]})
    with pytest.raises(CheckpointFormatError, match="pos_embed"):
        from_hf(_write_checkpoint(tmp_path / "short", short))


# ---- parity with transformers (skipped without the parity extra) -----------------------------

@pytest.fixture(scope="module")
def hf_model():
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.ASTConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                    intermediate_size=128, max_length=100, num_mel_bins=32,
                                    num_labels=7)
    model = transformers.ASTForAudioClassification(config).eval()
    # HF initialises the tokens and position embeddings to zero; randomise them so that the
    # parity test can see a wrongly ordered or wrongly broadcast position table.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "embeddings." in name and "patch_embeddings" not in name:
                p.normal_(0.0, 0.5)
    return model


def _hf_logits(model, x):
    import torch

    with torch.no_grad():
        out = model(torch.from_numpy(np.array(x)))
    return out.logits.numpy()


def test_parity_safetensors(hf_model, tmp_path):
    hf_model.save_pretrained(tmp_path)
    module, variables = from_hf(tmp_path)
    assert module.num_classes == 7 and module.hidden == 64
    x = _fbank(2, 100, seed=3)
    error = np.abs(_apply(module, variables, x) - _hf_logits(hf_model, x)).max()
    print(f"max abs error {error:.2e}")
    assert error <= 1e-4, error


@pytest.mark.parametrize("names", ["on_disk", "module"])
def test_parity_pytorch_bin(hf_model, tmp_path, names):
    import torch
    from safetensors.torch import load_file as load_torch

    if names == "on_disk":  # the layout of Hub checkpoints: encoder.layer.N.attention.attention...
        hf_model.save_pretrained(tmp_path / "saved")
        state = load_torch(str(tmp_path / "saved" / "model.safetensors"))
        (tmp_path / "config.json").write_text((tmp_path / "saved" / "config.json").read_text())
    else:  # transformers 5's module names: layers.N.attention.q_proj...
        hf_model.config.to_json_file(tmp_path / "config.json")
        state = hf_model.state_dict()
    torch.save(state, tmp_path / "pytorch_model.bin")
    module, variables = from_hf(tmp_path)
    x = _fbank(2, 100, seed=4)
    error = np.abs(_apply(module, variables, x) - _hf_logits(hf_model, x)).max()
    print(f"max abs error {error:.2e}")
    assert error <= 1e-4, error


def test_parity_bare_ast_model(hf_model, tmp_path):
    import torch

    hf_model.audio_spectrogram_transformer.save_pretrained(tmp_path)
    module, variables = from_hf(tmp_path)
    assert module.num_classes == 0
    x = _fbank(2, 100, seed=5)
    with torch.no_grad():
        pooled = hf_model.audio_spectrogram_transformer(torch.from_numpy(np.array(x)))
    error = np.abs(_apply(module, variables, x) - pooled.pooler_output.numpy()).max()
    print(f"max abs error {error:.2e}")
    assert error <= 1e-4, error
