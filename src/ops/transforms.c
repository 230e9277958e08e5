/* Transform builders: per-sample affine matrices for warp_affine and the
 * other spatial operators. CPU only, no tensor inputs (combine takes two
 * matrices).
 *
 * A matrix is FORWARD: it maps an input point x (array-order index
 * coordinates d, h, w; integer = voxel centre) to its output point
 * y = A·x + t, "move the object". warp_affine reads output->input matrices,
 * so it applies these with inverse=true. Each sample's output is float64
 * [3, 4] (3-D) or [2, 3] (2-D), row-major [A | t]. A center c makes the
 * transform act about c: [A | c - A·c + t]. */
#include <math.h>
#include <string.h>

#include "core/convert.h"
#include "core/status.h"
#include "core/tensor.h"
#include "ops/op.h"

#define BIG 1e30
#define PI 3.14159265358979323846

typedef struct mat {
  int n;          /* spatial dims: 2 or 3 */
  double a[3][4]; /* [A | t], rows 0..n-1 used */
} mat;

static mat identity(int n) {
  mat m;
  memset(&m, 0, sizeof m);
  m.n = n;
  for (int r = 0; r < n; r++) m.a[r][r] = 1.0;
  return m;
}

/* p then q: (q ∘ p)(x) = Aq (Ap x + tp) + tq */
static mat then(mat p, mat q) {
  mat m = identity(p.n);
  for (int r = 0; r < p.n; r++) {
    for (int c = 0; c < p.n; c++) {
      double s = 0;
      for (int k = 0; k < p.n; k++) s += q.a[r][k] * p.a[k][c];
      m.a[r][c] = s;
    }
    double t = q.a[r][p.n == 3 ? 3 : 2];
    for (int k = 0; k < p.n; k++) t += q.a[r][k] * p.a[k][p.n == 3 ? 3 : 2];
    m.a[r][p.n == 3 ? 3 : 2] = t;
  }
  return m;
}

static int tcol(const mat *m) { return m->n == 3 ? 3 : 2; }

/* The same linear part acting about c. */
static mat about(mat m, const vp_arg_value *center) {
  if (center->len == 0) return m;
  int T = tcol(&m);
  for (int r = 0; r < m.n; r++) {
    double ac = 0;
    for (int k = 0; k < m.n; k++) ac += m.a[r][k] * center->v[k];
    m.a[r][T] += center->v[r] - ac;
  }
  return m;
}

/* Rotation by `deg` about the unit vector `axis` (d, h, w) in 3-D, or in
 * the (h, w) plane in 2-D (from h towards w for positive angles). */
static mat rotation(int n, double deg, const double *axis) {
  mat m = identity(n);
  double th = deg * PI / 180.0, c = cos(th), s = sin(th);
  if (n == 2) {
    m.a[0][0] = c, m.a[0][1] = -s;
    m.a[1][0] = s, m.a[1][1] = c;
    return m;
  }
  double x = axis[0], y = axis[1], z = axis[2];
  double len = sqrt(x * x + y * y + z * z);
  x /= len, y /= len, z /= len;
  double C = 1 - c;
  double R[3][3] = {{c + x * x * C, x * y * C - z * s, x * z * C + y * s},
                    {y * x * C + z * s, c + y * y * C, y * z * C - x * s},
                    {z * x * C - y * s, z * y * C + x * s, c + z * z * C}};
  for (int r = 0; r < 3; r++)
    for (int k = 0; k < 3; k++) m.a[r][k] = R[r][k];
  return m;
}

static vp_status write_matrix(const vp_op_call *c, int64_t i, const mat *m) {
  vp_tensor *o = c->out[0][i];
  int cols = m->n + 1;
  for (int r = 0; r < m->n; r++)
    for (int k = 0; k < cols; k++) vp_cvt_store(o->data, o->dtype, r * cols + k, m->a[r][k]);
  return VP_OK;
}

static int ndim_of(const vp_op_call *c, int arg, int64_t i) {
  return (int)vp_arg_num(c->args, arg, i);
}

/* A built matrix's output spec: float64 [n, n + 1]. */
static vp_status spec_of(const mat *m, vp_out_spec *out) {
  out->dtype = VP_F64;
  out->ndim = 2;
  out->shape[0] = m->n;
  out->shape[1] = m->n + 1;
  return VP_OK;
}

