/*
 * work.c - the shared part of the workload tools (see work.h): driver
 * loading and entry-point resolution, error reporting, device and kernel
 * setup, option parsing and latency statistics.
 */
#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "vgpool/units.h"
#include "work.h"

/* --------------------------------------------------------------- messages */

static const char *vgp__prog = "vgpool-work";

void vgp_work_set_prog(const char *name) { vgp__prog = name; }

const char *vgp_work_prog(void) { return vgp__prog; }

void vgp_work_errorf(const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  fprintf(stderr, "%s: %s\n", vgp__prog, msg);
}

int vgp_work_exit_code(int r) {
  switch (r) {
  case 0:
    return VGP_WORK_EXIT_OK;
  case -ENOSPC:
    return VGP_WORK_EXIT_OOM;
  case -EINVAL:
  case -ERANGE:
    return VGP_WORK_EXIT_USAGE;
  case -EBADMSG:
    return VGP_WORK_EXIT_VERIFY;
  case -ELIBACC:
    return VGP_WORK_EXIT_NO_DRIVER;
  default:
    return VGP_WORK_EXIT_FAIL;
  }
}

/* ----------------------------------------------------------------- driver */

/* What abi/vgpool_cuda_procs.def says about each entry point: the base name
 * cuGetProcAddress knows it by, and the CUDA version that introduced it. */
struct vgp__proc_info {
  const char *symbol;
  const char *base;
  int version;
  int per_thread;
};

