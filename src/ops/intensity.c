/* The intensity operators: clamp, scale_intensity_range, normalize,
 * ct_normalize, brightness, brightness_shift, contrast, gamma and
 * rician_noise. Each is one stage of the pointwise engine (pointwise.h):
 * its hook describes sample i's action, and its bodies run the chain of
 * one, so a pipeline can fuse any run of them into one pass.
 *
 * Random operators change a sample with probability p, decided by
 * vp_pw_applies (the draw gaussian_noise has always used); a sample left
 * alone is copied (or only cast to the output dtype). */
#include <math.h>
#include <string.h>

#include "core/status.h"
#include "core/tensor.h"
#include "ops/pointwise.h"

#define BIG 1e300
#define P_ARG                                                                                   \
  {"p", VP_ARG_FLOAT, "1", 0, 1, 0, NULL, VP_ARG_PER_SAMPLE,                                    \
   "probability that a sample is changed (else it is copied unchanged)"}

static double num(const vp_op_call *c, int a, int64_t i) { return vp_arg_num(c->args, a, i); }

static vp_dtype in_dtype(const vp_op_call *c, int64_t i) { return c->in[0][i]->dtype; }

/* run_cpu/run_gpu of operator NAME: the engine on a chain of one. */
#define PW_BODIES(NAME)                                                       \
  extern const vp_op_desc vp_op_##NAME;                                       \
  static inline vp_status NAME##_cpu(const vp_op_call *c) {                        \
    return vp_pw_run_cpu_one(&vp_op_##NAME, c);                               \
  }                                                                           \
  static inline vp_status NAME##_gpu(const vp_op_call *c) {                        \
    return vp_pw_run_gpu_one(&vp_op_##NAME, c);                               \
  }                                                                           \
  static inline vp_status NAME##_infer_same(const vp_op_call *c, int64_t i, vp_out_spec *o) { \
    return vp_pw_infer_same_shape(c, i, in_dtype(c, i), o);                   \
  }

/* ---------------------------------------------------------------- */
/* clamp                                                             */

PW_BODIES(clamp)
static const vp_arg_spec k_clamp_args[] = {
    {"lo", VP_ARG_FLOAT, "-1e300", -BIG, BIG, 0, NULL, VP_ARG_PER_SAMPLE, "lower bound"},
    {"hi", VP_ARG_FLOAT, "1e300", -BIG, BIG, 0, NULL, VP_ARG_PER_SAMPLE, "upper bound"},
};
static vp_status clamp_stage(const vp_op_call *c, int64_t i, vp_pw_stage *st) {
  double lo = num(c, 0, i), hi = num(c, 1, i);
  if (lo > hi)
    return vp_fail(VP_ERR_INVALID_ARG, "clamp: sample %lld: lo %g is above hi %g", (long long)i,
                   lo, hi);
  vp_pw_stage_init(st, in_dtype(c, i));
  st->kind = VP_PW_AFFINE;
  st->lo1 = lo;
  st->hi1 = hi;
  return VP_OK;
}
const vp_op_desc vp_op_clamp = {
    .name = "clamp",
    .doc = "Clamps each value to [lo, hi].",
    .num_inputs = 1, .num_outputs = 1, .inputs = {"input"}, .outputs = {"output"},
    .args = k_clamp_args, .num_args = 2,
    .infer = clamp_infer_same, .run_cpu = clamp_cpu, .run_gpu = clamp_gpu,
    .pointwise = clamp_stage,
};

/* ---------------------------------------------------------------- */
/* scale_intensity_range (MONAI's ScaleIntensityRange)               */

