/* simulate_low_resolution: nnU-Net's SimulateLowResolutionTransform. With
 * probability p per sample, each channel (with probability p_per_channel)
 * is downsampled with nearest to round(extent * zoom) per spatial axis
 * (numpy's round: ties to even; at least 1; ignore_axes keep their
 * extent), then resized back to its extent with order_upsample (cubic by
 * default, as nnU-Net's order 3), both with the half-voxel map and the
 * edge border (skimage resize(mode='edge', anti_aliasing=False), i.e.
 * scipy.ndimage.zoom(grid_mode=True, mode='nearest')). Both resizes run on
 * the resampling engine, one launch each for the whole batch; the
 * low-resolution volume is a float32 scratch.
 *
 * Randomness: r = vp_rng_draw(key, iteration, s, 2^64 - 1) for sample s:
 * the sample is changed when vp_u01f(r[0]) < p, and its zoom is
 * zoom_lo + (zoom_hi - zoom_lo) * vp_u01f(r[1]). Channel c draws
 * q = vp_rng_draw(key, iteration, s, c): it is changed when vp_u01f(q[0]) <
 * p_per_channel, and with per_channel its zoom is zoom_lo + (zoom_hi -
 * zoom_lo) * vp_u01f(q[1]). Unchanged channels are copied. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/cuda_rt.h"
#include "core/status.h"
#include "core/tensor.h"
#include "ops/op.h"
#include "ops/resample.h"
#ifdef VP_HAVE_CUDA
#include "cuda/gaussian_blur.h"
#include "cuda/kernels.h"
#endif

enum { ARG_ZOOM_LO, ARG_ZOOM_HI, ARG_PER_CHANNEL, ARG_P_PER_CHANNEL, ARG_P, ARG_ORDER, ARG_IGNORE };

static const vp_arg_spec k_args[] = {
    {"zoom_lo", VP_ARG_FLOAT, "0.5", 0.01, 1, 0, NULL, VP_ARG_PER_SAMPLE,
     "smallest zoom factor (low-resolution extent / extent)"},
    {"zoom_hi", VP_ARG_FLOAT, "1.0", 0.01, 1, 0, NULL, VP_ARG_PER_SAMPLE, "largest zoom factor"},
    {"per_channel", VP_ARG_BOOL, "false", 0, 1, 0, NULL, 0,
     "draw a zoom per channel instead of one per sample"},
    {"p_per_channel", VP_ARG_FLOAT, "1", 0, 1, 0, NULL, VP_ARG_PER_SAMPLE,
     "probability that a channel of a changed sample is changed"},
    {"p", VP_ARG_FLOAT, "1", 0, 1, 0, NULL, VP_ARG_PER_SAMPLE,
     "probability that a sample is changed (else it is copied unchanged)"},
    {"order_upsample", VP_ARG_ENUM, "\"cubic\"", 0, 0, 0, "nearest|linear|cubic", 0,
     "interpolation back to the original extent (nnU-Net: cubic); downsampling is nearest"},
    {"ignore_axes", VP_ARG_INTS, "[]", 0, 2, 3, NULL, VP_ARG_EMPTY_OK,
     "spatial axes (0 = the first spatial axis) that keep their resolution"},
};

static int spatial(const vp_tensor *t) {
  return t->spatial_ndim < t->ndim ? t->spatial_ndim : t->ndim;
}

static vp_status infer(const vp_op_call *c, int64_t i, vp_out_spec *out) {
  const vp_tensor *t = c->in[0][i];
  if (spatial(t) < 1)
    return vp_fail(VP_ERR_INVALID_ARG,
                   "simulate_low_resolution: sample %lld is a scalar: nothing to resample",
                   (long long)i);
  if (vp_arg_num(c->args, ARG_ZOOM_LO, i) > vp_arg_num(c->args, ARG_ZOOM_HI, i))
    return vp_fail(
        VP_ERR_INVALID_ARG, "simulate_low_resolution: sample %lld: zoom_lo %g is above zoom_hi %g",
        (long long)i, vp_arg_num(c->args, ARG_ZOOM_LO, i), vp_arg_num(c->args, ARG_ZOOM_HI, i));
  out->dtype = t->dtype;
  out->ndim = t->ndim;
  memcpy(out->shape, t->shape, sizeof out->shape);
  return VP_OK;
}

/* The plan: one engine descriptor per changed channel for each resize,
 * and the runs of unchanged bytes to copy. */
typedef struct plan {
  vp_resample_desc *down, *up;
  int64_t n;             /* changed channels */
  size_t scratch_floats; /* low-resolution voxels of all changed channels */
  struct copy {
    const void *src;
    void *dst;
    size_t bytes;
  } * copies;
  int64_t n_copies;
} plan;

static void plan_free(plan *p) {
  free(p->down);
  free(p->up);
  free(p->copies);
}

