/*
 * crashpoint.h - deterministic crash points for fault tests (redis-style).
 *
 * VGPOOL_TEST_CRASH_AT=NAME:N makes the process kill itself with SIGKILL
 * the N-th time it reaches the crash point NAME, so a test can have a
 * process die exactly inside a critical section (holding a lock, with
 * shared totals half updated) instead of hoping a random kill lands there.
 * Unset, a crash point costs one relaxed load.
 *
 *   region-charge  inside a region charge, between the container's total
 *                  and the process's slot (src/common/region.c)
 *   sim-charge     inside a simulated device memory charge, between the
 *                  device's total and the process's slot (src/sim/node.c)
 */
#ifndef VGP_COMMON_CRASHPOINT_H
#define VGP_COMMON_CRASHPOINT_H

/* Counts a pass through the crash point `name`; dies at the N-th. */
void vgp__crash_point(const char *name);

#endif
