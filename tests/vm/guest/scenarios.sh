# Scenarios run inside the guest by /init. Disks: vda data, vdb log, vdc spare (the replica), vdd (points: images).
# The host formats the log before the boot and checks the images after it;
# these functions do the kernel's part and print what the host needs.
# A line "CHECK: <what>" is a fact the host asserts; "fail <why>" ends the run.

# Every check has one shape: CONDITION || fail "why" || return 1, and a
# refusal is checked as ! COMMAND || fail "why" || return 1. fail also leaves a
# mark that /init turns into "RESULT: FAIL", and the host fails any console
# that shows GUEST-FAIL, so a check cannot pass by falling through.
fail() { echo "GUEST-FAIL: $*"; : > /tmp/guest-failed; return 1; }
# Seeded bytes in place of /dev/urandom: the run replays from hrl.seed=.
# put BS COUNT SEEK [DEV] writes COUNT blocks of BS bytes at block SEEK.
RND=0
seeded() { RND=$((RND + 1)); hrl-blockio fill --seed $((SEED * 1000 + RND)) --bytes "$1"; }
put() { seeded $(($1 * $2)) | dd of="${4:-/dev/mapper/hrl0}" bs="$1" count="$2" seek="$3" iflag=fullblock oflag=direct 2>/dev/null; }
sect() { blockdev --getsz "$1"; }
create() { echo "0 $(sect /dev/vda) hrl /dev/vda /dev/vdb" | dmsetup create hrl0; }
status() { dmsetup status hrl0 | cut -d' ' -f4-; }
field() { status | cut -d' ' -f"$1"; }  # 1 mode 2 head 3 tail 4 used 5 ring 6 dirty 7 resync 8 take 9 reason 10 flags
flushes() { awk -v d="$1" '$3 == d { print $19 }' /proc/diskstats; }  # flushes completed

# 1. Replay equivalence under fio: random and sequential writes, 4 KiB to 1 MiB, iodepth 16, verified.
scenario_replay() {
  create || return 1
  fio --name=rand --filename=/dev/mapper/hrl0 --direct=1 --ioengine=libaio --iodepth=16 \
      --rw=randwrite --bssplit=4k/40:16k/20:64k/20:256k/10:1m/10 --size=24m --offset=0 \
      --verify=crc32c --do_verify=1 --randseed=$SEED --output-format=terse >/tmp/fio1 || fail "fio random" || return 1
  fio --randseed=$SEED --name=seq --filename=/dev/mapper/hrl0 --direct=1 --ioengine=libaio --iodepth=16 \
      --rw=write --bs=1m --size=16m --offset=24m --verify=crc32c --do_verify=1 \
      --output-format=terse >/tmp/fio2 || fail "fio sequential" || return 1
  # Overlapping writes in flight: 4-64 KiB at random in 256 KiB, no random map,
  # iodepth 16. The log must keep the order in which the data landed.
  fio --randseed=$SEED --name=overlap --filename=/dev/mapper/hrl0 --direct=1 --ioengine=libaio --iodepth=16 \
      --rw=randwrite --bsrange=4k-64k --norandommap --size=256k --offset=40m --number_ios=6000 \
      --output-format=terse >/tmp/fio3 || fail "fio overlapping" || return 1
  echo "CHECK: fio verify passed"
  echo "STATUS: $(status)"
  [ "$(field 1)" = journal ] || fail "mode $(field 1)" || return 1
  dmsetup remove hrl0
}

# 2. FLUSH and FUA reach both devices, and the log records them.
scenario_flush_fua() {
  create || return 1
  for d in vda vdb; do echo "cache $d: $(cat /sys/block/$d/queue/write_cache)"; done
  a0=$(flushes vda) b0=$(flushes vdb)
  seeded 16k | dd of=/dev/mapper/hrl0 bs=4k count=4 seek=100 iflag=fullblock conv=fsync 2>/dev/null || fail "write and fsync" || return 1
  a1=$(flushes vda) b1=$(flushes vdb)
  echo "flushes after fsync: vda $a0 -> $a1, vdb $b0 -> $b1"
  [ "$a1" -gt "$a0" ] && [ "$b1" -gt "$b0" ] || fail "a flush did not reach both devices" || return 1
  fio --randseed=$SEED --name=fua --filename=/dev/mapper/hrl0 --rw=write --bs=4k --size=4k --offset=800k \
      --direct=1 --sync=1 --ioengine=psync --output-format=terse >/dev/null || fail "O_SYNC write" || return 1
  a2=$(flushes vda) b2=$(flushes vdb)
  echo "flushes after O_DSYNC write: vda $a1 -> $a2, vdb $b1 -> $b2"
  [ "$a2" -gt "$a1" ] && [ "$b2" -gt "$b1" ] || fail "a FUA write was not durable on both devices" || return 1
  echo "CHECK: flush and FUA reached both devices"
  dmsetup remove hrl0
}

# 3. Discards are journaled (and the host replays them).
scenario_discard() {
  create || return 1
  put 1048576 8 0 || fail "write 8 MiB" || return 1
  blkdiscard -o $((2 << 20)) -l $((1 << 20)) /dev/mapper/hrl0 || fail "blkdiscard" || return 1
  put 4096 2 1000 || fail "write after the discard" || return 1  # after, outside the hole
  echo "STATUS: $(status)"
  dmsetup remove hrl0
}

# 4a. A 1 MiB ring overflows: bitmap mode, reported; the bitmap survives removal.
scenario_overflow() {
  create || return 1
  seeded $((600 * 4096)) > /tmp/blocks
  i=0
  while [ $i -lt 600 ]; do  # 600 4 KiB writes, block 7i mod 8192: 2.7 MiB with headers
    dd if=/tmp/blocks of=/dev/mapper/hrl0 bs=4k count=1 skip=$i seek=$(( (i * 7) % 8192 )) oflag=direct 2>/dev/null ||
      fail "write $i" || return 1
    i=$((i + 1))
  done
  echo "STATUS: $(status)"
  [ "$(field 1)" = bitmap ] && [ "$(field 9)" = ring-overflow ] || fail "not in bitmap mode" || return 1
  [ "$(field 6)" -gt 0 ] || fail "no dirty blocks" || return 1
  # dm events: the fill levels (50, 75, 90%) and the switch to bitmap mode
  events=$(dmsetup info -c --noheadings -o events hrl0)
  echo "EVENTS: $events"
  [ "$events" -ge 2 ] || fail "no dm event for the fill levels and the mode change" || return 1
  echo "DIRTY: $(field 6)"
  ! dmsetup message hrl0 0 mark refused-in-bitmap-mode || fail "a mark was accepted in bitmap mode" || return 1
  dmsetup remove hrl0
}

# 4b. Reloaded: still bitmap mode with the same bits; ack + take_bitmap: journal mode again.
scenario_overflow_handover() {
  create || return 1
  echo "STATUS-RELOAD: $(status)"
  head=$(field 2)
  dmsetup message hrl0 0 ack $((head - 1)) || fail "ack" || return 1
  echo "AFTER-ACK: $(status)"
  echo "TAKE: $(dmsetup message hrl0 0 take_bitmap)"
  echo "AFTER-TAKE: $(status)"
  [ "$(field 1)" = journal ] || fail "still $(field 1) after ack and take_bitmap" || return 1
  put 4096 1 5 || fail "write after the handover" || return 1
  [ "$(field 2)" -gt "$head" ] || fail "the write after the handover was not journaled" || return 1
  echo "AFTER-WRITE: $(status)"
  dmsetup remove hrl0
}

# 5a. Writes, then the host kills qemu in the middle of them.
scenario_crash() {
  create || return 1
  put 65536 16 0
  echo "HRL-KILL-ME-NOW"
  seeded 4M > /tmp/blocks
  i=0
  while true; do
    dd if=/tmp/blocks of=/dev/mapper/hrl0 bs=64k count=1 skip=$((i % 64)) seek=$((i % 512)) oflag=direct 2>/dev/null
    i=$((i + 1))
  done
}

# 5b. The next load after the crash: the host checks what it resyncs.
scenario_after_crash() {
  create || return 1
  echo "STATUS-AFTER-CRASH: $(status)"
  # the whole device, or (an activity log) the extents with writes in flight
  [ "$(field 9)" = unclean-shutdown ] && { [ "$(field 1)" = resync-required ] || [ "$(field 6)" -gt 0 ]; } ||
    fail "no resync after the crash (unclean-shutdown)" || return 1
  dmsetup remove hrl0
}

# 6. ack frees space and survives reload; bad tables and messages get clear errors.
scenario_ack_errors() {
  create || return 1
  put 4096 8 0 || fail "write 8 blocks" || return 1
  echo "BEFORE-ACK: $(status)"
  used=$(field 4)
  dmsetup message hrl0 0 ack 4 || fail "ack 4" || return 1
  echo "AFTER-ACK: $(status)"
  [ "$(field 3)" = 5 ] && [ "$(field 4)" -lt "$used" ] || fail "ack did not free space" || return 1
  echo "MARK: $(dmsetup message hrl0 0 mark before-upgrade)"
  for m in "ack 999999999" "ack banana" "frobnicate" "mark" "end_resync"; do
    ! dmsetup message hrl0 0 $m 2>/dev/null || fail "message '$m' was accepted" || return 1
    echo "REFUSED-MESSAGE: $m"
  done
  dmsetup remove hrl0
  create || return 1
  echo "RELOADED: $(status)"
  [ "$(field 3)" = 5 ] || fail "tail did not survive the reload" || return 1
  dmsetup remove hrl0
  n=$(sect /dev/vda)
  for t in "0 $n hrl /dev/vda" "0 $((n - 8)) hrl /dev/vda /dev/vdb" "0 $n hrl /dev/vda /dev/vdc" \
           "0 $n hrl /dev/vda /dev/vda" "0 $n hrl /dev/vda /dev/vdb 1 bogus" "0 $n hrl /dev/nothere /dev/vdb"; do
    ! echo "$t" | dmsetup create bad 2>/dev/null || fail "table '$t' was accepted" || return 1
    echo "REFUSED-TABLE: $t"
  done
  echo "CHECK: the kernel is still alive"
}

