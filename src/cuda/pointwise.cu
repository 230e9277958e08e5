/* The pointwise engine on the GPU (src/ops/pointwise.h).
 *
 * Grid: x = chunks of a channel, y = channel, z = sample (each looping when
 * the batch outgrows the grid), so a block finds its sample, channel and
 * element range from blockIdx with no search and no division per element.
 *
 * The launch's samples and steps travel in the kernel's parameters (a
 * __grid_constant__ struct) when no step needs statistics and they fit:
 * then a call is one launch with no allocation and no copy, the usual case
 * of random augmentations with p < 1. Otherwise they are uploaded once
 * (one allocation, one copy) with room for the statistics' partials.
 *
 * Statistics pass (per step j that some sample needs): one reduction launch
 * (a block per VP_PW_CHUNK elements of a (sample, channel), the steps
 * before j evaluated on the fly, a fixed-order block reduction into one
 * partial per chunk) and one small launch that combines the partials in a
 * fixed order and resolves step j on the device: no atomics, so a seed
 * gives the same bytes every run. Final pass: four elements per thread and
 * group, kUnroll groups per thread loaded before any is computed (float4
 * loads, 8-byte float16 stores), the steps staged in shared memory.
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
#include <cuda_fp16.h>

#include "cuda/pointwise.h"

namespace {

constexpr int kThreads = 256;
constexpr int kUnroll = 4; /* groups of 4 elements per thread in a final-pass chunk */
constexpr int64_t kApplyChunk = 4 * kThreads * kUnroll;
constexpr int kNoiseGroups = 2; /* groups of 4 a noise thread draws at once */
constexpr int kReduceUnroll = VP_PW_CHUNK / (4 * kThreads);
static_assert(VP_PW_CHUNK % (4 * kThreads) == 0, "a reduction chunk is whole groups");
/* samples and steps carried in the parameters: under the 4 KiB that every
 * toolkit and driver accept */
constexpr int kInline = 3712;
constexpr unsigned kMaxYZ = 65535;

enum Mode { kGeneric, kF32F32, kF32F16, kF16F16, kF16F32 };

struct Launch {
  const vp_pw_sample *samples; /* device memory, or NULL: inline at 0 */
  const vp_pw_step *table;     /* device memory, or NULL: inline at step_off */
  const uint8_t *need;         /* statistics: need[s * nsteps + j] */
  vp_pw_stats *partial;        /* statistics: the partials */
  unsigned *done;              /* statistics: partials written, per (sample, step), from 0 */
  int64_t cstride;             /* rows between channels: nsteps, 0 when channels share them */
  int32_t n, nsteps, j, step_off;
  int32_t tin, tout;
  int32_t level, pad_; /* apply: the samples of this kernel level only (-1: all) */
  alignas(16) unsigned char inl[kInline];
};
static_assert(sizeof(Launch) <= 4096, "kernel parameters over 4 KiB");

__device__ __forceinline__ const vp_pw_sample *samples_of(const Launch &L) {
  return L.samples ? L.samples : (const vp_pw_sample *)L.inl;
}
__device__ __forceinline__ const vp_pw_step *table_of(const Launch &L) {
  return L.table ? L.table : (const vp_pw_step *)(L.inl + L.step_off);
}

/* Copies a (sample, channel)'s steps into shared memory (the caller
 * synchronises before, when the block read earlier ones). */
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
    if (vec)
      *(float4 *)p = make_float4(v[0], v[1], v[2], v[3]);
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