PW_BODIES(scale_intensity_range)
enum { SIR_AMIN, SIR_AMAX, SIR_BMIN, SIR_BMAX, SIR_CLIP, SIR_DTYPE };
static const vp_arg_spec k_sir_args[] = {
    {"a_min", VP_ARG_FLOAT, NULL, -BIG, BIG, 0, NULL, VP_ARG_PER_SAMPLE, "input value mapped to b_min"},
    {"a_max", VP_ARG_FLOAT, NULL, -BIG, BIG, 0, NULL, VP_ARG_PER_SAMPLE, "input value mapped to b_max"},
    {"b_min", VP_ARG_FLOAT, "0", -BIG, BIG, 0, NULL, VP_ARG_PER_SAMPLE, "output for a_min"},
    {"b_max", VP_ARG_FLOAT, "1", -BIG, BIG, 0, NULL, VP_ARG_PER_SAMPLE, "output for a_max"},
    {"clip", VP_ARG_BOOL, "false", 0, 1, 0, NULL, 0, "clip the result to [b_min, b_max]"},
    {"dtype", VP_ARG_DTYPE, "\"float32\"", 0, 0, 0, NULL, 0, "output dtype"},
};
static vp_status sir_infer(const vp_op_call *c, int64_t i, vp_out_spec *o) {
  return vp_pw_infer_same_shape(c, i, (vp_dtype)(int)num(c, SIR_DTYPE, 0), o);
}
static vp_status sir_stage(const vp_op_call *c, int64_t i, vp_pw_stage *st) {
  double a0 = num(c, SIR_AMIN, i), a1 = num(c, SIR_AMAX, i);
  double b0 = num(c, SIR_BMIN, i), b1 = num(c, SIR_BMAX, i);
  vp_pw_stage_init(st, (vp_dtype)(int)num(c, SIR_DTYPE, 0));
  st->kind = VP_PW_AFFINE;
  st->sub = a0;
  /* a_min == a_max: MONAI shifts only (x - a_min + b_min) */
  st->mul = a1 != a0 ? (b1 - b0) / (a1 - a0) : 1;
  st->add = b0;
  if (num(c, SIR_CLIP, 0)) {
    st->lo1 = b0 < b1 ? b0 : b1;
    st->hi1 = b0 < b1 ? b1 : b0;
  }
  return VP_OK;
}
const vp_op_desc vp_op_scale_intensity_range = {
    .name = "scale_intensity_range",
    .doc = "Maps [a_min, a_max] linearly onto [b_min, b_max], optionally clipped (MONAI's "
           "ScaleIntensityRange).",
    .num_inputs = 1, .num_outputs = 1, .inputs = {"input"}, .outputs = {"output"},
    .args = k_sir_args, .num_args = 6,
    .infer = sir_infer, .run_cpu = scale_intensity_range_cpu,
    .run_gpu = scale_intensity_range_gpu, .pointwise = sir_stage,
};

/* ---------------------------------------------------------------- */
/* normalize                                                         */

PW_BODIES(normalize)
enum { NRM_STATS, NRM_NONZERO, NRM_MEAN, NRM_STD, NRM_DTYPE };
enum { STATS_GIVEN, STATS_SAMPLE, STATS_CHANNEL };
/* normalize's arguments, which normalize_masked shares (and extends) */
#define NORM_ARGS                                                                               \
  {"stats", VP_ARG_ENUM, "\"channel\"", 0, 0, 0, "given|sample|channel", 0,                      \
   "z-score with the given mean and std, or with the sample's (all channels together) or "     \
   "each channel's (axis 0 of a 4-D sample) own mean and std (ddof 0, std floored at 1e-8)"},  \
  {"nonzero", VP_ARG_BOOL, "false", 0, 1, 0, NULL, 0,                                           \
   "statistics over the nonzero voxels only, which stay 0 (nnU-Net's MRI scheme)"},             \
  {"mean", VP_ARG_FLOAT, "0", -BIG, BIG, 0, NULL, VP_ARG_PER_SAMPLE, "stats=given: the mean"},  \
  {"std", VP_ARG_FLOAT, "1", 1e-30, BIG, 0, NULL, VP_ARG_PER_SAMPLE,                            \
   "stats=given: the standard deviation"},                                                      \
  {"dtype", VP_ARG_DTYPE, "\"float32\"", 0, 0, 0, NULL, 0, "output dtype"}
