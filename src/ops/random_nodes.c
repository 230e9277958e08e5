/* Random value sources: uniform, normal, coin_flip, choice. No inputs; each
 * sample gets its own values (of `shape`, a scalar by default), typically
 * the per-sample arguments of other operators. CPU only.
 *
 * Element e of sample s (counter sample index sample_base + s) reads
 * r = vp_rng_draw(key, iteration, s, ...):
 * - uniform, choice: u = vp_u01d(r[2j], r[2j+1]) of draw e / 2, j = e % 2;
 * - normal: vp_normal2f(r[0], r[1]) of draw e / 4 gives elements 4k and
 *   4k+1, vp_normal2f(r[2], r[3]) gives 4k+2 and 4k+3 (gaussian_noise's
 *   layout);
 * - coin_flip: u = vp_u01f(r[e % 4]) of draw e / 4, value u < probability. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/convert.h"
#include "core/status.h"
#include "core/tensor.h"
#include "ops/op.h"

typedef enum kind { K_UNIFORM, K_NORMAL, K_COIN, K_CHOICE } kind;

#define BIG 1e30
#define SHAPE_ARG(def_dtype)                                                              \
  {"shape", VP_ARG_INTS, "[]", 0, 2147483647.0, VP_MAX_NDIM, NULL,                        \
   VP_ARG_PER_SAMPLE | VP_ARG_EMPTY_OK, "shape of each sample's output; [] = one scalar"}, \
  {                                                                                       \
    "dtype", VP_ARG_DTYPE, def_dtype, 0, 0, 0, NULL, 0,                                   \
        "output dtype (values round and saturate into integer types)"                    \
  }

/* Argument 0 and 1 carry the distribution; shape and dtype follow. */
static const vp_arg_spec k_uniform_args[] = {
    {"range", VP_ARG_FLOATS, "[0, 1]", -BIG, BIG, 2, NULL, VP_ARG_PER_SAMPLE,
     "[lo, hi]: values are uniform in this interval"},
    SHAPE_ARG("\"float32\""),
};
static const vp_arg_spec k_normal_args[] = {
    {"mean", VP_ARG_FLOAT, "0", -BIG, BIG, 0, NULL, VP_ARG_PER_SAMPLE, "mean"},
    {"stddev", VP_ARG_FLOAT, "1", 0, BIG, 0, NULL, VP_ARG_PER_SAMPLE, "standard deviation"},
    SHAPE_ARG("\"float32\""),
};
static const vp_arg_spec k_coin_args[] = {
    {"probability", VP_ARG_FLOAT, "0.5", 0, 1, 0, NULL, VP_ARG_PER_SAMPLE,
     "probability of a 1 (else 0)"},
    SHAPE_ARG("\"int32\""),
};
static const vp_arg_spec k_choice_args[] = {
    {"values", VP_ARG_FLOATS, NULL, -BIG, BIG, VP_ARG_MAX_LEN, NULL, VP_ARG_PER_SAMPLE,
     "the values to choose from"},
    {"p", VP_ARG_FLOATS, "[]", 0, 1, VP_ARG_MAX_LEN, NULL, VP_ARG_PER_SAMPLE | VP_ARG_EMPTY_OK,
     "probability of each value (summing to 1); [] = all equally likely"},
    SHAPE_ARG("\"float32\""),
};

/* Index of the shape argument; dtype is the next. */
static int shape_arg(kind k) { return k == K_NORMAL || k == K_CHOICE ? 2 : 1; }

static const char *name_of(kind k) {
  static const char *names[] = {"uniform", "normal", "coin_flip", "choice"};
  return names[k];
}

static vp_status check_args(kind k, const vp_op_call *c, int64_t i) {
  if (k == K_UNIFORM) {
    const vp_arg_value *r = vp_arg(c->args, 0, i);
    if (r->len != 2 || !(r->v[0] <= r->v[1]))
      return vp_fail(VP_ERR_INVALID_ARG,
                     "uniform: argument 'range' of sample %lld must be [lo, hi] with lo <= hi",
                     (long long)i);
  } else if (k == K_CHOICE) {
    const vp_arg_value *v = vp_arg(c->args, 0, i), *p = vp_arg(c->args, 1, i);
    if (p->len == 0) return VP_OK;
    if (p->len != v->len)
      return vp_fail(VP_ERR_INVALID_ARG,
                     "choice: argument 'p' has %d values for %d values (sample %lld)", p->len,
                     v->len, (long long)i);
    double sum = 0;
    for (int j = 0; j < p->len; j++) sum += p->v[j];
    if (fabs(sum - 1.0) > 1e-6)
      return vp_fail(VP_ERR_INVALID_ARG, "choice: argument 'p' sums to %.9g, not 1 (sample %lld)",
                     sum, (long long)i);
  }
  return VP_OK;
}

