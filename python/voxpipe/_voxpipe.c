/* voxpipe._voxpipe: the thin C layer under the Python package, on the
 * stable ABI. It holds vp_tensor handles in capsules and moves data in and
 * out through DLPack; python/voxpipe/__init__.py builds the user-facing API
 * on top. Uses the public API (voxpipe.h) only. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <dlpack/dlpack.h>
#include <string.h>

#include "_argitems.h"
#include "voxpipe.h"

#define TENSOR_CAPSULE "voxpipe.tensor"

static PyObject *VoxpipeError;

/* Raises the Python exception that fits the status, with the library's
 * per-thread message. */
static PyObject *raise_status(vp_status s) {
  PyObject *type = VoxpipeError;
  if (s == VP_ERR_INVALID_ARG || s == VP_ERR_OUT_OF_BOUNDS || s == VP_ERR_OVERFLOW)
    type = PyExc_ValueError;
  else if (s == VP_ERR_IO)
    type = PyExc_OSError;
  else if (s == VP_ERR_NOMEM)
    type = PyExc_MemoryError;
  const char *msg = vp_last_error();
  PyErr_Format(type, "%s", msg && *msg ? msg : vp_status_desc(s));
  return NULL;
}

static void tensor_capsule_free(PyObject *cap) {
  vp_tensor *t = PyCapsule_GetPointer(cap, TENSOR_CAPSULE);
  if (t) {
    vp_tensor_release(t);
  } else {
    PyErr_Clear();
  }
}

static PyObject *wrap_tensor(vp_tensor *t) {
  PyObject *cap = PyCapsule_New(t, TENSOR_CAPSULE, tensor_capsule_free);
  if (!cap) vp_tensor_release(t);
  return cap;
}

static vp_tensor *get_tensor(PyObject *cap) { return PyCapsule_GetPointer(cap, TENSOR_CAPSULE); }

/* Reads a sequence of up to `max` numbers into ints (i64 != NULL) or
 * doubles (f64 != NULL); returns the count, or -1 with an exception. */
static int read_numbers(PyObject *seq, int64_t *i64, double *f64, int max, const char *what) {
  PyObject *fast = PySequence_Fast(seq, what);
  if (!fast) return -1;
  Py_ssize_t n = PySequence_Size(fast);
  if (n > max) {
    Py_DECREF(fast);
    PyErr_Format(PyExc_ValueError, "%s: at most %d values, got %zd", what, max, n);
    return -1;
  }
  for (Py_ssize_t i = 0; i < n; i++) {
    PyObject *item = PySequence_GetItem(fast, i);
    if (item && i64) i64[i] = PyLong_AsLongLong(item);
    if (item && f64) f64[i] = PyFloat_AsDouble(item);
    Py_XDECREF(item);
    if (!item || PyErr_Occurred()) {
      Py_DECREF(fast);
      return -1;
    }
  }
  Py_DECREF(fast);
  return (int)n;
}

static int read_int64s(PyObject *seq, int64_t *out, int max, const char *what) {
  return read_numbers(seq, out, NULL, max, what);
}

static int read_doubles(PyObject *seq, double *out, int max, const char *what) {
  return read_numbers(seq, NULL, out, max, what);
}

static PyObject *py_load(PyObject *self, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"path", "roi_start", "roi_shape", "oob", "fill", "raw", "mmap", NULL};
  const char *path;
  PyObject *start = Py_None, *shape = Py_None;
  int oob = 0, raw = 0, use_mmap = 0;
  double fill = 0.0;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "s|OOidpp", kwlist, &path, &start, &shape, &oob, &fill,
                                   &raw, &use_mmap))
    return NULL;
  vp_load_opts o;
  vp_load_opts_init(&o);
  o.raw = raw;
  o.use_mmap = use_mmap;
  o.fill = fill;
  o.oob = (vp_oob_policy)oob;
  if (start != Py_None || shape != Py_None) {
    if (start == Py_None || shape == Py_None) {
      PyErr_SetString(PyExc_ValueError, "roi: give both start and shape");
      return NULL;
    }
    int a = read_int64s(start, o.roi_start, VP_MAX_NDIM, "roi start");
    if (a < 0) return NULL;
    int b = read_int64s(shape, o.roi_shape, VP_MAX_NDIM, "roi shape");
    if (b < 0) return NULL;
    if (a != b) {
      PyErr_Format(PyExc_ValueError, "roi: start has %d values but shape has %d", a, b);
      return NULL;
    }
    o.roi_ndim = a;
  }
  vp_tensor *t = NULL;
  vp_status s;
  Py_BEGIN_ALLOW_THREADS s = vp_load(path, &o, &t);
  Py_END_ALLOW_THREADS if (s != VP_OK) return raise_status(s);
  return wrap_tensor(t);
}

