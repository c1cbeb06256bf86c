#!/bin/sh
# Depth and width beyond the paper: full Fashion-MNIST, one epoch (937 steps of batch 64),
# ReLU, μPC network, one device, seed 0, evaluated once at the end:
#   H = 1,024 at N = 128: μPC + ePC, BP (and μPC as published, T = H, with RUN_MUPC_H1024=1);
#   H = 128 at N = 512 (the paper's width): μPC as published, μPC + ePC, BP.
# Each run is wrapped in /usr/bin/time for its peak resident memory. Run from the repository
# root: sh results/scale-fmnist/run.sh. Runs go to runs/scale-fmnist/ (resumable: a finished
# run is skipped, a stopped one resumes from its checkpoint); the table to
# results/scale-fmnist/results.csv.
set -e
M=${MUPC:-.venv/bin/mupc}
PY=${PYTHON:-.venv/bin/python}
OUT=${OUT:-runs/scale-fmnist}
SEED=${SEED:-0}
COMMON="--dataset fashion-mnist --epochs 1 --eval-every 1000 --checkpoint-every 100 --quiet"
run() {  # name flags...
  name=$1; shift
  dir=$OUT/$name-s$SEED
  if [ -f "$dir/summary.json" ] && grep -q '"completed"' "$dir/summary.json"; then return; fi
  resume=""; [ -f "$dir/checkpoint.npz" ] && resume="--resume"
  mkdir -p "$dir"
  piece=$(ls "$dir"/time-*.json 2>/dev/null | wc -l)
  echo "== $name seed $SEED $(date -u +%FT%TZ)"
  /usr/bin/time -f '{"max_rss_kb": %M, "elapsed_s": %e, "user_s": %U, "system_s": %S}' \
    -o "$dir/time-$piece.json" $M train $COMMON --seed "$SEED" "$@" --out "$dir" $resume
}
run h1024-epc -H 1024 -N 128 --inference epc
run h1024-bp -H 1024 -N 128 --method bp --lr 0.005
run n512-epc -H 128 -N 512 --inference epc
run n512-bp -H 128 -N 512 --method bp --lr 0.005
run n512-mupc-published -H 128 -N 512 --lr 0.05 --activity-lr-batch-mean 0.5
if [ -n "$RUN_MUPC_H1024" ]; then
  run h1024-mupc-published -H 1024 -N 128 --lr 0.05 --activity-lr-batch-mean 0.5
fi
$PY results/scale-fmnist/collect.py "$OUT" results/scale-fmnist/results.csv
