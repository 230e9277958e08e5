/* connected_components: int32 labels of the connected components of each
 * sample, their count, and optionally the voxel counts and bounding boxes
 * of the first max_components components.
 *
 * Layout: (H, W) is 2-D; (D, H, W) 3-D; (1, D, H, W) 3-D with a channel
 * axis. connectivity 0 (the default) is full connectivity: 26 in 3-D, 8 in
 * 2-D (as cc3d, MONAI and DALI; scipy.ndimage.label's default is the
 * face connectivity, 6 or 4). Components are numbered 1..count by their
 * first voxel in C order, identically on the CPU and the GPU.
 *
 * Outputs have shapes known before the data: "sizes" [K] and "boxes"
 * [K, 2 * ndim] (lo per spatial axis, then hi, exclusive) for K =
 * max_components, entries of labels > count zero; components past K are
 * counted in "count" but not described. */
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "core/tensor.h"
#include "ops/ccl.h"
#include "ops/op.h"
#ifdef VP_HAVE_CUDA
#include <cuda_runtime_api.h>

#include "core/cuda_rt.h"
#include "cuda/ccl.h"
#endif

enum { ARG_CONN, ARG_BG, ARG_MULTI, ARG_K };

static const vp_arg_spec k_args[] = {
    {"connectivity", VP_ARG_INT, "0", 0, 26, 0, NULL, 0,
     "neighbours that join: 6, 18, 26 (3-D), 4, 8 (2-D); 0 = full (26 or 8)"},
    {"background", VP_ARG_FLOAT, "0", -1e300, 1e300, 0, NULL, 0,
     "value of background voxels (every other value is foreground)"},
    {"multi_label", VP_ARG_BOOL, "false", 0, 1, 0, NULL, 0,
     "neighbours join only when their values are equal (else any foreground joins)"},
    {"max_components", VP_ARG_INT, "0", 0, 1 << 24, 0, NULL, 0,
     "K: sizes [K] and boxes [K, 2*ndim] of components 1..K (zero past count)"},
};

vp_status vp_ccl_op_geometry(const char *op, const vp_tensor *t, int conn_arg, int64_t shape[3],
                             int *spatial, vp_ccl_params *p) {
  if (t->ndim == 2) {
    shape[0] = 1, shape[1] = t->shape[0], shape[2] = t->shape[1];
    *spatial = 2;
  } else if (t->ndim == 3 || (t->ndim == 4 && t->shape[0] == 1)) {
    memcpy(shape, t->shape + t->ndim - 3, 3 * sizeof *shape);
    *spatial = 3;
  } else {
    return vp_fail(VP_ERR_INVALID_ARG,
                   "%s: input of %d axes; expected (H, W), (D, H, W) or (1, D, H, W)", op,
                   t->ndim);
  }
  memset(p, 0, sizeof *p);
  p->connectivity = conn_arg ? conn_arg : (*spatial == 2 ? 8 : 26);
  if (*spatial == 3 && (conn_arg == 4 || conn_arg == 8) && shape[0] > 1)
    return vp_fail(VP_ERR_INVALID_ARG, "%s: connectivity %d is 2-D; the input is 3-D", op,
                   conn_arg);
  int conn3;
  return vp_ccl_check(op, shape, p, &conn3);
}

static vp_status infer(const vp_op_call *c, int64_t i, vp_out_spec *out) {
  const vp_tensor *t = c->in[0][i];
  int64_t shape[3];
  int spatial;
  vp_ccl_params p;
  VP_TRY(vp_ccl_op_geometry("connected_components", t,
                            (int)vp_arg_num(c->args, ARG_CONN, i), shape, &spatial, &p));
  const int64_t k = (int64_t)vp_arg_num(c->args, ARG_K, i);
  out[0].dtype = VP_I32;
  out[0].ndim = t->ndim;
  memcpy(out[0].shape, t->shape, sizeof out[0].shape);
  out[1].dtype = VP_I64;
  out[1].ndim = 0;
  out[2].dtype = VP_I64;
  out[2].ndim = 1;
  out[2].shape[0] = k;
  out[3].dtype = VP_I64;
  out[3].ndim = 2;
  out[3].shape[0] = k;
  out[3].shape[1] = 2 * spatial;
  return VP_OK;
}

