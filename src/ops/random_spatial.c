/* random_spatial: nnU-Net's spatial augmentation fused into one
 * resampling per output voxel. Per sample it draws a rotation, a scale,
 * flips, an elastic deformation and a crop centre, composes them into one
 * output -> input matrix M and one displacement grid over the patch, and
 * runs the resampling engine twice: the image (interp, border, fill) and
 * the label (label_interp: nearest or label; constant, label_fill). Only the patch is computed.
 *
 * The map, with cp = (patch - 1) / 2 and x the input point of patch voxel o:
 *     x = centre + F · S^-1 · R^T · (o + u(o) - cp)
 * R the forward rotation about d, then h, then w (random_transform's
 * order, right-handed in array order), S = diag(scale) (> 1 zooms in, as
 * zoom), F = diag(±1) the flips (mirrors of the patch), u the elastic
 * field (src/ops/elastic.c's grid over the patch, in patch voxels).
 *
 * Draws: uniform number k of a sample is vp_u01d(r[2j], r[2j + 1]) of
 * r = vp_rng_draw(key, iteration, sample_base + i, k / 2), j = k % 2:
 *   0 rotation applies (< p_rotation); 1, 2, 3 angles about d, h, w,
 *   (2u - 1) · angles[a] degrees; 4 scaling applies (< p_scale); 5, 6, 7
 *   factors lo + (hi - lo) u (isotropic: 5 for all); 8, 9, 10 flip of d,
 *   h, w (< p_flip[a]); 11 elastic applies (< p_elastic); 12, 13, 14 the
 *   crop: start = lo + floor(u · K) per axis among the K integer starts
 *   whose patch centre start + cp lies in [0, n - 1] (K = n - 1 for an
 *   even patch, n for an odd one; at least 1), centre = start + cp, so
 *   an unrotated, unscaled patch reads whole voxels.
 * The elastic grid's elements start at 2^32 (elastic's layout after that).
 * A given `center` (e.g. a foreground-biased crop from another node)
 * replaces the drawn one. The optional output `matrix` is M (float64
 * [3, 4], warp_affine's convention), so a run can be replayed. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/convert.h"
#include "core/cuda_rt.h"
#include "core/status.h"
#include "core/tensor.h"
#include "ops/op.h"
#include "ops/resample.h"
#ifdef VP_HAVE_CUDA
#include "cuda/kernels.h"
#endif

#include "ops/elastic.h"

enum {
  ARG_PATCH,
  ARG_ANGLES,
  ARG_P_ROT,
  ARG_SCALE,
  ARG_ISO,
  ARG_P_SCALE,
  ARG_P_FLIP,
  ARG_SPACING,
  ARG_MAGNITUDE,
  ARG_P_ELASTIC,
  ARG_CENTER,
  ARG_INTERP,
  ARG_BORDER,
  ARG_FILL,
  ARG_LABEL_FILL,
  ARG_DTYPE,
  ARG_LABEL_INTERP,
  NUM_ARGS
};

static const vp_arg_spec k_args[NUM_ARGS] = {
    {"patch", VP_ARG_INTS, NULL, 1, 1e6, 3, NULL, VP_ARG_PER_SAMPLE,
     "output extents (D, H, W) of image and label"},
    {"angles", VP_ARG_FLOATS, "[30, 30, 30]", 0, 180, 3, NULL, VP_ARG_PER_SAMPLE,
     "largest rotation in degrees about d, h and w (uniform in [-a, a] each)"},
    {"p_rotation", VP_ARG_FLOAT, "0.2", 0, 1, 0, NULL, VP_ARG_PER_SAMPLE,
     "probability of a rotation"},
    {"scale", VP_ARG_FLOATS, "[0.7, 1.4]", 1e-3, 1e3, 2, NULL, VP_ARG_PER_SAMPLE,
     "[lo, hi]: zoom factors uniform in this range (> 1 zooms in)"},
    {"isotropic", VP_ARG_BOOL, "true", 0, 1, 0, NULL, VP_ARG_PER_SAMPLE,
     "one zoom factor for all axes (else one per axis)"},
    {"p_scale", VP_ARG_FLOAT, "0.2", 0, 1, 0, NULL, VP_ARG_PER_SAMPLE, "probability of a zoom"},
    {"p_flip", VP_ARG_FLOATS, "[0.5, 0.5, 0.5]", 0, 1, 3, NULL, VP_ARG_PER_SAMPLE,
     "probability of mirroring d, h, w (or one for all)"},
    {"grid_spacing", VP_ARG_FLOATS, "[32]", 1, 1e6, 3, NULL, VP_ARG_PER_SAMPLE,
     "elastic: patch voxels between control points, per axis or one for all"},
    {"magnitude", VP_ARG_FLOAT, "4", 0, 1e6, 0, NULL, VP_ARG_PER_SAMPLE,
     "elastic: standard deviation of the control displacements, in patch voxels"},
    {"p_elastic", VP_ARG_FLOAT, "0", 0, 1, 0, NULL, VP_ARG_PER_SAMPLE,
     "probability of an elastic deformation"},
    {"center", VP_ARG_FLOATS, "[]", -1e9, 1e9, 3, NULL, VP_ARG_PER_SAMPLE | VP_ARG_EMPTY_OK,
     "crop centre (d, h, w) in input voxels; [] = uniform over integer crops whose centre "
     "lies in the volume"},
    {"interp", VP_ARG_ENUM, "\"linear\"", 0, 0, 0, "nearest|linear|cubic", 0,
     "the image's interpolation (the label's is label_interp); cubic = scipy order 3"},
    {"border", VP_ARG_ENUM, "\"constant\"", 0, 0, 0, "constant|edge|reflect", 0,
     "the image's border: fill (scipy 'grid-constant'), the edge voxel or a mirror (the "
     "label's is constant label_fill)"},
    {"fill", VP_ARG_FLOAT, "0", -1e300, 1e300, 0, NULL, 0,
     "the image's value outside the input with border constant"},
    {"label_fill", VP_ARG_FLOAT, "0", -1e300, 1e300, 0, NULL, 0,
     "the label's value outside the input"},
    {"dtype", VP_ARG_ENUM, "\"same\"", 0, 0, 0,
     "same|uint8|int8|uint16|int16|uint32|int32|int64|float16|float32|float64", 0,
     "the image output's dtype (same = the input's); the label keeps its dtype"},
    {"label_interp", VP_ARG_ENUM, "\"nearest\"", 0, 0, 0, "nearest|label", 0,
     "the label's interpolation: nearest, or label (per-label trilinear weights, then the "
     "heaviest label: smooth label edges; integer labels)"},
};

typedef struct plan {
  double M[12];
  int64_t patch[3];
  int elastic;
  double spacing[3];
} plan;

static double uniform(const vp_op_call *c, int64_t i, int k) {
  vp_u32x4 r = vp_rng_draw(c->key, c->iteration, c->sample_base + (uint32_t)i, (uint64_t)k >> 1);
  int j = (k & 1) * 2;
  return vp_u01d(r.v[j], r.v[j + 1]);
}

static void sincos_deg(double deg, double *s, double *c) {
  double q = nearbyint(deg / 90.0);
  double r = (deg - 90.0 * q) * (3.14159265358979323846 / 180.0);
  double sr = sin(r), cr = cos(r);
  int k = (int)fmod(q, 4.0);
  if (k < 0) k += 4;
  switch (k) {
    case 0: *s = sr, *c = cr; break;
    case 1: *s = cr, *c = -sr; break;
    case 2: *s = -sr, *c = -cr; break;
    default: *s = -cr, *c = sr; break;
  }
}

static void matmul3(const double a[3][3], const double b[3][3], double out[3][3]) {
  double t[3][3];
  for (int r = 0; r < 3; r++)
    for (int col = 0; col < 3; col++)
      t[r][col] = a[r][0] * b[0][col] + a[r][1] * b[1][col] + a[r][2] * b[2][col];
  memcpy(out, t, sizeof t);
}

static vp_status check_inputs(const vp_op_call *c, int64_t i) {
  const vp_tensor *img = c->in[0][i], *lab = c->in[1][i];
  if (vp_resample_spatial(img) != 3 || vp_resample_spatial(lab) != 3)
    return vp_fail(VP_ERR_INVALID_ARG,
                   "random_spatial: sample %lld: image and label need 3 spatial axes (D, H, W); "
                   "they have %d and %d",
                   (long long)i, vp_resample_spatial(img), vp_resample_spatial(lab));
  for (int a = 1; a <= 3; a++)
    if (img->shape[img->ndim - a] != lab->shape[lab->ndim - a])
      return vp_fail(VP_ERR_INVALID_ARG,
                     "random_spatial: sample %lld: the label's spatial extents differ from the "
                     "image's on axis %d (%lld vs %lld)",
                     (long long)i, 3 - a, (long long)lab->shape[lab->ndim - a],
                     (long long)img->shape[img->ndim - a]);
  return VP_OK;
}

/* Sample i's draws, as the header states. */
static vp_status make_plan(const vp_op_call *c, int64_t i, plan *p) {
  VP_TRY(check_inputs(c, i));
  const vp_tensor *img = c->in[0][i];
  const vp_op_args *A = c->args;
  const vp_arg_value *patch = vp_arg(A, ARG_PATCH, i), *ang = vp_arg(A, ARG_ANGLES, i),
                     *sc = vp_arg(A, ARG_SCALE, i), *pf = vp_arg(A, ARG_P_FLIP, i),
                     *gs = vp_arg(A, ARG_SPACING, i), *ctr = vp_arg(A, ARG_CENTER, i);
  if (patch->len != 3)
    return vp_fail(VP_ERR_INVALID_ARG,
                   "random_spatial: argument 'patch' has %d values for sample %lld (needs 3)",
                   patch->len, (long long)i);
  if (sc->len != 2 || sc->v[0] > sc->v[1])
    return vp_fail(VP_ERR_INVALID_ARG,
                   "random_spatial: argument 'scale' of sample %lld must be [lo, hi] with lo <= "
                   "hi",
                   (long long)i);
  if (ang->len != 3 && ang->len != 1)
    return vp_fail(VP_ERR_INVALID_ARG,
                   "random_spatial: argument 'angles' has %d values for sample %lld (give 3 or 1)",
                   ang->len, (long long)i);
  if (pf->len != 3 && pf->len != 1)
    return vp_fail(VP_ERR_INVALID_ARG,
                   "random_spatial: argument 'p_flip' has %d values for sample %lld (give 3 or 1)",
                   pf->len, (long long)i);
  if (gs->len != 3 && gs->len != 1)
    return vp_fail(VP_ERR_INVALID_ARG,
                   "random_spatial: argument 'grid_spacing' has %d values for sample %lld (give "
                   "3 or 1)",
                   gs->len, (long long)i);
  if (ctr->len != 0 && ctr->len != 3)
    return vp_fail(VP_ERR_INVALID_ARG,
                   "random_spatial: argument 'center' has %d values for sample %lld (give 3, or "
                   "[] for a random crop)",
                   ctr->len, (long long)i);
  double R[3][3] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}};
  if (uniform(c, i, 0) < vp_arg_num(A, ARG_P_ROT, i)) {
    for (int ax = 0; ax < 3; ax++) {
      double deg = (2 * uniform(c, i, 1 + ax) - 1) * ang->v[ang->len == 1 ? 0 : ax], s, co;
      sincos_deg(deg, &s, &co);
      /* about d: (h, w) plane; about h: (w, d); about w: (d, h) */
      int u = (ax + 1) % 3, v = (ax + 2) % 3;
      double Q[3][3] = {{0}};
      Q[ax][ax] = 1;
      Q[u][u] = co, Q[u][v] = -s;
      Q[v][u] = s, Q[v][v] = co;
      matmul3(Q, R, R); /* later rotations act after earlier ones */
    }
  }
  double f[3] = {1, 1, 1};
  if (uniform(c, i, 4) < vp_arg_num(A, ARG_P_SCALE, i)) {
    int iso = vp_arg_num(A, ARG_ISO, i) != 0;
    for (int a = 0; a < 3; a++)
      f[a] = sc->v[0] + (sc->v[1] - sc->v[0]) * uniform(c, i, iso ? 5 : 5 + a);
  }
  double flip[3];
  for (int a = 0; a < 3; a++)
    flip[a] = uniform(c, i, 8 + a) < pf->v[pf->len == 1 ? 0 : a] ? -1.0 : 1.0;
  p->elastic = uniform(c, i, 11) < vp_arg_num(A, ARG_P_ELASTIC, i);
  double centre[3], cp[3];
  for (int a = 0; a < 3; a++) {
    p->patch[a] = (int64_t)patch->v[a];
    p->spacing[a] = gs->v[gs->len == 1 ? 0 : a];
    cp[a] = ((double)p->patch[a] - 1) / 2;
    int64_t n = img->shape[img->ndim - 3 + a];
    int64_t half = (p->patch[a] - 1) / 2; /* floor((P - 1) / 2) */
    int64_t K = n - ((p->patch[a] - 1) % 2);
    if (K < 1) K = 1;
    int64_t k = (int64_t)floor(uniform(c, i, 12 + a) * (double)K);
    if (k > K - 1) k = K - 1;
    centre[a] = ctr->len ? ctr->v[a] : (double)(k - half) + cp[a];
  }
  /* A = F S^-1 R^T; b = centre - A cp */
  for (int r = 0; r < 3; r++) {
    double b = centre[r];
    for (int col = 0; col < 3; col++) {
      double a = flip[r] / f[r] * R[col][r];
      p->M[r * 4 + col] = a;
      b -= a * cp[col];
    }
    p->M[r * 4 + 3] = b;
  }
  return VP_OK;
}

