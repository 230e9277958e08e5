/* GPU connected-component labelling (src/cuda/ccl.cu) against the CPU
 * labeller (itself checked against a flood fill in tests/c/test_ccl.c) and,
 * for volumes of up to 2^21 voxels, against that flood fill directly:
 * identical labels, counts and statistics, written into poisoned device
 * buffers, for every case of tests/c/ccl_cases.h, for batches of mixed
 * shapes with a per-sample device selection, for shapes around 4 x 8 x 32
 * blocks (written for a tiled labeller that measured slower and was
 * reverted; they still cross the 32-voxel words of the root bitmap in every
 * axis, with extents of 1 and diagonal chains), for buffers that are not
 * vector-aligned, and for the connected_components operator's GPU body.
 * Binary labelling at full connectivity (26; 8 in 2-D) runs on 2x2x2
 * blocks (src/cuda/ccl_blocks.cu): the test_blocks_* cases aim at it
 * (densities 1 % to 60 %, partial blocks, a component whose first voxel
 * is not in its smallest block, 2-D batches with selection, the
 * benchmark's blobs, repeat runs for determinism).
 * Exits 77 without a GPU. */
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "core/cuda_rt.h"
#include "core/status.h"
#include "testutil.h"
}
#include "../c/ccl_cases.h"
#include "cuda/ccl.h"
#include "gpu_testutil.h"
#include "ops/op.h"

static void *upload(const void *h, size_t bytes) {
  void *d = NULL;
  CUDA_OK(cudaMalloc(&d, bytes ? bytes : 1));
  if (bytes) CUDA_OK(cudaMemcpy(d, h, bytes, cudaMemcpyHostToDevice));
  return d;
}
static void *poisoned(size_t bytes) {
  void *d = NULL;
  CUDA_OK(cudaMalloc(&d, bytes ? bytes : 1));
  CUDA_OK(cudaMemset(d, 0xab, bytes ? bytes : 1));
  return d;
}
static void download(void *h, const void *d, size_t bytes) {
  if (bytes) CUDA_OK(cudaMemcpy(h, d, bytes, cudaMemcpyDeviceToHost));
}

/* n samples sharing dtype and params; sel: host copy of the device select
 * array (NULL: none). cap: stats capacity. Compares everything. misalign:
 * sample i's input starts (i + 1) elements and its labels 4 bytes past an
 * allocation's start, so that the kernels' vector loads and stores must
 * fall back (the input of sample i is at a different offset mod 4). */
