/* The executor's gpu side: staging cpu values into pinned buffers, copying
 * them on a copy stream, and running the gpu nodes on a compute stream
 * that waits for the copies through an event. */
#include <stdlib.h>
#include <string.h>

#include "core/cuda_rt.h"
#include "core/status.h"
#include "core/tensor.h"
#include "core/threadpool.h"
#include "pipeline/executor.h"

#ifndef VP_HAVE_CUDA

vp_status vp_gpu_stage_create(const vp_graph *g, int device, int64_t batch, vp_gpu_stage **out) {
  (void)g, (void)device, (void)batch;
  *out = NULL;
  return vp_fail(VP_ERR_NO_DEVICE, "pipeline: gpu nodes: voxpipe was built without CUDA");
}
void vp_gpu_stage_destroy(vp_gpu_stage *s) { (void)s; }
vp_status vp_gpu_stage_bind(vp_gpu_stage *s) {
  (void)s;
  return vp_fail(VP_ERR_NO_DEVICE, "pipeline: gpu nodes: voxpipe was built without CUDA");
}
vp_status vp_gpu_stage_upload(vp_gpu_stage *s, vp_exec *e, vp_exec_work *w) {
  (void)s, (void)e, (void)w;
  return vp_fail(VP_ERR_NO_DEVICE, "pipeline: gpu nodes: voxpipe was built without CUDA");
}
vp_status vp_gpu_stage_issue(vp_gpu_stage *s, vp_exec *e, vp_exec_work *w) {
  (void)s, (void)e, (void)w;
  return vp_fail(VP_ERR_NO_DEVICE, "pipeline: gpu nodes: voxpipe was built without CUDA");
}
vp_status vp_gpu_stage_finish(vp_gpu_stage *s) {
  (void)s;
  return vp_fail(VP_ERR_NO_DEVICE, "pipeline: gpu nodes: voxpipe was built without CUDA");
}
void vp_gpu_stage_drain(vp_gpu_stage *s) { (void)s; }

#else

#include <cuda_runtime_api.h>

struct vp_gpu_stage {
  const vp_graph *g;
  int device;
  int64_t B;
  int *upload; /* cpu values read by gpu nodes */
  int nupload;
  cudaStream_t copy, compute;
  cudaEvent_t copied;
  int have_event;
};

vp_status vp_gpu_stage_create(const vp_graph *g, int device, int64_t batch, vp_gpu_stage **out) {
  *out = NULL;
  vp_gpu_stage *s = calloc(1, sizeof *s);
  if (!s) return vp_fail(VP_ERR_NOMEM, "pipeline: out of memory");
  s->g = g;
  s->device = device;
  s->B = batch;
  s->upload = calloc((size_t)g->num_values + 1, sizeof *s->upload);
  if (!s->upload) {
    free(s);
    return vp_fail(VP_ERR_NOMEM, "pipeline: out of memory");
  }
  for (int n = 0; n < g->num_nodes; n++) {
    const vp_node *node = &g->nodes[n];
    if (!node->gpu) continue;
    for (int k = 0; k < node->op->num_inputs; k++) {
      int v = node->inputs[k], seen = 0;
      if (g->values[v].gpu) continue;
      for (int j = 0; j < s->nupload; j++) seen |= s->upload[j] == v;
      if (!seen) s->upload[s->nupload++] = v;
    }
  }
  vp_status st = vp_cuda_stream_create(device, (vp_stream *)&s->copy);
  if (st == VP_OK) st = vp_cuda_stream_create(device, (vp_stream *)&s->compute);
  if (st == VP_OK) {
    cudaError_t ce = cudaEventCreateWithFlags(&s->copied, cudaEventDisableTiming);
    if (ce != cudaSuccess)
      st = vp_cuda_status(ce, "cudaEventCreateWithFlags");
    else
      s->have_event = 1;
  }
  if (st != VP_OK) {
    vp_gpu_stage_destroy(s);
    return vp_fail_prefix(st, "pipeline: gpu nodes on device %d", device);
  }
  *out = s;
  return VP_OK;
}

void vp_gpu_stage_destroy(vp_gpu_stage *s) {
  if (!s) return;
  if (cudaSetDevice(s->device) == cudaSuccess) {
    vp_gpu_stage_drain(s);
    if (s->have_event) (void)cudaEventDestroy(s->copied);
    vp_cuda_stream_destroy(s->copy);
    vp_cuda_stream_destroy(s->compute);
  }
  (void)cudaGetLastError();
  free(s->upload);
  free(s);
}

