#!/usr/bin/env python3
"""dm-hrl against dm-linear and dm-log-writes, in one boot of Debian's 6.1 kernel.

fio 4 KiB random writes (iodepth 16) and 1 MiB sequential writes on each
target over the same virtio disks, under qemu TCG. Absolute figures are those
of an emulated machine; the ratios, measured in the same boot, are the point.
Aim: hrl no slower than dm-log-writes, which journals the same data.

dm-hrl runs three times: with the default activity log (256 extents of
4 MiB: the 96 MiB the random writes touch fit in it), with one of 8 extents
(32 MiB: the random writes keep evicting), and with none. After its runs each
crashes under random writes (its log stops taking writes, so the removal's
clean superblock is lost) and the next load says how much it resyncs.
"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "vm"))
import vmtest  # noqa: E402


def main():
    build = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build")
    if vmtest.subprocess.run([f"{vmtest.ROOT}/tools/build-driver"], env={**os.environ, "BUILD": build}).returncode:
        return 1
    k = vmtest.Kernel("6.1", build)
    work = f"{build}/bench/vm"
    data, log, spare = vmtest.make_images(None, work, data_mib=128, log_mib=768, spare_mib=768, random_data=False)
    vmtest.format_log(build, log, data)
    logs = {"hrl-al8": f"{work}/log-al8.img", "hrl-noal": f"{work}/log-noal.img"}
    for target, path in logs.items():
        with open(path, "wb") as f:
            f.truncate(768 << 20)
        vmtest.format_log(build, path, data, "--al-extents", "8" if target == "hrl-al8" else "0")
    console = k.boot("bench", [data, log, spare, logs["hrl-al8"], logs["hrl-noal"]], 1, timeout=1500)
    results, cur, buf = {}, None, []
    for line in console.splitlines():
        if line.startswith("BENCH-JSON-BEGIN"):
            cur, buf = tuple(line.split()[1:3]), []
        elif line.startswith("BENCH-JSON-END") and cur:
            w = json.loads("\n".join(buf))["jobs"][0]["write"]
            results[cur] = (w["iops"], w["bw_bytes"] / 2**20, w["clat_ns"]["percentile"]["99.000000"] / 1000,
                            w["io_bytes"], w["runtime"] / 1000)
            cur = None
        elif cur:
            buf.append(line)
    if len(results) != 10:
        print(console[-3000:])
        print(f"bench: got {len(results)} of 10 results")
        return 1
    print(f"fio on {k.kver} under qemu TCG, same disks, one boot")
    # dm-log-writes completes a write before logging it (a kthread logs later);
    # removing the target waits for that backlog. Drained MiB/s counts it:
    # the bytes over fio's runtime plus the time the removal took.
    drain = {(l.split()[1], l.split()[2]): float(l.split()[3])
             for l in console.splitlines() if l.startswith("BENCH-REMOVE")}
    print(f"{'target':12} {'job':6} {'IOPS':>10} {'MiB/s':>9} {'p99 us':>10} {'drain s':>8} {'drained MiB/s':>14}")
    drained = {}
    for (target, job), (iops, bw, p99, io_bytes, runtime) in results.items():
        d = drain.get((target, job), 0.0)
        drained[(target, job)] = io_bytes / 2**20 / (runtime + d)
        print(f"{target:12} {job:6} {iops:10.0f} {bw:9.1f} {p99:10.0f} {d:8.2f} {drained[(target, job)]:14.1f}")
    for job in ("rand", "seq"):
        h, l, w = results[("hrl", job)], results[("linear", job)], results[("log-writes", job)]
        print(f"{job}: hrl/linear IOPS {h[0] / l[0]:.2f}, p99 {h[2] / l[2]:.2f}; "
              f"hrl/log-writes IOPS {h[0] / w[0]:.2f}, p99 {h[2] / w[2]:.2f}, "
              f"drained MiB/s {drained[('hrl', job)] / drained[('log-writes', job)]:.2f}")
    print("(aim: hrl no slower than dm-log-writes; the drained ratio compares the same work done)")
    noal = results[("hrl-noal", "rand")]
    for target in ("hrl", "hrl-al8"):
        r = results[(target, "rand")]
        print(f"activity log: {target}/hrl-noal 4 KiB random write IOPS {r[0] / noal[0]:.2f}, p99 {r[2] / noal[2]:.2f}")
    for line in console.splitlines():
        if line.startswith("BENCH-CRASH"):
            f = line.split()
            target, mode, dirty = f[1], f[2], int(f[7])
            mib = 128 if mode == "resync-required" else dirty * 4096 / 2**20
            print(f"a crash under random writes, {target}: the next load resyncs {mib:.1f} MiB of 128 MiB ({mode})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
