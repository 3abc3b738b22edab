/*
 * view.h - what the simulated GPU node looks like to those who watch it.
 *
 * Two programs report the node's state: the simulated libnvidia-ml.so.1
 * (to monitoring tools, device plugins, pynvml) and `vgpool sim` (to a
 * person). Both read the shared node state (node.h) through the functions
 * here, so they can never disagree. This is the one place that defines the
 * reporting model:
 *
 *  - Sample periods. Time on CLOCK_MONOTONIC is cut into periods of 1/6 s:
 *    period k covers [ceil(k * 10^9 / 6), ceil((k + 1) * 10^9 / 6)) ns, so
 *    six periods make exactly one second. 1/6 s is the finest sampling
 *    cadence NVIDIA documents for its GPUs. A period is reported once the
 *    clock has passed its end, never while it is still filling.
 *  - Device utilization is busy time over the last VGP_VIEW_UTIL_PERIODS
 *    complete periods (the second that ended at the last period boundary),
 *    so it moves once per period, like a real GPU's.
 *  - Memory in use leaves out what dead processes still hold until someone
 *    reclaims their slots: NVIDIA's driver frees a process's memory the
 *    moment it dies, and an observer must not see otherwise.
 *  - A process is listed on a device while it is alive and holds at least
 *    one context there (a CUDA process, as NVML's compute-process list
 *    defines it).
 *
 * The functions only read the node (liveness is tested, never changed), so
 * they work on a read-only mapping and never race a process that reclaims.
 * Figures read while another process is mid-update can be off by that
 * update for one call; that is what a real driver's snapshot does too.
 */
#ifndef VGP_SIM_NVML_VIEW_H
#define VGP_SIM_NVML_VIEW_H

#include <stdint.h>

#include "clock.h"
#include "node.h"

#define VGP_VIEW_PERIODS_PER_SEC 6u
#define VGP_VIEW_UTIL_PERIODS 6u      /* device utilization: the last second */
#define VGP_VIEW_HISTORY_PERIODS 12u  /* per-process samples: the last 2 s */

/* The history must fit in the node's bucket rings with room to spare for
 * kernels queued ahead of the clock (they fill future buckets). */
_Static_assert(VGP_VIEW_HISTORY_PERIODS * VGP_NSEC_PER_SEC / VGP_VIEW_PERIODS_PER_SEC +
                   VGP_SIM_BUCKET_NS <
               (uint64_t)VGP_SIM_BUCKETS * VGP_SIM_BUCKET_NS,
               "per-process history longer than the node's bucket rings");

/* Period containing monotonic time t_ns. */
static inline uint64_t vgp_view_period_of(uint64_t t_ns) {
  /* No overflow before 97 years of uptime. */
  return t_ns * VGP_VIEW_PERIODS_PER_SEC / VGP_NSEC_PER_SEC;
}

/* First nanosecond of period k. */
static inline uint64_t vgp_view_period_start(uint64_t k) {
  /* The ceiling makes period_of(period_start(k)) == k exactly. */
  return (k * VGP_NSEC_PER_SEC + VGP_VIEW_PERIODS_PER_SEC - 1) /
         VGP_VIEW_PERIODS_PER_SEC;
}

/* busy / span as a whole percentage, rounded to nearest, at most 100. */
static inline unsigned vgp_view_percent(uint64_t busy, uint64_t span) {
  if (span == 0)
    return 0;
  uint64_t pct = (busy * 100 + span / 2) / span;
  return pct > 100 ? 100u : (unsigned)pct;
}

/* Device utilization (kernels, and copy-engine traffic as the memory
 * figure) over the second that ended at the last period boundary before
 * now_ns. */
static inline void vgp_view_device_util(const struct vgp_sim_node *node,
                                        unsigned dev, uint64_t now_ns,
                                        unsigned *ret_gpu, unsigned *ret_mem) {
  uint64_t last = vgp_view_period_of(now_ns);
  uint64_t first = last >= VGP_VIEW_UTIL_PERIODS ? last - VGP_VIEW_UTIL_PERIODS : 0;
  uint64_t from = vgp_view_period_start(first), to = vgp_view_period_start(last);
  const struct vgp_sim_device_state *ds = &node->dev[dev];
  *ret_gpu = vgp_view_percent(vgp_sim_buckets_sum(ds->sm_buckets, from, to), to - from);
  *ret_mem = vgp_view_percent(vgp_sim_buckets_sum(ds->mem_buckets, from, to), to - from);
}

/* Device memory in use on dev, without what dead processes still hold. */
static inline uint64_t vgp_view_used_bytes(struct vgp_sim_handle *h,
                                           unsigned dev) {
  struct vgp_sim_node *node = h->node;
  uint64_t dead = 0;
  for (int i = 0; i < VGP_SIM_MAX_PROCS; i++) {
    struct vgp_sim_proc_slot *s = &node->slots[i];
    if (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) == VGP_SIM_SLOT_FREE)
      continue;
    uint64_t held = __atomic_load_n(&s->dev[dev].used_bytes, __ATOMIC_ACQUIRE);
    if (held != 0 && !vgp_sim_slot_alive(h, i))
      dead += held;
  }
  uint64_t used = __atomic_load_n(&node->dev[dev].used_bytes, __ATOMIC_ACQUIRE);
  used = used > dead ? used - dead : 0;
  return used < node->cfg[dev].total_memory ? used : node->cfg[dev].total_memory;
}

/* Returns 1 when slot runs on dev as NVML lists processes: active, alive,
 * holding a context there. Fills *ret_pid and *ret_used (bytes it holds on
 * dev) then; leaves them alone otherwise. */
static inline int vgp_view_slot_on_device(struct vgp_sim_handle *h, int slot,
                                          unsigned dev, uint32_t *ret_pid,
                                          uint64_t *ret_used) {
  struct vgp_sim_proc_slot *s = &h->node->slots[slot];
  if (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != VGP_SIM_SLOT_ACTIVE)
    return 0;
  if (__atomic_load_n(&s->dev[dev].contexts, __ATOMIC_ACQUIRE) == 0)
    return 0;
  if (!vgp_sim_slot_alive(h, slot))
    return 0;
  *ret_pid = (uint32_t)__atomic_load_n(&s->pid, __ATOMIC_RELAXED);
  *ret_used = __atomic_load_n(&s->dev[dev].used_bytes, __ATOMIC_ACQUIRE);
  return 1;
}

/* What one process did on one device over periods [first, last). */
struct vgp_view_activity {
  uint64_t sm_busy_ns;      /* kernel time */
  uint64_t mem_busy_ns;     /* copy-engine time */
  uint64_t last_active;     /* latest period with any activity */
  int active;               /* any activity at all */
};

static inline void vgp_view_proc_activity(const struct vgp_sim_proc_device *pd,
                                          uint64_t first, uint64_t last,
                                          struct vgp_view_activity *ret) {
  struct vgp_view_activity a = {0, 0, 0, 0};
  for (uint64_t k = first; k < last; k++) {
    uint64_t from = vgp_view_period_start(k), to = vgp_view_period_start(k + 1);
    uint64_t sm = vgp_sim_buckets_sum(pd->sm_buckets, from, to);
    uint64_t mem = vgp_sim_buckets_sum(pd->mem_buckets, from, to);
    a.sm_busy_ns += sm;
    a.mem_busy_ns += mem;
    if (sm != 0 || mem != 0) {
      a.last_active = k;
      a.active = 1;
    }
  }
  *ret = a;
}

#endif
