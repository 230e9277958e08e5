/* The pointwise engine's GPU body against its CPU body, into poisoned
 * outputs: every pointwise operator on float32, float16, int16, uint8 and
 * float64 batches of mixed shapes (a 4-channel 2x64^3-per-channel float32
 * sample among them, so the statistics span many chunks), and fused chains.
 * Tolerance (gpu_testutil.h's compare): 1e-5 of the CPU output's value
 * range (integers: plus 1 for a rounding flip; float16: plus one ulp): the
 * GPU sums statistics in another order and its logf/powf/sinf differ by
 * ulps, so noise draws agree to float rounding (the same Philox words).
 * normalize_masked likewise (masks of 1 or C channels).
 * Also prints the fused nnU-Net intensity chain's time on a 2 x 4 x 128^3
 * float32 batch against a device-to-device copy. Exits 77 without a GPU. */
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
#include "ops/pointwise.h"
#include "gpu_testutil.h"

enum { NB = 4 };

static vp_tensor *make_host(vp_dtype d, int ndim, const int64_t *shape) {
  vp_tensor *t = NULL;
  VP_ASSERT_OK(vp_tensor_create(d, ndim, shape, VP_MEM_HOST, 0, &t));
  int64_t n = vp_tensor_numel(t);
  for (int64_t e = 0; e < n; e++) {
    double v = urand() < 0.1 ? 0 : (urand() - 0.3) * 200;
    if (d == VP_U8) v = fabs(v);
    vp_cvt_store(vp_tensor_data(t), d, e, v);
  }
  return t;
}

static void make_batch(vp_dtype d, int big, vp_tensor **host, vp_tensor **dev) {
  const int64_t s[NB][4] = {{2, 5, 6, 7}, {3, 4, 5, 3}, {7, 9, 5, 0}, {4, 64, 64, 64}};
  const int nd[NB] = {4, 4, 3, 4};
  for (int i = 0; i < NB; i++) {
    const int64_t small[4] = {4, 9, 10, 11};
    host[i] = make_host(d, nd[i], i == 3 && !big ? small : s[i]);
    VP_ASSERT_OK(vp_tensor_copy_to(host[i], VP_MEM_DEVICE, 0, &dev[i]));
  }
}

static const char *k_ops[][2] = {
    {"cast", "{\"dtype\": \"float16\"}"},
    {"cast", "{\"dtype\": \"int16\"}"},
    {"clamp", "{\"lo\": -3.5, \"hi\": 40}"},
    {"scale_intensity_range", "{\"a_min\": -10, \"a_max\": 50, \"clip\": true}"},
    {"normalize", "{\"stats\": \"channel\", \"nonzero\": true}"},
    {"normalize", "{\"stats\": \"sample\"}"},
    {"normalize", "{\"stats\": \"given\", \"mean\": 3, \"std\": 7}"},
    {"ct_normalize", "{}"},
    {"brightness", "{\"factor\": {\"per_sample\": [0.7, 1.3, 1.1, 0.9]}, \"p\": 0.8}"},
    {"brightness_shift", "{\"shift\": {\"per_sample\": [-2, 3.5, 1, 0]}, \"p\": 0.8}"},
    {"contrast", "{\"factor\": {\"per_sample\": [0.65, 1.5, 1.2, 0.8]}}"},
    {"contrast", "{\"factor\": 1.3, \"per_channel\": false, \"p\": 0.7}"},
    {"gamma", "{\"gamma\": {\"per_sample\": [0.7, 1.5, 1.2, 0.9]}, \"retain_stats\": true}"},
    {"gamma", "{\"gamma\": 1.3, \"invert\": true, \"per_channel\": true, \"p\": 0.8}"},
    {"gaussian_noise", "{\"stddev\": {\"per_sample\": [0.5, 2, 1, 3]}, \"p\": 0.8}"},
    {"rician_noise", "{\"stddev\": 1.5, \"mean\": 0.5}"},
};

