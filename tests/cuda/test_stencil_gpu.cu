/* The GPU bodies of gaussian_blur, simulate_low_resolution, bias_field,
 * erase and one_hot against their CPU bodies (the references that
 * tests/c/test_stencil_ops.c checks), on mixed batches (2-D, 3-D, 4-D and a
 * [2, 48, 64, 72] sample) of every supported dtype, with the same seed so
 * both draw the same numbers. GPU outputs are poisoned first (gpu_testutil.h)
 * so that unwritten voxels show.
 *
 * Exact (bytes equal): one_hot, erase with a value fill, every unchanged
 * sample, the single-pass blur. Within 1e-5 of the output's range
 * (integers plus one, float16 plus one ulp): gaussian_blur's other tests,
 * bias_field (exp and the polynomial in float64, last-ulp differences),
 * erase with noise (Box-Muller's logf/sinf/cosf), simulate_low_resolution
 * (the engine's linear and cubic). gaussian_blur's tiled kernels also run
 * on shapes that cut their tiles, extents below the radius, radius 128,
 * every dtype, p on and off, and a volume of more than 2^31 voxels against
 * a float64 oracle. Exits 77 (skipped) without a GPU. */
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

/* ---------------------------------------------------------------- */
/* gaussian_blur's tiled kernels (src/cuda/gaussian_blur.cu): W rows tiles
 * of 32..256 voxels, H/D column tiles of 32 x 64, against the CPU body.
 * Inputs carry no NaN here (a NaN spreads over the whole window and would
 * hide the arithmetic); test_blur_gpu keeps them. */

typedef struct blur_shape {
  int ndim;
  int64_t shape[4];
} blur_shape;

static const vp_dtype k_all_dtypes[] = {VP_U8,  VP_I8,  VP_U16, VP_I16, VP_U32,
                                        VP_I32, VP_I64, VP_F16, VP_F32, VP_F64};

static vp_tensor *make_finite(vp_dtype d, const blur_shape *s) {
  vp_tensor *t = make_host(d, s->ndim, s->shape, 0);
  int64_t n = vp_tensor_numel(t);
  for (int64_t i = 0; i < n; i++)
    if (isnan(vp_cvt_load(vp_tensor_data(t), d, i))) vp_cvt_store(vp_tensor_data(t), d, i, 0.0);
  return t;
}

/* CPU call vs poisoned GPU body on a batch of the given shapes, per dtype;
 * exact 1: bytes equal to the CPU's and the input's (copies); 2: bytes
 * equal to the CPU's (the same roundings in the same order). */
static void blur_vs_cpu(const char *json, const blur_shape *shapes, int n, const vp_dtype *dts,
                        int ndt, int exact) {
  for (int di = 0; di < ndt; di++) {
    vp_dtype d = dts[di];
    vp_tensor *host[16] = {0}, *dev[16] = {0}, *cpu[16] = {0}, *gpu[16] = {0};
    assert_true(n <= 16);
    for (int i = 0; i < n; i++) {
      host[i] = make_finite(d, &shapes[i]);
      VP_ASSERT_OK(vp_tensor_copy_to(host[i], VP_MEM_DEVICE, 0, &dev[i]));
    }
    uint64_t seed = vp_test_rand(&g_rng);
    VP_ASSERT_OK(vp_ops_call("gaussian_blur", n, host, json, seed, cpu));
    run_poisoned("gaussian_blur", n, dev, json, seed, gpu);
    for (int i = 0; i < n; i++) {
      char what[400];
      snprintf(what, sizeof what, "gaussian_blur %s sample %d (%s, seed %llu)", vp_dtype_name(d), i,
               json, (unsigned long long)seed);
      compare(what, cpu[i], gpu[i], exact != 0);
      if (exact == 1) compare(what, host[i], gpu[i], 1); /* p = 0: the input's bytes */
    }
    release_all(host, n);
    release_all(dev, n);
    release_all(cpu, n);
    release_all(gpu, n);
  }
}

/* blur_vs_cpu on every dtype with the sigma member `sig`: as given and at
 * p 0.5 (compared as `exact`), and with p0 at p 0 (the input's bytes). */
