/*
 * test_cu_exec.c - execution in the simulated driver: built-in kernels do
 * their defined work, kernels take their modelled time on the device,
 * streams and events order and time work, callbacks run in order, graphs
 * replay captured kernels, faults are sticky.
 */
#include <string.h>
#include <time.h>

#include "simtest.h"

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

VGP_TEST(builtin_kernels_compute_results) {
  simtest_node("1xA100-40GB");
  simtest_ctx();
  CUmodule mod = NULL;
  CUfunction fill = simtest_func(&mod, "vgpool_fill_u32");
  CUfunction axpy = simtest_func(&mod, "vgpool_axpy_f32");
  CUfunction sum = simtest_func(&mod, "vgpool_sum_u32");
  CUfunction copy = simtest_func(&mod, "vgpool_copy");
  enum { N = 10000 };
  CUdeviceptr a, b, out;
  CU_OK(cuMemAlloc_v2(&a, N * 4));
  CU_OK(cuMemAlloc_v2(&b, N * 4));
  CU_OK(cuMemAlloc_v2(&out, 8));
  CU_OK(cuMemsetD32_v2(out, 0, 2));
  unsigned long long n = N;
  unsigned value = 3;
  void *fill_args[] = {&a, &value, &n};
  CU_OK(cuLaunchKernel(fill, 40, 1, 1, 256, 1, 1, 0, NULL, fill_args, NULL));
  void *sum_args[] = {&a, &n, &out};
  CU_OK(cuLaunchKernel(sum, 40, 1, 1, 256, 1, 1, 0, NULL, sum_args, NULL));
  uint64_t total = 0;
  CU_OK(cuMemcpyDtoH_v2(&total, out, 8));
  ASSERT_EQ_U64(total, 3ull * N);

  static float x[N], y[N];
  for (int i = 0; i < N; i++) {
    x[i] = (float)i;
    y[i] = 1.0f;
  }
  CU_OK(cuMemcpyHtoD_v2(a, x, sizeof(x)));
  CU_OK(cuMemcpyHtoD_v2(b, y, sizeof(y)));
  float alpha = 2.0f;
  void *axpy_args[] = {&n, &alpha, &a, &b};
  CU_OK(cuLaunchKernel(axpy, 40, 1, 1, 256, 1, 1, 0, NULL, axpy_args, NULL));
  CU_OK(cuMemcpyDtoH_v2(y, b, sizeof(y)));
  ASSERT_EQ_DBL(y[1234], 2.0 * 1234 + 1.0, 1e-3);

  /* The same launch through the packed `extra` buffer. */
  struct {
    uint64_t dst, src, bytes;
  } packed = {a, b, 16};
  size_t packed_size = sizeof(packed);
  void *extra[] = {CU_LAUNCH_PARAM_BUFFER_POINTER, &packed, CU_LAUNCH_PARAM_BUFFER_SIZE,
                   &packed_size, CU_LAUNCH_PARAM_END};
  CU_OK(cuLaunchKernel(copy, 1, 1, 1, 32, 1, 1, 0, NULL, NULL, extra));
  float first[4];
  CU_OK(cuMemcpyDtoH_v2(first, a, 16));
  ASSERT_EQ_DBL(first[3], 2.0 * 3 + 1.0, 1e-3);
}

VGP_TEST(module_loading) {
  simtest_node("1xT4");
  simtest_ctx();
  CUmodule m = NULL;
  CUfunction f;
  simtest_func(&m, "vgpool_spin");
  CU_EXPECT(cuModuleGetFunction(&f, m, "not_in_this_ptx"), CUDA_ERROR_NOT_FOUND);
  CU_OK(cuModuleGetFunction(&f, m, "other_kernel"));
  CU_EXPECT(cuModuleLoadData(&m, "garbage that is not PTX"), CUDA_ERROR_INVALID_IMAGE);
  static const unsigned char binary[] = {0x01, 0x02, 0x03, 0x04, 0xff, 0xfe, 0x00};
  CU_EXPECT(cuModuleLoadData(&m, binary), CUDA_ERROR_INVALID_IMAGE);
  CU_EXPECT(cuModuleLoad(&m, "/nonexistent/kernels.ptx"), CUDA_ERROR_FILE_NOT_FOUND);
  /* An ELF image (a cubin) resolves any name. */
  static const char elf[64] = "\177ELF\2\1\1";
  CUmodule cubin;
  CU_OK(cuModuleLoadData(&cubin, elf));
  CU_OK(cuModuleGetFunction(&f, cubin, "_Z6kernelPf"));
  CU_OK(cuLaunchKernel(f, 1, 1, 1, 1, 1, 1, 0, NULL, NULL, NULL));
  CU_OK(cuCtxSynchronize());
  CU_OK(cuModuleUnload(cubin));
  CU_EXPECT(cuModuleUnload(cubin), CUDA_ERROR_INVALID_HANDLE);
  CU_EXPECT(cuLaunchKernel(f, 1, 1, 1, 1, 1, 1, 0, NULL, NULL, NULL), CUDA_ERROR_INVALID_HANDLE);
}

