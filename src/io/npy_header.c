/* The .npy header: magic, version, header length and the Python dict
 * literal that describes the array, e.g.
 *   {'descr': '<i2', 'fortran_order': False, 'shape': (3, 4), }
 * parsed by hand (any key order, spaces, trailing commas, either quote) and
 * validated against the file size before the caller allocates anything. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "core/status.h"
#include "io/formats.h"

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAGIC_LEN 6
/* NumPy itself refuses headers over 10000 bytes by default; this bound only
 * keeps a hostile header_len from making us allocate gigabytes. */
#define NPY_MAX_HEADER ((uint64_t)1 << 24)

typedef struct cursor {
  const unsigned char *p, *end;
  const char *name;
} cursor;

static void skip_ws(cursor *c) {
  while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) c->p++;
}

/* A printable, bounded copy of untrusted text for messages. */
static void quote_for_message(const unsigned char *s, size_t n, char *out, size_t cap) {
  size_t j = 0, i = 0;
  for (; i < n && j + 8 < cap; i++) {
    unsigned char ch = s[i];
    if (ch >= 0x20 && ch < 0x7f && ch != '\'') {
      out[j++] = (char)ch;
    } else {
      j += (size_t)snprintf(out + j, cap - j, "\\x%02x", ch);
    }
  }
  if (i < n) j += (size_t)snprintf(out + j, cap - j, "...");
  out[j < cap ? j : cap - 1] = '\0';
}

static size_t offset_of(const cursor *c, const unsigned char *base) {
  return (size_t)(c->p - base);
}

/* A Python string literal in single or double quotes; escapes are not
 * expected in any key or value we accept, so a backslash is an error. */
static vp_status parse_string(cursor *c, const unsigned char *base, const unsigned char **s,
                              size_t *n) {
  if (c->p >= c->end || (*c->p != '\'' && *c->p != '"'))
    return vp_fail(VP_ERR_FORMAT, "%s: npy header: expected a quoted string at byte %zu", c->name,
                   offset_of(c, base));
  unsigned char q = *c->p++;
  const unsigned char *start = c->p;
  while (c->p < c->end && *c->p != q) {
    if (*c->p == '\\' || *c->p == '\n')
      return vp_fail(VP_ERR_FORMAT,
                     "%s: npy header: unexpected escape or newline in a string at byte %zu",
                     c->name, offset_of(c, base));
    c->p++;
  }
  if (c->p >= c->end) return vp_fail(VP_ERR_FORMAT, "%s: npy header: unterminated string", c->name);
  *s = start;
  *n = (size_t)(c->p - start);
  c->p++;
  return VP_OK;
}

static int match_word(cursor *c, const char *w) {
  size_t n = strlen(w);
  if ((size_t)(c->end - c->p) < n || memcmp(c->p, w, n) != 0) return 0;
  if (c->p + n < c->end && (isalnum(c->p[n]) || c->p[n] == '_')) return 0;
  c->p += n;
  return 1;
}

