#include "pipeline/executor.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/batch.h"
#include "core/cuda_rt.h"
#include "core/philox.h"
#include "core/status.h"
#include "core/tensor.h"
#include "core/threadpool.h"
#include "io/dataset.h"
#include "io/region.h"
#include "pipeline/volume_cache.h"

#define ERR_CAP 1024

/* A finished batch in the queue: the pipeline's outputs and the state of
 * the batch that follows it. */
typedef struct out_batch {
  vp_tensor **t;
  int epoch_end;
  int64_t next_epoch, next_index, next_iter;
} out_batch;

/* Loading one case into a slot of the batch. */
typedef struct slot {
  int64_t case_index;
  vp_tensor *image, *label;
  vp_status status;
  char msg[ERR_CAP];
} slot;

struct vp_exec {
  const vp_graph *g;
  vp_pipeline_opts o;
  int64_t B;
  vp_dataset *ds;
  vp_threadpool *pool;
  vp_gpu_stage *gpu; /* NULL without gpu nodes */

  pthread_t thread;
  int running;
  pthread_mutex_t lock;
  pthread_cond_t not_full, not_empty;
  out_batch *ring;
  int depth, head, count;
  atomic_int stop;
  int err_set;
  vp_status err;
  char err_msg[ERR_CAP];
  int producer_done;
  /* threads inside vp_exec_next: destroy wakes them and waits until they
   * have left before freeing (a consumer thread blocked in run while
   * another thread destroys the pipeline) */
  int consumers;
  pthread_cond_t idle;

  /* consumer side: state of the next batch run() returns */
  int64_t st_epoch, st_index, st_iter;
  /* producer side (touched only while the producer runs, or is stopped) */
  int64_t iteration;
  slot *slots;
  int64_t load_base;
  int64_t cur_iteration;  /* of the batch being read (for the reader's crop draws) */
  vp_volume_cache *cache; /* NULL without one */
  vp_exec_work work[2];
  int *fuse_prev; /* fused pointwise chains (pipeline/fuse.c); NULL: none */
};

/* ---- work records ------------------------------------------------------ */

static vp_status work_init(vp_exec_work *w, const vp_graph *g, int64_t B) {
  memset(w, 0, sizeof *w);
  size_t n = (size_t)g->num_values * (size_t)B;
  w->vals = calloc(n ? n : 1, sizeof *w->vals);
  w->staged = calloc(n ? n : 1, sizeof *w->staged);
  if (!w->vals || !w->staged) return vp_fail(VP_ERR_NOMEM, "pipeline: out of memory");
  w->num = n;
  return VP_OK;
}

static void work_keep(vp_exec_work *w, void *p) {
  /* scratch that must outlive asynchronous work (per-sample argument
   * tables); on allocation failure it is freed now, which is safe for
   * everything but pending GPU uploads, and those copy before returning */
  if (w->nkeep == w->capkeep) {
    int cap = w->capkeep ? 2 * w->capkeep : 16;
    void **k = realloc(w->keep, (size_t)cap * sizeof *k);
    if (!k) {
      free(p);
      return;
    }
    w->keep = k;
    w->capkeep = cap;
  }
  w->keep[w->nkeep++] = p;
}

static void work_release(vp_exec_work *w, vp_gpu_stage *gpu) {
  if (w->gpu_touched && gpu) vp_gpu_stage_drain(gpu);
  for (size_t i = 0; i < w->num; i++) {
    vp_tensor_release(w->vals[i]);
    vp_tensor_release(w->staged[i]);
    w->vals[i] = NULL;
    w->staged[i] = NULL;
  }
  for (int i = 0; i < w->nscratch; i++) vp_tensor_release(w->scratch[i]);
  w->nscratch = 0;
  for (int i = 0; i < w->nkeep; i++) free(w->keep[i]);
  w->nkeep = 0;
  w->gpu_touched = 0;
  w->epoch_end = 0;
}

static void work_free(vp_exec_work *w) {
  free(w->vals);
  free(w->staged);
  free(w->scratch);
  free(w->keep);
  memset(w, 0, sizeof *w);
}

vp_status vp_exec_work_scratch(vp_exec_work *w, vp_tensor *t) {
  if (w->nscratch == w->capscratch) {
    int cap = w->capscratch ? 2 * w->capscratch : 16;
    vp_tensor **s = realloc(w->scratch, (size_t)cap * sizeof *s);
    if (!s) {
      vp_tensor_release(t);
      return vp_fail(VP_ERR_NOMEM, "pipeline: out of memory");
    }
    w->scratch = s;
    w->capscratch = cap;
  }
  w->scratch[w->nscratch++] = t;
  return VP_OK;
}

/* ---- operator calls -------------------------------------------------------- */

/* Per-sample values of a bound argument, from the bound value's tensors. */

/* The outputs of one node output for the whole batch: one allocation (a
 * vp_batch, viewed per sample) when every sample has the same dtype and
 * rank, so a batch is one cudaMallocAsync and samples whose byte size is a
 * multiple of 256 lie back to back (handed to torch as one tensor without
 * a copy); otherwise (or when some slots already hold a passed-through
 * input) a tensor per empty slot. spec[i * VP_OP_MAX_IO] is sample i's spec
 * of this output. */
