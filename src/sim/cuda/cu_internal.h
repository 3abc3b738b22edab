/*
 * cu_internal.h - internals of the simulated CUDA driver (libcuda.so.1).
 *
 * The simulated driver keeps three kinds of state:
 *
 *  - process-wide registries (g_cu): the node handle and this process's slot
 *    in it, every live object handle (so a stale or garbage handle is
 *    reported, never dereferenced), every allocation by address range, and
 *    the primary context of each device;
 *  - per-thread state: the context stack and per-thread default streams;
 *  - per-context execution state: one FIFO command queue shared by all the
 *    context's streams and one worker thread that runs it (cu_exec.c).
 *
 * Device memory is host memory: each device allocation is a memfd mapped
 * shared at an address chosen by the kernel, and that address is the device
 * pointer (the real driver's unified addressing puts device and host
 * pointers in one space too). Capacity is accounted in the node state
 * (node.h), so allocations in every process on the node compete for it.
 *
 * Locking: g_cu.lock guards the registries and is never held while waiting
 * for work or while calling back into the client. Each context has its own
 * lock for its queue. Lock order: g_cu.lock, then a context lock.
 */
#ifndef VGP_SIM_CU_INTERNAL_H
#define VGP_SIM_CU_INTERNAL_H

#include <pthread.h>
#include <stdint.h>

#include "hashmap.h"
#include "node.h"
#include "vgpool_cuda.h"

#define VGP_EXPORT __attribute__((visibility("default")))

/* Object kinds; every handle points at a struct starting with this tag. */
enum vgp__cu_kind {
  VGP_CU_CTX = 0x43545801,
  VGP_CU_STREAM,
  VGP_CU_EVENT,
  VGP_CU_MODULE,
  VGP_CU_FUNC,
  VGP_CU_POOL,
  VGP_CU_GRAPH,
  VGP_CU_GRAPH_EXEC,
  VGP_CU_GRAPH_NODE,
  VGP_CU_ARRAY,
  VGP_CU_VMM_HANDLE,
};

/* Allocation kinds in the address registry. */
enum vgp__alloc_kind {
  VGP_ALLOC_DEVICE = 1,   /* cuMemAlloc, cuMemAllocPitch */
  VGP_ALLOC_MANAGED,      /* cuMemAllocManaged */
  VGP_ALLOC_POOL,         /* a block of a memory pool (cuMemAllocAsync) */
  VGP_ALLOC_HOST,         /* cuMemAllocHost / cuMemHostAlloc */
  VGP_ALLOC_REGISTERED,   /* cuMemHostRegister */
  VGP_ALLOC_IPC,          /* cuIpcOpenMemHandle */
  VGP_ALLOC_VA,           /* cuMemAddressReserve */
};

struct vgp__ctx;
struct vgp__pool;
struct vgp__vmm_handle;

/* One mapping inside a reserved VA range. */
struct vgp__vmm_map {
  uint64_t offset;               /* from the range's base */
  uint64_t size;
  struct vgp__vmm_handle *handle;
  uint64_t handle_offset;
  int access;                    /* CUmemAccess_flags for the devices */
};

#define VGP_VMM_MAX_MAPS 64

struct vgp__alloc {
  uint64_t base;
  uint64_t size;        /* what cuMemGetAddressRange reports */
  uint64_t map_size;    /* length of the host mapping */
  uint64_t charged;     /* device bytes charged to the node */
  uint64_t buffer_id;
  int kind;             /* enum vgp__alloc_kind */
  int device;           /* -1 for host memory */
  int fd;               /* memfd backing, or -1 */
  unsigned flags;
  struct vgp__ctx *ctx;
  struct vgp__pool *pool;        /* VGP_ALLOC_POOL: owning pool */
  int pool_free;                 /* VGP_ALLOC_POOL: 1 while cached free */
  int nmaps;                     /* VGP_ALLOC_VA */
  struct vgp__vmm_map *maps;     /* VGP_ALLOC_VA: sorted by offset */
  int refs;                      /* VGP_ALLOC_IPC: opens of the handle */
  int32_t ipc_pid;               /* VGP_ALLOC_IPC: exporting process */
  uint64_t ipc_buffer;           /* VGP_ALLOC_IPC: exporter's buffer id */
};

struct vgp__vmm_handle {
  uint32_t kind;
  int device;
  int fd;
  uint64_t size;
  int refs;             /* 1 for the handle itself + 1 per mapping */
  int released;         /* cuMemRelease was called */
  int imported;         /* from cuMemImportFromShareableHandle: not charged */
  uint64_t charged;
  CUmemAllocationProp prop;
};

struct vgp__pool {
  uint32_t kind;
  int device;
  int is_default;
  int destroyed;
  CUmemPoolProps props;
  uint64_t release_threshold;
  uint64_t reserved_cur, reserved_high;
  uint64_t used_cur, used_high;
  struct vgp__alloc **cached;   /* freed blocks kept reserved for reuse */
  size_t ncached, cached_cap;
};

