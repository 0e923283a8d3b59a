# Sourced by the peer scripts (peers.sh, shape.sh, disk-tier.sh): llama.cpp through node-llama-cpp 3.22.1's prebuilt
# CPU binaries, installed once into bench/target/peers (needs the npm registry the first time). Sets PEERS; after
# llamacpp_ensure, "$PEERS/llamacpp-decode.mjs" is the measuring script.
PEERS="$ROOT/bench/target/peers"
llamacpp_ensure() {
  mkdir -p "$PEERS"
  if [ ! -d "$PEERS/node_modules/node-llama-cpp" ]; then
    echo "installing node-llama-cpp 3.22.1 (npm)..." >&2
    (cd "$PEERS" && npm init -y >/dev/null && npm install --no-audit --no-fund --loglevel=error node-llama-cpp@3.22.1 >&2)
  fi
  cp "$ROOT/bench/scripts/llamacpp-decode.mjs" "$PEERS/"
}
