/* Connected-component labelling on the CPU: run-based union-find.
 *
 * Rows (d, h) are scanned into runs of foreground voxels (multi-label:
 * runs of equal values); each run is one union-find node, numbered in C
 * order. A run joins the runs it touches in its backward neighbour rows
 * (d, h-1), (d-1, h-1), (d-1, h), (d-1, h+1), overlapping exactly or with
 * one voxel of slack depending on the connectivity. Unions link the larger
 * root under the smaller, so every root is its component's first run: the
 * partition and the roots do not depend on the order of the unions, hence
 * the labels not on the thread count.
 *
 * Parallel: the rows are cut into slabs; each thread unions inside its
 * slab, then the slab borders are joined in order on the calling thread,
 * and labels are assigned per slab after a prefix sum of the root counts. */
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "ops/ccl.h"

vp_status vp_ccl_check(const char *who, const int64_t shape[3], const vp_ccl_params *p,
                       int *conn3) {
  if (!p) return vp_fail(VP_ERR_INVALID_ARG, "%s: parameters are NULL", who);
  for (int k = 0; k < 3; k++)
    if (shape[k] < 0)
      return vp_fail(VP_ERR_INVALID_ARG, "%s: extent %d is negative (%lld)", who, k,
                     (long long)shape[k]);
  /* in doubles: exact below 2^53, and anything above is refused anyway */
  const double n = (double)shape[0] * (double)shape[1] * (double)shape[2];
  if (n > (double)INT32_MAX)
    return vp_fail(VP_ERR_UNSUPPORTED,
                   "%s: %lld x %lld x %lld voxels exceed the 2^31-1 that int32 labels allow", who,
                   (long long)shape[0], (long long)shape[1], (long long)shape[2]);
  switch (p->connectivity) {
    case 6:
    case 18:
    case 26: *conn3 = p->connectivity; return VP_OK;
    case 4:
    case 8:
      if (shape[0] > 1)
        return vp_fail(VP_ERR_INVALID_ARG,
                       "%s: connectivity %d is 2-D but the volume has %lld slices (use 6, 18 "
                       "or 26)",
                       who, p->connectivity, (long long)shape[0]);
      *conn3 = p->connectivity == 4 ? 6 : 18;
      return VP_OK;
    default:
      return vp_fail(VP_ERR_INVALID_ARG,
                     "%s: connectivity %d is not one of 6, 18, 26 (3-D) or 4, 8 (2-D)", who,
                     p->connectivity);
  }
}

/* ------------------------------------------------------------------ */
/* Row scanning                                                        */

typedef struct ccl_job {
  const void *in;
  vp_dtype dtype;
  int64_t D, H, W, rows;
  vp_ccl_pred pred;
  int multi;
  int conn;
  int64_t *row_off; /* rows + 1: first run of each row */
  int32_t *x0, *x1; /* runs: [x0, x1) */
  int32_t *parent;  /* per run; then the label of the run */
  int64_t nslab, slab_rows;
  int64_t *slab_roots; /* roots per slab, then their exclusive prefix */
  int32_t *labels;
} ccl_job;

/* Runs of one row, counted (x0 == NULL) or stored. FG(v): foreground;
 * a run extends over foreground voxels (binary) or over voxels equal to
 * its first one (multi-label; those are foreground too). */
#define CCL_SCAN_BODY(T, FG)                          \
  const T *r = (const T *)j->in + row * j->W;         \
  const int64_t W = j->W;                             \
  int64_t n = 0, x = 0;                               \
  while (x < W) {                                     \
    while (x < W && !(FG(r[x]))) x++;                 \
    if (x >= W) break;                                \
    const int64_t s = x;                              \
    const T v = r[x++];                               \
    if (j->multi) {                                   \
      while (x < W && r[x] == v) x++;                 \
    } else {                                          \
      while (x < W && (FG(r[x]))) x++;                \
    }                                                 \
    if (x0) {                                         \
      x0[n] = (int32_t)s;                             \
      x1[n] = (int32_t)x;                             \
    }                                                 \
    n++;                                              \
  }                                                   \
  return n;

/* Written out per type: the predicate needs the element expression. */
#define SCAN_FN(NAME, T, EXPR)                                                   \
  static int64_t NAME(const ccl_job *j, int64_t row, int32_t *x0, int32_t *x1) { \
    const vp_ccl_pred *pr = &j->pred;                                            \
    (void)pr;                                                                    \
    EXPR                                                                         \
  }

