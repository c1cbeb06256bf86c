#!/bin/sh
# The PC transformer language model on Jane Austen's novels (mupc.load_corpus("austen"):
# downloaded from Debian's mirrors once, or put r-cran-janeaustenr's .deb in ~/.cache/mupc/austen/):
# 4 pre-LN blocks of width 64 (4 heads of 16), context 64, batch 32, cross-entropy, one seed;
# standard PC (sp), μPC and μPC + ePC against BP on the same network, each at the best rates of
# a short probe (docs/tutorials/transformer.md). BP, ePC and μPC run STEPS (default 3,000:
# 1.7 epochs); standard PC, which stays at the unigram floor, runs SP_STEPS (default 1,000).
# Resumable: a run finished at its steps is skipped, a stopped or shorter one resumes from its
# checkpoint. Then the curves and the table. Run from the repository root: sh results/transformer-lm/run.sh
set -e
M=${MUPC:-.venv/bin/mupc}
PY=${PYTHON:-.venv/bin/python}
OUT=${OUT:-runs/transformer-lm}
STEPS=${STEPS:-3000}
SP_STEPS=${SP_STEPS:-1000}
COMMON="--dataset austen --network transformer -H 4 -N 64 --head-dim 16 --context 64"
COMMON="$COMMON --batch-size 32 --eval-every 250 --checkpoint-every 250 --quiet"
run() {  # name steps flags...
  name=$1; steps=$2; shift 2
  dir=$OUT/$name
  if [ -f "$dir/summary.json" ] && grep -q "\"steps\": $steps," "$dir/summary.json" \
    && grep -q '"completed"' "$dir/summary.json"; then return; fi
  resume=""; [ -f "$dir/checkpoint.npz" ] && resume="--resume"
  echo "== $name $(date -u +%FT%TZ)"
  $M train $COMMON --steps "$steps" "$@" --out "$dir" $resume || true
}
run bp "$STEPS" --method bp --lr 0.1
run epc "$STEPS" --inference epc --lr 0.1 --activity-lr 0.001
run mupc "$STEPS" --lr 0.01 --activity-lr 0.02
run sp "$SP_STEPS" --param sp --lr 0.003 --activity-lr 0.05
$PY results/transformer-lm/collect.py "$OUT" results/transformer-lm
$M redraw curves results/transformer-lm/curves.csv --out docs/figures/transformer-lm.png \
  --ylabel "held-out cross-entropy (nats per character)" \
  --floor "bigram floor=2.447" --floor "unigram floor=3.090" \
  --title "PC transformer LM, Jane Austen, 4 blocks, d = 64, context 64, batch 32"
