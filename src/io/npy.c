/* NumPy .npy: loading (whole or a region, pread or mmap, any byte order,
 * C or Fortran order), header facts, and saving. The header parser is in
 * npy_header.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "core/status.h"
#include "core/tensor.h"
#include "io/formats.h"
#include "io/outfile.h"
#include "io/region.h"

/* Headers up to this size are read into a stack buffer. */
#define NPY_STACK_HEADER 4096

/* Reads exactly the header (the preamble, then header_len bytes), so the
 * bytes counted for a load are the header plus the data it needs. */
static vp_status read_header(vp_source *s, vp_npy_header *h) {
  unsigned char pre[12];
  size_t n = s->size < sizeof pre ? (size_t)s->size : sizeof pre;
  VP_TRY(vp_source_read(s, 0, pre, n));
  uint64_t total = 0;
  if (n == sizeof pre && memcmp(pre, "\x93NUMPY", 6) == 0 && pre[7] == 0) {
    if (pre[6] == 1) total = 10 + ((uint64_t)pre[8] | (uint64_t)pre[9] << 8);
    if (pre[6] == 2 || pre[6] == 3)
      total = 12 + ((uint64_t)pre[8] | (uint64_t)pre[9] << 8 | (uint64_t)pre[10] << 16 |
                    (uint64_t)pre[11] << 24);
  }
  /* Anything else (bad magic or version, a header_len past the end of the
   * file) is reported by the parser from the preamble alone. */
  if (total <= n || total > s->size) return vp_npy_parse_header(pre, n, s->size, s->name, h);
  unsigned char stack[NPY_STACK_HEADER];
  unsigned char *buf = stack;
  if (total > sizeof stack) {
    /* bounded by the file size above and by the parser's own limit */
    if (total > ((uint64_t)1 << 24)) return vp_npy_parse_header(pre, n, s->size, s->name, h);
    buf = malloc((size_t)total);
    if (!buf)
      return vp_fail(VP_ERR_NOMEM, "%s: out of memory for a %llu-byte npy header", s->name,
                     (unsigned long long)total);
  }
  memcpy(buf, pre, n);
  vp_status st = vp_source_read(s, n, buf + n, (size_t)total - n);
  if (st == VP_OK) st = vp_npy_parse_header(buf, (size_t)total, s->size, s->name, h);
  if (buf != stack) free(buf);
  return st;
}

/* dst[i0..in-1] = src[in-1..i0]: a Fortran-order block (stored as the
 * C-order array of reversed shape `rshape`) to C order. */
static void reverse_axes(const unsigned char *src, unsigned char *dst, int ndim,
                         const int64_t *shape, size_t esz) {
  int64_t numel = 1;
  for (int a = 0; a < ndim; a++) numel *= shape[a];
  if (numel == 0) return;
  /* Stride, in src, of output axis a: src is C order over reversed axes,
   * so output axis a is src axis ndim-1-a, whose stride is the product of
   * the output extents before a. */
  int64_t sstr[VP_MAX_NDIM], idx[VP_MAX_NDIM] = {0};
  int64_t p = 1;
  for (int a = 0; a < ndim; a++) {
    sstr[a] = p;
    p *= shape[a];
  }
  if (ndim <= 1) {
    memcpy(dst, src, (size_t)numel * esz);
    return;
  }
  int last = ndim - 1;
  int64_t inner = shape[last], step = sstr[last];
  int64_t so = 0; /* src offset of idx with idx[last] = 0 */
  for (int64_t o = 0; o < numel; o += inner) {
    const unsigned char *sp = src + (size_t)so * esz;
    unsigned char *dp = dst + (size_t)o * esz;
    switch (esz) {
      case 1:
        for (int64_t k = 0; k < inner; k++) dp[k] = sp[k * step];
        break;
      case 2:
        for (int64_t k = 0; k < inner; k++) memcpy(dp + 2 * k, sp + 2 * k * step, 2);
        break;
      case 4:
        for (int64_t k = 0; k < inner; k++) memcpy(dp + 4 * k, sp + 4 * k * step, 4);
        break;
      default:
        for (int64_t k = 0; k < inner; k++) memcpy(dp + esz * k, sp + esz * k * step, esz);
        break;
    }
    int a = last - 1;
    while (a >= 0) {
      so += sstr[a];
      if (++idx[a] < shape[a]) break;
      so -= sstr[a] * shape[a];
      idx[a] = 0;
      a--;
    }
  }
}

