/* The eager chain call (vp_ops_call_chain): operators one after the other
 * on a batch, consecutive pointwise ones fused into one pass.
 *
 * The chain is cut into segments: each run of pointwise operators is one
 * segment (the pointwise engine's single pass), and every other operator
 * (gaussian_blur, a stencil) is a segment of its own, between intermediate
 * batches. An operator whose `passes` hook says that every sample of this
 * call goes through unchanged (p left them all alone) is dropped first, so
 * the pointwise runs around it fuse: nnU-Net's chain (noise, blur,
 * brightness, contrast, cast) is then one pass in the ~72 % of batches of 2
 * where blur is not drawn. Every operator keeps its key (seed + its place in
 * the chain) and rounds to its own dtype, so the bytes are those of the
 * operators called one by one. */
#include <stdlib.h>
#include <string.h>

#include "core/batch.h"
#include "core/status.h"
#include "core/tensor.h"
#include "ops/call_internal.h"
#include "ops/op.h"
#include "ops/pointwise.h"

typedef struct segment {
  int first, n; /* ops[first .. first + n) */
  int fused;    /* a run of pointwise operators */
} segment;

typedef struct chain_plan {
  const vp_op_desc *const *ops;
  vp_op_call *calls;
  segment seg[VP_PW_MAX_OPS];
  int nseg;
} chain_plan;

/* Segments of the operators that run (keep[k]). */
static void plan(chain_plan *p, const int *keep, int n) {
  p->nseg = 0;
  for (int k = 0; k < n; k++) {
    if (!keep[k]) continue;
    const int pw = vp_op_is_pointwise(p->ops[k]);
    segment *last = p->nseg ? &p->seg[p->nseg - 1] : NULL;
    if (pw && last && last->fused && last->first + last->n == k) {
      last->n++;
      continue;
    }
    /* a dropped operator between two pointwise runs joins them */
    if (pw && last && last->fused) {
      int gap_dropped = 1;
      for (int j = last->first + last->n; j < k; j++) gap_dropped &= !keep[j];
      if (gap_dropped) {
        last->n = k - last->first + 1;
        continue;
      }
    }
    p->seg[p->nseg++] = (segment){k, 1, pw};
  }
}

/* The operators a segment runs, with their calls, into ops / calls (a
 * fused run leaves out the operators dropped inside it); returns their
 * count. The first call takes the segment's input, the last its output. */
static int segment_ops(const chain_plan *p, const segment *sg, const vp_op_desc **ops,
                       vp_op_call *calls) {
  int m = 0;
  for (int k = sg->first; k < sg->first + sg->n; k++) {
    if (sg->fused && !vp_op_is_pointwise(p->ops[k])) continue;
    ops[m] = p->ops[k];
    calls[m++] = p->calls[k];
  }
  calls[0].in[0] = p->calls[sg->first].in[0];
  calls[m - 1].out[0] = p->calls[sg->first + sg->n - 1].out[0];
  return m;
}

/* The call of a segment: a fused run's engine takes the first call (with
 * its batch, stream...) and the last call's outputs. */
static vp_status run_segments(void *ctx, int gpu, vp_threadpool *pool, vp_stream st, int device) {
  chain_plan *p = ctx;
  for (int j = 0; j < p->nseg; j++) {
    const segment *sg = &p->seg[j];
    for (int k = sg->first; k < sg->first + sg->n; k++) {
      p->calls[k].pool = pool;
      p->calls[k].stream = st;
      p->calls[k].device = device < 0 ? 0 : device;
    }
    int64_t moved = 0;
    for (int64_t i = 0; i < p->calls[sg->first].batch; i++)
      moved += p->calls[sg->first].in[0][i] != p->calls[sg->first + sg->n - 1].out[0][i];
    if (!moved) continue; /* every sample passed through */
    vp_status s;
    if (sg->fused) {
      /* the engine skips dropped operators by running only the kept
       * ones: gather them */
      const vp_op_desc *ops[VP_PW_MAX_OPS];
      vp_op_call calls[VP_PW_MAX_OPS];
      const int m = segment_ops(p, sg, ops, calls);
      s = vp_pointwise_run(ops, calls, m, gpu);
    } else {
      const vp_op_desc *op = p->ops[sg->first];
      if (gpu && !op->run_gpu)
        s = vp_fail(VP_ERR_UNSUPPORTED, "ops chain: %s runs on the CPU only", op->name);
      else
        s = gpu ? op->run_gpu(&p->calls[sg->first]) : op->run_cpu(&p->calls[sg->first]);
    }
    if (s != VP_OK) return s;
  }
  return VP_OK;
}

