/* Shared helpers for the C tests (cmocka). Include after cmocka's
 * prerequisites: this header pulls them in. */
#ifndef VP_TESTUTIL_H
#define VP_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka needs the four above first */
#include <cmocka.h>

#include "voxpipe.h"

/* Fails the test with the library's message when s != VP_OK. */
#define VP_ASSERT_OK(expr)                                                      \
  do {                                                                          \
    vp_status s_ = (expr);                                                      \
    if (s_ != VP_OK) fail_msg("%s -> %s: %s", #expr, vp_status_name(s_), vp_last_error()); \
  } while (0)

/* tests/data: $VP_TEST_DATA_DIR when set (the build may run elsewhere,
 * e.g. on the GPU host), else the source tree's folder. */
const char *vp_test_data_dir(void);
/* A fresh temporary directory (removed with its files at exit). */
const char *vp_test_tmpdir(void);
/* tmpdir/name in a static rotating buffer. */
const char *vp_test_path(const char *name);
/* Writes bytes to a file; fails the test on error. */
void vp_test_write_file(const char *path, const void *data, size_t n);
/* Reads a whole file (malloc'd); fails the test on error. */
void *vp_test_read_file(const char *path, size_t *n);
/* A seed from VP_TEST_SEED or the clock, printed once so a failure can be
 * replayed. */
uint64_t vp_test_seed(void);
/* splitmix64 step, for test inputs. */
uint64_t vp_test_rand(uint64_t *state);

#endif
