/*
 * burn.c - vgpool-burn: keep a GPU busy with kernels of known length and
 * measure what the device gave back.
 *
 * A burn is a stream of vgpool_spin kernels (kernels.ptx), each of which
 * occupies every block of its grid for --kernel-us microseconds. Two modes:
 *
 *   --saturate   closed loop: a bounded number of kernels is kept in flight,
 *                so the device is never idle for lack of work. Achieved
 *                kernels/s and the busy fraction say how much of the device
 *                this process actually got (all of it when alone; a share
 *                when time-sliced with others or throttled by vgpool).
 *   --rate R     open loop: kernel k is due at start + k/R (or at Poisson
 *                arrival times with --poisson) whatever happened to earlier
 *                ones, and its latency is completion - due time, so queueing
 *                behind other tenants and launch throttling show up in the
 *                percentiles instead of silently lowering the offered load.
 *
 * Latency is measured on the host: a reaper thread waits for each kernel's
 * completion event in launch order and timestamps it. Kernel (device) time
 * comes from events recorded just before and after each kernel; the busy
 * fraction is the sum of those over the wall time from the first launch to
 * the last completion. Under time-slicing with another context that device
 * time includes the slices the other context ran, so compare kernels/s
 * against 1e6 / kernel-us to see the share obtained.
 *
 * --selftest instead runs every kernel of kernels.ptx once on small buffers
 * and checks the results byte for byte, which is how a new GPU or driver is
 * checked before trusting the numbers.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "clock.h"
#include "jsonout.h"
#include "vgpool/units.h"
#include "work.h"

#define VGP_BURN_MAX_IN_FLIGHT 65536u
#define VGP_BURN_RATE_IN_FLIGHT 4096u
#define VGP_BURN_SAMPLES (1u << 20)

struct vgp__burn_cfg {
  int device;
  uint64_t memory;
  double kernel_us;
  double rate;           /* 0: saturate */
  uint64_t in_flight;    /* 0: default for the mode */
  double duration_s;
  uint64_t blocks;       /* 0: one per SM */
  uint64_t threads;
  int poisson;
  uint64_t seed;
  int json;
  int selftest;
};

/* One launched kernel, owned by the launcher until published (tail) and by
 * the reaper until reaped (head). */
struct vgp__burn_req {
  CUevent start, end;
  uint64_t due_ns;
};

struct vgp__burn {
  const struct vgp_work_cu *cu;
  CUcontext ctx;
  struct vgp__burn_req *ring;
  uint64_t cap;

  pthread_mutex_t lock;
  pthread_cond_t to_reaper;   /* a request was published, or launching ended */
  pthread_cond_t to_launcher; /* a slot was freed, or the reaper failed */
  uint64_t head, tail;        /* reaped / published requests */
  int launch_done;
  int error;                  /* 0 or -errno from the reaper */

  /* Written by the reaper only; read after it is joined. */
  struct vgp_work_samples latency;
  uint64_t kernel_ns_sum;
  uint64_t last_done_ns;
};

static const char vgp__burn_usage[] =
  "usage: vgpool-burn [options]\n"
  "\n"
  "Launches spin kernels of a known length on one GPU and reports achieved\n"
  "kernels/s, the busy fraction and per-kernel latency percentiles.\n"
  "\n"
  "  --device N        device ordinal (default 0)\n"
  "  --memory SIZE     allocate SIZE of device memory and write all of it first\n"
  "  --kernel-us U     length of each kernel in microseconds (default 1000)\n"
  "  --saturate        keep the device busy: bounded kernels in flight (default)\n"
  "  --rate R          open loop: launch R kernels per second, latency measured\n"
  "                    from each kernel's due time\n"
  "  --poisson         with --rate: exponential inter-arrival times\n"
  "  --seed N          seed for --poisson (default 1)\n"
  "  --in-flight N     kernels in flight at most (default: 5 ms of work, >= 4;\n"
  "                    with --rate 4096)\n"
  "  --duration S      seconds to launch for (default 10)\n"
  "  --blocks B        blocks per kernel (default: one per SM)\n"
  "  --threads T       threads per block (default 128)\n"
  "  --json            print the summary as one JSON object\n"
  "  --selftest        run every kernel once on small buffers and check results\n"
  "  --help            this text\n"
  "\n"
  "Exit status: 0 ok, 1 CUDA error, 2 bad usage, 3 out of device memory,\n"
  "4 self-test mismatch, 5 no CUDA driver.\n";

