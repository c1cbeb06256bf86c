#!/bin/sh
# The conv depth table: the μPC conv ResNet of docs/method.md (8 → 16 → 32 channels, 3 stages) on the
# full Fashion-MNIST, 300 steps of batch 64, one seed, 1-16 residual blocks per stage. Two sweeps
# (each resumable): ePC and BP; standard PC and μPC (T = L activity steps, the costlier ones), then
# one CSV. Run from the repository root: sh results/depth-conv-fmnist/run.sh
set -e
M=${MUPC:-.venv/bin/mupc}
OUT=${OUT:-runs}
$M sweep depth --preset conv-fmnist --methods epc bp --workers 1 --out "$OUT/depth-conv-fmnist"
$M sweep depth --preset conv-fmnist --methods pc mupc --depths 1 2 4 8 16 --workers 1 \
  --out "$OUT/depth-conv-fmnist-pc"
CSV=results/depth-conv-fmnist/results.csv
cp "$OUT/depth-conv-fmnist-pc/results.csv" "$CSV.tmp"
tail -n +2 "$OUT/depth-conv-fmnist/results.csv" >> "$CSV.tmp"
mv "$CSV.tmp" "$CSV"
$M redraw depth "$CSV" --out docs/figures/depth-conv-fmnist.png --depth-name "residual blocks per stage" \
  --title "conv μPC ResNet (8-16-32 channels), full Fashion-MNIST, 300 steps, 1 seed"
