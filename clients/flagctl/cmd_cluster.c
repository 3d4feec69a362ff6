// SPDX-License-Identifier: MIT
//
// cmd_cluster.c — `flagctl cluster`: asks the server for the cluster
// (GetCluster), then asks every listed node for its own view, because only
// a node itself knows its role, term, indexes and last leader contact
// exactly. A node that does not answer is shown as unreachable; that is
// information, not a failure of the verb.

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd_cluster.h"
#include "output.h"

#define CLUSTER_NODE_TIMEOUT_MS 2000u

static const char cluster_usage[] =
    "usage: flagctl cluster [--json]\n"
    "       flagctl cluster add ID HOST:RAFTPORT@APIURL [--reason TEXT]\n"
    "       flagctl cluster remove ID [--reason TEXT]\n"
    "\n"
    "Shows the members of the flagd cluster the server belongs to: id,\n"
    "consensus address, API URL, role, term, commit and applied index,\n"
    "and how long ago each follower last heard from the leader. Every node\n"
    "is asked for its own view; a node that does not answer within 2 s is\n"
    "shown as unreachable.\n"
    "\n"
    "add makes a running node a voter: start it first with --join (its\n"
    "--peers listing the cluster and itself); the leader adds it, sends it\n"
    "the log and promotes it once it has caught up. remove takes a voter\n"
    "out of the configuration (stop its process afterwards); removing the\n"
    "leader hands leadership on first, then asks you to run it again.\n"
    "Both are signed writes (an unscoped admin key), audited.\n"
    "\n"
    "  --reason TEXT   recorded in the audit log (add, remove)\n"
    "  --json          one JSON document: leader_id and nodes[], or the\n"
    "                  result of add/remove\n";

// add / remove: one signed, audited write; the node that commits it
// changes the consensus configuration before it answers.
static int
member_write(
    ctl *c, int argc, char **argv, const char *sub, const char *reason)
{
	Sluice__V1__Command      cmd;
	Sluice__V1__MemberAdd    add;
	Sluice__V1__MemberRemove rem;
	Sluice__V1__Reply       *rep = NULL;
	char                     what[64];
	char                     addr[600];
	const char              *at;
	uint64_t                 id;
	bool                     adding = strcmp(sub, "add") == 0;
	int                      ex;
	int                      rv;

	sluice__v1__command__init(&cmd);
	sluice__v1__member_add__init(&add);
	sluice__v1__member_remove__init(&rem);
	c->verb = adding ? "cluster add" : "cluster remove";
	if ((ex = ctl_operands(c, argc, argv, adding ? 2 : 1, adding ? 2 : 1,
	         adding ? "ID HOST:RAFTPORT@APIURL" : "ID")) >= 0) {
		return (ex);
	}
	if (ctl_parse_u64(argv[optind], &id) != 0 || id == 0) {
		return (ctl_usage(
		    c, "node id '%s' is not a positive number", argv[optind]));
	}
	snprintf(what, sizeof(what), "node %llu", (unsigned long long) id);
	if (adding) {
		if (snprintf(addr, sizeof(addr), "%s", argv[optind + 1]) >=
		        (int) sizeof(addr) ||
		    (at = strchr(addr, '@')) == NULL || at == addr ||
		    at[1] == '\0') {
			return (
			    ctl_usage(c, "'%s' is not HOST:RAFTPORT@APIURL",
			        argv[optind + 1]));
		}
		addr[at - addr]  = '\0';
		add.id           = id;
		add.raft_address = addr;
		add.api_url      = addr + (at - addr) + 1;
		cmd.action_case  = SLUICE__V1__COMMAND__ACTION_MEMBER_ADD;
		cmd.member_add   = &add;
		if (!c->json) {
			fprintf(stderr,
			    "flagctl: adding node %llu at %s (api %s); the "
			    "leader waits for it to catch up before it votes "
			    "...\n",
			    (unsigned long long) id, add.raft_address,
			    add.api_url);
		}
	} else {
		rem.id            = id;
		cmd.action_case   = SLUICE__V1__COMMAND__ACTION_MEMBER_REMOVE;
		cmd.member_remove = &rem;
	}
	if ((rv = ctl_write(c, &cmd, reason, &rep)) != SLUICE_OK) {
		return (ctl_fail_call(c, rv, rep, what));
	}
	if (c->json) {
		json_t *j = json_pack("{s:I, s:s, s:I}", "id", (json_int_t) id,
		    "result", adding ? "voter" : "removed", "revision",
		    (json_int_t) rep->revision);
		ctl_reply_free(rep);
		return (ctl_end(c, ctl_json_print(j)));
	}
	printf("node %llu %s (revision %llu)\n", (unsigned long long) id,
	    adding ? "is a voter" : "removed",
	    (unsigned long long) rep->revision);
	ctl_reply_free(rep);
	return (CTL_EXIT_OK);
}

