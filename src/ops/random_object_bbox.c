/* random_object_bbox: the box of a random object (connected component) of
 * a label map, DALI's semantics (see docs/ops.md and the draws in
 * src/cuda/object_bbox.h):
 *   1. with probability 1 - foreground_prob, the whole volume (class =
 *      background);
 *   2. a class by weight among `classes` (default: the values present,
 *      weight 1 each; absent classes weigh 0);
 *   3. its objects (components of equal-valued voxels, `connectivity`);
 *   4. those with every extent >= threshold; with k_largest, the k largest
 *      by box volume; one uniformly (each object, whatever its size). No
 *      object left: the class's weight goes to 0 and a class is drawn
 *      again; no class left: the whole volume.
 * ignore_class picks among the objects of all values at once.
 *
 * A volume is labelled once for all its classes (voxels join only when
 * their values are equal: for each class, exactly the components of
 * label == class), so a second class draw costs no second labelling, and
 * its object list (value and box per object) is what the component cache
 * keeps (src/ops/object_cache.h). Samples that draw background are not
 * labelled at all. */
#include <stdlib.h>
#include <string.h>

#include "core/convert.h"
#include "core/status.h"
#include "core/tensor.h"
#include "cuda/object_bbox.h"
#include "ops/ccl.h"
#include "ops/object_cache.h"
#include "ops/op.h"
#ifdef VP_HAVE_CUDA
#include "core/cuda_rt.h"
#include "cuda/ccl.h"
#endif

enum {
  ARG_CLASSES,
  ARG_WEIGHTS,
  ARG_BACKGROUND,
  ARG_FG_PROB,
  ARG_K_LARGEST,
  ARG_THRESHOLD,
  ARG_IGNORE_CLASS,
  ARG_OUTPUT_CLASS,
  ARG_FORMAT,
  ARG_CONNECTIVITY,
  ARG_CACHE_BYTES,
  NUM_ARGS
};

static const vp_arg_spec k_args[NUM_ARGS] = {
    {"classes", VP_ARG_INTS, "[]", -2147483648.0, 2147483647.0, VP_OBB_MAX_GIVEN, NULL,
     VP_ARG_EMPTY_OK,
     "candidate classes (label values); [] = the values present other than background (the "
     "64 smallest)"},
    {"class_weights", VP_ARG_FLOATS, "[]", 0, 1e30, VP_OBB_MAX_GIVEN, NULL, VP_ARG_EMPTY_OK,
     "relative probability of each class in `classes` (same length); without `classes`, the "
     "weights of the smallest non-background values from 0 up; [] = equal"},
    {"background", VP_ARG_INT, "0", -2147483648.0, 2147483647.0, 0, NULL, 0,
     "the background value (never an object)"},
    {"foreground_prob", VP_ARG_FLOAT, "1", 0, 1, 0, NULL, 0,
     "probability of picking an object (else the whole volume)"},
    {"k_largest", VP_ARG_INT, "0", 0, 2147483647.0, 0, NULL, 0,
     "keep only the k objects of the class with the largest box volume; 0 = all"},
    {"threshold", VP_ARG_INTS, "[]", 0, 2147483647.0, 3, NULL, VP_ARG_EMPTY_OK,
     "least extent per spatial axis of an object's box (one value for all axes, or one per "
     "axis); [] = none"},
    {"ignore_class", VP_ARG_BOOL, "false", 0, 1, 0, NULL, 0,
     "pick among the objects of all values at once (no class draw; the class output is the "
     "object's value)"},
    {"output_class", VP_ARG_BOOL, "false", 0, 1, 0, NULL, 0,
     "fill the `class` output (int32 scalar: the object's value, background for the whole "
     "volume); when false it is empty (shape [0])"},
    {"format", VP_ARG_ENUM, "\"anchor_shape\"", 0, 0, 0, "anchor_shape|start_end|box", 0,
     "the box: anchor then shape, or start then end (end exclusive; 'box' is the same "
     "[lo..., hi...] vector)"},
    {"connectivity", VP_ARG_INT, "6", 4, 26, 0, NULL, 0,
     "3-D: 6, 18 or 26 neighbours; 2-D: 4 or 8 (6 means 4, 18 and 26 mean 8)"},
    {"cache_bytes", VP_ARG_INT, "0", 0, 1e15, 0, NULL, 0,
     "bound in bytes of the component cache (object lists keyed by a hash of the label "
     "bytes, LRU; on the GPU in device memory): later epochs skip the labelling; 0 = off"},
};

