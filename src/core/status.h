/* Status codes and the per-thread error message (internal helpers). */
#ifndef VP_CORE_STATUS_H
#define VP_CORE_STATUS_H

#include "voxpipe.h"

#if defined(__GNUC__)
#define VP_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define VP_INTERNAL __attribute__((visibility("hidden")))
#else
#define VP_PRINTF(a, b)
#define VP_INTERNAL
#endif

/* Sets the calling thread's message and returns s, so that failures read
 *   return vp_fail(VP_ERR_FORMAT, "%s: dim[%d] = %lld is negative", ...); */
vp_status vp_fail(vp_status s, const char *fmt, ...) VP_PRINTF(2, 3);

/* Prefixes the current message: "ctx: <old message>". Returns s. */
vp_status vp_fail_prefix(vp_status s, const char *fmt, ...) VP_PRINTF(2, 3);

#define VP_TRY(expr)                                                           \
  do {                                                                         \
    vp_status vp_try_s_ = (expr);                                              \
    if (vp_try_s_ != VP_OK) return vp_try_s_;                                  \
  } while (0)

/* Overflow-checked size arithmetic: return 0 on overflow. */
int vp_mul_overflows_i64(int64_t a, int64_t b, int64_t *out);
/* Product of n extents (each >= 0) with overflow and a bound; names `what`
 * in the message. */
vp_status vp_shape_numel(const int64_t *shape, int n, int64_t *out, const char *what);

#endif
