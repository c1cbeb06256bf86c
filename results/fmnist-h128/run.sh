#!/bin/sh
# Issue 8's table: full Fashion-MNIST, H = 128, N = 128, ReLU, μPC network, one epoch, one
# device, seeds 0 and 1, the seven configurations one after the other, then the learning-signal
# figures (at initialisation and after the epoch). Run from the repository root:
#   sh results/fmnist-h128/run.sh            (needs `make install` and Fashion-MNIST, see README)
# Runs go to runs/fmnist-h128/ (resumable: a finished run is skipped); the table to
# results/fmnist-h128/results.csv and the figures to docs/figures/.
set -e
M=${MUPC:-.venv/bin/mupc}
PY=${PYTHON:-.venv/bin/python}
OUT=${OUT:-runs/fmnist-h128}
COMMON="--dataset fashion-mnist -H 128 -N 128 --epochs 1 --eval-every 100 --quiet"
run() {  # name seed flags...
  name=$1; seed=$2; shift 2
  dir=$OUT/$name-s$seed
  if [ -f "$dir/summary.json" ] && grep -q '"completed"' "$dir/summary.json"; then return; fi
  resume=""; [ -f "$dir/checkpoint.npz" ] && resume="--resume"
  echo "== $name seed $seed"
  $M train $COMMON --seed "$seed" "$@" --out "$dir" $resume
}
for seed in 0 1; do
  run mupc-published "$seed" --lr 0.05 --activity-lr-batch-mean 0.5
  run mupc-top16 "$seed" --lr 0.05 --activity-lr-batch-mean 0.5 --train-top 16
  run epc "$seed" --inference epc
  run epc-reparameterised "$seed" --inference epc --weight-gradient reparameterised
  run epc-prototype "$seed" --inference epc --activity-lr 0.1 -T 5 --lr 0.01  # issue 8's first try
  run bp "$seed" --method bp --lr 0.005
  run bp-top16 "$seed" --method bp --lr 0.005 --train-top 16
done
$PY results/fmnist-h128/collect.py "$OUT" results/fmnist-h128/results.csv
# The learning signal per layer at initialisation (one batch of 64 Fashion-MNIST images) ...
$M diagnose signal --dataset fashion-mnist -H 128 -N 128 \
  --settings gd:0.5/64:H epc:0.001:1 epc-reparameterised:0.001:1 --out "$OUT/signal-init"
# ... and after the epoch, each trained network measured with its own inference.
$M diagnose signal --checkpoint "$OUT/mupc-published-s0/checkpoint.npz" --dataset fashion-mnist \
  --settings gd:0.5/64:H --out "$OUT/signal-mupc-trained"
$M diagnose signal --checkpoint "$OUT/epc-s0/checkpoint.npz" --dataset fashion-mnist \
  --settings epc:0.001:1 --out "$OUT/signal-epc-trained"
