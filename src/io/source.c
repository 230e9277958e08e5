#include "io/source.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/status.h"

static _Thread_local uint64_t tls_bytes_read;

uint64_t vp_io_bytes_read(void) { return tls_bytes_read; }
void vp_io_reset_bytes_read(void) { tls_bytes_read = 0; }
void vp_io_count_bytes(uint64_t n) { tls_bytes_read += n; }

vp_status vp_source_open(vp_source *s, const char *path) {
  memset(s, 0, sizeof *s);
  s->fd = -1;
  s->name = path ? path : "(null)";
  if (!path || !*path) return vp_fail(VP_ERR_INVALID_ARG, "empty file name");
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return vp_fail(VP_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = errno;
    close(fd);
    return vp_fail(VP_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
  }
  if (S_ISDIR(st.st_mode)) {
    close(fd);
    return vp_fail(VP_ERR_IO, "%s: is a directory, not a file", path);
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return vp_fail(VP_ERR_IO, "%s: is not a regular file", path);
  }
  s->fd = fd;
  s->size = (uint64_t)st.st_size;
  return VP_OK;
}

void vp_source_from_memory(vp_source *s, const void *buf, size_t n, const char *name) {
  memset(s, 0, sizeof *s);
  s->fd = -1;
  s->name = name ? name : "<memory>";
  s->mem = buf;
  s->size = n;
}

/* The read fault injector (see source.h). */
static atomic_int g_read_armed;
static _Atomic int64_t g_read_budget, g_read_delay_us;
static char g_read_pattern[256];

void vp_debug_fail_reads(const char *pattern, int64_t after) {
  atomic_store(&g_read_armed, 0);
  if (!pattern) return;
  snprintf(g_read_pattern, sizeof g_read_pattern, "%s", pattern);
  atomic_store(&g_read_budget, after);
  atomic_store(&g_read_armed, 1);
}

void vp_debug_read_delay_us(int64_t us) { atomic_store(&g_read_delay_us, us > 0 ? us : 0); }

static vp_status injected_read_fault(const vp_source *s, uint64_t off) {
  int64_t us = atomic_load_explicit(&g_read_delay_us, memory_order_relaxed);
  if (us > 0) usleep((useconds_t)(us > 10000000 ? 10000000 : us));
  if (!atomic_load_explicit(&g_read_armed, memory_order_acquire)) return VP_OK;
  if (!strstr(s->name, g_read_pattern)) return VP_OK;
  if (atomic_fetch_sub(&g_read_budget, 1) > 0) return VP_OK;
  return vp_fail(VP_ERR_IO, "%s: read error at offset %llu: %s (injected fault)", s->name,
                 (unsigned long long)off, strerror(EIO));
}

vp_status vp_source_read(vp_source *s, uint64_t off, void *dst, size_t n) {
  VP_TRY(injected_read_fault(s, off));
  if (off > s->size || n > s->size - off)
    return vp_fail(VP_ERR_FORMAT,
                   "%s: truncated: needs %zu bytes at offset %llu but the file has %llu bytes",
                   s->name, n, (unsigned long long)off, (unsigned long long)s->size);
  if (s->mem) {
    memcpy(dst, s->mem + off, n);
    tls_bytes_read += n;
    return VP_OK;
  }
  unsigned char *d = dst;
  size_t done = 0;
  while (done < n) {
    size_t chunk = n - done > ((size_t)1 << 30) ? ((size_t)1 << 30) : n - done;
    ssize_t r = pread(s->fd, d + done, chunk, (off_t)(off + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return vp_fail(VP_ERR_IO, "%s: read error at offset %llu: %s", s->name,
                     (unsigned long long)(off + done), strerror(errno));
    }
    if (r == 0)
      return vp_fail(VP_ERR_FORMAT, "%s: truncated: the file ended at offset %llu", s->name,
                     (unsigned long long)(off + done));
    done += (size_t)r;
    tls_bytes_read += (uint64_t)r;
  }
  return VP_OK;
}

vp_status vp_source_map(vp_source *s, const unsigned char **out) {
  if (s->mem) {
    *out = s->mem;
    return VP_OK;
  }
  if (s->size == 0) {
    static const unsigned char empty[1];
    *out = empty;
    return VP_OK;
  }
  if (s->size > SIZE_MAX) return vp_fail(VP_ERR_OVERFLOW, "%s: too large to map", s->name);
  void *p = mmap(NULL, (size_t)s->size, PROT_READ, MAP_PRIVATE, s->fd, 0);
  if (p == MAP_FAILED) return vp_fail(VP_ERR_IO, "%s: cannot map: %s", s->name, strerror(errno));
  (void)madvise(p, (size_t)s->size, MADV_SEQUENTIAL);
  s->mem = p;
  s->mapped = 1;
  *out = p;
  return VP_OK;
}

void vp_source_close(vp_source *s) {
  if (!s) return;
  if (s->mapped) munmap((void *)s->mem, (size_t)s->size);
  if (s->fd >= 0) close(s->fd);
  s->mem = NULL;
  s->mapped = 0;
  s->fd = -1;
}
