/* The case list of a dataset: from an MSD dataset.json, from globs in a
 * folder, or from a text file list. Every path is resolved and checked
 * here, at open, so that a missing file fails before training starts. */
#include <errno.h>
#include <glob.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/status.h"
#include "io/dataset.h"

/* ---- growing the list ---------------------------------------------------- */

typedef struct builder {
  vp_case_list *l;
  size_t img_cap, lab_cap;
  const char *base_dir; /* relative paths are relative to this ("" = cwd) */
  char first[256];      /* where the first case came from, for count errors */
} builder;

static vp_status grow(char ***v, size_t *cap, size_t need, const char *src) {
  if (need <= *cap) return VP_OK;
  size_t n = *cap ? *cap : 16;
  while (n < need) {
    if (n > SIZE_MAX / 2 / sizeof(char *))
      return vp_fail(VP_ERR_OVERFLOW, "%s: too many files in the dataset", src);
    n *= 2;
  }
  char **p = realloc(*v, n * sizeof(char *));
  if (!p) return vp_fail(VP_ERR_NOMEM, "%s: out of memory listing the dataset", src);
  *v = p;
  *cap = n;
  return VP_OK;
}

/* rel with any leading "./" dropped, joined to dir unless absolute. */
static char *join_path(const char *dir, const char *rel) {
  if (rel[0] == '/' || !dir[0]) return strdup(rel);
  while (rel[0] == '.' && rel[1] == '/') {
    rel += 2;
    while (*rel == '/') rel++;
  }
  size_t a = strlen(dir), b = strlen(rel);
  char *p = malloc(a + b + 2);
  if (!p) return NULL;
  memcpy(p, dir, a);
  p[a] = '/';
  memcpy(p + a + 1, rel, b + 1);
  return p;
}

/* The folder part of path with no trailing '/', "" when there is none. */
static char *dir_of(const char *path) {
  const char *slash = strrchr(path, '/');
  if (!slash) return strdup("");
  if (slash == path) return strdup("/");
  size_t n = (size_t)(slash - path);
  char *d = malloc(n + 1);
  if (!d) return NULL;
  memcpy(d, path, n);
  d[n] = '\0';
  return d;
}

static vp_status check_regular(const char *path, const char *where, const char *what) {
  struct stat st;
  if (stat(path, &st) != 0)
    return vp_fail(VP_ERR_IO, "%s, %s: %s: %s", where, what, path, strerror(errno));
  if (!S_ISREG(st.st_mode))
    return vp_fail(VP_ERR_IO, "%s, %s: %s: not a regular file", where, what, path);
  return VP_OK;
}

/* Resolves, checks and appends one case. `where` names the entry in
 * messages ("ds.json: training[3]", "list.txt:5"). label may be NULL. */
static vp_status add_case(builder *b, const char *const *images, int m, const char *label,
                          const char *where) {
  vp_case_list *l = b->l;
  if (m < 1) return vp_fail(VP_ERR_FORMAT, "%s: no image file", where);
  if (l->num_cases == 0) {
    l->num_modalities = m;
    snprintf(b->first, sizeof b->first, "%s", where);
  } else if (m != l->num_modalities) {
    return vp_fail(VP_ERR_FORMAT, "%s: %d image files, but %s has %d", where, m, b->first,
                   l->num_modalities);
  } else if ((label != NULL) != (l->labels != NULL)) {
    return vp_fail(VP_ERR_FORMAT, "%s: %s a label, but %s %s", where, label ? "has" : "lacks",
                   b->first, label ? "has none" : "has one");
  }
  size_t n = (size_t)l->num_cases;
  if ((size_t)m > (SIZE_MAX - 1) / sizeof(char *) / (n + 1))
    return vp_fail(VP_ERR_OVERFLOW, "%s: too many files in the dataset", l->source);
  VP_TRY(grow(&l->images, &b->img_cap, (n + 1) * (size_t)m, l->source));
  if (label) VP_TRY(grow(&l->labels, &b->lab_cap, n + 1, l->source));

  size_t base = n * (size_t)m;
  int done = 0;
  vp_status st = VP_OK;
  for (; done < m; done++) {
    char *p = join_path(b->base_dir, images[done]);
    if (!p) {
      st = vp_fail(VP_ERR_NOMEM, "%s: out of memory", where);
      break;
    }
    l->images[base + (size_t)done] = p;
    char what[32];
    snprintf(what, sizeof what, "image %d", done);
    st = check_regular(p, where, what);
    if (st != VP_OK) {
      done++;
      break;
    }
  }
  char *lp = NULL;
  if (st == VP_OK && label) {
    lp = join_path(b->base_dir, label);
    if (!lp) st = vp_fail(VP_ERR_NOMEM, "%s: out of memory", where);
    if (st == VP_OK) st = check_regular(lp, where, "label");
  }
  if (st != VP_OK) {
    for (int k = 0; k < done; k++) free(l->images[base + (size_t)k]);
    free(lp);
    return st;
  }
  if (label) l->labels[n] = lp;
  l->num_cases++;
  return VP_OK;
}

