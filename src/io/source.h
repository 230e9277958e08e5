/* A readable byte source: a file (pread or mmap) or a memory buffer (for
 * fuzzing and for decompressed data). Every read is exact: a short read is
 * a VP_ERR_FORMAT error naming the source, the offset and the size. */
#ifndef VP_IO_SOURCE_H
#define VP_IO_SOURCE_H

#include <stddef.h>
#include <stdint.h>

#include "voxpipe.h"

typedef struct vp_source {
  const char *name; /* for messages; not owned */
  int fd;           /* -1 for memory sources */
  const unsigned char *mem; /* memory source, or the mapping once mapped */
  uint64_t size;
  int mapped;
} vp_source;

/* Opens a regular file; a missing file, a directory or an unreadable file
 * is a VP_ERR_IO error naming the path and the reason. */
vp_status vp_source_open(vp_source *s, const char *path);
void vp_source_from_memory(vp_source *s, const void *buf, size_t n, const char *name);
/* Reads exactly n bytes at off (counted in vp_io_bytes_read). */
vp_status vp_source_read(vp_source *s, uint64_t off, void *dst, size_t n);
/* The whole source as memory (maps a file read-only). Bytes are counted
 * only when read through vp_source_read or copied by the caller. */
vp_status vp_source_map(vp_source *s, const unsigned char **out);
void vp_source_close(vp_source *s);

/* Adds to this thread's read counter (for copies out of a mapping). */
void vp_io_count_bytes(uint64_t n);

/* Test hooks (fault injection, tests/c/test_faults.c), inert unless armed:
 * vp_source_read on a source whose name contains `pattern` fails with
 * VP_ERR_IO ("injected read error") once `after` such reads succeeded
 * (pattern NULL disarms); every vp_source_read sleeps `us` microseconds
 * first (0 = off), to hold a reader mid-batch. Set them while no reader
 * runs. */
void vp_debug_fail_reads(const char *pattern, int64_t after);
void vp_debug_read_delay_us(int64_t us);

#endif
