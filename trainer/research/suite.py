"""Seed suites (MultiBERTs / EarlyBERTs style): one config trained for seeds 0..K-1.

``trainer suite --config C --seeds K [--set k=v ...] [--init-from PATH]`` runs the config once per
seed, one after the other; seed ``k`` gets ``training.seed=k``, ``name=<name>-seed{k}``, its own
``training.output_dir`` (``<output_dir>/seed{k}``; the same for an explicit
``checkpoint.directory``) and, when ``hub.push_to_hub`` is set, its own repository
``<repo>-seed{k}``. ``--init-from`` starts each seed from a checkpoint of this trainer
(``checkpoint.init_from``), a transformers folder or a Hub model id ``owner/name[@revision]``
(``model.init_from_transformers``); ``{seed}`` in it is replaced by the seed. EarlyBERTs:
``--init-from 'google/multiberts-seed_{seed}-step_0k'``, each seed from its MultiBERTs initialisation.
A suite that stopped is rerun with the same command: finished seeds
resume at their last step (nothing left to do), the interrupted one continues.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Optional

from mc4_sampling.common.cli_types import non_negative_int, positive_int

from ..config import TrainerConfig
from ..config_loading import add_config_arguments, load_config
from ..errors import ConfigError

log = logging.getLogger(__name__)


def seed_config(config: Optional[str], overrides: list[str], seed: int, init_from: Optional[str] = None
                ) -> TrainerConfig:
    """The config of seed ``seed`` of the suite."""
    base = load_config(config, overrides)
    sets = [f"training.seed={seed}", f"name={json.dumps(f'{base.name}-seed{seed}')}",
            f"training.output_dir={json.dumps(os.path.join(base.training.output_dir, f'seed{seed}'))}"]
    if base.checkpoint.directory:
        sets.append(f"checkpoint.directory={json.dumps(os.path.join(base.checkpoint.directory, f'seed{seed}'))}")
    if base.hub.push_to_hub:
        sets.append(f"hub.push_to_hub={json.dumps(f'{base.hub.push_to_hub}-seed{seed}')}")
    if init_from:
        from mc4_sampling.common.hub import HubLocation

        path = init_from.replace("{seed}", str(seed))
        hub_id = not os.path.exists(path) and HubLocation.parse(path) is not None
        if not os.path.exists(path) and not hub_id:
            raise ConfigError(f"--init-from: {path!r} (seed {seed}) does not exist (nor is it a Hub model id "
                              "owner/name[@revision])")
        key = ("model.init_from_transformers" if hub_id or os.path.isfile(os.path.join(path, "config.json"))
               else "checkpoint.init_from")
        sets.append(f"{key}={json.dumps(path)}")
    return load_config(config, list(overrides) + sets)


def run_suite(config: Optional[str], overrides: list[str], seeds: int, init_from: Optional[str] = None,
              first_seed: int = 0) -> list:
    """Train every seed in turn; the list of :class:`~trainer.train.TrainResult`."""
    from ..entry import train

    if seeds < 1:
        raise ConfigError(f"--seeds must be >= 1, got {seeds}")
    configs = [seed_config(config, overrides, k, init_from) for k in range(first_seed, first_seed + seeds)]
    results = []
    for cfg in configs:
        log.info("suite: %s (seed %d) -> %s", cfg.name, cfg.training.seed, cfg.training.output_dir)
        results.append(train(cfg))
    return results


def add_arguments(parser) -> None:
    add_config_arguments(parser, required=True)
    parser.add_argument("--seeds", type=positive_int, required=True, help="number of seeds K: runs seeds 0..K-1")
    parser.add_argument("--first-seed", type=non_negative_int, default=0, help="first seed (default 0)")
    parser.add_argument("--init-from", help="checkpoint, transformers folder or Hub model id (owner/name[@revision]) "
                                            "to start each seed from ({seed} is replaced by the seed), e.g. "
                                            "'google/multiberts-seed_{seed}-step_0k'")


def run(args) -> int:
    results = run_suite(args.config, args.set, args.seeds, args.init_from, args.first_seed)
    for r in results:
        last = r.eval_history[-1] if r.eval_history else None
        extra = f"; eval loss {last['loss']:.4f}" if last else ""
        print(f"{r.output_dir}: step {r.step}{extra}")
    return 0
