/*
 * replay.c - the replay driver: arrival order, one run, many runs.
 *
 * The procedure is the FGD paper's (../shared/traces/README.md), checked
 * against its simulator (hkust-adsl/kubernetes-scheduler-simulator):
 *
 *   1. The pods are sorted by name and shuffled with the seed.
 *   2. If their total GPU request is below tune x capacity, pods drawn with
 *      replacement from the originals are appended until the next draw
 *      would pass it. Like the simulator, the test compares the running
 *      total plus the drawn pod's per-GPU share (not its total) with the
 *      target, then adds its total. If the total is above the target, random
 *      pods are removed until it is not.
 *   3. Pods are placed one at a time and never leave; a pod that fits
 *      nowhere is dropped but has arrived. Before each is placed, the
 *      policy is told it arrived (observe), which is all an online
 *      scheduler knows of the workload.
 *   4. After every pod the allocated and arrived GPU milli are recorded;
 *      ties between equally scored nodes follow a per-seed random node
 *      order.
 *
 * The random numbers are vgpool's own (xoshiro256**), not Go's math/rand,
 * so a seed does not reproduce the simulator's exact shuffle; what compares
 * is the mean over the ten seeds.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "replay.h"

/* Separate streams per purpose, so that for instance the number of pods
 * topped up does not change the node order. */
#define VGP__STREAM_ORDER 0x6f7264657200ull
#define VGP__STREAM_NODES 0x6e6f64657300ull

void vgp_replay_pod_request(const struct vgp_replay_pod *pod,
                            struct vgp_place_request *ret_req) {
  memset(ret_req, 0, sizeof(*ret_req));
  ret_req->cpu_milli = pod->cpu_milli;
  ret_req->mem_bytes = pod->mem_mib << 20;
  /* The simulator treats a pod with no GPU share as a CPU-only pod. */
  if (pod->num_gpu > 0 && pod->gpu_milli > 0) {
    ret_req->num_devices = pod->num_gpu;
    ret_req->core_milli = pod->gpu_milli;
  }
  ret_req->type_include = pod->spec[0] != '\0' ? pod->spec : NULL;
  ret_req->type_match = VGP_PLACE_MATCH_EXACT;
}

static uint64_t vgp__pod_gpu(const struct vgp_replay_pod *pod) {
  return pod->num_gpu > 0 ? (uint64_t)pod->num_gpu * pod->gpu_milli : 0;
}

static int vgp__by_node_name(const void *a, const void *b, void *ctx) {
  const struct vgp_replay_node *nodes = ctx;
  uint32_t i = *(const uint32_t *)a, j = *(const uint32_t *)b;
  int c = strcmp(nodes[i].name, nodes[j].name);
  return c != 0 ? c : (i < j ? -1 : i > j);
}

static int vgp__by_pod_name(const void *a, const void *b, void *ctx) {
  const struct vgp_replay_pod *pods = ctx;
  uint32_t i = *(const uint32_t *)a, j = *(const uint32_t *)b;
  int c = strcmp(pods[i].name, pods[j].name);
  return c != 0 ? c : (i < j ? -1 : i > j);
}

/* Indices of the pods (or nodes) in name order. */
static int vgp__sorted_by_name(const struct vgp_replay_trace *t, int pods,
                               uint32_t **ret) {
  uint32_t n = pods ? t->n_pods : t->n_nodes;
  uint32_t *idx = vgp__malloc((n > 0 ? n : 1) * sizeof(uint32_t));
  if (idx == NULL)
    return -ENOMEM;
  for (uint32_t i = 0; i < n; i++)
    idx[i] = i;
  if (pods)
    qsort_r(idx, n, sizeof(uint32_t), vgp__by_pod_name, t->pods);
  else
    qsort_r(idx, n, sizeof(uint32_t), vgp__by_node_name, t->nodes);
  *ret = idx;
  return 0;
}

