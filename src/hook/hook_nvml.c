/*
 * hook_nvml.c - NVML as a container should see it.
 *
 * Memory info reports the container's quota as the total and its usage as
 * used (v1 and v2, which tools such as nvidia-smi and pynvml read), with
 * free clamped the same way cuMemGetInfo is. Process lists and per-process
 * utilization samples keep only the container's own processes. Devices are
 * matched by UUID, so this works in processes that never initialize CUDA.
 */
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "hook_internal.h"

#define VGP_PROC_LIST_MAX 4096

/* The container's view of an NVML device: its region entry and quota (0 =
 * none). Returns 0 when the device belongs to this container. */
static int vgp__nvml_view(nvmlDevice_t device, int *ret_region_dev, uint64_t *ret_limit) {
  vgp__hook_init();
  if (!vgp__hook_active() || g_hook.region.r == NULL)
    return -1;
  char uuid[NVML_DEVICE_UUID_V2_BUFFER_SIZE];
  if (vgp__real_nvml.nvmlDeviceGetUUID == NULL ||
      vgp__real_nvml.nvmlDeviceGetUUID(device, uuid, sizeof(uuid)) != NVML_SUCCESS)
    return -1;
  int rd = vgp__region_device(&g_hook.region, uuid, 0, 0);
  if (rd < 0)
    return -1;
  uint64_t limit = __atomic_load_n(&g_hook.region.r->dev[rd].limit, __ATOMIC_ACQUIRE);
  if (g_hook.mode == VGP_MODE_FILE) {
    const struct vgp_device_limit *l = vgp_limits_find(&g_hook.limits, uuid);
    limit = l != NULL ? l->memory : 0;
  }
  *ret_region_dev = rd;
  *ret_limit = limit;
  return 0;
}

static void vgp__nvml_virtual(int rd, uint64_t limit, unsigned long long *total,
                              unsigned long long *free_bytes, unsigned long long *used) {
  if (limit > *total)
    limit = *total; /* a quota larger than the board means the board */
  uint64_t u = __atomic_load_n(&g_hook.region.r->dev[rd].used, __ATOMIC_ACQUIRE);
  uint64_t left = u >= limit ? 0 : limit - u;
  *total = limit;
  *used = u;
  if (left < *free_bytes)
    *free_bytes = left;
}

#define VGP_NVML_REAL_OR_FAIL(sym)                                             \
  do {                                                                         \
    vgp__hook_init();                                                          \
    if (vgp__hook_nvml_load() < 0 || vgp__real_nvml.sym == NULL)               \
      return NVML_ERROR_LIBRARY_NOT_FOUND;                                     \
  } while (0)

VGP_EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t *memory) {
  VGP_NVML_REAL_OR_FAIL(nvmlDeviceGetMemoryInfo);
  nvmlReturn_t r = vgp__real_nvml.nvmlDeviceGetMemoryInfo(device, memory);
  int rd;
  uint64_t limit;
  if (r == NVML_SUCCESS && vgp__nvml_view(device, &rd, &limit) == 0 && limit != 0)
    vgp__nvml_virtual(rd, limit, &memory->total, &memory->free, &memory->used);
  return r;
}

VGP_EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device, nvmlMemory_v2_t *memory) {
  VGP_NVML_REAL_OR_FAIL(nvmlDeviceGetMemoryInfo_v2);
  nvmlReturn_t r = vgp__real_nvml.nvmlDeviceGetMemoryInfo_v2(device, memory);
  int rd;
  uint64_t limit;
  if (r == NVML_SUCCESS && vgp__nvml_view(device, &rd, &limit) == 0 && limit != 0) {
    vgp__nvml_virtual(rd, limit, &memory->total, &memory->free, &memory->used);
    /* The driver's reservation is the node's business, not the tenant's. */
    memory->reserved = 0;
  }
  return r;
}

int vgp__container_pid(unsigned pid, int live_only) {
  const struct vgp_region *r = g_hook.region.r;
  for (int i = 0; i < VGP_REGION_MAX_PROCS; i++) {
    const struct vgp_region_slot *s = &r->slots[i];
    if (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != VGP_REGION_SLOT_ACTIVE)
      continue;
    unsigned node_pid = (unsigned)(s->host_pid != 0 ? s->host_pid : s->pid);
    if (node_pid == pid && (!live_only || vgp__region_slot_alive(&g_hook.region, i)))
      return 1;
  }
  return 0;
}

