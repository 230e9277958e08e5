/* Philox4x32-10 against Random123's known answers; the uniform and normal
 * helpers' ranges and statistics. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/philox.h"
#include "testutil.h"

/* Random123's kat_vectors, "philox4x32 10" lines: counter, key, result. */
static const struct {
  uint32_t ctr[4], key[2], want[4];
} kat[] = {
    {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}},
    {{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu},
     {0xffffffffu, 0xffffffffu},
     {0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}},
    {{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u},
     {0xa4093822u, 0x299f31d0u},
     {0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}},
};

static void test_known_answers(void **state) {
  (void)state;
  for (size_t t = 0; t < sizeof kat / sizeof kat[0]; t++) {
    vp_u32x4 c = {{kat[t].ctr[0], kat[t].ctr[1], kat[t].ctr[2], kat[t].ctr[3]}};
    vp_rng_key k = {kat[t].key[0], kat[t].key[1]};
    vp_u32x4 r = vp_philox4x32_10(c, k);
    for (int w = 0; w < 4; w++) {
      if (r.v[w] != kat[t].want[w])
        fail_msg("vector %zu word %d: got %08x, want %08x", t, w, r.v[w], kat[t].want[w]);
    }
  }
}

/* vp_rng_draw's counter layout is part of the contract (kernels rebuild it). */
static void test_draw_counter_layout(void **state) {
  (void)state;
  uint64_t st = vp_test_seed();
  for (int t = 0; t < 100; t++) {
    vp_rng_key k = {(uint32_t)vp_test_rand(&st), (uint32_t)vp_test_rand(&st)};
    uint32_t it = (uint32_t)vp_test_rand(&st), sm = (uint32_t)vp_test_rand(&st);
    uint64_t el = vp_test_rand(&st);
    vp_u32x4 c = {{(uint32_t)el, (uint32_t)(el >> 32), sm, it}};
    vp_u32x4 a = vp_rng_draw(k, it, sm, el), b = vp_philox4x32_10(c, k);
    assert_memory_equal(a.v, b.v, sizeof a.v);
  }
}

static void test_uniform_ranges(void **state) {
  (void)state;
  /* the extremes of the input give the extremes of the output */
  assert_true(vp_u01f(0) > 0.0f);
  assert_true(vp_u01f(0xffffffffu) < 1.0f);
  assert_true(vp_u01f(0) == ldexpf(1.0f, -24));
  assert_true(vp_u01f(0xffffffffu) == 1.0f - ldexpf(1.0f, -24));
  assert_true(vp_u01d(0, 0) > 0.0);
  assert_true(vp_u01d(0xffffffffu, 0xffffffffu) < 1.0);
  assert_true(vp_u01d(0, 0) == ldexp(1.0, -53));
  assert_true(vp_u01d(0xffffffffu, 0xffffffffu) == 1.0 - ldexp(1.0, -53));
  /* every word lands strictly inside, and the value tracks the word:
   * |u - x / 2^32| is within one step of the 23-bit (52-bit) grid */
  uint64_t st = vp_test_seed();
  for (int i = 0; i < 1000000; i++) {
    uint32_t x = (uint32_t)vp_test_rand(&st), y = (uint32_t)vp_test_rand(&st);
    if (i < 64) x = (uint32_t)i << 26 | (i & 1 ? 0x3ffffffu : 0); /* near the grid edges */
    float f = vp_u01f(x);
    double d = vp_u01d(x, y);
    if (!(f > 0.0f && f < 1.0f)) fail_msg("vp_u01f(%08x) = %a", x, f);
    if (!(d > 0.0 && d < 1.0)) fail_msg("vp_u01d(%08x, %08x) = %a", x, y, d);
    if (fabs(f - x / 4294967296.0) > ldexp(1.0, -23)) fail_msg("vp_u01f(%08x) = %a", x, f);
    double xy = ((double)x * 4294967296.0 + y) / 18446744073709551616.0;
    if (fabs(d - xy) > ldexp(1.0, -51)) fail_msg("vp_u01d(%08x, %08x) = %a", x, y, d);
  }
}

/* Wilson-Hilferty: the chi-square quantile with k degrees of freedom at the
 * standard normal quantile z. */
static double chi2_quantile(double k, double z) {
  double c = 2.0 / (9.0 * k);
  double t = 1.0 - c + z * sqrt(c);
  return k * t * t * t;
}

