"""A ``trainer train`` run that SIGKILLs itself right after a given step (for the resume tests).

    python tests/trainer_with_fault.py --kill-after-step N [--signal TERM] --config C [--set KEY=VALUE ...]

``--signal TERM`` or ``INT`` sends that signal instead (to the process itself, so the trainer's
own handler runs: it saves after the step and exits with 128 + the signal number).

The options after ``--kill-after-step`` are those of ``trainer train``. The kill is a hook added
after the default ones, so a checkpoint requested at step N is requested before the process dies.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from trainer.cli import build_parser  # noqa: E402
from trainer.config_loading import load_config  # noqa: E402
from trainer.console import configure_logging, run_guarded  # noqa: E402
from trainer.entry import build_trainer  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--kill-after-step", type=int, required=True)
    p.add_argument("--signal", default="KILL", choices=["KILL", "TERM", "INT"])
    fault, train_argv = p.parse_known_args(argv)
    args = build_parser().parse_args(["train", *train_argv])
    configure_logging()

    def kill_after_step(info) -> None:
        if info.step == fault.kill_after_step:
            os.kill(os.getpid(), getattr(signal, "SIG" + fault.signal))

    def go() -> int:
        trainer = build_trainer(load_config(args.config, args.set))
        trainer.add_hook(kill_after_step)
        trainer.run()
        return 0

    return run_guarded(go)


if __name__ == "__main__":
    sys.exit(main())
