#!/usr/bin/env bash
# gpu-check.sh [OUT]: the GPU tier (--device gpu) on a machine with an NVIDIA GPU, against the CPU, in one run:
#  1. the demo model: greedy text and decode tokens/s on the CPU, on the GPU with every expert resident, and with 25%
#     of the experts in GPU memory under LRU and under the predictive policy (two interleaved rounds);
#  2. a real-shape checkpoint (moe synth: OLMoE-1B-7B's layers, the first 4) the same way;
#  3. the PCIe copy bandwidth each run achieved against the peak it measured at start-up;
#  4. the demo model's logits on the GPU against the CPU's (moe eval --reference), all resident and at 25%.
# Writes every run's output and summary.txt into OUT (default bench/target/gpu). Uses ./moe, or where .gpu/ is
# present (bench/scripts/gpu-pack.sh) the JDK and jars packed there. bench/analysis.md ("The GPU tier") has the figures.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUT="${1:-$ROOT/bench/target/gpu}"; mkdir -p "$OUT"
cd "$ROOT"
if [ -d "$ROOT/.gpu" ]; then
  R=/tmp/moe-gpu; mkdir -p $R
  [ -x $R/jrt/bin/java ] || { tar -C $R -xJf .gpu/jrt.tar.xz && tar -C $R -xJf .gpu/deps.tar.xz; }
  CP="$(ls $R/lib/*.jar .gpu/own/*.jar | paste -sd:)"
  MOE=($R/jrt/bin/java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -Xss4m -XX:+UseParallelGC
       -Dmoe.home="$ROOT" -cp "$CP" org.moeserve.runtime.cli.Moe)
else
  MOE=("$ROOT/moe")
fi
export DJL_CACHE_DIR="${DJL_CACHE_DIR:-/tmp/djl-cache}"
if [ -z "${MOE_CUDA_PATH:-}" ]; then # the toolkit's folders first, then the driver's, then Python wheels'
  MOE_CUDA_PATH="$(find /usr/local /opt /usr/lib -maxdepth 9 \( -name 'libcublas.so.1[0-9]' -o -name 'libcublasLt.so.1[0-9]' \
    -o -name 'libnvrtc.so.1[0-9]' -o -name 'libcudart.so.1[0-9]' -o -name 'libcuda.so.1' \) 2>/dev/null | xargs -r -n1 dirname \
    | awk '{print ($0 ~ /^\/usr\/local\/cuda/ ? 0 : $0 ~ /nvidia\/lib/ ? 1 : 2) " " $0}' | sort -u | cut -d' ' -f2 | awk '!s[$0]++' | paste -sd:)"
  export MOE_CUDA_PATH
fi
export LD_LIBRARY_PATH="$MOE_CUDA_PATH${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
S="$OUT/summary.txt"; : > "$S"
{ echo "# gpu-check $(date -u +%FT%TZ)"; nvidia-smi --query-gpu=name,driver_version,memory.total,pcie.link.gen.max,pcie.link.width.max --format=csv,noheader 2>&1
  echo "cpu: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2); flags: $(grep -m1 -o -w -E 'avx512f|avx512_bf16|avx2' /proc/cpuinfo | sort -u | paste -sd,)"
  echo "MOE_CUDA_PATH=$MOE_CUDA_PATH"; } >> "$S"
P="And it came to pass, when the king"
gen() { # label args...: one generate; its text (the lines before "prefill:") is compared across runs
  local label="$1"; shift
  "${MOE[@]}" generate --prompt "$P" --greedy --ignore-eos "$@" > "$OUT/$label.txt" 2> "$OUT/$label.err"
  local rc=$?
  sed '/^prefill:/,$d' "$OUT/$label.txt" > "$OUT/$label.text"
  echo "$label rc=$rc | $(grep -h -E '^decode:' "$OUT/$label.txt" | cut -d';' -f1) | $(grep -h -o -E 'hit rate [0-9.]+|PCIe fills: .*achieved per copy \([0-9]+% of the [0-9.]+ GB/s peak\)' "$OUT/$label.txt" | paste -sd' ')" >> "$S"
  grep -h -E '^INFO|Exception|Error' "$OUT/$label.err" | head -3 >> "$S"
}
round() { # tag model-args...
  local tag="$1"; shift
  gen "$tag-cpu-$r" "$@"
  gen "$tag-gpu-$r" "$@" --device gpu
  gen "$tag-gpu-lru-$r" "$@" --device gpu --expert-budget 25% --policy lru
  gen "$tag-gpu-pred-$r" "$@" --device gpu --expert-budget 25% --policy predictive
}
compare() { # tag: each run's greedy text against the first CPU run's
  echo "# $1: greedy text against the CPU's (same = identical)" >> "$S"
  for f in "$OUT/$1"-*.text; do
    cmp -s "$f" "$OUT/$1-cpu-1.text" && echo "same $(basename "$f" .text)" >> "$S" || echo "DIFFERS $(basename "$f" .text)" >> "$S"
  done
}
for r in 1 2; do round demo --model models/tiny-mixtral-kjv --max-tokens 128; done
compare demo
grep -h "^gpu:" "$OUT/demo-gpu-1.txt" >> "$S"
echo "# logits on the GPU against the CPU's, teacher-forced (8 windows of 128 tokens of README.md)" >> "$S"
for b in "" "--expert-budget 25% --policy lru"; do
  # shellcheck disable=SC2086
  "${MOE[@]}" eval --model models/tiny-mixtral-kjv --text README.md --window 128 --max-windows 8 \
    --reference models/tiny-mixtral-kjv --device gpu $b --json 2>> "$OUT/eval.err" | tail -1 >> "$S"
done
[ -n "${GPU_CHECK_QUICK:-}" ] && { cat "$S"; exit 0; } # the demo model only
SYN=/tmp/moe-olmoe4
[ -f $SYN/config.json ] || "${MOE[@]}" synth --config models/configs/allenai--OLMoE-1B-7B-0924.config.json --layers 4 --out $SYN > "$OUT/synth.log" 2>&1
tail -1 "$OUT/synth.log" >> "$S"
for r in 1 2; do round olmoe4 --model $SYN --max-tokens 32 --threads "$(nproc)"; done
grep -h "^gpu:" "$OUT/olmoe4-gpu-1.txt" >> "$S"
compare olmoe4
cat "$S"
