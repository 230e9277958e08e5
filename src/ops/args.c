/* Operator arguments from JSON, checked against their specs. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/batch.h"
#include "core/status.h"
#include "ops/op.h"

/* The offending value, shortened, for messages. */
static void show(const json_t *v, char *buf, size_t n) {
  char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
  if (!s) {
    snprintf(buf, n, "(a JSON value)");
    return;
  }
  if (strlen(s) >= n && n > 4) {
    memcpy(buf, s, n - 4);
    strcpy(buf + n - 4, "...");
  } else {
    snprintf(buf, n, "%s", s);
  }
  free(s);
}

/* where: "" or " (sample 3)". */
static vp_status bad(const vp_op_desc *op, int idx, const char *where, const char *fmt,
                     const json_t *v) {
  char shown[48];
  show(v, shown, sizeof shown);
  char what[160];
  snprintf(what, sizeof what, fmt, shown);
  return vp_fail(VP_ERR_INVALID_ARG, "%s: argument '%s'%s: %s", op->name, op->args[idx].name,
                 where, what);
}

/* One number of a numeric argument: type and bounds. */
static vp_status number(const vp_op_desc *op, int idx, const char *where, const json_t *v,
                        int integral, double *out) {
  const vp_arg_spec *sp = &op->args[idx];
  double x;
  if (json_is_integer(v)) {
    x = (double)json_integer_value(v);
  } else if (json_is_real(v)) {
    x = json_real_value(v);
    if (!isfinite(x)) return bad(op, idx, where, "%s is not a finite number", v);
    if (integral && x != floor(x)) return bad(op, idx, where, "%s is not an integer", v);
  } else {
    return bad(op, idx, where, integral ? "expected an integer, got %s" : "expected a number, got %s",
               v);
  }
  if (integral && fabs(x) >= 9007199254740992.0)
    return bad(op, idx, where, "%s is too large (|value| < 2^53)", v);
  if (!(x >= sp->lo && x <= sp->hi)) {
    char fmt[96];
    snprintf(fmt, sizeof fmt, "%%s is outside [%.17g, %.17g]", sp->lo, sp->hi);
    return bad(op, idx, where, fmt, v);
  }
  *out = x;
  return VP_OK;
}

/* Index of `s` among the '|'-separated choices, -1 when absent. */
static int choice_index(const char *choices, const char *s) {
  size_t n = strlen(s);
  int k = 0;
  for (const char *p = choices; p && *p; k++) {
    const char *e = strchr(p, '|');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    if (len == n && !strncmp(p, s, n)) return k;
    p = e ? e + 1 : NULL;
  }
  return -1;
}

static vp_status parse_value(const vp_op_desc *op, int idx, const char *where, const json_t *v,
                             vp_arg_value *out) {
  const vp_arg_spec *sp = &op->args[idx];
  memset(out, 0, sizeof *out);
  out->len = 1;
  switch (sp->type) {
    case VP_ARG_INT: return number(op, idx, where, v, 1, &out->v[0]);
    case VP_ARG_FLOAT: return number(op, idx, where, v, 0, &out->v[0]);
    case VP_ARG_BOOL:
      if (json_is_boolean(v)) {
        out->v[0] = json_is_true(v);
        return VP_OK;
      }
      if (json_is_integer(v) && (json_integer_value(v) == 0 || json_integer_value(v) == 1)) {
        out->v[0] = (double)json_integer_value(v);
        return VP_OK;
      }
      return bad(op, idx, where, "expected true or false, got %s", v);
    case VP_ARG_ENUM: {
      int k = json_is_string(v) ? choice_index(sp->choices, json_string_value(v)) : -1;
      if (k < 0) {
        char fmt[160];
        snprintf(fmt, sizeof fmt, "%%s is not one of %s", sp->choices);
        return bad(op, idx, where, fmt, v);
      }
      out->v[0] = k;
      return VP_OK;
    }
    case VP_ARG_DTYPE: {
      vp_dtype t;
      if (!json_is_string(v) || vp_dtype_from_name(json_string_value(v), &t) != VP_OK)
        return bad(op, idx, where,
                   "%s is not a dtype (uint8 int8 uint16 int16 uint32 int32 int64 float16 "
                   "float32 float64)",
                   v);
      /* lo..hi bound the dtype's enum value (e.g. float types only) */
      if (sp->hi > sp->lo && !((double)t >= sp->lo && (double)t <= sp->hi)) {
        char fmt[160];
        int used = snprintf(fmt, sizeof fmt, "%%s is not allowed here (use one of");
        for (int d = (int)sp->lo; d <= (int)sp->hi && used > 0 && used < (int)sizeof fmt; d++)
          used += snprintf(fmt + used, sizeof fmt - (size_t)used, " %s", vp_dtype_name((vp_dtype)d));
        if (used > 0 && used < (int)sizeof fmt - 1) strcat(fmt, ")");
        return bad(op, idx, where, fmt, v);
      }
      out->v[0] = (double)t;
      return VP_OK;
    }
    case VP_ARG_INTS:
    case VP_ARG_FLOATS: {
      if (!json_is_array(v)) return bad(op, idx, where, "expected a list, got %s", v);
      size_t n = json_array_size(v);
      int max = sp->max_len > 0 && sp->max_len < VP_ARG_MAX_LEN ? sp->max_len : VP_ARG_MAX_LEN;
      size_t min = (sp->flags & VP_ARG_EMPTY_OK) ? 0 : 1;
      if (n < min || n > (size_t)max) {
        char fmt[96];
        snprintf(fmt, sizeof fmt, "%%s has %zu values, not %zu..%d", n, min, max);
        return bad(op, idx, where, fmt, v);
      }
      out->len = (int)n;
      for (size_t k = 0; k < n; k++)
        VP_TRY(number(op, idx, where, json_array_get(v, k), sp->type == VP_ARG_INTS, &out->v[k]));
      return VP_OK;
    }
  }
  return vp_fail(VP_ERR_INTERNAL, "%s: argument '%s' has an unknown type", op->name, sp->name);
}

