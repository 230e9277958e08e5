/* NIfTI writer: .nii and .nii.gz, NIfTI-1 unless an extent needs NIfTI-2,
 * in the host's byte order (readers detect it from sizeof_hdr). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/dtype.h"
#include "core/status.h"
#include "core/tensor.h"
#include "io/formats.h"
#include "io/gzip.h"
#include "io/nifti_header.h"
#include "io/outfile.h"

static void put(unsigned char *b, size_t off, const void *v, size_t n) { memcpy(b + off, v, n); }
static void put_i16(unsigned char *b, size_t off, int64_t v) {
  int16_t x = (int16_t)v;
  put(b, off, &x, 2);
}
static void put_i32(unsigned char *b, size_t off, int64_t v) {
  int32_t x = (int32_t)v;
  put(b, off, &x, 4);
}
static void put_i64(unsigned char *b, size_t off, int64_t v) { put(b, off, &v, 8); }
static void put_f32(unsigned char *b, size_t off, double v) {
  float x = (float)v;
  put(b, off, &x, 4);
}
static void put_f64(unsigned char *b, size_t off, double v) { put(b, off, &v, 8); }

static int code_of_dtype(vp_dtype t, int *bitpix) {
  static const int codes[VP_DTYPE_COUNT] = {2, 256, 512, 4, 768, 8, 1024, 16, 16, 64};
  static const int bits[VP_DTYPE_COUNT] = {8, 8, 16, 16, 32, 32, 64, 32, 32, 64};
  *bitpix = bits[t];
  return codes[t];
}

/* The qform of an affine: the quaternion of its rotation (columns
 * normalised; a negative determinant goes into qfac by flipping the third
 * column), in the form whose first component is non-negative. */
static void affine_to_quaternion(const double *aff, double q[3], double *qfac) {
  double R[3][3];
  for (int j = 0; j < 3; j++) {
    double n = 0;
    for (int i = 0; i < 3; i++) n += aff[i * 4 + j] * aff[i * 4 + j];
    n = sqrt(n);
    for (int i = 0; i < 3; i++) R[i][j] = n > 0 ? aff[i * 4 + j] / n : (i == j);
  }
  double det = R[0][0] * (R[1][1] * R[2][2] - R[1][2] * R[2][1]) -
               R[0][1] * (R[1][0] * R[2][2] - R[1][2] * R[2][0]) +
               R[0][2] * (R[1][0] * R[2][1] - R[1][1] * R[2][0]);
  *qfac = 1;
  if (det < 0) {
    *qfac = -1;
    for (int i = 0; i < 3; i++) R[i][2] = -R[i][2];
  }
  /* Pick the largest of the four squared components to divide by, for
   * accuracy near 180-degree rotations. */
  double a, b, c, d;
  double tr = R[0][0] + R[1][1] + R[2][2];
  if (1.0 + tr > 0.5) {
    a = 0.5 * sqrt(1.0 + tr);
    b = (R[2][1] - R[1][2]) / (4 * a);
    c = (R[0][2] - R[2][0]) / (4 * a);
    d = (R[1][0] - R[0][1]) / (4 * a);
  } else if (R[0][0] >= R[1][1] && R[0][0] >= R[2][2]) {
    b = 0.5 * sqrt(1.0 + R[0][0] - R[1][1] - R[2][2]);
    a = (R[2][1] - R[1][2]) / (4 * b);
    c = (R[0][1] + R[1][0]) / (4 * b);
    d = (R[0][2] + R[2][0]) / (4 * b);
  } else if (R[1][1] >= R[2][2]) {
    c = 0.5 * sqrt(1.0 + R[1][1] - R[0][0] - R[2][2]);
    a = (R[0][2] - R[2][0]) / (4 * c);
    b = (R[0][1] + R[1][0]) / (4 * c);
    d = (R[1][2] + R[2][1]) / (4 * c);
  } else {
    d = 0.5 * sqrt(1.0 + R[2][2] - R[0][0] - R[1][1]);
    a = (R[1][0] - R[0][1]) / (4 * d);
    b = (R[0][2] + R[2][0]) / (4 * d);
    c = (R[1][2] + R[2][1]) / (4 * d);
  }
  if (a < 0) a = -a, b = -b, c = -c, d = -d;
  /* A sheared or not quite orthogonal matrix gives a non-unit quaternion;
   * readers recompute a from (b, c, d), so make those a unit quaternion's. */
  double norm = sqrt(a * a + b * b + c * c + d * d);
  if (norm > 0) b /= norm, c /= norm, d /= norm;
  q[0] = b;
  q[1] = c;
  q[2] = d;
}

