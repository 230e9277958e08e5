/* The core layer on a GPU: Philox on the device, the uniform fill kernel
 * against a CPU loop, device and pinned tensors, DLPack, allocation failure
 * and device batches. Exits 77 (skipped) without a GPU. */
#include <cuda_runtime.h>
#include <dlpack/dlpack.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "core/cuda_rt.h"
#include "core/memory.h"
#include "core/status.h"
#include "testutil.h"
}
#include "core/batch.h"
#include "core/philox.h"
#include "cuda/kernels.h"

#define CUDA_OK(call)                                                         \
  do {                                                                        \
    cudaError_t e_ = (call);                                                  \
    if (e_ != cudaSuccess) fail_msg("%s: %s", #call, cudaGetErrorString(e_)); \
  } while (0)

/* ---------------------------------------------------------------- */
/* Philox on the device                                              */

struct kat_case {
  uint32_t ctr[4], key[2], want[4];
};

/* Random123's kat_vectors, "philox4x32 10" lines. */
static const kat_case kat[3] = {
    {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}},
    {{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu},
     {0xffffffffu, 0xffffffffu},
     {0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}},
    {{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u},
     {0xa4093822u, 0x299f31d0u},
     {0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}},
};

__global__ void kat_kernel(const kat_case *in, int n, uint32_t *out) {
  int t = blockIdx.x * blockDim.x + threadIdx.x;
  if (t >= n) return;
  vp_u32x4 c = {{in[t].ctr[0], in[t].ctr[1], in[t].ctr[2], in[t].ctr[3]}};
  vp_rng_key k = {in[t].key[0], in[t].key[1]};
  vp_u32x4 r = vp_philox4x32_10(c, k);
  for (int w = 0; w < 4; w++) out[t * 4 + w] = r.v[w];
}

/* Per input word pair: the key, a draw, both uniforms and a normal pair. */
struct derived {
  vp_rng_key key;
  vp_u32x4 draw;
  float uf;
  double ud;
  vp_f32x2 z;
};

__global__ void derived_kernel(const uint32_t *words, int n, uint64_t seed, derived *out) {
  int t = blockIdx.x * blockDim.x + threadIdx.x;
  if (t >= n) return;
  uint32_t a = words[2 * t], b = words[2 * t + 1];
  derived d;
  d.key = vp_rng_key_make(seed + (uint64_t)t, a);
  d.draw = vp_rng_draw(d.key, a, b, ((uint64_t)b << 32) | a);
  d.uf = vp_u01f(a);
  d.ud = vp_u01d(a, b);
  d.z = vp_normal2f(a, b);
  out[t] = d;
}

