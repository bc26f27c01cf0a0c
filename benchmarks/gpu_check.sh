#!/usr/bin/env bash
# copmodel on a GPU machine: speed of every preset, then a short multi-GPU (or
# single-GPU) bf16 run of the small preset through stages 1 -> 2 -> 3 on a
# synthetic dataset, sampling and a resume check. Usage (from the repo root):
#   bash benchmarks/gpu_check.sh [OUT_DIR] [STEPS]
# Needs: the repo's Python environment with a CUDA torch; no network.
set -euo pipefail
OUT=${1:-/tmp/copmodel_gpu_check}
STEPS=${2:-200}
PY=${PYTHON:-python}
export PYTHONPATH=${PYTHONPATH:-.}
NGPU=$($PY -c "import torch; print(torch.cuda.device_count())")
echo "GPUs: $NGPU"; nvidia-smi --query-gpu=name,memory.total --format=csv || true
mkdir -p "$OUT"

echo "== speed per preset (bf16, preset batch sizes)"
$PY benchmarks/bench_model.py --device cuda --train-steps 10 --ode-steps-measured 64 \
    --json "$OUT/bench_gpu.json"

echo "== synthetic dataset"
$PY -m copdata build --source synth --out "$OUT/data" --num-items 16 --item-seconds 40 \
    --clip-seconds 10

LAUNCH=("$PY" -m accelerate.commands.launch --num_processes "$NGPU" --mixed_precision bf16)
[ "$NGPU" -gt 1 ] && LAUNCH+=(--multi_gpu)
for STAGE in 1 2 3; do
  echo "== stage $STAGE ($STEPS steps, $NGPU process(es))"
  "${LAUNCH[@]}" -m copmodel.cli train --stage "$STAGE" --config small --data "$OUT/data" \
      --out "$OUT/run" --max-steps "$STEPS" --save-every $((STEPS / 2)) --batch-size 16
done
echo "== resume: stage 3 continues to $((STEPS + 20))"
"${LAUNCH[@]}" -m copmodel.cli train --stage 3 --config small --data "$OUT/data" \
    --out "$OUT/run" --max-steps $((STEPS + 20)) --batch-size 16 --resume
cat "$OUT/run/stage2/eval.json"

echo "== sample the test split on GPU"
/usr/bin/time -v $PY -m copmodel sample --ckpt "$OUT/run/stage3/last.ckpt" --data "$OUT/data" \
    --split test --out "$OUT/samples" --device cuda 2>&1 | grep -E "wrote|Elapsed|Maximum resident"
ls "$OUT/samples" | head
echo "gpu_check done: $OUT"
