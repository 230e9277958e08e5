/* Upload and stream-ordered release of the per-call descriptor tables. */
#include <cuda_runtime_api.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "core/cuda_rt.h"
#include "core/status.h"
}
#include "cuda/batch_launch.h"

namespace {
/* Enough blocks to fill any GPU several times over. */
constexpr int64_t kMaxBlocks = 65536;
}  // namespace

unsigned vp_bl_blocks(int64_t total) {
  int64_t b = (total + vp_bl_threads - 1) / vp_bl_threads;
  if (b < 1) b = 1;
  return (unsigned)(b > kMaxBlocks ? kMaxBlocks : b);
}

vp_status vp_bl_upload(const void *descs, size_t desc_size, int64_t n, const int64_t *units,
                       cudaStream_t s, vp_bl_table *out) {
  memset(out, 0, sizeof *out);
  if (n < 1 || n > (int64_t)1 << 24)
    return vp_fail(VP_ERR_INVALID_ARG, "batched launch: %lld samples", (long long)n);
  /* the descriptors start 256-aligned after the offsets */
  size_t off_bytes = (((size_t)(n + 1) * sizeof(int64_t)) + 255) & ~(size_t)255;
  size_t bytes = off_bytes + (size_t)n * desc_size;
  unsigned char *host = (unsigned char *)malloc(bytes);
  if (!host) return vp_fail(VP_ERR_NOMEM, "batched launch: %zu-byte table", bytes);
  int64_t *off = (int64_t *)host;
  off[0] = 0;
  for (int64_t i = 0; i < n; i++) {
    if (units[i] < 0 || off[i] > INT64_MAX / 2 - units[i]) {
      free(host);
      return vp_fail(VP_ERR_OVERFLOW, "batched launch: sample %lld has %lld units",
                     (long long)i, (long long)units[i]);
    }
    off[i + 1] = off[i] + units[i];
  }
  memcpy(host + off_bytes, descs, (size_t)n * desc_size);
  void *dev = NULL;
  vp_status st = vp_cuda_malloc_async(&dev, bytes, s, "batched launch: sample table");
  if (st != VP_OK) {
    free(host);
    return st;
  }
  /* the upload copies the bytes before returning: the host buffer may go */
  st = vp_cuda_upload(dev, host, bytes, s, "batched launch: sample table");
  int64_t total = off[n];
  free(host);
  if (st != VP_OK) {
    (void)cudaFreeAsync(dev, s);
    return st;
  }
  out->dev = dev;
  out->offsets = (const int64_t *)dev;
  out->descs = (const unsigned char *)dev + off_bytes;
  out->n = n;
  out->total = total;
  return VP_OK;
}

void vp_bl_free(vp_bl_table *t, cudaStream_t s) {
  if (t->dev) (void)cudaFreeAsync(t->dev, s);
  t->dev = NULL;
}
