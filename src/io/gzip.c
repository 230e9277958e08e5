/* gzip: libdeflate decompresses whole streams straight into their
 * destination; zlib's streaming inflate is used only where the output size
 * is not known yet (peeking at a header) and to tell a truncated stream
 * from a corrupt one after libdeflate has refused it. */
#include "io/gzip.h"

#include <libdeflate.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/status.h"
#include "core/threadpool.h"

/* Inputs above this are cut into members compressed in parallel. Large
 * enough that the per-member cost (a fresh dictionary, ~20 bytes of framing)
 * is lost in the noise. */
#define CHUNK_BYTES ((size_t)4 << 20)
#define ZLIB_GZIP_WINDOW (15 + 16)

/* A gzip-mode inflate stream, or an error naming `name`. */
static vp_status zlib_start(z_stream *z, const char *name) {
  memset(z, 0, sizeof *z);
  if (inflateInit2(z, ZLIB_GZIP_WINDOW) != Z_OK)
    return vp_fail(VP_ERR_NOMEM, "%s: cannot start zlib", name);
  return VP_OK;
}

int vp_gzip_is(const void *src, size_t n) {
  const unsigned char *p = src;
  return n >= 2 && p[0] == 0x1f && p[1] == 0x8b;
}

uint32_t vp_gzip_isize(const void *src, size_t srclen) {
  if (srclen < 4) return 0;
  const unsigned char *p = (const unsigned char *)src + srclen - 4;
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int all_zero(const unsigned char *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i]) return 0;
  return 1;
}

/* zlib counts in uInt; feed it at most this much at a time. */
static uInt clamp_uint(size_t n) { return n > UINT_MAX ? UINT_MAX : (uInt)n; }

vp_status vp_gzip_peek(const void *src, size_t srclen, void *dst, size_t n, size_t *got,
                       const char *name) {
  *got = 0;
  if (!vp_gzip_is(src, srclen)) return vp_fail(VP_ERR_FORMAT, "%s: not a gzip stream", name);
  z_stream z;
  VP_TRY(zlib_start(&z, name));
  const unsigned char *in = src;
  size_t in_left = srclen;
  unsigned char *out = dst;
  size_t out_done = 0;
  vp_status st = VP_OK;
  while (out_done < n) {
    z.next_in = (Bytef *)in;
    z.avail_in = clamp_uint(in_left);
    z.next_out = out + out_done;
    z.avail_out = clamp_uint(n - out_done);
    uInt in_before = z.avail_in, out_before = z.avail_out;
    int r = inflate(&z, Z_NO_FLUSH);
    in += in_before - z.avail_in;
    in_left -= in_before - z.avail_in;
    out_done += out_before - z.avail_out;
    if (r == Z_STREAM_END) {
      /* A further member continues the same data; zero padding ends it. */
      if (in_left == 0 || all_zero(in, in_left)) break;
      if (!vp_gzip_is(in, in_left)) {
        st = vp_fail(VP_ERR_FORMAT, "%s: corrupt gzip stream: trailing data after a member", name);
        break;
      }
      inflateReset(&z);
      continue;
    }
    if (r == Z_OK) continue;
    if (r == Z_BUF_ERROR && in_left == 0) {
      st = vp_fail(VP_ERR_FORMAT, "%s: truncated gzip stream (ended after %zu bytes of output)",
                   name, out_done);
      break;
    }
    if (r == Z_MEM_ERROR) {
      st = vp_fail(VP_ERR_NOMEM, "%s: out of memory in zlib", name);
      break;
    }
    st = vp_fail(VP_ERR_FORMAT, "%s: corrupt gzip stream: %s", name, z.msg ? z.msg : "bad data");
    break;
  }
  inflateEnd(&z);
  if (st == VP_OK) *got = out_done;
  return st;
}

/* After libdeflate refused the member at `src` (bad data, or more output
 * than expected): is it cut short, damaged, or really too long? zlib
 * streams through it into a scratch buffer to find out. */
static vp_status diagnose_member(const unsigned char *src, size_t srclen, uint64_t member_off,
                                 size_t expected, const char *name) {
  z_stream z;
  VP_TRY(zlib_start(&z, name));
  enum { SCRATCH = 1 << 16 };
  unsigned char *scratch = malloc(SCRATCH);
  if (!scratch) {
    inflateEnd(&z);
    return vp_fail(VP_ERR_NOMEM, "%s: out of memory", name);
  }
  size_t left = srclen;
  int r = Z_OK;
  while (r == Z_OK) {
    z.next_in = (Bytef *)src;
    z.avail_in = clamp_uint(left);
    uInt before = z.avail_in;
    z.next_out = scratch;
    z.avail_out = SCRATCH;
    r = inflate(&z, Z_NO_FLUSH);
    src += before - z.avail_in;
    left -= before - z.avail_in;
    if (r == Z_BUF_ERROR && left > 0) r = Z_OK; /* output was full */
  }
  vp_status st;
  if (r == Z_BUF_ERROR)
    st = vp_fail(VP_ERR_FORMAT, "%s: truncated gzip stream (the member at byte %llu is cut short)",
                 name, (unsigned long long)member_off);
  else if (r == Z_STREAM_END)
    st = vp_fail(VP_ERR_FORMAT,
                 "%s: gzip stream has trailing data (decompresses to more than the %zu bytes "
                 "the header describes)",
                 name, expected);
  else
    st = vp_fail(VP_ERR_FORMAT, "%s: corrupt gzip stream at byte %llu: %s", name,
                 (unsigned long long)member_off, z.msg ? z.msg : "bad data");
  free(scratch);
  inflateEnd(&z);
  return st;
}

