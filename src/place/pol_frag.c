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
 * frag is vgpool's own policy. It keeps FGD's idea, a value per node state
 * and the move that improves it most, and fixes what FGD misses:
 *
 *  1. Stranding. FGD asks whether the next typical request fits a node;
 *     it does not see that a node with 8 idle GPUs and 20 cores left will
 *     strand 6 of them after two requests. frag adds to the value the GPU
 *     compute the node cannot use for lack of CPU (or host memory) at the
 *     workload's observed CPU (memory) per unit of GPU compute.
 *  2. Whole devices are fungible. In FGD a whole-GPU request counts every
 *     partial gap on a node as fragmentation, which pushes shares into any
 *     gap at all. frag lets whole-device shapes count only whether they
 *     fit; partial gaps are judged by the shares that could fill them.
 *  3. Pairing shares. Which gap a share goes into is decided by a packing
 *     plan (plan.c: best-fit decreasing over the observed distribution of
 *     shares): a planned transition into a partly used device first (the
 *     tightest), then a fresh device, and only then an unplanned gap.
 *  4. Scarce models. Requests constrained to a few models press on them;
 *     frag charges a request for the compute it takes on a model in
 *     proportion to the share of constrained demand that model must carry,
 *     so unconstrained work leaves scarce models to the work that needs
 *     them.
 *  5. Ties. Gains within one quantum (100 milli) tie, and ties go to the
 *     lowest node rank: a first-fit order that concentrates work and keeps
 *     other nodes whole, which exact gains would scatter.
 *
 * Everything frag knows comes from vgp_place_policy_observe() (the requests
 * seen so far) and the cluster's current state. Its parameters are
 * arguments ("frag[q=100,cpu=1,memw=1,plan=1,scarce=1]"); docs/placement.md
 * lists them with the measurements that chose their defaults.
 */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "alloc.h"
#include "frag.h"

/* Lexicographic weights of frag's share score: plan class, then the gap
 * left, then the (bucketed) gain. Gains are at most a few thousand buckets,
 * gaps at most 1000, so the terms cannot overlap. */
#define VGP__CLASS_WEIGHT 1e9
#define VGP__GAP_WEIGHT 1e5

struct vgp__fragpol {
  struct vgp_place_workload *w;
  int faithful;             /* fgd: sigmoid and integer truncation */
  double quantum;           /* gains within one quantum tie (frag) */
  double cpu_w, mem_w;      /* weights of the stranding terms */
  double plan_w;            /* 0: no packing plan */
  double scarce_w;          /* weight of the model scarcity term */
  /* Observed sums, and their snapshot for the current epoch (so that a
   * cached value stays valid until the distribution is rebuilt). */
  double gpu_cpu, gpu_mem, gpu_milli;
  double cpu_per_milli, mem_per_milli;
  double model_dem[VGP_PLACE_MAX_MODELS];   /* constrained demand per model */
  double model_cap[VGP_PLACE_MAX_MODELS];   /* compute per model */
  double dem_total, cap_total;
  double scarcity[VGP_PLACE_MAX_MODELS];    /* snapshot per epoch */
  struct vgp__plan plan;
  uint32_t epoch;           /* workload epoch the snapshots are from */
  /* Per-node cache of the current value, valid while the node's version
   * and the epoch are unchanged. */
  uint32_t cap;
  uint32_t *ver;
  uint32_t *ver_epoch;
  double *cur;
};

static int vgp__fragpol_create(void **ret_state, const char *args, int frag) {
  struct vgp__fragpol *s;
  double v, coverage = 0.95;
  int r;

  if (vgp__arg_double(args, "coverage", &v) == 0) {
    if (!(v > 0 && v <= 1))
      return -EINVAL;
    coverage = v;
  }
  s = vgp__calloc(1, sizeof(*s));
  if (s == NULL)
    return -ENOMEM;
  r = vgp__workload_new(coverage, 0, &s->w);
  if (r < 0) {
    vgp__free(s);
    return r;
  }
  s->faithful = !frag;
  if (frag) {
    s->quantum = 100;
    s->cpu_w = 1;
    s->mem_w = 1;
    s->plan_w = 1;
    s->scarce_w = 1;
    s->w->whole_ignores_gaps = 1;
  }
  if (vgp__arg_double(args, "exact", &v) == 0)
    s->faithful = v == 0;
  if (vgp__arg_double(args, "mem", &v) == 0)
    s->w->mem_aware = v != 0;
  if (vgp__arg_double(args, "wg", &v) == 0)
    s->w->whole_ignores_gaps = v == 0;
  if (vgp__arg_double(args, "q", &v) == 0)
    s->quantum = v;
  if (vgp__arg_double(args, "cpu", &v) == 0)
    s->cpu_w = v;
  if (vgp__arg_double(args, "memw", &v) == 0)
    s->mem_w = v;
  if (vgp__arg_double(args, "plan", &v) == 0)
    s->plan_w = v;
  if (vgp__arg_double(args, "scarce", &v) == 0)
    s->scarce_w = v;
  if (s->quantum < 0 || s->cpu_w < 0 || s->mem_w < 0 || s->plan_w < 0 ||
      s->scarce_w < 0) {
    vgp_place_workload_free(&s->w);
    vgp__free(s);
    return -EINVAL;
  }
  *ret_state = s;
  return 0;
}

