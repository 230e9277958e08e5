/* random_crop_window: where to crop a window of crop_shape from each
 * sample, by one of four rules (`mode`):
 *   roi           DALI roi_random_crop: per axis, a window that contains
 *                 the roi [lo, hi) when the roi is smaller than the
 *                 window, else lies inside it, uniformly among those
 *                 starts, clamped to [0, extent - crop];
 *   mask_pixel    DALI random_mask_pixel: a uniformly random voxel with
 *                 label == value (no value: label > 0), the window centred
 *                 on it and clamped; a uniformly random voxel when none
 *                 matches;
 *   nnunet        nnU-Net: samples i >= round(batch * (1 - p)) (p =
 *                 oversample_foreground_percent) take a class uniformly
 *                 among the candidates present, then a random voxel of
 *                 it; the others (and forced ones without foreground) a
 *                 uniform window;
 *   class_ratios  MONAI RandCropByLabelClasses: a class by `ratios` among
 *                 the candidates present, then a random voxel of it.
 * Outputs anchor, shape and centre (int64, one per spatial axis): anchor
 * and shape feed slice's `anchor` and `shape`. A window wider than the
 * volume is centred on it (negative anchor: slice with a pad policy).
 *
 * A voxel of rank r among the matching ones is found by counting, never
 * by listing the foreground: a streaming count and a second pass up to the
 * r-th match on the CPU; per-chunk counts, their prefix sums and a search
 * in the chunk on the GPU. The draws are in src/cuda/object_bbox.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/convert.h"
#include "core/status.h"
#include "core/tensor.h"
#include "cuda/object_bbox.h"
#include "ops/op.h"
#ifdef VP_HAVE_CUDA
#include "core/cuda_rt.h"
#endif

enum {
  ARG_MODE,
  ARG_CROP,
  ARG_ROI,
  ARG_VALUE,
  ARG_CLASSES,
  ARG_RATIOS,
  ARG_OVERSAMPLE,
  ARG_BACKGROUND,
  NUM_ARGS
};

static const vp_arg_spec k_args[NUM_ARGS] = {
    {"mode", VP_ARG_ENUM, "\"roi\"", 0, 0, 0, "roi|mask_pixel|nnunet|class_ratios", 0,
     "the rule: roi (DALI roi_random_crop), mask_pixel (DALI random_mask_pixel), nnunet "
     "(nnU-Net's foreground oversampling), class_ratios (MONAI RandCropByLabelClasses)"},
    {"crop_shape", VP_ARG_INTS, NULL, 1, 1099511627776.0, 3, NULL, VP_ARG_PER_SAMPLE,
     "window extent per spatial axis (one value for all axes, or one per axis)"},
    {"roi", VP_ARG_INTS, "[]", -1099511627776.0, 1099511627776.0, 6, NULL,
     VP_ARG_PER_SAMPLE | VP_ARG_EMPTY_OK,
     "roi mode: the region [lo..., hi...] (hi exclusive: random_object_bbox's start_end "
     "format); [] = the whole volume"},
    {"value", VP_ARG_FLOATS, "[]", -1e300, 1e300, 1, NULL, VP_ARG_EMPTY_OK,
     "mask_pixel: the label value of foreground voxels; [] = any value > 0"},
    {"classes", VP_ARG_INTS, "[]", 0, 255, 16, NULL, VP_ARG_EMPTY_OK,
     "nnunet, class_ratios: candidate label values (0..255); [] = nnunet: every value but "
     "background, class_ratios: 0 .. len(ratios) - 1"},
    {"ratios", VP_ARG_FLOATS, "[]", 0, 1e30, 16, NULL, VP_ARG_EMPTY_OK,
     "class_ratios: relative weight of each class (absent classes weigh 0)"},
    {"oversample_foreground_percent", VP_ARG_FLOAT, "0.33", 0, 1, 0, NULL, 0,
     "nnunet: the fraction of each batch (its last samples) forced to hold foreground"},
    {"background", VP_ARG_INT, "0", 0, 255, 0, NULL, 0,
     "nnunet: the value left out of the default candidates"},
};

typedef struct cw_classes {
  int32_t values[256];
  double weights[256];
  int nv;
} cw_classes;

static vp_status geometry(const vp_op_call *c, int64_t i, int64_t shape[3], int *nd) {
  const vp_tensor *t = c->in[0][i];
  int sn = t->spatial_ndim < t->ndim ? t->spatial_ndim : t->ndim;
  if (sn < 1 || t->ndim == 0)
    return vp_fail(VP_ERR_INVALID_ARG, "random_crop_window: sample %lld is a scalar", (long long)i);
  for (int a = 0; a < t->ndim - sn; a++)
    if (t->shape[a] != 1)
      return vp_fail(VP_ERR_INVALID_ARG,
                     "random_crop_window: sample %lld: axis %d has extent %lld: give a label map "
                     "with one channel",
                     (long long)i, a, (long long)t->shape[a]);
  shape[0] = shape[1] = 1;
  for (int a = 0; a < sn; a++) shape[3 - sn + a] = t->shape[t->ndim - sn + a];
  *nd = sn;
  return VP_OK;
}

static vp_status sample_of(const vp_op_call *c, int64_t i, vp_cw_sample *s) {
  memset(s, 0, sizeof *s);
  int nd;
  VP_TRY(geometry(c, i, s->shape, &nd));
  s->ndim = nd;
  s->mode = (int)vp_arg_num(c->args, ARG_MODE, i);
  s->sample = c->sample_base + (uint32_t)i;
  const vp_arg_value *crop = vp_arg(c->args, ARG_CROP, i);
  if (crop->len != 1 && crop->len != nd)
    return vp_fail(VP_ERR_INVALID_ARG,
                   "random_crop_window: 'crop_shape' has %d values for sample %lld, which has %d "
                   "spatial axes",
                   crop->len, (long long)i, nd);
  s->crop[0] = s->crop[1] = s->crop[2] = 1;
  for (int a = 0; a < nd; a++) s->crop[3 - nd + a] = (int64_t)crop->v[crop->len == 1 ? 0 : a];
  const vp_arg_value *roi = vp_arg(c->args, ARG_ROI, i);
  for (int a = 0; a < 3; a++) s->roi_lo[a] = 0, s->roi_hi[a] = s->shape[a];
  if (s->mode == VP_CW_ROI && roi->len) {
    if (roi->len != 2 * nd)
      return vp_fail(VP_ERR_INVALID_ARG,
                     "random_crop_window: 'roi' has %d values for sample %lld: give [lo..., "
                     "hi...], %d values",
                     roi->len, (long long)i, 2 * nd);
    for (int a = 0; a < nd; a++) {
      s->roi_lo[3 - nd + a] = (int64_t)roi->v[a];
      s->roi_hi[3 - nd + a] = (int64_t)roi->v[nd + a];
      if (roi->v[nd + a] < roi->v[a])
        return vp_fail(VP_ERR_INVALID_ARG,
                       "random_crop_window: 'roi' of sample %lld ends before it starts on axis %d",
                       (long long)i, a);
    }
  }
  if (s->mode == VP_CW_MASK_PIXEL) {
    const vp_arg_value *v = vp_arg(c->args, ARG_VALUE, i);
    s->match = v->len ? VP_CW_MATCH_EQ : VP_CW_MATCH_POS;
    s->value = v->len ? v->v[0] : 0;
  }
  if (s->mode == VP_CW_NNUNET) {
    double p = vp_arg_num(c->args, ARG_OVERSAMPLE, i);
    s->forced = (double)i >= nearbyint((double)c->batch * (1.0 - p));
  }
  return VP_OK;
}

static vp_status class_list(const vp_op_call *c, cw_classes *k) {
  memset(k, 0, sizeof *k);
  int mode = (int)vp_arg_num(c->args, ARG_MODE, 0);
  const vp_arg_value *cls = vp_arg(c->args, ARG_CLASSES, 0);
  const vp_arg_value *r = vp_arg(c->args, ARG_RATIOS, 0);
  if (mode == VP_CW_CLASS_RATIOS) {
    if (!r->len)
      return vp_fail(VP_ERR_INVALID_ARG, "random_crop_window: class_ratios needs 'ratios'");
    if (cls->len && cls->len != r->len)
      return vp_fail(VP_ERR_INVALID_ARG,
                     "random_crop_window: 'ratios' has %d values, 'classes' %d: give one ratio "
                     "per class",
                     r->len, cls->len);
    for (int j = 0; j < r->len; j++) {
      k->values[j] = cls->len ? (int32_t)cls->v[j] : j;
      k->weights[j] = r->v[j];
    }
    k->nv = r->len;
  } else if (mode == VP_CW_NNUNET) {
    int bg = (int)vp_arg_num(c->args, ARG_BACKGROUND, 0);
    if (cls->len) {
      for (int j = 0; j < cls->len; j++) k->values[k->nv++] = (int32_t)cls->v[j];
    } else {
      for (int v = 0; v < 256; v++)
        if (v != bg) k->values[k->nv++] = v;
    }
    for (int j = 0; j < k->nv; j++) k->weights[j] = 1;
  }
  return VP_OK;
}

static vp_status infer(const vp_op_call *c, int64_t i, vp_out_spec *out) {
  vp_cw_sample s;
  VP_TRY(sample_of(c, i, &s));
  for (int k = 0; k < 3; k++) {
    out[k].dtype = VP_I64;
    out[k].ndim = 1;
    out[k].shape[0] = s.ndim;
  }
  return VP_OK;
}

/* ---- CPU -------------------------------------------------------------- */

