/* random_object_bbox and random_crop_window on the GPU (see
 * src/cuda/object_bbox.h). Every batch is served by a fixed sequence of
 * launches with a 2-D grid (y = sample, x = blocks striding over that
 * sample's data); the per-sample decisions run the shared host/device
 * functions of object_bbox.h, so the draws equal the CPU bodies'. */
#include <cuda_runtime_api.h>
#include <stdlib.h>
#include <string.h>

#include <cub/block/block_reduce.cuh>
#include <cub/block/block_scan.cuh>

extern "C" {
#include "core/cuda_rt.h"
#include "core/status.h"
#include "cuda/ccl.h"
}
#include "core/convert.h"
#include "core/philox.h"
#include "cuda/object_bbox.h"

namespace {

constexpr int kThreads = 256;

/* Blocks along x for `work` units per sample: enough to fill the GPU
 * with the batch, at most one per unit. */
unsigned blocks_for(int64_t work, int64_t n) {
  int64_t want = (int64_t)2048 / (n > 0 ? n : 1) + 1;
  int64_t need = (work + kThreads - 1) / kThreads;
  int64_t b = need < want ? need : want;
  return (unsigned)(b < 1 ? 1 : b);
}

/* Host table -> device, in stream order; freed by the caller with
 * cudaFreeAsync. */
vp_status upload(const void *host, size_t bytes, cudaStream_t s, void **dev, const char *what) {
  *dev = NULL;
  VP_TRY(vp_cuda_malloc_async(dev, bytes, s, what));
  vp_status st = vp_cuda_upload(*dev, host, bytes, s, what);
  if (st != VP_OK) {
    (void)cudaFreeAsync(*dev, s);
    *dev = NULL;
  }
  return st;
}

vp_status launched(const char *what) {
  cudaError_t e = cudaGetLastError();
  return e == cudaSuccess ? VP_OK : vp_cuda_status(e, what);
}

/* ---- hash ---------------------------------------------------------------- */

struct HashDesc {
  const unsigned char *p;
  int64_t nbytes;
};

__global__ void __launch_bounds__(kThreads) hash_kernel(const HashDesc *d, uint64_t *sums) {
  const HashDesc h = d[blockIdx.y];
  const int64_t words = (h.nbytes + 7) >> 3, full = h.nbytes >> 3;
  const bool aligned = ((uintptr_t)h.p & 7) == 0;
  uint64_t sum = 0;
  for (int64_t k = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; k < words;
       k += (int64_t)gridDim.x * blockDim.x) {
    uint64_t w = 0;
    if (aligned && k < full) {
      w = __ldg((const unsigned long long *)h.p + k);
    } else {
      for (int b = 0; b < 8 && k * 8 + b < h.nbytes; b++) w |= (uint64_t)h.p[k * 8 + b] << (8 * b);
    }
    sum += vp_objc_hash_word(w, (uint64_t)k);
  }
  typedef cub::BlockReduce<unsigned long long, kThreads> Reduce;
  __shared__ typename Reduce::TempStorage tmp;
  unsigned long long total = Reduce(tmp).Sum((unsigned long long)sum);
  if (threadIdx.x == 0) atomicAdd((unsigned long long *)&sums[blockIdx.y], total);
}

/* ---- objects ------------------------------------------------------------- */

struct ObjDesc {
  const void *in;
  const int32_t *labels;
  const int64_t *count;
  const int64_t *boxes; /* cap * 6 */
  vp_obj *objs;         /* cap */
  int64_t numel, W;
};

/* Each object's value, written at the first voxel of every run of its
 * label along W (fewer stores than one per voxel; all write the same). */
__global__ void __launch_bounds__(kThreads)
    value_kernel(const ObjDesc *d, vp_dtype dtype, int64_t cap) {
  const ObjDesc o = d[blockIdx.y];
  for (int64_t v = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; v < o.numel;
       v += (int64_t)gridDim.x * blockDim.x) {
    int32_t L = o.labels[v];
    if (L <= 0 || L > cap) continue;
    if (v % o.W != 0 && o.labels[v - 1] == L) continue;
    o.objs[L - 1].value = (int32_t)vp_cvt_load(o.in, dtype, v);
  }
}

__global__ void boxes_kernel(const ObjDesc *d, int64_t cap) {
  const ObjDesc o = d[blockIdx.y];
  int64_t n = *o.count < cap ? *o.count : cap;
  for (int64_t k = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; k < n;
       k += (int64_t)gridDim.x * blockDim.x)
    for (int a = 0; a < 3; a++) {
      o.objs[k].lo[a] = (int32_t)o.boxes[k * 6 + a];
      o.objs[k].hi[a] = (int32_t)o.boxes[k * 6 + 3 + a];
    }
}

/* ---- selection ----------------------------------------------------------- */

struct SelDesc {
  const vp_obj *objs;
  int64_t count;
  vp_obb_params p;
  uint32_t sample;
  int32_t *box, *cls;
};

__global__ void select_kernel(const SelDesc *d, int64_t n, vp_rng_key key, uint32_t iteration) {
  int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const SelDesc *s = &d[i];
  int32_t cls;
  vp_obb_select(s->objs, s->count, &s->p, key, iteration, s->sample, s->box, &cls);
  if (s->cls) *s->cls = cls;
}

/* ---- crop window --------------------------------------------------------- */

constexpr int kChunk = 4096; /* voxels per count */
constexpr int kFindThreads = 1024;

struct CwDesc {
  vp_cw_sample s;
  const void *labels;
  int64_t numel;
  int64_t *chunk_counts; /* ceil(numel / kChunk) */
  int64_t *hist;         /* 256 */
  int64_t *anchor, *center;
};

__global__ void __launch_bounds__(kThreads) hist_kernel(const CwDesc *d, vp_dtype dtype) {
  __shared__ unsigned int bins[256];
  for (int b = threadIdx.x; b < 256; b += blockDim.x) bins[b] = 0;
  __syncthreads();
  const CwDesc c = d[blockIdx.y];
  for (int64_t v = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; v < c.numel;
       v += (int64_t)gridDim.x * blockDim.x) {
    double x = vp_cvt_load(c.labels, dtype, v);
    if (x >= 0 && x < 256 && x == (double)(int)x) atomicAdd(&bins[(int)x], 1u);
  }
  __syncthreads();
  for (int b = threadIdx.x; b < 256; b += blockDim.x)
    if (bins[b]) atomicAdd((unsigned long long *)&c.hist[b], (unsigned long long)bins[b]);
}

__global__ void choose_kernel(CwDesc *d, int64_t n, const int32_t *values, const double *weights,
                              int nv, vp_rng_key key, uint32_t iteration) {
  int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) vp_cw_choose(&d[i].s, d[i].hist, values, weights, nv, key, iteration);
}

