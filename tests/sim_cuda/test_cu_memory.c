/*
 * test_cu_memory.c - memory of the simulated driver: every allocation path
 * charges the device, frees give back exactly what was charged, copies and
 * sets move real bytes, and bad pointers and sizes get the documented
 * errors.
 */
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "simtest.h"

static uint64_t used_on(int dev) {
  CUcontext cur;
  CUdevice d;
  size_t f, t;
  CU_OK(cuCtxGetCurrent(&cur));
  CU_OK(cuCtxGetDevice(&d));
  ASSERT_EQ_INT(d, dev);
  CU_OK(cuMemGetInfo_v2(&f, &t));
  return t - f;
}

VGP_TEST(alloc_free_charges_exactly) {
  simtest_node("1xT4");
  simtest_ctx();
  uint64_t base = used_on(0);
  CUdeviceptr p, q;
  CU_OK(cuMemAlloc_v2(&p, 1000));
  ASSERT_EQ_U64(used_on(0) - base, 1024); /* rounded to 512 bytes */
  CUdeviceptr rb;
  size_t rs;
  CU_OK(cuMemGetAddressRange_v2(&rb, &rs, p + 700));
  ASSERT_EQ_U64(rb, p);
  ASSERT_EQ_U64(rs, 1024);
  CU_OK(cuMemAlloc_v2(&q, 3u << 20));
  ASSERT_EQ_U64(used_on(0) - base, 1024 + (3u << 20));
  CU_OK(cuMemFree_v2(p));
  CU_OK(cuMemFree_v2(q));
  ASSERT_EQ_U64(used_on(0), base);
  CU_EXPECT(cuMemFree_v2(p), CUDA_ERROR_INVALID_VALUE);
  CU_EXPECT(cuMemFree_v2(0xdead0000), CUDA_ERROR_INVALID_VALUE);
  CU_EXPECT(cuMemAlloc_v2(&p, 0), CUDA_ERROR_INVALID_VALUE);
  CU_EXPECT(cuMemAlloc_v2(NULL, 10), CUDA_ERROR_INVALID_VALUE);
  CU_EXPECT(cuMemGetAddressRange_v2(&rb, &rs, 0x1000), CUDA_ERROR_NOT_FOUND);
}

VGP_TEST(device_capacity_is_enforced) {
  simtest_config("[device]\nmodel = T4\nmemory = 1GiB\n");
  simtest_ctx();
  CUdeviceptr p[64];
  int n = 0;
  CUresult r;
  while ((r = cuMemAlloc_v2(&p[n], 100u << 20)) == CUDA_SUCCESS)
    n++;
  ASSERT_EQ_INT(r, CUDA_ERROR_OUT_OF_MEMORY);
  /* 1 GiB minus the 320 MiB context footprint holds seven 100 MiB blocks. */
  ASSERT_EQ_INT(n, 7);
  CU_OK(cuMemFree_v2(p[0]));
  CU_OK(cuMemAlloc_v2(&p[0], 100u << 20));
}