/* ---- dataset.json ---------------------------------------------------------- */

static vp_status json_entry(builder *b, const char *json_path, const char *key, size_t i,
                            json_t *e) {
  char where[256];
  snprintf(where, sizeof where, "%s: %s[%zu]", json_path, key, i);
  if (json_is_string(e)) {
    const char *img = json_string_value(e);
    return add_case(b, &img, 1, NULL, where);
  }
  if (!json_is_object(e))
    return vp_fail(VP_ERR_FORMAT, "%s: neither an object nor a path string", where);
  json_t *image = json_object_get(e, "image");
  json_t *label = json_object_get(e, "label");
  const char *lab = NULL;
  if (label && !json_is_null(label)) {
    if (!json_is_string(label))
      return vp_fail(VP_ERR_FORMAT, "%s: \"label\" is not a path string", where);
    lab = json_string_value(label);
  }
  if (!image) return vp_fail(VP_ERR_FORMAT, "%s: no \"image\"", where);
  if (json_is_string(image)) {
    const char *img = json_string_value(image);
    return add_case(b, &img, 1, lab, where);
  }
  if (!json_is_array(image))
    return vp_fail(VP_ERR_FORMAT, "%s: \"image\" is neither a path nor a list of paths", where);
  size_t m = json_array_size(image);
  if (m == 0) return vp_fail(VP_ERR_FORMAT, "%s: \"image\" is an empty list", where);
  if (m > 4096) return vp_fail(VP_ERR_FORMAT, "%s: \"image\" lists %zu files", where, m);
  const char **imgs = malloc(m * sizeof *imgs);
  if (!imgs) return vp_fail(VP_ERR_NOMEM, "%s: out of memory", where);
  for (size_t k = 0; k < m; k++) {
    json_t *s = json_array_get(image, k);
    if (!json_is_string(s)) {
      free(imgs);
      return vp_fail(VP_ERR_FORMAT, "%s: \"image\"[%zu] is not a path string", where, k);
    }
    imgs[k] = json_string_value(s);
  }
  vp_status st = add_case(b, imgs, (int)m, lab, where);
  free(imgs);
  return st;
}

static vp_status from_json(builder *b, const char *json_path, const char *split) {
  const char *key = split ? split : "training";
  json_error_t err;
  json_t *root = json_load_file(json_path, JSON_REJECT_DUPLICATES, &err);
  if (!root) {
    if (json_error_code(&err) == json_error_cannot_open_file)
      return vp_fail(VP_ERR_IO, "%s: %s", json_path, err.text);
    return vp_fail(VP_ERR_FORMAT, "%s:%d:%d: %s", json_path, err.line, err.column, err.text);
  }
  vp_status st = VP_OK;
  json_t *list = json_is_object(root) ? json_object_get(root, key) : NULL;
  if (!json_is_object(root))
    st = vp_fail(VP_ERR_FORMAT, "%s: the top level is not an object", json_path);
  else if (!list)
    st = vp_fail(VP_ERR_FORMAT, "%s: no \"%s\" key", json_path, key);
  else if (!json_is_array(list))
    st = vp_fail(VP_ERR_FORMAT, "%s: \"%s\" is not a list", json_path, key);
  for (size_t i = 0; st == VP_OK && i < json_array_size(list); i++)
    st = json_entry(b, json_path, key, i, json_array_get(list, i));
  json_decref(root);
  return st;
}

/* ---- globs ------------------------------------------------------------------ */

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* One ';'-separated pattern list, each matched in root: matches[g] holds
 * the sorted names of pattern g. */
typedef struct glob_set {
  int n;
  glob_t g[64];
  char *pattern[64];
} glob_set;

static void glob_set_free(glob_set *s) {
  for (int i = 0; i < s->n; i++) {
    globfree(&s->g[i]);
    free(s->pattern[i]);
  }
  s->n = 0;
}

/* root with glob's metacharacters escaped, so a folder named "a[1]" is
 * taken literally. */
static char *escape_root(const char *root) {
  size_t n = strlen(root);
  char *e = malloc(2 * n + 1);
  if (!e) return NULL;
  char *p = e;
  for (size_t i = 0; i < n; i++) {
    if (strchr("*?[]\\", root[i])) *p++ = '\\';
    *p++ = root[i];
  }
  *p = '\0';
  return e;
}

