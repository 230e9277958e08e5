/* Internals of the synthetic dataset generator (src/io/synth*.c).
 *
 * Every random value is drawn with Philox from (seed, stream id) as the key
 * and (element, case index, field id) as the counter, so a case is a pure
 * function of (seed, kind, case index, shape) whatever the thread count. */
#ifndef VP_IO_SYNTH_INTERNAL_H
#define VP_IO_SYNTH_INTERNAL_H

#include <stdint.h>

#include "core/philox.h"
#include "voxpipe.h"

/* Stream ids (the `op` of vp_rng_key_make), distinct per kind so that the
 * two kinds never share numbers. */
enum {
  VP_SYNTH_STREAM_PARAMS = 0x53590000u, /* per-case scalar parameters */
  VP_SYNTH_STREAM_FIELDS = 0x53590100u, /* lattice values of smooth fields */
  VP_SYNTH_STREAM_NOISE = 0x53590200u,  /* per-voxel acquisition noise */
  VP_SYNTH_STREAM_SHAPE = 0x53590300u   /* kits: the per-case volume shape */
};

vp_rng_key vp_synth_key(uint64_t seed, vp_synth_kind kind, uint32_t stream);

/* A sequence of scalar draws for one case: element = draw number. */
typedef struct vp_synth_rng {
  vp_rng_key key;
  uint32_t sample;
  uint32_t iteration;
  uint64_t next;
} vp_synth_rng;

void vp_synth_rng_init(vp_synth_rng *r, vp_rng_key key, uint32_t sample, uint32_t iteration);
double vp_synth_u01(vp_synth_rng *r);
double vp_synth_uniform(vp_synth_rng *r, double lo, double hi);
/* exp of a uniform in [log lo, log hi): sizes spread over decades. */
double vp_synth_loguniform(vp_synth_rng *r, double lo, double hi);
double vp_synth_normal(vp_synth_rng *r);

/* Two approximately standard normal values from one Philox draw (a sum of
 * four 16-bit uniforms each: cheap, bounded by +-3.46, smooth enough for
 * acquisition noise). */
static inline void vp_synth_normal2(vp_u32x4 w, float *a, float *b) {
  const float k = 1.0f / (65536.0f * 0.57735027f); /* sd of a sum of 4 U(0,1) */
  float s0 = (float)(w.v[0] & 0xffffu) + (float)(w.v[0] >> 16) + (float)(w.v[1] & 0xffffu) +
             (float)(w.v[1] >> 16);
  float s1 = (float)(w.v[2] & 0xffffu) + (float)(w.v[2] >> 16) + (float)(w.v[3] & 0xffffu) +
             (float)(w.v[3] >> 16);
  *a = (s0 - 2.0f * 65535.0f) * k;
  *b = (s1 - 2.0f * 65535.0f) * k;
}

/* Smooth random field: random values on a coarse lattice interpolated with
 * cubic B-splines (C2, no overshoot). Normalised so that the field has a
 * standard deviation of about 1 before `amp` is applied. */
#define VP_SYNTH_MAX_LATTICE 512

typedef struct vp_field {
  int64_t n[3];  /* lattice extents (z, y, x) */
  double inv[3]; /* 1 / cell size in voxels */
  float amp;
  float *v; /* n[0] * n[1] * n[2] values */
} vp_field;

/* A field over a volume of `shape` voxels with the given cell sizes (in
 * voxels, clamped so that the lattice stays small), drawn from counter
 * (lattice index, sample, iteration). */
vp_status vp_field_init(vp_field *f, vp_rng_key key, uint32_t sample, uint32_t iteration,
                        const int64_t shape[3], const double cell[3], float amp);
void vp_field_free(vp_field *f);

/* out[i] += amp * field(z, y, x0 + i) for i in [0, n). */
void vp_field_row_add(const vp_field *f, int64_t z, int64_t y, int64_t x0, int64_t n, float *out);
/* Value at one voxel (slow path, for sparse queries). */
float vp_field_at(const vp_field *f, double z, double y, double x);

/* A set of fields sharing a key and sample; octave k gets iteration base+k. */
typedef struct vp_fieldset {
  int count;
  vp_field f[8];
} vp_fieldset;

/* Fractal sum: `octaves` fields, cell sizes cell0 / 2^k, amplitudes amp0 *
 * gain^k. */
vp_status vp_fieldset_octaves(vp_fieldset *s, vp_rng_key key, uint32_t sample, uint32_t iteration,
                              const int64_t shape[3], double cell0, float amp0, float gain,
                              int octaves);
void vp_fieldset_row_add(const vp_fieldset *s, int64_t z, int64_t y, int64_t x0, int64_t n,
                         float *out);
void vp_fieldset_free(vp_fieldset *s);

/* Small 3-vector helpers for shapes. */
typedef struct vp_blob {
  double c[3];   /* centre (z, y, x) in voxels */
  double r[3];   /* semi-axes in voxels, along the rotated axes */
  double rot[9]; /* row-major rotation: local = rot * (p - c) */
  double bound;  /* radius of a sphere holding every voxel it may touch */
} vp_blob;

/* A random rotation (uniform axis, angle up to max_angle radians). */
void vp_synth_rotation(vp_synth_rng *r, double max_angle, double rot[9]);
/* The blob's normalised radius at voxel (z, y, x): < 1 inside the ellipsoid. */
static inline double vp_blob_q2(const vp_blob *b, double z, double y, double x) {
  double dz = z - b->c[0], dy = y - b->c[1], dx = x - b->c[2];
  double a = (b->rot[0] * dz + b->rot[1] * dy + b->rot[2] * dx) / b->r[0];
  double e = (b->rot[3] * dz + b->rot[4] * dy + b->rot[5] * dx) / b->r[1];
  double g = (b->rot[6] * dz + b->rot[7] * dy + b->rot[8] * dx) / b->r[2];
  return a * a + e * e + g * g;
}
/* Whether the row (z, y) may meet the blob; sets [*x0, *x1). */
int vp_blob_row_span(const vp_blob *b, int64_t z, int64_t y, int64_t w, int64_t *x0, int64_t *x1);

static inline float vp_clampf(float v, float lo, float hi) { return v < lo ? lo : v > hi ? hi : v; }
static inline float vp_smoothstepf(float e0, float e1, float v) {
  float t = vp_clampf((v - e0) / (e1 - e0), 0.0f, 1.0f);
  return t * t * (3.0f - 2.0f * t);
}

/* The two generators: fill image [C, D, H, W] int16 and label [D, H, W]
 * uint8, already allocated, using up to `threads` threads. */
vp_status vp_synth_brats_fill(uint64_t seed, int case_index, const int64_t shape[3], int threads,
                              int16_t *image, uint8_t *label);
vp_status vp_synth_kits_fill(uint64_t seed, int case_index, const int64_t shape[3], int threads,
                             int16_t *image, uint8_t *label);

/* kits: the per-case shape drawn in KiTS19's range (after resampling to
 * 1.6 x 1.2 x 1.2 mm), times scale. */
void vp_synth_kits_shape(uint64_t seed, int case_index, double scale, int64_t shape[3]);

#endif
