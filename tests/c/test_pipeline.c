/* Pipelines from the C API: results against eager operator calls and a
 * hand-written oracle, determinism over threads and prefetch depths,
 * errors from files and graphs, destroy at any time, state save/restore.
 * Also run under ThreadSanitizer (-DVP_SANITIZE=thread). */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/tensor.h"
#include "ops/op.h"
#include "pipeline_testlib.h"

#define NCASES 5

static uint64_t g_seed;
static char g_dir[600], g_bad_dir[600];

static int setup(void **state) {
  (void)state;
  g_seed = vp_test_seed();
  snprintf(g_dir, sizeof g_dir, "%s", vp_test_path("cases"));
  snprintf(g_bad_dir, sizeof g_bad_dir, "%s", vp_test_path("bad_cases"));
  pt_make_dataset(g_dir, NCASES, -1, g_seed);
  pt_make_dataset(g_bad_dir, NCASES, 3, g_seed);
  /* a hang fails the test instead of blocking CTest */
  alarm(600);
  return 0;
}

/* reader -> slice -> flip -> gaussian_noise; cast of the label. */
static vp_pipeline *chain(const char *dir, int batch, int threads, int depth, uint64_t seed,
                          int shuffle, int skip) {
  vp_pipeline_opts o;
  vp_pipeline_opts_init(&o);
  o.batch_size = batch;
  o.num_threads = threads;
  o.prefetch_queue_depth = depth;
  o.seed = seed;
  o.skip_bad_samples = skip;
  vp_pipeline *p = NULL;
  VP_ASSERT_OK(vp_pipeline_create(&o, &p));
  vp_dataset_opts d;
  pt_dataset_opts(&d, dir);
  d.shuffle = shuffle;
  d.seed = seed;
  VP_ASSERT_OK(vp_pipeline_add_reader(p, &d, NULL, "image", "label"));
  const char *in0[] = {"image"}, *out0[] = {"img_s"};
  VP_ASSERT_OK(vp_pipeline_add_node(p, "slice", "cpu", 1, in0,
                                    "{\"anchor\": [1, 0, 1], \"shape\": [4, 5, 6]}", 1, out0));
  const char *out1[] = {"img_f"};
  VP_ASSERT_OK(vp_pipeline_add_node(p, "flip", "cpu", 1, out0,
                                    "{\"depthwise\": true, \"horizontal\": true}", 1, out1));
  const char *out2[] = {"img_n"};
  VP_ASSERT_OK(
      vp_pipeline_add_node(p, "gaussian_noise", "cpu", 1, out1, "{\"stddev\": 0.5}", 1, out2));
  const char *in3[] = {"label"}, *out3[] = {"lbl_c"};
  VP_ASSERT_OK(vp_pipeline_add_node(p, "cast", "cpu", 1, in3, "{\"dtype\": \"int32\"}", 1, out3));
  const char *outs[] = {"img_f", "img_n", "lbl_c"};
  VP_ASSERT_OK(vp_pipeline_set_outputs(p, 3, outs));
  VP_ASSERT_OK(vp_pipeline_build(p));
  return p;
}

/* Case k's image as the reader gives it: [1, D, H, W], loaded with vp_load. */
static vp_tensor *load_case(const char *dir, const char *prefix, int k) {
  char path[700];
  snprintf(path, sizeof path, "%s/%s_%03d.npy", dir, prefix, k);
  vp_tensor *t = NULL;
  VP_ASSERT_OK(vp_load(path, NULL, &t));
  return t;
}

static vp_tensor *with_channel(vp_tensor *t) {
  int64_t shape[4] = {1, vp_tensor_shape(t)[0], vp_tensor_shape(t)[1], vp_tensor_shape(t)[2]};
  vp_tensor *c = NULL;
  VP_ASSERT_OK(vp_tensor_create(vp_tensor_dtype(t), 4, shape, VP_MEM_HOST, 0, &c));
  memcpy(vp_tensor_data(c), vp_tensor_data(t), vp_tensor_nbytes(t));
  return c;
}

