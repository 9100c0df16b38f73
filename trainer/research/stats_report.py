"""``trainer stats CHECKPOINT...``: the weight statistics (:mod:`.weight_stats`) of several checkpoints side
by side, as a table and a PNG.

A checkpoint is an Orbax checkpoint folder (or one step in it, or a run folder), a transformers
folder, or ``random:CONFIG[@SEED]`` (a random initialisation of that config). The PNG: rows =
statistic, columns = module kind (the family's ``layer_modules``, then the parameters outside the
layers), x = layer, one colour per checkpoint; weights (kernels, LayerNorm scales) are solid lines;
biases get their own rows.

With ``--labels FILE`` (``token<TAB>label``, e.g. ``trainer generate-pcfg``'s ``labels.tsv``), a second PNG
(``--pca-output``): the PCA of each checkpoint's word embeddings, coloured by label (:mod:`.embedding_pca`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from ..errors import ConfigError
from ..models import get_family
from ..models.base import DEFAULT_TYPE
from .weight_stats import STAT_TITLES, STATS, param_stats

_LAYER = re.compile(r"(?:.*/)?layers_(\d+)/(.+)/([^/]+)$")


def _union(dicts) -> dict:
    out: dict = {}
    for d in dicts:
        out.update({k: v for k, v in d.items() if k not in out})
    return out


def _families(loaded) -> list:
    return [get_family(item.family) for item in loaded]

# ---------------------------------------------------------------------------------------------
# loading checkpoints of any kind


@dataclass
class Loaded:
    label: str
    stats: dict[str, dict[str, float]]
    num_layers: int
    family: str = DEFAULT_TYPE  # the model family (its module kinds and names)
    embeddings: Optional[np.ndarray] = None  # the word embeddings (kept for the PCA)
    tokenizer: Optional[str] = None  # the checkpoint's tokenizer folder (None: unknown, e.g. a random init)


def load_any(source: str) -> tuple[str, Any, Any]:
    """``(label, spec, numpy params)`` of a checkpoint folder/step, a transformers folder or ``random:CONFIG``."""
    return load_with_tokenizer(source)[:3]


def load_with_tokenizer(source: str) -> tuple[str, Any, Any, Optional[str]]:
    """:func:`load_any` and the checkpoint's tokenizer folder (a transformers folder: itself; a trainer checkpoint:
    the one it trained with, when still there; a random initialisation: its config's ``data.tokenizer``)."""
    import jax

    from ..errors import CheckpointError

    if source.startswith("random:"):
        from ..config_loading import load_config
        from ..models import family_of

        spec_text = source[len("random:"):]
        name, _, seed = spec_text.partition("@")
        if seed and not seed.isdigit():
            raise CheckpointError(f"{source}: the seed after @ must be an integer >= 0 (random:CONFIG[@SEED])")
        cfg = load_config(name)
        m = cfg.model
        family = family_of(m)
        spec = family.spec_from_config(m, vocab_size=m.vocab_size or 50265, pad_token_id=1, eos_token_id=2,
                                       backend="cpu")
        spec = _float32(spec)
        params = jax.tree.map(np.asarray, family.init_params(spec, jax.random.key(int(seed or cfg.training.seed))))
        return f"random init ({name})", spec, params, cfg.data.tokenizer
    if os.path.isfile(os.path.join(source, "config.json")):
        import json

        from ..models import family_of_hf_config

        with open(os.path.join(source, "config.json"), encoding="utf-8") as f:
            config = json.load(f)
        spec, params = family_of_hf_config(config).hf.import_pretrained(source)
        return os.path.basename(os.path.normpath(source)), spec, params, source
    from ..export import load_checkpoint_params

    if not os.path.exists(source):
        raise CheckpointError(f"{source}: no such checkpoint or model folder (or use random:CONFIG)")
    spec, params, meta, step = load_checkpoint_params(source)
    run = meta.get("config", {}).get("name") or os.path.basename(os.path.dirname(os.path.abspath(source)))
    tokenizer = meta.get("tokenizer_dir")
    return f"{run} step {step}", spec, params, tokenizer if tokenizer and os.path.isdir(tokenizer) else None


def _float32(spec):
    import dataclasses

    return dataclasses.replace(spec, dtype="float32", param_dtype="float32", attention_impl="xla")


def load_stats(source: str, label: Optional[str] = None) -> Loaded:
    from ..models import family_of
    from ..param_paths import flat_params

    name, spec, params, tokenizer = load_with_tokenizer(source)
    family = family_of(spec)
    words = flat_params(params).get("/".join(family.vocab_row_paths[0]))
    return Loaded(label or name, param_stats(params, spec.vocab_size, family), spec.num_layers, family.name,
                  None if words is None else np.asarray(words, np.float32)[: spec.vocab_size], tokenizer)


# ---------------------------------------------------------------------------------------------
# table and plot


def split_path(path: str) -> tuple[Optional[int], str, str]:
    """``(layer or None, module, leaf)``: ``layers_3/attention/self/query/kernel`` -> (3, attention/self/query,
    kernel)."""
    m = _LAYER.match(path)
    if m:
        return int(m.group(1)), m.group(2), m.group(3)
    module, _, leaf = path.rpartition("/")
    return None, module, leaf


