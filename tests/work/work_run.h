/*
 * work_run.h - running the workload tools against a private simulated node.
 *
 * The workload tests treat vgpool-burn and vgpool-alloc as black boxes, the
 * way a user or a later integration test would: each run is a real process
 * with LD_LIBRARY_PATH pointing at the simulated driver, a node state file
 * private to the test (so tests run side by side), and its stdout and stderr
 * captured for the asserts. The tools' --json summaries are read with the
 * small field extractors below.
 */
#ifndef VGP_WORK_RUN_H
#define VGP_WORK_RUN_H

#include <stddef.h>
#include <sys/types.h>

#define VGP_WT_OUT_MAX 65536

struct vgp_wt_result {
  int status;                 /* exit status, or 128 + signal */
  char out[VGP_WT_OUT_MAX];   /* stdout, truncated and terminated */
  char err[VGP_WT_OUT_MAX];   /* stderr, truncated and terminated */
};

/* Selects the simulated node of this test: a device spec such as
 * "1xH100-80GB", or (spec == NULL) a config file with the given text.
 * The state file is <tmpdir>/sim.state either way. */
void vgp_wt_use_node(const char *spec, const char *config_text);

/* Sets (value != NULL) or unsets an extra environment variable for the
 * tools started from now on (at most a few). */
void vgp_wt_env(const char *name, const char *value);

/* Runs <build>/src/work/<tool> with the arguments (NULL-terminated) and
 * waits for it. Fails the test when the tool cannot be started. */
void vgp_wt_run(struct vgp_wt_result *res, const char *tool, ...);

/* Starts the tool in the background with the arguments argv (without the
 * program name, NULL-terminated), stdout and stderr going to out_path;
 * returns its pid. */
pid_t vgp_wt_spawn(const char *tool, const char *out_path, const char *const *argv);


/* Returns the number after "key": in a JSON text; fails the test when the
 * key is missing or not a number. */
double vgp_wt_json_num(const char *json, const char *key);

/* Copies the string after "key": (unescaped text up to the closing quote)
 * into buf; fails the test when missing. Returns buf. */
const char *vgp_wt_json_str(const char *json, const char *key, char *buf, size_t len);

/* Fails the test with the tool's output when the exit status differs. */
void vgp_wt_expect_status(const struct vgp_wt_result *res, int status, const char *file,
                          int line);

#define VGP_WT_EXPECT_STATUS(res, st) vgp_wt_expect_status((res), (st), __FILE__, __LINE__)

#endif
