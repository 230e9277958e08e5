/* vp_synth_case and vp_synth_dataset: synthetic BraTS / KiTS19 stand-ins,
 * written in the MSD layout (.nii.gz + dataset.json) or as the .npy pairs
 * that MLPerf / nnU-Net preprocessing leaves. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/status.h"
#include "io/outfile.h"
#include "io/synth_internal.h"

/* Cases larger than this (per channel) are refused: 1 Gi voxels. */
#define MAX_CASE_VOXELS ((int64_t)1 << 30)

void vp_synth_opts_init(vp_synth_opts *o) {
  memset(o, 0, sizeof *o);
  o->kind = VP_SYNTH_BRATS;
  o->num_cases = 1;
  o->scale = 1.0;
}

static vp_status check_opts(const vp_synth_opts *o) {
  if (!o) return vp_fail(VP_ERR_INVALID_ARG, "synth: opts is NULL");
  if (o->kind != VP_SYNTH_BRATS && o->kind != VP_SYNTH_KITS)
    return vp_fail(VP_ERR_INVALID_ARG, "synth: kind %d is neither brats (0) nor kits (1)",
                   (int)o->kind);
  if (o->scale < 0 || o->scale > 16 || o->scale != o->scale)
    return vp_fail(VP_ERR_INVALID_ARG, "synth: scale %g is outside [0, 16]", o->scale);
  int given = 0;
  for (int a = 0; a < 3; a++) given += o->shape[a] != 0;
  if (given != 0 && given != 3)
    return vp_fail(VP_ERR_INVALID_ARG, "synth: shape must give all three of D, H, W or none");
  for (int a = 0; a < 3; a++)
    if (given && (o->shape[a] < 8 || o->shape[a] > 4096))
      return vp_fail(VP_ERR_INVALID_ARG, "synth: shape[%d] = %lld is outside [8, 4096]", a,
                     (long long)o->shape[a]);
  if (o->threads < 0)
    return vp_fail(VP_ERR_INVALID_ARG, "synth: threads = %d is negative", o->threads);
  return VP_OK;
}

/* The case's (D, H, W) under the options. */
static void case_shape(const vp_synth_opts *o, int case_index, int64_t shape[3]) {
  if (o->shape[0]) {
    memcpy(shape, o->shape, 3 * sizeof *shape);
  } else if (o->kind == VP_SYNTH_KITS) {
    vp_synth_kits_shape(o->seed, case_index, o->scale, shape);
  } else {
    const int64_t def[3] = {155, 240, 240};
    double sc = o->scale > 0 ? o->scale : 1.0;
    for (int a = 0; a < 3; a++) {
      double v = floor((double)def[a] * sc + 0.5);
      shape[a] = v < 8 ? 8 : (int64_t)v;
    }
  }
}

/* Spacing in array order and a voxel -> world affine: LPS-like diag(-1,-1,1)
 * scaled by the spacing, the origin placing the volume's centre near 0. */
static vp_status set_geometry(vp_tensor *t, const int64_t shape[3], const double sp[3], double oz) {
  double aff[16] = {0};
  aff[0] = -sp[2], aff[5] = -sp[1], aff[10] = sp[0], aff[15] = 1.0;
  aff[3] = 0.5 * (double)(shape[2] - 1) * sp[2];
  aff[7] = 0.5 * (double)(shape[1] - 1) * sp[1];
  aff[11] = oz;
  VP_TRY(vp_tensor_set_spacing(t, 3, sp));
  return vp_tensor_set_affine(t, aff);
}