// The answering node's own row of a ClusterInfo, or NULL.
static const Sluice__V1__NodeStatus *
self_row(const Sluice__V1__ClusterInfo *ci)
{
	for (size_t i = 0; i < ci->n_nodes; i++) {
		if (ci->nodes[i]->self) {
			return (ci->nodes[i]);
		}
	}
	return (NULL);
}

// GetCluster on one endpoint; *repp on SLUICE_OK.
static int
ask(const char *url, uint32_t timeout_ms, Sluice__V1__Reply **repp)
{
	Sluice__V1__Request    req;
	Sluice__V1__GetCluster gc;
	Sluice__V1__Reply     *rep = NULL;
	sl_rpc                *r;
	int                    rv;

	if ((rv = sl_rpc_open(&r, url, timeout_ms)) != SLUICE_OK) {
		return (rv);
	}
	sluice__v1__request__init(&req);
	sluice__v1__get_cluster__init(&gc);
	req.op_case = SLUICE__V1__REQUEST__OP_CLUSTER;
	req.cluster = &gc;
	rv          = sl_rpc_call(r, &req, &rep);
	sl_rpc_close(r);
	if (rv == SLUICE_OK &&
	    rep->result_case != SLUICE__V1__REPLY__RESULT_CLUSTER) {
		rv = SLUICE_EPROTO;
	}
	if (rv != SLUICE_OK) {
		ctl_reply_free(rep);
		return (rv);
	}
	*repp = rep;
	return (SLUICE_OK);
}

