// SPDX-License-Identifier: GPL-2.0
/*
 * dm-hrl: a device-mapper target that journals every write, with its data,
 * into a ring log on a second device, for block-level replication (hrld).
 *
 * Table:   <start> <len> hrl <data_dev> <log_dev> [<#opt_args> <opt_args>...]
 *          The log device holds an .hrl log (hrl-log format), made for a
 *          data device of exactly <len> sectors.
 * Status:  <mode> <head_seq> <tail_seq> <ring_used> <ring_bytes>
 *          <dirty_blocks> <resync_blocks> <resync_take_seq> <reason> <flags>
 *          <completed_seq> <durable_seq>
 * Messages: ack <seq> | mark <name> | take_bitmap | end_resync | request_resync
 *
 * The log format and its rules are those of include/hrl/log_format.h and
 * docs/log-format.md; docs/dm-hrl.md describes this target's interface.
 *
 * Reads pass through. A write (or discard, or empty flush) is copied at
 * submission into pages of our own; those pages feed both the data device
 * and the log record, so the log holds exactly what reached the device. The
 * original bio completes when both writes have. Writes that overlap one in
 * flight wait for it, in arrival order, so the log's order is the order data
 * reached the device. When the ring is full the target tracks writes in a
 * dirty bitmap instead, until userspace takes the bitmap for a resync.
 *
 * Two points follow the records: completed (every record below it has
 * reached both devices) and durable (every record below it is on the log
 * device's stable media: a flush of the log that started after they
 * completed has finished). The target flushes the log on its own, a few
 * milliseconds after records complete or at once when a MiB waits, and never
 * puts records more than HRL_MAX_INFLIGHT_BYTES past the durable point: after
 * a power loss no record of the crashed run survives further past the head
 * than the load erases.
 *
 * Every change of the metadata (superblock, bitmaps) is made by one ordered
 * worker, which writes it first and changes the in-core state after; the
 * messages hand it their work and wait (as dm-era does). State lives on the
 * log device between a postsuspend (which writes it, with the clean flag)
 * and the next preresume (which reads it back), so a table reload never has
 * two writers on one log. One thing only lives in the module instead: a
 * resync of the whole device that the postsuspend could not write.
 */
#include <linux/bio.h>
#include <linux/device-mapper.h>
#include <linux/dm-io.h>
#include <linux/mempool.h>
#include <linux/module.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>
#include <linux/wait.h>
#include <linux/xxhash.h>
#include <linux/ktime.h>
#include <linux/timekeeping.h>

#include <hrl/log_format.h>
#include "hrl-compat.h"

#define DM_MSG_PREFIX "hrl"

/* Largest record payload the target writes: one bio of pages plus the header. */
#define HRL_KERNEL_MAX_PAYLOAD	(512U << 10)
#define HRL_MAX_IO_PAGES	(HRL_KERNEL_MAX_PAYLOAD >> PAGE_SHIFT)
/* Largest payload of a log the target loads: record spans fit spans[] (u16 sectors). */
#define HRL_LOAD_MAX_PAYLOAD	(16U << 20)
/* Writes in flight at once; more wait in the deferred list. */
#define HRL_MAX_INFLIGHT_IOS	128U
/*
 * Pages held in reserve for the copies: two header pages per write in
 * flight, and 4 MiB of data. When they run short one write at a time waits
 * for the pool, so writes holding part of it never wait for one another.
 */
#define HRL_POOL_PAGES		(2 * HRL_MAX_INFLIGHT_IOS + (4U << 20) / PAGE_SIZE)
/* The log is flushed when this many completed record bytes are not durable... */
#define HRL_FLUSH_BYTES		(1U << 20)
/* ...or this long after records completed. */
#define HRL_FLUSH_DELAY_MS	10
/* Fill levels (percent of the ring) that raise a dm event when crossed upwards. */
static const unsigned int hrl_fill_events[] = { 50, 75, 90 };

/* A position in the log: a record's sequence number, ring offset and stream offset. */
enum { HRL_BS_DATA, HRL_BS_RECORD, HRL_BS_PAD, HRL_NR_BIOSETS };

struct hrl_pos {
	u64 seq;
	u64 off;	/* in the ring */
	u64 stream;	/* ring bytes reserved since the load: distances across wraps */
};

struct hrl_c {
	struct dm_target *ti;
	struct dm_dev *data_dev;
	struct dm_dev *log_dev;
	struct dm_io_client *io_client;
	struct workqueue_struct *io_wq;		/* the I/O path's work: never waits on metadata */
	struct workqueue_struct *meta_wq;	/* ordered: every change of the metadata */
	struct work_struct deferred_work;	/* dispatches writes that waited */
	struct work_struct event_work;		/* dm_table_event() needs process context */
	struct delayed_work flush_work;		/* flushes the log: completed records become durable */
	struct delayed_work retry_work;		/* runs the metadata worker again after a refused write */
	struct work_struct meta_work;		/* the metadata worker */
	/*
	 * Child bios, one set per kind: a write takes one bio of each kind, in
	 * this order, and never waits for a second bio of a set it holds one of
	 * (bio_alloc_bioset's rule). The flush of the log takes a PAD-set bio.
	 */
	struct bio_set bs[HRL_NR_BIOSETS];
	unsigned int nr_bs_ready;
	mempool_t *page_pool;			/* header pages and data copies */
	struct mutex pool_mutex;		/* one write at a time waits for the pool */

	/* Geometry, fixed by the superblock read in the constructor. */
	u8 uuid[16];
	u64 seed;
	u64 generation;
	u64 data_sectors;
	u32 bitmap_block;
	u32 max_payload;	/* the log's, for validation and the superblock */
	u32 max_io;		/* the largest record this target writes */
	u64 bitmap_offset;
	u64 resync_offset;
	u64 bitmap_bytes;
	u64 ring_offset;
	u64 ring_bytes;
	u64 nr_bits;
	u64 created_ns;
	u64 nr_slots;		/* entries of spans[]: the most records the ring can hold */
	unsigned long nr_bm_pages;	/* pages of a bitmap area */

	/*
	 * meta_lock is held by the metadata worker while it works: the
	 * functions that assert it run only there. Taken before lock.
	 */
	struct mutex meta_lock;
	struct list_head rpcs;		/* messages waiting for the worker (under lock) */
	bool sb_stale;			/* the superblock lags the in-core flags (under lock) */
	u64 sb_update_seq;
	bool active;		/* between preresume and postsuspend */
	struct list_head target;	/* in hrl_targets from the constructor to the destructor */
	bool owns_log;		/* this target may write its log (under hrl_targets_mutex) */
	struct hrl_superblock *sb_buf;	/* the superblock being written */
	void *dirty_disk;	/* the dirty bitmap area as last written (bitmap_bytes) */
	u64 disk_dirty_csum;	/* checksums of the bitmap areas as last written */
	u64 disk_resync_csum;

	/* lock protects the ring, the flags, the lists and the dirty bitmap's contents. */
	spinlock_t lock;
	struct hrl_pos head;	/* where the next record goes */
	struct hrl_pos tail;	/* the oldest record not acknowledged */
	struct hrl_pos done;	/* every record below it has completed on both devices */
	struct hrl_pos durable;	/* every record below it is on the log's stable media */
	struct hrl_pos flush_snap;	/* done when the log flush in flight began */
	bool log_flushing;
	bool log_failed;	/* a write or flush of the log failed: no more flushes of it */
	bool quiescing;		/* suspending: no new flush of the log */
	u64 used;		/* ring bytes from tail to head */
	unsigned int ios_inflight;
	unsigned int bitmap_inflight;	/* writes tracked in the bitmap, not complete */
	u16 *spans;		/* span in sectors of record seq, at seq % nr_slots */
	unsigned long *done_slots;	/* records completed out of order, at seq % nr_slots */
	u32 flags;		/* HRL_SB_* (CLEAN is only ever on disk) */
	u32 reason;
	u64 required_gen;	/* +1 each time a resync of the whole device is required */
	u64 take_seq;
	unsigned int fill_level;	/* index of the next fill event to raise */
	struct list_head inflight;	/* struct hrl_io being written */
	struct list_head deferred;	/* struct hrl_io waiting for an overlapping one or for room */
	struct bio_list flush_bios;	/* empty flushes in bitmap mode, for the worker */
	unsigned long *dirty;	/* kvzalloc'ed, bitmap_bytes; swapped with spare at take_bitmap */
	bool dirty_any;		/* a bit of dirty set since it was taken: no scan under the lock */
	unsigned long *spare;
	unsigned long *dirty_pages;	/* pages of the dirty bitmap changed since written (under lock) */
	unsigned long *resync;	/* changed only by the metadata worker */
	wait_queue_head_t done_wait;	/* done or durable moved */

	/*
	 * The activity log (al_slots 0: the log has none). The slots and flags
	 * are under lock; transactions are written by the metadata worker.
	 */
	u64 al_offset;
	u32 al_shift;		/* sectors of an extent, log2 */
	u32 al_slots;
	struct hrl_al_slot *al;
	struct hrl_al_block *al_buf;	/* the block being written (metadata worker) */
	u64 al_seq;		/* of the newest block on disk */
	u64 al_clock;
	bool al_all;		/* the block on disk lists every extent */
	bool al_want_all;	/* a write spans more extents than a write may hold */
	bool al_want_room;	/* a write waits for a free slot */
	bool al_txn_wanted;	/* the metadata worker has a transaction to write */
	unsigned int al_all_inflight;	/* writes let through by "every extent" */
	u64 al_all_max_seq;	/* the newest record of those writes */
	bool failure_recorded;	/* after a log failure, a superblock saying so was written (or tried) */
	bool failure_written;	/* ... and it reached the disk */
};

/*
 * A resync of the whole device that a suspend could not write to its log
 * (the log refused the superblock), by the log's uuid and generation: the
 * next resume of any table on that log requires it again, since the load
 * cannot know it, nor the writes that went without the activity log
 * meanwhile. A log formatted again decided its own resync: the entry goes.
 * A power loss or an unload before that resume loses it (the kernel log
 * says so).
 */
struct hrl_unwritten {
	struct list_head list;
	u8 uuid[16];
	u64 generation;
	u32 reason;
};

static LIST_HEAD(hrl_unwritten_list);
static DEFINE_MUTEX(hrl_unwritten_mutex);	/* taken inside a target's meta_lock */

/*
 * One writer per log device: a target owns its log from its preresume until
 * its postsuspend, a failed load or its destruction. Two devices over one log would each
 * write records and superblocks the other does not know of. A target of an
 * older table of the same device gives the log up to the new table's: it
 * was left active when a preresume of its table failed (no postsuspend
 * came), and is destroyed only after the new table resumed.
 */
static LIST_HEAD(hrl_targets);
/* Held briefly, never while waiting for a target's work, never by a worker. */
static DEFINE_MUTEX(hrl_targets_mutex);

/* An extent of the activity log, in core. */
enum hrl_al_state {
	HRL_AL_FREE,		/* the slot is unused */
	HRL_AL_ADDING,		/* a write waits for it: the next transaction lists it */
	HRL_AL_COMMITTING,	/* listed by the transaction being written */
	HRL_AL_ACTIVE,		/* listed on disk: writes to it may go */
	HRL_AL_LEAVING,		/* the transaction being written drops it: writes to it wait */
};

struct hrl_al_slot {
	u64 extent;
	u64 last_use;		/* hc->al_clock at its last write: the oldest leaves first */
	u64 max_seq;		/* the newest record of a write to it: it leaves once all below completed */
	unsigned int inflight;	/* writes to it not complete */
	enum hrl_al_state state;
};

/* A write of up to 512 KiB holds at most this many extents; a larger span (a discard) holds "every extent". */
#define HRL_AL_IO_EXTENTS	16U

/* Per-bio state: one write, its copy and its two (or three) child bios. */
struct hrl_io {
	struct hrl_c *hc;
	struct bio *orig;
	struct list_head node;
	sector_t sector;	/* on the data device */
	u32 nr_sectors;
	u16 type;
	u16 rec_flags;
	u64 seq;		/* 0: tracked in the bitmap */
	u64 pos;
	u64 pad_seq;		/* 0: no PAD before the record */
	u64 pad_pos;
	u64 stream;		/* hc->head.stream where its ring space begins */
	struct hrl_pos flush_snap;	/* a FLUSH record: what its preflush makes durable */
	struct list_head go;	/* the deferred worker's list of writes to submit */
	struct page *hdr;	/* header unit of the record */
	struct page *pad_hdr;
	unsigned int nr_pages;
	u64 payload_csum;
	atomic_t pending;
	/* the slots of the extents it holds: they stay put while it does */
	struct hrl_al_slot *al_slot[HRL_AL_IO_EXTENTS];
	unsigned int al_held;
	bool al_under_all;	/* admitted while the activity log lists every extent */
	bool to_meta;		/* an empty flush in bitmap mode: the metadata worker has it */
	blk_status_t data_status;
	blk_status_t log_status;
	struct page *pages[HRL_MAX_IO_PAGES];	/* the copy of the data; last: not cleared */
};

/* Work a message hands the metadata worker, and its answer. */
struct hrl_rpc {
	struct list_head list;
	int (*fn)(struct hrl_c *hc, struct hrl_rpc *rpc);
	u64 seq;		/* ack */
	const char *name;	/* mark */
	bool suspended_too;	/* runs while the device is suspended (resume, suspend) */
	char *result;
	unsigned int maxlen;
	int r;
	struct completion done;
};

/* The superblock's changing fields, as written or about to be. */
struct hrl_sb_state {
	u32 flags, reason;
	u64 take_seq;
	struct hrl_pos tail, head;
};

/* ---- helpers ---------------------------------------------------------- */

static u64 hrl_now_ns(void)
{
	return ktime_get_real_ns();
}

static inline u64 hrl_bit_of(struct hrl_c *hc, sector_t sector)
{
	return sector / (hc->bitmap_block >> SECTOR_SHIFT);
}

static u32 hrl_payload_of(struct hrl_io *io)
{
	return io->type == HRL_REC_WRITE ? io->nr_sectors << SECTOR_SHIFT : 0;
}

/* Marks the bitmap blocks of [sector, sector + nr), and the pages of the area they are in. */
static void hrl_mark_dirty(struct hrl_c *hc, sector_t sector, u32 nr)
{
	u64 first, last;

	lockdep_assert_held(&hc->lock);
	if (!nr)
		return;
	first = hrl_bit_of(hc, sector);
	last = min(hrl_bit_of(hc, sector + nr - 1), hc->nr_bits - 1);
	if (first > last)
		return;
	bitmap_set(hc->dirty, first, last - first + 1);
	hc->dirty_any = true;
	bitmap_set(hc->dirty_pages, first / (8 * PAGE_SIZE), last / (8 * PAGE_SIZE) - first / (8 * PAGE_SIZE) + 1);
}

static const char *hrl_mode_name(u32 flags)
{
	if (flags & HRL_SB_RESYNC_REQUIRED)
		return "resync-required";
	if (flags & HRL_SB_BITMAP_MODE)
		return "bitmap";
	return "journal";
}

/* "bitmap-mode,resync-pending,resync-required", or "-". */
static int hrl_emit_flags(u32 flags, char *result, unsigned int maxlen)
{
	static const char * const names[] = { "clean", "bitmap-mode", "resync-pending", "resync-required" };
	unsigned int sz = 0, i;
	bool any = false;

	for (i = 0; i < ARRAY_SIZE(names); i++) {
		if (!(flags & (1U << i)))
			continue;
		DMEMIT("%s%s", any ? "," : "", names[i]);
		any = true;
	}
	if (!any)
		DMEMIT("-");
	return sz;
}

