/* The resampling engine: every spatial operator (warp_affine, resize,
 * rotate, zoom, elastic, random_spatial) is a front end that builds, per
 * sample, a matrix M and optionally a displacement field u, and lets this
 * engine compute
 *
 *     out[c, o] = interpolate(in[c], M · (o + u(o)))        o = (d, h, w)
 *
 * in index coordinates of array order (integer = voxel centre), as
 * scipy.ndimage.affine_transform / map_coordinates do. No operator carries
 * its own interpolation code.
 *
 * The CPU body (src/ops/resample.c) is the reference; the GPU body
 * (src/cuda/resample.cu) serves a whole batch with one launch. Both read the
 * same per-sample descriptors and share the per-voxel arithmetic through
 * src/ops/resample_kernel.h (VP_HD inline functions), so they agree:
 * nearest bit for bit, linear within float rounding. 2-D data is 3-D data
 * with D = 1 (its M maps d to 0). Label mode (VP_INTERP_LABEL) is exact
 * on both: its weights are linear's, compared rather than blended. */
#ifndef VP_OPS_RESAMPLE_H
#define VP_OPS_RESAMPLE_H

#include <stdint.h>

#include "core/threadpool.h"
#include "voxpipe.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum vp_interp {
  VP_INTERP_NEAREST = 0, /* scipy order 0: the voxel at floor(x + 0.5) per axis */
  VP_INTERP_LINEAR = 1,  /* scipy order 1: trilinear */
  /* scipy order 3 with prefilter=True: the input is turned into cubic
   * B-spline coefficients (src/ops/bspline.h: padding and the recursive
   * prefilter), which are then interpolated with the 4 x 4 x 4 B-spline
   * weights. */
  VP_INTERP_CUBIC = 2,
  /* Label-preserving smooth interpolation of a label map: output voxel o
   * takes the 8 neighbours (4 in 2-D) and trilinear weights that linear
   * would use, under the same border rule (a constant border's outside
   * neighbours carry the label `fill`), sums the weights per distinct label
   * value and outputs the label with the largest sum; a tie goes to the
   * smaller label. This is argmax over classes of the linearly
   * interpolated one-hot maps (MONAI / nnU-Net's one-hot + linear +
   * argmax), computed in one pass without one-hot volumes, so the output
   * holds only input labels (and fill). Integer inputs of at most 32 bits
   * only; fill must then be an integer (|fill| <= 2^53). */
  VP_INTERP_LABEL = 3,
  /* Internal: cubic's second half, on a float32 coefficient volume laid
   * out by src/ops/bspline.h (the drivers run it after the prefilter). */
  VP_INTERP_CUBIC_COEF = 4
} vp_interp;

/* The front ends' `interp` enum, "nearest|linear|cubic|label", is
 * vp_interp's order: choice k is (vp_interp)k. */
#define VP_RESAMPLE_INTERP_CHOICES "nearest|linear|cubic|label"

typedef enum vp_border {
  VP_BORDER_CONSTANT = 0, /* scipy 'grid-constant': outside voxels are `fill` and take part */
  VP_BORDER_EDGE = 1,     /* scipy 'nearest': clamp to the edge voxel */
  VP_BORDER_REFLECT = 2   /* scipy 'reflect': half-sample symmetric (d c b a | a b c d | d c) */
} vp_border;

/* A smooth displacement field from a coarse control grid over the output.
 * Control point (i, j, k) sits at output coordinate (i·sd, j·sh, k·sw),
 * s = spacing in output voxels per axis, and holds a displacement
 * (ud, uh, uw) in output voxels. The field is the uniform cubic B-spline
 * of the control points (an approximation, not an interpolation: smooth,
 * C2): with t = o / s per axis and B the cubic B-spline basis,
 *   u(o) = sum over i in floor(t)-1 .. floor(t)+2 of
 *          B(t_d - i) B(t_h - j) B(t_w - k) · node[clamp(i), clamp(j), clamp(k)]
 * where clamp limits an index to the grid. A test reproduces it in NumPy and
 * feeds map_coordinates the same coordinates. */
typedef struct vp_disp_grid {
  const float *nodes; /* [gd][gh][gw][3], host memory for the CPU, device for the GPU */
  int64_t grid[3];    /* control points per axis, >= 1 */
  double spacing[3];  /* output voxels between control points, > 0 */
} vp_disp_grid;

/* One sample's job. Channels: in and out have C channels (leading axis). */
typedef struct vp_resample_desc {
  const void *in;
  void *out;
  int64_t channels;
  int64_t in_shape[3];  /* D, H, W (D = 1 for 2-D) */
  int64_t out_shape[3]; /* D, H, W */
  double M[12];         /* 3x4 row-major: input = M · (o + u(o), 1) */
  vp_disp_grid disp;    /* nodes NULL: no displacement */
  double fill;          /* VP_BORDER_CONSTANT's value */
  /* Antialiasing (linear only, resize's downscaling): per axis the width s
   * of the filter in input voxels (0 = plain linear). Output voxel o then
   * averages the input voxels i around x = M·o with the triangle weights
   * max(0, 1 - |i - x| / s) (aa_area: the box weights, the overlap of
   * [i - 1/2, i + 1/2] with [x - s/2, x + s/2]); voxels outside the input
   * are left out and the weights renormalised (torch's and PIL's
   * antialiased resize). With s = 1 this is linear under the edge rule. */
  double aa[3];
  int aa_area;
} vp_resample_desc;

/* CPU: all samples, on the pool (may be NULL). in/out dtypes are any of
 * voxpipe's; integer outputs round to nearest and saturate. */
vp_status vp_resample_cpu(const vp_resample_desc *d, int64_t n, vp_dtype in, vp_dtype out,
                          vp_interp interp, vp_border border, vp_threadpool *pool);

