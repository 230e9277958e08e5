#include "pipeline/graph.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"

void vp_graph_init(vp_graph *g) { memset(g, 0, sizeof *g); }

void vp_graph_free(vp_graph *g) {
  if (!g) return;
  for (int i = 0; i < 6; i++) free(g->reader.strs[i]);
  for (int i = 0; i < g->num_values; i++) free(g->values[i].name);
  free(g->values);
  free(g->nodes);
  free(g->outputs);
  memset(g, 0, sizeof *g);
}

int vp_graph_find(const vp_graph *g, const char *name) {
  if (!name) return -1;
  for (int i = 0; i < g->num_values; i++)
    if (strcmp(g->values[i].name, name) == 0) return i;
  return -1;
}

void vp_graph_known_names(const vp_graph *g, char *buf, size_t n) {
  size_t used = 0;
  buf[0] = '\0';
  for (int i = 0; i < g->num_values && used + 1 < n; i++) {
    int k = snprintf(buf + used, n - used, "%s%s", i ? ", " : "", g->values[i].name);
    if (k < 0) break;
    used += (size_t)k;
  }
  if (g->num_values == 0) snprintf(buf, n, "none");
}

void vp_node_label(const vp_graph *g, int node, char *buf, size_t n) {
  if (node == VP_READER_NODE)
    snprintf(buf, n, "reader");
  else
    snprintf(buf, n, "node %d (%s)", node, g->nodes[node].op->name);
}

/* "<prefix>.<key>: <reason>" or "<prefix>: <key>: <reason>". */
static vp_status where_fail(vp_status s, const vp_where *w, const char *key, const char *fmt, ...)
    VP_PRINTF(4, 5);
static vp_status where_fail(vp_status s, const vp_where *w, const char *key, const char *fmt, ...) {
  char reason[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(reason, sizeof reason, fmt, ap);
  va_end(ap);
  if (!key || !*key) return vp_fail(s, "%s: %s", w->prefix, reason);
  return vp_fail(s, "%s%s%s: %s", w->prefix, w->json ? "." : ": ", key, reason);
}

/* ---- JSON text with exact, short numbers ------------------------------- */

typedef struct sbuf {
  char *p;
  size_t len, cap;
  int oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n) {
  if (b->oom) return;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + n + 1) cap *= 2;
    char *q = realloc(b->p, cap);
    if (!q) {
      b->oom = 1;
      return;
    }
    b->p = q;
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void text_of(sbuf *b, const json_t *v) {
  char num[40];
  switch (json_typeof(v)) {
    case JSON_INTEGER:
      snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v));
      sb_str(b, num);
      return;
    case JSON_REAL: {
      double d = json_real_value(v);
      /* the shortest form that reads back as the same double */
      for (int prec = 1; prec <= 17; prec++) {
        snprintf(num, sizeof num, "%.*g", prec, d);
        if (strtod(num, NULL) == d) break;
      }
      sb_str(b, num);
      return;
    }
    case JSON_ARRAY: {
      sb_str(b, "[");
      for (size_t i = 0; i < json_array_size(v); i++) {
        if (i) sb_str(b, ", ");
        text_of(b, json_array_get(v, i));
      }
      sb_str(b, "]");
      return;
    }
    default: {
      char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
      if (!s) {
        b->oom = 1;
        return;
      }
      sb_str(b, s);
      free(s);
      return;
    }
  }
}

char *vp_json_text(const json_t *v) {
  sbuf b = {0};
  text_of(&b, v);
  if (b.oom) {
    free(b.p);
    return NULL;
  }
  return b.p;
}

/* ---- adding -------------------------------------------------------------- */

static vp_status check_new_name(const vp_graph *g, const char *name, const vp_where *w,
                                const char *key) {
  if (!name || !*name) return where_fail(VP_ERR_INVALID_ARG, w, key, "an output name is empty");
  int v = vp_graph_find(g, name);
  if (v >= 0) {
    char who[96];
    vp_node_label(g, g->values[v].node, who, sizeof who);
    return where_fail(VP_ERR_INVALID_ARG, w, key, "'%s' is already the name of an output of %s",
                      name, who);
  }
  return VP_OK;
}

static vp_status add_value(vp_graph *g, const char *name, int node, int slot, int gpu) {
  if (g->num_values == g->cap_values) {
    int cap = g->cap_values ? 2 * g->cap_values : 8;
    vp_value *nv = realloc(g->values, (size_t)cap * sizeof *nv);
    if (!nv) return vp_fail(VP_ERR_NOMEM, "pipeline: out of memory");
    g->values = nv;
    g->cap_values = cap;
  }
  char *copy = strdup(name);
  if (!copy) return vp_fail(VP_ERR_NOMEM, "pipeline: out of memory");
  vp_value *v = &g->values[g->num_values++];
  v->name = copy;
  v->node = node;
  v->slot = slot;
  v->gpu = gpu;
  return VP_OK;
}

