/* elastic: a smooth random deformation, out[c, o] = in[c, o + u(o)], with
 * u the cubic B-spline of a coarse grid of random control displacements
 * (src/ops/resample.h states the spline); and elastic_grid, which outputs
 * such a grid, drawn by the same function, so that a test can rebuild u.
 *
 * The grid of a sample whose output has extents n (array order) and
 * spacing s (output voxels between control points) has
 *     g = ceil((n - 1) / s) + 1 points per axis (1 when n <= 1),
 * so its last point sits at or beyond the last voxel. Point (i, j, k)
 * holds (ud, uh, uw) in output voxels: value e = ((i gh + j) gw + k) 3 + c
 * is magnitude · z, z the standard normal of Philox draw
 * vp_rng_draw(key, iteration, sample, element0 + e / 4) in gaussian_noise's
 * layout (vp_normal2f(r0, r1) gives values 4m and 4m + 1, vp_normal2f(r2,
 * r3) gives 4m + 2 and 4m + 3), element0 = 0 for elastic and elastic_grid.
 * The component along an axis of extent 1 is zero, so 2-D images (D = 1)
 * and single slices stay in their plane. elastic applies a sample when
 * vp_u01f(word 0 of draw 2^64 - 1) < p (gaussian_noise's rule), else it
 * copies it through the identity. The grids are drawn on the CPU (they
 * are tiny) and uploaded for the GPU body. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/cuda_rt.h"
#include "core/status.h"
#include "core/tensor.h"
#include "ops/op.h"
#include "ops/resample.h"
#ifdef VP_HAVE_CUDA
#include "cuda/kernels.h"
#endif

#include "ops/elastic.h"

/* Grids beyond this many floats are refused: a spacing of one voxel on a
 * large volume would otherwise ask for gigabytes of control points. */
#define VP_ELASTIC_MAX_FLOATS ((int64_t)1 << 28)

int64_t vp_elastic_grid_points(int64_t extent, double spacing) {
  if (extent <= 1) return 1;
  double g = ceil((double)(extent - 1) / spacing) + 1.0;
  return g > 1e15 ? (int64_t)1e15 : (int64_t)g;
}

vp_status vp_elastic_draw(vp_rng_key key, uint32_t iteration, uint32_t sample, uint64_t element0,
                          const int64_t shape[3], const double spacing[3], double magnitude,
                          float **nodes, int64_t grid[3]) {
  *nodes = NULL;
  int64_t count = 3;
  for (int a = 0; a < 3; a++) {
    if (!(spacing[a] > 0) || !isfinite(spacing[a]))
      return vp_fail(VP_ERR_INVALID_ARG, "elastic: grid spacing %g on axis %d is not positive",
                     spacing[a], a);
    grid[a] = vp_elastic_grid_points(shape[a], spacing[a]);
    if (grid[a] > VP_ELASTIC_MAX_FLOATS || count * grid[a] > VP_ELASTIC_MAX_FLOATS)
      return vp_fail(VP_ERR_INVALID_ARG,
                     "elastic: a control grid for extents (%lld, %lld, %lld) at spacing (%g, %g, "
                     "%g) has more than %lld values (use a larger grid_spacing)",
                     (long long)shape[0], (long long)shape[1], (long long)shape[2], spacing[0],
                     spacing[1], spacing[2], (long long)VP_ELASTIC_MAX_FLOATS);
    count *= grid[a];
  }
  float *v = malloc((size_t)count * sizeof *v);
  if (!v)
    return vp_fail(VP_ERR_NOMEM, "elastic: out of memory for %lld control values",
                   (long long)count);
  for (int64_t m = 0; m * 4 < count; m++) {
    vp_u32x4 r = vp_rng_draw(key, iteration, sample, element0 + (uint64_t)m);
    vp_f32x2 p = vp_normal2f(r.v[0], r.v[1]), q = vp_normal2f(r.v[2], r.v[3]);
    const float z[4] = {p.x, p.y, q.x, q.y};
    for (int k = 0; k < 4 && m * 4 + k < count; k++)
      v[m * 4 + k] = (float)(magnitude * (double)z[k]);
  }
  for (int a = 0; a < 3; a++)
    if (shape[a] <= 1)
      for (int64_t e = a; e < count; e += 3) v[e] = 0.0f;
  *nodes = v;
  return VP_OK;
}

