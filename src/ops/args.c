/* Operator arguments, checked against their specs: from JSON text (the
 * pipeline files, the C API) or from values a binding already holds
 * (vp_arg_item: no numbers printed and parsed again). Both forms go
 * through the same checks below, so they accept the same values and
 * word their messages alike. */
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/batch.h"
#include "core/status.h"
#include "ops/op.h"

/* A value as the user gave it, for messages: a JSON value, a string, or
 * numbers (a list when `list`). */
typedef struct shown {
  const json_t *j;
  const char *s;
  const double *x;
  int n, list;
} shown;

static void show(const shown *v, char *buf, size_t n) {
  if (v->j) {
    char *s = json_dumps(v->j, JSON_ENCODE_ANY | JSON_COMPACT);
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
    return;
  }
  if (v->s) {
    snprintf(buf, n, "\"%s\"", v->s);
    return;
  }
  size_t used = 0;
  for (int k = 0; k < v->n && used + 1 < n; k++) {
    int w = snprintf(buf + used, n - used, "%s%.17g", k ? ", " : (v->list ? "[" : ""), v->x[k]);
    if (w < 0) break;
    used += (size_t)w;
  }
  if (v->n == 0) used = (size_t)snprintf(buf, n, v->list ? "[" : "");
  if (v->list && used + 1 < n) snprintf(buf + used, n - used, "]");
  if (used + 1 >= n && n > 4) strcpy(buf + n - 4, "...");
}

/* where: the sample of a per-sample value, -1 for one value for all. */
static vp_status bad(const vp_op_desc *op, int idx, int64_t where, const char *fmt,
                     const shown *v) {
  char text[48];
  show(v, text, sizeof text);
  char what[160];
  snprintf(what, sizeof what, fmt, text);
  char at[40] = "";
  if (where >= 0) snprintf(at, sizeof at, " (sample %lld)", (long long)where);
  return vp_fail(VP_ERR_INVALID_ARG, "%s: argument '%s'%s: %s", op->name, op->args[idx].name, at,
                 what);
}

/* One number of a numeric argument: bounds, and integrality for integer
 * arguments (`integer`: it was written as an integer, so exact). */
