// The API server's connections: an io_context (one thread, owned and joined here) accepts and
// reads requests under a whole-request deadline; complete requests go to the listener's
// bounded pools. Sockets of the listeners and the plain writes of HttpConnection.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <cstring>
#include <list>

#include "api/json.h"
#include "daemon/api/http_glue.h"

namespace storevisor::daemon {

namespace {

namespace asio = boost::asio;

Result<sockaddr_in> ParseHostPort(const std::string& address) {
  size_t colon = address.rfind(':');
  if (colon == std::string::npos) {
    return Error(ErrorCode::kInvalidArgument, "expected HOST:PORT, got '" + address + "'");
  }
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  std::string host = address.substr(0, colon);
  if (host == "localhost") host = "127.0.0.1";
  if (inet_pton(AF_INET, host.c_str(), &sa.sin_addr) != 1) {
    return Error(ErrorCode::kInvalidArgument, "expected an IPv4 address, got '" + host + "'");
  }
  char* end = nullptr;
  long port = std::strtol(address.c_str() + colon + 1, &end, 10);
  if (*end != '\0' || port < 1 || port > 65535) {
    return Error(ErrorCode::kInvalidArgument, "bad port in '" + address + "'");
  }
  sa.sin_port = htons(static_cast<uint16_t>(port));
  return sa;
}

// A reply written at once from the io thread (a refusal): best effort, never blocks.
void SendNow(int fd, int status, const std::string& json) {
  const std::string body = json + "\n";
  const std::string msg =
      "HTTP/1.1 " + std::to_string(status) + " " + std::string(HttpReason(status)) +
      "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
      "\r\nConnection: close\r\n\r\n" + body;
  (void)::send(fd, msg.data(), msg.size(), MSG_NOSIGNAL | MSG_DONTWAIT);  // best effort
}

void SendError(int fd, int status, const Error& e) { SendNow(fd, status, api::ErrorJson(e)); }

Peer PeerOf(int fd, bool tcp) {
  Peer p;
  p.tcp = tcp;
  if (!tcp) {
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) p.uid = cred.uid;
    return p;
  }
  sockaddr_in sa{};
  socklen_t len = sizeof sa;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&sa), &len) == 0) {
    char ip[INET_ADDRSTRLEN] = {};
    ::inet_ntop(AF_INET, &sa.sin_addr, ip, sizeof ip);
    p.address = std::string(ip) + ":" + std::to_string(ntohs(sa.sin_port));
  }
  return p;
}

// One request to answer on a pool thread.
struct Job {
  UniqueFd fd;
  std::string early;
  HttpRequest request;
  Peer peer;
};

// A bounded pool: `size` threads, at most `queue` jobs waiting for one (0: only when a
// thread is idle). Threads are started at once and joined by Stop.
class Pool {
 public:
  using Run = std::function<void(Job&)>;
  Pool(int size, int queue, Run run) : queue_cap_(queue), run_(std::move(run)) {
    for (int i = 0; i < size; ++i) threads_.emplace_back([this] { Loop(); });
  }
  ~Pool() { Stop(); }
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  // False when the pool is full (the caller answers 503).
  // Takes the job only when it returns true.
  bool Submit(Job& job) {
    std::lock_guard lock(mu_);
    if (stopping_ || jobs_.size() >= static_cast<size_t>(idle_) + static_cast<size_t>(queue_cap_)) {
      return false;
    }
    jobs_.push_back(std::move(job));
    cv_.notify_one();
    return true;
  }
  // Ends the jobs being run (their sockets shut down: blocked reads and writes return) and
  // joins the threads.
  void Stop() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
      for (int fd : busy_fds_) ::shutdown(fd, SHUT_RDWR);
      jobs_.clear();
    }
    cv_.notify_all();
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }

 private:
  void Loop() {
    std::unique_lock lock(mu_);
    while (true) {
      ++idle_;
      cv_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
      --idle_;
      if (stopping_) return;
      Job job = std::move(jobs_.front());
      jobs_.pop_front();
      const int fd = job.fd.get();
      busy_fds_.insert(fd);
      lock.unlock();
      run_(job);  // gives the descriptor back in job.fd
      lock.lock();
      busy_fds_.erase(fd);
      // Closed only now: Stop must never shut down a number the kernel gave someone else.
      job.fd.reset();
    }
  }

  const int queue_cap_;
  Run run_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> jobs_;
  std::set<int> busy_fds_;
  int idle_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace

