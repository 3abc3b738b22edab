/*
 * hook_ctx.c - cuInit, contexts, and the container's virtual memory view.
 *
 * A context takes device memory of its own (hundreds of MiB on a real
 * board), so each context a container's process creates is charged like an
 * allocation. Its size is learned once per container and device: the first
 * process measures it (the process's memory in NVML's process list minus
 * what it had already been charged) and stores it in the region; later
 * processes reserve that much before creating a context, so even contexts
 * cannot take a container past its quota.
 *
 * Memory queries are virtual: total is the quota, free is the smaller of
 * what the quota leaves and what the board really has free, never negative,
 * never an error for being over.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hook_internal.h"
#include "log.h"
#include "proc.h"

VGP_EXPORT CUresult cuInit(unsigned int Flags) {
  vgp__hook_init();
  if (vgp__real_cu.cuInit == NULL)
    return CUDA_ERROR_NOT_INITIALIZED;
  if (vgp__hook_active() && g_hook.init_error != CUDA_SUCCESS)
    return g_hook.init_error;
  CUresult r = vgp__real_cu.cuInit(Flags);
  if (r != CUDA_SUCCESS || !vgp__hook_active())
    return r;
  return vgp__hook_map_devices();
}

/* Measures the device memory a just-created context took, from NVML. */
static uint64_t vgp__measure_context(int dev) {
  if (vgp__hook_nvml_load() < 0 || vgp__real_nvml.nvmlInit_v2 == NULL ||
      vgp__real_nvml.nvmlInit_v2() != NVML_SUCCESS)
    return 0;
  uint64_t found = 0;
  nvmlDevice_t nd;
  nvmlProcessInfo_t procs[256];
  unsigned count = 256;
  if (vgp__real_nvml.nvmlDeviceGetHandleByUUID(g_hook.dev[dev].uuid, &nd) == NVML_SUCCESS &&
      vgp__real_nvml.nvmlDeviceGetComputeRunningProcesses_v3(nd, &count, procs) == NVML_SUCCESS) {
    /* NVML names processes in the node's PID namespace, not ours: the
     * slot holds our pid there (filled in by the agent where /proc cannot
     * tell it). */
    int32_t host = g_hook.slot >= 0 ? g_hook.region.r->slots[g_hook.slot].host_pid : 0;
    unsigned me = (unsigned)(host > 0 ? host : vgp__proc_host_pid());
    for (unsigned i = 0; i < count; i++)
      if (procs[i].pid == me)
        found = procs[i].usedGpuMemory;
  }
  vgp__real_nvml.nvmlShutdown();
  uint64_t mine = g_hook.slot >= 0
                      ? g_hook.region.r->slots[g_hook.slot].used[g_hook.dev[dev].region_dev]
                      : 0;
  return found > mine ? found - mine : 0;
}

/* Charges a context about to be created on dev. Returns what was charged,
 * or -1 if the quota refuses. When the container does not know its
 * context footprint yet, *ret_learning is set and the caller holds the
 * region's learning lock until vgp__context_settle: no other process of
 * the container creates a context meanwhile, so the one created unpriced
 * cannot take the container past its quota behind anyone's back. */
static int64_t vgp__context_reserve(int dev, int *ret_learning) {
  uint64_t *known = &g_hook.region.r->dev[g_hook.dev[dev].region_dev].ctx_footprint;
  uint64_t footprint = __atomic_load_n(known, __ATOMIC_ACQUIRE);
  *ret_learning = 0;
  if (footprint == 0) {
    vgp__region_learn_lock(&g_hook.region);
    footprint = __atomic_load_n(known, __ATOMIC_ACQUIRE);
    if (footprint == 0)
      *ret_learning = 1;
    else
      vgp__region_learn_unlock(&g_hook.region);
  }
  if (vgp__charge(dev, footprint, 0) < 0) {
    if (*ret_learning)
      vgp__region_learn_unlock(&g_hook.region);
    *ret_learning = 0;
    return -1;
  }
  return (int64_t)footprint;
}

/* After creation (created: whether it succeeded): when learning, measure,
 * charge and teach the region, then let the others go. Returns the final
 * charge. */
