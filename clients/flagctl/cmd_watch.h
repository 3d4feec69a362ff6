/* SPDX-License-Identifier: MIT */
/*
 * cmd_watch.h — `flagctl watch`: follows flagd's change stream (nng SUB)
 * and prints each change as it arrives, warning about revision gaps.
 */
#ifndef CTL_CMD_WATCH_H
#define CTL_CMD_WATCH_H

#include "ctl.h"

int ctl_cmd_watch(ctl *c, int argc, char **argv);

#endif /* CTL_CMD_WATCH_H */
