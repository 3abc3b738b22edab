/*
 * bench_share.c - how accurately containers get their compute shares.
 *
 * Runs containers of saturating vgpool-burn workloads under `vgpool run
 * --cores N` on a private simulated node and measures, from the
 * simulator's ground truth (each process's cumulative kernel time on the
 * device, in the node state), the share of device time each container
 * really got:
 *
 *   - one container alone, targets 10, 25, 50, 75, 90 % with kernels of
 *     50 us, 1 ms and 20 ms;
 *   - two containers 30 + 60 and 10 + 90, three containers 20 / 30 / 50;
 *   - the 10 + 90 case with the 90 starting 3 s after the 10, sampled
 *     every 100 ms for a plot (--plot FILE.svg);
 *   - an elastic 30% container that has the device to itself, then a hard
 *     50% neighbour for 4 s: how much it borrows, and how fast it is back
 *     at its share once the neighbour starts (goal: within 100 ms).
 *
 * For each container it prints the mean share over 10 s after
 * convergence, the error against the target, and the convergence time: how
 * long after the container's start the share over the following second
 * first came within 2 points of the target. Figures, not pass/fail: the goal is
 * |error| <= 2 points and convergence within 1 s.
 *
 * With --nvml the containers run on the machine's real GPU instead (NVML
 * index $VGPOOL_GPU_TEST_DEVICE, default 0) and the ground truth is NVML's
 * per-process utilization samples (nvmlDeviceGetProcessUtilization), each
 * weighted by its sample period: the driver's own account of who ran. This
 * is how tests/gpu/ runs the benchmark on a GPU. --check POINTS makes the
 * run exit 1 when a container misses its target by more than POINTS or
 * never converges (for tests, with loose bounds).
 *
 * usage: vgpool-bench-share [--quick] [--plot FILE.svg] [--only NAME]
 *                           [--nvml] [--check POINTS]
 * (VGPOOL_BUILD_DIR locates vgpool, vgpool-burn and the simulator.)
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <dlfcn.h>

#include "clock.h"
#include "node.h"
#include "region.h"
#include "strutil.h"
#include "vgpool_nvml.h"
#include "vgpool_nvml_api.h"

#define MAX_C 3
#define MAX_SAMPLES 4096
#define SAMPLE_NS (100 * VGP_NSEC_PER_MSEC)

struct container {
  const char *name;
  unsigned cores;
  const char *policy;  /* NULL: hard */
  unsigned kernel_us;
  double start_s;      /* delay after the scenario starts */
  double run_s;
  pid_t pid;           /* the vgpool run process */
  double start_abs;    /* seconds since scenario start when it began */
  uint64_t busy[MAX_SAMPLES]; /* cumulative kernel ns at each sample */
  int32_t pids[VGP_REGION_MAX_PROCS]; /* in the node's PID namespace */
  int npids;
  uint64_t nvml_busy_ns;  /* --nvml: device time summed from NVML samples */
};

struct scenario {
  const char *name;
  int n;
  struct container c[MAX_C];
  double t[MAX_SAMPLES];
  int nsamples;
};

static char build_dir[4096], tmp_root[4096];
static int quick;
static double check_points = -1;  /* --check: largest error allowed */
static int failures;              /* containers outside --check */

/* --nvml: the real NVML, the device, and what was consumed of it. */
static struct {
  int on;
  unsigned index;
  nvmlDevice_t dev;
  vgp_pfn_nvmlDeviceGetProcessUtilization utilization;
  unsigned long long last_seen;           /* newest sample timestamp consumed (us) */
  struct { unsigned pid; unsigned long long ts; } prev[256]; /* per pid: last sample */
  int nprev;
} nvml;

static void die(const char *msg) {
  fprintf(stderr, "vgpool-bench-share: %s\n", msg);
  exit(1);
}

static void rm_rf(const char *dir) {
  char cmd[8192];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  if (system(cmd) != 0)
    fprintf(stderr, "vgpool-bench-share: could not remove %s\n", dir);
}

