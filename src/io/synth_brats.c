/* A BraTS-like case: four MRI modalities (T1, T1ce, T2, FLAIR) of a head
 * phantom with a glioma, and its labels {0, 1 necrosis / non-enhancing
 * core, 2 edema, 4 enhancing tumour}.
 *
 * The head is nested deformed ellipsoids (scalp, skull, CSF, brain); inside
 * the brain a smooth field folds the grey/white boundary and cuts sulci.
 * Tumours are ellipsoids whose radius is modulated by smooth fields: one
 * main tumour (necrotic centre, enhancing rim, edema spreading further in
 * white matter) and many small satellites of very different sizes, so that
 * connected-component code downstream sees many blobs. Intensities are
 * per-tissue means per modality, times a texture and a smooth bias field,
 * plus Rician noise. Slices are independent given the case's parameters, so
 * they run in parallel and the result does not depend on the thread count. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "core/threadpool.h"
#include "io/synth_internal.h"

enum { T_SCALP, T_SKULL, T_CSF, T_GM, T_WM, T_EDEMA, T_ENH, T_NEC, T_NONENH, NT };
enum { NMOD = 4, MAX_SAT = 16 };

/* Relative mean intensity per tissue for T1, T1ce, T2, FLAIR. */
static const float k_means[NT][NMOD] = {
    {0.95f, 0.95f, 0.55f, 0.60f}, /* scalp (fat): bright in T1 */
    {0.08f, 0.08f, 0.06f, 0.06f}, /* skull: dark everywhere */
    {0.22f, 0.22f, 1.50f, 0.12f}, /* CSF: dark T1, bright T2, suppressed FLAIR */
    {0.62f, 0.64f, 0.72f, 0.78f}, /* grey matter */
    {0.90f, 0.90f, 0.48f, 0.58f}, /* white matter: brighter than grey in T1 */
    {0.50f, 0.52f, 1.15f, 1.25f}, /* edema: bright T2 / FLAIR */
    {0.60f, 1.40f, 0.85f, 0.95f}, /* enhancing rim: bright T1ce */
    {0.28f, 0.20f, 1.30f, 0.55f}, /* necrosis: dark T1ce */
    {0.50f, 0.52f, 0.95f, 1.05f}, /* non-enhancing core */
};
static const float k_texture[NT] = {0.10f, 0.15f, 0.03f, 0.05f, 0.035f, 0.08f, 0.14f, 0.10f, 0.10f};

typedef struct brats_case {
  int64_t D, H, W;
  uint32_t case_index;
  double c[3], semi[3], bm;       /* brain ellipsoid; bm: mean semi-axis */
  double r_csf, r_skull, r_scalp; /* outer radii of the layers (brain = 1) */
  double mid_x;                   /* the interhemispheric fissure */
  vp_blob vent[2], deep[2], main;
  vp_blob sat[MAX_SAT];
  int sat_kind[MAX_SAT], nsat;
  float mean[NT][NMOD];
  float sigma[NMOD];
  vp_field shape, sdef, tdef, tnec, tpatch, tedema, bias[NMOD];
  vp_fieldset gyri, texture;
  vp_rng_key noise_key;
  int16_t *image;
  uint8_t *label;
} brats_case;

static void free_case(brats_case *b) {
  vp_field *fs[] = {&b->shape,  &b->sdef,    &b->tdef,    &b->tnec,    &b->tpatch,
                    &b->tedema, &b->bias[0], &b->bias[1], &b->bias[2], &b->bias[3]};
  for (size_t i = 0; i < sizeof fs / sizeof fs[0]; i++) vp_field_free(fs[i]);
  vp_fieldset_free(&b->gyri);
  vp_fieldset_free(&b->texture);
}

