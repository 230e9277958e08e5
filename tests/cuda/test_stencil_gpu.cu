/* The GPU bodies of gaussian_blur, simulate_low_resolution, bias_field,
 * erase and one_hot against their CPU bodies (the references that
 * tests/c/test_stencil_ops.c checks), on mixed batches (2-D, 3-D, 4-D and a
 * [2, 48, 64, 72] sample) of every supported dtype, with the same seed so
 * both draw the same numbers. GPU outputs are poisoned first (gpu_testutil.h)
 * so that unwritten voxels show.
 *
 * Exact (bytes equal): one_hot, erase with a value fill, every unchanged
 * sample. Within 1e-5 of the output's range (integers plus one, float16
 * plus one ulp): gaussian_blur (float32 taps, FMA contraction on the GPU),
 * bias_field (exp and the polynomial in float64, last-ulp differences),
 * erase with noise (Box-Muller's logf/sinf/cosf), simulate_low_resolution
 * (the engine's linear and cubic). Exits 77 (skipped) without a GPU. */
#include <cuda_runtime.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "core/cuda_rt.h"
#include "core/status.h"
#include "testutil.h"
}
#include "gpu_testutil.h"
#include "ops/op.h"

static const vp_dtype k_dtypes[] = {VP_U8, VP_I16, VP_U16, VP_I32, VP_F16, VP_F32, VP_F64};
static const int k_ndtypes = (int)(sizeof k_dtypes / sizeof k_dtypes[0]);

/* Random host tensor: integers over a wide range, floats in [-300, 300)
 * with a few NaN (blur spreads them identically on both). labels: 0..6. */
static vp_tensor *make_host(vp_dtype d, int ndim, const int64_t *shape, int labels) {
  vp_tensor *t = NULL;
  VP_ASSERT_OK(vp_tensor_create(d, ndim, shape, VP_MEM_HOST, 0, &t));
  int64_t n = vp_tensor_numel(t);
  for (int64_t i = 0; i < n; i++) {
    uint64_t r = vp_test_rand(&g_rng);
    double v;
    if (labels)
      v = (double)(r % 7);
    else if (d < VP_F16)
      v = (double)(int64_t)(r % 2000001) - 1000000.0;
    else
      v = (r % 997 == 0) ? NAN : (urand() - 0.5) * 600;
    vp_cvt_store(vp_tensor_data(t), d, i, v);
  }
  return t;
}

/* A mixed batch on the host and its device copy: 2-D, 3-D, 4-D and a
 * [2, 48, 64, 72] sample (label batches: 3-D and 4-D). */
static int make_batch(vp_dtype d, int labels, vp_tensor **host, vp_tensor **dev) {
  int64_t s2[2] = {17, 33}, s3[3] = {5, 31, 7}, s4[4] = {2, 3, 9, 65}, sb[4] = {2, 48, 64, 72};
  int64_t l4[4] = {1, 6, 10, 12};
  int n = 0;
  if (labels) {
    int64_t s3l[3] = {5, 31, 7};
    host[n++] = make_host(d, 3, s3l, 1);
    host[n++] = make_host(d, 4, l4, 1);
  } else {
    host[n++] = make_host(d, 2, s2, 0);
    host[n++] = make_host(d, 3, s3, 0);
    host[n++] = make_host(d, 4, sb, 0);
    host[n++] = make_host(d, 4, s4, 0);
  }
  for (int i = 0; i < n; i++) VP_ASSERT_OK(vp_tensor_copy_to(host[i], VP_MEM_DEVICE, 0, &dev[i]));
  return n;
}

