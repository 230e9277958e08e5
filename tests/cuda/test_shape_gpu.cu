/* pad, crop_or_pad, transpose and resample_spacing on the GPU against their
 * CPU bodies, bit for bit (all are exact copies or nearest; resample_spacing
 * linear within 1e-5 of the value range), on batches of mixed shapes
 * (1-D to 5-D, per-sample arguments), through vp_ops_call and through the
 * GPU body straight into outputs poisoned with 0xff / 0xab so that
 * unwritten voxels show. Exits 77 without a GPU. */
#include <cuda_runtime.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "core/convert.h"
#include "core/cuda_rt.h"
#include "core/status.h"
#include "testutil.h"
}
#include "ops/op.h"
#include "gpu_testutil.h"

#define MAXN 4

/* Random host tensor: small integers in the integer types (any 0..250
 * fits them all), floats in [-300, 300). */
static vp_tensor *make_host(vp_dtype d, int ndim, const int64_t *shape) {
  vp_tensor *t = NULL;
  VP_ASSERT_OK(vp_tensor_create(d, ndim, shape, VP_MEM_HOST, 0, &t));
  int64_t n = vp_tensor_numel(t);
  void *p = vp_tensor_data(t);
  for (int64_t i = 0; i < n; i++)
    vp_cvt_store(p, d, i,
                 d < VP_F16 ? (double)(vp_test_rand(&g_rng) % 120) : (urand() - 0.5) * 600);
  return t;
}



/* One-input, one-output op over the n host samples h: CPU vs GPU (eager)
 * vs GPU body into poisoned outputs. */
static void compare_op(const char *name, int n, vp_tensor **h, const char *json, int exact) {
  vp_tensor *dv[MAXN], *co[MAXN], *go[MAXN], *po[MAXN];
  for (int i = 0; i < n; i++) VP_ASSERT_OK(vp_tensor_copy_to(h[i], VP_MEM_DEVICE, 0, &dv[i]));
  VP_ASSERT_OK(vp_ops_call(name, n, h, json, 0, co));
  VP_ASSERT_OK(vp_ops_call(name, n, dv, json, 0, go));
  run_poisoned(name, n, dv, json, 0, po);
  char what[700];
  for (int i = 0; i < n; i++) {
    snprintf(what, sizeof what, "%s sample %d %.500s", name, i, json);
    assert_int_equal(vp_tensor_memkind(go[i]), VP_MEM_DEVICE);
    compare(what, co[i], go[i], exact);
    compare(what, co[i], po[i], exact);
    vp_tensor_release(co[i]);
    vp_tensor_release(go[i]);
    vp_tensor_release(po[i]);
    vp_tensor_release(dv[i]);
  }
}


static const vp_dtype k_dtypes[] = {VP_U8, VP_I16, VP_U32, VP_I64, VP_F16, VP_F32, VP_F64};
#define NUM_DTYPES ((int)(sizeof k_dtypes / sizeof k_dtypes[0]))

/* A batch of 3-D samples (array order D, H, W) and one with channels. */
static void batch3(vp_dtype d, vp_tensor **h) {
  int64_t s0[3] = {5, 31, 7}, s1[3] = {12, 3, 40}, s2[4] = {2, 9, 12, 17};
  h[0] = make_host(d, 3, s0);
  h[1] = make_host(d, 3, s1);
  h[2] = make_host(d, 4, s2);
}

