/*
 * test_demo.c - `vgpool demo` works right after the build, with no setup,
 * shows what it promises, leaves nothing behind, and fails loudly when
 * vgpool does not enforce the quotas (it doubles as a smoke test).
 *
 * The demo runs the whole stack: the simulated driver, libvgpool.so,
 * `vgpool run` and `vgpool top`, and the workload tools. The first test runs
 * it exactly as the README's `make demo` does (default duration, clean
 * environment but for TMPDIR, which keeps its temporary node inside this
 * test's directory so we can see that it is removed). The second runs a
 * copy of the vgpool binary in a fake build tree whose "libvgpool.so" is
 * the C library, which enforces nothing: the demo must notice.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clitest.h"
#include "vgp_test.h"

/* The demo's own variables that would change what it runs; the demo clears
 * these itself, and the tests clear them too so a failure points at the
 * demo and not at the test's environment. */
static void demo_env(const char *tmpdir) {
  static const char *const unset[] = {"VGPOOL_SIM_STATE",     "VGPOOL_SIM_DEVICES",
                                      "VGPOOL_SIM_CONFIG",    "VGPOOL_ROOT",
                                      "VGPOOL_CONTAINER_DIR", "VGPOOL_LIB",
                                      "LD_PRELOAD",           "CUDA_VISIBLE_DEVICES"};
  for (size_t i = 0; i < sizeof(unset) / sizeof(unset[0]); i++)
    unsetenv(unset[i]);
  setenv("TMPDIR", tmpdir, 1);
  unsetenv("NO_COLOR");
}

/* Entries of dir whose names start with "vgpool-demo-". */
static int demo_leftovers(const char *dir) {
  DIR *d = opendir(dir);
  int n = 0;
  struct dirent *e;
  ASSERT_NOT_NULL(d);
  while ((e = readdir(d)) != NULL)
    if (strncmp(e->d_name, "vgpool-demo-", 12) == 0)
      n++;
  closedir(d);
  return n;
}

/* Checks that no line of text is wider than 80 columns and that it holds
 * no escape sequences (stdout was not a terminal). */
static void assert_plain_80(const char *text) {
  const char *line = text;
  while (*line != '\0') {
    size_t n = strcspn(line, "\n");
    if (n > 80)
      vgp_test_fail(__FILE__, __LINE__, "line wider than 80 columns: %.*s", (int)n, line);
    line += n + (line[n] == '\n');
  }
  ASSERT_NULL(strchr(text, '\033'));
}

VGP_TEST_TIMEOUT(demo_runs_and_cleans_up, 150) {
  char tmp[PATH_MAX];
  snprintf(tmp, sizeof(tmp), "%s/tmp", vgp_test_tmpdir());
  ASSERT_OK(mkdir(tmp, 0700));
  demo_env(tmp);

  int status = cli_vgpool("demo", NULL);
  if (status != 0)
    vgp_test_fail(__FILE__, __LINE__, "vgpool demo exited %d\nstdout:\n%s\nstderr:\n%s",
                  status, cli_out, cli_err);
  /* What it is about, the three workloads and their commands. */
  ASSERT_CONTAINS(cli_out, "three workloads share one GPU");
  ASSERT_CONTAINS(cli_out, "$ vgpool run --name training --memory 40GiB");
  ASSERT_CONTAINS(cli_out, "$ vgpool run --name inference --memory 16GiB");
  ASSERT_CONTAINS(cli_out, "$ vgpool run --name notebook --memory 8GiB");
  /* The views while they ran: the driver's, vgpool's, and inside. */
  ASSERT_CONTAINS(cli_out, "NVIDIA H100 80GB HBM3");
  ASSERT_CONTAINS(cli_out, "CONTAINER   MEMORY USED / QUOTA");
  ASSERT_CONTAINS(cli_out, "  notebook     7.25 GiB / 8 GiB             1");
  ASSERT_CONTAINS(cli_out, "  training    30.50 GiB / 40 GiB            0");
  ASSERT_CONTAINS(cli_out, "  inference    8.50 GiB / 16 GiB            0");
  ASSERT_CONTAINS(cli_out, "exactly what the driver counts");
  ASSERT_CONTAINS(cli_out, "  training    40 GiB\n  inference   16 GiB\n  notebook    8 GiB\n");
  /* The results: two got all they asked for, one was refused as intended. */
  ASSERT_CONTAINS(cli_out, "  training   40 GiB  30 GiB     30 GiB  ok, got all it asked for");
  ASSERT_CONTAINS(cli_out, "  inference  16 GiB  8 GiB      8 GiB   ok, got all it asked for");
  ASSERT_CONTAINS(cli_out, "  notebook   8 GiB   12 GiB     7 GiB   refused at its quota\n");
  ASSERT_CONTAINS(cli_out, "(CUDA_ERROR_OUT_OF_MEMORY), as intended");
  ASSERT_CONTAINS(cli_out, "all of the GPU's memory was free again");
  ASSERT_CONTAINS(cli_out, "vgpool run --memory 2GiB -- your-program");
  ASSERT_TRUE(strstr(cli_out, "FAILED") == NULL);
  ASSERT_EQ_STR(cli_err, "");
  assert_plain_80(cli_out);
  /* Its temporary node is gone. */
  ASSERT_EQ_INT(demo_leftovers(tmp), 0);
}