static void assert_same_bytes(const vp_tensor *a, const vp_tensor *b, const char *what) {
  assert_int_equal(vp_tensor_dtype(a), vp_tensor_dtype(b));
  assert_int_equal(vp_tensor_ndim(a), vp_tensor_ndim(b));
  for (int d = 0; d < vp_tensor_ndim(a); d++)
    assert_int_equal(vp_tensor_shape(a)[d], vp_tensor_shape(b)[d]);
  if (memcmp(vp_tensor_data(a), vp_tensor_data(b), vp_tensor_nbytes(a)) != 0)
    fail_msg("%s: bytes differ", what);
}

/* Gaussian noise as node 2 draws it: key (seed, 2), the batch counter as
 * iteration, the sample's index in its batch as counter sample. */
static vp_tensor *noise_like_node2(vp_tensor *in, uint64_t seed, uint32_t iteration,
                                   uint32_t sample) {
  const vp_op_desc *op = vp_op_lookup("gaussian_noise");
  assert_non_null(op);
  vp_op_args *args = NULL;
  VP_ASSERT_OK(vp_op_args_parse(op, "{\"stddev\": 0.5}", 1, &args));
  vp_tensor *out = NULL;
  VP_ASSERT_OK(vp_tensor_create(vp_tensor_dtype(in), vp_tensor_ndim(in), vp_tensor_shape(in),
                                VP_MEM_HOST, 0, &out));
  vp_tensor *ins[1] = {in}, *outs[1] = {out};
  vp_op_call c;
  memset(&c, 0, sizeof c);
  c.batch = 1;
  c.in[0] = ins;
  c.out[0] = outs;
  c.args = args;
  c.key = vp_rng_key_make(seed, 2);
  c.iteration = iteration;
  c.sample_base = sample;
  c.device = -1;
  VP_ASSERT_OK(op->run_cpu(&c));
  vp_op_args_free(args);
  return out;
}

static void test_matches_eager(void **state) {
  (void)state;
  const int B = 2, batches = 8; /* 16 samples: three epochs of 5 and one more */
  vp_pipeline *p = chain(g_dir, B, 2, 2, g_seed, 0, 0);
  assert_int_equal(vp_pipeline_epoch_size(p), NCASES);
  assert_int_equal(vp_pipeline_num_outputs(p), 3);
  vp_tensor *out[3 * 2];
  for (int b = 0; b < batches; b++) {
    int epoch_end = -1;
    VP_ASSERT_OK(vp_pipeline_run(p, out, &epoch_end));
    int want_end = 0;
    for (int i = 0; i < B; i++) {
      int g = b * B + i, k = g % NCASES;
      want_end |= k == NCASES - 1;
      vp_tensor *raw = load_case(g_dir, "img", k);
      vp_tensor *img = with_channel(raw);
      /* hand oracle: slice at (1, 0, 1), then D and W reversed */
      const float *r = (const float *)vp_tensor_data(raw);
      const float *f = (const float *)vp_tensor_data(out[0 * B + i]);
      const int64_t *rs = vp_tensor_shape(raw);
      assert_int_equal(vp_tensor_ndim(out[i]), 4);
      for (int d = 0; d < 4; d++)
        for (int h = 0; h < 5; h++)
          for (int w = 0; w < 6; w++) {
            float want = r[((1 + (3 - d)) * rs[1] + h) * rs[2] + (1 + (5 - w))];
            float got = f[(d * 5 + h) * 6 + w];
            if (want != got)
              fail_msg("batch %d sample %d (case %d) at (%d,%d,%d): %g, want %g", b, i, k, d, h, w,
                       got, want);
          }
      /* the eager operators give the same bytes */
      vp_tensor *s = NULL, *fl = NULL;
      VP_ASSERT_OK(
          vp_ops_call("slice", 1, &img, "{\"anchor\": [1, 0, 1], \"shape\": [4, 5, 6]}", 0, &s));
      VP_ASSERT_OK(
          vp_ops_call("flip", 1, &s, "{\"depthwise\": true, \"horizontal\": true}", 0, &fl));
      assert_same_bytes(out[0 * B + i], fl, "img_f vs eager slice+flip");
      vp_tensor *nz = noise_like_node2(fl, g_seed, (uint32_t)b, (uint32_t)i);
      assert_same_bytes(out[1 * B + i], nz, "img_n vs node 2's noise");
      /* noise changed the values */
      assert_true(memcmp(vp_tensor_data(nz), vp_tensor_data(fl), vp_tensor_nbytes(fl)) != 0);
      vp_tensor *lraw = load_case(g_dir, "lbl", k), *lc = NULL;
      VP_ASSERT_OK(vp_ops_call("cast", 1, &lraw, "{\"dtype\": \"int32\"}", 0, &lc));
      const uint8_t *lr = (const uint8_t *)vp_tensor_data(lraw);
      const int32_t *li = (const int32_t *)vp_tensor_data(out[2 * B + i]);
      assert_int_equal(vp_tensor_dtype(out[2 * B + i]), VP_I32);
      assert_int_equal(vp_tensor_numel(out[2 * B + i]), vp_tensor_numel(lraw));
      for (int64_t e = 0; e < vp_tensor_numel(lraw); e++) assert_int_equal(li[e], lr[e]);
      assert_same_bytes(out[2 * B + i], lc, "lbl_c vs eager cast");
      vp_tensor_release(raw);
      vp_tensor_release(img);
      vp_tensor_release(s);
      vp_tensor_release(fl);
      vp_tensor_release(nz);
      vp_tensor_release(lraw);
      vp_tensor_release(lc);
    }
    assert_int_equal(epoch_end, want_end);
    for (int i = 0; i < 3 * B; i++) vp_tensor_release(out[i]);
  }
  vp_pipeline_destroy(p);
}

