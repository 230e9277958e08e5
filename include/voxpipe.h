/*
 * voxpipe: load 3D medical volumes and augment them on the GPU.
 *
 * The whole public C API. Every other symbol of the library is hidden.
 *
 * Conventions, written once:
 * - Every fallible call returns a vp_status; VP_OK is 0. On failure the
 *   calling thread's message (vp_last_error) says what and where, e.g.
 *   "case_017.nii.gz: dim[2] = -4 is negative". The library never aborts.
 * - Objects are opaque handles. A function that returns an object through
 *   an out-pointer gives the caller one reference; vp_*_release (or
 *   vp_*_destroy) drops it and accepts NULL. Out-pointers are left NULL on
 *   failure, so releasing them unconditionally is always safe.
 * - Arrays are channel-first, spatial last, C order: [C,] D, H, W. NIfTI's
 *   (x, y, z, t) becomes (t, z, y, x); spacing is (dz, dy, dx); the affine
 *   stays NIfTI's voxel (i, j, k) -> world (x, y, z). See docs/conventions.md.
 */
#ifndef VOXPIPE_H
#define VOXPIPE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VP_VERSION_MAJOR 0
#define VP_VERSION_MINOR 1
#define VP_VERSION_PATCH 0
#define VP_VERSION_STRING "0.1.0"

#if defined(VP_BUILDING_LIBRARY) && defined(__GNUC__)
#define VP_API __attribute__((visibility("default")))
#else
#define VP_API
#endif

/* "0.1.0" plus the backends built in, e.g. "0.1.0 (cuda)". */
VP_API const char *vp_version(void);
/* Nonzero when the library was built with its CUDA backend. */
VP_API int vp_has_cuda(void);

/* ------------------------------------------------------------------ */
/* Status codes                                                        */

/* X(name, value, description): the one table of status codes. */
#define VP_STATUS_TABLE(X)                                 \
  X(VP_OK, 0, "success")                                   \
  X(VP_ERR_INVALID_ARG, 1, "invalid argument")             \
  X(VP_ERR_IO, 2, "input/output error")                    \
  X(VP_ERR_FORMAT, 3, "malformed or truncated file")       \
  X(VP_ERR_UNSUPPORTED, 4, "unsupported feature")          \
  X(VP_ERR_NOMEM, 5, "out of memory")                      \
  X(VP_ERR_OVERFLOW, 6, "size overflow")                   \
  X(VP_ERR_OUT_OF_BOUNDS, 7, "region out of bounds")       \
  X(VP_ERR_CUDA, 8, "CUDA error")                          \
  X(VP_ERR_NO_DEVICE, 9, "no CUDA device or CUDA backend") \
  X(VP_ERR_INTERNAL, 10, "internal error")

typedef enum vp_status {
#define VP_X_ENUM(name, value, desc) name = value,
  VP_STATUS_TABLE(VP_X_ENUM)
#undef VP_X_ENUM
} vp_status;

/* "VP_ERR_IO" for VP_ERR_IO; "VP_UNKNOWN_STATUS" for values not in the table. */
VP_API const char *vp_status_name(vp_status s);
/* The table's one-line description. */
VP_API const char *vp_status_desc(vp_status s);
/* The calling thread's last error message ("" when none). Valid until the
 * thread's next failing call. */
VP_API const char *vp_last_error(void);
VP_API void vp_clear_error(void);

/* ------------------------------------------------------------------ */
/* Data types                                                          */

typedef enum vp_dtype {
  VP_U8 = 0,
  VP_I8,
  VP_U16,
  VP_I16,
  VP_U32,
  VP_I32,
  VP_I64,
  VP_F16,
  VP_F32,
  VP_F64,
  VP_DTYPE_COUNT
} vp_dtype;

/* Bytes per element; 0 for an invalid dtype. */
VP_API size_t vp_dtype_size(vp_dtype t);
/* NumPy's name: "uint8", "int16", "float32", ...; NULL when invalid. */
VP_API const char *vp_dtype_name(vp_dtype t);
/* Accepts NumPy names ("int16") and short names ("i16", "f32"). */
VP_API vp_status vp_dtype_from_name(const char *name, vp_dtype *out);

/* ------------------------------------------------------------------ */
/* Memory and devices                                                  */

typedef enum vp_memkind {
  VP_MEM_HOST = 0,   /* pageable host memory */
  VP_MEM_PINNED = 1, /* page-locked host memory (CUDA host allocation) */
  VP_MEM_DEVICE = 2  /* GPU memory (stream-ordered pool) */
} vp_memkind;

