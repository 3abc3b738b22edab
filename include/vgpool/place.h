/*
 * place.h - the placement engine: a cluster model, requests, and policies.
 *
 * The engine decides where a fractional-GPU workload goes. It is a pure
 * library: it does no I/O, reads no clock and keeps no global state, so the
 * Kubernetes extender, `vgpool replay` and the tests all drive the very same
 * code with the very same results. Everything it knows comes through this
 * header:
 *
 *   cluster   nodes (CPU milli, memory, labels) and their devices (model,
 *             memory, compute, NUMA node, pairwise link scores, health,
 *             current allocations, optionally measured load). Allocations
 *             are committed and released one at a time, and every derived
 *             summary is updated incrementally.
 *   request   what one workload asks for, with HAMi's semantics: a number of
 *             devices, device memory in bytes or percent, a compute share,
 *             model and UUID include/exclude lists, NUMA binding, exclusive
 *             use, a priority, plus host CPU and memory and a node selector.
 *   policy    a named, composable scorer: "bestfit", "fgd",
 *             "node-binpack+device-spread", "0.5*frag+bestfit" and so on.
 *             Each term may choose the devices on a node and scores the
 *             node; the engine filters every node (with a reason for each
 *             rejection), scores the feasible ones, and returns the best.
 *
 * Units: CPU in milli-cores, memory in bytes, compute in milli of one device
 * (1000 = the whole device). Numbers are unsigned; a request of 0 asks for
 * nothing of that resource.
 *
 * All functions return 0 or a negative errno value. ret_ outputs are written
 * only on success. Destructors take the address of the caller's pointer and
 * clear it. The engine is not thread-safe: one cluster and its policies are
 * used by one thread at a time (the scheduler serializes decisions anyway).
 */
#ifndef VGPOOL_PLACE_H
#define VGPOOL_PLACE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Hard caps. They bound every buffer the engine owns; a cluster or request
 * beyond them is refused with -E2BIG rather than truncated. */
#define VGP_PLACE_MAX_NODES 100000u
#define VGP_PLACE_MAX_DEVICES 16u        /* devices per node */
#define VGP_PLACE_MAX_MODELS 64u         /* distinct device models */
#define VGP_PLACE_NAME_MAX 64u           /* names, UUIDs, models, incl. NUL */
#define VGP_PLACE_MAX_LABELS 32u         /* labels per node */
#define VGP_PLACE_LABEL_MAX 128u         /* one "key=value", incl. NUL */
#define VGP_PLACE_LIST_MAX 1024u         /* one include/exclude list */
#define VGP_PLACE_MAX_TERMS 8u           /* terms in one policy */
#define VGP_PLACE_CORE_WHOLE 1000u       /* compute of one whole device */

/* ------------------------------------------------------------------------
 * Random numbers. The engine never draws from a hidden source: whoever
 * needs randomness (the random policy, the replayer's shuffle) owns one of
 * these, seeded explicitly, so a seed always reproduces a run.
 * ------------------------------------------------------------------------ */
struct vgp_place_rng {
  uint64_t s[4]; /* xoshiro256** state */
};

void vgp_place_rng_seed(struct vgp_place_rng *rng, uint64_t seed);
uint64_t vgp_place_rng_next(struct vgp_place_rng *rng);
/* Uniform in [0, bound) without modulo bias; 0 when bound is 0. */
uint64_t vgp_place_rng_below(struct vgp_place_rng *rng, uint64_t bound);
/* Uniform in [0, 1). */
double vgp_place_rng_unit(struct vgp_place_rng *rng);

/* ------------------------------------------------------------------------
 * Cluster model.
 * ------------------------------------------------------------------------ */
struct vgp_place_cluster;

struct vgp_place_node_spec {
  const char *name;            /* unique, 1..VGP_PLACE_NAME_MAX-1 bytes */
  uint64_t cpu_milli;          /* allocatable CPU */
  uint64_t mem_bytes;          /* allocatable host memory */
  const char *const *labels;   /* "key=value" strings, may be NULL */
  unsigned n_labels;
};

struct vgp_place_device_spec {
  const char *uuid;            /* unique within the node, may be NULL */
  const char *model;           /* e.g. "NVIDIA-A100-SXM4-80GB", "T4" */
  uint64_t mem_bytes;          /* device memory; 0 = not tracked */
  uint32_t core_milli;         /* compute capacity; 0 means 1000 */
  uint32_t max_tenants;        /* sharing slots (HAMi's split count); 0 = no limit */
  int numa;                    /* NUMA node, -1 when unknown */
  int healthy;                 /* non-zero when usable */
};

/* Read-only views, for front ends and for scorers written outside the
 * library. */
