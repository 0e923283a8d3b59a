#!/usr/bin/env bash
# The serving benchmark of BENCHMARKS.md (about 4 minutes): a server on loopback, a load generator in a separate
# process. 1, 8 and 32 concurrent streaming clients; then expert-aware batching on and off with 25% of the experts
# resident (LRU on demand, 16 GB/s modelled link), 32 clients: cache misses per token and distinct experts per step.
# QUICK=1 (the suite's quick mode): 1 request per client instead of 3, one batching run each way with 16 clients.
set -euo pipefail
if [ -n "${QUICK:-}" ]; then REQ=1; AWARE_CLIENTS=16; else REQ=3; AWARE_CLIENTS=32; fi
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
PORT=${PORT:-8137}
"$ROOT/moe" build >/dev/null
serve() {
  "$ROOT/moe" serve --port "$PORT" --max-queue 256 "$@" >/dev/null 2>&1 &
  SERVER=$!
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && return; sleep 0.2; done
  echo "serve-load.sh: the server did not come up" >&2; exit 1
}
stop() { kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; }
metric() { curl -s "http://127.0.0.1:$PORT/metrics" | awk -v m="$1" '$1 ~ "^"m { s += $2 } END { print s + 0 }'; }

echo "### load: max batch 8 (all experts resident)"
serve --max-batch 8
"$ROOT/moe" bench load "http://127.0.0.1:$PORT" 1,8,32 "$REQ" 64 2>/dev/null
stop

echo; echo "### expert-aware batching, 25% of experts resident (LRU, 16 GB/s modelled), $AWARE_CLIENTS clients, step batch 4 of 16 running"
echo "| expert-aware | cache misses per token | distinct experts per decode step | aggregate tokens/s |"
echo "|---|---|---|---|"
for aware in off on; do
  flag=(); [ $aware = on ] && flag=(--expert-aware)
  serve --max-batch 4 --max-running 16 --expert-budget 25% --policy lru "${flag[@]}"
  tps=$("$ROOT/moe" bench load "http://127.0.0.1:$PORT" "$AWARE_CLIENTS" 2 64 0 2>/dev/null | awk -F'|' -v c="$AWARE_CLIENTS" '$2 + 0 == c { print $6 }')
  misses=$(metric 'moe_cache_accesses_total\{.*result="miss"'); tokens=$(metric moe_tokens_generated_total)
  dsum=$(metric moe_scheduler_distinct_experts_sum); dcount=$(metric moe_scheduler_distinct_experts_count)
  awk -v a=$aware -v m="$misses" -v t="$tokens" -v s="$dsum" -v c="$dcount" -v tps="$tps" \
    'BEGIN { printf "| %s | %.2f | %.1f | %s |\n", a, m / t, s / c, tps }'
  stop
done