/* Random per-sample arguments from other nodes, over a shuffled dataset. */
static vp_pipeline *random_graph_ex(int threads, int depth, uint64_t seed, int crop,
                                    size_t cache) {
  vp_pipeline_opts o;
  vp_pipeline_opts_init(&o);
  o.batch_size = 3;
  o.num_threads = threads;
  o.prefetch_queue_depth = depth;
  o.seed = seed;
  vp_pipeline *p = NULL;
  VP_ASSERT_OK(vp_pipeline_create(&o, &p));
  vp_dataset_opts d;
  pt_dataset_opts(&d, g_dir);
  d.shuffle = 1;
  d.seed = seed;
  VP_ASSERT_OK(vp_pipeline_add_reader(p, &d, NULL, "image", "label"));
  if (crop) {
    const int64_t window[3] = {3, 9, 4}; /* larger than some cases on H: padded windows */
    VP_ASSERT_OK(vp_pipeline_set_reader_crop(p, 3, window));
  }
  if (cache) VP_ASSERT_OK(vp_pipeline_set_reader_cache(p, cache, VP_MEM_HOST));
  const char *none[1] = {NULL};
  const char *o0[] = {"sd"}, *o1[] = {"fl"};
  VP_ASSERT_OK(vp_pipeline_add_node(p, "uniform", "cpu", 0, none, "{\"range\": [0.1, 2]}", 1, o0));
  VP_ASSERT_OK(vp_pipeline_add_node(p, "coin_flip", "cpu", 0, none, NULL, 1, o1));
  const char *in2[] = {"image"}, *o2[] = {"img_f"};
  VP_ASSERT_OK(vp_pipeline_add_node(p, "flip", "cpu", 1, in2,
                                    "{\"horizontal\": {\"node\": \"fl\"}}", 1, o2));
  const char *o3[] = {"img_n"};
  VP_ASSERT_OK(vp_pipeline_add_node(p, "gaussian_noise", "cpu", 1, o2,
                                    "{\"stddev\": {\"node\": \"sd\"}}", 1, o3));
  const char *outs[] = {"img_n", "label", "sd"};
  VP_ASSERT_OK(vp_pipeline_set_outputs(p, 3, outs));
  VP_ASSERT_OK(vp_pipeline_build(p));
  return p;
}

static vp_pipeline *random_graph(int threads, int depth, uint64_t seed) {
  return random_graph_ex(threads, depth, seed, 0, 0);
}

#define NB 6
static void hashes(vp_pipeline *p, uint64_t *h) {
  for (int b = 0; b < NB; b++) h[b] = pt_run_hash(p, NULL);
}