static const struct vgp__proc_info vgp__proc_table[] = {
#define VGP_CU_PROC(symbol, base, version, per_thread, params) \
  {#symbol, base, version, per_thread},
#include "vgpool_cuda_procs.def"
#undef VGP_CU_PROC
};

static const struct vgp__proc_info *vgp__proc_find(const char *symbol) {
  for (size_t i = 0; i < sizeof(vgp__proc_table) / sizeof(vgp__proc_table[0]); i++)
    if (strcmp(vgp__proc_table[i].symbol, symbol) == 0)
      return &vgp__proc_table[i];
  return NULL;
}

/* The cudaVersion to ask cuGetProcAddress for so that it returns exactly
 * the variant `info` names. Asking for VGP_WORK_CUDA_VERSION is what a
 * client built against CUDA 12.0 does, and is right unless a newer variant
 * of the same base already existed by then; in that case ask for the
 * variant's own version, which selects it. */
static int vgp__proc_version(const struct vgp__proc_info *info) {
  int want = VGP_WORK_CUDA_VERSION;
  if (info->version > want)
    return info->version;
  for (size_t i = 0; i < sizeof(vgp__proc_table) / sizeof(vgp__proc_table[0]); i++) {
    const struct vgp__proc_info *o = &vgp__proc_table[i];
    if (o->per_thread == info->per_thread && strcmp(o->base, info->base) == 0 &&
        o->version > info->version && o->version <= want)
      return info->version;
  }
  return want;
}

/* Resolves one entry point into *ret_fn. gpa is cuGetProcAddress_v2 or NULL
 * to use dlsym. */
static int vgp__resolve(void *lib, vgp_pfn_cuGetProcAddress_v2 gpa,
                        const char *symbol, void **ret_fn) {
  void *fn = NULL;
  if (gpa != NULL) {
    const struct vgp__proc_info *info = vgp__proc_find(symbol);
    CUdriverProcAddressQueryResult status = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
    if (info == NULL) {
      vgp_work_errorf("internal error: %s is not in vgpool_cuda_procs.def", symbol);
      return -ELIBACC;
    }
    cuuint64_t flags = info->per_thread ? CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM
                                        : CU_GET_PROC_ADDRESS_LEGACY_STREAM;
    CUresult r = gpa(info->base, &fn, vgp__proc_version(info), flags, &status);
    if (r != CUDA_SUCCESS || status != CU_GET_PROC_ADDRESS_SUCCESS)
      fn = NULL;
  }
  /* An entry point the driver does not resolve by name and version is still
   * worth a dlsym: that is how older clients find it. */
  if (fn == NULL)
    fn = dlsym(lib, symbol);
  if (fn == NULL) {
    vgp_work_errorf("libcuda.so.1 has no %s (driver too old?)", symbol);
    return -ELIBACC;
  }
  *ret_fn = fn;
  return 0;
}

int vgp_work_cu_load(struct vgp_work_cu *ret_cu) {
  struct vgp_work_cu cu;
  memset(&cu, 0, sizeof(cu));

  cu.lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (cu.lib == NULL) {
    vgp_work_errorf("cannot load the CUDA driver: %s (for the simulated driver, "
                    "set LD_LIBRARY_PATH=<build>/src/sim)", dlerror());
    return -ELIBACC;
  }

  vgp_pfn_cuGetProcAddress_v2 gpa = NULL;
  const char *how = getenv("VGPOOL_WORK_RESOLVE");
  if (how == NULL || strcmp(how, "dlsym") != 0) {
    /* dlsym returns void *; POSIX guarantees the conversion works. */
    void *p = dlsym(cu.lib, "cuGetProcAddress_v2");
    memcpy(&gpa, &p, sizeof(gpa));
  }
  cu.resolver = gpa != NULL ? "cuGetProcAddress_v2" : "dlsym";

  int r = 0;
#define VGP_WORK_RESOLVE(sym)                                                  \
  if (r == 0) {                                                                \
    void *p = NULL;                                                            \
    r = vgp__resolve(cu.lib, gpa, #sym, &p);                                   \
    memcpy(&cu.sym, &p, sizeof(cu.sym));                                       \
  }
  VGP_WORK_PROCS(VGP_WORK_RESOLVE)
#undef VGP_WORK_RESOLVE
  if (r < 0) {
    /* Nothing of the driver has run yet, so it can still be unloaded. */
    dlclose(cu.lib);
    return r;
  }

  /* From here on the library stays loaded whatever happens (see
   * vgp_work_cu_unload). */
  r = vgp_work_cu_check(&cu, cu.cuInit(0), "cuInit(0)");
  if (r < 0)
    return r;
  r = vgp_work_cu_check(&cu, cu.cuDriverGetVersion(&cu.driver_version),
                        "cuDriverGetVersion");
  if (r < 0)
    return r;
  *ret_cu = cu;
  return 0;
}

void vgp_work_cu_unload(struct vgp_work_cu *cu) {
  /* The driver is never dlclosed: its threads and atexit handlers may
   * still refer to its code, and NVIDIA documents no safe unload. */
  cu->lib = NULL;
}

int vgp_work_cu_check(const struct vgp_work_cu *cu, CUresult res,
                      const char *fmt, ...) {
  va_list ap;
  int r;

  if (res == CUDA_SUCCESS)
    return 0;
  va_start(ap, fmt);
  r = vgp_work_cu_vcheck(cu, res, 0, fmt, ap);
  va_end(ap);
  return r;
}

int vgp_work_cu_vcheck(const struct vgp_work_cu *cu, CUresult res, int quiet_oom,
                       const char *fmt, va_list ap) {
  if (res == CUDA_SUCCESS)
    return 0;
  if (res == CUDA_ERROR_OUT_OF_MEMORY && quiet_oom)
    return -ENOSPC;

  char call[256];
  vsnprintf(call, sizeof(call), fmt, ap);

  const char *name = NULL, *desc = NULL;
  if (cu == NULL || cu->cuGetErrorName == NULL || cu->cuGetErrorName(res, &name) != CUDA_SUCCESS)
    name = NULL;
  if (cu == NULL || cu->cuGetErrorString == NULL ||
      cu->cuGetErrorString(res, &desc) != CUDA_SUCCESS)
    desc = NULL;
  char code[32];
  if (name == NULL) {
    snprintf(code, sizeof(code), "CUresult %d", (int)res);
    name = code;
  }
  if (res == CUDA_ERROR_OUT_OF_MEMORY)
    vgp_work_errorf("%s failed: %s (%s): the device, or this container's "
                    "memory quota, is full", call, name, desc ? desc : "out of memory");
  else
    vgp_work_errorf("%s failed: %s (%s)", call, name, desc ? desc : "no description");
  return res == CUDA_ERROR_OUT_OF_MEMORY ? -ENOSPC : -EIO;
}

int vgp_work_device_open(const struct vgp_work_cu *cu, int ordinal,
                         struct vgp_work_device *ret_dev) {
  struct vgp_work_device d;
  int count = 0, r;
  size_t total = 0;

  memset(&d, 0, sizeof(d));
  d.ordinal = ordinal;
  r = vgp_work_cu_check(cu, cu->cuDeviceGetCount(&count), "cuDeviceGetCount");
  if (r < 0)
    return r;
  if (ordinal < 0 || ordinal >= count) {
    vgp_work_errorf("--device %d: no such device (the driver has %d)", ordinal, count);
    return -ENODEV;
  }
  r = vgp_work_cu_check(cu, cu->cuDeviceGet(&d.dev, ordinal), "cuDeviceGet(%d)", ordinal);
  if (r < 0)
    return r;
  r = vgp_work_cu_check(cu, cu->cuDeviceGetName(d.name, (int)sizeof(d.name), d.dev),
                        "cuDeviceGetName");
  if (r < 0)
    return r;
  d.name[sizeof(d.name) - 1] = '\0';
  r = vgp_work_cu_check(cu, cu->cuDeviceGetAttribute(&d.sm_count,
                                                     CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT,
                                                     d.dev),
                        "cuDeviceGetAttribute(MULTIPROCESSOR_COUNT)");
  if (r < 0)
    return r;
  r = vgp_work_cu_check(cu, cu->cuDeviceTotalMem_v2(&total, d.dev), "cuDeviceTotalMem_v2");
  if (r < 0)
    return r;
  d.total_memory = total;
  r = vgp_work_cu_check(cu, cu->cuDevicePrimaryCtxRetain(&d.ctx, d.dev),
                        "cuDevicePrimaryCtxRetain(device %d)", ordinal);
  if (r < 0)
    return r;
  r = vgp_work_cu_check(cu, cu->cuCtxSetCurrent(d.ctx), "cuCtxSetCurrent");
  if (r < 0) {
    cu->cuDevicePrimaryCtxRelease_v2(d.dev);
    return r;
  }
  if (d.sm_count <= 0)
    d.sm_count = 1;
  *ret_dev = d;
  return 0;
}

void vgp_work_device_close(const struct vgp_work_cu *cu, struct vgp_work_device *dev) {
  if (dev->ctx == NULL)
    return;
  cu->cuCtxSetCurrent(NULL);
  cu->cuDevicePrimaryCtxRelease_v2(dev->dev);
  dev->ctx = NULL;
}

/* ---------------------------------------------------------------- kernels */

#define VGP_WORK_JIT_LOG 4096

int vgp_work_kernels_load(const struct vgp_work_cu *cu, struct vgp_work_kernels *ret_k) {
  struct vgp_work_kernels k;
  char log[VGP_WORK_JIT_LOG];
  CUjit_option opts[2] = {CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES};
  void *vals[2];
  int r;

  memset(&k, 0, sizeof(k));
  log[0] = '\0';
  vals[0] = log;
  vals[1] = (void *)(uintptr_t)sizeof(log);
  r = vgp_work_cu_check(cu, cu->cuModuleLoadDataEx(&k.module, vgp_work_kernels_ptx, 2, opts, vals),
                        "cuModuleLoadDataEx(kernels.ptx)");
  if (r < 0) {
    log[sizeof(log) - 1] = '\0';
    if (log[0] != '\0')
      vgp_work_errorf("JIT log: %s", log);
    return r;
  }

  static const struct {
    const char *name;
    size_t offset;
  } fns[] = {
    {"vgpool_spin", offsetof(struct vgp_work_kernels, spin)},
    {"vgpool_fill_u32", offsetof(struct vgp_work_kernels, fill_u32)},
    {"vgpool_copy", offsetof(struct vgp_work_kernels, copy)},
    {"vgpool_axpy_f32", offsetof(struct vgp_work_kernels, axpy_f32)},
    {"vgpool_sum_u32", offsetof(struct vgp_work_kernels, sum_u32)},
  };
  for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++) {
    CUfunction f = NULL;
    r = vgp_work_cu_check(cu, cu->cuModuleGetFunction(&f, k.module, fns[i].name),
                          "cuModuleGetFunction(%s)", fns[i].name);
    if (r < 0) {
      cu->cuModuleUnload(k.module);
      return r;
    }
    memcpy((char *)&k + fns[i].offset, &f, sizeof(f));
  }
  *ret_k = k;
  return 0;
}

void vgp_work_kernels_unload(const struct vgp_work_cu *cu, struct vgp_work_kernels *k) {
  if (k->module != NULL)
    cu->cuModuleUnload(k->module);
  memset(k, 0, sizeof(*k));
}

/* ---------------------------------------------------------------- session */

int vgp_work_session_open(struct vgp_work_session *s, int ordinal, int kernels) {
  int r;
  memset(s, 0, sizeof(*s));
  r = vgp_work_cu_load(&s->cu);
  if (r < 0)
    return r;
  r = vgp_work_device_open(&s->cu, ordinal, &s->dev);
  if (r < 0)
    goto out_cu;
  if (kernels) {
    r = vgp_work_kernels_load(&s->cu, &s->k);
    if (r < 0)
      goto out_dev;
  }
  return 0;
out_dev:
  vgp_work_device_close(&s->cu, &s->dev);
out_cu:
  vgp_work_cu_unload(&s->cu);
  return r;
}

void vgp_work_session_close(struct vgp_work_session *s) {
  vgp_work_kernels_unload(&s->cu, &s->k);
  vgp_work_device_close(&s->cu, &s->dev);
  vgp_work_cu_unload(&s->cu);
}

int vgp_work_launch_spin(const struct vgp_work_cu *cu, const struct vgp_work_kernels *k,
                         CUstream stream, unsigned blocks, unsigned threads, uint64_t ns) {
  void *params[] = {&ns};
  return vgp_work_cu_check(cu, cu->cuLaunchKernel(k->spin, blocks, 1, 1, threads, 1, 1, 0, stream,
                                                  params, NULL),
                           "cuLaunchKernel(vgpool_spin, %u x %u)", blocks, threads);
}

#define VGP_WORK_DATA_THREADS 256u

/* A grid for a grid-stride kernel over n items: enough blocks to cover n
 * once, but no more than a few waves' worth, since each thread loops. */
static unsigned vgp__data_blocks(const struct vgp_work_device *dev, uint64_t n) {
  uint64_t want = (n + VGP_WORK_DATA_THREADS - 1) / VGP_WORK_DATA_THREADS;
  uint64_t cap = (uint64_t)dev->sm_count * 8;
  if (want > cap)
    want = cap;
  return want > 0 ? (unsigned)want : 1;
}

int vgp_work_launch_fill(const struct vgp_work_cu *cu, const struct vgp_work_kernels *k,
                         const struct vgp_work_device *dev, CUstream stream, CUdeviceptr ptr,
                         uint32_t value, uint64_t n) {
  void *params[] = {&ptr, &value, &n};
  unsigned blocks = vgp__data_blocks(dev, n);
  return vgp_work_cu_check(cu, cu->cuLaunchKernel(k->fill_u32, blocks, 1, 1, VGP_WORK_DATA_THREADS,
                                                  1, 1, 0, stream, params, NULL),
                           "cuLaunchKernel(vgpool_fill_u32, n=%llu)", (unsigned long long)n);
}

int vgp_work_launch_sum(const struct vgp_work_cu *cu, const struct vgp_work_kernels *k,
                        const struct vgp_work_device *dev, CUstream stream, CUdeviceptr ptr,
                        uint64_t n, CUdeviceptr out) {
  void *params[] = {&ptr, &n, &out};
  unsigned blocks = vgp__data_blocks(dev, n);
  return vgp_work_cu_check(cu, cu->cuLaunchKernel(k->sum_u32, blocks, 1, 1, VGP_WORK_DATA_THREADS,
                                                  1, 1, 0, stream, params, NULL),
                           "cuLaunchKernel(vgpool_sum_u32, n=%llu)", (unsigned long long)n);
}

int vgp_work_launch_copy(const struct vgp_work_cu *cu, const struct vgp_work_kernels *k,
                         const struct vgp_work_device *dev, CUstream stream, CUdeviceptr dst,
                         CUdeviceptr src, uint64_t bytes) {
  void *params[] = {&dst, &src, &bytes};
  unsigned blocks = vgp__data_blocks(dev, bytes / 16 + 1);
  return vgp_work_cu_check(cu, cu->cuLaunchKernel(k->copy, blocks, 1, 1, VGP_WORK_DATA_THREADS,
                                                  1, 1, 0, stream, params, NULL),
                           "cuLaunchKernel(vgpool_copy, %llu bytes)", (unsigned long long)bytes);
}

int vgp_work_launch_axpy(const struct vgp_work_cu *cu, const struct vgp_work_kernels *k,
                         const struct vgp_work_device *dev, CUstream stream, uint64_t n, float a,
                         CUdeviceptr x, CUdeviceptr y) {
  void *params[] = {&n, &a, &x, &y};
  unsigned blocks = vgp__data_blocks(dev, n);
  return vgp_work_cu_check(cu, cu->cuLaunchKernel(k->axpy_f32, blocks, 1, 1, VGP_WORK_DATA_THREADS,
                                                  1, 1, 0, stream, params, NULL),
                           "cuLaunchKernel(vgpool_axpy_f32, n=%llu)", (unsigned long long)n);
}

/* ---------------------------------------------------------------- options */

void vgp_work_args_init(struct vgp_work_args *it, int argc, char **argv) {
  it->argc = argc;
  it->argv = argv;
  it->index = 1;
}

int vgp_work_getopt(struct vgp_work_args *it, const struct vgp_work_opt *opts,
                    const char **ret_value) {
  if (it->index >= it->argc)
    return 0;
  const char *arg = it->argv[it->index++];
  const char *name;
  size_t len;
  const char *eq;

  if (strcmp(arg, "-h") == 0)
    arg = "--help";
  if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
    if (arg[0] == '-' && arg[1] != '\0' && arg[1] != '-')
      vgp_work_errorf("unknown option '%s' (options are spelled --name; try --help)", arg);
    else
      vgp_work_errorf("unexpected argument '%s' (try --help)", arg);
    return -EINVAL;
  }
  name = arg + 2;
  eq = strchr(name, '=');
  len = eq != NULL ? (size_t)(eq - name) : strlen(name);
  for (const struct vgp_work_opt *o = opts; o->name != NULL; o++) {
    if (strlen(o->name) != len || strncmp(o->name, name, len) != 0)
      continue;
    if (!o->has_value) {
      if (eq != NULL) {
        vgp_work_errorf("option '--%s' takes no value (got '%s')", o->name, arg);
        return -EINVAL;
      }
      *ret_value = NULL;
      return o->id;
    }
    if (eq != NULL) {
      *ret_value = eq + 1;
      return o->id;
    }
    if (it->index >= it->argc) {
      vgp_work_errorf("option '--%s' needs a value", o->name);
      return -EINVAL;
    }
    *ret_value = it->argv[it->index++];
    return o->id;
  }
  vgp_work_errorf("unknown option '%s' (try --help)", arg);
  return -EINVAL;
}

