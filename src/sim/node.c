/*
 * node.c - the shared node state of the simulated GPU node (see node.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "config.h"
#include "crashpoint.h"
#include "node.h"
#include "ofdlock.h"
#include "proc.h"
#include "rlock.h"
#include "strutil.h"

/* Liveness lock bytes live past the end of the file, one per slot; locks
 * beyond EOF are legal and never touch the data. */
#define VGP__SLOT_LOCK_BASE (1ull << 40)

/* Packing of a utilization bucket: the bucket's epoch (absolute bucket
 * number) in the high 40 bits and busy nanoseconds in the low 24 bits
 * (a 10 ms bucket holds at most 10^7 < 2^24 ns). */
#define VGP__BUSY_BITS 24
#define VGP__BUSY_MASK ((1ull << VGP__BUSY_BITS) - 1)
#define VGP__EPOCH_MASK ((1ull << (64 - VGP__BUSY_BITS)) - 1)

int vgp_sim_state_path(char *buf, size_t len) {
  const char *env = getenv("VGPOOL_SIM_STATE");
  const char *xdg = getenv("XDG_RUNTIME_DIR");
  int n;
  if (env != NULL && *env != '\0')
    n = snprintf(buf, len, "%s", env);
  else if (xdg != NULL && *xdg != '\0')
    n = snprintf(buf, len, "%s/vgpool-sim.state", xdg);
  else
    n = snprintf(buf, len, "/tmp/vgpool-sim-%u.state", (unsigned)getuid());
  return (n < 0 || (size_t)n >= len) ? -ENAMETOOLONG : 0;
}

_Static_assert(sizeof(pthread_mutex_t) <= sizeof(((struct vgp_sim_node *)0)->mem_lock),
               "the memory lock must fit its words in the file");

static pthread_mutex_t *vgp__mem_mutex(struct vgp_sim_node *node) {
  return (pthread_mutex_t *)(void *)node->mem_lock;
}

/* Takes the memory lock. When its last holder died holding it, a device
 * total may disagree with its slots: it is rebuilt from them (the slots
 * are what each process was given; a total is only their sum). */
static int vgp__mem_lock(struct vgp_sim_node *node) {
  int r = vgp__rlock_lock(vgp__mem_mutex(node), 0);
  if (r == 1) {
    for (uint32_t d = 0; d < node->device_count && d < VGP_SIM_MAX_DEVICES; d++) {
      uint64_t sum = 0;
      for (int i = 0; i < VGP_SIM_MAX_PROCS; i++)
        sum += __atomic_load_n(&node->slots[i].dev[d].used_bytes, __ATOMIC_ACQUIRE);
      __atomic_store_n(&node->dev[d].used_bytes, sum, __ATOMIC_RELEASE);
    }
    r = 0;
  }
  return r < 0 ? -ENOTRECOVERABLE : 0;
}

static void vgp__mem_unlock(struct vgp_sim_node *node) {
  vgp__rlock_unlock(vgp__mem_mutex(node));
}

struct vgp__init_arg {
  const struct vgp_sim_device_config *cfg;
  int count;
  const char *source;
};

static int vgp__node_init(void *base, size_t size, void *arg) {
  struct vgp_sim_node *node = base;
  const struct vgp__init_arg *a = arg;
  (void)size;
  node->device_count = (uint32_t)a->count;
  node->driver_version = VGP_CUDA_DRIVER_VERSION_DEFAULT;
  snprintf(node->driver_version_string, sizeof(node->driver_version_string),
           "%s", VGP_SIM_DRIVER_VERSION_STRING);
  const char *drv = getenv("VGPOOL_SIM_DRIVER_VERSION");
  if (drv != NULL && *drv != '\0') {
    long v = strtol(drv, NULL, 10);
    if (v >= 9000 && v <= 99990)
      node->driver_version = (uint32_t)v;
  }
  snprintf(node->spec, sizeof(node->spec), "%s", a->source);
  node->created_ns = vgp__now_ns();
  memcpy(node->cfg, a->cfg, sizeof(node->cfg[0]) * (size_t)a->count);
  return vgp__rlock_init(vgp__mem_mutex(node));
}

