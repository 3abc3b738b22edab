/*
 * hook_launch.c - kernel launches.
 *
 * Every launch path is wrapped: cuLaunchKernel, cuLaunchKernelEx,
 * cooperative launches, their per-thread-stream variants, and graph
 * launches. When nothing governs the process's launches, a wrapper is the
 * sacred fast path: a load of the real entry point, a load of the gate
 * word and a tail call — no lock, no system call, no allocation. When a
 * device of the container has a compute share below 100%, the gate is up
 * and launches go through the governor (hook_share.c), which paces them.
 */
#include "hook_internal.h"

int vgp__launch_gate;

/* The first call can come before anything is initialized (a program may
 * launch through a pointer it got early): initialize, then decide. */
static CUresult vgp__launch_prepare(void) {
  vgp__hook_init();
  if (vgp__hook_active() && g_hook.init_error != CUDA_SUCCESS)
    return g_hook.init_error;
  return CUDA_SUCCESS;
}

/* Each wrapper packs its arguments into a struct and a thunk that makes
 * the real call, so the governor can run any of them the same way. The
 * slow path (first call, governed launches) is a cold function of its
 * own, so that the fast path is not laid out around it. (gcc still copies
 * the stack arguments of a launch through registers before the tail
 * call; the fast path measures 20-odd instructions, bench/hook.) */
#define VGP_LAUNCH_WRAPPER(sym, params, fields, pack, call, args_, stream_expr) \
  struct vgp__args_##sym fields;                                              \
  static CUresult vgp__thunk_##sym(void *p) {                                 \
    struct vgp__args_##sym *a = p;                                            \
    return vgp__real_cu.sym call;                                             \
  }                                                                           \
  static __attribute__((noinline, cold)) CUresult vgp__slow_##sym params {    \
    CUresult r = vgp__launch_prepare();                                       \
    if (r != CUDA_SUCCESS)                                                    \
      return r;                                                               \
    if (vgp__real_cu.sym == NULL)                                             \
      return CUDA_ERROR_NOT_INITIALIZED;                                      \
    struct vgp__args_##sym args = pack;                                       \
    if (__atomic_load_n(&vgp__launch_gate, __ATOMIC_ACQUIRE))                 \
      return vgp__launch_governed(stream_expr, vgp__thunk_##sym, &args);      \
    return vgp__thunk_##sym(&args);                                           \
  }                                                                           \
  VGP_EXPORT CUresult sym params {                                            \
    vgp_pfn_##sym real = vgp__real_cu.sym;                                    \
    if (VGP_UNLIKELY(real == NULL || __atomic_load_n(&vgp__launch_gate, __ATOMIC_RELAXED))) \
      return vgp__slow_##sym args_;                                           \
    return real args_;                                                        \
  }

/* The argument lists, once each. */
#define VGP_K_PARAMS                                                          \
  (CUfunction f, unsigned int gridDimX, unsigned int gridDimY, unsigned int gridDimZ, \
   unsigned int blockDimX, unsigned int blockDimY, unsigned int blockDimZ,    \
   unsigned int sharedMemBytes, CUstream hStream, void **kernelParams, void **extra)
#define VGP_K_FIELDS                                                          \
  {                                                                           \
    CUfunction f;                                                             \
    unsigned int gx, gy, gz, bx, by, bz, smem;                                \
    CUstream s;                                                               \
    void **params, **extra;                                                   \
  }
#define VGP_K_PACK                                                            \
  {f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ, sharedMemBytes, hStream, \
   kernelParams, extra}
#define VGP_K_CALL (a->f, a->gx, a->gy, a->gz, a->bx, a->by, a->bz, a->smem, a->s, a->params, a->extra)
#define VGP_K_ARGS                                                            \
  (f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ, sharedMemBytes, hStream, \
   kernelParams, extra)

#define VGP_C_PARAMS                                                          \
  (CUfunction f, unsigned int gridDimX, unsigned int gridDimY, unsigned int gridDimZ, \
   unsigned int blockDimX, unsigned int blockDimY, unsigned int blockDimZ,    \
   unsigned int sharedMemBytes, CUstream hStream, void **kernelParams)