/* One block per chunk of one sample: how many voxels match. */
__global__ void __launch_bounds__(kThreads) count_kernel(const CwDesc *d, vp_dtype dtype) {
  const CwDesc c = d[blockIdx.y];
  if (c.s.match == VP_CW_MATCH_NONE) return;
  const int64_t chunks = (c.numel + kChunk - 1) / kChunk;
  typedef cub::BlockReduce<int, kThreads> Reduce;
  __shared__ typename Reduce::TempStorage tmp;
  for (int64_t k = blockIdx.x; k < chunks; k += gridDim.x) {
    int64_t v0 = k * kChunk, v1 = v0 + kChunk < c.numel ? v0 + kChunk : c.numel;
    int hits = 0;
    for (int64_t v = v0 + threadIdx.x; v < v1; v += blockDim.x)
      hits += vp_cw_matches(&c.s, vp_cvt_load(c.labels, dtype, v));
    int total = Reduce(tmp).Sum(hits);
    if (threadIdx.x == 0) c.chunk_counts[k] = total;
    __syncthreads();
  }
}

/* One block per sample: the total, the chunk holding the voxel of the
 * drawn rank, the voxel in it, the window. */
__global__ void __launch_bounds__(kFindThreads)
    find_kernel(const CwDesc *d, vp_dtype dtype, vp_rng_key key, uint32_t iteration) {
  const CwDesc c = d[blockIdx.x];
  typedef cub::BlockReduce<long long, kFindThreads> Reduce;
  typedef cub::BlockScan<long long, kFindThreads> Scan;
  __shared__ union {
    typename Reduce::TempStorage r;
    typename Scan::TempStorage s;
  } tmp;
  __shared__ long long found_chunk, base, found_voxel;
  const vp_u32x4 r0 = vp_rng_draw(key, iteration, c.s.sample, 0);
  const vp_u32x4 r1 = vp_rng_draw(key, iteration, c.s.sample, 1);
  const int64_t chunks = (c.numel + kChunk - 1) / kChunk;
  int64_t voxel = -1;
  if (c.s.match != VP_CW_MATCH_NONE) {
    long long part = 0;
    for (int64_t k = threadIdx.x; k < chunks; k += blockDim.x) part += c.chunk_counts[k];
    long long total = Reduce(tmp.r).Sum(part);
    __shared__ long long total_s;
    if (threadIdx.x == 0) total_s = total, found_chunk = -1, found_voxel = -1;
    __syncthreads();
    total = total_s;
    if (total == 0) {
      if (c.s.mode == VP_CW_MASK_PIXEL) voxel = vp_obb_index(vp_u01d(r0.v[2], r0.v[3]), c.numel);
    } else {
      const long long rank = vp_obb_index(vp_u01d(r0.v[2], r0.v[3]), total);
      long long carry = 0;
      for (int64_t t0 = 0; t0 < chunks; t0 += blockDim.x) {
        int64_t k = t0 + threadIdx.x;
        long long cnt = k < chunks ? c.chunk_counts[k] : 0, before, tile;
        Scan(tmp.s).ExclusiveSum(cnt, before, tile);
        if (cnt > 0 && carry + before <= rank && rank < carry + before + cnt)
          found_chunk = k, base = carry + before;
        __syncthreads();
        if (found_chunk >= 0) break;
        carry += tile;
      }
      /* the voxel: each thread takes kChunk / kFindThreads consecutive voxels */
      const int per = kChunk / kFindThreads;
      int64_t v0 = found_chunk * kChunk + (int64_t)threadIdx.x * per;
      long long mine = 0, before, tile;
      for (int j = 0; j < per; j++)
        mine += v0 + j < c.numel && vp_cw_matches(&c.s, vp_cvt_load(c.labels, dtype, v0 + j));
      Scan(tmp.s).ExclusiveSum(mine, before, tile);
      long long want = rank - base;
      if (mine > 0 && before <= want && want < before + mine) {
        long long seen = before;
        for (int j = 0; j < per; j++) {
          if (!(v0 + j < c.numel && vp_cw_matches(&c.s, vp_cvt_load(c.labels, dtype, v0 + j))))
            continue;
          if (seen++ == want) {
            found_voxel = v0 + j;
            break;
          }
        }
      }
      __syncthreads();
      voxel = found_voxel;
    }
  }
  if (threadIdx.x == 0) {
    int64_t a[3];
    vp_cw_anchor(&c.s, voxel, r1, a);
    const int a0 = 3 - c.s.ndim;
    for (int k = 0; k < c.s.ndim; k++) {
      c.anchor[k] = a[k];
      if (c.center) c.center[k] = a[k] + c.s.crop[a0 + k] / 2;
    }
  }
}

}  // namespace

