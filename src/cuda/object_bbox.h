/* random_object_bbox and random_crop_window: the per-sample decisions
 * shared by the CPU bodies (src/ops/random_object_bbox.c,
 * src/ops/crop_sampler.c) and the GPU kernels (src/cuda/object_bbox.cu), so
 * that one seed gives the same boxes and windows on both, and the GPU
 * launchers (C-callable, defined with the CUDA backend only).
 *
 * Draws of random_object_bbox, sample s (counter sample index):
 *   element 0, word 0: u = vp_u01f; the sample is foreground when
 *     u < foreground_prob, else the box is the whole volume;
 *   element 1 + t (attempt t): words 0, 1: vp_u01d picks the class by
 *     weight; words 2, 3: vp_u01d picks the object among the survivors.
 * Draws of random_crop_window, sample s:
 *   element 0: words 0, 1 pick the class (by weight, or uniformly among
 *     the present ones); words 2, 3 the voxel by rank among the matching
 *     ones (or among all voxels when none matches);
 *   element 1: words 0, 1, 2 the window start per axis (d, h, w) where the
 *     window is placed uniformly (roi mode, uniform windows).
 * An index below n from a uniform u in (0, 1) is floor(u * n) (one
 * correctly rounded product: the same bits on CPU and GPU). */
#ifndef VP_CUDA_OBJECT_BBOX_H
#define VP_CUDA_OBJECT_BBOX_H

#include <stdint.h>

#include "core/philox.h"
#include "ops/object_cache.h"
#include "voxpipe.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VP_OBB_MAX_GIVEN 16   /* classes / class_weights values */
#define VP_OBB_MAX_PRESENT 64 /* default classes: the smallest present values */

enum { VP_OBB_ANCHOR_SHAPE, VP_OBB_START_END, VP_OBB_BOX };

typedef struct vp_obb_params {
  int32_t ndim;         /* spatial axes of the output box: 2 or 3 */
  int32_t format;       /* VP_OBB_* */
  int32_t ignore_class; /* pick among all objects */
  int32_t nclasses;     /* given classes; 0 = the values present */
  int32_t classes[VP_OBB_MAX_GIVEN];
  double weights[VP_OBB_MAX_GIVEN];
  int64_t k_largest; /* <= 0: all */
  int32_t threshold[3];
  int32_t background;
  float fg_prob;
  int64_t shape[3]; /* (D, H, W); 2-D: D = 1 */
} vp_obb_params;

VP_HD int64_t vp_obb_index(double u, int64_t n) {
  int64_t k = (int64_t)(u * (double)n);
  return k < n ? k : n - 1;
}

VP_HD int64_t vp_obb_volume(const vp_obj *o) {
  return (int64_t)(o->hi[0] - o->lo[0]) * (int64_t)(o->hi[1] - o->lo[1]) *
         (int64_t)(o->hi[2] - o->lo[2]);
}

VP_HD int vp_obb_survives(const vp_obj *o, const vp_obb_params *p, int32_t cls) {
  if (!p->ignore_class && o->value != cls) return 0;
  for (int a = 0; a < 3; a++)
    if (o->hi[a] - o->lo[a] < p->threshold[a]) return 0;
  return 1;
}

/* The picked object among the survivors of class cls, or -1 when none
 * survives. With k_largest, the k largest box volumes are kept (ties: the
 * lower object number first); the pick is uniform among the kept ones,
 * taken in object order. */
