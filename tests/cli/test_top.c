/*
 * test_top.c - `vgpool top` shows the node's devices and every container
 * with its limits, usage and live processes; reclaims the slots of
 * processes that died; shows broken files as error lines; and refreshes
 * until interrupted.
 *
 * Container processes are this test binary run as a helper ("claim"): it
 * claims a slot in a region and charges device memory through the region
 * API, as libvgpool.so does for a CUDA allocation, so nothing here needs
 * the library.
 */
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
#include "region.h"
#include "vgp_test.h"
#include "vgpool/limits.h"

#define GiB (1ull << 30)
#define MiB (1ull << 20)

/* A process of a container: claim REGION DEV MIB READY. REGION "-" means
 * $VGPOOL_CONTAINER_DIR/region (when run by `vgpool run`). Claims a slot,
 * charges MIB on the region's device DEV, writes its pid to READY, and
 * waits to be killed. */
VGP_HELPER(claim) {
  char path[PATH_MAX], err[512], tmp[PATH_MAX + 8];
  struct vgp__region h;
  int slot;
  if (argc != 4)
    return 2;
  if (strcmp(argv[0], "-") == 0) {
    const char *dir = getenv("VGPOOL_CONTAINER_DIR");
    if (dir == NULL)
      return 3;
    snprintf(path, sizeof(path), "%s/region", dir);
  } else {
    snprintf(path, sizeof(path), "%s", argv[0]);
  }
  if (vgp__region_open(&h, path, 1, err, sizeof(err)) < 0) {
    fprintf(stderr, "claim: %s\n", err);
    return 4;
  }
  int r = vgp__region_claim(&h, &slot);
  if (r < 0) {
    fprintf(stderr, "claim: no slot in %s: %s\n", path, strerror(-r));
    return 5;
  }
  int dev = atoi(argv[1]);
  uint64_t limit = h.r->dev[dev].limit != 0 ? h.r->dev[dev].limit : VGP_REGION_NO_LIMIT;
  r = vgp__region_charge(&h, slot, dev, strtoull(argv[2], NULL, 10) * MiB, limit);
  if (r < 0) {
    fprintf(stderr, "claim: cannot charge %s MiB: %s\n", argv[2], strerror(-r));
    return 5;
  }
  /* The ready file appears whole (rename), so the test never reads half
   * a pid. */
  snprintf(tmp, sizeof(tmp), "%s.tmp", argv[3]);
  FILE *f = fopen(tmp, "w");
  if (f == NULL)
    return 6;
  fprintf(f, "%d", (int)getpid());
  if (fclose(f) != 0 || rename(tmp, argv[3]) != 0)
    return 6;
  for (;;)
    pause();
}

static int read_pid(const char *path) {
  char buf[32];
  vgp_test_read_file(path, buf, sizeof(buf));
  return atoi(buf);
}

/* Creates a container directory by hand, as the agent would: limits with
 * one device (the node's device 0) and its region. */
static void make_container(const char *id, uint64_t memory, char *region, size_t len) {
  char dir[PATH_MAX], path[PATH_MAX + 16];
  struct vgp_limits l;
  memset(&l, 0, sizeof(l));
  snprintf(l.container, sizeof(l.container), "%s", id);
  l.priority = 3;
  l.ndevices = 1;
  cli_device(0, l.dev[0].uuid, sizeof(l.dev[0].uuid), NULL);
  l.dev[0].memory = memory;
  l.dev[0].cores = 40;
  l.dev[0].policy = VGP_POLICY_HARD;
  snprintf(dir, sizeof(dir), "%s", getenv("VGPOOL_ROOT"));
  mkdir(dir, 0755);
  mkdir(cli_containers_dir(), 0755);
  snprintf(dir, sizeof(dir), "%s/%s", cli_containers_dir(), id);
  ASSERT_OK(mkdir(dir, 0755));
  snprintf(path, sizeof(path), "%s/limits", dir);
  ASSERT_OK(vgp_limits_save(path, &l));
  ASSERT_LT_INT(snprintf(region, len, "%s/region", dir), (long long)len);
  ASSERT_OK(vgp__region_create(region, &l));
}

