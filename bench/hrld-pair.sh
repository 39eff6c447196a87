# Sourced by the benchmarks that run two hrld on loopback.
# free_port: a TCP port nothing listens on.
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
