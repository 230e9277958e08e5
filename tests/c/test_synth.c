/* synthetic BraTS / KiTS19 cases: determinism, shapes, labels, blobs,
 * intensity statistics, and the dataset writer */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static uint64_t g_seed;

static int setup_seed(void **state) {
  (void)state;
  g_seed = vp_test_seed();
  return 0;
}

static void make(vp_synth_kind kind, uint64_t seed, int idx, int64_t d, int64_t h, int64_t w,
                 double scale, int threads, vp_tensor **img, vp_tensor **lab) {
  vp_synth_opts o;
  vp_synth_opts_init(&o);
  o.kind = kind;
  o.seed = seed;
  o.shape[0] = d, o.shape[1] = h, o.shape[2] = w;
  o.scale = scale;
  o.threads = threads;
  VP_ASSERT_OK(vp_synth_case(&o, idx, img, lab));
}

static int same_bytes(const vp_tensor *a, const vp_tensor *b) {
  return vp_tensor_nbytes(a) == vp_tensor_nbytes(b) &&
         memcmp(vp_tensor_data(a), vp_tensor_data(b), vp_tensor_nbytes(a)) == 0;
}

static void check_determinism(vp_synth_kind kind, int64_t d, int64_t h, int64_t w, double scale) {
  vp_tensor *i1, *l1, *i2, *l2, *i3, *l3, *i4, *l4;
  make(kind, g_seed, 3, d, h, w, scale, 1, &i1, &l1);
  make(kind, g_seed, 3, d, h, w, scale, 2, &i2, &l2);
  assert_true(same_bytes(i1, i2));
  assert_true(same_bytes(l1, l2));
  make(kind, g_seed + 1, 3, d, h, w, scale, 2, &i3, &l3);
  make(kind, g_seed, 4, d, h, w, scale, 2, &i4, &l4);
  /* another seed or another case index gives another case */
  if (vp_tensor_nbytes(i3) == vp_tensor_nbytes(i1)) assert_false(same_bytes(i1, i3));
  if (vp_tensor_nbytes(i4) == vp_tensor_nbytes(i1)) assert_false(same_bytes(i1, i4));
  vp_tensor *ts[] = {i1, l1, i2, l2, i3, l3, i4, l4};
  for (int k = 0; k < 8; k++) vp_tensor_release(ts[k]);
}

static void test_determinism_brats(void **state) {
  (void)state;
  check_determinism(VP_SYNTH_BRATS, 40, 64, 56, 0);
}

static void test_determinism_kits(void **state) {
  (void)state;
  check_determinism(VP_SYNTH_KITS, 0, 0, 0, 0.12);
}

/* 6-connected components of nonzero labels, by BFS (the test's oracle). */
static int count_components(const uint8_t *lab, const int64_t sh[3], int64_t *sizes_out,
                            int max_sizes) {
  int64_t n = sh[0] * sh[1] * sh[2];
  uint8_t *seen = calloc((size_t)n, 1);
  int64_t *queue = malloc((size_t)n * sizeof *queue);
  assert_non_null(seen);
  assert_non_null(queue);
  int comps = 0;
  for (int64_t s = 0; s < n; s++) {
    if (!lab[s] || seen[s]) continue;
    int64_t head = 0, tail = 0;
    queue[tail++] = s;
    seen[s] = 1;
    while (head < tail) {
      int64_t v = queue[head++];
      int64_t z = v / (sh[1] * sh[2]), y = (v / sh[2]) % sh[1], x = v % sh[2];
      const int64_t nb[6][3] = {{z - 1, y, x}, {z + 1, y, x}, {z, y - 1, x},
                                {z, y + 1, x}, {z, y, x - 1}, {z, y, x + 1}};
      for (int k = 0; k < 6; k++) {
        if (nb[k][0] < 0 || nb[k][0] >= sh[0] || nb[k][1] < 0 || nb[k][1] >= sh[1] ||
            nb[k][2] < 0 || nb[k][2] >= sh[2])
          continue;
        int64_t u = (nb[k][0] * sh[1] + nb[k][1]) * sh[2] + nb[k][2];
        if (lab[u] && !seen[u]) seen[u] = 1, queue[tail++] = u;
      }
    }
    if (comps < max_sizes) sizes_out[comps] = tail;
    comps++;
  }
  free(seen);
  free(queue);
  return comps;
}

