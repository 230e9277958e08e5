/* The component cache of random_object_bbox: the hash (threaded = inline =
 * a plain reference loop written here; one flipped byte changes it), the
 * LRU byte bound, references that pin entries, and the operator giving the
 * same boxes with the cache off, on a miss and on a hit; argument errors.
 * Distributions are tested in tests/python/test_object_bbox.py. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/threadpool.h"
#include "ops/object_cache.h"
#include "ops/op.h"
#include "testutil.h"

static uint64_t g_rng;

/* The definition from object_cache.h, word by word. */
static uint64_t ref_hash(const unsigned char *p, size_t n) {
  uint64_t sum = 0;
  for (size_t k = 0; k * 8 < n; k++) {
    uint64_t w = 0;
    for (size_t b = 0; b < 8 && k * 8 + b < n; b++) w |= (uint64_t)p[k * 8 + b] << (8 * b);
    sum += vp_objc_hash_word(w, k);
  }
  return vp_objc_hash_final(sum, n);
}

static void test_hash(void **state) {
  (void)state;
  vp_threadpool *pool = NULL;
  VP_ASSERT_OK(vp_threadpool_create(2, &pool));
  const size_t sizes[] = {0, 1, 7, 8, 9, 1000, ((size_t)1 << 21) + 13, ((size_t)5 << 20) + 3};
  for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
    size_t n = sizes[s];
    unsigned char *p = malloc(n + 1);
    assert_non_null(p);
    for (size_t k = 0; k < n; k++) p[k] = (unsigned char)vp_test_rand(&g_rng);
    uint64_t want = ref_hash(p, n);
    assert_true(vp_objc_hash_host(p, n, NULL) == want);
    assert_true(vp_objc_hash_host(p, n, pool) == want);
    if (n) {
      size_t at = (size_t)(vp_test_rand(&g_rng) % n);
      p[at] ^= (unsigned char)(1u << (vp_test_rand(&g_rng) % 8));
      assert_true(vp_objc_hash_host(p, n, pool) != want);
    }
    free(p);
  }
  vp_threadpool_destroy(pool);
}

static vp_objc_key key_of(uint64_t h) {
  vp_objc_key k;
  memset(&k, 0, sizeof k);
  k.hash = h;
  k.shape[0] = k.shape[1] = k.shape[2] = 4;
  k.connectivity = 6;
  return k;
}

static void test_cache_bound_and_lru(void **state) {
  (void)state;
  vp_objc_clear(-1);
  vp_obj objs[100];
  for (int k = 0; k < 100; k++) {
    objs[k].value = k;
    for (int a = 0; a < 3; a++) objs[k].lo[a] = k, objs[k].hi[a] = k + 1 + a;
  }
  /* find one entry's size: insert into an empty cache with a large budget */
  vp_objc_key k0 = key_of(1000);
  VP_ASSERT_OK(vp_objc_insert(-1, &k0, objs, 100, 1 << 20));
  vp_objc_stats st;
  vp_objc_get_stats(-1, &st);
  size_t one = st.bytes;
  assert_true(one >= 100 * sizeof(vp_obj));
  vp_objc_clear(-1);
  size_t budget = 3 * one + one / 2; /* room for three */
  for (uint64_t h = 1; h <= 3; h++) {
    vp_objc_key k = key_of(h);
    VP_ASSERT_OK(vp_objc_insert(-1, &k, objs, 100, budget));
  }
  vp_objc_ref ref;
  vp_objc_key k1 = key_of(1), k2 = key_of(2), k3 = key_of(3), k4 = key_of(4);
  assert_true(vp_objc_acquire(-1, &k1, &ref)); /* 1 is now the most recent */
  assert_int_equal(ref.count, 100);
  assert_memory_equal(ref.objs, objs, sizeof objs);
  vp_objc_release(&ref);
  VP_ASSERT_OK(vp_objc_insert(-1, &k4, objs, 100, budget)); /* evicts 2, the coldest */
  vp_objc_get_stats(-1, &st);
  assert_true(st.bytes <= budget);
  assert_int_equal(st.entries, 3);
  assert_int_equal(st.evictions, 1);
  assert_false(vp_objc_acquire(-1, &k2, &ref));
  assert_true(vp_objc_acquire(-1, &k3, &ref)); /* held: may not be evicted */
  vp_objc_ref r1;
  assert_true(vp_objc_acquire(-1, &k1, &r1));
  vp_objc_release(&r1);
  vp_objc_key k5 = key_of(5);
  VP_ASSERT_OK(vp_objc_insert(-1, &k5, objs, 100, budget)); /* evicts 4, not the held 3 */
  assert_true(vp_objc_acquire(-1, &k3, &r1));
  vp_objc_release(&r1);
  assert_false(vp_objc_acquire(-1, &k4, &r1));
  vp_objc_release(&ref);
  /* an entry larger than the budget is not kept; the bound holds */
  vp_objc_key k6 = key_of(6);
  VP_ASSERT_OK(vp_objc_insert(-1, &k6, objs, 100, one - 1));
  assert_false(vp_objc_acquire(-1, &k6, &r1));
  vp_objc_get_stats(-1, &st);
  assert_true(st.bytes <= budget);
  /* a different labelling parameter is another key */
  vp_objc_key k3c = k3;
  k3c.connectivity = 26;
  assert_false(vp_objc_acquire(-1, &k3c, &r1));
  vp_objc_clear(-1);
  vp_objc_get_stats(-1, &st);
  assert_int_equal(st.entries, 0);
  assert_int_equal(st.bytes, 0);
}

