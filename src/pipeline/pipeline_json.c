/* Pipeline files: the JSON form of a pipeline (docs/pipelines.md). Every
 * key is checked, and messages point at the key that is wrong:
 * "mlperf.json: nodes[3].args.p: 1.5 is outside [0, 1]". */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "pipeline/graph.h"

#define MAX_STRS 16

typedef struct ctx {
  const char *name; /* the file, for messages */
  char dir[1024];   /* its folder, for relative paths ("" = none) */
  char *strs[MAX_STRS];
  int nstrs;
} ctx;

static vp_status key_fail(const ctx *c, const char *key, const char *fmt, ...) VP_PRINTF(3, 4);
static vp_status key_fail(const ctx *c, const char *key, const char *fmt, ...) {
  char reason[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(reason, sizeof reason, fmt, ap);
  va_end(ap);
  return vp_fail(VP_ERR_INVALID_ARG, "%s: %s: %s", c->name, key, reason);
}

/* The value as text for messages, shortened. */
static void shown(const json_t *v, char *buf, size_t n) {
  char *t = vp_json_text(v);
  snprintf(buf, n, "%s", t ? t : "?");
  if (t && strlen(t) >= n && n > 4) strcpy(buf + n - 4, "...");
  free(t);
}

static vp_status check_keys(const ctx *c, const char *where, const json_t *obj,
                            const char *const *known) {
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)obj, k, v) {
    int ok = strncmp(k, "//", 2) == 0; /* "//": a comment, as JSON has none */
    for (int i = 0; known[i]; i++) ok |= strcmp(k, known[i]) == 0;
    if (!ok) {
      char list[512] = "";
      size_t used = 0;
      for (int i = 0; known[i] && used + 1 < sizeof list; i++)
        used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", known[i]);
      char key[256];
      snprintf(key, sizeof key, "%s%s%s", where, *where ? "." : "", k);
      return key_fail(c, key, "unknown key (known: %s)", list);
    }
  }
  return VP_OK;
}

static vp_status get_int(const ctx *c, const char *key, const json_t *v, int64_t lo, int64_t hi,
                         int64_t *out) {
  char got[128];
  if (json_is_real(v) && json_real_value(v) == (double)(int64_t)json_real_value(v)) {
    *out = (int64_t)json_real_value(v);
  } else if (json_is_integer(v)) {
    *out = json_integer_value(v);
  } else {
    shown(v, got, sizeof got);
    return key_fail(c, key, "expected an integer, got %s", got);
  }
  if (*out < lo || *out > hi)
    return key_fail(c, key, "%lld is outside [%lld, %lld]", (long long)*out, (long long)lo,
                    (long long)hi);
  return VP_OK;
}

static vp_status get_bool(const ctx *c, const char *key, const json_t *v, int *out) {
  if (json_is_boolean(v)) {
    *out = json_is_true(v);
    return VP_OK;
  }
  if (json_is_integer(v) && (json_integer_value(v) == 0 || json_integer_value(v) == 1)) {
    *out = (int)json_integer_value(v);
    return VP_OK;
  }
  char got[128];
  shown(v, got, sizeof got);
  return key_fail(c, key, "expected true or false, got %s", got);
}

static vp_status get_str(const ctx *c, const char *key, const json_t *v, const char **out) {
  if (!json_is_string(v) || json_string_length(v) == 0) {
    char got[128];
    shown(v, got, sizeof got);
    return key_fail(c, key, "expected a non-empty string, got %s", got);
  }
  *out = json_string_value(v);
  return VP_OK;
}

/* A path relative to the file's folder. */
static vp_status get_path(ctx *c, const char *key, const json_t *v, const char **out) {
  const char *p = NULL;
  VP_TRY(get_str(c, key, v, &p));
  if (p[0] == '/' || !c->dir[0]) {
    *out = p;
    return VP_OK;
  }
  if (c->nstrs == MAX_STRS) return vp_fail(VP_ERR_INTERNAL, "%s: too many paths", c->name);
  size_t n = strlen(c->dir) + strlen(p) + 2;
  char *s = malloc(n);
  if (!s) return vp_fail(VP_ERR_NOMEM, "%s: out of memory", c->name);
  snprintf(s, n, "%s/%s", c->dir, p);
  c->strs[c->nstrs++] = s;
  *out = s;
  return VP_OK;
}

/* ---- "pipeline" ------------------------------------------------------------ */