static void test_brats_case(void **state) {
  (void)state;
  for (int rep = 0; rep < 2; rep++) {
    vp_tensor *img, *lab;
    make(VP_SYNTH_BRATS, g_seed + (uint64_t)rep * 7919u, rep, 78, 120, 120, 0, 2, &img, &lab);
    assert_int_equal(vp_tensor_dtype(img), VP_I16);
    assert_int_equal(vp_tensor_dtype(lab), VP_U8);
    assert_int_equal(vp_tensor_ndim(img), 4);
    assert_int_equal(vp_tensor_ndim(lab), 3);
    const int64_t *ish = vp_tensor_shape(img), *lsh = vp_tensor_shape(lab);
    assert_int_equal(ish[0], 4);
    const int64_t want[3] = {78, 120, 120};
    for (int a = 0; a < 3; a++) {
      assert_int_equal(ish[a + 1], want[a]);
      assert_int_equal(lsh[a], want[a]);
    }
    double sp[3], aff[16];
    vp_tensor_spacing(img, sp);
    vp_tensor_affine(img, aff);
    for (int a = 0; a < 3; a++) assert_true(sp[a] == 1.0);
    assert_true(aff[0] == -1.0 && aff[5] == -1.0 && aff[10] == 1.0 && aff[15] == 1.0);

    const int16_t *im = vp_tensor_data(img);
    const uint8_t *lb = vp_tensor_data(lab);
    int64_t vox = want[0] * want[1] * want[2];
    int64_t count[256] = {0}, head = 0;
    double sum[4][5] = {{0}}; /* per channel: head & label 0, labels 1, 2, 4 */
    int64_t nsum[5] = {0};
    for (int64_t i = 0; i < vox; i++) {
      count[lb[i]]++;
      int zeros = 0;
      for (int c = 0; c < 4; c++) zeros += im[c * vox + i] == 0;
      /* background is exactly 0 in every channel, the head nowhere */
      assert_true(zeros == 0 || zeros == 4);
      if (zeros) {
        assert_int_equal(lb[i], 0);
        continue;
      }
      head++;
      int slot = lb[i] == 0 ? 0 : lb[i] == 1 ? 1 : lb[i] == 2 ? 2 : 3;
      nsum[slot]++;
      for (int c = 0; c < 4; c++) {
        assert_true(im[c * vox + i] > 0 && im[c * vox + i] < 6000);
        sum[c][slot] += im[c * vox + i];
      }
    }
    for (int v = 0; v < 256; v++) {
      if (v == 0 || v == 1 || v == 2 || v == 4)
        assert_true(count[v] > 0);
      else
        assert_int_equal(count[v], 0);
    }
    /* the corner is outside the head; the head fills a sensible fraction */
    assert_int_equal(im[0], 0);
    assert_true(head > vox / 5 && head < vox * 3 / 4);
    double mean[4][4];
    for (int c = 0; c < 4; c++)
      for (int s = 0; s < 4; s++) mean[c][s] = sum[c][s] / (double)nsum[s];
    /* contrasts: enhancing tumour bright in T1ce (channel 1) against T1
     * (channel 0); edema brighter than the rest of the head in T2/FLAIR */
    assert_true(mean[1][3] / mean[1][0] > 1.3 * mean[0][3] / mean[0][0]);
    assert_true(mean[3][2] > 1.2 * mean[3][0]);
    assert_true(mean[2][2] > mean[2][0]);
    for (int c = 0; c < 4; c++) assert_true(mean[c][0] > 100 && mean[c][0] < 3000);

    int64_t sizes[256];
    int comps = count_components(lb, want, sizes, 256);
    print_message("brats seed %llu: %d components\n",
                  (unsigned long long)(g_seed + (uint64_t)rep * 7919u), comps);
    assert_true(comps >= 8);
    int64_t smallest = INT64_MAX, largest = 0;
    for (int k = 0; k < comps && k < 256; k++) {
      if (sizes[k] < smallest) smallest = sizes[k];
      if (sizes[k] > largest) largest = sizes[k];
    }
    /* blobs of very different sizes */
    assert_true(largest > 50 * smallest);
    vp_tensor_release(img);
    vp_tensor_release(lab);
  }
}

