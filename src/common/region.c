/*
 * region.c - a container's region file (see include/vgpool/region.h for the
 * layout and the locking scheme, and region.h beside this file for the
 * operations).
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "crashpoint.h"
#include "log.h"
#include "ofdlock.h"
#include "proc.h"
#include "region.h"
#include "rlock.h"
#include "strutil.h"

_Static_assert(sizeof(struct vgp_file_header) == sizeof(struct vgp__shm_header),
               "the public file header must match the shared-file header");

_Static_assert(sizeof(pthread_mutex_t) <= sizeof(((struct vgp_region *)0)->lock),
               "the region lock must fit its words in the file");

/* Lock bytes past the end of the file: one per slot, and the learn lock. */
#define VGP__LOCK_BASE (1ull << 40)
#define VGP__SLOT_LOCK(i) (VGP__LOCK_BASE + 1 + (uint64_t)(i))
#define VGP__LEARN_LOCK (VGP__SLOT_LOCK(VGP_REGION_MAX_PROCS) + 1)

static pthread_mutex_t *vgp__region_mutex(struct vgp_region *r) {
  return (pthread_mutex_t *)(void *)r->lock;
}

/* Fills a new region before it is published; arg is the container's
 * limits, or NULL for an empty region (HAMi compatibility mode). */
static int vgp__region_init(void *base, size_t size, void *arg) {
  struct vgp_region *r = base;
  const struct vgp_limits *l = arg;
  (void)size;
  int e = vgp__rlock_init(vgp__region_mutex(r));
  if (e < 0)
    return e;
  if (l == NULL)
    return 0;
  vgp__strlcpy(r->container, l->container, sizeof(r->container));
  r->priority = l->priority;
  r->oversubscribe = (uint32_t)l->oversubscribe;
  r->device_count = l->ndevices;
  for (unsigned i = 0; i < l->ndevices; i++) {
    vgp__strlcpy(r->dev[i].uuid, l->dev[i].uuid, sizeof(r->dev[i].uuid));
    r->dev[i].limit = l->dev[i].memory;
    r->dev[i].cores = l->dev[i].cores;
    r->dev[i].policy = (uint32_t)l->dev[i].policy;
  }
  return 0;
}

int vgp__region_create(const char *path, const struct vgp_limits *limits) {
  struct vgp__shm shm;
  int created = 0;
  int r = vgp__shm_open_or_create(path, VGP_REGION_MAGIC, VGP_REGION_VERSION,
                                  sizeof(struct vgp_region), 0666, vgp__region_init,
                                  (void *)limits, &shm, &created);
  if (r < 0)
    return r;
  vgp__shm_close(&shm);
  return created ? 0 : -EEXIST;
}

static void vgp__region_fill(struct vgp__region *h) {
  h->r = h->shm.base;
  h->own_slot = -1;
  pthread_mutex_init(&h->thread_lock, NULL);
  pthread_mutex_init(&h->reclaim_lock, NULL);
}

int vgp__region_open(struct vgp__region *h, const char *path, int writable, char *err,
                     size_t errlen) {
  memset(h, 0, sizeof(*h));
  h->shm.fd = -1;
  h->own_slot = -1;
  int r = vgp__shm_open(path, VGP_REGION_MAGIC, VGP_REGION_VERSION, sizeof(struct vgp_region),
                        writable, &h->shm);
  if (r < 0) {
    vgp__errf(err, errlen, "region file %s: %s", path, vgp__shm_strerror(r));
    return r;
  }
  vgp__region_fill(h);
  return 0;
}

int vgp__region_open_or_create(struct vgp__region *h, const char *path, char *err,
                               size_t errlen) {
  memset(h, 0, sizeof(*h));
  h->shm.fd = -1;
  h->own_slot = -1;
  int r = vgp__shm_open_or_create(path, VGP_REGION_MAGIC, VGP_REGION_VERSION,
                                  sizeof(struct vgp_region), 0666, vgp__region_init, NULL,
                                  &h->shm, NULL);
  if (r < 0) {
    vgp__errf(err, errlen, "region file %s: %s", path, vgp__shm_strerror(r));
    return r;
  }
  vgp__region_fill(h);
  return 0;
}

void vgp__region_close(struct vgp__region *h) {
  vgp__shm_close(&h->shm);
  h->r = NULL;
  h->own_slot = -1;
}

/* Rebuilds each device's total from the slots after a lock holder died,
 * perhaps mid-update. Called with the region lock held. */
