/* Pipeline files: a full file gives the batches of the same graph built
 * through the C API; relative paths, overrides, a region of interest; and
 * each kind of error names the file and the key. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pipeline_testlib.h"

static uint64_t g_seed;
static char g_name[600]; /* <tmp>/t.json: paths in the files are relative to <tmp> */

static int setup(void **state) {
  (void)state;
  g_seed = vp_test_seed() & 0x7fffffffffffull;
  pt_make_dataset(vp_test_path("jc"), 5, -1, g_seed);
  snprintf(g_name, sizeof g_name, "%s", vp_test_path("t.json"));
  alarm(600);
  return 0;
}

static const char *k_full =
    "{\n"
    "  \"pipeline\": {\"batch_size\": 3, \"num_threads\": 2, \"device\": -1, \"seed\": %llu,\n"
    "               \"prefetch_queue_depth\": 2, \"skip_bad_samples\": false},\n"
    "  \"reader\": {\"root\": \"jc\", \"image_glob\": \"img_*.npy\", \"label_glob\": "
    "\"lbl_*.npy\",\n"
    "             \"shuffle\": true, \"outputs\": [\"image\", \"label\"]},\n"
    "  \"nodes\": [\n"
    "    {\"op\": \"uniform\", \"args\": {\"range\": [0.1, 2]}, \"outputs\": [\"sd\"]},\n"
    "    {\"op\": \"coin_flip\", \"outputs\": [\"fl\"]},\n"
    "    {\"op\": \"flip\", \"device\": \"cpu\", \"inputs\": [\"image\"],\n"
    "     \"args\": {\"horizontal\": {\"node\": \"fl\"}}, \"outputs\": [\"img_f\"]},\n"
    "    {\"op\": \"gaussian_noise\", \"inputs\": [\"img_f\"], \"args\": {\"stddev\": {\"node\": "
    "\"sd\"}},\n"
    "     \"outputs\": [\"img_n\"]},\n"
    "    {\"op\": \"cast\", \"inputs\": [\"label\"], \"args\": {\"dtype\": \"int32\"}, "
    "\"outputs\": "
    "[\"lbl\"]}\n"
    "  ],\n"
    "  \"outputs\": [\"img_n\", \"lbl\", \"sd\"]\n"
    "}\n";

/* The same graph through the C API. */
static vp_pipeline *same_in_c(void) {
  vp_pipeline_opts o;
  vp_pipeline_opts_init(&o);
  o.batch_size = 3;
  o.num_threads = 1;
  o.seed = g_seed;
  vp_pipeline *p = NULL;
  VP_ASSERT_OK(vp_pipeline_create(&o, &p));
  vp_dataset_opts d;
  pt_dataset_opts(&d, vp_test_path("jc"));
  d.shuffle = 1;
  d.seed = g_seed; /* a file's reader shuffles with the pipeline's seed */
  VP_ASSERT_OK(vp_pipeline_add_reader(p, &d, NULL, "image", "label"));
  const char *none[1] = {NULL};
  const char *o0[] = {"sd"}, *o1[] = {"fl"}, *in2[] = {"image"}, *o2[] = {"img_f"},
             *o3[] = {"img_n"}, *in4[] = {"label"}, *o4[] = {"lbl"};
  VP_ASSERT_OK(vp_pipeline_add_node(p, "uniform", "cpu", 0, none, "{\"range\": [0.1, 2]}", 1, o0));
  VP_ASSERT_OK(vp_pipeline_add_node(p, "coin_flip", "cpu", 0, none, NULL, 1, o1));
  VP_ASSERT_OK(vp_pipeline_add_node(p, "flip", "cpu", 1, in2,
                                    "{\"horizontal\": {\"node\": \"fl\"}}", 1, o2));
  VP_ASSERT_OK(vp_pipeline_add_node(p, "gaussian_noise", "cpu", 1, o2,
                                    "{\"stddev\": {\"node\": \"sd\"}}", 1, o3));
  VP_ASSERT_OK(vp_pipeline_add_node(p, "cast", "cpu", 1, in4, "{\"dtype\": \"int32\"}", 1, o4));
  const char *outs[] = {"img_n", "lbl", "sd"};
  VP_ASSERT_OK(vp_pipeline_set_outputs(p, 3, outs));
  VP_ASSERT_OK(vp_pipeline_build(p));
  return p;
}

