/*
 * nvml_init.c - initialization, error strings, system queries and device
 * enumeration of the simulated NVML.
 *
 * nvmlInit opens the node state from the environment exactly as the
 * simulated libcuda's cuInit does (vgp_sim_open: the node is created from
 * VGPOOL_SIM_DEVICES / VGPOOL_SIM_CONFIG if it does not exist yet), so an
 * NVML client that starts before any CUDA process sees the same devices.
 * What can go wrong maps onto the codes NVIDIA documents for nvmlInit:
 *
 *   malformed device spec or config, missing config   NVML_ERROR_DRIVER_NOT_LOADED
 *   state file foreign, truncated, or made for
 *   another device configuration                      NVML_ERROR_DRIVER_NOT_LOADED
 *   state file of another vgpool layout version       NVML_ERROR_LIB_RM_VERSION_MISMATCH
 *   state file or config not accessible               NVML_ERROR_NO_PERMISSION
 *   anything else                                     NVML_ERROR_UNKNOWN
 *
 * (NVIDIA's NVML reports a kernel module / library version mismatch with
 * NVML_ERROR_LIB_RM_VERSION_MISMATCH; a node file from another build is the
 * simulator's version of that.) Each failure logs one line naming the bad
 * token or file at error level (log.h: VGPOOL_LOG=off silences it), and a
 * later nvmlInit tries again, so fixing the environment or running
 * `vgpool sim reset` needs no restart.
 *
 * Init calls are reference counted; the node is unmapped when the count
 * drops to zero, under the write lock, so no query can be using it.
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "clock.h"
#include "log.h"
#include "nvml_internal.h"
#include "proc.h"
#include "strutil.h"

/* Writers first: with glibc's default preference for readers, threads
 * that query in a loop would keep nvmlInit/nvmlShutdown out forever. No
 * query takes the lock twice, which this kind of lock would not allow. */
struct vgp__nvml_global vgp__nvml = {
  .lock = PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP,
};

struct nvmlDevice_st vgp__nvml_devices[VGP_SIM_MAX_DEVICES];

static pthread_once_t vgp__nvml_once = PTHREAD_ONCE_INIT;

/* fork() while another thread holds the lock would leave the child with a
 * lock nobody will release; holding it across fork avoids that. */
static void vgp__nvml_atfork_prepare(void) {
  pthread_rwlock_wrlock(&vgp__nvml.lock);
}

static void vgp__nvml_atfork_release(void) {
  pthread_rwlock_unlock(&vgp__nvml.lock);
}

static void vgp__nvml_setup_once(void) {
  for (unsigned i = 0; i < VGP_SIM_MAX_DEVICES; i++)
    vgp__nvml_devices[i].index = i;
  pthread_atfork(vgp__nvml_atfork_prepare, vgp__nvml_atfork_release,
                 vgp__nvml_atfork_release);
}

/* --------------------------------------------------------------- queries */

nvmlReturn_t vgp__nvml_begin(struct vgp_sim_handle **ret_sim) {
  if (pthread_rwlock_rdlock(&vgp__nvml.lock) != 0)
    return NVML_ERROR_UNKNOWN;
  if (vgp__nvml.refcount == 0) {
    pthread_rwlock_unlock(&vgp__nvml.lock);
    return NVML_ERROR_UNINITIALIZED;
  }
  *ret_sim = &vgp__nvml.sim;
  return NVML_SUCCESS;
}

void vgp__nvml_end(void) {
  pthread_rwlock_unlock(&vgp__nvml.lock);
}

int vgp__nvml_index_of(nvmlDevice_t device) {
  uintptr_t p = (uintptr_t)device, base = (uintptr_t)vgp__nvml_devices;
  if (p < base || p >= base + sizeof(vgp__nvml_devices))
    return -1;
  if ((p - base) % sizeof(vgp__nvml_devices[0]) != 0)
    return -1;
  size_t index = (p - base) / sizeof(vgp__nvml_devices[0]);
  if (index >= vgp__nvml.sim.node->device_count)
    return -1;
  return (int)index;
}

