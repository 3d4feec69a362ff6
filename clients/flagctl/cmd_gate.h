/* SPDX-License-Identifier: MIT */
/*
 * cmd_gate.h — `flagctl gate status|evidence|report`: gatekeeper's view
 * of each rollout's gate, the reports behind a decision, and sending a
 * signed metric report (for scripts and tests).
 */
#ifndef CTL_CMD_GATE_H
#define CTL_CMD_GATE_H

#include "ctl.h"

int ctl_cmd_gate(ctl *c, int argc, char **argv);

#endif /* CTL_CMD_GATE_H */
