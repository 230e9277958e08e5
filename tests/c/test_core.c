/* status table, dtypes, tensors and DLPack round trips */
#include <dlpack/dlpack.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "core/status.h"
#include "core/tensor.h"
#include "testutil.h"

static void test_status_table(void **state) {
  (void)state;
  assert_string_equal(vp_status_name(VP_OK), "VP_OK");
  assert_string_equal(vp_status_name(VP_ERR_FORMAT), "VP_ERR_FORMAT");
  assert_string_equal(vp_status_name((vp_status)999), "VP_UNKNOWN_STATUS");
  assert_int_equal(vp_fail(VP_ERR_IO, "%s: %d", "case.nii", 7), VP_ERR_IO);
  assert_string_equal(vp_last_error(), "case.nii: 7");
  vp_fail_prefix(VP_ERR_IO, "reading");
  assert_string_equal(vp_last_error(), "reading: case.nii: 7");
  vp_clear_error();
  assert_string_equal(vp_last_error(), "");
}

static void test_version(void **state) {
  (void)state;
  assert_non_null(strstr(vp_version(), VP_VERSION_STRING));
}

static void test_dtypes(void **state) {
  (void)state;
  const size_t sizes[VP_DTYPE_COUNT] = {1, 1, 2, 2, 4, 4, 8, 2, 4, 8};
  for (int i = 0; i < VP_DTYPE_COUNT; i++) {
    assert_int_equal(vp_dtype_size((vp_dtype)i), sizes[i]);
    vp_dtype back;
    VP_ASSERT_OK(vp_dtype_from_name(vp_dtype_name((vp_dtype)i), &back));
    assert_int_equal(back, i);
  }
  vp_dtype d;
  VP_ASSERT_OK(vp_dtype_from_name("f32", &d));
  assert_int_equal(d, VP_F32);
  assert_int_equal(vp_dtype_from_name("complex64", &d), VP_ERR_INVALID_ARG);
  assert_non_null(strstr(vp_last_error(), "complex64"));
  assert_int_equal(vp_dtype_size(VP_DTYPE_COUNT), 0);
}

static void test_half_round_trip(void **state) {
  (void)state;
  /* every finite half survives half -> float -> half */
  for (uint32_t h = 0; h < 0x10000; h++) {
    if ((h & 0x7c00) == 0x7c00) continue;
    float f = vp_half_to_float((uint16_t)h);
    assert_int_equal(vp_float_to_half(f), h);
  }
  assert_true(vp_half_to_float(0x3c00) == 1.0f);
  assert_true(vp_half_to_float(0x0001) == ldexpf(1.0f, -24));
  assert_int_equal(vp_float_to_half(65520.0f), 0x7c00);                     /* overflow */
  assert_int_equal(vp_float_to_half(1.0f + ldexpf(1.0f, -11)), 0x3c00);    /* tie to even */
  assert_int_equal(vp_float_to_half(1.0f + 3 * ldexpf(1.0f, -11)), 0x3c02); /* tie to even */
  assert_int_equal(vp_float_to_half(ldexpf(1.0f, -25)), 0);                 /* tie to zero */
  assert_int_equal(vp_float_to_half(ldexpf(1.5f, -25)), 1);
}

static void test_byteswap(void **state) {
  (void)state;
  uint32_t v[2] = {0x01020304u, 0xa0b0c0d0u};
  vp_byteswap(v, 2, 4);
  assert_int_equal(v[0], 0x04030201u);
  assert_int_equal(v[1], 0xd0c0b0a0u);
  uint64_t w = 0x0102030405060708ull;
  vp_byteswap(&w, 1, 8);
  assert_true(w == 0x0807060504030201ull);
}

