/*
 * cu_device.c - device enumeration and attributes of the simulated driver.
 *
 * Everything here reads the node's device configuration (node.h), so every
 * process on a simulated node sees the same devices with the same UUIDs and
 * PCI bus ids that NVML reports.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cu_internal.h"

static CUresult vgp__device_ok(CUdevice dev) {
  CUresult r = vgp__cu_check_init();
  if (r != CUDA_SUCCESS)
    return r;
  if (dev < 0 || dev >= g_cu.device_count)
    return CUDA_ERROR_INVALID_DEVICE;
  return CUDA_SUCCESS;
}

static const struct vgp_sim_device_config *vgp__cfg(CUdevice dev) {
  return &g_cu.sim.node->cfg[vgp__phys(dev)];
}

VGP_EXPORT CUresult cuDeviceGet(CUdevice *device, int ordinal) {
  CUresult r = vgp__cu_check_init();
  if (r != CUDA_SUCCESS)
    return r;
  if (device == NULL)
    return CUDA_ERROR_INVALID_VALUE;
  if (ordinal < 0 || ordinal >= g_cu.device_count)
    return CUDA_ERROR_INVALID_DEVICE;
  *device = ordinal;
  return CUDA_SUCCESS;
}

VGP_EXPORT CUresult cuDeviceGetCount(int *count) {
  CUresult r = vgp__cu_check_init();
  if (r != CUDA_SUCCESS)
    return r;
  if (count == NULL)
    return CUDA_ERROR_INVALID_VALUE;
  *count = g_cu.device_count;
  return CUDA_SUCCESS;
}

VGP_EXPORT CUresult cuDeviceGetName(char *name, int len, CUdevice dev) {
  CUresult r = vgp__device_ok(dev);
  if (r != CUDA_SUCCESS)
    return r;
  if (name == NULL || len <= 0)
    return CUDA_ERROR_INVALID_VALUE;
  snprintf(name, (size_t)len, "%s", vgp__cfg(dev)->name);
  return CUDA_SUCCESS;
}

VGP_EXPORT CUresult cuDeviceGetUuid(CUuuid *uuid, CUdevice dev) {
  CUresult r = vgp__device_ok(dev);
  if (r != CUDA_SUCCESS)
    return r;
  if (uuid == NULL)
    return CUDA_ERROR_INVALID_VALUE;
  memcpy(uuid->bytes, vgp__cfg(dev)->uuid_bytes, 16);
  return CUDA_SUCCESS;
}

VGP_EXPORT CUresult cuDeviceGetUuid_v2(CUuuid *uuid, CUdevice dev) {
  /* _v2 differs from the original only for MIG instances, which the
   * simulator does not model. */
  return cuDeviceGetUuid(uuid, dev);
}

VGP_EXPORT CUresult cuDeviceTotalMem_v2(size_t *bytes, CUdevice dev) {
  CUresult r = vgp__device_ok(dev);
  if (r != CUDA_SUCCESS)
    return r;
  if (bytes == NULL)
    return CUDA_ERROR_INVALID_VALUE;
  *bytes = vgp__cfg(dev)->total_memory;
  return CUDA_SUCCESS;
}

VGP_EXPORT CUresult cuDeviceComputeCapability(int *major, int *minor, CUdevice dev) {
  CUresult r = vgp__device_ok(dev);
  if (r != CUDA_SUCCESS)
    return r;
  if (major == NULL || minor == NULL)
    return CUDA_ERROR_INVALID_VALUE;
  *major = (int)vgp__cfg(dev)->cc_major;
  *minor = (int)vgp__cfg(dev)->cc_minor;
  return CUDA_SUCCESS;
}