VGP_TEST(pitch_managed_host) {
  simtest_node("1xT4");
  simtest_ctx();
  uint64_t base = used_on(0);
  CUdeviceptr d;
  size_t pitch;
  CU_OK(cuMemAllocPitch_v2(&d, &pitch, 1000, 10, 4));
  ASSERT_EQ_U64(pitch, 1024);
  ASSERT_EQ_U64(used_on(0) - base, 10240);
  CU_EXPECT(cuMemAllocPitch_v2(&d, &pitch, 1000, 10, 3), CUDA_ERROR_INVALID_VALUE);
  CUdeviceptr m;
  CU_OK(cuMemAllocManaged(&m, 4096, CU_MEM_ATTACH_GLOBAL));
  ASSERT_EQ_U64(used_on(0) - base, 10240 + 4096);
  unsigned managed = 0;
  CU_OK(cuPointerGetAttribute(&managed, CU_POINTER_ATTRIBUTE_IS_MANAGED, m));
  ASSERT_EQ_INT(managed, 1);
  memset((void *)(uintptr_t)m, 7, 4096); /* managed memory is host-accessible */
  CU_EXPECT(cuMemAllocManaged(&m, 4096, 0), CUDA_ERROR_INVALID_VALUE);
  void *h;
  CU_OK(cuMemAllocHost_v2(&h, 1 << 20));
  ASSERT_EQ_U64(used_on(0) - base, 10240 + 4096); /* host memory is not device memory */
  unsigned type = 0;
  CU_OK(cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, (CUdeviceptr)(uintptr_t)h));
  ASSERT_EQ_INT(type, CU_MEMORYTYPE_HOST);
  CU_OK(cuMemFreeHost(h));
  CU_EXPECT(cuMemFreeHost(h), CUDA_ERROR_INVALID_VALUE);
  static char buf[8192];
  CU_OK(cuMemHostRegister_v2(buf, sizeof(buf), 0));
  CU_EXPECT(cuMemHostRegister_v2(buf + 100, 10, 0), CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED);
  CUdeviceptr dp;
  CU_OK(cuMemHostGetDevicePointer_v2(&dp, buf, 0));
  ASSERT_EQ_U64(dp, (uint64_t)(uintptr_t)buf);
  CU_OK(cuMemHostUnregister(buf));
  CU_EXPECT(cuMemHostUnregister(buf), CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED);
}