vp_status vp_gzip_decompress(const void *src, size_t srclen, void *dst, size_t expected,
                             const char *name) {
  if (!vp_gzip_is(src, srclen))
    return vp_fail(VP_ERR_FORMAT, "%s: not a gzip stream (bad magic bytes)", name);
  struct libdeflate_decompressor *d = libdeflate_alloc_decompressor();
  if (!d) return vp_fail(VP_ERR_NOMEM, "%s: cannot allocate a decompressor", name);
  const unsigned char *in = src;
  size_t in_left = srclen;
  unsigned char *out = dst;
  size_t done = 0;
  vp_status st = VP_OK;
  while (in_left > 0) {
    if (done == expected && all_zero(in, in_left)) break; /* padding, as gzip(1) allows */
    if (!vp_gzip_is(in, in_left)) {
      st = vp_fail(VP_ERR_FORMAT,
                   "%s: gzip stream has trailing data (%zu bytes after the last member)", name,
                   in_left);
      break;
    }
    size_t used_in = 0, used_out = 0;
    enum libdeflate_result r = libdeflate_gzip_decompress_ex(d, in, in_left, out + done,
                                                             expected - done, &used_in, &used_out);
    if (r == LIBDEFLATE_SUCCESS) {
      in += used_in;
      in_left -= used_in;
      done += used_out;
      continue;
    }
    /* A damaged stream can also look too long: let zlib tell. */
    st = diagnose_member(in, in_left, (uint64_t)(in - (const unsigned char *)src), expected, name);
    break;
  }
  libdeflate_free_decompressor(d);
  if (st == VP_OK && done < expected)
    st = vp_fail(VP_ERR_FORMAT,
                 "%s: truncated gzip stream: it holds %zu bytes but the header needs %zu", name,
                 done, expected);
  return st;
}

typedef struct {
  const unsigned char *src;
  size_t n;
  int level;
  size_t nchunks;
  unsigned char **bufs;
  size_t *lens;
} compress_job;

static vp_status compress_chunk(void *ctx, int64_t i) {
  compress_job *j = ctx;
  size_t off = (size_t)i * CHUNK_BYTES;
  size_t len = j->n - off < CHUNK_BYTES ? j->n - off : CHUNK_BYTES;
  struct libdeflate_compressor *c = libdeflate_alloc_compressor(j->level);
  if (!c) return vp_fail(VP_ERR_NOMEM, "gzip: cannot allocate a level-%d compressor", j->level);
  size_t bound = libdeflate_gzip_compress_bound(c, len);
  unsigned char *buf = malloc(bound ? bound : 1);
  if (!buf) {
    libdeflate_free_compressor(c);
    return vp_fail(VP_ERR_NOMEM, "gzip: out of memory for %zu bytes", bound);
  }
  size_t got = libdeflate_gzip_compress(c, j->src + off, len, buf, bound);
  libdeflate_free_compressor(c);
  if (got == 0) {
    free(buf);
    return vp_fail(VP_ERR_INTERNAL, "gzip: libdeflate could not compress chunk %lld", (long long)i);
  }
  j->bufs[i] = buf;
  j->lens[i] = got;
  return VP_OK;
}

vp_status vp_gzip_compress(const void *src, size_t n, int level, int threads, void **out,
                           size_t *outlen) {
  if (!out || !outlen || (!src && n)) return vp_fail(VP_ERR_INVALID_ARG, "gzip: NULL argument");
  *out = NULL;
  *outlen = 0;
  if (level == 0) level = 6;
  if (level < 1 || level > 12)
    return vp_fail(VP_ERR_INVALID_ARG, "gzip: compression level %d is outside 1..12", level);
  if (threads < 0) return vp_fail(VP_ERR_INVALID_ARG, "gzip: %d threads is negative", threads);
  compress_job j = {.src = src, .n = n, .level = level};
  j.nchunks = n == 0 ? 1 : (n + CHUNK_BYTES - 1) / CHUNK_BYTES;
  j.bufs = calloc(j.nchunks, sizeof *j.bufs);
  j.lens = calloc(j.nchunks, sizeof *j.lens);
  vp_status st = VP_OK;
  if (!j.bufs || !j.lens) st = vp_fail(VP_ERR_NOMEM, "gzip: out of memory");
  vp_threadpool *pool = NULL;
  if (st == VP_OK && j.nchunks > 1 && threads != 1) {
    int want = threads == 0 ? vp_num_cores() : threads;
    if ((size_t)want > j.nchunks) want = (int)j.nchunks;
    st = vp_threadpool_create(want, &pool);
  }
  if (st == VP_OK) st = vp_parallel_for(pool, (int64_t)j.nchunks, compress_chunk, &j);
  vp_threadpool_destroy(pool);
  size_t total = 0;
  for (size_t i = 0; st == VP_OK && i < j.nchunks; i++) total += j.lens[i];
  unsigned char *buf = NULL;
  if (st == VP_OK) {
    buf = malloc(total ? total : 1);
    if (!buf) st = vp_fail(VP_ERR_NOMEM, "gzip: out of memory for %zu bytes", total);
  }
  size_t pos = 0;
  for (size_t i = 0; j.bufs && i < j.nchunks; i++) {
    if (buf && j.bufs[i]) {
      memcpy(buf + pos, j.bufs[i], j.lens[i]);
      pos += j.lens[i];
    }
    free(j.bufs[i]);
  }
  free(j.bufs);
  free(j.lens);
  if (st != VP_OK) {
    free(buf);
    return st;
  }
  *out = buf;
  *outlen = total;
  return VP_OK;
}
