/* The resampling engine and its operators (warp_affine, resize) on the GPU
 * against their CPU bodies, for every input dtype, interpolation and
 * border, on batches of mixed shapes (2-D, 3-D, 4-D, and a [4, 155, 240,
 * 240] float32 sample), with the outputs poisoned before the GPU run so
 * that unwritten voxels show; and the engine with a displacement field
 * (device nodes). Nearest must be bit-exact; linear within 1e-5 of the
 * CPU output's value range (integer outputs: plus one for a rounding flip,
 * float16: plus one ulp). NaN matches NaN. Exits 77 without a GPU. */
#include <cuda_runtime.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "core/convert.h"
#include "core/cuda_rt.h"
#include "core/status.h"
#include "core/threadpool.h"
#include "testutil.h"
}
#include "cuda/kernels.h"
#include "gpu_testutil.h"
#include "ops/op.h"
#include "ops/resample.h"

/* Cubic spreads a NaN over its whole volume (the prefilter is global), so
 * its tests turn the NaNs off. */
static int g_no_nan;

/* Random host tensor: integers over their whole range, floats in
 * [-300, 300) with a few NaN (unless g_no_nan). */
static vp_tensor *make_host(vp_dtype d, int ndim, const int64_t *shape) {
  vp_tensor *t = NULL;
  VP_ASSERT_OK(vp_tensor_create(d, ndim, shape, VP_MEM_HOST, 0, &t));
  int64_t n = vp_tensor_numel(t);
  unsigned char *p = (unsigned char *)vp_tensor_data(t);
  size_t es = vp_dtype_size(d);
  for (int64_t i = 0; i < n; i++) {
    uint64_t r = vp_test_rand(&g_rng);
    if (d < VP_F16) {
      memcpy(p + i * es, &r, es);
      continue;
    }
    double v = (!g_no_nan && r % 97 == 0) ? NAN : (urand() - 0.5) * 600;
    vp_cvt_store(p, d, i, v);
  }
  double aff[16] = {0};
  for (int k = 0; k < 12; k++) aff[k] = urand() - 0.5;
  aff[15] = 1;
  VP_ASSERT_OK(vp_tensor_set_affine(t, aff));
  return t;
}

/* The op on the CPU, through vp_ops_call on the GPU, and poisoned. */
static void compare_op(const char *name, vp_dtype d, int big, const char *json, int exact) {
  int64_t s2[2] = {17, 33}, s3[3] = {5, 31, 7}, s4[4] = {2, 3, 9, 65}, sb[4] = {4, 155, 240, 240};
  vp_tensor *h[4], *dv[4], *co[4], *go[4], *po[4];
  int n = 0;
  h[n++] = make_host(d, 2, s2);
  h[n++] = make_host(d, 3, s3);
  h[n++] = make_host(d, 4, s4);
  if (big) h[n++] = make_host(d, 4, sb);
  for (int i = 0; i < n; i++) VP_ASSERT_OK(vp_tensor_copy_to(h[i], VP_MEM_DEVICE, 0, &dv[i]));
  VP_ASSERT_OK(vp_ops_call(name, n, h, json, 0, co));
  VP_ASSERT_OK(vp_ops_call(name, n, dv, json, 0, go));
  run_poisoned(name, n, dv, json, 0, po);
  char what[600];
  for (int i = 0; i < n; i++) {
    snprintf(what, sizeof what, "%s %s sample %d %.400s", name, vp_dtype_name(d), i, json);
    assert_int_equal(vp_tensor_memkind(go[i]), VP_MEM_DEVICE);
    compare(what, co[i], go[i], exact);
    compare(what, co[i], po[i], exact);
    double a1[16], a2[16];
    vp_tensor_affine(co[i], a1);
    vp_tensor_affine(go[i], a2);
    assert_memory_equal(a1, a2, sizeof a1);
  }
  release_all(po, n);
  release_all(go, n);
  release_all(co, n);
  release_all(dv, n);
  release_all(h, n);
}

/* A matrix (rows of the sample's spatial axes) rotating by a random
 * angle in the last two axes, scaling and shifting, as JSON. */
static int matrix_json(char *buf, size_t cap, int sn) {
  double th = urand() * 6.3, c = cos(th), s = sin(th), sc = 0.6 + urand();
  double m3[12] = {sc,      0.1,         0.05, -0.5 + urand(), 0.02,   c * sc,
                   -s * sc, 3 * urand(), 0.03, s * sc,         c * sc, -2 + 4 * urand()};
  int used = snprintf(buf, cap, "[");
  for (int r = 3 - sn; r < 3; r++)
    for (int k = 3 - sn; k < 4; k++)
      used += snprintf(buf + used, cap - (size_t)used, "%s%.17g", used > 1 ? ", " : "",
                       m3[r * 4 + k] + 1e-7 * urand());
  used += snprintf(buf + used, cap - (size_t)used, "]");
  return used;
}