enum {
  OPT_HELP = 1,
  OPT_DEVICE,
  OPT_MEMORY,
  OPT_KERNEL_US,
  OPT_SATURATE,
  OPT_RATE,
  OPT_POISSON,
  OPT_SEED,
  OPT_IN_FLIGHT,
  OPT_DURATION,
  OPT_BLOCKS,
  OPT_THREADS,
  OPT_JSON,
  OPT_SELFTEST,
};

static const struct vgp_work_opt vgp__burn_opts[] = {
  {"help", OPT_HELP, 0},         {"device", OPT_DEVICE, 1},
  {"memory", OPT_MEMORY, 1},     {"kernel-us", OPT_KERNEL_US, 1},
  {"saturate", OPT_SATURATE, 0}, {"rate", OPT_RATE, 1},
  {"poisson", OPT_POISSON, 0},   {"seed", OPT_SEED, 1},
  {"in-flight", OPT_IN_FLIGHT, 1}, {"duration", OPT_DURATION, 1},
  {"blocks", OPT_BLOCKS, 1},     {"threads", OPT_THREADS, 1},
  {"json", OPT_JSON, 0},         {"selftest", OPT_SELFTEST, 0},
  {NULL, 0, 0},
};

/* Parses the command line into *ret_cfg. Returns 1 when --help was
 * printed, 0 to go on, -EINVAL/-ERANGE on a bad option (already
 * reported). */
static int vgp__burn_parse(int argc, char **argv, struct vgp__burn_cfg *ret_cfg) {
  struct vgp__burn_cfg c = {
    .kernel_us = 1000,
    .duration_s = 10,
    .threads = 128,
    .seed = 1,
  };
  struct vgp_work_args it;
  const char *val;
  uint64_t u;
  int id, r = 0, saturate = 0;

  vgp_work_args_init(&it, argc, argv);
  while ((id = vgp_work_getopt(&it, vgp__burn_opts, &val)) > 0) {
    switch (id) {
    case OPT_HELP:
      fputs(vgp__burn_usage, stdout);
      return 1;
    case OPT_DEVICE:
      r = vgp_work_parse_uint("device", val, 0, 1023, &u);
      c.device = (int)u;
      break;
    case OPT_MEMORY:
      r = vgp_work_parse_size("memory", val, &c.memory);
      break;
    case OPT_KERNEL_US:
      r = vgp_work_parse_double("kernel-us", val, 0, 60e6, &c.kernel_us);
      break;
    case OPT_SATURATE:
      saturate = 1;
      break;
    case OPT_RATE:
      r = vgp_work_parse_double("rate", val, 1e-3, 1e6, &c.rate);
      break;
    case OPT_POISSON:
      c.poisson = 1;
      break;
    case OPT_SEED:
      r = vgp_work_parse_uint("seed", val, 0, UINT64_MAX, &c.seed);
      break;
    case OPT_IN_FLIGHT:
      r = vgp_work_parse_uint("in-flight", val, 1, VGP_BURN_MAX_IN_FLIGHT, &c.in_flight);
      break;
    case OPT_DURATION:
      r = vgp_work_parse_double("duration", val, 1e-3, 86400 * 365, &c.duration_s);
      break;
    case OPT_BLOCKS:
      r = vgp_work_parse_uint("blocks", val, 1, 0x7fffffff, &c.blocks);
      break;
    case OPT_THREADS:
      r = vgp_work_parse_uint("threads", val, 1, 1024, &c.threads);
      break;
    case OPT_JSON:
      c.json = 1;
      break;
    case OPT_SELFTEST:
      c.selftest = 1;
      break;
    }
    if (r < 0)
      return r;
  }
  if (id < 0)
    return id;
  if (saturate && c.rate > 0) {
    vgp_work_errorf("--saturate and --rate exclude each other");
    return -EINVAL;
  }
  if (c.poisson && c.rate <= 0) {
    vgp_work_errorf("--poisson needs --rate");
    return -EINVAL;
  }
  *ret_cfg = c;
  return 0;
}

