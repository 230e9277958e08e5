/* .npy reading and writing against files whose bytes the test builds
 * itself: every dtype, header versions 1/2/3 and spellings, big endian,
 * Fortran order, regions with every policy, counted bytes, the malformed
 * corpus in tests/data/bad/npy_*. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/dtype.h"
#include "core/status.h"
#include "io/formats.h"
#include "io/region.h"
#include "testutil.h"

static const size_t k_size[VP_DTYPE_COUNT] = {1, 1, 2, 2, 4, 4, 8, 2, 4, 8};
static const char *k_code[VP_DTYPE_COUNT] = {"u1", "i1", "u2", "i2", "u4",
                                             "i4", "i8", "f2", "f4", "f8"};

/* A .npy file from a header dict given verbatim (padded with spaces and a
 * newline to a multiple of 64, as NumPy pads) and raw data bytes. */
static unsigned char *make_npy(int major, const char *dict, const void *data, size_t ndata,
                               size_t *out_n) {
  size_t pre = major == 1 ? 10 : 12, dl = strlen(dict);
  size_t hl = (pre + dl + 1 + 63) / 64 * 64 - pre;
  size_t n = pre + hl + ndata;
  unsigned char *b = malloc(n);
  memcpy(b, "\x93NUMPY", 6);
  b[6] = (unsigned char)major;
  b[7] = 0;
  for (size_t i = 0; i < pre - 8; i++) b[8 + i] = (unsigned char)(hl >> (8 * i));
  memcpy(b + pre, dict, dl);
  memset(b + pre + dl, ' ', hl - dl - 1);
  b[pre + hl - 1] = '\n';
  if (ndata) memcpy(b + pre + hl, data, ndata);
  *out_n = n;
  return b;
}

static void write_npy(const char *path, int major, const char *dict, const void *data,
                      size_t ndata) {
  size_t n;
  unsigned char *b = make_npy(major, dict, data, ndata, &n);
  vp_test_write_file(path, b, n);
  free(b);
}

/* Random bytes that are valid values (finite floats) for dtype t. */
static void random_values(vp_dtype t, void *buf, size_t count, uint64_t *rng) {
  unsigned char *p = buf;
  for (size_t i = 0; i < count; i++) {
    uint64_t r = vp_test_rand(rng);
    if (t == VP_F16) {
      uint16_t h = (uint16_t)r;
      if ((h & 0x7c00) == 0x7c00) h &= 0xbfff;
      memcpy(p + 2 * i, &h, 2);
    } else if (t == VP_F32) {
      float f = (float)((double)(int64_t)r / 9.2e15);
      memcpy(p + 4 * i, &f, 4);
    } else if (t == VP_F64) {
      double f = (double)(int64_t)r / 3.3e12;
      memcpy(p + 8 * i, &f, 8);
    } else {
      memcpy(p + k_size[t] * i, &r, k_size[t]);
    }
  }
}

static vp_tensor *load_ok(const char *path, const vp_load_opts *o) {
  vp_tensor *t = NULL;
  VP_ASSERT_OK(vp_load(path, o, &t));
  return t;
}

