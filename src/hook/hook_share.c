/*
 * hook_share.c - compute shares: each container gets its fraction of a
 * device's time.
 *
 * The share is enforced by pacing the container's kernel launches on the
 * device with a generic cell rate algorithm (GCRA): one 64-bit "theoretical
 * arrival time" in the container's region, advanced by compare-and-swap by
 * every launch of every process of the container, so the container has one
 * pace however many processes and threads launch. The pace is an interval
 * between launches, the container's estimated device time per launch
 * divided by its target share. A launch that comes too early waits — in a
 * futex sleep, never spinning — until its turn, or until the interval
 * changes.
 *
 * One controller per container and device keeps the interval right. It
 * runs in a background thread of whichever of the container's processes
 * holds the controller lease (a lease in the region that a dead leader's
 * successor takes over), and closes the loop on what the container really
 * used: NVML's per-process utilization samples, with their timestamps,
 * summed over the container's processes. Why NVML: it is the driver's own
 * account of which process ran on the device, so it is right even when
 * other containers' kernels are interleaved with ours — timing our own
 * kernels with events would count the time other containers held the
 * device. Its drawback, a lag of one sample period (1/6 s), is covered by
 * measuring the first launches directly (events around each, with our
 * stream drained), so the pace starts close to right and feedback only
 * trims it. Such a measurement also counts any time the launch waited
 * behind other containers' kernels, so the smallest of the first three is
 * kept, and feedback that finds the estimate grossly wrong replaces it at
 * once instead of trimming it: a container paced for kernels several
 * times longer than its own would be starved far below its share.
 *
 *   hard     never above the share
 *   elastic  while no other container has work on the device (the node's
 *            per-device state file, include/vgpool/device_state.h), the
 *            target is the whole device, so idle time is used; the moment
 *            another container stamps activity the target drops back to
 *            the share, and since the pace never lets more than a few
 *            milliseconds of work queue up, the other container gets its
 *            turn within that
 *
 * The achieved share is published in the region (VGP_CTL_ACHIEVED_PPM) for
 * `vgpool top`.
 *
 * Test hook (redis-style): VGPOOL_TEST_SHARE_SLOW_MEASURE_US=N makes the
 * process's first measured launch N microseconds slower to start, as when
 * the thread is descheduled between the events or the launch waits behind
 * another container's kernels, so tests can show that one bad measurement
 * does not set the pace.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "clock.h"
#include "futex.h"
#include "hook_internal.h"
#include "log.h"
#include "shmfile.h"
#include "strutil.h"
#include "vgpool/device_state.h"
#include "vgpool/paths.h"

/* Controller state words in the region, after the public ones. */
enum {
  VGP_CTL_INTERVAL_NS = 3,  /* GCRA emission interval; 0 = not known yet */
  VGP_CTL_TAT_NS = 4,       /* GCRA theoretical arrival time */
  VGP_CTL_COST_NS = 5,      /* estimated device time per launch */
  VGP_CTL_LAUNCHES = 6,     /* governed launches admitted */
  VGP_CTL_WAITS = 7,        /* launches that had to wait for their turn */
  VGP_CTL_LAST_LAUNCH_NS = 8,
  VGP_CTL_LEASE_EXPIRY = 9, /* controller lease */
  VGP_CTL_LEASE_OWNER = 10, /* pid of the leader */
  VGP_CTL_GEN = 11,         /* low 32 bits: futex word, bumped on pace changes */
  VGP_CTL_BOOT = 12,        /* a launch measurement claimed until (ns) */
  VGP_CTL_MEASURED = 13,    /* launches measured with events so far */
};