/* --------------------------------------------------------------- reaper */

static void *vgp__burn_reaper(void *arg) {
  struct vgp__burn *b = arg;
  const struct vgp_work_cu *cu = b->cu;
  int r = vgp_work_cu_check(cu, cu->cuCtxSetCurrent(b->ctx), "cuCtxSetCurrent (reaper)");

  pthread_mutex_lock(&b->lock);
  while (r == 0) {
    while (b->head == b->tail && !b->launch_done)
      pthread_cond_wait(&b->to_reaper, &b->lock);
    if (b->head == b->tail)
      break;
    struct vgp__burn_req *q = &b->ring[b->head % b->cap];
    pthread_mutex_unlock(&b->lock);

    float ms = 0;
    r = vgp_work_cu_check(cu, cu->cuEventSynchronize(q->end), "cuEventSynchronize");
    uint64_t done = vgp__now_ns();
    if (r == 0)
      r = vgp_work_cu_check(cu, cu->cuEventElapsedTime(&ms, q->start, q->end),
                            "cuEventElapsedTime");
    if (r == 0) {
      vgp_work_samples_add(&b->latency, done > q->due_ns ? done - q->due_ns : 0);
      if (ms > 0)
        b->kernel_ns_sum += (uint64_t)llround((double)ms * 1e6);
      b->last_done_ns = done;
    }

    pthread_mutex_lock(&b->lock);
    if (r == 0)
      b->head++;
    pthread_cond_signal(&b->to_launcher);
  }
  if (r < 0) {
    b->error = r;
    pthread_cond_signal(&b->to_launcher);
  }
  pthread_mutex_unlock(&b->lock);
  return NULL;
}

/* ------------------------------------------------------------- launcher */

/* The gap to the next arrival: 1/rate, or an exponential variate of that
 * mean for a Poisson process. */
static uint64_t vgp__burn_gap_ns(const struct vgp__burn_cfg *c, uint64_t *rng) {
  double mean = 1e9 / c->rate;
  if (!c->poisson)
    return (uint64_t)llround(mean);
  /* 53 random bits in (0, 1], so log() is finite. */
  double u = ((double)(vgp_work_rand(rng) >> 11) + 1.0) / 9007199254740992.0;
  return (uint64_t)llround(-log(u) * mean);
}

/* Launches kernels until the duration has passed, publishing each to the
 * reaper. Returns 0 or -errno (a failed launch, or the reaper's error). */
