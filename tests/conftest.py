"""Shared fixtures: offline environment, a tiny KenLM model, a tiny RoBERTa to fine-tune, loopback HTTP servers
(a file server, a Hub)."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from loopback import FileServer
from loopback_hub import LoopbackHub

# No network in tests: datasets must not try to count downloads or reach the Hub.
os.environ.setdefault("HF_UPDATE_DOWNLOAD_COUNTS", "0")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
#: XLA's CPU compiler without its expensive optimisation passes, for the tests and every process they start (the
#: GPU check's smoke run uses the same): the tiny test models spend far more time compiling than running, and the
#: checks compare runs made under the same flags, or against PyTorch within a tolerance. XLA_FLAGS set by the
#: caller wins.
os.environ.setdefault("XLA_FLAGS", "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true")

#: JAX's persistent compilation cache, shared by the test processes of one session (both xdist workers and
#: every trainer subprocess they start): the tiny test models compile the same steps again and again, and an
#: executable read back from the cache is the one XLA compiled (same HLO, flags and devices in the key), so
#: nothing a test checks changes; a cold trainer run costs about 2.5x the CPU of the same run warm (runs that
#: differ in steps, schedule, devices or accumulation compile their own steps). The cache is
#: locked (a size limit turns JAX's file lock on), created empty for the session and removed at its end;
#: JAX_COMPILATION_CACHE_DIR set by the caller wins (set it empty to turn the cache off).
_CACHE_ENV = "JAX_COMPILATION_CACHE_DIR"
_OWN_CACHE = "MC4_TEST_OWN_XLA_CACHE"


def pytest_configure(config):
    if hasattr(config, "workerinput") or _CACHE_ENV in os.environ:
        return  # an xdist worker inherits the controller's settings; the caller's setting wins
    os.environ[_CACHE_ENV] = os.environ[_OWN_CACHE] = tempfile.mkdtemp(prefix="mc4-test-xla-cache-")
    os.environ.setdefault("JAX_COMPILATION_CACHE_MAX_SIZE", str(4 * 1024 ** 3))  # > 0: locked reads and writes
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")
    if "jax" in sys.modules:  # imported before this hook: tell it too
        import jax

        jax.config.update("jax_compilation_cache_dir", os.environ[_CACHE_ENV])
        jax.config.update("jax_compilation_cache_max_size", int(os.environ["JAX_COMPILATION_CACHE_MAX_SIZE"]))
        jax.config.update("jax_persistent_cache_min_compile_time_secs",
                          float(os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"]))


def pytest_unconfigure(config):
    if not hasattr(config, "workerinput") and os.environ.get(_OWN_CACHE):
        shutil.rmtree(os.environ.pop(_OWN_CACHE), ignore_errors=True)

import mc4_sampling  # noqa: E402  (registers the builder)

#: FineWeb-2- and HPLT-3.0-shaped folders (session fixtures ``fineweb2_folder``, ``hplt3_folder``)
pytest_plugins = ("source_fixtures",)

SAMPLE_DIR = Path(mc4_sampling.SAMPLE_DATA_DIR) / "multilingual"

TINY_ARPA = """\
\\data\\
ngram 1=8
ngram 2=4

\\1-grams:
-1.2\t<unk>\t0
0\t<s>\t-0.4
-0.9\t</s>\t0
-0.8\tel\t-0.3
-0.9\tgato\t-0.2
-1.0\tcome\t-0.2
-1.1\tpescado\t-0.1
-1.3\tperro\t-0.1

\\2-grams:
-0.3\t<s> el
-0.2\tel gato
-0.25\tgato come
-0.3\tcome pescado

\\end\\
"""


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> str:
    """A tokenizer trained on the synthetic downstream sentences and a random tiny RoBERTa (a transformers
    folder, tests/finetune_data.py), shared by the fine-tuning tests."""
    import finetune_data

    return finetune_data.tiny_model_folder(str(tmp_path_factory.mktemp("tiny")))


@pytest.fixture(scope="session")
def tiny_arpa(tmp_path_factory) -> str:
    """A hand-written bigram ARPA model: small enough to check scores by hand."""
    path = tmp_path_factory.mktemp("lm") / "tiny.arpa"
    path.write_text(TINY_ARPA, encoding="utf-8")
    return str(path)


WORDS = "el gato come pescado perro casa sol luna agua".split()


def write_shard(path, n, seed=0, lines=None):
    rng = random.Random(seed)
    with gzip.open(path, "wt", encoding="utf-8") as f:
        for j in range(n):
            text = "\n".join(" ".join(rng.choices(WORDS, k=rng.randint(3, 30))) for _ in range(rng.randint(1, 4)))
            record = {"text": f"{j} {text}", "timestamp": "2020-05-0%dT10:00:00Z" % (1 + j % 9),
                      "url": f"https://ejemplo.es/{seed}/{j}"}
            f.write(json.dumps(record) + "\n")
        for line in lines or []:
            f.write(line + "\n")


@pytest.fixture(scope="module")
def mini_mc4(tmp_path_factory):
    """Three train shards (of 2048) and one validation shard (of 16), 400 documents each."""
    root = tmp_path_factory.mktemp("mc4") / "multilingual"
    root.mkdir()
    for i in (0, 1, 2):
        write_shard(root / f"c4-es.tfrecord-{i:05d}-of-02048.json.gz", 400, seed=i)
    write_shard(root / "c4-es-validation.tfrecord-00000-of-00016.json.gz", 400, seed=99)
    return root


@pytest.fixture
def file_server():
    """``file_server(folder)`` serves a folder over loopback HTTP (see :class:`loopback.FileServer`)."""
    servers = []

    def start(root):
        server = FileServer(root)
        servers.append(server)
        return server

    yield start
    for s in servers:
        s.close()


@pytest.fixture
def loopback_hub(monkeypatch, tmp_path):
    """``loopback_hub(files=None)`` starts a :class:`loopback_hub.LoopbackHub` that ``HF_ENDPOINT`` points at.

    ``huggingface_hub`` downloads into a fresh cache of the test, and the perplexity models cached in
    the process are forgotten (when the Hub starts and when the test ends).
    """
    import huggingface_hub.constants

    from mc4_sampling.kenlm_models import clear_cache

    hubs = []

    def start(files=None):
        hub = LoopbackHub(files)
        hubs.append(hub)
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))
        clear_cache()
        return hub

    yield start
    for h in hubs:
        h.close()
    if hubs:  # models fetched from a closed Hub must not outlive it
        clear_cache()


@contextlib.contextmanager
def mounted_tmpfs(folder, *options):
    """A tmpfs mounted on ``folder`` for the block (skips the test where mounting is not permitted)."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join(options), "tmpfs", str(folder)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


def pytest_collection_modifyitems(config, items):
    """Modules holding a test marked ``slow`` run first (each module's tests stay together and in order).

    xdist hands tests out in this order as workers ask for more, so the minutes-long tests start while there
    is still plenty of short work for the other worker, and both workers finish at about the same time
    instead of one waiting for the last slow test of the other.
    """
    def module(item):
        return item.nodeid.split("::", 1)[0]

    slow = {module(item) for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: module(item) not in slow)  # stable: the order within a group is kept