static const char *hrl_reason_name(u32 reason)
{
	static const char * const names[] = {
		"none", "unclean-shutdown", "ring-overflow", "log-corrupt",
		"bitmap-lost", "operator", "new-volume", "log-io-error",
	};

	return reason < ARRAY_SIZE(names) ? names[reason] : "unknown";
}

static void hrl_set_resync_required(struct hrl_c *hc, u32 reason)
{
	lockdep_assert_held(&hc->lock);
	if (!(hc->flags & HRL_SB_RESYNC_REQUIRED))
		hc->reason = reason;
	hc->flags |= HRL_SB_RESYNC_REQUIRED;
	hc->required_gen++;
}

/* The log device failed a write: no record goes after the hole, the whole device is resynced. */
static void hrl_log_broken(struct hrl_c *hc)
{
	lockdep_assert_held(&hc->lock);
	hrl_set_resync_required(hc, HRL_REASON_IO_ERROR);
	hc->flags |= HRL_SB_BITMAP_MODE;
	hc->sb_stale = true;
	hc->log_failed = true;
}

/* Synchronous I/O on the log device, for metadata: kernel or vmalloc memory. */
static int hrl_log_io(struct hrl_c *hc, blk_opf_t opf, void *buf, u64 offset, u64 len)
{
	struct dm_io_region region = {
		.bdev = hc->log_dev->bdev,
		.sector = offset >> SECTOR_SHIFT,
		.count = len >> SECTOR_SHIFT,
	};
	struct dm_io_request req = {
		.bi_opf = opf,
		.mem.type = is_vmalloc_addr(buf) ? DM_IO_VMA : DM_IO_KMEM,
		.mem.ptr.addr = buf,
		.client = hc->io_client,
	};

	if (is_vmalloc_addr(buf))
		req.mem.ptr.vma = buf;
	return hrl_dm_io(&req, 1, &region, NULL);
}

/* ---- superblock ------------------------------------------------------- */

/* The activity log's place and size: between the bitmaps and the ring, or none at all. */
static int hrl_check_al_geometry(const struct hrl_superblock *sb)
{
	u64 al_offset = le64_to_cpu(sb->al_offset);
	u32 shift = le32_to_cpu(sb->al_extent_shift), extents = le32_to_cpu(sb->al_extents);
	u64 bitmaps_end = le64_to_cpu(sb->resync_offset) + le64_to_cpu(sb->bitmap_bytes);

	if (!al_offset)
		return shift || extents ? -EINVAL : 0;
	if (al_offset > (1ULL << 56) || al_offset < bitmaps_end || al_offset % HRL_LOG_BLOCK ||
	    al_offset + HRL_AL_SLOTS * HRL_LOG_BLOCK > le64_to_cpu(sb->ring_offset) ||
	    shift < HRL_AL_MIN_EXTENT_SHIFT || shift > HRL_AL_MAX_EXTENT_SHIFT ||
	    !extents || extents > HRL_AL_MAX_EXTENTS ||
	    ((le64_to_cpu(sb->data_sectors) << SECTOR_SHIFT) - 1) >> shift > U32_MAX)
		return -EINVAL;
	return 0;
}

static int hrl_check_sb(const struct hrl_superblock *sb, char **why)
{
	u64 data_sectors = le64_to_cpu(sb->data_sectors);
	u32 bitmap_block = le32_to_cpu(sb->bitmap_block);
	u32 max_payload = le32_to_cpu(sb->max_payload);
	u64 ring_bytes = le64_to_cpu(sb->ring_bytes);
	u64 ring_offset = le64_to_cpu(sb->ring_offset);
	u64 bitmap_bytes = le64_to_cpu(sb->bitmap_bytes);
	u64 tail_seq = le64_to_cpu(sb->tail_seq), head_seq = le64_to_cpu(sb->head_seq);
	u64 tail_off = le64_to_cpu(sb->tail_offset), head_off = le64_to_cpu(sb->head_offset);
	const u64 max_bytes = 1ULL << 56;

	*why = "bad magic";
	if (le64_to_cpu(sb->magic) != HRL_SB_MAGIC)
		return -EINVAL;
	*why = "checksum mismatch";
	if (le64_to_cpu(sb->csum) != xxh64(sb, HRL_SB_CSUM_BYTES, hrl_csum_seed(sb->uuid)))
		return -EINVAL;
	*why = "unsupported format version";
	if (le32_to_cpu(sb->version) != HRL_FORMAT_VERSION)
		return -EINVAL;
	*why = "inconsistent geometry";
	if ((le32_to_cpu(sb->flags) & ~HRL_SB_KNOWN_FLAGS) ||
	    le32_to_cpu(sb->resync_reason) > HRL_REASON_MAX ||
	    !data_sectors || data_sectors > (max_bytes >> SECTOR_SHIFT) ||
	    !is_power_of_2(bitmap_block) || bitmap_block < HRL_SECTOR_SIZE ||
	    le64_to_cpu(sb->bitmap_offset) != HRL_SB_SLOTS * HRL_LOG_BLOCK ||
	    bitmap_bytes != hrl_bitmap_area_bytes(data_sectors, bitmap_block) ||
	    le64_to_cpu(sb->resync_offset) != HRL_SB_SLOTS * HRL_LOG_BLOCK + bitmap_bytes ||
	    ring_offset < HRL_SB_SLOTS * HRL_LOG_BLOCK + 2 * bitmap_bytes ||
	    ring_offset % HRL_LOG_BLOCK || ring_offset > max_bytes ||
	    ring_bytes < HRL_MIN_RING_BYTES || ring_bytes % HRL_LOG_BLOCK || ring_bytes > max_bytes ||
	    !max_payload || max_payload % HRL_SECTOR_SIZE ||
	    hrl_record_span(max_payload) > ring_bytes / 2 ||
	    tail_off >= ring_bytes || tail_off % HRL_SECTOR_SIZE ||
	    head_off >= ring_bytes || head_off % HRL_SECTOR_SIZE ||
	    !tail_seq || tail_seq > head_seq ||
	    (tail_seq == head_seq && tail_off != head_off))
		return -EINVAL;
	*why = "inconsistent activity log geometry";
	if (hrl_check_al_geometry(sb))
		return -EINVAL;
	return 0;
}

/* Reads both slots; keeps the valid one with the higher update_seq in *out. */
static int hrl_read_sb(struct hrl_c *hc, struct hrl_superblock *out, char **why)
{
	struct hrl_superblock *slots;
	int r, best = -1, i;

	slots = kmalloc(HRL_SB_SLOTS * HRL_LOG_BLOCK, GFP_KERNEL);
	if (!slots)
		return -ENOMEM;
	r = hrl_log_io(hc, REQ_OP_READ, slots, 0, HRL_SB_SLOTS * HRL_LOG_BLOCK);
	if (r) {
		*why = "cannot read the superblock";
		goto out;
	}
	for (i = 0; i < HRL_SB_SLOTS; i++) {
		struct hrl_superblock *sb = (void *)slots + i * HRL_LOG_BLOCK;

		if (hrl_check_sb(sb, why))
			continue;
		if (best < 0 || le64_to_cpu(sb->update_seq) >
		    le64_to_cpu(((struct hrl_superblock *)((void *)slots + best * HRL_LOG_BLOCK))->update_seq))
			best = i;
	}
	r = -EINVAL;
	if (best >= 0) {
		memcpy(out, (void *)slots + best * HRL_LOG_BLOCK, sizeof(*out));
		r = 0;
	}
out:
	kfree(slots);
	return r;
}

/* The superblock's changing fields as the in-core state has them. */
static void hrl_sb_now(struct hrl_c *hc, struct hrl_sb_state *st)
{
	spin_lock_irq(&hc->lock);
	st->flags = hc->flags;
	st->reason = hc->reason;
	st->take_seq = hc->take_seq;
	st->tail = hc->tail;
	st->head = hc->durable;	/* a superblock claims only durable records */
	spin_unlock_irq(&hc->lock);
}

/*
 * Writes the next superblock slot with FUA. With flush, the log is flushed
 * first: the bitmap areas just written are durable before the superblock
 * that carries their checksums.
 */
static int hrl_write_sb(struct hrl_c *hc, const struct hrl_sb_state *st, bool clean, bool flush)
{
	struct hrl_superblock *sb = hc->sb_buf;
	const struct hrl_pos *head;
	int r;

	lockdep_assert_held(&hc->meta_lock);
	memset(sb, 0, HRL_LOG_BLOCK);
	sb->magic = cpu_to_le64(HRL_SB_MAGIC);
	sb->version = cpu_to_le32(HRL_FORMAT_VERSION);
	memcpy(sb->uuid, hc->uuid, sizeof(sb->uuid));
	sb->generation = cpu_to_le64(hc->generation);
	sb->update_seq = cpu_to_le64(hc->sb_update_seq + 1);
	sb->data_sectors = cpu_to_le64(hc->data_sectors);
	sb->bitmap_block = cpu_to_le32(hc->bitmap_block);
	sb->max_payload = cpu_to_le32(hc->max_payload);
	sb->bitmap_offset = cpu_to_le64(hc->bitmap_offset);
	sb->resync_offset = cpu_to_le64(hc->resync_offset);
	sb->bitmap_bytes = cpu_to_le64(hc->bitmap_bytes);
	sb->ring_offset = cpu_to_le64(hc->ring_offset);
	sb->ring_bytes = cpu_to_le64(hc->ring_bytes);
	sb->bitmap_csum = cpu_to_le64(hc->disk_dirty_csum);
	sb->resync_csum = cpu_to_le64(hc->disk_resync_csum);
	sb->dirty_bits = cpu_to_le64(bitmap_weight(hc->dirty_disk, hc->nr_bits));
	sb->resync_bits = cpu_to_le64(bitmap_weight(hc->resync, hc->nr_bits));
	sb->created_ns = cpu_to_le64(hc->created_ns);
	sb->updated_ns = cpu_to_le64(hrl_now_ns());
	sb->al_offset = cpu_to_le64(hc->al_offset);
	if (hc->al_offset) {
		sb->al_extent_shift = cpu_to_le32(hc->al_shift + SECTOR_SHIFT);
		sb->al_extents = cpu_to_le32(hc->al_slots);
	}
	sb->flags = cpu_to_le32(st->flags | (clean ? HRL_SB_CLEAN : 0));
	sb->resync_reason = cpu_to_le32(st->reason);
	sb->resync_take_seq = cpu_to_le64(st->take_seq);
	sb->tail_seq = cpu_to_le64(st->tail.seq);
	sb->tail_offset = cpu_to_le64(st->tail.off);
	/*
	 * Records acknowledged past the durable point (a pass superseded them)
	 * are gone: the ring starts empty at the tail.
	 */
	head = st->head.seq >= st->tail.seq ? &st->head : &st->tail;
	sb->head_seq = cpu_to_le64(head->seq);
	sb->head_offset = cpu_to_le64(head->off);
	sb->csum = cpu_to_le64(xxh64(sb, HRL_SB_CSUM_BYTES, hc->seed));
	r = hrl_log_io(hc, REQ_OP_WRITE | REQ_FUA | (flush ? REQ_PREFLUSH : 0), sb,
		       ((hc->sb_update_seq + 1) % HRL_SB_SLOTS) * HRL_LOG_BLOCK, HRL_LOG_BLOCK);
	if (!r)
		hc->sb_update_seq++;
	else
		DMERR_LIMIT("%s: superblock write failed: %d", hc->log_dev->name, r);
	return r;
}

/*
 * Writes the pages of the dirty bitmap that changed since they were last
 * written (all of them with all), from a copy, so set_bit()s going on cannot
 * tear what the checksum covers. Returns the area's new checksum in *csum; it
 * becomes the superblock's with the superblock write that follows.
 */
static int hrl_write_dirty_pages(struct hrl_c *hc, bool all, u64 *csum)
{
	unsigned long p;
	int r = 0;

	lockdep_assert_held(&hc->meta_lock);
	if (all) {
		spin_lock_irq(&hc->lock);
		bitmap_fill(hc->dirty_pages, hc->nr_bm_pages);
		spin_unlock_irq(&hc->lock);
	}
	for_each_set_bit(p, hc->dirty_pages, hc->nr_bm_pages) {
		void *disk = hc->dirty_disk + p * PAGE_SIZE;

		spin_lock_irq(&hc->lock);
		__clear_bit(p, hc->dirty_pages);
		memcpy(disk, (void *)hc->dirty + p * PAGE_SIZE, PAGE_SIZE);
		spin_unlock_irq(&hc->lock);
		r = hrl_log_io(hc, REQ_OP_WRITE, disk, hc->bitmap_offset + p * PAGE_SIZE, PAGE_SIZE);
		if (r) {
			spin_lock_irq(&hc->lock);
			__set_bit(p, hc->dirty_pages);
			spin_unlock_irq(&hc->lock);
			return r;
		}
	}
	*csum = xxh64(hc->dirty_disk, hc->bitmap_bytes, hc->seed);
	return 0;
}

/* Writes the resync bitmap area whole; only this worker changes it. */
static int hrl_write_resync(struct hrl_c *hc, u64 *csum)
{
	lockdep_assert_held(&hc->meta_lock);
	*csum = xxh64(hc->resync, hc->bitmap_bytes, hc->seed);
	return hrl_log_io(hc, REQ_OP_WRITE, hc->resync, hc->resync_offset, hc->bitmap_bytes);
}

/*
 * Persists both bitmaps, then the superblock st describes. The in-core
 * checksums follow only once the superblock that carries them is written.
 */
static int hrl_commit(struct hrl_c *hc, const struct hrl_sb_state *st, bool clean)
{
	u64 dirty_csum, resync_csum, old_dirty = hc->disk_dirty_csum, old_resync = hc->disk_resync_csum;
	int r;

	lockdep_assert_held(&hc->meta_lock);
	r = hrl_write_dirty_pages(hc, false, &dirty_csum);
	if (!r)
		r = hrl_write_resync(hc, &resync_csum);
	if (r)
		return r;
	hc->disk_dirty_csum = dirty_csum;
	hc->disk_resync_csum = resync_csum;
	r = hrl_write_sb(hc, st, clean, true);
	if (r) {
		hc->disk_dirty_csum = old_dirty;
		hc->disk_resync_csum = old_resync;
	}
	return r;
}

static int hrl_read_bitmap(struct hrl_c *hc, void *bits, u64 offset, u64 csum)
{
	int r = hrl_log_io(hc, REQ_OP_READ, bits, offset, hc->bitmap_bytes);

	if (!r && xxh64(bits, hc->bitmap_bytes, hc->seed) != csum)
		r = -EILSEQ;
	return r;
}

/* ---- records ---------------------------------------------------------- */

static void hrl_encode_header(struct hrl_c *hc, struct page *page, u16 type, u16 flags,
			      u64 seq, u64 sector, u32 nr_sectors, u32 payload_bytes,
			      u64 payload_csum)
{
	struct hrl_record_header *h = page_address(page);

	memset(h, 0, HRL_SECTOR_SIZE);
	h->magic = cpu_to_le32(HRL_RECORD_MAGIC);
	h->type = cpu_to_le16(type);
	h->flags = cpu_to_le16(flags);
	h->seq = cpu_to_le64(seq);
	h->generation = cpu_to_le64(hc->generation);
	h->sector = cpu_to_le64(sector);
	h->nr_sectors = cpu_to_le32(nr_sectors);
	h->payload_bytes = cpu_to_le32(payload_bytes);
	h->timestamp_ns = cpu_to_le64(hrl_now_ns());
	h->payload_csum = cpu_to_le64(payload_csum);
	h->header_csum = cpu_to_le64(xxh64(h, HRL_RECORD_CSUM_BYTES, hc->seed));
}

/* Bytes of ring a record of payload bytes takes at the head, a PAD before it included. */
static u64 hrl_ring_cost(struct hrl_c *hc, u32 payload)
{
	u64 span = hrl_record_span(payload);

	return span + (hc->head.off + span > hc->ring_bytes ? hc->ring_bytes - hc->head.off : 0);
}

