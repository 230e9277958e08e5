/* Injected faults on a running pipeline: a dataset file deleted or
 * truncated mid-epoch, a read error (the hook in src/io/source.h), a failed
 * host allocation at every allocation site of a small run (the hook in
 * src/core/memory.h), and destroying a pipeline from another thread while
 * its producer is mid-batch or while a consumer is blocked in run. Each must
 * give a clear error (naming the file), or skip with skip_bad_samples, and
 * leave nothing behind: run under ASan/LSan (build-asan in .ci/run) a leak
 * or a use after free fails the test. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/memory.h"
#include "io/source.h"
#include "pipeline_testlib.h"

#define NCASES 6

static uint64_t g_seed;
static int g_dir_counter;

static int setup(void **state) {
  (void)state;
  g_seed = vp_test_seed();
  alarm(600); /* a hang fails instead of blocking CTest */
  return 0;
}

/* A fresh dataset directory per test (files get deleted and truncated). */
static const char *fresh_dataset(char *dir, size_t n) {
  char name[64];
  snprintf(name, sizeof name, "faults_%d", g_dir_counter++);
  snprintf(dir, n, "%s", vp_test_path(name));
  pt_make_dataset(dir, NCASES, -1, g_seed);
  return dir;
}

/* reader -> flip -> gaussian_noise; cast of the label. */
static vp_status build_chain(const char *dir, int batch, int threads, int depth, int skip,
                             vp_pipeline **out) {
  vp_pipeline_opts o;
  vp_pipeline_opts_init(&o);
  o.batch_size = batch;
  o.num_threads = threads;
  o.prefetch_queue_depth = depth;
  o.seed = g_seed;
  o.skip_bad_samples = skip;
  vp_pipeline *p = NULL;
  vp_status s = vp_pipeline_create(&o, &p);
  if (s != VP_OK) return s;
  vp_dataset_opts d;
  pt_dataset_opts(&d, dir);
  const char *img[] = {"image"}, *flipped[] = {"img_f"}, *noisy[] = {"img_n"};
  const char *lbl[] = {"label"}, *lbl_c[] = {"lbl_c"}, *outs[] = {"img_n", "lbl_c"};
  s = vp_pipeline_add_reader(p, &d, NULL, "image", "label");
  if (s == VP_OK)
    s = vp_pipeline_add_node(p, "flip", "cpu", 1, img, "{\"depthwise\": true}", 1, flipped);
  if (s == VP_OK)
    s = vp_pipeline_add_node(p, "gaussian_noise", "cpu", 1, flipped, "{\"stddev\": 0.5}", 1, noisy);
  if (s == VP_OK)
    s = vp_pipeline_add_node(p, "cast", "cpu", 1, lbl, "{\"dtype\": \"int32\"}", 1, lbl_c);
  if (s == VP_OK) s = vp_pipeline_set_outputs(p, 2, outs);
  if (s == VP_OK) s = vp_pipeline_build(p);
  if (s != VP_OK) {
    vp_pipeline_destroy(p);
    return s;
  }
  *out = p;
  return VP_OK;
}

static vp_pipeline *chain(const char *dir, int batch, int threads, int depth, int skip) {
  vp_pipeline *p = NULL;
  VP_ASSERT_OK(build_chain(dir, batch, threads, depth, skip, &p));
  return p;
}

/* One batch; cases[i] receives the case number of sample i, told by its
 * label's extents (D = 6 + k % 3, W = 8 + k % 2: unique for k < 6). */
static vp_status run_batch(vp_pipeline *p, int *cases) {
  int B = vp_pipeline_batch_size(p);
  vp_tensor *out[2 * 8] = {0};
  vp_status s = vp_pipeline_run(p, out, NULL);
  if (s != VP_OK) {
    for (int i = 0; i < 2 * B; i++) assert_null(out[i]);
    return s;
  }
  for (int i = 0; i < B; i++) {
    /* the case's D extent (6 + k % 3) and W extent (8 + k % 2) tell k mod 6 */
    const int64_t *sh = vp_tensor_shape(out[B + i]);
    assert_int_equal(vp_tensor_ndim(out[B + i]), 3);
    int k3 = (int)(sh[0] - 6), k2 = (int)(sh[2] - 8);
    int k = -1;
    for (int c = 0; c < NCASES; c++)
      if (c % 3 == k3 && c % 2 == k2) k = c;
    if (cases) cases[i] = k;
  }
  for (int i = 0; i < 2 * B; i++) vp_tensor_release(out[i]);
  return VP_OK;
}

/* stderr to a file (skip warnings) and back. */
typedef struct capture {
  int saved;
  FILE *f;
  char path[700];
} capture;

static void capture_begin(capture *c, const char *name) {
  snprintf(c->path, sizeof c->path, "%s", vp_test_path(name));
  fflush(stderr);
  c->saved = dup(2);
  c->f = fopen(c->path, "w");
  assert_non_null(c->f);
  dup2(fileno(c->f), 2);
}

