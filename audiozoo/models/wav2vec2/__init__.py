"""wav2vec 2.0: self-supervised speech representations from raw waveform.

Baevski, Zhou, Mohamed & Auli 2020, "wav2vec 2.0: A Framework for Self-Supervised Learning of
Speech Representations", arXiv 2006.11477. Implements section 2 (model: the convolutional
feature encoder, the Transformer context network with its convolutional relative positional
embedding, the Gumbel-softmax product quantiser), section 3.1 (masking: span starts drawn
with probability p, spans of M frames that may overlap), section 3.2 (objective: the
contrastive loss over K distractors drawn from other masked frames of the same utterance,
cosine similarity over a temperature kappa, plus the codebook diversity loss weighted by alpha)
and the regularisers of section 4.2 (feature-encoder gradient scaling; the feature penalty is
the task's).

The layout follows the Hugging Face `transformers` port (itself a port of fairseq), so its
checkpoints load with `from_hf` and produce the same hidden states:

- `Wav2Vec2` = HF `Wav2Vec2Model`: waveform [batch, samples] at 16 kHz -> last hidden state
  [batch, frames, hidden]; one frame per 320 samples (20 ms), 16000 samples -> 49 frames.
  "group" feature-encoder norm with post-LN Transformer is the BASE model; "layer" norm with
  pre-LN (`do_stable_layer_norm`) is the LARGE LV-60k model. Checkpoints trained with
  `do_normalize` (LV-60k ones) expect each waveform scaled to zero mean, unit variance first.
- `Wav2Vec2ForPreTraining`: the model plus quantiser, `project_hid` and `project_q`; its
  outputs go to `pretraining_loss` with a mask from `compute_mask` and distractors from
  `sample_negative_indices` (the task `audiozoo.tasks.wav2vec2_pretrain` wires them up).
- `Wav2Vec2Classifier` = HF `Wav2Vec2ForSequenceClassification`: projector -> mean over
  frames -> classifier.

The Transformer is the shared `audiozoo.nn.transformer.Encoder` (post-LN for BASE, pre-LN for
LARGE, LayerDrop); the positional convolution is added to its input. That convolution keeps
its weight normalisation (Salimans & Kingma 2016) as two parameters, `weight_g` [kernel] and
`weight_v` [kernel, hidden / groups, hidden], with weight = g * v / ||v|| where the norm runs
over everything but the kernel axis (PyTorch `weight_norm(..., dim=2)`), so parameter counts
and training dynamics match the reference. `from_hf` reads g and v under both PyTorch namings
(`parametrizations.weight.original0/1` and the older `weight_g/weight_v`) and also accepts a
plain folded `weight` (then v = weight, g = |v|).

Masking counts spans as HF and fairseq do, mask_prob * frames / M: their `mask_prob` is the
paper's span-start probability p times M, so the paper's p = 0.065, M = 10 is mask_prob 0.65.
Masking and distractor sampling use static shapes and jit; the reference draws them in NumPy.

Modules: `backbone` (feature encoder, positional convolution, `Wav2Vec2`), `masking` (span
masks, distractor indices), `quantizer`, `pretraining` (`Wav2Vec2ForPreTraining`), `objective`
(contrastive and diversity losses), `classifier` and `hf` (`from_hf`). Every public name is
importable from this package.
"""


from audiozoo.models.wav2vec2.backbone import (
    BACKBONE_FIELDS,
    CONV_NORM_EPS,
    FEATURE_NORMS,
    LARGE_LV60,
    ConvLayer,
    FeatureEncoder,
    FeatureProjection,
    PositionalConvEmbedding,
    Wav2Vec2,
    Wav2Vec2Base,
    Wav2Vec2Fields,
    Wav2Vec2Large,
    Wav2Vec2Outputs,
    feature_frames,
    gelu,
    weight_norm,
)
from audiozoo.models.wav2vec2.classifier import (Wav2Vec2BaseClassifier, Wav2Vec2Classifier,
                                                 Wav2Vec2LargeClassifier)
from audiozoo.models.wav2vec2.hf import config_from_hf, from_hf, hf_names
from audiozoo.models.wav2vec2.masking import (compute_mask, num_masked_spans,
                                              sample_negative_indices)
from audiozoo.models.wav2vec2.objective import (codebook_perplexity, cosine_similarity,
                                                pretraining_loss)
from audiozoo.models.wav2vec2.pretraining import PretrainingOutputs, Wav2Vec2ForPreTraining
from audiozoo.models.wav2vec2.quantizer import GumbelVectorQuantizer

__all__ = [
    "BACKBONE_FIELDS",
    "CONV_NORM_EPS",
    "FEATURE_NORMS",
    "LARGE_LV60",
    "ConvLayer",
    "FeatureEncoder",
    "FeatureProjection",
    "GumbelVectorQuantizer",
    "PositionalConvEmbedding",
    "PretrainingOutputs",
    "Wav2Vec2",
    "Wav2Vec2Base",
    "Wav2Vec2BaseClassifier",
    "Wav2Vec2Classifier",
    "Wav2Vec2Fields",
    "Wav2Vec2ForPreTraining",
    "Wav2Vec2Large",
    "Wav2Vec2LargeClassifier",
    "Wav2Vec2Outputs",
    "codebook_perplexity",
    "compute_mask",
    "config_from_hf",
    "cosine_similarity",
    "feature_frames",
    "from_hf",
    "gelu",
    "hf_names",
    "num_masked_spans",
    "pretraining_loss",
    "sample_negative_indices",
    "weight_norm",
]