/* Parameters the way nvcc writes them for pointers: attributes chained
 * without spaces (".ptr.global.align 8"), which must give the same sizes
 * as the plain form or the arguments are copied wrongly. */
VGP_TEST(module_parses_chained_param_attributes) {
  simtest_node("1xT4");
  simtest_ctx();
  static const char ptx[] =
      ".version 8.0\n.target sm_80\n.address_size 64\n"
      ".visible .entry vgpool_fill_u32(\n"
      "  .param .u64 .ptr.global.align 4 ptr, // where\n"
      "  .param .u32 value,\n"
      "  .param .u64 n\n)\n{\n ret;\n}\n";
  CUmodule m;
  CUfunction fill;
  CU_OK(cuModuleLoadData(&m, ptx));
  CU_OK(cuModuleGetFunction(&fill, m, "vgpool_fill_u32"));
  CUdeviceptr buf;
  CU_OK(cuMemAlloc_v2(&buf, 64));
  unsigned long long n = 16;
  unsigned value = 0xabcd;
  void *args[] = {&buf, &value, &n};
  CU_OK(cuLaunchKernel(fill, 1, 1, 1, 32, 1, 1, 0, NULL, args, NULL));
  unsigned got[16];
  CU_OK(cuMemcpyDtoH_v2(got, buf, sizeof(got)));
  ASSERT_EQ_U64(got[15], 0xabcd);
  static const char bad[] = ".visible .entry k(.param .u64 .ptr.global.bogus p)\n{\n ret;\n}\n";
  CU_EXPECT(cuModuleLoadData(&m, bad), CUDA_ERROR_INVALID_IMAGE);
}

VGP_TEST(bad_launches) {
  simtest_node("1xT4");
  simtest_ctx();
  CUmodule m = NULL;
  CUfunction spin = simtest_func(&m, "vgpool_spin");
  unsigned long long ns = 1000;
  void *args[] = {&ns};
  CU_EXPECT(cuLaunchKernel(spin, 0, 1, 1, 32, 1, 1, 0, NULL, args, NULL), CUDA_ERROR_INVALID_VALUE);
  CU_EXPECT(cuLaunchKernel(spin, 1, 1, 1, 2048, 1, 1, 0, NULL, args, NULL), CUDA_ERROR_INVALID_VALUE);
  CU_EXPECT(cuLaunchKernel(spin, 1, 1, 1, 32, 1, 1, 0, NULL, NULL, NULL), CUDA_ERROR_INVALID_VALUE);
  CU_EXPECT(cuLaunchKernel(spin, 1, 1, 1, 32, 1, 1, 0, (CUstream)(uintptr_t)0x77, args, NULL),
            CUDA_ERROR_INVALID_HANDLE);
  CU_EXPECT(cuLaunchCooperativeKernel(spin, 100000, 1, 1, 1024, 1, 1, 0, NULL, args),
            CUDA_ERROR_COOPERATIVE_LAUNCH_TOO_LARGE);
  CU_OK(cuLaunchCooperativeKernel(spin, 40, 1, 1, 32, 1, 1, 0, NULL, args));
  CU_OK(cuCtxSynchronize());
}