struct vgp_place_node_view {
  const char *name;
  uint64_t cpu_total, cpu_used;
  uint64_t mem_total, mem_used;
  unsigned n_devices;
  unsigned n_labels;
  uint32_t tie_rank;
  uint32_t version;            /* bumped on every change to the node */
};

struct vgp_place_device_view {
  const char *uuid;
  const char *model;
  uint64_t mem_total, mem_used;
  uint32_t core_total, core_used;
  uint32_t tenants, max_tenants;
  int numa;
  int healthy;
  int exclusive;               /* held by an exclusive allocation */
  int load_known;              /* the measured fields below are valid */
  uint32_t util_percent;       /* measured utilization */
  uint64_t mem_measured;       /* measured memory in use */
};

int vgp_place_cluster_new(struct vgp_place_cluster **ret_cluster);
void vgp_place_cluster_free(struct vgp_place_cluster **cluster);

/* Adds a node with no devices. -EEXIST for a duplicate name, -EINVAL for a
 * bad name or label, -E2BIG past a cap. */
int vgp_place_node_add(struct vgp_place_cluster *c,
                       const struct vgp_place_node_spec *spec,
                       uint32_t *ret_node);

/* Adds a device to a node; its index is the order of addition. */
int vgp_place_device_add(struct vgp_place_cluster *c, uint32_t node,
                         const struct vgp_place_device_spec *spec,
                         uint32_t *ret_device);

/* Sets the symmetric link score between two devices of a node (HAMi's
 * scale: 10 cross-CPU ... 60 same board, +100 per NVLink). Higher is
 * better connected. Unset pairs score 0. */
int vgp_place_link_set(struct vgp_place_cluster *c, uint32_t node,
                       uint32_t dev_a, uint32_t dev_b, uint32_t score);

int vgp_place_device_set_health(struct vgp_place_cluster *c, uint32_t node,
                                uint32_t dev, int healthy);

/* Records measured load (from the node agent). Policies may use it; the
 * accounting of reservations never does. */
int vgp_place_device_set_load(struct vgp_place_cluster *c, uint32_t node,
                              uint32_t dev, uint32_t util_percent,
                              uint64_t mem_measured);

/* Ties between equally scored nodes go to the lowest rank. The default rank
 * is the node's index; a replay sets a per-seed random order here. */
int vgp_place_node_set_tie_rank(struct vgp_place_cluster *c, uint32_t node,
                                uint32_t rank);

int vgp_place_node_find(const struct vgp_place_cluster *c, const char *name,
                        uint32_t *ret_node);
uint32_t vgp_place_node_count(const struct vgp_place_cluster *c);
int vgp_place_node_view(const struct vgp_place_cluster *c, uint32_t node,
                        struct vgp_place_node_view *ret_view);
int vgp_place_device_view(const struct vgp_place_cluster *c, uint32_t node,
                          uint32_t dev, struct vgp_place_device_view *ret_view);
/* Returns label i of a node ("key=value") or NULL. */
const char *vgp_place_node_label(const struct vgp_place_cluster *c,
                                 uint32_t node, unsigned i);

/* Totals over the whole cluster, kept incrementally. */
struct vgp_place_totals {
  uint32_t nodes, devices;
  uint64_t cpu_total, cpu_used;
  uint64_t mem_total, mem_used;
  uint64_t core_total, core_used;   /* compute milli over all devices */
  uint32_t allocations;
};
void vgp_place_cluster_totals(const struct vgp_place_cluster *c,
                              struct vgp_place_totals *ret_totals);

/* ------------------------------------------------------------------------
 * Requests.
 * ------------------------------------------------------------------------ */
enum vgp_place_match {
  VGP_PLACE_MATCH_SUBSTRING = 0, /* HAMi: case-insensitive substring */
  VGP_PLACE_MATCH_EXACT = 1,     /* the openb trace: exact model names */
};

struct vgp_place_request {
  uint64_t cpu_milli;          /* host CPU */
  uint64_t mem_bytes;          /* host memory */
  uint32_t num_devices;        /* 0 = a CPU-only workload */
  uint32_t core_milli;         /* compute per device, 0..1000 */
  uint64_t dev_mem_bytes;      /* device memory per device ... */
  uint32_t dev_mem_percent;    /* ... or this share of each device, 0..100 */
  const char *type_include;    /* models, separated by '|' or ','; NULL = any */
  const char *type_exclude;
  enum vgp_place_match type_match;
  const char *uuid_include;    /* device UUIDs, separated by '|' or ',' */
  const char *uuid_exclude;
  const char *node_selector;   /* "key=value,key2=value2": all must match */
  int numa_bind;               /* all devices on one NUMA node */
  int exclusive;               /* devices otherwise idle, and kept so */
  int priority;                /* carried with the allocation (lower wins) */
};