int vgp_sim_open(struct vgp_sim_handle *h, char *err, size_t errlen) {
  struct vgp_sim_device_config cfg[VGP_SIM_MAX_DEVICES];
  char source[512];
  int r, count;

  memset(h, 0, sizeof(*h));
  h->shm.fd = -1;
  h->own_slot = -1;
  pthread_mutex_init(&h->reclaim_lock, NULL);
  memset(cfg, 0, sizeof(cfg));
  count = vgp_sim_config_from_env(cfg, VGP_SIM_MAX_DEVICES, source,
                                  sizeof(source), err, errlen);
  if (count < 0)
    return count;
  r = vgp_sim_state_path(h->path, sizeof(h->path));
  if (r < 0) {
    vgp__errf(err, errlen, "simulated node state path is too long");
    return r;
  }
  struct vgp__init_arg arg = {cfg, count, source};
  r = vgp__shm_open_or_create(h->path, VGP_SIM_MAGIC, VGP_SIM_VERSION,
                              sizeof(struct vgp_sim_node), 0666,
                              vgp__node_init, &arg, &h->shm, NULL);
  if (r < 0) {
    vgp__errf(err, errlen,
              "cannot use simulated node state %s: %s (reset it with "
              "'vgpool sim reset' or remove the file)",
              h->path, vgp__shm_strerror(r));
    return r;
  }
  h->node = h->shm.base;
  if (strncmp(h->node->spec, source, sizeof(h->node->spec)) != 0) {
    vgp__errf(err, errlen,
              "simulated node %s was created for devices \"%s\", but the "
              "environment now asks for \"%s\"; run 'vgpool sim reset' (or "
              "remove the file) to recreate it, or set VGPOOL_SIM_STATE to "
              "another path",
              h->path, h->node->spec, source);
    vgp_sim_close(h);
    return -EEXIST;
  }
  return 0;
}

int vgp_sim_open_existing(struct vgp_sim_handle *h, int writable, char *err,
                          size_t errlen) {
  int r;
  memset(h, 0, sizeof(*h));
  h->shm.fd = -1;
  h->own_slot = -1;
  pthread_mutex_init(&h->reclaim_lock, NULL);
  r = vgp_sim_state_path(h->path, sizeof(h->path));
  if (r < 0)
    return r;
  r = vgp__shm_open(h->path, VGP_SIM_MAGIC, VGP_SIM_VERSION,
                    sizeof(struct vgp_sim_node), writable, &h->shm);
  if (r < 0) {
    vgp__errf(err, errlen, "cannot open simulated node state %s: %s",
              h->path, vgp__shm_strerror(r));
    return r;
  }
  h->node = h->shm.base;
  return 0;
}

void vgp_sim_close(struct vgp_sim_handle *h) {
  vgp__shm_close(&h->shm);
  h->node = NULL;
}

static uint64_t vgp__slot_lock_offset(int slot) {
  return VGP__SLOT_LOCK_BASE + (uint64_t)slot;
}

int vgp_sim_slot_alive(struct vgp_sim_handle *h, int slot) {
  /* Our own lock does not conflict with our own open file description, so
   * the kernel would report our slot as unlocked. */
  if (slot == h->own_slot)
    return 1;
  return vgp__ofd_is_locked(h->shm.fd, vgp__slot_lock_offset(slot)) == 1;
}

/* Returns a dead slot's resources; the caller holds the slot's lock.
 * Without the memory lock (left broken by a foreign program) the memory
 * stays counted rather than be returned unsafely. */
