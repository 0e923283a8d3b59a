#!/usr/bin/env bash
# The offload regime table of BENCHMARKS.md: cache-sim over the demo model's held-out trace (../shared) and FOLDOC
# (text it never saw; made by bench/scripts/predictors.sh, run that first), every policy at 10%, 25% and 50% of the
# experts resident, for one expert load costing 0.1, 1, 3, 8 and 50 layers of compute (80 us a layer; the link set
# to match, no latency), at batch 1 and 8 (25% and 50% only: 10% cannot hold the experts a step of 8 uses at once). The predictive policy prefetches by the lookahead gate (the model reruns
# the trace for hidden states). Two bounds sit between the online policies and the full future: belady:1 (demand loading
# that knows the next token's routing) and oracle:0 (the true experts of the next layers prefetched, but nothing of the
# next token: a perfect within-token predictor). QUICK=1: the held-out trace, batch 1, 25% only, the affinity predictor.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
MOE="$ROOT/moe"
M="$ROOT/models/tiny-mixtral-kjv"
HELD="$ROOT/../shared/traces/tiny-mixtral-kjv-heldout.trace.jsonl"
FOLDOC="$ROOT/bench/target/predictors/foldoc.trace.jsonl"
EXPERT=147456; LAYER_US=80
if [ -n "${QUICK:-}" ]; then TRACES="held-out"; BATCHES="1"; BUDGETS="25%"; PRED=(--predictor affinity)
else TRACES="held-out foldoc"; BATCHES="1 8"; BUDGETS="10%,25%,50%"; PRED=(--model "$M" --predictor lookahead-gate)
  [ -f "$FOLDOC" ] || { echo "regimes.sh: run bench/scripts/predictors.sh first (it makes $FOLDOC)" >&2; exit 1; }
fi
for name in $TRACES; do
  t="$HELD"; [ "$name" = foldoc ] && t="$FOLDOC"
  for b in $BATCHES; do
    for r in 0.1 1 3 8 50; do
      bw=$(awk -v e=$EXPERT -v r=$r -v l=$LAYER_US 'BEGIN { printf "%.6f", e / (r * l * 1e-6) / 1e9 }')
      echo "### $name trace, batch $b, one load = $r layers"
      budgets="$BUDGETS"; [ "$b" -gt 1 ] && budgets="${BUDGETS#10%,}" # 10% (9 experts) cannot hold a step of 8 tokens' layer
      "$MOE" cache-sim --trace "$t" "${PRED[@]}" --policy lru,lfu,pin,predictive,belady:1,oracle:0,belady,oracle --expert-budget "$budgets" \
        --link "${bw}GB/s,0" --layer-time "${LAYER_US}us" --horizon 3 --batch "$b" 2>/dev/null
      echo
    done
  done
done