/* Attribute values; 0 for attributes the modelled board does not have. */
static int vgp__attribute(const struct vgp_sim_device_config *c,
                          CUdevice_attribute attrib, int *ret) {
  int v;
  switch (attrib) {
  case CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK: v = 1024; break;
  case CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X: v = 1024; break;
  case CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y: v = 1024; break;
  case CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z: v = 64; break;
  case CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X: v = 2147483647; break;
  case CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y: v = 65535; break;
  case CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z: v = 65535; break;
  case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK: v = (int)c->shared_mem_per_block; break;
  case CU_DEVICE_ATTRIBUTE_TOTAL_CONSTANT_MEMORY: v = 65536; break;
  case CU_DEVICE_ATTRIBUTE_WARP_SIZE: v = 32; break;
  case CU_DEVICE_ATTRIBUTE_MAX_PITCH: v = 2147483647; break;
  case CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_BLOCK: v = 65536; break;
  case CU_DEVICE_ATTRIBUTE_CLOCK_RATE: v = (int)c->clock_khz; break;
  case CU_DEVICE_ATTRIBUTE_TEXTURE_ALIGNMENT: v = 512; break;
  case CU_DEVICE_ATTRIBUTE_GPU_OVERLAP: v = 1; break;
  case CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT: v = (int)c->sm_count; break;
  case CU_DEVICE_ATTRIBUTE_KERNEL_EXEC_TIMEOUT: v = 0; break;
  case CU_DEVICE_ATTRIBUTE_INTEGRATED: v = 0; break;
  case CU_DEVICE_ATTRIBUTE_CAN_MAP_HOST_MEMORY: v = 1; break;
  case CU_DEVICE_ATTRIBUTE_COMPUTE_MODE: v = CU_COMPUTEMODE_DEFAULT; break;
  case CU_DEVICE_ATTRIBUTE_SURFACE_ALIGNMENT: v = 512; break;
  case CU_DEVICE_ATTRIBUTE_CONCURRENT_KERNELS: v = 1; break;
  case CU_DEVICE_ATTRIBUTE_ECC_ENABLED: v = c->cc_major >= 7 ? 1 : 0; break;
  case CU_DEVICE_ATTRIBUTE_PCI_BUS_ID: v = (int)c->pci_bus; break;
  case CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID: v = (int)c->pci_device; break;
  case CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID: v = (int)c->pci_domain; break;
  case CU_DEVICE_ATTRIBUTE_TCC_DRIVER: v = 0; break;
  case CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE: v = (int)c->mem_clock_khz; break;
  case CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH: v = (int)c->mem_bus_width; break;
  case CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE: v = (int)c->l2_bytes; break;
  case CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR: v = (int)c->max_threads_per_sm; break;
  case CU_DEVICE_ATTRIBUTE_ASYNC_ENGINE_COUNT: v = 2; break;
  case CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING: v = 1; break;
  case CU_DEVICE_ATTRIBUTE_TEXTURE_PITCH_ALIGNMENT: v = 32; break;
  case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR: v = (int)c->cc_major; break;
  case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR: v = (int)c->cc_minor; break;
  case CU_DEVICE_ATTRIBUTE_STREAM_PRIORITIES_SUPPORTED: v = 1; break;
  case CU_DEVICE_ATTRIBUTE_GLOBAL_L1_CACHE_SUPPORTED: v = 1; break;
  case CU_DEVICE_ATTRIBUTE_LOCAL_L1_CACHE_SUPPORTED: v = 1; break;
  case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR: v = (int)c->shared_mem_per_sm; break;
  case CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_MULTIPROCESSOR: v = (int)c->regs_per_sm; break;
  case CU_DEVICE_ATTRIBUTE_MANAGED_MEMORY: v = 1; break;
  case CU_DEVICE_ATTRIBUTE_MULTI_GPU_BOARD: v = 0; break;
  case CU_DEVICE_ATTRIBUTE_MULTI_GPU_BOARD_GROUP_ID: v = 0; break;
  case CU_DEVICE_ATTRIBUTE_HOST_NATIVE_ATOMIC_SUPPORTED: v = 0; break;
  case CU_DEVICE_ATTRIBUTE_SINGLE_TO_DOUBLE_PRECISION_PERF_RATIO: v = 2; break;
  case CU_DEVICE_ATTRIBUTE_PAGEABLE_MEMORY_ACCESS: v = 0; break;
  case CU_DEVICE_ATTRIBUTE_CONCURRENT_MANAGED_ACCESS: v = 1; break;
  case CU_DEVICE_ATTRIBUTE_COMPUTE_PREEMPTION_SUPPORTED: v = 1; break;
  case CU_DEVICE_ATTRIBUTE_CAN_USE_HOST_POINTER_FOR_REGISTERED_MEM: v = 1; break;
  case CU_DEVICE_ATTRIBUTE_COOPERATIVE_LAUNCH: v = 1; break;
  case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN: v = (int)c->shared_mem_per_sm - 1024; break;
  case CU_DEVICE_ATTRIBUTE_HOST_REGISTER_SUPPORTED: v = 1; break;
  case CU_DEVICE_ATTRIBUTE_DIRECT_MANAGED_MEM_ACCESS_FROM_HOST: v = 0; break;
  case CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED: v = 1; break;
  case CU_DEVICE_ATTRIBUTE_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR_SUPPORTED: v = 1; break;
  case CU_DEVICE_ATTRIBUTE_MAX_BLOCKS_PER_MULTIPROCESSOR: v = (int)c->max_blocks_per_sm; break;
  case CU_DEVICE_ATTRIBUTE_MAX_PERSISTING_L2_CACHE_SIZE: v = (int)(c->l2_bytes / 4 * 3); break;
  case CU_DEVICE_ATTRIBUTE_RESERVED_SHARED_MEMORY_PER_BLOCK: v = 1024; break;
  case CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED: v = 1; break;
  case CU_DEVICE_ATTRIBUTE_MEMPOOL_SUPPORTED_HANDLE_TYPES: v = CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR; break;
  case CU_DEVICE_ATTRIBUTE_CLUSTER_LAUNCH: v = c->cc_major >= 9; break;
  case CU_DEVICE_ATTRIBUTE_IPC_EVENT_SUPPORTED: v = 0; break;
  case CU_DEVICE_ATTRIBUTE_NUMA_CONFIG: v = 0; break;
  case CU_DEVICE_ATTRIBUTE_NUMA_ID: v = -1; break;
  case CU_DEVICE_ATTRIBUTE_MPS_ENABLED: v = 0; break;
  case CU_DEVICE_ATTRIBUTE_HOST_NUMA_ID: v = c->numa_node; break;
  default:
    if ((int)attrib <= 0 || attrib >= CU_DEVICE_ATTRIBUTE_MAX)
      return -1;
    v = 0;
    break;
  }
  *ret = v;
  return 0;
}

