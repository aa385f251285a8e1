// A UDP socket that receives and sends in batches (recvmmsg/sendmmsg), for the DNS server's hot
// path. Node's dgram makes one system call and one C++→JS crossing per datagram, and allocates a
// Buffer and an rinfo object for each; here one readable event drains up to BATCH datagrams with
// one recvmmsg, JS answers them all in one call, and one sendmmsg sends the answers.
//
// Memory is JS's: three Buffers given to open() and kept referenced until close():
//   input  BATCH × SLOT bytes: datagram i at i × SLOT
//   output BATCH × SLOT bytes: JS writes answer i at i × SLOT
//   meta   BATCH × 8 int32:    [0] input length (-1: datagram longer than SLOT, cut)
//                              [1] answer length, written by JS (0: no answer)
//                              [2] address family (4 or 6)   [3] source port
//                              [4..7] source address: IPv4 as one host-order integer in [4],
//                                     IPv6 as its 16 bytes in network order
// onBatch(count) is called once per received batch; when it returns, the answers are sent.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <node_api.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#define BATCH 64
#define SLOT 65536
#define META_INTS 8
// Batches handled per readable event before returning to the event loop (TCP, timers, IPC).
#define ROUNDS 16
#define RECEIVE_BUFFER_BYTES (4 * 1024 * 1024)

typedef struct {
  napi_env env;
  int fd;
  int closed;
  int in_callback;      // inside onBatch: close() must leave the async context and refs alone
  int cleanup_pending;  // close() was called inside onBatch: finish when it returns
  int handle_closed;    // libuv is done with the poll handle
  int finalized;        // JS is done with the external that points here
  uv_poll_t poll;
  napi_ref on_batch;
  napi_ref resource;
  napi_async_context async;
  napi_ref buffers[3];
  uint8_t* input;
  uint8_t* output;
  int32_t* meta;
  struct mmsghdr receive[BATCH];
  struct mmsghdr send[BATCH];
  struct iovec receive_iov[BATCH];
  struct iovec send_iov[BATCH];
  struct sockaddr_storage from[BATCH];
  double received, sent, truncated, send_dropped, send_failed, batches;
} Socket;

#define CHECK(call)                                     \
  do {                                                  \
    if ((call) != napi_ok) {                            \
      napi_throw_error(env, NULL, "udp-batch: " #call); \
      return NULL;                                      \
    }                                                   \
  } while (0)

static napi_value throw_errno(napi_env env, int error, const char* what, const char* address, int port) {
  char message[256];
  snprintf(message, sizeof message, "%s %s:%d: %s", what, address, port, strerror(error));
  napi_value text, code, object;
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &text);
  // The errno name, as Node's own errors carry it (EADDRINUSE, EACCES, ...).
  const char* name = error == EADDRINUSE      ? "EADDRINUSE"
                     : error == EACCES        ? "EACCES"
                     : error == EADDRNOTAVAIL ? "EADDRNOTAVAIL"
                     : error == EINVAL        ? "EINVAL"
                                              : "EIO";
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code);
  napi_create_error(env, code, text, &object);
  napi_set_named_property(env, object, "code", code);
  napi_throw(env, object);
  return NULL;
}

// The memory goes when both libuv (the poll handle) and JS (the external) are done with it.
static void on_closed(uv_handle_t* handle) {
  Socket* s = handle->data;
  s->handle_closed = 1;
  if (s->finalized) free(s);
}

static void on_finalized(napi_env env, void* data, void* hint) {
  Socket* s = data;
  s->finalized = 1;
  // Never closed (dropped without close(), a programming error): nothing JS-side can reach it any
  // more, so close it now. Its JS references are left (they cannot be deleted safely from here).
  if (!s->closed) {
    s->closed = 1;
    uv_poll_stop(&s->poll);
    close(s->fd);
    uv_close((uv_handle_t*)&s->poll, on_closed);
    return;
  }
  if (s->handle_closed) free(s);
}

