/*
 * work_run.c - running the workload tools against a private simulated node
 * (see work_run.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vgp_test.h"
#include "work_run.h"

#define VGP_WT_MAX_ENV 8
#define VGP_WT_MAX_ARGS 48

struct vgp_wt_envvar {
  char name[64];
  char value[PATH_MAX];
  int set;
};

static char vgp__spec[128];
static char vgp__config[PATH_MAX];
static struct vgp_wt_envvar vgp__env[VGP_WT_MAX_ENV];
static int vgp__nenv;
static unsigned vgp__runs;

void vgp_wt_use_node(const char *spec, const char *config_text) {
  vgp__spec[0] = '\0';
  vgp__config[0] = '\0';
  if (spec != NULL) {
    snprintf(vgp__spec, sizeof(vgp__spec), "%s", spec);
    return;
  }
  snprintf(vgp__config, sizeof(vgp__config), "%s/node.conf", vgp_test_tmpdir());
  FILE *f = fopen(vgp__config, "w");
  if (f == NULL || fputs(config_text, f) < 0 || fclose(f) != 0)
    vgp_test_fail(__FILE__, __LINE__, "cannot write %s", vgp__config);
}

void vgp_wt_env(const char *name, const char *value) {
  int i;
  for (i = 0; i < vgp__nenv; i++)
    if (strcmp(vgp__env[i].name, name) == 0)
      break;
  if (i == vgp__nenv) {
    if (vgp__nenv == VGP_WT_MAX_ENV)
      vgp_test_fail(__FILE__, __LINE__, "too many extra environment variables");
    vgp__nenv++;
  }
  snprintf(vgp__env[i].name, sizeof(vgp__env[i].name), "%s", name);
  snprintf(vgp__env[i].value, sizeof(vgp__env[i].value), "%s", value ? value : "");
  vgp__env[i].set = value != NULL;
}

/* In the child: the environment of a tool run. */
static void vgp__child_env(void) {
  char buf[PATH_MAX];
  snprintf(buf, sizeof(buf), "%s/src/sim", vgp_test_build_dir());
  setenv("LD_LIBRARY_PATH", buf, 1);
  snprintf(buf, sizeof(buf), "%s/sim.state", vgp_test_tmpdir());
  setenv("VGPOOL_SIM_STATE", buf, 1);
  if (vgp__config[0] != '\0') {
    setenv("VGPOOL_SIM_CONFIG", vgp__config, 1);
    unsetenv("VGPOOL_SIM_DEVICES");
  } else {
    setenv("VGPOOL_SIM_DEVICES", vgp__spec[0] ? vgp__spec : "1xH100-80GB", 1);
    unsetenv("VGPOOL_SIM_CONFIG");
  }
  /* The tools must meet the simulator alone, whatever the caller runs. */
  unsetenv("LD_PRELOAD");
  unsetenv("VGPOOL_WORK_RESOLVE");
  unsetenv("VGPOOL_SIM_DRIVER_VERSION");
  for (int i = 0; i < vgp__nenv; i++) {
    if (vgp__env[i].set)
      setenv(vgp__env[i].name, vgp__env[i].value, 1);
    else
      unsetenv(vgp__env[i].name);
  }
}

static void vgp__tool_path(const char *tool, char *buf, size_t len) {
  snprintf(buf, len, "%s/src/work/%s", vgp_test_build_dir(), tool);
  if (access(buf, X_OK) != 0)
    vgp_test_fail(__FILE__, __LINE__, "%s is not built (%s)", buf, strerror(errno));
}

/* Forks and execs tool with argv (argv[0] filled in here), stdout to
 * out_path and stderr to err_path. */
