/* NIfTI-1/2 header parsing and validation, with the fixes nibabel applies
 * when it loads a header (Nifti1Header.check_fix), the affine nibabel picks
 * (get_best_affine) and its read-scaling rules, so that a load matches
 * np.asanyarray(nib.load(path).dataobj). */
#include "io/nifti_header.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/dtype.h"
#include "core/status.h"

/* Field offsets of the two layouts. */
enum {
  N1_DIM = 40,
  N1_DATATYPE = 70,
  N1_PIXDIM = 76,
  N1_VOX_OFFSET = 108,
  N1_SCL_SLOPE = 112,
  N1_SCL_INTER = 116,
  N1_QFORM_CODE = 252,
  N1_SFORM_CODE = 254,
  N1_QUATERN = 256,
  N1_QOFFSET = 268,
  N1_SROW = 280,
  N1_MAGIC = 344,
  N2_MAGIC = 4,
  N2_DATATYPE = 12,
  N2_DIM = 16,
  N2_PIXDIM = 104,
  N2_VOX_OFFSET = 168,
  N2_SCL_SLOPE = 176,
  N2_SCL_INTER = 184,
  N2_QFORM_CODE = 344,
  N2_SFORM_CODE = 348,
  N2_QUATERN = 352,
  N2_QOFFSET = 376,
  N2_SROW = 400,
};

typedef struct {
  const unsigned char *p;
  int swap;
} reader;

static void get(const reader *r, size_t off, void *dst, size_t n) {
  memcpy(dst, r->p + off, n);
  if (r->swap) vp_byteswap(dst, 1, n);
}
static int64_t rd_i16(const reader *r, size_t off) {
  int16_t v;
  get(r, off, &v, 2);
  return v;
}
static int64_t rd_i32(const reader *r, size_t off) {
  int32_t v;
  get(r, off, &v, 4);
  return v;
}
static int64_t rd_i64(const reader *r, size_t off) {
  int64_t v;
  get(r, off, &v, 8);
  return v;
}
static double rd_f32(const reader *r, size_t off) {
  float v;
  get(r, off, &v, 4);
  return v;
}
static double rd_f64(const reader *r, size_t off) {
  double v;
  get(r, off, &v, 8);
  return v;
}

const char *vp_nifti_datatype_name(int code) {
  switch (code) {
    case 1: return "binary";
    case 2: return "uint8";
    case 4: return "int16";
    case 8: return "int32";
    case 16: return "float32";
    case 32: return "complex64";
    case 64: return "float64";
    case 128: return "RGB24";
    case 256: return "int8";
    case 512: return "uint16";
    case 768: return "uint32";
    case 1024: return "int64";
    case 1280: return "uint64";
    case 1536: return "float128";
    case 1792: return "complex128";
    case 2048: return "complex256";
    case 2304: return "RGBA32";
    default: return "unknown";
  }
}

static int dtype_of_code(int code, vp_dtype *out) {
  switch (code) {
    case 2: *out = VP_U8; return 1;
    case 256: *out = VP_I8; return 1;
    case 512: *out = VP_U16; return 1;
    case 4: *out = VP_I16; return 1;
    case 768: *out = VP_U32; return 1;
    case 8: *out = VP_I32; return 1;
    case 1024: *out = VP_I64; return 1;
    case 16: *out = VP_F32; return 1;
    case 64: *out = VP_F64; return 1;
    default: return 0;
  }
}

static vp_status detect_version(const unsigned char *p, size_t n, const char *name,
                                vp_nifti_header *h) {
  if (n < 4)
    return vp_fail(VP_ERR_FORMAT, "%s: truncated header: the file has only %zu bytes", name, n);
  int32_t raw, swapped;
  memcpy(&raw, p, 4);
  swapped = raw;
  vp_byteswap(&swapped, 1, 4);
  const uint16_t probe = 1;
  int host_big = *(const unsigned char *)&probe == 0;
  if (raw == VP_NIFTI1_HDR_BYTES || raw == VP_NIFTI2_HDR_BYTES) {
    h->swapped = 0;
    h->version = raw == VP_NIFTI1_HDR_BYTES ? 1 : 2;
  } else if (swapped == VP_NIFTI1_HDR_BYTES || swapped == VP_NIFTI2_HDR_BYTES) {
    h->swapped = 1;
    h->version = swapped == VP_NIFTI1_HDR_BYTES ? 1 : 2;
  } else {
    return vp_fail(VP_ERR_FORMAT,
                   "%s: not a NIfTI file: sizeof_hdr is %d (expected 348 or 540 in either byte "
                   "order)",
                   name, (int)raw);
  }
  h->big_endian = h->swapped ? !host_big : host_big;
  size_t need = h->version == 1 ? VP_NIFTI1_HDR_BYTES : VP_NIFTI2_HDR_BYTES;
  if (n < need)
    return vp_fail(VP_ERR_FORMAT,
                   "%s: truncated header: NIfTI-%d needs %zu bytes, the file has %zu", name,
                   h->version, need, n);
  return VP_OK;
}

