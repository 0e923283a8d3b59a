#!/usr/bin/env bash
# The disk tier against the page cache and llama.cpp, under honest memory caps (page cache counted; needs root for
# the cgroup): a random-weight Mixtral-layout checkpoint of 3.6 GB (bench/configs/mixtral-layout-16x-3.6gb: 12 layers,
# 16 experts of 17.3 MB, top-2), written once by `moe synth` into bench/target/disk. Caps that hold about 50% and 25%
# of the expert bytes beside the rest; at each: the disk tier with LRU and predictive under the gates' own (random)
# routing and under `--routing-replay` of the demo model's held-out trace (real routing; the predictive policy then
# prefetches by the affinity predictor fitted on that trace), moe-serve on mmap alone, and llama.cpp on the same
# weights (BF16 GGUF, mmap; at the 50% cap only: at 25% it thrashes for about ten minutes). 64 greedy tokens of one
# prompt, 2 threads, caches dropped before every run, one run each. QUICK=1: the 25% cap only, no llama.cpp.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
OUT="$ROOT/bench/target/disk"
M="$OUT/mixtral-16x-3.6gb"
TRACE="$ROOT/../shared/traces/tiny-mixtral-kjv-heldout.trace.jsonl"
PROMPT="And it came to pass, when the king"
mkdir -p "$OUT"
if [ ! -f "$M/config.json" ]; then rm -rf "$M"; ./moe synth --config bench/configs/mixtral-layout-16x-3.6gb.config.json --out "$M" >&2; fi
export MOE_JAVA_OPTS=-Xmx512m
CAPS="2500M:50% 1700M:25%"; LLAMA_CAPS="2500M"
if [ "${QUICK:-0}" = 1 ]; then CAPS="1700M:25%"; LLAMA_CAPS=""; fi
LLAMA=0
if [ -n "$LLAMA_CAPS" ] && command -v node >/dev/null; then
  . "$ROOT/bench/scripts/llamacpp-peer.sh"
  llamacpp_ensure
  [ -f "$OUT/mixtral-16x-3.6gb.gguf" ] || ./moe export-gguf --model "$M" --out "$OUT/mixtral-16x-3.6gb.gguf" >&2
  LLAMA=1
fi
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); disk: $(./moe bench disk "$M/model.safetensors" --sizes 16MiB --depths 1 --seconds 1 2>/dev/null | awk -F'|' '/16 MiB/ {gsub(/ /, "", $4); print $4 " MB/s for 16 MiB direct reads at depth 1"}' | head -1)"
echo "| cap | engine | routing | policy | decode tokens/s | prefill tokens/s | hit rate | cgroup peak |"
echo "|---|---|---|---|---|---|---|---|"
row() { # cap label routing policy -- command...
  local cap="$1" engine="$2" routing="$3" policy="$4"; shift 4
  local log; log=$(bench/scripts/memcap.sh "$cap" "$@" 2>&1 || true)
  local dec pre hit peak
  dec=$(sed -nE 's/^decode: .*\(([0-9.]+) tokens\/s\).*/\1/p' <<<"$log" | head -1)
  pre=$(sed -nE 's/^prefill: .*\(([0-9.]+) tokens\/s\).*/\1/p' <<<"$log" | head -1)
  hit=$(sed -nE 's/.*hit rate ([0-9.]+) .*/\1/p' <<<"$log" | head -1)
  if [ -z "$dec" ]; then # llama.cpp's JSON line
    dec=$(sed -nE 's/.*"median_tokens_per_s":([0-9.]+).*/\1/p' <<<"$log" | head -1 | awk '{printf "%.1f", $1}')
    pre=$(sed -nE 's/.*"median_prefill_tokens_per_s":([0-9.]+).*/\1/p' <<<"$log" | head -1 | awk '{printf "%.1f", $1}')
  fi
  peak=$(sed -nE 's/.*cgroup peak ([^ ]+) .*OOM kills ([0-9]+).*/\1 (OOM kills \2)/p' <<<"$log" | head -1)
  echo "| $cap | $engine | $routing | $policy | ${dec:--} | ${pre:--} | ${hit:--} | ${peak:--} |"
}
GEN=(./moe generate --model "$M" --prompt "$PROMPT" --max-tokens 64 --greedy --ignore-eos)
for c in $CAPS; do
  cap=${c%%:*}; share=${c##*:}
  for p in lru predictive; do row "$cap" "moe-serve disk tier $share" "gates (random)" "$p" "${GEN[@]}" --offload disk --expert-budget "$share" --policy "$p"; done
  row "$cap" "moe-serve disk tier $share" "replayed trace" lru "${GEN[@]}" --offload disk --expert-budget "$share" --policy lru --routing-replay "$TRACE"
  row "$cap" "moe-serve disk tier $share" "replayed trace" "predictive (affinity)" "${GEN[@]}" --offload disk --expert-budget "$share" \
    --policy predictive --predictor affinity --fit-trace "$TRACE" --routing-replay "$TRACE"
  row "$cap" "moe-serve mmap only" "gates (random)" "page cache" "${GEN[@]}"
  if [ "$LLAMA" = 1 ] && [[ " $LLAMA_CAPS " == *" $cap "* ]]; then
    row "$cap" "llama.cpp (mmap)" "gates (random)" "page cache" node "$PEERS/llamacpp-decode.mjs" "$OUT/mixtral-16x-3.6gb.gguf" 2 1 64 "$PROMPT"
  fi
done
echo "(one run each; 64 greedy tokens; 2 threads; page cache dropped before each run; MOE_JAVA_OPTS=-Xmx512m)"
