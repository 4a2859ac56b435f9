"""Data parallelism: one `data` mesh axis over every device of every host.

The batch is sharded along `data` and the train state replicated; `jax.jit` then inserts the
cross-device reductions (what pmap did, now through the sharding-aware jit). The same code runs
on one CPU, on 8 fake CPU devices (XLA_FLAGS=--xla_force_host_platform_device_count=8) and on
a multi-host TPU/GPU slice, where each host feeds only its own shard of the global batch.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import AxisType, NamedSharding, PartitionSpec

DATA_AXIS = "data"


def initialize_distributed() -> None:
    """Multi-host start-up: the coordinator address and process ids come from the cluster
    environment (TPU pods, SLURM, or the JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES /
    JAX_PROCESS_ID variables)."""
    jax.distributed.initialize()


def make_mesh() -> jax.sharding.Mesh:
    return jax.make_mesh((jax.device_count(),), (DATA_AXIS,), axis_types=(AxisType.Auto,))


def replicated(mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def batch_sharded(mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def check_batch_size(global_batch_size: int) -> None:
    devices = jax.device_count()
    if global_batch_size % devices:
        raise ValueError(
            f"train.batch_size={global_batch_size} must be a multiple of the {devices} devices "
            f"it is split over; set --config.train.batch_size to a multiple of {devices}"
        )


def global_batch(mesh, host_batch: dict[str, np.ndarray]) -> dict[str, jax.Array]:
    """Assembles the global batch from each host's local slice, sharded on `data`."""
    sharding = batch_sharded(mesh)
    return {k: jax.make_array_from_process_local_data(sharding, v) for k, v in host_batch.items()}
