"""AST started from an ImageNet DeiT / ViT (Gong et al. 2021, section 2.2): the adaptation
against the reference algorithm (YuanGongND/ast, src/models/ast_models.py) rebuilt in torch,
the Hugging Face and timm layouts, the errors, and the classification task's
task.init_from_imagenet. Image models are tiny and random, built offline."""

import functools
import json
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util
from safetensors.numpy import save_file

from audiozoo.config import ConfigError, apply_overrides, load_config
from audiozoo.models.ast import AST
from audiozoo.models.hf_checkpoint import CheckpointFormatError, conv_kernel
from audiozoo.models.imagenet_vit import (adapt_position_grid, from_imagenet,
                                          read_image_checkpoint)
from audiozoo.tasks import build_task

CONFIGS = "configs"
# The image model: 32-d, 2 layers, 4 heads, MLP 64; 16 x 16 patches of 96 x 96 images: 6 x 6.
DIM, LAYERS, HEADS, MLP, IMAGE = 32, 2, 4, 64, 96
GRID = IMAGE // 16
# AST on 100 frames x 32 mel bins: a 2 x 9 patch grid, so frequency is cut (2 <= 6) and time
# stretched (9 > 6).
AUDIO = dict(num_frames=100, num_mel_bins=32, hidden=DIM, num_layers=LAYERS, num_heads=HEADS,
             mlp_dim=MLP)
# Hugging Face's on-disk names of one encoder layer's Linears: (out, in) as multiples of
# (hidden, mlp).
HF_LINEARS = {"attention.attention.query": "dd", "attention.attention.key": "dd",
              "attention.attention.value": "dd", "attention.output.dense": "dd",
              "intermediate.dense": "md", "output.dense": "dm"}


# ---- tiny random image models, written in both layouts -----------------------------------------

def random_hf_weights(distilled=True, dim=DIM, mlp=MLP, seed=0):
    """A random DeiT (distilled) or ViT under Hugging Face's on-disk names, with its heads."""
    rng = np.random.default_rng(seed)
    prefix = "deit." if distilled else "vit."
    size = {"d": dim, "m": mlp}
    weights = {}

    def put(name, *shape, mean=0.0):
        weights[name] = rng.normal(mean, 0.2, shape).astype(np.float32)

    emb = f"{prefix}embeddings."
    put(f"{emb}patch_embeddings.projection.weight", dim, 3, 16, 16)
    put(f"{emb}patch_embeddings.projection.bias", dim)
    put(f"{emb}cls_token", 1, 1, dim)
    if distilled:
        put(f"{emb}distillation_token", 1, 1, dim)
    put(f"{emb}position_embeddings", 1, (2 if distilled else 1) + GRID * GRID, dim)
    for i in range(LAYERS):
        layer = f"{prefix}encoder.layer.{i}."
        for name, (out, inp) in HF_LINEARS.items():
            put(f"{layer}{name}.weight", size[out], size[inp])
            put(f"{layer}{name}.bias", size[out])
        for norm in ("layernorm_before", "layernorm_after"):
            put(f"{layer}{norm}.weight", dim, mean=1.0)
            put(f"{layer}{norm}.bias", dim)
    put(f"{prefix}layernorm.weight", dim, mean=1.0)
    put(f"{prefix}layernorm.bias", dim)
    heads = ("cls_classifier", "distillation_classifier") if distilled else ("classifier",)
    for head in heads:
        put(f"{head}.weight", 5, dim)
        put(f"{head}.bias", 5)
    return weights


def write_hf(directory, weights, distilled=True, dim=DIM, heads=HEADS, mlp=MLP):
    config = dict(model_type="deit" if distilled else "vit", hidden_size=dim,
                  num_hidden_layers=LAYERS, num_attention_heads=heads, intermediate_size=mlp,
                  image_size=IMAGE, patch_size=16, num_channels=3, hidden_act="gelu",
                  qkv_bias=True, layer_norm_eps=1e-12)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(config))
    save_file(weights, str(directory / "model.safetensors"))
    return directory