int vgp_work_parse_size(const char *opt, const char *text, uint64_t *ret) {
  uint64_t v;
  int r = vgp_parse_size(text, &v);
  if (r < 0) {
    vgp_work_errorf("--%s: invalid size '%s' (expected e.g. 512MiB, 4GiB or a byte count)",
                    opt, text);
    return r;
  }
  *ret = v;
  return 0;
}

int vgp_work_parse_uint(const char *opt, const char *text, uint64_t min, uint64_t max,
                        uint64_t *ret) {
  uint64_t v;
  int r = vgp_parse_u64(text, &v);
  if (r < 0) {
    vgp_work_errorf("--%s: invalid number '%s' (expected a non-negative integer)", opt, text);
    return -EINVAL;
  }
  if (v < min || v > max) {
    vgp_work_errorf("--%s: '%s' is out of range [%llu, %llu]", opt, text,
                    (unsigned long long)min, (unsigned long long)max);
    return -ERANGE;
  }
  *ret = v;
  return 0;
}

int vgp_work_parse_double(const char *opt, const char *text, double min, double max,
                          double *ret) {
  char *end = NULL;
  double v;

  errno = 0;
  v = strtod(text, &end);
  /* strtod accepts leading blanks, hex floats, "inf" and "nan"; a value
   * typed by a person is none of those. */
  if (end == text || *end != '\0' || errno != 0 || !isfinite(v) ||
      strspn(text, "0123456789.eE+-") != strlen(text)) {
    vgp_work_errorf("--%s: invalid number '%s'", opt, text);
    return -EINVAL;
  }
  if (v < min || v > max) {
    vgp_work_errorf("--%s: '%s' is out of range [%g, %g]", opt, text, min, max);
    return -ERANGE;
  }
  *ret = v;
  return 0;
}

