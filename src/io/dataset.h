/* The dataset reader's internals: the case list (src/io/dataset_list.c)
 * and the order / shard / epoch arithmetic (src/io/dataset.c).
 *
 * Threading: one vp_dataset is used by one thread at a time (the executor
 * calls vp_dataset_next from one thread). vp_dataset_load only reads the
 * case list, so several threads may load cases of one dataset at once as
 * long as no thread calls vp_dataset_next/seek/destroy meanwhile. */
#ifndef VP_IO_DATASET_H
#define VP_IO_DATASET_H

#include <stdint.h>

#include "voxpipe.h"

/* Which files make each case, as resolved (and checked) at open. */
typedef struct vp_case_list {
  int64_t num_cases;
  int num_modalities;
  char **images; /* num_cases * num_modalities paths, case-major */
  char **labels; /* num_cases paths, or NULL when the cases have no labels */
  /* Names the source in messages: the json or list file, or root/glob. */
  char *source;
} vp_case_list;

/* Builds the case list from the one source that o names, resolves relative
 * paths, and checks that every file is a regular file and that modality
 * and label counts agree. On failure *out is left empty (freeing it is a
 * no-op). */
vp_status vp_case_list_build(const vp_dataset_opts *o, vp_case_list *out);
void vp_case_list_free(vp_case_list *l);

/* Fixed Philox op id of the dataset shuffle ("dset"), so its stream never
 * meets an operator's under the same seed. */
#define VP_DATASET_RNG_OP 0x64736574u

/* The permutation of epoch `epoch` of `n` cases (Fisher-Yates on Philox):
 * a pure function of (seed, epoch, n). order must hold n values. */
void vp_dataset_permutation(uint64_t seed, int64_t epoch, int64_t n, int64_t *order);
/* The shard's epoch size in a given epoch (vp_dataset_epoch_size reads the
 * dataset's current epoch, which the executor's producer moves). */
int64_t vp_dataset_epoch_size_at(const vp_dataset *d, int64_t epoch);

#endif
