/* Data type helpers shared by the formats and operators. */
#ifndef VP_CORE_DTYPE_H
#define VP_CORE_DTYPE_H

#include <stddef.h>
#include <stdint.h>

#include "voxpipe.h"

static inline int vp_dtype_valid(vp_dtype t) { return (int)t >= 0 && t < VP_DTYPE_COUNT; }
int vp_dtype_is_float(vp_dtype t);
int vp_dtype_is_signed(vp_dtype t);

/* Reverses the byte order of n elements of `size` bytes, in place. */
void vp_byteswap(void *buf, size_t n, size_t size);

/* IEEE half <-> float, round to nearest even. */
float vp_half_to_float(uint16_t h);
uint16_t vp_float_to_half(float f);

/* Reads element i of a buffer of dtype t as a double (for statistics). */
double vp_load_as_double(const void *buf, vp_dtype t, size_t i);

#endif
