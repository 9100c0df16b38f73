"""``mc4-sampling publish`` on datatrove: the same kept documents at any scale, resumable, safe, publishable."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import WORDS, mounted_tmpfs
from datasets import load_dataset

import mc4_sampling
from mc4_sampling import ConfigError, Mc4Sampling
from mc4_sampling.publish import MissingExtraError, PublishError, method_configs, publish

REPO = Path(__file__).resolve().parents[1]
METHODS = ("random", "gaussian")
CLI = [sys.executable, "-m", "mc4_sampling.cli", "publish"]


def write_lines(path, lines):
    with gzip.open(path, "wt", encoding="utf-8") as f:
        for line in lines:
            f.write(line + "\n")


def docs(n, seed):
    rng = random.Random(seed)
    out = []
    for j in range(n):
        text = "\n".join(" ".join(rng.choices(WORDS, k=rng.randint(3, 30))) for _ in range(rng.randint(1, 4)))
        out.append(json.dumps({"text": f"{j} {text}", "timestamp": "2020-05-01T10:00:00Z",
                               "url": f"https://ejemplo.es/{seed}/{j}"}))
    return out


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """Three train shards (one with bad lines in the middle) and one validation shard, 300 documents each."""
    root = tmp_path_factory.mktemp("mc4-scale") / "multilingual"
    root.mkdir()
    for i in (0, 1, 2):
        lines = docs(300, seed=i)
        if i == 1:  # positions count every line: the documents after these keep their line numbers
            lines[10:10] = ["not json", '{"no_text": 1}']
        write_lines(root / f"c4-es.tfrecord-{i:05d}-of-02048.json.gz", lines)
    write_lines(root / "c4-es-validation.tfrecord-00000-of-00016.json.gz", docs(300, seed=99))
    return root


def configs_for(data_dir, methods=METHODS, **options):
    options.setdefault("on_bad_record", "skip")
    base = Mc4Sampling(config_name="es", data_dir=str(data_dir), sampling_method=methods[0], **options).config
    return method_configs(base, methods)


def rows(out, config, split):
    files = sorted(Path(out, "data", config).glob(f"{split}-*.parquet"))
    return [r for f in files for r in pq.read_table(f).to_pylist()]


def streamed(data_dir, method, split, **options):
    options.setdefault("on_bad_record", "skip")
    return list(load_dataset("mc4-sampling", "es", data_dir=str(data_dir), sampling_method=method,
                             return_perplexity=True, streaming=True, split=split, **options))


@pytest.fixture(scope="module")
def reference(data_dir):
    return {(m, s): streamed(data_dir, m, s) for m in METHODS for s in ("train", "validation")}


@pytest.mark.parametrize("tasks,workers", [(1, 1), (4, 1), (4, 2)])
def test_local_executor_keeps_what_load_dataset_keeps(data_dir, reference, tmp_path, tasks, workers):
    result = publish(configs_for(data_dir), str(tmp_path / "out"), tasks=tasks, workers=workers)
    assert result.complete and result.tasks == tasks
    for (method, split), expected in reference.items():
        got = rows(tmp_path / "out", method, split)
        assert got == expected, (method, split)
        assert result.stats[method][split].kept == len(expected)
    assert result.stats["random"]["train"].bad_records == 2 and result.stats["random"]["train"].read == 900
    names = sorted(p.name for p in (tmp_path / "out" / "data" / "gaussian").iterdir())
    assert names == ["train-00000-of-00003.parquet", "train-00001-of-00003.parquet", "train-00002-of-00003.parquet",
                     "validation-00000-of-00001.parquet"]


def test_an_http_mirror_gives_the_same_files(data_dir, tmp_path, file_server):
    server = file_server(data_dir)
    base = Mc4Sampling(config_name="es", base_url=server.url, shards=[0, 1, 2], sampling_method="random",
                       on_bad_record="skip").config
    result = publish(method_configs(base, ["random"]), str(tmp_path / "remote"), splits=["train"], workers=1)
    assert result.complete and result.stats["random"]["train"].bad_records == 2
    assert rows(tmp_path / "remote", "random", "train") == streamed(data_dir, "random", "train")


def test_different_seeds_give_different_samples(data_dir, tmp_path):
    publish(configs_for(data_dir, ("random",), seed=1), str(tmp_path / "a"), splits=["train"], workers=1)
    publish(configs_for(data_dir, ("random",), seed=2), str(tmp_path / "b"), splits=["train"], workers=1)
    a, b = rows(tmp_path / "a", "random", "train"), rows(tmp_path / "b", "random", "train")
    assert a != b and a == streamed(data_dir, "random", "train", seed=1)


@pytest.mark.ray
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # datatrove's placement_group arguments
def test_ray_executor_keeps_the_same_documents(data_dir, reference, tmp_path):
    ray = pytest.importorskip("ray")
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    temp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _temp_dir=temp,
             _node_ip_address="127.0.0.1")
    try:
        result = publish(configs_for(data_dir), str(tmp_path / "out"), executor="ray", tasks=4, workers=2)
    finally:
        ray.shutdown()
        shutil.rmtree(temp, ignore_errors=True)  # a stale cluster file there would stop a later ray.init
    assert result.complete
    for (method, split), expected in reference.items():
        assert rows(tmp_path / "out", method, split) == expected


def test_a_killed_run_resumes_to_the_uninterrupted_result(tmp_path):
    root = tmp_path / "mc4" / "multilingual"
    root.mkdir(parents=True)
    for i in range(8):
        write_lines(root / f"c4-es.tfrecord-{i:05d}-of-02048.json.gz", docs(400, seed=i))
    args = ["--data-dir", str(root.parent), "--method", "gaussian", "--splits", "train", "--workers", "1"]
    out = tmp_path / "out"
    proc = subprocess.Popen(CLI + [str(out)] + args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    units = out / ".mc4-sampling" / "units"
    deadline = time.monotonic() + 120
    def finished_units():  # final names only: a stats file being written has a temporary one (SIGKILL leaves it)
        return [p for p in units.glob("*.json") if not p.name.startswith(".")]

    while not finished_units() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = len(finished_units())
    assert 1 <= finished < 8, "the run was not interrupted mid-way"
    assert not (out / "README.md").exists()  # the card comes last
    for f in (out / "data" / "gaussian").iterdir():  # a file with a final name is complete
        assert f.name.startswith(".tmp.") or pq.read_metadata(f).num_columns == 4
    result = subprocess.run(CLI + [str(out)] + args, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("Skipping") >= 1 or "shards_already_done" in result.stderr
    reference = tmp_path / "reference"
    result = subprocess.run(CLI + [str(reference)] + args, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    resumed, uninterrupted = rows(out, "gaussian", "train"), rows(reference, "gaussian", "train")
    assert resumed == uninterrupted and len({r["url"] for r in resumed}) == len(resumed)
    assert sorted(p.name for p in (out / "data" / "gaussian").iterdir()) == \
        sorted(p.name for p in (reference / "data" / "gaussian").iterdir())
    card = (out / "README.md").read_text()
    assert "| `gaussian` | train | 3,200 |" in card and f"| {len(resumed):,} |" in card


ISOLATED_LOAD = r"""
import importlib.abc, sys
class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "mc4_sampling":
            raise ImportError("mc4_sampling must not be needed to load the dataset")