int vgp_replay_build_cluster(const struct vgp_replay_trace *t, uint64_t seed,
                             struct vgp_place_cluster **ret_cluster) {
  struct vgp_place_cluster *c = NULL;
  struct vgp_place_rng rng;
  uint32_t *by_name = NULL, *perm = NULL;
  int r;

  r = vgp_place_cluster_new(&c);
  if (r < 0)
    return r;
  for (uint32_t i = 0; i < t->n_nodes; i++) {
    const struct vgp_replay_node *nd = &t->nodes[i];
    struct vgp_place_node_spec spec = {.name = nd->name,
                                       .cpu_milli = nd->cpu_milli,
                                       .mem_bytes = nd->mem_mib << 20};
    uint32_t node;
    r = vgp_place_node_add(c, &spec, &node);
    if (r < 0)
      goto fail;
    for (uint32_t g = 0; g < nd->gpus; g++) {
      struct vgp_place_device_spec dev = {.model = nd->model, .numa = -1, .healthy = 1};
      r = vgp_place_device_add(c, node, &dev, NULL);
      if (r < 0)
        goto fail;
    }
  }
  /* Ranks: the simulator prefixes the name-sorted nodes with a random
   * permutation and breaks ties by name. */
  r = vgp__sorted_by_name(t, 0, &by_name);
  if (r < 0)
    goto fail;
  perm = vgp__malloc((t->n_nodes > 0 ? t->n_nodes : 1) * sizeof(uint32_t));
  if (perm == NULL) {
    r = -ENOMEM;
    goto fail;
  }
  vgp_place_rng_seed(&rng, seed ^ VGP__STREAM_NODES);
  for (uint32_t i = 0; i < t->n_nodes; i++)
    perm[i] = i;
  for (uint32_t i = t->n_nodes; i > 1; i--) {
    uint32_t j = (uint32_t)vgp_place_rng_below(&rng, i);
    uint32_t x = perm[i - 1];
    perm[i - 1] = perm[j];
    perm[j] = x;
  }
  for (uint32_t i = 0; i < t->n_nodes; i++)
    vgp_place_node_set_tie_rank(c, by_name[i], perm[i]);
  vgp__free(by_name);
  vgp__free(perm);
  *ret_cluster = c;
  return 0;
fail:
  vgp__free(by_name);
  vgp__free(perm);
  vgp_place_cluster_free(&c);
  return r;
}

int vgp_replay_order_make(const struct vgp_replay_trace *t, uint64_t seed,
                          double tune, int shuffle,
                          struct vgp_replay_order *ret_order) {
  struct vgp_place_rng rng;
  uint32_t *idx = NULL, *orig = NULL;
  uint32_t n, cap;
  uint64_t total = 0;
  int r;

  r = vgp__sorted_by_name(t, 1, &orig);
  if (r < 0)
    return r;
  n = t->n_pods;
  cap = n > 0 ? n : 1;
  idx = vgp__malloc(cap * sizeof(uint32_t));
  if (idx == NULL) {
    vgp__free(orig);
    return -ENOMEM;
  }
  memcpy(idx, orig, n * sizeof(uint32_t));
  vgp_place_rng_seed(&rng, seed ^ VGP__STREAM_ORDER);
  if (shuffle)
    for (uint32_t i = n; i > 1; i--) {
      uint32_t j = (uint32_t)vgp_place_rng_below(&rng, i);
      uint32_t x = idx[i - 1];
      idx[i - 1] = idx[j];
      idx[j] = x;
    }
  for (uint32_t i = 0; i < n; i++)
    total += vgp__pod_gpu(&t->pods[idx[i]]);

  double target = tune * (double)t->gpu_milli_total;
  if (tune > 0 && n > 0 && (double)total < target) {
    for (;;) {
      const struct vgp_replay_pod *p = &t->pods[orig[vgp_place_rng_below(&rng, t->n_pods)]];
      uint32_t pi = (uint32_t)(p - t->pods);
      /* The simulator's test adds the per-GPU share, not the total. */
      uint64_t share = p->num_gpu > 0 ? p->gpu_milli : 0;
      if ((double)(total + share) > target)
        break;
      if (n >= VGP_REPLAY_PODS_MAX) {
        r = -E2BIG;
        goto fail;
      }
      if (n == cap) {
        uint32_t *g = vgp__realloc(idx, (size_t)cap * 2 * sizeof(uint32_t));
        if (g == NULL) {
          r = -ENOMEM;
          goto fail;
        }
        idx = g;
        cap *= 2;
      }
      idx[n++] = pi;
      total += vgp__pod_gpu(p);
    }
  } else if (tune > 0 && (double)total > target) {
    while ((double)total > target && n > 0) {
      uint32_t k = (uint32_t)vgp_place_rng_below(&rng, n);
      total -= vgp__pod_gpu(&t->pods[idx[k]]);
      memmove(&idx[k], &idx[k + 1], (size_t)(n - k - 1) * sizeof(uint32_t));
      n--;
    }
  }
  vgp__free(orig);
  ret_order->idx = idx;
  ret_order->n = n;
  ret_order->gpu_milli = total;
  return 0;
fail:
  vgp__free(orig);
  vgp__free(idx);
  return r;
}