static void test_deterministic(void **state) {
  (void)state;
  uint64_t ref[NB];
  vp_pipeline *p = random_graph(1, 1, g_seed);
  hashes(p, ref);
  vp_pipeline_destroy(p);
  const int threads[] = {1, 2, 4}, depths[] = {1, 2, 3};
  for (int t = 0; t < 3; t++)
    for (int d = 0; d < 3; d++) {
      uint64_t h[NB];
      p = random_graph(threads[t], depths[d], g_seed);
      hashes(p, h);
      vp_pipeline_destroy(p);
      for (int b = 0; b < NB; b++)
        if (h[b] != ref[b])
          fail_msg("threads %d, prefetch %d: batch %d differs from threads 1, prefetch 1",
                   threads[t], depths[d], b);
    }
  /* another seed draws other numbers */
  uint64_t h[NB];
  p = random_graph(2, 2, g_seed + 1);
  hashes(p, h);
  vp_pipeline_destroy(p);
  int differ = 0;
  for (int b = 0; b < NB; b++) differ += h[b] != ref[b];
  assert_int_equal(differ, NB);
}

/* The reader's random crop and its cache: the same bytes with and without
 * the cache, for any thread count; the cache is used (run under TSan in CI:
 * pool workers share it). */
static void test_crop_and_cache(void **state) {
  (void)state;
  uint64_t ref[NB];
  vp_pipeline *p = random_graph_ex(1, 1, g_seed, 1, 0);
  hashes(p, ref);
  vp_pipeline_destroy(p);
  const size_t budgets[] = {(size_t)1 << 30, 2000};
  for (int b = 0; b < 2; b++)
    for (int threads = 1; threads <= 4; threads *= 2) {
      uint64_t h[NB];
      p = random_graph_ex(threads, 2, g_seed, 1, budgets[b]);
      hashes(p, h);
      size_t bytes;
      int64_t entries;
      uint64_t hits, misses;
      VP_ASSERT_OK(vp_pipeline_cache_stats(p, &bytes, &entries, &hits, &misses));
      vp_pipeline_destroy(p);
      for (int k = 0; k < NB; k++)
        if (h[k] != ref[k]) fail_msg("cache %zu, threads %d: batch %d differs", budgets[b], threads, k);
      assert_true(misses > 0);
      assert_true(bytes <= budgets[b]);
      if (b == 0) assert_true(hits > 0);
    }
  /* a whole-volume pipeline through the cache equals the files */
  uint64_t whole[NB], cached[NB];
  p = random_graph_ex(2, 2, g_seed, 0, 0);
  hashes(p, whole);
  vp_pipeline_destroy(p);
  p = random_graph_ex(2, 2, g_seed, 0, (size_t)1 << 30);
  hashes(p, cached);
  vp_pipeline_destroy(p);
  assert_memory_equal(whole, cached, sizeof whole);
}

/* The per-sample values reached the nodes: a sample is flipped when its
 * coin says so, and its noise has about the standard deviation its
 * uniform draw says. */
