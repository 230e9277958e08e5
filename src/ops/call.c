/* Eager operator calls (vp_ops_call), descriptions (vp_ops_describe) and
 * the CPU bodies' parallel loop. */
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/batch.h"
#include "core/cuda_rt.h"
#include "core/status.h"
#include "core/tensor.h"
#include "ops/call_internal.h"
#include "ops/op.h"

void vp_free(void *p) { free(p); }

/* ---------------------------------------------------------------- */
/* Descriptions                                                      */

static const char *type_name(vp_arg_type t) {
  switch (t) {
    case VP_ARG_INT: return "int";
    case VP_ARG_FLOAT: return "float";
    case VP_ARG_BOOL: return "bool";
    case VP_ARG_ENUM: return "enum";
    case VP_ARG_DTYPE: return "dtype";
    case VP_ARG_INTS: return "ints";
    case VP_ARG_FLOATS: return "floats";
  }
  return "?";
}

static json_t *string_list(const char *const *names, int n) {
  json_t *a = json_array();
  for (int i = 0; a && i < n; i++) json_array_append_new(a, json_string(names[i]));
  return a;
}

static json_t *describe_arg(const vp_arg_spec *sp) {
  json_t *o = json_object();
  if (!o) return NULL;
  json_object_set_new(o, "name", json_string(sp->name));
  json_object_set_new(o, "type", json_string(type_name(sp->type)));
  if (sp->def) {
    json_t *d = json_loads(sp->def, JSON_DECODE_ANY, NULL);
    if (d) json_object_set_new(o, "default", d);
  }
  int numeric = sp->type == VP_ARG_INT || sp->type == VP_ARG_FLOAT || sp->type == VP_ARG_INTS ||
                sp->type == VP_ARG_FLOATS;
  if (numeric) {
    json_object_set_new(o, "min", json_real(sp->lo));
    json_object_set_new(o, "max", json_real(sp->hi));
  }
  if (sp->type == VP_ARG_INTS || sp->type == VP_ARG_FLOATS)
    json_object_set_new(o, "max_len", json_integer(sp->max_len > 0 ? sp->max_len : VP_ARG_MAX_LEN));
  json_t *choices = NULL;
  if (sp->type == VP_ARG_ENUM && sp->choices) {
    choices = json_array();
    for (const char *p = sp->choices; choices && *p;) {
      const char *e = strchr(p, '|');
      size_t len = e ? (size_t)(e - p) : strlen(p);
      json_array_append_new(choices, json_stringn(p, len));
      p += len + (e ? 1 : 0);
    }
  } else if (sp->type == VP_ARG_DTYPE) {
    choices = json_array();
    int lo = sp->hi > sp->lo ? (int)sp->lo : 0, hi = sp->hi > sp->lo ? (int)sp->hi : VP_F64;
    for (int d = lo; choices && d <= hi; d++)
      json_array_append_new(choices, json_string(vp_dtype_name((vp_dtype)d)));
  }
  if (choices) json_object_set_new(o, "choices", choices);
  json_object_set_new(o, "per_sample", json_boolean(sp->flags & VP_ARG_PER_SAMPLE));
  json_object_set_new(o, "doc", json_string(sp->doc ? sp->doc : ""));
  return o;
}

vp_status vp_ops_describe(const char *name, char **out) {
  if (!out) return vp_fail(VP_ERR_INVALID_ARG, "ops_describe: out is NULL");
  *out = NULL;
  const vp_op_desc *op = vp_op_lookup(name);
  if (!op) return VP_ERR_INVALID_ARG;
  json_t *o = json_object();
  json_t *args = json_array();
  if (!o || !args) {
    json_decref(o);
    json_decref(args);
    return vp_fail(VP_ERR_NOMEM, "%s: describe: out of memory", op->name);
  }
  json_object_set_new(o, "name", json_string(op->name));
  json_object_set_new(o, "doc", json_string(op->doc));
  json_object_set_new(o, "inputs", string_list(op->inputs, op->num_inputs));
  json_object_set_new(o, "outputs", string_list(op->outputs, op->num_outputs));
  json_object_set_new(o, "random", json_boolean(op->random));
  json_object_set_new(o, "gpu", json_boolean(op->run_gpu != NULL));
  for (int a = 0; a < op->num_args; a++) json_array_append_new(args, describe_arg(&op->args[a]));
  json_object_set_new(o, "args", args);
  char *text = json_dumps(o, JSON_PRESERVE_ORDER | JSON_INDENT(2) | JSON_REAL_PRECISION(17));
  json_decref(o);
  if (!text) return vp_fail(VP_ERR_NOMEM, "%s: describe: out of memory", op->name);
  /* jansson's allocator is malloc unless the process changed it: hand out
   * our own copy so that vp_free is always right */
  *out = strdup(text);
  free(text);
  if (!*out) return vp_fail(VP_ERR_NOMEM, "%s: describe: out of memory", op->name);
  return VP_OK;
}

