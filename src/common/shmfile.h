/*
 * shmfile.h - versioned binary files mapped shared by many processes.
 *
 * The simulator's node state and vgpool's per-container regions are files
 * that every participating process maps. They all start with the same
 * header: a magic that says what the file is, a layout version, and the
 * total size, so a stale file from an older build, a foreign file at the
 * same path, or a truncated file is detected and named instead of being
 * misread. A file is created under a temporary name, fully initialized and
 * then linked into place, so no process ever maps a half-written file.
 */
#ifndef VGP_COMMON_SHMFILE_H
#define VGP_COMMON_SHMFILE_H

#include <stddef.h>
#include <stdint.h>

struct vgp__shm_header {
  uint64_t magic;
  uint32_t version;
  uint32_t header_size; /* sizeof(struct vgp__shm_header) */
  uint64_t total_size;  /* size of the whole file */
  uint64_t created_ns;  /* CLOCK_MONOTONIC when it was created */
};

struct vgp__shm {
  void *base;
  size_t size;
  int fd;
};

typedef int (*vgp__shm_init_fn)(void *base, size_t size, void *arg);

/* Opens an existing file and checks magic, version and size. Returns 0,
 * -ENOENT (missing), -EPROTO (not this kind of file: wrong magic),
 * -EPROTONOSUPPORT (other layout version), -EBADMSG (wrong or truncated
 * size), or another negative errno. `writable` maps it read-write. */
int vgp__shm_open(const char *path, uint64_t magic, uint32_t version,
                  size_t size, int writable, struct vgp__shm *ret_shm);

/* Opens the file, creating and initializing it with init() first if it does
 * not exist. Same errors as vgp__shm_open, plus whatever init() returns.
 * *ret_created tells whether this call created it. */
int vgp__shm_open_or_create(const char *path, uint64_t magic, uint32_t version,
                            size_t size, unsigned mode, vgp__shm_init_fn init,
                            void *arg, struct vgp__shm *ret_shm,
                            int *ret_created);

/* Unmaps and closes; clears the caller's struct. Safe on a zeroed struct. */
void vgp__shm_close(struct vgp__shm *shm);

/* A sentence describing an error code returned by the functions above. */
const char *vgp__shm_strerror(int err);

#endif
