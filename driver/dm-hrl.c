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
 * State lives on the log device between a postsuspend (which writes it, with
 * the clean flag) and the next preresume (which reads it back), so a table
 * reload never has two writers on one log.
 */
#include <linux/bio.h>
#include <linux/device-mapper.h>
#include <linux/dm-io.h>
#include <linux/module.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>
#include <linux/xxhash.h>
#include <linux/ktime.h>
#include <linux/timekeeping.h>

#include <hrl/log_format.h>
#include "hrl-compat.h"

#define DM_MSG_PREFIX "hrl"

/* Largest record payload the target writes: one bio of pages plus the header. */
#define HRL_KERNEL_MAX_PAYLOAD	(512U << 10)
/* Largest payload of a log the target loads: record spans fit spans[] (u16 sectors). */
#define HRL_LOAD_MAX_PAYLOAD	(16U << 20)
/* Fill levels (percent of the ring) that raise a dm event when crossed upwards. */
static const unsigned int hrl_fill_events[] = { 50, 75, 90 };

struct hrl_c {
	struct dm_target *ti;
	struct dm_dev *data_dev;
	struct dm_dev *log_dev;
	struct dm_io_client *io_client;
	struct workqueue_struct *wq;
	struct work_struct deferred_work;	/* dispatches writes that waited */
	struct work_struct meta_work;		/* persists the superblock after a mode change */
	struct work_struct event_work;		/* dm_table_event() needs process context */
	struct work_struct flush_work;		/* flushes in bitmap mode: the bitmap first */
	struct bio_set bs;			/* child bios, allocated in ->map: needs a rescuer */
	bool bs_ready;

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

	/*
	 * meta_lock serializes writers of the superblock and bitmaps
	 * (messages, suspend/resume, workers). Taken before lock, never under it.
	 */
	struct mutex meta_lock;
	u64 sb_update_seq;
	u64 persisted_head_seq;	/* head in the last superblock written: durable records */
	u64 persisted_head_off;
	bool active;		/* between preresume and postsuspend */
	u64 disk_bitmap_csum;	/* checksums of the bitmap areas as last written */
	u64 disk_resync_csum;

	/* lock protects the ring, the flags, the lists and the bitmaps' contents. */
	spinlock_t lock;
	u64 head_seq;
	u64 head_off;
	u64 tail_seq;
	u64 tail_off;
	u64 used;		/* ring bytes from tail to head */
	u64 head_stream;	/* ring bytes ever reserved: distances across wraps */
	unsigned int bitmap_inflight;	/* writes tracked in the bitmap, not complete */
	u16 *spans;		/* span in sectors of record seq, at seq % nr_slots */
	u32 flags;		/* HRL_SB_* (CLEAN is only ever on disk) */
	u32 reason;
	u64 take_seq;
	unsigned int fill_level;	/* index of the next fill event to raise */
	struct list_head inflight;	/* struct hrl_io being written */
	struct list_head deferred;	/* struct hrl_io waiting for an overlapping one */
	struct bio_list flush_bios;	/* empty flushes waiting for the bitmap write */
	unsigned long *dirty;	/* kvzalloc'ed, bitmap_bytes */
	unsigned long *resync;
};

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
	u64 stream;		/* hc->head_stream where its ring space begins */
	struct list_head go;	/* the deferred worker's list of writes to submit */
	struct page *hdr;	/* header unit of the record */
	struct page *pad_hdr;
	struct page **pages;	/* the copy of the data */
	unsigned int nr_pages;
	u64 payload_csum;
	atomic_t pending;
	blk_status_t data_status;
	blk_status_t log_status;
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