/* The dtype string: optional byte order, a kind letter and a size. */
static vp_status parse_descr(const unsigned char *s, size_t n, const char *name, vp_npy_header *h) {
  char shown[64];
  quote_for_message(s, n, shown, sizeof shown);
  char order = '=';
  size_t i = 0;
  if (n > 0 && (s[0] == '<' || s[0] == '>' || s[0] == '|' || s[0] == '=')) order = (char)s[i++];
  static const struct {
    const char *code;
    vp_dtype dtype;
  } k_codes[] = {{"b1", VP_U8},  {"?", VP_U8},   {"u1", VP_U8},  {"i1", VP_I8},
                 {"u2", VP_U16}, {"i2", VP_I16}, {"u4", VP_U32}, {"i4", VP_I32},
                 {"i8", VP_I64}, {"f2", VP_F16}, {"f4", VP_F32}, {"f8", VP_F64}};
  for (size_t k = 0; k < sizeof k_codes / sizeof k_codes[0]; k++) {
    size_t m = strlen(k_codes[k].code);
    if (n - i == m && memcmp(s + i, k_codes[k].code, m) == 0) {
      h->dtype = k_codes[k].dtype;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
      int native_big = 1;
#else
      int native_big = 0;
#endif
      h->big_endian = order == '>' || ((order == '=' || order == '|') && native_big);
      /* one-byte types have no byte order */
      if (vp_dtype_size(h->dtype) == 1) h->big_endian = 0;
      return VP_OK;
    }
  }
  const char *why = "";
  if (n - i >= 1) {
    switch (s[i]) {
      case 'u': why = " (unsigned integers wider than 32 bits are not supported)"; break;
      case 'c': why = " (complex numbers are not supported)"; break;
      case 'O': why = " (object arrays are not supported)"; break;
      case 'U':
      case 'S':
      case 'a': why = " (string arrays are not supported)"; break;
      case 'V': why = " (void/structured arrays are not supported)"; break;
      case 'M':
      case 'm': why = " (datetime arrays are not supported)"; break;
      case 'f': why = " (only float16, float32 and float64 are supported)"; break;
      default: break;
    }
  }
  return vp_fail(VP_ERR_UNSUPPORTED,
                 "%s: unsupported npy dtype descr '%s'%s; voxpipe reads |b1 u1 i1 u2 i2 u4 i4 "
                 "i8 f2 f4 f8",
                 name, shown, why);
}

/* A Python integer literal (with an optional sign and the Python 2 'L'). */
static vp_status parse_int(cursor *c, const unsigned char *base, int64_t *out) {
  int neg = 0;
  if (c->p < c->end && (*c->p == '-' || *c->p == '+')) neg = *c->p++ == '-';
  skip_ws(c);
  if (c->p >= c->end || !isdigit(*c->p))
    return vp_fail(VP_ERR_FORMAT,
                   "%s: npy header: bad shape tuple: expected an integer at byte %zu", c->name,
                   offset_of(c, base));
  uint64_t v = 0;
  while (c->p < c->end && isdigit(*c->p)) {
    unsigned d = (unsigned)(*c->p++ - '0');
    if (v > (UINT64_MAX - d) / 10 || v * 10 + d > (uint64_t)INT64_MAX)
      return vp_fail(VP_ERR_OVERFLOW, "%s: npy header: a shape extent does not fit in 64 bits",
                     c->name);
    v = v * 10 + d;
  }
  if (c->p < c->end && (*c->p == 'L' || *c->p == 'l')) c->p++;
  *out = neg ? -(int64_t)v : (int64_t)v;
  return VP_OK;
}

static vp_status parse_shape(cursor *c, const unsigned char *base, vp_npy_header *h) {
  if (c->p >= c->end || *c->p != '(')
    return vp_fail(VP_ERR_FORMAT, "%s: npy header: 'shape' is not a tuple (byte %zu)", c->name,
                   offset_of(c, base));
  c->p++;
  int n = 0, trailing_comma = 0;
  for (;;) {
    skip_ws(c);
    if (c->p < c->end && *c->p == ')') {
      c->p++;
      break;
    }
    if (n > 0 && !trailing_comma)
      return vp_fail(VP_ERR_FORMAT,
                     "%s: npy header: bad shape tuple: expected ',' or ')' at byte %zu", c->name,
                     offset_of(c, base));
    int64_t v = 0;
    VP_TRY(parse_int(c, base, &v));
    if (n >= VP_MAX_NDIM)
      return vp_fail(VP_ERR_UNSUPPORTED,
                     "%s: npy arrays of more than %d dimensions are not supported", c->name,
                     VP_MAX_NDIM);
    h->shape[n++] = v;
    skip_ws(c);
    trailing_comma = 0;
    if (c->p < c->end && *c->p == ',') {
      c->p++;
      trailing_comma = 1;
    }
  }
  /* (5) is the integer 5 in Python, not a tuple */
  if (n == 1 && !trailing_comma)
    return vp_fail(VP_ERR_FORMAT, "%s: npy header: bad shape tuple: (n) needs a comma, (n,)",
                   c->name);
  h->ndim = n;
  for (int a = 0; a < n; a++)
    if (h->shape[a] < 0)
      return vp_fail(VP_ERR_FORMAT, "%s: npy header: shape[%d] = %lld is negative", c->name, a,
                     (long long)h->shape[a]);
  return VP_OK;
}