/* Whether a record may go at the head now without passing the in-flight bound. */
static bool hrl_room_past_durable(struct hrl_c *hc, u32 payload)
{
	lockdep_assert_held(&hc->lock);
	return hc->head.stream + hrl_ring_cost(hc, payload) - hc->durable.stream <= HRL_MAX_INFLIGHT_BYTES;
}

static void hrl_advance(struct hrl_c *hc, struct hrl_pos *p)
{
	u64 span = (u64)hc->spans[p->seq % hc->nr_slots] << SECTOR_SHIFT;

	p->seq++;
	p->off = (p->off + span) % hc->ring_bytes;
	p->stream += span;
}

/*
 * Reserves ring space for a record of payload bytes, after a PAD if it would
 * cross the end of the ring. Returns false, reserving nothing, when the ring
 * has no room.
 */
static bool hrl_ring_reserve(struct hrl_c *hc, u32 payload, struct hrl_io *io)
{
	u64 span = hrl_record_span(payload);
	u64 pad = hc->head.off + span > hc->ring_bytes ? hc->ring_bytes - hc->head.off : 0;

	lockdep_assert_held(&hc->lock);
	if (hc->used + pad + span > hc->ring_bytes)
		return false;
	io->pad_seq = 0;
	io->stream = hc->head.stream;
	if (pad) {
		io->pad_seq = hc->head.seq;
		io->pad_pos = hc->head.off;
		hc->spans[hc->head.seq % hc->nr_slots] = pad >> SECTOR_SHIFT;
		hrl_advance(hc, &hc->head);
		hc->used += pad;
	}
	io->seq = hc->head.seq;
	io->pos = hc->head.off;
	hc->spans[hc->head.seq % hc->nr_slots] = span >> SECTOR_SHIFT;
	hrl_advance(hc, &hc->head);
	hc->used += span;
	return true;
}

/* Raises an event when the fill crosses the next level. */
static bool hrl_fill_crossed(struct hrl_c *hc)
{
	bool crossed = false;

	lockdep_assert_held(&hc->lock);
	while (hc->fill_level < ARRAY_SIZE(hrl_fill_events) &&
	       hc->used * 100 >= hc->ring_bytes * hrl_fill_events[hc->fill_level]) {
		hc->fill_level++;
		crossed = true;
	}
	while (hc->fill_level > 0 &&
	       hc->used * 100 < hc->ring_bytes * hrl_fill_events[hc->fill_level - 1])
		hc->fill_level--;
	return crossed;
}

/* The dirty bitmap was taken, the ring has room again and the log takes writes. */
static bool hrl_maybe_leave_bitmap_mode(struct hrl_c *hc)
{
	lockdep_assert_held(&hc->lock);
	if (!(hc->flags & HRL_SB_BITMAP_MODE) || (hc->flags & HRL_SB_RESYNC_REQUIRED) || hc->log_failed ||
	    hc->bitmap_inflight || hc->dirty_any ||
	    hc->ring_bytes - hc->used < hc->ring_bytes / 4)
		return false;
	hc->flags &= ~HRL_SB_BITMAP_MODE;
	hc->reason = HRL_REASON_NONE;
	hc->sb_stale = true;
	return true;
}

/* ---- completed and durable records ----------------------------------- */

/* Record seq reached both devices: the completed point moves over every record that has. */
static void hrl_record_done(struct hrl_c *hc, u64 seq)
{
	lockdep_assert_held(&hc->lock);
	set_bit(seq % hc->nr_slots, hc->done_slots);
	while (hc->done.seq < hc->head.seq && test_bit(hc->done.seq % hc->nr_slots, hc->done_slots)) {
		clear_bit(hc->done.seq % hc->nr_slots, hc->done_slots);
		hrl_advance(hc, &hc->done);
	}
}

/*
 * A flush of the log that began when the completed point was at snap
 * finished. Once a write of the log failed, the durable point stays where it
 * was: a record after it may be a hole, and nothing past a hole ships.
 */
static void hrl_durable_to(struct hrl_c *hc, const struct hrl_pos *snap)
{
	lockdep_assert_held(&hc->lock);
	if (!hc->log_failed && snap->seq > hc->durable.seq)
		hc->durable = *snap;
}

/* Asks for a flush of the log: at once, or after HRL_FLUSH_DELAY_MS. */
static void hrl_want_flush(struct hrl_c *hc, bool now)
{
	if (now)
		mod_delayed_work(hc->io_wq, &hc->flush_work, 0);
	else
		queue_delayed_work(hc->io_wq, &hc->flush_work, msecs_to_jiffies(HRL_FLUSH_DELAY_MS));
}

static void hrl_flush_endio(struct bio *bio)
{
	struct hrl_c *hc = bio->bi_private;
	unsigned long irqflags;
	bool first_failure;
	blk_status_t status = bio->bi_status;

	bio_put(bio);
	spin_lock_irqsave(&hc->lock, irqflags);
	first_failure = status && !hc->log_failed;
	if (status)
		hrl_log_broken(hc);
	else
		hrl_durable_to(hc, &hc->flush_snap);
	spin_unlock_irqrestore(&hc->lock, irqflags);
	if (first_failure) {
		DMERR("%s: log flush failed: bitmap mode, resync required", hc->log_dev->name);
		queue_work(hc->meta_wq, &hc->meta_work);
	}
	queue_work(hc->io_wq, &hc->deferred_work);	/* room past the durable point */
	/*
	 * Last, under the lock: hrl_quiesce() waits for log_flushing to clear,
	 * then takes the lock, so nothing of hc is touched once it is dropped
	 * here. A flush asked for while this one ran is queued now.
	 */
	spin_lock_irqsave(&hc->lock, irqflags);
	hc->log_flushing = false;
	if (hc->durable.seq < hc->done.seq && !hc->quiescing && !hc->log_failed)
		hrl_want_flush(hc, false);
	wake_up_all(&hc->done_wait);
	spin_unlock_irqrestore(&hc->lock, irqflags);
}

/* Flushes the log: every record completed now is durable when it finishes. */
static void hrl_flush_worker(struct work_struct *work)
{
	struct hrl_c *hc = container_of(to_delayed_work(work), struct hrl_c, flush_work);
	struct bio *bio;

	spin_lock_irq(&hc->lock);
	if (hc->log_flushing || hc->quiescing || hc->log_failed || hc->durable.seq >= hc->done.seq) {
		spin_unlock_irq(&hc->lock);
		return;
	}
	hc->log_flushing = true;
	hc->flush_snap = hc->done;
	spin_unlock_irq(&hc->lock);
	bio = bio_alloc_bioset(hc->log_dev->bdev, 0, REQ_OP_WRITE | REQ_PREFLUSH, GFP_NOIO, &hc->bs[HRL_BS_PAD]);
	bio->bi_end_io = hrl_flush_endio;
	bio->bi_private = hc;
	submit_bio(bio);
}

/* ---- the activity log -------------------------------------------------- */


static struct hrl_al_slot *hrl_al_find(struct hrl_c *hc, u64 extent)
{
	u32 i;

	lockdep_assert_held(&hc->lock);
	for (i = 0; i < hc->al_slots; i++)
		if (hc->al[i].state != HRL_AL_FREE && hc->al[i].extent == extent)
			return &hc->al[i];
	return NULL;
}

static u32 hrl_al_free_slots(struct hrl_c *hc)
{
	u32 i, n = 0;

	lockdep_assert_held(&hc->lock);
	for (i = 0; i < hc->al_slots; i++)
		n += hc->al[i].state == HRL_AL_FREE;
	return n;
}

static struct hrl_al_slot *hrl_al_free_slot(struct hrl_c *hc)
{
	u32 i;

	lockdep_assert_held(&hc->lock);
	for (i = 0; i < hc->al_slots; i++)
		if (hc->al[i].state == HRL_AL_FREE)
			return &hc->al[i];
	return NULL;
}

/*
 * The listed extent written longest ago that may leave, or NULL: no write to
 * it in flight, and every record up to its newest completed (the block's
 * preflush then makes them durable: no hole before them can drop one).
 */
static struct hrl_al_slot *hrl_al_victim(struct hrl_c *hc)
{
	struct hrl_al_slot *victim = NULL;
	u32 i;

	lockdep_assert_held(&hc->lock);
	for (i = 0; i < hc->al_slots; i++) {
		struct hrl_al_slot *slot = &hc->al[i];

		if (slot->state == HRL_AL_ACTIVE && !slot->inflight && slot->max_seq < hc->done.seq &&
		    (!victim || slot->last_use < victim->last_use))
			victim = slot;
	}
	return victim;
}

/*
 * After a log failure, once a superblock asking for the whole device has
 * been written (or the log refused it too): writes no longer wait for the
 * activity log, which may not take them.
 */
static bool hrl_al_bypassed(struct hrl_c *hc)
{
	lockdep_assert_held(&hc->lock);
	return hc->log_failed && hc->failure_recorded;
}

/*
 * Whether the write may go: its extents are listed on disk (or the block on
 * disk lists every extent). If not, asks the metadata worker for them and
 * returns false: the write waits. A write that goes holds its extents until
 * it completes.
 */
static bool hrl_al_admit(struct hrl_c *hc, struct hrl_io *io)
{
	struct hrl_al_slot *slot;
	bool listed = true;
	u64 first, last, e;
	u32 missing = 0;

	lockdep_assert_held(&hc->lock);
	if (!hc->al_slots || !io->nr_sectors)
		return true;	/* nothing to cover */
	/*
	 * The block on disk lists every extent, or (the log failed) the
	 * superblock on disk asks for the whole device. The write is counted
	 * either way: the list comes back only once such writes have completed
	 * and their bits are on disk (hrl_al_cover_bypassed, hrl_al_prepare).
	 */
	if (hc->al_all || hrl_al_bypassed(hc)) {
		hc->al_all_inflight++;
		io->al_under_all = true;
		return true;
	}
	first = io->sector >> hc->al_shift;
	last = (io->sector + io->nr_sectors - 1) >> hc->al_shift;
	if (last - first >= min(HRL_AL_IO_EXTENTS, hc->al_slots)) {
		hc->al_want_all = true;
		hc->al_txn_wanted = true;
		return false;
	}
	for (e = first; e <= last; e++) {
		slot = hrl_al_find(hc, e);
		if (slot && slot->state == HRL_AL_ACTIVE)
			continue;
		listed = false;
		if (!slot)
			missing++;
	}
	/* All its new extents get slots, or none do: a write never hoards part of what it needs. */
	if (missing && hrl_al_free_slots(hc) < missing) {
		hc->al_want_room = true;
		missing = 0;
	}
	for (e = first; missing && e <= last; e++) {
		if (hrl_al_find(hc, e))
			continue;
		slot = hrl_al_free_slot(hc);
		slot->extent = e;
		slot->inflight = 0;
		slot->max_seq = 0;
		slot->last_use = ++hc->al_clock;	/* the newest: not the next to leave */
		slot->state = HRL_AL_ADDING;
	}
	if (!listed) {
		hc->al_txn_wanted = true;
		return false;
	}
	for (e = first; e <= last; e++) {
		slot = hrl_al_find(hc, e);
		slot->inflight++;
		slot->last_use = ++hc->al_clock;
		io->al_slot[io->al_held++] = slot;
	}
	return true;
}

/* The write has its sequence number: its extents leave only once that record completed. */
static void hrl_al_placed(struct hrl_c *hc, struct hrl_io *io)
{
	unsigned int i;

	lockdep_assert_held(&hc->lock);
	if (io->al_under_all)
		hc->al_all_max_seq = max(hc->al_all_max_seq, io->seq);
	for (i = 0; i < io->al_held; i++)
		io->al_slot[i]->max_seq = max(io->al_slot[i]->max_seq, io->seq);
}

/* The write completed: its extents may leave. Returns whether a transaction is now worth running. */
static bool hrl_al_release(struct hrl_c *hc, struct hrl_io *io)
{
	bool kick = false;
	unsigned int i;

	lockdep_assert_held(&hc->lock);
	if (io->al_under_all)
		hc->al_all_inflight--;
	if (hc->al_all && !hc->al_all_inflight && !hc->al_want_all) {
		hc->al_txn_wanted = true;	/* back from "every extent" to a list, once its records completed */
		kick = true;
	}
	if (io->al_held) {
		for (i = 0; i < io->al_held; i++)
			io->al_slot[i]->inflight--;
		if (hc->al_want_room) {
			hc->al_txn_wanted = true;
			kick = true;
		}
	}
	return kick;
}

/* ---- the write path --------------------------------------------------- */

static void hrl_free_io_pages(struct hrl_io *io)
{
	struct hrl_c *hc = io->hc;
	unsigned int i;

	for (i = 0; i < io->nr_pages; i++)
		mempool_free(io->pages[i], hc->page_pool);
	io->nr_pages = 0;
	if (io->hdr)
		mempool_free(io->hdr, hc->page_pool);
	if (io->pad_hdr)
		mempool_free(io->pad_hdr, hc->page_pool);
	io->hdr = io->pad_hdr = NULL;
}

static struct page **hrl_io_page(struct hrl_io *io, unsigned int i)
{
	return i == 0 ? &io->hdr : i == 1 ? &io->pad_hdr : &io->pages[i - 2];
}

/*
 * The pages of a write in flight: its copy and two header pages. Taken
 * without waiting when memory allows. Else everything taken is given back
 * and the write takes all it needs from the reserve, one write at a time
 * (dm-crypt's crypt_alloc_buffer): only writes in flight hold pages, and they
 * complete, so the one waiting always gets them. It never fails.
 */
static void hrl_alloc_io_pages(struct hrl_c *hc, struct hrl_io *io, unsigned int nr_data)
{
	unsigned int i, n = nr_data + 2;
	bool short_of = false;

	io->nr_pages = nr_data;
	for (i = 0; i < n; i++) {
		*hrl_io_page(io, i) = mempool_alloc(hc->page_pool, GFP_NOWAIT | __GFP_NOWARN);
		short_of |= !*hrl_io_page(io, i);
	}
	if (!short_of)
		return;
	for (i = 0; i < n; i++) {
		if (*hrl_io_page(io, i))
			mempool_free(*hrl_io_page(io, i), hc->page_pool);
		*hrl_io_page(io, i) = NULL;
	}
	mutex_lock(&hc->pool_mutex);
	for (i = 0; i < n; i++)
		*hrl_io_page(io, i) = mempool_alloc(hc->page_pool, GFP_NOIO);
	mutex_unlock(&hc->pool_mutex);
}

/* Copies the bio's data into the write's pages and checksums the copy. */
static void hrl_copy_data(struct hrl_c *hc, struct hrl_io *io, struct bio *bio)
{
	struct xxh64_state state;
	struct bvec_iter iter;
	struct bio_vec bv;
	size_t done = 0;

	xxh64_reset(&state, hc->seed);
	bio_for_each_segment(bv, bio, iter) {
		u8 *src = bvec_kmap_local(&bv);
		unsigned int off = 0;

		while (off < bv.bv_len) {
			unsigned int in_page = done % PAGE_SIZE;
			unsigned int n = min_t(unsigned int, bv.bv_len - off, PAGE_SIZE - in_page);
			u8 *dst = page_address(io->pages[done / PAGE_SIZE]) + in_page;

			memcpy(dst, src + off, n);
			xxh64_update(&state, dst, n);
			off += n;
			done += n;
		}
		kunmap_local(src);
	}
	io->payload_csum = xxh64_digest(&state);
}

static void hrl_io_done(struct hrl_io *io);

static void hrl_io_put(struct hrl_io *io)
{
	if (atomic_dec_and_test(&io->pending))
		hrl_io_done(io);
}