#define INT_FG_SEL(v) ((int64_t)(v) == ref)
#define INT_FG_BG(v) ((int64_t)(v) != ref)
#define INT_FG_ALL(v) ((void)(v), 1)
#define INT_SCAN(T)                           \
  if (pr->select && !pr->has_ref) return 0;   \
  const int64_t ref = pr->iref;               \
  (void)ref;                                  \
  if (pr->has_ref && pr->select) {            \
    CCL_SCAN_BODY(T, INT_FG_SEL)              \
  }                                           \
  if (pr->has_ref) {                          \
    CCL_SCAN_BODY(T, INT_FG_BG)               \
  }                                           \
  CCL_SCAN_BODY(T, INT_FG_ALL)

#define FLT_FG(v) vp_ccl_fg_float(pr, (double)(v))
#define HALF_FG(v) vp_ccl_fg_float(pr, (double)vp_cvt_half_to_float(v))

SCAN_FN(scan_u8, uint8_t, INT_SCAN(uint8_t))
SCAN_FN(scan_i8, int8_t, INT_SCAN(int8_t))
SCAN_FN(scan_u16, uint16_t, INT_SCAN(uint16_t))
SCAN_FN(scan_i16, int16_t, INT_SCAN(int16_t))
SCAN_FN(scan_u32, uint32_t, INT_SCAN(uint32_t))
SCAN_FN(scan_i32, int32_t, INT_SCAN(int32_t))
SCAN_FN(scan_i64, int64_t, INT_SCAN(int64_t))
SCAN_FN(scan_f32, float, CCL_SCAN_BODY(float, FLT_FG))
SCAN_FN(scan_f64, double, CCL_SCAN_BODY(double, FLT_FG))

/* Half floats: equality of the decoded values (so +0 and -0 are one
 * value, NaNs none), as the GPU compares them. */
static int64_t scan_f16(const ccl_job *j, int64_t row, int32_t *x0, int32_t *x1) {
  const vp_ccl_pred *pr = &j->pred;
  const uint16_t *r = (const uint16_t *)j->in + row * j->W;
  const int64_t W = j->W;
  int64_t n = 0, x = 0;
  while (x < W) {
    while (x < W && !HALF_FG(r[x])) x++;
    if (x >= W) break;
    const int64_t s = x;
    const float v = vp_cvt_half_to_float(r[x++]);
    if (j->multi) {
      while (x < W && vp_cvt_half_to_float(r[x]) == v) x++;
    } else {
      while (x < W && HALF_FG(r[x])) x++;
    }
    if (x0) {
      x0[n] = (int32_t)s;
      x1[n] = (int32_t)x;
    }
    n++;
  }
  return n;
}

static int64_t scan_row(const ccl_job *j, int64_t row, int32_t *x0, int32_t *x1) {
  switch (j->dtype) {
    case VP_U8: return scan_u8(j, row, x0, x1);
    case VP_I8: return scan_i8(j, row, x0, x1);
    case VP_U16: return scan_u16(j, row, x0, x1);
    case VP_I16: return scan_i16(j, row, x0, x1);
    case VP_U32: return scan_u32(j, row, x0, x1);
    case VP_I32: return scan_i32(j, row, x0, x1);
    case VP_I64: return scan_i64(j, row, x0, x1);
    case VP_F16: return scan_f16(j, row, x0, x1);
    case VP_F32: return scan_f32(j, row, x0, x1);
    case VP_F64: return scan_f64(j, row, x0, x1);
    default: return 0;
  }
}

/* Multi-label: do elements a and b hold equal values (compared as the
 * row scan compares them)? */
static int same_value(const ccl_job *j, int64_t a, int64_t b) {
  const void *p = j->in;
  switch (j->dtype) {
    case VP_U8: return ((const uint8_t *)p)[a] == ((const uint8_t *)p)[b];
    case VP_I8: return ((const int8_t *)p)[a] == ((const int8_t *)p)[b];
    case VP_U16: return ((const uint16_t *)p)[a] == ((const uint16_t *)p)[b];
    case VP_I16: return ((const int16_t *)p)[a] == ((const int16_t *)p)[b];
    case VP_U32: return ((const uint32_t *)p)[a] == ((const uint32_t *)p)[b];
    case VP_I32: return ((const int32_t *)p)[a] == ((const int32_t *)p)[b];
    case VP_I64: return ((const int64_t *)p)[a] == ((const int64_t *)p)[b];
    case VP_F16:
      return vp_cvt_half_to_float(((const uint16_t *)p)[a]) ==
             vp_cvt_half_to_float(((const uint16_t *)p)[b]);
    case VP_F32: return ((const float *)p)[a] == ((const float *)p)[b];
    case VP_F64: return ((const double *)p)[a] == ((const double *)p)[b];
    default: return 0;
  }
}