static const char *const pipeline_keys[] = {
    "batch_size",           "num_threads",      "device",         "seed",
    "prefetch_queue_depth", "skip_bad_samples", "fuse_pointwise", NULL};

static vp_status pipeline_opts(const ctx *c, const char *where, const json_t *obj,
                               vp_pipeline_opts *o) {
  if (!json_is_object(obj)) return key_fail(c, where, "expected a JSON object");
  VP_TRY(check_keys(c, where, obj, pipeline_keys));
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)obj, k, v) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", where, k);
    int64_t x = 0;
    if (strcmp(k, "batch_size") == 0) {
      VP_TRY(get_int(c, key, v, 1, 1 << 20, &x));
      o->batch_size = (int)x;
    } else if (strcmp(k, "num_threads") == 0) {
      VP_TRY(get_int(c, key, v, 0, 4096, &x));
      o->num_threads = (int)x;
    } else if (strcmp(k, "device") == 0) {
      VP_TRY(get_int(c, key, v, -1, 1024, &x));
      o->device = (int)x;
    } else if (strcmp(k, "seed") == 0) {
      VP_TRY(get_int(c, key, v, 0, INT64_MAX, &x));
      o->seed = (uint64_t)x;
    } else if (strcmp(k, "prefetch_queue_depth") == 0) {
      VP_TRY(get_int(c, key, v, 0, 1024, &x));
      o->prefetch_queue_depth = (int)x;
    } else if (strcmp(k, "fuse_pointwise") == 0) {
      int fuse = 1;
      VP_TRY(get_bool(c, key, v, &fuse));
      o->no_fusion = !fuse;
    } else {
      VP_TRY(get_bool(c, key, v, &o->skip_bad_samples));
    }
  }
  return VP_OK;
}

/* ---- "reader" ---------------------------------------------------------------- */

static const char *const reader_keys[] = {
    "dataset_json", "split",    "root",        "image_glob",     "label_glob",     "file_list",
    "shuffle",      "shard_id", "num_shards",  "stick_to_shard", "pad_last_batch", "roi",
    "raw",          "outputs",  "random_crop", "cache_bytes",    "cache_device",   NULL};
static const char *const roi_keys[] = {"start", "shape", "oob", "fill", NULL};

static vp_status get_extents(const ctx *c, const char *key, const json_t *v, int64_t lo,
                             int64_t *out, int *n) {
  if (!json_is_array(v) || json_array_size(v) < 1 || json_array_size(v) > VP_MAX_NDIM)
    return key_fail(c, key, "expected a list of 1 to %d integers", VP_MAX_NDIM);
  *n = (int)json_array_size(v);
  for (int i = 0; i < *n; i++) {
    char k2[160];
    snprintf(k2, sizeof k2, "%s[%d]", key, i);
    VP_TRY(get_int(c, k2, json_array_get(v, (size_t)i), lo, INT64_MAX / 4, &out[i]));
  }
  return VP_OK;
}

static vp_status parse_roi(const ctx *c, const json_t *v, vp_load_opts *roi) {
  if (!json_is_object(v)) return key_fail(c, "reader.roi", "expected a JSON object");
  VP_TRY(check_keys(c, "reader.roi", v, roi_keys));
  json_t *start = json_object_get(v, "start"), *shape = json_object_get(v, "shape");
  if (!shape) return key_fail(c, "reader.roi.shape", "is required");
  int ns = 0, nt = 0;
  VP_TRY(get_extents(c, "reader.roi.shape", shape, 1, roi->roi_shape, &ns));
  if (start) {
    VP_TRY(get_extents(c, "reader.roi.start", start, -(INT64_MAX / 4), roi->roi_start, &nt));
    if (nt != ns) return key_fail(c, "reader.roi.start", "has %d values but shape has %d", nt, ns);
  }
  roi->roi_ndim = ns;
  json_t *oob = json_object_get(v, "oob");
  if (oob) {
    const char *s;
    VP_TRY(get_str(c, "reader.roi.oob", oob, &s));
    if (strcmp(s, "error") == 0)
      roi->oob = VP_OOB_ERROR;
    else if (strcmp(s, "pad") == 0)
      roi->oob = VP_OOB_PAD;
    else if (strcmp(s, "trim") == 0)
      roi->oob = VP_OOB_TRIM;
    else
      return key_fail(c, "reader.roi.oob", "\"%s\" is not one of error, pad, trim", s);
  }
  json_t *fill = json_object_get(v, "fill");
  if (fill) {
    if (!json_is_number(fill)) return key_fail(c, "reader.roi.fill", "expected a number");
    roi->fill = json_number_value(fill);
  }
  return VP_OK;
}

