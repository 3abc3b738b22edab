/*
 * node.h - the simulated GPU node: state shared by every process.
 *
 * The simulated libcuda.so.1 and libnvidia-ml.so.1 (and `vgpool sim`) all map
 * one file, the node state, that plays the part of the GPUs' hardware state
 * on a real machine: what memory each device has in use and by whom, when
 * each device's compute engine is busy, and how busy it was over recent
 * periods. Because every process sees the same file, many processes and many
 * containers contend for the same simulated devices exactly as they would for
 * real ones.
 *
 * The file is a versioned struct (magic, version, size; see shmfile.h). Its
 * location is VGPOOL_SIM_STATE, or $XDG_RUNTIME_DIR/vgpool-sim.state, or
 * /tmp/vgpool-sim-<uid>.state, so tests can run side by side with their own
 * nodes. The devices come from VGPOOL_SIM_CONFIG (a file) or
 * VGPOOL_SIM_DEVICES (a spec such as "2xH100-80GB,1xT4"); see config.h.
 *
 * Processes. A process that creates a CUDA context claims a slot. The slot is
 * owned by (pid, start time) and kept alive by an open-file-description lock
 * on one byte that stands for it (ofdlock.h): when the process dies, however
 * it dies, the kernel drops the lock and the next allocator that finds the
 * device full (or `vgpool sim`) reclaims the slot and returns its memory.
 * Memory changes (a device's total and a slot's share together) are made
 * under the node's memory lock, a process-shared robust mutex (rlock.h):
 * a process killed halfway leaves it to the next taker, who rebuilds the
 * totals from the slots, so no byte is ever lost or counted twice.
 *
 * The compute engine. Each device has one timeline, `busy_until_ns`: a kernel
 * of duration d that becomes ready at time t runs from max(t, busy_until) to
 * that plus d, claimed with a compare-and-swap. Kernels from different
 * processes therefore run one at a time, in the order they reach the engine,
 * as a GPU time-slices contexts without MPS. Busy time is credited to the
 * device and to the process's slot, per device, both as cumulative counters
 * (the ground truth that benchmarks read) and into rings of 10 ms buckets
 * from which NVML computes utilization and per-process samples.
 *
 * This layer knows nothing about vgpool's quotas: it models a GPU.
 */
#ifndef VGP_SIM_NODE_H
#define VGP_SIM_NODE_H

#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

#include "shmfile.h"

#define VGP_SIM_MAGIC 0x45444f4e4d495356ull /* "VSIMNODE" */
#define VGP_SIM_VERSION 2
#define VGP_SIM_MAX_DEVICES 16
#define VGP_SIM_MAX_PROCS 256
#define VGP_SIM_BUCKET_NS 10000000ull /* 10 ms */
#define VGP_SIM_BUCKETS 256           /* 2.56 s of history */

/* What cuDriverGetVersion reports unless VGPOOL_SIM_DRIVER_VERSION says
 * otherwise: CUDA 13.0, the API abi/ follows. */
#define VGP_CUDA_DRIVER_VERSION_DEFAULT 13000

/* The display driver version the simulated node reports through NVML (a
 * release of NVIDIA's that ships CUDA 13.0). */
#define VGP_SIM_DRIVER_VERSION_STRING "580.65.06"

enum vgp_sim_slot_state {
  VGP_SIM_SLOT_FREE = 0,
  VGP_SIM_SLOT_CLAIMING = 1,
  VGP_SIM_SLOT_ACTIVE = 2,
};

/* What a device is; written once when the node is created. */
struct vgp_sim_device_config {
  char model[32];       /* preset key, e.g. "H100-80GB" */
  char name[96];        /* marketing name, e.g. "NVIDIA H100 80GB HBM3" */
  char uuid[48];        /* "GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" */
  unsigned char uuid_bytes[16];
  char pci_bus_id[32];  /* "00000000:17:00.0" (NVML's 8-digit domain form) */
  uint32_t pci_domain;
  uint32_t pci_bus;
  uint32_t pci_device;
  uint32_t pci_device_id;    /* (device id << 16) | vendor id 0x10de */
  uint32_t pci_subsystem_id;
  int32_t numa_node;         /* -1 when unknown */
  uint32_t sm_count;
  uint32_t cc_major;
  uint32_t cc_minor;
  uint32_t clock_khz;
  uint32_t mem_clock_khz;
  uint32_t mem_bus_width;
  uint32_t l2_bytes;
  uint32_t max_threads_per_sm;
  uint32_t max_blocks_per_sm;
  uint32_t shared_mem_per_sm;
  uint32_t shared_mem_per_block;
  uint32_t regs_per_sm;
  uint32_t power_limit_mw;
  uint64_t total_memory;     /* bytes */
  uint64_t context_footprint;/* bytes charged per context, like a driver's */
  uint64_t mem_bandwidth;    /* bytes per second, for copy and fill costs */
  uint32_t nvlink[VGP_SIM_MAX_DEVICES]; /* links to each peer (0 = PCIe) */
};

/* What a device is doing; updated with atomics by every process. */
struct vgp_sim_device_state {
  uint64_t used_bytes;       /* device memory in use by all processes */
  uint64_t busy_until_ns;    /* compute engine timeline (CLOCK_MONOTONIC) */
  uint64_t busy_total_ns;    /* cumulative kernel time ever */
  uint64_t kernels_total;
  uint64_t copy_total_ns;    /* cumulative copy-engine time ever */
  uint64_t sm_buckets[VGP_SIM_BUCKETS];  /* packed (epoch, busy ns) */
  uint64_t mem_buckets[VGP_SIM_BUCKETS];
};

