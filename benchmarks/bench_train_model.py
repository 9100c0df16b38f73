"""``train-model``'s n-gram step: the project's estimator against KenLM's ``lmplz`` (issue 26).

The text: every document of the bundled sample (train and validation), normalised and encoded with
the embedded SentencePiece model, one line per paragraph (about 0.94 M pieces). Each estimator runs
in its own process on the same file and writes the 5-gram ARPA with CCNet's flags
(``-o 5 --discount_fallback``, no pruning); reported: seconds per million tokens (pieces) and the
process' peak resident memory. ``lmplz`` runs when it is on PATH or built under scripts/.build
(``WITH_LMPLZ=1 bash scripts/build_default_model.sh``, or its step 2); both ARPAs are then checked
to hold the same n-grams.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import mc4_sampling

HERE = Path(__file__).resolve().parent
LMPLZ = shutil.which("lmplz") or str(HERE.parent / "scripts/.build/kenlm-src/build/bin/lmplz")
OWN = """
import sys
from mc4_sampling.kneser_ney import KneserNeyOptions, estimate, write_arpa
with open(sys.argv[1], encoding="utf-8") as f:
    model = estimate(f, KneserNeyOptions(order=5))
write_arpa(model, sys.argv[2])
"""


def pieces_file(path: Path) -> int:
    import sentencepiece as spm

    from mc4_sampling.kenlm_models import DEFAULT_MODEL_DIR
    from mc4_sampling.normalization import normalize_line

    sp = spm.SentencePieceProcessor(model_file=os.path.join(DEFAULT_MODEL_DIR, "es.sp.model"))
    lines = []
    for shard in sorted(Path(mc4_sampling.SAMPLE_DATA_DIR, "multilingual").glob("*.json.gz")):
        with gzip.open(shard, "rt", encoding="utf-8") as f:
            for record in f:
                lines += [t for t in (normalize_line(p) for p in json.loads(record)["text"].split("\n")) if t]
    n = 0
    with open(path, "w", encoding="utf-8") as out:
        for pieces in sp.encode(lines, out_type=str):
            out.write(" ".join(pieces) + "\n")
            n += len(pieces)
    return n


def run(cmd: list[str], stdin=None, stdout=None) -> tuple[float, float]:
    """Wall seconds and peak resident MiB of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=stdin, stdout=stdout, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{cmd[0]} failed (exit {os.waitstatus_to_exitcode(status)})")
    return seconds, usage.ru_maxrss / 1024


def ngram_counts(arpa: Path) -> list[int]:
    with open(arpa, encoding="utf-8") as f:
        return [int(line.split("=")[1]) for line in f if line.startswith("ngram ")]


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        text = tmp / "pieces.txt"
        n = pieces_file(text)
        print(f"text: {n:,} pieces (the bundled sample, normalised, embedded SentencePiece model)")
        rows = []
        seconds, mib = run([sys.executable, "-c", OWN, str(text), str(tmp / "own.arpa")])
        rows.append(("own (mc4_sampling.kneser_ney)", seconds, mib, ngram_counts(tmp / "own.arpa")))
        if os.access(LMPLZ, os.X_OK):
            with open(text, "rb") as fin, open(tmp / "lmplz.arpa", "wb") as fout:
                seconds, mib = run([LMPLZ, "-o", "5", "--discount_fallback", "-S", "1G", "-T", str(tmp)], fin, fout)
            rows.append(("lmplz -S 1G (KenLM 0.3.0)", seconds, mib, ngram_counts(tmp / "lmplz.arpa")))
        else:
            print("lmplz: not found (on PATH or scripts/.build); own estimator only")
        print(f"\n{'estimator':32s} {'s/M tokens':>10s} {'peak MiB':>9s}  n-grams")
        for name, seconds, mib, counts in rows:
            print(f"{name:32s} {seconds / n * 1e6:10.1f} {mib:9.0f}  {sum(counts):,}")
        if len(rows) == 2:
            assert rows[0][3] == rows[1][3], "the estimators disagree on the n-grams"
            print(f"\nsame n-grams; own / lmplz time: {rows[0][1] / rows[1][1]:.1f}x, "
                  f"memory: {rows[0][2] / rows[1][2]:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
