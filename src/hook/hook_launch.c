/*
 * hook_launch.c - kernel launches.
 *
 * Every launch path is wrapped: cuLaunchKernel, cuLaunchKernelEx,
 * cooperative launches, their per-thread-stream variants, and graph
 * launches. The path a launch takes when nothing governs it is the sacred
 * fast path: a load of the real entry point, a load of the gate word, and a
 * tail call — no lock, no system call, no allocation. When the container has
 * a compute share to enforce, the gate is raised and launches go through
 * vgp__launch_admit (hook_share.c) first.
 */
#include "hook_internal.h"

int vgp__launch_gate;

/* Slow path: initializes on first use and asks the compute-share governor
 * for admission. Returns CUDA_SUCCESS to go ahead. */
CUresult vgp__launch_admit(CUstream stream, int per_thread, unsigned kernels);

#define VGP_LAUNCH_WRAPPER(sym, params, args, stream_expr, per_thread, kernels)  \
  VGP_EXPORT CUresult sym params {                                             \
    vgp_pfn_##sym real = vgp__real_cu.sym;                                     \
    if (VGP_UNLIKELY(real == NULL || __atomic_load_n(&vgp__launch_gate, __ATOMIC_RELAXED))) { \
      CUresult admit = vgp__launch_admit(stream_expr, per_thread, kernels);    \
      if (admit != CUDA_SUCCESS)                                               \
        return admit;                                                          \
      real = vgp__real_cu.sym;                                                 \
      if (real == NULL)                                                        \
        return CUDA_ERROR_NOT_INITIALIZED;                                     \
    }                                                                          \
    return real args;                                                          \
  }

#define VGP_KERNEL_PARAMS                                                      \
  (CUfunction f, unsigned int gridDimX, unsigned int gridDimY, unsigned int gridDimZ, \
   unsigned int blockDimX, unsigned int blockDimY, unsigned int blockDimZ,     \
   unsigned int sharedMemBytes, CUstream hStream, void **kernelParams, void **extra)
#define VGP_KERNEL_ARGS                                                        \
  (f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ, sharedMemBytes, hStream, \
   kernelParams, extra)
#define VGP_COOP_PARAMS                                                        \
  (CUfunction f, unsigned int gridDimX, unsigned int gridDimY, unsigned int gridDimZ, \
   unsigned int blockDimX, unsigned int blockDimY, unsigned int blockDimZ,     \
   unsigned int sharedMemBytes, CUstream hStream, void **kernelParams)
#define VGP_COOP_ARGS                                                          \
  (f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ, sharedMemBytes, hStream, \
   kernelParams)

VGP_LAUNCH_WRAPPER(cuLaunchKernel, VGP_KERNEL_PARAMS, VGP_KERNEL_ARGS, hStream, 0, 1)
VGP_LAUNCH_WRAPPER(cuLaunchKernel_ptsz, VGP_KERNEL_PARAMS, VGP_KERNEL_ARGS, hStream, 1, 1)
VGP_LAUNCH_WRAPPER(cuLaunchCooperativeKernel, VGP_COOP_PARAMS, VGP_COOP_ARGS, hStream, 0, 1)
VGP_LAUNCH_WRAPPER(cuLaunchCooperativeKernel_ptsz, VGP_COOP_PARAMS, VGP_COOP_ARGS, hStream, 1, 1)
VGP_LAUNCH_WRAPPER(cuLaunchKernelEx,
                   (const CUlaunchConfig *config, CUfunction f, void **kernelParams, void **extra),
                   (config, f, kernelParams, extra), config != NULL ? config->hStream : NULL, 0, 1)
VGP_LAUNCH_WRAPPER(cuLaunchKernelEx_ptsz,
                   (const CUlaunchConfig *config, CUfunction f, void **kernelParams, void **extra),
                   (config, f, kernelParams, extra), config != NULL ? config->hStream : NULL, 1, 1)
VGP_LAUNCH_WRAPPER(cuGraphLaunch, (CUgraphExec hGraphExec, CUstream hStream), (hGraphExec, hStream),
                   hStream, 0, 1)
VGP_LAUNCH_WRAPPER(cuGraphLaunch_ptsz, (CUgraphExec hGraphExec, CUstream hStream),
                   (hGraphExec, hStream), hStream, 1, 1)

/* Until the compute-share governor exists, admission only initializes. */
CUresult vgp__launch_admit(CUstream stream, int per_thread, unsigned kernels) {
  (void)stream;
  (void)per_thread;
  (void)kernels;
  vgp__hook_init();
  if (vgp__hook_active() && g_hook.init_error != CUDA_SUCCESS)
    return g_hook.init_error;
  return CUDA_SUCCESS;
}
