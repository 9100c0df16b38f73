"""Research features: weight statistics, transfer to a new language with frozen parameters,
checkpoint schedules, revisions on the (loopback) Hub, seed suites."""

from __future__ import annotations

import json
import os
import shutil

import jax
import numpy as np
import pytest
from trainer_helpers import make_corpus, make_tokenizer, tiny_overrides

from trainer.config_loading import load_config
from trainer.entry import build_trainer
from trainer.errors import ConfigError, ExportError
from trainer.research.checkpoint_schedule import EARLYBERTS_STEPS, resolve_schedule
from trainer.research.weight_stats import flat_params

REPO = "someone/tiny-revisions"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("research-corpus")
    paths = make_corpus(str(folder / "a"), n_docs=160, n_files=1, seed=0)
    tok = make_tokenizer(str(folder / "tok"), paths, vocab_size=400)
    other = make_corpus(str(folder / "b"), n_docs=160, n_files=1, seed=1)
    tok2 = make_tokenizer(str(folder / "tok2"), other, vocab_size=300)  # the "new language"
    return paths, tok, other, tok2


def _cfg(paths, tok, out, **extra):
    extra = {"training.max_steps": 8, "training.eval_every_steps": 8, "data.num_eval_samples": 8,
             "model.hidden_dropout": 0.0, **extra}
    return load_config("tiny-cpu", tiny_overrides(paths, tok, out, **extra))


@pytest.fixture(scope="module")
def scheduled_run(corpus, tmp_path_factory):
    """8 steps, checkpoint.schedule [2, 5], keep 1, weight stats every 4, pushed to a loopback Hub."""
    import huggingface_hub.constants
    from loopback_hub import LoopbackHub

    paths, tok, _, _ = corpus
    out = str(tmp_path_factory.mktemp("scheduled") / "run")
    hub = LoopbackHub()
    mp = pytest.MonkeyPatch()
    mp.setenv("HF_ENDPOINT", hub.url)
    mp.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path_factory.mktemp("hub-cache")))
    mp.setattr(huggingface_hub.constants, "ENDPOINT", hub.url)  # read at import by transformers' downloads
    mp.setattr(huggingface_hub.constants, "HUGGINGFACE_CO_URL_TEMPLATE",
               hub.url + "/{repo_id}/resolve/{revision}/{filename}")
    cfg = _cfg(paths, tok, out, **{"checkpoint.schedule": [2, 5], "checkpoint.keep": 1,
                                   "logging.weight_stats_every_steps": 4, "hub.push_to_hub": REPO})
    result = build_trainer(cfg).run()
    yield cfg, result, hub
    mp.undo()
    hub.close()


# ---------------------------------------------------------------------------------------------
# schedule


def test_earlyberts_schedule_and_bad_schedules():
    assert len(EARLYBERTS_STEPS) == 31  # the EarlyBERTs card: 31 checkpoints, 10 ... 20 000, 40 000
    assert EARLYBERTS_STEPS[:3] == (10, 100, 200) and EARLYBERTS_STEPS[-3:] == (19000, 20000, 40000)
    assert resolve_schedule("earlyberts", max_steps=1000) == [10] + list(range(100, 1001, 100))
    assert resolve_schedule("10, 20") == [10, 20]
    assert load_config("tiny-cpu", ["checkpoint.schedule=[10, 100]"]).checkpoint.schedule == [10, 100]
    for bad, msg in [("[100, 10]", "strictly increasing"), ("[10, 10]", "strictly increasing"),
                     ("[-5, 10]", "positive"), ("[0]", "positive"), ("fibonacci", "unknown schedule")]:
        with pytest.raises(ConfigError, match=msg):
            load_config("tiny-cpu", [f"checkpoint.schedule={bad}"])


def test_scheduled_checkpoints_survive_keep(scheduled_run):
    cfg, result, _ = scheduled_run
    steps = sorted(int(s) for s in os.listdir(result.checkpoint_dir) if s.isdigit())
    assert steps == [2, 5, 8]  # keep=1: only the latest regular save, and every scheduled one
    revisions = os.path.join(cfg.training.output_dir, "revisions")
    assert sorted(os.listdir(revisions)) == ["final", "step2", "step5"]
    for name in ("config.json", "model.safetensors", "tokenizer.json", "README.md", "revision.json"):
        assert os.path.isfile(os.path.join(revisions, "step5", name))


