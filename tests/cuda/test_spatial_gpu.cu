/* rotate, zoom, elastic and random_spatial on the GPU against their CPU
 * bodies, on batches of mixed shapes (2-D, 3-D, 4-D; random_spatial with a
 * [4, 155, 240, 240] float32 image and uint8 label cut to a 128^3 patch
 * with every augmentation on), through vp_ops_call and through the GPU body
 * straight into outputs poisoned with 0xff / 0xab so that unwritten voxels
 * show. Nearest (and integer labels, matrices) must be bit-exact; linear
 * within 1e-5 of the CPU output's value range (integer outputs: plus one
 * for a rounding flip). Exits 77 without a GPU. */
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
#define MAXIO 3

/* Random host tensor: labels 0..4 for integer types, floats in [-300, 300). */
static vp_tensor *make_host(vp_dtype d, int ndim, const int64_t *shape) {
  vp_tensor *t = NULL;
  VP_ASSERT_OK(vp_tensor_create(d, ndim, shape, VP_MEM_HOST, 0, &t));
  int64_t n = vp_tensor_numel(t);
  void *p = vp_tensor_data(t);
  for (int64_t i = 0; i < n; i++)
    vp_cvt_store(p, d, i, d < VP_F16 ? (double)(vp_test_rand(&g_rng) % 5) : (urand() - 0.5) * 600);
  return t;
}




/* h[k * n + i]: input k of sample i, on the host. exact[k]: output k must
 * match bit for bit. */
static void compare_op(const char *name, int n, vp_tensor **h, const char *json, const int *exact) {
  const vp_op_desc *op = vp_op_lookup(name);
  assert_non_null(op);
  int nin = op->num_inputs, nout = op->num_outputs;
  vp_tensor *dv[MAXIO * MAXN], *co[MAXIO * MAXN], *go[MAXIO * MAXN], *po[MAXIO * MAXN];
  for (int k = 0; k < nin * n; k++) VP_ASSERT_OK(vp_tensor_copy_to(h[k], VP_MEM_DEVICE, 0, &dv[k]));
  VP_ASSERT_OK(vp_ops_call(name, n, h, json, 0, co));
  VP_ASSERT_OK(vp_ops_call(name, n, dv, json, 0, go));
  run_poisoned(name, n, dv, json, 0, po);
  char what[700];
  for (int k = 0; k < nout; k++)
    for (int i = 0; i < n; i++) {
      snprintf(what, sizeof what, "%s output %d sample %d %.500s", name, k, i, json);
      assert_int_equal(vp_tensor_memkind(go[k * n + i]), VP_MEM_DEVICE);
      compare(what, co[k * n + i], go[k * n + i], exact[k]);
      compare(what, co[k * n + i], po[k * n + i], exact[k]);
    }
  for (int k = 0; k < nout * n; k++) {
    vp_tensor_release(co[k]);
    vp_tensor_release(go[k]);
    vp_tensor_release(po[k]);
  }
  for (int k = 0; k < nin * n; k++) vp_tensor_release(dv[k]);
}

static void mixed_batch(vp_dtype d, vp_tensor **h) {
  int64_t s2[2] = {17, 33}, s3[3] = {5, 31, 7}, s4[4] = {2, 9, 12, 40};
  h[0] = make_host(d, 2, s2);
  h[1] = make_host(d, 3, s3);
  h[2] = make_host(d, 4, s4);
}


static void test_rotate_zoom_elastic_gpu(void **state) {
  (void)state;
  const vp_dtype dts[3] = {VP_F32, VP_U8, VP_I16};
  const char *interps[2] = {"nearest", "linear"}, *borders[3] = {"constant", "edge", "reflect"};
  char json[1024];
  for (int di = 0; di < 3; di++)
    for (int ip = 0; ip < 2; ip++)
      for (int b = 0; b < 3; b++) {
        vp_tensor *h[3];
        mixed_batch(dts[di], h);
        int exact[1] = {ip == 0};
        snprintf(json, sizeof json,
                 "{\"angle\": {\"per_sample\": [%.17g, %.17g, 90]}, \"axis\": {\"per_sample\": "
                 "[[1, 0, 0], [0.3, -1, 0.5], [0, 0, 1]]}, \"keep_size\": %s, \"interp\": "
                 "\"%s\", \"border\": \"%s\", \"fill\": -2.5}",
                 urand() * 360 - 180, urand() * 360 - 180, b == 1 ? "true" : "false", interps[ip],
                 borders[b]);
        compare_op("rotate", 3, h, json, exact);
        snprintf(json, sizeof json,
                 "{\"scale\": {\"per_sample\": [[%.17g], [0.7, 1.3, 1.1], [1.5]]}, \"interp\": "
                 "\"%s\", \"border\": \"%s\", \"fill\": 4%s}",
                 0.5 + urand(), interps[ip], borders[b],
                 dts[di] == VP_U8 ? ", \"dtype\": \"float32\"" : "");
        compare_op("zoom", 3, h, json, exact);
        snprintf(json, sizeof json,
                 "{\"grid_spacing\": {\"per_sample\": [[4, 7], [2, 5, 3], [6]]}, \"magnitude\": "
                 "3, \"p\": 0.8, \"interp\": \"%s\", \"border\": \"%s\"}",
                 interps[ip], borders[b]);
        compare_op("elastic", 3, h, json, exact);
        release_all(h, 3);
      }
}

static void test_random_spatial_gpu(void **state) {
  (void)state;
  const int exact_lin[3] = {0, 1, 1}, exact_nn[3] = {1, 1, 1};
  /* small samples of mixed shapes, [1, D, H, W] labels */
  {
    int64_t i0[4] = {2, 20, 30, 25}, i1[4] = {2, 9, 40, 12}, l0[4] = {1, 20, 30, 25},
            l1[4] = {1, 9, 40, 12};
    vp_tensor *h[4] = {make_host(VP_F32, 4, i0), make_host(VP_F32, 4, i1), make_host(VP_U8, 4, l0),
                       make_host(VP_U8, 4, l1)};
    for (int ip = 0; ip < 2; ip++) {
      char json[600];
      snprintf(json, sizeof json,
               "{\"patch\": [16, 17, 15], \"p_rotation\": 1, \"p_scale\": 1, \"isotropic\": "
               "false, \"p_elastic\": 0.7, \"grid_spacing\": [5, 6, 4], \"magnitude\": 2, "
               "\"interp\": \"%s\", \"border\": \"%s\", \"fill\": -1, \"label_fill\": 3}",
               ip ? "linear" : "nearest", ip ? "reflect" : "constant");
      compare_op("random_spatial", 2, h, json, ip ? exact_lin : exact_nn);
    }
    release_all(h, 4);
  }
  /* a BraTS-sized case through to a 128^3 patch, everything on */
  {
    int64_t si[4] = {4, 155, 240, 240}, sl[3] = {155, 240, 240};
    vp_tensor *h[2] = {make_host(VP_F32, 4, si), make_host(VP_U8, 3, sl)};
    compare_op("random_spatial", 1, h,
               "{\"patch\": [128, 128, 128], \"p_rotation\": 1, \"p_scale\": 1, "
               "\"p_elastic\": 1, \"magnitude\": 3, \"grid_spacing\": [24]}",
               exact_lin);
    release_all(h, 2);
  }
}

int main(void) {
  if (vp_cuda_device_count() == 0) {
    fprintf(stderr, "no CUDA device: skipped\n");
    return 77;
  }
  g_rng = vp_test_seed();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_rotate_zoom_elastic_gpu),
      cmocka_unit_test(test_random_spatial_gpu),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
