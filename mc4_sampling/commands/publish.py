"""``mc4-sampling publish``: materialise sampled subsets on datatrove, with a dataset card; push them."""

from __future__ import annotations

import argparse
import sys

from .. import publish_outputs
from ..errors import ConfigError
from ..plan import SPLITS
from ..publish import EXECUTORS, SlurmOptions, method_configs, publish
from ..sources import make_source
from .common import (
    add_model_options,
    add_sampling_options,
    add_source_options,
    build_config,
    corpus_source,
    key_values,
    source_sampling_options,
)

_SLURM_OPTIONS = ("slurm_partition", "slurm_time", "slurm_cpus_per_task", "slurm_mem_per_cpu", "slurm_job_name",
                  "slurm_venv", "slurm_dry_run")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "publish",
        help="write sampled subsets as a multi-config Parquet dataset with a card, optionally push it to the Hub",
        description="Sample mC4 or another corpus source (--source fineweb2, hplt3, files, ...) with one or several "
        "methods (one config each) on datatrove and write "
        "OUTPUT_DIR/data/<config>/<split>-NNNNN-of-NNNNN.parquet (one file per input shard or unit) plus a dataset "
        "card OUTPUT_DIR/README.md. Interrupted runs resume: run the same command again. --push-to-hub "
        "uploads the folder as a dataset repository.",
    )
    p.add_argument("output_dir", metavar="OUTPUT_DIR",
                   help="folder to write (new, empty, or holding this same dataset)")
    add_source_options(p)
    add_sampling_options(p)
    method = p._option_string_actions["--method"]  # several weightings here: one config each
    method.nargs, method.default = "+", ["gaussian"]
    method.help = "weighting(s), one config each, e.g. --method random stepwise gaussian (default: gaussian)"
    add_model_options(p)
    p.add_argument("--splits", nargs="+", metavar="SPLIT",
                   help="splits to write (default: every split of the source; mC4: train validation)")
    p.add_argument("--max-docs", type=int,
                   help="keep at most this many documents per config and split (only with --executor local --tasks 1)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the contents of an OUTPUT_DIR that holds something else")
    g = p.add_argument_group("execution")
    g.add_argument("--executor", choices=EXECUTORS, default="local",
                   help="local processes, a Ray cluster, or a Slurm job array (default: local)")
    g.add_argument("--tasks", type=int, help="datatrove tasks (default: one per input shard)")
    g.add_argument("--workers", type=int, help="tasks run at once (default: the CPU count; Slurm: no limit)")
    g.add_argument("--ray-address", help="Ray cluster to join (default: RAY_ADDRESS, else a local one)")
    s = p.add_argument_group("slurm (with --executor slurm)")
    s.add_argument("--slurm-partition", help="partition of the job array (required with --executor slurm)")
    s.add_argument("--slurm-time", help="time limit of each job (default 24:00:00)")
    s.add_argument("--slurm-cpus-per-task", type=int, help="CPUs per task (default 1)")
    s.add_argument("--slurm-mem-per-cpu", type=float, help="memory per CPU in GB (default 2)")
    s.add_argument("--slurm-job-name", help="job name (default mc4-sampling)")
    s.add_argument("--slurm-venv", help="virtual environment activated by the job (its bin/activate)")
    s.add_argument("--slurm-dry-run", action="store_true",
                   help="write the sbatch script and the pickled pipeline, submit nothing")
    h = p.add_argument_group("hub")
    h.add_argument("--push-to-hub", metavar="REPO_ID", help="upload to this dataset repository (owner/name)")
    h.add_argument("--private", action="store_true", help="create the repository as private")
    publish_outputs.add_arguments(p)  # outputs of other packages (--tokenizer: the trainer's token shards)
    p.set_defaults(handler=run)