struct vgp_sim_proc_device {
  uint64_t used_bytes;
  uint64_t busy_ns;          /* cumulative kernel time: the ground truth */
  uint64_t kernels;
  uint64_t copy_ns;
  uint32_t contexts;         /* contexts this process holds on the device */
  uint32_t pad;
  uint64_t sm_buckets[VGP_SIM_BUCKETS];
  uint64_t mem_buckets[VGP_SIM_BUCKETS];
};

struct vgp_sim_proc_slot {
  uint32_t state;            /* enum vgp_sim_slot_state */
  int32_t pid;
  uint64_t start_time;       /* /proc start time in clock ticks */
  uint64_t claim_ns;
  char comm[16];
  struct vgp_sim_proc_device dev[VGP_SIM_MAX_DEVICES];
};

struct vgp_sim_node {
  struct vgp__shm_header header;
  uint32_t device_count;
  uint32_t driver_version;   /* what cuDriverGetVersion reports */
  char driver_version_string[32]; /* what NVML reports, e.g. "580.65.06" */
  char spec[512];            /* the spec or config path it came from */
  uint64_t created_ns;
  struct vgp_sim_device_config cfg[VGP_SIM_MAX_DEVICES];
  uint64_t mem_lock[8];      /* the memory lock: a pthread_mutex_t (rlock.h) */
  struct vgp_sim_device_state dev[VGP_SIM_MAX_DEVICES];
  struct vgp_sim_proc_slot slots[VGP_SIM_MAX_PROCS];
};

/* A process's handle on the node. */
struct vgp_sim_handle {
  struct vgp__shm shm;
  struct vgp_sim_node *node;
  int own_slot;              /* the slot this handle claimed, or -1 */
  /* Slot locks belong to the open file description all threads share, so
   * two threads could both take over the same dead slot; this mutex keeps
   * the process's reclaims one at a time. */
  pthread_mutex_t reclaim_lock;
  char path[4096];
};

/* Writes the state file path that this process would use into buf. */
int vgp_sim_state_path(char *buf, size_t len);

/* Opens the node, creating it from the environment's device configuration if
 * the file does not exist. If it exists but was made from a different
 * configuration than the environment now names, that is an error
 * (-EEXIST) with `err` explaining how to reset it. Errors name the bad token
 * or the bad file in `err` (always NUL-terminated). */
int vgp_sim_open(struct vgp_sim_handle *h, char *err, size_t errlen);

/* Opens an existing node only (for `vgpool sim` and NVML readers). */
int vgp_sim_open_existing(struct vgp_sim_handle *h, int writable, char *err,
                          size_t errlen);

void vgp_sim_close(struct vgp_sim_handle *h);

/* Claims a process slot for the calling process. On success *ret_slot is
 * its index and the caller holds the slot's liveness lock through h's file
 * descriptor. Returns -ENOSPC when every slot is owned by a live process. */
int vgp_sim_slot_claim(struct vgp_sim_handle *h, int *ret_slot);

/* Releases a slot claimed by this process: its memory is returned. */
void vgp_sim_slot_release(struct vgp_sim_handle *h, int slot);

/* Returns 1 if the slot's owner is alive (holds its lock), else 0. A slot
 * claimed through this same handle counts as alive. */
int vgp_sim_slot_alive(struct vgp_sim_handle *h, int slot);

/* Reclaims the slots of dead processes and returns how many it freed. */
int vgp_sim_reclaim_dead(struct vgp_sim_handle *h);

/* Charges `bytes` of device memory to slot on dev, failing with -ENOMEM
 * when the device does not have them (after trying to reclaim dead
 * processes' memory once), or -ENOTRECOVERABLE when the memory lock was
 * left broken by a foreign program. */
int vgp_sim_mem_charge(struct vgp_sim_handle *h, int slot, int dev,
                       uint64_t bytes);

/* Returns `bytes` previously charged to slot on dev. */
void vgp_sim_mem_uncharge(struct vgp_sim_handle *h, int slot, int dev,
                          uint64_t bytes);

/* Claims the compute engine of dev for duration_ns, starting no earlier
 * than not_before_ns. Returns the start time; the kernel ends at start +
 * duration_ns. Credits the busy time to the device and to slot. */
uint64_t vgp_sim_engine_run(struct vgp_sim_handle *h, int slot, int dev,
                            uint64_t not_before_ns, uint64_t duration_ns);

/* Credits copy-engine time (memcpy/memset/fill traffic) to dev and slot. */
void vgp_sim_copy_account(struct vgp_sim_handle *h, int slot, int dev,
                          uint64_t start_ns, uint64_t duration_ns);

/* Adds the busy interval [start, end) to a bucket ring. */
void vgp_sim_buckets_add(uint64_t *ring, uint64_t start_ns, uint64_t end_ns);

/* Busy nanoseconds recorded in a bucket ring over [from, to); the window
 * must lie within the ring's history. */
uint64_t vgp_sim_buckets_sum(const uint64_t *ring, uint64_t from_ns,
                             uint64_t to_ns);

#endif