static vp_status glob_set_match(glob_set *s, const char *root, const char *list, const char *opt) {
  s->n = 0;
  vp_status st = VP_OK;
  char *copy = strdup(list);
  char *eroot = escape_root(root ? root : "");
  if (!copy || !eroot) st = vp_fail(VP_ERR_NOMEM, "%s: out of memory", opt);
  char *save = NULL;
  for (char *tok = copy ? strtok_r(copy, ";", &save) : NULL; st == VP_OK && tok;
       tok = strtok_r(NULL, ";", &save)) {
    while (*tok == ' ' || *tok == '\t') tok++;
    size_t len = strlen(tok);
    while (len && (tok[len - 1] == ' ' || tok[len - 1] == '\t')) tok[--len] = '\0';
    if (!len) continue;
    if (s->n == 64) {
      st = vp_fail(VP_ERR_INVALID_ARG, "%s \"%s\": more than 64 patterns", opt, list);
      break;
    }
    char *full = join_path(eroot, tok);
    if (!full) {
      st = vp_fail(VP_ERR_NOMEM, "%s: out of memory", opt);
      break;
    }
    int rc = glob(full, GLOB_ERR, NULL, &s->g[s->n]);
    s->pattern[s->n] = full;
    s->n++;
    if (rc == GLOB_NOMATCH)
      st = vp_fail(VP_ERR_IO, "%s: %s matches no file", opt, full);
    else if (rc == GLOB_NOSPACE)
      st = vp_fail(VP_ERR_NOMEM, "%s: %s: out of memory", opt, full);
    else if (rc != 0)
      st = vp_fail(VP_ERR_IO, "%s: %s: cannot read the folder", opt, full);
    else
      qsort(s->g[s->n - 1].gl_pathv, s->g[s->n - 1].gl_pathc, sizeof(char *), cmp_str);
  }
  if (st == VP_OK && s->n == 0)
    st = vp_fail(VP_ERR_INVALID_ARG, "%s \"%s\": no pattern", opt, list);
  for (int i = 1; st == VP_OK && i < s->n; i++)
    if (s->g[i].gl_pathc != s->g[0].gl_pathc)
      st =
          vp_fail(VP_ERR_FORMAT, "%s: %s matches %zu files, but %s matches %zu", opt, s->pattern[i],
                  (size_t)s->g[i].gl_pathc, s->pattern[0], (size_t)s->g[0].gl_pathc);
  free(copy);
  free(eroot);
  if (st != VP_OK) glob_set_free(s);
  return st;
}

static vp_status from_globs(builder *b, const vp_dataset_opts *o) {
  glob_set *img = calloc(1, sizeof *img), *lab = calloc(1, sizeof *lab);
  vp_status st = VP_OK;
  if (!img || !lab) st = vp_fail(VP_ERR_NOMEM, "image_glob: out of memory");
  if (st == VP_OK) st = glob_set_match(img, o->root, o->image_glob, "image_glob");
  if (st == VP_OK && o->label_glob) {
    st = glob_set_match(lab, o->root, o->label_glob, "label_glob");
    if (st == VP_OK && lab->n != 1)
      st = vp_fail(VP_ERR_INVALID_ARG, "label_glob \"%s\": one pattern expected, not %d",
                   o->label_glob, lab->n);
    if (st == VP_OK && lab->g[0].gl_pathc != img->g[0].gl_pathc)
      st = vp_fail(VP_ERR_FORMAT, "label_glob: %s matches %zu files, but %s matches %zu",
                   lab->pattern[0], (size_t)lab->g[0].gl_pathc, img->pattern[0],
                   (size_t)img->g[0].gl_pathc);
  }
  const char *paths[64];
  for (size_t i = 0; st == VP_OK && i < (img->n ? img->g[0].gl_pathc : 0); i++) {
    for (int m = 0; m < img->n; m++) paths[m] = img->g[m].gl_pathv[i];
    char where[256];
    snprintf(where, sizeof where, "%s: match %zu", img->pattern[0], i);
    st = add_case(b, paths, img->n, lab->n ? lab->g[0].gl_pathv[i] : NULL, where);
  }
  if (img) glob_set_free(img);
  if (lab) glob_set_free(lab);
  free(img);
  free(lab);
  return st;
}

/* ---- file list --------------------------------------------------------------- */

static char *trim(char *s) {
  while (*s == ' ' || *s == '\t') s++;
  size_t n = strlen(s);
  while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
    s[--n] = '\0';
  return s;
}

