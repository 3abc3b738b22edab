/*
 * nvml_view.c - enumerating the node's GPUs through a dlopen'ed NVML (see
 * nvml_view.h).
 *
 * Only the handful of entry points the CLI needs are looked up, by their
 * exported (versioned) names, with the pointer types abi/vgpool_nvml_api.h
 * generates from the single list of NVML entry points. Utilization is
 * optional: some devices and some driver setups do not report it, and `top`
 * shows "-" then.
 */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "alloc.h"
#include "cli.h"
#include "nvml_view.h"
#include "strutil.h"
#include "vgpool_nvml.h"

#define VGP__NVML_SONAME "libnvidia-ml.so.1"

struct vgp_nvml {
  void *dl;
  vgp_pfn_nvmlShutdown shutdown;
  vgp_pfn_nvmlErrorString error_string;
  vgp_pfn_nvmlDeviceGetCount_v2 get_count;
  vgp_pfn_nvmlDeviceGetHandleByIndex_v2 get_handle;
  vgp_pfn_nvmlDeviceGetUUID get_uuid;
  vgp_pfn_nvmlDeviceGetName get_name;
  vgp_pfn_nvmlDeviceGetMemoryInfo get_memory;
  vgp_pfn_nvmlDeviceGetUtilizationRates get_util; /* may be NULL */
};

static const char *vgp__nvml_strerror(const struct vgp_nvml *n, nvmlReturn_t r) {
  const char *s = n->error_string != NULL ? n->error_string(r) : NULL;
  return s != NULL ? s : "unknown NVML error";
}

/* Writes the hint that says how to get a (simulated) NVML: the exact
 * LD_LIBRARY_PATH when the simulator was built beside this vgpool. */
static void vgp__nvml_hint(char *buf, size_t len) {
  char sim[PATH_MAX], real[PATH_MAX], lib[PATH_MAX + 32];
  snprintf(sim, sizeof(sim), "%s/../sim", vgp_cli_exe_dir());
  if (realpath(sim, real) != NULL &&
      snprintf(lib, sizeof(lib), "%s/%s", real, VGP__NVML_SONAME) < (int)sizeof(lib) &&
      access(lib, R_OK) == 0)
    snprintf(buf, len,
             "to use vgpool's simulated GPU node instead, run: "
             "eval \"$(vgpool sim env)\" (or set LD_LIBRARY_PATH=%s)", real);
  else
    snprintf(buf, len,
             "to use vgpool's simulated GPU node instead, run: "
             "eval \"$(vgpool sim env)\" (or put the directory holding the "
             "simulated %s on LD_LIBRARY_PATH)", VGP__NVML_SONAME);
}

/* Looks up one symbol; returns NULL and names it in err when missing. */
static void *vgp__nvml_sym(void *dl, const char *name, char *err, size_t errlen) {
  void *p = dlsym(dl, name);
  if (p == NULL)
    vgp__errf(err, errlen, "%s has no entry point %s: the NVIDIA driver is too old "
              "or the library is not NVML", VGP__NVML_SONAME, name);
  return p;
}

