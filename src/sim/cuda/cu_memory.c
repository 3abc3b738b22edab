/*
 * cu_memory.c - device, managed and host memory of the simulated driver:
 * allocation and the address registry, copies and sets, pointer queries,
 * arrays.
 *
 * A device allocation is a memfd of the rounded size mapped shared; its
 * address is the device pointer, so copies and built-in kernels move real
 * bytes, and other processes can map the same memory through IPC handles
 * (cu_vmm.c). Sizes are rounded up to 512 bytes; that rounded size is what
 * cuMemGetAddressRange reports and what is charged against the device's
 * capacity in the node state, so the driver's own view, NVML's and an
 * interposer's accounting all agree.
 *
 * The registry is a balanced tree (tsearch) of non-overlapping address
 * ranges, so a pointer anywhere inside an allocation finds it in O(log n).
 */
#include <errno.h>
#include <search.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "alloc.h"
#include "clock.h"
#include "cu_internal.h"
#include "log.h"

#define VGP_ALLOC_ROUND 512ull
#define VGP_PITCH_ALIGN 512ull
#define VGP_STAGING_MAX (64ull << 20)

uint64_t vgp__round_up(uint64_t v, uint64_t to) {
  return (v + to - 1) / to * to;
}

/* ------------------------------------------------------------- registry */

static int vgp__range_cmp(const void *pa, const void *pb) {
  const struct vgp__alloc *a = pa, *b = pb;
  uint64_t a_end = a->base + (a->size ? a->size : 1);
  uint64_t b_end = b->base + (b->size ? b->size : 1);
  if (a_end <= b->base)
    return -1;
  if (b_end <= a->base)
    return 1;
  return 0; /* overlapping ranges compare equal */
}

/* Inserts a; returns -EEXIST when it overlaps a registered range. Caller
 * holds g_cu.lock. */
static int vgp__alloc_insert_locked(struct vgp__alloc *a) {
  void *node = tsearch(a, &g_cu.alloc_tree, vgp__range_cmp);
  if (node == NULL)
    return -ENOMEM;
  if (*(struct vgp__alloc **)node != a)
    return -EEXIST;
  return 0;
}

int vgp__alloc_insert(struct vgp__alloc *a) {
  pthread_mutex_lock(&g_cu.lock);
  int r = vgp__alloc_insert_locked(a);
  pthread_mutex_unlock(&g_cu.lock);
  return r;
}

static struct vgp__alloc *vgp__alloc_find_locked(uint64_t addr) {
  struct vgp__alloc key = {.base = addr, .size = 1};
  void *node = tfind(&key, &g_cu.alloc_tree, vgp__range_cmp);
  return node ? *(struct vgp__alloc **)node : NULL;
}

struct vgp__alloc *vgp__alloc_find(uint64_t addr) {
  pthread_mutex_lock(&g_cu.lock);
  struct vgp__alloc *a = vgp__alloc_find_locked(addr);
  pthread_mutex_unlock(&g_cu.lock);
  return a;
}

void vgp__alloc_remove(struct vgp__alloc *a) {
  pthread_mutex_lock(&g_cu.lock);
  tdelete(a, &g_cu.alloc_tree, vgp__range_cmp);
  pthread_mutex_unlock(&g_cu.lock);
}

/* Is [ptr, ptr+bytes) memory a kernel or copy may touch as device memory?
 * Device, managed, pool and imported allocations are; so is mapped host
 * memory (unified addressing) and VMM ranges that are mapped with access. */
int vgp__device_range_ok(uint64_t ptr, uint64_t bytes, int *ret_device) {
  int ok = 0;
  pthread_mutex_lock(&g_cu.lock);
  struct vgp__alloc *a = vgp__alloc_find_locked(ptr);
  if (a != NULL && ptr + bytes >= ptr && ptr + bytes <= a->base + a->size) {
    if (a->kind == VGP_ALLOC_VA) {
      /* Every byte must be inside mappings that grant access. */
      uint64_t cur = ptr, end = ptr + bytes;
      for (int i = 0; i < a->nmaps && cur < end; i++) {
        uint64_t m_lo = a->base + a->maps[i].offset;
        uint64_t m_hi = m_lo + a->maps[i].size;
        if (cur >= m_lo && cur < m_hi) {
          if (a->maps[i].access == CU_MEM_ACCESS_FLAGS_PROT_NONE)
            break;
          cur = m_hi;
        }
      }
      ok = cur >= end;
    } else {
      ok = !(a->kind == VGP_ALLOC_POOL && a->pool_free);
    }
    if (ok && ret_device != NULL)
      *ret_device = a->device;
  }
  pthread_mutex_unlock(&g_cu.lock);
  return ok;
}

/* ------------------------------------------------------------ backing */

