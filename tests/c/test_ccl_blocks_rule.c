/* The adjacency rule of the GPU's 2x2x2 block labeller
 * (src/cuda/ccl_blocks.h) against brute force: for every pair of block
 * masks and every one of the 26 block offsets, "some foreground voxel of
 * A is 26-adjacent to some foreground voxel of B" computed voxel pair by
 * voxel pair equals vp_ccl_blocks_touch. Also the mask layout the kernels
 * rely on (bit order = C order), the face masks' sizes, and which
 * connectivities count as full for a shape. CPU only. */
#include <stdlib.h>

#include "cuda/ccl_blocks.h"
#include "testutil.h"

/* Coordinates of mask bit k in the block at block offset o. */
static void voxel(int k, const int o[3], int c[3]) {
  c[0] = 2 * o[0] + (k >> 2);
  c[1] = 2 * o[1] + ((k >> 1) & 1);
  c[2] = 2 * o[2] + (k & 1);
}

static int brute_touch(uint32_t ma, uint32_t mb, const int o[3]) {
  static const int zero[3] = {0, 0, 0};
  for (int i = 0; i < 8; i++) {
    if (!(ma >> i & 1)) continue;
    int a[3];
    voxel(i, zero, a);
    for (int j = 0; j < 8; j++) {
      if (!(mb >> j & 1)) continue;
      int b[3];
      voxel(j, o, b);
      if (abs(a[0] - b[0]) <= 1 && abs(a[1] - b[1]) <= 1 && abs(a[2] - b[2]) <= 1) return 1;
    }
  }
  return 0;
}

static void test_rule_brute_force(void **state) {
  (void)state;
  long pairs = 0, touching = 0;
  for (int dz = -1; dz <= 1; dz++)
    for (int dy = -1; dy <= 1; dy++)
      for (int dx = -1; dx <= 1; dx++) {
        if (!dz && !dy && !dx) continue;
        const int o[3] = {dz, dy, dx};
        for (uint32_t ma = 0; ma < 256; ma++)
          for (uint32_t mb = 0; mb < 256; mb++) {
            const int want = brute_touch(ma, mb, o);
            const int got = vp_ccl_blocks_touch(ma, mb, dz, dy, dx);
            if (want != got)
              fail_msg("offset (%d, %d, %d) masks %#x %#x: rule %d, brute force %d", dz, dy, dx, ma,
                       mb, got, want);
            /* symmetric: B sees A at the opposite offset */
            assert_int_equal(got, vp_ccl_blocks_touch(mb, ma, -dz, -dy, -dx));
            pairs++;
            touching += want;
          }
      }
  /* both outcomes occur (the test can fail either way) */
  assert_int_equal(pairs, 26L * 256 * 256);
  assert_true(touching > 0 && touching < pairs);
}

/* Face sizes: 4 voxels across a face, 2 along an edge, 1 at a corner;
 * bit k is the voxel (k >> 2, (k >> 1) & 1, k & 1), so increasing bits
 * are increasing C order within the block. */
static void test_faces(void **state) {
  (void)state;
  for (int dz = -1; dz <= 1; dz++)
    for (int dy = -1; dy <= 1; dy++)
      for (int dx = -1; dx <= 1; dx++) {
        const uint32_t f = vp_ccl_block_face(dz, dy, dx);
        const int nz = (dz != 0) + (dy != 0) + (dx != 0);
        assert_int_equal(__builtin_popcount(f), 8 >> nz);
        for (int k = 0; k < 8; k++) {
          const int l[3] = {k >> 2, (k >> 1) & 1, k & 1}, d[3] = {dz, dy, dx};
          int on = 1;
          for (int a = 0; a < 3; a++)
            if (d[a]) on = on && l[a] == (d[a] > 0);
          assert_int_equal((f >> k) & 1, on);
        }
      }
}

static void test_full_connectivity(void **state) {
  (void)state;
  static const int64_t s3[3] = {2, 3, 4}, s2[3] = {1, 3, 4}, s1[3] = {1, 1, 9}, s1b[3] = {7, 1, 1},
                       s2b[3] = {5, 1, 6};
  assert_true(vp_ccl_conn_is_full(26, s3));
  assert_false(vp_ccl_conn_is_full(18, s3));
  assert_false(vp_ccl_conn_is_full(6, s3));
  assert_true(vp_ccl_conn_is_full(18, s2)); /* 2-D 8-connectivity */
  assert_true(vp_ccl_conn_is_full(18, s2b));
  assert_false(vp_ccl_conn_is_full(6, s2)); /* 2-D 4-connectivity */
  assert_true(vp_ccl_conn_is_full(6, s1));
  assert_true(vp_ccl_conn_is_full(6, s1b));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_rule_brute_force),
      cmocka_unit_test(test_faces),
      cmocka_unit_test(test_full_connectivity),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
