"""The shared conv op: tap matmuls on XLA:CPU's slow small maps, lax's convolution elsewhere,
the same numbers either way."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn

from audiozoo.nn.convolution import Conv, conv_as_tap_matmuls, conv_general_dilated
from helpers import normal

DN2 = ("NHWC", "HWIO", "NHWC")
DN1 = ("NWC", "WIO", "NWC")


def _primitives(fn, *args) -> set[str]:
    return {str(eqn.primitive) for eqn in jax.make_jaxpr(fn)(*args).eqns}


@pytest.mark.parametrize("spatial,window,strides,padding,dilation", [
    ((2, 2), (3, 3), (1, 1), [(1, 1), (1, 1)], None),        # ResNet's last stage
    ((4, 2), (3, 3), (1, 1), "SAME", None),
    ((3, 5), (3, 3), (2, 2), [(1, 1), (1, 1)], None),        # strided, odd map
    ((4, 4), (5, 5), (1, 1), [(2, 2), (2, 2)], None),
    ((6, 6), (7, 7), (2, 2), [(3, 3), (3, 3)], None),
    ((1, 2), (7, 7), (1, 1), [(3, 3), (3, 3)], None),        # most taps read only padding
    ((2, 2), (7, 7), (2, 2), [(3, 3), (3, 3)], None),
    ((2, 1), (3, 3), (1, 1), [(4, 0), (1, 2)], None),        # uneven pads, all-padding rows
    ((5, 3), (3, 2), (1, 2), "VALID", None),                 # non-square window, VALID
    ((2, 3), (3, 3), (1, 1), "SAME", (2, 1)),                # kernel dilation
    ((7,), (9,), (1,), "SAME", None),                        # 1-D
    ((10,), (3,), (2,), [(0, 0)], (3,)),                     # 1-D strided and dilated
])
def test_tap_matmuls_equal_the_convolution_and_its_gradient(spatial, window, strides, padding,
                                                            dilation):
    dn = DN2 if len(spatial) == 2 else DN1
    x = normal((3, *spatial, 5), 0)
    k = normal((*window, 5, 4), 1)

    def ours(x, k):
        return conv_general_dilated(x, k, strides, padding, rhs_dilation=dilation,
                                    dimension_numbers=dn)

    def lax_conv(x, k):
        return jax.lax.conv_general_dilated(x, k, strides, padding, rhs_dilation=dilation,
                                            dimension_numbers=dn)

    assert "conv_general_dilated" not in _primitives(ours, x, k)  # the tap path was taken
    # Jitted: one compile per function instead of one per operation (faster tests).
    np.testing.assert_allclose(jax.jit(ours)(x, k), lax_conv(x, k), rtol=1e-5, atol=1e-5)
    grad = lambda f: jax.jit(jax.grad(lambda x, k: jnp.sum(jnp.sin(f(x, k))), (0, 1)))  # noqa: E731
    for g_ours, g_lax in zip(grad(ours)(x, k), grad(lax_conv)(x, k)):
        # float32 rounding of sums over up to 49 taps, relative to the gradient's scale
        np.testing.assert_allclose(g_ours, g_lax, rtol=1e-4, atol=2e-5 * np.abs(g_lax).max())


@pytest.mark.parametrize("shape,window,strides,groups", [
    ((2, 16, 16, 4), (3, 3), (1, 1), 1),   # an ordinary map: Eigen is fast there
    ((2, 3, 3, 4), (3, 3), (1, 1), 1),     # as many positions as taps
    ((2, 2, 2, 4), (3, 3), (1, 1), 2),     # grouped: not a tap-matmul case
])
def test_other_convolutions_stay_with_lax(shape, window, strides, groups):
    x = normal(shape, 0)
    k = normal((*window, shape[-1] // groups, 4), 1)
    fn = lambda x, k: conv_general_dilated(x, k, strides, "SAME", dimension_numbers=DN2,  # noqa: E731
                                           feature_group_count=groups)
    assert "conv_general_dilated" in _primitives(fn, x, k)


def test_tap_matmuls_keep_bfloat16_and_the_preferred_accumulator():
    x = normal((2, 2, 2, 8), 0).astype(jnp.bfloat16)
    k = normal((3, 3, 8, 4), 1).astype(jnp.bfloat16)
    pads = [(1, 1), (1, 1)]
    narrow = conv_as_tap_matmuls(x, k, (1, 1), pads)
    assert narrow.dtype == jnp.bfloat16
    wide = conv_as_tap_matmuls(x, k, (1, 1), pads, preferred_element_type=jnp.float32)
    assert wide.dtype == jnp.float32
    reference = jax.lax.conv_general_dilated(x.astype(jnp.float32), k.astype(jnp.float32),
                                             (1, 1), pads, dimension_numbers=DN2)
    np.testing.assert_allclose(wide, reference, rtol=1e-5, atol=1e-5)
    # The taps are summed in float32 and rounded once: within half a bfloat16 step.
    np.testing.assert_allclose(narrow.astype(jnp.float32), reference, rtol=2**-8, atol=1e-6)


def test_conv_layer_has_flax_parameters_and_output():
    """`Conv` is nn.Conv with the op swapped: same parameter tree, same numbers."""
    x = normal((2, 4, 2, 3), 0)
    ours, flax_conv = Conv(6, (3, 3), padding="SAME"), nn.Conv(6, (3, 3), padding="SAME")
    variables = flax_conv.init(jax.random.PRNGKey(2), x)
    assert jax.tree.structure(ours.init(jax.random.PRNGKey(2), x)) == jax.tree.structure(variables)
    np.testing.assert_allclose(ours.apply(variables, x), flax_conv.apply(variables, x),
                               rtol=1e-5, atol=1e-5)