def format_table(loaded: list[Loaded]) -> str:
    """One row per parameter (layer order), ``mean / std / max|w|`` of each checkpoint side by side."""
    paths: list[str] = []
    for item in loaded:
        paths += [p for p in item.stats if p not in paths]

    def order(p):
        layer, module, leaf = split_path(p)
        if layer is None:
            return (0 if "embeddings" in p else 2, 0, p)
        return (1, layer, f"{kinds.index(module) if module in kinds else 99:02d}{module}/{leaf}")

    kinds = list(_union(f.layer_modules for f in _families(loaded)))
    paths.sort(key=order)
    width = max(len(p) for p in paths)
    head = f"{'parameter':<{width}}" + "".join(f" | {item.label[:32]:^32}" for item in loaded)
    sub = f"{'':<{width}}" + " | {:>10} {:>10} {:>10}".format("mean", "std", "max|w|") * len(loaded)
    lines = [head, sub, "-" * len(sub)]
    for p in paths:
        row = f"{p:<{width}}"
        for item in loaded:
            s = item.stats.get(p)
            row += (" | {:>10.4g} {:>10.4g} {:>10.4g}".format(s["mean"], s["std"], s["max_abs"]) if s
                    else " | " + "-".center(32))
        lines.append(row)
    return "\n".join(lines)


def _is_weight(leaf: str) -> bool:
    return leaf in ("kernel", "scale", "embedding")


