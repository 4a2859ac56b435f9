"""The generic trainer: train state, optimiser, device mesh, checkpoints, metrics, loop.

It knows models only through a task (see `audiozoo.tasks`): init, train step, eval step and
samples. Nothing here imports a model.
"""