/* Number of usable CUDA devices; 0 without the CUDA backend or a GPU. */
VP_API int vp_cuda_device_count(void);

/* ------------------------------------------------------------------ */
/* Tensors                                                             */

#define VP_MAX_NDIM 5

/* One sample: dtype, shape, memory, data, spacing and affine. Reference
 * counted; the data stays alive while any reference (a DLPack capsule
 * included) is held. */
typedef struct vp_tensor vp_tensor;

/* A new, uninitialised C-contiguous tensor. The trailing min(ndim, 3) axes
 * are spatial; spacing starts at 1 and the affine at the identity. */
VP_API vp_status vp_tensor_create(vp_dtype dtype, int ndim, const int64_t *shape, vp_memkind mem,
                                  int device, vp_tensor **out);
/* Wraps memory the library does not own; `deleter(ctx)` runs when the last
 * reference goes (deleter may be NULL). On failure deleter is not called. */
VP_API vp_status vp_tensor_wrap(vp_dtype dtype, int ndim, const int64_t *shape, void *data,
                                vp_memkind mem, int device, void (*deleter)(void *ctx), void *ctx,
                                vp_tensor **out);
VP_API void vp_tensor_retain(vp_tensor *t);
/* Drops one reference; accepts NULL. */
VP_API void vp_tensor_release(vp_tensor *t);

VP_API vp_dtype vp_tensor_dtype(const vp_tensor *t);
VP_API int vp_tensor_ndim(const vp_tensor *t);
/* Pointer to ndim extents, valid while t lives. */
VP_API const int64_t *vp_tensor_shape(const vp_tensor *t);
VP_API int64_t vp_tensor_numel(const vp_tensor *t);
VP_API size_t vp_tensor_nbytes(const vp_tensor *t);
VP_API void *vp_tensor_data(const vp_tensor *t);
VP_API vp_memkind vp_tensor_memkind(const vp_tensor *t);
VP_API int vp_tensor_device(const vp_tensor *t);

/* Number of trailing spatial axes (1..3), and their spacing in array order
 * (dz, dy, dx for 3D). */
VP_API int vp_tensor_spatial_ndim(const vp_tensor *t);
VP_API void vp_tensor_spacing(const vp_tensor *t, double *spacing /* [3] */);
VP_API vp_status vp_tensor_set_spacing(vp_tensor *t, int n, const double *spacing);
/* 4x4 row-major voxel (i, j, k) -> world (x, y, z) affine, NIfTI's axes. */
VP_API void vp_tensor_affine(const vp_tensor *t, double *affine /* [16] */);
VP_API vp_status vp_tensor_set_affine(vp_tensor *t, const double *affine);

/* A new tensor in `mem` on `device` holding a copy of t's data and metadata
 * (synchronous). */
VP_API vp_status vp_tensor_copy_to(const vp_tensor *t, vp_memkind mem, int device, vp_tensor **out);

/* Minimum, maximum and mean over all elements of a host tensor (NaNs
 * skipped); an empty tensor gives NaN for all three. */
VP_API vp_status vp_tensor_stats(const vp_tensor *t, double *min, double *max, double *mean);

/* A new host tensor of `dtype` with t's values: floats to integers round to
 * nearest (ties to even) and saturate, NaN becomes 0; metadata is kept. */
VP_API vp_status vp_tensor_astype(const vp_tensor *t, vp_dtype dtype, vp_tensor **out);

/* One [n, ...] tensor viewing n samples of equal dtype, shape and memory
 * that lie back to back in memory (as a pipeline's outputs of one batch do
 * when each sample's size is a multiple of 256 bytes), without a copy. It
 * holds a reference on every sample. VP_ERR_INVALID_ARG when they are not
 * back to back or differ. */
VP_API vp_status vp_tensor_stack_view(vp_tensor *const *samples, int64_t n, vp_tensor **out);

/* DLPack export, without copy: *out is a DLManagedTensor* (dlpack.h) whose
 * deleter drops the reference it holds on t. */
VP_API vp_status vp_tensor_to_dlpack(vp_tensor *t, void **out);
/* DLPack import, without copy: takes ownership of a DLManagedTensor* (its
 * deleter runs when the tensor is released), also on failure. The tensor
 * must be compact and row-major. */
VP_API vp_status vp_tensor_from_dlpack(void *managed, vp_tensor **out);

/* ------------------------------------------------------------------ */
/* Reading and writing volumes                                         */

