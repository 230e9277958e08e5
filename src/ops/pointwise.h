/* The pointwise engine: one pass over the voxels for a chain of pointwise
 * operators (cast, clamp, normalize, brightness, contrast, gamma, noise...).
 *
 * Each pointwise operator's descriptor has a `pointwise` hook that
 * describes its action on one sample as a stage (vp_pw_stage); its run_cpu
 * and run_gpu are vp_pointwise_run of a chain of one. The pipeline executor
 * fuses consecutive pointwise nodes by calling vp_pointwise_run on the
 * chain: intermediates are never materialised.
 *
 * Exactness: every stage rounds its result to its operator's output dtype,
 * and computes in float when its input and output dtypes are both float16
 * or float32, in double otherwise (integers, float64), the same on CPU and
 * GPU; so a fused chain gives the bytes of the same chain run op by op (on
 * the CPU; the GPU agrees to float rounding: its sums run in another order
 * and its powf/logf differ by ulps).
 *
 * Statistics: a stage that needs statistics of its input (mean, std, min,
 * max; per sample or per channel; over all or nonzero voxels) costs one
 * reduction pass over the chain's input that evaluates the stages before it
 * on the fly (per sample and channel, in fixed chunks combined in a fixed
 * order: the result does not depend on threads); a final pass then reads
 * the input once and writes the output once. Samples whose stage does not
 * apply (p) are left out of the reduction. */
#ifndef VP_OPS_POINTWISE_H
#define VP_OPS_POINTWISE_H

#include "cuda/pointwise.h"
#include "ops/op.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Stage kinds. */
typedef enum vp_pw_kind {
  VP_PW_IDENTITY = VP_PWK_IDENTITY, /* only rounds to `out` (cast; p left the sample alone) */
  VP_PW_AFFINE = VP_PWK_AFFINE,     /* clamp(x, lo0, hi0); (x - sub) * mul + add; clamp(lo1, hi1) */
  VP_PW_GAMMA = VP_PWK_GAMMA,       /* nnU-Net's gamma over the input's range */
  VP_PW_GAUSSIAN = VP_PWK_GAUSSIAN, /* x + mean + stddev * z */
  VP_PW_RICIAN = VP_PWK_RICIAN      /* sqrt((x + n1)^2 + n2^2), n ~ N(mean, stddev^2) */
} vp_pw_kind;

/* Stage flags. */
#define VP_PW_KEEP_ZERO 1u    /* AFFINE: a 0 input stays 0 (normalize over nonzero voxels) */
#define VP_PW_INVERT 2u       /* GAMMA: on -x, result negated back (nnU-Net's invert_image) */
#define VP_PW_RETAIN_STATS 4u /* GAMMA: restore the input's mean and std afterwards */
#define VP_PW_PRESERVE_RANGE 8u /* CONTRAST: clamp to the input's [min, max] */

/* One operator's action on one sample, filled by its hook. */
typedef struct vp_pw_stage {
  vp_pw_kind kind;
  vp_dtype out;    /* the operator's output dtype for this sample */
  unsigned flags;  /* VP_PW_KEEP_ZERO ... */
  /* Parameters from statistics of the stage's input: VP_PWF_NONE,
   * VP_PWF_ZSCORE (AFFINE), VP_PWF_CONTRAST (AFFINE, mul = factor),
   * VP_PWF_GAMMA (GAMMA). */
  int from;
  unsigned stats; /* VP_PW_STAT_* flags: which statistics, and over what */
  double sub, mul, add, lo0, hi0, lo1, hi1; /* AFFINE (lo/hi: +-INFINITY for none) */
  double gamma, epsilon;                    /* GAMMA */
  double mean, stddev;                      /* GAUSSIAN, RICIAN */
  /* GAUSSIAN, RICIAN: the operator's own draws (its key and iteration,
   * counter sample index; element = the voxel's linear index in the sample) */
  vp_rng_key key;
  uint32_t iteration, sample;
  /* AFFINE: only the voxels where `mask` is not 0 take part (statistics and
   * the affine map); the others are kept or set to 0 (mask_mode
   * VP_PW_MASK_KEEP / VP_PW_MASK_ZERO). The mask has the input's spatial
   * shape and 1 channel (shared by all) or the input's channels; the engine
   * checks it. NULL: no mask. */
  const vp_tensor *mask;
  int mask_mode;
} vp_pw_stage;

/* A stage that does nothing but round to `out` (and the AFFINE defaults:
 * sub 0, mul 1, add 0, no clamps), for hooks to start from. */
void vp_pw_stage_init(vp_pw_stage *st, vp_dtype out);

/* Whether operator c's sample i is changed, with probability `p`: the draw
 * vp_u01f(word 0 of vp_rng_draw(key, iteration, sample_base + i, 2^64 - 1))
 * < p, which gaussian_noise has always used (element counters never reach
 * 2^64 - 1). */
int vp_pw_applies(const vp_op_call *c, int64_t i, double p);

/* Runs the chain ops[0..n-1] (1 <= n <= VP_PW_MAX_OPS) on the CPU (gpu = 0)
 * or on the GPU of the calls' stream. calls[k] carries op k's args, key and
 * iteration (batch, sample_base, pool, stream, device are taken from
 * calls[0]); calls[0].in[0] is the chain's input batch and calls[n-1].out[0]
 * its output batch, allocated by the caller from the ops' infer in turn.
 * calls[k].in and .out for the other k are ignored (may be NULL): each hook
 * sees a call whose in[0] are data-less views with the previous stage's
 * dtype and the input's shape. */
#define VP_PW_MAX_OPS 16
vp_status vp_pointwise_run(const vp_op_desc *const *ops, const vp_op_call *calls, int n, int gpu);

/* The chain's output specs (spec[i * VP_OP_MAX_IO], batch = calls[0].batch):
 * each op's infer in turn on data-less views (src/ops/pointwise_chain.c). */
vp_status vp_pointwise_infer(const vp_op_desc *const *ops, const vp_op_call *calls, int n,
                             vp_out_spec *spec);

/* Data-less views of in[0..B) (dtype, shape, device, geometry) for the
 * stages' hooks: *views and *ptrs (ptrs[i] = &views[i]) are allocated
 * here, freed by the caller with free(). */
vp_status vp_pw_views(vp_tensor *const *in, int64_t B, struct vp_tensor **views, vp_tensor ***ptrs);

/* pass[i] = whether the chain leaves sample i as it is (every stage the
 * identity on its dtype: p left it alone, a cast to the dtype it has), from
 * the stages' hooks on data-less views (batch = calls[0].batch). */
vp_status vp_pointwise_passes(const vp_op_desc *const *ops, const vp_op_call *calls, int n,
                              int *pass);

/* Fusible: the op has a pointwise hook, one tensor input and one output.
 * (An op with a pointwise hook and a second input, normalize_masked, runs
 * on the engine alone: the pipeline does not fuse it.) */
int vp_op_is_pointwise(const vp_op_desc *op);

/* run_cpu / run_gpu of a pointwise operator: the chain of one. */
vp_status vp_pw_run_cpu_one(const vp_op_desc *op, const vp_op_call *c);
vp_status vp_pw_run_gpu_one(const vp_op_desc *op, const vp_op_call *c);

/* infer of an operator whose output has its input's shape and `dtype`. */
vp_status vp_pw_infer_same_shape(const vp_op_call *c, int64_t i, vp_dtype dtype, vp_out_spec *out);

#ifdef __cplusplus
}
#endif
#endif
