"""WaveNet autoencoders: the NSynth autoencoder and autoregressive discrete autoencoders.

* NSynth (Engel et al. 2017, arXiv 1704.01279, section 3.1): a non-causal dilated encoder
  (`audiozoo.nn.encoder.DilatedEncoder`) squeezes audio to 16 channels every 512 samples; a
  WaveNet decoder reads the encoding upsampled by repetition, added through a 1x1 in every
  layer and in the output stack (`bottleneck="none"`). With `decoder_scalar_input` and
  `decoder_input_kernel=3` the decoder reads the previous samples as values through a causal
  kernel-3 conv, as magenta's nsynth/wavenet/h512_bo16.py does (`audiozoo.magenta` imports
  its published checkpoint into exactly that configuration).
* ADA (Dieleman et al. 2018, arXiv 1806.10474, section 3): the same encoder with its own hop,
  then a discrete bottleneck, VQ-VAE (`"vq"`) or the argmax autoencoder (`"argmax"`) from
  `audiozoo.nn.bottleneck`; the decoder is conditioned on the quantised codes. Levels stack:
  a level-2 model's input is a level-1 model's codes (`encoder_input="one_hot"`).

Both model a sequence of integer codes: mu-law audio classes at level 1, the lower level's
codes above it. `logits = model.apply(variables, codes)[0]` is teacher-forced: the decoder
reads the codes shifted right by one (the first input is the code of silence, exactly as
generation starts), so logits[:, t] predicts codes[:, t] and is conditioned on the frame
holding t. Decoding with `audiozoo.generation` uses `model.decoder_net` on
`{"params": params["decoder"]}` with the latent as its local conditioning.

Mixed precision: `dtype` is the computation dtype of the encoder and the decoder (passed to
`decoder_net`, so generation runs in it too); the parameters stay float32, the logits come
out in float32 (see `audiozoo.models.wavenet`), and the VQ bottleneck's distances and losses
are float32 whatever `dtype` is. The latent the decoder reads is in `dtype`.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

from audiozoo.audio.mulaw import silence_code
from audiozoo.models.wavenet import WaveNet
from audiozoo.nn.bottleneck import ArgmaxBottleneck, BottleneckOutput, VectorQuantizer
from audiozoo.nn.encoder import DilatedEncoder

BOTTLENECKS = ("none", "vq", "argmax")
ENCODER_INPUTS = ("scalar", "one_hot")


class WaveNetAutoencoder(nn.Module):
    """Encoder -> (optional discrete bottleneck) -> WaveNet decoder on the upsampled latent."""

    num_classes: int = 256  # of the codes modelled: mu-law classes, or lower-level codes
    # "scalar": codes read as values in [-1, 1] (audio); "one_hot": as symbols (codes).
    encoder_input: str = "scalar"
    encoder_layers: int = 30
    encoder_stacks: int = 3
    encoder_kernel: int = 3
    encoder_channels: int = 128
    latent_channels: int = 16  # the continuous latent, or the VQ code vectors' width
    hop_length: int = 512
    bottleneck: str = "none"
    num_codes: int = 256  # discrete bottlenecks: the codebook size K
    commitment: float = 0.25
    vq_ema: bool = False
    vq_decay: float = 0.99
    dead_code_threshold: float = 0.0
    diversity_weight: float = 1.0
    decoder_layers: int = 30
    decoder_stacks: int = 3
    kernel_size: int = 3
    residual_channels: int = 512
    gate_channels: int = 1024
    skip_channels: int = 256
    upsample: str = "repeat"
    # The decoder's skip sum starts from a 1x1 of its embedded input (`WaveNet.skip_start`),
    # as in magenta's nsynth/wavenet/h512_bo16.py.
    skip_start: bool = False
    # The decoder reads each previous code as a value through a causal conv of this width
    # (`WaveNet.scalar_input` / `input_kernel`), as h512_bo16.py's decoder reads `x_scaled`
    # through its kernel-3 `startconv`; off: an embedding table.
    decoder_scalar_input: bool = False
    decoder_input_kernel: int = 1
    # The computation dtype (jnp.bfloat16 for mixed precision); parameters stay float32.
    dtype: Any = jnp.float32

    # ---- static structure -------------------------------------------------------------
    @property
    def discrete(self) -> bool:
        return self.bottleneck != "none"

    @property
    def latent_width(self) -> int:
        """Channels of what the decoder is conditioned on."""
        return self.num_codes if self.bottleneck == "argmax" else self.latent_channels

    @property
    def decoder_net(self) -> WaveNet:
        """The decoder as a stand-alone WaveNet (its params are params["decoder"])."""
        return WaveNet(
            num_layers=self.decoder_layers, num_stacks=self.decoder_stacks,
            kernel_size=self.kernel_size, residual_channels=self.residual_channels,
            gate_channels=self.gate_channels, skip_channels=self.skip_channels,
            num_classes=self.num_classes, local_channels=self.latent_width,
            upsample_scales=(self.hop_length,), upsample=self.upsample, condition_output=True,
            skip_start=self.skip_start, scalar_input=self.decoder_scalar_input,
            input_kernel=self.decoder_input_kernel, dtype=self.dtype)

    @property
    def encoder_net(self) -> DilatedEncoder:
        out = self.num_codes if self.bottleneck == "argmax" else self.latent_channels
        return DilatedEncoder(self.encoder_layers, self.encoder_stacks, self.encoder_kernel,
                              self.encoder_channels, out, self.hop_length, dtype=self.dtype)

    @property
    def receptive_field(self) -> int:
        """Codes the decoder sees when predicting one code (the encoder sees the whole clip)."""
        return self.decoder_net.receptive_field

    def setup(self):
        if self.bottleneck not in BOTTLENECKS:
            raise ValueError(f"bottleneck={self.bottleneck!r} is not one of {BOTTLENECKS}")
        if self.encoder_input not in ENCODER_INPUTS:
            raise ValueError(f"encoder_input={self.encoder_input!r} is not one of {ENCODER_INPUTS}")
        self.encoder = self.encoder_net
        if self.bottleneck == "vq":
            self.quantizer = VectorQuantizer(
                self.num_codes, self.latent_channels, commitment=self.commitment,
                ema=self.vq_ema, decay=self.vq_decay, dead_code_threshold=self.dead_code_threshold)
        elif self.bottleneck == "argmax":
            self.quantizer = ArgmaxBottleneck(self.num_codes, self.diversity_weight)
        self.decoder = self.decoder_net

    # ---- the passes -------------------------------------------------------------------
    def __call__(self, codes, train: bool = False):
        """codes int [batch, time] -> (logits [batch, time, num_classes], BottleneckOutput).

        logits[:, t] predicts codes[:, t] from codes[:, :t] and the latent of the whole clip.
        """
        out = self.bottleneck_out(codes, train)
        inputs = jnp.pad(codes[:, :-1], ((0, 0), (1, 0)), constant_values=silence_code(
            self.decoder.num_classes, mu_law=self.decoder.output == "softmax"))
        return self.decoder(inputs, local_cond=out.quantized), out

    def encode(self, codes, train: bool = False):
        """The encoder's output before any quantiser: [batch, ceil(time / hop), channels]."""
        codes = jnp.asarray(codes)
        if codes.ndim != 2:
            raise ValueError(f"codes must be [batch, time], got shape {codes.shape}")
        if self.encoder_input == "one_hot":
            x = jax.nn.one_hot(codes, self.num_classes, dtype=self.dtype)
        else:  # mu-law classes as values in [-1, 1), as the NSynth encoder reads them
            x = (codes.astype(jnp.float32) / (self.num_classes / 2) - 1.0)[..., None]
        return self.encoder(x.astype(self.dtype))

    def bottleneck_out(self, codes, train: bool = False) -> BottleneckOutput:
        """The latent the decoder reads (`quantized`), with codes and statistics."""
        return self.quantize(self.encode(codes, train), train)

    def quantize(self, encoded, train: bool = False) -> BottleneckOutput:
        """Encoder outputs (or a mix of them) -> the decoder's latent."""
        if self.discrete:
            return self.quantizer(encoded, train=train)
        zero = jnp.zeros((), jnp.float32)
        return BottleneckOutput(quantized=encoded, codes=jnp.zeros(encoded.shape[:-1], jnp.int32),
                                loss=zero, perplexity=zero, usage=zero)

    def latent_of_codes(self, codes):
        """Discrete codes [batch, frames] -> the latent the decoder reads for them (in dtype,
        as `quantize` gives it)."""
        if not self.discrete:
            raise ValueError("this autoencoder has a continuous latent: there are no codes")
        return self.quantizer.decode(codes).astype(self.dtype)
