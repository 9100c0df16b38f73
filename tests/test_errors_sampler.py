"""Bad input and faults on the `mc4-sampling` commands: one `error:` line naming the option or path (no
traceback), exit 2 (143 on SIGTERM), nothing partial left behind, nobody's files overwritten; Hub
lookups fail fast offline; datatrove quiet; children die with their parent. One table row per
mistake or fault, in-process `main([...])` where no signal is involved."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time

import pytest

import mc4_sampling
from mc4_sampling.cli import main
from mc4_sampling.common import hub
from mc4_sampling.kenlm_models import DEFAULT_MODEL_DIR

SAMPLE = mc4_sampling.SAMPLE_DATA_DIR
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(autouse=True)
def _fresh_probe(monkeypatch):
    monkeypatch.setattr(hub, "_PROBED", {})
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    from mc4_sampling.kenlm_models import clear_cache

    clear_cache()


def one_error_line(err: str, command: str) -> str:
    assert "Traceback" not in err, err
    lines = [line for line in err.strip().splitlines() if "error:" in line]
    assert len(lines) == 1, err
    assert lines[0].startswith(f"mc4-sampling {command}: error: "), lines[0]
    return lines[0]


@pytest.fixture
def places(tmp_path):
    (tmp_path / "README.md").write_text("my notes\n")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine\n")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.jsonl").write_text('{"text": "una casa grande"}\n{"text": "un perro"}\n')
    (tmp_path / "models").mkdir()
    mc4 = tmp_path / "mc4"  # train shards of es only
    mc4.mkdir()
    for i in (0, 1):
        (mc4 / f"c4-es.tfrecord-0000{i}-of-02048.json.gz").write_bytes(b"")
    return dict(tmp=tmp_path, mine=mine, corpus=corpus, sample=SAMPLE, mc4=mc4)


# (command line, words of the one error line) — refused before any work, exit 2, nothing written
MISTAKES = [
    ("sample --data-dir {sample} --max-docs 3 -o {tmp}/README.md", "-o '{tmp}/README.md': it already exists"),
    ("sample --data-dir {sample} --max-docs 0", "--max-docs=0 is not valid"),
    ("sample --dataset {corpus} --split validation --method random", "--split validation: local data files"),
    ("sample --dataset {corpus} --split bogus --method random", "--split bogus: local data files"),
    ("sample --data-dir {sample} --split bogus", "--split bogus: mC4 has the splits train and validation"),
    ("sample --data-dir {sample} --perplexity-model models/es --method gaussian --max-docs 1",
     "perplexity_model='models/es': no such file or folder"),
    ("score --lang xx hola", "language='xx' is not an mC4 language"),
    ("score --lang ca hola", "--lang ca: the embedded perplexity model is Spanish"),
    ("score --perplexity-model models/es hola", "perplexity_model='models/es': no such file or folder (for a Hub"),
    ("calibrate --data-dir {sample} --target-rate 0.5 --docs 200 -o {mine}",
     "--output '{mine}': it already holds files this tool did not write (notes.txt)"),
    ("calibrate --data-dir {sample} --target-rate 0.5 --docs 200 -o {tmp}/README.md", "it is a file, not a folder"),
    # known before any reading: mC4 has no score column (before: "256 documents got no finite score" at the end)
    ("publish {tmp}/out --data-dir {sample} --score-column score --method random",
     "--score-column score: mC4 has no such column (its documents have only text, timestamp, url)"),
    ("sample --data-dir {sample} --score-column score --method threshold --max-docs 3",
     "--score-column score: mC4 has no such column"),
    # upsampling: its options, and the metadata column it reads (mC4 has none)
    ("sample --data-dir {sample} --method random --max-copies 0 --max-docs 3",
     "--max-copies 0 is not valid; it must be an integer >= 1"),
    ("publish {tmp}/out --data-dir {sample} --method random --max-copies 4 --upsample sqrt",
     "--upsample-column minhash_cluster_size: mC4 has no such column"),
    ("sample --dataset {corpus} --method random --factor 0.5 --token-budget 1000",
     "--token-budget fits the factor; --factor sets it: pass one or the other"),
    ("sample --data-dir {sample} --token-budget 1000", "--token-budget applies to --dataset only"),
    # no files: the folder searched, the names looked for, what it holds (before: "no validation files found for es")
    ("sample --data-dir {mc4} --split validation --method random",
     "no validation files for es in '{mc4}' (looked for c4-es-validation.tfrecord-NNNNN-of-NNNNN.json.gz); "
     "it holds: es train (2 shards)"),
    ("calibrate --data-dir {mc4} --split validation --target-rate 0.5 -o {tmp}/cal",
     "no validation files for es in '{mc4}'"),
    ("publish {tmp}/out --data-dir {mc4} --splits validation --method random",
     "no validation files for es in '{mc4}'"),
]


@pytest.mark.parametrize("command, words", MISTAKES, ids=[c.split(" --")[0] + " " + w[:28] for c, w in MISTAKES])
def test_mistake_is_one_error_line_and_nothing_is_touched(places, capsys, monkeypatch, command, words):
    tmp = places["tmp"]
    monkeypatch.chdir(tmp)  # relative paths (models/es: a local folder, not a Hub id)
    before = sorted(os.listdir(tmp)), sorted(os.listdir(places["mine"])), (tmp / "README.md").read_text()
    start = time.monotonic()
    assert main(command.format(**places).split()) == 2
    line = one_error_line(capsys.readouterr().err, command.split()[0])
    assert words.format(**places) in line, line
    assert time.monotonic() - start < 10  # known up front: no reading, no Hub retries
    assert (sorted(os.listdir(tmp)), sorted(os.listdir(places["mine"])), (tmp / "README.md").read_text()) == before


def test_overwrite_and_own_outputs(places, capsys):
    tmp = places["tmp"]
    out = tmp / "kept.jsonl"
    for _ in range(2):  # a JSON-lines output of an earlier run is replaced
        assert main(["sample", "--data-dir", SAMPLE, "--method", "random", "--max-docs", "2", "-o", str(out)]) == 0
    assert main(["sample", "--data-dir", SAMPLE, "--method", "random", "--max-docs", "2", "-o", str(tmp / "README.md"),
                 "--overwrite"]) == 0
    assert len((tmp / "README.md").read_text().splitlines()) == 2
    cal = tmp / "cal"
    for _ in range(2):  # a folder calibrate wrote is replaced whole by a rerun
        assert main(["calibrate", "--data-dir", SAMPLE, "--target-rate", "0.5", "--docs", "200", "--no-plots",
                     "-o", str(cal)]) == 0
    assert os.listdir(cal) == ["calibration.json"]
    assert not [n for n in os.listdir(tmp) if n.startswith(".")]


@pytest.mark.parametrize("command", ["sample --data-dir {sample} --max-docs 3 -o {ro}/kept.jsonl",
                                     "calibrate --data-dir {sample} --target-rate 0.5 --docs 200 -o {ro}/cal",
                                     "sample --data-dir {sample} --max-docs 3 -o {tmp}/k.jsonl --report {ro}/rep"])
def test_read_only_file_system_is_named(places, capsys, command):
    """Before: "Permission denied (check its permissions...)" where the file system is mounted read-only."""
    from conftest import mounted_tmpfs

    with mounted_tmpfs(places["tmp"] / "ro", "ro", "size=64k") as ro:
        assert main(command.format(ro=ro, **places).split()) == 2
        line = one_error_line(capsys.readouterr().err, command.split()[0])
        assert f"'{ro}" in line and "Read-only file system (errno EROFS" in line, line
        assert "Permission denied" not in line and os.listdir(ro) == []


def test_perplexity_model_does_not_swallow_the_text(capsys):
    assert main(["score", "--perplexity-model", DEFAULT_MODEL_DIR, "una casa grande"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and "una casa grande" in out[0]


def test_calibrate_that_fails_leaves_no_folder(places, monkeypatch, capsys):
    """A full disk while the calibration is written (and an unreachable target) leave nothing."""
    import mc4_sampling.calibration as calibration

    def full(calibration, perplexities, out_dir):  # calibration.json is written; the pictures find the disk full
        assert os.path.exists(os.path.join(out_dir, "calibration.json"))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), os.path.join(out_dir, "perplexity_histogram.png"))

    monkeypatch.setattr(calibration, "write_plots", full)
    cal = places["tmp"] / "cal"
    rc = main(["calibrate", "--data-dir", SAMPLE, "--target-rate", "0.5", "--docs", "200", "-o", str(cal)])
    assert rc == 2 and "No space left on device" in one_error_line(capsys.readouterr().err, "calibrate")
    assert not cal.exists() and not [n for n in os.listdir(places["tmp"]) if n.startswith(".")]


def test_sample_report_says_where_and_whether_the_rate_check_passed(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    report = tmp_path / "report"
    assert main(["sample", "--data-dir", SAMPLE, "--method", "gaussian", "--max-docs", "50", "-o", os.devnull,
                 "--report", str(report)]) == 0
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith(f"report: {report / 'report.json'} and ") and "interval" in line


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0 and capsys.readouterr().out.startswith("mc4-sampling ")


# --- the Hub --------------------------------------------------------------------------------------------


def test_hub_model_while_offline_fails_fast(monkeypatch, capsys):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    start = time.monotonic()
    assert main(["score", "--perplexity-model", "someone/kenlm", "hola"]) == 2
    line = one_error_line(capsys.readouterr().err, "score")
    assert "the Hub cannot be reached at http://127.0.0.1:9" in line and "'someone/kenlm'" in line
    assert time.monotonic() - start < 10


# (environment, command line, words of the one line): every command that reads the Hub or a remote source
# fails in seconds with the reachability rule's line, before any work, leaving nothing (before: publish
# worked over every shard and advised --on-bad-record skip; calibrate blamed its --output; HF_ENDPOINT and
# HF_HUB_OFFLINE were not honoured for mC4's files)
UNREACHABLE = "the Hub cannot be reached at http://127.0.0.1:9 (Connection refused) to "
OFFLINE = [
    ({"HF_ENDPOINT": "http://127.0.0.1:9"}, "publish {tmp}/out --method random --splits train",
     UNREACHABLE + "read mC4 (es); check the network, or give a local copy (--data-dir FOLDER)"),
    ({"HF_ENDPOINT": "http://127.0.0.1:9"}, "calibrate --target-rate 0.5 -o {tmp}/cal", UNREACHABLE + "read mC4 (es)"),
    ({"HF_ENDPOINT": "http://127.0.0.1:9"}, "sample --method random --max-docs 3 -o {tmp}/kept.jsonl",
     UNREACHABLE + "read mC4 (es)"),
    ({}, "publish {tmp}/out --method random --base-url http://127.0.0.1:9/mirror",
     "the server cannot be reached at http://127.0.0.1:9 (Connection refused) to read mC4 (es)"),
    ({"HF_HUB_OFFLINE": "1"}, "publish {tmp}/out --method random",
     "HF_HUB_OFFLINE is set, and mC4 (es) is streamed from the Hub, never cached"),
    ({"HF_ENDPOINT": "http://127.0.0.1:9"}, "sample --dataset someone/corpus --method random -o {tmp}/kept.jsonl",
     UNREACHABLE + "look up dataset 'someone/corpus'"),
    ({"HF_ENDPOINT": "http://127.0.0.1:9"}, "calibrate --dataset someone/corpus --target-rate 0.5 -o {tmp}/cal",
     UNREACHABLE + "look up dataset 'someone/corpus'"),
]


@pytest.mark.parametrize("env, command, words", OFFLINE, ids=[" ".join(c.split()[:2]) + str(sorted(e))
                                                              for e, c, _ in OFFLINE])
def test_unreachable_source_is_one_line_in_seconds_and_leaves_nothing(places, monkeypatch, capsys, env, command,
                                                                      words):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)  # restored after the test
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    tmp = places["tmp"]
    before = sorted(os.listdir(tmp))
    start = time.monotonic()
    assert main(command.format(**places).split()) == 2
    line = one_error_line(capsys.readouterr().err, command.split()[0])
    assert words in line and "--on-bad-record" not in line and "--output" not in line, line
    assert time.monotonic() - start < 10
    assert sorted(os.listdir(tmp)) == before  # no output folder, no temporary file


def test_hf_hub_offline_is_honoured_without_retries(monkeypatch, capsys, tmp_path):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)  # restored after the test
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(hub, "probe", lambda *a, **k: pytest.fail("probed while offline"))
    start = time.monotonic()
    assert main(["score", "--perplexity-model", "someone/kenlm", "hola"]) == 2
    one_error_line(capsys.readouterr().err, "score")
    assert time.monotonic() - start < 10


def test_push_to_an_unreachable_hub_is_one_line(tmp_path):
    from mc4_sampling.common.hub import HubError, push_folder

    with pytest.raises(HubError, match="the Hub cannot be reached at http://127.0.0.1:9"):
        push_folder(str(tmp_path), "someone/data", repo_type="dataset", endpoint="http://127.0.0.1:9")


# --- datatrove: quiet, with a bar over shards ---------------------------------------------------------------


def test_publish_is_quiet_unless_verbose(tmp_path):
    cli = [sys.executable, "-m", "mc4_sampling.cli"]
    args = ["publish", str(tmp_path / "out"), "--data-dir", SAMPLE, "--method", "random", "--splits", "validation",
            "--workers", "1"]
    quiet = subprocess.run(cli + args, capture_output=True, text=True, cwd=REPO, timeout=300)
    assert quiet.returncode == 0, quiet.stderr
    assert "Launching pipeline" not in quiet.stderr and "PIPELINE" not in quiet.stderr, quiet.stderr
    assert "Stats" not in quiet.stderr, quiet.stderr  # datatrove's statistics block: in logs/stats.json
    assert (tmp_path / "out" / ".mc4-sampling" / "logs" / "stats.json").is_file()
    logs = [os.path.join(r, f) for r, _, fs in os.walk(tmp_path / "out") for f in fs if f.startswith("task_")]
    assert logs and "Launching pipeline" in open(logs[0]).read()  # every line is kept in the task logs
    loud = subprocess.run(cli + ["-v", "publish", str(tmp_path / "out2")] + args[2:], capture_output=True,
                          text=True, cwd=REPO, timeout=300)
    assert loud.returncode == 0 and "Launching pipeline" in loud.stderr and "Stats" in loud.stderr


def test_shard_progress_counts_finished_shards(tmp_path):
    import io

    from mc4_sampling.datatrove_logs import ShardProgress

    files = [str(tmp_path / f"{i}.json") for i in range(3)]
    open(files[0], "w").close()
    bar = ShardProgress(files, disable=False, interval=0.05, file=io.StringIO())
    assert bar.bar.n == 1
    open(files[2], "w").close()
    time.sleep(0.3)
    assert bar.bar.n == 2
    bar.stop()


# --- signals and child processes ---------------------------------------------------------------------------


def test_sigterm_during_sample_is_one_line_exit_143_and_no_output(tmp_path, mini_mc4, file_server):
    name = "c4-es.tfrecord-00000-of-02048.json.gz"
    server = file_server(mini_mc4)
    server.stalls[name] = [(mini_mc4 / name).stat().st_size // 2]
    out = tmp_path / "kept.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "mc4_sampling.cli", "sample", "--base-url", server.url,
                             "--shards", "0", "--method", "none", "-o", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    try:
        deadline = time.time() + 60
        while not server.requests and time.time() < deadline and proc.poll() is None:
            time.sleep(0.1)
        time.sleep(1.5)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == "mc4-sampling sample: terminated; no output file written"
    assert os.listdir(tmp_path) == []


def _finished(units) -> list:
    """The units a publish run has finished: stats files under their final names (one being written has a
    temporary name beside it, removed when the run is stopped)."""
    return [name for name in os.listdir(units) if not name.startswith(".")] if units.is_dir() else []


def test_ctrl_c_on_publish_with_two_workers_says_what_is_kept_and_the_rerun_resumes(tmp_path, mini_mc4, file_server,
                                                                                      monkeypatch):
    """Ctrl-C (SIGINT to the whole process group, as a terminal sends it) once a shard is finished: one line
    naming the finished shards and the folder, no worker traceback, no partial file; the rerun reads only the
    shard not finished. Before: 86 lines of worker tracebacks and "no output file written"."""
    server = file_server(mini_mc4)
    stalled = "c4-es.tfrecord-00002-of-02048.json.gz"
    server.stalls[stalled] = [100]  # the last shard never finishes: the run is interrupted during it
    out = tmp_path / "out"
    args = ["publish", str(out), "--base-url", server.url, "--shards", "0", "1", "2", "--splits", "train",
            "--method", "random"]
    proc = subprocess.Popen([sys.executable, "-m", "mc4_sampling.cli", *args, "--workers", "2"], text=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=REPO, start_new_session=True)
    units = out / ".mc4-sampling" / "units"
    try:
        deadline = time.monotonic() + 120
        while not _finished(units) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130 and "Traceback" not in err, err
    finished = len(_finished(units))
    assert 1 <= finished <= 2, err
    assert err.strip().splitlines()[-1] == (f"mc4-sampling publish: interrupted: {finished} of 3 shards finished and "
                                            f"kept in {out}; run the same command again to resume"), err
    assert not list(out.glob("data/*/.tmp.*"))
    server.stalls.clear()
    from mc4_sampling.datatrove_logs import QUIET_ENV

    monkeypatch.delenv(QUIET_ENV, raising=False)
    before = {name: server.counts.get(name, 0) for name in os.listdir(mini_mc4)}
    assert main([*args, "--workers", "1"]) == 0  # resumed: only the shards not finished are read again
    # the in-process quiet run gave the process its environment back: later subprocesses (a -v run) are not quiet
    assert QUIET_ENV not in os.environ
    import datatrove.executor.base

    assert datatrove.executor.base.add_task_logger.__module__ == "datatrove.utils.logging"  # its own logging again
    again = [name for name in os.listdir(mini_mc4) if server.counts.get(name, 0) > before[name]]
    assert len(again) == 3 - finished and stalled in again
    assert len(list(out.glob("data/random/train-*.parquet"))) == 3


def test_forked_children_end_with_a_killed_parent(tmp_path):
    """What publish does for datatrove's workers and manager: every child forked after
    children_die_with_parent() ends once its parent is killed with SIGKILL."""
    script = (
        "import os, signal, threading, time\n"
        "from mc4_sampling.common.processes import children_die_with_parent\n"
        "children_die_with_parent()\n"
        "pids = []\n"
        "def fork():\n"
        "    pid = os.fork()\n"
        "    if pid == 0:\n"
        "        time.sleep(60)\n"
        "        os._exit(0)\n"
        "    pids.append(pid)\n"
        "fork()  # from the main thread: prctl(PR_SET_PDEATHSIG)\n"
        "t = threading.Thread(target=fork); t.start(); t.join()  # from a thread: the parent watch\n"
        "time.sleep(0.5)\n"
        "print(*pids, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    (tmp_path / "parent.py").write_text(script)
    done = subprocess.run([sys.executable, str(tmp_path / "parent.py")], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": REPO}, timeout=60)
    assert done.returncode == -signal.SIGKILL, done.stderr
    for pid in map(int, done.stdout.split()):
        assert _ends_within(pid, 10), pid


def test_forkserver_workers_end_with_a_killed_parent(tmp_path):
    """publish's pool workers are forked by a forkserver, not by publish: a worker started while the parent
    was stopping the others (so no SIGINT reached it) ends once the parent is gone, and the forkserver with
    it. Before: such a worker waited forever on the task queue's lock, holding the terminal's stderr."""
    script = (
        "import os, signal, time, multiprocess\n"
        "if __name__ == '__main__':\n"
        "    ctx = multiprocess.get_context('forkserver')\n"
        "    ctx.set_forkserver_preload(['mc4_sampling.common.forkserver_preload'])\n"
        "    child = ctx.Process(target=time.sleep, args=(60,)); child.start()\n"
        "    time.sleep(0.5)\n"
        "    print(child.pid, flush=True)\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    (tmp_path / "parent.py").write_text(script)
    done = subprocess.run([sys.executable, str(tmp_path / "parent.py")], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": REPO}, timeout=60)
    assert done.returncode == -signal.SIGKILL, done.stderr
    pid = int(done.stdout.split()[0])
    ended = _ends_within(pid, 10)
    if not ended:
        os.kill(pid, signal.SIGKILL)
    assert ended, pid


def _ends_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X"):  # ended, not reaped yet
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.2)
    return False


def test_publish_that_failed_before_any_shard_does_not_block_the_corrected_rerun(tmp_path):
    """A failed run leaves only its manifest and logs: a rerun with other (corrected) options starts afresh;
    once a shard is finished, other options are refused as before."""
    from mc4_sampling.publish import STATE_DIR, PublishError, prepare_output

    out = str(tmp_path / "out")
    first = {"format": "mc4-sampling-publish", "configs": {"a": {"seed": 1}}}
    assert prepare_output(out, first, overwrite=False) is False
    os.makedirs(os.path.join(out, STATE_DIR, "logs"))
    open(os.path.join(out, STATE_DIR, "logs", "task_00000.log"), "w").close()
    corrected = {"format": "mc4-sampling-publish", "configs": {"a": {"seed": 2}}}
    assert prepare_output(out, corrected, overwrite=False) is False
    assert os.listdir(os.path.join(out, STATE_DIR)) == ["options.json"]
    os.makedirs(os.path.join(out, "data", "a"))
    open(os.path.join(out, "data", "a", "train-00000-of-00001.parquet"), "w").close()
    with pytest.raises(PublishError, match="made with other options"):
        prepare_output(out, first, overwrite=False)


def test_cli_errors_name_the_flags_not_the_python_spellings(tmp_path, capsys):
    from conftest import write_shard

    data = tmp_path / "data" / "multilingual"
    data.mkdir(parents=True)
    write_shard(data / "c4-es.tfrecord-00000-of-02048.json.gz", 3, lines=["{not json"])
    out = tmp_path / "kept.jsonl"
    assert main(["sample", "--data-dir", str(data.parent), "--method", "none", "-o", str(out)]) == 2
    line = one_error_line(capsys.readouterr().err, "sample")
    assert "not a JSON object" in line and "(pass --on-bad-record skip to skip" in line and "on_bad_record" not in line
    assert os.listdir(tmp_path) == ["data"]


def test_sample_dataset_with_a_wrong_stats_object_is_a_config_error():
    import datasets

    from mc4_sampling import ConfigError
    from mc4_sampling.corpus import sample_dataset

    ds = datasets.Dataset.from_dict({"text": ["una casa"]})
    with pytest.raises(ConfigError, match=r"stats=\{\} is not valid; it must be a SamplingStats"):
        sample_dataset(ds, sampling_method="random", stats={})


# --- checks before the work ------------------------------------------------------------------------------------


def test_eval_docs_beyond_the_kept_candidates_of_a_remote_source_is_refused_before_any_parquet_file(
        tmp_path, mini_mc4, file_server, capsys):
    """``publish --tokenizer --eval-docs N`` on a remote source (a mirror, as the Hub): the published train
    split (what the sampling keeps) holding fewer than N eval candidates is one line before anything is
    written. Before: every Parquet file was written, then "the random train split holds only K eval
    candidates". The count is checked against the Parquet files a publish without --tokenizer writes."""
    import pyarrow.parquet as pq

    from trainer.data.holdout import content_key, is_candidate
    from trainer.data.publish_tokens import check_kept_eval_candidates
    from trainer.data.tokenizer import train_tokenizer
    from trainer.errors import ConfigError

    server = file_server(mini_mc4)
    train_tokenizer(["una casa roja", "la casa azul"] * 20, str(tmp_path / "tok"), vocab_size=300)
    source = ["--base-url", server.url, "--shards", "0", "--splits", "train", "--method", "random", "--workers", "1"]
    ref = tmp_path / "ref"  # the reference: the split as published, its candidates counted by brute force
    assert main(["publish", str(ref), *source]) == 0
    texts = [t for f in sorted(ref.glob("data/random/train-*.parquet")) for t in pq.read_table(f)["text"].to_pylist()]
    n = len({content_key(t) for t in texts if is_candidate(t, 0, 0.1)})
    assert 0 < n < len(texts) < 400  # random keeps some of the shard's 400 documents
    capsys.readouterr()
    out = tmp_path / "out"
    requests = dict(server.counts)
    assert main(["publish", str(out), *source, "--tokenizer", str(tmp_path / "tok"), "--eval-docs", str(n + 1)]) == 2
    line = one_error_line(capsys.readouterr().err, "publish")
    assert line.endswith(f"error: --eval-docs {n + 1} is more than the {n} eval candidates among the {len(texts)} of "
                         f"400 train documents that --method random keeps (--base-url {server.url}, --eval-fraction "
                         "0.1); lower --eval-docs or raise --eval-fraction"), line
    assert not out.exists() and server.counts != requests  # read up front, nothing written
    # exactly at the boundary: n candidates are enough (the check stops as soon as it has them)
    import argparse

    from mc4_sampling.commands.publish import add_parser

    sub = argparse.ArgumentParser().add_subparsers()
    add_parser(sub)
    parser = sub.choices["publish"]
    for eval_docs, fails in ((n, False), (n + 1, True)):
        args = parser.parse_args([str(out), *source, "--tokenizer", "tok", "--eval-docs", str(eval_docs)])
        from mc4_sampling.commands.common import build_config
        from mc4_sampling.publish import method_configs

        configs = method_configs(build_config(args, return_perplexity=True, sampling_method="random",
                                              weighting_options=None), ["random"])
        if fails:
            with pytest.raises(ConfigError):
                check_kept_eval_candidates(args, configs)
        else:
            check_kept_eval_candidates(args, configs)