static void check_batch_at(const char *name, ccl_case *cs, int n, const int64_t *sel, int64_t cap,
                           int misalign) {
  const vp_dtype dt = cs[0].dtype;
  const size_t es = vp_dtype_size(dt);
  vp_ccl_gpu_sample *smp = (vp_ccl_gpu_sample *)calloc(n, sizeof *smp);
  int64_t(*shapes)[3] = (int64_t(*)[3])calloc(n, sizeof *shapes);
  char **in_base = (char **)calloc(n, sizeof *in_base),
       **lab_base = (char **)calloc(n, sizeof *lab_base);
  for (int i = 0; i < n; i++) {
    const int64_t v = cs[i].shape[0] * cs[i].shape[1] * cs[i].shape[2];
    const size_t in_off = misalign ? (size_t)(i + 1) * es : 0, lab_off = misalign ? 4 : 0;
    in_base[i] = (char *)poisoned(in_off + (size_t)v * es);
    if (v)
      CUDA_OK(cudaMemcpy(in_base[i] + in_off, cs[i].data, (size_t)v * es, cudaMemcpyHostToDevice));
    lab_base[i] = (char *)poisoned(lab_off + (size_t)v * 4);
    smp[i].in = in_base[i] + in_off;
    smp[i].labels = (int32_t *)(lab_base[i] + lab_off);
    memcpy(smp[i].shape, cs[i].shape, sizeof smp[i].shape);
    memcpy(shapes[i], cs[i].shape, sizeof shapes[i]);
  }
  size_t ws_bytes = 0;
  VP_ASSERT_OK(vp_cuda_ccl_workspace_bytes(shapes, n, &ws_bytes));
  void *ws = poisoned(ws_bytes);
  int64_t *counts = (int64_t *)poisoned(n * 8);
  vp_ccl_gpu_stats st = {cap, (int64_t *)poisoned(n * cap * 8), (int64_t *)poisoned(n * cap * 48)};
  int64_t *dsel = sel ? (int64_t *)upload(sel, n * 8) : NULL;
  VP_ASSERT_OK(vp_cuda_ccl_label(smp, n, dt, &cs[0].p, dsel, counts, &st, ws, ws_bytes, NULL));
  CUDA_OK(cudaDeviceSynchronize());
  int64_t *hc = (int64_t *)malloc(n * 8), *hs = (int64_t *)malloc(n * cap * 8 + 8),
          *hb = (int64_t *)malloc(n * cap * 48 + 8);
  download(hc, counts, n * 8);
  download(hs, st.sizes, n * cap * 8);
  download(hb, st.boxes, n * cap * 48);
  for (int i = 0; i < n; i++) {
    const int64_t v = cs[i].shape[0] * cs[i].shape[1] * cs[i].shape[2];
    int32_t *want = (int32_t *)malloc(v * 4 + 4), *got = (int32_t *)malloc(v * 4 + 4);
    vp_ccl_params p = cs[i].p;
    if (sel) {
      p.select = 1, p.select_value = (double)sel[i];
      p.multi_label = 0;
    }
    int64_t count = 0;
    if (sel && sel[i] < 0) {
      memset(want, 0, v * 4);
    } else {
      VP_ASSERT_OK(vp_ccl_label_cpu(cs[i].data, dt, cs[i].shape, &p, want, &count, NULL));
    }
    if (!sel && v <= (1 << 21)) { /* the independent flood fill too */
      int32_t *flood = (int32_t *)malloc(v * 4 + 4);
      const int64_t fc = ccl_oracle(&cs[i], flood);
      if (fc != count || memcmp(flood, want, v * 4))
        fail_msg("%s sample %d: the CPU labeller disagrees with the flood fill", name, i);
      free(flood);
    }
    download(got, smp[i].labels, v * 4);
    if (hc[i] != count)
      fail_msg("%s sample %d: GPU count %lld, CPU %lld", name, i, (long long)hc[i],
               (long long)count);
    for (int64_t e = 0; e < v; e++)
      if (got[e] != want[e])
        fail_msg("%s sample %d (%lld x %lld x %lld): voxel %lld GPU %d CPU %d", name, i,
                 (long long)cs[i].shape[0], (long long)cs[i].shape[1], (long long)cs[i].shape[2],
                 (long long)e, got[e], want[e]);
    int64_t *ws_ = (int64_t *)calloc(count + 1, 8), *wb = (int64_t *)calloc(count + 1, 48);
    if (count) VP_ASSERT_OK(vp_ccl_stats_cpu(want, cs[i].shape, count, ws_, wb, NULL));
    for (int64_t l = 0; l < cap; l++) {
      const int64_t es = l < count ? ws_[l] : 0;
      if (hs[i * cap + l] != es)
        fail_msg("%s sample %d: size of label %lld GPU %lld CPU %lld", name, i, (long long)l + 1,
                 (long long)hs[i * cap + l], (long long)es);
      for (int a = 0; a < 6; a++) {
        const int64_t eb = l < count ? wb[l * 6 + a] : 0;
        if (hb[(i * cap + l) * 6 + a] != eb)
          fail_msg("%s sample %d: box of label %lld [%d] GPU %lld CPU %lld", name, i,
                   (long long)l + 1, a, (long long)hb[(i * cap + l) * 6 + a], (long long)eb);
      }
    }
    free(ws_), free(wb), free(want), free(got);
    cudaFree(in_base[i]);
    cudaFree(lab_base[i]);
  }
  cudaFree(ws), cudaFree(counts), cudaFree(st.sizes), cudaFree(st.boxes), cudaFree(dsel);
  free(hc), free(hs), free(hb), free(smp), free(shapes), free(in_base), free(lab_base);
}
static void check_batch(const char *name, ccl_case *cs, int n, const int64_t *sel, int64_t cap) {
  check_batch_at(name, cs, n, sel, cap, 0);
}

