/*
 * vgpool_nvml.h - vgpool's own declarations of the NVML subset it speaks.
 *
 * NVML (libnvidia-ml.so.1) is how monitoring tools, device plugins and
 * schedulers learn what GPUs a node has and how busy they are. vgpool both
 * implements it (the simulated libnvidia-ml.so.1, src/sim/nvml/) and will
 * intercept it (libvgpool.so, src/hook/), and must build where no NVIDIA
 * header exists. This header declares, from NVIDIA's public NVML
 * documentation, the return codes, enums, constants, struct layouts
 * (including the versioned ones, whose `version` field must hold the value
 * of the matching version macro) and function signatures vgpool uses. Names
 * are NVIDIA's, because they are the ABI; everything of vgpool's own uses
 * the vgp_ prefix.
 *
 * tests/python/test_nvml_abi.py compares every size, field offset and
 * constant declared here with NVIDIA's Python bindings (nvidia-ml-py) and,
 * when it can be installed, with NVIDIA's own nvml.h. The entry points are
 * listed once, in vgpool_nvml_procs.def.
 *
 * Target: 64-bit Linux (LP64), where `unsigned long` in the affinity masks
 * is 64 bits wide.
 */
#ifndef VGPOOL_NVML_H
#define VGPOOL_NVML_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The NVML API generation these declarations follow: NVML 13, as NVIDIA's
 * current nvml.h for CUDA 13 declares it (where older headers of the same
 * generation differ, e.g. NVML_NVLINK_MAX_LINKS was 18, the newer value is
 * used; the test names the header it compares against). */
#define NVML_API_VERSION 13
#define NVML_API_VERSION_STR "13"

/* A versioned struct's version word: its size in the low 24 bits and the
 * version number in the high 8. */
