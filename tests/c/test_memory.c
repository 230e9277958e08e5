/* The memory layer: host alignment, zero-byte and impossible sizes, copies,
 * and what the CUDA paths say when there is no GPU. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/cuda_rt.h"
#include "core/memory.h"
#include "core/status.h"
#include "testutil.h"

static void test_host_alignment(void **state) {
  (void)state;
  uint64_t st = vp_test_seed();
  for (int k = 0; k < 500; k++) {
    size_t n = k < 100 ? (size_t)k : (size_t)(vp_test_rand(&st) % (1 << 20));
    void *p = NULL;
    VP_ASSERT_OK(vp_mem_alloc(VP_MEM_HOST, 0, n, &p));
    assert_non_null(p);
    if ((uintptr_t)p % 64) fail_msg("%zu bytes at %p: not 64-byte aligned", n, p);
    memset(p, 0xab, n); /* the whole request is writable (ASan checks the end) */
    vp_mem_free(VP_MEM_HOST, 0, p, n);
  }
}

static void test_zero_bytes(void **state) {
  (void)state;
  void *a = NULL, *b = NULL;
  VP_ASSERT_OK(vp_mem_alloc(VP_MEM_HOST, 0, 0, &a));
  VP_ASSERT_OK(vp_mem_alloc(VP_MEM_HOST, 0, 0, &b));
  assert_non_null(a);
  assert_non_null(b);
  assert_ptr_not_equal(a, b);
  VP_ASSERT_OK(vp_mem_copy(a, VP_MEM_HOST, b, VP_MEM_HOST, 0));
  /* zero bytes between any kinds needs no device */
  VP_ASSERT_OK(vp_mem_copy(a, VP_MEM_DEVICE, b, VP_MEM_HOST, 0));
  vp_mem_free(VP_MEM_HOST, 0, a, 0);
  vp_mem_free(VP_MEM_HOST, 0, b, 0);
  vp_mem_free(VP_MEM_HOST, 0, NULL, 0);
  vp_mem_free(VP_MEM_DEVICE, 0, NULL, 0);
  vp_mem_free(VP_MEM_PINNED, 0, NULL, 0);
}

static void test_bad_requests(void **state) {
  (void)state;
  void *p = (void *)&p;
  /* rounding SIZE_MAX up to 64 wraps: refused before any allocation */
  assert_int_equal(vp_mem_alloc(VP_MEM_HOST, 0, SIZE_MAX - 10, &p), VP_ERR_OVERFLOW);
  assert_null(p);
  assert_non_null(strstr(vp_last_error(), "host allocation"));
  p = (void *)&p;
  assert_int_equal(vp_mem_alloc((vp_memkind)7, 0, 16, &p), VP_ERR_INVALID_ARG);
  assert_null(p);
  assert_non_null(strstr(vp_last_error(), "memory kind 7"));
  /* freeing with an unknown kind is ignored rather than guessed */
  vp_mem_free((vp_memkind)7, 0, (void *)&p, 16);
}

static void test_host_copy(void **state) {
  (void)state;
  uint64_t st = vp_test_seed();
  size_t n = 100003;
  unsigned char *src = NULL, *dst = NULL;
  VP_ASSERT_OK(vp_mem_alloc(VP_MEM_HOST, 0, n, (void **)&src));
  VP_ASSERT_OK(vp_mem_alloc(VP_MEM_HOST, 0, n, (void **)&dst));
  for (size_t i = 0; i < n; i++) src[i] = (unsigned char)vp_test_rand(&st);
  memset(dst, 0, n);
  VP_ASSERT_OK(vp_mem_copy(dst, VP_MEM_HOST, src, VP_MEM_HOST, n));
  assert_memory_equal(dst, src, n);
  vp_mem_free(VP_MEM_HOST, 0, src, n);
  vp_mem_free(VP_MEM_HOST, 0, dst, n);
}

/* Without a GPU (or without the CUDA backend) every device path fails with
 * VP_ERR_NO_DEVICE and a message that says "device"; nothing crashes. On a
 * GPU machine the same calls succeed (tests/cuda covers them in depth). */
static void test_no_device_paths(void **state) {
  (void)state;
  int ndev = vp_cuda_device_count();
  assert_true(ndev >= 0);
  if (!vp_has_cuda()) assert_int_equal(ndev, 0);
  void *p = (void *)&p;
  vp_status s = vp_mem_alloc(VP_MEM_DEVICE, 0, 1024, &p);
  if (ndev == 0) {
    assert_int_equal(s, VP_ERR_NO_DEVICE);
    assert_null(p);
    assert_non_null(strstr(vp_last_error(), "device"));
  } else {
    VP_ASSERT_OK(s);
    vp_mem_free(VP_MEM_DEVICE, 0, p, 1024);
  }
  /* a device number past the last is refused, with or without a GPU */
  p = (void *)&p;
  s = vp_mem_alloc(VP_MEM_DEVICE, ndev + 3, 16, &p);
  assert_int_equal(s, ndev ? VP_ERR_INVALID_ARG : VP_ERR_NO_DEVICE);
  assert_null(p);
  assert_non_null(strstr(vp_last_error(), "device"));

  p = (void *)&p;
  s = vp_mem_alloc(VP_MEM_PINNED, 0, 4096, &p);
  if (ndev == 0) {
    assert_int_equal(s, VP_ERR_NO_DEVICE);
    assert_null(p);
    assert_non_null(strstr(vp_last_error(), "device"));
    assert_non_null(strstr(vp_last_error(), "pinned"));
  } else {
    VP_ASSERT_OK(s);
    vp_mem_free(VP_MEM_PINNED, 0, p, 4096);
  }

  if (ndev == 0) {
    char a[8] = {0}, b[8] = {1};
    assert_int_equal(vp_mem_copy(a, VP_MEM_DEVICE, b, VP_MEM_HOST, 8), VP_ERR_NO_DEVICE);
    assert_non_null(strstr(vp_last_error(), "device"));
    vp_stream st = (vp_stream)&p;
    assert_int_equal(vp_cuda_stream_create(0, &st), VP_ERR_NO_DEVICE);
    assert_null(st);
    assert_non_null(strstr(vp_last_error(), "device"));
    assert_int_equal(vp_cuda_set_device(0), VP_ERR_NO_DEVICE);
    vp_mem_trim(); /* nothing cached, nothing to do, no crash */
  }
}

int main(void) {
  vp_test_seed();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_host_alignment),  cmocka_unit_test(test_zero_bytes),
      cmocka_unit_test(test_bad_requests),    cmocka_unit_test(test_host_copy),
      cmocka_unit_test(test_no_device_paths),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