#define VGP_TAU_NS (2 * VGP_NSEC_PER_MSEC)          /* burst tolerance */
#define VGP_TICK_NS (10 * VGP_NSEC_PER_MSEC)        /* controller period */
#define VGP_SAMPLE_NS (VGP_NSEC_PER_SEC / 6)        /* NVML sample cadence */
#define VGP_LEASE_NS (300 * VGP_NSEC_PER_MSEC)
#define VGP_ACTIVE_NS (50 * VGP_NSEC_PER_MSEC)      /* "has work" horizon */
#define VGP_ELASTIC_HEADROOM 1.02                   /* keep queues shallow */
#define VGP_POOL_LAUNCHES 32                        /* launches per estimate */
#define VGP_POOL_MAX_NS (2 * VGP_NSEC_PER_SEC)      /* or this much time */
#define VGP_BOOT_MEASURES 3       /* first launches timed with events */
#define VGP_GROSS_ERROR 2.0       /* estimate off by this factor: replace it */
#define VGP_GROSS_LAUNCHES 8      /* ... judged on at least this many launches */

struct vgp__share_dev {
  uint64_t *ctl;                 /* the region's words for this device */
  unsigned share;                /* target percent */
  int policy;
  struct vgp__shm devstate;      /* node-wide state of the device */
  int entry;                     /* our entry there, -1 if none */
  nvmlDevice_t nvml;
  uint64_t nvml_last_seen;       /* NVML timestamp (us) already consumed */
  uint64_t last_sample_ns;
  uint64_t launches_at_sample;
  uint64_t waits_at_sample;
  int skip_samples;
  double pool_busy_ns;           /* evidence pooled for the next estimate */
  uint64_t pool_launches;
  uint64_t pool_ns;
  int leader;
};

static struct vgp__share_dev vgp__share[VGP_MAX_DEVICES];
static uint64_t vgp__container_hash;
static pthread_once_t vgp__controller_once = PTHREAD_ONCE_INIT;

