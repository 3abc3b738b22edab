/*
 * test_cu_basic.c - the simulated driver's initialization, devices,
 * entry-point resolution, contexts, and the errors bad input gets.
 */
#include <dlfcn.h>
#include <string.h>
#include <unistd.h>

#include "simtest.h"

VGP_TEST(calls_before_init_fail) {
  simtest_node("1xT4");
  int n = -1;
  CU_EXPECT(cuDeviceGetCount(&n), CUDA_ERROR_NOT_INITIALIZED);
  CU_EXPECT(cuMemAlloc_v2(NULL, 1), CUDA_ERROR_NOT_INITIALIZED);
  int version = 0;
  CU_OK(cuDriverGetVersion(&version)); /* allowed before cuInit */
  ASSERT_EQ_INT(version, 13000);
  CU_EXPECT(cuInit(1), CUDA_ERROR_INVALID_VALUE);
}

VGP_TEST(devices_from_spec) {
  simtest_node("2xH100-80GB,1xT4");
  CU_OK(cuInit(0));
  int n;
  CU_OK(cuDeviceGetCount(&n));
  ASSERT_EQ_INT(n, 3);
  char name[64];
  CU_OK(cuDeviceGetName(name, sizeof(name), 2));
  ASSERT_EQ_STR(name, "Tesla T4");
  size_t total;
  CU_OK(cuDeviceTotalMem_v2(&total, 0));
  ASSERT_EQ_U64(total, 81559ull << 20);
  int sms, major;
  CU_OK(cuDeviceGetAttribute(&sms, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, 0));
  CU_OK(cuDeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, 2));
  ASSERT_EQ_INT(sms, 132);
  ASSERT_EQ_INT(major, 7);
  CUuuid a, b;
  CU_OK(cuDeviceGetUuid(&a, 0));
  CU_OK(cuDeviceGetUuid_v2(&b, 1));
  ASSERT_TRUE(memcmp(a.bytes, b.bytes, 16) != 0);
  char bus[32];
  CU_OK(cuDeviceGetPCIBusId(bus, sizeof(bus), 1));
  CUdevice found;
  CU_OK(cuDeviceGetByPCIBusId(&found, bus));
  ASSERT_EQ_INT(found, 1);
  int peer;
  CU_OK(cuDeviceGetP2PAttribute(&peer, CU_DEVICE_P2P_ATTRIBUTE_NATIVE_ATOMIC_SUPPORTED, 0, 1));
  ASSERT_EQ_INT(peer, 1); /* NVLink between the two H100 */
  CU_OK(cuDeviceGetP2PAttribute(&peer, CU_DEVICE_P2P_ATTRIBUTE_NATIVE_ATOMIC_SUPPORTED, 0, 2));
  ASSERT_EQ_INT(peer, 0); /* PCIe to the T4 */
}

VGP_TEST(bad_device_arguments) {
  simtest_node("1xA100-40GB");
  CU_OK(cuInit(0));
  CUdevice d;
  int v;
  CU_EXPECT(cuDeviceGet(&d, 1), CUDA_ERROR_INVALID_DEVICE);
  CU_EXPECT(cuDeviceGet(&d, -1), CUDA_ERROR_INVALID_DEVICE);
  CU_EXPECT(cuDeviceGet(NULL, 0), CUDA_ERROR_INVALID_VALUE);
  CU_EXPECT(cuDeviceGetAttribute(&v, (CUdevice_attribute)9999, 0), CUDA_ERROR_INVALID_VALUE);
  CU_EXPECT(cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_WARP_SIZE, 7), CUDA_ERROR_INVALID_DEVICE);
  CU_EXPECT(cuDeviceGetByPCIBusId(&d, "not-a-bus-id"), CUDA_ERROR_INVALID_VALUE);
  CU_EXPECT(cuDeviceGetByPCIBusId(&d, "0000:ff:1f.0"), CUDA_ERROR_INVALID_DEVICE);
}

