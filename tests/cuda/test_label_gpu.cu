/* Label mode (VP_INTERP_LABEL) of the resampling engine on the GPU against
 * the CPU body, bit for bit: batches of mixed shapes (2-D as D = 1, 3-D,
 * 1 to 3 channels) of random label maps (blocky maps and noise over five
 * label values spread across the dtype's range), random matrices, every
 * border, every accepted input dtype, through the fast tiled kernel
 * (matrices only) and the general kernel (a displacement field on one
 * sample sends the whole batch there). GPU outputs are poisoned first so
 * that unwritten voxels show. Float inputs must be refused. Exits 77 without
 * a GPU. */
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
#include "cuda/kernels.h"
#include "ops/resample.h"
#include "ops/op.h"
#include "gpu_testutil.h"

static const vp_dtype k_label_dtypes[] = {VP_U8, VP_I8, VP_U16, VP_I16, VP_U32, VP_I32};

/* Five label values of dtype t, spread over its range (and within int32). */
static void label_values(vp_dtype t, double v[5]) {
  double lo = 0, hi = 255;
  switch (t) {
    case VP_I8: lo = -128, hi = 127; break;
    case VP_U16: hi = 65535; break;
    case VP_I16: lo = -32768, hi = 32767; break;
    case VP_U32: hi = 2147483647.0; break;
    case VP_I32: lo = -2147483648.0, hi = 2147483647.0; break;
    default: break;
  }
  for (int k = 0; k < 5; k++) v[k] = floor(lo + urand() * (hi - lo + 1));
}

/* A label map: blocks of random size (coherent regions, so the weights
 * decide) or noise. */
static void fill_labels(void *p, vp_dtype t, int64_t C, const int64_t sh[3], const double v[5]) {
  const int blocky = urand() < 0.6;
  const int64_t b0 = 1 + (int64_t)(urand() * 3), b1 = 1 + (int64_t)(urand() * 4),
                b2 = 1 + (int64_t)(urand() * 5);
  int64_t i = 0;
  for (int64_t c = 0; c < C; c++)
    for (int64_t d = 0; d < sh[0]; d++)
      for (int64_t h = 0; h < sh[1]; h++)
        for (int64_t w = 0; w < sh[2]; w++, i++) {
          int64_t k = blocky ? (d / b0 * 7 + h / b1 * 3 + w / b2 + c) % 5
                             : (int64_t)(vp_test_rand(&g_rng) % 5);
          vp_cvt_store(p, t, i, v[k]);
        }
}

typedef struct sample {
  vp_resample_desc d;
  void *h_in, *d_in, *cpu, *gpu_host, *d_out;
  float *d_nodes;
  size_t in_bytes, out_bytes;
} sample;

static void random_matrix(const int64_t in[3], const int64_t out[3], int two_d, double M[12]) {
  memset(M, 0, 12 * sizeof(double));
  double A[3][3] = {{0}};
  for (int r = 0; r < 3; r++)
    for (int c = 0; c < 3; c++)
      A[r][c] = (r == c ? 0.5 + 1.5 * urand() : 0) + 0.6 * (urand() - 0.5);
  if (two_d)
    for (int k = 0; k < 3; k++) A[0][k] = A[k][0] = 0;
  for (int r = 0; r < 3; r++) {
    double t = (double)(in[r] - 1) / 2 + 2 * (urand() - 0.5);
    for (int c = 0; c < 3; c++) {
      M[r * 4 + c] = A[r][c];
      t -= A[r][c] * (double)(out[c] - 1) / 2;
    }
    M[r * 4 + 3] = two_d && r == 0 ? 0 : t;
  }
}

