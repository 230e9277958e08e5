/* Argument validation over the whole registry: for every operator and every
 * argument, values out of bounds, NaN/Infinity, wrong types, lists too long
 * or empty, per-sample lists of the wrong batch size and objects of the
 * wrong form are refused with VP_ERR_INVALID_ARG and a message naming the
 * operator and the argument. Then every size-bearing argument at its
 * extremes on a tiny input: no crash, and either a small output or an error
 * naming the operator, refused before any allocation larger than the test's
 * limit (the allocation hook in src/core/memory.h).
 *
 * The specs are the oracle: each bad value is derived from the spec's own
 * bounds and type, so a new operator is covered without editing this file
 * (only required arguments need a valid value, from base_value below or a
 * generic one derived from the spec). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/memory.h"
#include "ops/op.h"
#include "testutil.h"

#define DOC_CAP 4096

/* Valid values of required arguments that a spec alone cannot produce. */
static const char *const k_base[][3] = {
    {"cast", "dtype", "\"float32\""},
    {"choice", "values", "[1, 2]"},
    {"crop_or_pad", "shape", "[3, 3, 3]"},
    {"elastic_grid", "shape", "[4, 4, 4]"},
    {"random_spatial", "patch", "[3, 3, 3]"},
    {"resample_spacing", "spacing", "[1]"},
    {"rotate", "angle", "10"},
    {"slice", "shape", "[2, 2, 2]"},
    {"transform_rotation", "angle", "10"},
    {"transform_scale", "scale", "[2]"},
    {"transform_shear", "shear", "[0.1, 0, 0, 0, 0, 0]"},
    {"transform_translation", "offset", "[1, 2, 3]"},
    {"transpose", "perm", "[0, 1, 2]"},
    {"warp_affine", "matrix", "[1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0]"},
    {"zoom", "scale", "[1.5]"},
};

/* Arguments given to every call of an op (valid values for arguments that
 * have defaults but of which the op needs one). */
static const char *const k_always[][3] = {
    {"pad", "before", "[1]"},
    {"slice", "anchor", "[0, 0, 0]"},
    {"one_hot", "num_classes", "3"},
};

static double clampd(double v, double lo, double hi) { return v < lo ? lo : v > hi ? hi : v; }

/* A value inside the spec (the default when there is one). */
static void valid_value(const vp_op_desc *op, int a, char *buf, size_t n) {
  const vp_arg_spec *sp = &op->args[a];
  for (size_t k = 0; k < sizeof k_base / sizeof k_base[0]; k++)
    if (!strcmp(k_base[k][0], op->name) && !strcmp(k_base[k][1], sp->name)) {
      snprintf(buf, n, "%s", k_base[k][2]);
      return;
    }
  if (sp->def) {
    snprintf(buf, n, "%s", sp->def);
    return;
  }
  double v = clampd(1, sp->lo, sp->hi);
  switch (sp->type) {
    case VP_ARG_INT: snprintf(buf, n, "%.0f", ceil(v)); return;
    case VP_ARG_FLOAT: snprintf(buf, n, "%.17g", v); return;
    case VP_ARG_BOOL: snprintf(buf, n, "false"); return;
    case VP_ARG_DTYPE: snprintf(buf, n, "\"float32\""); return;
    case VP_ARG_ENUM: {
      const char *e = strchr(sp->choices, '|');
      int len = e ? (int)(e - sp->choices) : (int)strlen(sp->choices);
      snprintf(buf, n, "\"%.*s\"", len, sp->choices);
      return;
    }
    case VP_ARG_INTS: snprintf(buf, n, "[%.0f]", ceil(v)); return;
    case VP_ARG_FLOATS: snprintf(buf, n, "[%.17g]", v); return;
  }
}

