"""Bad input and faults on the trainer's commands: one `error:` line naming the option or path (no
traceback), exit 2 (130 on Ctrl-C, 143 on SIGTERM), nothing partial left behind, nobody's files
overwritten. One table row per mistake or fault; in-process `main([...])` calls (subprocesses only
where a signal needs one)."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from trainer_helpers import REPO, make_corpus

from mc4_sampling.common import hub
from mc4_sampling.common.console import run_guarded
from trainer.cli import main

IS_ROOT = os.geteuid() == 0


def _json_sets(**sets) -> list[str]:
    out = []
    for k, v in sets.items():
        out += ["--set", f"{k}={json.dumps(v)}"]
    return out


@pytest.fixture
def user_folder(tmp_path):
    """A folder holding somebody's files (what `export --output mine` used to replace)."""
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "README.md").write_text("my notes\n")
    (mine / "config.json").write_text('{"mine": true}\n')
    return mine


@pytest.fixture(autouse=True)
def _fresh_probe(monkeypatch):
    monkeypatch.setattr(hub, "_PROBED", {})
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)


def one_error_line(err: str) -> str:
    """The single `error:` line of ``err`` (argparse's usage line aside); no traceback."""
    assert "Traceback" not in err, err
    lines = [line for line in err.strip().splitlines() if "error:" in line]
    assert len(lines) == 1, err
    return lines[0]


# (command line, words the error line must hold) — mistakes argparse or the first checks refuse
USAGE = [
    ("finetune --model m --output {tmp}/o --task pos --batch-size 0", "argument --batch-size: 0 is out of range"),
    ("finetune --model m --output {tmp}/o --task pos --learning-rate nan", "argument --learning-rate: nan"),
    ("finetune --model m --output {tmp}/o --task pos --epochs -1", "argument --epochs: -1 is out of range"),
    ("finetune --model m --output {tmp}/o --task pos --warmup-ratio 2", "--warmup-ratio: 2 is out of range"),
    ("finetune --model m --output {tmp}/o --task pos --seeds 0", "argument --seeds: 0 is out of range"),
    ("finetune --model m --output {tmp}/o --task pos --max-steps x", "--max-steps: 'x' is not an integer"),
    ("evaluate --model m --task pos --eval-batch-size 0", "argument --eval-batch-size: 0"),
    ("fill-mask --model m --top-k -3 x", "argument --top-k: -3 is out of range: it must be an integer >= 1"),
    ("tokenizer --config tiny-cpu --output {tmp}/t --vocab-size 0", "--vocab-size: 0 is out of range"),
    ("tokenizer --config tiny-cpu --output {tmp}/t --min-frequency -1", "--min-frequency: -1 is out of range"),
    ("tokenizer --config tiny-cpu --output {tmp}/t --num-docs 0", "--num-docs: 0 is out of range"),
    ("suite --config tiny-cpu --seeds 2 --first-seed -1", "--first-seed: -1 is out of range"),
    ("suite --config tiny-cpu --seeds 0", "--seeds: 0 is out of range"),
    ("export --checkpoint c --output o --step -2", "--step: -2 is out of range"),
    ("finetune --model m --output {tmp}/o --task pos --layer-lr-decay 0", "--layer-lr-decay: 0 is out of range: it "
     "must be a finite number > 0 and <= 1"),
    ("finetune --model m --output {tmp}/o --task pos --freeze-layers -1", "--freeze-layers: -1 is out of range"),
    ("finetune --model m --output {tmp}/o --task pos --reinit-layers -2", "--reinit-layers: -2 is out of range"),
    ("compare r.json --output {tmp}/o --confidence 1", "--confidence: 1 is out of range: it must be a finite number "
     "> 0.5 and < 1"),
    ("compare r.json --output {tmp}/o --bootstrap-samples 10", "--bootstrap-samples: 10 is out of range"),
    ("average --checkpoint c --output o --last 0", "argument --last: 0 is out of range"),
    ("evaluate --mlm m --data f --mlm-probability 1", "argument --mlm-probability: 1 is out of range"),
    ("generate-pcfg --treebank t --output {tmp}/o --temperature 0", "argument --temperature: 0 is out of range: it "
     "must be a finite number > 0"),
    ("generate-pcfg --treebank t --output {tmp}/o --sentences 0", "argument --sentences: 0 is out of range"),
    ("generate-pcfg --treebank t --output {tmp}/o --relexicalise markov", "argument --relexicalise: invalid choice"),
]


@pytest.mark.parametrize("command, words", USAGE, ids=[c.split(" --")[0] + " " + w.split(":")[0] for c, w in USAGE])
def test_out_of_range_option_is_one_usage_error(tmp_path, capsys, command, words):
    with pytest.raises(SystemExit) as exit_info:
        main(command.format(tmp=tmp_path).split())
    assert exit_info.value.code == 2
    assert words in one_error_line(capsys.readouterr().err)
    assert os.listdir(tmp_path) == []


