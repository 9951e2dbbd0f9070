/* files: what is wrong with a model directory or one of its files, said exactly ("no such
 * directory", "no such file", "permission denied"), so an operator's first message names the
 * real mistake instead of a later symptom. Knows nothing of formats. */
#ifndef INFERD_LOADER_FILES_H
#define INFERD_LOADER_FILES_H

#include "err.h"

/* 0 when dir is a directory this process may list and read; otherwise ERR_NOT_FOUND or
 * ERR_IO with "LABEL 'DIR': no such directory" (or "not a directory", "permission denied");
 * label names where dir came from ("models[0].path", "--model"). */
int files_check_dir(const char *dir, const char *label, struct err *e);

/* The error for a file that could not be opened or read, from errnum (an errno value):
 * "PATH: no such file" (ERR_NOT_FOUND), "PATH: permission denied", "PATH: is a directory",
 * else "PATH: cannot read: strerror" (ERR_IO). Returns the kind. */
int files_error(const char *path, int errnum, struct err *e);

#endif
