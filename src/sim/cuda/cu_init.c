/*
 * cu_init.c - initialization, versions, error strings, entry points and the
 * handle registry of the simulated CUDA driver.
 *
 * cuInit opens the node state (node.h) from the environment. A bad device
 * spec or config fails it with CUDA_ERROR_NO_DEVICE and a bad state file
 * (foreign, stale version, truncated) with CUDA_ERROR_OPERATING_SYSTEM; both
 * log one line naming what is wrong (log.h: VGPOOL_LOG, error level by
 * default) and every later call returns CUDA_ERROR_NOT_INITIALIZED, like a
 * real driver that failed to initialize.
 *
 * cuGetProcAddress resolves a base name, a CUDA version and stream flags to
 * one exported variant using the table in abi/vgpool_cuda_procs.def, the
 * same way NVIDIA's driver does.
 */
#include <errno.h>
#include <pthread.h>
#include <search.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cu_internal.h"
#include "log.h"

struct vgp__cu_global g_cu = {
  .lock = PTHREAD_MUTEX_INITIALIZER,
  .pool_lock = PTHREAD_MUTEX_INITIALIZER,
  .slot = -1,
};

static pthread_once_t vgp__atfork_once = PTHREAD_ONCE_INIT;

static void vgp__atfork_child(void) {
  /* CUDA state does not survive fork: the worker threads are gone. Like
   * NVIDIA's driver, the child must not use it. Closing our descriptor of
   * the node file makes the parent's death release its slot even while the
   * child lives on. */
  g_cu.forked = 1;
  if (g_cu.sim.shm.fd >= 0 && g_cu.sim.node != NULL) {
    close(g_cu.sim.shm.fd);
    g_cu.sim.shm.fd = -1;
  }
  pthread_mutex_init(&g_cu.lock, NULL);
  pthread_mutex_init(&g_cu.pool_lock, NULL);
  pthread_mutex_init(&g_cu.sim.reclaim_lock, NULL);
}

static void vgp__install_atfork(void) {
  pthread_atfork(NULL, NULL, vgp__atfork_child);
}

CUresult vgp__cu_check_init(void) {
  if (__atomic_load_n(&g_cu.forked, __ATOMIC_RELAXED))
    return CUDA_ERROR_NOT_INITIALIZED;
  if (!__atomic_load_n(&g_cu.initialized, __ATOMIC_ACQUIRE))
    return CUDA_ERROR_NOT_INITIALIZED;
  return CUDA_SUCCESS;
}

CUresult vgp__from_errno(int err) {
  switch (err) {
  case -ENOMEM:
    return CUDA_ERROR_OUT_OF_MEMORY;
  case -EINVAL:
    return CUDA_ERROR_INVALID_VALUE;
  case -ENOSPC:
    return CUDA_ERROR_OUT_OF_MEMORY;
  default:
    return CUDA_ERROR_OPERATING_SYSTEM;
  }
}

/* Does entry name device d? An entry is an index, or a UUID ("GPU-..."),
 * possibly abbreviated to a unique prefix, as NVIDIA's driver accepts. */
static int vgp__visible_match(const struct vgp_sim_node *node, const char *entry, size_t len) {
  if (len == 0)
    return -1;
  int all_digits = 1;
  for (size_t i = 0; i < len; i++)
    all_digits &= entry[i] >= '0' && entry[i] <= '9';
  if (all_digits) {
    long v = strtol(entry, NULL, 10);
    return v < (long)node->device_count ? (int)v : -1;
  }
  int found = -1;
  for (uint32_t d = 0; d < node->device_count; d++) {
    const char *uuid = node->cfg[d].uuid;
    size_t skip = (len >= 4 && strncasecmp(entry, "GPU-", 4) == 0) ? 0 : 4;
    if (strncasecmp(uuid + skip, entry, len) == 0) {
      if (found >= 0)
        return -1; /* ambiguous prefix */
      found = (int)d;
    }
  }
  return found;
}