static PyObject *py_info(PyObject *self, PyObject *arg) {
  vp_tensor *t = get_tensor(arg);
  if (!t) return NULL;
  int nd = vp_tensor_ndim(t);
  const int64_t *sh = vp_tensor_shape(t);
  PyObject *shape = PyTuple_New(nd);
  for (int i = 0; i < nd; i++) PyTuple_SetItem(shape, i, PyLong_FromLongLong(sh[i]));
  int ns = vp_tensor_spatial_ndim(t);
  double sp[3], af[16];
  vp_tensor_spacing(t, sp);
  vp_tensor_affine(t, af);
  PyObject *spacing = PyTuple_New(ns);
  for (int i = 0; i < ns; i++) PyTuple_SetItem(spacing, i, PyFloat_FromDouble(sp[i]));
  PyObject *affine = PyTuple_New(16);
  for (int i = 0; i < 16; i++) PyTuple_SetItem(affine, i, PyFloat_FromDouble(af[i]));
  return Py_BuildValue("(NsNNii)", shape, vp_dtype_name(vp_tensor_dtype(t)), spacing, affine,
                       (int)vp_tensor_memkind(t), vp_tensor_device(t));
}

static void dltensor_capsule_free(PyObject *cap) {
  /* Unconsumed capsules still own their tensor; consumers rename them. */
  if (PyCapsule_IsValid(cap, "dltensor")) {
    DLManagedTensor *m = PyCapsule_GetPointer(cap, "dltensor");
    if (m && m->deleter) m->deleter(m);
  }
}

static PyObject *py_to_dlpack(PyObject *self, PyObject *arg) {
  vp_tensor *t = get_tensor(arg);
  if (!t) return NULL;
  void *m = NULL;
  vp_status s = vp_tensor_to_dlpack(t, &m);
  if (s != VP_OK) return raise_status(s);
  PyObject *cap = PyCapsule_New(m, "dltensor", dltensor_capsule_free);
  if (!cap) ((DLManagedTensor *)m)->deleter(m);
  return cap;
}

static PyObject *py_from_dlpack(PyObject *self, PyObject *cap) {
  if (!PyCapsule_IsValid(cap, "dltensor")) {
    PyErr_SetString(PyExc_TypeError,
                    "expected an unconsumed 'dltensor' capsule (from obj.__dlpack__())");
    return NULL;
  }
  DLManagedTensor *m = PyCapsule_GetPointer(cap, "dltensor");
  if (PyCapsule_SetName(cap, "used_dltensor") != 0) return NULL;
  vp_tensor *t = NULL;
  vp_status s = vp_tensor_from_dlpack(m, &t); /* owns m from here, also on failure */
  if (s != VP_OK) return raise_status(s);
  return wrap_tensor(t);
}

/* wrap_ptr's deleter: drops the owner, from whichever thread releases the
 * tensor last (an executor worker, say), so it takes the GIL. */
static void owner_release(void *owner) {
  if (!Py_IsInitialized()) return; /* after interpreter exit the owner is gone anyway */
  PyGILState_STATE g = PyGILState_Ensure();
  Py_DECREF((PyObject *)owner);
  PyGILState_Release(g);
}

/* wrap_ptr(ptr, shape, dtype, mem, device, owner) -> handle over a
 * C-contiguous buffer that `owner` keeps alive (a torch tensor): what
 * __dlpack__ does, minus the exporter's per-call work. */
static PyObject *py_wrap_ptr(PyObject *self, PyObject *args) {
  unsigned long long ptr;
  PyObject *shape, *owner;
  const char *dtype;
  int mem, device;
  if (!PyArg_ParseTuple(args, "KOsiiO", &ptr, &shape, &dtype, &mem, &device, &owner)) return NULL;
  int64_t sh[8];
  int nd = read_numbers(shape, sh, NULL, 8, "shape");
  if (nd < 0) return NULL;
  vp_dtype dt;
  vp_status s = vp_dtype_from_name(dtype, &dt);
  if (s != VP_OK) return raise_status(s);
  vp_tensor *t = NULL;
  Py_INCREF(owner);
  s = vp_tensor_wrap(dt, nd, sh, (void *)(uintptr_t)ptr, (vp_memkind)mem, device, owner_release,
                     owner, &t);
  if (s != VP_OK) {
    Py_DECREF(owner);
    return raise_status(s);
  }
  return wrap_tensor(t);
}

static PyObject *py_set_meta(PyObject *self, PyObject *args) {
  PyObject *cap, *spacing, *affine;
  if (!PyArg_ParseTuple(args, "OOO", &cap, &spacing, &affine)) return NULL;
  vp_tensor *t = get_tensor(cap);
  if (!t) return NULL;
  if (spacing != Py_None) {
    double sp[3];
    int n = read_doubles(spacing, sp, 3, "spacing");
    if (n < 0) return NULL;
    vp_status s = vp_tensor_set_spacing(t, n, sp);
    if (s != VP_OK) return raise_status(s);
  }
  if (affine != Py_None) {
    double af[16];
    int n = read_doubles(affine, af, 16, "affine");
    if (n < 0) return NULL;
    if (n != 16) {
      PyErr_Format(PyExc_ValueError, "affine: expected 4x4 = 16 values, got %d", n);
      return NULL;
    }
    vp_status s = vp_tensor_set_affine(t, af);
    if (s != VP_OK) return raise_status(s);
  }
  Py_RETURN_NONE;
}