static vp_status parse_dict(cursor *c, const unsigned char *base, vp_npy_header *h) {
  enum { HAVE_DESCR = 1, HAVE_FORTRAN = 2, HAVE_SHAPE = 4 };
  int have = 0;
  skip_ws(c);
  if (c->p >= c->end || *c->p != '{')
    return vp_fail(VP_ERR_FORMAT, "%s: npy header: expected '{' at byte %zu", c->name,
                   offset_of(c, base));
  c->p++;
  int need_sep = 0;
  for (;;) {
    skip_ws(c);
    if (c->p >= c->end)
      return vp_fail(VP_ERR_FORMAT, "%s: npy header: the dict is not closed with '}'", c->name);
    if (*c->p == '}') {
      c->p++;
      break;
    }
    if (need_sep)
      return vp_fail(VP_ERR_FORMAT, "%s: npy header: expected ',' or '}' at byte %zu", c->name,
                     offset_of(c, base));
    const unsigned char *key = NULL;
    size_t klen = 0;
    VP_TRY(parse_string(c, base, &key, &klen));
    skip_ws(c);
    if (c->p >= c->end || *c->p != ':')
      return vp_fail(VP_ERR_FORMAT, "%s: npy header: expected ':' after a key at byte %zu", c->name,
                     offset_of(c, base));
    c->p++;
    skip_ws(c);
    if (klen == 5 && memcmp(key, "descr", 5) == 0) {
      if (c->p < c->end && *c->p == '[')
        return vp_fail(VP_ERR_UNSUPPORTED,
                       "%s: unsupported npy dtype descr (a structured dtype, '[...]')", c->name);
      const unsigned char *d = NULL;
      size_t dlen = 0;
      VP_TRY(parse_string(c, base, &d, &dlen));
      VP_TRY(parse_descr(d, dlen, c->name, h));
      have |= HAVE_DESCR;
    } else if (klen == 13 && memcmp(key, "fortran_order", 13) == 0) {
      if (match_word(c, "True")) {
        h->fortran_order = 1;
      } else if (match_word(c, "False")) {
        h->fortran_order = 0;
      } else {
        return vp_fail(VP_ERR_FORMAT, "%s: npy header: 'fortran_order' is not True or False",
                       c->name);
      }
      have |= HAVE_FORTRAN;
    } else if (klen == 5 && memcmp(key, "shape", 5) == 0) {
      VP_TRY(parse_shape(c, base, h));
      have |= HAVE_SHAPE;
    } else {
      char shown[64];
      quote_for_message(key, klen, shown, sizeof shown);
      return vp_fail(VP_ERR_FORMAT, "%s: npy header: unexpected key '%s'", c->name, shown);
    }
    skip_ws(c);
    need_sep = 1;
    if (c->p < c->end && *c->p == ',') {
      c->p++;
      need_sep = 0;
    }
  }
  skip_ws(c);
  if (c->p != c->end)
    return vp_fail(VP_ERR_FORMAT, "%s: npy header: unexpected bytes after the dict at byte %zu",
                   c->name, offset_of(c, base));
  static const char *k_names[] = {"descr", "fortran_order", "shape"};
  for (int i = 0; i < 3; i++)
    if (!(have & (1 << i)))
      return vp_fail(VP_ERR_FORMAT, "%s: npy header: the key '%s' is missing", c->name, k_names[i]);
  return VP_OK;
}

