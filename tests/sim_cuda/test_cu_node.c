/*
 * test_cu_node.c - many processes on one simulated node: device memory is
 * shared and enforced across processes, a killed process's memory comes
 * back, the compute engine is time-sliced fairly, and the driver survives
 * every allocation failing in turn.
 */
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "simtest.h"

/* Starts a helper whose stdout is a pipe we read; returns its pid. */
static pid_t spawn_piped(int *ret_fd, const char *name, char *const args[]) {
  int fds[2];
  if (pipe(fds) < 0)
    vgp_test_fail(__FILE__, __LINE__, "pipe failed");
  int saved = dup(1);
  dup2(fds[1], 1);
  pid_t pid = vgp_test_spawnv(name, args);
  dup2(saved, 1);
  close(saved);
  close(fds[1]);
  *ret_fd = fds[0];
  return pid;
}

static void expect_line(int fd, const char *want) {
  char buf[64];
  size_t n = 0;
  while (n < sizeof(buf) - 1) {
    ssize_t r = read(fd, buf + n, 1);
    if (r <= 0)
      break;
    if (buf[n] == '\n')
      break;
    n++;
  }
  buf[n] = '\0';
  ASSERT_EQ_STR(buf, want);
}

VGP_HELPER(hold_memory) {
  /* argv[0]: MiB to allocate. Reports READY, then waits to be killed. */
  CUcontext ctx;
  CUdeviceptr p;
  if (cuInit(0) || cuCtxCreate_v2(&ctx, 0, 0))
    return 10;
  if (cuMemAlloc_v2(&p, (size_t)atoi(argv[0]) << 20))
    return 11;
  (void)argc;
  printf("READY\n");
  fflush(stdout);
  for (;;)
    pause();
}

static const char *two_gib_node =
    "[device]\nmodel = L4\nmemory = 2GiB\ncontext_memory = 64MiB\n";

VGP_TEST(processes_share_and_fill_a_device) {
  simtest_config(two_gib_node);
  pid_t pid[3];
  int fd[3];
  char *args[] = {"512", NULL};
  for (int i = 0; i < 3; i++) {
    pid[i] = spawn_piped(&fd[i], "hold_memory", args);
    expect_line(fd[i], "READY");
  }
  simtest_ctx();
  size_t f, t;
  CU_OK(cuMemGetInfo_v2(&f, &t));
  /* 3 x (512 + 64) MiB held by the helpers, 64 MiB by our context. */
  ASSERT_EQ_U64(t - f, (3ull * 576 + 64) << 20);
  CUdeviceptr p;
  CU_EXPECT(cuMemAlloc_v2(&p, 512u << 20), CUDA_ERROR_OUT_OF_MEMORY);
  CU_OK(cuMemAlloc_v2(&p, 200u << 20));
  CU_OK(cuMemFree_v2(p));

  /* A process killed with SIGKILL gives its memory back. */
  kill(pid[1], SIGKILL);
  ASSERT_EQ_INT(vgp_test_wait(pid[1]), 128 + SIGKILL);
  CU_OK(cuMemGetInfo_v2(&f, &t));
  ASSERT_EQ_U64(t - f, (2ull * 576 + 64) << 20);
  CU_OK(cuMemAlloc_v2(&p, 512u << 20));
  for (int i = 0; i < 3; i += 2) {
    kill(pid[i], SIGKILL);
    vgp_test_wait(pid[i]);
    close(fd[i]);
  }
  close(fd[1]);
  CU_OK(cuMemFree_v2(p));
  CU_OK(cuMemGetInfo_v2(&f, &t));
  ASSERT_EQ_U64(t - f, 64ull << 20);
}

/* A process killed inside a memory charge, holding the node's memory lock
 * with the device total raised but its own share not yet recorded (the
 * crash point sim-charge), costs the device nothing: the next charge
 * rebuilds the total from what each process really holds. */
VGP_TEST(death_inside_a_memory_charge_loses_nothing) {
  simtest_config(two_gib_node);
  simtest_ctx();
  size_t f0, t0, f, t;
  CU_OK(cuMemGetInfo_v2(&f0, &t0));
  char *args[] = {"512", NULL};
  setenv("VGPOOL_TEST_CRASH_AT", "sim-charge:2", 1); /* 1: its context, 2: the 512 MiB */
  pid_t pid = vgp_test_spawnv("hold_memory", args);
  unsetenv("VGPOOL_TEST_CRASH_AT");
  ASSERT_EQ_INT(vgp_test_wait(pid), 128 + SIGKILL);
  CUdeviceptr p;
  CU_OK(cuMemAlloc_v2(&p, 256u << 20));
  CU_OK(cuMemGetInfo_v2(&f, &t));
  ASSERT_EQ_U64(f0 - f, 256ull << 20);
  CU_OK(cuMemFree_v2(p));
  CU_OK(cuMemGetInfo_v2(&f, &t));
  ASSERT_EQ_U64(f, f0);
}

