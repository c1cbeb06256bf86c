#!/bin/sh
# mupc's H = 128 training step against FabricPC's, interleaved, in one run (issue 10's target:
# at most half of FabricPC's s/step). FabricPC needs its own venv:
#   python3.11 -m venv /tmp/fabricpc && /tmp/fabricpc/bin/pip install fabricpc
#   FABRICPC_PYTHON=/tmp/fabricpc/bin/python sh benchmarks/vs_fabricpc.sh [ROUNDS] [PEER_SCRIPT]
# PEER_SCRIPT is the peer's step script (default: ../shared/bench/peer_fabricpc_step.py, which
# states its configuration: ReLU μPC-style residual MLP, N = 128, B = 64, T = H, Adam).
set -e
PEER=${FABRICPC_PYTHON:?set FABRICPC_PYTHON to a python with fabricpc installed}
ROUNDS=${1:-2}
SCRIPT=${2:-../shared/bench/peer_fabricpc_step.py}
PY=${PYTHON:-.venv/bin/python}
i=1
while [ "$i" -le "$ROUNDS" ]; do
  "$PEER" "$SCRIPT" 128 10 train 2>/dev/null | tail -1
  "$PY" benchmarks/train_step.py --depths 128
  "$PY" benchmarks/train_step.py --depths 128 --devices 2
  i=$((i + 1))
done