/* Bytes [lo, hi) of in to out: 16-byte moves when the two agree modulo 16. */
__device__ __forceinline__ void copy_bytes(const unsigned char *in, unsigned char *out, int64_t lo,
                                           int64_t hi) {
  if ((((uintptr_t)in ^ (uintptr_t)out) & 15) == 0) {
    int64_t a = lo + (int64_t)((16 - (((uintptr_t)in + (uintptr_t)lo) & 15)) & 15);
    a = a < hi ? a : hi;
    int64_t b = a + ((hi - a) & ~(int64_t)15);
    for (int64_t k = lo + threadIdx.x; k < a; k += blockDim.x) out[k] = in[k];
    for (int64_t k = a + 16 * (int64_t)threadIdx.x; k < b; k += 16 * (int64_t)blockDim.x)
      *(uint4 *)(out + k) = *(const uint4 *)(in + k);
    for (int64_t k = b + threadIdx.x; k < hi; k += blockDim.x) out[k] = in[k];
  } else {
    for (int64_t k = lo + threadIdx.x; k < hi; k += blockDim.x) out[k] = in[k];
  }
}

/* Elements [lo, hi) of a channel whose first element is `base`. */
/* One step on 4 values. Kernels come in three kinds (the host picks the
 * least that covers the chain's steps): kLite for identity and affine steps,
 * kNoise for those and gaussian noise, kFull for every kind; the code of the
 * kinds a kernel cannot meet would otherwise cost every chain its registers
 * (122 a thread for kFull: a quarter of the SM's threads). */
constexpr int kLite = 0, kNoise = 1, kFull = 2;
/* A sample's own level rides in its flags: the apply pass launches one
 * kernel per level present, so a sample that drew no noise does not pay for
 * the noise kernel's registers because its neighbour did. */
constexpr unsigned kLevelShift = 8;
template <int LITE>
__device__ __forceinline__ void step_f(const vp_pw_step *s, float *v, int64_t e0, int cnt) {
  /* a step p left alone that does not round (uniform across the block) */
  if (s->kind == VP_PWK_IDENTITY && s->out == VP_PW_NO_ROUND) return;
  if (LITE == kFull)
    vp_pw_apply_f(s, v, e0, cnt);
  else
    vp_pw_apply_lite_f(s, v, e0, cnt, LITE == kNoise);
}

/* A plain affine step (parameters a) on G groups of 4 values, rounded to
 * `out`; kClamp false when every clamp bound is infinite. */
template <bool kClamp, int G>
__device__ __forceinline__ void affine_groups(const float *a, int out, float (*v)[4]) {
#pragma unroll
  for (int g = 0; g < G; g++)
#pragma unroll
    for (int k = 0; k < 4; k++) {
      const float x = kClamp ? vp_pw_affine1_f(v[g][k], a) : vp_pw_affine0_f(v[g][k], a);
      v[g][k] = out == VP_PW_NO_ROUND ? x : vp_pw_round_f(x, out);
    }
}

/* Steps [0, nsteps) on G groups of 4 values, group g at element e0 + g *
 * gstride. Plain affine steps (no mask, no keep_zero: brightness, contrast,
 * normalize, clamp) take their parameters from shared memory once per
 * thread instead of once per value: per-value loads left the lite kernel
 * latency-bound (ncu: brightness + cast 92 us, the cast alone 44 us). */
template <int LITE, int G>
__device__ __forceinline__ void run_steps(const vp_pw_step *sh, int nsteps, float (*v)[4],
                                          int64_t e0, int64_t gstride) {
  for (int j = 0; j < nsteps; j++) {
    const vp_pw_step *s = &sh[j];
    if (s->kind == VP_PWK_IDENTITY && s->out == VP_PW_NO_ROUND) continue;
    if (s->kind == VP_PWK_IDENTITY) {
      /* a rounding alone (cast): vp_pw_apply_f's for this kind, here so
       * that the loop stays clear of the other kinds' code */
#pragma unroll
      for (int g = 0; g < G; g++) vp_pw_round_all_f(s, v[g], 4);
      continue;
    }
    if (s->kind == VP_PWK_AFFINE && !s->mask_mode && !s->keep_zero) {
      float a[7];
#pragma unroll
      for (int q = 0; q < 7; q++) a[q] = s->f[q];
      /* a step without clamps (brightness, a contrast that keeps no range)
       * skips their compares: 8 instructions a value */
      if (a[3] == -INFINITY && a[4] == INFINITY && a[5] == -INFINITY && a[6] == INFINITY)
        affine_groups<false, G>(a, s->out, v);
      else
        affine_groups<true, G>(a, s->out, v);
    } else {
#pragma unroll
      for (int g = 0; g < G; g++) step_f<LITE>(s, v[g], e0 + g * gstride, 4);
    }
  }
}

