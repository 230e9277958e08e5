/* CPU connected-component labelling against a flood-fill oracle
 * (tests/c/ccl_cases.h): same labels (numbering included) and counts,
 * for 1, 2 and 5 threads; statistics against brute force; refusals. */
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
               pools[t] ? vp_threadpool_size(pools[t]) : 1, (long long)got_count,
               (long long)count);
    for (int64_t i = 0; i < n; i++)
      if (got[i] != want[i])
        fail_msg("%s (%lld x %lld x %lld, pool %d): voxel %lld labelled %d, oracle %d", c->name,
                 (long long)c->shape[0], (long long)c->shape[1], (long long)c->shape[2], t,
                 (long long)i, got[i], want[i]);
  }
  if (count > 0) {
    int64_t *sz = malloc((size_t)count * sizeof *sz), *bx = malloc((size_t)count * 6 * sizeof *bx);
    int64_t *wsz = malloc((size_t)count * sizeof *sz), *wbx = malloc((size_t)count * 6 * sizeof *bx);
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
      cmocka_unit_test(test_cases),
      cmocka_unit_test(test_slabs),
      cmocka_unit_test(test_refusals),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