static uint64_t vgp__context_settle(int dev, uint64_t charged, int learning, int created) {
  if (!learning)
    return charged;
  uint64_t measured = created ? vgp__measure_context(dev) : 0;
  if (measured > 0) {
    /* The context exists already: its memory is counted even if that
     * takes the container over its quota. */
    vgp__charge(dev, measured, 1);
    __atomic_store_n(&g_hook.region.r->dev[g_hook.dev[dev].region_dev].ctx_footprint, measured,
                     __ATOMIC_RELEASE);
  }
  vgp__region_learn_unlock(&g_hook.region);
  return measured;
}

/* The context reserved for was not created (or not by us): lets other
 * processes learn the footprint, and returns the reservation. */
static void vgp__context_abandon(int dev, int64_t charged, int learning) {
  vgp__context_settle(dev, 0, learning, 0);
  vgp__uncharge(dev, (uint64_t)charged);
}

static int vgp__ctx_accounting(CUresult *err, CUdevice dev) {
  vgp__hook_init();
  if (!vgp__hook_active())
    return 0;
  if (g_hook.init_error != CUDA_SUCCESS) {
    *err = g_hook.init_error;
    return -1;
  }
  if (!g_hook.devices_mapped || dev < 0 || dev >= g_hook.ndev)
    return 0;
  return 1;
}

/* One implementation for every cuCtxCreate variant: `create` makes the
 * context through the right real entry point. */
static CUresult vgp__ctx_create(CUcontext *pctx, CUdevice dev, CUresult (*create)(CUcontext *, void *),
                                void *arg) {
  CUresult err = CUDA_SUCCESS;
  int acc = vgp__ctx_accounting(&err, dev);
  if (acc < 0)
    return err;
  if (acc == 0 || pctx == NULL)
    return create(pctx, arg);
  int learning;
  int64_t charged = vgp__context_reserve(dev, &learning);
  if (charged < 0)
    return CUDA_ERROR_OUT_OF_MEMORY;
  CUresult r = create(pctx, arg);
  if (r != CUDA_SUCCESS) {
    vgp__context_abandon(dev, charged, learning);
    return r;
  }
  vgp__record((uint64_t)(uintptr_t)*pctx, dev,
              vgp__context_settle(dev, (uint64_t)charged, learning, 1), VGP_REC_CTX, 0);
  return CUDA_SUCCESS;
}

struct vgp__create_args {
  int variant;
  unsigned flags;
  CUdevice dev;
  CUexecAffinityParam *affinity;
  int naffinity;
  CUctxCreateParams *params;
};

static CUresult vgp__do_create(CUcontext *pctx, void *arg) {
  struct vgp__create_args *a = arg;
  switch (a->variant) {
  case 1:
    return vgp__real_cu.cuCtxCreate(pctx, a->flags, a->dev);
  case 2:
    return vgp__real_cu.cuCtxCreate_v2(pctx, a->flags, a->dev);
  case 3:
    return vgp__real_cu.cuCtxCreate_v3(pctx, a->affinity, a->naffinity, a->flags, a->dev);
  default:
    return vgp__real_cu.cuCtxCreate_v4(pctx, a->params, a->flags, a->dev);
  }
}

VGP_EXPORT CUresult cuCtxCreate(CUcontext *pctx, unsigned int flags, CUdevice dev) {
  VGP_REAL_OR_FAIL(cuCtxCreate);
  struct vgp__create_args a = {1, flags, dev, NULL, 0, NULL};
  return vgp__ctx_create(pctx, dev, vgp__do_create, &a);
}

VGP_EXPORT CUresult cuCtxCreate_v2(CUcontext *pctx, unsigned int flags, CUdevice dev) {
  VGP_REAL_OR_FAIL(cuCtxCreate_v2);
  struct vgp__create_args a = {2, flags, dev, NULL, 0, NULL};
  return vgp__ctx_create(pctx, dev, vgp__do_create, &a);
}

VGP_EXPORT CUresult cuCtxCreate_v3(CUcontext *pctx, CUexecAffinityParam *paramsArray, int numParams,
                                   unsigned int flags, CUdevice dev) {
  VGP_REAL_OR_FAIL(cuCtxCreate_v3);
  struct vgp__create_args a = {3, flags, dev, paramsArray, numParams, NULL};
  return vgp__ctx_create(pctx, dev, vgp__do_create, &a);
}