static void test_round_trip_every_dtype(void **state) {
  (void)state;
  uint64_t rng = vp_test_seed() ^ 0x1111;
  const int64_t shapes[][4] = {{3, 4, 5, 6}, {1, 7, 1, 2}, {0, 3, 2, 2}};
  const int ndims[] = {4, 3, 2, 1, 0};
  for (int t = 0; t < VP_DTYPE_COUNT; t++) {
    for (int si = 0; si < 3; si++) {
      for (int ni = 0; ni < 5; ni++) {
        int nd = ndims[ni];
        vp_tensor *a = NULL;
        VP_ASSERT_OK(vp_tensor_create((vp_dtype)t, nd, shapes[si], VP_MEM_HOST, 0, &a));
        random_values((vp_dtype)t, vp_tensor_data(a), (size_t)vp_tensor_numel(a), &rng);
        const char *path = vp_test_path("rt.npy");
        VP_ASSERT_OK(vp_save(path, a, NULL));
        /* the header: version 1.0, data at a multiple of 64, '\n' before it */
        size_t n;
        unsigned char *raw = vp_test_read_file(path, &n);
        assert_memory_equal(raw, "\x93NUMPY\x01\x00", 8);
        size_t hl = raw[8] | (size_t)raw[9] << 8;
        assert_int_equal((10 + hl) % 64, 0);
        assert_int_equal(raw[10 + hl - 1], '\n');
        assert_int_equal(n, 10 + hl + vp_tensor_nbytes(a));
        char want[32];
        snprintf(want, sizeof want, "'descr': '%c%s'", k_size[t] == 1 ? '|' : '<', k_code[t]);
        raw[10 + hl - 1] = 0;
        if (!strstr((char *)raw + 10, want)) fail_msg("header %s lacks %s", raw + 10, want);
        free(raw);
        vp_tensor *b = load_ok(path, NULL);
        assert_int_equal(vp_tensor_dtype(b), t);
        assert_int_equal(vp_tensor_ndim(b), nd);
        for (int i = 0; i < nd; i++) assert_int_equal(vp_tensor_shape(b)[i], shapes[si][i]);
        assert_memory_equal(vp_tensor_data(b), vp_tensor_data(a), vp_tensor_nbytes(a));
        vp_tensor_release(b);
        vp_tensor_release(a);
      }
    }
  }
}

/* Header spellings NumPy or other writers produce, in versions 1, 2, 3. */
static void test_header_spellings(void **state) {
  (void)state;
  int16_t vals[12];
  for (int i = 0; i < 12; i++) vals[i] = (int16_t)(i * 1000 - 5000);
  const struct {
    int major;
    const char *dict;
    int ndim;
    int64_t shape[3];
  } cases[] = {
      {1, "{'descr': '<i2', 'fortran_order': False, 'shape': (3, 4), }", 2, {3, 4}},
      {1, "{'shape': (3, 4), 'fortran_order': False, 'descr': '<i2'}", 2, {3, 4}},
      {2, "{\"descr\":\"<i2\",\"fortran_order\":False,\"shape\":(12,)}", 1, {12}},
      {3,
       "{ 'fortran_order' : False , 'descr' : '<i2' , 'shape' : ( 2 , 3 , 2 , ) , }",
       3,
       {2, 3, 2}},
      {1, "{'descr': 'i2', 'fortran_order': False, 'shape': (12L,), }", 1, {12}},
      {1, "{'descr': '=i2', 'fortran_order': False, 'shape': (2,6), }", 2, {2, 6}},
      {2, "{'descr': '<i2', 'fortran_order': False, 'shape': (1, 12), }", 2, {1, 12}},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    const char *path = vp_test_path("spell.npy");
    write_npy(path, cases[c].major, cases[c].dict, vals, sizeof vals);
    vp_tensor *t = load_ok(path, NULL);
    assert_int_equal(vp_tensor_dtype(t), VP_I16);
    assert_int_equal(vp_tensor_ndim(t), cases[c].ndim);
    for (int a = 0; a < cases[c].ndim; a++)
      assert_int_equal(vp_tensor_shape(t)[a], cases[c].shape[a]);
    assert_memory_equal(vp_tensor_data(t), vals, sizeof vals);
    vp_tensor_release(t);
  }
  /* a scalar, and a v3 header with UTF-8 padding text after the dict
   * replaced by spaces (the dict itself is ASCII) */
  double x = -2.75;
  const char *path = vp_test_path("scalar.npy");
  write_npy(path, 3, "{'descr': '<f8', 'fortran_order': False, 'shape': (), }", &x, 8);
  vp_tensor *t = load_ok(path, NULL);
  assert_int_equal(vp_tensor_ndim(t), 0);
  assert_true(*(double *)vp_tensor_data(t) == -2.75);
  vp_tensor_release(t);
  /* a header longer than 64 KiB (version 2.0) */
  size_t big = 70000;
  char *dict = malloc(big + 100);
  int n = snprintf(dict, big + 100, "{'descr': '<i2', 'fortran_order': False, 'shape': (12,)");
  memset(dict + n, ' ', big);
  strcpy(dict + n + big, "}");
  write_npy(path, 2, dict, vals, sizeof vals);
  free(dict);
  t = load_ok(path, NULL);
  assert_memory_equal(vp_tensor_data(t), vals, sizeof vals);
  vp_tensor_release(t);
  /* bool loads as uint8 */
  uint8_t flags[5] = {1, 0, 0, 1, 1};
  write_npy(path, 1, "{'descr': '|b1', 'fortran_order': False, 'shape': (5,), }", flags, 5);
  t = load_ok(path, NULL);
  assert_int_equal(vp_tensor_dtype(t), VP_U8);
  assert_memory_equal(vp_tensor_data(t), flags, 5);
  vp_tensor_release(t);
}

