/* A KiTS19-like case: one abdominal CT channel in Hounsfield units and its
 * labels {0, 1 kidney, 2 tumour (cysts included, as in KiTS19)}.
 *
 * Axial slices (H = anterior -> posterior, W = patient right -> left as a
 * radiologist sees it) of a body ellipse: subcutaneous fat, muscle wall,
 * visceral fat with bowel and gas pockets, liver, spleen, spine (vertebral
 * bodies with discs, canal, arch), back muscles, psoas, aorta and IVC, two
 * bean-shaped kidneys with cortex, medulla and hilum, and one to three
 * tumours or cysts of very different sizes grown from the kidneys. Sizes
 * are physical (mm) turned into voxels with the MLPerf spacing 1.6 x 1.2 x
 * 1.2 mm and the case's scale, so small test cases keep the anatomy. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "core/threadpool.h"
#include "io/synth_internal.h"

enum { MAX_TUM = 3 };

typedef struct kits_case {
  int64_t D, H, W;
  uint32_t case_index;
  double kxy, kz;        /* voxels per mm in-plane and along D */
  double cx, cy, ax, ay; /* body ellipse */
  double r_fat, r_wall;  /* inner radii of subcutaneous fat and muscle wall */
  double vy, vr, canal_y, canal_r, disc_phase;
  vp_blob liver, spleen, psoas[2], back[2], aorta, ivc;
  vp_blob kidney[2], hilum[2];
  vp_blob tum[MAX_TUM];
  int ntum, cyst[MAX_TUM];
  float tum_hu[MAX_TUM], aorta_hu, sigma;
  vp_field body, organ, gas, kdef, tdef, medulla;
  vp_fieldset texture;
  vp_rng_key noise_key;
  int16_t *image;
  uint8_t *label;
} kits_case;

static void free_case(kits_case *k) {
  vp_field *fs[] = {&k->body, &k->organ, &k->gas, &k->kdef, &k->tdef, &k->medulla};
  for (size_t i = 0; i < sizeof fs / sizeof fs[0]; i++) vp_field_free(fs[i]);
  vp_fieldset_free(&k->texture);
}

void vp_synth_kits_shape(uint64_t seed, int case_index, double scale, int64_t shape[3]) {
  vp_synth_rng r;
  vp_synth_rng_init(&r, vp_synth_key(seed, VP_SYNTH_KITS, VP_SYNTH_STREAM_SHAPE),
                    (uint32_t)case_index, 0);
  if (!(scale > 0)) scale = 1.0;
  double d = vp_synth_uniform(&r, 100.0, 460.0);
  double h = vp_synth_uniform(&r, 250.0, 420.0);
  /* Scans are roughly square in plane. */
  double w = fmin(420.0, fmax(250.0, h * vp_synth_uniform(&r, 0.92, 1.12)));
  double e[3] = {d, h, w};
  for (int a = 0; a < 3; a++) {
    double v = floor(e[a] * scale + 0.5);
    shape[a] = v < 8.0 ? 8 : (int64_t)v;
  }
}

