/* Pipelines with gpu nodes: the same graph on the GPU and on the CPU give
 * the same batches (slice, flip and cast bit for bit; noise within 1e-6 of
 * the data's range, since the GPU's logf/sinf/cosf differ by a few ulps),
 * whatever the thread count; gpu outputs live on the device; destroy while
 * GPU work is in flight does not hang. Exits 77 (skipped) without a GPU. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern "C" {
#include "pipeline_testlib.h"
}

static uint64_t g_seed;
static char g_dir[600];

enum { B = 3, NOUT = 5 };

/* reader -> slice -> flip (coin per sample) -> cast int16 / gaussian noise
 * (stddev per sample); the label passes through on the CPU. */
static vp_pipeline *graph(const char *dev, int threads, int depth) {
  vp_pipeline_opts o;
  vp_pipeline_opts_init(&o);
  o.batch_size = B;
  o.num_threads = threads;
  o.prefetch_queue_depth = depth;
  o.seed = g_seed;
  o.device = strcmp(dev, "gpu") == 0 ? 0 : -1;
  vp_pipeline *p = NULL;
  VP_ASSERT_OK(vp_pipeline_create(&o, &p));
  vp_dataset_opts d;
  pt_dataset_opts(&d, g_dir);
  d.shuffle = 1;
  d.seed = g_seed;
  VP_ASSERT_OK(vp_pipeline_add_reader(p, &d, NULL, "image", "label"));
  const char *none[1] = {NULL};
  const char *fl[] = {"fl"}, *sd[] = {"sd"}, *img[] = {"image"}, *s[] = {"img_s"}, *f[] = {"img_f"},
             *c[] = {"img_c"}, *n[] = {"img_n"};
  VP_ASSERT_OK(vp_pipeline_add_node(p, "coin_flip", "cpu", 0, none, NULL, 1, fl));
  VP_ASSERT_OK(vp_pipeline_add_node(p, "uniform", "cpu", 0, none, "{\"range\": [0.1, 2]}", 1, sd));
  VP_ASSERT_OK(vp_pipeline_add_node(p, "slice", dev, 1, img,
                                    "{\"anchor\": [-1, 1, 0], \"shape\": [5, 5, 6], "
                                    "\"out_of_bounds_policy\": \"pad\", \"fill_value\": 3}",
                                    1, s));
  VP_ASSERT_OK(vp_pipeline_add_node(
      p, "flip", dev, 1, s, "{\"depthwise\": true, \"horizontal\": {\"node\": \"fl\"}}", 1, f));
  VP_ASSERT_OK(vp_pipeline_add_node(p, "cast", dev, 1, f, "{\"dtype\": \"int16\"}", 1, c));
  VP_ASSERT_OK(vp_pipeline_add_node(p, "gaussian_noise", dev, 1, f,
                                    "{\"stddev\": {\"node\": \"sd\"}}", 1, n));
  const char *outs[NOUT] = {"img_f", "img_c", "img_n", "label", "image"};
  VP_ASSERT_OK(vp_pipeline_set_outputs(p, NOUT, outs));
  VP_ASSERT_OK(vp_pipeline_build(p));
  return p;
}

static vp_tensor *host(vp_tensor *t) {
  vp_tensor *h = NULL;
  VP_ASSERT_OK(vp_tensor_copy_to(t, VP_MEM_HOST, 0, &h));
  return h;
}

static void test_gpu_equals_cpu(void **state) {
  (void)state;
  vp_pipeline *g = graph("gpu", 2, 2), *c = graph("cpu", 2, 2);
  vp_tensor *og[NOUT * B], *oc[NOUT * B];
  for (int b = 0; b < 7; b++) {
    int eg = -1, ec = -1;
    VP_ASSERT_OK(vp_pipeline_run(g, og, &eg));
    VP_ASSERT_OK(vp_pipeline_run(c, oc, &ec));
    assert_int_equal(eg, ec);
    for (int k = 0; k < NOUT; k++)
      for (int i = 0; i < B; i++) {
        vp_tensor *tg = og[k * B + i], *tc = oc[k * B + i];
        assert_int_equal(vp_tensor_memkind(tg), k < 3 ? VP_MEM_DEVICE : VP_MEM_HOST);
        assert_int_equal(vp_tensor_memkind(tc), VP_MEM_HOST);
        vp_tensor *hg = host(tg);
        assert_int_equal(vp_tensor_dtype(hg), vp_tensor_dtype(tc));
        assert_int_equal(vp_tensor_ndim(hg), vp_tensor_ndim(tc));
        for (int d = 0; d < vp_tensor_ndim(tc); d++)
          assert_int_equal(vp_tensor_shape(hg)[d], vp_tensor_shape(tc)[d]);
        if (k != 2) {
          if (memcmp(vp_tensor_data(hg), vp_tensor_data(tc), vp_tensor_nbytes(tc)) != 0)
            fail_msg("batch %d, output %d, sample %d: GPU and CPU bytes differ", b, k, i);
        } else {
          const float *x = (const float *)vp_tensor_data(hg),
                      *y = (const float *)vp_tensor_data(tc);
          for (int64_t e = 0; e < vp_tensor_numel(tc); e++) {
            /* data lie in [-100, 100]: 1e-6 of that range */
            double tol = 1e-6 * fmax(fabs((double)y[e]), 100.0);
            if (fabs((double)x[e] - (double)y[e]) > tol)
              fail_msg("batch %d sample %d element %lld: noise %.9g on the GPU, %.9g on the CPU", b,
                       i, (long long)e, x[e], y[e]);
          }
        }
        vp_tensor_release(hg);
      }
    for (int k = 0; k < NOUT * B; k++) {
      vp_tensor_release(og[k]);
      vp_tensor_release(oc[k]);
    }
  }
  vp_pipeline_destroy(g);
  vp_pipeline_destroy(c);
}

static void test_gpu_deterministic(void **state) {
  (void)state;
  uint64_t ref[5];
  vp_pipeline *p = graph("gpu", 1, 1);
  for (int b = 0; b < 5; b++) ref[b] = pt_run_hash(p, NULL);
  vp_pipeline_destroy(p);
  p = graph("gpu", 4, 3);
  for (int b = 0; b < 5; b++)
    if (pt_run_hash(p, NULL) != ref[b]) fail_msg("batch %d differs with 4 threads", b);
  /* state restore with gpu work in flight */
  VP_ASSERT_OK(vp_pipeline_set_state(p, 0, 0, 0));
  for (int b = 0; b < 5; b++)
    if (pt_run_hash(p, NULL) != ref[b]) fail_msg("batch %d differs after set_state", b);
  vp_pipeline_destroy(p);
  /* destroy right after build and after a batch, with work in flight */
  for (int rep = 0; rep < 6; rep++) {
    p = graph("gpu", 2, 1 + rep % 2);
    if (rep % 2) (void)pt_run_hash(p, NULL);
    vp_pipeline_destroy(p);
  }
}

int main(void) {
  if (vp_cuda_device_count() == 0) {
    printf("no CUDA device: skipped\n");
    return 77;
  }
  g_seed = vp_test_seed();
  snprintf(g_dir, sizeof g_dir, "%s", vp_test_path("gpu_cases"));
  pt_make_dataset(g_dir, 5, -1, g_seed);
  alarm(600);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_gpu_equals_cpu),
      cmocka_unit_test(test_gpu_deterministic),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