def _slurm_options(args) -> SlurmOptions | None:
    given = [name for name in _SLURM_OPTIONS if getattr(args, name) not in (None, False)]
    if args.executor != "slurm":
        if given:
            raise ConfigError(f"--{given[0].replace('_', '-')} needs --executor slurm")
        return None
    if not args.slurm_partition:
        raise ConfigError("--executor slurm needs --slurm-partition")
    options = SlurmOptions(partition=args.slurm_partition, submit=not args.slurm_dry_run)
    for arg, name in (("slurm_time", "time"), ("slurm_cpus_per_task", "cpus_per_task"),
                      ("slurm_mem_per_cpu", "mem_per_cpu_gb"), ("slurm_job_name", "job_name"),
                      ("slurm_venv", "venv_path")):
        if getattr(args, arg) is not None:
            setattr(options, name, getattr(args, arg))
    return options


def run(args: argparse.Namespace) -> int:
    if args.push_to_hub is not None and args.push_to_hub.count("/") != 1:
        raise ConfigError(f"--push-to-hub={args.push_to_hub!r} is not valid; give a repository id owner/name")
    slurm = _slurm_options(args)
    if args.ray_address and args.executor != "ray":
        raise ConfigError("--ray-address needs --executor ray")
    # --weighting-option is shared by the methods: each config takes the keys its weighting declares
    shared = key_values(args.weighting_options, "--weighting-option")
    source = corpus_source(args)  # unknown source, missing language or column: one line before any work
    if args.splits is None:  # every split of the source
        args.splits = list(SPLITS) if source is None else list(make_source(source).splits())
    publish_outputs.check(args)  # an output asked for without its extra: refused before any work
    if source is None:
        if args.splits is not None and any(s not in SPLITS for s in args.splits):
            bad = next(s for s in args.splits if s not in SPLITS)
            raise ConfigError(f"--splits {bad}: mC4 has the splits {', '.join(SPLITS)}")
        base = build_config(args, return_perplexity=True, sampling_method=args.sampling_method[0],
                            weighting_options=None)
    else:
        base = source_sampling_options(args, return_perplexity=True, sampling_method=args.sampling_method[0],
                                       weighting_options=None)
    configs = method_configs(base, args.sampling_method, shared or {})
    result = publish(configs, args.output_dir, source=source, splits=args.splits, executor=args.executor,
                     tasks=args.tasks,
                     workers=args.workers, max_docs=args.max_docs, overwrite=args.overwrite, slurm=slurm,
                     ray_address=args.ray_address, repo_id=args.push_to_hub,
                     before_writing=lambda: publish_outputs.check_documents(args, configs, source),
                     on_interrupt=lambda line: print(f"mc4-sampling publish: {line}", file=sys.stderr, flush=True))
    if not result.complete:  # Slurm: submitted (or written), not finished
        what = "wrote" if slurm and not slurm.submit else "submitted"
        print(f"{what} a Slurm job array of {result.tasks} tasks ({result.slurm_script}); when the jobs have "
              "finished, run the same command again: it submits nothing more and writes the card", file=sys.stderr)
        return 0
    for name, by_split in result.stats.items():
        for split, s in by_split.items():
            print(f"{name} {split}: kept {s.kept} of {s.read} documents (keep rate {s.keep_rate:.4f}, "
                  f"scored {s.scored}, bad records {s.bad_records})", file=sys.stderr)
            if s.histogram:  # upsampled
                from ..upsampling import duplication, duplication_line

                print(f"{name} {split}: " + duplication_line(duplication(s.kept, s.copies, s.histogram, s.words,
                                                                         s.copy_words)), file=sys.stderr)
    print(f"wrote {result.output_dir}/README.md and {result.output_dir}/data/ ({result.shards} shards x "
          f"{len(result.configs)} configs, {result.tasks} tasks)", file=sys.stderr)
    publish_outputs.run(args, result)  # --tokenizer: OUTPUT_DIR/tokens/<config>/
    if args.push_to_hub:
        from ..common.hub import push_folder

        info = push_folder(result.output_dir, args.push_to_hub, repo_type="dataset", private=args.private,
                           large=True, allow_patterns=["README.md", "data/**"])
        print(f"pushed to {args.push_to_hub}: {info}", file=sys.stderr)
    return 0
