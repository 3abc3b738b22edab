/*
 * cmd_replay.c - `vgpool replay`: replay a cluster trace through placement
 * policies and report how well each packs the cluster.
 *
 * The front end only parses options, loads the trace, and prints; the
 * replay itself (arrival order, placement, measurement) is libvgp_replay,
 * and the policies are libvgp_place. Progress goes to stderr, the summary
 * table to stdout, and the detailed results to the files asked for.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "replay.h"
#include "vgpool/units.h"

#define VGP__DEFAULT_TRACE_DIR "../shared/traces/alibaba-gpu-v2023"

static const char *const vgp__default_policies[] = {"random", "bestfit", "fgd", "frag"};

static void vgp__replay_usage(FILE *out) {
  fprintf(out,
          "usage: vgpool replay [options]\n"
          "\n"
          "Replays the openb GPU-sharing trace (Alibaba cluster-trace-gpu-v2023) the way\n"
          "the FGD paper (ATC'23) did, through one or more placement policies, and\n"
          "reports the GPU allocation ratio when the arrived workload reaches 100%% of\n"
          "the cluster's GPU capacity.\n"
          "\n"
          "input:\n"
          "  -d, --trace-dir DIR    directory of the openb CSV files (default:\n"
          "                         $VGPOOL_TRACE_DIR, else " VGP__DEFAULT_TRACE_DIR ")\n"
          "  -w, --variant NAME     pod list openb_pod_list_NAME.csv (default: default)\n"
          "      --pods FILE        pod list file (overrides --variant)\n"
          "      --nodes FILE       node list file (default: DIR/openb_node_list_gpu_node.csv)\n"
          "replay:\n"
          "  -p, --policy SPEC      a policy; repeat for several (default: random,\n"
          "                         bestfit, fgd, frag). --list-policies shows them.\n"
          "  -s, --seeds LIST       seeds: 42, 42,43 or 42-51 (default: 42-51)\n"
          "      --tune RATIO       top the workload up (or trim it) to RATIO x capacity\n"
          "                         (default 1.3; 0 keeps the trace as it is)\n"
          "      --no-shuffle       keep the file order\n"
          "  -j, --jobs N           replays run in parallel (default 1)\n"
          "output:\n"
          "      --csv FILE         the curve: policy, seed, arrived %%, allocated %%, frag %%\n"
          "      --json FILE        summary and mean curves\n"
          "      --svg FILE         plot of allocation ratio against arrived workload\n"
          "      --placements FILE  every pod's node, GPU indices and milli per GPU\n"
          "      --timing           time each placement decision (p50/p99/max)\n"
          "  -q, --quiet            no progress on stderr\n"
          "      --list-policies    list the built-in policies and exit\n"
          "  -h, --help             this text\n");
}

static void vgp__list_policies(void) {
  printf("built-in policy terms (combine as \"0.7*a+0.3*b\", arguments as \"a[k=v]\"):\n");
  for (unsigned i = 0;; i++) {
    const struct vgp_place_scorer_ops *ops = vgp_place_scorer_get(i);
    if (ops == NULL)
      break;
    printf("  %-15s %s\n", ops->name, ops->summary);
  }
  printf("aliases: hami = node-binpack+device-spread, hami-spread, binpack, spread\n");
}

/* Parses "42", "42,43" or "42-51" (and mixes: "1,5-7"). */
static int vgp__parse_seeds(const char *text, uint64_t *seeds, unsigned *ret_n) {
  char buf[512];
  unsigned n = 0;

  if (strlen(text) >= sizeof(buf))
    return -E2BIG;
  snprintf(buf, sizeof(buf), "%s", text);
  for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok != NULL;
       tok = strtok_r(NULL, ",", &save)) {
    uint64_t lo, hi;
    char *dash = strchr(tok, '-');
    if (dash != NULL) {
      *dash = '\0';
      if (vgp_parse_u64(tok, &lo) < 0 || vgp_parse_u64(dash + 1, &hi) < 0 || hi < lo)
        return -EINVAL;
    } else {
      if (vgp_parse_u64(tok, &lo) < 0)
        return -EINVAL;
      hi = lo;
    }
    for (uint64_t s = lo; s <= hi; s++) {
      if (n >= VGP_REPLAY_SEEDS_MAX)
        return -E2BIG;
      seeds[n++] = s;
    }
  }
  if (n == 0)
    return -EINVAL;
  *ret_n = n;
  return 0;
}

struct vgp__progress {
  int tty;
  unsigned runs_total;
  unsigned runs_done;
};