VP_HD int64_t vp_obb_pick(const vp_obj *objs, int64_t n, const vp_obb_params *p, int32_t cls,
                          double u) {
  int64_t surv = 0;
  for (int64_t j = 0; j < n; j++) surv += vp_obb_survives(&objs[j], p, cls);
  if (surv == 0) return -1;
  int64_t kept = surv, cut = -1, need = 0; /* kept: volume > cut, or == cut for the first `need` */
  if (p->k_largest > 0 && surv > p->k_largest) {
    int64_t above = 0, ceiling = INT64_MAX;
    for (;;) { /* the next smaller volume level until k are covered */
      int64_t level = -1, at = 0;
      for (int64_t j = 0; j < n; j++) {
        if (!vp_obb_survives(&objs[j], p, cls)) continue;
        int64_t v = vp_obb_volume(&objs[j]);
        if (v < ceiling && v > level) level = v, at = 0;
        if (v == level) at++;
      }
      if (above + at >= p->k_largest) {
        cut = level;
        need = p->k_largest - above;
        break;
      }
      above += at;
      ceiling = level;
    }
    kept = p->k_largest;
  }
  int64_t want = vp_obb_index(u, kept), seen = 0, ties = 0;
  for (int64_t j = 0; j < n; j++) {
    if (!vp_obb_survives(&objs[j], p, cls)) continue;
    if (cut >= 0) {
      int64_t v = vp_obb_volume(&objs[j]);
      if (v < cut) continue;
      if (v == cut && ties++ >= need) continue;
    }
    if (seen++ == want) return j;
  }
  return -1; /* not reached */
}

/* random_object_bbox for one sample: box (2 * ndim int32 in p->format)
 * and class (the object's value; background for the whole volume). */
VP_HD void vp_obb_select(const vp_obj *objs, int64_t n, const vp_obb_params *p, vp_rng_key key,
                         uint32_t iteration, uint32_t sample, int32_t *box, int32_t *cls) {
  int32_t vals[VP_OBB_MAX_PRESENT];
  double w[VP_OBB_MAX_PRESENT];
  int nv = 0;
  int64_t chosen = -1;
  vp_u32x4 r0 = vp_rng_draw(key, iteration, sample, 0);
  if (vp_u01f(r0.v[0]) < p->fg_prob && n > 0) {
    if (p->ignore_class) {
      vals[0] = 0;
      w[0] = 1;
      nv = 1;
    } else if (p->nclasses > 0) {
      for (int c = 0; c < p->nclasses; c++) {
        vals[c] = p->classes[c];
        w[c] = 0;
        for (int64_t j = 0; j < n && p->weights[c] > 0; j++)
          if (objs[j].value == vals[c]) {
            w[c] = p->weights[c]; /* absent classes weigh 0 */
            break;
          }
      }
      nv = p->nclasses;
    } else { /* the present values, ascending, weight 1 */
      int64_t prev = INT64_MIN;
      while (nv < VP_OBB_MAX_PRESENT) {
        int64_t next = INT64_MAX;
        for (int64_t j = 0; j < n; j++)
          if (objs[j].value > prev && objs[j].value < next) next = objs[j].value;
        if (next == INT64_MAX) break;
        vals[nv] = (int32_t)next;
        w[nv++] = 1;
        prev = next;
      }
    }
    for (int t = 0; t <= nv && chosen < 0; t++) {
      double total = 0;
      for (int c = 0; c < nv; c++) total += w[c];
      if (!(total > 0)) break;
      vp_u32x4 r = vp_rng_draw(key, iteration, sample, 1 + (uint64_t)t);
      double x = vp_u01d(r.v[0], r.v[1]) * total, cum = 0;
      int pick = -1;
      for (int c = 0; c < nv; c++) {
        if (!(w[c] > 0)) continue;
        cum += w[c];
        pick = c; /* the last positive weight catches rounding at the top */
        if (x < cum) break;
      }
      chosen = vp_obb_pick(objs, n, p, vals[pick], vp_u01d(r.v[2], r.v[3]));
      if (chosen < 0) w[pick] = 0;
    }
  }
  int32_t lo[3] = {0, 0, 0}, hi[3];
  for (int a = 0; a < 3; a++) hi[a] = (int32_t)p->shape[a];
  *cls = p->background;
  if (chosen >= 0) {
    for (int a = 0; a < 3; a++) lo[a] = objs[chosen].lo[a], hi[a] = objs[chosen].hi[a];
    *cls = objs[chosen].value;
  }
  const int nd = p->ndim, a0 = 3 - nd;
  for (int a = 0; a < nd; a++) {
    box[a] = lo[a0 + a];
    box[nd + a] = p->format == VP_OBB_ANCHOR_SHAPE ? hi[a0 + a] - lo[a0 + a] : hi[a0 + a];
  }
}

