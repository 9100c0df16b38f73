"""``trainer finetune``, ``trainer evaluate`` and ``trainer compare`` (see README "Downstream evaluation")."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os

from mc4_sampling.common.cli_types import finite_float, int_at_least, non_negative_int, positive_float, positive_int
from mc4_sampling.common.outputs import OutputFile, check_output_dir, check_output_file, is_ours, mark_as_ours

from ..errors import CheckpointError, ConfigError
from .tasks import PRESETS, get_preset

log = logging.getLogger(__name__)


def _add_task_arguments(p: argparse.ArgumentParser, multiple: bool, required: bool = True) -> None:
    p.add_argument("--task", required=required, action="append" if multiple else "store", metavar="[NAME=]PRESET",
                   help=f"task preset{' (repeatable)' if multiple else ''}: {', '.join(PRESETS)}; NAME= names "
                        "the task in the results (e.g. two custom datasets side by side: sentiment=sequence-"
                        "classification)")
    p.add_argument("--tokenizer", help="tokenizer folder (default: the checkpoint's own)")
    d = p.add_argument_group("dataset (defaults: the preset's)")
    d.add_argument("--dataset", help="Hub dataset id or builder (parquet, json, csv)")
    d.add_argument("--dataset-config", help="dataset config name")
    d.add_argument("--revision", help="dataset revision (branch, tag or commit) to pin")
    d.add_argument("--data-files", action="append", metavar="SPLIT=PATH", help="local files of a split (repeatable)")
    d.add_argument("--text-columns", help="sequence tasks: one or two comma-separated text columns")
    d.add_argument("--tokens-column", help="token tasks: the column of word lists")
    d.add_argument("--label-column", help="the label (or tag list; question answering: answers) column")
    d.add_argument("--choices-column", help="multiple choice: a column of choice lists, or several columns, one "
                   "choice each (ending0,ending1,...)")
    d.add_argument("--train-split")
    d.add_argument("--eval-split")
    d.add_argument("--conll-files", metavar="URL|FOLDER", help="ner / pos presets: base URL or folder of the raw "
                   "CoNLL-2002 files (esp.train, esp.testa, esp.testb; default $TRAINER_CONLL2002_URL or "
                   "trainer.finetune.conll.CONLL2002_URL)")
    h = p.add_argument_group("training (defaults: the preset's)")
    h.add_argument("--max-length", type=int_at_least(8))
    h.add_argument("--doc-stride", type=non_negative_int, help="question answering: tokens shared by consecutive "
                   "windows of a long context (default 128)")
    h.add_argument("--max-answer-length", type=positive_int, help="question answering: longest answer, in tokens "
                   "(default 30)")
    h.add_argument("--n-best-size", type=positive_int, help="question answering: start and end candidates per "
                   "window (default 20)")
    h.add_argument("--batch-size", type=positive_int)
    h.add_argument("--epochs", type=positive_float)
    h.add_argument("--learning-rate", type=finite_float(0))
    h.add_argument("--warmup-ratio", type=finite_float(0, 1))
    h.add_argument("--weight-decay", type=finite_float(0))
    h.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"), help="compute dtype")
    h.add_argument("--eval-batch-size", type=positive_int, default=64)
    h.add_argument("--max-steps", type=positive_int, help="cap on the optimizer steps (smoke tests)")


def task_spec(spec: str) -> tuple[str, str]:
    """``(task name, preset name)`` of ``--task [NAME=]PRESET`` (no NAME: the preset's name)."""
    name, sep, preset = spec.partition("=")
    if not sep:
        return spec, spec
    if not name or not preset or "/" in name:
        raise ConfigError(f"--task takes PRESET or NAME=PRESET (NAME without '/'), not {spec!r}")
    return name, preset


def _task(args, name: str):
    preset = get_preset(name)
    text_columns = tuple(c.strip() for c in args.text_columns.split(",")) if args.text_columns else None
    if text_columns is not None and not 1 <= len(text_columns) <= 2:
        raise ConfigError(f"--text-columns takes one or two columns, not {len(text_columns)}")
    changes = dict(path=args.dataset, name=args.dataset_config, revision=args.revision, text_columns=text_columns,
                   tokens_column=args.tokens_column, label_column=args.label_column, train_split=args.train_split,
                   eval_split=args.eval_split, max_length=args.max_length, batch_size=args.batch_size,
                   epochs=args.epochs, learning_rate=args.learning_rate, warmup_ratio=args.warmup_ratio,
                   weight_decay=args.weight_decay, conll_files=args.conll_files, choices_column=args.choices_column,
                   doc_stride=args.doc_stride, max_answer_length=args.max_answer_length, n_best=args.n_best_size)
    if args.dataset and args.dataset != preset.path:  # another dataset: the preset's config/revision do not apply
        preset = dataclasses.replace(preset, name=None, revision=None)
    return preset.replace(**changes)


def _data_files(args):
    if not args.data_files:
        return None
    out: dict = {}
    for item in args.data_files:
        split, sep, path = item.partition("=")
        if not sep or not split or not path:
            raise ConfigError(f"--data-files takes SPLIT=PATH, not {item!r}")
        out.setdefault(split, []).append(path)
    return out


def _models(specs: list[str]) -> list[tuple[str, str]]:
    out = []
    for s in specs:
        name, sep, source = s.partition("=")
        if not sep or os.path.exists(s):
            name, source = os.path.basename(s.rstrip("/")) or s, s
        out.append((name, source))
    names = [n for n, _ in out]
    if len(set(names)) != len(names):
        raise ConfigError(f"two --model entries share a name ({', '.join(names)}); name them NAME=PATH")
    return out


def add_finetune_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, action="append", metavar="[NAME=]CHECKPOINT",
                   help="Orbax checkpoint folder, transformers folder or Hub id (repeatable: compared side by side)")
    p.add_argument("--output", required=True, help="folder of results.json / results.md / results.png")
    _add_task_arguments(p, multiple=True)
    s = p.add_argument_group("seeds and collapsed runs")
    s.add_argument("--seeds", type=positive_int, default=3,
                   help="runs per task (default 3): mean and standard deviation")
    s.add_argument("--seed", type=non_negative_int, default=0, help="first seed")
    s.add_argument("--max-reruns", type=non_negative_int, default=3,
                   help="collapsed runs rerun with another seed, at most")
    s.add_argument("--collapse-margin", type=finite_float(0, 1), default=0.02,
                   help="collapsed: accuracy <= max(majority rate, chance) + this")
    st = p.add_argument_group("stability (each off by default; recorded in the results' settings)")
    st.add_argument("--layer-lr-decay", type=finite_float(0, 1, low_open=True), default=1.0, metavar="DECAY",
                    help="layer-wise learning-rate decay in (0, 1]: encoder layer l (0 at the bottom) of L learns at "
                         "lr * DECAY^(L - l), the embeddings at lr * DECAY^(L + 1), the head at lr (default 1: off)")
    st.add_argument("--reinit-layers", type=non_negative_int, default=0, metavar="K",
                    help="re-initialise the top K encoder layers (the family's initialiser, the run's seed) before "
                         "fine-tuning (default 0)")
    st.add_argument("--freeze-layers", type=non_negative_int, default=0, metavar="K",
                    help="no update for the lower K encoder layers (default 0)")
    st.add_argument("--freeze-embeddings", action="store_true", help="no update for the embeddings")
    p.add_argument("--export", action="store_true", help="write the best seed of each model and task as a "
                   "transformers folder (OUTPUT/MODEL-TASK) with a model card")
    p.add_argument("--push-to-hub", metavar="REPO", help="upload the export (one model and one task)")
    p.add_argument("--hub-endpoint", default=os.environ.get("HF_ENDPOINT"), help=argparse.SUPPRESS)
    p.add_argument("--no-png", action="store_true", help="no bar chart")
    p.add_argument("--overwrite", action="store_true", help="write into --output even if it holds other files")
    p.set_defaults(handler=run_finetune)