sys.meta_path.insert(0, Refuse())
try:
    import mc4_sampling
except ImportError:
    pass
else:
    raise SystemExit("mc4_sampling is importable")
import json
from datasets import load_dataset
folder, expected = sys.argv[1], json.loads(sys.argv[2])
for config, splits in expected.items():
    for split, n in splits.items():
        ds = load_dataset(folder, config, split=split)
        assert ds.num_rows == n and ds.column_names == ["text", "timestamp", "url", "perplexity"], (config, split, ds)
        assert ds.features["perplexity"].dtype == "float64"
        streamed = list(load_dataset(folder, config, split=split, streaming=True))
        assert streamed == ds.to_list(), (config, split)
assert not any(m.split(".")[0] == "mc4_sampling" for m in sys.modules)
print("loaded", sum(sum(s.values()) for s in expected.values()))
"""


def test_the_folder_loads_with_plain_datasets_and_the_card_validates(tmp_path, loopback_hub, monkeypatch):
    from huggingface_hub import DatasetCard

    out = tmp_path / "out"
    result = publish(configs_for(mc4_sampling.SAMPLE_DATA_DIR, ("random", "stepwise", "gaussian")), str(out),
                     workers=1, repo_id="someone/mc4-es-sampled")
    expected = {c: {s: result.stats[c][s].kept for s in ("train", "validation")} for c in result.configs}
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(HF_DATASETS_CACHE=str(tmp_path / "cache"), HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    done = subprocess.run([sys.executable, "-I", "-c", ISOLATED_LOAD, str(out), json.dumps(expected)], cwd=tmp_path,
                          env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["loaded", str(sum(sum(s.values()) for s in expected.values()))]

    import huggingface_hub.constants

    card = DatasetCard((out / "README.md").read_text())
    hub = loopback_hub()
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", hub.url)  # read once, at import
    card.validate(repo_type="dataset")
    assert hub.validated
    data = card.data.to_dict()
    assert [c["config_name"] for c in data["configs"]] == ["random", "stepwise", "gaussian"]
    assert data["configs"][0]["default"] is True
    assert data["configs"][1]["data_files"] == [{"split": "train", "path": "data/stepwise/train-*"},
                                                {"split": "validation", "path": "data/stepwise/validation-*"}]
    info = {i["config_name"]: i for i in data["dataset_info"]}
    for config, splits in expected.items():
        assert {s["name"]: s["num_examples"] for s in info[config]["splits"]} == splits
        assert all(s["num_bytes"] > 0 for s in info[config]["splits"])
    text = card.content
    assert "| `stepwise` | train | 3,600 |" in text and "someone/mc4-es-sampled" in text


# --- refusals and failures -----------------------------------------------------------------------


def test_a_folder_holding_something_else_is_refused_and_kept(data_dir, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(PublishError, match="files this tool did not write.*notes.txt"):
        publish(configs_for(data_dir, ("random",)), str(out), splits=["validation"], workers=1)
    assert (out / "notes.txt").read_text() == "mine" and not (out / "data").exists()
    other = tmp_path / "other"
    publish(configs_for(data_dir, ("random",)), str(other), splits=["validation"], workers=1)
    with pytest.raises(PublishError, match="another dataset.*seed"):
        publish(configs_for(data_dir, ("random",), seed=7), str(other), splits=["validation"], workers=1)
    (other / "data" / "random" / "mine.csv").write_text("x")
    with pytest.raises(PublishError, match="did not write.*mine.csv"):
        publish(configs_for(data_dir, ("random",)), str(other), splits=["validation"], workers=1)
    assert (other / "data" / "random" / "mine.csv").exists()
    result = publish(configs_for(data_dir, ("random",), seed=7), str(other), splits=["validation"], workers=1,
                     overwrite=True)
    assert result.complete and not (other / "data" / "random" / "mine.csv").exists()
    assert rows(other, "random", "validation") == streamed(data_dir, "random", "validation", seed=7)


def test_a_corrupt_shard_fails_its_task_by_name_and_the_others_are_kept(data_dir, tmp_path):
    root = tmp_path / "bad" / "multilingual"
    root.mkdir(parents=True)
    for i in (0, 2):
        name = f"c4-es.tfrecord-{i:05d}-of-02048.json.gz"
        os.symlink(data_dir / name, root / name)
    broken = root / "c4-es.tfrecord-00003-of-02048.json.gz"
    good = gzip.compress(("\n".join(docs(50, 3)) + "\n").encode())
    broken.write_bytes(good[:-40])  # truncated gzip
    out = tmp_path / "out"
    configs = configs_for(root.parent, ("random",), on_bad_record="raise")
    with pytest.raises(PublishError, match="1 shard.*failed: shard .*c4-es.tfrecord-00003-of-02048.json.gz"):
        publish(configs, str(out), splits=["train"], tasks=3, workers=2)
    folder = out / "data" / "random"
    assert sorted(p.name for p in folder.iterdir()) == ["train-00000-of-00003.parquet", "train-00001-of-00003.parquet"]
    assert not (out / "README.md").exists()
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    broken.write_bytes(good)  # repaired: a rerun (with another number of tasks) finishes only that shard
    result = publish(configs, str(out), splits=["train"], tasks=1, workers=1)
    assert result.complete and (out / "README.md").exists()
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir() if p.name in before} == before
    assert rows(out, "random", "train") == streamed(root.parent, "random", "train", on_bad_record="raise")


def test_bad_command_lines_exit_2_with_an_error_line(tmp_path):
    def cli(*args):
        return subprocess.run(CLI + [str(tmp_path / "out"), "--data-dir", mc4_sampling.SAMPLE_DATA_DIR, *args],
                              capture_output=True, text=True)

    r = cli("--executor", "spark")
    assert r.returncode == 2 and "invalid choice: 'spark'" in r.stderr
    r = cli("--slurm-partition", "gpu")
    assert r.returncode == 2 and "error: --slurm-partition needs --executor slurm" in r.stderr
    r = cli("--executor", "slurm")
    assert r.returncode == 2 and "needs --slurm-partition" in r.stderr
    r = cli("--max-docs", "5", "--tasks", "2")
    assert r.returncode == 2 and "--max-docs" in r.stderr and "--tasks 1" in r.stderr
    (tmp_path / "file").write_text("x")
    r = subprocess.run(CLI + [str(tmp_path / "file" / "out"), "--data-dir", mc4_sampling.SAMPLE_DATA_DIR],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "error: cannot write to the output folder" in r.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("where", ["chmod", "under a file", "under /proc", "read-only mount"])
def test_an_unwritable_output_folder_is_a_clear_error(tmp_path, where):
    locked = tmp_path / "locked"
    with contextlib.ExitStack() as stack:
        if where == "chmod":
            if os.geteuid() == 0:
                pytest.skip("root writes anywhere")
            locked.mkdir()
            locked.chmod(0o500)
            stack.callback(locked.chmod, 0o700)
            out = locked / "out"
        elif where == "under a file":
            locked.write_text("x")
            out = locked / "out"
        elif where == "under /proc":  # no one creates folders there, root included
            out = Path("/proc") / f"mc4-sampling-out-{os.getpid()}" / "out"
        else:
            out = stack.enter_context(mounted_tmpfs(locked, "ro", "size=1m")) / "out"
        r = subprocess.run(CLI + [str(out), "--data-dir", mc4_sampling.SAMPLE_DATA_DIR], capture_output=True,
                           text=True)
    assert r.returncode == 2, r.stderr[-3000:]
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"mc4-sampling publish: error: cannot write to the output folder "
                                                   f"{out}: "), r.stderr[-3000:]
    if where == "read-only mount":  # the real cause, as every other command words it
        assert lines[0].endswith("Read-only file system (errno EROFS: the file system is mounted read-only; write "
                                 "elsewhere)"), lines[0]
    assert "Traceback" not in r.stderr and not out.exists()


INJECT_ENOSPC = r"""
import errno, os, sys
import pyarrow.parquet as pq
real, calls = pq.ParquetWriter.write_table, []
def write_table(self, *args, **kwargs):  # the disk fills up at write number FAIL_AT (as pyarrow says it)
    calls.append(1)
    if len(calls) >= int(os.environ["FAIL_AT"]):
        raise OSError(errno.ENOSPC, "Error writing bytes to file. Detail: [errno 28] No space left on device")
    return real(self, *args, **kwargs)