/* ------------------------------------------------------------------ */
/* Union-find over runs                                                */

/* parent[x] <= x always holds, so roots are the smallest members. */
static int32_t find_root(int32_t *p, int32_t x) {
  while (p[x] != x) {
    p[x] = p[p[x]]; /* path halving keeps the trees shallow */
    x = p[x];
  }
  return x;
}

static void unite(int32_t *p, int32_t a, int32_t b) {
  a = find_root(p, a);
  b = find_root(p, b);
  if (a < b) p[b] = a;
  else if (b < a) p[a] = b;
}

/* Joins the runs of row `row` with those of the earlier row `nb` that
 * they touch: overlap with `slack` voxels (0 or 1) of diagonal reach. */
static void join_rows(ccl_job *j, int64_t row, int64_t nb, int slack) {
  int64_t a = j->row_off[row], a_end = j->row_off[row + 1];
  int64_t b = j->row_off[nb], b_end = j->row_off[nb + 1];
  const int32_t *x0 = j->x0, *x1 = j->x1;
  for (; a < a_end && b < b_end; a++) {
    /* runs of nb that end before this run starts touch no later run */
    while (b < b_end && x1[b] + slack <= x0[a]) b++;
    for (int64_t k = b; k < b_end && x0[k] < x1[a] + slack; k++) {
      if (j->multi && !same_value(j, row * j->W + x0[a], nb * j->W + x0[k])) continue;
      unite(j->parent, (int32_t)a, (int32_t)k);
    }
  }
}

/* The backward neighbour rows of `row` at or after row `lo` (earlier rows
 * are another slab's), joined. lo_only: only those before row `lo`. */
static void join_backward(ccl_job *j, int64_t row, int64_t lo, int before_lo) {
  const int64_t H = j->H, d = row / H, h = row - d * H;
  /* (dd, dh, slack per connectivity 6/18/26) */
  const int c = j->conn;
  struct {
    int dd, dh, slack;
    int on;
  } nb[4] = {
      {0, -1, c == 6 ? 0 : 1, 1},
      {-1, 0, c == 6 ? 0 : 1, 1},
      {-1, -1, c == 26 ? 1 : 0, c != 6},
      {-1, 1, c == 26 ? 1 : 0, c != 6},
  };
  for (int k = 0; k < 4; k++) {
    if (!nb[k].on) continue;
    const int64_t dd = d + nb[k].dd, hh = h + nb[k].dh;
    if (dd < 0 || hh < 0 || hh >= H) continue;
    const int64_t other = dd * H + hh;
    if ((other < lo) != before_lo) continue;
    join_rows(j, row, other, nb[k].slack);
  }
}

/* ------------------------------------------------------------------ */
/* Parallel phases, one index per slab                                 */

static void slab_range(const ccl_job *j, int64_t s, int64_t *r0, int64_t *r1) {
  *r0 = s * j->slab_rows;
  *r1 = *r0 + j->slab_rows < j->rows ? *r0 + j->slab_rows : j->rows;
}

static vp_status phase_count(void *ctx, int64_t s) {
  ccl_job *j = ctx;
  int64_t r0, r1;
  slab_range(j, s, &r0, &r1);
  for (int64_t r = r0; r < r1; r++) j->row_off[r + 1] = scan_row(j, r, NULL, NULL);
  return VP_OK;
}

static vp_status phase_fill_join(void *ctx, int64_t s) {
  ccl_job *j = ctx;
  int64_t r0, r1;
  slab_range(j, s, &r0, &r1);
  for (int64_t r = r0; r < r1; r++) {
    const int64_t first = j->row_off[r];
    scan_row(j, r, j->x0 + first, j->x1 + first);
    for (int64_t k = first; k < j->row_off[r + 1]; k++) j->parent[k] = (int32_t)k;
    join_backward(j, r, r0, 0);
  }
  return VP_OK;
}

