/* voxpipe preview --pipeline FILE.json --out DIR: a PNG montage of the
 * first sample before and after each augmentation of a pipeline file, the
 * label of each stage overlaid in colour (the figures of NVIDIA's DALI
 * medical-imaging post, for any pipeline).
 *
 * The file is rewritten so that every value the augmentations produce is a
 * pipeline output (batch 1, on the CPU: the same results as the GPU), then
 * one batch is run. A value descends from the reader's image or label
 * through its nodes' first inputs; each image stage is drawn with the label
 * stage of the same depth in the label's chain (flip(image) with
 * flip(label)), or the deepest one before it. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

#define MAX_VALUES 256

typedef struct {
  const char *name;
  int lineage; /* 0 image, 1 label, -1 neither (random values) */
  int depth;   /* nodes since the reader */
} value;

static int find(const value *v, int n, const char *name) {
  for (int i = 0; i < n; i++)
    if (!strcmp(v[i].name, name)) return i;
  return -1;
}

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *s = n >= 0 && n < (64L << 20) ? malloc((size_t)n + 1) : NULL;
  if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
    free(s);
    s = NULL;
  }
  if (s) s[n] = '\0';
  fclose(f);
  return s;
}

int cli_preview_stages(const char *file, const char *dir, int axis) {
  char *text = slurp(file);
  if (!text) {
    fprintf(stderr, "voxpipe preview: %s: cannot read the pipeline file\n", file);
    return 1;
  }
  json_error_t je;
  json_t *root = json_loads(text, 0, &je);
  free(text);
  if (!root || !json_is_object(root)) {
    fprintf(stderr, "voxpipe preview: %s: line %d: %s\n", file, je.line, je.text);
    json_decref(root);
    return 1;
  }
  value v[MAX_VALUES];
  int n = 0;
  json_t *outs = json_object_get(json_object_get(root, "reader"), "outputs");
  const char *img0 = "image", *lbl0 = "label";
  if (json_is_array(outs) && json_array_size(outs) >= 1) {
    img0 = json_string_value(json_array_get(outs, 0));
    lbl0 = json_array_size(outs) > 1 ? json_string_value(json_array_get(outs, 1)) : NULL;
  }
  if (!img0) img0 = "image";
  v[n++] = (value){img0, 0, 0};
  if (lbl0) v[n++] = (value){lbl0, 1, 0};
  json_t *nodes = json_object_get(root, "nodes");
  for (size_t i = 0; json_is_array(nodes) && i < json_array_size(nodes); i++) {
    json_t *nd = json_array_get(nodes, i);
    json_t *in = json_object_get(nd, "inputs");
    int from = json_is_array(in) && json_array_size(in) > 0
                   ? find(v, n, json_string_value(json_array_get(in, 0)) ? json_string_value(json_array_get(in, 0)) : "")
                   : -1;
    json_t *o = json_object_get(nd, "outputs");
    for (size_t k = 0; json_is_array(o) && k < json_array_size(o) && n < MAX_VALUES; k++) {
      const char *name = json_string_value(json_array_get(o, k));
      if (!name) continue;
      v[n++] = (value){name, from >= 0 ? v[from].lineage : -1, from >= 0 ? v[from].depth + 1 : 0};
    }
  }
  /* every image or label value becomes an output; batch 1 on the CPU */
  json_t *all = json_array();
  for (int i = 0; i < n; i++)
    if (v[i].lineage >= 0) json_array_append_new(all, json_string(v[i].name));
  json_object_set_new(root, "outputs", all);
  char *rewritten = json_dumps(root, 0); /* root stays: v[] names point into it */
  vp_pipeline *p = NULL;
  vp_status s = rewritten ? vp_pipeline_from_json(rewritten, file,
                                                  "{\"batch_size\": 1, \"device\": -1, "
                                                  "\"prefetch_queue_depth\": 1}",
                                                  &p)
                          : VP_ERR_NOMEM;
  free(rewritten);
  if (s != VP_OK) {
    json_decref(root);
    return cli_fail("preview");
  }
  int nout = vp_pipeline_num_outputs(p);
  vp_tensor **t = calloc((size_t)nout, sizeof *t);
  int rc = 0;
  if (!t || vp_pipeline_run(p, t, NULL) != VP_OK) rc = cli_fail("preview");
  if (rc == 0 && mkdir(dir, 0777) != 0 && !cli_is_dir(dir)) {
    fprintf(stderr, "voxpipe preview: %s: cannot create the folder\n", dir);
    rc = 1;
  }
  /* outputs are the image/label values in order: map them back */
  int idx[MAX_VALUES], k = 0;
  for (int i = 0; i < n; i++) idx[i] = v[i].lineage >= 0 ? k++ : -1;
  int stage = 0;
  for (int i = 0; rc == 0 && i < n; i++) {
    if (v[i].lineage != 0) continue;
    /* the label stage of the same depth, else the deepest before it */
    int best = -1;
    for (int j = 0; j < n; j++)
      if (v[j].lineage == 1 && v[j].depth <= v[i].depth &&
          (best < 0 || v[j].depth > v[best].depth))
        best = j;
    const vp_tensor *img = t[idx[i]], *lbl = best >= 0 ? t[idx[best]] : NULL;
    if (lbl && vp_tensor_ndim(lbl) != 3) lbl = NULL;
    char path[4096];
    snprintf(path, sizeof path, "%s/stage%02d_%s.png", dir, stage++, v[i].name);
    rc = cli_write_preview(path, img, lbl, axis);
    if (rc == 0) printf("%s  (%s%s%s)\n", path, v[i].name, lbl ? " + " : "", lbl ? v[best].name : "");
  }
  for (int i = 0; t && i < nout; i++) vp_tensor_release(t[i]);
  free(t);
  vp_pipeline_destroy(p);
  json_decref(root);
  return rc;
}
