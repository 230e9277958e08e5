/* voxpipe synth: write a synthetic BraTS- or KiTS19-like dataset. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void synth_usage(FILE *f) {
  fprintf(f,
          "usage: voxpipe synth --kind brats|kits --out DIR [options]\n"
          "\n"
          "Writes deterministic synthetic cases (no patient data) and a dataset.json.\n"
          "\n"
          "  --kind brats|kits   brats: 4 MRI modalities [4,D,H,W] int16, labels {0,1,2,4};\n"
          "                      kits: 1 CT channel in HU, labels {0,1,2}\n"
          "  --out DIR           output directory (created)\n"
          "  --cases N           number of cases (default 1)\n"
          "  --seed S            random seed (default 0)\n"
          "  --shape D,H,W       case size (default brats 155,240,240; kits drawn per case)\n"
          "  --scale F           multiplies the default / drawn shape (e.g. 0.25)\n"
          "  --format nii|npy    nii: MSD layout imagesTr/ labelsTr/ .nii.gz (default);\n"
          "                      npy: case_XXXXX_x.npy float32 normalised + _y.npy uint8\n"
          "  --threads N         threads (default 0 = all cores)\n");
}

static int bad_usage(const char *opt, const char *why) {
  fprintf(stderr, "voxpipe synth: %s: %s\n", opt, why);
  fprintf(stderr, "run 'voxpipe synth --help' for the options\n");
  return 2;
}

static int parse_long(const char *s, long long lo, long long hi, long long *out) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || end == s || *end || v < lo || v > hi) return 0;
  *out = v;
  return 1;
}

static int parse_u64(const char *s, uint64_t *out) {
  char *end;
  errno = 0;
  if (*s == '-') return 0;
  unsigned long long v = strtoull(s, &end, 0);
  if (errno || end == s || *end) return 0;
  *out = v;
  return 1;
}

static int parse_shape(const char *s, int64_t out[3]) {
  char buf[128];
  if (strlen(s) >= sizeof buf) return 0;
  strcpy(buf, s);
  char *save = NULL, *tok = strtok_r(buf, ",x", &save);
  for (int a = 0; a < 3; a++, tok = strtok_r(NULL, ",x", &save)) {
    long long v;
    if (!tok || !parse_long(tok, 8, 4096, &v)) return 0;
    out[a] = v;
  }
  return tok == NULL;
}

static void on_progress(int done, int total, void *ctx) {
  (void)ctx;
  cli_progress("synth", done, total);
}

int cmd_synth(int argc, char **argv) {
  vp_synth_opts o;
  vp_synth_opts_init(&o);
  const char *out = NULL;
  int have_kind = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      synth_usage(stdout);
      return 0;
    }
    if (strncmp(a, "--", 2) != 0) return bad_usage(a, "unexpected argument");
    static const char *with_value[] = {"--kind",  "--out",   "--cases",  "--seed",
                                       "--shape", "--scale", "--format", "--threads"};
    int known = 0;
    for (size_t k = 0; k < sizeof with_value / sizeof with_value[0]; k++)
      known |= !strcmp(a, with_value[k]);
    if (!known) return bad_usage(a, "unknown option");
    if (i + 1 >= argc) return bad_usage(a, "needs a value");
    const char *v = argv[++i];
    long long n;
    if (!strcmp(a, "--kind")) {
      if (!strcmp(v, "brats"))
        o.kind = VP_SYNTH_BRATS;
      else if (!strcmp(v, "kits"))
        o.kind = VP_SYNTH_KITS;
      else
        return bad_usage(a, "expected brats or kits");
      have_kind = 1;
    } else if (!strcmp(a, "--out")) {
      out = v;
    } else if (!strcmp(a, "--cases")) {
      if (!parse_long(v, 1, 100000, &n)) return bad_usage(a, "expected an integer in [1, 100000]");
      o.num_cases = (int)n;
    } else if (!strcmp(a, "--seed")) {
      if (!parse_u64(v, &o.seed)) return bad_usage(a, "expected a non-negative integer");
    } else if (!strcmp(a, "--shape")) {
      if (!parse_shape(v, o.shape)) return bad_usage(a, "expected D,H,W, each in [8, 4096]");
    } else if (!strcmp(a, "--scale")) {
      char *end;
      double f = strtod(v, &end);
      if (end == v || *end || !(f > 0 && f <= 16))
        return bad_usage(a, "expected a number in (0, 16]");
      o.scale = f;
    } else if (!strcmp(a, "--format")) {
      if (!strcmp(v, "nii") || !strcmp(v, "nii.gz"))
        o.format = 0;
      else if (!strcmp(v, "npy"))
        o.format = 1;
      else
        return bad_usage(a, "expected nii or npy");
    } else if (!strcmp(a, "--threads")) {
      if (!parse_long(v, 0, 4096, &n)) return bad_usage(a, "expected an integer in [0, 4096]");
      o.threads = (int)n;
    }
  }
  if (!have_kind) return bad_usage("--kind", "is required (brats or kits)");
  if (!out) return bad_usage("--out", "is required");
  if (vp_synth_dataset(&o, out, on_progress, NULL) != VP_OK) return cli_fail("synth");
  return 0;
}
