/* PNG previews: the middle slice of every channel side by side, windowed to
 * the slice's 1st-99th percentile, with an optional label overlay. Written
 * to a temporary file and renamed, so a failure leaves no partial PNG. */
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

enum { GAP = 4 };

static int preview_fail(const char *path, const char *why) {
  fprintf(stderr, "voxpipe: %s: %s\n", path, why);
  return 1;
}

static float half_to_float(uint16_t h) {
  int e = (h >> 10) & 0x1f, m = h & 0x3ff;
  float v = e == 0    ? ldexpf((float)m, -24)
            : e == 31 ? (m ? NAN : INFINITY)
                      : ldexpf((float)(m | 0x400), e - 25);
  return (h & 0x8000) ? -v : v;
}

static double value_at(const void *data, vp_dtype t, int64_t i) {
  switch (t) {
    case VP_U8: return ((const uint8_t *)data)[i];
    case VP_I8: return ((const int8_t *)data)[i];
    case VP_U16: return ((const uint16_t *)data)[i];
    case VP_I16: return ((const int16_t *)data)[i];
    case VP_U32: return ((const uint32_t *)data)[i];
    case VP_I32: return ((const int32_t *)data)[i];
    case VP_I64: return (double)((const int64_t *)data)[i];
    case VP_F16: return half_to_float(((const uint16_t *)data)[i]);
    case VP_F32: return ((const float *)data)[i];
    case VP_F64: return ((const double *)data)[i];
    default: return 0.0;
  }
}

static int cmp_float(const void *a, const void *b) {
  float x = *(const float *)a, y = *(const float *)b;
  return (x > y) - (x < y);
}

/* A view of a slice: element (r, c) of channel ch lives at
 * base + ch * cstride + r * rstride + c * cstep. */
typedef struct slice_map {
  int64_t rows, cols, rstride, cstep, base, chstride;
  int flip; /* rows run from high D to low D, so "up" is superior */
} slice_map;

static slice_map make_map(const int64_t sp[3], int axis) {
  int64_t strides[3] = {sp[1] * sp[2], sp[2], 1};
  slice_map m;
  int ra = axis == 0 ? 1 : 0, ca = axis == 2 ? 1 : 2;
  m.rows = sp[ra], m.cols = sp[ca];
  m.rstride = strides[ra], m.cstep = strides[ca];
  m.base = (sp[axis] / 2) * strides[axis];
  m.chstride = sp[0] * sp[1] * sp[2];
  m.flip = axis != 0;
  return m;
}

static int64_t map_index(const slice_map *m, int64_t ch, int64_t r, int64_t c) {
  int64_t rr = m->flip ? m->rows - 1 - r : r;
  return m->base + ch * m->chstride + rr * m->rstride + c * m->cstep;
}

static const uint8_t k_palette[8][3] = {{230, 25, 75},  {60, 180, 75},  {0, 130, 200},
                                        {255, 225, 25}, {245, 130, 48}, {145, 30, 180},
                                        {70, 240, 240}, {240, 50, 230}};

static int write_png(const char *path, const uint8_t *rgb, int64_t w, int64_t h) {
  size_t n = strlen(path);
  char *tmp = malloc(n + 16);
  if (!tmp) return preview_fail(path, "out of memory");
  snprintf(tmp, n + 16, "%s.tmpXXXXXX", path);
  int fd = mkstemp(tmp);
  if (fd < 0) {
    free(tmp);
    return preview_fail(path, "cannot create a temporary file beside it");
  }
  FILE *f = fdopen(fd, "wb");
  png_structp png = f ? png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL) : NULL;
  png_infop info = png ? png_create_info_struct(png) : NULL;
  int ok = 0;
  if (info && !setjmp(png_jmpbuf(png))) {
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int64_t y = 0; y < h; y++) png_write_row(png, (png_const_bytep)(rgb + y * w * 3));
    png_write_end(png, NULL);
    ok = 1;
  }
  if (png) png_destroy_write_struct(&png, info ? &info : NULL);
  if (f) {
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) ok = 0;
    if (fclose(f) != 0) ok = 0;
  } else {
    close(fd);
  }
  if (ok && rename(tmp, path) != 0) ok = 0;
  if (!ok) unlink(tmp);
  free(tmp);
  return ok ? 0 : preview_fail(path, "cannot write the PNG");
}

