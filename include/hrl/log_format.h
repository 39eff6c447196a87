/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * The .hrl log: the on-disk contract between the dm-hrl kernel target and
 * userspace (hrld, hrl-log, LogWriter). Defined once, here; docs/log-format.md
 * is the prose version of this file and says why each rule exists.
 *
 * Every multi-byte field is little-endian. Every structure has a fixed size
 * and fixed offsets, checked below. Checksums are xxHash64 (the kernel's
 * lib/xxhash.c and libxxhash compute the same function) seeded with
 * hrl_csum_seed(uuid), so records and superblocks of another volume, or of an
 * earlier format of the same device, never validate.
 *
 * Log device layout (byte offsets, all multiples of HRL_LOG_BLOCK):
 *
 *   0                 superblock slot 0   (HRL_LOG_BLOCK bytes)
 *   HRL_LOG_BLOCK     superblock slot 1   (HRL_LOG_BLOCK bytes)
 *   bitmap_offset     dirty bitmap        (bitmap_bytes, live tracking)
 *   resync_offset     resync bitmap       (bitmap_bytes, taken for a resync)
 *   al_offset         activity log        (HRL_AL_SLOTS blocks; al_offset 0: none)
 *   ring_offset       ring of records     (ring_bytes)
 */
#ifndef HRL_LOG_FORMAT_H
#define HRL_LOG_FORMAT_H

#ifdef __KERNEL__
#include <linux/types.h>
#include <linux/stddef.h>
#include <linux/build_bug.h>
#else
#include <linux/types.h>
#include <stddef.h>
#ifndef __cplusplus
#include <assert.h>
#endif
#endif

/* ---- constants --------------------------------------------------------- */

#define HRL_SB_MAGIC        0x31474f4c2d4c5248ULL	/* bytes "HRL-LOG1" */
#define HRL_RECORD_MAGIC    0x524c5248U		/* bytes "HRLR" */
#define HRL_FORMAT_VERSION  1U

#define HRL_SECTOR_SHIFT    9
#define HRL_SECTOR_SIZE     (1U << HRL_SECTOR_SHIFT)
/* Unit of the layout: superblock slots, bitmaps and ring are aligned to it. */
#define HRL_LOG_BLOCK       4096U
#define HRL_SB_SLOTS        2U

/* Defaults chosen by `hrl-log format` and `hrlctl volume create`. */
#define HRL_DEFAULT_BITMAP_BLOCK   4096U	/* bytes of data per bitmap bit */
#define HRL_DEFAULT_MAX_PAYLOAD    (1U << 20)	/* largest WRITE payload */
#define HRL_MIN_RING_BYTES         (64U * 1024U)
#define HRL_RING_ALIGN             (64U * 1024U)
#define HRL_MARK_NAME_MAX          255U
/*
 * A writer never places a record more than this many ring bytes past its
 * durable point (every record below it completed before a flush of the log
 * that finished). After an unclean shutdown the next writer zeroes this much
 * of the ring from the end of the valid data (never past the tail), durably,
 * before appending, so no record written before the crash can reappear after
 * the new head.
 */
#define HRL_MAX_INFLIGHT_BYTES     (8U << 20)

/* ---- superblock -------------------------------------------------------- */

/* sb.flags */
#define HRL_SB_CLEAN            (1U << 0) /* closed cleanly; cleared on load */
#define HRL_SB_BITMAP_MODE      (1U << 1) /* ring overflowed: writes tracked in the dirty bitmap */
#define HRL_SB_RESYNC_PENDING   (1U << 2) /* the resync bitmap holds a taken, unfinished resync */
#define HRL_SB_RESYNC_REQUIRED  (1U << 3) /* the whole device may differ: see resync_reason */
#define HRL_SB_KNOWN_FLAGS      0xfU

