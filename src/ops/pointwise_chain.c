/* Output specs of a pointwise chain, shared by the pipeline's fusion
 * (src/pipeline/fuse.c) and the eager chain call (vp_ops_call_chain): each
 * operator's infer in turn, on data-less views of the previous stage's
 * output (with the input's geometry: spatial axes, spacing). */
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "core/tensor.h"
#include "ops/pointwise.h"

vp_status vp_pw_views(vp_tensor *const *in, int64_t B, struct vp_tensor **views,
                      vp_tensor ***ptrs) {
  *views = calloc((size_t)B, sizeof **views);
  *ptrs = calloc((size_t)B, sizeof **ptrs);
  if (!*views || !*ptrs) {
    free(*views);
    free(*ptrs);
    *views = NULL;
    *ptrs = NULL;
    return vp_fail(VP_ERR_NOMEM, "pointwise chain: out of host memory");
  }
  for (int64_t i = 0; i < B; i++) {
    struct vp_tensor *v = &(*views)[i];
    v->dtype = in[i]->dtype;
    v->ndim = in[i]->ndim;
    memcpy(v->shape, in[i]->shape, sizeof v->shape);
    v->mem = in[i]->mem;
    v->device = in[i]->device;
    v->spatial_ndim = in[i]->spatial_ndim;
    memcpy(v->spacing, in[i]->spacing, sizeof v->spacing);
    memcpy(v->affine, in[i]->affine, sizeof v->affine);
    (*ptrs)[i] = v;
  }
  return VP_OK;
}

vp_status vp_pointwise_infer(const vp_op_desc *const *ops, const vp_op_call *calls, int n,
                             vp_out_spec *spec) {
  const int64_t B = calls[0].batch;
  struct vp_tensor *views;
  vp_tensor **vp;
  VP_TRY(vp_pw_views(calls[0].in[0], B, &views, &vp));
  vp_status s = VP_OK;
  for (int k = 0; k < n && s == VP_OK; k++) {
    vp_op_call c = calls[k];
    c.in[0] = vp;
    for (int64_t i = 0; i < B && s == VP_OK; i++) {
      s = ops[k]->infer(&c, i, &spec[i * VP_OP_MAX_IO]);
      if (s != VP_OK) s = vp_fail_prefix(s, "%s (stage %d of the chain)", ops[k]->name, k);
    }
    for (int64_t i = 0; i < B && s == VP_OK; i++) {
      views[i].dtype = spec[i * VP_OP_MAX_IO].dtype;
      const int nd = spec[i * VP_OP_MAX_IO].ndim;
      if (views[i].ndim != nd) /* vp_tensor_create's default */
        views[i].spatial_ndim = nd < 3 ? (nd < 1 ? 1 : nd) : 3;
      views[i].ndim = nd;
      memcpy(views[i].shape, spec[i * VP_OP_MAX_IO].shape, sizeof views[i].shape);
    }
  }
  free(vp);
  free(views);
  return s;
}

vp_status vp_pointwise_passes(const vp_op_desc *const *ops, const vp_op_call *calls, int n,
                              int *pass) {
  const int64_t B = calls[0].batch;
  struct vp_tensor *views;
  vp_tensor **vp;
  VP_TRY(vp_pw_views(calls[0].in[0], B, &views, &vp));
  vp_status s = VP_OK;
  for (int64_t i = 0; i < B; i++) pass[i] = 1;
  for (int k = 0; k < n && s == VP_OK; k++) {
    vp_op_call c = calls[k];
    c.in[0] = vp;
    for (int64_t i = 0; i < B && s == VP_OK; i++) {
      if (!pass[i]) continue;
      vp_pw_stage st;
      s = ops[k]->pointwise(&c, i, &st);
      /* the engine's copy: a stage that only "rounds" to the dtype it has */
      pass[i] = s == VP_OK && st.kind == VP_PW_IDENTITY && st.out == views[i].dtype;
    }
  }
  free(vp);
  free(views);
  return s;
}
