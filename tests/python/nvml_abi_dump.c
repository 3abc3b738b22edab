/*
 * nvml_abi_dump.c - prints the NVML ABI facts a header declares: struct
 * sizes, field offsets and constant values, one per line
 * ("size NAME N", "offset NAME.FIELD N", "const NAME N").
 *
 * test_nvml_abi.py compiles it twice: by the build, against vgpool's
 * abi/vgpool_nvml.h; and, when NVIDIA's nvml.h is at hand (the
 * nvidia-nvml-dev package in the test venv), against that with
 * -DVGP_ABI_REAL. The two dumps must be identical. The second compilation
 * also checks every entry point in abi/vgpool_nvml_procs.def against
 * NVIDIA's prototype, at compile time.
 */
#include <stddef.h>
#include <stdio.h>

#ifdef VGP_ABI_REAL
/* Declares the legacy entry points under their own names. */
#define NVML_NO_UNVERSIONED_FUNC_DEFS
#include <nvml.h>

#define VGP_NVML_PROC(symbol, params)                                          \
  _Static_assert(__builtin_types_compatible_p(__typeof__(&symbol),            \
                                              nvmlReturn_t(*) params),         \
                 "vgpool's signature of " #symbol " differs from NVIDIA's");
#define VGP_NVML_PROC_RET(type, symbol, params)                                \
  _Static_assert(__builtin_types_compatible_p(__typeof__(&symbol), type(*) params), \
                 "vgpool's signature of " #symbol " differs from NVIDIA's");
#include "vgpool_nvml_procs.def"
#undef VGP_NVML_PROC
#undef VGP_NVML_PROC_RET
#else
#include "vgpool_nvml.h"
#endif

#define SIZE(type) printf("size %s %zu\n", #type, sizeof(type))
#define OFF(type, field) \
  printf("offset %s.%s %zu\n", #type, #field, offsetof(type, field))
#define CONST(name) printf("const %s %lld\n", #name, (long long)(name))

static void structs(void) {
  SIZE(nvmlPciInfo_t);
  OFF(nvmlPciInfo_t, busIdLegacy);
  OFF(nvmlPciInfo_t, domain);
  OFF(nvmlPciInfo_t, bus);
  OFF(nvmlPciInfo_t, device);
  OFF(nvmlPciInfo_t, pciDeviceId);
  OFF(nvmlPciInfo_t, pciSubSystemId);
  OFF(nvmlPciInfo_t, busId);
  SIZE(nvmlPciInfoExt_v1_t);
  OFF(nvmlPciInfoExt_v1_t, version);
  OFF(nvmlPciInfoExt_v1_t, domain);
  OFF(nvmlPciInfoExt_v1_t, bus);
  OFF(nvmlPciInfoExt_v1_t, device);
  OFF(nvmlPciInfoExt_v1_t, pciDeviceId);
  OFF(nvmlPciInfoExt_v1_t, pciSubSystemId);
  OFF(nvmlPciInfoExt_v1_t, baseClass);
  OFF(nvmlPciInfoExt_v1_t, subClass);
  OFF(nvmlPciInfoExt_v1_t, busId);
  SIZE(nvmlUtilization_t);
  OFF(nvmlUtilization_t, gpu);
  OFF(nvmlUtilization_t, memory);
  SIZE(nvmlMemory_t);
  OFF(nvmlMemory_t, total);
  OFF(nvmlMemory_t, free);
  OFF(nvmlMemory_t, used);
  SIZE(nvmlMemory_v2_t);
  OFF(nvmlMemory_v2_t, version);
  OFF(nvmlMemory_v2_t, total);
  OFF(nvmlMemory_v2_t, reserved);
  OFF(nvmlMemory_v2_t, free);
  OFF(nvmlMemory_v2_t, used);
  SIZE(nvmlBAR1Memory_t);
  OFF(nvmlBAR1Memory_t, bar1Total);
  OFF(nvmlBAR1Memory_t, bar1Free);
  OFF(nvmlBAR1Memory_t, bar1Used);
  SIZE(nvmlProcessInfo_v1_t);
  OFF(nvmlProcessInfo_v1_t, pid);
  OFF(nvmlProcessInfo_v1_t, usedGpuMemory);
  SIZE(nvmlProcessInfo_v2_t);
  OFF(nvmlProcessInfo_v2_t, pid);
  OFF(nvmlProcessInfo_v2_t, usedGpuMemory);
  OFF(nvmlProcessInfo_v2_t, gpuInstanceId);
  OFF(nvmlProcessInfo_v2_t, computeInstanceId);
  SIZE(nvmlProcessInfo_t);
  OFF(nvmlProcessInfo_t, pid);
  OFF(nvmlProcessInfo_t, usedGpuMemory);
  OFF(nvmlProcessInfo_t, gpuInstanceId);
  OFF(nvmlProcessInfo_t, computeInstanceId);
  SIZE(nvmlProcessUtilizationSample_t);
  OFF(nvmlProcessUtilizationSample_t, pid);
  OFF(nvmlProcessUtilizationSample_t, timeStamp);
  OFF(nvmlProcessUtilizationSample_t, smUtil);
  OFF(nvmlProcessUtilizationSample_t, memUtil);
  OFF(nvmlProcessUtilizationSample_t, encUtil);
  OFF(nvmlProcessUtilizationSample_t, decUtil);
  SIZE(nvmlProcessUtilizationInfo_v1_t);
  OFF(nvmlProcessUtilizationInfo_v1_t, timeStamp);
  OFF(nvmlProcessUtilizationInfo_v1_t, pid);
  OFF(nvmlProcessUtilizationInfo_v1_t, smUtil);
  OFF(nvmlProcessUtilizationInfo_v1_t, memUtil);
  OFF(nvmlProcessUtilizationInfo_v1_t, encUtil);
  OFF(nvmlProcessUtilizationInfo_v1_t, decUtil);
  OFF(nvmlProcessUtilizationInfo_v1_t, jpgUtil);
  OFF(nvmlProcessUtilizationInfo_v1_t, ofaUtil);
  SIZE(nvmlProcessesUtilizationInfo_v1_t);
  OFF(nvmlProcessesUtilizationInfo_v1_t, version);
  OFF(nvmlProcessesUtilizationInfo_v1_t, processSamplesCount);
  OFF(nvmlProcessesUtilizationInfo_v1_t, lastSeenTimeStamp);
  OFF(nvmlProcessesUtilizationInfo_v1_t, procUtilArray);
  SIZE(nvmlProcessesUtilizationInfo_t);
  SIZE(nvmlDevice_t);
  SIZE(nvmlReturn_t);
  SIZE(nvmlEnableState_t);
  SIZE(nvmlGpuTopologyLevel_t);
  SIZE(nvmlGpuP2PStatus_t);
  SIZE(nvmlGpuP2PCapsIndex_t);
  SIZE(nvmlNvLinkCapability_t);
  SIZE(nvmlIntNvLinkDeviceType_t);
  SIZE(nvmlClockType_t);
  SIZE(nvmlComputeMode_t);
  SIZE(nvmlTemperatureSensors_t);
  SIZE(nvmlPstates_t);
  SIZE(nvmlDeviceArchitecture_t);
  SIZE(nvmlAffinityScope_t);
}

static void constants(void) {
  CONST(NVML_API_VERSION);
  CONST(NVML_SUCCESS);
  CONST(NVML_ERROR_UNINITIALIZED);
  CONST(NVML_ERROR_INVALID_ARGUMENT);
  CONST(NVML_ERROR_NOT_SUPPORTED);
  CONST(NVML_ERROR_NO_PERMISSION);
  CONST(NVML_ERROR_ALREADY_INITIALIZED);
  CONST(NVML_ERROR_NOT_FOUND);
  CONST(NVML_ERROR_INSUFFICIENT_SIZE);
  CONST(NVML_ERROR_INSUFFICIENT_POWER);
  CONST(NVML_ERROR_DRIVER_NOT_LOADED);
  CONST(NVML_ERROR_TIMEOUT);
  CONST(NVML_ERROR_IRQ_ISSUE);
  CONST(NVML_ERROR_LIBRARY_NOT_FOUND);
  CONST(NVML_ERROR_FUNCTION_NOT_FOUND);
  CONST(NVML_ERROR_CORRUPTED_INFOROM);
  CONST(NVML_ERROR_GPU_IS_LOST);
  CONST(NVML_ERROR_RESET_REQUIRED);
  CONST(NVML_ERROR_OPERATING_SYSTEM);
  CONST(NVML_ERROR_LIB_RM_VERSION_MISMATCH);
  CONST(NVML_ERROR_IN_USE);
  CONST(NVML_ERROR_MEMORY);
  CONST(NVML_ERROR_NO_DATA);
  CONST(NVML_ERROR_VGPU_ECC_NOT_SUPPORTED);
  CONST(NVML_ERROR_INSUFFICIENT_RESOURCES);
  CONST(NVML_ERROR_FREQ_NOT_SUPPORTED);
  CONST(NVML_ERROR_ARGUMENT_VERSION_MISMATCH);
  CONST(NVML_ERROR_DEPRECATED);
  CONST(NVML_ERROR_NOT_READY);
  CONST(NVML_ERROR_GPU_NOT_FOUND);
  CONST(NVML_ERROR_INVALID_STATE);
  CONST(NVML_ERROR_RESET_TYPE_NOT_SUPPORTED);
  CONST(NVML_ERROR_UNKNOWN);
  CONST(NVML_INIT_FLAG_NO_GPUS);
  CONST(NVML_INIT_FLAG_NO_ATTACH);
#ifdef NVML_INIT_FLAG_FORCE_INIT /* newer than some headers */
  CONST(NVML_INIT_FLAG_FORCE_INIT);
#endif
  CONST(NVML_VALUE_NOT_AVAILABLE);
  CONST(NVML_DEVICE_INFOROM_VERSION_BUFFER_SIZE);
  CONST(NVML_DEVICE_UUID_BUFFER_SIZE);
  CONST(NVML_DEVICE_UUID_V2_BUFFER_SIZE);
  CONST(NVML_DEVICE_UUID_ASCII_LEN);
  CONST(NVML_DEVICE_PART_NUMBER_BUFFER_SIZE);
  CONST(NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE);
  CONST(NVML_SYSTEM_NVML_VERSION_BUFFER_SIZE);
  CONST(NVML_DEVICE_NAME_BUFFER_SIZE);
  CONST(NVML_DEVICE_NAME_V2_BUFFER_SIZE);
  CONST(NVML_DEVICE_SERIAL_BUFFER_SIZE);
  CONST(NVML_DEVICE_VBIOS_VERSION_BUFFER_SIZE);
  CONST(NVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE);
  CONST(NVML_DEVICE_PCI_BUS_ID_BUFFER_V2_SIZE);
  CONST(nvmlPciInfoExt_v1);
  CONST(nvmlMemory_v2);
  CONST(nvmlProcessesUtilizationInfo_v1);
  CONST(NVML_FEATURE_DISABLED);
  CONST(NVML_FEATURE_ENABLED);
  CONST(NVML_TOPOLOGY_INTERNAL);
  CONST(NVML_TOPOLOGY_SINGLE);
  CONST(NVML_TOPOLOGY_MULTIPLE);
  CONST(NVML_TOPOLOGY_HOSTBRIDGE);
  CONST(NVML_TOPOLOGY_NODE);
  CONST(NVML_TOPOLOGY_SYSTEM);
  CONST(NVML_TOPOLOGY_CPU);
  CONST(NVML_P2P_STATUS_OK);
  CONST(NVML_P2P_STATUS_CHIPSET_NOT_SUPPORED);
  CONST(NVML_P2P_STATUS_CHIPSET_NOT_SUPPORTED);
  CONST(NVML_P2P_STATUS_GPU_NOT_SUPPORTED);
  CONST(NVML_P2P_STATUS_IOH_TOPOLOGY_NOT_SUPPORTED);
  CONST(NVML_P2P_STATUS_DISABLED_BY_REGKEY);
  CONST(NVML_P2P_STATUS_NOT_SUPPORTED);
  CONST(NVML_P2P_STATUS_UNKNOWN);
  CONST(NVML_P2P_CAPS_INDEX_READ);
  CONST(NVML_P2P_CAPS_INDEX_WRITE);
  CONST(NVML_P2P_CAPS_INDEX_NVLINK);
  CONST(NVML_P2P_CAPS_INDEX_ATOMICS);
  CONST(NVML_P2P_CAPS_INDEX_PCI);
  CONST(NVML_P2P_CAPS_INDEX_PROP);
  CONST(NVML_P2P_CAPS_INDEX_UNKNOWN);
  CONST(NVML_AFFINITY_SCOPE_NODE);
  CONST(NVML_AFFINITY_SCOPE_SOCKET);
  CONST(NVML_NVLINK_MAX_LINKS);
  CONST(NVML_NVLINK_CAP_P2P_SUPPORTED);
  CONST(NVML_NVLINK_CAP_SYSMEM_ACCESS);
  CONST(NVML_NVLINK_CAP_P2P_ATOMICS);
  CONST(NVML_NVLINK_CAP_SYSMEM_ATOMICS);
  CONST(NVML_NVLINK_CAP_SLI_BRIDGE);
  CONST(NVML_NVLINK_CAP_VALID);
  CONST(NVML_NVLINK_CAP_COUNT);
  CONST(NVML_NVLINK_DEVICE_TYPE_GPU);
  CONST(NVML_NVLINK_DEVICE_TYPE_IBMNPU);
  CONST(NVML_NVLINK_DEVICE_TYPE_SWITCH);
  CONST(NVML_NVLINK_DEVICE_TYPE_UNKNOWN);
  CONST(NVML_NVLINK_VERSION_INVALID);
  CONST(NVML_NVLINK_VERSION_1_0);
  CONST(NVML_NVLINK_VERSION_2_0);
  CONST(NVML_NVLINK_VERSION_2_2);
  CONST(NVML_NVLINK_VERSION_3_0);
  CONST(NVML_NVLINK_VERSION_3_1);
  CONST(NVML_NVLINK_VERSION_4_0);
  CONST(NVML_NVLINK_VERSION_5_0);
  CONST(NVML_CLOCK_GRAPHICS);
  CONST(NVML_CLOCK_SM);
  CONST(NVML_CLOCK_MEM);
  CONST(NVML_CLOCK_VIDEO);
  CONST(NVML_CLOCK_COUNT);
  CONST(NVML_COMPUTEMODE_DEFAULT);
  CONST(NVML_COMPUTEMODE_EXCLUSIVE_THREAD);
  CONST(NVML_COMPUTEMODE_PROHIBITED);
  CONST(NVML_COMPUTEMODE_EXCLUSIVE_PROCESS);
  CONST(NVML_COMPUTEMODE_COUNT);
  CONST(NVML_TEMPERATURE_GPU);
  CONST(NVML_TEMPERATURE_GPU_MAX);
  CONST(NVML_TEMPERATURE_COUNT);
  CONST(NVML_PSTATE_0);
  CONST(NVML_PSTATE_15);
  CONST(NVML_PSTATE_UNKNOWN);
  CONST(NVML_DEVICE_ARCH_KEPLER);
  CONST(NVML_DEVICE_ARCH_MAXWELL);
  CONST(NVML_DEVICE_ARCH_PASCAL);
  CONST(NVML_DEVICE_ARCH_VOLTA);
  CONST(NVML_DEVICE_ARCH_TURING);
  CONST(NVML_DEVICE_ARCH_AMPERE);
  CONST(NVML_DEVICE_ARCH_ADA);
  CONST(NVML_DEVICE_ARCH_HOPPER);
  CONST(NVML_DEVICE_ARCH_BLACKWELL);
  CONST(NVML_DEVICE_ARCH_UNKNOWN);
}

int main(void) {
  structs();
  constants();
  return fflush(stdout) == 0 ? 0 : 1;
}