static void test_ops_gpu_vs_cpu(void **state) {
  (void)state;
  static const vp_dtype dts[5] = {VP_F32, VP_F16, VP_I16, VP_U8, VP_F64};
  for (int d = 0; d < 5; d++) {
    vp_tensor *h[NB], *dv[NB], *co[NB], *po[NB];
    make_batch(dts[d], dts[d] == VP_F32, h, dv);
    for (size_t o = 0; o < sizeof k_ops / sizeof k_ops[0]; o++) {
      uint64_t seed = vp_test_rand(&g_rng);
      VP_ASSERT_OK(vp_ops_call(k_ops[o][0], NB, h, k_ops[o][1], seed, co));
      run_poisoned(k_ops[o][0], NB, dv, k_ops[o][1], seed, po);
      for (int i = 0; i < NB; i++) {
        char what[256];
        snprintf(what, sizeof what, "%s %s on %s, sample %d", k_ops[o][0], k_ops[o][1],
                 vp_dtype_name(dts[d]), i);
        compare(what, co[i], po[i], 0);
      }
      release_all(po, NB);
      release_all(co, NB);
    }
    release_all(dv, NB);
    release_all(h, NB);
  }
}

/* normalize_masked: GPU against CPU into poisoned outputs, masks of 1 or C
 * channels (uint8), statistics per channel / per sample / given (the
 * given ones take the launch without statistics), outside zero / keep. */
static void test_masked_gpu_vs_cpu(void **state) {
  (void)state;
  static const vp_dtype dts[3] = {VP_F32, VP_F16, VP_I16};
  static const char *jsons[4] = {
      "{\"stats\": \"channel\"}", "{\"stats\": \"sample\", \"outside\": \"keep\"}",
      "{\"stats\": \"given\", \"mean\": 4, \"std\": 9, \"outside\": \"keep\"}",
      "{\"stats\": \"channel\", \"nonzero\": true, \"dtype\": \"float16\"}"};
  for (int d = 0; d < 3; d++) {
    vp_tensor *h[2 * NB], *dv[2 * NB], *co[NB], *po[NB];
    make_batch(dts[d], dts[d] == VP_F32, h, dv);
    for (int i = 0; i < NB; i++) {
      const vp_tensor *x = h[i];
      int64_t sh[4];
      const int nd = vp_tensor_ndim(x);
      memcpy(sh, vp_tensor_shape(x), (size_t)nd * sizeof *sh);
      if (nd == 4 && i % 2) sh[0] = 1; /* one channel for all */
      VP_ASSERT_OK(vp_tensor_create(VP_U8, nd, sh, VP_MEM_HOST, 0, &h[NB + i]));
      for (int64_t e = 0; e < vp_tensor_numel(h[NB + i]); e++)
        ((uint8_t *)vp_tensor_data(h[NB + i]))[e] = urand() < 0.7 ? 1 : 0;
      VP_ASSERT_OK(vp_tensor_copy_to(h[NB + i], VP_MEM_DEVICE, 0, &dv[NB + i]));
    }
    for (int j = 0; j < 4; j++) {
      uint64_t seed = vp_test_rand(&g_rng);
      VP_ASSERT_OK(vp_ops_call("normalize_masked", NB, h, jsons[j], seed, co));
      run_poisoned("normalize_masked", NB, dv, jsons[j], seed, po);
      for (int i = 0; i < NB; i++) {
        char what[256];
        snprintf(what, sizeof what, "normalize_masked %s on %s, sample %d", jsons[j],
                 vp_dtype_name(dts[d]), i);
        compare(what, co[i], po[i], 0);
      }
      release_all(po, NB);
      release_all(co, NB);
    }
    release_all(dv, 2 * NB);
    release_all(h, 2 * NB);
  }
}

/* Chain ops[0..n) fused through vp_pointwise_run, on the GPU when the
 * inputs are on it. */
