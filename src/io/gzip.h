/* gzip through libdeflate (whole-buffer, fast) and zlib (only to peek at
 * the first bytes of a stream). Never a hand-written inflate. */
#ifndef VP_IO_GZIP_H
#define VP_IO_GZIP_H

#include <stddef.h>
#include <stdint.h>

#include "voxpipe.h"

/* 1 when the buffer starts with the gzip magic bytes. */
int vp_gzip_is(const void *src, size_t n);

/* Decompresses the first up-to-n bytes of the stream into dst (for reading
 * a header before the data's size is known); *got < n only when the whole
 * stream is shorter. `name` is used in messages. */
vp_status vp_gzip_peek(const void *src, size_t srclen, void *dst, size_t n, size_t *got,
                       const char *name);

/* The uncompressed size modulo 2^32 from the last member's trailer (ISIZE). */
uint32_t vp_gzip_isize(const void *src, size_t srclen);

/* Decompresses every member of the stream straight into dst, which must
 * receive exactly `expected` bytes: a shorter stream is "truncated", a
 * longer one "has trailing data", a damaged one "corrupt". */
vp_status vp_gzip_decompress(const void *src, size_t srclen, void *dst, size_t expected,
                             const char *name);

/* Compresses n bytes at `level` (1..12). Large inputs are cut into chunks
 * compressed in parallel as consecutive gzip members (a valid gzip file
 * that every reader, Python's gzip and nibabel included, accepts). *out is
 * malloc'd. threads 0 = all cores. */
vp_status vp_gzip_compress(const void *src, size_t n, int level, int threads, void **out,
                           size_t *outlen);

#endif