static void test_per_sample_binding(void **state) {
  (void)state;
  enum { B = 4 };
  vp_pipeline_opts o;
  vp_pipeline_opts_init(&o);
  o.batch_size = B;
  o.num_threads = 2;
  o.seed = g_seed;
  vp_pipeline *p = NULL;
  VP_ASSERT_OK(vp_pipeline_create(&o, &p));
  vp_dataset_opts d;
  pt_dataset_opts(&d, g_dir);
  VP_ASSERT_OK(vp_pipeline_add_reader(p, &d, NULL, "image", NULL));
  const char *none[1] = {NULL}, *img[] = {"image"};
  const char *o0[] = {"fl"}, *o1[] = {"img_f"}, *o2[] = {"sd"}, *o3[] = {"img_n"};
  VP_ASSERT_OK(vp_pipeline_add_node(p, "coin_flip", "cpu", 0, none, NULL, 1, o0));
  VP_ASSERT_OK(vp_pipeline_add_node(p, "flip", "cpu", 1, img,
                                    "{\"horizontal\": {\"node\": \"fl\"}}", 1, o1));
  VP_ASSERT_OK(vp_pipeline_add_node(p, "uniform", "cpu", 0, none, "{\"range\": [0.1, 2]}", 1, o2));
  VP_ASSERT_OK(vp_pipeline_add_node(p, "gaussian_noise", "cpu", 1, img,
                                    "{\"stddev\": {\"node\": \"sd\"}}", 1, o3));
  const char *outs[] = {"image", "fl", "img_f", "sd", "img_n"};
  VP_ASSERT_OK(vp_pipeline_set_outputs(p, 5, outs));
  VP_ASSERT_OK(vp_pipeline_build(p));
  vp_tensor *out[5 * B];
  for (int b = 0; b < 3; b++) {
    VP_ASSERT_OK(vp_pipeline_run(p, out, NULL));
    for (int i = 0; i < B; i++) {
      const vp_tensor *im = out[i], *ff = out[2 * B + i], *nn = out[4 * B + i];
      int flip = *(const int32_t *)vp_tensor_data(out[B + i]);
      float sd = *(const float *)vp_tensor_data(out[3 * B + i]);
      assert_true(flip == 0 || flip == 1);
      assert_true(sd >= 0.1f && sd <= 2.0f);
      const float *x = (const float *)vp_tensor_data(im), *y = (const float *)vp_tensor_data(ff);
      const float *z = (const float *)vp_tensor_data(nn);
      int64_t W = vp_tensor_shape(im)[3], n = vp_tensor_numel(im);
      double ss = 0;
      for (int64_t e = 0; e < n; e++) {
        int64_t w = e % W, src = flip ? e - w + (W - 1 - w) : e;
        if (y[e] != x[src])
          fail_msg("sample %d (flip %d): element %lld differs", i, flip, (long long)e);
        ss += ((double)z[e] - x[e]) * ((double)z[e] - x[e]);
      }
      double got = sqrt(ss / (double)n);
      if (fabs(got - sd) > 0.25 * sd) fail_msg("sample %d: noise sd %g, want about %g", i, got, sd);
    }
    for (int i = 0; i < 5 * B; i++) vp_tensor_release(out[i]);
  }
  vp_pipeline_destroy(p);
}

static void test_corrupt_file(void **state) {
  (void)state;
  vp_pipeline *p = chain(g_bad_dir, 2, 2, 2, g_seed, 0, 0);
  vp_tensor *out[6];
  /* cases 0, 1 are fine; the batch of cases 2, 3 fails naming case 3's file */
  VP_ASSERT_OK(vp_pipeline_run(p, out, NULL));
  for (int i = 0; i < 6; i++) vp_tensor_release(out[i]);
  for (int rep = 0; rep < 3; rep++) {
    vp_status s = vp_pipeline_run(p, out, NULL);
    assert_int_not_equal(s, VP_OK);
    const char *msg = vp_last_error();
    if (!strstr(msg, "img_003.npy")) fail_msg("the message does not name the file: %s", msg);
    for (int i = 0; i < 6; i++) assert_null(out[i]);
  }
  vp_pipeline_destroy(p);

  /* skipping: case 3 is replaced by the next case, with a warning */
  char log[700];
  snprintf(log, sizeof log, "%s", vp_test_path("stderr.txt"));
  fflush(stderr);
  int saved = dup(2);
  FILE *f = fopen(log, "w");
  assert_non_null(f);
  dup2(fileno(f), 2);
  p = chain(g_bad_dir, 2, 2, 2, g_seed, 0, 1);
  for (int b = 0; b < 6; b++) {
    VP_ASSERT_OK(vp_pipeline_run(p, out, NULL));
    for (int i = 0; i < 6; i++) vp_tensor_release(out[i]);
  }
  vp_pipeline_destroy(p);
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  fclose(f);
  size_t n = 0;
  char *text = (char *)vp_test_read_file(log, &n);
  char *t = (char *)realloc(text, n + 1);
  t[n] = '\0';
  if (!strstr(t, "voxpipe: warning: skipping ") || !strstr(t, "img_003.npy"))
    fail_msg("no warning naming img_003.npy on stderr: '%s'", t);
  free(t);
}

/* Skipping keeps the order of the good cases: the image reader output
 * carries the case number in element 0. */
