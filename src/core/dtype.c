#include "core/dtype.h"

#include <string.h>

#include "core/convert.h"
#include "core/status.h"

static const struct {
  const char *name, *shortname;
  size_t size;
  int is_float, is_signed;
} k_dtypes[VP_DTYPE_COUNT] = {
    [VP_U8] = {"uint8", "u8", 1, 0, 0},       [VP_I8] = {"int8", "i8", 1, 0, 1},
    [VP_U16] = {"uint16", "u16", 2, 0, 0},    [VP_I16] = {"int16", "i16", 2, 0, 1},
    [VP_U32] = {"uint32", "u32", 4, 0, 0},    [VP_I32] = {"int32", "i32", 4, 0, 1},
    [VP_I64] = {"int64", "i64", 8, 0, 1},     [VP_F16] = {"float16", "f16", 2, 1, 1},
    [VP_F32] = {"float32", "f32", 4, 1, 1},   [VP_F64] = {"float64", "f64", 8, 1, 1},
};

size_t vp_dtype_size(vp_dtype t) { return vp_dtype_valid(t) ? k_dtypes[t].size : 0; }

const char *vp_dtype_name(vp_dtype t) { return vp_dtype_valid(t) ? k_dtypes[t].name : NULL; }

int vp_dtype_is_float(vp_dtype t) { return vp_dtype_valid(t) && k_dtypes[t].is_float; }

int vp_dtype_is_signed(vp_dtype t) { return vp_dtype_valid(t) && k_dtypes[t].is_signed; }

vp_status vp_dtype_from_name(const char *name, vp_dtype *out) {
  if (!name || !out) return vp_fail(VP_ERR_INVALID_ARG, "dtype name: NULL argument");
  for (int i = 0; i < VP_DTYPE_COUNT; i++) {
    if (strcmp(name, k_dtypes[i].name) == 0 || strcmp(name, k_dtypes[i].shortname) == 0) {
      *out = (vp_dtype)i;
      return VP_OK;
    }
  }
  return vp_fail(VP_ERR_INVALID_ARG,
                 "dtype '%s' is not one of uint8 int8 uint16 int16 uint32 int32 int64 "
                 "float16 float32 float64",
                 name);
}

void vp_byteswap(void *buf, size_t n, size_t size) {
  unsigned char *p = buf;
  switch (size) {
    case 1:
      return;
    case 2:
      for (size_t i = 0; i < n; i++) {
        uint16_t v;
        memcpy(&v, p + 2 * i, 2);
        v = __builtin_bswap16(v);
        memcpy(p + 2 * i, &v, 2);
      }
      return;
    case 4:
      for (size_t i = 0; i < n; i++) {
        uint32_t v;
        memcpy(&v, p + 4 * i, 4);
        v = __builtin_bswap32(v);
        memcpy(p + 4 * i, &v, 4);
      }
      return;
    case 8:
      for (size_t i = 0; i < n; i++) {
        uint64_t v;
        memcpy(&v, p + 8 * i, 8);
        v = __builtin_bswap64(v);
        memcpy(p + 8 * i, &v, 8);
      }
      return;
    default:
      for (size_t i = 0; i < n; i++) {
        unsigned char *e = p + i * size;
        for (size_t a = 0, b = size - 1; a < b; a++, b--) {
          unsigned char t = e[a];
          e[a] = e[b];
          e[b] = t;
        }
      }
  }
}

float vp_half_to_float(uint16_t h) { return vp_cvt_half_to_float(h); }

uint16_t vp_float_to_half(float f) { return vp_cvt_float_to_half(f); }

double vp_load_as_double(const void *buf, vp_dtype t, size_t i) {
  return vp_cvt_load(buf, t, (int64_t)i);
}