void vgp_replay_order_clear(struct vgp_replay_order *o) {
  if (o == NULL)
    return;
  vgp__free(o->idx);
  memset(o, 0, sizeof(*o));
}

void vgp_replay_run_clear(struct vgp_replay_run *run) {
  if (run == NULL)
    return;
  vgp__free(run->pod);
  vgp__free(run->node);
  vgp__free(run->devmask);
  vgp__free(run->reason);
  vgp__free(run->never);
  vgp__free(run->used);
  vgp__free(run->arrived);
  vgp__free(run->frag);
  memset(run, 0, sizeof(*run));
}

static double vgp__now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int vgp__cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Mean of value(i) over the pods whose arrived percent is in [lo, hi). */
static double vgp__window(const struct vgp_replay_run *r, double lo, double hi,
                          int frag) {
  double sum = 0;
  uint64_t n = 0;
  for (uint32_t i = 0; i < r->n_pods; i++) {
    double a = 100.0 * (double)r->arrived[i] / (double)r->capacity;
    if (a < lo || a >= hi)
      continue;
    if (frag) {
      double idle = (double)(r->capacity - r->used[i]);
      sum += idle > 0 ? 100.0 * r->frag[i] / idle : 0.0;
    } else {
      sum += 100.0 * (double)r->used[i] / (double)r->capacity;
    }
    n++;
  }
  return n > 0 ? sum / (double)n : -1.0;
}

static double vgp__at(const struct vgp_replay_run *r, double pct, int frag) {
  if (r == NULL || r->n_pods == 0 || r->capacity == 0)
    return -1.0;
  double v = vgp__window(r, pct - 0.5, pct + 0.5, frag);
  if (v < 0)
    v = vgp__window(r, pct - 1.0, pct + 1.0 + 1e-9, frag);
  return v;
}

double vgp_replay_alloc_at(const struct vgp_replay_run *r, double pct) {
  return vgp__at(r, pct, 0);
}

double vgp_replay_frag_at(const struct vgp_replay_run *r, double pct) {
  return vgp__at(r, pct, 1);
}

static int vgp__run_alloc(struct vgp_replay_run *run, uint32_t n) {
  size_t m = n > 0 ? n : 1;
  run->pod = vgp__calloc(m, sizeof(uint32_t));
  run->node = vgp__calloc(m, sizeof(int32_t));
  run->devmask = vgp__calloc(m, sizeof(uint16_t));
  run->reason = vgp__calloc(m, 1);
  run->never = vgp__calloc(m, 1);
  run->used = vgp__calloc(m, sizeof(uint64_t));
  run->arrived = vgp__calloc(m, sizeof(uint64_t));
  run->frag = vgp__calloc(m, sizeof(double));
  if (run->pod == NULL || run->node == NULL || run->devmask == NULL ||
      run->reason == NULL || run->never == NULL || run->used == NULL ||
      run->arrived == NULL || run->frag == NULL)
    return -ENOMEM;
  return 0;
}