static vp_status check_magic(const unsigned char *p, const vp_nifti_header *h, const char *name,
                             int *single) {
  const unsigned char *m = p + (h->version == 1 ? N1_MAGIC : N2_MAGIC);
  char want = h->version == 1 ? '1' : '2';
  int ok = m[0] == 'n' && (m[1] == '+' || m[1] == 'i') && m[2] == want && m[3] == 0;
  if (!ok) {
    char shown[5];
    for (int i = 0; i < 4; i++) shown[i] = m[i] >= 32 && m[i] < 127 ? (char)m[i] : '?';
    shown[4] = 0;
    return vp_fail(VP_ERR_FORMAT, "%s: bad NIfTI-%d magic \"%s\" (expected \"n+%c\" or \"ni%c\")",
                   name, h->version, shown, want, want);
  }
  *single = m[1] == '+';
  if (h->version == 2) {
    /* nibabel accepts the EOL check bytes intact or all zero. */
    static const unsigned char eol[4] = {13, 10, 26, 10};
    if (memcmp(p + 8, eol, 4) != 0 && (p[8] | p[9] | p[10] | p[11]) != 0)
      return vp_fail(VP_ERR_FORMAT,
                     "%s: NIfTI-2 end-of-line check bytes are damaged (file altered by a text "
                     "mode transfer?)",
                     name);
  }
  return VP_OK;
}

/* Reversed NIfTI dims into array order; unit axes past the 5th dropped. */
static vp_status derive_shape(vp_nifti_header *h, const char *name) {
  int nd = (int)h->dim[0];
  int64_t d[8];
  int keep = 0;
  if (nd < 1 || nd > 7) return vp_fail(VP_ERR_FORMAT, "%s: dim[0] = %d is outside 1..7", name, nd);
  for (int i = 1; i <= nd; i++) d[keep++] = h->dim[i];
  /* Drop unit axes among the non-spatial ones, highest first, until 5 remain. */
  int dropped[8] = {0}, drop = 0;
  for (int k = nd - 1; k >= 3 && nd - drop > VP_MAX_NDIM; k--)
    if (d[k] == 1) dropped[k] = 1, drop++;
  keep = 0;
  for (int i = 0; i < nd; i++)
    if (!dropped[i]) d[keep++] = d[i];
  if (keep > VP_MAX_NDIM)
    return vp_fail(VP_ERR_UNSUPPORTED,
                   "%s: %d axes of more than one voxel; at most %d are supported", name, keep,
                   VP_MAX_NDIM);
  h->ndim = keep;
  for (int i = 0; i < keep; i++) h->shape[i] = d[keep - 1 - i];
  int64_t numel, bytes;
  if (vp_shape_numel(h->shape, keep, &numel, "dims") != VP_OK ||
      vp_mul_overflows_i64(numel, (int64_t)vp_dtype_size(h->stored), &bytes))
    return vp_fail(VP_ERR_OVERFLOW, "%s: the data size (product of dim[1..%d]) overflows", name,
                   nd);
  h->data_bytes = (uint64_t)bytes;
  h->spatial_ndim = nd < 3 ? nd : 3;
  for (int i = 0; i < 3; i++) h->spacing[i] = 1.0;
  for (int i = 0; i < h->spatial_ndim; i++) h->spacing[i] = h->pixdim[h->spatial_ndim - i];
  return VP_OK;
}