static vp_status plan_make(const vp_op_call *c, plan *p) {
  memset(p, 0, sizeof *p);
  int64_t channels = 0;
  for (int64_t i = 0; i < c->batch; i++) {
    const vp_tensor *t = c->in[0][i];
    int64_t ch = 1;
    for (int a = 0; a < t->ndim - spatial(t); a++) ch *= t->shape[a];
    if (ch > INT64_MAX / 4 - channels)
      return vp_fail(VP_ERR_OVERFLOW, "simulate_low_resolution: too many channels");
    channels += ch;
  }
  p->down = calloc((size_t)channels + 1, sizeof *p->down);
  p->up = calloc((size_t)channels + 1, sizeof *p->up);
  p->copies = calloc((size_t)channels + 1, sizeof *p->copies);
  if (!p->down || !p->up || !p->copies) {
    plan_free(p);
    return vp_fail(VP_ERR_NOMEM, "simulate_low_resolution: out of memory");
  }
  const vp_arg_value *ign = vp_arg(c->args, ARG_IGNORE, 0);
  const int per_channel = vp_arg_num(c->args, ARG_PER_CHANNEL, 0) != 0;
  for (int64_t i = 0; i < c->batch; i++) {
    const vp_tensor *in = c->in[0][i];
    vp_tensor *out = c->out[0][i];
    const int sn = spatial(in);
    for (int k = 0; k < ign->len; k++)
      if (ign->v[k] >= sn) {
        plan_free(p);
        return vp_fail(VP_ERR_INVALID_ARG,
                       "simulate_low_resolution: argument 'ignore_axes': axis %g, but sample "
                       "%lld has %d spatial axes",
                       ign->v[k], (long long)i, sn);
      }
    int64_t sp[3] = {1, 1, 1}, ch = 1, nsp = 1;
    for (int a = 0; a < in->ndim - sn; a++) ch *= in->shape[a];
    for (int k = 0; k < sn; k++) sp[3 - sn + k] = in->shape[in->ndim - sn + k];
    for (int a = 0; a < 3; a++) nsp *= sp[a];
    const size_t es = vp_dtype_size(in->dtype);
    const uint32_t sample = c->sample_base + (uint32_t)i;
    vp_u32x4 r = vp_rng_draw(c->key, c->iteration, sample, UINT64_MAX);
    const int apply = vp_u01f(r.v[0]) < (float)vp_arg_num(c->args, ARG_P, i);
    const double lo = vp_arg_num(c->args, ARG_ZOOM_LO, i), hi = vp_arg_num(c->args, ARG_ZOOM_HI, i);
    const float pc = (float)vp_arg_num(c->args, ARG_P_PER_CHANNEL, i);
    const int64_t sample_copies = p->n_copies;
    for (int64_t k = 0; k < ch; k++) {
      const size_t off = (size_t)(k * nsp) * es;
      vp_u32x4 q = vp_rng_draw(c->key, c->iteration, sample, (uint64_t)k);
      if (!apply || !(vp_u01f(q.v[0]) < pc)) {
        /* adjacent channels of this sample: one copy (never across samples:
         * their buffers may be adjacent allocations, which one copy must not span) */
        struct copy *last = p->n_copies > sample_copies ? &p->copies[p->n_copies - 1] : NULL;
        const char *src = (const char *)in->data + off;
        char *dst = (char *)out->data + off;
        if (last && (const char *)last->src + last->bytes == src &&
            (char *)last->dst + last->bytes == dst) {
          last->bytes += (size_t)nsp * es;
        } else {
          p->copies[p->n_copies].src = src;
          p->copies[p->n_copies].dst = dst;
          p->copies[p->n_copies].bytes = (size_t)nsp * es;
          p->n_copies++;
        }
        continue;
      }
      const double zoom = lo + (hi - lo) * (double)vp_u01f(per_channel ? q.v[1] : r.v[1]);
      int64_t low[3] = {1, 1, 1}, nlow = 1;
      for (int a = 3 - sn; a < 3; a++) {
        int ignored = 0;
        for (int m = 0; m < ign->len; m++) ignored |= (int)ign->v[m] == a - (3 - sn);
        double e = nearbyint((double)sp[a] * zoom);
        low[a] = ignored ? sp[a] : (e < 1 ? 1 : (int64_t)e);
        if (low[a] > sp[a]) low[a] = sp[a];
        nlow *= low[a];
      }
      /* the engine's half-voxel resize maps, from 3-D views of the shapes */
      vp_tensor full, small;
      memset(&full, 0, sizeof full);
      memset(&small, 0, sizeof small);
      full.ndim = small.ndim = 3;
      memcpy(full.shape, sp, sizeof sp);
      memcpy(small.shape, low, sizeof low);
      vp_resample_desc *dn = &p->down[p->n], *dup = &p->up[p->n];
      dn->in = (const char *)in->data + off;
      dn->out = (void *)(uintptr_t)(p->scratch_floats * sizeof(float)); /* offset, for now */
      dn->channels = 1;
      memcpy(dn->in_shape, sp, sizeof sp);
      memcpy(dn->out_shape, low, sizeof low);
      vp_resample_resize_matrix(&full, 3, low, dn->M, NULL);
      dup->in = dn->out;
      dup->out = (char *)out->data + (size_t)(k * nsp) * vp_dtype_size(out->dtype);
      dup->channels = 1;
      memcpy(dup->in_shape, low, sizeof low);
      memcpy(dup->out_shape, sp, sizeof sp);
      vp_resample_resize_matrix(&small, 3, sp, dup->M, NULL);
      p->scratch_floats += (size_t)nlow;
      p->n++;
    }
  }
  return VP_OK;
}