# 7. Overlapping writes are serialized: with the data device's writes held
#    3 s by dm-delay, a write overlapping one in flight gets no record until
#    that one completes; a write elsewhere gets its record at once.
scenario_overlap() {
  n=$(sect /dev/vda)
  echo "0 $n delay /dev/vda 0 0 /dev/vda 0 3000" | dmsetup create slow || fail "dm-delay" || return 1
  echo "0 $n hrl /dev/mapper/slow /dev/vdb" | dmsetup create hrl0 || return 1
  for w in A B C; do seeded 4k > /tmp/$w; echo "SHA-$w: $(sha256sum < /tmp/$w | cut -c1-64)"; done
  dd if=/tmp/A of=/dev/mapper/hrl0 bs=4k count=1 seek=10 oflag=direct 2>/dev/null &  # A
  usleep 500000
  dd if=/tmp/B of=/dev/mapper/hrl0 bs=4k count=1 seek=10 oflag=direct 2>/dev/null &  # B overlaps A
  usleep 500000
  dd if=/tmp/C of=/dev/mapper/hrl0 bs=4k count=1 seek=99 oflag=direct 2>/dev/null &  # C elsewhere
  usleep 500000
  echo "WHILE-A-IN-FLIGHT: $(status)"
  [ "$(field 2)" = 3 ] || fail "expected records for A and C only (next seq 3), status $(status)" || return 1
  wait
  echo "AFTER: $(status)"
  [ "$(field 2)" = 4 ] || fail "B was not journaled after A" || return 1
  [ "$(dd if=/dev/mapper/hrl0 bs=4k count=1 skip=10 2>/dev/null | sha256sum | cut -c1-64)" = \
    "$(sha256sum < /tmp/B | cut -c1-64)" ] || fail "block 10 does not hold B, the last write" || return 1
  dmsetup remove hrl0
  dmsetup remove slow
}

# The benchmark of make bench (bench/vm-targets.py): the same fio jobs on
# dm-linear, dm-log-writes and dm-hrl over the same disks, in one boot.
bench_fio() {  # target label, job
  case $2 in
    rand) args="--rw=randwrite --bs=4k --iodepth=16 --size=96m --runtime=${HRL_BENCH_SECONDS:-8} --time_based" ;;
    seq) args="--rw=write --bs=1m --iodepth=16 --size=64m" ;;
  esac
  echo "BENCH-JSON-BEGIN $1 $2"
  fio --randseed="$SEED" --name="$1-$2" --filename=/dev/mapper/bench --direct=1 --ioengine=libaio --output-format=json $args
  echo "BENCH-JSON-END"
}
scenario_bench() {
  n=$(sect /dev/vda)
  echo "BENCH-CLOCKSOURCE: $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)"
  # dm-hrl's logs (activity log of 256 extents, of 8, none) under dm-linear,
  # so a crash can be made by failing their writes
  for d in vdb vdd vde; do
    echo "0 $(sect /dev/$d) linear /dev/$d 0" | dmsetup create "log-$d" || fail "log-$d" || return 1
  done
  for target in linear log-writes hrl hrl-al8 hrl-noal; do
    log=
    case $target in
      linear) table="0 $n linear /dev/vda 0" ;;
      log-writes) table="0 $n log-writes /dev/vda /dev/vdc" ;;
      hrl) log=log-vdb ;;
      hrl-al8) log=log-vdd ;;
      hrl-noal) log=log-vde ;;
    esac
    [ -n "$log" ] && table="0 $n hrl /dev/vda /dev/mapper/$log"
    for job in rand seq; do
      echo "$table" | dmsetup create bench || fail "create $target" || return 1
      bench_fio "$target" "$job"
      [ -n "$log" ] && echo "BENCH-STATUS: $(dmsetup status bench)"
      t0=$(cut -d' ' -f1 /proc/uptime)
      dmsetup remove bench  # waits for work the target deferred (log-writes' log kthread)
      echo "BENCH-REMOVE $target $job $(awk -v a="$t0" '{ printf "%.2f", $1 - a }' /proc/uptime)"
      # start each run from an empty log, as dm-log-writes does
      [ -n "$log" ] && dmsetup create ack --table "$table" && \
        dmsetup message ack 0 ack $(( $(dmsetup status ack | cut -d' ' -f5) - 1 )) 2>/dev/null; dmsetup remove ack 2>/dev/null
    done
    [ -n "$log" ] || continue
    # A crash under random writes: the log stops taking writes (so the
    # removal's clean superblock is lost), the next load says what it resyncs.
    echo "$table" | dmsetup create bench || fail "create $target" || return 1
    fio --randseed="$SEED" --name=crash --filename=/dev/mapper/bench --direct=1 --ioengine=libaio --rw=randwrite \
      --bs=4k --iodepth=16 --size=96m --runtime=4 --time_based >/dev/null
    swap_table "$log" "0 $(sect /dev/mapper/$log) flakey $(dmsetup table $log | cut -d' ' -f4) 0 0 1 1 error_writes" ||
      fail "fail the log" || return 1
    dmsetup remove bench
    swap_table "$log" "0 $(sect /dev/mapper/$log) linear $(dmsetup table $log | cut -d' ' -f4) 0" || fail "restore the log" || return 1
    echo "$table" | dmsetup create bench || fail "load after the crash" || return 1
    echo "BENCH-CRASH $target $(dmsetup status bench | cut -d' ' -f4-)"
    dmsetup remove bench
  done
  return 0
}

# 8. A log written by userspace (LogWriter, 1 MiB records) loads in the
#    target as it is, and the target goes on appending to it.
scenario_interop() {
  create || return 1
  echo "LOADED: $(status)"
  [ "$(field 1)" = journal ] && [ "$(field 9)" = none ] || fail "the userspace log did not load cleanly" || return 1
  put 65536 4 3 || fail "append" || return 1
  echo "APPENDED: $(status)"
  dmsetup remove hrl0
}

# 9. dm-hrl, a primary and a secondary hrld on the guest's loopback: an fio
#    workload replicates to vdc; hrld acknowledges through "ack" messages.
scenario_replicate() {
  ip link set lo up
  mkdir -p /run/hrl /var/lib/hrl
  hrlctl volume create db0 --data /dev/vda --log /dev/vdb --assume-in-sync || fail "hrlctl volume create" || return 1
  dmsetup rename hrl-db0 hrl0 || return 1  # the helpers of this file look at hrl0
  hrld --config /etc/hrl/secondary.toml 2>/tmp/secondary.log &
  hrld --config /etc/hrl/primary.toml 2>/tmp/primary.log &
  fio --randseed=$SEED --name=rand --filename=/dev/mapper/hrl0 --direct=1 --ioengine=libaio --iodepth=16 \
      --rw=randwrite --bssplit=4k/50:64k/30:1m/20 --size=16m --verify=crc32c --do_verify=1 \
      --output-format=terse >/tmp/fio1 || fail "fio" || return 1
  fio --randseed=$SEED --name=seq --filename=/dev/mapper/hrl0 --direct=1 --ioengine=libaio --iodepth=16 \
      --rw=write --bs=1m --size=16m --offset=24m --output-format=terse >/tmp/fio2 || fail "fio" || return 1
  caught_up_and_stopped || return 1  # the tail at the head, every record durable on the secondary
  ! grep -q "starting checksum" /tmp/primary.log || fail "the ring overflowed: writes went to the bitmap" || return 1
  dmsetup rename hrl0 hrl-db0 && hrlctl volume remove db0 || fail "hrlctl volume remove" || return 1
}

# Helpers of scenarios 9 to 11 (the first for 10 and 11). A volume db0 (ring $1) seen as hrl0, equal
# to the replica; the pair meets (the secondary records the volume), then the
# primary's hrld goes away.
pair_then_primary_away() {
  ip link set lo up
  mkdir -p /run/hrl /var/lib/hrl
  hrlctl volume create db0 --data /dev/vda --log /dev/vdb --ring-size "$1" --assume-in-sync ||
    fail "hrlctl volume create" || return 1
  dmsetup rename hrl-db0 hrl0 || return 1
  hrld --config /etc/hrl/secondary.toml 2>/tmp/secondary.log &
  hrld --config /etc/hrl/primary.toml 2>/tmp/primary0.log &
  primary=$!
  i=0
  while [ $i -lt 300 ] && ! [ -f /var/lib/hrl/db0.state ]; do usleep 100000; i=$((i + 1)); done
  kill $primary
  wait $primary
}

# Waits for the target in journal mode with nothing dirty or pending and the
# replica holding every record, past any resync; stops both daemons; checks.
caught_up_and_stopped() {
  i=0
  while [ $i -lt 1200 ]; do
    got=$(sed -n 's/.*"durable_seq": \([0-9]*\).*/\1/p' /var/lib/hrl/db0.state 2>/dev/null)
    if [ "$(field 1)" = journal ] && [ "$(field 6)" = 0 ] && [ "$(field 10)" = - ] &&
       [ "$got" = "$(( $(field 2) - 1 ))" ] && [ "$(field 3)" = "$(field 2)" ] &&
       ! grep -q '"resync"' /var/lib/hrl/db0.state; then
      break
    fi
    usleep 100000
    i=$((i + 1))
  done
  echo "AFTER: $(status) DURABLE: ${got:-none}"
  hrlctl --socket /run/hrl/primary.sock status
  killall hrld
  wait
  sed 's/^/hrld: /' /tmp/primary.log /tmp/secondary.log | tail -20
  [ "$(field 1)" = journal ] || fail "the target ends in $(field 1) mode" || return 1
  [ "$(field 6)" = 0 ] && [ "$(field 10)" = - ] || fail "dirty blocks or a pending resync are left" || return 1
  [ "$got" = "$(( $(field 2) - 1 ))" ] || fail "the secondary holds ${got:-nothing} of $(( $(field 2) - 1 ))" || return 1
  [ "$(field 3)" = "$(field 2)" ] || fail "the log was not acknowledged to its head: $(status)" || return 1
  ! grep -q '"resync"' /var/lib/hrl/db0.state || fail "the secondary still records a resync" || return 1
}

