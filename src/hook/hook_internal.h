/*
 * hook_internal.h - internals of libvgpool.so, the in-container interposer.
 *
 * libvgpool.so is preloaded into every process of a container. It defines
 * the driver entry points listed in hook_table.def under their real names,
 * so direct calls, dlsym lookups and cuGetProcAddress all reach its
 * wrappers, and forwards every call to the real driver, which it finds
 * lazily with dlopen. It never links against libcuda or NVML: a process
 * that does not use CUDA never loads them and pays nothing.
 *
 * State:
 *   vgp__real_cu / vgp__real_nvml  typed pointers to every real entry point
 *                                  in abi/ (NULL where the driver lacks it)
 *   g_hook                         mode (off, limits file, HAMi variables),
 *                                  the container region and our slot in it,
 *                                  the per-device limits by CUDA ordinal,
 *                                  allocation records
 *
 * Modes. With no limits file and no HAMi variables the library is inert:
 * every wrapper forwards immediately. A configuration that is present but
 * wrong (unreadable, corrupt, foreign version, bad values, no region slot)
 * makes CUDA refuse to start (CUDA_ERROR_NOT_INITIALIZED from cuInit and
 * every call after it) with one log line naming the problem, rather than
 * run a tenant without its limits.
 */
#ifndef VGP_HOOK_INTERNAL_H
#define VGP_HOOK_INTERNAL_H

#include <pthread.h>
#include <stdint.h>

#include "hashmap.h"
#include "region.h"
#include "vgpool/limits.h"
#include "vgpool_cuda.h"
#include "vgpool_nvml.h"

#define VGP_EXPORT __attribute__((visibility("default")))

/* First statement of a wrapper that calls the driver's `sym`: initializes
 * the library and refuses when the driver has no such entry point. */
#define VGP_REAL_OR_FAIL(sym)                                                  \
  do {                                                                         \
    vgp__hook_init();                                                          \
    if (vgp__real_cu.sym == NULL)                                              \
      return CUDA_ERROR_NOT_INITIALIZED;                                       \
  } while (0)
#define VGP_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* Typed pointers to the real driver's entry points. */
struct vgp__real_cu_table {
#define VGP_CU_PROC(symbol, base, version, per_thread, params) vgp_pfn_##symbol symbol;
#include "vgpool_cuda_procs.def"
#undef VGP_CU_PROC
};

struct vgp__real_nvml_table {
#define VGP_NVML_PROC(symbol, params) vgp_pfn_##symbol symbol;
#define VGP_NVML_PROC_RET(type, symbol, params) vgp_pfn_##symbol symbol;
#include "vgpool_nvml_procs.def"
#undef VGP_NVML_PROC
#undef VGP_NVML_PROC_RET
};

extern struct vgp__real_cu_table vgp__real_cu;
extern struct vgp__real_nvml_table vgp__real_nvml;

enum vgp__mode {
  VGP_MODE_OFF = 0,    /* nothing configured: pass everything through */
  VGP_MODE_FILE = 1,   /* limits file + region from the agent / vgpool run */
  VGP_MODE_ENV = 2,    /* HAMi's environment variables */
};

/* Per visible device (CUDA ordinal). */
struct vgp__hdev {
  int region_dev;      /* index in the region, -1 if not limited */
  int governed;        /* compute share below 100%: launches are paced */
  uint64_t limit;      /* bytes, 0 = none */
  unsigned cores;
  int policy;
  char uuid[VGP_UUID_MAX];
};

enum vgp__rec_kind {
  VGP_REC_MEM = 1,     /* cuMemAlloc, pitch, managed: freed by cuMemFree */
  VGP_REC_VMM,         /* cuMemCreate handle: freed by cuMemRelease */
  VGP_REC_ARRAY,       /* cuArrayCreate: freed by cuArrayDestroy */
  VGP_REC_CTX,         /* a context's own footprint */
};

/* What one allocation was charged; keyed by pointer or handle. */
struct vgp__rec {
  uint64_t charged;
  uint64_t ctx;        /* context it was made in (freed with it), 0 = none */
  int16_t dev;         /* CUDA ordinal */
  int16_t kind;
};

