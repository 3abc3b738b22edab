/*
 * cu_vmm.c - virtual memory management and inter-process memory of the
 * simulated driver.
 *
 * The VMM API maps naturally onto POSIX: an address reservation is an
 * inaccessible anonymous mapping (mmap PROT_NONE), a physical allocation is
 * a memfd charged to the device when it is created, mapping places the memfd
 * at a reserved address (MAP_FIXED), and access rights are mprotect. A
 * physical allocation lives until it is released and unmapped everywhere,
 * as the driver documents.
 *
 * IPC handles name an exporting process, its memfd and a buffer id; the
 * importer opens /proc/<pid>/fd/<fd> to map the same memory. Imported memory
 * is never charged again: it stays charged to the exporter, as on a GPU
 * where the allocation has one owner.
 */
#include <errno.h>
#include <fcntl.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "cu_internal.h"
#include "proc.h"

#define VGP_VMM_GRANULARITY (2ull << 20)

/* ----------------------------------------------------- address ranges */

VGP_EXPORT CUresult cuMemAddressReserve(CUdeviceptr *ptr, size_t size, size_t alignment,
                                        CUdeviceptr addr, unsigned long long flags) {
  CUresult r = vgp__cu_check_init();
  if (r != CUDA_SUCCESS)
    return r;
  if (ptr == NULL || size == 0 || size % VGP_VMM_GRANULARITY != 0 || flags != 0 ||
      (alignment != 0 && (alignment & (alignment - 1)) != 0))
    return CUDA_ERROR_INVALID_VALUE;
  uint64_t align = alignment > VGP_VMM_GRANULARITY ? alignment : VGP_VMM_GRANULARITY;
  struct vgp__alloc *a = vgp__calloc(1, sizeof(*a));
  struct vgp__vmm_map *maps = vgp__calloc(VGP_VMM_MAX_MAPS, sizeof(*maps));
  if (a == NULL || maps == NULL) {
    vgp__free(a);
    vgp__free(maps);
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  /* Over-reserve to align, then give back the slack on both sides. */
  uint64_t span = size + align;
  char *raw = mmap((void *)(uintptr_t)addr, span, PROT_NONE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (raw == MAP_FAILED) {
    vgp__free(a);
    vgp__free(maps);
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  uint64_t base = vgp__round_up((uint64_t)(uintptr_t)raw, align);
  if (base > (uint64_t)(uintptr_t)raw)
    munmap(raw, base - (uint64_t)(uintptr_t)raw);
  uint64_t tail = (uint64_t)(uintptr_t)raw + span - (base + size);
  if (tail > 0)
    munmap((void *)(uintptr_t)(base + size), tail);
  a->base = base;
  a->size = size;
  a->map_size = size;
  a->kind = VGP_ALLOC_VA;
  a->device = -1;
  a->fd = -1;
  a->maps = maps;
  a->buffer_id = vgp__cu_next_id();
  if (vgp__alloc_insert(a) < 0) {
    munmap((void *)(uintptr_t)base, size);
    vgp__free(maps);
    vgp__free(a);
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  *ptr = base;
  return CUDA_SUCCESS;
}

VGP_EXPORT CUresult cuMemAddressFree(CUdeviceptr ptr, size_t size) {
  CUresult r = vgp__cu_check_init();
  if (r != CUDA_SUCCESS)
    return r;
  struct vgp__alloc *a = vgp__alloc_find(ptr);
  if (a == NULL || a->kind != VGP_ALLOC_VA || a->base != ptr || a->size != size)
    return CUDA_ERROR_INVALID_VALUE;
  if (a->nmaps > 0)
    return CUDA_ERROR_INVALID_VALUE; /* unmap first */
  vgp__alloc_remove(a);
  munmap((void *)(uintptr_t)a->base, a->size);
  vgp__free(a->maps);
  vgp__free(a);
  return CUDA_SUCCESS;
}

/* ------------------------------------------------ physical allocations */

static CUresult vgp__vmm_handle_get(CUmemGenericAllocationHandle h, struct vgp__vmm_handle **ret) {
  void *p = (void *)(uintptr_t)h;
  if (!vgp__handle_is(p, VGP_CU_VMM_HANDLE))
    return CUDA_ERROR_INVALID_VALUE;
  struct vgp__vmm_handle *vh = p;
  if (vh->released)
    return CUDA_ERROR_INVALID_VALUE;
  *ret = vh;
  return CUDA_SUCCESS;
}

/* Drops one reference; the last one frees the memory. */
static void vgp__vmm_handle_unref(struct vgp__vmm_handle *vh) {
  pthread_mutex_lock(&g_cu.lock);
  int last = --vh->refs == 0;
  pthread_mutex_unlock(&g_cu.lock);
  if (!last)
    return;
  vgp__handle_remove(vh);
  close(vh->fd);
  if (vh->charged > 0)
    vgp_sim_mem_uncharge(&g_cu.sim, g_cu.slot, vgp__phys(vh->device), vh->charged);
  vgp__free(vh);
}

static CUresult vgp__check_prop(const CUmemAllocationProp *prop) {
  if (prop == NULL || prop->type != CU_MEM_ALLOCATION_TYPE_PINNED ||
      prop->location.type != CU_MEM_LOCATION_TYPE_DEVICE)
    return CUDA_ERROR_INVALID_VALUE;
  if (prop->location.id < 0 || prop->location.id >= g_cu.device_count)
    return CUDA_ERROR_INVALID_DEVICE;
  if ((prop->requestedHandleTypes & ~(unsigned)CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR) != 0)
    return CUDA_ERROR_NOT_SUPPORTED;
  return CUDA_SUCCESS;
}

VGP_EXPORT CUresult cuMemCreate(CUmemGenericAllocationHandle *handle, size_t size,
                                const CUmemAllocationProp *prop, unsigned long long flags) {
  CUresult r = vgp__cu_check_init();
  if (r != CUDA_SUCCESS)
    return r;
  if (handle == NULL || size == 0 || size % VGP_VMM_GRANULARITY != 0 || flags != 0)
    return CUDA_ERROR_INVALID_VALUE;
  if ((r = vgp__check_prop(prop)) != CUDA_SUCCESS)
    return r;
  pthread_mutex_lock(&g_cu.lock);
  r = vgp__cu_claim_slot();
  pthread_mutex_unlock(&g_cu.lock);
  if (r != CUDA_SUCCESS)
    return r;
  int dev = prop->location.id;
  struct vgp__vmm_handle *vh = vgp__calloc(1, sizeof(*vh));
  if (vh == NULL)
    return CUDA_ERROR_OUT_OF_MEMORY;
  if (vgp_sim_mem_charge(&g_cu.sim, g_cu.slot, vgp__phys(dev), size) < 0) {
    vgp__free(vh);
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  char name[64];
  /* Named by physical device: the importer may see other ordinals. */
  snprintf(name, sizeof(name), "vgpool-sim-device-%d", vgp__phys(dev));
  vh->fd = memfd_create(name, MFD_CLOEXEC);
  if (vh->fd < 0 || ftruncate(vh->fd, (off_t)size) < 0) {
    if (vh->fd >= 0)
      close(vh->fd);
    vgp_sim_mem_uncharge(&g_cu.sim, g_cu.slot, vgp__phys(dev), size);
    vgp__free(vh);
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  vh->kind = VGP_CU_VMM_HANDLE;
  vh->device = dev;
  vh->size = size;
  vh->refs = 1;
  vh->charged = size;
  vh->prop = *prop;
  if (vgp__handle_add(vh, VGP_CU_VMM_HANDLE) < 0) {
    close(vh->fd);
    vgp_sim_mem_uncharge(&g_cu.sim, g_cu.slot, vgp__phys(dev), size);
    vgp__free(vh);
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  *handle = (CUmemGenericAllocationHandle)(uintptr_t)vh;
  return CUDA_SUCCESS;
}

VGP_EXPORT CUresult cuMemRelease(CUmemGenericAllocationHandle handle) {
  CUresult r = vgp__cu_check_init();
  if (r != CUDA_SUCCESS)
    return r;
  struct vgp__vmm_handle *vh;
  if ((r = vgp__vmm_handle_get(handle, &vh)) != CUDA_SUCCESS)
    return r;
  /* The handle is unusable from now on; the memory lives on while it is
   * still mapped somewhere. */
  pthread_mutex_lock(&g_cu.lock);
  vh->released = 1;
  pthread_mutex_unlock(&g_cu.lock);
  vgp__vmm_handle_unref(vh);
  return CUDA_SUCCESS;
}

VGP_EXPORT CUresult cuMemRetainAllocationHandle(CUmemGenericAllocationHandle *handle, void *addr) {
  CUresult r = vgp__cu_check_init();
  if (r != CUDA_SUCCESS)
    return r;
  if (handle == NULL)
    return CUDA_ERROR_INVALID_VALUE;
  uint64_t p = (uint64_t)(uintptr_t)addr;
  r = CUDA_ERROR_INVALID_VALUE;
  struct vgp__alloc *a = vgp__alloc_find(p);
  pthread_mutex_lock(&g_cu.lock);
  if (a != NULL && a->kind == VGP_ALLOC_VA) {
    for (int i = 0; i < a->nmaps; i++) {
      uint64_t lo = a->base + a->maps[i].offset;
      if (p >= lo && p < lo + a->maps[i].size) {
        a->maps[i].handle->refs++;
        a->maps[i].handle->released = 0;
        *handle = (CUmemGenericAllocationHandle)(uintptr_t)a->maps[i].handle;
        r = CUDA_SUCCESS;
        break;
      }
    }
  }
  pthread_mutex_unlock(&g_cu.lock);
  return r;
}

VGP_EXPORT CUresult cuMemMap(CUdeviceptr ptr, size_t size, size_t offset,
                             CUmemGenericAllocationHandle handle, unsigned long long flags) {
  CUresult r = vgp__cu_check_init();
  if (r != CUDA_SUCCESS)
    return r;
  struct vgp__vmm_handle *vh;
  if ((r = vgp__vmm_handle_get(handle, &vh)) != CUDA_SUCCESS)
    return r;
  if (flags != 0 || size == 0 || size % VGP_VMM_GRANULARITY != 0 ||
      offset % VGP_VMM_GRANULARITY != 0 || offset > vh->size || size > vh->size - offset)
    return CUDA_ERROR_INVALID_VALUE;
  struct vgp__alloc *a = vgp__alloc_find(ptr);
  if (a == NULL || a->kind != VGP_ALLOC_VA || ptr + size > a->base + a->size ||
      (ptr - a->base) % VGP_VMM_GRANULARITY != 0)
    return CUDA_ERROR_INVALID_VALUE;
  uint64_t off = ptr - a->base;
  pthread_mutex_lock(&g_cu.lock);
  int pos = 0;
  for (int i = 0; i < a->nmaps; i++) {
    const struct vgp__vmm_map *m = &a->maps[i];
    if (off < m->offset + m->size && m->offset < off + size) {
      pthread_mutex_unlock(&g_cu.lock);
      return CUDA_ERROR_ALREADY_MAPPED;
    }
    if (m->offset < off)
      pos = i + 1;
  }
  if (a->nmaps >= VGP_VMM_MAX_MAPS) {
    pthread_mutex_unlock(&g_cu.lock);
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  void *at = mmap((void *)(uintptr_t)ptr, size, PROT_NONE, MAP_SHARED | MAP_FIXED, vh->fd,
                  (off_t)offset);
  if (at == MAP_FAILED) {
    pthread_mutex_unlock(&g_cu.lock);
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  memmove(&a->maps[pos + 1], &a->maps[pos], (size_t)(a->nmaps - pos) * sizeof(a->maps[0]));
  a->maps[pos] = (struct vgp__vmm_map){off, size, vh, offset, CU_MEM_ACCESS_FLAGS_PROT_NONE};
  a->nmaps++;
  a->device = vh->device;
  vh->refs++;
  pthread_mutex_unlock(&g_cu.lock);
  return CUDA_SUCCESS;
}

VGP_EXPORT CUresult cuMemUnmap(CUdeviceptr ptr, size_t size) {
  CUresult r = vgp__cu_check_init();
  if (r != CUDA_SUCCESS)
    return r;
  struct vgp__alloc *a = vgp__alloc_find(ptr);
  if (a == NULL || a->kind != VGP_ALLOC_VA || size == 0 || ptr + size > a->base + a->size)
    return CUDA_ERROR_INVALID_VALUE;
  uint64_t off = ptr - a->base, end = off + size;
  struct vgp__vmm_handle *drop[VGP_VMM_MAX_MAPS];
  int ndrop = 0;
  pthread_mutex_lock(&g_cu.lock);
  /* The range must consist of whole mappings. */
  for (int i = 0; i < a->nmaps; i++) {
    const struct vgp__vmm_map *m = &a->maps[i];
    if (m->offset < end && off < m->offset + m->size &&
        (m->offset < off || m->offset + m->size > end)) {
      pthread_mutex_unlock(&g_cu.lock);
      return CUDA_ERROR_INVALID_VALUE;
    }
  }
  int w = 0;
  for (int i = 0; i < a->nmaps; i++) {
    if (a->maps[i].offset >= off && a->maps[i].offset + a->maps[i].size <= end)
      drop[ndrop++] = a->maps[i].handle;
    else
      a->maps[w++] = a->maps[i];
  }
  a->nmaps = w;
  mmap((void *)(uintptr_t)ptr, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE,
       -1, 0);
  pthread_mutex_unlock(&g_cu.lock);
  if (ndrop == 0)
    return CUDA_ERROR_INVALID_VALUE;
  for (int i = 0; i < ndrop; i++)
    vgp__vmm_handle_unref(drop[i]);
  return CUDA_SUCCESS;
}

VGP_EXPORT CUresult cuMemSetAccess(CUdeviceptr ptr, size_t size, const CUmemAccessDesc *desc, size_t count) {
  CUresult r = vgp__cu_check_init();
  if (r != CUDA_SUCCESS)
    return r;
  if (desc == NULL || count == 0 || size == 0)
    return CUDA_ERROR_INVALID_VALUE;
  int access = CU_MEM_ACCESS_FLAGS_PROT_NONE;
  for (size_t i = 0; i < count; i++) {
    if (desc[i].location.type != CU_MEM_LOCATION_TYPE_DEVICE)
      return CUDA_ERROR_INVALID_VALUE;
    if (desc[i].location.id < 0 || desc[i].location.id >= g_cu.device_count)
      return CUDA_ERROR_INVALID_DEVICE;
    if (desc[i].flags != CU_MEM_ACCESS_FLAGS_PROT_NONE && desc[i].flags != CU_MEM_ACCESS_FLAGS_PROT_READ &&
        desc[i].flags != CU_MEM_ACCESS_FLAGS_PROT_READWRITE)
      return CUDA_ERROR_INVALID_VALUE;
    /* All simulated devices see the same memory: the widest grant wins. */
    if ((int)desc[i].flags > access)
      access = (int)desc[i].flags;
  }
  struct vgp__alloc *a = vgp__alloc_find(ptr);
  if (a == NULL || a->kind != VGP_ALLOC_VA || ptr + size > a->base + a->size)
    return CUDA_ERROR_INVALID_VALUE;
  uint64_t off = ptr - a->base, end = off + size, covered = off;
  pthread_mutex_lock(&g_cu.lock);
  for (int i = 0; i < a->nmaps; i++) {
    const struct vgp__vmm_map *m = &a->maps[i];
    if (m->offset <= covered && covered < m->offset + m->size)
      covered = m->offset + m->size;
  }
  if (covered < end) {
    pthread_mutex_unlock(&g_cu.lock);
    return CUDA_ERROR_INVALID_VALUE; /* part of the range is not mapped */
  }
  int prot = access == CU_MEM_ACCESS_FLAGS_PROT_READWRITE ? PROT_READ | PROT_WRITE
             : access == CU_MEM_ACCESS_FLAGS_PROT_READ    ? PROT_READ
                                                          : PROT_NONE;
  if (mprotect((void *)(uintptr_t)ptr, size, prot) < 0) {
    pthread_mutex_unlock(&g_cu.lock);
    return CUDA_ERROR_INVALID_VALUE;
  }
  for (int i = 0; i < a->nmaps; i++)
    if (a->maps[i].offset < end && off < a->maps[i].offset + a->maps[i].size)
      a->maps[i].access = access;
  pthread_mutex_unlock(&g_cu.lock);
  return CUDA_SUCCESS;
}

VGP_EXPORT CUresult cuMemGetAccess(unsigned long long *flags, const CUmemLocation *location, CUdeviceptr ptr) {
  CUresult r = vgp__cu_check_init();
  if (r != CUDA_SUCCESS)
    return r;
  if (flags == NULL || location == NULL || location->type != CU_MEM_LOCATION_TYPE_DEVICE)
    return CUDA_ERROR_INVALID_VALUE;
  struct vgp__alloc *a = vgp__alloc_find(ptr);
  if (a == NULL || a->kind != VGP_ALLOC_VA)
    return CUDA_ERROR_INVALID_VALUE;
  r = CUDA_ERROR_INVALID_VALUE;
  pthread_mutex_lock(&g_cu.lock);
  for (int i = 0; i < a->nmaps; i++) {
    uint64_t lo = a->base + a->maps[i].offset;
    if (ptr >= lo && ptr < lo + a->maps[i].size) {
      *flags = (unsigned long long)a->maps[i].access;
      r = CUDA_SUCCESS;
    }
  }
  pthread_mutex_unlock(&g_cu.lock);
  return r;
}

VGP_EXPORT CUresult cuMemGetAllocationGranularity(size_t *granularity, const CUmemAllocationProp *prop,
                                                  CUmemAllocationGranularity_flags option) {
  CUresult r = vgp__cu_check_init();
  if (r != CUDA_SUCCESS)
    return r;
  if (granularity == NULL || (option != CU_MEM_ALLOC_GRANULARITY_MINIMUM &&
                              option != CU_MEM_ALLOC_GRANULARITY_RECOMMENDED))
    return CUDA_ERROR_INVALID_VALUE;
  if ((r = vgp__check_prop(prop)) != CUDA_SUCCESS)
    return r;
  *granularity = VGP_VMM_GRANULARITY;
  return CUDA_SUCCESS;
}

VGP_EXPORT CUresult cuMemGetAllocationPropertiesFromHandle(CUmemAllocationProp *prop,
                                                           CUmemGenericAllocationHandle handle) {
  CUresult r = vgp__cu_check_init();
  if (r != CUDA_SUCCESS)
    return r;
  struct vgp__vmm_handle *vh;
  if (prop == NULL)
    return CUDA_ERROR_INVALID_VALUE;
  if ((r = vgp__vmm_handle_get(handle, &vh)) != CUDA_SUCCESS)
    return r;
  *prop = vh->prop;
  return CUDA_SUCCESS;
}

VGP_EXPORT CUresult cuMemExportToShareableHandle(void *shareableHandle, CUmemGenericAllocationHandle handle,
                                                 CUmemAllocationHandleType handleType,
                                                 unsigned long long flags) {
  CUresult r = vgp__cu_check_init();
  if (r != CUDA_SUCCESS)
    return r;
  struct vgp__vmm_handle *vh;
  if (shareableHandle == NULL || flags != 0)
    return CUDA_ERROR_INVALID_VALUE;
  if ((r = vgp__vmm_handle_get(handle, &vh)) != CUDA_SUCCESS)
    return r;
  if (handleType != CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR ||
      !(vh->prop.requestedHandleTypes & CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR))
    return CUDA_ERROR_INVALID_VALUE;
  int fd = fcntl(vh->fd, F_DUPFD_CLOEXEC, 0);
  if (fd < 0)
    return CUDA_ERROR_OUT_OF_MEMORY;
  *(int *)shareableHandle = fd;
  return CUDA_SUCCESS;
}

/* The device of an exported memfd is in its name ("vgpool-sim-device-N",
 * N physical); returns this process's ordinal for it, or -1. */
static int vgp__memfd_device(int fd) {
  char path[64], target[256];
  snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
  ssize_t n = readlink(path, target, sizeof(target) - 1);
  if (n < 0)
    return -1;
  target[n] = '\0';
  const char *p = strstr(target, "vgpool-sim-device-");
  if (p == NULL)
    return -1;
  return vgp__ordinal(atoi(p + strlen("vgpool-sim-device-")));
}

VGP_EXPORT CUresult cuMemImportFromShareableHandle(CUmemGenericAllocationHandle *handle, void *osHandle,
                                                   CUmemAllocationHandleType shHandleType) {
  CUresult r = vgp__cu_check_init();
  if (r != CUDA_SUCCESS)
    return r;
  if (handle == NULL || shHandleType != CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR)
    return CUDA_ERROR_INVALID_VALUE;
  int src = (int)(intptr_t)osHandle;
  int dev = vgp__memfd_device(src);
  struct stat st;
  if (dev < 0 || fstat(src, &st) < 0 || st.st_size <= 0)
    return CUDA_ERROR_INVALID_VALUE;
  struct vgp__vmm_handle *vh = vgp__calloc(1, sizeof(*vh));
  if (vh == NULL)
    return CUDA_ERROR_OUT_OF_MEMORY;
  vh->fd = fcntl(src, F_DUPFD_CLOEXEC, 0);
  if (vh->fd < 0) {
    vgp__free(vh);
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  vh->kind = VGP_CU_VMM_HANDLE;
  vh->device = dev;
  vh->size = (uint64_t)st.st_size;
  vh->refs = 1;
  vh->imported = 1;
  vh->prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
  vh->prop.requestedHandleTypes = CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR;
  vh->prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  vh->prop.location.id = dev;
  if (vgp__handle_add(vh, VGP_CU_VMM_HANDLE) < 0) {
    close(vh->fd);
    vgp__free(vh);
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  *handle = (CUmemGenericAllocationHandle)(uintptr_t)vh;
  return CUDA_SUCCESS;
}

/* -------------------------------------------------------------------- IPC */

struct vgp__ipc_handle {
  char magic[8];        /* "VGPIPC1" */
  int32_t pid;
  int32_t fd;
  uint64_t size;
  uint64_t buffer_id;
  uint64_t start_time;  /* exporter's start time, against pid reuse */
  int32_t device;
  char pad[CU_IPC_HANDLE_SIZE - 8 - 4 - 4 - 8 - 8 - 8 - 4];
};

_Static_assert(sizeof(struct vgp__ipc_handle) == CU_IPC_HANDLE_SIZE, "IPC handle size");

VGP_EXPORT CUresult cuIpcGetMemHandle(CUipcMemHandle *pHandle, CUdeviceptr dptr) {
  CUresult r = vgp__cu_check_init();
  if (r != CUDA_SUCCESS)
    return r;
  if (pHandle == NULL)
    return CUDA_ERROR_INVALID_VALUE;
  struct vgp__alloc *a = vgp__alloc_find(dptr);
  if (a == NULL || a->kind != VGP_ALLOC_DEVICE || a->fd < 0 || a->base != dptr)
    return CUDA_ERROR_INVALID_VALUE;
  struct vgp__ipc_handle h;
  memset(&h, 0, sizeof(h));
  memcpy(h.magic, "VGPIPC1", 8);
  h.pid = (int32_t)getpid();
  h.fd = a->fd;
  h.size = a->size;
  h.buffer_id = a->buffer_id;
  h.device = vgp__phys(a->device);
  uint64_t start = 0;
  vgp__proc_start_time(0, &start);
  h.start_time = start;
  memcpy(pHandle->reserved, &h, sizeof(h));
  return CUDA_SUCCESS;
}

static struct vgp__alloc *vgp__ipc_find_open(int32_t pid, uint64_t buffer_id);

struct vgp__ipc_walk {
  int32_t pid;
  uint64_t buffer;
  struct vgp__alloc *found;
};
static __thread struct vgp__ipc_walk *vgp__ipc_walker;

static void vgp__ipc_visit(const void *node, VISIT which, int depth) {
  (void)depth;
  if (which != postorder && which != leaf)
    return;
  struct vgp__alloc *a = *(struct vgp__alloc *const *)node;
  if (a->kind == VGP_ALLOC_IPC && a->ipc_pid == vgp__ipc_walker->pid &&
      a->ipc_buffer == vgp__ipc_walker->buffer)
    vgp__ipc_walker->found = a;
}

static struct vgp__alloc *vgp__ipc_find_open(int32_t pid, uint64_t buffer_id) {
  struct vgp__ipc_walk walk = {pid, buffer_id, NULL};
  vgp__ipc_walker = &walk;
  twalk(g_cu.alloc_tree, vgp__ipc_visit);
  vgp__ipc_walker = NULL;
  return walk.found;
}

static CUresult vgp__ipc_open(CUdeviceptr *pdptr, CUipcMemHandle handle, unsigned int Flags) {
  struct vgp__ctx *ctx;
  CUresult r = vgp__ctx_current(&ctx);
  if (r != CUDA_SUCCESS)
    return r;
  if (pdptr == NULL || (Flags & ~(unsigned)CU_IPC_MEM_LAZY_ENABLE_PEER_ACCESS) != 0)
    return CUDA_ERROR_INVALID_VALUE;
  struct vgp__ipc_handle h;
  memcpy(&h, handle.reserved, sizeof(h));
  if (memcmp(h.magic, "VGPIPC1", 8) != 0 || h.size == 0)
    return CUDA_ERROR_INVALID_VALUE;
  int dev = vgp__ordinal(h.device);
  if (dev < 0)
    return CUDA_ERROR_INVALID_DEVICE; /* not visible to this process */
  if (h.pid == (int32_t)getpid())
    return CUDA_ERROR_INVALID_CONTEXT; /* a process cannot import its own memory */
  pthread_mutex_lock(&g_cu.lock);
  struct vgp__alloc *existing = vgp__ipc_find_open(h.pid, h.buffer_id);
  if (existing != NULL) {
    existing->refs++;
    *pdptr = existing->base;
    pthread_mutex_unlock(&g_cu.lock);
    return CUDA_SUCCESS;
  }
  pthread_mutex_unlock(&g_cu.lock);
  if (!vgp__proc_matches(h.pid, h.start_time))
    return CUDA_ERROR_INVALID_VALUE; /* the exporter is gone */
  char path[64];
  snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)h.pid, (int)h.fd);
  int fd = open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0)
    return CUDA_ERROR_INVALID_VALUE;
  struct vgp__alloc *a = vgp__calloc(1, sizeof(*a));
  if (a == NULL) {
    close(fd);
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  uint64_t len = vgp__round_up(h.size, (uint64_t)getpagesize());
  void *addr = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (addr == MAP_FAILED) {
    vgp__free(a);
    return CUDA_ERROR_MAP_FAILED;
  }
  a->base = (uint64_t)(uintptr_t)addr;
  a->size = h.size;
  a->map_size = len;
  a->kind = VGP_ALLOC_IPC;
  a->device = dev;
  a->fd = -1;
  a->ctx = ctx;
  a->refs = 1;
  a->ipc_pid = h.pid;
  a->ipc_buffer = h.buffer_id;
  a->buffer_id = vgp__cu_next_id();
  if (vgp__alloc_insert(a) < 0) {
    munmap(addr, len);
    vgp__free(a);
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  *pdptr = a->base;
  return CUDA_SUCCESS;
}

VGP_EXPORT CUresult cuIpcOpenMemHandle(CUdeviceptr *pdptr, CUipcMemHandle handle, unsigned int Flags) {
  return vgp__ipc_open(pdptr, handle, Flags);
}

VGP_EXPORT CUresult cuIpcOpenMemHandle_v2(CUdeviceptr *pdptr, CUipcMemHandle handle, unsigned int Flags) {
  return vgp__ipc_open(pdptr, handle, Flags);
}

VGP_EXPORT CUresult cuIpcCloseMemHandle(CUdeviceptr dptr) {
  CUresult r = vgp__cu_check_init();
  if (r != CUDA_SUCCESS)
    return r;
  struct vgp__alloc *a = vgp__alloc_find(dptr);
  if (a == NULL || a->kind != VGP_ALLOC_IPC || a->base != dptr)
    return CUDA_ERROR_INVALID_VALUE;
  pthread_mutex_lock(&g_cu.lock);
  int last = --a->refs == 0;
  pthread_mutex_unlock(&g_cu.lock);
  if (last)
    vgp__mem_free(a);
  return CUDA_SUCCESS;
}
