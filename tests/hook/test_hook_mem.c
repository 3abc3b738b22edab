/*
 * test_hook_mem.c - libvgpool.so enforces a container's memory quota on
 * every allocation path, charges what the driver really gave, returns
 * exactly that on free, and shows the container a virtual device whose
 * total is its quota.
 */
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>

#include "hooktest.h"
#include "vgpool_nvml.h"

#define MiB (1ull << 20)
#define GiB (1ull << 30)

static const char *node_conf =
    "[device]\nmodel = L4\nmemory = 4GiB\ncontext_memory = 64MiB\n"
    "[device]\nmodel = L4\nmemory = 4GiB\ncontext_memory = 64MiB\n";

static size_t free_now(void) {
  size_t f = 0, t = 0;
  cuMemGetInfo_v2(&f, &t);
  return f;
}

VGP_HELPER(quota_paths) {
  CUcontext ctx;
  size_t f, t, total;
  (void)argc;
  (void)argv;
  HT_CU_OK(cuInit(0));
  HT_CU_OK(cuDevicePrimaryCtxRetain(&ctx, 0));
  HT_CU_OK(cuCtxSetCurrent(ctx));
  HT_CU_OK(cuMemGetInfo_v2(&f, &t));
  HT_CHECK(t == GiB);
  HT_CHECK(f == GiB - 64 * MiB); /* the context's own memory is charged */
  HT_CU_OK(cuDeviceTotalMem_v2(&total, 0));
  HT_CHECK(total == GiB);

  CUdeviceptr a, b, c;
  HT_CU_OK(cuMemAlloc_v2(&a, 512 * MiB));
  HT_CHECK(cuMemAlloc_v2(&b, 512 * MiB) == CUDA_ERROR_OUT_OF_MEMORY);
  HT_CU_OK(cuMemAlloc_v2(&b, 400 * MiB));
  HT_CHECK(free_now() == GiB - 976 * MiB);
  HT_CU_OK(cuMemFree_v2(b));
  HT_CHECK(free_now() == GiB - 576 * MiB);
  /* Small sizes are charged as the driver rounds them. */
  HT_CU_OK(cuMemAlloc_v2(&c, 1000));
  HT_CHECK(free_now() == GiB - 576 * MiB - 1024);
  HT_CU_OK(cuMemFree_v2(c));

  /* Pitch: charged at the pitch the driver chose. */
  size_t pitch;
  HT_CU_OK(cuMemAllocPitch_v2(&c, &pitch, 1000, 1000, 4));
  HT_CHECK(free_now() == GiB - 576 * MiB - pitch * 1000);
  HT_CU_OK(cuMemFree_v2(c));

  /* Managed memory counts against the device. */
  HT_CHECK(cuMemAllocManaged(&c, 500 * MiB, CU_MEM_ATTACH_GLOBAL) == CUDA_ERROR_OUT_OF_MEMORY);
  HT_CU_OK(cuMemAllocManaged(&c, 100 * MiB, CU_MEM_ATTACH_GLOBAL));
  HT_CHECK(free_now() == GiB - 676 * MiB);
  HT_CU_OK(cuMemFree_v2(c));

  /* Stream-ordered allocation: what the pool reserves is charged, and
   * given back when the pool releases it at synchronization. */
  CUstream s;
  HT_CU_OK(cuStreamCreate(&s, 0));
  HT_CU_OK(cuMemAllocAsync(&c, 3 * MiB, s));
  HT_CHECK(free_now() == GiB - 580 * MiB); /* 4 MiB reserved */
  HT_CHECK(cuMemAllocAsync(&b, 500 * MiB, s) == CUDA_ERROR_OUT_OF_MEMORY);
  HT_CU_OK(cuMemFreeAsync(c, s));
  HT_CU_OK(cuStreamSynchronize(s));
  HT_CHECK(free_now() == GiB - 576 * MiB);

  /* VMM: charged by handle when created, returned by release. */
  CUmemAllocationProp prop;
  memset(&prop, 0, sizeof(prop));
  prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
  prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  prop.location.id = 0;
  CUmemGenericAllocationHandle h;
  HT_CHECK(cuMemCreate(&h, 512 * MiB, &prop, 0) == CUDA_ERROR_OUT_OF_MEMORY);
  HT_CU_OK(cuMemCreate(&h, 256 * MiB, &prop, 0));
  HT_CHECK(free_now() == GiB - 832 * MiB);
  HT_CU_OK(cuMemRelease(h));
  HT_CHECK(free_now() == GiB - 576 * MiB);

  /* Arrays: charged at the size the driver says they need. */
  CUDA_ARRAY3D_DESCRIPTOR d = {2048, 2048, 0, CU_AD_FORMAT_FLOAT, 4, 0};
  CUarray arr;
  HT_CU_OK(cuArray3DCreate_v2(&arr, &d));
  CUDA_ARRAY_MEMORY_REQUIREMENTS req;
  HT_CU_OK(cuArrayGetMemoryRequirements(&req, arr, 0));
  HT_CHECK(free_now() == GiB - 576 * MiB - req.size);
  HT_CU_OK(cuArrayDestroy(arr));
  d.Width = d.Height = 8192;
  HT_CHECK(cuArray3DCreate_v2(&arr, &d) == CUDA_ERROR_OUT_OF_MEMORY);

  HT_CU_OK(cuMemFree_v2(a));
  HT_CHECK(free_now() == GiB - 64 * MiB);
  /* Releasing the last reference frees the context and its charge. */
  HT_CU_OK(cuDevicePrimaryCtxRelease_v2(0));
  HT_CHECK(cuDevicePrimaryCtxRetain(&ctx, 0) == CUDA_SUCCESS);
  HT_CU_OK(cuCtxSetCurrent(ctx));
  HT_CHECK(free_now() == GiB - 64 * MiB);
  return 0;
}