/* Marks the bitmap blocks of [sector, sector + nr). Caller holds lock or not: set_bit is atomic. */
static void hrl_mark_dirty(struct hrl_c *hc, sector_t sector, u32 nr)
{
	u64 b, last;

	if (!nr)
		return;
	last = hrl_bit_of(hc, sector + nr - 1);
	for (b = hrl_bit_of(hc, sector); b <= last && b < hc->nr_bits; b++)
		set_bit(b, hc->dirty);
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

/* Caller holds lock. */
static void hrl_set_resync_required(struct hrl_c *hc, u32 reason)
{
	if (!(hc->flags & HRL_SB_RESYNC_REQUIRED))
		hc->reason = reason;
	hc->flags |= HRL_SB_RESYNC_REQUIRED;
}

/* Synchronous I/O on the log device, for metadata: kernel or vmalloc memory. */
static int hrl_log_io(struct hrl_c *hc, blk_opf_t opf, void *buf, bool vmem,
		      u64 offset, u64 len)
{
	struct dm_io_region region = {
		.bdev = hc->log_dev->bdev,
		.sector = offset >> SECTOR_SHIFT,
		.count = len >> SECTOR_SHIFT,
	};
	struct dm_io_request req = {
		.bi_opf = opf,
		.mem.type = vmem ? DM_IO_VMA : DM_IO_KMEM,
		.mem.ptr.addr = buf,
		.client = hc->io_client,
	};

	if (vmem)
		req.mem.ptr.vma = buf;
	return hrl_dm_io(&req, 1, &region, NULL);
}

/* ---- superblock ------------------------------------------------------- */

struct hrl_sb_view {
	u32 flags, reason;
	u64 tail_seq, tail_off, head_seq, head_off, take_seq;
	u64 update_seq, generation, data_sectors;
	u64 bitmap_csum, resync_csum;
};

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
	r = hrl_log_io(hc, REQ_OP_READ, slots, false, 0, HRL_SB_SLOTS * HRL_LOG_BLOCK);
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

/*
 * Writes the next superblock slot from the in-memory state, with FUA after a
 * flush of the log, so it claims only durable records and bitmaps.
 * Caller holds meta_lock.
 */
static int hrl_write_sb(struct hrl_c *hc, bool clean)
{
	struct hrl_superblock *sb;
	unsigned long irqflags;
	u64 dirty_bits, resync_bits;
	int r;

	sb = kzalloc(HRL_LOG_BLOCK, GFP_KERNEL);
	if (!sb)
		return -ENOMEM;
	dirty_bits = bitmap_weight(hc->dirty, hc->nr_bits);
	resync_bits = bitmap_weight(hc->resync, hc->nr_bits);

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
	sb->bitmap_csum = cpu_to_le64(hc->disk_bitmap_csum);
	sb->resync_csum = cpu_to_le64(hc->disk_resync_csum);
	sb->dirty_bits = cpu_to_le64(dirty_bits);
	sb->resync_bits = cpu_to_le64(resync_bits);
	sb->created_ns = cpu_to_le64(hc->created_ns);
	sb->updated_ns = cpu_to_le64(hrl_now_ns());

	spin_lock_irqsave(&hc->lock, irqflags);
	sb->flags = cpu_to_le32(hc->flags | (clean ? HRL_SB_CLEAN : 0));
	sb->resync_reason = cpu_to_le32(hc->reason);
	sb->resync_take_seq = cpu_to_le64(hc->take_seq);
	sb->tail_seq = cpu_to_le64(hc->tail_seq);
	sb->tail_offset = cpu_to_le64(hc->tail_off);
	if (clean) {	/* quiesced and flushed: the head is durable */
		hc->persisted_head_seq = hc->head_seq;
		hc->persisted_head_off = hc->head_off;
	} else if (hc->persisted_head_seq < hc->tail_seq) {
		/* acknowledged records were durable on the secondary: a lower bound */
		hc->persisted_head_seq = hc->tail_seq;
		hc->persisted_head_off = hc->tail_off;
	}
	sb->head_seq = cpu_to_le64(hc->persisted_head_seq);
	sb->head_offset = cpu_to_le64(hc->persisted_head_off);
	spin_unlock_irqrestore(&hc->lock, irqflags);

	sb->csum = cpu_to_le64(xxh64(sb, HRL_SB_CSUM_BYTES, hc->seed));
	r = hrl_log_io(hc, REQ_OP_WRITE | REQ_PREFLUSH | REQ_FUA, sb, false,
		       ((hc->sb_update_seq + 1) % HRL_SB_SLOTS) * HRL_LOG_BLOCK, HRL_LOG_BLOCK);
	if (!r)
		hc->sb_update_seq++;
	else
		DMERR("%s: superblock write failed: %d", hc->log_dev->name, r);
	kfree(sb);
	return r;
}

/*
 * Writes a bitmap area from a snapshot (so concurrent set_bit()s cannot tear
 * the checksum) and returns its checksum in *csum. Caller holds meta_lock.
 */
static int hrl_write_bitmap(struct hrl_c *hc, unsigned long *bits, u64 offset, u64 *csum)
{
	void *area;
	int r;

	area = vzalloc(hc->bitmap_bytes);
	if (!area)
		return -ENOMEM;
	memcpy(area, bits, BITS_TO_LONGS(hc->nr_bits) * sizeof(long));
	*csum = xxh64(area, hc->bitmap_bytes, hc->seed);
	r = hrl_log_io(hc, REQ_OP_WRITE, area, true, offset, hc->bitmap_bytes);
	vfree(area);
	return r;
}

/* Persists both bitmaps and then the superblock. Caller holds meta_lock. */
static int hrl_commit(struct hrl_c *hc, bool clean)
{
	int r;

	r = hrl_write_bitmap(hc, hc->dirty, hc->bitmap_offset, &hc->disk_bitmap_csum);
	if (!r)
		r = hrl_write_bitmap(hc, hc->resync, hc->resync_offset, &hc->disk_resync_csum);
	if (!r)
		r = hrl_write_sb(hc, clean);
	return r;
}

static int hrl_read_bitmap(struct hrl_c *hc, unsigned long *bits, u64 offset, u64 csum)
{
	void *area;
	int r;

	area = vmalloc(hc->bitmap_bytes);
	if (!area)
		return -ENOMEM;
	r = hrl_log_io(hc, REQ_OP_READ, area, true, offset, hc->bitmap_bytes);
	if (!r && xxh64(area, hc->bitmap_bytes, hc->seed) != csum)
		r = -EILSEQ;
	if (!r)
		memcpy(bits, area, BITS_TO_LONGS(hc->nr_bits) * sizeof(long));
	vfree(area);
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

/*
 * Reserves ring space for a record of payload bytes, after a PAD if it would
 * cross the end of the ring. Caller holds lock.
 * Returns false, reserving nothing, when the ring has no room.
 */
static bool hrl_ring_reserve(struct hrl_c *hc, u32 payload, struct hrl_io *io)
{
	u64 span = hrl_record_span(payload);
	u64 pad = hc->head_off + span > hc->ring_bytes ? hc->ring_bytes - hc->head_off : 0;

	if (hc->used + pad + span > hc->ring_bytes)
		return false;
	io->pad_seq = 0;
	io->stream = hc->head_stream;
	hc->head_stream += pad + span;
	if (pad) {
		io->pad_seq = hc->head_seq;
		io->pad_pos = hc->head_off;
		hc->spans[hc->head_seq % hc->nr_slots] = pad >> SECTOR_SHIFT;
		hc->head_seq++;
		hc->used += pad;
		hc->head_off = 0;
	}
	io->seq = hc->head_seq;
	io->pos = hc->head_off;
	hc->spans[hc->head_seq % hc->nr_slots] = span >> SECTOR_SHIFT;
	hc->head_seq++;
	hc->used += span;
	hc->head_off = (hc->head_off + span) % hc->ring_bytes;
	return true;
}

/* Caller holds lock. Raises an event when the fill crosses the next level. */
static bool hrl_fill_crossed(struct hrl_c *hc)
{
	bool crossed = false;

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

/* Caller holds lock. The dirty bitmap was taken and the ring has room again. */
static bool hrl_maybe_leave_bitmap_mode(struct hrl_c *hc)
{
	if (!(hc->flags & HRL_SB_BITMAP_MODE) || hc->bitmap_inflight ||
	    !bitmap_empty(hc->dirty, hc->nr_bits) || hc->ring_bytes - hc->used < hc->ring_bytes / 4)
		return false;
	hc->flags &= ~HRL_SB_BITMAP_MODE;
	if (!(hc->flags & HRL_SB_RESYNC_REQUIRED))
		hc->reason = HRL_REASON_NONE;
	return true;
}

/* ---- the write path --------------------------------------------------- */

static void hrl_free_io_pages(struct hrl_io *io)
{
	unsigned int i;

	for (i = 0; i < io->nr_pages; i++)
		__free_page(io->pages[i]);
	kfree(io->pages);
	io->pages = NULL;
	io->nr_pages = 0;
	if (io->hdr)
		__free_page(io->hdr);
	if (io->pad_hdr)
		__free_page(io->pad_hdr);
	io->hdr = io->pad_hdr = NULL;
}

/* Copies the bio's data into pages of our own and checksums the copy. */
static int hrl_copy_data(struct hrl_c *hc, struct hrl_io *io, struct bio *bio)
{
	struct xxh64_state state;
	struct bvec_iter iter;
	struct bio_vec bv;
	size_t done = 0;
	unsigned int i;

	io->nr_pages = DIV_ROUND_UP(bio->bi_iter.bi_size, PAGE_SIZE);
	io->pages = kcalloc(io->nr_pages, sizeof(*io->pages), GFP_NOIO);
	if (!io->pages) {
		io->nr_pages = 0;
		return -ENOMEM;
	}
	for (i = 0; i < io->nr_pages; i++) {
		io->pages[i] = alloc_page(GFP_NOIO);
		if (!io->pages[i]) {
			io->nr_pages = i;
			return -ENOMEM;
		}
	}
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
	return 0;
}

static void hrl_io_done(struct hrl_io *io);

static void hrl_child_endio(struct bio *bio)
{
	struct hrl_io *io = bio->bi_private;
	bool to_log = bio->bi_bdev == io->hc->log_dev->bdev;

	if (bio->bi_status) {
		if (to_log)
			io->log_status = bio->bi_status;
		else
			io->data_status = bio->bi_status;
	}
	bio_put(bio);
	if (atomic_dec_and_test(&io->pending))
		hrl_io_done(io);
}

static struct bio *hrl_new_bio(struct hrl_io *io, struct dm_dev *dev, unsigned int nr_vecs,
			       blk_opf_t opf, sector_t sector)
{
	struct bio *bio = bio_alloc_bioset(dev->bdev, nr_vecs, opf, GFP_NOIO, &io->hc->bs);

	bio->bi_iter.bi_sector = sector;
	bio->bi_end_io = hrl_child_endio;
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

/* Builds and submits the data bio, the record bio and a PAD bio if any. */
static void hrl_submit(struct hrl_c *hc, struct hrl_io *io)
{
	blk_opf_t keep = io->orig->bi_opf & (REQ_FUA | REQ_SYNC | REQ_PREFLUSH);
	sector_t log_base = hc->ring_offset >> SECTOR_SHIFT;
	struct bio *data, *log = NULL, *pad = NULL;
	u32 payload = io->type == HRL_REC_WRITE ? io->nr_sectors << SECTOR_SHIFT : 0;

	if (io->type == HRL_REC_DISCARD) {
		data = hrl_new_bio(io, hc->data_dev, 0, REQ_OP_DISCARD, io->sector);
		data->bi_iter.bi_size = io->nr_sectors << SECTOR_SHIFT;
	} else {
		data = hrl_new_bio(io, hc->data_dev, io->nr_pages, REQ_OP_WRITE | keep, io->sector);
		hrl_add_data_pages(io, data);
	}
	atomic_set(&io->pending, 1);

	if (io->seq) {
		hrl_encode_header(hc, io->hdr, io->type, io->rec_flags, io->seq, io->sector,
				  io->nr_sectors, payload, payload ? io->payload_csum : 0);
		log = hrl_new_bio(io, hc->log_dev, io->nr_pages + 1, REQ_OP_WRITE | keep,
				  log_base + (io->pos >> SECTOR_SHIFT));
		__bio_add_page(log, io->hdr, HRL_SECTOR_SIZE, 0);
		if (payload)
			hrl_add_data_pages(io, log);
		atomic_inc(&io->pending);
	}
	if (io->pad_seq) {
		hrl_encode_header(hc, io->pad_hdr, HRL_REC_PAD, 0, io->pad_seq, 0, 0,
				  hc->ring_bytes - io->pad_pos - HRL_SECTOR_SIZE, 0);
		pad = hrl_new_bio(io, hc->log_dev, 1, REQ_OP_WRITE,
				  log_base + (io->pad_pos >> SECTOR_SHIFT));
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

static void hrl_notify(struct hrl_c *hc, unsigned int notify)
{
	if (notify & HRL_NOTIFY_BITMAP)
		DMWARN("%s: ring full, tracking writes in the dirty bitmap", hc->log_dev->name);
	if (notify & HRL_NOTIFY_META)
		queue_work(hc->wq, &hc->meta_work);
	if (notify & HRL_NOTIFY_EVENT)
		queue_work(hc->wq, &hc->event_work);
}

/*
 * Whether the ring space in flight stays within HRL_MAX_INFLIGHT_BYTES from
 * the oldest record not yet complete, the bound that lets a load after a
 * crash erase every record of the crashed run past the head. Caller holds lock.
 */
static bool hrl_inflight_room(struct hrl_c *hc, struct hrl_io *io)
{
	u32 payload = io->type == HRL_REC_WRITE ? io->nr_sectors << SECTOR_SHIFT : 0;
	u64 span = hrl_record_span(payload);
	u64 pad = hc->head_off + span > hc->ring_bytes ? hc->ring_bytes - hc->head_off : 0;
	struct hrl_io *o;

	if (hc->flags & HRL_SB_BITMAP_MODE)
		return true;
	list_for_each_entry(o, &hc->inflight, node)
		if (o->seq)	/* the oldest journaled write in flight */
			return hc->head_stream + pad + span - o->stream <= HRL_MAX_INFLIGHT_BYTES;
	return true;
}

/*
 * Gives the write its place: a sequence number and ring space, or bits in
 * the dirty bitmap when the ring is full. Caller holds lock.
 */
static unsigned int hrl_place(struct hrl_c *hc, struct hrl_io *io)
{
	u32 payload = io->type == HRL_REC_WRITE ? io->nr_sectors << SECTOR_SHIFT : 0;
	unsigned int notify = 0;

	io->seq = 0;
	io->pad_seq = 0;
	if (!(hc->flags & HRL_SB_BITMAP_MODE) && hrl_ring_reserve(hc, payload, io))
		return hrl_fill_crossed(hc) ? HRL_NOTIFY_EVENT : 0;
	if (!(hc->flags & HRL_SB_BITMAP_MODE)) {
		hc->flags |= HRL_SB_BITMAP_MODE;
		if (!(hc->flags & HRL_SB_RESYNC_REQUIRED))
			hc->reason = HRL_REASON_RING_OVERFLOW;
		notify = HRL_NOTIFY_EVENT | HRL_NOTIFY_META | HRL_NOTIFY_BITMAP;
	}
	hc->bitmap_inflight++;
	hrl_mark_dirty(hc, io->sector, io->nr_sectors);
	return notify;
}

/*
 * Starts the write if it may go now: not while it overlaps a write in flight
 * or one waiting before it (earlier), so overlapping writes reach the device
 * and the log in arrival order; not beyond the in-flight bound. Placing it
 * and putting it in flight happen in the same critical section as the check.
 * Caller holds lock.
 */
static bool hrl_try_start(struct hrl_c *hc, struct hrl_io *io, struct list_head *earlier,
			  unsigned int *notify)
{
	if (hrl_overlaps(&hc->inflight, io->sector, io->nr_sectors) ||
	    hrl_overlaps(earlier, io->sector, io->nr_sectors) || !hrl_inflight_room(hc, io))
		return false;
	*notify |= hrl_place(hc, io);
	list_add_tail(&io->node, &hc->inflight);
	return true;
}

/* Completion of both halves of a write: softirq or process context. */
static void hrl_io_done(struct hrl_io *io)
{
	struct hrl_c *hc = io->hc;
	unsigned long irqflags;
	bool wake, mode_changed = false;

	spin_lock_irqsave(&hc->lock, irqflags);
	list_del(&io->node);
	if (!io->seq)
		hc->bitmap_inflight--;
	if (io->log_status && io->seq) {
		/* The record is lost: the bitmap keeps the write, the volume says why. */
		hrl_set_resync_required(hc, HRL_REASON_IO_ERROR);
		mode_changed = true;
	}
	/*
	 * A write tracked in the bitmap sets its bits again at completion: a
	 * take_bitmap between dispatch and here must not lose it. A failed
	 * data write is marked too, so a resync copies what the device holds.
	 */
	if (!io->seq || io->data_status || io->log_status)
		hrl_mark_dirty(hc, io->sector, io->nr_sectors);
	wake = !list_empty(&hc->deferred);
	spin_unlock_irqrestore(&hc->lock, irqflags);

	if (mode_changed) {
		DMERR("log write failed at seq %llu: resync required", io->seq);
		queue_work(hc->wq, &hc->meta_work);
	}
	if (io->data_status || io->log_status)
		queue_work(hc->wq, &hc->event_work);	/* dirty blocks to resync */
	if (wake)
		queue_work(hc->wq, &hc->deferred_work);
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
		if (hrl_try_start(hc, io, &blocked, &notify))
			list_add_tail(&io->go, &ready);
		else
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

static void hrl_meta_worker(struct work_struct *work)
{
	struct hrl_c *hc = container_of(work, struct hrl_c, meta_work);
	unsigned int noio = memalloc_noio_save();	/* writes are waiting on this queue */

	mutex_lock(&hc->meta_lock);
	if (hc->active)
		hrl_write_sb(hc, false);
	mutex_unlock(&hc->meta_lock);
	memalloc_noio_restore(noio);
}

static void hrl_event_worker(struct work_struct *work)
{
	struct hrl_c *hc = container_of(work, struct hrl_c, event_work);

	dm_table_event(hc->ti->table);
}

/* Empty flushes in bitmap mode: persist the bitmap, then flush both devices. */
static void hrl_flush_worker(struct work_struct *work)
{
	struct hrl_c *hc = container_of(work, struct hrl_c, flush_work);
	struct bio_list bios;
	unsigned int noio;
	struct bio *bio;
	int r = 0;

	spin_lock_irq(&hc->lock);
	bios = hc->flush_bios;
	bio_list_init(&hc->flush_bios);
	spin_unlock_irq(&hc->lock);
	if (bio_list_empty(&bios))
		return;

	noio = memalloc_noio_save();
	mutex_lock(&hc->meta_lock);
	if (hc->active)
		r = hrl_commit(hc, false);
	mutex_unlock(&hc->meta_lock);
	memalloc_noio_restore(noio);
	if (!r)
		r = blkdev_issue_flush(hc->data_dev->bdev);
	while ((bio = bio_list_pop(&bios))) {
		bio->bi_status = errno_to_blk_status(r);
		bio_endio(bio);
	}
}

static int hrl_map_write(struct hrl_c *hc, struct bio *bio)
{
	struct hrl_io *io = dm_per_bio_data(bio, sizeof(struct hrl_io));
	unsigned int notify = 0;
	bool defer, started;

	memset(io, 0, sizeof(*io));
	io->hc = hc;
	io->orig = bio;
	INIT_LIST_HEAD(&io->node);
	INIT_LIST_HEAD(&io->go);
	io->sector = dm_target_offset(hc->ti, bio->bi_iter.bi_sector);
	io->nr_sectors = bio_sectors(bio);
	if (bio_op(bio) == REQ_OP_DISCARD) {
		io->type = HRL_REC_DISCARD;
	} else {
		io->type = HRL_REC_WRITE;
		if (!io->nr_sectors)
			io->rec_flags |= HRL_REC_FLUSH;
		if (bio->bi_opf & REQ_FUA)
			io->rec_flags |= HRL_REC_FUA;
	}

	if (!io->nr_sectors) {	/* an empty flush */
		spin_lock_irq(&hc->lock);
		defer = hc->flags & HRL_SB_BITMAP_MODE;
		if (defer)
			bio_list_add(&hc->flush_bios, bio);
		spin_unlock_irq(&hc->lock);
		if (defer) {
			queue_work(hc->wq, &hc->flush_work);
			return DM_MAPIO_SUBMITTED;
		}
	}

	io->hdr = alloc_page(GFP_NOIO);
	io->pad_hdr = alloc_page(GFP_NOIO);
	if (!io->hdr || !io->pad_hdr ||
	    (io->type == HRL_REC_WRITE && io->nr_sectors && hrl_copy_data(hc, io, bio))) {
		hrl_free_io_pages(io);
		return DM_MAPIO_KILL;
	}

	/* Every waiting write arrived before this one. */
	spin_lock_irq(&hc->lock);
	started = hrl_try_start(hc, io, &hc->deferred, &notify);
	if (!started)
		list_add_tail(&io->node, &hc->deferred);
	spin_unlock_irq(&hc->lock);
	hrl_notify(hc, notify);
	if (started)
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
	r = hrl_log_io(hc, REQ_OP_READ, w->buf, true, hc->ring_offset + w->start, w->len);
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
 * the persisted head or at a malformed record.
 */
static int hrl_scan_ring(struct hrl_c *hc, bool *corrupt)
{
	struct hrl_window w = { .size = max_t(u64, 2 << 20, hrl_record_span(hc->max_payload) + HRL_LOG_BLOCK) };
	u64 seq = hc->tail_seq, pos = hc->tail_off, used = 0;
	bool malformed = false;
	int r = 0;

	w.size = min(w.size, hc->ring_bytes);
	w.buf = vmalloc(w.size);
	if (!w.buf)
		return -ENOMEM;
	while (used < hc->ring_bytes) {
		struct hrl_record_header *h;
		u8 *unit, *payload;
		u32 bytes;
		u64 span;

		r = hrl_window_get(hc, &w, pos, HRL_SECTOR_SIZE, &unit);
		if (r)
			goto out;
		h = (struct hrl_record_header *)unit;
		if (hrl_check_record(hc, h, pos, seq, &malformed))
			break;
		bytes = le32_to_cpu(h->payload_bytes);
		span = hrl_record_span(bytes);
		if (used + span > hc->ring_bytes) {	/* records overlapping the tail */
			malformed = true;
			break;
		}
		if (le16_to_cpu(h->type) != HRL_REC_PAD && bytes) {
			u64 csum = le64_to_cpu(h->payload_csum);

			r = hrl_window_get(hc, &w, pos + HRL_SECTOR_SIZE, bytes, &payload);
			if (r)
				goto out;
			if (xxh64(payload, bytes, hc->seed) != csum)
				break;
		}
		hc->spans[seq % hc->nr_slots] = span >> SECTOR_SHIFT;
		used += span;
		seq++;
		pos = (pos + span) % hc->ring_bytes;
	}
	*corrupt = malformed || seq < hc->persisted_head_seq;
	if (*corrupt)
		DMERR("%s: corrupt record at seq %llu, ring offset %llu", hc->log_dev->name, seq, pos);
	hc->head_seq = seq;
	hc->head_off = pos;
	hc->used = used;
	hc->head_stream = used;
	if (hc->persisted_head_seq > seq) {	/* never claim records the scan did not find */
		hc->persisted_head_seq = seq;
		hc->persisted_head_off = pos;
	}
out:
	vfree(w.buf);
	return r;
}

/* After an unclean shutdown: no record of the crashed run may follow the new ones. */
static int hrl_zero_past_head(struct hrl_c *hc)
{
	u64 left = min_t(u64, HRL_MAX_INFLIGHT_BYTES, hc->ring_bytes - hc->used);
	u64 pos = hc->head_off;
	int r = 0;

	while (left && !r) {
		u64 n = min(left, hc->ring_bytes - pos);

		r = blkdev_issue_zeroout(hc->log_dev->bdev, (hc->ring_offset + pos) >> SECTOR_SHIFT,
					 n >> SECTOR_SHIFT, GFP_KERNEL, 0);
		left -= n;
		pos = (pos + n) % hc->ring_bytes;
	}
	return r;
}

/* Reads the whole state back from the log device. Caller holds meta_lock. */
static int hrl_load(struct hrl_c *hc)
{
	struct hrl_superblock *sb;
	bool unclean, corrupt = false;
	char *why = "";
	int r;

	sb = kmalloc(sizeof(*sb), GFP_KERNEL);
	if (!sb)
		return -ENOMEM;
	r = hrl_read_sb(hc, sb, &why);
	if (r) {
		DMERR("%s: not an hrl log: %s", hc->log_dev->name, why);
		goto out;
	}
	r = -EINVAL;
	if (memcmp(sb->uuid, hc->uuid, sizeof(hc->uuid)) ||
	    le64_to_cpu(sb->ring_bytes) != hc->ring_bytes ||
	    le64_to_cpu(sb->data_sectors) != hc->data_sectors) {
		DMERR("%s: the log was formatted again since the table was loaded", hc->log_dev->name);
		goto out;
	}
	unclean = !(le32_to_cpu(sb->flags) & HRL_SB_CLEAN);
	hc->generation = le64_to_cpu(sb->generation);
	hc->sb_update_seq = le64_to_cpu(sb->update_seq);
	hc->flags = le32_to_cpu(sb->flags) & ~HRL_SB_CLEAN;
	hc->reason = le32_to_cpu(sb->resync_reason);
	hc->take_seq = le64_to_cpu(sb->resync_take_seq);
	hc->tail_seq = le64_to_cpu(sb->tail_seq);
	hc->tail_off = le64_to_cpu(sb->tail_offset);
	hc->persisted_head_seq = le64_to_cpu(sb->head_seq);
	hc->persisted_head_off = le64_to_cpu(sb->head_offset);

	if (unclean)
		hrl_set_resync_required(hc, HRL_REASON_UNCLEAN_SHUTDOWN);
	if (hrl_read_bitmap(hc, hc->dirty, hc->bitmap_offset, le64_to_cpu(sb->bitmap_csum)) ||
	    hrl_read_bitmap(hc, hc->resync, hc->resync_offset, le64_to_cpu(sb->resync_csum))) {
		bitmap_zero(hc->dirty, hc->nr_bits);
		bitmap_zero(hc->resync, hc->nr_bits);
		hrl_set_resync_required(hc, HRL_REASON_BITMAP_LOST);
	}
	r = hrl_scan_ring(hc, &corrupt);
	if (r)
		goto out;
	if (corrupt)
		hrl_set_resync_required(hc, HRL_REASON_LOG_CORRUPT);
	if (unclean || corrupt) {
		r = hrl_zero_past_head(hc);
		if (r)
			goto out;
	}
	hc->fill_level = 0;
	hrl_fill_crossed(hc);
	if (hc->flags & HRL_SB_RESYNC_REQUIRED)
		DMWARN("%s: resync required: %s", hc->log_dev->name, hrl_reason_name(hc->reason));
out:
	kfree(sb);
	return r;
}

/* ---- target interface ------------------------------------------------- */

static int hrl_preresume(struct dm_target *ti)
{
	struct hrl_c *hc = ti->private;
	int r;

	mutex_lock(&hc->meta_lock);
	r = hrl_load(hc);
	if (!r)
		r = hrl_commit(hc, false);	/* the clean flag goes until the next suspend */
	hc->active = !r;
	mutex_unlock(&hc->meta_lock);
	return r;
}

static void hrl_postsuspend(struct dm_target *ti)
{
	struct hrl_c *hc = ti->private;

	unsigned int noio;

	flush_workqueue(hc->wq);
	noio = memalloc_noio_save();
	mutex_lock(&hc->meta_lock);
	if (hc->active) {
		int r = blkdev_issue_flush(hc->data_dev->bdev);

		if (!r)
			r = hrl_commit(hc, true);
		if (r)
			DMERR("%s: could not write the log's state on suspend (%d): it will load as unclean",
			      hc->log_dev->name, r);
	}
	hc->active = false;
	mutex_unlock(&hc->meta_lock);
	memalloc_noio_restore(noio);
}

static int hrl_msg_ack(struct hrl_c *hc, const char *arg)
{
	bool left_bitmap;
	u64 seq;

	if (kstrtou64(arg, 10, &seq))
		return -EINVAL;
	spin_lock_irq(&hc->lock);
	if (seq >= hc->head_seq) {
		spin_unlock_irq(&hc->lock);
		DMERR("ack %llu is beyond the head (next seq %llu)", seq, hc->head_seq);
		return -EINVAL;
	}
	while (hc->tail_seq <= seq) {
		u64 span = (u64)hc->spans[hc->tail_seq % hc->nr_slots] << SECTOR_SHIFT;

		hc->used -= span;
		hc->tail_off = (hc->tail_off + span) % hc->ring_bytes;
		hc->tail_seq++;
	}
	hrl_fill_crossed(hc);
	left_bitmap = hrl_maybe_leave_bitmap_mode(hc);
	spin_unlock_irq(&hc->lock);
	if (left_bitmap)
		queue_work(hc->wq, &hc->event_work);
	return hrl_write_sb(hc, false);
}

/*
 * A PAD or MARK record whose ring space was reserved could not be written:
 * readers stop at the hole, so the volume needs a resync, and says so.
 * Caller holds meta_lock.
 */
static void hrl_record_write_failed(struct hrl_c *hc, const char *what, u64 seq, int r)
{
	spin_lock_irq(&hc->lock);
	hrl_set_resync_required(hc, HRL_REASON_IO_ERROR);
	spin_unlock_irq(&hc->lock);
	DMERR("%s record at seq %llu could not be written (%d): resync required", what, seq, r);
	hrl_write_sb(hc, false);
	queue_work(hc->wq, &hc->event_work);
}

/*
 * Writes a MARK record (and a PAD before it if needed) and waits for it.
 * Returns 1 with the record's sequence number in result.
 */
static int hrl_msg_mark(struct hrl_c *hc, const char *name, char *result, unsigned int maxlen)
{
	size_t len = strlen(name);
	unsigned int sz = 0;
	struct hrl_io tmp = {};
	struct page *page;
	int r;

	if (!len || len > HRL_MARK_NAME_MAX)
		return -EINVAL;
	page = alloc_page(GFP_KERNEL | __GFP_ZERO);
	if (!page)
		return -ENOMEM;
	spin_lock_irq(&hc->lock);
	r = hc->flags & HRL_SB_BITMAP_MODE ? -EBUSY : 0;
	if (!r && !hrl_ring_reserve(hc, len, &tmp))
		r = -ENOSPC;
	spin_unlock_irq(&hc->lock);
	if (r) {
		DMERR("cannot mark '%s': %s", name, r == -EBUSY ? "the log is in bitmap mode" : "the ring is full");
		goto out;
	}
	if (tmp.pad_seq) {
		hrl_encode_header(hc, page, HRL_REC_PAD, 0, tmp.pad_seq, 0, 0,
				  hc->ring_bytes - tmp.pad_pos - HRL_SECTOR_SIZE, 0);
		r = hrl_log_io(hc, REQ_OP_WRITE, page_address(page), false,
			       hc->ring_offset + tmp.pad_pos, HRL_SECTOR_SIZE);
		if (r) {
			hrl_record_write_failed(hc, "PAD", tmp.pad_seq, r);
			goto out;
		}
	}
	memset(page_address(page), 0, PAGE_SIZE);
	memcpy(page_address(page) + HRL_SECTOR_SIZE, name, len);
	hrl_encode_header(hc, page, HRL_REC_MARK, 0, tmp.seq, 0, 0, len,
			  xxh64(page_address(page) + HRL_SECTOR_SIZE, len, hc->seed));
	r = hrl_log_io(hc, REQ_OP_WRITE | REQ_FUA, page_address(page), false,
		       hc->ring_offset + tmp.pos, hrl_record_span(len));
	if (r) {
		hrl_record_write_failed(hc, "MARK", tmp.seq, r);
	} else {
		DMEMIT("%llu", tmp.seq);
		r = 1;	/* dm returns the result to userspace */
	}
out:
	__free_page(page);
	return r;
}

static int hrl_msg_take_bitmap(struct hrl_c *hc, char *result, unsigned int maxlen)
{
	unsigned int sz = 0;
	u64 take_seq;
	int r;

	spin_lock_irq(&hc->lock);
	if (!(hc->flags & HRL_SB_RESYNC_PENDING))
		bitmap_zero(hc->resync, hc->nr_bits);
	bitmap_or(hc->resync, hc->resync, hc->dirty, hc->nr_bits);
	if (hc->flags & HRL_SB_RESYNC_REQUIRED) {
		bitmap_set(hc->resync, 0, hc->nr_bits);	/* not past the last bit */
		hc->flags &= ~HRL_SB_RESYNC_REQUIRED;
		hc->reason = hc->flags & HRL_SB_BITMAP_MODE ? HRL_REASON_RING_OVERFLOW : HRL_REASON_NONE;
	}
	bitmap_zero(hc->dirty, hc->nr_bits);
	hc->flags |= HRL_SB_RESYNC_PENDING;
	hc->take_seq = take_seq = hc->head_seq;
	hrl_maybe_leave_bitmap_mode(hc);
	spin_unlock_irq(&hc->lock);
	r = hrl_commit(hc, false);
	queue_work(hc->wq, &hc->event_work);
	if (r)
		return r;
	DMEMIT("%llu", take_seq);
	return 1;	/* dm returns the result to userspace */
}

static int hrl_msg_end_resync(struct hrl_c *hc)
{
	spin_lock_irq(&hc->lock);
	if (!(hc->flags & HRL_SB_RESYNC_PENDING)) {
		spin_unlock_irq(&hc->lock);
		DMERR("end_resync: no bitmap was taken");
		return -EINVAL;
	}
	bitmap_zero(hc->resync, hc->nr_bits);
	hc->flags &= ~HRL_SB_RESYNC_PENDING;
	hc->take_seq = 0;
	spin_unlock_irq(&hc->lock);
	return hrl_commit(hc, false);
}

static int hrl_message(struct dm_target *ti, unsigned int argc, char **argv,
		       char *result, unsigned int maxlen)
{
	struct hrl_c *hc = ti->private;
	int r = -EINVAL;

	mutex_lock(&hc->meta_lock);
	if (!hc->active) {
		DMERR("message '%s' refused: the device is suspended", argv[0]);
		r = -EBUSY;
	} else if (argc == 2 && !strcasecmp(argv[0], "ack")) {
		r = hrl_msg_ack(hc, argv[1]);
	} else if (argc == 2 && !strcasecmp(argv[0], "mark")) {
		r = hrl_msg_mark(hc, argv[1], result, maxlen);
	} else if (argc == 1 && !strcasecmp(argv[0], "take_bitmap")) {
		r = hrl_msg_take_bitmap(hc, result, maxlen);
	} else if (argc == 1 && !strcasecmp(argv[0], "end_resync")) {
		r = hrl_msg_end_resync(hc);
	} else if (argc == 1 && !strcasecmp(argv[0], "request_resync")) {
		spin_lock_irq(&hc->lock);
		hrl_set_resync_required(hc, HRL_REASON_OPERATOR);
		spin_unlock_irq(&hc->lock);
		r = hrl_write_sb(hc, false);
		queue_work(hc->wq, &hc->event_work);
	} else {
		DMERR("unknown message '%s' (%u words): expected ack <seq>, mark <name>, "
		      "take_bitmap, end_resync or request_resync", argv[0], argc);
	}
	mutex_unlock(&hc->meta_lock);
	return r;
}

static void hrl_status(struct dm_target *ti, status_type_t type, unsigned int status_flags,
		       char *result, unsigned int maxlen)
{
	struct hrl_c *hc = ti->private;
	unsigned int sz = 0;
	u64 head, tail, used, take, dirty, resync;
	u32 flags, reason;

	switch (type) {
	case STATUSTYPE_INFO:
		spin_lock_irq(&hc->lock);
		head = hc->head_seq;
		tail = hc->tail_seq;
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
	if (hc->wq)
		destroy_workqueue(hc->wq);
	if (hc->bs_ready)
		bioset_exit(&hc->bs);
	kvfree(hc->spans);
	kvfree(hc->dirty);
	kvfree(hc->resync);
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

	r = -EINVAL;
	if (hc->max_payload > HRL_LOAD_MAX_PAYLOAD) {
		ti->error = "the log's maximum record payload is over 16 MiB";
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
	INIT_LIST_HEAD(&hc->inflight);
	INIT_LIST_HEAD(&hc->deferred);
	bio_list_init(&hc->flush_bios);
	INIT_WORK(&hc->deferred_work, hrl_deferred_worker);
	INIT_WORK(&hc->meta_work, hrl_meta_worker);
	INIT_WORK(&hc->event_work, hrl_event_worker);
	INIT_WORK(&hc->flush_work, hrl_flush_worker);

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
	if (r)
		goto bad;

	r = -ENOMEM;
	ti->error = "out of memory";
	hc->dirty = kvzalloc(hc->bitmap_bytes, GFP_KERNEL);
	hc->resync = kvzalloc(hc->bitmap_bytes, GFP_KERNEL);
	hc->spans = kvcalloc(hc->nr_slots, sizeof(*hc->spans), GFP_KERNEL);
	hc->wq = alloc_workqueue("dm-hrl", WQ_MEM_RECLAIM, 0);
	if (!hc->dirty || !hc->resync || !hc->spans || !hc->wq)
		goto bad;
	r = bioset_init(&hc->bs, BIO_POOL_SIZE, 0, BIOSET_NEED_BVECS | BIOSET_NEED_RESCUER);
	if (r)
		goto bad;
	hc->bs_ready = true;
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
	return 0;
bad:
	hrl_free(hc);
	return r;
}

static void hrl_dtr(struct dm_target *ti)
{
	struct hrl_c *hc = ti->private;

	flush_workqueue(hc->wq);
	hrl_free(hc);
}

static struct target_type hrl_target = {
	.name = "hrl",
	.version = {1, 0, 0},
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
	dm_unregister_target(&hrl_target);
}

module_init(dm_hrl_init);
module_exit(dm_hrl_exit);

MODULE_DESCRIPTION(DM_NAME " target journaling every write for replication (hrl)");
MODULE_AUTHOR("The hrl developers");
MODULE_LICENSE("GPL");
