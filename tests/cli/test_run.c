/*
 * test_run.c - `vgpool run` writes the limits the user asked for, gives CMD
 * exactly the environment libvgpool.so expects, passes CMD's fate back as
 * its exit status, cleans up after it, and refuses bad input by name.
 *
 * CMD is a shell that prints what it was given (its limits file and the
 * three variables), so nothing here needs libvgpool.so; the library named
 * with --lib is the C library, which is harmless to preload.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clitest.h"
#include "region.h"
#include "vgp_test.h"
#include "vgpool/limits.h"

#define GiB (1ull << 30)
#define MiB (1ull << 20)

/* CMD for the tests: prints the limits file, then one line per variable. */
static const char *show_env =
    "cat \"$VGPOOL_CONTAINER_DIR/limits\"; "
    "echo \"cvd=$CUDA_VISIBLE_DEVICES\"; "
    "echo \"pre=$LD_PRELOAD\"; "
    "echo \"dir=$VGPOOL_CONTAINER_DIR\"; "
    "echo \"mode=$(stat -c %a \"$VGPOOL_CONTAINER_DIR/limits\")\"; "
    "test -f \"$VGPOOL_CONTAINER_DIR/region\" && echo region=yes";

/* Parses the limits file CMD printed at the start of cli_out. */
static void printed_limits(struct vgp_limits *l) {
  char err[512];
  const char *end = strstr(cli_out, "\ncvd=");
  ASSERT_NOT_NULL(end);
  int r = vgp_limits_parse(cli_out, (size_t)(end + 1 - cli_out), l, err, sizeof(err));
  if (r < 0)
    vgp_test_fail(__FILE__, __LINE__, "limits do not parse: %s\n%s", err, cli_out);
}

/* The value of "key=" on its own line of cli_out. */
static const char *printed(const char *key, char *buf, size_t len) {
  char want[64];
  snprintf(want, sizeof(want), "\n%s=", key);
  const char *p = strstr(cli_out, want);
  if (p == NULL)
    vgp_test_fail(__FILE__, __LINE__, "no %s= line in:\n%s", key, cli_out);
  p += strlen(want);
  size_t n = strcspn(p, "\n");
  snprintf(buf, len, "%.*s", (int)n, p);
  return buf;
}

VGP_TEST(run_writes_limits_and_sets_environment) {
  char u0[64], u1[64], buf[PATH_MAX * 2], want[PATH_MAX * 2];
  struct vgp_limits l;
  cli_node("2xH100-80GB");
  cli_device(0, u0, sizeof(u0), NULL);
  cli_device(1, u1, sizeof(u1), NULL);
  /* An LD_PRELOAD the user already has is kept, after ours. */
  setenv("LD_PRELOAD", cli_other_lib(), 1);

  ASSERT_EQ_INT(cli_vgpool("run", "--lib", cli_harmless_lib(), "--memory", "4GiB", "--cores",
                           "30", "--policy", "elastic", "--priority", "0", "--oversubscribe",
                           "--name", "train-1", "--", "sh", "-c", show_env, NULL),
                0);
  printed_limits(&l);
  ASSERT_EQ_STR(l.container, "train-1");
  ASSERT_EQ_INT(l.priority, 0);
  ASSERT_EQ_INT(l.oversubscribe, 1);
  ASSERT_EQ_INT(l.ndevices, 2);
  ASSERT_EQ_STR(l.dev[0].uuid, u0);
  ASSERT_EQ_STR(l.dev[1].uuid, u1);
  for (int d = 0; d < 2; d++) {
    ASSERT_EQ_U64(l.dev[d].memory, 4 * GiB);
    ASSERT_EQ_INT(l.dev[d].cores, 30);
    ASSERT_EQ_INT(l.dev[d].policy, VGP_POLICY_ELASTIC);
  }
  snprintf(want, sizeof(want), "%s,%s", u0, u1);
  ASSERT_EQ_STR(printed("cvd", buf, sizeof(buf)), want);
  snprintf(want, sizeof(want), "%s:%s", cli_harmless_lib(), cli_other_lib());
  ASSERT_EQ_STR(printed("pre", buf, sizeof(buf)), want);
  snprintf(want, sizeof(want), "%s/train-1", cli_containers_dir());
  ASSERT_EQ_STR(printed("dir", buf, sizeof(buf)), want);
  ASSERT_EQ_STR(printed("mode", buf, sizeof(buf)), "444");
  ASSERT_EQ_STR(printed("region", buf, sizeof(buf)), "yes");
  /* vgpool itself prints nothing when all is well. */
  ASSERT_EQ_STR(cli_err, "");
  ASSERT_EQ_INT(cli_count_containers(), 0);

  /* Defaults: no memory limit, cores 100, hard, priority 1, a generated
   * id; the same library is not listed twice. */
  setenv("LD_PRELOAD", cli_harmless_lib(), 1);
  ASSERT_EQ_INT(cli_vgpool("run", "--lib", cli_harmless_lib(), "sh", "-c", show_env, NULL), 0);
  printed_limits(&l);
  ASSERT_TRUE(strncmp(l.container, "run-", 4) == 0);
  ASSERT_EQ_INT(l.priority, 1);
  ASSERT_EQ_INT(l.oversubscribe, 0);
  ASSERT_EQ_INT(l.ndevices, 2);
  ASSERT_EQ_U64(l.dev[0].memory, 0);
  ASSERT_EQ_INT(l.dev[0].cores, 100);
  ASSERT_EQ_INT(l.dev[0].policy, VGP_POLICY_HARD);
  ASSERT_EQ_STR(printed("pre", buf, sizeof(buf)), cli_harmless_lib());
  snprintf(want, sizeof(want), "%s/%s", cli_containers_dir(), l.container);
  ASSERT_EQ_STR(printed("dir", buf, sizeof(buf)), want);

  /* VGPOOL_LIB names the library when --lib does not. */
  unsetenv("LD_PRELOAD");
  setenv("VGPOOL_LIB", cli_other_lib(), 1);
  ASSERT_EQ_INT(cli_vgpool("run", "--", "sh", "-c", show_env, NULL), 0);
  ASSERT_EQ_STR(printed("pre", buf, sizeof(buf)), cli_other_lib());
}