VGP_TEST(kernel_time_and_events) {
  simtest_node("1xH100-80GB");
  simtest_ctx();
  CUmodule m = NULL;
  CUfunction spin = simtest_func(&m, "vgpool_spin");
  CUevent a, b;
  CU_OK(cuEventCreate(&a, 0));
  CU_OK(cuEventCreate(&b, 0));
  unsigned long long ns = 2000000; /* 2 ms per wave */
  void *args[] = {&ns};
  double t0 = now_ms();
  CU_OK(cuEventRecord(a, NULL));
  for (int i = 0; i < 20; i++)
    CU_OK(cuLaunchKernel(spin, 1, 1, 1, 32, 1, 1, 0, NULL, args, NULL));
  /* Two waves: 132 SMs x 32 resident blocks is 4224 blocks per wave. */
  CU_OK(cuLaunchKernel(spin, 5000, 1, 1, 32, 1, 1, 0, NULL, args, NULL));
  CU_OK(cuEventRecord(b, NULL));
  double launched = now_ms() - t0;
  ASSERT_LT_INT((long)launched, 30); /* launches are asynchronous */
  float ms = -1;
  CU_EXPECT(cuEventElapsedTime(&ms, a, b), CUDA_ERROR_NOT_READY);
  CU_OK(cuEventSynchronize(b));
  double wall = now_ms() - t0;
  CU_OK(cuEventElapsedTime(&ms, a, b));
  /* Device time is exact: 20 x 2 ms + 2 x 2 ms. */
  ASSERT_EQ_DBL(ms, 44.0, 0.5);
  ASSERT_GE_INT((long)wall, 43);
  CU_OK(cuEventQuery(b));
  CUevent never, untimed;
  CU_OK(cuEventCreate(&never, 0));
  CU_OK(cuEventCreate(&untimed, CU_EVENT_DISABLE_TIMING));
  CU_EXPECT(cuEventElapsedTime(&ms, a, never), CUDA_ERROR_INVALID_HANDLE);
  CU_OK(cuEventRecord(untimed, NULL));
  CU_OK(cuEventSynchronize(untimed));
  CU_EXPECT(cuEventElapsedTime(&ms, a, untimed), CUDA_ERROR_INVALID_HANDLE);
  CU_OK(cuEventSynchronize(never)); /* never recorded: complete */
  CU_OK(cuEventDestroy_v2(never));
  CU_EXPECT(cuEventQuery(never), CUDA_ERROR_INVALID_HANDLE);
  CU_EXPECT(cuEventCreate(&never, CU_EVENT_INTERPROCESS), CUDA_ERROR_INVALID_VALUE);
}

static int order[8];
static int norder;
static void host_fn(void *user) { order[norder++] = (int)(intptr_t)user; }
static void stream_cb(CUstream s, CUresult status, void *user) {
  (void)s;
  (void)status;
  order[norder++] = (int)(intptr_t)user;
}

VGP_TEST(streams_order_and_callbacks) {
  simtest_node("1xL4");
  simtest_ctx();
  CUmodule m = NULL;
  CUfunction spin = simtest_func(&m, "vgpool_spin");
  CUstream s1, s2;
  CU_OK(cuStreamCreate(&s1, CU_STREAM_NON_BLOCKING));
  CU_OK(cuStreamCreateWithPriority(&s2, 0, -3));
  int prio;
  CU_OK(cuStreamGetPriority(s2, &prio));
  ASSERT_EQ_INT(prio, -3);
  unsigned long long ns = 20000000; /* 20 ms */
  void *args[] = {&ns};
  CU_OK(cuLaunchKernel(spin, 1, 1, 1, 32, 1, 1, 0, s1, args, NULL));
  CU_OK(cuLaunchHostFunc(s1, host_fn, (void *)1));
  CUevent e;
  CU_OK(cuEventCreate(&e, 0));
  CU_OK(cuEventRecord(e, s1));
  CU_OK(cuStreamWaitEvent(s2, e, 0));
  CU_OK(cuStreamAddCallback(s2, stream_cb, (void *)2, 0));
  CU_EXPECT(cuStreamQuery(s1), CUDA_ERROR_NOT_READY);
  CU_OK(cuStreamSynchronize(s2));
  CU_OK(cuStreamQuery(s1));
  ASSERT_EQ_INT(norder, 2);
  ASSERT_EQ_INT(order[0], 1);
  ASSERT_EQ_INT(order[1], 2);
  CU_OK(cuStreamDestroy_v2(s1));
  CU_EXPECT(cuStreamSynchronize(s1), CUDA_ERROR_INVALID_HANDLE);
  CU_EXPECT(cuStreamDestroy_v2(NULL), CUDA_ERROR_INVALID_HANDLE);
  /* The per-thread stream through the _ptsz entry points. */
  CU_OK(cuLaunchKernel_ptsz(spin, 1, 1, 1, 32, 1, 1, 0, NULL, args, NULL));
  CU_OK(cuStreamSynchronize_ptsz(NULL));
  CU_OK(cuStreamQuery(CU_STREAM_PER_THREAD));
}