static void test_warp_affine_gpu(void **state) {
  (void)state;
  const char *interps[2] = {"nearest", "linear"}, *borders[3] = {"constant", "edge", "reflect"};
  char json[2048], m[4][400];
  for (int d = 0; d < VP_DTYPE_COUNT; d++)
    for (int ip = 0; ip < 2; ip++)
      for (int b = 0; b < 3; b++) {
        int big = d == VP_F32 && b == 0;
        int sns[4] = {2, 3, 3, 3};
        for (int k = 0; k < 4; k++) matrix_json(m[k], sizeof m[k], sns[k]);
        snprintf(json, sizeof json,
                 "{\"matrix\": {\"per_sample\": [%s, %s, %s%s%s]}, "
                 "\"size\": {\"per_sample\": [[20, 30], [6, 25, 9], [4, 8, 70]%s]}, "
                 "\"interp\": \"%s\", \"border\": \"%s\", \"fill\": -3.5%s}",
                 m[0], m[1], m[2], big ? ", " : "", big ? m[3] : "", big ? ", [150, 200, 250]" : "",
                 interps[ip], borders[b], d == VP_I16 ? ", \"dtype\": \"float32\"" : "");
        compare_op("warp_affine", (vp_dtype)d, big, json, ip == 0);
      }
}

static void test_resize_gpu(void **state) {
  (void)state;
  const char *interps[2] = {"nearest", "linear"};
  for (int d = 0; d < VP_DTYPE_COUNT; d++)
    for (int ip = 0; ip < 2; ip++) {
      int big = d == VP_F32;
      char json[512];
      snprintf(json, sizeof json,
               "{\"size\": {\"per_sample\": [[40, 10], [3, 62, 5], [7, 4, 100]%s]}, "
               "\"interp\": \"%s\"%s}",
               big ? ", [128, 128, 128]" : "", interps[ip],
               d == VP_U8 ? ", \"dtype\": \"float16\"" : "");
      compare_op("resize", (vp_dtype)d, big, json, ip == 0);
    }
}

/* Float32 linear on axis-aligned maps (the GPU's diag kernel) is bit-exact
 * against the CPU: resizes up and down (border outputs), the big sample
 * to 128 x 160 x 160, zooms (every border), and diagonal warps with flips, whole-voxel shifts
 * (zero weights), a third of a voxel per output (some W weights zero, some
 * not) and depths past one block's 16, in one batch with a rotated sample
 * (the other kernel); every border; float32, float16 and uint8 outputs.
 * No NaN in the inputs: NaN payloads are not the same on both sides. */
static void test_linear_axis_aligned_exact_gpu(void **state) {
  (void)state;
  const char *borders[3] = {"constant", "edge", "reflect"}, *dts[3] = {"float32", "float16", "uint8"};
  char json[2048];
  g_no_nan = 1;
  for (int o = 0; o < 3; o++) {
    snprintf(json, sizeof json,
             "{\"size\": {\"per_sample\": [[40, 10], [3, 62, 5], [37, 4, 100]%s]}, "
             "\"interp\": \"linear\", \"dtype\": \"%s\"}",
             o == 0 ? ", [128, 160, 160]" : "", dts[o]);
    compare_op("resize", VP_F32, o == 0, json, 1);
  }
  for (int b = 0; b < 3; b++)
    for (int o = 0; o < 3; o++) {
      snprintf(json, sizeof json,
               "{\"scale\": {\"per_sample\": [[1.37, 0.61], [0.83, 1.9, 0.55], [2.3, 0.71, 1.13]]}, "
               "\"interp\": \"linear\", \"border\": \"%s\", \"fill\": -3.5, \"dtype\": \"%s\"}",
               borders[b], dts[o]);
      compare_op("zoom", VP_F32, 0, json, 1);
      const double th = 0.3 + urand();
      snprintf(json, sizeof json,
               "{\"matrix\": {\"per_sample\": ["
               "[-1, 0, 16, 0, 1, 2], "
               "[0.5, 0, 0, 0.25, 0, -1, 0, 30, 0, 0, 0.3333333333333333, -1], "
               "[1, 0, 0, %.17g, 0, %.17g, %.17g, 1, 0, %.17g, %.17g, -1]]}, "
               "\"size\": {\"per_sample\": [[19, 33], [9, 31, 40], [37, 5, 7]]}, "
               "\"interp\": \"linear\", \"border\": \"%s\", \"fill\": 2.25, \"dtype\": \"%s\"}",
               urand(), cos(th), -sin(th), sin(th), cos(th), borders[b], dts[o]);
      compare_op("warp_affine", VP_F32, 0, json, 1);
    }
  g_no_nan = 0;
}