VGP_EXPORT CUresult cuCtxCreate_v4(CUcontext *pctx, CUctxCreateParams *ctxCreateParams, unsigned int flags,
                                   CUdevice dev) {
  VGP_REAL_OR_FAIL(cuCtxCreate_v4);
  struct vgp__create_args a = {4, flags, dev, NULL, 0, ctxCreateParams};
  return vgp__ctx_create(pctx, dev, vgp__do_create, &a);
}

static CUresult vgp__ctx_destroy(CUcontext ctx, CUresult (*destroy)(CUcontext)) {
  CUresult err = CUDA_SUCCESS;
  vgp__hook_init();
  if (!vgp__hook_active())
    return destroy(ctx);
  if (g_hook.init_error != CUDA_SUCCESS)
    return g_hook.init_error;
  struct vgp__rec rec;
  int have = 0;
  pthread_mutex_lock(&g_hook.lock);
  struct vgp__rec *p = vgp__hmap_get(&g_hook.recs, (uint64_t)(uintptr_t)ctx);
  if (p != NULL && p->kind == VGP_REC_CTX) {
    rec = *p;
    have = 1;
  }
  pthread_mutex_unlock(&g_hook.lock);
  CUresult r = destroy(ctx);
  (void)err;
  if (r != CUDA_SUCCESS)
    return r;
  /* The driver frees everything made in the context with it. */
  if (have) {
    pthread_mutex_lock(&g_hook.lock);
    vgp__hmap_remove(&g_hook.recs, (uint64_t)(uintptr_t)ctx, NULL);
    pthread_mutex_unlock(&g_hook.lock);
    vgp__uncharge(rec.dev, rec.charged);
  }
  vgp__forget_context((uint64_t)(uintptr_t)ctx);
  return r;
}

VGP_EXPORT CUresult cuCtxDestroy(CUcontext ctx) {
  VGP_REAL_OR_FAIL(cuCtxDestroy);
  return vgp__ctx_destroy(ctx, vgp__real_cu.cuCtxDestroy);
}

VGP_EXPORT CUresult cuCtxDestroy_v2(CUcontext ctx) {
  VGP_REAL_OR_FAIL(cuCtxDestroy_v2);
  return vgp__ctx_destroy(ctx, vgp__real_cu.cuCtxDestroy_v2);
}

/* Primary contexts: charged while this process holds at least one
 * reference, like the driver keeps them alive. */
VGP_EXPORT CUresult cuDevicePrimaryCtxRetain(CUcontext *pctx, CUdevice dev) {
  VGP_REAL_OR_FAIL(cuDevicePrimaryCtxRetain);
  CUresult err = CUDA_SUCCESS;
  int acc = vgp__ctx_accounting(&err, dev);
  if (acc < 0)
    return err;
  if (acc == 0 || pctx == NULL)
    return vgp__real_cu.cuDevicePrimaryCtxRetain(pctx, dev);
  pthread_mutex_lock(&g_hook.lock);
  int first = g_hook.primary_refs[dev] == 0;
  pthread_mutex_unlock(&g_hook.lock);
  int learning = 0;
  int64_t charged = first ? vgp__context_reserve(dev, &learning) : 0;
  if (charged < 0)
    return CUDA_ERROR_OUT_OF_MEMORY;
  CUresult r = vgp__real_cu.cuDevicePrimaryCtxRetain(pctx, dev);
  if (r != CUDA_SUCCESS) {
    vgp__context_abandon(dev, charged, learning);
    return r;
  }
  pthread_mutex_lock(&g_hook.lock);
  int won = g_hook.primary_refs[dev]++ == 0;
  if (won)
    g_hook.primary_ctx[dev] = (uint64_t)(uintptr_t)*pctx;
  pthread_mutex_unlock(&g_hook.lock);
  if (!won) {
    /* Another thread made it active first and charged for it. */
    vgp__context_abandon(dev, charged, learning);
    return CUDA_SUCCESS;
  }
  vgp__record((uint64_t)(uintptr_t)*pctx, dev,
              vgp__context_settle(dev, (uint64_t)charged, learning, 1), VGP_REC_CTX, 0);
  return CUDA_SUCCESS;
}