static vp_status check_len(const char *op, const char *arg, const vp_arg_value *v, int want,
                           int64_t i, int allow_one) {
  if (v->len == want || (allow_one && v->len == 1) || v->len == 0) return VP_OK;
  return vp_fail(VP_ERR_INVALID_ARG, "%s: argument '%s' has %d values for sample %lld; %d expected",
                 op, arg, v->len, (long long)i, want);
}

/* Runs `build` for every sample (few and tiny: no pool). */
static vp_status run_all(const vp_op_call *c, vp_status (*build)(const vp_op_call *, int64_t, mat *)) {
  for (int64_t i = 0; i < c->batch; i++) {
    mat m;
    VP_TRY(build(c, i, &m));
    VP_TRY(write_matrix(c, i, &m));
  }
  return VP_OK;
}

#define CENTER_ARG                                                                           \
  {"center", VP_ARG_FLOATS, "[]", -BIG, BIG, 3, NULL, VP_ARG_PER_SAMPLE | VP_ARG_EMPTY_OK, \
   "point (d, h, w) the transform acts about; [] = the origin (voxel 0)"}
#define NDIM_ARG {"ndim", VP_ARG_INT, "3", 2, 3, 0, NULL, 0, "spatial dimensions: 2 or 3"}

/* ---- rotation ---------------------------------------------------------- */

static const vp_arg_spec k_rot_args[] = {
    {"angle", VP_ARG_FLOAT, NULL, -BIG, BIG, 0, NULL, VP_ARG_PER_SAMPLE, "angle in degrees"},
    {"axis", VP_ARG_FLOATS, "[1, 0, 0]", -BIG, BIG, 3, NULL, VP_ARG_PER_SAMPLE,
     "rotation axis (d, h, w), any nonzero length (3-D only)"},
    CENTER_ARG,
    NDIM_ARG,
};

static vp_status rot_build(const vp_op_call *c, int64_t i, mat *m) {
  int n = ndim_of(c, 3, i);
  const vp_arg_value *axis = vp_arg(c->args, 1, i), *center = vp_arg(c->args, 2, i);
  VP_TRY(check_len("transform_rotation", "center", center, n, i, 0));
  if (n == 3) {
    VP_TRY(check_len("transform_rotation", "axis", axis, 3, i, 0));
    if (axis->len != 3 || axis->v[0] * axis->v[0] + axis->v[1] * axis->v[1] + axis->v[2] * axis->v[2] == 0)
      return vp_fail(VP_ERR_INVALID_ARG, "transform_rotation: argument 'axis' of sample %lld must be a nonzero 3-vector", (long long)i);
  }
  *m = about(rotation(n, vp_arg_num(c->args, 0, i), axis->v), center);
  return VP_OK;
}
static vp_status rot_run(const vp_op_call *c) { return run_all(c, rot_build); }

/* ---- scale ------------------------------------------------------------- */

static const vp_arg_spec k_scale_args[] = {
    {"scale", VP_ARG_FLOATS, NULL, -BIG, BIG, 3, NULL, VP_ARG_PER_SAMPLE,
     "factor per axis (d, h, w), or one factor for all"},
    CENTER_ARG,
    NDIM_ARG,
};

static vp_status scale_build(const vp_op_call *c, int64_t i, mat *m) {
  int n = ndim_of(c, 2, i);
  const vp_arg_value *s = vp_arg(c->args, 0, i), *center = vp_arg(c->args, 1, i);
  VP_TRY(check_len("transform_scale", "scale", s, n, i, 1));
  VP_TRY(check_len("transform_scale", "center", center, n, i, 0));
  *m = identity(n);
  for (int r = 0; r < n; r++) m->a[r][r] = s->len == 1 ? s->v[0] : s->v[r];
  *m = about(*m, center);
  return VP_OK;
}
static vp_status scale_run(const vp_op_call *c) { return run_all(c, scale_build); }

/* ---- shear ------------------------------------------------------------- */

static const vp_arg_spec k_shear_args[] = {
    {"shear", VP_ARG_FLOATS, NULL, -BIG, BIG, 6, NULL, VP_ARG_PER_SAMPLE,
     "off-diagonal factors: 3-D (dh, dw, hd, hw, wd, wh), where 'dh' adds h to d; 2-D (hw, wh)"},
    CENTER_ARG,
    NDIM_ARG,
};