extern "C" vp_status vp_cuda_objc_hash(const void *const *data, const int64_t *nbytes, int64_t n,
                                       uint64_t *sums_dev, void *stream) {
  cudaStream_t s = (cudaStream_t)stream;
  HashDesc *h = (HashDesc *)malloc((size_t)n * sizeof *h);
  if (!h) return vp_fail(VP_ERR_NOMEM, "object hash: out of host memory");
  int64_t most = 0;
  for (int64_t i = 0; i < n; i++) {
    h[i].p = (const unsigned char *)data[i];
    h[i].nbytes = nbytes[i];
    most = nbytes[i] > most ? nbytes[i] : most;
  }
  void *dev = NULL;
  vp_status st = upload(h, (size_t)n * sizeof *h, s, &dev, "object hash: upload");
  free(h);
  if (st != VP_OK) return st;
  cudaError_t e = cudaMemsetAsync(sums_dev, 0, (size_t)n * sizeof *sums_dev, s);
  if (e == cudaSuccess) {
    dim3 grid(blocks_for((most + 7) / 8, n), (unsigned)n);
    hash_kernel<<<grid, kThreads, 0, s>>>((const HashDesc *)dev, sums_dev);
    st = launched("object hash kernel");
  } else {
    st = vp_cuda_status(e, "object hash: cudaMemsetAsync");
  }
  (void)cudaFreeAsync(dev, s);
  return st;
}