int vgp_nvml_open(struct vgp_nvml **ret, char *err, size_t errlen) {
  char hint[PATH_MAX + 160];
  struct vgp_nvml *n = vgp__calloc(1, sizeof(*n));
  int r;
  if (n == NULL) {
    vgp__errf(err, errlen, "out of memory");
    return -ENOMEM;
  }
  n->dl = dlopen(VGP__NVML_SONAME, RTLD_NOW | RTLD_LOCAL);
  if (n->dl == NULL) {
    const char *why = dlerror();
    vgp__nvml_hint(hint, sizeof(hint));
    vgp__errf(err, errlen, "cannot load %s, so no GPU can be found (%s); %s",
              VGP__NVML_SONAME, why != NULL ? why : "not found", hint);
    r = -ENOENT;
    goto fail;
  }
  vgp_pfn_nvmlInit_v2 init = (vgp_pfn_nvmlInit_v2)dlsym(n->dl, "nvmlInit_v2");
  if (init == NULL)
    init = (vgp_pfn_nvmlInit_v2)vgp__nvml_sym(n->dl, "nvmlInit", err, errlen);
  n->shutdown = (vgp_pfn_nvmlShutdown)vgp__nvml_sym(n->dl, "nvmlShutdown", err, errlen);
  n->error_string = (vgp_pfn_nvmlErrorString)dlsym(n->dl, "nvmlErrorString");
  n->get_count = (vgp_pfn_nvmlDeviceGetCount_v2)vgp__nvml_sym(n->dl, "nvmlDeviceGetCount_v2",
                                                             err, errlen);
  n->get_handle = (vgp_pfn_nvmlDeviceGetHandleByIndex_v2)vgp__nvml_sym(
      n->dl, "nvmlDeviceGetHandleByIndex_v2", err, errlen);
  n->get_uuid = (vgp_pfn_nvmlDeviceGetUUID)vgp__nvml_sym(n->dl, "nvmlDeviceGetUUID", err,
                                                        errlen);
  n->get_name = (vgp_pfn_nvmlDeviceGetName)vgp__nvml_sym(n->dl, "nvmlDeviceGetName", err,
                                                        errlen);
  n->get_memory = (vgp_pfn_nvmlDeviceGetMemoryInfo)vgp__nvml_sym(
      n->dl, "nvmlDeviceGetMemoryInfo", err, errlen);
  n->get_util = (vgp_pfn_nvmlDeviceGetUtilizationRates)dlsym(n->dl,
                                                             "nvmlDeviceGetUtilizationRates");
  if (init == NULL || n->shutdown == NULL || n->get_count == NULL || n->get_handle == NULL ||
      n->get_uuid == NULL || n->get_name == NULL || n->get_memory == NULL) {
    r = -ENOSYS;
    goto fail;
  }
  nvmlReturn_t nr = init();
  if (nr != NVML_SUCCESS) {
    vgp__nvml_hint(hint, sizeof(hint));
    vgp__errf(err, errlen, "%s loaded but nvmlInit failed: %s (NVML error %d); %s",
              VGP__NVML_SONAME, vgp__nvml_strerror(n, nr), (int)nr, hint);
    r = -EIO;
    goto fail;
  }
  *ret = n;
  return 0;
fail:
  /* The library stays loaded (see vgp_nvml_close). */
  vgp__free(n);
  return r;
}

void vgp_nvml_close(struct vgp_nvml *n) {
  if (n == NULL)
    return;
  n->shutdown();
  vgp__free(n);
}