static vp_status shear_build(const vp_op_call *c, int64_t i, mat *m) {
  int n = ndim_of(c, 2, i);
  const vp_arg_value *s = vp_arg(c->args, 0, i), *center = vp_arg(c->args, 1, i);
  VP_TRY(check_len("transform_shear", "shear", s, n == 3 ? 6 : 2, i, 0));
  VP_TRY(check_len("transform_shear", "center", center, n, i, 0));
  *m = identity(n);
  int k = 0;
  for (int r = 0; r < n; r++)
    for (int col = 0; col < n; col++)
      if (r != col) m->a[r][col] = s->v[k++];
  *m = about(*m, center);
  return VP_OK;
}
static vp_status shear_run(const vp_op_call *c) { return run_all(c, shear_build); }

/* ---- translation ------------------------------------------------------- */

static const vp_arg_spec k_trans_args[] = {
    {"offset", VP_ARG_FLOATS, NULL, -BIG, BIG, 3, NULL, VP_ARG_PER_SAMPLE,
     "shift per axis (d, h, w) in voxels"},
    NDIM_ARG,
};

static vp_status trans_build(const vp_op_call *c, int64_t i, mat *m) {
  int n = ndim_of(c, 1, i);
  const vp_arg_value *t = vp_arg(c->args, 0, i);
  if (t->len != n)
    return vp_fail(VP_ERR_INVALID_ARG, "transform_translation: argument 'offset' has %d values for sample %lld; %d expected", t->len, (long long)i, n);
  *m = identity(n);
  for (int r = 0; r < n; r++) m->a[r][tcol(m)] = t->v[r];
  return VP_OK;
}
static vp_status trans_run(const vp_op_call *c) { return run_all(c, trans_build); }

/* ---- combine ----------------------------------------------------------- */

static vp_status read_input(const vp_op_call *c, int k, int64_t i, mat *m) {
  const vp_tensor *t = c->in[k][i];
  int n = t->ndim == 2 && t->shape[0] == 3 && t->shape[1] == 4   ? 3
          : t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 3 ? 2
                                                                 : 0;
  if (!n)
    return vp_fail(VP_ERR_INVALID_ARG,
                   "transform_combine: input %d of sample %lld is not a [3, 4] or [2, 3] matrix", k,
                   (long long)i);
  *m = identity(n);
  for (int r = 0; r < n; r++)
    for (int col = 0; col <= n; col++) m->a[r][col] = vp_cvt_load(t->data, t->dtype, r * (n + 1) + col);
  return VP_OK;
}

static vp_status combine_build(const vp_op_call *c, int64_t i, mat *m) {
  mat first, second;
  VP_TRY(read_input(c, 0, i, &first));
  VP_TRY(read_input(c, 1, i, &second));
  if (first.n != second.n)
    return vp_fail(VP_ERR_INVALID_ARG, "transform_combine: sample %lld mixes 2-D and 3-D matrices", (long long)i);
  *m = then(first, second);
  return VP_OK;
}
static vp_status combine_run(const vp_op_call *c) { return run_all(c, combine_build); }

/* ---- random ------------------------------------------------------------ */

static const vp_arg_spec k_random_args[] = {
    {"angles", VP_ARG_FLOATS, "[0, 0, 0]", 0, 180, 3, NULL, VP_ARG_PER_SAMPLE,
     "largest rotation in degrees about the d, h and w axes (3-D; uniform in [-a, a] each, "
     "applied about d, then h, then w) or in the (h, w) plane (2-D: one value)"},
    {"scale", VP_ARG_FLOATS, "[1, 1]", 1e-6, BIG, 2, NULL, VP_ARG_PER_SAMPLE,
     "[lo, hi]: scale factors uniform in this range"},
    {"isotropic", VP_ARG_BOOL, "true", 0, 1, 0, NULL, VP_ARG_PER_SAMPLE,
     "one scale factor for all axes (else one per axis)"},
    CENTER_ARG,
    NDIM_ARG,
};

/* Sample i's draws: word w of draw k of (key, iteration, sample). */
static double uniform_draw(const vp_op_call *c, int64_t i, int k) {
  vp_u32x4 r = vp_rng_draw(c->key, c->iteration, c->sample_base + (uint32_t)i, (uint64_t)k >> 1);
  int j = (k & 1) * 2;
  return vp_u01d(r.v[j], r.v[j + 1]);
}