static void test_tensor_lifecycle(void **state) {
  (void)state;
  int64_t shape[4] = {4, 5, 6, 7};
  vp_tensor *t = NULL;
  VP_ASSERT_OK(vp_tensor_create(VP_I16, 4, shape, VP_MEM_HOST, 0, &t));
  assert_int_equal(vp_tensor_numel(t), 840);
  assert_int_equal(vp_tensor_nbytes(t), 1680);
  assert_int_equal(((uintptr_t)vp_tensor_data(t)) % 64, 0);
  assert_int_equal(vp_tensor_spatial_ndim(t), 3);
  memset(vp_tensor_data(t), 0x5a, vp_tensor_nbytes(t));
  double sp[3] = {2.5, 1.0, 0.5}, got[3];
  VP_ASSERT_OK(vp_tensor_set_spacing(t, 3, sp));
  vp_tensor_spacing(t, got);
  assert_memory_equal(sp, got, sizeof sp);
  double bad[3] = {1.0, -1.0, 1.0};
  assert_int_equal(vp_tensor_set_spacing(t, 3, bad), VP_ERR_INVALID_ARG);
  double aff[16] = {0}, back[16];
  for (int i = 0; i < 16; i++) aff[i] = i * 0.25;
  VP_ASSERT_OK(vp_tensor_set_affine(t, aff));
  vp_tensor_affine(t, back);
  assert_memory_equal(aff, back, sizeof aff);
  aff[3] = NAN;
  assert_int_equal(vp_tensor_set_affine(t, aff), VP_ERR_INVALID_ARG);
  vp_tensor *c = NULL;
  VP_ASSERT_OK(vp_tensor_copy_to(t, VP_MEM_HOST, 0, &c));
  assert_memory_equal(vp_tensor_data(c), vp_tensor_data(t), vp_tensor_nbytes(t));
  vp_tensor_spacing(c, got);
  assert_memory_equal(sp, got, sizeof sp);
  vp_tensor_retain(t);
  vp_tensor_release(t);
  vp_tensor_release(t);
  vp_tensor_release(c);
  vp_tensor_release(NULL);
}

static void test_tensor_bad_shapes(void **state) {
  (void)state;
  vp_tensor *t = (vp_tensor *)0x1;
  int64_t neg[3] = {4, -1, 2};
  assert_int_equal(vp_tensor_create(VP_U8, 3, neg, VP_MEM_HOST, 0, &t), VP_ERR_INVALID_ARG);
  assert_null(t);
  int64_t huge[3] = {INT64_MAX / 2, 4, 4};
  assert_int_equal(vp_tensor_create(VP_U8, 3, huge, VP_MEM_HOST, 0, &t), VP_ERR_OVERFLOW);
  int64_t big[2] = {(int64_t)1 << 40, (int64_t)1 << 21};
  assert_int_equal(vp_tensor_create(VP_F32, 2, big, VP_MEM_HOST, 0, &t), VP_ERR_OVERFLOW);
  int64_t ok[1] = {3};
  assert_int_equal(vp_tensor_create(VP_U8, 6, ok, VP_MEM_HOST, 0, &t), VP_ERR_INVALID_ARG);
  assert_int_equal(vp_tensor_create(VP_DTYPE_COUNT, 1, ok, VP_MEM_HOST, 0, &t),
                   VP_ERR_INVALID_ARG);
  if (!vp_has_cuda() || vp_cuda_device_count() == 0) {
    assert_int_equal(vp_tensor_create(VP_U8, 1, ok, VP_MEM_DEVICE, 0, &t), VP_ERR_NO_DEVICE);
    assert_non_null(strstr(vp_last_error(), "device"));
  }
  /* a zero-sized tensor is valid */
  int64_t zero[2] = {0, 5};
  VP_ASSERT_OK(vp_tensor_create(VP_F32, 2, zero, VP_MEM_HOST, 0, &t));
  assert_int_equal(vp_tensor_nbytes(t), 0);
  vp_tensor_release(t);
}

static int wrapped_freed;
static void count_free(void *ctx) { wrapped_freed += *(int *)ctx; }