/* 10^6 draws into 1000 bins. z = 4.9 puts each tail near 5e-7: a correct
 * generator fails one run in a million; a stuck bit, a repeated counter or
 * a lost word breaks the upper bound, and too-even counts (a counter leaking
 * through) the lower. */
static void check_chi2(const char *what, const uint32_t *bins, int nbins, double draws) {
  double e = draws / nbins, x2 = 0;
  for (int b = 0; b < nbins; b++) x2 += (bins[b] - e) * (bins[b] - e) / e;
  double lo = chi2_quantile(nbins - 1, -4.9), hi = chi2_quantile(nbins - 1, 4.9);
  fprintf(stderr, "%s: chi-square %.1f with %d dof, bounds [%.1f, %.1f]\n", what, x2, nbins - 1, lo,
          hi);
  if (!(x2 > lo && x2 < hi)) fail_msg("%s: chi-square %.1f outside [%.1f, %.1f]", what, x2, lo, hi);
}

static void test_chi_square(void **state) {
  (void)state;
  enum { NBINS = 1000, DRAWS = 1000000 };
  uint64_t seed = vp_test_seed();
  vp_rng_key k = vp_rng_key_make(seed, 3);
  uint32_t *bf = calloc(NBINS, sizeof *bf), *bd = calloc(NBINS, sizeof *bd);
  uint32_t *lane[4];
  for (int w = 0; w < 4; w++) lane[w] = calloc(NBINS, sizeof *lane[w]);
  double s = 0, sxy = 0, prev = 0.5;
  for (uint64_t g = 0; g < DRAWS / 4; g++) {
    vp_u32x4 r = vp_rng_draw(k, 7, 11, g);
    for (int w = 0; w < 4; w++) {
      float u = vp_u01f(r.v[w]);
      bf[(int)(u * NBINS)]++;
      lane[w][(int)(u * NBINS)]++;
      s += u;
      sxy += (u - 0.5) * (prev - 0.5);
      prev = u;
    }
    for (int w = 0; w < 4; w += 2) bd[(int)(vp_u01d(r.v[w], r.v[w + 1]) * NBINS)]++;
  }
  check_chi2("vp_u01f", bf, NBINS, DRAWS);
  check_chi2("vp_u01d", bd, NBINS, DRAWS / 2);
  /* each word position alone: 250000 draws, 1000 bins */
  for (int w = 0; w < 4; w++) {
    char name[32];
    snprintf(name, sizeof name, "word %d", w);
    check_chi2(name, lane[w], NBINS, DRAWS / 4);
  }
  /* mean 1/2 (sd 0.2887 / 1000), lag-1 covariance 0 (sd 1/12 / 1000) */
  double mean = s / DRAWS, cov = sxy / DRAWS;
  if (fabs(mean - 0.5) > 6 * 0.2887 / 1000) fail_msg("mean %.6f", mean);
  if (fabs(cov) > 6 * (1.0 / 12) / 1000) fail_msg("lag-1 covariance %.6f", cov);
  free(bf);
  free(bd);
  for (int w = 0; w < 4; w++) free(lane[w]);
}

static int cmp_key(const void *a, const void *b) {
  const vp_rng_key *x = a, *y = b;
  uint64_t u = (uint64_t)x->k1 << 32 | x->k0, v = (uint64_t)y->k1 << 32 | y->k0;
  return u < v ? -1 : u > v;
}

static void test_keys_differ(void **state) {
  (void)state;
  enum { SEEDS = 64, OPS = 64 };
  uint64_t seed = vp_test_seed();
  vp_rng_key *keys = malloc(sizeof *keys * SEEDS * OPS);
  /* neighbouring seeds (and seeds differing only in the high word) and ops */
  for (int s = 0; s < SEEDS; s++)
    for (int o = 0; o < OPS; o++) {
      uint64_t sd =
          s < SEEDS / 2 ? seed + (uint64_t)s : seed ^ ((uint64_t)(s - SEEDS / 2 + 1) << 32);
      keys[s * OPS + o] = vp_rng_key_make(sd, (uint32_t)o);
    }
  /* deterministic */
  vp_rng_key again = vp_rng_key_make(seed, 5);
  assert_true(again.k0 == keys[5].k0 && again.k1 == keys[5].k1);
  qsort(keys, SEEDS * OPS, sizeof *keys, cmp_key);
  for (int i = 1; i < SEEDS * OPS; i++)
    if (cmp_key(&keys[i - 1], &keys[i]) == 0) fail_msg("two (seed, op) pairs share a key");
  /* and the streams differ: iteration, sample and element all count */
  vp_rng_key k = vp_rng_key_make(seed, 0);
  vp_u32x4 a = vp_rng_draw(k, 0, 0, 0), b = vp_rng_draw(k, 1, 0, 0);
  vp_u32x4 c = vp_rng_draw(k, 0, 1, 0), d = vp_rng_draw(k, 0, 0, 1ull << 32);
  assert_memory_not_equal(a.v, b.v, 16);
  assert_memory_not_equal(a.v, c.v, 16);
  assert_memory_not_equal(a.v, d.v, 16);
  free(keys);
}