/* Cubic (prefilter + coefficient stage) on every dtype and border, warp
 * and resize, with the big sample for float32: within linear's tolerance
 * (the coefficients are float32 on both sides; the GPU's double prefilter
 * may contract into FMAs). */
static void test_cubic_gpu(void **state) {
  (void)state;
  const char *borders[3] = {"constant", "edge", "reflect"};
  char json[2048], m[4][400];
  g_no_nan = 1;
  for (int d = 0; d < VP_DTYPE_COUNT; d++) {
    for (int b = 0; b < 3; b++) {
      int big = d == VP_F32 && b == 0;
      int sns[4] = {2, 3, 3, 3};
      for (int k = 0; k < 4; k++) matrix_json(m[k], sizeof m[k], sns[k]);
      snprintf(json, sizeof json,
               "{\"matrix\": {\"per_sample\": [%s, %s, %s%s%s]}, "
               "\"size\": {\"per_sample\": [[20, 30], [6, 25, 9], [4, 8, 70]%s]}, "
               "\"interp\": \"cubic\", \"border\": \"%s\", \"fill\": -3.5, "
               "\"dtype\": \"float32\"}",
               m[0], m[1], m[2], big ? ", " : "", big ? m[3] : "", big ? ", [150, 200, 250]" : "",
               borders[b]);
      compare_op("warp_affine", (vp_dtype)d, big, json, 0);
    }
    snprintf(json, sizeof json,
             "{\"size\": {\"per_sample\": [[40, 10], [3, 62, 5], [7, 4, 100]%s]}, "
             "\"interp\": \"cubic\"%s}",
             d == VP_F32 ? ", [128, 160, 160]" : "", d == VP_U8 ? ", \"dtype\": \"float16\"" : "");
    compare_op("resize", (vp_dtype)d, d == VP_F32, json, 0);
  }
  g_no_nan = 0;
}

/* The op on n samples of the given shapes (rank ndims[i]), on the CPU,
 * through vp_ops_call on the GPU and poisoned, within linear's tolerance. */
static void compare_shapes(const char *name, vp_dtype d, int n, const int *ndims,
                           const int64_t (*shapes)[4], const char *json) {
  vp_tensor *h[8], *dv[8], *co[8], *go[8], *po[8];
  for (int i = 0; i < n; i++) {
    h[i] = make_host(d, ndims[i], shapes[i]);
    VP_ASSERT_OK(vp_tensor_copy_to(h[i], VP_MEM_DEVICE, 0, &dv[i]));
  }
  VP_ASSERT_OK(vp_ops_call(name, n, h, json, 0, co));
  VP_ASSERT_OK(vp_ops_call(name, n, dv, json, 0, go));
  run_poisoned(name, n, dv, json, 0, po);
  char what[600];
  for (int i = 0; i < n; i++) {
    snprintf(what, sizeof what, "%s %s sample %d %.400s", name, vp_dtype_name(d), i, json);
    compare(what, co[i], go[i], 0);
    compare(what, co[i], po[i], 0);
  }
  release_all(po, n);
  release_all(go, n);
  release_all(co, n);
  release_all(dv, n);
  release_all(h, n);
}

/* Cubic's separable path (axis-aligned maps) against the CPU's: zoom under
 * every border and dtype (non-integer factors, up and down per axis, 2-D,
 * 3-D and channels; the big float32 sample for float32); diagonal warps
 * (flips, shifts) on extents 1..5 mixed in one batch with a rotated sample
 * (the coefficient path); and resizes whose long H or W lines exceed
 * shared memory (the GPU's coefficient fallback beside separable samples;
 * the CPU stays separable). */