static vp_status infer_kind(kind k, const vp_op_call *c, int64_t i, vp_out_spec *out) {
  VP_TRY(check_args(k, c, i));
  const vp_arg_value *shape = vp_arg(c->args, shape_arg(k), i);
  out->dtype = (vp_dtype)(int)vp_arg_num(c->args, shape_arg(k) + 1, i);
  out->ndim = shape->len;
  for (int a = 0; a < shape->len; a++) out->shape[a] = (int64_t)shape->v[a];
  return VP_OK;
}

/* Value of element e of sample i. */
static double draw(kind k, const vp_op_call *c, int64_t i, int64_t e) {
  const uint32_t s = c->sample_base + (uint32_t)i;
  switch (k) {
    case K_UNIFORM:
    case K_CHOICE: {
      vp_u32x4 r = vp_rng_draw(c->key, c->iteration, s, (uint64_t)e >> 1);
      int j = (int)(e & 1) * 2;
      double u = vp_u01d(r.v[j], r.v[j + 1]);
      if (k == K_UNIFORM) {
        const vp_arg_value *range = vp_arg(c->args, 0, i);
        return range->v[0] + (range->v[1] - range->v[0]) * u;
      }
      const vp_arg_value *vals = vp_arg(c->args, 0, i), *p = vp_arg(c->args, 1, i);
      if (p->len == 0) {
        int idx = (int)(u * vals->len);
        return vals->v[idx < vals->len ? idx : vals->len - 1];
      }
      /* the last value of nonzero probability takes the rounding slack */
      double cum = 0;
      int last = 0;
      for (int j2 = 0; j2 < p->len; j2++) {
        if (p->v[j2] <= 0) continue;
        last = j2;
        cum += p->v[j2];
        if (u < cum) return vals->v[j2];
      }
      return vals->v[last];
    }
    case K_NORMAL: {
      vp_u32x4 r = vp_rng_draw(c->key, c->iteration, s, (uint64_t)e >> 2);
      int j = (int)(e & 2);
      vp_f32x2 z = vp_normal2f(r.v[j], r.v[j + 1]);
      return vp_arg_num(c->args, 0, i) + vp_arg_num(c->args, 1, i) * (double)(e & 1 ? z.y : z.x);
    }
    case K_COIN: {
      vp_u32x4 r = vp_rng_draw(c->key, c->iteration, s, (uint64_t)e >> 2);
      return vp_u01f(r.v[e & 3]) < (float)vp_arg_num(c->args, 0, i) ? 1.0 : 0.0;
    }
  }
  return 0;
}

typedef struct rand_ctx {
  kind k;
  const vp_op_call *c;
} rand_ctx;

static vp_status fill_range(void *ctx, int64_t i, int64_t begin, int64_t end) {
  const rand_ctx *rc = ctx;
  vp_tensor *out = rc->c->out[0][i];
  for (int64_t e = begin; e < end; e++) vp_cvt_store(out->data, out->dtype, e, draw(rc->k, rc->c, i, e));
  return VP_OK;
}

static vp_status run_kind(kind k, const vp_op_call *c) {
  int64_t *units = malloc((size_t)c->batch * sizeof *units);
  if (!units) return vp_fail(VP_ERR_NOMEM, "%s: out of memory", name_of(k));
  for (int64_t i = 0; i < c->batch; i++) units[i] = vp_tensor_numel(c->out[0][i]);
  rand_ctx rc = {k, c};
  vp_status s = vp_op_parallel(c, units, 1 << 14, fill_range, &rc);
  free(units);
  return s;
}

#define RANDOM_OP(sym, K, opname, argv, nargs, docline)                                   \
  static vp_status sym##_infer(const vp_op_call *c, int64_t i, vp_out_spec *o) {          \
    return infer_kind(K, c, i, o);                                                        \
  }                                                                                       \
  static vp_status sym##_run(const vp_op_call *c) { return run_kind(K, c); }              \
  const vp_op_desc vp_op_##sym = {.name = opname,                                         \
                                  .doc = docline,                                         \
                                  .num_inputs = 0,                                        \
                                  .num_outputs = 1,                                       \
                                  .outputs = {"output"},                                  \
                                  .args = argv,                                           \
                                  .num_args = nargs,                                      \
                                  .random = 1,                                            \
                                  .infer = sym##_infer,                                   \
                                  .run_cpu = sym##_run};

RANDOM_OP(uniform, K_UNIFORM, "uniform", k_uniform_args, 3,
          "Per-sample values drawn uniformly from [lo, hi].")
RANDOM_OP(normal, K_NORMAL, "normal", k_normal_args, 4,
          "Per-sample values drawn from N(mean, stddev^2).")
RANDOM_OP(coin_flip, K_COIN, "coin_flip", k_coin_args, 3,
          "Per-sample 0/1 values, 1 with the given probability.")
RANDOM_OP(choice, K_CHOICE, "choice", k_choice_args, 4,
          "Per-sample values picked from a list, optionally with probabilities p.")
