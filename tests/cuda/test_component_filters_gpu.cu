/* remove_small_objects and keep_largest_components on the GPU
 * (src/cuda/component_filters.cu) against their CPU bodies, bit for bit,
 * into poisoned device outputs; the CPU outputs in turn against an oracle
 * built here on the flood-fill labelling of tests/c/ccl_cases.h (sizes by
 * counting, ranks by comparing every pair of components), so a fault shared
 * by both bodies shows too.
 *
 * Inputs: random label maps (seeded, the seed printed) in batches of mixed
 * shapes and ranks ((H, W), (D, H, W), (1, D, H, W), extents of 1), mixed
 * dtypes in one batch, every connectivity, binary and multi-label
 * components, negative values, NaN and -0 in float maps, backgrounds that
 * are not zero or no value of the dtype, min_size / k of 0 or 1 up to more
 * than the component count, many equal sizes (ties), volumes with tens of
 * thousands of components (every key layout: one radix sort, two with a
 * 32-bit and with a 64-bit value key), int64 values that only differ past
 * 2^53. Exits 77 without a GPU. Compiled with -DCF_TEST_CPU_ONLY it checks
 * the CPU body against the oracle alone (for machines without a GPU). */
#include <cuda_runtime.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "core/convert.h"
#include "core/cuda_rt.h"
#include "core/status.h"
#include "testutil.h"
}
#include "../c/ccl_cases.h"
#include "gpu_testutil.h"
#include "ops/op.h"

typedef struct cf_params {
  int largest; /* keep_largest_components, else remove_small_objects */
  int64_t thr; /* k or min_size */
  int conn;    /* the argument: 0 = full */
  int multi;   /* independent / per_label */
  double bg;
} cf_params;

static const char *op_name(const cf_params *p) {
  return p->largest ? "keep_largest_components" : "remove_small_objects";
}

static void make_json(const cf_params *p, char *buf, size_t len) {
  snprintf(buf, len, "{\"%s\": %lld, \"connectivity\": %d, \"%s\": %s, \"background\": %.17g}",
           p->largest ? "k" : "min_size", (long long)p->thr, p->conn,
           p->largest ? "independent" : "per_label", p->multi ? "true" : "false", p->bg);
}

static int same_group(double a, double b) { return a == b || (isnan(a) && isnan(b)); }

/* The expected output of one sample (malloc'd bytes), from the flood-fill
 * oracle: components, their sizes by counting, and for keep_largest the
 * rank of each among the components of its group (its value, with
 * `independent`): those larger, or as large with an earlier first voxel. */
static void *oracle(const cf_params *p, const vp_tensor *t) {
  ccl_case c;
  memset(&c, 0, sizeof c);
  const int nd = vp_tensor_ndim(t);
  const int64_t *sh = vp_tensor_shape(t);
  c.shape[0] = nd == 2 ? 1 : sh[nd - 3];
  c.shape[1] = sh[nd - 2];
  c.shape[2] = sh[nd - 1];
  c.dtype = vp_tensor_dtype(t);
  c.data = vp_tensor_data(t);
  c.p.connectivity = p->conn ? p->conn : (nd == 2 ? 8 : 26);
  c.p.multi_label = p->multi;
  c.p.background = p->bg;
  const int64_t n = c.shape[0] * c.shape[1] * c.shape[2];
  const size_t es = vp_dtype_size(c.dtype);
  int32_t *lab = (int32_t *)malloc((size_t)(n + 1) * 4);
  const int64_t count = ccl_oracle(&c, lab);
  int64_t *size = (int64_t *)calloc((size_t)count + 1, 8);
  double *val = (double *)calloc((size_t)count + 1, 8);
  char *keep = (char *)calloc((size_t)count + 1, 1);
  for (int64_t v = n - 1; v >= 0; v--)
    if (lab[v]) {
      size[lab[v]]++;
      val[lab[v]] = vp_cvt_load(c.data, c.dtype, v); /* ends at the first voxel */
    }
  for (int64_t l = 1; l <= count; l++) {
    if (!p->largest) {
      keep[l] = size[l] >= p->thr;
      continue;
    }
    int64_t rank = 0;
    for (int64_t j = 1; j <= count; j++)
      if ((!p->multi || same_group(val[j], val[l])) &&
          (size[j] > size[l] || (size[j] == size[l] && j < l)))
        rank++;
    keep[l] = rank < p->thr;
  }
  char *out = (char *)malloc((size_t)n * es + 1);
  memcpy(out, c.data, (size_t)n * es);
  for (int64_t v = 0; v < n; v++)
    if (lab[v] && !keep[lab[v]]) vp_cvt_store(out, c.dtype, v, p->bg);
  free(lab), free(size), free(val), free(keep);
  return out;
}