/* Copies the file at from to to, executable. */
static void copy_exe(const char *from, const char *to) {
  char buf[65536];
  int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0755);
  ssize_t n;
  ASSERT_GE_INT(in, 0);
  ASSERT_GE_INT(out, 0);
  while ((n = read(in, buf, sizeof(buf))) > 0)
    ASSERT_EQ_INT(write(out, buf, (size_t)n), n);
  ASSERT_EQ_INT(n, 0);
  close(in);
  ASSERT_OK(close(out));
}

/* Makes <tmp>/tree/src/{cli/vgpool,sim,work,hook/libvgpool.so} with the real
 * simulator and tools, and `lib` (NULL: none) as the interposer. Returns
 * the path of the vgpool copy. */
static const char *fake_tree(const char *lib, char *exe, size_t len) {
  char dir[PATH_MAX / 2], from[PATH_MAX], to[PATH_MAX];
  const char *parts[] = {"sim", "work"};
  snprintf(dir, sizeof(dir), "%s/tree", vgp_test_tmpdir());
  ASSERT_OK(mkdir(dir, 0755));
  snprintf(to, sizeof(to), "%s/src", dir);
  ASSERT_OK(mkdir(to, 0755));
  snprintf(to, sizeof(to), "%s/src/cli", dir);
  ASSERT_OK(mkdir(to, 0755));
  snprintf(to, sizeof(to), "%s/src/hook", dir);
  ASSERT_OK(mkdir(to, 0755));
  for (int i = 0; i < 2; i++) {
    snprintf(from, sizeof(from), "%s/src/%s", vgp_test_build_dir(), parts[i]);
    snprintf(to, sizeof(to), "%s/src/%s", dir, parts[i]);
    ASSERT_OK(symlink(from, to));
  }
  if (lib != NULL) {
    snprintf(to, sizeof(to), "%s/src/hook/libvgpool.so", dir);
    ASSERT_OK(symlink(lib, to));
  }
  snprintf(from, sizeof(from), "%s/src/cli/vgpool", vgp_test_build_dir());
  snprintf(exe, len, "%s/src/cli/vgpool", dir);
  copy_exe(from, exe);
  return exe;
}

/* Runs exe with args (NULL-terminated), stdout and stderr into cli_out and
 * cli_err; returns its exit status. */