int
ctl_cmd_cluster(ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "reason", required_argument, NULL, CTL_OPT_VERB_BASE },
		CTL_COMMON_OPTS,
		{ NULL, 0, NULL, 0 },
	};
	const char              *reason = NULL;
	Sluice__V1__Request      req;
	Sluice__V1__GetCluster   gc;
	Sluice__V1__Reply       *rep = NULL;
	Sluice__V1__ClusterInfo *ci;
	json_t                  *nodes = NULL;
	uint64_t                 leader;
	int                      o;
	int                      ex;
	int                      rv;

	c->usage = cluster_usage;
	ctl_getopt_reset();
	while ((o = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (o == CTL_OPT_VERB_BASE) {
			reason = optarg;
		} else if ((ex = ctl_common_opt(c, o, optarg, argv)) >= 0) {
			return (ex);
		}
	}
	if (optind < argc &&
	    (strcmp(argv[optind], "add") == 0 ||
	        strcmp(argv[optind], "remove") == 0)) {
		const char *sub = argv[optind++];
		return (member_write(c, argc, argv, sub, reason));
	}
	if (optind < argc) {
		return (
		    ctl_usage(c, "unexpected argument '%s'", argv[optind]));
	}
	if (reason != NULL) {
		return (ctl_usage(c, "--reason goes with add or remove"));
	}
	sluice__v1__request__init(&req);
	sluice__v1__get_cluster__init(&gc);
	req.op_case = SLUICE__V1__REQUEST__OP_CLUSTER;
	req.cluster = &gc;
	if ((rv = ctl_call(c, &req, SLUICE__V1__REPLY__RESULT_CLUSTER,
	         &rep)) != SLUICE_OK) {
		return (ctl_fail_call(c, rv, rep, "the cluster"));
	}
	ci     = rep->cluster;
	leader = ci->leader_id;
	if (c->json) {
		nodes = json_array();
	} else {
		printf("%-4s %-22s %-28s %-11s %6s %9s %9s %s\n", "ID",
		    "ADDRESS", "API", "ROLE", "TERM", "COMMIT", "APPLIED",
		    "CONTACT");
	}
	for (size_t i = 0; i < ci->n_nodes; i++) {
		const Sluice__V1__NodeStatus *n    = ci->nodes[i];
		Sluice__V1__Reply            *mine = NULL;
		const Sluice__V1__NodeStatus *s    = NULL;
		char                          contact[32];

		if (ask(n->api_url, CLUSTER_NODE_TIMEOUT_MS, &mine) ==
		    SLUICE_OK) {
			s = self_row(mine->cluster);
			if (leader == 0) {
				leader = mine->cluster->leader_id;
			}
		}
		if (s == NULL) {
			snprintf(contact, sizeof(contact), "-");
		} else if (strcmp(s->role, "leader") == 0) {
			snprintf(contact, sizeof(contact), "(leader)");
		} else if (s->last_contact_ms == 0) {
			snprintf(contact, sizeof(contact), "never");
		} else {
			snprintf(contact, sizeof(contact), "%llu ms ago",
			    (unsigned long long) s->last_contact_ms);
		}
		if (c->json) {
			json_t *x = json_pack("{s:I, s:s, s:s, s:b}", "id",
			    (json_int_t) n->id, "raft_address",
			    n->raft_address, "api_url", n->api_url,
			    "reachable", s != NULL);
			if (x != NULL && s != NULL) {
				json_object_set_new(
				    x, "role", json_string(s->role));
				json_object_set_new(x, "term",
				    json_integer((json_int_t) s->term));
				json_object_set_new(x, "commit_index",
				    json_integer(
				        (json_int_t) s->commit_index));
				json_object_set_new(x, "applied_index",
				    json_integer(
				        (json_int_t) s->applied_index));
				json_object_set_new(x, "last_contact_ms",
				    s->last_contact_ms == 0
				        ? json_null()
				        : json_integer((
				              json_int_t) s->last_contact_ms));
			} else if (x != NULL) {
				json_object_set_new(
				    x, "role", json_string("unreachable"));
			}
			if (x != NULL) {
				json_array_append_new(nodes, x);
			}
		} else if (s != NULL) {
			printf(
			    "%-4llu %-22s %-28s %-11s %6llu %9llu %9llu %s\n",
			    (unsigned long long) n->id, n->raft_address,
			    n->api_url, s->role, (unsigned long long) s->term,
			    (unsigned long long) s->commit_index,
			    (unsigned long long) s->applied_index, contact);
		} else {
			printf("%-4llu %-22s %-28s %-11s %6s %9s %9s %s\n",
			    (unsigned long long) n->id, n->raft_address,
			    n->api_url, "unreachable", "-", "-", "-", contact);
		}
		ctl_reply_free(mine);
	}
	if (c->json) {
		json_t *doc = json_pack("{s:I, s:o*}", "leader_id",
		    (json_int_t) leader, "nodes", nodes);
		ctl_reply_free(rep);
		if (ctl_json_print(doc) != SLUICE_OK) {
			return (ctl_fail(c, "out of memory"));
		}
		return (CTL_EXIT_OK);
	}
	if (leader == 0) {
		printf("no leader: writes are refused until a majority of the "
		       "voters can elect one\n");
	}
	ctl_reply_free(rep);
	return (CTL_EXIT_OK);
}