static void test_skip_order(void **state) {
  (void)state;
  vp_pipeline_opts o;
  vp_pipeline_opts_init(&o);
  o.batch_size = 3;
  o.num_threads = 2;
  o.skip_bad_samples = 1;
  vp_pipeline *p = NULL;
  VP_ASSERT_OK(vp_pipeline_create(&o, &p));
  vp_dataset_opts d;
  pt_dataset_opts(&d, g_bad_dir);
  VP_ASSERT_OK(vp_pipeline_add_reader(p, &d, NULL, "image", NULL));
  const char *outs[] = {"image"};
  VP_ASSERT_OK(vp_pipeline_set_outputs(p, 1, outs));
  fflush(stderr);
  int saved = dup(2);
  FILE *devnull = fopen("/dev/null", "w");
  dup2(fileno(devnull), 2);
  VP_ASSERT_OK(vp_pipeline_build(p));
  /* good cases in order: 0 1 2 4 | 0 1 2 4 | ... */
  const int want[] = {0, 1, 2, 4, 0, 1, 2, 4, 0, 1, 2, 4};
  vp_tensor *out[3];
  for (int b = 0; b < 4; b++) {
    VP_ASSERT_OK(vp_pipeline_run(p, out, NULL));
    for (int i = 0; i < 3; i++) {
      float k = *(const float *)vp_tensor_data(out[i]);
      if (k != (float)want[b * 3 + i])
        fail_msg("batch %d sample %d is case %g, want %d", b, i, k, want[b * 3 + i]);
      vp_tensor_release(out[i]);
    }
  }
  vp_pipeline_destroy(p);
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  fclose(devnull);
}

static void test_destroy_any_time(void **state) {
  (void)state;
  for (int rep = 0; rep < 20; rep++) {
    /* right after build, after one batch (producer blocked on a full
     * queue), and with batches left in the queue */
    vp_pipeline *p = chain(g_dir, 1 + rep % 4, 1 + rep % 3, 1 + rep % 2, g_seed, rep % 2, 0);
    if (rep % 3 != 0) {
      vp_tensor *out[3 * 4];
      VP_ASSERT_OK(vp_pipeline_run(p, out, NULL));
      for (int i = 0; i < 3 * vp_pipeline_batch_size(p); i++) vp_tensor_release(out[i]);
    }
    if (rep % 3 == 2) usleep(2000);
    vp_pipeline_destroy(p);
  }
  /* and an unbuilt pipeline, and NULL */
  vp_pipeline *p = NULL;
  VP_ASSERT_OK(vp_pipeline_create(NULL, &p));
  vp_pipeline_destroy(p);
  vp_pipeline_destroy(NULL);
}

static void test_state_restore(void **state) {
  (void)state;
  vp_pipeline *a = random_graph(2, 3, g_seed);
  int64_t e, i, it;
  VP_ASSERT_OK(vp_pipeline_get_state(a, &e, &i, &it));
  assert_true(e == 0 && i == 0 && it == 0);
  for (int b = 0; b < 3; b++) (void)pt_run_hash(a, NULL);
  VP_ASSERT_OK(vp_pipeline_get_state(a, &e, &i, &it));
  /* 9 samples of a 5-case epoch: epoch 1, index 4, batch 3 */
  assert_int_equal(e, 1);
  assert_int_equal(i, 4);
  assert_int_equal(it, 3);
  uint64_t want[NB];
  hashes(a, want);
  /* a fresh pipeline resumed at the saved state returns the same batches */
  vp_pipeline *b = random_graph(1, 1, g_seed);
  (void)pt_run_hash(b, NULL);
  VP_ASSERT_OK(vp_pipeline_set_state(b, e, i, it));
  int64_t e2, i2, it2;
  VP_ASSERT_OK(vp_pipeline_get_state(b, &e2, &i2, &it2));
  assert_true(e2 == e && i2 == i && it2 == it);
  uint64_t got[NB];
  hashes(b, got);
  for (int k = 0; k < NB; k++)
    if (got[k] != want[k]) fail_msg("resumed batch %d differs", k);
  /* and the original, sought back with batches prefetched, too */
  VP_ASSERT_OK(vp_pipeline_set_state(a, e, i, it));
  hashes(a, got);
  for (int k = 0; k < NB; k++)
    if (got[k] != want[k]) fail_msg("re-sought batch %d differs", k);
  /* a bad state is an error, reported by run() too, until a good seek */
  assert_int_not_equal(vp_pipeline_set_state(a, 0, 99, 0), VP_OK);
  vp_tensor *out[9];
  assert_int_not_equal(vp_pipeline_run(a, out, NULL), VP_OK);
  VP_ASSERT_OK(vp_pipeline_set_state(a, e, i, it));
  assert_true(pt_run_hash(a, NULL) == want[0]);
  vp_pipeline_destroy(a);
  vp_pipeline_destroy(b);
}