/* Big-endian files: the test writes the bytes most significant first. */
static void test_big_endian(void **state) {
  (void)state;
  uint64_t rng = vp_test_seed() ^ 0x2222;
  for (int t = 0; t < VP_DTYPE_COUNT; t++) {
    size_t es = k_size[t], count = 2 * 3 * 5;
    unsigned char *native = malloc(count * es), *be = malloc(count * es);
    random_values((vp_dtype)t, native, count, &rng);
    for (size_t i = 0; i < count; i++) {
      uint64_t v = 0;
      memcpy(&v, native + i * es, es); /* little-endian host */
      for (size_t b = 0; b < es; b++) be[i * es + b] = (unsigned char)(v >> (8 * (es - 1 - b)));
    }
    char dict[128];
    snprintf(dict, sizeof dict, "{'descr': '%c%s', 'fortran_order': False, 'shape': (2, 3, 5), }",
             es == 1 ? '|' : '>', k_code[t]);
    const char *path = vp_test_path("be.npy");
    write_npy(path, 1, dict, be, count * es);
    vp_tensor *a = load_ok(path, NULL);
    assert_int_equal(vp_tensor_dtype(a), t);
    assert_memory_equal(vp_tensor_data(a), native, count * es);
    vp_tensor_release(a);
    vp_file_info info;
    VP_ASSERT_OK(vp_file_info_read(path, &info));
    assert_int_equal(info.big_endian, es > 1);
    /* a region of a big-endian file, half outside, padded: values swapped,
     * fill intact */
    vp_load_opts o;
    vp_load_opts_init(&o);
    o.roi_ndim = 2;
    o.roi_start[0] = 1;
    o.roi_start[1] = 3;
    o.roi_shape[0] = 3;
    o.roi_shape[1] = 4;
    o.oob = VP_OOB_PAD;
    o.fill = 7;
    a = load_ok(path, &o);
    const unsigned char *d = vp_tensor_data(a);
    unsigned char fill[8];
    vp_fill_element((vp_dtype)t, 7, fill);
    for (int i = 0; i < 2; i++)
      for (int j = 0; j < 3; j++)
        for (int k = 0; k < 4; k++) {
          const unsigned char *got = d + ((i * 3 + j) * 4 + k) * es;
          int jj = j + 1, kk = k + 3;
          if (jj < 3 && kk < 5)
            assert_memory_equal(got, native + ((i * 3 + jj) * 5 + kk) * es, es);
          else
            assert_memory_equal(got, fill, es);
        }
    vp_tensor_release(a);
    free(native);
    free(be);
  }
}

/* Fortran order: element (i, j, k) of a (D0, D1, D2) array is stored at
 * i + D0 * (j + D1 * k). */
