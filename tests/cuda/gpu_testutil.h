/* Shared helpers of the GPU tests (CUDA C++, cmocka): a random stream,
 * copies back to the host, running an operator's GPU body straight into
 * poisoned outputs, and the CPU-vs-GPU comparison with the tolerances the
 * tests state. Include after testutil.h and ops/op.h. */
#ifndef VP_GPU_TESTUTIL_H
#define VP_GPU_TESTUTIL_H

#include <cuda_runtime.h>
#include <math.h>
#include <string.h>

extern "C" {
#include "core/convert.h"
#include "core/cuda_rt.h"
}
#include "ops/op.h"

#define CUDA_OK(call)                                                         \
  do {                                                                        \
    cudaError_t e_ = (call);                                                  \
    if (e_ != cudaSuccess) fail_msg("%s: %s", #call, cudaGetErrorString(e_)); \
  } while (0)

static uint64_t g_rng;

static inline double urand(void) { return (double)(vp_test_rand(&g_rng) >> 11) * 0x1p-53; }

static inline vp_tensor *to_host(const vp_tensor *t) {
  vp_tensor *h = NULL;
  VP_ASSERT_OK(vp_tensor_copy_to(t, VP_MEM_HOST, 0, &h));
  return h;
}

static inline void release_all(vp_tensor **t, int n) {
  for (int i = 0; i < n; i++) {
    vp_tensor_release(t[i]);
    t[i] = NULL;
  }
}

/* The op's GPU body straight (not through vp_ops_call), into device
 * outputs poisoned with 0xff (floats: NaN) / 0xab bytes so that unwritten
 * voxels show. in[k * n + i] is input k of sample i; out likewise. Random
 * ops draw with the eager key of `seed`. */
static inline void run_poisoned(const char *name, int n, vp_tensor **in, const char *json,
                                uint64_t seed, vp_tensor **out) {
  const vp_op_desc *op = vp_op_lookup(name);
  assert_non_null(op);
  vp_op_args *args = NULL;
  VP_ASSERT_OK(vp_op_args_parse(op, json, n, &args));
  vp_op_call c;
  memset(&c, 0, sizeof c);
  c.batch = n;
  for (int k = 0; k < op->num_inputs; k++) c.in[k] = in + k * n;
  for (int k = 0; k < op->num_outputs; k++) c.out[k] = out + k * n;
  c.args = args;
  c.key = vp_op_eager_key(op, seed);
  for (int i = 0; i < n; i++) {
    vp_out_spec spec[VP_OP_MAX_IO];
    memset(spec, 0, sizeof spec);
    VP_ASSERT_OK(op->infer(&c, i, spec));
    for (int k = 0; k < op->num_outputs; k++) {
      vp_tensor *t = NULL;
      VP_ASSERT_OK(
          vp_tensor_create(spec[k].dtype, spec[k].ndim, spec[k].shape, VP_MEM_DEVICE, 0, &t));
      CUDA_OK(cudaMemset(vp_tensor_data(t), spec[k].dtype >= VP_F16 ? 0xff : 0xab,
                         vp_tensor_nbytes(t)));
      out[k * n + i] = t;
    }
  }
  vp_stream s;
  VP_ASSERT_OK(vp_cuda_stream_create(0, &s));
  c.stream = s;
  VP_ASSERT_OK(op->run_gpu(&c));
  VP_ASSERT_OK(vp_cuda_stream_sync(s));
  vp_cuda_stream_destroy(s);
  vp_op_args_free(args);
}

/* GPU output (device) against CPU output (host): bit for bit when exact,
 * else within 1e-5 of the CPU output's finite value range (integer outputs:
 * plus one for a rounding flip; float16: plus one ulp); NaN matches NaN. */
static inline void compare(const char *what, const vp_tensor *cpu, const vp_tensor *gpu_dev,
                           int exact) {
  vp_tensor *g = to_host(gpu_dev);
  assert_int_equal(vp_tensor_ndim(cpu), vp_tensor_ndim(g));
  for (int a = 0; a < vp_tensor_ndim(cpu); a++)
    assert_int_equal(vp_tensor_shape(cpu)[a], vp_tensor_shape(g)[a]);
  vp_dtype t = vp_tensor_dtype(cpu);
  assert_int_equal(t, vp_tensor_dtype(g));
  int64_t n = vp_tensor_numel(cpu);
  const void *a = vp_tensor_data(cpu), *b = vp_tensor_data(g);
  if (exact) {
    if (memcmp(a, b, vp_tensor_nbytes(cpu))) {
      size_t es = vp_dtype_size(t);
      int64_t k = 0;
      while (!memcmp((const char *)a + k * es, (const char *)b + k * es, es)) k++;
      double x = vp_cvt_load(a, t, k), y = vp_cvt_load(b, t, k);
      vp_tensor_release(g);
      fail_msg("%s: GPU differs from CPU at element %lld of %lld (%.17g vs %.17g)", what,
               (long long)k, (long long)n, y, x);
    }
  } else {
    double lo = INFINITY, hi = -INFINITY;
    for (int64_t k = 0; k < n; k++) {
      double v = vp_cvt_load(a, t, k);
      if (isfinite(v)) {
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
      }
    }
    double tol = hi > lo ? 1e-5 * (hi - lo) : 0;
    if (t < VP_F16) tol += 1;
    for (int64_t k = 0; k < n; k++) {
      double x = vp_cvt_load(a, t, k), y = vp_cvt_load(b, t, k);
      if ((isnan(x) && isnan(y)) || x == y) continue;
      double slack = tol + (t == VP_F16 ? fabs(x) * 0x1p-10 : 0);
      if (!(fabs(x - y) <= slack)) {
        vp_tensor_release(g);
        fail_msg("%s: element %lld of %lld: GPU %.17g, CPU %.17g (tolerance %g)", what,
                 (long long)k, (long long)n, y, x, slack);
      }
    }
  }
  vp_tensor_release(g);
}

#endif
