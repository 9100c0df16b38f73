"""Output paths of the mc4-sampling commands: every unusable one is one `error:` line naming it (exit
2), files appear only when complete, and Ctrl-C ends with one line, exit 130 and no output file."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import write_shard

import mc4_sampling
from mc4_sampling.cli import main

SAMPLE = mc4_sampling.SAMPLE_DATA_DIR
IS_ROOT = os.geteuid() == 0


def _read_only_dir(tmp_path):
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    return folder


# (command arguments with {tmp} and {ro} placeholders, path the message names, words of the reason)
CASES = [
    ("sample -o {tmp}/missing/kept.jsonl", "{tmp}/missing/kept.jsonl", "No such file or directory"),
    ("sample -o {tmp}", "{tmp}", "it is a folder"),
    ("sample -o {ro}/kept.jsonl", "{ro}/kept.jsonl", "Permission denied"),
    ("sample -o /dev/full", "/dev/full", "No space left on device"),
    ("sample -o /proc/mc4-kept.jsonl", "/proc/mc4-kept.jsonl", ""),
    ("sample -o /proc/self/status/kept.jsonl", "/proc/self/status/kept.jsonl", "Not a directory"),
    ("sample --report {tmp}/file.txt -o {tmp}/kept.jsonl", "{tmp}/file.txt", "it is a file, not a folder"),
    ("sample --report /dev/full -o {tmp}/kept.jsonl", "/dev/full", "it is a file, not a folder"),
    ("sample --report {ro}/report -o {tmp}/kept.jsonl", "{ro}/report", "Permission denied"),
    ("sample --report /proc/mc4-report -o {tmp}/kept.jsonl", "/proc/mc4-report", ""),
    ("calibrate --target-rate 0.5 --docs 200 -o {tmp}/file.txt", "{tmp}/file.txt", "it is a file, not a folder"),
    ("calibrate --target-rate 0.5 --docs 200 -o /dev/full", "/dev/full", "it is a file, not a folder"),
    ("calibrate --target-rate 0.5 --docs 200 -o {ro}/cal", "{ro}/cal", "Permission denied"),
    ("calibrate --target-rate 0.5 --docs 200 -o /proc/mc4-cal", "/proc/mc4-cal", ""),
]


@pytest.mark.parametrize("command, path, reason", CASES, ids=[c[0].split(" -o")[0] + " " + c[1] for c in CASES])
def test_unusable_output_path_is_one_error_line(tmp_path, capsys, command, path, reason):
    if "{ro}" in command and IS_ROOT:
        pytest.skip("root writes into read-only folders")
    (tmp_path / "file.txt").write_text("not a folder\n")
    ro = _read_only_dir(tmp_path)
    fill = dict(tmp=tmp_path, ro=ro)
    argv = command.format(**fill).split()
    argv[1:1] = ["--data-dir", SAMPLE, *(["--method", "random", "--max-docs", "5"] if argv[0] == "sample" else [])]
    before = sorted(os.listdir(tmp_path))
    try:
        rc = main(argv)
    finally:
        ro.chmod(0o755)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    want = f"mc4-sampling {argv[0]}: error: cannot write"
    assert err[-1].startswith(want) and repr(path.format(**fill)) in err[-1] and reason in err[-1], err[-1]
    after = sorted(os.listdir(tmp_path))
    assert after == before  # no partial or temporary file left
    assert os.listdir(ro) == []


def test_sample_output_appears_only_when_complete(tmp_path, capsys):
    out = tmp_path / "kept.jsonl"
    assert main(["sample", "--data-dir", SAMPLE, "--method", "random", "--max-docs", "5", "-o", str(out)]) == 0
    assert len(out.read_text().splitlines()) == 5 and os.listdir(tmp_path) == ["kept.jsonl"]
    # a run that fails half way (a bad record) leaves no file, not even the previous one's name taken
    data = tmp_path / "data" / "multilingual"
    data.mkdir(parents=True)
    write_shard(data / "c4-es.tfrecord-00000-of-02048.json.gz", 300, lines=["{not json"])
    bad = tmp_path / "bad.jsonl"
    assert main(["sample", "--data-dir", str(data.parent), "--method", "none", "-o", str(bad)]) == 2
    assert "not a JSON object" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["data", "kept.jsonl"]
    # an existing file is replaced whole, with the usual permissions (not those of a private temporary file)
    assert main(["sample", "--data-dir", SAMPLE, "--method", "random", "--max-docs", "2", "-o", str(out)]) == 0
    assert len(out.read_text().splitlines()) == 2
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask


def test_report_and_calibration_files_are_renamed_when_complete(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    report = tmp_path / "report"
    assert main(["sample", "--data-dir", SAMPLE, "--method", "gaussian", "--max-docs", "50", "-o", os.devnull,
                 "--report", str(report)]) == 0
    assert sorted(os.listdir(report)) == ["observed_vs_expected.png", "report.json"]
    cal = tmp_path / "cal"
    assert main(["calibrate", "--data-dir", SAMPLE, "--target-rate", "0.5", "--docs", "300", "-o", str(cal)]) == 0
    assert sorted(os.listdir(cal)) == ["calibration.json", "expected_distributions.png", "perplexity_histogram.png"]
    assert json.loads((cal / "calibration.json").read_text())["target_rate"] == 0.5


def sigint_default() -> None:
    """In the child: Ctrl-C's default action. A shell's background job starts with SIGINT ignored, and
    Python then never raises KeyboardInterrupt (a test run started with ``&`` would test nothing)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_during_sample_is_one_line_exit_130_and_no_output(tmp_path, mini_mc4, file_server):
    """SIGINT while the sampler is reading: the (loopback) server sent half of the shard, then stalls."""
    name = "c4-es.tfrecord-00000-of-02048.json.gz"
    server = file_server(mini_mc4)
    server.stalls[name] = [(mini_mc4 / name).stat().st_size // 2]
    out = tmp_path / "kept.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "mc4_sampling.cli", "sample", "--base-url", server.url,
                             "--shards", "0", "--method", "none", "-o", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=sigint_default)
    try:
        deadline = time.time() + 60
        while not server.requests and time.time() < deadline and proc.poll() is None:
            time.sleep(0.1)
        time.sleep(1.5)  # the first half is read and sampled; the reader waits for more
        assert proc.poll() is None, proc.communicate()[1]
        assert [n for n in os.listdir(tmp_path) if n.startswith(".kept")]  # the temporary file, being written
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == "mc4-sampling sample: interrupted; no output file written"
    assert os.listdir(tmp_path) == []


def test_ctrl_c_during_score_is_one_line_exit_130():
    proc = subprocess.Popen([sys.executable, "-m", "mc4_sampling.cli", "score"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=sigint_default)
    try:
        proc.stdin.write("una frase\n")
        proc.stdin.flush()
        deadline = time.time() + 60
        line = proc.stdout.readline()  # the first text is scored: the model is loaded, stdin is read
        assert "una frase" in line and time.time() < deadline
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert err.strip().splitlines()[-1] == "mc4-sampling score: interrupted; no output file written"


def test_output_through_a_symbolic_link_keeps_the_link(tmp_path, capsys):
    real = tmp_path / "real.jsonl"
    real.write_text("old\n")
    link = tmp_path / "link.jsonl"
    link.symlink_to(real)
    assert main(["sample", "--data-dir", SAMPLE, "--method", "random", "--max-docs", "3", "-o", str(link)]) == 0
    assert link.is_symlink() and len(real.read_text().splitlines()) == 3
    assert sorted(os.listdir(tmp_path)) == ["link.jsonl", "real.jsonl"]