vp_status vp_synth_case(const vp_synth_opts *o, int case_index, vp_tensor **image,
                        vp_tensor **label) {
  if (image) *image = NULL;
  if (label) *label = NULL;
  if (!image || !label) return vp_fail(VP_ERR_INVALID_ARG, "synth: image or label is NULL");
  VP_TRY(check_opts(o));
  if (case_index < 0)
    return vp_fail(VP_ERR_INVALID_ARG, "synth: case index %d is negative", case_index);
  int64_t shape[3], numel;
  case_shape(o, case_index, shape);
  VP_TRY(vp_shape_numel(shape, 3, &numel, "synth case"));
  if (numel > MAX_CASE_VOXELS)
    return vp_fail(VP_ERR_INVALID_ARG, "synth: a case of %lld x %lld x %lld voxels is too large",
                   (long long)shape[0], (long long)shape[1], (long long)shape[2]);
  int brats = o->kind == VP_SYNTH_BRATS;
  int64_t ishape[4] = {brats ? 4 : 1, shape[0], shape[1], shape[2]};
  vp_tensor *img = NULL, *lab = NULL;
  vp_status st = vp_tensor_create(VP_I16, 4, ishape, VP_MEM_HOST, 0, &img);
  if (st == VP_OK) st = vp_tensor_create(VP_U8, 3, shape, VP_MEM_HOST, 0, &lab);
  const double sp_brats[3] = {1.0, 1.0, 1.0}, sp_kits[3] = {1.6, 1.2, 1.2};
  const double *sp = brats ? sp_brats : sp_kits;
  double oz = brats ? 0.0 : -0.5 * (double)(shape[0] - 1) * sp[0];
  if (st == VP_OK) st = set_geometry(img, shape, sp, oz);
  if (st == VP_OK) st = set_geometry(lab, shape, sp, oz);
  if (st == VP_OK) {
    int16_t *ip = vp_tensor_data(img);
    uint8_t *lp = vp_tensor_data(lab);
    st = brats ? vp_synth_brats_fill(o->seed, case_index, shape, o->threads, ip, lp)
               : vp_synth_kits_fill(o->seed, case_index, shape, o->threads, ip, lp);
  }
  if (st != VP_OK) {
    vp_tensor_release(img);
    vp_tensor_release(lab);
    return st;
  }
  *image = img;
  *label = lab;
  return VP_OK;
}

/* ---- writing a dataset ---------------------------------------------- */

static vp_status make_dir(const char *path) {
  if (mkdir(path, 0777) == 0 || errno == EEXIST) {
    struct stat s;
    if (stat(path, &s) == 0 && S_ISDIR(s.st_mode)) return VP_OK;
    return vp_fail(VP_ERR_IO, "%s: exists and is not a directory", path);
  }
  return vp_fail(VP_ERR_IO, "%s: cannot create directory: %s", path, strerror(errno));
}

/* mkdir -p: creates the missing parents too. */
static vp_status make_dirs(const char *path) {
  size_t n = strlen(path);
  char *p = malloc(n + 1);
  if (!p) return vp_fail(VP_ERR_NOMEM, "%s: path copy", path);
  memcpy(p, path, n + 1);
  vp_status st = VP_OK;
  for (size_t i = 1; i < n && st == VP_OK; i++)
    if (p[i] == '/' && p[i - 1] != '/') {
      p[i] = 0;
      st = make_dir(p);
      p[i] = '/';
    }
  if (st == VP_OK) st = make_dir(p);
  free(p);
  return st;
}

static vp_status join(char *out, size_t cap, const char *dir, const char *name) {
  int n = snprintf(out, cap, "%s/%s", dir, name);
  if (n < 0 || (size_t)n >= cap) return vp_fail(VP_ERR_INVALID_ARG, "%s: path too long", dir);
  return VP_OK;
}

/* The names of case i's two files, relative to the dataset directory. */
static void case_names(const vp_synth_opts *o, int i, char *img, char *lab, size_t cap) {
  if (o->format == 1) {
    snprintf(img, cap, "case_%05d_x.npy", i);
    snprintf(lab, cap, "case_%05d_y.npy", i);
  } else if (o->kind == VP_SYNTH_BRATS) {
    snprintf(img, cap, "imagesTr/BRATS_%03d.nii.gz", i + 1);
    snprintf(lab, cap, "labelsTr/BRATS_%03d.nii.gz", i + 1);
  } else {
    snprintf(img, cap, "imagesTr/case_%05d.nii.gz", i);
    snprintf(lab, cap, "labelsTr/case_%05d.nii.gz", i);
  }
}

