/* SPDX-License-Identifier: MIT */
/*
 * report.h — libsluice's side of metric reports: a REQ socket to
 * gatekeeper and the client's secret key, owned by the client (client.c
 * opens and closes it with the client). sluice_report_send() in report.c
 * builds, signs and sends a report and reads the verdict.
 */
#ifndef SL_REPORT_H
#define SL_REPORT_H

#include "sl.h"

typedef struct sl_reporter sl_reporter;

/*
 * Loads key_file and prepares a connection to url (dialled lazily, in
 * the background). EINVAL (no key file), the key loader's codes, ENOMEM,
 * EINTERNAL.
 */
int  sl_reporter_open(sl_reporter **rp, const char *url, const char *key_file,
     uint32_t timeout_ms) SLUICE_NODISCARD;
void sl_reporter_close(sl_reporter *r); /* NULL is a no-op */

/* The client's reporter, or NULL (client.c). */
struct sluice_client;
sl_reporter *sl_client_reporter(struct sluice_client *c);

/* Sends a packed GkRequest and returns the packed GkReply (malloc'd). */
int sl_reporter_call(sl_reporter *r, const void *req, size_t len,
    uint8_t **replyp, size_t *replylenp) SLUICE_NODISCARD;

#endif /* SL_REPORT_H */
