/* Component filters on the connected-component labelling (src/ops/ccl.h):
 *
 * remove_small_objects: components of fewer than min_size voxels become
 *   background; every other voxel keeps its value (skimage.morphology.
 *   remove_small_objects, MONAI RemoveSmallObjects).
 * keep_largest_components: only the k largest components keep their
 *   values (MONAI KeepLargestConnectedComponent); with `independent`, the
 *   k largest of each value. Ties in size go to the component whose first
 *   voxel comes first in C order.
 *
 * Components: with per_label / independent, connected voxels of equal
 * value (multi-label); otherwise connected foreground voxels whatever
 * their values. Full connectivity (26 / 8) by default, as
 * connected_components.
 *
 * GPU bodies: src/cuda/component_filters.h, the same outputs bit for bit. */
#include <stdlib.h>
#include <string.h>

#include "core/convert.h"
#include "core/status.h"
#include "core/tensor.h"
#include "cuda/component_filters.h"
#include "ops/ccl.h"
#include "ops/op.h"

enum { ARG_SIZE, ARG_CONN, ARG_MULTI, ARG_BG };

static const vp_arg_spec k_small_args[] = {
    {"min_size", VP_ARG_INT, "64", 0, 2147483647.0, 0, NULL, 0,
     "components with fewer voxels become background"},
    {"connectivity", VP_ARG_INT, "0", 0, 26, 0, NULL, 0,
     "6, 18, 26 (3-D), 4, 8 (2-D); 0 = full (26 or 8)"},
    {"per_label", VP_ARG_BOOL, "false", 0, 1, 0, NULL, 0,
     "components are connected voxels of one value (else of any foreground value)"},
    {"background", VP_ARG_FLOAT, "0", -1e300, 1e300, 0, NULL, 0,
     "the background value (removed voxels take it)"},
};

static const vp_arg_spec k_largest_args[] = {
    {"k", VP_ARG_INT, "1", 1, 2147483647.0, 0, NULL, 0, "how many components to keep"},
    {"connectivity", VP_ARG_INT, "0", 0, 26, 0, NULL, 0,
     "6, 18, 26 (3-D), 4, 8 (2-D); 0 = full (26 or 8)"},
    {"independent", VP_ARG_BOOL, "false", 0, 1, 0, NULL, 0,
     "keep the k largest components of each value (else of the whole foreground)"},
    {"background", VP_ARG_FLOAT, "0", -1e300, 1e300, 0, NULL, 0,
     "the background value (removed voxels take it)"},
};

static vp_status infer_same(const vp_op_call *c, int64_t i, vp_out_spec *out, const char *op) {
  const vp_tensor *t = c->in[0][i];
  int64_t shape[3];
  int spatial;
  vp_ccl_params p;
  VP_TRY(vp_ccl_op_geometry(op, t, (int)vp_arg_num(c->args, ARG_CONN, i), shape, &spatial, &p));
  out->dtype = t->dtype;
  out->ndim = t->ndim;
  memcpy(out->shape, t->shape, sizeof out->shape);
  return VP_OK;
}
static vp_status infer_small(const vp_op_call *c, int64_t i, vp_out_spec *out) {
  return infer_same(c, i, out, "remove_small_objects");
}
static vp_status infer_largest(const vp_op_call *c, int64_t i, vp_out_spec *out) {
  return infer_same(c, i, out, "keep_largest_components");
}

/* Labels sample i and gives the sizes of all its components (malloc'd). */
static vp_status label_sample(const vp_op_call *c, int64_t i, const char *op, int32_t **labels,
                              int64_t **sizes, int64_t *count, int64_t shape[3]) {
  const vp_tensor *t = c->in[0][i];
  int spatial;
  vp_ccl_params p;
  *labels = NULL;
  *sizes = NULL;
  VP_TRY(vp_ccl_op_geometry(op, t, (int)vp_arg_num(c->args, ARG_CONN, i), shape, &spatial, &p));
  p.multi_label = vp_arg_num(c->args, ARG_MULTI, i) != 0;
  p.background = vp_arg_num(c->args, ARG_BG, i);
  const int64_t n = shape[0] * shape[1] * shape[2]; /* checked: < 2^31 */
  *labels = malloc((size_t)(n > 0 ? n : 1) * sizeof **labels);
  if (!*labels) return vp_fail(VP_ERR_NOMEM, "%s: no memory for %lld labels", op, (long long)n);
  vp_status s = vp_ccl_label_cpu(t->data, t->dtype, shape, &p, *labels, count, c->pool);
  if (s == VP_OK) {
    *sizes = malloc((size_t)(*count > 0 ? *count : 1) * sizeof **sizes);
    s = *sizes ? vp_ccl_stats_cpu(*labels, shape, *count, *sizes, NULL, c->pool)
               : vp_fail(VP_ERR_NOMEM, "%s: no memory for %lld components", op,
                         (long long)*count);
  }
  if (s != VP_OK) {
    free(*labels);
    free(*sizes);
    *labels = NULL;
    *sizes = NULL;
  }
  return s;
}