/* A float32 copy normalised as MLPerf (kits) / nnU-Net (brats) do. */
static vp_status normalised(const vp_tensor *img, vp_synth_kind kind, vp_tensor **out) {
  *out = NULL;
  const int64_t *sh = vp_tensor_shape(img);
  vp_tensor *f = NULL;
  VP_TRY(vp_tensor_create(VP_F32, 4, sh, VP_MEM_HOST, 0, &f));
  double sp[3], aff[16];
  vp_tensor_spacing(img, sp);
  vp_tensor_affine(img, aff);
  vp_tensor_set_spacing(f, 3, sp);
  vp_tensor_set_affine(f, aff);
  const int16_t *src = vp_tensor_data(img);
  float *dst = vp_tensor_data(f);
  int64_t per = sh[1] * sh[2] * sh[3];
  for (int64_t c = 0; c < sh[0]; c++) {
    const int16_t *s = src + c * per;
    float *d = dst + c * per;
    if (kind == VP_SYNTH_KITS) {
      for (int64_t i = 0; i < per; i++) {
        float v = vp_clampf((float)s[i], -79.0f, 304.0f);
        d[i] = (v - 101.0f) / 76.9f;
      }
      continue;
    }
    /* z-score over the nonzero (head) voxels; background stays 0. */
    double sum = 0, sum2 = 0;
    int64_t n = 0;
    for (int64_t i = 0; i < per; i++)
      if (s[i]) sum += s[i], sum2 += (double)s[i] * s[i], n++;
    double mean = n ? sum / (double)n : 0.0;
    double var = n ? sum2 / (double)n - mean * mean : 0.0;
    double sd = sqrt(var > 0 ? var : 0) + 1e-8;
    for (int64_t i = 0; i < per; i++) d[i] = s[i] ? (float)(((double)s[i] - mean) / sd) : 0.0f;
  }
  *out = f;
  return VP_OK;
}

static void release_ctx(void *ctx) { vp_tensor_release(ctx); }

/* A view of t with a new shape over the same data (keeps t alive). */
static vp_status reshaped(vp_tensor *t, int ndim, const int64_t *shape, vp_tensor **out) {
  vp_tensor_retain(t);
  vp_status st = vp_tensor_wrap(vp_tensor_dtype(t), ndim, shape, vp_tensor_data(t), VP_MEM_HOST, 0,
                                release_ctx, t, out);
  if (st != VP_OK) {
    vp_tensor_release(t);
    return st;
  }
  double sp[3], aff[16];
  vp_tensor_spacing(t, sp);
  vp_tensor_affine(t, aff);
  VP_TRY(vp_tensor_set_spacing(*out, 3, sp));
  return vp_tensor_set_affine(*out, aff);
}

static vp_status write_case(const vp_synth_opts *o, const char *dir, int i,
                            const vp_save_opts *so) {
  char iname[64], lname[64], ipath[4096], lpath[4096];
  case_names(o, i, iname, lname, sizeof iname);
  VP_TRY(join(ipath, sizeof ipath, dir, iname));
  VP_TRY(join(lpath, sizeof lpath, dir, lname));
  vp_tensor *img = NULL, *lab = NULL, *img_out = NULL, *lab_out = NULL;
  vp_status st = vp_synth_case(o, i, &img, &lab);
  if (st == VP_OK) {
    const int64_t *sh = vp_tensor_shape(img);
    int64_t l4[4] = {1, sh[1], sh[2], sh[3]};
    if (o->format == 1) {
      st = normalised(img, o->kind, &img_out);
      if (st == VP_OK) st = reshaped(lab, 4, l4, &lab_out);
    } else {
      /* KiTS' images are 3-D NIfTI; BraTS' (MSD) are 4-D. */
      if (o->kind == VP_SYNTH_KITS)
        st = reshaped(img, 3, l4 + 1, &img_out);
      else
        vp_tensor_retain(img_out = img);
      if (st == VP_OK) vp_tensor_retain(lab_out = lab);
    }
  }
  if (st == VP_OK) st = vp_save(ipath, img_out, so);
  if (st == VP_OK) st = vp_save(lpath, lab_out, so);
  vp_tensor_release(img_out);
  vp_tensor_release(lab_out);
  vp_tensor_release(img);
  vp_tensor_release(lab);
  return st;
}

static vp_status put(vp_outfile *f, const char *fmt, ...) VP_PRINTF(2, 3);
static vp_status put(vp_outfile *f, const char *fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= sizeof buf)
    return vp_fail(VP_ERR_INTERNAL, "synth: dataset.json line too long");
  return vp_outfile_write(f, buf, (size_t)n);
}

