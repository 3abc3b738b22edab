/*
 * gpu_probe.c - is there a real NVIDIA GPU to run tests/gpu/ on?
 *
 * tests/gpu/run.sh runs this with LD_LIBRARY_PATH and LD_PRELOAD cleared,
 * after checking /dev/nvidiactl and nvidia-smi, so that the simulated
 * driver of a build tree can never pass for a GPU. The probe loads
 * libcuda.so.1 the way every CUDA program does (dlopen by soname), and
 * answers "no GPU" (exit 77, the reason on stdout) when
 *
 *   - libcuda.so.1 cannot be loaded or lacks cuInit,
 *   - the library the loader found is vgpool's simulated driver (its file
 *     carries the simulator's environment variable names; NVIDIA's does
 *     not) - e.g. a build's src/sim in /etc/ld.so.conf.d,
 *   - cuInit(0) fails, or no device is visible.
 *
 * Otherwise it prints one line naming the driver file, the CUDA version the
 * driver supports and device 0, and exits 0. Any other status is a bug here.
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vgpool_cuda.h"

#define VGP_PROBE_SKIP 77

/* Does the file at path contain marker? */
static int vgp__file_contains(const char *path, const char *marker) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return 0;
  struct stat st;
  int found = 0;
  if (fstat(fd, &st) == 0 && st.st_size > 0) {
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map != MAP_FAILED) {
      found = memmem(map, (size_t)st.st_size, marker, strlen(marker)) != NULL;
      munmap(map, (size_t)st.st_size);
    }
  }
  close(fd);
  return found;
}

int main(void) {
  void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (lib == NULL) {
    printf("no GPU: libcuda.so.1 cannot be loaded (%s)\n", dlerror());
    return VGP_PROBE_SKIP;
  }
  vgp_pfn_cuInit init = (vgp_pfn_cuInit)dlsym(lib, "cuInit");
  vgp_pfn_cuDriverGetVersion version = (vgp_pfn_cuDriverGetVersion)dlsym(lib, "cuDriverGetVersion");
  vgp_pfn_cuDeviceGetCount count = (vgp_pfn_cuDeviceGetCount)dlsym(lib, "cuDeviceGetCount");
  vgp_pfn_cuDeviceGet get = (vgp_pfn_cuDeviceGet)dlsym(lib, "cuDeviceGet");
  vgp_pfn_cuDeviceGetName name = (vgp_pfn_cuDeviceGetName)dlsym(lib, "cuDeviceGetName");
  if (init == NULL || version == NULL || count == NULL || get == NULL || name == NULL) {
    printf("no GPU: the libcuda.so.1 found lacks the basic entry points\n");
    return VGP_PROBE_SKIP;
  }

  Dl_info info;
  const char *path = "libcuda.so.1";
  if (dladdr((void *)init, &info) != 0 && info.dli_fname != NULL)
    path = info.dli_fname;
  if (vgp__file_contains(path, "VGPOOL_SIM_")) {
    printf("no GPU: the libcuda.so.1 the loader finds (%s) is vgpool's simulated driver\n", path);
    return VGP_PROBE_SKIP;
  }

  CUresult r = init(0);
  if (r != CUDA_SUCCESS) {
    printf("no GPU: cuInit(0) of %s failed with CUresult %d\n", path, (int)r);
    return VGP_PROBE_SKIP;
  }
  int n = 0, v = 0;
  if (count(&n) != CUDA_SUCCESS || n < 1) {
    printf("no GPU: %s sees no CUDA device\n", path);
    return VGP_PROBE_SKIP;
  }
  char dev_name[256] = "?";
  CUdevice dev;
  if (get(&dev, 0) == CUDA_SUCCESS)
    name(dev_name, (int)sizeof(dev_name), dev);
  version(&v);
  printf("GPU: %d device(s), device 0 %s; %s supports CUDA %d.%d\n", n, dev_name, path, v / 1000,
         (v % 1000) / 10);
  return 0;
}