/* The label map's (D, H, W) and spatial rank; leading axes must be 1. */
static vp_status geometry(const vp_op_call *c, int64_t i, int64_t shape[3], int *nd) {
  const vp_tensor *t = c->in[0][i];
  if (t->dtype > VP_I64)
    return vp_fail(VP_ERR_INVALID_ARG,
                   "random_object_bbox: sample %lld: the label map is %s, an integer dtype is "
                   "needed",
                   (long long)i, vp_dtype_name(t->dtype));
  int sn = t->spatial_ndim < t->ndim ? t->spatial_ndim : t->ndim;
  if (sn < 2)
    return vp_fail(VP_ERR_INVALID_ARG,
                   "random_object_bbox: sample %lld has %d spatial axes: give a 2-D or 3-D label "
                   "map",
                   (long long)i, sn);
  for (int a = 0; a < t->ndim - sn; a++)
    if (t->shape[a] != 1)
      return vp_fail(VP_ERR_INVALID_ARG,
                     "random_object_bbox: sample %lld: axis %d has extent %lld: a label map has "
                     "one channel ([1,] D, H, W or H, W)",
                     (long long)i, a, (long long)t->shape[a]);
  shape[0] = 1;
  for (int a = 0; a < sn; a++) shape[3 - sn + a] = t->shape[t->ndim - sn + a];
  *nd = sn;
  if (shape[0] * shape[1] * shape[2] > INT32_MAX)
    return vp_fail(VP_ERR_UNSUPPORTED,
                   "random_object_bbox: sample %lld has %lld voxels: labelling takes at most "
                   "2^31 - 1",
                   (long long)i, (long long)(shape[0] * shape[1] * shape[2]));
  return VP_OK;
}

static vp_status infer(const vp_op_call *c, int64_t i, vp_out_spec *out) {
  int64_t shape[3];
  int nd;
  VP_TRY(geometry(c, i, shape, &nd));
  out[0].dtype = VP_I32;
  out[0].ndim = 1;
  out[0].shape[0] = 2 * nd;
  out[1].dtype = VP_I32;
  int with_class = vp_arg_num(c->args, ARG_OUTPUT_CLASS, i) != 0;
  out[1].ndim = with_class ? 0 : 1;
  out[1].shape[0] = 0;
  return VP_OK;
}

static int connectivity_for(int conn, int nd) {
  if (nd == 2) return conn == 4 || conn == 6 ? 4 : 8;
  return conn;
}