VGP_TEST(run_selects_devices_by_index_and_uuid) {
  char u[3][64], buf[512], want[512];
  struct vgp_limits l;
  cli_node("3xT4");
  for (unsigned i = 0; i < 3; i++)
    cli_device(i, u[i], sizeof(u[i]), NULL);

  /* Indices, in the order given. */
  ASSERT_EQ_INT(cli_vgpool("run", "--lib", cli_harmless_lib(), "--devices", "2,0", "--memory",
                           "1G", "--", "sh", "-c", show_env, NULL),
                0);
  printed_limits(&l);
  ASSERT_EQ_INT(l.ndevices, 2);
  ASSERT_EQ_STR(l.dev[0].uuid, u[2]);
  ASSERT_EQ_STR(l.dev[1].uuid, u[0]);
  ASSERT_EQ_U64(l.dev[0].memory, GiB);
  snprintf(want, sizeof(want), "%s,%s", u[2], u[0]);
  ASSERT_EQ_STR(printed("cvd", buf, sizeof(buf)), want);

  /* A full UUID, a prefix with "GPU-", a prefix without it; per-device
   * sizes by index and by UUID prefix, with a default for the rest. */
  char full[64], pre_gpu[32], pre_bare[32], sel[256], mem[256];
  snprintf(full, sizeof(full), "%s", u[1]);
  snprintf(pre_gpu, sizeof(pre_gpu), "%.12s", u[0]);
  snprintf(pre_bare, sizeof(pre_bare), "%.10s", u[2] + 4);
  snprintf(sel, sizeof(sel), "%s,%s,%s", full, pre_gpu, pre_bare);
  snprintf(mem, sizeof(mem), "1024M,0=2GiB,%s=3.5GiB", pre_bare);
  ASSERT_EQ_INT(cli_vgpool("run", "--lib", cli_harmless_lib(), "--devices", sel, "--memory", mem,
                           "--", "sh", "-c", show_env, NULL),
                0);
  printed_limits(&l);
  ASSERT_EQ_INT(l.ndevices, 3);
  ASSERT_EQ_STR(l.dev[0].uuid, u[1]);
  ASSERT_EQ_STR(l.dev[1].uuid, u[0]);
  ASSERT_EQ_STR(l.dev[2].uuid, u[2]);
  ASSERT_EQ_U64(l.dev[0].memory, GiB);
  ASSERT_EQ_U64(l.dev[1].memory, 2 * GiB);
  ASSERT_EQ_U64(l.dev[2].memory, 3 * GiB + GiB / 2);
  snprintf(want, sizeof(want), "%s,%s,%s", u[1], u[0], u[2]);
  ASSERT_EQ_STR(printed("cvd", buf, sizeof(buf)), want);

  /* Per-device sizes only: devices without one have no memory limit. */
  ASSERT_EQ_INT(cli_vgpool("run", "--lib", cli_harmless_lib(), "--memory=1=512MiB", "--", "sh",
                           "-c", show_env, NULL),
                0);
  printed_limits(&l);
  ASSERT_EQ_INT(l.ndevices, 3);
  ASSERT_EQ_U64(l.dev[0].memory, 0);
  ASSERT_EQ_U64(l.dev[1].memory, 512 * MiB);
  ASSERT_EQ_U64(l.dev[2].memory, 0);
}