static char *full_text(void) {
  size_t n = strlen(k_full) + 64;
  char *t = (char *)malloc(n);
  snprintf(t, n, k_full, (unsigned long long)g_seed);
  return t;
}

static void test_full_file(void **state) {
  (void)state;
  char *text = full_text();
  vp_pipeline *p = NULL, *c = same_in_c();
  VP_ASSERT_OK(vp_pipeline_from_json(text, g_name, NULL, &p));
  assert_int_equal(vp_pipeline_batch_size(p), 3);
  assert_int_equal(vp_pipeline_num_outputs(p), 3);
  assert_int_equal(vp_pipeline_epoch_size(p), 5);
  for (int b = 0; b < 7; b++) {
    int e1 = -1, e2 = -1;
    uint64_t h1 = pt_run_hash(p, &e1), h2 = pt_run_hash(c, &e2);
    if (h1 != h2) fail_msg("batch %d: the file's pipeline differs from the C API's", b);
    assert_int_equal(e1, e2);
  }
  vp_pipeline_destroy(p);
  vp_pipeline_destroy(c);

  /* overrides replace "pipeline" keys */
  VP_ASSERT_OK(vp_pipeline_from_json(text, g_name, "{\"batch_size\": 2, \"num_threads\": 1}", &p));
  assert_int_equal(vp_pipeline_batch_size(p), 2);
  (void)pt_run_hash(p, NULL);
  vp_pipeline_destroy(p);
  free(text);
}

static void test_roi_and_defaults(void **state) {
  (void)state;
  const char *text =
      "{\"reader\": {\"root\": \"jc\", \"image_glob\": \"img_*.npy\",\n"
      "  \"roi\": {\"start\": [-1, 0, 0], \"shape\": [4, 4, 4], \"oob\": \"pad\", \"fill\": 7}},\n"
      " \"outputs\": [\"image\"]}";
  vp_pipeline *p = NULL;
  VP_ASSERT_OK(vp_pipeline_from_json(text, g_name, NULL, &p));
  assert_int_equal(vp_pipeline_batch_size(p), 1);
  vp_tensor *out[1];
  VP_ASSERT_OK(vp_pipeline_run(p, out, NULL));
  const int64_t *sh = vp_tensor_shape(out[0]);
  assert_int_equal(vp_tensor_ndim(out[0]), 4);
  assert_true(sh[0] == 1 && sh[1] == 4 && sh[2] == 4 && sh[3] == 4);
  /* depth -1 lies outside: filled with 7 */
  assert_true(((const float *)vp_tensor_data(out[0]))[0] == 7.0f);
  vp_tensor_release(out[0]);
  vp_pipeline_destroy(p);
}

/* from_json fails and the message holds every part. */
static void expect(const char *text, const char *over, const char *const *parts) {
  vp_pipeline *p = (vp_pipeline *)1;
  vp_status s = vp_pipeline_from_json(text, g_name, over, &p);
  if (s == VP_OK) fail_msg("accepted: %s", text);
  assert_null(p);
  const char *msg = vp_last_error();
  for (int i = 0; parts[i]; i++)
    if (!strstr(msg, parts[i])) fail_msg("'%s' is not in the message: %s", parts[i], msg);
}

#define READER "\"reader\": {\"root\": \"jc\", \"image_glob\": \"img_*.npy\"}"