static void test_cases_gpu(void **state) {
  (void)state;
  uint64_t rng = g_rng;
  for (int k = 0; k < CCL_NUM_CASES; k++) {
    ccl_case c;
    ccl_case_make(k, &rng, &c);
    int32_t *tmp = (int32_t *)malloc(c.shape[0] * c.shape[1] * c.shape[2] * 4 + 4);
    const int64_t count = ccl_oracle(&c, tmp);
    free(tmp);
    check_batch(c.name, &c, 1, NULL, count + 2); /* room to spare: zero tail */
    free(c.data);
  }
}

/* Mixed shapes in one call, a per-sample device selection (one entry
 * "nothing"), and a capacity below most counts. */
static void test_batch_select_gpu(void **state) {
  (void)state;
  uint64_t rng = g_rng ^ 0xb47c;
  enum { N = 6 };
  ccl_case cs[N];
  const int64_t sel[N] = {1, 2, -1, 3, 0, 1};
  for (int i = 0; i < N; i++) {
    memset(&cs[i], 0, sizeof cs[i]);
    cs[i].dtype = VP_U8;
    cs[i].p.connectivity = 26;
    cs[i].p.multi_label = 1; /* ignored under selection */
    for (int a = 0; a < 3; a++) cs[i].shape[a] = 1 + (int64_t)(ccl_rand(&rng) % (i == 3 ? 60 : 25));
    ccl_case_alloc(&cs[i]);
    for (int64_t e = 0; e < cs[i].shape[0] * cs[i].shape[1] * cs[i].shape[2]; e++)
      ccl_set(&cs[i], e, ccl_u01(&rng) < 0.5 ? (double)(ccl_rand(&rng) % 4) : 0);
  }
  check_batch("selection batch", cs, N, sel, 3);
  /* the same batch with no selection, multi-label, larger capacity */
  check_batch("multi-label batch", cs, N, NULL, 50);
  for (int i = 0; i < N; i++) free(cs[i].data);
}

/* An empty uint8 volume of the benchmark's size, 155 x 240 x 240. */
static void bench_sized_case(ccl_case *c, int connectivity) {
  memset(c, 0, sizeof *c);
  c->dtype = VP_U8;
  c->shape[0] = 155, c->shape[1] = 240, c->shape[2] = 240;
  c->p.connectivity = connectivity;
  ccl_case_alloc(c);
}

/* A volume of the benchmark's size and density: many small blobs. */
static void test_large_gpu(void **state) {
  (void)state;
  uint64_t rng = g_rng ^ 0x1a29e;
  ccl_case c;
  bench_sized_case(&c, 6);
  for (int64_t e = 0; e < 155 * 240 * 240; e++) ccl_set(&c, e, ccl_u01(&rng) < 0.3);
  check_batch("large 6", &c, 1, NULL, 100);
  c.p.connectivity = 26;
  check_batch("large 26", &c, 1, NULL, 100);
  free(c.data);
}

/* Shapes around 4 x 8 x 32 blocks: seams in every axis, partial blocks,
 * extents of 1; every connectivity, binary and multi-label, several
 * dtypes; every other case with buffers that are not vector-aligned. */
