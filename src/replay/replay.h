/*
 * replay.h - replaying a cluster trace through placement policies.
 *
 * `vgpool replay`, the placement tests and the benchmarks share this
 * library. It reads the openb format of Alibaba's GPU-sharing trace (a node
 * list and a pod list, see ../shared/traces/README.md), prepares the
 * arrival order exactly as the FGD paper's simulator does (shuffle, top-up
 * or trim to a share of cluster capacity, per seed), places every pod one
 * at a time through a policy of the placement engine, and records the GPU
 * allocation ratio and fragmentation against the arrived workload. Writers
 * turn the results into CSV, JSON and an SVG plot.
 *
 * Unlike the engine, this library does I/O and reads the clock (for the
 * run times it reports). Functions return 0 or a negative errno value;
 * parse errors also fill a caller's message buffer with "file:line: what".
 */
#ifndef VGP_REPLAY_H
#define VGP_REPLAY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "vgpool/place.h"

#define VGP_REPLAY_LINE_MAX 4096u     /* one CSV line */
#define VGP_REPLAY_FIELDS_MAX 64u     /* fields in one CSV line */
#define VGP_REPLAY_PODS_MAX 2000000u  /* pods in one trace */
#define VGP_REPLAY_SPEC_MAX 256u      /* one gpu_spec */
#define VGP_REPLAY_POLICIES_MAX 16u
#define VGP_REPLAY_SEEDS_MAX 64u
#define VGP_REPLAY_BINS 151u          /* arrived 0..150 % */

struct vgp_replay_node {
  char name[VGP_PLACE_NAME_MAX];
  uint64_t cpu_milli;
  uint64_t mem_mib;
  uint32_t gpus;
  char model[VGP_PLACE_NAME_MAX];
};

struct vgp_replay_pod {
  char name[VGP_PLACE_NAME_MAX];
  uint64_t cpu_milli;
  uint64_t mem_mib;
  uint32_t num_gpu;
  uint32_t gpu_milli;              /* clipped to 0..1000 */
  char spec[VGP_REPLAY_SPEC_MAX];  /* allowed models, '|'-separated; "" = any */
  uint32_t line;                   /* where it came from */
};

struct vgp_replay_trace {
  struct vgp_replay_node *nodes;
  uint32_t n_nodes;
  struct vgp_replay_pod *pods;
  uint32_t n_pods;
  uint64_t gpu_milli_total;        /* capacity: GPUs x 1000 */
};

/* Reads a node list (columns sn, cpu_milli, memory_mib, gpu, model; others
 * ignored). Errors name the file and line in err. */
int vgp_replay_load_nodes(struct vgp_replay_trace *t, const char *path,
                          char *err, size_t err_len);
/* Reads a pod list (name, cpu_milli, memory_mib, num_gpu, gpu_milli and
 * optionally gpu_spec; others ignored). */
int vgp_replay_load_pods(struct vgp_replay_trace *t, const char *path,
                         char *err, size_t err_len);
/* The same from memory (the tests feed hand-made text); name is used in
 * messages. */
int vgp_replay_parse_nodes(struct vgp_replay_trace *t, const char *name,
                           const char *text, size_t len, char *err,
                           size_t err_len);
int vgp_replay_parse_pods(struct vgp_replay_trace *t, const char *name,
                          const char *text, size_t len, char *err,
                          size_t err_len);
void vgp_replay_trace_clear(struct vgp_replay_trace *t);

/* The request the engine sees for a pod. */
void vgp_replay_pod_request(const struct vgp_replay_pod *pod,
                            struct vgp_place_request *ret_req);

/* Builds the engine's cluster from the node list; tie ranks follow a
 * per-seed random order, as the simulator's node names do. */
int vgp_replay_build_cluster(const struct vgp_replay_trace *t, uint64_t seed,
                             struct vgp_place_cluster **ret_cluster);

/* The arrival order for one seed: indices into t->pods. */
struct vgp_replay_order {
  uint32_t *idx;
  uint32_t n;
  uint64_t gpu_milli;              /* total requested by the order */
};

/* Shuffles the pods (when shuffle), then tops the list up with pods drawn
 * with replacement until the next draw would pass tune x capacity, or trims
 * random pods while above it (tune <= 0 leaves the list as it is). */