/* sb.resync_reason: why HRL_SB_RESYNC_REQUIRED (or BITMAP_MODE) was set. */
enum hrl_resync_reason {
	HRL_REASON_NONE             = 0,
	HRL_REASON_UNCLEAN_SHUTDOWN = 1, /* loaded without the CLEAN flag */
	HRL_REASON_RING_OVERFLOW    = 2, /* ring full: bitmap mode */
	HRL_REASON_LOG_CORRUPT      = 3, /* an invalid record below the persisted head */
	HRL_REASON_BITMAP_LOST      = 4, /* the dirty bitmap failed its checksum */
	HRL_REASON_OPERATOR         = 5, /* requested by an operator */
	HRL_REASON_NEW_VOLUME       = 6, /* freshly formatted: the replica is empty */
	HRL_REASON_IO_ERROR         = 7, /* a write to the log device failed */
	HRL_REASON_MAX              = 7,
};

/*
 * Two slots, written alternately (slot = update_seq % 2), each in one
 * FUA write. A reader takes the valid slot with the higher update_seq, so a
 * torn superblock write leaves the previous state, never a wrong one.
 * The structure fills HRL_SB_STRUCT_SIZE bytes; the rest of the slot is zero.
 */
struct hrl_superblock {
	__le64 magic;			/*   0 HRL_SB_MAGIC */
	__le32 version;			/*   8 HRL_FORMAT_VERSION */
	__le32 flags;			/*  12 HRL_SB_* */
	__u8   uuid[16];		/*  16 volume identity, random at format */
	__le64 generation;		/*  32 lineage: bumped by failover/reprotect */
	__le64 update_seq;		/*  40 incremented by every superblock write */

	__le64 data_sectors;		/*  48 size of the data device */
	__le32 bitmap_block;		/*  56 bytes of data per bitmap bit (power of 2, >= 512) */
	__le32 max_payload;		/*  60 largest record payload in bytes */
	__le64 bitmap_offset;		/*  64 byte offset of the dirty bitmap */
	__le64 resync_offset;		/*  72 byte offset of the resync bitmap */
	__le64 bitmap_bytes;		/*  80 size of each bitmap area */
	__le64 ring_offset;		/*  88 byte offset of the ring */
	__le64 ring_bytes;		/*  96 size of the ring */

	__le64 tail_seq;		/* 104 oldest record not yet acknowledged */
	__le64 tail_offset;		/* 112 its ring offset */
	__le64 head_seq;		/* 120 next sequence number, as last persisted */
	__le64 head_offset;		/* 128 its ring offset */

	__le32 resync_reason;		/* 136 enum hrl_resync_reason */
	__le32 reserved0;		/* 140 zero */
	__le64 resync_take_seq;		/* 144 head_seq when the resync bitmap was taken */
	__le64 dirty_bits;		/* 152 set bits in the dirty bitmap when written */
	__le64 resync_bits;		/* 160 set bits in the resync bitmap when written */
	__le64 bitmap_csum;		/* 168 xxh64 of the dirty bitmap area */
	__le64 resync_csum;		/* 176 xxh64 of the resync bitmap area */
	__le64 created_ns;		/* 184 CLOCK_REALTIME at format */
	__le64 updated_ns;		/* 192 CLOCK_REALTIME at this write */
	__le64 al_offset;		/* 200 byte offset of the activity log; 0: the log has none */
	__le32 al_extent_shift;		/* 208 log2 of the bytes of data an extent covers */
	__le32 al_extents;		/* 212 extents the activity log lists at most */
	__u8   reserved[288];		/* 216 zero */
	__le64 csum;			/* 504 xxh64 of bytes [0, 504) */
};

#define HRL_SB_STRUCT_SIZE      512U
#define HRL_SB_CSUM_BYTES       504U

/* ---- activity log ------------------------------------------------------ */

