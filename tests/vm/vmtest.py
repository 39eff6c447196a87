#!/usr/bin/env python3
"""The VM tier: the real dm-hrl module in Debian's 6.1 LTS and 6.12 LTS kernels.

For each kernel: fetch it (apt-get download, cached), build the module with
W=1 (a warning fails the tier), build an initramfs (busybox, dmsetup, fio,
the modules), and boot it under qemu TCG once per scenario. The guest does the
kernel's part (tests/vm/guest/scenarios.sh); this script prepares the disk
images, reads the console, and checks the images afterwards with the real
hrl-log: replayed bytes, records, bitmaps.

    tests/vm/vmtest.py --build build [--kernels 6.1,6.12] [--only replay,...]
Prints a line per scenario and kernel, then "vm: N passed, M failed".
"""
import argparse
import hashlib
import concurrent.futures
import json
import os
import random
import re
import shutil
import subprocess
import sys
import threading
import time
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MIB = 1 << 20


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw).stdout


class Kernel:
    """A Debian kernel, the module built for it, and a bootable initramfs."""

    def __init__(self, series, build):
        cache = f"{build}/vm/kernels"
        self.series = series
        self.kver = run([f"{ROOT}/tests/vm/fetch-kernel", series, cache]).strip()
        self.root = f"{cache}/{self.kver}/root"
        self.vmlinux = f"{cache}/{self.kver}/vmlinux"
        self.work = f"{build}/vm/work/{self.kver}"
        self.module = f"{build}/driver/{self.kver}/dm-hrl.ko"  # tools/build-driver, W=1
        self.build = build
        os.makedirs(self.work, exist_ok=True)
        self.initrd = self.build_initrd()

    def module_files(self, names):
        """The .ko files (decompressed) for names and their dependencies, in load order."""
        run(["depmod", "-b", self.root, self.kver])
        order, seen = [], set()
        for name in names:
            out = run(["modprobe", "-d", self.root, "-S", self.kver, "--show-depends", name])
            for line in out.splitlines():
                if line.startswith("insmod "):
                    path = line.split()[1]
                    if path not in seen:
                        seen.add(path)
                        order.append(path)
        return order

    def build_initrd(self):
        stage = f"{self.work}/initramfs"
        shutil.rmtree(stage, ignore_errors=True)
        for d in ("bin", "sbin", "lib/modules", "dev", "proc", "sys", "tmp", "run"):
            os.makedirs(f"{stage}/{d}", exist_ok=True)
        shutil.copy("/bin/busybox", f"{stage}/bin/busybox")
        shutil.copy(f"{ROOT}/tests/vm/guest/init", f"{stage}/init")
        os.chmod(f"{stage}/init", 0o755)
        for script in ("scenarios.sh", "crash.sh"):
            shutil.copy(f"{ROOT}/tests/vm/guest/{script}", f"{stage}/{script}")
        binaries = ["/usr/sbin/dmsetup", shutil.which("fio"), "/usr/sbin/e2fsck", "/usr/sbin/make-bcache",
                    f"{self.build}/userspace/hrld", f"{self.build}/userspace/hrlctl",
                    f"{self.build}/userspace/hrl-log", f"{self.build}/tools/hrl-blockio"]
        for binary in binaries:
            shutil.copy(binary, f"{stage}/sbin/")
            for lib in run(["ldd", binary]).split():
                if lib.startswith("/") and os.path.exists(lib):
                    os.makedirs(stage + os.path.dirname(lib), exist_ok=True)
                    shutil.copy(lib, stage + lib)
        names = []
        for path in self.module_files(["virtio_pci", "virtio_blk", "dm-mod", "dm-log-writes", "dm-delay", "dm-flakey",
                                       "bcache", "ext4"]):
            name = os.path.basename(path).split(".ko")[0]
            with open(f"{stage}/lib/modules/{name}.ko", "wb") as f:
                if path.endswith(".xz"):
                    f.write(subprocess.run(["xz", "-dc", path], check=True, capture_output=True).stdout)
                elif path.endswith(".zst"):
                    f.write(subprocess.run(["zstd", "-dc", path], check=True, capture_output=True).stdout)
                else:
                    f.write(open(path, "rb").read())
            names.append(name)
        run(["strip", "--strip-debug", "-o", f"{stage}/lib/modules/dm-hrl.ko", self.module])
        names.append("dm-hrl")
        self.hrl_config(f"{stage}/etc/hrl")
        with open(f"{stage}/modules.order", "w") as f:
            f.write("\n".join(names) + "\n")
        initrd = f"{self.work}/initrd.cpio"
        files = subprocess.run(["find", "."], cwd=stage, check=True, capture_output=True).stdout
        with open(initrd, "wb") as out:
            subprocess.run(["cpio", "--null", "-o", "-H", "newc", "--quiet"], cwd=stage, check=True,
                           input=files.replace(b"\n", b"\0"), stdout=out)
        return initrd

    def hrl_config(self, etc):
        """Certificates (made with hrlctl, as an operator would) and the two hrld configurations."""
        os.makedirs(etc, exist_ok=True)
        hrlctl = f"{self.build}/userspace/hrlctl"
        run([hrlctl, "cert", "init", "--dir", etc, "--site", "vm-site"])
        for node in ("primary", "secondary"):
            run([hrlctl, "cert", "issue", "--dir", etc, node])
        node = ('[node]\nname = "{n}"\ncert = "/etc/hrl/{n}.pem"\nkey = "/etc/hrl/{n}.key"\nca = "/etc/hrl/ca.pem"\n'
                'control_socket = "/run/hrl/{n}.sock"\nmetrics = ""\nretry_seconds = [0.2, 0.5]\nretry_every = 1.0\n')
        def volume(name, role, **keys):
            return f'[[volume]]\nname = "{name}"\nrole = "{role}"\n' + "".join(
                f"{k} = {json.dumps(v)}\n" for k, v in keys.items())
        primary = dict(log="/dev/vdb", peer="127.0.0.1:7789", peer_name="secondary")
        secondary = dict(listen="127.0.0.1:7789", replica="/dev/vdc", state_dir="/var/lib/hrl")
        configs = {
            "primary": ("primary", volume("db0", "primary", **primary, device="hrl0")),
            "secondary": ("secondary", volume("db0", "secondary", **secondary, point_interval=1.0)),
            # make demo: volume "demo" on /dev/mapper/hrl-demo, a secondary with points every 2 s.
            "demo-primary": ("primary", volume("demo", "primary", **primary, device="hrl-demo")),
            "demo-secondary": ("secondary", volume("demo", "secondary", **secondary, point_interval=2.0)),
            # Two sites that change roles (the failover scenario): each has both roles' settings.
            "site-a": ("primary", volume("db0", "primary", **primary, device="hrl-db0", listen="127.0.0.1:7790",
                                         replica="/dev/vda", state_dir="/var/lib/hrl-a")),
            "site-b": ("secondary", volume("db0", "secondary", listen="127.0.0.1:7789", replica="/dev/vdc",
                                           state_dir="/var/lib/hrl-b", log="/dev/vdd", device="hrl-db0b",
                                           peer="127.0.0.1:7790", peer_name="primary")),
            # The crash-state explorer (tests/vm/guest/crash.sh): its devices are xdata, xlog, xrep.
            "crash-primary": ("primary", volume("db0", "primary", **{**primary, "log": "/dev/mapper/xlog"}, device="hrl0")),
            "crash-secondary": ("secondary", volume("db0", "secondary", **{**secondary, "replica": "/dev/mapper/xrep"},
                                                    point_interval=1.0)),
            "crash-secondary-quiet": ("secondary", volume("db0", "secondary",
                                                          **{**secondary, "replica": "/dev/mapper/xrep"},
                                                          point_interval=3600.0)),
        }
        for name, (n, vol) in configs.items():
            with open(f"{etc}/{name}.toml", "w") as f:
                f.write(node.format(n=n) + vol)

    def boot(self, scenario, disks, seed, timeout=240, kill_marker=None, echo=None, args="", mem=768):
        """Boots the guest on the disk images; returns the console text. echo(line), when given,
        sees each line as it arrives; seed and args go on the kernel command line."""
        cmd = ["qemu-system-x86_64", "-accel", "tcg", "-cpu", "max", "-m", str(mem), "-smp", "1",
               "-nodefaults", "-nographic", "-no-reboot", "-serial", "stdio",
               "-kernel", self.vmlinux, "-initrd", self.initrd,
               "-append", f"console=ttyS0 quiet panic=-1 mitigations=off hrl.scenario={scenario} "
                          f"hrl.seed={seed} {args}".strip()]
        for d in disks:
            cmd += ["-drive", f"file={d},if=virtio,format=raw,cache=unsafe,discard=unmap"]
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        lines, killer = [], None
        timer = threading.Timer(timeout, p.kill)
        timer.start()
        for raw in p.stdout:
            line = raw.decode(errors="replace").rstrip("\r\n")
            lines.append(line)
            if echo:
                echo(line)
            if kill_marker and kill_marker in line and not killer:
                killer = threading.Timer(1.5, p.kill)  # in the middle of the writes that follow
                killer.start()
        p.wait()
        timer.cancel()
        return "\n".join(lines)


