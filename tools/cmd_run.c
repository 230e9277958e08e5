/* voxpipe run PIPELINE.json: build a pipeline from a file, run it, report
 * throughput, optionally save outputs and previews. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli.h"

static int usage(FILE *f, int rc) {
  fprintf(f,
          "usage: voxpipe run PIPELINE.json [--iterations N] [--device cpu|gpu[:N]]\n"
          "                   [--threads N] [--batch-size N] [--seed S] [--save DIR]\n"
          "  Builds the pipeline of a pipeline file (docs/pipelines.md), runs N batches\n"
          "  (default 100) with a progress line and prints samples/s and voxels/s.\n"
          "  --save DIR writes every output of the first batch as .nii.gz, and a PNG\n"
          "  preview of the first output (with the second as labels when it has 3 axes).\n");
  return rc;
}

/* SIGINT / SIGTERM: the loop stops after the batch in flight, the pipeline
 * is destroyed (its workers joined) and the command exits 130. A second
 * signal takes the default action (SA_RESETHAND), for a pipeline stuck in a
 * batch. */
static volatile sig_atomic_t g_interrupted;

static void on_signal(int sig) { g_interrupted = sig; }

static void catch_signals(int on) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sigemptyset(&sa.sa_mask);
  sa.sa_handler = on ? on_signal : SIG_DFL;
  sa.sa_flags = on ? SA_RESETHAND : 0;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static char *read_text(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "voxpipe run: %s: cannot open: %s\n", path, strerror(errno));
    return NULL;
  }
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  if (n < 0 || n > (64L << 20)) {
    fprintf(stderr, "voxpipe run: %s: not a pipeline file (size %ld)\n", path, n);
    fclose(f);
    return NULL;
  }
  char *s = malloc((size_t)n + 1);
  if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
    free(s);
    s = NULL;
  }
  fclose(f);
  if (!s) {
    fprintf(stderr, "voxpipe run: %s: read error\n", path);
    return NULL;
  }
  s[n] = '\0';
  return s;
}

/* Saves output k of sample 0 (copied to the host when on the GPU). */
static int save_outputs(const char *dir, vp_tensor **outs, int nout, int batch) {
  if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
    fprintf(stderr, "voxpipe run: --save %s: %s\n", dir, strerror(errno));
    return 1;
  }
  vp_tensor *host[2] = {NULL, NULL};
  int rc = 0;
  for (int k = 0; k < nout && rc == 0; k++) {
    vp_tensor *t = outs[k * batch];
    vp_tensor *h = NULL;
    if (vp_tensor_memkind(t) == VP_MEM_DEVICE) {
      if (vp_tensor_copy_to(t, VP_MEM_HOST, 0, &h) != VP_OK) return cli_fail("run: --save");
    } else {
      vp_tensor_retain(t);
      h = t;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/output%d_sample0.nii.gz", dir, k);
    if (vp_save(path, h, NULL) != VP_OK) {
      rc = cli_fail("run: --save");
    } else {
      printf("saved %s\n", path);
    }
    if (k < 2) {
      host[k] = h;
    } else {
      vp_tensor_release(h);
    }
  }
  if (rc == 0 && host[0] && vp_tensor_ndim(host[0]) >= 2) {
    const vp_tensor *lbl = host[1] && vp_tensor_ndim(host[1]) == 3 ? host[1] : NULL;
    char png[4096];
    snprintf(png, sizeof png, "%s/preview.png", dir);
    rc = cli_write_preview(png, host[0], lbl, 0);
    if (rc == 0) printf("saved %s\n", png);
  }
  vp_tensor_release(host[0]);
  vp_tensor_release(host[1]);
  return rc;
}