def test_weight_stats_hook_logs_every_module(scheduled_run):
    from trainer.monitor import read_metrics

    cfg, _, _ = scheduled_run
    records = read_metrics(os.path.join(cfg.training.output_dir, "metrics.jsonl"), "weights")
    assert sorted(records) == [4, 8]
    rec = records[8]
    for key in ("layers_1/attention/self/query/kernel/std", "embeddings/word_embeddings/embedding/max_abs",
                "lm_head/bias/mean", "layers_0/output_LayerNorm/scale/mean"):
        assert key in rec and np.isfinite(rec[key])


# ---------------------------------------------------------------------------------------------
# revisions on the Hub


def test_revisions_are_branches_loadable_with_transformers(scheduled_run):
    import torch
    from huggingface_hub import HfApi
    from safetensors.numpy import load_file
    from transformers import AutoModelForMaskedLM

    cfg, _, hub = scheduled_run
    assert hub.repo_branches(REPO) == ["main", "step2", "step5"]
    summaries = {line["value"]["summary"] for c in hub.commits if c["repo_id"] == REPO for line in c["lines"]
                 if line["key"] == "header"}
    assert {"RoBERTa checkpoint at step 2", "Latest RoBERTa checkpoint: step 5"} <= summaries  # names the family
    refs = HfApi(endpoint=hub.url).list_repo_refs(REPO)
    assert sorted(b.name for b in refs.branches) == ["main", "step2", "step5"]
    revisions = os.path.join(cfg.training.output_dir, "revisions")
    for step in (2, 5):
        files = hub.repo_files(REPO, revision=f"step{step}")
        local = open(os.path.join(revisions, f"step{step}", "model.safetensors"), "rb").read()
        assert files["model.safetensors"] == local
        assert json.loads(files["revision.json"])["step"] == step
        card = files["README.md"].decode()
        assert "revision='step" in card and "`step2`, `step5`" in card
    # main holds the latest: the final step
    assert hub.repo_files(REPO)["model.safetensors"] == open(os.path.join(revisions, "final", "model.safetensors"),
                                                             "rb").read()
    model = AutoModelForMaskedLM.from_pretrained(REPO, revision="step2")
    expected = load_file(os.path.join(revisions, "step2", "model.safetensors"))
    got = model.state_dict()
    name = "roberta.encoder.layer.1.attention.self.query.weight"
    assert torch.equal(got[name], torch.from_numpy(expected[name]))
    latest = AutoModelForMaskedLM.from_pretrained(REPO)
    assert not torch.equal(latest.state_dict()[name], got[name])


def test_revision_upload_is_idempotent_and_never_overwrites(scheduled_run, tmp_path):
    from trainer.research.revisions import push_revision

    cfg, _, hub = scheduled_run
    folder = os.path.join(cfg.training.output_dir, "revisions", "step5")
    commits = len(hub.commits)
    assert push_revision(folder, REPO, 5, update_main=False) is False  # same content: not uploaded again
    assert len(hub.commits) == commits
    changed = str(tmp_path / "step5")
    shutil.copytree(folder, changed)
    manifest = json.load(open(os.path.join(changed, "revision.json")))
    manifest["files"]["model.safetensors"] = "0" * 64
    json.dump(manifest, open(os.path.join(changed, "revision.json"), "w"))
    with pytest.raises(ExportError, match="step5 already exists .* other content"):
        push_revision(changed, REPO, 5, update_main=False)
    assert len(hub.commits) == commits
    # the background publisher reports it (the run then ends with an error naming the step)
    from trainer.research.revisions import RevisionPublisher

    shutil.copytree(changed, str(tmp_path / "run" / "revisions" / "step5"))
    os.remove(str(tmp_path / "run" / "revisions" / "step5" / ".pushed"))  # not marked as uploaded
    publisher = RevisionPublisher(str(tmp_path / "run"), REPO, [5])
    publisher.submit(5, None, None, None, main=False)
    errors = publisher.close()
    assert len(errors) == 1 and errors[0].startswith("step 5: ExportError") and "other content" in errors[0]
    assert len(hub.commits) == commits


