// SPDX-License-Identifier: MIT
//
// cmd_key.c — key management from flagctl: `keygen` makes a key pair
// locally (nothing goes to the server), `key add|remove|list` change or
// read the server's keys with signed writes. Key formats, roles and
// parsing all come from proto/keys.h; nothing is re-implemented here.

#include <stdlib.h>
#include <string.h>

#include "cmd_key.h"
#include "output.h"

static const char keygen_usage[] =
    "usage: flagctl keygen --out FILE [--id NAME] [--role ROLE]\n"
    "                      [--scope GLOB] [--json]\n"
    "\n"
    "Creates an Ed25519 key pair, writes the secret key to FILE (mode\n"
    "0600; an existing FILE is never overwritten) and prints the\n"
    "authorized-keys line for it, to add to flagd's authorized keys or\n"
    "with 'flagctl key add'.\n"
    "\n"
    "  --out FILE     where to write the secret key\n"
    "  --id NAME      the key id ([A-Za-z0-9._@-], default $USER)\n"
    "  --role ROLE    admin, operator, reporter or reader, for the printed\n"
    "                 line (default admin)\n"
    "  --scope GLOB   rollouts the key may act on, for the printed line\n"
    "                 (default: all)\n"
    "  --json         print {id, role, scope, public_key, authorized_key,\n"
    "                 file}\n";

int
ctl_cmd_keygen(ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "out", required_argument, NULL, CTL_OPT_VERB_BASE },
		{ "id", required_argument, NULL, CTL_OPT_VERB_BASE + 1 },
		{ "role", required_argument, NULL, CTL_OPT_VERB_BASE + 2 },
		{ "scope", required_argument, NULL, CTL_OPT_VERB_BASE + 3 },
		CTL_COMMON_OPTS,
		{ NULL, 0, NULL, 0 },
	};
	Sluice__V1__Key  key;
	Sluice__V1__Role role  = SLUICE__V1__ROLE__ROLE_ADMIN;
	sl_secret       *k     = NULL;
	const char      *out   = NULL;
	const char      *id    = getenv("USER");
	const char      *scope = "";
	const char      *roles = NULL;
	json_t          *j;
	char             line[512];
	char             pub[64];
	int              o;
	int              ex;
	int              rv;

	sluice__v1__key__init(&key);
	c->usage = keygen_usage;
	ctl_getopt_reset();
	while ((o = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (o == CTL_OPT_VERB_BASE) {
			out = optarg;
		} else if (o == CTL_OPT_VERB_BASE + 1) {
			id = optarg;
		} else if (o == CTL_OPT_VERB_BASE + 2) {
			roles = optarg;
		} else if (o == CTL_OPT_VERB_BASE + 3) {
			scope = optarg;
		} else if ((ex = ctl_common_opt(c, o, optarg, argv)) >= 0) {
			return (ex);
		}
	}
	if ((ex = ctl_operands(c, argc, argv, 0, 0, NULL)) >= 0) {
		return (ex);
	}
	if (out == NULL) {
		return (ctl_usage(c, "missing --out FILE"));
	}
	if (id == NULL || *id == '\0') {
		id = "flagctl";
	}
	if (!sl_key_id_valid(id)) {
		return (ctl_usage(c,
		    "bad key id \"%s\" (1 to 63 of A-Z a-z 0-9 . _ @ -); "
		    "give --id",
		    id));
	}
	if (roles != NULL && sl_role_parse(roles, &role) != SLUICE_OK) {
		return (ctl_usage(c,
		    "bad role \"%s\" (admin, operator, reporter or reader)",
		    roles));
	}
	if ((rv = sl_secret_generate(&k, id)) != SLUICE_OK) {
		return (ctl_fail(
		    c, "cannot generate a key: %s", sluice_strerror(rv)));
	}
	if ((rv = sl_secret_save(k, out)) != SLUICE_OK) {
		sl_secret_free(k);
		if (rv == SLUICE_EEXIST) {
			return (ctl_fail(c,
			    "%s already exists; not "
			    "overwriting it",
			    out));
		}
		return (ctl_fail(
		    c, "cannot write %s: %s", out, sluice_strerror(rv)));
	}
	key.id              = k->id;
	key.public_key.data = k->pk;
	key.public_key.len  = sizeof(k->pk);
	key.role            = role;
	key.scope           = (char *) (uintptr_t) scope;
	line[0]             = '\0';
	rv                  = sl_authkey_format(&key, line, sizeof(line));
	sl_pubkey_base64(k->pk, pub, sizeof(pub));
	if (rv != SLUICE_OK) {
		sl_secret_free(k);
		return (ctl_fail(
		    c, "cannot format the key: %s", sluice_strerror(rv)));
	}
	if (c->json) {
		j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "id", k->id,
		    "role", sl_role_name(role), "scope", scope, "public_key",
		    pub, "authorized_key", line, "file", out);
		sl_secret_free(k);
		return (ctl_end(c, ctl_json_print(j)));
	}
	sl_secret_free(k);
	fprintf(stderr,
	    "flagctl: wrote secret key %s (mode 0600); its authorized-keys "
	    "line:\n",
	    out);
	printf("%s\n", line);
	return (CTL_EXIT_OK);
}