#define VGP_C_FIELDS                                                          \
  {                                                                           \
    CUfunction f;                                                             \
    unsigned int gx, gy, gz, bx, by, bz, smem;                                \
    CUstream s;                                                               \
    void **params;                                                            \
  }
#define VGP_C_PACK                                                            \
  {f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ, sharedMemBytes, hStream, \
   kernelParams}
#define VGP_C_CALL (a->f, a->gx, a->gy, a->gz, a->bx, a->by, a->bz, a->smem, a->s, a->params)
#define VGP_C_ARGS                                                            \
  (f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ, sharedMemBytes, hStream, \
   kernelParams)

#define VGP_X_PARAMS (const CUlaunchConfig *config, CUfunction f, void **kernelParams, void **extra)
#define VGP_X_FIELDS                                                          \
  {                                                                           \
    const CUlaunchConfig *config;                                             \
    CUfunction f;                                                             \
    void **params, **extra;                                                   \
  }
#define VGP_X_PACK {config, f, kernelParams, extra}
#define VGP_X_CALL (a->config, a->f, a->params, a->extra)
#define VGP_X_ARGS (config, f, kernelParams, extra)
#define VGP_X_STREAM (config != NULL ? config->hStream : NULL)

#define VGP_G_PARAMS (CUgraphExec hGraphExec, CUstream hStream)
#define VGP_G_FIELDS                                                          \
  {                                                                           \
    CUgraphExec g;                                                            \
    CUstream s;                                                               \
  }
#define VGP_G_PACK {hGraphExec, hStream}
#define VGP_G_CALL (a->g, a->s)
#define VGP_G_ARGS (hGraphExec, hStream)

VGP_LAUNCH_WRAPPER(cuLaunchKernel, VGP_K_PARAMS, VGP_K_FIELDS, VGP_K_PACK, VGP_K_CALL, VGP_K_ARGS, hStream)
VGP_LAUNCH_WRAPPER(cuLaunchKernel_ptsz, VGP_K_PARAMS, VGP_K_FIELDS, VGP_K_PACK, VGP_K_CALL, VGP_K_ARGS,
                   hStream == NULL ? CU_STREAM_PER_THREAD : hStream)
VGP_LAUNCH_WRAPPER(cuLaunchCooperativeKernel, VGP_C_PARAMS, VGP_C_FIELDS, VGP_C_PACK, VGP_C_CALL, VGP_C_ARGS,
                   hStream)
VGP_LAUNCH_WRAPPER(cuLaunchCooperativeKernel_ptsz, VGP_C_PARAMS, VGP_C_FIELDS, VGP_C_PACK, VGP_C_CALL,
                   VGP_C_ARGS,
                   hStream == NULL ? CU_STREAM_PER_THREAD : hStream)
VGP_LAUNCH_WRAPPER(cuLaunchKernelEx, VGP_X_PARAMS, VGP_X_FIELDS, VGP_X_PACK, VGP_X_CALL, VGP_X_ARGS,
                   VGP_X_STREAM)
VGP_LAUNCH_WRAPPER(cuLaunchKernelEx_ptsz, VGP_X_PARAMS, VGP_X_FIELDS, VGP_X_PACK, VGP_X_CALL, VGP_X_ARGS,
                   VGP_X_STREAM == NULL ? CU_STREAM_PER_THREAD : VGP_X_STREAM)
VGP_LAUNCH_WRAPPER(cuGraphLaunch, VGP_G_PARAMS, VGP_G_FIELDS, VGP_G_PACK, VGP_G_CALL, VGP_G_ARGS, hStream)
VGP_LAUNCH_WRAPPER(cuGraphLaunch_ptsz, VGP_G_PARAMS, VGP_G_FIELDS, VGP_G_PACK, VGP_G_CALL, VGP_G_ARGS,
                   hStream == NULL ? CU_STREAM_PER_THREAD : hStream)
