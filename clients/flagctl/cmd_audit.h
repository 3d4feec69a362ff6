/* SPDX-License-Identifier: MIT */
/*
 * cmd_audit.h — the flagctl verbs over the audit log: history, audit and
 * audit verify. Each takes the verb's own argv and returns the exit code.
 */
#ifndef CTL_CMD_AUDIT_H
#define CTL_CMD_AUDIT_H

#include "ctl.h"

int ctl_cmd_history(ctl *c, int argc, char **argv);
/* Also handles "audit verify". */
int ctl_cmd_audit(ctl *c, int argc, char **argv);

#endif /* CTL_CMD_AUDIT_H */