static vp_status alloc_output(const vp_out_spec *spec, int64_t B, vp_memkind mem, int device,
                              vp_tensor **slots) {
  int uniform = 1;
  for (int64_t i = 1; i < B; i++)
    uniform &= spec[i * VP_OP_MAX_IO].dtype == spec[0].dtype &&
               spec[i * VP_OP_MAX_IO].ndim == spec[0].ndim;
  for (int64_t i = 0; i < B; i++) uniform &= !slots[i]; /* a sample passed through */
  if (!uniform) {
    for (int64_t i = 0; i < B; i++) {
      const vp_out_spec *o = &spec[i * VP_OP_MAX_IO];
      if (!slots[i]) VP_TRY(vp_tensor_create(o->dtype, o->ndim, o->shape, mem, device, &slots[i]));
    }
    return VP_OK;
  }
  int nd = spec[0].ndim;
  int64_t *shapes = calloc((size_t)B * (size_t)(nd ? nd : 1), sizeof *shapes);
  if (!shapes) return vp_fail(VP_ERR_NOMEM, "batch shapes: out of host memory");
  for (int64_t i = 0; i < B; i++)
    for (int d = 0; d < nd; d++) shapes[i * nd + d] = spec[i * VP_OP_MAX_IO].shape[d];
  vp_batch *b = NULL;
  vp_status s = vp_batch_create(spec[0].dtype, nd, B, shapes, mem, device, &b);
  free(shapes);
  for (int64_t i = 0; i < B && s == VP_OK; i++) s = vp_batch_sample(b, i, &slots[i]);
  vp_batch_destroy(b); /* the views hold the batch */
  return s;
}

/* One sample's values of a bound argument, from a host tensor. */
static vp_status parse_values(const vp_op_desc *op, int a, const vp_arg_spec *spec,
                              const char *vname, const vp_tensor *t, int64_t numel, int list,
                              int64_t i, vp_arg_value *out) {
  char text[VP_ARG_MAX_LEN * 32 + 8];
  {
    size_t used = 0;
    if (list) text[used++] = '[';
    for (int64_t k = 0; k < numel; k++) {
      double v;
      const void *p = (const char *)t->data + (size_t)k * vp_dtype_size(t->dtype);
      switch (t->dtype) {
        case VP_U8: v = *(const uint8_t *)p; break;
        case VP_I8: v = *(const int8_t *)p; break;
        case VP_U16: v = *(const uint16_t *)p; break;
        case VP_I16: v = *(const int16_t *)p; break;
        case VP_U32: v = *(const uint32_t *)p; break;
        case VP_I32: v = *(const int32_t *)p; break;
        case VP_I64: v = (double)*(const int64_t *)p; break;
        case VP_F32: v = *(const float *)p; break;
        case VP_F64: v = *(const double *)p; break;
        default:
          return vp_fail(VP_ERR_UNSUPPORTED, "argument '%s' from '%s': dtype %s is not supported",
                         spec->name, vname, vp_dtype_name(t->dtype));
      }
      if (spec->type == VP_ARG_BOOL) {
        used += (size_t)snprintf(text + used, sizeof text - used, "%s", v != 0 ? "true" : "false");
      } else if (spec->type == VP_ARG_ENUM || spec->type == VP_ARG_DTYPE) {
        return vp_fail(VP_ERR_UNSUPPORTED, "argument '%s' cannot take per-sample values",
                       spec->name);
      } else {
        used += (size_t)snprintf(text + used, sizeof text - used, "%s%.17g", k ? ", " : "", v);
      }
    }
    if (list) snprintf(text + used, sizeof text - used, "]");
    vp_status s = vp_arg_parse(op, a, text, out);
    if (s != VP_OK)
      return vp_fail_prefix(s, "per-sample values from '%s', sample %lld", vname, (long long)i);
  }
  return VP_OK;
}

/* A gpu node's per-sample values from a gpu value (a box from
 * random_object_bbox feeding slice's anchor): the compute stream is waited
 * for, once per node, and the few values copied to the host. */
static vp_status host_copy(vp_tensor *t, void *stream, int *synced, vp_tensor **out) {
  if (!*synced) {
    VP_TRY(vp_cuda_stream_sync(stream));
    *synced = 1;
  }
  return vp_tensor_copy_to(t, VP_MEM_HOST, -1, out);
}

