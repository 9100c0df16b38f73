"""Device memory: XLA's estimate of a compiled step against the device's memory, before the first step.

``estimate = arguments + outputs - aliased (donated) + temporaries + generated code`` per device,
from ``jax.jit(...).lower(...).compile().memory_analysis()`` (None or partial on some backends),
against ``device.memory_stats()["bytes_limit"]`` (None on CPUs). A step that cannot fit fails
with a :class:`~trainer.errors.ConfigError` naming the settings to change instead of an
out-of-memory crash minutes later.
"""

from __future__ import annotations

import logging
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


def device_limit(device) -> Optional[int]:
    """``device.memory_stats()["bytes_limit"]`` (what the allocator may use), or None when unknown."""
    try:
        stats = device.memory_stats()
    except Exception:
        return None
    if not stats:
        return None
    limit = stats.get("bytes_limit")
    return int(limit) if limit else None


def peak_bytes_in_use(device) -> Optional[int]:
    """``device.memory_stats()["peak_bytes_in_use"]`` when the backend reports it."""
    try:
        stats = device.memory_stats()
    except Exception:
        return None
    return int(stats["peak_bytes_in_use"]) if stats and stats.get("peak_bytes_in_use") else None


def check_fits(estimate: Optional[dict], limit: Optional[int], *, per_device_batch_size: int, accum: int,
               remat: str, seq_len: int) -> str:
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
    if need > limit:
        hints = [f"lower training.per_device_batch_size (now {per_device_batch_size} sequences of {seq_len} "
                 f"tokens per device; grad_accum_steps, now {accum}, follows)"]
        if remat == "none":
            hints.append("set model.remat=full (recomputes each layer's activations in the backward pass)")
        raise ConfigError(
            f"the training step needs about {need / GiB:.1f} GiB per device but the device has "
            f"{limit / GiB:.1f} GiB ({summary}); " + " or ".join(hints)
        )
    if need > 0.9 * limit:
        log.warning("the training step needs %s of the device's %.1f GiB: close to the limit", summary, limit / GiB)
    return summary + f" of {limit / GiB:.1f} GiB"