/* A failing node mid-run names the node. */
static void test_failing_node(void **state) {
  (void)state;
  vp_pipeline_opts o;
  vp_pipeline_opts_init(&o);
  o.batch_size = 2;
  vp_pipeline *p = NULL;
  VP_ASSERT_OK(vp_pipeline_create(&o, &p));
  vp_dataset_opts d;
  pt_dataset_opts(&d, g_dir);
  VP_ASSERT_OK(vp_pipeline_add_reader(p, &d, NULL, "image", "label"));
  /* cases 0, 3 have D = 6: a box of depth 7 at 0 fits only cases with D >= 7 */
  const char *in0[] = {"label"}, *o0[] = {"l2"}, *in1[] = {"image"}, *o1[] = {"s"};
  VP_ASSERT_OK(vp_pipeline_add_node(p, "cast", "cpu", 1, in0, "{\"dtype\": \"f32\"}", 1, o0));
  VP_ASSERT_OK(vp_pipeline_add_node(p, "slice", "cpu", 1, in1,
                                    "{\"anchor\": [0, 0, 0], \"shape\": [7, 7, 8]}", 1, o1));
  const char *outs[] = {"s"};
  VP_ASSERT_OK(vp_pipeline_set_outputs(p, 1, outs));
  VP_ASSERT_OK(vp_pipeline_build(p));
  vp_tensor *out[2];
  vp_status s = vp_pipeline_run(p, out, NULL);
  assert_int_not_equal(s, VP_OK);
  if (!strstr(vp_last_error(), "node 1 (slice)")) fail_msg("message: %s", vp_last_error());
  vp_pipeline_destroy(p);
}

static void expect_error(vp_status s, const char *const *parts) {
  assert_int_not_equal(s, VP_OK);
  const char *msg = vp_last_error();
  for (int i = 0; parts[i]; i++)
    if (!strstr(msg, parts[i])) fail_msg("'%s' is not in the message: %s", parts[i], msg);
}

static vp_pipeline *bare(int device) {
  vp_pipeline_opts o;
  vp_pipeline_opts_init(&o);
  o.device = device;
  vp_pipeline *p = NULL;
  VP_ASSERT_OK(vp_pipeline_create(&o, &p));
  vp_dataset_opts d;
  pt_dataset_opts(&d, g_dir);
  VP_ASSERT_OK(vp_pipeline_add_reader(p, &d, NULL, "image", "label"));
  return p;
}

