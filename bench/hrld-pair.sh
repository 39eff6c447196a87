# Sourced by the benchmarks that run two hrld on loopback.
# free_port: a TCP port nothing listens on.
# bench_journal BIN LOG DATA SIZE: a journal of SIZE bytes (half text-like,
# half random) written once through LogWriter, formatted as in sync (a new
# replica needs no initial resync); LOG.superblock keeps its superblock from
# before any run acknowledged it.
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
}