vp_status vp_graph_add_reader(vp_graph *g, const vp_dataset_opts *ds, const vp_load_opts *roi,
                              const char *image_name, const char *label_name) {
  vp_where w = {"reader", 0};
  if (!ds) return vp_fail(VP_ERR_INVALID_ARG, "reader: dataset options are NULL");
  if (g->reader.present) return vp_fail(VP_ERR_INVALID_ARG, "reader: the pipeline has one already");
  if (!image_name) return vp_fail(VP_ERR_INVALID_ARG, "reader: the image output needs a name");
  VP_TRY(check_new_name(g, image_name, &w, "image output"));
  if (label_name) {
    VP_TRY(check_new_name(g, label_name, &w, "label output"));
    if (strcmp(label_name, image_name) == 0)
      return vp_fail(VP_ERR_INVALID_ARG, "reader: image and label outputs are both named '%s'",
                     image_name);
  }
  vp_reader *r = &g->reader;
  r->opts = *ds;
  const char *src[6] = {ds->dataset_json, ds->split,      ds->root,
                        ds->image_glob,   ds->label_glob, ds->file_list};
  const char **dst[6] = {&r->opts.dataset_json, &r->opts.split,      &r->opts.root,
                         &r->opts.image_glob,   &r->opts.label_glob, &r->opts.file_list};
  for (int i = 0; i < 6; i++) {
    r->strs[i] = src[i] ? strdup(src[i]) : NULL;
    if (src[i] && !r->strs[i]) {
      for (int j = 0; j <= i; j++) free(r->strs[j]), r->strs[j] = NULL;
      return vp_fail(VP_ERR_NOMEM, "reader: out of memory");
    }
    *dst[i] = r->strs[i];
  }
  r->has_roi = roi != NULL;
  if (roi) r->roi = *roi;
  int first = g->num_values;
  vp_status s = add_value(g, image_name, VP_READER_NODE, 0, 0);
  if (s == VP_OK && label_name) s = add_value(g, label_name, VP_READER_NODE, 1, 0);
  if (s != VP_OK) {
    while (g->num_values > first) free(g->values[--g->num_values].name);
    for (int i = 0; i < 6; i++) free(r->strs[i]), r->strs[i] = NULL;
    return s;
  }
  r->image_value = first;
  r->label_value = label_name ? first + 1 : -1;
  r->present = 1;
  return VP_OK;
}

/* The reason of a vp_arg_parse message, without its "op: argument 'x': "
 * head (the key already says which argument). */
static const char *arg_reason(const char *msg, const char *arg) {
  char head[96];
  snprintf(head, sizeof head, "argument '%s': ", arg);
  const char *p = strstr(msg, head);
  return p ? p + strlen(head) : msg;
}

static vp_status arg_names(const vp_op_desc *op, char *buf, size_t n) {
  size_t used = 0;
  buf[0] = '\0';
  for (int i = 0; i < op->num_args && used + 1 < n; i++) {
    int k = snprintf(buf + used, n - used, "%s%s", i ? ", " : "", op->args[i].name);
    if (k < 0) break;
    used += (size_t)k;
  }
  if (op->num_args == 0) snprintf(buf, n, "none");
  return VP_OK;
}