extern "C" vp_status vp_cuda_obb_objects(const vp_obb_gpu_sample *smp, int64_t n, vp_dtype dtype,
                                         int connectivity, double background, int64_t cap,
                                         vp_obj *objs_dev, int64_t *counts_dev, void *stream) {
  cudaStream_t s = (cudaStream_t)stream;
  int64_t(*shapes)[3] = (int64_t(*)[3])malloc((size_t)n * sizeof *shapes);
  vp_ccl_gpu_sample *cs = (vp_ccl_gpu_sample *)calloc((size_t)n, sizeof *cs);
  ObjDesc *od = (ObjDesc *)calloc((size_t)n, sizeof *od);
  vp_status st = VP_OK;
  if (!shapes || !cs || !od) st = vp_fail(VP_ERR_NOMEM, "random_object_bbox: out of host memory");
  int64_t total = 0, most = 0;
  for (int64_t i = 0; st == VP_OK && i < n; i++) {
    memcpy(shapes[i], smp[i].shape, sizeof shapes[i]);
    int64_t numel = smp[i].shape[0] * smp[i].shape[1] * smp[i].shape[2];
    total += numel;
    most = numel > most ? numel : most;
  }
  size_t ws = 0;
  if (st == VP_OK) st = vp_cuda_ccl_workspace_bytes(shapes, n, &ws);
  /* one allocation: labels, boxes, workspace */
  size_t lab_bytes = ((size_t)total * 4 + 255) & ~(size_t)255;
  size_t box_bytes = ((size_t)(n * cap) * 6 * 8 + 255) & ~(size_t)255;
  char *buf = NULL;
  if (st == VP_OK) {
    st = vp_cuda_malloc_async((void **)&buf, lab_bytes + box_bytes + ws, s, "random_object_bbox");
  }
  void *dev = NULL;
  if (st == VP_OK) {
    int32_t *labels = (int32_t *)buf;
    int64_t *boxes = (int64_t *)(buf + lab_bytes);
    int64_t at = 0;
    for (int64_t i = 0; i < n; i++) {
      int64_t numel = smp[i].shape[0] * smp[i].shape[1] * smp[i].shape[2];
      cs[i].in = smp[i].labels_in;
      cs[i].labels = labels + at;
      memcpy(cs[i].shape, smp[i].shape, sizeof cs[i].shape);
      od[i].in = smp[i].labels_in;
      od[i].labels = labels + at;
      od[i].count = counts_dev + i;
      od[i].boxes = boxes + i * cap * 6;
      od[i].objs = objs_dev + i * cap;
      od[i].numel = numel;
      od[i].W = smp[i].shape[2] > 0 ? smp[i].shape[2] : 1;
      at += numel;
    }
    vp_ccl_params p;
    memset(&p, 0, sizeof p);
    p.connectivity = connectivity;
    p.multi_label = 1;
    p.background = background;
    vp_ccl_gpu_stats stats = {cap, NULL, boxes};
    st = vp_cuda_ccl_label(cs, n, dtype, &p, NULL, counts_dev, &stats, buf + lab_bytes + box_bytes,
                           ws, stream);
    if (st == VP_OK) st = upload(od, (size_t)n * sizeof *od, s, &dev, "random_object_bbox: upload");
    if (st == VP_OK) {
      value_kernel<<<dim3(blocks_for(most, n), (unsigned)n), kThreads, 0, s>>>((const ObjDesc *)dev,
                                                                               dtype, cap);
      boxes_kernel<<<dim3(blocks_for(cap, n), (unsigned)n), kThreads, 0, s>>>((const ObjDesc *)dev,
                                                                              cap);
      st = launched("random_object_bbox: object kernels");
    }
  }
  if (dev) (void)cudaFreeAsync(dev, s);
  if (buf) (void)cudaFreeAsync(buf, s);
  free(shapes);
  free(cs);
  free(od);
  return st;
}

extern "C" vp_status vp_cuda_obb_select(const vp_obj *const *lists, const int64_t *counts,
                                        const vp_obb_params *params, int64_t n, vp_rng_key key,
                                        uint32_t iteration, const uint32_t *samples,
                                        int32_t *const *box, int32_t *const *cls, void *stream) {
  cudaStream_t s = (cudaStream_t)stream;
  SelDesc *d = (SelDesc *)calloc((size_t)n, sizeof *d);
  if (!d) return vp_fail(VP_ERR_NOMEM, "random_object_bbox: out of host memory");
  for (int64_t i = 0; i < n; i++) {
    d[i].objs = lists[i];
    d[i].count = lists[i] ? counts[i] : 0;
    d[i].p = params[i];
    d[i].sample = samples[i];
    d[i].box = box[i];
    d[i].cls = cls[i];
  }
  void *dev = NULL;
  vp_status st = upload(d, (size_t)n * sizeof *d, s, &dev, "random_object_bbox: upload");
  free(d);
  if (st != VP_OK) return st;
  select_kernel<<<(unsigned)((n + 63) / 64), 64, 0, s>>>((const SelDesc *)dev, n, key, iteration);
  st = launched("random_object_bbox: select kernel");
  (void)cudaFreeAsync(dev, s);
  return st;
}

