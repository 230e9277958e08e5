/* Connected-component labelling on the CPU: run-based union-find in one
 * scan.
 *
 * Rows (d, h) are scanned into runs of foreground voxels (multi-label:
 * runs of equal values); each run is one union-find node, numbered in C
 * order. Integer rows are scanned eight bytes at a time (background is
 * skipped and runs are measured a 64-bit word per step), floats voxel by
 * voxel. Right after its row is scanned, a run joins the runs it touches
 * in its backward neighbour rows (d, h-1), (d-1, h-1), (d-1, h),
 * (d-1, h+1), overlapping exactly or with one voxel of slack depending on
 * the connectivity. Unions link the larger root under the smaller, so
 * every root is its component's first run: the partition and the roots do
 * not depend on the order of the unions, hence the labels not on the
 * thread count.
 *
 * Parallel: the rows are cut into slabs; each thread scans and unites its
 * slab into growable run arrays of its own (one pass over the input); the
 * arrays are then gathered into one numbering, the slab borders joined in
 * order on the calling thread, and labels assigned per slab after a
 * prefix sum of the root counts. */
#include "ops/ccl.h"

#include <stdlib.h>
#include <string.h>

#include "core/status.h"

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

/* Integer foreground tests, on the raw bits of the dtype's elements:
 * BG: fg = (v != c); SEL: fg = (v == c); ALL: the background is a value
 * that the dtype cannot hold; NONE: so is the selected value. */
enum { CCL_BG, CCL_SEL, CCL_ALL, CCL_NONE };

/* The runs of one slab, [x0, x1) with their union-find parents, indexed
 * from 0 in the slab until they are gathered into one numbering. */
typedef struct ccl_runs {
  int32_t *x0, *x1, *parent;
  int64_t n, cap;
} ccl_runs;

typedef struct ccl_job {
  const void *in;
  vp_dtype dtype;
  int64_t D, H, W, rows;
  vp_ccl_pred pred;
  int imode;     /* integer dtypes: CCL_BG ... */
  uint64_t iraw; /* the reference value's bits in the dtype */
  int multi;
  int conn;
  int64_t *row_off; /* rows + 1: first run of each row */
  ccl_runs *slab;   /* per slab, while scanning */
  int32_t *x0, *x1; /* all runs, after the gathering */
  int32_t *parent;  /* per run; then the label of the run */
  int64_t nslab, slab_rows;
  int64_t *slab_base;  /* first run of each slab */
  int64_t *slab_roots; /* roots per slab, then their exclusive prefix */
  int32_t *labels;
} ccl_job;

static int runs_grow(ccl_runs *r) {
  const int64_t cap = r->cap ? 2 * r->cap : 4096;
  const size_t bytes = (size_t)cap * sizeof(int32_t);
  int32_t *a = realloc(r->x0, bytes);
  if (a) r->x0 = a;
  int32_t *b = a ? realloc(r->x1, bytes) : NULL;
  if (b) r->x1 = b;
  int32_t *c = b ? realloc(r->parent, bytes) : NULL;
  if (!c) return 0;
  r->parent = c;
  r->cap = cap;
  return 1;
}

static inline int runs_push(ccl_runs *r, int64_t s, int64_t e) {
  if (r->n == r->cap && !runs_grow(r)) return 0;
  r->x0[r->n] = (int32_t)s;
  r->x1[r->n] = (int32_t)e;
  r->parent[r->n] = (int32_t)r->n;
  r->n++;
  return 1;
}

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define CCL_SWAR 1
#else
#define CCL_SWAR 0
#endif

/* find_ne / find_eq: the first x' >= x below W whose element differs from
 * (equals) c, else W. Eight bytes per step where the byte order allows:
 * w = word ^ broadcast(c) has zero lanes where the elements equal c, and
 * the lowest set bit of (w - ONES) & ~w & HIGHS marks the first of them
 * (a borrow reaches only lanes above a zero lane). */
