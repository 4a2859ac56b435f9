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


def initialize_distributed(coordinator_address: str | None = None,
                           num_processes: int | None = None,
                           process_id: int | None = None) -> None:
    """Multi-host start-up, before any other JAX call. On TPU pods, SLURM, Open MPI and
    Kubernetes JobSets the arguments are detected from the environment; elsewhere pass all
    three (the coordinator is process 0's host:port). Multi-process CPU runs (tests, CPU
    clusters) need the gloo collectives, which are switched on here."""
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        jax.distributed.initialize(coordinator_address, num_processes, process_id)
    except ValueError as e:  # no cluster detected and not all three given
        raise ValueError(f"{e} No cluster (TPU pod, SLURM, Open MPI, Kubernetes) was detected "
                         "here: pass --coordinator HOST:PORT (process 0's), --num-processes "
                         "and --process-id") from None


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
