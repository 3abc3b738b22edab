/*
 * test_hook_stress.c - the quota holds under load and under murder.
 *
 * 16 processes x 4 threads allocate and free random sizes against one
 * 8 GiB quota for 30 s while the test samples the simulator's ground truth
 * (device memory in use on the node, which only this container uses): it
 * must never exceed the quota, and afterwards the container's usage must be
 * exactly zero.
 *
 * Then a storm: workers are killed with SIGKILL at random moments, some of
 * them deliberately inside the region lock with half-updated totals (the
 * VGPOOL_TEST_CRASH_AT crash point), while survivors keep allocating. No
 * survivor may wait more than 1 s for an allocation, and what is reclaimed
 * must be exact.
 */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>

#include "clock.h"
#include "hooktest.h"

#define MiB (1ull << 20)
#define GiB (1ull << 30)

static const char *node16 = "[device]\nmodel = A100-80GB\nmemory = 16GiB\ncontext_memory = 32MiB\n";

/* Progress words a worker shares with the test, one pair per worker. */
struct progress {
  uint64_t op_start;
  uint64_t op_end;
};

struct churn_args {
  CUcontext ctx;
  unsigned seed;
  uint64_t end_ns;
  struct progress *progress; /* may be NULL */
  int failed;
};

static void *churn(void *arg) {
  struct churn_args *a = arg;
  CUdeviceptr held[32];
  int n = 0;
  if (cuCtxSetCurrent(a->ctx) != CUDA_SUCCESS) {
    a->failed = 1;
    return NULL;
  }
  while (vgp__now_ns() < a->end_ns) {
    if (n < 32 && (n == 0 || rand_r(&a->seed) % 3 != 0)) {
      size_t size = (1 + rand_r(&a->seed) % 256) * MiB - rand_r(&a->seed) % 4096;
      if (a->progress)
        __atomic_store_n(&a->progress->op_start, vgp__now_ns(), __ATOMIC_RELEASE);
      CUresult r = cuMemAlloc_v2(&held[n], size);
      if (a->progress)
        __atomic_store_n(&a->progress->op_end, vgp__now_ns(), __ATOMIC_RELEASE);
      if (r == CUDA_SUCCESS)
        n++;
      else if (r != CUDA_ERROR_OUT_OF_MEMORY)
        a->failed = 1;
    } else if (n > 0) {
      int i = rand_r(&a->seed) % n;
      if (cuMemFree_v2(held[i]) != CUDA_SUCCESS)
        a->failed = 1;
      held[i] = held[--n];
    }
  }
  while (n > 0)
    cuMemFree_v2(held[--n]);
  return NULL;
}

/* argv: seconds, seed, threads, [progress file, index]. With a progress
 * file the worker starts at once; without one it waits for the file "go"
 * in VGP_TEST_TMPDIR, so that every worker has its context before any
 * fills the quota. Exits 7 if it could not get a context. */
VGP_HELPER(worker) {
  CUcontext ctx;
  HT_CU_OK(cuInit(0));
  if (cuDevicePrimaryCtxRetain(&ctx, 0) != CUDA_SUCCESS)
    return 7;
  if (argc < 5) {
    char go[4096];
    snprintf(go, sizeof(go), "%s/go", getenv("VGP_TEST_TMPDIR"));
    while (access(go, F_OK) != 0)
      usleep(1000);
  }
  int nthreads = atoi(argv[2]);
  struct progress *progress = NULL;
  if (argc >= 5) {
    int fd = open(argv[3], O_RDWR);
    void *map = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (fd < 0 || map == MAP_FAILED)
      return 20;
    progress = (struct progress *)map + atoi(argv[4]);
  }
  pthread_t t[8];
  struct churn_args a[8];
  uint64_t end = vgp__now_ns() + (uint64_t)(atof(argv[0]) * 1e9);
  for (int i = 0; i < nthreads && i < 8; i++) {
    a[i] = (struct churn_args){ctx, (unsigned)atoi(argv[1]) * 31u + (unsigned)i, end,
                               i == 0 ? progress : NULL, 0};
    pthread_create(&t[i], NULL, churn, &a[i]);
  }
  int failed = 0;
  for (int i = 0; i < nthreads && i < 8; i++) {
    pthread_join(t[i], NULL);
    failed |= a[i].failed;
  }
  return failed ? 30 : 0;
}

static uint64_t device_used(struct vgp_sim_handle *node) {
  return __atomic_load_n(&node->node->dev[0].used_bytes, __ATOMIC_ACQUIRE);
}