static PyObject *py_save(PyObject *self, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"path", "tensor", "compress_level", "threads", NULL};
  const char *path;
  PyObject *cap;
  int level = 6, threads = 0;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "sO|ii", kwlist, &path, &cap, &level, &threads))
    return NULL;
  vp_tensor *t = get_tensor(cap);
  if (!t) return NULL;
  vp_save_opts o;
  vp_save_opts_init(&o);
  o.compress_level = level;
  o.threads = threads;
  vp_status s;
  Py_BEGIN_ALLOW_THREADS s = vp_save(path, t, &o);
  Py_END_ALLOW_THREADS if (s != VP_OK) return raise_status(s);
  Py_RETURN_NONE;
}

static PyObject *py_copy_to(PyObject *self, PyObject *args) {
  PyObject *cap;
  int mem, device;
  if (!PyArg_ParseTuple(args, "Oii", &cap, &mem, &device)) return NULL;
  vp_tensor *t = get_tensor(cap);
  if (!t) return NULL;
  vp_tensor *o = NULL;
  vp_status s;
  Py_BEGIN_ALLOW_THREADS s = vp_tensor_copy_to(t, (vp_memkind)mem, device, &o);
  Py_END_ALLOW_THREADS if (s != VP_OK) return raise_status(s);
  return wrap_tensor(o);
}

static PyObject *py_file_info(PyObject *self, PyObject *args) {
  const char *path;
  if (!PyArg_ParseTuple(args, "s", &path)) return NULL;
  vp_file_info fi;
  vp_status s = vp_file_info_read(path, &fi);
  if (s != VP_OK) return raise_status(s);
  PyObject *shape = PyTuple_New(fi.ndim);
  for (int i = 0; i < fi.ndim; i++) PyTuple_SetItem(shape, i, PyLong_FromLongLong(fi.shape[i]));
  PyObject *affine = PyTuple_New(16);
  for (int i = 0; i < 16; i++) PyTuple_SetItem(affine, i, PyFloat_FromDouble(fi.affine[i]));
  return Py_BuildValue("{s:s,s:s,s:s,s:N,s:(ddd),s:N,s:d,s:d,s:O,s:O,s:O}", "format", fi.format,
                       "dtype", vp_dtype_name(fi.dtype), "stored_dtype",
                       vp_dtype_name(fi.stored_dtype), "shape", shape, "spacing", fi.spacing[0],
                       fi.spacing[1], fi.spacing[2], "affine", affine, "scl_slope", fi.scl_slope,
                       "scl_inter", fi.scl_inter, "big_endian", fi.big_endian ? Py_True : Py_False,
                       "fortran_order", fi.fortran_order ? Py_True : Py_False, "compressed",
                       fi.compressed ? Py_True : Py_False);
}

static PyObject *py_synth_case(PyObject *self, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"kind", "seed", "case", "shape", "scale", "threads", NULL};
  int kind = 0, index = 0, threads = 0;
  unsigned long long seed = 0;
  PyObject *shape = Py_None;
  double scale = 0.0;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "i|KiOdi", kwlist, &kind, &seed, &index, &shape,
                                   &scale, &threads))
    return NULL;
  vp_synth_opts o;
  vp_synth_opts_init(&o);
  o.kind = (vp_synth_kind)kind;
  o.seed = seed;
  o.scale = scale;
  o.threads = threads;
  if (shape != Py_None) {
    int n = read_int64s(shape, o.shape, 3, "shape");
    if (n < 0) return NULL;
    if (n != 3) {
      PyErr_SetString(PyExc_ValueError, "shape: expected (D, H, W)");
      return NULL;
    }
  }
  vp_tensor *img = NULL, *lbl = NULL;
  vp_status s;
  Py_BEGIN_ALLOW_THREADS s = vp_synth_case(&o, index, &img, &lbl);
  Py_END_ALLOW_THREADS if (s != VP_OK) return raise_status(s);
  PyObject *a = wrap_tensor(img);
  if (!a) {
    vp_tensor_release(lbl);
    return NULL;
  }
  PyObject *b = wrap_tensor(lbl);
  if (!b) {
    Py_DECREF(a);
    return NULL;
  }
  return Py_BuildValue("(NN)", a, b);
}

/* ---- operators ------------------------------------------------------- */

static PyObject *py_ops_list(PyObject *self, PyObject *unused) {
  int n = vp_ops_count();
  PyObject *l = PyList_New(n);
  if (!l) return NULL;
  for (int i = 0; i < n; i++) PyList_SetItem(l, i, PyUnicode_FromString(vp_ops_name(i)));
  return l;
}

static PyObject *py_ops_describe(PyObject *self, PyObject *args) {
  const char *name;
  if (!PyArg_ParseTuple(args, "s", &name)) return NULL;
  char *json = NULL;
  vp_status s = vp_ops_describe(name, &json);
  if (s != VP_OK) return raise_status(s);
  PyObject *r = PyUnicode_FromString(json);
  vp_free(json);
  return r;
}

/* The tensors of a sequence of handles (borrowed: the sequence keeps them),
 * in a PyMem array the caller frees; NULL with an exception on error. */
