#!/usr/bin/env bash
# The prepared GPU check (issue 19), on the GPU machine from the repository root:
#
#     bash benchmarks/gpu/run.sh "$OUT"            # install from .whl/gpu, then gpu_check.py; <= 8 minutes
#     bash benchmarks/gpu/run.sh OUT --dry-run     # check the wheels, print the commands, run nothing
#     bash benchmarks/gpu/run.sh OUT --smoke       # the same install, then tiny sizes (a CPU will do)
#
# Other arguments go to gpu_check.py (--only STEPS, --budget S). The wheels come from `make wheels-gpu`
# on a machine with the registry; they are installed with --no-deps into a folder of their own ($SITE),
# so the preinstalled jax, jaxlib and CUDA plugin are neither replaced nor shadowed (checked).
# Environment: PYTHON (python3), WHEELS (.whl/gpu), SITE (/tmp/mc4-gpu-site), GPU_CHECK_SECONDS (470).
set -u -o pipefail
START=$(date +%s)
if [ $# -lt 1 ] || [ "${1#-}" != "$1" ]; then
    echo "usage: bash benchmarks/gpu/run.sh OUT_DIR [--dry-run] [--smoke] [gpu_check.py options]" >&2
    exit 2
fi
OUT=$1
shift
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PY=${PYTHON:-python3}
WHEELS=${WHEELS:-$REPO/.whl/gpu}
SITE=${SITE:-/tmp/mc4-gpu-site}
TOTAL=${GPU_CHECK_SECONDS:-470}
DRY=0
SMOKE=0
ARGS=()
for a in "$@"; do
    case "$a" in
        --dry-run) DRY=1 ;;
        --smoke) SMOKE=1; ARGS+=("$a") ;;
        *) ARGS+=("$a") ;;
    esac
done

# The output folder: new, empty, or holding only this check's files.
if [ -e "$OUT" ] && [ ! -d "$OUT" ]; then
    echo "error: OUT_DIR $OUT is a file; give a folder" >&2
    exit 2
fi
if [ -d "$OUT" ]; then
    foreign=$(ls -A "$OUT" | grep -vxE 'gpu_check\.json|gpu_check\.log|gpu_table\.md|run\.log' | head -3 | tr '\n' ' ')
    if [ -n "$foreign" ]; then
        echo "error: OUT_DIR $OUT holds files this check did not write ($foreign); give an empty or new folder" >&2
        exit 2
    fi
fi
mkdir -p "$OUT"
exec > >(tee -a "$OUT/run.log") 2> >(tee -a "$OUT/run.log" >&2)

run() {
    echo "+ $*"
    if [ "$DRY" = 0 ]; then "$@"; fi
}
norm() { tr 'A-Z.-' 'a-z__'; }

# Every pinned wheel (and seqeval) must be there: one clear line naming the missing ones otherwise.
have=$(ls "$WHEELS" 2>/dev/null | grep '\.whl$' | sed 's/-.*//' | norm | sort -u)
missing=""
for name in $(grep -oE '^[A-Za-z0-9_.-]+==' "$REPO/benchmarks/gpu/wheels.txt" | tr -d '=') seqeval; do
    echo "$have" | grep -qx "$(echo "$name" | norm)" || missing="$missing $name"
done
if [ -n "$missing" ]; then
    echo "error: $WHEELS lacks the wheels of:$missing; run 'make wheels-gpu' on a machine with the registry" \
         "and carry .whl/gpu to the GPU machine" >&2
    exit 2
fi

jax_versions() { "$PY" -c 'import jax, jaxlib; print(jax.__version__, jaxlib.__version__)' 2>&1; }
before=$(jax_versions)
echo "python: $("$PY" -c 'import sys; print(sys.executable, sys.version.split()[0])'); jax, jaxlib: $before"
run "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" "$WHEELS"/*.whl \
    || exit 3
# the project itself, from this working tree (its configs and the bundled sample are package data)
TREE=""
run "$PY" -m pip install -q --no-index --no-deps --no-build-isolation --no-compile --no-cache-dir --upgrade \
    --target "$SITE" "$REPO" || { echo "warning: the project did not install; the working tree goes on PYTHONPATH"; TREE=":$REPO"; }
export PYTHONPATH="$SITE$TREE${PYTHONPATH:+:$PYTHONPATH}" PATH="$SITE/bin:$PATH"
CHECK=("$PY" "$REPO/benchmarks/gpu/gpu_check.py" --out "$OUT" "${ARGS[@]}")
if [ "$DRY" = 1 ]; then
    echo "+ PYTHONPATH=$PYTHONPATH ${CHECK[*]} --budget SECONDS_LEFT"
    echo "dry run: nothing installed or run"
    exit 0
fi
after=$(jax_versions)
if [ "$before" != "$after" ]; then
    echo "error: the install changed jax/jaxlib ($before -> $after); a wheel in $WHEELS shadows them" >&2
    exit 3
fi
REQUIRE=(--require gpu)
[ "$SMOKE" = 1 ] && REQUIRE=()
"$PY" -m trainer devices "${REQUIRE[@]}" || exit 4
INSTALL_S=$(( $(date +%s) - START ))
CHECK+=(--budget $(( TOTAL - INSTALL_S )))
export GPU_CHECK_INSTALL="{\"seconds\": $INSTALL_S, \"site\": \"$SITE\", \"jax\": \"$after\", \"wheels\": \"$(ls "$WHEELS" | tr '\n' ' ')\"}"
"${CHECK[@]}"
status=$?
echo "run.sh: done in $(( $(date +%s) - START )) s (exit status $status); results in $OUT"
exit $status