# 10. The ring overflows into bitmap mode while the primary's hrld is away;
#    once it runs, it hands the bitmap to a checksum resync (take_bitmap),
#    more writes land during the pass, and the target returns to journal mode
#    with the replica equal to the data device (the host compares vda, vdc).
scenario_resync() {
  pair_then_primary_away 2M || return 1
  fio --randseed=$SEED --name=fill --filename=/dev/mapper/hrl0 --direct=1 --ioengine=libaio --iodepth=16 \
      --rw=randwrite --bssplit=4k/60:64k/40 --size=40m --output-format=terse >/tmp/fio1 || fail "fio" || return 1
  echo "BEFORE: $(status)"
  [ "$(field 1)" = bitmap ] && [ "$(field 6)" -gt 0 ] || fail "the ring did not overflow into bitmap mode" || return 1
  hrld --config /etc/hrl/primary.toml 2>/tmp/primary.log &
  fio --randseed=$SEED --name=during --filename=/dev/mapper/hrl0 --direct=1 --ioengine=libaio --iodepth=4 \
      --rw=randwrite --bs=4k --size=2m --offset=8m --output-format=terse >/tmp/fio2 || fail "fio" || return 1
  caught_up_and_stopped || return 1
  grep -q "starting checksum (ring-overflow)" /tmp/primary.log || fail "no resync of the ring overflow" || return 1
  # Every pass compares the bitmap's chunks, never the whole device ("N MiB to compare").
  whole=$(( $(sect /dev/vda) / 2048 ))
  sed -n 's/.*: \([0-9]*\) MiB to compare.*/\1/p' /tmp/primary.log > /tmp/passes
  echo "PASSES (MiB): $(cat /tmp/passes | tr '\n' ' ')of $whole"
  [ -s /tmp/passes ] || fail "no resync pass was logged" || return 1
  ! grep -qx "$whole" /tmp/passes || fail "a whole-device resync where the bitmap was enough" || return 1
  ! grep -q "new-volume" /tmp/primary.log || fail "a new-volume resync where the bitmap was enough" || return 1
  dmsetup rename hrl0 hrl-db0 && hrlctl volume remove db0 || fail "hrlctl volume remove" || return 1
}

# 11. A record in the ring is damaged on the log device while the primary's
#    hrld is away: it ships the records before it, then hands the whole device
#    to a checksum resync (request_resync, take_bitmap), releases the
#    unreadable records and goes on from take_seq. The host compares vda, vdc.
scenario_corrupt() {
  pair_then_primary_away 8M || return 1
  put 65536 32 16 || fail "write 2 MiB" || return 1
  ring=$(hrl-log dump --json /dev/vdb | sed -n 's/.*"ring_offset": \([0-9]*\).*/\1/p' | head -1)
  tail=$(hrl-log dump --json /dev/vdb | sed -n 's/.*"tail_offset": \([0-9]*\).*/\1/p' | head -1)
  echo "BEFORE: $(status) RING: $ring TAIL: $tail"
  # the 10th record of 64 KiB and its header: inside its payload
  seeded 4k | dd of=/dev/vdb bs=512 count=8 iflag=fullblock seek=$(( (ring + tail) / 512 + 9 * 129 + 40 )) \
     oflag=direct conv=notrunc 2>/dev/null || fail "damage the log" || return 1
  hrl-log verify /dev/vdb  # past the persisted head, damage reads as a torn end
  hrld --config /etc/hrl/primary.toml 2>/tmp/primary.log &
  put 4096 64 4000 || fail "write during the resync" || return 1
  caught_up_and_stopped || return 1
  grep -q "the log is corrupt" /tmp/primary.log || fail "the damage went unnoticed" || return 1
  grep -q "starting checksum (log-corrupt)" /tmp/primary.log || fail "no whole-device resync" || return 1
  dmsetup rename hrl0 hrl-db0 && hrlctl volume remove db0 || fail "hrlctl volume remove" || return 1
}

# 12. Recovery points of a file system: ext4 (made by the host on vda and its
#     replica vdc) on dm-hrl under a file workload; app-consistent points
#     (FIFREEZE, a MARK, thaw) and crash-consistent ones every second. Each
#     point's test failover image (on vdd) mounts, passes e2fsck -fn, and an
#     app-consistent one holds the file written just before its freeze.
scenario_points() {
  ip link set lo up
  mkdir -p /run/hrl /var/lib/hrl /mnt /img
  hrlctl volume create db0 --data /dev/vda --log /dev/vdb --assume-in-sync || fail "hrlctl volume create" || return 1
  dmsetup rename hrl-db0 hrl0 || return 1
  hrld --config /etc/hrl/secondary.toml 2>/tmp/secondary.log &
  hrld --config /etc/hrl/primary.toml 2>/tmp/primary.log &
  mount -t ext4 /dev/mapper/hrl0 /mnt || fail "mount the volume" || return 1
  fio --randseed=$SEED --name=files --directory=/mnt --nrfiles=16 --filesize=256k --rw=randwrite --bs=4k --ioengine=psync \
      --fsync=8 --time_based --runtime=8 --output-format=terse >/tmp/fio1 &
  fio=$!
  for n in 1 2; do
    sleep 3
    echo "written before app$n" > /mnt/before-app$n
    hrlctl --socket /run/hrl/primary.sock point create db0 --name app$n --freeze /mnt --timeout 20 ||
      fail "point create app$n" || return 1
  done
  wait $fio || fail "fio" || return 1
  umount /mnt
  i=0
  while [ $i -lt 600 ]; do
    got=$(sed -n 's/.*"durable_seq": \([0-9]*\).*/\1/p' /var/lib/hrl/db0.state 2>/dev/null)
    [ "$got" = "$(( $(field 2) - 1 ))" ] && break
    usleep 100000
    i=$((i + 1))
  done
  hrlctl --socket /run/hrl/secondary.sock points db0 | tee /tmp/points
  ids=$(awk 'NR > 1 { print $1 }' /tmp/points)
  [ -n "$ids" ] || fail "no points" || return 1
  crash=0 app=0
  for id in $ids; do
    kind=$(awk -v id="$id" '$1 == id { print $3 }' /tmp/points)
    name=$(awk -v id="$id" '$1 == id { print $6 }' /tmp/points)  # TAKEN is a date and a time
    hrlctl --socket /run/hrl/secondary.sock failover db0 --test --point "$id" --image /dev/vdd >/tmp/tf ||
      { cat /tmp/tf; fail "test failover of point $id"; return 1; }
    mount -t ext4 /dev/vdd /img || fail "the image of point $id ($kind) does not mount" || return 1
    if [ "$kind" = app-consistent ]; then
      [ "$(cat /img/before-$name)" = "written before $name" ] ||
        fail "the image of app point $name lacks the file written before its freeze" || return 1
      app=$((app + 1))
    else
      crash=$((crash + 1))
    fi
    umount /img
    e2fsck -fn /dev/vdd >/tmp/fsck 2>&1 || { cat /tmp/fsck; fail "e2fsck of point $id ($kind)"; return 1; }
    hrlctl --socket /run/hrl/secondary.sock failover db0 --cleanup >/dev/null || fail "cleanup" || return 1
  done
  echo "CHECK: $app app-consistent and $crash crash-consistent points: each image mounts and passes e2fsck -fn"
  [ $app -eq 2 ] && [ $crash -ge 3 ] || fail "expected 2 app-consistent points and at least 3 crash-consistent" || return 1
  killall hrld
  wait
}

# Waits until the replica whose state is in $2 holds every record of dm device $1.
caught_up_with() {
  i=0
  while [ $i -lt 900 ]; do
    head=$(dmsetup status "$1" | cut -d' ' -f5)
    got=$(sed -n 's/.*"durable_seq": \([0-9]*\).*/\1/p' "$2/db0.state" 2>/dev/null)
    [ "$got" = "$((head - 1))" ] && return 0
    usleep 100000
    i=$((i + 1))
  done
  fail "$2 holds ${got:-nothing} of $((head - 1)) records of $1"
}