#define VGP_MAX_POOLS 64

/* Commands in a context's queue. */
enum vgp__op_kind {
  VGP_OP_KERNEL = 1,
  VGP_OP_COPY,
  VGP_OP_SET,
  VGP_OP_EVENT_RECORD,
  VGP_OP_EVENT_WAIT,
  VGP_OP_HOST_FN,
  VGP_OP_STREAM_CB,
  VGP_OP_FREE_ASYNC,
  VGP_OP_MARKER,          /* does nothing; used to wait for a point */
};

struct vgp__kernel_args {
  int builtin;            /* enum vgp__builtin */
  uint64_t duration_ns;
  uint64_t u[4];          /* decoded arguments */
  float f[2];
};

struct vgp__op {
  int kind;
  struct vgp__stream *stream;
  uint64_t ticket;
  uint64_t enqueue_ns;
  uint64_t vtime_ns;      /* virtual completion time, set when run */
  union {
    struct vgp__kernel_args kernel;
    struct {
      void *dst;
      const void *src;
      uint64_t bytes;
      void *staging;      /* owned copy of pageable host data */
      int direction;      /* 0 D2D, 1 H2D, 2 D2H, 3 H2H */
      uint64_t width, height, spitch, dpitch; /* 2D copies */
    } copy;
    struct {
      void *dst;
      uint32_t value;
      uint32_t elem;      /* 1, 2 or 4 bytes */
      uint64_t count;
    } set;
    struct {
      struct vgp__event *event;
    } event;
    struct {
      CUhostFn fn;
      CUstreamCallback cb;
      void *user;
    } host;
    struct {
      uint64_t ptr;
    } free_async;
  } u;
};

struct vgp__stream {
  uint32_t kind;
  struct vgp__ctx *ctx;
  unsigned flags;
  int priority;
  uint64_t id;
  uint64_t last_ticket;   /* ticket of the newest op enqueued on it */
  int is_null;            /* the legacy default stream */
  int per_thread;         /* a per-thread default stream */
  struct vgp__graph *capture;  /* non-NULL while capturing */
  int capture_mode;
  uint64_t capture_id;
};

struct vgp__event {
  uint32_t kind;
  unsigned flags;
  struct vgp__ctx *ctx;   /* context of the last record, or NULL */
  uint64_t ticket;        /* ticket of the last record, 0 = never */
  uint64_t time_ns;       /* virtual time of the last completed record */
  uint64_t time_ticket;   /* which record time_ns belongs to */
};

#define VGP_QUEUE_CAPACITY 4096

struct vgp__ctx {
  uint32_t kind;
  int device;
  unsigned flags;
  int primary;
  uint64_t id;
  struct vgp__stream *null_stream;
  size_t limits[16];
  uint32_t peer_mask;     /* devices whose contexts have peer access */
  uint64_t charged;       /* context footprint charged to the node */

  pthread_mutex_t lock;
  pthread_cond_t work_cond;   /* the worker waits for work here */
  pthread_cond_t done_cond;   /* waiters for completions wait here */
  pthread_t worker;
  int worker_running;
  int stopping;
  struct vgp__op *ring;       /* VGP_QUEUE_CAPACITY entries */
  uint64_t done_idx, exec_idx, enq_idx; /* monotonically increasing */
  uint64_t next_ticket;
  uint64_t completed_ticket;
  uint64_t cursor_ns;         /* virtual time when reserved work completes */
  CUresult sticky_error;
};

/* Built-in kernels with defined behaviour (cu_module.c). */
enum vgp__builtin {
  VGP_KERNEL_OPAQUE = 0,  /* unknown code: fixed nominal cost, no effect */
  VGP_KERNEL_SPIN,
  VGP_KERNEL_FILL_U32,
  VGP_KERNEL_COPY,
  VGP_KERNEL_AXPY_F32,
  VGP_KERNEL_SUM_U32,
};

#define VGP_MODULE_MAX_FUNCS 256
#define VGP_FUNC_MAX_PARAMS 32

struct vgp__func {
  uint32_t kind;
  struct vgp__module *module;
  char name[128];
  int builtin;
  int nparams;
  uint16_t param_size[VGP_FUNC_MAX_PARAMS];
  uint16_t param_align[VGP_FUNC_MAX_PARAMS];
  int max_dynamic_shared;
};

struct vgp__module {
  uint32_t kind;
  struct vgp__ctx *ctx;
  int is_ptx;
  int nfuncs;
  struct vgp__func *funcs[VGP_MODULE_MAX_FUNCS];
};

struct vgp__array {
  uint32_t kind;
  int device;
  CUDA_ARRAY3D_DESCRIPTOR desc;
  uint64_t bytes;
  uint64_t charged;
  void *mem;
};