static pid_t start_container(const struct container *c, double duration) {
  char vgpool[4200], burn[4200], cores[16], kus[32], dur[32];
  snprintf(vgpool, sizeof(vgpool), "%s/src/cli/vgpool", build_dir);
  snprintf(burn, sizeof(burn), "%s/src/work/vgpool-burn", build_dir);
  snprintf(cores, sizeof(cores), "%u", c->cores);
  snprintf(kus, sizeof(kus), "%u", c->kernel_us);
  snprintf(dur, sizeof(dur), "%.1f", duration);
  pid_t pid = fork();
  if (pid == 0) {
    int null = open("/dev/null", O_WRONLY);
    dup2(null, 1);
    char device[16];
    snprintf(device, sizeof(device), "%u", nvml.on ? nvml.index : 0u);
    execl(vgpool, vgpool, "run", "--name", c->name, "--devices", device, "--cores", cores,
          "--policy", c->policy != NULL ? c->policy : "hard", "--memory", "1GiB", "--", burn,
          "--saturate", "--kernel-us", kus, "--duration", dur, (char *)NULL);
    _exit(127);
  }
  return pid;
}

/* Learns which processes belong to the container from its region. */
static void learn_pids(struct container *c) {
  char path[8300], err[256];
  snprintf(path, sizeof(path), "%s/root/containers/%s/region", tmp_root, c->name);
  struct vgp__region h;
  if (vgp__region_open(&h, path, 0, err, sizeof(err)) < 0)
    return;
  for (int i = 0; i < VGP_REGION_MAX_PROCS; i++) {
    if (h.r->slots[i].state != VGP_REGION_SLOT_ACTIVE)
      continue;
    int32_t pid = h.r->slots[i].host_pid != 0 ? h.r->slots[i].host_pid : h.r->slots[i].pid;
    int known = 0;
    for (int k = 0; k < c->npids; k++)
      known |= c->pids[k] == pid;
    if (!known && c->npids < VGP_REGION_MAX_PROCS)
      c->pids[c->npids++] = pid;
  }
  vgp__region_close(&h);
}

/* Cumulative kernel time of the container's processes on device 0; a
 * process keeps its node slot (and counters) until it exits, and a burn
 * workload is one process, so the last value seen stays valid after. */
static uint64_t container_busy(struct vgp_sim_handle *node, const struct container *c, uint64_t prev) {
  uint64_t sum = 0;
  int seen = 0;
  for (int i = 0; i < VGP_SIM_MAX_PROCS; i++) {
    const struct vgp_sim_proc_slot *s = &node->node->slots[i];
    if (s->state != VGP_SIM_SLOT_ACTIVE)
      continue;
    for (int k = 0; k < c->npids; k++)
      if (s->pid == c->pids[k]) {
        sum += __atomic_load_n(&s->dev[0].busy_ns, __ATOMIC_ACQUIRE);
        seen = 1;
      }
  }
  return seen && sum >= prev ? sum : prev;
}

/* Opens the real NVML for --nvml. */
static void nvml_open(void) {
  void *lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
  if (lib == NULL)
    die("--nvml: cannot load libnvidia-ml.so.1");
  vgp_pfn_nvmlInit_v2 init = (vgp_pfn_nvmlInit_v2)dlsym(lib, "nvmlInit_v2");
  vgp_pfn_nvmlDeviceGetHandleByIndex_v2 handle =
      (vgp_pfn_nvmlDeviceGetHandleByIndex_v2)dlsym(lib, "nvmlDeviceGetHandleByIndex_v2");
  nvml.utilization = (vgp_pfn_nvmlDeviceGetProcessUtilization)dlsym(
      lib, "nvmlDeviceGetProcessUtilization");
  if (init == NULL || handle == NULL || nvml.utilization == NULL)
    die("--nvml: libnvidia-ml.so.1 lacks nvmlInit_v2, nvmlDeviceGetHandleByIndex_v2 or "
        "nvmlDeviceGetProcessUtilization");
  const char *index = getenv("VGPOOL_GPU_TEST_DEVICE");
  nvml.index = index != NULL && *index != '\0' ? (unsigned)atoi(index) : 0;
  if (init() != NVML_SUCCESS || handle(nvml.index, &nvml.dev) != NVML_SUCCESS)
    die("--nvml: cannot open the device through NVML");
  nvml.on = 1;
}

