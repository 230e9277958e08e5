/* Injected device-allocation failures (the hook in src/core/memory.h): for
 * every n, let n device allocations succeed and fail the rest, through eager
 * GPU calls of operators with workspaces (labelling, object boxes, crop
 * windows, the pointwise engine's statistics, the cubic coefficients, blur,
 * elastic control grids) and through a pipeline with gpu nodes. Each failed
 * call must report VP_ERR_NOMEM with the injected cause in its message and
 * leave no output; the first n that succeeds must give the same bytes as an
 * uninjected call; and the device pool's memory in use must be back where it
 * started (no leaked workspace). Exits 77 (skipped) without a GPU. */
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern "C" {
#include "core/memory.h"
#include "pipeline_testlib.h"
}

static uint64_t g_seed;

static int setup(void **state) {
  (void)state;
  g_seed = vp_test_seed();
  alarm(900);
  return 0;
}

/* Bytes the device's default pool has handed out and not got back. */
static uint64_t pool_in_use(void) {
  cudaMemPool_t pool;
  uint64_t used = 0;
  if (cudaDeviceSynchronize() != cudaSuccess ||
      cudaDeviceGetDefaultMemPool(&pool, 0) != cudaSuccess ||
      cudaMemPoolGetAttribute(pool, cudaMemPoolAttrUsedMemCurrent, &used) != cudaSuccess)
    fail_msg("cannot read the device pool's usage");
  return used;
}

static vp_tensor *random_device(vp_dtype t, int ndim, const int64_t *shape, uint64_t *rng,
                                int labels) {
  vp_tensor *h = NULL, *d = NULL;
  VP_ASSERT_OK(vp_tensor_create(t, ndim, shape, VP_MEM_HOST, 0, &h));
  int64_t n = vp_tensor_numel(h);
  for (int64_t i = 0; i < n; i++) {
    uint64_t r = vp_test_rand(rng);
    if (t == VP_F32)
      ((float *)vp_tensor_data(h))[i] = (float)((double)(r >> 11) * 0x1p-53 * 10.0 - 3.0);
    else
      ((uint8_t *)vp_tensor_data(h))[i] =
          labels ? (uint8_t)((r % 16) == 0 ? 1 + r % 2 : 0) : (uint8_t)r;
  }
  VP_ASSERT_OK(vp_tensor_copy_to(h, VP_MEM_DEVICE, 0, &d));
  vp_tensor_release(h);
  return d;
}

static int same_bytes(const vp_tensor *a, const vp_tensor *b) {
  if (vp_tensor_nbytes(a) != vp_tensor_nbytes(b)) return 0;
  vp_tensor *ha = NULL, *hb = NULL;
  VP_ASSERT_OK(vp_tensor_copy_to(a, VP_MEM_HOST, 0, &ha));
  VP_ASSERT_OK(vp_tensor_copy_to(b, VP_MEM_HOST, 0, &hb));
  int eq = memcmp(vp_tensor_data(ha), vp_tensor_data(hb), vp_tensor_nbytes(a)) == 0;
  vp_tensor_release(ha);
  vp_tensor_release(hb);
  return eq;
}

typedef struct eager_case {
  const char *op;
  const char *args;
  int n_in, n_out;
} eager_case;

/* Inputs per sample: image f32 (1 x 9 x 10 x 11, then 1 x 7 x 12 x 5), label u8 of the
 * same spatial shape; ops with two inputs take (image, label) or (label, image). */
