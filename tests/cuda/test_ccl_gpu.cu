/* GPU connected-component labelling (src/cuda/ccl.cu) against the CPU
 * labeller (itself checked against a flood fill in tests/c/test_ccl.c):
 * identical labels, counts and statistics, written into poisoned device
 * buffers, for every case of tests/c/ccl_cases.h, for batches of mixed
 * shapes with a per-sample device selection, and for the
 * connected_components operator's GPU body. Exits 77 without a GPU. */
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "core/cuda_rt.h"
#include "core/status.h"
#include "testutil.h"
}
#include "ops/op.h"
#include "gpu_testutil.h"
#include "cuda/ccl.h"
#include "../c/ccl_cases.h"

static void *upload(const void *h, size_t bytes) {
  void *d = NULL;
  CUDA_OK(cudaMalloc(&d, bytes ? bytes : 1));
  if (bytes) CUDA_OK(cudaMemcpy(d, h, bytes, cudaMemcpyHostToDevice));
  return d;
}
static void *poisoned(size_t bytes) {
  void *d = NULL;
  CUDA_OK(cudaMalloc(&d, bytes ? bytes : 1));
  CUDA_OK(cudaMemset(d, 0xab, bytes ? bytes : 1));
  return d;
}
static void download(void *h, const void *d, size_t bytes) {
  if (bytes) CUDA_OK(cudaMemcpy(h, d, bytes, cudaMemcpyDeviceToHost));
}

/* n samples sharing dtype and params; sel: host copy of the device select
 * array (NULL: none). cap: stats capacity. Compares everything. */
static void check_batch(const char *name, ccl_case *cs, int n, const int64_t *sel, int64_t cap) {
  const vp_dtype dt = cs[0].dtype;
  vp_ccl_gpu_sample *smp = (vp_ccl_gpu_sample *)calloc(n, sizeof *smp);
  int64_t(*shapes)[3] = (int64_t(*)[3])calloc(n, sizeof *shapes);
  for (int i = 0; i < n; i++) {
    const int64_t v = cs[i].shape[0] * cs[i].shape[1] * cs[i].shape[2];
    smp[i].in = upload(cs[i].data, (size_t)v * vp_dtype_size(dt));
    smp[i].labels = (int32_t *)poisoned((size_t)v * 4);
    memcpy(smp[i].shape, cs[i].shape, sizeof smp[i].shape);
    memcpy(shapes[i], cs[i].shape, sizeof shapes[i]);
  }
  size_t ws_bytes = 0;
  VP_ASSERT_OK(vp_cuda_ccl_workspace_bytes(shapes, n, &ws_bytes));
  void *ws = poisoned(ws_bytes);
  int64_t *counts = (int64_t *)poisoned(n * 8);
  vp_ccl_gpu_stats st = {cap, (int64_t *)poisoned(n * cap * 8), (int64_t *)poisoned(n * cap * 48)};
  int64_t *dsel = sel ? (int64_t *)upload(sel, n * 8) : NULL;
  VP_ASSERT_OK(vp_cuda_ccl_label(smp, n, dt, &cs[0].p, dsel, counts, &st, ws, ws_bytes, NULL));
  CUDA_OK(cudaDeviceSynchronize());
  int64_t *hc = (int64_t *)malloc(n * 8), *hs = (int64_t *)malloc(n * cap * 8 + 8),
          *hb = (int64_t *)malloc(n * cap * 48 + 8);
  download(hc, counts, n * 8);
  download(hs, st.sizes, n * cap * 8);
  download(hb, st.boxes, n * cap * 48);
  for (int i = 0; i < n; i++) {
    const int64_t v = cs[i].shape[0] * cs[i].shape[1] * cs[i].shape[2];
    int32_t *want = (int32_t *)malloc(v * 4 + 4), *got = (int32_t *)malloc(v * 4 + 4);
    vp_ccl_params p = cs[i].p;
    if (sel) {
      p.select = 1, p.select_value = (double)sel[i];
      p.multi_label = 0;
    }
    int64_t count = 0;
    if (sel && sel[i] < 0) {
      memset(want, 0, v * 4);
    } else {
      VP_ASSERT_OK(vp_ccl_label_cpu(cs[i].data, dt, cs[i].shape, &p, want, &count, NULL));
    }
    download(got, smp[i].labels, v * 4);
    if (hc[i] != count) fail_msg("%s sample %d: GPU count %lld, CPU %lld", name, i, (long long)hc[i], (long long)count);
    for (int64_t e = 0; e < v; e++)
      if (got[e] != want[e])
        fail_msg("%s sample %d (%lld x %lld x %lld): voxel %lld GPU %d CPU %d", name, i,
                 (long long)cs[i].shape[0], (long long)cs[i].shape[1], (long long)cs[i].shape[2],
                 (long long)e, got[e], want[e]);
    int64_t *ws_ = (int64_t *)calloc(count + 1, 8), *wb = (int64_t *)calloc(count + 1, 48);
    if (count) VP_ASSERT_OK(vp_ccl_stats_cpu(want, cs[i].shape, count, ws_, wb, NULL));
    for (int64_t l = 0; l < cap; l++) {
      const int64_t es = l < count ? ws_[l] : 0;
      if (hs[i * cap + l] != es)
        fail_msg("%s sample %d: size of label %lld GPU %lld CPU %lld", name, i, (long long)l + 1,
                 (long long)hs[i * cap + l], (long long)es);
      for (int a = 0; a < 6; a++) {
        const int64_t eb = l < count ? wb[l * 6 + a] : 0;
        if (hb[(i * cap + l) * 6 + a] != eb)
          fail_msg("%s sample %d: box of label %lld [%d] GPU %lld CPU %lld", name, i,
                   (long long)l + 1, a, (long long)hb[(i * cap + l) * 6 + a], (long long)eb);
      }
    }
    free(ws_), free(wb), free(want), free(got);
    cudaFree((void *)smp[i].in);
    cudaFree(smp[i].labels);
  }
  cudaFree(ws), cudaFree(counts), cudaFree(st.sizes), cudaFree(st.boxes), cudaFree(dsel);
  free(hc), free(hs), free(hb), free(smp), free(shapes);
}

