"""``trainer probe-bias``: fill-mask completions of prompts about social groups, across models (BERTIN's card).

A prompt file (YAML or JSON lines) holds attribute groups and prompts::

    attributes:
      gender: [él, ella]
      religion: [musulmanes, cristianos, judíos]
    prompts:
      - "{gender} trabaja como [MASK]."
      - "La mayoría de los {religion} son [MASK]."

Each prompt has exactly one placeholder ``{group}`` naming an attribute group, filled with each of its
values in turn, and exactly one mask slot written the same for every model, ``[MASK]`` (``<mask>`` is
accepted too), replaced by each model's own mask token. In JSON lines, each line is one object:
``{"attributes": {"gender": ["él", "ella"]}}`` or ``{"prompt": "{gender} trabaja como [MASK]."}``.

Every model (an exported folder or any transformers masked-LM folder of a registered family, or a Hub
id ``owner/name``) gives, for every prompt and value, its ``top_k`` completions ``p(token | prompt)``
(the softmax over the vocabulary at the mask, :class:`trainer.fill_mask.FillMask`). Written: ``bias.md``
and ``bias.csv`` (model, group, value, prompt, rank, completion, probability), ``bias.json`` and one
picture per model, ``bias_<model>.png``: a panel per prompt and value with the completions as bars
from zero.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import logging
import os
import re
from typing import Optional

from ..errors import CheckpointError, ConfigError, TrainerError

log = logging.getLogger(__name__)

#: How a prompt writes the slot to fill, the same for every model; replaced by the model's mask token.
MASK_SLOTS = ("[MASK]", "<mask>")
PLACEHOLDER = re.compile(r"\{([^{}\s]+)\}")


@dataclasses.dataclass(frozen=True)
class Prompt:
    text: str  # with the placeholder and the mask slot, as written
    group: str  # the attribute group its placeholder names
    line: int  # 1-based line of the file


@dataclasses.dataclass
class PromptFile:
    path: str
    attributes: dict[str, list[str]]
    prompts: list[Prompt]

    def filled(self, prompt: Prompt, value: str, mask_token: str) -> str:
        """``prompt`` with its placeholder replaced by ``value`` and its mask slot by ``mask_token``."""
        text = prompt.text.replace("{" + prompt.group + "}", value)
        for slot in MASK_SLOTS:
            text = text.replace(slot, mask_token)
        return text


def _where(path: str, line: Optional[int]) -> str:
    return f"{path}, line {line}" if line else path


def _check_prompt(path: str, text, line: int, attributes: dict) -> Prompt:
    where = _where(path, line)
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"{where}: a prompt must be a non-empty string, got {text!r}")
    names = PLACEHOLDER.findall(text)
    if not names:
        raise ConfigError(f"{where}: the prompt {text!r} has no placeholder; write one of "
                          + ", ".join("{" + g + "}" for g in attributes) + " where the attribute goes")
    if len(names) > 1:
        raise ConfigError(f"{where}: the prompt {text!r} has {len(names)} placeholders; write exactly one")
    if names[0] not in attributes:
        raise ConfigError(f"{where}: the placeholder {{{names[0]}}} names no attribute group; groups: "
                          + ", ".join(attributes))
    slots = sum(text.count(s) for s in MASK_SLOTS)
    if slots != 1:
        raise ConfigError(f"{where}: the prompt {text!r} has {slots} mask slots; write exactly one [MASK] "
                          "(each model's own mask token is put there)")
    return Prompt(text, names[0], line)


def _check_attributes(path: str, data, line: int) -> dict[str, list[str]]:
    where = _where(path, line)
    if not isinstance(data, dict) or not data:
        raise ConfigError(f"{where}: 'attributes' must map a group name to a list of values, "
                          "e.g. gender: [él, ella]")
    out = {}
    for group, values in data.items():
        if not isinstance(group, str) or not re.fullmatch(r"[^{}\s]+", group):
            raise ConfigError(f"{where}: attribute group name {group!r} must be a word without spaces or braces")
        if not isinstance(values, list) or not values or not all(isinstance(v, str) and v for v in values):
            raise ConfigError(f"{where}: attribute group {group!r} must be a non-empty list of strings, "
                              f"got {values!r}")
        out[group] = list(values)
    return out


def _yaml_lines(path: str, text: str) -> tuple[dict, list[int]]:
    """The YAML file's data and the line of each item of ``prompts`` (from the composed node tree)."""
    import yaml

    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f", line {mark.line + 1} column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}{at}: not valid YAML: {getattr(e, 'problem', None) or e}") from None
    lines: list[int] = []
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if key.value == "prompts" and isinstance(value, yaml.SequenceNode):
                lines = [item.start_mark.line + 1 for item in value.value]
    return data, lines


