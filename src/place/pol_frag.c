/*
 * pol_frag.c - fragmentation-aware scorers: "fgd" and "frag".
 *
 * fgd is Fragmentation Gradient Descent (Weng et al., ATC'23) as the
 * authors' simulator implements it: a node's score is how much placing the
 * request there lowers the node's fragmentation under the typical workload
 * (workload.c), squashed by a sigmoid of the change in thousandths of a
 * GPU and truncated to an integer in 0..100; a share goes to the device
 * that lowers it most. The one deliberate difference from the paper's
 * setup is where the typical workload comes from: the simulator derives it
 * from the whole trace before the first pod, which an online scheduler
 * cannot know, so here it is learned from the requests observed so far.
 *
 * frag is vgpool's own policy; see the comment above vgp__frag_score().
 */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "alloc.h"
#include "frag.h"

struct vgp__fragpol {
  struct vgp_place_workload *w;
  int faithful;             /* fgd: sigmoid and integer truncation */
  double quantum;           /* frag: gains within one quantum tie */
  int ss;                   /* frag: sum-of-squares choice of the gap */
  double ss_weight;
  uint32_t gaps[VGP_PLACE_CORE_WHOLE + 1]; /* devices by free compute */
  /* Per-node cache of the current fragmentation, valid while the node's
   * version and the distribution's epoch are unchanged. */
  uint32_t cap;
  uint32_t *ver;
  uint32_t *epoch;
  double *cur;
};

static int vgp__fragpol_create(void **ret_state, const char *args, int faithful,
                               int mem_aware) {
  struct vgp__fragpol *s;
  double v, coverage = 0.95;
  int r;

  if (vgp__arg_double(args, "exact", &v) == 0)
    faithful = v == 0;
  if (vgp__arg_double(args, "mem", &v) == 0)
    mem_aware = v != 0;
  if (vgp__arg_double(args, "coverage", &v) == 0) {
    if (!(v > 0 && v <= 1))
      return -EINVAL;
    coverage = v;
  }
  s = vgp__calloc(1, sizeof(*s));
  if (s == NULL)
    return -ENOMEM;
  r = vgp__workload_new(coverage, mem_aware, &s->w);
  if (r < 0) {
    vgp__free(s);
    return r;
  }
  s->faithful = faithful;
  s->quantum = 0;
  if (vgp__arg_double(args, "q", &v) == 0)
    s->quantum = v;
  if (vgp__arg_double(args, "ss", &v) == 0)
    s->ss = v != 0;
  s->ss_weight = 1e6;
  if (vgp__arg_double(args, "ssw", &v) == 0)
    s->ss_weight = v;
  *ret_state = s;
  return 0;
}

static void vgp__fragpol_destroy(void *state) {
  struct vgp__fragpol *s = state;
  if (s == NULL)
    return;
  vgp_place_workload_free(&s->w);
  vgp__free(s->ver);
  vgp__free(s->epoch);
  vgp__free(s->cur);
  vgp__free(s);
}

static void vgp__fragpol_observe(void *state, const struct vgp_place_ctx *ctx) {
  struct vgp__fragpol *s = state;
  struct vgp__shape shape;

  vgp__shape_of(vgp__ctx_creq(ctx), s->w->mem_aware, &shape);
  /* An allocation failure only means this request goes uncounted. */
  (void)vgp__workload_add_shape(s->w, &shape, 1);
}

static int vgp__fragpol_begin(void *state, const struct vgp_place_ctx *ctx) {
  struct vgp__fragpol *s = state;
  uint32_t n = ctx->cluster->n_nodes;
  int r;

  if (s->cap < n) {
    uint32_t *ver = vgp__calloc(n, sizeof(uint32_t));
    uint32_t *epoch = vgp__calloc(n, sizeof(uint32_t));
    double *cur = vgp__calloc(n, sizeof(double));
    if (ver == NULL || epoch == NULL || cur == NULL) {
      vgp__free(ver);
      vgp__free(epoch);
      vgp__free(cur);
      return -ENOMEM;
    }
    vgp__free(s->ver);
    vgp__free(s->epoch);
    vgp__free(s->cur);
    s->ver = ver;
    s->epoch = epoch;
    s->cur = cur;
    s->cap = n;
    /* Epoch 0 is never current (builds start at 1), so the fresh cache is
     * all stale. */
  }
  r = vgp__workload_refresh(s->w, 0);
  if (r < 0)
    return r;
  if (s->ss) {
    const struct vgp_place_cluster *c = ctx->cluster;
    memset(s->gaps, 0, sizeof(s->gaps));
    for (uint32_t i = 0; i < n; i++) {
      const struct vgp__hot *h = &c->hot[i];
      for (uint32_t d = 0; d < h->n_dev; d++)
        if (h->core_free[d] <= VGP_PLACE_CORE_WHOLE)
          s->gaps[h->core_free[d]]++;
    }
  }
  if (s->w->epoch == 0)
    return vgp__workload_build(s->w);
  return 0;
}

