/* SPDX-License-Identifier: MIT */
/*
 * cmd_clients.h — `flagctl clients` (the live libsluice clients and the
 * revision each has applied) and `flagctl wait --revision R` (block until
 * they all have it). Both ask every endpoint of --server: flagd keeps
 * client acks per node.
 */
#ifndef CTL_CMD_CLIENTS_H
#define CTL_CMD_CLIENTS_H

#include "ctl.h"

int ctl_cmd_clients(ctl *c, int argc, char **argv);
int ctl_cmd_wait(ctl *c, int argc, char **argv);

#endif /* CTL_CMD_CLIENTS_H */
