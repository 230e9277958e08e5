#include "cli.h"

int cli_write_preview(const char *png_path, const vp_tensor *image, const vp_tensor *label,
                      int axis) {
  (void)png_path, (void)image, (void)label, (void)axis;
  return 2;
}