static void test_philox_device(void **state) {
  (void)state;
  kat_case *din;
  uint32_t *dout;
  CUDA_OK(cudaMalloc(&din, sizeof kat));
  CUDA_OK(cudaMalloc(&dout, 12 * sizeof(uint32_t)));
  CUDA_OK(cudaMemcpy(din, kat, sizeof kat, cudaMemcpyHostToDevice));
  kat_kernel<<<1, 32>>>(din, 3, dout);
  CUDA_OK(cudaGetLastError());
  uint32_t got[12];
  CUDA_OK(cudaMemcpy(got, dout, sizeof got, cudaMemcpyDeviceToHost));
  for (int t = 0; t < 3; t++)
    for (int w = 0; w < 4; w++)
      if (got[t * 4 + w] != kat[t].want[w])
        fail_msg("device vector %d word %d: %08x, want %08x", t, w, got[t * 4 + w], kat[t].want[w]);

  /* everything derived from Philox: the device equals the host, bit for bit
   * except the normals (libm and CUDA's logf/sinf/cosf differ by ulps) */
  enum { N = 4096 };
  uint64_t st = vp_test_seed(), seed = vp_test_rand(&st);
  uint32_t *words = (uint32_t *)malloc(2 * N * sizeof *words);
  for (int i = 0; i < 2 * N; i++) words[i] = (uint32_t)vp_test_rand(&st);
  words[0] = words[1] = 0; /* the extremes */
  words[2] = words[3] = 0xffffffffu;
  uint32_t *dwords;
  derived *dd;
  CUDA_OK(cudaMalloc(&dwords, 2 * N * sizeof *words));
  CUDA_OK(cudaMalloc(&dd, N * sizeof(derived)));
  CUDA_OK(cudaMemcpy(dwords, words, 2 * N * sizeof *words, cudaMemcpyHostToDevice));
  derived_kernel<<<N / 128, 128>>>(dwords, N, seed, dd);
  CUDA_OK(cudaGetLastError());
  derived *dev = (derived *)malloc(N * sizeof(derived));
  CUDA_OK(cudaMemcpy(dev, dd, N * sizeof(derived), cudaMemcpyDeviceToHost));
  for (int t = 0; t < N; t++) {
    uint32_t a = words[2 * t], b = words[2 * t + 1];
    vp_rng_key key = vp_rng_key_make(seed + (uint64_t)t, a);
    vp_u32x4 draw = vp_rng_draw(key, a, b, ((uint64_t)b << 32) | a);
    if (key.k0 != dev[t].key.k0 || key.k1 != dev[t].key.k1) fail_msg("key %d differs", t);
    if (memcmp(draw.v, dev[t].draw.v, sizeof draw.v)) fail_msg("draw %d differs", t);
    float uf = vp_u01f(a);
    double ud = vp_u01d(a, b);
    if (memcmp(&uf, &dev[t].uf, sizeof uf))
      fail_msg("vp_u01f(%08x): %a, device %a", a, uf, dev[t].uf);
    if (memcmp(&ud, &dev[t].ud, sizeof ud)) fail_msg("vp_u01d: %a, device %a", ud, dev[t].ud);
    vp_f32x2 z = vp_normal2f(a, b);
    float tol = 4e-6f * (1.0f + fabsf(z.x) + fabsf(z.y));
    if (fabsf(z.x - dev[t].z.x) > tol || fabsf(z.y - dev[t].z.y) > tol)
      fail_msg("vp_normal2f(%08x, %08x): (%.9g, %.9g), device (%.9g, %.9g)", a, b, z.x, z.y,
               dev[t].z.x, dev[t].z.y);
  }
  free(words);
  free(dev);
  CUDA_OK(cudaFree(din));
  CUDA_OK(cudaFree(dout));
  CUDA_OK(cudaFree(dwords));
  CUDA_OK(cudaFree(dd));
}

/* ---------------------------------------------------------------- */
/* vp_cuda_fill_uniform                                              */

static void cpu_fill(float *out, int64_t first, int64_t count, vp_rng_key key, uint32_t it,
                     uint32_t sample) {
  for (int64_t i = first; i < first + count; i++) {
    vp_u32x4 r = vp_rng_draw(key, it, sample, (uint64_t)(i >> 2));
    out[i - first] = vp_u01f(r.v[i & 3]);
  }
}

/* Fills n floats at device address `out` (poisoned with NaN, with `guard`
 * poisoned floats after it), then compares elements [first, n) with the CPU
 * and checks the guard is untouched. */
static void fill_and_compare(float *out, int64_t n, int64_t first, int64_t guard, vp_stream s,
                             vp_rng_key key, uint32_t it, uint32_t sample) {
  CUDA_OK(cudaMemsetAsync(out, 0xff, (size_t)(n + guard) * sizeof(float), (cudaStream_t)s));
  VP_ASSERT_OK(vp_cuda_fill_uniform(out, n, key, it, sample, s));
  VP_ASSERT_OK(vp_cuda_stream_sync(s));
  int64_t count = n - first + guard;
  float *got = (float *)malloc((size_t)count * sizeof(float) + 1);
  float *want = (float *)malloc((size_t)(n - first) * sizeof(float) + 1);
  CUDA_OK(cudaMemcpy(got, out + first, (size_t)count * sizeof(float), cudaMemcpyDeviceToHost));
  cpu_fill(want, first, n - first, key, it, sample);
  if (memcmp(got, want, (size_t)(n - first) * sizeof(float))) {
    for (int64_t i = 0; i < n - first; i++)
      if (memcmp(&got[i], &want[i], sizeof(float)))
        fail_msg("n = %lld: element %lld is %a, the CPU says %a", (long long)n,
                 (long long)(first + i), got[i], want[i]);
  }
  for (int64_t g = 0; g < guard; g++) {
    uint32_t bits;
    memcpy(&bits, &got[n - first + g], 4);
    if (bits != 0xffffffffu)
      fail_msg("n = %lld: wrote past the end (+%lld)", (long long)n, (long long)g);
  }
  free(got);
  free(want);
}

