#!/usr/bin/env python3
"""The crash-state explorer: power losses of the primary, built from recorded block I/O.

1. A guest records (tests/vm/guest/crash.sh, crash_record): dm-hrl over two
   dm-log-writes devices, two hrld replicating, a seeded application in
   phases (replication keeping up; the secondary stalled while the ring fills
   without a flush and overflows; the bitmap resynced while writes go on), and
   barriers: quiet instants where the secondary is copied and both recordings
   are marked (crashstates.py says why that makes the states exact).
2. Here, for each barrier, the states a power loss could leave on the
   primary's two devices (crashstates.py): everything durable, and chosen
   subsets of what was not, the nasty ones on purpose (a record lost while
   later ones survive, a data write without its record and the reverse, the
   last superblock update lost, a torn record), then seeded random subsets.
3. A second guest lays each state under dm-hrl (crash_check) and lets the
   primary's hrld meet the secondary as it was at that instant.

Checked for every state: dm-hrl loads it; the application's durable writes
are on the data device; the pair converges (replica equal to the data device,
byte for byte, after whatever resync the volume runs, with its reason); no
record is applied on top of a history the primary no longer has; no record of
the crashed run is left past the head where a reader could take it for a new
one; every recovery point the secondary lists builds its image.

  tests/vm/explore.py --build build [--kernels 6.1,6.12] [--seed N] [--recordings R]
                      [--states N] [--long] [--keep]
Every run prints its seed; --seed replays it (recording and choices).
"""
import argparse
import os
import random
import re
import shutil
import subprocess
import sys
import tarfile
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import crashstates as cs  # noqa: E402
import vmtest  # noqa: E402

MIB = 1 << 20
DATA_MIB, LOG_MIB, RING = 16, 13, "12M"  # a ring larger than the 8 MiB zeroed after a crash
AL_EXTENTS = 16
RESYNCED = []  # MiB the first pass after each power loss compared


class Barrier:
    def __init__(self, line):
        f = line.split()
        self.k, self.journal_bytes, self.durable, self.ack, self.status = int(f[0]), int(f[1]), int(f[2]), f[3] == "1", f[4]


class State:
    """One crash state: at barrier k, which not-yet-durable entries of each device survive."""

    def __init__(self, k, kind, data_keep, log_keep, sb_lost=False, detail=""):
        self.k, self.kind, self.data_keep, self.log_keep, self.sb_lost = k, kind, data_keep, log_keep, sb_lost
        self.detail = detail
        self.index = None

    def name(self):
        return self.kind + (f" ({self.detail})" if self.detail else "")


# The kinds of state, the nasty ones first: a short exploration takes each in turn.
KINDS = ("record-the-secondary-holds-lost", "oldest-record-lost", "record-lost-data-landed", "record-kept-data-lost", "last-superblock-update-lost",
         "record-torn", "random", "all-survive", "none-survive")


def record(kernel, build, work, seed, long):
    """Boots the recording guest; returns its output directory and the images as they were before."""
    rng = random.Random(seed)
    os.makedirs(work, exist_ok=True)
    p = {n: f"{work}/{n}.img" for n in ("data", "log", "replica", "lw-data", "lw-log", "out")}
    with open(p["data"], "wb") as f:
        f.write(rng.randbytes(DATA_MIB * MIB))
    for n, mib in (("log", LOG_MIB), ("lw-data", 512), ("lw-log", 1024), ("out", 3072 if long else 1024)):
        with open(p[n], "wb") as f:
            f.truncate(mib * MIB)
    # An activity log of 16 extents of 256 KiB: a quarter of the device, so the
    # workload keeps evicting extents and a crash resyncs only what it lists.
    vmtest.hrl_log(build, "format", p["log"], "--data", p["data"], "--ring-size", RING, "--assume-in-sync",
                   "--al-extents", str(AL_EXTENTS), "--al-extent-size", "256K")
    shutil.copy(p["data"], p["replica"])
    shutil.copy(p["data"], f"{work}/data-before.img")
    shutil.copy(p["log"], f"{work}/log-before.img")
    with open(f"{work}/record-console.txt", "w") as live:  # as it comes, to see where a stuck guest is
        console = kernel.boot("crash_record", [p[n] for n in ("data", "log", "replica", "lw-data", "lw-log", "out")],
                              seed, timeout=1800, mem=6144 if long else 1536, args="hrl.long=1" if long else "",
                              echo=lambda line: (live.write(line + "\n"), live.flush()))
    out = f"{work}/out"
    shutil.rmtree(out, ignore_errors=True)
    ok = "=== RESULT: PASS" in console and not vmtest.guest_lines(console, "GUEST-FAIL:")
    if ok:
        with tarfile.open(p["out"]) as t:
            t.extractall(out)
        os.unlink(p["out"])
    return ok, console, out