void vp_spatial_desc(const vp_tensor *in, const vp_tensor *out, vp_resample_desc *d) {
  int sn = vp_resample_spatial(in);
  memset(d, 0, sizeof *d);
  d->in = in->data;
  d->out = out->data;
  d->channels = 1;
  for (int a = 0; a < in->ndim - sn; a++) d->channels *= in->shape[a];
  for (int a = 0; a < 3; a++) {
    int k = a - (3 - sn); /* spatial axis k of the tensor, or none (extent 1) */
    d->in_shape[a] = k >= 0 ? in->shape[in->ndim - sn + k] : 1;
    d->out_shape[a] = k >= 0 ? out->shape[out->ndim - sn + k] : 1;
  }
  for (int r = 0; r < 3; r++) d->M[r * 4 + r] = 1.0;
}

/* Stream-ordered device buffers: the upload never blocks the host and the
 * free waits for the kernels queued before it, so neither needs a
 * synchronisation. */
vp_status vp_spatial_upload(const vp_op_call *c, const void *host, size_t bytes, void **dev) {
  *dev = NULL;
#ifdef VP_HAVE_CUDA
  cudaStream_t s = (cudaStream_t)c->stream;
  void *p = NULL;
  VP_TRY(vp_cuda_malloc_async(&p, bytes, s, "spatial parameters"));
  vp_status st = vp_cuda_upload(p, host, bytes, s, "spatial parameters");
  if (st != VP_OK) {
    (void)cudaFreeAsync(p, s);
    return st;
  }
  *dev = p;
  return VP_OK;
#else
  (void)c, (void)host, (void)bytes;
  return vp_fail(VP_ERR_NO_DEVICE, "voxpipe was built without its CUDA backend");
#endif
}

void vp_spatial_free_async(const vp_op_call *c, void *dev) {
#ifdef VP_HAVE_CUDA
  if (dev) (void)cudaFreeAsync(dev, (cudaStream_t)c->stream);
#else
  (void)c, (void)dev;
#endif
}

/* ---------------------------------------------------------------- */
/* elastic                                                           */

enum { ARG_SPACING, ARG_MAGNITUDE, ARG_P, ARG_INTERP, ARG_BORDER, ARG_FILL, ARG_DTYPE };

static const vp_arg_spec k_args[] = {
    {"grid_spacing", VP_ARG_FLOATS, "[32]", 1, 1e6, 3, NULL, VP_ARG_PER_SAMPLE,
     "output voxels between control points, per spatial axis (array order) or one for all; "
     "the grid has ceil((n - 1) / spacing) + 1 points per axis"},
    {"magnitude", VP_ARG_FLOAT, "4", 0, 1e6, 0, NULL, VP_ARG_PER_SAMPLE,
     "standard deviation of the control displacements, in voxels"},
    {"p", VP_ARG_FLOAT, "1", 0, 1, 0, NULL, VP_ARG_PER_SAMPLE,
     "probability that a sample is deformed (else it is copied unchanged)"},
    {"interp", VP_ARG_ENUM, "\"linear\"", 0, 0, 0, VP_RESAMPLE_INTERP_CHOICES, 0,
     "nearest (labels), linear, or label (smooth labels: per-label linear weights, then the "
     "heaviest label)"},
    VP_RESAMPLE_BORDER_ARG,
    VP_RESAMPLE_FILL_ARG,
    VP_RESAMPLE_DTYPE_ARG,
};

static int applies(const vp_op_call *c, int64_t i) {
  vp_u32x4 r = vp_rng_draw(c->key, c->iteration, c->sample_base + (uint32_t)i, UINT64_MAX);
  return vp_u01f(r.v[0]) < (float)vp_arg_num(c->args, ARG_P, i);
}

/* Sample i's spacing in engine order (D, H, W); 1 on a missing axis. */
static vp_status spacing_of(const vp_op_call *c, int64_t i, const char *op, int arg, int sn,
                            double sp[3]) {
  const vp_arg_value *g = vp_arg(c->args, arg, i);
  if (g->len != 1 && g->len != sn)
    return vp_fail(VP_ERR_INVALID_ARG,
                   "%s: argument 'grid_spacing' has %d values for sample %lld, which has %d "
                   "spatial axes (give %d or 1)",
                   op, g->len, (long long)i, sn, sn);
  for (int a = 0; a < 3; a++) {
    int k = a - (3 - sn);
    sp[a] = k < 0 ? 1.0 : g->v[g->len == 1 ? 0 : k];
  }
  return VP_OK;
}