static vp_status add_reader(ctx *c, vp_pipeline *p, const json_t *r, uint64_t seed, int cpu_only) {
  if (!r) return key_fail(c, "reader", "is required");
  if (!json_is_object(r)) return key_fail(c, "reader", "expected a JSON object");
  VP_TRY(check_keys(c, "reader", r, reader_keys));
  vp_dataset_opts d;
  vp_dataset_opts_init(&d);
  d.seed = seed;
  vp_load_opts lo;
  vp_load_opts_init(&lo);
  int has_lo = 0;
  int64_t crop[VP_MAX_NDIM];
  int ncrop = 0;
  int64_t cache_bytes = 0;
  int cache_gpu = 0;
  const char *k;
  json_t *v;
  int sources = 0;
  json_object_foreach((json_t *)r, k, v) {
    char key[128];
    snprintf(key, sizeof key, "reader.%s", k);
    int64_t x;
    if (strcmp(k, "dataset_json") == 0) {
      VP_TRY(get_path(c, key, v, &d.dataset_json));
      sources++;
    } else if (strcmp(k, "split") == 0) {
      VP_TRY(get_str(c, key, v, &d.split));
    } else if (strcmp(k, "root") == 0) {
      VP_TRY(get_path(c, key, v, &d.root));
      sources++;
    } else if (strcmp(k, "image_glob") == 0) {
      VP_TRY(get_str(c, key, v, &d.image_glob));
    } else if (strcmp(k, "label_glob") == 0) {
      VP_TRY(get_str(c, key, v, &d.label_glob));
    } else if (strcmp(k, "file_list") == 0) {
      VP_TRY(get_path(c, key, v, &d.file_list));
      sources++;
    } else if (strcmp(k, "shuffle") == 0) {
      VP_TRY(get_bool(c, key, v, &d.shuffle));
    } else if (strcmp(k, "shard_id") == 0) {
      VP_TRY(get_int(c, key, v, 0, 1 << 20, &x));
      d.shard_id = (int)x;
    } else if (strcmp(k, "num_shards") == 0) {
      VP_TRY(get_int(c, key, v, 1, 1 << 20, &x));
      d.num_shards = (int)x;
    } else if (strcmp(k, "stick_to_shard") == 0) {
      VP_TRY(get_bool(c, key, v, &d.stick_to_shard));
    } else if (strcmp(k, "pad_last_batch") == 0) {
      VP_TRY(get_bool(c, key, v, &d.pad_last_batch));
    } else if (strcmp(k, "raw") == 0) {
      VP_TRY(get_bool(c, key, v, &lo.raw));
      has_lo = 1;
    } else if (strcmp(k, "roi") == 0) {
      VP_TRY(parse_roi(c, v, &lo));
      has_lo = 1;
    } else if (strcmp(k, "cache_bytes") == 0) {
      VP_TRY(get_int(c, key, v, 0, INT64_MAX, &cache_bytes));
    } else if (strcmp(k, "cache_device") == 0) {
      const char *where;
      VP_TRY(get_str(c, key, v, &where));
      if (strcmp(where, "cpu") && strcmp(where, "gpu"))
        return key_fail(c, key, "'%s' is neither \"cpu\" nor \"gpu\"", where);
      cache_gpu = strcmp(where, "gpu") == 0;
    } else if (strcmp(k, "random_crop") == 0) {
      VP_TRY(get_extents(c, key, v, 1, crop, &ncrop));
      if (ncrop != 3) return key_fail(c, key, "expected 3 spatial extents, got %d", ncrop);
    }
  }
  if (ncrop && has_lo && lo.roi_ndim)
    return key_fail(c, "reader.random_crop", "give either roi or random_crop, not both");
  if (sources != 1)
    return key_fail(c, "reader",
                    "needs exactly one source of cases: \"dataset_json\", \"root\" (with "
                    "\"image_glob\") or \"file_list\"");
  if (d.root && !d.image_glob) return key_fail(c, "reader.image_glob", "is required with root");
  if (d.shard_id >= (d.num_shards > 0 ? d.num_shards : 1))
    return key_fail(c, "reader.shard_id", "%d is not below num_shards (%d)", d.shard_id,
                    d.num_shards > 0 ? d.num_shards : 1);
  const char *names[2] = {"image", "label"};
  int nnames = (d.root && !d.label_glob) ? 1 : 2;
  json_t *outs = json_object_get(r, "outputs");
  if (outs) {
    if (!json_is_array(outs) || json_array_size(outs) < 1 || json_array_size(outs) > 2)
      return key_fail(c, "reader.outputs", "expected a list of 1 or 2 names (image, label)");
    nnames = (int)json_array_size(outs);
    for (int i = 0; i < nnames; i++) {
      char key[64];
      snprintf(key, sizeof key, "reader.outputs[%d]", i);
      VP_TRY(get_str(c, key, json_array_get(outs, (size_t)i), &names[i]));
    }
  }
  vp_status s =
      vp_pipeline_add_reader(p, &d, has_lo ? &lo : NULL, names[0], nnames > 1 ? names[1] : NULL);
  if (s == VP_OK && ncrop) s = vp_pipeline_set_reader_crop(p, ncrop, crop);
  /* a CPU-only run (device -1) keeps a "gpu" cache in host memory, as it
   * runs "gpu" nodes on the CPU */
  if (s == VP_OK && cache_bytes)
    s = vp_pipeline_set_reader_cache(p, (size_t)cache_bytes,
                                     cache_gpu && !cpu_only ? VP_MEM_DEVICE : VP_MEM_HOST);
  if (s != VP_OK) return vp_fail_prefix(s, "%s", c->name);
  return VP_OK;
}

