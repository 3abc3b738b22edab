/*
 * cu_context.c - contexts of the simulated driver: primary and regular
 * contexts, the per-thread context stack, per-thread default streams.
 *
 * A context that is active holds what a real one holds: a footprint of
 * device memory (the preset's per-context size, charged to the node so that
 * NVML and other processes see it), a slot on the node for this process,
 * and a worker thread that executes its command queue (cu_exec.c).
 * Destroying a context frees the memory allocated in it, as the real driver
 * does. Context structs are never freed while the process lives, so a stale
 * handle held by a stream or event is detected rather than dereferenced
 * after free: destroyed contexts are removed from the handle registry.
 */
#include <errno.h>
#include <pthread.h>
#include <search.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "cu_internal.h"

#define VGP_CTX_STACK_MAX 64
#define VGP_PT_STREAMS 8

static __thread struct vgp__ctx *vgp__tls_stack[VGP_CTX_STACK_MAX];
static __thread int vgp__tls_depth;

struct vgp__pt_entry {
  struct vgp__ctx *ctx;
  struct vgp__stream *stream;
};
static __thread struct vgp__pt_entry vgp__tls_pt[VGP_PT_STREAMS];

static pthread_key_t vgp__pt_key;
static pthread_once_t vgp__pt_once = PTHREAD_ONCE_INIT;

static void vgp__pt_thread_exit(void *arg) {
  (void)arg;
  for (int i = 0; i < VGP_PT_STREAMS; i++) {
    if (vgp__tls_pt[i].stream != NULL)
      vgp__stream_free(vgp__tls_pt[i].stream);
    vgp__tls_pt[i].stream = NULL;
    vgp__tls_pt[i].ctx = NULL;
  }
}

static void vgp__pt_key_init(void) {
  pthread_key_create(&vgp__pt_key, vgp__pt_thread_exit);
}

struct vgp__stream *vgp__thread_stream(struct vgp__ctx *ctx) {
  for (int i = 0; i < VGP_PT_STREAMS; i++)
    if (vgp__tls_pt[i].ctx == ctx && vgp__tls_pt[i].stream != NULL)
      return vgp__tls_pt[i].stream;
  pthread_once(&vgp__pt_once, vgp__pt_key_init);
  for (int i = 0; i < VGP_PT_STREAMS; i++) {
    if (vgp__tls_pt[i].stream != NULL &&
        vgp__handle_is(vgp__tls_pt[i].ctx, VGP_CU_CTX))
      continue;
    /* Reuse an entry whose context is gone. */
    struct vgp__stream *s = vgp__stream_new(ctx, CU_STREAM_DEFAULT, 0);
    if (s == NULL)
      return NULL;
    s->per_thread = 1;
    vgp__tls_pt[i].ctx = ctx;
    vgp__tls_pt[i].stream = s;
    pthread_setspecific(vgp__pt_key, (void *)1);
    return s;
  }
  return NULL;
}

static int vgp__ctx_usable(struct vgp__ctx *ctx) {
  return ctx != NULL && vgp__handle_is(ctx, VGP_CU_CTX) && ctx->worker_running;
}

CUresult vgp__ctx_current(struct vgp__ctx **ret_ctx) {
  CUresult r = vgp__cu_check_init();
  if (r != CUDA_SUCCESS)
    return r;
  if (vgp__tls_depth == 0)
    return CUDA_ERROR_INVALID_CONTEXT;
  struct vgp__ctx *ctx = vgp__tls_stack[vgp__tls_depth - 1];
  if (!vgp__ctx_usable(ctx))
    return CUDA_ERROR_INVALID_CONTEXT;
  *ret_ctx = ctx;
  return CUDA_SUCCESS;
}

CUresult vgp__ctx_resolve(CUcontext handle, struct vgp__ctx **ret_ctx) {
  if (handle == NULL)
    return vgp__ctx_current(ret_ctx);
  CUresult r = vgp__cu_check_init();
  if (r != CUDA_SUCCESS)
    return r;
  struct vgp__ctx *ctx = (struct vgp__ctx *)handle;
  if (!vgp__ctx_usable(ctx))
    return CUDA_ERROR_INVALID_CONTEXT;
  *ret_ctx = ctx;
  return CUDA_SUCCESS;
}

