#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdlib.h>

#include "cli.h"

static const struct {
  const char *name;
  int (*run)(int argc, char **argv);
  const char *help;
} k_commands[] = {
    {"info", cmd_info, "FILE...            shape, dtype, spacing, affine and value range"},
    {"convert", cmd_convert, "IN OUT [--dtype T]  convert between .nii, .nii.gz and .npy"},
    {"synth", cmd_synth, "--kind brats|kits --out DIR [...]  write a synthetic dataset"},
    {"run", cmd_run, "PIPELINE.json [--iterations N] [--device cpu|gpu] [--save DIR]  run a pipeline file"},
    {"preview", cmd_preview, "IMAGE [--label L] --out PNG | --pipeline FILE --out DIR  PNG montages"},
    {"ops", cmd_ops, "[NAME] [--markdown]  list operators, or describe one"},
};

static void usage(FILE *f) {
  fprintf(f, "voxpipe %s\nusage: voxpipe COMMAND [ARGS]\n\ncommands:\n", vp_version());
  for (size_t i = 0; i < sizeof k_commands / sizeof k_commands[0]; i++)
    fprintf(f, "  %-8s %s\n", k_commands[i].name, k_commands[i].help);
  fprintf(f, "\n'voxpipe COMMAND --help' shows a command's options.\n");
}

int cli_is_dir(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int cli_fail(const char *what) {
  fprintf(stderr, "voxpipe: %s: %s\n", what, vp_last_error());
  return 1;
}

void cli_progress(const char *label, long done, long total) {
  static int enabled = -1;
  if (enabled < 0) {
    const char *e = getenv("VP_PROGRESS");
    enabled = e ? atoi(e) != 0 : isatty(2);
  }
  if (!enabled) return;
  fprintf(stderr, "\r%s %ld/%ld", label, done, total);
  if (done >= total) fputc('\n', stderr);
  fflush(stderr);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
    usage(stdout);
    return 0;
  }
  if (!strcmp(argv[1], "--version")) {
    printf("voxpipe %s\n", vp_version());
    return 0;
  }
  for (size_t i = 0; i < sizeof k_commands / sizeof k_commands[0]; i++)
    if (!strcmp(argv[1], k_commands[i].name)) return k_commands[i].run(argc - 1, argv + 1);
  fprintf(stderr, "voxpipe: unknown command '%s'\n", argv[1]);
  usage(stderr);
  return 2;
}