static void test_dlpack_round_trip(void **state) {
  (void)state;
  int64_t shape[3] = {3, 4, 5};
  vp_tensor *t = NULL;
  VP_ASSERT_OK(vp_tensor_create(VP_F32, 3, shape, VP_MEM_HOST, 0, &t));
  float *d = vp_tensor_data(t);
  for (int i = 0; i < 60; i++) d[i] = (float)i * 0.5f;
  void *m = NULL;
  VP_ASSERT_OK(vp_tensor_to_dlpack(t, &m));
  DLManagedTensor *dm = m;
  assert_ptr_equal(dm->dl_tensor.data, d);
  assert_int_equal(dm->dl_tensor.ndim, 3);
  assert_int_equal(dm->dl_tensor.shape[2], 5);
  assert_int_equal(dm->dl_tensor.dtype.code, kDLFloat);
  assert_int_equal(dm->dl_tensor.dtype.bits, 32);
  assert_int_equal(dm->dl_tensor.device.device_type, kDLCPU);
  vp_tensor_release(t); /* the capsule keeps the data alive */
  vp_tensor *back = NULL;
  VP_ASSERT_OK(vp_tensor_from_dlpack(m, &back));
  assert_ptr_equal(vp_tensor_data(back), d);
  assert_int_equal(((float *)vp_tensor_data(back))[59], 29.5f);
  vp_tensor_release(back); /* runs the export deleter, which frees t */

  /* wrapped memory: the deleter runs exactly once, at the last release */
  static int one = 1;
  int64_t s1[1] = {4};
  uint8_t buf[4] = {1, 2, 3, 4};
  wrapped_freed = 0;
  vp_tensor *w = NULL;
  VP_ASSERT_OK(vp_tensor_wrap(VP_U8, 1, s1, buf, VP_MEM_HOST, 0, count_free, &one, &w));
  vp_tensor_retain(w);
  vp_tensor_release(w);
  assert_int_equal(wrapped_freed, 0);
  vp_tensor_release(w);
  assert_int_equal(wrapped_freed, 1);
}

static void test_stack_view(void **state) {
  (void)state;
  /* three samples back to back in one allocation */
  int64_t all_shape[1] = {3 * 64};
  vp_tensor *all = NULL;
  VP_ASSERT_OK(vp_tensor_create(VP_F32, 1, all_shape, VP_MEM_HOST, 0, &all));
  float *base = vp_tensor_data(all);
  for (int i = 0; i < 192; i++) base[i] = (float)i;
  int64_t shape[2] = {8, 8};
  vp_tensor *s[3];
  for (int i = 0; i < 3; i++) {
    vp_tensor_retain(all);
    VP_ASSERT_OK(vp_tensor_wrap(VP_F32, 2, shape, base + 64 * i, VP_MEM_HOST, 0,
                                (void (*)(void *))vp_tensor_release, all, &s[i]));
  }
  vp_tensor *v = NULL;
  VP_ASSERT_OK(vp_tensor_stack_view(s, 3, &v));
  assert_int_equal(vp_tensor_ndim(v), 3);
  assert_int_equal(vp_tensor_shape(v)[0], 3);
  assert_ptr_equal(vp_tensor_data(v), base);
  for (int i = 0; i < 3; i++) vp_tensor_release(s[i]); /* the view keeps them */
  assert_true(((float *)vp_tensor_data(v))[191] == 191.0f);
  vp_tensor_release(v);
  /* not back to back: refused */
  vp_tensor *t[2];
  vp_tensor_retain(all);
  VP_ASSERT_OK(vp_tensor_wrap(VP_F32, 2, shape, base, VP_MEM_HOST, 0,
                              (void (*)(void *))vp_tensor_release, all, &t[0]));
  vp_tensor_retain(all);
  VP_ASSERT_OK(vp_tensor_wrap(VP_F32, 2, shape, base + 128, VP_MEM_HOST, 0,
                              (void (*)(void *))vp_tensor_release, all, &t[1]));
  assert_int_equal(vp_tensor_stack_view(t, 2, &v), VP_ERR_INVALID_ARG);
  assert_null(v);
  assert_non_null(strstr(vp_last_error(), "sample 1"));
  vp_tensor_release(t[0]);
  vp_tensor_release(t[1]);
  vp_tensor_release(all);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_status_table),    cmocka_unit_test(test_version),
      cmocka_unit_test(test_dtypes),          cmocka_unit_test(test_half_round_trip),
      cmocka_unit_test(test_byteswap),        cmocka_unit_test(test_tensor_lifecycle),
      cmocka_unit_test(test_tensor_bad_shapes), cmocka_unit_test(test_dlpack_round_trip), cmocka_unit_test(test_stack_view),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