/* G groups of 4 elements at e, e + 4 kThreads, ...: all loaded, stepped,
 * stored. */
template <int M, int LITE, int G>
__device__ __forceinline__ void groups(const vp_pw_sample &sm, const vp_pw_step *sh, int nsteps,
                                       int64_t e) {
  float v[G][4];
#pragma unroll
  for (int g = 0; g < G; g++) load_f<M>(sm.in, e + g * 4 * kThreads, 4, true, v[g]);
  run_steps<LITE, G>(sh, nsteps, v, e, 4 * kThreads);
#pragma unroll
  for (int g = 0; g < G; g++) store_f<M>(sm.out, e + g * 4 * kThreads, 4, true, v[g]);
}

template <int M, int LITE>
__device__ __forceinline__ void apply_range(const vp_pw_sample &sm, const vp_pw_step *sh,
                                            int nsteps, vp_dtype tin, vp_dtype tout, int64_t base,
                                            int64_t lo, int64_t hi) {
  const bool aligned = (sm.flags & VP_PW_ALIGNED) != 0;
  if (M != kGeneric && aligned && hi - lo == kApplyChunk) {
    const int64_t e0 = base + lo + 4 * threadIdx.x;
    if constexpr (LITE != kLite) {
      /* noise is arithmetic-bound: one group at a time keeps the registers
       * (and so the occupancy) of one Philox draw. Measured: all groups
       * loaded first 136 us, and a lite branch for the blocks that draw no
       * noise 115 us (both from the registers), against 98 us for this. */
#pragma unroll 1
      for (int r = 0; r < kUnroll; r += kNoiseGroups)
        groups<M, LITE, kNoiseGroups>(sm, sh, nsteps, e0 + r * 4 * kThreads);
      return;
    }
    /* every load of the thread in flight before any arithmetic */
    groups<M, LITE, kUnroll>(sm, sh, nsteps, e0);
    return;
  }
  for (int64_t e = lo + 4 * threadIdx.x; e < hi; e += 4 * blockDim.x) {
    const int cnt = hi - e < 4 ? (int)(hi - e) : 4;
    if (M == kGeneric) {
      double v[4];
      for (int k = 0; k < 4; k++) v[k] = k < cnt ? vp_cvt_load(sm.in, tin, base + e + k) : 0;
      vp_pw_program_d(sh, nsteps, v, base + e, cnt);
      for (int k = 0; k < cnt; k++) vp_cvt_store(sm.out, tout, base + e + k, v[k]);
    } else {
      const bool vec = aligned && cnt == 4;
      float v[4];
      load_f<M>(sm.in, base + e, cnt, vec, v);
      for (int j = 0; j < nsteps; j++) step_f<LITE>(&sh[j], v, base + e, cnt);
      store_f<M>(sm.out, base + e, cnt, vec, v);
    }
  }
}

/* Blocks per SM asked of the register allocator: lite kernels at 64
 * registers (4 blocks; at 80 the loads in flight were too few), noise at
 * 128 (2 blocks, kNoiseGroups draws a thread in flight: 47.1 -> 41.8 us
 * against 3 blocks at 80 registers with one draw, which spilled). */