static vp_status phase_count_roots(void *ctx, int64_t s) {
  ccl_job *j = ctx;
  int64_t r0, r1;
  slab_range(j, s, &r0, &r1);
  int64_t n = 0;
  for (int64_t k = j->row_off[r0]; k < j->row_off[r1]; k++) n += j->parent[k] == k;
  j->slab_roots[s] = n;
  return VP_OK;
}

/* Roots take their labels; other runs keep their parent for now (parent
 * arrays are only read across slabs from here on, roots only written). */
static vp_status phase_label_roots(void *ctx, int64_t s) {
  ccl_job *j = ctx;
  int64_t r0, r1;
  slab_range(j, s, &r0, &r1);
  int32_t next = (int32_t)j->slab_roots[s];
  for (int64_t k = j->row_off[r0]; k < j->row_off[r1]; k++)
    if (j->parent[k] == k) /* negative: a final label */
      __atomic_store_n(&j->parent[k], -(++next), __ATOMIC_RELAXED);
  return VP_OK;
}

/* The label of run k, whose parent chain ends at a root holding -label.
 * A parent inside the slab was relabelled before k (parents are smaller);
 * one in an earlier slab may be mid-update by its thread, so the chain
 * through it is followed to the root, which no one writes any more. */
static vp_status phase_label_rest(void *ctx, int64_t s) {
  ccl_job *j = ctx;
  int64_t r0, r1;
  slab_range(j, s, &r0, &r1);
  const int64_t k0 = j->row_off[r0];
  int32_t *p = j->parent;
  for (int64_t k = k0; k < j->row_off[r1]; k++) {
    int32_t q = p[k];
    if (q < 0) continue;
    if (q >= k0) {
      __atomic_store_n(&p[k], p[q], __ATOMIC_RELAXED); /* p[q]: final, -label */
      continue;
    }
    /* Cross-slab: read-only walk. Runs of earlier slabs are written only
     * by their own thread, from a parent index (>= 0) to -label, and a
     * walk that meets a negative value has its label. */
    int32_t v = q;
    for (;;) {
      int32_t w = __atomic_load_n(&p[v], __ATOMIC_RELAXED);
      if (w < 0) {
        __atomic_store_n(&p[k], w, __ATOMIC_RELAXED);
        break;
      }
      v = w;
    }
  }
  /* write the rows */
  for (int64_t r = r0; r < r1; r++) {
    int32_t *out = j->labels + r * j->W;
    int64_t x = 0;
    for (int64_t k = j->row_off[r]; k < j->row_off[r + 1]; k++) {
      for (; x < j->x0[k]; x++) out[x] = 0;
      const int32_t lab = -p[k];
      for (; x < j->x1[k]; x++) out[x] = lab;
    }
    for (; x < j->W; x++) out[x] = 0;
  }
  return VP_OK;
}