static vp_tensor **tensors_of(PyObject *seq, Py_ssize_t *n, const char *what) {
  PyObject *fast = PySequence_Fast(seq, what);
  if (!fast) return NULL;
  *n = PySequence_Size(fast);
  vp_tensor **t = PyMem_Calloc((size_t)*n + 1, sizeof *t);
  if (!t) {
    Py_DECREF(fast);
    PyErr_NoMemory();
    return NULL;
  }
  for (Py_ssize_t i = 0; i < *n; i++) {
    PyObject *item = PySequence_GetItem(fast, i);
    t[i] = item ? get_tensor(item) : NULL;
    Py_XDECREF(item);
    if (!t[i]) {
      PyMem_Free(t);
      t = NULL;
      break;
    }
  }
  Py_DECREF(fast);
  return t;
}

/* A list of handles taking over n new references (all released on error). */
static PyObject *list_of(vp_tensor **out, Py_ssize_t n) {
  PyObject *l = PyList_New(n);
  for (Py_ssize_t i = 0; i < n; i++) {
    PyObject *h = l ? wrap_tensor(out[i]) : NULL; /* wrap_tensor releases on failure */
    if (!l) vp_tensor_release(out[i]);
    out[i] = NULL;
    if (l && !h) Py_CLEAR(l);
    if (l) PyList_SetItem(l, i, h);
  }
  return l;
}

/* ops_call(name, inputs: list of handles (input k of sample i at k*batch+i),
 *          batch, args_json, seed, num_outputs) -> list of handles */
/* Raised when an argument dict holds a value the items path does not take:
 * the Python layer then sends JSON. */
static PyObject *NeedsJson;

/* args: None, JSON text, or a dict (-> items). 0 ok, -1 error raised. */
static int args_of(PyObject *args, Py_ssize_t batch, const char **json, argitems *it, int *items) {
  *json = NULL;
  *items = 0;
  if (args == Py_None) return 0;
  if (PyUnicode_Check(args)) {
    *json = PyUnicode_AsUTF8AndSize(args, NULL);
    return *json ? 0 : -1;
  }
  int r = argitems_from_dict(it, args, batch);
  if (r == 0) *items = 1;
  if (r == 1) PyErr_SetString(NeedsJson, "these arguments need the JSON form");
  return r == 0 ? 0 : -1;
}

static PyObject *py_ops_call(PyObject *self, PyObject *args) {
  const char *name;
  PyObject *inputs, *cargs;
  Py_ssize_t batch, nout;
  unsigned long long seed;
  if (!PyArg_ParseTuple(args, "sOnOKn", &name, &inputs, &batch, &cargs, &seed, &nout)) return NULL;
  if (batch < 1 || nout < 0 || nout > 64) {
    PyErr_SetString(PyExc_ValueError, "ops_call: bad batch or output count");
    return NULL;
  }
  const char *json;
  int use_items;
  argitems it;
  memset(&it, 0, sizeof it);
  if (args_of(cargs, batch, &json, &it, &use_items)) {
    argitems_free(&it);
    return NULL;
  }
  Py_ssize_t nin;
  vp_tensor **in = tensors_of(inputs, &nin, "inputs must be a sequence of tensors");
  vp_tensor **out = in ? PyMem_Calloc((size_t)(nout * batch) + 1, sizeof *out) : NULL;
  if (!out) {
    PyMem_Free(in);
    argitems_free(&it);
    return in ? PyErr_NoMemory() : NULL;
  }
  vp_status s;
  Py_BEGIN_ALLOW_THREADS s = use_items
                                 ? vp_ops_call_items(name, batch, in, it.items, it.n, seed, out)
                                 : vp_ops_call(name, batch, in, json, seed, out);
  Py_END_ALLOW_THREADS PyMem_Free(in);
  argitems_free(&it);
  PyObject *l = s == VP_OK ? list_of(out, nout * batch) : raise_status(s);
  PyMem_Free(out);
  return l;
}

static PyObject *py_ops_call_chain(PyObject *self, PyObject *args) {
  PyObject *names, *cargs, *inputs;
  Py_ssize_t batch;
  unsigned long long seed;
  if (!PyArg_ParseTuple(args, "OOOnK", &names, &cargs, &inputs, &batch, &seed)) return NULL;
  if (!PyList_Check(names) || !PyList_Check(cargs) || PyList_Size(names) != PyList_Size(cargs) ||
      PyList_Size(names) < 1 || PyList_Size(names) > 64 || batch < 1) {
    PyErr_SetString(PyExc_ValueError, "ops_call_chain: names and args must be lists of 1..64");
    return NULL;
  }
  int n = (int)PyList_Size(names), any_json = 0;
  const char *nm[64], *js[64];
  static const vp_arg_item none_item;
  const vp_arg_item *items[64];
  int nitems[64];
  argitems *it = PyMem_Calloc((size_t)n, sizeof *it);
  if (!it) return PyErr_NoMemory();
  PyObject *result = NULL;
  vp_tensor **in = NULL, **out = NULL;
  for (int k = 0; k < n; k++) {
    nm[k] = PyUnicode_AsUTF8AndSize(PyList_GetItem(names, k), NULL);
    int use_items;
    if (!nm[k] || args_of(PyList_GetItem(cargs, k), batch, &js[k], &it[k], &use_items)) goto done;
    items[k] = use_items ? it[k].items : &none_item;
    nitems[k] = use_items ? it[k].n : 0;
    any_json |= js[k] != NULL;
  }
  if (any_json) /* one form per chain: text for all when one needs it */
    for (int k = 0; k < n; k++)
      if (!js[k] && nitems[k]) {
        PyErr_SetString(NeedsJson, "mixed argument forms");
        goto done;
      }
  Py_ssize_t nin;
  in = tensors_of(inputs, &nin, "inputs must be a sequence of tensors");
  if (!in) goto done;
  if (nin != batch) {
    PyErr_SetString(PyExc_ValueError, "ops_call_chain: one input per sample");
    goto done;
  }
  out = PyMem_Calloc((size_t)batch + 1, sizeof *out);
  if (!out) {
    PyErr_NoMemory();
    goto done;
  }
  vp_status s;
  Py_BEGIN_ALLOW_THREADS s =
      any_json ? vp_ops_call_chain(n, nm, js, batch, in, seed, out)
               : vp_ops_call_chain_items(n, nm, items, nitems, batch, in, seed, out);
  Py_END_ALLOW_THREADS result = s == VP_OK ? list_of(out, batch) : raise_status(s);
done:
  for (int k = 0; k < n; k++) argitems_free(&it[k]);
  PyMem_Free(it);
  PyMem_Free(in);
  PyMem_Free(out);
  return result;
}