static void blur_with_p(const char *sig, const blur_shape *shapes, int n, int exact, int p0) {
  char json[512];
  snprintf(json, sizeof json, "{%s}", sig);
  blur_vs_cpu(json, shapes, n, k_all_dtypes, 10, exact);
  snprintf(json, sizeof json, "{%s, \"p\": 0.5}", sig);
  blur_vs_cpu(json, shapes, n, k_all_dtypes, 10, exact);
  if (p0) {
    snprintf(json, sizeof json, "{%s, \"p\": 0}", sig);
    blur_vs_cpu(json, shapes, n, k_all_dtypes, 10, 1);
  }
}

/* Tiles cut by every extent (W 300: two 256-wide row tiles; H 33 and D 70
 * against 64-deep column tiles; M = 300 and 9900 against 32-wide ones),
 * extents of 1 and 2 below the radius, a W of 1, an axis or all axes at
 * sigma 0 (a conversion), channels, and samples that p leaves alone. */
static void test_blur_edges_gpu(void **state) {
  (void)state;
  static const blur_shape shapes[] = {
      {4, {3, 70, 33, 300}}, {3, {1, 2, 1}},  {3, {2, 1, 5}}, {2, {7, 2}},
      {3, {1, 1, 1}},        {3, {5, 40, 1}}, {2, {33, 65}},  {3, {4, 9, 37}},
  };
  blur_with_p("\"sigma\": {\"per_sample\": [[1.0, 2.2, 0.8], [2.0], [1.5, 3.0, 0.5], [3.0, 1.0], "
              "[1.0], [1.0], [0, 2.0], [0]]}",
              shapes, (int)(sizeof shapes / sizeof shapes[0]), 0, 1);
}

/* The single-pass kernel (blur_vol: float accumulation, radii <= 4):
 * every D radius 0..4 (one launch each), W and H radii 0..4 apart from
 * it, extents that cut its 32 x 16 tiles (H 33 and 17, W 45, 65 and 33)
 * and its walks along D (the launch sizes them to fill the GPU: D 70 and
 * 40 here go in walks of a few planes),
 * extents below the radius, 2-D samples, and samples p leaves alone;
 * bytes equal to the CPU body's. */
static void test_blur_single_pass_gpu(void **state) {
  (void)state;
  static const blur_shape shapes[] = {
      {4, {2, 70, 33, 45}}, {3, {37, 17, 65}}, {3, {40, 16, 32}},
      {3, {3, 2, 5}},       {2, {19, 40}},     {3, {65, 1, 33}},
  };
  blur_with_p("\"sigma\": {\"per_sample\": [[1.3, 0.3, 1.0], [0.6, 1.3, 0], [0.3, 0.6, 1.3], "
              "[1.0, 1.3, 1.3], [1.0, 0.6], [0, 1.0, 0.3]]}",
              shapes, (int)(sizeof shapes / sizeof shapes[0]), 2, 0);
}

/* Tiles whose halo lies inside the axis (the gathers' unreflected path):
 * D and H of 150 and 140 hold 64-deep column tiles with 3-voxel halos
 * clear of both ends, W of 520 a 256-wide row tile; the lean float32 and
 * float64 kernels and the converting one (uint16). */
static void test_blur_interior_gpu(void **state) {
  (void)state;
  static const blur_shape shapes[] = {{4, {1, 150, 140, 520}}, {3, {150, 140, 520}}};
  static const vp_dtype dts[] = {VP_U16, VP_F32, VP_F64};
  blur_vs_cpu("{\"sigma\": {\"per_sample\": [[1.0], [0.9, 0.7, 1.1]]}}", shapes, 2, dts, 3, 0);
}

/* Radius 128 (sigma 32, truncate 4: the op's bounds), on extents both
 * above and below it: 257-voxel halos around 256-wide row tiles and 64-deep
 * column tiles; float64 columns need 80 KiB of shared memory (opt-in). */
static void test_blur_max_radius_gpu(void **state) {
  (void)state;
  static const blur_shape shapes[] = {{4, {2, 6, 150, 300}}, {2, {40, 300}}, {3, {3, 200, 5}}};
  static const vp_dtype dts[] = {VP_U16, VP_F16, VP_F32, VP_F64};
  blur_vs_cpu(
      "{\"sigma\": {\"per_sample\": [[32.0], [32.0, 0.3], [32.0, 20.0, 32.0]]}, \"truncate\": 4}",
      shapes, 3, dts, 4, 0);
}