vp_status vp_ccl_label_cpu(const void *in, vp_dtype dtype, const int64_t shape[3],
                           const vp_ccl_params *p, int32_t *labels, int64_t *count,
                           vp_threadpool *pool) {
  const char *who = "connected components";
  int conn;
  VP_TRY(vp_ccl_check(who, shape, p, &conn));
  if (!vp_dtype_size(dtype)) return vp_fail(VP_ERR_INVALID_ARG, "%s: invalid dtype", who);
  if (!count || (!labels && shape[0] * shape[1] * shape[2] > 0) ||
      (!in && shape[0] * shape[1] * shape[2] > 0))
    return vp_fail(VP_ERR_INVALID_ARG, "%s: NULL input, labels or count", who);
  *count = 0;
  ccl_job j;
  memset(&j, 0, sizeof j);
  j.in = in;
  j.dtype = dtype;
  j.D = shape[0];
  j.H = shape[1];
  j.W = shape[2];
  j.rows = j.D * j.H;
  if (j.rows == 0 || j.W == 0) return VP_OK;
  j.multi = p->multi_label && !p->select;
  j.conn = conn;
  j.pred = vp_ccl_pred_of(p->select != 0, p->select ? p->select_value : p->background);
  j.labels = labels;

  /* Slabs of at least H + 1 rows, so that only a slab's first rows reach
   * into the slab before it; no more slabs than threads. */
  const int64_t threads = pool ? vp_threadpool_size(pool) : 1;
  int64_t min_rows = j.H + 1 > 64 ? j.H + 1 : 64;
  j.nslab = j.rows / min_rows;
  if (j.nslab > threads) j.nslab = threads;
  if (j.nslab < 1) j.nslab = 1;
  j.slab_rows = (j.rows + j.nslab - 1) / j.nslab;
  j.nslab = (j.rows + j.slab_rows - 1) / j.slab_rows;

  vp_status s = VP_OK;
  j.row_off = malloc((size_t)(j.rows + 1) * sizeof *j.row_off);
  j.slab_roots = malloc((size_t)j.nslab * sizeof *j.slab_roots);
  if (!j.row_off || !j.slab_roots) {
    s = vp_fail(VP_ERR_NOMEM, "%s: out of memory for %lld row offsets", who, (long long)j.rows);
    goto done;
  }
  j.row_off[0] = 0;
  s = vp_parallel_for(pool, j.nslab, phase_count, &j);
  if (s != VP_OK) goto done;
  for (int64_t r = 0; r < j.rows; r++) j.row_off[r + 1] += j.row_off[r];
  const int64_t runs = j.row_off[j.rows]; /* <= voxels <= INT32_MAX */
  if (runs > 0) {
    j.x0 = malloc((size_t)runs * sizeof *j.x0);
    j.x1 = malloc((size_t)runs * sizeof *j.x1);
    j.parent = malloc((size_t)runs * sizeof *j.parent);
    if (!j.x0 || !j.x1 || !j.parent) {
      s = vp_fail(VP_ERR_NOMEM, "%s: out of memory for %lld runs", who, (long long)runs);
      goto done;
    }
  }
  s = vp_parallel_for(pool, j.nslab, phase_fill_join, &j);
  if (s != VP_OK) goto done;
  /* slab borders, in order: the first rows of slab b reach back into
   * earlier slabs */
  for (int64_t b = 1; b < j.nslab; b++) {
    int64_t r0, r1;
    slab_range(&j, b, &r0, &r1);
    const int64_t reach = r0 + j.H + 1 < r1 ? r0 + j.H + 1 : r1;
    for (int64_t r = r0; r < reach; r++) join_backward(&j, r, r0, 1);
  }
  s = vp_parallel_for(pool, j.nslab, phase_count_roots, &j);
  if (s != VP_OK) goto done;
  int64_t total = 0;
  for (int64_t b = 0; b < j.nslab; b++) {
    const int64_t n = j.slab_roots[b];
    j.slab_roots[b] = total;
    total += n;
  }
  s = vp_parallel_for(pool, j.nslab, phase_label_roots, &j);
  if (s == VP_OK) s = vp_parallel_for(pool, j.nslab, phase_label_rest, &j);
  if (s == VP_OK) *count = total;
done:
  free(j.row_off);
  free(j.slab_roots);
  free(j.x0);
  free(j.x1);
  free(j.parent);
  return s;
}

/* ------------------------------------------------------------------ */
/* Statistics                                                          */

typedef struct stats_job {
  const int32_t *labels;
  int64_t H, W, rows, count;
  int64_t nchunk, chunk_rows;
  int64_t *sizes, *boxes; /* nchunk partial tables */
  int64_t *bad;           /* per chunk: first invalid element, or -1 */
} stats_job;

static vp_status stats_chunk(void *ctx, int64_t c) {
  stats_job *j = ctx;
  int64_t *sizes = j->sizes + c * j->count, *boxes = j->boxes + c * j->count * 6;
  for (int64_t k = 0; k < j->count; k++) {
    int64_t *b = boxes + k * 6;
    b[0] = b[1] = b[2] = INT64_MAX;
    b[3] = b[4] = b[5] = 0;
  }
  memset(sizes, 0, (size_t)j->count * sizeof *sizes);
  j->bad[c] = -1;
  const int64_t r0 = c * j->chunk_rows;
  const int64_t r1 = r0 + j->chunk_rows < j->rows ? r0 + j->chunk_rows : j->rows;
  for (int64_t r = r0; r < r1; r++) {
    const int32_t *row = j->labels + r * j->W;
    const int64_t d = r / j->H, h = r - d * j->H;
    for (int64_t x = 0; x < j->W;) {
      const int32_t l = row[x];
      int64_t e = x + 1;
      while (e < j->W && row[e] == l) e++;
      if (l != 0) {
        if (l < 0 || l > j->count) {
          j->bad[c] = r * j->W + x;
          return VP_OK;
        }
        int64_t *b = boxes + (int64_t)(l - 1) * 6;
        sizes[l - 1] += e - x;
        if (d < b[0]) b[0] = d;
        if (h < b[1]) b[1] = h;
        if (x < b[2]) b[2] = x;
        if (d + 1 > b[3]) b[3] = d + 1;
        if (h + 1 > b[4]) b[4] = h + 1;
        if (e > b[5]) b[5] = e;
      }
      x = e;
    }
  }
  return VP_OK;
}