static void vgp__fragpol_destroy(void *state) {
  struct vgp__fragpol *s = state;
  if (s == NULL)
    return;
  vgp_place_workload_free(&s->w);
  vgp__plan_clear(&s->plan);
  vgp__free(s->ver);
  vgp__free(s->ver_epoch);
  vgp__free(s->cur);
  vgp__free(s);
}

/* Compute capacity per model, for the scarcity term. */
static void vgp__fragpol_capacity(struct vgp__fragpol *s,
                                  const struct vgp_place_cluster *c) {
  memset(s->model_cap, 0, sizeof(s->model_cap));
  s->cap_total = 0;
  for (uint32_t n = 0; n < c->n_nodes; n++)
    for (uint32_t d = 0; d < c->nodes[n].n_dev; d++) {
      s->model_cap[c->nodes[n].dev[d].model] += c->nodes[n].dev[d].core_total;
      s->cap_total += c->nodes[n].dev[d].core_total;
    }
}

static void vgp__fragpol_observe(void *state, const struct vgp_place_ctx *ctx) {
  struct vgp__fragpol *s = state;
  const struct vgp__creq *cr = vgp__ctx_creq(ctx);
  const struct vgp_place_cluster *c = ctx->cluster;
  struct vgp__shape shape;

  vgp__shape_of(cr, s->w->mem_aware, &shape);
  /* An allocation failure only means this request goes uncounted. */
  (void)vgp__workload_add_shape(s->w, &shape, 1);
  if (shape.num == 0)
    return;
  double milli = (double)shape.num * shape.core;
  s->gpu_cpu += (double)cr->req->cpu_milli;
  s->gpu_mem += (double)cr->req->mem_bytes;
  s->gpu_milli += milli;
  if (s->cap_total == 0)
    vgp__fragpol_capacity(s, c);
  double allowed = 0;
  for (uint32_t m = 0; m < c->n_models; m++)
    if (shape.mask & (1ull << m))
      allowed += s->model_cap[m];
  s->dem_total += milli;
  /* Only demand that cannot go everywhere presses on a model; it is spread
   * over the models it allows in proportion to their capacity. */
  if (allowed > 0 && allowed < s->cap_total)
    for (uint32_t m = 0; m < c->n_models; m++)
      if (shape.mask & (1ull << m))
        s->model_dem[m] += milli * s->model_cap[m] / allowed;
}

/* Takes the snapshots for a new epoch: ratios, scarcity, and the plan. The
 * capacity per model is re-read too, in case nodes came or went. */
static int vgp__fragpol_new_epoch(struct vgp__fragpol *s,
                                  const struct vgp_place_cluster *c) {
  vgp__fragpol_capacity(s, c);
  s->cpu_per_milli = s->gpu_milli > 0 ? s->gpu_cpu / s->gpu_milli : 0;
  s->mem_per_milli = s->gpu_milli > 0 ? s->gpu_mem / s->gpu_milli : 0;
  for (uint32_t m = 0; m < VGP_PLACE_MAX_MODELS; m++)
    s->scarcity[m] = s->dem_total > 0 && s->model_cap[m] > 0
                         ? (s->model_dem[m] / s->dem_total) /
                               (s->model_cap[m] / s->cap_total)
                         : 0;
  if (s->plan_w > 0) {
    uint64_t counts[VGP_PLACE_CORE_WHOLE + 1];
    uint32_t sizes[VGP_PLACE_CORE_WHOLE + 1];
    memset(counts, 0, sizeof(counts));
    for (uint32_t i = 0; i < s->w->cap; i++) {
      const struct vgp__shape *sh = &s->w->tab[i];
      if (sh->count > 0 && sh->num == 1 && sh->core < VGP_PLACE_CORE_WHOLE)
        counts[sh->core] += sh->count;
    }
    for (uint32_t i = 0; i <= VGP_PLACE_CORE_WHOLE; i++)
      sizes[i] = i;
    int r = vgp__plan_build(&s->plan, sizes, counts, VGP_PLACE_CORE_WHOLE + 1);
    if (r < 0)
      return r;
  }
  s->epoch = s->w->epoch;
  return 0;
}

