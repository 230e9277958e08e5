/* voxpipe preview: a PNG montage of a volume's middle slice. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void preview_usage(FILE *f) {
  fprintf(f,
          "usage: voxpipe preview IMAGE [--label LABEL] --out PNG [--axis 0|1|2]\n"
          "       voxpipe preview --pipeline FILE.json --out DIR [--axis 0|1|2]\n"
          "\n"
          "Draws the middle slice of every channel of IMAGE side by side, each\n"
          "windowed to its 1st-99th percentile, with LABEL overlaid in colour.\n"
          "\n"
          "  --label LABEL   label map [D,H,W] (or [1,D,H,W]) of the same spatial shape\n"
          "  --out PNG       the PNG to write\n"
          "  --axis A        spatial axis to slice: 0 (D, default), 1 (H) or 2 (W)\n"
          "  --pipeline F    one PNG per stage of pipeline file F (the first sample before\n"
          "                  and after each augmentation, its label overlaid) into --out DIR\n");
}

static int bad_usage(const char *opt, const char *why) {
  fprintf(stderr, "voxpipe preview: %s: %s\n", opt, why);
  fprintf(stderr, "run 'voxpipe preview --help' for the options\n");
  return 2;
}

int cmd_preview(int argc, char **argv) {
  const char *image_path = NULL, *label_path = NULL, *out = NULL, *pipeline = NULL;
  int axis = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      preview_usage(stdout);
      return 0;
    }
    if (!strcmp(a, "--label") || !strcmp(a, "--out") || !strcmp(a, "--axis") ||
        !strcmp(a, "--pipeline")) {
      if (i + 1 >= argc) return bad_usage(a, "needs a value");
      const char *v = argv[++i];
      if (!strcmp(a, "--pipeline")) {
        pipeline = v;
      } else if (!strcmp(a, "--label")) {
        label_path = v;
      } else if (!strcmp(a, "--out")) {
        out = v;
      } else {
        if (strlen(v) != 1 || v[0] < '0' || v[0] > '2') return bad_usage(a, "expected 0, 1 or 2");
        axis = v[0] - '0';
      }
    } else if (strncmp(a, "--", 2) == 0) {
      return bad_usage(a, "unknown option");
    } else if (!image_path) {
      image_path = a;
    } else {
      return bad_usage(a, "only one IMAGE is accepted");
    }
  }
  if (pipeline) {
    if (image_path || label_path) return bad_usage("--pipeline", "takes no IMAGE or --label");
    if (!out) return bad_usage("--out", "is required");
    return cli_preview_stages(pipeline, out, axis);
  }
  if (!image_path) return bad_usage("IMAGE", "is required");
  if (!out) return bad_usage("--out", "is required");
  vp_tensor *image = NULL, *label = NULL;
  if (vp_load(image_path, NULL, &image) != VP_OK) return cli_fail(image_path);
  if (label_path && vp_load(label_path, NULL, &label) != VP_OK) {
    vp_tensor_release(image);
    return cli_fail(label_path);
  }
  int rc = cli_write_preview(out, image, label, axis);
  vp_tensor_release(image);
  vp_tensor_release(label);
  return rc;
}