VGP_TEST_TIMEOUT(sixteen_processes_never_exceed_the_quota, 300) {
  ht_node(node16);
  int devs[] = {0};
  uint64_t quota[] = {8 * GiB};
  ht_container("c1", 1, devs, quota);
  struct vgp_sim_handle node;
  ht_open_node(&node);
  const char *seconds = getenv("VGP_STRESS_SECONDS") ? getenv("VGP_STRESS_SECONDS") : "30";
  pid_t pid[16];
  for (int i = 0; i < 16; i++) {
    char seed[16];
    snprintf(seed, sizeof(seed), "%d", i + 1);
    char *args[] = {(char *)seconds, seed, "4", NULL};
    pid[i] = ht_spawn("worker", args);
  }
  /* Every worker holds a context (16 x 32 MiB) before the churn starts. */
  struct vgp__region r;
  ht_open_region(&r, "c1");
  VGP_WAIT_UNTIL(__atomic_load_n(&r.r->dev[0].used, __ATOMIC_ACQUIRE) == 16 * 32 * MiB, 60000);
  FILE *go = fopen(ht_path("go"), "w");
  ASSERT_NOT_NULL(go);
  fclose(go);
  uint64_t max_seen = 0, samples = 0;
  int alive = 16, status[16];
  for (int i = 0; i < 16; i++)
    status[i] = -1;
  while (alive > 0) {
    uint64_t u = device_used(&node);
    if (u > max_seen)
      max_seen = u;
    samples++;
    alive = 0;
    for (int i = 0; i < 16; i++) {
      if (status[i] >= 0)
        continue;
      int st;
      if (waitpid(pid[i], &st, WNOHANG) == pid[i])
        status[i] = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      else
        alive++;
    }
  }
  printf("# %llu samples; highest device memory in use %.1f MiB of the %.0f MiB quota\n",
         (unsigned long long)samples, (double)max_seen / MiB, (double)quota[0] / MiB);
  for (int i = 0; i < 16; i++)
    ASSERT_EQ_INT(status[i], 0);
  ASSERT_LE_U64(max_seen, quota[0]);
  ASSERT_GE_U64(max_seen, quota[0] - 512 * MiB); /* the quota was really pressed */
  vgp__region_reclaim(&r);
  ASSERT_EQ_U64(r.r->dev[0].used, 0);
  vgp_sim_reclaim_dead(&node);
  ASSERT_EQ_U64(device_used(&node), 0);
  vgp_sim_close(&node);
}

VGP_TEST_TIMEOUT(sigkill_storm_keeps_exact_accounting, 300) {
  ht_node(node16);
  int devs[] = {0};
  uint64_t quota[] = {8 * GiB};
  ht_container("c1", 1, devs, quota);
  enum { WORKERS = 10 };
  const char *progress_path = ht_path("progress");
  int fd = open(progress_path, O_RDWR | O_CREAT, 0600);
  ASSERT_OK(ftruncate(fd, 4096));
  struct progress *prog = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ASSERT_TRUE(prog != MAP_FAILED);
  close(fd);
  pid_t pid[WORKERS];
  unsigned seed = 4242;
  int spawned = 0, crash_points = 0;
  struct vgp__region r;
  ht_open_region(&r, "c1");

  /* Starts worker i, sometimes armed to die inside the region lock. */
  #define START(i)                                                             \
    do {                                                                       \
      char s[16], idx[16], crash[64];                                          \
      snprintf(s, sizeof(s), "%d", ++spawned);                                 \
      snprintf(idx, sizeof(idx), "%d", (i));                                   \
      memset(&prog[i], 0, sizeof(prog[i]));                                    \
      if (rand_r(&seed) % 3 == 0) {                                            \
        snprintf(crash, sizeof(crash), "region-charge:%u", 1 + rand_r(&seed) % 40); \
        setenv("VGPOOL_TEST_CRASH_AT", crash, 1);                              \
        crash_points++;                                                        \
      }                                                                        \
      char *args[] = {"20", s, "2", (char *)progress_path, idx, NULL};         \
      pid[i] = ht_spawn("worker", args);                                       \
      unsetenv("VGPOOL_TEST_CRASH_AT");                                        \
    } while (0)

  for (int i = 0; i < WORKERS; i++)
    START(i);
  uint64_t end = vgp__now_ns() + 8 * VGP_NSEC_PER_SEC, next_kill = 0, worst_wait = 0;
  int kills = 0;
  while (vgp__now_ns() < end) {
    uint64_t now = vgp__now_ns();
    for (int i = 0; i < WORKERS; i++) {
      int st;
      if (waitpid(pid[i], &st, WNOHANG) == pid[i]) {
        /* Died at its crash point (or finished): replace it. */
        START(i);
        continue;
      }
      uint64_t s = __atomic_load_n(&prog[i].op_start, __ATOMIC_ACQUIRE);
      uint64_t e = __atomic_load_n(&prog[i].op_end, __ATOMIC_ACQUIRE);
      if (s > e && now > s && now - s > worst_wait)
        worst_wait = now - s;
    }
    if (now >= next_kill) {
      int victim = rand_r(&seed) % WORKERS;
      kill(pid[victim], SIGKILL);
      vgp_test_wait(pid[victim]);
      kills++;
      START(victim);
      next_kill = now + (20 + rand_r(&seed) % 80) * VGP_NSEC_PER_MSEC;
    }
    usleep(2000);
  }
  for (int i = 0; i < WORKERS; i++) {
    kill(pid[i], SIGKILL);
    vgp_test_wait(pid[i]);
  }
  printf("# %d kills, %d workers armed to die in the lock, %llu repairs; longest wait %.1f ms\n",
         kills, crash_points, (unsigned long long)r.r->repairs, (double)worst_wait / 1e6);
  ASSERT_GT_INT(kills, 40);
  ASSERT_GT_U64(r.r->repairs, 0);
  ASSERT_LT_U64(worst_wait, VGP_NSEC_PER_SEC);
  vgp__region_reclaim(&r);
  ASSERT_EQ_U64(r.r->dev[0].used, 0);
  struct vgp_sim_handle node;
  ht_open_node(&node);
  vgp_sim_reclaim_dead(&node);
  ASSERT_EQ_U64(device_used(&node), 0);
  vgp_sim_close(&node);
}
