/* CPU connected-component labelling against a flood-fill oracle
 * (tests/c/ccl_cases.h): same labels (numbering included) and counts,
 * for 1, 2 and 5 threads (1..8 on many-slab volumes); every dtype through
 * the word-at-a-time scanner; statistics against brute force; refusals. */
#include <stdlib.h>
#include <string.h>

#include "ccl_cases.h"
#include "core/threadpool.h"
#include "ops/ccl.h"
#include "testutil.h"

static void check_case(const ccl_case *c, vp_threadpool *const *pools, int npools) {
  const int64_t n = c->shape[0] * c->shape[1] * c->shape[2];
  int32_t *want = malloc((size_t)(n + 1) * sizeof *want);
  int32_t *got = malloc((size_t)(n + 1) * sizeof *got);
  const int64_t count = ccl_oracle(c, want);
  for (int t = 0; t < npools; t++) {
    int64_t got_count = -1;
    for (int64_t i = 0; i < n; i++) got[i] = 0x5a5a5a5a; /* poison */
    VP_ASSERT_OK(vp_ccl_label_cpu(c->data, c->dtype, c->shape, &c->p, got, &got_count, pools[t]));
    if (got_count != count)
      fail_msg("%s (%lld x %lld x %lld, %d threads): count %lld, oracle %lld", c->name,
               (long long)c->shape[0], (long long)c->shape[1], (long long)c->shape[2],
               pools[t] ? vp_threadpool_size(pools[t]) : 1, (long long)got_count, (long long)count);
    for (int64_t i = 0; i < n; i++)
      if (got[i] != want[i])
        fail_msg("%s (%lld x %lld x %lld, pool %d): voxel %lld labelled %d, oracle %d", c->name,
                 (long long)c->shape[0], (long long)c->shape[1], (long long)c->shape[2], t,
                 (long long)i, got[i], want[i]);
  }
  if (count > 0) {
    int64_t *sz = malloc((size_t)count * sizeof *sz), *bx = malloc((size_t)count * 6 * sizeof *bx);
    int64_t *wsz = malloc((size_t)count * sizeof *sz),
            *wbx = malloc((size_t)count * 6 * sizeof *bx);
    ccl_oracle_stats(want, c->shape, count, wsz, wbx);
    for (int t = 0; t < npools; t++) {
      VP_ASSERT_OK(vp_ccl_stats_cpu(want, c->shape, count, sz, bx, pools[t]));
      assert_memory_equal(sz, wsz, (size_t)count * sizeof *sz);
      assert_memory_equal(bx, wbx, (size_t)count * 6 * sizeof *bx);
    }
    free(sz), free(bx), free(wsz), free(wbx);
  }
  free(want);
  free(got);
}

static vp_threadpool *g_pools[3];

static void test_cases(void **state) {
  (void)state;
  uint64_t rng = vp_test_seed();
  for (int k = 0; k < CCL_NUM_CASES; k++) {
    ccl_case c;
    ccl_case_make(k, &rng, &c);
    check_case(&c, g_pools, 3);
    free(c.data);
  }
}

/* Volumes tall enough for several slabs per thread count, so that the
 * border joins and cross-slab label lookups run. */
static void test_slabs(void **state) {
  (void)state;
  uint64_t rng = vp_test_seed() ^ 0x51ab;
  for (int rep = 0; rep < 6; rep++) {
    ccl_case c;
    memset(&c, 0, sizeof c);
    c.shape[0] = 30 + (int64_t)(ccl_rand(&rng) % 30);
    c.shape[1] = 2 + (int64_t)(ccl_rand(&rng) % 12);
    c.shape[2] = 1 + (int64_t)(ccl_rand(&rng) % 50);
    c.dtype = VP_U8;
    c.p.connectivity = rep % 3 == 0 ? 6 : (rep % 3 == 1 ? 18 : 26);
    c.p.multi_label = rep >= 3;
    ccl_case_alloc(&c);
    const double d = 0.1 + 0.5 * ccl_u01(&rng);
    for (int64_t i = 0; i < c.shape[0] * c.shape[1] * c.shape[2]; i++)
      ccl_set(&c, i, ccl_u01(&rng) < d ? 1 + (int)(ccl_rand(&rng) % 3) : 0);
    snprintf(c.name, sizeof c.name, "slabs density %.2f conn %d multi %d", d, c.p.connectivity,
             c.p.multi_label);
    check_case(&c, g_pools, 3);
    free(c.data);
  }
}