int cli_write_preview(const char *png_path, const vp_tensor *image, const vp_tensor *label,
                      int axis) {
  if (!png_path || !image) return preview_fail("preview", "no image or output path");
  if (axis < 0 || axis > 2) return preview_fail(png_path, "axis must be 0, 1 or 2");
  vp_tensor *img_host = NULL, *lab_host = NULL;
  if (vp_tensor_memkind(image) == VP_MEM_DEVICE) {
    if (vp_tensor_copy_to(image, VP_MEM_HOST, 0, &img_host) != VP_OK) return cli_fail(png_path);
    image = img_host;
  }
  if (label && vp_tensor_memkind(label) == VP_MEM_DEVICE) {
    if (vp_tensor_copy_to(label, VP_MEM_HOST, 0, &lab_host) != VP_OK) {
      vp_tensor_release(img_host);
      return cli_fail(png_path);
    }
    label = lab_host;
  }
  int rc = 1;
  uint8_t *rgb = NULL;
  float *vals = NULL;
  const int64_t *ish = vp_tensor_shape(image);
  int nd = vp_tensor_ndim(image);
  int64_t sp[3], nch;
  if (nd == 2) {
    nch = 1, sp[0] = 1, sp[1] = ish[0], sp[2] = ish[1];
    axis = 0;
  } else if (nd == 3 || nd == 4) {
    nch = nd == 4 ? ish[0] : 1;
    memcpy(sp, ish + nd - 3, sizeof sp);
  } else {
    fprintf(stderr, "voxpipe: %s: the image has %d axes; expected [C,] D, H, W\n", png_path, nd);
    goto done;
  }
  if (label) {
    const int64_t *lsh = vp_tensor_shape(label);
    int lnd = vp_tensor_ndim(label), match = lnd >= 2;
    for (int a = 0; match && a < lnd && a < 3; a++)
      match = lsh[lnd - 1 - a] == (nd == 2 ? ish[1 - a] : sp[2 - a]);
    for (int a = 0; match && a < lnd - (nd == 2 ? 2 : 3); a++) match = lsh[a] == 1;
    if (!match || (nd != 2 && lnd < 3)) {
      fprintf(stderr, "voxpipe: %s: the label's shape does not match the image's\n", png_path);
      goto done;
    }
  }
  slice_map m = make_map(sp, axis);
  if (m.rows < 1 || m.cols < 1 || nch < 1 || nch > 64 || m.rows > 16384 || m.cols > 16384) {
    fprintf(stderr, "voxpipe: %s: cannot draw %lld channels of %lld x %lld\n", png_path,
            (long long)nch, (long long)m.rows, (long long)m.cols);
    goto done;
  }
  int64_t width = nch * m.cols + (nch - 1) * GAP, height = m.rows, plane = m.rows * m.cols;
  rgb = calloc((size_t)(width * height * 3), 1);
  vals = malloc((size_t)plane * 2 * sizeof *vals);
  if (!rgb || !vals) {
    fprintf(stderr, "voxpipe: %s: out of memory\n", png_path);
    goto done;
  }
  const void *idata = vp_tensor_data(image);
  vp_dtype it = vp_tensor_dtype(image);
  for (int64_t ch = 0; ch < nch; ch++) {
    for (int64_t r = 0; r < m.rows; r++)
      for (int64_t c = 0; c < m.cols; c++)
        vals[r * m.cols + c] = (float)value_at(idata, it, map_index(&m, ch, r, c));
    /* Percentiles over the finite values only. */
    float *sorted = vals + plane;
    int64_t nf = 0;
    for (int64_t i = 0; i < plane; i++)
      if (isfinite(vals[i])) sorted[nf++] = vals[i];
    float lo = 0, hi = 1;
    if (nf > 0) {
      qsort(sorted, (size_t)nf, sizeof *sorted, cmp_float);
      lo = sorted[(int64_t)floor(0.01 * (double)(nf - 1))];
      hi = sorted[(int64_t)ceil(0.99 * (double)(nf - 1))];
    }
    float scale = hi > lo ? 255.0f / (hi - lo) : 0.0f;
    for (int64_t r = 0; r < m.rows; r++)
      for (int64_t c = 0; c < m.cols; c++) {
        float v = vals[r * m.cols + c];
        float g = isfinite(v) ? (v - lo) * scale : 0.0f;
        g = g < 0 ? 0 : g > 255 ? 255 : g;
        float px[3] = {g, g, g};
        if (label) {
          double lv =
              value_at(vp_tensor_data(label), vp_tensor_dtype(label), map_index(&m, 0, r, c));
          if (lv != 0 && lv == lv) {
            int64_t k = ((int64_t)lv - 1) % 8;
            if (k < 0) k += 8;
            for (int j = 0; j < 3; j++) px[j] = 0.55f * px[j] + 0.45f * k_palette[k][j];
          }
        }
        uint8_t *o = rgb + (r * width + ch * (m.cols + GAP) + c) * 3;
        for (int j = 0; j < 3; j++) o[j] = (uint8_t)(px[j] + 0.5f);
      }
  }
  rc = write_png(png_path, rgb, width, height);
done:
  free(rgb);
  free(vals);
  vp_tensor_release(img_host);
  vp_tensor_release(lab_host);
  return rc;
}