static vp_status bound_values(const vp_graph *g, int n, int a, vp_tensor **src, int64_t B,
                              void *stream, int *synced, vp_arg_value *out) {
  const vp_node *node = &g->nodes[n];
  const vp_op_desc *op = node->op;
  const vp_arg_spec *spec = &op->args[a];
  const char *vname = g->values[node->args[a].value].name;
  for (int64_t i = 0; i < B; i++) {
    vp_tensor *t = src[i];
    int64_t numel = vp_tensor_numel(t);
    int list = spec->type == VP_ARG_INTS || spec->type == VP_ARG_FLOATS;
    int64_t least = list && (spec->flags & VP_ARG_EMPTY_OK) ? 0 : 1;
    if (numel < least || numel > (list ? VP_ARG_MAX_LEN : 1))
      return vp_fail(VP_ERR_INVALID_ARG,
                     "argument '%s' from '%s': sample %lld holds %lld value(s), %s", spec->name,
                     vname, (long long)i, (long long)numel,
                     list ? "expected at most 16" : "expected 1");
    vp_tensor *host = NULL;
    if (t->mem == VP_MEM_DEVICE) {
      VP_TRY(host_copy(t, stream, synced, &host));
      t = host;
    }
    vp_status ps = parse_values(op, a, spec, vname, t, numel, list, i, &out[i]);
    vp_tensor_release(host);
    VP_TRY(ps);
  }
  return VP_OK;
}

vp_status vp_exec_node_call(vp_exec *e, vp_exec_work *w, int n, void *stream, vp_op_args *args,
                            vp_op_call *c) {
  const vp_graph *g = e->g;
  const vp_node *node = &g->nodes[n];
  const vp_op_desc *op = node->op;
  int64_t B = e->B;
  int synced = 0;
  memset(args, 0, sizeof *args);
  for (int a = 0; a < op->num_args; a++) {
    if (!node->args[a].bound) {
      args->vals[a] = &node->args[a].constant;
      continue;
    }
    vp_arg_value *v = malloc((size_t)B * sizeof *v);
    if (!v) return vp_fail(VP_ERR_NOMEM, "pipeline: out of memory");
    work_keep(w, v);
    VP_TRY(bound_values(g, n, a, &w->vals[(size_t)node->args[a].value * (size_t)B], B, stream,
                        &synced, v));
    args->vals[a] = v;
    args->per_sample[a] = 1;
  }
  memset(c, 0, sizeof *c);
  c->batch = B;
  for (int k = 0; k < op->num_inputs; k++) {
    int v = node->inputs[k];
    /* a gpu node reads the staged copy of a cpu value */
    vp_tensor **src = node->gpu && !g->values[v].gpu ? w->staged : w->vals;
    c->in[k] = &src[(size_t)v * (size_t)B];
  }
  for (int k = 0; k < op->num_outputs; k++)
    c->out[k] = &w->vals[(size_t)node->outputs[k] * (size_t)B];
  c->args = args;
  c->key = vp_rng_key_make(e->o.seed, (uint32_t)n);
  c->iteration = (uint32_t)w->iteration;
  c->sample_base = 0;
  c->pool = e->pool;
  c->stream = stream;
  c->device = node->gpu ? e->o.device : -1;
  return VP_OK;
}

vp_status vp_exec_alloc_outputs(vp_exec *e, vp_exec_work *w, int n, const vp_out_spec *spec) {
  const vp_node *node = &e->g->nodes[n];
  vp_memkind mem = node->gpu ? VP_MEM_DEVICE : VP_MEM_HOST;
  int device = node->gpu ? e->o.device : -1;
  for (int k = 0; k < node->op->num_outputs; k++)
    VP_TRY(alloc_output(&spec[k], e->B, mem, device,
                        &w->vals[(size_t)node->outputs[k] * (size_t)e->B]));
  return VP_OK;
}

const vp_graph *vp_exec_graph(const vp_exec *e) { return e->g; }
int64_t vp_exec_batch(const vp_exec *e) { return e->B; }

/* A node whose `passes` hook says p left sample i alone hands its input on
 * as that sample's output (the op skips a sample whose output is its
 * input: no copy), as the eager chain does (src/ops/call_chain.c); not for
 * the pipeline's outputs, which are new batches the caller may write to. */
static void pass_through(const vp_graph *g, int n, const vp_op_call *c, const vp_out_spec *spec,
                         vp_tensor **vals) {
  const vp_node *node = &g->nodes[n];
  const vp_op_desc *op = node->op;
  if (!op->passes || op->num_inputs < 1 || op->num_outputs != 1) return;
  vp_tensor **slots = &vals[(size_t)node->outputs[0] * (size_t)c->batch];
  for (int k = 0; k < g->num_outputs; k++)
    if (g->outputs[k] == node->outputs[0]) return;
  for (int64_t i = 0; i < c->batch; i++)
    if (!slots[i] && op->passes(c, i))
      vp_op_hand_on(&spec[i * VP_OP_MAX_IO], c->in[0][i], &slots[i]);
}