/* The word-at-a-time row scanner: every dtype, widths 1..17 and around
 * the 8-byte words (runs of 1..70 voxels cross them), backgrounds and
 * selections at the dtype's extremes (raw bit patterns such as 0xFF and
 * 0x80), and references that the dtype cannot hold (every voxel
 * foreground, or none). */
static void test_scan_paths(void **state) {
  (void)state;
  uint64_t rng = vp_test_seed() ^ 0x5ca9;
  static const vp_dtype types[10] = {VP_U8,  VP_I8,  VP_U16, VP_I16, VP_U32,
                                     VP_I32, VP_I64, VP_F16, VP_F32, VP_F64};
  static const int64_t widths[] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10,  11, 12,
                                   13, 14, 15, 16, 17, 31, 63, 64, 65, 130, 200};
  const int nw = (int)(sizeof widths / sizeof widths[0]);
  for (int t = 0; t < 10; t++) {
    const vp_dtype dt = types[t];
    /* lo/hi: the dtype's extremes (as doubles that store exactly) */
    double lo = 0, hi = 0;
    switch (dt) {
      case VP_U8: hi = 255; break;
      case VP_I8: lo = -128, hi = 127; break;
      case VP_U16: hi = 65535; break;
      case VP_I16: lo = -32768, hi = 32767; break;
      case VP_U32: hi = 4294967295.0; break;
      case VP_I32: lo = -2147483648.0, hi = 2147483647.0; break;
      case VP_I64: lo = -9223372036854775808.0, hi = 4611686018427387904.0; break;
      default: lo = -2.5, hi = 1024; break;
    }
    const double palette[5] = {0, 1, 2, lo, hi};
    for (int mode = 0; mode < 9; mode++) {
      ccl_case c;
      memset(&c, 0, sizeof c);
      c.dtype = dt;
      c.shape[0] = 1 + (int64_t)(ccl_rand(&rng) % 4);
      c.shape[1] = 1 + (int64_t)(ccl_rand(&rng) % 5);
      c.shape[2] = widths[ccl_rand(&rng) % (uint64_t)nw];
      c.p.connectivity = mode % 3 == 0 ? 6 : (mode % 3 == 1 ? 18 : 26);
      /* 0: bg 0; 1: bg hi; 2: bg lo; 3: bg not held (1e30); 4: bg 0.5;
       * 5: select 2; 6: select lo; 7: select not held; 8: multi, bg hi */
      const double refs[9] = {0, hi, lo, 1e30, 0.5, 2, lo, 1e30, hi};
      c.p.select = mode >= 5 && mode <= 7;
      c.p.multi_label = mode == 8;
      if (c.p.select)
        c.p.select_value = refs[mode];
      else
        c.p.background = refs[mode];
      ccl_case_alloc(&c);
      const int64_t n = c.shape[0] * c.shape[1] * c.shape[2];
      for (int64_t i = 0; i < n;) { /* segments of 1..70 equal values */
        const int64_t len = 1 + (int64_t)(ccl_rand(&rng) % (ccl_rand(&rng) % 2 ? 70 : 5));
        const double v = palette[ccl_rand(&rng) % 5];
        for (int64_t e = i + len < n ? i + len : n; i < e; i++) ccl_set(&c, i, v);
      }
      snprintf(c.name, sizeof c.name, "scan dtype %d mode %d conn %d", (int)dt, mode,
               c.p.connectivity);
      check_case(&c, g_pools, 3);
      free(c.data);
    }
  }
}

/* Every thread count from 1 to 8 on volumes of many slabs: the seams
 * between slabs, and their gathering, at every position. */