def to_timm(hf):
    """The same model as a timm state dict: query, key and value fused into attn.qkv."""
    prefix = "deit." if "deit.embeddings.cls_token" in hf else "vit."
    emb = f"{prefix}embeddings."
    out = {"patch_embed.proj.weight": hf[f"{emb}patch_embeddings.projection.weight"],
           "patch_embed.proj.bias": hf[f"{emb}patch_embeddings.projection.bias"],
           "cls_token": hf[f"{emb}cls_token"], "pos_embed": hf[f"{emb}position_embeddings"],
           "norm.weight": hf[f"{prefix}layernorm.weight"],
           "norm.bias": hf[f"{prefix}layernorm.bias"],
           "head.weight": np.zeros((5, DIM), np.float32), "head.bias": np.zeros(5, np.float32)}
    if f"{emb}distillation_token" in hf:
        out["dist_token"] = hf[f"{emb}distillation_token"]
    renames = {"norm1": "layernorm_before", "norm2": "layernorm_after", "attn.proj":
               "attention.output.dense", "mlp.fc1": "intermediate.dense", "mlp.fc2": "output.dense"}
    for i in range(LAYERS):
        layer = f"{prefix}encoder.layer.{i}."
        for timm_name, hf_name in renames.items():
            for p in ("weight", "bias"):
                out[f"blocks.{i}.{timm_name}.{p}"] = hf[f"{layer}{hf_name}.{p}"]
        for p in ("weight", "bias"):
            qkv = [hf[f"{layer}attention.attention.{n}.{p}"] for n in ("query", "key", "value")]
            out[f"blocks.{i}.attn.qkv.{p}"] = np.concatenate(qkv)
    return out


@pytest.fixture(scope="module")
def deit(tmp_path_factory):
    """(HF weights, HF directory) of the tiny random distilled DeiT."""
    weights = random_hf_weights()
    return weights, write_hf(tmp_path_factory.mktemp("deit"), weights)


def _flat(variables):
    return {k: np.asarray(v) for k, v in traverse_util.flatten_dict(variables["params"]).items()}


def _timm_file(tmp_path, weights, suffix):
    path = tmp_path / f"deit{suffix}"
    if suffix == ".npz":
        np.savez(path, **weights)
    else:
        save_file(weights, str(path))
    return path


# ---- the adaptation, without torch --------------------------------------------------------------

def test_hf_import_sums_the_kernel_cuts_frequency_and_maps_layers(deit):
    hf, path = deit
    model = AST(num_classes=0, **AUDIO)
    params = _flat(from_imagenet(path, model))
    kernel = hf["deit.embeddings.patch_embeddings.projection.weight"]
    np.testing.assert_allclose(params["patch_embed", "kernel"],
                               conv_kernel(kernel.sum(1, keepdims=True)), rtol=1e-6)
    assert params["patch_embed", "kernel"].shape == (16, 16, 1, DIM)
    np.testing.assert_array_equal(params["patch_embed", "bias"],
                                  hf["deit.embeddings.patch_embeddings.projection.bias"])
    pos = hf["deit.embeddings.position_embeddings"]
    ours = params["pos_embed",]
    assert ours.shape == (1, 2 + 2 * 9, DIM)
    np.testing.assert_array_equal(ours[:, :2], pos[:, :2])  # cls and dist as they are
    # Frequency: 2 of 6 rows, from 6 // 2 - 2 // 2 = 2; a time column (here the stretched one
    # at t = 0, which reads image column 0) keeps the cut rows.
    grid = pos[0, 2:].reshape(GRID, GRID, DIM)
    np.testing.assert_allclose(ours[0, 2:].reshape(2, 9, DIM)[:, 0], grid[2:4, 0], atol=1e-6)
    np.testing.assert_array_equal(params["cls_token",], hf["deit.embeddings.cls_token"])
    np.testing.assert_array_equal(params["dist_token",], hf["deit.embeddings.distillation_token"])
    layer = "deit.encoder.layer.1."
    np.testing.assert_array_equal(params["encoder", "layers_1", "attention", "key", "kernel"],
                                  hf[f"{layer}attention.attention.key.weight"].T)
    np.testing.assert_array_equal(params["encoder", "layers_1", "mlp", "fc2", "bias"],
                                  hf[f"{layer}output.dense.bias"])
    np.testing.assert_array_equal(params["encoder", "layers_1", "mlp_norm", "scale"],
                                  hf[f"{layer}layernorm_after.weight"])
    np.testing.assert_array_equal(params["encoder", "norm", "scale"], hf["deit.layernorm.weight"])
    assert not any(k[0].startswith("head") for k in params)  # the image heads are not taken


