/* Batches on the host (and in pinned memory when a GPU is present): layout,
 * views, lifetime and argument checks. tests/cuda covers device batches. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/batch.h"
#include "core/status.h"
#include "testutil.h"

/* Random shapes: n samples of ndim extents in 0..max_extent, mostly
 * nonzero. */
static int64_t *random_shapes(uint64_t *st, int64_t n, int ndim, int max_extent) {
  int64_t *s = malloc(sizeof *s * (size_t)(n * ndim + 1));
  for (int64_t k = 0; k < n * ndim; k++) {
    uint64_t r = vp_test_rand(st);
    s[k] = r % 16 == 0 ? 0 : (int64_t)(1 + (r >> 8) % (uint64_t)max_extent);
  }
  return s;
}

/* Checks the layout against the shapes, writes a distinct pattern into
 * every sample through its view, and reads all of them back: overlapping
 * samples would clobber each other. */
static void check_batch(vp_batch *b, vp_dtype dtype, int ndim, int64_t n, const int64_t *shapes) {
  size_t es = vp_dtype_size(dtype);
  assert_int_equal(vp_batch_size(b), n);
  assert_int_equal(vp_batch_ndim(b), ndim);
  assert_int_equal(vp_batch_dtype(b), dtype);
  assert_null(vp_batch_desc_device(b));
  vp_sample_desc *d = vp_batch_desc_host(b);
  char *base = vp_batch_data(b);
  int64_t prev_end = 0;
  vp_tensor **views = calloc((size_t)n, sizeof *views);
  for (int64_t i = 0; i < n; i++) {
    int64_t numel = 1;
    for (int k = 0; k < VP_MAX_NDIM; k++) {
      int64_t want = k < ndim ? shapes[i * ndim + k] : 1;
      if (d[i].shape[k] != want)
        fail_msg("sample %lld extent %d: %lld, want %lld", (long long)i, k,
                 (long long)d[i].shape[k], (long long)want);
      numel *= want;
    }
    assert_int_equal(d[i].numel, numel);
    if ((uintptr_t)d[i].data % VP_BATCH_ALIGN) fail_msg("sample %lld is not aligned", (long long)i);
    assert_ptr_equal(d[i].data, base + d[i].offset);
    if (d[i].offset < prev_end) fail_msg("sample %lld overlaps the one before", (long long)i);
    prev_end = d[i].offset + numel * (int64_t)es;
    for (int k = 0; k < VP_SAMPLE_PARAMS; k++) assert_true(d[i].params[k] == 0.0f);

    VP_ASSERT_OK(vp_batch_sample(b, i, &views[i]));
    vp_tensor *v = views[i];
    assert_int_equal(vp_tensor_ndim(v), ndim);
    if (ndim) assert_memory_equal(vp_tensor_shape(v), &shapes[i * ndim], sizeof(int64_t) * ndim);
    assert_ptr_equal(vp_tensor_data(v), d[i].data);
    assert_int_equal(vp_tensor_memkind(v), vp_batch_memkind(b));
    assert_int_equal(vp_tensor_nbytes(v), (size_t)numel * es);
    memset(vp_tensor_data(v), (int)(i * 7 + 1) & 0xff, vp_tensor_nbytes(v));
  }
  assert_int_equal(vp_batch_nbytes(b), (size_t)prev_end);
  for (int64_t i = 0; i < n; i++) {
    const unsigned char *p = vp_tensor_data(views[i]);
    for (size_t k = 0; k < vp_tensor_nbytes(views[i]); k++)
      if (p[k] != ((i * 7 + 1) & 0xff))
        fail_msg("sample %lld byte %zu was overwritten", (long long)i, k);
    vp_tensor_release(views[i]);
  }
  free(views);
}

static void test_random_host_batches(void **state) {
  (void)state;
  uint64_t st = vp_test_seed();
  for (int rep = 0; rep < 200; rep++) {
    vp_dtype dtype = (vp_dtype)(vp_test_rand(&st) % VP_DTYPE_COUNT);
    int ndim = (int)(vp_test_rand(&st) % (VP_MAX_NDIM + 1));
    int64_t n = 1 + (int64_t)(vp_test_rand(&st) % 24);
    int64_t *shapes = random_shapes(&st, n, ndim, ndim > 3 ? 9 : 40);
    vp_batch *b = NULL;
    VP_ASSERT_OK(vp_batch_create(dtype, ndim, n, shapes, VP_MEM_HOST, 0, &b));
    assert_int_equal(vp_batch_memkind(b), VP_MEM_HOST);
    check_batch(b, dtype, ndim, n, shapes);
    vp_batch_destroy(b);
    free(shapes);
  }
}