static void test_cases_gpu(void **state) {
  (void)state;
  uint64_t rng = g_rng;
  for (int k = 0; k < CCL_NUM_CASES; k++) {
    ccl_case c;
    ccl_case_make(k, &rng, &c);
    int32_t *tmp = (int32_t *)malloc(c.shape[0] * c.shape[1] * c.shape[2] * 4 + 4);
    const int64_t count = ccl_oracle(&c, tmp);
    free(tmp);
    check_batch(c.name, &c, 1, NULL, count + 2); /* room to spare: zero tail */
    free(c.data);
  }
}

/* Mixed shapes in one call, a per-sample device selection (one entry
 * "nothing"), and a capacity below most counts. */
static void test_batch_select_gpu(void **state) {
  (void)state;
  uint64_t rng = g_rng ^ 0xb47c;
  enum { N = 6 };
  ccl_case cs[N];
  const int64_t sel[N] = {1, 2, -1, 3, 0, 1};
  for (int i = 0; i < N; i++) {
    memset(&cs[i], 0, sizeof cs[i]);
    cs[i].dtype = VP_U8;
    cs[i].p.connectivity = 26;
    cs[i].p.multi_label = 1; /* ignored under selection */
    for (int a = 0; a < 3; a++) cs[i].shape[a] = 1 + (int64_t)(ccl_rand(&rng) % (i == 3 ? 60 : 25));
    ccl_case_alloc(&cs[i]);
    for (int64_t e = 0; e < cs[i].shape[0] * cs[i].shape[1] * cs[i].shape[2]; e++)
      ccl_set(&cs[i], e, ccl_u01(&rng) < 0.5 ? (double)(ccl_rand(&rng) % 4) : 0);
  }
  check_batch("selection batch", cs, N, sel, 3);
  /* the same batch with no selection, multi-label, larger capacity */
  check_batch("multi-label batch", cs, N, NULL, 50);
  for (int i = 0; i < N; i++) free(cs[i].data);
}