/* ------------------------------------------------------------- statistics */

int vgp_work_samples_init(struct vgp_work_samples *s, size_t cap) {
  uint64_t *v;
  if (cap == 0)
    return -EINVAL;
  v = vgp__calloc(cap, sizeof(*v));
  if (v == NULL)
    return -ENOMEM;
  memset(s, 0, sizeof(*s));
  s->v = v;
  s->cap = cap;
  s->rng = 0x9e3779b97f4a7c15ull;
  return 0;
}

uint64_t vgp_work_rand(uint64_t *state) {
  uint64_t x = *state ? *state : 0x2545f4914f6cdd1dull;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *state = x;
  return x * 0x2545f4914f6cdd1dull;
}

void vgp_work_samples_add(struct vgp_work_samples *s, uint64_t x) {
  s->count++;
  s->sum += x;
  if (x > s->max)
    s->max = x;
  s->sorted = 0;
  if (s->n < s->cap) {
    s->v[s->n++] = x;
    return;
  }
  /* Algorithm R: the count-th sample replaces a kept one with probability
   * cap / count, which keeps every sample equally likely to be kept. */
  uint64_t j = vgp_work_rand(&s->rng) % s->count;
  if (j < s->cap)
    s->v[j] = x;
}

static int vgp__u64_cmp(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

uint64_t vgp_work_samples_percentile(struct vgp_work_samples *s, double p) {
  if (s->n == 0)
    return 0;
  if (!s->sorted) {
    qsort(s->v, s->n, sizeof(*s->v), vgp__u64_cmp);
    s->sorted = 1;
  }
  if (p <= 0)
    return s->v[0];
  if (p >= 100)
    return s->v[s->n - 1];
  /* Nearest rank: the smallest value with at least p% of samples <= it. */
  size_t rank = (size_t)ceil(p / 100.0 * (double)s->n);
  if (rank < 1)
    rank = 1;
  return s->v[rank - 1];
}

void vgp_work_samples_free(struct vgp_work_samples *s) {
  vgp__free(s->v);
  memset(s, 0, sizeof(*s));
}
