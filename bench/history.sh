#!/bin/bash
# The cost of history on the secondary (issue: recovery points).
# 1. Apply throughput with the undo journal off and on, in the same run: two
#    real hrld on loopback (TLS, no compression, so the secondary's apply is
#    what limits) ship the same 1 GiB journal into a new replica; runs
#    alternate off/on; medians.
# 2. A test failover image of a point 1 hour of a 10 MB/s workload back: a
#    4 GiB replica takes the hour of writes with its before-images captured,
#    as hrld's secondary applies them, then the image of the point before
#    them is built (the copy, then the undo). Beside it, the limit: a plain
#    copy of the same replica (dd, caches dropped).
set -euo pipefail
build=${1:-build}
dir=$(realpath -m "$build/bench/history")
size=${HRL_BENCH_LOG_BYTES:-$((1 << 30))}
runs=${HRL_BENCH_RUNS:-3}
hour=${HRL_BENCH_HISTORY_SECONDS:-3600}
rate=${HRL_BENCH_HISTORY_RATE:-10000000}
volume=${HRL_BENCH_HISTORY_VOLUME:-$((4 << 30))}
bin=$(realpath "$build")
. "$(dirname "$0")/hrld-pair.sh"
mkdir -p "$dir"
log=$dir/journal.log data=$dir/journal.data replica=$dir/replica.img state=$dir/state

bench_journal "$bin" "$log" "$data" "$size"
read -r used last < <("$bin/userspace/hrl-log" verify --json "$log" | python3 -c '
import json, sys
j = json.load(sys.stdin)
print(j["ring_bytes_used"], j["first_seq"] + j["records"] - 1)')

hrld_pair "$bin" "$dir" "$log" "$data" "$replica" "$state"
sed -i 's/^compression = 1$/compression = 0/' "$dir/primary.toml"
cp "$dir/secondary.toml" "$dir/secondary.base.toml"

ship() {  # $1: history true|false; prints MiB/s
  { cat "$dir/secondary.base.toml"; echo "history = $1"; echo "point_interval = 1"; } >"$dir/secondary.toml"
  ship_journal "$bin" "$dir" "$log" "$state" "$replica" "$last"
  python3 -c "print('%.1f' % ($used / 2**20 / $ship_seconds))"
}

off=() on=() undo_bytes=0
for run in $(seq "$runs"); do
  off+=("$(ship false)")
  on+=("$(ship true)")
  undo_bytes=$(du -sb "$state/bench.undo" | cut -f1)
done
f=$(median "${off[@]}") n=$(median "${on[@]}")

echo "building the history of $hour s at $rate B/s on a $((volume >> 20)) MiB replica..."
out=$("$bin/bench/hrl-bench-point-image" "$dir/point" "$volume" "$hour" "$rate")
sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
t0=$(date +%s.%N)
dd if="$dir/point/replica.img" of="$dir/point/copy.img" bs=1M conv=fsync status=none
t1=$(date +%s.%N)
rm -f "$dir/point/copy.img" "$dir/point/point.img"

echo
echo "history on the secondary: $((used >> 20)) MiB of journal into a new replica, median of $runs runs (TLS, no compression)"
printf '%-38s %10s MiB/s\n' "apply, history off" "$f" "apply, history on (undo journal)" "$n"
python3 -c "print('history on / off %.2f; undo journal %.0f MiB for %.0f MiB applied' % ($n / $f, $undo_bytes / 2**20, $used / 2**20))"
python3 - "$out" "$t0" "$t1" "$hour" <<'PY'
import json, sys
r = json.loads(sys.argv[1]); copy = float(sys.argv[3]) - float(sys.argv[2]); secs = float(sys.argv[4])
print(f"test failover image of a point {secs / 60:.0f} min of {r['workload_bytes'] / 1e6 / secs:.1f} MB/s writes back "
      f"({r['workload_bytes'] / 1e9:.1f} GB, {r['records']} records; undo journal {r['history_bytes'] / 2**30:.1f} GiB)")
print(f"  built in {r['build_seconds']:.1f} s: {r['copied_bytes'] / 2**20:.0f} MiB copied, "
      f"{r['undone_bytes'] / 2**20:.0f} MiB of before-images written (each byte once)")
print(f"  plain copy of the replica (dd): {copy:.1f} s; image / copy {r['build_seconds'] / copy:.2f}")
PY