static void finish(napi_env env, Socket* s);

static void on_readable(uv_poll_t* poll, int status, int events) {
  Socket* s = poll->data;
  if (status < 0 || s->closed) return;
  napi_env env = s->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value callback, resource;
  napi_get_reference_value(env, s->on_batch, &callback);
  napi_get_reference_value(env, s->resource, &resource);
  for (int round = 0; round < ROUNDS && !s->closed; round++) {
    for (int i = 0; i < BATCH; i++) {
      struct msghdr* h = &s->receive[i].msg_hdr;
      h->msg_name = &s->from[i];
      h->msg_namelen = sizeof s->from[i];
      h->msg_iov = &s->receive_iov[i];
      h->msg_iovlen = 1;
      h->msg_control = NULL;
      h->msg_controllen = 0;
      h->msg_flags = 0;
    }
    int count = recvmmsg(s->fd, s->receive, BATCH, MSG_DONTWAIT, NULL);
    if (count <= 0) break;  // EAGAIN: drained; other errors (ICMP reports) end this event too
    s->batches++;
    s->received += count;
    for (int i = 0; i < count; i++) {
      int32_t* m = s->meta + i * META_INTS;
      int truncated = (s->receive[i].msg_hdr.msg_flags & MSG_TRUNC) != 0;
      if (truncated) s->truncated++;
      m[0] = truncated ? -1 : (int32_t)s->receive[i].msg_len;
      m[1] = 0;
      if (s->from[i].ss_family == AF_INET6) {
        struct sockaddr_in6* a = (struct sockaddr_in6*)&s->from[i];
        m[2] = 6;
        m[3] = ntohs(a->sin6_port);
        memcpy(&m[4], &a->sin6_addr, 16);
      } else {
        struct sockaddr_in* a = (struct sockaddr_in*)&s->from[i];
        m[2] = 4;
        m[3] = ntohs(a->sin_port);
        m[4] = (int32_t)ntohl(a->sin_addr.s_addr);
      }
    }
    napi_value argument, result;
    napi_create_uint32(env, (uint32_t)count, &argument);
    s->in_callback = 1;
    napi_status status = napi_make_callback(env, s->async, resource, callback, 1, &argument, &result);
    s->in_callback = 0;
    if (status != napi_ok) {
      bool pending = false;
      napi_is_exception_pending(env, &pending);
      if (pending) {
        napi_value error;
        napi_get_and_clear_last_exception(env, &error);
        napi_fatal_exception(env, error);
      }
      break;
    }
    if (s->closed) break;  // closed from inside onBatch
    int answers = 0;
    for (int i = 0; i < count; i++) {
      int32_t length = s->meta[i * META_INTS + 1];
      if (length <= 0 || length > SLOT) continue;
      struct msghdr* h = &s->send[answers].msg_hdr;
      s->send_iov[answers].iov_base = s->output + (size_t)i * SLOT;
      s->send_iov[answers].iov_len = (size_t)length;
      h->msg_name = &s->from[i];
      h->msg_namelen = s->receive[i].msg_hdr.msg_namelen;
      h->msg_iov = &s->send_iov[answers];
      h->msg_iovlen = 1;
      h->msg_control = NULL;
      h->msg_controllen = 0;
      h->msg_flags = 0;
      answers++;
    }
    int done = 0;
    while (done < answers) {
      int sent = sendmmsg(s->fd, s->send + done, (unsigned)(answers - done), MSG_DONTWAIT);
      if (sent > 0) {
        done += sent;
        s->sent += sent;
      } else if (errno == EINTR) {
        continue;
      } else if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) {
        // The send buffer is full: drop the rest, as a kernel drops what does not fit.
        s->send_dropped += answers - done;
        break;
      } else {
        // This one destination was refused (EACCES, EINVAL, ...): skip it, send the others.
        s->send_failed++;
        done++;
      }
    }
    if (count < BATCH) break;
  }
  if (s->cleanup_pending) finish(env, s);
  napi_close_handle_scope(env, scope);
}

