"""Model FLOPs utilisation (MFU) arithmetic.

Convention: MFU counts the FLOPs the model *needs* per training token,

    6 x encoder matmul params + 6 x head matmul params x f + attention

(the terms are the model family's, :class:`trainer.models.base.ModelFamily`; RoBERTa's
attention is ``12 x layers x L x hidden``, ModernBERT's local layers count their window only)

with ``f`` the predicted fraction of the positions: ``mlm_probability`` (0.15) when the LM head
runs on the masked positions only (the default; the few gathered slots left empty are not
counted), 1 when it runs at every position (``training.max_predictions_per_seq: 0``). Embedding
lookups, biases, LayerNorms, softmax and rematerialisation are not counted. RoBERTa-base at 128:
759 MFLOP/token with the full head, 559 with the head on 15 % of the positions (512: 801 and 602).
"""

from __future__ import annotations

from typing import Optional

from .models import family_of

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


def encoder_matmul_params(spec) -> int:
    """Encoder weights used in matrix multiplications (RoBERTa: per layer ``4 H^2`` (Q, K, V, output)
    ``+ 2 H I`` (FFN); ModernBERT: ``4 H^2 + 3 H I``, GeGLU)."""
    return family_of(spec).encoder_matmul_params(spec)


def head_matmul_params(spec) -> int:
    """LM-head weights used in matrix multiplications: ``H^2`` (dense) ``+ V H`` (the tied decoder,
    ``V`` the real vocabulary: the padding rows are not needed)."""
    return family_of(spec).head_matmul_params(spec)


def matmul_params(spec) -> int:
    """Weights used in matrix multiplications when the head runs at every position (encoder + head).

    Embedding lookups, biases and LayerNorms are not matmuls.
    """
    return encoder_matmul_params(spec) + head_matmul_params(spec)


def predicted_fraction(max_predictions, mlm_probability: float) -> float:
    """``f`` of :func:`flops_per_token`: ``mlm_probability`` with the head on the masked positions
    (``max_predictions`` set), 1 with the head at every position (``max_predictions`` None)."""
    return 1.0 if max_predictions is None else float(mlm_probability)


def flops_per_token(spec, seq_len: int, predicted: float = 1.0) -> float:
    """Training FLOPs per token: ``6 * encoder + 6 * head * predicted + attention`` (RoBERTa's attention:
    ``12 * layers * seq_len * hidden``).

    (2 for multiply-add x 3 for forward + backward; the last term is attention's QK^T and AV;
    ``predicted``: the fraction of the positions the head runs on, :func:`predicted_fraction`.)
    RoBERTa-base at length 128: about 759 MFLOP per token with the full head, 559 with 15 %.
    """
    return (6.0 * encoder_matmul_params(spec) + 6.0 * head_matmul_params(spec) * predicted
            + family_of(spec).attention_flops(spec, seq_len))


def peak_flops(device_kind: str) -> Optional[float]:
    """Peak dense bf16 FLOP/s for a device kind, or None when unknown (CPUs, unlisted GPUs)."""
    for name, peak in PEAK_BF16_FLOPS.items():
        if name.lower() in device_kind.lower():
            return peak
    return None


def mfu(tokens_per_second: float, spec, seq_len: int, device_kind: str,
        num_devices: int, predicted: float = 1.0) -> Optional[float]:
    """``tokens/s * flops_per_token / (num_devices * peak)``; None when the peak is unknown."""
    peak = peak_flops(device_kind)
    if peak is None:
        return None
    return tokens_per_second * flops_per_token(spec, seq_len, predicted) / (num_devices * peak)