/* The CPU body on host samples into host outputs. */
static void run_cpu(const char *name, int n, vp_tensor **in, const char *json, vp_tensor **out) {
  const vp_op_desc *op = vp_op_lookup(name);
  assert_non_null(op);
  vp_op_args *args = NULL;
  VP_ASSERT_OK(vp_op_args_parse(op, json, n, &args));
  vp_op_call c;
  memset(&c, 0, sizeof c);
  c.batch = n;
  c.in[0] = in;
  c.out[0] = out;
  c.args = args;
  for (int i = 0; i < n; i++) {
    vp_out_spec spec[VP_OP_MAX_IO];
    memset(spec, 0, sizeof spec);
    VP_ASSERT_OK(op->infer(&c, i, spec));
    VP_ASSERT_OK(
        vp_tensor_create(spec[0].dtype, spec[0].ndim, spec[0].shape, VP_MEM_HOST, 0, &out[i]));
  }
  VP_ASSERT_OK(op->run_cpu(&c));
  vp_op_args_free(args);
}

/* One batch: GPU against CPU bit for bit; CPU against the oracle unless
 * the values defeat the oracle's double comparison (with_oracle 0). */
static void check_batch(const cf_params *p, int n, vp_tensor **h, int with_oracle,
                        const char *what) {
  char json[256], msg[512];
  make_json(p, json, sizeof json);
  vp_tensor *cpu[16] = {0}, *d[16] = {0}, *gpu[16] = {0};
  assert_true(n <= 16);
  run_cpu(op_name(p), n, h, json, cpu);
  for (int i = 0; i < n; i++) {
    snprintf(msg, sizeof msg, "%s %s %s sample %d (%s)", what, op_name(p), json, i,
             vp_dtype_name(vp_tensor_dtype(h[i])));
    if (with_oracle) {
      void *want = oracle(p, h[i]);
      if (memcmp(want, vp_tensor_data(cpu[i]), vp_tensor_nbytes(cpu[i]))) {
        free(want);
        fail_msg("%s: the CPU body differs from the oracle", msg);
      }
      free(want);
    }
#ifndef CF_TEST_CPU_ONLY
    VP_ASSERT_OK(vp_tensor_copy_to(h[i], VP_MEM_DEVICE, 0, &d[i]));
#endif
  }
#ifdef CF_TEST_CPU_ONLY
  (void)gpu;
  release_all(cpu, n);
  return;
#endif
  run_poisoned(op_name(p), n, d, json, 0, gpu);
  for (int i = 0; i < n; i++) {
    snprintf(msg, sizeof msg, "%s %s %s sample %d (%s)", what, op_name(p), json, i,
             vp_dtype_name(vp_tensor_dtype(h[i])));
    compare(msg, cpu[i], gpu[i], 1);
  }
  release_all(cpu, n);
  release_all(d, n);
  release_all(gpu, n);
}

/* A random map: foreground with probability dens, values from a small set
 * in the dtype (negative ones for signed types; NaN and -0 now and then in
 * floats, when `specials`). */
static vp_tensor *random_map(vp_dtype t, int nd, const int64_t *sh, double dens, int specials) {
  vp_tensor *h = NULL;
  VP_ASSERT_OK(vp_tensor_create(t, nd, sh, VP_MEM_HOST, 0, &h));
  static const double uvals[4] = {1, 2, 3, 100};
  static const double svals[4] = {1, 2, -1, -3};
  static const double fvals[4] = {1, 2, -1, 0.5};
  const int is_float = t == VP_F16 || t == VP_F32 || t == VP_F64;
  const int is_signed = t == VP_I8 || t == VP_I16 || t == VP_I32 || t == VP_I64;
  const double *vals = is_float ? fvals : (is_signed ? svals : uvals);
  void *data = vp_tensor_data(h);
  for (int64_t e = 0; e < vp_tensor_numel(h); e++) {
    double v = 0;
    if (urand() < dens) v = vals[vp_test_rand(&g_rng) % 4];
    if (is_float && specials) {
      const double r = urand();
      if (r < 0.02)
        v = NAN;
      else if (r < 0.04)
        v = -0.0;
    }
    vp_cvt_store(data, t, e, v);
  }
  return h;
}

static const vp_dtype k_dtypes[] = {VP_U8,  VP_I8,  VP_U16, VP_I16, VP_U32,
                                    VP_I32, VP_I64, VP_F16, VP_F32, VP_F64};

/* Batches of 1 to 5 samples of random ranks and shapes (often extents of
 * 1), one dtype or mixed, every connectivity, both ops, both modes. */
