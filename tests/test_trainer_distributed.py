"""Real ``jax.distributed`` runs on loopback: the same batches, losses and eval set for 1 and 2 processes,
and exact resume of a 2-process run on 1 process (the global data order of :mod:`trainer.data.batches`)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
from trainer_helpers import REPO, make_corpus, make_tokenizer, tiny_overrides

TIMEOUT = 240  # seconds for one (set of) trainer process(es)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dist-corpus")
    paths = make_corpus(str(folder), n_docs=300, n_files=2)
    return paths, make_tokenizer(str(folder / "tok"), paths, vocab_size=300)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(devices: int) -> dict:
    return {**os.environ, "JAX_PLATFORMS": "cpu", "TOKENIZERS_PARALLELISM": "false",
            "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={devices}",
            "PYTHONPATH": REPO}


def _args(corpus, out, **extra) -> list[str]:
    paths, tok = corpus
    sets = {"training.max_steps": 8, "training.eval_every_steps": 4, "checkpoint.every_steps": 4,
            "training.global_batch_size": 8, "training.eval_batch_size": 8, **extra}
    args = ["--config", "tiny-cpu"]
    for s in tiny_overrides(paths, tok, str(out), **sets):
        args += ["--set", s]
    return args


def _run(procs_args: list[tuple[list[str], dict]]) -> None:
    """Start every process, wait for all; on any failure or timeout kill them all (no leftovers)."""
    procs = [subprocess.Popen([sys.executable, "-m", "trainer", *a], cwd=REPO, env=e, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for a, e in procs_args]
    try:
        outputs = [p.communicate(timeout=TIMEOUT)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, out in zip(procs, outputs):
        assert p.returncode == 0, out[-4000:]


def _distributed(corpus, out, n: int, **extra):
    port = _free_port()
    dist = {"training.distributed": True, "training.coordinator_address": f"127.0.0.1:{port}",
            "training.num_processes": n}
    _run([(_args(corpus, out, **dist, **{"training.process_id": i}, **extra), _env(1)) for i in range(n)])


def _metrics(out, split="train") -> dict:
    rows = [json.loads(line) for line in open(os.path.join(out, "metrics.jsonl"))]
    return {r["step"]: r for r in rows if r["kind"] == split}


@pytest.mark.slow
def test_one_and_two_processes_train_alike_and_resume_across_process_counts(corpus, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    _run([(_args(corpus, one), _env(2))])  # 1 process x 2 devices, 8 steps
    _distributed(corpus, two, 2, **{"training.max_steps": 4})  # 2 processes x 1 device, 4 steps
    ref, got = _metrics(one), _metrics(two)
    assert sorted(got) == [1, 2, 3, 4]
    for step in got:
        assert got[step]["batch_crc32"] == ref[step]["batch_crc32"], step  # the same global batch
        assert got[step]["loss"] == pytest.approx(ref[step]["loss"], rel=1e-5, abs=1e-6), step
    manifest = json.loads((one / "eval_manifest.json").read_text())
    assert manifest == json.loads((two / "eval_manifest.json").read_text())
    assert manifest["num_documents"] == 20
    ref_eval, got_eval = _metrics(one, "eval"), _metrics(two, "eval")
    assert got_eval[4]["loss"] == pytest.approx(ref_eval[4]["loss"], rel=1e-5)
    assert got_eval[4]["masked_tokens"] == ref_eval[4]["masked_tokens"]

    # the 2-process checkpoint (step 4) resumed by 1 process with 1 device: steps 5-8 as the reference
    _run([(_args(corpus, two), _env(1))])
    got = _metrics(two)
    for step in (5, 6, 7, 8):
        assert got[step]["batch_crc32"] == ref[step]["batch_crc32"], step
        assert got[step]["loss"] == pytest.approx(ref[step]["loss"], rel=1e-5, abs=1e-6), step


@pytest.mark.slow
def test_token_shards_two_processes_read_only_their_rows_and_train_alike(corpus, tmp_path):
    """data.token_shards: each of 2 processes reads only its devices' rows; the losses are the 1-process ones."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from trainer.data.publish_tokens import tokenize_config

    paths, tok = corpus
    texts = [json.loads(line)["text"] for p in paths for line in open(p)]
    data = tmp_path / "pub" / "data" / "c"
    data.mkdir(parents=True)
    pq.write_table(pa.table({"text": texts}), data / "train-00000-of-00001.parquet")
    folder = tokenize_config(str(tmp_path / "pub"), "c", tok, num_eval=20, eval_fraction=0.25)["folder"]
    shards = {"data.token_shards": folder, "training.max_steps": 4}
    one, two = tmp_path / "one", tmp_path / "two"
    _run([(_args(corpus, one, **shards), _env(2))])
    _distributed(corpus, two, 2, **shards)
    ref, got = _metrics(one), _metrics(two)
    assert sorted(got) == [1, 2, 3, 4]
    for step in got:
        assert got[step]["loss"] == pytest.approx(ref[step]["loss"], rel=1e-5, abs=1e-6), step
    assert _metrics(two, "eval")[4]["loss"] == pytest.approx(_metrics(one, "eval")[4]["loss"], rel=1e-5)
