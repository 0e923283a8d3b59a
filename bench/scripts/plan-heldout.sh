#!/usr/bin/env bash
# A placement plan held out across domains (issue 18): fitted on the demo model's shared held-out trace (Bible,
# jargon, fortunes, Python docs), scored on FOLDOC, a computing dictionary the plan never saw. Traces FOLDOC first
# if the predictors step has not (the dict-foldoc Debian package). Usage: bench/scripts/plan-heldout.sh [SECONDS]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
W="$ROOT/bench/target/predictors"
mkdir -p "$W"
if [ ! -s "$W/foldoc.trace.jsonl" ]; then
  dpkg -s dict-foldoc >/dev/null 2>&1 || apt-get install -y -qq dict-foldoc >/dev/null
  set +o pipefail # head closes the pipe early on purpose
  zcat /usr/share/dictd/foldoc.dict.dz | head -c 400000 | tail -c 100000 > "$W/foldoc.txt"
  set -o pipefail
  "$ROOT/moe" trace --input "$W/foldoc.txt" --max-sequences 16 --out "$W/foldoc.trace.jsonl" >&2
fi
"$ROOT/moe" plan --trace "$ROOT/../shared/traces/tiny-mixtral-kjv-heldout.trace.jsonl" --topology 1x4 --time-limit "${1:-20}s" \
  --eval "$W/foldoc.trace.jsonl"