/* {"<required args>", plus "name": value} (value NULL: the required ones only). */
static void args_doc(const vp_op_desc *op, int a, const char *value, char *doc) {
  size_t used = (size_t)snprintf(doc, DOC_CAP, "{");
  for (int k = 0; k < op->num_args; k++) {
    const char *always = NULL;
    for (size_t j = 0; j < sizeof k_always / sizeof k_always[0]; j++)
      if (!strcmp(k_always[j][0], op->name) && !strcmp(k_always[j][1], op->args[k].name))
        always = k_always[j][2];
    if (k == a || (op->args[k].def && !always)) continue;
    char v[512];
    if (always)
      snprintf(v, sizeof v, "%s", always);
    else
      valid_value(op, k, v, sizeof v);
    used += (size_t)snprintf(doc + used, DOC_CAP - used, "%s\"%s\": %s", used > 1 ? ", " : "",
                             op->args[k].name, v);
  }
  if (a >= 0 && value)
    used += (size_t)snprintf(doc + used, DOC_CAP - used, "%s\"%s\": %s", used > 1 ? ", " : "",
                             op->args[a].name, value);
  snprintf(doc + used, DOC_CAP - used, "}");
}

static int g_failures;

static void expect_refused(const vp_op_desc *op, int a, const char *doc, int64_t batch) {
  vp_op_args *args = NULL;
  vp_status s = vp_op_args_parse(op, doc, batch, &args);
  const char *msg = vp_last_error();
  char quoted[80];
  snprintf(quoted, sizeof quoted, "'%s'", op->args[a].name);
  if (s == VP_OK) {
    printf("FAIL %s.%s: %s accepted\n", op->name, op->args[a].name, doc);
    vp_op_args_free(args);
    g_failures++;
  } else if (s != VP_ERR_INVALID_ARG || !strstr(msg, op->name) || !strstr(msg, quoted)) {
    printf("FAIL %s.%s: %s -> %s: \"%s\" (wants INVALID_ARG naming the op and the argument)\n",
           op->name, op->args[a].name, doc, vp_status_name(s), msg);
    g_failures++;
  }
  assert_null(args);
}

/* A list of `count` copies of `elem`. */
static void repeat(char *buf, size_t n, const char *elem, int count) {
  size_t used = (size_t)snprintf(buf, n, "[");
  for (int i = 0; i < count && used < n; i++)
    used += (size_t)snprintf(buf + used, n - used, "%s%s", i ? ", " : "", elem);
  if (used < n) snprintf(buf + used, n - used, "]");
}

/* Bad values of argument a, from its spec. */
static int bad_values(const vp_op_desc *op, int a, char bad[][256], int cap) {
  const vp_arg_spec *sp = &op->args[a];
  int n = 0;
#define ADD(...) \
  if (n < cap) snprintf(bad[n++], 256, __VA_ARGS__)
  int numeric = sp->type == VP_ARG_INT || sp->type == VP_ARG_FLOAT;
  int list = sp->type == VP_ARG_INTS || sp->type == VP_ARG_FLOATS;
  int integral = sp->type == VP_ARG_INT || sp->type == VP_ARG_INTS;
  if (numeric || list) {
    char elems[6][64];
    int ne = 0;
    if (sp->lo > -1e300 && sp->lo > -9007199254740992.0)
      snprintf(elems[ne++], 64, "%.17g", sp->lo - (fabs(sp->lo) >= 1 ? fabs(sp->lo) : 1));
    if (sp->hi < 1e300 && sp->hi < 9007199254740992.0)
      snprintf(elems[ne++], 64, "%.17g", sp->hi + (fabs(sp->hi) >= 1 ? fabs(sp->hi) : 1));
    if (integral) snprintf(elems[ne++], 64, "%.17g", clampd(1, sp->lo, sp->hi - 1) + 0.5);
    snprintf(elems[ne++], 64, "\"7\"");
    snprintf(elems[ne++], 64, "null");
    for (int e = 0; e < ne; e++) {
      if (list) {
        ADD("[%s]", elems[e]);
      } else {
        ADD("%s", elems[e]);
      }
    }
    /* not JSON numbers: the parser itself refuses them */
    const char *inf[] = {"NaN", "Infinity", "-Infinity", "1e999", "nan"};
    for (int e = 0; e < 5; e++) {
      if (list) {
        ADD("[%s]", inf[e]);
      } else {
        ADD("%s", inf[e]);
      }
    }
    if (list) {
      int max = sp->max_len > 0 && sp->max_len < VP_ARG_MAX_LEN ? sp->max_len : VP_ARG_MAX_LEN;
      char one[64];
      snprintf(one, sizeof one, "%.17g", clampd(1, sp->lo, sp->hi));
      if (n < cap) repeat(bad[n++], 256, one, max + 1);
      if (n < cap) repeat(bad[n++], 256, one, 40);
      if (!(sp->flags & VP_ARG_EMPTY_OK)) ADD("[]");
      ADD("%s", one); /* a scalar where a list is due */
      ADD("[[%s]]", one);
    } else {
      ADD("[%.17g]", clampd(1, sp->lo, sp->hi)); /* a list where a scalar is due */
      ADD("true");
    }
  } else if (sp->type == VP_ARG_BOOL) {
    ADD("2");
    ADD("-1");
    ADD("0.5");
    ADD("\"true\"");
    ADD("null");
    ADD("[true]");
    ADD("NaN");
  } else if (sp->type == VP_ARG_ENUM) {
    ADD("\"no_such_choice\"");
    ADD("\"\"");
    ADD("0");
    ADD("null");
    ADD("[\"%.*s\"]", (int)strcspn(sp->choices, "|"), sp->choices);
  } else if (sp->type == VP_ARG_DTYPE) {
    ADD("\"complex64\"");
    ADD("\"float128\"");
    ADD("3");
    ADD("null");
    ADD("[\"float32\"]");
  }
#undef ADD
  return n;
}