static void test_kits_case(void **state) {
  (void)state;
  const double scale = 0.2;
  int seen_tumour_sizes = 0;
  for (int idx = 0; idx < 3; idx++) {
    vp_tensor *img, *lab;
    make(VP_SYNTH_KITS, g_seed, idx, 0, 0, 0, scale, 0, &img, &lab);
    const int64_t *ish = vp_tensor_shape(img);
    assert_int_equal(vp_tensor_ndim(img), 4);
    assert_int_equal(ish[0], 1);
    assert_int_equal(vp_tensor_dtype(img), VP_I16);
    assert_int_equal(vp_tensor_dtype(lab), VP_U8);
    /* KiTS19's range after resampling, scaled */
    assert_true(ish[1] >= (int64_t)floor(100 * scale) && ish[1] <= (int64_t)ceil(460 * scale));
    assert_true(ish[2] >= (int64_t)floor(250 * scale) && ish[2] <= (int64_t)ceil(420 * scale));
    assert_true(ish[3] >= (int64_t)floor(250 * scale) && ish[3] <= (int64_t)ceil(420 * scale));
    double sp[3], aff[16];
    vp_tensor_spacing(lab, sp);
    vp_tensor_affine(lab, aff);
    assert_true(sp[0] == 1.6 && sp[1] == 1.2 && sp[2] == 1.2);
    assert_true(aff[0] == -1.2 && aff[5] == -1.2 && aff[10] == 1.6);

    int64_t vox = ish[1] * ish[2] * ish[3], count[256] = {0};
    const int16_t *im = vp_tensor_data(img);
    const uint8_t *lb = vp_tensor_data(lab);
    double s[3] = {0};
    for (int64_t i = 0; i < vox; i++) {
      count[lb[i]]++;
      if (lb[i] < 3) s[lb[i]] += im[i];
      assert_true(im[i] >= -1024 && im[i] <= 3071);
    }
    assert_true(count[0] > 0 && count[1] > 0 && count[2] > 0);
    for (int v = 3; v < 256; v++) assert_int_equal(count[v], 0);
    double kidney = s[1] / (double)count[1], tumour = s[2] / (double)count[2];
    assert_true(kidney > 90 && kidney < 220);
    assert_true(tumour > -20 && tumour < 180);
    /* air in the first row, near -1000 */
    double air = 0;
    for (int64_t x = 0; x < ish[3]; x++) air += im[x];
    air /= (double)ish[3];
    assert_true(fabs(air + 1000) < 25);
    seen_tumour_sizes += count[2] > 0;
    vp_tensor_release(img);
    vp_tensor_release(lab);
  }
  assert_int_equal(seen_tumour_sizes, 3);
}

static void test_bad_args(void **state) {
  (void)state;
  vp_synth_opts o;
  vp_synth_opts_init(&o);
  vp_tensor *img = (vp_tensor *)1, *lab = (vp_tensor *)1;
  o.kind = (vp_synth_kind)7;
  assert_int_equal(vp_synth_case(&o, 0, &img, &lab), VP_ERR_INVALID_ARG);
  assert_null(img);
  assert_null(lab);
  assert_non_null(strstr(vp_last_error(), "kind"));
  vp_synth_opts_init(&o);
  o.shape[0] = 10;
  assert_int_equal(vp_synth_case(&o, 0, &img, &lab), VP_ERR_INVALID_ARG);
  o.shape[1] = 3, o.shape[2] = 10;
  assert_int_equal(vp_synth_case(&o, 0, &img, &lab), VP_ERR_INVALID_ARG);
  assert_non_null(strstr(vp_last_error(), "shape[1]"));
  vp_synth_opts_init(&o);
  assert_int_equal(vp_synth_case(&o, -1, &img, &lab), VP_ERR_INVALID_ARG);
  o.num_cases = 0;
  assert_int_equal(vp_synth_dataset(&o, vp_test_path("none"), NULL, NULL), VP_ERR_INVALID_ARG);
  assert_non_null(strstr(vp_last_error(), "num_cases"));
}

static void count_progress(int done, int total, void *ctx) {
  int *calls = ctx;
  assert_int_equal(done, calls[0] + 1);
  assert_int_equal(total, 2);
  calls[0]++;
}