static void params_of(const vp_op_call *c, vp_ccl_params *p) {
  p->background = vp_arg_num(c->args, ARG_BG, 0);
  p->multi_label = vp_arg_num(c->args, ARG_MULTI, 0) != 0;
}

static vp_status run_cpu(const vp_op_call *c) {
  const char *op = "connected_components";
  for (int64_t i = 0; i < c->batch; i++) {
    const vp_tensor *t = c->in[0][i];
    int64_t shape[3];
    int spatial;
    vp_ccl_params p;
    VP_TRY(vp_ccl_op_geometry(op, t, (int)vp_arg_num(c->args, ARG_CONN, i), shape, &spatial, &p));
    params_of(c, &p);
    int64_t count = 0;
    VP_TRY(vp_ccl_label_cpu(t->data, t->dtype, shape, &p, (int32_t *)c->out[0][i]->data, &count,
                            c->pool));
    *(int64_t *)c->out[1][i]->data = count;
    const int64_t k = (int64_t)vp_arg_num(c->args, ARG_K, i);
    if (k == 0) continue;
    int64_t *sizes = c->out[2][i]->data, *boxes = c->out[3][i]->data;
    memset(sizes, 0, (size_t)k * sizeof *sizes);
    memset(boxes, 0, (size_t)k * 2 * spatial * sizeof *boxes);
    const int64_t m = count < k ? count : k;
    if (m == 0) continue;
    int64_t *all_sizes = malloc((size_t)count * sizeof *all_sizes);
    int64_t *all_boxes = malloc((size_t)count * 6 * sizeof *all_boxes);
    vp_status s = all_sizes && all_boxes
                      ? vp_ccl_stats_cpu(c->out[0][i]->data, shape, count, all_sizes, all_boxes,
                                         c->pool)
                      : vp_fail(VP_ERR_NOMEM, "%s: out of memory for %lld components", op,
                                (long long)count);
    if (s == VP_OK) {
      memcpy(sizes, all_sizes, (size_t)m * sizeof *sizes);
      for (int64_t l = 0; l < m; l++)
        for (int a = 0; a < spatial; a++) {
          boxes[l * 2 * spatial + a] = all_boxes[l * 6 + 3 - spatial + a];
          boxes[l * 2 * spatial + spatial + a] = all_boxes[l * 6 + 6 - spatial + a];
        }
    }
    free(all_sizes);
    free(all_boxes);
    VP_TRY(s);
  }
  return VP_OK;
}

#ifdef VP_HAVE_CUDA
/* One labelling call for the batch; counts and stats land in one scratch
 * allocation and are scattered to the per-sample outputs by async copies. */