/* The checks vp_resample_cpu and the GPU launcher make (dtypes, enums,
 * shapes, finite matrices, displacement grids); `who` prefixes messages.
 * Label rejects non-integer (and 64-bit) input dtypes with
 * VP_ERR_UNSUPPORTED; cubic's coefficient stage takes float32 coefficients
 * under an edge or reflect rule only. */
vp_status vp_resample_check(const vp_resample_desc *d, int64_t n, vp_dtype in, vp_dtype out,
                            vp_interp interp, vp_border border, const char *who);

/* The output's affine (NIfTI voxel (i, j, k) -> world) for an output ->
 * input index map M (the engine's 3x4, array order) on a tensor with sn
 * spatial axes: in_affine composed with M, axes converted. */
void vp_resample_affine(const double in_affine[16], int sn, const double M[12],
                        double out_affine[16]);
/* Sets out's affine to in's composed with M (sn spatial axes) and out's
 * spacing to the new affine's column lengths (kept where a column
 * vanishes): voxel centres keep their world positions. */
void vp_resample_place(const vp_tensor *in, vp_tensor *out, int sn, const double M[12]);

/* Operators' common body (warp_affine, resize, ...): fills each sample's
 * descriptor from input 0 and output 0 (channels = the leading
 * non-spatial axes merged, missing spatial axes of extent 1), lets
 * build() set M, fill and the displacement, and runs the engine on the
 * CPU (c->pool) or the GPU (c->stream; pointers then device ones). */
struct vp_op_call;
typedef vp_status (*vp_resample_build_fn)(const struct vp_op_call *c, int64_t i,
                                          vp_resample_desc *d);
vp_status vp_resample_op_run(const struct vp_op_call *c, const char *name, int gpu,
                             vp_resample_build_fn build, vp_interp interp, vp_border border);
/* Front ends that are a map and an output shape per sample (warp_affine,
 * rotate): geometry() gives sample i's spatial axis count, its output ->
 * input map M and its output's spatial shape sp; these three are then the
 * operator's infer, meta (the affine composes with M) and build. */
struct vp_out_spec;
typedef vp_status (*vp_resample_geometry_fn)(const struct vp_op_call *c, int64_t i, int *sn,
                                             double M[12], int64_t sp[3]);
vp_status vp_resample_geom_infer(const struct vp_op_call *c, int64_t i, vp_resample_geometry_fn g,
                                 int dtype_choice, struct vp_out_spec *out);
vp_status vp_resample_geom_meta(const struct vp_op_call *c, int64_t i, vp_resample_geometry_fn g);
vp_status vp_resample_geom_build(const struct vp_op_call *c, int64_t i, vp_resample_geometry_fn g,
                                 double fill, vp_resample_desc *d);
/* Cubic on the CPU: prefilters each sample into a scratch coefficient
 * volume and interpolates it (called by vp_resample_cpu). */
vp_status vp_resample_cubic_cpu(const vp_resample_desc *d, int64_t n, vp_dtype in, vp_dtype out,
                                vp_border border, vp_threadpool *pool);
/* The descriptor of the coefficient stage: s with its input replaced by
 * the coefficient volume `coef` (float32, laid out by bspline.h). */
void vp_resample_cubic_desc(const vp_resample_desc *s, vp_border border, const float *coef,
                            vp_resample_desc *out);

/* Whether label mode accepts input dtype t (integers of at most 32 bits). */
int vp_resample_label_dtype(vp_dtype t);
/* The tensor's spatial axes (its trailing min(spatial_ndim, ndim)). */
int vp_resample_spatial(const vp_tensor *t);

/* Argument specs the front ends share (their doc lines go to docs/ops.md). */
#define VP_RESAMPLE_BORDER_ARG                                                              \
  {                                                                                         \
    "border", VP_ARG_ENUM, "\"constant\"", 0, 0, 0, "constant|edge|reflect", 0,             \
        "outside the input: fill (scipy 'grid-constant'), the edge voxel ('nearest') or a " \
        "mirror ('reflect')"                                                                \
  }
#define VP_RESAMPLE_FILL_ARG                              \
  {                                                       \
    "fill", VP_ARG_FLOAT, "0", -1e300, 1e300, 0, NULL, 0, \
        "value outside the input with border constant"    \
  }
#define VP_RESAMPLE_DTYPE_ARG                                                         \
  {                                                                                   \
    "dtype", VP_ARG_ENUM, "\"same\"", 0, 0, 0,                                        \
        "same|uint8|int8|uint16|int16|uint32|int32|int64|float16|float32|float64", 0, \
        "output dtype (same = the input's); integers round to nearest and saturate"   \
  }

/* Front-end helpers. The output spec of a resampling op: t's shape with its
 * sn spatial extents replaced by sp (NULL keeps them), and dtype_choice
 * from an op's `dtype` enum (0 "same" = t's dtype, k = dtype k - 1). */
struct vp_out_spec;
void vp_resample_out_spec(const vp_tensor *t, int sn, const int64_t *sp, int dtype_choice,
                          struct vp_out_spec *out);
/* The half-voxel (align_corners = false) resize map from t's sn spatial
 * extents to out_sp: input = r·o + (r/2 - 1/2) with r = in/out per axis;
 * ratio (may be NULL) receives r. */
void vp_resample_resize_matrix(const vp_tensor *t, int sn, const int64_t out_sp[3], double M[12],
                               double ratio[3]);
/* A whole-voxel shift: input = o + start (pad: start = -before). */
void vp_resample_shift_matrix(int sn, const int64_t start[3], double M[12]);

#ifdef __cplusplus
}
#endif
#endif