static vp_status infer(const vp_op_call *c, int64_t i, vp_out_spec *out) {
  const vp_tensor *t = c->in[0][i];
  int sn = vp_resample_spatial(t);
  if (sn < 2)
    return vp_fail(VP_ERR_INVALID_ARG,
                   "elastic: sample %lld has %d spatial axes; it needs 2 (H, W) or 3 (D, H, W)",
                   (long long)i, sn);
  double sp[3];
  VP_TRY(spacing_of(c, i, "elastic", ARG_SPACING, sn, sp));
  int dt = (int)vp_arg_num(c->args, ARG_DTYPE, i);
  out->dtype = dt == 0 ? t->dtype : (vp_dtype)(dt - 1);
  out->ndim = t->ndim;
  memcpy(out->shape, t->shape, sizeof out->shape);
  return VP_OK;
}

static vp_status run(const vp_op_call *c, int gpu) {
  if (c->batch < 1) return VP_OK;
  vp_interp interp = (vp_interp)(int)vp_arg_num(c->args, ARG_INTERP, 0);
  vp_border border = (vp_border)(int)vp_arg_num(c->args, ARG_BORDER, 0);
  vp_resample_desc *d = calloc((size_t)c->batch, sizeof *d);
  float **nodes = calloc((size_t)c->batch, sizeof *nodes);
  int64_t *at = calloc((size_t)c->batch + 1, sizeof *at); /* float offset of each grid */
  float *all = NULL;
  void *dev = NULL;
  vp_status s = VP_OK;
  if (!d || !nodes || !at) s = vp_fail(VP_ERR_NOMEM, "elastic: out of memory");
  for (int64_t i = 0; s == VP_OK && i < c->batch; i++) {
    vp_spatial_desc(c->in[0][i], c->out[0][i], &d[i]);
    d[i].fill = vp_arg_num(c->args, ARG_FILL, i);
    at[i + 1] = at[i];
    if (!applies(c, i)) continue;
    int sn = vp_resample_spatial(c->in[0][i]);
    s = spacing_of(c, i, "elastic", ARG_SPACING, sn, d[i].disp.spacing);
    if (s == VP_OK)
      s = vp_elastic_draw(c->key, c->iteration, c->sample_base + (uint32_t)i, 0, d[i].out_shape,
                          d[i].disp.spacing, vp_arg_num(c->args, ARG_MAGNITUDE, i), &nodes[i],
                          d[i].disp.grid);
    if (s == VP_OK) {
      at[i + 1] += 3 * d[i].disp.grid[0] * d[i].disp.grid[1] * d[i].disp.grid[2];
      d[i].disp.nodes = nodes[i];
    }
  }
  if (s == VP_OK && gpu && at[c->batch] > 0) {
    /* one upload for the batch's grids */
    all = malloc((size_t)at[c->batch] * sizeof *all);
    if (!all) s = vp_fail(VP_ERR_NOMEM, "elastic: out of memory");
    for (int64_t i = 0; s == VP_OK && i < c->batch; i++)
      if (nodes[i]) memcpy(all + at[i], nodes[i], (size_t)(at[i + 1] - at[i]) * sizeof *all);
    if (s == VP_OK) s = vp_spatial_upload(c, all, (size_t)at[c->batch] * sizeof *all, &dev);
    for (int64_t i = 0; s == VP_OK && i < c->batch; i++)
      if (nodes[i]) d[i].disp.nodes = (const float *)dev + at[i];
  }
  if (s == VP_OK) {
    vp_dtype tin = c->in[0][0]->dtype, tout = c->out[0][0]->dtype;
    if (!gpu) {
      s = vp_resample_cpu(d, c->batch, tin, tout, interp, border, c->pool);
    } else {
#ifdef VP_HAVE_CUDA
      s = vp_cuda_resample(d, c->batch, tin, tout, interp, border, c->stream);
#else
      s = vp_fail(VP_ERR_NO_DEVICE, "voxpipe was built without its CUDA backend");
#endif
    }
    if (s != VP_OK) s = vp_fail_prefix(s, "elastic");
  }
  if (dev) vp_spatial_free_async(c, dev);
  for (int64_t i = 0; nodes && i < c->batch; i++) free(nodes[i]);
  free(nodes);
  free(all);
  free(at);
  free(d);
  return s;
}

