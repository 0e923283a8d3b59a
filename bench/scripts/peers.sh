#!/usr/bin/env bash
# Peers on the same model and machine: llama.cpp (prebuilt CPU binaries from the npm package node-llama-cpp) decoding
# the demo model exported to GGUF by `moe export-gguf`, against moe-serve's own decode benchmark, one stream, 1 and 2
# threads, medians of REPS (default 7). Needs the npm registry once (installs into bench/target/peers); not run by CI.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
export JAVA_HOME="${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}"
[ -x "$JAVA_HOME/bin/java" ] && "$JAVA_HOME/bin/java" -version 2>&1 | grep -q '"25' || JAVA_HOME=/usr/lib/jvm/temurin-25-jdk-amd64
export MAVEN_OPTS="${MAVEN_OPTS:-} --sun-misc-unsafe-memory-access=allow"
REPS="${1:-7}"
. "$ROOT/bench/scripts/llamacpp-peer.sh"
llamacpp_ensure
"$ROOT/moe" export-gguf --out "$PEERS/tiny-mixtral-kjv.gguf"
PROMPT="In the beginning God created the"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "### moe-serve (./moe bench decode $REPS; 1 and 8 streams, 1 and 2 threads, 128 tokens each)"
"$ROOT/moe" bench decode "$REPS" 2>/dev/null | grep '^|'
echo "### llama.cpp (node-llama-cpp 3.22.1 on the GGUF export; one stream, 128 tokens, greedy; prompt \"$PROMPT\")"
echo "| threads | decode tokens/s (median of $REPS) | min | max |"
echo "|---|---|---|---|"
for t in 1 2; do
  node "$PEERS/llamacpp-decode.mjs" "$PEERS/tiny-mixtral-kjv.gguf" "$t" "$REPS" 128 "$PROMPT" > "$PEERS/llamacpp-$t.json"
  node -e 'const r=require(process.argv[1]); console.log(`| ${r.threads} | ${r.median_tokens_per_s.toFixed(0)} | ${r.min.toFixed(0)} | ${r.max.toFixed(0)} |`)' "$PEERS/llamacpp-$t.json"
done
echo "### Jlama 0.8.4 (bench/peers/jlama, its own Maven project, on the same safetensors; one stream, its default threads)"
echo "| decode tokens/s (median of $REPS) | min | max | tokens |"
echo "|---|---|---|---|"
JL="$ROOT/bench/peers/jlama"
mvn -B -q -f "$JL/pom.xml" package dependency:build-classpath -Dmdep.outputFile="$JL/target/classpath.txt" >&2
"$JAVA_HOME/bin/java" --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -cp "$JL/target/classes:$(cat "$JL/target/classpath.txt")" \
  JlamaDecode "$ROOT/models/tiny-mixtral-kjv" "$REPS" 128 "$PROMPT" 2>/dev/null | tail -1 > "$PEERS/jlama.json"
node -e 'const r=require(process.argv[1]); console.log(`| ${r.median_tokens_per_s.toFixed(0)} | ${r.min.toFixed(0)} | ${r.max.toFixed(0)} | ${r.tokens} |`)' "$PEERS/jlama.json"
echo; echo "llama.cpp's greedy continuation: $(node -e 'console.log(JSON.stringify(require(process.argv[1]).text))' "$PEERS/llamacpp-1.json")"
echo "Jlama's continuation:            $(node -e 'console.log(JSON.stringify(require(process.argv[1]).text))' "$PEERS/jlama.json")"
echo "moe-serve's continuation:        $("$ROOT/moe" generate --prompt "$PROMPT" --greedy --max-tokens 128 --threads 1 2>/dev/null | head -c 2000 | python3 -c 'import sys,json; s=sys.stdin.read(); print(json.dumps(s.split("\n\nprefill")[0][len(sys.argv[1]):]))' "$PROMPT")"
