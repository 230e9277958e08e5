/* libFuzzer target for the gzip path. The first byte picks a mode: the
 * rest is either a gzip stream as is, or bytes that the target compresses
 * itself (so that mutations reach the NIfTI parser behind a valid stream),
 * optionally cut short or with one byte flipped (truncated and corrupt
 * members, bad trailers). The stream goes through the gzip layer directly
 * (magic, peek, ISIZE, whole decompression) and, written to a file named
 * .nii.gz, through vp_load, vp_file_info_read and a region read, as a user's
 * file would. Host allocations above 64 MiB fail (the hook in
 * src/core/memory.h), so a hostile ISIZE or header cannot exhaust memory
 * without the library being at fault. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/memory.h"
#include "io/gzip.h"
#include "voxpipe.h"

static char g_path[256];

static void remove_file(void) {
  if (g_path[0]) unlink(g_path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
  snprintf(g_path, sizeof g_path, "%s/vp_fuzz_gzip_%ld.nii.gz", dir, (long)getpid());
  atexit(remove_file);
  vp_debug_fail_alloc_larger_than((size_t)64 << 20);
  return 0;
}

static void through_files(const uint8_t *gz, size_t n, uint8_t mode) {
  FILE *f = fopen(g_path, "wb");
  if (!f) return;
  size_t w = fwrite(gz, 1, n, f);
  fclose(f);
  if (w != n) return;
  vp_tensor *t = NULL;
  if (vp_load(g_path, NULL, &t) == VP_OK) vp_tensor_release(t);
  vp_file_info info;
  (void)vp_file_info_read(g_path, &info);
  vp_load_opts o;
  vp_load_opts_init(&o);
  o.raw = mode >> 7;
  o.roi_ndim = 3;
  o.oob = VP_OOB_PAD;
  for (int a = 0; a < 3; a++) {
    o.roi_start[a] = (int64_t)(mode >> (a + 3) & 1) - 1;
    o.roi_shape[a] = 2;
  }
  t = NULL;
  if (vp_load(g_path, &o, &t) == VP_OK) vp_tensor_release(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  uint8_t mode = data[0];
  data++;
  size--;
  const uint8_t *gz = data;
  size_t gzlen = size;
  void *made = NULL;
  if (mode & 1) {
    if (vp_gzip_compress(data, size, 1 + (mode >> 1) % 6, 1, &made, &gzlen) != VP_OK) return 0;
    gz = made;
    if ((mode & 2) && gzlen > 1) gzlen = 1 + (size_t)(mode >> 2) * 7 % (gzlen - 1);
    if ((mode & 4) && gzlen > 0) ((uint8_t *)made)[(size_t)(mode >> 3) * 13 % gzlen] ^= 0x5a;
  }

  (void)vp_gzip_is(gz, gzlen);
  unsigned char head[540];
  size_t got = 0;
  (void)vp_gzip_peek(gz, gzlen, head, sizeof head, &got, "fuzz.nii.gz");
  uint32_t isize = vp_gzip_isize(gz, gzlen);
  size_t expected = isize < (1u << 18) ? isize : (1u << 18);
  void *buf = malloc(expected ? expected : 1);
  if (buf) {
    (void)vp_gzip_decompress(gz, gzlen, buf, expected, "fuzz.nii.gz");
    free(buf);
  }

  through_files(gz, gzlen, mode);
  free(made);
  return 0;
}
