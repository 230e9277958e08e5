/* voxpipe info FILE...: header facts and the value range of each file. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void print_info(const char *path, const vp_file_info *fi, const vp_tensor *t) {
  printf("%s\n", path);
  printf("  format   %s%s\n", fi->format, fi->compressed ? " (gzip)" : "");
  printf("  shape    ");
  for (int i = 0; i < fi->ndim; i++) printf("%s%lld", i ? " x " : "", (long long)fi->shape[i]);
  static const char *names3[] = {"D", "H", "W"};
  int nsp = vp_tensor_spatial_ndim(t);
  printf("   (");
  for (int i = 0; i < fi->ndim; i++) {
    int s = i - (fi->ndim - nsp);
    printf("%s%s", i ? ", " : "", s >= 0 ? names3[3 - nsp + s] : (i == 0 ? "C" : "T"));
  }
  printf(")\n");
  printf("  dtype    %s", vp_dtype_name(fi->dtype));
  if (fi->stored_dtype != fi->dtype)
    printf("   (stored %s, scl_slope %g, scl_inter %g)", vp_dtype_name(fi->stored_dtype),
           fi->scl_slope, fi->scl_inter);
  if (fi->big_endian) printf("   big-endian");
  if (fi->fortran_order) printf("   Fortran order");
  printf("\n");
  double sp[3];
  vp_tensor_spacing(t, sp);
  printf("  spacing  ");
  for (int i = 0; i < nsp; i++) printf("%s%g", i ? " x " : "", sp[i]);
  printf("   (%s)\n", nsp == 3 ? "dz, dy, dx" : nsp == 2 ? "dy, dx" : "dx");
  double a[16];
  vp_tensor_affine(t, a);
  for (int r = 0; r < 4; r++)
    printf("  %s [%10.4f %10.4f %10.4f %10.4f ]\n", r == 0 ? "affine " : "       ", a[4 * r],
           a[4 * r + 1], a[4 * r + 2], a[4 * r + 3]);
  double lo, hi, mean;
  if (vp_tensor_stats(t, &lo, &hi, &mean) == VP_OK)
    printf("  range    [%g, %g]   mean %g\n", lo, hi, mean);
}

int cmd_info(int argc, char **argv) {
  if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
    fprintf(argc < 2 ? stderr : stdout,
            "usage: voxpipe info FILE...\n"
            "  Prints format, shape (array order), dtype, spacing, affine and value range\n"
            "  of .npy, .nii, .nii.gz and .hdr/.img files. Exit 1 if any file is bad.\n");
    return argc < 2 ? 2 : 0;
  }
  int rc = 0;
  for (int i = 1; i < argc; i++) {
    vp_file_info fi;
    vp_tensor *t = NULL;
    if (vp_file_info_read(argv[i], &fi) != VP_OK || vp_load(argv[i], NULL, &t) != VP_OK) {
      fprintf(stderr, "voxpipe info: %s\n", vp_last_error());
      rc = 1;
      continue;
    }
    print_info(argv[i], &fi, t);
    vp_tensor_release(t);
  }
  return rc;
}