static vp_status run_cpu(const vp_op_call *c) { return run(c, 0); }
static vp_status run_gpu(const vp_op_call *c) { return run(c, 1); }

const vp_op_desc vp_op_elastic = {
    .name = "elastic",
    .doc =
        "Random elastic deformation with probability p: out = in at o + u(o), u the cubic "
        "B-spline of a coarse grid of normal control displacements (grid_spacing apart, "
        "standard deviation magnitude voxels); nearest or linear, a border rule.",
    .num_inputs = 1,
    .num_outputs = 1,
    .inputs = {"input"},
    .outputs = {"output"},
    .args = k_args,
    .num_args = 7,
    .random = 1,
    .infer = infer,
    .run_cpu = run_cpu,
    .run_gpu = run_gpu,
};

/* ---------------------------------------------------------------- */
/* elastic_grid                                                      */

enum { GARG_SHAPE, GARG_SPACING, GARG_MAGNITUDE };

static const vp_arg_spec k_grid_args[] = {
    {"shape", VP_ARG_INTS, NULL, 0, 1e9, 3, NULL, VP_ARG_PER_SAMPLE,
     "output extents (D, H, W) the grid spans (D = 1 for a 2-D image)"},
    {"grid_spacing", VP_ARG_FLOATS, "[32]", 1, 1e6, 3, NULL, VP_ARG_PER_SAMPLE,
     "voxels between control points, per axis (D, H, W) or one for all"},
    {"magnitude", VP_ARG_FLOAT, "4", 0, 1e6, 0, NULL, VP_ARG_PER_SAMPLE,
     "standard deviation of the control displacements, in voxels"},
};

static vp_status grid_geometry(const vp_op_call *c, int64_t i, int64_t shape[3], double sp[3]) {
  const vp_arg_value *sh = vp_arg(c->args, GARG_SHAPE, i);
  if (sh->len != 3)
    return vp_fail(VP_ERR_INVALID_ARG,
                   "elastic_grid: argument 'shape' has %d values for sample %lld (needs 3: D, "
                   "H, W)",
                   sh->len, (long long)i);
  for (int a = 0; a < 3; a++) shape[a] = (int64_t)sh->v[a];
  return spacing_of(c, i, "elastic_grid", GARG_SPACING, 3, sp);
}

static vp_status grid_infer(const vp_op_call *c, int64_t i, vp_out_spec *out) {
  int64_t shape[3];
  double sp[3];
  VP_TRY(grid_geometry(c, i, shape, sp));
  out->dtype = VP_F32;
  out->ndim = 4;
  int64_t count = 3;
  for (int a = 0; a < 3; a++) {
    out->shape[a] = vp_elastic_grid_points(shape[a], sp[a]);
    if (out->shape[a] > VP_ELASTIC_MAX_FLOATS || count * out->shape[a] > VP_ELASTIC_MAX_FLOATS)
      return vp_fail(VP_ERR_INVALID_ARG,
                     "elastic_grid: sample %lld: the grid would hold more than %lld values (use "
                     "a larger grid_spacing)",
                     (long long)i, (long long)VP_ELASTIC_MAX_FLOATS);
    count *= out->shape[a];
  }
  out->shape[3] = 3;
  return VP_OK;
}

static vp_status grid_run(const vp_op_call *c) {
  for (int64_t i = 0; i < c->batch; i++) {
    int64_t shape[3], grid[3];
    double sp[3];
    VP_TRY(grid_geometry(c, i, shape, sp));
    float *v;
    VP_TRY(vp_elastic_draw(c->key, c->iteration, c->sample_base + (uint32_t)i, 0, shape, sp,
                           vp_arg_num(c->args, GARG_MAGNITUDE, i), &v, grid));
    vp_tensor *o = c->out[0][i];
    memcpy(o->data, v, (size_t)(grid[0] * grid[1] * grid[2] * 3) * sizeof *v);
    free(v);
  }
  return VP_OK;
}

const vp_op_desc vp_op_elastic_grid = {
    .name = "elastic_grid",
    .doc =
        "The control grid float32 [gd, gh, gw, 3] that elastic would draw for output extents "
        "`shape` with this node's random key (elastic's function: for inspection and tests).",
    .num_inputs = 0,
    .num_outputs = 1,
    .outputs = {"grid"},
    .args = k_grid_args,
    .num_args = 3,
    .random = 1,
    .infer = grid_infer,
    .run_cpu = grid_run,
};