pq.ParquetWriter.write_table = write_table
from mc4_sampling.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("how", ["tmpfs", "injected"])
def test_a_disk_full_mid_run_is_a_clear_error_and_a_rerun_finishes(tmp_path, how):
    args = ["--data-dir", mc4_sampling.SAMPLE_DATA_DIR, "--method", "random", "--splits", "train", "--tasks", "1",
            "--workers", "1"]
    reference = tmp_path / "reference"
    done = subprocess.run(CLI + [str(reference)] + args, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    shards = sorted(p.name for p in (reference / "data" / "random").iterdir())
    assert len(shards) == 4
    with contextlib.ExitStack() as stack:
        if how == "tmpfs":  # room for the first two shards and the bookkeeping, not for the third
            room = sum((reference / "data" / "random" / name).stat().st_size for name in shards[:2]) + 64 * 1024
            assert (reference / "data" / "random" / shards[2]).stat().st_size > 64 * 1024
            disk = stack.enter_context(mounted_tmpfs(tmp_path / "disk", f"size={-(-room // 4096) * 4}k"))
            out = disk / "out"
            full = subprocess.run(CLI + [str(out)] + args, capture_output=True, text=True)
        else:
            out = tmp_path / "out"
            full = subprocess.run([sys.executable, "-c", INJECT_ENOSPC, "publish", str(out)] + args,
                                  capture_output=True, text=True, env={**os.environ, "FAIL_AT": "3"})
        assert full.returncode == 2, full.stderr[-3000:]
        lines = full.stderr.strip().splitlines()
        errors = [line for line in lines if line.startswith("mc4-sampling publish: error:")]
        assert len(errors) == 1 and errors == lines[-1:], full.stderr[-3000:]
        assert "No space left on device" in errors[0] and str(out / "data" / "random" / ".tmp.train-00002") in errors[0]
        folder = out / "data" / "random"
        assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(".tmp.")) == shards[:2]
        assert sorted(p.name for p in (out / ".mc4-sampling" / "units").iterdir()) == \
            [name.replace(".parquet", ".json") for name in shards[:2]]
        for name in shards[:2]:  # kept and complete: the same rows as the uninterrupted run
            expected = pq.read_table(reference / "data" / "random" / name).to_pylist()
            assert pq.read_table(folder / name).to_pylist() == expected
        assert not (out / "README.md").exists()
        assert not (out / ".mc4-sampling" / "logs" / "completions" / "00000").exists()
        before = {name: (folder / name).stat().st_mtime_ns for name in shards[:2]}

        if how == "tmpfs":  # space is back
            subprocess.run(["mount", "-o", "remount,size=64m", str(out.parent)], check=True)
        again = subprocess.run(CLI + [str(out)] + args, capture_output=True, text=True)
        assert again.returncode == 0, again.stderr[-3000:]
        # datatrove's statistics (kept out of a quiet run's stderr) count the shards skipped as done
        assert "shards_already_done" in (out / ".mc4-sampling" / "logs" / "stats.json").read_text()
        assert sorted(p.name for p in folder.iterdir()) == shards
        assert {name: (folder / name).stat().st_mtime_ns for name in shards[:2]} == before
        assert rows(out, "random", "train") == rows(reference, "random", "train")
        assert (out / "README.md").read_text() == (reference / "README.md").read_text()