static vp_status derive_scaling(vp_nifti_header *h, const char *name) {
  h->scaled = 0;
  h->slope = 1.0;
  h->inter = 0.0;
  double s = h->scl_slope, b = h->scl_inter;
  if (s == 0 || !isfinite(s)) return VP_OK; /* nibabel: no valid scaling */
  if (!isfinite(b))
    return vp_fail(VP_ERR_FORMAT, "%s: scl_slope = %g is valid but scl_inter = %g is not finite",
                   name, s, b);
  if (s == 1 && b == 0) return VP_OK;
  h->scaled = 1;
  h->slope = s;
  h->inter = b;
  if (!vp_dtype_is_float(h->stored)) {
    /* nibabel refuses integer scaling that overflows its widest float. */
    static const double lo[] = {0, -128, 0, -32768, 0, -2147483648.0, -9223372036854775808.0};
    static const double hi[] = {
        255, 127, 65535, 32767, 4294967295.0, 2147483647.0, 9223372036854775807.0};
    double a = lo[h->stored] * s + b, z = hi[h->stored] * s + b;
    if (!isfinite(a) || !isfinite(z))
      return vp_fail(VP_ERR_FORMAT,
                     "%s: scl_slope = %g, scl_inter = %g overflow float64 for %s data", name, s, b,
                     vp_dtype_name(h->stored));
  }
  return VP_OK;
}

/* nibabel's quaternions.fillpositive + quat2mat, in long double as nibabel
 * computes them (numpy's longdouble). */
static vp_status qform_affine(const vp_nifti_header *h, const double q[3], const double off[3],
                              const char *name, double *aff) {
  long double b = q[0], c = q[1], d = q[2];
  long double w2 = 1.0L - (b * b + c * c + d * d);
  long double thresh = 3.0L * (h->version == 1 ? FLT_EPSILON : DBL_EPSILON);
  long double a;
  if (fabsl(w2) < thresh)
    a = 0;
  else if (w2 < 0)
    return vp_fail(VP_ERR_FORMAT,
                   "%s: qform quaternion (b, c, d) = (%g, %g, %g) has b^2 + c^2 + d^2 > 1", name,
                   q[0], q[1], q[2]);
  else
    a = sqrtl(w2);
  long double R[3][3];
  long double nq = a * a + b * b + c * c + d * d;
  if (nq < DBL_EPSILON) {
    memset(R, 0, sizeof R);
    R[0][0] = R[1][1] = R[2][2] = 1;
  } else {
    long double s = 2.0L / nq;
    long double X = b * s, Y = c * s, Z = d * s;
    long double wX = a * X, wY = a * Y, wZ = a * Z;
    long double xX = b * X, xY = b * Y, xZ = b * Z;
    long double yY = c * Y, yZ = c * Z, zZ = d * Z;
    R[0][0] = 1.0L - (yY + zZ), R[0][1] = xY - wZ, R[0][2] = xZ + wY;
    R[1][0] = xY + wZ, R[1][1] = 1.0L - (xX + zZ), R[1][2] = yZ - wX;
    R[2][0] = xZ - wY, R[2][1] = yZ + wX, R[2][2] = 1.0L - (xX + yY);
  }
  long double vox[3] = {h->pixdim[1], h->pixdim[2], h->pixdim[3] * h->pixdim[0]};
  for (int i = 0; i < 3; i++) {
    for (int j = 0; j < 3; j++) aff[i * 4 + j] = (double)(R[i][j] * vox[j]);
    aff[i * 4 + 3] = off[i];
  }
  return VP_OK;
}

/* nibabel's shape_zoom_affine with the x axis flipped: the centre of the
 * volume at the origin. */
static void base_affine(const vp_nifti_header *h, double *aff) {
  int nd = (int)h->dim[0];
  for (int i = 0; i < 3; i++) {
    double extent = i < nd ? (double)h->dim[i + 1] : 1.0;
    double zoom = i < nd ? h->pixdim[i + 1] : 1.0;
    if (i == 0) zoom = -zoom;
    aff[i * 4 + i] = zoom;
    aff[i * 4 + 3] = -((extent - 1) / 2.0) * zoom;
  }
}