int vgp_replay_order_make(const struct vgp_replay_trace *t, uint64_t seed,
                          double tune, int shuffle,
                          struct vgp_replay_order *ret_order);
void vgp_replay_order_clear(struct vgp_replay_order *o);

/* One replay of one policy under one seed. */
struct vgp_replay_run {
  char policy[128];
  uint64_t seed;
  uint32_t n_pods;
  /* Per pod, in arrival order. */
  uint32_t *pod;                   /* index into the trace's pods */
  int32_t *node;                   /* -1: not placed */
  uint16_t *devmask;               /* devices used */
  uint8_t *reason;                 /* enum vgp_place_reason when not placed */
  uint8_t *never;                  /* could never fit, even on an empty node */
  uint64_t *used;                  /* GPU milli allocated after the pod */
  uint64_t *arrived;               /* GPU milli arrived including the pod */
  double *frag;                    /* cluster fragmentation after, milli */
  /* Summaries. */
  uint64_t capacity;               /* GPU milli of the cluster */
  double alloc_at_100;             /* percent */
  double frag_at_100;              /* percent of idle GPU milli */
  double alloc_final;
  uint32_t failed, failed_never, failed_by_100;
  uint32_t failed_reason[VGP_PLACE_REASON__COUNT];
  double seconds;                  /* wall time of the replay */
  double sched_ns_p50, sched_ns_p99, sched_ns_max; /* per-pod schedule() */
};

/* Figures read the way the paper's scripts read them. The allocation ratio
 * at an arrived percent x is the mean over pods whose arrived share rounds
 * to x (the window [x-0.5, x+0.5)), or, when none does, over [x-1, x+1].
 * Returns a negative number when no pod is in either window. */
double vgp_replay_alloc_at(const struct vgp_replay_run *r, double pct);
double vgp_replay_frag_at(const struct vgp_replay_run *r, double pct);

typedef void (*vgp_replay_progress_fn)(void *userdata, const char *policy,
                                       uint64_t seed, uint32_t done,
                                       uint32_t total);

struct vgp_replay_config {
  const char *const *policies;     /* policy specs */
  unsigned n_policies;
  const uint64_t *seeds;
  unsigned n_seeds;
  double tune;                     /* 1.3 as in the paper; 0 = no tuning */
  int shuffle;                     /* 1 as in the paper */
  unsigned jobs;                   /* worker threads, >= 1 */
  int time_schedule;               /* measure each schedule() call */
  vgp_replay_progress_fn progress; /* may be NULL; called under a lock */
  void *progress_data;
  uint32_t progress_every;         /* pods between calls, 0 = 1000 */
};

/* Runs every policy under every seed. runs receives n_policies x n_seeds
 * results, policy-major. Returns 0, or the first error (with a message). */
int vgp_replay_run_all(const struct vgp_replay_trace *t,
                       const struct vgp_replay_config *cfg,
                       struct vgp_replay_run **ret_runs, char *err,
                       size_t err_len);
void vgp_replay_runs_free(struct vgp_replay_run **runs, size_t n);

/* Replays one policy under one seed into *run (which it initializes). */
int vgp_replay_run_one(const struct vgp_replay_trace *t, const char *policy,
                       uint64_t seed, double tune, int shuffle,
                       int time_schedule, vgp_replay_progress_fn progress,
                       void *progress_data, uint32_t progress_every,
                       struct vgp_replay_run *run,
                       char *err, size_t err_len);
void vgp_replay_run_clear(struct vgp_replay_run *run);

/* Writers. runs is n_policies x n_seeds, policy-major. */
int vgp_replay_write_curve_csv(FILE *f, const struct vgp_replay_run *runs,
                               size_t n);
int vgp_replay_write_json(FILE *f, const char *trace_name,
                          const struct vgp_replay_run *runs, unsigned n_policies,
                          unsigned n_seeds);
int vgp_replay_write_svg(FILE *f, const char *title,
                         const struct vgp_replay_run *runs, unsigned n_policies,
                         unsigned n_seeds);
/* One row per pod: policy, seed, index, pod, node, gpus ("0-3"), milli per
 * GPU, reason (empty when placed). */
int vgp_replay_write_placements(FILE *f, const struct vgp_replay_trace *t,
                                const struct vgp_replay_run *run, int header);

#endif
