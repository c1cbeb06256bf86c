#!/bin/sh
# A conv network that beats the 128-layer MLP: the μPC conv ResNet of docs/method.md with its
# command-line defaults (2 residual blocks per stage, 8 → 16 → 32 channels, 3 stages) on the full
# Fashion-MNIST for 5 epochs (4,685 steps of batch 64), μPC + ePC and BP at the conv-fmnist
# preset's rates, one seed. Resumable. Run from the repository root:
#   sh results/conv-fmnist-5ep/run.sh
set -e
M=${MUPC:-.venv/bin/mupc}
OUT=${OUT:-runs}
$M sweep depth --preset conv-fmnist --depths 2 --epochs 5 --seeds 1 --methods epc bp \
  --workers 1 --out "$OUT/conv-fmnist-5ep"
cp "$OUT/conv-fmnist-5ep/results.csv" results/conv-fmnist-5ep/results.csv.tmp
mv results/conv-fmnist-5ep/results.csv.tmp results/conv-fmnist-5ep/results.csv