# 13. Planned failover and failback with dm-hrl on both sites (two hrld in the
#     guest): site-a (vda, log vdb) hands over to site-b (vdc, log vdd), which
#     maps its own device and takes the writes; failback brings them home.
#     The host compares vda and vdc.
scenario_failover() {
  ip link set lo up
  mkdir -p /run/hrl /var/lib/hrl-a /var/lib/hrl-b
  hrlctl volume create db0 --data /dev/vda --log /dev/vdb --assume-in-sync || fail "hrlctl volume create" || return 1
  hrld --config /etc/hrl/site-a.toml 2>/tmp/a.log &
  hrld --config /etc/hrl/site-b.toml 2>/tmp/b.log &
  write() {
    fio --randseed=$SEED --name="$2" --filename="/dev/mapper/$1" --direct=1 --ioengine=libaio --iodepth=8 --rw=randwrite \
        --bssplit=4k/70:64k/30 --size=8m --offset="$3" --output-format=terse >/dev/null || fail "fio on $1"
  }
  a=/run/hrl/primary.sock b=/run/hrl/secondary.sock
  write hrl-db0 a1 0 && caught_up_with hrl-db0 /var/lib/hrl-b || return 1
  exec 3</dev/mapper/hrl-db0  # the application still holds the volume
  ! hrlctl --socket $a failover db0 --planned >/tmp/out 2>&1 || fail "a planned failover of a volume in use" || return 1
  grep -q "is in use" /tmp/out || { cat /tmp/out; fail "no clear refusal"; return 1; }
  exec 3<&-
  hrlctl --socket $a failover db0 --planned || { sed 's/^/hrld: /' /tmp/a.log /tmp/b.log | tail; fail "planned failover"; return 1; }
  [ -b /dev/mapper/hrl-db0b ] && ! [ -e /dev/mapper/hrl-db0 ] || fail "site-b did not take the volume over" || return 1
  echo "CHECK: site-b maps hrl-db0b; $(hrlctl --socket $b status | tail -1)"
  write hrl-db0b b1 16m && caught_up_with hrl-db0b /var/lib/hrl-a || return 1
  ! hrlctl --socket $a failback db0 >/tmp/out 2>&1 || fail "a failback from the site that is not primary" || return 1
  hrlctl --socket $b failback db0 || { sed 's/^/hrld: /' /tmp/a.log /tmp/b.log | tail; fail "failback"; return 1; }
  [ -b /dev/mapper/hrl-db0 ] && ! [ -e /dev/mapper/hrl-db0b ] || fail "site-a did not take the volume back" || return 1
  write hrl-db0 a2 32m && caught_up_with hrl-db0 /var/lib/hrl-b || return 1
  ! grep -h "starting checksum" /tmp/a.log /tmp/b.log || fail "a resync ran: failover and failback must not need one" || return 1
  echo "CHECK: failover and failback without a resync"
  killall hrld
  wait
  dmsetup remove hrl-db0
}

# make demo (tools/demo): the whole job on one guest, told step by step.
# "hrl.fast=1" on the command line shortens the workload (make check).
scenario_demo() {
  secs=40
  grep -q 'hrl.fast=1' /proc/cmdline && secs=6
  say() { echo; echo "DEMO: $*"; }
  P="hrlctl --socket /run/hrl/primary.sock" S="hrlctl --socket /run/hrl/secondary.sock"
  ip link set lo up
  mkdir -p /run/hrl /var/lib/hrl /mnt /img
  say "1. dm-hrl: volume demo, /dev/mapper/hrl-demo over vda (an ext4 file system) and vdb (its log)"
  hrlctl volume create demo --data /dev/vda --log /dev/vdb || fail "hrlctl volume create" || return 1
  say "2. the secondary hrld (replica: vdc, blank) and the primary hrld, over TLS 1.3 on loopback"
  hrld --config /etc/hrl/demo-secondary.toml 2>/tmp/secondary.log &
  sleep 1  # listening before the primary connects
  hrld --config /etc/hrl/demo-primary.toml 2>/tmp/primary.log &
  say "3. the file system mounted; fio writes 16 files at 1 MiB/s for $secs s (fsync every 8 writes)"
  mount -t ext4 /dev/mapper/hrl-demo /mnt || fail "mount" || return 1
  fio --randseed=$SEED --name=app --directory=/mnt --nrfiles=16 --filesize=512k --rw=randwrite --bs=4k --ioengine=psync \
      --fsync=8 --rate=1m --time_based --runtime="$secs" --output-format=terse >/tmp/fio &
  fio=$!
  say "4. hrlctl status on the primary: the new replica's initial copy (checksum resync), then the RPO"
  for i in 1 2 3; do sleep 2; $P status | tail -1; done
  say "5. hrlctl resync demo: both sites compared by checksum, only differing blocks sent"
  (set -o pipefail; $P resync demo | cat) || fail "hrlctl resync" || return 1  # plain progress lines on this console
  say "6. an app-consistent point: /mnt frozen (FIFREEZE), a MARK in the log, thawed"
  echo "written just before the point" > /mnt/before-point.txt
  $P point create demo --name demo-point --freeze /mnt || fail "hrlctl point create" || return 1
  wait $fio || fail "fio" || return 1
  say "7. the recovery points the secondary keeps"
  $S points demo
  id=$($S points demo | awk '$3 == "app-consistent" { print $1 }' | tail -1)
  [ -n "$id" ] || fail "no app-consistent point" || return 1
  say "8. a test failover of point #$id onto vdd while replication goes on, mounted"
  (set -o pipefail; $S failover demo --test --point "$id" --image /dev/vdd | cat) || fail "hrlctl failover --test" || return 1
  mount -t ext4 /dev/vdd /img || fail "mount the test failover image" || return 1
  ls -l /img | head -6
  echo "before-point.txt in the image: $(cat /img/before-point.txt)"
  umount /img
  $S failover demo --cleanup
  say "9. the workload is done; the replica catches up; the daemons stop"
  umount /mnt
  i=0
  while [ $i -lt 600 ]; do
    head=$(dmsetup status hrl-demo | cut -d' ' -f5)
    got=$(sed -n 's/.*"durable_seq": \([0-9]*\).*/\1/p' /var/lib/hrl/demo.state 2>/dev/null)
    [ "$got" = "$((head - 1))" ] && break
    usleep 100000
    i=$((i + 1))
  done
  $P status
  killall hrld
  wait
  hrlctl volume remove demo
  say "10. primary and replica, side by side"
  a=$(sha256sum </dev/vda | cut -c1-64) b=$(sha256sum </dev/vdc | cut -c1-64)
  echo "CHECKSUM primary (vda) $a"
  echo "CHECKSUM replica (vdc) $b"
  [ "$a" = "$b" ] || fail "the replica differs from the primary"
}

# 14. A log write fails on a stack that remaps bios in place (bcache over
#     dm-flakey: the completed log bio names the device under bcache). The
#     write still succeeds where the data device took it; the volume goes to
#     bitmap mode with resync-required (log-io-error) and no record goes
#     after the hole.
scenario_log_error() {
  echo "0 $(sect /dev/vdb) linear /dev/vdb 0" | dmsetup create logx || fail "dm-linear under bcache" || return 1
  make-bcache -B /dev/mapper/logx >/dev/null || fail "make-bcache" || return 1
  echo /dev/mapper/logx > /sys/fs/bcache/register 2>/dev/null
  i=0
  while [ ! -b /dev/bcache0 ] && [ $i -lt 100 ]; do usleep 50000; i=$((i + 1)); done
  [ -b /dev/bcache0 ] || fail "no /dev/bcache0" || return 1
  hrl-log format /dev/bcache0 --data /dev/vda --assume-in-sync >/dev/null || fail "format the log" || return 1
  echo "0 $(sect /dev/vda) hrl /dev/vda /dev/bcache0" | dmsetup create hrl0 || fail "dm-hrl" || return 1
  put 4096 4 0 || fail "writes before the error" || return 1
  head=$(field 2)
  echo "BEFORE: $(status)"
  swap_table logx "0 $(sect /dev/vdb) flakey /dev/vdb 0 0 1 1 error_writes" || fail "make the log's writes fail" || return 1
  put 4096 1 10 || fail "a write the data device took failed: the log's error was taken for the data's" || return 1
  echo "AFTER-ERROR: $(status)"
  [ "$(field 9)" = log-io-error ] && [ "$(field 1)" = resync-required ] ||
    fail "no resync-required (log-io-error): $(status)" || return 1
  echo "$(field 10)" | grep -q bitmap-mode || fail "not in bitmap mode after the log failed" || return 1
  head2=$(field 2)
  put 4096 3 20 || fail "writes after the error" || return 1
  [ "$(field 2)" = "$head2" ] || fail "records went after the hole: head $head2 -> $(field 2)" || return 1
  [ "$(field 6)" -ge 4 ] || fail "the writes after the error are not in the bitmap: $(status)" || return 1
  echo "CHECK: the log's error left the volume in bitmap mode, resync required, nothing after the hole"
  swap_table logx "0 $(sect /dev/vdb) linear /dev/vdb 0"
  dmsetup remove hrl0
}