/*
 * The extents of the data device that may hold writes the log does not make
 * durable yet: a write is issued only once its extents are listed, and an
 * extent leaves the list only after a flush of the data device, of the log
 * (and, in bitmap mode, the bitmap's write) made every write to it durable.
 * After an unclean shutdown the listed extents are what may differ from the
 * replica beyond the log's records: they are resynced, not the whole device.
 *
 * HRL_AL_SLOTS blocks, written alternately (block seq % HRL_AL_SLOTS) with
 * PREFLUSH and FUA; a reader takes the valid block with the higher seq. No
 * valid block, or count == HRL_AL_ALL, means every extent.
 */
#define HRL_AL_MAGIC            0x31304c412d4c5248ULL	/* bytes "HRL-AL01" */
#define HRL_AL_SLOTS            2U
#define HRL_AL_ALL              0xffffffffU
#define HRL_AL_MAX_EXTENTS      1016U	/* what one block holds */
#define HRL_AL_CSUM_BYTES       (HRL_LOG_BLOCK - 8U)
#define HRL_DEFAULT_AL_EXTENTS  256U
#define HRL_DEFAULT_AL_EXTENT_SHIFT 22U	/* 4 MiB */
#define HRL_AL_MIN_EXTENT_SHIFT 16U
#define HRL_AL_MAX_EXTENT_SHIFT 40U

struct hrl_al_block {
	__le64 magic;			/*    0 HRL_AL_MAGIC */
	__le64 seq;			/*    8 +1 per transaction */
	__le32 count;			/*   16 extents listed, or HRL_AL_ALL */
	__le32 reserved;		/*   20 zero */
	__le32 extents[HRL_AL_MAX_EXTENTS];	/* 24 extent numbers (byte offset >> al_extent_shift) */
	__le64 csum;			/* 4088 xxh64 of bytes [0, 4088) */
};

/* ---- ring records ------------------------------------------------------ */

enum hrl_record_type {
	HRL_REC_WRITE   = 1,	/* payload: the data written at sector */
	HRL_REC_DISCARD = 2,	/* no payload: nr_sectors at sector were discarded */
	HRL_REC_MARK    = 3,	/* payload: a name (no NUL), a consistency point */
	HRL_REC_PAD     = 4,	/* no payload: skip payload_bytes to the end of the ring */
};

/* record.flags: the REQ_PREFLUSH and REQ_FUA of the original bio. */
#define HRL_REC_FLUSH           (1U << 0)
#define HRL_REC_FUA             (1U << 1)
#define HRL_REC_KNOWN_FLAGS     0x3U

/*
 * A record is a header unit of HRL_SECTOR_SIZE bytes (this structure, then
 * zeros) followed by payload_bytes of payload rounded up to HRL_SECTOR_SIZE.
 * Records never cross the end of the ring: a PAD record fills the gap.
 * A WRITE with nr_sectors == 0 and HRL_REC_FLUSH is an empty flush.
 */
struct hrl_record_header {
	__le32 magic;			/*  0 HRL_RECORD_MAGIC */
	__le16 type;			/*  4 enum hrl_record_type */
	__le16 flags;			/*  6 HRL_REC_* */
	__le64 seq;			/*  8 dense, +1 per record, across wraps and loads */
	__le64 generation;		/* 16 sb.generation when written */
	__le64 sector;			/* 24 data device sector (WRITE, DISCARD) */
	__le32 nr_sectors;		/* 32 sectors written or discarded */
	__le32 payload_bytes;		/* 36 bytes after the header unit (PAD: bytes skipped) */
	__le64 timestamp_ns;		/* 40 CLOCK_REALTIME at submission */
	__le64 payload_csum;		/* 48 xxh64 of the payload bytes (0 for none) */
	__le64 header_csum;		/* 56 xxh64 of bytes [0, 56) */
};

#define HRL_RECORD_HEADER_SIZE  64U
#define HRL_RECORD_CSUM_BYTES   56U

/* ---- layout checks ----------------------------------------------------- */