#define CCL_FIND_FNS(T, SUF, ONES)                                                \
  static inline int64_t find_ne_##SUF(const T *r, int64_t x, int64_t W, T c) {    \
    const int64_t L = 8 / sizeof(T);                                              \
    const uint64_t cb = (uint64_t)c * (ONES);                                     \
    for (; CCL_SWAR && x + L <= W; x += L) {                                      \
      uint64_t w;                                                                 \
      memcpy(&w, r + x, 8);                                                       \
      w ^= cb;                                                                    \
      if (w) return x + __builtin_ctzll(w) / (8 * sizeof(T));                     \
    }                                                                             \
    while (x < W && r[x] == c) x++;                                               \
    return x;                                                                     \
  }                                                                               \
  static inline int64_t find_eq_##SUF(const T *r, int64_t x, int64_t W, T c) {    \
    const int64_t L = 8 / sizeof(T);                                              \
    const uint64_t cb = (uint64_t)c * (ONES), hi = (ONES) << (8 * sizeof(T) - 1); \
    for (; CCL_SWAR && x + L <= W; x += L) {                                      \
      uint64_t w;                                                                 \
      memcpy(&w, r + x, 8);                                                       \
      w ^= cb;                                                                    \
      const uint64_t z = (w - (ONES)) & ~w & hi;                                  \
      if (z) return x + __builtin_ctzll(z) / (8 * sizeof(T));                     \
    }                                                                             \
    while (x < W && r[x] != c) x++;                                               \
    return x;                                                                     \
  }

/* Integer rows, as unsigned lanes of the dtype's width. */
#define CCL_SCAN_INT(T, SUF)                                            \
  static int scan_##SUF(const ccl_job *j, int64_t row, ccl_runs *out) { \
    const T *r = (const T *)j->in + row * j->W;                         \
    const int64_t W = j->W;                                             \
    const T c = (T)j->iraw;                                             \
    const int mode = j->imode;                                          \
    if (mode == CCL_NONE) return 1;                                     \
    for (int64_t x = 0; x < W;) {                                       \
      const int64_t s = mode == CCL_BG    ? find_ne_##SUF(r, x, W, c)   \
                        : mode == CCL_SEL ? find_eq_##SUF(r, x, W, c)   \
                                          : x;                          \
      if (s >= W) break;                                                \
      x = j->multi          ? find_ne_##SUF(r, s + 1, W, r[s])          \
          : mode == CCL_BG  ? find_eq_##SUF(r, s + 1, W, c)             \
          : mode == CCL_SEL ? find_ne_##SUF(r, s + 1, W, c)             \
                            : W;                                        \
      if (!runs_push(out, s, x)) return 0;                              \
    }                                                                   \
    return 1;                                                           \
  }

CCL_FIND_FNS(uint8_t, u8, 0x0101010101010101ull)
CCL_FIND_FNS(uint16_t, u16, 0x0001000100010001ull)
CCL_FIND_FNS(uint32_t, u32, 0x0000000100000001ull)
CCL_FIND_FNS(uint64_t, u64, 1ull)
CCL_SCAN_INT(uint8_t, u8)
CCL_SCAN_INT(uint16_t, u16)
CCL_SCAN_INT(uint32_t, u32)
CCL_SCAN_INT(uint64_t, u64)

/* Float rows, voxel by voxel: equality of the values (decoded, for
 * halves), so +0 and -0 are one value and NaNs none, as on the GPU. */
#define F32_VAL(v) (double)(v)
#define F16_VAL(v) (double)vp_cvt_half_to_float(v)
#define CCL_SCAN_FLT(NAME, T, VAL)                                \
  static int NAME(const ccl_job *j, int64_t row, ccl_runs *out) { \
    const vp_ccl_pred *pr = &j->pred;                             \
    const T *r = (const T *)j->in + row * j->W;                   \
    const int64_t W = j->W;                                       \
    for (int64_t x = 0; x < W;) {                                 \
      while (x < W && !vp_ccl_fg_float(pr, VAL(r[x]))) x++;       \
      if (x >= W) break;                                          \
      const int64_t s = x;                                        \
      const double v = VAL(r[x++]);                               \
      if (j->multi) {                                             \
        while (x < W && VAL(r[x]) == v) x++;                      \
      } else {                                                    \
        while (x < W && vp_ccl_fg_float(pr, VAL(r[x]))) x++;      \
      }                                                           \
      if (!runs_push(out, s, x)) return 0;                        \
    }                                                             \
    return 1;                                                     \
  }
CCL_SCAN_FLT(scan_f16, uint16_t, F16_VAL)
CCL_SCAN_FLT(scan_f32, float, F32_VAL)
CCL_SCAN_FLT(scan_f64, double, F32_VAL)