static int vgp__burn_launch(struct vgp__burn *b, const struct vgp__burn_cfg *c,
                            const struct vgp_work_kernels *k, CUstream stream, unsigned blocks,
                            uint64_t *ret_t0) {
  const struct vgp_work_cu *cu = b->cu;
  uint64_t spin_ns = (uint64_t)llround(c->kernel_us * 1e3);
  uint64_t rng = c->seed;
  uint64_t t0 = vgp__now_ns();
  uint64_t deadline = t0 + (uint64_t)llround(c->duration_s * 1e9);
  uint64_t due = t0;
  int r = 0;

  for (;;) {
    if (c->rate > 0) {
      if (due >= deadline)
        break;
      vgp__sleep_until_ns(due);
    } else {
      due = vgp__now_ns();
      if (due >= deadline)
        break;
    }

    pthread_mutex_lock(&b->lock);
    while (b->tail - b->head >= b->cap && b->error == 0)
      pthread_cond_wait(&b->to_launcher, &b->lock);
    r = b->error;
    pthread_mutex_unlock(&b->lock);
    if (r < 0)
      break;

    if (c->rate <= 0)
      due = vgp__now_ns();
    struct vgp__burn_req *q = &b->ring[b->tail % b->cap];
    q->due_ns = due;
    r = vgp_work_cu_check(cu, cu->cuEventRecord(q->start, stream), "cuEventRecord");
    if (r == 0)
      r = vgp_work_launch_spin(cu, k, stream, blocks, (unsigned)c->threads, spin_ns);
    if (r == 0)
      r = vgp_work_cu_check(cu, cu->cuEventRecord(q->end, stream), "cuEventRecord");
    if (r < 0)
      break;

    pthread_mutex_lock(&b->lock);
    b->tail++;
    pthread_cond_signal(&b->to_reaper);
    pthread_mutex_unlock(&b->lock);

    if (c->rate > 0)
      due += vgp__burn_gap_ns(c, &rng);
  }
  if (r == 0)
    *ret_t0 = t0;
  return r;
}

/* Allocates --memory bytes and writes every 32-bit word of it, so the
 * memory is really backed (and charged) before the burn starts. */
static int vgp__burn_memory(const struct vgp_work_cu *cu, const struct vgp_work_kernels *k,
                            const struct vgp_work_device *dev, CUstream stream, uint64_t bytes,
                            CUdeviceptr *ret_ptr) {
  CUdeviceptr p = 0;
  char size[32];
  int r;

  vgp_format_size(bytes, size, sizeof(size));
  r = vgp_work_cu_check(cu, cu->cuMemAlloc_v2(&p, bytes), "cuMemAlloc_v2(%s)", size);
  if (r < 0)
    return r;
  r = vgp_work_launch_fill(cu, k, dev, stream, p, 0x5a5a5a5au, bytes / 4);
  if (r == 0)
    r = vgp_work_cu_check(cu, cu->cuStreamSynchronize(stream), "cuStreamSynchronize");
  if (r < 0) {
    cu->cuMemFree_v2(p);
    return r;
  }
  *ret_ptr = p;
  return 0;
}

static void vgp__burn_report(const struct vgp__burn_cfg *c, const struct vgp_work_device *dev,
                             struct vgp__burn *b, unsigned blocks, uint64_t t0,
                             const struct vgp_work_cu *cu) {
  uint64_t n = b->latency.count;
  double wall_s = n > 0 && b->last_done_ns > t0 ? (double)(b->last_done_ns - t0) / 1e9 : 0;
  double kps = wall_s > 0 ? (double)n / wall_s : 0;
  double busy = wall_s > 0 ? (double)b->kernel_ns_sum / 1e9 / wall_s : 0;
  double kernel_ms = n > 0 ? (double)b->kernel_ns_sum / 1e6 / (double)n : 0;
  double p50 = (double)vgp_work_samples_percentile(&b->latency, 50) / 1e3;
  double p90 = (double)vgp_work_samples_percentile(&b->latency, 90) / 1e3;
  double p99 = (double)vgp_work_samples_percentile(&b->latency, 99) / 1e3;
  double max = (double)b->latency.max / 1e3;
  const char *mode = c->rate > 0 ? (c->poisson ? "poisson" : "rate") : "saturate";

  if (c->json) {
    printf("{\"tool\":\"vgpool-burn\",\"device\":%d,\"name\":", dev->ordinal);
    vgp__json_string(stdout, dev->name);
    printf(",\"driver_version\":%d,\"resolver\":\"%s\",\"mode\":\"%s\","
           "\"kernel_us\":%.3f,\"blocks\":%u,\"threads\":%llu,\"in_flight\":%llu,"
           "\"rate\":%.3f,\"duration_s\":%.3f,\"memory_bytes\":%llu,"
           "\"kernels\":%llu,\"wall_s\":%.6f,\"kernels_per_s\":%.3f,\"busy\":%.4f,"
           "\"kernel_ms_mean\":%.4f,\"latency_us\":{\"p50\":%.1f,\"p90\":%.1f,"
           "\"p99\":%.1f,\"max\":%.1f}}\n",
           cu->driver_version, cu->resolver, mode, c->kernel_us, blocks,
           (unsigned long long)c->threads, (unsigned long long)b->cap, c->rate, c->duration_s,
           (unsigned long long)c->memory, (unsigned long long)n, wall_s, kps, busy, kernel_ms,
           p50, p90, p99, max);
    return;
  }
  char size[32];
  printf("vgpool-burn: device %d (%s), %s", dev->ordinal, dev->name, mode);
  if (c->rate > 0)
    printf(" %.3f/s", c->rate);
  printf(", kernel %.1f us x %u blocks x %llu threads, %.2f s", c->kernel_us, blocks,
         (unsigned long long)c->threads, c->duration_s);
  if (c->memory > 0)
    printf(", %s allocated", vgp_format_size(c->memory, size, sizeof(size)));
  printf("\n");
  printf("  kernels      %llu in %.3f s = %.1f/s\n", (unsigned long long)n, wall_s, kps);
  printf("  busy         %.3f (mean kernel %.3f ms)\n", busy, kernel_ms);
  printf("  latency us   p50 %.1f  p90 %.1f  p99 %.1f  max %.1f\n", p50, p90, p99, max);
}