typedef enum vp_oob_policy {
  VP_OOB_ERROR = 0, /* a region outside the volume is an error */
  VP_OOB_PAD = 1,   /* out-of-bounds voxels take the fill value */
  VP_OOB_TRIM = 2   /* the region is clipped to the volume */
} vp_oob_policy;

typedef struct vp_load_opts {
  /* NIfTI: keep the stored values, ignoring scl_slope/scl_inter. */
  int raw;
  /* Region of interest in array order; roi_ndim 0 = the whole volume.
   * roi_ndim may be less than the array's ndim: it then names the trailing
   * (spatial) axes and leading axes are read whole. */
  int roi_ndim;
  int64_t roi_start[VP_MAX_NDIM];
  int64_t roi_shape[VP_MAX_NDIM];
  vp_oob_policy oob;
  double fill;
  /* 1: map the file instead of reading it with pread (uncompressed only). */
  int use_mmap;
} vp_load_opts;

/* Defaults: scaled, whole volume, pread. */
VP_API void vp_load_opts_init(vp_load_opts *o);

/* Loads .npy, .nii, .nii.gz, .hdr(.gz)/.img(.gz) by file name into host
 * memory. opts may be NULL. */
VP_API vp_status vp_load(const char *path, const vp_load_opts *opts, vp_tensor **out);

typedef struct vp_save_opts {
  int compress_level; /* gzip level 1..12 for .nii.gz (libdeflate); 0 = 6 */
  int threads;        /* gzip threads; 0 = all cores */
} vp_save_opts;

VP_API void vp_save_opts_init(vp_save_opts *o);
/* Saves a host tensor as .npy, .nii or .nii.gz (by file name), writing a
 * temporary file and renaming it, so a failure leaves no partial file. */
VP_API vp_status vp_save(const char *path, const vp_tensor *t, const vp_save_opts *opts);

/* Header facts without reading the data (for `voxpipe info`). */
typedef struct vp_file_info {
  char format[16]; /* "npy", "nifti1", "nifti2" */
  vp_dtype dtype;  /* dtype a load returns (after scaling) */
  vp_dtype stored_dtype;
  int ndim;
  int64_t shape[VP_MAX_NDIM];
  double spacing[3];
  double affine[16];
  double scl_slope, scl_inter; /* 1, 0 when unscaled */
  int big_endian;
  int fortran_order;
  int compressed;
} vp_file_info;

VP_API vp_status vp_file_info_read(const char *path, vp_file_info *out);

/* Bytes read from files by this thread since the last reset (counts both
 * pread and, for mapped files, bytes copied from the mapping). */
VP_API uint64_t vp_io_bytes_read(void);
VP_API void vp_io_reset_bytes_read(void);

/* ------------------------------------------------------------------ */
/* Operators (the registry; docs/ops.md lists them)                    */

VP_API int vp_ops_count(void);
/* Name of operator i (0 <= i < vp_ops_count()), NULL when out of range. */
VP_API const char *vp_ops_name(int i);
/* A JSON description of an operator: {"name", "doc", "inputs": [...],
 * "outputs": [...], "random": bool, "gpu": bool, "args": [{"name", "type",
 * "default" (absent when required), "min", "max", "max_len", "choices",
 * "per_sample", "doc"}]}. *out is malloc'd: free it with vp_free. */
VP_API vp_status vp_ops_describe(const char *name, char **out);
VP_API void vp_free(void *p);
/* Runs an operator eagerly on `batch` samples. inputs[k * batch + i] is
 * input k of sample i: all in host memory (runs on the CPU) or all on one
 * GPU (runs there). args_json: a JSON object of arguments ("{\"axes\": [0,
 * 2]}"), NULL for the defaults; a list of `batch` values, one per sample,
 * may be given as {"per_sample": [...]} for arguments that allow it. seed
 * keys random operators (iteration 0, samples 0..batch-1).
 * outputs[k * batch + i] receive new tensors (released by the caller). */
VP_API vp_status vp_ops_call(const char *name, int64_t batch, vp_tensor *const *inputs,
                             const char *args_json, uint64_t seed, vp_tensor **outputs);
/* Orders this thread's next eager calls on GPU `device` after the work
 * queued so far on `cuda_stream` (a cudaStream_t; NULL: the legacy default
 * stream), with an event and no host wait: the consumer's half of DLPack's
 * stream handshake, for inputs another library (torch) may still be
 * writing. voxpipe.fn does it for torch CUDA inputs. */
VP_API vp_status vp_eager_wait(int device, void *cuda_stream);

