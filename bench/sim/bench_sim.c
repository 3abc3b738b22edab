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
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "clock.h"
#include "work.h"

#ifdef VGP_HAVE_VALGRIND_H
#include <valgrind/valgrind.h>
#define VGP_BENCH_UNDER_VALGRIND() (RUNNING_ON_VALGRIND != 0)
#else
#define VGP_BENCH_UNDER_VALGRIND() 0
#endif

/* Launches per batch: well below the simulator's queue depth (4096), so a
 * measured launch never waits for room in the queue. */
#define VGP_BENCH_BATCH 1000u
#define VGP_BENCH_WARMUP 200u

struct vgp_bench {
  const struct vgp_work_cu *cu;
  const struct vgp_work_kernels *k;
  CUstream stream;
  CUdeviceptr dev_buf;
  void *host_buf;
  unsigned blocks;
};

/* The measured loops. They are extern and never inlined so that callgrind
 * can toggle collection on their names; each returns the first failure so
 * that checking costs nothing inside the loop. */
CUresult vgp_bench_launch(const struct vgp_bench *b, unsigned n) __attribute__((noinline));
CUresult vgp_bench_htod4k(const struct vgp_bench *b, unsigned n) __attribute__((noinline));
CUresult vgp_bench_htod1m(const struct vgp_bench *b, unsigned n) __attribute__((noinline));

CUresult vgp_bench_launch(const struct vgp_bench *b, unsigned n) {
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

static CUresult vgp__bench_htod(const struct vgp_bench *b, size_t bytes, unsigned n) {
  CUresult first = CUDA_SUCCESS;
  for (unsigned i = 0; i < n; i++) {
    CUresult r = b->cu->cuMemcpyHtoD_v2(b->dev_buf, b->host_buf, bytes);
    if (first == CUDA_SUCCESS)
      first = r;
  }
  return first;
}

CUresult vgp_bench_htod4k(const struct vgp_bench *b, unsigned n) {
  return vgp__bench_htod(b, 4096, n);
}

CUresult vgp_bench_htod1m(const struct vgp_bench *b, unsigned n) {
  return vgp__bench_htod(b, 1u << 20, n);
}

struct vgp__bench_op {
  const char *name;
  const char *what;
  CUresult (*fn)(const struct vgp_bench *b, unsigned n);
  size_t bytes; /* copies: their size; 0 for the launch */
};

static const struct vgp__bench_op vgp__ops[] = {
  {"launch", "cuLaunchKernel (enqueue)", vgp_bench_launch, 0},
  {"htod4k", "cuMemcpyHtoD_v2 4 KiB (sync)", vgp_bench_htod4k, 4096},
  {"htod1m", "cuMemcpyHtoD_v2 1 MiB (sync)", vgp_bench_htod1m, 1u << 20},
};

#define VGP_BENCH_NOPS (sizeof(vgp__ops) / sizeof(vgp__ops[0]))

/* Makes the same calls as op outside the measured function's frame: the
 * first calls pay for lazy set-up (per-thread state, the first staging
 * buffers, page faults on the buffers) that a steady state does not. */
static int vgp__bench_warm(const struct vgp_bench *b, const struct vgp__bench_op *op) {
  const struct vgp_work_cu *cu = b->cu;
  uint64_t ns = 0;
  void *params[] = {&ns};
  int r = 0;

  for (unsigned i = 0; i < VGP_BENCH_WARMUP && r == 0; i++) {
    if (op->bytes == 0)
      r = vgp_work_cu_check(cu, cu->cuLaunchKernel(b->k->spin, b->blocks, 1, 1, 128, 1, 1, 0,
                                                   b->stream, params, NULL),
                            "cuLaunchKernel");
    else
      r = vgp_work_cu_check(cu, cu->cuMemcpyHtoD_v2(b->dev_buf, b->host_buf, op->bytes),
                            "cuMemcpyHtoD_v2");
  }
  if (r == 0)
    r = vgp_work_cu_check(cu, cu->cuStreamSynchronize(b->stream), "cuStreamSynchronize");
  return r;
}

/* Runs one op iters times, in batches with the stream drained in between
 * (draining is not part of the cost of a launch); returns 0 or -errno and
 * the wall time per call in *ret_ns. */
static int vgp__bench_run(const struct vgp_bench *b, const struct vgp__bench_op *op,
                          unsigned iters, double *ret_ns) {
  const struct vgp_work_cu *cu = b->cu;
  uint64_t spent = 0;
  int r;

  r = vgp__bench_warm(b, op);
  if (r < 0)
    return r;
  for (unsigned done = 0; done < iters;) {
    unsigned n = iters - done < VGP_BENCH_BATCH ? iters - done : VGP_BENCH_BATCH;
    uint64_t t0 = vgp__now_ns();
    r = vgp_work_cu_check(cu, op->fn(b, n), "%s", op->what);
    spent += vgp__now_ns() - t0;
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
  "usage: vgpool-bench-sim [--op launch|htod4k|htod1m|all] [--iters N]\n"
  "\n"
  "Measures the calling thread's cost of cuLaunchKernel and of a synchronous\n"
  "cuMemcpyHtoD (4 KiB and 1 MiB) on whichever libcuda.so.1 is found\n"
  "(LD_LIBRARY_PATH=<build>/src/sim for the simulator). Prints one line per\n"
  "op: op=NAME iters=N ns_per_op=X. bench/sim/run.sh adds instruction\n"
  "counts from callgrind.\n";

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
  int id, r = 0, found = 0;

  vgp_work_set_prog("vgpool-bench-sim");
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
    vgp_work_errorf("--op: unknown value '%s' (expected launch, htod4k, htod1m or all)", which);
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
  b.host_buf = vgp__calloc(1, 1u << 20);
  if (b.host_buf == NULL) {
    vgp_work_errorf("out of host memory");
    r = -ENOMEM;
    goto out_kernels;
  }
  r = vgp_work_cu_check(&cu, cu.cuStreamCreate(&b.stream, 0), "cuStreamCreate");
  if (r == 0)
    r = vgp_work_cu_check(&cu, cu.cuMemAlloc_v2(&b.dev_buf, 1u << 20), "cuMemAlloc_v2(1 MiB)");
  if (r < 0)
    goto out_host;

  printf("# vgpool-bench-sim: device 0 (%s), driver %d%s\n", dev.name, cu.driver_version,
         VGP_BENCH_UNDER_VALGRIND() ? ", under valgrind (wall times are not meaningful)" : "");
  for (size_t i = 0; i < VGP_BENCH_NOPS && r == 0; i++) {
    double ns = 0;
    if (strcmp(which, "all") != 0 && strcmp(which, vgp__ops[i].name) != 0)
      continue;
    r = vgp__bench_run(&b, &vgp__ops[i], (unsigned)iters, &ns);
    if (r == 0)
      printf("op=%s iters=%llu ns_per_op=%.1f  # %s\n", vgp__ops[i].name,
             (unsigned long long)iters, ns, vgp__ops[i].what);
  }

out_host:
  if (b.dev_buf != 0)
    cu.cuMemFree_v2(b.dev_buf);
  if (b.stream != NULL)
    cu.cuStreamDestroy_v2(b.stream);
  vgp__free(b.host_buf);
out_kernels:
  vgp_work_kernels_unload(&cu, &k);
out_dev:
  vgp_work_device_close(&cu, &dev);
out_cu:
  vgp_work_cu_unload(&cu);
  return vgp_work_exit_code(r);
}