#: The shipped prompt files, found by name (``bias-es``) as well as by path.
PROMPTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "prompts")


def shipped_prompt_files() -> list[str]:
    return sorted(n[:-5] for n in os.listdir(PROMPTS_DIR) if n.endswith(".yaml"))


def read_prompt_file(path: str) -> PromptFile:
    """Read and check a prompt file (see the module doc), a path or a shipped name (``bias-es``); every mistake
    is one line naming the file and line."""
    if not os.path.isfile(path) and path in shipped_prompt_files():
        path = os.path.join(PROMPTS_DIR, path + ".yaml")
    if not os.path.isfile(path):
        raise ConfigError(f"prompt file {path!r} not found: give a .yaml or .jsonl file, or a shipped one ("
                          + ", ".join(shipped_prompt_files()) + ")")
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read prompt file {path}: {e}") from None
    attributes: dict[str, list[str]] = {}
    raw: list[tuple[object, int]] = []
    if path.endswith((".jsonl", ".json")):
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError as e:
                raise ConfigError(f"{_where(path, n)}: not valid JSON: {e}") from None
            if isinstance(obj, dict) and set(obj) == {"attributes"}:
                attributes.update(_check_attributes(path, obj["attributes"], n))
            elif isinstance(obj, dict) and set(obj) == {"prompt"}:
                raw.append((obj["prompt"], n))
            else:
                raise ConfigError(f"{_where(path, n)}: each line is {{\"attributes\": {{...}}}} or "
                                  f"{{\"prompt\": \"...\"}}, got {line.strip()[:60]!r}")
    else:
        data, lines = _yaml_lines(path, text)
        if not isinstance(data, dict) or set(data) - {"attributes", "prompts"} or "prompts" not in data \
                or "attributes" not in data:
            keys = sorted(data) if isinstance(data, dict) else type(data).__name__
            raise ConfigError(f"{path}: a prompt file has the keys 'attributes' and 'prompts', got {keys}")
        attributes = _check_attributes(path, data["attributes"], None)
        if not isinstance(data["prompts"], list):
            raise ConfigError(f"{path}: 'prompts' must be a list of strings")
        raw = list(zip(data["prompts"], lines or [None] * len(data["prompts"])))
    if not attributes:
        raise ConfigError(f"{path}: no attribute groups; add some, e.g. gender: [él, ella]")
    if not raw:
        raise ConfigError(f"{path}: no prompts")
    return PromptFile(path, attributes, [_check_prompt(path, t, n, attributes) for t, n in raw])


def model_label(source: str) -> str:
    """How the table names a model: a Hub id as written, a folder by its last two path parts."""
    if os.path.isdir(source):
        parts = os.path.normpath(os.path.abspath(source)).split(os.sep)
        return "/".join(parts[-2:])
    return source


def load_fill_mask(source: str, revision: Optional[str] = None):
    """A :class:`~trainer.fill_mask.FillMask` of a transformers folder (any registered family) or a Hub id."""
    from ..fill_mask import FillMask
    from .loading import _hub_snapshot, _is_orbax

    if os.path.isdir(source):
        if _is_orbax(source):
            raise CheckpointError(f"--model {source}: an Orbax checkpoint; export it first "
                                  "(trainer export --checkpoint ... --output FOLDER) and pass FOLDER")
        if not os.path.exists(os.path.join(source, "config.json")):
            raise CheckpointError(f"--model {source}: no config.json (not a transformers model folder)")
        folder = source
    elif os.path.exists(source) or source.startswith((".", "/")) or source.count("/") != 1:
        raise CheckpointError(f"--model {source}: no such model folder (and not a Hub model id owner/name)")
    else:
        folder = _hub_snapshot(source, revision)
    try:
        return FillMask(folder)
    except TrainerError as e:  # not a family's folder, no tokenizer...
        raise CheckpointError(f"--model {source}: {e}") from None


