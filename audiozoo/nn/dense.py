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
2x faster with this layer (experiments/benchmark/README.md). Other dtypes and contractions go
to `jax.lax.dot_general` unchanged.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from flax import linen as nn
from jax import lax

HALF_PRECISION = (jnp.dtype(jnp.bfloat16), jnp.dtype(jnp.float16))


def dot_general(lhs, rhs, dimension_numbers, precision=None, preferred_element_type=None,
                **kwargs):
    """`jax.lax.dot_general`, except that nn.Dense's product (lhs [..., in] @ rhs [in, out])
    of two half-precision operands of one dtype goes through `half_matmul`."""
    (lhs_contract, rhs_contract), (lhs_batch, rhs_batch) = dimension_numbers
    dense = (tuple(lhs_contract) == (lhs.ndim - 1,) and tuple(rhs_contract) == (0,)
             and rhs.ndim == 2 and not lhs_batch and not rhs_batch)
    if (dense and preferred_element_type is None and not kwargs and lhs.dtype == rhs.dtype
            and jnp.dtype(lhs.dtype) in HALF_PRECISION):
        return half_matmul(lhs, rhs, precision)
    return lax.dot_general(lhs, rhs, dimension_numbers, precision, preferred_element_type,
                           **kwargs)


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