# ---- host side of the scenarios -------------------------------------------

# What the kernel prints when something is wrong with it, in the console or
# in the "dmesg: " lines /init prints at the end of every boot.
KERNEL_TROUBLE = re.compile(r"\b(BUG|WARNING|INFO): |Oops|general protection fault|kernel BUG at|Call Trace:|"
                            r"UBSAN|KASAN|possible circular locking|scheduling while atomic|"
                            r"sleeping function called from invalid context|blocked for more than|soft lockup")


def kernel_trouble(console):
    """The kernel's own lines (raw console lines or "dmesg: " ones) that say it is in trouble."""
    return [l for l in console.splitlines()
            if (l.startswith("dmesg: ") or l.startswith("[")) and KERNEL_TROUBLE.search(l)]


class Check:
    """One scenario on one kernel: its seed (printed, so a failure replays), its errors."""

    def __init__(self, name, kernel, seed):
        self.name, self.kernel, self.errors, self.console = name, kernel, [], ""
        self.seed = zlib.crc32(f"{seed}:{name}".encode())  # the scenario's own, from the run's seed
        self.rng = random.Random(self.seed)

    def expect(self, cond, what):
        if not cond:
            self.errors.append(what)
        return cond

    def boot(self, scenario, disks, **kw):
        """Boots the guest with this scenario's seed; a kernel in trouble fails the scenario, whatever
        the guest concluded."""
        console = self.kernel.boot(scenario, disks, self.seed, **kw)
        trouble = kernel_trouble(console)
        self.expect(not trouble, f"the kernel complained during '{scenario}': " + " | ".join(trouble[:5]))
        self.console = console
        return console


