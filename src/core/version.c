#include "voxpipe.h"

const char *vp_version(void) {
#ifdef VP_HAVE_CUDA
  return VP_VERSION_STRING " (cuda)";
#else
  return VP_VERSION_STRING " (cpu)";
#endif
}
