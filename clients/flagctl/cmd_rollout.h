/* SPDX-License-Identifier: MIT */
/*
 * cmd_rollout.h — the flagctl verbs about rollouts: apply, diff, export,
 * list, status, get, promote, rollback, pause, resume, revert. Each takes
 * the verb's own argv (argv[0] is the verb) and returns the exit code.
 */
#ifndef CTL_CMD_ROLLOUT_H
#define CTL_CMD_ROLLOUT_H

#include "ctl.h"

int ctl_cmd_apply(ctl *c, int argc, char **argv);
int ctl_cmd_diff(ctl *c, int argc, char **argv);
int ctl_cmd_export(ctl *c, int argc, char **argv);
int ctl_cmd_list(ctl *c, int argc, char **argv);
int ctl_cmd_status(ctl *c, int argc, char **argv);
int ctl_cmd_get(ctl *c, int argc, char **argv);
int ctl_cmd_promote(ctl *c, int argc, char **argv);
int ctl_cmd_rollback(ctl *c, int argc, char **argv);
int ctl_cmd_pause(ctl *c, int argc, char **argv);
int ctl_cmd_resume(ctl *c, int argc, char **argv);
int ctl_cmd_revert(ctl *c, int argc, char **argv);

#endif /* CTL_CMD_ROLLOUT_H */