VGP_TEST(run_clamps_quota_to_device_memory_with_warning) {
  char uuid[64];
  uint64_t total;
  struct vgp_limits l;
  cli_node("1xT4");
  cli_device(0, uuid, sizeof(uuid), &total);
  ASSERT_EQ_INT(cli_vgpool("run", "--lib", cli_harmless_lib(), "--memory", "1TiB", "--", "sh",
                           "-c", show_env, NULL),
                0);
  printed_limits(&l);
  ASSERT_EQ_U64(l.dev[0].memory, total);
  ASSERT_CONTAINS(cli_err, "warning");
  ASSERT_CONTAINS(cli_err, "'1TiB'");
  ASSERT_CONTAINS(cli_err, uuid);

  /* Exactly the device's size is not clamped and not warned about. */
  char exact[32];
  snprintf(exact, sizeof(exact), "%llu", (unsigned long long)total);
  ASSERT_EQ_INT(cli_vgpool("run", "--lib", cli_harmless_lib(), "--memory", exact, "--", "sh",
                           "-c", show_env, NULL),
                0);
  printed_limits(&l);
  ASSERT_EQ_U64(l.dev[0].memory, total);
  ASSERT_EQ_STR(cli_err, "");
}

VGP_TEST(run_exits_with_the_status_of_cmd) {
  cli_node("1xT4");
  const char *lib = cli_harmless_lib();
  ASSERT_EQ_INT(cli_vgpool("run", "--lib", lib, "--", "true", NULL), 0);
  ASSERT_EQ_INT(cli_vgpool("run", "--lib", lib, "--", "sh", "-c", "exit 7", NULL), 7);
  ASSERT_EQ_INT(cli_vgpool("run", "--lib", lib, "--", "sh", "-c", "exit 255", NULL), 255);
  ASSERT_EQ_INT(cli_vgpool("run", "--lib", lib, "--", "sh", "-c", "kill -TERM $$", NULL),
                128 + SIGTERM);
  ASSERT_EQ_INT(cli_vgpool("run", "--lib", lib, "--", "sh", "-c", "kill -KILL $$", NULL),
                128 + SIGKILL);
  /* CMD's output and arguments pass through untouched. */
  ASSERT_EQ_INT(cli_vgpool("run", "--lib", lib, "--", "echo", "a b", "--memory", NULL), 0);
  ASSERT_EQ_STR(cli_out, "a b --memory\n");
  /* Without "--", CMD starts at the first word that is not an option. */
  ASSERT_EQ_INT(cli_vgpool("run", "--lib", lib, "--cores", "50", "echo", "-n", "x", NULL), 0);
  ASSERT_EQ_STR(cli_out, "x");
  /* A command that cannot be run: 127, and its name in the message. */
  ASSERT_EQ_INT(cli_vgpool("run", "--lib", lib, "--", "no-such-command-vgp", NULL), 127);
  ASSERT_CONTAINS(cli_err, "'no-such-command-vgp'");
  ASSERT_CONTAINS(cli_err, "No such file or directory");
  ASSERT_EQ_INT(cli_count_containers(), 0);
}

