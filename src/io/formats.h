/* The file formats behind vp_load / vp_save / vp_file_info_read. */
#ifndef VP_IO_FORMATS_H
#define VP_IO_FORMATS_H

#include <stddef.h>

#include "io/source.h"
#include "voxpipe.h"

/* NumPy .npy (src/io/npy.c). */
typedef struct vp_npy_header {
  int major, minor;
  vp_dtype dtype;
  int big_endian;
  int fortran_order;
  int ndim;
  int64_t shape[VP_MAX_NDIM];
  uint64_t data_offset; /* bytes before the array data */
  uint64_t data_bytes;
} vp_npy_header;

/* Parses and validates a header held in buf (the first n bytes of a file;
 * n may exceed the header). Checks that the data fits in file_size bytes. */
vp_status vp_npy_parse_header(const void *buf, size_t n, uint64_t file_size, const char *name,
                              vp_npy_header *out);
vp_status vp_npy_load_source(vp_source *s, const vp_load_opts *opts, vp_tensor **out);
vp_status vp_npy_info(vp_source *s, vp_file_info *out);
vp_status vp_npy_save(const char *path, const vp_tensor *t);

/* NIfTI-1/2 (src/io/nifti*.c). `path` is the .nii/.nii.gz/.hdr(.gz) file;
 * a .hdr's .img(.gz) is found beside it. The source variants read a
 * single-file .nii or .nii.gz held in s (used by the fuzzer). */
vp_status vp_nifti_load(const char *path, const vp_load_opts *opts, vp_tensor **out);
vp_status vp_nifti_load_source(vp_source *s, const vp_load_opts *opts, vp_tensor **out);
vp_status vp_nifti_info(const char *path, vp_file_info *out);
vp_status vp_nifti_save(const char *path, const vp_tensor *t, const vp_save_opts *opts);

#endif
