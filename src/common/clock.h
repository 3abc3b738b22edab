/*
 * clock.h - the clocks vgpool uses.
 *
 * Everything that measures intervals uses CLOCK_MONOTONIC in nanoseconds, so
 * timestamps written into shared files by one process are comparable with
 * those of every other process on the machine. Wall-clock microseconds are
 * only used where an external ABI asks for them (NVML sample timestamps).
 */
#ifndef VGP_COMMON_CLOCK_H
#define VGP_COMMON_CLOCK_H

#include <errno.h>
#include <stdint.h>
#include <time.h>

#define VGP_NSEC_PER_USEC 1000ull
#define VGP_NSEC_PER_MSEC 1000000ull
#define VGP_NSEC_PER_SEC 1000000000ull

static inline uint64_t vgp__now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * VGP_NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

static inline uint64_t vgp__realtime_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000000ull + (uint64_t)ts.tv_nsec / 1000ull;
}

static inline struct timespec vgp__ns_to_timespec(uint64_t ns) {
  struct timespec ts;
  ts.tv_sec = (time_t)(ns / VGP_NSEC_PER_SEC);
  ts.tv_nsec = (long)(ns % VGP_NSEC_PER_SEC);
  return ts;
}

/* Sleeps until the monotonic clock reads at least deadline_ns. */
static inline void vgp__sleep_until_ns(uint64_t deadline_ns) {
  struct timespec ts = vgp__ns_to_timespec(deadline_ns);
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
    ;
}

static inline void vgp__sleep_ns(uint64_t ns) {
  vgp__sleep_until_ns(vgp__now_ns() + ns);
}

#endif