#define NVML_STRUCT_VERSION(data, ver) \
  (unsigned int)(sizeof(nvml##data##_v##ver##_t) | ((ver) << 24U))

/* Some fields hold this when their value is not available. */
#define NVML_VALUE_NOT_AVAILABLE (-1)

/* --------------------------------------------------------- return codes */

typedef enum nvmlReturn_enum {
  NVML_SUCCESS = 0,
  NVML_ERROR_UNINITIALIZED = 1,
  NVML_ERROR_INVALID_ARGUMENT = 2,
  NVML_ERROR_NOT_SUPPORTED = 3,
  NVML_ERROR_NO_PERMISSION = 4,
  NVML_ERROR_ALREADY_INITIALIZED = 5,
  NVML_ERROR_NOT_FOUND = 6,
  NVML_ERROR_INSUFFICIENT_SIZE = 7,
  NVML_ERROR_INSUFFICIENT_POWER = 8,
  NVML_ERROR_DRIVER_NOT_LOADED = 9,
  NVML_ERROR_TIMEOUT = 10,
  NVML_ERROR_IRQ_ISSUE = 11,
  NVML_ERROR_LIBRARY_NOT_FOUND = 12,
  NVML_ERROR_FUNCTION_NOT_FOUND = 13,
  NVML_ERROR_CORRUPTED_INFOROM = 14,
  NVML_ERROR_GPU_IS_LOST = 15,
  NVML_ERROR_RESET_REQUIRED = 16,
  NVML_ERROR_OPERATING_SYSTEM = 17,
  NVML_ERROR_LIB_RM_VERSION_MISMATCH = 18,
  NVML_ERROR_IN_USE = 19,
  NVML_ERROR_MEMORY = 20,
  NVML_ERROR_NO_DATA = 21,
  NVML_ERROR_VGPU_ECC_NOT_SUPPORTED = 22,
  NVML_ERROR_INSUFFICIENT_RESOURCES = 23,
  NVML_ERROR_FREQ_NOT_SUPPORTED = 24,
  NVML_ERROR_ARGUMENT_VERSION_MISMATCH = 25,
  NVML_ERROR_DEPRECATED = 26,
  NVML_ERROR_NOT_READY = 27,
  NVML_ERROR_GPU_NOT_FOUND = 28,
  NVML_ERROR_INVALID_STATE = 29,
  NVML_ERROR_RESET_TYPE_NOT_SUPPORTED = 30,
  NVML_ERROR_UNKNOWN = 999
} nvmlReturn_t;

/* ------------------------------------------------------ initialization */

#define NVML_INIT_FLAG_NO_GPUS 1      /* succeed even when no GPU is found */
#define NVML_INIT_FLAG_NO_ATTACH 2    /* do not attach the GPUs found */
#define NVML_INIT_FLAG_FORCE_INIT 4   /* attach after an earlier NO_GPUS/NO_ATTACH init */

/* ---------------------------------------------------------- buffer sizes */

#define NVML_DEVICE_INFOROM_VERSION_BUFFER_SIZE 16
#define NVML_DEVICE_UUID_BUFFER_SIZE 80
#define NVML_DEVICE_UUID_V2_BUFFER_SIZE 96
#define NVML_DEVICE_UUID_ASCII_LEN 41
#define NVML_DEVICE_PART_NUMBER_BUFFER_SIZE 80
#define NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE 80
#define NVML_SYSTEM_NVML_VERSION_BUFFER_SIZE 80
#define NVML_DEVICE_NAME_BUFFER_SIZE 64
#define NVML_DEVICE_NAME_V2_BUFFER_SIZE 96
#define NVML_DEVICE_SERIAL_BUFFER_SIZE 30
#define NVML_DEVICE_VBIOS_VERSION_BUFFER_SIZE 32
#define NVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE 32
#define NVML_DEVICE_PCI_BUS_ID_BUFFER_V2_SIZE 16

/* How busIdLegacy and busId are printed from domain, bus and device. */
#define NVML_DEVICE_PCI_BUS_ID_LEGACY_FMT "%04X:%02X:%02X.0"
#define NVML_DEVICE_PCI_BUS_ID_FMT "%08X:%02X:%02X.0"

/* ----------------------------------------------------------------- types */

typedef struct nvmlDevice_st *nvmlDevice_t;

typedef enum nvmlEnableState_enum {
  NVML_FEATURE_DISABLED = 0,
  NVML_FEATURE_ENABLED = 1
} nvmlEnableState_t;

/* PCI identity of a device (what nvmlDeviceGetPciInfo_v3 fills). busId is
 * "DDDDDDDD:BB:DD.F"; busIdLegacy is the same with a 4-digit domain. */
typedef struct nvmlPciInfo_st {
  char busIdLegacy[NVML_DEVICE_PCI_BUS_ID_BUFFER_V2_SIZE];
  unsigned int domain;
  unsigned int bus;
  unsigned int device;
  unsigned int pciDeviceId;      /* (16-bit device id << 16) | vendor id */
  unsigned int pciSubSystemId;
  char busId[NVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE];
} nvmlPciInfo_t;

/* Versioned PCI identity with the class codes (nvmlDeviceGetPciInfoExt). */
typedef struct {
  unsigned int version;          /* nvmlPciInfoExt_v1 */
  unsigned int domain;
  unsigned int bus;
  unsigned int device;
  unsigned int pciDeviceId;
  unsigned int pciSubSystemId;
  unsigned int baseClass;        /* 8-bit PCI base class code */
  unsigned int subClass;         /* 8-bit PCI sub-class code */
  char busId[NVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE];
} nvmlPciInfoExt_v1_t;
typedef nvmlPciInfoExt_v1_t nvmlPciInfoExt_t;
#define nvmlPciInfoExt_v1 NVML_STRUCT_VERSION(PciInfoExt, 1)

/* Percentages over the device's last sample period. */
typedef struct nvmlUtilization_st {
  unsigned int gpu;     /* time one or more kernels were running */
  unsigned int memory;  /* time device memory was being read or written */
} nvmlUtilization_t;

/* Device memory, v1: used includes memory the driver reserves. */
typedef struct nvmlMemory_st {
  unsigned long long total;
  unsigned long long free;
  unsigned long long used;
} nvmlMemory_t;

/* Device memory, v2: reserved is reported apart from used. */
typedef struct nvmlMemory_v2_st {
  unsigned int version;          /* nvmlMemory_v2 */
  unsigned long long total;
  unsigned long long reserved;
  unsigned long long free;
  unsigned long long used;
} nvmlMemory_v2_t;
#define nvmlMemory_v2 NVML_STRUCT_VERSION(Memory, 2)

typedef struct nvmlBAR1Memory_st {
  unsigned long long bar1Total;
  unsigned long long bar1Free;
  unsigned long long bar1Used;
} nvmlBAR1Memory_t;

/* One running process, as the legacy nvmlDeviceGetComputeRunningProcesses
 * reports it. */
typedef struct nvmlProcessInfo_v1_st {
  unsigned int pid;
  unsigned long long usedGpuMemory;  /* bytes */
} nvmlProcessInfo_v1_t;

/* One running process (the _v2 and _v3 lists). The instance ids are
 * 0xFFFFFFFF unless MIG is enabled. */
typedef struct nvmlProcessInfo_v2_st {
  unsigned int pid;
  unsigned long long usedGpuMemory;  /* bytes */
  unsigned int gpuInstanceId;
  unsigned int computeInstanceId;
} nvmlProcessInfo_v2_t, nvmlProcessInfo_t;

/* One per-process utilization sample (nvmlDeviceGetProcessUtilization).
 * timeStamp is CPU time in microseconds since the epoch. */
typedef struct nvmlProcessUtilizationSample_st {
  unsigned int pid;
  unsigned long long timeStamp;
  unsigned int smUtil;
  unsigned int memUtil;
  unsigned int encUtil;
  unsigned int decUtil;
} nvmlProcessUtilizationSample_t;

/* The same, with the JPEG and optical-flow engines, for the versioned
 * nvmlDeviceGetProcessesUtilizationInfo. */
typedef struct {
  unsigned long long timeStamp;
  unsigned int pid;
  unsigned int smUtil;
  unsigned int memUtil;
  unsigned int encUtil;
  unsigned int decUtil;
  unsigned int jpgUtil;
  unsigned int ofaUtil;
} nvmlProcessUtilizationInfo_v1_t;

typedef struct {
  unsigned int version;              /* nvmlProcessesUtilizationInfo_v1 */
  unsigned int processSamplesCount;  /* in: array size; out: entries */
  unsigned long long lastSeenTimeStamp;
  nvmlProcessUtilizationInfo_v1_t *procUtilArray;
} nvmlProcessesUtilizationInfo_v1_t;
typedef nvmlProcessesUtilizationInfo_v1_t nvmlProcessesUtilizationInfo_t;
#define nvmlProcessesUtilizationInfo_v1 \
  NVML_STRUCT_VERSION(ProcessesUtilizationInfo, 1)

/* -------------------------------------------------------------- topology */

/* How far apart two devices are on the PCIe / CPU hierarchy; the values
 * are spaced so that a larger number means farther. */
typedef enum nvmlGpuLevel_enum {
  NVML_TOPOLOGY_INTERNAL = 0,     /* two GPUs on one board */
  NVML_TOPOLOGY_SINGLE = 10,      /* behind one PCIe switch */
  NVML_TOPOLOGY_MULTIPLE = 20,    /* behind several switches, no host bridge */
  NVML_TOPOLOGY_HOSTBRIDGE = 30,  /* under the same host bridge */
  NVML_TOPOLOGY_NODE = 40,        /* on the same NUMA node */
  NVML_TOPOLOGY_SYSTEM = 50       /* anywhere in the system */
} nvmlGpuTopologyLevel_t;
#define NVML_TOPOLOGY_CPU NVML_TOPOLOGY_NODE

typedef enum nvmlGpuP2PStatus_enum {
  NVML_P2P_STATUS_OK = 0,
  NVML_P2P_STATUS_CHIPSET_NOT_SUPPORED = 1,
  NVML_P2P_STATUS_CHIPSET_NOT_SUPPORTED = NVML_P2P_STATUS_CHIPSET_NOT_SUPPORED,
  NVML_P2P_STATUS_GPU_NOT_SUPPORTED = 2,
  NVML_P2P_STATUS_IOH_TOPOLOGY_NOT_SUPPORTED = 3,
  NVML_P2P_STATUS_DISABLED_BY_REGKEY = 4,
  NVML_P2P_STATUS_NOT_SUPPORTED = 5,
  NVML_P2P_STATUS_UNKNOWN = 6
} nvmlGpuP2PStatus_t;

typedef enum nvmlGpuP2PCapsIndex_enum {
  NVML_P2P_CAPS_INDEX_READ = 0,
  NVML_P2P_CAPS_INDEX_WRITE = 1,
  NVML_P2P_CAPS_INDEX_NVLINK = 2,
  NVML_P2P_CAPS_INDEX_ATOMICS = 3,
  NVML_P2P_CAPS_INDEX_PCI = 4,
  NVML_P2P_CAPS_INDEX_PROP = NVML_P2P_CAPS_INDEX_PCI, /* deprecated name */
  NVML_P2P_CAPS_INDEX_UNKNOWN = 5
} nvmlGpuP2PCapsIndex_t;

/* Scopes of nvmlDeviceGetCpuAffinityWithinScope / GetMemoryAffinity. */
#define NVML_AFFINITY_SCOPE_NODE 0
#define NVML_AFFINITY_SCOPE_SOCKET 1
typedef unsigned int nvmlAffinityScope_t;

/* ---------------------------------------------------------------- NVLink */

#define NVML_NVLINK_MAX_LINKS 36

typedef enum nvmlNvLinkCapability_enum {
  NVML_NVLINK_CAP_P2P_SUPPORTED = 0,
  NVML_NVLINK_CAP_SYSMEM_ACCESS = 1,
  NVML_NVLINK_CAP_P2P_ATOMICS = 2,
  NVML_NVLINK_CAP_SYSMEM_ATOMICS = 3,
  NVML_NVLINK_CAP_SLI_BRIDGE = 4,
  NVML_NVLINK_CAP_VALID = 5,
  NVML_NVLINK_CAP_COUNT
} nvmlNvLinkCapability_t;

/* What sits at the far end of a link. */
typedef enum nvmlIntNvLinkDeviceType_enum {
  NVML_NVLINK_DEVICE_TYPE_GPU = 0x00,
  NVML_NVLINK_DEVICE_TYPE_IBMNPU = 0x01,
  NVML_NVLINK_DEVICE_TYPE_SWITCH = 0x02,
  NVML_NVLINK_DEVICE_TYPE_UNKNOWN = 0xFF
} nvmlIntNvLinkDeviceType_t;

/* nvmlDeviceGetNvLinkVersion reports one of these (not the bare major). */
typedef enum nvmlNvlinkVersion_enum {
  NVML_NVLINK_VERSION_INVALID = 0,
  NVML_NVLINK_VERSION_1_0 = 1,
  NVML_NVLINK_VERSION_2_0 = 2,
  NVML_NVLINK_VERSION_2_2 = 3,
  NVML_NVLINK_VERSION_3_0 = 4,
  NVML_NVLINK_VERSION_3_1 = 5,
  NVML_NVLINK_VERSION_4_0 = 6,
  NVML_NVLINK_VERSION_5_0 = 7,
  NVML_NVLINK_VERSION_6_0 = 8
} nvmlNvlinkVersion_t;

/* ------------------------------------------------ clocks, modes, sensors */

typedef enum nvmlClockType_enum {
  NVML_CLOCK_GRAPHICS = 0,
  NVML_CLOCK_SM = 1,
  NVML_CLOCK_MEM = 2,
  NVML_CLOCK_VIDEO = 3,
  NVML_CLOCK_COUNT
} nvmlClockType_t;

typedef enum nvmlComputeMode_enum {
  NVML_COMPUTEMODE_DEFAULT = 0,            /* many contexts per device */
  NVML_COMPUTEMODE_EXCLUSIVE_THREAD = 1,   /* no longer supported */
  NVML_COMPUTEMODE_PROHIBITED = 2,         /* no contexts */
  NVML_COMPUTEMODE_EXCLUSIVE_PROCESS = 3,  /* one context per device */
  NVML_COMPUTEMODE_COUNT
} nvmlComputeMode_t;

typedef enum nvmlTemperatureSensors_enum {
  NVML_TEMPERATURE_GPU = 0,      /* the die */
  NVML_TEMPERATURE_GPU_MAX = 1,  /* the hottest part of the die */
  NVML_TEMPERATURE_COUNT
} nvmlTemperatureSensors_t;

typedef enum nvmlPStates_enum {
  NVML_PSTATE_0 = 0,     /* maximum performance */
  NVML_PSTATE_1 = 1,
  NVML_PSTATE_2 = 2,
  NVML_PSTATE_3 = 3,
  NVML_PSTATE_4 = 4,
  NVML_PSTATE_5 = 5,
  NVML_PSTATE_6 = 6,
  NVML_PSTATE_7 = 7,
  NVML_PSTATE_8 = 8,
  NVML_PSTATE_9 = 9,
  NVML_PSTATE_10 = 10,
  NVML_PSTATE_11 = 11,
  NVML_PSTATE_12 = 12,
  NVML_PSTATE_13 = 13,
  NVML_PSTATE_14 = 14,
  NVML_PSTATE_15 = 15,   /* minimum performance */
  NVML_PSTATE_UNKNOWN = 32
} nvmlPstates_t;

typedef unsigned int nvmlDeviceArchitecture_t;
#define NVML_DEVICE_ARCH_KEPLER 2
#define NVML_DEVICE_ARCH_MAXWELL 3
#define NVML_DEVICE_ARCH_PASCAL 4
#define NVML_DEVICE_ARCH_VOLTA 5
#define NVML_DEVICE_ARCH_TURING 6
#define NVML_DEVICE_ARCH_AMPERE 7
#define NVML_DEVICE_ARCH_ADA 8
#define NVML_DEVICE_ARCH_HOPPER 9
#define NVML_DEVICE_ARCH_BLACKWELL 10
#define NVML_DEVICE_ARCH_UNKNOWN 0xffffffff

#include "vgpool_nvml_api.h"

#ifdef __cplusplus
}
#endif

#endif