static char *capture_end(capture *c) {
  fflush(stderr);
  dup2(c->saved, 2);
  close(c->saved);
  fclose(c->f);
  size_t n = 0;
  char *text = (char *)vp_test_read_file(c->path, &n);
  char *t = (char *)realloc(text, n + 1);
  t[n] = '\0';
  return t;
}

/* The file is damaged after the pipeline started: the error names it. With
 * batches of 2 over 6 cases and a queue of 1, at most cases 0..5 of the
 * first epoch were read ahead, so the second epoch reads the file again. */
static void damaged_mid_epoch(int truncate_it, vp_status want) {
  char dir[700], path[800];
  fresh_dataset(dir, sizeof dir);
  vp_pipeline *p = chain(dir, 2, 2, 1, 0);
  assert_int_equal(run_batch(p, NULL), VP_OK);
  snprintf(path, sizeof path, "%s/img_004.npy", dir);
  if (truncate_it)
    assert_int_equal(truncate(path, 100), 0);
  else
    assert_int_equal(unlink(path), 0);
  vp_status s = VP_OK;
  int b = 1;
  for (; b < 12 && s == VP_OK; b++) s = run_batch(p, NULL);
  if (s == VP_OK) fail_msg("the damaged file was never reported");
  assert_int_equal(s, want);
  if (!strstr(vp_last_error(), "img_004.npy"))
    fail_msg("the message does not name the file: %s", vp_last_error());
  printf("%s after %d batches: %s\n", truncate_it ? "truncated" : "deleted", b, vp_last_error());
  /* the error stays until the state is reset */
  assert_int_equal(run_batch(p, NULL), want);
  vp_pipeline_destroy(p);

  /* skipping: every later batch comes, without case 4 once it was re-read */
  fresh_dataset(dir, sizeof dir);
  p = chain(dir, 2, 2, 1, 1);
  assert_int_equal(run_batch(p, NULL), VP_OK);
  snprintf(path, sizeof path, "%s/img_004.npy", dir);
  if (truncate_it)
    assert_int_equal(truncate(path, 100), 0);
  else
    assert_int_equal(unlink(path), 0);
  capture c;
  capture_begin(&c, "skip_stderr.txt");
  int seen_late = 0;
  for (int k = 1; k < 16; k++) {
    int cases[2];
    VP_ASSERT_OK(run_batch(p, cases));
    /* batches 8.. are past two epochs of reads */
    if (k >= 8) seen_late |= cases[0] == 4 || cases[1] == 4;
  }
  vp_pipeline_destroy(p);
  char *log = capture_end(&c);
  if (!strstr(log, "skipping") || !strstr(log, "img_004.npy"))
    fail_msg("no warning naming img_004.npy: '%s'", log);
  free(log);
  assert_false(seen_late);
}

static void test_file_deleted(void **state) {
  (void)state;
  damaged_mid_epoch(0, VP_ERR_IO);
}

static void test_file_truncated(void **state) {
  (void)state;
  damaged_mid_epoch(1, VP_ERR_FORMAT);
}

static void test_read_error(void **state) {
  (void)state;
  char dir[700];
  fresh_dataset(dir, sizeof dir);
  /* the first read of case 2's image (its header) fails */
  vp_debug_fail_reads("img_002.npy", 0);
  vp_pipeline *p = chain(dir, 2, 2, 2, 0);
  assert_int_equal(run_batch(p, NULL), VP_OK);
  vp_status s = run_batch(p, NULL);
  vp_pipeline_destroy(p);
  assert_int_equal(s, VP_ERR_IO);
  const char *msg = vp_last_error();
  if (!strstr(msg, "img_002.npy") || !strstr(msg, "read error"))
    fail_msg("the message does not name the file and the error: %s", msg);
  /* later reads: the data after the header (second read) fails */
  vp_debug_fail_reads("img_005.npy", 1);
  capture c;
  capture_begin(&c, "read_stderr.txt");
  p = chain(dir, 2, 1, 1, 1);
  int cases[2];
  for (int b = 0; b < 6; b++) {
    VP_ASSERT_OK(run_batch(p, cases));
    assert_int_not_equal(cases[0], 5);
    assert_int_not_equal(cases[1], 5);
  }
  vp_pipeline_destroy(p);
  vp_debug_fail_reads(NULL, 0);
  char *log = capture_end(&c);
  if (!strstr(log, "img_005.npy") || !strstr(log, "injected"))
    fail_msg("no warning naming img_005.npy: '%s'", log);
  free(log);
  /* disarmed: the same files read fine */
  p = chain(dir, 2, 2, 2, 0);
  for (int b = 0; b < 4; b++) VP_ASSERT_OK(run_batch(p, NULL));
  vp_pipeline_destroy(p);
}