int cmd_run(int argc, char **argv) {
  const char *file = NULL, *save = NULL;
  long iterations = 100;
  char over[512] = "{";
  size_t olen = 1;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) return usage(stdout, 0);
    if (a[0] == '-' && !v) {
      fprintf(stderr, "voxpipe run: %s needs a value\n", a);
      return 2;
    }
    char *end = NULL;
    if (!strcmp(a, "--iterations")) {
      iterations = strtol(v, &end, 10);
      if (*end || iterations < 1) {
        fprintf(stderr, "voxpipe run: --iterations '%s' is not a positive integer\n", v);
        return 2;
      }
      i++;
    } else if (!strcmp(a, "--device")) {
      long dev = -1;
      if (!strcmp(v, "cpu")) {
        dev = -1;
      } else if (!strcmp(v, "gpu")) {
        dev = 0;
      } else if (!strncmp(v, "gpu:", 4)) {
        dev = strtol(v + 4, &end, 10);
        if (*end || dev < 0) dev = -2;
      } else {
        dev = -2;
      }
      if (dev < -1) {
        fprintf(stderr, "voxpipe run: --device '%s' is not cpu, gpu or gpu:N\n", v);
        return 2;
      }
      olen += (size_t)snprintf(over + olen, sizeof over - olen, "%s\"device\": %ld",
                               olen > 1 ? ", " : "", dev);
      i++;
    } else if (!strcmp(a, "--threads") || !strcmp(a, "--batch-size") || !strcmp(a, "--seed")) {
      unsigned long long n = strtoull(v, &end, 10);
      if (*end || v[0] == '-' || (strcmp(a, "--seed") && (n < 1 || n > 1u << 20))) {
        fprintf(stderr, "voxpipe run: %s '%s' is not a valid number\n", a, v);
        return 2;
      }
      const char *key = !strcmp(a, "--threads") ? "num_threads"
                        : !strcmp(a, "--seed")  ? "seed"
                                                : "batch_size";
      olen += (size_t)snprintf(over + olen, sizeof over - olen, "%s\"%s\": %llu",
                               olen > 1 ? ", " : "", key, n);
      i++;
    } else if (!strcmp(a, "--save")) {
      save = v;
      i++;
    } else if (a[0] == '-') {
      fprintf(stderr, "voxpipe run: unknown option '%s'\n", a);
      return usage(stderr, 2);
    } else if (!file) {
      file = a;
    } else {
      fprintf(stderr, "voxpipe run: unexpected argument '%s'\n", a);
      return usage(stderr, 2);
    }
  }
  if (!file) return usage(stderr, 2);
  snprintf(over + olen, sizeof over - olen, "}");
  char *text = read_text(file);
  if (!text) return 1;
  vp_pipeline *p = NULL;
  g_interrupted = 0;
  catch_signals(1); /* from here a signal stops the command cleanly */
  vp_status s = vp_pipeline_from_json(text, file, over, &p);
  free(text);
  if (s != VP_OK) {
    catch_signals(0);
    return cli_fail("run");
  }
  int nout = vp_pipeline_num_outputs(p), batch = vp_pipeline_batch_size(p);
  vp_tensor **outs = calloc((size_t)nout * (size_t)batch, sizeof *outs);
  if (!outs) {
    vp_pipeline_destroy(p);
    fprintf(stderr, "voxpipe run: out of memory\n");
    return 1;
  }
  int rc = 0;
  double t0 = now_s(), t_first = 0;
  long samples = 0, epochs = 0, done = 0;
  double voxels = 0;
  for (long it = 0; it < iterations && !g_interrupted; it++) {
    int end = 0;
    if (vp_pipeline_run(p, outs, &end) != VP_OK) {
      rc = cli_fail("run");
      break;
    }
    if (g_interrupted) {
      for (int i = 0; i < nout * batch; i++) {
        vp_tensor_release(outs[i]);
        outs[i] = NULL;
      }
      break;
    }
    done = it + 1;
    if (it == 0) t_first = now_s();
    epochs += end;
    samples += batch;
    for (int i = 0; i < batch; i++) voxels += (double)vp_tensor_numel(outs[i]);
    if (it == 0 && save) rc = save_outputs(save, outs, nout, batch);
    for (int i = 0; i < nout * batch; i++) {
      vp_tensor_release(outs[i]);
      outs[i] = NULL;
    }
    if (rc) break;
    cli_progress("batches", it + 1, iterations);
  }
  double t1 = now_s();
  if (g_interrupted && rc == 0) {
    fprintf(stderr, "%svoxpipe run: interrupted after %ld of %ld batches\n", done ? "\n" : "",
            done, iterations);
    rc = 130;
  }
  if (rc == 0) {
    /* the first batch includes start-up (threads, first reads): report it apart */
    double steady = t1 - t_first;
    long steady_samples = samples - batch;
    printf("%ld batches of %d (%ld samples, %ld epoch ends) in %.3f s; first batch %.3f s\n",
           iterations, batch, samples, epochs, t1 - t0, t_first - t0);
    if (steady_samples > 0 && steady > 0)
      printf("steady state: %.1f samples/s, %.3g voxels/s (first output)\n",
             (double)steady_samples / steady, voxels * (double)steady_samples / (double)samples / steady);
  }
  size_t cbytes;
  int64_t centries;
  uint64_t chits, cmisses;
  if (rc == 0 && vp_pipeline_cache_stats(p, &cbytes, &centries, &chits, &cmisses) == VP_OK &&
      chits + cmisses > 0)
    printf("reader cache: %lld cases, %.1f MiB; %llu hits, %llu misses\n", (long long)centries,
           (double)cbytes / 1048576.0, (unsigned long long)chits, (unsigned long long)cmisses);
  free(outs);
  vp_pipeline_destroy(p);
  catch_signals(0);
  return rc;
}