template <int M, int LITE>
__global__ void __launch_bounds__(kThreads, LITE == kLite ? 4 : (LITE == kNoise ? 2 : 1))
    apply_kernel(const __grid_constant__ Launch L) {
  extern __shared__ vp_pw_step sh[];
  const vp_pw_sample *samples = samples_of(L);
  const vp_pw_step *table = table_of(L);
  const vp_dtype tin = (vp_dtype)L.tin, tout = (vp_dtype)L.tout;
  const int es = tin == VP_U8 || tin == VP_I8                      ? 1
                 : tin == VP_U16 || tin == VP_I16 || tin == VP_F16 ? 2
                 : tin == VP_I64 || tin == VP_F64                  ? 8
                                                                   : 4;
  /* every bound below depends on blockIdx only: the block stays together */
  for (int64_t s = blockIdx.z; s < L.n; s += gridDim.z) {
    const vp_pw_sample sm = samples[s];
    if (L.level >= 0 && (int)((sm.flags >> kLevelShift) & 3u) != L.level) continue;
    const int64_t cn = sm.chan_numel;
    for (int64_t c = blockIdx.y; c < sm.channels; c += gridDim.y) {
      const int64_t base = c * cn;
      int staged = 0;
      for (int64_t lo = (int64_t)blockIdx.x * kApplyChunk; lo < cn;
           lo += (int64_t)gridDim.x * kApplyChunk) {
        const int64_t hi = lo + kApplyChunk < cn ? lo + kApplyChunk : cn;
        if (sm.flags & VP_PW_COPY) {
          copy_bytes((const unsigned char *)sm.in, (unsigned char *)sm.out, (base + lo) * es,
                     (base + hi) * es);
          continue;
        }
        if (!staged) {
          __syncthreads();
          stage_steps(sh, table + sm.steps + c * L.cstride, L.nsteps);
          staged = 1;
        }
        apply_range<M, LITE>(sm, sh, L.nsteps, tin, tout, base, lo, hi);
      }
    }
  }
}

/* A thread's statistics of the float values of the reduction's fast path:
 * vp_pw_stats_add's, with one chain of double sums per group of 4 values
 * (kUnroll independent chains whose additions overlap, where one chain
 * left the pass waiting on each addition), the count as an integer and the
 * range in float (exact: every value is a float, and x < m picks the same
 * value, zeros' signs included, as in double). */
struct FastStats {
  double sum[kUnroll] = {}, sumsq[kUnroll] = {};
  float mn = INFINITY, mx = -INFINITY;
  int n = 0;
  __device__ __forceinline__ void add(int r, float x, int nonzero) {
    if (nonzero && x == 0.0f) return;
    const double d = x;
    n++;
    sum[r] += d;
    sumsq[r] += d * d;
    mn = x < mn ? x : mn;
    mx = x > mx ? x : mx;
  }
  /* merged into a thread's vp_pw_stats, the chains summed in order */
  __device__ __forceinline__ void merge_into(vp_pw_stats &a) const {
    vp_pw_stats f;
    f.n = n;
    f.sum = sum[0];
    f.sumsq = sumsq[0];
#pragma unroll
    for (int r = 1; r < kUnroll; r++) {
      f.sum += sum[r];
      f.sumsq += sumsq[r];
    }
    f.min = mn;
    f.max = mx;
    vp_pw_stats_merge(&a, &f);
  }
};

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

/* A partial written by another block of this launch (read past L1). */
__device__ __forceinline__ vp_pw_stats load_stats(const vp_pw_stats *p) {
  vp_pw_stats r;
  r.n = __ldcg(&p->n);
  r.sum = __ldcg(&p->sum);
  r.sumsq = __ldcg(&p->sumsq);
  r.min = __ldcg(&p->min);
  r.max = __ldcg(&p->max);
  return r;
}

/* Sample s's partials per channel in order, its channels in order, then
 * step j resolved on each channel (in the device table): by the block that
 * wrote the sample's last partial, so the order and the bytes do not
 * depend on which block that is. */