static void make_blob(vp_blob *bl, const double c[3], const double r[3], const double rot[9],
                      double reach) {
  memcpy(bl->c, c, sizeof bl->c);
  memcpy(bl->r, r, sizeof bl->r);
  memcpy(bl->rot, rot, sizeof bl->rot);
  double m = fmax(r[0], fmax(r[1], r[2]));
  bl->bound = m * reach + 1.5;
}

/* A point inside the brain ellipsoid at normalised radius below rmax. */
static void brain_point(brats_case *b, vp_synth_rng *r, double rmax, double p[3]) {
  double v[3], n2;
  do {
    for (int a = 0; a < 3; a++) v[a] = vp_synth_uniform(r, -1.0, 1.0);
    n2 = v[0] * v[0] + v[1] * v[1] + v[2] * v[2];
  } while (n2 > 1.0);
  for (int a = 0; a < 3; a++) p[a] = floor(b->c[a] + v[a] * rmax * b->semi[a] + 0.5);
}

static double dist3(const double a[3], const double b[3]) {
  double d0 = a[0] - b[0], d1 = a[1] - b[1], d2 = a[2] - b[2];
  return sqrt(d0 * d0 + d1 * d1 + d2 * d2);
}

static vp_status setup(brats_case *b, uint64_t seed, int case_index) {
  vp_synth_rng r;
  vp_synth_rng_init(&r, vp_synth_key(seed, VP_SYNTH_BRATS, VP_SYNTH_STREAM_PARAMS),
                    (uint32_t)case_index, 0);
  int64_t shape[3] = {b->D, b->H, b->W};
  double s = cbrt((double)(b->D * b->H * b->W) / (155.0 * 240.0 * 240.0));
  const double frac[3] = {0.37, 0.35, 0.28}; /* brain semi-axes / extent */
  for (int a = 0; a < 3; a++) {
    b->c[a] = (double)shape[a] * vp_synth_uniform(&r, 0.47, 0.53);
    b->semi[a] = (double)shape[a] * frac[a] * vp_synth_uniform(&r, 0.93, 1.05);
  }
  b->bm = cbrt(b->semi[0] * b->semi[1] * b->semi[2]);
  b->r_csf = 1.0 + vp_synth_uniform(&r, 2.0, 4.0) * s / b->bm;
  b->r_skull = b->r_csf + vp_synth_uniform(&r, 4.0, 7.0) * s / b->bm;
  b->r_scalp = b->r_skull + vp_synth_uniform(&r, 4.0, 7.0) * s / b->bm;
  b->mid_x = b->c[2] + vp_synth_uniform(&r, -1.5, 1.5) * s;

  /* Lateral ventricles and deep grey nuclei, mirrored about the midline. */
  for (int side = 0; side < 2; side++) {
    double sg = side ? 1.0 : -1.0, rot[9];
    vp_synth_rotation(&r, 0.15, rot);
    double cv[3] = {b->c[0] + 0.12 * b->semi[0], b->c[1] - 0.05 * b->semi[1],
                    b->mid_x + sg * 0.11 * b->semi[2]};
    double rv[3] = {0.20 * b->semi[0] * vp_synth_uniform(&r, 0.8, 1.2),
                    0.42 * b->semi[1] * vp_synth_uniform(&r, 0.85, 1.1),
                    0.075 * b->semi[2] * vp_synth_uniform(&r, 0.7, 1.3)};
    make_blob(&b->vent[side], cv, rv, rot, 1.3);
    double cd[3] = {b->c[0] - 0.05 * b->semi[0], b->c[1] + 0.05 * b->semi[1],
                    b->mid_x + sg * 0.30 * b->semi[2]};
    double rd[3] = {0.17 * b->semi[0], 0.22 * b->semi[1], 0.11 * b->semi[2]};
    make_blob(&b->deep[side], cd, rd, rot, 1.3);
  }

  /* The main tumour: necrotic core, enhancing rim, edema up to ~1.8 radii. */
  double rot[9], cm[3], rm[3];
  vp_synth_rotation(&r, 3.14159, rot);
  /* Small enough to leave room for satellites beside its edema. */
  double smin = fmin(b->semi[0], fmin(b->semi[1], b->semi[2]));
  double rmain = vp_synth_uniform(&r, 0.17, 0.3) * smin;
  for (int a = 0; a < 3; a++) rm[a] = rmain * vp_synth_uniform(&r, 0.75, 1.25);
  /* Off the midline, in one hemisphere. */
  do brain_point(b, &r, 0.6, cm);
  while (fabs(cm[2] - b->mid_x) < 0.3 * b->semi[2]);
  make_blob(&b->main, cm, rm, rot, 1.8 * 1.25);

  /* Satellites: rejection-sampled so that none touches another or the main
   * tumour's edema; radii log-uniform from under a voxel to a few voxels. */
  int want = 10 + (int)(vp_synth_u01(&r) * 6.0);
  b->nsat = 0;
  for (int tries = 0; tries < 2000 && b->nsat < want; tries++) {
    vp_blob *sb = &b->sat[b->nsat];
    double c[3], rr[3], srot[9];
    brain_point(b, &r, 0.82, c);
    double rad = vp_synth_loguniform(&r, 0.7, fmax(1.5, 5.5 * s));
    for (int a = 0; a < 3; a++) rr[a] = rad * vp_synth_uniform(&r, 0.7, 1.3);
    vp_synth_rotation(&r, 3.14159, srot);
    int kind = (int)(vp_synth_u01(&r) * 4.0);
    if (kind == 3 && rad < 2.5) kind = 0; /* layered blobs need room for layers */
    make_blob(sb, c, rr, srot, (kind == 3 ? 1.6 : 1.0) * 1.3);
    int ok = dist3(c, b->main.c) > b->main.bound + sb->bound + 2.0;
    for (int k = 0; ok && k < b->nsat; k++)
      ok = dist3(c, b->sat[k].c) > b->sat[k].bound + sb->bound + 2.0;
    if (!ok) continue;
    b->sat_kind[b->nsat++] = kind;
  }

  /* Contrast: per-modality scale and a small per-tissue jitter. */
  for (int m = 0; m < NMOD; m++) {
    float scale = (float)vp_synth_uniform(&r, 400.0, 1100.0);
    for (int t = 0; t < NT; t++)
      b->mean[t][m] = k_means[t][m] * scale * (float)vp_synth_uniform(&r, 0.95, 1.05);
    b->sigma[m] = scale * (float)vp_synth_uniform(&r, 0.015, 0.035);
  }

  /* Smooth fields; each gets its own iteration number in the counter. */
  vp_rng_key fk = vp_synth_key(seed, VP_SYNTH_BRATS, VP_SYNTH_STREAM_FIELDS);
  uint32_t ci = (uint32_t)case_index;
  double bm = b->bm;
  double cshape[3] = {0.5 * bm, 0.5 * bm, 0.5 * bm};
  double csat[3] = {fmax(1.5, 2.5 * s), fmax(1.5, 2.5 * s), fmax(1.5, 2.5 * s)};
  double ct[3] = {0.6 * rmain, 0.6 * rmain, 0.6 * rmain};
  double cn[3] = {0.4 * rmain, 0.4 * rmain, 0.4 * rmain};
  double cp[3] = {0.3 * rmain, 0.3 * rmain, 0.3 * rmain};
  double ce[3] = {0.8 * rmain, 0.8 * rmain, 0.8 * rmain};
  double maxdim = (double)(b->D > b->H ? (b->D > b->W ? b->D : b->W) : (b->H > b->W ? b->H : b->W));
  double cb[3] = {0.7 * maxdim, 0.7 * maxdim, 0.7 * maxdim};
  VP_TRY(vp_field_init(&b->shape, fk, ci, 0, shape, cshape, 1.0f));
  VP_TRY(vp_field_init(&b->sdef, fk, ci, 1, shape, csat, 1.0f));
  VP_TRY(vp_field_init(&b->tdef, fk, ci, 2, shape, ct, 1.0f));
  VP_TRY(vp_field_init(&b->tnec, fk, ci, 3, shape, cn, 1.0f));
  VP_TRY(vp_field_init(&b->tpatch, fk, ci, 4, shape, cp, 1.0f));
  VP_TRY(vp_field_init(&b->tedema, fk, ci, 5, shape, ce, 1.0f));
  for (int m = 0; m < NMOD; m++)
    VP_TRY(vp_field_init(&b->bias[m], fk, ci, 6 + (uint32_t)m, shape, cb, 0.12f));
  VP_TRY(vp_fieldset_octaves(&b->gyri, fk, ci, 16, shape, fmax(3.0, 8.0 * s), 1.0f, 0.5f, 2));
  VP_TRY(vp_fieldset_octaves(&b->texture, fk, ci, 32, shape, fmax(3.0, 12.0 * s), 1.0f, 0.75f, 3));
  b->noise_key = vp_synth_key(seed, VP_SYNTH_BRATS, VP_SYNTH_STREAM_NOISE);
  b->case_index = ci;
  return VP_OK;
}

