"""Training end to end: exact resume after SIGKILL, 1 vs 4 devices, phase switch, bad checkpoints,
export from a checkpoint, gradient accumulation. The reference run masks whole words at a rate scheduled
from 0.30 to 0.15 (so every resume test resumes mid-schedule), averages its last two checkpoints when it
ends, and evaluates on a fixed eval file with a fixed mask seed (``trainer evaluate --mlm`` reproduces it)."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from trainer_helpers import make_corpus, make_tokenizer, run_trainer, tiny_overrides

from trainer.config_loading import load_config
from trainer.errors import CheckpointError, ConfigError, NonFiniteError
from trainer.monitor import read_metrics
from trainer.train import Trainer


def _shared_dir(tmp_path_factory, name: str):
    """A folder shared by the pytest-xdist workers of this session (built once, under a lock)."""
    from filelock import FileLock

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    return root / name, FileLock(str(root / (name + ".lock")))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder, lock = _shared_dir(tmp_path_factory, "trainer-train-corpus")
    with lock:
        if not (folder / "tok" / "tokenizer.json").exists():
            paths = make_corpus(str(folder), n_docs=400, n_files=2)
            make_tokenizer(str(folder / "tok"), paths, vocab_size=400)
    paths = sorted(str(p) for p in folder.glob("part-*.jsonl"))
    cache = str(folder / "jax-cache")  # subprocesses share compiled programs
    return paths, str(folder / "tok"), cache


#: the reference run's masking: whole words, the rate from 0.30 to 0.15 over its 14 steps
MASKING = {"training.masking": "whole-word",
           "training.mlm_probability": {"schedule": "linear", "start": 0.3, "end": 0.15, "steps": 14}}


def _cli_args(corpus, out, **extra):
    paths, tok, _ = corpus
    args = ["--config", "tiny-cpu"]
    for s in tiny_overrides(paths, tok, out, **{"training.max_steps": 14, "checkpoint.async_save": True, **MASKING,
                                                "training.eval_seed": 5, **extra}):
        args += ["--set", s]
    return args


def _env(corpus, **extra):
    return {"JAX_COMPILATION_CACHE_DIR": corpus[2], "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0", **extra}


@pytest.fixture(scope="module")
def reference_run(corpus, tmp_path_factory):
    """An uninterrupted 14-step run (shared by the xdist workers; read-only for the tests)."""
    folder, lock = _shared_dir(tmp_path_factory, "trainer-reference-run")
    out = str(folder / "run")
    with lock:
        if not (folder / "done").exists():
            r = run_trainer(_cli_args(corpus, out, **{"checkpoint.average_last": 2}), env=_env(corpus))
            assert r.returncode == 0, r.stderr[-3000:]
            (folder / "done").write_text("ok")
    metrics = os.path.join(out, "metrics.jsonl")
    return out, read_metrics(metrics), read_metrics(metrics, "eval")


def test_reference_run_learns_and_logs(reference_run):
    out, train, evals = reference_run
    assert sorted(train) == list(range(1, 15))
    assert train[14]["loss"] < train[1]["loss"]
    assert set(evals) == {6, 12, 14} and evals[14]["loss"] < evals[6]["loss"]
    assert all(k in train[14] for k in ("learning_rate", "grad_norm", "tokens_per_second", "accuracy"))
    assert any(name.startswith("events.out.tfevents") for name in os.listdir(os.path.join(out, "tensorboard")))
    assert sorted(int(s) for s in os.listdir(os.path.join(out, "checkpoints")) if s.isdigit()) == [8, 12, 14]
    from trainer.masking_rate import parse_rate

    rate = parse_rate(MASKING["training.mlm_probability"], 14)
    for step in (1, 8, 14):  # the rate logged is the one step `step` trained at (after step - 1 updates)
        assert train[step]["mlm_probability"] == pytest.approx(float(rate.at(step - 1)), abs=1e-7)
    assert train[1]["mlm_probability"] == pytest.approx(0.3) and train[1]["masked_tokens"] > train[14]["masked_tokens"]


@pytest.mark.slow
def test_tokenizer_workers_train_the_reference_run_bit_for_bit(corpus, reference_run, tmp_path):
    """``python -m trainer`` with 2 spawned tokenizer processes: the reference run's batches and losses."""
    _, ref, ref_eval = reference_run
    out = str(tmp_path / "run")
    r = run_trainer(_cli_args(corpus, out, **{"data.num_workers": 2}), env=_env(corpus))
    assert r.returncode == 0, r.stderr[-3000:]
    got, got_eval = read_metrics(os.path.join(out, "metrics.jsonl")), read_metrics(os.path.join(out, "metrics.jsonl"),
                                                                                   "eval")
    for step in range(1, 15):
        assert got[step]["batch_crc32"] == ref[step]["batch_crc32"] and got[step]["loss"] == ref[step]["loss"], step
    assert got_eval[14]["loss"] == ref_eval[14]["loss"]
    assert got[14]["tokens_per_second"] > 0 and got[14]["tokens_per_second_wall"] > 0


