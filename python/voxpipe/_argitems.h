/* Operator arguments from a Python dict as vp_arg_item values (see
 * _argitems.c). */
#ifndef VOXPIPE_ARGITEMS_H
#define VOXPIPE_ARGITEMS_H
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "voxpipe.h"

#define ARGITEMS_MAX 32

typedef struct argitems {
  vp_arg_item items[ARGITEMS_MAX];
  int n;
  double *vals;
  Py_ssize_t nvals, cap;
  int32_t *lens;
  PyObject *keep; /* the keys and values the items point into */
} argitems;

/* 0: a->items hold the dict's arguments; 1: some value needs the JSON form
 * (nothing raised); -1: a Python error is set. Call argitems_free after. */
int argitems_from_dict(argitems *a, PyObject *dict, Py_ssize_t batch);
void argitems_free(argitems *a);

#endif