nvmlReturn_t vgp__nvml_begin_device(nvmlDevice_t device,
                                    struct vgp_sim_handle **ret_sim,
                                    unsigned *ret_index) {
  struct vgp_sim_handle *sim;
  nvmlReturn_t r = vgp__nvml_begin(&sim);
  if (r != NVML_SUCCESS)
    return r;
  int index = vgp__nvml_index_of(device);
  if (index < 0) {
    vgp__nvml_end();
    return NVML_ERROR_INVALID_ARGUMENT;
  }
  *ret_sim = sim;
  *ret_index = (unsigned)index;
  return NVML_SUCCESS;
}

nvmlDevice_t vgp__nvml_handle(unsigned index) {
  return &vgp__nvml_devices[index];
}

nvmlReturn_t vgp__nvml_copy_string(char *buf, unsigned int length,
                                   const char *str) {
  size_t n = strlen(str);
  if ((size_t)length < n + 1)
    return NVML_ERROR_INSUFFICIENT_SIZE;
  memcpy(buf, str, n + 1);
  return NVML_SUCCESS;
}

uint64_t vgp__nvml_timestamp_us(uint64_t mono_ns) {
  return (uint64_t)((int64_t)(mono_ns / 1000u) + vgp__nvml.realtime_offset_us);
}

uint64_t vgp__nvml_mono_ns(uint64_t timestamp_us) {
  int64_t mono_us = (int64_t)timestamp_us - vgp__nvml.realtime_offset_us;
  return mono_us > 0 ? (uint64_t)mono_us * 1000u : 0;
}

/* Measures CLOCK_REALTIME - CLOCK_MONOTONIC, rounded to a millisecond so
 * that processes measuring a few microseconds apart agree. */
static int64_t vgp__nvml_measure_offset_us(void) {
  uint64_t m1 = vgp__now_ns();
  uint64_t rt = vgp__realtime_us();
  uint64_t m2 = vgp__now_ns();
  int64_t offset = (int64_t)rt - (int64_t)((m1 / 2 + m2 / 2) / 1000u);
  return (offset + 500) / 1000 * 1000;
}

/* ------------------------------------------------------- init, shutdown */

static nvmlReturn_t vgp__nvml_init_error(int err) {
  switch (err) {
  case -EACCES:
  case -EPERM:
  case -EROFS:
    return NVML_ERROR_NO_PERMISSION;
  case -EPROTONOSUPPORT:
    return NVML_ERROR_LIB_RM_VERSION_MISMATCH;
  case -EINVAL:
  case -ENOENT:
  case -ENOTDIR:
  case -EISDIR:
  case -EEXIST:
  case -EPROTO:
  case -EBADMSG:
  case -ENAMETOOLONG:
    return NVML_ERROR_DRIVER_NOT_LOADED;
  default:
    return NVML_ERROR_UNKNOWN;
  }
}

static nvmlReturn_t vgp__nvml_init(unsigned int flags, const char *fn) {
  char err[1024];
  nvmlReturn_t result = NVML_SUCCESS;

  /* The flags only tune how a real driver attaches GPUs that failed to
   * come up; every simulated device is always up, so all are accepted. */
  (void)flags;
  pthread_once(&vgp__nvml_once, vgp__nvml_setup_once);
  if (pthread_rwlock_wrlock(&vgp__nvml.lock) != 0)
    return NVML_ERROR_UNKNOWN;
  if (vgp__nvml.refcount > 0) {
    if (vgp__nvml.refcount < 0xffffffffu)
      vgp__nvml.refcount++;
    goto out;
  }
  err[0] = '\0';
  int r = vgp_sim_open(&vgp__nvml.sim, err, sizeof(err));
  if (r < 0) {
    result = vgp__nvml_init_error(r);
    vgp__log_error(VGP_NVML_LOG, "%s failed: %s", fn, err[0] ? err : strerror(-r));
    goto out;
  }
  if (!vgp__nvml.offset_known) {
    vgp__nvml.realtime_offset_us = vgp__nvml_measure_offset_us();
    vgp__nvml.offset_known = 1;
  }
  vgp__nvml.refcount = 1;
  vgp__nvml.ever_initialized = 1;
out:
  pthread_rwlock_unlock(&vgp__nvml.lock);
  return result;
}