@pytest.mark.parametrize("f_dim, t_dim, rows, cols", [(2, 3, (2, 4), (2, 5)),
                                                      (6, 6, (0, 6), (0, 6)),
                                                      (1, 4, (3, 4), (1, 5))])
def test_position_grid_cuts_the_middle(f_dim, t_dim, rows, cols):
    grid = np.random.default_rng(0).normal(size=(GRID, GRID, 3)).astype(np.float32)
    np.testing.assert_array_equal(adapt_position_grid(grid, f_dim, t_dim),
                                  grid[rows[0]:rows[1], cols[0]:cols[1]])


@pytest.mark.parametrize("suffix", [".safetensors", ".npz"])
def test_timm_layout_gives_the_hf_parameters(deit, tmp_path, suffix):
    hf, path = deit
    model = AST(num_classes=0, **AUDIO)
    with pytest.warns(UserWarning, match="do not record the head count"):  # 8-d heads here
        timm = _flat(from_imagenet(_timm_file(tmp_path, to_timm(hf), suffix), model))
    reference = _flat(from_imagenet(path, model))
    assert timm.keys() == reference.keys()
    for key in reference:
        np.testing.assert_array_equal(timm[key], reference[key], err_msg=str(key))


def test_timm_directory_and_torch_file(deit, tmp_path):
    torch = pytest.importorskip("torch")
    hf, path = deit
    model = AST(num_classes=0, **AUDIO)
    reference = _flat(from_imagenet(path, model))
    timm = to_timm(hf)
    # DeiT's released .pth files wrap the state dict: {"model": ...}.
    torch.save({"model": {k: torch.from_numpy(v) for k, v in timm.items()}}, tmp_path / "d.pth")
    # A Hub directory of a timm model: timm's config.json, timm's names.
    hub = tmp_path / "hub"
    hub.mkdir()
    (hub / "config.json").write_text(json.dumps({"architecture": "deit_tiny_distilled"}))
    save_file(timm, str(hub / "model.safetensors"))
    for source in (tmp_path / "d.pth", hub):
        with pytest.warns(UserWarning, match="head count"):
            loaded = _flat(from_imagenet(source, model))
        for key in reference:
            np.testing.assert_array_equal(loaded[key], reference[key], err_msg=str(key))


def test_torch_file_without_torch_is_a_clear_error(tmp_path, monkeypatch):
    (tmp_path / "deit.pth").write_bytes(b"not read")
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now fails
    with pytest.raises(CheckpointFormatError, match="torch is not installed.*safetensors"):
        read_image_checkpoint(tmp_path / "deit.pth")


def test_plain_vit_needs_ast_without_distillation_token(tmp_path):
    hf = random_hf_weights(distilled=False)
    path = write_hf(tmp_path / "vit", hf, distilled=False)
    with pytest.raises(CheckpointFormatError, match="CLS token only.*"
                       "--config.model.distillation_token=False"):
        from_imagenet(path, AST(num_classes=0, **AUDIO))
    model = AST(num_classes=3, distillation_token=False, **AUDIO)
    params = _flat(from_imagenet(path, model))
    assert ("dist_token",) not in params and params["pos_embed",].shape == (1, 1 + 18, DIM)
    np.testing.assert_array_equal(params["pos_embed",][:, :1],
                                  hf["vit.embeddings.position_embeddings"][:, :1])
    # The loaded parameters fit the model without a distillation token (shapes only here; the
    # parity tests below run it).
    x = jax.ShapeDtypeStruct((2, 100, 32), jnp.float32)
    init = jax.eval_shape(model.init, jax.random.key(0), x)["params"]
    assert "dist_token" not in init
    head = {"head": init["head"], "head_norm": init["head_norm"]}
    variables = {"params": {**traverse_util.unflatten_dict(params), **head}}
    assert jax.eval_shape(model.apply, variables, x).shape == (2, 3)
    assert jax.eval_shape(functools.partial(model.apply, method="features"), variables,
                          x).shape == (2, DIM)