/* ---------------------------------------------------------------- */
/* The CPU bodies' loop: pieces of samples, flattened                */

typedef struct par_ctx {
  const int64_t *first; /* first piece of each sample, batch + 1 entries */
  const int64_t *units;
  int64_t batch, grain;
  vp_op_range_fn fn;
  void *ctx;
} par_ctx;

static vp_status par_piece(void *ctx, int64_t p) {
  const par_ctx *pc = ctx;
  int64_t lo = 0, hi = pc->batch - 1; /* the last sample whose first piece <= p */
  while (lo < hi) {
    int64_t mid = lo + (hi - lo + 1) / 2;
    if (pc->first[mid] <= p)
      lo = mid;
    else
      hi = mid - 1;
  }
  int64_t begin = (p - pc->first[lo]) * pc->grain;
  int64_t end = begin + pc->grain < pc->units[lo] ? begin + pc->grain : pc->units[lo];
  return pc->fn(pc->ctx, lo, begin, end);
}

vp_status vp_op_parallel(const vp_op_call *c, const int64_t *units, int64_t grain,
                         vp_op_range_fn fn, void *ctx) {
  if (grain < 1) grain = 1;
  int64_t *first = malloc((size_t)(c->batch + 1) * sizeof *first);
  if (!first) return vp_fail(VP_ERR_NOMEM, "operator loop: out of memory");
  first[0] = 0;
  for (int64_t i = 0; i < c->batch; i++)
    first[i + 1] = first[i] + (units[i] > 0 ? (units[i] + grain - 1) / grain : 0);
  par_ctx pc = {first, units, c->batch, grain, fn, ctx};
  vp_status s = vp_parallel_for(c->pool, first[c->batch], par_piece, &pc);
  free(first);
  return s;
}

vp_status vp_op_parallel_elems(const vp_op_call *c, int64_t grain, vp_op_range_fn fn, void *ctx) {
  if (c->batch < 1) return VP_OK;
  int64_t *units = malloc((size_t)c->batch * sizeof *units);
  if (!units) return vp_fail(VP_ERR_NOMEM, "operator loop: out of memory");
  for (int64_t i = 0; i < c->batch; i++) units[i] = vp_tensor_numel(c->in[0][i]);
  vp_status s = vp_op_parallel(c, units, grain, fn, ctx);
  free(units);
  return s;
}

int vp_op_hand_on(const vp_out_spec *o, vp_tensor *in, vp_tensor **slot) {
  if (o->dtype != in->dtype || o->ndim != in->ndim ||
      memcmp(o->shape, in->shape, (size_t)o->ndim * sizeof o->shape[0]) != 0)
    return 0;
  vp_tensor_retain(in);
  *slot = in;
  return 1;
}

/* ---------------------------------------------------------------- */
/* Eager calls                                                       */

/* Where the call runs: -1 = CPU, else the GPU all inputs are on. */
vp_status vp_call_find_device(const vp_op_desc *op, int64_t batch, vp_tensor *const *inputs,
                              int *device) {
  *device = -1;
  int64_t n = (int64_t)op->num_inputs * batch;
  for (int64_t k = 0; k < n; k++) {
    const vp_tensor *t = inputs[k];
    if (!t)
      return vp_fail(VP_ERR_INVALID_ARG, "%s: input '%s' of sample %lld is NULL", op->name,
                     op->inputs[k / batch], (long long)(k % batch));
    const vp_tensor *first = inputs[k - k % batch];
    if (t->dtype != first->dtype)
      return vp_fail(VP_ERR_INVALID_ARG,
                     "%s: input '%s' of sample %lld is %s, of sample 0 %s: the samples of an "
                     "input share one dtype",
                     op->name, op->inputs[k / batch], (long long)(k % batch),
                     vp_dtype_name(t->dtype), vp_dtype_name(first->dtype));
    int d = t->mem == VP_MEM_DEVICE ? t->device : -1;
    if (k == 0) *device = d;
    if (d != *device)
      return vp_fail(VP_ERR_INVALID_ARG,
                     "%s: inputs are on different devices (sample %lld of '%s' is on %s %d, "
                     "sample 0 of '%s' on %s %d): they must all be in host memory or on one GPU",
                     op->name, (long long)(k % batch), op->inputs[k / batch],
                     d < 0 ? "host" : "GPU", d, op->inputs[0], *device < 0 ? "host" : "GPU",
                     *device);
  }
  return VP_OK;
}