static int vgp__fragpol_begin(void *state, const struct vgp_place_ctx *ctx) {
  struct vgp__fragpol *s = state;
  uint32_t n = ctx->cluster->n_nodes;
  int r;

  if (s->cap < n) {
    uint32_t *ver = vgp__calloc(n, sizeof(uint32_t));
    uint32_t *ver_epoch = vgp__calloc(n, sizeof(uint32_t));
    double *cur = vgp__calloc(n, sizeof(double));
    if (ver == NULL || ver_epoch == NULL || cur == NULL) {
      vgp__free(ver);
      vgp__free(ver_epoch);
      vgp__free(cur);
      return -ENOMEM;
    }
    vgp__free(s->ver);
    vgp__free(s->ver_epoch);
    vgp__free(s->cur);
    s->ver = ver;
    s->ver_epoch = ver_epoch;
    s->cur = cur;
    s->cap = n;
    /* Epoch 0 is never current (builds start at 1): all entries stale. */
  }
  r = vgp__workload_refresh(s->w, 0);
  if (r < 0)
    return r;
  if (s->w->epoch == 0) {
    r = vgp__workload_build(s->w);
    if (r < 0)
      return r;
  }
  if (s->epoch != s->w->epoch)
    return vgp__fragpol_new_epoch(s, ctx->cluster);
  return 0;
}

/* The value a scorer minimizes for a node state: the fragmentation, plus
 * (frag) the GPU compute the node is expected to strand because it runs
 * out of CPU or host memory before its GPUs are used up. */
static double vgp__fragpol_value(const struct vgp__fragpol *s,
                                 const struct vgp_place_cluster *c,
                                 const struct vgp__state *st) {
  double v = vgp__frag(c, s->w, st);
  if (s->cpu_per_milli > 0 || s->mem_per_milli > 0) {
    double g = 0;
    for (uint32_t i = 0; i < st->n; i++)
      g += st->core[i];
    if (s->cpu_w > 0 && s->cpu_per_milli > 0) {
      double short_cpu = g * s->cpu_per_milli - (double)st->cpu;
      if (short_cpu > 0)
        v += s->cpu_w * short_cpu / s->cpu_per_milli;
    }
    if (s->mem_w > 0 && s->mem_per_milli > 0) {
      double short_mem = g * s->mem_per_milli - (double)st->mem;
      if (short_mem > 0)
        v += s->mem_w * short_mem / s->mem_per_milli;
    }
  }
  return v;
}

/* The node's current value, from the cache when still valid. */
static double vgp__fragpol_current(struct vgp__fragpol *s,
                                   const struct vgp_place_cluster *c,
                                   uint32_t node, const struct vgp__state *st) {
  uint32_t ver = c->nodes[node].version;
  if (s->ver[node] == ver && s->ver_epoch[node] == s->w->epoch)
    return s->cur[node];
  double v = vgp__fragpol_value(s, c, st);
  s->ver[node] = ver;
  s->ver_epoch[node] = s->w->epoch;
  s->cur[node] = v;
  return v;
}

static double vgp__gain_score(const struct vgp__fragpol *s, double gain) {
  if (s->faithful) {
    double x = 1.0 / (1.0 + exp(-gain / 1000.0));
    return (double)(int64_t)(x * 100.0);
  }
  if (s->quantum > 0)
    return floor(gain / s->quantum);
  return gain;
}

/* frag's view of where a share goes on one device with f free: 2 for a
 * planned transition into a partly used device, 1 for a fresh device, 0
 * for anything else. */
static int vgp__plan_class(const struct vgp__fragpol *s, uint32_t f,
                           uint32_t total, uint32_t core) {
  if (s->plan_w <= 0 || total != VGP_PLACE_CORE_WHOLE)
    return 1;
  if (f == total)
    return 1;
  return vgp__plan_good(&s->plan, total - f, core) ? 2 : 0;
}

