/* voxpipe convert IN OUT [--dtype T]: between .nii, .nii.gz and .npy. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static int usage(FILE *f, int rc) {
  fprintf(f,
          "usage: voxpipe convert IN OUT [--dtype T] [--level N]\n"
          "  Converts between .nii, .nii.gz and .npy, keeping spacing and affine\n"
          "  (NIfTI only). --dtype casts (rounding, saturating); --level sets the gzip\n"
          "  level (1..12, default 6).\n");
  return rc;
}

int cmd_convert(int argc, char **argv) {
  const char *in = NULL, *out = NULL, *dtype = NULL;
  int level = 6;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return usage(stdout, 0);
    if (!strcmp(argv[i], "--dtype") && i + 1 < argc) {
      dtype = argv[++i];
    } else if (!strcmp(argv[i], "--level") && i + 1 < argc) {
      char *end;
      long v = strtol(argv[++i], &end, 10);
      if (*end || v < 1 || v > 12) {
        fprintf(stderr, "voxpipe convert: --level '%s' is not an integer in 1..12\n", argv[i]);
        return 2;
      }
      level = (int)v;
    } else if (argv[i][0] == '-' && argv[i][1]) {
      fprintf(stderr, "voxpipe convert: unknown option '%s'\n", argv[i]);
      return usage(stderr, 2);
    } else if (!in) {
      in = argv[i];
    } else if (!out) {
      out = argv[i];
    } else {
      fprintf(stderr, "voxpipe convert: unexpected argument '%s'\n", argv[i]);
      return usage(stderr, 2);
    }
  }
  if (!in || !out) return usage(stderr, 2);
  vp_dtype dt = VP_U8;
  if (dtype && vp_dtype_from_name(dtype, &dt) != VP_OK) {
    fprintf(stderr, "voxpipe convert: --dtype: %s\n", vp_last_error());
    return 2;
  }
  vp_tensor *t = NULL;
  if (vp_load(in, NULL, &t) != VP_OK) return cli_fail("convert");
  if (dtype && dt != vp_tensor_dtype(t)) {
    vp_tensor *c = NULL;
    vp_status s = vp_tensor_astype(t, dt, &c);
    vp_tensor_release(t);
    if (s != VP_OK) return cli_fail("convert");
    t = c;
  }
  vp_save_opts o;
  vp_save_opts_init(&o);
  o.compress_level = level;
  vp_status s = vp_save(out, t, &o);
  vp_tensor_release(t);
  if (s != VP_OK) return cli_fail("convert");
  return 0;
}
