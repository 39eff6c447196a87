#!/bin/bash
# Checksum resync on loopback: a 4 GiB image pair, 1% of its 4 KiB blocks
# changed at random (random bytes), 30% of it zero regions. In the same run:
#  - hrlctl resync between two real hrld (TLS 1.3): time and bytes on the wire;
#  - rsync --inplace --no-whole-file to an rsync daemon on 127.0.0.1, over the
#    same starting replica: time and bytes on the wire (rsync --stats);
#  - hrlctl verify of the pair (a full compare) against fio reading both
#    images at once, sequentially, O_DIRECT (the read limit).
# Page caches are dropped before each timed step. Aims: at least 5x faster
# than rsync, wire at most 1.1x the changed bytes, compare rate 90% of the read.
set -euo pipefail
build=${1:-build}
size=${HRL_BENCH_RESYNC_BYTES:-$((4 << 30))}
bin=$(realpath "$build")
. "$(dirname "$0")/hrld-pair.sh"
dir=$(realpath -m "$build/bench/resync")
mkdir -p "$dir/state" "$dir/rsync"
data=$dir/data.img replica=$dir/replica.img log=$dir/log.img base=$dir/replica.base
target=$dir/rsync/replica.img

if [ ! -f "$base.done" ] || [ "$(cat "$base.done")" != "$size" ]; then
  echo "generating a $((size >> 20)) MiB pair: random data, 30% zero regions, 1% of blocks changed..."
  { openssl enc -aes-128-ctr -pass pass:hrl-bench -nosalt -pbkdf2 </dev/zero 2>/dev/null || true; } | head -c "$size" >"$data"
  python3 - "$data" "$base" "$size" <<'PY'
import os, random, shutil, sys
data, base, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
zero = bytes(300 << 10)
with open(data, "r+b") as f:  # the first 300 KiB of every MiB: 30% zero
    for off in range(0, size, 1 << 20):
        f.seek(off); f.write(zero)
