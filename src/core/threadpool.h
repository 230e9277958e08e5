/* A fixed pool of worker threads running parallel loops.
 *
 * vp_parallel_for runs fn(ctx, i) for every i in [0, n), the calling thread
 * taking part, and returns when all are done. Work is claimed in index
 * order; results must not depend on which thread ran which index. The
 * status returned is that of the lowest failing index, and its message is
 * moved to the calling thread. Loops may be nested: an inner loop called
 * from a worker runs on that worker alone. */
#ifndef VP_CORE_THREADPOOL_H
#define VP_CORE_THREADPOOL_H

#include <stdint.h>

#include "voxpipe.h"

typedef struct vp_threadpool vp_threadpool;

/* nthreads counts the caller: 1 = run inline; 0 = the number of cores. */
vp_status vp_threadpool_create(int nthreads, vp_threadpool **out);
void vp_threadpool_destroy(vp_threadpool *p);
int vp_threadpool_size(const vp_threadpool *p);

typedef vp_status (*vp_loop_fn)(void *ctx, int64_t i);
/* p may be NULL: runs inline. */
vp_status vp_parallel_for(vp_threadpool *p, int64_t n, vp_loop_fn fn, void *ctx);

/* The number of online cores (at least 1). */
int vp_num_cores(void);

#endif