def _paths(tmp_path, user_folder):
    (tmp_path / "afile.txt").write_text("not a folder\n")
    (tmp_path / "cfgdir").mkdir()
    (tmp_path / "bad.yaml").write_text("model: [unclosed\n")
    (tmp_path / "badstudy.yaml").write_text("name: x\narms:\n  a: {sampling_method: random\n  b: 2\n")
    (tmp_path / "binary.yaml").write_bytes(b"\xff\xfe\x00bin")
    (tmp_path / "corrupt.jsonl").write_text('{"text": "a", "label": 0}\n{"text": "b", "lab\n')
    (tmp_path / "tags.jsonl").write_text(  # row 2: a tag fewer than its tokens
        '{"tokens": ["Hola", "Ana"], "ner_tags": ["O", "B-PER"]}\n'
        '{"tokens": ["Ana", "vive", "en", "Madrid"], "ner_tags": ["B-PER", "O", "O"]}\n')
    (tmp_path / "prose.conllu").write_text("# a comment\nEl gato duerme.\n")
    tb = os.path.join(REPO, "trainer", "artificial", "data", "es-tiny.conllu")
    return dict(tmp=tmp_path, mine=user_folder, tb=tb)


# (command line, words of the error line) — user mistakes found before any work, exit 2
MISTAKES = [
    ("train --config {tmp}/cfgdir", "--config '{tmp}/cfgdir' is a folder"),
    # the file, line and column (before: the first line of the library's message, no place)
    ("train --config {tmp}/bad.yaml",
     "{tmp}/bad.yaml:2:1: not valid YAML: expected ',' or ']', but got '<stream end>' (while parsing a flow sequence)"),
    ("study {tmp}/badstudy.yaml", "{tmp}/badstudy.yaml:4:4: not valid YAML: expected ',' or '}}', but got ':'"),
    ("train --config {tmp}/binary.yaml", "cannot read it: not a text file"),
    ("train --config tiny-cpu --set training.output_dir=\"{mine}\"",
     "training.output_dir '{mine}': it already holds files this tool did not write (README.md, config.json)"),
    ("train --config tiny-cpu --set training.output_dir=\"{tmp}/afile.txt\"",
     "training.output_dir '{tmp}/afile.txt': it is a file, not a folder"),
    ("tokenizer --config tiny-cpu --output {tmp}/afile.txt", "--output '{tmp}/afile.txt': it is a file, not a folder"),
    ("tokenizer --config tiny-cpu --output {mine}", "--output '{mine}': it already holds files this tool did not"),
    ("tokenizer --config tiny-cpu --output {tmp}/afile.txt/sub", "Not a directory"),
    ("export --checkpoint {tmp}/nothing --output {mine}", "--output '{mine}': it already holds files this tool"),
    ("export --checkpoint {tmp}/nothing --output {tmp}/afile.txt", "it is a file, not a folder"),
    ("export --checkpoint {tmp}/nothing --output {tmp}/out", "no checkpoint folder"),
    ("stats random:tiny-cpu@abc -o none", "random:tiny-cpu@abc: the seed after @ must be an integer"),
    ("stats random:tiny-cpu -o {tmp}/afile.txt", "--output '{tmp}/afile.txt': it already exists"),
    ("stats random:tiny-cpu -o {tmp}/cfgdir", "--output '{tmp}/cfgdir': it is a folder"),
    ("compare {tmp}/r.json --output {mine}", "--output '{mine}': it already holds files this tool did not"),
    ("evaluate --model m --task pos --output {tmp}/afile.txt", "--output '{tmp}/afile.txt': it already exists"),
    ("evaluate --model m", "--task is needed to evaluate a fine-tuned --model"),
    ("evaluate --mlm m", "--mlm needs --data FILE"),
    ("evaluate --mlm {tmp}/nothing --data {tmp}/afile.txt", "no such checkpoint folder"),
    ("average --checkpoint {tmp}/nothing --last 2 --output {tmp}/out", "no checkpoint folder"),
    ("average --checkpoint {tmp}/nothing --last 2 --output {mine}", "--output '{mine}': it already holds files"),
    ("train --config tiny-cpu --set training.masking=words", "'training.masking': expected one of 'token'"),
    ('train --config tiny-cpu --set training.mlm_probability={{"schedule":"linear","start":0.3,"end":1.5}}',
     "training.mlm_probability.end must be a rate in (0, 1), got 1.5"),
    ("finetune --model m --task pos --output {mine}", "--output '{mine}': it already holds files"),
    ("finetune --model m --task sequence-classification --dataset json --data-files train={tmp}/corrupt.jsonl "
     "--output {tmp}/out", "cannot read the data of 'json' ({tmp}/corrupt.jsonl): ValueError"),
    ("finetune --model m --task token-classification --dataset json --data-files train={tmp}/tags.jsonl "
     "--data-files validation={tmp}/tags.jsonl --tokens-column tokens --label-column ner_tags --output {tmp}/out",
     "{tmp}/tags.jsonl line 2: 4 tokens in 'tokens' but 3 tags in 'ner_tags'; "
     "each token needs exactly one tag"),
    ("generate-pcfg --treebank {tmp}/prose.conllu --output {tmp}/o", "treebank {tmp}/prose.conllu line 2: not CoNLL-U "
     "(expected 10 tab-separated columns"),
    ("generate-pcfg --treebank {tmp}/none.conllu --output {tmp}/o", "--treebank: no file '{tmp}/none.conllu'"),
    ("generate-pcfg --treebank {tb} --output {tmp}/o --top-k 40", "--top-k 40: treebank {tb} has only 28 dependency "
     "relations; give --top-k 28 or less"),
    ("generate-pcfg --treebank {tb} --output {tmp}/o --vocab-size 12", "--vocab-size 12 is smaller than the 21 "
     "relation tags (each needs a token); give --vocab-size 21 or more"),
    ("generate-pcfg --treebank {tb} --output {mine}", "--output '{mine}': it already holds files this tool did not"),
]