static PyObject *py_eager_wait(PyObject *self, PyObject *args) {
  int device;
  unsigned long long stream;
  if (!PyArg_ParseTuple(args, "iK", &device, &stream)) return NULL;
  vp_status s = vp_eager_wait(device, (void *)(uintptr_t)stream);
  if (s != VP_OK) return raise_status(s);
  Py_RETURN_NONE;
}

static PyObject *py_stack_view(PyObject *self, PyObject *seq) {
  Py_ssize_t n;
  vp_tensor **t = tensors_of(seq, &n, "stack_view: expected a sequence of tensors");
  if (!t) return NULL;
  vp_tensor *v = NULL;
  vp_status s = vp_tensor_stack_view(t, n, &v);
  PyMem_Free(t);
  if (s != VP_OK) return raise_status(s);
  return wrap_tensor(v);
}

/* ---- pipelines --------------------------------------------------------- */

#define PIPE_CAPSULE "voxpipe.pipeline"

static void pipe_capsule_free(PyObject *cap) {
  vp_pipeline *p = PyCapsule_GetPointer(cap, PIPE_CAPSULE);
  if (p) {
    vp_pipeline_destroy(p);
  } else {
    PyErr_Clear();
  }
}

static vp_pipeline *get_pipe(PyObject *cap) { return PyCapsule_GetPointer(cap, PIPE_CAPSULE); }

static PyObject *wrap_pipe(vp_pipeline *p) {
  PyObject *cap = PyCapsule_New(p, PIPE_CAPSULE, pipe_capsule_free);
  if (!cap) vp_pipeline_destroy(p);
  return cap;
}

static PyObject *py_pipeline_create(PyObject *self, PyObject *args) {
  vp_pipeline_opts o;
  vp_pipeline_opts_init(&o);
  unsigned long long seed;
  int fuse = 1;
  if (!PyArg_ParseTuple(args, "iiiKii|i", &o.batch_size, &o.num_threads, &o.device, &seed,
                        &o.prefetch_queue_depth, &o.skip_bad_samples, &fuse))
    return NULL;
  o.no_fusion = !fuse;
  o.seed = seed;
  vp_pipeline *p = NULL;
  vp_status s = vp_pipeline_create(&o, &p);
  if (s != VP_OK) return raise_status(s);
  return wrap_pipe(p);
}

static PyObject *py_pipeline_from_json(PyObject *self, PyObject *args) {
  const char *json, *name, *over;
  if (!PyArg_ParseTuple(args, "ssz", &json, &name, &over)) return NULL;
  vp_pipeline *p = NULL;
  vp_status s;
  Py_BEGIN_ALLOW_THREADS s = vp_pipeline_from_json(json, name, over, &p);
  Py_END_ALLOW_THREADS if (s != VP_OK) return raise_status(s);
  return wrap_pipe(p);
}

/* pipeline_add_reader(p, source dict, roi (start, shape, oob, fill) | None,
 *                     image_name, label_name | None) */