static void vgp__region_repair(struct vgp_region *r) {
  for (uint32_t d = 0; d < r->device_count && d < VGP_MAX_DEVICES; d++) {
    uint64_t sum = 0;
    for (int i = 0; i < VGP_REGION_MAX_PROCS; i++)
      if (__atomic_load_n(&r->slots[i].state, __ATOMIC_ACQUIRE) != VGP_REGION_SLOT_FREE)
        sum += r->slots[i].used[d];
    __atomic_store_n(&r->dev[d].used, sum, __ATOMIC_RELEASE);
  }
  r->repairs++;
}

/* Takes the region lock. When its last holder died holding it, the totals
 * may be half updated: they are rebuilt from the slots before going on (a
 * death during the rebuild leaves the lock to the next taker the same way,
 * and the rebuild is idempotent). Returns 0, or -ENOTRECOVERABLE (the lock
 * is not taken). */
static int vgp__region_lock(struct vgp__region *h) {
  int e = vgp__rlock_lock(vgp__region_mutex(h->r), 0);
  if (e == 1) {
    vgp__region_repair(h->r);
    e = 0;
  }
  if (e < 0) {
    vgp__log_error("region", "the region lock of container %.*s is broken (%s); "
                   "memory charges are refused", (int)sizeof(h->r->container), h->r->container,
                   strerror(-e));
    return -ENOTRECOVERABLE;
  }
  return 0;
}

static void vgp__region_unlock(struct vgp__region *h) {
  vgp__rlock_unlock(vgp__region_mutex(h->r));
}

void vgp__region_learn_lock(struct vgp__region *h) {
  pthread_mutex_lock(&h->thread_lock);
  vgp__ofd_lock_wait(h->shm.fd, VGP__LEARN_LOCK);
  pthread_mutex_unlock(&h->thread_lock);
}

void vgp__region_learn_unlock(struct vgp__region *h) {
  vgp__ofd_unlock(h->shm.fd, VGP__LEARN_LOCK);
}

int vgp__region_device(struct vgp__region *h, const char *uuid, int add, uint64_t limit) {
  struct vgp_region *r = h->r;
  for (uint32_t d = 0; d < r->device_count && d < VGP_MAX_DEVICES; d++)
    if (strcmp(r->dev[d].uuid, uuid) == 0)
      return (int)d;
  if (!add)
    return -ENOENT;
  if (vgp__region_lock(h) < 0)
    return -ENOTRECOVERABLE;
  int found = -ENOSPC;
  for (uint32_t d = 0; d < r->device_count && d < VGP_MAX_DEVICES; d++)
    if (strcmp(r->dev[d].uuid, uuid) == 0)
      found = (int)d;
  if (found < 0 && r->device_count < VGP_MAX_DEVICES) {
    struct vgp_region_device *dv = &r->dev[r->device_count];
    vgp__strlcpy(dv->uuid, uuid, sizeof(dv->uuid));
    dv->limit = limit;
    dv->cores = 100;
    found = (int)r->device_count;
    __atomic_store_n(&r->device_count, r->device_count + 1, __ATOMIC_RELEASE);
  }
  vgp__region_unlock(h);
  return found;
}

int vgp__region_slot_alive(struct vgp__region *h, int slot) {
  if (slot == h->own_slot)
    return 1;
  return vgp__ofd_is_locked(h->shm.fd, VGP__SLOT_LOCK(slot)) == 1;
}

