/* NIfTI-1/2: headers built by hand here (both versions, both byte orders)
 * are the oracle for the reader; the reader is then the check for the
 * writer, plus the writer's header bytes read field by field. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "core/tensor.h"
#include "io/formats.h"
#include "io/nifti_header.h"
#include "testutil.h"

typedef struct {
  int version, swap;
  int64_t dim[8];
  int datatype, bitpix;
  double pixdim[8];
  double vox_offset, slope, inter;
  int qcode, scode;
  double quat[3], qoff[3], srow[12];
} hdr_spec;

static void put(unsigned char *b, size_t off, const void *v, size_t n, int swap) {
  memcpy(b + off, v, n);
  if (swap) vp_byteswap(b + off, 1, n);
}
static void p16(unsigned char *b, size_t o, int64_t v, int s) {
  int16_t x = (int16_t)v;
  put(b, o, &x, 2, s);
}
static void p32(unsigned char *b, size_t o, int64_t v, int s) {
  int32_t x = (int32_t)v;
  put(b, o, &x, 4, s);
}
static void p64(unsigned char *b, size_t o, int64_t v, int s) { put(b, o, &v, 8, s); }
static void pf(unsigned char *b, size_t o, double v, int s) {
  float x = (float)v;
  put(b, o, &x, 4, s);
}
static void pd(unsigned char *b, size_t o, double v, int s) { put(b, o, &v, 8, s); }

/* Writes a header (+ zero extension flag) laid out from the NIfTI spec. */
static size_t build(const hdr_spec *h, unsigned char *b) {
  int s = h->swap;
  memset(b, 0, 544);
  if (h->version == 1) {
    p32(b, 0, 348, s);
    for (int i = 0; i < 8; i++) p16(b, 40 + 2 * i, h->dim[i], s);
    p16(b, 70, h->datatype, s);
    p16(b, 72, h->bitpix, s);
    for (int i = 0; i < 8; i++) pf(b, 76 + 4 * i, h->pixdim[i], s);
    pf(b, 108, h->vox_offset, s);
    pf(b, 112, h->slope, s);
    pf(b, 116, h->inter, s);
    p16(b, 252, h->qcode, s);
    p16(b, 254, h->scode, s);
    for (int i = 0; i < 3; i++)
      pf(b, 256 + 4 * i, h->quat[i], s), pf(b, 268 + 4 * i, h->qoff[i], s);
    for (int i = 0; i < 12; i++) pf(b, 280 + 4 * i, h->srow[i], s);
    memcpy(b + 344, "n+1", 4);
    return 352;
  }
  p32(b, 0, 540, s);
  memcpy(b + 4, "n+2\0\r\n\032\n", 8);
  p16(b, 12, h->datatype, s);
  p16(b, 14, h->bitpix, s);
  for (int i = 0; i < 8; i++) p64(b, 16 + 8 * i, h->dim[i], s);
  for (int i = 0; i < 8; i++) pd(b, 104 + 8 * i, h->pixdim[i], s);
  p64(b, 168, (int64_t)h->vox_offset, s);
  pd(b, 176, h->slope, s);
  pd(b, 184, h->inter, s);
  p32(b, 344, h->qcode, s);
  p32(b, 348, h->scode, s);
  for (int i = 0; i < 3; i++) pd(b, 352 + 8 * i, h->quat[i], s), pd(b, 376 + 8 * i, h->qoff[i], s);
  for (int i = 0; i < 12; i++) pd(b, 400 + 8 * i, h->srow[i], s);
  return 544;
}

static hdr_spec default_spec(int version, int swap) {
  hdr_spec h;
  memset(&h, 0, sizeof h);
  h.version = version;
  h.swap = swap;
  int64_t d[8] = {3, 5, 4, 3, 1, 1, 1, 1};
  memcpy(h.dim, d, sizeof d);
  h.datatype = 4;
  h.bitpix = 16;
  for (int i = 0; i < 8; i++) h.pixdim[i] = 1;
  h.vox_offset = version == 1 ? 352 : 544;
  h.slope = 1;
  h.scode = 1;
  double s[12] = {2, 0, 0, -7, 0, 3, 0, 5, 0, 0, 4, 1.5};
  memcpy(h.srow, s, sizeof s);
  return h;
}

