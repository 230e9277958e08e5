/* NIfTI-1/2 loading and header info: .nii, .nii.gz, .hdr/.img pairs (each
 * part optionally gzipped). A gzipped file is decompressed in one pass
 * straight into the tensor: the header lands in a prefix before the data
 * pointer, so the data needs no second copy. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/dtype.h"
#include "core/status.h"
#include "core/tensor.h"
#include "io/formats.h"
#include "io/gzip.h"
#include "io/nifti_header.h"
#include "io/region.h"

/* Deflate cannot expand by more than about 1032:1; a header asking for
 * more than that from the compressed bytes is lying (or the file is cut). */
#define DEFLATE_MAX_RATIO 1032u
#define DEFLATE_SLACK 4096u

static int ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

/* The header and data file names of an image. */
typedef struct {
  char *hdr;
  char *img;
  int pair;
} nifti_files;

static void files_free(nifti_files *f) {
  free(f->hdr);
  free(f->img);
  f->hdr = f->img = NULL;
}

/* stem + ext (+ ".gz"), malloc'd. */
static char *with_ext(const char *path, size_t stem_len, const char *ext, int gz) {
  size_t n = stem_len + strlen(ext) + (gz ? 3 : 0) + 1;
  char *s = malloc(n);
  if (s) snprintf(s, n, "%.*s%s%s", (int)stem_len, path, ext, gz ? ".gz" : "");
  return s;
}

/* The partner of a .hdr or .img: same compression first, then the other. */
static vp_status find_partner(const char *path, size_t stem_len, const char *ext, int gz,
                              char **out) {
  char *first = with_ext(path, stem_len, ext, gz);
  char *second = with_ext(path, stem_len, ext, !gz);
  if (!first || !second) {
    free(first);
    free(second);
    return vp_fail(VP_ERR_NOMEM, "%s: out of memory", path);
  }
  if (access(first, F_OK) == 0) {
    free(second);
    *out = first;
    return VP_OK;
  }
  if (access(second, F_OK) == 0) {
    free(first);
    *out = second;
    return VP_OK;
  }
  vp_status s = vp_fail(VP_ERR_IO, "%s: the %s file of this pair is missing (looked for %s)", path,
                        ext + 1, first);
  free(first);
  free(second);
  return s;
}

static vp_status resolve_files(const char *path, nifti_files *f) {
  memset(f, 0, sizeof *f);
  size_t n = strlen(path);
  int gz = ends_with(path, ".gz");
  size_t base = gz ? n - 3 : n;
  int is_hdr = base >= 4 && strncasecmp(path + base - 4, ".hdr", 4) == 0;
  int is_img = base >= 4 && strncasecmp(path + base - 4, ".img", 4) == 0;
  vp_status s = VP_OK;
  if (is_hdr || is_img) {
    f->pair = 1;
    char *self = strdup(path);
    char *other = NULL;
    if (!self) return vp_fail(VP_ERR_NOMEM, "%s: out of memory", path);
    s = find_partner(path, base - 4, is_hdr ? ".img" : ".hdr", gz, &other);
    if (s != VP_OK) {
      free(self);
      return s;
    }
    f->hdr = is_hdr ? self : other;
    f->img = is_hdr ? other : self;
    return VP_OK;
  }
  f->hdr = strdup(path);
  f->img = strdup(path);
  if (!f->hdr || !f->img) {
    files_free(f);
    return vp_fail(VP_ERR_NOMEM, "%s: out of memory", path);
  }
  return VP_OK;
}

static vp_status source_is_gzip(vp_source *s, int *gz) {
  unsigned char m[2] = {0, 0};
  *gz = 0;
  if (s->size >= 2) {
    VP_TRY(vp_source_read(s, 0, m, 2));
    *gz = vp_gzip_is(m, 2);
  }
  return VP_OK;
}

/* Reads and parses the header at the start of s (gzipped or not). */
static vp_status read_header(vp_source *s, int single_file, vp_nifti_header *h, int *gz) {
  unsigned char buf[VP_NIFTI_PEEK_BYTES];
  size_t got = 0;
  VP_TRY(source_is_gzip(s, gz));
  if (*gz) {
    const unsigned char *mem;
    VP_TRY(vp_source_map(s, &mem));
    VP_TRY(vp_gzip_peek(mem, (size_t)s->size, buf, sizeof buf, &got, s->name));
  } else {
    got = s->size < sizeof buf ? (size_t)s->size : sizeof buf;
    VP_TRY(vp_source_read(s, 0, buf, got));
  }
  return vp_nifti_parse_header(buf, got, single_file, s->name, h);
}

/* Decompresses the whole data file into a tensor of the full stored shape:
 * the stream's first data_offset bytes (header, extensions) go to the
 * tensor's prefix. */
