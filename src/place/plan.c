/*
 * plan.c - a packing plan for device shares, learned from the workload.
 *
 * Shares of one device are a bin-packing problem: the compute left on a
 * device after its shares is wasted unless a later share fits it. Offline,
 * best-fit decreasing (BFD) packs a known multiset of shares almost
 * optimally; online, shares arrive one by one in random order, and a greedy
 * choice (the tightest gap, or the gap that lowers fragmentation most)
 * readily pairs shares that BFD would never put together (a 470 into the
 * 680 a 320 left, leaving 210 that hardly anything fills), while the share
 * that would have completed that device arrives a moment later.
 *
 * A plan is BFD run over a synthetic multiset with the proportions of the
 * shares observed so far (only the distribution is used; nothing about
 * the order or the future of the actual workload). Each bin BFD fills is
 * a configuration; every sub-multiset of a configuration is a state a
 * device may be in on its way there, and adding one of the configuration's
 * remaining shares is a planned transition. The plan is kept as a bitmap
 * over (compute used, share), so the scheduler asks in O(1) whether putting
 * a share on a device with that much compute used follows the plan.
 */
#include <errno.h>
#include <string.h>

#include "alloc.h"
#include "frag.h"

#define VGP__PLAN_LEVELS (VGP_PLACE_CORE_WHOLE + 1)
#define VGP__PLAN_ITEMS 2000u     /* size of the synthetic multiset */
#define VGP__PLAN_BIN_ITEMS 24u   /* shares in one planned device */
#define VGP__PLAN_SUBSET_MAX 12u  /* enumerate all subsets up to this */

void vgp__plan_clear(struct vgp__plan *p) {
  vgp__free(p->bits);
  memset(p, 0, sizeof(*p));
}

static void vgp__plan_set(struct vgp__plan *p, uint32_t used, uint32_t size) {
  size_t bit = (size_t)used * VGP__PLAN_LEVELS + size;
  p->bits[bit >> 6] |= 1ull << (bit & 63);
}

int vgp__plan_good(const struct vgp__plan *p, uint32_t used, uint32_t size) {
  if (p->bits == NULL || used >= VGP__PLAN_LEVELS || size >= VGP__PLAN_LEVELS)
    return 0;
  size_t bit = (size_t)used * VGP__PLAN_LEVELS + size;
  return (p->bits[bit >> 6] >> (bit & 63)) & 1;
}

struct vgp__bin {
  uint16_t item[VGP__PLAN_BIN_ITEMS];
  uint32_t n;
  uint32_t gap;
  int32_t next;              /* in its gap's list */
};

/* Marks every transition of one configuration. */
static void vgp__plan_config(struct vgp__plan *p, const struct vgp__bin *b) {
  uint32_t k = b->n;
  if (k <= VGP__PLAN_SUBSET_MAX) {
    for (uint32_t mask = 0; mask < (1u << k); mask++) {
      uint32_t used = 0;
      for (uint32_t i = 0; i < k; i++)
        if (mask & (1u << i))
          used += b->item[i];
      for (uint32_t i = 0; i < k; i++)
        if ((mask & (1u << i)) == 0)
          vgp__plan_set(p, used, b->item[i]);
    }
    return;
  }
  /* A configuration of many small shares: the prefixes in BFD's order
   * (largest first) are enough to steer towards it. */
  uint32_t used = 0;
  for (uint32_t i = 0; i < k; i++) {
    vgp__plan_set(p, used, b->item[i]);
    used += b->item[i];
  }
}

int vgp__plan_build(struct vgp__plan *p, const uint32_t *sizes,
                    const uint64_t *counts, uint32_t n) {
  struct vgp__bin *bins = NULL;
  int32_t head[VGP__PLAN_LEVELS];
  uint64_t nonempty[(VGP__PLAN_LEVELS + 63) / 64];
  uint32_t order[VGP__PLAN_LEVELS];
  uint64_t total = 0;
  uint32_t n_bins = 0, cap_bins = 0, n_order = 0;
  int r = 0;

  if (p->bits == NULL) {
    p->bits = vgp__calloc(((size_t)VGP__PLAN_LEVELS * VGP__PLAN_LEVELS + 63) / 64,
                          sizeof(uint64_t));
    if (p->bits == NULL)
      return -ENOMEM;
  } else {
    memset(p->bits, 0,
           ((size_t)VGP__PLAN_LEVELS * VGP__PLAN_LEVELS + 63) / 64 * sizeof(uint64_t));
  }
  for (uint32_t i = 0; i < n; i++)
    if (sizes[i] > 0 && sizes[i] < VGP__PLAN_LEVELS)
      total += counts[i];
  if (total == 0)
    return 0;
  /* Sizes in decreasing order: BFD's order. */
  for (uint32_t i = 0; i < n; i++)
    if (sizes[i] > 0 && sizes[i] < VGP__PLAN_LEVELS && counts[i] > 0)
      order[n_order++] = i;
  for (uint32_t i = 1; i < n_order; i++) {
    uint32_t x = order[i], j = i;
    while (j > 0 && sizes[order[j - 1]] < sizes[x]) {
      order[j] = order[j - 1];
      j--;
    }
    order[j] = x;
  }
  for (uint32_t g = 0; g < VGP__PLAN_LEVELS; g++)
    head[g] = -1;
  memset(nonempty, 0, sizeof(nonempty));

  for (uint32_t oi = 0; oi < n_order; oi++) {
    uint32_t size = sizes[order[oi]];
    /* Each share keeps at least one copy, so rare shares get a plan too. */
    uint64_t copies = (counts[order[oi]] * VGP__PLAN_ITEMS + total / 2) / total;
    if (copies == 0)
      copies = 1;
    for (uint64_t c = 0; c < copies; c++) {
      /* The tightest gap that takes the share: the first non-empty level
       * at or above its size. */
      int32_t bi = -1;
      for (uint32_t w = size >> 6; w < (VGP__PLAN_LEVELS + 63) / 64 && bi < 0; w++) {
        uint64_t bitsw = nonempty[w];
        if (w == size >> 6)
          bitsw &= ~0ull << (size & 63);
        if (bitsw != 0) {
          uint32_t g = w * 64 + (uint32_t)__builtin_ctzll(bitsw);
          bi = head[g];
        }
      }
      if (bi < 0) {
        if (n_bins == cap_bins) {
          uint32_t ncap = cap_bins == 0 ? 512 : cap_bins * 2;
          struct vgp__bin *nb = vgp__realloc(bins, ncap * sizeof(*nb));
          if (nb == NULL) {
            r = -ENOMEM;
            goto out;
          }
          bins = nb;
          cap_bins = ncap;
        }
        bi = (int32_t)n_bins++;
        memset(&bins[bi], 0, sizeof(bins[bi]));
        bins[bi].gap = VGP_PLACE_CORE_WHOLE;
      } else {
        /* Unlink from its gap list. */
        uint32_t g = bins[bi].gap;
        head[g] = bins[bi].next;
        if (head[g] < 0)
          nonempty[g >> 6] &= ~(1ull << (g & 63));
      }
      struct vgp__bin *b = &bins[bi];
      b->item[b->n++] = (uint16_t)size;
      b->gap -= size;
      if (b->gap > 0 && b->n < VGP__PLAN_BIN_ITEMS) {
        b->next = head[b->gap];
        head[b->gap] = bi;
        nonempty[b->gap >> 6] |= 1ull << (b->gap & 63);
      }
    }
  }
  for (uint32_t i = 0; i < n_bins; i++)
    vgp__plan_config(p, &bins[i]);
  p->bins = n_bins;
out:
  vgp__free(bins);
  return r;
}