/* The per-sample parameters from the arguments. */
static vp_status params(const vp_op_call *c, int64_t i, vp_obb_params *p) {
  memset(p, 0, sizeof *p);
  int nd;
  VP_TRY(geometry(c, i, p->shape, &nd));
  p->ndim = nd;
  p->format = (int)vp_arg_num(c->args, ARG_FORMAT, i);
  p->ignore_class = vp_arg_num(c->args, ARG_IGNORE_CLASS, i) != 0;
  p->background = (int32_t)vp_arg_num(c->args, ARG_BACKGROUND, i);
  p->fg_prob = (float)vp_arg_num(c->args, ARG_FG_PROB, i);
  p->k_largest = (int64_t)vp_arg_num(c->args, ARG_K_LARGEST, i);
  const vp_arg_value *cls = vp_arg(c->args, ARG_CLASSES, i);
  const vp_arg_value *w = vp_arg(c->args, ARG_WEIGHTS, i);
  const vp_arg_value *th = vp_arg(c->args, ARG_THRESHOLD, i);
  if (p->ignore_class && (cls->len || w->len))
    return vp_fail(VP_ERR_INVALID_ARG,
                   "random_object_bbox: ignore_class picks among all objects: leave 'classes' "
                   "and 'class_weights' empty");
  if (cls->len && w->len && cls->len != w->len)
    return vp_fail(VP_ERR_INVALID_ARG,
                   "random_object_bbox: 'class_weights' has %d values, 'classes' %d: give one "
                   "weight per class",
                   w->len, cls->len);
  if (th->len != 0 && th->len != 1 && th->len != nd)
    return vp_fail(VP_ERR_INVALID_ARG,
                   "random_object_bbox: 'threshold' has %d values: give one, or one per spatial "
                   "axis (%d)",
                   th->len, nd);
  for (int a = 0; a < nd; a++)
    p->threshold[3 - nd + a] = th->len ? (int32_t)th->v[th->len == 1 ? 0 : a] : 0;
  int n = cls->len ? cls->len : w->len;
  int32_t next = 0;
  for (int k = 0; k < n; k++) {
    if (cls->len) {
      p->classes[k] = (int32_t)cls->v[k];
    } else { /* weights alone: the smallest non-background values from 0 */
      if (next == p->background) next++;
      p->classes[k] = next++;
    }
    if (p->classes[k] == p->background)
      return vp_fail(VP_ERR_INVALID_ARG,
                     "random_object_bbox: class %d is the background value: it has no objects",
                     p->classes[k]);
    p->weights[k] = w->len ? w->v[k] : 1.0;
  }
  p->nclasses = n;
  return VP_OK;
}

static int draws_foreground(const vp_op_call *c, int64_t i, const vp_obb_params *p) {
  vp_u32x4 r = vp_rng_draw(c->key, c->iteration, c->sample_base + (uint32_t)i, 0);
  return vp_u01f(r.v[0]) < p->fg_prob;
}

static vp_objc_key cache_key(const vp_op_call *c, int64_t i, const vp_obb_params *p,
                             uint64_t hash) {
  vp_objc_key k;
  memset(&k, 0, sizeof k);
  k.hash = hash;
  memcpy(k.shape, p->shape, sizeof k.shape);
  k.dtype = (int32_t)c->in[0][i]->dtype;
  k.connectivity = connectivity_for((int)vp_arg_num(c->args, ARG_CONNECTIVITY, i), p->ndim);
  k.background = p->background;
  return k;
}

/* ---- CPU -------------------------------------------------------------- */

/* The object list of a host volume: label all values at once, boxes from
 * the labelling's statistics, each object's value from its first voxel
 * (objects are numbered in the order of their first voxels). */