vp_status vp_ccl_stats_cpu(const int32_t *labels, const int64_t shape[3], int64_t count,
                           int64_t *sizes, int64_t *boxes, vp_threadpool *pool) {
  const char *who = "component statistics";
  vp_ccl_params p = {.connectivity = 26};
  int conn;
  VP_TRY(vp_ccl_check(who, shape, &p, &conn));
  if (count < 0 || count > INT32_MAX)
    return vp_fail(VP_ERR_INVALID_ARG, "%s: count %lld is outside [0, 2^31-1]", who,
                   (long long)count);
  const int64_t n = shape[0] * shape[1] * shape[2];
  if (count == 0 && n == 0) return VP_OK;
  if (!labels && n > 0) return vp_fail(VP_ERR_INVALID_ARG, "%s: labels are NULL", who);
  if (count > n)
    return vp_fail(VP_ERR_INVALID_ARG, "%s: count %lld exceeds the %lld voxels", who,
                   (long long)count, (long long)n);
  if (!sizes && !boxes) return VP_OK;
  stats_job j = {labels, shape[1], shape[2], shape[0] * shape[1], count, 1, 0, NULL, NULL, NULL};
  /* One partial table per thread while the tables stay small next to the
   * labels; a single pass otherwise. */
  const int64_t threads = pool ? vp_threadpool_size(pool) : 1;
  if (threads > 1 && count * 56 * threads <= (n * 4 > (1 << 26) ? n * 4 : (1 << 26)))
    j.nchunk = threads < j.rows ? threads : (j.rows > 0 ? j.rows : 1);
  j.chunk_rows = j.rows > 0 ? (j.rows + j.nchunk - 1) / j.nchunk : 0;
  vp_status s = VP_OK;
  j.sizes = malloc((size_t)(j.nchunk * count + 1) * sizeof *j.sizes);
  j.boxes = malloc((size_t)(j.nchunk * count * 6 + 1) * sizeof *j.boxes);
  j.bad = malloc((size_t)j.nchunk * sizeof *j.bad);
  if (!j.sizes || !j.boxes || !j.bad) {
    s = vp_fail(VP_ERR_NOMEM, "%s: out of memory for %lld components", who, (long long)count);
    goto done;
  }
  s = vp_parallel_for(pool, j.nchunk, stats_chunk, &j);
  if (s != VP_OK) goto done;
  for (int64_t c = 0; c < j.nchunk; c++)
    if (j.bad[c] >= 0) {
      s = vp_fail(VP_ERR_INVALID_ARG, "%s: label %d at element %lld is outside [0, %lld]", who,
                  labels[j.bad[c]], (long long)j.bad[c], (long long)count);
      goto done;
    }
  for (int64_t c = 1; c < j.nchunk; c++) {
    for (int64_t k = 0; k < count; k++) {
      j.sizes[k] += j.sizes[c * count + k];
      int64_t *b = j.boxes + k * 6;
      const int64_t *o = j.boxes + (c * count + k) * 6;
      for (int a = 0; a < 3; a++) {
        if (o[a] < b[a]) b[a] = o[a];
        if (o[a + 3] > b[a + 3]) b[a + 3] = o[a + 3];
      }
    }
  }
  for (int64_t k = 0; k < count; k++)
    if (j.sizes[k] == 0) /* a label with no voxel: an all-zero box */
      for (int a = 0; a < 6; a++) j.boxes[k * 6 + a] = 0;
  if (sizes) memcpy(sizes, j.sizes, (size_t)count * sizeof *sizes);
  if (boxes) memcpy(boxes, j.boxes, (size_t)count * 6 * sizeof *boxes);
done:
  free(j.sizes);
  free(j.boxes);
  free(j.bad);
  return s;
}
