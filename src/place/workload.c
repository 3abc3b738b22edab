/*
 * workload.c - workload distributions and the fragmentation measure.
 *
 * A distribution counts requests by shape in an open-addressing table and
 * derives, on demand, its "typical" part: the most frequent shapes that
 * together cover a share of all requests (FGD's popularity threshold,
 * 95%), with their probabilities renormalized. Each rebuild of the typical
 * part bumps an epoch, which is how scorers know their cached values are
 * stale. Rebuilding after every request would throw those caches away on
 * every pod, so a distribution is rebuilt when its count has doubled, up
 * to 1,024 requests, and then when it has grown by a quarter (and always
 * when a caller forces it): by a thousand requests the proportions have
 * settled, and a rebuild costs the scorers all their cached values.
 *
 * Fragmentation, FGD's definition: for a node and one typical shape t,
 *   - if t asks for no GPU, or the node's model is not allowed for t, or
 *     the node lacks the CPU (or, for memory-aware distributions, the host
 *     memory) or the fitting devices for t, all its idle compute is a
 *     fragment for t;
 *   - otherwise the idle compute on devices too small for t is (or, when
 *     whole_ignores_gaps is set and t wants whole devices, nothing: frag's
 *     view that whole devices are fungible and gaps are for shares).
 * The node's fragmentation is the expectation over t. The caller passes a
 * node state, not a node, so that a scorer can ask "what if" about states
 * that do not exist yet.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "frag.h"

#define VGP__SHAPES_MAX (1u << 16)

static uint64_t vgp__shape_hash(const struct vgp__shape *s) {
  uint64_t h = s->cpu * 0x9e3779b97f4a7c15ull;
  h ^= (s->mem + 0x632be59bd9b4e019ull) * 0xbf58476d1ce4e5b9ull;
  h ^= (s->mask + ((uint64_t)s->num << 32 | s->core)) * 0x94d049bb133111ebull;
  return h ^ (h >> 29);
}

static int vgp__shape_eq(const struct vgp__shape *a, const struct vgp__shape *b) {
  return a->cpu == b->cpu && a->mem == b->mem && a->mask == b->mask &&
         a->num == b->num && a->core == b->core;
}

int vgp__workload_new(double coverage, int mem_aware,
                      struct vgp_place_workload **ret) {
  struct vgp_place_workload *w;

  if (ret == NULL || !(coverage > 0.0 && coverage <= 1.0))
    return -EINVAL;
  w = vgp__calloc(1, sizeof(*w));
  if (w == NULL)
    return -ENOMEM;
  w->coverage = coverage;
  w->mem_aware = mem_aware;
  *ret = w;
  return 0;
}

int vgp_place_workload_new(double coverage,
                           struct vgp_place_workload **ret_workload) {
  return vgp__workload_new(coverage, 0, ret_workload);
}

void vgp_place_workload_free(struct vgp_place_workload **workload) {
  if (workload == NULL || *workload == NULL)
    return;
  vgp__free((*workload)->tab);
  vgp__free((*workload)->typ);
  vgp__free((*workload)->mtyp);
  vgp__free(*workload);
  *workload = NULL;
}

static int vgp__tab_grow(struct vgp_place_workload *w) {
  uint32_t cap = w->cap == 0 ? 256 : w->cap * 2;
  struct vgp__shape *tab = vgp__calloc(cap, sizeof(*tab));
  if (tab == NULL)
    return -ENOMEM;
  for (uint32_t i = 0; i < w->cap; i++) {
    if (w->tab[i].count == 0)
      continue;
    uint32_t j = (uint32_t)vgp__shape_hash(&w->tab[i]) & (cap - 1);
    while (tab[j].count != 0)
      j = (j + 1) & (cap - 1);
    tab[j] = w->tab[i];
  }
  vgp__free(w->tab);
  w->tab = tab;
  w->cap = cap;
  return 0;
}

void vgp__shape_of(const struct vgp__creq *cr, int mem_aware,
                   struct vgp__shape *s) {
  const struct vgp_place_request *req = cr->req;
  memset(s, 0, sizeof(*s));
  s->cpu = req->cpu_milli;
  s->mem = mem_aware ? req->mem_bytes : 0;
  if (req->num_devices > 0 && cr->core > 0) {
    s->num = req->num_devices;
    s->core = cr->core;
    s->mask = cr->model_mask;
  }
}

int vgp__workload_add_shape(struct vgp_place_workload *w,
                            const struct vgp__shape *shape, uint64_t weight) {
  uint32_t j;
  int r;

  if (w->cap == 0 || (w->used * 10 >= w->cap * 7 && w->cap < VGP__SHAPES_MAX)) {
    r = vgp__tab_grow(w);
    if (r < 0)
      return r;
  }
  j = (uint32_t)vgp__shape_hash(shape) & (w->cap - 1);
  while (w->tab[j].count != 0 && !vgp__shape_eq(&w->tab[j], shape))
    j = (j + 1) & (w->cap - 1);
  if (w->tab[j].count == 0) {
    if (w->used * 10 >= w->cap * 7) {
      /* Past the cap new shapes are not tracked; they are rare by then. */
      w->dropped += weight;
      w->total += weight;
      return 0;
    }
    w->tab[j] = *shape;
    w->tab[j].count = 0;
    w->used++;
  }
  w->tab[j].count += weight;
  w->total += weight;
  return 0;
}

