/*
 * cu_pool.c - stream-ordered allocation and memory pools of the simulated
 * driver.
 *
 * A pool reserves device memory in blocks rounded up to 2 MiB, each charged
 * to the node when it is reserved. Freed blocks stay reserved in the pool
 * and are reused by later allocations of a similar size; a pool gives
 * memory above its release threshold back to the device when the device
 * synchronizes (a stream or context synchronize), or when asked with
 * cuMemPoolTrimTo, which is the documented behaviour of CUDA pools. The
 * attributes (reserved and used, current and high) therefore describe real
 * reservations, which is what an interposer must charge.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "alloc.h"
#include "cu_internal.h"

#define VGP_POOL_BLOCK (2ull << 20)

static int vgp__pool_register(struct vgp__pool *pool) {
  for (int i = 0; i < VGP_MAX_POOLS; i++) {
    if (g_cu.pools[i] == NULL) {
      g_cu.pools[i] = pool;
      return 0;
    }
  }
  return -ENOSPC;
}

static struct vgp__pool *vgp__pool_new(int device, const CUmemPoolProps *props, int is_default) {
  struct vgp__pool *pool = vgp__calloc(1, sizeof(*pool));
  if (pool == NULL)
    return NULL;
  pool->kind = VGP_CU_POOL;
  pool->device = device;
  pool->is_default = is_default;
  if (props != NULL)
    pool->props = *props;
  pool->props.allocType = CU_MEM_ALLOCATION_TYPE_PINNED;
  pool->props.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  pool->props.location.id = device;
  pthread_mutex_lock(&g_cu.pool_lock);
  int r = vgp__pool_register(pool);
  pthread_mutex_unlock(&g_cu.pool_lock);
  if (r < 0 || vgp__handle_add(pool, VGP_CU_POOL) < 0) {
    if (r == 0) {
      pthread_mutex_lock(&g_cu.pool_lock);
      for (int i = 0; i < VGP_MAX_POOLS; i++)
        if (g_cu.pools[i] == pool)
          g_cu.pools[i] = NULL;
      pthread_mutex_unlock(&g_cu.pool_lock);
    }
    vgp__free(pool);
    return NULL;
  }
  return pool;
}

struct vgp__pool *vgp__pool_default(int device) {
  pthread_mutex_lock(&g_cu.lock);
  struct vgp__pool *pool = g_cu.default_pool[device];
  pthread_mutex_unlock(&g_cu.lock);
  if (pool != NULL)
    return pool;
  struct vgp__pool *fresh = vgp__pool_new(device, NULL, 1);
  if (fresh == NULL)
    return NULL;
  pthread_mutex_lock(&g_cu.lock);
  if (g_cu.default_pool[device] == NULL) {
    g_cu.default_pool[device] = fresh;
    if (g_cu.current_pool[device] == NULL)
      g_cu.current_pool[device] = fresh;
    fresh = NULL;
  }
  pool = g_cu.default_pool[device];
  pthread_mutex_unlock(&g_cu.lock);
  if (fresh != NULL) {
    /* Lost a race with another thread: drop ours. */
    vgp__handle_remove(fresh);
    pthread_mutex_lock(&g_cu.pool_lock);
    for (int i = 0; i < VGP_MAX_POOLS; i++)
      if (g_cu.pools[i] == fresh)
        g_cu.pools[i] = NULL;
    pthread_mutex_unlock(&g_cu.pool_lock);
    vgp__free(fresh);
  }
  return pool;
}

/* Releases cached blocks until the pool reserves at most `keep` bytes.
 * Caller holds g_cu.pool_lock. */
static void vgp__pool_trim_locked(struct vgp__pool *pool, uint64_t keep) {
  while (pool->ncached > 0 && pool->reserved_cur > keep) {
    struct vgp__alloc *a = pool->cached[--pool->ncached];
    pool->reserved_cur -= a->charged;
    vgp__mem_free(a);
  }
}

void vgp__pool_trim(struct vgp__pool *pool, uint64_t keep) {
  pthread_mutex_lock(&g_cu.pool_lock);
  vgp__pool_trim_locked(pool, keep);
  pthread_mutex_unlock(&g_cu.pool_lock);
}

