/*
 * work.h - what the workload tools (vgpool-burn, vgpool-alloc) share.
 *
 * The workloads are ordinary CUDA driver API clients: they must behave the
 * same on NVIDIA's driver and on the simulated one, with or without
 * libvgpool.so in front. So they never link against a libcuda; they
 * dlopen("libcuda.so.1") at run time, which picks up whichever driver the
 * dynamic loader finds (LD_LIBRARY_PATH=<build>/src/sim selects the
 * simulator), and resolve every entry point through cuGetProcAddress_v2, the
 * path the CUDA runtime and PyTorch use, falling back to dlsym of the exact
 * versioned symbol on drivers older than CUDA 12.0 (or when
 * VGPOOL_WORK_RESOLVE=dlsym asks for it, to exercise that path too).
 *
 * This module holds everything that is not specific to one tool: loading the
 * driver, reporting failed calls by name, opening a device, loading the
 * embedded kernels (kernels.ptx) and launching them, option parsing with
 * messages that name the bad token, and latency percentiles.
 *
 * Errors. Functions return 0 or a negative errno value, and print what went
 * wrong (prefixed with the tool's name) before returning it, so callers only
 * unwind. The errno values are chosen so that vgp_work_exit_code() can turn
 * them into the tools' documented exit codes: -ENOSPC is "the device (or the
 * quota) is out of memory", -EINVAL a usage error, -EBADMSG a verification
 * mismatch, -ELIBACC "no driver", anything else (-EIO for a failed driver
 * call) a generic failure.
 */
#ifndef VGP_WORK_H
#define VGP_WORK_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "vgpool_cuda.h"

/* Exit codes of both tools (docs/workloads.md). */
enum vgp_work_exit {
  VGP_WORK_EXIT_OK = 0,
  VGP_WORK_EXIT_FAIL = 1,      /* a driver call failed (not out of memory) */
  VGP_WORK_EXIT_USAGE = 2,     /* bad command line */
  VGP_WORK_EXIT_OOM = 3,       /* CUDA_ERROR_OUT_OF_MEMORY from an allocation */
  VGP_WORK_EXIT_VERIFY = 4,    /* data read back differs from what was written */
  VGP_WORK_EXIT_NO_DRIVER = 5, /* libcuda.so.1 cannot be loaded or lacks symbols */
};

/* The CUDA version whose entry points are requested from cuGetProcAddress:
 * the oldest driver generation that has cuGetProcAddress_v2. */
#define VGP_WORK_CUDA_VERSION 12000

/* Every driver entry point the workloads call, by exact (versioned) name.
 * The name selects the vgp_pfn_ typedef, so a signature mismatch is a
 * compile error. */
#define VGP_WORK_PROCS(X)                                                      \
  X(cuInit)                                                                    \
  X(cuDriverGetVersion)                                                        \
  X(cuGetErrorName)                                                            \
  X(cuGetErrorString)                                                          \
  X(cuDeviceGet)                                                               \
  X(cuDeviceGetCount)                                                          \
  X(cuDeviceGetName)                                                           \
  X(cuDeviceGetAttribute)                                                      \
  X(cuDeviceTotalMem_v2)                                                       \
  X(cuDevicePrimaryCtxRetain)                                                  \
  X(cuDevicePrimaryCtxRelease_v2)                                              \
  X(cuCtxSetCurrent)                                                           \
  X(cuCtxSynchronize)                                                          \
  X(cuModuleLoadDataEx)                                                        \
  X(cuModuleUnload)                                                            \
  X(cuModuleGetFunction)                                                       \
  X(cuMemGetInfo_v2)                                                           \
  X(cuMemAlloc_v2)                                                             \
  X(cuMemAllocPitch_v2)                                                        \
  X(cuMemAllocManaged)                                                         \
  X(cuMemFree_v2)                                                              \
  X(cuMemAllocAsync)                                                           \
  X(cuMemFreeAsync)                                                            \
  X(cuMemAddressReserve)                                                       \
  X(cuMemAddressFree)                                                          \
  X(cuMemCreate)                                                               \
  X(cuMemRelease)                                                              \
  X(cuMemMap)                                                                  \
  X(cuMemUnmap)                                                                \
  X(cuMemSetAccess)                                                            \
  X(cuMemGetAllocationGranularity)                                             \
  X(cuMemcpyHtoD_v2)                                                           \
  X(cuMemcpyDtoH_v2)                                                           \
  X(cuMemsetD32_v2)                                                            \
  X(cuStreamCreate)                                                            \
  X(cuStreamDestroy_v2)                                                        \
  X(cuStreamSynchronize)                                                       \
  X(cuEventCreate)                                                             \
  X(cuEventDestroy_v2)                                                         \
  X(cuEventRecord)                                                             \
  X(cuEventSynchronize)                                                        \
  X(cuEventElapsedTime)                                                        \
  X(cuLaunchKernel)