static const vp_arg_spec k_norm_args[] = {NORM_ARGS};
static vp_status norm_infer(const vp_op_call *c, int64_t i, vp_out_spec *o) {
  return vp_pw_infer_same_shape(c, i, (vp_dtype)(int)num(c, NRM_DTYPE, 0), o);
}
static vp_status norm_stage(const vp_op_call *c, int64_t i, vp_pw_stage *st) {
  vp_pw_stage_init(st, (vp_dtype)(int)num(c, NRM_DTYPE, 0));
  st->kind = VP_PW_AFFINE;
  int mode = (int)num(c, NRM_STATS, 0), nonzero = num(c, NRM_NONZERO, 0) != 0;
  if (nonzero) st->flags |= VP_PW_KEEP_ZERO;
  if (mode == STATS_GIVEN) {
    st->sub = num(c, NRM_MEAN, i);
    st->mul = 1.0 / num(c, NRM_STD, i);
  } else {
    st->from = VP_PWF_ZSCORE;
    st->stats = VP_PW_STAT_MEAN | VP_PW_STAT_STD | (mode == STATS_CHANNEL ? VP_PW_STAT_CHANNEL : 0) |
                (nonzero ? VP_PW_STAT_NONZERO : 0);
  }
  return VP_OK;
}
const vp_op_desc vp_op_normalize = {
    .name = "normalize",
    .doc = "Z-scores each sample: (x - mean) / std, with given or computed statistics (per "
           "sample or per channel, optionally over nonzero voxels).",
    .num_inputs = 1, .num_outputs = 1, .inputs = {"input"}, .outputs = {"output"},
    .args = k_norm_args, .num_args = 5,
    .infer = norm_infer, .run_cpu = normalize_cpu, .run_gpu = normalize_gpu,
    .pointwise = norm_stage,
};

/* ---------------------------------------------------------------- */
/* normalize_masked: normalize with a second input, the mask            */

PW_BODIES(normalize_masked)
enum { NRM_OUTSIDE = NRM_DTYPE + 1 };
static const vp_arg_spec k_norm_masked_args[] = {
    NORM_ARGS,
    {"outside", VP_ARG_ENUM, "\"zero\"", 0, 0, 0, "zero|keep", 0,
     "voxels outside the mask: set to 0 (nnU-Net's use_mask_for_norm) or kept (cast to dtype)"},
};
static vp_status norm_masked_stage(const vp_op_call *c, int64_t i, vp_pw_stage *st) {
  VP_TRY(norm_stage(c, i, st));
  if (!c->in[1] || !c->in[1][i])
    return vp_fail(VP_ERR_INVALID_ARG, "normalize_masked: sample %lld has no mask", (long long)i);
  st->mask = c->in[1][i];
  st->mask_mode = num(c, NRM_OUTSIDE, 0) ? VP_PW_MASK_KEEP : VP_PW_MASK_ZERO;
  return VP_OK;
}
const vp_op_desc vp_op_normalize_masked = {
    .name = "normalize_masked",
    .doc = "normalize over the voxels where mask (the input's spatial shape, 1 or C channels, "
           "any dtype) is not 0; the others set to 0 or kept (nnU-Net's use_mask_for_norm).",
    .num_inputs = 2, .num_outputs = 1, .inputs = {"input", "mask"}, .outputs = {"output"},
    .args = k_norm_masked_args, .num_args = 6,
    .infer = norm_infer, .run_cpu = normalize_masked_cpu, .run_gpu = normalize_masked_gpu,
    .pointwise = norm_masked_stage,
};

/* ---------------------------------------------------------------- */
/* ct_normalize (MLPerf UNet3D's KiTS19 preprocessing)               */