/* The registry's specs are consistent (the oracle the rest relies on). */
static void test_specs(void **state) {
  (void)state;
  int nops = vp_op_registry_count();
  assert_true(nops > 10);
  for (int i = 0; i < nops; i++) {
    const vp_op_desc *op = vp_op_registry_at(i);
    assert_non_null(op->name);
    assert_non_null(op->infer);
    assert_non_null(op->run_cpu);
    assert_true(op->num_args >= 0 && op->num_args <= VP_OP_MAX_ARGS);
    for (int a = 0; a < op->num_args; a++) {
      const vp_arg_spec *sp = &op->args[a];
      if (!sp->name || !sp->doc || !*sp->doc)
        fail_msg("%s: argument %d lacks a name or doc", op->name, a);
      if (!(sp->lo <= sp->hi) && sp->type != VP_ARG_DTYPE)
        fail_msg("%s.%s: bounds [%g, %g] are empty", op->name, sp->name, sp->lo, sp->hi);
      if (sp->type == VP_ARG_ENUM && (!sp->choices || !*sp->choices))
        fail_msg("%s.%s: enum without choices", op->name, sp->name);
      if (sp->max_len > VP_ARG_MAX_LEN)
        fail_msg("%s.%s: max_len %d > %d", op->name, sp->name, sp->max_len, VP_ARG_MAX_LEN);
      for (int b = 0; b < a; b++)
        if (!strcmp(op->args[b].name, sp->name)) fail_msg("%s.%s: duplicate", op->name, sp->name);
      /* probabilities are bounded to [0, 1] */
      int prob =
          !strcmp(sp->name, "p") || !strncmp(sp->name, "p_", 2) || !strcmp(sp->name, "probability");
      if (prob && !(sp->lo >= 0 && sp->hi <= 1))
        fail_msg("%s.%s: a probability bounded by [%g, %g], not within [0, 1]", op->name, sp->name,
                 sp->lo, sp->hi);
      /* every default is valid under its own spec */
      if (sp->def) {
        vp_arg_value v;
        if (vp_arg_parse(op, a, sp->def, &v) != VP_OK)
          fail_msg("%s.%s: default %s is refused: %s", op->name, sp->name, sp->def,
                   vp_last_error());
      }
    }
    /* the required arguments alone make a valid call */
    char doc[DOC_CAP];
    args_doc(op, -1, NULL, doc);
    vp_op_args *args = NULL;
    if (vp_op_args_parse(op, doc, 3, &args) != VP_OK)
      fail_msg("%s: base arguments %s refused: %s", op->name, doc, vp_last_error());
    vp_op_args_free(args);
  }
}

