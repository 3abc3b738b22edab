/*
 * device_state.h - node-wide state of one GPU: who is using it.
 *
 * One file per device at <root>/node/<device-uuid> (include/vgpool/paths.h),
 * shared by every container on the node. Each container whose compute is
 * governed on the device keeps an entry there and stamps it while it has
 * work; the others read it to know whether the device is contended. An
 * elastic container uses idle time only while no other container has
 * stamped its entry recently.
 *
 * Entries are claimed with compare-and-swap on the container's id hash and
 * never move; a stale stamp simply means "idle". Nothing here is a lock, so
 * a container that dies leaves nothing to clean up.
 */
#ifndef VGPOOL_DEVICE_STATE_H
#define VGPOOL_DEVICE_STATE_H

#include <stdint.h>

#include "vgpool/region.h"

#define VGP_DEVSTATE_MAGIC 0x5645444450475600ull /* "\0VGPDDEV" */
#define VGP_DEVSTATE_VERSION 1
#define VGP_DEVSTATE_ENTRIES 64

struct vgp_devstate_entry {
  uint64_t container_hash;  /* 0 = free */
  uint64_t active_ns;       /* last time the container had work (CLOCK_MONOTONIC) */
  uint32_t share_pct;
  uint32_t policy;          /* enum vgp_policy */
  int32_t priority;
  uint32_t pad;
};

struct vgp_devstate {
  struct vgp_file_header header;
  char uuid[VGP_UUID_MAX];
  struct vgp_devstate_entry entries[VGP_DEVSTATE_ENTRIES];
};

#endif