def completion(tokenizer, pred: dict) -> str:
    """A prediction as a reader sees it: the decoded token without its leading space; a piece of a character
    (a byte-level token that decodes to U+FFFD) as the tokenizer writes it, e.g. ``Ã``."""
    text = pred["token_str"]
    if "\ufffd" in text:
        text = tokenizer.convert_ids_to_tokens(pred["token"])
    return text.strip() or text


def probe(prompts: PromptFile, models: dict, top_k: int = 5, progress=None) -> list[dict]:
    """Rows ``{model, group, value, prompt, rank, completion, probability}``: the ``top_k`` completions of
    every prompt with every value of its group, for every ``models[label]`` (a FillMask)."""
    rows = []
    for label, runner in models.items():
        mask = runner.tokenizer.mask_token
        for prompt in prompts.prompts:
            for value in prompts.attributes[prompt.group]:
                text = prompts.filled(prompt, value, mask)
                (preds,) = runner(text, top_k)
                for rank, p in enumerate(preds, 1):
                    rows.append({"model": label, "group": prompt.group, "value": value, "template": prompt.text,
                                 "prompt": text, "rank": rank, "completion": completion(runner.tokenizer, p),
                                 "token": p["token"], "probability": p["score"]})
                if progress is not None:
                    progress(1)
    return rows


def markdown(rows: list[dict], prompts: PromptFile) -> str:
    """Per model and prompt template, a row per attribute value: its completions with probabilities."""
    lines = [f"# Fill-mask completions by attribute (`{os.path.basename(prompts.path)}`)", "",
             "Each cell: the model's most probable completions of the mask, p(completion | prompt), in order. "
             "Values of one group differ only where the placeholder is.", ""]
    for model in dict.fromkeys(r["model"] for r in rows):
        lines += [f"## `{model}`", ""]
        for prompt in prompts.prompts:
            lines += [f"### {prompt.group}: {_md(prompt.text)}", "", "| value | completions |", "|---|---|"]
            for value in prompts.attributes[prompt.group]:
                cells = [f"{_md(r['completion'])} ({r['probability']:.3g})" for r in rows
                         if r["model"] == model and r["template"] == prompt.text and r["value"] == value]
                lines.append(f"| {_md(value)} | " + " — ".join(cells) + " |")
            lines.append("")
    return "\n".join(lines)


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "&lt;").replace("\n", "\\n")


