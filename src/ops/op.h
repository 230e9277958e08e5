/* Operators: one descriptor per operator, in the registry (src/ops/registry.c).
 *
 * An operator lives in one file, src/ops/<name>.c, holding its descriptor
 * (documented, bounded arguments), its shape inference and its CPU body;
 * its GPU body sits in src/cuda/<name>.cu behind a C-callable launcher in
 * src/cuda/kernels.h. The CLI's `voxpipe ops`, Python's voxpipe.fn.<name>
 * and docs/ops.md are generated from the descriptors, so adding an operator
 * is one new file (plus its kernel) and one registry line.
 *
 * A call runs one operator over a batch of samples. Inputs and outputs are
 * arrays of tensors, one per sample, possibly of different shapes; outputs
 * are allocated by the caller from `infer` before the run, on the call's
 * device. A GPU body serves the whole batch with one kernel launch (a table
 * of sample descriptors uploaded once per call, see src/cuda/batch_launch.h).
 */
#ifndef VP_OPS_OP_H
#define VP_OPS_OP_H

#include <stdint.h>

#include "core/philox.h"
#include "core/threadpool.h"
#include "voxpipe.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VP_OP_MAX_IO 4
#define VP_OP_MAX_ARGS 24
#define VP_ARG_MAX_LEN 16

typedef enum vp_arg_type {
  VP_ARG_INT,    /* an integer (stored exactly in a double, |v| < 2^53) */
  VP_ARG_FLOAT,  /* a number */
  VP_ARG_BOOL,   /* true/false (0/1) */
  VP_ARG_ENUM,   /* one of `choices`, stored as its index */
  VP_ARG_DTYPE,  /* a dtype name, stored as its vp_dtype */
  VP_ARG_INTS,   /* a list of integers (1..max_len values) */
  VP_ARG_FLOATS  /* a list of numbers (1..max_len values) */
} vp_arg_type;

/* The argument may vary per sample: it is then the output of another node
 * (one value per sample) instead of a constant. */
#define VP_ARG_PER_SAMPLE 1u
/* A list argument that may be empty ("[]", e.g. the shape of a scalar). */
#define VP_ARG_EMPTY_OK 2u

typedef struct vp_arg_spec {
  const char *name;
  vp_arg_type type;
  /* Default in pipeline-file (JSON) syntax: "0.5", "[0, 1]", "\"edge\"",
   * "\"float32\"", "true"; NULL = the argument is required. */
  const char *def;
  double lo, hi;       /* inclusive bounds of every number */
  int max_len;         /* lists: the most values */
  const char *choices; /* VP_ARG_ENUM: "constant|edge|reflect" */
  unsigned flags;
  const char *doc;
} vp_arg_spec;

/* A parsed, validated value: scalars have len 1. */
typedef struct vp_arg_value {
  int len;
  double v[VP_ARG_MAX_LEN];
} vp_arg_value;

typedef struct vp_op_args {
  /* Value of argument a for sample i: vals[a][per_sample[a] ? i : 0]. */
  const vp_arg_value *vals[VP_OP_MAX_ARGS];
  int per_sample[VP_OP_MAX_ARGS];
} vp_op_args;

static inline const vp_arg_value *vp_arg(const vp_op_args *a, int idx, int64_t sample) {
  return a->per_sample[idx] ? &a->vals[idx][sample] : a->vals[idx];
}
static inline double vp_arg_num(const vp_op_args *a, int idx, int64_t sample) {
  return vp_arg(a, idx, sample)->v[0];
}

typedef struct vp_op_call {
  int64_t batch;
  vp_tensor *const *in[VP_OP_MAX_IO];  /* in[k][i]: input k of sample i */
  vp_tensor *const *out[VP_OP_MAX_IO]; /* out[k][i]: allocated from infer */
  const vp_op_args *args;
  /* Randomness: sample i draws vp_rng_draw(key, iteration, sample_base + i,
   * element), so a sample's numbers do not depend on its batch. */
  vp_rng_key key;
  uint32_t iteration;
  uint32_t sample_base;
  vp_threadpool *pool; /* CPU bodies: may be NULL (run inline) */
  void *stream;        /* GPU bodies: a cudaStream_t */
  int device;
} vp_op_call;

typedef struct vp_out_spec {
  vp_dtype dtype;
  int ndim;
  int64_t shape[VP_MAX_NDIM];
} vp_out_spec;

