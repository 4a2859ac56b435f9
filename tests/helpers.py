"""Helpers importable from tests and from the subprocesses they start."""

from audiozoo.config import base_config


def tiny_config(num_steps: int = 6):
    c = base_config()
    c.model.update(dict(num_layers=4, num_stacks=2, kernel_size=2, residual_channels=8,
                        gate_channels=16, skip_channels=8, num_classes=256,
                        num_global_ids=5, global_channels=4))
    c.task.global_cond = "family"
    c.task.num_samples = 0
    c.data.segment_length = 256
    c.data.num_train = 64
    c.data.num_eval = 16
    c.train.update(dict(num_steps=num_steps, batch_size=8, log_every=2, eval_every=0,
                        num_eval_batches=1, checkpoint_every=2))
    return c


def params_after(config, workdir):
    """Trains and returns the final params as numpy leaves (flattened, in tree order)."""
    import jax
    import numpy as np

    from audiozoo.train.loop import train

    state = train(config, workdir)
    return [np.asarray(x) for x in jax.tree.leaves(state.params)]


def normal(shape, seed: int = 0, scale: float = 1.0, shift: float = 0.0):
    """Float32 N(shift, scale^2) test inputs from numpy, so making them compiles nothing
    (un-jitted jax.random compiles a program per shape)."""
    import jax.numpy as jnp
    import numpy as np

    return jnp.asarray(np.random.default_rng(seed).normal(shift, scale, shape), jnp.float32)


def random_variables(module, *args, seed: int = 0, **kwargs):
    """Variables of module.init(key, *args, **kwargs) filled from numpy: N(0, 1 / fan_in) for
    matrices and kernels (fan_in: every axis but the last), N(0, 0.05^2) for vectors, so no
    bias is trivially zero. Only the shapes are traced: a jitted flax init of even a tiny
    network takes XLA:CPU seconds to compile (a key fold and a truncated normal per
    parameter), which many tests would otherwise pay for values any random ones can stand in
    for."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    rng = np.random.default_rng(seed)
    shapes = jax.eval_shape(module.init, jax.random.key(0), *args, **kwargs)

    def fill(leaf):
        fan_in = int(np.prod(leaf.shape[:-1])) if len(leaf.shape) > 1 else 0
        std = 1 / np.sqrt(fan_in) if fan_in else 0.05
        return jnp.asarray(rng.normal(0, std, leaf.shape), leaf.dtype)

    return jax.tree.map(fill, shapes)


def heavy_ops(fn, *args):
    """Every matmul (dot_general) and convolution equation in fn's jaxpr, nested jaxprs (jit,
    scan, custom_vjp, ...) included."""
    import jax

    found = []

    def visit(jaxpr):
        for eqn in jaxpr.eqns:
            if str(eqn.primitive) in ("dot_general", "conv_general_dilated"):
                found.append(eqn)
            for param in eqn.params.values():
                for sub in param if isinstance(param, (list, tuple)) else [param]:
                    inner = getattr(sub, "jaxpr", sub)
                    if hasattr(inner, "eqns"):
                        visit(inner)

    visit(jax.make_jaxpr(fn)(*args).jaxpr)
    return found


def heavy_op_dtypes(fn, *args) -> dict[str, set[str]]:
    """The operand dtypes of fn's matmuls and convolutions: {"dot_general": {"bfloat16"}, ...}.
    How a mixed-precision test checks that the heavy arithmetic really runs in the asked dtype."""
    found: dict[str, set[str]] = {}
    for eqn in heavy_ops(fn, *args):
        found.setdefault(str(eqn.primitive), set()).update(str(v.aval.dtype) for v in eqn.invars)
    return found


def float32_matmul_shapes(fn, *args) -> list[tuple[tuple[int, ...], ...]]:
    """The operand shapes of every matmul in fn with a float32 operand."""
    return [tuple(tuple(v.aval.shape) for v in eqn.invars) for eqn in heavy_ops(fn, *args)
            if str(eqn.primitive) == "dot_general"
            and any(str(v.aval.dtype) == "float32" for v in eqn.invars)]


def run_interrupted_at(trainer, step: int) -> None:
    """Runs `trainer` with a Ctrl-C (KeyboardInterrupt) raised when it reaches train step
    `step`, as a user's Ctrl-C lands between steps."""
    import pytest

    step_fn = trainer.step_fn

    def interrupted(kind, at):
        if kind == "train" and at == step:
            raise KeyboardInterrupt
        return step_fn(kind, at)

    trainer.step_fn = interrupted
    with pytest.raises(KeyboardInterrupt):
        trainer.run()