static pid_t vgp__start(const char *tool, const char *const *args, const char *out_path,
                        const char *err_path) {
  char exe[PATH_MAX];
  char *argv[VGP_WT_MAX_ARGS + 2];
  int n = 0;

  vgp__tool_path(tool, exe, sizeof(exe));
  argv[n++] = exe;
  for (int i = 0; args != NULL && args[i] != NULL; i++) {
    if (n > VGP_WT_MAX_ARGS)
      vgp_test_fail(__FILE__, __LINE__, "too many arguments for %s", tool);
    argv[n++] = (char *)args[i];
  }
  argv[n] = NULL;
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0)
    vgp_test_fail(__FILE__, __LINE__, "fork: %s", strerror(errno));
  if (pid == 0) {
    int fo = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int fe = err_path != NULL ? open(err_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)
                              : fo;
    if (fo < 0 || fe < 0)
      _exit(126);
    dup2(fo, 1);
    dup2(fe, 2);
    vgp__child_env();
    execv(exe, argv);
    _exit(127);
  }
  return pid;
}

void vgp_wt_run(struct vgp_wt_result *res, const char *tool, ...) {
  const char *args[VGP_WT_MAX_ARGS + 1];
  char out[PATH_MAX], err[PATH_MAX];
  int n = 0;
  va_list ap;

  va_start(ap, tool);
  for (const char *a; (a = va_arg(ap, const char *)) != NULL;) {
    if (n == VGP_WT_MAX_ARGS)
      vgp_test_fail(__FILE__, __LINE__, "too many arguments for %s", tool);
    args[n++] = a;
  }
  va_end(ap);
  args[n] = NULL;

  unsigned run = ++vgp__runs;
  snprintf(out, sizeof(out), "%s/run%u.out", vgp_test_tmpdir(), run);
  snprintf(err, sizeof(err), "%s/run%u.err", vgp_test_tmpdir(), run);
  pid_t pid = vgp__start(tool, args, out, err);
  res->status = vgp_test_wait(pid);
  vgp_test_read_file(out, res->out, sizeof(res->out));
  vgp_test_read_file(err, res->err, sizeof(res->err));
  if (res->status == 126 || res->status == 127)
    vgp_test_fail(__FILE__, __LINE__, "cannot start %s (status %d)", tool, res->status);
  /* Show what ran in the TAP log; it is the first thing one wants when a
   * bound is missed. */
  fprintf(stderr, "# %s:", tool);
  for (int i = 0; i < n; i++)
    fprintf(stderr, " %s", args[i]);
  fprintf(stderr, " -> %d\n", res->status);
  if (res->out[0] != '\0')
    fprintf(stderr, "# %s%s", res->out, res->out[strlen(res->out) - 1] == '\n' ? "" : "\n");
}

pid_t vgp_wt_spawn(const char *tool, const char *out_path, const char *const *argv) {
  return vgp__start(tool, argv, out_path, NULL);
}

/* Finds the value after "key": in json. */
static const char *vgp__json_value(const char *json, const char *key) {
  char pat[128];
  snprintf(pat, sizeof(pat), "\"%s\":", key);
  const char *p = strstr(json, pat);
  if (p == NULL)
    return NULL;
  p += strlen(pat);
  while (*p == ' ')
    p++;
  return p;
}

double vgp_wt_json_num(const char *json, const char *key) {
  const char *p = vgp__json_value(json, key);
  char *end = NULL;
  double v = p != NULL ? strtod(p, &end) : 0;
  if (p == NULL || end == p)
    vgp_test_fail(__FILE__, __LINE__, "no number \"%s\" in: %s", key, json);
  return v;
}

const char *vgp_wt_json_str(const char *json, const char *key, char *buf, size_t len) {
  const char *p = vgp__json_value(json, key);
  size_t n = 0;
  if (p == NULL || *p != '"')
    vgp_test_fail(__FILE__, __LINE__, "no string \"%s\" in: %s", key, json);
  for (p++; *p != '\0' && *p != '"' && n + 1 < len; p++)
    buf[n++] = *p;
  buf[n] = '\0';
  return buf;
}

void vgp_wt_expect_status(const struct vgp_wt_result *res, int status, const char *file,
                          int line) {
  if (res->status != status)
    vgp_test_fail(file, line, "exit status %d, expected %d; stdout: %s; stderr: %s",
                  res->status, status, res->out, res->err);
}
