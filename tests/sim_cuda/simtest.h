/*
 * simtest.h - shared helpers for the tests of the simulated CUDA driver.
 *
 * Each test points the simulator at a node state file in its own temporary
 * directory before the first CUDA call, so tests never share a node unless
 * they mean to (helpers inherit the environment, and with it the node).
 */
#ifndef VGP_SIMTEST_H
#define VGP_SIMTEST_H

#include <stdio.h>
#include <stdlib.h>

#include "vgp_test.h"
#include "vgpool_cuda.h"

static inline const char *simtest_err_name(CUresult r) {
  const char *name = NULL;
  if (cuGetErrorName(r, &name) != CUDA_SUCCESS || name == NULL)
    return "(unknown CUresult)";
  return name;
}

/* Asserts a CUresult, printing both names on mismatch. */
#define CU_EXPECT(expr, want)                                                  \
  do {                                                                         \
    CUresult cu__got = (expr), cu__want = (want);                              \
    if (cu__got != cu__want)                                                   \
      vgp_test_fail(__FILE__, __LINE__, "%s returned %s (%d), expected %s (%d)", \
                    #expr, simtest_err_name(cu__got), (int)cu__got,            \
                    simtest_err_name(cu__want), (int)cu__want);                \
  } while (0)

#define CU_OK(expr) CU_EXPECT(expr, CUDA_SUCCESS)

/* Points this process (and its helpers) at a private node with the given
 * devices. Call before any CUDA function. */
static inline void simtest_node(const char *devices) {
  char path[4096];
  snprintf(path, sizeof(path), "%s/node.state", vgp_test_tmpdir());
  setenv("VGPOOL_SIM_STATE", path, 1);
  setenv("VGPOOL_SIM_DEVICES", devices, 1);
  unsetenv("VGPOOL_SIM_CONFIG");
}

/* Writes a node config file into the tmpdir and selects it. */
static inline void simtest_config(const char *text) {
  char path[4096], state[4096];
  snprintf(path, sizeof(path), "%s/node.conf", vgp_test_tmpdir());
  snprintf(state, sizeof(state), "%s/node.state", vgp_test_tmpdir());
  FILE *f = fopen(path, "w");
  if (f == NULL)
    vgp_test_fail(__FILE__, __LINE__, "cannot write %s", path);
  fputs(text, f);
  fclose(f);
  setenv("VGPOOL_SIM_CONFIG", path, 1);
  setenv("VGPOOL_SIM_STATE", state, 1);
}

/* Creates a context on device 0 after cuInit. */
static inline CUcontext simtest_ctx(void) {
  CUcontext ctx;
  CU_OK(cuInit(0));
  CU_OK(cuCtxCreate_v2(&ctx, 0, 0));
  return ctx;
}

/* PTX defining the simulator's built-in kernels with their signatures. */
static const char simtest_ptx[] =
    ".version 7.0\n.target sm_70\n.address_size 64\n"
    "// built-in kernels, bodies irrelevant to the simulator\n"
    ".visible .entry vgpool_spin(.param .u64 ns)\n{\n ret;\n}\n"
    ".visible .entry vgpool_fill_u32(.param .u64 ptr, .param .u32 value, .param .u64 n)\n{\n ret;\n}\n"
    ".visible .entry vgpool_copy(.param .u64 dst, .param .u64 src, .param .u64 bytes)\n{\n ret;\n}\n"
    ".visible .entry vgpool_axpy_f32(.param .u64 n, .param .f32 a, .param .u64 x, .param .u64 y)\n{\n ret;\n}\n"
    ".visible .entry vgpool_sum_u32(.param .u64 ptr, .param .u64 n, .param .u64 out)\n{\n ret;\n}\n"
    ".visible .entry other_kernel(.param .align 8 .b8 blob[24])\n{\n ret;\n}\n";

static inline CUfunction simtest_func(CUmodule *mod, const char *name) {
  CUfunction f;
  if (*mod == NULL)
    CU_OK(cuModuleLoadData(mod, simtest_ptx));
  CU_OK(cuModuleGetFunction(&f, *mod, name));
  return f;
}

#endif
