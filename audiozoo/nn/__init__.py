"""Building blocks shared by several models: causal dilated convolution (full and one-step),
the gated residual block, the conditioning upsampler, the discretized mixture of logistics."""

from audiozoo.nn.conv import CausalConv1D
from audiozoo.nn.gated import GatedResidualBlock
from audiozoo.nn.mixture_logistics import (discretized_mix_logistic_nll, mol_num_params,
                                           sample_discretized_mix_logistic)
from audiozoo.nn.upsample import ConditionUpsampler

__all__ = ["CausalConv1D", "ConditionUpsampler", "GatedResidualBlock",
           "discretized_mix_logistic_nll", "mol_num_params", "sample_discretized_mix_logistic"]
