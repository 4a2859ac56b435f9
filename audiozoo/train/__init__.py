"""The generic trainer: device mesh, the loop, metric and TensorBoard writers.

It knows models only through a task (see `audiozoo.tasks`, which also holds the train state
and the optimiser): init, train step, eval step and samples. Nothing here imports a model.
"""
