/* Regions: resolving requests (policies, leading axes, messages) and
 * copying regions out of memory and out of byte sources, against an
 * element-by-element oracle. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "io/region.h"
#include "testutil.h"

static void opts_roi(vp_load_opts *o, vp_oob_policy pol, int n, const int64_t *st,
                     const int64_t *sh) {
  vp_load_opts_init(o);
  o->oob = pol;
  o->roi_ndim = n;
  for (int i = 0; i < n; i++) {
    o->roi_start[i] = st[i];
    o->roi_shape[i] = sh[i];
  }
}

static void test_resolve(void **state) {
  (void)state;
  const int64_t shape[4] = {3, 10, 20, 30};
  vp_region r;
  VP_ASSERT_OK(vp_region_resolve(NULL, 4, shape, "a.npy", &r));
  assert_int_equal(r.ndim, 4);
  for (int a = 0; a < 4; a++) {
    assert_int_equal(r.start[a], 0);
    assert_int_equal(r.shape[a], shape[a]);
  }
  /* trailing axes only: the channel axis stays whole */
  vp_load_opts o;
  const int64_t st[3] = {2, 3, 4}, sh[3] = {5, 6, 7};
  opts_roi(&o, VP_OOB_ERROR, 3, st, sh);
  VP_ASSERT_OK(vp_region_resolve(&o, 4, shape, "a.npy", &r));
  assert_int_equal(r.start[0], 0);
  assert_int_equal(r.shape[0], 3);
  assert_int_equal(r.start[3], 4);
  assert_int_equal(r.shape[2], 6);

  /* error policy: the message names the file and the axis */
  const int64_t st2[3] = {2, 18, 4}, sh2[3] = {5, 6, 7};
  opts_roi(&o, VP_OOB_ERROR, 3, st2, sh2);
  assert_int_equal(vp_region_resolve(&o, 4, shape, "a.npy", &r), VP_ERR_OUT_OF_BOUNDS);
  assert_non_null(strstr(vp_last_error(), "a.npy"));
  assert_non_null(strstr(vp_last_error(), "axis 2"));
  const int64_t st3[1] = {-1}, sh3[1] = {2};
  opts_roi(&o, VP_OOB_ERROR, 1, st3, sh3);
  assert_int_equal(vp_region_resolve(&o, 4, shape, "a.npy", &r), VP_ERR_OUT_OF_BOUNDS);
  assert_non_null(strstr(vp_last_error(), "axis 3"));

  /* pad keeps the request */
  opts_roi(&o, VP_OOB_PAD, 3, st2, sh2);
  VP_ASSERT_OK(vp_region_resolve(&o, 4, shape, "a.npy", &r));
  assert_int_equal(r.start[2], 18);
  assert_int_equal(r.shape[2], 6);

  /* trim clips, possibly to nothing */
  opts_roi(&o, VP_OOB_TRIM, 3, st2, sh2);
  VP_ASSERT_OK(vp_region_resolve(&o, 4, shape, "a.npy", &r));
  assert_int_equal(r.start[2], 18);
  assert_int_equal(r.shape[2], 2);
  const int64_t st4[2] = {-50, 40}, sh4[2] = {10, 5};
  opts_roi(&o, VP_OOB_TRIM, 2, st4, sh4);
  VP_ASSERT_OK(vp_region_resolve(&o, 4, shape, "a.npy", &r));
  assert_int_equal(r.shape[2], 0);
  assert_int_equal(r.start[2], 0);
  assert_int_equal(r.shape[3], 0);
  assert_int_equal(r.start[3], 30);

  /* bad requests */
  const int64_t neg[1] = {-1}, zero[1] = {0};
  opts_roi(&o, VP_OOB_PAD, 1, zero, neg);
  assert_int_equal(vp_region_resolve(&o, 4, shape, "a.npy", &r), VP_ERR_INVALID_ARG);
  assert_non_null(strstr(vp_last_error(), "negative"));
  int64_t five[5] = {0};
  opts_roi(&o, VP_OOB_PAD, 5, five, five);
  assert_int_equal(vp_region_resolve(&o, 4, shape, "a.npy", &r), VP_ERR_INVALID_ARG);
  assert_non_null(strstr(vp_last_error(), "a.npy"));
  const int64_t huge[1] = {INT64_MAX};
  opts_roi(&o, VP_OOB_PAD, 1, huge, huge);
  assert_int_not_equal(vp_region_resolve(&o, 4, shape, "a.npy", &r), VP_OK);
  opts_roi(&o, (vp_oob_policy)7, 1, zero, zero);
  assert_int_equal(vp_region_resolve(&o, 4, shape, "a.npy", &r), VP_ERR_INVALID_ARG);
}