/* Appends the runs of `row` to out; 0 when out cannot grow. */
static int scan_row(const ccl_job *j, int64_t row, ccl_runs *out) {
  switch (j->dtype) {
    case VP_U8:
    case VP_I8: return scan_u8(j, row, out);
    case VP_U16:
    case VP_I16: return scan_u16(j, row, out);
    case VP_U32:
    case VP_I32: return scan_u32(j, row, out);
    case VP_I64: return scan_u64(j, row, out);
    case VP_F16: return scan_f16(j, row, out);
    case VP_F32: return scan_f32(j, row, out);
    case VP_F64: return scan_f64(j, row, out);
    default: return 1;
  }
}

/* The integer test of the predicate: the reference's bits in the dtype,
 * or ALL / NONE when the dtype cannot hold it (no voxel equals it). */
static void int_mode(ccl_job *j) {
  const vp_ccl_pred *pr = &j->pred;
  int64_t lo = 0, hi = 0;
  switch (j->dtype) {
    case VP_U8: hi = UINT8_MAX; break;
    case VP_I8: lo = INT8_MIN, hi = INT8_MAX; break;
    case VP_U16: hi = UINT16_MAX; break;
    case VP_I16: lo = INT16_MIN, hi = INT16_MAX; break;
    case VP_U32: hi = UINT32_MAX; break;
    case VP_I32: lo = INT32_MIN, hi = INT32_MAX; break;
    case VP_I64: lo = INT64_MIN, hi = INT64_MAX; break;
    default: return; /* floats test voxel by voxel */
  }
  const int held = pr->has_ref && pr->iref >= lo && pr->iref <= hi;
  j->imode = held ? (pr->select ? CCL_SEL : CCL_BG) : (pr->select ? CCL_NONE : CCL_ALL);
  /* two's complement bits, truncated to the lane by the scanner's cast */
  j->iraw = held ? (uint64_t)pr->iref : 0;
}

/* Multi-label: do elements a and b hold equal values (compared as the
 * row scan compares them)? */
