/*
 * test_burn.c - vgpool-burn against the simulated driver: a saturating burn
 * keeps the device busy at the rate its kernel length allows, an open-loop
 * burn gets the rate it asks for and counts queueing in its latencies, the
 * self-test checks every kernel's result, --memory is really allocated, and
 * bad command lines are refused by name.
 *
 * The simulated engine runs kernels on a virtual timeline, so achieved rates
 * do not depend on how fast this machine is; the bounds are still loose
 * because wall time (and thus the start and end of a run) does.
 */
#include <unistd.h>

#include "vgp_test.h"
#include "work_run.h"

static struct vgp_wt_result res;

VGP_TEST_TIMEOUT(saturate_keeps_the_device_busy, 60) {
  vgp_wt_use_node("1xH100-80GB", NULL);
  /* 20 ms of queued work rides out scheduling hiccups of a loaded host. */
  vgp_wt_run(&res, "vgpool-burn", "--saturate", "--kernel-us", "1000", "--in-flight", "20",
             "--duration", "1.5", "--json", NULL);
  VGP_WT_EXPECT_STATUS(&res, 0);
  double busy = vgp_wt_json_num(res.out, "busy");
  double kps = vgp_wt_json_num(res.out, "kernels_per_s");
  double kernel_ms = vgp_wt_json_num(res.out, "kernel_ms_mean");
  /* One wave of 1 ms per kernel: at most 1000 kernels/s, and a saturating
   * burn must get close to that. */
  ASSERT_TRUE(busy > 0.8 && busy <= 1.01);
  ASSERT_TRUE(kps > 800 && kps < 1010);
  ASSERT_EQ_DBL(kernel_ms, 1.0, 0.05);
  ASSERT_TRUE(vgp_wt_json_num(res.out, "kernels") >= 1000);
  char mode[32];
  ASSERT_EQ_STR(vgp_wt_json_str(res.out, "mode", mode, sizeof(mode)), "saturate");
}

VGP_TEST_TIMEOUT(kernel_length_sets_the_rate, 60) {
  /* Short kernels: 200 us each, so about 5000 per second. */
  vgp_wt_use_node("1xH100-80GB", NULL);
  vgp_wt_run(&res, "vgpool-burn", "--kernel-us", "200", "--in-flight", "100", "--duration", "1",
             "--json", NULL);
  VGP_WT_EXPECT_STATUS(&res, 0);
  double kps = vgp_wt_json_num(res.out, "kernels_per_s");
  ASSERT_TRUE(kps > 4000 && kps < 5050);
  ASSERT_TRUE(vgp_wt_json_num(res.out, "busy") > 0.8);
}

VGP_TEST_TIMEOUT(blocks_beyond_one_wave_take_longer, 60) {
  /* An H100 holds 132 SMs x 16 blocks of 128 threads at once; twice that
   * many blocks run in two waves, so each kernel takes twice as long. */
  vgp_wt_use_node("1xH100-80GB", NULL);
  vgp_wt_run(&res, "vgpool-burn", "--kernel-us", "500", "--blocks", "4224", "--threads", "128",
             "--duration", "0.5", "--json", NULL);
  VGP_WT_EXPECT_STATUS(&res, 0);
  ASSERT_EQ_DBL(vgp_wt_json_num(res.out, "kernel_ms_mean"), 1.0, 0.05);
}

VGP_TEST_TIMEOUT(open_loop_rate_is_achieved, 60) {
  vgp_wt_use_node("1xH100-80GB", NULL);
  vgp_wt_run(&res, "vgpool-burn", "--rate", "200", "--kernel-us", "500", "--duration", "1.5",
             "--json", NULL);
  VGP_WT_EXPECT_STATUS(&res, 0);
  double kps = vgp_wt_json_num(res.out, "kernels_per_s");
  double busy = vgp_wt_json_num(res.out, "busy");
  double p50 = vgp_wt_json_num(res.out, "p50");
  ASSERT_TRUE(kps > 160 && kps < 240);
  ASSERT_TRUE(vgp_wt_json_num(res.out, "kernels") >= 290 &&
              vgp_wt_json_num(res.out, "kernels") <= 301);
  /* 200/s x 0.5 ms = 10% of the device. */
  ASSERT_TRUE(busy > 0.05 && busy < 0.2);
  /* A kernel cannot complete before it has run. */
  ASSERT_TRUE(p50 >= 500 && p50 < 100000);
}