static void vgp__progress_cb(void *data, const char *policy, uint64_t seed,
                             uint32_t done, uint32_t total) {
  struct vgp__progress *pg = data;
  if (done == total)
    pg->runs_done++;
  if (pg->tty) {
    fprintf(stderr, "\r\033[Kreplay: run %u/%u done; %s seed %llu: %u/%u pods",
            pg->runs_done, pg->runs_total, policy, (unsigned long long)seed, done, total);
    if (pg->runs_done == pg->runs_total)
      fputc('\n', stderr);
  } else if (done == total) {
    fprintf(stderr, "replay: %u/%u runs done (%s, seed %llu)\n", pg->runs_done,
            pg->runs_total, policy, (unsigned long long)seed);
  }
  fflush(stderr);
}

static FILE *vgp__open_out(const char *path) {
  FILE *f = fopen(path, "w");
  if (f == NULL)
    fprintf(stderr, "vgpool replay: cannot write %s: %s\n", path, strerror(errno));
  return f;
}

static int vgp__close_out(FILE *f, const char *path, int r) {
  if (fclose(f) != 0 && r == 0)
    r = -errno;
  if (r < 0)
    fprintf(stderr, "vgpool replay: writing %s failed: %s\n", path, strerror(-r));
  return r;
}

static void vgp__mean_sd(const struct vgp_replay_run *runs, unsigned n,
                         double (*get)(const struct vgp_replay_run *), double *mean,
                         double *sd) {
  double s = 0, q = 0;
  for (unsigned i = 0; i < n; i++)
    s += get(&runs[i]);
  *mean = n > 0 ? s / n : 0;
  for (unsigned i = 0; i < n; i++)
    q += (get(&runs[i]) - *mean) * (get(&runs[i]) - *mean);
  *sd = n > 1 ? sqrt(q / (n - 1)) : 0;
}

static double vgp__get_alloc(const struct vgp_replay_run *r) { return r->alloc_at_100; }
static double vgp__get_frag(const struct vgp_replay_run *r) { return r->frag_at_100; }
static double vgp__get_final(const struct vgp_replay_run *r) { return r->alloc_final; }
static double vgp__get_secs(const struct vgp_replay_run *r) { return r->seconds; }
static double vgp__get_failed(const struct vgp_replay_run *r) { return r->failed_by_100; }
static double vgp__get_p99(const struct vgp_replay_run *r) { return r->sched_ns_p99; }

static void vgp__print_summary(const char *trace_name, const struct vgp_replay_trace *t,
                               const struct vgp_replay_run *runs, unsigned n_policies,
                               unsigned n_seeds, int timing) {
  printf("trace %s: %u nodes, %llu GPUs, %u pods in the list; %u seed%s\n", trace_name,
         t->n_nodes, (unsigned long long)(t->gpu_milli_total / 1000), t->n_pods, n_seeds,
         n_seeds == 1 ? "" : "s");
  printf("%-28s %15s %8s %9s %9s %11s %8s%s\n", "policy", "alloc@100%", "unalloc",
         "frag@100", "alloc@end", "failed<=100", "sec/run", timing ? "  p99(us)" : "");
  for (unsigned p = 0; p < n_policies; p++) {
    const struct vgp_replay_run *pr = &runs[(size_t)p * n_seeds];
    double am, asd, fm, fsd, em, esd, sm, ssd, xm, xsd, lm, lsd;
    vgp__mean_sd(pr, n_seeds, vgp__get_alloc, &am, &asd);
    vgp__mean_sd(pr, n_seeds, vgp__get_frag, &fm, &fsd);
    vgp__mean_sd(pr, n_seeds, vgp__get_final, &em, &esd);
    vgp__mean_sd(pr, n_seeds, vgp__get_secs, &sm, &ssd);
    vgp__mean_sd(pr, n_seeds, vgp__get_failed, &xm, &xsd);
    vgp__mean_sd(pr, n_seeds, vgp__get_p99, &lm, &lsd);
    printf("%-28.28s %8.2f +-%4.2f %7.2f%% %8.2f%% %8.2f%% %11.1f %8.2f", pr[0].policy, am,
           asd, 100.0 - am, fm, em, xm, sm);
    if (timing)
      printf("  %7.1f", lm / 1000.0);
    printf("\n");
  }
  /* Pods that could never be placed deserve a line of their own: no policy
   * can help them, and they usually mean a bad trace or a bad cluster. */
  for (unsigned p = 0; p < n_policies; p++) {
    const struct vgp_replay_run *r = &runs[(size_t)p * n_seeds];
    if (r->failed_never == 0)
      continue;
    for (uint32_t i = 0; i < r->n_pods; i++)
      if (r->never[i]) {
        const struct vgp_replay_pod *pod = &t->pods[r->pod[i]];
        printf("unschedulable: %u pod%s can never fit any node (e.g. %s: %u GPU x %u milli, "
               "%llu milli-CPU: %s)\n",
               r->failed_never, r->failed_never == 1 ? "" : "s", pod->name, pod->num_gpu,
               pod->gpu_milli, (unsigned long long)pod->cpu_milli,
               vgp_place_reason_name((enum vgp_place_reason)r->reason[i]));
        break;
      }
    break;
  }
}