static CUresult vgp__primary_release(CUdevice dev, int reset, CUresult (*real)(CUdevice)) {
  CUresult err = CUDA_SUCCESS;
  int acc = vgp__ctx_accounting(&err, dev);
  if (acc < 0)
    return err;
  CUresult r = real(dev);
  if (r != CUDA_SUCCESS || acc == 0)
    return r;
  pthread_mutex_lock(&g_hook.lock);
  int last = 0;
  if (g_hook.primary_refs[dev] > 0) {
    g_hook.primary_refs[dev] = reset ? 0 : g_hook.primary_refs[dev] - 1;
    last = g_hook.primary_refs[dev] == 0;
  }
  struct vgp__rec rec = {0, 0, 0, 0};
  uint64_t ctx = g_hook.primary_ctx[dev];
  if (last && ctx != 0) {
    vgp__hmap_remove(&g_hook.recs, ctx, &rec);
    g_hook.primary_ctx[dev] = 0;
  }
  pthread_mutex_unlock(&g_hook.lock);
  if (last) {
    vgp__uncharge(dev, rec.charged);
    vgp__forget_context(ctx);
  }
  return r;
}

VGP_EXPORT CUresult cuDevicePrimaryCtxRelease(CUdevice dev) {
  VGP_REAL_OR_FAIL(cuDevicePrimaryCtxRelease);
  return vgp__primary_release(dev, 0, vgp__real_cu.cuDevicePrimaryCtxRelease);
}

VGP_EXPORT CUresult cuDevicePrimaryCtxRelease_v2(CUdevice dev) {
  VGP_REAL_OR_FAIL(cuDevicePrimaryCtxRelease_v2);
  return vgp__primary_release(dev, 0, vgp__real_cu.cuDevicePrimaryCtxRelease_v2);
}

VGP_EXPORT CUresult cuDevicePrimaryCtxReset(CUdevice dev) {
  VGP_REAL_OR_FAIL(cuDevicePrimaryCtxReset);
  return vgp__primary_release(dev, 1, vgp__real_cu.cuDevicePrimaryCtxReset);
}

VGP_EXPORT CUresult cuDevicePrimaryCtxReset_v2(CUdevice dev) {
  VGP_REAL_OR_FAIL(cuDevicePrimaryCtxReset_v2);
  return vgp__primary_release(dev, 1, vgp__real_cu.cuDevicePrimaryCtxReset_v2);
}

/* ------------------------------------------------------------ the view */

/* The container's (total, free) on dev given the board's free memory. */
static void vgp__virtual_memory(int dev, uint64_t phys_free, uint64_t *ret_total, uint64_t *ret_free,
                                uint64_t *ret_used) {
  const struct vgp__hdev *h = &g_hook.dev[dev];
  uint64_t used = __atomic_load_n(&g_hook.region.r->dev[h->region_dev].used, __ATOMIC_ACQUIRE);
  uint64_t left = used >= h->limit ? 0 : h->limit - used;
  *ret_total = h->limit;
  *ret_free = left < phys_free ? left : phys_free;
  if (ret_used != NULL)
    *ret_used = used;
}

VGP_EXPORT CUresult cuMemGetInfo_v2(size_t *free_bytes, size_t *total_bytes) {
  VGP_REAL_OR_FAIL(cuMemGetInfo_v2);
  CUresult r = vgp__real_cu.cuMemGetInfo_v2(free_bytes, total_bytes);
  int dev;
  if (r != CUDA_SUCCESS || !vgp__hook_active() || g_hook.init_error != CUDA_SUCCESS ||
      !g_hook.devices_mapped || vgp__current_device(&dev) != CUDA_SUCCESS || g_hook.dev[dev].limit == 0)
    return r;
  uint64_t total, left;
  vgp__virtual_memory(dev, *free_bytes, &total, &left, NULL);
  *total_bytes = total;
  *free_bytes = left;
  return CUDA_SUCCESS;
}

VGP_EXPORT CUresult cuDeviceTotalMem_v2(size_t *bytes, CUdevice dev) {
  VGP_REAL_OR_FAIL(cuDeviceTotalMem_v2);
  CUresult r = vgp__real_cu.cuDeviceTotalMem_v2(bytes, dev);
  if (r == CUDA_SUCCESS && vgp__hook_active() && g_hook.devices_mapped && dev >= 0 && dev < g_hook.ndev &&
      g_hook.dev[dev].limit != 0)
    *bytes = g_hook.dev[dev].limit;
  return r;
}
