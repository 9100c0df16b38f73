"""The integrity of a checkpoint step: a checksum manifest written last, checked before a restore.

Once Orbax has finished a step (its folder renamed from the temporary name), the trainer writes
``<dir>/<step>/checksums.json`` (under a temporary name, then renamed)::

    {"algorithm": "sha256", "files": {"<path relative to the step folder>": {"size": n, "sha256": h}, ...}}

:func:`step_damage` compares every listed file with the folder: a missing file, another size (a
truncated file) or another SHA-256 (changed bytes) is damage, named in one phrase. A step without
the manifest (written by an older trainer, or stopped between Orbax's rename and the manifest) is
checked as far as it can be without one: each item folder is there and its JSON items parse; its
arrays are then checked by Orbax's restore alone.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Optional

#: The checksum manifest of a step folder.
CHECKSUMS = "checksums.json"
#: The items of a step (Orbax item names) and those stored as JSON (``<item>/metadata``).
ITEMS = ("params", "opt_state", "train", "position", "meta")
JSON_ITEMS = ("train", "position", "meta")


def file_sha256(path: str) -> str:
    """SHA-256 hex digest of the file's bytes (read 1 MiB at a time)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def step_files(step_dir: str) -> list[str]:
    """Every file under ``step_dir`` (``/``-joined relative paths, sorted), the manifest and hidden
    temporary files excepted."""
    out = []
    for root, dirs, files in os.walk(step_dir):
        dirs.sort()
        for name in files:
            rel = os.path.relpath(os.path.join(root, name), step_dir).replace(os.sep, "/")
            if rel != CHECKSUMS and not name.startswith("."):
                out.append(rel)
    return sorted(out)


def checksums(step_dir: str) -> dict:
    """The manifest of ``step_dir`` as it is now: size and SHA-256 of every file."""
    files = {}
    for rel in step_files(step_dir):
        path = os.path.join(step_dir, rel)
        files[rel] = {"size": os.path.getsize(path), "sha256": file_sha256(path)}
    return {"algorithm": "sha256", "files": files}


def write_checksums(step_dir: str) -> None:
    """Write :data:`CHECKSUMS` of the finished step folder ``step_dir`` (whole or not at all)."""
    from mc4_sampling.common.outputs import write_atomic

    write_atomic(os.path.join(step_dir, CHECKSUMS), json.dumps(checksums(step_dir), indent=0))


def has_checksums(step_dir: str) -> bool:
    return os.path.isfile(os.path.join(step_dir, CHECKSUMS))


def step_damage(step_dir: str) -> Optional[str]:
    """None when ``step_dir`` is intact; else what is wrong, in one phrase naming the first bad file
    (``"params/d/ab12 has 1024 bytes where 2048 were written"``, ``"position/metadata was changed (its
    SHA-256 differs from the one written with the checkpoint)"``, ``"opt_state/d/cd34 is missing"``)."""
    if not os.path.isdir(step_dir):
        return "its folder is missing"
    manifest_path = os.path.join(step_dir, CHECKSUMS)
    if not os.path.isfile(manifest_path):
        return _damage_without_checksums(step_dir)
    try:
        with open(manifest_path, encoding="utf-8") as f:
            files = json.load(f)["files"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        return f"its {CHECKSUMS} is unreadable ({type(e).__name__})"
    for rel, want in sorted(files.items()):
        path = os.path.join(step_dir, *rel.split("/"))
        try:
            size = os.path.getsize(path)
        except OSError:
            return f"{rel} is missing"
        if size != want["size"]:
            return f"{rel} has {size} bytes where {want['size']} were written"
        if file_sha256(path) != want["sha256"]:
            return f"{rel} was changed (its SHA-256 differs from the one written with the checkpoint)"
    return None


def _damage_without_checksums(step_dir: str) -> Optional[str]:
    for item in ITEMS:
        if not os.path.isdir(os.path.join(step_dir, item)):
            return f"{item}/ is missing"
    for item in JSON_ITEMS:
        path = os.path.join(step_dir, item, "metadata")
        try:
            with open(path, encoding="utf-8") as f:
                json.load(f)
        except FileNotFoundError:
            return f"{item}/metadata is missing"
        except (OSError, ValueError) as e:
            return f"{item}/metadata is not valid JSON ({type(e).__name__})"
    return None