static void hrl_child_done(struct hrl_io *io, struct bio *bio, blk_status_t *status)
{
	if (bio->bi_status)
		*status = bio->bi_status;
	bio_put(bio);
	hrl_io_put(io);
}

/* Log and data bios complete apart: the device a bio went to says nothing once a stack remapped it. */
static void hrl_data_endio(struct bio *bio)
{
	struct hrl_io *io = bio->bi_private;

	hrl_child_done(io, bio, &io->data_status);
}

static void hrl_log_endio(struct bio *bio)
{
	struct hrl_io *io = bio->bi_private;

	hrl_child_done(io, bio, &io->log_status);
}

static struct bio *hrl_new_bio(struct hrl_io *io, unsigned int set, struct dm_dev *dev, unsigned int nr_vecs,
			       blk_opf_t opf, sector_t sector, bio_end_io_t *end_io)
{
	struct bio *bio = bio_alloc_bioset(dev->bdev, nr_vecs, opf, GFP_NOIO, &io->hc->bs[set]);

	bio->bi_iter.bi_sector = sector;
	bio->bi_end_io = end_io;
	bio->bi_private = io;
	return bio;
}

static void hrl_add_data_pages(struct hrl_io *io, struct bio *bio)
{
	u32 left = io->nr_sectors << SECTOR_SHIFT;
	unsigned int i;

	for (i = 0; i < io->nr_pages; i++) {
		u32 n = min_t(u32, left, PAGE_SIZE);

		__bio_add_page(bio, io->pages[i], n, 0);
		left -= n;
	}
}

/*
 * Copies the write's data, then builds and submits the data bio, the record
 * bio and a PAD bio if any. Runs once the write is in flight: a write that
 * waits holds no pages.
 */
static void hrl_submit(struct hrl_c *hc, struct hrl_io *io)
{
	blk_opf_t keep = io->orig->bi_opf & (REQ_FUA | REQ_SYNC | REQ_PREFLUSH);
	sector_t log_base = hc->ring_offset >> SECTOR_SHIFT;
	struct bio *data, *log = NULL, *pad = NULL;
	u32 payload = hrl_payload_of(io);

	hrl_alloc_io_pages(hc, io, io->type == HRL_REC_WRITE ? DIV_ROUND_UP(io->nr_sectors << SECTOR_SHIFT, PAGE_SIZE) : 0);
	if (io->nr_pages)
		hrl_copy_data(hc, io, io->orig);

	if (io->type == HRL_REC_DISCARD) {
		data = hrl_new_bio(io, HRL_BS_DATA, hc->data_dev, 0, REQ_OP_DISCARD, io->sector, hrl_data_endio);
		data->bi_iter.bi_size = io->nr_sectors << SECTOR_SHIFT;
	} else {
		data = hrl_new_bio(io, HRL_BS_DATA, hc->data_dev, io->nr_pages, REQ_OP_WRITE | keep,
				   io->sector, hrl_data_endio);
		hrl_add_data_pages(io, data);
	}
	atomic_set(&io->pending, 1);

	if (io->seq) {
		hrl_encode_header(hc, io->hdr, io->type, io->rec_flags, io->seq, io->sector,
				  io->nr_sectors, payload, payload ? io->payload_csum : 0);
		log = hrl_new_bio(io, HRL_BS_RECORD, hc->log_dev, io->nr_pages + 1, REQ_OP_WRITE | keep,
				  log_base + (io->pos >> SECTOR_SHIFT), hrl_log_endio);
		__bio_add_page(log, io->hdr, HRL_SECTOR_SIZE, 0);
		if (payload)
			hrl_add_data_pages(io, log);
		atomic_inc(&io->pending);
	}
	if (io->pad_seq) {
		hrl_encode_header(hc, io->pad_hdr, HRL_REC_PAD, 0, io->pad_seq, 0, 0,
				  hc->ring_bytes - io->pad_pos - HRL_SECTOR_SIZE, 0);
		pad = hrl_new_bio(io, HRL_BS_PAD, hc->log_dev, 1, REQ_OP_WRITE,
				  log_base + (io->pad_pos >> SECTOR_SHIFT), hrl_log_endio);
		__bio_add_page(pad, io->pad_hdr, HRL_SECTOR_SIZE, 0);
		atomic_inc(&io->pending);
	}
	submit_bio_noacct(data);
	if (log)
		submit_bio_noacct(log);
	if (pad)
		submit_bio_noacct(pad);
}

static bool hrl_overlaps(struct list_head *list, sector_t sector, u32 nr)
{
	struct hrl_io *o;

	if (!nr)
		return false;
	list_for_each_entry(o, list, node)
		if (o->nr_sectors && sector < o->sector + o->nr_sectors && o->sector < sector + nr)
			return true;
	return false;
}

/* Work to do after the lock is dropped. */
#define HRL_NOTIFY_EVENT	(1U << 0)	/* dm_table_event() */
#define HRL_NOTIFY_META		(1U << 1)	/* write the superblock */
#define HRL_NOTIFY_BITMAP	(1U << 2)	/* entered bitmap mode */
#define HRL_NOTIFY_FLUSH	(1U << 3)	/* flush the log now: writes wait for room */

static void hrl_notify(struct hrl_c *hc, unsigned int notify)
{
	if (notify & HRL_NOTIFY_BITMAP)
		DMWARN("%s: ring full, tracking writes in the dirty bitmap", hc->log_dev->name);
	if (notify & HRL_NOTIFY_META)
		queue_work(hc->meta_wq, &hc->meta_work);
	if (notify & HRL_NOTIFY_EVENT)
		queue_work(hc->io_wq, &hc->event_work);
	if (notify & HRL_NOTIFY_FLUSH)
		hrl_want_flush(hc, true);
}

static bool hrl_is_empty_flush(struct hrl_io *io)
{
	return io->type == HRL_REC_WRITE && !io->nr_sectors;
}

/*
 * An empty flush in bitmap mode: it must make the bitmap's changes durable
 * (and the records completed before it), which only the metadata worker
 * writes; it goes there, not to the devices.
 */
static unsigned int hrl_flush_to_meta(struct hrl_c *hc, struct hrl_io *io)
{
	lockdep_assert_held(&hc->lock);
	io->to_meta = true;
	bio_list_add(&hc->flush_bios, io->orig);
	return HRL_NOTIFY_META;
}

/*
 * Gives the write its place: a sequence number and ring space, or bits in
 * the dirty bitmap when the ring is full (an empty flush then goes to the
 * metadata worker).
 */
static unsigned int hrl_place(struct hrl_c *hc, struct hrl_io *io)
{
	unsigned int notify = 0;

	lockdep_assert_held(&hc->lock);
	io->seq = 0;
	io->pad_seq = 0;
	if (!(hc->flags & HRL_SB_BITMAP_MODE) && hrl_ring_reserve(hc, hrl_payload_of(io), io)) {
		if (io->rec_flags & HRL_REC_FLUSH)
			io->flush_snap = hc->done;
		return hrl_fill_crossed(hc) ? HRL_NOTIFY_EVENT : 0;
	}
	if (!(hc->flags & HRL_SB_BITMAP_MODE)) {
		hc->flags |= HRL_SB_BITMAP_MODE;
		if (!(hc->flags & HRL_SB_RESYNC_REQUIRED))
			hc->reason = HRL_REASON_RING_OVERFLOW;
		hc->sb_stale = true;
		notify = HRL_NOTIFY_EVENT | HRL_NOTIFY_META | HRL_NOTIFY_BITMAP;
	}
	if (hrl_is_empty_flush(io))
		return notify | hrl_flush_to_meta(hc, io);
	hc->bitmap_inflight++;
	hrl_mark_dirty(hc, io->sector, io->nr_sectors);
	return notify;
}

/*
 * Starts the write if it may go now: not while it overlaps a write in flight
 * or one waiting before it (earlier), so overlapping writes reach the device
 * and the log in arrival order; not beyond the in-flight bounds (writes, and
 * ring past the durable point). Placing it and putting it in flight happen in
 * the same critical section as the check.
 */
static bool hrl_try_start(struct hrl_c *hc, struct hrl_io *io, struct list_head *earlier,
			  unsigned int *notify)
{
	lockdep_assert_held(&hc->lock);
	if (hrl_is_empty_flush(io) && (hc->flags & HRL_SB_BITMAP_MODE)) {
		*notify |= hrl_flush_to_meta(hc, io);
		return true;
	}
	if (hrl_overlaps(&hc->inflight, io->sector, io->nr_sectors) ||
	    hrl_overlaps(earlier, io->sector, io->nr_sectors) ||
	    hc->ios_inflight >= HRL_MAX_INFLIGHT_IOS)
		return false;
	if (!(hc->flags & HRL_SB_BITMAP_MODE) && !hrl_room_past_durable(hc, hrl_payload_of(io))) {
		*notify |= HRL_NOTIFY_FLUSH;
		return false;
	}
	if (!hrl_al_admit(hc, io)) {
		*notify |= HRL_NOTIFY_META;
		return false;
	}
	*notify |= hrl_place(hc, io);
	if (io->to_meta)
		return true;
	hrl_al_placed(hc, io);
	hc->ios_inflight++;
	list_add_tail(&io->node, &hc->inflight);
	return true;
}

/* Completion of both halves of a write: softirq or process context. */
static void hrl_io_done(struct hrl_io *io)
{
	struct hrl_c *hc = io->hc;
	unsigned long irqflags;
	bool wake, broke = false, flush = false, want_flush = false, al_kick;

	spin_lock_irqsave(&hc->lock, irqflags);
	list_del(&io->node);
	hc->ios_inflight--;
	al_kick = hrl_al_release(hc, io);
	if (!io->seq)
		hc->bitmap_inflight--;
	if (io->log_status && io->seq) {
		/* The record is lost: the bitmap keeps the write, the volume says why. */
		broke = !hc->log_failed;
		hrl_log_broken(hc);
	}
	/*
	 * A write tracked in the bitmap sets its bits again at completion: a
	 * take_bitmap between dispatch and here must not lose it. A failed
	 * write is marked too, so a resync copies what the device holds.
	 */
	if (!io->seq || io->data_status || io->log_status)
		hrl_mark_dirty(hc, io->sector, io->nr_sectors);
	if (io->seq) {
		if (io->pad_seq)
			hrl_record_done(hc, io->pad_seq);
		hrl_record_done(hc, io->seq);
		if ((io->rec_flags & HRL_REC_FLUSH) && !io->log_status)
			hrl_durable_to(hc, &io->flush_snap);
		flush = hc->done.stream - hc->durable.stream >= HRL_FLUSH_BYTES;
		want_flush = !hc->log_failed;
	}
	wake = !list_empty(&hc->deferred);
	spin_unlock_irqrestore(&hc->lock, irqflags);

	if (broke)
		DMERR("log write failed at seq %llu: bitmap mode, resync required", io->seq);
	if (io->log_status || al_kick)
		queue_work(hc->meta_wq, &hc->meta_work);
	if (io->data_status || io->log_status)
		queue_work(hc->io_wq, &hc->event_work);	/* dirty blocks to resync */
	if (io->seq && wq_has_sleeper(&hc->done_wait))
		wake_up_all(&hc->done_wait);
	if (want_flush)
		hrl_want_flush(hc, flush);
	if (wake)
		queue_work(hc->io_wq, &hc->deferred_work);
	hrl_free_io_pages(io);
	io->orig->bi_status = io->data_status;
	bio_endio(io->orig);
}

/* Dispatches, in arrival order, the deferred writes no longer blocked. */
static void hrl_deferred_worker(struct work_struct *work)
{
	struct hrl_c *hc = container_of(work, struct hrl_c, deferred_work);
	struct hrl_io *io, *next;
	LIST_HEAD(ready);
	LIST_HEAD(blocked);	/* earlier deferred writes, in order */
	unsigned int notify = 0;

	spin_lock_irq(&hc->lock);
	list_for_each_entry_safe(io, next, &hc->deferred, node) {
		list_del_init(&io->node);
		if (hrl_try_start(hc, io, &blocked, &notify)) {
			if (!io->to_meta)
				list_add_tail(&io->go, &ready);
		} else
			list_add_tail(&io->node, &blocked);
	}
	list_splice(&blocked, &hc->deferred);
	spin_unlock_irq(&hc->lock);

	hrl_notify(hc, notify);
	list_for_each_entry_safe(io, next, &ready, go) {
		list_del_init(&io->go);
		hrl_submit(hc, io);
	}
}

static void hrl_event_worker(struct work_struct *work)
{
	struct hrl_c *hc = container_of(work, struct hrl_c, event_work);

	dm_table_event(hc->ti->table);
}

static int hrl_map_write(struct hrl_c *hc, struct bio *bio)
{
	struct hrl_io *io = dm_per_bio_data(bio, sizeof(struct hrl_io));
	unsigned int notify = 0;
	bool started;

	memset(io, 0, offsetof(struct hrl_io, pages));
	io->hc = hc;
	io->orig = bio;
	INIT_LIST_HEAD(&io->node);
	INIT_LIST_HEAD(&io->go);
	io->nr_sectors = bio_sectors(bio);
	/* an empty flush has no place on the device: its record says sector 0 */
	io->sector = io->nr_sectors ? dm_target_offset(hc->ti, bio->bi_iter.bi_sector) : 0;
	if (bio_op(bio) == REQ_OP_DISCARD) {
		io->type = HRL_REC_DISCARD;
	} else {
		io->type = HRL_REC_WRITE;
		if (!io->nr_sectors)
			io->rec_flags |= HRL_REC_FLUSH;
		if (bio->bi_opf & REQ_FUA)
			io->rec_flags |= HRL_REC_FUA;
	}

	/* Every waiting write arrived before this one. */
	spin_lock_irq(&hc->lock);
	started = hrl_try_start(hc, io, &hc->deferred, &notify);
	if (!started)
		list_add_tail(&io->node, &hc->deferred);
	spin_unlock_irq(&hc->lock);
	hrl_notify(hc, notify);
	if (started && !io->to_meta)
		hrl_submit(hc, io);
	return DM_MAPIO_SUBMITTED;
}

static int hrl_map(struct dm_target *ti, struct bio *bio)
{
	struct hrl_c *hc = ti->private;

	switch (bio_op(bio)) {
	case REQ_OP_WRITE:
	case REQ_OP_DISCARD:
		return hrl_map_write(hc, bio);
	case REQ_OP_READ:
		bio_set_dev(bio, hc->data_dev->bdev);
		bio->bi_iter.bi_sector = dm_target_offset(ti, bio->bi_iter.bi_sector);
		return DM_MAPIO_REMAPPED;
	default:
		/* Nothing else changes data without a record: refuse it. */
		return DM_MAPIO_KILL;
	}
}

/* ---- the metadata worker ---------------------------------------------- */

/* Hands fn to the metadata worker and waits for its answer (dm-era's perform_rpc). */
static int hrl_rpc(struct hrl_c *hc, struct hrl_rpc *rpc)
{
	init_completion(&rpc->done);
	spin_lock_irq(&hc->lock);
	list_add_tail(&rpc->list, &hc->rpcs);
	spin_unlock_irq(&hc->lock);
	queue_work(hc->meta_wq, &hc->meta_work);
	wait_for_completion(&rpc->done);
	return rpc->r;
}

/*
 * The dirty bitmap's changed pages, then the superblock that carries the
 * area's checksum, with a preflush: bits set before it are durable after it.
 */
static int hrl_persist_dirty(struct hrl_c *hc)
{
	struct hrl_sb_state st;
	u64 csum, old = hc->disk_dirty_csum;
	int r;

	lockdep_assert_held(&hc->meta_lock);
	r = hrl_write_dirty_pages(hc, false, &csum);
	if (r)
		return r;
	hc->disk_dirty_csum = csum;
	hrl_sb_now(hc, &st);
	r = hrl_write_sb(hc, &st, false, true);
	if (r)
		hc->disk_dirty_csum = old;
	return r;
}