int vgp_place_workload_add(struct vgp_place_workload *w,
                           const struct vgp_place_cluster *c,
                           const struct vgp_place_request *req) {
  struct vgp__creq cr;
  struct vgp__shape s;
  int r;

  if (w == NULL || c == NULL || req == NULL)
    return -EINVAL;
  r = vgp__creq_compile(c, req, &cr);
  if (r < 0)
    return r;
  vgp__shape_of(&cr, w->mem_aware, &s);
  return vgp__workload_add_shape(w, &s, 1);
}

uint64_t vgp_place_workload_count(const struct vgp_place_workload *w) {
  return w == NULL ? 0 : w->total;
}

/* Most frequent first; equal counts in a fixed order (larger requests
 * first) so that the cut at the coverage is deterministic. */
static int vgp__shape_cmp(const void *pa, const void *pb) {
  const struct vgp__shape *a = pa, *b = pb;
  if (a->count != b->count)
    return a->count > b->count ? -1 : 1;
  if (a->cpu != b->cpu)
    return a->cpu > b->cpu ? -1 : 1;
  if (a->core != b->core)
    return a->core > b->core ? -1 : 1;
  if (a->num != b->num)
    return a->num > b->num ? -1 : 1;
  if (a->mem != b->mem)
    return a->mem > b->mem ? -1 : 1;
  if (a->mask != b->mask)
    return a->mask > b->mask ? -1 : 1;
  return 0;
}

static int vgp__mtyp_cmp(const void *pa, const void *pb) {
  const struct vgp__mtyp *a = pa, *b = pb;
  if (a->core != b->core)
    return a->core > b->core ? -1 : 1;
  if (a->num != b->num)
    return a->num < b->num ? -1 : 1;
  if (a->cpu != b->cpu)
    return a->cpu < b->cpu ? -1 : 1;
  return a->mem < b->mem ? -1 : a->mem > b->mem;
}

/* Compiles the typical shapes into one list per model: only the GPU
 * shapes that allow the model, largest compute first, so that one pass
 * over a node's sorted free compute answers every shape. */