static void test_seams_gpu(void **state) {
  (void)state;
  uint64_t rng = g_rng ^ 0x5ea35;
  static const int64_t shapes[][3] = {{4, 8, 32},  {5, 9, 33},  {3, 7, 31},   {8, 16, 64},
                                      {9, 17, 65}, {1, 1, 1},   {1, 1, 100},  {100, 1, 1},
                                      {1, 100, 1}, {7, 13, 1},  {1, 9, 70},   {13, 1, 47},
                                      {6, 30, 2},  {17, 3, 97}, {1, 17, 129}, {12, 24, 96}};
  static const vp_dtype types[8] = {VP_U8, VP_I16, VP_F32, VP_U16, VP_F64, VP_F16, VP_I8, VP_I32};
  static const double dens[4] = {0.1, 0.3, 0.5, 0.75};
  int t = 0;
  for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
    const int nconn = shapes[k][0] == 1 ? 5 : 3;
    static const int conns[5] = {6, 18, 26, 4, 8};
    for (int ci = 0; ci < nconn; ci++)
      for (int multi = 0; multi < 2; multi++, t++) {
        ccl_case c;
        memset(&c, 0, sizeof c);
        memcpy(c.shape, shapes[k], sizeof c.shape);
        c.dtype = types[t % 8];
        c.p.connectivity = conns[ci];
        c.p.multi_label = multi;
        ccl_case_alloc(&c);
        const double d = dens[(t / 2) % 4];
        for (int64_t e = 0; e < c.shape[0] * c.shape[1] * c.shape[2]; e++)
          ccl_set(&c, e, ccl_u01(&rng) < d ? 1 + (double)(ccl_rand(&rng) % 3) : 0);
        snprintf(c.name, sizeof c.name, "seams %lldx%lldx%lld conn %d multi %d density %.2f",
                 (long long)c.shape[0], (long long)c.shape[1], (long long)c.shape[2],
                 c.p.connectivity, multi, d);
        check_batch_at(c.name, &c, 1, NULL, t % 2 ? 6 : 1000, t % 2);
        free(c.data);
      }
  }
}

/* Lines along each of the 13 neighbour directions (anti-diagonals
 * included) through many 4 x 8 x 32 blocks and their corners: long chains
 * of unions across seams, which 6- and 18-connectivity must cut where the direction
 * has too many nonzero components. */
static void test_diagonals_gpu(void **state) {
  (void)state;
  uint64_t rng = g_rng ^ 0xd1a9;
  static const int conns[3] = {6, 18, 26};
  for (int ci = 0; ci < 3; ci++)
    for (int rep = 0; rep < 2; rep++) {
      ccl_case c;
      memset(&c, 0, sizeof c);
      c.shape[0] = 14, c.shape[1] = 26, c.shape[2] = 75;
      c.dtype = VP_U8;
      c.p.connectivity = conns[ci];
      c.p.multi_label = rep;
      ccl_case_alloc(&c);
      const int64_t D = c.shape[0], H = c.shape[1], W = c.shape[2];
      for (int line = 0; line < 40; line++) {
        const int dir = line % 13; /* 0..8: dz = 1; 9..12: dz = 0, forward in C order */
        const int dz = dir / 9 ? 0 : 1, r = dir % 9;
        int dy = r / 3 - 1, dx = r % 3 - 1;
        if (dir >= 9) { /* dz = 0: (0, 1, -1), (0, 1, 0), (0, 1, 1), (0, 0, 1) */
          dy = dir == 12 ? 0 : 1;
          dx = dir == 12 ? 1 : dir - 10;
        }
        int64_t z = (int64_t)(ccl_rand(&rng) % D), y = (int64_t)(ccl_rand(&rng) % H),
                x = (int64_t)(ccl_rand(&rng) % W);
        const double value = rep ? 1 + (double)(line % 3) : 1;
        for (int i = 0; i < 60 && z >= 0 && z < D && y >= 0 && y < H && x >= 0 && x < W; i++) {
          ccl_set(&c, (z * H + y) * W + x, value);
          z += dz, y += dy, x += dx;
        }
      }
      snprintf(c.name, sizeof c.name, "diagonal lines conn %d multi %d", c.p.connectivity, rep);
      check_batch_at(c.name, &c, 1, NULL, 64, rep);
      free(c.data);
    }
}

/* Larger volumes whose extents sit just past block multiples, a long thin
 * one, a tall 2-D one, and a misaligned batch of mixed shapes. */