/*
 * Empty flushes in bitmap mode: the dirty bitmap's changed pages and the
 * superblock that carries their checksum, then a flush of the data device.
 * The bitmap never fails the flush: if it cannot be written the whole device
 * is resynced instead, and the application's data is still made durable.
 */
static void hrl_flush_in_bitmap_mode(struct hrl_c *hc, struct bio_list *bios)
{
	struct bio *bio;
	int r;

	lockdep_assert_held(&hc->meta_lock);
	r = hrl_persist_dirty(hc);
	if (r) {
		spin_lock_irq(&hc->lock);
		hrl_log_broken(hc);
		spin_unlock_irq(&hc->lock);
		queue_work(hc->io_wq, &hc->event_work);
	}
	r = blkdev_issue_flush(hc->data_dev->bdev);
	while ((bio = bio_list_pop(bios))) {
		bio->bi_status = errno_to_blk_status(r);
		bio_endio(bio);
	}
}

static bool hrl_dirty_pages_changed(struct hrl_c *hc)
{
	bool changed;

	spin_lock_irq(&hc->lock);
	changed = !bitmap_empty(hc->dirty_pages, hc->nr_bm_pages);
	spin_unlock_irq(&hc->lock);
	return changed;
}

/* Writes the activity log block the worker filled in, with PREFLUSH and FUA. */
static int hrl_al_write(struct hrl_c *hc, u64 seq, bool all, u32 count)
{
	struct hrl_al_block *b = hc->al_buf;

	lockdep_assert_held(&hc->meta_lock);
	b->magic = cpu_to_le64(HRL_AL_MAGIC);
	b->seq = cpu_to_le64(seq);
	b->count = cpu_to_le32(all ? HRL_AL_ALL : count);
	b->reserved = 0;
	b->csum = cpu_to_le64(xxh64(b, HRL_AL_CSUM_BYTES, hc->seed));
	return hrl_log_io(hc, REQ_OP_WRITE | REQ_PREFLUSH | REQ_FUA, b,
			  hc->al_offset + (seq % HRL_AL_SLOTS) * HRL_LOG_BLOCK, HRL_LOG_BLOCK);
}

/*
 * The log failed a write: once a superblock saying the whole device needs a
 * resync has been written with a preflush (or the log refused that too),
 * writes stop waiting for the activity log, which may not take them. Until
 * that superblock is on disk, every call tries it again. Returns the
 * superblock write's error, if it was written now and failed.
 */
static int hrl_record_failure(struct hrl_c *hc)
{
	struct hrl_sb_state st;
	bool newly, retried;
	int r;

	lockdep_assert_held(&hc->meta_lock);
	spin_lock_irq(&hc->lock);
	newly = hc->log_failed && !hc->failure_written && hc->active && (hc->flags & HRL_SB_RESYNC_REQUIRED);
	retried = hc->failure_recorded;
	spin_unlock_irq(&hc->lock);
	if (!newly)
		return 0;
	hrl_sb_now(hc, &st);
	r = hrl_write_sb(hc, &st, false, true);
	if (r && !retried)	/* once: the retries every second say nothing new */
		DMERR("%s: the log takes no superblock either: a crash now may load without resync-required; tried again every second",
		      hc->log_dev->name);
	else if (!r && retried)
		DMINFO("%s: the log took the superblock that requires the whole device", hc->log_dev->name);
	spin_lock_irq(&hc->lock);
	hc->failure_recorded = true;
	hc->failure_written = !r;	/* else tried again by the next worker run (the retry's, in a second) */
	spin_unlock_irq(&hc->lock);
	queue_work(hc->io_wq, &hc->deferred_work);
	return r;
}

/*
 * Before a superblock without resync-required replaces the one a log
 * failure wrote: the writes that went without the activity log meanwhile
 * are covered by a block that lists every extent. It stays until they have
 * completed and their bits are on disk (hrl_al_prepare).
 */
static int hrl_al_cover_bypassed(struct hrl_c *hc)
{
	bool bypassed;
	u64 seq;
	int r;

	lockdep_assert_held(&hc->meta_lock);
	spin_lock_irq(&hc->lock);
	bypassed = hc->al_slots && hc->failure_recorded && !hc->al_all;
	seq = hc->al_seq + 1;
	spin_unlock_irq(&hc->lock);
	if (!bypassed)
		return 0;
	memset(hc->al_buf, 0, HRL_LOG_BLOCK);
	r = hrl_al_write(hc, seq, true, 0);
	if (r)
		return r;
	spin_lock_irq(&hc->lock);
	hc->al_seq = seq;
	hc->al_all = true;
	spin_unlock_irq(&hc->lock);
	return 0;
}

/*
 * Picks the extents that leave (the oldest without writes in flight, an
 * eighth of the slots at a time, when a write waits for a slot) and fills the
 * block with the extents that stay and those that come. Returns whether the
 * list shrinks, or leaves "every extent".
 */
static bool hrl_al_prepare(struct hrl_c *hc, bool *all, u32 *count, bool *changed)
{
	struct hrl_al_block *b = hc->al_buf;
	struct hrl_al_slot *victim;
	u32 i, victims = 0;
	bool leave_all;

	lockdep_assert_held(&hc->lock);
	hc->al_txn_wanted = false;
	while (hc->al_want_room && victims < max(1U, hc->al_slots / 8) && (victim = hrl_al_victim(hc))) {
		victim->state = HRL_AL_LEAVING;
		victims++;
	}
	if (victims)
		hc->al_want_room = false;
	leave_all = hc->al_all && !hc->al_want_all && !hc->al_all_inflight && hc->al_all_max_seq < hc->done.seq;
	*all = hc->al_want_all || (hc->al_all && !leave_all);
	/* Leaving "every extent" is a change: the block is written, after the flush that covers the writes under it. */
	*changed = victims || *all != hc->al_all;
	hc->al_want_all = false;
	if (leave_all)
		hc->al_all = false;	/* writes from now on wait for their extents */
	*count = 0;
	for (i = 0; i < hc->al_slots; i++) {
		struct hrl_al_slot *slot = &hc->al[i];

		if (slot->state == HRL_AL_ADDING) {
			slot->state = HRL_AL_COMMITTING;
			*changed = true;
		}
		if (slot->state == HRL_AL_ACTIVE || slot->state == HRL_AL_COMMITTING)
			b->extents[(*count)++] = cpu_to_le32(slot->extent);
	}
	return victims || leave_all;
}

/*
 * One transaction of the activity log. Extents come in by the write of the
 * new block alone. Before an extent leaves, every write to it is made
 * durable: the data device is flushed, the dirty bitmap written in bitmap
 * mode, and the block's preflush covers the records. In-core state follows
 * the write; a failed write is a failed log (the whole device is resynced).
 */
static void hrl_al_commit(struct hrl_c *hc)
{
	bool shrinks, all, changed;
	u32 i, count;
	u64 seq;
	int r = 0;

	lockdep_assert_held(&hc->meta_lock);
	memset(hc->al_buf, 0, HRL_LOG_BLOCK);
	spin_lock_irq(&hc->lock);
	shrinks = hrl_al_prepare(hc, &all, &count, &changed);
	seq = hc->al_seq + 1;
	spin_unlock_irq(&hc->lock);
	if (!changed)
		return;
	if (shrinks) {
		r = blkdev_issue_flush(hc->data_dev->bdev);
		if (r)
			DMERR("%s: flush before the activity log shrinks failed (%d)", hc->data_dev->name, r);
		/* bits of writes in bitmap mode, or of failed writes: durable before their extent leaves */
		if (!r && hrl_dirty_pages_changed(hc))
			r = hrl_persist_dirty(hc);
		/*
		 * A failed record (or flush) counts as completed, so the extents
		 * of the writes after it may leave: the superblock asking for the
		 * whole device goes first, or a crash loads a ring cut at the hole
		 * and a list without them. Checked last: a failure may come late.
		 */
		if (!r && READ_ONCE(hc->log_failed))
			r = hrl_record_failure(hc);
	}
	if (!r)
		r = hrl_al_write(hc, seq, all, count);
	spin_lock_irq(&hc->lock);
	for (i = 0; i < hc->al_slots; i++) {
		struct hrl_al_slot *slot = &hc->al[i];

		if (slot->state == HRL_AL_COMMITTING)
			slot->state = r ? HRL_AL_FREE : HRL_AL_ACTIVE;
		else if (slot->state == HRL_AL_LEAVING)
			slot->state = HRL_AL_FREE;	/* a failed block may have landed: listed no more */
	}
	if (r) {
		/*
		 * Writes go on once that is on disk: the whole device is resynced.
		 * A block that leaves "every extent" may have landed although it
		 * failed: al_all stays false until then, and the writes wait.
		 */
		hrl_log_broken(hc);
	} else {
		hc->al_seq = seq;
		hc->al_all = all;
	}
	spin_unlock_irq(&hc->lock);
	if (r) {
		DMERR("%s: activity log transaction failed (%d): bitmap mode, resync required", hc->log_dev->name, r);
		queue_work(hc->io_wq, &hc->event_work);
	}
	queue_work(hc->io_wq, &hc->deferred_work);	/* the writes that waited */
}

static void hrl_meta_worker(struct work_struct *work)
{
	struct hrl_c *hc = container_of(work, struct hrl_c, meta_work);
	unsigned int noio = memalloc_noio_save();	/* writes may be waiting on us */
	struct hrl_rpc *rpc, *next;
	struct hrl_sb_state st;
	struct bio_list bios;
	LIST_HEAD(rpcs);
	bool stale, al_txn, refused = false;

	mutex_lock(&hc->meta_lock);
	spin_lock_irq(&hc->lock);
	list_splice_init(&hc->rpcs, &rpcs);
	bios = hc->flush_bios;
	bio_list_init(&hc->flush_bios);
	spin_unlock_irq(&hc->lock);

	list_for_each_entry_safe(rpc, next, &rpcs, list) {
		list_del(&rpc->list);
		rpc->r = hc->active || rpc->suspended_too ? rpc->fn(hc, rpc) : -EBUSY;
		complete(&rpc->done);
	}
	if (!bio_list_empty(&bios))
		hrl_flush_in_bitmap_mode(hc, &bios);

	spin_lock_irq(&hc->lock);
	al_txn = hc->al_txn_wanted && hc->active;
	spin_unlock_irq(&hc->lock);
	if (al_txn)
		hrl_al_commit(hc);

	spin_lock_irq(&hc->lock);
	stale = hc->sb_stale && hc->active;
	hc->sb_stale = false;
	spin_unlock_irq(&hc->lock);
	if (stale) {
		hrl_sb_now(hc, &st);
		if (hrl_write_sb(hc, &st, false, false)) {
			spin_lock_irq(&hc->lock);
			hc->sb_stale = true;
			spin_unlock_irq(&hc->lock);
			refused = true;
		}
	}
	/* Even after a refused write: a refused failure superblock lets the writes go. */
	refused |= hrl_record_failure(hc) != 0;
	/*
	 * Nothing else may run the worker again soon (no flush in bitmap mode,
	 * no message): a refused superblock is tried again every second, so a
	 * log that answers again holds within a second the resync that only
	 * memory knew. No backoff, which would widen that window: a dead log
	 * costs a block write a second, and a hung one spaces the tries itself.
	 * Stopped by the suspend.
	 */
	if (refused)
		queue_delayed_work(hc->meta_wq, &hc->retry_work, HZ);
	mutex_unlock(&hc->meta_lock);
	memalloc_noio_restore(noio);
}

static void hrl_retry_worker(struct work_struct *work)
{
	struct hrl_c *hc = container_of(to_delayed_work(work), struct hrl_c, retry_work);

	/*
	 * Not while the device is suspended: a target left active there (by
	 * another target's failed preresume) must not write over the log a
	 * new table is loading. The resume's commit writes it instead.
	 */
	if (!dm_suspended(hc->ti))
		queue_work(hc->meta_wq, &hc->meta_work);
}

/* ---- loading the ring ------------------------------------------------- */

struct hrl_window {
	u8 *buf;
	u64 size;
	u64 start;	/* ring offset of buf[0] */
	u64 len;	/* valid bytes */
};

/* Makes ring bytes [pos, pos + len) available in the window. */
static int hrl_window_get(struct hrl_c *hc, struct hrl_window *w, u64 pos, u64 len, u8 **out)
{
	int r;

	if (w->len && pos >= w->start && pos + len <= w->start + w->len) {
		*out = w->buf + (pos - w->start);
		return 0;
	}
	w->start = round_down(pos, HRL_LOG_BLOCK);
	w->len = min(w->size, hc->ring_bytes - w->start);
	r = hrl_log_io(hc, REQ_OP_READ, w->buf, hc->ring_offset + w->start, w->len);
	if (r) {
		w->len = 0;
		return r;
	}
	if (pos + len > w->start + w->len)
		return -EINVAL;
	*out = w->buf + (pos - w->start);
	return 0;
}

/* The record rules of docs/log-format.md; 0 when h is the record expected at pos. */
static int hrl_check_record(struct hrl_c *hc, const struct hrl_record_header *h, u64 pos,
			    u64 seq, bool *malformed)
{
	u16 type = le16_to_cpu(h->type), flags = le16_to_cpu(h->flags);
	u32 nr = le32_to_cpu(h->nr_sectors), bytes = le32_to_cpu(h->payload_bytes);
	u64 sector = le64_to_cpu(h->sector);
	bool bad;

	*malformed = false;
	if (le32_to_cpu(h->magic) != HRL_RECORD_MAGIC ||
	    le64_to_cpu(h->header_csum) != xxh64(h, HRL_RECORD_CSUM_BYTES, hc->seed))
		return -ENOENT;
	bad = (flags & ~HRL_REC_KNOWN_FLAGS) || (!bytes && h->payload_csum);
	switch (type) {
	case HRL_REC_WRITE:
		bad |= ((u64)nr << SECTOR_SHIFT) != bytes || (!nr && !(flags & HRL_REC_FLUSH));
		break;
	case HRL_REC_DISCARD:
		bad |= bytes || !nr || flags;
		break;
	case HRL_REC_MARK:
		bad |= nr || sector || !bytes || bytes > HRL_MARK_NAME_MAX || flags;
		break;
	case HRL_REC_PAD:
		bad |= nr || sector || bytes % HRL_SECTOR_SIZE || h->payload_csum || flags;
		break;
	default:
		bad = true;
	}
	if (bad) {
		*malformed = true;
		return -EINVAL;
	}
	if (le64_to_cpu(h->seq) != seq || le64_to_cpu(h->generation) != hc->generation)
		return -ESTALE;
	if (type == HRL_REC_PAD)
		bad = pos + hrl_record_span(bytes) != hc->ring_bytes;
	else
		bad = bytes > hc->max_payload || pos + hrl_record_span(bytes) > hc->ring_bytes ||
		      sector > hc->data_sectors || nr > hc->data_sectors - sector;
	*malformed = bad;
	return bad ? -EINVAL : 0;
}

/*
 * Walks the ring from the tail to the end of the valid data: the real head,
 * and the span of every record for ack. *corrupt when the walk stopped below
 * the head the superblock claims durable, or at a malformed record.
 */
