# The crash-state explorer's guest side (tests/vm/explore.py is the host's).
#
# crash_record: dm-hrl over two dm-log-writes devices (the primary's data on
#   vda recorded on vdd, its log on vdb recorded on vde), two hrld replicating
#   to vdc, a seeded application (hrl-blockio run) in phases. At barrier k
#   everything is stopped (the application and both hrld), the devices are
#   left to drain, then each recording gets the mark "crash-k" and a flush:
#   the writes between the mark and that flush are exactly those completed but
#   not yet made durable at that instant, so the host can build every state a
#   power loss then could leave. The secondary is copied as it was (vdc and its
#   state directory). Everything the host needs goes to vdf as a tar.
# crash_check: lays each crash state the host built (a pack on vdb: data, log
#   and replica of each state; the secondary's state directories on vdc) under
#   dm-hrl, lets the primary's hrld meet the secondary, writes more, waits for
#   the pair to converge, and prints what the host checks.
#
# Both use the volume db0 on devices named xdata, xlog and xrep, whatever is
# under them, so one pair of hrld configurations serves.

CRASH_PRIMARY="hrld --config /etc/hrl/crash-primary.toml"
P="hrlctl --socket /run/hrl/primary.sock" S="hrlctl --socket /run/hrl/secondary.sock"

durable() { sed -n 's/.*"durable_seq": \([0-9]*\).*/\1/p' /var/lib/hrl/db0.state 2>/dev/null; }
dm_minor() { dmsetup info -c --noheadings -o minor "$1" | tr -d ' '; }

# Waits until no bio is in flight on hrl0 and on the devices under it, three
# looks in a row 20 ms apart (dm's in-flight counters, /sys/block/dm-N/inflight).
drained() {
  quiet=0 looks=0
  while [ $quiet -lt 3 ]; do
    busy=0
    for m in $DRAIN_MINORS; do
      set -- $(cat /sys/block/dm-$m/inflight)
      [ "$1" = 0 ] && [ "$2" = 0 ] || busy=1
    done
    if [ $busy = 0 ]; then quiet=$((quiet + 1)); else quiet=0; fi
    looks=$((looks + 1))
    [ $looks -lt 1500 ] || { fail "I/O still in flight after 30 s"; return 1; }
    usleep 20000
  done
}

# barrier K ACK: the crash instant K. With ACK=1 the log's tail first moves to
# what the secondary holds (the "ack" hrld would send), so the recording ends
# with a superblock write whose loss the host can play too.
barrier() {
  t0=$(cut -d' ' -f1 /proc/uptime)
  # The primary's side stops first; the secondary applies what it already
  # received before it stops too: it may hold records the primary has not
  # made durable yet, as after a power loss while records were on the wire.
  kill -STOP $WL $PRI 2>/dev/null
  stopped="$WL $PRI"
  if [ "$SEC_PAUSED" != 1 ]; then
    usleep 500000
    kill -STOP $SEC
    stopped="$stopped $SEC"
  fi
  drained || return 1
  d=$(durable)
  if [ "$2" = 1 ] && [ -n "$d" ] && [ "$d" -gt 0 ] && [ "$d" -lt "$(field 2)" ]; then
    dmsetup message hrl0 0 ack "$d" || fail "ack $d at barrier $1" || return 1
    drained || return 1
  else
    set -- "$1" 0
  fi
  dmsetup message xdata 0 mark "crash-$1" && dmsetup message xlog 0 mark "crash-$1" || fail "mark crash-$1" || return 1
  for dev in xdata xlog; do
    dd if=/dev/null of=/dev/mapper/$dev count=0 conv=notrunc,fsync 2>/dev/null || fail "flush $dev" || return 1
  done
  dd if=/dev/mapper/xrep of=/tmp/out/replica-$1.img bs=1M 2>/dev/null || fail "copy the replica" || return 1
  tar cf /tmp/out/state-$1.tar -C /var/lib/hrl . || fail "copy the secondary's state" || return 1
  echo "$1 $(wc -c < /tmp/out/journal) ${d:-0} $2 $(status | tr ' ' ,)" >> /tmp/out/barriers
  echo "BARRIER $1: journal $(wc -c < /tmp/out/journal) bytes, secondary durable ${d:-0}, ack $2, $(status)"
  kill -CONT $stopped 2>/dev/null
  echo "BARRIER $1 took $(awk -v a="$t0" '{ printf "%.1f", $1 - a }' /proc/uptime) s"
}