shutil.copyfile(data, base)
rng = random.Random(7)
blocks = rng.sample(range(size // 4096), size // 4096 // 100)
with open(base, "r+b") as f:  # the replica's stale blocks: 1%, random bytes
    for b in sorted(blocks):
        f.seek(b * 4096); f.write(rng.randbytes(4096))
with open(base + ".changed", "w") as f:
    f.write(str(len(blocks) * 4096))
PY
  echo "$size" >"$base.done"
fi
changed=$(cat "$base.changed")
runs=${HRL_BENCH_RUNS:-3}
drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }
now() { date +%s.%N; }
ratio() { python3 -c "import sys; print('%.2f' % (float(sys.argv[1]) / float(sys.argv[2])))" "$1" "$2"; }
mib() { python3 -c "import sys; print('%.1f' % (float(sys.argv[1]) / 1048576))" "$1"; }

# hrld pair: a log formatted as in sync (so no initial resync), the operator's resync.
cp --sparse=never "$base" "$replica"
truncate -s 64M "$log"
"$bin/userspace/hrl-log" format "$log" --data "$data" --assume-in-sync --force >/dev/null
rm -rf "$dir/state"/*
hrld_pair "$bin" "$dir" "$log" "$data" "$replica" "$dir/state"
"$bin/userspace/hrld" --config "$dir/secondary.toml" 2>"$dir/secondary.log" & spid=$!
"$bin/userspace/hrld" --config "$dir/primary.toml" 2>"$dir/primary.log" & ppid=$!
trap 'kill $ppid $spid 2>/dev/null || true; [ -n "${rpid:-}" ] && kill $rpid 2>/dev/null || true' EXIT
ctl() { "$bin/userspace/hrlctl" --socket "$dir/primary.sock" "$@"; }
for _ in $(seq 100); do ctl status --json 2>/dev/null | grep -q '"state": "replicating"' && break; sleep 0.1; done

# rsync's side: a daemon on loopback, delta transfer in place into the same stale replica.
cat >"$dir/rsyncd.conf" <<CONF
use chroot = no
uid = root
gid = root
[bench]
path = $dir/rsync
read only = no
CONF
rport=$(free_port)
rsync --daemon --no-detach --config="$dir/rsyncd.conf" --address=127.0.0.1 --port="$rport" & rpid=$!
sleep 0.5
secs() { python3 -c "import sys; print(float(sys.argv[2]) - float(sys.argv[1]))" "$1" "$2"; }

# The disk here varies from run to run: the steps alternate, and medians are kept.
hrl_t=() rsync_t=() verify_t=() read_t=()
for run in $(seq "$runs"); do
  cp --sparse=never "$base" "$replica"
  drop
  t0=$(now); res=$(ctl resync bench --json | tail -1); t1=$(now)
  hrl_t+=("$(secs "$t0" "$t1")")
  cmp -s "$data" "$replica" || { echo "resync: the replica differs from the data after hrlctl resync" >&2; exit 1; }
  hrl_wire=$(echo "$res" | python3 -c 'import json,sys; print(json.load(sys.stdin)["wire_bytes"])')
  hrl_diff=$(echo "$res" | python3 -c 'import json,sys; print(json.load(sys.stdin)["differing_bytes"])')

  cp --sparse=never "$base" "$target"
  drop
  t0=$(now); stats=$(rsync --inplace --no-whole-file --stats "$data" "rsync://127.0.0.1:$rport/bench/replica.img"); t1=$(now)
  rsync_t+=("$(secs "$t0" "$t1")")
  cmp -s "$data" "$target" || { echo "resync: rsync left the replica different" >&2; exit 1; }
  rsync_wire=$(echo "$stats" | python3 -c '
import re, sys
t = sys.stdin.read()
n = lambda k: int(re.search(k + r": ([\d,]+)", t).group(1).replace(",", ""))
print(n("Total bytes sent") + n("Total bytes received"))')

  drop
  t0=$(now); ctl verify bench --json >/dev/null; t1=$(now)
  verify_t+=("$(secs "$t0" "$t1")")
  # The read limit: both images read at once, as the two sites do.
  drop
  t0=$(now)
  fio --name=a --filename="$data" --name=b --filename="$replica" --rw=read --bs=1M --direct=1 \
      --ioengine=libaio --iodepth=8 --size="$size" --output-format=terse >/dev/null
  t1=$(now)
  read_t+=("$(secs "$t0" "$t1")")
  echo "  run $run: hrlctl resync ${hrl_t[-1]} s, rsync ${rsync_t[-1]} s, hrlctl verify ${verify_t[-1]} s, fio read of both ${read_t[-1]} s"
done
hrl_s=$(median "${hrl_t[@]}") rsync_s=$(median "${rsync_t[@]}") verify_s=$(median "${verify_t[@]}")
read_s=$(median "${read_t[@]}")

echo "resync benchmark (medians of $runs runs): $((size >> 20)) MiB pair, $(mib "$changed") MiB changed (1% of 4 KiB blocks, random), 30% zero"
printf '  hrlctl resync:  %7.2f s  wire %8s MiB  (%s x the changed bytes; it found %s MiB differing)\n' \
  "$hrl_s" "$(mib "$hrl_wire")" "$(ratio "$hrl_wire" "$changed")" "$(mib "$hrl_diff")"
printf '  rsync:          %7.2f s  wire %8s MiB  (%s x the changed bytes)\n' "$rsync_s" "$(mib "$rsync_wire")" \
  "$(ratio "$rsync_wire" "$changed")"
echo "  resync vs rsync: $(ratio "$rsync_s" "$hrl_s")x faster (aim >= 5), wire $(ratio "$hrl_wire" "$changed")x changed (aim <= 1.1)"
echo "  (any compare must read both images: the read limit caps the speedup over rsync at $(ratio "$rsync_s" "$read_s")x here)"
compare_rate=$(python3 -c "print($size / $verify_s / 1048576)")
read_rate=$(python3 -c "print($size / $read_s / 1048576)")
printf '  full compare (hrlctl verify): %.0f MiB/s of each image; both read at once (fio): %.0f MiB/s: ratio %s (aim >= 0.90)\n' \
  "$compare_rate" "$read_rate" "$(ratio "$compare_rate" "$read_rate")"
kill $ppid $spid; wait $ppid $spid 2>/dev/null || true
