"""``trainer study CONFIG.yaml [--set key=value ...] [--engine local|ray]``: run or resume a study."""

from __future__ import annotations


def add_arguments(parser) -> None:
    parser.add_argument("config", help="study YAML file or shipped name (study-tiny, study-bertin)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="study config override, e.g. seeds.count=1 or output_dir=runs/s (repeatable; YAML value)")
    parser.add_argument("--engine", choices=("local", "ray"), help="run the units here one after another (local) "
                        "or as Ray tasks (ray); default: the config's runner.engine")


def run(args) -> int:
    from .runner import run_study

    report = run_study(args.config, args.set, engine=args.engine)
    print(f"{report['units_done']} of {report['units_total']} units done")
    return 0
