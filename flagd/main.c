// SPDX-License-Identifier: MIT
//
// main.c — flagd's entry point. It only wires: configuration, signals,
// the node (store + change stream + writer), the API and HTTP, then waits
// for a signal and shuts down in the order STYLE.md §8 gives.

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <nng/nng.h>

#include "api.h"
#include "config.h"
#include "http.h"
#include "node.h"

int
main(int argc, char **argv)
{
	flagd_config cfg;
	flagd_node  *node = NULL;
	flagd_api   *api  = NULL;
	sl_http     *http = NULL;
	sigset_t     set;
	int          rv;

	flagd_config_defaults(&cfg);
	// The parse first: it replaces cfg.log_level.
	rv = flagd_config_parse(&cfg, argc, argv);
	if ((rv = sl_daemon_begin(rv, cfg.log_level, &set)) >= 0) {
		flagd_config_fini(&cfg);
		return (rv);
	}
	if ((rv = flagd_node_open(&node, &cfg)) != SLUICE_OK) {
		goto fail;
	}
	if ((rv = flagd_api_open(&api, node, cfg.api_url,
	         (size_t) cfg.api_contexts)) != SLUICE_OK) {
		goto fail;
	}
	if (cfg.http_url[0] != '\0' &&
	    (rv = flagd_http_open(&http, node, cfg.http_url)) != SLUICE_OK) {
		goto fail;
	}
	atomic_store(&flagd_node_metrics(node)->ready, 1);
	sl_log_notice("main.ready",
	    "flagd %llu ready: api %s, changes %s, revision %llu, data %s",
	    (unsigned long long) cfg.node_id, cfg.api_url, cfg.publish_url,
	    (unsigned long long) flagd_store_revision(flagd_node_store(node)),
	    cfg.data_dir);

	(void) sl_signals_wait(&set);

	atomic_store(&flagd_node_metrics(node)->ready, 0);
	flagd_api_stop_listening(api);
	flagd_node_drain(node, cfg.drain_ms);
	// Writes the drain did not see finish are failed now, while the API
	// contexts their replies go to still exist.
	flagd_node_stop(node);
	flagd_api_close(api);
	sl_http_close(http);
	flagd_node_close(node);
	sl_log_notice("main.stop", "stopped cleanly");
	flagd_config_fini(&cfg);
	nng_fini();
	return (0);

fail:
	sl_log_err("main.start", "cannot start: %s", sluice_strerror(rv));
	flagd_node_stop(node);
	flagd_api_close(api);
	sl_http_close(http);
	flagd_node_close(node);
	flagd_config_fini(&cfg);
	return (1);
}
