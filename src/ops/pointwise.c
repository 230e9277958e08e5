/* The pointwise engine (see pointwise.h): builds the per-(sample, channel)
 * step table of a chain from its operators' hooks, then runs the statistics
 * passes and the final pass on the CPU, or hands the table to the GPU body
 * (src/cuda/pointwise.cu). */
#include "ops/pointwise.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "core/tensor.h"

#define MAX_STEPS (2 * VP_PW_MAX_OPS)

void vp_pw_stage_init(vp_pw_stage *st, vp_dtype out) {
  memset(st, 0, sizeof *st);
  st->kind = VP_PW_IDENTITY;
  st->out = out;
  st->from = VP_PWF_NONE;
  st->mul = 1;
  st->lo0 = st->lo1 = -INFINITY;
  st->hi0 = st->hi1 = INFINITY;
  st->epsilon = 1e-7;
}

int vp_pw_applies(const vp_op_call *c, int64_t i, double p) {
  if (p >= 1) return 1;
  vp_u32x4 r = vp_rng_draw(c->key, c->iteration, c->sample_base + (uint32_t)i, UINT64_MAX);
  return vp_u01f(r.v[0]) < (float)p;
}

int vp_op_is_pointwise(const vp_op_desc *op) {
  return op && op->pointwise && op->num_inputs == 1 && op->num_outputs == 1;
}

vp_status vp_pw_infer_same_shape(const vp_op_call *c, int64_t i, vp_dtype dtype,
                                 vp_out_spec *out) {
  const vp_tensor *t = c->in[0][i];
  out->dtype = dtype;
  out->ndim = t->ndim;
  memcpy(out->shape, t->shape, sizeof out->shape);
  return VP_OK;
}

static int is_float32ish(vp_dtype t) { return t == VP_F16 || t == VP_F32; }

/* Channels: axis 0 of a 4-D or 5-D sample ([C,] D, H, W), else one. */
static int64_t channels_of(const vp_tensor *t) {
  return t->ndim >= 4 && t->shape[0] > 0 ? t->shape[0] : 1;
}

typedef struct chain {
  int64_t B;
  int nsteps;
  vp_dtype in, out;
  vp_pw_sample *samples;
  vp_pw_step *table;
  int64_t table_len;
  uint8_t *need; /* B * nsteps */
  const char *name;
} chain;

static void chain_free(chain *ch) {
  free(ch->samples);
  free(ch->table);
  free(ch->need);
}

/* The steps of one operator's stage on one sample (1, or 2 for a gamma that
 * restores statistics); `count` is the operator's step count. */