static void test_pinned_batch(void **state) {
  (void)state;
  uint64_t st = vp_test_seed();
  int64_t *shapes = random_shapes(&st, 5, 3, 30);
  vp_batch *b = (vp_batch *)&b;
  vp_status s = vp_batch_create(VP_F32, 3, 5, shapes, VP_MEM_PINNED, 0, &b);
  if (vp_cuda_device_count() == 0) {
    assert_int_equal(s, VP_ERR_NO_DEVICE);
    assert_null(b);
    assert_non_null(strstr(vp_last_error(), "batch"));
    assert_non_null(strstr(vp_last_error(), "device"));
    /* the same for a device batch */
    b = (vp_batch *)&b;
    assert_int_equal(vp_batch_create(VP_F32, 3, 5, shapes, VP_MEM_DEVICE, 0, &b), VP_ERR_NO_DEVICE);
    assert_null(b);
    assert_non_null(strstr(vp_last_error(), "device"));
  } else {
    VP_ASSERT_OK(s);
    check_batch(b, VP_F32, 3, 5, shapes);
    /* a pinned batch has no device mirror to upload to */
    assert_int_equal(vp_batch_upload_desc(b, NULL), VP_ERR_INVALID_ARG);
    assert_non_null(strstr(vp_last_error(), "pinned"));
    vp_batch_destroy(b);
  }
  free(shapes);
}

/* A view outlives the batch's own reference: the memory stays valid until
 * the last view goes (ASan builds would catch a use after free). */
static void test_view_keeps_batch_alive(void **state) {
  (void)state;
  const int64_t shapes[] = {3, 4, 5, 1, 1, 1, 6, 7, 8};
  vp_batch *b = NULL;
  VP_ASSERT_OK(vp_batch_create(VP_I32, 3, 3, shapes, VP_MEM_HOST, 0, &b));
  vp_tensor *v0 = NULL, *v2 = NULL;
  VP_ASSERT_OK(vp_batch_sample(b, 0, &v0));
  VP_ASSERT_OK(vp_batch_sample(b, 2, &v2));
  vp_batch_desc_host(b)[2].params[3] = 2.5f;
  vp_batch_destroy(b);
  int32_t *p = vp_tensor_data(v2);
  for (int i = 0; i < 6 * 7 * 8; i++) p[i] = i;
  vp_tensor_release(v2);
  p = vp_tensor_data(v0);
  for (int i = 0; i < 3 * 4 * 5; i++) p[i] = -i;
  assert_int_equal(p[59], -59);
  /* a copy of a view is an ordinary tensor */
  vp_tensor *c = NULL;
  VP_ASSERT_OK(vp_tensor_copy_to(v0, VP_MEM_HOST, 0, &c));
  vp_tensor_release(v0);
  assert_int_equal(((int32_t *)vp_tensor_data(c))[59], -59);
  vp_tensor_release(c);
  vp_batch_destroy(NULL);
}

static void test_one_sample_and_empty_samples(void **state) {
  (void)state;
  /* all samples empty: a valid batch whose span is 0 */
  const int64_t empty[] = {0, 5, 4, 0};
  vp_batch *b = NULL;
  VP_ASSERT_OK(vp_batch_create(VP_U8, 2, 2, empty, VP_MEM_HOST, 0, &b));
  assert_int_equal(vp_batch_nbytes(b), 0);
  check_batch(b, VP_U8, 2, 2, empty);
  vp_batch_destroy(b);
  /* ndim 0: n scalars, one per aligned slot */
  VP_ASSERT_OK(vp_batch_create(VP_F64, 0, 4, NULL, VP_MEM_HOST, 0, &b));
  assert_int_equal(vp_batch_nbytes(b), 3 * VP_BATCH_ALIGN + 8);
  check_batch(b, VP_F64, 0, 4, NULL);
  vp_batch_destroy(b);
}

static void expect_fail(vp_status want, const char *needle, vp_dtype dtype, int ndim, int64_t n,
                        const int64_t *shapes, vp_memkind mem) {
  vp_batch *b = (vp_batch *)&b;
  vp_status s = vp_batch_create(dtype, ndim, n, shapes, mem, 0, &b);
  if (s != want)
    fail_msg("got %s (%s), want %s", vp_status_name(s), vp_last_error(), vp_status_name(want));
  assert_null(b);
  if (!strstr(vp_last_error(), "batch") || !strstr(vp_last_error(), needle))
    fail_msg("message \"%s\" lacks \"batch\" or \"%s\"", vp_last_error(), needle);
}