/* Makes ctx live: charges its footprint, counts it on the node, starts its
 * worker. Called with g_cu.lock NOT held. */
static CUresult vgp__ctx_activate(struct vgp__ctx *ctx) {
  struct vgp_sim_node *node = g_cu.sim.node;
  pthread_mutex_lock(&g_cu.lock);
  CUresult r = vgp__cu_claim_slot();
  pthread_mutex_unlock(&g_cu.lock);
  if (r != CUDA_SUCCESS)
    return r;
  uint64_t footprint = node->cfg[vgp__phys(ctx->device)].context_footprint;
  if (footprint > 0 &&
      vgp_sim_mem_charge(&g_cu.sim, g_cu.slot, vgp__phys(ctx->device), footprint) < 0)
    return CUDA_ERROR_OUT_OF_MEMORY;
  ctx->charged = footprint;
  ctx->sticky_error = CUDA_SUCCESS;
  ctx->cursor_ns = 0;
  if (vgp__exec_start(ctx) < 0) {
    vgp_sim_mem_uncharge(&g_cu.sim, g_cu.slot, vgp__phys(ctx->device), ctx->charged);
    ctx->charged = 0;
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  __atomic_fetch_add(&node->slots[g_cu.slot].dev[vgp__phys(ctx->device)].contexts, 1,
                     __ATOMIC_RELEASE);
  return CUDA_SUCCESS;
}

struct vgp__free_walk {
  struct vgp__ctx *ctx;
  struct vgp__alloc *found;
};
static __thread struct vgp__free_walk *vgp__walk;

static void vgp__find_ctx_alloc(const void *node, VISIT which, int depth) {
  (void)depth;
  if (vgp__walk->found != NULL || (which != postorder && which != leaf))
    return;
  struct vgp__alloc *a = *(struct vgp__alloc *const *)node;
  if (a->ctx != vgp__walk->ctx || a->kind == VGP_ALLOC_VA ||
      (a->kind == VGP_ALLOC_POOL && a->pool_free))
    return;
  vgp__walk->found = a;
}

/* Frees every allocation made in ctx, one at a time (the tree cannot be
 * changed while it is walked). */
static void vgp__ctx_free_allocations(struct vgp__ctx *ctx) {
  for (;;) {
    struct vgp__free_walk walk = {ctx, NULL};
    pthread_mutex_lock(&g_cu.lock);
    vgp__walk = &walk;
    twalk(g_cu.alloc_tree, vgp__find_ctx_alloc);
    vgp__walk = NULL;
    pthread_mutex_unlock(&g_cu.lock);
    if (walk.found == NULL)
      break;
    if (walk.found->kind == VGP_ALLOC_POOL)
      vgp__pool_free_block(walk.found->base);
    else
      vgp__mem_free(walk.found);
  }
  vgp__pools_forget_ctx(ctx);
}

static void vgp__ctx_deactivate(struct vgp__ctx *ctx) {
  struct vgp_sim_node *node = g_cu.sim.node;
  vgp__ctx_wait_idle(ctx);
  vgp__exec_stop(ctx);
  vgp__ctx_free_allocations(ctx);
  if (ctx->charged > 0)
    vgp_sim_mem_uncharge(&g_cu.sim, g_cu.slot, vgp__phys(ctx->device), ctx->charged);
  ctx->charged = 0;
  __atomic_fetch_sub(&node->slots[g_cu.slot].dev[vgp__phys(ctx->device)].contexts, 1,
                     __ATOMIC_RELEASE);
}

CUresult vgp__ctx_create(int device, unsigned flags, int primary,
                         struct vgp__ctx **ret_ctx) {
  struct vgp__ctx *ctx = vgp__calloc(1, sizeof(*ctx));
  if (ctx == NULL)
    return CUDA_ERROR_OUT_OF_MEMORY;
  ctx->kind = VGP_CU_CTX;
  ctx->device = device;
  ctx->flags = flags;
  ctx->primary = primary;
  ctx->id = vgp__cu_next_id();
  pthread_mutex_init(&ctx->lock, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&ctx->work_cond, &ca);
  pthread_cond_init(&ctx->done_cond, &ca);
  pthread_condattr_destroy(&ca);
  ctx->limits[CU_LIMIT_STACK_SIZE] = 1024;
  ctx->limits[CU_LIMIT_PRINTF_FIFO_SIZE] = 1 << 20;
  ctx->limits[CU_LIMIT_MALLOC_HEAP_SIZE] = 8 << 20;
  ctx->limits[CU_LIMIT_DEV_RUNTIME_SYNC_DEPTH] = 2;
  ctx->limits[CU_LIMIT_DEV_RUNTIME_PENDING_LAUNCH_COUNT] = 2048;
  ctx->limits[CU_LIMIT_MAX_L2_FETCH_GRANULARITY] = 64;
  ctx->null_stream = vgp__stream_new(ctx, CU_STREAM_DEFAULT, 0);
  if (ctx->null_stream == NULL) {
    vgp__free(ctx);
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  ctx->null_stream->is_null = 1;
  CUresult r = vgp__ctx_activate(ctx);
  if (r != CUDA_SUCCESS) {
    vgp__stream_free(ctx->null_stream);
    vgp__free(ctx);
    return r;
  }
  if (vgp__handle_add(ctx, VGP_CU_CTX) < 0) {
    vgp__ctx_deactivate(ctx);
    vgp__stream_free(ctx->null_stream);
    vgp__free(ctx);
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  *ret_ctx = ctx;
  return CUDA_SUCCESS;
}

void vgp__ctx_destroy(struct vgp__ctx *ctx) {
  vgp__handle_remove(ctx);
  vgp__ctx_deactivate(ctx);
  /* The struct stays allocated (see the top of this file); its queue does
   * not. */
}

static CUresult vgp__push(struct vgp__ctx *ctx) {
  if (vgp__tls_depth >= VGP_CTX_STACK_MAX)
    return CUDA_ERROR_OUT_OF_MEMORY;
  vgp__tls_stack[vgp__tls_depth++] = ctx;
  return CUDA_SUCCESS;
}

static CUresult vgp__ctx_create_api(CUcontext *pctx, unsigned int flags, CUdevice dev) {
  CUresult r = vgp__cu_check_init();
  if (r != CUDA_SUCCESS)
    return r;
  if (pctx == NULL || (flags & ~(unsigned)CU_CTX_FLAGS_MASK) != 0)
    return CUDA_ERROR_INVALID_VALUE;
  if (dev < 0 || dev >= g_cu.device_count)
    return CUDA_ERROR_INVALID_DEVICE;
  struct vgp__ctx *ctx;
  r = vgp__ctx_create(dev, flags, 0, &ctx);
  if (r != CUDA_SUCCESS)
    return r;
  r = vgp__push(ctx);
  if (r != CUDA_SUCCESS) {
    vgp__ctx_destroy(ctx);
    return r;
  }
  *pctx = (CUcontext)ctx;
  return CUDA_SUCCESS;
}

VGP_EXPORT CUresult cuCtxCreate_v2(CUcontext *pctx, unsigned int flags, CUdevice dev) {
  return vgp__ctx_create_api(pctx, flags, dev);
}

VGP_EXPORT CUresult cuCtxCreate_v3(CUcontext *pctx, CUexecAffinityParam *paramsArray,
                                   int numParams, unsigned int flags, CUdevice dev) {
  if (numParams < 0 || (numParams > 0 && paramsArray == NULL))
    return CUDA_ERROR_INVALID_VALUE;
  for (int i = 0; i < numParams; i++)
    if (paramsArray[i].type != CU_EXEC_AFFINITY_TYPE_SM_COUNT)
      return CUDA_ERROR_UNSUPPORTED_EXEC_AFFINITY;
  return vgp__ctx_create_api(pctx, flags, dev);
}

VGP_EXPORT CUresult cuCtxCreate_v4(CUcontext *pctx, CUctxCreateParams *ctxCreateParams,
                                   unsigned int flags, CUdevice dev) {
  if (ctxCreateParams != NULL) {
    if (ctxCreateParams->numExecAffinityParams < 0 ||
        (ctxCreateParams->numExecAffinityParams > 0 &&
         ctxCreateParams->execAffinityParams == NULL))
      return CUDA_ERROR_INVALID_VALUE;
    if (ctxCreateParams->cigParams != NULL)
      return CUDA_ERROR_NOT_SUPPORTED;
  }
  return vgp__ctx_create_api(pctx, flags, dev);
}

VGP_EXPORT CUresult cuCtxDestroy_v2(CUcontext ctxh) {
  CUresult r = vgp__cu_check_init();
  if (r != CUDA_SUCCESS)
    return r;
  struct vgp__ctx *ctx = (struct vgp__ctx *)ctxh;
  if (ctx == NULL || !vgp__handle_is(ctx, VGP_CU_CTX) || ctx->primary)
    return CUDA_ERROR_INVALID_CONTEXT;
  /* Remove it from this thread's stack wherever it appears. */
  int w = 0;
  for (int i = 0; i < vgp__tls_depth; i++)
    if (vgp__tls_stack[i] != ctx)
      vgp__tls_stack[w++] = vgp__tls_stack[i];
  vgp__tls_depth = w;
  vgp__ctx_destroy(ctx);
  return CUDA_SUCCESS;
}

VGP_EXPORT CUresult cuCtxPushCurrent_v2(CUcontext ctxh) {
  struct vgp__ctx *ctx;
  if (ctxh == NULL)
    return vgp__cu_check_init() == CUDA_SUCCESS ? CUDA_ERROR_INVALID_CONTEXT
                                                : CUDA_ERROR_NOT_INITIALIZED;
  CUresult r = vgp__ctx_resolve(ctxh, &ctx);
  if (r != CUDA_SUCCESS)
    return r;
  return vgp__push(ctx);
}

VGP_EXPORT CUresult cuCtxPopCurrent_v2(CUcontext *pctx) {
  CUresult r = vgp__cu_check_init();
  if (r != CUDA_SUCCESS)
    return r;
  if (vgp__tls_depth == 0)
    return CUDA_ERROR_INVALID_CONTEXT;
  struct vgp__ctx *ctx = vgp__tls_stack[--vgp__tls_depth];
  if (pctx != NULL)
    *pctx = (CUcontext)ctx;
  return CUDA_SUCCESS;
}

VGP_EXPORT CUresult cuCtxSetCurrent(CUcontext ctxh) {
  CUresult r = vgp__cu_check_init();
  if (r != CUDA_SUCCESS)
    return r;
  if (ctxh == NULL) {
    if (vgp__tls_depth > 0)
      vgp__tls_depth--;
    return CUDA_SUCCESS;
  }
  struct vgp__ctx *ctx;
  r = vgp__ctx_resolve(ctxh, &ctx);
  if (r != CUDA_SUCCESS)
    return r;
  if (vgp__tls_depth == 0)
    return vgp__push(ctx);
  vgp__tls_stack[vgp__tls_depth - 1] = ctx;
  return CUDA_SUCCESS;
}

VGP_EXPORT CUresult cuCtxGetCurrent(CUcontext *pctx) {
  CUresult r = vgp__cu_check_init();
  if (r != CUDA_SUCCESS)
    return r;
  if (pctx == NULL)
    return CUDA_ERROR_INVALID_VALUE;
  *pctx = vgp__tls_depth > 0 ? (CUcontext)vgp__tls_stack[vgp__tls_depth - 1] : NULL;
  return CUDA_SUCCESS;
}

VGP_EXPORT CUresult cuCtxGetDevice(CUdevice *device) {
  struct vgp__ctx *ctx;
  CUresult r = vgp__ctx_current(&ctx);
  if (r != CUDA_SUCCESS)
    return r;
  if (device == NULL)
    return CUDA_ERROR_INVALID_VALUE;
  *device = ctx->device;
  return CUDA_SUCCESS;
}

VGP_EXPORT CUresult cuCtxGetDevice_v2(CUdevice *device, CUcontext ctxh) {
  struct vgp__ctx *ctx;
  CUresult r = vgp__ctx_resolve(ctxh, &ctx);
  if (r != CUDA_SUCCESS)
    return r;
  if (device == NULL)
    return CUDA_ERROR_INVALID_VALUE;
  *device = ctx->device;
  return CUDA_SUCCESS;
}

static CUresult vgp__ctx_sync(struct vgp__ctx *ctx) {
  CUresult r = vgp__ctx_wait_idle(ctx);
  vgp__pools_trim_on_sync(ctx->device);
  return r;
}

VGP_EXPORT CUresult cuCtxSynchronize(void) {
  struct vgp__ctx *ctx;
  CUresult r = vgp__ctx_current(&ctx);
  if (r != CUDA_SUCCESS)
    return r;
  return vgp__ctx_sync(ctx);
}

VGP_EXPORT CUresult cuCtxSynchronize_v2(CUcontext ctxh) {
  struct vgp__ctx *ctx;
  CUresult r = vgp__ctx_resolve(ctxh, &ctx);
  if (r != CUDA_SUCCESS)
    return r;
  return vgp__ctx_sync(ctx);
}

VGP_EXPORT CUresult cuCtxGetApiVersion(CUcontext ctxh, unsigned int *version) {
  struct vgp__ctx *ctx;
  CUresult r = vgp__ctx_resolve(ctxh, &ctx);
  if (r != CUDA_SUCCESS)
    return r;
  if (version == NULL)
    return CUDA_ERROR_INVALID_VALUE;
  *version = 3020;
  return CUDA_SUCCESS;
}

VGP_EXPORT CUresult cuCtxGetFlags(unsigned int *flags) {
  struct vgp__ctx *ctx;
  CUresult r = vgp__ctx_current(&ctx);
  if (r != CUDA_SUCCESS)
    return r;
  if (flags == NULL)
    return CUDA_ERROR_INVALID_VALUE;
  *flags = ctx->flags;
  return CUDA_SUCCESS;
}

static int vgp__limit_supported(CUlimit limit) {
  return limit >= CU_LIMIT_STACK_SIZE && limit <= CU_LIMIT_PERSISTING_L2_CACHE_SIZE;
}

VGP_EXPORT CUresult cuCtxSetLimit(CUlimit limit, size_t value) {
  struct vgp__ctx *ctx;
  CUresult r = vgp__ctx_current(&ctx);
  if (r != CUDA_SUCCESS)
    return r;
  if (!vgp__limit_supported(limit))
    return CUDA_ERROR_UNSUPPORTED_LIMIT;
  ctx->limits[limit] = value;
  return CUDA_SUCCESS;
}

VGP_EXPORT CUresult cuCtxGetLimit(size_t *pvalue, CUlimit limit) {
  struct vgp__ctx *ctx;
  CUresult r = vgp__ctx_current(&ctx);
  if (r != CUDA_SUCCESS)
    return r;
  if (pvalue == NULL)
    return CUDA_ERROR_INVALID_VALUE;
  if (!vgp__limit_supported(limit))
    return CUDA_ERROR_UNSUPPORTED_LIMIT;
  *pvalue = ctx->limits[limit];
  return CUDA_SUCCESS;
}

VGP_EXPORT CUresult cuCtxGetStreamPriorityRange(int *leastPriority, int *greatestPriority) {
  struct vgp__ctx *ctx;
  CUresult r = vgp__ctx_current(&ctx);
  if (r != CUDA_SUCCESS)
    return r;
  if (leastPriority != NULL)
    *leastPriority = 0;
  if (greatestPriority != NULL)
    *greatestPriority = -5;
  return CUDA_SUCCESS;
}

VGP_EXPORT CUresult cuCtxEnablePeerAccess(CUcontext peerContext, unsigned int Flags) {
  struct vgp__ctx *ctx, *peer;
  CUresult r = vgp__ctx_current(&ctx);
  if (r != CUDA_SUCCESS)
    return r;
  if (Flags != 0)
    return CUDA_ERROR_INVALID_VALUE;
  if (peerContext == NULL || !vgp__handle_is(peerContext, VGP_CU_CTX))
    return CUDA_ERROR_INVALID_CONTEXT;
  peer = (struct vgp__ctx *)peerContext;
  if (peer->device == ctx->device)
    return CUDA_ERROR_INVALID_DEVICE;
  uint32_t bit = 1u << peer->device;
  uint32_t old = __atomic_fetch_or(&ctx->peer_mask, bit, __ATOMIC_RELAXED);
  return (old & bit) ? CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED : CUDA_SUCCESS;
}

VGP_EXPORT CUresult cuCtxDisablePeerAccess(CUcontext peerContext) {
  struct vgp__ctx *ctx;
  CUresult r = vgp__ctx_current(&ctx);
  if (r != CUDA_SUCCESS)
    return r;
  if (peerContext == NULL || !vgp__handle_is(peerContext, VGP_CU_CTX))
    return CUDA_ERROR_INVALID_CONTEXT;
  uint32_t bit = 1u << ((struct vgp__ctx *)peerContext)->device;
  uint32_t old = __atomic_fetch_and(&ctx->peer_mask, ~bit, __ATOMIC_RELAXED);
  return (old & bit) ? CUDA_SUCCESS : CUDA_ERROR_PEER_ACCESS_NOT_ENABLED;
}

VGP_EXPORT CUresult cuCtxGetId(CUcontext ctxh, unsigned long long *ctxId) {
  struct vgp__ctx *ctx;
  CUresult r = vgp__ctx_resolve(ctxh, &ctx);
  if (r != CUDA_SUCCESS)
    return r;
  if (ctxId == NULL)
    return CUDA_ERROR_INVALID_VALUE;
  *ctxId = ctx->id;
  return CUDA_SUCCESS;
}

/* ------------------------------------------------------ primary contexts */

VGP_EXPORT CUresult cuDevicePrimaryCtxRetain(CUcontext *pctx, CUdevice dev) {
  CUresult r = vgp__cu_check_init();
  if (r != CUDA_SUCCESS)
    return r;
  if (pctx == NULL)
    return CUDA_ERROR_INVALID_VALUE;
  if (dev < 0 || dev >= g_cu.device_count)
    return CUDA_ERROR_INVALID_DEVICE;
  pthread_mutex_lock(&g_cu.lock);
  struct vgp__ctx *ctx = g_cu.primary[dev];
  if (ctx != NULL && g_cu.primary_refs[dev] > 0) {
    g_cu.primary_refs[dev]++;
    pthread_mutex_unlock(&g_cu.lock);
    *pctx = (CUcontext)ctx;
    return CUDA_SUCCESS;
  }
  pthread_mutex_unlock(&g_cu.lock);
  /* Creating it may sleep (starting a thread); do it outside the lock and
   * settle a race with another retaining thread afterwards. */
  if (ctx == NULL) {
    r = vgp__ctx_create(dev, g_cu.primary_flags[dev], 1, &ctx);
  } else {
    r = vgp__ctx_activate(ctx);
    if (r == CUDA_SUCCESS && vgp__handle_add(ctx, VGP_CU_CTX) < 0) {
      vgp__ctx_deactivate(ctx);
      r = CUDA_ERROR_OUT_OF_MEMORY;
    }
  }
  if (r != CUDA_SUCCESS)
    return r;
  pthread_mutex_lock(&g_cu.lock);
  if (g_cu.primary[dev] != NULL && g_cu.primary[dev] != ctx &&
      g_cu.primary_refs[dev] > 0) {
    struct vgp__ctx *winner = g_cu.primary[dev];
    g_cu.primary_refs[dev]++;
    pthread_mutex_unlock(&g_cu.lock);
    vgp__ctx_destroy(ctx);
    *pctx = (CUcontext)winner;
    return CUDA_SUCCESS;
  }
  g_cu.primary[dev] = ctx;
  g_cu.primary_refs[dev]++;
  pthread_mutex_unlock(&g_cu.lock);
  *pctx = (CUcontext)ctx;
  return CUDA_SUCCESS;
}

static CUresult vgp__primary_release(CUdevice dev, int reset) {
  CUresult r = vgp__cu_check_init();
  if (r != CUDA_SUCCESS)
    return r;
  if (dev < 0 || dev >= g_cu.device_count)
    return CUDA_ERROR_INVALID_DEVICE;
  pthread_mutex_lock(&g_cu.lock);
  struct vgp__ctx *ctx = g_cu.primary[dev];
  if (ctx == NULL || g_cu.primary_refs[dev] == 0) {
    pthread_mutex_unlock(&g_cu.lock);
    /* Resetting an inactive primary context is allowed and does nothing. */
    return reset ? CUDA_SUCCESS : CUDA_ERROR_INVALID_CONTEXT;
  }
  if (reset)
    g_cu.primary_refs[dev] = 0;
  else
    g_cu.primary_refs[dev]--;
  int last = g_cu.primary_refs[dev] == 0;
  pthread_mutex_unlock(&g_cu.lock);
  if (last)
    vgp__ctx_destroy(ctx);
  return CUDA_SUCCESS;
}

VGP_EXPORT CUresult cuDevicePrimaryCtxRelease(CUdevice dev) {
  return vgp__primary_release(dev, 0);
}

VGP_EXPORT CUresult cuDevicePrimaryCtxRelease_v2(CUdevice dev) {
  return vgp__primary_release(dev, 0);
}

VGP_EXPORT CUresult cuDevicePrimaryCtxReset(CUdevice dev) {
  return vgp__primary_release(dev, 1);
}

VGP_EXPORT CUresult cuDevicePrimaryCtxReset_v2(CUdevice dev) {
  return vgp__primary_release(dev, 1);
}

VGP_EXPORT CUresult cuDevicePrimaryCtxGetState(CUdevice dev, unsigned int *flags, int *active) {
  CUresult r = vgp__cu_check_init();
  if (r != CUDA_SUCCESS)
    return r;
  if (dev < 0 || dev >= g_cu.device_count)
    return CUDA_ERROR_INVALID_DEVICE;
  if (flags == NULL || active == NULL)
    return CUDA_ERROR_INVALID_VALUE;
  pthread_mutex_lock(&g_cu.lock);
  *flags = g_cu.primary_flags[dev];
  *active = g_cu.primary_refs[dev] > 0;
  pthread_mutex_unlock(&g_cu.lock);
  return CUDA_SUCCESS;
}

VGP_EXPORT CUresult cuDevicePrimaryCtxSetFlags(CUdevice dev, unsigned int flags) {
  CUresult r = vgp__cu_check_init();
  if (r != CUDA_SUCCESS)
    return r;
  if (dev < 0 || dev >= g_cu.device_count)
    return CUDA_ERROR_INVALID_DEVICE;
  if ((flags & ~(unsigned)CU_CTX_FLAGS_MASK) != 0)
    return CUDA_ERROR_INVALID_VALUE;
  pthread_mutex_lock(&g_cu.lock);
  g_cu.primary_flags[dev] = flags;
  if (g_cu.primary[dev] != NULL)
    g_cu.primary[dev]->flags = flags;
  pthread_mutex_unlock(&g_cu.lock);
  return CUDA_SUCCESS;
}

VGP_EXPORT CUresult cuDevicePrimaryCtxSetFlags_v2(CUdevice dev, unsigned int flags) {
  return cuDevicePrimaryCtxSetFlags(dev, flags);
}

/* ------------------------------------------ original (v2000) variants */

/* On 64-bit hosts these first versions take the same arguments as their
 * successors and behave the same. */
VGP_EXPORT CUresult cuCtxCreate(CUcontext *pctx, unsigned int flags, CUdevice dev) {
  return cuCtxCreate_v2(pctx, flags, dev);
}

VGP_EXPORT CUresult cuCtxDestroy(CUcontext ctx) { return cuCtxDestroy_v2(ctx); }

VGP_EXPORT CUresult cuCtxPushCurrent(CUcontext ctx) { return cuCtxPushCurrent_v2(ctx); }

VGP_EXPORT CUresult cuCtxPopCurrent(CUcontext *pctx) { return cuCtxPopCurrent_v2(pctx); }