vp_status vp_exec_run_node(vp_exec *e, vp_exec_work *w, int n, void *stream) {
  /* a fused pointwise chain runs whole at its last node */
  if (vp_fuse_is_inner(e->g, e->fuse_prev, n)) return VP_OK;
  if (vp_fuse_is_tail(e->g, e->fuse_prev, n)) return vp_fuse_run(e, w, e->fuse_prev, n, stream);
  const vp_op_desc *op = e->g->nodes[n].op;
  const int64_t B = e->B;
  vp_op_args args;
  vp_op_call c;
  VP_TRY(vp_exec_node_call(e, w, n, stream, &args, &c));
  vp_out_spec *spec = calloc((size_t)B * VP_OP_MAX_IO, sizeof *spec);
  if (!spec) return vp_fail(VP_ERR_NOMEM, "node %d (%s): out of host memory", n, op->name);
  vp_status st = VP_OK;
  for (int64_t i = 0; i < B && st == VP_OK; i++) st = op->infer(&c, i, &spec[i * VP_OP_MAX_IO]);
  if (st == VP_OK) pass_through(e->g, n, &c, spec, w->vals);
  if (st == VP_OK) st = vp_exec_alloc_outputs(e, w, n, spec);
  free(spec);
  VP_TRY(st);
  for (int64_t i = 0; i < B; i++) {
    if (op->num_outputs == 1 && op->num_inputs > 0 && c.out[0][i] == c.in[0][i]) continue;
    for (int k = 0; k < op->num_outputs; k++) {
      vp_tensor *t = c.out[k][i];
      /* outputs keep the geometry of the first input when they are images
       * of the same rank (an op that changes it sets its own) */
      if (op->num_inputs > 0 && c.in[0][i]->ndim == t->ndim) vp_tensor_copy_meta(t, c.in[0][i]);
    }
    if (op->meta) VP_TRY(op->meta(&c, i));
  }
  return e->g->nodes[n].gpu ? op->run_gpu(&c) : op->run_cpu(&c);
}

/* ---- reading ----------------------------------------------------------- */

/* The file of a case that a load message names, and the message without
 * that file's "path: " head. */
static const char *failed_file(vp_exec *e, int64_t c, const char *msg, const char **reason) {
  int nm = vp_dataset_num_modalities(e->ds);
  const char *cand[VP_OP_MAX_ARGS + 1];
  int nc = 0;
  for (int m = 0; m < nm && nc < VP_OP_MAX_ARGS; m++)
    cand[nc++] = vp_dataset_image_path(e->ds, c, m);
  const char *lp = vp_dataset_label_path(e->ds, c);
  if (lp) cand[nc++] = lp;
  *reason = msg;
  for (int k = 0; k < nc; k++) {
    if (!cand[k]) continue;
    const char *base = strrchr(cand[k], '/');
    base = base ? base + 1 : cand[k];
    const char *names[2] = {cand[k], base};
    for (int j = 0; j < 2; j++) {
      size_t len = strlen(names[j]);
      if (strncmp(msg, names[j], len) == 0 && strncmp(msg + len, ": ", 2) == 0) {
        *reason = msg + len + 2;
        return cand[k];
      }
      if (strstr(msg, names[j])) return cand[k];
    }
  }
  return NULL;
}

/* The reader's random window of a case of spatial shape `sp` in slot
 * `pos`: uniform over the positions where it fits (slice's rel_anchor rule),
 * keyed by (seed, iteration, slot), the same for image and label. */
static void crop_window(vp_exec *e, const int64_t sp[3], int64_t pos, vp_load_opts *o) {
  const vp_reader *r = &e->g->reader;
  vp_load_opts_init(o);
  o->roi_ndim = 3;
  o->oob = VP_OOB_PAD;
  /* a window is thousands of short rows: copying them out of a mapping is
   * several times faster than a pread each (bench/NOTES.md) */
  o->use_mmap = 1;
  /* a key no node can have (nodes count from 0) */
  vp_rng_key key = vp_rng_key_make(e->o.seed, 0xfffffff0u);
  vp_u32x4 u = vp_rng_draw(key, (uint32_t)e->cur_iteration, (uint32_t)pos, 0);
  for (int a = 0; a < 3; a++) {
    int64_t n = sp[a], len = r->crop[a];
    double rel = vp_u01d(u.v[a], u.v[3] ^ (uint32_t)a); /* in (0, 1) */
    o->roi_start[a] =
        n >= len ? (int64_t)(rel * (double)(n - len + 1)) : -(int64_t)(rel * (double)(len - n + 1));
    o->roi_shape[a] = len;
  }
}

/* The spatial shape of a case from its image file's header. */
static vp_status file_spatial_shape(vp_exec *e, int64_t case_index, int64_t sp[3]) {
  const char *path = vp_dataset_image_path(e->ds, case_index, 0);
  vp_file_info fi;
  VP_TRY(vp_file_info_read(path, &fi));
  if (fi.ndim < 3)
    return vp_fail(VP_ERR_INVALID_ARG, "%s: reader crop: the image has %d axes, not 3 spatial",
                   path, fi.ndim);
  for (int a = 0; a < 3; a++) sp[a] = fi.shape[fi.ndim - 3 + a];
  return VP_OK;
}

/* A window of a cached volume, as a file read of the same region gives it
 * (the affine moved to the window's origin). */
static vp_status window_of(const vp_tensor *t, const vp_load_opts *roi, double fill,
                           vp_tensor **out) {
  *out = NULL;
  vp_region r;
  VP_TRY(vp_region_resolve(roi, t->ndim, t->shape, "cached volume", &r));
  vp_tensor *o;
  VP_TRY(vp_tensor_create(t->dtype, r.ndim, r.shape, VP_MEM_HOST, 0, &o));
  vp_region_copy(t->data, t->dtype, t->ndim, t->shape, &r, fill, o->data);
  vp_tensor_copy_meta(o, t);
  int sn = o->spatial_ndim;
  for (int a = 0; a < sn; a++)
    for (int row = 0; row < 3; row++)
      o->affine[row * 4 + 3] +=
          o->affine[row * 4 + (sn - 1 - a)] * (double)r.start[t->ndim - sn + a];
  *out = o;
  return VP_OK;
}

