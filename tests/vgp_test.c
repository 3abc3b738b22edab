/*
 * vgp_test.c - the test runner linked into every test executable.
 *
 * Usage: <test-binary> [--list] [name ...]
 *        <test-binary> --helper <name> [args ...]   (used by vgp_test_spawn)
 *
 * Each selected test runs in a forked child with its own temporary directory
 * (VGP_TEST_TMPDIR) and a timeout (VGP_TEST_TIMEOUT_SCALE multiplies all
 * timeouts, for slow machines and valgrind). Output is TAP, which meson
 * understands (protocol: 'tap').
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vgp_test.h"

#define VGP_TEST_MAX 512
#define VGP_TEST_SKIP_STATUS 77

struct vgp_test_entry {
  const char *name;
  vgp_test_fn fn;
  int timeout_s;
};

struct vgp_helper_entry {
  const char *name;
  vgp_helper_fn fn;
};

static struct vgp_test_entry vgp__tests[VGP_TEST_MAX];
static int vgp__ntests;
static struct vgp_helper_entry vgp__helpers[VGP_TEST_MAX];
static int vgp__nhelpers;
static char vgp__tmpdir[PATH_MAX];
static char vgp__self[PATH_MAX];

void vgp_test_register(const char *name, vgp_test_fn fn, int timeout_s) {
  if (vgp__ntests < VGP_TEST_MAX)
    vgp__tests[vgp__ntests++] = (struct vgp_test_entry){name, fn, timeout_s};
}

void vgp_helper_register(const char *name, vgp_helper_fn fn) {
  if (vgp__nhelpers < VGP_TEST_MAX)
    vgp__helpers[vgp__nhelpers++] = (struct vgp_helper_entry){name, fn};
}

const char *vgp_test_tmpdir(void) { return vgp__tmpdir; }

const char *vgp_test_build_dir(void) {
  const char *dir = getenv("VGPOOL_BUILD_DIR");
  return dir != NULL ? dir : ".";
}

void vgp_test_read_file(const char *path, char *buf, size_t len) {
  size_t used = 0;
  ssize_t n;
  int fd = open(path, O_RDONLY | O_CLOEXEC);

  buf[0] = '\0';
  if (fd < 0)
    return;
  while (used + 1 < len && (n = read(fd, buf + used, len - 1 - used)) > 0)
    used += (size_t)n;
  buf[used] = '\0';
  close(fd);
}

void vgp_test_fail(const char *file, int line, const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "# FAIL %s:%d: ", file, line);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\n");
  fflush(stderr);
  _exit(1);
}

void vgp_test_skip(const char *reason) {
  fprintf(stderr, "# SKIP %s\n", reason);
  fflush(stderr);
  _exit(VGP_TEST_SKIP_STATUS);
}

pid_t vgp_test_spawnv(const char *name, char *const argv[]) {
  char *args[64];
  int n = 0;
  args[n++] = vgp__self;
  args[n++] = "--helper";
  args[n++] = (char *)name;
  for (int i = 0; argv != NULL && argv[i] != NULL && n < 63; i++)
    args[n++] = argv[i];
  args[n] = NULL;
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid == 0) {
    execv(vgp__self, args);
    _exit(127);
  }
  return pid;
}

pid_t vgp_test_spawn(const char *name, ...) {
  char *argv[60];
  int n = 0;
  va_list ap;
  va_start(ap, name);
  for (char *a; n < 59 && (a = va_arg(ap, char *)) != NULL;)
    argv[n++] = a;
  va_end(ap);
  argv[n] = NULL;
  return vgp_test_spawnv(name, argv);
}

int vgp_test_wait(pid_t pid) {
  int status;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR)
      return -1;
  }
  if (WIFEXITED(status))
    return WEXITSTATUS(status);
  if (WIFSIGNALED(status))
    return 128 + WTERMSIG(status);
  return -1;
}

static double vgp__timeout_scale(void) {
  const char *s = getenv("VGP_TEST_TIMEOUT_SCALE");
  double v = s != NULL ? atof(s) : 1.0;
  return v > 0 ? v : 1.0;
}

static void vgp__rm_rf(const char *dir) {
  pid_t pid = fork();
  if (pid == 0) {
    execlp("rm", "rm", "-rf", dir, (char *)NULL);
    _exit(127);
  }
  if (pid > 0)
    vgp_test_wait(pid);
}

/* Runs one test in a child; returns 0 pass, 1 fail, 2 skip. */
static int vgp__run_one(const struct vgp_test_entry *t) {
  char base[PATH_MAX];
  const char *tmp = getenv("TMPDIR");
  snprintf(base, sizeof(base), "%s/vgp-test-%s-XXXXXX", tmp ? tmp : "/tmp",
           t->name);
  if (mkdtemp(base) == NULL) {
    fprintf(stderr, "# cannot create temporary directory: %s\n",
            strerror(errno));
    return 1;
  }
  snprintf(vgp__tmpdir, sizeof(vgp__tmpdir), "%s", base);
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid == 0) {
    /* The test and its helpers form one process group, so a timeout can
     * kill stragglers too. */
    setpgid(0, 0);
    setenv("VGP_TEST_TMPDIR", vgp__tmpdir, 1);
    t->fn();
    fflush(stdout);
    _exit(0);
  }
  setpgid(pid, pid);
  int timeout_ms = (int)(t->timeout_s * 1000 * vgp__timeout_scale());
  int status = 0, done = 0;
  struct timespec start, now;
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (;;) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      done = 1;
      break;
    }
    clock_gettime(CLOCK_MONOTONIC, &now);
    long elapsed = (now.tv_sec - start.tv_sec) * 1000 +
                   (now.tv_nsec - start.tv_nsec) / 1000000;
    if (elapsed > timeout_ms)
      break;
    usleep(elapsed < 100 ? 1000 : 10000);
  }
  int result;
  if (!done) {
    kill(-pid, SIGKILL);
    waitpid(pid, &status, 0);
    fprintf(stderr, "# test %s timed out after %d ms\n", t->name, timeout_ms);
    result = 1;
  } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    result = 0;
  } else if (WIFEXITED(status) && WEXITSTATUS(status) == VGP_TEST_SKIP_STATUS) {
    result = 2;
  } else {
    if (WIFSIGNALED(status))
      fprintf(stderr, "# test %s died with signal %d\n", t->name,
              WTERMSIG(status));
    result = 1;
  }
  /* Reap helpers the test left behind. */
  kill(-pid, SIGKILL);
  if (getenv("VGP_TEST_KEEP_TMP") == NULL)
    vgp__rm_rf(vgp__tmpdir);
  return result;
}