VGP_HELPER(saturate) {
  /* argv[0]: seconds. Keeps 1 ms kernels queued; prints device ms used. */
  double seconds = atof(argv[0]);
  CUcontext ctx;
  CUmodule m = NULL;
  if (cuInit(0) || cuCtxCreate_v2(&ctx, 0, 0))
    return 10;
  CUfunction spin = simtest_func(&m, "vgpool_spin");
  unsigned long long ns = 1000000;
  void *kargs[] = {&ns};
  printf("READY\n");
  fflush(stdout);
  struct timespec t0, t;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  long launched = 0;
  CUevent done;
  cuEventCreate(&done, 0);
  for (;;) {
    clock_gettime(CLOCK_MONOTONIC, &t);
    double el = (double)(t.tv_sec - t0.tv_sec) + (double)(t.tv_nsec - t0.tv_nsec) / 1e9;
    if (el >= seconds)
      break;
    for (int i = 0; i < 8; i++, launched++)
      if (cuLaunchKernel(spin, 1, 1, 1, 32, 1, 1, 0, NULL, kargs, NULL))
        return 11;
    /* Keep the queue about 8 kernels deep. */
    cuEventRecord(done, NULL);
    while (cuEventQuery(done) == CUDA_ERROR_NOT_READY)
      usleep(500);
  }
  (void)argc;
  printf("%ld\n", launched);
  fflush(stdout);
  return 0;
}

static long read_long(int fd) {
  char buf[64];
  size_t n = 0;
  while (n < sizeof(buf) - 1 && read(fd, buf + n, 1) == 1 && buf[n] != '\n')
    n++;
  buf[n] = '\0';
  return atol(buf);
}

VGP_TEST_TIMEOUT(two_saturating_processes_share_the_engine, 120) {
  simtest_node("1xH100-80GB");
  char *args[] = {"3", NULL};
  int fd[2];
  pid_t pid[2];
  for (int i = 0; i < 2; i++)
    pid[i] = spawn_piped(&fd[i], "saturate", args);
  for (int i = 0; i < 2; i++)
    expect_line(fd[i], "READY");
  long k[2];
  for (int i = 0; i < 2; i++) {
    k[i] = read_long(fd[i]);
    ASSERT_EQ_INT(vgp_test_wait(pid[i]), 0);
  }
  /* Each ran about half of 3 s of 1 ms kernels; together they kept the
   * engine busy most of the time. */
  printf("# kernels: %ld and %ld\n", k[0], k[1]);
  double share0 = (double)k[0] / (double)(k[0] + k[1]);
  ASSERT_EQ_DBL(share0, 0.5, 0.12);
  ASSERT_GT_INT(k[0] + k[1], 2000);
  ASSERT_LE_INT(k[0] + k[1], 3200);
}

VGP_HELPER(alloc_scenario) {
  /* Exercises the common paths. With allocation failure injection any call
   * may fail, but nothing may crash or hang. Exits 3 when every call
   * succeeded, which tells the test the injected failure came after the
   * scenario's last allocation. */
  CUcontext ctx;
  CUdeviceptr p = 0, q = 0;
  CUstream s = NULL;
  CUevent e = NULL;
  CUmodule m = NULL;
  CUfunction f;
  int failures = 0;
  (void)argc;
  (void)argv;
  if (cuInit(0) != CUDA_SUCCESS || cuCtxCreate_v2(&ctx, 0, 0) != CUDA_SUCCESS)
    return 0;
  failures += cuMemAlloc_v2(&p, 1 << 20) != CUDA_SUCCESS;
  failures += cuStreamCreate(&s, 0) != CUDA_SUCCESS;
  failures += cuEventCreate(&e, 0) != CUDA_SUCCESS;
  if (cuModuleLoadData(&m, simtest_ptx) == CUDA_SUCCESS &&
      cuModuleGetFunction(&f, m, "vgpool_fill_u32") == CUDA_SUCCESS && p != 0 && s != NULL) {
    unsigned long long n = 16;
    unsigned v = 1;
    void *args[] = {&p, &v, &n};
    failures += cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 0, s, args, NULL) != CUDA_SUCCESS;
  } else {
    failures++;
  }
  if (e != NULL && s != NULL)
    failures += cuEventRecord(e, s) != CUDA_SUCCESS;
  if (s != NULL && cuMemAllocAsync(&q, 4096, s) == CUDA_SUCCESS)
    failures += cuMemFreeAsync(q, s) != CUDA_SUCCESS;
  else
    failures++;
  failures += cuCtxSynchronize() != CUDA_SUCCESS;
  if (p)
    failures += cuMemFree_v2(p) != CUDA_SUCCESS;
  if (m)
    failures += cuModuleUnload(m) != CUDA_SUCCESS;
  failures += cuCtxDestroy_v2(ctx) != CUDA_SUCCESS;
  return failures == 0 ? 3 : 0;
}

VGP_TEST_TIMEOUT(every_allocation_failing_in_turn_is_survived, 240) {
  simtest_node("1xT4");
  /* Fail the 1st, 2nd, ... heap allocation of the driver, each in a fresh
   * process, until a run gets through the whole scenario. */
  int n;
  for (n = 1; n <= 500; n++) {
    char value[16];
    snprintf(value, sizeof(value), "%d", n);
    setenv("VGPOOL_TEST_ALLOC_FAIL", value, 1);
    int status = vgp_test_wait(vgp_test_spawn("alloc_scenario", NULL));
    if (status == 3)
      break;
    if (status != 0)
      vgp_test_fail(__FILE__, __LINE__, "scenario died (status %d) when allocation %d failed",
                    status, n);
  }
  unsetenv("VGPOOL_TEST_ALLOC_FAIL");
  printf("# the scenario makes %d heap allocations; each failure was survived\n", n - 1);
  ASSERT_LT_INT(n, 500);
  ASSERT_GT_INT(n, 5);
}
