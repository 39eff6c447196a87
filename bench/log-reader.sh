#!/bin/bash
# LogReader throughput over a 2 GiB log on this machine's disk, beside fio
# reading the same bytes sequentially with O_DIRECT (1 MiB, queue depth 16),
# for both I/O backends. Prints each rate and reader/fio. Aim: >= 0.90.
set -euo pipefail
build=${1:-build}
dir=$build/bench
size=${HRL_BENCH_LOG_BYTES:-$((2 << 30))}
runs=${HRL_BENCH_RUNS:-5}
mkdir -p "$dir"
log=$dir/reader.log data=$dir/reader.data

if [ ! -f "$log.done" ] || [ "$(cat "$log.done")" != "$size" ]; then
  echo "generating a $((size >> 20)) MiB log through LogWriter..."
  "$build/bench/hrl-bench-log-reader" generate "$log" "$data" "$size"
  echo "$size" > "$log.done"
fi
read -r ring_offset used < <("$build/userspace/hrl-log" verify --json "$log" |
  python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["superblock"]["ring_offset"], j["ring_bytes_used"])')
sync
echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true

fio_mib() {  # engine -> MiB/s of a sequential O_DIRECT read of the ring's used bytes
  fio --name=seq --filename="$log" --direct=1 --rw=read --bs=1M --iodepth=16 --ioengine="$1" \
      --offset="$ring_offset" --size="$used" --output-format=json 2>/dev/null |
    python3 -c 'import json,sys; print("%.1f" % (json.load(sys.stdin)["jobs"][0]["read"]["bw_bytes"] / 2**20))'
}
reader_mib() {
  "$build/bench/hrl-bench-log-reader" read "$log" "$1" | sed -n 's/.*mib_s=\([0-9.]*\).*/\1/p'
}
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo
echo "LogReader vs fio, ${used} bytes of ring (records of 4 KiB to 1 MiB), median of $runs runs"
printf '%-10s %14s %14s %14s\n' backend "reader MiB/s" "fio MiB/s" "reader/fio"
for backend in io_uring libaio; do
  r=() f=()
  for _ in $(seq "$runs"); do
    f+=("$(fio_mib "$backend")")
    r+=("$(reader_mib "$backend")")
  done
  rm=$(median "${r[@]}") fm=$(median "${f[@]}")
  printf '%-10s %14s %14s %14s\n' "$backend" "$rm" "$fm" "$(python3 -c "print('%.2f' % ($rm / $fm))")"
done
echo "(aim: reader/fio >= 0.90 for both backends)"
