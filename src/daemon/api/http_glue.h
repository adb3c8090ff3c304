// Between Beast's request parser and HttpRequest (http_parse.cc): shared by the server's
// sessions and ParseHttpRequest, so the fuzz target covers what the server runs.
#pragma once

#include <boost/beast/http.hpp>

#include "daemon/api/http.h"

namespace storevisor::daemon {

namespace http = boost::beast::http;

// Our limits on a parser: 16 KiB of head, 2 MiB of body.
void LimitParser(http::request_parser<http::string_body>& parser);
// A parse failure: kResourceExhausted for a limit (413), else kInvalidArgument (400).
Error ParserError(const boost::system::error_code& ec);
// A message's head (method, target, fields) into request, checked with FillRequestHead.
Status FillHeadFrom(const http::request<http::string_body>& msg, HttpRequest* request);
// A complete message (head checked with FillRequestHead, body) into an HttpRequest.
Result<HttpRequest> RequestFromParser(http::request_parser<http::string_body>& parser);

}  // namespace storevisor::daemon
