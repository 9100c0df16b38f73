"""Device mesh and shardings: data parallel over every device, optional FSDP-style parameters."""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

DATA = "data"


def make_mesh() -> jax.sharding.Mesh:
    """A 1-D mesh ``("data",)`` over all devices of all processes."""
    return jax.make_mesh((jax.device_count(),), (DATA,), axis_types=(jax.sharding.AxisType.Auto,))


def batch_sharding(mesh) -> NamedSharding:
    """Batches are ``[accum, micro_batch, length]``: the micro-batch axis is split over devices."""
    return NamedSharding(mesh, P(None, DATA))


def replicated(mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def fsdp_spec(shape: tuple, n: int, min_size: int = 2 ** 12) -> P:
    """Shard the largest axis divisible by ``n`` over "data" (replicate small or indivisible arrays)."""
    if n == 1 or int(np.prod(shape, dtype=np.int64)) < min_size:
        return P()
    for axis in sorted(range(len(shape)), key=lambda a: -shape[a]):
        if shape[axis] % n == 0:
            spec = [None] * len(shape)
            spec[axis] = DATA
            return P(*spec)
    return P()


def state_shardings(abstract_tree, mesh, fsdp: bool):
    """Shardings for parameters / optimizer state (same rule for every leaf of the same shape)."""
    n = mesh.shape[DATA]
    return jax.tree.map(
        lambda x: NamedSharding(mesh, fsdp_spec(tuple(x.shape), n) if fsdp else P()), abstract_tree
    )