static vp_status run_gpu_body(const vp_op_call *c, vp_ccl_gpu_sample *cs, int64_t (*shapes)[3],
                              int *spatial) {
  const char *op = "connected_components";
  const int64_t n = c->batch;
  vp_ccl_params p;
  for (int64_t i = 0; i < n; i++) {
    VP_TRY(vp_ccl_op_geometry(op, c->in[0][i], (int)vp_arg_num(c->args, ARG_CONN, i), shapes[i],
                              &spatial[i], &p));
    if (i > 0 && c->in[0][i]->dtype != c->in[0][0]->dtype)
      return vp_fail(VP_ERR_INVALID_ARG, "%s: samples of different dtypes", op);
    cs[i].in = c->in[0][i]->data;
    cs[i].labels = (int32_t *)c->out[0][i]->data;
    memcpy(cs[i].shape, shapes[i], sizeof cs[i].shape);
  }
  /* the connectivity argument is a constant: sample 0's stands for all */
  VP_TRY(vp_ccl_op_geometry(op, c->in[0][0], (int)vp_arg_num(c->args, ARG_CONN, 0), shapes[0],
                            &spatial[0], &p));
  /* (full connectivity of a 3-D sample 0, 26, is 8 on 2-D samples; a
   * 2-D one on 3-D samples is refused by the labeller) */
  params_of(c, &p);
  const int64_t k = (int64_t)vp_arg_num(c->args, ARG_K, 0);
  size_t ws = 0;
  VP_TRY(vp_cuda_ccl_workspace_bytes((const int64_t(*)[3])shapes, n, &ws));
  const size_t head = (size_t)n * (1 + 7 * (size_t)k) * sizeof(int64_t);
  const size_t head_al = (head + 255) & ~(size_t)255;
  cudaStream_t s = (cudaStream_t)c->stream;
  char *buf = NULL;
  VP_TRY(vp_cuda_malloc_async((void **)&buf, head_al + ws, s, "connected_components"));
  int64_t *counts = (int64_t *)buf, *sizes = counts + n, *boxes = sizes + n * k;
  /* one sample: its count straight into its output (a copy fewer) */
  const int direct = n == 1;
  vp_ccl_gpu_stats stats = {k, sizes, boxes};
  vp_status st =
      vp_cuda_ccl_label(cs, n, c->in[0][0]->dtype, &p, NULL, direct ? c->out[1][0]->data : counts,
                        &stats, buf + head_al, ws, c->stream);
  cudaError_t e = cudaSuccess;
  for (int64_t i = 0; st == VP_OK && e == cudaSuccess && i < n; i++) {
    if (!direct)
      e = cudaMemcpyAsync(c->out[1][i]->data, counts + i, sizeof *counts, cudaMemcpyDeviceToDevice,
                          s);
    if (k == 0 || e != cudaSuccess) continue;
    e = cudaMemcpyAsync(c->out[2][i]->data, sizes + i * k, (size_t)k * sizeof *sizes,
                        cudaMemcpyDeviceToDevice, s);
    /* (d, h, w) lo and hi -> the last `spatial` axes of each */
    const int sp = spatial[i];
    for (int half = 0; half < 2 && e == cudaSuccess; half++)
      e = cudaMemcpy2DAsync((int64_t *)c->out[3][i]->data + half * sp, 2 * sp * sizeof(int64_t),
                            boxes + i * k * 6 + half * 3 + 3 - sp, 6 * sizeof(int64_t),
                            sp * sizeof(int64_t), (size_t)k, cudaMemcpyDeviceToDevice, s);
  }
  if (st == VP_OK && e != cudaSuccess)
    st = vp_cuda_status(e, "connected_components: copying counts and statistics");
  (void)cudaFreeAsync(buf, s);
  return st;
}
#endif

static vp_status run_gpu(const vp_op_call *c) {
#ifdef VP_HAVE_CUDA
  vp_ccl_gpu_sample *cs = calloc((size_t)c->batch + 1, sizeof *cs);
  int64_t(*shapes)[3] = calloc((size_t)c->batch + 1, sizeof *shapes);
  int *spatial = calloc((size_t)c->batch + 1, sizeof *spatial);
  vp_status s = cs && shapes && spatial
                    ? run_gpu_body(c, cs, shapes, spatial)
                    : vp_fail(VP_ERR_NOMEM, "connected_components: out of memory");
  free(cs);
  free(shapes);
  free(spatial);
  return s;
#else
  (void)c;
  return vp_fail(VP_ERR_NO_DEVICE,
                 "connected_components: voxpipe was built without its CUDA backend");
#endif
}

const vp_op_desc vp_op_connected_components = {
    .name = "connected_components",
    .doc = "Labels connected components (int32, numbered by first voxel in C order) with their "
           "count and optional per-component sizes and boxes.",
    .num_inputs = 1,
    .num_outputs = 4,
    .inputs = {"input"},
    .outputs = {"labels", "count", "sizes", "boxes"},
    .args = k_args,
    .num_args = 4,
    .infer = infer,
    .run_cpu = run_cpu,
    .run_gpu = run_gpu,
};