static int same_value(const ccl_job *j, int64_t a, int64_t b) {
  const void *p = j->in;
  switch (j->dtype) {
    case VP_U8:
    case VP_I8: return ((const uint8_t *)p)[a] == ((const uint8_t *)p)[b];
    case VP_U16:
    case VP_I16: return ((const uint16_t *)p)[a] == ((const uint16_t *)p)[b];
    case VP_U32:
    case VP_I32: return ((const uint32_t *)p)[a] == ((const uint32_t *)p)[b];
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
static inline int32_t find_root(int32_t *p, int32_t x) {
  while (p[x] != x) {
    p[x] = p[p[x]]; /* path halving keeps the trees shallow */
    x = p[x];
  }
  return x;
}

static inline void unite(int32_t *p, int32_t a, int32_t b) {
  a = find_root(p, a);
  b = find_root(p, b);
  if (a < b)
    p[b] = a;
  else if (b < a)
    p[a] = b;
}

/* Joins the runs [a, a_end) of row `row` with the runs [b, b_end) of the
 * earlier row `nb` that they touch: overlap with `slack` voxels (0 or 1)
 * of diagonal reach. x0, x1, p: run arrays of the indices given. */
static void join_rows(const ccl_job *j, const int32_t *x0, const int32_t *x1, int32_t *p, int64_t a,
                      int64_t a_end, int64_t b, int64_t b_end, int slack, int64_t row, int64_t nb) {
  for (; a < a_end; a++) {
    const int32_t lo = x0[a] - slack, hi = x1[a] + slack;
    /* runs of nb that end before this run's reach touch no later run */
    while (b < b_end && x1[b] <= lo) b++;
    if (b == b_end) return;
    for (int64_t k = b; k < b_end && x0[k] < hi; k++) {
      if (j->multi && !same_value(j, row * j->W + x0[a], nb * j->W + x0[k])) continue;
      unite(p, (int32_t)a, (int32_t)k);
    }
  }
}

/* Backward neighbour rows of a row: how far back, their slack, and
 * their runs [b, e) (the caller fills these in). */
typedef struct ccl_nb {
  int64_t off[4], b[4], e[4];
  int slack[4];
  int n;
} ccl_nb;

/* A new row's runs [a, a_end) (no unions made yet: each its own root)
 * joined with the runs they touch in the neighbour rows. The root of run
 * a is kept at hand: only this loop changes it. */
static void join_new_row(const ccl_job *j, const int32_t *x0, const int32_t *x1, int32_t *p,
                         int64_t a, int64_t a_end, ccl_nb *nb, int64_t row) {
  for (; a < a_end; a++) {
    int32_t ra = (int32_t)a;
    for (int i = 0; i < nb->n; i++) {
      const int32_t lo = x0[a] - nb->slack[i], hi = x1[a] + nb->slack[i];
      int64_t b = nb->b[i];
      const int64_t e = nb->e[i];
      while (b < e && x1[b] <= lo) b++;
      nb->b[i] = b;
      for (; b < e && x0[b] < hi; b++) {
        if (j->multi && !same_value(j, row * j->W + x0[a], (row - nb->off[i]) * j->W + x0[b]))
          continue;
        const int32_t rb = find_root(p, (int32_t)b);
        if (rb < ra) {
          p[ra] = rb;
          ra = rb;
        } else if (ra < rb) {
          p[rb] = ra;
        }
      }
    }
    p[a] = ra;
  }
}
/* Backward neighbour rows of row (d, h): row offsets, slack per
 * connectivity 6/18/26, and which exist. */
static void neighbours(const ccl_job *j, int64_t d, int64_t h, ccl_nb *nb) {
  const int c = j->conn;
  nb->n = 0;
  if (h > 0) nb->off[nb->n] = 1, nb->slack[nb->n++] = c != 6;
  if (d == 0) return;
  nb->off[nb->n] = j->H, nb->slack[nb->n++] = c != 6;
  if (c == 6) return;
  if (h > 0) nb->off[nb->n] = j->H + 1, nb->slack[nb->n++] = c == 26;
  if (h + 1 < j->H) nb->off[nb->n] = j->H - 1, nb->slack[nb->n++] = c == 26;
}

/* ------------------------------------------------------------------ */
/* Parallel phases, one index per slab                                 */

static void slab_range(const ccl_job *j, int64_t s, int64_t *r0, int64_t *r1) {
  *r0 = s * j->slab_rows;
  *r1 = *r0 + j->slab_rows < j->rows ? *r0 + j->slab_rows : j->rows;
}

/* Scans the slab's rows into its runs and unites each row with its
 * neighbour rows in the slab; row_off holds slab-local indices. */
static vp_status phase_scan(void *ctx, int64_t s) {
  ccl_job *j = ctx;
  ccl_runs *R = &j->slab[s];
  int64_t r0, r1;
  slab_range(j, s, &r0, &r1);
  int64_t d = r0 / j->H, h = r0 - d * j->H;
  for (int64_t r = r0; r < r1; r++) {
    const int64_t first = R->n;
    j->row_off[r] = first;
    if (!scan_row(j, r, R))
      return vp_fail(VP_ERR_NOMEM, "connected components: out of memory for %lld runs",
                     (long long)R->n);
    if (R->n > first) {
      ccl_nb nb;
      neighbours(j, d, h, &nb);
      int m = 0;
      for (int k = 0; k < nb.n; k++) {
        const int64_t o = r - nb.off[k];
        if (o < r0) continue; /* another slab's: joined at the seams */
        nb.off[m] = nb.off[k], nb.slack[m] = nb.slack[k];
        nb.b[m] = j->row_off[o], nb.e[m] = j->row_off[o + 1];
        m += nb.b[m] < nb.e[m];
      }
      nb.n = m;
      if (m) join_new_row(j, R->x0, R->x1, R->parent, first, R->n, &nb, r);
    }
    if (++h == j->H) h = 0, d++;
  }
  return VP_OK;
}

/* Moves slab s's runs into the global arrays (slab 0's already are). */
static vp_status phase_gather(void *ctx, int64_t s) {
  ccl_job *j = ctx;
  if (s == 0) return VP_OK;
  ccl_runs *R = &j->slab[s];
  const int64_t base = j->slab_base[s];
  int64_t r0, r1;
  slab_range(j, s, &r0, &r1);
  for (int64_t r = r0; r < r1; r++) j->row_off[r] += base;
  if (R->n) {
    memcpy(j->x0 + base, R->x0, (size_t)R->n * sizeof *j->x0);
    memcpy(j->x1 + base, R->x1, (size_t)R->n * sizeof *j->x1);
    for (int64_t k = 0; k < R->n; k++) j->parent[base + k] = R->parent[k] + (int32_t)base;
  }
  free(R->x0), free(R->x1), free(R->parent);
  memset(R, 0, sizeof *R);
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
  /* The slab's labels row by row: zeros over each row that has runs (one
   * memset, while the row is in L1) and then its runs; rows without runs
   * join the next memset. */
  int32_t *out = j->labels;
  const int64_t W = j->W;
  int64_t z = r0 * W; /* first voxel not written yet */
  for (int64_t r = r0; r < r1; r++) {
    const int64_t k1 = j->row_off[r + 1];
    int64_t k = j->row_off[r];
    if (k == k1) continue;
    int32_t *row = out + r * W;
    memset(out + z, 0, (size_t)((r + 1) * W - z) * sizeof *out);
    z = (r + 1) * W;
    for (; k < k1; k++) {
      const int32_t lab = -p[k];
      for (int32_t x = j->x0[k]; x < j->x1[k]; x++) row[x] = lab;
    }
  }
  memset(out + z, 0, (size_t)(r1 * W - z) * sizeof *out);
  return VP_OK;
}

static void free_job(ccl_job *j) {
  for (int64_t s = 0; j->slab && s < j->nslab; s++) {
    free(j->slab[s].x0);
    free(j->slab[s].x1);
    free(j->slab[s].parent);
  }
  free(j->slab);
  free(j->row_off);
  free(j->slab_base);
  free(j->slab_roots);
  free(j->x0);
  free(j->x1);
  free(j->parent);
}

/* Gives slab 0's arrays room for all runs and makes them the global
 * ones, so that a single slab is never copied. */
static vp_status adopt_slab0(ccl_job *j, int64_t runs) {
  ccl_runs *R = &j->slab[0];
  if (runs > R->cap) {
    const size_t bytes = (size_t)runs * sizeof(int32_t);
    int32_t *a = realloc(R->x0, bytes);
    if (a) R->x0 = a;
    int32_t *b = a ? realloc(R->x1, bytes) : NULL;
    if (b) R->x1 = b;
    int32_t *c = b ? realloc(R->parent, bytes) : NULL;
    if (!c)
      return vp_fail(VP_ERR_NOMEM, "connected components: out of memory for %lld runs",
                     (long long)runs);
    R->parent = c;
  }
  j->x0 = R->x0, j->x1 = R->x1, j->parent = R->parent;
  memset(R, 0, sizeof *R);
  return VP_OK;
}

vp_status vp_ccl_label_cpu(const void *in, vp_dtype dtype, const int64_t shape[3],
                           const vp_ccl_params *p, int32_t *labels, int64_t *count,
                           vp_threadpool *pool) {
  const char *who = "connected components";
  int conn = 0;
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
  int_mode(&j);
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
  j.slab = calloc((size_t)j.nslab, sizeof *j.slab);
  j.slab_base = malloc((size_t)j.nslab * sizeof *j.slab_base);
  j.slab_roots = malloc((size_t)j.nslab * sizeof *j.slab_roots);
  if (!j.row_off || !j.slab || !j.slab_base || !j.slab_roots) {
    s = vp_fail(VP_ERR_NOMEM, "%s: out of memory for %lld row offsets", who, (long long)j.rows);
    goto done;
  }
  s = vp_parallel_for(pool, j.nslab, phase_scan, &j);
  if (s != VP_OK) goto done;
  int64_t runs = 0; /* <= voxels <= INT32_MAX */
  for (int64_t b = 0; b < j.nslab; b++) {
    j.slab_base[b] = runs;
    runs += j.slab[b].n;
  }
  j.row_off[j.rows] = runs;
  if (runs == 0) {
    memset(labels, 0, (size_t)(j.rows * j.W) * sizeof *labels);
    goto done;
  }
  s = adopt_slab0(&j, runs);
  if (s == VP_OK) s = vp_parallel_for(pool, j.nslab, phase_gather, &j);
  if (s != VP_OK) goto done;
  /* slab borders, in order: the first rows of slab b reach back into
   * earlier slabs */
  for (int64_t b = 1; b < j.nslab; b++) {
    int64_t r0, r1;
    slab_range(&j, b, &r0, &r1);
    const int64_t reach = r0 + j.H + 1 < r1 ? r0 + j.H + 1 : r1;
    for (int64_t r = r0; r < reach; r++) {
      const int64_t d = r / j.H;
      ccl_nb nb;
      neighbours(&j, d, r - d * j.H, &nb);
      for (int k = 0; k < nb.n; k++) {
        const int64_t o = r - nb.off[k];
        if (o >= r0) continue; /* joined by the slab's own scan */
        join_rows(&j, j.x0, j.x1, j.parent, j.row_off[r], j.row_off[r + 1], j.row_off[o],
                  j.row_off[o + 1], nb.slack[k], r, o);
      }
    }
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
  free_job(&j);
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
  int conn = 0;
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
