/*
 * benchcu.c - the harness shared by the driver-call benchmarks; see
 * benchcu.h.
 *
 * Each op runs a warm-up batch first (outside the measured function: the
 * first calls pay for lazy set-up, per-thread state and page faults that a
 * steady state does not), then its iterations in batches of 1000 with the
 * stream drained between batches, outside the measured function, so that
 * no measured launch waits for room in the driver's queue. Every batch is
 * bracketed by a getppid() system call, outside the timed span:
 * bench/hook/run.sh counts the calling thread's system calls between the
 * brackets under strace.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "benchcu.h"
#include "clock.h"

#define VGP__BENCH_BATCH 1000u
#define VGP__BENCH_WARMUP 200u
#define VGP__BENCH_NAMES_MAX 256

static int vgp__bench_run(const struct vgp_bench *b, const struct vgp_bench_op *op,
                          unsigned iters, double *ret_ns) {
  const struct vgp_work_cu *cu = b->cu;
  uint64_t spent = 0;
  int r;

  r = vgp_work_cu_check(cu, op->warm(b, VGP__BENCH_WARMUP), "%s (warm-up)", op->what);
  if (r == 0)
    r = vgp_work_cu_check(cu, cu->cuStreamSynchronize(b->stream), "cuStreamSynchronize");
  if (r < 0)
    return r;
  for (unsigned done = 0; done < iters;) {
    unsigned n = iters - done < VGP__BENCH_BATCH ? iters - done : VGP__BENCH_BATCH;
    (void)getppid(); /* bracket for strace: the batch starts */
    uint64_t t0 = vgp__now_ns();
    CUresult res = op->fn(b, n);
    spent += vgp__now_ns() - t0;
    (void)getppid(); /* the batch ends */
    r = vgp_work_cu_check(cu, res, "%s", op->what);
    if (r == 0)
      r = vgp_work_cu_check(cu, cu->cuStreamSynchronize(b->stream), "cuStreamSynchronize");
    if (r < 0)
      return r;
    done += n;
  }
  *ret_ns = (double)spent / (double)iters;
  return 0;
}

static int vgp__bench_selected(const char *which, const struct vgp_bench_op *op) {
  return strcmp(which, "all") == 0 || strcmp(which, op->name) == 0;
}

/* Parses the options; returns 0, 1 after --help, or an exit status. */
static int vgp__bench_options(const struct vgp_bench_prog *p, int argc, char **argv,
                              const char **ret_which, uint64_t *ret_iters) {
  enum { O_HELP = 1, O_OP, O_ITERS };
  static const struct vgp_work_opt opts[] = {
    {"help", O_HELP, 0}, {"op", O_OP, 1}, {"iters", O_ITERS, 1}, {NULL, 0, 0},
  };
  struct vgp_work_args it;
  const char *val;
  int id, found = 0;

  vgp_work_args_init(&it, argc, argv);
  while ((id = vgp_work_getopt(&it, opts, &val)) > 0) {
    if (id == O_HELP) {
      fputs(p->usage, stdout);
      return 1;
    }
    if (id == O_OP)
      *ret_which = val;
    if (id == O_ITERS && vgp_work_parse_uint("iters", val, 1, 100000000, ret_iters) < 0)
      return VGP_WORK_EXIT_USAGE;
  }
  if (id < 0)
    return VGP_WORK_EXIT_USAGE;
  char names[VGP__BENCH_NAMES_MAX] = "";
  for (size_t i = 0; i < p->nops; i++) {
    found |= vgp__bench_selected(*ret_which, &p->ops[i]);
    size_t len = strlen(names);
    snprintf(names + len, sizeof(names) - len, "%s, ", p->ops[i].name);
  }
  if (!found) {
    vgp_work_errorf("--op: unknown value '%s' (expected %sor all)", *ret_which, names);
    return VGP_WORK_EXIT_USAGE;
  }
  return 0;
}

int vgp_bench_main(const struct vgp_bench_prog *p, int argc, char **argv) {
  struct vgp_work_session ws;
  struct vgp_bench b;
  const char *which = "all";
  uint64_t iters = 20000;
  int r;

  vgp_work_set_prog(p->prog);
  r = vgp__bench_options(p, argc, argv, &which, &iters);
  if (r != 0)
    return r == 1 ? 0 : r;

  r = vgp_work_session_open(&ws, 0, 1);
  if (r < 0)
    return vgp_work_exit_code(r);
  const struct vgp_work_cu *cu = &ws.cu;

  memset(&b, 0, sizeof(b));
  b.cu = cu;
  b.k = &ws.k;
  b.blocks = (unsigned)ws.dev.sm_count;
  r = vgp_work_cu_check(cu, cu->cuStreamCreate(&b.stream, 0), "cuStreamCreate");
  if (r == 0 && p->buffers) {
    b.host_buf = vgp__calloc(1, VGP_BENCH_BUF);
    if (b.host_buf == NULL) {
      vgp_work_errorf("out of host memory");
      r = -ENOMEM;
    } else {
      r = vgp_work_cu_check(cu, cu->cuMemAlloc_v2(&b.dev_buf, VGP_BENCH_BUF),
                            "cuMemAlloc_v2 (the benchmark's buffer)");
    }
  }
  if (r == 0)
    r = p->header(&b, &ws.dev);

  for (size_t i = 0; i < p->nops && r == 0; i++) {
    double ns = 0;
    if (!vgp__bench_selected(which, &p->ops[i]))
      continue;
    r = vgp__bench_run(&b, &p->ops[i], (unsigned)iters, &ns);
    if (r == 0)
      printf("op=%s iters=%llu ns_per_op=%.1f  # %s\n", p->ops[i].name,
             (unsigned long long)iters, ns, p->ops[i].what);
  }
  fflush(stdout);

  if (b.dev_buf != 0)
    cu->cuMemFree_v2(b.dev_buf);
  if (b.stream != NULL)
    cu->cuStreamDestroy_v2(b.stream);
  vgp__free(b.host_buf);
  vgp_work_session_close(&ws);
  return vgp_work_exit_code(r);
}