/* The period a pid's sample covers: since its previous sample (NVML
 * samples each process at a fixed cadence); 0 for a pid's first sample,
 * whose start is unknown. */
static unsigned long long nvml_period_us(unsigned pid, unsigned long long ts) {
  for (int i = 0; i < nvml.nprev; i++)
    if (nvml.prev[i].pid == pid) {
      unsigned long long prev = nvml.prev[i].ts;
      nvml.prev[i].ts = ts;
      return ts > prev ? ts - prev : 0;
    }
  if (nvml.nprev < (int)(sizeof(nvml.prev) / sizeof(nvml.prev[0]))) {
    nvml.prev[nvml.nprev].pid = pid;
    nvml.prev[nvml.nprev++].ts = ts;
  }
  return 0;
}

/* Adds NVML's samples since the last poll to each container's device time. */
static void nvml_poll(struct scenario *sc) {
  nvmlProcessUtilizationSample_t samples[512];
  unsigned n = sizeof(samples) / sizeof(samples[0]);
  if (nvml.utilization(nvml.dev, samples, &n, nvml.last_seen) != NVML_SUCCESS)
    return; /* NOT_FOUND: nothing new */
  unsigned long long newest = nvml.last_seen;
  for (unsigned i = 0; i < n; i++) {
    if (samples[i].timeStamp <= nvml.last_seen)
      continue;
    if (samples[i].timeStamp > newest)
      newest = samples[i].timeStamp;
    unsigned long long period = nvml_period_us(samples[i].pid, samples[i].timeStamp);
    for (int k = 0; k < sc->n; k++)
      for (int j = 0; j < sc->c[k].npids; j++)
        if ((unsigned)sc->c[k].pids[j] == samples[i].pid)
          sc->c[k].nvml_busy_ns += period * 1000ull * samples[i].smUtil / 100ull;
  }
  nvml.last_seen = newest;
}

