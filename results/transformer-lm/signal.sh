#!/bin/sh
# The learning signal of the PC transformer language model (4 blocks, d = 64, context 64) per
# method, on one batch of 64 Austen windows: each layer's PC weight gradient against backprop's
# (cosine and norm ratio). At initialisation for standard PC (sp, its inference rate) and for
# μPC and μPC + ePC (the μPC network, their rates); then on the trained μPC network of
# run.sh (its inference settings, after 1,000 steps). Run from the repository root, after
# run.sh: sh results/transformer-lm/signal.sh
set -e
M=${MUPC:-.venv/bin/mupc}
OUT=${OUT:-runs/transformer-lm}
NET="--network transformer -H 4 -N 64 --head-dim 16 --context 64 --dataset austen"
$M diagnose signal $NET --param sp --settings gd:0.05:H --out "$OUT/signal-sp"
$M diagnose signal $NET --param mupc --settings gd:0.02:H epc:0.001:1 --out "$OUT/signal-mupc"
$M diagnose signal --checkpoint "$OUT/mupc/checkpoint.npz" --dataset austen \
  --settings gd:0.02:H --out "$OUT/signal-mupc-trained"
for name in sp mupc mupc-trained; do
  cp "$OUT/signal-$name/signal.png" "docs/figures/transformer-lm-signal-$name.png"
  cp "$OUT/signal-$name/signal.csv" "results/transformer-lm/signal-$name.csv"
done