# 14b. A log that fails a MARK's write: nothing waits on its sequence number
#      (an fsync, take_bitmap, ack); the volume stays in bitmap mode while the
#      log is failed, so writes never wait for a durable point that cannot
#      move; an ack past that point writes a superblock that still loads.
scenario_log_fail() {
  echo "0 $(sect /dev/vdb) linear /dev/vdb 0" | dmsetup create logy || fail "dm-linear log" || return 1
  hrl-log format /dev/mapper/logy --data /dev/vda --assume-in-sync >/dev/null || fail "format the log" || return 1
  echo "0 $(sect /dev/vda) hrl /dev/vda /dev/mapper/logy" | dmsetup create hrl0 || fail "dm-hrl" || return 1
  put 4096 4 0 || fail "writes before the error" || return 1
  swap_table logy "0 $(sect /dev/vdb) flakey /dev/vdb 0 0 1 1 error_writes" || fail "make the log's writes fail" || return 1
  ! timeout 20 dmsetup message hrl0 0 mark lost 2>/dev/null || fail "a MARK the log could not take was answered" || return 1
  echo "AFTER-MARK: $(status)"
  [ "$(field 9)" = log-io-error ] || fail "no log-io-error after the MARK failed: $(status)" || return 1
  seeded 4096 | timeout 20 dd of=/dev/mapper/hrl0 bs=4k seek=40 iflag=fullblock conv=fsync 2>/dev/null ||
    fail "an fsync after the failed MARK did not complete in 20 s" || return 1
  swap_table logy "0 $(sect /dev/vdb) linear /dev/vdb 0" ||
    fail "give the log its writes back" || return 1
  take=$(timeout 20 dmsetup message hrl0 0 take_bitmap) || fail "take_bitmap did not answer in 20 s" || return 1
  echo "TAKE: $take $(status)"
  echo "$(field 10)" | grep -q bitmap-mode || fail "back to journal mode with a failed log: $(status)" || return 1
  [ "$(field 9)" = log-io-error ] || fail "the reason went: $(status)" || return 1
  seeded $((12 << 20)) | timeout 60 dd of=/dev/mapper/hrl0 bs=64k seek=64 iflag=fullblock oflag=direct 2>/dev/null ||
    fail "12 MiB of writes without a flush did not complete in 60 s" || return 1
  timeout 20 dmsetup message hrl0 0 ack $((take - 1)) || fail "ack $((take - 1)) (the pass at $take)" || return 1
  timeout 20 dmsetup message hrl0 0 end_resync || fail "end_resync" || return 1
  # The suspend's own superblock write fails: the load finds the ack's.
  swap_table logy "0 $(sect /dev/vdb) flakey /dev/vdb 0 0 1 1 error_writes" || fail "make the log's writes fail again" || return 1
  dmsetup suspend hrl0 || fail "suspend" || return 1
  swap_table logy "0 $(sect /dev/vdb) linear /dev/vdb 0" ||
    fail "give the log its writes back" || return 1
  dmsetup resume hrl0 || fail "the log does not load after the ack: $(dmesg | tail -3)" || return 1
  echo "RELOADED: $(status)"
  [ "$(field 3)" = "$take" ] || fail "the tail is not at $take after the reload: $(status)" || return 1
  [ "$(field 9)" = unclean-shutdown ] || fail "the failed suspend did not load as unclean: $(status)" || return 1
  echo "CHECK: a failed MARK held nothing up, the volume stayed in bitmap mode, the ack's superblock loads"
  dmsetup remove hrl0
  dmsetup remove logy
}

# 15. An empty flush on a target that does not start at sector 0 of its
#     table: its FLUSH record says sector 0 (the host checks the log).
scenario_offset_flush() {
  n=$(sect /dev/vda)
  printf '0 2048 linear /dev/vdc 0\n2048 %s hrl /dev/vda /dev/vdb\n' "$n" | dmsetup create hrl0 || fail "the table" || return 1
  seeded 4k | dd of=/dev/mapper/hrl0 bs=4k count=1 seek=600 iflag=fullblock conv=fsync 2>/dev/null || fail "write and fsync" || return 1
  echo "STATUS: $(dmsetup status hrl0 | tail -1)"
  dmsetup remove hrl0
}

# 16. In bitmap mode a flush writes only the bitmap's pages that changed,
#     not both whole bitmaps: 20 writes with an fsync each, on a 4 GiB
#     device (256 KiB bitmaps), the log's written sectors counted.
scenario_bitmap_flush() {
  create || return 1
  seeded $((300 * 4096)) > /tmp/blocks
  i=0
  while [ "$(field 1)" != bitmap ] && [ $i -lt 300 ]; do
    dd if=/tmp/blocks of=/dev/mapper/hrl0 bs=4k count=1 skip=$i seek=$((i * 64)) oflag=direct 2>/dev/null ||
      fail "fill the ring" || return 1
    i=$((i + 1))
  done
  [ "$(field 1)" = bitmap ] || fail "the ring did not overflow: $(status)" || return 1
  w0=$(awk '$3 == "vdb" { print $10 }' /proc/diskstats)
  for j in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
    dd if=/tmp/blocks of=/dev/mapper/hrl0 bs=4k count=1 skip=$j seek=$((j * 8191)) conv=fsync 2>/dev/null ||
      fail "write and fsync $j" || return 1
  done
  w1=$(awk '$3 == "vdb" { print $10 }' /proc/diskstats)
  echo "LOG-SECTORS-FOR-20-FLUSHES: $((w1 - w0))"
  # a changed bitmap page and a superblock per flush, 16 sectors; both whole areas were 1024
  [ $((w1 - w0)) -le $((20 * 64)) ] || fail "20 flushes wrote $((w1 - w0)) sectors of log" || return 1
  dmsetup remove hrl0
}

# 17. Memory pressure: no swap, every page the guest can spare held by a
#     process that never gives it back, while 64 writes of up to 512 KiB are
#     in flight on dm-hrl with fsyncs. No write fails for want of memory,
#     nothing waits forever (the host fails on a stuck task), fio verifies.
scenario_memory() {
  create || return 1
  fio --randseed=$SEED --name=pressure --filename=/dev/mapper/hrl0 --direct=1 --ioengine=libaio --iodepth=64 \
      --rw=randwrite --bssplit=4k/30:64k/30:512k/40 --size=40m --fsync=16 --verify=crc32c --do_verify=1 \
      --time_based --runtime=20 --output-format=terse >/tmp/fio1 2>&1 &
  fio=$!
  sleep 3  # fio has its buffers
  hrl-blockio hog --leave 6 > /tmp/hog &
  hogpid=$!
  echo -1000 > /proc/$hogpid/oom_score_adj  # the hog stays: the pressure does not go away
  sleep 4
  echo "MEMORY: $(cat /tmp/hog); $(grep -E 'MemFree|MemAvailable' /proc/meminfo | tr -s ' ' | tr '\n' ' ')"
  wait $fio || { tail -5 /tmp/fio1; fail "fio under memory pressure"; return 1; }
  kill -0 $hogpid || fail "the memory hog was killed: no pressure was kept" || return 1
  ! dmesg | grep -q "Out of memory" || fail "the OOM killer ran: $(dmesg | grep 'Killed process' | tail -1)" || return 1
  kill $hogpid
  echo "STATUS: $(status)"
  dmsetup remove hrl0 || fail "remove" || return 1
}

