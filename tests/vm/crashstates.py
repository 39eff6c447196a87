"""Crash states of dm-hrl's two devices, built from dm-log-writes recordings.

The model (xfstests' log-writes replay tests, CrashMonkey): a write that
completed is durable once a flush submitted after its completion completed,
or at once when it carried FUA; a power loss may lose any subset of the
others. dm-log-writes logs a plain write only when a later flush is submitted
(with the batch of writes completed by then, just before that flush's entry),
and a FUA write or a flush when it completes. The guest's barriers
(tests/vm/guest/crash.sh) stop every writer, let the devices drain, and put
the mark "crash-K" then a flush on both recordings at that quiet instant. So
for barrier K, on each device: the entries before the mark were durable, the
batch between the mark and the next flush is what had completed without being
made durable, and nothing else had been written. Any subset of the batches,
kept in their logged order, is a state the power loss could have left.

This file also reads just enough of the .hrl log format (docs/log-format.md)
to tell records apart, independently of the project's own reader: the oracle
should not share the code it judges.
"""
import mmap
import struct

SECTOR = 512

# ---- xxHash64 (the log's checksum), from its specification ----------------

_M = (1 << 64) - 1
_P1, _P2, _P3, _P4, _P5 = (11400714785074694791, 14029467366897019727, 1609587929392839161,
                           9650029242287828579, 2870177450012600261)


def _rotl(x, r):
    return ((x << r) | (x >> (64 - r))) & _M


def _round(acc, lane):
    return (_rotl((acc + lane * _P2) & _M, 31) * _P1) & _M


