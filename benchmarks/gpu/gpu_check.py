#!/usr/bin/env python
"""The prepared GPU check: four time-boxed steps, every figure as JSON and a log under ``--out``.

    python benchmarks/gpu/gpu_check.py --out DIR            # on the GPU (benchmarks/gpu/run.sh installs first)
    python benchmarks/gpu/gpu_check.py --out DIR --smoke    # the same code, tiny sizes, seconds on a CPU

Steps, in order (each a child process with its own time box; a step's unused time goes to the next):

0. ``devices``: ``python -m trainer devices --json`` (backend, devices, versions).
1. ``attention``: per model family, the fused cuDNN attention against XLA's in bf16, forward logits
   and the gradients of a masked-LM loss for every parameter, on packed rows (no mask) and on
   right-padded rows; both against a float32 XLA reference: the check passes when
   ``err(cudnn, f32) <= 2 err(xla bf16, f32) + 1e-3`` (relative L2 norms), for the logits and the
   gradients. Whether the compiled program really holds a cuDNN attention call is recorded too.
   ``--smoke`` on a CPU has no cuDNN: the fused side is XLA there.
2. + 3. ``training_step``: per family and length (128, 512), the shipped base config's training step
   (``benchmarks/bench_trainer.py``'s ``bench_training``: random tokens, no input pipeline): XLA's
   memory estimate against ``device.memory_stats()`` peak bytes in use and the allocator's limit,
   then tokens/s and MFU (``trainer/flops.py``'s convention) with the LM head on the masked positions
   (as shipped) and at every position (``training.max_predictions_per_seq=0``).
4. ``pipeline``: 200 steps of ``roberta-base-128`` through ``Trainer`` on the bundled mC4 sample (the
   mc4-sampling builder, gaussian sampling, a tokenizer trained on the sample first): the training
   steps' tokens/s, the trainer's input wait, and the device idle fraction
   ``1 - tokens/s of the run / tokens/s of the synthetic step of step 3`` (same length, same head).
   The global batch is 2 micro-batches of the shipped 256 sequences per device (512, not 2048) to fit the
   time box: the idle fraction compares rates, which do not depend on the accumulation.

Families: every registered model family (``trainer.models``) with a shipped
``trainer/configs/{family}-base-128.yaml``: ``roberta`` and ``modernbert``.

Outputs (written under a temporary name and renamed): ``gpu_check.json`` (everything),
``gpu_table.md`` (the README's GPU table, filled in), and ``gpu_check.log`` (the children's output).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib
import importlib.util
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from typing import Optional

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SCHEMA = 1
GiB = 1024 ** 3

#: (step, seconds) in order; the whole script fits 8 minutes on one H200 with run.sh's install.
BUDGETS = {"full": [("devices", 25), ("attention", 80), ("training_step", 225), ("pipeline", 120)],
           "smoke": [("devices", 30), ("attention", 40), ("training_step", 60), ("pipeline", 60)]}

#: Overrides that shrink a shipped config to a seconds-long CPU run (--smoke); lengths map 128 -> 16, 512 -> 32.
SMOKE_MODEL = ["model.hidden_size=32", "model.num_layers=2", "model.num_heads=2", "model.intermediate_size=64",
               "model.vocab_size=512", "model.max_position_embeddings=40"]
SMOKE_LENGTH = {128: 16, 512: 32}

SIZES = {
    "full": {
        "attention": {"lengths": [128, 512], "batch": 8, "num_layers": 2, "sets": []},
        "training": {"lengths": [128, 512], "steps": 10, "warmup": 2, "sets": []},
        "pipeline": {"steps": 200, "accum": 2, "workers": 4, "every": 20, "eval_docs": 200, "vocab": 8000,
                     "tokenizer_docs": 3000, "sets": []},
    },
    "smoke": {
        # one length each (every train-step compilation costs 5-20 s on 2 CPU cores): the same code
        "attention": {"lengths": [16], "batch": 2, "num_layers": 1, "sets": SMOKE_MODEL + ["data.max_seq_length=32"]},
        "training": {"lengths": [128], "steps": 2, "warmup": 1,
                     "sets": SMOKE_MODEL + ["training.global_batch_size=8", "training.per_device_batch_size=4"]},
        "pipeline": {"steps": 12, "accum": 2, "per_device": 4, "workers": 0, "every": 4, "eval_docs": 16,
                     "vocab": 300, "tokenizer_docs": 300,
                     "sets": SMOKE_MODEL + [f"data.max_seq_length={SMOKE_LENGTH[128]}", "training.eval_batch_size=8"]},
    },
}

#: The files this check writes in --out (anything else there is refused).
OWN_FILES = ("gpu_check.json", "gpu_check.log", "gpu_table.md", "run.log")


# ---------------------------------------------------------------------------------------------
# small pure helpers


def relative_error(a, b) -> float:
    """``||a - b|| / ||b||`` (L2 over every element; 0 when both are 0, inf when only ``b`` is)."""
    import numpy as np

    a = np.asarray(a, np.float32).ravel()
    b = np.asarray(b, np.float32).ravel()
    num = float(np.linalg.norm(a - b))  # BLAS nrm2: scaled, accurate in float32
    den = float(np.linalg.norm(b))
    if den == 0.0:
        return 0.0 if num == 0.0 else math.inf
    return num / den


def parity_passes(fused_err: float, xla_err: float, slack: float = 1e-3) -> bool:
    """The fused kernel is as close to the float32 reference as XLA's bf16 path: ``fused <= 2 xla + slack``."""
    return bool(math.isfinite(fused_err) and fused_err <= 2.0 * xla_err + slack)


