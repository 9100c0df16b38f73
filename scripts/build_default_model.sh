#!/usr/bin/env bash
# Rebuild the embedded Spanish perplexity model (mc4_sampling/data/model/) and the bundled
# mC4-layout sample (mc4_sampling/data/sample/) from Debian packages, on a Debian 12 machine,
# as root, from any directory. Needs the project's virtualenv (`make install`) or PYTHON=...
# with kenlm, sentencepiece and numpy. Everything intermediate goes to scripts/.build/
# (git-ignored); the packages are about 1.4 GB to download, 3 GB unpacked. Takes a few
# minutes; -j2 at most.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=scripts/.build
PY=${PYTHON:-.venv/bin/python}
export DEBIAN_FRONTEND=noninteractive

# Spanish prose for training (see scripts/spanish_text.py: TRAIN_SOURCES), held-out prose for
# the sample (HELDOUT_SOURCES), a word list and packages with Spanish .mo catalogues.
TRAIN_PACKAGES=(sword-text-sparv libreoffice-help-es manpages-es manpages-es-dev lilypond-doc-html-es
                debian-reference-es gnome-user-docs fortunes-es aptitude-doc-es maint-guide-es)
# Narrative, descriptive and encyclopedic prose for training only (spanish_text.EXTRA_TRAIN_SOURCES).
EXTRA_PACKAGES=(wesnoth-1.16-data wesnoth-1.16-did wesnoth-1.16-dm wesnoth-1.16-dw wesnoth-1.16-ei
                wesnoth-1.16-httt wesnoth-1.16-l wesnoth-1.16-low wesnoth-1.16-nr wesnoth-1.16-sof
                wesnoth-1.16-sota wesnoth-1.16-sotbe wesnoth-1.16-thot wesnoth-1.16-trow wesnoth-1.16-tsg
                wesnoth-1.16-ttb wesnoth-1.16-utbs freeciv-data widelands-data stellarium-data
                cataclysm-dda-data freedroidrpg-data gcompris-qt-data)
HELDOUT_PACKAGES=(gimp-help-es debian-handbook)
OTHER_PACKAGES=(wspanish tar grep sed wget findutils diffutils)

# 1. Build dependencies of KenLM's estimation tools.
apt-get update
apt-get install -y --no-install-recommends build-essential cmake libboost-program-options-dev \
    libboost-system-dev libboost-thread-dev libboost-test-dev zlib1g-dev libbz2-dev liblzma-dev

# 2. build_binary (and lmplz, only with WITH_LMPLZ=1: `mc4-sampling train-model` estimates the
#    5-gram itself; lmplz is for comparing, `scripts/build_default_model.py --estimator lmplz`) from
#    the upstream kenlm 0.3.0 source distribution.
KENLM=$BUILD/kenlm-src
TARGETS=(build_binary)
if [ "${WITH_LMPLZ:-0}" = 1 ]; then TARGETS+=(lmplz); fi
if [ ! -x "$KENLM/build/bin/build_binary" ] || { [ "${WITH_LMPLZ:-0}" = 1 ] && [ ! -x "$KENLM/build/bin/lmplz" ]; }; then
    mkdir -p "$KENLM"
    "$PY" -m pip download --no-deps --no-binary kenlm kenlm==0.3.0 -d "$KENLM"
    rm -rf "$KENLM/kenlm-0.3.0" "$KENLM/build"
    tar -xzf "$KENLM/kenlm-0.3.0.tar.gz" -C "$KENLM"
    cmake -S "$KENLM/kenlm-0.3.0" -B "$KENLM/build" -DCMAKE_BUILD_TYPE=Release
    cmake --build "$KENLM/build" -j2 --target "${TARGETS[@]}"
fi

# 3. Download the packages (current bookworm versions) and unpack them without installing.
rm -rf "$BUILD/debs" "$BUILD/root"
mkdir -p "$BUILD/debs" "$BUILD/root"
(cd "$BUILD/debs" && apt-get download "${TRAIN_PACKAGES[@]}" "${EXTRA_PACKAGES[@]}" "${HELDOUT_PACKAGES[@]}" \
    "${OTHER_PACKAGES[@]}")
for deb in "$BUILD"/debs/*.deb; do
    name=$(dpkg-deb -f "$deb" Package)
    mkdir -p "$BUILD/root/$name"
    dpkg -x "$deb" "$BUILD/root/$name"
    dpkg-deb -f "$deb" Version > "$BUILD/root/$name/.version"
done

# 4. The sample first (its train split gives the model's quartiles), then the model.
"$PY" scripts/build_sample.py
if [ "${WITH_LMPLZ:-0}" = 1 ]; then "$PY" scripts/build_default_model.py --estimator lmplz
else "$PY" scripts/build_default_model.py; fi

# 5. Large intermediates stay under scripts/.build/; print what was produced.
sha256sum mc4_sampling/data/model/* mc4_sampling/data/sample/multilingual/*
du -sh mc4_sampling/data/model mc4_sampling/data/sample
