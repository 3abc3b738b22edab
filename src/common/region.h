/*
 * region.h (internal) - operations on a container's region file.
 *
 * The layout is public (include/vgpool/region.h); these functions are how
 * vgpool's own programs create, open and update it. All return 0 or a
 * negative errno; errors from opening name the problem in `err`.
 */
#ifndef VGP_COMMON_REGION_H
#define VGP_COMMON_REGION_H

#include <pthread.h>
#include <stdint.h>

#include "shmfile.h"
#include "vgpool/region.h"

struct vgp__region {
  struct vgp__shm shm;
  struct vgp_region *r;
  int own_slot;            /* slot claimed through this handle, or -1 */
  /* Byte locks belong to the open file description, which all threads of
   * the process share: two threads would both "hold" the same byte. These
   * mutexes exclude the process's other threads from the learn lock and
   * from reclaiming (where two threads could otherwise both take over one
   * dead slot, and the second free a slot a new process had just claimed). */
  pthread_mutex_t thread_lock;
  pthread_mutex_t reclaim_lock;
};

/* Creates the region of a container from its limits (fails with -EEXIST
 * if the file exists). */
int vgp__region_create(const char *path, const struct vgp_limits *limits);

/* Opens an existing region; checks magic, version and size. */
int vgp__region_open(struct vgp__region *h, const char *path, int writable,
                     char *err, size_t errlen);

/* Opens the region, creating an empty one (devices added on first use)
 * when it does not exist. For HAMi compatibility mode. */
int vgp__region_open_or_create(struct vgp__region *h, const char *path,
                               char *err, size_t errlen);

void vgp__region_close(struct vgp__region *h);

/* Finds the device entry for a UUID, adding it with the given limit when
 * missing and `add` is set. Returns its index or -ENOENT / -ENOSPC. */
int vgp__region_device(struct vgp__region *h, const char *uuid, int add,
                       uint64_t limit);

/* Claims a process slot for the caller. -ENOSPC when all are in use by
 * live processes. */
int vgp__region_claim(struct vgp__region *h, int *ret_slot);

/* Returns the caller's slot and everything charged to it. */
void vgp__region_release_slot(struct vgp__region *h, int slot);

/* Charges bytes to (slot, dev) if the container's total stays within
 * `limit`; VGP_REGION_NO_LIMIT charges unconditionally (devices without a
 * quota, and memory the driver already handed out). Returns 0, -EDQUOT, or
 * -ENOTRECOVERABLE when the region lock is broken beyond repair (a foreign
 * program released it mid-update). The limit is the caller's: processes
 * enforce the quota they were given. */
#define VGP_REGION_NO_LIMIT UINT64_MAX
int vgp__region_charge(struct vgp__region *h, int slot, int dev,
                       uint64_t bytes, uint64_t limit);

/* Returns bytes charged to (slot, dev). */
void vgp__region_uncharge(struct vgp__region *h, int slot, int dev,
                          uint64_t bytes);

/* Serializes learning a fact about the container (the per-context memory
 * footprint) across its processes; released when its holder dies. */
void vgp__region_learn_lock(struct vgp__region *h);
void vgp__region_learn_unlock(struct vgp__region *h);

/* Returns the charges of processes that died; returns how many slots were
 * freed. */
int vgp__region_reclaim(struct vgp__region *h);

/* 1 if the slot's owner holds its liveness lock (or it is ours). */
int vgp__region_slot_alive(struct vgp__region *h, int slot);

#endif