def combine_intervals(records: list, tokens_per_step: int, skip_first: bool = True) -> Optional[dict]:
    """The trainer's logged intervals (``metrics.jsonl`` train records, in step order) as one interval.

    Interval ``i`` has ``s_i`` steps (step difference), step time ``t_i = s_i x tokens_per_step /
    tokens_per_second_i`` and input wait ``w_i = input_wait_fraction_i x t_i``; the result is
    ``tokens_per_second = sum(s_i) x tokens_per_step / sum(t_i)`` and ``input_wait_fraction =
    sum(w_i) / sum(t_i)`` (and the same over wall time). The first interval (prefetch buffers full at
    the start) is left out unless it is the only one.
    """
    rows, prev = [], 0
    for rec in records:
        steps = rec["step"] - prev
        prev = rec["step"]
        if steps > 0 and rec.get("tokens_per_second"):
            rows.append((steps, rec))
    if skip_first and len(rows) > 1:
        rows = rows[1:]
    if not rows:
        return None
    steps = sum(s for s, _ in rows)
    t = sum(s * tokens_per_step / r["tokens_per_second"] for s, r in rows)
    wall = sum(s * tokens_per_step / r.get("tokens_per_second_wall", r["tokens_per_second"]) for s, r in rows)
    wait = sum(r.get("input_wait_fraction", 0.0) * s * tokens_per_step / r["tokens_per_second"] for s, r in rows)
    return {"steps": steps, "tokens_per_second": steps * tokens_per_step / t,
            "tokens_per_second_wall": steps * tokens_per_step / wall, "input_wait_fraction": wait / t}


def idle_fraction(run_tps: Optional[float], synthetic_tps: Optional[float]) -> Optional[float]:
    """``1 - run / synthetic`` tokens/s: the share of the time the device would have had work with
    batches ready at once (negative values, noise, are kept)."""
    if not run_tps or not synthetic_tps:
        return None
    return 1.0 - run_tps / synthetic_tps


def fmt_gib(b) -> str:
    return "n/a" if b is None else f"{b / GiB:.1f} GiB"


# ---------------------------------------------------------------------------------------------
# the model families


def families() -> list[str]:
    """The registered model families (:func:`trainer.models.family_names`) that ship a
    ``trainer/configs/{family}-base-128.yaml``."""
    from trainer.config_loading import CONFIG_DIR
    from trainer.models import family_names

    return [f for f in family_names() if os.path.isfile(os.path.join(CONFIG_DIR, f"{f}-base-128.yaml"))]


def family_model(family: str):
    """``(module_class, init)`` of a family, through its :class:`~trainer.models.base.ModelFamily`:
    ``module_class(spec)`` is its masked-LM Linen module, ``init(spec, key)`` its parameters."""
    from trainer.models import get_family

    fam = get_family(family)
    return fam.mlm_module, fam.init_params