/* A volume with n random blocks of values 1..3. */
static vp_tensor *random_volume(int64_t D, int64_t H, int64_t W) {
  int64_t shape[3] = {D, H, W};
  vp_tensor *t = NULL;
  VP_ASSERT_OK(vp_tensor_create(VP_U8, 3, shape, VP_MEM_HOST, 0, &t));
  uint8_t *p = vp_tensor_data(t);
  memset(p, 0, (size_t)(D * H * W));
  for (int b = 0; b < 12; b++) {
    int64_t d0 = (int64_t)(vp_test_rand(&g_rng) % (uint64_t)D),
            h0 = (int64_t)(vp_test_rand(&g_rng) % (uint64_t)H),
            w0 = (int64_t)(vp_test_rand(&g_rng) % (uint64_t)W);
    uint8_t v = (uint8_t)(1 + vp_test_rand(&g_rng) % 3);
    for (int64_t d = d0; d < D && d < d0 + 3; d++)
      for (int64_t h = h0; h < H && h < h0 + 4; h++)
        for (int64_t w = w0; w < W && w < w0 + 5; w++) p[(d * H + h) * W + w] = v;
  }
  return t;
}

static void call_boxes(vp_tensor **in, int n, const char *json, uint64_t seed, int32_t *boxes) {
  vp_tensor *out[2 * 16];
  VP_ASSERT_OK(vp_ops_call("random_object_bbox", n, in, json, seed, out));
  for (int i = 0; i < n; i++) memcpy(boxes + 6 * i, vp_tensor_data(out[i]), 6 * sizeof(int32_t));
  for (int k = 0; k < 2 * n; k++) vp_tensor_release(out[k]);
}

static void test_op_cache_same_boxes(void **state) {
  (void)state;
  vp_objc_clear(-1);
  enum { N = 6 };
  vp_tensor *in[N];
  for (int i = 0; i < N; i++) in[i] = random_volume(10 + i, 12, 14);
  uint64_t seed = vp_test_rand(&g_rng);
  int32_t off[N * 6], miss[N * 6], hit[N * 6];
  call_boxes(in, N, "{\"format\": \"box\"}", seed, off);
  call_boxes(in, N, "{\"format\": \"box\", \"cache_bytes\": 100000}", seed, miss);
  vp_objc_stats st;
  vp_objc_get_stats(-1, &st);
  assert_int_equal(st.misses, N);
  assert_int_equal(st.entries, N);
  call_boxes(in, N, "{\"format\": \"box\", \"cache_bytes\": 100000}", seed, hit);
  vp_objc_get_stats(-1, &st);
  assert_int_equal(st.hits, N);
  assert_memory_equal(off, miss, sizeof off);
  assert_memory_equal(off, hit, sizeof off);
  /* a tiny budget keeps the bound */
  vp_objc_clear(-1);
  call_boxes(in, N, "{\"format\": \"box\", \"cache_bytes\": 300}", seed, hit);
  vp_objc_get_stats(-1, &st);
  assert_true(st.bytes <= 300);
  assert_memory_equal(off, hit, sizeof off);
  vp_objc_clear(-1);
  for (int i = 0; i < N; i++) vp_tensor_release(in[i]);
}

static void test_op_errors(void **state) {
  (void)state;
  vp_tensor *in = random_volume(4, 5, 6), *out[3] = {NULL, NULL, NULL};
  assert_int_equal(vp_ops_call("random_object_bbox", 1, &in,
                               "{\"classes\": [1, 2], \"class_weights\": [1]}", 0, out),
                   VP_ERR_INVALID_ARG);
  assert_non_null(strstr(vp_last_error(), "class_weights"));
  assert_int_equal(vp_ops_call("random_object_bbox", 1, &in, "{\"threshold\": [1, 2]}", 0, out),
                   VP_ERR_INVALID_ARG);
  assert_int_equal(vp_ops_call("random_object_bbox", 1, &in, "{\"classes\": [0]}", 0, out),
                   VP_ERR_INVALID_ARG);
  assert_non_null(strstr(vp_last_error(), "background"));
  assert_int_equal(vp_ops_call("random_crop_window", 1, &in, "{\"crop_shape\": [1, 2]}", 0, out),
                   VP_ERR_INVALID_ARG);
  assert_int_equal(vp_ops_call("random_crop_window", 1, &in,
                               "{\"crop_shape\": [2], \"mode\": \"class_ratios\"}", 0, out),
                   VP_ERR_INVALID_ARG);
  assert_non_null(strstr(vp_last_error(), "ratios"));
  vp_tensor_release(in);
}

int main(void) {
  g_rng = vp_test_seed();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_hash),
      cmocka_unit_test(test_cache_bound_and_lru),
      cmocka_unit_test(test_op_cache_same_boxes),
      cmocka_unit_test(test_op_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