static int vgp__fragpol_score(void *state, const struct vgp_place_ctx *ctx,
                              uint32_t node, uint32_t cand_mask, int pick,
                              struct vgp_place_assignment *a, double *ret_score) {
  struct vgp__fragpol *s = state;
  const struct vgp_place_cluster *c = ctx->cluster;
  const struct vgp__creq *cr = vgp__ctx_creq(ctx);
  const struct vgp_place_request *req = cr->req;
  const struct vgp__node *n = &c->nodes[node];
  struct vgp__state st;
  double before, penalty = 0;

  vgp__state_of(c, node, &st);
  before = vgp__fragpol_current(s, c, node, &st);
  st.cpu -= req->cpu_milli;
  st.mem -= req->mem_bytes;
  if (!s->faithful && s->scarce_w > 0 && req->num_devices > 0 &&
      st.model < VGP_PLACE_MAX_MODELS)
    penalty = s->scarce_w * s->scarcity[st.model] * cr->core * req->num_devices /
              (s->quantum > 0 ? s->quantum : 1);

  if (pick && req->num_devices == 1 && cr->core < n->dev[0].core_total) {
    /* A share: try each fitting device. Devices with the same free
     * compute lead to the same state, so each value is tried once, and
     * the first (lowest index) of the best wins. */
    uint32_t tried[VGP_PLACE_MAX_DEVICES], n_tried = 0;
    int best = -1;
    double best_score = 0;
    for (uint32_t i = 0; i < st.n; i++) {
      if ((cand_mask & (1u << i)) == 0)
        continue;
      uint32_t f = st.core[i], k;
      for (k = 0; k < n_tried && tried[k] != f; k++)
        ;
      if (k < n_tried)
        continue;
      tried[n_tried++] = f;
      st.core[i] = f - cr->core;
      double sc = vgp__gain_score(s, before - vgp__fragpol_value(s, c, &st));
      st.core[i] = f;
      if (!s->faithful && s->plan_w > 0)
        sc += VGP__CLASS_WEIGHT * vgp__plan_class(s, f, n->dev[i].core_total, cr->core) -
              VGP__GAP_WEIGHT * (double)(f - cr->core);
      if (best < 0 || sc > best_score) {
        best = (int)i;
        best_score = sc;
      }
    }
    if (best < 0)
      return -ENOSPC;
    a->n_devices = 1;
    a->devices[0] = (uint8_t)best;
    *ret_score = best_score - penalty;
    return 0;
  }
  if (pick) {
    int r = vgp__pick_packed(c, cr, node, cand_mask, a);
    if (r < 0)
      return r;
  }
  for (uint32_t i = 0; i < a->n_devices; i++)
    st.core[a->devices[i]] -= cr->core;
  double sc = vgp__gain_score(s, before - vgp__fragpol_value(s, c, &st));
  *ret_score = sc - penalty;
  return 0;
}

static int vgp__fgd_create(void **ret_state, const char *args, uint64_t seed) {
  return vgp__fragpol_create(ret_state, args, 0);
}

static int vgp__frag_create(void **ret_state, const char *args, uint64_t seed) {
  return vgp__fragpol_create(ret_state, args, 1);
}

const struct vgp_place_scorer_ops vgp__scorer_fgd = {
    .name = "fgd",
    .summary = "fragmentation gradient descent (ATC'23), scored as its simulator does",
    .flags = VGP_PLACE_SCORER_PICKS | VGP_PLACE_SCORER_NORMALIZE,
    .create = vgp__fgd_create,
    .destroy = vgp__fragpol_destroy,
    .observe = vgp__fragpol_observe,
    .begin = vgp__fragpol_begin,
    .score = vgp__fragpol_score,
};

const struct vgp_place_scorer_ops vgp__scorer_frag = {
    .name = "frag",
    .summary = "vgpool's policy: FGD plus stranding, share packing plan, model scarcity",
    .flags = VGP_PLACE_SCORER_PICKS | VGP_PLACE_SCORER_NORMALIZE,
    .create = vgp__frag_create,
    .destroy = vgp__fragpol_destroy,
    .observe = vgp__fragpol_observe,
    .begin = vgp__fragpol_begin,
    .score = vgp__fragpol_score,
};
