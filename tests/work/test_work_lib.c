/*
 * test_work_lib.c - unit tests of the workloads' shared module
 * (src/work/work.c): option parsing, value parsers, percentiles and the
 * reservoir, exit codes, and the embedded copy of kernels.ptx.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "vgp_test.h"
#include "work.h"
#include "work_run.h"

enum { O_HELP = 1, O_SIZE, O_FLAG };

static const struct vgp_work_opt opts[] = {
  {"help", O_HELP, 0},
  {"size", O_SIZE, 1},
  {"flag", O_FLAG, 0},
  {NULL, 0, 0},
};

static int next(struct vgp_work_args *it, const char **val) {
  return vgp_work_getopt(it, opts, val);
}

VGP_TEST(getopt_accepts_both_value_forms) {
  char *argv[] = {"prog", "--size", "4GiB", "--flag", "--size=1k", "-h", NULL};
  struct vgp_work_args it;
  const char *v = NULL;
  vgp_work_args_init(&it, 6, argv);
  ASSERT_EQ_INT(next(&it, &v), O_SIZE);
  ASSERT_EQ_STR(v, "4GiB");
  ASSERT_EQ_INT(next(&it, &v), O_FLAG);
  ASSERT_NULL(v);
  ASSERT_EQ_INT(next(&it, &v), O_SIZE);
  ASSERT_EQ_STR(v, "1k");
  ASSERT_EQ_INT(next(&it, &v), O_HELP);
  ASSERT_EQ_INT(next(&it, &v), 0);
  ASSERT_EQ_INT(next(&it, &v), 0);
}

VGP_TEST(getopt_refuses_by_token) {
  const char *v;
  struct vgp_work_args it;
  char *unknown[] = {"prog", "--sizes", "1", NULL};
  char *missing[] = {"prog", "--size", NULL};
  char *extra[] = {"prog", "--flag=1", NULL};
  char *stray[] = {"prog", "file", NULL};
  char *dashes[] = {"prog", "--", NULL};
  char *prefix[] = {"prog", "--siz", "1", NULL};

  vgp_work_args_init(&it, 3, unknown);
  ASSERT_EQ_INT(next(&it, &v), -EINVAL);
  vgp_work_args_init(&it, 2, missing);
  ASSERT_EQ_INT(next(&it, &v), -EINVAL);
  vgp_work_args_init(&it, 2, extra);
  ASSERT_EQ_INT(next(&it, &v), -EINVAL);
  vgp_work_args_init(&it, 2, stray);
  ASSERT_EQ_INT(next(&it, &v), -EINVAL);
  vgp_work_args_init(&it, 2, dashes);
  ASSERT_EQ_INT(next(&it, &v), -EINVAL);
  /* No abbreviations: a prefix is not an option. */
  vgp_work_args_init(&it, 3, prefix);
  ASSERT_EQ_INT(next(&it, &v), -EINVAL);
}

VGP_TEST(value_parsers_leave_output_untouched_on_error) {
  uint64_t u = 42;
  double d = 4.5;
  ASSERT_EQ_INT(vgp_work_parse_size("x", "12parsecs", &u), -EINVAL);
  ASSERT_EQ_INT(vgp_work_parse_uint("x", "-1", 0, 10, &u), -EINVAL);
  ASSERT_EQ_INT(vgp_work_parse_uint("x", "11", 0, 10, &u), -ERANGE);
  ASSERT_EQ_U64(u, 42);
  ASSERT_EQ_INT(vgp_work_parse_double("x", "inf", 0, 10, &d), -EINVAL);
  ASSERT_EQ_INT(vgp_work_parse_double("x", "nan", 0, 10, &d), -EINVAL);
  ASSERT_EQ_INT(vgp_work_parse_double("x", "0x10", 0, 100, &d), -EINVAL);
  ASSERT_EQ_INT(vgp_work_parse_double("x", " 1", 0, 10, &d), -EINVAL);
  ASSERT_EQ_INT(vgp_work_parse_double("x", "1s", 0, 10, &d), -EINVAL);
  ASSERT_EQ_INT(vgp_work_parse_double("x", "", 0, 10, &d), -EINVAL);
  ASSERT_EQ_INT(vgp_work_parse_double("x", "11", 0, 10, &d), -ERANGE);
  ASSERT_EQ_DBL(d, 4.5, 0);

  ASSERT_OK(vgp_work_parse_size("x", "1.5GiB", &u));
  ASSERT_EQ_U64(u, 3ull << 29);
  ASSERT_OK(vgp_work_parse_double("x", "2.5e-1", 0, 10, &d));
  ASSERT_EQ_DBL(d, 0.25, 0);
}