void vgp__pools_trim_on_sync(int device) {
  pthread_mutex_lock(&g_cu.pool_lock);
  for (int i = 0; i < VGP_MAX_POOLS; i++) {
    struct vgp__pool *pool = g_cu.pools[i];
    if (pool != NULL && pool->device == device)
      vgp__pool_trim_locked(pool, pool->release_threshold);
  }
  pthread_mutex_unlock(&g_cu.pool_lock);
}

void vgp__pools_forget_ctx(struct vgp__ctx *ctx) {
  pthread_mutex_lock(&g_cu.pool_lock);
  for (int i = 0; i < VGP_MAX_POOLS; i++) {
    struct vgp__pool *pool = g_cu.pools[i];
    if (pool == NULL)
      continue;
    for (size_t k = 0; k < pool->ncached;) {
      struct vgp__alloc *a = pool->cached[k];
      if (a->ctx != ctx) {
        k++;
        continue;
      }
      pool->cached[k] = pool->cached[--pool->ncached];
      pool->reserved_cur -= a->charged;
      vgp__mem_free(a);
    }
  }
  pthread_mutex_unlock(&g_cu.pool_lock);
}

static CUresult vgp__pool_alloc(struct vgp__pool *pool, struct vgp__ctx *ctx, uint64_t bytes,
                                CUdeviceptr *dptr) {
  uint64_t size = vgp__round_up(bytes, 512);
  uint64_t block = vgp__round_up(bytes, VGP_POOL_BLOCK);
  pthread_mutex_lock(&g_cu.pool_lock);
  /* Best fit among cached blocks no more than twice the size needed. */
  size_t best = SIZE_MAX;
  for (size_t i = 0; i < pool->ncached; i++) {
    uint64_t c = pool->cached[i]->charged;
    if (c >= block && c <= 2 * block && (best == SIZE_MAX || c < pool->cached[best]->charged))
      best = i;
  }
  struct vgp__alloc *a = NULL;
  if (best != SIZE_MAX) {
    a = pool->cached[best];
    pool->cached[best] = pool->cached[--pool->ncached];
  }
  pthread_mutex_unlock(&g_cu.pool_lock);

  if (a == NULL) {
    CUresult r = vgp__mem_alloc(ctx, VGP_ALLOC_POOL, block, &a);
    if (r == CUDA_ERROR_OUT_OF_MEMORY) {
      /* Cached memory of this device's pools can be given back first. */
      vgp__pools_trim_on_sync(pool->device);
      pthread_mutex_lock(&g_cu.pool_lock);
      vgp__pool_trim_locked(pool, 0);
      pthread_mutex_unlock(&g_cu.pool_lock);
      r = vgp__mem_alloc(ctx, VGP_ALLOC_POOL, block, &a);
    }
    if (r != CUDA_SUCCESS)
      return r;
    pthread_mutex_lock(&g_cu.pool_lock);
    pool->reserved_cur += a->charged;
    if (pool->reserved_cur > pool->reserved_high)
      pool->reserved_high = pool->reserved_cur;
    pthread_mutex_unlock(&g_cu.pool_lock);
  }
  pthread_mutex_lock(&g_cu.lock);
  a->size = size;
  a->pool = pool;
  a->pool_free = 0;
  a->ctx = ctx;
  pthread_mutex_unlock(&g_cu.lock);
  pthread_mutex_lock(&g_cu.pool_lock);
  pool->used_cur += a->charged;
  if (pool->used_cur > pool->used_high)
    pool->used_high = pool->used_cur;
  pthread_mutex_unlock(&g_cu.pool_lock);
  *dptr = a->base;
  return CUDA_SUCCESS;
}

/* Returns a pool block to its pool's cache (stream-ordered free). */
void vgp__pool_free_block(uint64_t ptr) {
  struct vgp__alloc *a = vgp__alloc_find(ptr);
  if (a == NULL || a->kind != VGP_ALLOC_POOL || a->base != ptr || a->pool_free)
    return;
  struct vgp__pool *pool = a->pool;
  pthread_mutex_lock(&g_cu.pool_lock);
  if (pool->ncached == pool->cached_cap) {
    size_t cap = pool->cached_cap ? pool->cached_cap * 2 : 16;
    struct vgp__alloc **grown = vgp__realloc(pool->cached, cap * sizeof(*grown));
    if (grown == NULL) {
      /* Cannot cache it: give it back to the device instead. */
      pool->used_cur -= a->charged;
      pool->reserved_cur -= a->charged;
      pthread_mutex_unlock(&g_cu.pool_lock);
      vgp__mem_free(a);
      return;
    }
    pool->cached = grown;
    pool->cached_cap = cap;
  }
  a->pool_free = 1;
  pool->used_cur -= a->charged;
  pool->cached[pool->ncached++] = a;
  if (pool->destroyed)
    vgp__pool_trim_locked(pool, 0);
  pthread_mutex_unlock(&g_cu.pool_lock);
}

