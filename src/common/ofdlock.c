/*
 * ofdlock.c - open-file-description byte locks (see ofdlock.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include "ofdlock.h"

static int vgp__ofd_op(int fd, int cmd, short type, uint64_t offset) {
  struct flock fl;
  memset(&fl, 0, sizeof(fl));
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_start = (off_t)offset;
  fl.l_len = 1;
  int r;
  do
    r = fcntl(fd, cmd, &fl);
  while (r < 0 && errno == EINTR && cmd == F_OFD_SETLKW);
  if (r < 0)
    return (errno == EACCES) ? -EAGAIN : -errno;
  return 0;
}

int vgp__ofd_trylock(int fd, uint64_t offset) {
  return vgp__ofd_op(fd, F_OFD_SETLK, F_WRLCK, offset);
}

int vgp__ofd_lock_wait(int fd, uint64_t offset) {
  return vgp__ofd_op(fd, F_OFD_SETLKW, F_WRLCK, offset);
}

int vgp__ofd_unlock(int fd, uint64_t offset) {
  return vgp__ofd_op(fd, F_OFD_SETLK, F_UNLCK, offset);
}

int vgp__ofd_is_locked(int fd, uint64_t offset) {
  struct flock fl;
  memset(&fl, 0, sizeof(fl));
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = (off_t)offset;
  fl.l_len = 1;
  if (fcntl(fd, F_OFD_GETLK, &fl) < 0)
    return -errno;
  return fl.l_type != F_UNLCK;
}