CUresult vgp__mem_map_device(int device, uint64_t bytes, int *ret_fd, void **ret_addr) {
  (void)device;
  int fd = memfd_create("vgpool-sim-device", MFD_CLOEXEC);
  if (fd < 0) {
    vgp__log_warn("sim-cuda", "memfd_create failed: %s", strerror(errno));
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  uint64_t len = vgp__round_up(bytes ? bytes : 1, (uint64_t)getpagesize());
  if (ftruncate(fd, (off_t)len) < 0) {
    close(fd);
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  void *addr = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
  if (addr == MAP_FAILED) {
    close(fd);
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  *ret_fd = fd;
  *ret_addr = addr;
  return CUDA_SUCCESS;
}

/* Allocates device-side memory of a kind (DEVICE, MANAGED or POOL) in ctx:
 * charges the node, maps the backing, registers the range. */
CUresult vgp__mem_alloc(struct vgp__ctx *ctx, int kind, uint64_t bytes,
                        struct vgp__alloc **ret) {
  uint64_t size = vgp__round_up(bytes, VGP_ALLOC_ROUND);
  struct vgp__alloc *a = vgp__calloc(1, sizeof(*a));
  if (a == NULL)
    return CUDA_ERROR_OUT_OF_MEMORY;
  if (vgp_sim_mem_charge(&g_cu.sim, g_cu.slot, vgp__phys(ctx->device), size) < 0) {
    vgp__free(a);
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  void *addr;
  CUresult r = vgp__mem_map_device(ctx->device, size, &a->fd, &addr);
  if (r != CUDA_SUCCESS) {
    vgp_sim_mem_uncharge(&g_cu.sim, g_cu.slot, vgp__phys(ctx->device), size);
    vgp__free(a);
    return r;
  }
  a->base = (uint64_t)(uintptr_t)addr;
  a->size = size;
  a->map_size = vgp__round_up(size, (uint64_t)getpagesize());
  a->charged = size;
  a->kind = kind;
  a->device = ctx->device;
  a->ctx = ctx;
  a->buffer_id = vgp__cu_next_id();
  if (vgp__alloc_insert(a) < 0) {
    munmap(addr, a->map_size);
    close(a->fd);
    vgp_sim_mem_uncharge(&g_cu.sim, g_cu.slot, vgp__phys(ctx->device), size);
    vgp__free(a);
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  *ret = a;
  return CUDA_SUCCESS;
}

/* Releases an allocation of any kind except VA ranges and registered host
 * memory (which own no mapping). */
CUresult vgp__mem_free(struct vgp__alloc *a) {
  vgp__alloc_remove(a);
  if (a->kind != VGP_ALLOC_REGISTERED && a->map_size > 0)
    munmap((void *)(uintptr_t)a->base, a->map_size);
  if (a->fd >= 0)
    close(a->fd);
  if (a->charged > 0)
    vgp_sim_mem_uncharge(&g_cu.sim, g_cu.slot, vgp__phys(a->device), a->charged);
  vgp__free(a);
  return CUDA_SUCCESS;
}

VGP_EXPORT CUresult cuMemAlloc_v2(CUdeviceptr *dptr, size_t bytesize) {
  struct vgp__ctx *ctx;
  CUresult r = vgp__ctx_current(&ctx);
  if (r != CUDA_SUCCESS)
    return r;
  if (dptr == NULL || bytesize == 0)
    return CUDA_ERROR_INVALID_VALUE;
  struct vgp__alloc *a;
  r = vgp__mem_alloc(ctx, VGP_ALLOC_DEVICE, bytesize, &a);
  if (r != CUDA_SUCCESS)
    return r;
  *dptr = a->base;
  return CUDA_SUCCESS;
}

VGP_EXPORT CUresult cuMemAllocPitch_v2(CUdeviceptr *dptr, size_t *pPitch, size_t WidthInBytes,
                                       size_t Height, unsigned int ElementSizeBytes) {
  struct vgp__ctx *ctx;
  CUresult r = vgp__ctx_current(&ctx);
  if (r != CUDA_SUCCESS)
    return r;
  if (dptr == NULL || pPitch == NULL || WidthInBytes == 0 || Height == 0 ||
      (ElementSizeBytes != 4 && ElementSizeBytes != 8 && ElementSizeBytes != 16))
    return CUDA_ERROR_INVALID_VALUE;
  uint64_t pitch = vgp__round_up(WidthInBytes, VGP_PITCH_ALIGN);
  if (Height > UINT64_MAX / pitch)
    return CUDA_ERROR_INVALID_VALUE;
  struct vgp__alloc *a;
  r = vgp__mem_alloc(ctx, VGP_ALLOC_DEVICE, pitch * Height, &a);
  if (r != CUDA_SUCCESS)
    return r;
  *dptr = a->base;
  *pPitch = pitch;
  return CUDA_SUCCESS;
}

VGP_EXPORT CUresult cuMemAllocManaged(CUdeviceptr *dptr, size_t bytesize, unsigned int flags) {
  struct vgp__ctx *ctx;
  CUresult r = vgp__ctx_current(&ctx);
  if (r != CUDA_SUCCESS)
    return r;
  if (dptr == NULL || bytesize == 0 ||
      (flags != CU_MEM_ATTACH_GLOBAL && flags != CU_MEM_ATTACH_HOST))
    return CUDA_ERROR_INVALID_VALUE;
  struct vgp__alloc *a;
  r = vgp__mem_alloc(ctx, VGP_ALLOC_MANAGED, bytesize, &a);
  if (r != CUDA_SUCCESS)
    return r;
  a->flags = flags;
  *dptr = a->base;
  return CUDA_SUCCESS;
}

VGP_EXPORT CUresult cuMemFree_v2(CUdeviceptr dptr) {
  CUresult r = vgp__cu_check_init();
  if (r != CUDA_SUCCESS)
    return r;
  if (dptr == 0)
    return CUDA_SUCCESS;
  struct vgp__alloc *a = vgp__alloc_find(dptr);
  if (a == NULL || a->base != dptr)
    return CUDA_ERROR_INVALID_VALUE;
  if (a->kind == VGP_ALLOC_POOL) {
    if (a->pool_free)
      return CUDA_ERROR_INVALID_VALUE;
    /* Freeing stream-ordered memory synchronously waits for the device. */
    vgp__ctx_wait_idle(a->ctx);
    vgp__pool_free_block(dptr);
    return CUDA_SUCCESS;
  }
  if (a->kind != VGP_ALLOC_DEVICE && a->kind != VGP_ALLOC_MANAGED)
    return CUDA_ERROR_INVALID_VALUE;
  /* The device may still be using the memory; the real driver waits too. */
  vgp__ctx_wait_idle(a->ctx);
  return vgp__mem_free(a);
}

VGP_EXPORT CUresult cuMemGetInfo_v2(size_t *free_bytes, size_t *total_bytes) {
  struct vgp__ctx *ctx;
  CUresult r = vgp__ctx_current(&ctx);
  if (r != CUDA_SUCCESS)
    return r;
  if (free_bytes == NULL || total_bytes == NULL)
    return CUDA_ERROR_INVALID_VALUE;
  /* Memory of processes that died is returned before answering, so the
   * figure is what a GPU would report right after the death. */
  vgp_sim_reclaim_dead(&g_cu.sim);
  const struct vgp_sim_node *node = g_cu.sim.node;
  uint64_t total = node->cfg[vgp__phys(ctx->device)].total_memory;
  uint64_t used = __atomic_load_n(&node->dev[vgp__phys(ctx->device)].used_bytes, __ATOMIC_ACQUIRE);
  *total_bytes = total;
  *free_bytes = used >= total ? 0 : total - used;
  return CUDA_SUCCESS;
}

VGP_EXPORT CUresult cuMemGetAddressRange_v2(CUdeviceptr *pbase, size_t *psize, CUdeviceptr dptr) {
  CUresult r = vgp__cu_check_init();
  if (r != CUDA_SUCCESS)
    return r;
  pthread_mutex_lock(&g_cu.lock);
  struct vgp__alloc *a = vgp__alloc_find_locked(dptr);
  uint64_t base = 0, size = 0;
  if (a != NULL && a->kind == VGP_ALLOC_VA) {
    for (int i = 0; i < a->nmaps; i++) {
      uint64_t lo = a->base + a->maps[i].offset;
      if (dptr >= lo && dptr < lo + a->maps[i].size) {
        base = lo;
        size = a->maps[i].size;
      }
    }
  } else if (a != NULL && a->kind != VGP_ALLOC_HOST && a->kind != VGP_ALLOC_REGISTERED &&
             !(a->kind == VGP_ALLOC_POOL && a->pool_free)) {
    base = a->base;
    size = a->size;
  }
  pthread_mutex_unlock(&g_cu.lock);
  if (size == 0)
    return CUDA_ERROR_NOT_FOUND;
  if (pbase != NULL)
    *pbase = base;
  if (psize != NULL)
    *psize = size;
  return CUDA_SUCCESS;
}

/* ---------------------------------------------------------- host memory */

static CUresult vgp__host_alloc(void **pp, size_t bytesize, unsigned flags) {
  struct vgp__ctx *ctx;
  CUresult r = vgp__ctx_current(&ctx);
  if (r != CUDA_SUCCESS)
    return r;
  const unsigned known = CU_MEMHOSTALLOC_PORTABLE | CU_MEMHOSTALLOC_DEVICEMAP |
                         CU_MEMHOSTALLOC_WRITECOMBINED;
  if (pp == NULL || bytesize == 0 || (flags & ~known) != 0)
    return CUDA_ERROR_INVALID_VALUE;
  struct vgp__alloc *a = vgp__calloc(1, sizeof(*a));
  if (a == NULL)
    return CUDA_ERROR_OUT_OF_MEMORY;
  uint64_t len = vgp__round_up(bytesize, (uint64_t)getpagesize());
  void *addr = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (addr == MAP_FAILED) {
    vgp__free(a);
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  a->base = (uint64_t)(uintptr_t)addr;
  a->size = bytesize;
  a->map_size = len;
  a->kind = VGP_ALLOC_HOST;
  a->device = ctx->device;
  a->fd = -1;
  a->flags = flags;
  a->ctx = ctx;
  a->buffer_id = vgp__cu_next_id();
  if (vgp__alloc_insert(a) < 0) {
    munmap(addr, len);
    vgp__free(a);
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  *pp = addr;
  return CUDA_SUCCESS;
}

VGP_EXPORT CUresult cuMemAllocHost_v2(void **pp, size_t bytesize) {
  return vgp__host_alloc(pp, bytesize, 0);
}

VGP_EXPORT CUresult cuMemHostAlloc(void **pp, size_t bytesize, unsigned int Flags) {
  return vgp__host_alloc(pp, bytesize, Flags);
}

VGP_EXPORT CUresult cuMemFreeHost(void *p) {
  CUresult r = vgp__cu_check_init();
  if (r != CUDA_SUCCESS)
    return r;
  struct vgp__alloc *a = vgp__alloc_find((uint64_t)(uintptr_t)p);
  if (p == NULL || a == NULL || a->kind != VGP_ALLOC_HOST || a->base != (uint64_t)(uintptr_t)p)
    return CUDA_ERROR_INVALID_VALUE;
  return vgp__mem_free(a);
}

VGP_EXPORT CUresult cuMemHostRegister_v2(void *p, size_t bytesize, unsigned int Flags) {
  struct vgp__ctx *ctx;
  CUresult r = vgp__ctx_current(&ctx);
  if (r != CUDA_SUCCESS)
    return r;
  const unsigned known = CU_MEMHOSTREGISTER_PORTABLE | CU_MEMHOSTREGISTER_DEVICEMAP |
                         CU_MEMHOSTREGISTER_IOMEMORY | CU_MEMHOSTREGISTER_READ_ONLY;
  if (p == NULL || bytesize == 0 || (Flags & ~known) != 0)
    return CUDA_ERROR_INVALID_VALUE;
  struct vgp__alloc *a = vgp__calloc(1, sizeof(*a));
  if (a == NULL)
    return CUDA_ERROR_OUT_OF_MEMORY;
  a->base = (uint64_t)(uintptr_t)p;
  a->size = bytesize;
  a->kind = VGP_ALLOC_REGISTERED;
  a->device = ctx->device;
  a->fd = -1;
  a->flags = Flags;
  a->ctx = ctx;
  a->buffer_id = vgp__cu_next_id();
  int rc = vgp__alloc_insert(a);
  if (rc < 0) {
    vgp__free(a);
    return rc == -EEXIST ? CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED : CUDA_ERROR_OUT_OF_MEMORY;
  }
  return CUDA_SUCCESS;
}

VGP_EXPORT CUresult cuMemHostRegister(void *p, size_t bytesize, unsigned int Flags) {
  return cuMemHostRegister_v2(p, bytesize, Flags);
}

VGP_EXPORT CUresult cuMemHostUnregister(void *p) {
  CUresult r = vgp__cu_check_init();
  if (r != CUDA_SUCCESS)
    return r;
  struct vgp__alloc *a = vgp__alloc_find((uint64_t)(uintptr_t)p);
  if (p == NULL || a == NULL || a->kind != VGP_ALLOC_REGISTERED ||
      a->base != (uint64_t)(uintptr_t)p)
    return CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED;
  return vgp__mem_free(a);
}

VGP_EXPORT CUresult cuMemHostGetDevicePointer_v2(CUdeviceptr *pdptr, void *p, unsigned int Flags) {
  CUresult r = vgp__cu_check_init();
  if (r != CUDA_SUCCESS)
    return r;
  if (pdptr == NULL || Flags != 0)
    return CUDA_ERROR_INVALID_VALUE;
  struct vgp__alloc *a = vgp__alloc_find((uint64_t)(uintptr_t)p);
  if (a == NULL || (a->kind != VGP_ALLOC_HOST && a->kind != VGP_ALLOC_REGISTERED))
    return CUDA_ERROR_INVALID_VALUE;
  /* Unified addressing: the device sees host memory at the same address. */
  *pdptr = (CUdeviceptr)(uintptr_t)p;
  return CUDA_SUCCESS;
}

/* ---------------------------------------------------------- pointer info */

static CUresult vgp__pointer_attribute(const struct vgp__alloc *a, CUdeviceptr ptr,
                                       CUpointer_attribute attr, void *data) {
  int host = a->kind == VGP_ALLOC_HOST || a->kind == VGP_ALLOC_REGISTERED;
  switch (attr) {
  case CU_POINTER_ATTRIBUTE_CONTEXT:
    *(CUcontext *)data = (CUcontext)a->ctx;
    return CUDA_SUCCESS;
  case CU_POINTER_ATTRIBUTE_MEMORY_TYPE:
    *(unsigned int *)data = host ? CU_MEMORYTYPE_HOST : CU_MEMORYTYPE_DEVICE;
    return CUDA_SUCCESS;
  case CU_POINTER_ATTRIBUTE_DEVICE_POINTER:
    *(CUdeviceptr *)data = ptr;
    return CUDA_SUCCESS;
  case CU_POINTER_ATTRIBUTE_HOST_POINTER:
    if (!host && a->kind != VGP_ALLOC_MANAGED)
      return CUDA_ERROR_INVALID_VALUE;
    *(void **)data = (void *)(uintptr_t)ptr;
    return CUDA_SUCCESS;
  case CU_POINTER_ATTRIBUTE_SYNC_MEMOPS:
    *(unsigned int *)data = 0;
    return CUDA_SUCCESS;
  case CU_POINTER_ATTRIBUTE_BUFFER_ID:
  case CU_POINTER_ATTRIBUTE_MEMORY_BLOCK_ID:
    *(unsigned long long *)data = a->buffer_id;
    return CUDA_SUCCESS;
  case CU_POINTER_ATTRIBUTE_IS_MANAGED:
    *(unsigned int *)data = a->kind == VGP_ALLOC_MANAGED;
    return CUDA_SUCCESS;
  case CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL:
    *(int *)data = a->device;
    return CUDA_SUCCESS;
  case CU_POINTER_ATTRIBUTE_IS_LEGACY_CUDA_IPC_CAPABLE:
    *(unsigned int *)data = a->kind == VGP_ALLOC_DEVICE;
    return CUDA_SUCCESS;
  case CU_POINTER_ATTRIBUTE_RANGE_START_ADDR:
    *(CUdeviceptr *)data = a->base;
    return CUDA_SUCCESS;
  case CU_POINTER_ATTRIBUTE_RANGE_SIZE:
    *(size_t *)data = a->size;
    return CUDA_SUCCESS;
  case CU_POINTER_ATTRIBUTE_MAPPED:
    *(unsigned int *)data = 1;
    return CUDA_SUCCESS;
  case CU_POINTER_ATTRIBUTE_ALLOWED_HANDLE_TYPES:
    *(unsigned long long *)data = CU_MEM_HANDLE_TYPE_NONE;
    return CUDA_SUCCESS;
  case CU_POINTER_ATTRIBUTE_IS_GPU_DIRECT_RDMA_CAPABLE:
    *(unsigned int *)data = 0;
    return CUDA_SUCCESS;
  case CU_POINTER_ATTRIBUTE_ACCESS_FLAGS:
    *(unsigned int *)data = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
    return CUDA_SUCCESS;
  case CU_POINTER_ATTRIBUTE_MEMPOOL_HANDLE:
    *(CUmemoryPool *)data = (CUmemoryPool)a->pool;
    return CUDA_SUCCESS;
  case CU_POINTER_ATTRIBUTE_MAPPING_SIZE:
    *(size_t *)data = a->size;
    return CUDA_SUCCESS;
  case CU_POINTER_ATTRIBUTE_MAPPING_BASE_ADDR:
    *(void **)data = (void *)(uintptr_t)a->base;
    return CUDA_SUCCESS;
  default:
    return CUDA_ERROR_INVALID_VALUE;
  }
}

VGP_EXPORT CUresult cuPointerGetAttribute(void *data, CUpointer_attribute attribute, CUdeviceptr ptr) {
  CUresult r = vgp__cu_check_init();
  if (r != CUDA_SUCCESS)
    return r;
  if (data == NULL)
    return CUDA_ERROR_INVALID_VALUE;
  pthread_mutex_lock(&g_cu.lock);
  struct vgp__alloc *a = vgp__alloc_find_locked(ptr);
  r = a != NULL ? vgp__pointer_attribute(a, ptr, attribute, data) : CUDA_ERROR_INVALID_VALUE;
  pthread_mutex_unlock(&g_cu.lock);
  return r;
}

VGP_EXPORT CUresult cuPointerGetAttributes(unsigned int numAttributes, CUpointer_attribute *attributes,
                                           void **data, CUdeviceptr ptr) {
  CUresult r = vgp__cu_check_init();
  if (r != CUDA_SUCCESS)
    return r;
  if (numAttributes == 0 || attributes == NULL || data == NULL)
    return CUDA_ERROR_INVALID_VALUE;
  pthread_mutex_lock(&g_cu.lock);
  struct vgp__alloc *a = vgp__alloc_find_locked(ptr);
  for (unsigned i = 0; i < numAttributes; i++) {
    if (data[i] == NULL)
      continue;
    if (a == NULL) {
      /* Unknown (pageable host) memory is not an error here: memory type
       * 0 and empty values, as the driver reports them. */
      if (attributes[i] == CU_POINTER_ATTRIBUTE_CONTEXT)
        *(CUcontext *)data[i] = NULL;
      else if (attributes[i] == CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL)
        *(int *)data[i] = -2;
      else if (attributes[i] == CU_POINTER_ATTRIBUTE_RANGE_SIZE ||
               attributes[i] == CU_POINTER_ATTRIBUTE_MAPPING_SIZE)
        *(size_t *)data[i] = 0;
      else if (attributes[i] == CU_POINTER_ATTRIBUTE_BUFFER_ID ||
               attributes[i] == CU_POINTER_ATTRIBUTE_ALLOWED_HANDLE_TYPES ||
               attributes[i] == CU_POINTER_ATTRIBUTE_MEMORY_BLOCK_ID ||
               attributes[i] == CU_POINTER_ATTRIBUTE_DEVICE_POINTER ||
               attributes[i] == CU_POINTER_ATTRIBUTE_RANGE_START_ADDR ||
               attributes[i] == CU_POINTER_ATTRIBUTE_HOST_POINTER ||
               attributes[i] == CU_POINTER_ATTRIBUTE_MEMPOOL_HANDLE ||
               attributes[i] == CU_POINTER_ATTRIBUTE_MAPPING_BASE_ADDR)
        *(uint64_t *)data[i] = 0;
      else
        *(unsigned int *)data[i] = 0;
      continue;
    }
    CUresult e = vgp__pointer_attribute(a, ptr, attributes[i], data[i]);
    if (e != CUDA_SUCCESS && attributes[i] != CU_POINTER_ATTRIBUTE_HOST_POINTER) {
      r = e;
      break;
    }
    if (e != CUDA_SUCCESS)
      *(void **)data[i] = NULL;
  }
  pthread_mutex_unlock(&g_cu.lock);
  return r;
}

/* ---------------------------------------------------------------- copies */

uint64_t vgp__copy_cost_ns(int device, uint64_t bytes, int direction) {
  const struct vgp_sim_device_config *c = &g_cu.sim.node->cfg[vgp__phys(device)];
  /* Device-to-device traffic reads and writes device memory; host traffic
   * crosses PCIe (gen5 x16 for Hopper and later, gen4 before). */
  double bw = direction == 0 ? (double)c->mem_bandwidth / 2
                             : (c->cc_major >= 9 ? 50e9 : 25e9);
  if (bw <= 0)
    bw = 25e9;
  return 2 * VGP_NSEC_PER_USEC + (uint64_t)((double)bytes / bw * 1e9);
}

/* Classifies a copy endpoint: 1 when it is device-accessible memory the
 * simulator knows (validated), 0 when it is ordinary host memory. Returns
 * -1 when it claims to be device memory but is not. */
static int vgp__endpoint(uint64_t ptr, uint64_t bytes, int must_be_device) {
  int dev;
  if (vgp__device_range_ok(ptr, bytes, &dev))
    return 1;
  if (must_be_device)
    return -1;
  return 0;
}

/* Queues a copy on stream s; waits for it when sync is set. Pageable host
 * data is staged at call time, as the driver does, so the caller may reuse
 * its buffer as soon as the call returns. */
static CUresult vgp__copy(struct vgp__stream *s, void *dst, const void *src, uint64_t bytes,
                          int direction, int sync) {
  if (bytes == 0)
    return CUDA_SUCCESS;
  if (s->capture != NULL)
    return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
  struct vgp__op op = {.kind = VGP_OP_COPY};
  op.u.copy.dst = dst;
  op.u.copy.src = src;
  op.u.copy.bytes = bytes;
  op.u.copy.direction = direction;
  if (!sync && direction == 1 && vgp__endpoint((uint64_t)(uintptr_t)src, bytes, 0) == 0) {
    if (bytes <= VGP_STAGING_MAX) {
      op.u.copy.staging = vgp__malloc(bytes);
      if (op.u.copy.staging == NULL)
        return CUDA_ERROR_OUT_OF_MEMORY;
      memcpy(op.u.copy.staging, src, bytes);
    } else {
      sync = 1;
    }
  }
  CUresult r = vgp__enqueue(s, &op);
  if (r != CUDA_SUCCESS) {
    vgp__free(op.u.copy.staging);
    return r;
  }
  return sync ? vgp__stream_wait_idle(s) : CUDA_SUCCESS;
}

static CUresult vgp__copy_api(CUstream hStream, int per_thread, uint64_t dst, int dst_dev,
                              uint64_t src, int src_dev, uint64_t bytes, int direction,
                              int sync) {
  struct vgp__stream *s;
  CUresult r = vgp__stream_resolve(hStream, per_thread, &s);
  if (r != CUDA_SUCCESS)
    return r;
  if (bytes > 0 && (dst == 0 || src == 0))
    return CUDA_ERROR_INVALID_VALUE;
  if (bytes > 0 && (vgp__endpoint(dst, bytes, dst_dev) < 0 || vgp__endpoint(src, bytes, src_dev) < 0))
    return CUDA_ERROR_INVALID_VALUE;
  return vgp__copy(s, (void *)(uintptr_t)dst, (const void *)(uintptr_t)src, bytes, direction, sync);
}

#define VGP_COPY_FNS(name, suffix, pt, sig, dst, dd, src, sd, dir, sync, stream) \
  VGP_EXPORT CUresult name##suffix sig {                                        \
    return vgp__copy_api(stream, pt, (uint64_t)(uintptr_t)(dst), dd,            \
                         (uint64_t)(uintptr_t)(src), sd, ByteCount, dir, sync);  \
  }

VGP_COPY_FNS(cuMemcpyHtoD_v2, , 0, (CUdeviceptr dstDevice, const void *srcHost, size_t ByteCount), dstDevice, 1, srcHost, 0, 1, 1, NULL)
VGP_COPY_FNS(cuMemcpyHtoD_v2, _ptds, 1, (CUdeviceptr dstDevice, const void *srcHost, size_t ByteCount), dstDevice, 1, srcHost, 0, 1, 1, NULL)
VGP_COPY_FNS(cuMemcpyDtoH_v2, , 0, (void *dstHost, CUdeviceptr srcDevice, size_t ByteCount), dstHost, 0, srcDevice, 1, 2, 1, NULL)
VGP_COPY_FNS(cuMemcpyDtoH_v2, _ptds, 1, (void *dstHost, CUdeviceptr srcDevice, size_t ByteCount), dstHost, 0, srcDevice, 1, 2, 1, NULL)
VGP_COPY_FNS(cuMemcpyDtoD_v2, , 0, (CUdeviceptr dstDevice, CUdeviceptr srcDevice, size_t ByteCount), dstDevice, 1, srcDevice, 1, 0, 1, NULL)
VGP_COPY_FNS(cuMemcpyDtoD_v2, _ptds, 1, (CUdeviceptr dstDevice, CUdeviceptr srcDevice, size_t ByteCount), dstDevice, 1, srcDevice, 1, 0, 1, NULL)
VGP_COPY_FNS(cuMemcpy, , 0, (CUdeviceptr dst, CUdeviceptr src, size_t ByteCount), dst, 0, src, 0, 0, 1, NULL)
VGP_COPY_FNS(cuMemcpy, _ptds, 1, (CUdeviceptr dst, CUdeviceptr src, size_t ByteCount), dst, 0, src, 0, 0, 1, NULL)
VGP_COPY_FNS(cuMemcpyHtoDAsync_v2, , 0, (CUdeviceptr dstDevice, const void *srcHost, size_t ByteCount, CUstream hStream), dstDevice, 1, srcHost, 0, 1, 0, hStream)
VGP_COPY_FNS(cuMemcpyHtoDAsync_v2, _ptsz, 1, (CUdeviceptr dstDevice, const void *srcHost, size_t ByteCount, CUstream hStream), dstDevice, 1, srcHost, 0, 1, 0, hStream)
VGP_COPY_FNS(cuMemcpyDtoHAsync_v2, , 0, (void *dstHost, CUdeviceptr srcDevice, size_t ByteCount, CUstream hStream), dstHost, 0, srcDevice, 1, 2, 0, hStream)
VGP_COPY_FNS(cuMemcpyDtoHAsync_v2, _ptsz, 1, (void *dstHost, CUdeviceptr srcDevice, size_t ByteCount, CUstream hStream), dstHost, 0, srcDevice, 1, 2, 0, hStream)
VGP_COPY_FNS(cuMemcpyDtoDAsync_v2, , 0, (CUdeviceptr dstDevice, CUdeviceptr srcDevice, size_t ByteCount, CUstream hStream), dstDevice, 1, srcDevice, 1, 0, 0, hStream)
VGP_COPY_FNS(cuMemcpyDtoDAsync_v2, _ptsz, 1, (CUdeviceptr dstDevice, CUdeviceptr srcDevice, size_t ByteCount, CUstream hStream), dstDevice, 1, srcDevice, 1, 0, 0, hStream)
VGP_COPY_FNS(cuMemcpyAsync, , 0, (CUdeviceptr dst, CUdeviceptr src, size_t ByteCount, CUstream hStream), dst, 0, src, 0, 0, 0, hStream)
VGP_COPY_FNS(cuMemcpyAsync, _ptsz, 1, (CUdeviceptr dst, CUdeviceptr src, size_t ByteCount, CUstream hStream), dst, 0, src, 0, 0, 0, hStream)

static CUresult vgp__peer_copy(CUdeviceptr dst, CUcontext dctx, CUdeviceptr src, CUcontext sctx,
                               size_t bytes, CUstream hStream, int per_thread, int sync) {
  struct vgp__ctx *a, *b;
  CUresult r = vgp__cu_check_init();
  if (r != CUDA_SUCCESS)
    return r;
  if (dctx == NULL || sctx == NULL)
    return CUDA_ERROR_INVALID_CONTEXT;
  if ((r = vgp__ctx_resolve(dctx, &a)) != CUDA_SUCCESS || (r = vgp__ctx_resolve(sctx, &b)) != CUDA_SUCCESS)
    return r;
  return vgp__copy_api(hStream, per_thread, dst, 1, src, 1, bytes, 0, sync);
}

VGP_EXPORT CUresult cuMemcpyPeer(CUdeviceptr dstDevice, CUcontext dstContext, CUdeviceptr srcDevice,
                                 CUcontext srcContext, size_t ByteCount) {
  return vgp__peer_copy(dstDevice, dstContext, srcDevice, srcContext, ByteCount, NULL, 0, 1);
}

VGP_EXPORT CUresult cuMemcpyPeer_ptds(CUdeviceptr dstDevice, CUcontext dstContext, CUdeviceptr srcDevice,
                                      CUcontext srcContext, size_t ByteCount) {
  return vgp__peer_copy(dstDevice, dstContext, srcDevice, srcContext, ByteCount, NULL, 1, 1);
}

VGP_EXPORT CUresult cuMemcpyPeerAsync(CUdeviceptr dstDevice, CUcontext dstContext, CUdeviceptr srcDevice,
                                      CUcontext srcContext, size_t ByteCount, CUstream hStream) {
  return vgp__peer_copy(dstDevice, dstContext, srcDevice, srcContext, ByteCount, hStream, 0, 0);
}

VGP_EXPORT CUresult cuMemcpyPeerAsync_ptsz(CUdeviceptr dstDevice, CUcontext dstContext, CUdeviceptr srcDevice,
                                           CUcontext srcContext, size_t ByteCount, CUstream hStream) {
  return vgp__peer_copy(dstDevice, dstContext, srcDevice, srcContext, ByteCount, hStream, 1, 0);
}

/* Resolves one side of a 2D copy to a base address; arrays are stored as
 * packed rows (pitch = width * element size). */
static CUresult vgp__copy2d_side(CUmemorytype type, const void *host, CUdeviceptr dev, CUarray array,
                                 size_t x, size_t y, size_t pitch, uint64_t *ret_addr,
                                 size_t *ret_pitch, int *ret_is_device) {
  switch (type) {
  case CU_MEMORYTYPE_HOST:
    *ret_addr = (uint64_t)(uintptr_t)host;
    *ret_is_device = 0;
    break;
  case CU_MEMORYTYPE_DEVICE:
  case CU_MEMORYTYPE_UNIFIED:
    *ret_addr = dev;
    *ret_is_device = type == CU_MEMORYTYPE_DEVICE;
    break;
  case CU_MEMORYTYPE_ARRAY: {
    if (!vgp__handle_is(array, VGP_CU_ARRAY))
      return CUDA_ERROR_INVALID_HANDLE;
    struct vgp__array *arr = (struct vgp__array *)array;
    *ret_addr = (uint64_t)(uintptr_t)arr->mem;
    pitch = arr->bytes / (arr->desc.Height ? arr->desc.Height : 1) /
            (arr->desc.Depth ? arr->desc.Depth : 1);
    *ret_is_device = 0;
    break;
  }
  default:
    return CUDA_ERROR_INVALID_VALUE;
  }
  if (*ret_addr == 0)
    return CUDA_ERROR_INVALID_VALUE;
  *ret_addr += y * pitch + x;
  *ret_pitch = pitch;
  return CUDA_SUCCESS;
}

static CUresult vgp__copy2d(const CUDA_MEMCPY2D *c, CUstream hStream, int per_thread, int sync) {
  struct vgp__stream *s;
  CUresult r = vgp__stream_resolve(hStream, per_thread, &s);
  if (r != CUDA_SUCCESS)
    return r;
  if (c == NULL)
    return CUDA_ERROR_INVALID_VALUE;
  if (c->WidthInBytes == 0 || c->Height == 0)
    return CUDA_SUCCESS;
  uint64_t src, dst;
  size_t spitch, dpitch;
  int sdev, ddev;
  if (c->srcMemoryType != CU_MEMORYTYPE_ARRAY && c->srcPitch < c->WidthInBytes && c->Height > 1)
    return CUDA_ERROR_INVALID_VALUE;
  if (c->dstMemoryType != CU_MEMORYTYPE_ARRAY && c->dstPitch < c->WidthInBytes && c->Height > 1)
    return CUDA_ERROR_INVALID_VALUE;
  r = vgp__copy2d_side(c->srcMemoryType, c->srcHost, c->srcDevice, c->srcArray, c->srcXInBytes,
                       c->srcY, c->srcPitch, &src, &spitch, &sdev);
  if (r == CUDA_SUCCESS)
    r = vgp__copy2d_side(c->dstMemoryType, c->dstHost, c->dstDevice, c->dstArray, c->dstXInBytes,
                         c->dstY, c->dstPitch, &dst, &dpitch, &ddev);
  if (r != CUDA_SUCCESS)
    return r;
  uint64_t sspan = spitch * (c->Height - 1) + c->WidthInBytes;
  uint64_t dspan = dpitch * (c->Height - 1) + c->WidthInBytes;
  if (vgp__endpoint(src, sspan, sdev) < 0 || vgp__endpoint(dst, dspan, ddev) < 0)
    return CUDA_ERROR_INVALID_VALUE;
  if (s->capture != NULL)
    return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
  struct vgp__op op = {.kind = VGP_OP_COPY};
  op.u.copy.dst = (void *)(uintptr_t)dst;
  op.u.copy.src = (const void *)(uintptr_t)src;
  op.u.copy.bytes = c->WidthInBytes * c->Height;
  op.u.copy.width = c->WidthInBytes;
  op.u.copy.height = c->Height;
  op.u.copy.spitch = spitch;
  op.u.copy.dpitch = dpitch;
  op.u.copy.direction = sdev && ddev ? 0 : (ddev ? 1 : 2);
  r = vgp__enqueue(s, &op);
  if (r != CUDA_SUCCESS)
    return r;
  /* 2D copies do not stage pageable memory; the async form waits for the
   * copy when either side is pageable, so the caller's buffer is safe. */
  int pageable = !vgp__endpoint(src, sspan, 0) || !vgp__endpoint(dst, dspan, 0);
  return (sync || pageable) ? vgp__stream_wait_idle(s) : CUDA_SUCCESS;
}

VGP_EXPORT CUresult cuMemcpy2D_v2(const CUDA_MEMCPY2D *pCopy) { return vgp__copy2d(pCopy, NULL, 0, 1); }
VGP_EXPORT CUresult cuMemcpy2D_v2_ptds(const CUDA_MEMCPY2D *pCopy) { return vgp__copy2d(pCopy, NULL, 1, 1); }
VGP_EXPORT CUresult cuMemcpy2DAsync_v2(const CUDA_MEMCPY2D *pCopy, CUstream hStream) {
  return vgp__copy2d(pCopy, hStream, 0, 0);
}
VGP_EXPORT CUresult cuMemcpy2DAsync_v2_ptsz(const CUDA_MEMCPY2D *pCopy, CUstream hStream) {
  return vgp__copy2d(pCopy, hStream, 1, 0);
}

/* ------------------------------------------------------------------ sets */

static CUresult vgp__memset(CUdeviceptr dst, uint32_t value, uint32_t elem, size_t n,
                            CUstream hStream, int per_thread, int sync) {
  struct vgp__stream *s;
  CUresult r = vgp__stream_resolve(hStream, per_thread, &s);
  if (r != CUDA_SUCCESS)
    return r;
  if (n == 0)
    return CUDA_SUCCESS;
  if (n > UINT64_MAX / elem || (dst % elem) != 0 || !vgp__device_range_ok(dst, n * elem, NULL))
    return CUDA_ERROR_INVALID_VALUE;
  if (s->capture != NULL)
    return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
  struct vgp__op op = {.kind = VGP_OP_SET};
  op.u.set.dst = (void *)(uintptr_t)dst;
  op.u.set.value = value;
  op.u.set.elem = elem;
  op.u.set.count = n;
  r = vgp__enqueue(s, &op);
  if (r != CUDA_SUCCESS)
    return r;
  return sync ? vgp__stream_wait_idle(s) : CUDA_SUCCESS;
}

VGP_EXPORT CUresult cuMemsetD8_v2(CUdeviceptr d, unsigned char uc, size_t N) { return vgp__memset(d, uc, 1, N, NULL, 0, 1); }
VGP_EXPORT CUresult cuMemsetD8_v2_ptds(CUdeviceptr d, unsigned char uc, size_t N) { return vgp__memset(d, uc, 1, N, NULL, 1, 1); }
VGP_EXPORT CUresult cuMemsetD16_v2(CUdeviceptr d, unsigned short us, size_t N) { return vgp__memset(d, us, 2, N, NULL, 0, 1); }
VGP_EXPORT CUresult cuMemsetD16_v2_ptds(CUdeviceptr d, unsigned short us, size_t N) { return vgp__memset(d, us, 2, N, NULL, 1, 1); }
VGP_EXPORT CUresult cuMemsetD32_v2(CUdeviceptr d, unsigned int ui, size_t N) { return vgp__memset(d, ui, 4, N, NULL, 0, 1); }
VGP_EXPORT CUresult cuMemsetD32_v2_ptds(CUdeviceptr d, unsigned int ui, size_t N) { return vgp__memset(d, ui, 4, N, NULL, 1, 1); }
VGP_EXPORT CUresult cuMemsetD8Async(CUdeviceptr d, unsigned char uc, size_t N, CUstream s) { return vgp__memset(d, uc, 1, N, s, 0, 0); }
VGP_EXPORT CUresult cuMemsetD8Async_ptsz(CUdeviceptr d, unsigned char uc, size_t N, CUstream s) { return vgp__memset(d, uc, 1, N, s, 1, 0); }
VGP_EXPORT CUresult cuMemsetD16Async(CUdeviceptr d, unsigned short us, size_t N, CUstream s) { return vgp__memset(d, us, 2, N, s, 0, 0); }
VGP_EXPORT CUresult cuMemsetD16Async_ptsz(CUdeviceptr d, unsigned short us, size_t N, CUstream s) { return vgp__memset(d, us, 2, N, s, 1, 0); }
VGP_EXPORT CUresult cuMemsetD32Async(CUdeviceptr d, unsigned int ui, size_t N, CUstream s) { return vgp__memset(d, ui, 4, N, s, 0, 0); }
VGP_EXPORT CUresult cuMemsetD32Async_ptsz(CUdeviceptr d, unsigned int ui, size_t N, CUstream s) { return vgp__memset(d, ui, 4, N, s, 1, 0); }

/* ------------------------------------------------- managed memory hints */

static CUresult vgp__managed_range(CUdeviceptr ptr, size_t count) {
  CUresult r = vgp__cu_check_init();
  if (r != CUDA_SUCCESS)
    return r;
  struct vgp__alloc *a = vgp__alloc_find(ptr);
  if (a == NULL || count == 0 || ptr + count > a->base + a->size)
    return CUDA_ERROR_INVALID_VALUE;
  return CUDA_SUCCESS;
}

/* Prefetch and advice change where managed pages live on a real GPU; the
 * simulator has one memory, so they only validate their arguments. */
VGP_EXPORT CUresult cuMemPrefetchAsync(CUdeviceptr devPtr, size_t count, CUdevice dstDevice, CUstream hStream) {
  struct vgp__stream *s;
  CUresult r = vgp__managed_range(devPtr, count);
  if (r == CUDA_SUCCESS)
    r = vgp__stream_resolve(hStream, 0, &s);
  if (r == CUDA_SUCCESS && dstDevice != CU_DEVICE_CPU && (dstDevice < 0 || dstDevice >= g_cu.device_count))
    r = CUDA_ERROR_INVALID_DEVICE;
  return r;
}

VGP_EXPORT CUresult cuMemPrefetchAsync_ptsz(CUdeviceptr devPtr, size_t count, CUdevice dstDevice, CUstream hStream) {
  return cuMemPrefetchAsync(devPtr, count, dstDevice, hStream);
}

VGP_EXPORT CUresult cuMemPrefetchAsync_v2(CUdeviceptr devPtr, size_t count, CUmemLocation location,
                                          unsigned int flags, CUstream hStream) {
  if (flags != 0)
    return CUDA_ERROR_INVALID_VALUE;
  CUdevice dev = location.type == CU_MEM_LOCATION_TYPE_DEVICE ? location.id : CU_DEVICE_CPU;
  if (location.type != CU_MEM_LOCATION_TYPE_DEVICE && location.type != CU_MEM_LOCATION_TYPE_HOST &&
      location.type != CU_MEM_LOCATION_TYPE_HOST_NUMA && location.type != CU_MEM_LOCATION_TYPE_HOST_NUMA_CURRENT)
    return CUDA_ERROR_INVALID_VALUE;
  return cuMemPrefetchAsync(devPtr, count, dev, hStream);
}

VGP_EXPORT CUresult cuMemPrefetchAsync_v2_ptsz(CUdeviceptr devPtr, size_t count, CUmemLocation location,
                                               unsigned int flags, CUstream hStream) {
  return cuMemPrefetchAsync_v2(devPtr, count, location, flags, hStream);
}

VGP_EXPORT CUresult cuMemAdvise(CUdeviceptr devPtr, size_t count, CUmem_advise advice, CUdevice device) {
  CUresult r = vgp__managed_range(devPtr, count);
  if (r != CUDA_SUCCESS)
    return r;
  if (advice < CU_MEM_ADVISE_SET_READ_MOSTLY || advice > CU_MEM_ADVISE_UNSET_ACCESSED_BY)
    return CUDA_ERROR_INVALID_VALUE;
  if (device != CU_DEVICE_CPU && (device < 0 || device >= g_cu.device_count))
    return CUDA_ERROR_INVALID_DEVICE;
  return CUDA_SUCCESS;
}

VGP_EXPORT CUresult cuMemAdvise_v2(CUdeviceptr devPtr, size_t count, CUmem_advise advice, CUmemLocation location) {
  CUdevice dev = location.type == CU_MEM_LOCATION_TYPE_DEVICE ? location.id : CU_DEVICE_CPU;
  return cuMemAdvise(devPtr, count, advice, dev);
}

/* ---------------------------------------------------------------- arrays */

static unsigned vgp__format_bytes(CUarray_format f) {
  switch (f) {
  case CU_AD_FORMAT_UNSIGNED_INT8:
  case CU_AD_FORMAT_SIGNED_INT8:
    return 1;
  case CU_AD_FORMAT_UNSIGNED_INT16:
  case CU_AD_FORMAT_SIGNED_INT16:
  case CU_AD_FORMAT_HALF:
    return 2;
  case CU_AD_FORMAT_UNSIGNED_INT32:
  case CU_AD_FORMAT_SIGNED_INT32:
  case CU_AD_FORMAT_FLOAT:
    return 4;
  default:
    return 0;
  }
}

static CUresult vgp__array_create(CUarray *pHandle, const CUDA_ARRAY3D_DESCRIPTOR *d) {
  struct vgp__ctx *ctx;
  CUresult r = vgp__ctx_current(&ctx);
  if (r != CUDA_SUCCESS)
    return r;
  if (pHandle == NULL || d == NULL)
    return CUDA_ERROR_INVALID_VALUE;
  unsigned eb = vgp__format_bytes(d->Format);
  if (eb == 0 || (d->NumChannels != 1 && d->NumChannels != 2 && d->NumChannels != 4) ||
      d->Width == 0 || d->Width > (1u << 17) || d->Height > (1u << 16) || d->Depth > (1u << 14))
    return CUDA_ERROR_INVALID_VALUE;
  uint64_t h = d->Height ? d->Height : 1, z = d->Depth ? d->Depth : 1;
  uint64_t row = (uint64_t)d->Width * eb * d->NumChannels;
  uint64_t bytes = row * h * z;
  /* Arrays live in an opaque tiled layout; the driver reports (and the
   * simulator charges) the size rounded to 2 MiB for large arrays and to
   * 512 bytes for small ones. */
  uint64_t charged = bytes >= (1ull << 20) ? vgp__round_up(bytes, 2ull << 20)
                                           : vgp__round_up(bytes, VGP_ALLOC_ROUND);
  struct vgp__array *arr = vgp__calloc(1, sizeof(*arr));
  if (arr == NULL)
    return CUDA_ERROR_OUT_OF_MEMORY;
  arr->mem = vgp__calloc(1, bytes);
  if (arr->mem == NULL) {
    vgp__free(arr);
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  if (vgp_sim_mem_charge(&g_cu.sim, g_cu.slot, vgp__phys(ctx->device), charged) < 0) {
    vgp__free(arr->mem);
    vgp__free(arr);
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  arr->kind = VGP_CU_ARRAY;
  arr->device = ctx->device;
  arr->desc = *d;
  arr->bytes = bytes;
  arr->charged = charged;
  if (vgp__handle_add(arr, VGP_CU_ARRAY) < 0) {
    vgp_sim_mem_uncharge(&g_cu.sim, g_cu.slot, vgp__phys(ctx->device), charged);
    vgp__free(arr->mem);
    vgp__free(arr);
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  *pHandle = (CUarray)arr;
  return CUDA_SUCCESS;
}

VGP_EXPORT CUresult cuArrayCreate_v2(CUarray *pHandle, const CUDA_ARRAY_DESCRIPTOR *pAllocateArray) {
  if (pAllocateArray == NULL)
    return CUDA_ERROR_INVALID_VALUE;
  CUDA_ARRAY3D_DESCRIPTOR d = {pAllocateArray->Width, pAllocateArray->Height, 0,
                               pAllocateArray->Format, pAllocateArray->NumChannels, 0};
  return vgp__array_create(pHandle, &d);
}

VGP_EXPORT CUresult cuArray3DCreate_v2(CUarray *pHandle, const CUDA_ARRAY3D_DESCRIPTOR *pAllocateArray) {
  return vgp__array_create(pHandle, pAllocateArray);
}

VGP_EXPORT CUresult cuArrayDestroy(CUarray hArray) {
  CUresult r = vgp__cu_check_init();
  if (r != CUDA_SUCCESS)
    return r;
  if (!vgp__handle_is(hArray, VGP_CU_ARRAY))
    return CUDA_ERROR_INVALID_HANDLE;
  struct vgp__array *arr = (struct vgp__array *)hArray;
  vgp__handle_remove(arr);
  vgp_sim_mem_uncharge(&g_cu.sim, g_cu.slot, vgp__phys(arr->device), arr->charged);
  vgp__free(arr->mem);
  vgp__free(arr);
  return CUDA_SUCCESS;
}

VGP_EXPORT CUresult cuArrayGetDescriptor_v2(CUDA_ARRAY_DESCRIPTOR *pArrayDescriptor, CUarray hArray) {
  CUresult r = vgp__cu_check_init();
  if (r != CUDA_SUCCESS)
    return r;
  if (!vgp__handle_is(hArray, VGP_CU_ARRAY))
    return CUDA_ERROR_INVALID_HANDLE;
  if (pArrayDescriptor == NULL)
    return CUDA_ERROR_INVALID_VALUE;
  const struct vgp__array *arr = (const struct vgp__array *)hArray;
  pArrayDescriptor->Width = arr->desc.Width;
  pArrayDescriptor->Height = arr->desc.Height;
  pArrayDescriptor->Format = arr->desc.Format;
  pArrayDescriptor->NumChannels = arr->desc.NumChannels;
  return CUDA_SUCCESS;
}

VGP_EXPORT CUresult cuArrayGetMemoryRequirements(CUDA_ARRAY_MEMORY_REQUIREMENTS *memoryRequirements,
                                                 CUarray array, CUdevice device) {
  CUresult r = vgp__cu_check_init();
  if (r != CUDA_SUCCESS)
    return r;
  if (!vgp__handle_is(array, VGP_CU_ARRAY))
    return CUDA_ERROR_INVALID_HANDLE;
  if (memoryRequirements == NULL)
    return CUDA_ERROR_INVALID_VALUE;
  if (device < 0 || device >= g_cu.device_count)
    return CUDA_ERROR_INVALID_DEVICE;
  const struct vgp__array *arr = (const struct vgp__array *)array;
  memset(memoryRequirements, 0, sizeof(*memoryRequirements));
  memoryRequirements->size = arr->charged;
  memoryRequirements->alignment = arr->charged >= (2ull << 20) ? (2ull << 20) : VGP_ALLOC_ROUND;
  return CUDA_SUCCESS;
}