int vgp_replay_run_one(const struct vgp_replay_trace *t, const char *policy,
                       uint64_t seed, double tune, int shuffle,
                       int time_schedule, vgp_replay_progress_fn progress,
                       void *progress_data, uint32_t progress_every,
                       struct vgp_replay_run *run, char *err, size_t err_len) {
  struct vgp_place_cluster *c = NULL;
  struct vgp_place_policy *p = NULL;
  struct vgp_place_workload *w = NULL;
  struct vgp_replay_order order = {0};
  double *node_frag = NULL, *lat = NULL, frag_sum = 0, t0;
  char perr[160];
  int r;

  memset(run, 0, sizeof(*run));
  snprintf(run->policy, sizeof(run->policy), "%s", policy);
  run->seed = seed;
  if (t->n_pods == 0) {
    snprintf(err, err_len, "the trace has no pods");
    return -ENODATA;
  }
  if (t->gpu_milli_total == 0) {
    snprintf(err, err_len, "the cluster has no GPUs (%u nodes, none with a GPU)", t->n_nodes);
    return -ENODATA;
  }
  if (progress_every == 0)
    progress_every = 1000;
  t0 = vgp__now();
  perr[0] = '\0';
  r = vgp_place_policy_new(policy, seed, &p, perr, sizeof(perr));
  if (r < 0) {
    snprintf(err, err_len, "policy '%s': %s", policy, perr[0] ? perr : strerror(-r));
    return r;
  }
  if ((r = vgp_replay_build_cluster(t, seed, &c)) < 0 ||
      (r = vgp_replay_order_make(t, seed, tune, shuffle, &order)) < 0 ||
      (r = vgp_place_workload_new(0.95, &w)) < 0 ||
      (r = vgp__run_alloc(run, order.n)) < 0) {
    snprintf(err, err_len, "preparing the replay: %s", strerror(-r));
    goto out;
  }
  /* The fragmentation reported (not the one any policy decides on) is
   * measured as the paper measures it: under the typical shapes of the
   * whole original pod list. */
  for (uint32_t i = 0; i < t->n_pods; i++) {
    struct vgp_place_request req;
    vgp_replay_pod_request(&t->pods[i], &req);
    if (req.num_devices > VGP_PLACE_MAX_DEVICES)
      continue;
    r = vgp_place_workload_add(w, c, &req);
    if (r < 0) {
      snprintf(err, err_len, "counting the workload: %s", strerror(-r));
      goto out;
    }
  }
  node_frag = vgp__calloc(t->n_nodes > 0 ? t->n_nodes : 1, sizeof(double));
  if (time_schedule)
    lat = vgp__calloc(order.n, sizeof(double));
  if (node_frag == NULL || (time_schedule && lat == NULL)) {
    r = -ENOMEM;
    snprintf(err, err_len, "out of memory");
    goto out;
  }
  for (uint32_t n = 0; n < t->n_nodes; n++) {
    node_frag[n] = vgp_place_node_fragmentation(c, w, n);
    frag_sum += node_frag[n];
  }
  run->capacity = t->gpu_milli_total;
  run->n_pods = order.n;

  uint64_t arrived = 0, used = 0;
  for (uint32_t i = 0; i < order.n; i++) {
    const struct vgp_replay_pod *pod = &t->pods[order.idx[i]];
    struct vgp_place_request req;
    struct vgp_place_result res;

    vgp_replay_pod_request(pod, &req);
    arrived += vgp__pod_gpu(pod);
    run->pod[i] = order.idx[i];
    run->node[i] = -1;
    if (req.num_devices > VGP_PLACE_MAX_DEVICES) {
      /* More devices than the engine models on any node: it can never fit
       * and the engine would refuse the request outright. */
      memset(&res, 0, sizeof(res));
      res.never_fits = 1;
      res.never_reason = VGP_PLACE_R_DEVICE_COUNT;
    } else {
      vgp_place_policy_observe(p, c, &req);
      double s0 = time_schedule ? vgp__now() : 0;
      r = vgp_place_schedule(p, c, &req, NULL, 0, &res);
      if (time_schedule)
        lat[i] = (vgp__now() - s0) * 1e9;
      if (r < 0) {
        snprintf(err, err_len, "scheduling pod %s: %s", pod->name, strerror(-r));
        goto out;
      }
    }
    if (res.found) {
      uint32_t alloc;
      r = vgp_place_commit(c, &req, &res.assignment, &alloc);
      if (r < 0) {
        snprintf(err, err_len, "policy %s chose an infeasible placement for pod %s: %s",
                 policy, pod->name, strerror(-r));
        goto out;
      }
      uint32_t node = res.assignment.node;
      run->node[i] = (int32_t)node;
      for (uint32_t d = 0; d < res.assignment.n_devices; d++)
        run->devmask[i] |= (uint16_t)(1u << res.assignment.devices[d]);
      used += (uint64_t)req.num_devices * req.core_milli;
      double f = vgp_place_node_fragmentation(c, w, node);
      frag_sum += f - node_frag[node];
      node_frag[node] = f;
    } else {
      enum vgp_place_reason why = VGP_PLACE_R_COMPUTE;
      if (res.never_fits) {
        why = res.never_reason;
      } else {
        uint32_t most = 0;
        for (int k = 1; k < VGP_PLACE_REASON__COUNT; k++)
          if (res.rejected[k] > most) {
            most = res.rejected[k];
            why = (enum vgp_place_reason)k;
          }
      }
      run->reason[i] = (uint8_t)why;
      run->never[i] = (uint8_t)(res.never_fits != 0);
      run->failed++;
      run->failed_never += res.never_fits != 0;
      run->failed_reason[why]++;
      if (100.0 * (double)arrived / (double)run->capacity < 100.5)
        run->failed_by_100++;
    }
    run->used[i] = used;
    run->arrived[i] = arrived;
    run->frag[i] = frag_sum;
    if (progress != NULL && ((i + 1) % progress_every == 0 || i + 1 == order.n))
      progress(progress_data, policy, seed, i + 1, order.n);
  }
  run->alloc_at_100 = vgp_replay_alloc_at(run, 100.0);
  run->frag_at_100 = vgp_replay_frag_at(run, 100.0);
  run->alloc_final = 100.0 * (double)used / (double)run->capacity;
  if (time_schedule && order.n > 0) {
    qsort(lat, order.n, sizeof(double), vgp__cmp_double);
    run->sched_ns_p50 = lat[order.n / 2];
    run->sched_ns_p99 = lat[(size_t)((double)(order.n - 1) * 0.99)];
    run->sched_ns_max = lat[order.n - 1];
  }
  run->seconds = vgp__now() - t0;
  r = 0;
out:
  vgp__free(node_frag);
  vgp__free(lat);
  vgp_replay_order_clear(&order);
  vgp_place_workload_free(&w);
  vgp_place_policy_free(&p);
  vgp_place_cluster_free(&c);
  if (r < 0) {
    char policy_copy[sizeof(run->policy)];
    memcpy(policy_copy, run->policy, sizeof(policy_copy));
    vgp_replay_run_clear(run);
    memcpy(run->policy, policy_copy, sizeof(policy_copy));
    run->seed = seed;
  }
  return r;
}