/* A volume of the benchmark's size and density: many small blobs. */
static void test_large_gpu(void **state) {
  (void)state;
  uint64_t rng = g_rng ^ 0x1a29e;
  ccl_case c;
  memset(&c, 0, sizeof c);
  c.dtype = VP_U8;
  c.shape[0] = 155, c.shape[1] = 240, c.shape[2] = 240;
  c.p.connectivity = 6;
  ccl_case_alloc(&c);
  for (int64_t e = 0; e < 155 * 240 * 240; e++) ccl_set(&c, e, ccl_u01(&rng) < 0.3);
  check_batch("large 6", &c, 1, NULL, 100);
  c.p.connectivity = 26;
  check_batch("large 26", &c, 1, NULL, 100);
  free(c.data);
}

/* The operator's GPU body into poisoned outputs against its CPU body. */
static void test_op_gpu(void **state) {
  (void)state;
  uint64_t rng = g_rng ^ 0x0b;
  const int64_t shapes[3][4] = {{9, 11, 13, 0}, {1, 7, 8, 9}, {20, 30, 0, 0}};
  const int ndims[3] = {3, 4, 2};
  const char *json[3] = {"{\"max_components\": 4}", "{\"max_components\": 4}",
                         "{\"max_components\": 4, \"connectivity\": 4}"};
  for (int t = 0; t < 3; t++) {
    vp_tensor *h = NULL, *d = NULL;
    VP_ASSERT_OK(vp_tensor_create(VP_I16, ndims[t], shapes[t], VP_MEM_HOST, 0, &h));
    for (int64_t e = 0; e < vp_tensor_numel(h); e++)
      ((int16_t *)vp_tensor_data(h))[e] = ccl_u01(&rng) < 0.4 ? 5 : 0;
    VP_ASSERT_OK(vp_tensor_copy_to(h, VP_MEM_DEVICE, 0, &d));
    vp_tensor *go[4] = {0}, *co[4] = {0};
    run_poisoned("connected_components", 1, &d, json[t], 0, go);
    const vp_op_desc *op = vp_op_lookup("connected_components");
    vp_op_args *args = NULL;
    VP_ASSERT_OK(vp_op_args_parse(op, json[t], 1, &args));
    vp_op_call c;
    memset(&c, 0, sizeof c);
    c.batch = 1;
    vp_tensor *in[1] = {h};
    c.in[0] = in;
    for (int k = 0; k < 4; k++) {
      vp_tensor *hg = to_host(go[k]);
      VP_ASSERT_OK(vp_tensor_create(vp_tensor_dtype(hg), vp_tensor_ndim(hg), vp_tensor_shape(hg),
                                    VP_MEM_HOST, 0, &co[k]));
      vp_tensor_release(go[k]);
      go[k] = hg;
    }
    vp_tensor *const *outs[4] = {&co[0], &co[1], &co[2], &co[3]};
    for (int k = 0; k < 4; k++) c.out[k] = outs[k];
    c.args = args;
    VP_ASSERT_OK(op->run_cpu(&c));
    for (int k = 0; k < 4; k++) {
      assert_int_equal(vp_tensor_nbytes(go[k]), vp_tensor_nbytes(co[k]));
      assert_memory_equal(vp_tensor_data(go[k]), vp_tensor_data(co[k]), vp_tensor_nbytes(co[k]));
    }
    vp_op_args_free(args);
    release_all(go, 4);
    release_all(co, 4);
    vp_tensor_release(h);
    vp_tensor_release(d);
  }
}

int main(void) {
  if (vp_cuda_device_count() == 0) {
    fprintf(stderr, "no CUDA device: skipped\n");
    return 77;
  }
  g_rng = vp_test_seed();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_cases_gpu),
      cmocka_unit_test(test_batch_select_gpu),
      cmocka_unit_test(test_large_gpu),
      cmocka_unit_test(test_op_gpu),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