static PyObject *py_pipeline_add_reader(PyObject *self, PyObject *args) {
  PyObject *cap, *src, *roi;
  const char *image_name, *label_name;
  if (!PyArg_ParseTuple(args, "OO!Osz", &cap, &PyDict_Type, &src, &roi, &image_name, &label_name))
    return NULL;
  vp_pipeline *p = get_pipe(cap);
  if (!p) return NULL;
  vp_dataset_opts d;
  vp_dataset_opts_init(&d);
  struct {
    const char *key;
    const char **dst;
  } strs[] = {{"dataset_json", &d.dataset_json},
              {"split", &d.split},
              {"root", &d.root},
              {"image_glob", &d.image_glob},
              {"label_glob", &d.label_glob},
              {"file_list", &d.file_list}};
  for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
    PyObject *v = PyDict_GetItemString(src, strs[i].key); /* borrowed; dict keeps it alive */
    if (v && v != Py_None) {
      *strs[i].dst = PyUnicode_AsUTF8AndSize(v, NULL);
      if (!*strs[i].dst) return NULL;
    }
  }
  struct {
    const char *key;
    int *dst;
  } ints[] = {{"shuffle", &d.shuffle},
              {"shard_id", &d.shard_id},
              {"num_shards", &d.num_shards},
              {"stick_to_shard", &d.stick_to_shard},
              {"pad_last_batch", &d.pad_last_batch},
              {"batch_size", &d.batch_size}};
  for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
    PyObject *v = PyDict_GetItemString(src, ints[i].key);
    if (v && v != Py_None) {
      long x = PyLong_AsLong(v);
      if (x == -1 && PyErr_Occurred()) return NULL;
      *ints[i].dst = (int)x;
    }
  }
  PyObject *seed = PyDict_GetItemString(src, "seed");
  if (seed && seed != Py_None) {
    d.seed = PyLong_AsUnsignedLongLongMask(seed);
    if (PyErr_Occurred()) return NULL;
  }
  vp_load_opts lo, *lop = NULL;
  if (roi != Py_None) {
    PyObject *start, *shape;
    int oob = 0;
    double fill = 0;
    if (!PyArg_ParseTuple(roi, "OOid", &start, &shape, &oob, &fill)) return NULL;
    vp_load_opts_init(&lo);
    int a = read_int64s(start, lo.roi_start, VP_MAX_NDIM, "roi start");
    if (a < 0) return NULL;
    int b = read_int64s(shape, lo.roi_shape, VP_MAX_NDIM, "roi shape");
    if (b < 0) return NULL;
    if (a != b) {
      PyErr_SetString(PyExc_ValueError, "roi: start and shape differ in length");
      return NULL;
    }
    lo.roi_ndim = a;
    lo.oob = (vp_oob_policy)oob;
    lo.fill = fill;
    lop = &lo;
  }
  vp_status s = vp_pipeline_add_reader(p, &d, lop, image_name, label_name);
  if (s != VP_OK) return raise_status(s);
  Py_RETURN_NONE;
}

/* Borrows UTF-8 pointers of a list of str (valid while the list lives). */
static const char **str_array(PyObject *seq, Py_ssize_t *n, PyObject **keep) {
  PyObject *fast = PySequence_Fast(seq, "expected a list of names");
  if (!fast) return NULL;
  *n = PySequence_Size(fast);
  const char **a = PyMem_Calloc((size_t)*n + 1, sizeof *a);
  if (!a) {
    Py_DECREF(fast);
    PyErr_NoMemory();
    return NULL;
  }
  for (Py_ssize_t i = 0; i < *n; i++) {
    PyObject *item = PySequence_GetItem(fast, i); /* the list keeps it alive */
    a[i] = item ? PyUnicode_AsUTF8AndSize(item, NULL) : NULL;
    Py_XDECREF(item);
    if (!a[i]) {
      PyMem_Free(a);
      Py_DECREF(fast);
      return NULL;
    }
  }
  *keep = fast;
  return a;
}

static PyObject *py_pipeline_set_reader_crop(PyObject *self, PyObject *args) {
  PyObject *cap, *shape;
  if (!PyArg_ParseTuple(args, "OO", &cap, &shape)) return NULL;
  vp_pipeline *p = get_pipe(cap);
  if (!p) return NULL;
  int64_t sh[VP_MAX_NDIM];
  int n = read_int64s(shape, sh, VP_MAX_NDIM, "random_crop");
  if (n < 0) return NULL;
  vp_status s = vp_pipeline_set_reader_crop(p, n, sh);
  if (s != VP_OK) return raise_status(s);
  Py_RETURN_NONE;
}

static PyObject *py_pipeline_set_reader_cache(PyObject *self, PyObject *args) {
  PyObject *cap;
  unsigned long long bytes;
  int gpu = 0;
  if (!PyArg_ParseTuple(args, "OK|p", &cap, &bytes, &gpu)) return NULL;
  vp_pipeline *p = get_pipe(cap);
  if (!p) return NULL;
  vp_status s = vp_pipeline_set_reader_cache(p, (size_t)bytes, gpu ? VP_MEM_DEVICE : VP_MEM_HOST);
  if (s != VP_OK) return raise_status(s);
  Py_RETURN_NONE;
}

static PyObject *py_pipeline_cache_stats(PyObject *self, PyObject *cap) {
  vp_pipeline *p = get_pipe(cap);
  if (!p) return NULL;
  size_t bytes;
  int64_t entries;
  uint64_t hits, misses;
  vp_status s = vp_pipeline_cache_stats(p, &bytes, &entries, &hits, &misses);
  if (s != VP_OK) return raise_status(s);
  return Py_BuildValue("{s:K,s:L,s:K,s:K}", "bytes", (unsigned long long)bytes, "entries",
                       (long long)entries, "hits", (unsigned long long)hits, "misses",
                       (unsigned long long)misses);
}