static void test_fill_uniform(void **state) {
  (void)state;
  uint64_t st = vp_test_seed();
  vp_rng_key key = vp_rng_key_make(vp_test_rand(&st), 17);
  uint32_t it = (uint32_t)vp_test_rand(&st), sample = (uint32_t)vp_test_rand(&st);
  vp_stream s = NULL;
  VP_ASSERT_OK(vp_cuda_stream_create(0, &s));
  const int64_t n = 10000003;
  float *buf = NULL;
  VP_ASSERT_OK(vp_mem_alloc(VP_MEM_DEVICE, 0, (size_t)(n + 64) * sizeof(float), (void **)&buf));
  fill_and_compare(buf, n, 0, 16, s, key, it, sample);
  /* small sizes, and an output not aligned to 16 bytes */
  const int64_t small[] = {1, 2, 3, 4, 5, 7, 8, 9, 1000, 1021};
  for (size_t k = 0; k < sizeof small / sizeof small[0]; k++) {
    fill_and_compare(buf, small[k], 0, 8, s, key, it, sample);
    fill_and_compare(buf + 1, small[k], 0, 8, s, key, it + 1, sample);
  }
  /* nothing to do, and a bad size */
  VP_ASSERT_OK(vp_cuda_fill_uniform(buf, 0, key, it, sample, s));
  VP_ASSERT_OK(vp_cuda_fill_uniform(NULL, 0, key, it, sample, s));
  assert_int_equal(vp_cuda_fill_uniform(buf, -1, key, it, sample, s), VP_ERR_INVALID_ARG);
  assert_non_null(strstr(vp_last_error(), "fill_uniform"));
  assert_int_equal(vp_cuda_fill_uniform(NULL, 5, key, it, sample, s), VP_ERR_INVALID_ARG);
  vp_mem_free(VP_MEM_DEVICE, 0, buf, (size_t)(n + 64) * sizeof(float));

  /* past 2^31 elements (64-bit indexing): the tail against the CPU */
  size_t free_b = 0, total_b = 0;
  CUDA_OK(cudaMemGetInfo(&free_b, &total_b));
  const int64_t big = ((int64_t)1 << 31) + 13;
  if (free_b > (size_t)(big + 64) * sizeof(float) + ((size_t)1 << 30)) {
    VP_ASSERT_OK(vp_mem_alloc(VP_MEM_DEVICE, 0, (size_t)(big + 64) * sizeof(float), (void **)&buf));
    fill_and_compare(buf, big, big - 1000003, 16, s, key, it, sample);
    vp_mem_free(VP_MEM_DEVICE, 0, buf, (size_t)(big + 64) * sizeof(float));
  } else {
    fprintf(stderr, "fill_uniform past 2^31: skipped, %zu bytes free\n", free_b);
  }
  vp_cuda_stream_destroy(s);
}

/* ---------------------------------------------------------------- */
/* Tensors, pinned memory, DLPack                                    */

