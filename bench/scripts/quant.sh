#!/usr/bin/env bash
# Quantized GGUF (issue: quantized experts and GGUF checkpoints), on this machine, everything in one run:
#  1. accuracy on the demo model: `moe quantize` to q8_0, q4_0, q4_k_m (all matrices); bits per byte of the held-out
#     trace (`moe eval`) against BF16; logits against the dequantized fp32 reference (`moe quantize --type f32` of the
#     quantized file); greedy continuations of 64 held-out prompts (64 tokens each) against llama.cpp on the same file,
#     and each engine against itself on the dequantized fp32 file;
#  2. the kernels: `moe bench quant` (32768x4096 matrix-vector per format against the triad);
#  3. decode and prefill at a DRAM-bound shape: the 2.4 GB Mixtral-layout checkpoint of shape.sh in BF16 and quantized
#     to q8_0 (1.27 GB) and q4_k_m (0.72 GB), moe-serve (`moe bench shape`) and llama.cpp on the same GGUF files.
# llama.cpp: node-llama-cpp 3.22.1's prebuilt CPU binaries (npm registry once). QUICK=1: fewer reps. Not run by CI.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
OUT="$ROOT/bench/target/quant"
TRACE="$ROOT/../shared/traces/tiny-mixtral-kjv-heldout.trace.jsonl"
mkdir -p "$OUT"
REPS=3; DECODE=64
if [ "${QUICK:-0}" = 1 ]; then REPS=1; DECODE=32; fi
LLAMA=0
if command -v node >/dev/null; then . "$ROOT/bench/scripts/llamacpp-peer.sh"; llamacpp_ensure; cp "$ROOT/bench/scripts/llamacpp-greedy.mjs" "$PEERS/"; LLAMA=1; fi

./moe export-gguf --out "$OUT/demo-bf16.gguf" 2>/dev/null
for t in q8_0 q4_0 q4_k_m; do
  ./moe quantize --type $t --out "$OUT/demo-$t.gguf" 2>/dev/null
  ./moe quantize --model "$OUT/demo-$t.gguf" --type f32 --out "$OUT/demo-$t-f32.gguf" 2>/dev/null
done
json() { sed -nE "s/.*\"$1\":\"?([^,\"}]+).*/\1/p" <<<"$2"; }
base=$(./moe eval --trace "$TRACE" --json 2>/dev/null)
bpb0=$(json bits_per_byte "$base")
echo "### Accuracy on the demo model (held-out trace: 64 windows of 256 bytes, 4 domains)"
echo "| format | file MB | bits per byte | vs BF16 | max rel. logit error vs dequantized fp32 | mean abs. logit error | argmax agreement |"
echo "|---|---|---|---|---|---|---|"
printf "| BF16 (safetensors) | %.1f | %s | | | | |\n" "$(du -m models/tiny-mixtral-kjv/model.safetensors | cut -f1)" "$bpb0"
for t in q8_0 q4_0 q4_k_m; do
  r=$(./moe eval --model "$OUT/demo-$t.gguf" --trace "$TRACE" --reference "$OUT/demo-$t-f32.gguf" --json 2>/dev/null)
  b=$(json bits_per_byte "$r")
  printf "| %s | %.1f | %s | %+.2f%% | %s | %s | %s |\n" "$t" "$(echo "$(stat -c %s "$OUT/demo-$t.gguf") / 1000000" | bc -l)" "$b" \
    "$(echo "($b / $bpb0 - 1) * 100" | bc -l)" "$(json max_rel_logit_error "$r")" "$(json mean_abs_logit_error "$r")" "$(json argmax_agreement "$r")"
done
if [ "$LLAMA" = 1 ]; then
  echo "### Greedy continuations against llama.cpp (64 held-out prompts of 64 tokens, 64 greedy tokens each; identical of 64)"
  echo "| format | moe-serve = llama.cpp | moe-serve = moe-serve on the dequantized fp32 file | llama.cpp = llama.cpp on the dequantized fp32 file | moe-serve (fp32 file) = llama.cpp (fp32 file) |"
  echo "|---|---|---|---|---|"
  cmp() { python3 - "$1" "$2" <<'PY'
import json, sys
a = {json.loads(l)["id"]: json.loads(l)["greedy"] for l in open(sys.argv[1]) if l.strip()}
b = {json.loads(l)["id"]: json.loads(l)["greedy"] for l in open(sys.argv[2]) if l.strip()}
print(sum(1 for k in a if a[k] == b[k]))
PY
  }
  for t in bf16 q8_0 q4_0 q4_k_m; do
    ./moe eval --model "$OUT/demo-$t.gguf" --trace "$TRACE" --greedy 64 --prompt-tokens 64 2>/dev/null > "$OUT/ours-$t.jsonl"
    (cd "$PEERS" && node llamacpp-greedy.mjs "$OUT/demo-$t.gguf" "$OUT/ours-$t.jsonl" 64 2>/dev/null > "$OUT/llama-$t.jsonl")
    if [ "$t" = bf16 ]; then echo "| bf16 | $(cmp "$OUT/ours-$t.jsonl" "$OUT/llama-$t.jsonl") | | | |"; continue; fi
    ./moe eval --model "$OUT/demo-$t-f32.gguf" --trace "$TRACE" --greedy 64 --prompt-tokens 64 2>/dev/null > "$OUT/ours-$t-f32.jsonl"
    (cd "$PEERS" && node llamacpp-greedy.mjs "$OUT/demo-$t-f32.gguf" "$OUT/ours-$t.jsonl" 64 2>/dev/null > "$OUT/llama-$t-f32.jsonl")
    echo "| $t | $(cmp "$OUT/ours-$t.jsonl" "$OUT/llama-$t.jsonl") | $(cmp "$OUT/ours-$t.jsonl" "$OUT/ours-$t-f32.jsonl") | $(cmp "$OUT/llama-$t.jsonl" "$OUT/llama-$t-f32.jsonl") | $(cmp "$OUT/ours-$t-f32.jsonl" "$OUT/llama-$t-f32.jsonl") |"
  done