static void stage_steps(const vp_pw_stage *st, vp_dtype din, int count, vp_pw_step *s) {
  memset(s, 0, (size_t)count * sizeof *s);
  for (int k = 0; k < count; k++) {
    s[k].kind = VP_PWK_IDENTITY;
    s[k].fp32 = is_float32ish(din) && is_float32ish(st->out);
    s[k].out = VP_PW_NO_ROUND;
    s[k].p[1] = 1;
    s[k].p[3] = s[k].p[5] = -INFINITY;
    s[k].p[4] = s[k].p[6] = INFINITY;
  }
  vp_pw_step *last = &s[count - 1];
  switch (st->kind) {
    case VP_PW_AFFINE:
      s->kind = VP_PWK_AFFINE;
      s->p[0] = st->sub;
      s->p[1] = st->mul;
      s->p[2] = st->add;
      s->p[3] = st->lo0;
      s->p[4] = st->hi0;
      s->p[5] = st->lo1;
      s->p[6] = st->hi1;
      s->keep_zero = (st->flags & VP_PW_KEEP_ZERO) != 0;
      s->clamp_stats = (st->flags & VP_PW_PRESERVE_RANGE) != 0;
      s->from = (uint8_t)st->from;
      s->stats = (uint8_t)st->stats;
      if (st->mask) {
        s->mask_mode = (uint8_t)st->mask_mode;
        s->mask_dtype = (int32_t)st->mask->dtype;
        s->mask = st->mask->data; /* set per channel by build */
      }
      break;
    case VP_PW_GAMMA:
      s->kind = VP_PWK_GAMMA;
      s->p[0] = (st->flags & VP_PW_INVERT) ? -1 : 1;
      s->p[4] = st->gamma;
      s->p[5] = st->epsilon;
      s->from = VP_PWF_GAMMA;
      s->stats = (uint8_t)(st->stats | VP_PW_STAT_MINMAX);
      if ((st->flags & VP_PW_RETAIN_STATS) && count > 1) {
        s->stats |= VP_PW_STAT_MEAN | VP_PW_STAT_STD;
        s[1].kind = VP_PWK_AFFINE;
        s[1].from = VP_PWF_RESTORE;
        s[1].stats = (uint8_t)((st->stats & (VP_PW_STAT_CHANNEL | VP_PW_STAT_NONZERO)) |
                               VP_PW_STAT_MEAN | VP_PW_STAT_STD);
      }
      break;
    case VP_PW_GAUSSIAN:
    case VP_PW_RICIAN:
      s->kind = st->kind == VP_PW_GAUSSIAN ? VP_PWK_GAUSSIAN : VP_PWK_RICIAN;
      s->p[0] = st->mean;
      s->p[1] = st->stddev;
      s->key = st->key;
      s->iteration = st->iteration;
      s->sample = st->sample;
      break;
    default: break;
  }
  if (st->kind != VP_PW_IDENTITY || din != st->out) last->out = (int8_t)st->out;
  for (int k = 0; k < count; k++) vp_pw_sync_f(&s[k]);
}

/* Checks stage `who`'s mask of sample i against the chain's input `in` of
 * C channels; *shared: one mask channel serves every channel. */
static vp_status check_mask(const char *who, int64_t i, const vp_tensor *in, int64_t C,
                            const vp_tensor *m, int gpu, int *shared) {
  const int has_c = in->ndim >= 4, sp_nd = in->ndim - has_c;
  const int lead = m->ndim - sp_nd;
  int ok = lead == 0 || (lead == 1 && (m->shape[0] == 1 || (has_c && m->shape[0] == C)));
  for (int d = 0; ok && d < sp_nd; d++) ok = m->shape[lead + d] == in->shape[has_c + d];
  if (!ok) {
    char ms[96] = "", is[96] = "";
    int a = 0, b = 0;
    for (int d = 0; d < m->ndim && a < 80; d++)
      a += snprintf(ms + a, sizeof ms - (size_t)a, "%s%lld", d ? ", " : "", (long long)m->shape[d]);
    for (int d = 0; d < in->ndim && b < 80; d++)
      b += snprintf(is + b, sizeof is - (size_t)b, "%s%lld", d ? ", " : "", (long long)in->shape[d]);
    return vp_fail(VP_ERR_INVALID_ARG,
                   "%s: sample %lld: mask of shape [%s] does not fit the input [%s] (give the "
                   "spatial shape, with 1 or %lld channels in front or none)",
                   who, (long long)i, ms, is, (long long)C);
  }
  if ((m->mem == VP_MEM_DEVICE) != (gpu != 0))
    return vp_fail(VP_ERR_INVALID_ARG, "%s: sample %lld: the mask is in %s memory, the input %s",
                   who, (long long)i, m->mem == VP_MEM_DEVICE ? "GPU" : "host",
                   gpu ? "on the GPU" : "in host memory");
  *shared = lead == 0 || m->shape[0] == 1 || C == 1;
  return VP_OK;
}