/* Why a node was rejected. The first check that fails names the reason; for
 * device checks, the reason that rejected most devices. */
enum vgp_place_reason {
  VGP_PLACE_FITS = 0,
  VGP_PLACE_R_CPU,             /* not enough free host CPU */
  VGP_PLACE_R_MEMORY,          /* not enough free host memory */
  VGP_PLACE_R_SELECTOR,        /* node labels do not match */
  VGP_PLACE_R_DEVICE_COUNT,    /* fewer devices than requested, even empty */
  VGP_PLACE_R_TYPE,            /* device model not allowed */
  VGP_PLACE_R_UUID,            /* device UUID not allowed */
  VGP_PLACE_R_UNHEALTHY,       /* device unhealthy */
  VGP_PLACE_R_EXCLUSIVE,       /* device held exclusively, or not idle */
  VGP_PLACE_R_TENANTS,         /* no sharing slot left */
  VGP_PLACE_R_COMPUTE,         /* not enough free compute */
  VGP_PLACE_R_DEV_MEMORY,      /* not enough free device memory */
  VGP_PLACE_R_NUMA,            /* no NUMA node has enough fitting devices */
  VGP_PLACE_R_POLICY,          /* a policy term refused the node */
  VGP_PLACE_REASON__COUNT
};

const char *vgp_place_reason_name(enum vgp_place_reason r);

/* Checks a request's own consistency (core_milli <= 1000, percent <= 100,
 * device count within the cap, list lengths) before it meets any cluster. */
int vgp_place_request_validate(const struct vgp_place_request *req);

/* ------------------------------------------------------------------------
 * Assignments and allocations.
 * ------------------------------------------------------------------------ */
struct vgp_place_assignment {
  uint32_t node;
  uint32_t n_devices;
  uint8_t devices[VGP_PLACE_MAX_DEVICES];      /* device indices on node */
  uint64_t dev_mem_bytes[VGP_PLACE_MAX_DEVICES]; /* charged per device */
  uint32_t core_milli;                         /* charged per device */
};

/* Checks that an assignment is feasible for the request right now (the
 * same rules as the filter, for exactly these devices). Returns 0 or
 * -ENOSPC, with the reason in *ret_reason when not NULL. */
int vgp_place_check(const struct vgp_place_cluster *c,
                    const struct vgp_place_request *req,
                    const struct vgp_place_assignment *a,
                    enum vgp_place_reason *ret_reason);

/* Commits an assignment (checked as above) and returns an allocation id
 * for vgp_place_release(). */
int vgp_place_commit(struct vgp_place_cluster *c,
                     const struct vgp_place_request *req,
                     const struct vgp_place_assignment *a,
                     uint32_t *ret_alloc);

/* Returns an allocation's resources. -ENOENT for an unknown id. */
int vgp_place_release(struct vgp_place_cluster *c, uint32_t alloc);

/* ------------------------------------------------------------------------
 * Policies.
 * ------------------------------------------------------------------------ */
struct vgp_place_policy;

/* What a scorer sees while one request is being placed. Scorers written
 * outside the library read the cluster through the view functions. */
struct vgp_place_ctx {
  const struct vgp_place_cluster *cluster;
  const struct vgp_place_request *req;
  uint64_t pod_index;          /* how many requests were placed before */
};

/* Flags of a scorer. */
#define VGP_PLACE_SCORER_PICKS 0x1u     /* it chooses devices itself */
#define VGP_PLACE_SCORER_NORMALIZE 0x2u /* min-max normalize across nodes */

/* A scorer: one term of a policy. The built-ins are listed by
 * vgp_place_scorer_find(); anyone may write more and add them with
 * vgp_place_policy_add_term().
 *
 * score() is called once per feasible node. When pick is non-zero the term
 * must choose devices among cand_mask (bit i = device i fits) and fill a;
 * otherwise a already holds the devices another term chose. It stores the
 * node's score (higher is better) and returns 0, or -ENOSPC to refuse the
 * node. The other callbacks are optional. */
struct vgp_place_scorer_ops {
  const char *name;
  const char *summary;
  unsigned flags;
  int (*create)(void **ret_state, const char *args, uint64_t seed);
  void (*destroy)(void *state);
  /* A request arrived (before it is placed): workload statistics. */
  void (*observe)(void *state, const struct vgp_place_ctx *ctx);
  /* Called once per request before any node is scored. */
  int (*begin)(void *state, const struct vgp_place_ctx *ctx);
  int (*score)(void *state, const struct vgp_place_ctx *ctx, uint32_t node,
               uint32_t cand_mask, int pick, struct vgp_place_assignment *a,
               double *ret_score);
};