VGP_TEST(malformed_spec_fails_init_with_no_device) {
  simtest_node("2xH100-80GB,3xBOGUS");
  CU_EXPECT(cuInit(0), CUDA_ERROR_NO_DEVICE);
  /* The failure is remembered; the driver stays unusable. */
  CU_EXPECT(cuInit(0), CUDA_ERROR_NO_DEVICE);
  int n;
  CU_EXPECT(cuDeviceGetCount(&n), CUDA_ERROR_NOT_INITIALIZED);
}

VGP_TEST(foreign_state_file_fails_init) {
  simtest_node("1xT4");
  FILE *f = fopen(getenv("VGPOOL_SIM_STATE"), "w");
  ASSERT_NOT_NULL(f);
  fputs("this is not a node state file, but something else entirely", f);
  fclose(f);
  CU_EXPECT(cuInit(0), CUDA_ERROR_OPERATING_SYSTEM);
}

VGP_HELPER(init_only) {
  (void)argc;
  (void)argv;
  return cuInit(0) == CUDA_SUCCESS ? 0 : 1;
}

VGP_TEST(node_made_for_other_devices_is_refused) {
  simtest_node("1xT4");
  ASSERT_EQ_INT(vgp_test_wait(vgp_test_spawn("init_only", NULL)), 0);
  setenv("VGPOOL_SIM_DEVICES", "2xT4", 1);
  CU_EXPECT(cuInit(0), CUDA_ERROR_OPERATING_SYSTEM);
}

VGP_TEST(error_strings) {
  const char *s;
  CU_OK(cuGetErrorName(CUDA_ERROR_OUT_OF_MEMORY, &s));
  ASSERT_EQ_STR(s, "CUDA_ERROR_OUT_OF_MEMORY");
  CU_OK(cuGetErrorString(CUDA_ERROR_OUT_OF_MEMORY, &s));
  ASSERT_EQ_STR(s, "out of memory");
  CU_EXPECT(cuGetErrorName((CUresult)12345, &s), CUDA_ERROR_INVALID_VALUE);
  ASSERT_NULL(s);
  CU_EXPECT(cuGetErrorString(CUDA_SUCCESS, NULL), CUDA_ERROR_INVALID_VALUE);
}

VGP_TEST(proc_address_resolves_versions_and_streams) {
  void *fn;
  CUdriverProcAddressQueryResult st;
  /* cuMemAlloc as of CUDA 3.2+ is the _v2 symbol. */
  CU_OK(cuGetProcAddress_v2("cuMemAlloc", &fn, 12000, 0, &st));
  ASSERT_EQ_PTR(fn, (void *)&cuMemAlloc_v2);
  ASSERT_EQ_INT(st, CU_GET_PROC_ADDRESS_SUCCESS);
  /* The 32-bit original is not offered. */
  CU_EXPECT(cuGetProcAddress_v2("cuMemAlloc", &fn, 2000, 0, &st), CUDA_ERROR_NOT_FOUND);
  ASSERT_EQ_INT(st, CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT);
  ASSERT_NULL(fn);
  /* Context creation changed signature three times. */
  CU_OK(cuGetProcAddress_v2("cuCtxCreate", &fn, 11040, 0, &st));
  ASSERT_EQ_PTR(fn, (void *)&cuCtxCreate_v3);
  CU_OK(cuGetProcAddress_v2("cuCtxCreate", &fn, 13000, 0, &st));
  ASSERT_EQ_PTR(fn, (void *)&cuCtxCreate_v4);
  /* Per-thread default stream variants. */
  CU_OK(cuGetProcAddress_v2("cuLaunchKernel", &fn, 12000, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM, &st));
  ASSERT_EQ_PTR(fn, (void *)&cuLaunchKernel_ptsz);
  CU_OK(cuGetProcAddress_v2("cuLaunchKernel", &fn, 12000, CU_GET_PROC_ADDRESS_LEGACY_STREAM, &st));
  ASSERT_EQ_PTR(fn, (void *)&cuLaunchKernel);
  CU_OK(cuGetProcAddress_v2("cuMemcpyHtoD", &fn, 12000, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM, &st));
  ASSERT_EQ_PTR(fn, (void *)&cuMemcpyHtoD_v2_ptds);
  CU_OK(cuGetProcAddress("cuGetProcAddress", &fn, 12000, 0));
  ASSERT_EQ_PTR(fn, (void *)&cuGetProcAddress_v2);
  CU_EXPECT(cuGetProcAddress_v2("cuNoSuchFunction", &fn, 12000, 0, &st), CUDA_ERROR_NOT_FOUND);
  ASSERT_EQ_INT(st, CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND);
  CU_EXPECT(cuGetProcAddress_v2("cuInit", &fn, 12000, 0x100, &st), CUDA_ERROR_INVALID_VALUE);
  CU_EXPECT(cuGetProcAddress_v2(NULL, &fn, 12000, 0, &st), CUDA_ERROR_INVALID_VALUE);
}