class SyntheticTokenizer:
    """What the trainer's spec and masking need from a tokenizer (RoBERTa's specials 0-4), for the
    steps that run on random tokens."""

    def __init__(self, vocab_size: int):
        self.special_ids, self.bos_id, self.pad_id, self.eos_id, self.mask_id = (0, 1, 2, 3, 4), 0, 1, 2, 4
        self.vocab_size = vocab_size
        self.model_name, self.is_wordpiece = "BPE", False


def config_name(family: str, length: int) -> str:
    return f"{family}-base-{length}"


# ---------------------------------------------------------------------------------------------
# tasks (run in child processes; each writes its result file after every measurement)


class Result:
    """A task's result, rewritten (temporary name, then rename) after every change."""

    def __init__(self, path: str):
        self.path, self.data = path, {}

    def save(self) -> None:
        tmp = self.path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self.data, f, indent=1, default=str)
        os.replace(tmp, self.path)


def task_attention(args: dict, res: Result) -> None:
    import jax
    import jax.numpy as jnp
    import numpy as np

    from trainer.config_loading import load_config
    from trainer.run_setup import build_spec

    family = args["family"]
    cfg = load_config(config_name(family, 128), args["sets"] + [f"model.num_layers={args['num_layers']}",
                                                               "model.hidden_dropout=0.0"])
    tok = SyntheticTokenizer(cfg.model.vocab_size or 50265)
    base = build_spec(cfg, tok)
    module_class, init = family_model(family)
    on_gpu = jax.default_backend() == "gpu"
    fused = "cudnn" if on_gpu else "xla"
    variants = {"fused": dataclasses.replace(base, attention_impl=fused, dtype="bfloat16"),
                "xla": dataclasses.replace(base, attention_impl="xla", dtype="bfloat16"),
                "reference": dataclasses.replace(base, attention_impl="xla", dtype="float32")}
    params = init(variants["reference"], jax.random.key(0))
    res.data.update(family=family, fused_impl=fused, layers=base.num_layers, hidden=base.hidden_size,
                    heads=base.num_heads, batch=args["batch"], cases={})
    rng = np.random.default_rng(0)
    for L in args["lengths"]:
        for case in ("packed", "padded"):
            B = args["batch"]
            ids = rng.integers(5, tok.vocab_size, size=(B, L)).astype(np.int32)
            ids[:, 0] = tok.bos_id
            if case == "padded":  # right padding, the lengths the fused kernel takes; row 0 is full
                lengths = rng.integers(max(2, L // 4), L + 1, size=B)
                lengths[0] = L
                mask = np.arange(L)[None, :] < lengths[:, None]
                ids[~mask] = tok.pad_id
            else:
                mask = np.ones((B, L), bool)
            labels = rng.integers(5, tok.vocab_size, size=(B, L)).astype(np.int32)
            weights = (mask & (rng.random((B, L)) < 0.15)).astype(np.float32)
            weights[:, 1] = 1.0
            am = None if case == "packed" else jnp.asarray(mask.astype(np.int32))
            out, hlo = {}, {}
            for name, spec in variants.items():
                if name == "fused" and fused == "xla":  # no cuDNN (CPU smoke): the same program as "xla"
                    continue
                model = module_class(spec)

                def loss_fn(p, model=model):
                    logits = model.apply({"params": p}, jnp.asarray(ids), attention_mask=am, deterministic=True)
                    logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
                    ce = -jnp.take_along_axis(logp, jnp.asarray(labels)[..., None], axis=-1)[..., 0]
                    w = jnp.asarray(weights)
                    return jnp.sum(ce * w) / jnp.sum(w), logits

                compiled = jax.jit(jax.value_and_grad(loss_fn, has_aux=True)).lower(params).compile()
                text = (compiled.as_text() or "").lower()
                hlo[name] = "cudnn" in text and "fmha" in text  # the fused attention's custom calls
                (loss, logits), grads = compiled(params)
                out[name] = (float(loss), np.asarray(logits.astype(jnp.float32))[mask],
                             {"/".join(str(getattr(k, "key", k)) for k in path): np.asarray(g, np.float32)
                              for path, g in jax.tree_util.tree_flatten_with_path(grads)[0]})
            if "fused" not in out:
                out["fused"], hlo["fused"] = out["xla"], hlo["xla"]
            ref_loss, ref_logits, ref_grads = out["reference"]
            names = sorted(ref_grads)
            flat = lambda g: np.concatenate([g[k].ravel() for k in names])  # noqa: E731
            row = {"length": L, "case": case, "loss": {k: v[0] for k, v in out.items()},
                   "fused_kernel_in_program": hlo["fused"]}
            for side in ("fused", "xla"):
                _, logits, grads = out[side]
                # leaves whose true gradient is about 0 (the key bias: softmax ignores it) have no relative error
                floor = 1e-4 * float(np.linalg.norm(flat(ref_grads)))
                per_leaf = {k: relative_error(grads[k], ref_grads[k]) for k in names
                            if np.linalg.norm(ref_grads[k]) > floor}
                worst = max(per_leaf, key=per_leaf.get)
                row[side] = {"logits_vs_f32": relative_error(logits, ref_logits),
                             "grads_vs_f32": relative_error(flat(grads), flat(ref_grads)),
                             "worst_leaf": worst, "worst_leaf_vs_f32": per_leaf[worst],
                             "finite": bool(np.isfinite(logits).all() and np.isfinite(flat(grads)).all())}
            row["fused_vs_xla"] = {"logits": relative_error(out["fused"][1], out["xla"][1]),
                                   "grads": relative_error(flat(out["fused"][2]), flat(out["xla"][2]))}
            row["pass"] = bool(row["fused"]["finite"]
                               and parity_passes(row["fused"]["logits_vs_f32"], row["xla"]["logits_vs_f32"])
                               and parity_passes(row["fused"]["grads_vs_f32"], row["xla"]["grads_vs_f32"]))
            res.data["cases"][f"{case}-{L}"] = row
            res.save()
    res.data["pass"] = all(r["pass"] for r in res.data["cases"].values())
    res.save()


def _bench_module():
    spec = importlib.util.spec_from_file_location("bench_trainer", os.path.join(ROOT, "benchmarks", "bench_trainer.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def task_training(args: dict, res: Result) -> None:
    import jax

    from trainer import memory
    from trainer.config_loading import load_config

    bench = _bench_module()
    family, length = args["family"], args["length"]
    sets = list(args["sets"])
    if args.get("seq_len"):
        sets.append(f"data.max_seq_length={args['seq_len']}")
    res.data.update(family=family, config=config_name(family, length), overrides=sets)
    device = jax.local_devices()[0]
    limit = memory.device_limit(device)
    for head, extra in (("masked", []), ("full", ["training.max_predictions_per_seq=0"])):
        cfg = load_config(config_name(family, length), sets + extra)
        tok = SyntheticTokenizer(cfg.model.vocab_size or 50265)
        r = bench.bench_training(cfg, tok, args["steps"], args["warmup"])
        res.data[head] = {k: r[k] for k in ("tokens_per_s", "mfu", "step_s", "flops_per_token", "achieved_tflops",
                                             "warmup_s", "attention", "dtype", "max_predictions", "predicted",
                                             "accum", "micro", "remat", "device")}
        res.data[head]["seq_len"] = cfg.data.max_seq_length
        res.data[head]["global_batch"] = cfg.training.global_batch_size
        est = r["estimate"]
        mem = {"estimate": est, "peak_bytes_in_use": r["peak_bytes"], "bytes_limit": limit,
               "per_device_batch": r["micro"] // jax.device_count()}
        if head == "masked":
            mem["fits"] = None if (est is None or limit is None) else est["total"] <= limit
            if r["peak_bytes"] and est:
                # activations grow with the batch: linear extrapolation to 90 % of the limit (a hint, not a test)
                state = est["arguments"]
                per_seq = max(r["peak_bytes"] - state, 1) / mem["per_device_batch"]
                mem["per_device_batch_at_90pct"] = (int((0.9 * limit - state) // per_seq) if limit else None)
        else:
            mem["note"] = "peak_bytes_in_use is the process's peak so far (masked head's run included)"
        res.data[head]["memory"] = mem
        res.save()


def task_pipeline(args: dict, res: Result) -> None:
    import jax

    from trainer.config_loading import load_config
    from trainer.data.stream import stream_texts
    from trainer.data.tokenizer import train_tokenizer
    from trainer.monitor import read_metrics
    from trainer.train import Trainer

    work = args["work"]
    tokdir, run_dir = os.path.join(work, "tokenizer"), os.path.join(work, "run")
    sample = ["data.kwargs={data_dir: SAMPLE_DATA_DIR}", "data.sampling.sampling_method=gaussian"]
    base = load_config("roberta-base-128", args["sets"] + sample)
    t0 = time.perf_counter()
    texts = list(stream_texts(base, num_docs=args["tokenizer_docs"]))
    train_tokenizer(texts, tokdir, vocab_size=args["vocab"], model_max_length=512)
    res.data["tokenizer"] = {"documents": len(texts), "vocab_size": args["vocab"], "seconds": time.perf_counter() - t0}
    res.save()
    per_device = args.get("per_device") or base.training.per_device_batch_size
    n_dev = jax.device_count()
    global_batch = per_device * n_dev * args["accum"]
    # TODO(token shards, branch `scale`): once the trainer reads pre-tokenised shards, run the same 200
    # steps from shards written from the sample and add their idle fraction here (key "shards").
    sets = args["sets"] + sample + [
        f"data.tokenizer={tokdir}", f"data.num_eval_samples={args['eval_docs']}", f"data.num_workers={args['workers']}",
        f"training.max_steps={args['steps']}", f"schedule.warmup_steps={max(1, args['steps'] // 10)}",
        f"training.global_batch_size={global_batch}",
        f"training.per_device_batch_size={per_device}", f"training.eval_every_steps={max(1, args['steps'] // 2)}",
        f"training.output_dir={run_dir}", f"logging.every_steps={args['every']}", "logging.progress_bar=false",
        "checkpoint.every_steps=100000000"]
    cfg = load_config("roberta-base-128", sets)
    res.data.update(config="roberta-base-128", overrides=sets, global_batch=global_batch, per_device_batch=per_device,
                    steps=args["steps"], workers=args["workers"], seq_len=cfg.data.max_seq_length)
    trainer = Trainer(cfg)
    t0 = time.perf_counter()
    trainer.setup()
    res.data["setup_s"] = time.perf_counter() - t0
    res.save()
    tokens_per_step = global_batch * cfg.data.max_seq_length
    metrics_file = os.path.join(run_dir, "metrics.jsonl")

    def progress(info):  # the figures so far, so that a run stopped at its time box still reports them
        records = [r for _, r in sorted(read_metrics(metrics_file).items())]
        res.data.update(combined=combine_intervals(records, tokens_per_step), last_step=info.step)
        res.save()

    trainer.add_hook(trainer.off_the_step_clock(progress), every=args["every"])
    t0 = time.perf_counter()
    result = trainer.run()
    res.data["run_s"] = time.perf_counter() - t0
    records = [r for _, r in sorted(read_metrics(metrics_file).items())]
    res.data["combined"] = combine_intervals(records, tokens_per_step)
    res.data["intervals"] = [{k: r.get(k) for k in ("step", "tokens_per_second", "tokens_per_second_wall",
                                                    "input_wait_fraction", "mfu", "loss", "epoch")} for r in records]
    res.data["final_step"] = result.step
    res.data["eval"] = result.eval_history
    res.data["attention"] = trainer.spec.attention_impl
    res.save()


TASKS = {"attention": task_attention, "training_step": task_training, "pipeline": task_pipeline}


# ---------------------------------------------------------------------------------------------
# the driver


class Log:
    def __init__(self, path: str):
        self.f = open(path, "a", encoding="utf-8")

    def __call__(self, msg: str) -> None:
        line = f"{datetime.datetime.now().strftime('%H:%M:%S')} gpu_check: {msg}"
        print(line, flush=True)
        self.f.write(line + "\n")
        self.f.flush()


def child_env(smoke: bool = False) -> dict:
    env = dict(os.environ)
    if smoke:  # CPU compilations 1.5x faster (the figures of a smoke run mean nothing anyway)
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0"
                            " --xla_llvm_disable_expensive_passes=true").strip()
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    for k in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        env.setdefault(k, "1")
    env.setdefault("HF_UPDATE_DOWNLOAD_COUNTS", "0")
    env.setdefault("PYTHONUNBUFFERED", "1")
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if not _importable_trainer():
        paths.append(ROOT)
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def _importable_trainer() -> bool:
    return importlib.util.find_spec("trainer") is not None and importlib.util.find_spec("mc4_sampling") is not None


def run_child(cmd: list, timeout: float, log_path: str, env: dict) -> dict:
    """Run ``cmd`` with its output appended to the log; killed (its whole process group) after ``timeout``."""
    t0 = time.perf_counter()
    with open(log_path, "a", encoding="utf-8") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT,
                                start_new_session=True)
        try:
            rc = proc.wait(timeout=max(1.0, timeout))
            status = "ok" if rc == 0 else f"failed (exit status {rc})"
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            status = f"timeout after {timeout:.0f} s"
    return {"status": status, "seconds": round(time.perf_counter() - t0, 2)}


def run_task(name: str, task_args: dict, timeout: float, log: Log, log_path: str, tmp: str, env: dict) -> dict:
    result_path = os.path.join(tmp, f"{name}-{len(os.listdir(tmp))}.json")
    log(f"{name} {json.dumps({k: v for k, v in task_args.items() if k != 'sets'})} (time box {timeout:.0f} s)")
    cmd = [sys.executable, os.path.abspath(__file__), "--task", name, "--task-args", json.dumps(task_args),
           "--result", result_path]
    info = run_child(cmd, timeout, log_path, env)
    data = {}
    if os.path.exists(result_path):
        with open(result_path, encoding="utf-8") as f:
            data = json.load(f)
    log(f"{name}: {info['status']} in {info['seconds']} s")
    return {**info, **data}


def check_out_dir(out: str) -> None:
    if os.path.exists(out) and not os.path.isdir(out):
        raise SystemExit(f"error: --out {out!r} is a file; give a folder")
    if os.path.isdir(out):
        foreign = sorted(set(os.listdir(out)) - set(OWN_FILES))
        if foreign:
            raise SystemExit(f"error: --out {out!r} holds files this check did not write ({', '.join(foreign[:3])}); "
                             "give an empty or new folder")


def write_atomic(path: str, text: str) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def table(report: dict) -> str:
    """The README's GPU table from a report (``not measured`` where a figure is missing)."""
    dev = report["steps"].get("devices", {}).get("result") or {}
    machine = ", ".join(f"{d['kind']}" for d in dev.get("devices", [])[:1]) or "no device"
    n = dev.get("device_count", 0)
    title = f"{n} x {machine}" if n else machine
    lines = [f"GPU figures, measured by `benchmarks/gpu/run.sh` on {title} (backend {dev.get('backend', '?')}, "
             f"{', '.join(f'{k} {v}' for k, v in dev.get('versions', {}).items())}), "
             f"{report['started'][:10]}{' (SMOKE SIZES, not real figures)' if report['smoke'] else ''}:", ""]
    train = report["steps"].get("training_step", {}).get("results", {})
    fams = report.get("families", ["roberta"])
    cols = [(f, L) for f in fams for L in (128, 512)]
    lines.append("| figure | " + " | ".join(f"{f} {L}" for f, L in cols) + " |")
    lines.append("|---" * (len(cols) + 1) + "|")

    def cell(f, L, fn):
        r = train.get(f"{f}-{L}") or {}
        try:
            return fn(r)
        except (KeyError, TypeError, ZeroDivisionError):
            return "not measured"

    def speed(head):
        def fn(r):
            h = r[head]
            mfu = "n/a" if h["mfu"] is None else f"{100 * h['mfu']:.1f} %"
            return f"{h['tokens_per_s']:,.0f} tok/s, MFU {mfu} ({h['accum']} x {h['micro']}, {h['attention']})"
        return fn

    def mem(r):
        m = r["masked"]["memory"]
        est = m["estimate"]["total"] if m["estimate"] else None
        return f"{fmt_gib(est)} / {fmt_gib(m['peak_bytes_in_use'])} of {fmt_gib(m['bytes_limit'])}"

    lines.append("| tokens/s, MFU (LM head on masked positions) | " + " | ".join(cell(f, L, speed("masked"))
                                                                               for f, L in cols) + " |")
    lines.append("| tokens/s, MFU (full LM head) | " + " | ".join(cell(f, L, speed("full")) for f, L in cols) + " |")
    lines.append("| XLA memory estimate / peak in use of limit (shipped batch) | "
                 + " | ".join(cell(f, L, mem) for f, L in cols) + " |")
    att = report["steps"].get("attention", {}).get("results", {})

    def parity(f, L):
        r = att.get(f) or {}
        cases = r.get("cases", {})
        sizes = sorted({c["length"] for c in cases.values()})
        length = (sizes[0] if L == 128 else sizes[-1]) if (sizes and (L == 128 or len(sizes) > 1)) else None
        rows = [cases.get(f"{c}-{length}") for c in ("packed", "padded")]
        if not all(rows):
            return "not measured"
        return "; ".join(f"{row['case']}: {'pass' if row['pass'] else 'FAIL'} (grads {row['fused']['grads_vs_f32']:.1e}"
                         f" vs xla {row['xla']['grads_vs_f32']:.1e})" for row in rows)

    fused = next((r.get("fused_impl") for r in att.values() if r.get("fused_impl")), report.get("fused_impl"))
    lines.append(f"| {fused or 'cudnn'} attention vs f32 (bf16, rel. L2) | "
                 + " | ".join(parity(f, L) for f, L in cols) + " |")
    pipe = report["steps"].get("pipeline", {}).get("result") or {}
    comb = pipe.get("combined") or {}
    if comb:
        idle = pipe.get("device_idle_fraction")
        text = (f"{comb['tokens_per_second']:,.0f} tok/s, input wait {100 * comb['input_wait_fraction']:.1f} %, "
                f"device idle {'n/a' if idle is None else f'{100 * idle:.1f} %'} ({pipe.get('workers')} workers)")
    else:
        text = "not measured"
    lines.append(f"| {pipe.get('steps', 200)} steps on the bundled sample (real input path) | {text} |"
                 + " |" * (len(cols) - 1))
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", help="output folder (empty or new)")
    p.add_argument("--smoke", action="store_true", help="tiny sizes: the same code in seconds on a CPU")
    p.add_argument("--budget", type=float, help="seconds for all steps (default: the sum of the step budgets)")
    p.add_argument("--only", help="comma-separated steps to run (devices,attention,training_step,pipeline)")
    p.add_argument("--task", help=argparse.SUPPRESS)
    p.add_argument("--task-args", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.task:  # a child process: one task
        import logging

        from mc4_sampling.common.console import datasets_without_torch
        from trainer.console import configure_logging

        configure_logging(logging.INFO)
        res = Result(args.result)
        with datasets_without_torch():  # as the trainer's own command
            TASKS[args.task](json.loads(args.task_args), res)
        return 0

    if not args.out:
        p.error("--out is required")
    size = "smoke" if args.smoke else "full"
    plan = BUDGETS[size]
    only = set(args.only.split(",")) if args.only else None
    if only and only - {s for s, _ in plan}:
        p.error(f"--only: unknown steps {sorted(only - {s for s, _ in plan})}; valid: {[s for s, _ in plan]}")
    plan = [(s, b) for s, b in plan if not only or s in only]
    budget = args.budget if args.budget is not None else sum(b for _, b in plan)
    if budget <= 0:
        p.error(f"--budget must be > 0 seconds, got {args.budget}")
    check_out_dir(args.out)
    os.makedirs(args.out, exist_ok=True)
    log_path = os.path.join(args.out, "gpu_check.log")
    log = Log(log_path)
    start = time.perf_counter()
    deadline = start + budget
    report = {"schema": SCHEMA, "smoke": args.smoke, "started": datetime.datetime.now().isoformat(timespec="seconds"),
              "budget_s": budget, "argv": sys.argv[1:], "steps": {}, "sizes": SIZES[size]}
    install = os.environ.get("GPU_CHECK_INSTALL")
    if install:
        report["install"] = json.loads(install)
    if not _importable_trainer():
        sys.path.insert(0, ROOT)
    report["families"] = families()
    report["fused_impl"] = None

    def save():
        report["elapsed_s"] = round(time.perf_counter() - start, 1)
        write_atomic(os.path.join(args.out, "gpu_check.json"), json.dumps(report, indent=1, default=str))
        write_atomic(os.path.join(args.out, "gpu_table.md"), table(report))

    sizes = SIZES[size]
    env = child_env(args.smoke)
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        results_dir = os.path.join(tmp, "results")
        os.makedirs(results_dir)
        for i, (step, _) in enumerate(plan):
            later = sum(b for _, b in plan[i + 1:])
            step_deadline = deadline - later
            now = time.perf_counter()
            entry = report["steps"][step] = {"time_box_s": round(step_deadline - now, 1)}
            if step_deadline - now < 5:
                entry["status"] = "skipped: no time left in the budget"
                log(f"{step}: {entry['status']}")
                save()
                continue
            t0 = time.perf_counter()
            if step == "devices":
                cmd = [sys.executable, "-m", "trainer", "devices", "--json"]
                res_path = os.path.join(tmp, "devices.json")
                log("devices: python -m trainer devices --json")
                with open(res_path, "w") as f:
                    proc = subprocess.run(cmd, stdout=f, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT,
                                          timeout=max(5.0, step_deadline - time.perf_counter()))
                if proc.stderr:
                    log.f.write(proc.stderr)
                entry["status"] = "ok" if proc.returncode == 0 else f"failed (exit status {proc.returncode})"
                if proc.returncode == 0:
                    with open(res_path) as f:
                        entry["result"] = json.loads(f.read().strip().splitlines()[-1])
                    report["fused_impl"] = "cudnn" if entry["result"]["backend"] == "gpu" else "xla"
                log(f"devices: {entry['status']}")
            else:
                jobs = []
                if step == "attention":
                    a = sizes["attention"]
                    jobs = [(f, {"family": f, **a}) for f in report["families"]]
                elif step == "training_step":
                    a = dict(sizes["training"])
                    lengths = a.pop("lengths")
                    for f in report["families"]:
                        for L in lengths:
                            seq = SMOKE_LENGTH[L] if args.smoke else None
                            jobs.append((f"{f}-{L}", {"family": f, "length": L, "seq_len": seq, **a}))
                else:
                    a = sizes["pipeline"]
                    jobs = [("roberta-128", {**a, "work": os.path.join(tmp, "pipeline")})]
                entry["results"] = {}
                for j, (key, task_args) in enumerate(jobs):
                    left = step_deadline - time.perf_counter()
                    if left < 5:
                        entry["results"][key] = {"status": "skipped: no time left in the step's time box"}
                        continue
                    entry["results"][key] = run_task(step, task_args, left / (len(jobs) - j), log, log_path,
                                                     results_dir, env)
                    save()
                statuses = [r["status"] for r in entry["results"].values()]
                entry["status"] = "ok" if all(s == "ok" for s in statuses) else "; ".join(
                    f"{k}: {r['status']}" for k, r in entry["results"].items() if r["status"] != "ok")
                if step == "pipeline":
                    entry["result"] = entry.pop("results")["roberta-128"]
                    synth = report["steps"].get("training_step", {}).get("results", {}).get("roberta-128", {})
                    synth_tps = (synth.get("masked") or {}).get("tokens_per_s")
                    comb = entry["result"].get("combined") or {}
                    entry["result"]["synthetic_tokens_per_second"] = synth_tps
                    entry["result"]["device_idle_fraction"] = idle_fraction(comb.get("tokens_per_second"), synth_tps)
            entry["seconds"] = round(time.perf_counter() - t0, 1)
            save()
    save()
    log(f"done in {report['elapsed_s']} s; {os.path.join(args.out, 'gpu_check.json')}")
    print(table(report))
    failed = [s for s, e in report["steps"].items() if e.get("status") != "ok"]
    att = report["steps"].get("attention", {}).get("results", {})
    bad_parity = [f for f, r in att.items() if r.get("status") == "ok" and not r.get("pass")]
    if bad_parity:
        log(f"attention parity FAILED for {bad_parity}")
    if failed:
        log(f"steps not ok: {failed}")
    return 1 if failed or bad_parity else 0


if __name__ == "__main__":
    sys.exit(main())
