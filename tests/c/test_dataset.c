/* Datasets: case lists from dataset.json, globs and file lists; epoch
 * order, shards, padding, resume; loading and stacking; every error path. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/dataset.h"
#include "testutil.h"

/* ---- helpers ------------------------------------------------------------- */

static uint64_t rng_state;

static uint64_t rnd(uint64_t n) { return vp_test_rand(&rng_state) % n; }

static void mkdir_p(const char *path) {
  char buf[512];
  snprintf(buf, sizeof buf, "%s", path);
  for (char *p = buf + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    mkdir(buf, 0755);
    *p = '/';
  }
  mkdir(buf, 0755);
}

static const char *pathf(const char *fmt, ...) {
  static char bufs[16][512];
  static int k;
  char *b = bufs[k++ & 15];
  char rel[400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(rel, sizeof rel, fmt, ap);
  va_end(ap);
  snprintf(b, 512, "%s/%s", vp_test_tmpdir(), rel);
  return b;
}

static void write_text(const char *path, const char *text) {
  vp_test_write_file(path, text, strlen(text));
}

/* Expects failure with status s and a message containing each of the
 * given fragments (NULL-terminated). */
static void expect_error(vp_status got, vp_status want, ...) {
  if (got != want)
    fail_msg("expected %s, got %s: %s", vp_status_name(want), vp_status_name(got), vp_last_error());
  va_list ap;
  va_start(ap, want);
  for (const char *frag; (frag = va_arg(ap, const char *));)
    if (!strstr(vp_last_error(), frag))
      fail_msg("message \"%s\" lacks \"%s\"", vp_last_error(), frag);
  va_end(ap);
}

/* A dataset of S empty files listed in a file list (open reads no data). */
static const char *empty_cases_list(int64_t s) {
  static char list[512];
  const char *dir = pathf("empty%lld", (long long)s);
  snprintf(list, sizeof list, "%s/list.txt", dir);
  struct stat st;
  if (stat(list, &st) == 0) return list;
  mkdir_p(dir);
  FILE *f = fopen(list, "w");
  assert_non_null(f);
  for (int64_t i = 0; i < s; i++) {
    char name[64];
    snprintf(name, sizeof name, "c%04lld.npy", (long long)i);
    vp_test_write_file(pathf("empty%lld/%s", (long long)s, name), "", 0);
    fprintf(f, "%s\n", name);
  }
  fclose(f);
  return list;
}

static vp_dataset *open_empty(int64_t s, uint64_t seed, int shuffle, int shard, int n, int stick,
                              int pad, int bs) {
  vp_dataset_opts o;
  vp_dataset_opts_init(&o);
  o.file_list = empty_cases_list(s);
  o.seed = seed;
  o.shuffle = shuffle;
  o.shard_id = shard;
  o.num_shards = n;
  o.stick_to_shard = stick;
  o.pad_last_batch = pad;
  o.batch_size = bs;
  vp_dataset *d = NULL;
  VP_ASSERT_OK(vp_dataset_open(&o, &d));
  return d;
}

/* One epoch of d; checks epoch_end is set on the last case only. */
static int64_t read_epoch(vp_dataset *d, int64_t *out, int64_t cap) {
  int64_t epoch0, idx0;
  vp_dataset_position(d, &epoch0, &idx0);
  assert_int_equal(idx0, 0);
  int64_t n = vp_dataset_epoch_size(d);
  assert_true(n >= 1 && n <= cap);
  for (int64_t i = 0; i < n; i++) {
    int end = -1;
    VP_ASSERT_OK(vp_dataset_next(d, &out[i], &end));
    assert_int_equal(end, i == n - 1);
    assert_true(out[i] >= 0 && out[i] < vp_dataset_size(d));
  }
  int64_t e, idx;
  vp_dataset_position(d, &e, &idx);
  assert_int_equal(e, epoch0 + 1);
  assert_int_equal(idx, 0);
  return n;
}

/* ---- order and shards ------------------------------------------------------ */

#define EPOCHS 4

static void check_shards(int64_t s, int n, int shuffle, int stick, uint64_t seed) {
  /* The epoch orders as the single shard sees them. */
  int64_t *full = malloc(sizeof(int64_t) * (size_t)(s * EPOCHS));
  int64_t *buf = malloc(sizeof(int64_t) * (size_t)s);
  int64_t *count = malloc(sizeof(int64_t) * (size_t)s);
  vp_dataset *whole = open_empty(s, seed, shuffle, 0, 1, 1, 0, 1);
  assert_int_equal(vp_dataset_size(whole), s);
  for (int e = 0; e < EPOCHS; e++) {
    assert_int_equal(read_epoch(whole, full + e * s, s), s);
    memset(count, 0, sizeof(int64_t) * (size_t)s);
    for (int64_t i = 0; i < s; i++) count[full[e * s + i]]++;
    for (int64_t i = 0; i < s; i++) assert_int_equal(count[i], 1); /* a permutation */
    if (!shuffle)
      for (int64_t i = 0; i < s; i++) assert_int_equal(full[e * s + i], i);
  }
  vp_dataset_destroy(whole);

  if (n > s) {
    vp_dataset_opts o;
    vp_dataset_opts_init(&o);
    o.file_list = empty_cases_list(s);
    o.num_shards = n;
    vp_dataset *d = (vp_dataset *)1;
    expect_error(vp_dataset_open(&o, &d), VP_ERR_INVALID_ARG, "num_shards", NULL);
    assert_null(d);
  } else {
    for (int e = 0; e < EPOCHS; e++) {
      memset(count, 0, sizeof(int64_t) * (size_t)s);
      for (int k = 0; k < n; k++) {
        vp_dataset *d = open_empty(s, seed, shuffle, k, n, stick, 0, 1);
        if (e > 0) VP_ASSERT_OK(vp_dataset_seek(d, e, 0));
        int shard = stick ? k : (k + e) % n;
        int64_t lo = shard * s / n, hi = (shard + 1) * s / n;
        int64_t got = read_epoch(d, buf, s);
        assert_int_equal(got, hi - lo);
        for (int64_t i = 0; i < got; i++) {
          assert_int_equal(buf[i], full[e * s + lo + i]);
          count[buf[i]]++;
        }
        vp_dataset_destroy(d);
      }
      for (int64_t i = 0; i < s; i++) assert_int_equal(count[i], 1); /* disjoint, covering */
    }
  }
  free(full);
  free(buf);
  free(count);
}

static void test_shards_cover(void **state) {
  (void)state;
  const int64_t sizes[] = {1, 7, 10, 168};
  const int shards[] = {1, 2, 3, 8};
  uint64_t seed = vp_test_seed();
  for (int a = 0; a < 4; a++)
    for (int b = 0; b < 4; b++)
      for (int shuffle = 0; shuffle < 2; shuffle++)
        for (int stick = 0; stick < 2; stick++)
          check_shards(sizes[a], shards[b], shuffle, stick, seed + (uint64_t)a);
}

static void test_pad_last_batch(void **state) {
  (void)state;
  const int64_t sizes[] = {1, 7, 10, 168};
  const int shards[] = {1, 2, 3, 8};
  const int batches[] = {1, 3, 4, 16};
  int64_t buf[512];
  uint64_t seed = vp_test_seed();
  for (int a = 0; a < 4; a++)
    for (int b = 0; b < 4; b++)
      for (int c = 0; c < 4; c++) {
        int64_t s = sizes[a];
        int n = shards[b], bs = batches[c];
        if (n > s) continue;
        int64_t largest = (s + n - 1) / n;
        int64_t want = (largest + bs - 1) / bs * bs;
        for (int k = 0; k < n; k++) {
          for (int stick = 0; stick < 2; stick++) {
            vp_dataset *d = open_empty(s, seed, 1, k, n, stick, 1, bs);
            vp_dataset *raw = open_empty(s, seed, 1, k, n, stick, 0, 1);
            int64_t own[512];
            for (int e = 0; e < 3; e++) {
              assert_int_equal(vp_dataset_epoch_size(d), want);
              assert_int_equal(read_epoch(d, buf, 512), want);
              int64_t m = read_epoch(raw, own, 512);
              assert_true(m >= 1 && m <= largest);
              for (int64_t i = 0; i < want; i++) assert_int_equal(buf[i], own[i < m ? i : m - 1]);
            }
            vp_dataset_destroy(d);
            vp_dataset_destroy(raw);
          }
        }
      }
}

static int same_order(const int64_t *a, const int64_t *b, int64_t n) {
  return memcmp(a, b, sizeof(int64_t) * (size_t)n) == 0;
}

static void test_permutation_seeds(void **state) {
  (void)state;
  uint64_t seed = vp_test_seed();
  enum { S = 168 };
  int64_t ep[3][4][S];
  for (int v = 0; v < 3; v++) {
    /* v = 0, 1: the same seed twice; v = 2: another seed */
    vp_dataset *d = open_empty(S, seed + (v == 2), 1, 0, 1, 1, 0, 1);
    for (int e = 0; e < 4; e++) read_epoch(d, ep[v][e], S);
    vp_dataset_destroy(d);
  }
  for (int e = 0; e < 4; e++) {
    assert_true(same_order(ep[0][e], ep[1][e], S));
    assert_false(same_order(ep[0][e], ep[2][e], S));
    for (int f = 0; f < e; f++) assert_false(same_order(ep[0][e], ep[0][f], S));
  }
  /* 7 cases: ten epochs are not all alike (chance 5040^-9) */
  int64_t a[7], b[7];
  vp_dataset *d = open_empty(7, seed, 1, 0, 1, 1, 0, 1);
  read_epoch(d, a, 7);
  int differ = 0;
  for (int e = 1; e < 10; e++) {
    read_epoch(d, b, 7);
    differ |= !same_order(a, b, 7);
  }
  assert_true(differ);
  vp_dataset_destroy(d);
}

/* Fisher-Yates on Philox is uniform: all 24 orders of 4 cases equally
 * often, and for 10 cases every (case, position) pair equally often.
 * Chi-square thresholds at p = 1e-6. */
static void test_permutation_uniform(void **state) {
  (void)state;
  uint64_t seed = vp_test_seed();
  enum { E4 = 24000, E10 = 20000 };
  int64_t hist[24] = {0};
  int64_t o[10];
  for (int e = 0; e < E4; e++) {
    vp_dataset_permutation(seed, e, 4, o);
    int code = 0, used = 0; /* Lehmer code of the order */
    for (int i = 0; i < 4; i++) {
      int smaller = 0;
      for (int j = 0; j < (int)o[i]; j++) smaller += !(used >> j & 1);
      used |= 1 << o[i];
      code = code * (4 - i) + smaller;
    }
    hist[code]++;
  }
  double chi = 0;
  for (int i = 0; i < 24; i++) chi += pow(hist[i] - E4 / 24.0, 2) / (E4 / 24.0);
  print_message("chi2(23) of 4-case orders = %.1f\n", chi);
  assert_true(chi < 70.5);

  static int64_t cell[10][10];
  memset(cell, 0, sizeof cell);
  for (int e = 0; e < E10; e++) {
    vp_dataset_permutation(seed ^ 0x5555, e, 10, o);
    for (int i = 0; i < 10; i++) cell[o[i]][i]++;
  }
  chi = 0;
  for (int i = 0; i < 10; i++)
    for (int j = 0; j < 10; j++) chi += pow(cell[i][j] - E10 / 10.0, 2) / (E10 / 10.0);
  print_message("chi2(81) of case positions = %.1f\n", chi);
  assert_true(chi < 156.5);
}

static void test_position_seek(void **state) {
  (void)state;
  uint64_t seed = vp_test_seed();
  enum { TOTAL = 60 };
  for (int cfg = 0; cfg < 3; cfg++) {
    int pad = cfg == 1, stick = cfg != 2;
    vp_dataset *d = open_empty(10, seed, 1, 1, 3, stick, pad, 4);
    int64_t seq[TOTAL], ep[TOTAL], ix[TOTAL];
    int ends[TOTAL];
    for (int i = 0; i < TOTAL; i++) {
      vp_dataset_position(d, &ep[i], &ix[i]);
      VP_ASSERT_OK(vp_dataset_next(d, &seq[i], &ends[i]));
    }
    for (int trial = 0; trial < 20; trial++) {
      int at = (int)rnd(TOTAL);
      vp_dataset *r = open_empty(10, seed, 1, 1, 3, stick, pad, 4);
      VP_ASSERT_OK(vp_dataset_seek(r, ep[at], ix[at]));
      for (int i = at; i < TOTAL; i++) {
        int64_t c;
        int end;
        VP_ASSERT_OK(vp_dataset_next(r, &c, &end));
        assert_int_equal(c, seq[i]);
        assert_int_equal(end, ends[i]);
      }
      vp_dataset_destroy(r);
    }
    /* going back in the same object replays too */
    VP_ASSERT_OK(vp_dataset_seek(d, ep[5], ix[5]));
    int64_t c;
    VP_ASSERT_OK(vp_dataset_next(d, &c, NULL));
    assert_int_equal(c, seq[5]);
    expect_error(vp_dataset_seek(d, -1, 0), VP_ERR_INVALID_ARG, "epoch", NULL);
    expect_error(vp_dataset_seek(d, 0, -1), VP_ERR_INVALID_ARG, "index", NULL);
    int64_t n = pad ? 4 : 3; /* this shard's epoch 0 */
    expect_error(vp_dataset_seek(d, 0, n), VP_ERR_INVALID_ARG, "index", NULL);
    VP_ASSERT_OK(vp_dataset_seek(d, 0, n - 1));
    vp_dataset_destroy(d);
  }
}

/* ---- real files ---------------------------------------------------------------- */

enum { NCASE = 3 };

typedef struct case_data {
  int64_t shape[3];
  int16_t *img[2];
  uint8_t *lab;
} case_data;

static case_data cases[NCASE];
static const double spacing0[3] = {2.0, 0.5, 0.75};

static void save_array(const char *path, vp_dtype dt, int ndim, const int64_t *shape,
                       const void *data, const double *spacing) {
  vp_tensor *t = NULL;
  VP_ASSERT_OK(vp_tensor_create(dt, ndim, shape, VP_MEM_HOST, 0, &t));
  memcpy(vp_tensor_data(t), data, vp_tensor_nbytes(t));
  if (spacing) VP_ASSERT_OK(vp_tensor_set_spacing(t, 3, spacing));
  VP_ASSERT_OK(vp_save(path, t, NULL));
  vp_tensor_release(t);
}

/* ds/imagesTr/case_XXX_000{0,1}.nii.gz, ds/labelsTr/case_XXX.nii.gz,
 * ds/combined/case_XXX.npy ([2, D, H, W]) and ds/lab4/case_XXX.npy
 * ([1, D, H, W]), plus dataset.json and list.txt. */
static int setup_files(void **state) {
  (void)state;
  rng_state = vp_test_seed() ^ 0xda7a;
  mkdir_p(pathf("ds/imagesTr"));
  mkdir_p(pathf("ds/labelsTr"));
  mkdir_p(pathf("ds/combined"));
  mkdir_p(pathf("ds/lab4"));
  for (int c = 0; c < NCASE; c++) {
    case_data *k = &cases[c];
    for (int a = 0; a < 3; a++) k->shape[a] = 2 + (int64_t)rnd(5);
    int64_t n = k->shape[0] * k->shape[1] * k->shape[2];
    k->lab = malloc((size_t)n);
    int16_t *both = malloc(sizeof(int16_t) * (size_t)(2 * n));
    for (int m = 0; m < 2; m++) {
      k->img[m] = both + m * n;
      for (int64_t i = 0; i < n; i++) k->img[m][i] = (int16_t)(rnd(4001) - 2000);
      save_array(pathf("ds/imagesTr/case_%03d_%04d.nii.gz", c, m), VP_I16, 3, k->shape, k->img[m],
                 m == 0 ? spacing0 : NULL);
    }
    for (int64_t i = 0; i < n; i++) k->lab[i] = (uint8_t)rnd(4);
    save_array(pathf("ds/labelsTr/case_%03d.nii.gz", c), VP_U8, 3, k->shape, k->lab, NULL);
    int64_t s4[4] = {2, k->shape[0], k->shape[1], k->shape[2]};
    save_array(pathf("ds/combined/case_%03d.npy", c), VP_I16, 4, s4, both, NULL);
    s4[0] = 1;
    save_array(pathf("ds/lab4/case_%03d.npy", c), VP_U8, 4, s4, k->lab, NULL);
  }
  write_text(pathf("ds/dataset.json"),
             "{\"name\": \"test\", \"training\": ["
             "{\"image\": [\"./imagesTr/case_000_0000.nii.gz\", \"imagesTr/case_000_0001.nii.gz\"],"
             " \"label\": \"./labelsTr/case_000.nii.gz\"},"
             "{\"image\": [\"./imagesTr/case_001_0000.nii.gz\", \"imagesTr/case_001_0001.nii.gz\"],"
             " \"label\": \"./labelsTr/case_001.nii.gz\"},"
             "{\"image\": [\"./imagesTr/case_002_0000.nii.gz\", \"imagesTr/case_002_0001.nii.gz\"],"
             " \"label\": \"./labelsTr/case_002.nii.gz\"}],"
             " \"combined\": ["
             "{\"image\": \"combined/case_000.npy\", \"label\": \"lab4/case_000.npy\"},"
             "{\"image\": \"combined/case_001.npy\", \"label\": \"lab4/case_001.npy\"},"
             "{\"image\": \"combined/case_002.npy\", \"label\": \"lab4/case_002.npy\"}],"
             " \"test\": [\"imagesTr/case_000_0001.nii.gz\", \"imagesTr/case_002_0001.nii.gz\"]}");
  write_text(
      pathf("ds/list.txt"),
      "# modalities;... <tab> label\n"
      "\n"
      "imagesTr/case_000_0000.nii.gz;imagesTr/case_000_0001.nii.gz\tlabelsTr/case_000.nii.gz\n"
      "  # an indented comment\n"
      "imagesTr/case_001_0000.nii.gz ; imagesTr/case_001_0001.nii.gz | "
      "labelsTr/case_001.nii.gz\r\n"
      "./imagesTr/case_002_0000.nii.gz;imagesTr/case_002_0001.nii.gz\tlabelsTr/case_002.nii.gz");
  return 0;
}

static int teardown_files(void **state) {
  (void)state;
  for (int c = 0; c < NCASE; c++) {
    free(cases[c].img[0]);
    free(cases[c].lab);
  }
  return 0;
}

static vp_status open_src(int src, vp_dataset **d) {
  vp_dataset_opts o;
  vp_dataset_opts_init(&o);
  if (src == 0) o.dataset_json = pathf("ds/dataset.json");
  if (src == 1) o.file_list = pathf("ds/list.txt");
  if (src == 2) {
    o.root = pathf("ds");
    o.image_glob = "imagesTr/*_0000.nii.gz; imagesTr/*_0001.nii.gz";
    o.label_glob = "labelsTr/*.nii.gz";
  }
  return vp_dataset_open(&o, d);
}

static void test_sources_agree(void **state) {
  (void)state;
  vp_dataset *d[3];
  for (int s = 0; s < 3; s++) {
    VP_ASSERT_OK(open_src(s, &d[s]));
    assert_int_equal(vp_dataset_size(d[s]), NCASE);
    assert_int_equal(vp_dataset_num_modalities(d[s]), 2);
    for (int c = 0; c < NCASE; c++) {
      for (int m = 0; m < 2; m++)
        assert_string_equal(vp_dataset_image_path(d[s], c, m),
                            pathf("ds/imagesTr/case_%03d_%04d.nii.gz", c, m));
      assert_string_equal(vp_dataset_label_path(d[s], c), pathf("ds/labelsTr/case_%03d.nii.gz", c));
    }
    assert_null(vp_dataset_image_path(d[s], NCASE, 0));
    assert_null(vp_dataset_image_path(d[s], 0, 2));
    assert_null(vp_dataset_image_path(d[s], -1, 0));
    assert_null(vp_dataset_label_path(d[s], NCASE));
    vp_dataset_destroy(d[s]);
  }
  /* a split of bare strings: one modality, no labels */
  vp_dataset_opts o;
  vp_dataset_opts_init(&o);
  o.dataset_json = pathf("ds/dataset.json");
  o.split = "test";
  vp_dataset *t = NULL;
  VP_ASSERT_OK(vp_dataset_open(&o, &t));
  assert_int_equal(vp_dataset_size(t), 2);
  assert_int_equal(vp_dataset_num_modalities(t), 1);
  assert_string_equal(vp_dataset_image_path(t, 1, 0), pathf("ds/imagesTr/case_002_0001.nii.gz"));
  assert_null(vp_dataset_label_path(t, 0));
  vp_tensor *img = NULL, *lab = (vp_tensor *)1;
  VP_ASSERT_OK(vp_dataset_load(t, 1, NULL, &img, &lab));
  assert_null(lab);
  assert_int_equal(vp_tensor_ndim(img), 4); /* a 3-D image gets C = 1 */
  const int64_t *sh = vp_tensor_shape(img);
  assert_int_equal(sh[0], 1);
  assert_memory_equal(sh + 1, cases[2].shape, sizeof cases[2].shape);
  assert_memory_equal(vp_tensor_data(img), cases[2].img[1], vp_tensor_nbytes(img));
  vp_tensor_release(img);
  vp_dataset_destroy(t);
}

/* The image equals the two modalities of the in-memory case, stacked (in
 * the region roi_start/roi_shape when roi), and the label its labels. */
static void check_case(const vp_tensor *img, const vp_tensor *lab, int c, const int64_t *r0,
                       const int64_t *rs) {
  const case_data *k = &cases[c];
  int64_t full0[3] = {0, 0, 0};
  if (!r0) {
    r0 = full0;
    rs = k->shape;
  }
  assert_int_equal(vp_tensor_dtype(img), VP_I16);
  assert_int_equal(vp_tensor_ndim(img), 4);
  assert_int_equal(vp_tensor_shape(img)[0], 2);
  assert_memory_equal(vp_tensor_shape(img) + 1, rs, 3 * sizeof(int64_t));
  assert_int_equal(vp_tensor_dtype(lab), VP_U8);
  assert_int_equal(vp_tensor_ndim(lab), 3);
  assert_memory_equal(vp_tensor_shape(lab), rs, 3 * sizeof(int64_t));
  const int16_t *a = vp_tensor_data(img);
  const uint8_t *l = vp_tensor_data(lab);
  int64_t i = 0;
  for (int m = 0; m < 2; m++)
    for (int64_t z = 0; z < rs[0]; z++)
      for (int64_t y = 0; y < rs[1]; y++)
        for (int64_t x = 0; x < rs[2]; x++, i++) {
          int64_t src = ((z + r0[0]) * k->shape[1] + y + r0[1]) * k->shape[2] + x + r0[2];
          if (a[i] != k->img[m][src])
            fail_msg("case %d image[%d,%lld,%lld,%lld]", c, m, (long long)z, (long long)y,
                     (long long)x);
          if (m == 0 && l[i] != k->lab[src]) fail_msg("case %d label differs", c);
        }
}

static void test_load_stacked(void **state) {
  (void)state;
  for (int s = 0; s < 3; s++) {
    vp_dataset *d = NULL;
    VP_ASSERT_OK(open_src(s, &d));
    for (int c = 0; c < NCASE; c++) {
      vp_tensor *img = NULL, *lab = NULL;
      VP_ASSERT_OK(vp_dataset_load(d, c, NULL, &img, &lab));
      check_case(img, lab, c, NULL, NULL);
      /* spacing and affine of the first modality */
      vp_tensor *m0 = NULL;
      VP_ASSERT_OK(vp_load(vp_dataset_image_path(d, c, 0), NULL, &m0));
      double sp[3], a0[16], a1[16];
      vp_tensor_spacing(img, sp);
      for (int i = 0; i < 3; i++) assert_true(fabs(sp[i] - spacing0[i]) < 1e-6);
      vp_tensor_affine(img, a0);
      vp_tensor_affine(m0, a1);
      assert_memory_equal(a0, a1, sizeof a0);
      vp_tensor_release(m0);
      /* without a label out-pointer, only the image is read */
      vp_tensor *img2 = NULL;
      VP_ASSERT_OK(vp_dataset_load(d, c, NULL, &img2, NULL));
      assert_memory_equal(vp_tensor_data(img2), vp_tensor_data(img), vp_tensor_nbytes(img));
      vp_tensor_release(img2);
      vp_tensor_release(img);
      vp_tensor_release(lab);
    }
    vp_dataset_destroy(d);
  }
  /* one 4-D file per case and [1, D, H, W] labels give the same arrays */
  vp_dataset_opts o;
  vp_dataset_opts_init(&o);
  o.dataset_json = pathf("ds/dataset.json");
  o.split = "combined";
  vp_dataset *d = NULL;
  VP_ASSERT_OK(vp_dataset_open(&o, &d));
  assert_int_equal(vp_dataset_num_modalities(d), 1);
  for (int c = 0; c < NCASE; c++) {
    vp_tensor *img = NULL, *lab = NULL;
    VP_ASSERT_OK(vp_dataset_load(d, c, NULL, &img, &lab));
    check_case(img, lab, c, NULL, NULL);
    vp_tensor_release(img);
    vp_tensor_release(lab);
  }
  vp_dataset_destroy(d);
}

static void test_load_roi(void **state) {
  (void)state;
  for (int s = 0; s < 3; s++) {
    vp_dataset *d = NULL;
    if (s < 2) {
      VP_ASSERT_OK(open_src(s, &d));
    } else {
      vp_dataset_opts o;
      vp_dataset_opts_init(&o);
      o.dataset_json = pathf("ds/dataset.json");
      o.split = "combined";
      VP_ASSERT_OK(vp_dataset_open(&o, &d));
    }
    for (int trial = 0; trial < 6; trial++) {
      int c = (int)rnd(NCASE);
      vp_load_opts lo;
      vp_load_opts_init(&lo);
      lo.roi_ndim = 3;
      for (int a = 0; a < 3; a++) {
        lo.roi_start[a] = (int64_t)rnd((uint64_t)cases[c].shape[a]);
        lo.roi_shape[a] = 1 + (int64_t)rnd((uint64_t)(cases[c].shape[a] - lo.roi_start[a]));
      }
      vp_tensor *img = NULL, *lab = NULL;
      VP_ASSERT_OK(vp_dataset_load(d, c, &lo, &img, &lab));
      check_case(img, lab, c, lo.roi_start, lo.roi_shape);
      vp_tensor_release(img);
      vp_tensor_release(lab);
    }
    /* padding: the label's is background whatever the image's fill */
    vp_load_opts lo;
    vp_load_opts_init(&lo);
    lo.roi_ndim = 3;
    lo.oob = VP_OOB_PAD;
    lo.fill = 7;
    lo.roi_start[0] = -1;
    for (int a = 0; a < 3; a++) lo.roi_shape[a] = 1;
    vp_tensor *img = NULL, *lab = NULL;
    VP_ASSERT_OK(vp_dataset_load(d, 0, &lo, &img, &lab));
    assert_int_equal(((int16_t *)vp_tensor_data(img))[0], 7);
    assert_int_equal(((uint8_t *)vp_tensor_data(lab))[0], 0);
    vp_tensor_release(img);
    vp_tensor_release(lab);
    lo.roi_ndim = 2;
    img = lab = (vp_tensor *)1;
    expect_error(vp_dataset_load(d, 0, &lo, &img, &lab), VP_ERR_INVALID_ARG, "roi_ndim", NULL);
    assert_null(img);
    assert_null(lab);
    vp_dataset_destroy(d);
  }
}

/* vp_synth_dataset's dataset.json reads back as the cases it wrote. */
static void test_synth_dataset(void **state) {
  (void)state;
  for (int kind = 0; kind < 2; kind++) {
    vp_synth_opts so;
    vp_synth_opts_init(&so);
    so.kind = kind ? VP_SYNTH_KITS : VP_SYNTH_BRATS;
    so.seed = vp_test_seed();
    so.num_cases = 2;
    so.shape[0] = 8;
    so.shape[1] = 9;
    so.shape[2] = 10;
    so.threads = 1;
    const char *dir = pathf("synth%d", kind);
    VP_ASSERT_OK(vp_synth_dataset(&so, dir, NULL, NULL));
    vp_dataset_opts o;
    vp_dataset_opts_init(&o);
    o.dataset_json = pathf("synth%d/dataset.json", kind);
    vp_dataset *d = NULL;
    VP_ASSERT_OK(vp_dataset_open(&o, &d));
    assert_int_equal(vp_dataset_size(d), 2);
    for (int c = 0; c < 2; c++) {
      vp_tensor *img = NULL, *lab = NULL, *wimg = NULL, *wlab = NULL;
      VP_ASSERT_OK(vp_dataset_load(d, c, NULL, &img, &lab));
      VP_ASSERT_OK(vp_synth_case(&so, c, &wimg, &wlab));
      assert_int_equal(vp_tensor_ndim(img), 4);
      assert_int_equal(vp_tensor_dtype(img), vp_tensor_dtype(wimg));
      assert_memory_equal(vp_tensor_shape(img), vp_tensor_shape(wimg), 4 * sizeof(int64_t));
      assert_memory_equal(vp_tensor_data(img), vp_tensor_data(wimg), vp_tensor_nbytes(img));
      assert_int_equal(vp_tensor_ndim(lab), 3);
      assert_memory_equal(vp_tensor_shape(lab), vp_tensor_shape(wlab), 3 * sizeof(int64_t));
      assert_memory_equal(vp_tensor_data(lab), vp_tensor_data(wlab), vp_tensor_nbytes(lab));
      vp_tensor_release(img);
      vp_tensor_release(lab);
      vp_tensor_release(wimg);
      vp_tensor_release(wlab);
    }
    vp_dataset_destroy(d);
  }
}

/* ---- errors ---------------------------------------------------------------------- */

static vp_status open_json(const char *name, const char *text, const char *split) {
  const char *p = pathf("ds/%s", name);
  write_text(p, text);
  vp_dataset_opts o;
  vp_dataset_opts_init(&o);
  o.dataset_json = p;
  o.split = split;
  vp_dataset *d = (vp_dataset *)1;
  vp_status st = vp_dataset_open(&o, &d);
  if (st != VP_OK) assert_null(d);
  vp_dataset_destroy(st == VP_OK ? d : NULL);
  return st;
}

static vp_status open_list(const char *name, const char *text) {
  const char *p = pathf("ds/%s", name);
  write_text(p, text);
  vp_dataset_opts o;
  vp_dataset_opts_init(&o);
  o.file_list = p;
  vp_dataset *d = (vp_dataset *)1;
  vp_status st = vp_dataset_open(&o, &d);
  if (st != VP_OK) assert_null(d);
  vp_dataset_destroy(st == VP_OK ? d : NULL);
  return st;
}

static vp_status open_glob(const char *image_glob, const char *label_glob) {
  vp_dataset_opts o;
  vp_dataset_opts_init(&o);
  o.root = pathf("ds");
  o.image_glob = image_glob;
  o.label_glob = label_glob;
  vp_dataset *d = (vp_dataset *)1;
  vp_status st = vp_dataset_open(&o, &d);
  if (st != VP_OK) assert_null(d);
  vp_dataset_destroy(st == VP_OK ? d : NULL);
  return st;
}

#define IMG(c, m) "\"imagesTr/case_00" #c "_000" #m ".nii.gz\""
#define LAB(c) "\"labelsTr/case_00" #c ".nii.gz\""

static void test_json_errors(void **state) {
  (void)state;
  expect_error(open_json("a.json",
                         "{\"training\": [{\"image\": " IMG(0, 0) "}, {\"image\": "
                                                                  "\"imagesTr/nothere.nii.gz\"}]}",
                         NULL),
               VP_ERR_IO, "a.json: training[1]", "nothere.nii.gz", NULL);
  expect_error(open_json("b.json",
                         "{\"training\": [{\"image\": " IMG(0, 0) ", \"label\": "
                                                                  "\"labelsTr/gone.nii.gz\"}]}",
                         NULL),
               VP_ERR_IO, "b.json: training[0], label", "gone.nii.gz", NULL);
  expect_error(open_json("c.json", "{\"training\": [{\"image\": \"imagesTr\"}]}", NULL), VP_ERR_IO,
               "c.json: training[0]", "not a regular file", NULL);
  expect_error(open_json("d.json", "{\"training\": [", NULL), VP_ERR_FORMAT, "d.json", NULL);
  expect_error(open_json("e.json", "[1, 2]", NULL), VP_ERR_FORMAT, "e.json", "object", NULL);
  expect_error(open_json("f.json", "{\"validation\": []}", NULL), VP_ERR_FORMAT, "f.json",
               "\"training\"", NULL);
  expect_error(open_json("g.json", "{\"training\": {}}", NULL), VP_ERR_FORMAT, "g.json",
               "not a list", NULL);
  expect_error(open_json("h.json", "{\"training\": []}", NULL), VP_ERR_FORMAT, "h.json", "no case",
               NULL);
  expect_error(open_json("i.json", "{\"training\": [" IMG(0, 0) ", 3]}", NULL), VP_ERR_FORMAT,
               "i.json: training[1]", NULL);
  expect_error(open_json("j.json", "{\"training\": [{\"label\": " LAB(0) "}]}", NULL),
               VP_ERR_FORMAT, "j.json: training[0]", "image", NULL);
  expect_error(open_json("k.json", "{\"training\": [{\"image\": []}]}", NULL), VP_ERR_FORMAT,
               "k.json: training[0]", "empty", NULL);
  expect_error(open_json("l.json", "{\"training\": [{\"image\": [" IMG(0, 0) ", 5]}]}", NULL),
               VP_ERR_FORMAT, "l.json: training[0]", "\"image\"[1]", NULL);
  expect_error(
      open_json("m.json", "{\"training\": [{\"image\": " IMG(0, 0) ", \"label\": 2}]}", NULL),
      VP_ERR_FORMAT, "m.json: training[0]", "label", NULL);
  expect_error(open_json("n.json",
                         "{\"training\": [{\"image\": [" IMG(0, 0) ", " IMG(
                             0, 1) "]}, {\"image\": " IMG(1, 0) "}]}",
                         NULL),
               VP_ERR_FORMAT, "n.json: training[1]", "1 image files", "training[0] has 2", NULL);
  expect_error(open_json("o.json",
                         "{\"training\": [{\"image\": " IMG(
                             0, 0) ", \"label\": " LAB(0) "}, {\"image\": " IMG(1, 0) "}]}",
                         NULL),
               VP_ERR_FORMAT, "o.json: training[1]", "label", NULL);
  expect_error(open_json("p.json", "{\"training\": [" IMG(0, 0) "]}", "validation"), VP_ERR_FORMAT,
               "p.json", "\"validation\"", NULL);
  expect_error(open_json("q.json", "{\"training\": [], \"training\": []}", NULL), VP_ERR_FORMAT,
               "q.json", NULL);
  vp_dataset_opts o;
  vp_dataset_opts_init(&o);
  o.dataset_json = pathf("ds/none.json");
  vp_dataset *d = (vp_dataset *)1;
  expect_error(vp_dataset_open(&o, &d), VP_ERR_IO, "none.json", NULL);
  assert_null(d);
  /* an accepted one, to show the helpers can succeed */
  VP_ASSERT_OK(open_json("ok.json", "{\"training\": [" IMG(0, 0) "]}", NULL));
}

static void test_list_and_glob_errors(void **state) {
  (void)state;
  expect_error(open_list("l1.txt", "# c\nimagesTr/case_000_0000.nii.gz\n\nimagesTr/none.npy\n"),
               VP_ERR_IO, "l1.txt:4", "none.npy", NULL);
  expect_error(open_list("l2.txt", "imagesTr/case_000_0000.nii.gz\tlabelsTr/none.nii.gz\n"),
               VP_ERR_IO, "l2.txt:1", "label", "none.nii.gz", NULL);
  /* trailing blanks, a separator included, are ignored: no label */
  VP_ASSERT_OK(open_list("l3.txt", "imagesTr/case_000_0000.nii.gz\t \n"));
  expect_error(open_list("l4.txt", "imagesTr/case_000_0000.nii.gz;;x\n"), VP_ERR_FORMAT, "l4.txt:1",
               "empty", NULL);
  expect_error(open_list("l5.txt", "# nothing\n\n"), VP_ERR_FORMAT, "l5.txt", "no case", NULL);
  expect_error(open_list("l6.txt",
                         "imagesTr/case_000_0000.nii.gz\n"
                         "imagesTr/case_001_0000.nii.gz;imagesTr/case_001_0001.nii.gz\n"),
               VP_ERR_FORMAT, "l6.txt:2", "l6.txt:1", NULL);
  expect_error(open_list("l8.txt",
                         "imagesTr/case_000_0000.nii.gz\n"
                         "imagesTr/case_001_0000.nii.gz | labelsTr/case_001.nii.gz\n"),
               VP_ERR_FORMAT, "l8.txt:2", "label", NULL);
  VP_ASSERT_OK(open_list("ok.txt", "imagesTr/case_000_0000.nii.gz | labelsTr/case_000.nii.gz\n"));
  vp_dataset_opts o;
  vp_dataset_opts_init(&o);
  o.file_list = pathf("ds/none.txt");
  vp_dataset *d = (vp_dataset *)1;
  expect_error(vp_dataset_open(&o, &d), VP_ERR_IO, "none.txt", NULL);
  assert_null(d);

  /* absolute paths are kept as they are */
  char text[600];
  snprintf(text, sizeof text, "%s\n", pathf("ds/imagesTr/case_001_0000.nii.gz"));
  write_text(pathf("ds/abs.txt"), text);
  vp_dataset_opts_init(&o);
  o.file_list = pathf("ds/abs.txt");
  VP_ASSERT_OK(vp_dataset_open(&o, &d));
  assert_string_equal(vp_dataset_image_path(d, 0, 0), pathf("ds/imagesTr/case_001_0000.nii.gz"));
  vp_dataset_destroy(d);
  /* a root with glob metacharacters in its name is taken literally */
  mkdir_p(pathf("odd[1]*/sub"));
  mkdir_p(pathf("odd1x/sub"));
  vp_test_write_file(pathf("odd[1]*/sub/a.npy"), "", 0);
  vp_test_write_file(pathf("odd1x/sub/b.npy"), "", 0);
  vp_dataset_opts_init(&o);
  o.root = pathf("odd[1]*");
  o.image_glob = "sub/*.npy";
  VP_ASSERT_OK(vp_dataset_open(&o, &d));
  assert_int_equal(vp_dataset_size(d), 1);
  assert_string_equal(vp_dataset_image_path(d, 0, 0), pathf("odd[1]*/sub/a.npy"));
  vp_dataset_destroy(d);

  expect_error(open_glob("imagesTr/*.nothing", NULL), VP_ERR_IO, "image_glob", "*.nothing", NULL);
  expect_error(open_glob("imagesTr/*_0000.nii.gz;imagesTr/case_00[01]_0001.nii.gz", NULL),
               VP_ERR_FORMAT, "case_00[01]_0001.nii.gz matches 2", "matches 3", NULL);
  expect_error(open_glob("imagesTr/*_0000.nii.gz", "labelsTr/case_00[01].nii.gz"), VP_ERR_FORMAT,
               "label_glob", NULL);
  expect_error(open_glob("*", NULL), VP_ERR_IO, "not a regular file", NULL); /* folders */
  expect_error(open_glob(" ; ", NULL), VP_ERR_INVALID_ARG, "image_glob", NULL);
  VP_ASSERT_OK(open_glob("imagesTr/*_0001.nii.gz", NULL));
}

static void test_option_errors(void **state) {
  (void)state;
  vp_dataset *d = (vp_dataset *)1;
  expect_error(vp_dataset_open(NULL, &d), VP_ERR_INVALID_ARG, "opts", NULL);
  assert_null(d);
  vp_dataset_opts o;
  vp_dataset_opts_init(&o);
  expect_error(vp_dataset_open(&o, &d), VP_ERR_INVALID_ARG, "dataset_json", NULL);
  o.dataset_json = pathf("ds/dataset.json");
  o.file_list = pathf("ds/list.txt");
  expect_error(vp_dataset_open(&o, &d), VP_ERR_INVALID_ARG, "exactly one", NULL);
  o.file_list = NULL;
  o.num_shards = 0;
  expect_error(vp_dataset_open(&o, &d), VP_ERR_INVALID_ARG, "num_shards", NULL);
  o.num_shards = 3;
  o.shard_id = 3;
  expect_error(vp_dataset_open(&o, &d), VP_ERR_INVALID_ARG, "shard_id", NULL);
  o.shard_id = -1;
  expect_error(vp_dataset_open(&o, &d), VP_ERR_INVALID_ARG, "shard_id", NULL);
  o.shard_id = 0;
  o.pad_last_batch = 1;
  o.batch_size = 0;
  expect_error(vp_dataset_open(&o, &d), VP_ERR_INVALID_ARG, "batch_size", NULL);
  o.batch_size = 2;
  o.num_shards = 4; /* 3 cases */
  expect_error(vp_dataset_open(&o, &d), VP_ERR_INVALID_ARG, "num_shards = 4", "dataset.json", NULL);
  assert_null(d);
  o.num_shards = 3;
  VP_ASSERT_OK(vp_dataset_open(&o, &d));
  assert_int_equal(vp_dataset_epoch_size(d), 2);
  vp_dataset_destroy(d);

  vp_dataset_opts_init(&o);
  o.file_list = pathf("ds/list.txt");
  o.split = "training";
  expect_error(vp_dataset_open(&o, &d), VP_ERR_INVALID_ARG, "split", NULL);
  vp_dataset_opts_init(&o);
  o.file_list = pathf("ds/list.txt");
  o.root = pathf("ds");
  expect_error(vp_dataset_open(&o, &d), VP_ERR_INVALID_ARG, "root", NULL);
  assert_null(d);

  int64_t c = 5;
  int end = 5;
  expect_error(vp_dataset_next(NULL, &c, &end), VP_ERR_INVALID_ARG, "next", NULL);
  assert_int_equal(c, -1);
  expect_error(vp_dataset_seek(NULL, 0, 0), VP_ERR_INVALID_ARG, "seek", NULL);
  vp_dataset_destroy(NULL);
  assert_int_equal(vp_dataset_size(NULL), 0);
}

static void test_load_errors(void **state) {
  (void)state;
  /* mismatched modality shapes, dtypes; label shape; 2-D image; 2-channel
   * modality; a corrupt file */
  int64_t s1[3] = {2, 3, 4}, s2[3] = {2, 3, 5}, s2d[2] = {3, 4}, s4[4] = {2, 2, 3, 4};
  static int16_t buf[256];
  save_array(pathf("ds/e_a.npy"), VP_I16, 3, s1, buf, NULL);
  save_array(pathf("ds/e_b.npy"), VP_I16, 3, s2, buf, NULL);
  save_array(pathf("ds/e_f.npy"), VP_F32, 3, s1, buf, NULL);
  save_array(pathf("ds/e_2d.npy"), VP_I16, 2, s2d, buf, NULL);
  save_array(pathf("ds/e_4d.npy"), VP_I16, 4, s4, buf, NULL);
  write_text(pathf("ds/e_bad.npy"), "\x93NUMPY garbage");
  struct {
    const char *line, *frags[3];
  } bad[] = {
      {"e_a.npy;e_b.npy", {"e_b.npy", "[2, 3, 5]", "e_a.npy"}},
      {"e_a.npy;e_f.npy", {"e_f.npy", "float32", "int16"}},
      {"e_a.npy\te_b.npy", {"label", "e_b.npy", "[2, 3, 4]"}},
      {"e_2d.npy", {"e_2d.npy", "[3, 4]", NULL}},
      {"e_a.npy;e_4d.npy", {"e_4d.npy", "[2, 2, 3, 4]", NULL}},
      {"e_4d.npy\te_4d.npy", {"label", "e_4d.npy", NULL}},
      {"e_a.npy;e_bad.npy", {"case 0", "e_bad.npy", NULL}},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char text[128];
    snprintf(text, sizeof text, "%s\n", bad[i].line);
    write_text(pathf("ds/e_list.txt"), text);
    vp_dataset_opts o;
    vp_dataset_opts_init(&o);
    o.file_list = pathf("ds/e_list.txt");
    vp_dataset *d = NULL;
    VP_ASSERT_OK(vp_dataset_open(&o, &d));
    vp_tensor *img = (vp_tensor *)1, *lab = (vp_tensor *)1;
    vp_status st = vp_dataset_load(d, 0, NULL, &img, &lab);
    if (st == VP_OK) fail_msg("%s: loaded", bad[i].line);
    for (int f = 0; f < 3 && bad[i].frags[f]; f++)
      if (!strstr(vp_last_error(), bad[i].frags[f]))
        fail_msg("%s: message \"%s\" lacks \"%s\"", bad[i].line, vp_last_error(), bad[i].frags[f]);
    assert_null(img);
    assert_null(lab);
    expect_error(vp_dataset_load(d, 1, NULL, &img, &lab), VP_ERR_INVALID_ARG, "case 1", NULL);
    expect_error(vp_dataset_load(d, 0, NULL, NULL, &lab), VP_ERR_INVALID_ARG, "load", NULL);
    vp_dataset_destroy(d);
  }
}

int main(void) {
  rng_state = vp_test_seed();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_shards_cover),         cmocka_unit_test(test_pad_last_batch),
      cmocka_unit_test(test_permutation_seeds),    cmocka_unit_test(test_permutation_uniform),
      cmocka_unit_test(test_position_seek),        cmocka_unit_test(test_sources_agree),
      cmocka_unit_test(test_load_stacked),         cmocka_unit_test(test_load_roi),
      cmocka_unit_test(test_synth_dataset),        cmocka_unit_test(test_json_errors),
      cmocka_unit_test(test_list_and_glob_errors), cmocka_unit_test(test_option_errors),
      cmocka_unit_test(test_load_errors),
  };
  return cmocka_run_group_tests(tests, setup_files, teardown_files);
}