/* Parses op k's arguments of a chain call (JSON text or items). */
typedef struct chain_args {
  const char *const *json;
  const vp_arg_item *const *items;
  const int *nitems;
} chain_args;

static vp_status parse_chain_args(const vp_op_desc *op, int k, int64_t batch, const chain_args *a,
                                  vp_op_args **out) {
  if (a->items)
    return vp_op_args_from_items(op, a->items[k], a->nitems ? a->nitems[k] : 0, batch, out);
  return vp_op_args_parse(op, a->json ? a->json[k] : NULL, batch, out);
}

/* Whether every sample passes op k unchanged (its hook says so). */
static int all_pass(const vp_op_desc *op, const vp_op_call *c) {
  if (!op->passes) return 0;
  for (int64_t i = 0; i < c->batch; i++)
    if (!op->passes(c, i)) return 0;
  return 1;
}

/* An intermediate segment's samples that it leaves as they are (p drew
 * nothing for them, no dtype or shape change) take their input tensor as
 * output: no copy is made, and the operators skip a sample whose output
 * is its input (the pointwise engine's copy, blur's). The chain's own
 * outputs are always new tensors. */
static vp_status pass_through(const segment *sg, const vp_op_desc *const *ops,
                              const vp_op_call *calls, int m, const vp_out_spec *spec,
                              vp_tensor *const *in, vp_tensor **out, int *pass) {
  const int64_t B = calls[0].batch;
  if (sg->fused) {
    VP_TRY(vp_pointwise_passes(ops, calls, m, pass));
  } else {
    for (int64_t i = 0; i < B; i++) pass[i] = ops[0]->passes && ops[0]->passes(&calls[0], i);
  }
  for (int64_t i = 0; i < B; i++)
    if (pass[i]) vp_op_hand_on(&spec[i * VP_OP_MAX_IO], in[i], &out[i]);
  return VP_OK;
}

/* Allocates each segment's outputs (the last one's are `outputs`): specs
 * from the operators' infer in turn, on the stream the call runs on. */
static vp_status alloc_segments(chain_plan *p, int64_t batch, vp_tensor *const *inputs,
                                vp_tensor **outputs, vp_tensor **inter, int device) {
  vp_out_spec *spec = calloc((size_t)batch * VP_OP_MAX_IO, sizeof *spec);
  int *pass = calloc((size_t)batch, sizeof *pass);
  if (!spec || !pass) {
    free(spec);
    free(pass);
    return vp_fail(VP_ERR_NOMEM, "ops chain: out of host memory");
  }
  vp_status s = VP_OK;
  vp_tensor *const *in = inputs;
  for (int j = 0; j < p->nseg && s == VP_OK; j++) {
    const segment *sg = &p->seg[j];
    vp_tensor **out = j == p->nseg - 1 ? outputs : inter + (size_t)j * batch;
    for (int k = sg->first; k < sg->first + sg->n; k++) {
      p->calls[k].in[0] = in;
      p->calls[k].out[0] = out;
    }
    /* a fused run's infer sees only its kept (pointwise) operators */
    const vp_op_desc *ops[VP_PW_MAX_OPS];
    vp_op_call calls[VP_PW_MAX_OPS];
    const int m = segment_ops(p, sg, ops, calls);
    s = vp_pointwise_infer(ops, calls, m, spec);
    const int last = sg->first + sg->n - 1;
    if (s == VP_OK && j < p->nseg - 1) s = pass_through(sg, ops, calls, m, spec, in, out, pass);
    if (s == VP_OK)
      s = vp_call_alloc_from_spec(p->ops[last], &p->calls[last], spec, out, device, !sg->fused);
    in = out;
  }
  free(spec);
  free(pass);
  return s;
}