def _results_folder(path) -> bool:
    """A folder this tool wrote: its marker, or results of an earlier ``finetune``/``compare``."""
    return is_ours(path) or os.path.isfile(os.path.join(path, "results.json"))


def run_finetune(args) -> int:
    from ..models import family_of
    from .loading import load_model
    from .results import markdown_table, write_tables
    from .run import Settings, classifier_card, export_classifier, fine_tune_task
    from .stability import Stability
    from .tasks import load_task_data

    models = _models(args.model)
    specs = [task_spec(t) for t in dict.fromkeys(args.task)]
    names = [n for n, _ in specs]
    if len(set(names)) != len(names):
        raise ConfigError(f"two --task entries share a name ({', '.join(names)}); name them NAME=PRESET")
    tasks = [(name, _task(args, preset)) for name, preset in specs]
    if args.push_to_hub and (len(models) > 1 or len(tasks) > 1):
        raise ConfigError("--push-to-hub uploads one model fine-tuned on one task; give one --model and one --task")
    if args.seeds < 1:
        raise ConfigError("--seeds must be at least 1")
    settings = Settings(seeds=args.seeds, seed=args.seed, max_reruns=args.max_reruns,
                        collapse_margin=args.collapse_margin, dtype=args.dtype, eval_batch_size=args.eval_batch_size,
                        max_steps=args.max_steps,
                        stability=Stability(layer_lr_decay=args.layer_lr_decay, reinit_layers=args.reinit_layers,
                                            freeze_layers=args.freeze_layers, freeze_embeddings=args.freeze_embeddings))
    check_output_dir(args.output, "--output", args.overwrite, ours=_results_folder)
    data_files = _data_files(args)
    datas = {name: load_task_data(task, data_files) for name, task in tasks}  # check every dataset first
    loaded_models = [(name, load_model(source, args.tokenizer, dtype=args.dtype)) for name, source in models]
    for name, loaded in loaded_models:  # before any training: a K beyond a model's layers is refused at once
        try:
            settings.stability.check(loaded.spec.num_layers)
        except ConfigError as e:
            raise ConfigError(f"{e} (--model {name})") from None
    results: dict = {"models": {}}
    mark_as_ours(args.output, "trainer finetune")
    for model_name, loaded in loaded_models:
        for task_name, task in tasks:
            log.info("fine-tuning %s on %s (%d seeds)", model_name, task_name, settings.seeds)
            report, best, tuner = fine_tune_task(loaded, task, datas[task_name], settings, task_name)
            report["model_source"] = loaded.source
            results["models"].setdefault(model_name, {})[task_name] = report
            write_tables(results, args.output, png=False)  # partial results survive an interruption
            if args.export or args.push_to_hub:
                out = os.path.join(args.output, f"{model_name}-{task_name}")
                card = classifier_card(report, loaded.source, args.push_to_hub, f"{model_name}-{task_name}",
                                       best.seed, family_of(loaded.spec))
                export_classifier(best.params, tuner.spec, task.kind, report["labels"], out, loaded.tokenizer, card)
                report["export"] = out
                print(f"exported {model_name} / {task_name} (seed {best.seed}) to {out}")
                if args.push_to_hub:
                    _push(out, args.push_to_hub, args.hub_endpoint)
    paths = write_tables(results, args.output, png=not args.no_png)
    print(markdown_table(results))
    print("written: " + ", ".join(paths))
    return 0


