/* The pointwise engine on the GPU (src/ops/pointwise.h): per statistics
 * pass one reduction launch over the whole batch (a block per chunk of a
 * (sample, channel), the chain's prefix evaluated on the fly, a fixed-order
 * block reduction into one partial per chunk) and one small launch that
 * combines the partials in a fixed order and resolves the step on the
 * device (no host round trip); then one launch of the final pass: a block
 * per chunk of a (sample, channel), whose steps it stages in shared memory,
 * four elements per thread and iteration (vector loads when aligned).
 *
 * The per-voxel arithmetic is src/cuda/pointwise.h's, shared with the CPU
 * body; float16/float32 chains whose every step computes in float carry
 * floats, all others doubles. */
#include <cuda_runtime_api.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "core/cuda_rt.h"
#include "core/status.h"
}
#include "cuda/batch_launch.h"
#include "cuda/pointwise.h"

#include <cuda_fp16.h>

namespace {

constexpr int kThreads = 256;
/* elements of one final-pass block: 4 per thread, 4 iterations */
constexpr int64_t kApplyChunk = 4 * kThreads * 4;

enum Mode { kGeneric, kF32F32, kF32F16, kF16F16, kF16F32 };

/* The (sample, channel, element range) of block b over chunks of `chunk`
 * elements; false when the sample has none. */
struct Place {
  int64_t s, c, lo, hi;
};
__device__ __forceinline__ Place place(const int64_t *off, const vp_pw_sample *samples, int64_t n,
                                       int64_t chunk) {
  Place p;
  const int64_t b = blockIdx.x;
  p.s = vp_bl_find(off, 0, n, b);
  const int64_t cn = samples[p.s].chan_numel, cpc = (cn + chunk - 1) / chunk;
  const int64_t local = b - off[p.s];
  p.c = local / cpc;
  p.lo = (local % cpc) * chunk;
  p.hi = p.lo + chunk < cn ? p.lo + chunk : cn;
  return p;
}

/* Copies a (sample, channel)'s steps into shared memory. */
__device__ __forceinline__ void stage_steps(vp_pw_step *sh, const vp_pw_step *src, int nsteps) {
  const int words = nsteps * (int)(sizeof(vp_pw_step) / 4);
  for (int k = threadIdx.x; k < words; k += blockDim.x)
    ((uint32_t *)sh)[k] = ((const uint32_t *)src)[k];
  __syncthreads();
}

/* IEEE conversions with round to nearest even: the values of
 * core/convert.h's (NaN payloads aside), in one instruction. */
__device__ __forceinline__ float h2f(uint16_t h) {
  if ((h & 0x7c00u) == 0x7c00u && (h & 0x3ffu)) return vp_cvt_half_to_float(h); /* NaN bits */
  return __half2float(__ushort_as_half(h));
}
__device__ __forceinline__ uint16_t f2h(float f) {
  if (f != f) return vp_cvt_float_to_half(f);
  return __half_as_ushort(__float2half_rn(f));
}

__device__ __forceinline__ void copy_elems(const void *in, void *out, int es, int64_t e, int cnt) {
  for (int k = 0; k < cnt; k++) switch (es) {
      case 1: ((uint8_t *)out)[e + k] = ((const uint8_t *)in)[e + k]; break;
      case 2: ((uint16_t *)out)[e + k] = ((const uint16_t *)in)[e + k]; break;
      case 4: ((uint32_t *)out)[e + k] = ((const uint32_t *)in)[e + k]; break;
      default: ((uint64_t *)out)[e + k] = ((const uint64_t *)in)[e + k]; break;
    }
}

template <int M>
__device__ __forceinline__ void load_f(const void *in, int64_t e, int cnt, bool vec, float v[4]) {
  if (M == kF32F32 || M == kF32F16) {
    const float *p = (const float *)in + e;
    if (vec) {
      float4 q = *(const float4 *)p;
      v[0] = q.x, v[1] = q.y, v[2] = q.z, v[3] = q.w;
    } else {
      for (int k = 0; k < 4; k++) v[k] = k < cnt ? p[k] : 0.f;
    }
  } else {
    const uint16_t *p = (const uint16_t *)in + e;
    if (vec) {
      uint2 q = *(const uint2 *)p;
      v[0] = h2f((uint16_t)(q.x & 0xffff));
      v[1] = h2f((uint16_t)(q.x >> 16));
      v[2] = h2f((uint16_t)(q.y & 0xffff));
      v[3] = h2f((uint16_t)(q.y >> 16));
    } else {
      for (int k = 0; k < 4; k++) v[k] = k < cnt ? h2f(p[k]) : 0.f;
    }
  }
}

template <int M>
__device__ __forceinline__ void store_f(void *out, int64_t e, int cnt, bool vec, const float v[4]) {
  if (M == kF32F32 || M == kF16F32) {
    float *p = (float *)out + e;
    if (vec) *(float4 *)p = make_float4(v[0], v[1], v[2], v[3]);
    else
      for (int k = 0; k < cnt; k++) p[k] = v[k];
  } else {
    uint16_t *p = (uint16_t *)out + e;
    if (vec) {
      uint2 q;
      q.x = (uint32_t)f2h(v[0]) | ((uint32_t)f2h(v[1]) << 16);
      q.y = (uint32_t)f2h(v[2]) | ((uint32_t)f2h(v[3]) << 16);
      *(uint2 *)p = q;
    } else {
      for (int k = 0; k < cnt; k++) p[k] = f2h(v[k]);
    }
  }
}

template <int M>
__global__ void __launch_bounds__(kThreads)
    apply_kernel(const int64_t *off, const vp_pw_sample *samples, int64_t n,
                 const vp_pw_step *table, int nsteps, vp_dtype tin, vp_dtype tout) {
  extern __shared__ vp_pw_step sh[];
  const Place p = place(off, samples, n, kApplyChunk);
  const vp_pw_sample sm = samples[p.s];
  const int64_t base = p.c * sm.chan_numel;
  if (sm.flags & VP_PW_COPY) {
    const int es = tin == VP_U8 || tin == VP_I8 ? 1
                   : tin == VP_U16 || tin == VP_I16 || tin == VP_F16 ? 2
                   : tin == VP_I64 || tin == VP_F64 ? 8 : 4;
    for (int64_t e = p.lo + 4 * threadIdx.x; e < p.hi; e += 4 * blockDim.x)
      copy_elems(sm.in, sm.out, es, base + e, p.hi - e < 4 ? (int)(p.hi - e) : 4);
    return;
  }
  stage_steps(sh, table + sm.steps + p.c * nsteps, nsteps);
  const bool aligned = (sm.flags & VP_PW_ALIGNED) != 0;
  if (M != kGeneric && aligned && p.hi - p.lo == kApplyChunk) {
    /* a full aligned chunk: all of the thread's loads in flight at once */
    constexpr int kIter = (int)(kApplyChunk / (4 * kThreads));
    float v[kIter][4];
#pragma unroll
    for (int r = 0; r < kIter; r++)
      load_f<M>(sm.in, base + p.lo + 4 * (threadIdx.x + r * kThreads), 4, true, v[r]);
#pragma unroll
    for (int r = 0; r < kIter; r++) {
      const int64_t e = base + p.lo + 4 * (threadIdx.x + r * kThreads);
      for (int j = 0; j < nsteps; j++) vp_pw_apply_f(&sh[j], v[r], e, 4);
      store_f<M>(sm.out, e, 4, true, v[r]);
    }
    return;
  }
  for (int64_t e = p.lo + 4 * threadIdx.x; e < p.hi; e += 4 * blockDim.x) {
    const int cnt = p.hi - e < 4 ? (int)(p.hi - e) : 4;
    if (M == kGeneric) {
      double v[4];
      for (int k = 0; k < 4; k++) v[k] = k < cnt ? vp_cvt_load(sm.in, tin, base + e + k) : 0;
      vp_pw_program_d(sh, nsteps, v, base + e, cnt);
      for (int k = 0; k < cnt; k++) vp_cvt_store(sm.out, tout, base + e + k, v[k]);
    } else {
      const bool vec = aligned && cnt == 4;
      float v[4];
      load_f<M>(sm.in, base + e, cnt, vec, v);
      for (int j = 0; j < nsteps; j++) vp_pw_apply_f(&sh[j], v, base + e, cnt);
      store_f<M>(sm.out, base + e, cnt, vec, v);
    }
  }
}

/* Fixed-order reduction of the block's statistics into thread 0. */
__device__ void block_reduce(vp_pw_stats &a) {
  __shared__ vp_pw_stats warp_sums[kThreads / 32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  for (int o = 16; o > 0; o >>= 1) {
    vp_pw_stats b;
    b.n = __shfl_down_sync(0xffffffffu, a.n, o);
    b.sum = __shfl_down_sync(0xffffffffu, a.sum, o);
    b.sumsq = __shfl_down_sync(0xffffffffu, a.sumsq, o);
    b.min = __shfl_down_sync(0xffffffffu, a.min, o);
    b.max = __shfl_down_sync(0xffffffffu, a.max, o);
    vp_pw_stats_merge(&a, &b);
  }
  if (lane == 0) warp_sums[warp] = a;
  __syncthreads();
  if (threadIdx.x == 0)
    for (int w = 1; w < (int)(blockDim.x >> 5); w++) vp_pw_stats_merge(&a, &warp_sums[w]);
  __syncthreads();
}

/* Statistics of step j's input over one chunk: the steps before j on the
 * fly. */
__global__ void __launch_bounds__(kThreads)
    reduce_kernel(const int64_t *off, const vp_pw_sample *samples, int64_t n,
                  const vp_pw_step *table, int nsteps, int j, vp_dtype tin, vp_pw_stats *partial) {
  extern __shared__ vp_pw_step sh[];
  const Place p = place(off, samples, n, VP_PW_CHUNK);
  const vp_pw_sample sm = samples[p.s];
  const int64_t base = p.c * sm.chan_numel;
  stage_steps(sh, table + sm.steps + p.c * nsteps, j + 1);
  const int nonzero = (sh[j].stats & VP_PW_STAT_NONZERO) != 0;
  vp_pw_stats acc;
  vp_pw_stats_init(&acc);
  for (int64_t e = p.lo + 4 * threadIdx.x; e < p.hi; e += 4 * blockDim.x) {
    const int cnt = p.hi - e < 4 ? (int)(p.hi - e) : 4;
    double v[4];
    for (int k = 0; k < 4; k++) v[k] = k < cnt ? vp_cvt_load(sm.in, tin, base + e + k) : 0;
    vp_pw_program_d(sh, j, v, base + e, cnt);
    for (int k = 0; k < cnt; k++) vp_pw_stats_add(&acc, v[k], nonzero);
  }
  block_reduce(acc);
  if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}

/* Block s: sample s's chunks per channel in order, its channels in order,
 * then step j resolved on each channel. */
__global__ void __launch_bounds__(kThreads)
    finish_kernel(const int64_t *off, const vp_pw_sample *samples, vp_pw_step *table, int nsteps,
                  int j, vp_pw_stats *partial) {
  const int64_t s = blockIdx.x;
  if (off[s + 1] == off[s]) return;
  const vp_pw_sample sm = samples[s];
  const int64_t cpc = (sm.chan_numel + VP_PW_CHUNK - 1) / VP_PW_CHUNK;
  vp_pw_stats *first = partial + off[s];
  __shared__ vp_pw_stats all;
  vp_pw_stats total;
  vp_pw_stats_init(&total);
  for (int64_t c = 0; c < sm.channels; c++) {
    vp_pw_stats acc;
    vp_pw_stats_init(&acc);
    for (int64_t b = threadIdx.x; b < cpc; b += blockDim.x) vp_pw_stats_merge(&acc, &first[c * cpc + b]);
    block_reduce(acc);
    if (threadIdx.x == 0) {
      first[c * cpc] = acc; /* the channel's statistics, in its first slot */
      vp_pw_stats_merge(&total, &acc);
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) all = total;
  __syncthreads();
  for (int64_t c = threadIdx.x; c < sm.channels; c += blockDim.x) {
    vp_pw_step *st = table + sm.steps + c * nsteps;
    const vp_pw_stats *use = (st[j].stats & VP_PW_STAT_CHANNEL) ? &first[c * cpc] : &all;
    vp_pw_resolve(&st[j], use, j + 1 < nsteps ? &st[j + 1] : NULL);
  }
}

vp_status check_grid(int64_t blocks) {
  if (blocks > 0x7fffffff)
    return vp_fail(VP_ERR_OVERFLOW, "pointwise: %lld blocks in one launch", (long long)blocks);
  return VP_OK;
}

vp_status stats_pass(const vp_pw_sample *samples, int64_t n, vp_pw_step *dtab, int nsteps,
                     const uint8_t *need, int j, vp_dtype in, int64_t *units, cudaStream_t st) {
  for (int64_t i = 0; i < n; i++)
    units[i] = need[i * nsteps + j]
                   ? samples[i].channels * ((samples[i].chan_numel + VP_PW_CHUNK - 1) / VP_PW_CHUNK)
                   : 0;
  vp_bl_table t;
  VP_TRY(vp_bl_upload(samples, sizeof *samples, n, units, st, &t));
  vp_status s = check_grid(t.total);
  if (s == VP_OK && t.total > 0) {
    vp_pw_stats *partial = NULL;
    cudaError_t e = cudaMallocAsync((void **)&partial, (size_t)t.total * sizeof *partial, st);
    if (e == cudaSuccess) {
      const vp_pw_sample *ds = (const vp_pw_sample *)t.descs;
      reduce_kernel<<<(unsigned)t.total, kThreads, (size_t)(j + 1) * sizeof(vp_pw_step), st>>>(
          t.offsets, ds, n, dtab, nsteps, j, in, partial);
      finish_kernel<<<(unsigned)n, kThreads, 0, st>>>(t.offsets, ds, dtab, nsteps, j, partial);
      e = cudaGetLastError();
      cudaFreeAsync(partial, st);
    }
    if (e != cudaSuccess) s = vp_cuda_status(e, "pointwise statistics");
  }
  vp_bl_free(&t, st);
  return s;
}

template <int M>
void launch_apply(int64_t blocks, const int64_t *off, const vp_pw_sample *ds, int64_t n,
                  const vp_pw_step *dtab, int nsteps, vp_dtype in, vp_dtype out, cudaStream_t st) {
  apply_kernel<M><<<(unsigned)blocks, kThreads, (size_t)nsteps * sizeof(vp_pw_step), st>>>(
      off, ds, n, dtab, nsteps, in, out);
}

size_t align256(size_t x) { return (x + 255) & ~(size_t)255; }

}  // namespace

extern "C" vp_status vp_cuda_pointwise(const vp_pw_sample *samples, int64_t n,
                                       const vp_pw_step *table, int64_t table_len, int nsteps,
                                       const uint8_t *need, vp_dtype in, vp_dtype out,
                                       void *stream) {
  cudaStream_t st = (cudaStream_t)stream;
  if (n < 1 || nsteps < 1 || table_len < 1) return VP_OK;
  if (n > ((int64_t)1 << 24))
    return vp_fail(VP_ERR_INVALID_ARG, "pointwise: %lld samples", (long long)n);
  /* one upload for the final pass's block offsets, the samples and the
   * steps: small pageable copies cost more than the kernel of a patch */
  const size_t off_bytes = align256((size_t)(n + 1) * sizeof(int64_t));
  const size_t smp_bytes = align256((size_t)n * sizeof *samples);
  const size_t tab_bytes = (size_t)table_len * sizeof *table;
  const size_t bytes = off_bytes + smp_bytes + tab_bytes;
  unsigned char *host = (unsigned char *)malloc(bytes);
  int64_t *units = (int64_t *)malloc((size_t)n * sizeof *units);
  if (!host || !units) {
    free(host);
    free(units);
    return vp_fail(VP_ERR_NOMEM, "pointwise: out of host memory");
  }
  int64_t *off = (int64_t *)host;
  off[0] = 0;
  for (int64_t i = 0; i < n; i++) {
    int64_t u = samples[i].channels * ((samples[i].chan_numel + kApplyChunk - 1) / kApplyChunk);
    off[i + 1] = off[i] + u;
  }
  memcpy(host + off_bytes, samples, (size_t)n * sizeof *samples);
  memcpy(host + off_bytes + smp_bytes, table, tab_bytes);
  vp_status s = check_grid(off[n]);
  const int64_t blocks = off[n];
  unsigned char *dev = NULL;
  if (s == VP_OK) {
    cudaError_t e = cudaMallocAsync((void **)&dev, bytes, st);
    if (e == cudaSuccess) {
      e = cudaMemcpyAsync(dev, host, bytes, cudaMemcpyHostToDevice, st);
      if (e != cudaSuccess) s = vp_cuda_status(e, "pointwise: table upload");
    } else {
      dev = NULL;
      s = vp_cuda_status(e, "pointwise: device table");
    }
  }
  free(host);
  vp_pw_step *dtab = dev ? (vp_pw_step *)(dev + off_bytes + smp_bytes) : NULL;
  for (int j = 0; j < nsteps && s == VP_OK; j++) {
    int any = 0;
    for (int64_t i = 0; i < n && !any; i++) any = need[i * nsteps + j];
    if (any) s = stats_pass(samples, n, dtab, nsteps, need, j, in, units, st);
  }
  if (s == VP_OK && blocks > 0) {
    int fl = (in == VP_F32 || in == VP_F16) && (out == VP_F32 || out == VP_F16);
    for (int64_t k = 0; k < table_len && fl; k++) fl = table[k].fp32;
    const int64_t *doff = (const int64_t *)dev;
    const vp_pw_sample *ds = (const vp_pw_sample *)(dev + off_bytes);
    if (!fl) launch_apply<kGeneric>(blocks, doff, ds, n, dtab, nsteps, in, out, st);
    else if (in == VP_F32 && out == VP_F32) launch_apply<kF32F32>(blocks, doff, ds, n, dtab, nsteps, in, out, st);
    else if (in == VP_F32) launch_apply<kF32F16>(blocks, doff, ds, n, dtab, nsteps, in, out, st);
    else if (out == VP_F16) launch_apply<kF16F16>(blocks, doff, ds, n, dtab, nsteps, in, out, st);
    else launch_apply<kF16F32>(blocks, doff, ds, n, dtab, nsteps, in, out, st);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) s = vp_cuda_status(e, "pointwise launch");
  }
  if (dev) cudaFreeAsync(dev, st);
  free(units);
  return s;
}
