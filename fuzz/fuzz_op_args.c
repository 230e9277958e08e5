/* libFuzzer target for operator arguments. Input: one configuration byte,
 * an operator name up to a newline, then a JSON document of arguments. An
 * unknown name picks an operator by a hash of its bytes, so mutations keep
 * reaching operators as the registry grows. The document goes through
 * vp_op_args_parse for a batch of 1 or 2; when it parses, the operator runs
 * eagerly (vp_ops_call) on tiny host tensors chosen by the configuration
 * byte (3-D and 4-D float32, a uint8 label, 3x4 and 4x4 matrices). Outputs
 * are released. Host allocations above 16 MiB fail (src/core/memory.h):
 * a huge requested shape must be refused, not attempted. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/memory.h"
#include "ops/op.h"
#include "voxpipe.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  vp_debug_fail_alloc_larger_than((size_t)16 << 20);
  return 0;
}

static vp_tensor *make(vp_dtype t, int ndim, const int64_t *shape, uint8_t fill) {
  vp_tensor *x = NULL;
  if (vp_tensor_create(t, ndim, shape, VP_MEM_HOST, 0, &x) != VP_OK) return NULL;
  if (t == VP_F32) {
    float *f = vp_tensor_data(x);
    for (int64_t i = 0; i < vp_tensor_numel(x); i++) f[i] = (float)((i * 7 + fill) % 11) - 3.0f;
  } else {
    memset(vp_tensor_data(x), fill % 3, vp_tensor_nbytes(x));
  }
  return x;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2) return 0;
  uint8_t cfg = data[0];
  const uint8_t *nl = memchr(data + 1, '\n', size - 1);
  if (!nl) return 0;
  size_t name_len = (size_t)(nl - (data + 1));
  char name[64];
  const vp_op_desc *op = NULL;
  if (name_len < sizeof name) {
    memcpy(name, data + 1, name_len);
    name[name_len] = '\0';
    for (int i = 0; i < vp_op_registry_count() && !op; i++)
      if (!strcmp(vp_op_registry_at(i)->name, name)) op = vp_op_registry_at(i);
  }
  if (!op) {
    uint32_t h = 0;
    for (size_t i = 1; i < 1 + name_len; i++) h = h * 31 + data[i];
    op = vp_op_registry_at((int)(h % (uint32_t)vp_op_registry_count()));
  }
  size_t json_len = size - (size_t)(nl + 1 - data);
  char *json = malloc(json_len + 1);
  if (!json) return 0;
  memcpy(json, nl + 1, json_len);
  json[json_len] = '\0';

  int64_t batch = 1 + (cfg & 1);
  vp_op_args *args = NULL;
  vp_status s = vp_op_args_parse(op, json, batch, &args);
  if (s != VP_OK && args) __builtin_trap();
  vp_op_args_free(args);
  if (s == VP_OK && op->num_inputs <= VP_OP_MAX_IO) {
    static const int64_t s3[3] = {3, 4, 5}, s4[4] = {2, 3, 4, 5}, m34[2] = {3, 4}, m44[2] = {4, 4},
                         s2[2] = {4, 5};
    vp_tensor *in[VP_OP_MAX_IO * 2] = {0};
    int ok = 1;
    for (int k = 0; k < op->num_inputs; k++) {
      for (int64_t i = 0; i < batch; i++) {
        vp_tensor **t = &in[k * batch + i];
        switch ((cfg >> 1) % 6) {
          case 0: *t = make(VP_F32, 3, s3, cfg); break;
          case 1: *t = make(VP_F32, 4, s4, cfg); break;
          case 2: *t = k == 0 ? make(VP_F32, 4, s4, cfg) : make(VP_U8, 3, s3, cfg); break;
          case 3: *t = make(VP_F32, 2, m34, cfg); break;
          case 4: *t = make(VP_F32, 2, m44, cfg); break;
          default: *t = make((cfg & 0x80) ? VP_U8 : VP_F32, 2, s2, cfg); break;
        }
        ok &= *t != NULL;
      }
    }
    vp_tensor *out[VP_OP_MAX_IO * 2] = {0};
    if (ok) {
      s = vp_ops_call(op->name, batch, in, json, cfg, out);
      for (int k = 0; k < op->num_outputs * batch; k++) {
        if (s != VP_OK && out[k]) __builtin_trap();
        vp_tensor_release(out[k]);
      }
    }
    for (int k = 0; k < op->num_inputs * batch; k++) vp_tensor_release(in[k]);
  }
  free(json);
  return 0;
}
