/*
 * pol_topo.c - topology-aware device choice for multi-device requests.
 *
 * HAMi enumerates every combination of n fitting devices and keeps the one
 * with the highest sum of pairwise link scores: C(16, 8) = 12,870 sets per
 * node, per pod. This scorer gets the same answer on real topologies with a
 * bounded search instead: from every fitting device as a seed it grows a
 * set greedily (each step adds the device with the most link score to the
 * set so far), then improves it by single swaps until no swap helps (at
 * most a fixed number of rounds). That is O(k^2 n) per seed for k fitting
 * devices, at most a few thousand link reads per node.
 *
 * A one-device request takes, as HAMi does, the fitting device with the
 * least link score to the other fitting devices, so the well-connected ones
 * stay free for the multi-device requests that need them; ties go to the
 * device with the least free compute (packing).
 *
 * The node score is the average link score per pair of the chosen set, so
 * a node that offers a better-connected set wins; composed with other
 * terms it is min-max normalized.
 */
#include <errno.h>

#include "place-internal.h"

#define VGP__TOPO_SWAP_ROUNDS 4

static uint32_t vgp__link(const struct vgp__node *n, uint32_t a, uint32_t b) {
  return n->links == NULL ? 0 : n->links[a * VGP_PLACE_MAX_DEVICES + b];
}

static uint64_t vgp__set_value(const struct vgp__node *n, const uint8_t *set,
                               uint32_t k) {
  uint64_t v = 0;
  for (uint32_t i = 0; i < k; i++)
    for (uint32_t j = i + 1; j < k; j++)
      v += vgp__link(n, set[i], set[j]);
  return v;
}

/* Grows a set of want devices from seed, then swaps to a local optimum.
 * Returns its value. */
static uint64_t vgp__grow(const struct vgp__node *n, uint32_t mask,
                          uint32_t want, uint32_t seed, uint8_t *set) {
  uint32_t in = 1u << seed;
  uint32_t k = 1;
  set[0] = (uint8_t)seed;
  while (k < want) {
    int best = -1;
    uint64_t best_gain = 0;
    for (uint32_t d = 0; d < n->n_dev; d++) {
      if ((mask & (1u << d)) == 0 || (in & (1u << d)) != 0)
        continue;
      uint64_t gain = 0;
      for (uint32_t i = 0; i < k; i++)
        gain += vgp__link(n, set[i], d);
      if (best < 0 || gain > best_gain) {
        best = (int)d;
        best_gain = gain;
      }
    }
    if (best < 0)
      return 0;
    set[k++] = (uint8_t)best;
    in |= 1u << best;
  }
  uint64_t value = vgp__set_value(n, set, k);
  for (int round = 0; round < VGP__TOPO_SWAP_ROUNDS; round++) {
    int improved = 0;
    for (uint32_t i = 0; i < k; i++) {
      for (uint32_t d = 0; d < n->n_dev; d++) {
        if ((mask & (1u << d)) == 0 || (in & (1u << d)) != 0)
          continue;
        /* Gain of replacing set[i] by d: links of d to the rest minus
         * links of set[i] to the rest. */
        int64_t delta = 0;
        for (uint32_t j = 0; j < k; j++) {
          if (j == i)
            continue;
          delta += (int64_t)vgp__link(n, d, set[j]) - (int64_t)vgp__link(n, set[i], set[j]);
        }
        if (delta > 0) {
          in &= ~(1u << set[i]);
          in |= 1u << d;
          set[i] = (uint8_t)d;
          value += (uint64_t)delta;
          improved = 1;
        }
      }
    }
    if (!improved)
      break;
  }
  return value;
}

static int vgp__topology_score(void *state, const struct vgp_place_ctx *ctx,
                               uint32_t node, uint32_t cand_mask, int pick,
                               struct vgp_place_assignment *a, double *ret_score) {
  const struct vgp__creq *cr = vgp__ctx_creq(ctx);
  const struct vgp_place_cluster *c = ctx->cluster;
  const struct vgp__node *n = &c->nodes[node];
  const struct vgp__hot *h = &c->hot[node];
  uint32_t want = cr->req->num_devices;

  if (pick && want == 1) {
    int best = -1;
    uint64_t best_links = 0;
    for (uint32_t d = 0; d < n->n_dev; d++) {
      if ((cand_mask & (1u << d)) == 0)
        continue;
      uint64_t links = 0;
      for (uint32_t e = 0; e < n->n_dev; e++)
        if (e != d && (cand_mask & (1u << e)) != 0)
          links += vgp__link(n, d, e);
      if (best < 0 || links < best_links ||
          (links == best_links && h->core_free[d] < h->core_free[best])) {
        best = (int)d;
        best_links = links;
      }
    }
    if (best < 0)
      return -ENOSPC;
    a->n_devices = 1;
    a->devices[0] = (uint8_t)best;
  } else if (pick && want > 1) {
    uint8_t set[VGP_PLACE_MAX_DEVICES], best_set[VGP_PLACE_MAX_DEVICES];
    uint64_t best_value = 0;
    int have = 0;
    for (uint32_t seed = 0; seed < n->n_dev; seed++) {
      if ((cand_mask & (1u << seed)) == 0)
        continue;
      uint64_t v = vgp__grow(n, cand_mask, want, seed, set);
      if (!have || v > best_value) {
        for (uint32_t i = 0; i < want; i++)
          best_set[i] = set[i];
        best_value = v;
        have = 1;
      }
    }
    if (!have)
      return -ENOSPC;
    a->n_devices = want;
    for (uint32_t i = 0; i < want; i++)
      a->devices[i] = best_set[i];
  }
  if (a->n_devices > 1) {
    uint64_t pairs = (uint64_t)a->n_devices * (a->n_devices - 1) / 2;
    *ret_score = (double)vgp__set_value(n, a->devices, a->n_devices) / (double)pairs;
  } else {
    *ret_score = 0;
  }
  return 0;
}

const struct vgp_place_scorer_ops vgp__scorer_topology = {
    .name = "topology",
    .summary = "best-linked device sets for multi-device requests (bounded search)",
    .flags = VGP_PLACE_SCORER_PICKS | VGP_PLACE_SCORER_NORMALIZE,
    .score = vgp__topology_score,
};