static inline uint64_t vgp__ld(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void vgp__st(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

static uint64_t vgp__fnv(const char *s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (; *s; s++) {
    h ^= (unsigned char)*s;
    h *= 0x100000001b3ull;
  }
  return h ? h : 1;
}

/* Wakes every launch waiting for its turn on this device (in any process
 * of the container): the pace changed. */
static void vgp__share_wake(struct vgp__share_dev *sd) {
  uint32_t *word = (uint32_t *)&sd->ctl[VGP_CTL_GEN];
  __atomic_add_fetch(word, 1, __ATOMIC_RELEASE);
  vgp__futex_wake_all(word);
}

static unsigned vgp__effective_pct(const struct vgp__share_dev *sd) {
  uint64_t e = vgp__ld(&sd->ctl[VGP_CTL_EFFECTIVE_PCT]);
  return e >= 1 && e <= 100 ? (unsigned)e : sd->share;
}

/* Sets the pace from the cost estimate and the target in force. */
static void vgp__set_interval(struct vgp__share_dev *sd, uint64_t cost, unsigned pct) {
  double interval = (double)cost * 100.0 / (double)pct;
  if (pct >= 100)
    interval *= VGP_ELASTIC_HEADROOM;
  uint64_t next = interval < 1.0 ? 1 : (uint64_t)interval;
  uint64_t prev = vgp__ld(&sd->ctl[VGP_CTL_INTERVAL_NS]);
  vgp__st(&sd->ctl[VGP_CTL_INTERVAL_NS], next);
  /* Sleepers computed their wake-up from the old pace; a faster one
   * concerns them now. */
  if (next < prev || prev == 0)
    vgp__share_wake(sd);
}

/* ---------------------------------------------------------- node state */

static int vgp__devstate_init(void *base, size_t size, void *arg) {
  struct vgp_devstate *ds = base;
  (void)size;
  vgp__strlcpy(ds->uuid, arg, sizeof(ds->uuid));
  return 0;
}

/* The node directory, for the container directory hook_init.c chose
 * (include/vgpool/paths.h): the agent's mount, <root>/node beside
 * <root>/containers/<id>, or the node root's (HAMi mode). */
static int vgp__node_dir(char *buf, size_t len) {
  const char *cdir = g_hook.container_dir;
  if (strcmp(cdir, VGP_CONTAINER_MOUNT) == 0)
    return snprintf(buf, len, "%s", VGP_NODE_MOUNT) >= (int)len ? -ENAMETOOLONG : 0;
  if (cdir[0] != '\0') {
    char tmp[sizeof(g_hook.container_dir)];
    vgp__strlcpy(tmp, cdir, sizeof(tmp));
    for (int up = 0; up < 2; up++) {
      char *slash = strrchr(tmp, '/');
      if (slash == NULL || slash == tmp)
        return -ENOENT;
      *slash = '\0';
    }
    return snprintf(buf, len, "%s/node", tmp) >= (int)len ? -ENAMETOOLONG : 0;
  }
  char root[4096];
  int r = vgp_root_dir(root, sizeof(root), 1);
  if (r < 0)
    return r;
  return snprintf(buf, len, "%s/node", root) >= (int)len ? -ENAMETOOLONG : 0;
}

static void vgp__devstate_open(struct vgp__share_dev *sd, const char *uuid) {
  char dir[4096], path[4200];
  sd->entry = -1;
  if (vgp__node_dir(dir, sizeof(dir)) < 0)
    return;
  mkdir(dir, 0777);
  snprintf(path, sizeof(path), "%s/%s", dir, uuid);
  if (vgp__shm_open_or_create(path, VGP_DEVSTATE_MAGIC, VGP_DEVSTATE_VERSION,
                              sizeof(struct vgp_devstate), 0666, vgp__devstate_init, (void *)uuid,
                              &sd->devstate, NULL) < 0) {
    vgp__log_warn("hook", "no node-wide state for %s: elastic shares cannot see other containers",
                  uuid);
    sd->devstate.base = NULL;
    return;
  }
  struct vgp_devstate *ds = sd->devstate.base;
  for (int i = 0; i < VGP_DEVSTATE_ENTRIES && sd->entry < 0; i++) {
    uint64_t expected = 0;
    if (ds->entries[i].container_hash == vgp__container_hash ||
        __atomic_compare_exchange_n(&ds->entries[i].container_hash, &expected, vgp__container_hash,
                                    0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
      sd->entry = i;
  }
  if (sd->entry >= 0) {
    struct vgp_devstate_entry *e = &ds->entries[sd->entry];
    e->share_pct = sd->share;
    e->policy = (uint32_t)sd->policy;
    e->priority = g_hook.limits.priority;
  }
}

/* Does another container have work on the device? */
static int vgp__others_active(struct vgp__share_dev *sd, uint64_t now) {
  struct vgp_devstate *ds = sd->devstate.base;
  if (ds == NULL)
    return 0;
  for (int i = 0; i < VGP_DEVSTATE_ENTRIES; i++) {
    if (i == sd->entry || __atomic_load_n(&ds->entries[i].container_hash, __ATOMIC_RELAXED) == 0)
      continue;
    uint64_t a = __atomic_load_n(&ds->entries[i].active_ns, __ATOMIC_ACQUIRE);
    if (a != 0 && now < a + VGP_ACTIVE_NS)
      return 1;
  }
  return 0;
}

/* ------------------------------------------------------------ controller */

/* Reads NVML's samples newer than the last ones consumed; returns the
 * container's share of the device over them (a fraction), or -1 when there
 * is nothing new. */
static double vgp__sample_share(struct vgp__share_dev *sd) {
  nvmlProcessUtilizationSample_t samples[256];
  unsigned n = 256;
  nvmlReturn_t r = vgp__real_nvml.nvmlDeviceGetProcessUtilization(sd->nvml, samples, &n,
                                                                  sd->nvml_last_seen);
  if (r == NVML_ERROR_NOT_FOUND)
    return 0.0; /* no process used the device since */
  if (r != NVML_SUCCESS)
    return -1;
  unsigned sum = 0;
  uint64_t newest = sd->nvml_last_seen;
  for (unsigned i = 0; i < n; i++) {
    if (samples[i].timeStamp > newest)
      newest = samples[i].timeStamp;
    if (vgp__container_pid(samples[i].pid, 0))
      sum += samples[i].smUtil;
  }
  if (newest == sd->nvml_last_seen)
    return -1;
  sd->nvml_last_seen = newest;
  return sum / 100.0;
}

/* One control step for a device this process leads. */
static void vgp__control(struct vgp__share_dev *sd, uint64_t now) {
  /* Tell the node whether we have work; see whether others do. */
  uint64_t last_launch = vgp__ld(&sd->ctl[VGP_CTL_LAST_LAUNCH_NS]);
  if (sd->devstate.base != NULL && sd->entry >= 0)
    __atomic_store_n(&((struct vgp_devstate *)sd->devstate.base)->entries[sd->entry].active_ns,
                     last_launch, __ATOMIC_RELEASE);
  unsigned pct = sd->share;
  if (sd->policy == VGP_POLICY_ELASTIC && !vgp__others_active(sd, now))
    pct = 100;
  uint64_t cost = vgp__ld(&sd->ctl[VGP_CTL_COST_NS]);
  if (pct != vgp__effective_pct(sd)) {
    vgp__st(&sd->ctl[VGP_CTL_EFFECTIVE_PCT], pct);
    if (cost > 0)
      vgp__set_interval(sd, cost, pct);
  }

  /* Feedback from what the container really used, once per sample. */
  if (now < sd->last_sample_ns + VGP_SAMPLE_NS || sd->nvml == NULL)
    return;
  double used = vgp__sample_share(sd);
  if (used < 0)
    return;
  uint64_t window = now - sd->last_sample_ns;
  sd->last_sample_ns = now;
  uint64_t launches = vgp__ld(&sd->ctl[VGP_CTL_LAUNCHES]);
  uint64_t waits = vgp__ld(&sd->ctl[VGP_CTL_WAITS]);
  uint64_t launched = launches - sd->launches_at_sample;
  int paced = waits != sd->waits_at_sample;
  sd->launches_at_sample = launches;
  sd->waits_at_sample = waits;

  /* The first sample after taking the lead may cover time before our
   * work (or another leader's window): it teaches nothing. */
  if (sd->skip_samples > 0) {
    sd->skip_samples--;
    return;
  }

  /* What `vgpool top` shows: about the last second (from the first
   * sample on, not from zero). */
  double w = (double)window / 1e9 > 1.0 ? 1.0 : (double)window / 1e9;
  if (vgp__ld(&sd->ctl[VGP_CTL_ACHIEVED_NS]) == 0)
    w = 1.0;
  double shown = (double)vgp__ld(&sd->ctl[VGP_CTL_ACHIEVED_PPM]) / 1e6;
  vgp__st(&sd->ctl[VGP_CTL_ACHIEVED_PPM], (uint64_t)((shown + (used - shown) * w) * 1e6));
  vgp__st(&sd->ctl[VGP_CTL_ACHIEVED_NS], now);

  vgp__log_debug("hook",
                 "share: used %.3f target %u%% launched %llu paced %d cost %llu ns interval %llu ns",
                 used, pct, (unsigned long long)launched, paced, (unsigned long long)cost,
                 (unsigned long long)vgp__ld(&sd->ctl[VGP_CTL_INTERVAL_NS]));
  /* Learn the device time per launch from what the container really used
   * and how many launches it made meanwhile. This needs no assumption
   * about whether the pace or the application was the limit, and no gain to
   * tune: in a steady state it is exact. The two counts cover windows that
   * are not quite aligned (NVML's sample periods, our ticks), an error of
   * up to a launch at each edge, so evidence is pooled until it spans
   * enough launches for that to be small. */
  if (used <= 0.0)
    return; /* no evidence; a cost still unknown (no measurement worked) is
               learned from the first evidence, as a gross error */
  sd->pool_busy_ns += used * (double)window;
  sd->pool_launches += launched;
  sd->pool_ns += window;
  double direct = sd->pool_launches > 0 ? sd->pool_busy_ns / (double)sd->pool_launches : 0.0;
  /* Far off (the first measurements waited behind other containers'
   * kernels, or the workload changed): take the evidence as it is. */
  int gross = sd->pool_launches >= VGP_GROSS_LAUNCHES &&
              (direct * VGP_GROSS_ERROR < (double)cost || direct > (double)cost * VGP_GROSS_ERROR);
  int pooled = sd->pool_launches >= VGP_POOL_LAUNCHES || sd->pool_ns >= VGP_POOL_MAX_NS;
  if (!gross && !pooled)
    return;
  if (gross || sd->pool_launches >= 3) {
    double next = gross ? direct : (double)cost + 0.5 * (direct - (double)cost);
    cost = next < 1.0 ? 1 : (uint64_t)next;
    vgp__st(&sd->ctl[VGP_CTL_COST_NS], cost);
    vgp__set_interval(sd, cost, pct);
  }
  sd->pool_busy_ns = 0;
  sd->pool_launches = 0;
  sd->pool_ns = 0;
}

/* Takes or keeps the controller lease of a device. */
static int vgp__lease(struct vgp__share_dev *sd, uint64_t now) {
  uint64_t expiry = vgp__ld(&sd->ctl[VGP_CTL_LEASE_EXPIRY]);
  uint64_t owner = vgp__ld(&sd->ctl[VGP_CTL_LEASE_OWNER]);
  uint64_t me = (uint64_t)getpid();
  if (owner == me && now < expiry) {
    vgp__st(&sd->ctl[VGP_CTL_LEASE_EXPIRY], now + VGP_LEASE_NS);
    return 1;
  }
  if (now < expiry)
    return 0;
  if (!__atomic_compare_exchange_n(&sd->ctl[VGP_CTL_LEASE_EXPIRY], &expiry, now + VGP_LEASE_NS, 0,
                                   __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
    return 0;
  vgp__st(&sd->ctl[VGP_CTL_LEASE_OWNER], me);
  return 1;
}

static void *vgp__controller(void *arg) {
  (void)arg;
  int have_nvml = vgp__hook_nvml_load() == 0 && vgp__real_nvml.nvmlInit_v2 != NULL &&
                  vgp__real_nvml.nvmlInit_v2() == NVML_SUCCESS;
  for (int d = 0; d < g_hook.ndev; d++) {
    if (!g_hook.dev[d].governed)
      continue;
    if (have_nvml && vgp__real_nvml.nvmlDeviceGetHandleByUUID(g_hook.dev[d].uuid, &vgp__share[d].nvml) !=
                         NVML_SUCCESS)
      vgp__share[d].nvml = NULL;
    vgp__devstate_open(&vgp__share[d], g_hook.dev[d].uuid);
  }
  if (!have_nvml)
    vgp__log_warn("hook", "NVML is unavailable: compute shares run on the first measurement only");
  for (;;) {
    uint64_t now = vgp__now_ns();
    for (int d = 0; d < g_hook.ndev; d++) {
      struct vgp__share_dev *sd = &vgp__share[d];
      if (!g_hook.dev[d].governed)
        continue;
      int lead = vgp__lease(sd, now);
      if (lead && !sd->leader) {
        /* Start measuring from now: what happened before was someone
         * else's window. */
        sd->last_sample_ns = now;
        sd->launches_at_sample = vgp__ld(&sd->ctl[VGP_CTL_LAUNCHES]);
        sd->waits_at_sample = vgp__ld(&sd->ctl[VGP_CTL_WAITS]);
        if (sd->nvml != NULL)
          vgp__sample_share(sd); /* consume the history before us */
        sd->skip_samples = 1;
        sd->pool_busy_ns = 0;
        sd->pool_launches = 0;
        sd->pool_ns = 0;
      }
      sd->leader = lead;
      if (lead)
        vgp__control(sd, now);
    }
    vgp__sleep_ns(VGP_TICK_NS);
  }
  return NULL;
}

static void vgp__controller_start(void) {
  pthread_t t;
  pthread_attr_t attr;
  sigset_t all, old;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  /* The controller must never take the application's signals. */
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  if (pthread_create(&t, &attr, vgp__controller, NULL) != 0)
    vgp__log_warn("hook", "cannot start the compute-share controller; shares stay at the first estimate");
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  pthread_attr_destroy(&attr);
}

void vgp__share_setup(void) {
  int any = 0;
  vgp__container_hash = vgp__fnv(g_hook.limits.container[0] ? g_hook.limits.container : "hami");
  for (int d = 0; d < g_hook.ndev; d++) {
    struct vgp__hdev *h = &g_hook.dev[d];
    h->governed = h->cores < 100;
    if (!h->governed)
      continue;
    struct vgp__share_dev *sd = &vgp__share[d];
    sd->ctl = g_hook.region.r->dev[h->region_dev].ctl;
    sd->share = h->cores;
    sd->policy = h->policy;
    sd->entry = -1;
    g_hook.region.r->dev[h->region_dev].cores = h->cores;
    g_hook.region.r->dev[h->region_dev].policy = (uint32_t)h->policy;
    if (vgp__ld(&sd->ctl[VGP_CTL_EFFECTIVE_PCT]) == 0)
      vgp__st(&sd->ctl[VGP_CTL_EFFECTIVE_PCT], h->cores);
    any = 1;
  }
  if (any)
    __atomic_store_n(&vgp__launch_gate, 1, __ATOMIC_RELEASE);
}

/* ---------------------------------------------------------------- launch */

/* Waits until the device's pace admits one launch; 1 if it had to wait. */
static int vgp__admit(struct vgp__share_dev *sd) {
  int waited = 0;
  for (;;) {
    uint64_t interval = vgp__ld(&sd->ctl[VGP_CTL_INTERVAL_NS]);
    uint32_t gen = __atomic_load_n((uint32_t *)&sd->ctl[VGP_CTL_GEN], __ATOMIC_ACQUIRE);
    uint64_t now = vgp__now_ns();
    if (interval == 0) {
      /* The first launch is being measured by someone: wait for it, but
       * never past its claim. */
      uint64_t boot = vgp__ld(&sd->ctl[VGP_CTL_BOOT]);
      if (boot == 0 || now > boot)
        return waited;
      vgp__futex_wait((uint32_t *)&sd->ctl[VGP_CTL_GEN], gen, VGP_NSEC_PER_MSEC);
      waited = 1;
      continue;
    }
    uint64_t tat = vgp__ld(&sd->ctl[VGP_CTL_TAT_NS]);
    if (tat > now + VGP_TAU_NS) {
      uint64_t wait = tat - VGP_TAU_NS - now;
      vgp__futex_wait((uint32_t *)&sd->ctl[VGP_CTL_GEN], gen, wait);
      waited = 1;
      continue;
    }
    uint64_t next = (tat > now ? tat : now) + interval;
    if (__atomic_compare_exchange_n(&sd->ctl[VGP_CTL_TAT_NS], &tat, next, 0, __ATOMIC_ACQ_REL,
                                    __ATOMIC_RELAXED))
      return waited;
  }
}

/* Runs the launch between two events to learn its device time: one of
 * the container's first estimates of its cost per launch, of which the
 * smallest is kept. */
static CUresult vgp__measured_launch(struct vgp__share_dev *sd, CUstream stream, vgp__launch_fn launch,
                                     void *args) {
  static int slowed; /* the test hook, once per process */
  CUevent start = NULL, end = NULL;
  CUresult r;
  if (vgp__real_cu.cuEventCreate(&start, 0) != CUDA_SUCCESS ||
      vgp__real_cu.cuEventCreate(&end, 0) != CUDA_SUCCESS ||
      vgp__real_cu.cuEventRecord(start, stream) != CUDA_SUCCESS) {
    r = launch(args);
    goto out;
  }
  const char *slow = getenv("VGPOOL_TEST_SHARE_SLOW_MEASURE_US");
  if (slow != NULL && !__atomic_exchange_n(&slowed, 1, __ATOMIC_ACQ_REL))
    vgp__sleep_ns((uint64_t)strtoull(slow, NULL, 10) * 1000);
  r = launch(args);
  if (r == CUDA_SUCCESS && vgp__real_cu.cuEventRecord(end, stream) == CUDA_SUCCESS &&
      vgp__real_cu.cuEventSynchronize(end) == CUDA_SUCCESS) {
    float ms = 0;
    if (vgp__real_cu.cuEventElapsedTime(&ms, start, end) == CUDA_SUCCESS && ms > 0) {
      /* Keep the smallest measurement: waiting behind others only adds. */
      uint64_t cost = (uint64_t)((double)ms * 1e6);
      uint64_t known = vgp__ld(&sd->ctl[VGP_CTL_COST_NS]);
      int lower = 0;
      while ((known == 0 || cost < known) &&
             !(lower = __atomic_compare_exchange_n(&sd->ctl[VGP_CTL_COST_NS], &known, cost, 0,
                                                   __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)))
        ;
      if (lower)
        vgp__set_interval(sd, cost, vgp__effective_pct(sd));
    }
  }
out:
  if (start != NULL)
    vgp__real_cu.cuEventDestroy_v2(start);
  if (end != NULL)
    vgp__real_cu.cuEventDestroy_v2(end);
  /* Whoever claimed the measurement is done with it either way. */
  __atomic_add_fetch(&sd->ctl[VGP_CTL_MEASURED], 1, __ATOMIC_RELEASE);
  vgp__st(&sd->ctl[VGP_CTL_BOOT], 0);
  vgp__share_wake(sd);
  return r;
}

CUresult vgp__launch_governed(CUstream stream, vgp__launch_fn launch, void *args) {
  int dev;
  if (!g_hook.devices_mapped || vgp__stream_device(stream, &dev) != CUDA_SUCCESS ||
      !g_hook.dev[dev].governed)
    return launch(args);
  struct vgp__share_dev *sd = &vgp__share[dev];
  pthread_once(&vgp__controller_once, vgp__controller_start);
  uint64_t now = vgp__now_ns();
  __atomic_store_n(&sd->ctl[VGP_CTL_LAST_LAUNCH_NS], now, __ATOMIC_RELAXED);
  /* One of the container's first launches on the device: time it, unless
   * another thread is timing one (then the pace, once known, applies). */
  if (vgp__ld(&sd->ctl[VGP_CTL_MEASURED]) < VGP_BOOT_MEASURES) {
    uint64_t boot = vgp__ld(&sd->ctl[VGP_CTL_BOOT]);
    if ((boot == 0 || now > boot) &&
        __atomic_compare_exchange_n(&sd->ctl[VGP_CTL_BOOT], &boot, now + VGP_NSEC_PER_SEC, 0,
                                    __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
      int waited = vgp__ld(&sd->ctl[VGP_CTL_INTERVAL_NS]) != 0 && vgp__admit(sd);
      if (waited)
        __atomic_add_fetch(&sd->ctl[VGP_CTL_WAITS], 1, __ATOMIC_RELAXED);
      /* Let what is already queued drain, so the measurement times this
       * launch alone. */
      vgp__real_cu.cuStreamSynchronize(stream);
      __atomic_add_fetch(&sd->ctl[VGP_CTL_LAUNCHES], 1, __ATOMIC_RELAXED);
      return vgp__measured_launch(sd, stream, launch, args);
    }
  }
  if (vgp__admit(sd))
    __atomic_add_fetch(&sd->ctl[VGP_CTL_WAITS], 1, __ATOMIC_RELAXED);
  __atomic_add_fetch(&sd->ctl[VGP_CTL_LAUNCHES], 1, __ATOMIC_RELAXED);
  return launch(args);
}