static vp_status number(const vp_op_desc *op, int idx, int64_t where, double x, int integer,
                        const shown *v, double *out) {
  const vp_arg_spec *sp = &op->args[idx];
  const int integral = sp->type == VP_ARG_INT || sp->type == VP_ARG_INTS;
  if (!integer) {
    if (!isfinite(x)) return bad(op, idx, where, "%s is not a finite number", v);
    if (integral && x != floor(x)) return bad(op, idx, where, "%s is not an integer", v);
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

static vp_status not_number(const vp_op_desc *op, int idx, int64_t where, const shown *v) {
  const vp_arg_type t = op->args[idx].type;
  return bad(op, idx, where,
             t == VP_ARG_INT || t == VP_ARG_INTS ? "expected an integer, got %s"
                                                 : "expected a number, got %s",
             v);
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

/* ENUM and DTYPE arguments: `s` is the string given, NULL when the value
 * was not a string. */
static vp_status named(const vp_op_desc *op, int idx, int64_t where, const char *s, const shown *v,
                       double *out) {
  const vp_arg_spec *sp = &op->args[idx];
  if (sp->type == VP_ARG_ENUM) {
    int k = s ? choice_index(sp->choices, s) : -1;
    if (k < 0) {
      char fmt[160];
      snprintf(fmt, sizeof fmt, "%%s is not one of %s", sp->choices);
      return bad(op, idx, where, fmt, v);
    }
    *out = k;
    return VP_OK;
  }
  vp_dtype t;
  if (!s || vp_dtype_from_name(s, &t) != VP_OK)
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
  *out = (double)t;
  return VP_OK;
}

/* The length of a list argument. */
static vp_status list_len(const vp_op_desc *op, int idx, int64_t where, size_t n, const shown *v) {
  const vp_arg_spec *sp = &op->args[idx];
  int max = sp->max_len > 0 && sp->max_len < VP_ARG_MAX_LEN ? sp->max_len : VP_ARG_MAX_LEN;
  size_t min = (sp->flags & VP_ARG_EMPTY_OK) ? 0 : 1;
  if (n < min || n > (size_t)max) {
    char fmt[96];
    snprintf(fmt, sizeof fmt, "%%s has %zu values, not %zu..%d", n, min, max);
    return bad(op, idx, where, fmt, v);
  }
  return VP_OK;
}

static vp_status json_number(const vp_op_desc *op, int idx, int64_t where, const json_t *v,
                             double *out) {
  const shown sv = {.j = v};
  if (json_is_integer(v)) return number(op, idx, where, (double)json_integer_value(v), 1, &sv, out);
  if (json_is_real(v)) return number(op, idx, where, json_real_value(v), 0, &sv, out);
  return not_number(op, idx, where, &sv);
}

static vp_status parse_value(const vp_op_desc *op, int idx, int64_t where, const json_t *v,
                             vp_arg_value *out) {
  const vp_arg_spec *sp = &op->args[idx];
  const shown sv = {.j = v};
  memset(out, 0, sizeof *out);
  out->len = 1;
  switch (sp->type) {
    case VP_ARG_INT:
    case VP_ARG_FLOAT: return json_number(op, idx, where, v, &out->v[0]);
    case VP_ARG_BOOL:
      if (json_is_boolean(v)) {
        out->v[0] = json_is_true(v);
        return VP_OK;
      }
      if (json_is_integer(v) && (json_integer_value(v) == 0 || json_integer_value(v) == 1)) {
        out->v[0] = (double)json_integer_value(v);
        return VP_OK;
      }
      return bad(op, idx, where, "expected true or false, got %s", &sv);
    case VP_ARG_ENUM:
    case VP_ARG_DTYPE:
      return named(op, idx, where, json_is_string(v) ? json_string_value(v) : NULL, &sv,
                   &out->v[0]);
    case VP_ARG_INTS:
    case VP_ARG_FLOATS: {
      if (!json_is_array(v)) return bad(op, idx, where, "expected a list, got %s", &sv);
      size_t n = json_array_size(v);
      VP_TRY(list_len(op, idx, where, n, &sv));
      out->len = (int)n;
      for (size_t k = 0; k < n; k++)
        VP_TRY(json_number(op, idx, where, json_array_get(v, k), &out->v[k]));
      return VP_OK;
    }
  }
  return vp_fail(VP_ERR_INTERNAL, "%s: argument '%s' has an unknown type", op->name, sp->name);
}

/* One sample's value of an item: x[0..n) (or its string). */
static vp_status item_value(const vp_op_desc *op, int idx, int64_t where, const vp_arg_item *it,
                            const double *x, int n, vp_arg_value *out) {
  const vp_arg_spec *sp = &op->args[idx];
  const int list = (it->flags & VP_ARG_ITEM_LIST) != 0,
            integer = (it->flags & VP_ARG_ITEM_INTEGER) != 0;
  const shown sv = {.s = it->string, .x = x, .n = it->string ? 0 : n, .list = list};
  memset(out, 0, sizeof *out);
  out->len = 1;
  switch (sp->type) {
    case VP_ARG_INT:
    case VP_ARG_FLOAT:
      if (it->string || list || n != 1) return not_number(op, idx, where, &sv);
      return number(op, idx, where, x[0], integer, &sv, &out->v[0]);
    case VP_ARG_BOOL:
      if (!it->string && !list && n == 1 &&
          ((it->flags & VP_ARG_ITEM_BOOL) || (integer && (x[0] == 0 || x[0] == 1)))) {
        out->v[0] = x[0];
        return VP_OK;
      }
      return bad(op, idx, where, "expected true or false, got %s", &sv);
    case VP_ARG_ENUM:
    case VP_ARG_DTYPE: return named(op, idx, where, it->string, &sv, &out->v[0]);
    case VP_ARG_INTS:
    case VP_ARG_FLOATS:
      if (it->string || !list) return bad(op, idx, where, "expected a list, got %s", &sv);
      VP_TRY(list_len(op, idx, where, (size_t)n, &sv));
      out->len = n;
      for (int k = 0; k < n; k++) {
        const shown one = {.x = &x[k], .n = 1};
        VP_TRY(number(op, idx, where, x[k], integer, &one, &out->v[k]));
      }
      return VP_OK;
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
  vp_status s = parse_value(op, idx, -1, v, out);
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

static vp_status unknown_arg(const vp_op_desc *op, const char *key) {
  char names[512];
  list_names(op, names, sizeof names);
  return vp_fail(VP_ERR_INVALID_ARG, "%s: unknown argument '%s' (valid: %s)", op->name, key, names);
}

/* Argument a is one value for all samples (given twice: the last wins). */
static vp_arg_value *constant_slot(argset *set, int a) {
  if (set->args.per_sample[a]) free((void *)set->args.vals[a]);
  set->args.per_sample[a] = 0;
  set->args.vals[a] = &set->consts[a];
  return &set->consts[a];
}

/* Argument a varies per sample, with `given` values (-1: not a list). */
static vp_status per_sample_values(const vp_op_desc *op, int a, int64_t given, int64_t batch,
                                   argset *set, vp_arg_value **vals) {
  const vp_arg_spec *sp = &op->args[a];
  if (!(sp->flags & VP_ARG_PER_SAMPLE))
    return vp_fail(VP_ERR_INVALID_ARG, "%s: argument '%s' cannot vary per sample", op->name,
                   sp->name);
  if (given != batch)
    return vp_fail(VP_ERR_INVALID_ARG,
                   "%s: argument '%s': per_sample needs a list of %lld values (one per sample)",
                   op->name, sp->name, (long long)batch);
  constant_slot(set, a);
  *vals = malloc((size_t)batch * sizeof **vals);
  if (!*vals) return vp_fail(VP_ERR_NOMEM, "%s: argument '%s': out of memory", op->name, sp->name);
  set->args.vals[a] = *vals;
  set->args.per_sample[a] = 1;
  return VP_OK;
}

static vp_status parse_one(const vp_op_desc *op, int a, const json_t *v, int64_t batch,
                           argset *set) {
  if (!json_is_object(v)) return parse_value(op, a, -1, v, constant_slot(set, a));
  json_t *list = json_object_get(v, "per_sample");
  if (!list || json_object_size(v) != 1) {
    const shown sv = {.j = v};
    return bad(op, a, -1, "%s: an object must be {\"per_sample\": [one value per sample]}", &sv);
  }
  vp_arg_value *vals;
  VP_TRY(per_sample_values(op, a, json_is_array(list) ? (int64_t)json_array_size(list) : -1, batch,
                           set, &vals));
  for (int64_t i = 0; i < batch; i++) {
    VP_TRY(parse_value(op, a, i, json_array_get(list, (size_t)i), &vals[i]));
  }
  return VP_OK;
}

static vp_status parse_object(const vp_op_desc *op, const json_t *obj, int64_t batch,
                              argset *set, int *given) {
  const char *key;
  json_t *v;
  json_object_foreach((json_t *)obj, key, v) {
    int a = vp_op_arg_index(op, key);
    if (a < 0) return unknown_arg(op, key);
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

static vp_status args_begin(const vp_op_desc *op, int64_t batch, argset **out) {
  *out = NULL;
  if (op->num_args > VP_OP_MAX_ARGS)
    return vp_fail(VP_ERR_INTERNAL, "%s: %d arguments exceed %d", op->name, op->num_args,
                   VP_OP_MAX_ARGS);
  if (batch < 1 || batch > VP_BATCH_MAX_SAMPLES)
    return vp_fail(VP_ERR_INVALID_ARG, "%s: batch %lld is outside 1..%d", op->name,
                   (long long)batch, VP_BATCH_MAX_SAMPLES);
  argset *set = malloc(sizeof *set);
  if (!set) return vp_fail(VP_ERR_NOMEM, "%s: arguments: out of memory", op->name);
  for (int a = 0; a < VP_OP_MAX_ARGS; a++) {
    set->args.vals[a] = &set->consts[a];
    set->args.per_sample[a] = 0;
  }
  *out = set;
  return VP_OK;
}

/* Every registered operator's defaults, parsed once (the registry is
 * fixed): an eager call no longer parses them from JSON each time. */
static pthread_once_t defaults_once = PTHREAD_ONCE_INIT;
static vp_arg_value *defaults; /* registry index * VP_OP_MAX_ARGS + argument */
static unsigned char *default_ok;

static void defaults_init(void) {
  const int n = vp_op_registry_count();
  defaults = calloc((size_t)n * VP_OP_MAX_ARGS, sizeof *defaults);
  default_ok = calloc((size_t)n * VP_OP_MAX_ARGS, 1);
  if (!defaults || !default_ok) {
    free(defaults);
    free(default_ok);
    defaults = NULL;
    default_ok = NULL;
    return;
  }
  for (int i = 0; i < n; i++) {
    const vp_op_desc *op = vp_op_registry_at(i);
    for (int a = 0; a < op->num_args && a < VP_OP_MAX_ARGS; a++)
      if (op->args[a].def)
        default_ok[i * VP_OP_MAX_ARGS + a] =
            vp_arg_parse(op, a, op->args[a].def, &defaults[i * VP_OP_MAX_ARGS + a]) == VP_OK;
  }
  vp_clear_error();
}

/* Argument a's default (parsed now when the cache has none). */
static vp_status default_value(const vp_op_desc *op, int a, vp_arg_value *out) {
  pthread_once(&defaults_once, defaults_init);
  const int n = defaults ? vp_op_registry_count() : 0;
  for (int i = 0; i < n; i++)
    if (vp_op_registry_at(i) == op) {
      if (!default_ok[i * VP_OP_MAX_ARGS + a]) break;
      *out = defaults[i * VP_OP_MAX_ARGS + a];
      return VP_OK;
    }
  return vp_arg_parse(op, a, op->args[a].def, out);
}

/* Defaults for the arguments not given, then hands the set out. */
static vp_status args_end(const vp_op_desc *op, argset *set, const int *given, vp_status s,
                          vp_op_args **out) {
  for (int a = 0; a < op->num_args && s == VP_OK; a++) {
    if (given[a]) continue;
    if (!op->args[a].def)
      s = vp_fail(VP_ERR_INVALID_ARG, "%s: argument '%s' is required", op->name, op->args[a].name);
    else
      s = default_value(op, a, &set->consts[a]);
  }
  if (s != VP_OK) {
    vp_op_args_free(&set->args);
    return s;
  }
  *out = &set->args;
  return VP_OK;
}

vp_status vp_op_args_parse(const vp_op_desc *op, const char *json, int64_t batch,
                           vp_op_args **out) {
  if (!op || !out) return vp_fail(VP_ERR_INVALID_ARG, "args: NULL argument");
  *out = NULL;
  argset *set;
  VP_TRY(args_begin(op, batch, &set));
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
  return args_end(op, set, given, s, out);
}

static vp_status parse_item(const vp_op_desc *op, const vp_arg_item *it, int64_t batch, argset *set,
                            int *given) {
  if (!it->name) return vp_fail(VP_ERR_INVALID_ARG, "%s: an argument item has no name", op->name);
  const int a = vp_op_arg_index(op, it->name);
  if (a < 0) return unknown_arg(op, it->name);
  given[a] = 1;
  if (!it->lens) {
    if (it->len < 0 || it->len > VP_ARG_MAX_LEN * 4 || (it->len > 0 && !it->values && !it->string))
      return vp_fail(VP_ERR_INVALID_ARG, "%s: argument '%s': %d values", op->name, it->name,
                     (int)it->len);
    return item_value(op, a, -1, it, it->values, it->len, constant_slot(set, a));
  }
  vp_arg_value *vals;
  VP_TRY(per_sample_values(op, a, batch, batch, set, &vals));
  if (it->string)
    return vp_fail(VP_ERR_INVALID_ARG, "%s: argument '%s': per-sample strings are not supported",
                   op->name, it->name);
  int64_t at = 0;
  for (int64_t i = 0; i < batch; i++) {
    if (it->lens[i] < 0 || it->lens[i] > VP_ARG_MAX_LEN * 4 || (it->lens[i] > 0 && !it->values))
      return vp_fail(VP_ERR_INVALID_ARG, "%s: argument '%s': %d values for sample %lld", op->name,
                     it->name, (int)it->lens[i], (long long)i);
    VP_TRY(item_value(op, a, i, it, it->values + at, it->lens[i], &vals[i]));
    at += it->lens[i];
  }
  return VP_OK;
}

vp_status vp_op_args_from_items(const vp_op_desc *op, const vp_arg_item *items, int n,
                                int64_t batch, vp_op_args **out) {
  if (!op || !out || n < 0 || (n > 0 && !items))
    return vp_fail(VP_ERR_INVALID_ARG, "args: NULL argument");
  *out = NULL;
  argset *set;
  VP_TRY(args_begin(op, batch, &set));
  int given[VP_OP_MAX_ARGS] = {0};
  vp_status s = VP_OK;
  for (int k = 0; k < n && s == VP_OK; k++) s = parse_item(op, &items[k], batch, set, given);
  return args_end(op, set, given, s, out);
}
