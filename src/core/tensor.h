/* The tensor object, visible inside the library. */
#ifndef VP_CORE_TENSOR_H
#define VP_CORE_TENSOR_H

#include <stdatomic.h>

#include "voxpipe.h"

struct vp_tensor {
  atomic_int refs;
  vp_dtype dtype;
  int ndim;
  int64_t shape[VP_MAX_NDIM];
  vp_memkind mem;
  int device;
  void *data;
  /* Owned allocation (NULL for wrapped memory); data may sit past its start. */
  void *base;
  size_t base_bytes;
  void (*deleter)(void *ctx);
  void *ctx;
  int spatial_ndim;
  double spacing[3]; /* array order, spatial axes only */
  double affine[16]; /* row-major voxel(i,j,k) -> world(x,y,z) */
};

/* Like vp_tensor_create, with at least `prefix` writable bytes before the
 * data pointer (a file header decompressed in front of its data lands
 * there, so the data needs no second copy). data stays 64-byte aligned. */
vp_status vp_tensor_create_prefixed(vp_dtype dtype, int ndim, const int64_t *shape,
                                    vp_memkind mem, int device, size_t prefix,
                                    vp_tensor **out);

/* Validates dtype/ndim/shape and returns the byte size. */
vp_status vp_tensor_check_shape(vp_dtype dtype, int ndim, const int64_t *shape,
                                size_t *nbytes);

/* Copies spacing, affine and spatial_ndim from src to dst. */
void vp_tensor_copy_meta(vp_tensor *dst, const vp_tensor *src);

#endif