struct Session;

// One listening socket with its own limits, pools and sessions (io thread only, except the
// per-peer active counts that the pools update under active_mu).
struct Listener {
  // Each listener reads its requests on its own io_context and thread: a flood on one
  // cannot delay the other. First: the members below are built on it.
  asio::io_context ioc;
  Listener(UniqueFd fd, bool is_tcp, const ListenerLimits& l, HttpServer::Impl* s)
      : acceptor(ioc, fd.release()), retry(ioc), tcp(is_tcp), limits(l), server(s) {}
  std::thread io_thread;
  asio::posix::stream_descriptor acceptor;
  asio::steady_timer retry;  // after EMFILE
  bool tcp;
  ListenerLimits limits;
  HttpServer::Impl* server;
  std::list<std::shared_ptr<Session>> pending;  // oldest first
  std::map<std::string, int> pending_per_peer;
  std::mutex active_mu;
  std::map<std::string, int> active_per_peer;
  std::unique_ptr<Pool> short_pool;
  std::unique_ptr<Pool> long_pool;
};

// One connection while its request is read (io thread).
struct Session : std::enable_shared_from_this<Session> {
  Session(asio::io_context& ioc, int fd, Listener* l, Peer p)
      : socket(ioc, fd), deadline(ioc), listener(l), peer(std::move(p)) {
    LimitParser(parser);
  }
  asio::posix::stream_descriptor socket;
  asio::steady_timer deadline;
  boost::beast::flat_buffer buffer;
  http::request_parser<http::string_body> parser;
  Listener* listener;
  Peer peer;
  std::list<std::shared_ptr<Session>>::iterator position;
  bool done = false;
  std::array<char, 4096> discard{};
};

struct HttpServer::Impl {
  explicit Impl(HttpHandlers h) : handlers(std::move(h)) {}
  HttpHandlers handlers;
  std::vector<std::unique_ptr<Listener>> listeners;
  std::atomic<bool> stopping{false};

  void Accept(Listener* l);
  void OnReadable(Listener* l);
  void Admit(Listener* l, UniqueFd fd);
  void Evict(Listener* l, const std::string& peer_key);
  void Forget(Session& s);
  void ReadHead(const std::shared_ptr<Session>& s);
  void ReadBody(const std::shared_ptr<Session>& s);
  void Dispatch(const std::shared_ptr<Session>& s, HttpRequest request);
  void Refuse(Session& s, int status, const Error& e);
  void Drain(const std::shared_ptr<Session>& s);
  void DiscardInput(const std::shared_ptr<Session>& s);
  void RunJob(Listener* l, Job& job);
};

void HttpServer::Impl::Accept(Listener* l) {
  l->acceptor.async_wait(asio::posix::stream_descriptor::wait_read,
                         [this, l](const boost::system::error_code& ec) {
                           if (ec || stopping) return;
                           OnReadable(l);
                         });
}

