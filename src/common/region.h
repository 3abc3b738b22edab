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
   * the process share; this mutex excludes the other threads. */
  pthread_mutex_t thread_lock;
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

/* Charges bytes to (slot, dev) if the container stays within the device's
 * limit (or has none). Returns 0 or -EDQUOT. With `force`, charges even
 * past the limit (for memory the driver already allocated). */
int vgp__region_charge(struct vgp__region *h, int slot, int dev,
                       uint64_t bytes, int force);

/* Returns bytes charged to (slot, dev). */
void vgp__region_uncharge(struct vgp__region *h, int slot, int dev,
                          uint64_t bytes);

/* Returns the charges of processes that died; returns how many slots were
 * freed. */
int vgp__region_reclaim(struct vgp__region *h);

/* 1 if the slot's owner holds its liveness lock (or it is ours). */
int vgp__region_slot_alive(struct vgp__region *h, int slot);

#endif