/* ---- random_crop_window ------------------------------------------------ */

enum { VP_CW_ROI, VP_CW_MASK_PIXEL, VP_CW_NNUNET, VP_CW_CLASS_RATIOS };

/* What a sample's voxel search looks for: nothing (uniform window),
 * value == v, or value > 0. */
enum { VP_CW_MATCH_NONE, VP_CW_MATCH_EQ, VP_CW_MATCH_POS };

typedef struct vp_cw_sample {
  int64_t shape[3]; /* (D, H, W) */
  int64_t crop[3];
  int64_t roi_lo[3], roi_hi[3];
  int32_t ndim;
  int32_t mode;
  int32_t match;   /* VP_CW_MATCH_* after the class choice */
  int32_t forced;  /* nnunet: this sample must hold foreground */
  double value;    /* VP_CW_MATCH_EQ */
  uint32_t sample; /* counter sample index */
} vp_cw_sample;

/* Window start on one axis of extent n for a window of c voxels centred on
 * voxel v: v - c / 2 clamped to [0, n - c]; a window wider than the axis
 * is centred on it (the start is then negative: crop with a pad policy). */
VP_HD int64_t vp_cw_centre(int64_t v, int64_t c, int64_t n) {
  if (c > n) return -((c - n + 1) / 2);
  int64_t s = v - c / 2;
  return s < 0 ? 0 : (s > n - c ? n - c : s);
}

/* A uniform start in [0, n - c] (centred when c > n). */
VP_HD int64_t vp_cw_uniform(uint32_t word, int64_t c, int64_t n) {
  if (c > n) return -((c - n + 1) / 2);
  return vp_obb_index(vp_u01f(word), n - c + 1);
}

/* roi_random_crop on one axis: the window contains [lo, hi) when it is
 * smaller than the crop, else lies inside it; clamped to [0, n - c]. */
VP_HD int64_t vp_cw_roi(uint32_t word, int64_t lo, int64_t hi, int64_t c, int64_t n) {
  int64_t a, b; /* start range, inclusive */
  if (hi - lo <= c)
    a = hi - c, b = lo;
  else
    a = lo, b = hi - c;
  if (c <= n) {
    if (a < 0) a = 0;
    if (b > n - c) b = n - c;
    if (a > b) { /* the roi lies partly outside the volume: nearest valid start */
      int64_t s = a > n - c ? n - c : (a < 0 ? 0 : a);
      a = b = s;
    }
  } else {
    return -((c - n + 1) / 2);
  }
  return a + vp_obb_index(vp_u01f(word), b - a + 1);
}

/* The class pick of a crop sample: index into nv weights (<= 0: absent),
 * or -1 when all are absent. */
VP_HD int vp_cw_pick_class(const double *w, int nv, double u) {
  double total = 0;
  for (int c = 0; c < nv; c++) total += w[c] > 0 ? w[c] : 0;
  if (!(total > 0)) return -1;
  double x = u * total, cum = 0;
  int pick = -1;
  for (int c = 0; c < nv; c++) {
    if (!(w[c] > 0)) continue;
    cum += w[c];
    pick = c;
    if (x < cum) break;
  }
  return pick;
}

/* The class a crop sample looks for, from the histogram of its label
 * values 0..255 (hist[v]): nnunet's forced samples take a present
 * candidate uniformly, class_ratios by weight; nothing present (or a
 * sample that needs no class): s->match stays as it is (NONE for these
 * modes, the value test for mask_pixel). */
VP_HD void vp_cw_choose(vp_cw_sample *s, const int64_t *hist, const int32_t *values,
                        const double *weights, int nv, vp_rng_key key, uint32_t iteration) {
  if (s->mode != VP_CW_NNUNET && s->mode != VP_CW_CLASS_RATIOS) return;
  if (s->mode == VP_CW_NNUNET && !s->forced) return;
  double w[256];
  for (int c = 0; c < nv; c++)
    w[c] = hist[values[c]] > 0 ? (s->mode == VP_CW_NNUNET ? 1.0 : weights[c]) : 0.0;
  vp_u32x4 r = vp_rng_draw(key, iteration, s->sample, 0);
  int pick = vp_cw_pick_class(w, nv, vp_u01d(r.v[0], r.v[1]));
  if (pick >= 0) {
    s->match = VP_CW_MATCH_EQ;
    s->value = values[pick];
  }
}

