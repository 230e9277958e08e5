/* The executor: runs a checked graph batch after batch, ahead of the
 * consumer.
 *
 * A producer thread prepares batches into a bounded queue (depth =
 * prefetch_queue_depth). For each batch it takes the next cases from the
 * dataset (in order, on the producer alone, so the order is deterministic),
 * loads them on the thread pool, runs the cpu nodes (with the pool), stages
 * the cpu values that gpu nodes read into pinned buffers and copies them on
 * a copy stream, then issues the gpu nodes on a compute stream that waits
 * for the copies through an event. The next batch's cpu work overlaps the
 * previous batch's gpu work; a batch is queued only when its streams are
 * synchronised.
 *
 * Node n (its index among the graph's nodes) draws with the key
 * vp_rng_key_make(seed, n), iteration = the batch counter, sample_base 0.
 *
 * The first error (a file that fails to load, a failing node) stops the
 * producer; batches queued before it are still returned, then the error,
 * with its message, by every later vp_exec_next. */
#ifndef VP_PIPELINE_EXECUTOR_H
#define VP_PIPELINE_EXECUTOR_H

#include <stdint.h>

#include "pipeline/graph.h"
#include "voxpipe.h"

typedef struct vp_exec vp_exec;

/* Starts the producer at the dataset's current position with iteration 0.
 * g must stay unchanged and alive until vp_exec_destroy; ds is owned by the
 * executor from the call on (destroyed on failure too). */
vp_status vp_exec_create(const vp_graph *g, const vp_pipeline_opts *o, vp_dataset *ds,
                         vp_exec **out);
/* Stops the producer (also when blocked on a full queue or mid-batch) and
 * frees everything; accepts NULL. */
void vp_exec_destroy(vp_exec *e);
/* Blocks for the next batch; outputs[k * batch + i] receive references. */
vp_status vp_exec_next(vp_exec *e, vp_tensor **outputs, int *epoch_end);
/* State of the next batch vp_exec_next will return. */
void vp_exec_state(vp_exec *e, int64_t *epoch, int64_t *index, int64_t *iteration);
/* Drops prefetched batches, seeks, clears a kept error and restarts. */
vp_status vp_exec_seek(vp_exec *e, int64_t epoch, int64_t index, int64_t iteration);
int64_t vp_exec_epoch_size(const vp_exec *e);
void vp_exec_cache_stats(vp_exec *e, size_t *bytes, int64_t *entries, uint64_t *hits,
                         uint64_t *misses);

/* ---- inside the executor (executor.c, gpu_stage.c) -------------------- */

/* One batch on its way through the stages. */
typedef struct vp_exec_work {
  vp_tensor **vals;   /* vals[v * batch + i]: value v of sample i */
  vp_tensor **staged; /* GPU copies of the cpu values that gpu nodes read */
  size_t num;
  vp_tensor **scratch; /* pinned staging buffers, freed after the batch */
  int nscratch, capscratch;
  void **keep; /* per-sample argument tables, freed after the batch */
  int nkeep, capkeep;
  int gpu_touched;
  int epoch_end;
  int64_t iteration;
  int64_t next_epoch, next_index, next_iter;
} vp_exec_work;

/* Runs node n of the graph on a batch: infers, allocates and calls the
 * op's cpu or gpu body (on `stream`). */
vp_status vp_exec_run_node(vp_exec *e, vp_exec_work *w, int n, void *stream);
/* Node n's call: its arguments resolved for the batch (per-sample
 * bindings read from w), inputs, outputs, key, stream. */
vp_status vp_exec_node_call(vp_exec *e, vp_exec_work *w, int n, void *stream, vp_op_args *args,
                            vp_op_call *c);
/* Allocates node n's outputs from spec[i * VP_OP_MAX_IO + k]. */
vp_status vp_exec_alloc_outputs(vp_exec *e, vp_exec_work *w, int n, const vp_out_spec *spec);
const vp_graph *vp_exec_graph(const vp_exec *e);
int64_t vp_exec_batch(const vp_exec *e);

/* Pointwise fusion (fuse.c). prev[n]: the node whose output node n
 * continues in a fused chain, -1 if none. */
vp_status vp_fuse_plan(const vp_graph *g, int **prev);
/* Node n ends a chain (runs it) / lies inside one (is skipped). */
int vp_fuse_is_tail(const vp_graph *g, const int *prev, int n);
int vp_fuse_is_inner(const vp_graph *g, const int *prev, int n);
vp_status vp_fuse_run(vp_exec *e, vp_exec_work *w, const int *prev, int tail, void *stream);

/* Keeps t (a staging buffer) until the batch is released. */
vp_status vp_exec_work_scratch(vp_exec_work *w, vp_tensor *t);
struct vp_threadpool *vp_exec_pool(vp_exec *e);

/* The gpu side: a copy stream, a compute stream and an event between. */
typedef struct vp_gpu_stage vp_gpu_stage;
vp_status vp_gpu_stage_create(const vp_graph *g, int device, int64_t batch, vp_gpu_stage **out);
void vp_gpu_stage_destroy(vp_gpu_stage *s);
/* Makes the device current on the calling (producer) thread. */
vp_status vp_gpu_stage_bind(vp_gpu_stage *s);
/* Stages the cpu values gpu nodes read (pinned copy, then an asynchronous
 * copy on the copy stream) and records the event. */
vp_status vp_gpu_stage_upload(vp_gpu_stage *s, vp_exec *e, vp_exec_work *w);
/* Issues the gpu nodes on the compute stream after the event. */
vp_status vp_gpu_stage_issue(vp_gpu_stage *s, vp_exec *e, vp_exec_work *w);
/* Waits for the compute stream. */
vp_status vp_gpu_stage_finish(vp_gpu_stage *s);
/* Waits for both streams, ignoring errors (before memory is released). */
void vp_gpu_stage_drain(vp_gpu_stage *s);

#endif
