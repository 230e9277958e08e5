#include "io/outfile.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/status.h"

vp_status vp_outfile_open(vp_outfile *f, const char *path) {
  memset(f, 0, sizeof *f);
  f->fd = -1;
  if (!path || !*path) return vp_fail(VP_ERR_INVALID_ARG, "empty output file name");
  size_t n = strlen(path);
  f->path = strdup(path);
  f->tmp = malloc(n + 16);
  if (!f->path || !f->tmp) {
    vp_outfile_abort(f);
    return vp_fail(VP_ERR_NOMEM, "%s: out of memory", path);
  }
  snprintf(f->tmp, n + 16, "%s.tmp.XXXXXX", path);
  f->fd = mkstemp(f->tmp);
  if (f->fd < 0) {
    int e = errno;
    free(f->tmp);
    f->tmp = NULL;
    vp_outfile_abort(f);
    return vp_fail(VP_ERR_IO, "%s: cannot create: %s", path, strerror(e));
  }
  return VP_OK;
}

vp_status vp_outfile_write(vp_outfile *f, const void *data, size_t n) {
  const char *p = data;
  while (n > 0) {
    ssize_t w = write(f->fd, p, n > ((size_t)1 << 30) ? ((size_t)1 << 30) : n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return vp_fail(VP_ERR_IO, "%s: write failed: %s", f->path, strerror(errno));
    }
    p += w;
    n -= (size_t)w;
  }
  return VP_OK;
}

vp_status vp_outfile_commit(vp_outfile *f) {
  vp_status s = VP_OK;
  /* mkstemp makes 0600 files; give the usual permissions */
  mode_t mask = umask(0);
  umask(mask);
  (void)fchmod(f->fd, 0666 & ~mask); /* not fatal */
  if (close(f->fd) != 0) s = vp_fail(VP_ERR_IO, "%s: close failed: %s", f->path, strerror(errno));
  f->fd = -1;
  if (s == VP_OK && rename(f->tmp, f->path) != 0)
    s = vp_fail(VP_ERR_IO, "%s: cannot rename into place: %s", f->path, strerror(errno));
  if (s == VP_OK) {
    free(f->tmp);
    f->tmp = NULL;
  }
  vp_outfile_abort(f);
  return s;
}

void vp_outfile_abort(vp_outfile *f) {
  if (!f) return;
  if (f->fd >= 0) close(f->fd);
  f->fd = -1;
  if (f->tmp) unlink(f->tmp);
  free(f->tmp);
  free(f->path);
  f->tmp = f->path = NULL;
}
