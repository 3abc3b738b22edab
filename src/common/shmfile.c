/*
 * shmfile.c - versioned shared files (see shmfile.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "shmfile.h"

static int vgp__shm_check(const struct vgp__shm_header *h, uint64_t magic,
                          uint32_t version, size_t size) {
  if (h->magic != magic)
    return -EPROTO;
  if (h->version != version || h->header_size != sizeof(*h))
    return -EPROTONOSUPPORT;
  if (h->total_size != size)
    return -EBADMSG;
  return 0;
}

int vgp__shm_open(const char *path, uint64_t magic, uint32_t version,
                  size_t size, int writable, struct vgp__shm *ret_shm) {
  struct stat st;
  int fd, r;
  void *base;

  fd = open(path, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  if (fstat(fd, &st) < 0) {
    r = -errno;
    goto fail;
  }
  if ((size_t)st.st_size < sizeof(struct vgp__shm_header)) {
    r = -EBADMSG;
    goto fail;
  }
  struct vgp__shm_header h;
  ssize_t n = pread(fd, &h, sizeof(h), 0);
  if (n != (ssize_t)sizeof(h)) {
    r = -EBADMSG;
    goto fail;
  }
  r = vgp__shm_check(&h, magic, version, size);
  if (r < 0)
    goto fail;
  if ((size_t)st.st_size != size) {
    r = -EBADMSG;
    goto fail;
  }
  base = mmap(NULL, size, PROT_READ | (writable ? PROT_WRITE : 0), MAP_SHARED,
              fd, 0);
  if (base == MAP_FAILED) {
    r = -errno;
    goto fail;
  }
  ret_shm->base = base;
  ret_shm->size = size;
  ret_shm->fd = fd;
  return 0;
fail:
  close(fd);
  return r;
}

static int vgp__shm_create(const char *path, uint64_t magic, uint32_t version,
                           size_t size, unsigned mode, vgp__shm_init_fn init,
                           void *arg) {
  char tmp[4096];
  int fd, r;
  void *base;

  if (snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) >=
      (int)sizeof(tmp))
    return -ENAMETOOLONG;
  fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0)
    return -errno;
  /* The mode given may be wider than the umask allows; shared files must be
   * usable by every process that is meant to share them. */
  (void)fchmod(fd, mode);
  if (ftruncate(fd, (off_t)size) < 0) {
    r = -errno;
    goto fail;
  }
  base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) {
    r = -errno;
    goto fail;
  }
  struct vgp__shm_header *h = base;
  h->magic = magic;
  h->version = version;
  h->header_size = sizeof(*h);
  h->total_size = size;
  h->created_ns = vgp__now_ns();
  r = init != NULL ? init(base, size, arg) : 0;
  munmap(base, size);
  if (r < 0)
    goto fail;
  /* link() refuses to replace an existing file, which settles a race
   * between two creators: the loser opens the winner's file. */
  if (link(tmp, path) < 0)
    r = -errno;
  else
    r = 0;
fail:
  close(fd);
  unlink(tmp);
  return r;
}

int vgp__shm_open_or_create(const char *path, uint64_t magic, uint32_t version,
                            size_t size, unsigned mode, vgp__shm_init_fn init,
                            void *arg, struct vgp__shm *ret_shm,
                            int *ret_created) {
  int created = 0;
  for (int attempt = 0; attempt < 3; attempt++) {
    int r = vgp__shm_open(path, magic, version, size, 1, ret_shm);
    if (r != -ENOENT) {
      if (r == 0 && ret_created)
        *ret_created = created;
      return r;
    }
    r = vgp__shm_create(path, magic, version, size, mode, init, arg);
    if (r == 0)
      created = 1;
    else if (r != -EEXIST)
      return r;
  }
  return -EAGAIN;
}

void vgp__shm_close(struct vgp__shm *shm) {
  if (shm == NULL)
    return;
  /* A zeroed struct has fd 0, which is not ours to close: only a mapped
   * file owns its descriptor. */
  if (shm->base != NULL && shm->base != MAP_FAILED) {
    munmap(shm->base, shm->size);
    close(shm->fd);
  }
  shm->base = NULL;
  shm->size = 0;
  shm->fd = -1;
}

const char *vgp__shm_strerror(int err) {
  switch (err) {
  case -ENOENT:
    return "the file does not exist";
  case -EPROTO:
    return "the file is not of this kind (wrong magic number): a foreign file "
           "is in the way";
  case -EPROTONOSUPPORT:
    return "the file was written by another version of vgpool (layout "
           "version differs)";
  case -EBADMSG:
    return "the file has the wrong size (truncated or from another build)";
  default:
    return strerror(-err);
  }
}
