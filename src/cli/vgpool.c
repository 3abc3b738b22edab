/*
 * vgpool.c - entry point of the `vgpool` command: dispatches subcommands.
 */
#include <limits.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

struct vgp_subcommand {
  const char *name;
  int (*fn)(int argc, char **argv);
  const char *summary;
};

static const struct vgp_subcommand vgp_subcommands[] = {
  {"demo", vgp_cmd_demo, "show three workloads sharing one simulated GPU (no GPU needed)"},
  {"replay", vgp_cmd_replay, "replay a cluster trace through placement policies"},
  {"run", vgp_cmd_run, "run a command with a GPU memory quota, compute share and priority"},
  {"sim", vgp_cmd_sim, "show, reset or select the simulated GPU node"},
  {"top", vgp_cmd_top, "show GPUs, containers, their usage, limits and processes"},
};

static void vgp_usage(FILE *out) {
  fprintf(out, "usage: vgpool <command> [options]\n\ncommands:\n");
  for (size_t i = 0; i < sizeof(vgp_subcommands) / sizeof(vgp_subcommands[0]); i++)
    fprintf(out, "  %-8s %s\n", vgp_subcommands[i].name, vgp_subcommands[i].summary);
  fprintf(out, "\n'vgpool <command> --help' describes a command's options.\n");
}

const char *vgp_cli_exe_dir(void) {
  static char dir[PATH_MAX];
  if (dir[0] == '\0') {
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n < 0)
      return ".";
    exe[n] = '\0';
    snprintf(dir, sizeof(dir), "%s", dirname(exe));
  }
  return dir;
}

int main(int argc, char **argv) {
  if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
      strcmp(argv[1], "help") == 0) {
    vgp_usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? VGP_EXIT_USAGE : VGP_EXIT_OK;
  }
  for (size_t i = 0; i < sizeof(vgp_subcommands) / sizeof(vgp_subcommands[0]); i++)
    if (strcmp(argv[1], vgp_subcommands[i].name) == 0)
      return vgp_subcommands[i].fn(argc - 1, argv + 1);
  fprintf(stderr, "vgpool: unknown command '%s'\n\n", argv[1]);
  vgp_usage(stderr);
  return VGP_EXIT_USAGE;
}