static int vgp__workload_compile(struct vgp_place_workload *w) {
  uint32_t need = 0;
  for (uint32_t m = 0; m < VGP_PLACE_MAX_MODELS; m++)
    for (uint32_t k = 0; k < w->n_typ; k++)
      if (w->typ[k].num > 0 && (w->typ[k].mask & (1ull << m)) != 0)
        need++;
  if (need > w->cap_mtyp) {
    struct vgp__mtyp *mt = vgp__realloc(w->mtyp, need * sizeof(*mt));
    if (mt == NULL)
      return -ENOMEM;
    w->mtyp = mt;
    w->cap_mtyp = need;
  }
  uint32_t at = 0;
  for (uint32_t m = 0; m < VGP_PLACE_MAX_MODELS; m++) {
    w->moff[m] = at;
    for (uint32_t k = 0; k < w->n_typ; k++) {
      const struct vgp__typ *t = &w->typ[k];
      if (t->num == 0 || (t->mask & (1ull << m)) == 0)
        continue;
      struct vgp__mtyp *e = &w->mtyp[at++];
      e->cpu = t->cpu;
      e->mem = t->mem;
      e->core = t->core;
      e->num = t->num;
      e->p = t->p;
      e->whole = w->whole_ignores_gaps && t->core >= VGP_PLACE_CORE_WHOLE;
    }
    qsort(&w->mtyp[w->moff[m]], at - w->moff[m], sizeof(struct vgp__mtyp), vgp__mtyp_cmp);
  }
  w->moff[VGP_PLACE_MAX_MODELS] = at;
  return 0;
}

int vgp__workload_build(struct vgp_place_workload *w) {
  struct vgp__shape *sorted;
  uint32_t n = 0, k = 0;
  uint64_t cum = 0;

  if (w->used == 0) {
    w->n_typ = 0;
    memset(w->moff, 0, sizeof(w->moff));
    w->built_at = w->total;
    w->epoch++;
    return 0;
  }
  sorted = vgp__malloc(w->used * sizeof(*sorted));
  if (sorted == NULL)
    return -ENOMEM;
  for (uint32_t i = 0; i < w->cap; i++)
    if (w->tab[i].count != 0)
      sorted[n++] = w->tab[i];
  qsort(sorted, n, sizeof(*sorted), vgp__shape_cmp);
  uint64_t tracked = w->total - w->dropped;
  while (k < n && (double)cum < w->coverage * (double)tracked)
    cum += sorted[k++].count;
  if (k > w->cap_typ) {
    struct vgp__typ *typ = vgp__realloc(w->typ, k * sizeof(*typ));
    if (typ == NULL) {
      vgp__free(sorted);
      return -ENOMEM;
    }
    w->typ = typ;
    w->cap_typ = k;
  }
  for (uint32_t i = 0; i < k; i++) {
    struct vgp__typ *t = &w->typ[i];
    t->cpu = sorted[i].cpu;
    t->mem = sorted[i].mem;
    t->mask = sorted[i].mask;
    t->num = sorted[i].num;
    t->core = sorted[i].core;
    t->p = (double)sorted[i].count / (double)cum;
  }
  w->n_typ = k;
  vgp__free(sorted);
  int r = vgp__workload_compile(w);
  if (r < 0)
    return r;
  w->built_at = w->total;
  w->epoch++;
  return 0;
}

int vgp__workload_refresh(struct vgp_place_workload *w, int force) {
  if (w->total == w->built_at)
    return 0;
  /* Doubling up to a thousand requests, then every quarter more: the
   * distribution has settled by then, and each rebuild costs the scorers
   * their caches. */
  uint64_t step = w->built_at < 1024 ? w->built_at : w->built_at / 4;
  if (step < 1)
    step = 1;
  if (!force && w->total < w->built_at + step)
    return 0;
  return vgp__workload_build(w);
}

unsigned vgp_place_workload_typical(struct vgp_place_workload *w) {
  if (w == NULL || vgp__workload_refresh(w, 1) < 0)
    return 0;
  return w->n_typ;
}

void vgp__state_of(const struct vgp_place_cluster *c, uint32_t node,
                   struct vgp__state *s) {
  const struct vgp__hot *h = &c->hot[node];
  s->cpu = h->cpu_free;
  s->mem = h->mem_free;
  s->model = h->model;
  s->n = h->n_dev;
  s->node = node;
  for (uint32_t i = 0; i < h->n_dev; i++)
    s->core[i] = h->core_free[i];
}

/* The fragmentation of a state under the typical shapes of w.
 *
 * With the probabilities summing to one, FGD's sum over shapes t of
 * p_t x (idle compute a request of shape t could not use) is the node's
 * idle compute minus, over the shapes that fit, p_t x the idle compute on
 * devices big enough for t. CPU-only shapes and shapes that do not allow
 * the node's model never fit. With the model's shapes sorted by compute,
 * largest first, the devices big enough are a growing prefix of the free
 * compute sorted the same way, read off a prefix sum. */
