/*
 * paths.h - where vgpool keeps its files on a node.
 *
 * The node directory is VGPOOL_ROOT (default /run/vgpool):
 *
 *   <root>/containers/<id>/limits   written once by the agent or vgpool run
 *   <root>/containers/<id>/region   the container's usage record
 *   <root>/node/<device-uuid>       node-wide per-device state
 *
 * When VGPOOL_ROOT is unset and /run/vgpool cannot be created (an ordinary
 * user), the root is $XDG_RUNTIME_DIR/vgpool, else /tmp/vgpool-<uid>, so
 * `vgpool run` works without privileges.
 *
 * Inside a container, libvgpool.so looks for its container directory at
 * VGP_CONTAINER_MOUNT (where the agent mounts it read-only), then at
 * $VGPOOL_CONTAINER_DIR (set by `vgpool run`), then falls back to HAMi's
 * environment variables. The node's per-device state is then at
 * VGP_NODE_MOUNT (where the agent mounts <root>/node beside it), at
 * <root>/node for a $VGPOOL_CONTAINER_DIR of <root>/containers/<id>, and at
 * the node root's node/ otherwise.
 */
#ifndef VGPOOL_PATHS_H
#define VGPOOL_PATHS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VGP_ROOT_DEFAULT "/run/vgpool"
#define VGP_CONTAINER_MOUNT "/run/vgpool/container"
#define VGP_NODE_MOUNT "/run/vgpool/node"
#define VGP_LIMITS_NAME "limits"
#define VGP_REGION_NAME "region"

/* Writes the node root directory into buf (see above), creating it (mode
 * 0755) if `create` is set. Returns 0 or a negative errno. */
int vgp_root_dir(char *buf, size_t len, int create);

#ifdef __cplusplus
}
#endif

#endif