static void test_cubic_separable_gpu(void **state) {
  (void)state;
  const char *borders[3] = {"constant", "edge", "reflect"};
  const int nd4[4] = {2, 3, 4, 4};
  const int64_t zs[4][4] = {{17, 33}, {9, 31, 7}, {2, 6, 9, 65}, {1, 155, 240, 240}};
  char json[2048];
  g_no_nan = 1;
  for (int d = 0; d < VP_DTYPE_COUNT; d++)
    for (int b = 0; b < 3; b++) {
      const int n = d == VP_F32 && b == 1 ? 4 : 3; /* per_sample needs n values */
      snprintf(json, sizeof json,
               "{\"scale\": {\"per_sample\": [[1.37, 0.61], [0.83, 1.9, 0.55], [2.3, 0.71, 1.13]%s]}, "
               "\"interp\": \"cubic\", \"border\": \"%s\", \"fill\": -3.5%s}",
               n == 4 ? ", [0.826, 0.667, 0.667]" : "", borders[b],
               d == VP_I16 ? ", \"dtype\": \"float32\"" : "");
      compare_shapes("zoom", (vp_dtype)d, n, nd4, zs, json);
    }
  /* extents 1..5: diagonal matrices with flips and shifts, and a rotation */
  const int nd6[6] = {3, 3, 3, 2, 3, 3};
  const int64_t ws[6][4] = {{1, 4, 3}, {5, 1, 2}, {2, 3, 5}, {4, 1}, {3, 5, 1}, {6, 7, 8}};
  double th = 0.4 + urand();
  for (int b = 0; b < 3; b++) {
    snprintf(json, sizeof json,
             "{\"matrix\": {\"per_sample\": ["
             "[0.7, 0, 0, 0.2, 0, -1.3, 0, 3.1, 0, 0, 0.45, -0.6], "
             "[1.9, 0, 0, -0.4, 0, 1, 0, 0, 0, 0, -0.8, 1.7], "
             "[0.35, 0, 0, 0.1, 0, 2.2, 0, -1.5, 0, 0, 1, 0], "
             "[-0.6, 0, 3.2, 0, 1.4, -0.3], "
             "[1, 0, 0, 0, 0, 0.9, 0, 0.3, 0, 0, 1, 0], "
             "[1, 0, 0, 0.5, 0, %.17g, %.17g, 1, 0, %.17g, %.17g, -1]]}, "
             "\"size\": {\"per_sample\": [[3, 5, 4], [1, 4, 5], [5, 2, 5], [3, 5], [3, 5, 4], "
             "[5, 6, 7]]}, \"interp\": \"cubic\", \"border\": \"%s\", \"fill\": 2.25, "
             "\"dtype\": \"float32\"}",
             cos(th), -sin(th), sin(th), cos(th), borders[b]);
    for (int d = 0; d < VP_DTYPE_COUNT; d++)
      compare_shapes("warp_affine", (vp_dtype)d, 6, nd6, ws, json);
  }
  /* lines longer than shared memory holds (227 KB: about 1800 coefficients
   * per H line of a 32-line tile, 1770 per W row of 32 rows) */
  const int nd3[3] = {3, 3, 4};
  const int64_t ls[3][4] = {{2, 2500, 5}, {3, 4, 3000}, {2, 3, 10, 12}};
  compare_shapes("resize", VP_F32, 3, nd3, ls,
                 "{\"size\": {\"per_sample\": [[3, 1700, 7], [2, 5, 2100], [4, 9, 13]]}, "
                 "\"interp\": \"cubic\"}");
  g_no_nan = 0;
}

/* Antialiased resize (triangle and area) and a region of interest, every
 * dtype, shrinking mixed-shape samples (the big float32 one included). */
static void test_antialias_gpu(void **state) {
  (void)state;
  const char *filters[2] = {"triangle", "area"};
  for (int d = 0; d < VP_DTYPE_COUNT; d++)
    for (int f = 0; f < 2; f++) {
      char json[512];
      snprintf(json, sizeof json,
               "{\"size\": {\"per_sample\": [[5, 9], [2, 10, 3], [2, 2, 20]%s]}, "
               "\"antialias\": \"%s\", \"dtype\": \"float64\"}",
               d == VP_F32 ? ", [40, 60, 80]" : "", filters[f]);
      compare_op("resize", (vp_dtype)d, d == VP_F32, json, 0);
    }
  compare_op("resize", VP_F32, 0,
             "{\"size\": {\"per_sample\": [[5, 9], [2, 10, 3], [2, 2, 20]]}, "
             "\"roi_start\": {\"per_sample\": [[1, 30], [4, 2, 0], [0.5, 1, 3]]}, "
             "\"roi_end\": {\"per_sample\": [[15, 2], [1, 20, 7], [1.5, 8, 60]]}}",
             0);
}