static PyObject *py_pipeline_add_node(PyObject *self, PyObject *args) {
  PyObject *cap, *inputs, *outputs;
  const char *op, *device, *json;
  if (!PyArg_ParseTuple(args, "OssOzO", &cap, &op, &device, &inputs, &json, &outputs)) return NULL;
  vp_pipeline *p = get_pipe(cap);
  if (!p) return NULL;
  Py_ssize_t nin, nout;
  PyObject *kin = NULL, *kout = NULL;
  const char **in = str_array(inputs, &nin, &kin);
  if (!in) return NULL;
  const char **out = str_array(outputs, &nout, &kout);
  if (!out) {
    PyMem_Free(in);
    Py_DECREF(kin);
    return NULL;
  }
  vp_status s = vp_pipeline_add_node(p, op, device, (int)nin, in, json, (int)nout, out);
  PyMem_Free(in);
  PyMem_Free(out);
  Py_DECREF(kin);
  Py_DECREF(kout);
  if (s != VP_OK) return raise_status(s);
  Py_RETURN_NONE;
}

static PyObject *py_pipeline_set_outputs(PyObject *self, PyObject *args) {
  PyObject *cap, *names;
  if (!PyArg_ParseTuple(args, "OO", &cap, &names)) return NULL;
  vp_pipeline *p = get_pipe(cap);
  if (!p) return NULL;
  Py_ssize_t n;
  PyObject *keep = NULL;
  const char **a = str_array(names, &n, &keep);
  if (!a) return NULL;
  vp_status s = vp_pipeline_set_outputs(p, (int)n, a);
  PyMem_Free(a);
  Py_DECREF(keep);
  if (s != VP_OK) return raise_status(s);
  Py_RETURN_NONE;
}

static PyObject *py_pipeline_build(PyObject *self, PyObject *cap) {
  vp_pipeline *p = get_pipe(cap);
  if (!p) return NULL;
  vp_status s;
  Py_BEGIN_ALLOW_THREADS s = vp_pipeline_build(p);
  Py_END_ALLOW_THREADS if (s != VP_OK) return raise_status(s);
  Py_RETURN_NONE;
}

static PyObject *py_pipeline_info(PyObject *self, PyObject *cap) {
  vp_pipeline *p = get_pipe(cap);
  if (!p) return NULL;
  return Py_BuildValue("(iiL)", vp_pipeline_num_outputs(p), vp_pipeline_batch_size(p),
                       (long long)vp_pipeline_epoch_size(p));
}

/* -> (list of handles, output k of sample i at k*batch+i; epoch_end) */
static PyObject *py_pipeline_run(PyObject *self, PyObject *cap) {
  vp_pipeline *p = get_pipe(cap);
  if (!p) return NULL;
  Py_ssize_t n = (Py_ssize_t)vp_pipeline_num_outputs(p) * vp_pipeline_batch_size(p);
  vp_tensor **out = PyMem_Calloc((size_t)n + 1, sizeof *out);
  if (!out) return PyErr_NoMemory();
  int end = 0;
  vp_status s;
  Py_BEGIN_ALLOW_THREADS s = vp_pipeline_run(p, out, &end);
  Py_END_ALLOW_THREADS if (s != VP_OK) {
    PyMem_Free(out);
    return raise_status(s);
  }
  PyObject *l = list_of(out, n);
  PyMem_Free(out);
  if (!l) return NULL;
  return Py_BuildValue("(NO)", l, end ? Py_True : Py_False);
}

static PyObject *py_pipeline_get_state(PyObject *self, PyObject *cap) {
  vp_pipeline *p = get_pipe(cap);
  if (!p) return NULL;
  int64_t e, i, it;
  vp_status s = vp_pipeline_get_state(p, &e, &i, &it);
  if (s != VP_OK) return raise_status(s);
  return Py_BuildValue("(LLL)", (long long)e, (long long)i, (long long)it);
}

static PyObject *py_pipeline_set_state(PyObject *self, PyObject *args) {
  PyObject *cap;
  long long e, i, it;
  if (!PyArg_ParseTuple(args, "OLLL", &cap, &e, &i, &it)) return NULL;
  vp_pipeline *p = get_pipe(cap);
  if (!p) return NULL;
  vp_status s;
  Py_BEGIN_ALLOW_THREADS s = vp_pipeline_set_state(p, e, i, it);
  Py_END_ALLOW_THREADS if (s != VP_OK) return raise_status(s);
  Py_RETURN_NONE;
}

static PyObject *py_io_bytes_read(PyObject *self, PyObject *unused) {
  return PyLong_FromUnsignedLongLong(vp_io_bytes_read());
}

static PyObject *py_io_reset(PyObject *self, PyObject *unused) {
  vp_io_reset_bytes_read();
  Py_RETURN_NONE;
}

static PyObject *py_version(PyObject *self, PyObject *unused) {
  return PyUnicode_FromString(vp_version());
}

static PyObject *py_cuda_device_count(PyObject *self, PyObject *unused) {
  return PyLong_FromLong(vp_cuda_device_count());
}