/* Process-wide state. */
struct vgp__cu_global {
  pthread_mutex_t lock;
  int initialized;            /* cuInit succeeded */
  CUresult init_result;       /* what cuInit returned, when it failed */
  int forked;                 /* we are the child of a CUDA process */
  struct vgp_sim_handle sim;
  int slot;                   /* our process slot, -1 until first context */
  int device_count;           /* devices visible to this process */
  int phys[VGP_SIM_MAX_DEVICES]; /* ordinal -> node device index */
  struct vgp__ctx *primary[VGP_SIM_MAX_DEVICES];
  int primary_refs[VGP_SIM_MAX_DEVICES];
  unsigned primary_flags[VGP_SIM_MAX_DEVICES];
  struct vgp__pool *default_pool[VGP_SIM_MAX_DEVICES];
  struct vgp__pool *current_pool[VGP_SIM_MAX_DEVICES];
  struct vgp__pool *pools[VGP_MAX_POOLS];   /* every live pool */
  pthread_mutex_t pool_lock;                /* guards pools' accounting */
  struct vgp__hmap handles;   /* pointer -> kind */
  void *alloc_tree;           /* tsearch tree of struct vgp__alloc */
  uint64_t next_id;
};

extern struct vgp__cu_global g_cu;

/* Device numbers inside the driver are the ordinals this process sees
 * (after CUDA_VISIBLE_DEVICES); the node state is indexed by physical
 * device. Convert at that boundary only. */
static inline int vgp__phys(int ordinal) { return g_cu.phys[ordinal]; }

/* The ordinal of a physical device in this process, or -1 if hidden. */
static inline int vgp__ordinal(int phys) {
  for (int i = 0; i < g_cu.device_count; i++)
    if (g_cu.phys[i] == phys)
      return i;
  return -1;
}

/* ---- cu_init.c */
CUresult vgp__cu_check_init(void);
CUresult vgp__cu_claim_slot(void);
uint64_t vgp__cu_next_id(void);
int vgp__handle_add(const void *obj, uint32_t kind);
void vgp__handle_remove(const void *obj);
int vgp__handle_is(const void *obj, uint32_t kind);
CUresult vgp__from_errno(int err);

/* ---- cu_context.c */
CUresult vgp__ctx_current(struct vgp__ctx **ret_ctx);
CUresult vgp__ctx_resolve(CUcontext handle, struct vgp__ctx **ret_ctx);
CUresult vgp__ctx_create(int device, unsigned flags, int primary,
                         struct vgp__ctx **ret_ctx);
void vgp__ctx_destroy(struct vgp__ctx *ctx);
struct vgp__stream *vgp__thread_stream(struct vgp__ctx *ctx);

/* ---- cu_exec.c */
int vgp__exec_start(struct vgp__ctx *ctx);
void vgp__exec_stop(struct vgp__ctx *ctx);
CUresult vgp__stream_resolve(CUstream handle, int per_thread,
                             struct vgp__stream **ret_stream);
CUresult vgp__enqueue(struct vgp__stream *s, struct vgp__op *op);
CUresult vgp__stream_wait_idle(struct vgp__stream *s);
CUresult vgp__ctx_wait_idle(struct vgp__ctx *ctx);
int vgp__stream_idle(struct vgp__stream *s);
void vgp__exec_run_kernel(struct vgp__ctx *ctx, struct vgp__op *op);
struct vgp__stream *vgp__stream_new(struct vgp__ctx *ctx, unsigned flags,
                                    int priority);
void vgp__stream_free(struct vgp__stream *s);

/* ---- cu_memory.c */
int vgp__alloc_insert(struct vgp__alloc *a);
struct vgp__alloc *vgp__alloc_find(uint64_t addr);
void vgp__alloc_remove(struct vgp__alloc *a);
int vgp__device_range_ok(uint64_t ptr, uint64_t bytes, int *ret_device);
CUresult vgp__mem_map_device(int device, uint64_t bytes, int *ret_fd,
                             void **ret_addr);
CUresult vgp__mem_alloc(struct vgp__ctx *ctx, int kind, uint64_t bytes,
                        struct vgp__alloc **ret);
CUresult vgp__mem_free(struct vgp__alloc *a);
uint64_t vgp__copy_cost_ns(int device, uint64_t bytes, int direction);
uint64_t vgp__round_up(uint64_t v, uint64_t to);

/* ---- cu_pool.c */
struct vgp__pool *vgp__pool_default(int device);
void vgp__pool_trim(struct vgp__pool *pool, uint64_t keep);
void vgp__pool_free_block(uint64_t ptr);
void vgp__pools_trim_on_sync(int device);
void vgp__pools_forget_ctx(struct vgp__ctx *ctx);

/* ---- cu_module.c */
CUresult vgp__kernel_prepare(struct vgp__func *f, unsigned gx, unsigned gy,
                             unsigned gz, unsigned bx, unsigned by,
                             unsigned bz, void **params, void **extra,
                             struct vgp__kernel_args *out, int device);
CUresult vgp__kernel_execute(const struct vgp__kernel_args *k);

/* ---- cu_graph.c */
CUresult vgp__capture_kernel(struct vgp__stream *s,
                             const struct vgp__kernel_args *k);

#endif