static CUresult vgp__alloc_async(CUdeviceptr *dptr, size_t bytesize, CUmemoryPool hpool,
                                 CUstream hStream, int per_thread) {
  struct vgp__stream *s;
  CUresult r = vgp__stream_resolve(hStream, per_thread, &s);
  if (r != CUDA_SUCCESS)
    return r;
  if (dptr == NULL || bytesize == 0)
    return CUDA_ERROR_INVALID_VALUE;
  struct vgp__pool *pool;
  if (hpool != NULL) {
    if (!vgp__handle_is(hpool, VGP_CU_POOL))
      return CUDA_ERROR_INVALID_HANDLE;
    pool = (struct vgp__pool *)hpool;
  } else {
    if (vgp__pool_default(s->ctx->device) == NULL)
      return CUDA_ERROR_OUT_OF_MEMORY;
    pthread_mutex_lock(&g_cu.lock);
    pool = g_cu.current_pool[s->ctx->device];
    pthread_mutex_unlock(&g_cu.lock);
  }
  return vgp__pool_alloc(pool, s->ctx, bytesize, dptr);
}

VGP_EXPORT CUresult cuMemAllocAsync(CUdeviceptr *dptr, size_t bytesize, CUstream hStream) {
  return vgp__alloc_async(dptr, bytesize, NULL, hStream, 0);
}

VGP_EXPORT CUresult cuMemAllocAsync_ptsz(CUdeviceptr *dptr, size_t bytesize, CUstream hStream) {
  return vgp__alloc_async(dptr, bytesize, NULL, hStream, 1);
}

VGP_EXPORT CUresult cuMemAllocFromPoolAsync(CUdeviceptr *dptr, size_t bytesize, CUmemoryPool pool,
                                            CUstream hStream) {
  if (pool == NULL)
    return CUDA_ERROR_INVALID_VALUE;
  return vgp__alloc_async(dptr, bytesize, pool, hStream, 0);
}

VGP_EXPORT CUresult cuMemAllocFromPoolAsync_ptsz(CUdeviceptr *dptr, size_t bytesize, CUmemoryPool pool,
                                                 CUstream hStream) {
  if (pool == NULL)
    return CUDA_ERROR_INVALID_VALUE;
  return vgp__alloc_async(dptr, bytesize, pool, hStream, 1);
}

static CUresult vgp__free_async(CUdeviceptr dptr, CUstream hStream, int per_thread) {
  struct vgp__stream *s;
  CUresult r = vgp__stream_resolve(hStream, per_thread, &s);
  if (r != CUDA_SUCCESS)
    return r;
  struct vgp__alloc *a = vgp__alloc_find(dptr);
  if (a == NULL || a->base != dptr)
    return CUDA_ERROR_INVALID_VALUE;
  if (a->kind != VGP_ALLOC_POOL) {
    /* Freeing ordinary memory in stream order: wait for the stream. */
    if (a->kind != VGP_ALLOC_DEVICE && a->kind != VGP_ALLOC_MANAGED)
      return CUDA_ERROR_INVALID_VALUE;
    r = vgp__stream_wait_idle(s);
    if (r != CUDA_SUCCESS)
      return r;
    return vgp__mem_free(a);
  }
  if (a->pool_free)
    return CUDA_ERROR_INVALID_VALUE;
  struct vgp__op op = {.kind = VGP_OP_FREE_ASYNC};
  op.u.free_async.ptr = dptr;
  return vgp__enqueue(s, &op);
}

VGP_EXPORT CUresult cuMemFreeAsync(CUdeviceptr dptr, CUstream hStream) {
  return vgp__free_async(dptr, hStream, 0);
}

VGP_EXPORT CUresult cuMemFreeAsync_ptsz(CUdeviceptr dptr, CUstream hStream) {
  return vgp__free_async(dptr, hStream, 1);
}