static void test_large_seams_gpu(void **state) {
  (void)state;
  uint64_t rng = g_rng ^ 0x1a75;
  static const int64_t shapes[4][3] = {{37, 129, 257}, {33, 65, 97}, {2, 3, 70001}, {1, 2001, 33}};
  static const int conns[4] = {26, 6, 18, 8};
  static const double dens[4] = {0.05, 0.45, 0.6, 0.5};
  for (int k = 0; k < 4; k++) {
    ccl_case c;
    memset(&c, 0, sizeof c);
    memcpy(c.shape, shapes[k], sizeof c.shape);
    c.dtype = k == 1 ? VP_I16 : VP_U8;
    c.p.connectivity = conns[k];
    c.p.multi_label = k == 1;
    ccl_case_alloc(&c);
    for (int64_t e = 0; e < c.shape[0] * c.shape[1] * c.shape[2]; e++)
      ccl_set(&c, e, ccl_u01(&rng) < dens[k] ? 1 + (double)(ccl_rand(&rng) % 2) : 0);
    snprintf(c.name, sizeof c.name, "large %lldx%lldx%lld conn %d", (long long)c.shape[0],
             (long long)c.shape[1], (long long)c.shape[2], c.p.connectivity);
    check_batch_at(c.name, &c, 1, NULL, 200, k % 2);
    free(c.data);
  }
  enum { N = 5 };
  ccl_case cs[N];
  static const int64_t bs[N][3] = {{1, 1, 1}, {9, 17, 33}, {0, 4, 4}, {5, 1, 63}, {4, 8, 32}};
  for (int i = 0; i < N; i++) {
    memset(&cs[i], 0, sizeof cs[i]);
    memcpy(cs[i].shape, bs[i], sizeof cs[i].shape);
    cs[i].dtype = VP_U8;
    cs[i].p.connectivity = 18;
    ccl_case_alloc(&cs[i]);
    for (int64_t e = 0; e < bs[i][0] * bs[i][1] * bs[i][2]; e++)
      ccl_set(&cs[i], e, ccl_u01(&rng) < 0.4);
  }
  check_batch_at("misaligned mixed batch", cs, N, NULL, 10, 1);
  for (int i = 0; i < N; i++) free(cs[i].data);
}

/* Random binary volumes at full connectivity, several densities, shapes
 * with odd extents and extents of 1 (partial blocks at the far edges),
 * every other one with misaligned buffers; 3-D at 26 and 2-D at 8. */
static void test_blocks_random_gpu(void **state) {
  (void)state;
  uint64_t rng = g_rng ^ 0xb10c;
  static const int64_t shapes[][3] = {
      {1, 1, 1}, {1, 1, 2},  {2, 2, 2},    {3, 5, 7},    {1, 9, 13},  {1, 1, 77},  {29, 1, 1},
      {5, 1, 9}, {2, 31, 1}, {17, 23, 29}, {16, 32, 64}, {1, 64, 96}, {1, 97, 33}, {40, 41, 39}};
  static const double dens[4] = {0.01, 0.05, 0.3, 0.6};
  static const vp_dtype types[5] = {VP_U8, VP_F32, VP_I16, VP_F16, VP_I64};
  int t = 0;
  for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++)
    for (int di = 0; di < 4; di++, t++) {
      ccl_case c;
      memset(&c, 0, sizeof c);
      memcpy(c.shape, shapes[k], sizeof c.shape);
      c.dtype = types[t % 5];
      c.p.connectivity = c.shape[0] == 1 && t % 2 ? 8 : 26;
      c.p.background = t % 3 == 0 ? 2 : 0; /* a nonzero background now and then */
      ccl_case_alloc(&c);
      for (int64_t e = 0; e < c.shape[0] * c.shape[1] * c.shape[2]; e++)
        ccl_set(&c, e,
                c.p.background + (ccl_u01(&rng) < dens[di] ? 1 + (double)(ccl_rand(&rng) % 3) : 0));
      snprintf(c.name, sizeof c.name, "blocks %lldx%lldx%lld conn %d density %.2f",
               (long long)c.shape[0], (long long)c.shape[1], (long long)c.shape[2],
               c.p.connectivity, dens[di]);
      check_batch_at(c.name, &c, 1, NULL, t % 2 ? 5 : 4000, t % 2);
      free(c.data);
    }
}

/* Components whose first voxel (C order) is not in their smallest block:
 * A = a chain from (1, 0, 0) to (0, 5, 0) (blocks 0..2, first voxel in
 * block 2), B = {(0, 6, 3)}, C = {(1, 0, 3)}. Numbered by first voxel:
 * A (index 20) 1, B (27) 2, C (35) 3, though C's block (1) precedes B's
 * (7) and A's root block is 0. */