static const struct {
  int code;
  vp_dtype dt;
} kCodes[] = {{2, VP_U8},  {256, VP_I8},   {512, VP_U16}, {4, VP_I16}, {768, VP_U32},
              {8, VP_I32}, {1024, VP_I64}, {16, VP_F32},  {64, VP_F64}};

/* Random element values that every dtype holds exactly. */
static void fill_random(void *p, vp_dtype dt, size_t n, uint64_t *rng) {
  for (size_t i = 0; i < n; i++) {
    uint64_t r = vp_test_rand(rng);
    switch (dt) {
      case VP_U8: ((uint8_t *)p)[i] = (uint8_t)r; break;
      case VP_I8: ((int8_t *)p)[i] = (int8_t)r; break;
      case VP_U16: ((uint16_t *)p)[i] = (uint16_t)r; break;
      case VP_I16: ((int16_t *)p)[i] = (int16_t)r; break;
      case VP_U32: ((uint32_t *)p)[i] = (uint32_t)r; break;
      case VP_I32: ((int32_t *)p)[i] = (int32_t)r; break;
      case VP_I64: ((int64_t *)p)[i] = (int64_t)r; break;
      case VP_F16:
        ((uint16_t *)p)[i] = vp_float_to_half((float)((int64_t)(r % 2001) - 1000) / 8);
        break;
      case VP_F32: ((float *)p)[i] = (float)((double)(int64_t)r / 1e12); break;
      case VP_F64: ((double *)p)[i] = (double)(int64_t)r / 1e9; break;
      default: break;
    }
  }
}

/* Writes header + data (data given in host order; swapped when h->swap). */
static const char *write_image(const char *name, const hdr_spec *h, const void *data, size_t esize,
                               size_t n) {
  unsigned char hdr[544];
  size_t hl = build(h, hdr);
  size_t off = (size_t)h->vox_offset;
  unsigned char *file = calloc(1, off + esize * n);
  memcpy(file, hdr, hl);
  memcpy(file + off, data, esize * n);
  if (h->swap) vp_byteswap(file + off, n, esize);
  const char *p = vp_test_path(name);
  vp_test_write_file(p, file, off + esize * n);
  free(file);
  return p;
}

static void test_versions_and_byte_orders(void **state) {
  (void)state;
  uint64_t rng = vp_test_seed() ^ 0x11;
  for (int version = 1; version <= 2; version++)
    for (int swap = 0; swap <= 1; swap++)
      for (size_t k = 0; k < sizeof kCodes / sizeof kCodes[0]; k++) {
        hdr_spec h = default_spec(version, swap);
        h.datatype = kCodes[k].code;
        vp_dtype dt = kCodes[k].dt;
        size_t es = vp_dtype_size(dt), n = 5 * 4 * 3;
        h.bitpix = (int)(8 * es);
        void *data = malloc(es * n);
        fill_random(data, dt, n, &rng);
        const char *p = write_image("v.nii", &h, data, es, n);
        vp_tensor *t = NULL;
        VP_ASSERT_OK(vp_load(p, NULL, &t));
        assert_int_equal(vp_tensor_dtype(t), dt);
        assert_int_equal(vp_tensor_ndim(t), 3);
        const int64_t *sh = vp_tensor_shape(t);
        assert_true(sh[0] == 3 && sh[1] == 4 && sh[2] == 5);
        /* file order is x fastest: (x, y, z) -> array [z][y][x] is the same offset */
        assert_memory_equal(vp_tensor_data(t), data, es * n);
        double aff[16];
        vp_tensor_affine(t, aff);
        for (int i = 0; i < 12; i++) assert_true(aff[i] == h.srow[i]);
        vp_file_info info;
        VP_ASSERT_OK(vp_file_info_read(p, &info));
        assert_string_equal(info.format, version == 1 ? "nifti1" : "nifti2");
        const uint16_t probe = 1;
        int host_big = *(const unsigned char *)&probe == 0;
        assert_int_equal(info.big_endian, swap ? !host_big : host_big);
        assert_int_equal(info.stored_dtype, dt);
        vp_tensor_release(t);
        free(data);
      }
}