/* ---- "nodes" and "outputs" ------------------------------------------------- */

static const char *const node_keys[] = {"op", "device", "inputs", "args", "outputs", NULL};

static vp_status get_names(const ctx *c, const char *key, const json_t *v, int max,
                           const char **names, int *n) {
  if (!json_is_array(v) || (int)json_array_size(v) > max)
    return key_fail(c, key, "expected a list of at most %d names", max);
  *n = (int)json_array_size(v);
  for (int i = 0; i < *n; i++) {
    char k2[256];
    snprintf(k2, sizeof k2, "%.200s[%d]", key, i);
    VP_TRY(get_str(c, k2, json_array_get(v, (size_t)i), &names[i]));
  }
  return VP_OK;
}

/* With the pipeline's device at -1 (CPU only, e.g. `voxpipe run --device
 * cpu`), "gpu" nodes run on the CPU: the same graph, the same results. */
static vp_status add_nodes(const ctx *c, vp_pipeline *p, const json_t *nodes, int cpu_only) {
  if (!nodes) return VP_OK;
  if (!json_is_array(nodes)) return key_fail(c, "nodes", "expected a list of nodes");
  for (size_t i = 0; i < json_array_size(nodes); i++) {
    json_t *nd = json_array_get(nodes, i);
    char where[160], key[192];
    snprintf(where, sizeof where, "nodes[%zu]", i);
    if (!json_is_object(nd)) return key_fail(c, where, "expected a JSON object");
    VP_TRY(check_keys(c, where, nd, node_keys));
    const char *op = NULL, *device = "cpu";
    snprintf(key, sizeof key, "%s.op", where);
    json_t *v = json_object_get(nd, "op");
    if (!v) return key_fail(c, key, "is required");
    VP_TRY(get_str(c, key, v, &op));
    if ((v = json_object_get(nd, "device"))) {
      snprintf(key, sizeof key, "%s.device", where);
      VP_TRY(get_str(c, key, v, &device));
      if (cpu_only && strcmp(device, "gpu") == 0) device = "cpu";
    }
    const char *ins[VP_OP_MAX_IO + 1], *outs[VP_OP_MAX_IO + 1];
    int nin = 0, nout = 0;
    if ((v = json_object_get(nd, "inputs"))) {
      snprintf(key, sizeof key, "%s.inputs", where);
      VP_TRY(get_names(c, key, v, VP_OP_MAX_IO, ins, &nin));
    }
    snprintf(key, sizeof key, "%s.outputs", where);
    if (!(v = json_object_get(nd, "outputs"))) return key_fail(c, key, "is required");
    VP_TRY(get_names(c, key, v, VP_OP_MAX_IO, outs, &nout));
    char prefix[1200];
    snprintf(prefix, sizeof prefix, "%s: %s", c->name, where);
    vp_where w = {prefix, 1};
    VP_TRY(vp_pipeline_add_node_json(p, op, device, nin, ins, json_object_get(nd, "args"), nout,
                                     outs, &w));
  }
  return VP_OK;
}

