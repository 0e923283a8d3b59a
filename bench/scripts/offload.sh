#!/usr/bin/env bash
# The offload benchmark of BENCHMARKS.md (about 3 minutes; run bench/scripts/predictors.sh first for the learned
# predictor and the training trace it fits the pin policy's profile on):
#  1. cache-sim on the held-out trace, 25% of experts resident, 16 GB/s link: every policy, Belady's bound;
#  2. a budget sweep with a hit-rate picture (bench/target/offload/hit-rate-vs-budget.svg);
#  3. cache-sim at the matched link (one expert load = one layer's compute: 2.34 GB/s, 63 us, as measured live);
#  4. the live end-to-end run, at 10%, 25% and 50% of the experts resident: ./moe bench offload.
# QUICK=1 (the suite's quick mode): a shorter sweep, no matched-link replay, 3 live reps. MOE_RESULTS: where the plot goes.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
W="$ROOT/bench/target/offload"; P="$ROOT/bench/target/predictors"
mkdir -p "$W"
PLOT="${MOE_RESULTS:-$W}/offload-hit-rate-vs-budget.svg"
if [ -n "${QUICK:-}" ]; then BUDGETS=10%,25%,50%; REPS=3; else BUDGETS=10%,20%,25%,33%,50%,75%; REPS=7; fi
LIVE_BUDGETS=10%,25%,50%
MOE="$ROOT/moe"
T="$ROOT/../shared/traces/tiny-mixtral-kjv-heldout.trace.jsonl"
M="$ROOT/models/tiny-mixtral-kjv"
[ -f "$P/learned.bin" ] || { echo "offload.sh: run bench/scripts/predictors.sh first (it trains $P/learned.bin)" >&2; exit 1; }
echo "### 25% resident, 16 GB/s link, 80 us per layer"
"$MOE" cache-sim --trace "$T" --model "$M" --fit-trace "$P/train.trace.jsonl" --policy lru,lfu,pin,predictive,oracle --expert-budget 25% 2>/dev/null
"$MOE" cache-sim --trace "$T" --model "$M" --predictor learned --predictor-weights "$P/learned.bin" --policy predictive --expert-budget 25% 2>/dev/null | grep '^| 25'
echo; echo "### sweep"
"$MOE" cache-sim --trace "$T" --model "$M" --fit-trace "$P/train.trace.jsonl" --policy lru,lfu,pin,predictive \
  --expert-budget "$BUDGETS" --svg "$PLOT" 2>/dev/null
if [ -z "${QUICK:-}" ]; then
echo; echo "### matched link: 2.34 GB/s, no latency, 63 us per layer"
for pr in lookahead-gate learned; do
  "$MOE" cache-sim --trace "$T" --model "$M" --predictor $pr --predictor-weights "$P/learned.bin" --policy predictive --expert-budget 25% \
    --link 2.34GB/s,0 --layer-time 63us --horizon 2 --prefetch-k 2 2>/dev/null | grep '^| 25'
done
"$MOE" cache-sim --trace "$T" --model "$M" --policy lru,oracle --expert-budget 25% --link 2.34GB/s,0 \
  --layer-time 63us 2>/dev/null | grep '^| 25'
fi
echo; echo "### live decode against the budget"
"$MOE" bench offload "$REPS" "$LIVE_BUDGETS" 2>/dev/null
