/*
 * ofdlock.h - liveness that the kernel maintains.
 *
 * A process that owns a slot in a shared file holds an open-file-description
 * byte-range lock on one byte that stands for the slot. The kernel drops the
 * lock when the process dies, however it dies, and any process can test the
 * byte, so "is the owner of slot i alive?" needs no pid, works across PID
 * namespaces and cannot be fooled by pid reuse. Reclaiming a dead slot takes
 * the same lock, so two processes never reclaim the same slot at once.
 */
#ifndef VGP_COMMON_OFDLOCK_H
#define VGP_COMMON_OFDLOCK_H

#include <stdint.h>

/* Takes an exclusive lock on byte `offset` of fd without waiting. Returns 0,
 * -EAGAIN when another open file description holds it, or -errno. */
int vgp__ofd_trylock(int fd, uint64_t offset);

/* Takes an exclusive lock on byte `offset`, waiting for it. */
int vgp__ofd_lock_wait(int fd, uint64_t offset);

/* Releases the lock on byte `offset`. */
int vgp__ofd_unlock(int fd, uint64_t offset);

/* Returns 1 when some open file description holds a lock on byte `offset`,
 * 0 when none does, or -errno. A lock held through fd itself does not count. */
int vgp__ofd_is_locked(int fd, uint64_t offset);

#endif