VGP_TEST(copies_and_sets_move_real_bytes) {
  simtest_node("1xL4");
  simtest_ctx();
  enum { N = 1 << 16 };
  static uint32_t in[N], out[N];
  for (int i = 0; i < N; i++)
    in[i] = (uint32_t)i * 2654435761u;
  CUdeviceptr a, b;
  CU_OK(cuMemAlloc_v2(&a, sizeof(in)));
  CU_OK(cuMemAlloc_v2(&b, sizeof(in)));
  CU_OK(cuMemcpyHtoD_v2(a, in, sizeof(in)));
  CU_OK(cuMemcpyDtoD_v2(b, a, sizeof(in)));
  CU_OK(cuMemcpyDtoH_v2(out, b, sizeof(out)));
  ASSERT_EQ_INT(memcmp(in, out, sizeof(in)), 0);
  CU_OK(cuMemsetD32_v2(b + 4, 0xfeedf00d, 10));
  CU_OK(cuMemsetD8_v2(b, 0x11, 4));
  CU_OK(cuMemcpyDtoH_v2(out, b, 64));
  ASSERT_EQ_U64(out[0], 0x11111111);
  ASSERT_EQ_U64(out[5], 0xfeedf00d);
  ASSERT_EQ_U64(out[11], in[11]);
  /* Async copies from pageable memory are staged: changing the source
   * right after the call does not change what lands. */
  CUstream s;
  CU_OK(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
  uint32_t v = 42;
  CU_OK(cuMemcpyHtoDAsync_v2(a, &v, 4, s));
  v = 43;
  CU_OK(cuStreamSynchronize(s));
  CU_OK(cuMemcpyDtoH_v2(&v, a, 4));
  ASSERT_EQ_U64(v, 42);
  /* 2D copy of a 16x4 window. */
  CUDA_MEMCPY2D c;
  memset(&c, 0, sizeof(c));
  c.srcMemoryType = CU_MEMORYTYPE_HOST;
  c.srcHost = in;
  c.srcPitch = 64;
  c.dstMemoryType = CU_MEMORYTYPE_DEVICE;
  c.dstDevice = b;
  c.dstPitch = 128;
  c.WidthInBytes = 16;
  c.Height = 4;
  CU_OK(cuMemcpy2D_v2(&c));
  CU_OK(cuMemcpyDtoH_v2(out, b, 512));
  ASSERT_EQ_U64(out[32 + 1], in[16 + 1]);
  ASSERT_EQ_U64(out[96 + 3], in[48 + 3]);
  /* Bad device ranges are refused. */
  CU_EXPECT(cuMemcpyHtoD_v2(a + sizeof(in) - 4, in, 8), CUDA_ERROR_INVALID_VALUE);
  CU_EXPECT(cuMemcpyDtoH_v2(out, 0x12345000, 4), CUDA_ERROR_INVALID_VALUE);
  CU_EXPECT(cuMemsetD32_v2(a + 2, 0, 1), CUDA_ERROR_INVALID_VALUE);
  CU_EXPECT(cuMemcpyHtoD_v2(a, NULL, 4), CUDA_ERROR_INVALID_VALUE);
}

VGP_TEST(pools_reserve_and_release) {
  simtest_node("1xA30");
  CUcontext ctx = simtest_ctx();
  (void)ctx;
  CUmemoryPool pool;
  CU_OK(cuDeviceGetDefaultMemPool(&pool, 0));
  uint64_t base = used_on(0);
  CUstream s;
  CU_OK(cuStreamCreate(&s, 0));
  CUdeviceptr p;
  CU_OK(cuMemAllocAsync(&p, 3u << 20, s));
  cuuint64_t reserved = 0, used = 0;
  CU_OK(cuMemPoolGetAttribute(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT, &reserved));
  ASSERT_EQ_U64(reserved, 4u << 20); /* 2 MiB blocks */
  ASSERT_EQ_U64(used_on(0) - base, reserved);
  CU_OK(cuMemsetD32Async(p, 5, (3u << 20) / 4, s));
  CU_OK(cuMemFreeAsync(p, s));
  CU_OK(cuStreamSynchronize(s));
  CU_OK(cuMemPoolGetAttribute(pool, CU_MEMPOOL_ATTR_USED_MEM_CURRENT, &used));
  ASSERT_EQ_U64(used, 0);
  /* The default release threshold is 0: synchronizing gave it back. */
  CU_OK(cuMemPoolGetAttribute(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT, &reserved));
  ASSERT_EQ_U64(reserved, 0);
  ASSERT_EQ_U64(used_on(0), base);
  /* With a threshold the pool keeps memory cached and reuses it. */
  cuuint64_t keep = 64u << 20;
  CU_OK(cuMemPoolSetAttribute(pool, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, &keep));
  CU_OK(cuMemAllocAsync(&p, 1u << 20, s));
  CU_OK(cuMemFreeAsync(p, s));
  CU_OK(cuStreamSynchronize(s));
  CU_OK(cuMemPoolGetAttribute(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT, &reserved));
  ASSERT_EQ_U64(reserved, 2u << 20);
  CUdeviceptr p2;
  CU_OK(cuMemAllocAsync(&p2, 1u << 20, s));
  ASSERT_EQ_U64(p2, p);
  CU_OK(cuMemFreeAsync(p2, s));
  CU_OK(cuStreamSynchronize(s));
  CU_OK(cuMemPoolTrimTo(pool, 0));
  ASSERT_EQ_U64(used_on(0), base);
  /* Explicit pools. */
  CUmemPoolProps props;
  memset(&props, 0, sizeof(props));
  props.allocType = CU_MEM_ALLOCATION_TYPE_PINNED;
  props.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  props.location.id = 0;
  CUmemoryPool mine;
  CU_OK(cuMemPoolCreate(&mine, &props));
  CU_OK(cuMemAllocFromPoolAsync(&p, 5u << 20, mine, s));
  CU_OK(cuMemPoolGetAttribute(mine, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT, &reserved));
  ASSERT_EQ_U64(reserved, 6u << 20);
  CU_OK(cuMemFreeAsync(p, s));
  CU_OK(cuStreamSynchronize(s));
  CU_OK(cuMemPoolDestroy(mine));
  ASSERT_EQ_U64(used_on(0), base);
  CU_EXPECT(cuMemPoolDestroy(pool), CUDA_ERROR_INVALID_VALUE);
  CU_EXPECT(cuMemAllocFromPoolAsync(&p, 10, (CUmemoryPool)(uintptr_t)0x99, s), CUDA_ERROR_INVALID_HANDLE);
  cuuint64_t bad = 5;
  CU_EXPECT(cuMemPoolSetAttribute(pool, CU_MEMPOOL_ATTR_USED_MEM_HIGH, &bad), CUDA_ERROR_INVALID_VALUE);
}

VGP_TEST(vmm_map_and_release) {
  simtest_node("1xH100-80GB");
  simtest_ctx();
  uint64_t base = used_on(0);
  CUmemAllocationProp prop;
  memset(&prop, 0, sizeof(prop));
  prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
  prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  prop.location.id = 0;
  size_t gran;
  CU_OK(cuMemGetAllocationGranularity(&gran, &prop, CU_MEM_ALLOC_GRANULARITY_RECOMMENDED));
  ASSERT_EQ_U64(gran, 2u << 20);
  CUmemGenericAllocationHandle h;
  CU_EXPECT(cuMemCreate(&h, gran + 1, &prop, 0), CUDA_ERROR_INVALID_VALUE);
  CU_OK(cuMemCreate(&h, 2 * gran, &prop, 0));
  ASSERT_EQ_U64(used_on(0) - base, 2 * gran); /* charged by handle */
  CUdeviceptr va;
  CU_OK(cuMemAddressReserve(&va, 4 * gran, 0, 0, 0));
  CU_OK(cuMemMap(va + gran, 2 * gran, 0, h, 0));
  CU_EXPECT(cuMemMap(va, 2 * gran, 0, h, 0), CUDA_ERROR_ALREADY_MAPPED);
  /* Mapped but not yet accessible. */
  CU_EXPECT(cuMemsetD32_v2(va + gran, 1, 4), CUDA_ERROR_INVALID_VALUE);
  CUmemAccessDesc acc = {{CU_MEM_LOCATION_TYPE_DEVICE, 0}, CU_MEM_ACCESS_FLAGS_PROT_READWRITE};
  CU_OK(cuMemSetAccess(va + gran, 2 * gran, &acc, 1));
  CU_EXPECT(cuMemSetAccess(va, 4 * gran, &acc, 1), CUDA_ERROR_INVALID_VALUE);
  CU_OK(cuMemsetD32_v2(va + gran, 0xabcdef01, 4));
  uint32_t word;
  CU_OK(cuMemcpyDtoH_v2(&word, va + gran + 8, 4));
  ASSERT_EQ_U64(word, 0xabcdef01);
  CUdeviceptr rb;
  size_t rs;
  CU_OK(cuMemGetAddressRange_v2(&rb, &rs, va + gran + 100));
  ASSERT_EQ_U64(rb, va + gran);
  ASSERT_EQ_U64(rs, 2 * gran);
  /* Release while mapped: memory lives until unmapped. */
  CU_OK(cuMemRelease(h));
  ASSERT_EQ_U64(used_on(0) - base, 2 * gran);
  CU_EXPECT(cuMemMap(va, gran, 0, h, 0), CUDA_ERROR_INVALID_VALUE);
  CU_EXPECT(cuMemAddressFree(va, 4 * gran), CUDA_ERROR_INVALID_VALUE);
  CU_OK(cuMemUnmap(va + gran, 2 * gran));
  ASSERT_EQ_U64(used_on(0), base);
  CU_OK(cuMemAddressFree(va, 4 * gran));
}

VGP_HELPER(ipc_import) {
  /* argv[0]: the handle as hex. Maps it, checks and changes the data. */
  CUipcMemHandle h;
  for (int i = 0; i < CU_IPC_HANDLE_SIZE; i++) {
    unsigned v;
    sscanf(argv[0] + 2 * i, "%2x", &v);
    h.reserved[i] = (char)v;
  }
  CUcontext ctx;
  if (cuInit(0) || cuCtxCreate_v2(&ctx, 0, 0))
    return 10;
  size_t f0, t;
  cuMemGetInfo_v2(&f0, &t);
  CUdeviceptr p;
  CUresult r = cuIpcOpenMemHandle_v2(&p, h, CU_IPC_MEM_LAZY_ENABLE_PEER_ACCESS);
  if (r != CUDA_SUCCESS)
    return 11;
  size_t f1;
  cuMemGetInfo_v2(&f1, &t);
  if (f1 != f0)
    return 12; /* importing must not charge the device again */
  uint32_t v;
  if (cuMemcpyDtoH_v2(&v, p, 4) || v != 0x5eed)
    return 13;
  v = 0xcafe;
  if (cuMemcpyHtoD_v2(p, &v, 4))
    return 14;
  if (cuIpcCloseMemHandle(p) || cuIpcCloseMemHandle(p) != CUDA_ERROR_INVALID_VALUE)
    return 15;
  (void)argc;
  return 0;
}

VGP_TEST(ipc_shares_memory_without_double_charge) {
  simtest_node("1xA100-80GB");
  simtest_ctx();
  CUdeviceptr p;
  CU_OK(cuMemAlloc_v2(&p, 4096));
  uint32_t v = 0x5eed;
  CU_OK(cuMemcpyHtoD_v2(p, &v, 4));
  CUipcMemHandle h;
  CU_OK(cuIpcGetMemHandle(&h, p));
  CUdeviceptr own;
  CU_EXPECT(cuIpcOpenMemHandle_v2(&own, h, 1), CUDA_ERROR_INVALID_CONTEXT);
  char hex[2 * CU_IPC_HANDLE_SIZE + 1];
  for (int i = 0; i < CU_IPC_HANDLE_SIZE; i++)
    sprintf(hex + 2 * i, "%02x", (unsigned char)h.reserved[i]);
  ASSERT_EQ_INT(vgp_test_wait(vgp_test_spawn("ipc_import", hex, NULL)), 0);
  CU_OK(cuMemcpyDtoH_v2(&v, p, 4));
  ASSERT_EQ_U64(v, 0xcafe);
  CU_EXPECT(cuIpcGetMemHandle(&h, p + 4), CUDA_ERROR_INVALID_VALUE);
}

VGP_TEST(arrays_are_charged) {
  simtest_node("1xT4");
  simtest_ctx();
  uint64_t base = used_on(0);
  CUDA_ARRAY3D_DESCRIPTOR d = {1024, 1024, 0, CU_AD_FORMAT_FLOAT, 4, 0};
  CUarray a;
  CU_OK(cuArray3DCreate_v2(&a, &d));
  CUDA_ARRAY_MEMORY_REQUIREMENTS req;
  CU_OK(cuArrayGetMemoryRequirements(&req, a, 0));
  ASSERT_EQ_U64(req.size, 16u << 20);
  ASSERT_EQ_U64(used_on(0) - base, req.size);
  CU_OK(cuArrayDestroy(a));
  ASSERT_EQ_U64(used_on(0), base);
  CU_EXPECT(cuArrayDestroy(a), CUDA_ERROR_INVALID_HANDLE);
  d.Format = (CUarray_format)0x77;
  CU_EXPECT(cuArray3DCreate_v2(&a, &d), CUDA_ERROR_INVALID_VALUE);
}

VGP_TEST(destroying_a_context_frees_its_memory) {
  simtest_node("1xT4");
  CUcontext keep = simtest_ctx();
  uint64_t base = used_on(0);
  CUcontext other;
  CU_OK(cuCtxCreate_v2(&other, 0, 0));
  CUdeviceptr p;
  CU_OK(cuMemAlloc_v2(&p, 64u << 20));
  ASSERT_EQ_U64(used_on(0) - base, (64u << 20) + (320u << 20));
  CU_OK(cuCtxDestroy_v2(other));
  CU_OK(cuCtxSetCurrent(keep));
  ASSERT_EQ_U64(used_on(0), base);
}