/* Oracle: element `o` of the region output, as a double, or fill. */
static int64_t oracle_src_index(int ndim, const int64_t *shape, const vp_region *r, int64_t o) {
  int64_t idx[VP_MAX_NDIM], src = 0;
  for (int a = ndim - 1; a >= 0; a--) {
    idx[a] = o % r->shape[a];
    o /= r->shape[a];
  }
  for (int a = 0; a < ndim; a++) {
    int64_t x = r->start[a] + idx[a];
    if (x < 0 || x >= shape[a]) return -1;
    src = src * shape[a] + x;
  }
  return src;
}

static void test_copy_random(void **state) {
  (void)state;
  uint64_t rng = vp_test_seed() ^ 0x5151;
  for (int trial = 0; trial < 400; trial++) {
    int ndim = 1 + (int)(vp_test_rand(&rng) % 5);
    int64_t shape[VP_MAX_NDIM], n = 1;
    for (int a = 0; a < ndim; a++) {
      shape[a] = 1 + (int64_t)(vp_test_rand(&rng) % 6);
      n *= shape[a];
    }
    int32_t *src = malloc((size_t)n * 4);
    for (int64_t i = 0; i < n; i++) src[i] = (int32_t)vp_test_rand(&rng);
    vp_load_opts o;
    vp_load_opts_init(&o);
    o.oob = VP_OOB_PAD;
    o.roi_ndim = ndim;
    for (int a = 0; a < ndim; a++) {
      int m = (int)(vp_test_rand(&rng) % 3);
      o.roi_start[a] = m == 0 ? 0 : (int64_t)(vp_test_rand(&rng) % 9) - 3;
      o.roi_shape[a] = m == 0 ? shape[a] : (int64_t)(vp_test_rand(&rng) % 8);
    }
    vp_region r;
    VP_ASSERT_OK(vp_region_resolve(&o, ndim, shape, "mem", &r));
    int64_t on = 1;
    for (int a = 0; a < ndim; a++) on *= r.shape[a];
    int32_t *dst = malloc((size_t)(on ? on : 1) * 4);
    int32_t *dst2 = malloc((size_t)(on ? on : 1) * 4);
    vp_region_copy(src, VP_I32, ndim, shape, &r, -9, dst);
    /* the same through a byte source at an offset, counting bytes */
    size_t off = 77;
    unsigned char *file = malloc(off + (size_t)n * 4);
    memset(file, 0xee, off);
    memcpy(file + off, src, (size_t)n * 4);
    vp_source s;
    vp_source_from_memory(&s, file, off + (size_t)n * 4, "mem.bin");
    vp_io_reset_bytes_read();
    VP_ASSERT_OK(vp_region_read(&s, off, VP_I32, ndim, shape, &r, -9, 0, dst2));
    int64_t inside = 0;
    for (int64_t i = 0; i < on; i++) {
      int64_t si = oracle_src_index(ndim, shape, &r, i);
      int32_t want = si < 0 ? -9 : src[si];
      inside += si >= 0;
      if (dst[i] != want || dst2[i] != want)
        fail_msg("trial %d ndim %d element %lld: %d / %d != %d", trial, ndim, (long long)i, dst[i],
                 dst2[i], want);
    }
    assert_int_equal(vp_io_bytes_read(), (uint64_t)inside * 4);
    free(file);
    free(src);
    free(dst);
    free(dst2);
  }
}

/* A region read from a source too short for it fails with the source's
 * name; swapped=1 stores the fill byte-swapped. */
static void test_read_errors_and_swapped_fill(void **state) {
  (void)state;
  int16_t data[4] = {1, 2, 3, 4};
  vp_source s;
  vp_source_from_memory(&s, data, 6, "short.bin"); /* one element short */
  const int64_t shape[1] = {4};
  vp_region r = {.ndim = 1, .start = {0}, .shape = {4}};
  int16_t out[6];
  assert_int_not_equal(vp_region_read(&s, 0, VP_I16, 1, shape, &r, 0, 0, out), VP_OK);
  assert_non_null(strstr(vp_last_error(), "short.bin"));

  vp_source_from_memory(&s, data, 8, "ok.bin");
  vp_region r2 = {.ndim = 1, .start = {-1}, .shape = {6}};
  VP_ASSERT_OK(vp_region_read(&s, 0, VP_I16, 1, shape, &r2, 258, 1, out));
  assert_int_equal(out[0], 0x0201); /* 258 = 0x0102, stored swapped */
  assert_int_equal(out[1], 1);
  assert_int_equal(out[4], 4);
  assert_int_equal(out[5], 0x0201);
}

/* A 0-D array: the region is the one element. */
static void test_scalar(void **state) {
  (void)state;
  double v = 3.25, out = 0;
  vp_region r;
  VP_ASSERT_OK(vp_region_resolve(NULL, 0, NULL, "s", &r));
  vp_region_copy(&v, VP_F64, 0, NULL, &r, 0, &out);
  assert_true(out == 3.25);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_resolve),
      cmocka_unit_test(test_copy_random),
      cmocka_unit_test(test_read_errors_and_swapped_fill),
      cmocka_unit_test(test_scalar),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