/* out = in where keep[label - 1], else background (saturated into the
 * dtype); background voxels stay as they are. */
static void apply_keep(const vp_op_call *c, int64_t i, const int32_t *labels, const uint8_t *keep) {
  const vp_tensor *t = c->in[0][i];
  vp_tensor *o = c->out[0][i];
  const int64_t n = vp_tensor_numel(t);
  const size_t es = vp_dtype_size(t->dtype);
  memcpy(o->data, t->data, (size_t)n * es);
  uint64_t bg = 0;
  vp_cvt_store(&bg, t->dtype, 0, vp_arg_num(c->args, ARG_BG, i));
  for (int64_t v = 0; v < n; v++)
    if (labels[v] && !keep[labels[v] - 1]) memcpy((char *)o->data + (size_t)v * es, &bg, es);
}

static vp_status run_small(const vp_op_call *c) {
  const char *op = "remove_small_objects";
  for (int64_t i = 0; i < c->batch; i++) {
    int32_t *labels;
    int64_t *sizes, count, shape[3];
    VP_TRY(label_sample(c, i, op, &labels, &sizes, &count, shape));
    uint8_t *keep = malloc((size_t)(count > 0 ? count : 1));
    if (!keep) {
      free(labels);
      free(sizes);
      return vp_fail(VP_ERR_NOMEM, "%s: no memory for %lld components", op, (long long)count);
    }
    const int64_t min_size = (int64_t)vp_arg_num(c->args, ARG_SIZE, i);
    for (int64_t l = 0; l < count; l++) keep[l] = sizes[l] >= min_size;
    apply_keep(c, i, labels, keep);
    free(keep);
    free(labels);
    free(sizes);
  }
  return VP_OK;
}

typedef struct comp {
  uint64_t group; /* vp_cf_group_key of the value (0 unless independent) */
  int64_t size;
  int64_t label;
} comp;

/* by value group, size descending, first voxel */
static int by_rank(const void *a, const void *b) {
  const comp *x = a, *y = b;
  if (x->group != y->group) return x->group < y->group ? -1 : 1;
  if (x->size != y->size) return x->size > y->size ? -1 : 1;
  return x->label < y->label ? -1 : (x->label > y->label);
}

static vp_status run_largest(const vp_op_call *c) {
  const char *op = "keep_largest_components";
  for (int64_t i = 0; i < c->batch; i++) {
    int32_t *labels;
    int64_t *sizes, count, shape[3];
    VP_TRY(label_sample(c, i, op, &labels, &sizes, &count, shape));
    comp *cs = malloc((size_t)(count > 0 ? count : 1) * sizeof *cs);
    uint8_t *keep = calloc((size_t)(count > 0 ? count : 1), 1);
    if (!cs || !keep) {
      free(cs), free(keep), free(labels), free(sizes);
      return vp_fail(VP_ERR_NOMEM, "%s: no memory for %lld components", op, (long long)count);
    }
    /* a component's value: that of its first voxel, met in label order */
    const vp_tensor *t = c->in[0][i];
    const int64_t n = shape[0] * shape[1] * shape[2];
    const int indep = vp_arg_num(c->args, ARG_MULTI, i) != 0;
    const int64_t k = (int64_t)vp_arg_num(c->args, ARG_SIZE, i);
    int64_t next = 1;
    for (int64_t v = 0; v < n && next <= count; v++)
      if (labels[v] == next) {
        cs[next - 1].group = indep ? vp_cf_group_key(vp_cvt_load(t->data, t->dtype, v)) : 0;
        cs[next - 1].size = sizes[next - 1];
        cs[next - 1].label = next;
        next++;
      }
    qsort(cs, (size_t)count, sizeof *cs, by_rank);
    int64_t in_group = 0;
    for (int64_t r = 0; r < count; r++) {
      if (r == 0 || cs[r].group != cs[r - 1].group) in_group = 0;
      if (in_group++ < k) keep[cs[r].label - 1] = 1;
    }
    apply_keep(c, i, labels, keep);
    free(cs), free(keep), free(labels), free(sizes);
  }
  return VP_OK;
}