static int hrl_scan_ring(struct hrl_c *hc, u64 claimed_head, bool *corrupt)
{
	struct hrl_window w = { .size = max_t(u64, 2 << 20, hrl_record_span(hc->max_payload) + HRL_LOG_BLOCK) };
	struct hrl_pos pos = { .seq = hc->tail.seq, .off = hc->tail.off };
	bool malformed = false;
	u64 used = 0;
	int r = 0;

	lockdep_assert_held(&hc->meta_lock);
	w.size = min(w.size, hc->ring_bytes);
	w.buf = vmalloc(w.size);
	if (!w.buf)
		return -ENOMEM;
	while (used < hc->ring_bytes) {
		struct hrl_record_header *h;
		u8 *unit, *payload;
		u32 bytes;
		u64 span;

		r = hrl_window_get(hc, &w, pos.off, HRL_SECTOR_SIZE, &unit);
		if (r)
			goto out;
		h = (struct hrl_record_header *)unit;
		if (hrl_check_record(hc, h, pos.off, pos.seq, &malformed))
			break;
		bytes = le32_to_cpu(h->payload_bytes);
		span = hrl_record_span(bytes);
		if (used + span > hc->ring_bytes) {	/* records overlapping the tail */
			malformed = true;
			break;
		}
		if (le16_to_cpu(h->type) != HRL_REC_PAD && bytes) {
			u64 csum = le64_to_cpu(h->payload_csum);

			r = hrl_window_get(hc, &w, pos.off + HRL_SECTOR_SIZE, bytes, &payload);
			if (r)
				goto out;
			if (xxh64(payload, bytes, hc->seed) != csum)
				break;
		}
		hc->spans[pos.seq % hc->nr_slots] = span >> SECTOR_SHIFT;
		used += span;
		hrl_advance(hc, &pos);
	}
	*corrupt = malformed || pos.seq < claimed_head;
	if (*corrupt)
		DMERR("%s: corrupt record at seq %llu, ring offset %llu", hc->log_dev->name, pos.seq, pos.off);
	/* what the walk found is on the device: completed and durable */
	pos.stream = used;
	hc->head = hc->done = hc->durable = pos;
	hc->used = used;
	bitmap_zero(hc->done_slots, hc->nr_slots);
out:
	vfree(w.buf);
	return r;
}

/*
 * After an unclean shutdown: no record of the crashed run may follow the new
 * ones. None went further than HRL_MAX_INFLIGHT_BYTES past the durable point,
 * which is at or before the head the walk found. The zeros are flushed with
 * the superblock that follows the load.
 */
static int hrl_zero_past_head(struct hrl_c *hc)
{
	u64 left = min_t(u64, HRL_MAX_INFLIGHT_BYTES, hc->ring_bytes - hc->used);
	u64 pos = hc->head.off;
	int r = 0;

	lockdep_assert_held(&hc->meta_lock);
	while (left && !r) {
		u64 n = min(left, hc->ring_bytes - pos);

		r = blkdev_issue_zeroout(hc->log_dev->bdev, (hc->ring_offset + pos) >> SECTOR_SHIFT,
					 n >> SECTOR_SHIFT, GFP_NOIO, 0);
		left -= n;
		pos = (pos + n) % hc->ring_bytes;
	}
	return r;
}

/*
 * Reads activity log block i into the worker's buffer: 1 when valid, 0 when
 * not (torn, never written), an error when it could not be read (then its
 * contents are unknown, not absent).
 */
static int hrl_al_read_block(struct hrl_c *hc, u32 i)
{
	struct hrl_al_block *b = hc->al_buf;
	u32 count;
	int r;

	r = hrl_log_io(hc, REQ_OP_READ, b, hc->al_offset + i * HRL_LOG_BLOCK, HRL_LOG_BLOCK);
	if (r)
		return r;
	if (le64_to_cpu(b->magic) != HRL_AL_MAGIC || le64_to_cpu(b->csum) != xxh64(b, HRL_AL_CSUM_BYTES, hc->seed))
		return 0;
	count = le32_to_cpu(b->count);
	return count == HRL_AL_ALL || count <= hc->al_slots;
}

/*
 * The activity log at load: the in-core list starts empty, numbered after
 * the newest block on disk. After an unclean shutdown the extents that block
 * lists are marked dirty: they are all that may differ beyond the log's
 * records. Returns false when the block cannot say (none valid, or "every
 * extent"): then the whole device is.
 */
static bool hrl_al_load(struct hrl_c *hc, bool unclean)
{
	struct hrl_al_block *b = hc->al_buf;
	u64 seq, best_seq = 0;
	u32 i, count, best = HRL_AL_SLOTS;
	bool unreadable = false;
	int r;

	lockdep_assert_held(&hc->meta_lock);
	memset(hc->al, 0, hc->al_slots * sizeof(*hc->al));
	hc->al_all = hc->al_want_all = hc->al_want_room = hc->al_txn_wanted = false;
	hc->al_all_inflight = 0;
	hc->al_all_max_seq = 0;
	for (i = 0; i < HRL_AL_SLOTS; i++) {
		r = hrl_al_read_block(hc, i);
		unreadable |= r < 0;
		if (r <= 0)
			continue;
		seq = le64_to_cpu(b->seq);
		if (best == HRL_AL_SLOTS || seq > best_seq) {
			best = i;
			best_seq = seq;
		}
	}
	hc->al_seq = best_seq;
	if (!unclean)
		return true;
	if (unreadable || best == HRL_AL_SLOTS || hrl_al_read_block(hc, best) != 1)
		return false;
	count = le32_to_cpu(b->count);
	if (count == HRL_AL_ALL)
		return false;
	spin_lock_irq(&hc->lock);
	for (i = 0; i < count; i++) {
		u64 sector = (u64)le32_to_cpu(b->extents[i]) << hc->al_shift;

		if (sector < hc->data_sectors)
			hrl_mark_dirty(hc, sector, min_t(u64, 1ULL << hc->al_shift, hc->data_sectors - sector));
	}
	spin_unlock_irq(&hc->lock);
	DMINFO("%s: unclean shutdown: the %u extents of the activity log are resynced", hc->log_dev->name, count);
	return true;
}

/* Reads the whole state back from the log device. */
static int hrl_load(struct hrl_c *hc)
{
	struct hrl_superblock *sb = hc->sb_buf;
	bool unclean, bitmap_lost, al_covers, corrupt = false;
	char *why = "";
	int r;

	/* Runs before the device resumes: no I/O can touch the in-core state yet. */
	lockdep_assert_held(&hc->meta_lock);
	r = hrl_read_sb(hc, sb, &why);
	if (r) {
		DMERR("%s: not an hrl log: %s", hc->log_dev->name, why);
		return r;
	}
	if (memcmp(sb->uuid, hc->uuid, sizeof(hc->uuid)) ||
	    le64_to_cpu(sb->ring_bytes) != hc->ring_bytes ||
	    le64_to_cpu(sb->data_sectors) != hc->data_sectors ||
	    le64_to_cpu(sb->ring_offset) != hc->ring_offset || le64_to_cpu(sb->al_offset) != hc->al_offset ||
	    le32_to_cpu(sb->al_extents) != hc->al_slots) {
		DMERR("%s: the log was formatted again since the table was loaded", hc->log_dev->name);
		return -EINVAL;
	}
	unclean = !(le32_to_cpu(sb->flags) & HRL_SB_CLEAN);
	hc->generation = le64_to_cpu(sb->generation);
	hc->sb_update_seq = le64_to_cpu(sb->update_seq);
	hc->flags = le32_to_cpu(sb->flags) & ~HRL_SB_CLEAN;
	hc->reason = le32_to_cpu(sb->resync_reason);
	hc->take_seq = le64_to_cpu(sb->resync_take_seq);
	hc->tail.seq = le64_to_cpu(sb->tail_seq);
	hc->tail.off = le64_to_cpu(sb->tail_offset);
	hc->tail.stream = 0;
	hc->disk_dirty_csum = le64_to_cpu(sb->bitmap_csum);
	hc->disk_resync_csum = le64_to_cpu(sb->resync_csum);

	bitmap_lost = hrl_read_bitmap(hc, hc->dirty_disk, hc->bitmap_offset, hc->disk_dirty_csum) ||
		      hrl_read_bitmap(hc, hc->resync, hc->resync_offset, hc->disk_resync_csum);
	if (bitmap_lost) {
		memset(hc->dirty_disk, 0, hc->bitmap_bytes);
		memset(hc->resync, 0, hc->bitmap_bytes);
	}
	memcpy(hc->dirty, hc->dirty_disk, hc->bitmap_bytes);
	bitmap_fill(hc->dirty_pages, hc->nr_bm_pages);	/* written again with the first commit */
	al_covers = hc->al_slots && hrl_al_load(hc, unclean);
	hc->dirty_any = !bitmap_empty(hc->dirty, hc->nr_bits);	/* suspended: nothing else looks */
	r = hrl_scan_ring(hc, le64_to_cpu(sb->head_seq), &corrupt);
	if (r)
		return r;
	if (unclean || corrupt) {
		r = hrl_zero_past_head(hc);
		if (r)
			return r;
	}
	spin_lock_irq(&hc->lock);
	if (unclean && !al_covers)
		hrl_set_resync_required(hc, HRL_REASON_UNCLEAN_SHUTDOWN);
	else if (unclean && !(hc->flags & HRL_SB_RESYNC_REQUIRED))
		hc->reason = HRL_REASON_UNCLEAN_SHUTDOWN;	/* the extents of the activity log are dirty */
	if (bitmap_lost)
		hrl_set_resync_required(hc, HRL_REASON_BITMAP_LOST);
	if (corrupt)
		hrl_set_resync_required(hc, HRL_REASON_LOG_CORRUPT);
	hc->fill_level = 0;
	hrl_fill_crossed(hc);
	spin_unlock_irq(&hc->lock);
	if (hc->flags & HRL_SB_RESYNC_REQUIRED)
		DMWARN("%s: resync required: %s", hc->log_dev->name, hrl_reason_name(hc->reason));
	return 0;
}

/* ---- what the metadata worker does for the target interface ----------- */

static struct hrl_unwritten *hrl_unwritten_find(const u8 *uuid)
{
	struct hrl_unwritten *u;

	lockdep_assert_held(&hrl_unwritten_mutex);
	list_for_each_entry(u, &hrl_unwritten_list, list)
		if (!memcmp(u->uuid, uuid, sizeof(u->uuid)))
			return u;
	return NULL;
}

static void hrl_unwritten_drop(struct hrl_unwritten *u)
{
	lockdep_assert_held(&hrl_unwritten_mutex);
	list_del(&u->list);
	kfree(u);
}

/* The suspend could not write the superblock: a resync only memory knows is kept for the next resume. */
static void hrl_unwritten_keep(struct hrl_c *hc)
{
	struct hrl_unwritten *u;
	bool required;
	u32 reason;

	lockdep_assert_held(&hc->meta_lock);
	spin_lock_irq(&hc->lock);
	required = hc->flags & HRL_SB_RESYNC_REQUIRED;
	reason = hc->reason;
	spin_unlock_irq(&hc->lock);
	if (!required)
		return;
	mutex_lock(&hrl_unwritten_mutex);
	u = hrl_unwritten_find(hc->uuid);
	if (!u) {
		u = kzalloc(sizeof(*u), GFP_NOIO);
		if (u) {
			memcpy(u->uuid, hc->uuid, sizeof(u->uuid));
			list_add(&u->list, &hrl_unwritten_list);
		}
	}
	if (u) {
		u->generation = hc->generation;
		u->reason = reason;
	}
	mutex_unlock(&hrl_unwritten_mutex);
	if (u)
		DMERR("%s: the next resume requires a resync of the whole device (%s); a power loss before it forgets that",
		      hc->log_dev->name, hrl_reason_name(reason));
	else
		DMERR("%s: out of memory: the next resume forgets that the whole device needs a resync (%s)",
		      hc->log_dev->name, hrl_reason_name(reason));
}

/* After the load: a resync a suspend could not write is required again, unless the log was formatted since. */
static void hrl_unwritten_require(struct hrl_c *hc)
{
	struct hrl_unwritten *u;
	bool required = false;

	lockdep_assert_held(&hc->meta_lock);
	mutex_lock(&hrl_unwritten_mutex);
	u = hrl_unwritten_find(hc->uuid);
	if (u && u->generation == hc->generation) {
		spin_lock_irq(&hc->lock);
		hrl_set_resync_required(hc, u->reason);
		spin_unlock_irq(&hc->lock);
		required = true;
	} else if (u) {
		DMWARN("%s: formatted again (generation %llu, was %llu): a resync a suspend could not write (%s) is dropped",
		       hc->log_dev->name, hc->generation, u->generation, hrl_reason_name(u->reason));
		hrl_unwritten_drop(u);
	}
	mutex_unlock(&hrl_unwritten_mutex);
	if (required)
		DMWARN("%s: a suspend could not write that the whole device needs a resync: required again",
		       hc->log_dev->name);
}

/* The resume's superblock holds the resync now: the module forgets it. */
static void hrl_unwritten_written(struct hrl_c *hc)
{
	struct hrl_unwritten *u;

	lockdep_assert_held(&hc->meta_lock);
	mutex_lock(&hrl_unwritten_mutex);
	u = hrl_unwritten_find(hc->uuid);
	if (u)
		hrl_unwritten_drop(u);
	mutex_unlock(&hrl_unwritten_mutex);
}

static int hrl_do_resume(struct hrl_c *hc, struct hrl_rpc *rpc)
{
	struct hrl_sb_state st;
	int r;

	hc->active = false;	/* the load replaces the in-core state: nothing writes it until it is whole */
	r = hrl_load(hc);
	if (r)
		return r;
	hrl_unwritten_require(hc);
	hrl_sb_now(hc, &st);
	r = hrl_commit(hc, &st, false);	/* the clean flag goes until the next suspend */
	hc->active = !r;
	if (!r)
		hrl_unwritten_written(hc);
	spin_lock_irq(&hc->lock);
	hc->quiescing = false;
	hc->log_failed = false;	/* a new load: the log device answers again */
	hc->failure_recorded = hc->failure_written = false;
	spin_unlock_irq(&hc->lock);
	return r;
}

static int hrl_do_deactivate(struct hrl_c *hc, struct hrl_rpc *rpc)
{
	hc->active = false;
	return 0;
}

static int hrl_do_suspend(struct hrl_c *hc, struct hrl_rpc *rpc)
{
	struct hrl_sb_state st;
	int unflushed, r;

	if (!hc->active)
		return 0;
	/* Without a flushed data device the state is still written, unclean: a resync it requires lands. */
	unflushed = blkdev_issue_flush(hc->data_dev->bdev);
	hrl_sb_now(hc, &st);
	if (!unflushed)
		st.head = hc->head;	/* quiesced and flushed below: the head is durable */
	r = hrl_commit(hc, &st, !unflushed);
	if (unflushed)
		DMERR("%s: could not flush the data device on suspend (%d): the log will load as unclean",
		      hc->data_dev->name, unflushed);
	if (r) {
		DMERR("%s: could not write the log's state on suspend (%d): it will load as unclean",
		      hc->log_dev->name, r);
		hrl_unwritten_keep(hc);
	}
	hc->active = false;
	return 0;
}

/*
 * ack <seq>: records up to seq are durable on the secondary. The tail moves
 * past them, never past a record still being written, and the ring space is
 * freed only once the superblock with the new tail is on disk.
 */
static int hrl_do_ack(struct hrl_c *hc, struct hrl_rpc *rpc)
{
	struct hrl_sb_state st;
	struct hrl_pos tail;
	bool left_bitmap;
	u64 freed;
	int r;

	spin_lock_irq(&hc->lock);
	if (rpc->seq >= hc->head.seq) {
		DMERR("ack %llu is beyond the head (next seq %llu)", rpc->seq, hc->head.seq);
		spin_unlock_irq(&hc->lock);
		return -EINVAL;
	}
	spin_unlock_irq(&hc->lock);
	/* The secondary read these records back: only their data writes may still be in flight. */
	wait_event(hc->done_wait, READ_ONCE(hc->done.seq) > rpc->seq);
	hrl_sb_now(hc, &st);
	if (rpc->seq < st.tail.seq)
		return 0;
	spin_lock_irq(&hc->lock);
	tail = hc->tail;
	while (tail.seq <= rpc->seq)
		hrl_advance(hc, &tail);
	spin_unlock_irq(&hc->lock);
	freed = tail.stream - st.tail.stream;
	st.tail = tail;
	r = hrl_write_sb(hc, &st, false, false);
	if (r)
		return r;
	spin_lock_irq(&hc->lock);
	hc->tail = tail;
	hc->used -= freed;
	hrl_fill_crossed(hc);
	left_bitmap = hrl_maybe_leave_bitmap_mode(hc);
	spin_unlock_irq(&hc->lock);
	if (left_bitmap)
		queue_work(hc->io_wq, &hc->event_work);
	queue_work(hc->io_wq, &hc->deferred_work);
	return 0;
}