VGP_TEST_TIMEOUT(poisson_arrivals_average_the_rate, 60) {
  vgp_wt_use_node("1xH100-80GB", NULL);
  vgp_wt_run(&res, "vgpool-burn", "--rate", "400", "--poisson", "--seed", "7", "--kernel-us",
             "100", "--duration", "1.5", "--json", NULL);
  VGP_WT_EXPECT_STATUS(&res, 0);
  /* 600 arrivals expected; a Poisson count has a standard deviation of
   * about 25 here. */
  double n = vgp_wt_json_num(res.out, "kernels");
  ASSERT_TRUE(n > 450 && n < 750);
  char mode[32];
  ASSERT_EQ_STR(vgp_wt_json_str(res.out, "mode", mode, sizeof(mode)), "poisson");
}

VGP_TEST_TIMEOUT(overload_shows_in_latency_not_in_offered_load, 60) {
  /* 4000 kernels/s of 1 ms each for 0.3 s: the device can do 1000/s, so the
   * 1200 kernels take 1.2 s and the late ones wait most of a second. An
   * open-loop tool must report that wait, not slow down its arrivals. */
  vgp_wt_use_node("1xH100-80GB", NULL);
  vgp_wt_run(&res, "vgpool-burn", "--rate", "4000", "--kernel-us", "1000", "--duration", "0.3",
             "--json", NULL);
  VGP_WT_EXPECT_STATUS(&res, 0);
  ASSERT_TRUE(vgp_wt_json_num(res.out, "kernels") >= 1190);
  ASSERT_TRUE(vgp_wt_json_num(res.out, "p99") > 500000);
  ASSERT_TRUE(vgp_wt_json_num(res.out, "max") >= vgp_wt_json_num(res.out, "p99"));
  /* The device cannot go faster than its kernels allow. */
  ASSERT_TRUE(vgp_wt_json_num(res.out, "wall_s") >= 1.19);
  ASSERT_TRUE(vgp_wt_json_num(res.out, "kernels_per_s") < 1010);
}

VGP_TEST_TIMEOUT(human_summary_names_the_figures, 60) {
  vgp_wt_use_node("1xH100-80GB", NULL);
  vgp_wt_run(&res, "vgpool-burn", "--kernel-us", "100", "--duration", "0.2", NULL);
  VGP_WT_EXPECT_STATUS(&res, 0);
  ASSERT_CONTAINS(res.out, "NVIDIA H100 80GB HBM3");
  ASSERT_CONTAINS(res.out, "kernels");
  ASSERT_CONTAINS(res.out, "busy");
  ASSERT_CONTAINS(res.out, "p99");
}

VGP_TEST_TIMEOUT(selftest_checks_every_kernel, 60) {
  vgp_wt_use_node("1xH100-80GB", NULL);
  vgp_wt_run(&res, "vgpool-burn", "--selftest", NULL);
  VGP_WT_EXPECT_STATUS(&res, 0);
  ASSERT_CONTAINS(res.out, "vgpool_fill_u32                      ok");
  ASSERT_CONTAINS(res.out, "vgpool_copy (aligned)                ok");
  ASSERT_CONTAINS(res.out, "vgpool_copy (unaligned)              ok");
  ASSERT_CONTAINS(res.out, "vgpool_sum_u32                       ok");
  ASSERT_CONTAINS(res.out, "vgpool_axpy_f32                      ok");
  ASSERT_CONTAINS(res.out, "vgpool_spin                          ok");
  ASSERT_CONTAINS(res.out, "all kernels ok");
}

VGP_TEST_TIMEOUT(selftest_runs_on_another_model_and_device, 60) {
  vgp_wt_use_node("1xH100-80GB,1xT4", NULL);
  vgp_wt_run(&res, "vgpool-burn", "--device", "1", "--selftest", NULL);
  VGP_WT_EXPECT_STATUS(&res, 0);
  ASSERT_CONTAINS(res.out, "all kernels ok on device 1 (Tesla T4)");
}

VGP_TEST_TIMEOUT(memory_is_allocated_against_the_device, 60) {
  /* 2 GiB board, 512 MiB of it taken by the context: 512 MiB fits, 1.6 GiB
   * does not, and the failure is out-of-memory (3) with the call named. */
  vgp_wt_use_node(NULL, "[device]\nmodel = H100-80GB\nmemory = 2GiB\n");
  vgp_wt_run(&res, "vgpool-burn", "--memory", "512MiB", "--kernel-us", "100", "--duration", "0.2",
             "--json", NULL);
  VGP_WT_EXPECT_STATUS(&res, 0);
  ASSERT_EQ_U64((uint64_t)vgp_wt_json_num(res.out, "memory_bytes"), 512ull << 20);

  vgp_wt_run(&res, "vgpool-burn", "--memory", "1.6GiB", "--duration", "0.2", NULL);
  VGP_WT_EXPECT_STATUS(&res, 3);
  ASSERT_CONTAINS(res.err, "cuMemAlloc_v2(1.60 GiB) failed: CUDA_ERROR_OUT_OF_MEMORY");
}

