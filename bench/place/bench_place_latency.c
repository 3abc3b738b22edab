/*
 * bench_place_latency.c - how long one placement decision takes: filter
 * and score of one pod over the whole openb cluster (1,213 nodes, 6,212
 * GPUs).
 *
 * Two views, both printed, neither asserted:
 *
 *  1. During a replay of the default trace (seed 42): every call of
 *     vgp_place_schedule() is timed as the scheduler would see it, with
 *     the caches as warm or as cold as they really are (a workload rebuild
 *     invalidates them). p50, p99 and max per policy, best of three runs
 *     to keep a busy machine's noise out of the figure.
 *  2. At fixed fill levels (0%, 50%, 90%, 100% of the GPU capacity
 *     arrived, filled by frag): 2,000 requests drawn from the trace are
 *     scored without being committed; and the first decision of a fresh
 *     policy, whose caches are all cold and which builds its workload
 *     statistics and packing plan on that call: the worst case.
 *
 * usage: bench_place_latency [--trace-dir DIR] [--policies 'a;b']
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "replay.h"

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

struct stats {
  double p50, p99, max, mean;
};

static struct stats summarize(double *v, size_t n) {
  struct stats s = {0, 0, 0, 0};
  if (n == 0)
    return s;
  qsort(v, n, sizeof(double), cmp_double);
  for (size_t i = 0; i < n; i++)
    s.mean += v[i];
  s.mean /= (double)n;
  s.p50 = v[n / 2];
  s.p99 = v[(size_t)((double)(n - 1) * 0.99)];
  s.max = v[n - 1];
  return s;
}

/* Replays the order under a policy, timing each decision; fills lat. */
static int replay_timed(const struct vgp_replay_trace *t, const struct vgp_replay_order *o,
                        const char *spec, double *lat, struct vgp_place_cluster **ret_c,
                        double stop_pct) {
  struct vgp_place_cluster *c = NULL;
  struct vgp_place_policy *p = NULL;
  char err[160];
  uint64_t arrived = 0;
  int r;

  if ((r = vgp_replay_build_cluster(t, 42, &c)) < 0)
    return r;
  if ((r = vgp_place_policy_new(spec, 42, &p, err, sizeof(err))) < 0) {
    fprintf(stderr, "policy %s: %s\n", spec, err);
    vgp_place_cluster_free(&c);
    return r;
  }
  for (uint32_t i = 0; i < o->n; i++) {
    const struct vgp_replay_pod *pod = &t->pods[o->idx[i]];
    struct vgp_place_request req;
    struct vgp_place_result res;
    vgp_replay_pod_request(pod, &req);
    arrived += (uint64_t)pod->num_gpu * pod->gpu_milli;
    if (stop_pct > 0 && 100.0 * (double)arrived / (double)t->gpu_milli_total > stop_pct)
      break;
    vgp_place_policy_observe(p, c, &req);
    double t0 = now_ns();
    r = vgp_place_schedule(p, c, &req, NULL, 0, &res);
    if (lat != NULL)
      lat[i] = now_ns() - t0;
    if (r < 0)
      break;
    if (res.found && (r = vgp_place_commit(c, &req, &res.assignment, NULL)) < 0)
      break;
  }
  vgp_place_policy_free(&p);
  if (r == 0 && ret_c != NULL)
    *ret_c = c;
  else
    vgp_place_cluster_free(&c);
  return r;
}