VGP_TEST(exports_only_driver_symbols) {
  char path[4096];
  snprintf(path, sizeof(path), "%s/src/sim/libcuda.so.1", vgp_test_build_dir());
  void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  ASSERT_NOT_NULL(h);
  ASSERT_NOT_NULL(dlsym(h, "cuLaunchKernel_ptsz"));
  ASSERT_NOT_NULL(dlsym(h, "cuMemcpyHtoD_v2_ptds"));
  /* Internal symbols stay hidden. */
  ASSERT_NULL(dlsym(h, "vgp_sim_open"));
  ASSERT_NULL(dlsym(h, "vgp__enqueue"));
  ASSERT_NULL(dlsym(h, "g_cu"));
  dlclose(h);
}

VGP_TEST(context_stack) {
  simtest_node("2xL4");
  CU_OK(cuInit(0));
  CUcontext a, b, cur;
  CU_OK(cuCtxGetCurrent(&cur));
  ASSERT_NULL(cur);
  CU_OK(cuCtxCreate_v2(&a, 0, 0));
  CU_OK(cuCtxCreate_v4(&b, NULL, 0, 1));
  CU_OK(cuCtxGetCurrent(&cur));
  ASSERT_EQ_PTR(cur, b);
  CUdevice d;
  CU_OK(cuCtxGetDevice(&d));
  ASSERT_EQ_INT(d, 1);
  CU_OK(cuCtxPopCurrent_v2(&cur));
  ASSERT_EQ_PTR(cur, b);
  CU_OK(cuCtxGetDevice(&d));
  ASSERT_EQ_INT(d, 0);
  CU_OK(cuCtxPushCurrent_v2(b));
  CU_OK(cuCtxSetCurrent(a));
  CU_OK(cuCtxGetDevice_v2(&d, NULL));
  ASSERT_EQ_INT(d, 0);
  CU_OK(cuCtxDestroy_v2(b));
  CU_EXPECT(cuCtxPushCurrent_v2(b), CUDA_ERROR_INVALID_CONTEXT);
  CU_EXPECT(cuCtxDestroy_v2(b), CUDA_ERROR_INVALID_CONTEXT);
  CU_EXPECT(cuCtxDestroy_v2((CUcontext)(uintptr_t)0x1234), CUDA_ERROR_INVALID_CONTEXT);
  CU_EXPECT(cuCtxCreate_v2(&b, 0, 9), CUDA_ERROR_INVALID_DEVICE);
  CU_EXPECT(cuCtxCreate_v2(&b, 0x10000, 0), CUDA_ERROR_INVALID_VALUE);
  CU_OK(cuCtxDestroy_v2(a));
  size_t f, t;
  CU_EXPECT(cuMemGetInfo_v2(&f, &t), CUDA_ERROR_INVALID_CONTEXT);
}