static int run_exe(const char *exe, const char *a1, const char *a2, const char *a3) {
  char out[PATH_MAX], err[PATH_MAX];
  char *argv[] = {(char *)exe, (char *)a1, (char *)a2, (char *)a3, NULL};
  snprintf(out, sizeof(out), "%s/fake.out", vgp_test_tmpdir());
  snprintf(err, sizeof(err), "%s/fake.err", vgp_test_tmpdir());
  fflush(stdout);
  pid_t pid = fork();
  ASSERT_GE_INT(pid, 0);
  if (pid == 0) {
    int fo = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int fe = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fo < 0 || fe < 0 || dup2(fo, 1) < 0 || dup2(fe, 2) < 0)
      _exit(126);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    execv(exe, argv);
    _exit(125);
  }
  int status = vgp_test_wait(pid);
  vgp_test_read_file(out, cli_out, sizeof(cli_out));
  vgp_test_read_file(err, cli_err, sizeof(cli_err));
  return status;
}

VGP_TEST_TIMEOUT(demo_fails_when_quotas_are_not_enforced, 120) {
  char exe[PATH_MAX];
  demo_env(vgp_test_tmpdir());
  /* A "libvgpool.so" that enforces nothing: every workload sees the whole
   * GPU and the notebook gets all 12 GiB. */
  fake_tree(cli_harmless_lib(), exe, sizeof(exe));
  ASSERT_EQ_INT(run_exe(exe, "demo", "--duration", "3"), 1);
  ASSERT_CONTAINS(cli_out, "The demo FAILED");
  ASSERT_CONTAINS(cli_out, "notebook: was not refused at its 8 GiB quota: it got 12 GiB of");
  ASSERT_CONTAINS(cli_out, "training: cuMemGetInfo reported a total of");
  ASSERT_CONTAINS(cli_out, "  notebook   8 GiB   12 GiB     12 GiB  failed (see below)");
  ASSERT_TRUE(strstr(cli_out, "as intended") == NULL);
  ASSERT_EQ_INT(demo_leftovers(vgp_test_tmpdir()), 0);
}

VGP_TEST(demo_fails_without_its_parts) {
  char exe[PATH_MAX], dir[PATH_MAX];
  demo_env(vgp_test_tmpdir());
  /* No libvgpool.so: `vgpool run`'s own message is shown. */
  fake_tree(NULL, exe, sizeof(exe));
  ASSERT_EQ_INT(run_exe(exe, "demo", "--duration", "3"), 1);
  ASSERT_CONTAINS(cli_out, "The demo FAILED");
  ASSERT_CONTAINS(cli_out, "training: `vgpool run` exited with status 1 (expected 0)");
  ASSERT_CONTAINS(cli_out, "cannot find libvgpool.so");
  ASSERT_EQ_INT(demo_leftovers(vgp_test_tmpdir()), 0);

  /* No simulated driver: said before anything starts. */
  snprintf(dir, sizeof(dir), "%s/tree/src/sim", vgp_test_tmpdir());
  ASSERT_OK(unlink(dir));
  ASSERT_EQ_INT(run_exe(exe, "demo", NULL, NULL), 1);
  ASSERT_CONTAINS(cli_err, "cannot find the simulated driver");
  ASSERT_EQ_STR(cli_out, "");
  ASSERT_EQ_INT(demo_leftovers(vgp_test_tmpdir()), 0);
}

VGP_TEST(demo_usage) {
  ASSERT_EQ_INT(cli_vgpool("demo", "--help", NULL), 0);
  ASSERT_CONTAINS(cli_out, "usage: vgpool demo");
  ASSERT_EQ_INT(cli_vgpool("demo", "--bogus", NULL), 2);
  ASSERT_CONTAINS(cli_err, "'--bogus'");
  ASSERT_EQ_INT(cli_vgpool("demo", "--duration", "0", NULL), 2);
  ASSERT_CONTAINS(cli_err, "'0'");
  ASSERT_EQ_INT(cli_vgpool("demo", "--duration", NULL), 2);
  ASSERT_CONTAINS(cli_err, "--duration needs a value");
  /* The command list names it. */
  ASSERT_EQ_INT(cli_vgpool("--help", NULL), 0);
  ASSERT_CONTAINS(cli_out, "  demo ");
}
