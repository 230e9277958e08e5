/* The pipeline graph: a reader, operator nodes in the order they were
 * added, and the named values (outputs) that connect them.
 *
 * Everything is validated as it is added (operator names, argument values
 * and bindings, input and output names), so that an error points at the
 * call or the pipeline-file key that caused it; what depends on the whole
 * graph or on the device (gpu nodes, cpu nodes reading gpu values, the
 * pipeline's outputs) is checked by vp_graph_check at build time.
 *
 * Messages read "<where>: <key>: <reason>", where <where> is "node 3
 * (flip)" for the C API and "mlperf.json: nodes[3]" for a pipeline file
 * (then joined with '.': "mlperf.json: nodes[3].args.p: ..."). */
#ifndef VP_PIPELINE_GRAPH_H
#define VP_PIPELINE_GRAPH_H

#include <jansson.h>
#include <stdint.h>

#include "ops/op.h"
#include "voxpipe.h"

#define VP_READER_NODE (-1)

/* A named output of the reader or of a node. */
typedef struct vp_value {
  char *name;
  int node; /* producing node, VP_READER_NODE for the reader */
  int slot; /* output index (reader: 0 image, 1 label) */
  int gpu;  /* produced on the GPU */
} vp_value;

/* One argument of a node: a constant, or per-sample values taken from a
 * value (a CPU tensor per sample whose elements are the sample's value). */
typedef struct vp_arg_binding {
  int bound;
  int value;
  vp_arg_value constant;
} vp_arg_binding;

typedef struct vp_node {
  const vp_op_desc *op;
  int gpu;
  int inputs[VP_OP_MAX_IO];  /* value ids, op->num_inputs of them */
  int outputs[VP_OP_MAX_IO]; /* value ids, op->num_outputs of them */
  vp_arg_binding args[VP_OP_MAX_ARGS];
} vp_node;

typedef struct vp_reader {
  int present;
  vp_dataset_opts opts; /* string members point into `strs` */
  char *strs[6];
  int has_roi;
  vp_load_opts roi;
  int has_crop; /* a random window per sample (vp_pipeline_set_reader_crop) */
  int64_t crop[3];
  size_t cache_bytes; /* decoded-volume cache budget; 0 = none */
  int cache_device;   /* the cache is in GPU memory: the reader's outputs are gpu values */
  int image_value;
  int label_value; /* -1 when there is no label output */
} vp_reader;

typedef struct vp_graph {
  vp_reader reader;
  vp_node *nodes;
  int num_nodes, cap_nodes;
  vp_value *values;
  int num_values, cap_values;
  int *outputs;
  int num_outputs;
} vp_graph;

/* Where messages point: a prefix and the joining style. */
typedef struct vp_where {
  const char *prefix; /* "node 3 (flip)", "mlperf.json: nodes[3]", "reader" */
  int json;           /* 1: join keys with '.', else with ": " */
} vp_where;

void vp_graph_init(vp_graph *g);
void vp_graph_free(vp_graph *g);

/* Value id of `name`, -1 when unknown. */
int vp_graph_find(const vp_graph *g, const char *name);
/* Writes "a, b, c" (the known value names) into buf. */
void vp_graph_known_names(const vp_graph *g, char *buf, size_t n);

vp_status vp_graph_add_reader(vp_graph *g, const vp_dataset_opts *ds, const vp_load_opts *roi,
                              const char *image_name, const char *label_name);
/* args: a JSON object (or NULL); w names the node in messages. */
vp_status vp_graph_add_node(vp_graph *g, const char *op, const char *device, int num_inputs,
                            const char *const *inputs, const json_t *args, int num_outputs,
                            const char *const *outputs, const vp_where *w);
vp_status vp_graph_set_outputs(vp_graph *g, int n, const char *const *names, const vp_where *w);
/* Build-time checks of the whole graph for a pipeline on `device` (-1 =
 * CPU only). */
vp_status vp_graph_check(const vp_graph *g, int device);

/* JSON text of a value, numbers in their shortest exact form ("0.1", not
 * "0.10000000000000001"); malloc'd, NULL when out of memory. */
char *vp_json_text(const json_t *v);

/* "node 3 (flip)" */
void vp_node_label(const vp_graph *g, int node, char *buf, size_t n);

/* For pipeline files (pipeline.c): add_node with parsed arguments and
 * messages pointing at the file's keys, and set_outputs likewise. */
vp_status vp_pipeline_add_node_json(vp_pipeline *p, const char *op, const char *device,
                                    int num_inputs, const char *const *inputs, const json_t *args,
                                    int num_outputs, const char *const *outputs, const vp_where *w);
vp_status vp_pipeline_set_outputs_at(vp_pipeline *p, int n, const char *const *names,
                                     const vp_where *w);

#endif