/* Every bad value of every argument, as a constant and per sample. */
static void test_bad_values(void **state) {
  (void)state;
  g_failures = 0;
  int checked = 0;
  for (int i = 0; i < vp_op_registry_count(); i++) {
    const vp_op_desc *op = vp_op_registry_at(i);
    for (int a = 0; a < op->num_args; a++) {
      const vp_arg_spec *sp = &op->args[a];
      char bad[40][256];
      int nb = bad_values(op, a, bad, 40);
      char doc[DOC_CAP];
      for (int k = 0; k < nb; k++) {
        /* alone (the first bad key fails before required ones are missed) and
         * with the required arguments */
        snprintf(doc, sizeof doc, "{\"%s\": %s}", sp->name, bad[k]);
        expect_refused(op, a, doc, 1);
        args_doc(op, a, bad[k], doc);
        expect_refused(op, a, doc, 1);
        /* through the single-argument parser (per-sample values from nodes) */
        vp_arg_value v;
        vp_status s = vp_arg_parse(op, a, bad[k], &v);
        char quoted[80];
        snprintf(quoted, sizeof quoted, "'%s'", sp->name);
        if (s == VP_OK || !strstr(vp_last_error(), op->name) || !strstr(vp_last_error(), quoted)) {
          printf("FAIL %s.%s: vp_arg_parse(%s) -> %s: \"%s\"\n", op->name, sp->name, bad[k],
                 vp_status_name(s), vp_last_error());
          g_failures++;
        }
        /* one bad sample among good ones */
        if (sp->flags & VP_ARG_PER_SAMPLE) {
          char good[512], per[2048];
          valid_value(op, a, good, sizeof good);
          snprintf(per, sizeof per, "{\"per_sample\": [%s, %s, %s]}", good, bad[k], good);
          args_doc(op, a, per, doc);
          expect_refused(op, a, doc, 3);
        }
        checked++;
      }
      char good[512], per[2048];
      valid_value(op, a, good, sizeof good);
      /* per-sample lists of the wrong size, or for arguments that cannot vary */
      const char *forms[] = {
          "{\"per_sample\": [%s]}",   "{\"per_sample\": [%s, %s, %s, %s]}",
          "{\"per_sample\": %s}",     "{\"per_sample\": []}",
          "{\"nope\": [%s, %s, %s]}", "{\"per_sample\": [%s, %s, %s], \"x\": 1}"};
      for (int f = 0; f < 6; f++) {
        snprintf(per, sizeof per, forms[f], good, good, good, good);
        args_doc(op, a, per, doc);
        expect_refused(op, a, doc, 3);
        checked++;
      }
      /* the right form is accepted exactly when the spec allows it */
      snprintf(per, sizeof per, "{\"per_sample\": [%s, %s, %s]}", good, good, good);
      args_doc(op, a, per, doc);
      vp_op_args *args = NULL;
      vp_status s = vp_op_args_parse(op, doc, 3, &args);
      if ((sp->flags & VP_ARG_PER_SAMPLE) && s != VP_OK) {
        printf("FAIL %s.%s: per-sample %s refused: %s\n", op->name, sp->name, doc, vp_last_error());
        g_failures++;
      }
      if (!(sp->flags & VP_ARG_PER_SAMPLE)) {
        if (s == VP_OK) {
          printf("FAIL %s.%s: per-sample accepted but not allowed\n", op->name, sp->name);
          g_failures++;
        } else if (!strstr(vp_last_error(), sp->name)) {
          printf("FAIL %s.%s: message does not name the argument: %s\n", op->name, sp->name,
                 vp_last_error());
          g_failures++;
        }
      }
      vp_op_args_free(args);
      /* a valid value is accepted */
      args_doc(op, a, good, doc);
      s = vp_op_args_parse(op, doc, 2, &args);
      if (s != VP_OK) {
        printf("FAIL %s.%s: valid %s refused: %s\n", op->name, sp->name, doc, vp_last_error());
        g_failures++;
      }
      vp_op_args_free(args);
    }
    /* unknown arguments and documents that are no object */
    const char *docs[] = {"{\"no_such_arg\": 1}", "[1, 2]", "3", "{", "{\"a\": }", "null"};
    for (int k = 0; k < 6; k++) {
      vp_op_args *args = NULL;
      vp_status s = vp_op_args_parse(op, docs[k], 1, &args);
      if (s != VP_ERR_INVALID_ARG || !strstr(vp_last_error(), op->name) ||
          (k == 0 && !strstr(vp_last_error(), "no_such_arg"))) {
        printf("FAIL %s: %s -> %s: %s\n", op->name, docs[k], vp_status_name(s), vp_last_error());
        g_failures++;
      }
      assert_null(args);
    }
  }
  printf("%d bad argument documents checked over %d operators\n", checked, vp_op_registry_count());
  if (g_failures) fail_msg("%d argument checks failed (listed above)", g_failures);
}

