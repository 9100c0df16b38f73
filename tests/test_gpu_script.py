"""The prepared GPU check (benchmarks/gpu) at its --smoke size on the CPU, run.sh's install logic as a dry
run, the check's small helpers, and ``trainer devices``."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys

import pytest
from trainer_helpers import REPO

GPU = os.path.join(REPO, "benchmarks", "gpu")


def _module():
    spec = importlib.util.spec_from_file_location("gpu_check", os.path.join(GPU, "gpu_check.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gpu_check = _module()


# -- helpers ------------------------------------------------------------------------------------


def test_relative_error_and_parity_rule():
    assert gpu_check.relative_error([3.0, 4.0], [3.0, 4.0]) == 0.0
    assert gpu_check.relative_error([3.0, 4.0], [0.0, 5.0]) == pytest.approx(math.sqrt(10.0) / 5.0)
    assert gpu_check.relative_error([0.0], [0.0]) == 0.0 and gpu_check.relative_error([1.0], [0.0]) == math.inf
    assert gpu_check.parity_passes(0.010, 0.006)  # <= 2 x 0.006 + 1e-3
    assert not gpu_check.parity_passes(0.014, 0.006)
    assert not gpu_check.parity_passes(float("nan"), 0.006)


def test_combine_intervals_weights_by_step_time_and_skips_the_first():
    tps = 1000  # tokens per step
    records = [{"step": 10, "tokens_per_second": 1e9, "input_wait_fraction": 0.0},  # warm buffers: skipped
               {"step": 20, "tokens_per_second": 10_000.0, "tokens_per_second_wall": 5_000.0,
                "input_wait_fraction": 0.5},  # 10 steps in 1 s (0.5 s waiting), 2 s of wall time
               {"step": 50, "tokens_per_second": 30_000.0, "tokens_per_second_wall": 30_000.0,
                "input_wait_fraction": 0.0}]  # 30 steps in 1 s
    c = gpu_check.combine_intervals(records, tps)
    assert c["steps"] == 40
    assert c["tokens_per_second"] == pytest.approx(40 * tps / 2.0)
    assert c["tokens_per_second_wall"] == pytest.approx(40 * tps / 3.0)
    assert c["input_wait_fraction"] == pytest.approx(0.5 / 2.0)
    assert gpu_check.combine_intervals(records[:1], tps)["steps"] == 10  # the only interval is kept
    assert gpu_check.combine_intervals([], tps) is None
    assert gpu_check.idle_fraction(750.0, 1000.0) == pytest.approx(0.25)
    assert gpu_check.idle_fraction(None, 1000.0) is None


def test_families_start_with_roberta():
    fams = gpu_check.families()
    assert fams[0] == "roberta" and len(set(fams)) == len(fams)


# -- trainer devices ------------------------------------------------------------------------------


def test_trainer_devices_prints_the_backend_and_refuses_a_missing_gpu(capsys):
    from trainer.cli import main

    assert main(["devices", "--json"]) == 0
    info = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert info["backend"] == "cpu" and info["device_count"] >= 1 and "jax" in info["versions"]
    assert info["attention_auto"] == "xla" and info["peak_bf16_flops"] is None
    assert main(["devices"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("backend cpu: ") and "attention auto -> xla" in line and "\n" not in line
    assert main(["devices", "--require", "gpu"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --require gpu: JAX uses the cpu backend")


# -- run.sh: wheel check, output folder check, the commands (dry run) ------------------------------


def _run_sh(out, wheels, *args):
    env = {**os.environ, "WHEELS": str(wheels), "PYTHON": sys.executable, "SITE": str(out) + "-site"}
    return subprocess.run(["bash", os.path.join(GPU, "run.sh"), str(out), *args], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=120)


def _fake_wheels(folder, skip=()):
    folder.mkdir()
    names = ["datasets-5.2.0-py3-none-any.whl", "dill-0.4.1-py3-none-any.whl", "fsspec-2026.9.0-py3-none-any.whl",
             "multiprocess-0.70.19-py312-none-any.whl", "ufal_kenlm-26.4.1-cp312-cp312-manylinux_2_28_x86_64.whl",
             "tensorboardx-2.6.5-py3-none-any.whl", "seqeval-1.2.2-py3-none-any.whl"]
    for n in names:
        if not n.startswith(skip):
            (folder / n).write_bytes(b"")
    return folder


def test_run_sh_dry_run_installs_without_deps_into_its_own_folder(tmp_path):
    wheels = _fake_wheels(tmp_path / "wheels")
    r = _run_sh(tmp_path / "out", wheels, "--dry-run", "--only", "devices")
    assert r.returncode == 0, r.stdout + r.stderr
    pip = [line for line in r.stdout.splitlines() if line.startswith("+ ") and " pip install " in line]
    assert len(pip) == 2 and all("--no-index --no-deps" in line and f"--target {tmp_path}/out-site" in line
                                 for line in pip)
    assert "ufal_kenlm-26.4.1" in pip[0] and pip[1].endswith(REPO)
    assert "gpu_check.py --out" in r.stdout and "--only devices" in r.stdout and "dry run" in r.stdout
    assert (tmp_path / "out" / "run.log").exists() and not (tmp_path / "out-site").exists()


def test_run_sh_names_missing_wheels_and_refuses_a_foreign_output_folder(tmp_path):
    wheels = _fake_wheels(tmp_path / "wheels", skip=("ufal_kenlm", "seqeval"))
    r = _run_sh(tmp_path / "out", wheels, "--dry-run")
    assert r.returncode == 2
    assert "error: " in r.stderr and "ufal.kenlm" in r.stderr and "seqeval" in r.stderr
    assert "make wheels-gpu" in r.stderr
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    r = _run_sh(foreign, _fake_wheels(tmp_path / "w2"), "--dry-run")
    assert r.returncode == 2 and "notes.txt" in r.stderr and "did not write" in r.stderr
    assert sorted(os.listdir(foreign)) == ["notes.txt"]


# -- the smoke run: every step through the same code, the JSON it writes ---------------------------


@pytest.mark.slow
def test_smoke_run_writes_every_step_as_json(tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": REPO}
    # about 45 s of CPU; --budget 600 gives every step's time box room on a loaded machine
    r = subprocess.run([sys.executable, os.path.join(GPU, "gpu_check.py"), "--smoke", "--out", str(out),
                        "--budget", "600"], env=env, cwd=REPO, capture_output=True, text=True, timeout=700)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert sorted(os.listdir(out)) == ["gpu_check.json", "gpu_check.log", "gpu_table.md"]
    report = json.loads((out / "gpu_check.json").read_text())
    assert report["schema"] == 1 and report["smoke"] is True and report["families"][0] == "roberta"
    steps = report["steps"]
    assert list(steps) == ["devices", "attention", "training_step", "pipeline"]
    assert all(s["status"] == "ok" for s in steps.values()), {k: s["status"] for k, s in steps.items()}
    assert steps["devices"]["result"]["backend"] == "cpu"

    att = steps["attention"]["results"]["roberta"]
    assert att["pass"] and att["fused_impl"] == "xla" and set(att["cases"]) == {"packed-16", "padded-16"}
    for case in att["cases"].values():  # bf16 against float32: small, not zero
        for side in ("fused", "xla"):
            assert case[side]["finite"] and 0 < case[side]["grads_vs_f32"] < 0.05
            assert 0 < case[side]["logits_vs_f32"] < 0.05 and case[side]["worst_leaf_vs_f32"] < 1

    tr = steps["training_step"]["results"]["roberta-128"]
    masked, full = tr["masked"], tr["full"]
    assert masked["tokens_per_s"] > 0 and full["tokens_per_s"] > 0 and masked["mfu"] is None  # no CPU peak
    assert masked["max_predictions"] == 16 and full["max_predictions"] is None  # cap 16 of 16 at p=0.15: >= L
    assert masked["accum"] == 2 and masked["micro"] == 4 and masked["seq_len"] == 16
    assert masked["predicted"] == 0.15 and full["predicted"] == 1.0
    assert masked["flops_per_token"] < full["flops_per_token"]
    assert masked["memory"]["estimate"]["total"] > 0 and masked["memory"]["per_device_batch"] == 4

    pipe = steps["pipeline"]["result"]
    assert pipe["final_step"] == 12 and pipe["seq_len"] == 16 and pipe["global_batch"] == 8
    assert pipe["combined"]["tokens_per_second"] > 0 and 0 <= pipe["combined"]["input_wait_fraction"] <= 1
    assert [e["step"] for e in pipe["eval"]] == [6, 12] and pipe["tokenizer"]["vocab_size"] == 300
    assert pipe["synthetic_tokens_per_second"] == masked["tokens_per_s"]
    assert pipe["device_idle_fraction"] == pytest.approx(
        1 - pipe["combined"]["tokens_per_second"] / masked["tokens_per_s"])

    table = (out / "gpu_table.md").read_text()
    assert "SMOKE SIZES" in table and "| roberta 128 | roberta 512 |" in table and "not measured" in table
    # a folder with something else in it is refused, before anything is written
    (out / "other.txt").write_text("x")
    r = subprocess.run([sys.executable, os.path.join(GPU, "gpu_check.py"), "--smoke", "--out", str(out),
                        "--only", "devices"], env=env, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "error: --out" in r.stderr and "other.txt" in r.stderr