VGP_TEST(primary_context_refcount) {
  simtest_node("1xH100-80GB");
  CU_OK(cuInit(0));
  CUcontext p1, p2;
  unsigned flags;
  int active;
  CU_OK(cuDevicePrimaryCtxGetState(0, &flags, &active));
  ASSERT_EQ_INT(active, 0);
  CU_OK(cuDevicePrimaryCtxRetain(&p1, 0));
  CU_OK(cuDevicePrimaryCtxRetain(&p2, 0));
  ASSERT_EQ_PTR(p1, p2);
  CU_OK(cuDevicePrimaryCtxGetState(0, &flags, &active));
  ASSERT_EQ_INT(active, 1);
  CU_OK(cuCtxSetCurrent(p1));
  size_t free1, total;
  CU_OK(cuMemGetInfo_v2(&free1, &total));
  /* The context's own footprint is device memory in use. */
  ASSERT_EQ_U64(total - free1, 512ull << 20);
  CU_OK(cuDevicePrimaryCtxRelease_v2(0));
  CU_OK(cuDevicePrimaryCtxGetState(0, &flags, &active));
  ASSERT_EQ_INT(active, 1);
  CU_OK(cuDevicePrimaryCtxRelease_v2(0));
  CU_OK(cuDevicePrimaryCtxGetState(0, &flags, &active));
  ASSERT_EQ_INT(active, 0);
  CU_EXPECT(cuDevicePrimaryCtxRelease_v2(0), CUDA_ERROR_INVALID_CONTEXT);
  CU_OK(cuDevicePrimaryCtxRetain(&p1, 0));
  CU_OK(cuDevicePrimaryCtxReset_v2(0));
  CU_OK(cuDevicePrimaryCtxGetState(0, &flags, &active));
  ASSERT_EQ_INT(active, 0);
}

VGP_TEST(visible_devices_by_index_and_uuid) {
  simtest_node("1xT4,1xL4,1xA10");
  CU_OK(cuInit(0));
  CUuuid l4;
  CU_OK(cuDeviceGetUuid(&l4, 1));
  char uuid[64];
  const unsigned char *b = (const unsigned char *)l4.bytes;
  snprintf(uuid, sizeof(uuid), "GPU-%02x%02x%02x%02x-%02x%02x", b[0], b[1], b[2], b[3], b[4], b[5]);
  /* The ordering and filtering apply at cuInit, so check in helpers. */
  char spec[128];
  snprintf(spec, sizeof(spec), "2,%s", uuid);
  setenv("CUDA_VISIBLE_DEVICES", spec, 1);
  ASSERT_EQ_INT(vgp_test_wait(vgp_test_spawn("check_visible", "2", "NVIDIA A10", "NVIDIA L4", NULL)), 0);
  setenv("CUDA_VISIBLE_DEVICES", "1,7,0", 1); /* stops at the invalid entry */
  ASSERT_EQ_INT(vgp_test_wait(vgp_test_spawn("check_visible", "1", "NVIDIA L4", NULL)), 0);
  setenv("CUDA_VISIBLE_DEVICES", "", 1);
  ASSERT_EQ_INT(vgp_test_wait(vgp_test_spawn("check_visible", "0", NULL)), 0);
  unsetenv("CUDA_VISIBLE_DEVICES");
}

VGP_HELPER(check_visible) {
  /* argv[0]: expected count; argv[1..]: expected names in order. */
  int n;
  if (cuInit(0) != CUDA_SUCCESS || cuDeviceGetCount(&n) != CUDA_SUCCESS)
    return 10;
  if (n != atoi(argv[0]))
    return 11;
  for (int i = 0; i < n && i + 1 < argc; i++) {
    char name[64];
    if (cuDeviceGetName(name, sizeof(name), i) != CUDA_SUCCESS || strcmp(name, argv[i + 1]) != 0)
      return 12 + i;
  }
  return 0;
}
