/*
 * hook_mem.c - device memory accounting: reserve, then allocate.
 *
 * Every path that takes device memory charges the container before the
 * driver is asked (so concurrent allocations in any number of processes can
 * never together exceed the quota), then settles the charge to the size the
 * driver really gave, and records it in a hash map so that the free returns
 * exactly what was charged:
 *
 *   cuMemAlloc, managed     size rounded to 512 B, settled to the size
 *                           cuMemGetAddressRange reports
 *   cuMemAllocPitch         width rounded to 512 B x height, settled to the
 *                           returned pitch x height
 *   cuMemAllocAsync, pools  the pool's growth: a tentative charge of the
 *                           request rounded to 2 MiB, settled to the change
 *                           in the pool's RESERVED_MEM_CURRENT; pools are
 *                           settled again at synchronization points, where
 *                           they release memory
 *   cuMemCreate (VMM)       the handle's size, returned by cuMemRelease
 *   arrays                  settled to cuArrayGetMemoryRequirements
 *   IPC, imported handles   never charged (the exporter owns the memory)
 *
 * A settle that grows the charge may still be refused; the allocation is
 * then given back and the caller gets CUDA_ERROR_OUT_OF_MEMORY, so the
 * container's device memory never exceeds its quota at any instant.
 */
#include <errno.h>
#include <string.h>

#include "hook_internal.h"
#include "log.h"

#define VGP_ROUND_SMALL 512ull
#define VGP_ROUND_POOL (2ull << 20)

static uint64_t vgp__round(uint64_t v, uint64_t to) { return (v + to - 1) / to * to; }

/* Claims our region slot on first use. Called with g_hook.lock held. */
int vgp__ensure_slot_locked(void) {
  if (g_hook.slot >= 0)
    return 0;
  int slot;
  int r = vgp__region_claim(&g_hook.region, &slot);
  if (r < 0) {
    vgp__log_error("hook", "container %s has no free process slot (%d processes use its GPUs); "
                           "CUDA is refused",
                   g_hook.limits.container[0] ? g_hook.limits.container : "(HAMi mode)",
                   VGP_REGION_MAX_PROCS);
    g_hook.init_error = CUDA_ERROR_NOT_INITIALIZED;
    return r;
  }
  __atomic_store_n(&g_hook.slot, slot, __ATOMIC_RELEASE);
  return 0;
}

int vgp__charge(int dev, uint64_t bytes, int force) {
  if (bytes == 0)
    return 0;
  /* The slot is claimed once per process; after that it never changes, so
   * the common case needs no lock. */
  int slot = __atomic_load_n(&g_hook.slot, __ATOMIC_ACQUIRE);
  if (slot < 0) {
    pthread_mutex_lock(&g_hook.lock);
    int r = vgp__ensure_slot_locked();
    slot = g_hook.slot;
    pthread_mutex_unlock(&g_hook.lock);
    if (r < 0)
      return r;
  }
  const struct vgp__hdev *h = &g_hook.dev[dev];
  uint64_t limit = (force || h->limit == 0) ? VGP_REGION_NO_LIMIT : h->limit;
  int r = vgp__region_charge(&g_hook.region, slot, h->region_dev, bytes, limit);
  /* Before refusing, return what processes that died still hold: the
   * driver has freed their memory already. */
  if (r == -EDQUOT && vgp__region_reclaim(&g_hook.region) > 0)
    r = vgp__region_charge(&g_hook.region, slot, h->region_dev, bytes, limit);
  return r;
}

void vgp__uncharge(int dev, uint64_t bytes) {
  int slot = __atomic_load_n(&g_hook.slot, __ATOMIC_ACQUIRE);
  if (bytes == 0 || slot < 0)
    return;
  vgp__region_uncharge(&g_hook.region, slot, g_hook.dev[dev].region_dev, bytes);
}

CUresult vgp__current_device(int *ret_dev) {
  CUdevice d;
  CUresult r = vgp__real_cu.cuCtxGetDevice(&d);
  if (r != CUDA_SUCCESS)
    return r;
  if (d < 0 || d >= g_hook.ndev)
    return CUDA_ERROR_INVALID_DEVICE;
  *ret_dev = d;
  return CUDA_SUCCESS;
}

static uint64_t vgp__current_ctx(void) {
  CUcontext ctx = NULL;
  vgp__real_cu.cuCtxGetCurrent(&ctx);
  return (uint64_t)(uintptr_t)ctx;
}