def _push(folder: str, repo: str, endpoint) -> None:
    from mc4_sampling.common.errors import HubError
    from mc4_sampling.common.hub import push_folder

    from ..errors import ExportError
    from ..export import commit_message

    files = sorted(f for f in os.listdir(folder) if os.path.isfile(os.path.join(folder, f)))
    try:
        push_folder(folder, repo, repo_type="model", endpoint=endpoint, allow_patterns=files,
                    commit_message=commit_message(folder, "Upload fine-tuned {family} from mc4-sampling trainer"))
    except HubError as e:
        raise ExportError(str(e)) from None
    print(f"uploaded {len(files)} files to {repo}")


def add_evaluate_arguments(p: argparse.ArgumentParser) -> None:
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--model", help="a fine-tuned transformers folder or Hub id (with its head); needs --task")
    which.add_argument("--mlm", metavar="MODEL", help="masked-LM loss and accuracy of a pretrained model (a "
                       "checkpoint folder, an exported or transformers folder, a Hub id) on --data")
    p.add_argument("--split", help="split to evaluate (default: the task's eval split)")
    p.add_argument("--output", help="write the metrics as JSON here")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output file")
    _add_task_arguments(p, multiple=False, required=False)
    m = p.add_argument_group("masked LM (--mlm; defaults: a checkpoint's own training config, else BERT's)")
    m.add_argument("--data", nargs="+", metavar="FILE", help="the texts: JSON lines, Parquet, CSV or text files "
                   "(as data.eval_files)")
    m.add_argument("--text-column", default="text", help="the column of the texts (default: text)")
    m.add_argument("--max-seq-length", type=int_at_least(2), help="packed sequence length (default 128)")
    m.add_argument("--mlm-probability", type=finite_float(0, 1, low_open=True, high_open=True),
                   help="masking rate (default 0.15)")
    m.add_argument("--masking", choices=("token", "whole-word"), help="token or whole-word masking (default token)")
    m.add_argument("--mask-seed", type=non_negative_int,
                   help="seed of the fixed masks (the trainer's training.eval_seed gives its eval masks; default: "
                        "the checkpoint's training.eval_seed, else 0)")
    m.add_argument("--mlm-batch-size", type=positive_int, help="rows per batch; the masks are drawn over the rows "
                   "padded to whole batches, so give the trainer's training.eval_batch_size to reproduce its eval "
                   "(default: the checkpoint's, else 256)")
    p.set_defaults(handler=run_evaluate)


