/* The public pipeline functions: options, graph building, and the
 * executor behind run/get_state/set_state. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "pipeline/executor.h"
#include "pipeline/graph.h"

struct vp_pipeline {
  vp_pipeline_opts o;
  vp_graph g;
  vp_exec *exec; /* NULL until built */
};

void vp_pipeline_opts_init(vp_pipeline_opts *o) {
  if (!o) return;
  memset(o, 0, sizeof *o);
  o->batch_size = 1;
  o->num_threads = 0;
  o->device = -1;
  o->seed = 0;
  o->prefetch_queue_depth = 2;
  o->skip_bad_samples = 0;
}

static vp_status check_opts(const vp_pipeline_opts *o) {
  if (o->batch_size < 1 || o->batch_size > (1 << 20))
    return vp_fail(VP_ERR_INVALID_ARG, "pipeline: batch_size %d is outside [1, 1048576]",
                   o->batch_size);
  if (o->num_threads < 0 || o->num_threads > 4096)
    return vp_fail(VP_ERR_INVALID_ARG, "pipeline: num_threads %d is outside [0, 4096]",
                   o->num_threads);
  if (o->device < -1)
    return vp_fail(VP_ERR_INVALID_ARG, "pipeline: device %d is neither -1 (CPU only) nor a GPU",
                   o->device);
  if (o->prefetch_queue_depth < 0 || o->prefetch_queue_depth > 1024)
    return vp_fail(VP_ERR_INVALID_ARG, "pipeline: prefetch_queue_depth %d is outside [0, 1024]",
                   o->prefetch_queue_depth);
  return VP_OK;
}

vp_status vp_pipeline_create(const vp_pipeline_opts *o, vp_pipeline **out) {
  if (!out) return vp_fail(VP_ERR_INVALID_ARG, "pipeline: out is NULL");
  *out = NULL;
  vp_pipeline_opts def;
  if (!o) {
    vp_pipeline_opts_init(&def);
    o = &def;
  }
  VP_TRY(check_opts(o));
  vp_pipeline *p = calloc(1, sizeof *p);
  if (!p) return vp_fail(VP_ERR_NOMEM, "pipeline: out of memory");
  p->o = *o;
  if (p->o.prefetch_queue_depth == 0) p->o.prefetch_queue_depth = 2;
  vp_graph_init(&p->g);
  *out = p;
  return VP_OK;
}

void vp_pipeline_destroy(vp_pipeline *p) {
  if (!p) return;
  vp_exec_destroy(p->exec);
  vp_graph_free(&p->g);
  free(p);
}

static vp_status not_built(const vp_pipeline *p, const char *what) {
  if (!p) return vp_fail(VP_ERR_INVALID_ARG, "pipeline: %s: the pipeline is NULL", what);
  if (p->exec)
    return vp_fail(VP_ERR_INVALID_ARG, "pipeline: %s: the pipeline is already built", what);
  return VP_OK;
}

vp_status vp_pipeline_add_reader(vp_pipeline *p, const vp_dataset_opts *dataset,
                                 const vp_load_opts *roi, const char *image_name,
                                 const char *label_name) {
  VP_TRY(not_built(p, "add_reader"));
  return vp_graph_add_reader(&p->g, dataset, roi, image_name, label_name);
}

vp_status vp_pipeline_set_reader_crop(vp_pipeline *p, int ndim, const int64_t *shape) {
  VP_TRY(not_built(p, "set_reader_crop"));
  vp_reader *r = &p->g.reader;
  if (!r->present) return vp_fail(VP_ERR_INVALID_ARG, "reader crop: add the reader first");
  if (ndim != 3 || !shape)
    return vp_fail(VP_ERR_INVALID_ARG, "reader crop: expected 3 spatial extents, got %d", ndim);
  for (int a = 0; a < 3; a++)
    if (shape[a] < 1 || shape[a] > ((int64_t)1 << 31))
      return vp_fail(VP_ERR_INVALID_ARG, "reader crop: extent %d = %lld is outside [1, 2^31]", a,
                     (long long)shape[a]);
  memcpy(r->crop, shape, sizeof r->crop);
  r->has_crop = 1;
  r->has_roi = 0;
  return VP_OK;
}

vp_status vp_pipeline_set_reader_cache(vp_pipeline *p, size_t max_bytes, vp_memkind where) {
  VP_TRY(not_built(p, "set_reader_cache"));
  vp_reader *r = &p->g.reader;
  if (!r->present) return vp_fail(VP_ERR_INVALID_ARG, "reader cache: add the reader first");
  if (where != VP_MEM_HOST && where != VP_MEM_DEVICE)
    return vp_fail(VP_ERR_INVALID_ARG, "reader cache: memory kind %d is neither host nor device",
                   (int)where);
  r->cache_bytes = max_bytes;
  r->cache_device = max_bytes && where == VP_MEM_DEVICE;
  p->g.values[r->image_value].gpu = r->cache_device;
  if (r->label_value >= 0) p->g.values[r->label_value].gpu = r->cache_device;
  return VP_OK;
}

