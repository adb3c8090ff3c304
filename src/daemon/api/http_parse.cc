// Parsing of HTTP/1.1 request and response heads: untrusted input, bounded everywhere.
#include <algorithm>
#include <cctype>

#include "daemon/api/http.h"

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

// Splits the head into lines; false if a line is not CRLF-terminated properly.
std::vector<std::string_view> HeadLines(std::string_view head) {
  std::vector<std::string_view> lines;
  size_t pos = 0;
  while (pos < head.size()) {
    size_t end = head.find("\r\n", pos);
    if (end == std::string_view::npos) end = head.size();
    lines.push_back(head.substr(pos, end - pos));
    pos = end + 2;
  }
  return lines;
}

Status ParseHeaders(const std::vector<std::string_view>& lines,
                    std::map<std::string, std::string>* headers) {
  if (lines.size() > 101) return Bad("more than 100 header fields");
  for (size_t i = 1; i < lines.size(); ++i) {
    std::string_view line = lines[i];
    size_t colon = line.find(':');
    if (colon == 0 || colon == std::string_view::npos) return Bad("malformed header line");
    std::string name(line.substr(0, colon));
    for (char& c : name) {
      if (!IsTokenChar(c)) return Bad("bad character in a header name");
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
      value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
    for (char c : value) {
      if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f) {
        return Bad("control character in header " + name);
      }
    }
    if (headers->count(name) != 0 && (name == "content-length" || name == "authorization")) {
      return Bad("header " + name + " given twice");
    }
    (*headers)[name] = std::string(value);
  }
  return Ok();
}

Result<size_t> ContentLength(const std::map<std::string, std::string>& headers) {
  auto it = headers.find("content-length");
  if (it == headers.end()) return size_t{0};
  const std::string& v = it->second;
  if (v.empty() || v.size() > 9 ||
      !std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return Bad("bad Content-Length '" + v.substr(0, 20) + "'");
  }
  size_t n = std::stoul(v);
  if (n > kMaxBodyBytes) {
    return Error(ErrorCode::kResourceExhausted, "HTTP: body larger than 2 MiB");
  }
  return n;
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

Result<std::optional<HttpRequest>> ParseHttpRequest(std::string_view data) {
  size_t end = data.find("\r\n\r\n");
  if (end == std::string_view::npos) {
    if (data.size() > kMaxHeaderBytes) {
      return Error(ErrorCode::kResourceExhausted, "HTTP: request head larger than 16 KiB");
    }
    return std::optional<HttpRequest>();
  }
  if (end > kMaxHeaderBytes) {
    return Error(ErrorCode::kResourceExhausted, "HTTP: request head larger than 16 KiB");
  }
  auto lines = HeadLines(data.substr(0, end));
  if (lines.empty()) return Bad("empty request");
  HttpRequest req;
  std::string_view first = lines[0];
  size_t sp1 = first.find(' ');
  size_t sp2 = sp1 == std::string_view::npos ? sp1 : first.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || first.find(' ', sp2 + 1) != std::string_view::npos) {
    return Bad("malformed request line");
  }
  req.method = std::string(first.substr(0, sp1));
  req.target = std::string(first.substr(sp1 + 1, sp2 - sp1 - 1));
  std::string_view version = first.substr(sp2 + 1);
  if (req.method.empty() || !std::all_of(req.method.begin(), req.method.end(), IsTokenChar)) {
    return Bad("bad method");
  }
  if (version != "HTTP/1.1" && version != "HTTP/1.0") return Bad("unsupported version");
  for (char c : req.target) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return Bad("bad character in target");
  }
  SV_TRY(ParseTarget(&req));
  SV_TRY(ParseHeaders(lines, &req.headers));
  if (req.headers.count("transfer-encoding") != 0) {
    return Bad("Transfer-Encoding is not supported; send Content-Length");
  }
  SV_ASSIGN_OR_RETURN(size_t length, ContentLength(req.headers));
  size_t body_start = end + 4;
  if (data.size() - body_start < length) return std::optional<HttpRequest>();
  req.body = std::string(data.substr(body_start, length));
  return std::optional<HttpRequest>(std::move(req));
}

Result<std::optional<HttpResponse>> ParseHttpResponseHead(std::string_view data,
                                                          size_t* body_offset) {
  size_t end = data.find("\r\n\r\n");
  if (end == std::string_view::npos) {
    if (data.size() > kMaxHeaderBytes) return Bad("response head larger than 16 KiB");
    return std::optional<HttpResponse>();
  }
  auto lines = HeadLines(data.substr(0, end));
  if (lines.empty() || lines[0].size() < 12 || lines[0].substr(0, 5) != "HTTP/") {
    return Bad("malformed status line");
  }
  HttpResponse resp;
  std::string_view code = lines[0].substr(9, 3);
  if (!std::all_of(code.begin(), code.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return Bad("malformed status code");
  }
  resp.status = std::stoi(std::string(code));
  SV_TRY(ParseHeaders(lines, &resp.headers));
  *body_offset = end + 4;
  return std::optional<HttpResponse>(std::move(resp));
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