static vp_status build(const vp_op_desc *const *ops, const vp_op_call *calls, int n, int gpu,
                       chain *ch) {
  memset(ch, 0, sizeof *ch);
  if (!ops || !calls || n < 1 || n > VP_PW_MAX_OPS)
    return vp_fail(VP_ERR_INVALID_ARG, "pointwise chain: %d operators (1..%d)", n, VP_PW_MAX_OPS);
  ch->name = ops[0] ? ops[0]->name : "pointwise chain";
  const int64_t B = calls[0].batch;
  if (B < 1 || !calls[0].in[0] || !calls[n - 1].out[0])
    return vp_fail(VP_ERR_INVALID_ARG, "%s: pointwise chain without samples, input or output",
                   ch->name);
  for (int k = 0; k < n; k++) {
    /* a second input (a mask) is the op's own affair: only fusion needs one */
    if (!ops[k] || !ops[k]->pointwise || ops[k]->num_outputs != 1)
      return vp_fail(VP_ERR_INVALID_ARG, "pointwise chain: operator %d (%s) is not pointwise", k,
                     ops[k] ? ops[k]->name : "NULL");
    if (calls[k].batch != B)
      return vp_fail(VP_ERR_INVALID_ARG, "%s: batch %lld in a chain of batch %lld", ops[k]->name,
                     (long long)calls[k].batch, (long long)B);
  }
  vp_tensor *const *in = calls[0].in[0];
  vp_tensor *const *out = calls[n - 1].out[0];
  for (int64_t i = 0; i < B; i++)
    if (!in[i] || !out[i])
      return vp_fail(VP_ERR_INVALID_ARG, "%s: sample %lld has no input or output tensor", ch->name,
                     (long long)i);
  ch->B = B;
  ch->in = in[0]->dtype;
  ch->out = out[0]->dtype;

  vp_status s = VP_OK;
  vp_pw_stage *stages = calloc((size_t)n * (size_t)B, sizeof *stages);
  struct vp_tensor *views = NULL;
  vp_tensor **view_ptrs = NULL;
  int64_t *chans = calloc((size_t)B, sizeof *chans);
  if (!stages || !chans) {
    s = vp_fail(VP_ERR_NOMEM, "%s: out of memory for the chain", ch->name);
    goto done;
  }
  s = vp_pw_views(in, B, &views, &view_ptrs);
  if (s != VP_OK) goto done;
  /* the stages, each op seeing its input's dtype through the views */
  int count[VP_PW_MAX_OPS];
  int nsteps = 0;
  for (int k = 0; k < n && s == VP_OK; k++) {
    vp_op_call local = calls[k];
    local.in[0] = k == 0 ? in : view_ptrs;
    count[k] = 1;
    for (int64_t i = 0; i < B && s == VP_OK; i++) {
      vp_pw_stage *st = &stages[(size_t)k * (size_t)B + (size_t)i];
      s = ops[k]->pointwise(&local, i, st);
      if (s != VP_OK) break;
      if ((int)st->out < 0 || st->out >= VP_DTYPE_COUNT)
        s = vp_fail(VP_ERR_INTERNAL, "%s: stage of sample %lld has dtype %d", ops[k]->name,
                    (long long)i, (int)st->out);
      if (st->kind == VP_PW_GAMMA && (st->flags & VP_PW_RETAIN_STATS)) count[k] = 2;
    }
    for (int64_t i = 0; i < B; i++) views[i].dtype = stages[(size_t)k * (size_t)B + (size_t)i].out;
    nsteps += count[k];
  }
  if (s != VP_OK) goto done;
  ch->nsteps = nsteps;

  /* the output must be what the chain makes */
  int64_t total = 0;
  for (int64_t i = 0; i < B; i++) {
    if (in[i]->dtype != ch->in || out[i]->dtype != ch->out || views[i].dtype != ch->out) {
      s = vp_fail(VP_ERR_INVALID_ARG,
                  "%s: sample %lld: input %s -> output %s, the chain makes %s (samples share one "
                  "input and one output dtype)",
                  ch->name, (long long)i, vp_dtype_name(in[i]->dtype),
                  vp_dtype_name(out[i]->dtype), vp_dtype_name(views[i].dtype));
      goto done;
    }
    if (vp_tensor_numel(in[i]) != vp_tensor_numel(out[i])) {
      s = vp_fail(VP_ERR_INVALID_ARG, "%s: sample %lld: input has %lld elements, output %lld",
                  ch->name, (long long)i, (long long)vp_tensor_numel(in[i]),
                  (long long)vp_tensor_numel(out[i]));
      goto done;
    }
    chans[i] = channels_of(in[i]);
    if (chans[i] > (INT64_MAX / 4 - total) / nsteps) {
      s = vp_fail(VP_ERR_OVERFLOW, "%s: too many channels", ch->name);
      goto done;
    }
    total += chans[i] * nsteps;
  }
  ch->table_len = total;
  ch->samples = calloc((size_t)B, sizeof *ch->samples);
  ch->table = calloc((size_t)total, sizeof *ch->table);
  ch->need = calloc((size_t)B * (size_t)nsteps, 1);
  if (!ch->samples || !ch->table || !ch->need) {
    s = vp_fail(VP_ERR_NOMEM, "%s: out of memory for %lld steps", ch->name, (long long)total);
    goto done;
  }
  int64_t at = 0;
  for (int64_t i = 0; i < B; i++) {
    vp_pw_step tmpl[MAX_STEPS];
    int shared[MAX_STEPS];
    vp_dtype din = ch->in;
    int j = 0, copy = 1;
    for (int k = 0; k < n; k++) {
      const vp_pw_stage *st = &stages[(size_t)k * (size_t)B + (size_t)i];
      shared[j] = 1;
      if (st->mask) {
        s = check_mask(ops[k]->name, i, in[i], chans[i], st->mask, gpu, &shared[j]);
        if (s != VP_OK) goto done;
      }
      stage_steps(st, din, count[k], &tmpl[j]);
      for (int q = 1; q < count[k]; q++) shared[j + q] = 1;
      for (int q = 0; q < count[k]; q++, j++) {
        ch->need[i * nsteps + j] = tmpl[j].from != VP_PWF_NONE;
        /* a cast that rounds (f64 -> u8 -> f64) is no copy */
        copy &= tmpl[j].kind == VP_PWK_IDENTITY && tmpl[j].out == VP_PW_NO_ROUND;
      }
      din = st->out;
    }
    vp_pw_sample *sm = &ch->samples[i];
    sm->in = in[i]->data;
    sm->out = out[i]->data;
    sm->channels = (int32_t)chans[i];
    sm->chan_numel = vp_tensor_numel(in[i]) / chans[i];
    sm->steps = at;
    sm->flags = (copy && ch->in == ch->out) ? VP_PW_COPY : 0;
    /* a copy onto itself (a chain passing the sample through, call_chain.c)
     * is no work: no channels, so neither body visits the sample */
    if ((sm->flags & VP_PW_COPY) && sm->in == sm->out) sm->channels = 0;
    if ((((uintptr_t)sm->in | (uintptr_t)sm->out) & 15) == 0 && sm->chan_numel % 4 == 0)
      sm->flags |= VP_PW_ALIGNED;
    for (int64_t c = 0; c < chans[i]; c++) {
      vp_pw_step *row = &ch->table[at + c * nsteps];
      memcpy(row, tmpl, (size_t)nsteps * sizeof *tmpl);
      /* a shared mask: channel c's element e reads mask element e - c * cn
       * (a mask per channel reads element e) */
      for (int q = 0; q < nsteps; q++)
        if (row[q].mask_mode && shared[q]) row[q].mask_e0 = c * sm->chan_numel;
    }
    at += chans[i] * nsteps;
  }
done:
  free(stages);
  free(views);
  free(view_ptrs);
  free(chans);
  if (s != VP_OK) chain_free(ch);
  return s;
}

