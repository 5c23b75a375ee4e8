/*
 * libqtest: start build/qtpm, speak the qtest protocol (docs/qtest.md) and
 * QMP to it. A small library of our own in the spirit of QEMU's.
 *
 * Every helper fails the running test (g_error) on a protocol error, an
 * unexpected FAIL reply, a dead qtpm or a reply slower than the timeout.
 */
#ifndef TESTS_QTEST_LIBQTEST_H
#define TESTS_QTEST_LIBQTEST_H

#include "qemu/osdep.h"
#include <json-glib/json-glib.h>

typedef struct QTestState QTestState;

/* Upper bound on any single reply; only a hung qtpm ever reaches it. */
#define QTEST_REPLY_TIMEOUT_S 60

/* The build's qtpm: next to the test's build tree, else $BUILD/qtpm ("build"). */
char *qtest_qtpm_binary(void);
/* A fresh scratch folder, removed by qtest_quit of the state that owns it. */
char *qtest_scratch_dir(void);

/*
 * Starts qtpm with @args (split like a shell would), adding
 * "-qtest unix:...,server=on,wait=off" and "-qmp unix:...,server=on,wait=off",
 * connects to both and negotiates QMP capabilities.
 */
QTestState *qtest_init(const char *args);
QTestState *qtest_initf(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
/* The same with another binary that speaks qtest and QMP (QEMU itself). */
QTestState *qtest_init_binary(const char *binary, const char *args);
/* Kills qtpm (SIGTERM, then waits) and frees @s. */
void qtest_quit(QTestState *s);
/* Waits for qtpm to exit by itself; returns its wait status. */
int qtest_wait_exit(QTestState *s);
pid_t qtest_pid(QTestState *s);
/* Closes the qtest connection and opens a new one (the next client). */
void qtest_reconnect(QTestState *s);

/* One raw request line (no newline); returns the reply line, newline cut. */
char *qtest_cmd(QTestState *s, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

uint8_t qtest_readb(QTestState *s, uint64_t addr);
uint16_t qtest_readw(QTestState *s, uint64_t addr);
uint32_t qtest_readl(QTestState *s, uint64_t addr);
uint64_t qtest_readq(QTestState *s, uint64_t addr);
void qtest_writeb(QTestState *s, uint64_t addr, uint8_t val);
void qtest_writew(QTestState *s, uint64_t addr, uint16_t val);
void qtest_writel(QTestState *s, uint64_t addr, uint32_t val);
void qtest_writeq(QTestState *s, uint64_t addr, uint64_t val);
/* "read"/"write": @len bytes at consecutive addresses, hex on the wire. */
void qtest_memread(QTestState *s, uint64_t addr, void *buf, size_t len);
void qtest_memwrite(QTestState *s, uint64_t addr, const void *buf, size_t len);
/* The same with base64 ("b64read"/"b64write"). */
void qtest_bufread(QTestState *s, uint64_t addr, void *buf, size_t len);
void qtest_bufwrite(QTestState *s, uint64_t addr, const void *buf, size_t len);
void qtest_memset(QTestState *s, uint64_t addr, uint8_t pattern, size_t len);

/* "irq_intercept_in @path"; afterwards qtest_get_irq follows "IRQ" lines. */
void qtest_irq_intercept_in(QTestState *s, const char *path);
/* The last level reported for I/O APIC pin @pin (as of the last reply). */
bool qtest_get_irq(QTestState *s, int pin);

/*
 * QMP: sends @json ("{'execute': ...}" with single quotes allowed) and
 * returns the reply object ({"return": ...} or {"error": ...}); events seen
 * on the way are queued. Unref the result with json_node_unref.
 */
JsonNode *qtest_qmp(QTestState *s, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
/* Waits for event @name (from the queue first); returns it. */
JsonNode *qtest_qmp_eventwait(QTestState *s, const char *name);
/* A member of an object node, or NULL. */
JsonObject *qtest_qdict(JsonNode *node);

#endif