/* Reads region r of a Fortran-order array: the file holds the C-order
 * array of reversed shape, so read the reversed region (its runs lie along
 * the file's contiguous axis 0) into a scratch block and reverse its axes. */
static vp_status read_fortran(vp_source *s, const vp_npy_header *h, const vp_region *r, double fill,
                              int swapped, void *dst, size_t nbytes) {
  int n = h->ndim;
  int64_t rshape[VP_MAX_NDIM];
  vp_region rr = {.ndim = n};
  for (int a = 0; a < n; a++) {
    rshape[a] = h->shape[n - 1 - a];
    rr.start[a] = r->start[n - 1 - a];
    rr.shape[a] = r->shape[n - 1 - a];
  }
  if (n <= 1)
    return vp_region_read(s, h->data_offset, h->dtype, n, rshape, &rr, fill, swapped, dst);
  void *tmp = malloc(nbytes ? nbytes : 1);
  if (!tmp)
    return vp_fail(VP_ERR_NOMEM, "%s: out of memory for a %zu-byte Fortran-order block", s->name,
                   nbytes);
  vp_status st = vp_region_read(s, h->data_offset, h->dtype, n, rshape, &rr, fill, swapped, tmp);
  if (st == VP_OK) reverse_axes(tmp, dst, n, r->shape, vp_dtype_size(h->dtype));
  free(tmp);
  return st;
}

vp_status vp_npy_load_source(vp_source *s, const vp_load_opts *opts, vp_tensor **out) {
  if (!out) return vp_fail(VP_ERR_INVALID_ARG, "npy load: out is NULL");
  *out = NULL;
  if (!s) return vp_fail(VP_ERR_INVALID_ARG, "npy load: source is NULL");
  vp_npy_header h = {0};
  VP_TRY(read_header(s, &h));
  vp_region r = {0};
  VP_TRY(vp_region_resolve(opts, h.ndim, h.shape, s->name, &r));
  if (h.data_bytes == 0 && opts && opts->roi_ndim > 0) {
    /* An array with no elements has extents that no data backs, e.g.
     * (2**40, 0, 5); padding it must not size an allocation from the axes
     * the region does not name. */
    uint64_t lead = 1;
    for (int a = 0; a < h.ndim - opts->roi_ndim; a++)
      if (h.shape[a] > 0 &&
          (__builtin_mul_overflow(lead, (uint64_t)h.shape[a], &lead) || lead > s->size))
        return vp_fail(VP_ERR_FORMAT,
                       "%s: the npy array has no elements yet axis %d = %lld; refusing to "
                       "pad a region that large",
                       s->name, a, (long long)h.shape[a]);
  }
  if (opts && opts->use_mmap) {
    const unsigned char *m;
    VP_TRY(vp_source_map(s, &m));
  }
  vp_tensor *t = NULL;
  vp_status st = vp_tensor_create(h.dtype, r.ndim, r.shape, VP_MEM_HOST, 0, &t);
  if (st != VP_OK) return vp_fail_prefix(st, "%s", s->name);
  double fill = opts ? opts->fill : 0.0;
  size_t esz = vp_dtype_size(h.dtype);
  int swapped = h.big_endian && esz > 1;
  size_t nbytes = vp_tensor_nbytes(t);
  if (h.fortran_order)
    st = read_fortran(s, &h, &r, fill, swapped, t->data, nbytes);
  else
    st = vp_region_read(s, h.data_offset, h.dtype, h.ndim, h.shape, &r, fill, swapped, t->data);
  if (st != VP_OK) {
    vp_tensor_release(t);
    return st;
  }
  if (swapped) vp_byteswap(t->data, nbytes / esz, esz);
  *out = t;
  return VP_OK;
}