/* The loaded driver: one function pointer per entry point above. */
struct vgp_work_cu {
  void *lib;
  int driver_version;    /* cuDriverGetVersion, e.g. 13000 */
  const char *resolver;  /* "cuGetProcAddress_v2" or "dlsym" */
#define VGP_WORK_FIELD(sym) vgp_pfn_##sym sym;
  VGP_WORK_PROCS(VGP_WORK_FIELD)
#undef VGP_WORK_FIELD
};

/* The embedded kernels.ptx (generated by embed_ptx.py). */
extern const char vgp_work_kernels_ptx[];
extern const size_t vgp_work_kernels_ptx_len;

/* The kernels of kernels.ptx, resolved in one context. */
struct vgp_work_kernels {
  CUmodule module;
  CUfunction spin, fill_u32, copy, axpy_f32, sum_u32;
};

/* One device with its primary context made current. */
struct vgp_work_device {
  int ordinal;
  CUdevice dev;
  CUcontext ctx;
  char name[128];
  int sm_count;
  uint64_t total_memory;
};

/* ------------------------------------------------------------ messages */

/* Sets the name messages are prefixed with ("vgpool-burn"). */
void vgp_work_set_prog(const char *name);
const char *vgp_work_prog(void);

/* Prints "<prog>: <message>" to stderr. */
void vgp_work_errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Maps a function's result (0 or -errno, see the top of this file) to the
 * tool's exit code. */
int vgp_work_exit_code(int r);

/* --------------------------------------------------------------- driver */

/* Loads libcuda.so.1 and resolves every entry point of VGP_WORK_PROCS, then
 * calls cuInit(0). Returns -ELIBACC when the library or a symbol is
 * missing, -EIO when cuInit fails; *cu is untouched on failure. */
int vgp_work_cu_load(struct vgp_work_cu *cu);

void vgp_work_cu_unload(struct vgp_work_cu *cu);

/* Checks the result of a driver call. On failure prints
 * "<prog>: <call> failed: CUDA_ERROR_NAME (description)", the call being
 * formatted from fmt, and returns -ENOSPC for CUDA_ERROR_OUT_OF_MEMORY and
 * -EIO for any other error. Returns 0 for CUDA_SUCCESS. */
