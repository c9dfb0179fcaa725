/* SPDX-License-Identifier: ISC */
/*
 * redis_link.c: one RESP connection on a bufferevent, its replies parsed
 * by hiredis's reader under a size and object limit, with deadlines.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <hiredis/hiredis.h>

#include "core/magic.h"
#include "redis_link.h"

#define REDIS_LINK_MAGIC 0x524c4e4bu /* "RLNK" */

/* Bytes handed to the reader at a time, so that the size limit is checked
 * at least this often. */
#define REDIS_LINK_CHUNK 4096

struct redis_link {
	unsigned rl_magic;
	struct bufferevent *rl_bev;
	struct event *rl_timer;
	redisReader *rl_reader;
	/* hiredis's own reply builders, which ours wrap */
	redisReplyObjectFunctions *rl_inner;
	const char *rl_refused; /* why one of ours refused an object */
	size_t rl_objects;      /* objects of the reply being read */
	size_t rl_max_reply;
	size_t rl_max_objects;
	int rl_timeout_ms;
	unsigned rl_pending; /* commands awaiting an answer */
	int rl_connected;    /* the connect completed */
	int rl_dead;         /* failed: the error callback was called */
	int rl_busy;         /* inside one of the owner's callbacks */
	int rl_freed;        /* redis_link_free was called while busy */
	int rl_in_new;       /* inside redis_link_new */
	char rl_early[160];  /* a connect that failed at once, said later */
	redis_link_reply_fn *rl_reply_fn;
	redis_link_error_fn *rl_error_fn;
	void *rl_arg;
};

static struct redis_link *
link_cast(void *arg)
{
	return MAGIC_CAST(struct redis_link, rl_magic, REDIS_LINK_MAGIC, arg);
}

/*
 * The reply builders.  Security: hiredis's reader allocates an array of
 * whatever element count the server announces (up to 2^31 pointers) and
 * nests up to 7 levels, so each object is counted against the link's
 * limit before hiredis allocates it; a refusal (NULL) makes the reader
 * fail, and rl_refused says why.
 */
static struct redis_link *
link_obj_admit(const redisReadTask *task)
{
	struct redis_link *l = link_cast(task->privdata);

	if (task->parent == NULL)
		l->rl_objects = 0; /* the first object of a new reply */
	if (++l->rl_objects > l->rl_max_objects) {
		l->rl_refused = "a reply with too many parts";
		return NULL;
	}
	return l;
}

static void *
link_create_string(const redisReadTask *task, char *str, size_t len)
{
	struct redis_link *l = link_obj_admit(task);

	if (l == NULL)
		return NULL;
	if (len > l->rl_max_reply) {
		l->rl_refused = "a reply longer than the limit";
		return NULL;
	}
	return l->rl_inner->createString(task, str, len);
}

static void *
link_create_array(const redisReadTask *task, int elements)
{
	struct redis_link *l = link_obj_admit(task);

	if (l == NULL)
		return NULL;
	if (elements < 0 || (size_t)elements > l->rl_max_objects) {
		l->rl_refused = "a reply with too many parts";
		return NULL;
	}
	return l->rl_inner->createArray(task, elements);
}

static void *
link_create_integer(const redisReadTask *task, long long value)
{
	struct redis_link *l = link_obj_admit(task);

	if (l == NULL)
		return NULL;
	return l->rl_inner->createInteger(task, value);
}

static void *
link_create_nil(const redisReadTask *task)
{
	struct redis_link *l = link_obj_admit(task);

	if (l == NULL)
		return NULL;
	return l->rl_inner->createNil(task);
}

/* Not const: hiredis's reader takes a plain pointer.  Never written. */
static redisReplyObjectFunctions link_functions = {
    .createString = link_create_string,
    .createArray = link_create_array,
    .createInteger = link_create_integer,
    .createNil = link_create_nil,
    .freeObject = freeReplyObject,
};

static void
link_destroy(struct redis_link *l)
{
	if (l->rl_bev != NULL)
		bufferevent_free(l->rl_bev);
	if (l->rl_timer != NULL)
		event_free(l->rl_timer);
	if (l->rl_reader != NULL)
		redisReaderFree(l->rl_reader);
	l->rl_magic = 0;
	free(l);
}