static void test_thread_counts(void **state) {
  (void)state;
  uint64_t rng = vp_test_seed() ^ 0x7e4d;
  vp_threadpool *pools[8];
  for (int t = 0; t < 8; t++) VP_ASSERT_OK(vp_threadpool_create(t + 1, &pools[t]));
  for (int rep = 0; rep < 6; rep++) {
    ccl_case c;
    memset(&c, 0, sizeof c);
    c.shape[1] = 1 + (int64_t)(ccl_rand(&rng) % 6);
    c.shape[0] =
        (8 * (c.shape[1] + 1) * 64 + c.shape[1] - 1) / c.shape[1] + (int64_t)(ccl_rand(&rng) % 40);
    c.shape[2] = 1 + (int64_t)(ccl_rand(&rng) % 40);
    c.dtype = rep % 2 ? VP_U8 : VP_I16;
    c.p.connectivity = rep % 3 == 0 ? 6 : (rep % 3 == 1 ? 18 : 26);
    c.p.multi_label = rep >= 3;
    ccl_case_alloc(&c);
    const double d = 0.15 + 0.4 * ccl_u01(&rng);
    for (int64_t i = 0; i < c.shape[0] * c.shape[1] * c.shape[2]; i++)
      ccl_set(&c, i, ccl_u01(&rng) < d ? 1 + (int)(ccl_rand(&rng) % 2) : 0);
    snprintf(c.name, sizeof c.name, "threads 1..8 density %.2f conn %d multi %d", d,
             c.p.connectivity, c.p.multi_label);
    check_case(&c, pools, 8);
    free(c.data);
  }
  for (int t = 0; t < 8; t++) vp_threadpool_destroy(pools[t]);
}

static void test_refusals(void **state) {
  (void)state;
  uint8_t in[8] = {0};
  int32_t lab[8];
  int64_t count;
  vp_ccl_params p = {.connectivity = 5};
  const int64_t s3[3] = {2, 2, 2}, s2[3] = {1, 2, 4};
  assert_int_equal(vp_ccl_label_cpu(in, VP_U8, s3, &p, lab, &count, NULL), VP_ERR_INVALID_ARG);
  assert_non_null(strstr(vp_last_error(), "connectivity 5"));
  p.connectivity = 4;
  assert_int_equal(vp_ccl_label_cpu(in, VP_U8, s3, &p, lab, &count, NULL), VP_ERR_INVALID_ARG);
  assert_non_null(strstr(vp_last_error(), "2-D"));
  VP_ASSERT_OK(vp_ccl_label_cpu(in, VP_U8, s2, &p, lab, &count, NULL));
  assert_int_equal(count, 0);
  /* 2^31 voxels: refused before anything is read or allocated */
  const int64_t big[3] = {2, 32768, 32768};
  p.connectivity = 6;
  assert_int_equal(vp_ccl_label_cpu(in, VP_U8, big, &p, lab, &count, NULL), VP_ERR_UNSUPPORTED);
  assert_non_null(strstr(vp_last_error(), "2^31-1"));
  /* a label beyond the count is named, not written out of bounds */
  int32_t bad[8] = {0, 1, 0, 0, 3, 0, 0, 0};
  int64_t sizes[2], boxes[12];
  assert_int_equal(vp_ccl_stats_cpu(bad, s3, 2, sizes, boxes, NULL), VP_ERR_INVALID_ARG);
  assert_non_null(strstr(vp_last_error(), "label 3 at element 4"));
}

static int setup(void **state) {
  (void)state;
  const int sizes[3] = {1, 2, 5};
  for (int i = 0; i < 3; i++)
    if (vp_threadpool_create(sizes[i], &g_pools[i]) != VP_OK) return -1;
  return 0;
}
static int teardown(void **state) {
  (void)state;
  for (int i = 0; i < 3; i++) vp_threadpool_destroy(g_pools[i]);
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_cases),      cmocka_unit_test(test_slabs),
      cmocka_unit_test(test_scan_paths), cmocka_unit_test(test_thread_counts),
      cmocka_unit_test(test_refusals),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
