/* The 2x2x2-block labelling of full connectivity (src/cuda/ccl_blocks.cu):
 * the geometry shared by its kernels and the CPU test of the adjacency
 * rule (tests/c/test_ccl_blocks_rule.c). Plain C.
 *
 * A block covers voxels (2bz + lz, 2by + ly, 2bx + lx), l* in {0, 1}; its
 * mask has bit lz*4 + ly*2 + lx set for each foreground voxel inside the
 * volume, so bit order is the voxels' C order and the lowest set bit is
 * the block's first voxel. Any two voxels of a block are 26-adjacent, so
 * one union-find node per block suffices when every neighbour joins. */
#ifndef VP_CUDA_CCL_BLOCKS_H
#define VP_CUDA_CCL_BLOCKS_H

#include <stdint.h>

#include "core/convert.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The voxels of a block on its side toward the neighbour block at offset
 * (dz, dy, dx) in {-1, 0, 1}^3: local coordinate 0 on each axis whose
 * offset is -1, 1 where it is +1, anything where it is 0. */
VP_HD uint32_t vp_ccl_block_face(int dz, int dy, int dx) {
  uint32_t m = 0xffu;
  if (dz) m &= dz < 0 ? 0x0fu : 0xf0u;
  if (dy) m &= dy < 0 ? 0x33u : 0xccu;
  if (dx) m &= dx < 0 ? 0x55u : 0xaau;
  return m;
}

/* Whether some foreground voxel of block A (mask ma) is 26-adjacent to
 * some foreground voxel of block B (mask mb) at offset (dz, dy, dx) from
 * A. On an axis of offset -1, A's coordinates are >= 2a and B's <= 2a - 1,
 * so a voxel pair is adjacent there only as 2a and 2a - 1: both on the
 * facing sides (likewise +1); on an axis of offset 0 both lie in the same
 * two coordinates, always within 1. Hence: adjacent iff each has a voxel
 * on its facing side, and then any such pair is. */
VP_HD int vp_ccl_blocks_touch(uint32_t ma, uint32_t mb, int dz, int dy, int dx) {
  return (ma & vp_ccl_block_face(dz, dy, dx)) != 0 && (mb & vp_ccl_block_face(-dz, -dy, -dx)) != 0;
}

/* Whether connectivity conn3 (6, 18 or 26) joins every pair of adjacent
 * voxels of a volume of this shape: the 26 neighbours with more nonzero
 * offsets than conn3 allows (6: 1, 18: 2) need that many axes of extent
 * > 1. Such volumes (2-D 8-connectivity among them) take the block path. */
VP_HD int vp_ccl_conn_is_full(int conn3, const int64_t shape[3]) {
  const int axes = (shape[0] > 1) + (shape[1] > 1) + (shape[2] > 1);
  return axes <= (conn3 == 6 ? 1 : conn3 == 18 ? 2 : 3);
}

#ifdef __cplusplus
}
#endif
#endif