def test_restart_resubmits_unfinished_revisions(scheduled_run):
    """A rerun (resuming at the last step) re-exports a missing revision from its preserved checkpoint
    and finishes an unmarked upload; the Hub already has both, so nothing is committed."""
    cfg, _, hub = scheduled_run
    revisions = os.path.join(cfg.training.output_dir, "revisions")
    digests = json.load(open(os.path.join(revisions, "step5", "revision.json")))["files"]
    shutil.rmtree(os.path.join(revisions, "step5"))
    os.remove(os.path.join(revisions, "step2", ".pushed"))
    commits = len(hub.commits)
    build_trainer(cfg).run()
    assert json.load(open(os.path.join(revisions, "step5", "revision.json")))["files"] == digests
    assert os.path.exists(os.path.join(revisions, "step2", ".pushed"))
    assert os.path.exists(os.path.join(revisions, "step5", ".pushed"))
    assert len(hub.commits) == commits


# ---------------------------------------------------------------------------------------------
# weight statistics command


def test_stats_command_table_and_plot(scheduled_run, tmp_path, capsys):
    from trainer.cli import main

    cfg, result, _ = scheduled_run
    png = str(tmp_path / "stats.png")
    folder = os.path.join(cfg.training.output_dir, "revisions", "step2")
    rc = main(["stats", os.path.join(result.checkpoint_dir, "8"), folder, "random:tiny-cpu@1", "-o", png,
               "--label", "trained", "--label", "step 2", "--label", "random"])
    out = capsys.readouterr().out
    assert rc == 0 and os.path.getsize(png) > 10_000
    assert "trained" in out and "step 2" in out and "random" in out
    row = next(line for line in out.splitlines() if line.startswith("layers_1/intermediate_dense/kernel "))
    assert len(row.split("|")) == 4  # the parameter and three checkpoints side by side
    assert main(["stats", str(tmp_path / "nothing-here"), "-o", "none"]) == 2
    assert "no such checkpoint" in capsys.readouterr().err


def test_pca_of_word_embeddings_against_eigh():
    """``pca_2d`` against an independent reference: the eigenvectors of the covariance matrix (``numpy.linalg.eigh``)
    give the same coordinates up to each component's sign and the same explained fractions."""
    from trainer.research.embedding_pca import pca_2d

    rng = np.random.default_rng(4)
    x = rng.normal(size=(300, 16)) @ rng.normal(size=(16, 16)) + 3.0
    coords, explained = pca_2d(x)
    xc = x - x.mean(axis=0)
    values, vectors = np.linalg.eigh(xc.T @ xc)
    order = np.argsort(values)[::-1]
    ref = xc @ vectors[:, order[:2]]
    for k in range(2):
        assert np.allclose(np.abs(coords[:, k]), np.abs(ref[:, k]), atol=1e-9)
        assert np.isclose(explained[k], values[order[k]] / values.sum())
    assert explained[0] > explained[1] > 0