static Socket* unwrap(napi_env env, napi_value value) {
  Socket* s = NULL;
  if (napi_get_value_external(env, value, (void**)&s) != napi_ok || s == NULL) {
    napi_throw_type_error(env, NULL, "udp-batch: not a socket");
    return NULL;
  }
  return s;
}

// Drops the JS references and the async context, and lets libuv free the handle (then the memory).
static void finish(napi_env env, Socket* s) {
  s->cleanup_pending = 0;
  napi_delete_reference(env, s->on_batch);
  napi_delete_reference(env, s->resource);
  for (int i = 0; i < 3; i++) napi_delete_reference(env, s->buffers[i]);
  napi_async_destroy(env, s->async);
  uv_close((uv_handle_t*)&s->poll, on_closed);
}

static void release(napi_env env, Socket* s) {
  if (s->closed) return;
  s->closed = 1;
  uv_poll_stop(&s->poll);
  close(s->fd);
  s->fd = -1;
  if (s->in_callback)
    s->cleanup_pending = 1;
  else
    finish(env, s);
}

// open(address, port, reusePort, input, output, meta, onBatch) → socket
static napi_value open_socket(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 7) {
    napi_throw_type_error(env, NULL, "udp-batch: open(address, port, reusePort, input, output, meta, onBatch)");
    return NULL;
  }
  char address[INET6_ADDRSTRLEN + 1];
  size_t address_length;
  int32_t port;
  bool reuse_port;
  CHECK(napi_get_value_string_utf8(env, argv[0], address, sizeof address, &address_length));
  CHECK(napi_get_value_int32(env, argv[1], &port));
  CHECK(napi_get_value_bool(env, argv[2], &reuse_port));
  void* data[3];
  size_t sizes[3];
  for (int i = 0; i < 3; i++) CHECK(napi_get_buffer_info(env, argv[3 + i], &data[i], &sizes[i]));
  if (sizes[0] < (size_t)BATCH * SLOT || sizes[1] < (size_t)BATCH * SLOT || sizes[2] < (size_t)BATCH * META_INTS * 4) {
    napi_throw_range_error(env, NULL, "udp-batch: buffers smaller than BATCH slots");
    return NULL;
  }
  struct sockaddr_storage local;
  memset(&local, 0, sizeof local);
  socklen_t local_length;
  int family;
  if (inet_pton(AF_INET, address, &((struct sockaddr_in*)&local)->sin_addr) == 1) {
    family = AF_INET;
    ((struct sockaddr_in*)&local)->sin_family = AF_INET;
    ((struct sockaddr_in*)&local)->sin_port = htons((uint16_t)port);
    local_length = sizeof(struct sockaddr_in);
  } else if (inet_pton(AF_INET6, address, &((struct sockaddr_in6*)&local)->sin6_addr) == 1) {
    family = AF_INET6;
    ((struct sockaddr_in6*)&local)->sin6_family = AF_INET6;
    ((struct sockaddr_in6*)&local)->sin6_port = htons((uint16_t)port);
    local_length = sizeof(struct sockaddr_in6);
  } else {
    return throw_errno(env, EINVAL, "not an IP address:", address, port);
  }
  int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, errno, "socket", address, port);
  int on = 1;
  if (reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) != 0) {
    int error = errno;
    close(fd);
    return throw_errno(env, error, "SO_REUSEPORT", address, port);
  }
  // A sign-in storm arrives in bursts while the event loop may be busy elsewhere: the default
  // (net.core.rmem_default, often 208 KiB) holds a few hundred small datagrams, each costing the
  // kernel about a KiB of buffer. SO_RCVBUFFORCE (CAP_NET_ADMIN) passes net.core.rmem_max, which
  // is as small as the default on a stock system; without the capability SO_RCVBUF, capped by it.
  // Best effort: the default buffer still works.
  int receive_buffer = RECEIVE_BUFFER_BYTES;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &receive_buffer, sizeof receive_buffer) != 0) {
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
  }
  if (bind(fd, (struct sockaddr*)&local, local_length) != 0) {
    int error = errno;
    close(fd);
    return throw_errno(env, error, "bind", address, port);
  }
  Socket* s = calloc(1, sizeof(Socket));
  if (s == NULL) {
    close(fd);
    napi_throw_error(env, NULL, "udp-batch: out of memory");
    return NULL;
  }
  s->env = env;
  s->fd = fd;
  s->input = data[0];
  s->output = data[1];
  s->meta = data[2];
  for (int i = 0; i < BATCH; i++) {
    s->receive_iov[i].iov_base = s->input + (size_t)i * SLOT;
    s->receive_iov[i].iov_len = SLOT;
  }
  for (int i = 0; i < 3; i++) napi_create_reference(env, argv[3 + i], 1, &s->buffers[i]);
  napi_create_reference(env, argv[6], 1, &s->on_batch);
  napi_value resource, name;
  napi_create_object(env, &resource);
  napi_create_reference(env, resource, 1, &s->resource);
  napi_create_string_utf8(env, "dnslb:udp-batch", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, resource, name, &s->async);
  uv_loop_t* loop;
  napi_get_uv_event_loop(env, &loop);
  uv_poll_init(loop, &s->poll, fd);
  s->poll.data = s;
  uv_poll_start(&s->poll, UV_READABLE, on_readable);
  napi_value external;
  CHECK(napi_create_external(env, s, on_finalized, NULL, &external));
  return external;
}