double vgp__frag(const struct vgp_place_cluster *c,
                 const struct vgp_place_workload *w,
                 const struct vgp__state *s) {
  uint32_t sorted[VGP_PLACE_MAX_DEVICES];
  uint64_t prefix[VGP_PLACE_MAX_DEVICES + 1];
  uint32_t n = s->n;

  if (n == 0)
    return 0;
  if (s->model == VGP__MODEL_MIXED)
    return vgp__frag_mixed(c, w, s);
  for (uint32_t i = 0; i < n; i++) {
    uint32_t v = s->core[i], j = i;
    while (j > 0 && sorted[j - 1] < v) {
      sorted[j] = sorted[j - 1];
      j--;
    }
    sorted[j] = v;
  }
  prefix[0] = 0;
  for (uint32_t i = 0; i < n; i++)
    prefix[i + 1] = prefix[i] + sorted[i];
  uint64_t total = prefix[n];
  if (total == 0 || s->model >= VGP_PLACE_MAX_MODELS)
    return (double)total;
  double usable = 0;
  uint32_t fit = 0;
  const struct vgp__mtyp *e = &w->mtyp[w->moff[s->model]];
  const struct vgp__mtyp *end = &w->mtyp[w->moff[s->model + 1]];
  for (; e < end; e++) {
    while (fit < n && sorted[fit] >= e->core)
      fit++;
    if (fit >= e->num && s->cpu >= e->cpu && s->mem >= e->mem)
      usable += e->p * (double)(e->whole ? total : prefix[fit]);
  }
  return (double)total - usable;
}

/* The same for a node whose devices differ in model: a shape may use only
 * the devices whose model it allows. */
double vgp__frag_mixed(const struct vgp_place_cluster *c,
                       const struct vgp_place_workload *w,
                       const struct vgp__state *s) {
  const struct vgp__node *node = &c->nodes[s->node];
  uint64_t total = 0;
  double frag = 0;

  for (uint32_t i = 0; i < s->n; i++)
    total += s->core[i];
  if (total == 0)
    return 0;
  for (uint32_t k = 0; k < w->n_typ; k++) {
    const struct vgp__typ *t = &w->typ[k];
    uint32_t fit = 0;
    uint64_t fit_sum = 0;
    if (t->num > 0 && s->cpu >= t->cpu && s->mem >= t->mem)
      for (uint32_t i = 0; i < s->n; i++)
        if ((t->mask & (1ull << node->dev[i].model)) != 0 && s->core[i] >= t->core) {
          fit++;
          fit_sum += s->core[i];
        }
    if (t->num == 0 || fit < t->num)
      frag += t->p * (double)total;
    else if (!(w->whole_ignores_gaps && t->core >= VGP_PLACE_CORE_WHOLE))
      frag += t->p * (double)(total - fit_sum);
  }
  return frag;
}

double vgp_place_node_fragmentation(const struct vgp_place_cluster *c,
                                    struct vgp_place_workload *w,
                                    uint32_t node) {
  struct vgp__state s;

  if (c == NULL || w == NULL || node >= c->n_nodes)
    return 0;
  if (vgp__workload_refresh(w, 1) < 0)
    return 0;
  vgp__state_of(c, node, &s);
  return vgp__frag(c, w, &s);
}

double vgp_place_fragmentation(const struct vgp_place_cluster *c,
                               struct vgp_place_workload *w,
                               double *ret_idle) {
  double frag = 0, idle = 0;

  if (c == NULL || w == NULL)
    return 0;
  if (vgp__workload_refresh(w, 1) < 0)
    return 0;
  for (uint32_t node = 0; node < c->n_nodes; node++) {
    struct vgp__state s;
    vgp__state_of(c, node, &s);
    frag += vgp__frag(c, w, &s);
    for (uint32_t i = 0; i < s.n; i++)
      idle += s.core[i];
  }
  if (ret_idle != NULL)
    *ret_idle = idle;
  return frag;
}