def test_stats_labels_draw_the_pca_of_the_word_embeddings(scheduled_run, tmp_path, capsys):
    """``--labels``: the PCA picture beside the statistics, one panel per checkpoint whose tokenizer is known
    (a random initialisation is named and left out), coloured by the file's labels; bad label files are one line."""
    import matplotlib.image

    from trainer.cli import main
    from trainer.data.tokenizer import load_tokenizer

    cfg, result, _ = scheduled_run
    vocab = load_tokenizer(cfg.data.tokenizer).get_vocab()
    labels = tmp_path / "labels.tsv"  # the first letter of each word-initial token (a label per token)
    labels.write_text("token\tinitial\n" + "".join(f"{t}\t{t[1]}\n" for t in vocab if t.startswith("Ġ") and
                                                     len(t) > 2 and t[1] in "aeiou"))
    pca = str(tmp_path / "pca.png")
    rc = main(["stats", result.checkpoint_dir, "random:tiny-cpu", "-o", "none", "--labels", str(labels),
               "--pca-output", pca])
    out = capsys.readouterr().out
    assert rc == 0 and f"PCA: {pca}" in out and "random init (tiny-cpu) left out" in out
    image = matplotlib.image.imread(pca)
    assert image.shape[0] > 300 and image.shape[1] > 500 and len(np.unique(image.reshape(-1, image.shape[-1]),
                                                                           axis=0)) > 6  # coloured points
    rc = main(["stats", result.checkpoint_dir, "-o", "none", "--labels", str(labels), "--pca-output", pca,
               "--overwrite", "--tokenizer", cfg.data.tokenizer])
    assert rc == 0 and "left out" not in capsys.readouterr().out
    bad = tmp_path / "bad.tsv"
    bad.write_text("token\tlabel\nĠa\tx\nĠe x\n")
    assert main(["stats", result.checkpoint_dir, "-o", "none", "--labels", str(bad), "--pca-output", pca,
                 "--overwrite"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"--labels: line 3 of {bad} is not 'token<TAB>label'" in err[0]
    assert main(["stats", result.checkpoint_dir, "-o", "none", "--labels", str(labels), "--pca-output", pca]) == 2
    assert "--pca-output" in capsys.readouterr().err  # an existing picture is not replaced without --overwrite


# ---------------------------------------------------------------------------------------------
# transfer


def test_transfer_reinitialises_embeddings_and_freezes(corpus, scheduled_run, tmp_path):
    from trainer.export import load_checkpoint_params

    _, _, paths2, tok2 = corpus
    _, result, _ = scheduled_run
    source = os.path.join(result.checkpoint_dir, "8")
    _, src_params, _, _ = load_checkpoint_params(source)
    frozen_patterns = ["embeddings/position_embeddings/.*", "layers_0/attention/.*"]
    cfg = _cfg(paths2, tok2, str(tmp_path / "transfer"), **{"model.transfer_from": source, "training.max_steps": 2,
                                                            "model.freeze": frozen_patterns,
                                                            "data.num_eval_samples": 0,
                                                            "schedule.warmup_steps": 1})
    trainer = build_trainer(cfg)
    trainer.setup()
    start = {k: np.array(v) for k, v in flat_params(jax.device_get(trainer.params)).items()}
    src = {k: np.asarray(v) for k, v in flat_params(src_params).items()}
    assert start["embeddings/word_embeddings/embedding"].shape[0] == 384  # 300 padded to 128s, not 512
    assert not np.array_equal(start["lm_head/bias"][:300], src["lm_head/bias"][:300])
    for key in ("layers_1/output_dense/kernel", "embeddings/position_embeddings/embedding", "lm_head/dense/kernel"):
        np.testing.assert_array_equal(start[key], src[key])
    trainer.run()
    end = {k: np.asarray(v) for k, v in flat_params(jax.device_get(trainer.params)).items()}
    frozen = [k for k in start if k.startswith(("embeddings/position_embeddings", "layers_0/attention/"))]
    assert len(frozen) == 11  # position table + q/k/v/output (kernel, bias) + LayerNorm (scale, bias)
    for k in start:
        if k in frozen:
            np.testing.assert_array_equal(end[k], start[k], err_msg=k)  # bit for bit
        else:
            assert not np.array_equal(end[k], start[k]), k


def test_transfer_from_transformers_folder_and_position_reset(corpus, scheduled_run):
    from trainer.models.roberta import RobertaSpec, init_params
    from trainer.models.roberta_hf import import_pretrained
    from trainer.research.transfer import combine, load_source

    cfg0, _, _ = scheduled_run
    folder = os.path.join(cfg0.training.output_dir, "revisions", "step5")
    _, src_params = import_pretrained(folder)
    m = cfg0.model
    spec = RobertaSpec.from_config(m, vocab_size=300, pad_token_id=1, backend="cpu")
    fresh = init_params(spec, jax.random.key(3))
    start = flat_params(combine(load_source(folder, spec), fresh, reset_position_embeddings=True))
    src, new = flat_params(src_params), flat_params(fresh)
    key = "layers_1/attention/self/key/kernel"
    np.testing.assert_array_equal(start[key], src[key])
    for key in ("embeddings/position_embeddings/embedding", "embeddings/word_embeddings/embedding", "lm_head/bias"):
        np.testing.assert_array_equal(start[key], np.asarray(new[key]))
    assert start["embeddings/word_embeddings/embedding"].shape == (384, m.hidden_size)
    # a Hub model id at a revision (the loopback Hub of scheduled_run)
    from_hub = flat_params(load_source(f"{REPO}@step5", spec))
    np.testing.assert_array_equal(from_hub["layers_0/output_dense/kernel"], src["layers_0/output_dense/kernel"])


def test_transfer_bad_input(corpus, scheduled_run, tmp_path):
    _, _, paths2, tok2 = corpus
    _, result, _ = scheduled_run
    source = os.path.join(result.checkpoint_dir, "8")
    cfg = _cfg(paths2, tok2, str(tmp_path / "a"), **{"model.transfer_from": source, "model.num_layers": 3,
                                                     "model.intermediate_size": 96})
    with pytest.raises(ConfigError) as e:
        build_trainer(cfg).setup()
    assert "num_layers: source 2, config 3" in str(e.value)
    assert "intermediate_size: source 64, config 96" in str(e.value)
    assert not os.path.exists(tmp_path / "a")
    cfg = _cfg(paths2, tok2, str(tmp_path / "b"), **{"model.transfer_from": source,
                                                     "model.freeze": ["embeddings/.*", "encoder/.*"]})
    with pytest.raises(ConfigError, match=r"'encoder/\.\*' matches no parameter .*layers_0/"):
        build_trainer(cfg).setup()
    cfg = _cfg(paths2, tok2, str(tmp_path / "c"), **{"model.transfer_from": source, "model.reinit_embeddings": False})
    with pytest.raises(ConfigError, match="vocab_size: source 400, config 300"):
        build_trainer(cfg).setup()
    with pytest.raises(ConfigError, match="set only one"):
        _cfg(paths2, tok2, str(tmp_path / "d"), **{"model.transfer_from": source, "checkpoint.init_from": source})
    with pytest.raises(ConfigError, match="not a checkpoint or model folder"):
        build_trainer(_cfg(paths2, tok2, str(tmp_path / "e"),
                           **{"model.transfer_from": str(tmp_path / "missing")})).setup()


def test_transfer_example_config_loads():
    cfg = load_config("transfer-es-to-ca")
    assert cfg.model.transfer_from and cfg.model.reinit_embeddings and cfg.data.name == "ca"
    assert resolve_schedule(cfg.checkpoint.schedule) == [10, 50, 100, 200]


# ---------------------------------------------------------------------------------------------
# seed suites


def test_seed_suite_two_seeds(corpus, tmp_path):
    from trainer.research.suite import run_suite, seed_config

    paths, tok, _, _ = corpus
    overrides = tiny_overrides(paths, tok, str(tmp_path / "suite"), **{
        "training.max_steps": 2, "training.eval_every_steps": 2, "data.num_eval_samples": 0,
        "schedule.warmup_steps": 1})
    cfg = seed_config("tiny-cpu", overrides + ["hub.push_to_hub=me/tiny"], 1, init_from=None)
    assert (cfg.training.seed, cfg.name, cfg.hub.push_to_hub) == (1, "tiny-cpu-seed1", "me/tiny-seed1")
    assert cfg.training.output_dir == str(tmp_path / "suite" / "seed1")
    results = run_suite("tiny-cpu", overrides, 2)
    assert [r.output_dir for r in results] == [str(tmp_path / "suite" / f"seed{k}") for k in (0, 1)]
    assert all(r.step == 2 for r in results)
    assert results[0].train_metrics["loss"] != results[1].train_metrics["loss"]
    with pytest.raises(ConfigError, match="does not exist"):
        seed_config("tiny-cpu", overrides, 0, init_from=str(tmp_path / "ckpt-{seed}"))


def test_seed_suite_init_from_per_seed(scheduled_run):
    from trainer.research.suite import seed_config

    cfg0, result, _ = scheduled_run
    folder = os.path.join(cfg0.training.output_dir, "revisions", "step{seed}")
    overrides = [f"training.output_dir={cfg0.training.output_dir}-suite", f"data.tokenizer={cfg0.data.tokenizer}"]
    cfg = seed_config("tiny-cpu", overrides, 5, init_from=folder)
    assert cfg.model.init_from_transformers == folder.replace("{seed}", "5") and cfg.checkpoint.init_from is None
    cfg = seed_config("tiny-cpu", overrides, 2, init_from=os.path.join(result.checkpoint_dir, "{seed}"))
    assert cfg.checkpoint.init_from == os.path.join(result.checkpoint_dir, "2")


def test_cli_parses_stats_and_suite():
    from trainer.cli import build_parser

    args = build_parser().parse_args(["suite", "--config", "tiny-cpu", "--seeds", "2", "--init-from", "ck/{seed}"])
    assert (args.seeds, args.init_from, args.first_seed) == (2, "ck/{seed}", 0)
    args = build_parser().parse_args(["stats", "a", "b", "-o", "x.png", "--label", "A", "--label", "B"])
    assert args.checkpoints == ["a", "b"] and args.label == ["A", "B"] and args.output == "x.png"


# ---------------------------------------------------------------------------------------------
# the core loop's seam: extensions composed by trainer.entry


def test_core_trainer_refuses_research_options_without_their_extension(corpus, tmp_path):
    from trainer.entry import research_extensions
    from trainer.train import Trainer

    paths, tok, _, _ = corpus
    cfg = _cfg(paths, tok, str(tmp_path / "plain"),
               **{"checkpoint.schedule": [2], "logging.weight_stats_every_steps": 2})
    with pytest.raises(ConfigError, match=r"checkpoint\.schedule, logging\.weight_stats_every_steps set, but this "
                                          r"Trainer has no extension .*trainer\.entry\.build_trainer"):
        Trainer(cfg).setup()
    assert not os.path.exists(tmp_path / "plain")
    assert [type(e).__name__ for e in research_extensions(cfg)] == ["WeightStatsExtension", "RevisionsExtension"]
    assert research_extensions(_cfg(paths, tok, str(tmp_path / "x"))) == []


def test_extension_seam_start_preserve_hooks_and_close(corpus, tmp_path):
    from trainer.hooks import Extension, Hook
    from trainer.train import Trainer

    paths, tok, _, _ = corpus
    seen = []

    class Probe(Extension):
        def preserved_steps(self, cfg):
            return [1]

        def initial_params(self, spec, fresh):
            return jax.tree.map(lambda a: np.zeros_like(np.asarray(a)), fresh())

        def hooks(self, trainer):
            return [Hook(lambda info: seen.append((info.step, trainer.saved_step)), 1)]

        def close(self):
            return ExportError("probe failed")

    cfg = _cfg(paths, tok, str(tmp_path / "run"), **{"training.max_steps": 2, "checkpoint.keep": 1,
                                                     "data.num_eval_samples": 0, "checkpoint.every_steps": 1,
                                                     "schedule.warmup_steps": 1})
    trainer = Trainer(cfg, extensions=[Probe()])
    trainer.setup()
    assert all(not np.asarray(v).any() for v in jax.tree.leaves(jax.device_get(trainer.params)))
    with pytest.raises(ExportError, match="probe failed"):  # raised once the loop has closed everything
        trainer.run()
    assert seen == [(1, 1), (2, 2)]  # after the default hooks: the regular checkpoint already saved the step
    assert trainer.ckpt.all_steps() == [1, 2]  # step 1 preserved although keep=1


def test_an_extension_registered_in_a_test_is_validated_composed_and_required(corpus, tmp_path, monkeypatch):
    """A new research extension is its class (options, enabled, validate) and its registration: the loader asks
    its checks, the entry composes it, a Trainer without it refuses the config; nothing else is edited."""
    import trainer.research as research
    from trainer.entry import research_extensions
    from trainer.hooks import Extension
    from trainer.train import Trainer

    class ToyExtension(Extension):
        options = ("training.eval_seed",)

        @classmethod
        def enabled(cls, cfg) -> bool:
            return cfg.training.eval_seed == 12345

        @classmethod
        def validate(cls, cfg) -> None:
            if cfg.training.eval_seed == 666:
                raise ConfigError("training.eval_seed: 666 is not for the toy extension")

    monkeypatch.setattr(research, "EXTENSIONS", research.EXTENSIONS + (ToyExtension,))
    paths, tok, _, _ = corpus
    with pytest.raises(ConfigError, match="666 is not for the toy extension"):
        _cfg(paths, tok, str(tmp_path / "a"), **{"training.eval_seed": 666})
    cfg = _cfg(paths, tok, str(tmp_path / "b"), **{"training.eval_seed": 12345, "logging.weight_stats_every_steps": 2})
    assert [type(e).__name__ for e in research_extensions(cfg)] == ["WeightStatsExtension", "ToyExtension"]
    with pytest.raises(ConfigError, match=r"^training\.eval_seed set, but this Trainer has no extension"):
        Trainer(cfg, extensions=research_extensions(cfg)[:1]).setup()
    assert not os.path.exists(tmp_path / "b")
