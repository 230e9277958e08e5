/* Fusion of pointwise chains: consecutive pointwise nodes (cast,
 * brightness, contrast, noise, normalize, ...) on the same device, each
 * reading only the previous one's output, which nothing else reads, run as
 * one vp_pointwise_run: one pass over the voxels, no intermediate tensors.
 *
 * Every member keeps its own arguments, per-sample bindings and random key
 * (vp_rng_key_make(seed, its node index)), and the engine rounds each stage
 * to its operator's output dtype, so a fused chain gives the bytes the
 * nodes give one by one. The chain runs when the executor reaches its last
 * node (its tail), by which time every value its members read exists: the
 * head's input comes before the head, and bound arguments before the node
 * that binds them. */
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "core/tensor.h"
#include "ops/pointwise.h"
#include "pipeline/executor.h"

/* Whether value v is read by anything other than node `reader`'s input 0:
 * another input, an argument binding, or the pipeline's outputs. */
static int read_elsewhere(const vp_graph *g, int v, int reader) {
  for (int k = 0; k < g->num_outputs; k++)
    if (g->outputs[k] == v) return 1;
  int uses = 0;
  for (int n = 0; n < g->num_nodes; n++) {
    const vp_node *m = &g->nodes[n];
    for (int k = 0; k < m->op->num_inputs; k++)
      if (m->inputs[k] == v) uses += !(n == reader && k == 0) ? 2 : 1;
    for (int a = 0; a < m->op->num_args; a++)
      if (m->args[a].bound && m->args[a].value == v) uses += 2;
  }
  return uses != 1;
}

vp_status vp_fuse_plan(const vp_graph *g, int **prev_out) {
  int *prev = malloc((size_t)(g->num_nodes ? g->num_nodes : 1) * sizeof *prev);
  if (!prev) return vp_fail(VP_ERR_NOMEM, "pipeline: out of memory");
  for (int n = 0; n < g->num_nodes; n++) prev[n] = -1;
  for (int n = 0; n < g->num_nodes; n++) {
    const vp_node *a = &g->nodes[n];
    if (!vp_op_is_pointwise(a->op)) continue;
    const int v = a->outputs[0];
    for (int m = n + 1; m < g->num_nodes; m++) {
      const vp_node *b = &g->nodes[m];
      if (b->inputs[0] != v || b->op->num_inputs < 1) continue;
      if (vp_op_is_pointwise(b->op) && b->gpu == a->gpu && !read_elsewhere(g, v, m)) prev[m] = n;
      break;
    }
  }
  /* at most VP_PW_MAX_OPS per chain: cut longer ones */
  for (int n = 0; n < g->num_nodes; n++) {
    int len = 1;
    for (int k = prev[n]; k >= 0; k = prev[k]) len++;
    if (len > VP_PW_MAX_OPS) prev[n] = -1;
  }
  *prev_out = prev;
  return VP_OK;
}

int vp_fuse_is_tail(const vp_graph *g, const int *prev, int n) {
  if (!prev || prev[n] < 0) return 0;
  for (int m = n + 1; m < g->num_nodes; m++)
    if (prev[m] == n) return 0;
  return 1;
}

int vp_fuse_is_inner(const vp_graph *g, const int *prev, int n) {
  if (!prev) return 0;
  for (int m = n + 1; m < g->num_nodes; m++)
    if (prev[m] == n) return 1;
  return 0;
}

vp_status vp_fuse_run(vp_exec *e, vp_exec_work *w, const int *prev, int tail, void *stream) {
  const vp_graph *g = vp_exec_graph(e);
  const int64_t B = vp_exec_batch(e);
  int chain[VP_PW_MAX_OPS], len = 0;
  for (int k = tail; k >= 0 && len < VP_PW_MAX_OPS; k = prev[k]) chain[len++] = k;
  for (int a = 0, b = len - 1; a < b; a++, b--) {
    int t = chain[a];
    chain[a] = chain[b];
    chain[b] = t;
  }
  vp_op_call calls[VP_PW_MAX_OPS];
  vp_op_args args[VP_PW_MAX_OPS];
  const vp_op_desc *ops[VP_PW_MAX_OPS];
  for (int k = 0; k < len; k++) {
    VP_TRY(vp_exec_node_call(e, w, chain[k], stream, &args[k], &calls[k]));
    ops[k] = g->nodes[chain[k]].op;
  }
  vp_out_spec *spec = calloc((size_t)B * VP_OP_MAX_IO, sizeof *spec);
  if (!spec) return vp_fail(VP_ERR_NOMEM, "pipeline: out of host memory");
  vp_status s = vp_pointwise_infer(ops, calls, len, spec);
  if (s != VP_OK) {
    char who[96];
    vp_node_label(g, tail, who, sizeof who);
    s = vp_fail_prefix(s, "%s", who);
  }
  if (s == VP_OK) s = vp_exec_alloc_outputs(e, w, tail, spec);
  free(spec);
  VP_TRY(s);
  /* the head's input feeds the tail's output: metadata passes through */
  vp_tensor *const *in = calls[0].in[0];
  vp_tensor *const *out = calls[len - 1].out[0];
  for (int64_t i = 0; i < B; i++)
    if (in[i]->ndim == out[i]->ndim) vp_tensor_copy_meta(out[i], in[i]);
  return vp_pointwise_run(ops, calls, len, g->nodes[tail].gpu);
}