def hrl_log(build, *args, check=True):
    p = subprocess.run([f"{build}/userspace/hrl-log", *args], text=True, capture_output=True)
    if check and p.returncode:
        raise RuntimeError(f"hrl-log {' '.join(args)} failed ({p.returncode}): {p.stdout}{p.stderr}")
    return p


def dump(build, log, check=True):
    """hrl-log dump's JSON; check=False for a log whose ring holds a hole (dump exits 1 on it)."""
    return json.loads(hrl_log(build, "dump", "--json", log, check=check).stdout)


def make_images(rng, work, data_mib=64, log_mib=64, ring=None, spare_mib=8, random_data=True):
    os.makedirs(work, exist_ok=True)
    data, log, spare = f"{work}/data.img", f"{work}/log.img", f"{work}/spare.img"
    with open(data, "wb") as f:
        if random_data:
            f.write(rng.randbytes(data_mib * MIB))
        else:
            f.truncate(data_mib * MIB)
    for path, size in ((log, log_mib), (spare, spare_mib)):
        with open(path, "wb") as f:
            f.truncate(size * MIB)
    return data, log, spare


def format_log(build, log, data, *extra, ring=None):
    args = ["format", log, "--data", data, "--assume-in-sync", *extra]
    if ring:
        args += ["--ring-size", ring]
    hrl_log(build, *args)


def guest_lines(console, prefix):
    return [l.split(prefix, 1)[1].strip() for l in console.splitlines() if prefix in l]


def passed_in_guest(c, console):
    """The guest said PASS and no check of it said GUEST-FAIL."""
    failed = guest_lines(console, "GUEST-FAIL:")
    c.expect(not failed, "the guest failed: " + "; ".join(failed))
    return c.expect("=== RESULT: PASS" in console and not failed, "the guest scenario failed")


def files_equal(a, b):
    return subprocess.run(["cmp", "-s", a, b]).returncode == 0


def replay_equivalent(c, build, work, data, log, base):
    v = hrl_log(build, "verify", log, check=False)
    c.expect(v.returncode == 0, f"hrl-log verify: {v.stdout}{v.stderr}")
    hrl_log(build, "replay", log, base)
    c.expect(files_equal(data, base), "the replayed copy differs from the data disk")


def scenario_replay(k, build, work, c):
    data, log, spare = make_images(c.rng, work, data_mib=48, log_mib=96)
    format_log(build, log, data)
    base = f"{work}/copy.img"
    shutil.copy(data, base)
    if not passed_in_guest(c, c.boot("replay", [data, log, spare])):
        return
    records = dump(build, log)["records"]
    sizes = {r["sectors"] for r in records if r["type"] == "WRITE"}
    c.expect(len(records) > 100 and max(sizes) >= 1024 and min(sizes) <= 8,
             f"expected many writes from 4 KiB to 512 KiB records, got {len(records)} records, sizes {sorted(sizes)[:5]}..")
    replay_equivalent(c, build, work, data, log, base)


def scenario_flush_fua(k, build, work, c):
    data, log, spare = make_images(c.rng, work, data_mib=16, log_mib=16)
    format_log(build, log, data)
    if not passed_in_guest(c, c.boot("flush_fua", [data, log, spare])):
        return
    records = dump(build, log)["records"]
    c.expect(any(r["type"] == "WRITE" and r["flags"] == "FLUSH" and r["sectors"] == 0 for r in records),
             "no empty FLUSH record in the log")
    c.expect(any(r["type"] == "WRITE" and "FUA" in r["flags"] and r["sector"] == 1600 for r in records),
             "no FUA record for the O_DSYNC write at sector 1600")


def scenario_discard(k, build, work, c):
    data, log, spare = make_images(c.rng, work, data_mib=16, log_mib=32)
    format_log(build, log, data)
    base = f"{work}/copy.img"
    shutil.copy(data, base)
    if not passed_in_guest(c, c.boot("discard", [data, log, spare])):
        return
    discards = [r for r in dump(build, log)["records"] if r["type"] == "DISCARD"]
    c.expect(discards and sum(r["sectors"] for r in discards) == 2048 and discards[0]["sector"] == 4096,
             f"the discard of 1 MiB at 2 MiB is not journaled: {discards}")
    with open(data, "rb") as f:
        f.seek(2 * MIB)
        c.expect(f.read(MIB) == bytes(MIB), "the discarded range does not read as zeros on the data disk")
    replay_equivalent(c, build, work, data, log, base)


def bitmap_bits(log, offset, nbytes):
    with open(log, "rb") as f:
        f.seek(offset)
        area = f.read(nbytes)
    return {i * 8 + b for i, byte in enumerate(area) if byte for b in range(8) if byte >> b & 1}