static const char key_usage[] =
    "usage: flagctl key add ROLE ID BASE64PUB [GLOB] [--reason TEXT]\n"
    "       flagctl key remove ID [--reason TEXT]\n"
    "       flagctl key list [--json]\n"
    "\n"
    "Adds, removes or lists the keys flagd accepts. ROLE is admin,\n"
    "operator, reporter or reader; GLOB limits the key to matching\n"
    "rollouts (fnmatch; default all). add and remove are signed writes\n"
    "(an admin key); every change is audited.\n"
    "\n"
    "  --reason TEXT   recorded in the audit log\n"
    "  --json          print the result as JSON\n";

static int
key_write(ctl *c, Sluice__V1__Command *cmd, const char *reason, const char *id,
    const char *done)
{
	Sluice__V1__Reply *rep = NULL;
	json_t            *j;
	char               what[128];
	int                rv;

	snprintf(what, sizeof(what), "key \"%s\"", id);
	if ((rv = ctl_write(c, cmd, reason, &rep)) != SLUICE_OK) {
		return (ctl_fail_call(c, rv, rep, what));
	}
	if (c->json) {
		j = json_pack("{s:s, s:s, s:b, s:I}", "id", id, "result", done,
		    "changed", (int) rep->write->changed, "revision",
		    (json_int_t) rep->revision);
		ctl_reply_free(rep);
		return (ctl_end(c, ctl_json_print(j)));
	}
	printf("key %s %s (revision %llu)\n", id,
	    rep->write->changed ? done : "unchanged",
	    (unsigned long long) rep->revision);
	ctl_reply_free(rep);
	return (CTL_EXIT_OK);
}

static int
key_list(ctl *c)
{
	Sluice__V1__Request  req;
	Sluice__V1__ListKeys keys;
	Sluice__V1__Reply   *rep = NULL;
	json_t              *arr;
	char                 pub[64];
	size_t               i;
	int                  rv;

	sluice__v1__request__init(&req);
	sluice__v1__list_keys__init(&keys);
	req.op_case = SLUICE__V1__REQUEST__OP_KEYS;
	req.keys    = &keys;
	if ((rv = ctl_call(c, &req, SLUICE__V1__REPLY__RESULT_KEYS, &rep)) !=
	        SLUICE_OK ||
	    rep->keys == NULL) {
		return (ctl_fail_call(
		    c, rv != SLUICE_OK ? rv : SLUICE_EPROTO, rep, NULL));
	}
	if (c->json) {
		arr = json_array();
		for (i = 0; i < rep->keys->n_keys; i++) {
			ctl_json_push(&arr, ctl_json_key(rep->keys->keys[i]));
		}
		rv = ctl_json_print(
		    ctl_json_listing(rep->revision, "keys", arr));
		ctl_reply_free(rep);
		return (ctl_end(c, rv));
	}
	if (rep->keys->n_keys == 0) {
		printf("no keys\n");
	} else {
		printf("%-9s %-24s %-20s %s\n", "ROLE", "ID", "SCOPE",
		    "PUBLIC KEY");
	}
	for (i = 0; i < rep->keys->n_keys; i++) {
		const Sluice__V1__Key *k = rep->keys->keys[i];

		pub[0] = '\0';
		if (k->public_key.len == 32) {
			sl_pubkey_base64(k->public_key.data, pub, sizeof(pub));
		}
		printf("%-9s %-24s %-20s %s\n", sl_role_name(k->role), k->id,
		    k->scope[0] != '\0' ? k->scope : "*", pub);
	}
	ctl_reply_free(rep);
	return (CTL_EXIT_OK);
}

