#!/usr/bin/env bash
# The predictor benchmark of BENCHMARKS.md, end to end (about 5 minutes on 2 cores):
#  1. text from the demo model's four training sources (the first 300 kB of each: text it was trained on) and
#     from FOLDOC (a computing dictionary it never saw), all from Debian packages;
#  2. moe-trace/1 traces of that text: 48 x 256-byte sequences per training source, 16 of FOLDOC;
#  3. the learned predictor trained on the training traces;
#  4. every predictor evaluated on the held-out trace in ../shared (the last 200 kB of each source, never trained
#     on) and on FOLDOC, at K = 2 (the router's top-k) and K = 4; statistics-only predictors on the OLMoE paper data.
# Usage: bench/scripts/predictors.sh [WORKDIR]   (default bench/target/predictors)
# QUICK=1 (the suite's quick mode): 16 training sequences per source, K = 2 only, statistics fitted on arxiv only.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
W="${1:-$ROOT/bench/target/predictors}"
mkdir -p "$W"
MOE="$ROOT/moe"
need=()
for p in bible-kjv jargon-text fortunes python3.11-doc dict-foldoc; do dpkg -s "$p" >/dev/null 2>&1 || need+=("$p"); done
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]} (Debian packages)" >&2
  apt-get install -y -qq "${need[@]}" >/dev/null
fi
if [ -n "${QUICK:-}" ]; then SEQS=16; FSEQS=8; else SEQS=48; FSEQS=16; fi
set +o pipefail # head closes the pipes early on purpose
bible -f Gen1:1-Rev22:21 2>/dev/null | head -c 300000 > "$W/bible.txt"
zcat /usr/share/doc/jargon-text/jargon.txt.gz | head -c 300000 > "$W/jargon.txt"
(cd /usr/share/games/fortunes && cat cookie computers definitions education fortunes humorists literature people \
  platitudes science wisdom work) | head -c 300000 > "$W/fortunes.txt"
zcat /usr/share/info/python3.11.info.gz | head -c 300000 > "$W/pydoc.txt"
zcat /usr/share/dictd/foldoc.dict.dz | head -c 400000 | tail -c 100000 > "$W/foldoc.txt"
set -o pipefail
for f in bible jargon fortunes pydoc foldoc; do
  [ -s "$W/$f.txt" ] || { echo "predictors.sh: $W/$f.txt is empty; is the Debian package installed?" >&2; exit 1; }
done

"$MOE" trace --input "$W/bible.txt" --input "$W/jargon.txt" --input "$W/fortunes.txt" --input "$W/pydoc.txt" \
  --max-sequences "$SEQS" --out "$W/train.trace.jsonl"
"$MOE" trace --input "$W/foldoc.txt" --max-sequences "$FSEQS" --out "$W/foldoc.trace.jsonl"
"$MOE" predictor train --trace "$W/train.trace.jsonl" --out "$W/learned.bin"

if [ -n "${QUICK:-}" ]; then KS="2"; FITS="arxiv"; else KS="2 4"; FITS="arxiv github"; fi
HELDOUT="$ROOT/../shared/traces/tiny-mixtral-kjv-heldout.trace.jsonl"
for k in $KS; do
  for t in "$HELDOUT" "$W/foldoc.trace.jsonl"; do
    echo; echo "### $(basename "$t"), K=$k"
    "$MOE" predictor eval --trace "$t" --model "$ROOT/models/tiny-mixtral-kjv" --fit-trace "$W/train.trace.jsonl" \
      --predictor-weights "$W/learned.bin" --predictor popularity,affinity,lookahead-gate,learned,oracle --horizon 3 --prefetch-k "$k" \
      2>/dev/null
  done
done
S="$ROOT/../shared/data/olmoe-paper-stats"
for m in olmoe mistral; do
  for fit in $FITS; do
    echo; echo "### $m statistics, fitted on $fit"
    "$MOE" predictor eval-stats --fit-stats "$S/$m-$fit.json" $(for d in arxiv book c4 github wikipedia; do echo --test "$S/$m-$d.json"; done) 2>/dev/null
  done
done