static void load_affine(const hdr_spec *h, double *aff, double *spacing) {
  int16_t data[60] = {0};
  const char *p = write_image("a.nii", h, data, 2, 60);
  vp_tensor *t = NULL;
  VP_ASSERT_OK(vp_load(p, NULL, &t));
  vp_tensor_affine(t, aff);
  vp_tensor_spacing(t, spacing);
  vp_tensor_release(t);
}

static void assert_affine(const double *got, const double *want, double tol) {
  for (int i = 0; i < 16; i++)
    if (fabs(got[i] - want[i]) > tol)
      fail_msg("affine[%d] = %.9g, expected %.9g", i, got[i], want[i]);
}

static void test_affines(void **state) {
  (void)state;
  for (int version = 1; version <= 2; version++) {
    double aff[16], sp[3];
    /* sform only */
    hdr_spec h = default_spec(version, 0);
    double want_s[16] = {2, 0, 0, -7, 0, 3, 0, 5, 0, 0, 4, 1.5, 0, 0, 0, 1};
    load_affine(&h, aff, sp);
    assert_affine(aff, want_s, 0);
    /* qform only: 90 degrees about z, qfac -1, pixdims 2, 3, 4 (one negative) */
    h.scode = 0;
    h.qcode = 1;
    h.quat[2] = sqrt(0.5);
    h.qoff[0] = 10, h.qoff[1] = -20, h.qoff[2] = 30;
    h.pixdim[0] = -1, h.pixdim[1] = 2, h.pixdim[2] = -3, h.pixdim[3] = 4;
    double want_q[16] = {0, -3, 0, 10, 2, 0, 0, -20, 0, 0, -4, 30, 0, 0, 0, 1};
    load_affine(&h, aff, sp);
    assert_affine(aff, want_q, 1e-6);
    assert_true(sp[0] == 4 && sp[1] == 3 && sp[2] == 2);
    /* both: sform wins */
    h.scode = 2;
    load_affine(&h, aff, sp);
    assert_affine(aff, want_s, 0);
    /* an unknown sform code counts as 0: the qform is used */
    h.scode = 9;
    load_affine(&h, aff, sp);
    assert_affine(aff, want_q, 1e-6);
    /* neither: the base affine, centred, x flipped; zero pixdim -> 1 */
    h.scode = 0;
    h.qcode = 0;
    h.pixdim[3] = 0;
    double want_b[16] = {-2, 0, 0, 4, 0, 3, 0, -4.5, 0, 0, 1, -1, 0, 0, 0, 1};
    load_affine(&h, aff, sp);
    assert_affine(aff, want_b, 0);
    assert_true(sp[0] == 1 && sp[1] == 3 && sp[2] == 2);
  }
}