/* Output k of the samples whose slot is empty as views of one device batch:
 * one allocation (one cudaMallocAsync and one synchronisation) instead of
 * one per sample, as the executor does. Only when those samples share dtype
 * and rank; a batch that cannot be made leaves the slots empty for the
 * per-sample path, which words its own errors. */
static void batch_output(const vp_out_spec *spec, int64_t B, int k, int device, vp_tensor **slots) {
  const vp_out_spec *s0 = NULL;
  int64_t m = 0;
  for (int64_t i = 0; i < B; i++) {
    if (slots[i]) continue;
    const vp_out_spec *si = &spec[i * VP_OP_MAX_IO + k];
    if (!s0) s0 = si;
    if (si->dtype != s0->dtype || si->ndim != s0->ndim) return;
    m++;
  }
  if (m < 2) return;
  int nd = s0->ndim;
  int64_t *shapes = calloc((size_t)m * (size_t)(nd ? nd : 1), sizeof *shapes);
  int64_t *which = calloc((size_t)m, sizeof *which);
  if (!shapes || !which) {
    free(shapes);
    free(which);
    return;
  }
  for (int64_t i = 0, j = 0; i < B; i++) {
    if (slots[i]) continue;
    for (int d = 0; d < nd; d++) shapes[j * nd + d] = spec[i * VP_OP_MAX_IO + k].shape[d];
    which[j++] = i;
  }
  vp_batch *b = NULL;
  vp_status s = vp_batch_create(s0->dtype, nd, m, shapes, VP_MEM_DEVICE, device, &b);
  free(shapes);
  for (int64_t j = 0; j < m && s == VP_OK; j++) s = vp_batch_sample(b, j, &slots[which[j]]);
  vp_batch_destroy(b); /* the views hold the batch */
  if (s != VP_OK) {
    for (int64_t j = 0; j < m; j++) {
      vp_tensor_release(slots[which[j]]);
      slots[which[j]] = NULL;
    }
    vp_clear_error();
  }
  free(which);
}

/* Outputs from spec[i * VP_OP_MAX_IO + k] (of op, whose meta runs when
 * `meta`), with the first input's geometry where the ranks agree. Slots
 * already set (a chain passing a sample through) are left as they are. */
vp_status vp_call_alloc_from_spec(const vp_op_desc *op, const vp_op_call *c, vp_out_spec *spec,
                                  vp_tensor **outputs, int device, int meta) {
  vp_status s = VP_OK;
  if (device >= 0 && c->batch > 1)
    for (int k = 0; k < op->num_outputs; k++)
      batch_output(spec, c->batch, k, device, outputs + k * c->batch);
  for (int64_t i = 0; i < c->batch && s == VP_OK; i++) {
    int given = 0;
    for (int k = 0; k < op->num_outputs && s == VP_OK; k++) {
      vp_tensor **t = &outputs[k * c->batch + i];
      const vp_out_spec *o = &spec[i * VP_OP_MAX_IO + k];
      if (*t && op->num_inputs > 0 && *t == c->in[0][i]) {
        given = 1;
        continue;
      }
      if (!*t) {
        s = vp_tensor_create(o->dtype, o->ndim, o->shape, device < 0 ? VP_MEM_HOST : VP_MEM_DEVICE,
                             device < 0 ? 0 : device, t);
        if (s != VP_OK) {
          s = vp_fail_prefix(s, "%s: output '%s' of sample %lld", op->name, op->outputs[k],
                             (long long)i);
          break;
        }
      }
      if (op->num_inputs > 0 && c->in[0][i]->ndim == (*t)->ndim)
        vp_tensor_copy_meta(*t, c->in[0][i]);
    }
    if (s == VP_OK && meta && op->meta && !given) s = op->meta(c, i);
  }
  return s;
}

