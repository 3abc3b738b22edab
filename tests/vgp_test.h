/*
 * vgp_test.h - the unit and integration test harness.
 *
 * Modelled on libuv's: each test file is an executable; VGP_TEST(name)
 * registers a test; the runner runs every test (or those named on the
 * command line) in its own forked child with a timeout, so one crash or hang
 * fails one test and the rest still run. A test that needs other processes
 * re-executes the test binary as a helper (VGP_HELPER + vgp_test_spawn), so
 * helpers are real processes with their own address space, as a second
 * application would be.
 *
 * Asserts are typed and print both sides. VGP_WAIT_UNTIL polls a condition
 * with a deadline instead of sleeping a fixed time.
 */
#ifndef VGP_TEST_H
#define VGP_TEST_H

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

typedef void (*vgp_test_fn)(void);
typedef int (*vgp_helper_fn)(int argc, char **argv);

void vgp_test_register(const char *name, vgp_test_fn fn, int timeout_s);
void vgp_helper_register(const char *name, vgp_helper_fn fn);

/* Starts this test binary again as helper `name` with the given arguments
 * (NULL-terminated). Returns the pid. stdout/stderr are inherited. */
pid_t vgp_test_spawn(const char *name, ...);
pid_t vgp_test_spawnv(const char *name, char *const argv[]);

/* Waits for pid and returns its exit status (or 128+signal). */
int vgp_test_wait(pid_t pid);

/* Skips the running test with a reason (counts as passed, printed as SKIP). */
void vgp_test_skip(const char *reason) __attribute__((noreturn));

/* Fails the running test. */
void vgp_test_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 3, 4)));

/* A directory private to this test run, removed afterwards. */
const char *vgp_test_tmpdir(void);

/* Absolute path of the build directory (for tools and libraries). */
const char *vgp_test_build_dir(void);

/* Reads a file into buf, terminated and truncated to len - 1 bytes; an
 * empty string when it cannot be read. */
void vgp_test_read_file(const char *path, char *buf, size_t len);

#define VGP_TEST_TIMEOUT(name, seconds)                                        \
  static void vgp_test_##name(void);                                           \
  __attribute__((constructor)) static void vgp_test_reg_##name(void) {        \
    vgp_test_register(#name, vgp_test_##name, seconds);                        \
  }                                                                            \
  static void vgp_test_##name(void)

#define VGP_TEST(name) VGP_TEST_TIMEOUT(name, 60)

#define VGP_HELPER(name)                                                       \
  static int vgp_helper_##name(int argc, char **argv);                         \
  __attribute__((constructor)) static void vgp_helper_reg_##name(void) {      \
    vgp_helper_register(#name, vgp_helper_##name);                             \
  }                                                                            \
  static int vgp_helper_##name(int argc, char **argv)

#define VGP__ASSERT_CMP(type, fmt, a, op, b)                                   \
  do {                                                                         \
    type vgp__a = (a);                                                         \
    type vgp__b = (b);                                                         \
    if (!(vgp__a op vgp__b))                                                   \
      vgp_test_fail(__FILE__, __LINE__,                                        \
                    "assertion %s %s %s failed: " fmt " vs " fmt, #a, #op, #b, \
                    vgp__a, vgp__b);                                           \
  } while (0)

