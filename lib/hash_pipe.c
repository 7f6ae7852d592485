#include "hash_pipe.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NBUF   4  /* buffers: one filling, the rest queued or being hashed */
#define QLEN   64 /* pieces waiting to be hashed */
#define INLINE 96 /* bytes a piece from outside the buffers carries itself */

typedef struct {
	const char *p; /* into a buffer, or NULL: the bytes are in COPY */
	size_t len;
	int release; /* >= 0: buffer RELEASE is done with, no bytes */
	char copy[INLINE];
} piece_t;

struct oh_hash_pipe {
	pthread_t thread;
	bool started;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* any change: a piece queued or taken, a buffer freed */
	piece_t q[QLEN];
	size_t head, count;
	bool done; /* no more pieces */
	bool busy[NBUF];
	char *buf[NBUF];
	size_t bufsize;
	int current, next;
	EVP_MD_CTX *sha1, *sha256;
	bool failed;
};

static void *hasher_main(void *arg)
{
	oh_hash_pipe_t *h = arg;
	pthread_mutex_lock(&h->mu);
	for (;;) {
		while (h->count == 0 && !h->done)
			pthread_cond_wait(&h->cv, &h->mu);
		if (h->count == 0)
			break;
		piece_t pc = h->q[h->head];
		h->head = (h->head + 1) % QLEN;
		h->count--;
		pthread_cond_broadcast(&h->cv);
		if (pc.release >= 0) {
			h->busy[pc.release] = false;
			pthread_cond_broadcast(&h->cv);
			continue;
		}
		pthread_mutex_unlock(&h->mu);
		const char *p = pc.p ? pc.p : pc.copy;
		bool ok = EVP_DigestUpdate(h->sha1, p, pc.len) == 1 &&
		          EVP_DigestUpdate(h->sha256, p, pc.len) == 1;
		pthread_mutex_lock(&h->mu);
		if (!ok)
			h->failed = true;
	}
	pthread_mutex_unlock(&h->mu);
	return NULL;
}

oh_hash_pipe_t *oh_hash_pipe_new(size_t bufsize)
{
	oh_hash_pipe_t *h = calloc(1, sizeof *h);
	if (!h)
		return NULL;
	pthread_mutex_init(&h->mu, NULL);
	pthread_cond_init(&h->cv, NULL);
	h->bufsize = bufsize;
	h->current = -1;
	bool ok = true;
	for (int i = 0; i < NBUF; i++)
		ok = ok && (h->buf[i] = malloc(bufsize)) != NULL;
	h->sha1 = EVP_MD_CTX_new();
	h->sha256 = EVP_MD_CTX_new();
	ok = ok && h->sha1 && h->sha256 && EVP_DigestInit_ex(h->sha1, EVP_sha1(), NULL) == 1 &&
	     EVP_DigestInit_ex(h->sha256, EVP_sha256(), NULL) == 1;
	if (ok)
		ok = h->started = pthread_create(&h->thread, NULL, hasher_main, h) == 0;
	if (!ok) {
		oh_hash_pipe_free(h);
		return NULL;
	}
	return h;
}

/* Queues PC, waiting for room.  Called with MU held. */
static void push(oh_hash_pipe_t *h, const piece_t *pc)
{
	while (h->count == QLEN)
		pthread_cond_wait(&h->cv, &h->mu);
	h->q[(h->head + h->count) % QLEN] = *pc;
	h->count++;
	pthread_cond_broadcast(&h->cv);
}

char *oh_hash_pipe_buffer(oh_hash_pipe_t *h)
{
	pthread_mutex_lock(&h->mu);
	int k = h->next;
	while (h->busy[k])
		pthread_cond_wait(&h->cv, &h->mu);
	h->busy[k] = true;
	h->current = k;
	h->next = (k + 1) % NBUF;
	pthread_mutex_unlock(&h->mu);
	return h->buf[k];
}

void oh_hash_pipe_add(oh_hash_pipe_t *h, const char *p, size_t len)
{
	pthread_mutex_lock(&h->mu);
	const char *b = h->current >= 0 ? h->buf[h->current] : NULL;
	if (b && p >= b && p + len <= b + h->bufsize) {
		piece_t pc = {.p = p, .len = len, .release = -1};
		push(h, &pc);
	} else {
		while (len > 0) {
			piece_t pc = {.p = NULL, .len = len < INLINE ? len : INLINE, .release = -1};
			memcpy(pc.copy, p, pc.len);
			push(h, &pc);
			p += pc.len;
			len -= pc.len;
		}
	}
	pthread_mutex_unlock(&h->mu);
}

void oh_hash_pipe_release(oh_hash_pipe_t *h)
{
	pthread_mutex_lock(&h->mu);
	if (h->current >= 0) {
		piece_t pc = {.release = h->current};
		push(h, &pc);
		h->current = -1;
	}
	pthread_mutex_unlock(&h->mu);
}

static void stop(oh_hash_pipe_t *h)
{
	if (!h->started)
		return;
	pthread_mutex_lock(&h->mu);
	h->done = true;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
	pthread_join(h->thread, NULL);
	h->started = false;
}

static void hex(const unsigned char *d, unsigned n, char *out)
{
	for (unsigned i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

bool oh_hash_pipe_finish(oh_hash_pipe_t *h, char sha1[41], char sha256[65])
{
	oh_hash_pipe_release(h);
	stop(h);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned n1 = 0, n2 = 0;
	bool ok = !h->failed && EVP_DigestFinal_ex(h->sha1, md, &n1) == 1 && n1 == 20;
	if (ok)
		hex(md, n1, sha1);
	ok = ok && EVP_DigestFinal_ex(h->sha256, md, &n2) == 1 && n2 == 32;
	if (ok)
		hex(md, n2, sha256);
	return ok;
}

void oh_hash_pipe_free(oh_hash_pipe_t *h)
{
	if (!h)
		return;
	stop(h);
	for (int i = 0; i < NBUF; i++)
		free(h->buf[i]);
	EVP_MD_CTX_free(h->sha1);
	EVP_MD_CTX_free(h->sha256);
	pthread_cond_destroy(&h->cv);
	pthread_mutex_destroy(&h->mu);
	free(h);
}