/* Runs the burn proper. Returns 0 or -errno. */
static int vgp__burn_run(const struct vgp_work_cu *cu, const struct vgp__burn_cfg *c,
                         const struct vgp_work_device *dev, const struct vgp_work_kernels *k,
                         CUstream stream) {
  struct vgp__burn b;
  unsigned blocks = c->blocks > 0 ? (unsigned)c->blocks : (unsigned)dev->sm_count;
  uint64_t cap = c->in_flight;
  uint64_t t0 = 0;
  uint64_t created = 0;
  pthread_t reaper;
  int r, r2;

  if (cap == 0) {
    if (c->rate > 0) {
      cap = VGP_BURN_RATE_IN_FLIGHT;
    } else {
      /* Enough queued work to cover host hiccups of a few milliseconds. */
      double want = c->kernel_us > 0 ? ceil(5000.0 / c->kernel_us) : 64;
      cap = want < 4 ? 4 : want > 1024 ? 1024 : (uint64_t)want;
    }
  }

  memset(&b, 0, sizeof(b));
  b.cu = cu;
  b.ctx = dev->ctx;
  b.cap = cap;
  b.ring = vgp__calloc(cap, sizeof(*b.ring));
  if (b.ring == NULL) {
    vgp_work_errorf("out of host memory for %llu requests", (unsigned long long)cap);
    return -ENOMEM;
  }
  r = vgp_work_samples_init(&b.latency, VGP_BURN_SAMPLES);
  if (r < 0) {
    vgp_work_errorf("out of host memory for latency samples");
    goto out_ring;
  }
  for (; created < cap; created++) {
    r = vgp_work_cu_check(cu, cu->cuEventCreate(&b.ring[created].start, CU_EVENT_DEFAULT),
                          "cuEventCreate");
    if (r < 0)
      goto out_events;
    r = vgp_work_cu_check(cu, cu->cuEventCreate(&b.ring[created].end, CU_EVENT_DEFAULT),
                          "cuEventCreate");
    if (r < 0) {
      cu->cuEventDestroy_v2(b.ring[created].start);
      goto out_events;
    }
  }

  pthread_mutex_init(&b.lock, NULL);
  pthread_cond_init(&b.to_reaper, NULL);
  pthread_cond_init(&b.to_launcher, NULL);
  r = pthread_create(&reaper, NULL, vgp__burn_reaper, &b);
  if (r != 0) {
    vgp_work_errorf("cannot start the reaper thread: %s", strerror(r));
    r = -r;
    goto out_sync;
  }

  r = vgp__burn_launch(&b, c, k, stream, blocks, &t0);

  pthread_mutex_lock(&b.lock);
  b.launch_done = 1;
  pthread_cond_signal(&b.to_reaper);
  pthread_mutex_unlock(&b.lock);
  pthread_join(reaper, NULL);
  if (r == 0)
    r = b.error;
  /* Whatever happened, nothing may still be queued on the events. */
  r2 = vgp_work_cu_check(cu, cu->cuStreamSynchronize(stream), "cuStreamSynchronize");
  if (r == 0)
    r = r2;
  if (r == 0)
    vgp__burn_report(c, dev, &b, blocks, t0, cu);

out_sync:
  pthread_cond_destroy(&b.to_launcher);
  pthread_cond_destroy(&b.to_reaper);
  pthread_mutex_destroy(&b.lock);
out_events:
  for (uint64_t i = 0; i < created; i++) {
    cu->cuEventDestroy_v2(b.ring[i].start);
    cu->cuEventDestroy_v2(b.ring[i].end);
  }
  vgp_work_samples_free(&b.latency);
out_ring:
  vgp__free(b.ring);
  return r;
}