VGP_TEST_TIMEOUT(both_resolvers_work, 60) {
  char how[64];
  vgp_wt_use_node("1xH100-80GB", NULL);
  vgp_wt_run(&res, "vgpool-burn", "--kernel-us", "50", "--duration", "0.1", "--json", NULL);
  VGP_WT_EXPECT_STATUS(&res, 0);
  ASSERT_EQ_STR(vgp_wt_json_str(res.out, "resolver", how, sizeof(how)), "cuGetProcAddress_v2");
  ASSERT_EQ_INT((long long)vgp_wt_json_num(res.out, "driver_version"), 13000);

  vgp_wt_env("VGPOOL_WORK_RESOLVE", "dlsym");
  vgp_wt_run(&res, "vgpool-burn", "--kernel-us", "50", "--duration", "0.1", "--json", NULL);
  VGP_WT_EXPECT_STATUS(&res, 0);
  ASSERT_EQ_STR(vgp_wt_json_str(res.out, "resolver", how, sizeof(how)), "dlsym");
}

VGP_TEST_TIMEOUT(bad_options_are_named_and_exit_2, 60) {
  static const struct {
    const char *args[4];
    const char *message;
  } cases[] = {
    {{"--bogus", NULL}, "unknown option '--bogus'"},
    {{"--memory", "4XB", NULL}, "--memory: invalid size '4XB'"},
    {{"--rate", NULL}, "option '--rate' needs a value"},
    {{"--rate=fast", NULL}, "--rate: invalid number 'fast'"},
    {{"--kernel-us", "-3", NULL}, "--kernel-us: '-3' is out of range"},
    {{"--threads", "2048", NULL}, "--threads: '2048' is out of range"},
    {{"--duration", "nan", NULL}, "--duration: invalid number 'nan'"},
    {{"--json=yes", NULL}, "option '--json' takes no value"},
    {{"stray", NULL}, "unexpected argument 'stray'"},
    {{"--saturate", "--rate", "10", NULL}, "--saturate and --rate exclude each other"},
    {{"--poisson", NULL}, "--poisson needs --rate"},
  };
  vgp_wt_use_node("1xH100-80GB", NULL);
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    const char *const *a = cases[i].args;
    vgp_wt_run(&res, "vgpool-burn", a[0], a[1], a[2], a[3], NULL);
    VGP_WT_EXPECT_STATUS(&res, 2);
    ASSERT_CONTAINS(res.err, cases[i].message);
    ASSERT_CONTAINS(res.err, "vgpool-burn: ");
  }
}

VGP_TEST_TIMEOUT(help_and_missing_device, 60) {
  vgp_wt_use_node("1xH100-80GB", NULL);
  vgp_wt_run(&res, "vgpool-burn", "--help", NULL);
  VGP_WT_EXPECT_STATUS(&res, 0);
  ASSERT_CONTAINS(res.out, "usage: vgpool-burn");
  ASSERT_CONTAINS(res.out, "--saturate");
  vgp_wt_run(&res, "vgpool-burn", "-h", NULL);
  VGP_WT_EXPECT_STATUS(&res, 0);

  vgp_wt_run(&res, "vgpool-burn", "--device", "3", "--duration", "0.1", NULL);
  VGP_WT_EXPECT_STATUS(&res, 1);
  ASSERT_CONTAINS(res.err, "--device 3: no such device (the driver has 1)");
}

VGP_TEST_TIMEOUT(no_driver_exits_5, 60) {
  /* With nothing on LD_LIBRARY_PATH the tool finds no driver, unless the
   * machine has one installed system-wide (a GPU machine), where it runs. */
  char empty[512];
  snprintf(empty, sizeof(empty), "%s/empty", vgp_test_tmpdir());
  vgp_wt_use_node("1xH100-80GB", NULL);
  vgp_wt_env("LD_LIBRARY_PATH", empty);
  vgp_wt_run(&res, "vgpool-burn", "--kernel-us", "1", "--duration", "0.01", NULL);
  if (res.status == 0)
    vgp_test_skip("this machine has a CUDA driver on the default library path");
  VGP_WT_EXPECT_STATUS(&res, 5);
  ASSERT_CONTAINS(res.err, "vgpool-burn: cannot load the CUDA driver");
  ASSERT_CONTAINS(res.err, "LD_LIBRARY_PATH=<build>/src/sim");
}
