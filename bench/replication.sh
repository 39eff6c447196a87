#!/bin/bash
# End to end on loopback: a primary and a secondary hrld (real TLS, zstd -1)
# ship a 2 GiB journal, half text-like and half random. Beside it, in the
# same run: zstd -1 compressing and decompressing the same bytes, and a plain
# sequential read of the log (fio, O_DIRECT). Prints MB/s, ratios, the
# compression achieved and each daemon's peak RSS.
# Aim: within 80% of the slower of zstd and the read; under 64 MiB RSS per daemon.
set -euo pipefail
build=${1:-build}
dir=$(realpath -m "$build/bench/replication")
size=${HRL_BENCH_LOG_BYTES:-$((2 << 30))}
runs=${HRL_BENCH_RUNS:-3}
bin=$(realpath "$build")
. "$(dirname "$0")/hrld-pair.sh"
mkdir -p "$dir"
log=$dir/journal.log data=$dir/journal.data replica=$dir/replica.img state=$dir/state

bench_journal "$bin" "$log" "$data" "$size"
read -r ring_offset used last < <("$bin/userspace/hrl-log" verify --json "$log" | python3 -c '
import json, sys
j = json.load(sys.stdin)
print(j["superblock"]["ring_offset"], j["ring_bytes_used"], j["first_seq"] + j["records"] - 1)')

hrld_pair "$bin" "$dir" "$log" "$data" "$replica" "$state"
echo "history = false" >>"$dir/secondary.toml"  # shipping alone: bench/history.sh measures the undo journal's cost

ship=() zst=() rd=() prss=() srss=() ratio=""
for run in $(seq "$runs"); do
  ship_journal "$bin" "$dir" "$log" "$state" "$replica" "$last"
  ratio=$ship_ratio
  prss+=("$ship_rss_primary"); srss+=("$ship_rss_secondary")
  ship+=("$(python3 -c "print('%.1f' % ($used / 2**20 / $ship_seconds))")")

  t0=$(date +%s.%N)
  zstd -1 -q -c < "$log" | zstd -d -q -c > /dev/null
  t1=$(date +%s.%N)
  zst+=("$(python3 -c "print('%.1f' % ($(stat -c %s "$log") / 2**20 / ($t1 - $t0)))")")

  rd+=("$(fio --name=read --filename="$log" --direct=1 --rw=read --bs=1M --iodepth=16 --ioengine=io_uring \
      --offset="$ring_offset" --size="$used" --output-format=json 2>/dev/null |
      python3 -c 'import json,sys; print("%.1f" % (json.load(sys.stdin)["jobs"][0]["read"]["bw_bytes"] / 2**20))')")
done
s=$(median "${ship[@]}") z=$(median "${zst[@]}") r=$(median "${rd[@]}")
limit=$(python3 -c "print(min($z, $r))")
echo
echo "hrld end to end on loopback: $((used >> 20)) MiB of journal (half text-like, half random), median of $runs runs"
printf '%-38s %10s MiB/s\n' "hrld primary -> secondary (TLS, zstd -1)" "$s" "zstd -1 compress | decompress" "$z" \
  "sequential read of the log (fio)" "$r"
python3 -c "print('hrld / zstd %.2f, hrld / read %.2f, hrld / slower limit %.2f (aim >= 0.80)' % ($s / $z, $s / $r, $s / $limit))"
echo "compression ratio achieved: ${ratio}x"
echo "peak RSS: primary $(median "${prss[@]}") MiB, secondary $(median "${srss[@]}") MiB (aim < 64 MiB each)"