/* Stop every event of a link that is failing or going away. */
static void
link_quiesce(struct redis_link *l)
{
	bufferevent_disable(l->rl_bev, EV_READ | EV_WRITE);
	evtimer_del(l->rl_timer);
}

static void link_fail(struct redis_link *, const char *, ...)
    __attribute__((format(printf, 2, 3)));

/* Fail the link once: tell the owner, who may free it meanwhile. */
static void
link_fail(struct redis_link *l, const char *fmt, ...)
{
	char why[256];
	va_list ap;

	if (l->rl_dead)
		return;
	l->rl_dead = 1;
	link_quiesce(l);
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	l->rl_busy++;
	l->rl_error_fn(l->rl_arg, why);
	l->rl_busy--;
	if (l->rl_freed && l->rl_busy == 0)
		link_destroy(l);
}

static void
link_arm(struct redis_link *l)
{
	struct timeval tv;

	tv.tv_sec = l->rl_timeout_ms / 1000;
	tv.tv_usec = (l->rl_timeout_ms % 1000) * 1000;
	evtimer_add(l->rl_timer, &tv);
}

/*
 * Hand every complete reply to the owner.  Returns 0, or -1 when the link
 * failed or was freed meanwhile (then l must not be touched).
 */
static int
link_drain(struct redis_link *l)
{
	enum redis_link_kind kind;
	void *reply;
	int gone;

	for (;;) {
		reply = NULL;
		if (redisReaderGetReply(l->rl_reader, &reply) != REDIS_OK) {
			if (l->rl_refused != NULL)
				link_fail(l, "%s", l->rl_refused);
			else
				link_fail(l, "protocol error: %s",
				    l->rl_reader->errstr);
			return -1;
		}
		if (reply == NULL)
			return 0;
		l->rl_busy++;
		kind = l->rl_reply_fn(l->rl_arg, reply);
		l->rl_busy--;
		freeReplyObject(reply);
		gone = l->rl_freed || l->rl_dead;
		if (l->rl_freed && l->rl_busy == 0)
			link_destroy(l);
		if (gone)
			return -1;
		if (kind == REDIS_LINK_ANSWER && l->rl_pending > 0) {
			l->rl_pending--;
			if (l->rl_pending > 0)
				link_arm(l);
			else
				evtimer_del(l->rl_timer);
		}
	}
}

static void
link_read_cb(struct bufferevent *bev, void *arg)
{
	struct redis_link *l = link_cast(arg);
	struct evbuffer *in = bufferevent_get_input(bev);
	char buf[REDIS_LINK_CHUNK];
	int n;

	if (l->rl_dead)
		return; /* a callback deferred before the link failed */
	while ((n = evbuffer_remove(in, buf, sizeof(buf))) > 0) {
		if (redisReaderFeed(l->rl_reader, buf, (size_t)n) != REDIS_OK) {
			link_fail(l, "out of memory reading a reply");
			return;
		}
		if (link_drain(l) == -1)
			return;
		/* Security: the reader waits for a whole bulk string of the
		 * announced length before parsing it, so this is what bounds
		 * the memory a server can make us hold. */
		if (l->rl_reader->len - l->rl_reader->pos > l->rl_max_reply) {
			link_fail(l, "a reply longer than %zu bytes",
			    l->rl_max_reply);
			return;
		}
	}
}

static void
link_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct redis_link *l = link_cast(arg);
	int err = EVUTIL_SOCKET_ERROR(), dnserr;
	char why[sizeof(l->rl_early)];

	if (l->rl_dead)
		return;
	if (what & BEV_EVENT_CONNECTED) {
		l->rl_connected = 1;
		if (l->rl_pending > 0)
			link_arm(l);
		else
			evtimer_del(l->rl_timer);
		return;
	}
	dnserr = bufferevent_socket_get_dns_error(bev);
	if (what & BEV_EVENT_EOF)
		snprintf(why, sizeof(why), "connection closed by the server");
	else if (dnserr != 0)
		snprintf(why, sizeof(why), "name not resolved: %s",
		    evutil_gai_strerror(dnserr));
	else if (!l->rl_connected)
		snprintf(why, sizeof(why), "connect: %s",
		    evutil_socket_error_to_string(err));
	else
		snprintf(why, sizeof(why), "connection lost: %s",
		    evutil_socket_error_to_string(err));
	if (l->rl_in_new) {
		/* A lookup that failed inside redis_link_new: the owner hears
		 * of it from the loop, like of every other failure. */
		memcpy(l->rl_early, why, sizeof(why));
		event_active(l->rl_timer, EV_TIMEOUT, 0);
		return;
	}
	link_fail(l, "%s", why);
}