def scenario_overflow(k, build, work, c):
    data, log, spare = make_images(c.rng, work, data_mib=32, log_mib=8)
    format_log(build, log, data, ring="1M")
    if not passed_in_guest(c, c.boot("overflow", [data, log, spare])):
        return
    d = dump(build, log)
    sb = d["superblock"]
    c.expect("bitmap-mode" in sb["flags"] and sb["resync_reason"] == "ring-overflow",
             f"the log does not say bitmap mode: {sb['flags']} {sb['resync_reason']}")
    journaled = {r["sector"] // 8 for r in d["records"] if r["type"] == "WRITE" and r["sectors"]}
    dirty = bitmap_bits(log, sb["bitmap_offset"], sb["bitmap_bytes"])
    written = {(i * 7) % 8192 for i in range(600)}
    missing = written - journaled - dirty
    c.expect(not missing, f"{len(missing)} written blocks are in neither the log nor the bitmap, e.g. {sorted(missing)[:5]}")
    c.expect(len(dirty) == sb["dirty_bits"], f"bitmap bits {len(dirty)} vs superblock {sb['dirty_bits']}")
    head_before = int(guest_lines(c.console, "STATUS:")[0].split()[1])
    guest_dirty = guest_lines(c.console, "DIRTY:")
    c.expect(guest_dirty and int(guest_dirty[0]) == len(dirty), f"status said {guest_dirty}, the bitmap has {len(dirty)}")

    # Boot again: the reload keeps the ring and the bitmap; ack and take_bitmap end bitmap mode.
    if not passed_in_guest(c, c.boot("overflow_handover", [data, log, spare])):
        return
    reload = guest_lines(c.console, "STATUS-RELOAD:")
    c.expect(reload and reload[0].split()[0] == "bitmap" and int(reload[0].split()[5]) == len(dirty),
             f"after reload: {reload}")
    c.expect(reload and int(reload[0].split()[1]) == head_before,
             f"the reload lost ring records: head {head_before} before, {reload}")
    sb2 = dump(build, log)["superblock"]
    resync = bitmap_bits(log, sb2["resync_offset"], sb2["bitmap_bytes"])
    c.expect(dirty <= resync, "the taken resync bitmap lacks blocks of the dirty bitmap")
    take = guest_lines(c.console, "TAKE:")
    c.expect(take and take[0] == str(head_before), f"take_bitmap answered {take}, the head was {head_before}")
    c.expect("resync-pending" in sb2["flags"] and "bitmap-mode" not in sb2["flags"], f"flags {sb2['flags']}")


# An activity log of 8 extents of 256 KiB: a crash resyncs at most 2 MiB.
SMALL_AL = ("--al-extents", "8", "--al-extent-size", "256K")


def boot_until_killed(build, work, c, scenario, *format_args, data_mib=16, log_mib=16, ring=None):
    """Formats a log and boots the scenario until the host kills qemu at its HRL-KILL-ME-NOW; returns
    (console, data, log, spare), or None when the guest failed first or was not killed mid-scenario."""
    data, log, spare = make_images(c.rng, work, data_mib=data_mib, log_mib=log_mib)
    format_log(build, log, data, *format_args, ring=ring)
    console = c.boot(scenario, [data, log, spare], kill_marker="HRL-KILL-ME-NOW", timeout=400)
    failed = guest_lines(console, "GUEST-FAIL:")
    if not c.expect("HRL-KILL-ME-NOW" in console and "=== RESULT" not in console and not failed,
                    f"the guest failed or was not killed mid-scenario: {failed}"):
        return None
    return console, data, log, spare


def scenario_crash(k, build, work, c):
    if not (got := boot_until_killed(build, work, c, "crash", *SMALL_AL, data_mib=32, log_mib=32)):
        return
    _, data, log, spare = got
    sb = dump(build, log)["superblock"]
    c.expect("clean" not in sb["flags"].split(","), "the log says clean after a kill")
    if not passed_in_guest(c, c.boot("after_crash", [data, log, spare])):
        return
    after = guest_lines(c.console, "STATUS-AFTER-CRASH:")
    c.expect(after and after[0].split()[8] == "unclean-shutdown", f"status after the crash: {after}")
    if after:
        mode, dirty = after[0].split()[0], int(after[0].split()[5])
        c.expect(mode != "resync-required" and 0 < dirty <= 8 * 64,
                 f"the activity log did not bound the resync: mode {mode}, {dirty} dirty blocks of 4 KiB (at most 512)")
    v = hrl_log(build, "verify", log, check=False)
    c.expect(v.returncode == 0, f"the log after a crash does not verify: {v.stdout}")


def scenario_ack_errors(k, build, work, c):
    data, log, spare = make_images(c.rng, work, data_mib=16, log_mib=16)
    format_log(build, log, data)
    if not passed_in_guest(c, c.boot("ack_errors", [data, log, spare])):
        return
    sb = dump(build, log)["superblock"]
    c.expect(sb["tail_seq"] == 5, f"tail_seq on disk {sb['tail_seq']}, expected 5")
    dmesg = "\n".join(guest_lines(c.console, "dmesg:"))
    # each refusal for its own reason: the message, then the six tables in the guest's order
    for text in ("ack 999999999 is beyond the head", "unknown message 'frobnicate'",
                 "end_resync: no bitmap was taken", "expected <data_dev> <log_dev> [0]",
                 "tracks 32768 sectors, the table maps 32760", "not an hrl log",
                 "data and log must be different devices", "cannot open the data device"):
        c.expect(text in dmesg, f"dmesg lacks '{text}'")
    c.expect(len(guest_lines(c.console, "REFUSED-TABLE:")) == 6, "not every bad table was refused")
    c.expect(guest_lines(c.console, "MARK:") == ["9"], f"mark answered {guest_lines(c.console, 'MARK:')}, expected seq 9")
    marks = [r for r in dump(build, log)["records"] if r["type"] == "MARK"]
    c.expect(marks and marks[0]["name"] == "before-upgrade" and marks[0]["seq"] == 9, f"MARK records {marks}")


def scenario_overlap(k, build, work, c):
    data, log, spare = make_images(c.rng, work, data_mib=16, log_mib=16)
    format_log(build, log, data)
    base = f"{work}/copy.img"
    shutil.copy(data, base)
    if not passed_in_guest(c, c.boot("overlap", [data, log, spare])):
        return
    writes = [r for r in dump(build, log)["records"] if r["type"] == "WRITE" and r["sectors"]]
    # Log order is A (sector 80), C (sector 792), B (sector 80): B waited for A.
    c.expect([r["sector"] for r in writes] == [80, 792, 80], f"log order {[r['sector'] for r in writes]}")
    sha = {w: guest_lines(c.console, f"SHA-{w}:")[0] for w in "AB"}
    with open(data, "rb") as f:
        f.seek(80 * 512)
        landed = hashlib.sha256(f.read(4096)).hexdigest()
    c.expect(sha["A"] != sha["B"] and landed == sha["B"], f"sector 80 holds {landed}, not B's {sha['B']}")
    replay_equivalent(c, build, work, data, log, base)  # the log's order is the order the bytes landed


def scenario_interop(k, build, work, c):
    data, log, spare = make_images(c.rng, work, data_mib=32, log_mib=64)
    format_log(build, log, data)
    base = f"{work}/copy.img"
    shutil.copy(data, base)
    wl = subprocess.run([f"{build}/tools/hrl-workload", "--log", log, "--data", data, "--ops", "120",
                         "--max-write", "1M", "--seed", str(c.seed)], text=True, capture_output=True)
    if not c.expect(wl.returncode == 0, f"hrl-workload: {wl.stderr}"):
        return
    before = dump(build, log)
    if not passed_in_guest(c, c.boot("interop", [data, log, spare])):
        return
    loaded = guest_lines(c.console, "LOADED:")
    c.expect(loaded and int(loaded[0].split()[1]) == before["superblock"]["head_seq"],
             f"the target found head {loaded}, userspace wrote up to {before['superblock']['head_seq']}")
    after = dump(build, log)
    c.expect(after["superblock"]["max_payload"] == before["superblock"]["max_payload"] == 1 << 20,
             "the log's maximum payload changed")
    c.expect(len(after["records"]) > len(before["records"]), "the target appended nothing")
    replay_equivalent(c, build, work, data, log, base)


def scenario_replicate(k, build, work, c):
    data, log, spare = make_images(c.rng, work, data_mib=48, log_mib=128, spare_mib=48)
    shutil.copy(data, spare)  # the replica starts equal to the data: hrlctl volume create --assume-in-sync
    if not passed_in_guest(c, c.boot("replicate", [data, log, spare])):
        return
    c.expect(files_equal(data, spare), "the replica differs from the data device")
    sb = dump(build, log)["superblock"]
    c.expect(sb["tail_seq"] == sb["head_seq"] and sb["head_seq"] > 100,
             f"the log was not acknowledged to its head through dm: tail {sb['tail_seq']}, head {sb['head_seq']}")


def replica_equal_after(scenario, k, work, c, log_mib, data_mib=48, fourth_mib=0, ext4=False, formatted=False):
    """A guest scenario over a data disk and its replica, equal at the start (random bytes, or a
    new ext4); with fourth_mib, a blank fourth disk; with formatted, the log formatted in sync
    (else the guest makes the volume). They must end equal. Returns whether the guest passed."""
    data, log, spare = make_images(c.rng, work, data_mib=data_mib, log_mib=log_mib, spare_mib=data_mib,
                                   random_data=not ext4)
    if ext4:
        run(["mkfs.ext4", "-q", "-F", data])
    shutil.copy(data, spare)  # hrlctl volume create --assume-in-sync
    if formatted:
        format_log(c.kernel.build, log, data)
    disks = [data, log, spare]
    if fourth_mib:
        disks.append(f"{work}/fourth.img")
        with open(disks[-1], "wb") as f:
            f.truncate(fourth_mib * MIB)
    if not passed_in_guest(c, c.boot(scenario, disks, timeout=500)):
        return False
    return c.expect(files_equal(data, spare), f"the replica differs from the data device after the {scenario} scenario")


def scenario_points(k, build, work, c):
    """ext4 on dm-hrl; the guest checks each point's image (on the fourth disk)."""
    if replica_equal_after("points", k, work, c, log_mib=64, data_mib=64, fourth_mib=64, ext4=True):
        c.expect(any("app-consistent and" in l for l in guest_lines(c.console, "CHECK:")), "no points were checked")


def scenario_failover(k, build, work, c):
    """A planned failover to the other site (its log on the fourth disk) and a failback."""
    if replica_equal_after("failover", k, work, c, log_mib=32, fourth_mib=32):
        sb = dump(build, f"{work}/log.img")["superblock"]
        c.expect(sb["generation"] == 3, f"site-a's log is at generation {sb['generation']}, not 3 after two failovers")


def scenario_resync(k, build, work, c):
    replica_equal_after("resync", k, work, c, log_mib=16)


def scenario_crash_states(k, build, work, c):
    """The crash-state explorer (explore.py), eight power losses of the primary (make crash-check explores thousands)."""
    import explore  # it imports this file
    checked, failures = explore.run_kernel(k, build, work, c.seed, recordings=1, states_per_run=8, extra=1,
                                           long=False, log=lambda line: None)
    c.expect(checked >= 6, f"only {checked} crash states were checked")
    for name, reasons in failures:
        c.errors.append(f"{name}: " + " / ".join(r.strip() for r in reasons[:6]) +
                        f" (replay: tests/vm/explore.py --seed {c.seed} --kernels {k.series} --states 8 --keep)")


def scenario_log_error(k, build, work, c):
    data, log, spare = make_images(c.rng, work, data_mib=16, log_mib=16)
    passed_in_guest(c, c.boot("log_error", [data, log, spare]))


def scenario_log_fail(k, build, work, c):
    data, log, spare = make_images(c.rng, work, data_mib=64, log_mib=32)
    passed_in_guest(c, c.boot("log_fail", [data, log, spare]))


def scenario_offset_flush(k, build, work, c):
    data, log, spare = make_images(c.rng, work, data_mib=16, log_mib=16)
    format_log(build, log, data)
    if not passed_in_guest(c, c.boot("offset_flush", [data, log, spare])):
        return
    flushes = [r for r in dump(build, log)["records"] if r["type"] == "WRITE" and r["sectors"] == 0]
    c.expect(flushes and all(r["sector"] == 0 for r in flushes), f"FLUSH records not at sector 0: {flushes}")
    v = hrl_log(build, "verify", log, check=False)
    c.expect(v.returncode == 0, f"hrl-log verify: {v.stdout}{v.stderr}")


def scenario_bitmap_flush(k, build, work, c):
    data, log, spare = make_images(c.rng, work, data_mib=4096, log_mib=8, random_data=False)
    format_log(build, log, data, ring="1M")
    passed_in_guest(c, c.boot("bitmap_flush", [data, log, spare]))


def scenario_memory(k, build, work, c):
    data, log, spare = make_images(c.rng, work, data_mib=64, log_mib=96)
    format_log(build, log, data)
    passed_in_guest(c, c.boot("memory", [data, log, spare], mem=512, timeout=400))


def scenario_slow_log(k, build, work, c):
    replica_equal_after("slow_log", k, work, c, log_mib=16, formatted=True, data_mib=16)


def scenario_log_fail_replicated(k, build, work, c):
    replica_equal_after("log_fail_replicated", k, work, c, log_mib=16, formatted=True, data_mib=32)


def scenario_corrupt_cut(k, build, work, c):
    replica_equal_after("corrupt_cut", k, work, c, log_mib=16, formatted=True, data_mib=32)


def covers(d, log, block):
    """How the log on disk (its dump d) says block (of 4 KiB) may differ after a crash, or None:
    resync-required, an activity log listing every extent or the block's, or the block's dirty bit."""
    sb, al = d["superblock"], d.get("activity_log", {})
    if "resync-required" in sb["flags"].split(","):
        return "resync-required"
    if al.get("all"):
        return "activity log: every extent"
    if block * 4096 // sb["al_extent_bytes"] in al.get("extents", []):
        return "activity log: its extent"
    bit = block * 4096 // sb["bitmap_block"]
    with open(log, "rb") as f:
        f.seek(sb["bitmap_offset"] + bit // 8)
        if f.read(1)[0] >> (bit % 8) & 1:
            return "dirty bitmap"
    return None


def killed_then_covered(k, build, work, c, scenario, block, what, *markers):
    """Boots scenario (a small activity log) until the host kills it; the log on disk must cover block.
    On failure, says how the guest's lines after markers and the log on disk stood. Returns the console."""
    if not (got := boot_until_killed(build, work, c, scenario, *SMALL_AL)):
        return None
    console, _, log, _ = got
    d = dump(build, log)
    how = covers(d, log, block)
    print(f"    {k.kver} {c.name}: after the crash block {block} is covered by {how}; the activity log on disk: "
          f"{d.get('activity_log')}", flush=True)
    lines = [line for m in markers for line in guest_lines(console, m)]
    c.expect(how, f"after the crash nothing on the log covers block {block}, {what}: {lines} "
                  f"superblock {d['superblock']['flags']}, activity log {d.get('activity_log')}")
    return console


def scenario_al_after_failure(k, build, work, c):
    """A log failure, the pass that answers it, a write to a new extent, a crash: the log still covers it."""
    killed_then_covered(k, build, work, c, "al_after_failure", 323, "written after the take", "TAKEN:", "WRITTEN:")


def block_of(path, block):
    with open(path, "rb") as f:
        f.seek(block * 4096)
        return f.read(4096)


def scenario_al_leave_failed(k, build, work, c):
    """After a log failure and its pass, the block that leaves "every extent" lands but reports an error;
    a write to a new extent follows. The guest copied the disks 3 s later (to the spare): as a power loss
    at that instant, if the write reached the data device the log covers it. The write completes later."""
    block = 323
    data, log, spare = make_images(c.rng, work, data_mib=16, log_mib=16)
    format_log(build, log, data, *SMALL_AL)
    before = block_of(data, block)
    console = c.boot("al_leave_failed", [data, log, spare])
    passed_in_guest(c, console)
    if not c.expect(guest_lines(console, "COPIED:"), "the guest did not copy the disks"):
        return
    # The power loss: the log as the copy has it before its ring (nothing is journaled in bitmap mode).
    ring = dump(build, log, check=False)["superblock"]["ring_offset"]  # a hole where the failed record was
    crashed = f"{work}/crashed-log.img"
    shutil.copyfile(log, crashed)
    with open(spare, "rb") as src, open(crashed, "r+b") as dst:
        src.seek(4096)
        dst.write(src.read(ring))
    d = dump(build, crashed, check=False)
    al, taken = d.get("activity_log", {}), guest_lines(console, "TAKEN:")
    seq = int(taken[0].rsplit(" ", 1)[1]) if taken else -1
    c.expect(al.get("seq") == seq + 2 and not al.get("all"),
             f"the block that failed did not land (the fault proves nothing): {al}, seq before the pass {seq}")
    landed = block_of(spare, 0) != before
    how = covers(d, crashed, block)
    print(f"    {k.kver} {c.name}: at the copy block {block} {'had' if landed else 'had not'} reached the data "
          f"device; covered by {how}; the activity log {al}; {guest_lines(console, 'COPIED:')}", flush=True)
    c.expect(not landed or how, f"block {block} reached the data device and nothing on the log covers it: "
                                f"superblock {d['superblock']['flags']}, activity log {al}")


def scenario_al_write_in_take(k, build, work, c):
    """A write under the pass's "every extent" block, a block listing another extent, a crash: the log
    still covers the first write."""
    if not killed_then_covered(k, build, work, c, "al_write_in_take", 323,
                               "written while the pass wrote its superblock", "WRITTEN:", "TAKEN:", "WRITTEN-AFTER:"):
        return
    d = dump(build, f"{work}/log.img")
    al = d.get("activity_log", {})
    c.expect(not al.get("all") and 448 * 4096 // d["superblock"]["al_extent_bytes"] in al.get("extents", []),
             f"the block listing the later write did not replace \"every extent\" (nothing was tested): {al}")


def scenario_al_hole(k, build, work, c):
    """A failed MARK, writes journaled after it, an eviction, a crash: the log still covers their blocks."""
    console = killed_then_covered(k, build, work, c, "al_hole", 1, "journaled after the failed mark",
                                  "AFTER-MARK:", "BEFORE-CRASH:")
    if console:
        crash = guest_lines(console, "BEFORE-CRASH:")
        c.expect(crash and "mark: device-mapper: message ioctl" in crash[0], f"the mark did not fail: {crash}")


def scenario_al_refused(k, build, work, c):
    """The log refuses every write (the failure's superblock too), answers again, then a crash with no
    flush or message between: the superblock was tried again, the log on disk covers the write."""
    killed_then_covered(k, build, work, c, "al_refused", 323, "written while the log refused writes",
                        "REFUSED:", "BEFORE-CRASH:")


def scenario_suspend_refused(k, build, work, c):
    """A suspend the log refused, a resume that fails, a new table, a resume once the log answers: the
    whole device is required again, on disk (the host kills qemu and looks)."""
    killed_then_covered(k, build, work, c, "suspend_refused", 323, "written while the log refused writes",
                        "REFUSED:", "ON-DISK:", "RESUMED:")


def scenario_stale_table(k, build, work, c):
    """A target left active by another target's failed preresume, a new table on its log, a crash: the
    old target wrote nothing over the log the new table loaded (it would say clean)."""
    if not (got := boot_until_killed(build, work, c, "stale_table", *SMALL_AL)):
        return
    console, _, log, _ = got
    flags = dump(build, log)["superblock"]["flags"].split(",")
    c.expect("clean" not in flags, f"the log says clean while a table was live on it: {flags}; "
                                   f"{guest_lines(console, 'RESUMED:')}")


def scenario_take_suspend(k, build, work, c):
    data, log, spare = make_images(c.rng, work, data_mib=16, log_mib=16)
    format_log(build, log, data, *SMALL_AL)
    passed_in_guest(c, c.boot("take_suspend", [data, log, spare]))


def scenario_two_devices(k, build, work, c):
    """A second device on a live log, a table holding one log twice: refused; a copy of the log on another
    device is not; the log verifies after."""
    data, log, spare = make_images(c.rng, work, data_mib=16, log_mib=16, spare_mib=32)
    format_log(build, log, data, *SMALL_AL)
    if passed_in_guest(c, c.boot("two_devices", [data, log, spare])):
        v = hrl_log(build, "verify", log, check=False)
        c.expect(v.returncode == 0, f"the log does not verify after two devices took turns on it: {v.stdout}")


def scenario_race_take(k, build, work, c):
    replica_equal_after("race_take", k, work, c, log_mib=16, formatted=True, data_mib=16)


def scenario_corrupt(k, build, work, c):
    replica_equal_after("corrupt", k, work, c, log_mib=16)


def scenario_ack_crash(k, build, work, c):
    """A process crash while an ack's superblock write is held in flight: the load walks from the tail the
    disk has, and finds every record from it on (none overwritten in the ring space the ack would free)."""
    if not (got := boot_until_killed(build, work, c, "ack_crash", ring="4M")):
        return
    console, data, log, spare = got
    before, crash = guest_lines(console, "BEFORE-ACK:"), guest_lines(console, "BEFORE-CRASH:")
    if not c.expect(before and crash, f"no status before the ack or before the crash: {before} {crash}"):
        return
    before, crash = before[0].split(), crash[0].split()
    c.expect(guest_lines(console, "ACK-HELD:"), "the ack was not held in flight when qemu was killed")
    c.expect(int(crash[1]) > int(before[1]), f"no write was journaled while the ack was held: {before} -> {crash}")
    c.expect(crash[2] == before[2], f"the tail moved before its superblock was written: {before} -> {crash}")
    if not passed_in_guest(c, c.boot("after_ack_crash", [data, log, spare])):
        return
    after = guest_lines(c.console, "STATUS-AFTER-CRASH:")
    if not c.expect(after, "no status after the crash"):
        return
    after = after[0].split()
    c.expect(after[0] != "resync-required" and after[8] == "unclean-shutdown",
             f"a crash during an ack cost more than the activity log's resync: {after}")
    c.expect(after[2] == before[2], f"the tail after the crash is {after[2]}, the disk's tail was {before[2]} "
                                    f"(status before the ack: {before}; before the crash: {crash})")
    c.expect(int(after[1]) >= int(crash[1]),
             f"records lost: the log ends at {after[1]} after the crash, it held up to {crash[1]} before it "
             f"({before[1]} before the ack)")
    v = hrl_log(build, "verify", log, check=False)
    c.expect(v.returncode == 0, f"the log after the crash does not verify: {v.stdout}")


SCENARIOS = {
    "replay": scenario_replay,
    "flush_fua": scenario_flush_fua,
    "discard": scenario_discard,
    "overflow": scenario_overflow,
    "crash": scenario_crash,
    "ack_errors": scenario_ack_errors,
    "overlap": scenario_overlap,
    "interop": scenario_interop,
    "replicate": scenario_replicate,
    "resync": scenario_resync,
    "corrupt": scenario_corrupt,
    "points": scenario_points,
    "failover": scenario_failover,
    "log_error": scenario_log_error,
    "log_fail": scenario_log_fail,
    "offset_flush": scenario_offset_flush,
    "bitmap_flush": scenario_bitmap_flush,
    "memory": scenario_memory,
    "slow_log": scenario_slow_log,
    "log_fail_replicated": scenario_log_fail_replicated,
    "corrupt_cut": scenario_corrupt_cut,
    "race_take": scenario_race_take,
    "ack_crash": scenario_ack_crash,
    "al_after_failure": scenario_al_after_failure,
    "al_leave_failed": scenario_al_leave_failed,
    "al_write_in_take": scenario_al_write_in_take,
    "al_hole": scenario_al_hole,
    "al_refused": scenario_al_refused,
    "suspend_refused": scenario_suspend_refused,
    "stale_table": scenario_stale_table,
    "take_suspend": scenario_take_suspend,
    "two_devices": scenario_two_devices,
    "crash_states": scenario_crash_states,
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--kernels", default="6.1,6.12")
    ap.add_argument("--only", default=",".join(SCENARIOS))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--show", action="store_true", help="print every console")
    ap.add_argument("--seed", type=int, default=None, help="replay a run: its seed (printed at the start)")
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 31)
    print(f"vm: seed {seed} (replay with --seed {seed})", flush=True)
    build = os.path.abspath(args.build)
    work = f"{build}/vm/work"
    t0 = time.time()
    r = subprocess.run([f"{ROOT}/tools/build-driver"], env={**os.environ, "BUILD": build}, text=True)
    if r.returncode:
        print("vm: 0 passed, 1 failed (dm-hrl does not build cleanly)")
        return 1
    kernels = [Kernel(series, build) for series in args.kernels.split(",")]

    def one(k, name):
        c = Check(name, k, seed)
        scratch = f"{work}/{k.kver}/{name}"
        shutil.rmtree(scratch, ignore_errors=True)
        t = time.time()
        try:
            SCENARIOS[name](k, build, scratch, c)
        except Exception as e:  # a failed tool is a failed scenario, with its message
            c.errors.append(f"{type(e).__name__}: {e}")
        c.seconds = time.time() - t
        if not c.errors:
            shutil.rmtree(scratch, ignore_errors=True)
        return c

    jobs = [(k, n) for k in kernels for n in args.only.split(",")]
    passed = failed = 0
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        for c in pool.map(lambda kn: one(*kn), jobs):
            ok = not c.errors
            passed += ok
            failed += not ok
            print(f"{'PASS' if ok else 'FAIL'} {c.kernel.kver:24} {c.name:12} {c.seconds:5.1f}s  seed {c.seed}",
                  flush=True)
            for e in c.errors:
                print(f"    {e}")
            if (c.errors or args.show) and c.console:
                print("    console (last 40 lines):\n      " + "\n      ".join(c.console.splitlines()[-40:]))
            if c.errors and c.console:  # the whole of it, for what the last lines do not show
                path = f"{work}/{c.kernel.kver}-{c.name}-console.txt"
                with open(path, "w") as f:
                    f.write(c.console)
                print(f"    whole console: {path}")
    print(f"vm tier: {time.time() - t0:.0f}s")
    print(f"vm: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
