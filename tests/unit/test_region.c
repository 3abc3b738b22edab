/*
 * test_region.c - the region file keeps exact, never-exceeded accounting
 * while processes charge concurrently, die holding its lock, or are killed
 * with charges outstanding.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "region.h"
#include "vgp_test.h"

static const char *region_path(void) {
  static char path[512];
  snprintf(path, sizeof(path), "%s/region", vgp_test_tmpdir());
  return path;
}

static void make_region(uint64_t limit) {
  struct vgp_limits l;
  memset(&l, 0, sizeof(l));
  snprintf(l.container, sizeof(l.container), "c1");
  l.ndevices = 1;
  snprintf(l.dev[0].uuid, sizeof(l.dev[0].uuid), "GPU-test");
  l.dev[0].memory = limit;
  l.dev[0].cores = 100;
  ASSERT_OK(vgp__region_create(region_path(), &l));
}

static void open_region(struct vgp__region *h) {
  char err[256];
  if (vgp__region_open(h, region_path(), 1, err, sizeof(err)) < 0)
    vgp_test_fail(__FILE__, __LINE__, "%s", err);
}

VGP_TEST(charge_within_limit) {
  make_region(1000);
  ASSERT_EQ_INT(vgp__region_create(region_path(), NULL), -EEXIST);
  struct vgp__region h;
  open_region(&h);
  int slot;
  ASSERT_OK(vgp__region_claim(&h, &slot));
  ASSERT_EQ_INT(vgp__region_device(&h, "GPU-test", 0, 0), 0);
  ASSERT_EQ_INT(vgp__region_device(&h, "GPU-other", 0, 0), -ENOENT);
  ASSERT_OK(vgp__region_charge(&h, slot, 0, 600, 1000));
  ASSERT_EQ_INT(vgp__region_charge(&h, slot, 0, 401, 1000), -EDQUOT);
  ASSERT_OK(vgp__region_charge(&h, slot, 0, 400, 1000));
  ASSERT_EQ_U64(h.r->dev[0].used, 1000);
  ASSERT_EQ_U64(h.r->dev[0].oom_events, 1);
  ASSERT_OK(vgp__region_charge(&h, slot, 0, 5, VGP_REGION_NO_LIMIT)); /* forced past it */
  vgp__region_uncharge(&h, slot, 0, 1005);
  ASSERT_EQ_U64(h.r->dev[0].used, 0);
  ASSERT_EQ_U64(h.r->dev[0].peak, 1005);
  vgp__region_release_slot(&h, slot);
  vgp__region_close(&h);
}

VGP_TEST(foreign_region_is_refused) {
  FILE *f = fopen(region_path(), "w");
  ASSERT_NOT_NULL(f);
  for (int i = 0; i < 100000; i++)
    fputc('x', f);
  fclose(f);
  struct vgp__region h;
  char err[256];
  ASSERT_EQ_INT(vgp__region_open(&h, region_path(), 1, err, sizeof(err)), -EPROTO);
  ASSERT_CONTAINS(err, "wrong magic");
}

VGP_HELPER(charge_and_wait) {
  /* argv[0]: bytes. Charges them, says so, waits to be killed. */
  struct vgp__region h;
  char err[256];
  int slot;
  if (vgp__region_open(&h, argv[0], 1, err, sizeof(err)) < 0 || vgp__region_claim(&h, &slot) < 0)
    return 10;
  if (vgp__region_charge(&h, slot, 0, (uint64_t)atoll(argv[1]), 1 << 20) < 0)
    return 11;
  (void)argc;
  ssize_t w = write(1, "C", 1);
  (void)w;
  for (;;)
    pause();
}

VGP_TEST(killed_process_charges_are_returned) {
  make_region(1 << 20);
  int fds[2];
  ASSERT_OK(pipe(fds));
  int saved = dup(1);
  dup2(fds[1], 1);
  pid_t pid = vgp_test_spawn("charge_and_wait", region_path(), "300000", NULL);
  dup2(saved, 1);
  char c;
  ASSERT_EQ_INT(read(fds[0], &c, 1), 1);
  struct vgp__region h;
  open_region(&h);
  ASSERT_EQ_U64(h.r->dev[0].used, 300000);
  ASSERT_EQ_INT(vgp__region_reclaim(&h), 0); /* alive: nothing to do */
  kill(pid, SIGKILL);
  vgp_test_wait(pid);
  ASSERT_EQ_INT(vgp__region_reclaim(&h), 1);
  ASSERT_EQ_U64(h.r->dev[0].used, 0);
  vgp__region_close(&h);
}

VGP_HELPER(die_mid_charge) {
  struct vgp__region h;
  char err[256];
  int slot;
  setenv("VGPOOL_TEST_CRASH_AT", "region-charge:2", 1);
  if (vgp__region_open(&h, argv[0], 1, err, sizeof(err)) < 0 || vgp__region_claim(&h, &slot) < 0)
    return 10;
  vgp__region_charge(&h, slot, 0, 100, 1 << 20);
  vgp__region_charge(&h, slot, 0, 200, 1 << 20); /* dies in here, lock held */
  (void)argc;
  return 12;
}