@pytest.mark.parametrize("command, words", MISTAKES, ids=[c.split(" --")[0] + " " + w[:30] for c, w in MISTAKES])
def test_mistake_is_one_error_line_and_nothing_is_touched(tmp_path, user_folder, capsys, command, words):
    fill = _paths(tmp_path, user_folder)
    before = {p: sorted(os.listdir(p)) for p in (tmp_path, user_folder)}
    mine_before = {n: (user_folder / n).read_text() for n in os.listdir(user_folder)}
    assert main(command.format(**fill).split()) == 2
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith("error: ") and words.format(**fill) in line, line
    assert {p: sorted(os.listdir(p)) for p in (tmp_path, user_folder)} == before  # nothing left behind
    assert {n: (user_folder / n).read_text() for n in os.listdir(user_folder)} == mine_before


def test_overwrite_is_the_way_to_replace_a_folder(tmp_path, user_folder, capsys):
    """--overwrite replaces the folder whole; without it the same folder, once ours, is replaced too."""
    from mc4_sampling.common.outputs import atomic_dir, check_output_dir, is_ours

    with atomic_dir(user_folder, "test", overwrite=True) as folder:
        (folder / "tokenizer.json").write_text("{}")
    assert sorted(os.listdir(user_folder)) == ["tokenizer.json"] and is_ours(user_folder)
    check_output_dir(user_folder)  # ours now: a rerun may replace it
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]  # no temporary folder left


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0 and capsys.readouterr().out.startswith("trainer ")


# --- the seams: the sampler's errors (and the environment's) surfacing under the trainer -----------------


@pytest.fixture
def corrupt_mc4(tmp_path, mini_mc4):
    import shutil

    from conftest import write_shard

    root = tmp_path / "data" / "multilingual"
    root.mkdir(parents=True)
    shutil.copy(mini_mc4 / "c4-es.tfrecord-00000-of-02048.json.gz", root)
    write_shard(root / "c4-es.tfrecord-00001-of-02048.json.gz", 5, lines=["{not json"])
    return root.parent


SEAMS = [
    # a corrupt shard under `trainer tokenizer` (BadRecordError of the sampler)
    (dict(path="mc4-sampling", name="es", kwargs=dict(data_dir="{data}"), sampling={}),
     "c4-es.tfrecord-00001-of-02048.json.gz:6: not a JSON object"),
    # an unreachable mirror (RemoteReadError of the sampler), no retries
    (dict(path="mc4-sampling", name="es", kwargs=dict(base_url="http://127.0.0.1:9/x", http_retries=0, shards=[0]),
          sampling={}),
     "127.0.0.1:9"),
    # a local copy without train files (before: "... ValueError: Bad split: train. Available splits: ['validation']")
    (dict(path="mc4-sampling", name="es", kwargs=dict(data_dir="{val}"), sampling={}),
     "data.split 'train': no train files for es in '{val}' (looked for c4-es.tfrecord-NNNNN-of-NNNNN.json.gz); "
     "it holds: es validation (1 shard)"),
]


@pytest.mark.parametrize("data, words", SEAMS, ids=["BadRecordError", "RemoteReadError", "no-train-files"])
def test_sampler_errors_under_the_trainer_are_one_line(tmp_path, corrupt_mc4, mini_mc4, capsys, data, words):
    import shutil

    val = tmp_path / "val"
    val.mkdir()
    shutil.copy(mini_mc4 / "c4-es-validation.tfrecord-00000-of-00016.json.gz", val)
    data = json.loads(json.dumps(data).replace("{data}", str(corrupt_mc4)).replace("{val}", str(val)))
    words = words.replace("{val}", str(val))
    sets = {f"data.{k}": v for k, v in data.items()}
    sets["data.num_eval_samples"] = 0
    out = tmp_path / "tok"
    argv = ["tokenizer", "--config", "tiny-cpu", "--output", str(out), "--num-docs", "1000", *_json_sets(**sets)]
    start = time.monotonic()
    assert main(argv) == 2
    assert words in one_error_line(capsys.readouterr().err)
    assert time.monotonic() - start < 30 and not out.exists()