#define HRL_CHECK_OFFSET(s, f, o) static_assert(offsetof(struct s, f) == (o), #s "." #f)

static_assert(sizeof(struct hrl_superblock) == HRL_SB_STRUCT_SIZE, "superblock size");
HRL_CHECK_OFFSET(hrl_superblock, uuid, 16);
HRL_CHECK_OFFSET(hrl_superblock, data_sectors, 48);
HRL_CHECK_OFFSET(hrl_superblock, ring_bytes, 96);
HRL_CHECK_OFFSET(hrl_superblock, tail_seq, 104);
HRL_CHECK_OFFSET(hrl_superblock, head_offset, 128);
HRL_CHECK_OFFSET(hrl_superblock, resync_reason, 136);
HRL_CHECK_OFFSET(hrl_superblock, updated_ns, 192);
HRL_CHECK_OFFSET(hrl_superblock, al_offset, 200);
HRL_CHECK_OFFSET(hrl_superblock, reserved, 216);
HRL_CHECK_OFFSET(hrl_superblock, csum, HRL_SB_CSUM_BYTES);

static_assert(sizeof(struct hrl_record_header) == HRL_RECORD_HEADER_SIZE, "record header size");
HRL_CHECK_OFFSET(hrl_record_header, seq, 8);
HRL_CHECK_OFFSET(hrl_record_header, sector, 24);
HRL_CHECK_OFFSET(hrl_record_header, payload_bytes, 36);
HRL_CHECK_OFFSET(hrl_record_header, payload_csum, 48);
HRL_CHECK_OFFSET(hrl_record_header, header_csum, HRL_RECORD_CSUM_BYTES);

static_assert(sizeof(struct hrl_al_block) == HRL_LOG_BLOCK, "activity log block size");
HRL_CHECK_OFFSET(hrl_al_block, extents, 24);
HRL_CHECK_OFFSET(hrl_al_block, csum, HRL_AL_CSUM_BYTES);

static_assert(HRL_SB_STRUCT_SIZE <= HRL_LOG_BLOCK, "superblock fits its slot");
static_assert(HRL_RECORD_HEADER_SIZE <= HRL_SECTOR_SIZE, "header fits its unit");
static_assert(HRL_MARK_NAME_MAX < HRL_SECTOR_SIZE, "mark name fits one sector");

/* ---- derived values, identical on both sides --------------------------- */

/* The xxh64 seed of every checksum in a log: the volume UUID folded to 64 bits. */
static inline __u64 hrl_csum_seed(const __u8 uuid[16])
{
	__u64 seed = 0;
	unsigned int i;

	for (i = 0; i < 16; i++)
		seed ^= (__u64)uuid[i] << (8 * (i % 8));
	return seed;
}

/* Bytes a record occupies in the ring: header unit plus rounded payload. */
static inline __u64 hrl_record_span(__u32 payload_bytes)
{
	return HRL_SECTOR_SIZE +
	       (((__u64)payload_bytes + HRL_SECTOR_SIZE - 1) & ~(__u64)(HRL_SECTOR_SIZE - 1));
}

/* Bits in a bitmap covering data_sectors at bitmap_block bytes per bit. */
static inline __u64 hrl_bitmap_bits(__u64 data_sectors, __u32 bitmap_block)
{
	__u64 block_sectors = bitmap_block >> HRL_SECTOR_SHIFT;

	return (data_sectors + block_sectors - 1) / block_sectors;
}

/* Bytes of one bitmap area: one bit per block, rounded up to HRL_LOG_BLOCK. */
static inline __u64 hrl_bitmap_area_bytes(__u64 data_sectors, __u32 bitmap_block)
{
	__u64 bytes = (hrl_bitmap_bits(data_sectors, bitmap_block) + 7) / 8;

	return (bytes + HRL_LOG_BLOCK - 1) & ~(__u64)(HRL_LOG_BLOCK - 1);
}

#endif /* HRL_LOG_FORMAT_H */