def run_evaluate(args) -> int:
    if args.mlm:
        return run_evaluate_mlm(args)
    from .loading import load_model
    from .run import FineTuner, Settings
    from .tasks import load_task_data

    if not args.task:
        raise ConfigError("--task is needed to evaluate a fine-tuned --model (or give --mlm MODEL for the "
                          "masked-LM loss and accuracy of a pretrained one)")
    if args.output:
        check_output_file(args.output, "--output", args.overwrite)
    task_name, preset = task_spec(args.task)
    task = _task(args, preset)
    if args.split:
        task = task.replace(eval_split=args.split)
    loaded = load_model(args.model, args.tokenizer, dtype=args.dtype)
    head = loaded.heads.get(task.kind)
    kind_name = task.task_kind.title
    if head is None:
        raise CheckpointError(f"{args.model} has no {kind_name} head (a masked-LM or other checkpoint); "
                              "fine-tune it first with `trainer finetune --export`")
    data = load_task_data(task, _data_files(args))
    if not task.task_kind.fixed_labels and loaded.id2label is not None and loaded.id2label != data.labels:
        raise CheckpointError(f"{args.model} was fine-tuned for the labels {loaded.id2label}, the dataset has "
                              f"{data.labels}")
    tuner = FineTuner(loaded, task, data, Settings(seeds=1, dtype=args.dtype, eval_batch_size=args.eval_batch_size))
    params = tuner.initial_params(0)
    if jax_shapes(params["classifier"]) != jax_shapes(head):
        raise CheckpointError(f"{args.model}'s {kind_name} head has another number of labels than the dataset's "
                              f"{len(data.labels)}")
    metrics = tuner.evaluate(params)
    metrics["truncated"] = tuner.eval_enc.truncated
    for k, v in metrics.items():
        print(f"{k}: {v:.4f}" if isinstance(v, float) else f"{k}: {v}")
    if args.output:
        with OutputFile(args.output) as f:  # whole or not at all
            f.write(json.dumps({"model": args.model, "task": task_name, "split": task.eval_split,
                                "metrics": metrics}, indent=2))
    return 0


def mlm_config(saved: dict, args):
    """The trainer config whose masking rule and eval shape ``evaluate --mlm`` uses: the checkpoint's saved
    ``training`` section and sequence length (when it has one), then the command line's options."""
    from ..config import TrainerConfig, TrainingConfig
    from ..config_loading import from_dict

    cfg = TrainerConfig()
    cfg.data.max_seq_length, cfg.training.eval_batch_size = 128, 256
    if saved.get("training"):
        try:
            cfg.training = from_dict(TrainingConfig, saved["training"], prefix="training.")
            cfg.data.max_seq_length = int(saved.get("data", {}).get("max_seq_length", 128))
        except ConfigError as e:
            log.warning("the checkpoint's training config is not read (%s); BERT's masking defaults", e)
    t = cfg.training
    if args.max_seq_length:
        cfg.data.max_seq_length = args.max_seq_length
    if args.mlm_probability is not None:
        t.mlm_probability, t.eval_mlm_probability = args.mlm_probability, None
    if args.masking:
        t.masking = args.masking
    if args.mlm_batch_size:
        t.eval_batch_size = args.mlm_batch_size
    return cfg


