"""``trainer devices``: the JAX backend and the devices the trainer will use, in one line.

    $ trainer devices           # (an illustration)
    backend gpu: 1 x NVIDIA H200 (105.6 GiB each); jax 0.11.2, jaxlib 0.11.2, jax-cuda13-plugin 0.11.2;
    attention auto -> cudnn; bf16 peak 989 TFLOP/s per device

``--json`` prints the same facts as one JSON object; ``--require gpu`` (or ``tpu``, ``cpu``) fails
with one ``error:`` line when JAX chose another backend (for instance the CUDA plugin is missing
or does not match jaxlib, and JAX fell back to the CPU).
"""

from __future__ import annotations

import argparse
import json
from importlib import metadata
from typing import Optional

from .errors import TrainerError

#: Distributions whose versions decide which backend JAX can use.
JAX_DISTRIBUTIONS = ("jax", "jaxlib", "jax-cuda13-plugin", "jax-cuda13-pjrt", "jax-cuda12-plugin",
                     "jax-cuda12-pjrt", "libtpu")

GiB = 1024 ** 3


def installed_versions(names=JAX_DISTRIBUTIONS) -> dict:
    """``{distribution: version}`` of the installed ones among ``names``."""
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def describe() -> dict:
    """Backend, versions, devices (kind, memory the allocator may use), the attention ``auto`` resolves
    to for the shipped bf16 configs (head size 64), and the bf16 peak used for MFU (None: unknown)."""
    import jax

    from . import flops, memory
    from .models.layers import resolve_attention_impl

    backend = jax.default_backend()
    devices = []
    for d in jax.devices():
        limit = memory.device_limit(d) if d.process_index == jax.process_index() else None
        devices.append({"id": d.id, "platform": d.platform, "kind": d.device_kind, "process": d.process_index,
                        "memory_bytes": limit})
    kind = devices[0]["kind"] if devices else ""
    return {"backend": backend, "versions": installed_versions(), "device_count": len(devices),
            "process_count": jax.process_count(), "devices": devices,
            "attention_auto": resolve_attention_impl("auto", "bfloat16", 64, backend),
            "peak_bf16_flops": flops.peak_flops(kind)}


def summary_line(info: dict) -> str:
    """One line: backend, ``N x kind (memory)``, versions, attention, peak."""
    kinds: dict = {}
    for d in info["devices"]:
        kinds.setdefault(d["kind"], []).append(d)
    parts = []
    for kind, ds in kinds.items():
        mem = ds[0]["memory_bytes"]
        parts.append(f"{len(ds)} x {kind}" + (f" ({mem / GiB:.1f} GiB each)" if mem else ""))
    versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items())
    peak = info["peak_bf16_flops"]
    peak_text = f"bf16 peak {peak / 1e12:.0f} TFLOP/s per device" if peak else "bf16 peak unknown (MFU n/a)"
    procs = f" over {info['process_count']} processes" if info["process_count"] > 1 else ""
    return (f"backend {info['backend']}: {', '.join(parts)}{procs}; {versions}; "
            f"attention auto -> {info['attention_auto']}; {peak_text}")


def check_backend(info: dict, required: Optional[str]) -> None:
    """Raise TrainerError when ``required`` is set and is not the backend JAX chose."""
    if required and info["backend"] != required:
        raise TrainerError(
            f"--require {required}: JAX uses the {info['backend']} backend ({summary_line(info)}); for NVIDIA "
            "GPUs install the CUDA plugin matching jaxlib (pip install -e '.[trainer,cuda]'), check nvidia-smi, "
            "and unset JAX_PLATFORMS if it names another platform")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the line")
    p.add_argument("--require", choices=("gpu", "tpu", "cpu"),
                   help="fail (one error line, exit status 2) unless JAX uses this backend")


def run(args) -> int:
    info = describe()
    check_backend(info, args.require)
    print(json.dumps(info) if args.json else summary_line(info))
    return 0