/* ---------------------------------------------------------------- */
/* CPU body                                                          */

typedef struct cpu_ctx {
  const chain *ch;
  int step;              /* reduction: statistics of this step's input */
  const int64_t *first;  /* reduction: first chunk of each sample in partial */
  vp_pw_stats *partial;
} cpu_ctx;

static void load4(const void *buf, vp_dtype t, int64_t e, int cnt, double v[4]) {
  for (int k = 0; k < 4; k++) v[k] = k < cnt ? vp_cvt_load(buf, t, e + k) : 0;
}

static vp_status reduce_chunks(void *ctx, int64_t i, int64_t begin, int64_t end) {
  const cpu_ctx *x = ctx;
  const chain *ch = x->ch;
  const vp_pw_sample *sm = &ch->samples[i];
  const int64_t cn = sm->chan_numel, cpc = (cn + VP_PW_CHUNK - 1) / VP_PW_CHUNK;
  for (int64_t b = begin; b < end; b++) {
    const int64_t c = b / cpc, lo = (b % cpc) * VP_PW_CHUNK;
    const int64_t hi = lo + VP_PW_CHUNK < cn ? lo + VP_PW_CHUNK : cn;
    const vp_pw_step *st = &ch->table[sm->steps + c * ch->nsteps];
    const int nonzero = (st[x->step].stats & VP_PW_STAT_NONZERO) != 0;
    vp_pw_stats acc;
    vp_pw_stats_init(&acc);
    for (int64_t e = lo; e < hi; e += 4) {
      int cnt = hi - e < 4 ? (int)(hi - e) : 4;
      double v[4];
      load4(sm->in, ch->in, c * cn + e, cnt, v);
      vp_pw_program_d(st, x->step, v, c * cn + e, cnt);
      for (int k = 0; k < cnt; k++)
        if (vp_pw_inside(&st[x->step], c * cn + e + k)) vp_pw_stats_add(&acc, v[k], nonzero);
    }
    x->partial[x->first[i] + b] = acc;
  }
  return VP_OK;
}