__device__ void finish_sample(const Launch &L, vp_pw_step *table, int64_t s, int j) {
  const vp_pw_sample sm = L.samples[s];
  const int64_t cpc = (sm.chan_numel + VP_PW_CHUNK - 1) / VP_PW_CHUNK;
  vp_pw_stats *first = L.partial + sm.part;
  __shared__ vp_pw_stats all;
  vp_pw_stats total;
  vp_pw_stats_init(&total);
  for (int64_t c = 0; c < sm.channels; c++) {
    vp_pw_stats acc;
    vp_pw_stats_init(&acc);
    for (int64_t b = threadIdx.x; b < cpc; b += blockDim.x) {
      const vp_pw_stats p = load_stats(&first[c * cpc + b]);
      vp_pw_stats_merge(&acc, &p);
    }
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
    vp_pw_step *st = table + sm.steps + c * L.nsteps;
    const vp_pw_stats *use = (st[j].stats & VP_PW_STAT_CHANNEL) ? &first[c * cpc] : &all;
    vp_pw_resolve(&st[j], use, j + 1 < L.nsteps ? &st[j + 1] : NULL);
  }
  __syncthreads();
}

/* Statistics of step j's input over chunks of VP_PW_CHUNK elements: the
 * steps before j on the fly, one partial per chunk; the block that writes
 * a sample's last partial combines them (finish_sample): a launch less
 * than a separate finishing kernel, which took 7-9.7 us for two blocks
 * (Nsight Compute). Two blocks an SM leave the lite path unspilled (124
 * registers): 39.5 us against 46.6 at three (180 bytes spilled). */
template <int M, int LITE>
__global__ void __launch_bounds__(kThreads, LITE == kLite ? 2 : 1)
    reduce_kernel(const __grid_constant__ Launch L) {
  extern __shared__ vp_pw_step sh[];
  const vp_pw_sample *samples = samples_of(L);
  const vp_pw_step *table = table_of(L);
  const vp_dtype tin = (vp_dtype)L.tin;
  const int j = L.j;
  for (int64_t s = blockIdx.z; s < L.n; s += gridDim.z) {
    if (!L.need[s * L.nsteps + j]) continue;
    const vp_pw_sample sm = samples[s];
    const int64_t cn = sm.chan_numel, cpc = (cn + VP_PW_CHUNK - 1) / VP_PW_CHUNK;
    const bool aligned = (sm.flags & VP_PW_ALIGNED) != 0;
    for (int64_t c = blockIdx.y; c < sm.channels; c += gridDim.y) {
      const int64_t base = c * cn;
      __syncthreads();
      stage_steps(sh, table + sm.steps + c * L.cstride, j + 1);
      const int nonzero = (sh[j].stats & VP_PW_STAT_NONZERO) != 0;
      for (int64_t b = blockIdx.x; b < cpc; b += gridDim.x) {
        const int64_t lo = b * VP_PW_CHUNK, hi = lo + VP_PW_CHUNK < cn ? lo + VP_PW_CHUNK : cn;
        vp_pw_stats acc;
        vp_pw_stats_init(&acc);
        if (M != kGeneric && aligned && hi - lo == VP_PW_CHUNK) {
          FastStats fast;
          /* kUnroll loads in flight at a time, as the final pass (all of
           * the chunk's would spill) */
          for (int h = 0; h < kReduceUnroll; h += kUnroll) {
            float v[kUnroll][4];
#pragma unroll
            for (int r = 0; r < kUnroll; r++)
              load_f<M>(sm.in, base + lo + 4 * (threadIdx.x + (h + r) * kThreads), 4, true, v[r]);
            const int64_t e0 = base + lo + 4 * (threadIdx.x + h * kThreads);
            if constexpr (LITE == kLite) {
              run_steps<LITE, kUnroll>(sh, j, v, e0, 4 * kThreads);
            } else {
              /* a Philox draw per group at a time, as the final pass */
#pragma unroll 1
              for (int r = 0; r < kUnroll; r++)
                run_steps<LITE, 1>(sh, j, v + r, e0 + r * 4 * kThreads, 0);
            }
            if (!sh[j].mask_mode) {
#pragma unroll
              for (int r = 0; r < kUnroll; r++)
#pragma unroll
                for (int k = 0; k < 4; k++) fast.add(r, v[r][k], nonzero);
            } else {
#pragma unroll
              for (int r = 0; r < kUnroll; r++)
#pragma unroll
                for (int k = 0; k < 4; k++)
                  if (vp_pw_inside(&sh[j], e0 + r * 4 * kThreads + k))
                    vp_pw_stats_add(&acc, v[r][k], nonzero);
            }
          }
          fast.merge_into(acc);
        } else {
          for (int64_t e = lo + 4 * threadIdx.x; e < hi; e += 4 * blockDim.x) {
            const int cnt = hi - e < 4 ? (int)(hi - e) : 4;
            double v[4];
            for (int k = 0; k < 4; k++) v[k] = k < cnt ? vp_cvt_load(sm.in, tin, base + e + k) : 0;
            vp_pw_program_d(sh, j, v, base + e, cnt);
            for (int k = 0; k < cnt; k++)
              if (vp_pw_inside(&sh[j], base + e + k)) vp_pw_stats_add(&acc, v[k], nonzero);
          }
        }
        block_reduce(acc);
        __shared__ int last;
        if (threadIdx.x == 0) {
          L.partial[sm.part + c * cpc + b] = acc;
          __threadfence();
          const unsigned n = atomicAdd(&L.done[s * L.nsteps + j], 1u) + 1u;
          last = (int64_t)n == sm.channels * cpc;
          if (last) __threadfence();
        }
        __syncthreads();
        if (last) finish_sample(L, (vp_pw_step *)table, s, j);
      }
    }
  }
}