VGP_TEST(top_shows_a_running_container_and_its_process) {
  char ready[PATH_MAX], out[PATH_MAX], err[PATH_MAX], want[512], uuid1[64];
  cli_node("2xH100-80GB");
  cli_device(1, uuid1, sizeof(uuid1), NULL);
  snprintf(ready, sizeof(ready), "%s/ready", vgp_test_tmpdir());
  snprintf(out, sizeof(out), "%s/run.out", vgp_test_tmpdir());
  snprintf(err, sizeof(err), "%s/run.err", vgp_test_tmpdir());

  pid_t run = cli_vgpool_bg(out, err, "run", "--lib", cli_harmless_lib(), "--memory", "2GiB",
                            "--cores", "25", "--priority", "0", "--policy", "elastic",
                            "--name", "web", "--devices", "1", "--", cli_self(), "--helper",
                            "claim", "-", "0", "512", ready, NULL);
  VGP_WAIT_UNTIL(cli_exists(ready), 20000);
  int pid = read_pid(ready);
  ASSERT_GT_INT(pid, 0);

  ASSERT_EQ_INT(cli_vgpool("top", "--once", NULL), 0);
  ASSERT_EQ_STR(cli_err, "");
  /* The devices, from NVML. */
  ASSERT_CONTAINS(cli_out, "NVIDIA H100 80GB HBM3");
  ASSERT_CONTAINS(cli_out, uuid1);
  ASSERT_CONTAINS(cli_out, "2.00 GiB (1)");
  /* The container: device 1, used / limit, peak, cores, achieved, policy,
   * priority. */
  ASSERT_CONTAINS(cli_out, "web ");
  ASSERT_CONTAINS(cli_out, "512.00 MiB / 2.00 GiB");
  ASSERT_CONTAINS(cli_out, "25%");
  ASSERT_CONTAINS(cli_out, "n/a");
  ASSERT_CONTAINS(cli_out, "elastic");
  /* Its process, with what it is charged on device 1. */
  snprintf(want, sizeof(want), "pid %-7d test_top", pid);
  ASSERT_CONTAINS(cli_out, want);
  ASSERT_CONTAINS(cli_out, "gpu1 512.00 MiB");
  ASSERT_FALSE(strstr(cli_out, "\033[") != NULL);

  ASSERT_EQ_INT(cli_vgpool("top", "--once", "--json", NULL), 0);
  ASSERT_EQ_INT(cli_out[0], '{');
  ASSERT_EQ_INT(cli_out[strlen(cli_out) - 1], '\n');
  ASSERT_EQ_INT(strchr(cli_out, '\n') - cli_out, (long long)strlen(cli_out) - 1);
  ASSERT_CONTAINS(cli_out, "\"nvml\": true");
  ASSERT_CONTAINS(cli_out, "\"name\": \"NVIDIA H100 80GB HBM3\"");
  ASSERT_CONTAINS(cli_out, "\"quota_total\": 2147483648, \"containers\": 1}");
  ASSERT_CONTAINS(cli_out, "{\"id\": \"web\", \"errors\": [], \"priority\": 0, "
                           "\"oversubscribe\": false, \"reclaimed\": 0");
  snprintf(want, sizeof(want),
           "{\"uuid\": \"%s\", \"index\": 1, \"memory_limit\": 2147483648, "
           "\"memory_used\": 536870912, \"memory_peak\": 536870912, \"oom_events\": 0, "
           "\"cores\": 25, \"policy\": \"elastic\", \"achieved_share\": null}",
           uuid1);
  ASSERT_CONTAINS(cli_out, want);
  snprintf(want, sizeof(want),
           "\"processes\": [{\"pid\": %d, \"host_pid\": %d, \"comm\": \"test_top\", "
           "\"memory_used\": [536870912]}]",
           pid, pid);
  ASSERT_CONTAINS(cli_out, want);

  /* SIGTERM to vgpool run reaches the process (which dies of it); the
   * container is gone afterwards. */
  ASSERT_OK(kill(run, SIGTERM));
  ASSERT_EQ_INT(vgp_test_wait(run), 128 + SIGTERM);
  ASSERT_EQ_INT(cli_vgpool("top", "--once", NULL), 0);
  ASSERT_CONTAINS(cli_out, "No containers.");
  ASSERT_EQ_INT(cli_vgpool("top", "--once", "--json", NULL), 0);
  ASSERT_CONTAINS(cli_out, "\"containers\": []}");
}