static void run_case(vp_dtype tin, vp_dtype tout, vp_border border, int displaced) {
  const int n = 5;
  sample s[n];
  memset(s, 0, sizeof s);
  double vals[5];
  label_values(tin, vals);
  const size_t ies = vp_dtype_size(tin), oes = vp_dtype_size(tout);
  for (int i = 0; i < n; i++) {
    vp_resample_desc *d = &s[i].d;
    const int two_d = i % 3 == 1;
    d->channels = 1 + (int64_t)(urand() * 3);
    for (int a = 0; a < 3; a++) {
      d->in_shape[a] = two_d && a == 0 ? 1 : 1 + (int64_t)(urand() * (a == 2 ? 40 : 14));
      d->out_shape[a] = two_d && a == 0 ? 1 : 1 + (int64_t)(urand() * (a == 2 ? 45 : 14));
    }
    random_matrix(d->in_shape, d->out_shape, two_d, d->M);
    d->fill = vals[(int)(urand() * 5)];
    const int64_t ni = d->channels * d->in_shape[0] * d->in_shape[1] * d->in_shape[2];
    const int64_t no = d->channels * d->out_shape[0] * d->out_shape[1] * d->out_shape[2];
    s[i].in_bytes = (size_t)ni * ies;
    s[i].out_bytes = (size_t)no * oes;
    s[i].h_in = malloc(s[i].in_bytes);
    s[i].cpu = malloc(s[i].out_bytes);
    s[i].gpu_host = malloc(s[i].out_bytes);
    assert_true(s[i].h_in && s[i].cpu && s[i].gpu_host);
    fill_labels(s[i].h_in, tin, d->channels, d->in_shape, vals);
    CUDA_OK(cudaMalloc(&s[i].d_in, s[i].in_bytes));
    CUDA_OK(cudaMalloc(&s[i].d_out, s[i].out_bytes));
    CUDA_OK(cudaMemcpy(s[i].d_in, s[i].h_in, s[i].in_bytes, cudaMemcpyHostToDevice));
    CUDA_OK(cudaMemset(s[i].d_out, 0xab, s[i].out_bytes));
  }
  float nodes[3 * 3 * 4 * 3];
  if (displaced) {
    vp_resample_desc *d = &s[0].d;
    const int64_t g[3] = {3, 3, 4};
    for (int k = 0; k < 3 * 3 * 4 * 3; k++) nodes[k] = (float)((urand() - 0.5) * 5);
    for (int a = 0; a < 3; a++) {
      d->disp.grid[a] = g[a];
      d->disp.spacing[a] = 1.0 + urand() * 6;
    }
    CUDA_OK(cudaMalloc(&s[0].d_nodes, sizeof nodes));
    CUDA_OK(cudaMemcpy(s[0].d_nodes, nodes, sizeof nodes, cudaMemcpyHostToDevice));
  }
  vp_resample_desc hd[n], dd[n];
  for (int i = 0; i < n; i++) {
    hd[i] = dd[i] = s[i].d;
    hd[i].in = s[i].h_in;
    hd[i].out = s[i].cpu;
    dd[i].in = s[i].d_in;
    dd[i].out = s[i].d_out;
    if (i == 0 && displaced) {
      hd[i].disp.nodes = nodes;
      dd[i].disp.nodes = s[0].d_nodes;
    }
  }
  VP_ASSERT_OK(vp_resample_cpu(hd, n, tin, tout, VP_INTERP_LABEL, border, NULL));
  vp_stream st;
  VP_ASSERT_OK(vp_cuda_stream_create(0, &st));
  VP_ASSERT_OK(vp_cuda_resample(dd, n, tin, tout, VP_INTERP_LABEL, border, st));
  VP_ASSERT_OK(vp_cuda_stream_sync(st));
  vp_cuda_stream_destroy(st);
  for (int i = 0; i < n; i++) {
    CUDA_OK(cudaMemcpy(s[i].gpu_host, s[i].d_out, s[i].out_bytes, cudaMemcpyDeviceToHost));
    const int64_t no = (int64_t)(s[i].out_bytes / oes);
    for (int64_t k = 0; k < no; k++) {
      double g = vp_cvt_load(s[i].gpu_host, tout, k), c = vp_cvt_load(s[i].cpu, tout, k);
      if (memcmp((char *)s[i].gpu_host + k * oes, (char *)s[i].cpu + k * oes, oes))
        fail_msg("%s -> %s border %d displaced %d sample %d element %lld: GPU %.17g, CPU %.17g",
                 vp_dtype_name(tin), vp_dtype_name(tout), (int)border, displaced, i, (long long)k,
                 g, c);
    }
    CUDA_OK(cudaFree(s[i].d_in));
    CUDA_OK(cudaFree(s[i].d_out));
    if (s[i].d_nodes) CUDA_OK(cudaFree(s[i].d_nodes));
    free(s[i].h_in);
    free(s[i].cpu);
    free(s[i].gpu_host);
  }
}

static void test_label_gpu_equals_cpu(void **state) {
  (void)state;
  for (int k = 0; k < 6; k++)
    for (int b = 0; b < 3; b++)
      for (int disp = 0; disp < 2; disp++) {
        vp_dtype tin = k_label_dtypes[k];
        run_case(tin, tin, (vp_border)b, disp);
        /* a narrower or wider output: the same store rule on both sides */
        run_case(tin, k_label_dtypes[(k + 3) % 6], (vp_border)b, disp);
      }
}

static void test_label_gpu_rejects_float(void **state) {
  (void)state;
  vp_resample_desc d;
  memset(&d, 0, sizeof d);
  vp_stream st;
  VP_ASSERT_OK(vp_cuda_stream_create(0, &st));
  assert_int_equal(vp_cuda_resample(&d, 1, VP_F32, VP_F32, VP_INTERP_LABEL, VP_BORDER_EDGE, st),
                   VP_ERR_UNSUPPORTED);
  vp_cuda_stream_destroy(st);
}

int main(void) {
  if (vp_cuda_device_count() == 0) {
    fprintf(stderr, "no CUDA device: skipped\n");
    return 77;
  }
  g_rng = vp_test_seed();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_label_gpu_equals_cpu),
      cmocka_unit_test(test_label_gpu_rejects_float),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
