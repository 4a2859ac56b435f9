"""Building blocks shared by several models: causal dilated convolution,
the gated residual block, the conditioning upsampler, the discretized mixture of logistics,
the discrete bottlenecks (VQ-VAE and argmax autoencoder)."""

from audiozoo.nn.bottleneck import (
    ArgmaxBottleneck,
    BottleneckOutput,
    VectorQuantizer,
    code_perplexity,
    code_usage,
)
from audiozoo.nn.conv import CausalConv1D
from audiozoo.nn.gated import GatedResidualBlock
from audiozoo.nn.mixture_logistics import (discretized_mix_logistic_nll, mol_num_params,
                                           sample_discretized_mix_logistic)
from audiozoo.nn.upsample import ConditionUpsampler

__all__ = ["ArgmaxBottleneck", "BottleneckOutput", "CausalConv1D", "ConditionUpsampler",
           "GatedResidualBlock", "VectorQuantizer", "code_perplexity", "code_usage",
           "discretized_mix_logistic_nll", "mol_num_params", "sample_discretized_mix_logistic"]
