/* vp_load / vp_save / vp_file_info_read: pick the format by name. */
#include <string.h>

#include "core/status.h"
#include "io/formats.h"

typedef enum { FMT_UNKNOWN, FMT_NPY, FMT_NIFTI } file_format;

static int ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

static file_format format_of(const char *path) {
  if (ends_with(path, ".npy")) return FMT_NPY;
  static const char *nifti[] = {".nii", ".nii.gz", ".hdr", ".hdr.gz", ".img", ".img.gz"};
  for (size_t i = 0; i < sizeof nifti / sizeof nifti[0]; i++)
    if (ends_with(path, nifti[i])) return FMT_NIFTI;
  return FMT_UNKNOWN;
}

static vp_status unknown_format(const char *path) {
  return vp_fail(VP_ERR_UNSUPPORTED,
                 "%s: unknown file type (expected .npy, .nii, .nii.gz or .hdr/.img)", path);
}

void vp_load_opts_init(vp_load_opts *o) {
  memset(o, 0, sizeof *o);
  o->oob = VP_OOB_ERROR;
}

void vp_save_opts_init(vp_save_opts *o) {
  memset(o, 0, sizeof *o);
  o->compress_level = 6;
}

vp_status vp_load(const char *path, const vp_load_opts *opts, vp_tensor **out) {
  if (!out) return vp_fail(VP_ERR_INVALID_ARG, "load: out is NULL");
  *out = NULL;
  if (!path) return vp_fail(VP_ERR_INVALID_ARG, "load: path is NULL");
  vp_load_opts defaults;
  if (!opts) {
    vp_load_opts_init(&defaults);
    opts = &defaults;
  }
  switch (format_of(path)) {
    case FMT_NPY: {
      vp_source s;
      vp_status st = vp_source_open(&s, path);
      if (st == VP_OK) st = vp_npy_load_source(&s, opts, out);
      vp_source_close(&s);
      return st;
    }
    case FMT_NIFTI:
      return vp_nifti_load(path, opts, out);
    default:
      return unknown_format(path);
  }
}

vp_status vp_file_info_read(const char *path, vp_file_info *out) {
  if (!path || !out) return vp_fail(VP_ERR_INVALID_ARG, "info: NULL argument");
  memset(out, 0, sizeof *out);
  switch (format_of(path)) {
    case FMT_NPY: {
      vp_source s;
      vp_status st = vp_source_open(&s, path);
      if (st == VP_OK) st = vp_npy_info(&s, out);
      vp_source_close(&s);
      return st;
    }
    case FMT_NIFTI:
      return vp_nifti_info(path, out);
    default:
      return unknown_format(path);
  }
}

vp_status vp_save(const char *path, const vp_tensor *t, const vp_save_opts *opts) {
  if (!path || !t) return vp_fail(VP_ERR_INVALID_ARG, "save: NULL argument");
  if (vp_tensor_memkind(t) == VP_MEM_DEVICE)
    return vp_fail(VP_ERR_INVALID_ARG, "%s: cannot save a GPU tensor; copy it to the host first",
                   path);
  vp_save_opts defaults;
  if (!opts) {
    vp_save_opts_init(&defaults);
    opts = &defaults;
  }
  switch (format_of(path)) {
    case FMT_NPY:
      return vp_npy_save(path, t);
    case FMT_NIFTI:
      if (ends_with(path, ".hdr") || ends_with(path, ".img") || ends_with(path, ".hdr.gz") ||
          ends_with(path, ".img.gz"))
        return vp_fail(VP_ERR_UNSUPPORTED, "%s: writing .hdr/.img pairs is not supported; use .nii or .nii.gz", path);
      return vp_nifti_save(path, t, opts);
    default:
      return unknown_format(path);
  }
}