@pytest.mark.parametrize("module,executor", [("datatrove", "local"), ("ray", "ray")])
def test_a_missing_engine_names_the_extra(data_dir, tmp_path, monkeypatch, module, executor):
    for name in list(sys.modules):
        if name == module or name.startswith(module + ".") or name == "mc4_sampling.engine":
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, module, None)  # import raises ImportError
    with pytest.raises(MissingExtraError, match=r"pip install 'mc4-sampling\[scale\]'"):
        publish(configs_for(data_dir, ("random",)), str(tmp_path / "out"), executor=executor)
    assert not (tmp_path / "out").exists()


def test_max_docs_caps_each_config_and_split_in_one_task(data_dir, tmp_path):
    result = publish(configs_for(data_dir), str(tmp_path / "out"), tasks=1, max_docs=7)
    for method in METHODS:
        for split in ("train", "validation"):
            expected = streamed(data_dir, method, split)[:7]
            assert rows(tmp_path / "out", method, split) == expected
            assert result.stats[method][split].kept == len(expected)
    assert result.stats["random"]["train"].kept == 7 and result.stats["random"]["train"].read < 900
    with pytest.raises(ConfigError, match="--max-docs"):
        publish(configs_for(data_dir), str(tmp_path / "out2"), max_docs=7)