def test_errors_name_the_file_and_the_fix(deit, tmp_path):
    hf, path = deit
    with pytest.raises(CheckpointFormatError, match=rf"{path}.*hidden=32.*AST model has hidden=48,"
                       r" mlp_dim=96; set --config.model.hidden=32 --config.model.mlp_dim=64"):
        from_imagenet(path, AST(num_classes=0, **dict(AUDIO, hidden=48, mlp_dim=96)))
    with pytest.raises(CheckpointFormatError, match="--config.model.num_heads=4"):
        from_imagenet(path, AST(num_classes=0, **dict(AUDIO, num_heads=2)))
    with pytest.raises(CheckpointFormatError, match="--config.model.num_layers=2"):
        from_imagenet(path, AST(num_classes=0, **dict(AUDIO, num_layers=3)))
    with pytest.raises(CheckpointFormatError, match="does not exist"):
        from_imagenet(tmp_path / "nope", AST(num_classes=0, **AUDIO))
    extra = dict(to_timm(hf), **{"blocks.0.ls1.gamma": np.ones(DIM, np.float32)})
    with pytest.raises(CheckpointFormatError, match=r"map to no AST parameter.*ls1\.gamma"), \
            pytest.warns(UserWarning, match="head count"):
        from_imagenet(_timm_file(tmp_path, extra, ".safetensors"), AST(num_classes=0, **AUDIO))
    ast_weights = {"audio_spectrogram_transformer.embeddings.patch_embeddings.projection.weight":
                   np.zeros((DIM, 1, 16, 16), np.float32)}
    with pytest.raises(CheckpointFormatError, match="AST checkpoint.*init_from_hf"):
        read_image_checkpoint(_timm_file(tmp_path, ast_weights, ".safetensors"))
    with pytest.raises(CheckpointFormatError, match="neither a timm"):
        read_image_checkpoint(_timm_file(tmp_path, {"x": np.zeros(2, np.float32)}, ".npz"))


# ---- against the reference algorithm and transformers' DeiT / ViT (parity extra) ---------------

def reference_position_embeddings(pos, num_tokens, f_dim, t_dim):
    """ast_models.py's adaptation of the image position embeddings (torch)."""
    import torch
    import torch.nn.functional as F

    hw, dim = GRID, pos.shape[-1]
    new = pos[:, num_tokens:, :].reshape(1, hw * hw, dim).transpose(1, 2).reshape(1, dim, hw, hw)
    if t_dim <= hw:
        new = new[:, :, :, int(hw / 2) - int(t_dim / 2): int(hw / 2) - int(t_dim / 2) + t_dim]
    else:
        new = F.interpolate(new, size=(hw, t_dim), mode="bilinear", align_corners=False)
    if f_dim <= hw:
        new = new[:, :, int(hw / 2) - int(f_dim / 2): int(hw / 2) - int(f_dim / 2) + f_dim, :]
    else:
        new = F.interpolate(new, size=(f_dim, t_dim), mode="bilinear", align_corners=False)
    new = new.reshape(1, dim, f_dim * t_dim).transpose(1, 2)
    return torch.cat([pos[:, :num_tokens], new], dim=1)


@pytest.mark.parametrize("f_dim, t_dim", [(2, 9), (9, 3), (12, 11), (4, 4)])
def test_position_embeddings_match_the_reference(f_dim, t_dim):
    torch = pytest.importorskip("torch")
    from audiozoo.models.imagenet_vit import adapt_position_embeddings

    pos = np.random.default_rng(1).normal(size=(1, 2 + GRID * GRID, 8)).astype(np.float32)
    ours = adapt_position_embeddings(pos, 2, (GRID, GRID), (f_dim, t_dim))
    theirs = reference_position_embeddings(torch.from_numpy(pos), 2, f_dim, t_dim).numpy()
    np.testing.assert_allclose(ours, theirs, atol=1e-6)


