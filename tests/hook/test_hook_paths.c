/*
 * test_hook_paths.c - every way a program can reach the driver lands in
 * libvgpool.so's wrapper: direct linking, dlopen + dlsym on the driver's
 * handle, RTLD_DEFAULT and RTLD_NEXT, and cuGetProcAddress with each CUDA
 * version and stream flag; names we do not hook pass through untouched.
 */
#include <dlfcn.h>
#include <link.h>

#include "hooktest.h"

#define MiB (1ull << 20)

/* The file name of the object that defines address p. */
static const char *owner(const void *p) {
  Dl_info info;
  if (p == NULL || dladdr(p, &info) == 0 || info.dli_fname == NULL)
    return "(none)";
  const char *slash = strrchr(info.dli_fname, '/');
  return slash ? slash + 1 : info.dli_fname;
}

#define IN_HOOK(p) (strcmp(owner(p), "libvgpool.so") == 0)
#define IN_DRIVER(p) (strcmp(owner(p), "libcuda.so.1") == 0)

static size_t used_now(void) {
  size_t f = 0, t = 0;
  cuMemGetInfo_v2(&f, &t);
  return t - f;
}

VGP_HELPER(entry_paths) {
  (void)argc;
  (void)argv;
  /* Direct linking: this binary's references bind to the preload. */
  HT_CHECK(IN_HOOK((void *)&cuMemAlloc_v2));
  HT_CHECK(IN_HOOK((void *)&cuLaunchKernel));
  HT_CHECK(IN_DRIVER((void *)&cuMemcpyHtoD_v2)); /* not hooked */

  /* dlopen + dlsym on the driver's handle. */
  void *lib = dlopen("libcuda.so.1", RTLD_NOW);
  HT_CHECK(lib != NULL);
  vgp_pfn_cuMemAlloc_v2 alloc = (vgp_pfn_cuMemAlloc_v2)dlsym(lib, "cuMemAlloc_v2");
  HT_CHECK(IN_HOOK((void *)alloc));
  HT_CHECK(IN_HOOK(dlsym(lib, "cuGetProcAddress_v2")));
  HT_CHECK(IN_DRIVER(dlsym(lib, "cuMemcpyDtoH_v2")));
  HT_CHECK(IN_DRIVER(dlsym(lib, "cuDeviceGetName")));
  HT_CHECK(dlsym(lib, "cuNoSuchThing") == NULL);
  HT_CHECK(IN_HOOK(dlsym(RTLD_DEFAULT, "cuMemFree_v2")));
  HT_CHECK(IN_HOOK(dlsym(RTLD_NEXT, "cuLaunchKernelEx")));
  /* RTLD_NEXT stays relative to the caller for everything else. */
  HT_CHECK(dlsym(RTLD_NEXT, "malloc") != NULL);
  HT_CHECK(strncmp(owner(dlsym(RTLD_NEXT, "malloc")), "libc.so", 7) == 0);

  /* cuGetProcAddress with each version and flag. */
  vgp_pfn_cuGetProcAddress_v2 gpa = (vgp_pfn_cuGetProcAddress_v2)dlsym(lib, "cuGetProcAddress_v2");
  void *fn;
  CUdriverProcAddressQueryResult st;
  HT_CU_OK(gpa("cuMemAlloc", &fn, 12000, 0, &st));
  HT_CHECK(fn == (void *)alloc);
  HT_CU_OK(gpa("cuLaunchKernel", &fn, 12000, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM, &st));
  HT_CHECK(IN_HOOK(fn) && fn == dlsym(lib, "cuLaunchKernel_ptsz"));
  HT_CU_OK(gpa("cuLaunchKernel", &fn, 12000, CU_GET_PROC_ADDRESS_LEGACY_STREAM, &st));
  HT_CHECK(fn == dlsym(lib, "cuLaunchKernel"));
  HT_CU_OK(gpa("cuCtxCreate", &fn, 11040, 0, &st));
  HT_CHECK(fn == dlsym(lib, "cuCtxCreate_v3"));
  HT_CU_OK(gpa("cuCtxCreate", &fn, 13000, 0, &st));
  HT_CHECK(fn == dlsym(lib, "cuCtxCreate_v4"));
  HT_CU_OK(gpa("cuMemAllocAsync", &fn, 12000, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM, &st));
  HT_CHECK(fn == dlsym(lib, "cuMemAllocAsync_ptsz"));
  HT_CU_OK(gpa("cuGetProcAddress", &fn, 12000, 0, &st));
  HT_CHECK(fn == (void *)gpa);
  HT_CU_OK(gpa("cuMemcpyHtoD", &fn, 12000, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM, &st));
  HT_CHECK(IN_DRIVER(fn)); /* not hooked: the real pointer, untouched */
  HT_CHECK(gpa("cuMemAlloc", &fn, 2000, 0, &st) == CUDA_ERROR_NOT_FOUND);
  HT_CHECK(st == CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT);

  /* And every path is accounted. */
  vgp_pfn_cuInit init;
  HT_CU_OK(gpa("cuInit", (void **)&init, 12000, 0, &st));
  HT_CU_OK(init(0));
  CUcontext ctx;
  HT_CU_OK(cuCtxCreate_v2(&ctx, 0, 0));
  size_t base = used_now();
  CUdeviceptr p1, p2, p3;
  HT_CU_OK(cuMemAlloc_v2(&p1, 10 * MiB));
  HT_CU_OK(alloc(&p2, 10 * MiB));
  vgp_pfn_cuMemAlloc_v2 via_gpa;
  HT_CU_OK(gpa("cuMemAlloc", (void **)&via_gpa, 13000, 0, &st));
  HT_CU_OK(via_gpa(&p3, 10 * MiB));
  HT_CHECK(used_now() - base == 30 * MiB);
  vgp_pfn_cuMemFree_v2 free_fn = (vgp_pfn_cuMemFree_v2)dlsym(RTLD_DEFAULT, "cuMemFree_v2");
  HT_CU_OK(free_fn(p1));
  HT_CU_OK(free_fn(p2));
  HT_CU_OK(free_fn(p3));
  HT_CHECK(used_now() == base);
  return 0;
}

VGP_TEST(every_entry_path_reaches_the_wrapper) {
  ht_node("[device]\nmodel = T4\ncontext_memory = 32MiB\n");
  int devs[] = {0};
  uint64_t mem[] = {1ull << 30};
  ht_container("c1", 1, devs, mem);
  ASSERT_EQ_INT(ht_run("entry_paths", NULL), 0);
}

VGP_TEST(a_process_without_cuda_pays_nothing) {
  char lib[4096];
  snprintf(lib, sizeof(lib), "%s/src/hook/libvgpool.so", vgp_test_build_dir());
  setenv("LD_PRELOAD", lib, 1);
  /* /bin/true under the preload: it must simply work. */
  int status = system("/bin/true && /bin/echo preload-ok >/dev/null");
  unsetenv("LD_PRELOAD");
  ASSERT_EQ_INT(status, 0);
  /* Nothing loads the driver into a process that does not use it. */
  setenv("LD_PRELOAD", lib, 1);
  status = system("sh -c 'grep -q libcuda /proc/self/maps && exit 3; exit 0'");
  unsetenv("LD_PRELOAD");
  ASSERT_EQ_INT(status, 0);
}
