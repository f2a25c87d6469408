#!/usr/bin/env bash
# Download, here (with network), the wheels that a GPU machine without Keras needs to run kgen:
# keras and the pure-Python packages it lacks, for CPython 3.12 on x86-64, into an ignored folder.
#   bash tools/gpu_wheels.sh [DIR]        (default build/gpuwheels; prints the total size)
# tools/gpu_check.py --wheels DIR installs them with `pip install --no-index --no-deps --target`.
set -euo pipefail
DIR=${1:-build/gpuwheels}
mkdir -p "$DIR"
PY=${PYTHON:-python3}
# keras: the version kgen is pinned to (constraints.txt); optree and namex: keras dependencies that the GPU image
# lacks; animal_mnist: the animal silhouettes (it declares tensorflow and pandas, which kgen never imports);
# typing_extensions: optree's dependency, installed only where it is missing.
KERAS=$(grep -E '^keras==' constraints.txt | head -1)
ANIMALS=$(grep -E '^animal[-_]mnist==' constraints.txt | head -1 || true)
"$PY" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 -d "$DIR" \
  "${KERAS:-keras==3.15.1}" optree==0.20.0 namex==0.1.0 "${ANIMALS:-animal-mnist==0.4}" typing_extensions==4.16.0
ls -l "$DIR"
du -cb "$DIR"/*.whl | tail -1 | awk '{printf "total %d bytes (%.2f MiB)\n", $1, $1 / 1048576}'