/* "a.nii;b.nii<TAB>lab.nii" or "a.nii;b.nii | lab.nii" or "a.nii". */
static vp_status list_line(builder *b, char *line, const char *where) {
  char *label = NULL;
  char *sep = strchr(line, '\t');
  if (sep) {
    *sep = '\0';
    label = sep + 1;
  } else if ((sep = strstr(line, " | "))) {
    *sep = '\0';
    label = sep + 3;
  }
  if (label) {
    label = trim(label);
    if (!*label) return vp_fail(VP_ERR_FORMAT, "%s: empty label path after the separator", where);
  }
  int m = 1;
  for (const char *p = line; *p; p++) m += *p == ';';
  char **imgs = malloc((size_t)m * sizeof *imgs);
  if (!imgs) return vp_fail(VP_ERR_NOMEM, "%s: out of memory", where);
  int k = 0;
  char *tok = line;
  vp_status st = VP_OK;
  for (;;) {
    char *semi = strchr(tok, ';');
    if (semi) *semi = '\0';
    imgs[k] = trim(tok);
    if (!*imgs[k]) {
      st = vp_fail(VP_ERR_FORMAT, "%s: image path %d is empty", where, k);
      break;
    }
    k++;
    if (!semi) break;
    tok = semi + 1;
  }
  if (st == VP_OK) st = add_case(b, (const char *const *)imgs, k, label, where);
  free(imgs);
  return st;
}

static vp_status from_file_list(builder *b, const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) return vp_fail(VP_ERR_IO, "%s: %s", path, strerror(errno));
  char *line = NULL;
  size_t cap = 0;
  long long lineno = 0;
  vp_status st = VP_OK;
  while (st == VP_OK && getline(&line, &cap, f) >= 0) {
    lineno++;
    char *s = trim(line);
    if (!*s || *s == '#') continue;
    char where[256];
    snprintf(where, sizeof where, "%s:%lld", path, lineno);
    st = list_line(b, s, where);
  }
  if (st == VP_OK && ferror(f)) st = vp_fail(VP_ERR_IO, "%s: read error", path);
  free(line);
  fclose(f);
  return st;
}

/* ---- entry points ------------------------------------------------------------ */

void vp_case_list_free(vp_case_list *l) {
  if (!l) return;
  size_t nimg = (size_t)l->num_cases * (size_t)l->num_modalities;
  for (size_t i = 0; l->images && i < nimg; i++) free(l->images[i]);
  for (int64_t i = 0; l->labels && i < l->num_cases; i++) free(l->labels[i]);
  free(l->images);
  free(l->labels);
  free(l->source);
  memset(l, 0, sizeof *l);
}

static int nonempty(const char *s) { return s && *s; }

vp_status vp_case_list_build(const vp_dataset_opts *o, vp_case_list *out) {
  memset(out, 0, sizeof *out);
  int nsrc = nonempty(o->dataset_json) + nonempty(o->image_glob) + nonempty(o->file_list);
  if (nsrc != 1)
    return vp_fail(VP_ERR_INVALID_ARG,
                   "dataset: give exactly one of dataset_json, image_glob (with root) and "
                   "file_list (%d given)",
                   nsrc);
  if (o->split && !nonempty(o->dataset_json))
    return vp_fail(VP_ERR_INVALID_ARG, "dataset: split \"%s\" applies to dataset_json only",
                   o->split);
  if (o->split && !*o->split) return vp_fail(VP_ERR_INVALID_ARG, "dataset: split is empty");
  if ((o->root || o->label_glob) && !nonempty(o->image_glob))
    return vp_fail(VP_ERR_INVALID_ARG, "dataset: root and label_glob need image_glob");

  const char *src = o->dataset_json ? o->dataset_json : o->file_list;
  char *dir = NULL;
  if (nonempty(o->image_glob)) {
    dir = strdup("");
    size_t n = strlen(o->image_glob) + (o->root ? strlen(o->root) : 0) + 2;
    out->source = malloc(n);
    if (out->source)
      snprintf(out->source, n, "%s%s%s", o->root ? o->root : "", o->root ? "/" : "", o->image_glob);
  } else {
    dir = dir_of(src);
    out->source = strdup(src);
  }
  if (!dir || !out->source) {
    free(dir);
    vp_case_list_free(out);
    return vp_fail(VP_ERR_NOMEM, "dataset: out of memory");
  }
  /* The cases have labels when the first one has: add_case allocates the
   * label table then, and later cases must agree with it. */
  builder b = {.l = out, .base_dir = dir};
  vp_status st;
  if (nonempty(o->dataset_json))
    st = from_json(&b, o->dataset_json, o->split);
  else if (nonempty(o->file_list))
    st = from_file_list(&b, o->file_list);
  else
    st = from_globs(&b, o);
  if (st == VP_OK && out->num_cases == 0)
    st = vp_fail(VP_ERR_FORMAT, "%s: the dataset has no case", out->source);
  free(dir);
  if (st != VP_OK) vp_case_list_free(out);
  return st;
}
