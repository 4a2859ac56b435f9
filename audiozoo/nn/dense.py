"""The dense (fully connected) layer audiozoo's models build: flax's `nn.Dense` (the same
parameters, names, initialisation and values) whose half-precision matmuls accumulate in
float32 and hand their kernel gradient over in the kernel's own layout.

With bfloat16 (or float16) inputs and kernel, `half_matmul` takes x @ kernel with float32
accumulation and rounds the product to the inputs' dtype: the arithmetic of a bfloat16 matmul
on accelerators, and what XLA:CPU computes for one anyway. Its gradients are the same kind of
matmul on half-precision operands, written out so that the kernel's comes out as
[in, out] = x^T g. Left to autodiff, XLA:CPU produced it as [out, in] and transposed it
inside the optimiser's update, which for VGG-11's first classifier layer (100M weights) took
longer than the whole float32 training step: bfloat16 training of VGG-11 and AlexNet ran about
2x faster with this layer (experiments/benchmark/README.md).

In float32 on CPU, a large product (`cpu_dot_is_slow`: at least 1,024 rows through a kernel
of at least 64 x 128, e.g. AST's and WaveNet's per-token / per-sample layers) runs as a width-1
convolution (`matmul_as_conv`), which XLA rewrites into a dot that its Eigen runtime computes;
the plain dot goes to YNNPACK, 5-30% slower on these shapes on the CPUs measured
(experiments/benchmark/dense_paths.py). Its derivatives are plain matmuls. Other dtypes,
shapes, backends and contractions go to `jax.lax.dot_general` unchanged.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
from flax import linen as nn
from jax import lax

HALF_PRECISION = (jnp.dtype(jnp.bfloat16), jnp.dtype(jnp.float16))


def dot_general(lhs, rhs, dimension_numbers, precision=None, preferred_element_type=None,
                **kwargs):
    """`jax.lax.dot_general`, except for nn.Dense's product (lhs [..., in] @ rhs [in, out]):
    two half-precision operands of one dtype go through `half_matmul`, and large float32
    products on CPU through `matmul_as_conv`."""
    (lhs_contract, rhs_contract), (lhs_batch, rhs_batch) = dimension_numbers
    dense = (tuple(lhs_contract) == (lhs.ndim - 1,) and tuple(rhs_contract) == (0,)
             and rhs.ndim == 2 and not lhs_batch and not rhs_batch and not kwargs
             and lhs.dtype == rhs.dtype)
    dtype = jnp.dtype(lhs.dtype)
    if dense and preferred_element_type is None and dtype in HALF_PRECISION:
        return half_matmul(lhs, rhs, precision)
    if (dense and dtype == jnp.float32 and preferred_element_type in (None, jnp.float32)
            and cpu_dot_is_slow(math.prod(lhs.shape[:-1]), *rhs.shape)):
        return matmul_as_conv(lhs, rhs, precision)
    return lax.dot_general(lhs, rhs, dimension_numbers, precision, preferred_element_type,
                           **kwargs)


@functools.partial(jax.custom_jvp, nondiff_argnums=(2,))
def matmul_as_conv(x, kernel, precision=None):
    """x [..., in] @ kernel [in, out] as a width-1 convolution over the rows. Its derivative
    is written with plain matmuls, so that reverse mode transposes those (a convolution's
    kernel gradient is slower than x^T g here) and forward mode still works."""
    rows = x.reshape(1, -1, x.shape[-1])
    out = lax.conv_general_dilated(rows, kernel[None], (1,), [(0, 0)], precision=precision,
                                   dimension_numbers=("NWC", "WIO", "NWC"))
    return out.reshape(*x.shape[:-1], kernel.shape[-1])


def _matmul_as_conv_jvp(precision, primals, tangents):
    x, kernel = primals
    dx, dkernel = tangents
    zero = jax.custom_derivatives.SymbolicZero  # an input not being differentiated
    terms = []
    if not isinstance(dx, zero):
        terms.append(_product(dx, kernel, ((dx.ndim - 1,), (0,)), precision))
    if not isinstance(dkernel, zero):
        terms.append(_product(x, dkernel, ((x.ndim - 1,), (0,)), precision))
    return matmul_as_conv(x, kernel, precision), sum(terms[1:], terms[0])


matmul_as_conv.defjvp(_matmul_as_conv_jvp, symbolic_zeros=True)


def cpu_dot_is_slow(rows: int, features_in: int, features_out: int) -> bool:
    """Where XLA:CPU's float32 dot is slower than the same product as a width-1 convolution:
    at least 1,024 rows and a kernel of at least 64 x 128 (the region measured by
    `experiments/benchmark/dense_paths.py --grid`; smaller products are level or faster as a
    dot)."""
    if jax.default_backend() != "cpu":
        return False
    return rows >= 1024 and features_in * features_out >= 64 * 128


def _product(a, b, contracting, precision):
    """a . b over the given (a axes, b axes), float32 accumulation, rounded to a's dtype."""
    out = lax.dot_general(a, b, (contracting, ((), ())), precision,
                          preferred_element_type=jnp.float32)
    return out.astype(a.dtype)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def half_matmul(x, kernel, precision=None):
    """x [..., in] @ kernel [in, out] in x's (half-precision) dtype, accumulated in float32."""
    return _product(x, kernel, ((x.ndim - 1,), (0,)), precision)


def _half_matmul_forward(x, kernel, precision):
    return half_matmul(x, kernel, precision), (x, kernel)


def _half_matmul_grad(precision, residuals, grad):
    x, kernel = residuals
    grad = grad.astype(x.dtype)
    dx = _product(grad, kernel, ((grad.ndim - 1,), (1,)), precision)       # g k^T: [..., in]
    rows = tuple(range(x.ndim - 1))
    dkernel = _product(x, grad, (rows, rows), precision)                    # x^T g: [in, out]
    return dx, dkernel


half_matmul.defvjp(_half_matmul_forward, _half_matmul_grad)

Dense = functools.partial(nn.Dense, dot_general=dot_general)