int vgp_nvml_snapshot(struct vgp_nvml *n, struct vgp_nvml_view *ret, char *err,
                      size_t errlen) {
  unsigned count = 0;
  nvmlReturn_t nr = n->get_count(&count);
  if (nr != NVML_SUCCESS) {
    vgp__errf(err, errlen, "nvmlDeviceGetCount_v2 failed: %s", vgp__nvml_strerror(n, nr));
    return -EIO;
  }
  if (count > VGP_NVML_VIEW_MAX) {
    vgp__errf(err, errlen, "NVML reports %u devices; vgpool handles at most %d per node",
              count, VGP_NVML_VIEW_MAX);
    return -E2BIG;
  }
  /* Filled in a local copy so that *ret is untouched on failure; the view
   * is a few KiB, fine on the stack of a CLI. */
  struct vgp_nvml_view v;
  memset(&v, 0, sizeof(v));
  for (unsigned i = 0; i < count; i++) {
    struct vgp_nvml_device *d = &v.dev[i];
    nvmlDevice_t h;
    char uuid[NVML_DEVICE_UUID_V2_BUFFER_SIZE];
    nvmlMemory_t mem;
    nvmlUtilization_t util;
    d->index = i;
    if ((nr = n->get_handle(i, &h)) != NVML_SUCCESS) {
      vgp__errf(err, errlen, "NVML device %u: no handle: %s", i, vgp__nvml_strerror(n, nr));
      return -EIO;
    }
    if ((nr = n->get_uuid(h, uuid, sizeof(uuid))) != NVML_SUCCESS) {
      vgp__errf(err, errlen, "NVML device %u: no UUID: %s", i, vgp__nvml_strerror(n, nr));
      return -EIO;
    }
    if (vgp__strlcpy(d->uuid, uuid, sizeof(d->uuid)) >= sizeof(d->uuid)) {
      vgp__errf(err, errlen, "NVML device %u: UUID \"%s\" is longer than %d characters", i,
                uuid, VGP_UUID_MAX - 1);
      return -ENAMETOOLONG;
    }
    if (n->get_name(h, d->name, sizeof(d->name)) != NVML_SUCCESS)
      vgp__strlcpy(d->name, "(unknown)", sizeof(d->name));
    if ((nr = n->get_memory(h, &mem)) != NVML_SUCCESS) {
      vgp__errf(err, errlen, "NVML device %u (%s): no memory information: %s", i, d->uuid,
                vgp__nvml_strerror(n, nr));
      return -EIO;
    }
    d->memory_total = mem.total;
    d->memory_used = mem.used;
    if (n->get_util != NULL && n->get_util(h, &util) == NVML_SUCCESS) {
      d->have_util = 1;
      d->util_gpu = util.gpu;
      d->util_memory = util.memory;
    }
  }
  v.count = count;
  memcpy(ret, &v, sizeof(v));
  return 0;
}

int vgp_nvml_find_uuid(const struct vgp_nvml_view *v, const char *uuid) {
  for (unsigned i = 0; i < v->count; i++)
    if (strcmp(v->dev[i].uuid, uuid) == 0)
      return (int)i;
  return -1;
}

/* The UUID without its "GPU-" or "MIG-" type prefix. */
static const char *vgp__uuid_body(const char *uuid) {
  if (strncasecmp(uuid, "GPU-", 4) == 0 || strncasecmp(uuid, "MIG-", 4) == 0)
    return uuid + 4;
  return uuid;
}

int vgp_nvml_find(const struct vgp_nvml_view *v, const char *selector, char *err,
                  size_t errlen) {
  if (selector[0] == '\0') {
    vgp__errf(err, errlen, "empty device selector");
    return -EINVAL;
  }
  if (strspn(selector, "0123456789") == strlen(selector)) {
    char *end;
    errno = 0;
    unsigned long idx = strtoul(selector, &end, 10);
    if (errno != 0 || idx >= v->count) {
      vgp__errf(err, errlen, "no device with index '%s' (this node has %u device%s: 0..%u)",
                selector, v->count, v->count == 1 ? "" : "s",
                v->count > 0 ? v->count - 1 : 0);
      return -ENOENT;
    }
    return (int)idx;
  }
  /* A UUID or a prefix of one. UUIDs are hex, so compare without case;
   * the "GPU-" prefix may be given or left out. */
  const char *want = vgp__uuid_body(selector);
  int has_type = want != selector;
  size_t wlen = strlen(want);
  int found = -1, matches = 0;
  for (unsigned i = 0; i < v->count; i++) {
    const char *uuid = v->dev[i].uuid;
    const char *body = vgp__uuid_body(uuid);
    int ok;
    if (has_type)
      ok = strncasecmp(uuid, selector, strlen(selector)) == 0;
    else
      ok = strncasecmp(body, want, wlen) == 0;
    if (!ok)
      continue;
    if (strcasecmp(has_type ? uuid : body, has_type ? selector : want) == 0)
      return (int)i; /* an exact match is never ambiguous */
    found = (int)i;
    matches++;
  }
  if (matches == 1)
    return found;
  if (matches > 1) {
    vgp__errf(err, errlen, "device '%s' is ambiguous: it is a prefix of %d UUIDs", selector,
              matches);
    return -EEXIST;
  }
  vgp__errf(err, errlen, "no device matches '%s' (not an index, a UUID or a UUID prefix)",
            selector);
  return -ENOENT;
}