static void test_bad_arguments(void **state) {
  (void)state;
  const int64_t ok[] = {2, 3, 4, 5, 6, 7};
  expect_fail(VP_ERR_INVALID_ARG, "0 samples", VP_U8, 3, 0, ok, VP_MEM_HOST);
  expect_fail(VP_ERR_INVALID_ARG, "-2 samples", VP_U8, 3, -2, ok, VP_MEM_HOST);
  expect_fail(VP_ERR_INVALID_ARG, "samples", VP_U8, 3, (int64_t)VP_BATCH_MAX_SAMPLES + 1, ok,
              VP_MEM_HOST);
  expect_fail(VP_ERR_INVALID_ARG, "samples", VP_U8, 3, INT64_MAX, ok, VP_MEM_HOST);
  expect_fail(VP_ERR_INVALID_ARG, "dtype", (vp_dtype)99, 3, 2, ok, VP_MEM_HOST);
  expect_fail(VP_ERR_INVALID_ARG, "ndim 6", VP_U8, 6, 1, ok, VP_MEM_HOST);
  expect_fail(VP_ERR_INVALID_ARG, "ndim -1", VP_U8, -1, 1, ok, VP_MEM_HOST);
  expect_fail(VP_ERR_INVALID_ARG, "NULL", VP_U8, 3, 2, NULL, VP_MEM_HOST);
  expect_fail(VP_ERR_INVALID_ARG, "memory kind", VP_U8, 3, 2, ok, (vp_memkind)9);
  const int64_t neg[] = {2, 3, 4, 5, -6, 7};
  expect_fail(VP_ERR_INVALID_ARG, "sample 1", VP_U8, 3, 2, neg, VP_MEM_HOST);
  /* one sample's extents overflow int64 */
  const int64_t big[] = {2, 3, 4, INT64_MAX / 2, 4, 3};
  expect_fail(VP_ERR_OVERFLOW, "sample 1", VP_U8, 3, 2, big, VP_MEM_HOST);
  /* each sample fits, their sum does not: caught before allocating */
  const int64_t quarter = (int64_t)1 << 60; /* 2^62 bytes of float32 */
  const int64_t sum[] = {quarter, quarter, quarter, quarter, quarter};
  expect_fail(VP_ERR_OVERFLOW, "sample", VP_F32, 1, 5, sum, VP_MEM_HOST);
  /* a batch that fits the sizes but not the machine: the allocator's
   * status, prefixed with "batch" */
  const int64_t huge[] = {(int64_t)1 << 60};
  vp_batch *b = (vp_batch *)&b;
  vp_status s = vp_batch_create(VP_U8, 1, 1, huge, VP_MEM_PINNED, 0, &b);
  assert_true(s == VP_ERR_NOMEM || s == VP_ERR_NO_DEVICE || s == VP_ERR_CUDA);
  assert_null(b);
  assert_non_null(strstr(vp_last_error(), "batch"));

  VP_ASSERT_OK(vp_batch_create(VP_U8, 3, 2, ok, VP_MEM_HOST, 0, &b));
  vp_tensor *v = (vp_tensor *)&v;
  assert_int_equal(vp_batch_sample(b, 2, &v), VP_ERR_INVALID_ARG);
  assert_null(v);
  assert_non_null(strstr(vp_last_error(), "sample 2"));
  assert_int_equal(vp_batch_sample(b, -1, &v), VP_ERR_INVALID_ARG);
  assert_int_equal(vp_batch_sample(b, 0, NULL), VP_ERR_INVALID_ARG);
  assert_int_equal(vp_batch_sample(NULL, 0, &v), VP_ERR_INVALID_ARG);
  assert_int_equal(vp_batch_upload_desc(b, NULL), VP_ERR_INVALID_ARG);
  assert_non_null(strstr(vp_last_error(), "host"));
  assert_int_equal(vp_batch_create(VP_U8, 3, 2, ok, VP_MEM_HOST, 0, NULL), VP_ERR_INVALID_ARG);
  vp_batch_destroy(b);
}

int main(void) {
  vp_test_seed();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_random_host_batches),
      cmocka_unit_test(test_pinned_batch),
      cmocka_unit_test(test_view_keeps_batch_alive),
      cmocka_unit_test(test_one_sample_and_empty_samples),
      cmocka_unit_test(test_bad_arguments),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
