// The CLI's REST client over the daemon's unix socket (or TCP with a bearer token).
#pragma once

#include <functional>
#include <string>

#include "common/error.h"

namespace storevisor::cli {

struct Reply {
  int status = 0;
  std::string body;
};

class Client {
 public:
  Client(std::string endpoint, std::string token)
      : endpoint_(std::move(endpoint)), token_(std::move(token)) {}
  Result<Reply> Call(const std::string& method, const std::string& path,
                     const std::string& body = "");
  // Streams the body to on_data until the daemon closes or on_data returns false.
  Result<int> Stream(const std::string& path, const std::function<bool(std::string_view)>& on_data);

 private:
  std::string endpoint_;
  std::string token_;
};

}  // namespace storevisor::cli