static vp_status objects_cpu(const vp_op_call *c, int64_t i, const vp_obb_params *p, vp_obj **out,
                             int64_t *count) {
  const vp_tensor *t = c->in[0][i];
  const int64_t numel = p->shape[0] * p->shape[1] * p->shape[2];
  vp_ccl_params cp;
  memset(&cp, 0, sizeof cp);
  cp.connectivity = connectivity_for((int)vp_arg_num(c->args, ARG_CONNECTIVITY, i), p->ndim);
  cp.multi_label = 1;
  cp.background = p->background;
  *out = NULL;
  *count = 0;
  int32_t *labels = malloc((size_t)(numel ? numel : 1) * sizeof *labels);
  if (!labels)
    return vp_fail(VP_ERR_NOMEM, "random_object_bbox: sample %lld: no memory for %lld labels",
                   (long long)i, (long long)numel);
  int64_t n = 0;
  vp_status s = vp_ccl_label_cpu(t->data, t->dtype, p->shape, &cp, labels, &n, c->pool);
  int64_t *boxes = NULL;
  vp_obj *objs = NULL;
  if (s == VP_OK) {
    boxes = malloc((size_t)(n ? n : 1) * 6 * sizeof *boxes);
    objs = malloc((size_t)(n ? n : 1) * sizeof *objs);
    if (!boxes || !objs)
      s = vp_fail(VP_ERR_NOMEM, "random_object_bbox: %lld objects", (long long)n);
  }
  if (s == VP_OK) s = vp_ccl_stats_cpu(labels, p->shape, n, NULL, boxes, c->pool);
  if (s == VP_OK) {
    int32_t next = 1;
    for (int64_t v = 0; v < numel && next <= n; v++)
      if (labels[v] == next) objs[next++ - 1].value = (int32_t)vp_cvt_load(t->data, t->dtype, v);
    for (int64_t k = 0; k < n; k++)
      for (int a = 0; a < 3; a++) {
        objs[k].lo[a] = (int32_t)boxes[k * 6 + a];
        objs[k].hi[a] = (int32_t)boxes[k * 6 + 3 + a];
      }
  }
  free(labels);
  free(boxes);
  if (s != VP_OK) {
    free(objs);
    return vp_fail_prefix(s, "random_object_bbox: sample %lld", (long long)i);
  }
  *out = objs;
  *count = n;
  return VP_OK;
}

static vp_status run_cpu(const vp_op_call *c) {
  const size_t budget = (size_t)vp_arg_num(c->args, ARG_CACHE_BYTES, 0);
  for (int64_t i = 0; i < c->batch; i++) {
    vp_obb_params p;
    VP_TRY(params(c, i, &p));
    vp_obj *objs = NULL;
    int64_t n = 0;
    vp_objc_ref ref;
    memset(&ref, 0, sizeof ref);
    if (draws_foreground(c, i, &p)) {
      if (budget) {
        const vp_tensor *t = c->in[0][i];
        uint64_t h = vp_objc_hash_host(t->data, vp_tensor_nbytes(t), c->pool);
        vp_objc_key key = cache_key(c, i, &p, h);
        if (!vp_objc_acquire(-1, &key, &ref)) {
          VP_TRY(objects_cpu(c, i, &p, &objs, &n));
          vp_status s = vp_objc_insert(-1, &key, objs, n, budget);
          if (s != VP_OK) {
            free(objs);
            return s;
          }
        }
      } else {
        VP_TRY(objects_cpu(c, i, &p, &objs, &n));
      }
    }
    int32_t cls;
    vp_obb_select(ref.entry ? ref.objs : objs, ref.entry ? ref.count : n, &p, c->key, c->iteration,
                  c->sample_base + (uint32_t)i, (int32_t *)c->out[0][i]->data, &cls);
    vp_objc_release(&ref);
    free(objs);
    if (vp_tensor_numel(c->out[1][i]) == 1) *(int32_t *)c->out[1][i]->data = cls;
  }
  return VP_OK;
}

/* ---- GPU -------------------------------------------------------------- */

#ifdef VP_HAVE_CUDA
#include <cuda_runtime_api.h>

/* Per-sample object lists start at this capacity; a volume with more
 * objects is labelled again with room for all of them. */
#define OBB_GPU_CAP 4096

typedef struct gpu_scratch {
  void *p[8];
  int n;
} gpu_scratch;

static vp_status scratch_alloc(gpu_scratch *g, const vp_op_call *c, size_t bytes, void **out) {
  *out = NULL;
  VP_TRY(vp_cuda_malloc_async(out, bytes, c->stream, "random_object_bbox"));
  g->p[g->n++] = *out;
  return VP_OK;
}

static void scratch_free(gpu_scratch *g, const vp_op_call *c) {
  for (int k = 0; k < g->n; k++) (void)cudaFreeAsync(g->p[k], (cudaStream_t)c->stream);
  g->n = 0;
}