def reference_tokens(weights, fbank, f_dim, t_dim, distilled):
    """AST's input tokens (patches with the summed kernel, special tokens, adapted positions)
    as ast_models.py builds them from the image model's tensors."""
    import torch
    import torch.nn.functional as F

    w = {k: torch.from_numpy(v) for k, v in weights.items()}
    emb = "deit.embeddings." if distilled else "vit.embeddings."
    names = ["cls_token", "distillation_token"] if distilled else ["cls_token"]
    tokens = [w[emb + n] for n in names]
    pos = reference_position_embeddings(w[emb + "position_embeddings"], len(tokens), f_dim, t_dim)
    kernel = w[emb + "patch_embeddings.projection.weight"]
    x = torch.from_numpy(fbank).unsqueeze(1).transpose(2, 3)  # [batch, 1, mel, frames]
    x = F.conv2d(x, torch.sum(kernel, dim=1).unsqueeze(1),
                 w[emb + "patch_embeddings.projection.bias"], stride=(10, 10))
    x = x.flatten(2).transpose(1, 2)
    return (torch.cat([t.expand(x.shape[0], -1, -1) for t in tokens] + [x], dim=1) + pos).numpy()


# DeiT: 100 frames x 32 bins, frequency cut (2 of 6), time stretched (9); ViT: 36 frames x 96
# bins, time cut (3 of 6), frequency stretched (9).
CASES = {"deit": (True, AUDIO), "vit": (False, dict(AUDIO, num_frames=36, num_mel_bins=96))}


@pytest.mark.parametrize("case", CASES)
def test_tokens_match_the_reference(case, tmp_path):
    pytest.importorskip("torch")
    distilled, audio = CASES[case]
    weights = random_hf_weights(distilled=distilled)
    model = AST(num_classes=0, distillation_token=distilled, **audio)
    variables = from_imagenet(write_hf(tmp_path, weights, distilled=distilled), model)
    fbank = np.random.default_rng(2).normal(size=(2, audio["num_frames"],
                                                  audio["num_mel_bins"])).astype(np.float32)
    ours = model.apply(variables, fbank, method="embed")
    theirs = reference_tokens(weights, fbank, *model.grid(), distilled)
    np.testing.assert_allclose(np.asarray(ours), theirs, atol=1e-5)


def _random_hf_model(transformers, torch, distilled):
    config_class = transformers.DeiTConfig if distilled else transformers.ViTConfig
    config = config_class(hidden_size=DIM, num_hidden_layers=LAYERS, num_attention_heads=HEADS,
                          intermediate_size=MLP, image_size=IMAGE, patch_size=16, num_labels=5)
    model_class = (transformers.DeiTForImageClassificationWithTeacher if distilled
                   else transformers.ViTModel)
    torch.manual_seed(0)
    model = model_class(config).eval()
    with torch.no_grad():  # DeiT starts its tokens and LayerNorms at constants: randomise all
        for name, p in model.named_parameters():
            p.normal_(1.0 if "layernorm" in name and name.endswith("weight") else 0.0, 0.2)
    return model


def reference_features(model, fbank, f_dim, t_dim, distilled):
    """AST's pooled output as ast_models.py computes it from the image model's modules."""
    import torch
    import torch.nn.functional as F

    base = model.deit if distilled else model
    emb = base.embeddings
    tokens = [emb.cls_token, emb.distillation_token] if distilled else [emb.cls_token]
    pos = reference_position_embeddings(emb.position_embeddings, len(tokens), f_dim, t_dim)
    proj = emb.patch_embeddings.projection
    with torch.no_grad():
        x = torch.from_numpy(fbank).unsqueeze(1).transpose(2, 3)  # [batch, 1, mel, frames]
        x = F.conv2d(x, torch.sum(proj.weight, dim=1).unsqueeze(1), proj.bias, stride=(10, 10))
        x = x.flatten(2).transpose(1, 2)
        h = torch.cat([t.expand(x.shape[0], -1, -1) for t in tokens] + [x], dim=1) + pos
        for layer in getattr(base, "layers", None) or base.encoder.layer:  # transformers 5 / 4
            h = layer(h)
            h = h[0] if isinstance(h, tuple) else h
        h = base.layernorm(h)
        return ((h[:, 0] + h[:, 1]) / 2 if distilled else h[:, 0]).numpy()


