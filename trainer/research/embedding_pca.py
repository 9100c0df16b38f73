"""The PCA of a model's word embeddings, coloured by a label per token (``trainer stats --labels FILE``).

The label file is a TSV of ``token<TAB>label`` lines, optionally after a header whose first field is ``token``
(its second field names the labels, e.g. ``relation``): ``trainer generate-pcfg`` writes one beside its
corpus (``labels.tsv``: the dependency relation of each artificial token). Each token is looked up in the
checkpoint's tokenizer; the rows of the labelled tokens are projected on their first two principal
components (:func:`pca_2d`, numpy's SVD) and drawn as one panel per checkpoint, one colour per label
(the artificial-pretraining blog's "PCA projection of the word embeddings, coloured by dependency relation").
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..errors import ConfigError

#: the colours of the labels, most frequent first (matplotlib's tab20, then four dark ones: the generator's 20
#: relations and its "other" each get their own); further labels are drawn grey as "other labels"
PALETTE = ("#1f77b4", "#aec7e8", "#ff7f0e", "#ffbb78", "#2ca02c", "#98df8a", "#d62728", "#ff9896", "#9467bd",
           "#c5b0d5", "#8c564b", "#c49c94", "#e377c2", "#f7b6d2", "#7f7f7f", "#c7c7c7", "#bcbd22", "#dbdb8d",
           "#17becf", "#9edae5", "#000000", "#6b6b00", "#00006b", "#6b006b")
MAX_COLOURS = len(PALETTE)


@dataclass
class Labels:
    name: str  # what the labels are (the header's second field; "label" without a header)
    by_token: dict  # token -> label


@dataclass
class Projection:
    title: str  # the checkpoint's label
    coords: np.ndarray  # (n, 2)
    labels: list  # the label of each row
    explained: tuple  # the fraction of the variance of each component

#: the first column's name in a label file's optional header line (``token<TAB>relation``)
LABELS_HEADER = "token"


def read_labels(path: str) -> Labels:
    """``token<TAB>label`` lines (a first line ``token<TAB>NAME`` is the header); a bad line is one error naming
    the file and line."""
    if not os.path.isfile(path):
        raise ConfigError(f"--labels: no file {path!r} (a TSV of token<TAB>label lines, e.g. the labels.tsv that "
                          "`trainer generate-pcfg` writes)")
    name, out = "label", {}
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line:
                continue
            parts = line.split("\t")
            if len(parts) != 2 or not parts[0] or not parts[1]:
                raise ConfigError(f"--labels: line {number} of {path} is not 'token<TAB>label' ({line[:60]!r})")
            if number == 1 and parts[0] == LABELS_HEADER:
                name = parts[1]
                continue
            out[parts[0]] = parts[1]
    if not out:
        raise ConfigError(f"--labels: {path} holds no token<TAB>label line")
    return Labels(name, out)


def pca_2d(x: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
    """The rows of ``x`` on its first two principal components: with ``X_c = x - mean(x)`` and the SVD
    ``X_c = U S V^T``, the coordinates ``X_c V[:, :2] = U[:, :2] S[:2]`` (each component's sign fixed so that its
    largest loading is positive), and the explained fractions ``S_k^2 / sum S^2``."""
    xc = np.asarray(x, np.float64) - np.asarray(x, np.float64).mean(axis=0)
    u, s, vt = np.linalg.svd(xc, full_matrices=False)
    k = min(2, len(s))
    signs = np.sign(vt[np.arange(k), np.abs(vt[:k]).argmax(axis=1)])
    signs[signs == 0] = 1
    coords = u[:, :k] * s[:k] * signs
    if k < 2:
        coords = np.pad(coords, ((0, 0), (0, 2 - k)))
    total = float((s ** 2).sum()) or 1.0
    explained = tuple(float(v) for v in (s[:2] ** 2) / total) + (0.0,) * (2 - k)
    return coords, explained


def project(title: str, embeddings: np.ndarray, tokenizer, labels: Labels, source: str) -> Projection:
    """The PCA of the rows of the labelled tokens the tokenizer knows (``tokenizer``: a transformers tokenizer)."""
    vocab = tokenizer.get_vocab()
    rows = [(vocab[t], lab) for t, lab in labels.by_token.items() if t in vocab and vocab[t] < len(embeddings)]
    if len(rows) < 3:
        raise ConfigError(f"--labels: {len(rows)} of its {len(labels.by_token)} tokens are in the tokenizer of "
                          f"{source}; give the labels of this model's vocabulary (or --tokenizer FOLDER)")
    ids = np.asarray([i for i, _ in rows])
    coords, explained = pca_2d(embeddings[ids])
    return Projection(title, coords, [lab for _, lab in rows], explained)


def plot_pca(projections: list[Projection], path: str, label_name: str = "label", title: Optional[str] = None) -> str:
    """One panel per checkpoint, a point per labelled token in its label's colour (the :data:`MAX_COLOURS` most
    frequent labels; the rest grey), one legend for all panels; a PNG at ``path`` (written whole or not at all)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    from mc4_sampling.common.outputs import atomic_path

    counts: dict = {}  # tokens per label (in the panel that has most of them)
    for p in projections:
        labs, n = np.unique(np.asarray(p.labels), return_counts=True)
        for lab, k in zip(labs.tolist(), n.tolist()):
            counts[lab] = max(counts.get(lab, 0), k)
    ranked = sorted(counts, key=lambda lab: (-counts[lab], lab))
    shown = ranked[:MAX_COLOURS]
    colour = dict(zip(shown, PALETTE))
    n = len(projections)
    cols = min(3, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols + 2.2, 4.3 * rows), squeeze=False)
    for ax, p in zip(axes.flat, projections):
        labs = np.asarray(p.labels)
        other = ~np.isin(labs, shown)
        if other.any():
            ax.scatter(p.coords[other, 0], p.coords[other, 1], s=6, color="#bbbbbb", alpha=0.6, linewidths=0)
        for lab in shown:  # the most frequent drawn first (below), the rare ones on top
            m = labs == lab
            if m.any():
                ax.scatter(p.coords[m, 0], p.coords[m, 1], s=7, color=colour[lab], alpha=0.75, linewidths=0)
        ax.set_title(p.title, fontsize=10)
        ax.set_xlabel(f"PC 1 ({100 * p.explained[0]:.1f} % of the variance)", fontsize=8)
        ax.set_ylabel(f"PC 2 ({100 * p.explained[1]:.1f} %)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.25)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    handles = [Line2D([], [], marker="o", linestyle="", color=colour[lab], markersize=6,
                      label=f"{lab} ({counts[lab]})") for lab in shown]
    if len(ranked) > len(shown):
        handles.append(Line2D([], [], marker="o", linestyle="", color="#bbbbbb", markersize=6,
                              label=f"{len(ranked) - len(shown)} other labels"))
    fig.legend(handles=handles, title=f"{label_name} (tokens)", loc="center left", bbox_to_anchor=(1.0, 0.5),
               fontsize=8, title_fontsize=9, frameon=False)
    fig.suptitle(title or f"Word embeddings: PCA, coloured by {label_name}", fontsize=12)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path
