/* SPDX-License-Identifier: MIT */
/*
 * main.c — gatekeeper's entry point. It only wires: configuration,
 * signals, the core (database, flagd client, tracker), the API and HTTP,
 * then waits for a signal and shuts down in the order STYLE.md §8 gives.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <nng/nng.h>

#include "api.h"
#include "config.h"
#include "core.h"
#include "http.h"

int
main(int argc, char **argv)
{
	gk_config  cfg;
	gk_options o    = { 0 };
	gk_core   *core = NULL;
	gk_api    *api  = NULL;
	sl_http   *http = NULL;
	sigset_t   set;
	int        rv;

	gk_config_defaults(&cfg);
	// The parse first: it replaces cfg.log_level.
	rv = gk_config_parse(&cfg, argc, argv);
	if ((rv = sl_daemon_begin(rv, cfg.log_level, &set)) >= 0) {
		gk_config_fini(&cfg);
		return (rv);
	}
	o.flagd    = cfg.flagd;
	o.key_file = cfg.key_file;
	o.data_dir = cfg.data_dir;
	o.skew_ms  = cfg.skew_ms;
	o.tick_ms  = (uint32_t) cfg.tick_ms;
	if ((rv = gk_core_open(&core, &o)) != SLUICE_OK ||
	    (rv = gk_api_open(&api, core, cfg.api_url,
	         (size_t) cfg.contexts)) != SLUICE_OK) {
		goto fail;
	}
	if (cfg.http_url[0] != '\0' &&
	    (rv = gk_http_open(&http, core, cfg.http_url)) != SLUICE_OK) {
		goto fail;
	}
	atomic_store(&core->m.ready, 1);
	sl_log_notice("main.ready",
	    "gatekeeper ready: api %s, flagd %s, data %s", cfg.api_url,
	    cfg.flagd, cfg.data_dir);

	(void) sl_signals_wait(&set);

	atomic_store(&core->m.ready, 0);
	gk_api_stop_listening(api);
	gk_api_close(api); // the requests in hand are answered first
	sl_http_close(http);
	gk_core_close(core);
	sl_log_notice("main.stop", "stopped cleanly");
	gk_config_fini(&cfg);
	nng_fini();
	return (0);

fail:
	sl_log_err("main.start", "cannot start: %s", sluice_strerror(rv));
	gk_api_close(api);
	sl_http_close(http);
	gk_core_close(core);
	gk_config_fini(&cfg);
	return (1);
}