def xxh64(data, seed):
    n, i = len(data), 0
    if n >= 32:
        v = [(seed + _P1 + _P2) & _M, (seed + _P2) & _M, seed & _M, (seed - _P1) & _M]
        lanes = struct.unpack_from(f"<{(n // 32) * 4}Q", data)
        for j in range(0, len(lanes), 4):
            v = [_round(v[0], lanes[j]), _round(v[1], lanes[j + 1]), _round(v[2], lanes[j + 2]),
                 _round(v[3], lanes[j + 3])]
        i = (n // 32) * 32
        h = (_rotl(v[0], 1) + _rotl(v[1], 7) + _rotl(v[2], 12) + _rotl(v[3], 18)) & _M
        for x in v:
            h = ((h ^ _round(0, x)) * _P1 + _P4) & _M
    else:
        h = (seed + _P5) & _M
    h = (h + n) & _M
    while i + 8 <= n:
        (k,) = struct.unpack_from("<Q", data, i)
        h = (_rotl(h ^ _round(0, k), 27) * _P1 + _P4) & _M
        i += 8
    if i + 4 <= n:
        (k,) = struct.unpack_from("<I", data, i)
        h = (_rotl(h ^ ((k * _P1) & _M), 23) * _P2 + _P3) & _M
        i += 4
    while i < n:
        h = (_rotl(h ^ ((data[i] * _P5) & _M), 11) * _P1) & _M
        i += 1
    h ^= h >> 33
    h = (h * _P2) & _M
    h ^= h >> 29
    h = (h * _P3) & _M
    return h ^ (h >> 32)


# ---- the .hrl log -----------------------------------------------------------

SB_MAGIC, RECORD_MAGIC = 0x31474F4C2D4C5248, 0x524C5248
REC_WRITE, REC_DISCARD, REC_MARK, REC_PAD = 1, 2, 3, 4


def csum_seed(uuid):
    seed = 0
    for i, b in enumerate(uuid):
        seed ^= b << (8 * (i % 8))
    return seed


def superblock(log):
    """The valid superblock slot with the higher update_seq, as a dict; None when neither is valid."""
    best = None
    for slot in (0, 4096):
        raw = bytes(log[slot:slot + 512])
        magic, version, flags = struct.unpack_from("<QII", raw, 0)
        uuid = raw[16:32]
        if magic != SB_MAGIC or version != 1 or struct.unpack_from("<Q", raw, 504)[0] != xxh64(raw[:504], csum_seed(uuid)):
            continue
        f = struct.unpack_from("<QQQIIQQQQQQQQQI", raw, 32)
        sb = dict(uuid=uuid, flags=flags, generation=f[0], update_seq=f[1], data_sectors=f[2], bitmap_block=f[3],
                  max_payload=f[4], ring_offset=f[8], ring_bytes=f[9], tail_seq=f[10], tail_offset=f[11],
                  head_seq=f[12], head_offset=f[13], reason=f[14], seed=csum_seed(uuid))
        if best is None or sb["update_seq"] > best["update_seq"]:
            best = sb
    return best


def record_header(unit, seed):
    """A record header unit whose magic and header checksum hold, as a dict; None otherwise."""
    if len(unit) < 64 or struct.unpack_from("<I", unit, 0)[0] != RECORD_MAGIC:
        return None
    if struct.unpack_from("<Q", unit, 56)[0] != xxh64(bytes(unit[:56]), seed):
        return None
    typ, flags, seq, gen, sector, nr, payload, ts, pcsum, hcsum = struct.unpack_from("<HHQQQIIQQQ", unit, 4)
    return dict(type=typ, flags=flags, seq=seq, generation=gen, sector=sector, nr_sectors=nr, payload_bytes=payload,
                payload_csum=pcsum, header_csum=hcsum)


def span(payload_bytes):
    return SECTOR + (payload_bytes + SECTOR - 1) // SECTOR * SECTOR


def valid_record_at(log, sb, pos):
    """The record at ring offset pos if it validates in full (checksums, fields, fits the ring), else None."""
    base = sb["ring_offset"]
    h = record_header(log[base + pos:base + pos + 64], sb["seed"])
    if h is None or h["generation"] != sb["generation"] or pos + span(h["payload_bytes"]) > sb["ring_bytes"]:
        return None
    if h["type"] in (REC_WRITE, REC_MARK) and h["payload_bytes"]:
        start = base + pos + SECTOR
        if xxh64(bytes(log[start:start + h["payload_bytes"]]), sb["seed"]) != h["payload_csum"]:
            return None
    return h


def walk(log, sb):
    """The records a reader finds from the tail: [(seq, ring offset, header)], in order."""
    out, seq, pos, used = [], sb["tail_seq"], sb["tail_offset"], 0
    while used < sb["ring_bytes"]:
        h = valid_record_at(log, sb, pos)
        if h is None or h["seq"] != seq:
            break
        out.append((seq, pos, h))
        s = span(h["payload_bytes"])
        used += s
        seq += 1
        pos = (pos + s) % sb["ring_bytes"]
    return out


def records_past_head(log):
    """Records of an earlier run that a reader could still take for new ones: anywhere in the ring,
    valid in full, with a sequence number at or past the head. [(seq, ring offset)]."""
    sb = superblock(log)
    if sb is None:
        return []
    chain = {pos for _, pos, _ in walk(log, sb)}
    base, found = sb["ring_offset"], []
    for pos in range(0, sb["ring_bytes"], SECTOR):
        if pos in chain or log[base + pos:base + pos + 4] != b"HRLR":
            continue
        h = valid_record_at(log, sb, pos)
        if h is not None and h["seq"] >= sb["head_seq"]:
            found.append((h["seq"], pos))
    return found


# ---- dm-log-writes recordings ----------------------------------------------

LW_FLUSH, LW_FUA, LW_DISCARD, LW_MARK = 1, 2, 4, 8
LW_MAGIC = 0x6A736677736872


class Entry:
    __slots__ = ("index", "flags", "sector", "nr", "off", "mark")

    def plain(self):
        return not self.flags & (LW_FLUSH | LW_FUA | LW_MARK)


class Recording:
    """The entries of a dm-log-writes log device, its data read in place."""

    def __init__(self, path):
        self.file = open(path, "rb")
        self.mm = mmap.mmap(self.file.fileno(), 0, access=mmap.ACCESS_READ)
        magic, version, count, sectorsize = struct.unpack_from("<QQQI", self.mm, 0)
        if magic != LW_MAGIC or sectorsize != SECTOR:
            raise ValueError(f"{path}: not a dm-log-writes log (magic {magic:#x}, sector size {sectorsize})")
        self.entries, pos = [], SECTOR
        for i in range(count):
            sector, nr, flags, data_len = struct.unpack_from("<QQQQ", self.mm, pos)
            e = Entry()
            e.index, e.flags, e.sector, e.nr, e.off, e.mark = i, flags, sector, nr, pos + SECTOR, None
            if flags & LW_MARK:
                e.mark = bytes(self.mm[pos + 32:pos + 32 + data_len]).decode()
                e.nr = 0
            pos += SECTOR + (0 if flags & LW_DISCARD else nr * SECTOR)
            self.entries.append(e)

    def data(self, e):
        return self.mm[e.off:e.off + e.nr * SECTOR]

    def mark_index(self, name):
        for e in self.entries:
            if e.mark == name:
                return e.index
        raise KeyError(f"no mark {name} in the recording")

    def apply(self, image, e, keep_sectors=None):
        """Lays entry e onto image (a bytearray): its data, or zeros for a discard; with
        keep_sectors, only that many of its first sectors (a torn write)."""
        if e.mark is not None or (e.flags & LW_FLUSH and not e.nr):
            return
        n = e.nr if keep_sectors is None else keep_sectors
        start = e.sector * SECTOR
        if e.flags & LW_DISCARD:
            image[start:start + n * SECTOR] = bytes(n * SECTOR)
        else:
            image[start:start + n * SECTOR] = self.data(e)[:n * SECTOR]


def epoch(rec, k):
    """Barrier k on one recording: (index of its mark, [entries written but not yet durable])."""
    m = rec.mark_index(f"crash-{k}")
    batch = []
    for e in rec.entries[m + 1:]:
        if e.flags & LW_FLUSH:
            return m, batch
        if e.mark is None:
            batch.append(e)
    raise ValueError(f"no flush after the mark crash-{k}")


def superblock_write_before(rec, m):
    """When the log's last write before mark m was a superblock update (FUA, in a slot, after a
    flush of its own): (index where that flush's batch starts, the batch). None otherwise."""
    i = m - 1
    while i >= 0 and rec.entries[i].mark is not None:
        i -= 1
    sbw = rec.entries[i] if i >= 0 else None
    if not sbw or not sbw.flags & LW_FUA or sbw.sector not in (0, 8) or sbw.nr != 8:
        return None
    f = rec.entries[i - 1] if i >= 1 else None
    if not f or not f.flags & LW_FLUSH or f.nr:
        return None
    start = i - 1
    while start > 0 and rec.entries[start - 1].plain():
        start -= 1
    return start, [e for e in rec.entries[start:i - 1] if e.mark is None]


# ---- the application's journal (tools/blockio/block_workload.h) ------------

BLOCK = 4096
BLOCK_MAGIC = 0x31304B4C424C5248


def stamp(seed, wid, block):
    return b"".join(struct.pack("<QQQQ", BLOCK_MAGIC, seed, wid, (block << 8) | i) for i in range(BLOCK // 32))


class Journal:
    """What the application did, up to a byte offset of its journal."""

    def __init__(self, text):
        self.lines = text.splitlines(keepends=True)

    def upto(self, nbytes):
        """The operations logged in the first nbytes: [(kind, args...)]."""
        out, n = [], 0
        for line in self.lines:
            n += len(line)
            if n > nbytes or not line.endswith("\n"):
                break
            f = line.split()
            out.append((f[0], *map(int, f[1:])))
        return out


def durable_violations(ops, seed, image, initial, nblocks):
    """Blocks of image that lack what the application made durable. A block may hold the last
    durable write to it (a completed FUA write, or a write completed before a flush that
    returned; discards read as zeros) or anything written to it after; with none durable, its
    first contents too. Returns [(block, what it holds, what was allowed)]."""
    submitted, completed, history = {}, set(), {}
    durable_ids, flush_start = set(), {}
    for op in ops:
        kind = op[0]
        if kind in ("W", "D"):
            wid, block, n = op[1], op[2], op[3]
            submitted[wid] = (kind, block, n, kind == "W" and op[4] == 1)
            for b in range(block, block + n):
                history.setdefault(b, []).append(wid)
        elif kind in ("C", "DD"):
            completed.add(op[1])
            if submitted[op[1]][3]:  # FUA
                durable_ids.add(op[1])
        elif kind == "F":
            flush_start[op[1]] = set(completed)
        elif kind == "FD":
            durable_ids |= flush_start.pop(op[1])
    bad = []
    for b, ids in history.items():
        if b >= nblocks:
            continue
        last = max((i for i, w in enumerate(ids) if w in durable_ids), default=None)
        allowed = ids if last is None else ids[last:]
        got = bytes(image[b * BLOCK:(b + 1) * BLOCK])
        ok = last is None and got == bytes(initial[b * BLOCK:(b + 1) * BLOCK])
        for wid in allowed:
            want = bytes(BLOCK) if submitted[wid][0] == "D" else stamp(seed, wid, b)
            ok = ok or got == want
        if not ok:
            held = struct.unpack_from("<QQQQ", got, 0)
            what = f"write {held[2]}" if held[0] == BLOCK_MAGIC else "other bytes"
            bad.append((b, what, [f"{'discard' if submitted[w][0] == 'D' else 'write'} {w}" for w in allowed]))
    return bad