/* An argument given as values instead of JSON text, for callers that hold
 * numbers already (bindings): the same checks and messages as args_json,
 * without printing and parsing every number. */
#define VP_ARG_ITEM_LIST 1u    /* the value (each sample's) is a list, not one number */
#define VP_ARG_ITEM_INTEGER 2u /* every number was written as an integer */
#define VP_ARG_ITEM_BOOL 4u    /* the value is true (1) or false (0) */
typedef struct vp_arg_item {
  const char *name;     /* the argument */
  const char *string;   /* enum and dtype arguments: the name given; NULL otherwise */
  const double *values; /* the numbers, sample after sample when per sample */
  const int32_t *lens;  /* per sample: `batch` counts, sample i's values; NULL: one value */
  int32_t len;          /* not per sample: the count of values */
  uint32_t flags;       /* VP_ARG_ITEM_* */
} vp_arg_item;
/* vp_ops_call with n argument items (absent arguments take their defaults). */
VP_API vp_status vp_ops_call_items(const char *name, int64_t batch, vp_tensor *const *inputs,
                                   const vp_arg_item *args, int n, uint64_t seed,
                                   vp_tensor **outputs);
/* Runs n operators of one input and one output one after the other on a
 * batch, with the bytes of n vp_ops_call (op k drawing with seed + k).
 * Consecutive pointwise operators (cast, clamp, brightness, contrast, gamma,
 * gaussian_noise, normalize, ...) run as ONE pass over the voxels (plus a
 * read-only pass for each statistic a stage needs), without intermediate
 * tensors; other operators (gaussian_blur, resize...) run between such
 * passes, and one that p leaves out for every sample of the batch is
 * skipped, so the passes around it fuse. args_json may be NULL (defaults)
 * or hold NULLs; outputs receives `batch` tensors. */
VP_API vp_status vp_ops_call_chain(int n, const char *const *names, const char *const *args_json,
                                   int64_t batch, vp_tensor *const *inputs, uint64_t seed,
                                   vp_tensor **outputs);
/* vp_ops_call_chain with argument items: op k has nitems[k] of them at
 * items[k] (NULL when nitems[k] is 0). */
VP_API vp_status vp_ops_call_chain_items(int n, const char *const *names,
                                         const vp_arg_item *const *items, const int *nitems,
                                         int64_t batch, vp_tensor *const *inputs, uint64_t seed,
                                         vp_tensor **outputs);

/* ------------------------------------------------------------------ */
/* Datasets: which files make a case, in which order, for which shard  */

typedef struct vp_dataset vp_dataset;

typedef struct vp_dataset_opts {
  /* One source of cases (exactly one of the three):
   * - dataset_json: an MSD / nnU-Net dataset.json; its "training" list (or
   *   `split`) gives image (one 4-D file, or a list of per-modality files
   *   stacked as channels) and label paths, relative to the json's folder;
   * - root + image_glob (+ label_glob): files matched in root, sorted by
   *   name, image i paired with label i; several image globs separated by
   *   ';' are modalities stacked as channels ("*_t1.nii.gz;*_flair.nii.gz");
   * - file_list: a text file, one case per line: image paths separated by
   *   ';' then, after a tab or ' | ', the label path (optional). */
  const char *dataset_json;
  const char *split; /* dataset.json key; NULL = "training" */
  const char *root;
  const char *image_glob;
  const char *label_glob;
  const char *file_list;
  uint64_t seed;
  int shuffle;        /* a new permutation of all cases every epoch */
  int shard_id;       /* DALI semantics: shard k of n holds cases */
  int num_shards;     /*   [floor(k*S/n), floor((k+1)*S/n)) of the epoch's order */
  int stick_to_shard; /* 0: the shard moves to (shard_id + epoch) % n each epoch */
  int pad_last_batch; /* pad every shard to the largest shard's size rounded up to
                         batch_size, repeating its last case */
  int batch_size;     /* for pad_last_batch */
} vp_dataset_opts;

VP_API void vp_dataset_opts_init(vp_dataset_opts *o);
/* Lists the cases and checks that the files exist (no data is read). */
VP_API vp_status vp_dataset_open(const vp_dataset_opts *o, vp_dataset **out);
VP_API void vp_dataset_destroy(vp_dataset *d);
/* Number of cases in the dataset, and in this shard's epoch (with padding). */
VP_API int64_t vp_dataset_size(const vp_dataset *d);
VP_API int64_t vp_dataset_epoch_size(const vp_dataset *d);
/* Number of image files per case (modalities), and file paths of a case. */
VP_API int vp_dataset_num_modalities(const vp_dataset *d);
VP_API const char *vp_dataset_image_path(const vp_dataset *d, int64_t case_index, int modality);
/* NULL when the dataset has no labels. */
VP_API const char *vp_dataset_label_path(const vp_dataset *d, int64_t case_index);
/* The next case of this shard's epoch order; *epoch_end is set to 1 when
 * it was the epoch's last (the following call starts the next epoch). */
