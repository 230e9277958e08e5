/* Smooth random fields and random draws for the synthetic generators.
 *
 * A field is lattice noise: iid values on a coarse grid, interpolated with
 * cubic B-splines. Evaluating a whole row at once first collapses the
 * lattice along z and y (16 multiply-adds per lattice column), so a voxel
 * then costs 4 multiply-adds per field: cheap enough for a dozen fields on
 * a 240 x 240 x 155 volume, unlike blurring full-resolution white noise. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "io/synth_internal.h"

vp_rng_key vp_synth_key(uint64_t seed, vp_synth_kind kind, uint32_t stream) {
  return vp_rng_key_make(seed, stream + (uint32_t)kind * 16u);
}

void vp_synth_rng_init(vp_synth_rng *r, vp_rng_key key, uint32_t sample, uint32_t iteration) {
  r->key = key;
  r->sample = sample;
  r->iteration = iteration;
  r->next = 0;
}

double vp_synth_u01(vp_synth_rng *r) {
  vp_u32x4 w = vp_rng_draw(r->key, r->iteration, r->sample, r->next++);
  return vp_u01d(w.v[0], w.v[1]);
}

double vp_synth_uniform(vp_synth_rng *r, double lo, double hi) {
  return lo + (hi - lo) * vp_synth_u01(r);
}

double vp_synth_loguniform(vp_synth_rng *r, double lo, double hi) {
  return exp(vp_synth_uniform(r, log(lo), log(hi)));
}

double vp_synth_normal(vp_synth_rng *r) {
  vp_u32x4 w = vp_rng_draw(r->key, r->iteration, r->sample, r->next++);
  double u1 = vp_u01d(w.v[0], w.v[1]), u2 = vp_u01d(w.v[2], w.v[3]);
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* Uniform(-1, 1) lattice values have variance 1/3; cubic B-spline
 * interpolation keeps on average 0.4794 of the variance per axis, so this
 * factor brings the field's standard deviation to about 1. */
#define FIELD_NORM 5.217f

vp_status vp_field_init(vp_field *f, vp_rng_key key, uint32_t sample, uint32_t iteration,
                        const int64_t shape[3], const double cell[3], float amp) {
  memset(f, 0, sizeof *f);
  int64_t total = 1;
  for (int a = 0; a < 3; a++) {
    if (shape[a] < 1 || !(cell[a] > 0))
      return vp_fail(VP_ERR_INVALID_ARG, "synth: field over extent %lld with cell %g",
                     (long long)shape[a], cell[a]);
    double c = cell[a];
    /* Cells far finer than the lattice cap allows would only cost time. */
    double min_cell = (double)shape[a] / (VP_SYNTH_MAX_LATTICE - 4);
    if (c < min_cell) c = min_cell;
    f->inv[a] = 1.0 / c;
    f->n[a] = (int64_t)floor((double)(shape[a] - 1) / c) + 4;
    total *= f->n[a];
  }
  f->v = malloc((size_t)total * sizeof *f->v);
  if (!f->v) return vp_fail(VP_ERR_NOMEM, "synth: %lld lattice values", (long long)total);
  f->amp = amp;
  for (int64_t i = 0; i < total; i += 4) {
    vp_u32x4 w = vp_rng_draw(key, iteration, sample, (uint64_t)i);
    for (int k = 0; k < 4 && i + k < total; k++)
      f->v[i + k] = (2.0f * vp_u01f(w.v[k]) - 1.0f) * FIELD_NORM;
  }
  return VP_OK;
}

void vp_field_free(vp_field *f) {
  free(f->v);
  f->v = NULL;
}

static inline void bspline_weights(float t, float w[4]) {
  float t2 = t * t, t3 = t2 * t, s = 1.0f - t;
  w[0] = s * s * s * (1.0f / 6.0f);
  w[1] = (3.0f * t3 - 6.0f * t2 + 4.0f) * (1.0f / 6.0f);
  w[2] = (-3.0f * t3 + 3.0f * t2 + 3.0f * t + 1.0f) * (1.0f / 6.0f);
  w[3] = t3 * (1.0f / 6.0f);
}

/* Lattice index i covers voxel position (i - 1) * cell, so voxel 0 has the
 * full four-point support. */
static inline int64_t cell_of(double pos, double inv, int64_t n, float *t) {
  double u = pos * inv;
  double fl = floor(u);
  int64_t i = (int64_t)fl;
  if (i < 0) i = 0, fl = 0, u = 0;
  if (i > n - 4) i = n - 4, fl = (double)i, u = fl;
  *t = (float)(u - fl);
  return i;
}