VGP_TEST(death_while_holding_the_lock_is_repaired) {
  make_region(1 << 20);
  struct vgp__region h;
  open_region(&h);
  int slot;
  ASSERT_OK(vgp__region_claim(&h, &slot));
  ASSERT_OK(vgp__region_charge(&h, slot, 0, 1000, 1 << 20));
  pid_t pid = vgp_test_spawn("die_mid_charge", region_path(), NULL);
  ASSERT_EQ_INT(vgp_test_wait(pid), 128 + SIGKILL);
  /* The dead holder left the total counting 200 bytes no slot owns. */
  ASSERT_EQ_U64(h.r->dev[0].used, 1300);
  ASSERT_EQ_U64(h.r->repairs, 0);
  uint64_t t0 = vgp__now_ns();
  ASSERT_OK(vgp__region_charge(&h, slot, 0, 1, 1 << 20));
  ASSERT_LT_U64(vgp__now_ns() - t0, VGP_NSEC_PER_SEC);
  ASSERT_EQ_U64(h.r->repairs, 1);
  ASSERT_EQ_U64(h.r->dev[0].used, 1101); /* ours 1001 + the dead one's 100 */
  ASSERT_EQ_INT(vgp__region_reclaim(&h), 1);
  ASSERT_EQ_U64(h.r->dev[0].used, 1001);
  vgp__region_release_slot(&h, slot);
  ASSERT_EQ_U64(h.r->dev[0].used, 0);
}

/* A region lock left unusable (a holder died and the program that saw it
 * released the lock without repairing: not vgpool's code) refuses charges
 * with an error instead of charging unlocked or hanging. */
VGP_TEST(unrecoverable_lock_refuses_charges) {
  make_region(1 << 20);
  struct vgp__region h;
  open_region(&h);
  int slot;
  ASSERT_OK(vgp__region_claim(&h, &slot));
  pid_t pid = vgp_test_spawn("die_mid_charge", region_path(), NULL);
  ASSERT_EQ_INT(vgp_test_wait(pid), 128 + SIGKILL);
  pthread_mutex_t *m = (pthread_mutex_t *)(void *)h.r->lock;
  ASSERT_EQ_INT(pthread_mutex_lock(m), EOWNERDEAD);
  ASSERT_EQ_INT(pthread_mutex_unlock(m), 0); /* without pthread_mutex_consistent */
  uint64_t before = h.r->dev[0].used;
  ASSERT_EQ_INT(vgp__region_charge(&h, slot, 0, 1, 1 << 20), -ENOTRECOVERABLE);
  ASSERT_EQ_U64(h.r->dev[0].used, before);
  vgp__region_close(&h);
}

struct churn {
  struct vgp__region *h;
  uint64_t limit;
  int slot;
  unsigned seed;
  double seconds;
  uint64_t held;
};

static void *churn_thread(void *arg) {
  struct churn *c = arg;
  uint64_t sizes[64];
  int n = 0;
  uint64_t end = vgp__now_ns() + (uint64_t)(c->seconds * 1e9);
  while (vgp__now_ns() < end) {
    if (n < 64 && (n == 0 || rand_r(&c->seed) % 2)) {
      uint64_t b = 1 + rand_r(&c->seed) % 5000;
      if (vgp__region_charge(c->h, c->slot, 0, b, c->limit) == 0)
        sizes[n++] = b;
    } else if (n > 0) {
      vgp__region_uncharge(c->h, c->slot, 0, sizes[--n]);
    }
  }
  while (n > 0)
    vgp__region_uncharge(c->h, c->slot, 0, sizes[--n]);
  return NULL;
}

VGP_HELPER(churn) {
  struct vgp__region h;
  char err[256];
  int slot;
  if (vgp__region_open(&h, argv[0], 1, err, sizeof(err)) < 0 || vgp__region_claim(&h, &slot) < 0)
    return 10;
  pthread_t t[2];
  struct churn c[2];
  for (int i = 0; i < 2; i++) {
    c[i] = (struct churn){&h, 40000, slot, (unsigned)getpid() * 7u + (unsigned)i, atof(argv[1]), 0};
    pthread_create(&t[i], NULL, churn_thread, &c[i]);
  }
  for (int i = 0; i < 2; i++)
    pthread_join(t[i], NULL);
  (void)argc;
  return h.r->slots[slot].used[0] == 0 ? 0 : 13;
}

VGP_TEST(concurrent_charges_never_exceed_the_limit) {
  const uint64_t limit = 40000;
  make_region(limit);
  struct vgp__region h;
  open_region(&h);
  pid_t pid[4];
  for (int i = 0; i < 4; i++)
    pid[i] = vgp_test_spawn("churn", region_path(), "1.5", NULL);
  uint64_t max_seen = 0;
  for (int alive = 4; alive > 0;) {
    uint64_t u = __atomic_load_n(&h.r->dev[0].used, __ATOMIC_ACQUIRE);
    if (u > max_seen)
      max_seen = u;
    alive = 0;
    for (int i = 0; i < 4; i++)
      alive += kill(pid[i], 0) == 0 && waitpid(pid[i], NULL, WNOHANG) == 0;
  }
  printf("# highest total seen: %llu of %llu\n", (unsigned long long)max_seen,
         (unsigned long long)limit);
  ASSERT_LE_U64(max_seen, limit);
  ASSERT_GT_U64(max_seen, limit / 2); /* the churn did press on the limit */
  ASSERT_EQ_U64(h.r->dev[0].used, 0);
}