vp_status vp_gpu_stage_bind(vp_gpu_stage *s) { return vp_cuda_set_device(s->device); }

typedef struct stage_copy {
  vp_tensor **from, **to;
} stage_copy;

static vp_status copy_to_pinned(void *ctx, int64_t i) {
  stage_copy *c = ctx;
  size_t n = vp_tensor_nbytes(c->from[i]);
  if (n) memcpy(c->to[i]->data, c->from[i]->data, n);
  return VP_OK;
}

vp_status vp_gpu_stage_upload(vp_gpu_stage *s, vp_exec *e, vp_exec_work *w) {
  if (s->nupload == 0) return VP_OK;
  int64_t B = s->B;
  size_t total = (size_t)s->nupload * (size_t)B;
  vp_tensor **from = calloc(total, sizeof *from), **pinned = calloc(total, sizeof *pinned);
  vp_status st = VP_OK;
  if (!from || !pinned) st = vp_fail(VP_ERR_NOMEM, "pipeline: out of memory");
  w->gpu_touched = 1;
  for (int u = 0; u < s->nupload && st == VP_OK; u++) {
    for (int64_t i = 0; i < B && st == VP_OK; i++) {
      size_t j = (size_t)u * (size_t)B + (size_t)i;
      vp_tensor *t = w->vals[(size_t)s->upload[u] * (size_t)B + (size_t)i];
      from[j] = t;
      st = vp_tensor_create(t->dtype, t->ndim, t->shape, VP_MEM_PINNED, s->device, &pinned[j]);
      if (st == VP_OK) {
        vp_tensor_retain(pinned[j]);
        st = vp_exec_work_scratch(w, pinned[j]); /* the batch keeps one reference */
      }
    }
  }
  /* host-to-pinned copies are CPU work: spread them over the pool */
  stage_copy c = {from, pinned};
  if (st == VP_OK) st = vp_parallel_for(vp_exec_pool(e), (int64_t)total, copy_to_pinned, &c);
  for (size_t j = 0; j < total && st == VP_OK; j++) {
    int v = s->upload[j / (size_t)B];
    vp_tensor **dst = &w->staged[(size_t)v * (size_t)B + j % (size_t)B];
    st = vp_tensor_create(from[j]->dtype, from[j]->ndim, from[j]->shape, VP_MEM_DEVICE, s->device,
                          dst);
    if (st != VP_OK) break;
    vp_tensor_copy_meta(*dst, from[j]);
    size_t n = vp_tensor_nbytes(from[j]);
    if (n) st = vp_cuda_memcpy_async((*dst)->data, pinned[j]->data, n, s->copy);
  }
  if (st == VP_OK) {
    cudaError_t ce = cudaEventRecord(s->copied, s->copy);
    if (ce != cudaSuccess) st = vp_cuda_status(ce, "cudaEventRecord");
  }
  if (pinned)
    for (size_t j = 0; j < total; j++) vp_tensor_release(pinned[j]);
  free(from);
  free(pinned);
  if (st != VP_OK) return vp_fail_prefix(st, "pipeline: copying inputs of gpu nodes");
  return VP_OK;
}

vp_status vp_gpu_stage_issue(vp_gpu_stage *s, vp_exec *e, vp_exec_work *w) {
  w->gpu_touched = 1;
  if (s->nupload > 0) {
    cudaError_t ce = cudaStreamWaitEvent(s->compute, s->copied, 0);
    if (ce != cudaSuccess) return vp_cuda_status(ce, "pipeline: cudaStreamWaitEvent");
  }
  const vp_graph *g = s->g;
  for (int n = 0; n < g->num_nodes; n++) {
    if (!g->nodes[n].gpu) continue;
    vp_status st = vp_exec_run_node(e, w, n, s->compute);
    if (st != VP_OK) {
      char who[96];
      vp_node_label(g, n, who, sizeof who);
      return vp_fail_prefix(st, "%s", who);
    }
  }
  return VP_OK;
}

vp_status vp_gpu_stage_finish(vp_gpu_stage *s) {
  cudaError_t ce = cudaStreamSynchronize(s->compute);
  if (ce != cudaSuccess) return vp_cuda_status(ce, "pipeline: gpu nodes: cudaStreamSynchronize");
  return VP_OK;
}

void vp_gpu_stage_drain(vp_gpu_stage *s) {
  if (!s) return;
  (void)cudaStreamSynchronize(s->copy);
  (void)cudaStreamSynchronize(s->compute);
  (void)cudaGetLastError();
}

#endif
