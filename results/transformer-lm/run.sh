#!/bin/sh
# The PC transformer language model on Jane Austen's novels (mupc.load_corpus("austen"):
# downloaded from Debian's mirrors once, or put r-cran-janeaustenr's .deb in ~/.cache/mupc/austen/):
# 4 pre-LN blocks of width 64 (4 heads of 16), context 64, batch 32, 3,000 steps (1.7 epochs),
# cross-entropy, one seed; standard PC (sp), μPC and μPC + ePC against BP on the same network,
# each at the best rates of a short probe (docs/tutorials/transformer.md). Then the curves and the
# table. Run from the repository root: sh results/transformer-lm/run.sh
set -e
M=${MUPC:-.venv/bin/mupc}
PY=${PYTHON:-.venv/bin/python}
OUT=${OUT:-runs/transformer-lm}
COMMON="--dataset austen --network transformer -H 4 -N 64 --head-dim 16 --context 64"
COMMON="$COMMON --batch-size 32 --steps 3000 --eval-every 250 --checkpoint-every 250 --quiet"
$M train $COMMON --method bp --lr 0.1 --out "$OUT/bp" || true
$M train $COMMON --inference epc --lr 0.1 --activity-lr 0.001 --out "$OUT/epc" || true
$M train $COMMON --lr 0.01 --activity-lr 0.02 --out "$OUT/mupc" || true
$M train $COMMON --param sp --lr 0.003 --activity-lr 0.05 --out "$OUT/sp" || true
$PY results/transformer-lm/collect.py "$OUT" results/transformer-lm
$M redraw curves results/transformer-lm/curves.csv --out docs/figures/transformer-lm.png \
  --ylabel "held-out cross-entropy (nats per character)" \
  --floor "bigram floor=2.447" --floor "unigram floor=3.090" \
  --title "PC transformer LM, Jane Austen, 4 blocks, d = 64, context 64, batch 32"