/* ------------------------------------------------------------ self-test */

#define VGP_SELFTEST_WORDS (256u * 1024u) /* 1 MiB of u32 */
#define VGP_SELFTEST_SPIN_NS (2 * VGP_NSEC_PER_MSEC)

/* Prints one check's outcome; returns bad, or -EBADMSG when it failed. */
static int vgp__selftest_result(int bad, int ok, const char *what) {
  printf("selftest: %-36s %s\n", what, ok ? "ok" : "MISMATCH");
  return ok ? bad : -EBADMSG;
}

/* After a launch whose result is r: waits for the stream and copies bytes
 * of the result back to the host. Returns the first failure. */
static int vgp__selftest_fetch(const struct vgp_work_cu *cu, CUstream stream, int r, void *dst,
                               CUdeviceptr src, size_t bytes) {
  if (r == 0)
    r = vgp_work_cu_check(cu, cu->cuStreamSynchronize(stream), "cuStreamSynchronize");
  if (r == 0)
    r = vgp_work_cu_check(cu, cu->cuMemcpyDtoH_v2(dst, src, bytes), "cuMemcpyDtoH_v2");
  return r;
}

/* Runs the five kernels on a (1 MiB), b (1 MiB) and a 64-bit accumulator,
 * each checked against the same computation on the host. host is a
 * scratch buffer of 3 x VGP_SELFTEST_WORDS words. */