int main(int argc, char **argv) {
  ssize_t n = readlink("/proc/self/exe", vgp__self, sizeof(vgp__self) - 1);
  if (n < 0) {
    perror("readlink /proc/self/exe");
    return 1;
  }
  vgp__self[n] = '\0';
  setvbuf(stdout, NULL, _IOLBF, 0);

  if (argc >= 3 && strcmp(argv[1], "--helper") == 0) {
    const char *tmp = getenv("VGP_TEST_TMPDIR");
    if (tmp != NULL)
      snprintf(vgp__tmpdir, sizeof(vgp__tmpdir), "%s", tmp);
    for (int i = 0; i < vgp__nhelpers; i++)
      if (strcmp(vgp__helpers[i].name, argv[2]) == 0)
        return vgp__helpers[i].fn(argc - 3, argv + 3);
    fprintf(stderr, "unknown helper %s\n", argv[2]);
    return 127;
  }
  if (argc >= 2 && strcmp(argv[1], "--list") == 0) {
    for (int i = 0; i < vgp__ntests; i++)
      printf("%s\n", vgp__tests[i].name);
    return 0;
  }

  int selected[VGP_TEST_MAX], nsel = 0;
  for (int i = 0; i < vgp__ntests; i++) {
    int want = argc < 2;
    for (int a = 1; a < argc && !want; a++)
      want = strcmp(argv[a], vgp__tests[i].name) == 0;
    if (want)
      selected[nsel++] = i;
  }
  if (argc >= 2 && nsel == 0) {
    fprintf(stderr, "no test matches the given names (try --list)\n");
    return 1;
  }
  printf("TAP version 13\n1..%d\n", nsel);
  int failed = 0, skipped = 0;
  for (int k = 0; k < nsel; k++) {
    const struct vgp_test_entry *t = &vgp__tests[selected[k]];
    int r = vgp__run_one(t);
    if (r == 1)
      failed++;
    if (r == 2)
      skipped++;
    printf("%s %d - %s%s\n", r == 1 ? "not ok" : "ok", k + 1, t->name,
           r == 2 ? " # SKIP" : "");
  }
  printf("# %d passed, %d failed, %d skipped\n", nsel - failed - skipped,
         failed, skipped);
  return failed ? 1 : 0;
}
