"""Scheduled checkpoints as model revisions: export, upload to Hub branches ``step{N}``, resume.

With ``checkpoint.schedule`` set, the trainer (with :class:`RevisionsExtension`, composed by
:mod:`trainer.entry`):

* saves a checkpoint at each scheduled step (besides the regular ones; ``checkpoint.keep`` never
  deletes it, :class:`trainer.checkpoint.Checkpointer` ``preserve``);
* exports it to ``<output_dir>/revisions/step{N}`` (transformers folder, tokenizer, model card
  listing the revisions, and ``revision.json``: the step and the sha256 of every file but the card);
* with ``hub.push_to_hub`` set, uploads it to the branch ``step{N}`` of that model repository and
  to ``main`` (which thus holds the latest revision; the last step is also pushed to ``main``), so
  that ``AutoModelForMaskedLM.from_pretrained(repo, revision="step7000")`` loads it.

Export and upload run in one background thread (:class:`RevisionPublisher`): the training loop
only copies the parameters to the host. A restarted run re-submits (to their branches only) the
scheduled steps whose upload did not finish (a ``.pushed`` marker in the revision folder records the finished ones; the
folder is exported again from the preserved checkpoint when it is missing). A branch already on
the Hub whose ``revision.json`` is the same is not uploaded again; one with other content is an
error, never overwritten.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import queue
import tempfile
import threading
from typing import TYPE_CHECKING, Any, Optional

import numpy as np

from mc4_sampling.common.outputs import atomic_folder

from ..errors import CheckpointError, ExportError
from ..hooks import Extension, Hook
from .checkpoint_schedule import resolve_schedule, revision_name

if TYPE_CHECKING:  # pragma: no cover
    from ..train import Trainer

log = logging.getLogger(__name__)

MANIFEST = "revision.json"
PUSHED_MARKER = ".pushed"


def file_digests(folder: str) -> dict[str, str]:
    """``{file: sha256}`` of the files of an export that define the model (not the card, not the manifest)."""
    out = {}
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if name in ("README.md", MANIFEST, PUSHED_MARKER) or not os.path.isfile(path):
            continue
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        out[name] = h.hexdigest()
    return out


def revisions_section(repo_id: Optional[str], steps: list[int]) -> str:
    """The model card's list of revisions and how to load one."""
    if not steps:
        return ""
    ref = repo_id or "PATH"
    names = ", ".join(f"`{revision_name(s)}`" for s in steps)
    example = steps[len(steps) // 2]
    return (f"\n## Revisions\n\n{len(steps)} intermediate checkpoints are stored as revisions (branches) of this "
            f"repository, one per training step: {names}. `main` holds the latest.\n\n"
            "```python\nfrom transformers import AutoModelForMaskedLM, AutoTokenizer\n"
            f"model = AutoModelForMaskedLM.from_pretrained('{ref}', revision='{revision_name(example)}')\n"
            f"tokenizer = AutoTokenizer.from_pretrained('{ref}', revision='{revision_name(example)}')\n```\n")


def export_revision(params, spec, meta: dict, step: int, folder: str, repo_id: Optional[str],
                    steps: list[int]) -> str:
    """Write the transformers folder of one revision with its card and manifest."""
    import dataclasses

    from ..export import model_card
    from ..models import family_of

    export_pretrained = family_of(spec).hf.export_pretrained
    card = model_card(meta, step, repo_id, revisions=revisions_section(repo_id, steps))
    spec_out = dataclasses.replace(spec, dtype="float32", param_dtype="float32")
    with atomic_folder(folder) as out:
        tmp = str(out)
        export_pretrained(params, spec_out, tmp, tokenizer_dir=meta.get("tokenizer_dir"),
                          extra_files={"README.md": card})
        with open(os.path.join(tmp, MANIFEST), "w", encoding="utf-8") as f:
            json.dump({"step": step, "revision": revision_name(step), "files": file_digests(tmp)}, f, indent=1,
                      sort_keys=True)
    return folder


def remote_manifest(repo_id: str, revision: str, endpoint: Optional[str] = None,
                    token: Optional[str] = None) -> Optional[dict]:
    """The ``revision.json`` of a branch; None when the repository or the branch does not exist.

    A branch without a manifest is returned as ``{}`` (it exists, with content we did not write).
    """
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

    with tempfile.TemporaryDirectory() as cache:
        try:
            path = hf_hub_download(repo_id, MANIFEST, revision=revision, cache_dir=cache, token=token,
                                   endpoint=endpoint or os.environ.get("HF_ENDPOINT") or None)
        except RevisionNotFoundError:
            return None
        except RepositoryNotFoundError:
            return None
        except EntryNotFoundError:
            return {}
        with open(path, encoding="utf-8") as f:
            return json.load(f)


def push_revision(folder: str, repo_id: str, step: int, private: bool = False, endpoint: Optional[str] = None,
                  token: Optional[str] = None, update_main: bool = True) -> bool:
    """Upload an exported revision to the branch ``step{N}`` (and ``main``); False when the branch
    already holds the same content. ExportError when it holds other content."""
    from mc4_sampling.common.errors import HubError
    from mc4_sampling.common.hub import push_folder

    from ..export import commit_message, upload_plan

    with open(os.path.join(folder, MANIFEST), encoding="utf-8") as f:
        local = json.load(f)
    branch = revision_name(step)
    files = [f for f in upload_plan(folder) if f != PUSHED_MARKER]
    remote = remote_manifest(repo_id, branch, endpoint, token)
    if remote is not None and remote.get("files") != local["files"]:
        raise ExportError(f"revision {branch} already exists in {repo_id} with other content; it is not "
                          "overwritten (delete the branch, or push to another repository)")
    uploaded = remote is None
    try:
        if uploaded:
            push_folder(folder, repo_id, repo_type="model", private=private, token=token, endpoint=endpoint,
                        commit_message=commit_message(folder, f"{{family}} checkpoint at step {step}"),
                        allow_patterns=files, revision=branch, create_branch=True)
        if update_main:
            push_folder(folder, repo_id, repo_type="model", private=private, token=token, endpoint=endpoint,
                        commit_message=commit_message(folder, f"Latest {{family}} checkpoint: step {step}"),
                        allow_patterns=files)
    except HubError as e:
        raise ExportError(str(e)) from None
    log.info("revision %s %s %s", branch, "uploaded to" if uploaded else "already on", repo_id)
    return uploaded


class RevisionPublisher:
    """A background thread exporting scheduled checkpoints and uploading them (one job at a time)."""

    def __init__(self, output_dir: str, repo_id: Optional[str], steps: list[int], private: bool = False,
                 endpoint: Optional[str] = None, token: Optional[str] = None):
        self.root = os.path.join(output_dir, "revisions")
        self.repo_id, self.steps, self.private = repo_id, steps, private
        self.endpoint = endpoint or os.environ.get("HF_ENDPOINT") or None
        self.token = token
        self.errors: list[str] = []
        self.done: list[int] = []
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._work, name="revision-publisher", daemon=True)
        self._thread.start()

    def folder(self, step: int) -> str:
        return os.path.join(self.root, revision_name(step))

    def submit(self, step: int, load, spec, meta: Optional[dict], branch: bool = True, main: bool = True) -> None:
        """Export (``load()`` -> numpy params; None: the folder exists) and upload step ``step`` to its
        branch and (``main``) to main; ``branch=False``: to main only, from ``revisions/final``."""
        self._queue.put((step, load, spec, meta, branch, main))

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            step, load, spec, meta, branch, main = job
            try:
                self._publish(step, load, spec, meta, branch, main)
            except Exception as e:  # reported by close(); the thread keeps going
                msg = f"step {step}: {type(e).__name__}: {e}"
                log.error("revision %s", msg)
                self.errors.append(msg)

    def _publish(self, step, load, spec, meta, branch, main) -> None:
        folder = self.folder(step) if branch else os.path.join(self.root, "final")
        if load is not None or not os.path.isfile(os.path.join(folder, MANIFEST)):
            if load is None:
                raise ExportError(f"{folder} is missing and no checkpoint to export it from")
            export_revision(load(), spec, meta, step, folder, self.repo_id, self.steps)
        if self.repo_id and not os.path.exists(os.path.join(folder, PUSHED_MARKER)):
            if branch:
                push_revision(folder, self.repo_id, step, self.private, self.endpoint, self.token, update_main=main)
            else:
                from mc4_sampling.common.hub import push_folder

                from ..export import commit_message, upload_plan

                files = [f for f in upload_plan(folder) if f != PUSHED_MARKER]
                push_folder(folder, self.repo_id, repo_type="model", private=self.private, token=self.token,
                            endpoint=self.endpoint, allow_patterns=files,
                            commit_message=commit_message(folder, f"Final {{family}} checkpoint: step {step}"))
            with open(os.path.join(folder, PUSHED_MARKER), "w", encoding="utf-8") as f:
                f.write(self.repo_id + "\n")
        self.done.append(step)

    def close(self) -> list[str]:
        """Wait for every job; the errors met (also logged)."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        return list(self.errors)


# ---------------------------------------------------------------------------------------------
# the trainer's hooks


def _host_params(trainer: "Trainer"):
    import jax

    if not all(getattr(a, "is_fully_addressable", True) for a in jax.tree.leaves(trainer.params)):
        from jax.experimental import multihost_utils

        return jax.tree.map(np.asarray, multihost_utils.process_allgather(trainer.params, tiled=True))
    return jax.tree.map(np.asarray, jax.device_get(trainer.params))


def _export_spec(trainer: "Trainer"):
    import dataclasses

    return dataclasses.replace(trainer.spec, dtype="float32", param_dtype="float32", attention_impl="xla")


class RevisionsExtension(Extension):
    """``checkpoint.schedule``: the scheduled steps are kept by ``checkpoint.keep``, saved, exported to
    ``revisions/step{N}`` and (``hub.push_to_hub``) uploaded by a :class:`RevisionPublisher`."""

    options = ("checkpoint.schedule",)

    @classmethod
    def enabled(cls, cfg) -> bool:
        return cfg.checkpoint.schedule is not None

    @classmethod
    def validate(cls, cfg) -> None:
        resolve_schedule(cfg.checkpoint.schedule)

    def __init__(self):
        self.publisher: Optional[RevisionPublisher] = None

    def preserved_steps(self, cfg) -> list[int]:
        return resolve_schedule(cfg.checkpoint.schedule)

    def hooks(self, trainer: "Trainer") -> list[Hook]:
        cfg = trainer.cfg
        steps = resolve_schedule(cfg.checkpoint.schedule, cfg.training.max_steps)
        if not steps:
            return []
        scheduled = set(steps)
        publisher = None
        if trainer.rank == 0:
            publisher = self.publisher = RevisionPublisher(cfg.training.output_dir, cfg.hub.push_to_hub, steps,
                                                           cfg.hub.private)
            _resubmit(trainer, publisher, steps)

        def scheduled_checkpoint(info) -> None:
            # every process gathers (a collective with several hosts); the first one exports and uploads
            if info.step in scheduled:
                trainer.ensure_saved(info.position)
                params = _host_params(trainer)
                if publisher is not None:
                    publisher.submit(info.step, lambda: params, _export_spec(trainer), trainer.meta())
            elif info.step == info.last_step and cfg.hub.push_to_hub:
                params_final = _host_params(trainer)
                if publisher is not None:
                    publisher.submit(info.step, lambda: params_final, _export_spec(trainer), trainer.meta(),
                                     branch=False)

        return [Hook(trainer.off_the_step_clock(scheduled_checkpoint), 1)]

    def close(self) -> Optional[BaseException]:
        errors = self.publisher.close() if self.publisher is not None else []
        return CheckpointError("scheduled revisions failed: " + "; ".join(errors)) if errors else None


def _resubmit(trainer: "Trainer", publisher: RevisionPublisher, steps: list[int]) -> None:
    """After a restart: the scheduled steps already trained whose export or upload did not finish."""
    for step in steps:
        if step > trainer.step:
            break
        folder = publisher.folder(step)
        if os.path.isfile(os.path.join(folder, MANIFEST)):
            if publisher.repo_id and not os.path.exists(os.path.join(folder, PUSHED_MARKER)):
                publisher.submit(step, None, None, None, main=False)
            continue
        if step in trainer.ckpt.all_steps():
            directory = trainer.ckpt.directory

            def load(step=step, directory=directory) -> Any:
                from ..export import load_checkpoint_params

                return load_checkpoint_params(directory, step)[1]

            publisher.submit(step, load, _export_spec(trainer), trainer.meta(), main=False)
        else:
            log.warning("scheduled step %d has neither a revision folder nor a checkpoint; not exported", step)