static void run_scenario(struct scenario *sc) {
  snprintf(tmp_root, sizeof(tmp_root), "/tmp/vgpool-bench-share-%d", (int)getpid());
  rm_rf(tmp_root);
  mkdir(tmp_root, 0755);
  char p[8300];
  snprintf(p, sizeof(p), "%s/root", tmp_root);
  setenv("VGPOOL_ROOT", p, 1);
  struct vgp_sim_handle node;
  memset(&node, 0, sizeof(node));
  if (!nvml.on) {
    snprintf(p, sizeof(p), "%s/node.state", tmp_root);
    setenv("VGPOOL_SIM_STATE", p, 1);
    setenv("VGPOOL_SIM_DEVICES", "1xH100-80GB", 1);
    unsetenv("VGPOOL_SIM_CONFIG");
    snprintf(p, sizeof(p), "%s/src/sim", build_dir);
    setenv("LD_LIBRARY_PATH", p, 1);
    char err[512];
    if (vgp_sim_open(&node, err, sizeof(err)) < 0)
      die(err);
  } else {
    nvml_poll(sc); /* consume what ran before */
  }
  uint64_t t0 = vgp__now_ns();
  int started = 0, running = 0;
  sc->nsamples = 0;
  for (int i = 0; i < sc->n; i++) {
    sc->c[i].pid = 0;
    sc->c[i].nvml_busy_ns = 0;
  }
  for (;;) {
    double now_s = (double)(vgp__now_ns() - t0) / 1e9;
    for (int i = 0; i < sc->n; i++) {
      struct container *c = &sc->c[i];
      if (c->pid == 0 && now_s >= c->start_s) {
        c->pid = start_container(c, c->run_s);
        c->start_abs = now_s;
        c->npids = 0;
        started++;
        running++;
      }
      if (c->pid > 0) {
        learn_pids(c);
        int st;
        if (waitpid(c->pid, &st, WNOHANG) == c->pid) {
          if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            fprintf(stderr, "vgpool-bench-share: container %s exited with status %d\n", c->name,
                    WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
          c->pid = -1;
          running--;
        }
      }
    }
    if (sc->nsamples < MAX_SAMPLES) {
      if (nvml.on)
        nvml_poll(sc);
      sc->t[sc->nsamples] = now_s;
      for (int i = 0; i < sc->n; i++) {
        uint64_t prev = sc->nsamples > 0 ? sc->c[i].busy[sc->nsamples - 1] : 0;
        sc->c[i].busy[sc->nsamples] =
            nvml.on ? sc->c[i].nvml_busy_ns : container_busy(&node, &sc->c[i], prev);
      }
      sc->nsamples++;
    }
    if (started == sc->n && running == 0)
      break;
    vgp__sleep_until_ns(t0 + (uint64_t)sc->nsamples * SAMPLE_NS);
  }
  if (!nvml.on)
    vgp_sim_close(&node);
  rm_rf(tmp_root);
}

/* Share over samples [a, b]. */
static double share_between(const struct scenario *sc, const struct container *c, int a, int b) {
  double dt = sc->t[b] - sc->t[a];
  return dt > 0 ? (double)(c->busy[b] - c->busy[a]) / 1e9 / dt : 0.0;
}

static int sample_at(const struct scenario *sc, double t) {
  for (int i = 0; i < sc->nsamples; i++)
    if (sc->t[i] >= t)
      return i;
  return sc->nsamples - 1;
}

/* Convergence: how long after its start the container's share over the
 * following second first comes within 2 points of its target. */
static double convergence(const struct scenario *sc, const struct container *c) {
  double target = c->cores / 100.0;
  int first = sample_at(sc, c->start_abs);
  for (int i = first; i < sc->nsamples; i++) {
    int j = sample_at(sc, sc->t[i] + 1.0);
    if (sc->t[j] < sc->t[i] + 0.95)
      break; /* no full second left */
    double s = share_between(sc, c, i, j);
    if (s > target - 0.02 && s < target + 0.02)
      return sc->t[i] - c->start_abs;
  }
  return -1;
}

static void report(const struct scenario *sc, const char *label) {
  for (int i = 0; i < sc->n; i++) {
    const struct container *c = &sc->c[i];
    double conv = convergence(sc, c);
    double from = c->start_abs + (conv > 0 ? conv : 1.0);
    double to = from + (quick ? 4.0 : 10.0);
    int a = sample_at(sc, from), b = sample_at(sc, to);
    double s = share_between(sc, c, a, b) * 100.0;
    char converged[32];
    if (conv < 0)
      snprintf(converged, sizeof(converged), "never");
    else
      snprintf(converged, sizeof(converged), "%.2fs", conv);
    int bad = check_points >= 0 && (conv < 0 || s - c->cores > check_points ||
                                    c->cores - s > check_points);
    failures += bad;
    printf("%-22s %-8s %6u %8u %9.2f %+7.2f %10s%s\n", label, c->name, c->cores, c->kernel_us, s,
           s - c->cores, converged, bad ? "  OUT OF BOUNDS" : "");
    fflush(stdout);
  }
}

static void plot(const struct scenario *sc, const char *path) {
  FILE *f = fopen(path, "w");
  if (f == NULL)
    die("cannot write the plot");
  const double W = 720, H = 360, L = 60, R = 20, T = 30, B = 50;
  double tmax = sc->t[sc->nsamples - 1];
  fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
             "font-family=\"sans-serif\" font-size=\"12\">\n", W, H);
  fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
  fprintf(f, "<text x=\"%.0f\" y=\"18\" text-anchor=\"middle\">Share of device time, 10%% + 90%% "
             "containers (the 90%% starts at 3 s); 1 s windows, simulator ground truth</text>\n", W / 2);
  for (int pct = 0; pct <= 100; pct += 10) {
    double y = T + (H - T - B) * (1 - pct / 100.0);
    fprintf(f, "<line x1=\"%.0f\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", L, y, W - R, y);
    fprintf(f, "<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\">%d%%</text>\n", L - 6, y + 4, pct);
  }
  for (int s = 0; s <= (int)tmax; s++) {
    double x = L + (W - L - R) * s / tmax;
    fprintf(f, "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\">%d s</text>\n", x, H - B + 18, s);
  }
  static const char *colors[] = {"#1f77b4", "#d62728", "#2ca02c"};
  for (int i = 0; i < sc->n; i++) {
    const struct container *c = &sc->c[i];
    fprintf(f, "<line x1=\"%.0f\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\" stroke=\"%s\" stroke-dasharray=\"4 4\"/>\n",
            L, T + (H - T - B) * (1 - c->cores / 100.0), W - R, T + (H - T - B) * (1 - c->cores / 100.0),
            colors[i]);
    fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", colors[i]);
    for (int k = 0; k < sc->nsamples; k++) {
      int j = sample_at(sc, sc->t[k] - 1.0);
      if (sc->t[k] < c->start_abs + 1.0 || j >= k)
        continue;
      double s = share_between(sc, c, j, k);
      fprintf(f, "%.1f,%.1f ", L + (W - L - R) * sc->t[k] / tmax, T + (H - T - B) * (1 - s));
    }
    fprintf(f, "\"/>\n");
    fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" fill=\"%s\">%s (target %u%%)</text>\n", L + 10 + 180.0 * i,
            H - 12, colors[i], c->name, c->cores);
  }
  fprintf(f, "</svg>\n");
  fclose(f);
}