static void test_blocks_first_voxel_gpu(void **state) {
  (void)state;
  ccl_case c;
  memset(&c, 0, sizeof c);
  c.shape[0] = 2, c.shape[1] = 8, c.shape[2] = 4;
  c.dtype = VP_U8;
  c.p.connectivity = 26;
  ccl_case_alloc(&c);
  static const int vox[][3] = {{1, 0, 0}, {1, 1, 0}, {1, 2, 0}, {1, 3, 0},
                               {1, 4, 0}, {0, 5, 0}, {0, 6, 3}, {1, 0, 3}};
  for (size_t i = 0; i < sizeof vox / sizeof vox[0]; i++)
    ccl_set(&c, (vox[i][0] * 8 + vox[i][1]) * 4 + vox[i][2], 1);
  snprintf(c.name, sizeof c.name, "first voxel outside the smallest block");
  int32_t lab[64];
  assert_int_equal(ccl_oracle(&c, lab), 3);
  assert_int_equal(lab[20], 1); /* the oracle agrees with the comment */
  assert_int_equal(lab[27], 2);
  assert_int_equal(lab[35], 3);
  check_batch(c.name, &c, 1, NULL, 4);
  free(c.data);
}

/* A 2-D batch of mixed shapes at 8-connectivity with a device selection
 * (one sample selecting nothing) and full stats; then a 3-D one at 26. */
static void test_blocks_batch_gpu(void **state) {
  (void)state;
  uint64_t rng = g_rng ^ 0xba7c;
  enum { N = 7 };
  ccl_case cs[N];
  const int64_t sel[N] = {1, -1, 2, 3, 1, 0, 2};
  for (int dim = 2; dim <= 3; dim++) {
    for (int i = 0; i < N; i++) {
      memset(&cs[i], 0, sizeof cs[i]);
      cs[i].dtype = VP_I16;
      cs[i].p.connectivity = dim == 2 ? 8 : 26;
      cs[i].shape[0] = dim == 2 ? 1 : 1 + (int64_t)(ccl_rand(&rng) % 9);
      cs[i].shape[1] = 1 + (int64_t)(ccl_rand(&rng) % (i == 2 ? 300 : 40));
      cs[i].shape[2] = 1 + (int64_t)(ccl_rand(&rng) % 41);
      ccl_case_alloc(&cs[i]);
      for (int64_t e = 0; e < cs[i].shape[0] * cs[i].shape[1] * cs[i].shape[2]; e++)
        ccl_set(&cs[i], e, ccl_u01(&rng) < 0.6 ? (double)(ccl_rand(&rng) % 4) : 0);
    }
    check_batch(dim == 2 ? "2-D selection batch (8)" : "3-D selection batch (26)", cs, N, sel,
                10000);
    check_batch_at(dim == 2 ? "2-D batch (8)" : "3-D batch (26)", cs, N, NULL, 7, 1);
    for (int i = 0; i < N; i++) free(cs[i].data);
  }
}

/* The benchmark's volume (bench/bench_ccl.py "blobs"): 155 x 240 x 240,
 * boxes of 2..4 voxels per side until 5 % is set, at 26; twice, so that a
 * run-to-run difference (a race) shows as a mismatch in one of them. */
static void test_blocks_blobs_gpu(void **state) {
  (void)state;
  uint64_t rng = g_rng ^ 0xb10b5;
  ccl_case c;
  bench_sized_case(&c, 26);
  uint8_t *v = (uint8_t *)c.data;
  const int64_t n = 155 * 240 * 240;
  int64_t set = 0;
  while (set < n / 20) {
    const int64_t z = (int64_t)(ccl_rand(&rng) % 155), y = (int64_t)(ccl_rand(&rng) % 240),
                  x = (int64_t)(ccl_rand(&rng) % 240);
    const int64_t sz = 2 + (int64_t)(ccl_rand(&rng) % 3), sy = 2 + (int64_t)(ccl_rand(&rng) % 3),
                  sx = 2 + (int64_t)(ccl_rand(&rng) % 3);
    for (int64_t a = z; a < z + sz && a < 155; a++)
      for (int64_t b = y; b < y + sy && b < 240; b++)
        for (int64_t e = x; e < x + sx && e < 240; e++) {
          set += !v[(a * 240 + b) * 240 + e];
          v[(a * 240 + b) * 240 + e] = 1;
        }
  }
  check_batch("blobs 5 % conn 26", &c, 1, NULL, 20000);
  check_batch("blobs 5 % conn 26 again", &c, 1, NULL, 0);
  free(c.data);
}