vp_status vp_nifti_build_header(const vp_tensor *t, const char *name, unsigned char *buf,
                                size_t *len, vp_dtype *written) {
  int ndim = t->ndim;
  int64_t dims[8] = {0, 1, 1, 1, 1, 1, 1, 1};
  dims[0] = ndim > 0 ? ndim : 1;
  int v2 = 0;
  for (int a = 0; a < ndim; a++) {
    dims[1 + a] = t->shape[ndim - 1 - a];
    if (dims[1 + a] > 32767) v2 = 1;
  }
  double pixdim[8] = {1, 1, 1, 1, 1, 1, 1, 1};
  int sn = t->spatial_ndim;
  for (int a = 0; a < sn && a < 3; a++) pixdim[1 + a] = t->spacing[sn - 1 - a];
  double q[3], qfac;
  affine_to_quaternion(t->affine, q, &qfac);
  pixdim[0] = qfac;
  for (int i = 0; i < 12; i++)
    if (!isfinite(t->affine[i]))
      return vp_fail(VP_ERR_INVALID_ARG, "%s: the tensor's affine is not finite", name);
  /* NIfTI has no half-precision type: float16 is widened to float32. */
  vp_dtype dt = t->dtype == VP_F16 ? VP_F32 : t->dtype;
  int bitpix;
  int code = code_of_dtype(t->dtype, &bitpix);
  memset(buf, 0, VP_NIFTI_PEEK_BYTES);
  if (!v2) {
    put_i32(buf, 0, VP_NIFTI1_HDR_BYTES);
    buf[38] = 'r';
    for (int i = 0; i < 8; i++) put_i16(buf, 40 + 2 * (size_t)i, dims[i]);
    put_i16(buf, 70, code);
    put_i16(buf, 72, bitpix);
    for (int i = 0; i < 8; i++) put_f32(buf, 76 + 4 * (size_t)i, pixdim[i]);
    put_f32(buf, 108, 352);
    put_f32(buf, 112, 1);
    put_f32(buf, 116, 0);
    buf[123] = 2 | 8; /* mm, seconds */
    memcpy(buf + 148, "voxpipe", 7);
    put_i16(buf, 252, 1);
    put_i16(buf, 254, 1);
    for (int i = 0; i < 3; i++) {
      put_f32(buf, 256 + 4 * (size_t)i, q[i]);
      put_f32(buf, 268 + 4 * (size_t)i, t->affine[i * 4 + 3]);
    }
    for (int i = 0; i < 12; i++) put_f32(buf, 280 + 4 * (size_t)i, t->affine[i]);
    memcpy(buf + 344, "n+1", 4);
    *len = VP_NIFTI1_HDR_BYTES + 4;
  } else {
    put_i32(buf, 0, VP_NIFTI2_HDR_BYTES);
    memcpy(buf + 4, "n+2\0\r\n\032\n", 8);
    put_i16(buf, 12, code);
    put_i16(buf, 14, bitpix);
    for (int i = 0; i < 8; i++) put_i64(buf, 16 + 8 * (size_t)i, dims[i]);
    for (int i = 0; i < 8; i++) put_f64(buf, 104 + 8 * (size_t)i, pixdim[i]);
    put_i64(buf, 168, 544);
    put_f64(buf, 176, 1);
    put_f64(buf, 184, 0);
    memcpy(buf + 240, "voxpipe", 7);
    put_i32(buf, 344, 1);
    put_i32(buf, 348, 1);
    for (int i = 0; i < 3; i++) {
      put_f64(buf, 352 + 8 * (size_t)i, q[i]);
      put_f64(buf, 376 + 8 * (size_t)i, t->affine[i * 4 + 3]);
    }
    for (int i = 0; i < 12; i++) put_f64(buf, 400 + 8 * (size_t)i, t->affine[i]);
    put_i32(buf, 500, 2 | 8);
    *len = VP_NIFTI2_HDR_BYTES + 4;
  }
  *written = dt;
  return VP_OK;
}