static void test_random_batches(void **state) {
  (void)state;
  static const int conns3[4] = {0, 6, 18, 26};
  static const int conns2[3] = {0, 4, 8};
  static const int64_t thrs[6] = {0, 1, 2, 3, 7, 1000000};
  for (int rep = 0; rep < 120; rep++) {
    cf_params p;
    p.largest = rep % 2;
    p.multi = (rep / 2) % 2;
    const int flat = rep % 5 == 4; /* 2-D connectivities: every sample D = 1 */
    p.conn = flat ? conns2[(rep / 4) % 3] : conns3[(rep / 4) % 4];
    p.thr = thrs[vp_test_rand(&g_rng) % 6];
    if (p.largest && p.thr == 0) p.thr = 1; /* k >= 1 by the schema */
    const double r = urand();
    p.bg = r < 0.6 ? 0 : (r < 0.8 ? 1 : (r < 0.9 ? -5 : 1.5));
    const int n = 1 + (int)(vp_test_rand(&g_rng) % 5);
    const int mixed = rep % 3 == 0;
    const vp_dtype t0 = k_dtypes[vp_test_rand(&g_rng) % 10];
    const double dens = 0.1 + 0.6 * urand();
    vp_tensor *h[16] = {0};
    for (int i = 0; i < n; i++) {
      const vp_dtype t = mixed ? k_dtypes[vp_test_rand(&g_rng) % 10] : t0;
      int64_t sh[4];
      int nd = flat ? 2 + (int)(vp_test_rand(&g_rng) % 3) : 3 + (int)(vp_test_rand(&g_rng) % 2);
      for (int a = 0; a < nd; a++)
        sh[a] = vp_test_rand(&g_rng) % 5 == 0 ? 1 : 1 + (int64_t)(vp_test_rand(&g_rng) % 19);
      if (nd == 4) sh[0] = 1;              /* (1, D, H, W) */
      if (flat && nd >= 3) sh[nd - 3] = 1; /* D = 1 */
      h[i] = random_map(t, nd, sh, dens, 1);
    }
    char what[64];
    snprintf(what, sizeof what, "random batch %d", rep);
    check_batch(&p, n, h, 1, what);
    release_all(h, n);
  }
}

/* Volumes with many components, one per sample: every key layout of the
 * ranking (u8: value in the single key; i32 at 2^16 voxels: a second sort
 * on a 32-bit value; f32 and i64: a 64-bit value), against the CPU only
 * (the oracle's pairwise ranks would take minutes). */
static void test_large(void **state) {
  (void)state;
  static const vp_dtype types[4] = {VP_U8, VP_I32, VP_F32, VP_I64};
  const int64_t sh[2][3] = {{40, 48, 36}, {23, 71, 50}};
  for (int k = 0; k < 16; k++) {
    cf_params p;
    p.largest = k % 4 != 3;
    p.multi = (k / 4) % 2;
    p.conn = (k % 3) == 0 ? 6 : 26;
    p.thr = p.largest ? 1 + (k % 3) * 5 : 3;
    p.bg = 0;
    vp_tensor *h[2] = {0};
    for (int i = 0; i < 2; i++) h[i] = random_map(types[k % 4], 3, sh[i], 0.25 + 0.1 * i, 0);
    char what[64];
    snprintf(what, sizeof what, "large %d", k);
    check_batch(&p, 2, h, 0, what);
    release_all(h, 2);
  }
}

/* int64 values that differ only past 2^53: separate multi-label
 * components, one group of the CPU body's double values. */
static void test_int64_beyond_double(void **state) {
  (void)state;
  const int64_t sh[3] = {6, 9, 11};
  vp_tensor *h = NULL;
  VP_ASSERT_OK(vp_tensor_create(VP_I64, 3, sh, VP_MEM_HOST, 0, &h));
  int64_t *v = (int64_t *)vp_tensor_data(h);
  const int64_t big = (int64_t)1 << 60;
  for (int64_t e = 0; e < 6 * 9 * 11; e++) {
    const uint64_t r = vp_test_rand(&g_rng) % 4;
    v[e] = r == 0 ? 0 : big + (int64_t)r;
  }
  for (int64_t k = 1; k <= 3; k++) {
    cf_params p = {1, k, 6, 1, 0.0};
    check_batch(&p, 1, &h, 0, "int64 past 2^53");
  }
  vp_tensor_release(h);
}

int main(void) {
#ifndef CF_TEST_CPU_ONLY
  if (vp_cuda_device_count() == 0) {
    fprintf(stderr, "no CUDA device: skipped\n");
    return 77;
  }
#endif
  g_rng = vp_test_seed();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_random_batches),
      cmocka_unit_test(test_large),
      cmocka_unit_test(test_int64_beyond_double),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