static void test_errors_point_at_keys(void **state) {
  (void)state;
  {
    const char *w[] = {"t.json: line 1", NULL};
    expect("{\"pipeline\": ", NULL, w);
  }
  {
    const char *w[] = {"t.json: pipelin: unknown key", "pipeline, reader, nodes, outputs", NULL};
    expect("{\"pipelin\": {}}", NULL, w);
  }
  {
    const char *w[] = {"t.json: pipeline.batch_size: 0 is outside [1, ", NULL};
    expect("{\"pipeline\": {\"batch_size\": 0}, " READER ", \"outputs\": [\"image\"]}", NULL, w);
  }
  {
    const char *w[] = {"t.json: pipeline.seed: expected an integer, got \"x\"", NULL};
    expect("{\"pipeline\": {\"seed\": \"x\"}, " READER ", \"outputs\": [\"image\"]}", NULL, w);
  }
  {
    const char *w[] = {"t.json: pipeline.skip_bad_samples: expected true or false", NULL};
    expect("{\"pipeline\": {\"skip_bad_samples\": 3}, " READER ", \"outputs\": [\"image\"]}", NULL,
           w);
  }
  {
    const char *w[] = {"t.json: reader: needs exactly one source", NULL};
    expect("{\"reader\": {\"image_glob\": \"*.npy\"}, \"outputs\": [\"image\"]}", NULL, w);
  }
  {
    const char *w[] = {"t.json: reader.shufle: unknown key", NULL};
    expect(
        "{\"reader\": {\"root\": \"jc\", \"image_glob\": \"img_*.npy\", \"shufle\": true}, "
        "\"outputs\": [\"image\"]}",
        NULL, w);
  }
  {
    const char *w[] = {"t.json: reader.roi.oob: \"wrap\" is not one of error, pad, trim", NULL};
    expect(
        "{\"reader\": {\"root\": \"jc\", \"image_glob\": \"img_*.npy\", \"roi\": {\"shape\": "
        "[2, 2, 2], \"oob\": \"wrap\"}}, \"outputs\": [\"image\"]}",
        NULL, w);
  }
  {
    const char *w[] = {"t.json: reader.roi.start: has 2 values but shape has 3", NULL};
    expect(
        "{\"reader\": {\"root\": \"jc\", \"image_glob\": \"img_*.npy\", \"roi\": {\"shape\": "
        "[2, 2, 2], \"start\": [0, 0]}}, \"outputs\": [\"image\"]}",
        NULL, w);
  }
  {
    const char *w[] = {"t.json: reader", "nope", NULL};
    expect(
        "{\"reader\": {\"root\": \"nope\", \"image_glob\": \"img_*.npy\"}, \"outputs\": "
        "[\"image\"]}",
        NULL, w);
  }
  {
    const char *w[] = {"t.json: nodes[0].args.p: 1.5 is outside [0, 1]", NULL};
    expect("{" READER
           ", \"nodes\": [{\"op\": \"gaussian_noise\", \"inputs\": [\"image\"], "
           "\"args\": {\"p\": 1.5}, \"outputs\": [\"n\"]}], \"outputs\": [\"n\"]}",
           NULL, w);
  }
  {
    const char *w[] = {"t.json: nodes[1].op: unknown operator 'flop'", NULL};
    expect("{" READER
           ", \"nodes\": [{\"op\": \"flip\", \"inputs\": [\"image\"], \"outputs\": "
           "[\"a\"]}, {\"op\": \"flop\", \"inputs\": [\"a\"], \"outputs\": [\"b\"]}], "
           "\"outputs\": [\"b\"]}",
           NULL, w);
  }
  {
    const char *w[] = {"t.json: nodes[0].op: is required", NULL};
    expect("{" READER ", \"nodes\": [{\"outputs\": [\"a\"]}], \"outputs\": [\"a\"]}", NULL, w);
  }
  {
    const char *w[] = {"t.json: nodes[0].args.q: flip has no argument 'q'", NULL};
    expect("{" READER
           ", \"nodes\": [{\"op\": \"flip\", \"inputs\": [\"image\"], \"args\": "
           "{\"q\": 1}, \"outputs\": [\"a\"]}], \"outputs\": [\"a\"]}",
           NULL, w);
  }
  {
    const char *w[] = {"t.json: nodes[0].inputs[0]: unknown output 'img'", "(known: image)", NULL};
    expect("{" READER
           ", \"nodes\": [{\"op\": \"flip\", \"inputs\": [\"img\"], \"outputs\": "
           "[\"a\"]}], \"outputs\": [\"a\"]}",
           NULL, w);
  }
  {
    const char *w[] = {
        "t.json: nodes[1].outputs[0]: 'a' is already the name of an output of "
        "node 0 (flip)",
        NULL};
    expect("{" READER
           ", \"nodes\": [{\"op\": \"flip\", \"inputs\": [\"image\"], \"outputs\": "
           "[\"a\"]}, {\"op\": \"flip\", \"inputs\": [\"a\"], \"outputs\": [\"a\"]}], "
           "\"outputs\": [\"a\"]}",
           NULL, w);
  }
  {
    const char *w[] = {
        "t.json: nodes[1].args.dtype: cast's argument 'dtype' cannot vary per "
        "sample",
        NULL};
    expect("{" READER
           ", \"nodes\": [{\"op\": \"uniform\", \"outputs\": [\"u\"]}, {\"op\": "
           "\"cast\", \"inputs\": [\"image\"], \"args\": {\"dtype\": {\"node\": \"u\"}}, "
           "\"outputs\": [\"a\"]}], \"outputs\": [\"a\"]}",
           NULL, w);
  }
  {
    const char *w[] = {"t.json: nodes[0].device: 'tpu' is neither", NULL};
    expect("{" READER
           ", \"nodes\": [{\"op\": \"flip\", \"device\": \"tpu\", \"inputs\": "
           "[\"image\"], \"outputs\": [\"a\"]}], \"outputs\": [\"a\"]}",
           NULL, w);
  }
  {
    const char *w[] = {"t.json: nodes[0].colour: unknown key", NULL};
    expect("{" READER
           ", \"nodes\": [{\"op\": \"flip\", \"colour\": 1, \"inputs\": [\"image\"], "
           "\"outputs\": [\"a\"]}], \"outputs\": [\"a\"]}",
           NULL, w);
  }
  {
    /* device -1 (CPU only): "gpu" nodes run on the CPU, as `voxpipe run --device cpu` asks */
    vp_pipeline *p = NULL;
    VP_ASSERT_OK(vp_pipeline_from_json(
        "{" READER
        ", \"nodes\": [{\"op\": \"flip\", \"device\": \"gpu\", \"inputs\": "
        "[\"image\"], \"outputs\": [\"a\"]}], \"outputs\": [\"a\"]}",
        g_name, "{\"device\": -1}", &p));
    vp_tensor *out[1] = {NULL};
    VP_ASSERT_OK(vp_pipeline_run(p, out, NULL));
    assert_int_equal(vp_tensor_memkind(out[0]), VP_MEM_HOST);
    vp_tensor_release(out[0]);
    vp_pipeline_destroy(p);
  }
  {
    const char *w[] = {"t.json: outputs[0]: unknown output 'x'", NULL};
    expect("{" READER ", \"outputs\": [\"x\"]}", NULL, w);
  }
  {
    const char *w[] = {"t.json: outputs: is required", NULL};
    expect("{" READER "}", NULL, w);
  }
  {
    const char *w[] = {"overrides.batch_size: 0 is outside", NULL};
    expect("{" READER ", \"outputs\": [\"image\"]}", "{\"batch_size\": 0}", w);
  }
  {
    const char *w[] = {"overrides: colour: unknown key", NULL};
    expect("{" READER ", \"outputs\": [\"image\"]}", "{\"colour\": 0}", w);
  }
  {
    const char *w[] = {"overrides: line 1", NULL};
    expect("{" READER ", \"outputs\": [\"image\"]}", "{", w);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_full_file),
      cmocka_unit_test(test_roi_and_defaults),
      cmocka_unit_test(test_errors_point_at_keys),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