/* Applies CUDA_VISIBLE_DEVICES: the listed devices, in that order, up to
 * the first entry that is invalid or repeated (the driver's documented
 * behaviour); all devices when unset. Returns the visible count. */
static int vgp__visible_devices(const struct vgp_sim_node *node, const char *env,
                                int phys[VGP_SIM_MAX_DEVICES]) {
  int n = 0;
  if (env == NULL) {
    for (uint32_t d = 0; d < node->device_count; d++)
      phys[n++] = (int)d;
    return n;
  }
  const char *p = env;
  while (*p != '\0' && n < VGP_SIM_MAX_DEVICES) {
    while (*p == ' ')
      p++;
    size_t len = strcspn(p, ",");
    size_t trimmed = len;
    while (trimmed > 0 && p[trimmed - 1] == ' ')
      trimmed--;
    int d = vgp__visible_match(node, p, trimmed);
    if (d < 0)
      break;
    for (int i = 0; i < n; i++)
      if (phys[i] == d)
        return n;
    phys[n++] = d;
    p += len;
    if (*p == ',')
      p++;
  }
  return n;
}

VGP_EXPORT CUresult cuInit(unsigned int Flags) {
  char err[1024];
  CUresult result;

  if (Flags != 0)
    return CUDA_ERROR_INVALID_VALUE;
  if (g_cu.forked)
    return CUDA_ERROR_NOT_INITIALIZED;
  pthread_once(&vgp__atfork_once, vgp__install_atfork);
  pthread_mutex_lock(&g_cu.lock);
  if (g_cu.initialized) {
    pthread_mutex_unlock(&g_cu.lock);
    return CUDA_SUCCESS;
  }
  if (g_cu.init_result != CUDA_SUCCESS) {
    result = g_cu.init_result;
    pthread_mutex_unlock(&g_cu.lock);
    return result;
  }
  err[0] = '\0';
  int r = vgp_sim_open(&g_cu.sim, err, sizeof(err));
  if (r < 0) {
    /* A configuration the user wrote is wrong: there is no device to
     * offer. A state file we cannot use is an operating-system problem. */
    result = (r == -EINVAL) ? CUDA_ERROR_NO_DEVICE : CUDA_ERROR_OPERATING_SYSTEM;
    vgp__log_error("sim-cuda", "cuInit failed: %s", err);
    g_cu.init_result = result;
    pthread_mutex_unlock(&g_cu.lock);
    return result;
  }
  vgp__hmap_init(&g_cu.handles, sizeof(uint32_t));
  g_cu.device_count = vgp__visible_devices(g_cu.sim.node, getenv("CUDA_VISIBLE_DEVICES"), g_cu.phys);
  __atomic_store_n(&g_cu.initialized, 1, __ATOMIC_RELEASE);
  pthread_mutex_unlock(&g_cu.lock);
  return CUDA_SUCCESS;
}

VGP_EXPORT CUresult cuDriverGetVersion(int *driverVersion) {
  if (driverVersion == NULL)
    return CUDA_ERROR_INVALID_VALUE;
  if (g_cu.initialized) {
    *driverVersion = (int)g_cu.sim.node->driver_version;
    return CUDA_SUCCESS;
  }
  /* Callable before cuInit, as with NVIDIA's driver. */
  const char *env = getenv("VGPOOL_SIM_DRIVER_VERSION");
  long v = env != NULL ? strtol(env, NULL, 10) : 0;
  *driverVersion = (v >= 9000 && v <= 99990) ? (int)v : VGP_CUDA_DRIVER_VERSION_DEFAULT;
  return CUDA_SUCCESS;
}

