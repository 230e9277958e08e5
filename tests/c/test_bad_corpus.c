/* Every malformed file in tests/data/bad gives an error status whose message
 * names the file, through the library and through `voxpipe info` (exit 1).
 * Under ASan/LSan this also proves no crash and no leak on those paths. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "testutil.h"

typedef struct {
  char *names[512];
  int n;
} corpus;

static int by_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void list_corpus(corpus *c) {
  c->n = 0;
  char dir[1024];
  snprintf(dir, sizeof dir, "%s/bad", vp_test_data_dir());
  DIR *d = opendir(dir);
  if (!d) fail_msg("cannot open %s", dir);
  struct dirent *e;
  while ((e = readdir(d)) && c->n < 512) {
    if (e->d_name[0] == '.') continue;
    /* the .img halves of pairs are read through their .hdr */
    size_t len = strlen(e->d_name);
    if (len > 4 && !strcmp(e->d_name + len - 4, ".img")) continue;
    if (len > 7 && !strcmp(e->d_name + len - 7, ".img.gz")) continue;
    if (len > 3 && !strcmp(e->d_name + len - 3, ".py")) continue;
    c->names[c->n++] = strdup(e->d_name);
  }
  closedir(d);
  qsort(c->names, (size_t)c->n, sizeof c->names[0], by_name);
}

static void free_corpus(corpus *c) {
  for (int i = 0; i < c->n; i++) free(c->names[i]);
}

static void test_library_rejects(void **state) {
  (void)state;
  corpus c;
  list_corpus(&c);
  assert_true(c.n >= 10);
  for (int i = 0; i < c.n; i++) {
    char path[1024];
    snprintf(path, sizeof path, "%s/bad/%s", vp_test_data_dir(), c.names[i]);
    vp_tensor *t = (vp_tensor *)0x1;
    vp_status s = vp_load(path, NULL, &t);
    if (s == VP_OK) fail_msg("%s: loaded without error", c.names[i]);
    assert_null(t);
    if (!strstr(vp_last_error(), c.names[i]))
      fail_msg("%s: message does not name the file: %s", c.names[i], vp_last_error());
    /* the mapped path too */
    vp_load_opts o;
    vp_load_opts_init(&o);
    o.use_mmap = 1;
    assert_int_not_equal(vp_load(path, &o, &t), VP_OK);
    /* a region read must not succeed either */
    o.use_mmap = 0;
    o.roi_ndim = 1;
    o.roi_start[0] = 0;
    o.roi_shape[0] = 1;
    o.oob = VP_OOB_PAD;
    assert_int_not_equal(vp_load(path, &o, &t), VP_OK);
  }
  free_corpus(&c);
}

static void test_missing_and_directories(void **state) {
  (void)state;
  vp_tensor *t = NULL;
  const char *cases[] = {"/nonexistent/case_017.nii.gz", "/nonexistent/x.npy", vp_test_data_dir()};
  for (size_t i = 0; i < 3; i++) {
    assert_int_not_equal(vp_load(cases[i], NULL, &t), VP_OK);
    assert_null(t);
  }
  char dir_nii[1024];
  snprintf(dir_nii, sizeof dir_nii, "%s/dir.nii", vp_test_tmpdir());
  char cmd[1100];
  snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir_nii);
  assert_int_equal(system(cmd), 0);
  assert_int_equal(vp_load(dir_nii, NULL, &t), VP_ERR_IO);
  assert_non_null(strstr(vp_last_error(), "directory"));
  assert_int_equal(vp_load("/nonexistent/case_017.nii.gz", NULL, &t), VP_ERR_IO);
  assert_non_null(strstr(vp_last_error(), "case_017.nii.gz"));
  assert_int_equal(vp_load("notes.txt", NULL, &t), VP_ERR_UNSUPPORTED);
  assert_non_null(strstr(vp_last_error(), "notes.txt"));
}

static void test_cli_exit_status(void **state) {
  (void)state;
  const char *cli = getenv("VP_CLI");
  if (!cli || !*cli) skip();
  corpus c;
  list_corpus(&c);
  for (int i = 0; i < c.n; i++) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s' info '%s/bad/%s' >/dev/null 2>%s/stderr.txt", cli,
             vp_test_data_dir(), c.names[i], vp_test_tmpdir());
    int rc = system(cmd);
    assert_true(WIFEXITED(rc));
    if (WEXITSTATUS(rc) != 1) fail_msg("%s: voxpipe info exited %d", c.names[i], WEXITSTATUS(rc));
    size_t n;
    char path[600];
    snprintf(path, sizeof path, "%s/stderr.txt", vp_test_tmpdir());
    char *err = vp_test_read_file(path, &n);
    char *z = realloc(err, n + 1);
    z[n] = 0;
    if (!strstr(z, c.names[i])) fail_msg("%s: stderr does not name the file: %s", c.names[i], z);
    free(z);
  }
  free_corpus(&c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_library_rejects),
      cmocka_unit_test(test_missing_and_directories),
      cmocka_unit_test(test_cli_exit_status),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