static void test_fortran_order(void **state) {
  (void)state;
  uint64_t rng = vp_test_seed() ^ 0x3333;
  const int64_t D0 = 4, D1 = 5, D2 = 6;
  float c[4][5][6], f[4 * 5 * 6];
  for (int i = 0; i < D0; i++)
    for (int j = 0; j < D1; j++)
      for (int k = 0; k < D2; k++) {
        c[i][j][k] = (float)(vp_test_rand(&rng) % 100000) - 50000.f;
        f[i + D0 * (j + D1 * k)] = c[i][j][k];
      }
  const char *path = vp_test_path("fortran.npy");
  write_npy(path, 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (4, 5, 6), }", f, sizeof f);
  for (int mm = 0; mm < 2; mm++) {
    vp_load_opts o;
    vp_load_opts_init(&o);
    o.use_mmap = mm;
    vp_tensor *t = load_ok(path, &o);
    assert_int_equal(vp_tensor_ndim(t), 3);
    assert_int_equal(vp_tensor_shape(t)[0], 4);
    assert_int_equal(vp_tensor_shape(t)[2], 6);
    assert_memory_equal(vp_tensor_data(t), c, sizeof c);
    vp_tensor_release(t);
    /* random regions with every policy; only the region's bytes are read
     * when it lies inside */
    for (int trial = 0; trial < 200; trial++) {
      vp_load_opts_init(&o);
      o.use_mmap = mm;
      o.roi_ndim = 3;
      o.oob = (vp_oob_policy)(trial % 3);
      o.fill = -1;
      const int64_t dims[3] = {D0, D1, D2};
      for (int a = 0; a < 3; a++) {
        o.roi_start[a] = (int64_t)(vp_test_rand(&rng) % (uint64_t)(dims[a] + 4)) - 2;
        o.roi_shape[a] = (int64_t)(vp_test_rand(&rng) % (uint64_t)(dims[a] + 2));
        if (o.oob == VP_OOB_ERROR) {
          if (o.roi_start[a] < 0) o.roi_start[a] = 0;
          if (o.roi_start[a] > dims[a]) o.roi_start[a] = dims[a];
          if (o.roi_start[a] + o.roi_shape[a] > dims[a]) o.roi_shape[a] = dims[a] - o.roi_start[a];
        }
      }
      vp_io_reset_bytes_read();
      t = load_ok(path, &o);
      int64_t st[3], sh[3];
      for (int a = 0; a < 3; a++) {
        st[a] = o.roi_start[a];
        sh[a] = o.roi_shape[a];
        if (o.oob == VP_OOB_TRIM) {
          int64_t lo = st[a] < 0 ? 0 : st[a] > dims[a] ? dims[a] : st[a];
          int64_t hi = st[a] + sh[a] > dims[a] ? dims[a] : st[a] + sh[a];
          st[a] = lo;
          sh[a] = hi > lo ? hi - lo : 0;
        }
        assert_int_equal(vp_tensor_shape(t)[a], sh[a]);
      }
      const float *d = vp_tensor_data(t);
      int64_t inside = 0;
      for (int64_t i = 0; i < sh[0]; i++)
        for (int64_t j = 0; j < sh[1]; j++)
          for (int64_t k = 0; k < sh[2]; k++) {
            int64_t x = st[0] + i, y = st[1] + j, z = st[2] + k;
            int in = x >= 0 && x < D0 && y >= 0 && y < D1 && z >= 0 && z < D2;
            inside += in;
            float want = in ? c[x][y][z] : -1.f;
            float got = d[(i * sh[1] + j) * sh[2] + k];
            if (got != want)
              fail_msg("trial %d policy %d at (%lld,%lld,%lld): %g != %g", trial, (int)o.oob,
                       (long long)i, (long long)j, (long long)k, got, want);
          }
      uint64_t header = 128;
      assert_int_equal(vp_io_bytes_read(), header + (uint64_t)inside * 4);
      vp_tensor_release(t);
    }
  }
}