extern "C" vp_status vp_cuda_crop_window(const vp_cw_sample *smp, const void *const *labels,
                                         int64_t n, vp_dtype dtype, const int32_t *values,
                                         const double *weights, int nv, vp_rng_key key,
                                         uint32_t iteration, int64_t *const *anchor,
                                         int64_t *const *center, void *stream) {
  cudaStream_t s = (cudaStream_t)stream;
  CwDesc *d = (CwDesc *)calloc((size_t)n, sizeof *d);
  if (!d) return vp_fail(VP_ERR_NOMEM, "random_crop_window: out of host memory");
  int64_t chunks = 0, most = 0;
  int needs_hist = 0, needs_voxels = 0;
  for (int64_t i = 0; i < n; i++) {
    d[i].s = smp[i];
    d[i].numel = smp[i].shape[0] * smp[i].shape[1] * smp[i].shape[2];
    chunks += (d[i].numel + kChunk - 1) / kChunk;
    most = d[i].numel > most ? d[i].numel : most;
    needs_hist |=
        smp[i].mode == VP_CW_CLASS_RATIOS || (smp[i].mode == VP_CW_NNUNET && smp[i].forced);
    needs_voxels |= smp[i].mode != VP_CW_ROI && (smp[i].match != VP_CW_MATCH_NONE || needs_hist);
  }
  /* scratch: chunk counts, histograms, class values and weights */
  size_t cc_bytes = (size_t)chunks * 8, h_bytes = (size_t)n * 256 * 8;
  size_t v_bytes = 256 * 4, w_bytes = 256 * 8;
  char *buf = NULL;
  cudaError_t e = cudaSuccess;
  vp_status st = vp_cuda_malloc_async((void **)&buf, cc_bytes + h_bytes + v_bytes + w_bytes, s,
                                      "random_crop_window");
  void *dev = NULL;
  if (st == VP_OK) {
    int64_t at = 0;
    for (int64_t i = 0; i < n; i++) {
      d[i].labels = labels[i];
      d[i].chunk_counts = (int64_t *)buf + at;
      d[i].hist = (int64_t *)(buf + cc_bytes) + i * 256;
      d[i].anchor = anchor[i];
      d[i].center = center ? center[i] : NULL;
      at += (d[i].numel + kChunk - 1) / kChunk;
    }
    int32_t *vals_dev = (int32_t *)(buf + cc_bytes + h_bytes);
    double *w_dev = (double *)(buf + cc_bytes + h_bytes + v_bytes);
    st = upload(d, (size_t)n * sizeof *d, s, &dev, "random_crop_window: upload");
    if (st == VP_OK && nv > 0) {
      st = vp_cuda_upload(vals_dev, values, (size_t)nv * 4, s, "random_crop_window: classes");
      if (st == VP_OK && weights)
        st = vp_cuda_upload(w_dev, weights, (size_t)nv * 8, s, "random_crop_window: weights");
    }
    if (st == VP_OK && needs_hist) {
      e = cudaMemsetAsync(buf + cc_bytes, 0, h_bytes, s);
      if (e != cudaSuccess) st = vp_cuda_status(e, "random_crop_window: cudaMemsetAsync");
      if (st == VP_OK) {
        hist_kernel<<<dim3(blocks_for(most, n), (unsigned)n), kThreads, 0, s>>>((const CwDesc *)dev,
                                                                                dtype);
        choose_kernel<<<(unsigned)((n + 63) / 64), 64, 0, s>>>((CwDesc *)dev, n, vals_dev, w_dev,
                                                               nv, key, iteration);
      }
    }
    if (st == VP_OK && needs_voxels) {
      unsigned bx = blocks_for(most / kChunk * kThreads + 1, n);
      count_kernel<<<dim3(bx, (unsigned)n), kThreads, 0, s>>>((const CwDesc *)dev, dtype);
    }
    if (st == VP_OK) {
      find_kernel<<<(unsigned)n, kFindThreads, 0, s>>>((const CwDesc *)dev, dtype, key, iteration);
      st = launched("random_crop_window kernels");
    }
  }
  if (dev) (void)cudaFreeAsync(dev, s);
  if (buf) (void)cudaFreeAsync(buf, s);
  free(d);
  return st;
}