VGP_TEST(exit_codes_follow_the_errno_convention) {
  ASSERT_EQ_INT(vgp_work_exit_code(0), VGP_WORK_EXIT_OK);
  ASSERT_EQ_INT(vgp_work_exit_code(-ENOSPC), 3);
  ASSERT_EQ_INT(vgp_work_exit_code(-EINVAL), 2);
  ASSERT_EQ_INT(vgp_work_exit_code(-ERANGE), 2);
  ASSERT_EQ_INT(vgp_work_exit_code(-EBADMSG), 4);
  ASSERT_EQ_INT(vgp_work_exit_code(-ELIBACC), 5);
  ASSERT_EQ_INT(vgp_work_exit_code(-EIO), 1);
  ASSERT_EQ_INT(vgp_work_exit_code(-ENOMEM), 1);
  ASSERT_EQ_INT(vgp_work_exit_code(-ENODEV), 1);
}

VGP_TEST(percentiles_are_nearest_rank) {
  struct vgp_work_samples s;
  ASSERT_OK(vgp_work_samples_init(&s, 1000));
  ASSERT_EQ_U64(vgp_work_samples_percentile(&s, 50), 0);
  /* 1..100 in a scrambled order. */
  for (uint64_t i = 0; i < 100; i++)
    vgp_work_samples_add(&s, (i * 37) % 100 + 1);
  ASSERT_EQ_U64(vgp_work_samples_percentile(&s, 0), 1);
  ASSERT_EQ_U64(vgp_work_samples_percentile(&s, 50), 50);
  ASSERT_EQ_U64(vgp_work_samples_percentile(&s, 90), 90);
  ASSERT_EQ_U64(vgp_work_samples_percentile(&s, 99), 99);
  ASSERT_EQ_U64(vgp_work_samples_percentile(&s, 99.5), 100);
  ASSERT_EQ_U64(vgp_work_samples_percentile(&s, 100), 100);
  ASSERT_EQ_U64(s.max, 100);
  ASSERT_EQ_U64(s.sum, 5050);
  /* Adding after a query re-sorts. */
  vgp_work_samples_add(&s, 0);
  ASSERT_EQ_U64(vgp_work_samples_percentile(&s, 0), 0);
  vgp_work_samples_free(&s);
}

VGP_TEST(reservoir_bounds_memory_and_stays_unbiased) {
  struct vgp_work_samples s;
  ASSERT_OK(vgp_work_samples_init(&s, 1000));
  /* 100000 uniform values in [0, 100000): the kept 1000 must still put the
   * median near 50000 (the standard error here is about 1600). */
  for (uint64_t i = 0; i < 100000; i++)
    vgp_work_samples_add(&s, (i * 7919) % 100000);
  ASSERT_EQ_U64(s.n, 1000);
  ASSERT_EQ_U64(s.count, 100000);
  ASSERT_EQ_U64(s.max, 99999);
  uint64_t p50 = vgp_work_samples_percentile(&s, 50);
  ASSERT_TRUE(p50 > 40000 && p50 < 60000);
  vgp_work_samples_free(&s);
  ASSERT_EQ_INT(vgp_work_samples_init(&s, 0), -EINVAL);
}

VGP_TEST(rand_is_deterministic_and_never_stuck) {
  uint64_t a = 5, b = 5, z = 0;
  for (int i = 0; i < 10; i++)
    ASSERT_EQ_U64(vgp_work_rand(&a), vgp_work_rand(&b));
  ASSERT_NE_U64(vgp_work_rand(&z), vgp_work_rand(&z));
}

VGP_TEST(embedded_ptx_is_the_source_file) {
  static char text[65536];
  char path[512];
  const char *src = getenv("VGPOOL_SOURCE_DIR");
  snprintf(path, sizeof(path), "%s/src/work/kernels.ptx", src ? src : "..");
  vgp_test_read_file(path, text, sizeof(text));
  ASSERT_GT_U64(strlen(text), 1000);
  ASSERT_EQ_U64(vgp_work_kernels_ptx_len, strlen(text));
  ASSERT_EQ_U64(strlen(vgp_work_kernels_ptx), vgp_work_kernels_ptx_len);
  ASSERT_TRUE(memcmp(vgp_work_kernels_ptx, text, vgp_work_kernels_ptx_len) == 0);
}

