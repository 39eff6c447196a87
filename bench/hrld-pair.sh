# Sourced by the benchmarks that run two hrld on loopback.
# free_port: a TCP port nothing listens on.
# ship_journal BIN DIR LOG STATE REPLICA LAST: the pair of hrld_pair ships
# the journal LOG (from its saved superblock: nothing acknowledged) into a
# new 1 GiB replica, caches dropped first. Sets ship_seconds (from the
# primary's start until the secondary holds LAST), ship_ratio (compression),
# ship_rss_primary and ship_rss_secondary (peak RSS, MiB).
# bench_journal BIN LOG DATA SIZE: a journal of SIZE bytes (half text-like,
# half random) written once through LogWriter, formatted as in sync (a new
# replica needs no initial resync); LOG.superblock keeps its superblock from
# before any run acknowledged it, and it is put back.
# median N...: the middle value.
# hrld_pair BIN DIR LOG DATA REPLICA STATE_DIR: a site CA and two node
# certificates (made with hrlctl) in DIR/certs, and DIR/primary.toml and
# DIR/secondary.toml for a volume "bench" (control sockets DIR/<node>.sock).
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

hrld_pair() {
  local bin=$1 dir=$2 log=$3 data=$4 replica=$5 state=$6 port n
  rm -rf "$dir/certs"; mkdir -p "$dir/certs" "$state"
  "$bin/userspace/hrlctl" cert init --dir "$dir/certs" --site bench >/dev/null
  for n in primary secondary; do "$bin/userspace/hrlctl" cert issue --dir "$dir/certs" $n >/dev/null; done
  port=$(free_port)
  for n in primary secondary; do
    printf '[node]\nname = "%s"\ncert = "%s/certs/%s.pem"\nkey = "%s/certs/%s.key"\nca = "%s/certs/ca.pem"\ncontrol_socket = "%s/%s.sock"\nmetrics = ""\n' \
      "$n" "$dir" "$n" "$dir" "$n" "$dir" "$dir" "$n" >"$dir/$n.toml"
  done
  printf '[[volume]]\nname = "bench"\nrole = "primary"\nlog = "%s"\ndata = "%s"\npeer = "127.0.0.1:%s"\npeer_name = "secondary"\ncompression = 1\n' \
    "$log" "$data" "$port" >>"$dir/primary.toml"
  printf '[[volume]]\nname = "bench"\nrole = "secondary"\nlisten = "127.0.0.1:%s"\nreplica = "%s"\nstate_dir = "%s"\n' \
    "$port" "$replica" "$state" >>"$dir/secondary.toml"
}

bench_journal() {
  local bin=$1 log=$2 data=$3 size=$4
  if [ ! -f "$log.done" ] || [ "$(cat "$log.done")" != "$size in-sync" ]; then
    echo "generating a $((size >> 20)) MiB journal (half text-like, half random) through LogWriter..."
    "$bin/bench/hrl-bench-log-reader" generate-corpus "$log" "$data" "$size"
    dd if="$log" of="$log.superblock" bs=4096 count=2 status=none
    echo "$size in-sync" > "$log.done"
  fi
  dd if="$log.superblock" of="$log" bs=4096 count=2 conv=notrunc status=none  # nothing acknowledged yet
}

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

ship_journal() {
  local bin=$1 dir=$2 log=$3 state=$4 replica=$5 last=$6 spid ppid t0 t1
  dd if="$log.superblock" of="$log" bs=4096 count=2 conv=notrunc status=none  # the whole journal again
  rm -rf "$state"; mkdir -p "$state"; rm -f "$replica"; truncate -s 1G "$replica"
  sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
  "$bin/userspace/hrld" --config "$dir/secondary.toml" 2>"$dir/secondary.log" & spid=$!
  sleep 0.2
  t0=$(date +%s.%N)
  "$bin/userspace/hrld" --config "$dir/primary.toml" 2>"$dir/primary.log" & ppid=$!
  while [ "$(sed -n 's/.*"durable_seq": \([0-9]*\).*/\1/p' "$state/bench.state" 2>/dev/null)" != "$last" ]; do
    kill -0 $ppid 2>/dev/null || { cat "$dir/primary.log" >&2; return 1; }
    sleep 0.05
  done
  t1=$(date +%s.%N)
  ship_seconds=$(python3 -c "print($t1 - $t0)")
  ship_ratio=$("$bin/userspace/hrlctl" --socket "$dir/primary.sock" status --json |
    python3 -c 'import json,sys; print("%.2f" % json.load(sys.stdin)["volumes"][0]["compression_ratio"])')
  ship_rss_primary=$(awk '/VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$ppid/status")
  ship_rss_secondary=$(awk '/VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$spid/status")
  kill $ppid $spid; wait $ppid $spid 2>/dev/null || true
}
