/*
 * nvml_internal.h - internals of the simulated NVML (libnvidia-ml.so.1).
 *
 * The simulated NVML is a reader of the shared node state (node.h): it owns
 * nothing on the node, claims no process slot and changes nothing there.
 * Its process-wide state is small:
 *
 *  - the library's init reference count and its handle on the node file,
 *    guarded by one read-write lock: every query holds it for reading, so
 *    nvmlShutdown (which takes it for writing) can never unmap the node
 *    under a query running in another thread;
 *  - one static nvmlDevice_st per possible device. A device handle is a
 *    pointer into that array, so validating a handle is pointer arithmetic:
 *    a garbage or stale handle is reported, never dereferenced. Handles stay
 *    valid across nvmlShutdown/nvmlInit, as NVIDIA's do.
 *
 * Every exported entry point checks, in this order, that the library is
 * initialized (NVML_ERROR_UNINITIALIZED), that its handles are valid and its
 * pointers non-NULL (NVML_ERROR_INVALID_ARGUMENT), and only then answers.
 */
#ifndef VGP_SIM_NVML_INTERNAL_H
#define VGP_SIM_NVML_INTERNAL_H

#include <pthread.h>
#include <stdint.h>

#include "node.h"
#include "vgpool_nvml.h"

#define VGP_EXPORT __attribute__((visibility("default")))

/* The log component of this library's messages. */
#define VGP_NVML_LOG "sim-nvml"

struct nvmlDevice_st {
  uint32_t index;
};

struct vgp__nvml_global {
  pthread_rwlock_t lock;
  unsigned refcount;          /* successful inits not yet shut down */
  int ever_initialized;       /* nvmlShutdown after that is not an error */
  struct vgp_sim_handle sim;  /* valid while refcount > 0 */
  int64_t realtime_offset_us; /* CLOCK_REALTIME - CLOCK_MONOTONIC, fixed */
  int offset_known;
};

extern struct vgp__nvml_global vgp__nvml;
extern struct nvmlDevice_st vgp__nvml_devices[VGP_SIM_MAX_DEVICES];

/* Starts a query: takes the read lock and fails with
 * NVML_ERROR_UNINITIALIZED (not holding it) when the library is not
 * initialized. On success *ret_sim is the node handle, valid until
 * vgp__nvml_end(). */
nvmlReturn_t vgp__nvml_begin(struct vgp_sim_handle **ret_sim);

/* Like vgp__nvml_begin, and also checks that device is a valid handle of
 * this node (NVML_ERROR_INVALID_ARGUMENT otherwise, not holding the lock). */
nvmlReturn_t vgp__nvml_begin_device(nvmlDevice_t device,
                                    struct vgp_sim_handle **ret_sim,
                                    unsigned *ret_index);

/* Ends a query started by one of the above. */
void vgp__nvml_end(void);

/* Returns the index of a device handle, or -1 when it is not a handle of a
 * device of the open node. Call between begin and end. */
int vgp__nvml_index_of(nvmlDevice_t device);

/* The handle of device index (which must be valid). */
nvmlDevice_t vgp__nvml_handle(unsigned index);

/* Copies str into a caller's buffer of `length` bytes: NVML_SUCCESS, or
 * NVML_ERROR_INSUFFICIENT_SIZE (buffer untouched) when it does not fit with
 * its terminator. */
nvmlReturn_t vgp__nvml_copy_string(char *buf, unsigned int length,
                                   const char *str);

/* Converts a monotonic time to NVML's CPU timestamps (microseconds since
 * the epoch). The offset between the clocks is measured once per process
 * and rounded to a millisecond, so the timestamp of a given sample is the
 * same in every call and (almost always) in every process, and a
 * lastSeenTimeStamp handed back never brings the same sample back. */
uint64_t vgp__nvml_timestamp_us(uint64_t mono_ns);

/* The inverse, for lastSeenTimeStamp arguments: the monotonic time a
 * timestamp stands for (0 for timestamps before boot). */
uint64_t vgp__nvml_mono_ns(uint64_t timestamp_us);

/* Fills an nvmlPciInfo_t for device index of node. */
void vgp__nvml_fill_pci(const struct vgp_sim_node *node, unsigned index,
                        nvmlPciInfo_t *pci);

#endif