/* Element (i0..) of the whole array from a region oracle, for a 4-D u16. */
static void test_region_policies(void **state) {
  (void)state;
  uint64_t rng = vp_test_seed() ^ 0x4444;
  const int64_t S[4] = {2, 7, 9, 11};
  const int64_t N = 2 * 7 * 9 * 11;
  uint16_t *a = malloc((size_t)N * 2);
  for (int64_t i = 0; i < N; i++) a[i] = (uint16_t)vp_test_rand(&rng);
  const char *path = vp_test_path("roi.npy");
  write_npy(path, 1, "{'descr': '<u2', 'fortran_order': False, 'shape': (2, 7, 9, 11), }", a,
            (size_t)N * 2);
  for (int trial = 0; trial < 600; trial++) {
    vp_load_opts o;
    vp_load_opts_init(&o);
    o.use_mmap = trial & 1;
    o.oob = (vp_oob_policy)(trial % 3);
    o.fill = 70000.0; /* saturates to 65535 */
    o.roi_ndim = 1 + (int)(vp_test_rand(&rng) % 4);
    int lead = 4 - o.roi_ndim;
    int64_t st[4] = {0}, sh[4];
    for (int a4 = 0; a4 < 4; a4++) sh[a4] = S[a4];
    for (int k = 0; k < o.roi_ndim; k++) {
      int64_t dim = S[lead + k];
      int64_t s0 = (int64_t)(vp_test_rand(&rng) % (uint64_t)(2 * dim + 1)) - dim / 2;
      int64_t len = (int64_t)(vp_test_rand(&rng) % (uint64_t)(dim + 3));
      if (vp_test_rand(&rng) % 4 == 0) { /* whole axis, to exercise coalescing */
        s0 = 0;
        len = dim;
      }
      o.roi_start[k] = s0;
      o.roi_shape[k] = len;
      st[lead + k] = s0;
      sh[lead + k] = len;
    }
    int oob = 0;
    for (int a4 = 0; a4 < 4; a4++) oob |= st[a4] < 0 || st[a4] + sh[a4] > S[a4];
    vp_tensor *t = NULL;
    vp_status s = vp_load(path, &o, &t);
    if (o.oob == VP_OOB_ERROR && oob) {
      assert_int_equal(s, VP_ERR_OUT_OF_BOUNDS);
      assert_null(t);
      assert_non_null(strstr(vp_last_error(), "roi.npy"));
      assert_non_null(strstr(vp_last_error(), "axis"));
      continue;
    }
    if (s != VP_OK) fail_msg("trial %d: %s", trial, vp_last_error());
    if (o.oob == VP_OOB_TRIM)
      for (int a4 = 0; a4 < 4; a4++) {
        int64_t lo = st[a4] < 0 ? 0 : st[a4] > S[a4] ? S[a4] : st[a4];
        int64_t hi = st[a4] + sh[a4] > S[a4] ? S[a4] : st[a4] + sh[a4];
        st[a4] = lo;
        sh[a4] = hi > lo ? hi - lo : 0;
      }
    for (int a4 = 0; a4 < 4; a4++) assert_int_equal(vp_tensor_shape(t)[a4], sh[a4]);
    const uint16_t *d = vp_tensor_data(t);
    int64_t o_i = 0;
    for (int64_t i = 0; i < sh[0]; i++)
      for (int64_t j = 0; j < sh[1]; j++)
        for (int64_t k = 0; k < sh[2]; k++)
          for (int64_t l = 0; l < sh[3]; l++, o_i++) {
            int64_t x[4] = {st[0] + i, st[1] + j, st[2] + k, st[3] + l};
            int in = 1;
            for (int a4 = 0; a4 < 4; a4++) in &= x[a4] >= 0 && x[a4] < S[a4];
            uint16_t want = in ? a[((x[0] * S[1] + x[1]) * S[2] + x[2]) * S[3] + x[3]] : 65535;
            if (d[o_i] != want)
              fail_msg("trial %d: element %lld: %u != %u", trial, (long long)o_i, d[o_i], want);
          }
    vp_tensor_release(t);
  }
  free(a);
}