struct vp_pw_stage;

typedef struct vp_op_desc {
  const char *name;
  const char *doc; /* one line */
  int num_inputs, num_outputs;
  const char *inputs[VP_OP_MAX_IO];
  const char *outputs[VP_OP_MAX_IO];
  const vp_arg_spec *args;
  int num_args;
  int random; /* draws random numbers */
  /* Output specs of sample i (num_outputs of them), from the inputs'
   * dtypes and shapes and the arguments; inputs' data may not be ready. */
  vp_status (*infer)(const vp_op_call *c, int64_t i, vp_out_spec *out);
  vp_status (*run_cpu)(const vp_op_call *c);
  vp_status (*run_gpu)(const vp_op_call *c); /* NULL: CPU only */
  /* Sets the spacing and affine of sample i's outputs, after they were
   * allocated and given the first input's metadata (when the first input
   * has the output's ndim). NULL: that default stands. Host-side
   * only, so the caller runs it for CPU and GPU bodies alike. */
  vp_status (*meta)(const vp_op_call *c, int64_t i);
  /* Pointwise operators: sample i's action as one stage of the pointwise
   * engine's per-voxel program (src/ops/pointwise.h), which lets the
   * executor fuse a chain of them into one pass. NULL for other ops. */
  vp_status (*pointwise)(const vp_op_call *c, int64_t i, struct vp_pw_stage *st);
  /* Optional: 1 when sample i's output would equal its input byte for byte
   * (p left the sample alone), so an eager chain may leave the operator out
   * of a batch where every sample passes. NULL: never assumed. */
  int (*passes)(const vp_op_call *c, int64_t i);
} vp_op_desc;

/* The registry. */
int vp_op_registry_count(void);
const vp_op_desc *vp_op_registry_at(int i);
/* NULL (with a message listing close names) when unknown. */
const vp_op_desc *vp_op_lookup(const char *name);
/* Index of an argument by name, -1 when the op has none of that name. */
int vp_op_arg_index(const vp_op_desc *op, const char *name);

/* Parses and validates one argument from JSON text, against its spec;
 * messages read "flip: argument 'axes': 7 is outside [0, 2]". */
vp_status vp_arg_parse(const vp_op_desc *op, int idx, const char *json, vp_arg_value *out);

/* Parses a JSON object of arguments (NULL or "" = all defaults) for a call
 * on `batch` samples: a constant per argument, or {"per_sample": [...]}
 * with `batch` values for arguments flagged VP_ARG_PER_SAMPLE. Missing
 * arguments take their defaults. *out is one allocation: vp_op_args_free. */
vp_status vp_op_args_parse(const vp_op_desc *op, const char *json, int64_t batch,
                           vp_op_args **out);
/* The same from values (vp_arg_item, voxpipe.h), through the same checks. */
vp_status vp_op_args_from_items(const vp_op_desc *op, const vp_arg_item *items, int n,
                                int64_t batch, vp_op_args **out);
void vp_op_args_free(vp_op_args *a);

/* CPU bodies: calls fn(ctx, i, begin, end) over [0, units[i]) of every
 * sample i < c->batch, in pieces of at most `grain` units, spread over
 * c->pool (pieces of one sample may run on different threads). */
typedef vp_status (*vp_op_range_fn)(void *ctx, int64_t sample, int64_t begin, int64_t end);
vp_status vp_op_parallel(const vp_op_call *c, const int64_t *units, int64_t grain,
                         vp_op_range_fn fn, void *ctx);
/* The same over the elements of each sample's input 0 (element-wise bodies). */
vp_status vp_op_parallel_elems(const vp_op_call *c, int64_t grain, vp_op_range_fn fn, void *ctx);

/* Hands `in` on as an output that p left alone (*slot = in, retained) when
 * the output's spec o is in's dtype and shape; returns whether it did. The
 * operators skip a sample whose output is its input (blur, the pointwise
 * engine): the eager chain and the pipeline executor use this so that an
 * intermediate is not a copy. */
int vp_op_hand_on(const vp_out_spec *o, vp_tensor *in, vp_tensor **slot);

/* The operator's stream key for an eager call with `seed` (op instance =
 * a hash of the operator's name, so two operators draw different numbers). */
vp_rng_key vp_op_eager_key(const vp_op_desc *op, uint64_t seed);

#ifdef __cplusplus
}
#endif
#endif