enum {
  R_SHAPE,
  R_GYRI,
  R_TEX,
  R_SDEF,
  R_TDEF,
  R_TNEC,
  R_TPATCH,
  R_TEDEMA,
  R_BIAS,
  NROWS = R_BIAS + NMOD
};

/* Label and tissue mixture of the tumour at one voxel; returns the label. */
static int main_tumour(const brats_case *b, const float *rows[NROWS], int64_t x, double z, double y,
                       int in_brain, float gm_weight, float *edema_mix) {
  double q = sqrt(vp_blob_q2(&b->main, z, y, (double)x)) /
             (1.0 + 0.2 * vp_clampf(rows[R_TDEF][x], -1.2f, 1.2f));
  *edema_mix = 0.0f;
  if (q < 1.0) {
    double rn = 0.55 + 0.12 * vp_clampf(rows[R_TNEC][x], -1.5f, 1.5f);
    if (q < rn) return 1;
    return rows[R_TPATCH][x] > 1.0f ? 1 : 4;
  }
  if (!in_brain) return 0;
  double re = 1.5 + 0.25 * vp_clampf(rows[R_TEDEMA][x], -1.2f, 1.2f) - 0.3 * gm_weight;
  if (q >= re) return 0;
  *edema_mix = vp_smoothstepf((float)re, (float)re - 0.25f, (float)q);
  return *edema_mix > 0.4f ? 2 : 0;
}