# Gives the replica device (xrep) another table, under the running secondary.
replica_table() {
  dmsetup suspend xrep && echo "$1" | dmsetup reload xrep && dmsetup resume xrep || fail "xrep: $1" || return 1
}

# One phase of the application, in the background: run_app FIRST_ID [hrl-blockio run options]
run_app() {
  first=$1
  shift
  hrl-blockio run --device /dev/mapper/hrl0 --seed "$SEED" --journal /tmp/out/journal --first-id "$first" \
    --depth 4 "$@" > /tmp/app.out 2>&1 &
  WL=$!
}

# Barriers every STEP seconds while the application runs; ACKS says which ack.
barriers_during_app() {  # first_barrier step acks(e.g. "1 0 1"): one barrier per ack flag
  k=$1
  for a in $3; do
    sleep "$2"
    barrier "$k" "$a" || return 1
    k=$((k + 1))
    if [ $((k % 2)) = 0 ]; then $P point create db0 --name "named-$k" >/dev/null 2>&1; fi
  done
  NEXT_BARRIER=$k
}

scenario_crash_record() {
  ip link set lo up
  mkdir -p /run/hrl /var/lib/hrl /tmp/out
  : > /tmp/out/journal
  : > /tmp/out/barriers
  n=$(sect /dev/vda)
  echo "0 $n log-writes /dev/vda /dev/vdd" | dmsetup create xdata || fail "log-writes on the data" || return 1
  echo "0 $(sect /dev/vdb) log-writes /dev/vdb /dev/vde" | dmsetup create xlog || fail "log-writes on the log" || return 1
  echo "0 $(sect /dev/vdc) linear /dev/vdc 0" | dmsetup create xrep || fail "the replica" || return 1
  echo "0 $n hrl /dev/mapper/xdata /dev/mapper/xlog" | dmsetup create hrl0 || fail "dm-hrl" || return 1
  DRAIN_MINORS="$(dm_minor hrl0) $(dm_minor xdata) $(dm_minor xlog)"
  hrld --config /etc/hrl/crash-secondary.toml 2>/tmp/out/secondary.log &
  SEC=$!
  $CRASH_PRIMARY 2>/tmp/out/primary.log &
  PRI=$!
  i=0
  while [ $i -lt 300 ] && [ -z "$(durable)" ]; do usleep 100000; i=$((i + 1)); done
  [ -n "$(durable)" ] || fail "the pair never met" || return 1
  long=0
  grep -q 'hrl.long=1' /proc/cmdline && long=1

  # A: replication keeps up; the application flushes now and then.
  run_app 1 --ops $((1200 + 1200 * long)) --rate 150
  barriers_during_app 1 1 "1 0 1 1 $( [ $long = 1 ] && echo '0 1 1 0 1')" || return 1
  wait $WL || { cat /tmp/app.out; fail "the application, phase A"; return 1; }
  # A2: no flush from the application: the log is flushed only by what
  #     dm-hrl does on its own, while the secondary keeps up with the records.
  #     The replica's writes take 150 ms (dm-delay): the primary waits for
  #     DURABLE longer, so a barrier finds records shipped and not yet
  #     acknowledged, which the secondary then makes durable.
  replica_table "0 $(sect /dev/vdc) delay /dev/vdc 0 0 /dev/vdc 0 150" || return 1
  run_app 1000001 --ops $((8 + 8 * long)) --rate 1 --flush-ratio 0 --fua-ratio 0
  barriers_during_app $NEXT_BARRIER 1.2 "0 0 0 0 $( [ $long = 1 ] && echo "0 0 0 0")" || return 1
  wait $WL || { cat /tmp/app.out; fail "the application, phase A2"; return 1; }
  replica_table "0 $(sect /dev/vdc) linear /dev/vdc 0" || return 1
  # B: the secondary stalls and the application never flushes: the ring fills
  #    with records no flush made durable (9.5 MiB of its 12, more than the
  #    8 MiB a load zeroes past the head), then overflows into the bitmap.
  kill -STOP $SEC
  SEC_PAUSED=1
  first=2000001
  while [ "$(field 1)" = journal ] && [ "$(field 4)" -lt $((19 << 19)) ]; do
    hrl-blockio run --device /dev/mapper/hrl0 --seed "$SEED" --journal /tmp/out/journal --first-id $first \
      --ops 40 --depth 4 --flush-ratio 0 --fua-ratio 0 >/tmp/app.out 2>&1 || { cat /tmp/app.out; fail "phase B"; return 1; }
    first=$((first + 1000))
  done
  barriers_during_app $NEXT_BARRIER 0 "0" || return 1
  run_app 2100001 --ops $((500 + 300 * long)) --rate 150 --flush-ratio 0 --fua-ratio 0
  barriers_during_app $NEXT_BARRIER 1 "0 0 $( [ $long = 1 ] && echo '0 0')" || return 1
  wait $WL || { cat /tmp/app.out; fail "the application, phase B"; return 1; }
  echo "AFTER-B: $(status)"
  # C: the secondary is back: the bitmap goes to a resync while the application writes.
  SEC_PAUSED=0
  kill -CONT $SEC
  run_app 3000001 --ops $((1200 + 1200 * long)) --rate 150
  barriers_during_app $NEXT_BARRIER 1 "1 1 0 1 $( [ $long = 1 ] && echo '1 0 1 1')" || return 1
  wait $WL || { cat /tmp/app.out; fail "the application, phase C"; return 1; }

  echo "BARRIERS: $((NEXT_BARRIER - 1))"
  kill $PRI $SEC
  wait $PRI $SEC
  $S points db0 2>/dev/null | tail -3
  dmsetup remove hrl0 && dmsetup remove xdata && dmsetup remove xlog && dmsetup remove xrep ||
    fail "remove the devices" || return 1
  tar cf /dev/vdf -C /tmp/out . || fail "write the recording out" || return 1
  sync
  echo "RECORDED: $((NEXT_BARRIER - 1)) barriers"
}

