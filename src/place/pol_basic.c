/*
 * pol_basic.c - the simple scorers: random, best-fit, HAMi's node and
 * device binpack/spread, and least-loaded.
 *
 * "random" and "bestfit" are the two baselines of the FGD paper, written
 * to behave as the authors' simulator does so that replays compare with
 * the published figures: random picks a feasible node uniformly and a
 * fitting device uniformly (whole-device requests take the lowest free
 * indices); bestfit scores 1 - [0.5 * CPU left / 128 cores + 0.5 * GPU
 * left / 8 GPUs] after placement, truncated to an integer percent as the
 * simulator's int64 conversion does ("bestfit[exact=1]" keeps the
 * fraction).
 *
 * The HAMi family follows HAMi's formulas (see the review in
 * ../shared/research/hami-review.txt): a node's score is the sum of its
 * used shares of slots, compute and memory, computed before placement;
 * binpack prefers the highest, spread the lowest. The device terms only
 * choose devices on the node and contribute no node score.
 */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "alloc.h"
#include "place-internal.h"

/* ---- random ---- */

static int vgp__random_create(void **ret_state, const char *args, uint64_t seed) {
  struct vgp_place_rng *rng = vgp__malloc(sizeof(*rng));
  if (rng == NULL)
    return -ENOMEM;
  vgp_place_rng_seed(rng, seed);
  *ret_state = rng;
  return 0;
}

static void vgp__random_destroy(void *state) { vgp__free(state); }

static int vgp__random_score(void *state, const struct vgp_place_ctx *ctx,
                             uint32_t node, uint32_t cand_mask, int pick,
                             struct vgp_place_assignment *a, double *ret_score) {
  struct vgp_place_rng *rng = state;
  const struct vgp__creq *cr = vgp__ctx_creq(ctx);

  if (pick) {
    const struct vgp_place_cluster *c = ctx->cluster;
    const struct vgp__node *n = &c->nodes[node];
    if (cr->req->num_devices == 1 && cr->core < n->dev[0].core_total) {
      /* A share: one fitting device, uniformly (reservoir sampling). */
      uint32_t seen = 0;
      int chosen = -1;
      for (uint32_t i = 0; i < n->n_dev; i++)
        if ((cand_mask & (1u << i)) != 0 &&
            vgp_place_rng_below(rng, ++seen) == 0)
          chosen = (int)i;
      if (chosen < 0)
        return -ENOSPC;
      a->n_devices = 1;
      a->devices[0] = (uint8_t)chosen;
    } else {
      int r = vgp__pick_packed(c, cr, node, cand_mask, a);
      if (r < 0)
        return r;
    }
  }
  /* A uniform score makes the argmax a uniform choice among the feasible
   * nodes, which is what the simulator's random pre-score does. */
  *ret_score = vgp_place_rng_unit(rng);
  return 0;
}

const struct vgp_place_scorer_ops vgp__scorer_random = {
    .name = "random",
    .summary = "uniform among feasible nodes and fitting devices (FGD paper baseline)",
    .flags = VGP_PLACE_SCORER_PICKS | VGP_PLACE_SCORER_NORMALIZE,
    .create = vgp__random_create,
    .destroy = vgp__random_destroy,
    .score = vgp__random_score,
};

/* ---- bestfit ---- */

struct vgp__bestfit {
  int exact;
};

static int vgp__bestfit_create(void **ret_state, const char *args, uint64_t seed) {
  struct vgp__bestfit *s = vgp__calloc(1, sizeof(*s));
  double v;
  if (s == NULL)
    return -ENOMEM;
  if (vgp__arg_double(args, "exact", &v) == 0)
    s->exact = v != 0;
  *ret_state = s;
  return 0;
}

static void vgp__free_state(void *state) { vgp__free(state); }

/* Free compute left on a node, summed over devices (milli). */
static uint64_t vgp__node_core_free(const struct vgp__node *n) {
  uint64_t sum = 0;
  for (uint32_t i = 0; i < n->n_dev; i++)
    sum += n->dev[i].core_total - n->dev[i].core_used;
  return sum;
}