static vp_status chain_call(int n, const char *const *names, const chain_args *ca, int64_t batch,
                            vp_tensor *const *inputs, uint64_t seed, vp_tensor **outputs) {
  if (n < 1 || n > VP_PW_MAX_OPS || !names)
    return vp_fail(VP_ERR_INVALID_ARG, "ops chain: %d operators (give 1 to %d)", n, VP_PW_MAX_OPS);
  if (!outputs || !inputs)
    return vp_fail(VP_ERR_INVALID_ARG, "ops chain: inputs or outputs is NULL");
  if (batch < 1 || batch > VP_BATCH_MAX_SAMPLES)
    return vp_fail(VP_ERR_INVALID_ARG, "ops chain: batch %lld is outside 1..%d", (long long)batch,
                   VP_BATCH_MAX_SAMPLES);
  for (int64_t i = 0; i < batch; i++) outputs[i] = NULL;
  const vp_op_desc *ops[VP_PW_MAX_OPS] = {0};
  vp_op_args *args[VP_PW_MAX_OPS] = {0};
  vp_op_call calls[VP_PW_MAX_OPS];
  int keep[VP_PW_MAX_OPS];
  vp_status s = VP_OK;
  for (int k = 0; k < n && s == VP_OK; k++) {
    ops[k] = vp_op_lookup(names[k]);
    if (!ops[k]) {
      s = VP_ERR_INVALID_ARG;
      break;
    }
    if (!vp_op_is_pointwise(ops[k]) && (ops[k]->num_inputs != 1 || ops[k]->num_outputs != 1)) {
      s = vp_fail(VP_ERR_INVALID_ARG,
                  "ops chain: %s has %d inputs and %d outputs; a chain takes operators of one "
                  "input and one output",
                  ops[k]->name, ops[k]->num_inputs, ops[k]->num_outputs);
      break;
    }
    s = parse_chain_args(ops[k], k, batch, ca, &args[k]);
    memset(&calls[k], 0, sizeof calls[k]);
    calls[k].batch = batch;
    calls[k].in[0] = inputs;
    calls[k].out[0] = outputs;
    calls[k].args = args[k];
    calls[k].key = vp_op_eager_key(ops[k], seed + (uint64_t)k);
  }
  chain_plan p = {ops, calls, {{0}}, 0};
  if (s == VP_OK) {
    int kept = 0;
    for (int k = 0; k < n; k++) kept += keep[k] = !all_pass(ops[k], &calls[k]);
    if (!kept) keep[0] = 1; /* the outputs are still new tensors: run one */
    plan(&p, keep, n);
  }
  int device = -1;
  if (s == VP_OK) s = vp_call_find_device(ops[0], batch, inputs, &device);
  vp_tensor **inter = NULL;
  if (s == VP_OK && p.nseg > 1) {
    inter = calloc((size_t)(p.nseg - 1) * (size_t)batch, sizeof *inter);
    if (!inter) s = vp_fail(VP_ERR_NOMEM, "ops chain: out of host memory");
  }
  const vp_stream ast = s == VP_OK ? vp_call_alloc_stream(device) : NULL;
  if (s == VP_OK) {
    const vp_stream prev = vp_cuda_set_alloc_stream(ast);
    s = alloc_segments(&p, batch, inputs, outputs, inter, device);
    vp_cuda_set_alloc_stream(prev);
  }
  if (s == VP_OK) s = vp_call_run_body(ops[n - 1], &calls[n - 1], run_segments, &p, device);
  if (s != VP_OK && ast) (void)vp_cuda_stream_sync(ast);
  /* intermediates go once the call has synchronised (vp_call_run_body) */
  for (int64_t i = 0; inter && i < (int64_t)(p.nseg - 1) * batch; i++) vp_tensor_release(inter[i]);
  free(inter);
  for (int k = 0; k < n; k++) vp_op_args_free(args[k]);
  if (s != VP_OK)
    for (int64_t i = 0; i < batch; i++) {
      vp_tensor_release(outputs[i]);
      outputs[i] = NULL;
    }
  return s;
}

vp_status vp_ops_call_chain(int n, const char *const *names, const char *const *args_json,
                            int64_t batch, vp_tensor *const *inputs, uint64_t seed,
                            vp_tensor **outputs) {
  const chain_args ca = {args_json, NULL, NULL};
  return chain_call(n, names, &ca, batch, inputs, seed, outputs);
}

vp_status vp_ops_call_chain_items(int n, const char *const *names, const vp_arg_item *const *items,
                                  const int *nitems, int64_t batch, vp_tensor *const *inputs,
                                  uint64_t seed, vp_tensor **outputs) {
  if (n > 0 && (!items || !nitems))
    return vp_fail(VP_ERR_INVALID_ARG, "ops chain: items or nitems is NULL");
  const chain_args ca = {NULL, items, nitems};
  return chain_call(n, names, &ca, batch, inputs, seed, outputs);
}