VP_API vp_status vp_dataset_next(vp_dataset *d, int64_t *case_index, int *epoch_end);
/* Position (epoch, index within the shard's epoch), to resume mid-epoch. */
VP_API void vp_dataset_position(const vp_dataset *d, int64_t *epoch, int64_t *index);
VP_API vp_status vp_dataset_seek(vp_dataset *d, int64_t epoch, int64_t index);
/* Loads a case: image [C, D, H, W] (modalities stacked, or a 4-D file's
 * channels; a 3-D image gets C = 1) and label [D, H, W] (NULL out when the
 * dataset has no labels). opts (may be NULL) gives a region of interest. */
VP_API vp_status vp_dataset_load(vp_dataset *d, int64_t case_index, const vp_load_opts *opts,
                                 vp_tensor **image, vp_tensor **label);

/* ------------------------------------------------------------------ */
/* Pipelines: a graph of operator nodes run ahead of the consumer      */

typedef struct vp_pipeline vp_pipeline;

typedef struct vp_pipeline_opts {
  int batch_size;           /* samples per batch (>= 1) */
  int num_threads;          /* CPU threads for reading, decoding, CPU ops; 0 = cores */
  int device;               /* GPU for "gpu" nodes; -1 = CPU only */
  uint64_t seed;            /* every random value derives from it */
  int prefetch_queue_depth; /* batches prepared ahead; 0 = 2 */
  int skip_bad_samples;     /* 1: a sample that fails to load is replaced by
                               the next case, with a warning on stderr */
  int no_fusion;            /* 1: run consecutive pointwise nodes one by one
                               (by default they run fused, in one pass) */
} vp_pipeline_opts;

VP_API void vp_pipeline_opts_init(vp_pipeline_opts *o);
VP_API vp_status vp_pipeline_create(const vp_pipeline_opts *o, vp_pipeline **out);
/* Stops the workers (also mid-run) and frees everything; accepts NULL.
 * Outputs already handed out stay valid. */
VP_API void vp_pipeline_destroy(vp_pipeline *p);

/* The reader node: cases from a dataset, outputs `image` ([C, D, H, W])
 * and, when label_name is not NULL, `label` ([D, H, W]). roi (may be NULL)
 * reads a region of every case. The pipeline owns a copy of the options. */
VP_API vp_status vp_pipeline_add_reader(vp_pipeline *p, const vp_dataset_opts *dataset,
                                        const vp_load_opts *roi, const char *image_name,
                                        const char *label_name);
/* Makes the reader read a random window of `shape` (the 3 spatial extents)
 * of every case instead of the whole case: the window's position is drawn
 * per sample (uniform over the positions where it fits; a case smaller than
 * the window is padded with 0 and the window placed at random), the same for
 * image and label, and only the window's bytes are read from uncompressed
 * files. The draw is keyed by (seed, iteration, sample in the batch). Call
 * after vp_pipeline_add_reader; replaces a fixed roi. */
VP_API vp_status vp_pipeline_set_reader_crop(vp_pipeline *p, int ndim, const int64_t *shape);
/* Keeps decoded cases (whole image and label) up to max_bytes, least
 * recently used out first, so later epochs skip reading and decoding; 0
 * turns it off. `where`: VP_MEM_HOST (random_crop / roi windows are then
 * copied out of memory) or VP_MEM_DEVICE (GPU memory on the pipeline's
 * device: the reader's outputs are then GPU tensors, read by "gpu" nodes;
 * cut windows with a gpu slice node, e.g. rel_anchor from a uniform node:
 * a whole dataset cached on the GPU, as NVIDIA's MLPerf submission does).
 * Call after vp_pipeline_add_reader, before build. */
VP_API vp_status vp_pipeline_set_reader_cache(vp_pipeline *p, size_t max_bytes, vp_memkind where);
/* The cache's use: bytes held, cases held, hits and misses so far (all 0
 * without a cache). */
VP_API vp_status vp_pipeline_cache_stats(vp_pipeline *p, size_t *bytes, int64_t *entries,
                                         uint64_t *hits, uint64_t *misses);