static void test_device_tensor_round_trip(void **state) {
  (void)state;
  uint64_t st = vp_test_seed();
  int64_t shape[4] = {2, 33, 65, 17};
  vp_tensor *h = NULL, *d = NULL, *back = NULL, *p = NULL, *d2 = NULL, *back2 = NULL;
  VP_ASSERT_OK(vp_tensor_create(VP_U8, 4, shape, VP_MEM_HOST, 0, &h));
  unsigned char *hd = (unsigned char *)vp_tensor_data(h);
  for (size_t i = 0; i < vp_tensor_nbytes(h); i++) hd[i] = (unsigned char)vp_test_rand(&st);
  const double spacing[3] = {2.5, 0.75, 0.5};
  VP_ASSERT_OK(vp_tensor_set_spacing(h, 3, spacing));

  VP_ASSERT_OK(vp_tensor_copy_to(h, VP_MEM_DEVICE, 0, &d));
  assert_int_equal(vp_tensor_memkind(d), VP_MEM_DEVICE);
  assert_int_equal(vp_tensor_device(d), 0);
  cudaPointerAttributes attr;
  CUDA_OK(cudaPointerGetAttributes(&attr, vp_tensor_data(d)));
  assert_int_equal(attr.type, cudaMemoryTypeDevice);
  VP_ASSERT_OK(vp_tensor_copy_to(d, VP_MEM_HOST, 0, &back));
  assert_memory_equal(vp_tensor_data(back), hd, vp_tensor_nbytes(h));
  double sp[3];
  vp_tensor_spacing(back, sp);
  assert_memory_equal(sp, spacing, sizeof sp);

  /* host -> pinned -> device -> host */
  VP_ASSERT_OK(vp_tensor_copy_to(h, VP_MEM_PINNED, 0, &p));
  assert_int_equal(vp_tensor_memkind(p), VP_MEM_PINNED);
  CUDA_OK(cudaPointerGetAttributes(&attr, vp_tensor_data(p)));
  assert_int_equal(attr.type, cudaMemoryTypeHost);
  assert_memory_equal(vp_tensor_data(p), hd, vp_tensor_nbytes(h));
  VP_ASSERT_OK(vp_tensor_copy_to(p, VP_MEM_DEVICE, 0, &d2));
  VP_ASSERT_OK(vp_tensor_copy_to(d2, VP_MEM_HOST, 0, &back2));
  assert_memory_equal(vp_tensor_data(back2), hd, vp_tensor_nbytes(h));

  vp_tensor *ts[] = {h, d, back, p, d2, back2};
  for (int i = 0; i < 6; i++) vp_tensor_release(ts[i]);
}

static void test_pinned_cache(void **state) {
  (void)state;
  vp_mem_trim();
  vp_tensor *t = NULL;
  int64_t shape[3] = {7, 9, 11};
  VP_ASSERT_OK(vp_tensor_create(VP_F32, 3, shape, VP_MEM_PINNED, 0, &t));
  assert_int_equal(vp_tensor_memkind(t), VP_MEM_PINNED);
  memset(vp_tensor_data(t), 0x3c, vp_tensor_nbytes(t));
  vp_tensor_release(t);

  /* a freed 4 KiB block comes back for a request it fits, and never for a
   * larger one */
  void *a = NULL, *b = NULL, *c = NULL;
  VP_ASSERT_OK(vp_mem_alloc(VP_MEM_PINNED, 0, 3000, &a));
  memset(a, 1, 3000);
  vp_mem_free(VP_MEM_PINNED, 0, a, 3000);
  VP_ASSERT_OK(vp_mem_alloc(VP_MEM_PINNED, 0, 5000, &b));
  assert_ptr_not_equal(a, b);
  memset(b, 2, 5000);
  VP_ASSERT_OK(vp_mem_alloc(VP_MEM_PINNED, 0, 4096, &c));
  assert_ptr_equal(c, a);
  memset(c, 3, 4096);
  vp_mem_free(VP_MEM_PINNED, 0, b, 5000);
  vp_mem_free(VP_MEM_PINNED, 0, c, 4096);
  /* zero bytes: a valid pinned pointer */
  VP_ASSERT_OK(vp_mem_alloc(VP_MEM_PINNED, 0, 0, &a));
  assert_non_null(a);
  vp_mem_free(VP_MEM_PINNED, 0, a, 0);
  vp_mem_trim();
}

static void test_dlpack_device(void **state) {
  (void)state;
  int64_t shape[3] = {4, 5, 6};
  vp_tensor *t = NULL;
  VP_ASSERT_OK(vp_tensor_create(VP_F32, 3, shape, VP_MEM_DEVICE, 0, &t));
  CUDA_OK(cudaMemset(vp_tensor_data(t), 0x41, vp_tensor_nbytes(t)));
  void *m = NULL;
  VP_ASSERT_OK(vp_tensor_to_dlpack(t, &m));
  DLManagedTensor *mt = (DLManagedTensor *)m;
  assert_int_equal(mt->dl_tensor.device.device_type, kDLCUDA);
  assert_int_equal(mt->dl_tensor.device.device_id, 0);
  assert_ptr_equal(mt->dl_tensor.data, vp_tensor_data(t));
  assert_int_equal(mt->dl_tensor.ndim, 3);
  assert_int_equal(mt->dl_tensor.shape[2], 6);
  assert_int_equal(mt->dl_tensor.dtype.code, kDLFloat);
  assert_int_equal(mt->dl_tensor.dtype.bits, 32);
  /* the capsule keeps the memory alive after the tensor's own reference */
  vp_tensor_release(t);
  unsigned char got[120 * 4];
  CUDA_OK(cudaMemcpy(got, mt->dl_tensor.data, sizeof got, cudaMemcpyDeviceToHost));
  for (size_t i = 0; i < sizeof got; i++) assert_int_equal(got[i], 0x41);
  mt->deleter(mt);

  /* a pinned tensor exports as CUDA host memory */
  VP_ASSERT_OK(vp_tensor_create(VP_U8, 3, shape, VP_MEM_PINNED, 0, &t));
  VP_ASSERT_OK(vp_tensor_to_dlpack(t, &m));
  mt = (DLManagedTensor *)m;
  assert_int_equal(mt->dl_tensor.device.device_type, kDLCUDAHost);
  vp_tensor_release(t);
  mt->deleter(mt);
}