/* A 3-D region inside the volume reads exactly its own bytes (plus the
 * header), by pread and by mmap; the whole volume reads the file once. */
static void test_region_bytes(void **state) {
  (void)state;
  const int64_t D = 40, H = 50, W = 60;
  size_t nbytes = (size_t)(D * H * W) * 4;
  float *v = malloc(nbytes);
  for (int64_t i = 0; i < D * H * W; i++) v[i] = (float)i;
  const char *path = vp_test_path("bytes.npy");
  write_npy(path, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (40, 50, 60), }", v,
            nbytes);
  struct stat sb;
  assert_int_equal(stat(path, &sb), 0);
  uint64_t header = (uint64_t)sb.st_size - nbytes;
  for (int mm = 0; mm < 2; mm++) {
    vp_load_opts o;
    vp_load_opts_init(&o);
    o.use_mmap = mm;
    o.roi_ndim = 3;
    const int64_t st[3] = {5, 7, 9}, sh[3] = {20, 16, 32};
    for (int a = 0; a < 3; a++) {
      o.roi_start[a] = st[a];
      o.roi_shape[a] = sh[a];
    }
    vp_io_reset_bytes_read();
    vp_tensor *t = load_ok(path, &o);
    uint64_t region = (uint64_t)(sh[0] * sh[1] * sh[2]) * 4;
    assert_int_equal(vp_io_bytes_read(), header + region);
    assert_true(vp_io_bytes_read() <= header + region * 3 / 2);
    const float *d = vp_tensor_data(t);
    for (int64_t i = 0; i < sh[0]; i++)
      for (int64_t j = 0; j < sh[1]; j++)
        for (int64_t k = 0; k < sh[2]; k++)
          assert_true(d[(i * sh[1] + j) * sh[2] + k] ==
                      (float)(((st[0] + i) * H + st[1] + j) * W + st[2] + k));
    vp_tensor_release(t);
    /* the whole volume: the data read once */
    vp_load_opts_init(&o);
    o.use_mmap = mm;
    vp_io_reset_bytes_read();
    t = load_ok(path, &o);
    assert_int_equal(vp_io_bytes_read(), header + nbytes);
    assert_memory_equal(vp_tensor_data(t), v, nbytes);
    vp_tensor_release(t);
    /* an empty region reads no data */
    vp_load_opts_init(&o);
    o.use_mmap = mm;
    o.roi_ndim = 2;
    o.roi_start[0] = 3;
    o.roi_shape[0] = 0;
    o.roi_shape[1] = 10;
    vp_io_reset_bytes_read();
    t = load_ok(path, &o);
    assert_int_equal(vp_io_bytes_read(), header);
    assert_int_equal(vp_tensor_numel(t), 0);
    assert_int_equal(vp_tensor_shape(t)[0], 40);
    assert_int_equal(vp_tensor_shape(t)[1], 0);
    vp_tensor_release(t);
    /* entirely outside under pad: all fill, no data read */
    vp_load_opts_init(&o);
    o.use_mmap = mm;
    o.roi_ndim = 1;
    o.roi_start[0] = -100;
    o.roi_shape[0] = 3;
    o.oob = VP_OOB_PAD;
    o.fill = 2.5;
    vp_io_reset_bytes_read();
    t = load_ok(path, &o);
    assert_int_equal(vp_io_bytes_read(), header);
    for (int64_t i = 0; i < vp_tensor_numel(t); i++)
      assert_true(((float *)vp_tensor_data(t))[i] == 2.5f);
    vp_tensor_release(t);
    /* entirely outside under trim: empty */
    o.oob = VP_OOB_TRIM;
    t = load_ok(path, &o);
    assert_int_equal(vp_tensor_numel(t), 0);
    vp_tensor_release(t);
  }
  free(v);
}