/* Filters an array of records that start with an unsigned int pid, in
 * place; returns the new count. */
static unsigned vgp__filter_pids(void *items, unsigned n, size_t size) {
  unsigned w = 0;
  char *base = items;
  for (unsigned i = 0; i < n; i++) {
    unsigned pid;
    memcpy(&pid, base + i * size, sizeof(pid));
    if (!vgp__container_pid(pid, 1))
      continue;
    if (w != i)
      memmove(base + w * size, base + i * size, size);
    w++;
  }
  return w;
}

typedef nvmlReturn_t (*vgp__list_fn)(nvmlDevice_t, unsigned int *, void *);

/* Runs a process-list query through the real function into a private
 * buffer, keeps the container's entries, and answers with NVML's protocol:
 * *count in, the number of entries out, NVML_ERROR_INSUFFICIENT_SIZE when
 * they do not fit. */
static nvmlReturn_t vgp__filtered_list(vgp__list_fn real, nvmlDevice_t device, unsigned int *count,
                                       void *infos, size_t size) {
  int rd;
  uint64_t limit;
  if (count == NULL || vgp__nvml_view(device, &rd, &limit) < 0)
    return real(device, count, infos);
  unsigned cap = 256;
  void *buf = NULL;
  nvmlReturn_t r;
  for (;;) {
    buf = vgp__malloc((size_t)cap * size);
    if (buf == NULL)
      return NVML_ERROR_MEMORY;
    unsigned n = cap;
    r = real(device, &n, buf);
    if (r == NVML_ERROR_INSUFFICIENT_SIZE && n > cap && n <= VGP_PROC_LIST_MAX) {
      vgp__free(buf);
      cap = n + 16;
      continue;
    }
    if (r != NVML_SUCCESS) {
      vgp__free(buf);
      return r;
    }
    cap = n;
    break;
  }
  unsigned kept = vgp__filter_pids(buf, cap, size);
  if (infos == NULL || *count < kept) {
    *count = kept;
    vgp__free(buf);
    return kept == 0 ? NVML_SUCCESS : NVML_ERROR_INSUFFICIENT_SIZE;
  }
  memcpy(infos, buf, (size_t)kept * size);
  *count = kept;
  vgp__free(buf);
  return NVML_SUCCESS;
}

#define VGP_PROC_LIST_WRAPPER(sym, type)                                       \
  VGP_EXPORT nvmlReturn_t sym(nvmlDevice_t device, unsigned int *infoCount, type *infos) { \
    VGP_NVML_REAL_OR_FAIL(sym);                                                \
    return vgp__filtered_list((vgp__list_fn)vgp__real_nvml.sym, device, infoCount, infos, \
                              sizeof(type));                                   \
  }

VGP_PROC_LIST_WRAPPER(nvmlDeviceGetComputeRunningProcesses, nvmlProcessInfo_v1_t)
VGP_PROC_LIST_WRAPPER(nvmlDeviceGetComputeRunningProcesses_v2, nvmlProcessInfo_v2_t)
VGP_PROC_LIST_WRAPPER(nvmlDeviceGetComputeRunningProcesses_v3, nvmlProcessInfo_t)
VGP_PROC_LIST_WRAPPER(nvmlDeviceGetGraphicsRunningProcesses, nvmlProcessInfo_v1_t)
VGP_PROC_LIST_WRAPPER(nvmlDeviceGetGraphicsRunningProcesses_v2, nvmlProcessInfo_v2_t)
VGP_PROC_LIST_WRAPPER(nvmlDeviceGetGraphicsRunningProcesses_v3, nvmlProcessInfo_t)

VGP_EXPORT nvmlReturn_t nvmlDeviceGetProcessUtilization(nvmlDevice_t device,
                                                        nvmlProcessUtilizationSample_t *utilization,
                                                        unsigned int *processSamplesCount,
                                                        unsigned long long lastSeenTimeStamp) {
  VGP_NVML_REAL_OR_FAIL(nvmlDeviceGetProcessUtilization);
  nvmlReturn_t r = vgp__real_nvml.nvmlDeviceGetProcessUtilization(device, utilization, processSamplesCount,
                                                                  lastSeenTimeStamp);
  int rd;
  uint64_t limit;
  if (r == NVML_SUCCESS && utilization != NULL && processSamplesCount != NULL &&
      vgp__nvml_view(device, &rd, &limit) == 0)
    *processSamplesCount = vgp__filter_pids(utilization, *processSamplesCount, sizeof(*utilization));
  return r;
}