static void test_huge_allocation(void **state) {
  (void)state;
  void *p = (void *)&p;
  vp_status s = vp_mem_alloc(VP_MEM_DEVICE, 0, (size_t)1 << 50, &p);
  if (s != VP_ERR_NOMEM && s != VP_ERR_CUDA)
    fail_msg("1 << 50 device bytes: %s (%s)", vp_status_name(s), vp_last_error());
  assert_null(p);
  assert_true(strlen(vp_last_error()) > 0);
  fprintf(stderr, "1 << 50 device bytes: %s\n", vp_last_error());
  /* the error is not sticky: the next allocation and a kernel still work */
  VP_ASSERT_OK(vp_mem_alloc(VP_MEM_DEVICE, 0, 1 << 20, &p));
  VP_ASSERT_OK(vp_cuda_fill_uniform((float *)p, 1 << 18, vp_rng_key_make(1, 2), 0, 0, NULL));
  CUDA_OK(cudaDeviceSynchronize());
  vp_mem_free(VP_MEM_DEVICE, 0, p, 1 << 20);

  int64_t shape[1] = {(int64_t)1 << 50};
  vp_tensor *t = (vp_tensor *)&t;
  s = vp_tensor_create(VP_U8, 1, shape, VP_MEM_DEVICE, 0, &t);
  assert_true(s == VP_ERR_NOMEM || s == VP_ERR_CUDA);
  assert_null(t);
  p = (void *)&p;
  s = vp_mem_alloc(VP_MEM_PINNED, 0, (size_t)1 << 50, &p);
  if (s != VP_ERR_NOMEM && s != VP_ERR_CUDA)
    fail_msg("1 << 50 pinned bytes: %s (%s)", vp_status_name(s), vp_last_error());
  assert_null(p);
  fprintf(stderr, "1 << 50 pinned bytes: %s\n", vp_last_error());
  VP_ASSERT_OK(vp_mem_alloc(VP_MEM_PINNED, 0, 100, &p));
  vp_mem_free(VP_MEM_PINNED, 0, p, 100);
}

/* ---------------------------------------------------------------- */
/* Device batches                                                    */

/* One launch for the whole batch: blockIdx.y is the sample, the table
 * gives its memory and parameters. */
__global__ void batch_fill_kernel(const vp_sample_desc *desc) {
  const vp_sample_desc &d = desc[blockIdx.y];
  float *out = (float *)d.data;
  for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < d.numel;
       e += (int64_t)blockDim.x * gridDim.x)
    out[e] = d.params[0] + d.params[1] * (float)(e % 1000);
}