# Whether the pair has converged: the target in journal mode with nothing
# dirty or pending, its log acknowledged to the head, the secondary holding
# every record and no resync left.
converged() {
  [ "$(field 1)" = journal ] && [ "$(field 6)" = 0 ] && [ "$(field 10)" = - ] &&
    [ "$(field 3)" = "$(field 2)" ] && [ "$(durable)" = "$(( $(field 2) - 1 ))" ] &&
    ! grep -q '"resync"' /var/lib/hrl/db0.state
}

# build_points I WHICH: builds the image of each point WHICH lists ("all", or
# "ends": the oldest and the newest) on vdc; prints how many built.
build_points() {
  ids=$($S points db0 2>/dev/null | awk 'NR > 1 { print $1 }')
  [ "$2" = ends ] && ids=$(printf '%s\n' $ids | sed -n '1p;$p' | sort -u)
  listed=0 built=0
  for id in $ids; do
    listed=$((listed + 1))
    if $S failover db0 --test --point "$id" --image /dev/vdc >/tmp/tf 2>&1; then
      built=$((built + 1))
    else
      echo "STATE $1 POINT $id: $(tail -1 /tmp/tf)"
    fi
    $S failover db0 --cleanup >/dev/null 2>&1
  done
  echo "$listed listed, $built built"
}