def plot(loaded: list[Loaded], path: str, title: Optional[str] = None) -> str:
    """The grid figure (see the module docstring) as a PNG at ``path``.

    Rows: each statistic for the weights (kernels, embeddings, LayerNorm scales), then for the
    biases (their scales differ by orders of magnitude, so they get their own axes); columns:
    module kinds, and the embeddings and LM head; x: layer; one colour per checkpoint.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    layer_modules = _union(f.layer_modules for f in _families(loaded))
    other_names = _union(f.other_names for f in _families(loaded))
    kinds = list(layer_modules)
    ncols = len(kinds) + 1
    rows = [(stat, part) for stat in STATS for part in ("weight", "bias")]
    fig, axes = plt.subplots(len(rows), ncols, figsize=(2.6 * ncols, 1.9 * len(rows) + 1.0), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    max_layers = max(item.num_layers for item in loaded)
    others = {part: [p for p in other_names if _is_weight(p.rsplit("/", 1)[1]) == (part == "weight")]
              for part in ("weight", "bias")}
    for ci, item in enumerate(loaded):
        color = colors[ci % len(colors)]
        per: dict[tuple[str, str], dict[int, dict]] = {}
        for p, s in item.stats.items():
            layer, module, leaf = split_path(p)
            if layer is not None:
                per.setdefault((module, "weight" if _is_weight(leaf) else "bias"), {})[layer] = s
        for ri, (stat, part) in enumerate(rows):
            for ki, kind in enumerate(kinds):
                by_layer = per.get((kind, part))
                if by_layer:
                    xs = sorted(by_layer)
                    axes[ri][ki].plot(xs, [by_layer[x][stat] for x in xs], color=color, marker="o", markersize=3,
                                      linewidth=1.3, alpha=0.9)
            names = others[part]
            xs = [i for i, p in enumerate(names) if p in item.stats]
            offset = (ci - (len(loaded) - 1) / 2) * 0.12
            axes[ri][-1].scatter([x + offset for x in xs], [item.stats[names[x]][stat] for x in xs], color=color,
                                 s=16, zorder=3)
    for ri, (stat, part) in enumerate(rows):
        for ki in range(ncols):
            ax = axes[ri][ki]
            ax.grid(True, alpha=0.3)
            ax.tick_params(labelsize=7)
            if ki < len(kinds):  # no zooming into noise: at least 10 % of the magnitude on the y axis
                lo, hi = ax.get_ylim()
                span = 0.1 * max(abs(lo), abs(hi))
                if hi - lo < span:
                    mid = (lo + hi) / 2
                    ax.set_ylim(mid - span / 2, mid + span / 2)
            ax.yaxis.get_offset_text().set_fontsize(7)
            if ri == 0:
                ax.set_title(layer_modules[kinds[ki]] if ki < len(kinds) else "embeddings & head", fontsize=10)
            if ki == 0:
                label = f"{STAT_TITLES[stat]}\n({'weights / LN scales' if part == 'weight' else 'biases'})"
                ax.set_ylabel(label, fontsize=9)
            if ki < len(kinds):
                ax.set_xlim(-0.5, max_layers - 0.5)
                step = 1 if max_layers <= 12 else max(1, max_layers // 6)
                ax.set_xticks(range(0, max_layers, step))
                if ri < len(rows) - 1:
                    ax.set_xticklabels([])
                else:
                    ax.set_xlabel("layer", fontsize=9)
            else:
                names = others[part]
                if stat != "mean" and part == "weight":  # LayerNorm scales (~1) next to embeddings (~0.02)
                    ax.set_yscale("symlog", linthresh=1e-2)
                ax.set_xlim(-0.6, len(names) - 0.4)
                ax.set_xticks(range(len(names)))
                ax.set_xticklabels([other_names[p] for p in names], rotation=35, ha="right", fontsize=6.5)
    handles = [Line2D([], [], color=colors[i % len(colors)], linewidth=2.5, marker="o", label=item.label)
               for i, item in enumerate(loaded)]
    fig.suptitle(title or "weight statistics per layer", fontsize=13, y=0.995)
    fig.legend(handles=handles, loc="upper center", ncol=min(len(handles), 5), fontsize=10, frameon=False,
               bbox_to_anchor=(0.5, 0.97))
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    from mc4_sampling.common.outputs import atomic_path

    with atomic_path(path) as tmp:  # whole or not at all
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    return path


def run_stats(sources: list[str], output: Optional[str] = None, labels: Optional[list[str]] = None,
              title: Optional[str] = None, label_file: Optional[str] = None, pca_output: Optional[str] = None,
              tokenizer: Optional[str] = None, say=print) -> tuple[str, Optional[str]]:
    """Load every checkpoint, return ``(table text, PNG path or None)``; with ``label_file`` and ``pca_output``,
    also the PCA of the word embeddings of each checkpoint whose tokenizer is known (``tokenizer``: for all)."""
    if labels and len(labels) != len(sources):
        raise ConfigError(f"--label given {len(labels)} times for {len(sources)} checkpoints")
    token_labels = None
    if label_file:
        from .embedding_pca import read_labels

        token_labels = read_labels(label_file)  # before loading any checkpoint
        if tokenizer and not os.path.isdir(tokenizer):
            raise ConfigError(f"--tokenizer: no tokenizer folder at {tokenizer!r}")
    loaded = [load_stats(s, labels[i] if labels else None) for i, s in enumerate(sources)]
    table = format_table(loaded)
    png = plot(loaded, output, title) if output else None
    if token_labels is not None and pca_output:
        say(f"PCA: {plot_embeddings(loaded, sources, token_labels, pca_output, tokenizer, say)}")
    return table, png


def plot_embeddings(loaded: list[Loaded], sources: list[str], token_labels, path: str,
                    tokenizer: Optional[str] = None, say=print) -> str:
    """The PCA picture (:mod:`.embedding_pca`) of every checkpoint whose tokenizer is known (``tokenizer``: the
    one of all); the others are named and left out."""
    from ..data.tokenizer import load_tokenizer
    from ..errors import CheckpointError
    from .embedding_pca import plot_pca, project

    projections = []
    for item, source in zip(loaded, sources):
        folder = tokenizer or item.tokenizer
        if folder is None or item.embeddings is None:
            say(f"PCA: {item.label} left out (its tokenizer is unknown; give --tokenizer FOLDER)")
            continue
        tok = load_tokenizer(folder, "--tokenizer" if tokenizer else f"the tokenizer of {source}", CheckpointError,
                             fast=False)
        projections.append(project(item.label, item.embeddings, tok, token_labels, source))
    if not projections:
        raise ConfigError("--labels: no checkpoint has a known tokenizer to look its tokens up; give --tokenizer "
                          "FOLDER")
    return plot_pca(projections, path, token_labels.name)


def add_arguments(parser) -> None:
    parser.add_argument("checkpoints", nargs="+", metavar="CHECKPOINT",
                        help="Orbax checkpoints folder, step folder or run folder; a transformers folder; "
                             "or random:CONFIG[@SEED] (a random initialisation)")
    parser.add_argument("--output", "-o", help="PNG to write (default: weight-stats.png; 'none': no plot)",
                        default="weight-stats.png")
    parser.add_argument("--label", action="append", default=[], help="name of each checkpoint in the table and "
                                                                      "legend (repeat once per checkpoint)")
    parser.add_argument("--title", help="title of the figure")
    parser.add_argument("--overwrite", action="store_true", help="replace existing --output / --pca-output files")
    parser.add_argument("--labels", metavar="FILE", help="token<TAB>label TSV (e.g. generate-pcfg's labels.tsv): "
                                                         "also draw the PCA of the word embeddings coloured by label")
    parser.add_argument("--pca-output", default="embeddings-pca.png",
                        help="PNG of the PCA with --labels (default: embeddings-pca.png)")
    parser.add_argument("--tokenizer", metavar="FOLDER", help="with --labels: the tokenizer of every checkpoint "
                        "(default: each checkpoint's own; needed for random:CONFIG)")


def run(args) -> int:
    from mc4_sampling.common.outputs import check_output_file

    output = None if args.output.lower() == "none" else args.output
    if output:  # before loading any checkpoint
        check_output_file(output, "--output", args.overwrite)
    if args.labels:
        check_output_file(args.pca_output, "--pca-output", args.overwrite)
    elif args.tokenizer:
        raise ConfigError("--tokenizer is for the PCA of the word embeddings: give --labels FILE too")
    table, png = run_stats(args.checkpoints, output, args.label or None, args.title, args.labels, args.pca_output,
                           args.tokenizer)
    print(table)
    if png:
        print(f"plot: {png}")
    return 0