/* ---- extremes through vp_ops_call ------------------------------------------- */

static vp_tensor *make(vp_dtype t, int ndim, const int64_t *shape) {
  vp_tensor *x = NULL;
  VP_ASSERT_OK(vp_tensor_create(t, ndim, shape, VP_MEM_HOST, 0, &x));
  memset(vp_tensor_data(x), 0, vp_tensor_nbytes(x));
  if (t == VP_F32) {
    float *f = vp_tensor_data(x);
    for (int64_t i = 0; i < vp_tensor_numel(x); i++) f[i] = (float)(i % 7);
  }
  return x;
}

/* Inputs for an op: the first candidate set the base call accepts. */
static int pick_inputs(const vp_op_desc *op, vp_tensor **in) {
  static const int64_t s3[3] = {5, 6, 7}, s4[4] = {1, 5, 6, 7}, m34[2] = {3, 4}, m44[2] = {4, 4};
  char doc[DOC_CAP];
  args_doc(op, -1, NULL, doc);
  for (int cand = 0; cand < 6; cand++) {
    for (int k = 0; k < op->num_inputs; k++) {
      switch (cand) {
        case 0: in[k] = make(VP_F32, 3, s3); break;
        case 1: in[k] = make(VP_F32, 4, s4); break;
        case 2: in[k] = k == 0 ? make(VP_F32, 4, s4) : make(VP_U8, 3, s3); break;
        case 3: in[k] = make(VP_F32, 2, m34); break;
        case 4: in[k] = make(VP_F32, 2, m44); break;
        default: in[k] = make(VP_U8, 3, s3); break; /* label maps */
      }
    }
    vp_tensor *out[VP_OP_MAX_IO] = {0};
    vp_status s = vp_ops_call(op->name, 1, in, doc, 1, out);
    for (int k = 0; k < op->num_outputs; k++) vp_tensor_release(out[k]);
    if (s == VP_OK) return 1;
    for (int k = 0; k < op->num_inputs; k++) vp_tensor_release(in[k]);
    if (op->num_inputs == 0) break;
  }
  return 0;
}

static void test_extremes(void **state) {
  (void)state;
  /* larger than any output these tiny inputs need with sane arguments */
  const size_t limit = (size_t)256 << 20;
  int failures = 0, calls = 0;
  for (int i = 0; i < vp_op_registry_count(); i++) {
    const vp_op_desc *op = vp_op_registry_at(i);
    vp_tensor *in[VP_OP_MAX_IO] = {0};
    if (!pick_inputs(op, in)) {
      printf("NOTE %s: no base call succeeds (%s); extremes not checked\n", op->name,
             vp_last_error());
      continue;
    }
    for (int a = 0; a < op->num_args; a++) {
      const vp_arg_spec *sp = &op->args[a];
      int list = sp->type == VP_ARG_INTS || sp->type == VP_ARG_FLOATS;
      if (!list && sp->type != VP_ARG_INT && sp->type != VP_ARG_FLOAT) continue;
      int max = sp->max_len > 0 && sp->max_len < VP_ARG_MAX_LEN ? sp->max_len : VP_ARG_MAX_LEN;
      double ends[2] = {sp->lo, sp->hi};
      for (int e = 0; e < 2; e++) {
        for (int len = 1; len <= (list ? max : 1); len += (max > 1 ? max - 1 : 1)) {
          char elem[64], val[1024], doc[DOC_CAP];
          snprintf(elem, sizeof elem,
                   sp->type == VP_ARG_INT || sp->type == VP_ARG_INTS ? "%.0f" : "%.17g", ends[e]);
          if (list) {
            repeat(val, sizeof val, elem, len);
          } else {
            snprintf(val, sizeof val, "%s", elem);
          }
          args_doc(op, a, val, doc);
          vp_tensor *out[VP_OP_MAX_IO] = {0};
          vp_debug_fail_alloc_larger_than(limit);
          vp_status s = vp_ops_call(op->name, 1, in, doc, 7, out);
          vp_debug_fail_alloc_larger_than(0);
          calls++;
          const char *msg = vp_last_error();
          if (s == VP_OK) {
            for (int k = 0; k < op->num_outputs; k++) vp_tensor_release(out[k]);
            continue;
          }
          for (int k = 0; k < op->num_outputs; k++) assert_null(out[k]);
          if (!strstr(msg, op->name)) {
            printf("FAIL %s: %s -> %s: message does not name the operator: %s\n", op->name, doc,
                   vp_status_name(s), msg);
            failures++;
          } else if (strstr(msg, "(injected fault)")) {
            /* reached the allocator with a size over the limit: declared but not checked */
            printf("REPORT %s.%s = %s: no size check before allocating: %s\n", op->name, sp->name,
                   val, msg);
          }
        }
      }
    }
    for (int k = 0; k < op->num_inputs; k++) vp_tensor_release(in[k]);
  }
  printf("%d extreme-argument calls\n", calls);
  if (failures) fail_msg("%d extreme-argument calls failed (listed above)", failures);
}

