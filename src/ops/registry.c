/* The operator registry: one line per operator. */
#include <stdio.h>
#include <string.h>

#include "core/status.h"
#include "ops/op.h"

extern const vp_op_desc vp_op_flip, vp_op_slice, vp_op_cast, vp_op_gaussian_noise, vp_op_uniform,
    vp_op_normal, vp_op_coin_flip, vp_op_choice, vp_op_resize, vp_op_warp_affine;
/* transform builders (src/ops/transforms.c) */
extern const vp_op_desc vp_op_rot, vp_op_scale, vp_op_shear, vp_op_trans, vp_op_random,
    vp_op_combine;
/* spatial operators on the resampling engine */
extern const vp_op_desc vp_op_rotate, vp_op_zoom, vp_op_elastic, vp_op_elastic_grid,
    vp_op_random_spatial;
/* shape operators (pad, crop_or_pad and resample_spacing on the engine) */
extern const vp_op_desc vp_op_pad, vp_op_crop_or_pad, vp_op_transpose, vp_op_resample_spacing;
/* stencil intensity operators */
extern const vp_op_desc vp_op_bias_field, vp_op_erase, vp_op_gaussian_blur, vp_op_one_hot,
    vp_op_simulate_low_resolution;

/* connected components (src/ops/connected_components.c, component_filters.c) */
extern const vp_op_desc vp_op_connected_components, vp_op_keep_largest_components,
    vp_op_remove_small_objects;
/* foreground-biased cropping */
extern const vp_op_desc vp_op_random_crop_window, vp_op_random_object_bbox;

/* pointwise intensity operators on the pointwise engine (src/ops/intensity.c) */
extern const vp_op_desc vp_op_brightness, vp_op_brightness_shift, vp_op_clamp, vp_op_contrast,
    vp_op_ct_normalize, vp_op_gamma, vp_op_normalize, vp_op_normalize_masked, vp_op_rician_noise,
    vp_op_scale_intensity_range;

/* Alphabetical, so listings and docs/ops.md read in a stable order. */
static const vp_op_desc *const k_ops[] = {
    &vp_op_bias_field,
    &vp_op_brightness,
    &vp_op_brightness_shift,
    &vp_op_cast,
    &vp_op_choice,
    &vp_op_clamp,
    &vp_op_coin_flip,
    &vp_op_connected_components,
    &vp_op_contrast,
    &vp_op_crop_or_pad,
    &vp_op_ct_normalize,
    &vp_op_elastic,
    &vp_op_elastic_grid,
    &vp_op_erase,
    &vp_op_flip,
    &vp_op_gamma,
    &vp_op_gaussian_blur,
    &vp_op_gaussian_noise,
    &vp_op_keep_largest_components,
    &vp_op_normal,
    &vp_op_normalize,
    &vp_op_normalize_masked,
    &vp_op_one_hot,
    &vp_op_pad,
    &vp_op_random_crop_window,
    &vp_op_random_object_bbox,
    &vp_op_random_spatial,
    &vp_op_random,
    &vp_op_remove_small_objects,
    &vp_op_resample_spacing,
    &vp_op_resize,
    &vp_op_rician_noise,
    &vp_op_rotate,
    &vp_op_scale_intensity_range,
    &vp_op_simulate_low_resolution,
    &vp_op_slice,
    &vp_op_combine,
    &vp_op_rot,
    &vp_op_scale,
    &vp_op_shear,
    &vp_op_trans,
    &vp_op_transpose,
    &vp_op_uniform,
    &vp_op_warp_affine,
    &vp_op_zoom,
};
#define NUM_OPS ((int)(sizeof k_ops / sizeof k_ops[0]))

int vp_op_registry_count(void) { return NUM_OPS; }

const vp_op_desc *vp_op_registry_at(int i) { return i >= 0 && i < NUM_OPS ? k_ops[i] : NULL; }

int vp_ops_count(void) { return NUM_OPS; }

const char *vp_ops_name(int i) { return i >= 0 && i < NUM_OPS ? k_ops[i]->name : NULL; }

/* Optimal string alignment distance (edits, adjacent swaps count one),
 * capped: names longer than 63 characters are never close. */
static int edit_distance(const char *a, const char *b) {
  int n = (int)strlen(a), m = (int)strlen(b);
  if (n > 63 || m > 63) return 99;
  int d[64][64];
  for (int i = 0; i <= n; i++) d[i][0] = i;
  for (int j = 0; j <= m; j++) d[0][j] = j;
  for (int i = 1; i <= n; i++) {
    for (int j = 1; j <= m; j++) {
      int cost = a[i - 1] != b[j - 1];
      int v = d[i - 1][j] + 1;
      if (d[i][j - 1] + 1 < v) v = d[i][j - 1] + 1;
      if (d[i - 1][j - 1] + cost < v) v = d[i - 1][j - 1] + cost;
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < v)
        v = d[i - 2][j - 2] + 1;
      d[i][j] = v;
    }
  }
  return d[n][m];
}

const vp_op_desc *vp_op_lookup(const char *name) {
  if (!name) {
    vp_fail(VP_ERR_INVALID_ARG, "operator name is NULL");
    return NULL;
  }
  for (int i = 0; i < NUM_OPS; i++)
    if (!strcmp(k_ops[i]->name, name)) return k_ops[i];
  /* Suggest names within a third of the name's length in edits, or names
   * that contain it ("noise" -> gaussian_noise). */
  char close[256] = "";
  size_t used = 0;
  int limit = (int)strlen(name) / 3 + 1;
  for (int i = 0; i < NUM_OPS; i++) {
    const char *cand = k_ops[i]->name;
    if (edit_distance(name, cand) > limit && !(name[0] && strstr(cand, name))) continue;
    int w = snprintf(close + used, sizeof close - used, "%s%s", used ? ", " : "", cand);
    if (w < 0 || (size_t)w >= sizeof close - used) break;
    used += (size_t)w;
  }
  if (used)
    vp_fail(VP_ERR_INVALID_ARG, "unknown operator '%s' (did you mean %s?)", name, close);
  else
    vp_fail(VP_ERR_INVALID_ARG, "unknown operator '%s' ('voxpipe ops' lists them)", name);
  return NULL;
}

int vp_op_arg_index(const vp_op_desc *op, const char *name) {
  if (!op || !name) return -1;
  for (int a = 0; a < op->num_args; a++)
    if (!strcmp(op->args[a].name, name)) return a;
  return -1;
}

vp_rng_key vp_op_eager_key(const vp_op_desc *op, uint64_t seed) {
  uint32_t h = 2166136261u; /* FNV-1a: stable across registry changes */
  for (const char *p = op->name; *p; p++) h = (h ^ (uint8_t)*p) * 16777619u;
  return vp_rng_key_make(seed, h);
}