static void half_to_float(const uint16_t *src, float *dst, size_t n) {
  for (size_t i = 0; i < n; i++) dst[i] = vp_half_to_float(src[i]);
}

vp_status vp_nifti_save(const char *path, const vp_tensor *t, const vp_save_opts *opts) {
  if (!path || !t) return vp_fail(VP_ERR_INVALID_ARG, "nifti save: NULL argument");
  if (t->mem == VP_MEM_DEVICE)
    return vp_fail(VP_ERR_INVALID_ARG, "%s: cannot save a GPU tensor; copy it to the host first",
                   path);
  vp_save_opts defaults;
  if (!opts) {
    vp_save_opts_init(&defaults);
    opts = &defaults;
  }
  size_t n = strlen(path);
  int gz = n >= 3 && strcasecmp(path + n - 3, ".gz") == 0;
  unsigned char hdr[VP_NIFTI_PEEK_BYTES];
  size_t hlen;
  vp_dtype written;
  VP_TRY(vp_nifti_build_header(t, path, hdr, &hlen, &written));
  size_t numel = (size_t)vp_tensor_numel(t);
  size_t dbytes = numel * vp_dtype_size(written);
  if (numel && dbytes / numel != vp_dtype_size(written))
    return vp_fail(VP_ERR_OVERFLOW, "%s: the data size overflows", path);

  /* The data as written: the tensor's own memory, or widened float16. */
  const void *data = t->data;
  void *converted = NULL;
  void *whole = NULL; /* header + data, for gzip */
  if (gz) {
    if (dbytes > SIZE_MAX - hlen) return vp_fail(VP_ERR_OVERFLOW, "%s: too large", path);
    whole = malloc(hlen + dbytes);
    if (!whole)
      return vp_fail(VP_ERR_NOMEM, "%s: out of memory for %zu bytes", path, hlen + dbytes);
    memcpy(whole, hdr, hlen);
    if (t->dtype == VP_F16)
      half_to_float(t->data, (float *)((char *)whole + hlen), numel);
    else if (dbytes)
      memcpy((char *)whole + hlen, t->data, dbytes);
  } else if (t->dtype == VP_F16) {
    converted = malloc(dbytes ? dbytes : 1);
    if (!converted) return vp_fail(VP_ERR_NOMEM, "%s: out of memory for %zu bytes", path, dbytes);
    half_to_float(t->data, converted, numel);
    data = converted;
  }

  vp_status st = VP_OK;
  void *packed = NULL;
  size_t packed_len = 0;
  if (gz) {
    st = vp_gzip_compress(whole, hlen + dbytes, opts->compress_level, opts->threads, &packed,
                          &packed_len);
    free(whole);
    if (st != VP_OK) return vp_fail_prefix(st, "%s", path);
  }
  vp_outfile f;
  st = vp_outfile_open(&f, path);
  if (st == VP_OK) {
    if (gz) {
      st = vp_outfile_write(&f, packed, packed_len);
    } else {
      st = vp_outfile_write(&f, hdr, hlen);
      if (st == VP_OK) st = vp_outfile_write(&f, data, dbytes);
    }
    if (st == VP_OK)
      st = vp_outfile_commit(&f);
    else
      vp_outfile_abort(&f);
  }
  free(packed);
  free(converted);
  return st;
}
