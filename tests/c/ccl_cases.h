/* Test volumes for connected-component labelling, shared by the CPU
 * (tests/c/test_ccl.c) and GPU (tests/cuda/test_ccl_gpu.cu) tests, with
 * an independent oracle: a breadth-first flood fill started from every
 * unlabelled foreground voxel in C order, which numbers components by
 * their first voxel as the labellers must. */
#ifndef VP_TEST_CCL_CASES_H
#define VP_TEST_CCL_CASES_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/convert.h"
#include "ops/ccl.h"

typedef struct ccl_case {
  char name[96];
  int64_t shape[3];
  vp_dtype dtype;
  vp_ccl_params p;
  void *data; /* malloc'd */
} ccl_case;

static inline uint64_t ccl_rand(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
static inline double ccl_u01(uint64_t *s) { return (double)(ccl_rand(s) >> 11) * 0x1.0p-53; }

/* Values of the case's pattern (small integers) stored in its dtype. */
static inline void ccl_case_alloc(ccl_case *c) {
  const int64_t n = c->shape[0] * c->shape[1] * c->shape[2];
  c->data = (void *)calloc((size_t)(n > 0 ? n : 1), vp_dtype_size(c->dtype));
}
static inline void ccl_set(ccl_case *c, int64_t i, double v) { vp_cvt_store(c->data, c->dtype, i, v); }

enum { CCL_NUM_CASES = 44 };

/* Case k (0 <= k < CCL_NUM_CASES), with random content from *rng. */
static inline void ccl_case_make(int k, uint64_t *rng, ccl_case *c) {
  memset(c, 0, sizeof *c);
  static const int conns[3] = {6, 18, 26};
  static const double dens[4] = {0.05, 0.2, 0.35, 0.6};
  static const vp_dtype types[5] = {VP_U8, VP_I16, VP_F32, VP_I64, VP_U16};
  const int conn = conns[k % 3];
  c->p.connectivity = conn;
  c->dtype = types[k % 5];
  int64_t *sh = c->shape;
  if (k < 12) { /* random binary, random shapes with dimensions of 1 now and then */
    const double d = dens[k % 4];
    for (int a = 0; a < 3; a++) sh[a] = ccl_rand(rng) % 7 == 0 ? 1 : 1 + (int64_t)(ccl_rand(rng) % 23);
    ccl_case_alloc(c);
    for (int64_t i = 0; i < sh[0] * sh[1] * sh[2]; i++) ccl_set(c, i, ccl_u01(rng) < d);
    snprintf(c->name, sizeof c->name, "random density %.2f conn %d", d, conn);
  } else if (k < 18) { /* multi-label 0..4 */
    sh[0] = 1 + (int64_t)(ccl_rand(rng) % 16);
    sh[1] = 1 + (int64_t)(ccl_rand(rng) % 20);
    sh[2] = 1 + (int64_t)(ccl_rand(rng) % 30);
    ccl_case_alloc(c);
    const double fg = dens[k % 4];
    for (int64_t i = 0; i < sh[0] * sh[1] * sh[2]; i++)
      ccl_set(c, i, ccl_u01(rng) < fg ? 1 + (int)(ccl_rand(rng) % 4) : 0);
    c->p.multi_label = k % 2 == 0;
    snprintf(c->name, sizeof c->name, "labels 0..4 multi %d conn %d", c->p.multi_label, conn);
  } else if (k < 24) { /* 2-D */
    sh[0] = 1;
    sh[1] = 1 + (int64_t)(ccl_rand(rng) % 40);
    sh[2] = 1 + (int64_t)(ccl_rand(rng) % 40);
    c->p.connectivity = k % 2 ? 4 : 8;
    ccl_case_alloc(c);
    for (int64_t i = 0; i < sh[1] * sh[2]; i++) ccl_set(c, i, ccl_u01(rng) < dens[k % 4] ? 2 : 0);
    snprintf(c->name, sizeof c->name, "2-D conn %d", c->p.connectivity);
  } else if (k < 27) { /* all foreground */
    sh[0] = 5, sh[1] = 7, sh[2] = 9;
    ccl_case_alloc(c);
    for (int64_t i = 0; i < 315; i++) ccl_set(c, i, 3);
    snprintf(c->name, sizeof c->name, "all foreground conn %d", conn);
  } else if (k < 30) { /* all background */
    sh[0] = 4, sh[1] = 1, sh[2] = 33;
    ccl_case_alloc(c);
    snprintf(c->name, sizeof c->name, "all background conn %d", conn);
  } else if (k < 33) { /* 3-D checkerboard: (d + h + w) even; 6: every voxel alone */
    sh[0] = 9, sh[1] = 10, sh[2] = 35;
    ccl_case_alloc(c);
    for (int64_t z = 0; z < sh[0]; z++)
      for (int64_t y = 0; y < sh[1]; y++)
        for (int64_t x = 0; x < sh[2]; x++) ccl_set(c, (z * sh[1] + y) * sh[2] + x, (z + y + x) % 2 == 0);
    snprintf(c->name, sizeof c->name, "checkerboard conn %d", conn);
  } else if (k < 36) { /* checkerboard of 2x1x1 bars: 26 joins diagonally only */
    sh[0] = 6, sh[1] = 12, sh[2] = 40;
    ccl_case_alloc(c);
    for (int64_t z = 0; z < sh[0]; z++)
      for (int64_t y = 0; y < sh[1]; y++)
        for (int64_t x = 0; x < sh[2]; x++)
          ccl_set(c, (z * sh[1] + y) * sh[2] + x, (z / 2 + y + x) % 2 == 0 && z % 2 == 0);
    snprintf(c->name, sizeof c->name, "sparse checkerboard conn %d", conn);
  } else if (k < 39) { /* one long snake through the whole volume */
    sh[0] = 7, sh[1] = 15, sh[2] = 21;
    ccl_case_alloc(c);
    int64_t last = -1;
    for (int64_t z = 0; z < sh[0]; z += 2) {
      for (int64_t y = 0; y < sh[1]; y++)
        for (int64_t x = 0; x < sh[2]; x++) {
          int on = y % 2 == 0 || (((y / 2) % 2 == 0) ? x == sh[2] - 1 : x == 0);
          if (on) ccl_set(c, (z * sh[1] + y) * sh[2] + x, 1);
        }
      /* the snake ends at row H-1 (H odd): one end voxel carries on */
      last = (z * sh[1] + sh[1] - 1) * sh[2] + ((sh[1] / 2) % 2 == 0 ? sh[2] - 1 : 0);
      if (z + 1 < sh[0]) ccl_set(c, last + sh[1] * sh[2], 1);
    }
    (void)last;
    snprintf(c->name, sizeof c->name, "3-D snake conn %d", conn);
  } else if (k < 41) { /* 2-D square spiral, one voxel wide */
    sh[0] = 1, sh[1] = 31, sh[2] = 31;
    c->p.connectivity = k % 2 ? 4 : 8;
    ccl_case_alloc(c);
    int64_t y0 = 0, x0 = 0, y1 = sh[1] - 1, x1 = sh[2] - 1;
    while (y0 <= y1 && x0 <= x1) {
      for (int64_t x = x0; x <= x1; x++) ccl_set(c, y0 * sh[2] + x, 1);
      for (int64_t y = y0; y <= y1; y++) ccl_set(c, y * sh[2] + x1, 1);
      if (y1 > y0)
        for (int64_t x = x0; x <= x1; x++) ccl_set(c, y1 * sh[2] + x, 1);
      if (y0 + 2 <= y1)
        for (int64_t y = y0 + 2; y <= y1; y++) ccl_set(c, y * sh[2] + x0, 1);
      y0 += 2, x0 += 2, y1 -= 2, x1 -= 2;
      if (x0 - 1 <= x1 + 1) ccl_set(c, y0 * sh[2] + x0 - 1, 0);
    }
    snprintf(c->name, sizeof c->name, "2-D spiral conn %d", c->p.connectivity);
  } else { /* select mode and a non-zero background */
    sh[0] = 8, sh[1] = 9, sh[2] = 17;
    ccl_case_alloc(c);
    for (int64_t i = 0; i < sh[0] * sh[1] * sh[2]; i++) ccl_set(c, i, (int)(ccl_rand(rng) % 4));
    if (k % 2) {
      c->p.select = 1;
      c->p.select_value = 2;
    } else {
      c->p.background = 3;
    }
    snprintf(c->name, sizeof c->name, "%s conn %d", k % 2 ? "select 2" : "background 3", conn);
  }
}

/* The oracle. Returns the count; labels must hold shape's voxels. */
static inline int64_t ccl_oracle(const ccl_case *c, int32_t *labels) {
  const int64_t D = c->shape[0], H = c->shape[1], W = c->shape[2], n = D * H * W;
  int maxnz = c->p.connectivity == 6 || c->p.connectivity == 4 ? 1
              : (c->p.connectivity == 18 || c->p.connectivity == 8 ? 2 : 3);
  double *v = (double *)malloc((size_t)(n > 0 ? n : 1) * sizeof *v);
  int64_t *queue = (int64_t *)malloc((size_t)(n > 0 ? n : 1) * sizeof *queue);
  for (int64_t i = 0; i < n; i++) {
    v[i] = vp_cvt_load(c->data, c->dtype, i);
    labels[i] = 0;
  }
  const double ref = c->p.select ? c->p.select_value : c->p.background;
#define CCL_FG(i) (c->p.select ? v[i] == ref : v[i] != ref)
  int64_t count = 0;
  for (int64_t s = 0; s < n; s++) {
    if (!CCL_FG(s) || labels[s]) continue;
    labels[s] = (int32_t)++count;
    int64_t head = 0, tail = 0;
    queue[tail++] = s;
    while (head < tail) {
      const int64_t q = queue[head++], z = q / (H * W), y = q / W % H, x = q % W;
      for (int dz = -1; dz <= 1; dz++)
        for (int dy = -1; dy <= 1; dy++)
          for (int dx = -1; dx <= 1; dx++) {
            if ((dz != 0) + (dy != 0) + (dx != 0) > maxnz) continue;
            const int64_t zz = z + dz, yy = y + dy, xx = x + dx;
            if (zz < 0 || zz >= D || yy < 0 || yy >= H || xx < 0 || xx >= W) continue;
            const int64_t r = (zz * H + yy) * W + xx;
            if (labels[r] || !CCL_FG(r)) continue;
            if (c->p.multi_label && !c->p.select && v[r] != v[q]) continue;
            labels[r] = (int32_t)count;
            queue[tail++] = r;
          }
    }
  }
#undef CCL_FG
  free(v);
  free(queue);
  return count;
}

/* Sizes and boxes (lo d h w, hi exclusive) of a labelling, by brute force. */
static inline void ccl_oracle_stats(const int32_t *labels, const int64_t shape[3], int64_t count,
                                    int64_t *sizes, int64_t *boxes) {
  for (int64_t k = 0; k < count; k++) {
    sizes[k] = 0;
    for (int a = 0; a < 3; a++) boxes[k * 6 + a] = INT64_MAX, boxes[k * 6 + 3 + a] = 0;
  }
  for (int64_t z = 0; z < shape[0]; z++)
    for (int64_t y = 0; y < shape[1]; y++)
      for (int64_t x = 0; x < shape[2]; x++) {
        const int32_t l = labels[(z * shape[1] + y) * shape[2] + x];
        if (!l) continue;
        int64_t *b = boxes + (l - 1) * 6;
        const int64_t c[3] = {z, y, x};
        sizes[l - 1]++;
        for (int a = 0; a < 3; a++) {
          if (c[a] < b[a]) b[a] = c[a];
          if (c[a] + 1 > b[a + 3]) b[a + 3] = c[a] + 1;
        }
      }
}

#endif