/* Points the descriptors' scratch offsets into the scratch at base. */
static void plan_place(plan *p, float *base) {
  for (int64_t k = 0; k < p->n; k++) {
    p->down[k].out = (char *)base + (uintptr_t)p->down[k].out;
    p->up[k].in = p->down[k].out;
  }
}

static vp_status run(const vp_op_call *c, int gpu) {
  if (c->batch < 1) return VP_OK;
  const int order = (int)vp_arg_num(c->args, ARG_ORDER, 0);
  const vp_interp up_interp =
      order == 0 ? VP_INTERP_NEAREST : (order == 1 ? VP_INTERP_LINEAR : VP_INTERP_CUBIC);
  plan p;
  VP_TRY(plan_make(c, &p));
  const vp_dtype tin = c->in[0][0]->dtype, tout = c->out[0][0]->dtype;
  vp_status s = VP_OK;
  if (!gpu) {
    float *scratch = p.n ? malloc(p.scratch_floats * sizeof(float)) : NULL;
    if (p.n && !scratch)
      s = vp_fail(VP_ERR_NOMEM, "simulate_low_resolution: no memory for %zu low-resolution voxels",
                  p.scratch_floats);
    for (int64_t k = 0; k < p.n_copies && s == VP_OK; k++)
      memcpy(p.copies[k].dst, p.copies[k].src, p.copies[k].bytes);
    if (s == VP_OK && p.n) {
      plan_place(&p, scratch);
      s = vp_resample_cpu(p.down, p.n, tin, VP_F32, VP_INTERP_NEAREST, VP_BORDER_EDGE, c->pool);
      if (s == VP_OK)
        s = vp_resample_cpu(p.up, p.n, VP_F32, tout, up_interp, VP_BORDER_EDGE, c->pool);
    }
    free(scratch);
  } else {
#ifdef VP_HAVE_CUDA
    void *scratch = NULL;
    for (int64_t k = 0; k < p.n_copies && s == VP_OK; k++)
      s = vp_cuda_memcpy_async(p.copies[k].dst, p.copies[k].src, p.copies[k].bytes, c->stream);
    if (s == VP_OK && p.n)
      s = vp_cuda_scratch_alloc(p.scratch_floats * sizeof(float), c->stream, &scratch);
    if (s == VP_OK && p.n) {
      plan_place(&p, scratch);
      /* the upsampling's checks (cubic's availability) before any work is queued */
      s = vp_resample_check(p.up, p.n, VP_F32, tout, up_interp, VP_BORDER_EDGE, "resample");
      if (s == VP_OK)
        s = vp_cuda_resample(p.down, p.n, tin, VP_F32, VP_INTERP_NEAREST, VP_BORDER_EDGE,
                             c->stream);
      if (s == VP_OK)
        s = vp_cuda_resample(p.up, p.n, VP_F32, tout, up_interp, VP_BORDER_EDGE, c->stream);
    }
    vp_cuda_scratch_free(scratch, c->stream);
#else
    s = vp_fail(VP_ERR_NO_DEVICE,
                "simulate_low_resolution: voxpipe was built without its CUDA backend");
#endif
  }
  if (s != VP_OK) s = vp_fail_prefix(s, "simulate_low_resolution");
  plan_free(&p);
  return s;
}

static vp_status run_cpu(const vp_op_call *c) { return run(c, 0); }
static vp_status run_gpu(const vp_op_call *c) { return run(c, 1); }

const vp_op_desc vp_op_simulate_low_resolution = {
    .name = "simulate_low_resolution",
    .doc =
        "nnU-Net's low-resolution simulation: with probability p, each channel is downsampled "
        "with nearest by a random zoom and resized back (cubic by default).",
    .num_inputs = 1,
    .num_outputs = 1,
    .inputs = {"input"},
    .outputs = {"output"},
    .args = k_args,
    .num_args = 7,
    .infer = infer,
    .run_cpu = run_cpu,
    .run_gpu = run_gpu,
    .random = 1,
};