VGP_TEST(run_forwards_signals_and_cleans_up) {
  char ready[PATH_MAX], script[PATH_MAX * 4], out[PATH_MAX], err[PATH_MAX];
  cli_node("1xT4");
  snprintf(out, sizeof(out), "%s/bg.out", vgp_test_tmpdir());
  snprintf(err, sizeof(err), "%s/bg.err", vgp_test_tmpdir());
  const int sigs[] = {SIGTERM, SIGINT, SIGHUP};
  for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
    /* CMD says it is ready (the file appears whole, by rename), then
     * waits; each signal makes it exit with a status of its own, so the
     * status shows that CMD got the signal. */
    snprintf(ready, sizeof(ready), "%s/ready.%zu", vgp_test_tmpdir(), i);
    int n = snprintf(script, sizeof(script),
             "trap 'exit 41' TERM; trap 'exit 42' INT; trap 'exit 43' HUP; "
             "echo \"$VGPOOL_CONTAINER_DIR\" > '%s.tmp' && mv '%s.tmp' '%s'; "
             "while :; do sleep 0.02; done",
             ready, ready, ready);
    ASSERT_LT_INT(n, (long long)sizeof(script));
    pid_t pid = cli_vgpool_bg(out, err, "run", "--lib", cli_harmless_lib(), "--name", "sig",
                              "--", "sh", "-c", script, NULL);
    VGP_WAIT_UNTIL(cli_exists(ready), 20000);
    char dir[PATH_MAX];
    vgp_test_read_file(ready, dir, sizeof(dir));
    dir[strcspn(dir, "\n")] = '\0';
    ASSERT_TRUE(cli_exists(dir));
    ASSERT_OK(kill(pid, sigs[i]));
    ASSERT_EQ_INT(vgp_test_wait(pid), 41 + (int)i);
    ASSERT_FALSE(cli_exists(dir));
  }
  ASSERT_EQ_INT(cli_count_containers(), 0);
}

VGP_TEST(run_keep_leaves_the_container_and_names_are_unique) {
  char path[PATH_MAX], err[512];
  cli_node("1xT4");
  ASSERT_EQ_INT(cli_vgpool("run", "--lib", cli_harmless_lib(), "--keep", "--name", "kept",
                           "--memory", "1GiB", "--", "true", NULL),
                0);
  ASSERT_CONTAINS(cli_err, "kept");
  struct vgp_limits l;
  snprintf(path, sizeof(path), "%s/kept/limits", cli_containers_dir());
  ASSERT_OK(vgp_limits_load(path, &l, err, sizeof(err)));
  ASSERT_EQ_U64(l.dev[0].memory, GiB);
  struct vgp__region h;
  snprintf(path, sizeof(path), "%s/kept/region", cli_containers_dir());
  ASSERT_OK(vgp__region_open(&h, path, 0, err, sizeof(err)));
  ASSERT_EQ_STR(h.r->container, "kept");
  ASSERT_EQ_U64(h.r->dev[0].limit, GiB);
  ASSERT_EQ_STR(h.r->dev[0].uuid, l.dev[0].uuid);
  vgp__region_close(&h);

  /* An id that exists is refused, and the existing container survives. */
  ASSERT_EQ_INT(cli_vgpool("run", "--lib", cli_harmless_lib(), "--name", "kept", "--", "true",
                           NULL),
                1);
  ASSERT_CONTAINS(cli_err, "'kept' already exists");
  ASSERT_TRUE(cli_exists(path));
  ASSERT_EQ_INT(cli_count_containers(), 1);
}

/* Runs `vgpool run` with the given options before "-- true", expects exit
 * status 2, a message containing `named`, and nothing created. */
#define REFUSED(named, ...)                                                    \
  do {                                                                         \
    ASSERT_EQ_INT(cli_vgpool("run", "--lib", cli_harmless_lib(), __VA_ARGS__, \
                             "--", "true", NULL),                              \
                  2);                                                          \
    ASSERT_CONTAINS(cli_err, named);                                           \
    ASSERT_EQ_STR(cli_out, "");                                                \
    ASSERT_EQ_INT(cli_count_containers(), 0);                                  \
  } while (0)