VGP_TEST(top_reclaims_the_slots_of_dead_processes) {
  char region[PATH_MAX], ready[PATH_MAX], want[128], err[512];
  cli_node("1xT4");
  make_container("c1", GiB, region, sizeof(region));
  snprintf(ready, sizeof(ready), "%s/ready", vgp_test_tmpdir());
  pid_t pid = vgp_test_spawn("claim", region, "0", "256", ready, NULL);
  VGP_WAIT_UNTIL(cli_exists(ready), 20000);
  ASSERT_EQ_INT(read_pid(ready), pid);

  snprintf(want, sizeof(want), "pid %-7d ", (int)pid);
  ASSERT_EQ_INT(cli_vgpool("top", "--once", NULL), 0);
  ASSERT_CONTAINS(cli_out, want);
  ASSERT_CONTAINS(cli_out, "256.00 MiB / 1.00 GiB");
  ASSERT_FALSE(strstr(cli_out, "reclaimed") != NULL);

  ASSERT_OK(kill(pid, SIGKILL));
  ASSERT_EQ_INT(vgp_test_wait(pid), 128 + SIGKILL);
  /* Nobody has looked yet: the dead process still holds its slot and its
   * charge. */
  struct vgp__region h;
  ASSERT_OK(vgp__region_open(&h, region, 0, err, sizeof(err)));
  int slot = -1;
  for (int s = 0; s < VGP_REGION_MAX_PROCS; s++)
    if (h.r->slots[s].state == VGP_REGION_SLOT_ACTIVE && h.r->slots[s].pid == pid)
      slot = s;
  ASSERT_GE_INT(slot, 0);
  ASSERT_EQ_U64(h.r->dev[0].used, 256 * MiB);

  ASSERT_EQ_INT(cli_vgpool("top", "--once", NULL), 0);
  ASSERT_CONTAINS(cli_out, "reclaimed 1 slot of dead processes");
  ASSERT_FALSE(strstr(cli_out, want) != NULL);
  ASSERT_CONTAINS(cli_out, "0 B / 1.00 GiB");
  ASSERT_CONTAINS(cli_out, "256.00 MiB"); /* the peak stays */
  ASSERT_EQ_U64(h.r->slots[slot].state, VGP_REGION_SLOT_FREE);
  ASSERT_EQ_U64(h.r->slots[slot].used[0], 0);
  ASSERT_EQ_U64(h.r->dev[0].used, 0);
  ASSERT_EQ_U64(h.r->dev[0].peak, 256 * MiB);
  vgp__region_close(&h);

  ASSERT_EQ_INT(cli_vgpool("top", "--once", "--json", NULL), 0);
  ASSERT_CONTAINS(cli_out, "\"reclaimed\": 0");
  ASSERT_CONTAINS(cli_out, "\"memory_used\": 0, \"memory_peak\": 268435456");
  ASSERT_CONTAINS(cli_out, "\"processes\": []");
}

static void write_file(const char *path, const void *data, size_t len) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ASSERT_GE_INT(fd, 0);
  ASSERT_EQ_INT(write(fd, data, len), (long long)len);
  ASSERT_OK(close(fd));
}

