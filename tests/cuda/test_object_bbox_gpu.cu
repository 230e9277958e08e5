/* random_object_bbox and random_crop_window on the GPU against their CPU
 * bodies: the same seed gives the same boxes, classes and windows (exact),
 * into outputs poisoned before the GPU run; with the component cache off,
 * on a miss and on a hit (lists in device memory); batches of mixed shapes,
 * 2-D and 3-D, uint8 and int16 labels. Exits 77 (skipped) without a GPU. */
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
#include "ops/object_cache.h"
#include "ops/op.h"

enum { N = 5 };

/* Blocks of values 1..3 on a sparse random background (some samples with
 * no foreground at all). */
static vp_tensor *volume(vp_dtype t, int nd, int64_t D, int64_t H, int64_t W, int blocks) {
  int64_t shape[3] = {D, H, W};
  if (nd == 2) shape[0] = H, shape[1] = W;
  vp_tensor *v = NULL;
  VP_ASSERT_OK(vp_tensor_create(t, nd, shape, VP_MEM_HOST, 0, &v));
  if (nd == 2) D = 1;
  memset(vp_tensor_data(v), 0, vp_tensor_nbytes(v));
  for (int b = 0; b < blocks; b++) {
    int64_t d0 = (int64_t)(urand() * D), h0 = (int64_t)(urand() * H), w0 = (int64_t)(urand() * W);
    int64_t ed = 1 + (int64_t)(urand() * 6), eh = 1 + (int64_t)(urand() * 8),
            ew = 1 + (int64_t)(urand() * 9);
    double val = 1 + (int)(urand() * 3);
    for (int64_t d = d0; d < D && d < d0 + ed; d++)
      for (int64_t h = h0; h < H && h < h0 + eh; h++)
        for (int64_t w = w0; w < W && w < w0 + ew; w++)
          vp_cvt_store(vp_tensor_data(v), t, (d * H + h) * W + w, val);
  }
  return v;
}

static void batch(vp_dtype t, int nd, vp_tensor **host, vp_tensor **dev) {
  for (int i = 0; i < N; i++) {
    host[i] = volume(t, nd, 8 + 3 * i, 20 + i, 17 + 2 * i, i == 2 ? 0 : 4 + 5 * i);
    VP_ASSERT_OK(vp_tensor_copy_to(host[i], VP_MEM_DEVICE, 0, &dev[i]));
  }
}

/* CPU body (vp_ops_call on host tensors) vs GPU body (poisoned). */
static void same(const char *op, int nout, vp_tensor **host, vp_tensor **dev, const char *json,
                 uint64_t seed) {
  vp_tensor *cpu[4 * N], *gpu[4 * N];
  VP_ASSERT_OK(vp_ops_call(op, N, host, json, seed, cpu));
  run_poisoned(op, N, dev, json, seed, gpu);
  char what[512];
  for (int k = 0; k < nout * N; k++) {
    snprintf(what, sizeof what, "%s %s output %d sample %d", op, json, k / N, k % N);
    compare(what, cpu[k], gpu[k], 1);
  }
  release_all(cpu, nout * N);
  release_all(gpu, nout * N);
}

static void test_bbox_gpu(void **state) {
  (void)state;
  const char *cases[] = {
      "{\"output_class\": true}",
      "{\"output_class\": true, \"format\": \"start_end\", \"k_largest\": 2}",
      "{\"format\": \"box\", \"foreground_prob\": 0.4, \"classes\": [1, 2], \"class_weights\": "
      "[1, 3]}",
      "{\"output_class\": true, \"threshold\": [2, 3, 3], \"classes\": [1, 2, 3]}",
      "{\"output_class\": true, \"ignore_class\": true, \"connectivity\": 26}",
      "{\"output_class\": true, \"cache_bytes\": 1000000}",
      "{\"output_class\": true, \"cache_bytes\": 1000000}", /* hits */
  };
  vp_dtype types[2] = {VP_U8, VP_I16};
  for (int t = 0; t < 2; t++) {
    vp_tensor *host[N], *dev[N];
    batch(types[t], 3, host, dev);
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++)
      for (int rep = 0; rep < 3; rep++)
        same("random_object_bbox", 2, host, dev, cases[c], 17 + rep);
    release_all(host, N);
    release_all(dev, N);
  }
  vp_objc_clear(0);
  vp_objc_clear(-1);
  vp_tensor *host[N], *dev[N];
  batch(VP_U8, 2, host, dev);
  same("random_object_bbox", 2, host, dev, "{\"output_class\": true, \"connectivity\": 8}", 3);
  release_all(host, N);
  release_all(dev, N);
}

static void test_crop_window_gpu(void **state) {
  (void)state;
  const char *cases[] = {
      "{\"mode\": \"roi\", \"crop_shape\": [4, 6, 5], \"roi\": [1, 2, 3, 5, 9, 7]}",
      "{\"mode\": \"roi\", \"crop_shape\": [40, 3, 2]}",
      "{\"mode\": \"mask_pixel\", \"crop_shape\": [4, 6, 5]}",
      "{\"mode\": \"mask_pixel\", \"crop_shape\": [1], \"value\": [2]}",
      "{\"mode\": \"nnunet\", \"crop_shape\": [3, 3, 3], \"oversample_foreground_percent\": 0.6}",
      "{\"mode\": \"class_ratios\", \"crop_shape\": [2], \"ratios\": [1, 2, 3, 4]}",
  };
  vp_tensor *host[N], *dev[N];
  batch(VP_U8, 3, host, dev);
  for (size_t c = 0; c < sizeof cases / sizeof *cases; c++)
    for (int rep = 0; rep < 3; rep++) same("random_crop_window", 3, host, dev, cases[c], 5 + rep);
  release_all(host, N);
  release_all(dev, N);
  /* a volume larger than one search chunk: the chunk prefix search */
  for (int i = 0; i < N; i++) {
    host[i] = volume(VP_I16, 3, 40 + i, 61, 67, 30);
    VP_ASSERT_OK(vp_tensor_copy_to(host[i], VP_MEM_DEVICE, 0, &dev[i]));
  }
  same("random_crop_window", 3, host, dev, "{\"mode\": \"mask_pixel\", \"crop_shape\": [1]}", 9);
  same("random_crop_window", 3, host, dev,
       "{\"mode\": \"nnunet\", \"crop_shape\": [1], \"oversample_foreground_percent\": 1}", 9);
  release_all(host, N);
  release_all(dev, N);
}

int main(void) {
  if (vp_cuda_device_count() == 0) {
    fprintf(stderr, "no CUDA device: skipped\n");
    return 77;
  }
  g_rng = vp_test_seed();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_bbox_gpu),
      cmocka_unit_test(test_crop_window_gpu),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
