/*
 * hook_init.c - finding the real driver and reading the container's limits.
 *
 * Everything here runs once, lazily, on the first intercepted call; the
 * constructor does nothing, so a process that never calls CUDA or NVML
 * never loads either library. Configuration is looked for in this order
 * (include/vgpool/paths.h):
 *
 *   1. VGP_CONTAINER_MOUNT (/run/vgpool/container), where the node agent
 *      mounts the container's directory read-only;
 *   2. $VGPOOL_CONTAINER_DIR, set by `vgpool run`;
 *   3. HAMi's variables CUDA_DEVICE_MEMORY_LIMIT[_i], CUDA_DEVICE_SM_LIMIT[_i]
 *      and CUDA_TASK_PRIORITY, with HAMi's meaning, sharing usage through a
 *      region at $CUDA_DEVICE_MEMORY_SHARED_CACHE (or a per-user default).
 *
 * The first that exists wins, so nothing a container can set in its own
 * environment overrides limits the agent mounted.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "hook_internal.h"
#include "log.h"
#include "strutil.h"
#include "vgpool/paths.h"
#include "vgpool/units.h"

struct vgp__real_cu_table vgp__real_cu;
struct vgp__real_nvml_table vgp__real_nvml;
struct vgp__hook g_hook = {
  .lock = PTHREAD_MUTEX_INITIALIZER,
  .slot = -1,
};

static pthread_once_t vgp__init_once = PTHREAD_ONCE_INIT;
static pthread_once_t vgp__nvml_once = PTHREAD_ONCE_INIT;
static pthread_once_t vgp__dlsym_once = PTHREAD_ONCE_INIT;
static void *(*vgp__dlsym_fn)(void *, const char *);

/* HAMi compatibility: per-index limits parsed from the environment. */
static uint64_t vgp__env_memory[VGP_MAX_DEVICES];
static unsigned vgp__env_cores[VGP_MAX_DEVICES];
static int vgp__env_policy = VGP_POLICY_ELASTIC;

static void vgp__find_real_dlsym(void) {
  /* Our own dlsym is an override; the real one is the next definition.
   * glibc 2.34 moved dlsym into libc under a new version. */
  static const char *const versions[] = {"GLIBC_2.34", "GLIBC_2.2.5", "GLIBC_2.17", "GLIBC_2.0"};
  for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]) && vgp__dlsym_fn == NULL; i++)
    vgp__dlsym_fn = (void *(*)(void *, const char *))dlvsym(RTLD_NEXT, "dlsym", versions[i]);
}

void *vgp__real_dlsym(void *handle, const char *name) {
  pthread_once(&vgp__dlsym_once, vgp__find_real_dlsym);
  return vgp__dlsym_fn != NULL ? vgp__dlsym_fn(handle, name) : NULL;
}

static void vgp__refuse(const char *msg) {
  vgp__log_error("hook", "%s", msg);
  vgp__log_error("hook", "%s", "CUDA is refused (CUDA_ERROR_NOT_INITIALIZED) rather than run "
                               "without the container's limits");
  g_hook.init_error = CUDA_ERROR_NOT_INITIALIZED;
}

