"""Data-parallel training over every device, on one host or many.

One mesh axis, "data", spans all devices of all processes. Batches are sharded
along it; parameters and optimizer state are either replicated ("replicate")
or, FSDP-style ("fsdp"), split along their largest axis that the mesh size
divides, for arrays of at least `min_shard_size` elements. The same jitted
step then runs on 1 CPU, 8 GPUs or a multi-host pod.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

PARAM_RULES = ("replicate", "fsdp")


def make_mesh() -> Mesh:
    """A 1-D mesh named "data" over every device of every process."""
    return Mesh(np.asarray(jax.devices()), ("data",))


def is_writer() -> bool:
    """Whether this process writes logs, reports and pictures (process 0 only)."""
    return jax.process_index() == 0


def check_batch_size(batch_size: int, mesh: Mesh) -> None:
    devices = mesh.devices.size
    if batch_size % devices:
        raise ValueError(
            f"train.batch_size={batch_size} must be divisible by the {devices} devices "
            f"({jax.devices()[0].platform}); valid sizes are multiples of {devices}"
        )


def leaf_spec(shape: tuple[int, ...], mesh_size: int, rule: str, min_shard_size: int) -> P:
    """How one parameter-like array is laid out under `rule`."""
    if rule not in PARAM_RULES:
        raise ValueError(f"unknown parameter sharding {rule!r}; valid: {', '.join(PARAM_RULES)}")
    if rule == "replicate" or mesh_size == 1 or int(np.prod(shape)) < min_shard_size:
        return P()
    divisible = [axis for axis, size in enumerate(shape) if size % mesh_size == 0]
    if not divisible:
        return P()
    axis = max(divisible, key=lambda a: shape[a])
    return P(*[("data" if a == axis else None) for a in range(len(shape))])


def state_shardings(state, mesh: Mesh, rule: str = "replicate", min_shard_size: int = 2**14):
    """A NamedSharding for every leaf of a train state (params and optimizer moments)."""
    return jax.tree.map(
        lambda leaf: NamedSharding(
            mesh, leaf_spec(np.shape(leaf), mesh.devices.size, rule, min_shard_size)
        ),
        state,
    )


def batch_sharding(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P("data"))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def shard_batch(batch: dict[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
    """A global batch (identical on every process) -> arrays sharded over "data".

    Each process contributes its own contiguous slice of rows, so on many hosts
    every host only transfers the rows its devices train on.
    """
    sharding = batch_sharding(mesh)
    processes, index = jax.process_count(), jax.process_index()

    def place(array):
        rows = array.shape[0] // processes
        local = array[index * rows : (index + 1) * rows]
        return jax.make_array_from_process_local_data(sharding, local, array.shape)

    return jax.tree.map(place, batch)