static void test_eager_device_alloc_failures(void **state) {
  (void)state;
  const eager_case cases[] = {
      {"connected_components", "{\"connectivity\": 26}", 1, 4},
      {"random_object_bbox", "{\"classes\": [1, 2], \"k_largest\": 2, \"foreground_prob\": 1}", 1,
       2},
      {"random_crop_window", "{\"crop_shape\": [4, 4, 4], \"mode\": \"mask_pixel\"}", 1, 3},
      {"normalize", "{\"stats\": \"channel\"}", 1, 1},
      {"contrast", "{\"factor\": 1.3}", 1, 1},
      {"resize", "{\"size\": [8, 13, 6], \"interp\": \"cubic\"}", 1, 1},
      {"gaussian_blur", "{\"sigma\": [1.0, 0.5, 1.5]}", 1, 1},
      {"elastic", "{\"grid_spacing\": [4, 4, 4], \"magnitude\": 1.5}", 1, 1},
      {"warp_affine", "{\"matrix\": [0.9, 0.1, 0, 1, -0.1, 1, 0, 0.5, 0, 0, 1.1, -1]}", 1, 1},
  };
  uint64_t rng = g_seed;
  const int64_t s0[4] = {1, 9, 10, 11}, s1[4] = {1, 7, 12, 5};
  vp_tensor *img[2] = {random_device(VP_F32, 4, s0, &rng, 0),
                       random_device(VP_F32, 4, s1, &rng, 0)};
  vp_tensor *lbl[2] = {random_device(VP_U8, 3, s0 + 1, &rng, 1),
                       random_device(VP_U8, 3, s1 + 1, &rng, 1)};
  const uint64_t before = pool_in_use();
  for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
    const eager_case *e = &cases[k];
    /* label ops read the label map, the others the image */
    int label_in = strstr(e->op, "component") || strstr(e->op, "object") || strstr(e->op, "crop");
    vp_tensor *in[2] = {label_in ? lbl[0] : img[0], label_in ? lbl[1] : img[1]};
    vp_tensor *ref[2 * 4] = {0};
    vp_status s = vp_ops_call(e->op, 2, in, e->args, g_seed, ref);
    if (s != VP_OK) fail_msg("%s: uninjected call failed: %s", e->op, vp_last_error());
    int failed = 0;
    int64_t n = 0;
    for (;; n++) {
      if (n > 200) fail_msg("%s: still failing with 200 device allocations allowed", e->op);
      vp_tensor *out[2 * 4];
      for (int i = 0; i < 8; i++) out[i] = (vp_tensor *)(uintptr_t)0x1; /* must be reset */
      vp_debug_fail_device_alloc_after(n);
      s = vp_ops_call(e->op, 2, in, e->args, g_seed, out);
      vp_debug_fail_device_alloc_after(-1);
      if (s == VP_OK) {
        for (int i = 0; i < 2 * e->n_out; i++)
          if (!same_bytes(out[i], ref[i]))
            fail_msg("%s: output %d differs from the uninjected call's after %lld allowed", e->op,
                     i, (long long)n);
        for (int i = 0; i < 2 * e->n_out; i++) vp_tensor_release(out[i]);
        break;
      }
      if (s != VP_ERR_NOMEM || !strstr(vp_last_error(), "injected"))
        fail_msg("%s: n = %lld gave %s: %s", e->op, (long long)n, vp_status_name(s),
                 vp_last_error());
      if (!strstr(vp_last_error(), e->op))
        fail_msg("%s: the message does not name the operator: %s", e->op, vp_last_error());
      for (int i = 0; i < 2 * e->n_out; i++)
        if (out[i]) fail_msg("%s: a failed call left output %d", e->op, i);
      failed++;
    }
    printf("%-22s %d injected failures handled, ran with %lld device allocations\n", e->op, failed,
           (long long)n);
    assert_true(failed > 0);
    for (int i = 0; i < 2 * e->n_out; i++) vp_tensor_release(ref[i]);
    uint64_t now = pool_in_use();
    if (now != before)
      fail_msg("%s: the device pool holds %lld bytes more than before", e->op,
               (long long)(now - before));
  }
  for (int i = 0; i < 2; i++) {
    vp_tensor_release(img[i]);
    vp_tensor_release(lbl[i]);
  }
}

/* reader -> gpu slice -> gpu flip -> gpu gaussian_noise, label -> gpu
 * connected_components. */
