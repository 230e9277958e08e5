#include "core/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define VP_MSG_CAP 1024

static _Thread_local char tls_msg[VP_MSG_CAP];

const char *vp_status_name(vp_status s) {
  switch (s) {
#define VP_X_NAME(name, value, desc) \
  case name:                         \
    return #name;
    VP_STATUS_TABLE(VP_X_NAME)
#undef VP_X_NAME
  }
  return "VP_UNKNOWN_STATUS";
}

const char *vp_status_desc(vp_status s) {
  switch (s) {
#define VP_X_DESC(name, value, desc) \
  case name:                         \
    return desc;
    VP_STATUS_TABLE(VP_X_DESC)
#undef VP_X_DESC
  }
  return "unknown status";
}

const char *vp_last_error(void) { return tls_msg; }

void vp_clear_error(void) { tls_msg[0] = '\0'; }

vp_status vp_fail(vp_status s, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(tls_msg, sizeof tls_msg, fmt, ap);
  va_end(ap);
  return s;
}

vp_status vp_fail_prefix(vp_status s, const char *fmt, ...) {
  char prefix[256];
  char old[VP_MSG_CAP - 258];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(prefix, sizeof prefix, fmt, ap);
  va_end(ap);
  size_t n = strnlen(tls_msg, sizeof old - 1);
  memcpy(old, tls_msg, n);
  old[n] = '\0';
  snprintf(tls_msg, sizeof tls_msg, "%.255s: %.760s", prefix, old);
  return s;
}

int vp_mul_overflows_i64(int64_t a, int64_t b, int64_t *out) {
  return __builtin_mul_overflow(a, b, out);
}

vp_status vp_shape_numel(const int64_t *shape, int n, int64_t *out, const char *what) {
  int64_t p = 1;
  for (int i = 0; i < n; i++) {
    if (shape[i] < 0)
      return vp_fail(VP_ERR_INVALID_ARG, "%s: extent %d is negative (%lld)", what, i,
                     (long long)shape[i]);
    if (vp_mul_overflows_i64(p, shape[i], &p))
      return vp_fail(VP_ERR_OVERFLOW, "%s: the product of the extents overflows 64 bits",
                     what);
  }
  *out = p;
  return VP_OK;
}