/*
 * A PAD or MARK record whose ring space was reserved could not be written:
 * readers stop at the hole, so the volume needs a resync, and says so. Its
 * sequence numbers count as completed (the durable point never passes them
 * now): what waits for the completed point must not wait for them forever.
 */
static void hrl_record_write_failed(struct hrl_c *hc, const struct hrl_io *tmp, const char *what, u64 seq,
				    int r)
{
	spin_lock_irq(&hc->lock);
	hrl_log_broken(hc);
	if (tmp->pad_seq)
		hrl_record_done(hc, tmp->pad_seq);
	hrl_record_done(hc, tmp->seq);
	spin_unlock_irq(&hc->lock);
	wake_up_all(&hc->done_wait);
	DMERR("%s record at seq %llu could not be written (%d): resync required", what, seq, r);
	queue_work(hc->io_wq, &hc->event_work);
}

/*
 * mark <name>: writes a MARK record (and a PAD before it if needed) and
 * waits for it. Answers the record's sequence number.
 */
static int hrl_do_mark(struct hrl_c *hc, struct hrl_rpc *rpc)
{
	size_t len = strlen(rpc->name);
	unsigned int sz = 0, maxlen = rpc->maxlen;
	char *result = rpc->result;
	struct hrl_io tmp = {};
	void *page = hc->sb_buf;	/* free between superblock writes */
	int r;

	if (!len || len > HRL_MARK_NAME_MAX)
		return -EINVAL;
	/* Room is checked and the ring reserved in one critical section: never past the bound. */
	hrl_want_flush(hc, true);
	wait_event(hc->done_wait, ({
		bool answered = true;

		spin_lock_irq(&hc->lock);
		if (hc->flags & HRL_SB_BITMAP_MODE)
			r = -EBUSY;
		else if (!hrl_room_past_durable(hc, len))
			answered = false;
		else if (!hrl_ring_reserve(hc, len, &tmp))
			r = -ENOSPC;
		else
			r = 0;
		spin_unlock_irq(&hc->lock);
		answered; }));
	if (r) {
		DMERR("cannot mark '%s': %s", rpc->name, r == -EBUSY ? "the log is in bitmap mode" : "the ring is full");
		return r;
	}
	memset(page, 0, HRL_LOG_BLOCK);
	if (tmp.pad_seq) {
		struct hrl_record_header *h = page;

		h->magic = cpu_to_le32(HRL_RECORD_MAGIC);
		h->type = cpu_to_le16(HRL_REC_PAD);
		h->seq = cpu_to_le64(tmp.pad_seq);
		h->generation = cpu_to_le64(hc->generation);
		h->payload_bytes = cpu_to_le32(hc->ring_bytes - tmp.pad_pos - HRL_SECTOR_SIZE);
		h->timestamp_ns = cpu_to_le64(hrl_now_ns());
		h->header_csum = cpu_to_le64(xxh64(h, HRL_RECORD_CSUM_BYTES, hc->seed));
		r = hrl_log_io(hc, REQ_OP_WRITE, page, hc->ring_offset + tmp.pad_pos, HRL_SECTOR_SIZE);
		if (r) {
			hrl_record_write_failed(hc, &tmp, "PAD", tmp.pad_seq, r);
			return r;
		}
		memset(page, 0, HRL_LOG_BLOCK);
	}
	memcpy(page + HRL_SECTOR_SIZE, rpc->name, len);
	{
		struct hrl_record_header *h = page;

		h->magic = cpu_to_le32(HRL_RECORD_MAGIC);
		h->type = cpu_to_le16(HRL_REC_MARK);
		h->seq = cpu_to_le64(tmp.seq);
		h->generation = cpu_to_le64(hc->generation);
		h->payload_bytes = cpu_to_le32(len);
		h->timestamp_ns = cpu_to_le64(hrl_now_ns());
		h->payload_csum = cpu_to_le64(xxh64(page + HRL_SECTOR_SIZE, len, hc->seed));
		h->header_csum = cpu_to_le64(xxh64(h, HRL_RECORD_CSUM_BYTES, hc->seed));
	}
	r = hrl_log_io(hc, REQ_OP_WRITE | REQ_FUA, page, hc->ring_offset + tmp.pos, hrl_record_span(len));
	if (r) {
		hrl_record_write_failed(hc, &tmp, "MARK", tmp.seq, r);
		return r;
	}
	spin_lock_irq(&hc->lock);
	if (tmp.pad_seq)
		hrl_record_done(hc, tmp.pad_seq);
	hrl_record_done(hc, tmp.seq);
	spin_unlock_irq(&hc->lock);
	wake_up_all(&hc->done_wait);
	hrl_want_flush(hc, false);
	DMEMIT("%llu", tmp.seq);
	return 1;	/* dm returns the result to userspace */
}

/* What the status says once a pass covers the whole device: why it stays in bitmap mode, if it does. */
static u32 hrl_reason_once_covered(struct hrl_c *hc, u32 flags)
{
	if (READ_ONCE(hc->log_failed))
		return HRL_REASON_IO_ERROR;
	return flags & HRL_SB_BITMAP_MODE ? HRL_REASON_RING_OVERFLOW : HRL_REASON_NONE;
}

/*
 * take_bitmap: hands the dirty bitmap to a resync. Writers move to a clean
 * bitmap under the lock; the taken one goes into the resync bitmap outside
 * it. The answer waits until every write with a smaller sequence number has
 * reached the data device, so the resync cannot read a block before a write
 * journaled ahead of it lands, and until both bitmaps are on disk.
 */
static int hrl_do_take_bitmap(struct hrl_c *hc, struct hrl_rpc *rpc)
{
	unsigned int sz = 0, maxlen = rpc->maxlen;
	char *result = rpc->result;
	struct hrl_sb_state st;
	unsigned long *taken;
	u64 take_seq, gen;
	bool required, pending, cleared, left_bitmap;
	int r;

	spin_lock_irq(&hc->lock);
	taken = hc->dirty;
	hc->dirty = hc->spare;
	hc->spare = taken;
	hc->dirty_any = false;
	bitmap_fill(hc->dirty_pages, hc->nr_bm_pages);	/* the area is written again, from the clean bitmap */
	take_seq = hc->head.seq;
	required = hc->flags & HRL_SB_RESYNC_REQUIRED;
	pending = hc->flags & HRL_SB_RESYNC_PENDING;
	gen = hc->required_gen;
	spin_unlock_irq(&hc->lock);

	if (!pending)
		memset(hc->resync, 0, hc->bitmap_bytes);	/* a bitmap nobody took: this worker's alone */
	bitmap_or(hc->resync, hc->resync, taken, hc->nr_bits);
	if (required)
		bitmap_set(hc->resync, 0, hc->nr_bits);	/* not past the last bit */
	memset(taken, 0, hc->bitmap_bytes);

	/*
	 * Every record before take_seq must be durable too: the secondary may
	 * record the pass at take_seq and take this log's records before it as
	 * its history, which a power loss here must not undo. A log that failed
	 * a write makes nothing durable again; its pass covers the whole device.
	 */
	hrl_want_flush(hc, true);
	wait_event(hc->done_wait, ({
		bool reached;

		spin_lock_irq(&hc->lock);
		reached = hc->done.seq >= take_seq && (hc->durable.seq >= take_seq || hc->log_failed);
		spin_unlock_irq(&hc->lock);
		reached; }));

	hrl_sb_now(hc, &st);
	st.flags |= HRL_SB_RESYNC_PENDING;
	st.take_seq = take_seq;
	cleared = required && st.flags & HRL_SB_RESYNC_REQUIRED;
	if (cleared) {
		st.flags &= ~HRL_SB_RESYNC_REQUIRED;
		st.reason = hrl_reason_once_covered(hc, st.flags);
	} else if (!(st.flags & HRL_SB_RESYNC_REQUIRED) && st.reason == HRL_REASON_UNCLEAN_SHUTDOWN) {
		st.reason = hrl_reason_once_covered(hc, st.flags);	/* its extents are in the pass */
	}
	r = cleared ? hrl_al_cover_bypassed(hc) : 0;
	if (!r)
		r = hrl_commit(hc, &st, false);
	spin_lock_irq(&hc->lock);
	if (r) {
		hrl_log_broken(hc);
		hc->failure_written = false;	/* a failed superblock may have landed: written again */
	} else {
		if (cleared) {	/* the disk no longer asks for the whole device: writes wait for the list again */
			hc->failure_recorded = hc->failure_written = false;
			if (hc->al_all)	/* "every extent" leaves once its writes allow, idle or not */
				hc->al_txn_wanted = true;
		}
		hc->flags |= HRL_SB_RESYNC_PENDING;
		hc->take_seq = take_seq;
		if (required && hc->required_gen == gen) {	/* not required again since: covered */
			hc->flags &= ~HRL_SB_RESYNC_REQUIRED;
			hc->reason = st.reason;
		} else if (!(hc->flags & HRL_SB_RESYNC_REQUIRED) && hc->reason == HRL_REASON_UNCLEAN_SHUTDOWN) {
			hc->reason = st.reason;
		}
	}
	left_bitmap = !r && hrl_maybe_leave_bitmap_mode(hc);
	spin_unlock_irq(&hc->lock);
	queue_work(hc->io_wq, &hc->event_work);
	if (r)
		return r;
	if (left_bitmap)
		queue_work(hc->meta_wq, &hc->meta_work);	/* the superblock says so next */
	DMEMIT("%llu", take_seq);
	return 1;	/* dm returns the result to userspace */
}

static int hrl_do_end_resync(struct hrl_c *hc, struct hrl_rpc *rpc)
{
	struct hrl_sb_state st;
	int r;

	hrl_sb_now(hc, &st);
	if (!(st.flags & HRL_SB_RESYNC_PENDING)) {
		DMERR("end_resync: no bitmap was taken");
		return -EINVAL;
	}
	memset(hc->resync, 0, hc->bitmap_bytes);
	st.flags &= ~HRL_SB_RESYNC_PENDING;
	st.take_seq = 0;
	r = hrl_commit(hc, &st, false);
	spin_lock_irq(&hc->lock);
	if (r) {
		hrl_log_broken(hc);
	} else {
		hc->flags &= ~HRL_SB_RESYNC_PENDING;
		hc->take_seq = 0;
	}
	spin_unlock_irq(&hc->lock);
	return r;
}

static int hrl_do_request_resync(struct hrl_c *hc, struct hrl_rpc *rpc)
{
	struct hrl_sb_state st;
	int r;

	hrl_sb_now(hc, &st);
	if (!(st.flags & HRL_SB_RESYNC_REQUIRED))
		st.reason = HRL_REASON_OPERATOR;
	st.flags |= HRL_SB_RESYNC_REQUIRED;
	r = hrl_write_sb(hc, &st, false, false);
	spin_lock_irq(&hc->lock);
	hrl_set_resync_required(hc, HRL_REASON_OPERATOR);
	if (r)
		hc->sb_stale = true;
	spin_unlock_irq(&hc->lock);
	queue_work(hc->io_wq, &hc->event_work);
	return r;
}

/* ---- target interface ------------------------------------------------- */

/* Waits for the target's own I/O and work: the flush of the log, the deferred writes. */
static void hrl_quiesce(struct hrl_c *hc)
{
	spin_lock_irq(&hc->lock);
	hc->quiescing = true;
	spin_unlock_irq(&hc->lock);
	wait_event(hc->done_wait, !READ_ONCE(hc->log_flushing));
	spin_lock_irq(&hc->lock);	/* the flush's completion has let go of hc */
	spin_unlock_irq(&hc->lock);
	cancel_delayed_work_sync(&hc->flush_work);
	flush_workqueue(hc->io_wq);
}

/*
 * Quiesces the target and has the metadata worker run fn, which leaves it
 * inactive: the worker queues no retry from then on, and none it queued
 * runs after this.
 */
static void hrl_stop(struct hrl_c *hc, int (*fn)(struct hrl_c *hc, struct hrl_rpc *rpc))
{
	struct hrl_rpc rpc = { .fn = fn, .suspended_too = true };

	/* No write is in flight: what the I/O path queued is all that is left. */
	hrl_quiesce(hc);
	hrl_rpc(hc, &rpc);
	cancel_delayed_work_sync(&hc->retry_work);
	flush_workqueue(hc->meta_wq);
}

/* Another target of hrl_targets on hc's log device: its owner, or one of hc's table. */
static struct hrl_c *hrl_other_on_log(struct hrl_c *hc, bool owner)
{
	struct hrl_c *other;

	lockdep_assert_held(&hrl_targets_mutex);
	list_for_each_entry(other, &hrl_targets, target)
		if (other != hc && other->log_dev->bdev == hc->log_dev->bdev &&
		    (owner ? other->owns_log : other->ti->table == hc->ti->table))
			return other;
	return NULL;
}

/* Says what the operator can do: the owner is live, suspending, or left active by a failed resume. */
static void hrl_refuse_log(struct hrl_c *hc, struct hrl_c *owner)
{
	const char *log = hc->log_dev->name;
	const char *dev = dm_device_name(dm_table_get_md(owner->ti->table));

	lockdep_assert_held(&hrl_targets_mutex);
	if (dm_post_suspending(owner->ti))
		DMERR_LIMIT("%s: the log is being let go by device %s (suspending): not resumed, try again",
			    log, dev);
	else if (dm_suspended(owner->ti))
		DMERR_LIMIT("%s: the log is held by device %s, suspended after a failed resume: not resumed (remove that device, or resume it with another table)",
			    log, dev);
	else
		DMERR_LIMIT("%s: the log is written by device %s: not resumed (suspend or remove that device first)",
			    log, dev);
}

/*
 * Makes hc its log's only writer. A target of the table this one replaced
 * (same device) stops first: from then on it writes nothing, and the load
 * that follows sees the log as it left it.
 */
static int hrl_claim_log(struct hrl_c *hc)
{
	struct hrl_c *owner;

	mutex_lock(&hrl_targets_mutex);
	owner = hrl_other_on_log(hc, true);
	if (owner && dm_table_get_md(owner->ti->table) != dm_table_get_md(hc->ti->table)) {
		hrl_refuse_log(hc, owner);
		mutex_unlock(&hrl_targets_mutex);
		return -EBUSY;
	}
	if (owner)
		owner->owns_log = false;
	hc->owns_log = true;
	mutex_unlock(&hrl_targets_mutex);
	if (owner) {
		/*
		 * Outside the mutex: the replaced table is held only by the resume
		 * that called us, which destroys it after this preresume returns.
		 */
		DMWARN("%s: taken from a target of the table this one replaced", hc->log_dev->name);
		hrl_stop(owner, hrl_do_deactivate);
	}
	return 0;
}

/* After the target stopped writing: another may take the log. */
static void hrl_release_log(struct hrl_c *hc)
{
	mutex_lock(&hrl_targets_mutex);
	hc->owns_log = false;
	mutex_unlock(&hrl_targets_mutex);
}

static int hrl_preresume(struct dm_target *ti)
{
	struct hrl_c *hc = ti->private;
	struct hrl_rpc rpc = { .fn = hrl_do_resume, .suspended_too = true };
	int r;

	r = hrl_claim_log(hc);
	if (r)
		return r;
	r = hrl_rpc(hc, &rpc);
	if (r)
		hrl_release_log(hc);	/* inactive: the load or its commit failed */
	return r;
}

