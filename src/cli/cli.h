/*
 * cli.h - the subcommands of the `vgpool` command.
 *
 * Each subcommand lives in its own cmd_<name>.c and is listed once in the
 * table in vgpool.c. A subcommand returns the process exit status: 0 on
 * success, 1 on a runtime failure, 2 on bad usage (it has printed a message
 * naming what was wrong).
 */
#ifndef VGP_CLI_H
#define VGP_CLI_H

#define VGP_EXIT_OK 0
#define VGP_EXIT_FAILURE 1
#define VGP_EXIT_USAGE 2

int vgp_cmd_demo(int argc, char **argv);
int vgp_cmd_replay(int argc, char **argv);
int vgp_cmd_run(int argc, char **argv);
int vgp_cmd_sim(int argc, char **argv);
int vgp_cmd_top(int argc, char **argv);

/* Directory holding the vgpool executable, for finding the libraries built
 * beside it (the simulator and libvgpool.so). */
const char *vgp_cli_exe_dir(void);

#endif