static PyMethodDef methods[] = {
    {"load", (PyCFunction)(void (*)(void))py_load, METH_VARARGS | METH_KEYWORDS,
     "load(path, roi_start=None, roi_shape=None, oob=0, fill=0.0, raw=False, mmap=False)"},
    {"info", py_info, METH_O, "info(handle) -> (shape, dtype, spacing, affine16, mem, device)"},
    {"to_dlpack", py_to_dlpack, METH_O, "to_dlpack(handle) -> 'dltensor' capsule"},
    {"from_dlpack", py_from_dlpack, METH_O, "from_dlpack(capsule) -> handle (no copy)"},
    {"wrap_ptr", py_wrap_ptr, METH_VARARGS,
     "wrap_ptr(ptr, shape, dtype, mem, device, owner) -> handle (no copy; owner kept alive)"},
    {"set_meta", py_set_meta, METH_VARARGS, "set_meta(handle, spacing|None, affine16|None)"},
    {"save", (PyCFunction)(void (*)(void))py_save, METH_VARARGS | METH_KEYWORDS,
     "save(path, handle, compress_level=6, threads=0)"},
    {"copy_to", py_copy_to, METH_VARARGS, "copy_to(handle, mem, device) -> handle"},
    {"file_info", py_file_info, METH_VARARGS, "file_info(path) -> dict"},
    {"synth_case", (PyCFunction)(void (*)(void))py_synth_case, METH_VARARGS | METH_KEYWORDS,
     "synth_case(kind, seed=0, case=0, shape=None, scale=0.0, threads=0) -> (image, label)"},
    {"ops_list", py_ops_list, METH_NOARGS, "names of the registered operators"},
    {"ops_describe", py_ops_describe, METH_VARARGS, "ops_describe(name) -> JSON text"},
    {"ops_call", py_ops_call, METH_VARARGS,
     "ops_call(name, inputs, batch, args, seed, num_outputs) -> handles; args: None, JSON "
     "text or a dict of plain values (NeedsJson when one needs the JSON form)"},
    {"ops_call_chain", py_ops_call_chain, METH_VARARGS,
     "ops_call_chain(names, args, inputs, batch, seed) -> handles (one fused pass); args "
     "as ops_call's, one per operator"},
    {"eager_wait", py_eager_wait, METH_VARARGS,
     "eager_wait(device, cuda_stream): this thread's next eager calls on the device wait for "
     "the work queued on the stream (0: the legacy default stream)"},
    {"stack_view", py_stack_view, METH_O, "stack_view(handles) -> one [N, ...] handle (no copy)"},
    {"pipeline_create", py_pipeline_create, METH_VARARGS,
     "pipeline_create(batch, threads, device, seed, prefetch, skip_bad[, fuse])"},
    {"pipeline_from_json", py_pipeline_from_json, METH_VARARGS,
     "pipeline_from_json(text, name, overrides_json)"},
    {"pipeline_add_reader", py_pipeline_add_reader, METH_VARARGS, "add the dataset reader"},
    {"pipeline_set_reader_crop", py_pipeline_set_reader_crop, METH_VARARGS,
     "pipeline_set_reader_crop(p, shape): a random window per sample"},
    {"pipeline_set_reader_cache", py_pipeline_set_reader_cache, METH_VARARGS,
     "pipeline_set_reader_cache(p, max_bytes, gpu=False)"},
    {"pipeline_cache_stats", py_pipeline_cache_stats, METH_O, "the reader cache's use"},
    {"pipeline_add_node", py_pipeline_add_node, METH_VARARGS,
     "pipeline_add_node(p, op, device, inputs, args_json, outputs)"},
    {"pipeline_set_outputs", py_pipeline_set_outputs, METH_VARARGS, "set the outputs"},
    {"pipeline_build", py_pipeline_build, METH_O, "check the graph, start the workers"},
    {"pipeline_info", py_pipeline_info, METH_O, "(num_outputs, batch_size, epoch_size)"},
    {"pipeline_run", py_pipeline_run, METH_O, "-> (handles, epoch_end)"},
    {"pipeline_get_state", py_pipeline_get_state, METH_O, "-> (epoch, index, iteration)"},
    {"pipeline_set_state", py_pipeline_set_state, METH_VARARGS, "resume from a state"},
    {"io_bytes_read", py_io_bytes_read, METH_NOARGS, "bytes read by this thread"},
    {"io_reset_bytes_read", py_io_reset, METH_NOARGS, "reset the byte counter"},
    {"version", py_version, METH_NOARGS, "library version"},
    {"cuda_device_count", py_cuda_device_count, METH_NOARGS, "usable CUDA devices"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_voxpipe", NULL, -1, methods, NULL, NULL, NULL, NULL};

/* A new exception class as module attribute `name` (qualified `qual`),
 * kept in *slot; 0 or -1 with the error set. */
static int add_exception(PyObject *m, const char *name, const char *qual, PyObject *base,
                         PyObject **slot) {
  *slot = PyErr_NewException(qual, base, NULL);
  Py_XINCREF(*slot);
  if (PyModule_AddObject(m, name, *slot) != 0) {
    Py_XDECREF(*slot);
    return -1;
  }
  return 0;
}

PyMODINIT_FUNC PyInit__voxpipe(void) {
  PyObject *m = PyModule_Create(&module);
  if (!m) return NULL;
  if (add_exception(m, "VoxpipeError", "voxpipe.VoxpipeError", PyExc_RuntimeError, &VoxpipeError) ||
      add_exception(m, "NeedsJson", "voxpipe._voxpipe.NeedsJson", PyExc_TypeError, &NeedsJson)) {
    Py_DECREF(m);
    return NULL;
  }
  return m;
}