/* Labels the samples idx[0..m) into lists of `cap` objects each; counts
 * come back to the host (the one copy of a batch without cache hits). */
static vp_status label_gpu(const vp_op_call *c, const int64_t *idx, int64_t m, int64_t cap,
                           const vp_obb_params *p, gpu_scratch *g, vp_obj **objs_dev,
                           int64_t *counts) {
  vp_obb_gpu_sample *smp = calloc((size_t)m, sizeof *smp);
  if (!smp) return vp_fail(VP_ERR_NOMEM, "random_object_bbox: out of memory");
  for (int64_t j = 0; j < m; j++) {
    smp[j].labels_in = c->in[0][idx[j]]->data;
    memcpy(smp[j].shape, p[idx[j]].shape, sizeof smp[j].shape);
  }
  int64_t *counts_dev = NULL;
  vp_status s = scratch_alloc(g, c, (size_t)m * sizeof *counts_dev, (void **)&counts_dev);
  if (s == VP_OK) s = scratch_alloc(g, c, (size_t)(m * cap) * sizeof(vp_obj), (void **)objs_dev);
  if (s == VP_OK) {
    int conn = connectivity_for((int)vp_arg_num(c->args, ARG_CONNECTIVITY, 0), p[idx[0]].ndim);
    s = vp_cuda_obb_objects(smp, m, c->in[0][0]->dtype, conn, p[idx[0]].background, cap, *objs_dev,
                            counts_dev, c->stream);
  }
  if (s == VP_OK)
    s = vp_cuda_memcpy_async(counts, counts_dev, (size_t)m * sizeof *counts, c->stream);
  if (s == VP_OK) s = vp_cuda_stream_sync(c->stream);
  free(smp);
  return s;
}