static vp_status parse_args(const vp_graph *g, const vp_op_desc *op, const json_t *args,
                            vp_arg_binding *out, const vp_where *w) {
  char key[128];
  int given[VP_OP_MAX_ARGS] = {0};
  if (args && !json_is_object(args))
    return where_fail(VP_ERR_INVALID_ARG, w, "args", "expected a JSON object of arguments");
  if (args) {
    const char *name;
    json_t *val;
    json_object_foreach((json_t *)args, name, val) {
      snprintf(key, sizeof key, "args.%s", name);
      int idx = vp_op_arg_index(op, name);
      if (idx < 0) {
        char known[512];
        arg_names(op, known, sizeof known);
        return where_fail(VP_ERR_INVALID_ARG, w, key, "%s has no argument '%s' (arguments: %s)",
                          op->name, name, known);
      }
      given[idx] = 1;
      vp_arg_binding *b = &out[idx];
      if (json_is_object(val)) {
        json_t *ref = json_object_get(val, "node");
        if (!json_is_string(ref) || json_object_size(val) != 1)
          return where_fail(VP_ERR_INVALID_ARG, w, key,
                            "an object argument must be {\"node\": \"<output name>\"}");
        if (!(op->args[idx].flags & VP_ARG_PER_SAMPLE))
          return where_fail(VP_ERR_INVALID_ARG, w, key,
                            "%s's argument '%s' cannot vary per sample, so it cannot come from "
                            "another node's output",
                            op->name, name);
        int v = vp_graph_find(g, json_string_value(ref));
        if (v < 0) {
          char known[512];
          vp_graph_known_names(g, known, sizeof known);
          return where_fail(VP_ERR_INVALID_ARG, w, key, "unknown output '%s' (known: %s)",
                            json_string_value(ref), known);
        }
        b->bound = 1;
        b->value = v;
        continue;
      }
      char *text = vp_json_text(val);
      if (!text) return vp_fail(VP_ERR_NOMEM, "pipeline: out of memory");
      vp_status s = vp_arg_parse(op, idx, text, &b->constant);
      free(text);
      if (s != VP_OK) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", vp_last_error());
        return where_fail(s, w, key, "%s", arg_reason(msg, name));
      }
    }
  }
  for (int i = 0; i < op->num_args; i++) {
    if (given[i]) continue;
    snprintf(key, sizeof key, "args.%s", op->args[i].name);
    if (!op->args[i].def)
      return where_fail(VP_ERR_INVALID_ARG, w, key, "%s needs this argument (no default)",
                        op->name);
    vp_status s = vp_arg_parse(op, i, op->args[i].def, &out[i].constant);
    if (s != VP_OK)
      return where_fail(VP_ERR_INTERNAL, w, key, "the default %s does not parse: %s",
                        op->args[i].def, vp_last_error());
  }
  return VP_OK;
}

vp_status vp_graph_add_node(vp_graph *g, const char *opname, const char *device, int num_inputs,
                            const char *const *inputs, const json_t *args, int num_outputs,
                            const char *const *outputs, const vp_where *w) {
  char key[64];
  if (!opname) return where_fail(VP_ERR_INVALID_ARG, w, "op", "the operator name is missing");
  const vp_op_desc *op = vp_op_lookup(opname);
  if (!op) {
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", vp_last_error());
    return where_fail(VP_ERR_INVALID_ARG, w, "op", "%s", msg);
  }
  vp_node node;
  memset(&node, 0, sizeof node);
  node.op = op;
  if (!device || strcmp(device, "cpu") == 0)
    node.gpu = 0;
  else if (strcmp(device, "gpu") == 0)
    node.gpu = 1;
  else
    return where_fail(VP_ERR_INVALID_ARG, w, "device", "'%s' is neither \"cpu\" nor \"gpu\"",
                      device);
  if (num_inputs != op->num_inputs || (num_inputs > 0 && !inputs))
    return where_fail(VP_ERR_INVALID_ARG, w, "inputs", "%s takes %d input(s), got %d", op->name,
                      op->num_inputs, num_inputs);
  for (int k = 0; k < num_inputs; k++) {
    snprintf(key, sizeof key, "inputs[%d]", k);
    int v = vp_graph_find(g, inputs[k]);
    if (v < 0) {
      char known[512];
      vp_graph_known_names(g, known, sizeof known);
      return where_fail(VP_ERR_INVALID_ARG, w, key, "unknown output '%s' (known: %s)",
                        inputs[k] ? inputs[k] : "(null)", known);
    }
    node.inputs[k] = v;
  }
  if (num_outputs != op->num_outputs || (num_outputs > 0 && !outputs))
    return where_fail(VP_ERR_INVALID_ARG, w, "outputs", "%s has %d output(s), got %d names",
                      op->name, op->num_outputs, num_outputs);
  for (int k = 0; k < num_outputs; k++) {
    snprintf(key, sizeof key, "outputs[%d]", k);
    VP_TRY(check_new_name(g, outputs[k], w, key));
    for (int j = 0; j < k; j++)
      if (strcmp(outputs[j], outputs[k]) == 0)
        return where_fail(VP_ERR_INVALID_ARG, w, key, "'%s' is named twice", outputs[k]);
  }
  VP_TRY(parse_args(g, op, args, node.args, w));

  if (g->num_nodes == g->cap_nodes) {
    int cap = g->cap_nodes ? 2 * g->cap_nodes : 8;
    vp_node *nn = realloc(g->nodes, (size_t)cap * sizeof *nn);
    if (!nn) return vp_fail(VP_ERR_NOMEM, "pipeline: out of memory");
    g->nodes = nn;
    g->cap_nodes = cap;
  }
  int first = g->num_values;
  for (int k = 0; k < num_outputs; k++) {
    vp_status s = add_value(g, outputs[k], g->num_nodes, k, node.gpu);
    if (s != VP_OK) {
      while (g->num_values > first) free(g->values[--g->num_values].name);
      return s;
    }
    node.outputs[k] = first + k;
  }
  g->nodes[g->num_nodes++] = node;
  return VP_OK;
}