int vgp__region_claim(struct vgp__region *h, int *ret_slot) {
  struct vgp_region *r = h->r;
  for (int attempt = 0; attempt < 2; attempt++) {
    for (int i = 0; i < VGP_REGION_MAX_PROCS; i++) {
      struct vgp_region_slot *s = &r->slots[i];
      uint32_t expected = VGP_REGION_SLOT_FREE;
      if (!__atomic_compare_exchange_n(&s->state, &expected, VGP_REGION_SLOT_CLAIMING, 0,
                                       __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
        continue;
      uint64_t mine = vgp__now_ns();
      __atomic_store_n(&s->claim_ns, mine, __ATOMIC_RELEASE);
      if (vgp__ofd_trylock(h->shm.fd, VGP__SLOT_LOCK(i)) < 0) {
        /* Someone holds the slot's lock (a reclaimer at work): leave it. */
        __atomic_store_n(&s->state, VGP_REGION_SLOT_FREE, __ATOMIC_RELEASE);
        continue;
      }
      /* If we were descheduled for long enough, a reclaimer may have
       * freed this claim and another process claimed the slot since: then
       * it is theirs. */
      if (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != VGP_REGION_SLOT_CLAIMING ||
          __atomic_load_n(&s->claim_ns, __ATOMIC_ACQUIRE) != mine) {
        vgp__ofd_unlock(h->shm.fd, VGP__SLOT_LOCK(i));
        continue;
      }
      s->pid = (int32_t)getpid();
      s->host_pid = vgp__proc_host_pid();
      uint64_t start = 0;
      vgp__proc_start_time(0, &start);
      s->start_time = start;
      memset(s->comm, 0, sizeof(s->comm));
      vgp__proc_comm(getpid(), s->comm, sizeof(s->comm));
      __atomic_store_n(&s->state, VGP_REGION_SLOT_ACTIVE, __ATOMIC_RELEASE);
      h->own_slot = i;
      *ret_slot = i;
      return 0;
    }
    if (vgp__region_reclaim(h) == 0)
      break;
  }
  return -ENOSPC;
}

/* Returns a slot's charges and frees it; the caller holds the slot's lock
 * byte (its own slot, or a dead one it took over). */
static void vgp__region_free_slot(struct vgp__region *h, int slot) {
  struct vgp_region *r = h->r;
  struct vgp_region_slot *s = &r->slots[slot];
  /* Without the lock the charges cannot be returned safely: the slot stays
   * taken (and counted) rather than lose track of them. */
  if (vgp__region_lock(h) < 0)
    return;
  for (uint32_t d = 0; d < r->device_count && d < VGP_MAX_DEVICES; d++) {
    uint64_t used = s->used[d];
    if (used == 0)
      continue;
    uint64_t total = __atomic_load_n(&r->dev[d].used, __ATOMIC_ACQUIRE);
    __atomic_store_n(&r->dev[d].used, total >= used ? total - used : 0, __ATOMIC_RELEASE);
    s->used[d] = 0;
  }
  s->pid = 0;
  s->host_pid = 0;
  __atomic_store_n(&s->state, VGP_REGION_SLOT_FREE, __ATOMIC_RELEASE);
  vgp__region_unlock(h);
}

void vgp__region_release_slot(struct vgp__region *h, int slot) {
  if (slot < 0 || slot >= VGP_REGION_MAX_PROCS)
    return;
  vgp__region_free_slot(h, slot);
  if (slot == h->own_slot)
    h->own_slot = -1;
  vgp__ofd_unlock(h->shm.fd, VGP__SLOT_LOCK(slot));
}

int vgp__region_reclaim(struct vgp__region *h) {
  struct vgp_region *r = h->r;
  int freed = 0;
  pthread_mutex_lock(&h->reclaim_lock);
  uint64_t now = vgp__now_ns();
  for (int i = 0; i < VGP_REGION_MAX_PROCS; i++) {
    struct vgp_region_slot *s = &r->slots[i];
    uint32_t state = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
    if (state == VGP_REGION_SLOT_FREE || i == h->own_slot)
      continue;
    if (state == VGP_REGION_SLOT_CLAIMING && now - s->claim_ns < VGP_NSEC_PER_SEC)
      continue;
    if (vgp__ofd_trylock(h->shm.fd, VGP__SLOT_LOCK(i)) < 0)
      continue;
    if (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != VGP_REGION_SLOT_FREE) {
      vgp__region_free_slot(h, i);
      freed++;
    }
    vgp__ofd_unlock(h->shm.fd, VGP__SLOT_LOCK(i));
  }
  pthread_mutex_unlock(&h->reclaim_lock);
  return freed;
}

int vgp__region_charge(struct vgp__region *h, int slot, int dev, uint64_t bytes, uint64_t limit) {
  struct vgp_region *r = h->r;
  struct vgp_region_device *dv = &r->dev[dev];
  if (vgp__region_lock(h) < 0)
    return -ENOTRECOVERABLE;
  uint64_t used = __atomic_load_n(&dv->used, __ATOMIC_ACQUIRE);
  if (limit != VGP_REGION_NO_LIMIT && (bytes > limit || used > limit - bytes)) {
    dv->oom_events++;
    vgp__region_unlock(h);
    return -EDQUOT;
  }
  __atomic_store_n(&dv->used, used + bytes, __ATOMIC_RELEASE);
  vgp__crash_point("region-charge");
  r->slots[slot].used[dev] += bytes;
  if (used + bytes > dv->peak)
    dv->peak = used + bytes;
  vgp__region_unlock(h);
  return 0;
}

void vgp__region_uncharge(struct vgp__region *h, int slot, int dev, uint64_t bytes) {
  struct vgp_region *r = h->r;
  struct vgp_region_device *dv = &r->dev[dev];
  if (vgp__region_lock(h) < 0)
    return; /* logged; the charge stays until the slot is reclaimed */
  uint64_t used = __atomic_load_n(&dv->used, __ATOMIC_ACQUIRE);
  __atomic_store_n(&dv->used, used >= bytes ? used - bytes : 0, __ATOMIC_RELEASE);
  uint64_t mine = r->slots[slot].used[dev];
  r->slots[slot].used[dev] = mine >= bytes ? mine - bytes : 0;
  vgp__region_unlock(h);
}