VGP_EXPORT CUresult cuDeviceGetAttribute(int *pi, CUdevice_attribute attrib, CUdevice dev) {
  CUresult r = vgp__device_ok(dev);
  if (r != CUDA_SUCCESS)
    return r;
  if (pi == NULL)
    return CUDA_ERROR_INVALID_VALUE;
  if (vgp__attribute(vgp__cfg(dev), attrib, pi) < 0)
    return CUDA_ERROR_INVALID_VALUE;
  return CUDA_SUCCESS;
}

VGP_EXPORT CUresult cuDeviceGetPCIBusId(char *pciBusId, int len, CUdevice dev) {
  CUresult r = vgp__device_ok(dev);
  if (r != CUDA_SUCCESS)
    return r;
  if (pciBusId == NULL || len <= 0)
    return CUDA_ERROR_INVALID_VALUE;
  /* The driver API uses a 4-digit domain: "0000:17:00.0". */
  const struct vgp_sim_device_config *c = vgp__cfg(dev);
  snprintf(pciBusId, (size_t)len, "%04x:%02x:%02x.0", c->pci_domain, c->pci_bus,
           c->pci_device);
  return CUDA_SUCCESS;
}

VGP_EXPORT CUresult cuDeviceGetByPCIBusId(CUdevice *dev, const char *pciBusId) {
  CUresult r = vgp__cu_check_init();
  if (r != CUDA_SUCCESS)
    return r;
  if (dev == NULL || pciBusId == NULL)
    return CUDA_ERROR_INVALID_VALUE;
  unsigned dom = 0, bus = 0, device = 0, fn = 0;
  int n = sscanf(pciBusId, "%x:%x:%x.%x", &dom, &bus, &device, &fn);
  if (n != 4) {
    dom = 0;
    n = sscanf(pciBusId, "%x:%x.%x", &bus, &device, &fn);
    if (n != 3)
      return CUDA_ERROR_INVALID_VALUE;
  }
  for (int i = 0; i < g_cu.device_count; i++) {
    const struct vgp_sim_device_config *c = vgp__cfg(i);
    if (c->pci_domain == dom && c->pci_bus == bus && c->pci_device == device) {
      *dev = i;
      return CUDA_SUCCESS;
    }
  }
  return CUDA_ERROR_INVALID_DEVICE;
}

VGP_EXPORT CUresult cuDeviceCanAccessPeer(int *canAccessPeer, CUdevice dev, CUdevice peerDev) {
  CUresult r = vgp__device_ok(dev);
  if (r != CUDA_SUCCESS)
    return r;
  if (peerDev < 0 || peerDev >= g_cu.device_count)
    return CUDA_ERROR_INVALID_DEVICE;
  if (canAccessPeer == NULL)
    return CUDA_ERROR_INVALID_VALUE;
  /* Simulated devices share host memory, so peer access always works; a
   * device is not its own peer. */
  *canAccessPeer = dev != peerDev;
  return CUDA_SUCCESS;
}

VGP_EXPORT CUresult cuDeviceGetP2PAttribute(int *value, CUdevice_P2PAttribute attrib,
                                            CUdevice srcDevice, CUdevice dstDevice) {
  CUresult r = vgp__device_ok(srcDevice);
  if (r != CUDA_SUCCESS)
    return r;
  if (dstDevice < 0 || dstDevice >= g_cu.device_count || dstDevice == srcDevice)
    return CUDA_ERROR_INVALID_DEVICE;
  if (value == NULL)
    return CUDA_ERROR_INVALID_VALUE;
  uint32_t links = vgp__cfg(srcDevice)->nvlink[vgp__phys(dstDevice)];
  switch (attrib) {
  case CU_DEVICE_P2P_ATTRIBUTE_PERFORMANCE_RANK:
    *value = links > 0 ? 0 : 1;
    return CUDA_SUCCESS;
  case CU_DEVICE_P2P_ATTRIBUTE_ACCESS_SUPPORTED:
    *value = 1;
    return CUDA_SUCCESS;
  case CU_DEVICE_P2P_ATTRIBUTE_NATIVE_ATOMIC_SUPPORTED:
    *value = links > 0;
    return CUDA_SUCCESS;
  case CU_DEVICE_P2P_ATTRIBUTE_CUDA_ARRAY_ACCESS_SUPPORTED:
    *value = 1;
    return CUDA_SUCCESS;
  case CU_DEVICE_P2P_ATTRIBUTE_ONLY_PARTIAL_NATIVE_ATOMIC_SUPPORTED:
    *value = 0;
    return CUDA_SUCCESS;
  }
  return CUDA_ERROR_INVALID_VALUE;
}
