/* Helpers shared by the pipeline tests (header-only, included by
 * test_pipeline.c, test_pipeline_json.c and tests/cuda/test_pipeline_gpu.cu):
 * small .npy datasets and batch hashing. */
#ifndef VP_PIPELINE_TESTLIB_H
#define VP_PIPELINE_TESTLIB_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "testutil.h"

/* Case k: image float32 [D, H, W] with D = 6 + k % 3, H = 7, W = 8 + k % 2,
 * element 0 = k (so a case can be recognised), the rest random; label
 * uint8 of the same shape. Written as <dir>/img_NNN.npy, lbl_NNN.npy. Case
 * `corrupt` (-1 = none) gets an image file that is not a valid .npy. */
static inline void pt_case_shape(int k, int64_t *shape) {
  shape[0] = 6 + k % 3;
  shape[1] = 7;
  shape[2] = 8 + k % 2;
}

static inline void pt_make_dataset(const char *dir, int n, int corrupt, uint64_t seed) {
  mkdir(dir, 0755);
  uint64_t st = seed;
  for (int k = 0; k < n; k++) {
    int64_t shape[3];
    pt_case_shape(k, shape);
    vp_tensor *img = NULL, *lbl = NULL;
    VP_ASSERT_OK(vp_tensor_create(VP_F32, 3, shape, VP_MEM_HOST, 0, &img));
    VP_ASSERT_OK(vp_tensor_create(VP_U8, 3, shape, VP_MEM_HOST, 0, &lbl));
    float *f = (float *)vp_tensor_data(img);
    uint8_t *l = (uint8_t *)vp_tensor_data(lbl);
    for (int64_t i = 0; i < vp_tensor_numel(img); i++) {
      uint64_t r = vp_test_rand(&st);
      f[i] = (float)((double)(r >> 11) * (1.0 / 9007199254740992.0) * 200.0 - 100.0);
      l[i] = (uint8_t)(r % 3);
    }
    f[0] = (float)k;
    char path[600];
    snprintf(path, sizeof path, "%.500s/img_%03d.npy", dir, k);
    if (k == corrupt) {
      const char junk[] = "\x93NUMPY\x01\x00garbage that is no header";
      vp_test_write_file(path, junk, sizeof junk);
    } else {
      VP_ASSERT_OK(vp_save(path, img, NULL));
    }
    snprintf(path, sizeof path, "%.500s/lbl_%03d.npy", dir, k);
    VP_ASSERT_OK(vp_save(path, lbl, NULL));
    vp_tensor_release(img);
    vp_tensor_release(lbl);
  }
}

static inline void pt_dataset_opts(vp_dataset_opts *d, const char *dir) {
  vp_dataset_opts_init(d);
  d->root = dir;
  d->image_glob = "img_*.npy";
  d->label_glob = "lbl_*.npy";
}

/* FNV-1a over dtype, shape and bytes of host tensors (device tensors are
 * copied to the host first). */
static inline uint64_t pt_hash_tensor(uint64_t h, const vp_tensor *t) {
  vp_tensor *host = NULL;
  if (vp_tensor_memkind(t) == VP_MEM_DEVICE) {
    VP_ASSERT_OK(vp_tensor_copy_to(t, VP_MEM_HOST, 0, &host));
    t = host;
  }
  int32_t head[2] = {(int32_t)vp_tensor_dtype(t), vp_tensor_ndim(t)};
  const unsigned char *parts[3] = {(const unsigned char *)head,
                                   (const unsigned char *)vp_tensor_shape(t),
                                   (const unsigned char *)vp_tensor_data(t)};
  size_t lens[3] = {sizeof head, (size_t)vp_tensor_ndim(t) * sizeof(int64_t), vp_tensor_nbytes(t)};
  for (int p = 0; p < 3; p++)
    for (size_t i = 0; i < lens[p]; i++) h = (h ^ parts[p][i]) * 1099511628211ull;
  vp_tensor_release(host);
  return h;
}

/* Runs one batch and returns the hash of all its outputs (releasing them). */
static inline uint64_t pt_run_hash(vp_pipeline *p, int *epoch_end) {
  int n = vp_pipeline_num_outputs(p) * vp_pipeline_batch_size(p);
  vp_tensor **out = (vp_tensor **)calloc((size_t)n, sizeof *out);
  VP_ASSERT_OK(vp_pipeline_run(p, out, epoch_end));
  uint64_t h = 1469598103934665603ull;
  for (int i = 0; i < n; i++) {
    assert_non_null(out[i]);
    h = pt_hash_tensor(h, out[i]);
    vp_tensor_release(out[i]);
  }
  free(out);
  return h;
}

#endif
