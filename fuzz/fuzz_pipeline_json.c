/* libFuzzer target for pipeline files: the input is the JSON text given to
 * vp_pipeline_from_json, named <dir>/fuzz.json so that relative paths
 * ("root": ".") reach a tiny dataset this target writes at start-up (three
 * .npy cases and a file list). A document that builds is destroyed at once,
 * without a run: the target checks that checking and building never crash
 * or leak, and that the producer, already started, stops cleanly. The
 * overrides keep one exec cheap (CPU only, one thread, batches of 2); host
 * allocations above 64 MiB fail (src/core/memory.h), so a huge random_crop
 * is the library's to refuse, not the fuzzer's memory limit's. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/memory.h"
#include "voxpipe.h"

static char g_dir[256], g_name[300];

static void cleanup(void) {
  char cmd[300];
  if (!g_dir[0]) return;
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
  if (system(cmd) != 0) fprintf(stderr, "fuzz_pipeline_json: cannot remove %s\n", g_dir);
}

static int save_case(int k) {
  int64_t shape[3] = {4 + k, 5, 6};
  vp_tensor *img = NULL, *lbl = NULL;
  if (vp_tensor_create(VP_F32, 3, shape, VP_MEM_HOST, 0, &img) != VP_OK) return -1;
  if (vp_tensor_create(VP_U8, 3, shape, VP_MEM_HOST, 0, &lbl) != VP_OK) return -1;
  float *f = vp_tensor_data(img);
  uint8_t *l = vp_tensor_data(lbl);
  for (int64_t i = 0; i < vp_tensor_numel(img); i++) {
    f[i] = (float)(i % 17) - 8.0f;
    l[i] = (uint8_t)(i % 3);
  }
  char path[400];
  snprintf(path, sizeof path, "%s/img_%03d.npy", g_dir, k);
  int rc = vp_save(path, img, NULL) == VP_OK ? 0 : -1;
  snprintf(path, sizeof path, "%s/lbl_%03d.npy", g_dir, k);
  if (vp_save(path, lbl, NULL) != VP_OK) rc = -1;
  vp_tensor_release(img);
  vp_tensor_release(lbl);
  return rc;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
  snprintf(g_dir, sizeof g_dir, "%s/vp_fuzz_pipeline_%ld", base, (long)getpid());
  mkdir(g_dir, 0755);
  atexit(cleanup);
  for (int k = 0; k < 3; k++)
    if (save_case(k) != 0) fprintf(stderr, "fuzz_pipeline_json: cannot write the dataset\n");
  char path[400];
  snprintf(path, sizeof path, "%s/list.txt", g_dir);
  FILE *f = fopen(path, "w");
  if (f) {
    for (int k = 0; k < 3; k++) fprintf(f, "img_%03d.npy | lbl_%03d.npy\n", k, k);
    fclose(f);
  }
  snprintf(g_name, sizeof g_name, "%s/fuzz.json", g_dir);
  vp_debug_fail_alloc_larger_than((size_t)64 << 20);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = malloc(size + 1);
  if (!text) return 0;
  memcpy(text, data, size);
  text[size] = '\0';
  vp_pipeline *p = NULL;
  vp_status s = vp_pipeline_from_json(
      text, g_name, "{\"device\": -1, \"num_threads\": 1, \"batch_size\": 2}", &p);
  if (s == VP_OK && !p) __builtin_trap();
  if (s != VP_OK && p) __builtin_trap();                   /* out-pointers stay NULL on failure */
  if (s != VP_OK && !vp_last_error()[0]) __builtin_trap(); /* every error has a message */
  vp_pipeline_destroy(p);
  free(text);
  return 0;
}