@pytest.mark.slow  # transformers' import and a compile: ~5 s on two cores
@pytest.mark.parametrize("case", CASES)
def test_features_match_the_reference_on_transformers_models(case, tmp_path):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    distilled, audio = CASES[case]
    hf_model = _random_hf_model(transformers, torch, distilled)
    hf_model.save_pretrained(tmp_path)
    model = AST(num_classes=0, distillation_token=distilled, **audio)
    variables = from_imagenet(tmp_path, model)
    fbank = np.random.default_rng(2).normal(size=(2, audio["num_frames"],
                                                  audio["num_mel_bins"])).astype(np.float32)
    ours = jax.jit(functools.partial(model.apply, method="features"))(variables, fbank)
    theirs = reference_features(hf_model, fbank, *model.grid(), distilled)
    np.testing.assert_allclose(np.asarray(ours), theirs, atol=1e-5)


# ---- the classification task and the paper configs ----------------------------------------------

def test_task_grafts_the_image_model_and_keeps_a_fresh_head(tmp_path):
    # classify_tiny's AST: 96-d, 2 layers, 4 heads, MLP 192; 48 frames x 128 bins -> 12 x 4.
    weights = random_hf_weights(dim=96, mlp=192)
    path = write_hf(tmp_path / "deit", weights, dim=96, mlp=192)
    config = load_config(f"{CONFIGS}/classify_tiny.py:ast")
    config.task.init_from_imagenet = str(path)
    task = build_task(config)
    # A "fresh" state of 7s stands in for the random one (initialising costs seconds on a CPU).
    shapes = jax.eval_shape(task.init_state, jax.random.key(0), task.dummy_batch(1))
    fresh = shapes.replace(params=jax.tree.map(lambda s: jnp.full(s.shape, 7.0, s.dtype),
                                               shapes.params))
    state = task.load_pretrained(fresh)
    assert jax.tree.structure(state.opt_state) == jax.tree.structure(task.tx.init(state.params))
    ours, before = _flat({"params": state.params}), _flat({"params": fresh.params})
    loaded = _flat(from_imagenet(path, task.model))
    assert set(ours) - set(loaded) == {("head", "kernel"), ("head", "bias"),
                                       ("head_norm", "scale"), ("head_norm", "bias")}
    for key in loaded:
        np.testing.assert_array_equal(ours[key], loaded[key], err_msg=str(key))
    for key in set(ours) - set(loaded):
        np.testing.assert_array_equal(ours[key], before[key])
    with pytest.raises(ConfigError, match="both set"):
        config.task.init_from_hf = str(path)
        build_task(config).load_pretrained(fresh)


@pytest.mark.parametrize("name", ["ast_speechcommands", "ast_esc50"])
def test_paper_configs_take_the_field_with_clear_errors(name, deit, tmp_path):
    config = load_config(f"{CONFIGS}/{name}.py")
    assert config.task.init_from_imagenet == ""  # runs on a machine with no checkpoint
    _, path = deit
    apply_overrides(config, [("task.init_from_imagenet", str(path))])
    task = build_task(config)
    shapes = jax.eval_shape(task.init_state, jax.random.key(0), task.dummy_batch(1))
    with pytest.raises(ConfigError, match=rf"task.init_from_imagenet: {path} is a Hugging Face "
                       r"DeiT.*--config.model.hidden=32 .*--config.model.num_heads=4"):
        task.load_pretrained(shapes)
    apply_overrides(config, [("task.init_from_imagenet", str(tmp_path / "missing"))])
    with pytest.raises(ConfigError, match="missing does not exist"):
        build_task(config).load_pretrained(shapes)