static void vgp__load_cuda(void) {
  const char *path = getenv("VGPOOL_REAL_LIBCUDA");
  g_hook.cuda_lib = dlopen(path != NULL && *path ? path : "libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (g_hook.cuda_lib == NULL)
    return; /* every wrapper then reports CUDA_ERROR_NOT_INITIALIZED */
#define VGP_CU_PROC(symbol, base, version, per_thread, params) \
  vgp__real_cu.symbol = (vgp_pfn_##symbol)vgp__real_dlsym(g_hook.cuda_lib, #symbol);
#include "vgpool_cuda_procs.def"
#undef VGP_CU_PROC
}

static void vgp__load_nvml(void) {
  const char *path = getenv("VGPOOL_REAL_LIBNVML");
  g_hook.nvml_lib = dlopen(path != NULL && *path ? path : "libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
  if (g_hook.nvml_lib == NULL)
    return;
#define VGP_NVML_PROC(symbol, params) \
  vgp__real_nvml.symbol = (vgp_pfn_##symbol)vgp__real_dlsym(g_hook.nvml_lib, #symbol);
#define VGP_NVML_PROC_RET(type, symbol, params) VGP_NVML_PROC(symbol, params)
#include "vgpool_nvml_procs.def"
#undef VGP_NVML_PROC
#undef VGP_NVML_PROC_RET
}

int vgp__hook_nvml_load(void) {
  pthread_once(&vgp__nvml_once, vgp__load_nvml);
  return g_hook.nvml_lib != NULL ? 0 : -ENOENT;
}

/* Parses one HAMi variable; returns 0 when unset or valid. */
static int vgp__env_size(const char *name, uint64_t *ret) {
  const char *v = getenv(name);
  if (v == NULL)
    return 0;
  if (vgp_parse_size(v, ret) < 0) {
    char msg[256];
    snprintf(msg, sizeof(msg), "%s=\"%s\" is not a size (e.g. 4096m, 4Gi)", name, v);
    vgp__refuse(msg);
    return -EINVAL;
  }
  return 0;
}

static int vgp__env_percent(const char *name, unsigned *ret) {
  const char *v = getenv(name);
  if (v == NULL)
    return 0;
  unsigned p;
  /* HAMi: 0 (or unset) means no limit. */
  if (strcmp(v, "0") == 0) {
    *ret = 100;
    return 0;
  }
  if (vgp_parse_percent(v, 1, 100, &p) < 0) {
    char msg[256];
    snprintf(msg, sizeof(msg), "%s=\"%s\" is not a share in percent (1..100, 0 = none)", name, v);
    vgp__refuse(msg);
    return -EINVAL;
  }
  *ret = p;
  return 0;
}

static int vgp__env_configured(void) {
  extern char **environ;
  for (char **e = environ; e != NULL && *e != NULL; e++)
    if (strncmp(*e, "CUDA_DEVICE_MEMORY_LIMIT", 24) == 0 ||
        strncmp(*e, "CUDA_DEVICE_SM_LIMIT", 20) == 0 || strncmp(*e, "CUDA_TASK_PRIORITY=", 19) == 0)
      return 1;
  return 0;
}

static void vgp__config_env(void) {
  uint64_t all_mem = 0;
  unsigned all_cores = 100;
  long priority = 1;
  if (vgp__env_size("CUDA_DEVICE_MEMORY_LIMIT", &all_mem) < 0 ||
      vgp__env_percent("CUDA_DEVICE_SM_LIMIT", &all_cores) < 0)
    return;
  for (int i = 0; i < VGP_MAX_DEVICES; i++) {
    char name[64];
    vgp__env_memory[i] = all_mem;
    vgp__env_cores[i] = all_cores;
    snprintf(name, sizeof(name), "CUDA_DEVICE_MEMORY_LIMIT_%d", i);
    if (vgp__env_size(name, &vgp__env_memory[i]) < 0)
      return;
    snprintf(name, sizeof(name), "CUDA_DEVICE_SM_LIMIT_%d", i);
    if (vgp__env_percent(name, &vgp__env_cores[i]) < 0)
      return;
  }
  const char *p = getenv("CUDA_TASK_PRIORITY");
  if (p != NULL && vgp_parse_int(p, -1000, 1000, &priority) < 0) {
    char msg[256];
    snprintf(msg, sizeof(msg), "CUDA_TASK_PRIORITY=\"%s\" is not an integer", p);
    vgp__refuse(msg);
    return;
  }
  g_hook.limits.priority = (int)priority;
  /* HAMi's GPU_CORE_UTILIZATION_POLICY: by default a share only binds
   * while others contend (our elastic), "force" always binds (hard),
   * "disable" turns compute limits off. */
  const char *policy = getenv("GPU_CORE_UTILIZATION_POLICY");
  vgp__env_policy = VGP_POLICY_ELASTIC;
  if (policy != NULL && strcasecmp(policy, "force") == 0)
    vgp__env_policy = VGP_POLICY_HARD;
  else if (policy != NULL && strcasecmp(policy, "disable") == 0)
    for (int i = 0; i < VGP_MAX_DEVICES; i++)
      vgp__env_cores[i] = 100;
  else if (policy != NULL && *policy != '\0' && strcasecmp(policy, "default") != 0) {
    char msg[256];
    snprintf(msg, sizeof(msg), "GPU_CORE_UTILIZATION_POLICY=\"%s\" is not default, force or disable", policy);
    vgp__refuse(msg);
    return;
  }
  char path[4096], err[512];
  const char *shared = getenv("CUDA_DEVICE_MEMORY_SHARED_CACHE");
  if (shared != NULL && *shared != '\0')
    vgp__strlcpy(path, shared, sizeof(path));
  else
    snprintf(path, sizeof(path), "/tmp/vgpool-compat-%u.region", (unsigned)getuid());
  if (vgp__region_open_or_create(&g_hook.region, path, err, sizeof(err)) < 0)
    vgp__refuse(err);
}

static void vgp__config_file(const char *dir) {
  char path[4096], err[768];
  snprintf(path, sizeof(path), "%s/%s", dir, VGP_LIMITS_NAME);
  if (vgp_limits_load(path, &g_hook.limits, err, sizeof(err)) < 0) {
    vgp__refuse(err);
    return;
  }
  snprintf(path, sizeof(path), "%s/%s", dir, VGP_REGION_NAME);
  if (vgp__region_open(&g_hook.region, path, 1, err, sizeof(err)) < 0)
    vgp__refuse(err);
}

static void vgp__init_once_fn(void) {
  pthread_once(&vgp__dlsym_once, vgp__find_real_dlsym);
  vgp__hmap_init(&g_hook.recs, sizeof(struct vgp__rec));
  const char *dir = NULL;
  if (access(VGP_CONTAINER_MOUNT "/" VGP_LIMITS_NAME, F_OK) == 0) {
    dir = VGP_CONTAINER_MOUNT;
  } else {
    const char *env = getenv("VGPOOL_CONTAINER_DIR");
    if (env != NULL && *env != '\0')
      dir = env;
  }
  int mode = VGP_MODE_OFF;
  if (dir != NULL) {
    mode = VGP_MODE_FILE;
    vgp__strlcpy(g_hook.container_dir, dir, sizeof(g_hook.container_dir));
    vgp__config_file(dir);
  } else if (vgp__env_configured()) {
    mode = VGP_MODE_ENV;
    vgp__config_env();
  }
  vgp__load_cuda();
  __atomic_store_n(&g_hook.mode, mode, __ATOMIC_RELEASE);
}

void vgp__hook_init(void) { pthread_once(&vgp__init_once, vgp__init_once_fn); }

static void vgp__format_uuid(const CUuuid *u, char *buf, size_t len) {
  const unsigned char *b = (const unsigned char *)u->bytes;
  snprintf(buf, len,
           "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
           b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
           b[15]);
}

CUresult vgp__hook_map_devices(void) {
  pthread_mutex_lock(&g_hook.lock);
  if (g_hook.devices_mapped || g_hook.init_error != CUDA_SUCCESS) {
    CUresult r = g_hook.init_error;
    pthread_mutex_unlock(&g_hook.lock);
    return r;
  }
  int count = 0;
  CUresult r = vgp__real_cu.cuDeviceGetCount(&count);
  if (r != CUDA_SUCCESS) {
    pthread_mutex_unlock(&g_hook.lock);
    return r;
  }
  if (count > VGP_MAX_DEVICES)
    count = VGP_MAX_DEVICES;
  for (int i = 0; i < count; i++) {
    struct vgp__hdev *h = &g_hook.dev[i];
    CUuuid u;
    size_t total = 0;
    if (vgp__real_cu.cuDeviceGetUuid(&u, i) != CUDA_SUCCESS ||
        vgp__real_cu.cuDeviceTotalMem_v2(&total, i) != CUDA_SUCCESS) {
      pthread_mutex_unlock(&g_hook.lock);
      return CUDA_ERROR_NOT_INITIALIZED;
    }
    vgp__format_uuid(&u, h->uuid, sizeof(h->uuid));
    h->cores = 100;
    h->policy = VGP_POLICY_HARD;
    if (g_hook.mode == VGP_MODE_FILE) {
      const struct vgp_device_limit *l = vgp_limits_find(&g_hook.limits, h->uuid);
      int rd = l != NULL ? vgp__region_device(&g_hook.region, h->uuid, 0, 0) : -ENOENT;
      if (rd < 0) {
        char msg[256];
        snprintf(msg, sizeof(msg), "device %s is visible but is not assigned to container %s",
                 h->uuid, g_hook.limits.container);
        vgp__refuse(msg);
        pthread_mutex_unlock(&g_hook.lock);
        return g_hook.init_error;
      }
      h->region_dev = rd;
      h->limit = l->memory;
      h->cores = l->cores;
      h->policy = l->policy;
    } else {
      h->limit = vgp__env_memory[i];
      h->cores = vgp__env_cores[i];
      h->policy = vgp__env_policy;
      h->region_dev = vgp__region_device(&g_hook.region, h->uuid, 1, h->limit);
      if (h->region_dev < 0) {
        vgp__refuse("the shared region has no room for another device");
        pthread_mutex_unlock(&g_hook.lock);
        return g_hook.init_error;
      }
    }
    /* A quota larger than the board means the board. */
    if (h->limit > total)
      h->limit = total;
  }
  g_hook.ndev = count;
  vgp__share_setup();
  /* A process that starts CUDA takes its place in the container now, so
   * it is listed as one of the container's processes and a full region is
   * reported here, not at some later allocation. */
  if (vgp__ensure_slot_locked() < 0) {
    pthread_mutex_unlock(&g_hook.lock);
    return g_hook.init_error;
  }
  __atomic_store_n(&g_hook.devices_mapped, 1, __ATOMIC_RELEASE);
  pthread_mutex_unlock(&g_hook.lock);
  return CUDA_SUCCESS;
}

/* The library must not keep the parent's slot alive in a forked child (the
 * byte lock lives in the shared open file description), and a child that
 * uses CUDA claims its own. */
static void vgp__atfork_child(void) {
  if (g_hook.region.r != NULL && g_hook.region.shm.fd >= 0) {
    close(g_hook.region.shm.fd);
    g_hook.region.shm.fd = -1;
  }
  g_hook.slot = -1;
  g_hook.region.own_slot = -1;
  pthread_mutex_init(&g_hook.lock, NULL);
  pthread_mutex_init(&g_hook.region.thread_lock, NULL);
  pthread_mutex_init(&g_hook.region.reclaim_lock, NULL);
}

__attribute__((constructor)) static void vgp__hook_constructor(void) {
  pthread_atfork(NULL, NULL, vgp__atfork_child);
}
