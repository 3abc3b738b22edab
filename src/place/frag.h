/*
 * frag.h - workload distributions and the fragmentation measure, shared by
 * workload.c (the measure), pol_frag.c (the fgd and frag scorers) and the
 * public functions in place.h.
 */
#ifndef VGP_PLACE_FRAG_H
#define VGP_PLACE_FRAG_H

#include "place-internal.h"

/* A request shape, counted in a distribution. CPU-only requests (and
 * compute-less shares) have num = core = mask = 0. */
struct vgp__shape {
  uint64_t cpu, mem, mask;
  uint32_t num, core;
  uint64_t count;
};

/* One typical shape with its probability. */
struct vgp__typ {
  uint64_t cpu, mem, mask;
  uint32_t num, core;
  double p;
};

/* A typical GPU shape as one model sees it (workload.c compiles one list
 * per model, largest compute first). */
struct vgp__mtyp {
  uint64_t cpu, mem;
  uint32_t core, num;
  double p;
  int whole;              /* counts no partial gap (whole_ignores_gaps) */
};

struct vgp_place_workload {
  double coverage;
  int mem_aware;          /* shapes keep host memory */
  struct vgp__shape *tab; /* open addressing; count 0 = empty */
  uint32_t cap, used;
  uint64_t total, dropped;
  struct vgp__typ *typ;
  uint32_t n_typ, cap_typ;
  uint64_t built_at;      /* total when the typical part was built */
  uint32_t epoch;         /* bumped by every build */
  int whole_ignores_gaps; /* whole-device shapes do not count partial gaps */
  /* Per model m: the typical GPU shapes that allow m, as entries
   * mtyp[moff[m] .. moff[m + 1]). */
  struct vgp__mtyp *mtyp;
  uint32_t cap_mtyp;
  uint32_t moff[VGP_PLACE_MAX_MODELS + 1];
};

/* A node's state as the fragmentation measure sees it. */
struct vgp__state {
  uint64_t cpu, mem;
  uint32_t node;
  uint16_t model;
  uint16_t n;
  uint32_t core[VGP_PLACE_MAX_DEVICES];
};

/* A packing plan for shares (plan.c). */
struct vgp__plan {
  uint64_t *bits;         /* (used, share) -> planned */
  uint32_t bins;          /* devices in the plan */
};

int vgp__plan_build(struct vgp__plan *p, const uint32_t *sizes,
                    const uint64_t *counts, uint32_t n);
int vgp__plan_good(const struct vgp__plan *p, uint32_t used, uint32_t size);
void vgp__plan_clear(struct vgp__plan *p);

int vgp__workload_new(double coverage, int mem_aware,
                      struct vgp_place_workload **ret);
void vgp__shape_of(const struct vgp__creq *cr, int mem_aware,
                   struct vgp__shape *s);
int vgp__workload_add_shape(struct vgp_place_workload *w,
                            const struct vgp__shape *shape, uint64_t weight);
/* Rebuilds the typical part when it is due (or whenever it changed, with
 * force). */
int vgp__workload_refresh(struct vgp_place_workload *w, int force);
int vgp__workload_build(struct vgp_place_workload *w);

void vgp__state_of(const struct vgp_place_cluster *c, uint32_t node,
                   struct vgp__state *s);
double vgp__frag(const struct vgp_place_cluster *c,
                 const struct vgp_place_workload *w,
                 const struct vgp__state *s);
double vgp__frag_mixed(const struct vgp_place_cluster *c,
                       const struct vgp_place_workload *w,
                       const struct vgp__state *s);

#endif