VGP_EXPORT nvmlReturn_t nvmlInit(void) {
  return vgp__nvml_init(0, "nvmlInit");
}

VGP_EXPORT nvmlReturn_t nvmlInit_v2(void) {
  return vgp__nvml_init(0, "nvmlInit_v2");
}

VGP_EXPORT nvmlReturn_t nvmlInitWithFlags(unsigned int flags) {
  return vgp__nvml_init(flags, "nvmlInitWithFlags");
}

VGP_EXPORT nvmlReturn_t nvmlShutdown(void) {
  nvmlReturn_t result = NVML_SUCCESS;
  pthread_once(&vgp__nvml_once, vgp__nvml_setup_once);
  if (pthread_rwlock_wrlock(&vgp__nvml.lock) != 0)
    return NVML_ERROR_UNKNOWN;
  if (vgp__nvml.refcount == 0) {
    /* NVIDIA documents extra shutdowns as harmless once the library has
     * been initialized; before that there is nothing to shut down. */
    if (!vgp__nvml.ever_initialized)
      result = NVML_ERROR_UNINITIALIZED;
  } else if (--vgp__nvml.refcount == 0) {
    vgp_sim_close(&vgp__nvml.sim);
  }
  pthread_rwlock_unlock(&vgp__nvml.lock);
  return result;
}

/* --------------------------------------------------------- error strings */

VGP_EXPORT const char *nvmlErrorString(nvmlReturn_t result) {
  switch (result) {
  case NVML_SUCCESS: return "Success";
  case NVML_ERROR_UNINITIALIZED: return "Uninitialized";
  case NVML_ERROR_INVALID_ARGUMENT: return "Invalid Argument";
  case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
  case NVML_ERROR_NO_PERMISSION: return "Insufficient Permissions";
  case NVML_ERROR_ALREADY_INITIALIZED: return "Already Initialized";
  case NVML_ERROR_NOT_FOUND: return "Not Found";
  case NVML_ERROR_INSUFFICIENT_SIZE: return "Insufficient Size";
  case NVML_ERROR_INSUFFICIENT_POWER: return "Insufficient External Power";
  case NVML_ERROR_DRIVER_NOT_LOADED: return "Driver Not Loaded";
  case NVML_ERROR_TIMEOUT: return "Timeout";
  case NVML_ERROR_IRQ_ISSUE: return "Interrupt request issue";
  case NVML_ERROR_LIBRARY_NOT_FOUND: return "NVML Shared Library Not Found";
  case NVML_ERROR_FUNCTION_NOT_FOUND: return "Function Not Found";
  case NVML_ERROR_CORRUPTED_INFOROM: return "Corrupted infoROM";
  case NVML_ERROR_GPU_IS_LOST: return "GPU is lost";
  case NVML_ERROR_RESET_REQUIRED: return "GPU requires restart";
  case NVML_ERROR_OPERATING_SYSTEM: return "The operating system has blocked the request";
  case NVML_ERROR_LIB_RM_VERSION_MISMATCH: return "Driver/library version mismatch";
  case NVML_ERROR_IN_USE: return "In use by another client";
  case NVML_ERROR_MEMORY: return "Insufficient Memory";
  case NVML_ERROR_NO_DATA: return "No data";
  case NVML_ERROR_VGPU_ECC_NOT_SUPPORTED: return "The requested vgpu operation is not available on target device, because ECC is enabled";
  case NVML_ERROR_INSUFFICIENT_RESOURCES: return "Ran out of critical resources, other than memory";
  case NVML_ERROR_FREQ_NOT_SUPPORTED: return "The requested frequency is not supported";
  case NVML_ERROR_ARGUMENT_VERSION_MISMATCH: return "Argument version mismatch";
  case NVML_ERROR_DEPRECATED: return "The requested functionality has been deprecated";
  case NVML_ERROR_NOT_READY: return "The system is not ready for the request";
  case NVML_ERROR_GPU_NOT_FOUND: return "No GPUs were found";
  case NVML_ERROR_INVALID_STATE: return "Resource not in correct state to perform requested operation";
  case NVML_ERROR_RESET_TYPE_NOT_SUPPORTED: return "Reset not supported for given device/parameters";
  case NVML_ERROR_UNKNOWN: return "Unknown Error";
  }
  return "Unknown Error";
}