def test_unreachable_hub_fails_fast_with_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    start = time.monotonic()
    assert main(["evaluate", "--model", "someone/model", "--task", "pos"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "the Hub cannot be reached at http://127.0.0.1:9" in line and "'someone/model'" in line, line
    assert time.monotonic() - start < 10


def test_hf_hub_offline_is_honoured(monkeypatch):
    """With HF_HUB_OFFLINE no probe is made (the library reads its cache only, without retries)."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)  # restored after the test
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hub, "probe", lambda *a, **k: pytest.fail("probed while offline"))
    hub.require_hub("model 'someone/model'")
    assert huggingface_hub.constants.HF_HUB_OFFLINE  # set after huggingface_hub was imported: still honoured
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(hub, "probe", lambda *a, **k: None)  # reachable
    hub.require_hub("model 'someone/model'")  # the variable is gone: so is the override
    assert not huggingface_hub.constants.HF_HUB_OFFLINE


# --- full disk, interrupted writes: nothing partial ---------------------------------------------------------


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_tokenizer_on_a_full_disk_leaves_nothing(tmp_path, monkeypatch, capsys):
    from transformers import PreTrainedTokenizerBase

    paths = make_corpus(str(tmp_path / "c"), n_docs=60)
    original = PreTrainedTokenizerBase.save_pretrained

    def half_then_full(self, folder, *a, **k):  # writes some files, then the disk is full
        original(self, folder, *a, **k)
        _enospc()

    monkeypatch.setattr(PreTrainedTokenizerBase, "save_pretrained", half_then_full)
    out = tmp_path / "tok"
    argv = ["tokenizer", "--config", "tiny-cpu", "--output", str(out), "--num-docs", "50", "--vocab-size", "300",
            *_json_sets(**{"data.path": "json", "data.name": None, "data.kwargs": {}, "data.sampling": {},
                           "data.data_files": paths,
                           "data.num_eval_samples": 0})]
    assert main(argv) == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"cannot write --output '{out}': No space left on device" in line, line
    assert sorted(os.listdir(tmp_path)) == ["c"]  # neither the folder nor a temporary one


def test_export_on_a_full_disk_leaves_no_config_without_weights(tmp_path, monkeypatch, capsys):
    import trainer.export as export
    import trainer.models.roberta_hf as roberta_hf
    from trainer.models.roberta import RobertaSpec

    tok = tmp_path / "tok"
    tok.mkdir()
    spec = dict(num_layers=1, hidden_size=8, num_heads=1, vocab_size=300)
    monkeypatch.setattr(export, "load_checkpoint_params",
                        lambda path, step, from_last_good=False: (RobertaSpec(**{**spec, "intermediate_size": 16}), {},
                                            {"spec": spec, "config": {}, "tokenizer_dir": str(tok)}, 3))

    def config_then_full(params, spec, folder, **kwargs):
        with open(os.path.join(folder, "config.json"), "w") as f:
            f.write("{}")
        _enospc()

    monkeypatch.setattr(roberta_hf, "export_pretrained", config_then_full)  # what the family exports with
    out = tmp_path / "export"
    assert main(["export", "--checkpoint", str(tmp_path), "--output", str(out)]) == 2
    assert "No space left on device" in one_error_line(capsys.readouterr().err)
    assert sorted(os.listdir(tmp_path)) == ["tok"]


def test_background_checkpoint_failure_stops_with_one_line_keeping_the_last_good(tmp_path, monkeypatch):
    """A save that fails in Orbax's background thread is reported by the next save (or close) as one
    CheckpointError line naming the folder, the reason and the last good step; its partial folder is gone."""
    import jax.numpy as jnp

    from trainer.checkpoint import Checkpointer
    from trainer.errors import CheckpointError

    ckpt = Checkpointer(str(tmp_path / "ckpt"), async_save=True)
    tree = {"w": jnp.zeros((4,))}
    ckpt.save(1, tree, tree, {"step": 1}, [{}], {})
    ckpt.manager.wait_until_finished()
    ckpt._requested = 2  # as if step 2's save had been started, and failed in the background

    def failed_in_background():
        os.makedirs(os.path.join(ckpt.directory, "2.orbax-checkpoint-tmp"), exist_ok=True)
        raise ValueError("RESOURCE_EXHAUSTED: Failed writing: ...: No space left on device [os_error_code='28']")

    monkeypatch.setattr(ckpt.manager, "check_for_errors", failed_in_background)
    with pytest.raises(CheckpointError) as info:
        ckpt.save(3, tree, tree, {"step": 3}, [{}], {})
    message = str(info.value)
    assert "\n" not in message and f"at step 2 in {ckpt.directory}" in message and "No space left" in message
    assert "the last good checkpoint, step 1, is kept" in message
    assert sorted(os.listdir(ckpt.directory)) == ["1"]
    monkeypatch.undo()
    ckpt.close()


def test_full_disk_in_a_background_save_names_that_step(tmp_path, monkeypatch):
    """Orbax's next save waits for the one in flight: a disk found full by step 2's background write is
    reported as step 2's failure (it used to be blamed on step 3), in one line."""
    import asyncio

    import jax.numpy as jnp
    from orbax.checkpoint._src.handlers import json_checkpoint_handler as json_handler

    from trainer.checkpoint import Checkpointer
    from trainer.errors import CheckpointError

    original = json_handler.JsonCheckpointHandler._save_fn

    async def full_at_step_2(self, x, directory):
        if x.get("step") == 2:
            await asyncio.sleep(0.3)  # still writing when step 3 is requested
            _enospc()
        return await original(self, x, directory)

    monkeypatch.setattr(json_handler.JsonCheckpointHandler, "_save_fn", full_at_step_2)
    ckpt = Checkpointer(str(tmp_path / "ckpt"), async_save=True)
    tree = {"w": jnp.zeros((4,))}
    ckpt.save(1, tree, tree, {"step": 1}, [{}], {})
    ckpt.save(2, tree, tree, {"step": 2}, [{}], {})
    with pytest.raises(CheckpointError) as info:
        ckpt.save(3, tree, tree, {"step": 3}, [{}], {})
    message = str(info.value)
    assert "\n" not in message and f"at step 2 in {ckpt.directory}" in message, message
    assert "No space left on device" in message and "the last good checkpoint, step 1, is kept" in message
    ckpt.close()
    assert sorted(os.listdir(ckpt.directory)) == ["1"]


def test_a_really_full_disk_in_a_background_save_is_one_line_naming_that_step(tmp_path, capfd):
    """Not a monkeypatched error: a small tmpfs that fills up during a background save. One CheckpointError line
    naming the step whose save failed and the last good one, no "Event loop is closed" traceback from Orbax's
    threads (the issue's report), the failed step's temporary folder gone, the good steps intact."""
    import jax.numpy as jnp
    from conftest import mounted_tmpfs

    from trainer.checkpoint import Checkpointer
    from trainer.errors import CheckpointError

    with mounted_tmpfs(tmp_path / "disk", "size=1m") as disk:
        ckpt = Checkpointer(str(disk / "ckpt"), async_save=True, keep=10)
        tree = {"w": jnp.arange(60000.0)}  # 240 kB, twice per step (params and optimizer state): 2 steps fit
        failed = None
        with pytest.raises(CheckpointError) as info:
            for step in range(1, 8):
                failed = step
                ckpt.save(step, tree, tree, {"step": step}, [{}], {})
            ckpt.close()
        message = str(info.value)
        saved = sorted(int(n) for n in os.listdir(disk / "ckpt") if n.isdigit())
        ckpt.close()  # after the failure (the trainer closes it the same way): nothing more to report
        assert "\n" not in message and "No space left on device (disk full" in message, message
        bad = int(message.split(" at step ")[1].split()[0])
        assert bad == saved[-1] + 1 and bad in (failed, failed - 1), (message, saved, failed)
        assert f"the last good checkpoint, step {saved[-1]}, is kept" in message
        assert not [n for n in os.listdir(disk / "ckpt") if "tmp" in n]
        reader = Checkpointer(str(disk / "ckpt"), read_only=True, async_save=False)
        assert all(reader.damage(s) is None for s in saved)
        reader.close()
    err = capfd.readouterr().err
    assert "Event loop is closed" not in err and "Traceback" not in err, err


def test_a_read_only_checkpoint_folder_stops_the_run_at_once(tmp_path):
    """A checkpoint folder that became read-only (remounted after a disk error): the save is one line naming the
    step and the real cause, and Orbax's threads of the failed save end at once. Before, they waited 300 s for
    signals the failed save never sent, so the stopped run stayed alive 5 minutes, then printed a dozen
    "coroutine ... was never awaited" warnings."""
    import gc
    import subprocess
    import threading
    import warnings

    import jax.numpy as jnp
    from conftest import mounted_tmpfs
    from orbax.checkpoint._src.futures import future as orbax_future

    from trainer.checkpoint import Checkpointer
    from trainer.errors import CheckpointError

    tree = {"w": jnp.arange(1000.0)}
    with mounted_tmpfs(tmp_path / "disk", "size=1m") as disk:
        first = Checkpointer(str(disk / "ckpt"), async_save=True)
        first.save(1, tree, tree, {"step": 1}, [{}], {})
        first.close()
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        ckpt = Checkpointer(str(disk / "ckpt"), async_save=True)
        with pytest.raises(CheckpointError) as info:
            for step in (2, 3):
                ckpt.save(step, tree, tree, {"step": step}, [{}], {})
        ckpt.close()
        message = str(info.value)
        assert message.startswith(f"saving a checkpoint at step 2 in {disk / 'ckpt'} failed: "), message
        assert "Read-only file system (errno EROFS" in message, message
        assert "the last good checkpoint, step 1, is kept" in message
        waiting = [t for t in threading.enumerate() if isinstance(t, orbax_future._SignalingThread)]
        for t in waiting:
            threading.Thread.join(t, timeout=10)  # not Orbax's join, which raises for a cancelled thread
        assert not [t.name for t in waiting if t.is_alive()]
        assert os.listdir(disk / "ckpt") == ["1"]
    with warnings.catch_warnings():  # the released threads' coroutines are closed: nothing left to warn about
        warnings.simplefilter("error", RuntimeWarning)
        gc.collect()


def _truncate_largest_params_file(step_dir):
    files = [os.path.join(root, f) for root, _, names in os.walk(os.path.join(step_dir, "params")) for f in names
             if os.path.basename(root) == "d"]  # the arrays' data files
    path = max(files, key=os.path.getsize)
    os.truncate(path, os.path.getsize(path) // 2)
    return os.path.relpath(path, step_dir), "has"


def _garbage_position(step_dir):
    path = os.path.join(step_dir, "position", "metadata")
    size = os.path.getsize(path)
    with open(path, "w") as f:
        f.write("{" + "x" * (size - 1))  # same size: only the checksum tells
    return "position/metadata", "was changed"


def _remove_an_opt_state_file(step_dir):
    files = [os.path.join(root, f) for root, _, names in os.walk(os.path.join(step_dir, "opt_state")) for f in names
             if not f.endswith(".txt")]
    os.remove(sorted(files)[0])
    return os.path.relpath(sorted(files)[0], step_dir), "is missing"


DAMAGE = [_truncate_largest_params_file, _garbage_position, _remove_an_opt_state_file]


@pytest.fixture(scope="module")
def saved_steps(tmp_path_factory):
    """A checkpoint folder with steps 1 and 2 (sealed with their checksums), copied by each test."""
    import jax.numpy as jnp

    from trainer.checkpoint import Checkpointer

    folder = tmp_path_factory.mktemp("ckpt") / "checkpoints"
    ckpt = Checkpointer(str(folder), async_save=True)
    for step in (1, 2):
        tree = {"w": jnp.arange(64.0) * step, "b": jnp.ones((8, 8)) * step}
        ckpt.save(step, tree, tree, {"step": step, "seed": 0}, [{"batches": step}], {"spec": {}})
    ckpt.close()
    return folder


@pytest.mark.parametrize("damage", DAMAGE, ids=["truncated-params", "garbage-position", "missing-file"])
def test_damaged_latest_checkpoint_is_one_line_naming_the_newest_intact(saved_steps, tmp_path, damage, capsys):
    """Each damage of the latest step is named in one line with the newest intact step and the way to use it;
    ``from_last_good`` gives that step (logged), the export command refuses in one line without the flag."""
    import shutil

    from trainer.checkpoint import Checkpointer, usable_step
    from trainer.errors import CheckpointError

    folder = tmp_path / "checkpoints"
    shutil.copytree(saved_steps, folder)
    ckpt = Checkpointer(str(folder), read_only=True, async_save=False)
    assert ckpt.damage(1) is None and ckpt.damage(2) is None
    rel, words = damage(str(folder / "2"))
    with pytest.raises(CheckpointError) as info:
        usable_step(ckpt, None, False, "resume", "rerun with --from-last-good")
    message = str(info.value)
    assert "\n" not in message and f"checkpoint step 2 in {folder} is damaged ({rel} {words}" in message, message
    assert message.endswith("the newest intact one is step 1: rerun with --from-last-good to resume from it")
    assert usable_step(ckpt, None, True, "resume", "rerun with --from-last-good") == 1
    assert ckpt.restore_json(1)[2] == {"step": 1, "seed": 0}
    ckpt.close()
    assert main(["export", "--checkpoint", str(folder), "--output", str(tmp_path / "out")]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"checkpoint step 2 in {folder} is damaged ({rel}" in line and "--from-last-good to export" in line
    assert not (tmp_path / "out").exists()


def test_an_unverified_latest_step_that_cannot_be_restored_names_the_earlier_one(tmp_path):
    """A run killed after its last save finished but before that step was sealed leaves it without
    checksums.json; its JSON items are checked without checksums, its arrays cannot be. Damaged, Orbax's error
    used to be the whole line ("cannot restore step 2 ...: ... error while reading array ..."), with no word of
    step 1. Now the line names step 1 and how to go on from it, and doing so works."""
    import jax
    import jax.numpy as jnp

    from trainer.checkpoint import Checkpointer
    from trainer.errors import CheckpointError

    folder = tmp_path / "checkpoints"
    ckpt = Checkpointer(str(folder), async_save=True)
    for step in (1, 2):  # arrays large enough to be stored out of line (OCDBT inlines small ones)
        tree = {"w": jnp.arange(32768.0) * step}
        ckpt.save(step, tree, tree, {"step": step, "seed": 0}, [{"batches": step}], {"spec": {}})
    ckpt.close()
    os.remove(folder / "2" / "checksums.json")
    for root, _, names in os.walk(folder / "2" / "params"):
        for name in names:
            if os.path.basename(root) == "d" and "ocdbt" in root:  # the arrays' data
                os.truncate(os.path.join(root, name), 0)
    ckpt = Checkpointer(str(folder), read_only=True, async_save=False)
    assert ckpt.damage(2) is None  # nothing to see without the checksums
    abstract = {"w": jax.ShapeDtypeStruct((32768,), jnp.float32)}
    with pytest.raises(CheckpointError) as info:
        ckpt.restore_arrays(2, abstract)
    ckpt.close()
    line = str(info.value)
    assert "\n" not in line and f"cannot restore step 2 from {folder}: " in line, line
    assert line.endswith(f"the step has no checksums.json (the run ended before it was verified), so it is likely "
                         f"damaged; the newest earlier step is 1: rerun with --from-last-good, or move {folder / '2'} "
                         f"aside (e.g. to {folder / 'damaged-2'}), to go on from it"), line
    from trainer.checkpoint import usable_step

    ckpt = Checkpointer(str(folder), read_only=True, async_save=False)
    assert usable_step(ckpt, None, False, "resume", "") == 2  # not asked: the latest step is tried
    assert usable_step(ckpt, None, True, "resume", "") == 1  # --from-last-good: the newest verified step
    ckpt.close()
    os.rename(folder / "2", folder / "damaged-2")  # as the line says
    ckpt = Checkpointer(str(folder), read_only=True, async_save=False)
    assert ckpt.latest_step() == 1 and ckpt.restore_json()[2] == {"step": 1, "seed": 0}
    assert float(ckpt.restore_arrays(1, abstract)[0]["w"][3]) == 3.0
    ckpt.close()


def test_no_intact_checkpoint_left_is_one_line(saved_steps, tmp_path):
    import shutil

    from trainer.checkpoint import Checkpointer, usable_step
    from trainer.errors import CheckpointError

    folder = tmp_path / "checkpoints"
    shutil.copytree(saved_steps, folder)
    for step in (1, 2):
        _garbage_position(str(folder / str(step)))
    ckpt = Checkpointer(str(folder), read_only=True, async_save=False)
    with pytest.raises(CheckpointError, match=r"is damaged \(position/metadata was changed .*\), and no earlier "
                                              r"step is intact \(steps: \[1, 2\]\); nothing to resume from"):
        usable_step(ckpt, None, True, "resume", "rerun with --from-last-good")
    ckpt.close()


def test_metrics_file_holds_each_step_once_after_a_resume(tmp_path):
    from trainer.config_loading import load_config
    from trainer.monitor import Monitor, read_metrics

    sets = _json_sets(**{"training.output_dir": str(tmp_path), "logging.tensorboard": False})
    cfg = load_config("tiny-cpu", sets[1::2])
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps({"kind": "train", "step": s, "loss": s}) + "\n" for s in range(1, 11))
                    + '{"kind": "train", "st')  # steps 1-10, and a line cut short by a crash
    monitor = Monitor(cfg, resume_step=6)  # the checkpoint of step 6: steps 7-10 are replayed
    for s in range(7, 9):
        monitor.write(s, {"loss": -s})
    monitor.close()
    steps = [json.loads(line)["step"] for line in path.read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6, 7, 8] and read_metrics(str(path))[8]["loss"] == -8


# --- signals ---------------------------------------------------------------------------------------------


def test_ctrl_c_is_130_and_sigterm_143(capsys):
    def interrupted():
        raise KeyboardInterrupt

    def terminated():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
        return 0

    assert run_guarded(interrupted) == 130
    assert run_guarded(terminated) == 143
    assert capsys.readouterr().err.splitlines() == ["interrupted", "terminated"]


def test_ctrl_c_before_the_first_step_says_what_the_run_folder_holds(tmp_path, monkeypatch, capsys):
    """Ctrl-C during set-up (data, compilation) saved nothing: the line says so, and whether the same command
    starts or resumes (it used to print a bare "interrupted")."""
    from trainer.config import TrainerConfig
    from trainer.train import Trainer

    def setup(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "setup", setup)
    trainer = Trainer.__new__(Trainer)
    trainer.cfg = TrainerConfig()
    trainer.cfg.training.output_dir = str(tmp_path / "run")
    assert run_guarded(trainer.run) == 130
    os.makedirs(os.path.join(trainer.cfg.checkpoint_dir, "12"))
    os.makedirs(os.path.join(trainer.cfg.checkpoint_dir, "8"))
    assert run_guarded(trainer.run) == 130
    first, second = capsys.readouterr().err.splitlines()
    assert first == ("interrupted before the first step (while setting up): nothing new was saved; no checkpoint "
                     "exists yet; run the same command again to start")
    assert second.endswith(f"its checkpoints in {trainer.cfg.checkpoint_dir} are untouched (latest: step 12); run "
                           "the same command again to resume")


def test_tokenizer_workers_end_with_a_killed_parent(tmp_path):
    """A tokenizer worker (spawned) whose trainer is killed with SIGKILL ends within seconds."""
    script = (
        "import os, signal, sys, time\n"
        "import multiprocessing as mp\n"
        "from mc4_sampling.common.processes import die_with_parent\n"
        "def work():\n"
        "    die_with_parent(use_prctl=False)\n"
        "    time.sleep(60)\n"
        "if __name__ == '__main__':\n"
        "    p = mp.get_context('spawn').Process(target=work, daemon=True)\n"
        "    p.start()\n"
        "    time.sleep(1.5)\n"
        "    print(p.pid, flush=True)\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    (tmp_path / "parent.py").write_text(script)
    done = subprocess.run([sys.executable, str(tmp_path / "parent.py")], capture_output=True, text=True,
                          cwd=REPO, env={**os.environ, "PYTHONPATH": REPO}, timeout=60)
    assert done.returncode == -signal.SIGKILL
    child = int(done.stdout.split()[0])
    assert _ends_within(child, 10)


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


def test_hub_dataset_while_offline_is_one_line_in_seconds(tmp_path, monkeypatch, capsys):
    """The reachability rule for the trainer's data stream (before: datasets' retries, then a line that
    blamed the dataset)."""
    from mc4_sampling.common import hub

    monkeypatch.setattr(hub, "_PROBED", {})
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    start = time.monotonic()
    assert main(["tokenizer", "--config", "tiny-cpu", "--output", str(tmp_path / "tok"),
                 "--set", "data.path=someone/corpus"]) == 2
    assert one_error_line(capsys.readouterr().err) == (
        "error: the Hub cannot be reached at http://127.0.0.1:9 (Connection refused) to look up dataset "
        "data.path='someone/corpus'; check the network, give a local folder instead, or set HF_HUB_OFFLINE=1 to "
        "use files cached earlier")
    assert time.monotonic() - start < 10 and os.listdir(tmp_path) == []


def test_tokenizer_workers_leave_ctrl_c_to_the_trainer(capfd):
    """A terminal's Ctrl-C reaches the tokenizer workers too (data.num_workers): they go on, silent, so that the
    trainer can save and stop. Before: the worker died with a traceback, or sent "tokenizer worker failed:
    KeyboardInterrupt" to the step being saved."""
    import signal

    from tokenizers import Tokenizer, models, pre_tokenizers

    from trainer.data.tokenize_pool import TokenizerPool

    tok = Tokenizer(models.WordLevel({"[UNK]": 0, "una": 1, "casa": 2, "</s>": 3}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    pool = TokenizerPool(tok.to_str(), eos_id=3, num_workers=1)
    try:
        assert [t.tolist() for _, t in pool.map([["una casa"]], lambda x: x)] == [[1, 2, 3]]  # started, idle
        os.kill(pool.procs[0].pid, signal.SIGINT)
        time.sleep(0.5)
        assert [t.tolist() for _, t in pool.map([["casa una"]], lambda x: x)] == [[2, 1, 3]]
    finally:
        pool.close()
    err = capfd.readouterr().err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err


# environment faults met anywhere (in a library, under datasets, in a background thread) — one line each
FAULTS = [
    (PermissionError(errno.EACCES, "Permission denied", "/data/c4-es.json.gz"),
     "error: '/data/c4-es.json.gz': Permission denied (check its permissions)"),
    (OSError(errno.ENOSPC, "No space left on device", "/runs/x/metrics.jsonl"),
     "error: '/runs/x/metrics.jsonl': No space left on device (disk full: free some space or write elsewhere)"),
    (FileNotFoundError(errno.ENOENT, "No such file or directory", "/cal.json"),
     "error: '/cal.json': No such file or directory (check the path)"),
]


@pytest.mark.parametrize("fault, line", FAULTS, ids=["EACCES", "ENOSPC", "ENOENT"])
def test_environment_fault_is_one_line(capsys, fault, line):
    class DatasetGenerationError(Exception):  # what datasets wraps a reader's failure in
        pass

    def deep():
        try:
            raise fault
        except OSError as e:
            raise DatasetGenerationError("An error occurred while generating the dataset") from e

    assert run_guarded(deep) == 2
    assert capsys.readouterr().err.splitlines() == [line]


def test_unreadable_config_names_the_option(tmp_path, monkeypatch, capsys):
    import trainer.config_loading as config_loading

    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", args[0])

    (tmp_path / "c.yaml").write_text("name: x\n")
    monkeypatch.setattr(config_loading, "open", denied, raising=False)
    assert main(["train", "--config", str(tmp_path / "c.yaml")]) == 2
    assert one_error_line(capsys.readouterr().err) == f"error: --config '{tmp_path / 'c.yaml'}': cannot read it: " \
                                                       "Permission denied"