vp_status vp_pipeline_cache_stats(vp_pipeline *p, size_t *bytes, int64_t *entries,
                                  uint64_t *hits, uint64_t *misses) {
  if (!p || !bytes || !entries || !hits || !misses)
    return vp_fail(VP_ERR_INVALID_ARG, "cache_stats: NULL argument");
  *bytes = 0, *entries = 0, *hits = 0, *misses = 0;
  if (p->exec) vp_exec_cache_stats(p->exec, bytes, entries, hits, misses);
  return VP_OK;
}

vp_status vp_pipeline_add_node_json(vp_pipeline *p, const char *op, const char *device,
                                    int num_inputs, const char *const *inputs, const json_t *args,
                                    int num_outputs, const char *const *outputs,
                                    const vp_where *w) {
  VP_TRY(not_built(p, "add_node"));
  return vp_graph_add_node(&p->g, op, device, num_inputs, inputs, args, num_outputs, outputs, w);
}

vp_status vp_pipeline_add_node(vp_pipeline *p, const char *op, const char *device, int num_inputs,
                               const char *const *inputs, const char *args_json, int num_outputs,
                               const char *const *outputs) {
  VP_TRY(not_built(p, "add_node"));
  char prefix[128];
  snprintf(prefix, sizeof prefix, "node %d (%s)", p->g.num_nodes, op ? op : "?");
  vp_where w = {prefix, 0};
  json_t *args = NULL;
  if (args_json) {
    json_error_t je;
    args = json_loads(args_json, JSON_REJECT_DUPLICATES, &je);
    if (!args)
      return vp_fail(VP_ERR_INVALID_ARG, "%s: args: not valid JSON at line %d, column %d: %s",
                     prefix, je.line, je.column, je.text);
  }
  vp_status s =
      vp_graph_add_node(&p->g, op, device, num_inputs, inputs, args, num_outputs, outputs, &w);
  json_decref(args);
  return s;
}

vp_status vp_pipeline_set_outputs(vp_pipeline *p, int n, const char *const *names) {
  VP_TRY(not_built(p, "set_outputs"));
  vp_where w = {"pipeline", 0};
  return vp_graph_set_outputs(&p->g, n, names, &w);
}

vp_status vp_pipeline_set_outputs_at(vp_pipeline *p, int n, const char *const *names,
                                     const vp_where *w) {
  VP_TRY(not_built(p, "set_outputs"));
  return vp_graph_set_outputs(&p->g, n, names, w);
}

vp_status vp_pipeline_build(vp_pipeline *p) {
  VP_TRY(not_built(p, "build"));
  VP_TRY(vp_graph_check(&p->g, p->o.device));
  vp_dataset_opts dopts = p->g.reader.opts;
  /* padding rounds shards up to whole batches of this pipeline */
  dopts.batch_size = p->o.batch_size;
  vp_dataset *ds = NULL;
  vp_status s = vp_dataset_open(&dopts, &ds);
  if (s != VP_OK) return vp_fail_prefix(s, "reader");
  if (p->g.reader.label_value >= 0 && vp_dataset_size(ds) > 0 && !vp_dataset_label_path(ds, 0)) {
    vp_dataset_destroy(ds);
    return vp_fail(VP_ERR_INVALID_ARG,
                   "reader: output '%s' asks for labels, but the dataset has none (give no label "
                   "name, or a label source)",
                   p->g.values[p->g.reader.label_value].name);
  }
  if (vp_dataset_epoch_size(ds) < 1) {
    vp_dataset_destroy(ds);
    return vp_fail(VP_ERR_INVALID_ARG, "reader: the shard's epoch holds no cases");
  }
  return vp_exec_create(&p->g, &p->o, ds, &p->exec);
}

int vp_pipeline_num_outputs(const vp_pipeline *p) { return p ? p->g.num_outputs : 0; }
int vp_pipeline_batch_size(const vp_pipeline *p) { return p ? p->o.batch_size : 0; }
int64_t vp_pipeline_epoch_size(const vp_pipeline *p) {
  return p && p->exec ? vp_exec_epoch_size(p->exec) : 0;
}

static vp_status built(const vp_pipeline *p, const char *what) {
  if (!p) return vp_fail(VP_ERR_INVALID_ARG, "pipeline: %s: the pipeline is NULL", what);
  if (!p->exec)
    return vp_fail(VP_ERR_INVALID_ARG, "pipeline: %s: call vp_pipeline_build first", what);
  return VP_OK;
}

vp_status vp_pipeline_run(vp_pipeline *p, vp_tensor **outputs, int *epoch_end) {
  if (epoch_end) *epoch_end = 0;
  VP_TRY(built(p, "run"));
  if (!outputs) return vp_fail(VP_ERR_INVALID_ARG, "pipeline: run: outputs is NULL");
  size_t n = (size_t)p->g.num_outputs * (size_t)p->o.batch_size;
  for (size_t i = 0; i < n; i++) outputs[i] = NULL;
  return vp_exec_next(p->exec, outputs, epoch_end);
}

vp_status vp_pipeline_get_state(vp_pipeline *p, int64_t *epoch, int64_t *index,
                                int64_t *iteration) {
  VP_TRY(built(p, "get_state"));
  vp_exec_state(p->exec, epoch, index, iteration);
  return VP_OK;
}

vp_status vp_pipeline_set_state(vp_pipeline *p, int64_t epoch, int64_t index, int64_t iteration) {
  VP_TRY(built(p, "set_state"));
  return vp_exec_seek(p->exec, epoch, index, iteration);
}