def run_evaluate_mlm(args) -> int:
    """``trainer evaluate --mlm MODEL --data FILES``: the masked-LM loss and accuracy of the model on the texts,
    packed and masked as the trainer's eval set (:func:`trainer.evaluation.masked_lm_metrics`)."""
    import jax

    from ..data.eval_files import read_eval_texts
    from ..data.tokenizer import TokenizerFns
    from ..evaluation import masked_lm_metrics
    from ..masking import masking_rule
    from ..models import family_of
    from .loading import load_masked_lm

    if not args.data:
        raise ConfigError("--mlm needs --data FILE [FILE ...]: the texts to evaluate on (JSON lines, Parquet, "
                          "CSV or text)")
    if args.output:
        check_output_file(args.output, "--output", args.overwrite)
    texts = read_eval_texts(args.data, args.text_column)
    model = load_masked_lm(args.mlm, args.tokenizer)
    cfg = mlm_config(model.config, args)
    longest = family_of(model.spec).max_length(model.spec)
    if cfg.data.max_seq_length > longest:
        raise ConfigError(f"--max-seq-length {cfg.data.max_seq_length} is longer than {model.source} allows "
                          f"({longest} positions); give at most {longest}")
    tok = TokenizerFns(model.tokenizer)
    rule = masking_rule(cfg, tok)
    seed = args.mask_seed if args.mask_seed is not None else (cfg.training.eval_seed or 0)
    metrics = masked_lm_metrics(model.spec, model.params, tok, texts, rule, cfg.data.max_seq_length,
                                cfg.training.eval_batch_size, jax.random.key(seed))
    setting = {"documents": len(texts), "max_seq_length": cfg.data.max_seq_length, "mask_seed": seed,
               "mlm_probability": rule.mlm_probability, "masking": cfg.training.masking,
               "batch_size": cfg.training.eval_batch_size}
    for k, v in {**metrics, **setting}.items():
        print(f"{k}: {v:.6f}" if isinstance(v, float) else f"{k}: {v}")
    if args.output:
        with OutputFile(args.output) as f:  # whole or not at all
            f.write(json.dumps({"model": args.mlm, "data": args.data, "metrics": metrics, **setting}, indent=2))
    return 0


def jax_shapes(tree):
    import jax
    import numpy as np

    return jax.tree.map(np.shape, tree)


def add_compare_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("results", nargs="+", help="results.json files of `trainer finetune`")
    p.add_argument("--output", required=True, help="folder for the merged results.json / results.md / results.png")
    p.add_argument("--no-png", action="store_true")
    p.add_argument("--overwrite", action="store_true", help="write into --output even if it holds other files")
    t = p.add_argument_group("statistics (each model against the baseline: Welch's t-test and the Multi-Bootstrap)")
    t.add_argument("--baseline", metavar="MODEL", help="the model the others are compared with (default: the first)")
    t.add_argument("--bootstrap-samples", type=int_at_least(100), default=1000,
                   help="Multi-Bootstrap resamples of seeds and examples (default 1000)")
    t.add_argument("--bootstrap-seed", type=non_negative_int, default=0, help="seed of the resampling (default 0)")
    t.add_argument("--confidence", type=finite_float(0.5, 1, low_open=True, high_open=True), default=0.95,
                   help="level of the bootstrap and Welch intervals, in (0.5, 1) (default 0.95)")
    p.set_defaults(handler=run_compare)


def run_compare(args) -> int:
    from .results import compare_models, comparison_markdown, load_results, markdown_table, write_tables

    check_output_dir(args.output, "--output", args.overwrite, ours=_results_folder)
    results = load_results(args.results)
    results["comparison"] = compare_models(results, args.baseline, args.bootstrap_samples, args.bootstrap_seed,
                                           args.confidence)
    mark_as_ours(args.output, "trainer compare")
    paths = write_tables(results, args.output, png=not args.no_png)
    print(markdown_table(results))
    print(comparison_markdown(results["comparison"]))
    print("written: " + ", ".join(paths))
    return 0