/* A case through the cache: whole volumes are cached, windows cut from them. */
static vp_status load_cached(vp_exec *e, slot *s, int64_t pos, int want_label) {
  const vp_reader *r = &e->g->reader;
  vp_tensor *img = NULL, *lbl = NULL;
  vp_status st = VP_OK;
  if (!vp_volume_cache_get(e->cache, s->case_index, &img, &lbl)) {
    vp_load_opts whole;
    vp_load_opts_init(&whole);
    whole.raw = r->has_roi ? r->roi.raw : 0;
    st = vp_dataset_load(e->ds, s->case_index, &whole, &img, want_label ? &lbl : NULL);
    if (st == VP_OK && r->cache_device) { /* synchronous copies: complete when put */
      vp_tensor *dimg = NULL, *dlbl = NULL;
      st = vp_tensor_copy_to(img, VP_MEM_DEVICE, e->o.device, &dimg);
      if (st == VP_OK && lbl) st = vp_tensor_copy_to(lbl, VP_MEM_DEVICE, e->o.device, &dlbl);
      vp_tensor_release(img);
      vp_tensor_release(lbl);
      img = dimg;
      lbl = dlbl;
      if (st != VP_OK) {
        vp_tensor_release(img);
        vp_tensor_release(lbl);
        img = lbl = NULL;
      }
    }
    if (st == VP_OK) vp_volume_cache_put(e->cache, s->case_index, img, lbl);
  }
  vp_load_opts window;
  const vp_load_opts *roi = NULL;
  if (st == VP_OK && r->has_crop) {
    crop_window(e, img->shape + img->ndim - 3, pos, &window);
    roi = &window;
  } else if (st == VP_OK && r->has_roi && r->roi.roi_ndim) {
    roi = &r->roi;
  }
  if (st == VP_OK && roi) {
    st = window_of(img, roi, roi->fill, &s->image);
    if (st == VP_OK && lbl && want_label) st = window_of(lbl, roi, 0.0, &s->label);
  } else if (st == VP_OK) {
    vp_tensor_retain(img);
    s->image = img;
    if (want_label && lbl) {
      vp_tensor_retain(lbl);
      s->label = lbl;
    }
  }
  vp_tensor_release(img);
  vp_tensor_release(lbl);
  return st;
}

static vp_status load_slot(void *ctx, int64_t i) {
  vp_exec *e = ctx;
  int64_t pos = e->load_base + i;
  slot *s = &e->slots[pos];
  const vp_graph *g = e->g;
  /* no label output: the label file is not read */
  vp_tensor **label = g->reader.label_value >= 0 ? &s->label : NULL;
  if (e->cache) {
    s->status = load_cached(e, s, pos, label != NULL);
  } else {
    vp_load_opts window;
    const vp_load_opts *roi = g->reader.has_roi ? &g->reader.roi : NULL;
    s->status = VP_OK;
    if (g->reader.has_crop) {
      int64_t sp[3];
      s->status = file_spatial_shape(e, s->case_index, sp);
      if (s->status == VP_OK) crop_window(e, sp, pos, &window);
      roi = &window;
    }
    if (s->status == VP_OK)
      s->status = vp_dataset_load(e->ds, s->case_index, roi, &s->image, label);
  }
  if (s->status == VP_OK && label && !s->label) {
    s->status = vp_fail(VP_ERR_INVALID_ARG,
                        "reader: output '%s' asks for labels, but case %lld has no label file",
                        g->values[g->reader.label_value].name, (long long)s->case_index);
  }
  if (s->status != VP_OK) {
    snprintf(s->msg, sizeof s->msg, "%s", vp_last_error());
    vp_tensor_release(s->image);
    vp_tensor_release(s->label);
    s->image = s->label = NULL;
  }
  return VP_OK;
}

static int stopping(vp_exec *e) { return atomic_load(&e->stop); }