void vgp__record(uint64_t key, int dev, uint64_t charged, int kind, uint64_t ctx) {
  struct vgp__rec rec = {charged, ctx, (int16_t)dev, (int16_t)kind};
  pthread_mutex_lock(&g_hook.lock);
  int r = vgp__hmap_put(&g_hook.recs, key, &rec);
  pthread_mutex_unlock(&g_hook.lock);
  if (r < 0) {
    /* Out of memory for the record itself: keep the charge (it will be
     * returned when the process exits) rather than lose track of it. */
    vgp__log_warn("hook", "cannot record an allocation; its charge stays until exit");
  }
}

static int vgp__unrecord(uint64_t key, int kind, struct vgp__rec *ret) {
  pthread_mutex_lock(&g_hook.lock);
  struct vgp__rec *rec = vgp__hmap_get(&g_hook.recs, key);
  int r = -ENOENT;
  if (rec != NULL && rec->kind == kind) {
    *ret = *rec;
    vgp__hmap_remove(&g_hook.recs, key, NULL);
    r = 0;
  }
  pthread_mutex_unlock(&g_hook.lock);
  return r;
}

static void vgp__rerecord(uint64_t key, const struct vgp__rec *rec) {
  pthread_mutex_lock(&g_hook.lock);
  vgp__hmap_put(&g_hook.recs, key, rec);
  pthread_mutex_unlock(&g_hook.lock);
}

/* After the driver was asked to release a recorded allocation: returns its
 * charge if the driver did, else keeps the record (the allocation still
 * exists). Returns the driver's answer. */
static CUresult vgp__released(uint64_t key, const struct vgp__rec *rec, CUresult r) {
  if (r == CUDA_SUCCESS)
    vgp__uncharge(rec->dev, rec->charged);
  else
    vgp__rerecord(key, rec);
  return r;
}

void vgp__forget_context(uint64_t ctx) {
  for (;;) {
    uint64_t key = 0;
    struct vgp__rec rec;
    int found = 0;
    pthread_mutex_lock(&g_hook.lock);
    size_t cursor = 0;
    void *val;
    while (vgp__hmap_next(&g_hook.recs, &cursor, &key, &val)) {
      struct vgp__rec *r = val;
      if (r->ctx == ctx && r->kind != VGP_REC_VMM) {
        rec = *r;
        vgp__hmap_remove(&g_hook.recs, key, NULL);
        found = 1;
        break;
      }
    }
    pthread_mutex_unlock(&g_hook.lock);
    if (!found)
      break;
    vgp__uncharge(rec.dev, rec.charged);
  }
}

/* Common entry for memory wrappers: 1 when the call must be accounted. */
static int vgp__accounting(CUresult *ret_error) {
  vgp__hook_init();
  if (!vgp__hook_active())
    return 0;
  if (g_hook.init_error != CUDA_SUCCESS) {
    *ret_error = g_hook.init_error;
    return -1;
  }
  return __atomic_load_n(&g_hook.devices_mapped, __ATOMIC_ACQUIRE) ? 1 : 0;
}

/* Settles a charge of `charged` to `actual`; 0, or -EDQUOT when growing it
 * was refused (the caller then gives the memory back). */
static int vgp__settle(int dev, uint64_t charged, uint64_t actual) {
  if (actual > charged)
    return vgp__charge(dev, actual - charged, 0);
  vgp__uncharge(dev, charged - actual);
  return 0;
}

/* Allocates through `alloc` with a reservation of `estimate`, settles to
 * the real size, records it. */