VGP_EXPORT CUresult cuMemPoolCreate(CUmemoryPool *pool, const CUmemPoolProps *poolProps) {
  CUresult r = vgp__cu_check_init();
  if (r != CUDA_SUCCESS)
    return r;
  if (pool == NULL || poolProps == NULL ||
      poolProps->allocType != CU_MEM_ALLOCATION_TYPE_PINNED ||
      poolProps->location.type != CU_MEM_LOCATION_TYPE_DEVICE ||
      (poolProps->handleTypes != CU_MEM_HANDLE_TYPE_NONE &&
       poolProps->handleTypes != CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR))
    return CUDA_ERROR_INVALID_VALUE;
  if (poolProps->location.id < 0 || poolProps->location.id >= g_cu.device_count)
    return CUDA_ERROR_INVALID_DEVICE;
  struct vgp__pool *p = vgp__pool_new(poolProps->location.id, poolProps, 0);
  if (p == NULL)
    return CUDA_ERROR_OUT_OF_MEMORY;
  *pool = (CUmemoryPool)p;
  return CUDA_SUCCESS;
}

VGP_EXPORT CUresult cuMemPoolDestroy(CUmemoryPool hpool) {
  CUresult r = vgp__cu_check_init();
  if (r != CUDA_SUCCESS)
    return r;
  if (!vgp__handle_is(hpool, VGP_CU_POOL))
    return CUDA_ERROR_INVALID_HANDLE;
  struct vgp__pool *pool = (struct vgp__pool *)hpool;
  if (pool->is_default)
    return CUDA_ERROR_INVALID_VALUE;
  vgp__handle_remove(pool);
  pthread_mutex_lock(&g_cu.lock);
  for (int d = 0; d < VGP_SIM_MAX_DEVICES; d++)
    if (g_cu.current_pool[d] == pool)
      g_cu.current_pool[d] = g_cu.default_pool[d];
  pthread_mutex_unlock(&g_cu.lock);
  /* Blocks still allocated from it return to the device when freed. */
  pthread_mutex_lock(&g_cu.pool_lock);
  pool->destroyed = 1;
  vgp__pool_trim_locked(pool, 0);
  pthread_mutex_unlock(&g_cu.pool_lock);
  return CUDA_SUCCESS;
}

VGP_EXPORT CUresult cuMemPoolTrimTo(CUmemoryPool hpool, size_t minBytesToKeep) {
  CUresult r = vgp__cu_check_init();
  if (r != CUDA_SUCCESS)
    return r;
  if (!vgp__handle_is(hpool, VGP_CU_POOL))
    return CUDA_ERROR_INVALID_HANDLE;
  vgp__pool_trim((struct vgp__pool *)hpool, minBytesToKeep);
  return CUDA_SUCCESS;
}

VGP_EXPORT CUresult cuMemPoolSetAttribute(CUmemoryPool hpool, CUmemPool_attribute attr, void *value) {
  CUresult r = vgp__cu_check_init();
  if (r != CUDA_SUCCESS)
    return r;
  if (!vgp__handle_is(hpool, VGP_CU_POOL))
    return CUDA_ERROR_INVALID_HANDLE;
  if (value == NULL)
    return CUDA_ERROR_INVALID_VALUE;
  struct vgp__pool *pool = (struct vgp__pool *)hpool;
  r = CUDA_SUCCESS;
  pthread_mutex_lock(&g_cu.pool_lock);
  switch (attr) {
  case CU_MEMPOOL_ATTR_REUSE_FOLLOW_EVENT_DEPENDENCIES:
  case CU_MEMPOOL_ATTR_REUSE_ALLOW_OPPORTUNISTIC:
  case CU_MEMPOOL_ATTR_REUSE_ALLOW_INTERNAL_DEPENDENCIES:
    break; /* reuse policy: every policy is safe with in-order execution */
  case CU_MEMPOOL_ATTR_RELEASE_THRESHOLD:
    pool->release_threshold = *(cuuint64_t *)value;
    break;
  case CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH:
    if (*(cuuint64_t *)value != 0)
      r = CUDA_ERROR_INVALID_VALUE;
    else
      pool->reserved_high = pool->reserved_cur;
    break;
  case CU_MEMPOOL_ATTR_USED_MEM_HIGH:
    if (*(cuuint64_t *)value != 0)
      r = CUDA_ERROR_INVALID_VALUE;
    else
      pool->used_high = pool->used_cur;
    break;
  default:
    r = CUDA_ERROR_INVALID_VALUE;
  }
  pthread_mutex_unlock(&g_cu.pool_lock);
  return r;
}