/* Box-Muller against a double-precision evaluation of the same formula, then
 * moments of 2 * 10^6 values. */
static void test_normal(void **state) {
  (void)state;
  enum { PAIRS = 1000000 };
  vp_rng_key k = vp_rng_key_make(vp_test_seed(), 9);
  double s1 = 0, s2 = 0, s3 = 0, s4 = 0, sxy = 0;
  long tail = 0;
  for (uint64_t g = 0; g < PAIRS / 2; g++) {
    vp_u32x4 r = vp_rng_draw(k, 0, 0, g);
    for (int h = 0; h < 4; h += 2) {
      vp_f32x2 z = vp_normal2f(r.v[h], r.v[h + 1]);
      double rad = sqrt(-2.0 * log(vp_u01f(r.v[h]))), th = 2 * M_PI * vp_u01f(r.v[h + 1]);
      double ox = rad * cos(th), oy = rad * sin(th);
      /* float log/sin/cos: a few ulps, relative to the radius */
      if (fabs(z.x - ox) > 1e-5 * (1 + rad) || fabs(z.y - oy) > 1e-5 * (1 + rad))
        fail_msg("vp_normal2f(%08x, %08x) = (%g, %g), want (%g, %g)", r.v[h], r.v[h + 1], z.x, z.y,
                 ox, oy);
      if (!(fabsf(z.x) < 5.8f && fabsf(z.y) < 5.8f)) fail_msg("|z| >= 5.8");
      double v[2] = {z.x, z.y};
      for (int i = 0; i < 2; i++) {
        s1 += v[i];
        s2 += v[i] * v[i];
        s3 += v[i] * v[i] * v[i];
        s4 += v[i] * v[i] * v[i] * v[i];
        tail += fabs(v[i]) > 2.0;
      }
      sxy += v[0] * v[1];
    }
  }
  const double N = 2.0 * PAIRS;
  double mean = s1 / N, var = s2 / N - mean * mean, skew = s3 / N, kurt = s4 / N;
  double corr = sxy / PAIRS, ptail = tail / N;
  fprintf(stderr, "normal: mean %.5f var %.5f skew %.5f kurt %.4f corr %.5f P(|z|>2) %.5f\n", mean,
          var, skew, kurt, corr, ptail);
  /* 6-sigma bounds: sd(mean) = 1/sqrt(N) = 7.1e-4, sd(var) = sqrt(2/N) = 1e-3,
   * sd(m3) = sqrt(15/N) = 2.7e-3, sd(m4) = sqrt(96/N) = 6.9e-3,
   * sd(corr) = 1/sqrt(N/2) = 1e-3, sd(P) = sqrt(p(1-p)/N) = 1.5e-4 */
  if (fabs(mean) > 0.0043) fail_msg("mean %.5f, |mean| > 0.0043", mean);
  if (fabs(var - 1) > 0.006) fail_msg("variance %.5f, |var - 1| > 0.006", var);
  if (fabs(skew) > 0.017) fail_msg("third moment %.5f, |m3| > 0.017", skew);
  if (fabs(kurt - 3) > 0.042) fail_msg("fourth moment %.4f, |m4 - 3| > 0.042", kurt);
  if (fabs(corr) > 0.006) fail_msg("pair correlation %.5f, > 0.006", corr);
  if (fabs(ptail - 0.0455003) > 0.0009) fail_msg("P(|z| > 2) = %.5f, want 0.0455 +- 0.0009", ptail);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_known_answers),  cmocka_unit_test(test_draw_counter_layout),
      cmocka_unit_test(test_uniform_ranges), cmocka_unit_test(test_chi_square),
      cmocka_unit_test(test_keys_differ),    cmocka_unit_test(test_normal),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