static void test_pad_crop_or_pad_gpu(void **state) {
  (void)state;
  static const char *modes[3] = {"constant", "edge", "reflect"};
  char json[600];
  for (int di = 0; di < NUM_DTYPES; di++)
    for (int m = 0; m < 3; m++) {
      vp_tensor *h[3];
      batch3(k_dtypes[di], h);
      int r = (int)(urand() * 20);
      snprintf(json, sizeof json,
               "{\"before\": {\"per_sample\": [[%d, 0, 3], [1, 9, 0], [0]]}, \"after\": "
               "{\"per_sample\": [[2], [0, 4, 1], [3, 40, 1]]}, \"mode\": \"%s\", \"fill\": 77}",
               r, modes[m]);
      compare_op("pad", 3, h, json, 1);
      snprintf(json, sizeof json, "{\"shape\": [16, 16, 16], \"mode\": \"%s\", \"fill\": -3}",
               modes[m]);
      compare_op("pad", 3, h, json, 1);
      snprintf(json, sizeof json, "{\"multiple_of\": [8, 4, 16], \"mode\": \"%s\"}", modes[m]);
      compare_op("pad", 3, h, json, 1);
      snprintf(json, sizeof json,
               "{\"shape\": {\"per_sample\": [[8, 20, 3], [%d, 1, 33], [2, 0, 21]]}, \"mode\": "
               "\"%s\", \"fill\": 5}",
               1 + (int)(urand() * 30), modes[m]);
      compare_op("crop_or_pad", 3, h, json, 1);
      release_all(h, 3);
    }
}

static void test_transpose_gpu(void **state) {
  (void)state;
  for (int di = 0; di < NUM_DTYPES; di++) {
    int64_t s1[1] = {100}, s2[2] = {17, 33}, s3[3] = {5, 31, 7}, s4[4] = {2, 9, 12, 40},
            s5[5] = {3, 2, 4, 5, 6};
    vp_tensor *h[4] = {make_host(k_dtypes[di], 4, s4), make_host(k_dtypes[di], 3, s3),
                       make_host(k_dtypes[di], 2, s2), make_host(k_dtypes[di], 1, s1)};
    compare_op("transpose", 4, h,
               "{\"perm\": {\"per_sample\": [[2, 0, 1], [1, 2, 0], [1, 0], [0]]}, "
               "\"spatial_only\": true}",
               1);
    compare_op("transpose", 2, h, "{\"perm\": {\"per_sample\": [[3, 1, 0, 2], [2, 0, 1]]}}", 1);
    vp_tensor *h5 = make_host(k_dtypes[di], 5, s5);
    compare_op("transpose", 1, &h5, "{\"perm\": [4, 2, 0, 3, 1]}", 1);
    compare_op("transpose", 1, &h5, "{\"perm\": [2, 1, 0], \"spatial_only\": true}", 1);
    vp_tensor_release(h5);
    release_all(h, 4);
  }
  /* a larger volume: many blocks, grid-stride loop */
  int64_t big[4] = {4, 155, 240, 240};
  vp_tensor *b = make_host(VP_F32, 4, big);
  compare_op("transpose", 1, &b, "{\"perm\": [2, 1, 0], \"spatial_only\": true}", 1);
  vp_tensor_release(b);
}

static void test_resample_spacing_gpu(void **state) {
  (void)state;
  char json[400];
  for (int di = 0; di < NUM_DTYPES; di++)
    for (int ip = 0; ip < 2; ip++) {
      vp_tensor *h[3];
      batch3(k_dtypes[di], h);
      double sp[3] = {1.5, 0.8, 2.5};
      VP_ASSERT_OK(vp_tensor_set_spacing(h[0], 3, sp));
      snprintf(json, sizeof json,
               "{\"spacing\": {\"per_sample\": [[1, 1, 1], [%.17g], [0.5, 2, 1.5]]}, "
               "\"interp\": \"%s\"}",
               0.3 + urand() * 2, ip ? "linear" : "nearest");
      compare_op("resample_spacing", 3, h, json, ip == 0);
      release_all(h, 3);
    }
}

int main(void) {
  if (vp_cuda_device_count() == 0) {
    fprintf(stderr, "no CUDA device: skipped\n");
    return 77;
  }
  g_rng = vp_test_seed();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_pad_crop_or_pad_gpu),
      cmocka_unit_test(test_transpose_gpu),
      cmocka_unit_test(test_resample_spacing_gpu),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