int vgp_work_cu_check(const struct vgp_work_cu *cu, CUresult res,
                      const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The same with a va_list; quiet_oom returns -ENOSPC for
 * CUDA_ERROR_OUT_OF_MEMORY without printing, for callers that expect it. */
int vgp_work_cu_vcheck(const struct vgp_work_cu *cu, CUresult res, int quiet_oom,
                       const char *fmt, va_list ap) __attribute__((format(printf, 4, 0)));

/* Opens device `ordinal`: retains its primary context and makes it current
 * on the calling thread. Returns -ENODEV when there is no such device. */
int vgp_work_device_open(const struct vgp_work_cu *cu, int ordinal,
                         struct vgp_work_device *ret_dev);

void vgp_work_device_close(const struct vgp_work_cu *cu,
                           struct vgp_work_device *dev);

/* -------------------------------------------------------------- kernels */

/* Loads the embedded PTX into the current context; the JIT log is printed
 * when the driver refuses it. */
int vgp_work_kernels_load(const struct vgp_work_cu *cu,
                          struct vgp_work_kernels *ret_k);

void vgp_work_kernels_unload(const struct vgp_work_cu *cu,
                             struct vgp_work_kernels *k);

/* -------------------------------------------------------------- session */

/* What every tool sets up first: the driver, one device with its primary
 * context current, and (optionally) the kernels. */
struct vgp_work_session {
  struct vgp_work_cu cu;
  struct vgp_work_device dev;
  struct vgp_work_kernels k;  /* zeroed when not loaded */
};

/* Opens the session on device `ordinal`, loading the kernels when
 * `kernels` is set. On failure (the errors above) nothing is left open. */
int vgp_work_session_open(struct vgp_work_session *s, int ordinal, int kernels);

void vgp_work_session_close(struct vgp_work_session *s);

/* Launches vgpool_spin(ns) on a blocks x threads grid. */
int vgp_work_launch_spin(const struct vgp_work_cu *cu,
                         const struct vgp_work_kernels *k, CUstream stream,
                         unsigned blocks, unsigned threads, uint64_t ns);

/* Launches vgpool_fill_u32(ptr, value, n) with a grid sized for n. */
int vgp_work_launch_fill(const struct vgp_work_cu *cu,
                         const struct vgp_work_kernels *k,
                         const struct vgp_work_device *dev, CUstream stream,
                         CUdeviceptr ptr, uint32_t value, uint64_t n);

/* Launches vgpool_sum_u32(ptr, n, out) with a grid sized for n. */
int vgp_work_launch_sum(const struct vgp_work_cu *cu,
                        const struct vgp_work_kernels *k,
                        const struct vgp_work_device *dev, CUstream stream,
                        CUdeviceptr ptr, uint64_t n, CUdeviceptr out);

/* Launches vgpool_copy(dst, src, bytes) with a grid sized for bytes. */
int vgp_work_launch_copy(const struct vgp_work_cu *cu,
                         const struct vgp_work_kernels *k,
                         const struct vgp_work_device *dev, CUstream stream,
                         CUdeviceptr dst, CUdeviceptr src, uint64_t bytes);

/* Launches vgpool_axpy_f32(n, a, x, y) with a grid sized for n. */
int vgp_work_launch_axpy(const struct vgp_work_cu *cu,
                         const struct vgp_work_kernels *k,
                         const struct vgp_work_device *dev, CUstream stream,
                         uint64_t n, float a, CUdeviceptr x, CUdeviceptr y);

/* -------------------------------------------------------------- options */

/* One option of a tool's table; the table ends with name == NULL. */
struct vgp_work_opt {
  const char *name;   /* without the leading "--" */
  int id;             /* > 0, returned by vgp_work_getopt */
  int has_value;      /* takes a value ("--x V" or "--x=V") */
};

/* Iterates over a command line. */
struct vgp_work_args {
  int argc;
  char **argv;
  int index;
};

void vgp_work_args_init(struct vgp_work_args *it, int argc, char **argv);

/* Returns the id of the next option (with its value in *ret_value, or NULL
 * when it takes none), 0 at the end, or -EINVAL after printing a message
 * that names the bad token: an unknown option, a missing or unexpected
 * value, or a stray argument. "-h" is accepted as "--help" when the table
 * has "help". */
int vgp_work_getopt(struct vgp_work_args *it, const struct vgp_work_opt *opts,
                    const char **ret_value);

/* Value parsers for options: on a bad value they print
 * "<prog>: --<opt>: <what> '<text>'" and return -EINVAL (or -ERANGE
 * outside [min, max]), leaving the output untouched. */
int vgp_work_parse_size(const char *opt, const char *text, uint64_t *ret);
int vgp_work_parse_uint(const char *opt, const char *text, uint64_t min,
                        uint64_t max, uint64_t *ret);
int vgp_work_parse_double(const char *opt, const char *text, double min,
                          double max, double *ret);

/* ------------------------------------------------------------ statistics */

/* Latency samples. Up to cap samples are kept exactly; beyond that the kept
 * set is a uniform random sample of all of them (reservoir sampling), so
 * percentiles stay unbiased with bounded memory. count, sum and max are
 * exact. */
struct vgp_work_samples {
  uint64_t *v;
  size_t n, cap;
  uint64_t count, sum, max;
  uint64_t rng;
  int sorted;
};

int vgp_work_samples_init(struct vgp_work_samples *s, size_t cap);
void vgp_work_samples_add(struct vgp_work_samples *s, uint64_t x);

/* Returns the p-th percentile (nearest rank, p in [0, 100]) of the kept
 * samples; 0 when there are none. Sorts the samples on first use. */
uint64_t vgp_work_samples_percentile(struct vgp_work_samples *s, double p);

void vgp_work_samples_free(struct vgp_work_samples *s);

/* A small deterministic generator (xorshift64*) for seeds given on the
 * command line; never 0 internally. */
uint64_t vgp_work_rand(uint64_t *state);

#endif