static void test_scaling(void **state) {
  (void)state;
  uint64_t rng = vp_test_seed() ^ 0x33;
  int16_t data[60];
  fill_random(data, VP_I16, 60, &rng);
  struct {
    double slope, inter;
    int scaled;
  } cases[] = {{2.5, -1.25, 1}, {0, 5, 0}, {NAN, 1, 0}, {1, 0, 0}, {1, 3, 1}, {-0.5, 0, 1}};
  for (int version = 1; version <= 2; version++)
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
      hdr_spec h = default_spec(version, (int)c & 1);
      h.slope = cases[c].slope;
      h.inter = cases[c].inter;
      const char *p = write_image("s.nii", &h, data, 2, 60);
      vp_tensor *t = NULL;
      VP_ASSERT_OK(vp_load(p, NULL, &t));
      if (!cases[c].scaled) {
        assert_int_equal(vp_tensor_dtype(t), VP_I16);
        assert_memory_equal(vp_tensor_data(t), data, sizeof data);
      } else {
        assert_int_equal(vp_tensor_dtype(t), VP_F64);
        const double *d = vp_tensor_data(t);
        for (int i = 0; i < 60; i++) {
          volatile double y = (double)data[i] * cases[c].slope;
          volatile double z = y + cases[c].inter;
          assert_true(d[i] == z);
        }
        vp_file_info info;
        VP_ASSERT_OK(vp_file_info_read(p, &info));
        assert_int_equal(info.dtype, VP_F64);
        assert_true(info.scl_slope == cases[c].slope && info.scl_inter == cases[c].inter);
      }
      vp_tensor_release(t);
      vp_load_opts o;
      vp_load_opts_init(&o);
      o.raw = 1;
      VP_ASSERT_OK(vp_load(p, &o, &t));
      assert_int_equal(vp_tensor_dtype(t), VP_I16);
      assert_memory_equal(vp_tensor_data(t), data, sizeof data);
      vp_tensor_release(t);
    }
  /* float32 data with a slope: float64 out */
  hdr_spec h = default_spec(1, 0);
  h.datatype = 16, h.bitpix = 32, h.slope = 3;
  float f[60];
  fill_random(f, VP_F32, 60, &rng);
  const char *p = write_image("f.nii", &h, f, 4, 60);
  vp_tensor *t = NULL;
  VP_ASSERT_OK(vp_load(p, NULL, &t));
  assert_int_equal(vp_tensor_dtype(t), VP_F64);
  for (int i = 0; i < 60; i++) assert_true(((double *)vp_tensor_data(t))[i] == (double)f[i] * 3);
  vp_tensor_release(t);
}

/* A rotation (random unit quaternion), columns scaled by the spacing,
 * sometimes mirrored, plus an offset. */
static void random_affine(uint64_t *rng, const double *sp_xyz, int mirror, double *aff) {
  double q[4], n = 0;
  for (int i = 0; i < 4; i++)
    q[i] = (double)(vp_test_rand(rng) % 2001) / 1000 - 1, n += q[i] * q[i];
  n = sqrt(n);
  double a = q[0] / n, b = q[1] / n, c = q[2] / n, d = q[3] / n;
  double R[3][3] = {{a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)},
                    {2 * (b * c + a * d), a * a + c * c - b * b - d * d, 2 * (c * d - a * b)},
                    {2 * (b * d - a * c), 2 * (c * d + a * b), a * a + d * d - c * c - b * b}};
  memset(aff, 0, 16 * sizeof *aff);
  for (int i = 0; i < 3; i++) {
    for (int j = 0; j < 3; j++) aff[i * 4 + j] = R[i][j] * sp_xyz[j] * (j == 2 && mirror ? -1 : 1);
    aff[i * 4 + 3] = (double)(vp_test_rand(rng) % 200) - 100;
  }
  aff[15] = 1;
}