static CUresult vgp__alloc_accounted(CUdeviceptr *dptr, uint64_t estimate, int dev,
                                     CUresult (*alloc)(CUdeviceptr *, void *), void *arg,
                                     uint64_t (*actual_size)(CUdeviceptr, void *)) {
  if (vgp__charge(dev, estimate, 0) < 0)
    return CUDA_ERROR_OUT_OF_MEMORY;
  CUresult r = alloc(dptr, arg);
  if (r != CUDA_SUCCESS) {
    vgp__uncharge(dev, estimate);
    return r;
  }
  uint64_t actual = actual_size(*dptr, arg);
  if (vgp__settle(dev, estimate, actual) < 0) {
    vgp__real_cu.cuMemFree_v2(*dptr);
    vgp__uncharge(dev, estimate);
    *dptr = 0;
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  vgp__record(*dptr, dev, actual, VGP_REC_MEM, vgp__current_ctx());
  return CUDA_SUCCESS;
}

static uint64_t vgp__range_size(CUdeviceptr p, void *arg) {
  size_t size = 0;
  (void)arg;
  if (vgp__real_cu.cuMemGetAddressRange_v2(NULL, &size, p) != CUDA_SUCCESS)
    return *(uint64_t *)arg; /* keep the estimate */
  return size;
}

struct vgp__linear_args {
  uint64_t estimate; /* first: vgp__range_size falls back to it */
  size_t bytes;
  unsigned flags;
  int managed;
};

static CUresult vgp__do_linear(CUdeviceptr *dptr, void *arg) {
  struct vgp__linear_args *a = arg;
  return a->managed ? vgp__real_cu.cuMemAllocManaged(dptr, a->bytes, a->flags)
                    : vgp__real_cu.cuMemAlloc_v2(dptr, a->bytes);
}

static CUresult vgp__linear(CUdeviceptr *dptr, size_t bytesize, unsigned flags, int managed) {
  CUresult err = CUDA_SUCCESS;
  int acc = vgp__accounting(&err);
  if (acc < 0)
    return err;
  int dev;
  if (acc == 0 || dptr == NULL || bytesize == 0 || vgp__current_device(&dev) != CUDA_SUCCESS)
    return managed ? vgp__real_cu.cuMemAllocManaged(dptr, bytesize, flags)
                   : vgp__real_cu.cuMemAlloc_v2(dptr, bytesize);
  struct vgp__linear_args a = {vgp__round(bytesize, VGP_ROUND_SMALL), bytesize, flags, managed};
  return vgp__alloc_accounted(dptr, a.estimate, dev, vgp__do_linear, &a, vgp__range_size);
}

VGP_EXPORT CUresult cuMemAlloc_v2(CUdeviceptr *dptr, size_t bytesize) {
  VGP_REAL_OR_FAIL(cuMemAlloc_v2);
  return vgp__linear(dptr, bytesize, 0, 0);
}

VGP_EXPORT CUresult cuMemAllocManaged(CUdeviceptr *dptr, size_t bytesize, unsigned int flags) {
  VGP_REAL_OR_FAIL(cuMemAllocManaged);
  return vgp__linear(dptr, bytesize, flags, 1);
}

struct vgp__pitch_args {
  uint64_t estimate;
  size_t *pitch;
  size_t width, height;
  unsigned elem;
};

static CUresult vgp__do_pitch(CUdeviceptr *dptr, void *arg) {
  struct vgp__pitch_args *a = arg;
  return vgp__real_cu.cuMemAllocPitch_v2(dptr, a->pitch, a->width, a->height, a->elem);
}

static uint64_t vgp__pitch_size(CUdeviceptr p, void *arg) {
  struct vgp__pitch_args *a = arg;
  (void)p;
  return (uint64_t)*a->pitch * a->height;
}

VGP_EXPORT CUresult cuMemAllocPitch_v2(CUdeviceptr *dptr, size_t *pPitch, size_t WidthInBytes,
                                       size_t Height, unsigned int ElementSizeBytes) {
  VGP_REAL_OR_FAIL(cuMemAllocPitch_v2);
  CUresult err = CUDA_SUCCESS;
  int acc = vgp__accounting(&err);
  if (acc < 0)
    return err;
  int dev;
  if (acc == 0 || dptr == NULL || pPitch == NULL || WidthInBytes == 0 || Height == 0 ||
      vgp__current_device(&dev) != CUDA_SUCCESS ||
      Height > UINT64_MAX / vgp__round(WidthInBytes, VGP_ROUND_SMALL))
    return vgp__real_cu.cuMemAllocPitch_v2(dptr, pPitch, WidthInBytes, Height, ElementSizeBytes);
  struct vgp__pitch_args a = {vgp__round(WidthInBytes, VGP_ROUND_SMALL) * Height, pPitch,
                              WidthInBytes, Height, ElementSizeBytes};
  return vgp__alloc_accounted(dptr, a.estimate, dev, vgp__do_pitch, &a, vgp__pitch_size);
}

VGP_EXPORT CUresult cuMemFree_v2(CUdeviceptr dptr) {
  VGP_REAL_OR_FAIL(cuMemFree_v2);
  CUresult err = CUDA_SUCCESS;
  int acc = vgp__accounting(&err);
  if (acc < 0)
    return err;
  struct vgp__rec rec;
  if (acc == 0 || dptr == 0 || vgp__unrecord(dptr, VGP_REC_MEM, &rec) < 0) {
    /* Not ours to account (a pool block, or unknown): the driver decides,
     * and a pool may have shrunk. */
    CUresult r = vgp__real_cu.cuMemFree_v2(dptr);
    if (acc > 0 && r == CUDA_SUCCESS)
      vgp__pools_settle(-1);
    return r;
  }
  return vgp__released(dptr, &rec, vgp__real_cu.cuMemFree_v2(dptr));
}

/* ------------------------------------------------------------------ pools */

/* Index of a pool's bookkeeping entry, adding it if `add`; -1 if full or
 * absent. Caller holds g_hook.lock. */
static int vgp__pool_index_locked(uint64_t pool, int dev, int add) {
  for (int i = 0; i < g_hook.npools; i++)
    if (g_hook.pool_handle[i] == pool)
      return i;
  if (!add || g_hook.npools >= VGP_HOOK_MAX_POOLS)
    return -1;
  g_hook.pool_handle[g_hook.npools] = pool;
  g_hook.pools[g_hook.npools] = (struct vgp__pool_rec){0, dev};
  return g_hook.npools++;
}

/* Reads a pool's reserved bytes and moves its charge to match. `tentative`
 * is what the caller charged ahead of an allocation from it; the result
 * replaces that charge. Returns 0, or -EDQUOT if the pool grew past the
 * quota (the caller frees what it allocated). */
static int vgp__pool_settle_one(uint64_t pool, int dev, uint64_t tentative) {
  cuuint64_t reserved = 0;
  if (vgp__real_cu.cuMemPoolGetAttribute((CUmemoryPool)(uintptr_t)pool,
                                         CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT,
                                         &reserved) != CUDA_SUCCESS)
    reserved = 0; /* destroyed: nothing reserved any more */
  pthread_mutex_lock(&g_hook.lock);
  int i = vgp__pool_index_locked(pool, dev, 1);
  uint64_t before = i >= 0 ? g_hook.pools[i].charged : 0;
  if (i >= 0)
    g_hook.pools[i].charged = reserved;
  pthread_mutex_unlock(&g_hook.lock);
  if (i < 0) {
    /* No room to track another pool: keep the tentative charge. */
    return 0;
  }
  /* Charged so far for this pool: before + tentative; it should be
   * `reserved`. Memory the driver already reserved must be charged even
   * past the quota, but only if it was not covered by the tentative. */
  if (reserved >= before) {
    uint64_t growth = reserved - before;
    if (growth > tentative)
      return vgp__charge(dev, growth - tentative, 1);
    vgp__uncharge(dev, tentative - growth);
  } else {
    vgp__uncharge(dev, tentative + (before - reserved));
  }
  return 0;
}

void vgp__pools_settle(int dev) {
  for (int i = 0;; i++) {
    pthread_mutex_lock(&g_hook.lock);
    if (i >= g_hook.npools) {
      pthread_mutex_unlock(&g_hook.lock);
      break;
    }
    uint64_t pool = g_hook.pool_handle[i];
    int pdev = g_hook.pools[i].dev;
    uint64_t charged = g_hook.pools[i].charged;
    pthread_mutex_unlock(&g_hook.lock);
    if ((dev < 0 || pdev == dev) && charged > 0)
      vgp__pool_settle_one(pool, pdev, 0);
  }
}

CUresult vgp__stream_device(CUstream stream, int *ret_dev) {
  if (stream != NULL && stream != CU_STREAM_LEGACY && stream != CU_STREAM_PER_THREAD) {
    CUcontext ctx = NULL, cur = NULL;
    CUresult r = vgp__real_cu.cuStreamGetCtx(stream, &ctx);
    if (r != CUDA_SUCCESS)
      return r;
    vgp__real_cu.cuCtxGetCurrent(&cur);
    if (ctx != cur) {
      CUdevice d;
      if (vgp__real_cu.cuCtxPushCurrent_v2(ctx) != CUDA_SUCCESS)
        return CUDA_ERROR_INVALID_CONTEXT;
      r = vgp__real_cu.cuCtxGetDevice(&d);
      vgp__real_cu.cuCtxPopCurrent_v2(NULL);
      if (r != CUDA_SUCCESS)
        return r;
      *ret_dev = d;
      return d < g_hook.ndev ? CUDA_SUCCESS : CUDA_ERROR_INVALID_DEVICE;
    }
  }
  return vgp__current_device(ret_dev);
}

static CUresult vgp__alloc_pool(CUdeviceptr *dptr, size_t bytesize, CUmemoryPool pool,
                                CUstream hStream, int from_pool, int per_thread) {
  CUresult err = CUDA_SUCCESS;
  int acc = vgp__accounting(&err);
  if (acc < 0)
    return err;
  int dev = -1;
  CUmemoryPool actual_pool = pool;
  if (acc > 0 && dptr != NULL && bytesize > 0 && vgp__stream_device(hStream, &dev) == CUDA_SUCCESS &&
      (from_pool || vgp__real_cu.cuDeviceGetMemPool(&actual_pool, dev) == CUDA_SUCCESS)) {
    uint64_t tentative = vgp__round(bytesize, VGP_ROUND_POOL);
    if (vgp__charge(dev, tentative, 0) < 0)
      return CUDA_ERROR_OUT_OF_MEMORY;
    CUresult r = from_pool ? (per_thread ? vgp__real_cu.cuMemAllocFromPoolAsync_ptsz(dptr, bytesize, pool, hStream)
                                         : vgp__real_cu.cuMemAllocFromPoolAsync(dptr, bytesize, pool, hStream))
                           : (per_thread ? vgp__real_cu.cuMemAllocAsync_ptsz(dptr, bytesize, hStream)
                                         : vgp__real_cu.cuMemAllocAsync(dptr, bytesize, hStream));
    if (r != CUDA_SUCCESS) {
      vgp__uncharge(dev, tentative);
      return r;
    }
    if (vgp__pool_settle_one((uint64_t)(uintptr_t)actual_pool, dev, tentative) < 0) {
      /* The pool grew past the quota: give the block back at once. */
      vgp__real_cu.cuMemFree_v2(*dptr);
      vgp__pools_settle(dev);
      *dptr = 0;
      return CUDA_ERROR_OUT_OF_MEMORY;
    }
    return CUDA_SUCCESS;
  }
  if (from_pool)
    return per_thread ? vgp__real_cu.cuMemAllocFromPoolAsync_ptsz(dptr, bytesize, pool, hStream)
                      : vgp__real_cu.cuMemAllocFromPoolAsync(dptr, bytesize, pool, hStream);
  return per_thread ? vgp__real_cu.cuMemAllocAsync_ptsz(dptr, bytesize, hStream)
                    : vgp__real_cu.cuMemAllocAsync(dptr, bytesize, hStream);
}

VGP_EXPORT CUresult cuMemAllocAsync(CUdeviceptr *dptr, size_t bytesize, CUstream hStream) {
  VGP_REAL_OR_FAIL(cuMemAllocAsync);
  return vgp__alloc_pool(dptr, bytesize, NULL, hStream, 0, 0);
}

VGP_EXPORT CUresult cuMemAllocAsync_ptsz(CUdeviceptr *dptr, size_t bytesize, CUstream hStream) {
  VGP_REAL_OR_FAIL(cuMemAllocAsync_ptsz);
  return vgp__alloc_pool(dptr, bytesize, NULL, hStream, 0, 1);
}

VGP_EXPORT CUresult cuMemAllocFromPoolAsync(CUdeviceptr *dptr, size_t bytesize, CUmemoryPool pool,
                                            CUstream hStream) {
  VGP_REAL_OR_FAIL(cuMemAllocFromPoolAsync);
  return vgp__alloc_pool(dptr, bytesize, pool, hStream, 1, 0);
}

VGP_EXPORT CUresult cuMemAllocFromPoolAsync_ptsz(CUdeviceptr *dptr, size_t bytesize, CUmemoryPool pool,
                                                 CUstream hStream) {
  VGP_REAL_OR_FAIL(cuMemAllocFromPoolAsync_ptsz);
  return vgp__alloc_pool(dptr, bytesize, pool, hStream, 1, 1);
}

/* Frees in stream order return memory to the pool, which gives it back to
 * the device at the next synchronization; settle then. Ordinary memory
 * freed in stream order is returned at once. */
static CUresult vgp__free_async(CUdeviceptr dptr, CUstream hStream, vgp_pfn_cuMemFreeAsync real) {
  CUresult err = CUDA_SUCCESS;
  int acc = vgp__accounting(&err);
  if (acc < 0)
    return err;
  struct vgp__rec rec;
  if (acc > 0 && vgp__unrecord(dptr, VGP_REC_MEM, &rec) == 0)
    return vgp__released(dptr, &rec, real(dptr, hStream));
  return real(dptr, hStream);
}

VGP_EXPORT CUresult cuMemFreeAsync(CUdeviceptr dptr, CUstream hStream) {
  VGP_REAL_OR_FAIL(cuMemFreeAsync);
  return vgp__free_async(dptr, hStream, vgp__real_cu.cuMemFreeAsync);
}

VGP_EXPORT CUresult cuMemFreeAsync_ptsz(CUdeviceptr dptr, CUstream hStream) {
  VGP_REAL_OR_FAIL(cuMemFreeAsync_ptsz);
  return vgp__free_async(dptr, hStream, vgp__real_cu.cuMemFreeAsync_ptsz);
}

/* A pool that shrank or went away gave memory back: settle the pools. */
static CUresult vgp__pool_shrunk(CUresult r) {
  if (r == CUDA_SUCCESS && vgp__hook_active() && g_hook.devices_mapped)
    vgp__pools_settle(-1);
  return r;
}

VGP_EXPORT CUresult cuMemPoolTrimTo(CUmemoryPool pool, size_t minBytesToKeep) {
  VGP_REAL_OR_FAIL(cuMemPoolTrimTo);
  return vgp__pool_shrunk(vgp__real_cu.cuMemPoolTrimTo(pool, minBytesToKeep));
}

VGP_EXPORT CUresult cuMemPoolDestroy(CUmemoryPool pool) {
  VGP_REAL_OR_FAIL(cuMemPoolDestroy);
  return vgp__pool_shrunk(vgp__real_cu.cuMemPoolDestroy(pool));
}

#define VGP_SYNC_WRAPPER(sym, params, args)                                    \
  VGP_EXPORT CUresult sym params {                                             \
    VGP_REAL_OR_FAIL(sym);                                                     \
    CUresult r = vgp__real_cu.sym args;                                        \
    if (vgp__hook_active() && g_hook.devices_mapped && g_hook.npools > 0)      \
      vgp__pools_settle(-1);                                                   \
    return r;                                                                  \
  }

VGP_SYNC_WRAPPER(cuCtxSynchronize, (void), ())
VGP_SYNC_WRAPPER(cuCtxSynchronize_v2, (CUcontext ctx), (ctx))
VGP_SYNC_WRAPPER(cuStreamSynchronize, (CUstream hStream), (hStream))
VGP_SYNC_WRAPPER(cuStreamSynchronize_ptsz, (CUstream hStream), (hStream))

/* -------------------------------------------------------------------- VMM */

VGP_EXPORT CUresult cuMemCreate(CUmemGenericAllocationHandle *handle, size_t size,
                                const CUmemAllocationProp *prop, unsigned long long flags) {
  VGP_REAL_OR_FAIL(cuMemCreate);
  CUresult err = CUDA_SUCCESS;
  int acc = vgp__accounting(&err);
  if (acc < 0)
    return err;
  if (acc == 0 || handle == NULL || prop == NULL || prop->location.type != CU_MEM_LOCATION_TYPE_DEVICE ||
      prop->location.id < 0 || prop->location.id >= g_hook.ndev || size == 0)
    return vgp__real_cu.cuMemCreate(handle, size, prop, flags);
  int dev = prop->location.id;
  if (vgp__charge(dev, size, 0) < 0)
    return CUDA_ERROR_OUT_OF_MEMORY;
  CUresult r = vgp__real_cu.cuMemCreate(handle, size, prop, flags);
  if (r != CUDA_SUCCESS) {
    vgp__uncharge(dev, size);
    return r;
  }
  vgp__record(*handle, dev, size, VGP_REC_VMM, 0);
  return CUDA_SUCCESS;
}

VGP_EXPORT CUresult cuMemRelease(CUmemGenericAllocationHandle handle) {
  VGP_REAL_OR_FAIL(cuMemRelease);
  CUresult err = CUDA_SUCCESS;
  int acc = vgp__accounting(&err);
  if (acc < 0)
    return err;
  struct vgp__rec rec;
  if (acc == 0 || vgp__unrecord(handle, VGP_REC_VMM, &rec) < 0)
    return vgp__real_cu.cuMemRelease(handle); /* imported, or not ours */
  return vgp__released(handle, &rec, vgp__real_cu.cuMemRelease(handle));
}

/* ----------------------------------------------------------------- arrays */

static CUresult vgp__array_create(CUarray *pHandle, const CUDA_ARRAY3D_DESCRIPTOR *d3,
                                  const CUDA_ARRAY_DESCRIPTOR *d2) {
  CUresult err = CUDA_SUCCESS;
  int acc = vgp__accounting(&err);
  if (acc < 0)
    return err;
  int dev;
  const void *desc = d3 != NULL ? (const void *)d3 : (const void *)d2;
  /* Dimensions beyond any board's limits are the driver's to refuse. */
  int sane = desc != NULL &&
             (d3 ? (d3->Width <= (1u << 20) && d3->Height <= (1u << 20) && d3->Depth <= (1u << 20) &&
                    d3->NumChannels <= 4)
                 : (d2->Width <= (1u << 20) && d2->Height <= (1u << 20) && d2->NumChannels <= 4));
  if (acc == 0 || pHandle == NULL || !sane || vgp__current_device(&dev) != CUDA_SUCCESS)
    return d3 ? vgp__real_cu.cuArray3DCreate_v2(pHandle, d3) : vgp__real_cu.cuArrayCreate_v2(pHandle, d2);
  /* The tiled layout is opaque before creation; reserve the element bytes
   * (at most 4 per channel for the formats arrays take) rounded to 512,
   * then settle to what the driver says it needs. */
  uint64_t w = d3 ? d3->Width : d2->Width, h = d3 ? d3->Height : d2->Height;
  uint64_t z = d3 ? d3->Depth : 1, ch = d3 ? d3->NumChannels : d2->NumChannels;
  uint64_t estimate = vgp__round(w * (h ? h : 1) * (z ? z : 1) * ch * 4, VGP_ROUND_SMALL);
  if (vgp__charge(dev, estimate, 0) < 0)
    return CUDA_ERROR_OUT_OF_MEMORY;
  CUresult r = d3 ? vgp__real_cu.cuArray3DCreate_v2(pHandle, d3) : vgp__real_cu.cuArrayCreate_v2(pHandle, d2);
  if (r != CUDA_SUCCESS) {
    vgp__uncharge(dev, estimate);
    return r;
  }
  CUDA_ARRAY_MEMORY_REQUIREMENTS req;
  uint64_t actual = estimate;
  if (vgp__real_cu.cuArrayGetMemoryRequirements != NULL &&
      vgp__real_cu.cuArrayGetMemoryRequirements(&req, *pHandle, dev) == CUDA_SUCCESS)
    actual = req.size;
  if (vgp__settle(dev, estimate, actual) < 0) {
    vgp__real_cu.cuArrayDestroy(*pHandle);
    vgp__uncharge(dev, estimate);
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  vgp__record((uint64_t)(uintptr_t)*pHandle, dev, actual, VGP_REC_ARRAY, vgp__current_ctx());
  return CUDA_SUCCESS;
}

VGP_EXPORT CUresult cuArrayCreate_v2(CUarray *pHandle, const CUDA_ARRAY_DESCRIPTOR *pAllocateArray) {
  VGP_REAL_OR_FAIL(cuArrayCreate_v2);
  return vgp__array_create(pHandle, NULL, pAllocateArray);
}

VGP_EXPORT CUresult cuArray3DCreate_v2(CUarray *pHandle, const CUDA_ARRAY3D_DESCRIPTOR *pAllocateArray) {
  VGP_REAL_OR_FAIL(cuArray3DCreate_v2);
  return vgp__array_create(pHandle, pAllocateArray, NULL);
}

VGP_EXPORT CUresult cuArrayDestroy(CUarray hArray) {
  VGP_REAL_OR_FAIL(cuArrayDestroy);
  CUresult err = CUDA_SUCCESS;
  int acc = vgp__accounting(&err);
  if (acc < 0)
    return err;
  struct vgp__rec rec;
  uint64_t key = (uint64_t)(uintptr_t)hArray;
  if (acc == 0 || vgp__unrecord(key, VGP_REC_ARRAY, &rec) < 0)
    return vgp__real_cu.cuArrayDestroy(hArray);
  return vgp__released(key, &rec, vgp__real_cu.cuArrayDestroy(hArray));
}
