/*
 * test_hook_config.c - where libvgpool.so takes its limits from, and what it
 * does when they are wrong: a clear log line and CUDA refused, never a run
 * without limits. HAMi's variables work as a fallback; CUDA_VISIBLE_DEVICES
 * maps each visible device to its own quota.
 */
#include <fcntl.h>

#include "hooktest.h"

#define MiB (1ull << 20)
#define GiB (1ull << 30)

static const char *two_devices =
    "[device]\nmodel = A10\nmemory = 8GiB\ncontext_memory = 64MiB\n"
    "[device]\nmodel = A10\nmemory = 8GiB\ncontext_memory = 64MiB\n";

VGP_HELPER(init_status) {
  /* Exit status: cuInit's result; 0 means CUDA started. */
  (void)argc;
  (void)argv;
  return (int)cuInit(0);
}

VGP_HELPER(totals) {
  /* Prints each visible device's total as the container sees it. */
  int n;
  (void)argc;
  (void)argv;
  HT_CU_OK(cuInit(0));
  HT_CU_OK(cuDeviceGetCount(&n));
  for (int i = 0; i < n; i++) {
    size_t t;
    HT_CU_OK(cuDeviceTotalMem_v2(&t, i));
    printf("%zu\n", t >> 20);
  }
  fflush(stdout);
  return 0;
}

static const char *log_path(void) { return ht_path("hook.log"); }

static char *read_log(void) {
  static char buf[8192];
  int fd = open(log_path(), O_RDONLY);
  ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : 0;
  if (fd >= 0)
    close(fd);
  buf[n > 0 ? n : 0] = '\0';
  return buf;
}

/* Runs init_status and expects it refused with a log line containing
 * `needle`. */
static void expect_refused(const char *needle) {
  unlink(log_path());
  setenv("VGPOOL_LOG_FILE", log_path(), 1);
  ASSERT_EQ_INT(ht_run("init_status", NULL), CUDA_ERROR_NOT_INITIALIZED);
  unsetenv("VGPOOL_LOG_FILE");
  ASSERT_CONTAINS(read_log(), needle);
  ASSERT_CONTAINS(read_log(), "CUDA is refused");
}

static char *run_totals(void) {
  static char out[256];
  int fds[2];
  ASSERT_OK(pipe(fds));
  int saved = dup(1);
  dup2(fds[1], 1);
  pid_t pid = ht_spawn("totals", NULL);
  dup2(saved, 1);
  close(saved);
  close(fds[1]);
  ssize_t n = 0, r;
  while (n < (ssize_t)sizeof(out) - 1 && (r = read(fds[0], out + n, sizeof(out) - 1 - (size_t)n)) > 0)
    n += r;
  out[n] = '\0';
  close(fds[0]);
  ASSERT_EQ_INT(vgp_test_wait(pid), 0);
  return out;
}

VGP_TEST(bad_limits_files_refuse_cuda) {
  ht_node(two_devices);
  int devs[] = {0};
  uint64_t mem[] = {GiB};
  ht_container("c1", 1, devs, mem);
  ASSERT_EQ_INT(ht_run("init_status", NULL), 0);
  char limits[4096];
  snprintf(limits, sizeof(limits), "%s/c1/limits", vgp_test_tmpdir());

  /* Truncated. */
  int fd = open(limits, O_RDONLY);
  char text[4096];
  ssize_t n = read(fd, text, sizeof(text));
  close(fd);
  chmod(limits, 0644);
  FILE *f = fopen(limits, "w");
  fwrite(text, 1, (size_t)n - 12, f);
  fclose(f);
  expect_refused("truncated");

  /* Corrupt: one digit changed. */
  char *digit = strstr(text, "memory=") + 7;
  *digit = *digit == '1' ? '2' : '1';
  f = fopen(limits, "w");
  fwrite(text, 1, (size_t)n, f);
  fclose(f);
  expect_refused("checksum mismatch");

  /* Foreign version. */
  f = fopen(limits, "w");
  fputs("vgpool-limits 9\ncontainer c1\nchecksum 0\n", f);
  fclose(f);
  expect_refused("version 9 is not supported");

  /* Missing. */
  unlink(limits);
  expect_refused("cannot open limits file");
}