PW_BODIES(ct_normalize)
enum { CT_LO, CT_HI, CT_MEAN, CT_STD, CT_DTYPE };
static const vp_arg_spec k_ct_args[] = {
    {"lo", VP_ARG_FLOAT, "-79", -BIG, BIG, 0, NULL, VP_ARG_PER_SAMPLE, "clip below (HU)"},
    {"hi", VP_ARG_FLOAT, "304", -BIG, BIG, 0, NULL, VP_ARG_PER_SAMPLE, "clip above (HU)"},
    {"mean", VP_ARG_FLOAT, "101", -BIG, BIG, 0, NULL, VP_ARG_PER_SAMPLE, "dataset mean"},
    {"std", VP_ARG_FLOAT, "76.9", 1e-30, BIG, 0, NULL, VP_ARG_PER_SAMPLE, "dataset std"},
    {"dtype", VP_ARG_DTYPE, "\"float32\"", 0, 0, 0, NULL, 0, "output dtype"},
};
static vp_status ct_infer(const vp_op_call *c, int64_t i, vp_out_spec *o) {
  return vp_pw_infer_same_shape(c, i, (vp_dtype)(int)num(c, CT_DTYPE, 0), o);
}
static vp_status ct_stage(const vp_op_call *c, int64_t i, vp_pw_stage *st) {
  double lo = num(c, CT_LO, i), hi = num(c, CT_HI, i);
  if (lo > hi)
    return vp_fail(VP_ERR_INVALID_ARG, "ct_normalize: sample %lld: lo %g is above hi %g",
                   (long long)i, lo, hi);
  vp_pw_stage_init(st, (vp_dtype)(int)num(c, CT_DTYPE, 0));
  st->kind = VP_PW_AFFINE;
  st->lo0 = lo;
  st->hi0 = hi;
  st->sub = num(c, CT_MEAN, i);
  st->mul = 1.0 / num(c, CT_STD, i);
  return VP_OK;
}
const vp_op_desc vp_op_ct_normalize = {
    .name = "ct_normalize",
    .doc = "Clips to [lo, hi], then (x - mean) / std with dataset statistics (defaults: "
           "MLPerf's KiTS19 -79, 304, 101, 76.9).",
    .num_inputs = 1, .num_outputs = 1, .inputs = {"input"}, .outputs = {"output"},
    .args = k_ct_args, .num_args = 5,
    .infer = ct_infer, .run_cpu = ct_normalize_cpu, .run_gpu = ct_normalize_gpu,
    .pointwise = ct_stage,
};

/* ---------------------------------------------------------------- */
/* brightness, brightness_shift                                      */

PW_BODIES(brightness)
static const vp_arg_spec k_bright_args[] = {
    {"factor", VP_ARG_FLOAT, "1", -BIG, BIG, 0, NULL, VP_ARG_PER_SAMPLE,
     "multiplier (a uniform(0.7, 1.3) node for nnU-Net's and MLPerf's augmentation)"},
    P_ARG,
};
static vp_status bright_stage(const vp_op_call *c, int64_t i, vp_pw_stage *st) {
  vp_pw_stage_init(st, in_dtype(c, i));
  if (!vp_pw_applies(c, i, num(c, 1, i))) return VP_OK;
  st->kind = VP_PW_AFFINE;
  st->mul = num(c, 0, i);
  return VP_OK;
}
const vp_op_desc vp_op_brightness = {
    .name = "brightness",
    .doc = "Multiplies each sample by factor with probability p.",
    .num_inputs = 1, .num_outputs = 1, .inputs = {"input"}, .outputs = {"output"},
    .args = k_bright_args, .num_args = 2, .random = 1,
    .infer = brightness_infer_same, .run_cpu = brightness_cpu, .run_gpu = brightness_gpu,
    .pointwise = bright_stage,
};