static void
link_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct redis_link *l = link_cast(arg);

	(void)fd;
	(void)what;
	if (l->rl_early[0] != '\0')
		link_fail(l, "%s", l->rl_early);
	else if (!l->rl_connected)
		link_fail(l, "no connection within %d ms", l->rl_timeout_ms);
	else
		link_fail(l, "no answer within %d ms", l->rl_timeout_ms);
}

struct redis_link *
redis_link_new(struct event_base *base, struct evdns_base *dns,
    const struct redis_link_cfg *cfg)
{
	struct redis_link *l;

	l = calloc(1, sizeof(*l));
	if (l == NULL)
		return NULL;
	l->rl_magic = REDIS_LINK_MAGIC;
	l->rl_max_reply = cfg->lc_max_reply;
	l->rl_max_objects = cfg->lc_max_objects;
	l->rl_timeout_ms = cfg->lc_timeout_ms;
	l->rl_reply_fn = cfg->lc_reply_fn;
	l->rl_error_fn = cfg->lc_error_fn;
	l->rl_arg = cfg->lc_arg;
	l->rl_reader = redisReaderCreate();
	l->rl_timer = evtimer_new(base, link_timer_cb, l);
	/* Not BEV_OPT_DEFER_CALLBACKS: a bufferevent freed while one of its
	 * deferred callbacks is pending is only released when the callback
	 * runs, so a link freed after its loop's last turn (a worker's
	 * teardown) would leak.  A failure inside this function is held
	 * back with rl_in_new instead. */
	l->rl_bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (l->rl_reader == NULL || l->rl_timer == NULL || l->rl_bev == NULL)
		goto fail;
	l->rl_inner = l->rl_reader->fn;
	l->rl_reader->fn = &link_functions;
	l->rl_reader->privdata = l;
	bufferevent_setcb(l->rl_bev, link_read_cb, NULL, link_event_cb, l);
	if (bufferevent_enable(l->rl_bev, EV_READ | EV_WRITE) == -1)
		goto fail;
	link_arm(l);
	l->rl_in_new = 1;
	if (bufferevent_socket_connect_hostname(
	        l->rl_bev, dns, AF_UNSPEC, cfg->lc_host, cfg->lc_port) == -1 &&
	    l->rl_early[0] == '\0') {
		snprintf(l->rl_early, sizeof(l->rl_early), "connect: %s",
		    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		event_active(l->rl_timer, EV_TIMEOUT, 0);
	}
	l->rl_in_new = 0;
	return l;
fail:
	link_destroy(l);
	return NULL;
}

/* Drop a sent (or never sent) command's copy without leaving it in freed
 * memory: AUTH carries a password. */
static void
link_cmd_cleanup(const void *data, size_t len, void *extra)
{
	(void)extra;
	explicit_bzero((void *)(uintptr_t)data, len);
	free((void *)(uintptr_t)data);
}

int
redis_link_command(
    struct redis_link *l, int argc, const char **argv, const size_t *argvlen)
{
	char *cmd = NULL;
	int len;

	if (l->rl_dead || l->rl_freed)
		return -1;
	len = redisFormatCommandArgv(&cmd, argc, argv, argvlen);
	if (len < 0 || cmd == NULL)
		return -1;
	if (evbuffer_add_reference(bufferevent_get_output(l->rl_bev), cmd,
	        (size_t)len, link_cmd_cleanup, NULL) == -1) {
		link_cmd_cleanup(cmd, (size_t)len, NULL);
		return -1;
	}
	if (l->rl_pending++ == 0 && l->rl_connected)
		link_arm(l);
	return 0;
}

void
redis_link_free(struct redis_link *l)
{
	if (l == NULL)
		return;
	if (l->rl_busy > 0) {
		l->rl_freed = 1;
		link_quiesce(l);
		return;
	}
	link_destroy(l);
}