static void hrl_postsuspend(struct dm_target *ti)
{
	hrl_stop(ti->private, hrl_do_suspend);
	hrl_release_log(ti->private);	/* after the stop: its last superblock is written */
}

static int hrl_message(struct dm_target *ti, unsigned int argc, char **argv,
		       char *result, unsigned int maxlen)
{
	struct hrl_c *hc = ti->private;
	struct hrl_rpc rpc = { .result = result, .maxlen = maxlen };

	if (!READ_ONCE(hc->active)) {
		DMERR("message '%s' refused: the device is suspended", argv[0]);
		return -EBUSY;
	}
	if (argc == 2 && !strcasecmp(argv[0], "ack")) {
		if (kstrtou64(argv[1], 10, &rpc.seq))
			return -EINVAL;
		rpc.fn = hrl_do_ack;
	} else if (argc == 2 && !strcasecmp(argv[0], "mark")) {
		rpc.name = argv[1];
		rpc.fn = hrl_do_mark;
	} else if (argc == 1 && !strcasecmp(argv[0], "take_bitmap")) {
		rpc.fn = hrl_do_take_bitmap;
	} else if (argc == 1 && !strcasecmp(argv[0], "end_resync")) {
		rpc.fn = hrl_do_end_resync;
	} else if (argc == 1 && !strcasecmp(argv[0], "request_resync")) {
		rpc.fn = hrl_do_request_resync;
	} else {
		DMERR("unknown message '%s' (%u words): expected ack <seq>, mark <name>, "
		      "take_bitmap, end_resync or request_resync", argv[0], argc);
		return -EINVAL;
	}
	return hrl_rpc(hc, &rpc);
}

static void hrl_status(struct dm_target *ti, status_type_t type, unsigned int status_flags,
		       char *result, unsigned int maxlen)
{
	struct hrl_c *hc = ti->private;
	unsigned int sz = 0;
	u64 head, tail, used, take, dirty, resync, done, durable;
	u32 flags, reason;

	switch (type) {
	case STATUSTYPE_INFO:
		spin_lock_irq(&hc->lock);
		head = hc->head.seq;
		tail = hc->tail.seq;
		done = hc->done.seq;
		durable = hc->durable.seq;
		used = hc->used;
		take = hc->take_seq;
		flags = hc->flags;
		reason = hc->reason;
		spin_unlock_irq(&hc->lock);
		/* Counted outside the lock: a big bitmap must not hold interrupts off. */
		dirty = bitmap_weight(hc->dirty, hc->nr_bits);
		resync = bitmap_weight(hc->resync, hc->nr_bits);
		DMEMIT("%s %llu %llu %llu %llu %llu %llu %llu %s ", hrl_mode_name(flags), head, tail,
		       used, hc->ring_bytes, dirty, resync, take, hrl_reason_name(reason));
		sz += hrl_emit_flags(flags, result + sz, maxlen - sz);
		DMEMIT(" %llu %llu", done, durable);
		break;
	case STATUSTYPE_TABLE:
		DMEMIT("%s %s 0", hc->data_dev->name, hc->log_dev->name);
		break;
	default:
		*result = '\0';
		break;
	}
}

static int hrl_iterate_devices(struct dm_target *ti, iterate_devices_callout_fn fn, void *data)
{
	struct hrl_c *hc = ti->private;

	return fn(ti, hc->data_dev, 0, ti->len, data);
}

static void hrl_free(struct hrl_c *hc)
{
	if (hc->meta_wq)	/* first: its work queues work on io_wq */
		destroy_workqueue(hc->meta_wq);
	if (hc->io_wq)
		destroy_workqueue(hc->io_wq);
	while (hc->nr_bs_ready)
		bioset_exit(&hc->bs[--hc->nr_bs_ready]);
	mempool_destroy(hc->page_pool);
	kvfree(hc->spans);
	kvfree(hc->done_slots);
	kvfree(hc->dirty);
	kvfree(hc->spare);
	kvfree(hc->dirty_disk);
	kvfree(hc->dirty_pages);
	kvfree(hc->resync);
	kfree(hc->sb_buf);
	kvfree(hc->al);
	kfree(hc->al_buf);
	if (hc->io_client)
		dm_io_client_destroy(hc->io_client);
	if (hc->log_dev)
		dm_put_device(hc->ti, hc->log_dev);
	if (hc->data_dev)
		dm_put_device(hc->ti, hc->data_dev);
	kfree(hc);
}

/* Takes the geometry from the log's superblock and checks it against the table. */
static int hrl_ctr_geometry(struct dm_target *ti, struct hrl_c *hc)
{
	struct hrl_superblock *sb;
	char *why = "";
	int r;

	sb = kmalloc(sizeof(*sb), GFP_KERNEL);
	if (!sb)
		return -ENOMEM;
	r = hrl_read_sb(hc, sb, &why);
	if (r) {
		ti->error = r == -ENOMEM ? "out of memory" : "log device holds no valid hrl superblock";
		DMERR("%s: not an hrl log: %s", hc->log_dev->name, why);
		goto out;
	}
	memcpy(hc->uuid, sb->uuid, sizeof(hc->uuid));
	hc->seed = hrl_csum_seed(sb->uuid);
	hc->generation = le64_to_cpu(sb->generation);
	hc->data_sectors = le64_to_cpu(sb->data_sectors);
	hc->bitmap_block = le32_to_cpu(sb->bitmap_block);
	hc->max_payload = le32_to_cpu(sb->max_payload);
	hc->max_io = min_t(u32, hc->max_payload, HRL_KERNEL_MAX_PAYLOAD);
	hc->bitmap_offset = le64_to_cpu(sb->bitmap_offset);
	hc->resync_offset = le64_to_cpu(sb->resync_offset);
	hc->bitmap_bytes = le64_to_cpu(sb->bitmap_bytes);
	hc->ring_offset = le64_to_cpu(sb->ring_offset);
	hc->ring_bytes = le64_to_cpu(sb->ring_bytes);
	hc->created_ns = le64_to_cpu(sb->created_ns);
	hc->nr_bits = hrl_bitmap_bits(hc->data_sectors, hc->bitmap_block);
	hc->nr_slots = hc->ring_bytes >> SECTOR_SHIFT;
	hc->nr_bm_pages = hc->bitmap_bytes / PAGE_SIZE;
	hc->al_offset = le64_to_cpu(sb->al_offset);
	hc->al_slots = le32_to_cpu(sb->al_extents);
	hc->al_shift = hc->al_offset ? le32_to_cpu(sb->al_extent_shift) - SECTOR_SHIFT : 0;

	r = -EINVAL;
	if (hc->max_payload > HRL_LOAD_MAX_PAYLOAD) {
		ti->error = "the log's maximum record payload is over 16 MiB";
	} else if (hc->al_offset && (hc->data_sectors - 1) >> hc->al_shift > U32_MAX) {
		ti->error = "the activity log's extents are too small for the data device";
	} else if (hc->nr_bits > INT_MAX) {
		ti->error = "the dirty bitmap would have 2^31 bits or more: format the log with a larger bitmap block";
	} else if (hc->data_sectors != ti->len) {
		ti->error = "the log is for a data device of another size than the table's length";
		DMERR("log %s tracks %llu sectors, the table maps %llu", hc->log_dev->name,
		      hc->data_sectors, (u64)ti->len);
	} else if (bdev_nr_sectors(hc->data_dev->bdev) < ti->len) {
		ti->error = "data device is smaller than the table";
	} else if ((bdev_nr_sectors(hc->log_dev->bdev) << SECTOR_SHIFT) < hc->ring_offset + hc->ring_bytes) {
		ti->error = "log device is smaller than its superblock says";
	} else {
		r = 0;
	}
out:
	kfree(sb);
	return r;
}

/* Everything the target needs while it runs, allocated once: the I/O path never fails for memory. */
static int hrl_ctr_alloc(struct dm_target *ti, struct hrl_c *hc)
{
	int r;

	hc->dirty = kvzalloc(hc->bitmap_bytes, GFP_KERNEL);
	hc->spare = kvzalloc(hc->bitmap_bytes, GFP_KERNEL);
	hc->dirty_disk = kvzalloc(hc->bitmap_bytes, GFP_KERNEL);
	hc->resync = kvzalloc(hc->bitmap_bytes, GFP_KERNEL);
	hc->dirty_pages = kvcalloc(BITS_TO_LONGS(hc->nr_bm_pages), sizeof(long), GFP_KERNEL);
	hc->spans = kvcalloc(hc->nr_slots, sizeof(*hc->spans), GFP_KERNEL);
	hc->done_slots = kvcalloc(BITS_TO_LONGS(hc->nr_slots), sizeof(long), GFP_KERNEL);
	hc->sb_buf = kzalloc(HRL_LOG_BLOCK, GFP_KERNEL);
	if (hc->al_slots) {
		hc->al = kvcalloc(hc->al_slots, sizeof(*hc->al), GFP_KERNEL);
		hc->al_buf = kzalloc(HRL_LOG_BLOCK, GFP_KERNEL);
		if (!hc->al || !hc->al_buf) {
			ti->error = "out of memory";
			return -ENOMEM;
		}
	}
	hc->page_pool = mempool_create_page_pool(HRL_POOL_PAGES, 0);
	hc->io_wq = alloc_workqueue("dm-hrl-io", WQ_MEM_RECLAIM | WQ_HIGHPRI, 0);
	hc->meta_wq = alloc_ordered_workqueue("dm-hrl-meta", WQ_MEM_RECLAIM);
	if (!hc->dirty || !hc->spare || !hc->dirty_disk || !hc->resync || !hc->dirty_pages ||
	    !hc->spans || !hc->done_slots || !hc->sb_buf || !hc->page_pool || !hc->io_wq || !hc->meta_wq) {
		ti->error = "out of memory";
		return -ENOMEM;
	}
	while (hc->nr_bs_ready < HRL_NR_BIOSETS) {
		r = bioset_init(&hc->bs[hc->nr_bs_ready], HRL_MAX_INFLIGHT_IOS, 0,
				BIOSET_NEED_BVECS | BIOSET_NEED_RESCUER);
		if (r) {
			ti->error = "out of memory";
			return r;
		}
		hc->nr_bs_ready++;
	}
	return 0;
}

/* Known to the claims of other tables; refused if its own table has a target on this log already. */
static int hrl_add_target(struct hrl_c *hc)
{
	int r = 0;

	mutex_lock(&hrl_targets_mutex);
	if (hrl_other_on_log(hc, false))
		r = -EBUSY;
	else
		list_add(&hc->target, &hrl_targets);
	mutex_unlock(&hrl_targets_mutex);
	return r;
}

/*
 * Construct a hrl mapping:
 *   <data_dev> <log_dev> [<#opt_args>]
 * No optional arguments are defined yet; "0" is accepted.
 */
static int hrl_ctr(struct dm_target *ti, unsigned int argc, char **argv)
{
	struct hrl_c *hc;
	unsigned int nr_opt;
	int r;

	if (argc < 2 || (argc > 2 && (kstrtouint(argv[2], 10, &nr_opt) || nr_opt != argc - 3 || nr_opt))) {
		ti->error = "expected <data_dev> <log_dev> [0]";
		return -EINVAL;
	}
	hc = kzalloc(sizeof(*hc), GFP_KERNEL);
	if (!hc) {
		ti->error = "out of memory";
		return -ENOMEM;
	}
	hc->ti = ti;
	ti->private = hc;
	spin_lock_init(&hc->lock);
	mutex_init(&hc->meta_lock);
	mutex_init(&hc->pool_mutex);
	init_waitqueue_head(&hc->done_wait);
	INIT_LIST_HEAD(&hc->inflight);
	INIT_LIST_HEAD(&hc->deferred);
	INIT_LIST_HEAD(&hc->rpcs);
	bio_list_init(&hc->flush_bios);
	INIT_WORK(&hc->deferred_work, hrl_deferred_worker);
	INIT_WORK(&hc->meta_work, hrl_meta_worker);
	INIT_WORK(&hc->event_work, hrl_event_worker);
	INIT_DELAYED_WORK(&hc->flush_work, hrl_flush_worker);
	INIT_DELAYED_WORK(&hc->retry_work, hrl_retry_worker);

	r = dm_get_device(ti, argv[0], dm_table_get_mode(ti->table), &hc->data_dev);
	if (r) {
		ti->error = "cannot open the data device";
		goto bad;
	}
	r = dm_get_device(ti, argv[1], dm_table_get_mode(ti->table), &hc->log_dev);
	if (r) {
		ti->error = "cannot open the log device";
		goto bad;
	}
	r = -EINVAL;
	if (hc->log_dev->bdev == hc->data_dev->bdev) {
		ti->error = "data and log must be different devices";
		goto bad;
	}
	if (bdev_logical_block_size(hc->log_dev->bdev) != HRL_SECTOR_SIZE) {
		ti->error = "log device must have 512-byte logical blocks";
		goto bad;
	}
	hc->io_client = dm_io_client_create();
	if (IS_ERR(hc->io_client)) {
		r = PTR_ERR(hc->io_client);
		hc->io_client = NULL;
		ti->error = "cannot create a dm-io client";
		goto bad;
	}
	r = hrl_ctr_geometry(ti, hc);
	if (!r)
		r = hrl_ctr_alloc(ti, hc);
	if (r)
		goto bad;
	ti->error = NULL;

	ti->num_flush_bios = 1;
	ti->flush_supported = true;
	ti->num_discard_bios = 1;
	ti->per_io_data_size = sizeof(struct hrl_io);
	r = dm_set_target_max_io_len(ti, hc->max_io >> SECTOR_SHIFT);
	if (r) {
		ti->error = "cannot set the largest I/O";
		goto bad;
	}
	r = hrl_add_target(hc);
	if (r) {
		ti->error = "the table holds this log twice";
		goto bad;
	}
	return 0;
bad:
	hrl_free(hc);
	return r;
}

static void hrl_dtr(struct dm_target *ti)
{
	struct hrl_c *hc = ti->private;

	/*
	 * Stopped without a write: a target left active when another target's
	 * preresume failed gets no postsuspend, and a new table on its log may
	 * have loaded it since.
	 */
	hrl_stop(hc, hrl_do_deactivate);
	mutex_lock(&hrl_targets_mutex);
	list_del(&hc->target);
	mutex_unlock(&hrl_targets_mutex);
	hrl_free(hc);
}

static struct target_type hrl_target = {
	.name = "hrl",
	.version = {1, 2, 0},
	.module = THIS_MODULE,
	.ctr = hrl_ctr,
	.dtr = hrl_dtr,
	.map = hrl_map,
	.postsuspend = hrl_postsuspend,
	.preresume = hrl_preresume,
	.status = hrl_status,
	.message = hrl_message,
	.iterate_devices = hrl_iterate_devices,
};

static int __init dm_hrl_init(void)
{
	int r = dm_register_target(&hrl_target);

	if (r < 0)
		DMERR("register failed %d", r);
	return r;
}

static void __exit dm_hrl_exit(void)
{
	struct hrl_unwritten *u, *next;

	dm_unregister_target(&hrl_target);
	list_for_each_entry_safe(u, next, &hrl_unwritten_list, list) {
		DMERR("unloaded: a log of uuid %pU loses that the whole device needs a resync (%s)",
		      u->uuid, hrl_reason_name(u->reason));
		kfree(u);
	}
}

module_init(dm_hrl_init);
module_exit(dm_hrl_exit);

MODULE_DESCRIPTION(DM_NAME " target journaling every write for replication (hrl)");
MODULE_AUTHOR("The hrl developers");
MODULE_LICENSE("GPL");