#define ASSERT_EQ_INT(a, b) VGP__ASSERT_CMP(long long, "%lld", a, ==, b)
#define ASSERT_NE_INT(a, b) VGP__ASSERT_CMP(long long, "%lld", a, !=, b)
#define ASSERT_LT_INT(a, b) VGP__ASSERT_CMP(long long, "%lld", a, <, b)
#define ASSERT_LE_INT(a, b) VGP__ASSERT_CMP(long long, "%lld", a, <=, b)
#define ASSERT_GT_INT(a, b) VGP__ASSERT_CMP(long long, "%lld", a, >, b)
#define ASSERT_GE_INT(a, b) VGP__ASSERT_CMP(long long, "%lld", a, >=, b)
#define ASSERT_EQ_U64(a, b) VGP__ASSERT_CMP(unsigned long long, "%llu", a, ==, b)
#define ASSERT_NE_U64(a, b) VGP__ASSERT_CMP(unsigned long long, "%llu", a, !=, b)
#define ASSERT_LT_U64(a, b) VGP__ASSERT_CMP(unsigned long long, "%llu", a, <, b)
#define ASSERT_LE_U64(a, b) VGP__ASSERT_CMP(unsigned long long, "%llu", a, <=, b)
#define ASSERT_GT_U64(a, b) VGP__ASSERT_CMP(unsigned long long, "%llu", a, >, b)
#define ASSERT_GE_U64(a, b) VGP__ASSERT_CMP(unsigned long long, "%llu", a, >=, b)
#define ASSERT_EQ_DBL(a, b, tol)                                               \
  do {                                                                         \
    double vgp__a = (a), vgp__b = (b), vgp__t = (tol);                         \
    if (!(vgp__a - vgp__b <= vgp__t && vgp__b - vgp__a <= vgp__t))             \
      vgp_test_fail(__FILE__, __LINE__,                                        \
                    "assertion %s ~= %s (+-%g) failed: %g vs %g", #a, #b,     \
                    vgp__t, vgp__a, vgp__b);                                   \
  } while (0)
#define ASSERT_EQ_PTR(a, b) VGP__ASSERT_CMP(const void *, "%p", a, ==, b)
#define ASSERT_NULL(a) ASSERT_EQ_PTR(a, NULL)
#define ASSERT_NOT_NULL(a) VGP__ASSERT_CMP(const void *, "%p", a, !=, NULL)
#define ASSERT_TRUE(c)                                                         \
  do {                                                                         \
    if (!(c))                                                                  \
      vgp_test_fail(__FILE__, __LINE__, "assertion %s failed", #c);           \
  } while (0)
#define ASSERT_FALSE(c) ASSERT_TRUE(!(c))
#define ASSERT_OK(expr) ASSERT_EQ_INT(expr, 0)
#define ASSERT_EQ_STR(a, b)                                                    \
  do {                                                                         \
    const char *vgp__a = (a), *vgp__b = (b);                                   \
    if (vgp__a == NULL || vgp__b == NULL || strcmp(vgp__a, vgp__b) != 0)       \
      vgp_test_fail(__FILE__, __LINE__,                                        \
                    "assertion %s == %s failed: \"%s\" vs \"%s\"", #a, #b,    \
                    vgp__a ? vgp__a : "(null)", vgp__b ? vgp__b : "(null)");  \
  } while (0)
#define ASSERT_CONTAINS(hay, needle)                                           \
  do {                                                                         \
    const char *vgp__h = (hay), *vgp__n = (needle);                            \
    if (vgp__h == NULL || strstr(vgp__h, vgp__n) == NULL)                      \
      vgp_test_fail(__FILE__, __LINE__, "\"%s\" does not contain \"%s\"",     \
                    vgp__h ? vgp__h : "(null)", vgp__n);                       \
  } while (0)

/* Polls cond every 1 ms until it holds or timeout_ms passes; fails the test
 * with the condition's text on timeout. */
#define VGP_WAIT_UNTIL(cond, timeout_ms)                                       \
  do {                                                                         \
    int vgp__ok = 0;                                                           \
    for (long vgp__i = 0; vgp__i < (long)(timeout_ms); vgp__i++) {             \
      if (cond) {                                                              \
        vgp__ok = 1;                                                           \
        break;                                                                 \
      }                                                                        \
      usleep(1000);                                                            \
    }                                                                          \
    if (!vgp__ok && !(cond))                                                   \
      vgp_test_fail(__FILE__, __LINE__, "timed out after %ld ms waiting for %s", \
                    (long)(timeout_ms), #cond);                                \
  } while (0)

#endif