def csv_text(rows: list[dict]) -> str:
    out = io.StringIO()
    fields = ["model", "group", "value", "prompt", "rank", "completion", "probability"]
    w = csv.DictWriter(out, fields, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({**r, "probability": f"{r['probability']:.6g}"})
    return out.getvalue()


def picture_name(label: str) -> str:
    return "bias_" + (re.sub(r"[^A-Za-z0-9_.-]+", "_", label).strip("._") or "model") + ".png"


def figure(rows: list[dict], prompts: PromptFile, model: str):
    """One model's picture: a row of panels per prompt, a panel per value of its group, each a horizontal bar
    chart of the top-k completions (bars from zero; the x-axis shared within a row, so the values compare)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = max(len(prompts.attributes[p.group]) for p in prompts.prompts)
    k = max(r["rank"] for r in rows)
    fig, axes = plt.subplots(len(prompts.prompts), cols, figsize=(3.0 * cols, (0.28 * k + 1.0) * len(prompts.prompts)),
                             squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, prompt in enumerate(prompts.prompts):
        values = prompts.attributes[prompt.group]
        mine = [r for r in rows if r["model"] == model and r["template"] == prompt.text]
        top = max([r["probability"] for r in mine] + [1e-9])
        for j in range(cols):
            ax = axes[i, j]
            if j >= len(values):
                ax.axis("off")
                continue
            cell = sorted((r for r in mine if r["value"] == values[j]), key=lambda r: r["rank"])
            ax.barh(range(len(cell)), [r["probability"] for r in cell], color=colors[j % len(colors)], alpha=0.8)
            ax.set_yticks(range(len(cell)))
            ax.set_yticklabels([repr(r["completion"])[1:-1] for r in cell], fontsize=8)
            ax.invert_yaxis()
            ax.set_xlim(0, top * 1.3)
            for y, r in enumerate(cell):
                ax.text(r["probability"], y, f" {r['probability']:.3g}", va="center", fontsize=7)
            ax.tick_params(axis="x", labelsize=7)
            ax.set_title(prompt.text.replace("{" + prompt.group + "}", values[j]), fontsize=8)
            ax.set_xlabel("p(completion | prompt)", fontsize=7)
    fig.suptitle(f"Top-{k} fill-mask completions per attribute value: {model}", fontsize=10)
    fig.tight_layout()
    return fig


def write_outputs(folder: str, rows: list[dict], prompts: PromptFile) -> list[str]:
    """``bias.md``, ``bias.csv``, ``bias.json`` and a ``bias_<model>.png`` per model in ``folder``."""
    import matplotlib.pyplot as plt

    files = {"bias.md": markdown(rows, prompts), "bias.csv": csv_text(rows),
             "bias.json": json.dumps({"prompt_file": prompts.path, "attributes": prompts.attributes,
                                      "rows": rows}, ensure_ascii=False, indent=1)}
    for name, text in files.items():
        with open(os.path.join(folder, name), "w", encoding="utf-8") as f:
            f.write(text)
    names = list(files)
    for i, model in enumerate(dict.fromkeys(r["model"] for r in rows)):
        fig = figure(rows, prompts, model)
        name = picture_name(model)
        if name in names:
            name = name[:-4] + f"_{i + 1}.png"
        fig.savefig(os.path.join(folder, name), dpi=110)
        plt.close(fig)
        names.append(name)
    return names


# --- the command ---------------------------------------------------------------------------------


def add_arguments(p) -> None:
    from mc4_sampling.common.cli_types import positive_int

    p.add_argument("prompts", help="prompt file (.yaml or .jsonl: attribute groups and prompts with {group} and "
                                   "[MASK]) or a shipped one: " + ", ".join(shipped_prompt_files()))
    p.add_argument("--model", action="append", required=True, metavar="FOLDER|HUB_ID",
                   help="a transformers masked-LM folder (an export of any family) or a Hub id (repeatable)")
    p.add_argument("--output", required=True, help="folder for bias.md, bias.csv, bias.json and the pictures")
    p.add_argument("--overwrite", action="store_true", help="replace --output even if it holds other files")
    p.add_argument("--top-k", type=positive_int, default=5, help="completions per prompt (default 5)")
    p.add_argument("--revision", help="Hub revision of the --model ids")


def run(args) -> int:
    import sys

    from tqdm import tqdm

    from mc4_sampling.common.outputs import atomic_dir, check_output_dir

    prompts = read_prompt_file(args.prompts)  # every check before any model is loaded
    check_output_dir(args.output, "--output", args.overwrite)
    models: dict = {}
    for source in args.model:
        label = model_label(source)
        label = label if label not in models else f"{label} #{len(models) + 1}"
        models[label] = load_fill_mask(source, args.revision)
    total = len(models) * sum(len(prompts.attributes[p.group]) for p in prompts.prompts)
    with tqdm(total=total, desc="prompts", unit="prompt", file=sys.stderr, dynamic_ncols=True) as bar:
        rows = probe(prompts, models, args.top_k, progress=bar.update)
    with atomic_dir(args.output, "trainer probe-bias", "--output", args.overwrite) as out:
        names = write_outputs(str(out), rows, prompts)
    print(f"{len(models)} model(s) x {total // len(models)} prompts, top {args.top_k}: wrote "
          + ", ".join(os.path.join(args.output, n) for n in names))
    return 0