int main(int argc, char **argv) {
  const char *dir = getenv("VGPOOL_TRACE_DIR");
  const char *pol_arg = "random;bestfit;hami;fgd;frag";
  char dir_buf[2048], path[4096], err[512];
  struct vgp_replay_trace t = {0};
  struct vgp_replay_order o;

  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--trace-dir") == 0 && i + 1 < argc)
      dir = argv[++i];
    else if (strcmp(argv[i], "--policies") == 0 && i + 1 < argc)
      pol_arg = argv[++i];
    else {
      fprintf(stderr, "usage: %s [--trace-dir DIR] [--policies 'a;b']\n", argv[0]);
      return 2;
    }
  }
  if (dir == NULL || dir[0] == '\0') {
    const char *src = getenv("VGPOOL_SOURCE_DIR");
    if (src == NULL || strlen(src) > 1900)
      src = ".";
    snprintf(dir_buf, sizeof(dir_buf), "%s/../shared/traces/alibaba-gpu-v2023", src);
  } else {
    if (strlen(dir) >= sizeof(dir_buf))
      return 2;
    snprintf(dir_buf, sizeof(dir_buf), "%s", dir);
  }
  snprintf(path, sizeof(path), "%s/openb_node_list_gpu_node.csv", dir_buf);
  if (vgp_replay_load_nodes(&t, path, err, sizeof(err)) < 0) {
    fprintf(stderr, "bench_place_latency: %s (set VGPOOL_TRACE_DIR)\n", err);
    return 1;
  }
  snprintf(path, sizeof(path), "%s/openb_pod_list_default.csv", dir_buf);
  if (vgp_replay_load_pods(&t, path, err, sizeof(err)) < 0) {
    fprintf(stderr, "bench_place_latency: %s\n", err);
    return 1;
  }
  if (vgp_replay_order_make(&t, 42, 1.3, 1, &o) < 0)
    return 1;

  char pol_buf[512];
  const char *policies[16];
  unsigned n_pol = 0;
  snprintf(pol_buf, sizeof(pol_buf), "%s", pol_arg);
  for (char *sv = NULL, *tok = strtok_r(pol_buf, ";", &sv); tok && n_pol < 16;
       tok = strtok_r(NULL, ";", &sv))
    policies[n_pol++] = tok;

  time_t now = time(NULL);
  char date[64];
  strftime(date, sizeof(date), "%Y-%m-%d %H:%M UTC", gmtime(&now));
  printf("bench_place_latency: %s; %u nodes, %llu GPUs; default trace, seed 42, %u pods\n",
         date, t.n_nodes, (unsigned long long)(t.gpu_milli_total / 1000), o.n);
  printf("\n1. filter+score of one pod during a replay (best of 3 runs)\n");
  printf("  %-16s %10s %10s %10s %10s\n", "policy", "p50 us", "p99 us", "max us", "mean us");
  double *lat = malloc(o.n * sizeof(double));
  if (lat == NULL)
    return 1;
  for (unsigned k = 0; k < n_pol; k++) {
    struct stats best = {0, 0, 0, 0};
    for (int rep = 0; rep < 3; rep++) {
      memset(lat, 0, o.n * sizeof(double));
      if (replay_timed(&t, &o, policies[k], lat, NULL, 0) < 0)
        return 1;
      struct stats s = summarize(lat, o.n);
      if (rep == 0 || s.p99 < best.p99)
        best = s;
    }
    printf("  %-16s %10.1f %10.1f %10.1f %10.1f\n", policies[k], best.p50 / 1e3, best.p99 / 1e3,
           best.max / 1e3, best.mean / 1e3);
  }

  printf("\n2. frag at fixed fill levels: 2000 requests scored, not committed; and the\n"
         "   first decision of a fresh policy (all caches cold, worst of 20)\n");
  printf("  %7s %10s %10s %10s %12s\n", "fill", "p50 us", "p99 us", "max us", "first us");
  static const double fills[] = {0.0001, 50, 90, 100};
  double *samples = malloc(2000 * sizeof(double));
  if (samples == NULL)
    return 1;
  for (unsigned f = 0; f < sizeof(fills) / sizeof(fills[0]); f++) {
    struct vgp_place_cluster *c = NULL;
    if (replay_timed(&t, &o, "frag", NULL, &c, fills[f]) < 0)
      return 1;
    struct vgp_place_policy *p = NULL;
    struct vgp_place_rng rng;
    struct vgp_place_result res;
    vgp_place_rng_seed(&rng, 7);
    /* The first decision of a fresh policy computes every node's value and
     * builds the workload statistics and the plan: the coldest case. */
    double first = 0;
    for (int k = 0; k < 20; k++) {
      if (vgp_place_policy_new("frag", 42, &p, NULL, 0) < 0)
        return 1;
      for (uint32_t i = 0; i < o.n && i < 8000; i++) {
        struct vgp_place_request req;
        vgp_replay_pod_request(&t.pods[o.idx[i]], &req);
        vgp_place_policy_observe(p, c, &req);
      }
      struct vgp_place_request req;
      vgp_replay_pod_request(&t.pods[vgp_place_rng_below(&rng, t.n_pods)], &req);
      double t0 = now_ns();
      vgp_place_schedule(p, c, &req, NULL, 0, &res);
      double d = now_ns() - t0;
      if (d > first)
        first = d;
      if (k < 19)
        vgp_place_policy_free(&p);
    }
    for (int i = 0; i < 2000; i++) {
      struct vgp_place_request req;
      vgp_replay_pod_request(&t.pods[vgp_place_rng_below(&rng, t.n_pods)], &req);
      double t0 = now_ns();
      vgp_place_schedule(p, c, &req, NULL, 0, &res);
      samples[i] = now_ns() - t0;
    }
    struct stats s = summarize(samples, 2000);
    printf("  %6.0f%% %10.1f %10.1f %10.1f %12.1f\n", fills[f], s.p50 / 1e3, s.p99 / 1e3,
           s.max / 1e3, first / 1e3);
    vgp_place_policy_free(&p);
    vgp_place_cluster_free(&c);
  }
  free(samples);
  free(lat);
  vgp_replay_order_clear(&o);
  vgp_replay_trace_clear(&t);
  return 0;
}