static int vgp__selftest_kernels(const struct vgp_work_cu *cu, const struct vgp_work_kernels *k,
                                 const struct vgp_work_device *dev, CUstream stream,
                                 CUdeviceptr a, CUdeviceptr bb, CUdeviceptr acc,
                                 uint32_t *host) {
  const size_t n = VGP_SELFTEST_WORDS, bytes = n * 4;
  uint32_t *src = host, *got = host + n, *want = host + 2 * n;
  uint64_t sum = 0, dsum = 0;
  int r, bad = 0, ok;

  for (size_t i = 0; i < n; i++) {
    src[i] = (uint32_t)(i * 2654435761u);
    sum += src[i];
  }
  r = vgp_work_cu_check(cu, cu->cuMemcpyHtoD_v2(a, src, bytes), "cuMemcpyHtoD_v2");
  if (r < 0)
    return r;

  /* fill */
  r = vgp_work_launch_fill(cu, k, dev, stream, bb, 0xdeadbeefu, n);
  r = vgp__selftest_fetch(cu, stream, r, got, bb, bytes);
  if (r < 0)
    return r;
  ok = 1;
  for (size_t i = 0; i < n; i++)
    ok &= got[i] == 0xdeadbeefu;
  bad = vgp__selftest_result(bad, ok, "vgpool_fill_u32");

  /* copy, 16-byte vector path */
  r = vgp_work_launch_copy(cu, k, dev, stream, bb, a, bytes);
  r = vgp__selftest_fetch(cu, stream, r, got, bb, bytes);
  if (r < 0)
    return r;
  bad = vgp__selftest_result(bad, memcmp(got, src, bytes) == 0, "vgpool_copy (aligned)");

  /* copy, byte path: 1001 bytes from a + 2 to b + 1 */
  r = vgp_work_launch_copy(cu, k, dev, stream, bb + 1, a + 2, 1001);
  r = vgp__selftest_fetch(cu, stream, r, got, bb, bytes);
  if (r < 0)
    return r;
  memcpy(want, src, bytes);
  memmove((char *)want + 1, (const char *)src + 2, 1001);
  bad = vgp__selftest_result(bad, memcmp(got, want, bytes) == 0, "vgpool_copy (unaligned)");

  /* sum */
  r = vgp_work_cu_check(cu, cu->cuMemsetD32_v2(acc, 0, 2), "cuMemsetD32_v2");
  if (r == 0)
    r = vgp_work_launch_sum(cu, k, dev, stream, a, n, acc);
  r = vgp__selftest_fetch(cu, stream, r, &dsum, acc, sizeof(dsum));
  if (r < 0)
    return r;
  bad = vgp__selftest_result(bad, dsum == sum, "vgpool_sum_u32");

  /* axpy: values chosen so that every product and sum is exact in binary32,
   * making the check independent of FMA contraction on either side. */
  float *x = (float *)src, *y = (float *)want, *fy = (float *)got;
  for (size_t i = 0; i < n; i++) {
    x[i] = (float)(i % 1024);
    y[i] = 1.0f + (float)(i % 7);
  }
  r = vgp_work_cu_check(cu, cu->cuMemcpyHtoD_v2(a, x, bytes), "cuMemcpyHtoD_v2");
  if (r == 0)
    r = vgp_work_cu_check(cu, cu->cuMemcpyHtoD_v2(bb, y, bytes), "cuMemcpyHtoD_v2");
  if (r == 0)
    r = vgp_work_launch_axpy(cu, k, dev, stream, n, 2.5f, a, bb);
  r = vgp__selftest_fetch(cu, stream, r, fy, bb, bytes);
  if (r < 0)
    return r;
  ok = 1;
  for (size_t i = 0; i < n; i++)
    ok &= fy[i] == 2.5f * x[i] + y[i];
  bad = vgp__selftest_result(bad, ok, "vgpool_axpy_f32");

  /* spin: one wave of blocks must take at least the requested time. */
  CUevent e0 = NULL, e1 = NULL;
  float ms = 0;
  r = vgp_work_cu_check(cu, cu->cuEventCreate(&e0, CU_EVENT_DEFAULT), "cuEventCreate");
  if (r == 0)
    r = vgp_work_cu_check(cu, cu->cuEventCreate(&e1, CU_EVENT_DEFAULT), "cuEventCreate");
  if (r == 0)
    r = vgp_work_cu_check(cu, cu->cuEventRecord(e0, stream), "cuEventRecord");
  if (r == 0)
    r = vgp_work_launch_spin(cu, k, stream, (unsigned)dev->sm_count, 128, VGP_SELFTEST_SPIN_NS);
  if (r == 0)
    r = vgp_work_cu_check(cu, cu->cuEventRecord(e1, stream), "cuEventRecord");
  if (r == 0)
    r = vgp_work_cu_check(cu, cu->cuEventSynchronize(e1), "cuEventSynchronize");
  if (r == 0)
    r = vgp_work_cu_check(cu, cu->cuEventElapsedTime(&ms, e0, e1), "cuEventElapsedTime");
  if (e0 != NULL)
    cu->cuEventDestroy_v2(e0);
  if (e1 != NULL)
    cu->cuEventDestroy_v2(e1);
  if (r < 0)
    return r;
  /* The timer may tick in microseconds; allow 1% below. */
  ok = (double)ms * 1e6 >= 0.99 * (double)VGP_SELFTEST_SPIN_NS;
  printf("selftest: %-36s %s (%.3f ms for %.3f ms)\n", "vgpool_spin", ok ? "ok" : "TOO SHORT",
         (double)ms, (double)VGP_SELFTEST_SPIN_NS / 1e6);
  if (!ok)
    bad = -EBADMSG;
  return bad;
}