/* The operator's GPU body into poisoned outputs against its CPU body. */
static void test_op_gpu(void **state) {
  (void)state;
  uint64_t rng = g_rng ^ 0x0b;
  const int64_t shapes[3][4] = {{9, 11, 13, 0}, {1, 7, 8, 9}, {20, 30, 0, 0}};
  const int ndims[3] = {3, 4, 2};
  const char *json[3] = {"{\"max_components\": 4}", "{\"max_components\": 4}",
                         "{\"max_components\": 4, \"connectivity\": 4}"};
  for (int t = 0; t < 3; t++) {
    vp_tensor *h = NULL, *d = NULL;
    VP_ASSERT_OK(vp_tensor_create(VP_I16, ndims[t], shapes[t], VP_MEM_HOST, 0, &h));
    for (int64_t e = 0; e < vp_tensor_numel(h); e++)
      ((int16_t *)vp_tensor_data(h))[e] = ccl_u01(&rng) < 0.4 ? 5 : 0;
    VP_ASSERT_OK(vp_tensor_copy_to(h, VP_MEM_DEVICE, 0, &d));
    vp_tensor *go[4] = {0}, *co[4] = {0};
    run_poisoned("connected_components", 1, &d, json[t], 0, go);
    const vp_op_desc *op = vp_op_lookup("connected_components");
    vp_op_args *args = NULL;
    VP_ASSERT_OK(vp_op_args_parse(op, json[t], 1, &args));
    vp_op_call c;
    memset(&c, 0, sizeof c);
    c.batch = 1;
    vp_tensor *in[1] = {h};
    c.in[0] = in;
    for (int k = 0; k < 4; k++) {
      vp_tensor *hg = to_host(go[k]);
      VP_ASSERT_OK(vp_tensor_create(vp_tensor_dtype(hg), vp_tensor_ndim(hg), vp_tensor_shape(hg),
                                    VP_MEM_HOST, 0, &co[k]));
      vp_tensor_release(go[k]);
      go[k] = hg;
    }
    vp_tensor *const *outs[4] = {&co[0], &co[1], &co[2], &co[3]};
    for (int k = 0; k < 4; k++) c.out[k] = outs[k];
    c.args = args;
    VP_ASSERT_OK(op->run_cpu(&c));
    for (int k = 0; k < 4; k++) {
      assert_int_equal(vp_tensor_nbytes(go[k]), vp_tensor_nbytes(co[k]));
      assert_memory_equal(vp_tensor_data(go[k]), vp_tensor_data(co[k]), vp_tensor_nbytes(co[k]));
    }
    vp_op_args_free(args);
    release_all(go, 4);
    release_all(co, 4);
    vp_tensor_release(h);
    vp_tensor_release(d);
  }
}

int main(void) {
  if (vp_cuda_device_count() == 0) {
    fprintf(stderr, "no CUDA device: skipped\n");
    return 77;
  }
  g_rng = vp_test_seed();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_cases_gpu),
      cmocka_unit_test(test_batch_select_gpu),
      cmocka_unit_test(test_large_gpu),
      cmocka_unit_test(test_seams_gpu),
      cmocka_unit_test(test_diagonals_gpu),
      cmocka_unit_test(test_large_seams_gpu),
      cmocka_unit_test(test_op_gpu),
      cmocka_unit_test(test_blocks_random_gpu),
      cmocka_unit_test(test_blocks_first_voxel_gpu),
      cmocka_unit_test(test_blocks_batch_gpu),
      cmocka_unit_test(test_blocks_blobs_gpu),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
