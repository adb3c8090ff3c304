// Requests from outside: Beast parses the framing, the checks here (target, query, header
// values, refused Transfer-Encoding) follow. Untrusted input, bounded everywhere.
#include <algorithm>
#include <cctype>

#include "daemon/api/http_glue.h"

namespace storevisor::daemon {

namespace {

Error Bad(std::string what) {
  return Error(ErrorCode::kInvalidArgument, "HTTP: " + std::move(what));
}

bool IsTokenChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Result<std::string> PercentDecode(std::string_view in, bool plus_is_space) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%') {
      if (i + 2 >= in.size()) return Bad("truncated %-escape in the target");
      int hi = HexValue(in[i + 1]);
      int lo = HexValue(in[i + 2]);
      if (hi < 0 || lo < 0) return Bad("bad %-escape in the target");
      char c = static_cast<char>(hi * 16 + lo);
      if (c == '\0') return Bad("NUL in the target");
      out += c;
      i += 2;
    } else if (plus_is_space && in[i] == '+') {
      out += ' ';
    } else {
      out += in[i];
    }
  }
  return out;
}

Status ParseTarget(HttpRequest* req) {
  const std::string& t = req->target;
  if (t.empty() || t[0] != '/') return Bad("the target must start with /");
  size_t q = t.find('?');
  SV_ASSIGN_OR_RETURN(req->path, PercentDecode(std::string_view(t).substr(0, q), false));
  if (q == std::string::npos) return Ok();
  std::string_view rest = std::string_view(t).substr(q + 1);
  size_t count = 0;
  while (!rest.empty()) {
    if (++count > 32) return Bad("more than 32 query parameters");
    size_t amp = rest.find('&');
    std::string_view pair = rest.substr(0, amp);
    size_t eq = pair.find('=');
    SV_ASSIGN_OR_RETURN(std::string key, PercentDecode(pair.substr(0, eq), true));
    std::string value;
    if (eq != std::string_view::npos) {
      SV_ASSIGN_OR_RETURN(value, PercentDecode(pair.substr(eq + 1), true));
    }
    req->query[key] = value;
    rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
  }
  return Ok();
}

}  // namespace

std::string HttpRequest::Query(const std::string& key, const std::string& fallback) const {
  auto it = query.find(key);
  return it == query.end() ? fallback : it->second;
}

std::string HttpRequest::Header(const std::string& name) const {
  auto it = headers.find(name);
  return it == headers.end() ? std::string() : it->second;
}

Status FillRequestHead(std::string_view method, std::string_view target,
                       const std::vector<std::pair<std::string, std::string>>& fields,
                       HttpRequest* req) {
  if (method.empty() || !std::all_of(method.begin(), method.end(), IsTokenChar)) {
    return Bad("bad method");
  }
  req->method = std::string(method);
  req->target = std::string(target);
  for (char c : req->target) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return Bad("bad character in target");
  }
  SV_TRY(ParseTarget(req));
  if (fields.size() > 100) return Bad("more than 100 header fields");
  for (const auto& [raw_name, value] : fields) {
    std::string name = raw_name;
    for (char& c : name) {
      if (!IsTokenChar(c)) return Bad("bad character in a header name");
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    for (char c : value) {
      if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f) {
        return Bad("control character in header " + name);
      }
    }
    if (req->headers.count(name) != 0 && (name == "content-length" || name == "authorization")) {
      return Bad("header " + name + " given twice");
    }
    req->headers[name] = value;
  }
  if (req->headers.count("transfer-encoding") != 0) {
    return Bad("Transfer-Encoding is not supported; send Content-Length");
  }
  return Ok();
}

Error ParserError(const boost::system::error_code& ec) {
  if (ec == http::error::header_limit) {
    return Error(ErrorCode::kResourceExhausted, "HTTP: request head larger than 16 KiB");
  }
  if (ec == http::error::body_limit) {
    return Error(ErrorCode::kResourceExhausted, "HTTP: body larger than 2 MiB");
  }
  return Bad(ec.message());
}

std::string_view View(boost::beast::string_view s) { return {s.data(), s.size()}; }

Status FillHeadFrom(const http::request<http::string_body>& msg, HttpRequest* req) {
  if (msg.version() != 11 && msg.version() != 10) return Bad("unsupported version");
  std::vector<std::pair<std::string, std::string>> fields;
  for (const auto& f : msg) {
    fields.emplace_back(std::string(View(f.name_string())), std::string(View(f.value())));
  }
  return FillRequestHead(View(msg.method_string()), View(msg.target()), fields, req);
}

Result<HttpRequest> RequestFromParser(http::request_parser<http::string_body>& parser) {
  HttpRequest req;
  SV_TRY(FillHeadFrom(parser.get(), &req));
  req.body = parser.get().body();
  return req;
}

void LimitParser(http::request_parser<http::string_body>& parser) {
  parser.header_limit(kMaxHeaderBytes);
  parser.body_limit(kMaxBodyBytes);
}

Result<std::optional<HttpRequest>> ParseHttpRequest(std::string_view data) {
  http::request_parser<http::string_body> parser;
  LimitParser(parser);
  parser.eager(true);
  boost::system::error_code ec;
  size_t used = 0;
  while (!parser.is_done() && used < data.size()) {
    const size_t n = parser.put(boost::asio::buffer(data.data() + used, data.size() - used), ec);
    used += n;
    if (ec == http::error::need_more) break;
    if (ec) return ParserError(ec);
    if (n == 0) break;
  }
  if (!parser.is_header_done()) {
    if (data.size() > kMaxHeaderBytes) return ParserError(http::error::header_limit);
    return std::optional<HttpRequest>();
  }
  // The head is complete: check it even when the body is still to come.
  HttpRequest head;
  SV_TRY(FillHeadFrom(parser.get(), &head));
  if (!parser.is_done()) return std::optional<HttpRequest>();
  SV_ASSIGN_OR_RETURN(HttpRequest req, RequestFromParser(parser));
  return std::optional<HttpRequest>(std::move(req));
}

std::string_view HttpReason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 303:
      return "See Other";
    case 304:
      return "Not Modified";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 409:
      return "Conflict";
    case 413:
      return "Payload Too Large";
    case 422:
      return "Unprocessable Entity";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "Status";
  }
}

}  // namespace storevisor::daemon