# Seconds since boot, for the timings of each step.
now() { cut -d' ' -f1 /proc/uptime; }

# check_state I K OFFSET: crash state I (barrier K) at sector OFFSET of vda.
check_state() {
  i=$1 k=$2 off=$3 t0=$(now)
  echo "0 $DATA_SECTORS linear /dev/vda $off" | dmsetup create xdata &&
    echo "0 $LOG_SECTORS linear /dev/vda $((off + DATA_SECTORS))" | dmsetup create xlog &&
    echo "0 $DATA_SECTORS linear /dev/vda $((off + DATA_SECTORS + LOG_SECTORS))" | dmsetup create xrep ||
    fail "state $i: map its devices" || return 1
  rm -rf /var/lib/hrl
  mkdir -p /var/lib/hrl
  tar xf /in/state-$k.tar -C /var/lib/hrl || fail "state $i: the secondary's state $k" || return 1
  if ! echo "0 $DATA_SECTORS hrl /dev/mapper/xdata /dev/mapper/xlog" | dmsetup create hrl0 2>/tmp/err; then
    echo "STATE $i LOAD-FAILED: $(cat /tmp/err) $(dmesg | grep hrl | tail -2 | tr '\n' ' ')"
    dmsetup remove xdata; dmsetup remove xlog; dmsetup remove xrep
    return 0
  fi
  echo "STATE $i LOADED: $(status) secondary-durable $(durable)"
  hrld --config /etc/hrl/crash-secondary-quiet.toml 2>/tmp/s.log &
  sec=$!
  n=0
  while [ $n -lt 100 ] && ! [ -S /run/hrl/secondary.sock ]; do usleep 50000; n=$((n + 1)); done
  # the points the secondary lists when the power came back build their images
  echo "STATE $i POINTS-BEFORE: $(build_points "$i" ends)"
  t1=$(now)
  $CRASH_PRIMARY 2>/tmp/p.log &
  pri=$!
  # the application goes on after the power came back
  hrl-blockio run --device /dev/mapper/hrl0 --seed $((SEED + i)) --first-id 9000001 --ops 30 --depth 4 \
    > /tmp/post.out 2>&1 || echo "STATE $i POST-WRITES-FAILED: $(cat /tmp/post.out)"
  verdict=timeout
  t=0
  while [ $t -lt 1200 ]; do
    if converged; then verdict=converged; break; fi
    if $P status 2>/dev/null | grep -q critical; then verdict=critical; break; fi
    usleep 50000
    t=$((t + 1))
  done
  t2=$(now)
  echo "STATE $i END: $verdict: $(status) durable $(durable)"
  grep -hE "starting|resuming|CRITICAL|corrupt|continuity|rebase|refused|done in" /tmp/p.log /tmp/s.log |
    cut -c25- | sed "s/^/STATE $i HRLD: /"
  kill $pri
  wait $pri
  echo "STATE $i POINTS: $(build_points "$i" all)"
  kill $sec
  wait $sec
  rm -f /run/hrl/*.sock
  dmsetup remove hrl0 && dmsetup remove xdata && dmsetup remove xlog && dmsetup remove xrep ||
    fail "state $i: remove its devices" || return 1
  echo "STATE $i DONE: $(awk -v a="$t0" -v b="$t1" -v c="$t2" '{ printf "%.1f s (points %.1f, meeting %.1f)", $1 - a, b - a, c - b }' /proc/uptime)"
}

scenario_crash_check() {
  ip link set lo up
  mkdir -p /run/hrl /in
  tar xf /dev/vdb -C /in || fail "read the states" || return 1
  . /in/geometry  # DATA_SECTORS, LOG_SECTORS
  while read -r i k off; do
    check_state "$i" "$k" "$off" || return 1
  done < /in/manifest
  echo "CHECKED: $(wc -l < /in/manifest) states"
}
