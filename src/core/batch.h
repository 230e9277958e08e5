/* A batch: N samples of one dtype and ndim, with possibly different shapes,
 * in one allocation of one memory kind.
 *
 * Each sample starts on a 256-byte boundary (what CUDA's allocators give a
 * single buffer, so vectorised loads work per sample as they would on a
 * separate tensor). A table of sample descriptors (pointer, shape,
 * per-sample parameters) lives on the host; for a device batch its mirror
 * sits at the head of the same device allocation and is refreshed by one
 * asynchronous copy, so that one kernel launch can serve the whole batch
 * through the table.
 *
 * Reference counted: vp_batch_sample views share the memory and hold a
 * reference, so the batch lives until its last view is released. */
#ifndef VP_CORE_BATCH_H
#define VP_CORE_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "voxpipe.h"

#ifdef __cplusplus
extern "C" {
#endif

/* An opaque cudaStream_t, as in core/cuda_rt.h (repeated here so that CUDA
 * C++ files can include this header alone). */
typedef void *vp_stream;

#define VP_BATCH_ALIGN 256
#define VP_BATCH_MAX_SAMPLES (1 << 20)
#define VP_SAMPLE_PARAMS 8

/* One sample as a kernel sees it. Plain data, the same layout in C and
 * CUDA C++; 8-byte aligned throughout (96 bytes). */
typedef struct vp_sample_desc {
  void *data;                     /* first element (device address for a device batch) */
  int64_t shape[VP_MAX_NDIM];     /* extents; unused trailing entries are 1 */
  int64_t offset;                 /* byte offset of data from vp_batch_data() */
  int64_t numel;                  /* product of the extents */
  float params[VP_SAMPLE_PARAMS]; /* per-sample arguments, 0 until set */
} vp_sample_desc;

typedef struct vp_batch vp_batch;

/* n samples, sample i of shape shapes[i * ndim .. i * ndim + ndim). The data
 * is uninitialised. Fails with VP_ERR_INVALID_ARG on a bad dtype, ndim
 * (0..VP_MAX_NDIM), n (1..VP_BATCH_MAX_SAMPLES) or extent, VP_ERR_OVERFLOW
 * when the sizes overflow, and the memory layer's status when the
 * allocation fails. */
vp_status vp_batch_create(vp_dtype dtype, int ndim, int64_t n, const int64_t *shapes,
                          vp_memkind mem, int device, vp_batch **out);
void vp_batch_retain(vp_batch *b);
/* Drops the caller's reference; accepts NULL. For a device batch the caller
 * must have synchronised the streams that use it (its memory goes back to
 * the pool in stream order on the legacy default stream). */
void vp_batch_destroy(vp_batch *b);

int64_t vp_batch_size(const vp_batch *b);
vp_dtype vp_batch_dtype(const vp_batch *b);
int vp_batch_ndim(const vp_batch *b);
vp_memkind vp_batch_memkind(const vp_batch *b);
int vp_batch_device(const vp_batch *b);
/* Start of sample 0, and the bytes from there to the end of the last
 * sample (the span an async copy of the whole batch moves). */
void *vp_batch_data(const vp_batch *b);
size_t vp_batch_nbytes(const vp_batch *b);

/* A tensor viewing sample i (no copy); it keeps the batch alive. */
vp_status vp_batch_sample(vp_batch *b, int64_t i, vp_tensor **view);

/* The host table, n entries. Callers may set params (and nothing else)
 * before vp_batch_upload_desc. */
vp_sample_desc *vp_batch_desc_host(vp_batch *b);
/* The device mirror (a device address), NULL unless the batch is on the
 * device. Valid for kernels on a stream after vp_batch_upload_desc on it. */
const vp_sample_desc *vp_batch_desc_device(const vp_batch *b);
/* Copies the host table to the device mirror, asynchronously on stream s.
 * The host table may be changed as soon as this returns (pageable copies
 * are staged by CUDA before the call returns). Device batches only. */
vp_status vp_batch_upload_desc(vp_batch *b, vp_stream s);

#ifdef __cplusplus
}
#endif
#endif
