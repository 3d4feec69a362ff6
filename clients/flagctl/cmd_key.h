/* SPDX-License-Identifier: MIT */
/*
 * cmd_key.h — the flagctl verbs about keys: keygen (local only) and
 * key add / key remove / key list (on the server).
 */
#ifndef CTL_CMD_KEY_H
#define CTL_CMD_KEY_H

#include "ctl.h"

int ctl_cmd_keygen(ctl *c, int argc, char **argv);
/* "key add|remove|list". */
int ctl_cmd_key(ctl *c, int argc, char **argv);

#endif /* CTL_CMD_KEY_H */