vp_status vp_arg_parse(const vp_op_desc *op, int idx, const char *json, vp_arg_value *out) {
  if (!op || !json || !out || idx < 0 || idx >= op->num_args)
    return vp_fail(VP_ERR_INVALID_ARG, "arg_parse: bad argument");
  json_error_t err;
  json_t *v = json_loads(json, JSON_DECODE_ANY, &err);
  if (!v)
    return vp_fail(VP_ERR_INVALID_ARG, "%s: argument '%s': %s is not JSON: %s", op->name,
                   op->args[idx].name, json, err.text);
  vp_status s = parse_value(op, idx, "", v, out);
  json_decref(v);
  return s;
}

/* The allocation behind vp_op_args: constants in place, per-sample arrays
 * separately (sized by the JSON list, which the caller has read already). */
typedef struct argset {
  vp_op_args args; /* first: vp_op_args_free casts back */
  vp_arg_value consts[VP_OP_MAX_ARGS];
} argset;

void vp_op_args_free(vp_op_args *a) {
  if (!a) return;
  for (int k = 0; k < VP_OP_MAX_ARGS; k++)
    if (a->per_sample[k]) free((void *)a->vals[k]);
  free(a);
}

static void list_names(const vp_op_desc *op, char *buf, size_t n) {
  size_t used = 0;
  buf[0] = 0;
  for (int a = 0; a < op->num_args && used < n; a++) {
    int w = snprintf(buf + used, n - used, "%s%s", a ? ", " : "", op->args[a].name);
    if (w < 0) break;
    used += (size_t)w;
  }
  if (op->num_args == 0) snprintf(buf, n, "none");
}

static vp_status parse_one(const vp_op_desc *op, int a, const json_t *v, int64_t batch,
                           argset *set) {
  const vp_arg_spec *sp = &op->args[a];
  if (!json_is_object(v)) return parse_value(op, a, "", v, &set->consts[a]);
  json_t *list = json_object_get(v, "per_sample");
  if (!list || json_object_size(v) != 1)
    return bad(op, a, "", "%s: an object must be {\"per_sample\": [one value per sample]}", v);
  if (!(sp->flags & VP_ARG_PER_SAMPLE))
    return vp_fail(VP_ERR_INVALID_ARG, "%s: argument '%s' cannot vary per sample", op->name,
                   sp->name);
  if (!json_is_array(list) || (int64_t)json_array_size(list) != batch)
    return vp_fail(VP_ERR_INVALID_ARG,
                   "%s: argument '%s': per_sample needs a list of %lld values (one per sample)",
                   op->name, sp->name, (long long)batch);
  vp_arg_value *vals = malloc((size_t)batch * sizeof *vals);
  if (!vals) return vp_fail(VP_ERR_NOMEM, "%s: argument '%s': out of memory", op->name, sp->name);
  set->args.vals[a] = vals;
  set->args.per_sample[a] = 1;
  for (int64_t i = 0; i < batch; i++) {
    char where[40];
    snprintf(where, sizeof where, " (sample %lld)", (long long)i);
    VP_TRY(parse_value(op, a, where, json_array_get(list, (size_t)i), &vals[i]));
  }
  return VP_OK;
}