/* -------------------------------------------------------- system queries */

VGP_EXPORT nvmlReturn_t nvmlSystemGetDriverVersion(char *version,
                                                   unsigned int length) {
  struct vgp_sim_handle *sim;
  nvmlReturn_t r = vgp__nvml_begin(&sim);
  if (r != NVML_SUCCESS)
    return r;
  if (version == NULL)
    r = NVML_ERROR_INVALID_ARGUMENT;
  else
    r = vgp__nvml_copy_string(version, length, sim->node->driver_version_string);
  vgp__nvml_end();
  return r;
}

/* NVML's version is its API generation followed by the driver version
 * ("13.580.65.06"). It is the library's own and needs no nvmlInit; once
 * initialized, the driver part is the node's (the same unless the node was
 * made by another build). */
VGP_EXPORT nvmlReturn_t nvmlSystemGetNVMLVersion(char *version,
                                                 unsigned int length) {
  char text[NVML_SYSTEM_NVML_VERSION_BUFFER_SIZE];
  const char *driver = VGP_SIM_DRIVER_VERSION_STRING;
  if (version == NULL)
    return NVML_ERROR_INVALID_ARGUMENT;
  pthread_rwlock_rdlock(&vgp__nvml.lock);
  if (vgp__nvml.refcount > 0)
    driver = vgp__nvml.sim.node->driver_version_string;
  snprintf(text, sizeof(text), "%s.%.32s", NVML_API_VERSION_STR, driver);
  pthread_rwlock_unlock(&vgp__nvml.lock);
  return vgp__nvml_copy_string(version, length, text);
}

/* The CUDA version the simulated libcuda reports: the node's once NVML is
 * initialized; before that, what a node created now would report (the
 * same rule as the simulated cuDriverGetVersion, which also works before
 * initialization). */
static nvmlReturn_t vgp__nvml_cuda_version(int *cudaDriverVersion) {
  if (cudaDriverVersion == NULL)
    return NVML_ERROR_INVALID_ARGUMENT;
  pthread_rwlock_rdlock(&vgp__nvml.lock);
  if (vgp__nvml.refcount > 0) {
    *cudaDriverVersion = (int)vgp__nvml.sim.node->driver_version;
    pthread_rwlock_unlock(&vgp__nvml.lock);
    return NVML_SUCCESS;
  }
  pthread_rwlock_unlock(&vgp__nvml.lock);
  const char *env = getenv("VGPOOL_SIM_DRIVER_VERSION");
  long v = env != NULL ? strtol(env, NULL, 10) : 0;
  *cudaDriverVersion = (v >= 9000 && v <= 99990) ? (int)v : VGP_CUDA_DRIVER_VERSION_DEFAULT;
  return NVML_SUCCESS;
}

VGP_EXPORT nvmlReturn_t nvmlSystemGetCudaDriverVersion(int *cudaDriverVersion) {
  return vgp__nvml_cuda_version(cudaDriverVersion);
}

VGP_EXPORT nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int *cudaDriverVersion) {
  return vgp__nvml_cuda_version(cudaDriverVersion);
}

