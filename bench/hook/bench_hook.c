/*
 * bench_hook.c - the calls whose cost libvgpool.so adds to, in tight loops,
 * so that the library's overhead can be measured as a difference.
 *
 * bench/hook/run.sh runs this one binary twice with the same arguments
 * against the same driver: once bare, once with libvgpool.so preloaded in a
 * container whose limits file gives it a memory quota (so the library is
 * active: it charges every allocation and makes memory queries virtual) and
 * no compute share (so launches take the unthrottled fast path). The
 * difference between the two runs is what the library adds. Each measured
 * loop is a function of its own with a fixed name, so that callgrind
 * (--collect-atstart=no --toggle-collect=vgp_bench_<op>) counts exactly the
 * loop on the calling thread:
 *
 *   allocfree  cuMemAlloc_v2(1 MiB) then cuMemFree_v2: one pair per iteration
 *   launch     cuLaunchKernel(vgpool_spin, ns = 0) on a stream: the enqueue
 *   meminfo    cuMemGetInfo_v2 (virtual under the library)
 *
 * The harness (bench/common/benchcu.c) runs them in batches bracketed by a
 * getppid() system call: run.sh counts the calling thread's system calls
 * between the brackets under strace, which shows whether the library makes
 * any.
 *
 * The driver is loaded the way the workloads load it (src/work/work.c:
 * dlopen, then every entry point through cuGetProcAddress_v2, the CUDA
 * runtime's and PyTorch's path), so under the preload the loops call the
 * library's wrappers, and on a GPU machine the same program measures
 * NVIDIA's driver. The first line printed reports cuMemGetInfo's total,
 * which run.sh uses to check that the library really was active.
 */
#include <stdio.h>

#include "benchcu.h"

#define VGP_BENCH_ALLOC (1u << 20)

/* The loops. */
static inline CUresult vgp__allocfree(const struct vgp_bench *b, unsigned n) {
  CUresult first = CUDA_SUCCESS;
  for (unsigned i = 0; i < n; i++) {
    CUdeviceptr p = 0;
    CUresult r = b->cu->cuMemAlloc_v2(&p, VGP_BENCH_ALLOC);
    if (r == CUDA_SUCCESS)
      r = b->cu->cuMemFree_v2(p);
    if (first == CUDA_SUCCESS)
      first = r;
  }
  return first;
}

static inline CUresult vgp__meminfo(const struct vgp_bench *b, unsigned n) {
  CUresult first = CUDA_SUCCESS;
  for (unsigned i = 0; i < n; i++) {
    size_t free_b = 0, total_b = 0;
    CUresult r = b->cu->cuMemGetInfo_v2(&free_b, &total_b);
    if (first == CUDA_SUCCESS)
      first = r;
  }
  return first;
}

/* The measured entry points (benchcu.h). */
CUresult vgp_bench_allocfree(const struct vgp_bench *b, unsigned n) __attribute__((noinline));
CUresult vgp_bench_launch(const struct vgp_bench *b, unsigned n) __attribute__((noinline));
CUresult vgp_bench_meminfo(const struct vgp_bench *b, unsigned n) __attribute__((noinline));

CUresult vgp_bench_allocfree(const struct vgp_bench *b, unsigned n) {
  VGP_BENCH_DISTINCT();
  return vgp__allocfree(b, n);
}

CUresult vgp_bench_launch(const struct vgp_bench *b, unsigned n) {
  VGP_BENCH_DISTINCT();
  return vgp_bench_launches(b, n);
}

CUresult vgp_bench_meminfo(const struct vgp_bench *b, unsigned n) {
  VGP_BENCH_DISTINCT();
  return vgp__meminfo(b, n);
}

static const struct vgp_bench_op vgp__ops[] = {
  {"allocfree", "cuMemAlloc_v2 + cuMemFree_v2 (1 MiB)", vgp_bench_allocfree, vgp__allocfree},
  {"launch", "cuLaunchKernel (enqueue)", vgp_bench_launch, vgp_bench_launches},
  {"meminfo", "cuMemGetInfo_v2", vgp_bench_meminfo, vgp__meminfo},
};

/* The first line reports cuMemGetInfo's total, which run.sh uses to check
 * that the library really was active. */
static int vgp__bench_header(const struct vgp_bench *b, const struct vgp_work_device *dev) {
  size_t free_b = 0, total_b = 0;
  int r = vgp_work_cu_check(b->cu, b->cu->cuMemGetInfo_v2(&free_b, &total_b), "cuMemGetInfo_v2");
  if (r == 0)
    printf("# vgpool-bench-hook: device 0 (%s), driver %d, resolver %s, memory total %zu\n",
           dev->name, b->cu->driver_version, b->cu->resolver, total_b);
  return r;
}

static const char vgp__bench_usage[] =
  "usage: vgpool-bench-hook [--op allocfree|launch|meminfo|all] [--iters N]\n"
  "\n"
  "Calls cuMemAlloc_v2 + cuMemFree_v2, cuLaunchKernel and cuMemGetInfo_v2 in\n"
  "tight loops on device 0 of whichever libcuda.so.1 is found, with or\n"
  "without libvgpool.so preloaded. Prints the memory total the process sees,\n"
  "then one line per op: op=NAME iters=N ns_per_op=X. bench/hook/run.sh runs\n"
  "it bare and preloaded, natively, under callgrind and under strace.\n";

int main(int argc, char **argv) {
  static const struct vgp_bench_prog prog = {
    .prog = "vgpool-bench-hook",
    .usage = vgp__bench_usage,
    .ops = vgp__ops,
    .nops = sizeof(vgp__ops) / sizeof(vgp__ops[0]),
    .header = vgp__bench_header,
  };
  return vgp_bench_main(&prog, argc, argv);
}