static void test_write_read_all_dtypes(void **state) {
  (void)state;
  uint64_t rng = vp_test_seed() ^ 0x44;
  const char *names[] = {"rt.nii", "rt.nii.gz"};
  for (int dt = 0; dt < VP_DTYPE_COUNT; dt++)
    for (int z = 0; z < 2; z++) {
      int64_t shape[4] = {2, 3, 4, 5};
      int ndim = 3 + (dt & 1);
      vp_tensor *t = NULL;
      VP_ASSERT_OK(vp_tensor_create((vp_dtype)dt, ndim, shape + (4 - ndim), VP_MEM_HOST, 0, &t));
      size_t n = (size_t)vp_tensor_numel(t);
      fill_random(vp_tensor_data(t), (vp_dtype)dt, n, &rng);
      double sp[3] = {1.5, 0.75, 2.25}; /* dz, dy, dx */
      VP_ASSERT_OK(vp_tensor_set_spacing(t, 3, sp));
      double sp_xyz[3] = {sp[2], sp[1], sp[0]}, aff[16];
      random_affine(&rng, sp_xyz, dt % 3 == 0, aff);
      VP_ASSERT_OK(vp_tensor_set_affine(t, aff));
      const char *p = vp_test_path(names[z]);
      VP_ASSERT_OK(vp_save(p, t, NULL));
      vp_tensor *b = NULL;
      VP_ASSERT_OK(vp_load(p, NULL, &b));
      vp_dtype want = dt == VP_F16 ? VP_F32 : (vp_dtype)dt;
      assert_int_equal(vp_tensor_dtype(b), want);
      assert_int_equal(vp_tensor_ndim(b), ndim);
      assert_memory_equal(vp_tensor_shape(b), vp_tensor_shape(t), ndim * sizeof(int64_t));
      if (dt == VP_F16) {
        for (size_t i = 0; i < n; i++)
          assert_true(((float *)vp_tensor_data(b))[i] ==
                      vp_half_to_float(((uint16_t *)vp_tensor_data(t))[i]));
      } else {
        assert_memory_equal(vp_tensor_data(b), vp_tensor_data(t), vp_tensor_nbytes(t));
      }
      double bsp[3], baff[16];
      vp_tensor_spacing(b, bsp);
      for (int i = 0; i < 3; i++) assert_true(fabs(bsp[i] - sp[i]) <= 1e-6 * sp[i]);
      vp_tensor_affine(b, baff);
      assert_affine(baff, aff, 1e-4);

      /* the qform the writer derived gives the same affine */
      size_t fn;
      unsigned char *raw = vp_test_read_file(p, &fn);
      if (z == 0) {
        p16(raw, 254, 0, 0); /* sform_code = 0 */
        vp_nifti_header h;
        VP_ASSERT_OK(vp_nifti_parse_header(raw, fn, 1, "rt.nii", &h));
        assert_int_equal(h.qform_code, 1);
        assert_affine(h.affine, aff, 1e-4);
      }
      free(raw);
      vp_tensor_release(b);
      vp_tensor_release(t);
    }
}

static void test_nifti2_written_for_big_extent(void **state) {
  (void)state;
  int64_t shape[3] = {1, 2, 40000};
  vp_tensor *t = NULL;
  VP_ASSERT_OK(vp_tensor_create(VP_U8, 3, shape, VP_MEM_HOST, 0, &t));
  uint64_t rng = vp_test_seed() ^ 0x55;
  fill_random(vp_tensor_data(t), VP_U8, 80000, &rng);
  const char *names[] = {"big.nii", "big.nii.gz"};
  for (int z = 0; z < 2; z++) {
    const char *p = vp_test_path(names[z]);
    VP_ASSERT_OK(vp_save(p, t, NULL));
    vp_file_info info;
    VP_ASSERT_OK(vp_file_info_read(p, &info));
    assert_string_equal(info.format, "nifti2");
    assert_int_equal(info.compressed, z);
    vp_tensor *b = NULL;
    VP_ASSERT_OK(vp_load(p, NULL, &b));
    assert_memory_equal(vp_tensor_data(b), vp_tensor_data(t), 80000);
    vp_tensor_release(b);
  }
  vp_tensor_release(t);
}

static void test_truncated_gz_names_file(void **state) {
  (void)state;
  int64_t shape[3] = {20, 30, 40};
  vp_tensor *t = NULL;
  VP_ASSERT_OK(vp_tensor_create(VP_I16, 3, shape, VP_MEM_HOST, 0, &t));
  uint64_t rng = vp_test_seed() ^ 0x66;
  fill_random(vp_tensor_data(t), VP_I16, 24000, &rng);
  const char *p = vp_test_path("cut.nii.gz");
  VP_ASSERT_OK(vp_save(p, t, NULL));
  vp_tensor_release(t);
  size_t n;
  unsigned char *raw = vp_test_read_file(p, &n);
  size_t cuts[] = {n - 1, n - 8, n / 2, 200, 30};
  for (int i = 0; i < 5; i++) {
    vp_test_write_file(p, raw, cuts[i]);
    vp_tensor *b = NULL;
    assert_int_not_equal(vp_load(p, NULL, &b), VP_OK);
    assert_null(b);
    assert_non_null(strstr(vp_last_error(), p));
    if (!strstr(vp_last_error(), "truncated")) fail_msg("cut at %zu: %s", cuts[i], vp_last_error());
  }
  free(raw);
}