static vp_status derive_affine(vp_nifti_header *h, const reader *r, const char *name) {
  double *aff = h->affine;
  memset(aff, 0, 16 * sizeof *aff);
  aff[15] = 1;
  int v1 = h->version == 1;
  if (h->sform_code != 0) {
    for (int i = 0; i < 12; i++)
      aff[i] = v1 ? rd_f32(r, N1_SROW + 4 * (size_t)i) : rd_f64(r, N2_SROW + 8 * (size_t)i);
  } else if (h->qform_code != 0) {
    double q[3], off[3];
    for (int i = 0; i < 3; i++) {
      q[i] = v1 ? rd_f32(r, N1_QUATERN + 4 * (size_t)i) : rd_f64(r, N2_QUATERN + 8 * (size_t)i);
      off[i] = v1 ? rd_f32(r, N1_QOFFSET + 4 * (size_t)i) : rd_f64(r, N2_QOFFSET + 8 * (size_t)i);
    }
    VP_TRY(qform_affine(h, q, off, name, aff));
  } else {
    base_affine(h, aff);
  }
  for (int i = 0; i < 16; i++)
    if (!isfinite(aff[i]))
      return vp_fail(VP_ERR_FORMAT, "%s: the %s affine has a non-finite element", name,
                     h->sform_code   ? "sform"
                     : h->qform_code ? "qform"
                                     : "base");
  return VP_OK;
}

vp_status vp_nifti_parse_header(const void *buf, size_t n, int single_file, const char *name,
                                vp_nifti_header *h) {
  memset(h, 0, sizeof *h);
  const unsigned char *p = buf;
  VP_TRY(detect_version(p, n, name, h));
  VP_TRY(check_magic(p, h, name, &h->single));
  reader r = {p, h->swapped};
  int v1 = h->version == 1;
  size_t hdr_bytes = v1 ? VP_NIFTI1_HDR_BYTES : VP_NIFTI2_HDR_BYTES;
  h->has_extensions = n > hdr_bytes && p[hdr_bytes] != 0;

  for (int i = 0; i < 8; i++) {
    h->dim[i] = v1 ? rd_i16(&r, N1_DIM + 2 * (size_t)i) : rd_i64(&r, N2_DIM + 8 * (size_t)i);
    h->pixdim[i] =
        v1 ? rd_f32(&r, N1_PIXDIM + 4 * (size_t)i) : rd_f64(&r, N2_PIXDIM + 8 * (size_t)i);
  }
  if (h->dim[0] < 1 || h->dim[0] > 7)
    return vp_fail(VP_ERR_FORMAT, "%s: dim[0] = %lld is outside 1..7", name, (long long)h->dim[0]);
  for (int i = 1; i <= h->dim[0]; i++)
    if (h->dim[i] < 0)
      return vp_fail(VP_ERR_FORMAT, "%s: dim[%d] = %lld is negative", name, i,
                     (long long)h->dim[i]);

  h->datatype = (int)(v1 ? rd_i16(&r, N1_DATATYPE) : rd_i16(&r, N2_DATATYPE));
  if (!dtype_of_code(h->datatype, &h->stored))
    return vp_fail(VP_ERR_UNSUPPORTED,
                   "%s: datatype %d (%s) is not supported (supported: uint8 int8 uint16 int16 "
                   "uint32 int32 int64 float32 float64)",
                   name, h->datatype, vp_nifti_datatype_name(h->datatype));

  /* check_fix: spatial pixdims made positive, zeros set to 1; qfac is 1
   * unless it is exactly -1. */
  for (int i = 1; i <= 3; i++) {
    if (!isfinite(h->pixdim[i]))
      return vp_fail(VP_ERR_FORMAT, "%s: pixdim[%d] = %g is not finite", name, i, h->pixdim[i]);
    h->pixdim[i] = h->pixdim[i] == 0 ? 1.0 : fabs(h->pixdim[i]);
  }
  if (h->pixdim[0] != -1) h->pixdim[0] = 1;

  /* Data offset: truncated toward zero as nibabel's int(vox_offset). */
  double off = v1 ? rd_f32(&r, N1_VOX_OFFSET) : (double)rd_i64(&r, N2_VOX_OFFSET);
  if (!isfinite(off) || off < 0 || off > 9.0e15)
    return vp_fail(VP_ERR_FORMAT, "%s: vox_offset = %g is invalid", name, off);
  h->data_offset = (uint64_t)off;
  if (single_file) {
    uint64_t min_off = hdr_bytes + 4;
    if (h->data_offset == 0) h->data_offset = min_off; /* unset: data follows the header */
    if (h->data_offset < min_off)
      return vp_fail(VP_ERR_FORMAT,
                     "%s: vox_offset = %llu lies inside the header (at least %llu for a "
                     "single-file NIfTI-%d)",
                     name, (unsigned long long)h->data_offset, (unsigned long long)min_off,
                     h->version);
  }

  h->scl_slope = v1 ? rd_f32(&r, N1_SCL_SLOPE) : rd_f64(&r, N2_SCL_SLOPE);
  h->scl_inter = v1 ? rd_f32(&r, N1_SCL_INTER) : rd_f64(&r, N2_SCL_INTER);
  h->qform_code = (int)(v1 ? rd_i16(&r, N1_QFORM_CODE) : rd_i32(&r, N2_QFORM_CODE));
  h->sform_code = (int)(v1 ? rd_i16(&r, N1_SFORM_CODE) : rd_i32(&r, N2_SFORM_CODE));
  /* nibabel's fix: codes outside its table become 0 (unknown). */
  if (h->qform_code < 0 || h->qform_code > 5) h->qform_code = 0;
  if (h->sform_code < 0 || h->sform_code > 5) h->sform_code = 0;

  VP_TRY(derive_shape(h, name));
  VP_TRY(derive_scaling(h, name));
  VP_TRY(derive_affine(h, &r, name));
  return VP_OK;
}