VGP_TEST(bad_region_refuses_cuda) {
  ht_node(two_devices);
  int devs[] = {0};
  uint64_t mem[] = {GiB};
  ht_container("c1", 1, devs, mem);
  char region[4096];
  snprintf(region, sizeof(region), "%s/c1/region", vgp_test_tmpdir());
  truncate(region, 100);
  expect_refused("wrong size");
  unlink(region);
  expect_refused("does not exist");
}

VGP_TEST(device_outside_the_container_refuses_cuda) {
  ht_node(two_devices);
  int devs[] = {0};
  uint64_t mem[] = {GiB};
  ht_container("c1", 1, devs, mem);
  /* Both devices visible, only device 0 assigned. */
  unsetenv("CUDA_VISIBLE_DEVICES");
  expect_refused("is visible but is not assigned to container c1");
  setenv("CUDA_VISIBLE_DEVICES", "0", 1);
  ASSERT_EQ_INT(ht_run("init_status", NULL), 0);
}

VGP_TEST(no_free_slot_refuses_cuda) {
  ht_node(two_devices);
  int devs[] = {0, 1};
  uint64_t mem[] = {GiB, GiB};
  ht_container("c1", 2, devs, mem);
  /* Occupy every slot with a live owner. */
  static struct vgp__region held[VGP_REGION_MAX_PROCS];
  for (int i = 0; i < VGP_REGION_MAX_PROCS; i++) {
    int slot;
    ht_open_region(&held[i], "c1");
    ASSERT_OK(vgp__region_claim(&held[i], &slot));
  }
  expect_refused("no free process slot");
}

VGP_TEST(visible_devices_map_to_their_own_quotas) {
  ht_node(two_devices);
  int devs[] = {0, 1};
  uint64_t mem[] = {GiB, 2 * GiB};
  ht_container("c1", 2, devs, mem);
  ASSERT_EQ_STR(run_totals(), "1024\n2048\n");
  setenv("CUDA_VISIBLE_DEVICES", "1,0", 1);
  ASSERT_EQ_STR(run_totals(), "2048\n1024\n");
  char uuids[256];
  snprintf(uuids, sizeof(uuids), "%s", ht_uuid(1));
  setenv("CUDA_VISIBLE_DEVICES", uuids, 1);
  ASSERT_EQ_STR(run_totals(), "2048\n");
  unsetenv("CUDA_VISIBLE_DEVICES");
}

VGP_TEST(quota_larger_than_the_device_is_the_device) {
  ht_node(two_devices);
  int devs[] = {0, 1};
  uint64_t mem[] = {100 * GiB, 0};
  ht_container("c1", 2, devs, mem);
  ASSERT_EQ_STR(run_totals(), "8192\n8192\n");
}

VGP_TEST(hami_variables_are_a_fallback) {
  ht_node(two_devices);
  unsetenv("VGPOOL_CONTAINER_DIR");
  setenv("CUDA_DEVICE_MEMORY_SHARED_CACHE", ht_path("hami.region"), 1);
  setenv("CUDA_DEVICE_MEMORY_LIMIT", "1Gi", 1);
  setenv("CUDA_DEVICE_MEMORY_LIMIT_1", "3072m", 1);
  ASSERT_EQ_STR(run_totals(), "1024\n3072\n");
  setenv("CUDA_DEVICE_MEMORY_LIMIT", "1GiB", 1);
  unsetenv("CUDA_DEVICE_MEMORY_LIMIT_1");
  ASSERT_EQ_STR(run_totals(), "1024\n1024\n");
  setenv("CUDA_DEVICE_MEMORY_LIMIT", "4Gx", 1);
  expect_refused("CUDA_DEVICE_MEMORY_LIMIT=\"4Gx\" is not a size");
  setenv("CUDA_DEVICE_MEMORY_LIMIT", "1G", 1);
  setenv("CUDA_DEVICE_SM_LIMIT", "150", 1);
  expect_refused("CUDA_DEVICE_SM_LIMIT=\"150\"");
  unsetenv("CUDA_DEVICE_SM_LIMIT");
  /* A limits file, when present, wins over the variables. */
  int devs[] = {0, 1};
  uint64_t mem[] = {2 * GiB, 2 * GiB};
  ht_container("c1", 2, devs, mem);
  ASSERT_EQ_STR(run_totals(), "2048\n2048\n");
}

VGP_TEST(without_configuration_the_library_is_inert) {
  ht_node(two_devices);
  unsetenv("VGPOOL_CONTAINER_DIR");
  ASSERT_EQ_STR(run_totals(), "8192\n8192\n");
}