/* What a memory pool was last charged (its reserved bytes). */
struct vgp__pool_rec {
  uint64_t charged;
  int dev;
};

#define VGP_HOOK_MAX_POOLS 64

struct vgp__hook {
  pthread_mutex_t lock;        /* records, pools, device map */
  int mode;                    /* enum vgp__mode, valid after init */
  CUresult init_error;         /* non-zero: CUDA is refused */
  int devices_mapped;
  int ndev;
  struct vgp__hdev dev[VGP_MAX_DEVICES];
  struct vgp__region region;
  int slot;
  struct vgp_limits limits;    /* VGP_MODE_FILE */
  char container_dir[4096];    /* VGP_MODE_FILE: where limits and region are */
  struct vgp__hmap recs;       /* uint64 key -> struct vgp__rec */
  uint64_t pool_handle[VGP_HOOK_MAX_POOLS];
  struct vgp__pool_rec pools[VGP_HOOK_MAX_POOLS];
  int npools;
  int primary_refs[VGP_MAX_DEVICES];
  uint64_t primary_ctx[VGP_MAX_DEVICES];
  void *cuda_lib;
  void *nvml_lib;
};

extern struct vgp__hook g_hook;

/* ---- hook_init.c */

/* Loads the real driver and reads the configuration, once. Cheap after
 * the first call. */
void vgp__hook_init(void);

/* Loads NVML, once; returns 0 if it is available. */
int vgp__hook_nvml_load(void);

/* For wrappers: 1 when the library enforces limits in this process. */
static inline int vgp__hook_active(void) {
  return __atomic_load_n(&g_hook.mode, __ATOMIC_ACQUIRE) != VGP_MODE_OFF;
}

/* Maps visible CUDA devices to limits after a successful cuInit. Returns
 * CUDA_SUCCESS or the error that refuses CUDA. */
CUresult vgp__hook_map_devices(void);

/* The real dlsym (ours is an override). */
void *vgp__real_dlsym(void *handle, const char *name);

/* ---- hook_mem.c */

/* Claims this process's slot in the region (once); logs and sets
 * init_error when the region has none free. Caller holds g_hook.lock. */
int vgp__ensure_slot_locked(void);

/* The CUDA ordinal of the current context's device. */
CUresult vgp__current_device(int *ret_dev);

/* Charges bytes for device ordinal dev to the container; -EDQUOT when the
 * quota would be exceeded. Devices without a limit are tracked but never
 * refused. */
int vgp__charge(int dev, uint64_t bytes, int force);
void vgp__uncharge(int dev, uint64_t bytes);

/* Records what was charged for the allocation (or context) named key, so
 * that its release returns exactly that; kind is a VGP_REC_* value, ctx the
 * context it was made in (0: none). */
void vgp__record(uint64_t key, int dev, uint64_t charged, int kind, uint64_t ctx);

/* Re-reads the reserved size of every pool this process allocated from on
 * dev (-1: all devices) and settles the charges. */
void vgp__pools_settle(int dev);

/* The CUDA ordinal of the device a stream belongs to (NULL, legacy and
 * per-thread streams: the current context's). */
CUresult vgp__stream_device(CUstream stream, int *ret_dev);

/* Forgets (and uncharges) every record made in ctx. */
void vgp__forget_context(uint64_t ctx);

/* ---- hook_nvml.c */

/* Whether an NVML pid (the node's PID namespace) is one of this container's
 * processes; with live_only, only those still alive. The controller counts
 * what a process that just exited ran, so it asks for all. */
int vgp__container_pid(unsigned pid, int live_only);

/* ---- hook_launch.c */
extern int vgp__launch_gate; /* non-zero when some launch must be governed */

/* A real launch, packaged so the governor can run it. */
typedef CUresult (*vgp__launch_fn)(void *args);

/* ---- hook_share.c */

/* Prepares compute-share governing for the mapped devices and raises the
 * launch gate when any of them has a share below 100%. Called once, with
 * g_hook.lock held, after the devices are mapped. */
void vgp__share_setup(void);

/* The governed launch path: waits (without spinning) until the container's
 * share admits a launch on the stream's device, then runs `launch`. */
CUresult vgp__launch_governed(CUstream stream, vgp__launch_fn launch, void *args);

#endif