int main(int argc, char **argv) {
  const char *plot_path = NULL, *only = NULL;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--quick") == 0)
      quick = 1;
    else if (strcmp(argv[i], "--plot") == 0 && i + 1 < argc)
      plot_path = argv[++i];
    else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc)
      only = argv[++i];
    else if (strcmp(argv[i], "--nvml") == 0)
      nvml.on = 1;
    else if (strcmp(argv[i], "--check") == 0 && i + 1 < argc)
      check_points = atof(argv[++i]);
    else {
      fprintf(stderr, "usage: vgpool-bench-share [--quick] [--plot FILE.svg] "
                      "[--only single|pairs|three|elastic|plot] [--nvml] [--check POINTS]\n");
      return 2;
    }
  }
  if (nvml.on)
    nvml_open();
  const char *bd = getenv("VGPOOL_BUILD_DIR");
  if (bd == NULL)
    die("set VGPOOL_BUILD_DIR to the build directory");
  vgp__strlcpy(build_dir, bd, sizeof(build_dir));
  double run = quick ? 6.5 : 12.5;
  printf("%-22s %-8s %6s %8s %9s %7s %10s\n", "scenario", "cont.", "target", "kern_us", "achieved",
         "error", "converged");

  static const unsigned targets[] = {10, 25, 50, 75, 90};
  static const unsigned kernels[] = {50, 1000, 20000};
  static struct scenario sc;
  if (only == NULL || strcmp(only, "single") == 0) {
    for (size_t k = 0; k < 3; k++)
      for (size_t t = 0; t < 5; t++) {
        memset(&sc, 0, sizeof(sc));
        sc.n = 1;
        sc.c[0] = (struct container){.name = "alone", .cores = targets[t], .kernel_us = kernels[k], .run_s = run};
        run_scenario(&sc);
        report(&sc, "one container");
      }
  }
  if (only == NULL || strcmp(only, "pairs") == 0) {
    static const unsigned pairs[2][2] = {{30, 60}, {10, 90}};
    for (int p = 0; p < 2; p++) {
      memset(&sc, 0, sizeof(sc));
      sc.n = 2;
      sc.c[0] = (struct container){.name = "a", .cores = pairs[p][0], .kernel_us = 1000, .run_s = run};
      sc.c[1] = (struct container){.name = "b", .cores = pairs[p][1], .kernel_us = 1000, .run_s = run};
      run_scenario(&sc);
      report(&sc, p == 0 ? "two: 30 + 60" : "two: 10 + 90");
    }
  }
  if (only == NULL || strcmp(only, "three") == 0) {
    memset(&sc, 0, sizeof(sc));
    sc.n = 3;
    sc.c[0] = (struct container){.name = "a", .cores = 20, .kernel_us = 1000, .run_s = run};
    sc.c[1] = (struct container){.name = "b", .cores = 30, .kernel_us = 1000, .run_s = run};
    sc.c[2] = (struct container){.name = "c", .cores = 50, .kernel_us = 1000, .run_s = run};
    run_scenario(&sc);
    report(&sc, "three: 20/30/50");
  }
  if (only == NULL || strcmp(only, "elastic") == 0) {
    memset(&sc, 0, sizeof(sc));
    sc.n = 2;
    sc.c[0] = (struct container){.name = "elastic", .cores = 30, .policy = "elastic", .kernel_us = 1000, .run_s = 9};
    sc.c[1] = (struct container){.name = "hard", .cores = 50, .kernel_us = 1000, .start_s = 3, .run_s = 4};
    run_scenario(&sc);
    const struct container *e = &sc.c[0], *h = &sc.c[1];
    double alone = share_between(&sc, e, sample_at(&sc, 1.0), sample_at(&sc, 2.9)) * 100;
    double with = share_between(&sc, e, sample_at(&sc, h->start_abs + 0.5), sample_at(&sc, h->start_abs + 3.5)) * 100;
    double neighbour = share_between(&sc, h, sample_at(&sc, h->start_abs + 0.5), sample_at(&sc, h->start_abs + 3.5)) * 100;
    double after = share_between(&sc, e, sample_at(&sc, h->start_abs + 4.8), sample_at(&sc, 8.8)) * 100;
    /* Give-back: from the first sample the neighbour has run in, the first
     * 100 ms window where the elastic container is within 2 points of 30%. */
    double give_back = -1;
    for (int i = sample_at(&sc, h->start_abs); i + 1 < sc.nsamples; i++) {
      if (h->busy[i] == 0)
        continue;
      if (share_between(&sc, e, i, i + 1) * 100 <= 32.0) {
        int first = i;
        for (int k = sample_at(&sc, h->start_abs); k < sc.nsamples; k++)
          if (h->busy[k] > 0) {
            first = k;
            break;
          }
        give_back = sc.t[i + 1] - sc.t[first];
        break;
      }
    }
    printf("%-22s elastic 30%%: alone %.1f%%, beside a hard 50%% %.1f%% (neighbour %.1f%%), alone again %.1f%%;"
           " back at its share %.0f ms after the neighbour's first kernel\n",
           "elastic borrow/return", alone, with, neighbour, after, give_back * 1000);
  }
  if (plot_path != NULL && (only == NULL || strcmp(only, "plot") == 0)) {
    memset(&sc, 0, sizeof(sc));
    sc.n = 2;
    sc.c[0] = (struct container){.name = "ten", .cores = 10, .kernel_us = 1000, .run_s = 10};
    sc.c[1] = (struct container){.name = "ninety", .cores = 90, .kernel_us = 1000, .start_s = 3, .run_s = 7};
    run_scenario(&sc);
    report(&sc, "plot: 10 + 90 late");
    plot(&sc, plot_path);
    printf("plot written to %s\n", plot_path);
  }
  if (check_points >= 0)
    printf("%d container(s) outside +-%.1f points or never converged\n", failures, check_points);
  return failures > 0 ? 1 : 0;
}
