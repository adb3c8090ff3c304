// The CLI's REST client over the daemon's unix socket (or TCP with a bearer token).
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "common/error.h"
#include "common/unique_fd.h"

namespace storevisor::cli {

struct Reply {
  int status = 0;
  std::string body;
};

// Prints the daemon's error ({"error","code"}) and returns its exit status (0 for 2xx).
int ReportReply(const Reply& reply);

class Client {
 public:
  Client(std::string endpoint, std::string token)
      : endpoint_(std::move(endpoint)), token_(std::move(token)) {}
  Result<Reply> Call(const std::string& method, const std::string& path,
                     const std::string& body = "");
  // Streams a 200 reply's body to on_data until the daemon closes or on_data returns false;
  // returns the status, and for any other status the daemon's error body (not streamed).
  Result<Reply> Stream(const std::string& path,
                       const std::function<bool(std::string_view)>& on_data);
  // POST with "Upgrade: tcp": on 101 the connection carries raw bytes both ways (early: bytes
  // that came with the head); any other answer is returned as *refusal, with no fd.
  Result<std::optional<UniqueFd>> Upgrade(const std::string& path, std::string* early,
                                          Reply* refusal);

 private:
  std::string endpoint_;
  std::string token_;
};

}  // namespace storevisor::cli