VGP_TEST(top_shows_broken_files_as_error_lines) {
  char region[PATH_MAX], path[PATH_MAX * 2], want[PATH_MAX * 3];
  cli_node("1xT4");
  make_container("a-good", GiB, region, sizeof(region));

  /* A foreign file where the region should be. */
  make_container("b-foreign", GiB, region, sizeof(region));
  ASSERT_OK(unlink(region));
  static const char foreign[] =
      "this is not a region, but a file someone else left at this path, long enough "
      "to hold a header\n";
  write_file(region, foreign, strlen(foreign));

  /* A truncated region. */
  make_container("c-truncated", GiB, region, sizeof(region));
  ASSERT_OK(truncate(region, 100));

  /* A region from another layout version. */
  make_container("d-version", GiB, region, sizeof(region));
  int fd = open(region, O_RDWR);
  ASSERT_GE_INT(fd, 0);
  uint32_t version = VGP_REGION_VERSION + 41;
  ASSERT_EQ_INT(pwrite(fd, &version, sizeof(version), 8), 4);
  close(fd);

  /* A corrupt limits file beside a good region. */
  make_container("e-limits", GiB, region, sizeof(region));
  snprintf(path, sizeof(path), "%s/e-limits/limits", cli_containers_dir());
  ASSERT_OK(unlink(path));
  static const char corrupt[] = "vgpool-limits 1\ncontainer e-limits\nchecksum 00000000\n";
  write_file(path, corrupt, strlen(corrupt));

  /* A directory with nothing in it yet. */
  snprintf(path, sizeof(path), "%s/f-empty", cli_containers_dir());
  ASSERT_OK(mkdir(path, 0755));

  ASSERT_EQ_INT(cli_vgpool("top", "--once", NULL), 0);
  ASSERT_EQ_STR(cli_err, "");
  ASSERT_CONTAINS(cli_out, "a-good");
  ASSERT_CONTAINS(cli_out, "0 B / 1.00 GiB");
  snprintf(want, sizeof(want), "b-foreign    error: region file %s/b-foreign/region: the file "
           "is not of this kind", cli_containers_dir());
  ASSERT_CONTAINS(cli_out, want);
  snprintf(want, sizeof(want), "c-truncated  error: region file %s/c-truncated/region: the "
           "file has the wrong size", cli_containers_dir());
  ASSERT_CONTAINS(cli_out, want);
  snprintf(want, sizeof(want), "d-version    error: region file %s/d-version/region: the file "
           "was written by another version", cli_containers_dir());
  ASSERT_CONTAINS(cli_out, want);
  ASSERT_CONTAINS(cli_out, "e-limits/limits: line 3: checksum mismatch");
  snprintf(want, sizeof(want), "f-empty      error: region file %s/f-empty/region: the file "
           "does not exist", cli_containers_dir());
  ASSERT_CONTAINS(cli_out, want);

  ASSERT_EQ_INT(cli_vgpool("top", "--once", "--json", NULL), 0);
  ASSERT_CONTAINS(cli_out, "{\"id\": \"a-good\", \"errors\": [], \"priority\": 3");
  snprintf(want, sizeof(want), "{\"id\": \"b-foreign\", \"errors\": [\"region file %s/b-foreign/"
           "region: the file is not of this kind", cli_containers_dir());
  ASSERT_CONTAINS(cli_out, want);
  ASSERT_CONTAINS(cli_out, "\"priority\": null, \"oversubscribe\": null, \"reclaimed\": 0, "
                           "\"devices\": [], \"processes\": []}");
  ASSERT_CONTAINS(cli_out, "{\"id\": \"e-limits\", \"errors\": [\"limits file ");
  ASSERT_CONTAINS(cli_out, "checksum mismatch (file is corrupt)\"], \"priority\": 3");
}