static int satellite(const brats_case *b, const float *sdef, int64_t x, double z, double y) {
  for (int k = 0; k < b->nsat; k++) {
    const vp_blob *sb = &b->sat[k];
    if (fabs((double)x - sb->c[2]) > sb->bound || fabs(y - sb->c[1]) > sb->bound ||
        fabs(z - sb->c[0]) > sb->bound)
      continue;
    double q =
        sqrt(vp_blob_q2(sb, z, y, (double)x)) / (1.0 + 0.25 * vp_clampf(sdef[x], -1.2f, 1.2f));
    switch (b->sat_kind[k]) {
      case 0:
        if (q < 1.0) return 4;
        break;
      case 1:
        if (q < 1.0) return 2;
        break;
      case 2:
        if (q < 1.0) return 1;
        break;
      default:
        if (q < 0.45) return 1;
        if (q < 1.0) return 4;
        if (q < 1.6) return 2;
    }
  }
  return 0;
}

static int row_meets_any_satellite(const brats_case *b, int64_t z, int64_t y) {
  int64_t x0, x1;
  for (int k = 0; k < b->nsat; k++)
    if (vp_blob_row_span(&b->sat[k], z, y, b->W, &x0, &x1)) return 1;
  return 0;
}

static vp_status brats_slice(void *ctx, int64_t z) {
  const brats_case *b = ctx;
  int64_t H = b->H, W = b->W, plane = H * W, vox = b->D * plane;
  float *buf = calloc((size_t)(NROWS * W), sizeof *buf);
  if (!buf) return vp_fail(VP_ERR_NOMEM, "synth: row buffers for slice %lld", (long long)z);
  float *row[NROWS];
  for (int i = 0; i < NROWS; i++) row[i] = buf + (int64_t)i * W;
  for (int m = 0; m < NMOD; m++) memset(b->image + m * vox + z * plane, 0, (size_t)plane * 2);
  memset(b->label + z * plane, 0, (size_t)plane);
  double dz = ((double)z - b->c[0]) / b->semi[0];
  double reach = b->r_scalp * 1.25; /* the shape field stretches at most this far */
  for (int64_t y = 0; y < H; y++) {
    double dy = ((double)y - b->c[1]) / b->semi[1];
    double h2 = reach * reach - dz * dz - dy * dy;
    if (h2 <= 0) continue;
    double h = sqrt(h2) * b->semi[2];
    int64_t x0 = (int64_t)fmax(0.0, ceil(b->c[2] - h)),
            x1 = (int64_t)fmin((double)W, floor(b->c[2] + h) + 1);
    if (x1 <= x0) continue;
    int64_t n = x1 - x0;
    for (int i = 0; i < NROWS; i++) memset(row[i] + x0, 0, (size_t)n * sizeof(float));
    vp_field_row_add(&b->shape, z, y, x0, n, row[R_SHAPE] + x0);
    vp_fieldset_row_add(&b->gyri, z, y, x0, n, row[R_GYRI] + x0);
    vp_fieldset_row_add(&b->texture, z, y, x0, n, row[R_TEX] + x0);
    for (int m = 0; m < NMOD; m++) vp_field_row_add(&b->bias[m], z, y, x0, n, row[R_BIAS + m] + x0);
    int64_t t0 = 0, t1 = 0;
    int tum = vp_blob_row_span(&b->main, z, y, W, &t0, &t1);
    if (tum) {
      vp_field_row_add(&b->tdef, z, y, t0, t1 - t0, row[R_TDEF] + t0);
      vp_field_row_add(&b->tnec, z, y, t0, t1 - t0, row[R_TNEC] + t0);
      vp_field_row_add(&b->tpatch, z, y, t0, t1 - t0, row[R_TPATCH] + t0);
      vp_field_row_add(&b->tedema, z, y, t0, t1 - t0, row[R_TEDEMA] + t0);
    }
    int sat = row_meets_any_satellite(b, z, y);
    if (sat) vp_field_row_add(&b->sdef, z, y, 0, W, row[R_SDEF]);
    const float *crow[NROWS];
    for (int i = 0; i < NROWS; i++) crow[i] = row[i];

    for (int64_t x = x0; x < x1; x++) {
      double dx = ((double)x - b->c[2]) / b->semi[2];
      double rb = sqrt(dz * dz + dy * dy + dx * dx) / (1.0 + 0.03 * row[R_SHAPE][x]);
      if (rb >= b->r_scalp) continue;
      float w[NT] = {0};
      int lab = 0, in_brain = rb < 1.0;
      if (!in_brain) {
        w[rb >= b->r_skull ? T_SCALP : rb >= b->r_csf ? T_SKULL : T_CSF] = 1.0f;
      } else {
        float g = row[R_GYRI][x];
        /* Cortex: a band whose inner edge the gyri field folds. */
        double edge = 0.905 + 0.045 * g;
        float gm = vp_smoothstepf(-0.7f, 0.7f, (float)((rb - edge) * b->bm));
        double zz = (double)z, yy = (double)y, xx = (double)x;
        for (int s = 0; s < 2; s++) {
          double dq = vp_blob_q2(&b->deep[s], zz, yy, xx);
          if (dq < 1.5) gm = fmaxf(gm, vp_smoothstepf(1.2f, 0.8f, (float)dq));
        }
        float csf = 0.0f;
        if (rb > 0.9) csf = vp_smoothstepf(-1.1f, -1.4f, g); /* sulci */
        csf = fmaxf(csf, vp_smoothstepf(1.0f - 0.9f / (float)b->bm, 1.0f, (float)rb));
        /* The fissure reaches down to the corpus callosum from above and
         * only a little way in from the front and back. */
        if (rb > (dz > 0.1 ? 0.45 : 0.8) && fabs(xx - b->mid_x - 1.5 * row[R_SHAPE][x]) < 1.2)
          csf = fmaxf(csf, 0.8f); /* interhemispheric fissure */
        for (int s = 0; s < 2; s++) {
          double vq = vp_blob_q2(&b->vent[s], zz, yy, xx) * (1.0 + 0.15 * g);
          if (vq < 1.3) csf = fmaxf(csf, vp_smoothstepf(1.15f, 0.85f, (float)vq));
        }
        w[T_GM] = gm * (1.0f - csf);
        w[T_WM] = (1.0f - gm) * (1.0f - csf);
        w[T_CSF] = csf;
        float edema = 0.0f;
        if (tum && x >= t0 && x < t1) lab = main_tumour(b, crow, x, zz, yy, csf < 0.5f, gm, &edema);
        if (!lab && sat) lab = satellite(b, row[R_SDEF], x, zz, yy);
        if (lab == 2 && edema == 0.0f) edema = 1.0f;
        if (lab == 1 || lab == 4) {
          memset(w, 0, sizeof w);
          w[lab == 4 ? T_ENH : row[R_TPATCH][x] > 1.0f ? T_NONENH : T_NEC] = 1.0f;
        } else if (edema > 0.0f) {
          for (int t = 0; t < NT; t++) w[t] *= 1.0f - edema;
          w[T_EDEMA] = edema;
        }
      }
      float tex_amp = 0.0f;
      for (int t = 0; t < NT; t++) tex_amp += w[t] * k_texture[t];
      float tex = 1.0f + tex_amp * row[R_TEX][x];
      int64_t idx = z * plane + y * W + x;
      b->label[idx] = (uint8_t)lab;
      for (int m = 0; m < NMOD; m++) {
        float mu = 0.0f;
        for (int t = 0; t < NT; t++) mu += w[t] * b->mean[t][m];
        mu *= tex * expf(row[R_BIAS + m][x]);
        float n1, n2;
        vp_synth_normal2(vp_rng_draw(b->noise_key, (uint32_t)m, b->case_index, (uint64_t)idx), &n1,
                         &n2);
        float re = mu + b->sigma[m] * n1, im = b->sigma[m] * n2;
        float v = sqrtf(re * re + im * im);
        b->image[m * vox + idx] = (int16_t)vp_clampf(v + 0.5f, 1.0f, 32767.0f);
      }
    }
  }
  free(buf);
  return VP_OK;
}

vp_status vp_synth_brats_fill(uint64_t seed, int case_index, const int64_t shape[3], int threads,
                              int16_t *image, uint8_t *label) {
  brats_case *b = calloc(1, sizeof *b);
  if (!b) return vp_fail(VP_ERR_NOMEM, "synth: brats case state");
  b->D = shape[0], b->H = shape[1], b->W = shape[2];
  b->image = image;
  b->label = label;
  vp_status st = setup(b, seed, case_index);
  vp_threadpool *pool = NULL;
  if (st == VP_OK) st = vp_threadpool_create(threads, &pool);
  if (st == VP_OK) st = vp_parallel_for(pool, b->D, brats_slice, b);
  vp_threadpool_destroy(pool);
  free_case(b);
  free(b);
  return st;
}