/* ---- many runs on a few threads ---- */

struct vgp__pool {
  const struct vgp_replay_trace *t;
  const struct vgp_replay_config *cfg;
  struct vgp_replay_run *runs;
  unsigned total;
  unsigned next;
  int error;
  char *err;
  size_t err_len;
  pthread_mutex_t lock;
};

static void vgp__pool_progress(void *data, const char *policy, uint64_t seed,
                               uint32_t done, uint32_t total) {
  struct vgp__pool *pool = data;
  pthread_mutex_lock(&pool->lock);
  pool->cfg->progress(pool->cfg->progress_data, policy, seed, done, total);
  pthread_mutex_unlock(&pool->lock);
}

static void *vgp__pool_worker(void *arg) {
  struct vgp__pool *pool = arg;
  for (;;) {
    unsigned k;
    pthread_mutex_lock(&pool->lock);
    k = pool->next++;
    int stop = pool->error != 0 || k >= pool->total;
    pthread_mutex_unlock(&pool->lock);
    if (stop)
      return NULL;
    const struct vgp_replay_config *cfg = pool->cfg;
    char err[512];
    err[0] = '\0';
    int r = vgp_replay_run_one(pool->t, cfg->policies[k / cfg->n_seeds],
                               cfg->seeds[k % cfg->n_seeds], cfg->tune, cfg->shuffle,
                               cfg->time_schedule,
                               cfg->progress != NULL ? vgp__pool_progress : NULL, pool,
                               cfg->progress_every, &pool->runs[k], err, sizeof(err));
    if (r < 0) {
      pthread_mutex_lock(&pool->lock);
      if (pool->error == 0) {
        pool->error = r;
        snprintf(pool->err, pool->err_len, "%s", err);
      }
      pthread_mutex_unlock(&pool->lock);
      return NULL;
    }
  }
}

