"""Model FLOPs utilisation (MFU) arithmetic."""

from __future__ import annotations

from typing import Optional

from .model import RobertaSpec

#: Dense bf16 peak FLOP/s per device (no sparsity), matched on ``jax.Device.device_kind``.
PEAK_BF16_FLOPS = {
    "H200": 989e12,
    "H100": 989e12,  # SXM; the PCIe card is 756e12
    "A100": 312e12,
    "L4": 121e12,
    "A10G": 70e12,
    "V100": 125e12,
    "TPU v6": 918e12,
    "TPU v5p": 459e12,
    "TPU v5 lite": 197e12,
    "TPU v5e": 197e12,
    "TPU v4": 275e12,
    "TPU v3": 123e12,
}


def matmul_params(spec: RobertaSpec) -> int:
    """Weights used in matrix multiplications, per token.

    Per layer ``4 H^2`` (Q, K, V, output) ``+ 2 H I`` (FFN); LM head ``H^2`` (dense) ``+ V H``
    (the tied decoder, computed at every position). Embedding lookups, biases and LayerNorms
    are not matmuls.
    """
    h, i = spec.hidden_size, spec.intermediate_size
    return spec.num_layers * (4 * h * h + 2 * h * i) + h * h + spec.vocab_size * h


def flops_per_token(spec: RobertaSpec, seq_len: int) -> float:
    """Training FLOPs per token: ``6 * matmul_params + 12 * layers * seq_len * hidden``.

    (2 for multiply-add x 3 for forward + backward; the second term is attention's QK^T and AV.)
    RoBERTa-base at length 128: about 759 MFLOP per token.
    """
    return 6.0 * matmul_params(spec) + 12.0 * spec.num_layers * seq_len * spec.hidden_size


def peak_flops(device_kind: str) -> Optional[float]:
    """Peak dense bf16 FLOP/s for a device kind, or None when unknown (CPUs, unlisted GPUs)."""
    for name, peak in PEAK_BF16_FLOPS.items():
        if name.lower() in device_kind.lower():
            return peak
    return None


def mfu(tokens_per_second: float, spec: RobertaSpec, seq_len: int, device_kind: str,
        num_devices: int) -> Optional[float]:
    """``tokens/s * flops_per_token / (num_devices * peak)``; None when the peak is unknown."""
    peak = peak_flops(device_kind)
    if peak is None:
        return None
    return tokens_per_second * flops_per_token(spec, seq_len) / (num_devices * peak)
