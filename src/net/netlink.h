// An rtnetlink socket (libnl), for src/net and its tests.
#pragma once

#include <string>

#include "common/error.h"

struct nl_sock;

namespace storevisor::net {

class NlSocket {
 public:
  // Connected to NETLINK_ROUTE in the calling thread's network namespace.
  static Result<NlSocket> Open();
  NlSocket(NlSocket&& o) noexcept : sk_(o.sk_) { o.sk_ = nullptr; }
  NlSocket& operator=(NlSocket&& o) noexcept {
    std::swap(sk_, o.sk_);
    return *this;
  }
  NlSocket(const NlSocket&) = delete;
  NlSocket& operator=(const NlSocket&) = delete;
  ~NlSocket();
  nl_sock* get() const { return sk_; }

 private:
  NlSocket() = default;
  nl_sock* sk_ = nullptr;
};

// A socket in the namespace mounted at `netns_path` (it keeps working from any thread).
Result<NlSocket> NlSocketIn(const std::string& netns_path);

}  // namespace storevisor::net