vp_dtype vp_nifti_output_dtype(const vp_nifti_header *h, int raw) {
  return h->scaled && !raw ? VP_F64 : h->stored;
}

/* numpy evaluates arr * slope and then + inter as two rounded operations;
 * a fused multiply-add would round once and differ in the last bit. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#define VP_NO_CONTRACT
#elif defined(__GNUC__)
#define VP_NO_CONTRACT __attribute__((optimize("fp-contract=off")))
#else
#define VP_NO_CONTRACT
#endif

#define SCALE_LOOP(T)                                             \
  do {                                                            \
    const T *src = in;                                            \
    if (h->slope != 1 && h->inter != 0)                           \
      for (size_t i = 0; i < n; i++) {                            \
        double y = (double)src[i] * s;                            \
        out[i] = y + b;                                           \
      }                                                           \
    else if (h->slope != 1)                                       \
      for (size_t i = 0; i < n; i++) out[i] = (double)src[i] * s; \
    else                                                          \
      for (size_t i = 0; i < n; i++) out[i] = (double)src[i] + b; \
  } while (0)

VP_NO_CONTRACT void vp_nifti_scale(const vp_nifti_header *h, const void *in, vp_dtype in_dtype,
                                   double *out, size_t n) {
  const double s = h->slope, b = h->inter;
  switch (in_dtype) {
    case VP_U8: SCALE_LOOP(uint8_t); break;
    case VP_I8: SCALE_LOOP(int8_t); break;
    case VP_U16: SCALE_LOOP(uint16_t); break;
    case VP_I16: SCALE_LOOP(int16_t); break;
    case VP_U32: SCALE_LOOP(uint32_t); break;
    case VP_I32: SCALE_LOOP(int32_t); break;
    case VP_I64: SCALE_LOOP(int64_t); break;
    case VP_F32: SCALE_LOOP(float); break;
    case VP_F64: SCALE_LOOP(double); break;
    default: break;
  }
}

void vp_nifti_fill_info(const vp_nifti_header *h, int compressed, vp_file_info *out) {
  memset(out, 0, sizeof *out);
  snprintf(out->format, sizeof out->format, "nifti%d", h->version);
  out->dtype = vp_nifti_output_dtype(h, 0);
  out->stored_dtype = h->stored;
  out->ndim = h->ndim;
  for (int i = 0; i < h->ndim; i++) out->shape[i] = h->shape[i];
  for (int i = 0; i < 3; i++) out->spacing[i] = h->spacing[i];
  memcpy(out->affine, h->affine, sizeof out->affine);
  out->scl_slope = h->slope;
  out->scl_inter = h->inter;
  out->big_endian = h->big_endian;
  out->fortran_order = 0;
  out->compressed = compressed;
}