PW_BODIES(brightness_shift)
static const vp_arg_spec k_shift_args[] = {
    {"shift", VP_ARG_FLOAT, "0", -BIG, BIG, 0, NULL, VP_ARG_PER_SAMPLE, "value added"},
    P_ARG,
};
static vp_status shift_stage(const vp_op_call *c, int64_t i, vp_pw_stage *st) {
  vp_pw_stage_init(st, in_dtype(c, i));
  if (!vp_pw_applies(c, i, num(c, 1, i))) return VP_OK;
  st->kind = VP_PW_AFFINE;
  st->add = num(c, 0, i);
  return VP_OK;
}
const vp_op_desc vp_op_brightness_shift = {
    .name = "brightness_shift",
    .doc = "Adds shift to each sample with probability p.",
    .num_inputs = 1, .num_outputs = 1, .inputs = {"input"}, .outputs = {"output"},
    .args = k_shift_args, .num_args = 2, .random = 1,
    .infer = brightness_shift_infer_same, .run_cpu = brightness_shift_cpu,
    .run_gpu = brightness_shift_gpu, .pointwise = shift_stage,
};

/* ---------------------------------------------------------------- */
/* contrast (nnU-Net's ContrastAugmentationTransform)                */

PW_BODIES(contrast)
enum { CON_FACTOR, CON_P, CON_PER_CHANNEL, CON_PRESERVE };
static const vp_arg_spec k_contrast_args[] = {
    {"factor", VP_ARG_FLOAT, "1", -BIG, BIG, 0, NULL, VP_ARG_PER_SAMPLE,
     "contrast factor around the mean (nnU-Net: uniform(0.65, 1.5))"},
    P_ARG,
    {"per_channel", VP_ARG_BOOL, "true", 0, 1, 0, NULL, 0,
     "mean (and range) per channel, as nnU-Net; else over the whole sample"},
    {"preserve_range", VP_ARG_BOOL, "true", 0, 1, 0, NULL, 0,
     "clamp the result to the input's [min, max] (of the channel or sample)"},
};
static vp_status contrast_stage(const vp_op_call *c, int64_t i, vp_pw_stage *st) {
  vp_pw_stage_init(st, in_dtype(c, i));
  if (!vp_pw_applies(c, i, num(c, CON_P, i))) return VP_OK;
  st->kind = VP_PW_AFFINE;
  st->mul = num(c, CON_FACTOR, i);
  st->from = VP_PWF_CONTRAST;
  st->stats = VP_PW_STAT_MEAN | (num(c, CON_PER_CHANNEL, 0) ? VP_PW_STAT_CHANNEL : 0);
  if (num(c, CON_PRESERVE, 0)) {
    st->flags |= VP_PW_PRESERVE_RANGE;
    st->stats |= VP_PW_STAT_MINMAX;
  }
  return VP_OK;
}
const vp_op_desc vp_op_contrast = {
    .name = "contrast",
    .doc = "(x - mean) * factor + mean, clamped to the input's [min, max], with probability p "
           "(nnU-Net's contrast augmentation).",
    .num_inputs = 1, .num_outputs = 1, .inputs = {"input"}, .outputs = {"output"},
    .args = k_contrast_args, .num_args = 4, .random = 1,
    .infer = contrast_infer_same, .run_cpu = contrast_cpu, .run_gpu = contrast_gpu,
    .pointwise = contrast_stage,
};

/* ---------------------------------------------------------------- */
/* gamma (nnU-Net's GammaTransform)                                  */