/* The name of a process: the command name recorded in its node slot when
 * it uses a simulated GPU, else what /proc says, truncated to length as
 * NVIDIA documents. */
VGP_EXPORT nvmlReturn_t nvmlSystemGetProcessName(unsigned int pid, char *name,
                                                 unsigned int length) {
  struct vgp_sim_handle *sim;
  char comm[sizeof(((struct vgp_sim_proc_slot *)0)->comm) + 1];
  nvmlReturn_t r = vgp__nvml_begin(&sim);
  if (r != NVML_SUCCESS)
    return r;
  if (name == NULL || length == 0 || pid == 0) {
    vgp__nvml_end();
    return NVML_ERROR_INVALID_ARGUMENT;
  }
  comm[0] = '\0';
  for (int i = 0; i < VGP_SIM_MAX_PROCS && comm[0] == '\0'; i++) {
    struct vgp_sim_proc_slot *s = &sim->node->slots[i];
    if (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != VGP_SIM_SLOT_ACTIVE ||
        (unsigned)__atomic_load_n(&s->pid, __ATOMIC_RELAXED) != pid ||
        !vgp_sim_slot_alive(sim, i))
      continue;
    memcpy(comm, s->comm, sizeof(s->comm));
    comm[sizeof(s->comm)] = '\0';
  }
  vgp__nvml_end();
  if (comm[0] == '\0' && vgp__proc_comm((pid_t)pid, comm, sizeof(comm)) < 0)
    return NVML_ERROR_NOT_FOUND;
  vgp__strlcpy(name, comm, length);
  return NVML_SUCCESS;
}

/* ----------------------------------------------------------- enumeration */

static nvmlReturn_t vgp__nvml_count(unsigned int *deviceCount) {
  struct vgp_sim_handle *sim;
  nvmlReturn_t r = vgp__nvml_begin(&sim);
  if (r != NVML_SUCCESS)
    return r;
  if (deviceCount == NULL)
    r = NVML_ERROR_INVALID_ARGUMENT;
  else
    *deviceCount = sim->node->device_count;
  vgp__nvml_end();
  return r;
}

VGP_EXPORT nvmlReturn_t nvmlDeviceGetCount(unsigned int *deviceCount) {
  return vgp__nvml_count(deviceCount);
}

VGP_EXPORT nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *deviceCount) {
  return vgp__nvml_count(deviceCount);
}

static nvmlReturn_t vgp__nvml_by_index(unsigned int index, nvmlDevice_t *device) {
  struct vgp_sim_handle *sim;
  nvmlReturn_t r = vgp__nvml_begin(&sim);
  if (r != NVML_SUCCESS)
    return r;
  if (device == NULL || index >= sim->node->device_count)
    r = NVML_ERROR_INVALID_ARGUMENT;
  else
    *device = vgp__nvml_handle(index);
  vgp__nvml_end();
  return r;
}

/* The legacy variant only differs on real systems where some GPU is not
 * accessible to the caller; every simulated device is. */
VGP_EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex(unsigned int index,
                                                   nvmlDevice_t *device) {
  return vgp__nvml_by_index(index, device);
}

VGP_EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index,
                                                      nvmlDevice_t *device) {
  return vgp__nvml_by_index(index, device);
}

VGP_EXPORT nvmlReturn_t nvmlDeviceGetHandleByUUID(const char *uuid,
                                                  nvmlDevice_t *device) {
  struct vgp_sim_handle *sim;
  nvmlReturn_t r = vgp__nvml_begin(&sim);
  if (r != NVML_SUCCESS)
    return r;
  /* A string longer than any UUID buffer is not a UUID; looking no
   * further than that also bounds the read of a caller's unterminated
   * buffer. */
  if (device == NULL || uuid == NULL ||
      strnlen(uuid, NVML_DEVICE_UUID_V2_BUFFER_SIZE) >= NVML_DEVICE_UUID_V2_BUFFER_SIZE) {
    r = NVML_ERROR_INVALID_ARGUMENT;
    goto out;
  }
  r = NVML_ERROR_NOT_FOUND;
  for (unsigned i = 0; i < sim->node->device_count; i++) {
    if (strcasecmp(sim->node->cfg[i].uuid, uuid) == 0) {
      *device = vgp__nvml_handle(i);
      r = NVML_SUCCESS;
      break;
    }
  }
out:
  vgp__nvml_end();
  return r;
}