static void test_device_batch(void **state) {
  (void)state;
  uint64_t st = vp_test_seed();
  enum { N = 7, NDIM = 3 };
  int64_t shapes[N * NDIM];
  for (int k = 0; k < N * NDIM; k++) shapes[k] = 1 + (int64_t)(vp_test_rand(&st) % 50);
  /* one empty sample; sample 2 has at least two elements (read back below) */
  shapes[4 * NDIM + 1] = 0;
  if (shapes[2 * NDIM + 2] < 2) shapes[2 * NDIM + 2] = 2;
  vp_batch *b = NULL;
  VP_ASSERT_OK(vp_batch_create(VP_F32, NDIM, N, shapes, VP_MEM_DEVICE, 0, &b));
  assert_int_equal(vp_batch_memkind(b), VP_MEM_DEVICE);
  const vp_sample_desc *ddesc = vp_batch_desc_device(b);
  assert_non_null(ddesc);
  assert_int_equal((uintptr_t)ddesc % VP_BATCH_ALIGN, 0);
  cudaPointerAttributes attr;
  CUDA_OK(cudaPointerGetAttributes(&attr, ddesc));
  assert_int_equal(attr.type, cudaMemoryTypeDevice);
  vp_sample_desc *h = vp_batch_desc_host(b);
  for (int i = 0; i < N; i++) {
    assert_int_equal((uintptr_t)h[i].data % VP_BATCH_ALIGN, 0);
    h[i].params[0] = 1000.0f * (float)(i + 1);
    h[i].params[1] = (float)(i % 3) - 1.0f;
    for (int k = 2; k < VP_SAMPLE_PARAMS; k++) h[i].params[k] = (float)vp_test_rand(&st);
  }

  vp_stream s = NULL;
  VP_ASSERT_OK(vp_cuda_stream_create(0, &s));
  VP_ASSERT_OK(vp_batch_upload_desc(b, s));
  /* the host table may change once the call returns: scribble on it and
   * expect the device to hold the table as it was at the call */
  vp_sample_desc saved[N];
  memcpy(saved, h, sizeof saved);
  for (int i = 0; i < N; i++) h[i].params[7] = -1.0f;
  VP_ASSERT_OK(vp_cuda_stream_sync(s));
  vp_sample_desc mirror[N];
  CUDA_OK(cudaMemcpy(mirror, ddesc, sizeof mirror, cudaMemcpyDeviceToHost));
  assert_memory_equal(mirror, saved, sizeof saved);
  memcpy(h, saved, sizeof saved);

  dim3 grid(8, N);
  batch_fill_kernel<<<grid, 128, 0, (cudaStream_t)s>>>(ddesc);
  CUDA_OK(cudaGetLastError());
  VP_ASSERT_OK(vp_cuda_stream_sync(s));
  for (int i = 0; i < N; i++) {
    vp_tensor *v = NULL, *hv = NULL;
    VP_ASSERT_OK(vp_batch_sample(b, i, &v));
    assert_int_equal(vp_tensor_memkind(v), VP_MEM_DEVICE);
    assert_memory_equal(vp_tensor_shape(v), &shapes[i * NDIM], sizeof(int64_t) * NDIM);
    VP_ASSERT_OK(vp_tensor_copy_to(v, VP_MEM_HOST, 0, &hv));
    const float *x = (const float *)vp_tensor_data(hv);
    for (int64_t e = 0; e < vp_tensor_numel(hv); e++) {
      float want = saved[i].params[0] + saved[i].params[1] * (float)(e % 1000);
      if (x[e] != want)
        fail_msg("sample %d element %lld: %g, want %g", i, (long long)e, x[e], want);
    }
    vp_tensor_release(v);
    vp_tensor_release(hv);
  }
  /* a view outlives the batch's own reference, and a DLPack capsule of it
   * outlives the view */
  vp_tensor *v = NULL;
  VP_ASSERT_OK(vp_batch_sample(b, 2, &v));
  vp_batch_destroy(b);
  void *m = NULL;
  VP_ASSERT_OK(vp_tensor_to_dlpack(v, &m));
  DLManagedTensor *mt = (DLManagedTensor *)m;
  assert_int_equal(mt->dl_tensor.device.device_type, kDLCUDA);
  vp_tensor_release(v);
  float first[2];
  CUDA_OK(cudaMemcpy(first, mt->dl_tensor.data, sizeof first, cudaMemcpyDeviceToHost));
  assert_true(first[1] == saved[2].params[0] + saved[2].params[1]);
  mt->deleter(mt);
  vp_cuda_stream_destroy(s);
}

int main(void) {
  if (vp_cuda_device_count() == 0) {
    fprintf(stderr, "no CUDA device: skipped\n");
    return 77;
  }
  vp_test_seed();
  if (vp_cuda_set_device(0) != VP_OK) {
    fprintf(stderr, "device 0: %s\n", vp_last_error());
    return 1;
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_philox_device),
      cmocka_unit_test(test_fill_uniform),
      cmocka_unit_test(test_device_tensor_round_trip),
      cmocka_unit_test(test_pinned_cache),
      cmocka_unit_test(test_dlpack_device),
      cmocka_unit_test(test_huge_allocation),
      cmocka_unit_test(test_device_batch),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