VP_HD int vp_cw_matches(const vp_cw_sample *s, double v) {
  return s->match == VP_CW_MATCH_EQ ? v == s->value : (s->match == VP_CW_MATCH_POS && v > 0);
}

/* Anchor of a window from a chosen voxel (linear index in D*H*W) or, with
 * voxel < 0, drawn uniformly (words of element 1). */
VP_HD void vp_cw_anchor(const vp_cw_sample *s, int64_t voxel, vp_u32x4 r1, int64_t *anchor) {
  int64_t v[3];
  v[2] = voxel >= 0 ? voxel % s->shape[2] : 0;
  v[1] = voxel >= 0 ? (voxel / s->shape[2]) % s->shape[1] : 0;
  v[0] = voxel >= 0 ? voxel / (s->shape[2] * s->shape[1]) : 0;
  const int a0 = 3 - s->ndim;
  for (int a = 0; a < s->ndim; a++) {
    int k = a0 + a;
    if (s->mode == VP_CW_ROI)
      anchor[a] = vp_cw_roi(r1.v[a], s->roi_lo[k], s->roi_hi[k], s->crop[k], s->shape[k]);
    else if (voxel >= 0)
      anchor[a] = vp_cw_centre(v[k], s->crop[k], s->shape[k]);
    else
      anchor[a] = vp_cw_uniform(r1.v[a], s->crop[k], s->shape[k]);
  }
}

#ifdef VP_HAVE_CUDA
/* GPU bodies (src/cuda/object_bbox.cu). */

/* Sums of vp_objc_hash_word over each sample's bytes into sums[i] (device,
 * n values; the caller finishes with vp_objc_hash_final). */
vp_status vp_cuda_objc_hash(const void *const *data, const int64_t *nbytes, int64_t n,
                            uint64_t *sums_dev, void *stream);

/* Labels n volumes (multi-label, background p->background) and writes
 * their object lists: objs_dev[i * cap ...] and counts_dev[i] (counts may
 * exceed cap: the list is then cut, and the caller relabels with a larger
 * cap). */
typedef struct vp_obb_gpu_sample {
  const void *labels_in; /* D*H*W of the call's dtype */
  int64_t shape[3];
} vp_obb_gpu_sample;
vp_status vp_cuda_obb_objects(const vp_obb_gpu_sample *s, int64_t n, vp_dtype dtype,
                              int connectivity, double background, int64_t cap, vp_obj *objs_dev,
                              int64_t *counts_dev, void *stream);

/* vp_obb_select per sample on the device: lists[i] (device; NULL when
 * counts[i] = 0) with counts[i] objects, params[i] (host, uploaded here);
 * box[i] and cls[i] are device pointers (cls[i] may be NULL). */
vp_status vp_cuda_obb_select(const vp_obj *const *lists, const int64_t *counts,
                             const vp_obb_params *params, int64_t n, vp_rng_key key,
                             uint32_t iteration, const uint32_t *samples, int32_t *const *box,
                             int32_t *const *cls, void *stream);

/* random_crop_window on the device: vp_cw_choose per sample (nv class
 * values in 0..255 and weights, host arrays; nv = 0 for roi and
 * mask_pixel), then the voxel of rank floor(u * count) among the matching
 * ones (mask_pixel: among all voxels when none matches) by per-chunk
 * counts, a search of their prefix sums and a search in the chunk, then
 * vp_cw_anchor. anchor[i] and center[i]: device pointers to ndim int64. */
vp_status vp_cuda_crop_window(const vp_cw_sample *s, const void *const *labels, int64_t n,
                              vp_dtype dtype, const int32_t *values, const double *weights, int nv,
                              vp_rng_key key, uint32_t iteration, int64_t *const *anchor,
                              int64_t *const *center, void *stream);
#endif

#ifdef __cplusplus
}
#endif
#endif
