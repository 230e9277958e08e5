#include <stdio.h>

#include "cli.h"

int cmd_convert(int argc, char **argv) {
  (void)argc, (void)argv;
  fprintf(stderr, "voxpipe convert: not built yet\n");
  return 2;
}