/* Shapes whose products overflow or exceed memory fail before allocating,
 * with a message naming the operator. */
static void test_huge_outputs(void **state) {
  (void)state;
  int64_t s3[3] = {4, 4, 4};
  vp_tensor *x = make(VP_F32, 3, s3);
  struct {
    const char *op, *args;
  } cases[] = {
      {"pad", "{\"before\": [1099511627776, 0, 0]}"}, /* 2^40 * 16 voxels */
      {"pad", "{\"after\": [1099511627776]}"},        /* overflows 64 bits */
      {"pad", "{\"shape\": [1099511627776, 1099511627776, 1]}"},
      {"crop_or_pad", "{\"shape\": [1099511627776, 1099511627776, 1099511627776]}"},
      {"resize", "{\"size\": [1000000000, 1000000000, 1000000000]}"},
      {"resize", "{\"scale\": [1000000]}"},
      {"slice",
       "{\"anchor\": [0, 0, 0], \"shape\": [1099511627776, 4, 4], "
       "\"out_of_bounds_policy\": \"pad\"}"},
      {"warp_affine",
       "{\"matrix\": [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0], \"size\": [1000000000, "
       "1000000000, 1000000000]}"},
      {"resample_spacing", "{\"spacing\": [1e-9]}"},
      {"random_spatial", "{\"patch\": [1000000, 1000000, 1000000]}"},
      {"elastic_grid", "{\"shape\": [1000000000, 1000000000, 1000000000], \"grid_spacing\": [1]}"},
  };
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    if (!vp_op_lookup(cases[k].op)) continue;
    const vp_op_desc *op = vp_op_lookup(cases[k].op);
    vp_tensor *ins[VP_OP_MAX_IO] = {x, x, x, x};
    if (op->num_inputs > 1) continue; /* random_spatial: checked in test_extremes */
    vp_tensor *out[VP_OP_MAX_IO] = {0};
    vp_status s = vp_ops_call(cases[k].op, 1, ins, cases[k].args, 0, out);
    const char *msg = vp_last_error();
    printf("%s %s -> %s: %s\n", cases[k].op, cases[k].args, vp_status_name(s), msg);
    if (s == VP_OK) fail_msg("%s %s: accepted", cases[k].op, cases[k].args);
    for (int o = 0; o < VP_OP_MAX_IO; o++) assert_null(out[o]);
    if (!strstr(msg, cases[k].op)) fail_msg("%s: message does not name the operator", cases[k].op);
    /* every host allocation fails: a call that gets to one has not refused
     * the size itself (the allocator's guard against sizes beyond the
     * machine's memory refused it above) */
    vp_debug_fail_alloc_after(0);
    s = vp_ops_call(cases[k].op, 1, ins, cases[k].args, 0, out);
    vp_debug_fail_alloc_after(-1);
    assert_int_not_equal(s, VP_OK);
    if (strstr(vp_last_error(), "(injected fault)"))
      printf(
          "REPORT %s %s: the operator does not bound the size itself; the allocator's memory "
          "guard refuses it\n",
          cases[k].op, cases[k].args);
  }
  vp_tensor_release(x);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_specs),
      cmocka_unit_test(test_bad_values),
      cmocka_unit_test(test_extremes),
      cmocka_unit_test(test_huge_outputs),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