static void test_info(void **state) {
  (void)state;
  const char *path = vp_test_path("info.npy");
  int64_t z[6] = {0};
  write_npy(path, 2, "{'descr': '>i8', 'fortran_order': True, 'shape': (2, 3), }", z, sizeof z);
  vp_file_info info;
  vp_io_reset_bytes_read();
  VP_ASSERT_OK(vp_file_info_read(path, &info));
  assert_int_equal(vp_io_bytes_read(), 128); /* the header only */
  assert_string_equal(info.format, "npy");
  assert_int_equal(info.dtype, VP_I64);
  assert_int_equal(info.stored_dtype, VP_I64);
  assert_int_equal(info.ndim, 2);
  assert_int_equal(info.shape[0], 2);
  assert_int_equal(info.shape[1], 3);
  assert_int_equal(info.big_endian, 1);
  assert_int_equal(info.fortran_order, 1);
  assert_int_equal(info.compressed, 0);
  for (int i = 0; i < 3; i++) assert_true(info.spacing[i] == 1.0);
  for (int i = 0; i < 16; i++) assert_true(info.affine[i] == (i % 5 == 0 ? 1.0 : 0.0));
  assert_true(info.scl_slope == 1.0 && info.scl_inter == 0.0);
}

static void test_fill_conversion(void **state) {
  (void)state;
  unsigned char e[8];
  vp_fill_element(VP_U8, -3, e);
  assert_int_equal(e[0], 0);
  vp_fill_element(VP_U8, 300, e);
  assert_int_equal(e[0], 255);
  vp_fill_element(VP_U8, 2.5, e); /* ties to even */
  assert_int_equal(e[0], 2);
  vp_fill_element(VP_U8, 3.5, e);
  assert_int_equal(e[0], 4);
  vp_fill_element(VP_I8, -200, e);
  assert_int_equal((int8_t)e[0], -128);
  int16_t i16;
  vp_fill_element(VP_I16, -1.6, &i16);
  assert_int_equal(i16, -2);
  vp_fill_element(VP_I16, NAN, &i16);
  assert_int_equal(i16, 0);
  uint32_t u32;
  vp_fill_element(VP_U32, 1e12, &u32);
  assert_true(u32 == UINT32_MAX);
  int64_t i64;
  vp_fill_element(VP_I64, 1e30, &i64);
  assert_true(i64 == INT64_MAX);
  vp_fill_element(VP_I64, -1e30, &i64);
  assert_true(i64 == INT64_MIN);
  uint16_t h;
  vp_fill_element(VP_F16, 1e6, &h);
  assert_true(vp_half_to_float(h) == 65504.f);
  vp_fill_element(VP_F16, -0.5, &h);
  assert_true(vp_half_to_float(h) == -0.5f);
  float f;
  vp_fill_element(VP_F32, 1e300, &f);
  assert_true(isfinite(f) && f > 3e38f);
  double d;
  vp_fill_element(VP_F64, -7.25, &d);
  assert_true(d == -7.25);
}

static int is_npy_bad(const char *n) {
  size_t len = strlen(n);
  return strncmp(n, "npy_", 4) == 0 && len > 4 && strcmp(n + len - 4, ".npy") == 0;
}

/* Every malformed file: an error status (not OK), the file named in the
 * message, nothing returned; info, pread, mmap and region loads alike. */