@pytest.mark.slow
def test_sigkill_and_resume_continue_bit_for_bit(corpus, reference_run, tmp_path):
    _, ref, ref_eval = reference_run
    out = str(tmp_path / "run")
    args = _cli_args(corpus, out, **{"logging.audit": True})
    killed = run_trainer(args, env=_env(corpus), kill_after_step=10)
    assert killed.returncode == -9, killed.stderr[-2000:]
    resumed = run_trainer(args, env=_env(corpus))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resumed from" in resumed.stderr
    metrics = os.path.join(out, "metrics.jsonl")
    got, got_eval = read_metrics(metrics), read_metrics(metrics, "eval")
    for step in range(1, 15):  # same loss bit for bit, same batch (no document repeated or skipped)
        assert got[step]["loss"] == ref[step]["loss"], step
        assert got[step]["batch_crc32"] == ref[step]["batch_crc32"], step
    assert got_eval[14]["loss"] == ref_eval[14]["loss"]
    # the held-out documents stay out of training across the kill and the resume
    eval_hashes = set(open(os.path.join(out, "audit", "eval-rank0.txt")).read().split())
    train_lines = open(os.path.join(out, "audit", "train-rank0.txt")).read().splitlines()
    train_hashes = {line.split("\t")[1] for line in train_lines}
    assert len(eval_hashes) == 20 and train_hashes and not eval_hashes & train_hashes


@pytest.mark.slow
@pytest.mark.parametrize("sig, status", [("TERM", 143), ("INT", 130)])
def test_sigterm_or_sigint_saves_then_resume_is_bit_for_bit(corpus, reference_run, tmp_path, sig, status):
    """The signal (sent by the run to itself after step 10, to its real handler) saves step 10 and exits
    128 + N with one line; the resumed run ends with the reference run's params and metrics bit for bit."""
    from trainer.export import load_checkpoint_params

    ref_out, ref, ref_eval = reference_run
    out = str(tmp_path / "run")
    args = _cli_args(corpus, out)
    stopped = run_trainer(args, env=_env(corpus), kill_after_step=10, signal=sig)
    assert stopped.returncode == status, stopped.stderr[-3000:]
    assert "Traceback" not in stopped.stderr
    ckpts = os.path.join(out, "checkpoints")
    assert stopped.stderr.rstrip().splitlines()[-1] == (
        f"stopped by SIG{sig} at step 10; checkpoint saved in {ckpts}; rerun the same command to resume")
    assert max(int(s) for s in os.listdir(ckpts) if s.isdigit()) == 10
    assert 11 not in read_metrics(os.path.join(out, "metrics.jsonl"))
    resumed = run_trainer(args, env=_env(corpus))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resumed from" in resumed.stderr and "at step 10" in resumed.stderr
    metrics = os.path.join(out, "metrics.jsonl")
    got, got_eval = read_metrics(metrics), read_metrics(metrics, "eval")
    for step in range(1, 15):
        assert got[step]["loss"] == ref[step]["loss"], step
        assert got[step]["grad_norm"] == ref[step]["grad_norm"], step
        assert got[step]["batch_crc32"] == ref[step]["batch_crc32"], step
    assert got_eval[14]["loss"] == ref_eval[14]["loss"]
    _, want, _, _ = load_checkpoint_params(os.path.join(ref_out, "checkpoints"), 14)
    _, have, _, _ = load_checkpoint_params(ckpts, 14)
    for a, b in zip(jax.tree.leaves(have), jax.tree.leaves(want), strict=True):
        assert np.array_equal(np.asarray(a), np.asarray(b))