VGP_TEST(graphs_replay_captured_kernels) {
  simtest_node("1xH100-80GB");
  simtest_ctx();
  CUmodule m = NULL;
  CUfunction spin = simtest_func(&m, "vgpool_spin");
  CUfunction fill = simtest_func(&m, "vgpool_fill_u32");
  CUstream s;
  CU_OK(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
  CUdeviceptr buf;
  CU_OK(cuMemAlloc_v2(&buf, 64));
  unsigned long long ns = 1000000, n = 16;
  unsigned value = 9;
  void *spin_args[] = {&ns};
  void *fill_args[] = {&buf, &value, &n};
  CU_EXPECT(cuStreamBeginCapture_v2(NULL, CU_STREAM_CAPTURE_MODE_GLOBAL), CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
  CU_OK(cuStreamBeginCapture_v2(s, CU_STREAM_CAPTURE_MODE_GLOBAL));
  CUstreamCaptureStatus st;
  CU_OK(cuStreamIsCapturing(s, &st));
  ASSERT_EQ_INT(st, CU_STREAM_CAPTURE_STATUS_ACTIVE);
  for (int i = 0; i < 5; i++)
    CU_OK(cuLaunchKernel(spin, 1, 1, 1, 32, 1, 1, 0, s, spin_args, NULL));
  CU_OK(cuLaunchKernel(fill, 1, 1, 1, 32, 1, 1, 0, s, fill_args, NULL));
  CUgraph g;
  CU_OK(cuStreamEndCapture(s, &g));
  CU_OK(cuStreamQuery(s)); /* capture ran nothing */
  size_t nodes = 0;
  CU_OK(cuGraphGetNodes(g, NULL, &nodes));
  ASSERT_EQ_U64(nodes, 6);
  CUgraphExec exec;
  CU_OK(cuGraphInstantiateWithFlags(&exec, g, 0));
  CUevent a, b;
  CU_OK(cuEventCreate(&a, 0));
  CU_OK(cuEventCreate(&b, 0));
  CU_OK(cuEventRecord(a, s));
  CU_OK(cuGraphLaunch(exec, s));
  CU_OK(cuGraphLaunch(exec, s));
  CU_OK(cuEventRecord(b, s));
  CU_OK(cuStreamSynchronize(s));
  float ms;
  CU_OK(cuEventElapsedTime(&ms, a, b));
  ASSERT_GE_INT((long)(ms * 1000), 10000); /* 2 x 5 x 1 ms of spinning */
  ASSERT_LT_INT((long)(ms * 1000), 11000);
  uint32_t word;
  CU_OK(cuMemcpyDtoH_v2(&word, buf + 60, 4));
  ASSERT_EQ_U64(word, 9);
  CU_OK(cuGraphExecDestroy(exec));
  CU_OK(cuGraphDestroy(g));
  CU_EXPECT(cuGraphLaunch(exec, s), CUDA_ERROR_INVALID_VALUE);
}

VGP_TEST(illegal_address_is_sticky) {
  simtest_node("1xT4");
  simtest_ctx();
  CUmodule m = NULL;
  CUfunction fill = simtest_func(&m, "vgpool_fill_u32");
  unsigned long long bad = 0x10, n = 4;
  unsigned value = 1;
  void *args[] = {&bad, &value, &n};
  CU_OK(cuLaunchKernel(fill, 1, 1, 1, 32, 1, 1, 0, NULL, args, NULL));
  CU_EXPECT(cuCtxSynchronize(), CUDA_ERROR_ILLEGAL_ADDRESS);
  CU_EXPECT(cuCtxSynchronize(), CUDA_ERROR_ILLEGAL_ADDRESS);
  CU_EXPECT(cuLaunchKernel(fill, 1, 1, 1, 32, 1, 1, 0, NULL, args, NULL), CUDA_ERROR_ILLEGAL_ADDRESS);
}