/* A blob from a centre and semi-axes in mm-scaled voxels. */
static void blob_at(vp_blob *b, double z, double y, double x, double rz, double ry, double rx,
                    const double *rot, double reach) {
  static const double id[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
  b->c[0] = z, b->c[1] = y, b->c[2] = x;
  b->r[0] = fmax(rz, 0.6), b->r[1] = fmax(ry, 0.6), b->r[2] = fmax(rx, 0.6);
  memcpy(b->rot, rot ? rot : id, sizeof b->rot);
  b->bound = fmax(b->r[0], fmax(b->r[1], b->r[2])) * reach + 1.5;
}

static vp_status setup(kits_case *k, uint64_t seed, int case_index) {
  vp_synth_rng r;
  vp_synth_rng_init(&r, vp_synth_key(seed, VP_SYNTH_KITS, VP_SYNTH_STREAM_PARAMS),
                    (uint32_t)case_index, 0);
  double H = (double)k->H, W = (double)k->W, D = (double)k->D;
  k->ax = W * vp_synth_uniform(&r, 0.34, 0.43);
  k->ay = fmin(k->ax * vp_synth_uniform(&r, 0.62, 0.80), 0.44 * H);
  k->cx = W * vp_synth_uniform(&r, 0.48, 0.52);
  k->cy = H * vp_synth_uniform(&r, 0.47, 0.53);
  /* A body half-width of ~150 voxels is ~180 mm at 1.2 mm: the anatomy
   * scales with the body, so scaled-down cases stay anatomical. */
  double u = k->ax / 150.0;
  k->kxy = u / 1.2;
  k->kz = u / 1.6;
  double kxy = k->kxy, kz = k->kz;
  k->r_fat = 1.0 - vp_synth_uniform(&r, 8.0, 35.0) * kxy / k->ax;
  k->r_wall = k->r_fat - 12.0 * kxy / k->ax;

  k->vy = k->cy + 0.42 * k->ay;
  k->vr = 20.0 * kxy;
  k->canal_r = 8.0 * kxy;
  k->canal_y = k->vy + k->vr + k->canal_r + 2.0 * kxy;
  k->disc_phase = vp_synth_uniform(&r, 0.0, 32.0);
  double upper = D * vp_synth_uniform(&r, 0.8, 1.0);
  blob_at(&k->liver, upper, k->cy - 0.15 * k->ay, k->cx - 0.45 * k->ax, 90.0 * kz, 0.65 * k->ay,
          0.45 * k->ax, NULL, 1.3);
  blob_at(&k->spleen, upper - 20.0 * kz, k->cy + 0.25 * k->ay, k->cx + 0.62 * k->ax, 55.0 * kz,
          45.0 * kxy, 30.0 * kxy, NULL, 1.3);
  for (int s = 0; s < 2; s++) {
    double sg = s ? 1.0 : -1.0;
    /* Psoas grows towards the pelvis (low z). */
    blob_at(&k->psoas[s], 0.0, k->vy - 5.0 * kxy, k->cx + sg * 38.0 * kxy, D * 1.6, 20.0 * kxy,
            17.0 * kxy, NULL, 1.1);
    blob_at(&k->back[s], D * 0.5, k->canal_y + 8.0 * kxy, k->cx + sg * 38.0 * kxy, D * 4.0,
            28.0 * kxy, 30.0 * kxy, NULL, 1.1);
  }
  blob_at(&k->aorta, D * 0.5, k->vy - k->vr - 14.0 * kxy, k->cx + 14.0 * kxy, D * 4.0,
          vp_synth_uniform(&r, 9.0, 12.0) * kxy, 11.0 * kxy, NULL, 1.1);
  blob_at(&k->ivc, D * 0.5, k->vy - k->vr - 10.0 * kxy, k->cx - 24.0 * kxy, D * 4.0, 9.0 * kxy,
          13.0 * kxy, NULL, 1.1);
  k->aorta_hu = (float)vp_synth_uniform(&r, 150.0, 280.0);

  double kzc = D * vp_synth_uniform(&r, 0.38, 0.6);
  for (int s = 0; s < 2; s++) {
    double sg = s ? 1.0 : -1.0, rot[9];
    vp_synth_rotation(&r, 0.3, rot);
    double rz = fmin(55.0 * kz * vp_synth_uniform(&r, 0.85, 1.1), 0.45 * D);
    double z = kzc + (s ? 8.0 : -4.0) * kz + vp_synth_uniform(&r, -6.0, 6.0) * kz;
    double y = k->vy + vp_synth_uniform(&r, -8.0, 8.0) * kxy;
    double x = k->cx + sg * vp_synth_uniform(&r, 65.0, 80.0) * kxy;
    blob_at(&k->kidney[s], z, y, x, rz, 22.0 * kxy * vp_synth_uniform(&r, 0.9, 1.15),
            30.0 * kxy * vp_synth_uniform(&r, 0.9, 1.15), rot, 1.15);
    /* The hilum opens towards the spine. */
    blob_at(&k->hilum[s], z, y - 4.0 * kxy, x - sg * 24.0 * kxy, 0.45 * rz, 11.0 * kxy, 14.0 * kxy,
            NULL, 1.0);
  }

  double u0 = vp_synth_u01(&r);
  k->ntum = u0 < 0.65 ? 1 : u0 < 0.9 ? 2 : 3;
  int side0 = vp_synth_u01(&r) < 0.5;
  for (int t = 0; t < k->ntum; t++) {
    int side = t == 0 ? side0 : vp_synth_u01(&r) < 0.6 ? side0 : !side0;
    const vp_blob *kb = &k->kidney[side];
    double rad = vp_synth_loguniform(&r, 6.0, 50.0), v[3], n2;
    do {
      for (int a = 0; a < 3; a++) v[a] = vp_synth_uniform(&r, -1.0, 1.0);
      n2 = v[0] * v[0] + v[1] * v[1] + v[2] * v[2];
    } while (n2 > 1.0 || n2 < 0.05);
    /* Lateral, not into the hilum. */
    double sg = side ? 1.0 : -1.0;
    if (v[2] * sg < 0) v[2] = -v[2];
    double dist = vp_synth_uniform(&r, 0.3, 1.05) / sqrt(n2);
    double rot[9];
    vp_synth_rotation(&r, 3.14159, rot);
    /* On a voxel centre, so that even the smallest tumour holds a voxel. */
    blob_at(&k->tum[t], floor(kb->c[0] + v[0] * dist * kb->r[0] + 0.5),
            floor(kb->c[1] + v[1] * dist * kb->r[1] + 0.5),
            floor(kb->c[2] + v[2] * dist * kb->r[2] + 0.5),
            rad * kz * vp_synth_uniform(&r, 0.8, 1.2), rad * kxy * vp_synth_uniform(&r, 0.8, 1.2),
            rad * kxy * vp_synth_uniform(&r, 0.8, 1.2), rot, 1.3);
    double lim[3] = {D - 1, H - 1, W - 1};
    for (int a = 0; a < 3; a++) k->tum[t].c[a] = fmin(fmax(k->tum[t].c[a], 0.0), lim[a]);
    k->cyst[t] = vp_synth_u01(&r) < 0.2;
    k->tum_hu[t] = k->cyst[t] ? (float)vp_synth_uniform(&r, 2.0, 18.0)
                              : (float)vp_synth_uniform(&r, 75.0, 130.0);
  }
  k->sigma = (float)vp_synth_uniform(&r, 8.0, 18.0);

  vp_rng_key fk = vp_synth_key(seed, VP_SYNTH_KITS, VP_SYNTH_STREAM_FIELDS);
  uint32_t ci = (uint32_t)case_index;
  int64_t shape[3] = {k->D, k->H, k->W};
#define CELL(mm) \
  { fmax(1.5, (mm)*kz), fmax(1.5, (mm)*kxy), fmax(1.5, (mm)*kxy) }
  double cbody[3] = CELL(70.0), corg[3] = CELL(22.0), cgas[3] = CELL(7.0);
  double ckd[3] = CELL(14.0), ctd[3] = CELL(9.0), cmed[3] = CELL(6.0);
#undef CELL
  VP_TRY(vp_field_init(&k->body, fk, ci, 0, shape, cbody, 1.0f));
  VP_TRY(vp_field_init(&k->organ, fk, ci, 1, shape, corg, 1.0f));
  VP_TRY(vp_field_init(&k->gas, fk, ci, 2, shape, cgas, 1.0f));
  VP_TRY(vp_field_init(&k->kdef, fk, ci, 3, shape, ckd, 1.0f));
  VP_TRY(vp_field_init(&k->tdef, fk, ci, 4, shape, ctd, 1.0f));
  VP_TRY(vp_field_init(&k->medulla, fk, ci, 5, shape, cmed, 1.0f));
  VP_TRY(vp_fieldset_octaves(&k->texture, fk, ci, 16, shape, fmax(2.0, 10.0 * kxy), 1.0f, 0.7f, 2));
  k->noise_key = vp_synth_key(seed, VP_SYNTH_KITS, VP_SYNTH_STREAM_NOISE);
  k->case_index = ci;
  return VP_OK;
}

enum { R_BODY, R_ORGAN, R_GAS, R_KDEF, R_TDEF, R_MED, R_TEX, NROWS };

static int in_blob(const vp_blob *b, double z, double y, double x, double grow) {
  if (fabs(x - b->c[2]) > b->bound * grow || fabs(y - b->c[1]) > b->bound * grow) return 0;
  return vp_blob_q2(b, z, y, x) < grow * grow;
}

static vp_status kits_slice(void *ctx, int64_t z) {
  const kits_case *k = ctx;
  int64_t H = k->H, W = k->W, plane = H * W;
  float *buf = calloc((size_t)(NROWS * W), sizeof *buf);
  if (!buf) return vp_fail(VP_ERR_NOMEM, "synth: row buffers for slice %lld", (long long)z);
  float *row[NROWS];
  for (int i = 0; i < NROWS; i++) row[i] = buf + (int64_t)i * W;
  double zz = (double)z;
  double zmm = zz / k->kz;
  int disc = fmod(zmm + k->disc_phase, 32.0) < 6.0;
  for (int64_t y = 0; y < H; y++) {
    double yy = (double)y, dy = (yy - k->cy) / k->ay;
    for (int i = 0; i < NROWS; i++) memset(row[i], 0, (size_t)W * sizeof(float));
    double h2 = 1.3 * 1.3 - dy * dy;
    int64_t x0 = 0, x1 = 0;
    if (h2 > 0) {
      double h = sqrt(h2) * k->ax;
      x0 = (int64_t)fmax(0.0, ceil(k->cx - h));
      x1 = (int64_t)fmin((double)W, floor(k->cx + h) + 1);
      if (x1 < x0) x1 = x0;
    }
    int64_t n = x1 - x0;
    vp_field_row_add(&k->body, z, y, x0, n, row[R_BODY] + x0);
    vp_field_row_add(&k->organ, z, y, x0, n, row[R_ORGAN] + x0);
    vp_field_row_add(&k->gas, z, y, x0, n, row[R_GAS] + x0);
    vp_fieldset_row_add(&k->texture, z, y, x0, n, row[R_TEX] + x0);
    int64_t s0, s1;
    int kid = 0, tum = 0;
    for (int s = 0; s < 2; s++) kid |= vp_blob_row_span(&k->kidney[s], z, y, W, &s0, &s1);
    for (int t = 0; t < k->ntum; t++) tum |= vp_blob_row_span(&k->tum[t], z, y, W, &s0, &s1);
    if (kid || tum) {
      vp_field_row_add(&k->kdef, z, y, x0, n, row[R_KDEF] + x0);
      vp_field_row_add(&k->tdef, z, y, x0, n, row[R_TDEF] + x0);
      vp_field_row_add(&k->medulla, z, y, x0, n, row[R_MED] + x0);
    }
    for (int64_t x = 0; x < W; x++) {
      double xx = (double)x, dx = (xx - k->cx) / k->ax;
      double rho = sqrt(dx * dx + dy * dy) / (1.0 + 0.04 * row[R_BODY][x]);
      float hu = -1000.0f, tex_amp = 0.0f, noise_gain = 0.4f;
      int lab = 0;
      if (rho < 1.0 && x >= x0 && x < x1) {
        float tex = row[R_TEX][x];
        noise_gain = 1.0f;
        if (rho >= k->r_fat) {
          hu = rho > 1.0 - 2.0 * k->kxy / k->ax ? 45.0f : -105.0f; /* skin, fat */
          tex_amp = 8.0f;
        } else if (rho >= k->r_wall) {
          hu = 50.0f, tex_amp = 6.0f; /* muscle wall */
        } else {
          /* Viscera: bowel loops in fat, gas pockets anteriorly. */
          float org = row[R_ORGAN][x];
          if (org > -0.2f) {
            hu = 35.0f, tex_amp = 10.0f;
            if (row[R_GAS][x] > 1.5f && yy < k->cy) hu = -900.0f, tex_amp = 30.0f;
          } else {
            hu = -100.0f, tex_amp = 10.0f;
          }
          if (in_blob(&k->liver, zz, yy, xx, 1.0 + 0.05 * org)) hu = 62.0f, tex_amp = 6.0f;
          if (in_blob(&k->spleen, zz, yy, xx, 1.0 + 0.05 * org)) hu = 52.0f, tex_amp = 6.0f;
          for (int s = 0; s < 2; s++)
            if (in_blob(&k->psoas[s], zz, yy, xx, 1.0) || in_blob(&k->back[s], zz, yy, xx, 1.0))
              hu = 52.0f, tex_amp = 6.0f;
          if (in_blob(&k->aorta, zz, yy, xx, 1.0)) hu = k->aorta_hu, tex_amp = 4.0f;
          if (in_blob(&k->ivc, zz, yy, xx, 1.0)) hu = 0.55f * k->aorta_hu, tex_amp = 4.0f;
        }
        /* Spine: vertebral body (cortex, cancellous bone or disc), canal, arch. */
        double ry = yy - k->vy, rx = xx - k->cx, rv = sqrt(ry * ry + rx * rx);
        double cy = yy - k->canal_y, rc = sqrt(cy * cy + rx * rx);
        if (rv < k->vr) {
          if (disc)
            hu = 85.0f, tex_amp = 8.0f;
          else if (rv > k->vr - 2.5 * k->kxy)
            hu = 850.0f, tex_amp = 90.0f;
          else
            hu = 260.0f, tex_amp = 60.0f;
        } else if (rc < k->canal_r) {
          hu = 20.0f, tex_amp = 5.0f;
        } else if (!disc && rc < k->canal_r + 5.0 * k->kxy) {
          hu = 700.0f, tex_amp = 100.0f;
        } else if (!disc && cy > 0 && cy < 40.0 * k->kxy && fabs(rx) < 4.0 * k->kxy) {
          hu = 650.0f, tex_amp = 100.0f; /* spinous process */
        }
        /* Kidneys: cortex, medulla, hilum (sinus fat around the pelvis). */
        if (kid) {
          for (int s = 0; s < 2; s++) {
            const vp_blob *kb = &k->kidney[s];
            if (fabs(xx - kb->c[2]) > kb->bound) continue;
            double q = sqrt(vp_blob_q2(kb, zz, yy, xx)) / (1.0 + 0.06 * row[R_KDEF][x]);
            if (q >= 1.0) continue;
            double hq = vp_blob_q2(&k->hilum[s], zz, yy, xx);
            if (hq < 0.12) {
              hu = 15.0f, tex_amp = 4.0f, lab = 1; /* renal pelvis */
            } else if (hq < 1.0) {
              hu = -70.0f, tex_amp = 15.0f; /* sinus fat */
            } else {
              lab = 1;
              int med = q < 0.78 && row[R_MED][x] > 0.1f;
              hu = med ? 115.0f : 175.0f, tex_amp = 10.0f;
            }
          }
        }
        if (tum) {
          for (int t = 0; t < k->ntum; t++) {
            const vp_blob *tb = &k->tum[t];
            if (fabs(xx - tb->c[2]) > tb->bound || rho > k->r_fat) continue;
            double q = sqrt(vp_blob_q2(tb, zz, yy, xx)) /
                       (1.0 + (k->cyst[t] ? 0.03 : 0.15) * row[R_TDEF][x]);
            if (q >= 1.0) continue;
            lab = 2;
            if (k->cyst[t]) {
              hu = k->tum_hu[t], tex_amp = 2.0f;
            } else {
              int necrotic = tb->r[1] > 12.0 * k->kxy && q < 0.5 + 0.15 * row[R_MED][x];
              hu = necrotic ? 30.0f : k->tum_hu[t], tex_amp = 25.0f;
            }
          }
        }
        hu += tex_amp * tex;
      }
      int64_t idx = z * plane + y * W + x;
      float n1, n2;
      vp_synth_normal2(vp_rng_draw(k->noise_key, 0, k->case_index, (uint64_t)idx), &n1, &n2);
      hu += k->sigma * noise_gain * n1;
      k->image[idx] = (int16_t)lrintf(vp_clampf(hu, -1024.0f, 3071.0f));
      k->label[idx] = (uint8_t)lab;
    }
  }
  free(buf);
  return VP_OK;
}

vp_status vp_synth_kits_fill(uint64_t seed, int case_index, const int64_t shape[3], int threads,
                             int16_t *image, uint8_t *label) {
  kits_case *k = calloc(1, sizeof *k);
  if (!k) return vp_fail(VP_ERR_NOMEM, "synth: kits case state");
  k->D = shape[0], k->H = shape[1], k->W = shape[2];
  k->image = image;
  k->label = label;
  vp_status st = setup(k, seed, case_index);
  vp_threadpool *pool = NULL;
  if (st == VP_OK) st = vp_threadpool_create(threads, &pool);
  if (st == VP_OK) st = vp_parallel_for(pool, k->D, kits_slice, k);
  vp_threadpool_destroy(pool);
  free_case(k);
  free(k);
  return st;
}
