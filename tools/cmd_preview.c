#include <stdio.h>

#include "cli.h"

int cmd_preview(int argc, char **argv) {
  (void)argc, (void)argv;
  fprintf(stderr, "voxpipe preview: not built yet\n");
  return 2;
}
