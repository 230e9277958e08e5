/* gzip (stub until implemented). */
#include "core/status.h"
#include "io/gzip.h"

int vp_gzip_is(const void *src, size_t n) {
  const unsigned char *p = src;
  return n >= 2 && p[0] == 0x1f && p[1] == 0x8b;
}
vp_status vp_gzip_peek(const void *src, size_t srclen, void *dst, size_t n, size_t *got,
                       const char *name) {
  (void)src, (void)srclen, (void)dst, (void)n, (void)got;
  return vp_fail(VP_ERR_UNSUPPORTED, "%s: gzip not implemented yet", name);
}
uint32_t vp_gzip_isize(const void *src, size_t srclen) { (void)src, (void)srclen; return 0; }
vp_status vp_gzip_decompress(const void *src, size_t srclen, void *dst, size_t expected,
                             const char *name) {
  (void)src, (void)srclen, (void)dst, (void)expected;
  return vp_fail(VP_ERR_UNSUPPORTED, "%s: gzip not implemented yet", name);
}
vp_status vp_gzip_compress(const void *src, size_t n, int level, int threads, void **out,
                           size_t *outlen) {
  (void)src, (void)n, (void)level, (void)threads, (void)out, (void)outlen;
  return vp_fail(VP_ERR_UNSUPPORTED, "gzip not implemented yet");
}
