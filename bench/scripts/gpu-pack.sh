#!/usr/bin/env bash
# gpu-pack.sh: packs what bench/scripts/gpu-check.sh needs on a GPU machine that has no JDK or Maven (the device
# machines this project borrows) into .gpu/ (git-ignored): a jlinked JDK 25 runtime and the runtime classpath, xz'd
# (stored jars inside one solid archive: about 30 MB in all), and this checkout's own module jars. Run ./moe build first.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
J="${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}"
OUT="$ROOT/.gpu"; TMP="$(mktemp -d)"; trap 'rm -rf "$TMP"' EXIT
mkdir -p "$OUT/own"
grep -qx '/.gpu/' "$ROOT/.git/info/exclude" 2>/dev/null || echo '/.gpu/' >> "$ROOT/.git/info/exclude"
if [ ! -f "$OUT/jrt.tar.xz" ]; then
  "$J/bin/jlink" --add-modules java.base,jdk.incubator.vector,java.logging,java.management,jdk.unsupported,java.naming,java.sql,java.xml,jdk.management \
    --strip-debug --no-man-pages --no-header-files --compress=zip-0 --output "$TMP/jrt" 2>/dev/null
  tar -C "$TMP" -cJf "$OUT/jrt.tar.xz" jrt
fi
if [ ! -f "$OUT/deps.tar.xz" ]; then
  # what `moe generate|synth` loads: the runtime classpath less the cluster, the solver and other platforms' natives
  mkdir -p "$TMP/lib"
  for j in $(tr ':' '\n' < "$ROOT/moe-runtime/target/classpath.txt" | grep -v -E '/org/moeserve/|ortools|hazelcast|jna-platform|protobuf|quic|http3|commons-compress|tcnative|SNAPSHOT'); do
    rm -rf "$TMP/x" && mkdir "$TMP/x" && (cd "$TMP/x" && unzip -q -o "$j" && rm -rf native/lib/win* native/lib/osx* native/lib/linux-aarch64 \
      && zip -q -0 -r -X "$TMP/lib/$(basename "$j")" .)
  done
  tar -C "$TMP" -cJf "$OUT/deps.tar.xz" lib
fi
rm -f "$OUT"/own/*.jar
for m in moe-runtime expert-cache router-predictor comms placement-solver; do cp "$ROOT/$m"/target/"$m"-*.jar "$OUT/own/"; done
du -sh "$OUT"/* >&2