static vp_status inflate_whole(vp_source *s, const vp_nifti_header *h, vp_tensor **out) {
  *out = NULL;
  const unsigned char *mem;
  VP_TRY(vp_source_map(s, &mem));
  uint64_t total = h->data_offset + h->data_bytes;
  if (total < h->data_offset)
    return vp_fail(VP_ERR_OVERFLOW, "%s: vox_offset plus the data size overflows", s->name);
  if (total > DEFLATE_SLACK && (total - DEFLATE_SLACK) / DEFLATE_MAX_RATIO > s->size)
    return vp_fail(VP_ERR_FORMAT,
                   "%s: truncated or corrupt: a %llu-byte gzip file cannot hold the %llu bytes "
                   "the header describes",
                   s->name, (unsigned long long)s->size, (unsigned long long)total);
  /* A single-member stream's trailer holds the size (mod 2^32); a mismatch
   * is not conclusive, as a multi-member stream's trailer counts only its
   * last member, so the decompression below decides. */
  if (total > SIZE_MAX / 2)
    return vp_fail(VP_ERR_OVERFLOW, "%s: %llu bytes do not fit in memory", s->name,
                   (unsigned long long)total);
  vp_tensor *t;
  VP_TRY(vp_tensor_create_prefixed(h->stored, h->ndim, h->shape, VP_MEM_HOST, 0,
                                   (size_t)h->data_offset, &t));
  vp_status st = vp_gzip_decompress(mem, (size_t)s->size, (char *)t->data - h->data_offset,
                                    (size_t)total, s->name);
  if (st != VP_OK) {
    vp_tensor_release(t);
    return st;
  }
  vp_io_count_bytes(s->size);
  if (h->swapped)
    vp_byteswap(t->data, (size_t)(h->data_bytes / vp_dtype_size(h->stored)),
                vp_dtype_size(h->stored));
  *out = t;
  return VP_OK;
}

static vp_status read_plain(vp_source *s, const vp_nifti_header *h, const vp_load_opts *opts,
                            const vp_region *r, vp_tensor **out) {
  *out = NULL;
  if (h->data_offset > s->size || h->data_bytes > s->size - h->data_offset)
    return vp_fail(VP_ERR_FORMAT,
                   "%s: truncated data: needs %llu bytes at offset %llu but the file has %llu",
                   s->name, (unsigned long long)h->data_bytes, (unsigned long long)h->data_offset,
                   (unsigned long long)s->size);
  if (opts->use_mmap) {
    const unsigned char *mem;
    VP_TRY(vp_source_map(s, &mem));
  }
  vp_tensor *t;
  VP_TRY(vp_tensor_create(h->stored, h->ndim, r ? r->shape : h->shape, VP_MEM_HOST, 0, &t));
  vp_status st;
  if (r)
    st = vp_region_read(s, h->data_offset, h->stored, h->ndim, h->shape, r, opts->fill, h->swapped,
                        t->data);
  else
    st = vp_source_read(s, h->data_offset, t->data, (size_t)h->data_bytes);
  if (st != VP_OK) {
    vp_tensor_release(t);
    return st;
  }
  if (h->swapped) vp_byteswap(t->data, (size_t)vp_tensor_numel(t), vp_dtype_size(h->stored));
  *out = t;
  return VP_OK;
}

static int region_is_whole(const vp_region *r, const vp_nifti_header *h) {
  for (int i = 0; i < r->ndim; i++)
    if (r->start[i] != 0 || r->shape[i] != h->shape[i]) return 0;
  return 1;
}

/* Voxels of a padded region outside the volume read the fill value after
 * scaling too (the stored-type fill went through slope and inter). */
static void refill_outside(double *out, const vp_region *r, const vp_nifti_header *h, double fill) {
  int nd = r->ndim;
  int inside_all = 1;
  for (int a = 0; a < nd; a++)
    if (r->start[a] < 0 || r->start[a] + r->shape[a] > h->shape[a]) inside_all = 0;
  if (inside_all) return;
  int64_t idx[VP_MAX_NDIM] = {0};
  int64_t n = 1;
  for (int a = 0; a < nd; a++) n *= r->shape[a];
  for (int64_t e = 0; e < n; e++) {
    int outside = 0;
    for (int a = 0; a < nd && !outside; a++) {
      int64_t c = r->start[a] + idx[a];
      outside = c < 0 || c >= h->shape[a];
    }
    if (outside) out[e] = fill;
    for (int a = nd - 1; a >= 0; a--) {
      if (++idx[a] < r->shape[a]) break;
      idx[a] = 0;
    }
  }
}

/* The affine of a region: voxel (0, 0, 0) of the output is voxel `start`
 * of the file (as nibabel's slicer shifts it). */
static void shift_affine(double *aff, const vp_region *r, const vp_nifti_header *h) {
  double ijk[3] = {0, 0, 0};
  for (int a = 0; a < h->spatial_ndim; a++) ijk[a] = (double)r->start[r->ndim - 1 - a];
  for (int row = 0; row < 3; row++)
    aff[row * 4 + 3] +=
        aff[row * 4 + 0] * ijk[0] + aff[row * 4 + 1] * ijk[1] + aff[row * 4 + 2] * ijk[2];
}

/* Loads the data described by h from s into *out (region, scaling and
 * metadata applied). */