int vgp_replay_run_all(const struct vgp_replay_trace *t,
                       const struct vgp_replay_config *cfg,
                       struct vgp_replay_run **ret_runs, char *err,
                       size_t err_len) {
  struct vgp__pool pool;
  pthread_t threads[16];
  unsigned jobs, started = 0;

  if (t == NULL || cfg == NULL || ret_runs == NULL || cfg->n_policies == 0 ||
      cfg->n_seeds == 0 || cfg->n_policies > VGP_REPLAY_POLICIES_MAX ||
      cfg->n_seeds > VGP_REPLAY_SEEDS_MAX) {
    snprintf(err, err_len, "bad replay configuration");
    return -EINVAL;
  }
  memset(&pool, 0, sizeof(pool));
  pool.t = t;
  pool.cfg = cfg;
  pool.total = cfg->n_policies * cfg->n_seeds;
  pool.err = err;
  pool.err_len = err_len;
  pool.runs = vgp__calloc(pool.total, sizeof(*pool.runs));
  if (pool.runs == NULL) {
    snprintf(err, err_len, "out of memory");
    return -ENOMEM;
  }
  pthread_mutex_init(&pool.lock, NULL);
  jobs = cfg->jobs == 0 ? 1 : cfg->jobs;
  if (jobs > 16)
    jobs = 16;
  if (jobs > pool.total)
    jobs = pool.total;
  if (jobs == 1) {
    vgp__pool_worker(&pool);
  } else {
    for (unsigned i = 0; i < jobs; i++) {
      if (pthread_create(&threads[i], NULL, vgp__pool_worker, &pool) != 0)
        break;
      started++;
    }
    if (started == 0)
      vgp__pool_worker(&pool);
    for (unsigned i = 0; i < started; i++)
      pthread_join(threads[i], NULL);
  }
  pthread_mutex_destroy(&pool.lock);
  if (pool.error != 0) {
    vgp_replay_runs_free(&pool.runs, pool.total);
    return pool.error;
  }
  *ret_runs = pool.runs;
  return 0;
}

void vgp_replay_runs_free(struct vgp_replay_run **runs, size_t n) {
  if (runs == NULL || *runs == NULL)
    return;
  for (size_t i = 0; i < n; i++)
    vgp_replay_run_clear(&(*runs)[i]);
  vgp__free(*runs);
  *runs = NULL;
}