static vp_status read_batch(vp_exec *e, vp_exec_work *w) {
  const vp_graph *g = e->g;
  int64_t B = e->B;
  for (int64_t i = 0; i < B; i++) memset(&e->slots[i], 0, sizeof e->slots[i]);
  int64_t filled = 0; /* slots [0, filled) hold loaded cases, in order */
  int64_t skipped = 0;
  int64_t limit = vp_dataset_epoch_size(e->ds);
  while (filled < B) {
    for (int64_t i = filled; i < B; i++) {
      int end = 0;
      VP_TRY(vp_dataset_next(e->ds, &e->slots[i].case_index, &end));
      w->epoch_end |= end;
    }
    e->load_base = filled;
    (void)vp_parallel_for(e->pool, B - filled, load_slot, e); /* statuses are per slot */
    /* keep the loaded cases in order; the next cases fill the tail */
    int64_t k = filled;
    for (int64_t i = filled; i < B; i++) {
      slot *s = &e->slots[i];
      if (s->status != VP_OK) {
        const char *reason;
        const char *file = failed_file(e, s->case_index, s->msg, &reason);
        if (!e->o.skip_bad_samples) {
          if (file) return vp_fail(s->status, "%s", s->msg);
          return vp_fail(s->status, "%s: %s", vp_dataset_image_path(e->ds, s->case_index, 0),
                         s->msg);
        }
        fprintf(stderr, "voxpipe: warning: skipping %s: %s\n",
                file ? file : vp_dataset_image_path(e->ds, s->case_index, 0), reason);
        if (++skipped > limit)
          return vp_fail(s->status, "reader: every case of the epoch failed to load; last: %s",
                         s->msg);
        continue;
      }
      if (k != i) {
        e->slots[k] = *s;
        memset(s, 0, sizeof *s);
      }
      k++;
    }
    for (int64_t i = k; i < B; i++) memset(&e->slots[i], 0, sizeof e->slots[i]);
    filled = k;
    if (stopping(e)) break;
  }
  for (int64_t i = 0; i < filled; i++) {
    w->vals[(size_t)g->reader.image_value * (size_t)B + (size_t)i] = e->slots[i].image;
    if (g->reader.label_value >= 0)
      w->vals[(size_t)g->reader.label_value * (size_t)B + (size_t)i] = e->slots[i].label;
    else
      vp_tensor_release(e->slots[i].label);
    e->slots[i].image = e->slots[i].label = NULL;
  }
  return VP_OK;
}

/* Reading and the cpu nodes of one batch, then the host-to-device copies
 * its gpu nodes need. */
static vp_status stage_cpu(vp_exec *e, vp_exec_work *w) {
  w->iteration = e->iteration;
  e->cur_iteration = e->iteration;
  VP_TRY(read_batch(e, w));
  vp_dataset_position(e->ds, &w->next_epoch, &w->next_index);
  w->next_iter = e->iteration + 1;
  e->iteration++;
  for (int n = 0; n < e->g->num_nodes && !stopping(e); n++) {
    if (e->g->nodes[n].gpu) continue;
    vp_status s = vp_exec_run_node(e, w, n, NULL);
    if (s != VP_OK) {
      char who[96];
      vp_node_label(e->g, n, who, sizeof who);
      return vp_fail_prefix(s, "%s", who);
    }
  }
  if (e->gpu && !stopping(e)) VP_TRY(vp_gpu_stage_upload(e->gpu, e, w));
  return VP_OK;
}

/* ---- the queue ---------------------------------------------------------- */

static void set_error(vp_exec *e, vp_status s) {
  pthread_mutex_lock(&e->lock);
  if (!e->err_set) {
    e->err_set = 1;
    e->err = s;
    snprintf(e->err_msg, sizeof e->err_msg, "%s", vp_last_error());
  }
  pthread_cond_broadcast(&e->not_empty);
  pthread_mutex_unlock(&e->lock);
}

/* Moves a complete batch's outputs into the queue; 0 when stopped. */
static vp_status push_batch(vp_exec *e, vp_exec_work *w, int *pushed) {
  const vp_graph *g = e->g;
  int64_t B = e->B;
  *pushed = 0;
  size_t n = (size_t)g->num_outputs * (size_t)B;
  vp_tensor **t = malloc(n * sizeof *t);
  if (!t) return vp_fail(VP_ERR_NOMEM, "pipeline: out of memory");
  for (int k = 0; k < g->num_outputs; k++)
    for (int64_t i = 0; i < B; i++) {
      vp_tensor *x = w->vals[(size_t)g->outputs[k] * (size_t)B + (size_t)i];
      vp_tensor_retain(x);
      t[(size_t)k * (size_t)B + (size_t)i] = x;
    }
  pthread_mutex_lock(&e->lock);
  while (e->count == e->depth && !atomic_load(&e->stop)) pthread_cond_wait(&e->not_full, &e->lock);
  if (atomic_load(&e->stop)) {
    pthread_mutex_unlock(&e->lock);
    for (size_t i = 0; i < n; i++) vp_tensor_release(t[i]);
    free(t);
    return VP_OK;
  }
  out_batch *ob = &e->ring[(e->head + e->count) % e->depth];
  ob->t = t;
  ob->epoch_end = w->epoch_end;
  ob->next_epoch = w->next_epoch;
  ob->next_index = w->next_index;
  ob->next_iter = w->next_iter;
  e->count++;
  pthread_cond_signal(&e->not_empty);
  pthread_mutex_unlock(&e->lock);
  *pushed = 1;
  return VP_OK;
}

/* Waits for a batch's gpu work and queues it. */
static vp_status finish_batch(vp_exec *e, vp_exec_work *w, int *pushed) {
  *pushed = 0;
  if (e->gpu && w->gpu_touched) VP_TRY(vp_gpu_stage_finish(e->gpu));
  vp_status s = push_batch(e, w, pushed);
  work_release(w, e->gpu);
  return s;
}

