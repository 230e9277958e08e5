/* The eager call's pieces that the chain call (src/ops/call_chain.c) shares
 * with the single-operator call (src/ops/call.c). */
#ifndef VP_OPS_CALL_INTERNAL_H
#define VP_OPS_CALL_INTERNAL_H

#include "core/cuda_rt.h"
#include "ops/op.h"

/* Where the call runs: -1 = CPU, else the GPU all inputs are on. */
vp_status vp_call_find_device(const vp_op_desc *op, int64_t batch, vp_tensor *const *inputs,
                              int *device);

/* Outputs from spec[i * VP_OP_MAX_IO + k] (of op, whose meta runs when
 * `meta`), with the first input's geometry where the ranks agree. */
vp_status vp_call_alloc_from_spec(const vp_op_desc *op, const vp_op_call *c, vp_out_spec *spec,
                                  vp_tensor **outputs, int device, int meta);

/* The stream an eager call on `device` will run on, for its outputs'
 * allocations (NULL: allocate the slow way, on the legacy stream). */
vp_stream vp_call_alloc_stream(int device);

/* A call's body other than op->run_cpu / run_gpu (a chain's segments):
 * gets the call's pool (CPU) or stream (GPU). */
typedef vp_status (*vp_call_body)(void *ctx, int gpu, vp_threadpool *pool, vp_stream stream,
                                  int device);

/* Runs op's body (or `body`) on the CPU (device -1: with a pool for large
 * outputs) or on the device's eager stream, synchronised before return. */
vp_status vp_call_run_body(const vp_op_desc *op, vp_op_call *c, vp_call_body body, void *ctx,
                           int device);

#endif