static vp_status infer(const vp_op_call *c, int64_t i, vp_out_spec *out) {
  plan p;
  VP_TRY(make_plan(c, i, &p));
  for (int k = 0; k < 2; k++) {
    const vp_tensor *t = c->in[k][i];
    out[k].dtype = t->dtype;
    out[k].ndim = t->ndim;
    memcpy(out[k].shape, t->shape, sizeof out[k].shape);
    for (int a = 0; a < 3; a++) out[k].shape[t->ndim - 3 + a] = p.patch[a];
  }
  int dt = (int)vp_arg_num(c->args, ARG_DTYPE, i);
  if (dt != 0) out[0].dtype = (vp_dtype)(dt - 1);
  out[2].dtype = VP_F64;
  out[2].ndim = 2;
  out[2].shape[0] = 3;
  out[2].shape[1] = 4;
  return VP_OK;
}

/* The output's affine is the input's composed with M (voxel centres keep
 * their world positions, elastic aside); spacing = its columns' lengths. */
static void place(const vp_tensor *in, vp_tensor *out, const double M[12]) {
  vp_tensor_copy_meta(out, in);
  vp_resample_place(in, out, 3, M);
}

static vp_status meta(const vp_op_call *c, int64_t i) {
  plan p;
  VP_TRY(make_plan(c, i, &p));
  place(c->in[0][i], c->out[0][i], p.M);
  place(c->in[1][i], c->out[1][i], p.M);
  return VP_OK;
}