static void *producer_main(void *arg) {
  vp_exec *e = arg;
  vp_exec_work *cur = &e->work[0], *flight = NULL;
  vp_status s = VP_OK;
  if (e->gpu) s = vp_gpu_stage_bind(e->gpu);
  while (s == VP_OK && !stopping(e)) {
    vp_status sa = stage_cpu(e, cur);
    int pushed = 1;
    if (flight) {
      /* the batch before comes first, also when this one failed */
      s = finish_batch(e, flight, &pushed);
      flight = NULL;
      if (s != VP_OK || !pushed) break;
    }
    if (sa != VP_OK) {
      s = sa;
      break;
    }
    if (stopping(e)) break;
    if (e->gpu) {
      s = vp_gpu_stage_issue(e->gpu, e, cur);
      if (s != VP_OK) break;
      flight = cur;
      cur = (cur == &e->work[0]) ? &e->work[1] : &e->work[0];
    } else {
      s = finish_batch(e, cur, &pushed);
      if (s != VP_OK || !pushed) break;
    }
  }
  if (s != VP_OK && !stopping(e)) set_error(e, s);
  if (flight) work_release(flight, e->gpu);
  work_release(cur, e->gpu);
  for (int64_t i = 0; i < e->B; i++) {
    vp_tensor_release(e->slots[i].image);
    vp_tensor_release(e->slots[i].label);
    e->slots[i].image = e->slots[i].label = NULL;
  }
  pthread_mutex_lock(&e->lock);
  e->producer_done = 1;
  pthread_cond_broadcast(&e->not_empty);
  pthread_mutex_unlock(&e->lock);
  return NULL;
}

/* ---- lifecycle ------------------------------------------------------------ */

static vp_status start_producer(vp_exec *e) {
  e->producer_done = 0;
  atomic_store(&e->stop, 0);
  if (pthread_create(&e->thread, NULL, producer_main, e) != 0)
    return vp_fail(VP_ERR_INTERNAL, "pipeline: cannot start the producer thread");
  e->running = 1;
  return VP_OK;
}

static void stop_producer(vp_exec *e) {
  if (!e->running) return;
  pthread_mutex_lock(&e->lock);
  atomic_store(&e->stop, 1);
  pthread_cond_broadcast(&e->not_full);
  pthread_cond_broadcast(&e->not_empty);
  pthread_mutex_unlock(&e->lock);
  pthread_join(e->thread, NULL);
  e->running = 0;
}

static void drain_queue(vp_exec *e) {
  size_t n = (size_t)e->g->num_outputs * (size_t)e->B;
  while (e->count > 0) {
    out_batch *ob = &e->ring[e->head];
    for (size_t i = 0; i < n; i++) vp_tensor_release(ob->t[i]);
    free(ob->t);
    ob->t = NULL;
    e->head = (e->head + 1) % e->depth;
    e->count--;
  }
  e->head = 0;
}

void vp_exec_destroy(vp_exec *e) {
  if (!e) return;
  stop_producer(e);
  pthread_mutex_lock(&e->lock);
  atomic_store(&e->stop, 1);
  pthread_cond_broadcast(&e->not_empty);
  while (e->consumers > 0) pthread_cond_wait(&e->idle, &e->lock);
  pthread_mutex_unlock(&e->lock);
  if (e->ring) drain_queue(e);
  free(e->ring);
  work_free(&e->work[0]);
  work_free(&e->work[1]);
  free(e->slots);
  vp_gpu_stage_destroy(e->gpu);
  vp_threadpool_destroy(e->pool);
  vp_dataset_destroy(e->ds);
  vp_volume_cache_destroy(e->cache);
  pthread_cond_destroy(&e->not_full);
  pthread_cond_destroy(&e->not_empty);
  pthread_cond_destroy(&e->idle);
  pthread_mutex_destroy(&e->lock);
  free(e->fuse_prev);
  free(e);
}

vp_status vp_exec_create(const vp_graph *g, const vp_pipeline_opts *o, vp_dataset *ds,
                         vp_exec **out) {
  *out = NULL;
  vp_exec *e = calloc(1, sizeof *e);
  if (!e) {
    vp_dataset_destroy(ds);
    return vp_fail(VP_ERR_NOMEM, "pipeline: out of memory");
  }
  e->g = g;
  e->o = *o;
  e->B = o->batch_size;
  e->ds = ds;
  e->depth = o->prefetch_queue_depth > 0 ? o->prefetch_queue_depth : 2;
  pthread_mutex_init(&e->lock, NULL);
  pthread_cond_init(&e->not_full, NULL);
  pthread_cond_init(&e->not_empty, NULL);
  pthread_cond_init(&e->idle, NULL);
  atomic_init(&e->stop, 0);
  vp_status s = VP_OK;
  e->ring = calloc((size_t)e->depth, sizeof *e->ring);
  e->slots = calloc((size_t)e->B, sizeof *e->slots);
  if (!e->ring || !e->slots) s = vp_fail(VP_ERR_NOMEM, "pipeline: out of memory");
  if (s == VP_OK) s = work_init(&e->work[0], g, e->B);
  if (s == VP_OK) s = work_init(&e->work[1], g, e->B);
  if (s == VP_OK) s = vp_threadpool_create(o->num_threads, &e->pool);
  if (s == VP_OK && g->reader.cache_bytes)
    s = vp_volume_cache_create(g->reader.cache_bytes, &e->cache);
  if (s == VP_OK && !o->no_fusion) s = vp_fuse_plan(g, &e->fuse_prev);
  int any_gpu = 0;
  for (int n = 0; n < g->num_nodes; n++) any_gpu |= g->nodes[n].gpu;
  if (s == VP_OK && any_gpu) s = vp_gpu_stage_create(g, o->device, e->B, &e->gpu);
  if (s != VP_OK) {
    vp_exec_destroy(e);
    return s;
  }
  vp_dataset_position(ds, &e->st_epoch, &e->st_index);
  e->st_iter = 0;
  e->iteration = 0;
  s = start_producer(e);
  if (s != VP_OK) {
    vp_exec_destroy(e);
    return s;
  }
  *out = e;
  return VP_OK;
}