static vp_status alloc_outputs(const vp_op_desc *op, const vp_op_call *c, vp_tensor **outputs,
                               int device) {
  vp_out_spec *spec = calloc((size_t)c->batch * VP_OP_MAX_IO, sizeof *spec);
  if (!spec) return vp_fail(VP_ERR_NOMEM, "%s: out of memory for output shapes", op->name);
  vp_status s = VP_OK;
  for (int64_t i = 0; i < c->batch && s == VP_OK; i++) s = op->infer(c, i, &spec[i * VP_OP_MAX_IO]);
  if (s == VP_OK) s = vp_call_alloc_from_spec(op, c, spec, outputs, device, 1);
  free(spec);
  return s;
}

/* Eager GPU calls reuse one non-blocking stream per thread and device:
 * creating and destroying a stream per call cost more than a small
 * kernel. A thread's streams go when the thread ends. */
#define EAGER_STREAM_DEVICES 64
typedef struct eager_streams {
  vp_stream s[EAGER_STREAM_DEVICES];
} eager_streams;
static pthread_key_t stream_key;
static pthread_once_t stream_once = PTHREAD_ONCE_INIT;
static int stream_key_ok;

static void streams_free(void *p) {
  eager_streams *e = p;
  for (int d = 0; d < EAGER_STREAM_DEVICES; d++) vp_cuda_stream_destroy(e->s[d]);
  free(e);
}

static void streams_init(void) {
  stream_key_ok = pthread_key_create(&stream_key, streams_free) == 0;
}

/* The thread's stream for `device`; *owned when the caller must destroy it
 * (no thread-local slot could be had). */
static vp_status eager_stream(int device, vp_stream *out, int *owned) {
  *owned = 0;
  pthread_once(&stream_once, streams_init);
  eager_streams *e = stream_key_ok ? pthread_getspecific(stream_key) : NULL;
  if (!e && stream_key_ok && device >= 0 && device < EAGER_STREAM_DEVICES) {
    e = calloc(1, sizeof *e);
    if (e && pthread_setspecific(stream_key, e) != 0) {
      free(e);
      e = NULL;
    }
  }
  if (!e || device < 0 || device >= EAGER_STREAM_DEVICES) {
    *owned = 1;
    return vp_cuda_stream_create(device, out);
  }
  if (!e->s[device]) VP_TRY(vp_cuda_stream_create(device, &e->s[device]));
  *out = e->s[device];
  return VP_OK;
}

vp_status vp_eager_wait(int device, void *cuda_stream) {
  VP_TRY(vp_cuda_set_device(device));
  vp_stream st;
  int owned;
  VP_TRY(eager_stream(device, &st, &owned));
  if (owned) {
    /* no stream kept for this thread: each call makes its own, so the host
     * waits for the producer instead */
    vp_cuda_stream_destroy(st);
    return vp_cuda_stream_sync(cuda_stream);
  }
  return vp_cuda_stream_wait(st, cuda_stream);
}

/* The stream an eager call on `device` will run on, for its outputs'
 * allocations (NULL: allocate the slow way, on the legacy stream). */
vp_stream vp_call_alloc_stream(int device) {
  if (device < 0) return NULL;
  vp_stream st;
  int owned;
  if (vp_cuda_set_device(device) != VP_OK || eager_stream(device, &st, &owned) != VP_OK) {
    vp_clear_error();
    return NULL;
  }
  if (owned) {
    vp_cuda_stream_destroy(st);
    return NULL;
  }
  return st;
}

static vp_status run(const vp_op_desc *op, vp_op_call *c, int device) {
  return vp_call_run_body(op, c, NULL, NULL, device);
}

vp_status vp_call_run_body(const vp_op_desc *op, vp_op_call *c, vp_call_body body, void *ctx,
                           int device) {
  if (device < 0) {
    /* threads pay off on large batches only; a pool that cannot start
     * leaves the call inline */
    int64_t elems = 0;
    for (int64_t i = 0; i < c->batch; i++)
      for (int k = 0; k < op->num_outputs; k++) elems += vp_tensor_numel(c->out[k][i]);
    vp_threadpool *pool = NULL;
    if (elems >= (1 << 18) && vp_num_cores() > 1 && vp_threadpool_create(0, &pool) != VP_OK) {
      vp_clear_error();
      pool = NULL;
    }
    c->pool = pool;
    vp_status s = body ? body(ctx, 0, pool, NULL, -1) : op->run_cpu(c);
    vp_threadpool_destroy(pool);
    c->pool = NULL;
    return s;
  }
  if (!op->run_gpu && !body)
    return vp_fail(VP_ERR_UNSUPPORTED,
                   "%s: runs on the CPU only; its inputs are on GPU %d (copy them to the host)",
                   op->name, device);
  VP_TRY(vp_cuda_set_device(device));
  vp_stream stream;
  int owned;
  VP_TRY(eager_stream(device, &stream, &owned));
  c->stream = stream;
  c->device = device;
  vp_status s = body ? body(ctx, 1, NULL, stream, device) : op->run_gpu(c);
  /* synchronise even after a failed launch: earlier work on the stream
   * must finish before the outputs can be released */
  vp_status s2 = vp_cuda_stream_sync(stream);
  if (owned) vp_cuda_stream_destroy(stream);
  c->stream = NULL;
  return s != VP_OK ? s : s2;
}