static vp_status run(const vp_op_call *c, int gpu) {
  const int64_t B = c->batch;
  if (B < 1) return VP_OK;
  vp_resample_desc *d = calloc((size_t)B * 2, sizeof *d); /* images, then labels */
  float **nodes = calloc((size_t)B, sizeof *nodes);
  int64_t *at = calloc((size_t)B + 1, sizeof *at);
  double *mats = calloc((size_t)B * 12, sizeof *mats);
  float *all = NULL;
  void *dev = NULL;
  vp_status s = VP_OK;
  if (!d || !nodes || !at || !mats) s = vp_fail(VP_ERR_NOMEM, "random_spatial: out of memory");
  for (int64_t i = 0; s == VP_OK && i < B; i++) {
    plan p;
    s = make_plan(c, i, &p);
    if (s != VP_OK) break;
    vp_resample_desc *di = &d[i], *dl = &d[B + i];
    vp_spatial_desc(c->in[0][i], c->out[0][i], di);
    vp_spatial_desc(c->in[1][i], c->out[1][i], dl);
    memcpy(di->M, p.M, sizeof p.M);
    memcpy(dl->M, p.M, sizeof p.M);
    memcpy(mats + i * 12, p.M, sizeof p.M);
    di->fill = vp_arg_num(c->args, ARG_FILL, i);
    dl->fill = vp_arg_num(c->args, ARG_LABEL_FILL, i);
    at[i + 1] = at[i];
    if (!p.elastic) continue;
    memcpy(di->disp.spacing, p.spacing, sizeof p.spacing);
    s = vp_elastic_draw(c->key, c->iteration, c->sample_base + (uint32_t)i, (uint64_t)1 << 32,
                        p.patch, p.spacing, vp_arg_num(c->args, ARG_MAGNITUDE, i), &nodes[i],
                        di->disp.grid);
    if (s != VP_OK) break;
    di->disp.nodes = nodes[i];
    at[i + 1] += 3 * di->disp.grid[0] * di->disp.grid[1] * di->disp.grid[2];
  }
  if (s == VP_OK && gpu && at[B] > 0) {
    all = malloc((size_t)at[B] * sizeof *all);
    if (!all) s = vp_fail(VP_ERR_NOMEM, "random_spatial: out of memory");
    for (int64_t i = 0; s == VP_OK && i < B; i++)
      if (nodes[i]) memcpy(all + at[i], nodes[i], (size_t)(at[i + 1] - at[i]) * sizeof *all);
    if (s == VP_OK) s = vp_spatial_upload(c, all, (size_t)at[B] * sizeof *all, &dev);
    for (int64_t i = 0; s == VP_OK && i < B; i++)
      if (nodes[i]) d[i].disp.nodes = (const float *)dev + at[i];
  }
  for (int64_t i = 0; s == VP_OK && i < B; i++) d[B + i].disp = d[i].disp;
  for (int k = 0; s == VP_OK && k < 2; k++) {
    vp_dtype tin = c->in[k][0]->dtype, tout = c->out[k][0]->dtype;
    vp_interp interp = k == 0 ? (vp_interp)(int)vp_arg_num(c->args, ARG_INTERP, 0)
                       : (int)vp_arg_num(c->args, ARG_LABEL_INTERP, 0) == 1 ? VP_INTERP_LABEL
                                                                            : VP_INTERP_NEAREST;
    vp_border border =
        k == 0 ? (vp_border)(int)vp_arg_num(c->args, ARG_BORDER, 0) : VP_BORDER_CONSTANT;
    if (!gpu) {
      s = vp_resample_cpu(d + k * B, B, tin, tout, interp, border, c->pool);
    } else {
#ifdef VP_HAVE_CUDA
      s = vp_cuda_resample(d + k * B, B, tin, tout, interp, border, c->stream);
#else
      s = vp_fail(VP_ERR_NO_DEVICE, "voxpipe was built without its CUDA backend");
#endif
    }
    if (s != VP_OK) s = vp_fail_prefix(s, "random_spatial (%s)", k == 0 ? "image" : "label");
  }
  for (int64_t i = 0; s == VP_OK && i < B; i++) {
    vp_tensor *m = c->out[2][i];
    if (!gpu)
      memcpy(m->data, mats + i * 12, 12 * sizeof *mats);
    else
      s = vp_cuda_memcpy_async(m->data, mats + i * 12, 12 * sizeof *mats, c->stream);
  }
  if (dev) vp_spatial_free_async(c, dev);
  for (int64_t i = 0; nodes && i < B; i++) free(nodes[i]);
  free(nodes);
  free(all);
  free(at);
  free(mats);
  free(d);
  return s;
}

static vp_status run_cpu(const vp_op_call *c) { return run(c, 0); }
static vp_status run_gpu(const vp_op_call *c) { return run(c, 1); }

const vp_op_desc vp_op_random_spatial = {
    .name = "random_spatial",
    .doc =
        "nnU-Net's spatial augmentation in one resampling: random rotation, zoom, flips, "
        "elastic deformation and crop of a patch, composed into one matrix (and field) per "
        "sample, applied to image (interp) and label (label_interp) alike; outputs the matrix.",
    .num_inputs = 2,
    .num_outputs = 3,
    .inputs = {"image", "label"},
    .outputs = {"image", "label", "matrix"},
    .args = k_args,
    .num_args = NUM_ARGS,
    .random = 1,
    .infer = infer,
    .run_cpu = run_cpu,
    .run_gpu = run_gpu,
    .meta = meta,
};