/* The node's current fragmentation, from the cache when still valid. */
static double vgp__fragpol_current(struct vgp__fragpol *s,
                                   const struct vgp_place_cluster *c,
                                   uint32_t node, const struct vgp__state *st) {
  uint32_t ver = c->nodes[node].version;
  if (s->ver[node] == ver && s->epoch[node] == s->w->epoch)
    return s->cur[node];
  double f = vgp__frag(c, s->w, st);
  s->ver[node] = ver;
  s->epoch[node] = s->w->epoch;
  s->cur[node] = f;
  return f;
}

static double vgp__fgd_squash(double gain) {
  double x = 1.0 / (1.0 + exp(-gain / 1000.0));
  return (double)(int64_t)(x * 100.0);
}

static double vgp__gain_score(const struct vgp__fragpol *s, double gain) {
  if (s->faithful)
    return vgp__fgd_squash(gain);
  if (s->quantum > 0)
    return floor(gain / s->quantum);
  return gain;
}

static int vgp__fgd_score(void *state, const struct vgp_place_ctx *ctx,
                          uint32_t node, uint32_t cand_mask, int pick,
                          struct vgp_place_assignment *a, double *ret_score) {
  struct vgp__fragpol *s = state;
  const struct vgp_place_cluster *c = ctx->cluster;
  const struct vgp__creq *cr = vgp__ctx_creq(ctx);
  const struct vgp_place_request *req = cr->req;
  struct vgp__state st;
  double before, gain;

  vgp__state_of(c, node, &st);
  before = vgp__fragpol_current(s, c, node, &st);
  st.cpu -= req->cpu_milli;
  st.mem -= req->mem_bytes;
  if (pick && req->num_devices == 1 && cr->core < c->nodes[node].dev[0].core_total) {
    /* A share: try each fitting device; the first best one wins. */
    int best = -1;
    double best_score = 0;
    for (uint32_t i = 0; i < st.n; i++) {
      if ((cand_mask & (1u << i)) == 0)
        continue;
      st.core[i] -= cr->core;
      gain = before - vgp__frag(c, s->w, &st);
      st.core[i] += cr->core;
      double sc = vgp__gain_score(s, gain);
      if (s->ss) {
        /* Sum of squares over the histogram of partly used devices: the
         * change of sum N[g]^2 when one device moves from gap f to f - s. */
        uint32_t f = st.core[i], g = f - cr->core;
        double d = 0;
        if (f < VGP_PLACE_CORE_WHOLE)
          d -= 2.0 * s->gaps[f] - 1.0;
        if (g > 0)
          d += 2.0 * s->gaps[g] + 1.0 - (f == g ? 2.0 : 0.0);
        sc -= s->ss_weight * d;
      }
      if (best < 0 || sc > best_score) {
        best = (int)i;
        best_score = sc;
      }
    }
    if (best < 0)
      return -ENOSPC;
    a->n_devices = 1;
    a->devices[0] = (uint8_t)best;
    *ret_score = best_score;
    return 0;
  }
  if (pick) {
    int r = vgp__pick_packed(c, cr, node, cand_mask, a);
    if (r < 0)
      return r;
  }
  for (uint32_t i = 0; i < a->n_devices; i++)
    st.core[a->devices[i]] -= cr->core;
  gain = before - vgp__frag(c, s->w, &st);
  *ret_score = vgp__gain_score(s, gain);
  return 0;
}

static int vgp__fgd_create(void **ret_state, const char *args, uint64_t seed) {
  return vgp__fragpol_create(ret_state, args, 1, 0);
}

const struct vgp_place_scorer_ops vgp__scorer_fgd = {
    .name = "fgd",
    .summary = "fragmentation gradient descent (ATC'23), as its simulator scores it",
    .flags = VGP_PLACE_SCORER_PICKS | VGP_PLACE_SCORER_NORMALIZE,
    .create = vgp__fgd_create,
    .destroy = vgp__fragpol_destroy,
    .observe = vgp__fragpol_observe,
    .begin = vgp__fragpol_begin,
    .score = vgp__fgd_score,
};

/* frag: placeholder until tuned; the exact fragmentation gradient with
 * host memory in the measure. */
static int vgp__frag_create(void **ret_state, const char *args, uint64_t seed) {
  return vgp__fragpol_create(ret_state, args, 0, 1);
}

const struct vgp_place_scorer_ops vgp__scorer_frag = {
    .name = "frag",
    .summary = "vgpool's fragmentation-aware policy (see docs/placement.md)",
    .flags = VGP_PLACE_SCORER_PICKS | VGP_PLACE_SCORER_NORMALIZE,
    .create = vgp__frag_create,
    .destroy = vgp__fragpol_destroy,
    .observe = vgp__fragpol_observe,
    .begin = vgp__fragpol_begin,
    .score = vgp__fgd_score,
};