VGP_EXPORT CUresult cuMemPoolGetAttribute(CUmemoryPool hpool, CUmemPool_attribute attr, void *value) {
  CUresult r = vgp__cu_check_init();
  if (r != CUDA_SUCCESS)
    return r;
  if (!vgp__handle_is(hpool, VGP_CU_POOL))
    return CUDA_ERROR_INVALID_HANDLE;
  if (value == NULL)
    return CUDA_ERROR_INVALID_VALUE;
  struct vgp__pool *pool = (struct vgp__pool *)hpool;
  r = CUDA_SUCCESS;
  pthread_mutex_lock(&g_cu.pool_lock);
  switch (attr) {
  case CU_MEMPOOL_ATTR_REUSE_FOLLOW_EVENT_DEPENDENCIES:
  case CU_MEMPOOL_ATTR_REUSE_ALLOW_OPPORTUNISTIC:
  case CU_MEMPOOL_ATTR_REUSE_ALLOW_INTERNAL_DEPENDENCIES:
    *(int *)value = 1;
    break;
  case CU_MEMPOOL_ATTR_RELEASE_THRESHOLD:
    *(cuuint64_t *)value = pool->release_threshold;
    break;
  case CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT:
    *(cuuint64_t *)value = pool->reserved_cur;
    break;
  case CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH:
    *(cuuint64_t *)value = pool->reserved_high;
    break;
  case CU_MEMPOOL_ATTR_USED_MEM_CURRENT:
    *(cuuint64_t *)value = pool->used_cur;
    break;
  case CU_MEMPOOL_ATTR_USED_MEM_HIGH:
    *(cuuint64_t *)value = pool->used_high;
    break;
  default:
    r = CUDA_ERROR_INVALID_VALUE;
  }
  pthread_mutex_unlock(&g_cu.pool_lock);
  return r;
}

VGP_EXPORT CUresult cuDeviceGetDefaultMemPool(CUmemoryPool *pool_out, CUdevice dev) {
  CUresult r = vgp__cu_check_init();
  if (r != CUDA_SUCCESS)
    return r;
  if (pool_out == NULL)
    return CUDA_ERROR_INVALID_VALUE;
  if (dev < 0 || dev >= g_cu.device_count)
    return CUDA_ERROR_INVALID_DEVICE;
  struct vgp__pool *pool = vgp__pool_default(dev);
  if (pool == NULL)
    return CUDA_ERROR_OUT_OF_MEMORY;
  *pool_out = (CUmemoryPool)pool;
  return CUDA_SUCCESS;
}

VGP_EXPORT CUresult cuDeviceGetMemPool(CUmemoryPool *pool, CUdevice dev) {
  CUresult r = cuDeviceGetDefaultMemPool(pool, dev);
  if (r != CUDA_SUCCESS)
    return r;
  pthread_mutex_lock(&g_cu.lock);
  *pool = (CUmemoryPool)g_cu.current_pool[dev];
  pthread_mutex_unlock(&g_cu.lock);
  return CUDA_SUCCESS;
}

VGP_EXPORT CUresult cuDeviceSetMemPool(CUdevice dev, CUmemoryPool hpool) {
  CUresult r = vgp__cu_check_init();
  if (r != CUDA_SUCCESS)
    return r;
  if (dev < 0 || dev >= g_cu.device_count)
    return CUDA_ERROR_INVALID_DEVICE;
  if (!vgp__handle_is(hpool, VGP_CU_POOL))
    return CUDA_ERROR_INVALID_HANDLE;
  struct vgp__pool *pool = (struct vgp__pool *)hpool;
  if (pool->device != dev)
    return CUDA_ERROR_INVALID_VALUE;
  if (vgp__pool_default(dev) == NULL)
    return CUDA_ERROR_OUT_OF_MEMORY;
  pthread_mutex_lock(&g_cu.lock);
  g_cu.current_pool[dev] = pool;
  pthread_mutex_unlock(&g_cu.lock);
  return CUDA_SUCCESS;
}
