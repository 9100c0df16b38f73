"""The memory check on every backend: on CPUs the limit is the host's available memory; a step that
cannot fit stops before the first step with one line, exit status 2 and no run folder."""

from __future__ import annotations

import os

import pytest
from trainer_helpers import make_corpus, make_tokenizer, run_trainer, tiny_overrides

from trainer import memory


def test_host_available_memory_is_the_smaller_of_meminfo_and_the_cgroup(tmp_path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       32000000 kB\nMemAvailable:   20000000 kB\n")
    cg = tmp_path / "cg"
    cg.mkdir()
    assert memory.host_available_bytes(str(meminfo), str(cg)) == 20000000 * 1024  # no cgroup files
    (cg / "memory.max").write_text("max\n")
    (cg / "memory.current").write_text("1000\n")
    assert memory.host_available_bytes(str(meminfo), str(cg)) == 20000000 * 1024  # no cgroup limit
    (cg / "memory.max").write_text(f"{8 * 2 ** 30}\n")
    (cg / "memory.current").write_text(f"{3 * 2 ** 30}\n")
    assert memory.host_available_bytes(str(meminfo), str(cg)) == 5 * 2 ** 30
    assert memory.host_available_bytes(str(tmp_path / "none"), str(tmp_path / "none")) is None


def test_cpu_devices_get_the_host_memory_and_the_variable_overrides(monkeypatch):
    class Cpu:
        platform = "cpu"

        def memory_stats(self):
            return None

    monkeypatch.delenv(memory.LIMIT_ENV, raising=False)
    monkeypatch.setattr(memory, "host_available_bytes", lambda: 12 * 2 ** 30)
    assert memory.device_limit(Cpu(), 4) == 3 * 2 ** 30  # 4 devices share the host
    monkeypatch.setenv(memory.LIMIT_ENV, "1e6")
    assert memory.device_limit(Cpu(), 4) == 10 ** 6


@pytest.mark.slow
def test_a_step_too_big_for_the_host_stops_before_step_one(tmp_path):
    paths = make_corpus(str(tmp_path / "corpus"), n_docs=120, n_files=1)
    tok = make_tokenizer(str(tmp_path / "tok"), paths, vocab_size=300)
    out = tmp_path / "run"
    args = ["--config", "tiny-cpu"]
    for s in tiny_overrides(paths, tok, str(out), **{"training.per_device_batch_size": 8}):
        args += ["--set", s]
    r = run_trainer(args, env={memory.LIMIT_ENV: "200000"})  # a 200 kB "host"
    assert r.returncode == 2, r.stderr[-3000:]
    lines = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr[-3000:]
    line = lines[0]
    assert "the training step needs about" in line
    assert "but the device has 0.0 GiB ($TRAINER_DEVICE_MEMORY_LIMIT)" in line
    for setting in ("training.per_device_batch_size (now 8", "model.remat=full", "data.max_seq_length (now 32)"):
        assert setting in line, line
    assert not os.path.exists(out)