class Explorer:
    def __init__(self, work, out, seed):
        self.work, self.out, self.seed = work, out, seed
        self.base_data = open(f"{work}/data-before.img", "rb").read()
        self.base_log = open(f"{work}/log-before.img", "rb").read()
        self.sb0 = cs.superblock(self.base_log)
        self.lwd = cs.Recording(f"{work}/lw-data.img")
        self.lwl = cs.Recording(f"{work}/lw-log.img")
        self.barriers = [Barrier(l) for l in open(f"{out}/barriers") if l.strip()]
        self.journal = cs.Journal(open(f"{out}/journal").read())
        self.ring = (self.sb0["ring_offset"], self.sb0["ring_offset"] + self.sb0["ring_bytes"])

    def record_in(self, e):
        """The record header an entry of the log's recording writes, if it writes one at its start."""
        if e.mark is not None or not e.nr or not (self.ring[0] <= e.sector * 512 < self.ring[1]):
            return None
        return cs.record_header(self.lwl.data(e)[:64], self.sb0["seed"])

    def variants(self, b, data_batch, log_batch, sbw, rng, extra):
        """The states of barrier b: the nasty ones that apply, then `extra` random ones."""
        recs = [(e, h) for e in log_batch if (h := self.record_in(e)) is not None]
        writes = [(e, h) for e, h in recs if h["type"] == cs.REC_WRITE and h["nr_sectors"]]
        by_place = {}
        for d in data_batch:
            by_place.setdefault((d.sector, d.nr), []).append(d)

        def data_of(e, h):  # the data write of a journaled write: same place, same bytes
            payload = bytes(self.lwl.data(e)[512:512 + h["nr_sectors"] * 512])
            for d in by_place.get((h["sector"], h["nr_sectors"]), []):
                if bytes(self.lwd.data(d)) == payload:
                    return d
            return None

        def some(entries, p):
            return [(e, None) for e in entries if rng.random() < p]

        every_data, every_log = [(e, None) for e in data_batch], [(e, None) for e in log_batch]
        out = [State(b.k, "all-survive", every_data, every_log), State(b.k, "none-survive", [], [])]
        held = [(e, h) for e, h in recs if h["seq"] <= b.durable]
        if held:  # shipped before a flush made it durable here: the secondary is ahead of what survives
            e, h = min(held, key=lambda r: r[1]["seq"])
            out.append(State(b.k, "record-the-secondary-holds-lost", every_data, [(x, None) for x in log_batch if x is not e],
                             detail=f"seq {h['seq']}, the secondary holds up to {b.durable}"))
        if len(recs) >= 2:
            first, h = min(recs, key=lambda r: r[1]["seq"])
            out.append(State(b.k, "oldest-record-lost", every_data, [(e, None) for e in log_batch if e is not first],
                             detail=f"seq {h['seq']} of {len(recs)} records not yet durable"))
        paired = [(e, h, d) for e, h in writes if (d := data_of(e, h)) is not None]
        if paired:
            e, h, d = rng.choice(paired)
            out.append(State(b.k, "record-lost-data-landed", some(data_batch, 0.5) + [(d, None)],
                             [(x, None) for x in log_batch if x is not e and rng.random() < 0.7], detail=f"seq {h['seq']}"))
            e, h, d = rng.choice(paired)
            out.append(State(b.k, "record-kept-data-lost", [(x, None) for x in data_batch if x is not d], every_log,
                             detail=f"seq {h['seq']}"))
        if sbw:
            out.append(State(b.k, "last-superblock-update-lost", some(data_batch, 0.5), some(sbw[1], 0.5), sb_lost=True))
        torn = [(e, h) for e, h in writes if e.nr >= 2]
        if torn:
            e, h = rng.choice(torn)
            out.append(State(b.k, "record-torn", every_data, [(x, e.nr // 2 if x is e else None) for x in log_batch],
                             detail=f"seq {h['seq']}, {e.nr // 2} of {e.nr} sectors"))
        for i in range(extra):
            pd, pl = rng.choice((0.2, 0.5, 0.8)), rng.choice((0.2, 0.5, 0.8))
            out.append(State(b.k, "random", some(data_batch, pd), some(log_batch, pl),
                             detail=f"data kept at {pd}, log at {pl}"))
        return out

    def states(self, rng, extra, limit):
        """(state, barrier, barrier's data image, barrier's log image) for every barrier in order, at most
        `limit` in all, spread over the barriers and over the kinds of state; images() makes the state's own."""
        chosen = []
        data, log = bytearray(self.base_data), bytearray(self.base_log)
        di = li = 0
        per_barrier = []
        for b in self.barriers:
            dm, data_batch = cs.epoch(self.lwd, b.k)
            lm, log_batch = cs.epoch(self.lwl, b.k)
            sbw = cs.superblock_write_before(self.lwl, lm) if b.ack else None
            for e in self.lwd.entries[di:dm]:
                self.lwd.apply(data, e)
            di = dm
            sb_lost_log = None
            if sbw:
                for e in self.lwl.entries[li:sbw[0]]:
                    self.lwl.apply(log, e)
                li = sbw[0]
                sb_lost_log = bytes(log)
            for e in self.lwl.entries[li:lm]:
                self.lwl.apply(log, e)
            li = lm
            vs = self.variants(b, data_batch, log_batch, sbw, rng, extra)
            per_barrier.append((b, bytes(data), bytes(log), sb_lost_log, vs))
        # Round robin over the kinds, each at a barrier picked at random, until the limit.
        total = sum(len(v) for *_, v in per_barrier)
        pool = {kind: [(i, j) for i, (*_, vs) in enumerate(per_barrier) for j, st in enumerate(vs) if st.kind == kind]
                for kind in KINDS}
        for v in pool.values():
            rng.shuffle(v)
        take = set()
        while len(take) < limit and any(pool.values()):
            for kind in KINDS:
                if pool[kind] and len(take) < limit:
                    take.add(pool[kind].pop())
        for i, (b, data, log, sb_lost_log, vs) in enumerate(per_barrier):
            for j, st in enumerate(vs):
                if (i, j) not in take:
                    continue
                # the barrier's images, shared: a state's own are made when it is packed (200 of them at
                # once would take gigabytes)
                chosen.append((st, b, data, sb_lost_log if st.sb_lost else log))
        return chosen, total

    def images(self, st, data, log):
        """The data and log images of a state: its barrier's, with the writes it keeps."""
        d, lg = bytearray(data), bytearray(log)
        for e, keep in sorted(st.data_keep, key=lambda x: x[0].index):
            self.lwd.apply(d, e, keep)
        for e, keep in sorted(st.log_keep, key=lambda x: x[0].index):
            self.lwl.apply(lg, e, keep)
        return d, lg

    def old_record_csum(self, b):
        """The header checksum of the record the secondary held last at barrier b, as the primary wrote it
        (before the barrier: durable already, or among the writes not yet durable)."""
        lm, batch = cs.epoch(self.lwl, b.k)
        found = None
        for e in self.lwl.entries[:lm] + batch:
            h = self.record_in(e)
            if h is not None and h["seq"] == b.durable:
                found = h["header_csum"]
        return found

    def continuity(self, b, log):
        """Whether the state's log still holds the secondary's last record as the secondary has it."""
        sb = cs.superblock(log)
        if sb is None:
            return False
        if b.durable < sb["tail_seq"]:
            return b.durable == sb["tail_seq"] - 1
        want = self.old_record_csum(b)
        return any(seq == b.durable and h["header_csum"] == want for seq, _, h in cs.walk(log, sb))


def run_kernel(kernel, build, work, seed, recordings, states_per_run, extra, long, log):
    """Records and checks on one kernel; returns (states checked, failures [(state, reasons)])."""
    checked, failures = 0, []
    for r in range(recordings):
        rseed = zlib.crc32(f"{seed}:{kernel.kver}:{r}".encode())
        rwork = f"{work}/rec{r}"
        t0 = time.time()
        ok, console, out = record(kernel, build, rwork, rseed, long)
        if not ok:
            failures.append((f"recording {r} (seed {rseed})", ["the recording guest failed"] +
                             vmtest.guest_lines(console, "GUEST-FAIL:") + console.splitlines()[-30:]))
            continue
        ex = Explorer(rwork, out, rseed)
        rng = random.Random(rseed)
        chosen, total = ex.states(rng, extra, states_per_run)
        log(f"{kernel.kver}: recording {r} (seed {rseed}): {len(ex.barriers)} barriers, "
            f"{len(ex.lwd.entries)} + {len(ex.lwl.entries)} recorded writes, {total} states, checking "
            f"{len(chosen)} ({time.time() - t0:.0f} s)")
        for batch_start in range(0, len(chosen), 40):
            batch = chosen[batch_start:batch_start + 40]
            checked += len(batch)
            failures += check_batch(kernel, ex, batch, batch_start, rwork, rseed, log)
    return checked, failures


def check_batch(kernel, ex, batch, first, rwork, rseed, log):
    """Lays the states in a pack, boots the checking guest, judges each state."""
    dsz, lsz = DATA_MIB * MIB, LOG_MIB * MIB
    stride = 2 * dsz + lsz
    pack, states_tar, scratch = f"{rwork}/pack.img", f"{rwork}/states.tar", f"{rwork}/scratch.img"
    prechecks = {}
    with open(pack, "wb") as f:
        for i, (st, b, data, base_log) in enumerate(batch):
            st.index = first + i
            d, lg = ex.images(st, data, base_log)
            ops = ex.journal.upto(b.journal_bytes)
            prechecks[i] = (cs.durable_violations(ops, ex.seed, d, ex.base_data, len(d) // cs.BLOCK),
                            ex.continuity(b, lg))
            f.seek(i * stride)
            f.write(d)
            f.write(lg)
            f.write(open(f"{ex.out}/replica-{b.k}.img", "rb").read())
    with tarfile.open(states_tar, "w") as t:
        for b in ex.barriers:
            t.add(f"{ex.out}/state-{b.k}.tar", f"state-{b.k}.tar")
        manifest = "".join(f"{i} {b.k} {i * stride // 512}\n" for i, (st, b, d, lg) in enumerate(batch))
        for name, text in (("manifest", manifest), ("geometry", f"DATA_SECTORS={dsz // 512}\nLOG_SECTORS={lsz // 512}\n")):
            path = f"{rwork}/{name}"
            open(path, "w").write(text)
            t.add(path, name)
    with open(scratch, "wb") as f:
        f.truncate(dsz)
    with open(f"{rwork}/check-console-{first}.txt", "w") as live:
        # the guest unpacks the states in its RAM: a long recording's need more than the 1 GiB of a short one's
        mem = max(1024, 1024 + os.path.getsize(states_tar) * 3 // MIB)  # a tmpfs gets half the RAM
        console = kernel.boot("crash_check", [pack, states_tar, scratch], rseed, timeout=120 + 90 * len(batch),
                              mem=mem, echo=lambda line: (live.write(line + "\n"), live.flush()))
    trouble = vmtest.kernel_trouble(console)
    failures = []
    lines = console.splitlines()
    for i, (st, b, d, lg) in enumerate(batch):
        name = f"state {st.index} (barrier {st.k}, {st.name()}, seed {rseed})"
        mine = [l.split(": ", 1)[1] if ": " in l else l for l in lines if l.startswith(f"STATE {i} ")]
        said = {l.split(":", 1)[0].split()[2]: l.split(":", 1)[1].strip() for l in lines if l.startswith(f"STATE {i} ")
                and ":" in l}
        reasons = []
        durable_bad, continuous = prechecks[i]
        if durable_bad:
            reasons.append(f"{len(durable_bad)} blocks lack what the application made durable, e.g. block "
                           f"{durable_bad[0][0]} holds {durable_bad[0][1]}, allowed {durable_bad[0][2][-3:]}")
        if "LOAD-FAILED" in said:
            reasons.append("dm-hrl refused the state: " + said["LOAD-FAILED"])
        elif not said.get("END", "").startswith("converged"):
            reasons.append("the pair did not converge: " + said.get("END", "no result"))
        if "LOAD-FAILED" not in said:
            with open(pack, "rb") as f:
                f.seek(i * stride)
                data, log_after, replica = f.read(dsz), f.read(lsz), f.read(dsz)
            if data != replica:
                diff = [blk for blk in range(dsz // cs.BLOCK) if data[blk * cs.BLOCK:(blk + 1) * cs.BLOCK] !=
                        replica[blk * cs.BLOCK:(blk + 1) * cs.BLOCK]]
                reasons.append(f"the replica differs from the primary's data in {len(diff)} blocks, e.g. {diff[:5]}")
            past = cs.records_past_head(log_after)
            if past:
                reasons.append(f"{len(past)} records of the crashed run lie past the head, e.g. seq {past[0][0]} "
                               f"at ring offset {past[0][1]}")
            hrld = [l for l in mine if l and not l.startswith(("LOADED", "END", "POINTS", "DONE"))]
            passes = [m for l in hrld if (m := re.search(r"(starting|resuming) \w+ \(([\w-]+)\) at seq (\d+)", l))]
            loaded = said.get("LOADED", "").split()  # mode head tail used ring dirty ...
            asked = len(loaded) > 5 and (loaded[0] != "journal" or loaded[5] != "0")
            if not passes and asked:
                reasons.append("no resync after the power loss, though the volume asked for one: " +
                               said.get("LOADED", ""))
            elif not passes and (len(loaded) < 9 or loaded[8] != "unclean-shutdown"):
                reasons.append("the power loss was not reported: " + said.get("LOADED", "no status"))
            if len(loaded) > 5:  # what the load marked for the resync
                RESYNCED.append(DATA_MIB if loaded[0] == "resync-required" else int(loaded[5]) * cs.BLOCK / MIB)
            if not continuous:
                take = int(passes[0].group(3)) if passes else None
                if take is None or (take > b.durable + 1 and not any("rebase" in l for l in hrld)):
                    reasons.append(f"the secondary's record {b.durable} is not in the primary's log any more, yet "
                                   f"records from {b.durable + 1} were applied after it (first pass at seq {take})")
            for when in ("POINTS-BEFORE", "POINTS"):
                pts = re.match(r"(\d+) listed, (\d+) built", said.get(when, ""))
                if not pts or pts.group(1) != pts.group(2):
                    reasons.append(f"recovery points that do not build ({when.lower()}): " + said.get(when, "none reported"))
        if f"STATE {i} DONE" not in console and "LOAD-FAILED" not in said:
            reasons.append("the checking guest did not finish this state")
        if reasons:
            failures.append((name, reasons + [f"    {l}" for l in mine[:12]]))
        log(f"  {'FAIL' if reasons else 'ok  '} {name}" + (f": {reasons[0]}" if reasons else ""))
    if trouble:
        failures.append((f"states {first}..{first + len(batch) - 1}", ["the kernel complained: " + " | ".join(trouble[:5])]))
    if "=== RESULT: PASS" not in console or vmtest.guest_lines(console, "GUEST-FAIL:"):
        failures.append((f"states {first}..{first + len(batch) - 1}", ["the checking guest failed"] +
                         vmtest.guest_lines(console, "GUEST-FAIL:") + lines[-20:]))
    for path in (pack, scratch):
        os.unlink(path)
    return failures


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build")
    ap.add_argument("--kernels", default="6.1,6.12")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--recordings", type=int, default=1, help="recordings per kernel")
    ap.add_argument("--states", type=int, default=30, help="states checked per recording")
    ap.add_argument("--random", type=int, default=1, help="random states per barrier, besides the chosen kinds")
    ap.add_argument("--long", action="store_true",
                    help="longer recordings, more barriers (the recording guest keeps every barrier's copies in "
                         "its RAM: 6 GiB)")
    ap.add_argument("--keep", action="store_true", help="keep the recordings")
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 31)
    print(f"explore: seed {seed} (replay with --seed {seed})", flush=True)
    if subprocess.run([f"{vmtest.ROOT}/tools/build-driver"], env={**os.environ, "BUILD": build}).returncode:
        return 1
    t0 = time.time()
    total, failures = 0, []
    for series in args.kernels.split(","):
        k = vmtest.Kernel(series, build)
        t1 = time.time()
        n, f = run_kernel(k, build, f"{build}/vm/explore/{k.kver}", seed, args.recordings, args.states, args.random,
                          args.long, lambda line: print(line, flush=True))
        print(f"explore: {k.kver}: {n} crash states checked in {time.time() - t1:.0f} s, {len(f)} failed", flush=True)
        total += n
        failures += f
        if not args.keep:
            shutil.rmtree(f"{build}/vm/explore/{k.kver}", ignore_errors=True)
    for name, reasons in failures:
        print(f"FAIL {name}")
        for r in reasons:
            print(f"    {r}")
    if RESYNCED:
        whole = sum(1 for m in RESYNCED if m >= DATA_MIB)
        print(f"explore: a power loss marked {sum(RESYNCED) / len(RESYNCED):.1f} MiB on average for the resync "
              f"(of a {DATA_MIB} MiB device; the activity log lists at most {AL_EXTENTS} x 256 KiB, the dirty bitmap "
              f"adds what bitmap mode tracked); the whole device in {whole} of {len(RESYNCED)} states")
    print(f"explore: {total} crash states in {time.time() - t0:.0f} s, {len(failures)} failed (seed {seed})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
