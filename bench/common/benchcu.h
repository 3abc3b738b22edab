/*
 * benchcu.h - the harness shared by the driver-call benchmarks
 * (bench/sim, bench/hook): options, driver set-up, warm-up, batches and
 * the printed figures, so that each benchmark is only its measured loops.
 *
 * A benchmark names its ops; each has a measured function, extern and
 * never inlined so that callgrind (--toggle-collect=vgp_bench_<op>) counts
 * exactly its loop on the calling thread, and a warm-up twin that makes
 * the same calls outside it. Both return the first failure of their loop,
 * so that checking costs nothing inside it.
 */
#ifndef VGP_BENCH_BENCHCU_H
#define VGP_BENCH_BENCHCU_H

#include <stddef.h>
#include <stdint.h>

#include "work.h"

/* What every loop gets. */
struct vgp_bench {
  const struct vgp_work_cu *cu;
  const struct vgp_work_kernels *k;
  CUstream stream;
  CUdeviceptr dev_buf;  /* VGP_BENCH_BUF bytes, when the program asks */
  void *host_buf;       /* the same, in host memory */
  unsigned blocks;      /* one block per SM for launches */
};

#define VGP_BENCH_BUF (1u << 20)

typedef CUresult (*vgp_bench_loop_fn)(const struct vgp_bench *b, unsigned n);

struct vgp_bench_op {
  const char *name;
  const char *what;
  vgp_bench_loop_fn fn;    /* measured */
  vgp_bench_loop_fn warm;  /* the same calls, not measured */
};

struct vgp_bench_prog {
  const char *prog;        /* for messages */
  const char *usage;
  const struct vgp_bench_op *ops;
  size_t nops;
  int buffers;             /* allocate dev_buf and host_buf */
  /* Prints the first line ("# <prog>: ...") once the driver is set up;
   * returns 0 or a negative errno. */
  int (*header)(const struct vgp_bench *b, const struct vgp_work_device *dev);
};

/* n launches of vgpool_spin (ns = 0: the enqueue is what is measured) on
 * the benchmark's stream; the first failure. */
static inline CUresult vgp_bench_launches(const struct vgp_bench *b, unsigned n) {
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

/* Keeps the compiler from folding a measured function and its identical
 * warm-up twin into one (gcc's -fipa-icf, on at -O2). */
#define VGP_BENCH_DISTINCT() __asm__ volatile("" ::: "memory")

/* Parses [--op NAME|all] [--iters N] [--help], sets up device 0 of the
 * libcuda.so.1 found the way the workloads find it, runs the chosen ops
 * and prints one line per op: op=NAME iters=N ns_per_op=X  # WHAT.
 * Returns the process's exit status. */
int vgp_bench_main(const struct vgp_bench_prog *p, int argc, char **argv);

#endif