typedef struct cw_ctx {
  const vp_op_call *c;
  const cw_classes *k;
} cw_ctx;

static vp_status one_sample(void *ctx, int64_t i, int64_t begin, int64_t end) {
  (void)begin, (void)end;
  const cw_ctx *cc = ctx;
  const vp_op_call *c = cc->c;
  const vp_tensor *t = c->in[0][i];
  vp_cw_sample s;
  VP_TRY(sample_of(c, i, &s));
  const int64_t numel = s.shape[0] * s.shape[1] * s.shape[2];
  const int needs_hist = s.mode == VP_CW_CLASS_RATIOS || (s.mode == VP_CW_NNUNET && s.forced);
  if (needs_hist) {
    int64_t *hist = calloc(256, sizeof *hist);
    if (!hist) return vp_fail(VP_ERR_NOMEM, "random_crop_window: out of memory");
    for (int64_t v = 0; v < numel; v++) {
      double x = vp_cvt_load(t->data, t->dtype, v);
      if (x >= 0 && x < 256 && x == (double)(int)x) hist[(int)x]++;
    }
    vp_cw_choose(&s, hist, cc->k->values, cc->k->weights, cc->k->nv, c->key, c->iteration);
    free(hist);
  }
  vp_u32x4 r0 = vp_rng_draw(c->key, c->iteration, s.sample, 0);
  vp_u32x4 r1 = vp_rng_draw(c->key, c->iteration, s.sample, 1);
  int64_t voxel = -1;
  if (s.mode != VP_CW_ROI && s.match != VP_CW_MATCH_NONE) {
    int64_t total = 0;
    for (int64_t v = 0; v < numel; v++)
      total += vp_cw_matches(&s, vp_cvt_load(t->data, t->dtype, v));
    if (total == 0) {
      if (s.mode == VP_CW_MASK_PIXEL) voxel = vp_obb_index(vp_u01d(r0.v[2], r0.v[3]), numel);
    } else {
      int64_t rank = vp_obb_index(vp_u01d(r0.v[2], r0.v[3]), total), seen = 0;
      for (int64_t v = 0; v < numel; v++)
        if (vp_cw_matches(&s, vp_cvt_load(t->data, t->dtype, v)) && seen++ == rank) {
          voxel = v;
          break;
        }
    }
  }
  int64_t a[3];
  vp_cw_anchor(&s, voxel, r1, a);
  int64_t *anchor = c->out[0][i]->data, *shape = c->out[1][i]->data, *centre = c->out[2][i]->data;
  for (int k = 0; k < s.ndim; k++) {
    int64_t crop = s.crop[3 - s.ndim + k];
    anchor[k] = a[k];
    shape[k] = crop;
    centre[k] = a[k] + crop / 2;
  }
  return VP_OK;
}

