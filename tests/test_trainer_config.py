"""Config dataclasses, YAML files, --set overrides and the checks made before training."""

from __future__ import annotations

import pytest

from trainer.cli import main
from trainer.config import TrainerConfig
from trainer.config_loading import load_config
from trainer.errors import ConfigError
from trainer.run_setup import check_devices


def test_defaults_reproduce_bertin_phase_1():
    cfg = TrainerConfig()
    m = cfg.model
    assert (m.hidden_size, m.num_layers, m.num_heads, m.intermediate_size) == (768, 12, 12, 3072)
    assert cfg.model.max_position_embeddings == 514
    assert cfg.data.max_seq_length == 128 and cfg.training.global_batch_size == 2048
    assert cfg.optimizer.learning_rate == 6e-4 and cfg.schedule.warmup_steps == 24_000
    assert cfg.training.max_steps == 250_000
    o = cfg.optimizer
    assert (o.b1, o.b2, o.eps, o.weight_decay) == (0.9, 0.98, 1e-6, 0.01)
    assert cfg.training.mlm_probability == 0.15 and cfg.model.dtype == "bfloat16" and cfg.model.param_dtype == "float32"
    assert (cfg.checkpoint.every_steps, cfg.checkpoint.keep) == (10_000, 5)


@pytest.mark.parametrize("name", ["tiny-cpu", "roberta-base-128", "roberta-base-512"])
def test_shipped_configs_load(name):
    cfg = load_config(name)
    assert cfg.name == name


def test_phase_two_config_is_bertins():
    cfg = load_config("roberta-base-512")
    assert cfg.data.max_seq_length == 512 and cfg.training.global_batch_size == 384
    assert cfg.schedule.warmup_steps == 500 and cfg.checkpoint.init_optimizer == "fresh"
    assert cfg.checkpoint.init_step == 230_000


def test_overrides_are_typed():
    cfg = load_config("tiny-cpu", ["optimizer.learning_rate=1e-4", "training.max_steps=70", "data.name=null",
                                   "data.kwargs={http_retries: 3}", "training.fsdp=true",
                                   "data.data_files=a.jsonl"])
    assert cfg.optimizer.learning_rate == 1e-4 and isinstance(cfg.optimizer.learning_rate, float)
    assert cfg.training.max_steps == 70 and cfg.data.name is None and cfg.training.fsdp is True
    assert cfg.data.kwargs == {"http_retries": 3} and cfg.data.data_files == ["a.jsonl"]


@pytest.mark.parametrize("override, words", [
    ("training.bach_size=3", ["training.bach_size", "global_batch_size"]),
    ("trainig.max_steps=3", ["trainig", "training", "optimizer"]),
    ("training.max_steps=many", ["training.max_steps", "integer"]),
    ("model.dtype=float64", ["model.dtype", "bfloat16"]),
    ("logging.tensorboard=3", ["logging.tensorboard", "true or false"]),
    ("training.max_steps.x=1", ["training.max_steps", "not a section"]),
    ("novalue", ["section.key=value"]),
])
def test_bad_overrides_name_the_key(override, words):
    with pytest.raises(ConfigError) as e:
        load_config("tiny-cpu", [override])
    for w in words:
        assert w in str(e.value)


