#include "core/threadpool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/status.h"

typedef struct job {
  int64_t n;
  vp_loop_fn fn;
  void *ctx;
  atomic_llong next;  /* next index to claim */
  atomic_llong done;  /* indices finished */
  int64_t fail_index; /* lowest failing index so far (n = none) */
  vp_status fail_status;
  char fail_msg[1024];
  pthread_mutex_t fail_lock;
} job;

struct vp_threadpool {
  int nthreads; /* workers + the caller */
  pthread_t *workers;
  pthread_mutex_t lock;
  pthread_cond_t wake, finished;
  job *current;
  uint64_t generation;
  int active; /* workers inside the current job */
  int stop;
  pthread_mutex_t run_lock; /* one loop at a time per pool */
};

static _Thread_local int tls_in_worker;

int vp_num_cores(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (int)n : 1;
}

static void run_indices(job *j) {
  for (;;) {
    int64_t i = atomic_fetch_add(&j->next, 1);
    if (i >= j->n) break;
    vp_status s = j->fn(j->ctx, i);
    if (s != VP_OK) {
      pthread_mutex_lock(&j->fail_lock);
      if (i < j->fail_index) {
        j->fail_index = i;
        j->fail_status = s;
        strncpy(j->fail_msg, vp_last_error(), sizeof j->fail_msg - 1);
      }
      pthread_mutex_unlock(&j->fail_lock);
    }
    atomic_fetch_add(&j->done, 1);
  }
}

static void *worker_main(void *arg) {
  vp_threadpool *p = arg;
  tls_in_worker = 1;
  uint64_t seen = 0;
  pthread_mutex_lock(&p->lock);
  for (;;) {
    while (!p->stop && (p->current == NULL || p->generation == seen))
      pthread_cond_wait(&p->wake, &p->lock);
    if (p->stop) break;
    seen = p->generation;
    job *j = p->current;
    p->active++;
    pthread_mutex_unlock(&p->lock);
    run_indices(j);
    pthread_mutex_lock(&p->lock);
    if (--p->active == 0) pthread_cond_broadcast(&p->finished);
  }
  pthread_mutex_unlock(&p->lock);
  return NULL;
}

vp_status vp_threadpool_create(int nthreads, vp_threadpool **out) {
  if (!out) return vp_fail(VP_ERR_INVALID_ARG, "threadpool: out is NULL");
  *out = NULL;
  if (nthreads < 0 || nthreads > 4096)
    return vp_fail(VP_ERR_INVALID_ARG, "threadpool: %d threads is outside 0..4096", nthreads);
  if (nthreads == 0) nthreads = vp_num_cores();
  vp_threadpool *p = calloc(1, sizeof *p);
  if (!p) return vp_fail(VP_ERR_NOMEM, "threadpool: out of memory");
  p->nthreads = nthreads;
  pthread_mutex_init(&p->lock, NULL);
  pthread_mutex_init(&p->run_lock, NULL);
  pthread_cond_init(&p->wake, NULL);
  pthread_cond_init(&p->finished, NULL);
  if (nthreads > 1) {
    p->workers = calloc((size_t)nthreads - 1, sizeof *p->workers);
    if (!p->workers) {
      vp_threadpool_destroy(p);
      return vp_fail(VP_ERR_NOMEM, "threadpool: out of memory");
    }
    for (int i = 0; i < nthreads - 1; i++) {
      if (pthread_create(&p->workers[i], NULL, worker_main, p) != 0) {
        p->nthreads = i + 1; /* destroy joins only the ones started */
        vp_threadpool_destroy(p);
        return vp_fail(VP_ERR_INTERNAL, "threadpool: cannot start thread %d", i);
      }
    }
  }
  *out = p;
  return VP_OK;
}

void vp_threadpool_destroy(vp_threadpool *p) {
  if (!p) return;
  pthread_mutex_lock(&p->lock);
  p->stop = 1;
  pthread_cond_broadcast(&p->wake);
  pthread_mutex_unlock(&p->lock);
  for (int i = 0; p->workers && i < p->nthreads - 1; i++) pthread_join(p->workers[i], NULL);
  free(p->workers);
  pthread_cond_destroy(&p->wake);
  pthread_cond_destroy(&p->finished);
  pthread_mutex_destroy(&p->lock);
  pthread_mutex_destroy(&p->run_lock);
  free(p);
}

int vp_threadpool_size(const vp_threadpool *p) { return p ? p->nthreads : 1; }

vp_status vp_parallel_for(vp_threadpool *p, int64_t n, vp_loop_fn fn, void *ctx) {
  if (n <= 0) return VP_OK;
  if (!fn) return vp_fail(VP_ERR_INVALID_ARG, "parallel_for: fn is NULL");
  job j;
  memset(&j, 0, sizeof j);
  j.n = n;
  j.fn = fn;
  j.ctx = ctx;
  atomic_init(&j.next, 0);
  atomic_init(&j.done, 0);
  j.fail_index = n;
  j.fail_status = VP_OK;
  pthread_mutex_init(&j.fail_lock, NULL);
  int parallel =
      p && p->nthreads > 1 && n > 1 && !tls_in_worker && pthread_mutex_trylock(&p->run_lock) == 0;
  if (parallel) {
    pthread_mutex_lock(&p->lock);
    p->current = &j;
    p->generation++;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
  }
  int was_worker = tls_in_worker;
  tls_in_worker = 1; /* nested loops from fn run inline */
  run_indices(&j);
  tls_in_worker = was_worker;
  if (parallel) {
    pthread_mutex_lock(&p->lock);
    /* an unfinished index is held by a worker still counted in active */
    while (p->active > 0 || atomic_load(&j.done) < n) pthread_cond_wait(&p->finished, &p->lock);
    p->current = NULL;
    pthread_mutex_unlock(&p->lock);
    pthread_mutex_unlock(&p->run_lock);
  }
  pthread_mutex_destroy(&j.fail_lock);
  if (j.fail_status != VP_OK) return vp_fail(j.fail_status, "%s", j.fail_msg);
  return VP_OK;
}