VGP_TEST(run_refuses_bad_input_by_name) {
  cli_node("2xT4");
  REFUSED("'4Gx'", "--memory", "4Gx");
  REFUSED("'-1'", "--memory", "-1");
  REFUSED("''", "--memory", "");
  REFUSED("'0'", "--memory", "0");
  REFUSED("'0GiB'", "--memory", "0GiB");
  REFUSED("'99999999999TiB'", "--memory", "99999999999TiB");
  REFUSED("'2GiB'", "--memory", "1GiB,2GiB");
  REFUSED("'x'", "--memory", "0=x");
  REFUSED("'5'", "--memory", "5=1GiB");
  REFUSED("'1'", "--devices", "0", "--memory", "1=1GiB");
  REFUSED("twice", "--memory", "0=1GiB,0=2GiB");
  REFUSED("'0'", "--cores", "0");
  REFUSED("'101'", "--cores", "101");
  REFUSED("'abc'", "--cores", "abc");
  REFUSED("'-5'", "--cores", "-5");
  REFUSED("'soft'", "--policy", "soft");
  REFUSED("'high'", "--priority", "high");
  REFUSED("'5000'", "--priority", "5000");
  REFUSED("'a/b'", "--name", "a/b");
  REFUSED("'..'", "--name", "..");
  REFUSED("''", "--name", "");
  REFUSED("'7'", "--devices", "7");
  REFUSED("'GPU-nope'", "--devices", "GPU-nope");
  REFUSED("twice", "--devices", "0,0");
  REFUSED("''", "--devices", "0,,1");
  REFUSED("''", "--devices", "");
  REFUSED("'--bogus'", "--bogus");
  REFUSED("'--memory'", "--keep", "--memory");

  /* A UUID prefix that fits several devices is ambiguous. */
  ASSERT_EQ_INT(cli_vgpool("run", "--lib", cli_harmless_lib(), "--devices", "GPU-", "--",
                           "true", NULL),
                2);
  ASSERT_CONTAINS(cli_err, "'GPU-'");
  ASSERT_CONTAINS(cli_err, "ambiguous");

  /* No command at all. */
  ASSERT_EQ_INT(cli_vgpool("run", "--lib", cli_harmless_lib(), "--memory", "1G", NULL), 2);
  ASSERT_CONTAINS(cli_err, "no command");
  ASSERT_EQ_INT(cli_vgpool("run", "--lib", cli_harmless_lib(), "--", NULL), 2);
  ASSERT_EQ_INT(cli_count_containers(), 0);

  ASSERT_EQ_INT(cli_vgpool("run", "--help", NULL), 0);
  ASSERT_CONTAINS(cli_out, "--memory SIZE");
}

VGP_TEST(run_without_nvml_or_library_fails_clearly) {
  char empty[PATH_MAX];
  cli_node("1xT4");

  /* No libnvidia-ml.so.1 to be found (unless this machine has a real
   * driver installed system-wide, which the test cannot hide). */
  snprintf(empty, sizeof(empty), "%s/empty", vgp_test_tmpdir());
  ASSERT_OK(mkdir(empty, 0755));
  setenv("LD_LIBRARY_PATH", empty, 1);
  int rc = cli_vgpool("run", "--lib", cli_harmless_lib(), "--", "true", NULL);
  if (rc == 0) {
    fprintf(stderr, "# a system NVML is installed; skipping the no-NVML case\n");
  } else {
    ASSERT_EQ_INT(rc, 1);
    ASSERT_CONTAINS(cli_err, "libnvidia-ml.so.1");
    ASSERT_CONTAINS(cli_err, "vgpool sim env");
    ASSERT_CONTAINS(cli_err, "LD_LIBRARY_PATH");
  }
  ASSERT_EQ_INT(cli_count_containers(), 0);

  /* NVML loads but cannot initialize (a broken simulated node). */
  cli_node("1xNOPE");
  ASSERT_EQ_INT(cli_vgpool("run", "--lib", cli_harmless_lib(), "--", "true", NULL), 1);
  ASSERT_CONTAINS(cli_err, "nvmlInit");
  ASSERT_EQ_INT(cli_count_containers(), 0);

  /* The library named does not exist. */
  cli_node("1xT4");
  ASSERT_EQ_INT(cli_vgpool("run", "--lib", "/nonexistent/libvgpool.so", "--", "true", NULL), 1);
  ASSERT_CONTAINS(cli_err, "'/nonexistent/libvgpool.so'");
  ASSERT_CONTAINS(cli_err, "--lib");
  setenv("VGPOOL_LIB", "/nonexistent/vgp.so", 1);
  ASSERT_EQ_INT(cli_vgpool("run", "--", "true", NULL), 1);
  ASSERT_CONTAINS(cli_err, "'/nonexistent/vgp.so'");
  ASSERT_CONTAINS(cli_err, "VGPOOL_LIB");
  unsetenv("VGPOOL_LIB");

  /* No library anywhere: only checkable while libvgpool.so is not built
   * beside vgpool. */
  char built[PATH_MAX];
  snprintf(built, sizeof(built), "%s/src/hook/libvgpool.so", vgp_test_build_dir());
  if (!cli_exists(built)) {
    ASSERT_EQ_INT(cli_vgpool("run", "--", "true", NULL), 1);
    ASSERT_CONTAINS(cli_err, "cannot find libvgpool.so");
    ASSERT_CONTAINS(cli_err, "--lib");
  }
  ASSERT_EQ_INT(cli_count_containers(), 0);
}