/* A volume of more than 2^31 voxels (uint8 [2, 32768, 32800], sigma 1:
 * radius 3, D = 2 below it): every pass indexes past 2^31 and the W launch
 * has more tiles than blocks. Checked against a float64 oracle written
 * here (own weights and reflection) at voxels near both ends and the
 * 2^31 boundary; uint8 output: within 1 of the rounded oracle. Skipped
 * when the GPU lacks the ~23 GB it needs. */
static __global__ void fill_pattern(uint8_t *p, int64_t n) {
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n;
       e += (int64_t)gridDim.x * blockDim.x)
    p[e] = (uint8_t)(((uint64_t)e * 0x9E3779B97F4A7C15ull) >> 56);
}

static double pattern(int64_t e) {
  return (double)(uint8_t)(((uint64_t)e * 0x9E3779B97F4A7C15ull) >> 56);
}

static int64_t refl(int64_t i, int64_t n) {
  while (i < 0 || i >= n) i = i < 0 ? -1 - i : 2 * n - 1 - i;
  return i;
}

static void test_blur_big_gpu(void **state) {
  (void)state;
  const int64_t D = 2, H = 32768, W = 32800, n = D * H * W;
  size_t free_b = 0, total_b = 0;
  CUDA_OK(cudaMemGetInfo(&free_b, &total_b));
  if (free_b < (size_t)25 << 30) {
    printf("gaussian_blur > 2^31 voxels: skipped (%zu MiB free)\n", free_b >> 20);
    return;
  }
  int64_t shape[3] = {D, H, W};
  vp_tensor *in = NULL, *out = NULL;
  VP_ASSERT_OK(vp_tensor_create(VP_U8, 3, shape, VP_MEM_DEVICE, 0, &in));
  fill_pattern<<<4096, 256>>>((uint8_t *)vp_tensor_data(in), n);
  CUDA_OK(cudaGetLastError());
  CUDA_OK(cudaDeviceSynchronize());
  run_poisoned("gaussian_blur", 1, &in, "{\"sigma\": [1.0]}", 1, &out);
  double w[4], sum = 0;
  for (int k = 0; k <= 3; k++) sum += (k ? 2 : 1) * (w[k] = exp(-0.5 * k * k));
  for (int k = 0; k <= 3; k++) w[k] /= sum;
  /* voxels: corners, rows around element 2^31, the last rows */
  int64_t probes[64];
  int np = 0;
  const int64_t at[] = {
      0, W - 1, H * W - 1, H * W, ((int64_t)1 << 31) - 2, ((int64_t)1 << 31) + 5, n - W, n - 1};
  for (int a = 0; a < 8; a++)
    for (int64_t off = -3; off <= 3; off += 3) {
      int64_t e = at[a] + off * (W + 1);
      if (e >= 0 && e < n) probes[np++] = e;
    }
  for (int k = 0; k < np; k++) {
    int64_t e = probes[k], z = e / (H * W), y = (e / W) % H, x = e % W;
    double want = 0;
    for (int a = -3; a <= 3; a++)
      for (int b = -3; b <= 3; b++)
        for (int c = -3; c <= 3; c++)
          want += w[abs(a)] * w[abs(b)] * w[abs(c)] *
                  pattern((refl(z + a, D) * H + refl(y + b, H)) * W + refl(x + c, W));
    uint8_t got = 0;
    CUDA_OK(cudaMemcpy(&got, (const uint8_t *)vp_tensor_data(out) + e, 1, cudaMemcpyDeviceToHost));
    if (fabs((double)got - want) > 1.0)
      fail_msg("gaussian_blur > 2^31 voxels: element %lld (%lld, %lld, %lld): GPU %u, oracle %.4f",
               (long long)e, (long long)z, (long long)y, (long long)x, got, want);
  }
  printf("gaussian_blur > 2^31 voxels: %d probes within 1 of the float64 oracle\n", np);
  vp_tensor_release(out);
  vp_tensor_release(in);
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
      cmocka_unit_test(test_blur_gpu),
      cmocka_unit_test(test_blur_edges_gpu),
      cmocka_unit_test(test_blur_single_pass_gpu),
      cmocka_unit_test(test_blur_interior_gpu),
      cmocka_unit_test(test_blur_max_radius_gpu),
      cmocka_unit_test(test_blur_big_gpu),
      cmocka_unit_test(test_lowres_gpu),
      cmocka_unit_test(test_bias_gpu),
      cmocka_unit_test(test_erase_gpu),
      cmocka_unit_test(test_one_hot_gpu),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