int
ctl_cmd_key(ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "reason", required_argument, NULL, CTL_OPT_VERB_BASE },
		CTL_COMMON_OPTS,
		{ NULL, 0, NULL, 0 },
	};
	Sluice__V1__Command   cmd;
	Sluice__V1__KeyAdd    add;
	Sluice__V1__KeyRemove rem;
	Sluice__V1__Key       key;
	const char           *reason = NULL;
	const char           *sub;
	char                  line[1024];
	char                  err[256];
	int                   nargs;
	int                   o;
	int                   ex;
	int                   i;

	sluice__v1__command__init(&cmd);
	sluice__v1__key_add__init(&add);
	sluice__v1__key_remove__init(&rem);
	sluice__v1__key__init(&key);
	c->usage = key_usage;
	ctl_getopt_reset();
	while ((o = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (o == CTL_OPT_VERB_BASE) {
			reason = optarg;
		} else if ((ex = ctl_common_opt(c, o, optarg, argv)) >= 0) {
			return (ex);
		}
	}
	if (optind >= argc) {
		return (ctl_usage(c, "missing add, remove or list"));
	}
	sub   = argv[optind++];
	nargs = argc - optind;
	if (strcmp(sub, "list") == 0) {
		c->verb = "key list";
		if ((ex = ctl_operands(c, argc, argv, 0, 0, NULL)) >= 0) {
			return (ex);
		}
		return (key_list(c));
	}
	if (strcmp(sub, "remove") == 0) {
		c->verb = "key remove";
		if ((ex = ctl_operands(c, argc, argv, 1, 1, "ID")) >= 0) {
			return (ex);
		}
		rem.id          = argv[optind];
		cmd.action_case = SLUICE__V1__COMMAND__ACTION_KEY_REMOVE;
		cmd.key_remove  = &rem;
		return (key_write(c, &cmd, reason, argv[optind], "removed"));
	}
	if (strcmp(sub, "add") != 0) {
		return (ctl_usage(
		    c, "unknown subcommand '%s' (add, remove or list)", sub));
	}
	c->verb = "key add";
	if (nargs < 3 || nargs > 4) {
		return (ctl_usage(c, "want ROLE ID BASE64PUB [GLOB]"));
	}
	// The arguments are an authorized-keys line; keys.c parses it, so
	// flagctl accepts exactly what flagd's key file accepts.
	line[0] = '\0';
	for (i = optind; i < argc; i++) {
		if (strlen(line) + strlen(argv[i]) + 2 > sizeof(line)) {
			return (ctl_usage(c, "arguments too long"));
		}
		strcat(line, i > optind ? " " : "");
		strcat(line, argv[i]);
	}
	err[0] = '\0';
	if (sl_authkey_parse(line, &key, err, sizeof(err)) != SLUICE_OK) {
		return (ctl_usage(
		    c, "bad key: %s", err[0] != '\0' ? err : "cannot parse"));
	}
	add.key         = &key;
	cmd.action_case = SLUICE__V1__COMMAND__ACTION_KEY_ADD;
	cmd.key_add     = &add;
	ex = key_write(c, &cmd, reason, argv[optind + 1], "added");
	sl_key_clear(&key);
	return (ex);
}
