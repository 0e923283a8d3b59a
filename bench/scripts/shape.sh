#!/usr/bin/env bash
# Speed at a real shape: a random-weight Mixtral-layout checkpoint of 2.4 GB (hidden 2048, 8 layers, 16 heads / 4 KV
# heads, 8 experts of 2816, top-2, BF16: 722 MB read per decoded token), written once by `moe synth` into
# bench/target/shape; warm prefill (128- and 512-token prompts) and decode tokens/s at 1 and 2 threads
# (`moe bench shape`), then llama.cpp (node-llama-cpp 3.22.1's prebuilt CPU binaries) on the same weights exported by
# `moe export-gguf` (BF16), same prompts and threads. llama.cpp needs the npm registry once; without node it is
# skipped. QUICK=1: one rep, the 128-token prompt only. Not run by CI.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
OUT="$ROOT/bench/target/shape"
M="$OUT/mixtral-2.4gb"
mkdir -p "$OUT"
if [ ! -f "$M/config.json" ]; then
  rm -rf "$M"
  ./moe synth --config bench/configs/mixtral-layout-2.4gb.config.json --out "$M" >&2
fi
REPS=3; PROMPTS=128,512; DECODE=64
if [ "${QUICK:-0}" = 1 ]; then REPS=1; PROMPTS=128; DECODE=32; fi
./moe bench shape "$M" --reps "$REPS" --prompts "$PROMPTS" --decode "$DECODE"
if ! command -v node >/dev/null; then echo "(node not found: llama.cpp skipped)"; exit 0; fi
. "$ROOT/bench/scripts/llamacpp-peer.sh"
llamacpp_ensure
[ -f "$OUT/mixtral-2.4gb.gguf" ] || ./moe export-gguf --model "$M" --out "$OUT/mixtral-2.4gb.gguf" >&2
echo "### llama.cpp (node-llama-cpp 3.22.1, BF16 GGUF of the same weights; prefill = prompt tokens / time to the first token)"
echo "| threads | prompt tokens | prefill tokens/s | decode tokens/s |"
echo "|---|---|---|---|"
for t in 1 2; do
  for p in ${PROMPTS//,/ }; do
    # printable ASCII bytes 32..127 in turn: the same token ids as moe bench shape's prompt
    PROMPT=$(python3 -c "import sys; print(''.join(chr(32 + i % 96) for i in range(int(sys.argv[1]))), end='')" "$p")
    node "$PEERS/llamacpp-decode.mjs" "$OUT/mixtral-2.4gb.gguf" "$t" "$REPS" "$DECODE" "$PROMPT" 2>/dev/null | tail -1 > "$OUT/llama-$t-$p.json"
    node -e 'const r=require(process.argv[1]); console.log(`| ${r.threads} | ${r.prefill_tokens} | ${r.median_prefill_tokens_per_s.toFixed(1)} | ${r.median_tokens_per_s.toFixed(1)} |`)' "$OUT/llama-$t-$p.json"
  done
done