PW_BODIES(gamma)
enum { GAM_GAMMA, GAM_P, GAM_INVERT, GAM_RETAIN, GAM_PER_CHANNEL, GAM_EPS };
static const vp_arg_spec k_gamma_args[] = {
    {"gamma", VP_ARG_FLOAT, "1", 1e-6, 1e6, 0, NULL, VP_ARG_PER_SAMPLE,
     "exponent (nnU-Net: uniform(0.7, 1.5))"},
    P_ARG,
    {"invert", VP_ARG_BOOL, "false", 0, 1, 0, NULL, 0,
     "apply to the negated image and negate back (nnU-Net's invert_image)"},
    {"retain_stats", VP_ARG_BOOL, "false", 0, 1, 0, NULL, 0,
     "restore the input's mean and std afterwards"},
    {"per_channel", VP_ARG_BOOL, "false", 0, 1, 0, NULL, 0,
     "range (and statistics) per channel; else over the whole sample, as nnU-Net"},
    {"epsilon", VP_ARG_FLOAT, "1e-7", 0, 1, 0, NULL, 0, "added to the range before dividing"},
};
static vp_status gamma_stage(const vp_op_call *c, int64_t i, vp_pw_stage *st) {
  vp_pw_stage_init(st, in_dtype(c, i));
  if (num(c, GAM_RETAIN, 0)) st->flags |= VP_PW_RETAIN_STATS; /* steps even when left alone */
  if (!vp_pw_applies(c, i, num(c, GAM_P, i))) return VP_OK;
  st->kind = VP_PW_GAMMA;
  st->gamma = num(c, GAM_GAMMA, i);
  st->epsilon = num(c, GAM_EPS, 0);
  st->from = VP_PWF_GAMMA;
  st->stats = VP_PW_STAT_MINMAX | (num(c, GAM_PER_CHANNEL, 0) ? VP_PW_STAT_CHANNEL : 0);
  if (num(c, GAM_INVERT, 0)) st->flags |= VP_PW_INVERT;
  return VP_OK;
}
const vp_op_desc vp_op_gamma = {
    .name = "gamma",
    .doc = "((x - min) / (range + eps))^gamma * range + min with probability p, optionally "
           "inverted and restoring mean and std (nnU-Net's gamma augmentation).",
    .num_inputs = 1, .num_outputs = 1, .inputs = {"input"}, .outputs = {"output"},
    .args = k_gamma_args, .num_args = 6, .random = 1,
    .infer = gamma_infer_same, .run_cpu = gamma_cpu, .run_gpu = gamma_gpu,
    .pointwise = gamma_stage,
};

/* ---------------------------------------------------------------- */
/* rician_noise (MONAI's RandRicianNoise)                            */

PW_BODIES(rician_noise)
static const vp_arg_spec k_rician_args[] = {
    {"mean", VP_ARG_FLOAT, "0", -BIG, BIG, 0, NULL, VP_ARG_PER_SAMPLE, "mean of both Gaussians"},
    {"stddev", VP_ARG_FLOAT, "1", 0, BIG, 0, NULL, VP_ARG_PER_SAMPLE,
     "standard deviation of both Gaussians"},
    P_ARG,
};
static vp_status rician_stage(const vp_op_call *c, int64_t i, vp_pw_stage *st) {
  vp_pw_stage_init(st, in_dtype(c, i));
  if (!vp_pw_applies(c, i, num(c, 2, i))) return VP_OK;
  st->kind = VP_PW_RICIAN;
  st->mean = num(c, 0, i);
  st->stddev = num(c, 1, i);
  st->key = c->key;
  st->iteration = c->iteration;
  st->sample = c->sample_base + (uint32_t)i;
  return VP_OK;
}
const vp_op_desc vp_op_rician_noise = {
    .name = "rician_noise",
    .doc = "sqrt((x + n1)^2 + n2^2) with n1, n2 ~ N(mean, stddev^2) per voxel, with probability "
           "p (MONAI's RandRicianNoise).",
    .num_inputs = 1, .num_outputs = 1, .inputs = {"input"}, .outputs = {"output"},
    .args = k_rician_args, .num_args = 3, .random = 1,
    .infer = rician_noise_infer_same, .run_cpu = rician_noise_cpu,
    .run_gpu = rician_noise_gpu, .pointwise = rician_stage,
};
