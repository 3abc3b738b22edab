/*
 * test_shmfile.c - shared files: creation race, and detection of foreign,
 * stale and truncated files; robust locks and slot liveness survive SIGKILL.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ofdlock.h"
#include "rlock.h"
#include "shmfile.h"
#include "vgp_test.h"

#define MAGIC 0x5453455450475600ull /* "\0VGPTEST" */
#define SIZE 8192

struct test_file {
  struct vgp__shm_header h;
  pthread_mutex_t lock;
  uint64_t counter;
};

static int init_file(void *base, size_t size, void *arg) {
  struct test_file *f = base;
  f->counter = *(uint64_t *)arg;
  return vgp__rlock_init(&f->lock);
}

static void path_in_tmp(char *buf, size_t len, const char *name) {
  snprintf(buf, len, "%s/%s", vgp_test_tmpdir(), name);
}

VGP_TEST(create_then_open) {
  char path[512];
  path_in_tmp(path, sizeof(path), "state");
  struct vgp__shm a, b;
  uint64_t start = 7;
  int created = -1;
  ASSERT_OK(vgp__shm_open_or_create(path, MAGIC, 3, SIZE, 0600, init_file,
                                    &start, &a, &created));
  ASSERT_EQ_INT(created, 1);
  ASSERT_OK(vgp__shm_open_or_create(path, MAGIC, 3, SIZE, 0600, init_file,
                                    &start, &b, &created));
  ASSERT_EQ_INT(created, 0);
  struct test_file *fa = a.base, *fb = b.base;
  ASSERT_EQ_U64(fa->counter, 7);
  fa->counter = 99;
  ASSERT_EQ_U64(fb->counter, 99);
  vgp__shm_close(&a);
  vgp__shm_close(&b);
  ASSERT_NULL(a.base);
}

VGP_TEST(foreign_stale_and_truncated_files_are_named) {
  char path[512];
  struct vgp__shm s;
  uint64_t start = 0;
  path_in_tmp(path, sizeof(path), "state");
  ASSERT_EQ_INT(vgp__shm_open(path, MAGIC, 3, SIZE, 1, &s), -ENOENT);

  int fd = open(path, O_RDWR | O_CREAT, 0600);
  ASSERT_TRUE(fd >= 0);
  ASSERT_OK(ftruncate(fd, SIZE));
  ASSERT_EQ_INT(pwrite(fd, "garbage!", 8, 0), 8);
  ASSERT_EQ_INT(vgp__shm_open(path, MAGIC, 3, SIZE, 1, &s), -EPROTO);
  ASSERT_CONTAINS(vgp__shm_strerror(-EPROTO), "foreign");
  close(fd);
  unlink(path);

  ASSERT_OK(vgp__shm_open_or_create(path, MAGIC, 3, SIZE, 0600, init_file,
                                    &start, &s, NULL));
  vgp__shm_close(&s);
  ASSERT_EQ_INT(vgp__shm_open(path, MAGIC, 4, SIZE, 1, &s), -EPROTONOSUPPORT);
  ASSERT_EQ_INT(vgp__shm_open(path, MAGIC, 3, SIZE * 2, 1, &s), -EBADMSG);
  ASSERT_OK(truncate(path, SIZE / 2));
  ASSERT_EQ_INT(vgp__shm_open(path, MAGIC, 3, SIZE, 1, &s), -EBADMSG);
  ASSERT_OK(truncate(path, 4));
  ASSERT_EQ_INT(vgp__shm_open(path, MAGIC, 3, SIZE, 1, &s), -EBADMSG);
}

VGP_HELPER(lock_and_die) {
  struct vgp__shm s;
  if (vgp__shm_open(argv[0], MAGIC, 3, SIZE, 1, &s) < 0)
    return 2;
  struct test_file *f = s.base;
  if (vgp__rlock_lock(&f->lock, 0) < 0)
    return 3;
  f->counter = 1000;
  if (vgp__ofd_trylock(s.fd, 4096) < 0)
    return 4;
  /* Tell the parent we hold both locks, then wait to be killed. */
  ssize_t ignored = write(1, "L", 1);
  (void)ignored;
  for (;;)
    pause();
}

VGP_TEST(locks_of_a_killed_process_are_released) {
  char path[512];
  struct vgp__shm s;
  uint64_t start = 0;
  path_in_tmp(path, sizeof(path), "state");
  ASSERT_OK(vgp__shm_open_or_create(path, MAGIC, 3, SIZE, 0600, init_file,
                                    &start, &s, NULL));
  struct test_file *f = s.base;

  int pipefd[2];
  ASSERT_OK(pipe(pipefd));
  pid_t pid = fork();
  if (pid == 0) {
    dup2(pipefd[1], 1);
    execl("/proc/self/exe", "x", "--helper", "lock_and_die", path, (char *)NULL);
    _exit(127);
  }
  char c = 0;
  ASSERT_EQ_INT(read(pipefd[0], &c, 1), 1);
  ASSERT_EQ_INT(c, 'L');
  ASSERT_EQ_INT(vgp__ofd_is_locked(s.fd, 4096), 1);
  ASSERT_EQ_INT(vgp__ofd_trylock(s.fd, 4096), -EAGAIN);
  ASSERT_EQ_INT(vgp__rlock_lock(&f->lock, 50 * 1000000ull), -ETIMEDOUT);

  kill(pid, SIGKILL);
  ASSERT_EQ_INT(vgp_test_wait(pid), 128 + SIGKILL);
  ASSERT_EQ_INT(vgp__ofd_is_locked(s.fd, 4096), 0);
  ASSERT_OK(vgp__ofd_trylock(s.fd, 4096));
  ASSERT_EQ_INT(vgp__rlock_lock(&f->lock, 1000 * 1000000ull), 1);
  ASSERT_EQ_U64(f->counter, 1000);
  vgp__rlock_unlock(&f->lock);
  ASSERT_OK(vgp__rlock_lock(&f->lock, 0));
  vgp__rlock_unlock(&f->lock);
  vgp__shm_close(&s);
}