vp_status vp_graph_set_outputs(vp_graph *g, int n, const char *const *names, const vp_where *w) {
  if (n < 1 || !names)
    return where_fail(VP_ERR_INVALID_ARG, w, "outputs", "at least one output is needed");
  int *ids = malloc((size_t)n * sizeof *ids);
  if (!ids) return vp_fail(VP_ERR_NOMEM, "pipeline: out of memory");
  char key[64];
  for (int i = 0; i < n; i++) {
    snprintf(key, sizeof key, "outputs[%d]", i);
    ids[i] = vp_graph_find(g, names[i]);
    if (ids[i] < 0) {
      char known[512];
      vp_graph_known_names(g, known, sizeof known);
      free(ids);
      return where_fail(VP_ERR_INVALID_ARG, w, key, "unknown output '%s' (known: %s)",
                        names[i] ? names[i] : "(null)", known);
    }
  }
  free(g->outputs);
  g->outputs = ids;
  g->num_outputs = n;
  return VP_OK;
}

vp_status vp_graph_check(const vp_graph *g, int device) {
  char who[96], from[96];
  if (!g->reader.present)
    return vp_fail(VP_ERR_INVALID_ARG,
                   "pipeline: there is no reader (vp_pipeline_add_reader, or \"reader\" in a "
                   "pipeline file)");
  if (g->num_outputs < 1)
    return vp_fail(VP_ERR_INVALID_ARG,
                   "pipeline: no outputs were chosen (vp_pipeline_set_outputs, or \"outputs\" in "
                   "a pipeline file)");
  if (g->reader.cache_device &&
      (g->reader.has_crop || (g->reader.has_roi && g->reader.roi.roi_ndim)))
    return vp_fail(VP_ERR_INVALID_ARG,
                   "reader: a GPU cache holds whole volumes; cut windows with a gpu slice node "
                   "(rel_anchor from a uniform node) instead of random_crop or roi");
  if (g->reader.cache_device && device < 0)
    return vp_fail(VP_ERR_NO_DEVICE,
                   "reader: a GPU cache needs a GPU, but the pipeline's device is %d (CPU only)",
                   device);
  /* the graph's shape first: it does not depend on the machine */
  for (int n = 0; n < g->num_nodes; n++) {
    const vp_node *node = &g->nodes[n];
    vp_node_label(g, n, who, sizeof who);
    for (int k = 0; k < node->op->num_inputs; k++) {
      const vp_value *v = &g->values[node->inputs[k]];
      if (v->gpu && !node->gpu) {
        vp_node_label(g, v->node, from, sizeof from);
        return vp_fail(VP_ERR_INVALID_ARG,
                       "%s: a cpu node cannot read '%s', a gpu output of %s (make this node "
                       "\"gpu\", or that one \"cpu\")",
                       who, v->name, from);
      }
    }
    for (int a = 0; a < node->op->num_args; a++) {
      if (!node->args[a].bound) continue;
      const vp_value *v = &g->values[node->args[a].value];
      if (v->gpu && !node->gpu) {
        vp_node_label(g, v->node, from, sizeof from);
        return vp_fail(VP_ERR_INVALID_ARG,
                       "%s: argument '%s' takes per-sample values from '%s', a gpu output of %s; "
                       "a cpu node's per-sample values must come from a cpu node (make this node "
                       "\"gpu\")",
                       who, node->op->args[a].name, v->name, from);
      }
    }
  }
  for (int n = 0; n < g->num_nodes; n++) {
    const vp_node *node = &g->nodes[n];
    vp_node_label(g, n, who, sizeof who);
    if (node->gpu) {
      if (device < 0)
        return vp_fail(VP_ERR_NO_DEVICE,
                       "%s: device \"gpu\" needs a GPU, but the pipeline's device is %d (CPU "
                       "only)",
                       who, device);
      if (!node->op->run_gpu)
        return vp_fail(VP_ERR_UNSUPPORTED, "%s: %s has no GPU implementation; use device \"cpu\"",
                       who, node->op->name);
      if (!vp_has_cuda())
        return vp_fail(VP_ERR_NO_DEVICE,
                       "%s: device \"gpu\": voxpipe was built without its CUDA backend", who);
      int count = vp_cuda_device_count();
      if (device >= count)
        return vp_fail(VP_ERR_NO_DEVICE, "%s: device \"gpu\": GPU %d is not present (%d found)",
                       who, device, count);
    }
  }
  return VP_OK;
}
