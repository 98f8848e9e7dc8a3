#!/usr/bin/env bash
# The GPU kit's one command on the GPU machine, from the repository root, with .whl carried
# (benchmarks/device/README.md):
#   bash benchmarks/device/run.sh                     # ~8 min: results.json, results.md in $OUT
#   bash benchmarks/device/run.sh --small --rehearse  # the CPU rehearsal (CI, JAX's CPU build)
# --rehearse fetches the same pinned wheels for this Python (the kit's are CPython 3.12's)
# and makes what the GPU image lacks and the kit leaves behind unimportable.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python3}
OUT=${OUT:-gpu-results}
SITE=${DEEPSEG_SITE:-/tmp/deepseg-site}
WHEELS=.whl
small="" rehearse=""
for arg in "$@"; do
  case $arg in
    --small) small=--small ;;
    --rehearse) rehearse=1 ;;
    *) echo "error: run.sh: unknown argument $arg (expected --small, --rehearse)" >&2; exit 2 ;;
  esac
done
start=$SECONDS
if [ -n "$rehearse" ]; then
  version=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  WHEELS=${TMPDIR:-/tmp}/deepseg-kit-wheels-$version
  "$PYTHON" benchmarks/device/kit.py fetch --wheels "$WHEELS" --python "$version"
fi
rm -rf "$SITE"
"$PYTHON" benchmarks/device/kit.py install --wheels "$WHEELS" --target "$SITE"
if [ -n "$rehearse" ]; then
  "$PYTHON" benchmarks/device/kit.py absent --target "$SITE"
fi
plugins=$PWD/plugins
export PYTHONPATH=$SITE:$PWD:$plugins/deepseg_unet64:$plugins/deepseg_resunet:$plugins/deepseg_maskrcnn
export KERAS_BACKEND=jax PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
nvidia-smi || echo "nvidia-smi: not here (CPU)"
"$PYTHON" -c 'import jax, keras; print("jax", jax.__version__, jax.devices(), "keras", keras.__version__)'
mkdir -p "$OUT"
timeout 480 "$PYTHON" benchmarks/gpu.py --out "$OUT" --workdir /tmp/deepseg-bench-gpu \
  --budget 400 $small
test -s "$OUT/results.json" && test -s "$OUT/results.md"
echo "kit: done in $(( SECONDS - start )) s; $OUT: $(ls "$OUT" | tr '\n' ' ')"
