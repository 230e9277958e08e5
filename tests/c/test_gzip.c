/* gzip: round trips, and the system's gzip(1) as the independent oracle in
 * both directions (it decompresses what we write; we decompress what it
 * writes). Damaged streams must fail with a message that names the source
 * and says truncated / corrupt / trailing data. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/gzip.h"
#include "testutil.h"

/* Smooth-ish random bytes: compressible but not trivial. */
static unsigned char *make_data(size_t n, uint64_t *rng) {
  unsigned char *p = malloc(n ? n : 1);
  unsigned v = 0;
  for (size_t i = 0; i < n; i++) {
    if (i % 16 == 0) v = (unsigned)vp_test_rand(rng);
    p[i] = (unsigned char)((v >> (i % 16)) & 0x3f) + (unsigned char)(i / 4096);
  }
  return p;
}

static int run(const char *cmd) { return system(cmd); }

static void test_roundtrip_and_gzip_tool(void **state) {
  (void)state;
  uint64_t rng = vp_test_seed() ^ 0x6a;
  /* 0, tiny, one member, and several members (chunks are 4 MiB) */
  const size_t sizes[] = {0, 1, 1000, 300000, (size_t)9 << 20};
  const int levels[] = {1, 6, 12, 3, 6};
  for (int k = 0; k < 5; k++) {
    size_t n = sizes[k] + (size_t)(vp_test_rand(&rng) % 7);
    unsigned char *src = make_data(n, &rng);
    void *gz = NULL;
    size_t gzlen = 0;
    VP_ASSERT_OK(vp_gzip_compress(src, n, levels[k], k == 4 ? 2 : 0, &gz, &gzlen));
    assert_true(vp_gzip_is(gz, gzlen));
    if (n < ((size_t)4 << 20)) assert_int_equal(vp_gzip_isize(gz, gzlen), (uint32_t)n);

    unsigned char *back = malloc(n ? n : 1);
    VP_ASSERT_OK(vp_gzip_decompress(gz, gzlen, back, n, "mem.gz"));
    assert_memory_equal(back, src, n);

    /* peek the first bytes */
    unsigned char head[64];
    size_t got = 0;
    VP_ASSERT_OK(vp_gzip_peek(gz, gzlen, head, sizeof head, &got, "mem.gz"));
    assert_int_equal(got, n < sizeof head ? n : sizeof head);
    assert_memory_equal(head, src, got);

    /* gzip(1) reads our output (all members) */
    const char *pgz = vp_test_path("ours.gz");
    const char *praw = vp_test_path("ours.raw");
    vp_test_write_file(pgz, gz, gzlen);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "gzip -dc '%s' > '%s'", pgz, praw);
    assert_int_equal(run(cmd), 0);
    size_t rn;
    void *raw = vp_test_read_file(praw, &rn);
    assert_int_equal(rn, n);
    assert_memory_equal(raw, src, n);
    free(raw);

    /* we read gzip(1)'s output */
    const char *praw2 = vp_test_path("theirs.raw");
    vp_test_write_file(praw2, src, n);
    snprintf(cmd, sizeof cmd, "gzip -c -%d '%s' > '%s.gz'", 1 + k, praw2, praw2);
    assert_int_equal(run(cmd), 0);
    snprintf(cmd, sizeof cmd, "%s.gz", praw2);
    size_t tn;
    void *theirs = vp_test_read_file(cmd, &tn);
    memset(back, 0xEE, n);
    VP_ASSERT_OK(vp_gzip_decompress(theirs, tn, back, n, "theirs.gz"));
    assert_memory_equal(back, src, n);
    free(theirs);
    free(back);
    free(gz);
    free(src);
  }
}

static void expect_error(vp_status s, const char *word) {
  assert_int_not_equal(s, VP_OK);
  const char *msg = vp_last_error();
  if (!strstr(msg, "case.nii.gz") || !strstr(msg, word))
    fail_msg("message \"%s\" should name the file and say \"%s\"", msg, word);
}

static void test_damaged_streams(void **state) {
  (void)state;
  uint64_t rng = vp_test_seed() ^ 0x77;
  size_t n = 200000;
  unsigned char *src = make_data(n, &rng);
  void *gz;
  size_t gzlen;
  VP_ASSERT_OK(vp_gzip_compress(src, n, 6, 1, &gz, &gzlen));
  unsigned char *dst = malloc(n + 100);

  expect_error(vp_gzip_decompress(gz, gzlen, dst, n + 1, "case.nii.gz"), "truncated");
  expect_error(vp_gzip_decompress(gz, gzlen, dst, n - 1, "case.nii.gz"), "trailing data");
  expect_error(vp_gzip_decompress(gz, gzlen / 2, dst, n, "case.nii.gz"), "truncated");
  expect_error(vp_gzip_decompress(gz, 15, dst, n, "case.nii.gz"), "truncated");

  unsigned char *bad = malloc(gzlen + 16);
  memcpy(bad, gz, gzlen);
  for (size_t k = gzlen / 2; k < gzlen / 2 + 6; k++) bad[k] ^= 0x5a;
  expect_error(vp_gzip_decompress(bad, gzlen, dst, n, "case.nii.gz"), "corrupt");

  memcpy(bad, gz, gzlen);
  memcpy(bad + gzlen, "garbage", 7);
  expect_error(vp_gzip_decompress(bad, gzlen + 7, dst, n, "case.nii.gz"), "trailing data");
  /* zero padding after the last member is accepted, as gzip(1) does */
  memset(bad + gzlen, 0, 7);
  VP_ASSERT_OK(vp_gzip_decompress(bad, gzlen + 7, dst, n, "case.nii.gz"));
  assert_memory_equal(dst, src, n);

  size_t got;
  unsigned char head[16];
  expect_error(vp_gzip_peek(src, n, head, sizeof head, &got, "case.nii.gz"), "not a gzip");
  expect_error(vp_gzip_peek(gz, 12, head, sizeof head, &got, "case.nii.gz"), "truncated");

  void *none;
  size_t none_len;
  assert_int_equal(vp_gzip_compress(src, n, 13, 1, &none, &none_len), VP_ERR_INVALID_ARG);
  assert_null(none);
  free(bad);
  free(dst);
  free(gz);
  free(src);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_roundtrip_and_gzip_tool),
      cmocka_unit_test(test_damaged_streams),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