static vp_status obb_run_gpu(const vp_op_call *c) {
  const int64_t B = c->batch;
  const size_t budget = (size_t)vp_arg_num(c->args, ARG_CACHE_BYTES, 0);
  vp_obb_params *p = calloc((size_t)B, sizeof *p);
  const vp_obj **lists = calloc((size_t)B, sizeof *lists);
  int64_t *counts = calloc((size_t)B, sizeof *counts);
  int64_t *idx = calloc((size_t)B, sizeof *idx);
  int64_t *got = calloc((size_t)B, sizeof *got);
  uint64_t *hash = calloc((size_t)B, sizeof *hash);
  vp_objc_ref *refs = calloc((size_t)B, sizeof *refs);
  int32_t **box = calloc((size_t)B, sizeof *box);
  int32_t **cls = calloc((size_t)B, sizeof *cls);
  uint32_t *samples = calloc((size_t)B, sizeof *samples);
  gpu_scratch g = {{0}, 0};
  vp_status s = VP_OK;
  if (!p || !lists || !counts || !idx || !got || !hash || !refs || !box || !cls || !samples)
    s = vp_fail(VP_ERR_NOMEM, "random_object_bbox: out of memory");
  int64_t m = 0; /* samples to label */
  for (int64_t i = 0; s == VP_OK && i < B; i++) {
    s = params(c, i, &p[i]);
    if (s != VP_OK) break;
    samples[i] = c->sample_base + (uint32_t)i;
    box[i] = c->out[0][i]->data;
    cls[i] = vp_tensor_numel(c->out[1][i]) == 1 ? c->out[1][i]->data : NULL;
    if (draws_foreground(c, i, &p[i])) idx[m++] = i;
  }
  if (s == VP_OK && budget && m > 0) { /* hashes on the device, one copy back */
    const void **data = calloc((size_t)m, sizeof *data);
    int64_t *nbytes = calloc((size_t)m, sizeof *nbytes);
    uint64_t *sums_dev = NULL;
    if (!data || !nbytes) s = vp_fail(VP_ERR_NOMEM, "random_object_bbox: out of memory");
    for (int64_t j = 0; s == VP_OK && j < m; j++) {
      data[j] = c->in[0][idx[j]]->data;
      nbytes[j] = (int64_t)vp_tensor_nbytes(c->in[0][idx[j]]);
    }
    if (s == VP_OK) s = scratch_alloc(&g, c, (size_t)m * sizeof *sums_dev, (void **)&sums_dev);
    if (s == VP_OK) s = vp_cuda_objc_hash(data, nbytes, m, sums_dev, c->stream);
    if (s == VP_OK) s = vp_cuda_memcpy_async(hash, sums_dev, (size_t)m * sizeof *hash, c->stream);
    if (s == VP_OK) s = vp_cuda_stream_sync(c->stream);
    int64_t left = 0;
    for (int64_t j = 0; s == VP_OK && j < m; j++) {
      int64_t i = idx[j];
      vp_objc_key key = cache_key(c, i, &p[i], vp_objc_hash_final(hash[j], (uint64_t)nbytes[j]));
      hash[j] = key.hash;
      if (vp_objc_acquire(c->device, &key, &refs[i])) {
        lists[i] = refs[i].objs;
        counts[i] = refs[i].count;
      } else {
        hash[left] = key.hash;
        idx[left++] = i;
      }
    }
    m = left;
    free(data);
    free(nbytes);
  }
  if (s == VP_OK && m > 0) {
    vp_obj *objs = NULL;
    s = label_gpu(c, idx, m, OBB_GPU_CAP, p, &g, &objs, got);
    int64_t most = 0;
    for (int64_t j = 0; s == VP_OK && j < m; j++) most = got[j] > most ? got[j] : most;
    if (s == VP_OK && most > OBB_GPU_CAP) /* rare: room for every object */
      s = label_gpu(c, idx, m, most, p, &g, &objs, got);
    int64_t cap = most > OBB_GPU_CAP ? most : OBB_GPU_CAP;
    for (int64_t j = 0; s == VP_OK && j < m; j++) {
      int64_t i = idx[j];
      lists[i] = objs + j * cap;
      counts[i] = got[j];
      if (budget) {
        vp_objc_key key = cache_key(c, i, &p[i], hash[j]);
        s = vp_objc_insert(c->device, &key, lists[i], counts[i], budget);
      }
    }
  }
  if (s == VP_OK)
    s = vp_cuda_obb_select(lists, counts, p, B, c->key, c->iteration, samples, box, cls, c->stream);
  /* cached lists stay referenced until the kernel that reads them is done */
  int held = 0;
  for (int64_t i = 0; refs && i < B; i++) held |= refs[i].entry != NULL;
  if (held) {
    vp_status s2 = vp_cuda_stream_sync(c->stream);
    if (s == VP_OK) s = s2;
  }
  for (int64_t i = 0; refs && i < B; i++) vp_objc_release(&refs[i]);
  scratch_free(&g, c);
  free(p);
  free(lists);
  free(counts);
  free(idx);
  free(got);
  free(hash);
  free(refs);
  free(box);
  free(cls);
  free(samples);
  return s;
}
#endif

static vp_status run_gpu(const vp_op_call *c) {
#ifdef VP_HAVE_CUDA
  return obb_run_gpu(c);
#else
  return vp_fail(VP_ERR_NO_DEVICE,
                 "random_object_bbox: voxpipe was built without its CUDA backend");
#endif
}

const vp_op_desc vp_op_random_object_bbox = {
    .name = "random_object_bbox",
    .doc =
        "Box of a random object (connected component) of a label map, DALI's semantics: a "
        "class by weight, its components, threshold and k_largest by box volume, one "
        "uniformly; the whole volume with probability 1 - foreground_prob.",
    .num_inputs = 1,
    .num_outputs = 2,
    .inputs = {"label"},
    .outputs = {"box", "class"},
    .args = k_args,
    .num_args = NUM_ARGS,
    .random = 1,
    .infer = infer,
    .run_cpu = run_cpu,
    .run_gpu = run_gpu,
};
