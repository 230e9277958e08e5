#include <stdio.h>

#include "cli.h"

int cmd_info(int argc, char **argv) {
  (void)argc, (void)argv;
  fprintf(stderr, "voxpipe info: not built yet\n");
  return 2;
}