static vp_status load_data(vp_source *s, int gz, const vp_nifti_header *h, const vp_load_opts *opts,
                           vp_tensor **out) {
  vp_region region, *r = NULL;
  if (opts->roi_ndim > 0) {
    VP_TRY(vp_region_resolve(opts, h->ndim, h->shape, s->name, &region));
    if (!region_is_whole(&region, h)) r = &region;
    /* Axes outside the ROI keep the file's extents, which the data size
     * vouches for only when the volume is not empty. */
    int64_t rn;
    if (r && h->data_bytes == 0 &&
        (vp_shape_numel(r->shape, r->ndim, &rn, "region") != VP_OK || rn != 0))
      return vp_fail(VP_ERR_FORMAT, "%s: the volume is empty (a dim is 0): no region to read",
                     s->name);
  }
  vp_tensor *t = NULL;
  vp_status st;
  if (gz) {
    vp_tensor *full;
    VP_TRY(inflate_whole(s, h, &full));
    if (r) {
      st = vp_tensor_create(h->stored, h->ndim, r->shape, VP_MEM_HOST, 0, &t);
      if (st == VP_OK)
        vp_region_copy(full->data, h->stored, h->ndim, h->shape, r, opts->fill, t->data);
      vp_tensor_release(full);
      VP_TRY(st);
    } else {
      t = full;
    }
  } else {
    VP_TRY(read_plain(s, h, opts, r, &t));
  }
  if (h->scaled && !opts->raw) {
    vp_tensor *f;
    st = vp_tensor_create(VP_F64, t->ndim, t->shape, VP_MEM_HOST, 0, &f);
    if (st != VP_OK) {
      vp_tensor_release(t);
      return st;
    }
    vp_nifti_scale(h, t->data, h->stored, f->data, (size_t)vp_tensor_numel(t));
    if (r && opts->oob == VP_OOB_PAD) refill_outside(f->data, r, h, opts->fill);
    vp_tensor_release(t);
    t = f;
  }
  double aff[16];
  memcpy(aff, h->affine, sizeof aff);
  if (r) shift_affine(aff, r, h);
  st = vp_tensor_set_spacing(t, h->spatial_ndim, h->spacing);
  if (st == VP_OK) st = vp_tensor_set_affine(t, aff);
  if (st != VP_OK) {
    vp_tensor_release(t);
    return vp_fail_prefix(st, "%s", s->name);
  }
  *out = t;
  return VP_OK;
}

vp_status vp_nifti_load_source(vp_source *s, const vp_load_opts *opts, vp_tensor **out) {
  if (!out) return vp_fail(VP_ERR_INVALID_ARG, "nifti: out is NULL");
  *out = NULL;
  vp_load_opts defaults;
  if (!opts) {
    vp_load_opts_init(&defaults);
    opts = &defaults;
  }
  vp_nifti_header h;
  int gz;
  VP_TRY(read_header(s, 1, &h, &gz));
  return load_data(s, gz, &h, opts, out);
}

vp_status vp_nifti_load(const char *path, const vp_load_opts *opts, vp_tensor **out) {
  if (!out) return vp_fail(VP_ERR_INVALID_ARG, "nifti: out is NULL");
  *out = NULL;
  if (!path) return vp_fail(VP_ERR_INVALID_ARG, "nifti: path is NULL");
  vp_load_opts defaults;
  if (!opts) {
    vp_load_opts_init(&defaults);
    opts = &defaults;
  }
  nifti_files f;
  VP_TRY(resolve_files(path, &f));
  vp_source hs, is;
  vp_status st = vp_source_open(&hs, f.hdr);
  if (st == VP_OK && !f.pair) {
    st = vp_nifti_load_source(&hs, opts, out);
  } else if (st == VP_OK) {
    vp_nifti_header h;
    int gz;
    st = read_header(&hs, 0, &h, &gz);
    if (st == VP_OK) {
      st = vp_source_open(&is, f.img);
      if (st == VP_OK) st = source_is_gzip(&is, &gz);
      if (st == VP_OK) st = load_data(&is, gz, &h, opts, out);
      vp_source_close(&is);
    }
  }
  vp_source_close(&hs);
  files_free(&f);
  return st;
}

vp_status vp_nifti_info(const char *path, vp_file_info *out) {
  if (!path || !out) return vp_fail(VP_ERR_INVALID_ARG, "nifti info: NULL argument");
  nifti_files f;
  VP_TRY(resolve_files(path, &f));
  vp_source s;
  vp_nifti_header h;
  int gz = 0;
  vp_status st = vp_source_open(&s, f.hdr);
  if (st == VP_OK) st = read_header(&s, !f.pair, &h, &gz);
  vp_source_close(&s);
  if (st == VP_OK && f.pair) {
    /* the data file's compression is in its name or its first bytes */
    st = vp_source_open(&s, f.img);
    if (st == VP_OK) st = source_is_gzip(&s, &gz);
    vp_source_close(&s);
  }
  files_free(&f);
  if (st == VP_OK) vp_nifti_fill_info(&h, gz, out);
  return st;
}