/* Host allocation n fails, and every later one, for n = 0, 1, ... until a
 * run of 4 batches passes: each failure is VP_ERR_NOMEM from build or run,
 * with nothing leaked, and the process can build pipelines again. */
static void test_alloc_failures(void **state) {
  (void)state;
  char dir[700];
  fresh_dataset(dir, sizeof dir);
  int64_t n = 0, most = 0;
  int failed_build = 0, failed_run = 0;
  for (;; n++) {
    if (n > 5000) fail_msg("no successful run with 5000 allocations allowed");
    vp_debug_fail_alloc_after(n);
    vp_pipeline *p = NULL;
    vp_status s = build_chain(dir, 2, 1 + (int)(n % 2), 1 + (int)(n % 3), 0, &p);
    if (s != VP_OK) {
      vp_debug_fail_alloc_after(-1);
      if (s != VP_ERR_NOMEM)
        fail_msg("n = %lld: build gave %s: %s", (long long)n, vp_status_name(s), vp_last_error());
      assert_null(p);
      failed_build++;
      continue;
    }
    for (int b = 0; b < 4 && s == VP_OK; b++) s = run_batch(p, NULL);
    vp_pipeline_destroy(p);
    int64_t count = vp_debug_alloc_count();
    vp_debug_fail_alloc_after(-1);
    if (count > most) most = count;
    if (s == VP_OK) break;
    if (s != VP_ERR_NOMEM)
      fail_msg("n = %lld: run gave %s, not VP_ERR_NOMEM: %s", (long long)n, vp_status_name(s),
               vp_last_error());
    if (!strstr(vp_last_error(), "injected"))
      fail_msg("n = %lld: the message lost the cause: %s", (long long)n, vp_last_error());
    failed_run++;
  }
  printf(
      "runs passed with %lld allocations allowed (%lld made at most); %d builds and %d runs "
      "failed cleanly before\n",
      (long long)n, (long long)most, failed_build, failed_run);
  assert_true(failed_run > 0);
  /* the process is fine afterwards */
  vp_pipeline *p = chain(dir, 2, 2, 2, 0);
  for (int b = 0; b < 6; b++) VP_ASSERT_OK(run_batch(p, NULL));
  vp_pipeline_destroy(p);
}

/* ---- destroy from another thread ------------------------------------------ */

typedef struct handoff {
  const char *dir;
  vp_pipeline *p;
  int started;
  vp_status status;
  pthread_mutex_t lock;
  pthread_cond_t cond;
} handoff;

static void *build_and_run(void *arg) {
  handoff *h = arg;
  h->p = chain(h->dir, 2, 2, 2, 0);
  h->status = run_batch(h->p, NULL);
  return NULL;
}

static void *blocked_consumer(void *arg) {
  handoff *h = arg;
  pthread_mutex_lock(&h->lock);
  h->started = 1;
  pthread_cond_signal(&h->cond);
  pthread_mutex_unlock(&h->lock);
  vp_tensor *out[2 * 2] = {0};
  h->status = vp_pipeline_run(h->p, out, NULL);
  for (int i = 0; i < 4; i++) vp_tensor_release(out[i]);
  return NULL;
}

static void test_destroy_from_other_thread(void **state) {
  (void)state;
  char dir[700];
  fresh_dataset(dir, sizeof dir);
  /* slow reads hold the producer mid-batch */
  vp_debug_read_delay_us(3000);
  for (int rep = 0; rep < 6; rep++) {
    handoff h;
    memset(&h, 0, sizeof h);
    h.dir = dir;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, build_and_run, &h), 0);
    pthread_join(t, NULL);
    VP_ASSERT_OK(h.status);
    usleep((useconds_t)(rep * 1500));
    vp_pipeline_destroy(h.p); /* the producer is mid-batch in most reps */
  }
  /* a consumer blocked in run while this thread destroys: its call returns
   * an error and destroy waits for it to leave */
  vp_debug_read_delay_us(100000);
  for (int rep = 0; rep < 3; rep++) {
    handoff h;
    memset(&h, 0, sizeof h);
    pthread_mutex_init(&h.lock, NULL);
    pthread_cond_init(&h.cond, NULL);
    h.p = chain(dir, 2, 1, 1, 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, blocked_consumer, &h), 0);
    pthread_mutex_lock(&h.lock);
    while (!h.started) pthread_cond_wait(&h.cond, &h.lock);
    pthread_mutex_unlock(&h.lock);
    usleep(50000); /* inside run, waiting for the slow first batch */
    vp_pipeline_destroy(h.p);
    pthread_join(t, NULL);
    assert_int_not_equal(h.status, VP_OK);
    pthread_mutex_destroy(&h.lock);
    pthread_cond_destroy(&h.cond);
  }
  vp_debug_read_delay_us(0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_file_deleted),
      cmocka_unit_test(test_file_truncated),
      cmocka_unit_test(test_read_error),
      cmocka_unit_test(test_alloc_failures),
      cmocka_unit_test(test_destroy_from_other_thread),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
