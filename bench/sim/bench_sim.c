/*
 * bench_sim.c - the cost of a simulated kernel launch and of a memcpy.
 *
 * Everything vgpool adds sits on the application's calling thread, in front
 * of a driver call, so the figures that matter are what one call costs that
 * thread: the instructions it executes (repeatable under callgrind, which is
 * how DESIGN.md says budgets are measured) and the wall-clock time per call.
 * This program runs the calls in tight loops inside functions with fixed
 * names, so that `valgrind --tool=callgrind --collect-atstart=no
 * --toggle-collect=vgp_bench_<op>` counts exactly those loops on the calling
 * thread; bench/sim/run.sh does that and prints a table.
 *
 *   launch   cuLaunchKernel(vgpool_spin, ns = 0) on a stream: the enqueue
 *            cost (the kernel runs later on the driver's worker thread)
 *   htod4k   cuMemcpyHtoD_v2 of 4 KiB from pageable memory (synchronous)
 *   htod1m   cuMemcpyHtoD_v2 of 1 MiB from pageable memory (synchronous)
 *
 * A synchronous copy returns when the copy is complete, so its wall time
 * includes the simulated transfer time (the driver's model of PCIe) and the
 * byte copy done by the simulator's worker thread; its instruction count is
 * the calling thread's share only. The driver is loaded the way the
 * workloads load it (src/work/work.c), so the same program measures NVIDIA's
 * driver on a GPU machine.
 */
#include <stdio.h>

#include "benchcu.h"

#ifdef VGP_HAVE_VALGRIND_H
#include <valgrind/valgrind.h>
#define VGP_BENCH_UNDER_VALGRIND() (RUNNING_ON_VALGRIND != 0)
#else
#define VGP_BENCH_UNDER_VALGRIND() 0
#endif

/* The loops. */
static inline CUresult vgp__htod(const struct vgp_bench *b, size_t bytes, unsigned n) {
  CUresult first = CUDA_SUCCESS;
  for (unsigned i = 0; i < n; i++) {
    CUresult r = b->cu->cuMemcpyHtoD_v2(b->dev_buf, b->host_buf, bytes);
    if (first == CUDA_SUCCESS)
      first = r;
  }
  return first;
}

static CUresult vgp__htod4k(const struct vgp_bench *b, unsigned n) {
  return vgp__htod(b, 4096, n);
}

static CUresult vgp__htod1m(const struct vgp_bench *b, unsigned n) {
  return vgp__htod(b, VGP_BENCH_BUF, n);
}

/* The measured entry points (benchcu.h). */
CUresult vgp_bench_launch(const struct vgp_bench *b, unsigned n) __attribute__((noinline));
CUresult vgp_bench_htod4k(const struct vgp_bench *b, unsigned n) __attribute__((noinline));
CUresult vgp_bench_htod1m(const struct vgp_bench *b, unsigned n) __attribute__((noinline));

CUresult vgp_bench_launch(const struct vgp_bench *b, unsigned n) {
  VGP_BENCH_DISTINCT();
  return vgp_bench_launches(b, n);
}

CUresult vgp_bench_htod4k(const struct vgp_bench *b, unsigned n) {
  VGP_BENCH_DISTINCT();
  return vgp__htod(b, 4096, n);
}

CUresult vgp_bench_htod1m(const struct vgp_bench *b, unsigned n) {
  VGP_BENCH_DISTINCT();
  return vgp__htod(b, VGP_BENCH_BUF, n);
}

static const struct vgp_bench_op vgp__ops[] = {
  {"launch", "cuLaunchKernel (enqueue)", vgp_bench_launch, vgp_bench_launches},
  {"htod4k", "cuMemcpyHtoD_v2 4 KiB (sync)", vgp_bench_htod4k, vgp__htod4k},
  {"htod1m", "cuMemcpyHtoD_v2 1 MiB (sync)", vgp_bench_htod1m, vgp__htod1m},
};

static int vgp__bench_header(const struct vgp_bench *b, const struct vgp_work_device *dev) {
  printf("# vgpool-bench-sim: device 0 (%s), driver %d%s\n", dev->name, b->cu->driver_version,
         VGP_BENCH_UNDER_VALGRIND() ? ", under valgrind (wall times are not meaningful)" : "");
  return 0;
}

static const char vgp__bench_usage[] =
  "usage: vgpool-bench-sim [--op launch|htod4k|htod1m|all] [--iters N]\n"
  "\n"
  "Measures the calling thread's cost of cuLaunchKernel and of a synchronous\n"
  "cuMemcpyHtoD (4 KiB and 1 MiB) on whichever libcuda.so.1 is found\n"
  "(LD_LIBRARY_PATH=<build>/src/sim for the simulator). Prints one line per\n"
  "op: op=NAME iters=N ns_per_op=X. bench/sim/run.sh adds instruction\n"
  "counts from callgrind.\n";

int main(int argc, char **argv) {
  static const struct vgp_bench_prog prog = {
    .prog = "vgpool-bench-sim",
    .usage = vgp__bench_usage,
    .ops = vgp__ops,
    .nops = sizeof(vgp__ops) / sizeof(vgp__ops[0]),
    .buffers = 1,
    .header = vgp__bench_header,
  };
  return vgp_bench_main(&prog, argc, argv);
}