static void run_chain(int n, const char *const (*chain)[2], const uint64_t *seeds, vp_tensor **in,
                      vp_dtype out_dtype, vp_tensor **out, vp_stream stream) {
  const vp_op_desc *ops[VP_PW_MAX_OPS];
  vp_op_call calls[VP_PW_MAX_OPS];
  vp_op_args *args[VP_PW_MAX_OPS];
  int gpu = vp_tensor_memkind(in[0]) == VP_MEM_DEVICE;
  for (int i = 0; i < NB; i++) {
    VP_ASSERT_OK(vp_tensor_create(out_dtype, vp_tensor_ndim(in[i]), vp_tensor_shape(in[i]),
                                  vp_tensor_memkind(in[i]), 0, &out[i]));
    if (gpu) CUDA_OK(cudaMemset(vp_tensor_data(out[i]), 0xff, vp_tensor_nbytes(out[i])));
  }
  for (int k = 0; k < n; k++) {
    ops[k] = vp_op_lookup(chain[k][0]);
    assert_non_null(ops[k]);
    VP_ASSERT_OK(vp_op_args_parse(ops[k], chain[k][1], NB, &args[k]));
    memset(&calls[k], 0, sizeof calls[k]);
    calls[k].batch = NB;
    calls[k].args = args[k];
    calls[k].key = vp_op_eager_key(ops[k], seeds[k]);
    calls[k].stream = stream;
  }
  calls[0].in[0] = in;
  calls[n - 1].out[0] = out;
  VP_ASSERT_OK(vp_pointwise_run(ops, calls, n, gpu));
  if (gpu) VP_ASSERT_OK(vp_cuda_stream_sync(stream));
  for (int k = 0; k < n; k++) vp_op_args_free(args[k]);
}

static const char *const k_nnunet[][2] = {
    {"gaussian_noise", "{\"stddev\": {\"per_sample\": [0.1, 0.3, 0.2, 0.05]}, \"p\": 0.9}"},
    {"brightness", "{\"factor\": {\"per_sample\": [0.7, 1.3, 1.1, 0.9]}, \"p\": 0.9}"},
    {"contrast", "{\"factor\": {\"per_sample\": [0.65, 1.5, 1.2, 0.8]}, \"p\": 0.9}"},
    {"gamma", "{\"gamma\": 1.3, \"retain_stats\": true, \"invert\": true}"},
    {"cast", "{\"dtype\": \"float16\"}"},
};
static const char *const k_mixed[][2] = {
    {"cast", "{\"dtype\": \"int16\"}"},
    {"brightness_shift", "{\"shift\": 3.5}"},
    {"normalize", "{\"stats\": \"channel\", \"nonzero\": true, \"dtype\": \"float64\"}"},
    {"rician_noise", "{\"stddev\": 0.5}"},
    {"cast", "{\"dtype\": \"float32\"}"},
};

static void test_fused_gpu_vs_cpu(void **state) {
  (void)state;
  vp_stream s;
  VP_ASSERT_OK(vp_cuda_stream_create(0, &s));
  for (int which = 0; which < 2; which++) {
    const char *const(*chain)[2] = which ? k_mixed : k_nnunet;
    vp_dtype to = which ? VP_F32 : VP_F16;
    uint64_t seeds[5];
    for (int k = 0; k < 5; k++) seeds[k] = vp_test_rand(&g_rng);
    vp_tensor *h[NB], *dv[NB], *co[NB], *go[NB];
    make_batch(VP_F32, 1, h, dv);
    run_chain(5, chain, seeds, h, to, co, NULL);
    run_chain(5, chain, seeds, dv, to, go, s);
    for (int i = 0; i < NB; i++) compare(which ? "mixed chain" : "nnU-Net chain", co[i], go[i], 0);
    release_all(go, NB);
    release_all(co, NB);
    release_all(dv, NB);
    release_all(h, NB);
  }
  vp_cuda_stream_destroy(s);
}