static void test_dataset(void **state) {
  (void)state;
  for (int fmt = 0; fmt < 2; fmt++) {
    for (int kind = 0; kind < 2; kind++) {
      vp_synth_opts o;
      vp_synth_opts_init(&o);
      o.kind = (vp_synth_kind)kind;
      o.seed = g_seed;
      o.num_cases = 2;
      o.format = fmt;
      o.shape[0] = 24, o.shape[1] = 40, o.shape[2] = 36;
      char name[64];
      snprintf(name, sizeof name, "ds_%d_%d/sub", fmt, kind);
      const char *dir = vp_test_path(name);
      char dirbuf[512];
      snprintf(dirbuf, sizeof dirbuf, "%s", dir);
      int calls = 0;
      vp_status st = vp_synth_dataset(&o, dirbuf, count_progress, &calls);
      if (st == VP_ERR_UNSUPPORTED) {
        print_message("skipping the dataset check: %s\n", vp_last_error());
        skip();
      }
      VP_ASSERT_OK(st);
      assert_int_equal(calls, 2);
      char path[1024];
      snprintf(path, sizeof path, "%s/dataset.json", dirbuf);
      size_t n;
      char *json = vp_test_read_file(path, &n);
      assert_non_null(strstr(json, "\"numTraining\": 2"));
      const char *img_name = fmt    ? "case_00001_x.npy"
                             : kind ? "imagesTr/case_00001.nii.gz"
                                    : "imagesTr/BRATS_002.nii.gz";
      const char *lab_name = fmt    ? "case_00001_y.npy"
                             : kind ? "labelsTr/case_00001.nii.gz"
                                    : "labelsTr/BRATS_002.nii.gz";
      assert_non_null(strstr(json, img_name));
      free(json);

      vp_tensor *img, *lab, *fimg, *flab;
      make((vp_synth_kind)kind, g_seed, 1, 24, 40, 36, 0, 0, &img, &lab);
      snprintf(path, sizeof path, "%s/%s", dirbuf, img_name);
      VP_ASSERT_OK(vp_load(path, NULL, &fimg));
      snprintf(path, sizeof path, "%s/%s", dirbuf, lab_name);
      VP_ASSERT_OK(vp_load(path, NULL, &flab));
      int64_t vox = 24 * 40 * 36, nch = kind ? 1 : 4;
      assert_int_equal(vp_tensor_numel(fimg), nch * vox);
      assert_int_equal(vp_tensor_numel(flab), vox);
      assert_int_equal(vp_tensor_dtype(flab), VP_U8);
      assert_memory_equal(vp_tensor_data(flab), vp_tensor_data(lab), (size_t)vox);
      const int16_t *raw = vp_tensor_data(img);
      if (fmt == 0) {
        assert_int_equal(vp_tensor_dtype(fimg), VP_I16);
        assert_int_equal(vp_tensor_ndim(fimg), kind ? 3 : 4);
        assert_memory_equal(vp_tensor_data(fimg), raw, (size_t)(nch * vox) * 2);
        double sp[3];
        vp_tensor_spacing(fimg, sp);
        assert_true(fabs(sp[0] - (kind ? 1.6 : 1.0)) < 1e-6);
      } else {
        assert_int_equal(vp_tensor_dtype(fimg), VP_F32);
        assert_int_equal(vp_tensor_ndim(fimg), 4);
        assert_int_equal(vp_tensor_ndim(flab), 4);
        const float *f = vp_tensor_data(fimg);
        for (int64_t c = 0; c < nch; c++) {
          double m = 0, m2 = 0;
          int64_t cnt = 0;
          for (int64_t i = 0; i < vox; i++) {
            double v = raw[c * vox + i];
            if (kind) {
              double want = (fmin(fmax(v, -79.0), 304.0) - 101.0) / 76.9;
              assert_true(fabs(f[c * vox + i] - want) < 1e-4);
            } else if (v != 0) {
              m += f[c * vox + i], m2 += (double)f[c * vox + i] * f[c * vox + i], cnt++;
            } else {
              assert_true(f[c * vox + i] == 0.0f);
            }
          }
          if (!kind) {
            m /= (double)cnt, m2 /= (double)cnt;
            assert_true(fabs(m) < 1e-3 && fabs(m2 - m * m - 1.0) < 1e-3);
          }
        }
      }
      vp_tensor_release(img);
      vp_tensor_release(lab);
      vp_tensor_release(fimg);
      vp_tensor_release(flab);
    }
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_determinism_brats), cmocka_unit_test(test_determinism_kits),
      cmocka_unit_test(test_brats_case),        cmocka_unit_test(test_kits_case),
      cmocka_unit_test(test_bad_args),          cmocka_unit_test(test_dataset),
  };
  return cmocka_run_group_tests(tests, setup_seed, NULL);
}