fi

echo "### Low-bit fallback (HOBBIT): misses served from a Q4_0 copy of the experts while the BF16 ones load"
echo "(demo model, 25% of the experts resident, modelled link 0.8 GB/s: one load = about 2.3 layers; 128 greedy tokens, 1 thread)"
echo "| policy | fallback | decode tokens/s | stall ms | uses served low-bit | text = all-resident (bytes) |"
echo "|---|---|---|---|---|---|"
./moe quantize --type q4_0 --experts-only --out "$OUT/demo-q4_0-experts.gguf" 2>/dev/null
P="And it came to pass in those days, that there went out a decree"
./moe generate --prompt "$P" --max-tokens 128 --greedy --ignore-eos --threads 1 2>/dev/null | head -3 > "$OUT/resident.txt"
for pol in lru predictive; do
  for lb in off on; do
    args=(); [ "$lb" = on ] && args=(--low-bit "$OUT/demo-q4_0-experts.gguf")
    ./moe generate --prompt "$P" --max-tokens 128 --greedy --ignore-eos --threads 1 --expert-budget 25% --link 0.8GB/s --policy $pol "${args[@]}" 2>/dev/null > "$OUT/fallback.txt"
    python3 - "$pol" "$lb" "$OUT/resident.txt" "$OUT/fallback.txt" <<'PY'
import re, sys
pol, lb, res, out = sys.argv[1:5]
t = open(out).read()
a, b = open(res).read().split("\nprefill")[0], t.split("\nprefill")[0]
same = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
tps = re.search(r"decode: .*?\(([0-9.]+) tokens/s\)", t).group(1)
stall = re.search(r"stall ([0-9.]+) ms", t).group(1)
low = re.search(r"low-bit fallback: [0-9]+ of [0-9]+ expert uses \(([0-9.]+%)\)", t)
print(f"| {pol} | {lb} | {tps} | {stall} | {low.group(1) if low else '-'} | {'all ' + str(len(a)) if a == b else f'first {same} of {len(a)}'} |")
PY
  done
done

echo "### Kernels: matrix-vector per format (moe bench quant)"
./moe bench quant "$REPS"

S="$ROOT/bench/target/shape"
M="$S/mixtral-2.4gb"
if [ ! -f "$M/config.json" ]; then ./moe synth --config bench/configs/mixtral-layout-2.4gb.config.json --out "$M" >&2; fi
for t in q8_0 q4_k_m; do
  [ -f "$S/mixtral-2.4gb-$t.gguf" ] || ./moe quantize --model "$M" --type $t --out "$S/mixtral-2.4gb-$t.gguf" 2>/dev/null
done
[ -f "$S/mixtral-2.4gb.gguf" ] || ./moe export-gguf --model "$M" --out "$S/mixtral-2.4gb.gguf" 2>/dev/null
echo "### Decode at a DRAM-bound shape (2.4 GB Mixtral layout), moe-serve"
for f in "$M" "$S/mixtral-2.4gb-q8_0.gguf" "$S/mixtral-2.4gb-q4_k_m.gguf"; do
  ./moe bench shape "$f" --reps "$REPS" --prompts 128 --decode "$DECODE"
done
if [ "$LLAMA" = 1 ]; then
  echo "### llama.cpp on the same files (128-token prompt)"
  echo "| file | threads | prefill tokens/s | decode tokens/s |"
  echo "|---|---|---|---|"
  PROMPT=$(python3 -c "print(''.join(chr(32 + i % 96) for i in range(128)), end='')")
  for f in mixtral-2.4gb.gguf mixtral-2.4gb-q8_0.gguf mixtral-2.4gb-q4_k_m.gguf; do
    for th in 1 2; do
      node "$PEERS/llamacpp-decode.mjs" "$S/$f" "$th" "$REPS" "$DECODE" "$PROMPT" 2>/dev/null | tail -1 > "$OUT/llama-shape.json"
      node -e 'const r=require(process.argv[1]); console.log(`| ${process.argv[2]} | ${r.threads} | ${r.median_prefill_tokens_per_s.toFixed(1)} | ${r.median_tokens_per_s.toFixed(1)} |`)' "$OUT/llama-shape.json" "$f"
    done
  done
fi
