#!/usr/bin/env bash
# copmodel on a GPU machine, one script: speed of every preset; 50 bf16 training steps
# of the small preset on 1 process and on N processes (all GPUs); sampling one 10 s
# clip, printed as seconds per clip. Usage (from the repo root):
#   bash benchmarks/gpu_check.sh [OUT_DIR] [STEPS]
# Needs: the repo's Python environment with a CUDA torch; no network, no weights.
set -euo pipefail
OUT=${1:-/tmp/copmodel_gpu_check}
STEPS=${2:-50}
PY=${PYTHON:-python}
export PYTHONPATH=${PYTHONPATH:-.}
NGPU=$($PY -c "import torch; print(torch.cuda.device_count())")
echo "GPUs: $NGPU"; nvidia-smi --query-gpu=name,memory.total --format=csv || true
mkdir -p "$OUT"

echo "== speed per preset (bf16, preset batch sizes)"
$PY benchmarks/bench_model.py --device cuda --train-steps 10 --ode-steps-measured 64 \
    --json "$OUT/bench_gpu.json"

echo "== synthetic dataset (10 s clips)"
$PY -m copdata build --source synth --out "$OUT/data" --num-items 8 --item-seconds 40 \
    --clip-seconds 10

# small with the built-in encoders (no weights on the machine)
CFG=(--config small --set net.video_encoder=cnn --set net.text_encoder=builtin --batch-size 16)
for NP in 1 "$NGPU"; do
  LAUNCH=("$PY" -m accelerate.commands.launch --num_processes "$NP" --mixed_precision bf16)
  [ "$NP" -gt 1 ] && LAUNCH+=(--multi_gpu)
  for STAGE in 1 2 3; do
    echo "== stage $STAGE: $STEPS steps on $NP process(es)"
    START=$(date +%s.%N)
    "${LAUNCH[@]}" -m copmodel.cli train --stage "$STAGE" "${CFG[@]}" --data "$OUT/data" \
        --out "$OUT/run$NP" --max-steps "$STEPS" | tail -3
    echo "stage $STAGE, $NP process(es): $(awk "BEGIN{printf \"%.1f\", $(date +%s.%N) - $START}") s"
  done
  [ "$NGPU" -le 1 ] && break
done
cat "$OUT/run1/stage2/eval.json"

echo "== sample one 10 s clip on GPU"
START=$(date +%s.%N)
$PY -m copmodel sample --ckpt "$OUT/run1/stage3/last.ckpt" --data "$OUT/data" --split test \
    --out "$OUT/samples" --device cuda --limit 1
echo "seconds per 10 s clip (incl. model load): $(awk "BEGIN{printf \"%.1f\", $(date +%s.%N) - $START}")"
echo "gpu_check done: $OUT"