static void test_bad_graphs(void **state) {
  (void)state;
  const char *img[] = {"image"}, *o1[] = {"x"}, *dup[] = {"label"};
  vp_pipeline *p = bare(-1);
  {
    const char *want[] = {"node 0 (flop)", "unknown operator 'flop'", "flip", NULL};
    expect_error(vp_pipeline_add_node(p, "flop", "cpu", 1, img, NULL, 1, o1), want);
  }
  {
    const char *bad[] = {"imag"};
    const char *want[] = {"node 0 (flip)", "inputs[0]", "unknown output 'imag'", "image, label",
                          NULL};
    expect_error(vp_pipeline_add_node(p, "flip", "cpu", 1, bad, NULL, 1, o1), want);
  }
  {
    const char *want[] = {"outputs[0]", "'label' is already the name of an output of reader", NULL};
    expect_error(vp_pipeline_add_node(p, "flip", "cpu", 1, img, NULL, 1, dup), want);
  }
  {
    const char *want[] = {"inputs", "flip takes 1 input", NULL};
    const char *two[] = {"image", "label"};
    expect_error(vp_pipeline_add_node(p, "flip", "cpu", 2, two, NULL, 1, o1), want);
  }
  {
    const char *want[] = {"args.horizontl", "flip has no argument 'horizontl'", "horizontal", NULL};
    expect_error(vp_pipeline_add_node(p, "flip", "cpu", 1, img, "{\"horizontl\": true}", 1, o1),
                 want);
  }
  {
    const char *want[] = {"args.p", "1.5", "[0, 1]", NULL};
    expect_error(vp_pipeline_add_node(p, "gaussian_noise", "cpu", 1, img, "{\"p\": 1.5}", 1, o1),
                 want);
  }
  {
    const char *want[] = {"args", "not valid JSON", NULL};
    expect_error(vp_pipeline_add_node(p, "flip", "cpu", 1, img, "{\"p\": ", 1, o1), want);
  }
  {
    const char *want[] = {"device", "'tpu'", NULL};
    expect_error(vp_pipeline_add_node(p, "flip", "tpu", 1, img, NULL, 1, o1), want);
  }
  {
    /* a required argument that is missing */
    const char *want2[] = {"node 0 (cast)", "args.dtype", "no default", NULL};
    expect_error(vp_pipeline_add_node(p, "cast", "cpu", 1, img, "{}", 1, o1), want2);
  }
  /* per-sample binding to an argument that does not allow it */
  const char *none[1] = {NULL}, *u[] = {"u"};
  VP_ASSERT_OK(vp_pipeline_add_node(p, "uniform", "cpu", 0, none, NULL, 1, u));
  {
    const char *want[] = {"node 1 (cast)", "args.dtype", "cannot vary per sample", NULL};
    expect_error(
        vp_pipeline_add_node(p, "cast", "cpu", 1, img, "{\"dtype\": {\"node\": \"u\"}}", 1, o1),
        want);
  }
  {
    const char *want[] = {"args.p", "unknown output 'v'", NULL};
    expect_error(vp_pipeline_add_node(p, "gaussian_noise", "cpu", 1, img,
                                      "{\"p\": {\"node\": \"v\"}}", 1, o1),
                 want);
  }
  /* no outputs chosen */
  {
    const char *want[] = {"no outputs", NULL};
    expect_error(vp_pipeline_build(p), want);
  }
  {
    const char *bad[] = {"nothing"};
    const char *want[] = {"outputs[0]", "unknown output 'nothing'", NULL};
    expect_error(vp_pipeline_set_outputs(p, 1, bad), want);
  }
  /* a gpu node without a device fails at build */
  VP_ASSERT_OK(vp_pipeline_add_node(p, "flip", "gpu", 1, img, NULL, 1, o1));
  VP_ASSERT_OK(vp_pipeline_set_outputs(p, 1, o1));
  {
    const char *want[] = {"node 1 (flip)", "needs a GPU", NULL};
    expect_error(vp_pipeline_build(p), want);
  }
  /* a cpu node reading a gpu output */
  const char *o3[] = {"y"};
  VP_ASSERT_OK(vp_pipeline_add_node(p, "cast", "cpu", 1, o1, "{\"dtype\": \"f32\"}", 1, o3));
  {
    const char *want[] = {"node 2 (cast)", "cannot read 'x'", "node 1 (flip)", NULL};
    expect_error(vp_pipeline_build(p), want);
  }
  vp_pipeline_destroy(p);
  /* no reader */
  VP_ASSERT_OK(vp_pipeline_create(NULL, &p));
  {
    const char *want[] = {"no reader", NULL};
    expect_error(vp_pipeline_build(p), want);
  }
  vp_pipeline_destroy(p);
  /* bad options, and run before build */
  vp_pipeline_opts o;
  vp_pipeline_opts_init(&o);
  o.batch_size = 0;
  {
    const char *want[] = {"batch_size 0", NULL};
    expect_error(vp_pipeline_create(&o, &p), want);
    assert_null(p);
  }
  p = bare(-1);
  vp_tensor *out[2];
  {
    const char *want[] = {"build first", NULL};
    expect_error(vp_pipeline_run(p, out, NULL), want);
  }
  vp_pipeline_destroy(p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_matches_eager),      cmocka_unit_test(test_deterministic), cmocka_unit_test(test_crop_and_cache),
      cmocka_unit_test(test_per_sample_binding), cmocka_unit_test(test_corrupt_file),
      cmocka_unit_test(test_skip_order),         cmocka_unit_test(test_destroy_any_time),
      cmocka_unit_test(test_state_restore),      cmocka_unit_test(test_failing_node),
      cmocka_unit_test(test_bad_graphs),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