# The devices xdata, xlog, xrep (those of the crash-* hrld configurations)
# straight over vda, vdb, vdc, or with a table given for one of them.
map_x() {  # [name table]
  for d in xdata:vda xlog:vdb xrep:vdc; do
    name=${d%:*} disk=/dev/${d#*:}
    if [ "$name" = "$1" ]; then echo "$2"; else echo "0 $(sect $disk) linear $disk 0"; fi |
      dmsetup create "$name" || fail "map $name" || return 1
  done
  echo "0 $(sect /dev/vda) hrl /dev/mapper/xdata /dev/mapper/xlog" | dmsetup create hrl0 || fail "dm-hrl" || return 1
}

# Starts a secondary and a primary hrld on the x devices; waits for them to meet.
start_x_pair() {
  ip link set lo up
  mkdir -p /run/hrl /var/lib/hrl
  hrld --config /etc/hrl/crash-secondary-quiet.toml 2>/tmp/secondary.log &
  SEC=$!
  hrld --config /etc/hrl/crash-primary.toml 2>/tmp/primary.log &
  PRI=$!
  i=0
  while [ $i -lt 300 ] && [ -z "$(durable)" ]; do usleep 100000; i=$((i + 1)); done
  [ -n "$(durable)" ] || fail "the pair never met" || return 1
}

# Waits for the pair to converge (crash.sh), then stops both hrld.
converged_and_stopped() {
  i=0
  while [ $i -lt 1200 ] && ! converged; do usleep 100000; i=$((i + 1)); done
  echo "AFTER: $(status) DURABLE: $(durable)"
  kill $PRI $SEC 2>/dev/null
  wait
  sed 's/^/hrld: /' /tmp/primary.log /tmp/secondary.log | tail -20
  converged || fail "the pair did not converge: $(status), secondary at $(durable)" || return 1
}

# Replaces the table of device $1 with $2 (the device suspended meanwhile).
swap_table() { dmsetup suspend "$1" && echo "$2" | dmsetup reload "$1" && dmsetup resume "$1"; }

# A pair replicating in step: started, 64 KiB written, converged.
pair_in_step() {
  start_x_pair || return 1
  put 4096 16 0 || fail "writes" || return 1
  i=0
  while [ $i -lt 300 ] && ! converged; do usleep 100000; i=$((i + 1)); done
}

remove_x() {
  dmsetup remove hrl0 && dmsetup remove xdata && dmsetup remove xlog && dmsetup remove xrep || fail "remove" || return 1
}

# 18. The log device stalls for 10 s a write (dm-delay reloaded under it),
#     past hrld's 5 s stuck limit: records are allocated but not written;
#     the reader waits for them. No
#     whole-device resync (the log is slow, not corrupt), and the replica
#     catches up once the device answers. The host compares vda and vdc.
scenario_slow_log() {
  map_x xlog "0 $(sect /dev/vdb) delay /dev/vdb 0 0" || return 1
  pair_in_step || return 1
  swap_table xlog "0 $(sect /dev/vdb) delay /dev/vdb 0 0 /dev/vdb 0 10000" || fail "slow the log down" || return 1
  put 4096 2 100 &  # two writes, one after the other: 20 s
  writer=$!
  sleep 12
  wait $writer || fail "the writes during the stall" || return 1
  swap_table xlog "0 $(sect /dev/vdb) delay /dev/vdb 0 0" || fail "the log answers again" || return 1
  converged_and_stopped || return 1
  ! grep -q "the log is corrupt" /tmp/primary.log || fail "a slow log was taken for a corrupt one" || return 1
  ! grep -q "starting checksum" /tmp/primary.log || fail "a resync after a slow log" || return 1
  remove_x
}

# 18b. The log fails writes under a replicating pair: the records past its
#      durable point never ship, so hrld compares the whole device in their
#      place (a pass that supersedes them); writes go on in bitmap mode; once
#      the table is loaded again the pair converges. The host compares vda and vdc.
scenario_log_fail_replicated() {
  map_x || return 1
  pair_in_step || return 1
  swap_table xlog "0 $(sect /dev/vdb) flakey /dev/vdb 0 0 1 1 error_writes" || fail "make the log's writes fail" || return 1
  put 4096 8 100 || fail "writes the data device took" || return 1
  swap_table xlog "0 $(sect /dev/vdb) linear /dev/vdb 0" ||
    fail "give the log its writes back" || return 1
  put 65536 160 64 || fail "10 MiB in bitmap mode" || return 1
  i=0
  while [ $i -lt 600 ] && ! { grep -q "the log failed a write" /tmp/primary.log && [ "$(durable)" -ge $(( $(field 2) - 1 )) ] &&
                             ! grep -q '"resync"' /var/lib/hrl/db0.state; }; do usleep 100000; i=$((i + 1)); done
  echo "AFTER-PASS: $(status) DURABLE: $(durable)"
  grep -q "the log failed a write" /tmp/primary.log || fail "no whole-device pass after the log failed: $(tail -5 /tmp/primary.log)" || return 1
  dmsetup suspend hrl0 && dmsetup resume hrl0 || fail "load the table again" || return 1
  converged_and_stopped || return 1
  remove_x
}

# 19. A record is damaged; the primary's hrld finds it and starts a
#     whole-device resync; the link is cut right then (the secondary stopped,
#     killed, restarted). The volume must not go critical: the records the
#     resync replaces are released only once the secondary has recorded it.
scenario_corrupt_cut() {
  map_x || return 1
  start_x_pair || return 1
  kill $PRI
  wait $PRI
  put 65536 32 16 || fail "write 2 MiB" || return 1
  ring=$(hrl-log dump --json /dev/mapper/xlog | sed -n 's/.*"ring_offset": \([0-9]*\).*/\1/p' | head -1)
  tail=$(hrl-log dump --json /dev/mapper/xlog | sed -n 's/.*"tail_offset": \([0-9]*\).*/\1/p' | head -1)
  # (busybox dd writes through the page cache when its buffer does not suit
  # O_DIRECT: fsync puts the damage on the disk, where hrld reads through xlog)
  seeded 4k | dd of=/dev/vdb bs=512 count=8 iflag=fullblock seek=$(( (ring + tail) / 512 + 9 * 129 + 40 )) \
     oflag=direct conv=notrunc,fsync 2>/dev/null || fail "damage the log" || return 1
  hrld --config /etc/hrl/crash-primary.toml 2>/tmp/primary.log &
  PRI=$!
  i=0
  while [ $i -lt 600 ] && ! grep -q "the log is corrupt" /tmp/primary.log; do usleep 50000; i=$((i + 1)); done
  grep -q "the log is corrupt" /tmp/primary.log ||
    { sed 's/^/hrld: /' /tmp/primary.log | tail; fail "the damage went unnoticed: $(status)"; return 1; }
  kill -STOP $SEC  # the link is as good as cut: nothing the primary sends is taken in
  sleep 3
  kill -9 $SEC
  wait $SEC
  echo "CUT: $(status)"
  hrld --config /etc/hrl/crash-secondary-quiet.toml 2>>/tmp/secondary.log &
  SEC=$!
  put 4096 16 4000 || fail "writes after the cut" || return 1
  converged_and_stopped || return 1
  ! grep -q CRITICAL /tmp/primary.log || fail "the volume went critical" || return 1
  remove_x
}

# 20. A write's data is still on its way to the data device (dm-delay holds
#     writes 3 s) when a resync takes the bitmap, then when an operator's
#     resync starts. The pass must not read the block before the write lands:
#     the write's record shipped before take_seq and is never sent again.
#     The host compares vda and vdc.
scenario_race_take() {
  map_x xdata "0 $(sect /dev/vda) delay /dev/vda 0 0 /dev/vda 0 3000" || return 1
  start_x_pair || return 1
  put 4096 1 100 &
  writer=$!
  usleep 300000
  dmsetup message hrl0 0 request_resync || fail "request_resync" || return 1
  wait $writer || fail "the write held in flight" || return 1
  i=0
  while [ $i -lt 600 ] && ! converged; do usleep 100000; i=$((i + 1)); done
  put 4096 1 200 &
  writer=$!
  usleep 300000
  hrlctl --socket /run/hrl/primary.sock resync db0 >/tmp/resync.out 2>&1 || { cat /tmp/resync.out; fail "hrlctl resync"; return 1; }
  wait $writer || fail "the second write held in flight" || return 1
  converged_and_stopped || return 1
  remove_x
}

# The number key $1 has in /tmp/dump.json (hrl-log dump --json), first after a line matching $2.
dump_number() { sed -n "/${2:-.}/,\$p" /tmp/dump.json | sed -n "s/.*\"$1\": \([0-9]*\).*/\1/p" | head -1; }

# $ring: the sector of vdb where the log's ring starts; $end: vdb's size; /tmp/dump.json: its dump.
ring_and_end() {
  hrl-log dump --json /dev/vdb > /tmp/dump.json 2>&1
  ring=$(dump_number ring_offset)
  [ -n "$ring" ] || { head -5 /tmp/dump.json; fail "no ring offset in the log's superblock"; return 1; }
  ring=$((ring / 512)) end=$(sect /dev/vdb)
}

# 20a. ack under a held superblock write: the log's metadata (the sectors
#      before its ring: superblocks, bitmaps, activity log) and its flushes
#      wait 60 s in dm-delay while the ring takes records at once and the
#      application writes on; then (before the guest's 20 s hung-task watch
#      fires) the host kills qemu. The ring space the
#      ack frees must not take records before the new tail is on disk: the
#      next load walks from the tail the disk still has, and its records must
#      be there. The host compares the status before the ack and after the crash.
scenario_ack_crash() {
  ring_and_end || return 1
  map_x xlog "0 $end linear /dev/vdb 0" || return 1
  # three quarters of the ring, in 64 KiB writes over the whole device (so
  # every activity-log extent is active and no write waits for its commit)
  i=0
  while [ $(($(field 4) * 4)) -lt $(($(field 5) * 3)) ]; do
    put 65536 1 $((i * 37 % 256)) || fail "write $i" || return 1
    i=$((i + 1))
  done
  echo "BEFORE-ACK: $(status)"
  swap_table xlog "0 $ring delay /dev/vdb 0 0 /dev/vdb 0 60000
$ring $((end - ring)) linear /dev/vdb $ring" || fail "hold the log's metadata writes" || return 1
  dmsetup message hrl0 0 ack $(($(field 2) - 1)) &
  acker=$!
  sleep 2
  # half the ring more: past the ring's end, over the records the ack freed
  ( j=0; while [ $j -lt 24 ]; do put 65536 1 $((j * 53 % 256)); j=$((j + 1)); done; : > /tmp/writer-done ) &
  i=0
  while [ $i -lt 100 ] && [ ! -e /tmp/writer-done ]; do usleep 100000; i=$((i + 1)); done
  echo "BEFORE-CRASH: $(status)"
  kill -0 $acker 2>/dev/null && echo "ACK-HELD: yes"
  echo "HRL-KILL-ME-NOW"
  sleep 60
}

# 20b. The next load after the crash: the host checks what the log kept.
scenario_after_ack_crash() {
  create || return 1
  echo "STATUS-AFTER-CRASH: $(status)"
  dmsetup remove hrl0
}

# The ring fails a write (dm-flakey over it on xlog) while the superblocks
# and the activity log before it take them: the failure is recorded, the
# volume requires the whole device. Sets $ring, $end, $meta (the sector of
# vdb where the bitmap starts: the superblocks are before it).
fail_the_ring() {
  ring_and_end || return 1
  meta=$(($(dump_number bitmap_offset) / 512))
  map_x xlog "0 $end linear /dev/vdb 0" || return 1
  put 4096 1 0 || fail "a journaled write" || return 1
  swap_table xlog "0 $ring linear /dev/vdb 0
$ring $((end - ring)) flakey /dev/vdb $ring 0 1 1 error_writes" || fail "make the ring fail writes" || return 1
  put 4096 1 1 || fail "a write while the ring fails" || return 1
  i=0
  while [ $i -lt 100 ] && [ "$(field 1)" != resync-required ]; do usleep 100000; i=$((i + 1)); done
  [ "$(field 1)" = resync-required ] || fail "no resync-required after the ring failed a write: $(status)" || return 1
}

# The log on vdb as it is on the disk now, not from vdb's page cache (kept
# while a dm table holds vdb open, so a second dump would read the first's).
dump_vdb() { blockdev --flushbufs /dev/vdb && hrl-log dump --json /dev/vdb; }
on_disk_al() { dump_vdb | grep -A2 '"activity_log"'; }

# 21. A log failure, the pass that answers it, then a write to an extent the
#     activity log never listed; the host kills qemu. The ring fails writes
#     (dm-flakey) while the superblocks and the activity log before it take
#     them, so the failure is recorded; then the log answers again and
#     take_bitmap clears resync-required. The host checks that the log on
#     disk still covers the last write: resync-required, a block listing
#     every extent or its own, or its bit in the dirty bitmap.
scenario_al_after_failure() {
  fail_the_ring || return 1
  swap_table xlog "0 $end linear /dev/vdb 0" || fail "the log answers again" || return 1
  take=$(dmsetup message hrl0 0 take_bitmap) || fail "take_bitmap after the failure" || return 1
  echo "TAKEN: $take $(status)"
  [ "$(field 1)" != resync-required ] || fail "still resync-required after the take" || return 1
  put 4096 1 323 || fail "the write after the take" || return 1
  echo "WRITTEN: $(status)"
  echo "HRL-KILL-ME-NOW"
  sleep 30
}

# 21b. After a log failure, the pass that answers it writes an activity-log
#      block listing every extent; the block that leaves it next lands on
#      the log but reports an error (one sector in its middle is mapped to
#      dm-error: the other seven are written, and the one refused already
#      held the zeros the new block has there). The superblock that asks for
#      the whole device is held 8 s in dm-delay, like every superblock after
#      the swap. A write to a new extent then must wait for that superblock:
#      the block on disk no longer lists every extent. 3 s after the write
#      the guest copies what the disks hold (block 323 of vda, then vdb
#      before the ring) to vdc: the host checks that state as a power loss
#      at that instant. The write must then complete once the superblock
#      is on disk.
scenario_al_leave_failed() {
  fail_the_ring || return 1
  # The pass writes block al_seq + 1; the one after it, al_seq + 2, goes to
  # the slot of the newest block now (two slots).
  dump_vdb > /tmp/dump.json 2>&1
  al=$(dump_number al_offset) seq=$(dump_number seq '"activity_log"')
  [ -n "$al" ] && [ -n "$seq" ] || { tail -8 /tmp/dump.json; fail "no activity log in the dump"; return 1; }
  bad=$((al / 512 + seq % 2 * 8 + 3))
  swap_table xlog "0 $meta delay /dev/vdb 0 0 /dev/vdb 0 8000 /dev/vdb 0 0
$meta $((bad - meta)) linear /dev/vdb $meta
$bad 1 error
$((bad + 1)) $((end - bad - 1)) linear /dev/vdb $((bad + 1))" ||
    fail "hold the superblocks, refuse a sector of the next activity-log block" || return 1
  take=$(dmsetup message hrl0 0 take_bitmap) || fail "take_bitmap after the failure" || return 1
  echo "TAKEN: $take $(status) activity log seq before: $seq"
  i=0
  while [ $i -lt 50 ] && ! dmesg | grep -q "activity log transaction failed"; do usleep 100000; i=$((i + 1)); done
  dmesg | grep -q "activity log transaction failed" ||
    fail "the block that leaves every extent did not fail: $(status)" || return 1
  (put 4096 1 323 && : > /tmp/write-done) &
  sleep 3
  blockdev --flushbufs /dev/vda && blockdev --flushbufs /dev/vdb &&  # what the disks hold, not a cache
    dd if=/dev/vda of=/dev/vdc bs=4096 skip=323 count=1 iflag=direct oflag=direct 2>/dev/null &&
    dd if=/dev/vdb of=/dev/vdc bs=512 seek=8 count=$ring iflag=direct oflag=direct 2>/dev/null ||
    fail "copy the disks" || return 1
  echo "COPIED: $(status) write done: $([ -e /tmp/write-done ] && echo yes || echo no)"
  i=0
  while [ $i -lt 300 ] && [ ! -e /tmp/write-done ]; do usleep 100000; i=$((i + 1)); done
  [ -e /tmp/write-done ] || fail "the write never went after the failed block: $(status)" || return 1
  dump_vdb | grep -m1 '"flags"' | grep -q resync-required ||
    fail "the write went without a superblock asking for the whole device: $(status)" || return 1
  echo "CHECK: the write waited for the failure's superblock: $(status)"
  echo "RING: $ring"
  dmsetup remove hrl0
}

# 21c. A log failure; the pass that answers it writes a block listing every
#      extent, then its superblock, held 12 s (dm-delay on every superblock
#      write). A write to a new extent lands meanwhile, under "every extent"
#      (bitmap mode: its bit is in memory only). Once the pass returns, the
#      transaction that leaves "every extent" must flush the data device and
#      write the bitmap before a block without every extent replaces it. A
#      write to another extent follows (a block listing it); the host kills
#      qemu and checks that the log on disk covers the first write.
scenario_al_write_in_take() {
  fail_the_ring || return 1
  swap_table xlog "0 $meta delay /dev/vdb 0 0 /dev/vdb 0 12000 /dev/vdb 0 0
$meta $((end - meta)) linear /dev/vdb $meta" || fail "hold the superblocks" || return 1
  dmsetup message hrl0 0 take_bitmap > /tmp/take.out 2>&1 &
  taker=$!
  i=0  # the pass took the bitmap and wrote "every extent"; its superblock is held
  while [ $i -lt 60 ] && ! on_disk_al | grep -q '"all": true'; do usleep 100000; i=$((i + 1)); done
  on_disk_al | grep -q '"all": true' || fail "no block listing every extent on disk during the take" || return 1
  put 4096 1 323 || fail "the write during the take" || return 1
  echo "WRITTEN: $(status)"
  kill -0 $taker 2>/dev/null || fail "the take ended before the write: $(cat /tmp/take.out)" || return 1
  wait $taker || fail "take_bitmap after the failure: $(cat /tmp/take.out)" || return 1
  echo "TAKEN: $(cat /tmp/take.out) $(status)"
  sleep 1
  put 4096 1 448 || fail "a write to another extent" || return 1
  echo "WRITTEN-AFTER: $(status)"
  sleep 1
  echo "HRL-KILL-ME-NOW"
  sleep 30
}

# 22. A MARK record fails (its 1 KiB of the ring errors, 3 s late) while the
#     writes journaled after it complete; a write to a new extent then evicts
#     the oldest of theirs from the activity log (8 slots, all busy). Writes
#     to the superblocks (not flushes) are held 15 s in dm-delay; the host
#     kills qemu at 6 s. The extent must not leave before a superblock
#     asking for the whole device is on disk: a load cuts the ring at the
#     hole and drops the records after it, so the list is all that covers
#     their blocks. The host checks block 1 (extent 0) on the log on disk.
scenario_al_hole() {
  ring_and_end || return 1
  meta=$(($(dump_number bitmap_offset) / 512))
  map_x xlog "0 $end linear /dev/vdb 0" || return 1
  for e in 0 1 2 3 4 5 6 7; do put 4096 1 $((e * 64)) || fail "write to extent $e" || return 1; done
  hrl-log dump --json /dev/vdb > /tmp/dump.json 2>&1
  h=$(dump_number ring_offset '"end"')
  [ -n "$h" ] || { tail -8 /tmp/dump.json; fail "no end of the ring in the dump"; return 1; }
  m=$((ring + h / 512))
  echo "0 2 error" | dmsetup create xerr || fail "xerr" || return 1
  echo "0 2 delay /dev/mapper/xerr 0 3000" | dmsetup create xslow || fail "xslow" || return 1
  swap_table xlog "0 $meta delay /dev/vdb 0 0 /dev/vdb 0 15000 /dev/vdb 0 0
$meta $((m - meta)) linear /dev/vdb $meta
$m 2 linear /dev/mapper/xslow 0
$((m + 2)) $((end - m - 2)) linear /dev/vdb $((m + 2))" || fail "hold the superblocks, fail the next record" || return 1
  dmsetup message hrl0 0 mark m1 > /tmp/mark.out 2>&1 &
  usleep 500000
  for e in 0 1 2 3 4 5 6 7; do put 4096 1 $((e * 64 + 1)) || fail "write after the mark to $e" || return 1; done
  echo "AFTER-MARK: $(status)"
  put 4096 1 $((9 * 64)) &
  sleep 5
  echo "BEFORE-CRASH: $(status) mark: $(cat /tmp/mark.out)"
  echo "HRL-KILL-ME-NOW"
  sleep 30
}

# Writes the log refuses, all of them (dm-flakey over the whole log): a write
# to an extent the activity log does not list makes the log fail, and the
# superblock that says so is refused too (checked on vdb below the log).
# Waits for resync-required, then 3 s more: the driver tries that superblock
# again meanwhile and is refused again.
refuse_a_write() {
  ring_and_end || return 1
  map_x xlog "0 $end linear /dev/vdb 0" || return 1
  put 4096 1 0 || fail "a journaled write" || return 1
  swap_table xlog "0 $end flakey /dev/vdb 0 0 1 1 error_writes" || fail "make the log refuse writes" || return 1
  put 4096 1 323 || fail "a write while the log refuses them" || return 1
  i=0
  while [ $i -lt 100 ] && [ "$(field 1)" != resync-required ]; do usleep 100000; i=$((i + 1)); done
  echo "REFUSED: $(status)"
  [ "$(field 1)" = resync-required ] || fail "no resync-required after the log refused a write: $(status)" || return 1
  sleep 3
  flags=$(dump_vdb | grep -m1 '"flags"')
  echo "ON-DISK: $flags"
  [ -n "$flags" ] && ! echo "$flags" | grep -q resync-required ||
    fail "the log took the failure's superblock: nothing was refused" || return 1
}

# 23. The log refuses every write, the failure's superblock included, then
#     answers again; nothing runs the metadata worker (no flush, no message)
#     for 3 s; the host kills qemu. The superblock must have been tried
#     again meanwhile: the host checks that the log on disk covers block 323.
scenario_al_refused() {
  refuse_a_write || return 1
  swap_table xlog "0 $end linear /dev/vdb 0" || fail "the log answers again" || return 1
  sleep 3
  echo "BEFORE-CRASH: $(status)"
  echo "HRL-KILL-ME-NOW"
  sleep 30
}

# 24. The log refuses every write, the suspend's superblock included; a
#     resume fails (the ring answers again, the superblock is refused); the
#     table is reloaded (a new
#     target); the log answers again and the device resumes. The resume must
#     require the whole device (the load finds a superblock without it, and an
#     activity log that lacks the write to block 323); then the host kills
#     qemu and checks that the log on disk covers block 323.
scenario_suspend_refused() {
  refuse_a_write || return 1
  dmsetup suspend hrl0 || fail "suspend while the log refuses writes" || return 1
  # the ring takes writes again (the load zeroes past its head), the metadata does not
  swap_table xlog "0 $ring flakey /dev/vdb 0 0 1 1 error_writes
$ring $((end - ring)) linear /dev/vdb $ring" || fail "refuse the metadata writes only" || return 1
  ! dmsetup resume hrl0 2>/dev/null || fail "a resume whose superblock the log refused succeeded" || return 1
  dmesg | grep -q "needs a resync: required again" ||
    fail "the failed resume did not get as far as its superblock: $(dmesg | tail -3)" || return 1
  echo "0 $(sect /dev/vda) hrl /dev/mapper/xdata /dev/mapper/xlog" | dmsetup reload hrl0 ||
    fail "reload the table" || return 1
  swap_table xlog "0 $end linear /dev/vdb 0" || fail "the log answers again" || return 1
  dmsetup resume hrl0 || fail "resume: $(dmesg | tail -3)" || return 1
  echo "RESUMED: $(status)"
  [ "$(field 1)" = resync-required ] && [ "$(field 9)" = log-io-error ] ||
    fail "the resume forgot the resync the log refused: $(status)" || return 1
  echo "HRL-KILL-ME-NOW"
  sleep 30
}

# 25. A table of two hrl targets whose second one fails its preresume (its
#     log was formatted again): the device stays suspended, the first target
#     loaded its log and stays active. A new table on that log resumes, the
#     old table goes, a write lands, the host kills qemu. The old target must
#     not have written over the log the new table loaded: the host checks
#     that the superblock on disk does not say clean. Meanwhile the first
#     target holds its log (another device on it is refused, and told why)
#     and the second let its log go when its load failed. The new table
#     takes the log from the old target, which stops first; the instant that
#     stop guards (a retry of the old target between the new table's resume
#     and the old one's destruction) is not forced here.
scenario_stale_table() {
  map_x || return 1
  put 4096 1 0 || fail "a journaled write" || return 1
  echo "0 4096 linear /dev/vdc 0" | dmsetup create ydata || fail "ydata" || return 1
  echo "0 $(($(sect /dev/vdc) - 4096)) linear /dev/vdc 4096" | dmsetup create ylog || fail "ylog" || return 1
  hrl-log format /dev/mapper/ylog --data /dev/mapper/ydata --assume-in-sync >/dev/null || fail "format ylog" || return 1
  a=$(sect /dev/vda)
  dmsetup suspend hrl0 || fail "suspend" || return 1
  printf '0 %s hrl /dev/mapper/xdata /dev/mapper/xlog\n%s 4096 hrl /dev/mapper/ydata /dev/mapper/ylog\n' "$a" "$a" |
    dmsetup reload hrl0 || fail "load a table of two targets" || return 1
  hrl-log format /dev/mapper/ylog --data /dev/mapper/ydata --assume-in-sync --force >/dev/null || fail "format ylog again" || return 1
  ! dmsetup resume hrl0 2>/dev/null || fail "a target whose log was formatted again resumed" || return 1
  # The first target holds xlog (active, its device suspended); the second let ylog go when its load failed.
  ! echo "0 $a hrl /dev/mapper/xdata /dev/mapper/xlog" | dmsetup create hrl1 2>/dev/null ||
    fail "another device resumed on a log a target holds" || return 1
  dmsetup remove hrl1 2>/dev/null
  dmesg | grep -q "the log is held by device .*, suspended after a failed resume" ||
    fail "no reason for the refused resume in the kernel log: $(dmesg | tail -3)" || return 1
  echo "0 4096 hrl /dev/mapper/ydata /dev/mapper/ylog" | dmsetup create hrl1 ||
    fail "the log of a target whose load failed is still held: $(dmesg | tail -3)" || return 1
  dmsetup remove hrl1 || fail "remove hrl1" || return 1
  echo "0 $a hrl /dev/mapper/xdata /dev/mapper/xlog" | dmsetup reload hrl0 || fail "load a table of one target" || return 1
  dmsetup resume hrl0 || fail "resume the table of one target: $(dmesg | tail -3)" || return 1
  dmesg | grep -q "taken from a target of the table this one replaced" ||
    fail "the old table's target did not own the log when the new table took it: $(dmesg | tail -3)" || return 1
  put 4096 1 323 || fail "a write after the new table resumed" || return 1
  echo "RESUMED: $(status)"
  echo "HRL-KILL-ME-NOW"
  sleep 30
}

# 26. A write completes and the log's flush it starts is held (dm-delay,
#     60 s); a second write is held in flight (its data write delayed 2 s);
#     take_bitmap waits for both; a suspend comes, waits for the second write,
#     and quiesces (the target's own flushes stop); then the held flush is let
#     go (the log's table swapped). The take must still get its records
#     durable and answer, and the suspend, queued behind it in the metadata
#     worker, must finish. (A review predicted a hang here: the quiesce
#     stopping the flush the take waits for. On both kernels the take
#     answers; the scenario keeps that so.)
scenario_take_suspend() {
  ring_and_end || return 1
  n=$(sect /dev/vda)
  map_x xdata "0 $n delay /dev/vda 0 0" || return 1
  put 4096 1 0 || fail "a journaled write" || return 1
  swap_table xlog "0 $end delay /dev/vdb 0 0 /dev/vdb 0 0 /dev/vdb 0 60000" || fail "hold the log's flushes" || return 1
  swap_table xdata "0 8 delay /dev/vda 0 0
8 $((n - 8)) delay /dev/vda 8 0 /dev/vda 8 2000" || fail "hold the data writes past block 0" || return 1
  put 4096 1 0 || fail "a write whose flush is held" || return 1
  put 4096 1 1 &
  usleep 300000
  dmsetup message hrl0 0 take_bitmap > /tmp/take.out 2>&1 &
  usleep 300000
  echo "BEFORE-SUSPEND: $(status)"
  dmsetup suspend hrl0 &
  suspender=$!
  sleep 4
  swap_table xlog "0 $end linear /dev/vdb 0" || fail "let the log's flush go" || return 1
  i=0
  while [ $i -lt 150 ] && kill -0 $suspender 2>/dev/null; do usleep 100000; i=$((i + 1)); done
  ! kill -0 $suspender 2>/dev/null ||
    fail "the suspend still waits 15 s after the log's flush went (take_bitmap: $(cat /tmp/take.out))" || return 1
  echo "TAKE: $(cat /tmp/take.out)"
  [ -n "$(cat /tmp/take.out)" ] || fail "take_bitmap did not answer" || return 1
  dmsetup resume hrl0 || fail "resume" || return 1
  wait
  remove_x
}

# 27. One writer per log: a second device over the same data and log is
#     refused while the first is live (the kernel log says why); a table
#     holding one log twice is refused when loaded, before any write (the
#     next load finds the log clean). Once the first device is suspended the
#     second resumes and writes, and the first may not resume until the
#     second is gone. A copy of the log on another device (same uuid) is
#     another log: it resumes while the first is live. The host verifies the
#     log afterwards.
scenario_two_devices() {
  map_x || return 1
  table="0 $(sect /dev/vda) hrl /dev/mapper/xdata /dev/mapper/xlog"
  put 4096 1 0 || fail "a journaled write" || return 1
  ! echo "$table" | dmsetup create hrl1 2>/dev/null || fail "a second device resumed on a live log" || return 1
  dmsetup remove hrl1 2>/dev/null
  dmesg | grep -q "the log is written by device" ||
    fail "no reason for the refused resume in the kernel log: $(dmesg | tail -3)" || return 1
  put 4096 1 1 || fail "a write to the first device after the refusal" || return 1
  before=$(field 2)
  dmsetup suspend hrl0 || fail "suspend the first device" || return 1
  n=$(sect /dev/vda)
  # A copy of both devices, as a failover's log keeps the volume's uuid: another log.
  echo "0 $n linear /dev/vdc 0" | dmsetup create ydata && echo "0 $(sect /dev/vdb) linear /dev/vdc $n" |
    dmsetup create ylog || fail "ydata and ylog" || return 1
  dd if=/dev/mapper/xdata of=/dev/mapper/ydata bs=1M oflag=direct 2>/dev/null &&
    dd if=/dev/mapper/xlog of=/dev/mapper/ylog bs=1M oflag=direct 2>/dev/null || fail "copy the devices" || return 1
  ! printf '0 %s hrl /dev/mapper/xdata /dev/mapper/xlog\n%s %s hrl /dev/mapper/xdata /dev/mapper/xlog\n' "$n" "$n" "$n" |
    dmsetup create hrl2 2>/dev/null || fail "a table holding one log twice resumed" || return 1
  dmsetup remove hrl2 2>/dev/null
  echo "$table" | dmsetup create hrl1 || fail "the second device, the first suspended: $(dmesg | tail -3)" || return 1
  # The refused table wrote nothing: the log loads clean, no resync.
  [ "$(dmsetup status hrl1 | cut -d' ' -f12)" != unclean-shutdown ] ||
    fail "a refused table left the log unclean: $(dmsetup status hrl1)" || return 1
  dmesg | grep -q "the table holds this log twice" ||
    fail "no reason for the refused table in the kernel log: $(dmesg | tail -3)" || return 1
  put 4096 1 2 /dev/mapper/hrl1 || fail "a write through the second device" || return 1
  ! dmsetup resume hrl0 2>/dev/null || fail "the first device resumed while the second wrote the log" || return 1
  dmsetup remove hrl1 || fail "remove the second device" || return 1
  dmsetup resume hrl0 || fail "resume the first device once the second is gone: $(dmesg | tail -3)" || return 1
  [ "$(field 2)" -gt "$before" ] || fail "the first device did not load the second's record: $before -> $(status)" || return 1
  put 4096 1 3 || fail "a write to the first device at the end" || return 1
  echo "0 $n hrl /dev/mapper/ydata /dev/mapper/ylog" | dmsetup create hrl3 ||
    fail "a copy of the log on another device was refused: $(dmesg | tail -3)" || return 1
  put 4096 1 4 /dev/mapper/hrl3 || fail "a write through the copy" || return 1
  dmsetup remove hrl3 && dmsetup remove ydata && dmsetup remove ylog || fail "remove the copy" || return 1
  echo "END: $(status)"
  remove_x
}
