/*
 * clitest.c - helpers for the CLI tests (see clitest.h).
 */
#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clitest.h"
#include "node.h"
#include "vgp_test.h"

char cli_out[CLI_OUT_MAX];
char cli_err[CLI_OUT_MAX];

int cli_exists(const char *path) { return access(path, F_OK) == 0; }

void cli_node(const char *spec) {
  char path[PATH_MAX];
  snprintf(path, sizeof(path), "%s/node.state", vgp_test_tmpdir());
  setenv("VGPOOL_SIM_STATE", path, 1);
  setenv("VGPOOL_SIM_DEVICES", spec, 1);
  unsetenv("VGPOOL_SIM_CONFIG");
  setenv("VGPOOL_LOG", "off", 1);
  snprintf(path, sizeof(path), "%s/root", vgp_test_tmpdir());
  setenv("VGPOOL_ROOT", path, 1);
  snprintf(path, sizeof(path), "%s/src/sim", vgp_test_build_dir());
  setenv("LD_LIBRARY_PATH", path, 1);
  unsetenv("VGPOOL_LIB");
  unsetenv("LD_PRELOAD");
  unsetenv("CUDA_VISIBLE_DEVICES");
}

/* Builds argv for the vgpool binary from a NULL-terminated va_list. */
static void cli_argv(char *exe, size_t exelen, char **argv, int max, const char *first,
                     va_list ap) {
  int n = 0;
  snprintf(exe, exelen, "%s/src/cli/vgpool", vgp_test_build_dir());
  argv[n++] = exe;
  for (const char *a = first; a != NULL; a = va_arg(ap, const char *)) {
    if (n >= max - 1)
      vgp_test_fail(__FILE__, __LINE__, "too many arguments for vgpool");
    argv[n++] = (char *)a;
  }
  argv[n] = NULL;
}

static pid_t cli_start(char **argv, const char *out, const char *err) {
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid == 0) {
    /* vgpool gets the signal state a shell would give it, whatever the
     * test runner's was: nothing ignored or blocked. */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    int fo = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int fe = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fo < 0 || fe < 0)
      _exit(126);
    dup2(fo, 1);
    dup2(fe, 2);
    execv(argv[0], argv);
    _exit(125);
  }
  ASSERT_GT_INT(pid, 0);
  return pid;
}

int cli_vgpool(const char *arg, ...) {
  char exe[PATH_MAX], out[PATH_MAX], err[PATH_MAX];
  char *argv[48];
  va_list ap;
  va_start(ap, arg);
  cli_argv(exe, sizeof(exe), argv, 48, arg, ap);
  va_end(ap);
  snprintf(out, sizeof(out), "%s/stdout", vgp_test_tmpdir());
  snprintf(err, sizeof(err), "%s/stderr", vgp_test_tmpdir());
  int status = vgp_test_wait(cli_start(argv, out, err));
  vgp_test_read_file(out, cli_out, sizeof(cli_out));
  vgp_test_read_file(err, cli_err, sizeof(cli_err));
  if (status == 125)
    vgp_test_fail(__FILE__, __LINE__, "cannot run %s", exe);
  return status;
}

pid_t cli_vgpool_bg(const char *out_path, const char *err_path, const char *arg, ...) {
  char exe[PATH_MAX];
  char *argv[48];
  va_list ap;
  va_start(ap, arg);
  cli_argv(exe, sizeof(exe), argv, 48, arg, ap);
  va_end(ap);
  return cli_start(argv, out_path, err_path);
}

/* The real path of the file that defines `symbol` in library `soname`. */
static const char *cli_lib_of(const char *soname, const char *symbol, char *buf, size_t len) {
  void *h = dlopen(soname, RTLD_NOW | RTLD_NOLOAD);
  if (h == NULL)
    h = dlopen(soname, RTLD_NOW);
  ASSERT_NOT_NULL(h);
  void *sym = dlsym(h, symbol);
  ASSERT_NOT_NULL(sym);
  Dl_info info;
  ASSERT_TRUE(dladdr(sym, &info) != 0 && info.dli_fname != NULL);
  char real[PATH_MAX];
  ASSERT_NOT_NULL(realpath(info.dli_fname, real));
  snprintf(buf, len, "%s", real);
  return buf;
}

const char *cli_harmless_lib(void) {
  static char path[PATH_MAX];
  if (path[0] == '\0')
    cli_lib_of("libc.so.6", "printf", path, sizeof(path));
  return path;
}

const char *cli_other_lib(void) {
  static char path[PATH_MAX];
  if (path[0] == '\0')
    cli_lib_of("libm.so.6", "cos", path, sizeof(path));
  return path;
}

void cli_device(unsigned i, char *uuid, size_t len, uint64_t *ret_total) {
  struct vgp_sim_handle h;
  char err[512];
  if (vgp_sim_open(&h, err, sizeof(err)) < 0)
    vgp_test_fail(__FILE__, __LINE__, "cannot open the simulated node: %s", err);
  ASSERT_LT_INT(i, h.node->device_count);
  snprintf(uuid, len, "%s", h.node->cfg[i].uuid);
  if (ret_total != NULL)
    *ret_total = h.node->cfg[i].total_memory;
  vgp_sim_close(&h);
}

const char *cli_containers_dir(void) {
  static char path[PATH_MAX];
  snprintf(path, sizeof(path), "%s/containers", getenv("VGPOOL_ROOT"));
  return path;
}

int cli_count_containers(void) {
  DIR *d = opendir(cli_containers_dir());
  if (d == NULL)
    return 0;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
      n++;
  closedir(d);
  return n;
}

const char *cli_self(void) {
  static char path[PATH_MAX];
  if (path[0] == '\0') {
    ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
    ASSERT_GT_INT(n, 0);
    path[n] = '\0';
  }
  return path;
}