/* Statistics of step j's input for the samples that need them, then step
 * j resolved on each of their channels. */
static vp_status cpu_stats_pass(const chain *ch, const vp_op_call *base, int j) {
  const int64_t B = ch->B;
  int64_t *units = calloc((size_t)B, sizeof *units);
  int64_t *first = calloc((size_t)B + 1, sizeof *first);
  vp_pw_stats *partial = NULL, *per_ch = NULL;
  vp_status s = VP_OK;
  if (!units || !first) {
    s = vp_fail(VP_ERR_NOMEM, "%s: out of memory for statistics", ch->name);
    goto done;
  }
  int64_t maxc = 1;
  for (int64_t i = 0; i < B; i++) {
    const vp_pw_sample *sm = &ch->samples[i];
    if (ch->need[i * ch->nsteps + j])
      units[i] = sm->channels * ((sm->chan_numel + VP_PW_CHUNK - 1) / VP_PW_CHUNK);
    first[i + 1] = first[i] + units[i];
    if (sm->channels > maxc) maxc = sm->channels;
  }
  partial = malloc((size_t)(first[B] > 0 ? first[B] : 1) * sizeof *partial);
  per_ch = malloc((size_t)maxc * sizeof *per_ch);
  if (!partial || !per_ch) {
    s = vp_fail(VP_ERR_NOMEM, "%s: out of memory for statistics", ch->name);
    goto done;
  }
  cpu_ctx x = {ch, j, first, partial};
  s = vp_op_parallel(base, units, 1, reduce_chunks, &x);
  if (s != VP_OK) goto done;
  for (int64_t i = 0; i < B; i++) {
    if (!ch->need[i * ch->nsteps + j]) continue;
    const vp_pw_sample *sm = &ch->samples[i];
    const int64_t cpc = (sm->chan_numel + VP_PW_CHUNK - 1) / VP_PW_CHUNK;
    vp_pw_stats all;
    vp_pw_stats_init(&all);
    for (int64_t c = 0; c < sm->channels; c++) {
      vp_pw_stats_init(&per_ch[c]);
      for (int64_t b = 0; b < cpc; b++) vp_pw_stats_merge(&per_ch[c], &partial[first[i] + c * cpc + b]);
      vp_pw_stats_merge(&all, &per_ch[c]);
    }
    for (int64_t c = 0; c < sm->channels; c++) {
      vp_pw_step *st = &ch->table[sm->steps + c * ch->nsteps];
      const vp_pw_stats *use = (st[j].stats & VP_PW_STAT_CHANNEL) ? &per_ch[c] : &all;
      vp_pw_resolve(&st[j], use, j + 1 < ch->nsteps ? &st[j + 1] : NULL);
    }
  }
done:
  free(units);
  free(first);
  free(partial);
  free(per_ch);
  return s;
}

