/*
 * clitest.h - helpers shared by the tests of `vgpool run` and `vgpool top`.
 *
 * The tests run the built vgpool binary (<build>/src/cli/vgpool) as a user
 * would, against a private simulated GPU node and a private node directory
 * in the test's temporary directory. They do not need libvgpool.so: `run`
 * is given --lib with a library that is harmless to preload (the C
 * library itself), and what CMD sees is checked by CMD printing it.
 */
#ifndef VGP_TESTS_CLITEST_H
#define VGP_TESTS_CLITEST_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define CLI_OUT_MAX (256 * 1024)

/* What the last cli_vgpool() call printed. */
extern char cli_out[CLI_OUT_MAX];
extern char cli_err[CLI_OUT_MAX];

/* Selects a fresh simulated node with the given devices and a private
 * VGPOOL_ROOT, both in the test's temporary directory, and silences the
 * simulator's logging. */
void cli_node(const char *spec);

/* Runs `vgpool ARG...` (NULL-terminated) and waits; stdout and stderr land
 * in cli_out and cli_err. Returns its exit status (128+N if killed). */
int cli_vgpool(const char *arg, ...);

/* Starts `vgpool ARG...` in the background with stdout and stderr going to
 * out_path and err_path; returns its pid. */
pid_t cli_vgpool_bg(const char *out_path, const char *err_path, const char *arg, ...);

/* Absolute path of a library that is harmless to LD_PRELOAD (libc). */
const char *cli_harmless_lib(void);

/* Absolute path of a second harmless library (libm), for checking that an
 * existing LD_PRELOAD is kept. */
const char *cli_other_lib(void);

/* The UUID and memory size of device i of the simulated node (created from
 * the environment if needed). */
void cli_device(unsigned i, char *uuid, size_t len, uint64_t *ret_total);

/* <VGPOOL_ROOT>/containers, and how many entries it has (0 if missing). */
const char *cli_containers_dir(void);
int cli_count_containers(void);


/* 1 if the file exists. */
int cli_exists(const char *path);

/* The path of the running test executable, to run it as a helper. */
const char *cli_self(void);

#endif