def _starting_state(cfg):
    """Where a run of ``cfg`` starts and its restored state (what ``Trainer.setup`` does before compiling)."""
    from trainer.data.tokenizer import TokenizerFns, load_tokenizer
    from trainer.initial_state import choose_start, init_state, open_checkpoints
    from trainer.run_setup import build_spec
    from trainer.steps import run_keys

    spec = build_spec(cfg, TokenizerFns(load_tokenizer(cfg.data.tokenizer)))
    ckpt = open_checkpoints(cfg, ())
    try:
        start = choose_start(cfg, spec, ckpt)
        state = init_state(cfg, spec, run_keys(cfg.training.seed), start, ckpt, None, ())
    finally:
        ckpt.close()
    return start, state


@pytest.mark.slow
def test_damaged_latest_checkpoint_stops_then_from_last_good_resumes_from_the_intact_step(corpus, reference_run,
                                                                                           tmp_path):
    """A truncated parameter file in the latest step (14): resuming stops with one line naming it and step 12
    (no traceback, nothing touched); with ``--from-last-good`` (checkpoint.from_last_good) the run starts from
    step 12 exactly as a run resumed from step 12 does (same step, stream position, params and optimizer state:
    the bit-for-bit resume tests above cover the rest), and step 14 is kept aside as ``damaged-14``."""
    import shutil

    ref_out = reference_run[0]
    out, plain = str(tmp_path / "run"), str(tmp_path / "plain")
    shutil.copytree(ref_out, out)
    shutil.copytree(ref_out, plain)
    shutil.rmtree(os.path.join(plain, "checkpoints", "14"))  # a run whose latest step is 12
    ckpts = os.path.join(out, "checkpoints")
    data = os.path.join(ckpts, "14", "params", "ocdbt.process_0", "d")
    victim = max((os.path.join(data, f) for f in os.listdir(data)), key=os.path.getsize)
    size = os.path.getsize(victim)
    os.truncate(victim, size // 2)
    stopped = run_trainer(_cli_args(corpus, out), env=_env(corpus))
    assert stopped.returncode == 2, stopped.stderr[-3000:]
    rel = os.path.relpath(victim, os.path.join(ckpts, "14"))
    not_logs = [line for line in stopped.stderr.splitlines() if not line[:8].replace(":", "").isdigit()]
    assert not_logs == [f"error: checkpoint step 14 in {ckpts} is damaged ({rel} has {size // 2} bytes where "
                        f"{size} were written); the newest intact one is step 12: rerun with --from-last-good (or "
                        "--set checkpoint.from_last_good=true) to resume from it"], stopped.stderr
    assert sorted(os.listdir(ckpts)) == ["12", "14", "8"]  # nothing touched

    asked, state = _starting_state(_cfg(corpus, out, **{"checkpoint.from_last_good": True}))
    want, want_state = _starting_state(_cfg(corpus, plain))
    assert asked.resume_step == want.resume_step == 12 and state.step == want_state.step == 12
    assert asked.position == want.position and asked.resume_train == want.resume_train
    for a, b in zip(jax.tree.leaves((state.params, state.opt_state)),
                    jax.tree.leaves((want_state.params, want_state.opt_state)), strict=True):
        assert np.array_equal(np.asarray(a), np.asarray(b))
    assert sorted(os.listdir(ckpts)) == ["12", "8", "damaged-14"]


@pytest.mark.slow
def test_four_devices_with_fsdp_match_one_device(corpus, reference_run, tmp_path):
    _, ref, _ = reference_run
    out = str(tmp_path / "run4")
    four = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=4"  # the suite's flags too
    r = run_trainer(_cli_args(corpus, out, **{"training.fsdp": True, "checkpoint.every_steps": 100}),
                    env=_env(corpus, XLA_FLAGS=four))
    assert r.returncode == 0, r.stderr[-3000:]
    got = read_metrics(os.path.join(out, "metrics.jsonl"))
    for step in range(1, 15):
        assert got[step]["batch_crc32"] == ref[step]["batch_crc32"]
        assert got[step]["loss"] == pytest.approx(ref[step]["loss"], rel=1e-4, abs=1e-5), step


def _cfg(corpus, out, **extra):
    paths, tok, _ = corpus
    return load_config("tiny-cpu", tiny_overrides(paths, tok, out, **extra))


def test_phase_switch_fresh_or_kept_optimizer(corpus, reference_run, tmp_path):
    ref_out = reference_run[0]
    common = {"checkpoint.init_from": os.path.join(ref_out, "checkpoints"), "checkpoint.init_step": 12,
              "data.max_seq_length": 24, "training.global_batch_size": 4, "training.max_steps": 3,
              "schedule.warmup_steps": 1, "training.eval_every_steps": 3}
    fresh = Trainer(_cfg(corpus, str(tmp_path / "fresh"), **common))
    fresh.setup()
    kept = Trainer(_cfg(corpus, str(tmp_path / "kept"), **common, **{"checkpoint.init_optimizer": "keep"}))
    kept.setup()
    from trainer.export import load_checkpoint_params

    _, params12, _, _ = load_checkpoint_params(os.path.join(ref_out, "checkpoints"), 12)
    for a, b in zip(jax.tree.leaves(fresh.params), jax.tree.leaves(params12)):
        assert np.array_equal(np.asarray(a), b)
    mu_fresh = jax.tree.leaves(fresh.opt_state)
    assert all(float(jnp.abs(x).max()) == 0.0 for x in mu_fresh if x.ndim > 0)
    assert any(float(jnp.abs(x).max()) > 0.0 for x in jax.tree.leaves(kept.opt_state) if x.ndim > 0)
    assert fresh.step == 0 and fresh.start_position.batches == 12  # the stream continues where phase 1 was
    r = fresh.run()
    assert r.step == 3 and r.eval_history[-1]["masked_tokens"] > 0


def test_checkpoint_of_another_shape_is_refused(corpus, reference_run, tmp_path):
    import shutil

    shutil.copytree(os.path.join(reference_run[0], "checkpoints"), tmp_path / "run" / "checkpoints")
    cfg = _cfg(corpus, str(tmp_path / "run"), **{"model.hidden_size": 48, "model.num_heads": 2})
    with pytest.raises(CheckpointError, match="another model shape.*hidden_size: checkpoint 32, config 48"):
        Trainer(cfg).setup()


def test_export_from_checkpoint_matches_pytorch(corpus, reference_run, tmp_path, capsys):
    torch = pytest.importorskip("torch")
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    from trainer.cli import main
    from trainer.export import load_checkpoint_params
    from trainer.models.roberta import RobertaForMaskedLM

    out = str(tmp_path / "export")
    assert main(["export", "--checkpoint", os.path.join(reference_run[0], "checkpoints"), "--output", out]) == 0
    assert {"config.json", "model.safetensors", "tokenizer.json", "README.md"} <= set(os.listdir(out))
    tok = AutoTokenizer.from_pretrained(out)
    assert type(tok).__name__ in ("RobertaTokenizerFast", "RobertaTokenizer")
    ids = tok(["El perro come pan en la casa.", "La <mask> es grande."], padding=True, return_tensors="np")
    spec, params, _, _ = load_checkpoint_params(os.path.join(reference_run[0], "checkpoints"))
    ours = np.asarray(RobertaForMaskedLM(spec).apply({"params": params}, jnp.asarray(ids["input_ids"]),
                                                      jnp.asarray(ids["attention_mask"])))
    model = AutoModelForMaskedLM.from_pretrained(out).eval()
    with torch.no_grad():
        theirs = model(input_ids=torch.tensor(ids["input_ids"]),
                       attention_mask=torch.tensor(ids["attention_mask"])).logits.numpy()
    valid = ids["attention_mask"].astype(bool)
    assert ours.shape[-1] == spec.padded_vocab_size > theirs.shape[-1] == spec.vocab_size  # padding dropped
    assert np.abs(ours[..., : spec.vocab_size] - theirs)[valid].max() <= 1e-4
    capsys.readouterr()
    assert main(["fill-mask", "--model", out, "--top-k", "3", "La <mask> es grande."]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "<mask> #1:" and len(lines) == 4


def test_average_of_the_last_checkpoints_at_the_end_and_by_command(reference_run, tmp_path, capsys):
    """``checkpoint.average_last: 2`` wrote the average of steps 12 and 14, ``(a + b) / 2`` exactly (float32);
    ``trainer average`` gives the same, and its checkpoint exports; bad steps are one line."""
    from trainer.cli import main
    from trainer.export import load_checkpoint_params

    ckpts = os.path.join(reference_run[0], "checkpoints")
    a, b = (load_checkpoint_params(ckpts, s)[1] for s in (12, 14))
    _, at_end, meta, step = load_checkpoint_params(os.path.join(reference_run[0], "averaged"))
    assert step == 14 and meta["averaged"]["steps"] == [12, 14]
    out = str(tmp_path / "avg")
    assert main(["average", "--checkpoint", reference_run[0], "--steps", "12", "14", "--output", out]) == 0
    _, by_command, _, _ = load_checkpoint_params(out)
    pairs = list(zip(jax.tree.leaves(a), jax.tree.leaves(b), jax.tree.leaves(at_end), jax.tree.leaves(by_command)))
    assert any(not np.array_equal(x, y) for x, y, _, _ in pairs)
    for x, y, m, n in pairs:
        assert m.dtype == np.float32 and np.array_equal(m, (x + y) / np.float32(2)) and np.array_equal(m, n)
    exported = str(tmp_path / "avg-export")
    assert main(["export", "--checkpoint", out, "--output", exported]) == 0
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= set(os.listdir(exported))
    capsys.readouterr()
    assert main(["average", "--checkpoint", ckpts, "--steps", "12", "13", "--output", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --steps: no checkpoint at step 13 in ") and "\n" not in err
    assert not os.path.exists(tmp_path / "x")


def test_evaluate_mlm_of_the_export_matches_the_trainer_eval(corpus, reference_run, tmp_path, capsys):
    """``trainer evaluate --mlm`` on the export of the final checkpoint, on the run's held-out documents with its
    mask seed, final rate, whole words and eval batch: the trainer's own eval of step 14 (within 1e-5); on the
    checkpoint folder itself, the run's saved config gives those settings."""
    from trainer.cli import main
    from trainer.data.batches import BatchStream
    from trainer.data.tokenizer import load_tokenizer

    ref_eval = reference_run[2][14]
    cfg = load_config("tiny-cpu", _cli_args(corpus, reference_run[0])[3::2])
    texts = BatchStream(cfg.data, load_tokenizer(corpus[1]), 8, cfg.training.seed).eval_texts()
    evals = tmp_path / "held-out.jsonl"
    evals.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    exported = str(tmp_path / "export")
    assert main(["export", "--checkpoint", os.path.join(reference_run[0], "checkpoints"), "--output", exported]) == 0
    out = str(tmp_path / "mlm.json")
    assert main(["evaluate", "--mlm", exported, "--data", str(evals), "--max-seq-length", "32",
                 "--mask-seed", "5", "--mlm-probability", "0.15", "--masking", "whole-word", "--mlm-batch-size", "8",
                 "--output", out]) == 0
    got = json.load(open(out))["metrics"]
    assert got["masked_tokens"] == ref_eval["masked_tokens"] > 0
    assert abs(got["loss"] - ref_eval["loss"]) < 1e-5 and abs(got["accuracy"] - ref_eval["accuracy"]) < 1e-5
    capsys.readouterr()
    assert main(["evaluate", "--mlm", os.path.join(reference_run[0], "checkpoints"), "--data", str(evals)]) == 0
    printed = dict(line.split(": ", 1) for line in capsys.readouterr().out.splitlines())
    assert abs(float(printed["loss"]) - ref_eval["loss"]) < 1e-5 and printed["masking"] == "whole-word"
    assert main(["evaluate", "--mlm", exported]) == 2
    assert capsys.readouterr().err.strip().startswith("error: --mlm needs --data FILE")


def test_gradient_accumulation_gives_the_same_update():
    from trainer.config import TrainerConfig
    from trainer.models.roberta import RobertaSpec, init_params
    from trainer.optim import make_optimizer, schedule_fn
    from trainer.steps import MaskingRule, make_train_step, run_keys

    spec = RobertaSpec(vocab_size=60, hidden_size=16, num_layers=1, num_heads=2, intermediate_size=32,
                       max_position_embeddings=20, hidden_dropout=0.0, dtype="float32", attention_impl="xla")
    cfg = TrainerConfig()
    cfg.schedule = dataclasses.replace(cfg.schedule, warmup_steps=0)
    tx = make_optimizer(cfg)
    rule = MaskingRule((0, 1, 2, 3), 4, 60, 0.15, 0.8, 0.1)
    step = jax.jit(make_train_step(spec, tx, schedule_fn(cfg), rule, run_keys(0).step))
    tokens = jax.random.randint(jax.random.key(0), (8, 16), 5, 60)
    params = init_params(spec, jax.random.key(1))
    p1, _, m1 = step(params, tx.init(params), 0, tokens.reshape(1, 8, 16))
    p2, _, m2 = step(params, tx.init(params), 0, tokens.reshape(4, 2, 16))
    assert float(m1["loss"]) == pytest.approx(float(m2["loss"]), rel=1e-6)
    for a, b in zip(jax.tree.leaves(p1), jax.tree.leaves(p2)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)


def test_export_and_push_to_a_loopback_hub(corpus, reference_run, tmp_path, monkeypatch, loopback_hub, capsys):
    from trainer.cli import main

    hub = loopback_hub()
    monkeypatch.setenv("HF_TOKEN", "hf_test")
    out = str(tmp_path / "export")
    assert main(["export", "--checkpoint", reference_run[0], "--step", "12", "--output", out,
                 "--push-to-hub", "someone/tiny-roberta", "--hub-endpoint", hub.url]) == 0
    assert "POST /api/repos/create" in hub.requests
    files = hub.repo_files("someone/tiny-roberta")
    assert set(files) == set(os.listdir(out))
    for name, data in files.items():
        assert data == open(os.path.join(out, name), "rb").read()
    card = files["README.md"].decode()
    assert "pipeline_tag: fill-mask" in card and "someone/tiny-roberta" in card and "| steps | 12 |" in card
    # evaluate --mlm reads the model from the Hub as from the folder: the same numbers
    texts = tmp_path / "texts.jsonl"
    texts.write_text('{"text": "El perro come pan en la casa."}\n{"text": "La niña lee un libro."}\n')
    results = []
    for model in ("someone/tiny-roberta", out):
        capsys.readouterr()
        assert main(["evaluate", "--mlm", model, "--data", str(texts), "--max-seq-length", "16", "--mask-seed", "1",
                     "--mlm-probability", "0.3", "--mlm-batch-size", "2"]) == 0
        results.append(capsys.readouterr().out)
    assert results[0] == results[1] and "masked_tokens: " in results[0]


def test_start_from_a_transformers_folder(corpus, tmp_path):
    torch = pytest.importorskip("torch")
    from transformers import RobertaConfig, RobertaForMaskedLM

    torch.manual_seed(0)
    hf = RobertaForMaskedLM(RobertaConfig(vocab_size=400, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                          intermediate_size=64, max_position_embeddings=40, type_vocab_size=1,
                                          layer_norm_eps=1e-5))
    hf.save_pretrained(str(tmp_path / "hf"))
    trainer = Trainer(_cfg(corpus, str(tmp_path / "run"), **{"model.init_from_transformers": str(tmp_path / "hf")}))
    trainer.setup()
    got = np.asarray(trainer.params["layers_1"]["attention"]["self"]["query"]["kernel"])
    want = hf.state_dict()["roberta.encoder.layer.1.attention.self.query.weight"].numpy().T
    assert np.array_equal(got, want)
    with pytest.raises(ConfigError, match="hidden_size: folder 32, config 64"):
        Trainer(_cfg(corpus, str(tmp_path / "run2"), **{"model.init_from_transformers": str(tmp_path / "hf"),
                                                         "model.hidden_size": 64})).setup()
    # the layer-norm epsilon is compared like the sizes (transformers' default 1e-12 vs BERTIN's 1e-5)
    shutil.copytree(tmp_path / "hf", tmp_path / "hf-eps")
    config = json.loads((tmp_path / "hf-eps" / "config.json").read_text())
    (tmp_path / "hf-eps" / "config.json").write_text(json.dumps({**config, "layer_norm_eps": 1e-12}))
    with pytest.raises(ConfigError) as err:
        Trainer(_cfg(corpus, str(tmp_path / "run3"), **{"model.init_from_transformers": str(tmp_path / "hf-eps")}))\
            .setup()
    assert "layer_norm_eps: folder 1e-12, config 1e-05" in str(err.value) and \
        "set model.layer_norm_eps=1e-12" in str(err.value) and "\n" not in str(err.value)


def _poison_step(trainer, at_step: int) -> None:
    """Step ``at_step`` trains on token ids past the vocabulary: NaN embeddings, a NaN loss and gradient."""
    device_batch = trainer.device_batch

    def poisoned(tokens):
        if trainer.step + 1 == at_step:
            tokens = np.full_like(tokens, trainer.spec.padded_vocab_size + 7)
        return device_batch(tokens)

    trainer.device_batch = poisoned


def test_nonfinite_step_stops_and_keeps_the_last_good_checkpoint(corpus, tmp_path):
    out = str(tmp_path / "run")
    trainer = Trainer(_cfg(corpus, out))
    trainer.setup()
    _poison_step(trainer, 6)
    with pytest.raises(NonFiniteError, match=r"step 6: the loss \(nan\).* not finite.*last checkpoint, step 4"):
        trainer.run()
    ckpts = os.path.join(out, "checkpoints")
    assert sorted(int(s) for s in os.listdir(ckpts) if s.isdigit()) == [4]
    from trainer.export import load_checkpoint_params

    _, params, _, _ = load_checkpoint_params(ckpts, 4)
    assert all(np.isfinite(np.asarray(a)).all() for a in jax.tree.leaves(params))


def test_nonfinite_step_is_skipped_and_counted(corpus, tmp_path):
    out = str(tmp_path / "run")
    trainer = Trainer(_cfg(corpus, out, **{"training.on_nonfinite": "skip"}))
    trainer.setup()
    _poison_step(trainer, 6)
    before = {}
    trainer.add_hook(lambda info: before.setdefault(info.step, jax.tree.map(np.asarray, info.params)))
    handlers = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    result = trainer.run()
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == handlers  # restored
    assert result.step == 12
    got = read_metrics(os.path.join(out, "metrics.jsonl"))
    assert [s for s in got if got[s]["nonfinite"]] == [6]
    assert got[5]["skipped_steps"] == 0 and got[6]["skipped_steps"] == 1 and got[12]["skipped_steps"] == 1
    assert all(np.isfinite(got[s]["loss"]) for s in got if s != 6)
    for a, b in zip(jax.tree.leaves(before[6]), jax.tree.leaves(before[5])):  # the update of step 6 was dropped
        assert np.array_equal(a, b)
    assert all(np.isfinite(a).all() for a in jax.tree.leaves(before[12]))


@pytest.mark.parametrize("extra, message", [
    ({"checkpoint.init_from": "MISSING"}, "error: no checkpoint folder at "),
    ({"checkpoint.init_from": "EMPTY"}, "error: no checkpoint  in "),
    ({"logging.audit": True, "data.text_column": "body"}, "error: the dataset has no text column 'body'"),
])
def test_config_error_through_the_cli_is_one_line_and_leaves_nothing(corpus, tmp_path, extra, message):
    (tmp_path / "empty" / "checkpoints").mkdir(parents=True)
    where = {"MISSING": str(tmp_path / "phase1" / "checkpoints"), "EMPTY": str(tmp_path / "empty" / "checkpoints")}
    extra = {k: where.get(v, v) for k, v in extra.items()}
    out = tmp_path / "run"
    r = run_trainer(_cli_args(corpus, str(out), **extra), env=_env(corpus))
    assert r.returncode == 2, r.stderr[-3000:]
    assert "Traceback" not in r.stderr and "RuntimeError" not in r.stderr, r.stderr[-3000:]
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(message), r.stderr[-3000:]
    assert not out.exists()