size_t align256(size_t x) { return (x + 255) & ~(size_t)255; }

template <int M>
void launch_all(Launch &L, const uint8_t *need, int lite, unsigned levels,
                dim3 grid_apply, dim3 grid_reduce, cudaStream_t st) {
  for (int j = 0; j < L.nsteps; j++) {
    int any = 0;
    for (int64_t i = 0; i < L.n && !any; i++) any = need[i * L.nsteps + j];
    if (!any) continue;
    L.j = j;
    const size_t rshm = (size_t)(j + 1) * sizeof(vp_pw_step);
    /* the generic (double) path runs the whole program whatever the kinds:
     * one instance of it */
    if constexpr (M == kGeneric)
      reduce_kernel<M, kFull><<<grid_reduce, kThreads, rshm, st>>>(L);
    else if (lite == kLite)
      reduce_kernel<M, kLite><<<grid_reduce, kThreads, rshm, st>>>(L);
    else if (lite == kNoise)
      reduce_kernel<M, kNoise><<<grid_reduce, kThreads, rshm, st>>>(L);
    else
      reduce_kernel<M, kFull><<<grid_reduce, kThreads, rshm, st>>>(L);
  }
  const size_t shm = (size_t)L.nsteps * sizeof(vp_pw_step);
  L.level = -1;
  if constexpr (M == kGeneric) {
    apply_kernel<M, kFull><<<grid_apply, kThreads, shm, st>>>(L);
  } else if ((levels & (levels - 1)) == 0) { /* one level: one launch for all */
    if (levels & (1u << kLite))
      apply_kernel<M, kLite><<<grid_apply, kThreads, shm, st>>>(L);
    else if (levels & (1u << kNoise))
      apply_kernel<M, kNoise><<<grid_apply, kThreads, shm, st>>>(L);
    else
      apply_kernel<M, kFull><<<grid_apply, kThreads, shm, st>>>(L);
  } else {
    L.level = kLite;
    if (levels & (1u << kLite)) apply_kernel<M, kLite><<<grid_apply, kThreads, shm, st>>>(L);
    L.level = kNoise;
    if (levels & (1u << kNoise)) apply_kernel<M, kNoise><<<grid_apply, kThreads, shm, st>>>(L);
    L.level = kFull;
    if (levels & (1u << kFull)) apply_kernel<M, kFull><<<grid_apply, kThreads, shm, st>>>(L);
  }
}

unsigned clamp_dim(int64_t v, int64_t hi) { return (unsigned)(v < 1 ? 1 : (v > hi ? hi : v)); }

}  // namespace