static vp_status parse_object(const vp_op_desc *op, const json_t *obj, int64_t batch,
                              argset *set, int *given) {
  const char *key;
  json_t *v;
  json_object_foreach((json_t *)obj, key, v) {
    int a = vp_op_arg_index(op, key);
    if (a < 0) {
      char names[512];
      list_names(op, names, sizeof names);
      return vp_fail(VP_ERR_INVALID_ARG, "%s: unknown argument '%s' (valid: %s)", op->name, key,
                     names);
    }
    given[a] = 1;
    VP_TRY(parse_one(op, a, v, batch, set));
  }
  return VP_OK;
}

/* The last object key before byte `pos` of the text that names one of the
 * op's arguments (-1 when none): where a JSON syntax error sits. */
static int key_before(const vp_op_desc *op, const char *text, size_t pos) {
  int found = -1;
  size_t n = strlen(text);
  if (pos > n) pos = n;
  for (size_t i = 0; i < pos; i++) {
    if (text[i] != '"') continue;
    size_t start = ++i;
    while (i < n && text[i] != '"') i += text[i] == '\\' ? 2 : 1;
    if (i >= n) break;
    size_t len = i - start, j = i + 1;
    while (j < n && (text[j] == ' ' || text[j] == '\t' || text[j] == '\n' || text[j] == '\r')) j++;
    if (j >= n || text[j] != ':' || len >= 64) continue;
    char key[64];
    memcpy(key, text + start, len);
    key[len] = '\0';
    int a = vp_op_arg_index(op, key);
    if (a >= 0) found = a;
  }
  return found;
}

vp_status vp_op_args_parse(const vp_op_desc *op, const char *json, int64_t batch,
                           vp_op_args **out) {
  if (!op || !out) return vp_fail(VP_ERR_INVALID_ARG, "args: NULL argument");
  *out = NULL;
  if (op->num_args > VP_OP_MAX_ARGS)
    return vp_fail(VP_ERR_INTERNAL, "%s: %d arguments exceed %d", op->name, op->num_args,
                   VP_OP_MAX_ARGS);
  if (batch < 1 || batch > VP_BATCH_MAX_SAMPLES)
    return vp_fail(VP_ERR_INVALID_ARG, "%s: batch %lld is outside 1..%d", op->name,
                   (long long)batch, VP_BATCH_MAX_SAMPLES);
  argset *set = calloc(1, sizeof *set);
  if (!set) return vp_fail(VP_ERR_NOMEM, "%s: arguments: out of memory", op->name);
  for (int a = 0; a < VP_OP_MAX_ARGS; a++) set->args.vals[a] = &set->consts[a];
  int given[VP_OP_MAX_ARGS] = {0};
  vp_status s = VP_OK;
  const char *p = json;
  while (p && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
  if (p && *p) {
    json_error_t err;
    json_t *obj = json_loads(json, 0, &err);
    if (!obj) {
      /* NaN, Infinity and 1e999 are not JSON: name the argument they sit in */
      int a = key_before(op, json, err.position);
      if (a >= 0)
        s = vp_fail(VP_ERR_INVALID_ARG,
                    "%s: argument '%s': the value is not valid JSON: %s (line %d, column %d; "
                    "NaN and Infinity are not JSON numbers)",
                    op->name, op->args[a].name, err.text, err.line, err.column);
      else
        s = vp_fail(VP_ERR_INVALID_ARG,
                    "%s: arguments are not a JSON object: %s (line %d, column %d)", op->name,
                    err.text, err.line, err.column);
    } else {
      if (!json_is_object(obj))
        s = vp_fail(VP_ERR_INVALID_ARG, "%s: arguments must be a JSON object", op->name);
      else
        s = parse_object(op, obj, batch, set, given);
      json_decref(obj);
    }
  }
  for (int a = 0; a < op->num_args && s == VP_OK; a++) {
    if (given[a]) continue;
    if (!op->args[a].def)
      s = vp_fail(VP_ERR_INVALID_ARG, "%s: argument '%s' is required", op->name, op->args[a].name);
    else
      s = vp_arg_parse(op, a, op->args[a].def, &set->consts[a]);
  }
  if (s != VP_OK) {
    vp_op_args_free(&set->args);
    return s;
  }
  *out = &set->args;
  return VP_OK;
}