static int vgp__bestfit_score(void *state, const struct vgp_place_ctx *ctx,
                              uint32_t node, uint32_t cand_mask, int pick,
                              struct vgp_place_assignment *a, double *ret_score) {
  const struct vgp__bestfit *s = state;
  const struct vgp__creq *cr = vgp__ctx_creq(ctx);
  const struct vgp__node *n = &ctx->cluster->nodes[node];
  double cpu_left = (double)(n->cpu_total - n->cpu_used - cr->req->cpu_milli);
  double gpu_left = (double)(vgp__node_core_free(n) -
                             (uint64_t)cr->core * cr->req->num_devices);
  /* 128 cores and 8 whole GPUs: the largest node of the openb cluster,
   * which the simulator uses to put both dimensions on one scale. */
  double score = 1.0 - (0.5 * cpu_left / 128000.0 + 0.5 * gpu_left / 8000.0);

  (void)cand_mask;
  (void)pick;
  (void)a;
  *ret_score = s->exact ? score : (double)(int64_t)(score * 100.0);
  return 0;
}

const struct vgp_place_scorer_ops vgp__scorer_bestfit = {
    .name = "bestfit",
    .summary = "least CPU and GPU left after placement (FGD paper baseline)",
    .flags = VGP_PLACE_SCORER_NORMALIZE,
    .create = vgp__bestfit_create,
    .destroy = vgp__free_state,
    .score = vgp__bestfit_score,
};

/* ---- HAMi node binpack / spread ---- */

/* HAMi's node usage: slots + compute + memory shares, before placement. */
static double vgp__node_usage(const struct vgp__node *n) {
  uint64_t slots = 0, tenants = 0, core = 0, core_used = 0, mem = 0, mem_used = 0;
  for (uint32_t i = 0; i < n->n_dev; i++) {
    const struct vgp__dev *d = &n->dev[i];
    slots += d->max_tenants != 0 ? d->max_tenants : 1;
    tenants += d->max_tenants != 0 ? d->tenants : (d->tenants > 0);
    core += d->core_total;
    core_used += d->core_used;
    mem += d->mem_total;
    mem_used += d->mem_used;
  }
  double u = 0;
  if (slots > 0)
    u += (double)tenants / (double)slots;
  if (core > 0)
    u += (double)core_used / (double)core;
  if (mem > 0)
    u += (double)mem_used / (double)mem;
  if (n->n_dev == 0 && n->cpu_total > 0)
    u += (double)n->cpu_used / (double)n->cpu_total;
  return 10.0 * u;
}

static int vgp__node_binpack_score(void *state, const struct vgp_place_ctx *ctx,
                                   uint32_t node, uint32_t cand_mask, int pick,
                                   struct vgp_place_assignment *a,
                                   double *ret_score) {
  *ret_score = vgp__node_usage(&ctx->cluster->nodes[node]);
  return 0;
}

static int vgp__node_spread_score(void *state, const struct vgp_place_ctx *ctx,
                                  uint32_t node, uint32_t cand_mask, int pick,
                                  struct vgp_place_assignment *a,
                                  double *ret_score) {
  *ret_score = -vgp__node_usage(&ctx->cluster->nodes[node]);
  return 0;
}

const struct vgp_place_scorer_ops vgp__scorer_node_binpack = {
    .name = "node-binpack",
    .summary = "HAMi: prefer the most used node (slots, compute, memory)",
    .flags = VGP_PLACE_SCORER_NORMALIZE,
    .score = vgp__node_binpack_score,
};

const struct vgp_place_scorer_ops vgp__scorer_node_spread = {
    .name = "node-spread",
    .summary = "HAMi: prefer the least used node",
    .flags = VGP_PLACE_SCORER_NORMALIZE,
    .score = vgp__node_spread_score,
};

/* ---- HAMi device binpack / spread ---- */

/* HAMi's device score with the request added, weights 1/1/1. */
static double vgp__dev_score(const struct vgp__creq *cr, const struct vgp__dev *d) {
  double slots = d->max_tenants != 0 ? (double)d->max_tenants : 1.0;
  double s = (double)(d->tenants + 1) / slots;
  s += (double)(d->core_used + cr->core) / (double)d->core_total;
  if (d->mem_total > 0)
    s += (double)(d->mem_used + vgp__dev_mem_need(cr, d)) / (double)d->mem_total;
  return 10.0 * s;
}

/* Chooses the num_devices devices of mask with the highest (binpack) or
 * lowest (spread) device score; ties go to the lower index. */
