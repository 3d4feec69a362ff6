/* SPDX-License-Identifier: MIT */
/*
 * cmd_cluster.h — `flagctl cluster`: the voters of a replicated flagd, with
 * each node's own view of its role, term, commit and applied index and
 * leader contact. Takes the verb's own argv and returns the exit code.
 */
#ifndef CTL_CMD_CLUSTER_H
#define CTL_CMD_CLUSTER_H

#include "ctl.h"

int ctl_cmd_cluster(ctl *c, int argc, char **argv);

#endif /* CTL_CMD_CLUSTER_H */