int vgp_cmd_replay(int argc, char **argv) {
  enum { O_PODS = 256, O_NODES, O_TUNE, O_NOSHUF, O_CSV, O_JSON, O_SVG, O_PLACE,
         O_LIST, O_TIMING };
  static const struct option longopts[] = {
      {"trace-dir", required_argument, NULL, 'd'},
      {"variant", required_argument, NULL, 'w'},
      {"pods", required_argument, NULL, O_PODS},
      {"nodes", required_argument, NULL, O_NODES},
      {"policy", required_argument, NULL, 'p'},
      {"seeds", required_argument, NULL, 's'},
      {"tune", required_argument, NULL, O_TUNE},
      {"no-shuffle", no_argument, NULL, O_NOSHUF},
      {"jobs", required_argument, NULL, 'j'},
      {"csv", required_argument, NULL, O_CSV},
      {"json", required_argument, NULL, O_JSON},
      {"svg", required_argument, NULL, O_SVG},
      {"placements", required_argument, NULL, O_PLACE},
      {"timing", no_argument, NULL, O_TIMING},
      {"quiet", no_argument, NULL, 'q'},
      {"list-policies", no_argument, NULL, O_LIST},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  const char *dir = getenv("VGPOOL_TRACE_DIR"), *variant = "default";
  const char *pods_path = NULL, *nodes_path = NULL;
  const char *csv_path = NULL, *json_path = NULL, *svg_path = NULL, *place_path = NULL;
  const char *policies[VGP_REPLAY_POLICIES_MAX];
  unsigned n_policies = 0, n_seeds = 10;
  uint64_t seeds[VGP_REPLAY_SEEDS_MAX];
  double tune = 1.3;
  int shuffle = 1, quiet = 0, timing = 0, opt, r;
  long jobs = 1;
  char pods_buf[4096], nodes_buf[4096], err[1024];
  struct vgp_replay_trace trace = {0};
  struct vgp_replay_run *runs = NULL;
  struct vgp__progress pg = {0};
  int status = VGP_EXIT_FAILURE;

  for (unsigned i = 0; i < n_seeds; i++)
    seeds[i] = 42 + i;
  if (dir == NULL || dir[0] == '\0')
    dir = VGP__DEFAULT_TRACE_DIR;
  optind = 1;
  while ((opt = getopt_long(argc, argv, "d:w:p:s:j:qh", longopts, NULL)) != -1) {
    switch (opt) {
    case 'd': dir = optarg; break;
    case 'w': variant = optarg; break;
    case O_PODS: pods_path = optarg; break;
    case O_NODES: nodes_path = optarg; break;
    case 'p':
      if (n_policies >= VGP_REPLAY_POLICIES_MAX) {
        fprintf(stderr, "vgpool replay: at most %u policies\n", VGP_REPLAY_POLICIES_MAX);
        return VGP_EXIT_USAGE;
      }
      policies[n_policies++] = optarg;
      break;
    case 's':
      if (vgp__parse_seeds(optarg, seeds, &n_seeds) < 0) {
        fprintf(stderr, "vgpool replay: bad --seeds '%s' (e.g. 42, 42,43 or 42-51; at most %u)\n",
                optarg, VGP_REPLAY_SEEDS_MAX);
        return VGP_EXIT_USAGE;
      }
      break;
    case O_TUNE: {
      char *end;
      tune = strtod(optarg, &end);
      if (end == optarg || *end != '\0' || !(tune >= 0 && tune <= 100)) {
        fprintf(stderr, "vgpool replay: bad --tune '%s'\n", optarg);
        return VGP_EXIT_USAGE;
      }
      break;
    }
    case O_NOSHUF: shuffle = 0; break;
    case 'j':
      if (vgp_parse_int(optarg, 1, 16, &jobs) < 0) {
        fprintf(stderr, "vgpool replay: bad --jobs '%s' (1..16)\n", optarg);
        return VGP_EXIT_USAGE;
      }
      break;
    case O_CSV: csv_path = optarg; break;
    case O_JSON: json_path = optarg; break;
    case O_SVG: svg_path = optarg; break;
    case O_PLACE: place_path = optarg; break;
    case O_TIMING: timing = 1; break;
    case 'q': quiet = 1; break;
    case O_LIST: vgp__list_policies(); return VGP_EXIT_OK;
    case 'h': vgp__replay_usage(stdout); return VGP_EXIT_OK;
    default: vgp__replay_usage(stderr); return VGP_EXIT_USAGE;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "vgpool replay: unexpected argument '%s'\n", argv[optind]);
    return VGP_EXIT_USAGE;
  }
  if (n_policies == 0) {
    for (unsigned i = 0; i < sizeof(vgp__default_policies) / sizeof(vgp__default_policies[0]); i++)
      policies[n_policies++] = vgp__default_policies[i];
  }
  for (unsigned i = 0; i < n_policies; i++) {
    struct vgp_place_policy *p = NULL;
    char perr[160] = "";
    if (vgp_place_policy_new(policies[i], 1, &p, perr, sizeof(perr)) < 0) {
      fprintf(stderr, "vgpool replay: policy '%s': %s (see --list-policies)\n", policies[i],
              perr);
      return VGP_EXIT_USAGE;
    }
    vgp_place_policy_free(&p);
  }
  if (pods_path == NULL) {
    if (strchr(variant, '/') != NULL) {
      fprintf(stderr, "vgpool replay: bad --variant '%s'\n", variant);
      return VGP_EXIT_USAGE;
    }
    snprintf(pods_buf, sizeof(pods_buf), "%s/openb_pod_list_%s.csv", dir, variant);
    pods_path = pods_buf;
  }
  if (nodes_path == NULL) {
    snprintf(nodes_buf, sizeof(nodes_buf), "%s/openb_node_list_gpu_node.csv", dir);
    nodes_path = nodes_buf;
  }

  err[0] = '\0';
  if (vgp_replay_load_nodes(&trace, nodes_path, err, sizeof(err)) < 0 ||
      vgp_replay_load_pods(&trace, pods_path, err, sizeof(err)) < 0) {
    fprintf(stderr, "vgpool replay: %s\n", err);
    goto out;
  }
  if (trace.n_pods == 0) {
    fprintf(stderr, "vgpool replay: %s: the trace has no pods; nothing to replay\n", pods_path);
    goto out;
  }
  if (trace.gpu_milli_total == 0) {
    fprintf(stderr, "vgpool replay: %s: the cluster has no GPUs (%u nodes, none with a GPU); "
                    "the GPU allocation ratio is undefined\n",
            nodes_path, trace.n_nodes);
    goto out;
  }

  struct vgp_replay_config cfg = {
      .policies = policies,
      .n_policies = n_policies,
      .seeds = seeds,
      .n_seeds = n_seeds,
      .tune = tune,
      .shuffle = shuffle,
      .jobs = (unsigned)jobs,
      .time_schedule = timing,
      .progress = quiet ? NULL : vgp__progress_cb,
      .progress_data = &pg,
      .progress_every = 500,
  };
  pg.tty = isatty(STDERR_FILENO);
  pg.runs_total = n_policies * n_seeds;
  r = vgp_replay_run_all(&trace, &cfg, &runs, err, sizeof(err));
  if (r < 0) {
    fprintf(stderr, "vgpool replay: %s\n", err);
    goto out;
  }

  const char *trace_name = pods_path;
  const char *slash = strrchr(pods_path, '/');
  if (slash != NULL)
    trace_name = slash + 1;
  vgp__print_summary(trace_name, &trace, runs, n_policies, n_seeds, timing);

  status = VGP_EXIT_OK;
  if (csv_path != NULL) {
    FILE *f = vgp__open_out(csv_path);
    if (f == NULL || vgp__close_out(f, csv_path, vgp_replay_write_curve_csv(f, runs, (size_t)n_policies * n_seeds)) < 0)
      status = VGP_EXIT_FAILURE;
  }
  if (json_path != NULL) {
    FILE *f = vgp__open_out(json_path);
    if (f == NULL || vgp__close_out(f, json_path, vgp_replay_write_json(f, trace_name, runs, n_policies, n_seeds)) < 0)
      status = VGP_EXIT_FAILURE;
  }
  if (svg_path != NULL) {
    FILE *f = vgp__open_out(svg_path);
    if (f == NULL || vgp__close_out(f, svg_path, vgp_replay_write_svg(f, trace_name, runs, n_policies, n_seeds)) < 0)
      status = VGP_EXIT_FAILURE;
  }
  if (place_path != NULL) {
    FILE *f = vgp__open_out(place_path);
    if (f == NULL) {
      status = VGP_EXIT_FAILURE;
    } else {
      int w = 0;
      for (unsigned k = 0; k < n_policies * n_seeds && w == 0; k++)
        w = vgp_replay_write_placements(f, &trace, &runs[k], k == 0);
      if (vgp__close_out(f, place_path, w) < 0)
        status = VGP_EXIT_FAILURE;
    }
  }
out:
  vgp_replay_runs_free(&runs, (size_t)n_policies * n_seeds);
  vgp_replay_trace_clear(&trace);
  return status;
}