vp_status vp_npy_info(vp_source *s, vp_file_info *out) {
  if (!s || !out) return vp_fail(VP_ERR_INVALID_ARG, "npy info: NULL argument");
  memset(out, 0, sizeof *out);
  vp_npy_header h = {0};
  VP_TRY(read_header(s, &h));
  snprintf(out->format, sizeof out->format, "npy");
  out->dtype = out->stored_dtype = h.dtype;
  out->ndim = h.ndim;
  for (int a = 0; a < h.ndim; a++) out->shape[a] = h.shape[a];
  for (int i = 0; i < 3; i++) out->spacing[i] = 1.0;
  for (int i = 0; i < 4; i++) out->affine[(size_t)i * 5] = 1.0;
  out->scl_slope = 1.0;
  out->scl_inter = 0.0;
  out->big_endian = h.big_endian;
  out->fortran_order = h.fortran_order;
  out->compressed = 0;
  return VP_OK;
}

/* The descr NumPy writes for each dtype in this host's byte order. */
static const char *descr_of(vp_dtype t) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  static const char *k[VP_DTYPE_COUNT] = {"|u1", "|i1", ">u2", ">i2", ">u4",
                                          ">i4", ">i8", ">f2", ">f4", ">f8"};
#else
  static const char *k[VP_DTYPE_COUNT] = {"|u1", "|i1", "<u2", "<i2", "<u4",
                                          "<i4", "<i8", "<f2", "<f4", "<f8"};
#endif
  return vp_dtype_valid(t) ? k[t] : NULL;
}

/* Builds the preamble and padded header as NumPy does: the data starts at
 * a multiple of 64 and the header ends with '\n'. Returns its length. */
static size_t build_header(const vp_tensor *t, char *buf, size_t cap) {
  char dict[256];
  int n = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (",
                   descr_of(t->dtype));
  /* NumPy's spelling: () for a scalar, (5,) for one axis, (3, 4) for more */
  for (int a = 0; a < t->ndim; a++)
    n += snprintf(dict + n, sizeof dict - (size_t)n, "%s%lld", a ? ", " : "",
                  (long long)t->shape[a]);
  if (t->ndim == 1) n += snprintf(dict + n, sizeof dict - (size_t)n, ",");
  n += snprintf(dict + n, sizeof dict - (size_t)n, "), }");
  size_t dlen = (size_t)n;
  int major = dlen + 1 + 10 > 65535 ? 2 : 1;
  size_t pre = major == 1 ? 10 : 12;
  size_t total = (pre + dlen + 1 + 63) / 64 * 64;
  if (total > cap) return 0;
  memcpy(buf, "\x93NUMPY", 6);
  buf[6] = (char)major;
  buf[7] = 0;
  size_t hlen = total - pre;
  buf[8] = (char)(hlen & 0xff);
  buf[9] = (char)(hlen >> 8 & 0xff);
  if (major == 2) {
    buf[10] = (char)(hlen >> 16 & 0xff);
    buf[11] = (char)(hlen >> 24 & 0xff);
  }
  memcpy(buf + pre, dict, dlen);
  memset(buf + pre + dlen, ' ', total - pre - dlen - 1);
  buf[total - 1] = '\n';
  return total;
}

vp_status vp_npy_save(const char *path, const vp_tensor *t) {
  if (!path || !t) return vp_fail(VP_ERR_INVALID_ARG, "npy save: NULL argument");
  if (t->mem == VP_MEM_DEVICE)
    return vp_fail(VP_ERR_INVALID_ARG, "%s: cannot save a GPU tensor; copy it to the host first",
                   path);
  if (!descr_of(t->dtype) || t->ndim < 0 || t->ndim > VP_MAX_NDIM)
    return vp_fail(VP_ERR_INVALID_ARG, "%s: npy save: invalid tensor (dtype %d, ndim %d)", path,
                   (int)t->dtype, t->ndim);
  char header[384];
  size_t hn = build_header(t, header, sizeof header);
  if (hn == 0) return vp_fail(VP_ERR_INTERNAL, "%s: npy header does not fit", path);
  vp_outfile f;
  VP_TRY(vp_outfile_open(&f, path));
  vp_status st = vp_outfile_write(&f, header, hn);
  if (st == VP_OK) st = vp_outfile_write(&f, t->data, vp_tensor_nbytes(t));
  if (st != VP_OK) {
    vp_outfile_abort(&f);
    return st;
  }
  return vp_outfile_commit(&f);
}