/* CPU call vs poisoned GPU body, for every dtype. */
static void cpu_vs_gpu(const char *op, const char *json, int exact, int labels) {
  for (int di = 0; di < k_ndtypes; di++) {
    vp_dtype d = k_dtypes[di];
    if (labels && d == VP_F16) continue;
    vp_tensor *host[5] = {0}, *dev[5] = {0}, *cpu[5] = {0}, *gpu[5] = {0};
    int n = make_batch(d, labels, host, dev);
    uint64_t seed = vp_test_rand(&g_rng);
    VP_ASSERT_OK(vp_ops_call(op, n, host, json, seed, cpu));
    run_poisoned(op, n, dev, json, seed, gpu);
    for (int i = 0; i < n; i++) {
      char what[160];
      snprintf(what, sizeof what, "%s %s sample %d (%s)", op, vp_dtype_name(d), i, json);
      compare(what, cpu[i], gpu[i], exact);
    }
    release_all(host, n);
    release_all(dev, n);
    release_all(cpu, n);
    release_all(gpu, n);
  }
}

static void test_blur_gpu(void **state) {
  (void)state;
  cpu_vs_gpu("gaussian_blur", "{\"sigma\": [1.0]}", 0, 0);
  cpu_vs_gpu("gaussian_blur",
             "{\"sigma\": {\"per_sample\": [[0.5, 2.0], [1.5, 0, 0.7], [1.5], [3.0]]}, \"p\": 0.7}",
             0, 0);
}

static void test_lowres_gpu(void **state) {
  (void)state;
  cpu_vs_gpu("simulate_low_resolution",
             "{\"zoom_lo\": 0.4, \"zoom_hi\": 0.9, \"order_upsample\": \"linear\", \"p\": 0.8, "
             "\"p_per_channel\": 0.7, \"per_channel\": true}",
             0, 0);
  cpu_vs_gpu("simulate_low_resolution", "{\"order_upsample\": \"nearest\"}", 1, 0);
  /* cubic: once the engine has it (VP_ERR_UNSUPPORTED until then) */
  const vp_op_desc *op = vp_op_lookup("simulate_low_resolution");
  assert_non_null(op);
  int64_t sh[3] = {6, 7, 8};
  vp_tensor *t = make_host(VP_F32, 3, sh, 0), *o = NULL;
  vp_status s =
      vp_ops_call("simulate_low_resolution", 1, &t, "{\"order_upsample\": \"cubic\"}", 1, &o);
  vp_tensor_release(o);
  vp_tensor_release(t);
  if (s == VP_OK)
    cpu_vs_gpu("simulate_low_resolution", "{\"zoom_lo\": 0.5, \"zoom_hi\": 0.8}", 0, 0);
  else
    printf("simulate_low_resolution: cubic not available yet (%s)\n", vp_last_error());
}

static void test_bias_gpu(void **state) {
  (void)state;
  cpu_vs_gpu("bias_field", "{\"p\": 0.8}", 0, 0);
  cpu_vs_gpu("bias_field", "{\"degree\": 6, \"coeff_range\": [-0.3, 0.3]}", 0, 0);
}

static void test_erase_gpu(void **state) {
  (void)state;
  cpu_vs_gpu("erase", "{\"holes\": 2, \"max_holes\": 6, \"value\": -3.5, \"p\": 0.8}", 1, 0);
  cpu_vs_gpu("erase",
             "{\"holes\": 3, \"size_lo\": [0.2], \"size_hi\": [0.6], \"fill\": \"noise\", "
             "\"mean\": 1, \"stddev\": 20}",
             0, 0);
}

static void test_one_hot_gpu(void **state) {
  (void)state;
  cpu_vs_gpu("one_hot", "{\"num_classes\": 5}", 1, 1);
  cpu_vs_gpu("one_hot", "{\"classes\": [6, 0, 3], \"dtype\": \"uint8\"}", 1, 1);
  cpu_vs_gpu("one_hot", "{\"num_classes\": 7, \"dtype\": \"float16\"}", 1, 1);
}

int main(void) {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    printf("no GPU: skipped\n");
    return 77;
  }
  g_rng = vp_test_seed();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_blur_gpu),    cmocka_unit_test(test_lowres_gpu),
      cmocka_unit_test(test_bias_gpu),    cmocka_unit_test(test_erase_gpu),
      cmocka_unit_test(test_one_hot_gpu),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
