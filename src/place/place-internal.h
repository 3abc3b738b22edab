/*
 * place-internal.h - the placement engine's data structures, shared by the
 * files of src/place and by nothing else.
 *
 * A cluster keeps two arrays indexed by node: the full node records
 * (names, labels, links, per-device state) and a compact "hot" summary
 * (free CPU and memory, common model, free compute per device, counts of
 * idle devices). The filter runs over the hot array only for the common
 * request shapes, so one pass over a 1,213-node cluster stays inside a few
 * cache-friendly kilobytes; every commit and release refreshes the summary
 * of the one node it touched.
 *
 * A request is "compiled" against the cluster once per placement: model
 * lists become a bitmask over the cluster's model table, UUID lists and the
 * node selector become token arrays. Scorers receive the compiled form
 * through the context.
 */
#ifndef VGP_PLACE_INTERNAL_H
#define VGP_PLACE_INTERNAL_H

#include <stdint.h>

#include "hashmap.h"
#include "vgpool/place.h"

#define VGP__MODEL_NONE 0xffffu  /* a node without devices */
#define VGP__MODEL_MIXED 0xfffeu /* a node whose devices differ in model */
#define VGP__LIST_TOKENS 64u     /* tokens in one include/exclude list */

struct vgp__dev {
  char uuid[VGP_PLACE_NAME_MAX];
  uint64_t mem_total, mem_used, mem_measured;
  uint32_t core_total, core_used;
  uint32_t tenants, max_tenants; /* max_tenants 0 = no limit */
  uint32_t util;
  uint16_t model;
  int16_t numa;
  uint8_t healthy;
  uint8_t exclusive;
  uint8_t load_known;
};

struct vgp__node {
  char name[VGP_PLACE_NAME_MAX];
  uint64_t cpu_total, cpu_used, mem_total, mem_used;
  uint32_t version;
  uint32_t tie_rank;
  uint32_t n_dev;
  uint32_t n_labels;
  char *labels;            /* n_labels slots of VGP_PLACE_LABEL_MAX bytes */
  uint16_t *links;         /* MAX_DEVICES^2 scores, NULL until one is set */
  struct vgp__dev dev[VGP_PLACE_MAX_DEVICES];
};

/* The summary the filter and the fragmentation scorers read. core_free of
 * a device that cannot take any new tenant (unhealthy, held exclusively,
 * out of slots) is 0. */
struct vgp__hot {
  uint64_t cpu_free;
  uint64_t mem_free;
  uint16_t model;          /* common model id, or VGP__MODEL_NONE/MIXED */
  uint8_t n_dev;
  uint8_t n_idle;          /* devices with all compute free and no tenant */
  uint16_t max_free;       /* largest core_free */
  uint16_t core_total;     /* common compute capacity, 0 if they differ */
  uint16_t core_free[VGP_PLACE_MAX_DEVICES];
};

struct vgp__alloc {
  uint32_t node;           /* UINT32_MAX when the slot is free */
  uint32_t next_free;
  uint64_t cpu, mem;
  uint32_t core;
  uint32_t n_dev;
  uint8_t exclusive;
  int priority;
  uint8_t devices[VGP_PLACE_MAX_DEVICES];
  uint64_t dev_mem[VGP_PLACE_MAX_DEVICES];
};

struct vgp_place_cluster {
  struct vgp__node *nodes;
  struct vgp__hot *hot;
  uint32_t n_nodes, cap_nodes;
  uint32_t n_devices;
  uint32_t max_dev;        /* most devices on one node */
  struct vgp__hmap by_name; /* name hash -> node index */
  int name_collision;      /* two names share a hash: find() scans */
  char models[VGP_PLACE_MAX_MODELS][VGP_PLACE_NAME_MAX];
  uint32_t n_models;
  struct vgp__alloc *allocs;
  uint32_t n_allocs, cap_allocs, free_alloc, live_allocs;
  uint64_t core_total, core_used, cpu_total, cpu_used, mem_total, mem_used;
};

struct vgp__token {
  const char *s;
  uint32_t len;
};

