#!/bin/sh
# Learning at PC's equilibrium at depth: full Fashion-MNIST, H = 128, N = 128, ReLU, μPC network,
# one epoch (937 steps), seed 0, with `--inference epc-then-pc` (ePC's warm start, then the
# activities refined; the weights step at the refined activities), beside μPC + ePC and BP at
# the same budget; then the energy's distance from its minimum at the update point
# (distance.py) and the learning-signal figure. Run from the repository root:
#   sh results/equilibrium-fmnist/run.sh       (needs `make install` and Fashion-MNIST)
# Resumable: runs go to runs/equilibrium-fmnist/ and a finished piece is skipped; the
# equilibrium run is trained in segments (to steps 100, 300, then the epoch's 937) whose
# checkpoints are kept for distance.py (`equilibrium-last.npz`: the run's last checkpoint,
# step 700 when it diverged at step 764, as it did here).
set -e
M=${MUPC:-.venv/bin/mupc}
PY=${PYTHON:-.venv/bin/python}
OUT=${OUT:-runs/equilibrium-fmnist}
HERE=results/equilibrium-fmnist
COMMON="--dataset fashion-mnist -H 128 -N 128 --seed 0 --eval-every 100 --quiet"
done_() { [ -f "$1/summary.json" ] && grep -q '"completed"' "$1/summary.json"; }
run() {  # name flags...: one epoch
  name=$1; shift
  dir=$OUT/$name
  if done_ "$dir"; then return; fi
  resume=""; [ -f "$dir/checkpoint.npz" ] && resume="--resume"
  echo "== $name"
  $M train $COMMON --epochs 1 "$@" --out "$dir" $resume
}
run bp --method bp --lr 0.005
run epc --inference epc
# The equilibrium schedule at its defaults (warm start: 20 ePC steps of 0.1; then at most 50
# activity steps of 0.1 per example, tolerance 1e-3; Adam 0.005 on the weights).
mkdir -p "$OUT/checkpoints"
for steps in 100 300 last; do
  kept=$OUT/checkpoints/equilibrium-$steps.npz
  [ "$steps" = last ] && steps=937
  if [ -f "$kept" ]; then continue; fi
  resume=""; [ -f "$OUT/equilibrium/checkpoint.npz" ] && resume="--resume"
  echo "== equilibrium to step $steps"
  $M train $COMMON --inference epc-then-pc --steps "$steps" --out "$OUT/equilibrium" $resume
  cp "$OUT/equilibrium/checkpoint.npz" "$kept.tmp" && mv "$kept.tmp" "$kept"
done
# The same schedule with half the steps on the errors and the activities (the run above
# diverged when its inference did), and 30 warm-start steps.
run equilibrium-half-step --inference epc-then-pc --activity-lr 0.05 -T 30 --refine-lr 0.05
$PY $HERE/collect.py "$OUT" $HERE/results.csv
# The energy's distance from its minimum at the point where the weights update.
$PY $HERE/distance.py "$OUT" $HERE/distance.csv
# The learning signal per layer at initialisation (one batch of 64 Fashion-MNIST images) ...
SETTINGS="epc-then-gd:0.1:20:0.1:50:1e-3 epc:0.001:1 gd:0.5/64:H"
[ -f "$OUT/signal-init/signal.csv" ] || $M diagnose signal --dataset fashion-mnist \
  -H 128 -N 128 --settings $SETTINGS --out "$OUT/signal-init"
# ... and of the network trained at the equilibrium, at its last checkpoint.
[ -f "$OUT/signal-trained/signal.csv" ] || $M diagnose signal --dataset fashion-mnist \
  --checkpoint "$OUT/checkpoints/equilibrium-last.npz" --settings $SETTINGS \
  --out "$OUT/signal-trained"
cp "$OUT/signal-init/signal.csv" $HERE/signal-init.csv
cp "$OUT/signal-trained/signal.csv" $HERE/signal-trained.csv
cp "$OUT/signal-init/signal.png" docs/figures/signal-equilibrium-init.png
cp "$OUT/signal-trained/signal.png" docs/figures/signal-equilibrium-trained.png