static int vgp__selftest(const struct vgp_work_cu *cu, const struct vgp_work_device *dev,
                         const struct vgp_work_kernels *k, CUstream stream) {
  const size_t bytes = (size_t)VGP_SELFTEST_WORDS * 4;
  CUdeviceptr a = 0, bb = 0, acc = 0;
  uint32_t *host;
  int r;

  host = vgp__malloc(3 * bytes);
  if (host == NULL) {
    vgp_work_errorf("out of host memory");
    return -ENOMEM;
  }
  r = vgp_work_cu_check(cu, cu->cuMemAlloc_v2(&a, bytes), "cuMemAlloc_v2(1 MiB)");
  if (r == 0)
    r = vgp_work_cu_check(cu, cu->cuMemAlloc_v2(&bb, bytes), "cuMemAlloc_v2(1 MiB)");
  if (r == 0)
    r = vgp_work_cu_check(cu, cu->cuMemAlloc_v2(&acc, 8), "cuMemAlloc_v2(8)");
  if (r == 0)
    r = vgp__selftest_kernels(cu, k, dev, stream, a, bb, acc, host);
  if (acc != 0)
    cu->cuMemFree_v2(acc);
  if (bb != 0)
    cu->cuMemFree_v2(bb);
  if (a != 0)
    cu->cuMemFree_v2(a);
  vgp__free(host);
  if (r == 0)
    printf("selftest: all kernels ok on device %d (%s)\n", dev->ordinal, dev->name);
  else if (r == -EBADMSG)
    vgp_work_errorf("self-test failed: a kernel computed a wrong result");
  return r;
}

/* ----------------------------------------------------------------- main */

int main(int argc, char **argv) {
  struct vgp__burn_cfg cfg;
  struct vgp_work_session ws;
  CUstream stream = NULL;
  CUdeviceptr mem = 0;
  int r;

  vgp_work_set_prog("vgpool-burn");
  r = vgp__burn_parse(argc, argv, &cfg);
  if (r == 1)
    return VGP_WORK_EXIT_OK;
  if (r < 0)
    return VGP_WORK_EXIT_USAGE;

  r = vgp_work_session_open(&ws, cfg.device, 1);
  if (r < 0)
    return vgp_work_exit_code(r);
  struct vgp_work_cu *cu = &ws.cu;
  /* A blocking stream (flags 0) is ordered with the legacy default stream,
   * on which the synchronous copies and memsets run; a kernel must never
   * race a cuMemcpyHtoD that returned before its DMA finished. */
  r = vgp_work_cu_check(cu, cu->cuStreamCreate(&stream, 0), "cuStreamCreate");
  if (r < 0)
    goto out_session;

  if (cfg.selftest) {
    r = vgp__selftest(cu, &ws.dev, &ws.k, stream);
    goto out_stream;
  }
  if (cfg.memory > 0) {
    r = vgp__burn_memory(cu, &ws.k, &ws.dev, stream, cfg.memory, &mem);
    if (r < 0)
      goto out_stream;
  }
  r = vgp__burn_run(cu, &cfg, &ws.dev, &ws.k, stream);
  if (mem != 0)
    cu->cuMemFree_v2(mem);

out_stream:
  cu->cuStreamDestroy_v2(stream);
out_session:
  vgp_work_session_close(&ws);
  return vgp_work_exit_code(r);
}