/* A request resolved against one cluster. */
struct vgp__creq {
  const struct vgp_place_request *req;
  uint64_t model_mask;     /* bit m: model m allowed */
  int fast;                /* only CPU, memory, model and compute matter */
  uint32_t core;           /* compute per device */
  struct vgp__token uuid_inc[VGP__LIST_TOKENS], uuid_exc[VGP__LIST_TOKENS];
  uint32_t n_uuid_inc, n_uuid_exc;
  struct vgp__token sel[VGP__LIST_TOKENS];
  uint32_t n_sel;
};

/* The compiled request rides along with the public context. */
struct vgp__ctx {
  struct vgp_place_ctx pub;
  const struct vgp__creq *creq;
};

/* cluster.c */
void vgp__hot_refresh(struct vgp_place_cluster *c, uint32_t node);
uint32_t vgp__model_id(const struct vgp_place_cluster *c, const char *model);

/* filter.c */
int vgp__creq_compile(const struct vgp_place_cluster *c,
                      const struct vgp_place_request *req,
                      struct vgp__creq *ret);
enum vgp_place_reason vgp__filter(const struct vgp_place_cluster *c,
                                  const struct vgp__creq *cr, uint32_t node,
                                  uint32_t *ret_mask);
/* The filter as the scheduler uses it: with NUMA binding, the mask is
 * narrowed to the one NUMA node the request should use. */
enum vgp_place_reason vgp__filter_sched(const struct vgp_place_cluster *c,
                                        const struct vgp__creq *cr,
                                        uint32_t node, uint32_t *ret_mask);
/* Why one device cannot take the request now (VGP_PLACE_FITS if it can). */
enum vgp_place_reason vgp__dev_reason(const struct vgp__creq *cr,
                                      const struct vgp__dev *d);
enum vgp_place_reason vgp__never(const struct vgp_place_cluster *c,
                                 const struct vgp__creq *cr);
uint64_t vgp__dev_mem_need(const struct vgp__creq *cr,
                           const struct vgp__dev *d);
int vgp__list_parse(const char *text, struct vgp__token *tokens,
                    uint32_t *ret_n);

/* Returns the compiled request behind a context, or NULL when the context
 * did not come from the engine. */
static inline const struct vgp__creq *vgp__ctx_creq(
    const struct vgp_place_ctx *ctx) {
  return ((const struct vgp__ctx *)ctx)->creq;
}

/* Scorers (one file per family). */
extern const struct vgp_place_scorer_ops vgp__scorer_random;
extern const struct vgp_place_scorer_ops vgp__scorer_bestfit;
extern const struct vgp_place_scorer_ops vgp__scorer_node_binpack;
extern const struct vgp_place_scorer_ops vgp__scorer_node_spread;
extern const struct vgp_place_scorer_ops vgp__scorer_device_binpack;
extern const struct vgp_place_scorer_ops vgp__scorer_device_spread;
extern const struct vgp_place_scorer_ops vgp__scorer_least_loaded;
extern const struct vgp_place_scorer_ops vgp__scorer_topology;
extern const struct vgp_place_scorer_ops vgp__scorer_fgd;
extern const struct vgp_place_scorer_ops vgp__scorer_frag;

/* Picks the lowest-index devices in mask that are wholly idle, or any
 * fitting ones for a share, the way the openb simulator does: for one
 * device the fitting one with the least free compute (ties: lowest index),
 * for several the lowest indices. Returns 0 or -ENOSPC. */
int vgp__pick_packed(const struct vgp_place_cluster *c,
                     const struct vgp__creq *cr, uint32_t node, uint32_t mask,
                     struct vgp_place_assignment *a);
/* Fills the per-device charges of an assignment whose devices are set. */
void vgp__assignment_charge(const struct vgp_place_cluster *c,
                            const struct vgp__creq *cr,
                            struct vgp_place_assignment *a);

/* Argument parsing for scorers: finds "key=value" in "a=1,b=2". */
int vgp__arg_double(const char *args, const char *key, double *ret);

#endif