static int vgp__pick_by_score(const struct vgp_place_ctx *ctx, uint32_t node,
                              uint32_t mask, int highest,
                              struct vgp_place_assignment *a) {
  const struct vgp__creq *cr = vgp__ctx_creq(ctx);
  const struct vgp__node *n = &ctx->cluster->nodes[node];
  uint32_t want = cr->req->num_devices, taken = 0;

  a->n_devices = 0;
  while (a->n_devices < want) {
    int best = -1;
    double best_s = 0;
    for (uint32_t i = 0; i < n->n_dev; i++) {
      if ((mask & (1u << i)) == 0 || (taken & (1u << i)) != 0)
        continue;
      double s = vgp__dev_score(cr, &n->dev[i]);
      if (best < 0 || (highest ? s > best_s : s < best_s)) {
        best = (int)i;
        best_s = s;
      }
    }
    if (best < 0)
      return -ENOSPC;
    taken |= 1u << best;
    a->devices[a->n_devices++] = (uint8_t)best;
  }
  return 0;
}

static int vgp__device_binpack_score(void *state, const struct vgp_place_ctx *ctx,
                                     uint32_t node, uint32_t cand_mask, int pick,
                                     struct vgp_place_assignment *a,
                                     double *ret_score) {
  *ret_score = 0;
  return pick ? vgp__pick_by_score(ctx, node, cand_mask, 1, a) : 0;
}

static int vgp__device_spread_score(void *state, const struct vgp_place_ctx *ctx,
                                    uint32_t node, uint32_t cand_mask, int pick,
                                    struct vgp_place_assignment *a,
                                    double *ret_score) {
  *ret_score = 0;
  return pick ? vgp__pick_by_score(ctx, node, cand_mask, 0, a) : 0;
}

const struct vgp_place_scorer_ops vgp__scorer_device_binpack = {
    .name = "device-binpack",
    .summary = "HAMi: choose the most used fitting devices on the node",
    .flags = VGP_PLACE_SCORER_PICKS,
    .score = vgp__device_binpack_score,
};

const struct vgp_place_scorer_ops vgp__scorer_device_spread = {
    .name = "device-spread",
    .summary = "HAMi: choose the least used fitting devices on the node",
    .flags = VGP_PLACE_SCORER_PICKS,
    .score = vgp__device_spread_score,
};

/* ---- least-loaded ---- */

/* Measured utilization when the agent reported it; otherwise the reserved
 * compute stands in for it. */
static double vgp__dev_load(const struct vgp__dev *d) {
  if (d->load_known)
    return (double)d->util / 100.0;
  return (double)d->core_used / (double)d->core_total;
}

static int vgp__least_loaded_score(void *state, const struct vgp_place_ctx *ctx,
                                   uint32_t node, uint32_t cand_mask, int pick,
                                   struct vgp_place_assignment *a,
                                   double *ret_score) {
  const struct vgp__creq *cr = vgp__ctx_creq(ctx);
  const struct vgp__node *n = &ctx->cluster->nodes[node];
  uint32_t want = cr->req->num_devices, taken = 0;
  double sum = 0;

  if (pick) {
    a->n_devices = 0;
    while (a->n_devices < want) {
      int best = -1;
      for (uint32_t i = 0; i < n->n_dev; i++)
        if ((cand_mask & (1u << i)) != 0 && (taken & (1u << i)) == 0 &&
            (best < 0 || vgp__dev_load(&n->dev[i]) < vgp__dev_load(&n->dev[best])))
          best = (int)i;
      if (best < 0)
        return -ENOSPC;
      taken |= 1u << best;
      a->devices[a->n_devices++] = (uint8_t)best;
    }
  }
  for (uint32_t i = 0; i < a->n_devices; i++)
    sum += vgp__dev_load(&n->dev[a->devices[i]]);
  *ret_score = a->n_devices > 0 ? -sum / a->n_devices : 0.0;
  return 0;
}

const struct vgp_place_scorer_ops vgp__scorer_least_loaded = {
    .name = "least-loaded",
    .summary = "prefer devices with the lowest measured utilization",
    .flags = VGP_PLACE_SCORER_PICKS | VGP_PLACE_SCORER_NORMALIZE,
    .score = vgp__least_loaded_score,
};