static void vgp__slot_scrub(struct vgp_sim_node *node, int slot) {
  struct vgp_sim_proc_slot *s = &node->slots[slot];
  if (vgp__mem_lock(node) < 0)
    return;
  for (uint32_t d = 0; d < node->device_count; d++) {
    uint64_t used = __atomic_exchange_n(&s->dev[d].used_bytes, 0, __ATOMIC_ACQ_REL);
    if (used)
      __atomic_fetch_sub(&node->dev[d].used_bytes, used, __ATOMIC_ACQ_REL);
    __atomic_store_n(&s->dev[d].contexts, 0, __ATOMIC_RELEASE);
  }
  vgp__mem_unlock(node);
}

static void vgp__slot_reset_counters(struct vgp_sim_node *node, int slot) {
  struct vgp_sim_proc_slot *s = &node->slots[slot];
  for (uint32_t d = 0; d < node->device_count; d++) {
    struct vgp_sim_proc_device *pd = &s->dev[d];
    pd->busy_ns = 0;
    pd->kernels = 0;
    pd->copy_ns = 0;
    memset(pd->sm_buckets, 0, sizeof(pd->sm_buckets));
    memset(pd->mem_buckets, 0, sizeof(pd->mem_buckets));
  }
}

int vgp_sim_slot_claim(struct vgp_sim_handle *h, int *ret_slot) {
  struct vgp_sim_node *node = h->node;
  for (int attempt = 0; attempt < 2; attempt++) {
    for (int i = 0; i < VGP_SIM_MAX_PROCS; i++) {
      struct vgp_sim_proc_slot *s = &node->slots[i];
      uint32_t expected = VGP_SIM_SLOT_FREE;
      if (!__atomic_compare_exchange_n(&s->state, &expected,
                                       VGP_SIM_SLOT_CLAIMING, 0,
                                       __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
        continue;
      uint64_t mine = vgp__now_ns();
      __atomic_store_n(&s->claim_ns, mine, __ATOMIC_RELEASE);
      if (vgp__ofd_trylock(h->shm.fd, vgp__slot_lock_offset(i)) < 0) {
        /* Someone holds the slot's lock (a reclaimer at work): leave it. */
        __atomic_store_n(&s->state, VGP_SIM_SLOT_FREE, __ATOMIC_RELEASE);
        continue;
      }
      /* If we were descheduled for long enough, a reclaimer may have
       * freed this claim and another process claimed the slot since: then
       * it is theirs. */
      if (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != VGP_SIM_SLOT_CLAIMING ||
          __atomic_load_n(&s->claim_ns, __ATOMIC_ACQUIRE) != mine) {
        vgp__ofd_unlock(h->shm.fd, vgp__slot_lock_offset(i));
        continue;
      }
      vgp__slot_scrub(node, i);
      vgp__slot_reset_counters(node, i);
      s->pid = (int32_t)getpid();
      uint64_t start = 0;
      vgp__proc_start_time(0, &start);
      s->start_time = start;
      memset(s->comm, 0, sizeof(s->comm));
      vgp__proc_comm(getpid(), s->comm, sizeof(s->comm));
      __atomic_store_n(&s->state, VGP_SIM_SLOT_ACTIVE, __ATOMIC_RELEASE);
      h->own_slot = i;
      *ret_slot = i;
      return 0;
    }
    if (vgp_sim_reclaim_dead(h) == 0)
      break;
  }
  return -ENOSPC;
}

void vgp_sim_slot_release(struct vgp_sim_handle *h, int slot) {
  struct vgp_sim_node *node = h->node;
  if (slot < 0 || slot >= VGP_SIM_MAX_PROCS)
    return;
  vgp__slot_scrub(node, slot);
  if (slot == h->own_slot)
    h->own_slot = -1;
  __atomic_store_n(&node->slots[slot].pid, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&node->slots[slot].state, VGP_SIM_SLOT_FREE, __ATOMIC_RELEASE);
  vgp__ofd_unlock(h->shm.fd, vgp__slot_lock_offset(slot));
}

int vgp_sim_reclaim_dead(struct vgp_sim_handle *h) {
  struct vgp_sim_node *node = h->node;
  int freed = 0;
  pthread_mutex_lock(&h->reclaim_lock);
  uint64_t now = vgp__now_ns();
  for (int i = 0; i < VGP_SIM_MAX_PROCS; i++) {
    struct vgp_sim_proc_slot *s = &node->slots[i];
    uint32_t state = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
    if (state == VGP_SIM_SLOT_FREE || i == h->own_slot)
      continue;
    /* A slot stuck in CLAIMING belongs to a process that died between the
     * compare-and-swap and taking its lock; give it a second to finish. */
    if (state == VGP_SIM_SLOT_CLAIMING && now - s->claim_ns < VGP_NSEC_PER_SEC)
      continue;
    if (vgp__ofd_trylock(h->shm.fd, vgp__slot_lock_offset(i)) < 0)
      continue; /* alive (or another reclaimer is at it) */
    if (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != VGP_SIM_SLOT_FREE) {
      vgp__slot_scrub(node, i);
      __atomic_store_n(&s->pid, 0, __ATOMIC_RELAXED);
      __atomic_store_n(&s->state, VGP_SIM_SLOT_FREE, __ATOMIC_RELEASE);
      freed++;
    }
    vgp__ofd_unlock(h->shm.fd, vgp__slot_lock_offset(i));
  }
  pthread_mutex_unlock(&h->reclaim_lock);
  return freed;
}

int vgp_sim_mem_charge(struct vgp_sim_handle *h, int slot, int dev,
                       uint64_t bytes) {
  struct vgp_sim_node *node = h->node;
  struct vgp_sim_device_state *ds = &node->dev[dev];
  uint64_t total = node->cfg[dev].total_memory;
  /* A GPU frees a process's memory the moment the process dies. The node
   * learns of deaths only by looking, so it looks before every charge:
   * memory of a dead process never coexists with a new allocation. */
  vgp_sim_reclaim_dead(h);
  for (int attempt = 0; attempt < 2; attempt++) {
    if (vgp__mem_lock(node) < 0)
      return -ENOTRECOVERABLE;
    uint64_t used = __atomic_load_n(&ds->used_bytes, __ATOMIC_ACQUIRE);
    int fits = bytes <= total && used <= total - bytes;
    if (fits) {
      __atomic_store_n(&ds->used_bytes, used + bytes, __ATOMIC_RELEASE);
      vgp__crash_point("sim-charge");
      __atomic_fetch_add(&node->slots[slot].dev[dev].used_bytes, bytes, __ATOMIC_ACQ_REL);
    }
    vgp__mem_unlock(node);
    if (fits)
      return 0;
    /* Full: a process may have died since we looked. */
    if (attempt == 0 && vgp_sim_reclaim_dead(h) == 0)
      break;
  }
  return -ENOMEM;
}

void vgp_sim_mem_uncharge(struct vgp_sim_handle *h, int slot, int dev,
                          uint64_t bytes) {
  struct vgp_sim_node *node = h->node;
  if (vgp__mem_lock(node) < 0)
    return; /* stays counted until the slot is reclaimed */
  __atomic_fetch_sub(&node->slots[slot].dev[dev].used_bytes, bytes, __ATOMIC_ACQ_REL);
  __atomic_fetch_sub(&node->dev[dev].used_bytes, bytes, __ATOMIC_ACQ_REL);
  vgp__mem_unlock(node);
}

void vgp_sim_buckets_add(uint64_t *ring, uint64_t start_ns, uint64_t end_ns) {
  while (start_ns < end_ns) {
    uint64_t epoch = start_ns / VGP_SIM_BUCKET_NS;
    uint64_t bucket_end = (epoch + 1) * VGP_SIM_BUCKET_NS;
    uint64_t chunk = (end_ns < bucket_end ? end_ns : bucket_end) - start_ns;
    uint64_t tag = epoch & VGP__EPOCH_MASK;
    uint64_t *b = &ring[epoch % VGP_SIM_BUCKETS];
    uint64_t old = __atomic_load_n(b, __ATOMIC_RELAXED), next;
    for (;;) {
      uint64_t old_tag = old >> VGP__BUSY_BITS;
      /* A newer epoch in the slot means this history has been overwritten;
       * an older one is stale and restarts from zero. */
      if (old_tag > tag)
        break;
      uint64_t busy = (old_tag == tag ? (old & VGP__BUSY_MASK) : 0) + chunk;
      if (busy > VGP_SIM_BUCKET_NS)
        busy = VGP_SIM_BUCKET_NS;
      next = (tag << VGP__BUSY_BITS) | busy;
      if (__atomic_compare_exchange_n(b, &old, next, 1, __ATOMIC_RELAXED,
                                      __ATOMIC_RELAXED))
        break;
    }
    start_ns += chunk;
  }
}

uint64_t vgp_sim_buckets_sum(const uint64_t *ring, uint64_t from_ns,
                             uint64_t to_ns) {
  uint64_t sum = 0;
  if (to_ns <= from_ns)
    return 0;
  for (uint64_t epoch = from_ns / VGP_SIM_BUCKET_NS;
       epoch * VGP_SIM_BUCKET_NS < to_ns; epoch++) {
    uint64_t v = __atomic_load_n(&ring[epoch % VGP_SIM_BUCKETS], __ATOMIC_RELAXED);
    if ((v >> VGP__BUSY_BITS) != (epoch & VGP__EPOCH_MASK))
      continue;
    uint64_t busy = v & VGP__BUSY_MASK;
    /* Buckets cut by the window's edges count in proportion. */
    uint64_t b_start = epoch * VGP_SIM_BUCKET_NS, b_end = b_start + VGP_SIM_BUCKET_NS;
    uint64_t lo = from_ns > b_start ? from_ns : b_start;
    uint64_t hi = to_ns < b_end ? to_ns : b_end;
    sum += busy * (hi - lo) / VGP_SIM_BUCKET_NS;
  }
  return sum;
}

uint64_t vgp_sim_engine_run(struct vgp_sim_handle *h, int slot, int dev,
                            uint64_t not_before_ns, uint64_t duration_ns) {
  struct vgp_sim_node *node = h->node;
  struct vgp_sim_device_state *ds = &node->dev[dev];
  uint64_t busy = __atomic_load_n(&ds->busy_until_ns, __ATOMIC_ACQUIRE), start;
  do {
    start = busy > not_before_ns ? busy : not_before_ns;
  } while (!__atomic_compare_exchange_n(&ds->busy_until_ns, &busy,
                                        start + duration_ns, 1, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE));
  uint64_t end = start + duration_ns;
  __atomic_fetch_add(&ds->busy_total_ns, duration_ns, __ATOMIC_RELAXED);
  __atomic_fetch_add(&ds->kernels_total, 1, __ATOMIC_RELAXED);
  vgp_sim_buckets_add(ds->sm_buckets, start, end);
  if (slot >= 0) {
    struct vgp_sim_proc_device *pd = &node->slots[slot].dev[dev];
    __atomic_fetch_add(&pd->busy_ns, duration_ns, __ATOMIC_RELAXED);
    __atomic_fetch_add(&pd->kernels, 1, __ATOMIC_RELAXED);
    vgp_sim_buckets_add(pd->sm_buckets, start, end);
  }
  return start;
}

void vgp_sim_copy_account(struct vgp_sim_handle *h, int slot, int dev,
                          uint64_t start_ns, uint64_t duration_ns) {
  struct vgp_sim_node *node = h->node;
  struct vgp_sim_device_state *ds = &node->dev[dev];
  __atomic_fetch_add(&ds->copy_total_ns, duration_ns, __ATOMIC_RELAXED);
  vgp_sim_buckets_add(ds->mem_buckets, start_ns, start_ns + duration_ns);
  if (slot >= 0) {
    struct vgp_sim_proc_device *pd = &node->slots[slot].dev[dev];
    __atomic_fetch_add(&pd->copy_ns, duration_ns, __ATOMIC_RELAXED);
    vgp_sim_buckets_add(pd->mem_buckets, start_ns, start_ns + duration_ns);
  }
}