static vp_status set_outputs(const ctx *c, vp_pipeline *p, const json_t *outs) {
  if (!outs) return key_fail(c, "outputs", "is required (the names the pipeline returns)");
  if (!json_is_array(outs) || json_array_size(outs) < 1 || json_array_size(outs) > 64)
    return key_fail(c, "outputs", "expected a list of 1 to 64 names");
  const char *names[64];
  int n = 0;
  VP_TRY(get_names(c, "outputs", outs, 64, names, &n));
  vp_where w = {c->name, 0};
  return vp_pipeline_set_outputs_at(p, n, names, &w);
}

/* ---- the file ---------------------------------------------------------------- */

static const char *const top_keys[] = {"pipeline", "reader", "nodes", "outputs", NULL};

static vp_status from_json(ctx *c, const json_t *root, const json_t *over, vp_pipeline **out) {
  if (!json_is_object(root))
    return vp_fail(VP_ERR_INVALID_ARG, "%s: expected a JSON object", c->name);
  VP_TRY(check_keys(c, "", root, top_keys));
  vp_pipeline_opts o;
  vp_pipeline_opts_init(&o);
  json_t *po = json_object_get(root, "pipeline");
  if (po) VP_TRY(pipeline_opts(c, "pipeline", po, &o));
  if (over) {
    ctx oc = *c;
    oc.name = "overrides";
    memset(oc.strs, 0, sizeof oc.strs);
    oc.nstrs = 0;
    if (!json_is_object(over))
      return vp_fail(VP_ERR_INVALID_ARG, "overrides: expected a JSON object of pipeline options");
    /* overrides name pipeline keys directly: {"device": -1} */
    VP_TRY(check_keys(&oc, "", over, pipeline_keys));
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)over, k, v) {
      json_t *one = json_object();
      if (!one || json_object_set(one, k, v) != 0) {
        json_decref(one);
        return vp_fail(VP_ERR_NOMEM, "overrides: out of memory");
      }
      vp_status s = pipeline_opts(&oc, "overrides", one, &o);
      json_decref(one);
      VP_TRY(s);
    }
  }
  vp_pipeline *p = NULL;
  vp_status s = vp_pipeline_create(&o, &p);
  if (s != VP_OK) return vp_fail_prefix(s, "%s", c->name);
  s = add_reader(c, p, json_object_get(root, "reader"), o.seed, o.device < 0);
  if (s == VP_OK) s = add_nodes(c, p, json_object_get(root, "nodes"), o.device < 0);
  if (s == VP_OK) s = set_outputs(c, p, json_object_get(root, "outputs"));
  if (s == VP_OK) {
    s = vp_pipeline_build(p);
    if (s != VP_OK) vp_fail_prefix(s, "%s", c->name);
  }
  if (s != VP_OK) {
    vp_pipeline_destroy(p);
    return s;
  }
  *out = p;
  return VP_OK;
}

vp_status vp_pipeline_from_json(const char *json, const char *name, const char *overrides_json,
                                vp_pipeline **out) {
  if (!out) return vp_fail(VP_ERR_INVALID_ARG, "pipeline file: out is NULL");
  *out = NULL;
  ctx c;
  memset(&c, 0, sizeof c);
  c.name = name && *name ? name : "pipeline";
  if (!json) return vp_fail(VP_ERR_INVALID_ARG, "%s: the JSON text is NULL", c.name);
  const char *slash = name ? strrchr(name, '/') : NULL;
  if (slash) {
    size_t n = (size_t)(slash - name);
    if (n >= sizeof c.dir) return vp_fail(VP_ERR_INVALID_ARG, "%s: the path is too long", c.name);
    memcpy(c.dir, name, n);
    c.dir[n] = '\0';
    if (n == 0) strcpy(c.dir, "/");
  }
  json_error_t je;
  json_t *root = json_loads(json, JSON_REJECT_DUPLICATES, &je);
  if (!root)
    return vp_fail(VP_ERR_FORMAT, "%s: line %d, column %d: %s", c.name, je.line, je.column,
                   je.text);
  json_t *over = NULL;
  if (overrides_json) {
    over = json_loads(overrides_json, JSON_REJECT_DUPLICATES, &je);
    if (!over) {
      json_decref(root);
      return vp_fail(VP_ERR_INVALID_ARG, "overrides: line %d, column %d: %s", je.line, je.column,
                     je.text);
    }
  }
  vp_status s = from_json(&c, root, over, out);
  for (int i = 0; i < c.nstrs; i++) free(c.strs[i]);
  json_decref(over);
  json_decref(root);
  return s;
}
