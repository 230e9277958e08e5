/* Operator arguments straight from a Python dict to vp_arg_item values:
 * numbers travel as doubles, so an eager call with per-sample matrices does
 * not print 96 floats to JSON and parse them back (about 40 us each way on
 * the H100 host). Values this does not know (nodes, nested lists, None...)
 * make it answer "use JSON", and the caller takes the JSON path, whose
 * checks are the same (src/ops/args.c). */
#include "_argitems.h"

#include <string.h>

/* Appends v's numbers: a number, or a sequence of numbers when list. */
static int add_numbers(argitems *a, PyObject *v, int *list, uint32_t *flags);

static int grow(argitems *a, Py_ssize_t more) {
  if (a->nvals + more <= a->cap) return 0;
  Py_ssize_t cap = a->cap ? a->cap : 64;
  while (cap < a->nvals + more) cap *= 2;
  double *p = PyMem_Realloc(a->vals, (size_t)cap * sizeof *p);
  if (!p) {
    PyErr_NoMemory();
    return -1;
  }
  a->vals = p;
  a->cap = cap;
  return 0;
}

/* One number; 1 = not a number this path takes (the JSON path decides). */
static int add_one(argitems *a, PyObject *v, uint32_t *flags) {
  double x;
  if (PyBool_Check(v)) {
    x = v == Py_True;
    *flags &= VP_ARG_ITEM_BOOL | VP_ARG_ITEM_INTEGER;
  } else if (PyLong_Check(v) || (!PyFloat_Check(v) && PyIndex_Check(v))) {
    PyObject *i = PyNumber_Index(v);
    if (!i) return -1;
    x = PyLong_AsDouble(i);
    Py_DECREF(i);
    if (x == -1.0 && PyErr_Occurred()) {
      PyErr_Clear(); /* beyond double: the JSON path words the error */
      return 1;
    }
    *flags &= VP_ARG_ITEM_INTEGER;
  } else if (PyFloat_Check(v) ||
             (PyNumber_Check(v) && !PyUnicode_Check(v) && !PySequence_Check(v))) {
    x = PyFloat_AsDouble(v);
    if (x == -1.0 && PyErr_Occurred()) {
      PyErr_Clear();
      return 1;
    }
    *flags = 0;
  } else {
    return 1;
  }
  if (grow(a, 1)) return -1;
  a->vals[a->nvals++] = x;
  return 0;
}

static int add_numbers(argitems *a, PyObject *v, int *list, uint32_t *flags) {
  if (PyUnicode_Check(v) || PyBytes_Check(v) || PyDict_Check(v)) return 1;
  if (!PySequence_Check(v)) {
    *list = 0;
    return add_one(a, v, flags);
  }
  *list = 1;
  Py_ssize_t n = PySequence_Size(v);
  if (n < 0) return -1;
  if (n > 64) return 1;
  for (Py_ssize_t k = 0; k < n; k++) {
    PyObject *e = PySequence_GetItem(v, k);
    if (!e) return -1;
    int r = PyUnicode_Check(e) || PySequence_Check(e) ? 1 : add_one(a, e, flags);
    Py_DECREF(e);
    if (r) return r;
  }
  return 0;
}

/* One per-sample value list ({"per_sample": seq}) of `batch` entries. */
static int add_per_sample(argitems *a, PyObject *seq, Py_ssize_t batch, int *list, uint32_t *flags,
                          Py_ssize_t lens_at) {
  if (!PySequence_Check(seq) || PyUnicode_Check(seq)) return 1;
  if (PySequence_Size(seq) != batch) return 1;
  for (Py_ssize_t i = 0; i < batch; i++) {
    PyObject *e = PySequence_GetItem(seq, i);
    if (!e) return -1;
    const Py_ssize_t before = a->nvals;
    int l = 0, r = add_numbers(a, e, &l, flags);
    Py_DECREF(e);
    if (r) return r;
    if (i == 0) *list = l;
    if (l != *list) return 1; /* lists and numbers mixed */
    a->lens[lens_at + i] = (int32_t)(a->nvals - before);
  }
  return 0;
}

int argitems_from_dict(argitems *a, PyObject *dict, Py_ssize_t batch) {
  memset(a, 0, sizeof *a);
  if (!PyDict_Check(dict)) return 1;
  Py_ssize_t n = PyDict_Size(dict);
  if (n > ARGITEMS_MAX) return 1;
  a->keep = PyList_New(0);
  if (!a->keep) return -1;
  /* per-sample counts: batch of them per item, at most */
  a->lens = PyMem_Calloc((size_t)(n * batch) + 1, sizeof *a->lens);
  if (!a->lens) {
    PyErr_NoMemory();
    return -1;
  }
  Py_ssize_t pos = 0, lens_used = 0;
  PyObject *key, *v;
  /* values first (the buffer may move), pointers into it after */
  Py_ssize_t first[ARGITEMS_MAX], lens_at[ARGITEMS_MAX];
  while (PyDict_Next(dict, &pos, &key, &v)) {
    if (!PyUnicode_Check(key)) return 1;
    vp_arg_item *it = &a->items[a->n];
    first[a->n] = a->nvals;
    lens_at[a->n] = -1;
    if (PyList_Append(a->keep, key) || PyList_Append(a->keep, v)) return -1;
    it->name = PyUnicode_AsUTF8AndSize(key, NULL);
    if (!it->name) return -1;
    uint32_t flags = VP_ARG_ITEM_INTEGER | VP_ARG_ITEM_BOOL;
    int list = 0, r;
    if (PyUnicode_Check(v)) {
      it->string = PyUnicode_AsUTF8AndSize(v, NULL);
      if (!it->string) return -1;
      flags = 0;
      r = 0;
    } else if (PyDict_Check(v)) {
      PyObject *ps = PyDict_Size(v) == 1 ? PyDict_GetItemString(v, "per_sample") : NULL;
      if (!ps) return 1;
      r = add_per_sample(a, ps, batch, &list, &flags, lens_used);
      lens_at[a->n] = lens_used;
      lens_used += batch;
    } else {
      r = add_numbers(a, v, &list, &flags);
      it->len = (int32_t)(a->nvals - first[a->n]);
    }
    if (r) return r;
    it->flags = flags | (list ? VP_ARG_ITEM_LIST : 0);
    a->n++;
  }
  for (int k = 0; k < a->n; k++) {
    vp_arg_item *it = &a->items[k];
    it->values = a->vals ? a->vals + first[k] : NULL;
    if (lens_at[k] >= 0) it->lens = a->lens + lens_at[k];
  }
  return 0;
}

void argitems_free(argitems *a) {
  PyMem_Free(a->vals);
  PyMem_Free(a->lens);
  Py_XDECREF(a->keep);
  memset(a, 0, sizeof *a);
}
