/* Helpers shared by the elastic and random_spatial operators
 * (src/ops/elastic.c defines them). */
#ifndef VP_OPS_ELASTIC_H
#define VP_OPS_ELASTIC_H

#include <stddef.h>
#include <stdint.h>

#include "core/philox.h"
#include "ops/op.h"
#include "ops/resample.h"

/* Control points along an axis of `extent` voxels at `spacing`. */
int64_t vp_elastic_grid_points(int64_t extent, double spacing);
/* Draws a control grid [grid[0]][grid[1]][grid[2]][3] of displacements
 * magnitude · N(0, 1) (malloc'd into *nodes). */
vp_status vp_elastic_draw(vp_rng_key key, uint32_t iteration, uint32_t sample, uint64_t element0,
                          const int64_t shape[3], const double spacing[3], double magnitude,
                          float **nodes, int64_t grid[3]);
/* An engine descriptor for one input/output pair (shapes, channels, data). */
void vp_spatial_desc(const vp_tensor *in, const vp_tensor *out, vp_resample_desc *d);
/* Copies host bytes to a stream-ordered device allocation on the call's stream. */
vp_status vp_spatial_upload(const vp_op_call *c, const void *host, size_t bytes, void **dev);
void vp_spatial_free_async(const vp_op_call *c, void *dev);

#endif
