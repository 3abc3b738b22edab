/*
 * region.h - a container's shared usage record: the region file.
 *
 * Every process of a container that uses CUDA under libvgpool.so maps the
 * container's region file. It holds, per device, what the container is
 * charged for (the sum of its processes' device memory) and the state of the
 * container's compute-share controller, and one slot per process with what
 * that process is charged for, so that a process that dies — even by
 * SIGKILL — can have exactly its charges returned.
 *
 * The region is created by whoever creates the container (the node agent or
 * `vgpool run`) with the container's limits copied in; libvgpool.so only
 * creates one itself in HAMi compatibility mode (no limits file).
 *
 * Concurrency. Memory charges change under the region lock, a
 * process-shared robust mutex in the file: taking it when nobody holds it
 * is one atomic instruction, with no system call, and when its holder dies
 * however it dies the kernel hands it to the next taker with the news
 * (EOWNERDEAD), who recomputes the totals from the slots before going on.
 * Totals are also atomics, so readers (vgpool top, memory queries) never
 * lock. Process slots are claimed with compare-and-swap, never move, and
 * are owned by (pid, start time); each is kept alive by an open file
 * description lock on its own byte past the end of the file, which the
 * kernel drops when the process dies, so liveness needs no pid and works
 * across PID namespaces.
 */
#ifndef VGPOOL_REGION_H
#define VGPOOL_REGION_H

#include <stddef.h>
#include <stdint.h>

#include "vgpool/limits.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VGP_REGION_MAGIC 0x4e47455250475600ull /* "\0VGPREGN" */
#define VGP_REGION_VERSION 2
#define VGP_REGION_MAX_PROCS 128
#define VGP_REGION_CTL_WORDS 32
#define VGP_REGION_LOCK_WORDS 8

/* The public part of a device's compute-share controller state (ctl[]);
 * the rest belongs to libvgpool.so. */
#define VGP_CTL_ACHIEVED_PPM 0    /* share achieved lately, parts per million */
#define VGP_CTL_ACHIEVED_NS 1     /* when it was last measured (CLOCK_MONOTONIC) */
#define VGP_CTL_EFFECTIVE_PCT 2   /* target in force: the share, or 100 while an
                                     elastic container borrows idle time */

enum vgp_region_slot_state {
  VGP_REGION_SLOT_FREE = 0,
  VGP_REGION_SLOT_CLAIMING = 1,
  VGP_REGION_SLOT_ACTIVE = 2,
};

/* The same header every vgpool shared file starts with. */
struct vgp_file_header {
  uint64_t magic;
  uint32_t version;
  uint32_t header_size;
  uint64_t total_size;
  uint64_t created_ns;
};

struct vgp_region_device {
  char uuid[VGP_UUID_MAX];
  uint64_t limit;          /* memory quota in bytes, 0 = none */
  uint64_t used;           /* bytes charged to the container */
  uint64_t peak;           /* highest `used` seen */
  uint64_t ctx_footprint;  /* learned per-context device memory, 0 = unknown */
  uint64_t oom_events;     /* allocations refused for the quota */
  uint32_t cores;          /* compute share target, percent */
  uint32_t policy;         /* enum vgp_policy */
  /* State of the container's compute-share controller for this device,
   * owned by the controller (libvgpool.so); opaque to everyone else. */
  uint64_t ctl[VGP_REGION_CTL_WORDS];
};

struct vgp_region_slot {
  uint32_t state;          /* enum vgp_region_slot_state */
  int32_t pid;             /* as the process sees itself */
  int32_t host_pid;        /* in the node's PID namespace (NVML's view);
                              0 until known, e.g. filled in by the agent */
  uint32_t pad;
  uint64_t start_time;     /* /proc start time, against pid reuse */
  uint64_t claim_ns;
  char comm[16];
  uint64_t used[VGP_MAX_DEVICES];  /* bytes this process is charged */
};

struct vgp_region {
  struct vgp_file_header header;
  char container[VGP_CONTAINER_ID_MAX];
  uint32_t device_count;
  uint32_t pad;
  int32_t priority;
  uint32_t oversubscribe;
  uint64_t repairs;        /* times the totals were rebuilt after a crash */
  /* The region lock: a process-shared robust pthread mutex, opaque here
   * (vgpool's own programs use it through src/common/region.c). */
  uint64_t lock[VGP_REGION_LOCK_WORDS];
  struct vgp_region_device dev[VGP_MAX_DEVICES];
  struct vgp_region_slot slots[VGP_REGION_MAX_PROCS];
};

#ifdef __cplusplus
}
#endif

#endif
