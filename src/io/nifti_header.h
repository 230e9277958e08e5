/* NIfTI-1/2 headers inside the library: parsing and validation (with
 * nibabel's fixes), the affine, the scaling rules, and building a header
 * for the writer. Shared by nifti.c (load/info) and nifti_write.c. */
#ifndef VP_IO_NIFTI_HEADER_H
#define VP_IO_NIFTI_HEADER_H

#include <stddef.h>
#include <stdint.h>

#include "voxpipe.h"

#define VP_NIFTI1_HDR_BYTES 348
#define VP_NIFTI2_HDR_BYTES 540
/* Header plus the 4-byte extension flag of the larger version: enough to
 * parse either. */
#define VP_NIFTI_PEEK_BYTES 544

typedef struct vp_nifti_header {
  int version;    /* 1 or 2 */
  int swapped;    /* the file's byte order differs from the host's */
  int big_endian; /* the file's byte order */
  int single;     /* magic n+1 / n+2 (data in the same file) */
  int datatype;   /* NIfTI code */
  vp_dtype stored;
  int64_t dim[8];
  double pixdim[8];     /* after nibabel's fixes: |pixdim[1..3]|, zeros -> 1, qfac in {-1, 1} */
  uint64_t data_offset; /* where the data starts in the data file */
  double scl_slope, scl_inter; /* as stored */
  int scaled;                  /* scaling applies (slope valid and (slope, inter) != (1, 0)) */
  double slope, inter;         /* what a load applies; 1, 0 when unscaled */
  int qform_code, sform_code;  /* unknown codes already set to 0 */
  int has_extensions;          /* first byte of the extension flag (0 when absent) */
  /* Derived, in array order. */
  int ndim;
  int64_t shape[VP_MAX_NDIM];
  int spatial_ndim;
  double spacing[3];
  uint64_t data_bytes;
  double affine[16];
} vp_nifti_header;

/* Parses and validates the first n bytes of a header file (n may exceed
 * the header; fewer bytes than the version's header is "truncated").
 * `single_file`: the data follows the header in the same file (.nii), so
 * vox_offset must lie past the header. Computes shape, spacing, affine,
 * data size and the scaling to apply. Messages name `name`. */
vp_status vp_nifti_parse_header(const void *buf, size_t n, int single_file, const char *name,
                                vp_nifti_header *h);

/* The dtype a load returns: stored when unscaled or raw, else float64 (what
 * numpy's promotion in nibabel's scaling gives for every stored type). */
vp_dtype vp_nifti_output_dtype(const vp_nifti_header *h, int raw);

/* out[i] = in[i] * slope + inter, converted to float64, rounding exactly as
 * numpy does (multiply, round, add, round; steps skipped as nibabel skips
 * them). */
void vp_nifti_scale(const vp_nifti_header *h, const void *in, vp_dtype in_dtype, double *out,
                    size_t n);

/* Header facts for vp_file_info_read. */
void vp_nifti_fill_info(const vp_nifti_header *h, int compressed, vp_file_info *out);

/* Builds the header (and zero extension flag) for a tensor; *len is 352
 * (NIfTI-1) or 544 (NIfTI-2: when an extent exceeds 32767). *written is the
 * dtype of the data that must follow (float16 is written as float32).
 * buf holds VP_NIFTI_PEEK_BYTES. */
vp_status vp_nifti_build_header(const vp_tensor *t, const char *name, unsigned char *buf,
                                size_t *len, vp_dtype *written);

/* NIfTI's name for a datatype code ("RGB24"), or "unknown". */
const char *vp_nifti_datatype_name(int code);

#endif