static void test_bad_files(void **state) {
  (void)state;
  DIR *dir = opendir(VP_TEST_DATA_DIR "/bad");
  assert_non_null(dir);
  struct dirent *e;
  int count = 0;
  while ((e = readdir(dir))) {
    if (!is_npy_bad(e->d_name)) continue;
    count++;
    char path[1024];
    snprintf(path, sizeof path, "%s/bad/%s", VP_TEST_DATA_DIR, e->d_name);
    for (int mode = 0; mode < 4; mode++) {
      vp_load_opts o;
      vp_load_opts_init(&o);
      o.use_mmap = mode == 1;
      if (mode == 2) {
        o.roi_ndim = 1;
        o.roi_shape[0] = 2;
        o.oob = VP_OOB_PAD;
      }
      vp_status s;
      vp_tensor *t = (vp_tensor *)0x1;
      vp_file_info info;
      if (mode == 3) {
        s = vp_file_info_read(path, &info);
      } else {
        s = vp_load(path, &o, &t);
        assert_null(t);
      }
      if (s == VP_OK) fail_msg("%s (mode %d) loaded without error", e->d_name, mode);
      if (!strstr(vp_last_error(), e->d_name))
        fail_msg("%s: the message does not name the file: %s", e->d_name, vp_last_error());
    }
    /* the same bytes from memory, as the fuzzer feeds them */
    size_t n;
    void *buf = vp_test_read_file(path, &n);
    vp_source s;
    vp_source_from_memory(&s, buf, n, e->d_name);
    vp_tensor *t = NULL;
    assert_int_not_equal(vp_npy_load_source(&s, NULL, &t), VP_OK);
    assert_null(t);
    assert_non_null(strstr(vp_last_error(), e->d_name));
    free(buf);
  }
  closedir(dir);
  assert_true(count >= 10);
}

/* Specific messages: the descr, the truncated sizes. */
static void test_bad_messages(void **state) {
  (void)state;
  const struct {
    const char *file;
    vp_status status;
    const char *needle;
  } cases[] = {
      {"npy_descr_c8.npy", VP_ERR_UNSUPPORTED, "<c8"},
      {"npy_descr_object.npy", VP_ERR_UNSUPPORTED, "|O"},
      {"npy_descr_u8.npy", VP_ERR_UNSUPPORTED, "<u8"},
      {"npy_descr_unicode.npy", VP_ERR_UNSUPPORTED, "<U4"},
      {"npy_truncated_data.npy", VP_ERR_FORMAT, "expected 48 bytes"},
      {"npy_negative_dim.npy", VP_ERR_FORMAT, "negative"},
      {"npy_dims_overflow.npy", VP_ERR_OVERFLOW, "overflow"},
      {"npy_version_9_9.npy", VP_ERR_UNSUPPORTED, "9.9"},
      {"npy_header_len_past_end.npy", VP_ERR_FORMAT, "header_len"},
      {"npy_wrong_magic.npy", VP_ERR_FORMAT, "magic"},
      {"npy_ndim6.npy", VP_ERR_UNSUPPORTED, "dimensions"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char path[1024];
    snprintf(path, sizeof path, "%s/bad/%s", VP_TEST_DATA_DIR, cases[i].file);
    vp_tensor *t = NULL;
    vp_status s = vp_load(path, NULL, &t);
    if (s != cases[i].status || !strstr(vp_last_error(), cases[i].needle))
      fail_msg("%s: %s: %s (wanted %s with '%s')", cases[i].file, vp_status_name(s),
               vp_last_error(), vp_status_name(cases[i].status), cases[i].needle);
  }
}

/* A save that cannot complete leaves nothing behind. */
static void test_save_failure(void **state) {
  (void)state;
  int64_t shape[1] = {4};
  vp_tensor *t = NULL;
  VP_ASSERT_OK(vp_tensor_create(VP_F32, 1, shape, VP_MEM_HOST, 0, &t));
  memset(vp_tensor_data(t), 0, 16);
  const char *path = "/nonexistent-dir/out.npy";
  assert_int_not_equal(vp_save(path, t, NULL), VP_OK);
  assert_non_null(strstr(vp_last_error(), "out.npy"));
  vp_tensor_release(t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip_every_dtype),
      cmocka_unit_test(test_header_spellings),
      cmocka_unit_test(test_big_endian),
      cmocka_unit_test(test_fortran_order),
      cmocka_unit_test(test_region_policies),
      cmocka_unit_test(test_region_bytes),
      cmocka_unit_test(test_info),
      cmocka_unit_test(test_fill_conversion),
      cmocka_unit_test(test_bad_files),
      cmocka_unit_test(test_bad_messages),
      cmocka_unit_test(test_save_failure),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