static vp_status random_build(const vp_op_call *c, int64_t i, mat *m) {
  int n = ndim_of(c, 4, i);
  const vp_arg_value *ang = vp_arg(c->args, 0, i), *sc = vp_arg(c->args, 1, i),
                     *center = vp_arg(c->args, 3, i);
  int iso = vp_arg_num(c->args, 2, i) != 0;
  VP_TRY(check_len("random_transform", "center", center, n, i, 0));
  if (sc->len != 2 || sc->v[0] > sc->v[1])
    return vp_fail(VP_ERR_INVALID_ARG, "random_transform: argument 'scale' of sample %lld must be [lo, hi] with lo <= hi", (long long)i);
  /* draws 0..2: scales, 3..5: angles (fixed slots, so changing one range
   * leaves the other draws unchanged) */
  mat s = identity(n);
  for (int r = 0; r < n; r++) {
    double u = uniform_draw(c, i, iso ? 0 : r);
    s.a[r][r] = sc->v[0] + (sc->v[1] - sc->v[0]) * u;
  }
  mat rot = identity(n);
  if (n == 2) {
    double a = ang->len ? ang->v[0] : 0;
    rot = rotation(2, (2 * uniform_draw(c, i, 3) - 1) * a, NULL);
  } else {
    static const double axes[3][3] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}};
    for (int ax = 0; ax < 3; ax++) {
      double a = ax < ang->len ? ang->v[ax] : 0;
      rot = then(rot, rotation(3, (2 * uniform_draw(c, i, 3 + ax) - 1) * a, axes[ax]));
    }
  }
  *m = about(then(s, rot), center);
  return VP_OK;
}
static vp_status random_run(const vp_op_call *c) { return run_all(c, random_build); }

/* ---- descriptors ------------------------------------------------------- */

/* Every builder infers by building (the checks run once, in one place). */
#define BUILDER_INFER(sym)                                                          \
  static vp_status sym##_infer(const vp_op_call *c, int64_t i, vp_out_spec *o) {    \
    mat m = {0};                                                                    \
    VP_TRY(sym##_build(c, i, &m));                                                  \
    return spec_of(&m, o);                                                          \
  }
BUILDER_INFER(rot)
BUILDER_INFER(scale)
BUILDER_INFER(shear)
BUILDER_INFER(trans)
BUILDER_INFER(random)
BUILDER_INFER(combine)

#define BUILDER(sym, opname, argv, docline, nin, rnd)                                   \
  const vp_op_desc vp_op_##sym = {.name = opname,                                     \
                                  .doc = docline,                                     \
                                  .num_inputs = nin,                                  \
                                  .num_outputs = 1,                                   \
                                  .inputs = {"first", "second"},                      \
                                  .outputs = {"matrix"},                              \
                                  .args = argv,                                       \
                                  .num_args = (int)(sizeof argv / sizeof argv[0]),    \
                                  .random = rnd,                                      \
                                  .infer = sym##_infer,                               \
                                  .run_cpu = sym##_run};

static const vp_arg_spec k_no_args[1] = {{NULL, VP_ARG_INT, NULL, 0, 0, 0, NULL, 0, NULL}};

BUILDER(rot, "transform_rotation", k_rot_args,
        "Per-sample forward rotation matrix (angle in degrees about an axis, about a center).", 0, 0)
BUILDER(scale, "transform_scale", k_scale_args,
        "Per-sample forward scaling matrix (factor per axis, about a center).", 0, 0)
BUILDER(shear, "transform_shear", k_shear_args,
        "Per-sample forward shear matrix (off-diagonal factors, about a center).", 0, 0)
BUILDER(trans, "transform_translation", k_trans_args,
        "Per-sample forward translation matrix.", 0, 0)
BUILDER(random, "random_transform", k_random_args,
        "Per-sample random forward matrix: scale (isotropic or per axis) then rotations about "
        "d, h, w, about a center.", 0, 1)
const vp_op_desc vp_op_combine = {.name = "transform_combine",
                                  .doc = "Composes two per-sample forward matrices: first, then "
                                         "second (second · first).",
                                  .num_inputs = 2,
                                  .num_outputs = 1,
                                  .inputs = {"first", "second"},
                                  .outputs = {"matrix"},
                                  .args = k_no_args,
                                  .num_args = 0,
                                  .infer = combine_infer,
                                  .run_cpu = combine_run};