/* Not a check: the fused chain's speed, for the record. */
static void test_fused_timing(void **state) {
  (void)state;
  vp_stream s;
  VP_ASSERT_OK(vp_cuda_stream_create(0, &s));
  const int64_t shape[4] = {4, 128, 128, 128};
  vp_tensor *dv[NB] = {NULL}, *go[NB] = {NULL};
  for (int i = 0; i < NB; i++) {
    VP_ASSERT_OK(vp_tensor_create(VP_F32, 4, shape, VP_MEM_DEVICE, 0, &dv[i]));
    CUDA_OK(cudaMemset(vp_tensor_data(dv[i]), 0, vp_tensor_nbytes(dv[i])));
  }
  /* only 2 samples are timed (as the bench): the chain's batch is NB, so
   * time NB and scale */
  const char *const variants[][2][2] = {
      {{"gaussian_noise", "{\"stddev\": 0.2}"}, {"cast", "{\"dtype\": \"float16\"}"}},
      {{"brightness", "{\"factor\": 1.2}"}, {"cast", "{\"dtype\": \"float16\"}"}},
      {{"cast", "{\"dtype\": \"float32\"}"}, {"cast", "{\"dtype\": \"float16\"}"}},
  };
  const char *labels[3] = {"noise(p=1) -> f16", "brightness -> f16", "cast f32 -> f16"};
  cudaEvent_t a, b;
  CUDA_OK(cudaEventCreate(&a));
  CUDA_OK(cudaEventCreate(&b));
  double bytes = (double)NB * vp_tensor_numel(dv[0]) * 6;
  for (int v = 0; v < 3; v++) {
    uint64_t seeds[2] = {1, 2};
    run_chain(2, variants[v], seeds, dv, VP_F16, go, s); /* warm */
    release_all(go, NB);
    float best = 1e30f;
    for (int r = 0; r < 10; r++) {
      vp_tensor *o[NB];
      for (int i = 0; i < NB; i++)
        VP_ASSERT_OK(vp_tensor_create(VP_F16, 4, shape, VP_MEM_DEVICE, 0, &o[i]));
      CUDA_OK(cudaEventRecord(a, (cudaStream_t)s));
      const vp_op_desc *ops[2] = {vp_op_lookup(variants[v][0][0]), vp_op_lookup(variants[v][1][0])};
      vp_op_args *args[2];
      vp_op_call calls[2];
      for (int k = 0; k < 2; k++) {
        VP_ASSERT_OK(vp_op_args_parse(ops[k], variants[v][k][1], NB, &args[k]));
        memset(&calls[k], 0, sizeof calls[k]);
        calls[k].batch = NB;
        calls[k].args = args[k];
        calls[k].stream = s;
      }
      calls[0].in[0] = dv;
      calls[1].out[0] = o;
      VP_ASSERT_OK(vp_pointwise_run(ops, calls, 2, 1));
      CUDA_OK(cudaEventRecord(b, (cudaStream_t)s));
      CUDA_OK(cudaEventSynchronize(b));
      float ms;
      CUDA_OK(cudaEventElapsedTime(&ms, a, b));
      best = ms < best ? ms : best;
      for (int k = 0; k < 2; k++) vp_op_args_free(args[k]);
      release_all(o, NB);
    }
    printf("fused %-22s %d x 4 x 128^3 f32: %.3f ms, %.0f GB/s (read 4 + write 2 bytes/voxel)\n",
           labels[v], NB, best, bytes / best / 1e6);
  }
  void *x, *y;
  size_t n = (size_t)1 << 30;
  CUDA_OK(cudaMalloc(&x, n));
  CUDA_OK(cudaMalloc(&y, n));
  float best = 1e30f;
  for (int r = 0; r < 5; r++) {
    CUDA_OK(cudaEventRecord(a, (cudaStream_t)s));
    CUDA_OK(cudaMemcpyAsync(y, x, n, cudaMemcpyDeviceToDevice, (cudaStream_t)s));
    CUDA_OK(cudaEventRecord(b, (cudaStream_t)s));
    CUDA_OK(cudaEventSynchronize(b));
    float ms;
    CUDA_OK(cudaEventElapsedTime(&ms, a, b));
    best = ms < best ? ms : best;
  }
  printf("device-to-device copy 1 GiB: %.3f ms, %.0f GB/s (read + write)\n", best,
         2.0 * n / best / 1e6);
  cudaFree(x);
  cudaFree(y);
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  release_all(dv, NB);
  vp_cuda_stream_destroy(s);
}

int main(void) {
  if (vp_cuda_device_count() == 0) {
    fprintf(stderr, "no CUDA device: skipped\n");
    return 77;
  }
  g_rng = vp_test_seed();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ops_gpu_vs_cpu),
      cmocka_unit_test(test_fused_gpu_vs_cpu),
      cmocka_unit_test(test_masked_gpu_vs_cpu),
      cmocka_unit_test(test_fused_timing),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
