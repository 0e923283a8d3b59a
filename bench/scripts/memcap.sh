#!/usr/bin/env bash
# Runs a command inside a memory cgroup capped at LIMIT bytes (e.g. 2G, 1500M), so that page cache counts against
# the cap as well as the heap and off-heap memory: the same honest cap for every engine. Needs root.
# Prints the cgroup's peak usage and the command's peak RSS; removes the cgroup afterwards; exits with the command's
# status. cgroup v1 (memory controller) and v2 (memory.max) are both handled.
#   bench/scripts/memcap.sh 2G ./moe generate --model DIR --offload disk --expert-budget 25% ...
set -euo pipefail
if [ $# -lt 2 ]; then echo "usage: $0 LIMIT COMMAND [ARGS...]   (LIMIT e.g. 2G, 1500M)" >&2; exit 2; fi
limit=$(numfmt --from=iec "$1") || { echo "memcap: LIMIT is $1 but must be bytes with an optional K/M/G suffix" >&2; exit 2; }
shift
[ "$(id -u)" = 0 ] || { echo "memcap: creating a memory cgroup needs root" >&2; exit 2; }
name="moe-memcap-$$"
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then # v2
  parent=/sys/fs/cgroup$(awk -F: '$1=="0"{print $3}' /proc/self/cgroup)
  cg="$parent/$name"; mkdir "$cg"; echo "$limit" > "$cg/memory.max"; echo 0 > "$cg/memory.swap.max" 2>/dev/null || true
  peak_file="$cg/memory.peak"; events="$cg/memory.events"
else # v1
  parent=/sys/fs/cgroup/memory$(awk -F: '$2=="memory"{print $3}' /proc/self/cgroup)
  cg="$parent/$name"; mkdir "$cg"; echo "$limit" > "$cg/memory.limit_in_bytes"
  echo "$limit" > "$cg/memory.memsw.limit_in_bytes" 2>/dev/null || true # no swapping around the cap
  peak_file="$cg/memory.max_usage_in_bytes"; events="$cg/memory.oom_control"
fi
cleanup() {
  # leave the cgroup empty, then remove it (page cache charged to it moves to the parent)
  for p in $(cat "$cg/cgroup.procs" 2>/dev/null); do echo "$p" > "$parent/cgroup.procs" 2>/dev/null || true; done
  rmdir "$cg" 2>/dev/null || true
}
trap cleanup EXIT
sync; echo 1 > /proc/sys/vm/drop_caches 2>/dev/null || true # a cold page cache for every run alike
status=0
/usr/bin/time -f "memcap: peak RSS %M kB, %e s wall" bash -c 'echo $$ > "$1/cgroup.procs"; shift; exec "$@"' memcap "$cg" "$@" || status=$?
peak=$(cat "$peak_file" 2>/dev/null || echo 0)
oom=$(grep -E '^(oom_kill|oom) ' "$events" 2>/dev/null | awk '{s+=$2} END {print s+0}')
echo "memcap: cap $(numfmt --to=iec "$limit"), cgroup peak $(numfmt --to=iec "$peak") ($peak bytes), OOM kills $oom, exit $status"
exit $status