/* Looks up a built-in scorer by name, or returns NULL. */
const struct vgp_place_scorer_ops *vgp_place_scorer_find(const char *name);
/* Iterates the built-ins: returns the i-th or NULL past the end. */
const struct vgp_place_scorer_ops *vgp_place_scorer_get(unsigned i);

/* Builds a policy from a spec such as "fgd", "bestfit",
 * "node-binpack+device-spread" or "0.7*frag+0.3*bestfit". A term may carry
 * arguments in brackets: "frag[alpha=0.5]". Named aliases ("hami") expand
 * to their spec. The seed feeds terms that draw random numbers. On -EINVAL
 * a message naming the offending part is written to err (when not NULL). */
int vgp_place_policy_new(const char *spec, uint64_t seed,
                         struct vgp_place_policy **ret_policy, char *err,
                         size_t err_len);

/* Creates an empty policy; terms are then added one by one. */
int vgp_place_policy_new_empty(const char *name,
                               struct vgp_place_policy **ret_policy);
int vgp_place_policy_add_term(struct vgp_place_policy *p,
                              const struct vgp_place_scorer_ops *ops,
                              double weight, const char *args, uint64_t seed);
void vgp_place_policy_free(struct vgp_place_policy **policy);
const char *vgp_place_policy_name(const struct vgp_place_policy *p);

/* Tells the policy's terms that a request arrived, before it is placed.
 * Policies that learn the workload (fgd, frag) use only what they are told
 * here: an online scheduler's knowledge. */
void vgp_place_policy_observe(struct vgp_place_policy *p,
                              const struct vgp_place_cluster *c,
                              const struct vgp_place_request *req);

struct vgp_place_result {
  int found;                               /* a node was chosen */
  struct vgp_place_assignment assignment;  /* when found */
  double score;                            /* its combined score */
  uint32_t feasible;                       /* nodes that passed the filter */
  uint32_t rejected[VGP_PLACE_REASON__COUNT]; /* nodes rejected, by reason */
  /* When no node fits: whether no node could ever fit (even empty), and
   * the reason that rejected most nodes in that case. */
  int never_fits;
  enum vgp_place_reason never_reason;
};

/* Filters every node, scores the feasible ones under the policy and picks
 * the best (ties: lowest tie rank). Nothing is committed. node_reasons, when
 * not NULL, receives one enum vgp_place_reason per node. Returns 0 whether
 * or not a node was found (see result->found); -EINVAL for a bad request,
 * -ENOMEM. */
int vgp_place_schedule(struct vgp_place_policy *p,
                       const struct vgp_place_cluster *c,
                       const struct vgp_place_request *req,
                       uint8_t *node_reasons, size_t n_node_reasons,
                       struct vgp_place_result *ret_result);

/* Filters one node: VGP_PLACE_FITS, or why not. The fitting devices are
 * returned in *ret_mask when not NULL. */
enum vgp_place_reason vgp_place_filter_node(const struct vgp_place_cluster *c,
                                            const struct vgp_place_request *req,
                                            uint32_t node, uint32_t *ret_mask);

/* ------------------------------------------------------------------------
 * Workload distributions and fragmentation (the FGD measure).
 *
 * A workload distribution counts requests by shape (CPU, memory, device
 * count, compute per device, allowed models). Its "typical" part is the
 * most frequent shapes covering a share of all requests (FGD uses 95%).
 * The fragmentation of a node is the GPU compute (milli) that a request
 * drawn from the typical part could not use, in expectation; of a cluster,
 * the sum over nodes. Reports use this; the fgd and frag policies keep
 * their own distribution, fed only through vgp_place_policy_observe().
 * ------------------------------------------------------------------------ */
struct vgp_place_workload;

/* coverage in (0, 1]: the share of requests the typical shapes cover. */
int vgp_place_workload_new(double coverage,
                           struct vgp_place_workload **ret_workload);
void vgp_place_workload_free(struct vgp_place_workload **workload);
/* Counts one request (its models are resolved against c). */
int vgp_place_workload_add(struct vgp_place_workload *w,
                           const struct vgp_place_cluster *c,
                           const struct vgp_place_request *req);
uint64_t vgp_place_workload_count(const struct vgp_place_workload *w);
/* Number of distinct shapes in the typical part. */
unsigned vgp_place_workload_typical(struct vgp_place_workload *w);

/* Fragmentation of one node, or of the whole cluster, in milli. *ret_idle
 * (when not NULL) receives the idle compute the figure is a part of. */
double vgp_place_node_fragmentation(const struct vgp_place_cluster *c,
                                    struct vgp_place_workload *w,
                                    uint32_t node);
double vgp_place_fragmentation(const struct vgp_place_cluster *c,
                               struct vgp_place_workload *w,
                               double *ret_idle);

#ifdef __cplusplus
}
#endif

#endif