VGP_TEST(top_works_without_nvml) {
  char region[PATH_MAX], empty[PATH_MAX], uuid[64];
  cli_node("1xT4");
  make_container("solo", GiB, region, sizeof(region));
  cli_device(0, uuid, sizeof(uuid), NULL);
  snprintf(empty, sizeof(empty), "%s/empty", vgp_test_tmpdir());
  ASSERT_OK(mkdir(empty, 0755));
  setenv("LD_LIBRARY_PATH", empty, 1);
  ASSERT_EQ_INT(cli_vgpool("top", "--once", NULL), 0);
  if (strstr(cli_out, "GPUs: not shown") == NULL)
    vgp_test_skip("a system NVML is installed");
  ASSERT_CONTAINS(cli_out, "libnvidia-ml.so.1");
  ASSERT_CONTAINS(cli_out, "vgpool sim env");
  /* Containers are still shown, their devices labelled by UUID. */
  char want[64];
  snprintf(want, sizeof(want), "%.12s", uuid);
  ASSERT_CONTAINS(cli_out, "solo");
  ASSERT_CONTAINS(cli_out, want);
  ASSERT_CONTAINS(cli_out, "0 B / 1.00 GiB");
  ASSERT_EQ_INT(cli_vgpool("top", "--once", "--json", NULL), 0);
  ASSERT_CONTAINS(cli_out, "\"nvml\": false, \"nvml_error\": \"cannot load libnvidia-ml.so.1");
  ASSERT_CONTAINS(cli_out, "\"devices\": []");
  ASSERT_CONTAINS(cli_out, "\"index\": null");
}

/* Counts occurrences of needle in hay. */
static int count_of(const char *hay, const char *needle) {
  int n = 0;
  for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
    n++;
  return n;
}

VGP_TEST(top_refreshes_until_interrupted) {
  static char buf[CLI_OUT_MAX];
  char out[PATH_MAX], err[PATH_MAX];
  cli_node("1xT4");
  snprintf(out, sizeof(out), "%s/top.out", vgp_test_tmpdir());
  snprintf(err, sizeof(err), "%s/top.err", vgp_test_tmpdir());

  pid_t pid = cli_vgpool_bg(out, err, "top", "--interval", "0.02", NULL);
  VGP_WAIT_UNTIL((vgp_test_read_file(out, buf, sizeof(buf)), count_of(buf, "vgpool top ") >= 3),
                 20000);
  ASSERT_OK(kill(pid, SIGINT));
  ASSERT_EQ_INT(vgp_test_wait(pid), 0);
  vgp_test_read_file(out, buf, sizeof(buf));
  /* Not a terminal: refreshes follow one another, no screen control. */
  ASSERT_FALSE(strstr(buf, "\033[") != NULL);
  ASSERT_CONTAINS(buf, "No containers.");

  pid = cli_vgpool_bg(out, err, "top", "--json", "--interval=0.02", NULL);
  VGP_WAIT_UNTIL((vgp_test_read_file(out, buf, sizeof(buf)), count_of(buf, "}\n{") >= 2), 20000);
  ASSERT_OK(kill(pid, SIGTERM));
  ASSERT_EQ_INT(vgp_test_wait(pid), 0);
}

VGP_TEST(top_refuses_bad_arguments_by_name) {
  cli_node("1xT4");
  ASSERT_EQ_INT(cli_vgpool("top", "--interval", "0", NULL), 2);
  ASSERT_CONTAINS(cli_err, "'0'");
  ASSERT_EQ_INT(cli_vgpool("top", "--interval", "-1", NULL), 2);
  ASSERT_CONTAINS(cli_err, "'-1'");
  ASSERT_EQ_INT(cli_vgpool("top", "--interval", "soon", NULL), 2);
  ASSERT_CONTAINS(cli_err, "'soon'");
  ASSERT_EQ_INT(cli_vgpool("top", "--interval=", NULL), 2);
  ASSERT_CONTAINS(cli_err, "''");
  ASSERT_EQ_INT(cli_vgpool("top", "--interval", NULL), 2);
  ASSERT_CONTAINS(cli_err, "'--interval'");
  ASSERT_EQ_INT(cli_vgpool("top", "--bogus", NULL), 2);
  ASSERT_CONTAINS(cli_err, "'--bogus'");
  ASSERT_EQ_INT(cli_vgpool("top", "extra", NULL), 2);
  ASSERT_CONTAINS(cli_err, "'extra'");
  ASSERT_EQ_STR(cli_out, "");
  ASSERT_EQ_INT(cli_vgpool("top", "--help", NULL), 0);
  ASSERT_CONTAINS(cli_out, "--once");
}
