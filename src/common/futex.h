/*
 * futex.h - wait and wake on a 32-bit word, across processes.
 *
 * Shared files (the simulator's node state, vgpool's regions) need waits that
 * wake the moment something changes, without a mutex that a killed process
 * could leave locked. A futex on a word inside the shared mapping does that:
 * waiters sleep in the kernel and a waker bumps the word and wakes them.
 * These are the non-private futex operations, so they work across processes
 * that map the same file.
 */
#ifndef VGP_COMMON_FUTEX_H
#define VGP_COMMON_FUTEX_H

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"

/* Sleeps while *word == expected, for at most timeout_ns (0 = no limit).
 * Returns 0 when woken or when the word already differed, -ETIMEDOUT when
 * the time ran out, -EINTR when interrupted by a signal. */
static inline int vgp__futex_wait(uint32_t *word, uint32_t expected,
                                  uint64_t timeout_ns) {
  struct timespec ts, *tsp = NULL;
  if (timeout_ns > 0) {
    ts = vgp__ns_to_timespec(timeout_ns);
    tsp = &ts;
  }
  long r = syscall(SYS_futex, word, FUTEX_WAIT, expected, tsp, NULL, 0);
  if (r == 0)
    return 0;
  if (errno == EAGAIN)
    return 0;
  return -errno;
}

/* Wakes every process and thread waiting on word. */
static inline void vgp__futex_wake_all(uint32_t *word) {
  syscall(SYS_futex, word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

#endif