// port(socket) → the bound port (useful after binding port 0)
static napi_value local_port(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Socket* s = unwrap(env, argv[0]);
  if (s == NULL) return NULL;
  struct sockaddr_storage local;
  socklen_t length = sizeof local;
  if (s->closed || getsockname(s->fd, (struct sockaddr*)&local, &length) != 0) {
    napi_throw_error(env, NULL, "udp-batch: socket closed");
    return NULL;
  }
  int port = local.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6*)&local)->sin6_port) : ntohs(((struct sockaddr_in*)&local)->sin_port);
  CHECK(napi_create_int32(env, port, &result));
  return result;
}

// stats(socket) → { received, sent, truncated, sendDropped, sendFailed, batches }
static napi_value stats(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result, value;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Socket* s = unwrap(env, argv[0]);
  if (s == NULL) return NULL;
  CHECK(napi_create_object(env, &result));
  const char* names[] = {"received", "sent", "truncated", "sendDropped", "sendFailed", "batches"};
  double values[] = {s->received, s->sent, s->truncated, s->send_dropped, s->send_failed, s->batches};
  for (int i = 0; i < 6; i++) {
    CHECK(napi_create_double(env, values[i], &value));
    CHECK(napi_set_named_property(env, result, names[i], value));
  }
  return result;
}

// close(socket): stops receiving at once; closing twice is harmless.
static napi_value close_socket(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Socket* s = unwrap(env, argv[0]);
  if (s == NULL) return NULL;
  release(env, s);
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor properties[] = {
      {"open", NULL, open_socket, NULL, NULL, NULL, napi_default, NULL},
      {"port", NULL, local_port, NULL, NULL, NULL, napi_default, NULL},
      {"stats", NULL, stats, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, close_socket, NULL, NULL, NULL, napi_default, NULL},
  };
  CHECK(napi_define_properties(env, exports, 4, properties));
  napi_value batch, slot;
  CHECK(napi_create_int32(env, BATCH, &batch));
  CHECK(napi_create_int32(env, SLOT, &slot));
  CHECK(napi_set_named_property(env, exports, "BATCH", batch));
  CHECK(napi_set_named_property(env, exports, "SLOT", slot));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