/* An operator node. inputs: names of earlier outputs; args_json: a JSON
 * object of arguments where {"node": "name"} takes an argument's per-sample
 * values from another node's output; device "cpu" or "gpu" (inputs move to
 * the GPU automatically). outputs: names for the node's outputs. */
VP_API vp_status vp_pipeline_add_node(vp_pipeline *p, const char *op, const char *device,
                                      int num_inputs, const char *const *inputs,
                                      const char *args_json, int num_outputs,
                                      const char *const *outputs);
VP_API vp_status vp_pipeline_set_outputs(vp_pipeline *p, int n, const char *const *names);
/* Checks the graph and starts the workers. */
VP_API vp_status vp_pipeline_build(vp_pipeline *p);
VP_API int vp_pipeline_num_outputs(const vp_pipeline *p);
VP_API int vp_pipeline_batch_size(const vp_pipeline *p);
/* Samples per epoch of the reader's shard (with padding). */
VP_API int64_t vp_pipeline_epoch_size(const vp_pipeline *p);
/* Blocks until the next batch: outputs[k * batch_size + i] receives output
 * k of sample i (new references, released by the caller; GPU outputs are
 * complete when this returns). *epoch_end is 1 when the batch holds the
 * epoch's last sample. An error anywhere (a bad file, a failed kernel) is
 * returned here, naming the file or node. */
VP_API vp_status vp_pipeline_run(vp_pipeline *p, vp_tensor **outputs, int *epoch_end);
/* Resume support: the reader position and RNG iteration of the next batch
 * to be returned (batches already prefetched are not counted), and a seek
 * that discards prefetched batches and continues from a saved state. */
VP_API vp_status vp_pipeline_get_state(vp_pipeline *p, int64_t *epoch, int64_t *index,
                                       int64_t *iteration);
VP_API vp_status vp_pipeline_set_state(vp_pipeline *p, int64_t epoch, int64_t index,
                                       int64_t iteration);
/* Builds a pipeline from a pipeline file's JSON text (see docs/pipelines.md);
 * `name` is used in messages ("mlperf.json: nodes[3].args.p: ..."). The
 * keys of overrides_json (a JSON object, may be NULL), e.g. {"device": -1,
 * "num_threads": 4, "batch_size": 2}, replace the file's "pipeline"
 * options. The result is built (workers started). */
VP_API vp_status vp_pipeline_from_json(const char *json, const char *name,
                                       const char *overrides_json, vp_pipeline **out);

/* ------------------------------------------------------------------ */
/* Synthetic datasets                                                  */

typedef enum vp_synth_kind {
  VP_SYNTH_BRATS = 0, /* 4 MRI modalities + tumour labels {0,1,2,4} */
  VP_SYNTH_KITS = 1   /* 1 CT channel in HU + labels {0,1,2} */
} vp_synth_kind;

typedef struct vp_synth_opts {
  vp_synth_kind kind;
  uint64_t seed;
  int num_cases;
  /* Case size (D, H, W); zeros = the kind's default (brats 155x240x240;
   * kits: drawn per case in KiTS19's range, scaled by `scale`). */
  int64_t shape[3];
  double scale; /* kits: multiplies the drawn shape; 0 = 1 */
  /* 0 = .nii.gz (imagesTr/, labelsTr/); 1 = .npy as MLPerf/nnU-Net
   * preprocessing leaves it: case_XXXXX_x.npy float32 (1|4, D, H, W),
   * normalised, and case_XXXXX_y.npy uint8 (1, D, H, W). */
  int format;
  int threads; /* 0 = all cores */
} vp_synth_opts;

VP_API void vp_synth_opts_init(vp_synth_opts *o);
/* One case, deterministic in (seed, kind, case index, shape), whatever the
 * thread count: image [C, D, H, W] int16 (brats: 4 channels; kits: 1
 * channel in HU) and label [D, H, W] uint8, with spacing and affine. */
VP_API vp_status vp_synth_case(const vp_synth_opts *o, int case_index, vp_tensor **image,
                               vp_tensor **label);
/* Writes num_cases cases and a dataset.json (MSD style) into dir.
 * progress(done, total, ctx) is called after each case (may be NULL). */
VP_API vp_status vp_synth_dataset(const vp_synth_opts *o, const char *dir,
                                  void (*progress)(int done, int total, void *ctx), void *ctx);

#ifdef __cplusplus
}
#endif
#endif /* VOXPIPE_H */
