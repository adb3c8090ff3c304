#include "common/log.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <string>

#include "common/unique_fd.h"

namespace storevisor {

std::string_view LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

Logger::Logger(int fd, LogFormat format, LogLevel min_level)
    : fd_(fd),
      json_(format == LogFormat::kJson || (format == LogFormat::kAuto && !::isatty(fd))),
      min_level_(min_level) {}

namespace {

bool LooksSecret(std::string key) {
  std::transform(key.begin(), key.end(), key.begin(), ::tolower);
  for (const char* word : {"token", "password", "passwd", "secret", "key", "credential"}) {
    if (key.find(word) != std::string::npos) return true;
  }
  return false;
}

nlohmann::json Redact(const nlohmann::json& fields) {
  if (!fields.is_object()) return fields;
  nlohmann::json out = nlohmann::json::object();
  for (auto it = fields.begin(); it != fields.end(); ++it) {
    out[it.key()] = LooksSecret(it.key()) ? nlohmann::json("<redacted>") : Redact(it.value());
  }
  return out;
}

std::string Timestamp() {
  auto now = std::chrono::system_clock::now();
  auto secs = std::chrono::system_clock::to_time_t(now);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()) % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms.count()));
  return buf;
}

}  // namespace

std::string Logger::Format(LogLevel level, std::string_view component, std::string_view message,
                           const nlohmann::json& fields) const {
  nlohmann::json safe = Redact(fields.is_null() ? nlohmann::json::object() : fields);
  if (json_) {
    nlohmann::json line = {{"ts", Timestamp()},
                           {"level", LogLevelName(level)},
                           {"component", component},
                           {"msg", message}};
    if (safe.is_object()) {
      for (auto it = safe.begin(); it != safe.end(); ++it) line[it.key()] = it.value();
    }
    return line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  std::string line = Timestamp().substr(11, 12) + " " + std::string(LogLevelName(level)) + " " +
                     std::string(component) + ": " + std::string(message);
  if (safe.is_object()) {
    for (auto it = safe.begin(); it != safe.end(); ++it) {
      line += " " + it.key() + "=" +
              (it.value().is_string()
                   ? it.value().get<std::string>()
                   : it.value().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    }
  }
  return line;
}

void Logger::Log(LogLevel level, std::string_view component, std::string_view message,
                 const nlohmann::json& fields) const {
  if (level < min_level_) return;
  std::string line = Format(level, component, message, fields) + "\n";
  (void)WriteAll(fd_, line);  // one write per line keeps lines whole across threads
}

}  // namespace storevisor
