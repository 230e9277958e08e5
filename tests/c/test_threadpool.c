/* The thread pool: every index once, failures, nesting, concurrent callers,
 * lifecycle. Also run under ThreadSanitizer (build-core-tsan). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "core/threadpool.h"
#include "testutil.h"

typedef struct {
  atomic_int *hits;
  int64_t n;
  atomic_int out_of_range;
} count_ctx;

static vp_status count_fn(void *ctx, int64_t i) {
  count_ctx *c = ctx;
  if (i < 0 || i >= c->n)
    atomic_fetch_add(&c->out_of_range, 1);
  else
    atomic_fetch_add_explicit(&c->hits[i], 1, memory_order_relaxed);
  return VP_OK;
}

/* Runs one loop of n and checks that each index ran exactly once. */
static void run_and_check(vp_threadpool *p, int64_t n) {
  count_ctx c;
  c.n = n;
  c.hits = calloc(n > 0 ? (size_t)n : 1, sizeof *c.hits);
  atomic_init(&c.out_of_range, 0);
  VP_ASSERT_OK(vp_parallel_for(p, n, count_fn, &c));
  assert_int_equal(atomic_load(&c.out_of_range), 0);
  for (int64_t i = 0; i < n; i++) {
    int h = atomic_load(&c.hits[i]);
    if (h != 1)
      fail_msg("pool of %d, n = %lld: index %lld ran %d times", vp_threadpool_size(p), (long long)n,
               (long long)i, h);
  }
  free(c.hits);
}

static void test_every_index_once(void **state) {
  (void)state;
  const int64_t sizes[] = {0, 1, 2, 3, 1000, 100000};
  for (int threads = 0; threads <= 4; threads++) {
    vp_threadpool *p = NULL;
    VP_ASSERT_OK(vp_threadpool_create(threads, &p));
    assert_int_equal(vp_threadpool_size(p), threads ? threads : vp_num_cores());
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) run_and_check(p, sizes[k]);
    /* the same pool serves loop after loop */
    for (int rep = 0; rep < 20; rep++) run_and_check(p, 1 + rep * 37);
    vp_threadpool_destroy(p);
  }
  /* a NULL pool runs inline; a negative n runs nothing */
  run_and_check(NULL, 1000);
  run_and_check(NULL, -5);
  vp_threadpool *p = NULL;
  VP_ASSERT_OK(vp_threadpool_create(3, &p));
  run_and_check(p, -5);
  assert_int_equal(vp_parallel_for(p, 10, NULL, NULL), VP_ERR_INVALID_ARG);
  vp_threadpool_destroy(p);
}

static void test_create_arguments(void **state) {
  (void)state;
  vp_threadpool *p = (vp_threadpool *)&p;
  assert_int_equal(vp_threadpool_create(-1, &p), VP_ERR_INVALID_ARG);
  assert_null(p);
  assert_non_null(strstr(vp_last_error(), "-1"));
  assert_int_equal(vp_threadpool_create(5000, &p), VP_ERR_INVALID_ARG);
  assert_int_equal(vp_threadpool_create(2, NULL), VP_ERR_INVALID_ARG);
  vp_threadpool_destroy(NULL);
  assert_int_equal(vp_threadpool_size(NULL), 1);
  assert_true(vp_num_cores() >= 1);
}

typedef struct {
  int64_t fail_at[3];
  vp_status code[3];
  atomic_int ran;
} fail_ctx;

static vp_status fail_fn(void *ctx, int64_t i) {
  fail_ctx *c = ctx;
  atomic_fetch_add(&c->ran, 1);
  for (int k = 0; k < 3; k++)
    if (i == c->fail_at[k])
      return vp_fail(c->code[k], "item %lld: failure number %d", (long long)i, k);
  return VP_OK;
}

/* Whichever thread fails first, the lowest failing index's status and
 * message reach the caller. */
static void test_lowest_failure_wins(void **state) {
  (void)state;
  uint64_t st = vp_test_seed();
  const vp_status codes[3] = {VP_ERR_IO, VP_ERR_FORMAT, VP_ERR_NOMEM};
  for (int threads = 1; threads <= 4; threads++) {
    vp_threadpool *p = NULL;
    VP_ASSERT_OK(vp_threadpool_create(threads, &p));
    for (int rep = 0; rep < 30; rep++) {
      const int64_t n = 5000;
      fail_ctx c;
      int lowest = 0;
      for (int k = 0; k < 3; k++) {
        c.fail_at[k] = (int64_t)(vp_test_rand(&st) % n);
        c.code[k] = codes[(k + rep) % 3];
        if (c.fail_at[k] < c.fail_at[lowest]) lowest = k;
      }
      /* a repeated index fails with the first listed code */
      for (int k = 0; k < 3; k++)
        if (c.fail_at[k] == c.fail_at[lowest] && k < lowest) lowest = k;
      atomic_init(&c.ran, 0);
      vp_clear_error();
      vp_status s = vp_parallel_for(p, n, fail_fn, &c);
      assert_int_equal(s, c.code[lowest]);
      char want[128];
      snprintf(want, sizeof want, "item %lld: failure number %d", (long long)c.fail_at[lowest],
               lowest);
      assert_string_equal(vp_last_error(), want);
      /* failures do not stop the loop: the remaining indices still ran */
      assert_int_equal(atomic_load(&c.ran), n);
    }
    vp_threadpool_destroy(p);
  }
}