/* The engine with displacement fields: device nodes for the GPU. */
static void test_engine_displacement_gpu(void **state) {
  (void)state;
  int64_t in_shape[3] = {12, 20, 16}, out_shape[3] = {10, 23, 17};
  int64_t C = 2, nin = C * 12 * 20 * 16, nout = C * 10 * 23 * 17;
  int64_t grid[3] = {3, 5, 4};
  int64_t nn = grid[0] * grid[1] * grid[2] * 3;
  float *in = (float *)malloc((size_t)nin * sizeof(float));
  float *nodes = (float *)malloc((size_t)nn * sizeof(float));
  float *cpu = (float *)malloc((size_t)nout * sizeof(float));
  float *gpu = (float *)malloc((size_t)nout * sizeof(float));
  assert_true(in && nodes && cpu && gpu);
  for (int64_t k = 0; k < nin; k++) in[k] = (float)((urand() - 0.5) * 200);
  for (int64_t k = 0; k < nn; k++) nodes[k] = (float)((urand() - 0.5) * 6);
  void *din, *dout, *dnodes;
  CUDA_OK(cudaMalloc(&din, (size_t)nin * sizeof(float)));
  CUDA_OK(cudaMalloc(&dout, (size_t)nout * sizeof(float)));
  CUDA_OK(cudaMalloc(&dnodes, (size_t)nn * sizeof(float)));
  CUDA_OK(cudaMemcpy(din, in, (size_t)nin * sizeof(float), cudaMemcpyHostToDevice));
  CUDA_OK(cudaMemcpy(dnodes, nodes, (size_t)nn * sizeof(float), cudaMemcpyHostToDevice));
  vp_resample_desc d;
  memset(&d, 0, sizeof d);
  d.channels = C;
  memcpy(d.in_shape, in_shape, sizeof in_shape);
  memcpy(d.out_shape, out_shape, sizeof out_shape);
  for (int a = 0; a < 3; a++) {
    d.M[a * 4 + a] = 1.1 + 0.01 * a;
    d.M[a * 4 + 3] = -0.7 + 0.3 * a;
    d.disp.grid[a] = grid[a];
    d.disp.spacing[a] = (double)(out_shape[a] - 1) / (double)(grid[a] - 1) + 0.01;
  }
  d.M[1] = 0.05;
  d.M[6] = -0.08;
  d.fill = 7.25;
  for (int ip = 0; ip < 2; ip++)
    for (int b = 0; b < 3; b++) {
      d.in = in;
      d.out = cpu;
      d.disp.nodes = nodes;
      VP_ASSERT_OK(vp_resample_cpu(&d, 1, VP_F32, VP_F32, (vp_interp)ip, (vp_border)b, NULL));
      d.in = din;
      d.out = dout;
      d.disp.nodes = (const float *)dnodes;
      CUDA_OK(cudaMemset(dout, 0xff, (size_t)nout * sizeof(float)));
      vp_stream s;
      VP_ASSERT_OK(vp_cuda_stream_create(0, &s));
      VP_ASSERT_OK(vp_cuda_resample(&d, 1, VP_F32, VP_F32, (vp_interp)ip, (vp_border)b, s));
      VP_ASSERT_OK(vp_cuda_stream_sync(s));
      vp_cuda_stream_destroy(s);
      CUDA_OK(cudaMemcpy(gpu, dout, (size_t)nout * sizeof(float), cudaMemcpyDeviceToHost));
      for (int64_t k = 0; k < nout; k++) {
        double tol = ip == 0 ? 0 : 1e-5 * 200;
        if (!(fabs((double)gpu[k] - (double)cpu[k]) <= tol))
          fail_msg("displaced interp %d border %d: element %lld: GPU %.9g, CPU %.9g", ip, b,
                   (long long)k, gpu[k], cpu[k]);
      }
    }
  CUDA_OK(cudaFree(din));
  CUDA_OK(cudaFree(dout));
  CUDA_OK(cudaFree(dnodes));
  free(in);
  free(nodes);
  free(cpu);
  free(gpu);
}

int main(void) {
  if (vp_cuda_device_count() == 0) {
    fprintf(stderr, "no CUDA device: skipped\n");
    return 77;
  }
  g_rng = vp_test_seed();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_warp_affine_gpu),
      cmocka_unit_test(test_resize_gpu),
      cmocka_unit_test(test_linear_axis_aligned_exact_gpu),
      cmocka_unit_test(test_cubic_gpu),
      cmocka_unit_test(test_cubic_separable_gpu),
      cmocka_unit_test(test_antialias_gpu),
      cmocka_unit_test(test_engine_displacement_gpu),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
