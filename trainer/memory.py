"""Device memory: XLA's estimate of a compiled step against the device's memory, before the first step.

``estimate = arguments + outputs - aliased (donated) + temporaries + generated code`` per device,
from ``jax.jit(...).lower(...).compile().memory_analysis()`` (None or partial on some backends),
against the device's limit (:func:`device_limit`): ``device.memory_stats()["bytes_limit"]`` on
accelerators; on a CPU backend, where every device shares the host's memory, the host's available
memory (the smaller of ``MemAvailable`` and the cgroup's room) divided by the local devices; the
environment variable ``TRAINER_DEVICE_MEMORY_LIMIT`` (bytes) overrides both. A step that cannot
fit fails with a :class:`~trainer.errors.ConfigError` naming the settings to change (exit status 2,
no run folder) instead of an out-of-memory crash at the first step.
"""

from __future__ import annotations

import logging
import os
from typing import Optional

from .errors import ConfigError

log = logging.getLogger(__name__)

GiB = 1024 ** 3


def compiled_bytes(compiled) -> Optional[dict]:
    """``{"arguments", "outputs", "aliased", "temporaries", "code", "total"}`` in bytes per device, or
    None when the backend gives no memory analysis."""
    try:
        ma = compiled.memory_analysis()
    except Exception:  # not implemented by every backend / JAX version
        return None
    if ma is None:
        return None
    get = lambda name: int(getattr(ma, name, 0) or 0)  # noqa: E731
    out = {"arguments": get("argument_size_in_bytes"), "outputs": get("output_size_in_bytes"),
           "aliased": get("alias_size_in_bytes"), "temporaries": get("temp_size_in_bytes"),
           "code": get("generated_code_size_in_bytes")}
    out["total"] = out["arguments"] + out["outputs"] - out["aliased"] + out["temporaries"] + out["code"]
    return out


LIMIT_ENV = "TRAINER_DEVICE_MEMORY_LIMIT"


def _read_int(path: str) -> Optional[int]:
    try:
        with open(path) as f:
            text = f.read().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None  # "max" (no cgroup limit) -> None


def host_available_bytes(meminfo: str = "/proc/meminfo", cgroup: str = "/sys/fs/cgroup") -> Optional[int]:
    """``min(MemAvailable, cgroup limit - cgroup usage)`` in bytes (cgroup v2, else v1), None when unknown."""
    found = []
    try:
        with open(meminfo) as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    found.append(int(line.split()[1]) * 1024)
                    break
    except OSError:
        pass
    for limit_file, usage_file in (("memory.max", "memory.current"),
                                   ("memory/memory.limit_in_bytes", "memory/memory.usage_in_bytes")):
        limit, usage = _read_int(os.path.join(cgroup, limit_file)), _read_int(os.path.join(cgroup, usage_file))
        if limit is not None and usage is not None and limit < 1 << 60:  # v1 "no limit" is a huge number
            found.append(max(limit - usage, 0))
            break
    return min(found) if found else None


def device_limit(device, num_local_devices: Optional[int] = None) -> Optional[int]:
    """Bytes one device may use: ``$TRAINER_DEVICE_MEMORY_LIMIT`` when set; else
    ``device.memory_stats()["bytes_limit"]``; else, on a CPU backend, :func:`host_available_bytes`
    divided by the ``num_local_devices`` that share it (default: ``jax.local_device_count()``); None
    when unknown."""
    env = os.environ.get(LIMIT_ENV)
    if env:
        try:
            return int(float(env))
        except ValueError:
            raise ConfigError(f"{LIMIT_ENV}={env!r} is not a number of bytes") from None
    try:
        stats = device.memory_stats()
    except Exception:
        stats = None
    limit = stats.get("bytes_limit") if stats else None
    if limit:
        return int(limit)
    if getattr(device, "platform", None) == "cpu":
        host = host_available_bytes()
        if num_local_devices is None:
            import jax

            num_local_devices = jax.local_device_count()
        return host // max(1, num_local_devices) if host else None
    return None


def peak_bytes_in_use(device) -> Optional[int]:
    """``device.memory_stats()["peak_bytes_in_use"]`` when the backend reports it."""
    try:
        stats = device.memory_stats()
    except Exception:
        return None
    return int(stats["peak_bytes_in_use"]) if stats and stats.get("peak_bytes_in_use") else None


def check_fits(estimate: Optional[dict], limit: Optional[int], *, per_device_batch_size: int, accum: int,
               remat: str, seq_len: int, limit_source: str = "") -> str:
    """Raise ConfigError when ``estimate["total"] > limit``; returns a one-line summary otherwise.

    Either may be None (no analysis, unknown device memory): nothing is checked then.
    """
    if estimate is None:
        return "no memory analysis from this backend; not checked"
    need = estimate["total"]
    summary = (f"{need / GiB:.2f} GiB per device (XLA estimate: arguments {estimate['arguments'] / GiB:.2f}, "
               f"temporaries {estimate['temporaries'] / GiB:.2f}, outputs not aliased "
               f"{(estimate['outputs'] - estimate['aliased']) / GiB:.2f})")
    if limit is None:
        return summary + "; device memory unknown, not checked"
    where = f" ({limit_source})" if limit_source else ""
    if need > limit:
        hints = [f"lower training.per_device_batch_size (now {per_device_batch_size} sequences of {seq_len} "
                 f"tokens per device; grad_accum_steps, now {accum}, follows)"]
        if remat == "none":
            hints.append("set model.remat=full (recomputes each layer's activations in the backward pass)")
        hints.append(f"shorten data.max_seq_length (now {seq_len})")
        raise ConfigError(
            f"the training step needs about {need / GiB:.1f} GiB per device but the device has "
            f"{limit / GiB:.1f} GiB{where} ({summary}); " + " or ".join(hints)
        )
    if need > 0.9 * limit:
        log.warning("the training step needs %s of the device's %.1f GiB: close to the limit", summary, limit / GiB)
    return summary + f" of {limit / GiB:.1f} GiB"