/* The checks every eager call starts with; outputs are set to NULL. */
static vp_status call_begin(const char *name, int64_t batch, vp_tensor *const *inputs,
                            vp_tensor **outputs, const vp_op_desc **op_out, int *device) {
  const vp_op_desc *op = vp_op_lookup(name);
  if (!op) return VP_ERR_INVALID_ARG;
  if (!outputs) return vp_fail(VP_ERR_INVALID_ARG, "%s: outputs is NULL", op->name);
  if (batch < 1 || batch > VP_BATCH_MAX_SAMPLES)
    return vp_fail(VP_ERR_INVALID_ARG, "%s: batch %lld is outside 1..%d", op->name,
                   (long long)batch, VP_BATCH_MAX_SAMPLES);
  for (int64_t k = 0; k < (int64_t)op->num_outputs * batch; k++) outputs[k] = NULL;
  if (op->num_inputs > 0 && !inputs)
    return vp_fail(VP_ERR_INVALID_ARG, "%s: inputs is NULL", op->name);
  *op_out = op;
  return vp_call_find_device(op, batch, inputs, device);
}

/* The rest of an eager call, once its arguments are parsed (freed here). */
static vp_status call_run(const vp_op_desc *op, int64_t batch, vp_tensor *const *inputs,
                          vp_op_args *args, uint64_t seed, int device, vp_tensor **outputs) {
  vp_op_call c;
  memset(&c, 0, sizeof c);
  c.batch = batch;
  for (int k = 0; k < op->num_inputs; k++) c.in[k] = inputs + k * batch;
  for (int k = 0; k < op->num_outputs; k++) c.out[k] = outputs + k * batch;
  c.args = args;
  c.key = vp_op_eager_key(op, seed);
  c.device = device < 0 ? 0 : device;

  /* outputs are allocated on the stream the call runs on, which run()
   * synchronises; a call that fails first synchronises it here, before
   * its outputs are freed */
  const vp_stream ast = vp_call_alloc_stream(device);
  const vp_stream prev = vp_cuda_set_alloc_stream(ast);
  vp_status s = alloc_outputs(op, &c, outputs, device);
  vp_cuda_set_alloc_stream(prev);
  if (s == VP_OK) s = run(op, &c, device);
  if (s != VP_OK && ast) (void)vp_cuda_stream_sync(ast);
  vp_op_args_free(args);
  /* messages from the layers below (allocators, CUDA) do not know which
   * operator they served */
  if (s != VP_OK && strncmp(vp_last_error(), op->name, strlen(op->name)) != 0)
    vp_fail_prefix(s, "%s", op->name);
  if (s != VP_OK) {
    for (int64_t k = 0; k < (int64_t)op->num_outputs * batch; k++) {
      vp_tensor_release(outputs[k]);
      outputs[k] = NULL;
    }
  }
  return s;
}

vp_status vp_ops_call(const char *name, int64_t batch, vp_tensor *const *inputs,
                      const char *args_json, uint64_t seed, vp_tensor **outputs) {
  const vp_op_desc *op = NULL;
  int device = -1;
  VP_TRY(call_begin(name, batch, inputs, outputs, &op, &device));
  vp_op_args *args;
  VP_TRY(vp_op_args_parse(op, args_json, batch, &args));
  return call_run(op, batch, inputs, args, seed, device, outputs);
}

vp_status vp_ops_call_items(const char *name, int64_t batch, vp_tensor *const *inputs,
                            const vp_arg_item *items, int n, uint64_t seed, vp_tensor **outputs) {
  const vp_op_desc *op = NULL;
  int device = -1;
  VP_TRY(call_begin(name, batch, inputs, outputs, &op, &device));
  vp_op_args *args;
  VP_TRY(vp_op_args_from_items(op, items, n, batch, &args));
  return call_run(op, batch, inputs, args, seed, device, outputs);
}
