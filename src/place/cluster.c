/*
 * cluster.c - the cluster model: nodes, devices, allocations, and the hot
 * summary the filter reads (see place-internal.h).
 *
 * Every mutation goes through one of the functions here, and each ends by
 * refreshing the summary of the one node it changed and bumping that
 * node's version, which is what scorers key their caches on. Nothing here
 * is per-request; the filter and the policies live in filter.c and
 * policy.c.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "place-internal.h"

/* ---- random numbers (xoshiro256**, seeded through splitmix64) ---- */

static uint64_t vgp__splitmix(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

void vgp_place_rng_seed(struct vgp_place_rng *rng, uint64_t seed) {
  uint64_t x = seed;
  for (int i = 0; i < 4; i++)
    rng->s[i] = vgp__splitmix(&x);
}

static inline uint64_t vgp__rotl(uint64_t x, int k) {
  return (x << k) | (x >> (64 - k));
}

uint64_t vgp_place_rng_next(struct vgp_place_rng *rng) {
  uint64_t *s = rng->s;
  uint64_t result = vgp__rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = vgp__rotl(s[3], 45);
  return result;
}

uint64_t vgp_place_rng_below(struct vgp_place_rng *rng, uint64_t bound) {
  if (bound == 0)
    return 0;
  /* Rejection sampling: draws that fall in the incomplete last block of
   * size bound would favour small results, so they are redrawn. */
  uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
  uint64_t x;
  do
    x = vgp_place_rng_next(rng);
  while (x >= limit);
  return x % bound;
}

double vgp_place_rng_unit(struct vgp_place_rng *rng) {
  return (double)(vgp_place_rng_next(rng) >> 11) * (1.0 / 9007199254740992.0);
}

/* ---- helpers ---- */

static uint64_t vgp__name_hash(const char *s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (; *s != '\0'; s++) {
    h ^= (unsigned char)*s;
    h *= 0x100000001b3ull;
  }
  return h;
}

static int vgp__name_ok(const char *s) {
  if (s == NULL)
    return 0;
  size_t n = strnlen(s, VGP_PLACE_NAME_MAX);
  return n > 0 && n < VGP_PLACE_NAME_MAX;
}

uint32_t vgp__model_id(const struct vgp_place_cluster *c, const char *model) {
  for (uint32_t i = 0; i < c->n_models; i++)
    if (strcmp(c->models[i], model) == 0)
      return i;
  return UINT32_MAX;
}

/* Recomputes the hot summary of one node from its devices. */
void vgp__hot_refresh(struct vgp_place_cluster *c, uint32_t node) {
  const struct vgp__node *n = &c->nodes[node];
  struct vgp__hot *h = &c->hot[node];
  uint32_t common_core = n->n_dev > 0 ? n->dev[0].core_total : 0;

  memset(h, 0, sizeof(*h));
  h->cpu_free = n->cpu_total - n->cpu_used;
  h->mem_free = n->mem_total - n->mem_used;
  h->n_dev = (uint8_t)n->n_dev;
  h->model = n->n_dev == 0 ? VGP__MODEL_NONE : n->dev[0].model;
  for (uint32_t i = 0; i < n->n_dev; i++) {
    const struct vgp__dev *d = &n->dev[i];
    uint32_t free_core = d->core_total - d->core_used;
    if (!d->healthy || d->exclusive ||
        (d->max_tenants != 0 && d->tenants >= d->max_tenants))
      free_core = 0;
    h->core_free[i] = (uint16_t)free_core;
    if (free_core > h->max_free)
      h->max_free = (uint16_t)free_core;
    if (free_core == d->core_total && d->tenants == 0)
      h->n_idle++;
    if (d->model != h->model)
      h->model = VGP__MODEL_MIXED;
    if (d->core_total != common_core)
      common_core = 0;
  }
  h->core_total = (uint16_t)common_core;
}

static struct vgp__node *vgp__node_get(struct vgp_place_cluster *c,
                                       uint32_t node) {
  if (c == NULL || node >= c->n_nodes)
    return NULL;
  return &c->nodes[node];
}

static void vgp__node_changed(struct vgp_place_cluster *c, uint32_t node) {
  c->nodes[node].version++;
  vgp__hot_refresh(c, node);
}

/* ---- lifecycle ---- */

int vgp_place_cluster_new(struct vgp_place_cluster **ret_cluster) {
  struct vgp_place_cluster *c;

  if (ret_cluster == NULL)
    return -EINVAL;
  c = vgp__calloc(1, sizeof(*c));
  if (c == NULL)
    return -ENOMEM;
  vgp__hmap_init(&c->by_name, sizeof(uint32_t));
  c->free_alloc = UINT32_MAX;
  *ret_cluster = c;
  return 0;
}

void vgp_place_cluster_free(struct vgp_place_cluster **cluster) {
  struct vgp_place_cluster *c;

  if (cluster == NULL || *cluster == NULL)
    return;
  c = *cluster;
  for (uint32_t i = 0; i < c->n_nodes; i++) {
    vgp__free(c->nodes[i].labels);
    vgp__free(c->nodes[i].links);
  }
  vgp__free(c->nodes);
  vgp__free(c->hot);
  vgp__free(c->allocs);
  vgp__hmap_clear(&c->by_name);
  vgp__free(c);
  *cluster = NULL;
}

/* Grows the node arrays to hold at least one more node. */
static int vgp__nodes_reserve(struct vgp_place_cluster *c) {
  if (c->n_nodes < c->cap_nodes)
    return 0;
  uint32_t cap = c->cap_nodes == 0 ? 64 : c->cap_nodes * 2;
  if (cap > VGP_PLACE_MAX_NODES)
    cap = VGP_PLACE_MAX_NODES;
  struct vgp__node *nodes = vgp__realloc(c->nodes, cap * sizeof(*nodes));
  if (nodes == NULL)
    return -ENOMEM;
  c->nodes = nodes;
  struct vgp__hot *hot = vgp__realloc(c->hot, cap * sizeof(*hot));
  if (hot == NULL)
    return -ENOMEM; /* nodes grew, which is harmless: cap_nodes is unchanged */
  c->hot = hot;
  c->cap_nodes = cap;
  return 0;
}

int vgp_place_node_add(struct vgp_place_cluster *c,
                       const struct vgp_place_node_spec *spec,
                       uint32_t *ret_node) {
  struct vgp__node *n;
  uint32_t idx, found;
  uint64_t key;
  char *labels = NULL;
  int r;

  if (c == NULL || spec == NULL || !vgp__name_ok(spec->name))
    return -EINVAL;
  if (spec->n_labels > VGP_PLACE_MAX_LABELS)
    return -E2BIG;
  if (spec->n_labels > 0 && spec->labels == NULL)
    return -EINVAL;
  for (unsigned i = 0; i < spec->n_labels; i++) {
    const char *l = spec->labels[i];
    if (l == NULL || strchr(l, '=') == NULL || l[0] == '=')
      return -EINVAL;
    if (strnlen(l, VGP_PLACE_LABEL_MAX) >= VGP_PLACE_LABEL_MAX)
      return -E2BIG;
  }
  if (vgp_place_node_find(c, spec->name, &found) == 0)
    return -EEXIST;
  if (c->n_nodes >= VGP_PLACE_MAX_NODES)
    return -E2BIG;
  r = vgp__nodes_reserve(c);
  if (r < 0)
    return r;
  if (spec->n_labels > 0) {
    labels = vgp__calloc(spec->n_labels, VGP_PLACE_LABEL_MAX);
    if (labels == NULL)
      return -ENOMEM;
    for (unsigned i = 0; i < spec->n_labels; i++)
      snprintf(labels + (size_t)i * VGP_PLACE_LABEL_MAX, VGP_PLACE_LABEL_MAX,
               "%s", spec->labels[i]);
  }
  idx = c->n_nodes;
  key = vgp__name_hash(spec->name);
  if (vgp__hmap_get(&c->by_name, key) != NULL) {
    /* Two names with one 64-bit hash: keep the first in the map and let
     * find() fall back to a scan from now on. */
    c->name_collision = 1;
  } else {
    r = vgp__hmap_put(&c->by_name, key, &idx);
    if (r < 0) {
      vgp__free(labels);
      return r;
    }
  }
  n = &c->nodes[idx];
  memset(n, 0, sizeof(*n));
  snprintf(n->name, sizeof(n->name), "%s", spec->name);
  n->cpu_total = spec->cpu_milli;
  n->mem_total = spec->mem_bytes;
  n->tie_rank = idx;
  n->n_labels = spec->n_labels;
  n->labels = labels;
  c->n_nodes++;
  c->cpu_total += spec->cpu_milli;
  c->mem_total += spec->mem_bytes;
  vgp__hot_refresh(c, idx);
  if (ret_node != NULL)
    *ret_node = idx;
  return 0;
}

int vgp_place_device_add(struct vgp_place_cluster *c, uint32_t node,
                         const struct vgp_place_device_spec *spec,
                         uint32_t *ret_device) {
  struct vgp__node *n = vgp__node_get(c, node);
  struct vgp__dev *d;
  uint32_t model, core;

  if (n == NULL || spec == NULL || !vgp__name_ok(spec->model))
    return -EINVAL;
  if (spec->uuid != NULL && spec->uuid[0] != '\0' && !vgp__name_ok(spec->uuid))
    return -EINVAL;
  core = spec->core_milli == 0 ? VGP_PLACE_CORE_WHOLE : spec->core_milli;
  if (core > UINT16_MAX)
    return -ERANGE;
  if (n->n_dev >= VGP_PLACE_MAX_DEVICES)
    return -E2BIG;
  model = vgp__model_id(c, spec->model);
  if (model == UINT32_MAX) {
    if (c->n_models >= VGP_PLACE_MAX_MODELS)
      return -E2BIG;
    model = c->n_models++;
    snprintf(c->models[model], VGP_PLACE_NAME_MAX, "%s", spec->model);
  }
  d = &n->dev[n->n_dev];
  memset(d, 0, sizeof(*d));
  if (spec->uuid != NULL)
    snprintf(d->uuid, sizeof(d->uuid), "%s", spec->uuid);
  d->model = (uint16_t)model;
  d->mem_total = spec->mem_bytes;
  d->core_total = core;
  d->max_tenants = spec->max_tenants;
  d->numa = (int16_t)(spec->numa < 0 ? -1 : spec->numa > 32767 ? 32767 : spec->numa);
  d->healthy = spec->healthy != 0;
  if (ret_device != NULL)
    *ret_device = n->n_dev;
  n->n_dev++;
  c->n_devices++;
  if (n->n_dev > c->max_dev)
    c->max_dev = n->n_dev;
  c->core_total += core;
  vgp__node_changed(c, node);
  return 0;
}

int vgp_place_link_set(struct vgp_place_cluster *c, uint32_t node,
                       uint32_t dev_a, uint32_t dev_b, uint32_t score) {
  struct vgp__node *n = vgp__node_get(c, node);

  if (n == NULL || dev_a >= n->n_dev || dev_b >= n->n_dev || dev_a == dev_b)
    return -EINVAL;
  if (score > UINT16_MAX)
    return -ERANGE;
  if (n->links == NULL) {
    n->links = vgp__calloc(VGP_PLACE_MAX_DEVICES * VGP_PLACE_MAX_DEVICES,
                           sizeof(uint16_t));
    if (n->links == NULL)
      return -ENOMEM;
  }
  n->links[dev_a * VGP_PLACE_MAX_DEVICES + dev_b] = (uint16_t)score;
  n->links[dev_b * VGP_PLACE_MAX_DEVICES + dev_a] = (uint16_t)score;
  vgp__node_changed(c, node);
  return 0;
}

int vgp_place_device_set_health(struct vgp_place_cluster *c, uint32_t node,
                                uint32_t dev, int healthy) {
  struct vgp__node *n = vgp__node_get(c, node);

  if (n == NULL || dev >= n->n_dev)
    return -EINVAL;
  n->dev[dev].healthy = healthy != 0;
  vgp__node_changed(c, node);
  return 0;
}

int vgp_place_device_set_load(struct vgp_place_cluster *c, uint32_t node,
                              uint32_t dev, uint32_t util_percent,
                              uint64_t mem_measured) {
  struct vgp__node *n = vgp__node_get(c, node);

  if (n == NULL || dev >= n->n_dev)
    return -EINVAL;
  if (util_percent > 100)
    return -ERANGE;
  n->dev[dev].util = util_percent;
  n->dev[dev].mem_measured = mem_measured;
  n->dev[dev].load_known = 1;
  n->version++;
  return 0;
}

int vgp_place_node_set_tie_rank(struct vgp_place_cluster *c, uint32_t node,
                                uint32_t rank) {
  struct vgp__node *n = vgp__node_get(c, node);

  if (n == NULL)
    return -EINVAL;
  n->tie_rank = rank;
  return 0;
}

/* ---- queries ---- */

int vgp_place_node_find(const struct vgp_place_cluster *c, const char *name,
                        uint32_t *ret_node) {
  if (c == NULL || name == NULL)
    return -EINVAL;
  const uint32_t *idx = vgp__hmap_get(&c->by_name, vgp__name_hash(name));
  if (idx != NULL && strcmp(c->nodes[*idx].name, name) == 0) {
    if (ret_node != NULL)
      *ret_node = *idx;
    return 0;
  }
  if (c->name_collision) {
    for (uint32_t i = 0; i < c->n_nodes; i++)
      if (strcmp(c->nodes[i].name, name) == 0) {
        if (ret_node != NULL)
          *ret_node = i;
        return 0;
      }
  }
  return -ENOENT;
}

uint32_t vgp_place_node_count(const struct vgp_place_cluster *c) {
  return c == NULL ? 0 : c->n_nodes;
}

int vgp_place_node_view(const struct vgp_place_cluster *c, uint32_t node,
                        struct vgp_place_node_view *ret_view) {
  if (c == NULL || node >= c->n_nodes || ret_view == NULL)
    return -EINVAL;
  const struct vgp__node *n = &c->nodes[node];
  ret_view->name = n->name;
  ret_view->cpu_total = n->cpu_total;
  ret_view->cpu_used = n->cpu_used;
  ret_view->mem_total = n->mem_total;
  ret_view->mem_used = n->mem_used;
  ret_view->n_devices = n->n_dev;
  ret_view->n_labels = n->n_labels;
  ret_view->tie_rank = n->tie_rank;
  ret_view->version = n->version;
  return 0;
}

int vgp_place_device_view(const struct vgp_place_cluster *c, uint32_t node,
                          uint32_t dev, struct vgp_place_device_view *ret_view) {
  if (c == NULL || node >= c->n_nodes || ret_view == NULL ||
      dev >= c->nodes[node].n_dev)
    return -EINVAL;
  const struct vgp__dev *d = &c->nodes[node].dev[dev];
  ret_view->uuid = d->uuid;
  ret_view->model = c->models[d->model];
  ret_view->mem_total = d->mem_total;
  ret_view->mem_used = d->mem_used;
  ret_view->core_total = d->core_total;
  ret_view->core_used = d->core_used;
  ret_view->tenants = d->tenants;
  ret_view->max_tenants = d->max_tenants;
  ret_view->numa = d->numa;
  ret_view->healthy = d->healthy;
  ret_view->exclusive = d->exclusive;
  ret_view->load_known = d->load_known;
  ret_view->util_percent = d->util;
  ret_view->mem_measured = d->mem_measured;
  return 0;
}

const char *vgp_place_node_label(const struct vgp_place_cluster *c,
                                 uint32_t node, unsigned i) {
  if (c == NULL || node >= c->n_nodes || i >= c->nodes[node].n_labels)
    return NULL;
  return c->nodes[node].labels + (size_t)i * VGP_PLACE_LABEL_MAX;
}

void vgp_place_cluster_totals(const struct vgp_place_cluster *c,
                              struct vgp_place_totals *ret_totals) {
  if (ret_totals == NULL)
    return;
  memset(ret_totals, 0, sizeof(*ret_totals));
  if (c == NULL)
    return;
  ret_totals->nodes = c->n_nodes;
  ret_totals->devices = c->n_devices;
  ret_totals->cpu_total = c->cpu_total;
  ret_totals->cpu_used = c->cpu_used;
  ret_totals->mem_total = c->mem_total;
  ret_totals->mem_used = c->mem_used;
  ret_totals->core_total = c->core_total;
  ret_totals->core_used = c->core_used;
  ret_totals->allocations = c->live_allocs;
}

/* ---- allocations ---- */

int vgp_place_check(const struct vgp_place_cluster *c,
                    const struct vgp_place_request *req,
                    const struct vgp_place_assignment *a,
                    enum vgp_place_reason *ret_reason) {
  struct vgp__creq cr;
  enum vgp_place_reason reason;
  uint32_t mask = 0, seen = 0;
  int r;

  if (c == NULL || req == NULL || a == NULL || a->node >= c->n_nodes)
    return -EINVAL;
  if (a->n_devices != req->num_devices || a->n_devices > VGP_PLACE_MAX_DEVICES)
    return -EINVAL;
  r = vgp__creq_compile(c, req, &cr);
  if (r < 0)
    return r;
  /* The node filter already checks every device and NUMA as a set; the
   * chosen devices must then be among those it found fitting, distinct,
   * and (with NUMA binding) on one NUMA node. */
  reason = vgp__filter(c, &cr, a->node, &mask);
  if (reason == VGP_PLACE_FITS) {
    const struct vgp__node *n = &c->nodes[a->node];
    int numa = -2;
    for (uint32_t i = 0; i < a->n_devices; i++) {
      uint32_t d = a->devices[i];
      if (d >= n->n_dev || (seen & (1u << d)) != 0)
        return -EINVAL;
      seen |= 1u << d;
      if ((mask & (1u << d)) == 0) {
        reason = vgp__dev_reason(&cr, &n->dev[d]);
        if (reason == VGP_PLACE_FITS)
          reason = VGP_PLACE_R_COMPUTE;
        break;
      }
      if (req->numa_bind) {
        if (numa != -2 && numa != n->dev[d].numa) {
          reason = VGP_PLACE_R_NUMA;
          break;
        }
        numa = n->dev[d].numa;
      }
    }
  }
  if (reason != VGP_PLACE_FITS) {
    if (ret_reason != NULL)
      *ret_reason = reason;
    return -ENOSPC;
  }
  if (ret_reason != NULL)
    *ret_reason = VGP_PLACE_FITS;
  return 0;
}

static int vgp__alloc_slot(struct vgp_place_cluster *c, uint32_t *ret) {
  if (c->free_alloc != UINT32_MAX) {
    *ret = c->free_alloc;
    c->free_alloc = c->allocs[*ret].next_free;
    return 0;
  }
  if (c->n_allocs == c->cap_allocs) {
    uint32_t cap = c->cap_allocs == 0 ? 256 : c->cap_allocs * 2;
    if (cap > 16u * VGP_PLACE_MAX_NODES)
      return -E2BIG;
    struct vgp__alloc *a = vgp__realloc(c->allocs, cap * sizeof(*a));
    if (a == NULL)
      return -ENOMEM;
    c->allocs = a;
    c->cap_allocs = cap;
  }
  *ret = c->n_allocs++;
  return 0;
}

int vgp_place_commit(struct vgp_place_cluster *c,
                     const struct vgp_place_request *req,
                     const struct vgp_place_assignment *a,
                     uint32_t *ret_alloc) {
  struct vgp__creq cr;
  struct vgp__alloc *al;
  struct vgp__node *n;
  uint32_t id;
  int r;

  r = vgp_place_check(c, req, a, NULL);
  if (r < 0)
    return r;
  r = vgp__creq_compile(c, req, &cr);
  if (r < 0)
    return r;
  r = vgp__alloc_slot(c, &id);
  if (r < 0)
    return r;
  n = &c->nodes[a->node];
  al = &c->allocs[id];
  memset(al, 0, sizeof(*al));
  al->node = a->node;
  al->next_free = UINT32_MAX;
  al->cpu = req->cpu_milli;
  al->mem = req->mem_bytes;
  al->core = cr.core;
  al->n_dev = a->n_devices;
  al->exclusive = req->exclusive != 0;
  al->priority = req->priority;
  n->cpu_used += req->cpu_milli;
  n->mem_used += req->mem_bytes;
  c->cpu_used += req->cpu_milli;
  c->mem_used += req->mem_bytes;
  for (uint32_t i = 0; i < a->n_devices; i++) {
    struct vgp__dev *d = &n->dev[a->devices[i]];
    /* The charge is recomputed here rather than trusted from the caller,
     * so a percent request is charged against this device's memory. */
    uint64_t mem = vgp__dev_mem_need(&cr, d);
    al->devices[i] = a->devices[i];
    al->dev_mem[i] = mem;
    d->core_used += cr.core;
    d->mem_used += mem;
    d->tenants++;
    if (req->exclusive)
      d->exclusive = 1;
    c->core_used += cr.core;
  }
  c->live_allocs++;
  vgp__node_changed(c, a->node);
  if (ret_alloc != NULL)
    *ret_alloc = id;
  return 0;
}

int vgp_place_release(struct vgp_place_cluster *c, uint32_t alloc) {
  struct vgp__alloc *al;
  struct vgp__node *n;

  if (c == NULL || alloc >= c->n_allocs || c->allocs[alloc].node == UINT32_MAX)
    return -ENOENT;
  al = &c->allocs[alloc];
  n = &c->nodes[al->node];
  n->cpu_used -= al->cpu;
  n->mem_used -= al->mem;
  c->cpu_used -= al->cpu;
  c->mem_used -= al->mem;
  for (uint32_t i = 0; i < al->n_dev; i++) {
    struct vgp__dev *d = &n->dev[al->devices[i]];
    d->core_used -= al->core;
    d->mem_used -= al->dev_mem[i];
    d->tenants--;
    if (al->exclusive)
      d->exclusive = 0;
    c->core_used -= al->core;
  }
  c->live_allocs--;
  vgp__node_changed(c, al->node);
  al->node = UINT32_MAX;
  al->next_free = c->free_alloc;
  c->free_alloc = alloc;
  return 0;
}