extern "C" vp_status vp_cuda_pointwise(const vp_pw_sample *samples, int64_t n,
                                       const vp_pw_step *table, int64_t table_len, int nsteps,
                                       const uint8_t *need, vp_dtype in, vp_dtype out,
                                       void *stream) {
  cudaStream_t st = (cudaStream_t)stream;
  if (n < 1 || nsteps < 1 || table_len < 1) return VP_OK;
  if (n > ((int64_t)1 << 24))
    return vp_fail(VP_ERR_INVALID_ARG, "pointwise: %lld samples", (long long)n);
  int any_stats = 0, any_mask = 0,
      fl = (in == VP_F32 || in == VP_F16) && (out == VP_F32 || out == VP_F16);
  for (int64_t k = 0; k < n * nsteps; k++) any_stats |= need[k];
  int lite = kLite;
  for (int64_t k = 0; k < table_len; k++) {
    any_mask |= table[k].mask_mode != VP_PW_MASK_NONE;
    fl &= table[k].fp32;
  }
  /* each sample's level (its rows: channels x nsteps from .steps) */
  unsigned char *lvl = (unsigned char *)malloc((size_t)n);
  if (!lvl) return vp_fail(VP_ERR_NOMEM, "pointwise: out of host memory");
  unsigned levels = 0;
  for (int64_t i = 0; i < n; i++) {
    int l = kLite;
    const int64_t end = samples[i].steps + (int64_t)samples[i].channels * nsteps;
    for (int64_t k = samples[i].steps; k < end && k < table_len; k++) {
      const int kind = table[k].kind;
      const int need_kind = kind == VP_PWK_IDENTITY || kind == VP_PWK_AFFINE ? kLite
                            : kind == VP_PWK_GAUSSIAN                         ? kNoise
                                                                              : kFull;
      if (need_kind > l) l = need_kind;
    }
    lvl[i] = (unsigned char)l;
    /* a sample with nothing to do (no elements, or a copy onto itself: a
     * chain passing it through) launches no kernel level: an apply launch
     * whose 4096 blocks all found nothing cost 9.4 us (Nsight Compute) */
    if (samples[i].channels == 0 || samples[i].chan_numel == 0) continue;
    levels |= 1u << l;
    if (l > lite) lite = l;
  }
  if (!levels) {
    free(lvl);
    return VP_OK;
  }
  int64_t max_c = 1, max_cn = 1, parts = 0;
  for (int64_t i = 0; i < n; i++) {
    if (samples[i].channels > max_c) max_c = samples[i].channels;
    if (samples[i].chan_numel > max_cn) max_cn = samples[i].chan_numel;
    parts += samples[i].channels * ((samples[i].chan_numel + VP_PW_CHUNK - 1) / VP_PW_CHUNK);
  }
  /* a block per chunk of the longest channel, up to a bound past which
   * blocks loop (mixed shapes must not launch millions of idle blocks) */
  const unsigned gy = clamp_dim(max_c, kMaxYZ), gz = clamp_dim(n, kMaxYZ);
  const int64_t cap = ((int64_t)1 << 20) / ((int64_t)gy * gz) + 1;
  const dim3 grid_apply(clamp_dim((max_cn + kApplyChunk - 1) / kApplyChunk, cap), gy, gz);
  const dim3 grid_reduce(clamp_dim((max_cn + VP_PW_CHUNK - 1) / VP_PW_CHUNK, cap), gy, gz);

  Launch L;
  memset(&L, 0, sizeof L);
  L.n = (int32_t)n;
  L.nsteps = nsteps;
  L.tin = (int32_t)in;
  L.tout = (int32_t)out;
  L.cstride = nsteps;
  const size_t smp_bytes = ((size_t)n * sizeof *samples + 15) & ~(size_t)15;
  unsigned char *dev = NULL;
  vp_status s = VP_OK;
  /* no statistics: the steps of a sample's channels are equal (masks
   * aside), so one row per sample may ride in the parameters */
  const int64_t rows = any_mask ? table_len : n * nsteps;
  if (!any_stats && smp_bytes + (size_t)rows * sizeof *table <= (size_t)kInline) {
    vp_pw_sample *is = (vp_pw_sample *)L.inl;
    vp_pw_step *it = (vp_pw_step *)(L.inl + smp_bytes);
    memcpy(is, samples, (size_t)n * sizeof *samples);
    for (int64_t i = 0; i < n; i++) is[i].flags |= (uint32_t)lvl[i] << kLevelShift;
    if (any_mask) {
      memcpy(it, table, (size_t)table_len * sizeof *table);
    } else {
      for (int64_t i = 0; i < n; i++) {
        memcpy(&it[i * nsteps], &table[samples[i].steps], (size_t)nsteps * sizeof *table);
        is[i].steps = i * nsteps;
      }
      L.cstride = 0;
    }
    L.step_off = (int32_t)smp_bytes;
  } else {
    /* one upload: samples (with their partials' offsets), steps, need */
    const size_t tab_off = align256(smp_bytes), tab_bytes = (size_t)table_len * sizeof *table;
    const size_t need_off = align256(tab_off + tab_bytes), need_bytes = (size_t)(n * nsteps);
    const size_t done_off = align256(need_off + need_bytes);
    const size_t done_bytes = any_stats ? (size_t)(n * nsteps) * sizeof(unsigned) : 0;
    const size_t part_off = align256(done_off + done_bytes);
    const size_t bytes = part_off + (any_stats ? (size_t)parts * sizeof(vp_pw_stats) : 0);
    const size_t up = done_off + done_bytes; /* the counters go up as zeros */
    unsigned char *host = (unsigned char *)malloc(up);
    if (!host) {
      free(lvl);
      return vp_fail(VP_ERR_NOMEM, "pointwise: out of host memory");
    }
    vp_pw_sample *hs = (vp_pw_sample *)host;
    memcpy(hs, samples, (size_t)n * sizeof *samples);
    int64_t at = 0;
    for (int64_t i = 0; i < n; i++) {
      hs[i].flags |= (uint32_t)lvl[i] << kLevelShift;
      hs[i].part = at;
      at += samples[i].channels * ((samples[i].chan_numel + VP_PW_CHUNK - 1) / VP_PW_CHUNK);
    }
    memcpy(host + tab_off, table, tab_bytes);
    memcpy(host + need_off, need, need_bytes);
    memset(host + need_off + need_bytes, 0, up - need_off - need_bytes);
    s = vp_cuda_malloc_async((void **)&dev, bytes, st, "pointwise: device table");
    if (s == VP_OK) s = vp_cuda_upload(dev, host, up, st, "pointwise: table");
    free(host);
    if (dev) {
      L.samples = (const vp_pw_sample *)dev;
      L.table = (const vp_pw_step *)(dev + tab_off);
      L.need = dev + need_off;
      L.partial = any_stats ? (vp_pw_stats *)(dev + part_off) : NULL;
      L.done = any_stats ? (unsigned *)(dev + done_off) : NULL;
    }
  }
  if (s == VP_OK) {
    if (!fl)
      launch_all<kGeneric>(L, need, lite, levels, grid_apply, grid_reduce, st);
    else if (in == VP_F32 && out == VP_F32)
      launch_all<kF32F32>(L, need, lite, levels, grid_apply, grid_reduce, st);
    else if (in == VP_F32)
      launch_all<kF32F16>(L, need, lite, levels, grid_apply, grid_reduce, st);
    else if (out == VP_F16)
      launch_all<kF16F16>(L, need, lite, levels, grid_apply, grid_reduce, st);
    else
      launch_all<kF16F32>(L, need, lite, levels, grid_apply, grid_reduce, st);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) s = vp_cuda_status(e, "pointwise launch");
  }
  if (dev) cudaFreeAsync(dev, st);
  free(lvl);
  return s;
}