vp_status vp_exec_next(vp_exec *e, vp_tensor **outputs, int *epoch_end) {
  size_t n = (size_t)e->g->num_outputs * (size_t)e->B;
  pthread_mutex_lock(&e->lock);
  e->consumers++;
  while (e->count == 0 && !e->err_set && !e->producer_done && !atomic_load(&e->stop))
    pthread_cond_wait(&e->not_empty, &e->lock);
  if (--e->consumers == 0) pthread_cond_broadcast(&e->idle);
  if (e->count > 0) {
    out_batch ob = e->ring[e->head];
    e->ring[e->head].t = NULL;
    e->head = (e->head + 1) % e->depth;
    e->count--;
    e->st_epoch = ob.next_epoch;
    e->st_index = ob.next_index;
    e->st_iter = ob.next_iter;
    pthread_cond_signal(&e->not_full);
    pthread_mutex_unlock(&e->lock);
    memcpy(outputs, ob.t, n * sizeof *outputs);
    free(ob.t);
    if (epoch_end) *epoch_end = ob.epoch_end;
    return VP_OK;
  }
  vp_status s = VP_ERR_INTERNAL;
  char msg[ERR_CAP];
  if (e->err_set) {
    s = e->err;
    snprintf(msg, sizeof msg, "%s", e->err_msg);
  } else {
    snprintf(msg, sizeof msg, "pipeline: the producer has stopped");
  }
  pthread_mutex_unlock(&e->lock);
  return vp_fail(s, "%s", msg);
}

void vp_exec_state(vp_exec *e, int64_t *epoch, int64_t *index, int64_t *iteration) {
  pthread_mutex_lock(&e->lock);
  if (epoch) *epoch = e->st_epoch;
  if (index) *index = e->st_index;
  if (iteration) *iteration = e->st_iter;
  pthread_mutex_unlock(&e->lock);
}

vp_status vp_exec_seek(vp_exec *e, int64_t epoch, int64_t index, int64_t iteration) {
  if (iteration < 0)
    return vp_fail(VP_ERR_INVALID_ARG, "pipeline: set_state: iteration %lld is negative",
                   (long long)iteration);
  stop_producer(e);
  pthread_mutex_lock(&e->lock);
  drain_queue(e);
  e->err_set = 0;
  e->err = VP_OK;
  e->err_msg[0] = '\0';
  pthread_mutex_unlock(&e->lock);
  vp_status s = vp_dataset_seek(e->ds, epoch, index);
  if (s == VP_OK) {
    e->iteration = iteration;
    pthread_mutex_lock(&e->lock);
    vp_dataset_position(e->ds, &e->st_epoch, &e->st_index);
    e->st_iter = iteration;
    pthread_mutex_unlock(&e->lock);
    s = start_producer(e);
  }
  if (s != VP_OK) {
    /* run() reports it until a later seek succeeds */
    char msg[ERR_CAP];
    snprintf(msg, sizeof msg, "%s", vp_last_error());
    pthread_mutex_lock(&e->lock);
    e->err_set = 1;
    e->err = s;
    snprintf(e->err_msg, sizeof e->err_msg, "%s", msg);
    e->producer_done = 1;
    pthread_mutex_unlock(&e->lock);
    return vp_fail(s, "%s", msg);
  }
  return VP_OK;
}

/* From the consumer's epoch, under the lock: the producer moves the
 * dataset's own position (and epoch) ahead while batches are prefetched. */
int64_t vp_exec_epoch_size(const vp_exec *e) {
  vp_exec *m = (vp_exec *)e;
  pthread_mutex_lock(&m->lock);
  int64_t epoch = m->st_epoch;
  pthread_mutex_unlock(&m->lock);
  return vp_dataset_epoch_size_at(e->ds, epoch);
}

vp_threadpool *vp_exec_pool(vp_exec *e) { return e->pool; }

void vp_exec_cache_stats(vp_exec *e, size_t *bytes, int64_t *entries, uint64_t *hits,
                         uint64_t *misses) {
  if (e->cache) vp_volume_cache_stats(e->cache, bytes, entries, hits, misses);
}