typedef struct {
  vp_threadpool *pool;
  atomic_int inner_hits[64 * 16];
  atomic_int wrong_thread;
  atomic_int inner_status;
} nest_ctx;

typedef struct {
  nest_ctx *outer;
  int64_t row;
  pthread_t self;
} inner_ctx;

static vp_status inner_fn(void *ctx, int64_t j) {
  inner_ctx *c = ctx;
  if (!pthread_equal(pthread_self(), c->self)) atomic_fetch_add(&c->outer->wrong_thread, 1);
  atomic_fetch_add(&c->outer->inner_hits[c->row * 16 + j], 1);
  return VP_OK;
}

static vp_status outer_fn(void *ctx, int64_t i) {
  nest_ctx *c = ctx;
  inner_ctx ic = {c, i, pthread_self()};
  vp_status s = vp_parallel_for(c->pool, 16, inner_fn, &ic);
  if (s != VP_OK) atomic_store(&c->inner_status, (int)s);
  return s;
}

/* A loop called from inside fn runs inline on the thread that called it. */
static void test_nested(void **state) {
  (void)state;
  for (int threads = 1; threads <= 4; threads++) {
    nest_ctx *c = calloc(1, sizeof *c);
    VP_ASSERT_OK(vp_threadpool_create(threads, &c->pool));
    VP_ASSERT_OK(vp_parallel_for(c->pool, 64, outer_fn, c));
    assert_int_equal(atomic_load(&c->wrong_thread), 0);
    assert_int_equal(atomic_load(&c->inner_status), 0);
    for (int k = 0; k < 64 * 16; k++) assert_int_equal(atomic_load(&c->inner_hits[k]), 1);
    vp_threadpool_destroy(c->pool);
    free(c);
  }
}

typedef struct {
  vp_threadpool *pool;
  int64_t n;
  int reps;
  int bad; /* written by its own thread only, read after join */
  vp_status status;
} caller_ctx;

static void *caller_main(void *arg) {
  caller_ctx *cc = arg;
  for (int r = 0; r < cc->reps; r++) {
    count_ctx c;
    c.n = cc->n;
    c.hits = calloc((size_t)c.n, sizeof *c.hits);
    atomic_init(&c.out_of_range, 0);
    vp_status s = vp_parallel_for(cc->pool, c.n, count_fn, &c);
    if (s != VP_OK) cc->status = s;
    for (int64_t i = 0; i < c.n; i++) cc->bad += atomic_load(&c.hits[i]) != 1;
    cc->bad += atomic_load(&c.out_of_range);
    free(c.hits);
  }
  return NULL;
}

/* Two threads share one pool: one of them may find the pool busy and run
 * its loop inline; both finish with every index once. */
static void test_concurrent_callers(void **state) {
  (void)state;
  for (int threads = 2; threads <= 4; threads++) {
    vp_threadpool *p = NULL;
    VP_ASSERT_OK(vp_threadpool_create(threads, &p));
    caller_ctx cc[3];
    pthread_t th[3];
    for (int k = 0; k < 3; k++) {
      cc[k] = (caller_ctx){p, 20000 + k * 1000, 10, 0, VP_OK};
      assert_int_equal(pthread_create(&th[k], NULL, caller_main, &cc[k]), 0);
    }
    for (int k = 0; k < 3; k++) {
      pthread_join(th[k], NULL);
      assert_int_equal(cc[k].status, VP_OK);
      assert_int_equal(cc[k].bad, 0);
    }
    vp_threadpool_destroy(p);
  }
}

/* Pools come and go, used or not, with no hang (CTest's timeout) and, under
 * a sanitizer, no leak or race. */
static void test_create_destroy_many(void **state) {
  (void)state;
  for (int k = 0; k < 200; k++) {
    vp_threadpool *p = NULL;
    VP_ASSERT_OK(vp_threadpool_create(1 + k % 4, &p));
    if (k % 3 == 0) run_and_check(p, 1 + k);
    vp_threadpool_destroy(p);
  }
}

int main(void) {
  vp_test_seed();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_every_index_once),    cmocka_unit_test(test_create_arguments),
      cmocka_unit_test(test_lowest_failure_wins), cmocka_unit_test(test_nested),
      cmocka_unit_test(test_concurrent_callers),  cmocka_unit_test(test_create_destroy_many),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