vp_status vp_npy_parse_header(const void *buf, size_t n, uint64_t file_size, const char *name,
                              vp_npy_header *out) {
  if (!name) name = "(npy)";
  if (!buf || !out) return vp_fail(VP_ERR_INVALID_ARG, "%s: npy header: NULL argument", name);
  memset(out, 0, sizeof *out);
  const unsigned char *b = buf;
  if (n > file_size) n = (size_t)file_size;
  if (n < NPY_MAGIC_LEN + 2 || memcmp(b, NPY_MAGIC, NPY_MAGIC_LEN) != 0) {
    if (n >= NPY_MAGIC_LEN && memcmp(b, NPY_MAGIC, NPY_MAGIC_LEN) == 0)
      return vp_fail(VP_ERR_FORMAT, "%s: truncated npy file (%llu bytes, no version)", name,
                     (unsigned long long)file_size);
    return vp_fail(VP_ERR_FORMAT, "%s: not a .npy file (the magic \\x93NUMPY is missing)", name);
  }
  out->major = b[6];
  out->minor = b[7];
  if (!((out->major == 1 || out->major == 2 || out->major == 3) && out->minor == 0))
    return vp_fail(VP_ERR_UNSUPPORTED,
                   "%s: npy format version %d.%d is not supported (1.0, 2.0, 3.0 are)", name,
                   out->major, out->minor);
  size_t lenbytes = out->major == 1 ? 2 : 4;
  size_t pre = NPY_MAGIC_LEN + 2 + lenbytes;
  if (n < pre)
    return vp_fail(VP_ERR_FORMAT, "%s: truncated npy file: %llu bytes, shorter than the header",
                   name, (unsigned long long)file_size);
  uint64_t hlen = (uint64_t)b[8] | (uint64_t)b[9] << 8;
  if (lenbytes == 4) hlen |= (uint64_t)b[10] << 16 | (uint64_t)b[11] << 24;
  if (hlen > file_size - pre)
    return vp_fail(VP_ERR_FORMAT,
                   "%s: npy header_len %llu runs past the end of the file (%llu bytes)", name,
                   (unsigned long long)hlen, (unsigned long long)file_size);
  if (hlen > NPY_MAX_HEADER)
    return vp_fail(VP_ERR_UNSUPPORTED, "%s: npy header_len %llu is implausibly large", name,
                   (unsigned long long)hlen);
  if (hlen > n - pre)
    return vp_fail(VP_ERR_INVALID_ARG,
                   "%s: npy header: the buffer holds %zu bytes but the header needs %llu", name, n,
                   (unsigned long long)pre + hlen);
  cursor c = {b + pre, b + pre + hlen, name};
  VP_TRY(parse_dict(&c, b + pre, out));

  int64_t numel;
  vp_status st = vp_shape_numel(out->shape, out->ndim, &numel, "npy shape");
  if (st != VP_OK) return vp_fail_prefix(st, "%s", name);
  int64_t nbytes;
  if (vp_mul_overflows_i64(numel, (int64_t)vp_dtype_size(out->dtype), &nbytes))
    return vp_fail(VP_ERR_OVERFLOW, "%s: npy shape: %lld elements of %zu bytes overflow", name,
                   (long long)numel, vp_dtype_size(out->dtype));
  out->data_offset = pre + hlen;
  out->data_bytes = (uint64_t)nbytes;
  uint64_t avail = file_size - out->data_offset;
  if (out->data_bytes > avail)
    return vp_fail(VP_ERR_FORMAT,
                   "%s: truncated npy data: expected %llu bytes after the %llu-byte header, the "
                   "file has %llu",
                   name, (unsigned long long)out->data_bytes, (unsigned long long)out->data_offset,
                   (unsigned long long)avail);
  return VP_OK;
}
