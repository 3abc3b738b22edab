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
 * Launches run in batches of 1000 with the stream drained between batches,
 * outside the measured function, so that no measured launch waits for room
 * in the driver's queue. Every batch is bracketed by a getppid() system
 * call: run.sh counts the calling thread's system calls between the
 * brackets under strace, which shows whether the library makes any.
 *
 * The driver is loaded the way the workloads load it (src/work/work.c:
 * dlopen, then every entry point through cuGetProcAddress_v2, the CUDA
 * runtime's and PyTorch's path), so under the preload the loops call the
 * library's wrappers, and on a GPU machine the same program measures
 * NVIDIA's driver. The first line printed reports cuMemGetInfo's total,
 * which run.sh uses to check that the library really was active.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "work.h"

#define VGP_BENCH_BATCH 1000u
#define VGP_BENCH_WARMUP 200u
#define VGP_BENCH_ALLOC (1u << 20)

struct vgp_bench {
  const struct vgp_work_cu *cu;
  const struct vgp_work_kernels *k;
  CUstream stream;
  unsigned blocks;
};

/* The loops. Each returns the first failure so that checking costs nothing
 * inside the loop. */
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

static inline CUresult vgp__launch(const struct vgp_bench *b, unsigned n) {
  uint64_t ns = 0;
  void *params[] = {&ns};
  CUresult first = CUDA_SUCCESS;
  for (unsigned i = 0; i < n; i++) {
    CUresult r = b->cu->cuLaunchKernel(b->k->spin, b->blocks, 1, 1, 128, 1, 1, 0, b->stream,
                                       params, NULL);
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

/* The measured entry points: extern and never inlined so that callgrind
 * can toggle collection on their names. The warm-up runs the same loops
 * through the functions above, outside them, so it is never counted; the
 * empty asm keeps the compiler from folding a measured function and its
 * identical warm-up twin into one (gcc's -fipa-icf, on at -O2). */
#define VGP_BENCH_DISTINCT() __asm__ volatile("" ::: "memory")
CUresult vgp_bench_allocfree(const struct vgp_bench *b, unsigned n) __attribute__((noinline));
CUresult vgp_bench_launch(const struct vgp_bench *b, unsigned n) __attribute__((noinline));
CUresult vgp_bench_meminfo(const struct vgp_bench *b, unsigned n) __attribute__((noinline));

CUresult vgp_bench_allocfree(const struct vgp_bench *b, unsigned n) {
  VGP_BENCH_DISTINCT();
  return vgp__allocfree(b, n);
}

CUresult vgp_bench_launch(const struct vgp_bench *b, unsigned n) {
  VGP_BENCH_DISTINCT();
  return vgp__launch(b, n);
}

CUresult vgp_bench_meminfo(const struct vgp_bench *b, unsigned n) {
  VGP_BENCH_DISTINCT();
  return vgp__meminfo(b, n);
}

struct vgp__bench_op {
  const char *name;
  const char *what;
  CUresult (*fn)(const struct vgp_bench *b, unsigned n);   /* measured */
  CUresult (*warm)(const struct vgp_bench *b, unsigned n); /* not measured */
};

static const struct vgp__bench_op vgp__ops[] = {
  {"allocfree", "cuMemAlloc_v2 + cuMemFree_v2 (1 MiB)", vgp_bench_allocfree, vgp__allocfree},
  {"launch", "cuLaunchKernel (enqueue)", vgp_bench_launch, vgp__launch},
  {"meminfo", "cuMemGetInfo_v2", vgp_bench_meminfo, vgp__meminfo},
};

#define VGP_BENCH_NOPS (sizeof(vgp__ops) / sizeof(vgp__ops[0]))

/* Runs one op iters times in batches, draining the stream between batches
 * (outside the measured function); the warm-up batch pays for lazy set-up
 * (the library's first-call initialization, per-thread state, page faults)
 * that a steady state does not. Returns 0 or -errno and the wall time per
 * call in *ret_ns. */
static int vgp__bench_run(const struct vgp_bench *b, const struct vgp__bench_op *op,
                          unsigned iters, double *ret_ns) {
  const struct vgp_work_cu *cu = b->cu;
  uint64_t spent = 0;
  int r;

  r = vgp_work_cu_check(cu, op->warm(b, VGP_BENCH_WARMUP), "%s (warm-up)", op->what);
  if (r == 0)
    r = vgp_work_cu_check(cu, cu->cuStreamSynchronize(b->stream), "cuStreamSynchronize");
  if (r < 0)
    return r;
  for (unsigned done = 0; done < iters;) {
    unsigned n = iters - done < VGP_BENCH_BATCH ? iters - done : VGP_BENCH_BATCH;
    (void)getppid(); /* bracket for strace: the batch starts */
    uint64_t t0 = vgp__now_ns();
    CUresult res = op->fn(b, n);
    spent += vgp__now_ns() - t0;
    (void)getppid(); /* the batch ends */
    r = vgp_work_cu_check(cu, res, "%s", op->what);
    if (r < 0)
      return r;
    r = vgp_work_cu_check(cu, cu->cuStreamSynchronize(b->stream), "cuStreamSynchronize");
    if (r < 0)
      return r;
    done += n;
  }
  *ret_ns = (double)spent / (double)iters;
  return 0;
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
  enum { O_HELP = 1, O_OP, O_ITERS };
  static const struct vgp_work_opt opts[] = {
    {"help", O_HELP, 0}, {"op", O_OP, 1}, {"iters", O_ITERS, 1}, {NULL, 0, 0},
  };
  struct vgp_work_args it;
  struct vgp_work_cu cu;
  struct vgp_work_device dev;
  struct vgp_work_kernels k;
  struct vgp_bench b;
  const char *val, *which = "all";
  uint64_t iters = 20000;
  size_t free_b = 0, total_b = 0;
  int id, r = 0, found = 0;

  vgp_work_set_prog("vgpool-bench-hook");
  vgp_work_args_init(&it, argc, argv);
  while ((id = vgp_work_getopt(&it, opts, &val)) > 0) {
    if (id == O_HELP) {
      fputs(vgp__bench_usage, stdout);
      return 0;
    }
    if (id == O_OP)
      which = val;
    if (id == O_ITERS && vgp_work_parse_uint("iters", val, 1, 100000000, &iters) < 0)
      return VGP_WORK_EXIT_USAGE;
  }
  if (id < 0)
    return VGP_WORK_EXIT_USAGE;
  for (size_t i = 0; i < VGP_BENCH_NOPS; i++)
    found |= strcmp(which, "all") == 0 || strcmp(which, vgp__ops[i].name) == 0;
  if (!found) {
    vgp_work_errorf("--op: unknown value '%s' (expected allocfree, launch, meminfo or all)",
                    which);
    return VGP_WORK_EXIT_USAGE;
  }

  r = vgp_work_cu_load(&cu);
  if (r < 0)
    return vgp_work_exit_code(r);
  r = vgp_work_device_open(&cu, 0, &dev);
  if (r < 0)
    goto out_cu;
  r = vgp_work_kernels_load(&cu, &k);
  if (r < 0)
    goto out_dev;

  memset(&b, 0, sizeof(b));
  b.cu = &cu;
  b.k = &k;
  b.blocks = (unsigned)dev.sm_count;
  r = vgp_work_cu_check(&cu, cu.cuStreamCreate(&b.stream, 0), "cuStreamCreate");
  if (r == 0)
    r = vgp_work_cu_check(&cu, cu.cuMemGetInfo_v2(&free_b, &total_b), "cuMemGetInfo_v2");
  if (r < 0)
    goto out_kernels;

  printf("# vgpool-bench-hook: device 0 (%s), driver %d, resolver %s, memory total %zu\n",
         dev.name, cu.driver_version, cu.resolver, total_b);
  for (size_t i = 0; i < VGP_BENCH_NOPS && r == 0; i++) {
    double ns = 0;
    if (strcmp(which, "all") != 0 && strcmp(which, vgp__ops[i].name) != 0)
      continue;
    r = vgp__bench_run(&b, &vgp__ops[i], (unsigned)iters, &ns);
    if (r == 0)
      printf("op=%s iters=%llu ns_per_op=%.1f  # %s\n", vgp__ops[i].name,
             (unsigned long long)iters, ns, vgp__ops[i].what);
  }
  fflush(stdout);

  cu.cuStreamDestroy_v2(b.stream);
out_kernels:
  vgp_work_kernels_unload(&cu, &k);
out_dev:
  vgp_work_device_close(&cu, &dev);
out_cu:
  vgp_work_cu_unload(&cu);
  return vgp_work_exit_code(r);
}
