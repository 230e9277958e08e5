#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char tmpdir[256];

static void cleanup(void) {
  if (!tmpdir[0]) return;
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
}

const char *vp_test_data_dir(void) {
  const char *e = getenv("VP_TEST_DATA_DIR");
  return e && *e ? e : VP_TEST_DATA_DIR;
}

const char *vp_test_tmpdir(void) {
  if (!tmpdir[0]) {
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/vptest.XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmpdir)) {
      perror("mkdtemp");
      exit(1);
    }
    atexit(cleanup);
  }
  return tmpdir;
}

const char *vp_test_path(const char *name) {
  static char bufs[8][512];
  static int k;
  char *b = bufs[k++ & 7];
  snprintf(b, 512, "%s/%s", vp_test_tmpdir(), name);
  return b;
}

void vp_test_write_file(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f) fail_msg("cannot create %s", path);
  if (n && fwrite(data, 1, n, f) != n) fail_msg("cannot write %s", path);
  fclose(f);
}

void *vp_test_read_file(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) fail_msg("cannot open %s", path);
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  void *p = malloc(len ? (size_t)len : 1);
  if (len && fread(p, 1, (size_t)len, f) != (size_t)len) fail_msg("cannot read %s", path);
  fclose(f);
  *n = (size_t)len;
  return p;
}

uint64_t vp_test_seed(void) {
  static uint64_t seed;
  static int done;
  if (!done) {
    const char *e = getenv("VP_TEST_SEED");
    seed = e ? strtoull(e, NULL, 0) : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    fprintf(stderr, "VP_TEST_SEED=%llu\n", (unsigned long long)seed);
    done = 1;
  }
  return seed;
}

uint64_t vp_test_rand(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