static vp_status write_json_body(const vp_synth_opts *o, vp_outfile *f) {
  int brats = o->kind == VP_SYNTH_BRATS;
  VP_TRY(put(f, "{\n  \"name\": \"%s\",\n", brats ? "BRATS" : "KiTS19"));
  VP_TRY(put(f, "  \"description\": \"synthetic stand-in generated by voxpipe %s, seed %llu\",\n",
             VP_VERSION_STRING, (unsigned long long)o->seed));
  VP_TRY(put(f, "  \"tensorImageSize\": \"%s\",\n", brats || o->format == 1 ? "4D" : "3D"));
  VP_TRY(put(f, "  \"format\": \"%s\",\n", o->format == 1 ? "npy" : "nifti"));
  if (brats) {
    VP_TRY(put(f,
               "  \"modality\": {\"0\": \"T1\", \"1\": \"T1ce\", \"2\": \"T2\", "
               "\"3\": \"FLAIR\"},\n"));
    VP_TRY(put(f,
               "  \"labels\": {\"0\": \"background\", \"1\": \"necrotic and non-enhancing "
               "tumor core\", \"2\": \"peritumoral edema\", \"4\": \"GD-enhancing tumor\"},\n"));
  } else {
    VP_TRY(put(f, "  \"modality\": {\"0\": \"CT\"},\n"));
    VP_TRY(put(f, "  \"labels\": {\"0\": \"background\", \"1\": \"kidney\", \"2\": \"tumor\"},\n"));
  }
  if (o->format == 1)
    VP_TRY(put(f, "  \"normalization\": \"%s\",\n",
               brats ? "z-score per channel over nonzero voxels"
                     : "clip to [-79, 304], then (x - 101) / 76.9"));
  VP_TRY(put(f, "  \"numTraining\": %d,\n  \"numTest\": 0,\n  \"test\": [],\n  \"training\": [",
             o->num_cases));
  for (int i = 0; i < o->num_cases; i++) {
    char iname[64], lname[64];
    case_names(o, i, iname, lname, sizeof iname);
    VP_TRY(
        put(f, "%s\n    {\"image\": \"./%s\", \"label\": \"./%s\"}", i ? "," : "", iname, lname));
  }
  return put(f, "\n  ]\n}\n");
}

static vp_status write_json(const vp_synth_opts *o, const char *dir) {
  char path[4096];
  VP_TRY(join(path, sizeof path, dir, "dataset.json"));
  vp_outfile f;
  VP_TRY(vp_outfile_open(&f, path));
  vp_status st = write_json_body(o, &f);
  if (st != VP_OK) {
    vp_outfile_abort(&f);
    return st;
  }
  return vp_outfile_commit(&f);
}

vp_status vp_synth_dataset(const vp_synth_opts *o, const char *dir,
                           void (*progress)(int done, int total, void *ctx), void *ctx) {
  VP_TRY(check_opts(o));
  if (!dir || !*dir) return vp_fail(VP_ERR_INVALID_ARG, "synth: output directory is empty");
  if (o->num_cases < 1 || o->num_cases > 100000)
    return vp_fail(VP_ERR_INVALID_ARG, "synth: num_cases = %d is outside [1, 100000]",
                   o->num_cases);
  if (o->format != 0 && o->format != 1)
    return vp_fail(VP_ERR_INVALID_ARG, "synth: format %d is neither 0 (nii.gz) nor 1 (npy)",
                   o->format);
  VP_TRY(make_dirs(dir));
  if (o->format == 0) {
    char sub[4096];
    VP_TRY(join(sub, sizeof sub, dir, "imagesTr"));
    VP_TRY(make_dir(sub));
    VP_TRY(join(sub, sizeof sub, dir, "labelsTr"));
    VP_TRY(make_dir(sub));
  }
  vp_save_opts so;
  vp_save_opts_init(&so);
  so.threads = o->threads;
  for (int i = 0; i < o->num_cases; i++) {
    vp_status st = write_case(o, dir, i, &so);
    if (st != VP_OK) return vp_fail_prefix(st, "%s: case %d", dir, i);
    if (progress) progress(i + 1, o->num_cases, ctx);
  }
  return write_json(o, dir);
}
