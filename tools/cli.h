/* The voxpipe command-line tool: one file per command, dispatched from
 * main.c. Commands use the public API only. */
#ifndef VP_TOOLS_CLI_H
#define VP_TOOLS_CLI_H

#include "voxpipe.h"

/* Each returns the process exit status: 0 ok, 1 bad input, 2 bad usage. */
int cmd_info(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_synth(int argc, char **argv);
int cmd_preview(int argc, char **argv);
int cmd_ops(int argc, char **argv);
int cmd_run(int argc, char **argv);

/* Prints "voxpipe: <what>: <library message>" to stderr and returns 1. */
int cli_fail(const char *what);
/* A one-line progress indicator on stderr ("\r<label> k/n"), only on a tty
 * or when VP_PROGRESS=1; done == total ends the line. */
void cli_progress(const char *label, long done, long total);

/* Writes a PNG montage of the middle slice of each channel (and, when label
 * is not NULL, that slice of the label map overlaid in colour) along axis
 * 0 (D), 1 (H) or 2 (W) of the spatial axes. */
int cli_write_preview(const char *png_path, const vp_tensor *image, const vp_tensor *label,
                      int axis);

/* Previews of the first sample after every stage of a pipeline file. */
int cli_preview_stages(const char *pipeline_file, const char *dir, int axis);
/* 1 when path is an existing directory. */
int cli_is_dir(const char *path);

#endif