/* Groups of four elements of a sample's channel (a channel's last group may
 * be short), numbered channel-major. */
static vp_status apply_groups(void *ctx, int64_t i, int64_t begin, int64_t end) {
  const cpu_ctx *x = ctx;
  const chain *ch = x->ch;
  const vp_pw_sample *sm = &ch->samples[i];
  const int64_t cn = sm->chan_numel, gpc = (cn + 3) / 4;
  if (sm->flags & VP_PW_COPY) {
    size_t es = vp_dtype_size(ch->in);
    int64_t e0 = (begin / gpc) * cn + (begin % gpc) * 4;
    int64_t l = end - 1, e1 = (l / gpc) * cn + (l % gpc) * 4 + 4;
    if (e1 > (l / gpc + 1) * cn) e1 = (l / gpc + 1) * cn;
    memcpy((char *)sm->out + (size_t)e0 * es, (const char *)sm->in + (size_t)e0 * es,
           (size_t)(e1 - e0) * es);
    return VP_OK;
  }
  for (int64_t g = begin; g < end; g++) {
    const int64_t c = g / gpc, r = (g % gpc) * 4, e = c * cn + r;
    const int cnt = cn - r < 4 ? (int)(cn - r) : 4;
    double v[4];
    load4(sm->in, ch->in, e, cnt, v);
    vp_pw_program_d(&ch->table[sm->steps + c * ch->nsteps], ch->nsteps, v, e, cnt);
    for (int k = 0; k < cnt; k++) vp_cvt_store(sm->out, ch->out, e + k, v[k]);
  }
  return VP_OK;
}

static vp_status run_cpu(const chain *ch, const vp_op_call *base) {
  for (int j = 0; j < ch->nsteps; j++) {
    int any = 0;
    for (int64_t i = 0; i < ch->B && !any; i++) any = ch->need[i * ch->nsteps + j];
    if (any) VP_TRY(cpu_stats_pass(ch, base, j));
  }
  int64_t *units = malloc((size_t)ch->B * sizeof *units);
  if (!units) return vp_fail(VP_ERR_NOMEM, "%s: out of memory", ch->name);
  for (int64_t i = 0; i < ch->B; i++)
    units[i] = ch->samples[i].channels * ((ch->samples[i].chan_numel + 3) / 4);
  cpu_ctx x = {ch, 0, NULL, NULL};
  vp_status s = vp_op_parallel(base, units, 1 << 12, apply_groups, &x);
  free(units);
  return s;
}

vp_status vp_pointwise_run(const vp_op_desc *const *ops, const vp_op_call *calls, int n, int gpu) {
  chain ch;
  VP_TRY(build(ops, calls, n, gpu, &ch));
  vp_status s;
  if (!gpu) {
    vp_op_call base = calls[0];
    s = run_cpu(&ch, &base);
  } else {
#ifdef VP_HAVE_CUDA
    s = vp_cuda_pointwise(ch.samples, ch.B, ch.table, ch.table_len, ch.nsteps, ch.need, ch.in,
                          ch.out, calls[0].stream);
#else
    s = vp_fail(VP_ERR_NO_DEVICE, "%s: voxpipe was built without its CUDA backend", ch.name);
#endif
  }
  chain_free(&ch);
  return s;
}

vp_status vp_pw_run_cpu_one(const vp_op_desc *op, const vp_op_call *c) {
  return vp_pointwise_run(&op, c, 1, 0);
}

vp_status vp_pw_run_gpu_one(const vp_op_desc *op, const vp_op_call *c) {
  return vp_pointwise_run(&op, c, 1, 1);
}