def test_unknown_key_in_yaml(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  hiden_size: 3\n")
    with pytest.raises(ConfigError, match="model.hiden_size.*valid keys: vocab_size, hidden_size"):
        load_config(str(path))


def test_sequence_longer_than_positions():
    with pytest.raises(ConfigError, match="max_position_embeddings=130 holds at most 128"):
        load_config("tiny-cpu", ["data.max_seq_length=129"])
    load_config("tiny-cpu", ["data.max_seq_length=128"])


@pytest.mark.parametrize("override, match", [
    ("model.num_heads=3", "divisible by model.num_heads"),
    ("training.grad_accum_steps=5", "divisible by training.grad_accum_steps"),
    ("schedule.warmup_steps=1000", "after the end of the decay"),
    ("training.mask_replace_prob=0.95", "sum to at most 1"),
    ("training.max_steps=0", "must be > 0"),
])
def test_inconsistent_values(override, match):
    with pytest.raises(ConfigError, match=match):
        load_config("tiny-cpu", [override])


def test_batch_not_divisible_by_devices():
    cfg = load_config("tiny-cpu", ["training.global_batch_size=30", "training.eval_batch_size=32"])
    with pytest.raises(ConfigError, match="30 sequences per micro-batch is not divisible by the 4 devices"):
        check_devices(cfg, 4, 1)
    assert check_devices(load_config("tiny-cpu", ["training.grad_accum_steps=2"]), 4, 1) == 16


def test_cli_reports_user_errors_without_traceback(capsys):
    assert main(["--config", "tiny-cpu", "--set", "training.bogus=1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown config key 'training.bogus'") and "Traceback" not in err
    assert main(["--config", "no-such-config"]) == 2
    assert "shipped configs: roberta-base-128, roberta-base-512, tiny-cpu" in capsys.readouterr().err


@pytest.mark.parametrize("override, key", [
    ("optimizer.learning_rate=.nan", "optimizer.learning_rate"),
    ("optimizer.learning_rate=.inf", "optimizer.learning_rate"),
    ("optimizer.b2=nan", "optimizer.b2"),
    ("optimizer.max_grad_norm=-.inf", "optimizer.max_grad_norm"),
    ("schedule.end_learning_rate=inf", "schedule.end_learning_rate"),
    ("model.layer_norm_eps=.nan", "model.layer_norm_eps"),
    ("training.mlm_probability=.nan", "training.mlm_probability"),
])
def test_non_finite_numbers_are_refused(override, key):
    with pytest.raises(ConfigError, match=f"'{key}' must be a finite number"):
        load_config("tiny-cpu", [override])


def test_on_nonfinite_is_stop_or_skip():
    assert load_config("tiny-cpu").training.on_nonfinite == "stop"
    assert load_config("tiny-cpu", ["training.on_nonfinite=skip"]).training.on_nonfinite == "skip"
    with pytest.raises(ConfigError, match="training.on_nonfinite"):
        load_config("tiny-cpu", ["training.on_nonfinite=ignore"])


def test_a_family_registered_in_a_test_owns_its_model_section_and_its_checks(monkeypatch):
    """A new model family is its module and its registration: ``model.type`` selects its config section, whose
    fields and checks are its own (the core config asks it); nothing else is edited."""
    import dataclasses

    from trainer.models import base

    @dataclasses.dataclass(frozen=True)
    class ToyConfig(base.ModelOptions):
        type: str = "toy"
        width: int = 8
        max_position_embeddings: int = 64

        def max_sequence_length(self, pad_token_id: int = 1) -> int:
            return self.max_position_embeddings

        def check(self) -> None:
            base.positive("model.width", self.width)
            super().check()

    class ToyFamily(base.ModelFamily):
        name, title, config_class = "toy", "Toy", ToyConfig

    monkeypatch.setitem(base._FAMILIES, "toy", ToyFamily())  # what @register_family does, undone after the test
    cfg = load_config(None, ["model.type=toy", "model.width=4", "data.max_seq_length=64"])
    assert isinstance(cfg.model, ToyConfig) and cfg.model.width == 4
    with pytest.raises(ConfigError, match=r"config key 'model.width' must be > 0, got 0"):
        load_config(None, ["model.type=toy", "model.width=0", "data.max_seq_length=64"])
    with pytest.raises(ConfigError, match=r"data.max_seq_length \(65\) is longer .* holds at most 64 tokens;"):
        load_config(None, ["model.type=toy", "data.max_seq_length=65"])
    with pytest.raises(ConfigError, match=r"unknown config key 'model.hidden_size'"):
        load_config(None, ["model.type=toy", "model.hidden_size=8"])