VGP_TEST(every_allocation_path_is_charged_exactly) {
  ht_node(node_conf);
  int devs[] = {0};
  uint64_t mem[] = {GiB};
  ht_container("c1", 1, devs, mem);
  ASSERT_EQ_INT(ht_run("quota_paths", NULL), 0);
  struct vgp__region r;
  ht_open_region(&r, "c1");
  /* The process exited: everything it was charged came back. */
  vgp__region_reclaim(&r);
  ASSERT_EQ_U64(r.r->dev[0].used, 0);
  ASSERT_GE_U64(r.r->dev[0].oom_events, 5);
  /* The context size was learned once for the container. */
  ASSERT_EQ_U64(r.r->dev[0].ctx_footprint, 64 * MiB);
}

VGP_HELPER(hold) {
  /* argv[0]: MiB to allocate. Holds it and reports. */
  CUcontext ctx;
  CUdeviceptr p;
  (void)argc;
  HT_CU_OK(cuInit(0));
  HT_CU_OK(cuCtxCreate_v2(&ctx, 0, 0));
  CUresult r = cuMemAlloc_v2(&p, (size_t)atoi(argv[0]) * MiB);
  printf("%d\n", (int)r);
  fflush(stdout);
  for (;;)
    pause();
}

static int read_int(int fd) {
  char buf[32];
  size_t n = 0;
  while (n < sizeof(buf) - 1 && read(fd, buf + n, 1) == 1 && buf[n] != '\n')
    n++;
  buf[n] = '\0';
  return atoi(buf);
}

static pid_t spawn_hold(const char *mib, int *ret_fd) {
  int fds[2];
  if (pipe(fds) < 0)
    vgp_test_fail(__FILE__, __LINE__, "pipe");
  int saved = dup(1);
  dup2(fds[1], 1);
  char *args[] = {(char *)mib, NULL};
  pid_t pid = ht_spawn("hold", args);
  dup2(saved, 1);
  close(saved);
  close(fds[1]);
  *ret_fd = fds[0];
  return pid;
}

VGP_TEST(quota_is_shared_by_the_containers_processes) {
  ht_node(node_conf);
  int devs[] = {0};
  uint64_t mem[] = {GiB};
  ht_container("c1", 1, devs, mem);
  int fd1, fd2;
  pid_t p1 = spawn_hold("600", &fd1);
  ASSERT_EQ_INT(read_int(fd1), CUDA_SUCCESS);
  /* 64 + 600 used; a second process has 64 for its context and 296 left. */
  pid_t p2 = spawn_hold("300", &fd2);
  ASSERT_EQ_INT(read_int(fd2), CUDA_ERROR_OUT_OF_MEMORY);
  kill(p2, SIGKILL);
  vgp_test_wait(p2);
  pid_t p3 = spawn_hold("296", &fd2);
  ASSERT_EQ_INT(read_int(fd2), CUDA_SUCCESS);

  /* The region agrees with the simulator's ground truth. */
  struct vgp_sim_handle node;
  ht_open_node(&node);
  uint64_t truth = 0;
  for (int i = 0; i < VGP_SIM_MAX_PROCS; i++) {
    const struct vgp_sim_proc_slot *s = &node.node->slots[i];
    if (s->state == VGP_SIM_SLOT_ACTIVE && (s->pid == p1 || s->pid == p3))
      truth += s->dev[0].used_bytes;
  }
  struct vgp__region r;
  ht_open_region(&r, "c1");
  ASSERT_EQ_U64(r.r->dev[0].used, truth);
  ASSERT_EQ_U64(truth, GiB);

  /* A killed process's charges return to the container. */
  kill(p1, SIGKILL);
  vgp_test_wait(p1);
  ASSERT_EQ_INT(vgp__region_reclaim(&r), 1);
  ASSERT_EQ_U64(r.r->dev[0].used, 360 * MiB);
  kill(p3, SIGKILL);
  vgp_test_wait(p3);
  vgp__region_reclaim(&r);
  ASSERT_EQ_U64(r.r->dev[0].used, 0);
  vgp_sim_close(&node);
}