CUresult vgp__cu_claim_slot(void) {
  /* Called with g_cu.lock held. */
  if (g_cu.slot >= 0)
    return CUDA_SUCCESS;
  int slot;
  int r = vgp_sim_slot_claim(&g_cu.sim, &slot);
  if (r < 0) {
    vgp__log_error("sim-cuda", "no free process slot on the simulated node "
                   "(%d processes are using it)", VGP_SIM_MAX_PROCS);
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  g_cu.slot = slot;
  return CUDA_SUCCESS;
}

uint64_t vgp__cu_next_id(void) {
  return __atomic_add_fetch(&g_cu.next_id, 1, __ATOMIC_RELAXED);
}

int vgp__handle_add(const void *obj, uint32_t kind) {
  pthread_mutex_lock(&g_cu.lock);
  int r = vgp__hmap_put(&g_cu.handles, (uint64_t)(uintptr_t)obj, &kind);
  pthread_mutex_unlock(&g_cu.lock);
  return r;
}

void vgp__handle_remove(const void *obj) {
  pthread_mutex_lock(&g_cu.lock);
  vgp__hmap_remove(&g_cu.handles, (uint64_t)(uintptr_t)obj, NULL);
  pthread_mutex_unlock(&g_cu.lock);
}

int vgp__handle_is(const void *obj, uint32_t kind) {
  if (obj == NULL)
    return 0;
  pthread_mutex_lock(&g_cu.lock);
  uint32_t *k = vgp__hmap_get(&g_cu.handles, (uint64_t)(uintptr_t)obj);
  int ok = k != NULL && *k == kind;
  pthread_mutex_unlock(&g_cu.lock);
  return ok;
}

/* ------------------------------------------------------------ error text */

struct vgp__errname {
  CUresult code;
  const char *name;
  const char *text;
};

static const struct vgp__errname vgp__errnames[] = {
  {CUDA_SUCCESS, "CUDA_SUCCESS", "no error"},
  {CUDA_ERROR_INVALID_VALUE, "CUDA_ERROR_INVALID_VALUE", "invalid argument"},
  {CUDA_ERROR_OUT_OF_MEMORY, "CUDA_ERROR_OUT_OF_MEMORY", "out of memory"},
  {CUDA_ERROR_NOT_INITIALIZED, "CUDA_ERROR_NOT_INITIALIZED", "initialization error"},
  {CUDA_ERROR_DEINITIALIZED, "CUDA_ERROR_DEINITIALIZED", "driver shutting down"},
  {CUDA_ERROR_PROFILER_DISABLED, "CUDA_ERROR_PROFILER_DISABLED", "profiler disabled while using external profiling tool"},
  {CUDA_ERROR_PROFILER_NOT_INITIALIZED, "CUDA_ERROR_PROFILER_NOT_INITIALIZED", "profiler not initialized"},
  {CUDA_ERROR_PROFILER_ALREADY_STARTED, "CUDA_ERROR_PROFILER_ALREADY_STARTED", "profiler already started"},
  {CUDA_ERROR_PROFILER_ALREADY_STOPPED, "CUDA_ERROR_PROFILER_ALREADY_STOPPED", "profiler already stopped"},
  {CUDA_ERROR_STUB_LIBRARY, "CUDA_ERROR_STUB_LIBRARY", "CUDA driver is a stub library"},
  {CUDA_ERROR_CALL_REQUIRES_NEWER_DRIVER, "CUDA_ERROR_CALL_REQUIRES_NEWER_DRIVER", "call requires a newer driver"},
  {CUDA_ERROR_DEVICE_UNAVAILABLE, "CUDA_ERROR_DEVICE_UNAVAILABLE", "CUDA-capable device(s) is/are busy or unavailable"},
  {CUDA_ERROR_NO_DEVICE, "CUDA_ERROR_NO_DEVICE", "no CUDA-capable device is detected"},
  {CUDA_ERROR_INVALID_DEVICE, "CUDA_ERROR_INVALID_DEVICE", "invalid device ordinal"},
  {CUDA_ERROR_DEVICE_NOT_LICENSED, "CUDA_ERROR_DEVICE_NOT_LICENSED", "device doesn't have valid grid license"},
  {CUDA_ERROR_INVALID_IMAGE, "CUDA_ERROR_INVALID_IMAGE", "device kernel image is invalid"},
  {CUDA_ERROR_INVALID_CONTEXT, "CUDA_ERROR_INVALID_CONTEXT", "invalid device context"},
  {CUDA_ERROR_CONTEXT_ALREADY_CURRENT, "CUDA_ERROR_CONTEXT_ALREADY_CURRENT", "context already current"},
  {CUDA_ERROR_MAP_FAILED, "CUDA_ERROR_MAP_FAILED", "mapping of buffer object failed"},
  {CUDA_ERROR_UNMAP_FAILED, "CUDA_ERROR_UNMAP_FAILED", "unmapping of buffer object failed"},
  {CUDA_ERROR_ARRAY_IS_MAPPED, "CUDA_ERROR_ARRAY_IS_MAPPED", "array is mapped"},
  {CUDA_ERROR_ALREADY_MAPPED, "CUDA_ERROR_ALREADY_MAPPED", "resource already mapped"},
  {CUDA_ERROR_NO_BINARY_FOR_GPU, "CUDA_ERROR_NO_BINARY_FOR_GPU", "no kernel image is available for execution on the device"},
  {CUDA_ERROR_ALREADY_ACQUIRED, "CUDA_ERROR_ALREADY_ACQUIRED", "resource already acquired"},
  {CUDA_ERROR_NOT_MAPPED, "CUDA_ERROR_NOT_MAPPED", "resource not mapped"},
  {CUDA_ERROR_NOT_MAPPED_AS_ARRAY, "CUDA_ERROR_NOT_MAPPED_AS_ARRAY", "resource not mapped as array"},
  {CUDA_ERROR_NOT_MAPPED_AS_POINTER, "CUDA_ERROR_NOT_MAPPED_AS_POINTER", "resource not mapped as pointer"},
  {CUDA_ERROR_ECC_UNCORRECTABLE, "CUDA_ERROR_ECC_UNCORRECTABLE", "uncorrectable ECC error encountered"},
  {CUDA_ERROR_UNSUPPORTED_LIMIT, "CUDA_ERROR_UNSUPPORTED_LIMIT", "limit is not supported on this architecture"},
  {CUDA_ERROR_CONTEXT_ALREADY_IN_USE, "CUDA_ERROR_CONTEXT_ALREADY_IN_USE", "exclusive-thread device already in use by a different thread"},
  {CUDA_ERROR_PEER_ACCESS_UNSUPPORTED, "CUDA_ERROR_PEER_ACCESS_UNSUPPORTED", "peer access is not supported between these two devices"},
  {CUDA_ERROR_INVALID_PTX, "CUDA_ERROR_INVALID_PTX", "a PTX JIT compilation failed"},
  {CUDA_ERROR_INVALID_GRAPHICS_CONTEXT, "CUDA_ERROR_INVALID_GRAPHICS_CONTEXT", "invalid OpenGL or DirectX context"},
  {CUDA_ERROR_NVLINK_UNCORRECTABLE, "CUDA_ERROR_NVLINK_UNCORRECTABLE", "uncorrectable NVLink error detected during the execution"},
  {CUDA_ERROR_JIT_COMPILER_NOT_FOUND, "CUDA_ERROR_JIT_COMPILER_NOT_FOUND", "PTX JIT compiler library not found"},
  {CUDA_ERROR_UNSUPPORTED_PTX_VERSION, "CUDA_ERROR_UNSUPPORTED_PTX_VERSION", "the provided PTX was compiled with an unsupported toolchain"},
  {CUDA_ERROR_JIT_COMPILATION_DISABLED, "CUDA_ERROR_JIT_COMPILATION_DISABLED", "PTX JIT compilation was disabled"},
  {CUDA_ERROR_UNSUPPORTED_EXEC_AFFINITY, "CUDA_ERROR_UNSUPPORTED_EXEC_AFFINITY", "the provided execution affinity is not supported"},
  {CUDA_ERROR_UNSUPPORTED_DEVSIDE_SYNC, "CUDA_ERROR_UNSUPPORTED_DEVSIDE_SYNC", "the provided PTX contains unsupported call to cudaDeviceSynchronize"},
  {CUDA_ERROR_CONTAINED, "CUDA_ERROR_CONTAINED", "an exception occurred on the device that is now contained"},
  {CUDA_ERROR_INVALID_SOURCE, "CUDA_ERROR_INVALID_SOURCE", "device kernel image is invalid"},
  {CUDA_ERROR_FILE_NOT_FOUND, "CUDA_ERROR_FILE_NOT_FOUND", "file not found"},
  {CUDA_ERROR_SHARED_OBJECT_SYMBOL_NOT_FOUND, "CUDA_ERROR_SHARED_OBJECT_SYMBOL_NOT_FOUND", "shared object symbol not found"},
  {CUDA_ERROR_SHARED_OBJECT_INIT_FAILED, "CUDA_ERROR_SHARED_OBJECT_INIT_FAILED", "shared object initialization failed"},
  {CUDA_ERROR_OPERATING_SYSTEM, "CUDA_ERROR_OPERATING_SYSTEM", "OS call failed or operation not supported on this OS"},
  {CUDA_ERROR_INVALID_HANDLE, "CUDA_ERROR_INVALID_HANDLE", "invalid resource handle"},
  {CUDA_ERROR_ILLEGAL_STATE, "CUDA_ERROR_ILLEGAL_STATE", "the operation cannot be performed in the present state"},
  {CUDA_ERROR_LOSSY_QUERY, "CUDA_ERROR_LOSSY_QUERY", "attempted introspection would yield lossy results"},
  {CUDA_ERROR_NOT_FOUND, "CUDA_ERROR_NOT_FOUND", "named symbol not found"},
  {CUDA_ERROR_NOT_READY, "CUDA_ERROR_NOT_READY", "device not ready"},
  {CUDA_ERROR_ILLEGAL_ADDRESS, "CUDA_ERROR_ILLEGAL_ADDRESS", "an illegal memory access was encountered"},
  {CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES, "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES", "too many resources requested for launch"},
  {CUDA_ERROR_LAUNCH_TIMEOUT, "CUDA_ERROR_LAUNCH_TIMEOUT", "the launch timed out and was terminated"},
  {CUDA_ERROR_LAUNCH_INCOMPATIBLE_TEXTURING, "CUDA_ERROR_LAUNCH_INCOMPATIBLE_TEXTURING", "launch uses incompatible texturing mode"},
  {CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED, "CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED", "peer access is already enabled"},
  {CUDA_ERROR_PEER_ACCESS_NOT_ENABLED, "CUDA_ERROR_PEER_ACCESS_NOT_ENABLED", "peer access has not been enabled"},
  {CUDA_ERROR_PRIMARY_CONTEXT_ACTIVE, "CUDA_ERROR_PRIMARY_CONTEXT_ACTIVE", "cannot set while device is active in this process"},
  {CUDA_ERROR_CONTEXT_IS_DESTROYED, "CUDA_ERROR_CONTEXT_IS_DESTROYED", "context is destroyed"},
  {CUDA_ERROR_ASSERT, "CUDA_ERROR_ASSERT", "device-side assert triggered"},
  {CUDA_ERROR_TOO_MANY_PEERS, "CUDA_ERROR_TOO_MANY_PEERS", "peer mapping resources exhausted"},
  {CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED, "CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED", "part or all of the requested memory range is already mapped"},
  {CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED, "CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED", "pointer does not correspond to a registered memory region"},
  {CUDA_ERROR_HARDWARE_STACK_ERROR, "CUDA_ERROR_HARDWARE_STACK_ERROR", "hardware stack error"},
  {CUDA_ERROR_ILLEGAL_INSTRUCTION, "CUDA_ERROR_ILLEGAL_INSTRUCTION", "an illegal instruction was encountered"},
  {CUDA_ERROR_MISALIGNED_ADDRESS, "CUDA_ERROR_MISALIGNED_ADDRESS", "misaligned address"},
  {CUDA_ERROR_INVALID_ADDRESS_SPACE, "CUDA_ERROR_INVALID_ADDRESS_SPACE", "operation not supported on global/shared address space"},
  {CUDA_ERROR_INVALID_PC, "CUDA_ERROR_INVALID_PC", "invalid program counter"},
  {CUDA_ERROR_LAUNCH_FAILED, "CUDA_ERROR_LAUNCH_FAILED", "unspecified launch failure"},
  {CUDA_ERROR_COOPERATIVE_LAUNCH_TOO_LARGE, "CUDA_ERROR_COOPERATIVE_LAUNCH_TOO_LARGE", "too many blocks in cooperative launch"},
  {CUDA_ERROR_TENSOR_MEMORY_LEAK, "CUDA_ERROR_TENSOR_MEMORY_LEAK", "tensor memory not completely freed"},
  {CUDA_ERROR_NOT_PERMITTED, "CUDA_ERROR_NOT_PERMITTED", "operation not permitted"},
  {CUDA_ERROR_NOT_SUPPORTED, "CUDA_ERROR_NOT_SUPPORTED", "operation not supported"},
  {CUDA_ERROR_SYSTEM_NOT_READY, "CUDA_ERROR_SYSTEM_NOT_READY", "system not yet initialized"},
  {CUDA_ERROR_SYSTEM_DRIVER_MISMATCH, "CUDA_ERROR_SYSTEM_DRIVER_MISMATCH", "system has unsupported display driver / cuda driver combination"},
  {CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE, "CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE", "forward compatibility was attempted on non supported HW"},
  {CUDA_ERROR_MPS_CONNECTION_FAILED, "CUDA_ERROR_MPS_CONNECTION_FAILED", "MPS client failed to connect to the MPS control daemon or the MPS server"},
  {CUDA_ERROR_MPS_RPC_FAILURE, "CUDA_ERROR_MPS_RPC_FAILURE", "the remote procedural call between the MPS server and the MPS client failed"},
  {CUDA_ERROR_MPS_SERVER_NOT_READY, "CUDA_ERROR_MPS_SERVER_NOT_READY", "MPS server is not ready to accept new MPS client requests"},
  {CUDA_ERROR_MPS_MAX_CLIENTS_REACHED, "CUDA_ERROR_MPS_MAX_CLIENTS_REACHED", "the hardware resources required to create MPS client have been exhausted"},
  {CUDA_ERROR_MPS_MAX_CONNECTIONS_REACHED, "CUDA_ERROR_MPS_MAX_CONNECTIONS_REACHED", "the hardware resources required to support device connections have been exhausted"},
  {CUDA_ERROR_MPS_CLIENT_TERMINATED, "CUDA_ERROR_MPS_CLIENT_TERMINATED", "the MPS client has been terminated by the server"},
  {CUDA_ERROR_CDP_NOT_SUPPORTED, "CUDA_ERROR_CDP_NOT_SUPPORTED", "the module is using CUDA Dynamic Parallelism, but the current configuration does not support it"},
  {CUDA_ERROR_CDP_VERSION_MISMATCH, "CUDA_ERROR_CDP_VERSION_MISMATCH", "the module uses an unsupported interface between CUDA Dynamic Parallelism runtimes"},
  {CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, "CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED", "operation not permitted when stream is capturing"},
  {CUDA_ERROR_STREAM_CAPTURE_INVALIDATED, "CUDA_ERROR_STREAM_CAPTURE_INVALIDATED", "operation failed due to a previous error during capture"},
  {CUDA_ERROR_STREAM_CAPTURE_MERGE, "CUDA_ERROR_STREAM_CAPTURE_MERGE", "operation would result in a merge of separate capture sequences"},
  {CUDA_ERROR_STREAM_CAPTURE_UNMATCHED, "CUDA_ERROR_STREAM_CAPTURE_UNMATCHED", "capture was not ended in the same stream as it began"},
  {CUDA_ERROR_STREAM_CAPTURE_UNJOINED, "CUDA_ERROR_STREAM_CAPTURE_UNJOINED", "capturing stream has unjoined work"},
  {CUDA_ERROR_STREAM_CAPTURE_ISOLATION, "CUDA_ERROR_STREAM_CAPTURE_ISOLATION", "dependency created on uncaptured work in another stream"},
  {CUDA_ERROR_STREAM_CAPTURE_IMPLICIT, "CUDA_ERROR_STREAM_CAPTURE_IMPLICIT", "operation would make the legacy stream depend on a capturing blocking stream"},
  {CUDA_ERROR_CAPTURED_EVENT, "CUDA_ERROR_CAPTURED_EVENT", "operation not permitted on an event last recorded in a capturing stream"},
  {CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD, "CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD", "attempt to terminate a thread-local capture sequence from another thread"},
  {CUDA_ERROR_TIMEOUT, "CUDA_ERROR_TIMEOUT", "wait operation timed out"},
  {CUDA_ERROR_GRAPH_EXEC_UPDATE_FAILURE, "CUDA_ERROR_GRAPH_EXEC_UPDATE_FAILURE", "the graph update was not performed because it included changes which violated constraints specific to instantiated graph update"},
  {CUDA_ERROR_EXTERNAL_DEVICE, "CUDA_ERROR_EXTERNAL_DEVICE", "an async error has occurred in an external entity outside of CUDA"},
  {CUDA_ERROR_INVALID_CLUSTER_SIZE, "CUDA_ERROR_INVALID_CLUSTER_SIZE", "a kernel launch error has occurred due to cluster misconfiguration"},
  {CUDA_ERROR_FUNCTION_NOT_LOADED, "CUDA_ERROR_FUNCTION_NOT_LOADED", "the function handle is not loaded when calling an API that requires a loaded function"},
  {CUDA_ERROR_INVALID_RESOURCE_TYPE, "CUDA_ERROR_INVALID_RESOURCE_TYPE", "one or more resources passed in are not valid resource types for the operation"},
  {CUDA_ERROR_INVALID_RESOURCE_CONFIGURATION, "CUDA_ERROR_INVALID_RESOURCE_CONFIGURATION", "one or more resources are insufficient or non-applicable for the operation"},
  {CUDA_ERROR_KEY_ROTATION, "CUDA_ERROR_KEY_ROTATION", "an error happened during the key rotation sequence"},
  {CUDA_ERROR_UNKNOWN, "CUDA_ERROR_UNKNOWN", "unknown error"},
};

static const struct vgp__errname *vgp__errname_find(CUresult code) {
  for (size_t i = 0; i < sizeof(vgp__errnames) / sizeof(vgp__errnames[0]); i++)
    if (vgp__errnames[i].code == code)
      return &vgp__errnames[i];
  return NULL;
}

VGP_EXPORT CUresult cuGetErrorString(CUresult error, const char **pStr) {
  if (pStr == NULL)
    return CUDA_ERROR_INVALID_VALUE;
  const struct vgp__errname *e = vgp__errname_find(error);
  if (e == NULL) {
    *pStr = NULL;
    return CUDA_ERROR_INVALID_VALUE;
  }
  *pStr = e->text;
  return CUDA_SUCCESS;
}

VGP_EXPORT CUresult cuGetErrorName(CUresult error, const char **pStr) {
  if (pStr == NULL)
    return CUDA_ERROR_INVALID_VALUE;
  const struct vgp__errname *e = vgp__errname_find(error);
  if (e == NULL) {
    *pStr = NULL;
    return CUDA_ERROR_INVALID_VALUE;
  }
  *pStr = e->name;
  return CUDA_SUCCESS;
}

/* ------------------------------------------------------------ entry points */

struct vgp__proc {
  const char *symbol;
  const char *base;
  int version;
  int per_thread;
  void *fn;
};

static const struct vgp__proc vgp__procs[] = {
#define VGP_CU_PROC(symbol, base, version, per_thread, params) \
  {#symbol, base, version, per_thread, (void *)&symbol},
#include "vgpool_cuda_procs.def"
#undef VGP_CU_PROC
};

/* Resolves (base, version, flags) to the newest variant introduced at or
 * before `version`; when the caller asks for per-thread default stream
 * semantics and that variant has a per-thread twin, the twin. */
static CUresult vgp__proc_lookup(const char *symbol, int version,
                                 cuuint64_t flags, void **ret_fn,
                                 CUdriverProcAddressQueryResult *ret_status) {
  const struct vgp__proc *best = NULL;
  int found_any = 0;
  int want_pt = (flags & CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM) != 0;

  for (size_t i = 0; i < sizeof(vgp__procs) / sizeof(vgp__procs[0]); i++) {
    const struct vgp__proc *p = &vgp__procs[i];
    if (strcmp(p->base, symbol) != 0 || p->per_thread)
      continue;
    found_any = 1;
    if (p->version <= version && (best == NULL || p->version > best->version))
      best = p;
  }
  if (best != NULL && want_pt) {
    /* The per-thread twin of `best` is the per-thread entry with the
     * newest version that is still not newer than the request and not
     * older than best itself. */
    const struct vgp__proc *twin = NULL;
    for (size_t i = 0; i < sizeof(vgp__procs) / sizeof(vgp__procs[0]); i++) {
      const struct vgp__proc *p = &vgp__procs[i];
      if (!p->per_thread || strcmp(p->base, symbol) != 0 || p->version > version)
        continue;
      if (twin == NULL || p->version > twin->version)
        twin = p;
    }
    if (twin != NULL)
      best = twin;
  }
  if (best == NULL) {
    *ret_fn = NULL;
    if (ret_status)
      *ret_status = found_any ? CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT
                              : CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
    return CUDA_ERROR_NOT_FOUND;
  }
  *ret_fn = best->fn;
  if (ret_status)
    *ret_status = CU_GET_PROC_ADDRESS_SUCCESS;
  return CUDA_SUCCESS;
}

static CUresult vgp__get_proc_address(const char *symbol, void **pfn,
                                      int cudaVersion, cuuint64_t flags,
                                      CUdriverProcAddressQueryResult *status) {
  const cuuint64_t known = CU_GET_PROC_ADDRESS_LEGACY_STREAM |
                           CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM;
  if (symbol == NULL || pfn == NULL || cudaVersion < 0 || (flags & ~known) != 0)
    return CUDA_ERROR_INVALID_VALUE;
  return vgp__proc_lookup(symbol, cudaVersion, flags, pfn, status);
}

VGP_EXPORT CUresult cuGetProcAddress(const char *symbol, void **pfn,
                                     int cudaVersion, cuuint64_t flags) {
  return vgp__get_proc_address(symbol, pfn, cudaVersion, flags, NULL);
}

VGP_EXPORT CUresult cuGetProcAddress_v2(const char *symbol, void **pfn,
                                        int cudaVersion, cuuint64_t flags,
                                        CUdriverProcAddressQueryResult *symbolStatus) {
  return vgp__get_proc_address(symbol, pfn, cudaVersion, flags, symbolStatus);
}