/* Parses up to max_digits hex digits at *p; returns -1 when there are none
 * or too many. */
static long vgp__nvml_hex(const char **p, int max_digits) {
  long v = 0;
  int n = 0;
  while (isxdigit((unsigned char)**p)) {
    if (++n > max_digits)
      return -1;
    int c = tolower((unsigned char)**p);
    v = v * 16 + (isdigit(c) ? c - '0' : c - 'a' + 10);
    (*p)++;
  }
  return n == 0 ? -1 : v;
}

/* Parses "[domain:]bus:device.function" (hex; domain of up to 8 digits, as
 * both the legacy and the current bus id formats write it). */
static int vgp__nvml_parse_bus_id(const char *text, unsigned *ret_domain,
                                  unsigned *ret_bus, unsigned *ret_device,
                                  unsigned *ret_function) {
  long part[4];
  int n = 0;
  const char *p = text;
  for (;;) {
    part[n] = vgp__nvml_hex(&p, 8);
    if (part[n] < 0)
      return -EINVAL;
    n++;
    if (*p == ':' && n < 3) {
      p++;
      continue;
    }
    if (*p == '.' && n >= 2) {
      p++;
      part[n] = vgp__nvml_hex(&p, 1);
      if (part[n] < 0 || *p != '\0')
        return -EINVAL;
      n++;
      break;
    }
    return -EINVAL;
  }
  long domain = n == 4 ? part[0] : 0;
  long bus = part[n - 3], device = part[n - 2], function = part[n - 1];
  if (bus > 0xff || device > 0x1f || function > 7)
    return -EINVAL;
  *ret_domain = (unsigned)domain;
  *ret_bus = (unsigned)bus;
  *ret_device = (unsigned)device;
  *ret_function = (unsigned)function;
  return 0;
}

static nvmlReturn_t vgp__nvml_by_bus_id(const char *pciBusId,
                                        nvmlDevice_t *device) {
  struct vgp_sim_handle *sim;
  unsigned domain, bus, dev, function;
  nvmlReturn_t r = vgp__nvml_begin(&sim);
  if (r != NVML_SUCCESS)
    return r;
  if (device == NULL || pciBusId == NULL ||
      strnlen(pciBusId, NVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE) >= NVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE ||
      vgp__nvml_parse_bus_id(pciBusId, &domain, &bus, &dev, &function) < 0) {
    r = NVML_ERROR_INVALID_ARGUMENT;
    goto out;
  }
  r = NVML_ERROR_NOT_FOUND;
  for (unsigned i = 0; i < sim->node->device_count; i++) {
    const struct vgp_sim_device_config *c = &sim->node->cfg[i];
    /* Every simulated GPU is function 0 of its PCI device. */
    if (c->pci_domain == domain && c->pci_bus == bus && c->pci_device == dev &&
        function == 0) {
      *device = vgp__nvml_handle(i);
      r = NVML_SUCCESS;
      break;
    }
  }
out:
  vgp__nvml_end();
  return r;
}

VGP_EXPORT nvmlReturn_t nvmlDeviceGetHandleByPciBusId(const char *pciBusId,
                                                      nvmlDevice_t *device) {
  return vgp__nvml_by_bus_id(pciBusId, device);
}

VGP_EXPORT nvmlReturn_t nvmlDeviceGetHandleByPciBusId_v2(const char *pciBusId,
                                                         nvmlDevice_t *device) {
  return vgp__nvml_by_bus_id(pciBusId, device);
}
