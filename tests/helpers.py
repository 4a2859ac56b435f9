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
