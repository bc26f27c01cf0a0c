#!/usr/bin/env bash
# copmodel on a GPU machine in one command (from the repository root):
#   bash benchmarks/gpu_check.sh [--dry-run] [--out DIR] [--device cuda|cpu]
# Installs .whl/ (`make gpu-wheels`: what the device image lacks) into a temporary
# target, then runs benchmarks/gpu_check.py, which prints one JSON: Trainer.step()
# steps/s and peak GPU memory of small and base in bf16 and fp32, stage 1 -> 2 -> 3
# of small (steps/s from each stage's training log) with a 2-step DPO on pairs mined
# from stage 2, seconds per 10 s clip sampled on the GPU with and without Griffin-Lim
# (both tracks), and `copbench run --device cuda` of the result. Any error stops it
# with a non-zero exit status. --dry-run: the same steps on the CPU at tiny sizes
# (what CI runs; no wheels needed). Goal: under 8 minutes on one H100.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
DRY=()
OUT=""
DEVICE=()
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY=(--dry-run) ;;
    --out) OUT=$2; shift ;;
    --device) DEVICE=(--device "$2"); shift ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "gpu_check.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
OUT=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")}
mkdir -p "$OUT"
if [ ${#DRY[@]} -eq 0 ] && compgen -G ".whl/*.whl" >/dev/null; then
  SITE=$(mktemp -d "${TMPDIR:-/tmp}/gpu_check_site.XXXXXX")
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$SITE" \
      .whl/*.whl >&2
  export PYTHONPATH="$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}"
  echo "gpu_check: installed $(ls .whl/*.whl | wc -l) wheels from .whl/ into $SITE" >&2
else
  [ ${#DRY[@]} -eq 0 ] && echo "gpu_check: no .whl/ (make gpu-wheels); using the installed packages" >&2
  export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
exec "$PY" benchmarks/gpu_check.py --out "$OUT" "${DRY[@]}" "${DEVICE[@]}"