static vp_status run_cpu(const vp_op_call *c) {
  cw_classes k;
  VP_TRY(class_list(c, &k));
  int64_t *units = malloc((size_t)c->batch * sizeof *units);
  if (!units) return vp_fail(VP_ERR_NOMEM, "random_crop_window: out of memory");
  for (int64_t i = 0; i < c->batch; i++) units[i] = 1;
  cw_ctx cc = {c, &k};
  vp_status s = vp_op_parallel(c, units, 1, one_sample, &cc);
  free(units);
  return s;
}

/* ---- GPU -------------------------------------------------------------- */

static vp_status run_gpu(const vp_op_call *c) {
#ifdef VP_HAVE_CUDA
  cw_classes k;
  VP_TRY(class_list(c, &k));
  const int64_t B = c->batch;
  vp_cw_sample *s = calloc((size_t)B, sizeof *s);
  const void **labels = calloc((size_t)B, sizeof *labels);
  int64_t **anchor = calloc((size_t)B, sizeof *anchor);
  int64_t **centre = calloc((size_t)B, sizeof *centre);
  int64_t *shapes = calloc((size_t)B * 3, sizeof *shapes);
  vp_status st = VP_OK;
  if (!s || !labels || !anchor || !centre || !shapes)
    st = vp_fail(VP_ERR_NOMEM, "random_crop_window: out of memory");
  for (int64_t i = 0; st == VP_OK && i < B; i++) {
    st = sample_of(c, i, &s[i]);
    labels[i] = c->in[0][i]->data;
    anchor[i] = c->out[0][i]->data;
    centre[i] = c->out[2][i]->data;
    for (int a = 0; a < s[i].ndim; a++) shapes[i * 3 + a] = s[i].crop[3 - s[i].ndim + a];
  }
  if (st == VP_OK)
    st = vp_cuda_crop_window(s, labels, B, c->in[0][0]->dtype, k.values, k.weights, k.nv, c->key,
                             c->iteration, anchor, centre, c->stream);
  /* the shapes are the arguments: host bytes, copied in stream order */
  for (int64_t i = 0; st == VP_OK && i < B; i++)
    st = vp_cuda_memcpy_async(c->out[1][i]->data, shapes + i * 3,
                              (size_t)s[i].ndim * sizeof *shapes, c->stream);
  if (st == VP_OK) st = vp_cuda_stream_sync(c->stream); /* `shapes` is pageable host memory */
  free(s);
  free(labels);
  free(anchor);
  free(centre);
  free(shapes);
  return st;
#else
  return vp_fail(VP_ERR_NO_DEVICE,
                 "random_crop_window: voxpipe was built without its CUDA backend");
#endif
}

const vp_op_desc vp_op_random_crop_window = {
    .name = "random_crop_window",
    .doc =
        "Where to crop a window of crop_shape per sample: roi (DALI roi_random_crop), "
        "mask_pixel (DALI random_mask_pixel), nnunet (foreground oversampling) or "
        "class_ratios (MONAI RandCropByLabelClasses); outputs anchor, shape, centre (int64) "
        "for slice.",
    .num_inputs = 1,
    .num_outputs = 3,
    .inputs = {"label"},
    .outputs = {"anchor", "shape", "centre"},
    .args = k_args,
    .num_args = NUM_ARGS,
    .random = 1,
    .infer = infer,
    .run_cpu = run_cpu,
    .run_gpu = run_gpu,
};