void HttpServer::Impl::OnReadable(Listener* l) {
  // Takes what the backlog holds, so a burst of connections costs one wake-up.
  for (int i = 0; i < 256; ++i) {
    int fd = ::accept4(l->acceptor.native_handle(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd >= 0) {
      Admit(l, UniqueFd(fd));
      continue;
    }
    if (errno == EMFILE || errno == ENFILE) {
      // Out of descriptors: the oldest unfinished request makes room, and accepting resumes
      // shortly (a busy loop would spin on the same full backlog).
      if (!l->pending.empty()) Evict(l, "");
      l->retry.expires_after(std::chrono::milliseconds(20));
      l->retry.async_wait([this, l](const boost::system::error_code& ec) {
        if (!ec && !stopping) Accept(l);
      });
      return;
    }
    break;  // EAGAIN, or an aborted connection
  }
  Accept(l);
}

void HttpServer::Impl::Evict(Listener* l, const std::string& peer_key) {
  for (auto it = l->pending.begin(); it != l->pending.end(); ++it) {
    if (peer_key.empty() || (*it)->peer.Key() == peer_key) {
      std::shared_ptr<Session> victim = *it;
      SendError(victim->socket.native_handle(), 503,
                Error(ErrorCode::kUnavailable, "too many unfinished requests; send yours faster"));
      Forget(*victim);
      boost::system::error_code ignored;
      victim->socket.close(ignored);  // its pending read completes with an error
      return;
    }
  }
}

void HttpServer::Impl::Admit(Listener* l, UniqueFd fd) {
  Peer peer = PeerOf(fd.get(), l->tcp);
  const std::string key = peer.Key();
  // A new connection displaces the oldest unfinished one (of its peer first): a flood of
  // slow requests ages out instead of locking newcomers out.
  if (l->pending_per_peer[key] >= l->limits.max_pending_per_peer) Evict(l, key);
  if (static_cast<int>(l->pending.size()) >= l->limits.max_pending) Evict(l, "");
  auto s = std::make_shared<Session>(l->ioc, fd.release(), l, std::move(peer));
  l->pending.push_back(s);
  s->position = std::prev(l->pending.end());
  l->pending_per_peer[key]++;
  s->deadline.expires_after(std::chrono::milliseconds(l->limits.request_deadline_ms));
  s->deadline.async_wait(
      [this, weak = std::weak_ptr<Session>(s)](const boost::system::error_code& ec) {
        auto session = weak.lock();
        if (ec || !session || session->done) return;
        Refuse(*session, 408,
               Error(ErrorCode::kTimeout, "the request was not sent in time (head and body)"));
      });
  ReadHead(s);
}

void HttpServer::Impl::Forget(Session& s) {
  if (s.done) return;
  s.done = true;
  boost::system::error_code ignored;
  s.deadline.cancel(ignored);
  Listener* l = s.listener;
  auto it = l->pending_per_peer.find(s.peer.Key());
  if (it != l->pending_per_peer.end() && --it->second <= 0) l->pending_per_peer.erase(it);
  l->pending.erase(s.position);
}

void HttpServer::Impl::Refuse(Session& s, int status, const Error& e) {
  if (s.done) return;
  SendError(s.socket.native_handle(), status, e);
  Forget(s);
  boost::system::error_code ignored;
  s.socket.cancel(ignored);  // a read still pending (the deadline's case) ends first
  Drain(s.shared_from_this());
}

void HttpServer::Impl::Drain(const std::shared_ptr<Session>& s) {
  // Closing with unread input would reset the connection, and a TCP reset can destroy the
  // answer before the client reads it: end our side, discard what still comes for a short
  // while, then close.
  ::shutdown(s->socket.native_handle(), SHUT_WR);
  s->deadline.expires_after(std::chrono::milliseconds(500));
  s->deadline.async_wait([s](const boost::system::error_code&) {
    boost::system::error_code ignored;
    s->socket.close(ignored);
  });
  DiscardInput(s);
}

void HttpServer::Impl::DiscardInput(const std::shared_ptr<Session>& s) {
  s->socket.async_read_some(asio::buffer(s->discard),
                            [this, s](const boost::system::error_code& ec, size_t /*n*/) {
                              if (!ec) return DiscardInput(s);
                              boost::system::error_code ignored;
                              s->deadline.cancel(ignored);
                              s->socket.close(ignored);
                            });
}

void HttpServer::Impl::ReadHead(const std::shared_ptr<Session>& s) {
  http::async_read_header(
      s->socket, s->buffer, s->parser,
      [this, s](const boost::system::error_code& ec, size_t /*bytes*/) {
        if (s->done) return;
        if (ec) {
          if (ec == http::error::end_of_stream || ec == asio::error::eof ||
              ec == asio::error::operation_aborted || ec == asio::error::connection_reset) {
            Forget(*s);
            return;
          }
          const Error e = ParserError(ec);
          return Refuse(*s, e.code() == ErrorCode::kResourceExhausted ? 413 : 400, e);
        }
        HttpRequest head;
        if (auto st = FillHeadFrom(s->parser.get(), &head); !st) {
          return Refuse(*s, 400, st.error());
        }
        // TCP: no token, no body read and no more time given.
        if (s->listener->tcp && !handlers.authorized(head)) {
          return Refuse(*s, 401,
                        Error(ErrorCode::kPermissionDenied, "missing or wrong bearer token"));
        }
        ReadBody(s);
      });
}

void HttpServer::Impl::ReadBody(const std::shared_ptr<Session>& s) {
  http::async_read(s->socket, s->buffer, s->parser,
                   [this, s](const boost::system::error_code& ec, size_t /*bytes*/) {
                     if (s->done) return;
                     if (ec) {
                       if (ec == http::error::body_limit) return Refuse(*s, 413, ParserError(ec));
                       if (ec == http::error::partial_message || ec == asio::error::eof ||
                           ec == asio::error::operation_aborted) {
                         Forget(*s);
                         return;
                       }
                       return Refuse(*s, 400, ParserError(ec));
                     }
                     auto req = RequestFromParser(s->parser);
                     if (!req) return Refuse(*s, 400, req.error());
                     Dispatch(s, std::move(*req));
                   });
}

void HttpServer::Impl::Dispatch(const std::shared_ptr<Session>& s, HttpRequest request) {
  Listener* l = s->listener;
  const bool is_long = handlers.is_long(request);
  const std::string key = s->peer.Key();
  {
    std::lock_guard lock(l->active_mu);
    if (l->active_per_peer[key] >= l->limits.max_active_per_peer) {
      return Refuse(*s, 503,
                    Error(ErrorCode::kUnavailable, "too many requests at once from this client"));
    }
    l->active_per_peer[key]++;
  }
  std::string early(static_cast<const char*>(s->buffer.data().data()), s->buffer.size());
  Forget(*s);
  Job job{UniqueFd(s->socket.release()), std::move(early), std::move(request), s->peer};
  // Handlers write with blocking calls (bounded by the pools, not by this thread).
  const int flags = ::fcntl(job.fd.get(), F_GETFL);
  if (flags >= 0) (void)::fcntl(job.fd.get(), F_SETFL, flags & ~O_NONBLOCK);
  Pool& pool = is_long ? *l->long_pool : *l->short_pool;
  if (pool.Submit(job)) return;
  SendError(job.fd.get(), 503,
            Error(ErrorCode::kUnavailable, is_long ? "too many streams open; try again later"
                                                   : "storevisord is busy; try again"));
  std::lock_guard lock(l->active_mu);
  auto it = l->active_per_peer.find(key);
  if (it != l->active_per_peer.end() && --it->second <= 0) l->active_per_peer.erase(it);
}

void HttpServer::Impl::RunJob(Listener* l, Job& job) {
  HttpConnection conn(std::move(job.fd), std::move(job.early));
  handlers.serve(job.request, conn, job.peer);
  job.fd = conn.Release();
  std::lock_guard lock(l->active_mu);
  auto it = l->active_per_peer.find(job.peer.Key());
  if (it != l->active_per_peer.end() && --it->second <= 0) l->active_per_peer.erase(it);
}

HttpServer::HttpServer(HttpHandlers handlers)
    : impl_(std::make_unique<Impl>(std::move(handlers))) {}

HttpServer::~HttpServer() { Stop(); }

Status HttpServer::Listen(UniqueFd listener, bool is_tcp, const ListenerLimits& limits) {
  const int flags = ::fcntl(listener.get(), F_GETFL);
  if (flags < 0 || ::fcntl(listener.get(), F_SETFL, flags | O_NONBLOCK) != 0) {
    return ErrnoError("fcntl O_NONBLOCK");
  }
  auto l = std::make_unique<Listener>(std::move(listener), is_tcp, limits, impl_.get());
  Listener* raw = l.get();
  Impl* impl = impl_.get();
  l->short_pool = std::make_unique<Pool>(limits.workers, limits.queue,
                                         [impl, raw](Job& job) { impl->RunJob(raw, job); });
  l->long_pool =
      std::make_unique<Pool>(limits.max_long, 0, [impl, raw](Job& job) { impl->RunJob(raw, job); });
  impl_->listeners.push_back(std::move(l));
  return Ok();
}

void HttpServer::Start() {
  for (auto& l : impl_->listeners) {
    impl_->Accept(l.get());
    l->io_thread = std::thread([l = l.get()] { l->ioc.run(); });
  }
}

void HttpServer::Stop() {
  if (!impl_ || impl_->stopping.exchange(true)) return;
  for (auto& l : impl_->listeners) {
    // The io thread closes what it owns, then runs out of work.
    asio::post(l->ioc, [impl = impl_.get(), l = l.get()] {
      boost::system::error_code ignored;
      l->acceptor.close(ignored);
      l->retry.cancel(ignored);
      while (!l->pending.empty()) {
        std::shared_ptr<Session> s = l->pending.front();
        impl->Forget(*s);
        s->socket.close(ignored);
      }
    });
    if (l->io_thread.joinable()) {
      l->io_thread.join();
    } else {
      l->ioc.run();
    }
  }
  for (auto& l : impl_->listeners) {
    l->long_pool->Stop();
    l->short_pool->Stop();
  }
}

namespace {

// Blocking send of everything; MSG_NOSIGNAL: a peer that went away is an error, not SIGPIPE.
bool SendBlocking(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

}  // namespace

bool HttpConnection::Send(int status, std::string_view content_type, std::string_view body,
                          std::string_view extra_headers) {
  std::string head = "HTTP/1.1 " + std::to_string(status) + " " + std::string(HttpReason(status)) +
                     "\r\nContent-Type: " + std::string(content_type) +
                     "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" +
                     std::string(extra_headers) + "Connection: close\r\n\r\n";
  return SendBlocking(fd_.get(), head) && SendBlocking(fd_.get(), body);
}

bool HttpConnection::StartStream(std::string_view content_type) {
  std::string head = "HTTP/1.1 200 OK\r\nContent-Type: " + std::string(content_type) +
                     "\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n";
  return SendBlocking(fd_.get(), head);
}

bool HttpConnection::SwitchProtocols(std::string_view protocol) {
  std::string head = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: " +
                     std::string(protocol) + "\r\n\r\n";
  return SendBlocking(fd_.get(), head);
}

bool HttpConnection::Write(std::string_view data) { return SendBlocking(fd_.get(), data); }

bool HttpConnection::PeerClosed() {
  pollfd p{fd_.get(), POLLIN, 0};
  if (::poll(&p, 1, 0) <= 0) return false;
  if ((p.revents & (POLLHUP | POLLERR)) != 0) return true;
  char c = 0;
  return ::recv(fd_.get(), &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

Result<UniqueFd> ListenUnix(const std::string& path, mode_t mode) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (path.size() >= sizeof sa.sun_path) {
    return Error(ErrorCode::kInvalidArgument, "socket path too long: " + path);
  }
  std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return ErrnoError("socket");
  ::unlink(path.c_str());  // a stale socket from a killed daemon
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    return ErrnoError("bind " + path);
  }
  if (::chmod(path.c_str(), mode) != 0) return ErrnoError("chmod " + path);
  if (::listen(fd.get(), 4096) != 0) return ErrnoError("listen " + path);
  return fd;
}

Result<UniqueFd> ListenTcp(const std::string& address) {
  SV_ASSIGN_OR_RETURN(sockaddr_in sa, ParseHostPort(address));
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return ErrnoError("socket");
  int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    return ErrnoError("bind " + address);
  }
  if (::listen(fd.get(), 4096) != 0) return ErrnoError("listen " + address);
  return fd;
}

void RaiseFileLimit() {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0 || lim.rlim_cur >= lim.rlim_max) return;
  lim.rlim_cur = lim.rlim_max;
  (void)::setrlimit(RLIMIT_NOFILE, &lim);  // best effort: the limits still bound connections
}

}  // namespace storevisor::daemon