void vp_field_row_add(const vp_field *f, int64_t z, int64_t y, int64_t x0, int64_t n, float *out) {
  if (n <= 0) return;
  float wz[4], wy[4], tz, ty;
  int64_t iz = cell_of((double)z, f->inv[0], f->n[0], &tz);
  int64_t iy = cell_of((double)y, f->inv[1], f->n[1], &ty);
  bspline_weights(tz, wz);
  bspline_weights(ty, wy);
  int64_t nx = f->n[2], ny = f->n[1];
  float col[VP_SYNTH_MAX_LATTICE];
  float tmpx;
  int64_t lo = cell_of((double)x0, f->inv[2], nx, &tmpx);
  int64_t hi = cell_of((double)(x0 + n - 1), f->inv[2], nx, &tmpx) + 4;
  for (int64_t ix = lo; ix < hi; ix++) col[ix] = 0.0f;
  for (int a = 0; a < 4; a++)
    for (int b = 0; b < 4; b++) {
      float w = wz[a] * wy[b] * f->amp;
      const float *src = f->v + ((iz + a) * ny + (iy + b)) * nx;
      for (int64_t ix = lo; ix < hi; ix++) col[ix] += w * src[ix];
    }
  for (int64_t i = 0; i < n; i++) {
    float t, w[4];
    int64_t ix = cell_of((double)(x0 + i), f->inv[2], nx, &t);
    bspline_weights(t, w);
    out[i] += w[0] * col[ix] + w[1] * col[ix + 1] + w[2] * col[ix + 2] + w[3] * col[ix + 3];
  }
}

float vp_field_at(const vp_field *f, double z, double y, double x) {
  float t[3], w[3][4];
  int64_t i[3];
  double p[3] = {z, y, x};
  for (int a = 0; a < 3; a++) {
    i[a] = cell_of(p[a], f->inv[a], f->n[a], &t[a]);
    bspline_weights(t[a], w[a]);
  }
  float s = 0.0f;
  for (int a = 0; a < 4; a++)
    for (int b = 0; b < 4; b++)
      for (int c = 0; c < 4; c++)
        s += w[0][a] * w[1][b] * w[2][c] *
             f->v[((i[0] + a) * f->n[1] + (i[1] + b)) * f->n[2] + i[2] + c];
  return s * f->amp;
}

vp_status vp_fieldset_octaves(vp_fieldset *s, vp_rng_key key, uint32_t sample, uint32_t iteration,
                              const int64_t shape[3], double cell0, float amp0, float gain,
                              int octaves) {
  memset(s, 0, sizeof *s);
  if (octaves < 1 || octaves > 8)
    return vp_fail(VP_ERR_INVALID_ARG, "synth: %d octaves (1..8)", octaves);
  /* Normalise the sum back to unit standard deviation times amp0. */
  double sum2 = 0.0;
  for (int k = 0; k < octaves; k++) sum2 += pow(gain, 2.0 * k);
  float norm = (float)(1.0 / sqrt(sum2));
  for (int k = 0; k < octaves; k++) {
    double c = cell0 / (double)(1 << k);
    if (c < 1.0) c = 1.0;
    double cell[3] = {c, c, c};
    vp_status st = vp_field_init(&s->f[k], key, sample, iteration + (uint32_t)k, shape, cell,
                                 amp0 * norm * powf(gain, (float)k));
    if (st != VP_OK) {
      vp_fieldset_free(s);
      return st;
    }
    s->count = k + 1;
  }
  return VP_OK;
}

void vp_fieldset_row_add(const vp_fieldset *s, int64_t z, int64_t y, int64_t x0, int64_t n,
                         float *out) {
  for (int k = 0; k < s->count; k++) vp_field_row_add(&s->f[k], z, y, x0, n, out);
}

void vp_fieldset_free(vp_fieldset *s) {
  for (int k = 0; k < s->count; k++) vp_field_free(&s->f[k]);
  s->count = 0;
}

void vp_synth_rotation(vp_synth_rng *r, double max_angle, double rot[9]) {
  /* Rodrigues' formula around a uniformly drawn axis. */
  double u = vp_synth_uniform(r, -1.0, 1.0), phi = vp_synth_uniform(r, 0.0, 6.283185307179586);
  double s = sqrt(1.0 - u * u);
  double k[3] = {u, s * cos(phi), s * sin(phi)};
  double th = vp_synth_uniform(r, -max_angle, max_angle);
  double c = cos(th), sn = sin(th), v = 1.0 - c;
  rot[0] = c + k[0] * k[0] * v;
  rot[1] = k[0] * k[1] * v - k[2] * sn;
  rot[2] = k[0] * k[2] * v + k[1] * sn;
  rot[3] = k[1] * k[0] * v + k[2] * sn;
  rot[4] = c + k[1] * k[1] * v;
  rot[5] = k[1] * k[2] * v - k[0] * sn;
  rot[6] = k[2] * k[0] * v - k[1] * sn;
  rot[7] = k[2] * k[1] * v + k[0] * sn;
  rot[8] = c + k[2] * k[2] * v;
}

int vp_blob_row_span(const vp_blob *b, int64_t z, int64_t y, int64_t w, int64_t *x0, int64_t *x1) {
  double dz = (double)z - b->c[0], dy = (double)y - b->c[1];
  double r2 = b->bound * b->bound - dz * dz - dy * dy;
  if (r2 < 0) return 0;
  double h = sqrt(r2);
  double lo = ceil(b->c[2] - h), hi = floor(b->c[2] + h) + 1;
  if (lo < 0) lo = 0;
  if (hi > (double)w) hi = (double)w;
  if (hi <= lo) return 0;
  *x0 = (int64_t)lo;
  *x1 = (int64_t)hi;
  return 1;
}