VGP_HELPER(nvml_view) {
  (void)argc;
  (void)argv;
  /* NVML alone, without CUDA, sees the container's view. */
  nvmlDevice_t d;
  nvmlMemory_t m;
  nvmlMemory_v2_t m2;
  if (nvmlInit_v2() != NVML_SUCCESS || nvmlDeviceGetHandleByIndex_v2(0, &d) != NVML_SUCCESS)
    return 10;
  if (nvmlDeviceGetMemoryInfo(d, &m) != NVML_SUCCESS)
    return 11;
  HT_CHECK(m.total == GiB);
  HT_CHECK(m.used == 0);
  m2.version = nvmlMemory_v2;
  if (nvmlDeviceGetMemoryInfo_v2(d, &m2) != NVML_SUCCESS)
    return 12;
  HT_CHECK(m2.total == GiB && m2.free == GiB);
  /* The other device is not the container's: the real figures. */
  if (nvmlDeviceGetHandleByIndex_v2(1, &d) != NVML_SUCCESS || nvmlDeviceGetMemoryInfo(d, &m) != NVML_SUCCESS)
    return 13;
  HT_CHECK(m.total == 4 * GiB);
  nvmlShutdown();
  return 0;
}

VGP_TEST(nvml_shows_the_quota_without_cuda) {
  ht_node(node_conf);
  int devs[] = {0};
  uint64_t mem[] = {GiB};
  ht_container("c1", 1, devs, mem);
  ASSERT_EQ_INT(ht_run("nvml_view", NULL), 0);
}

VGP_HELPER(ipc_export) {
  CUcontext ctx;
  CUdeviceptr p;
  CUipcMemHandle h;
  (void)argc;
  (void)argv;
  HT_CU_OK(cuInit(0));
  HT_CU_OK(cuCtxCreate_v2(&ctx, 0, 0));
  HT_CU_OK(cuMemAlloc_v2(&p, 256 * MiB));
  HT_CU_OK(cuIpcGetMemHandle(&h, p));
  for (int i = 0; i < CU_IPC_HANDLE_SIZE; i++)
    printf("%02x", (unsigned char)h.reserved[i]);
  printf("\n");
  fflush(stdout);
  for (;;)
    pause();
}

VGP_HELPER(ipc_import) {
  CUcontext ctx;
  CUdeviceptr p;
  CUipcMemHandle h;
  (void)argc;
  for (int i = 0; i < CU_IPC_HANDLE_SIZE; i++) {
    unsigned v;
    sscanf(argv[0] + 2 * i, "%2x", &v);
    h.reserved[i] = (char)v;
  }
  HT_CU_OK(cuInit(0));
  HT_CU_OK(cuCtxCreate_v2(&ctx, 0, 0));
  size_t before = free_now();
  HT_CU_OK(cuIpcOpenMemHandle_v2(&p, h, CU_IPC_MEM_LAZY_ENABLE_PEER_ACCESS));
  HT_CHECK(free_now() == before); /* imported memory is not charged twice */
  HT_CU_OK(cuIpcCloseMemHandle(p));
  return 0;
}

VGP_TEST(ipc_memory_is_charged_once) {
  ht_node(node_conf);
  int devs[] = {0};
  uint64_t mem[] = {GiB};
  ht_container("c1", 1, devs, mem);
  int fds[2];
  ASSERT_OK(pipe(fds));
  int saved = dup(1);
  dup2(fds[1], 1);
  pid_t exporter = ht_spawn("ipc_export", NULL);
  dup2(saved, 1);
  char hex[2 * CU_IPC_HANDLE_SIZE + 2];
  size_t n = 0;
  while (n < sizeof(hex) - 1 && read(fds[0], hex + n, 1) == 1 && hex[n] != '\n')
    n++;
  hex[n] = '\0';
  ASSERT_EQ_U64(n, 2 * CU_IPC_HANDLE_SIZE);
  char *args[] = {hex, NULL};
  ASSERT_EQ_INT(ht_run("ipc_import", args), 0);
  kill(exporter, SIGKILL);
  vgp_test_wait(exporter);
}
