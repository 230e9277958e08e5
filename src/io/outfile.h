/* Output files written whole or not at all: data goes to a temporary file
 * beside the target, renamed over it on commit and removed on abort. */
#ifndef VP_IO_OUTFILE_H
#define VP_IO_OUTFILE_H

#include <stddef.h>

#include "voxpipe.h"

typedef struct vp_outfile {
  char *path;
  char *tmp;
  int fd;
} vp_outfile;

vp_status vp_outfile_open(vp_outfile *f, const char *path);
vp_status vp_outfile_write(vp_outfile *f, const void *data, size_t n);
/* Renames into place; on failure the temporary is removed. Closes f. */
vp_status vp_outfile_commit(vp_outfile *f);
/* Removes the temporary; accepts a closed or never-opened f. */
void vp_outfile_abort(vp_outfile *f);

#endif