static void test_roi(void **state) {
  (void)state;
  int64_t shape[4] = {2, 6, 7, 8};
  vp_tensor *t = NULL;
  VP_ASSERT_OK(vp_tensor_create(VP_I16, 4, shape, VP_MEM_HOST, 0, &t));
  uint64_t rng = vp_test_seed() ^ 0x88;
  fill_random(vp_tensor_data(t), VP_I16, 2 * 6 * 7 * 8, &rng);
  const int16_t *src = vp_tensor_data(t);
  const char *names[] = {"roi.nii", "roi.nii.gz"};
  for (int z = 0; z < 2; z++) {
    const char *p = vp_test_path(names[z]);
    VP_ASSERT_OK(vp_save(p, t, NULL));
    vp_load_opts o;
    vp_load_opts_init(&o);
    o.roi_ndim = 3;
    o.roi_start[0] = 1, o.roi_start[1] = -1, o.roi_start[2] = 5;
    o.roi_shape[0] = 3, o.roi_shape[1] = 4, o.roi_shape[2] = 5;
    o.oob = VP_OOB_PAD;
    o.fill = -7;
    vp_tensor *b = NULL;
    VP_ASSERT_OK(vp_load(p, &o, &b));
    const int64_t *bs = vp_tensor_shape(b);
    assert_true(bs[0] == 2 && bs[1] == 3 && bs[2] == 4 && bs[3] == 5);
    const int16_t *d = vp_tensor_data(b);
    for (int c = 0; c < 2; c++)
      for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++)
          for (int k = 0; k < 5; k++) {
            int64_t zz = 1 + i, yy = -1 + j, xx = 5 + k;
            int inside = yy >= 0 && yy < 7 && xx < 8;
            int16_t want = inside ? src[((c * 6 + zz) * 7 + yy) * 8 + xx] : -7;
            assert_int_equal(d[((c * 3 + i) * 4 + j) * 5 + k], want);
          }
    vp_tensor_release(b);
    o.oob = VP_OOB_ERROR;
    assert_int_equal(vp_load(p, &o, &b), VP_ERR_OUT_OF_BOUNDS);
    assert_non_null(strstr(vp_last_error(), p));
  }
  vp_tensor_release(t);
}

static void test_bad_files(void **state) {
  (void)state;
  const char *dir = VP_TEST_DATA_DIR "/bad";
  DIR *d = opendir(dir);
  assert_non_null(d);
  int count = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strncmp(e->d_name, "nii", 3) != 0) continue;
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    vp_tensor *t = NULL;
    vp_status s = vp_load(path, NULL, &t);
    if (s == VP_OK) fail_msg("%s loaded", e->d_name);
    assert_null(t);
    if (!strstr(vp_last_error(), e->d_name))
      fail_msg("%s: message \"%s\" does not name the file", e->d_name, vp_last_error());
    /* info reads only the header: it may succeed, never crash */
    vp_file_info info;
    (void)vp_file_info_read(path, &info);
    count++;
  }
  closedir(d);
  assert_true(count >= 20);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_versions_and_byte_orders),
      cmocka_unit_test(test_affines),
      cmocka_unit_test(test_scaling),
      cmocka_unit_test(test_write_read_all_dtypes),
      cmocka_unit_test(test_nifti2_written_for_big_extent),
      cmocka_unit_test(test_truncated_gz_names_file),
      cmocka_unit_test(test_roi),
      cmocka_unit_test(test_bad_files),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