#ifdef VP_HAVE_CUDA
/* Both connectivities of a D = 1 volume name the same neighbours as their
 * 3-D counterparts (4 ~ 6, 8 ~ 18 ~ 26): map them to one, so that 2-D and
 * 3-D samples share a labelling call. */
static int shared_connectivity(const int64_t shape[3], int conn) {
  if (shape[0] != 1) return conn;
  return conn == 4 || conn == 6 ? 6 : 26;
}

static vp_status gpu_body(const vp_op_call *c, vp_cf_mode mode, const char *op, vp_cf_sample *smp,
                          vp_ccl_params *ps) {
  for (int64_t i = 0; i < c->batch; i++) {
    const vp_tensor *t = c->in[0][i];
    int spatial;
    VP_TRY(vp_ccl_op_geometry(op, t, (int)vp_arg_num(c->args, ARG_CONN, i), smp[i].shape, &spatial,
                              &ps[i]));
    ps[i].connectivity = shared_connectivity(smp[i].shape, ps[i].connectivity);
    ps[i].multi_label = vp_arg_num(c->args, ARG_MULTI, i) != 0;
    ps[i].background = vp_arg_num(c->args, ARG_BG, i);
    smp[i].in = t->data;
    smp[i].out = c->out[0][i]->data;
    smp[i].threshold = (int64_t)vp_arg_num(c->args, ARG_SIZE, i);
    smp[i].background = 0;
    vp_cvt_store(&smp[i].background, t->dtype, 0, ps[i].background);
  }
  /* one call per run of samples that one labelling call can serve
   * (normally the whole batch: the arguments are constants) */
  for (int64_t i0 = 0, i1; i0 < c->batch; i0 = i1) {
    const vp_dtype dt = c->in[0][i0]->dtype;
    for (i1 = i0 + 1; i1 < c->batch; i1++)
      if (c->in[0][i1]->dtype != dt || ps[i1].connectivity != ps[i0].connectivity ||
          ps[i1].multi_label != ps[i0].multi_label ||
          memcmp(&ps[i1].background, &ps[i0].background, sizeof(double)))
        break;
    VP_TRY(vp_cuda_component_filter(smp + i0, i1 - i0, dt, &ps[i0], mode, c->stream));
  }
  return VP_OK;
}
#endif

static vp_status run_gpu(const vp_op_call *c, vp_cf_mode mode, const char *op) {
#ifdef VP_HAVE_CUDA
  vp_cf_sample *smp = calloc((size_t)c->batch + 1, sizeof *smp);
  vp_ccl_params *ps = calloc((size_t)c->batch + 1, sizeof *ps);
  vp_status s =
      smp && ps ? gpu_body(c, mode, op, smp, ps) : vp_fail(VP_ERR_NOMEM, "%s: out of memory", op);
  free(smp);
  free(ps);
  return s;
#else
  (void)c, (void)mode;
  return vp_fail(VP_ERR_NO_DEVICE, "%s: voxpipe was built without its CUDA backend", op);
#endif
}
static vp_status run_gpu_small(const vp_op_call *c) {
  return run_gpu(c, VP_CF_REMOVE_SMALL, "remove_small_objects");
}
static vp_status run_gpu_largest(const vp_op_call *c) {
  return run_gpu(c, VP_CF_KEEP_LARGEST, "keep_largest_components");
}

const vp_op_desc vp_op_remove_small_objects = {
    .name = "remove_small_objects",
    .doc = "Sets connected components of fewer than min_size voxels to the background value.",
    .num_inputs = 1,
    .num_outputs = 1,
    .inputs = {"input"},
    .outputs = {"output"},
    .args = k_small_args,
    .num_args = 4,
    .infer = infer_small,
    .run_cpu = run_small,
    .run_gpu = run_gpu_small,
};

const vp_op_desc vp_op_keep_largest_components = {
    .name = "keep_largest_components",
    .doc = "Keeps the k largest connected components (of each value with independent), setting "
           "the rest to the background value.",
    .num_inputs = 1,
    .num_outputs = 1,
    .inputs = {"input"},
    .outputs = {"output"},
    .args = k_largest_args,
    .num_args = 4,
    .infer = infer_largest,
    .run_cpu = run_largest,
    .run_gpu = run_gpu_largest,
};