static vp_status build(const char *dir, vp_pipeline **out) {
  vp_pipeline_opts o;
  vp_pipeline_opts_init(&o);
  o.batch_size = 2;
  o.num_threads = 2;
  o.prefetch_queue_depth = 2;
  o.seed = g_seed;
  o.device = 0;
  vp_pipeline *p = NULL;
  vp_status s = vp_pipeline_create(&o, &p);
  if (s != VP_OK) return s;
  vp_dataset_opts d;
  pt_dataset_opts(&d, dir);
  const char *img[] = {"image"}, *sl[] = {"img_s"}, *fl[] = {"img_f"}, *no[] = {"img_n"};
  const char *lbl[] = {"label"}, *cc[] = {"cc", "cc_n", "cc_sizes", "cc_boxes"};
  const char *outs[] = {"img_n", "cc"};
  s = vp_pipeline_add_reader(p, &d, NULL, "image", "label");
  if (s == VP_OK)
    s = vp_pipeline_add_node(p, "slice", "gpu", 1, img,
                             "{\"anchor\": [0, 1, 1], \"shape\": [5, 5, 6]}", 1, sl);
  if (s == VP_OK) s = vp_pipeline_add_node(p, "flip", "gpu", 1, sl, "{\"depthwise\": true}", 1, fl);
  if (s == VP_OK)
    s = vp_pipeline_add_node(p, "gaussian_noise", "gpu", 1, fl, "{\"stddev\": 0.5}", 1, no);
  if (s == VP_OK) s = vp_pipeline_add_node(p, "connected_components", "gpu", 1, lbl, NULL, 4, cc);
  if (s == VP_OK) s = vp_pipeline_set_outputs(p, 2, outs);
  if (s == VP_OK) s = vp_pipeline_build(p);
  if (s != VP_OK) {
    vp_pipeline_destroy(p);
    return s;
  }
  *out = p;
  return VP_OK;
}

static uint64_t run_hash(vp_pipeline *p, int batches, vp_status *st) {
  uint64_t h = 1469598103934665603ull;
  *st = VP_OK;
  for (int b = 0; b < batches && *st == VP_OK; b++) {
    vp_tensor *out[2 * 2] = {0};
    *st = vp_pipeline_run(p, out, NULL);
    if (*st == VP_OK)
      for (int i = 0; i < 4; i++) {
        vp_tensor *hst = NULL;
        VP_ASSERT_OK(vp_tensor_copy_to(out[i], VP_MEM_HOST, 0, &hst));
        h = pt_hash_tensor(h, hst);
        vp_tensor_release(hst);
      }
    for (int i = 0; i < 4; i++) vp_tensor_release(out[i]);
  }
  return h;
}

static void test_pipeline_device_alloc_failures(void **state) {
  (void)state;
  char dir[700];
  snprintf(dir, sizeof dir, "%s", vp_test_path("faults_gpu"));
  pt_make_dataset(dir, 5, -1, g_seed);
  vp_pipeline *p = NULL;
  VP_ASSERT_OK(build(dir, &p));
  vp_status s;
  uint64_t want = run_hash(p, 3, &s);
  VP_ASSERT_OK(s);
  vp_pipeline_destroy(p);
  const uint64_t before = pool_in_use();
  int failed = 0;
  int64_t n = 0;
  for (;; n++) {
    if (n > 2000) fail_msg("pipeline: still failing with 2000 device allocations allowed");
    vp_debug_fail_device_alloc_after(n);
    p = NULL;
    s = build(dir, &p);
    uint64_t got = 0;
    if (s == VP_OK) got = run_hash(p, 3, &s);
    vp_pipeline_destroy(p);
    vp_debug_fail_device_alloc_after(-1);
    if (s == VP_OK) {
      if (got != want) fail_msg("pipeline: batches differ after %lld allowed", (long long)n);
      break;
    }
    if (s != VP_ERR_NOMEM || !strstr(vp_last_error(), "injected"))
      fail_msg("pipeline: n = %lld gave %s: %s", (long long)n, vp_status_name(s), vp_last_error());
    failed++;
  }
  printf("pipeline: %d injected failures handled, ran with %lld device allocations allowed\n",
         failed, (long long)n);
  assert_true(failed > 0);
  uint64_t now = pool_in_use();
  if (now != before)
    fail_msg("pipeline: the device pool holds %lld bytes more than before",
             (long long)(now - before));
  /* the process is fine afterwards */
  VP_ASSERT_OK(build(dir, &p));
  assert_true(run_hash(p, 3, &s) == want);
  VP_ASSERT_OK(s);
  vp_pipeline_destroy(p);
}

int main(void) {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
    printf("no CUDA device: skipped\n");
    return 77;
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_eager_device_alloc_failures),
      cmocka_unit_test(test_pipeline_device_alloc_failures),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