# --- Slurm and the Hub ---------------------------------------------------------------------------


def test_slurm_writes_the_job_array_script_without_submitting(data_dir, tmp_path):
    out = tmp_path / "out"
    r = subprocess.run(CLI + [str(out), "--data-dir", str(data_dir), "--method", "random", "gaussian", "--executor",
                              "slurm", "--slurm-partition", "cpu-long", "--slurm-time", "12:00:00",
                              "--slurm-cpus-per-task", "2", "--slurm-mem-per-cpu", "3", "--slurm-job-name", "mc4es",
                              "--slurm-venv", "/opt/venv/bin/activate", "--tasks", "3", "--slurm-dry-run"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    logs = out / ".mc4-sampling" / "logs"
    script = (logs / "launch_script.slurm").read_text()
    for line in ("#SBATCH --partition=cpu-long", "#SBATCH --time=12:00:00", "#SBATCH --cpus-per-task=2",
                 "#SBATCH --mem-per-cpu=3.0G", "#SBATCH --job-name=mc4es", "#SBATCH --array=0-2",
                 "source /opt/venv/bin/activate", f"launch_pickled_pipeline {logs / 'executor.pik'}"):
        assert line in script, line
    assert json.loads((logs / "ranks_to_run.json").read_text()) == [0, 1, 2]
    assert "wrote a Slurm job array of 3 tasks" in r.stderr and not (out / "README.md").exists()
    import dill

    executor = dill.loads((logs / "executor.pik").read_bytes())
    reader, sampler, writer = executor.pipeline
    assert executor.world_size == 3 and len(reader.units) == 4 and list(sampler.configs) == ["random", "gaussian"]
    assert writer.output_dir == str(out)


def test_publish_pushes_the_dataset_without_its_state_or_the_token(data_dir, tmp_path, loopback_hub):
    hub = loopback_hub()
    out = tmp_path / "subset"
    env = {**os.environ, "HF_ENDPOINT": hub.url, "HF_TOKEN": "hf_secret_token_value"}
    cli = [sys.executable, "-m", "mc4_sampling.cli", "-vv", "publish"]
    r = subprocess.run(cli + [str(out), "--data-dir", str(data_dir), "--method", "random", "gaussian", "--workers", "1",
                              "--on-bad-record", "skip", "--push-to-hub", "someone/mc4-es-sampled", "--private"],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert "hf_secret_token_value" not in r.stderr + r.stdout
    created = hub.created[0]
    assert created["type"] == "dataset" and (created.get("private") is True or created.get("visibility") == "private")
    uploaded = hub.repo_files("someone/mc4-es-sampled", repo_type="dataset")
    local = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert set(uploaded) == {f for f in local if not f.startswith(".")}
    assert "README.md" in uploaded and "data/gaussian/train-00001-of-00003.parquet" in uploaded
    for name, content in uploaded.items():
        assert content == (out / name).read_bytes()


def test_push_folder_large_uses_upload_large_folder_where_huggingface_hub_has_it(tmp_path, loopback_hub, monkeypatch):
    from huggingface_hub import HfApi

    from mc4_sampling.common.hub import push_folder

    hub = loopback_hub()
    calls = []

    def upload_large_folder(self, **kwargs):
        calls.append(kwargs)
        return None

    monkeypatch.setattr(HfApi, "upload_large_folder", upload_large_folder, raising=False)
    (tmp_path / "README.md").write_text("---\nlicense: odc-by\n---\n")
    push_folder(str(tmp_path), "someone/big", repo_type="dataset", private=True, large=True,
                allow_patterns=["README.md", "data/**"])
    assert calls == [{"repo_id": "someone/big", "folder_path": str(tmp_path), "repo_type": "dataset", "private": True,
                      "allow_patterns": ["README.md", "data/**"], "print_report": False}]
    assert hub.created[0]["name"] == "big"
