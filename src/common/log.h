// Logger: one line per event, JSON for machines (the default when not on a terminal) or
// a readable line for humans. A logger is an object handed to whoever logs, not a global.
// Field names that look like secrets (token, password, secret, key) are redacted.
#pragma once

#include <nlohmann/json.hpp>
#include <string_view>

namespace storevisor {

enum class LogLevel { kDebug, kInfo, kWarn, kError };
enum class LogFormat { kAuto, kHuman, kJson };

class Logger {
 public:
  // Writes to fd (not owned). kAuto picks kHuman when fd is a terminal.
  explicit Logger(int fd = 2, LogFormat format = LogFormat::kAuto,
                  LogLevel min_level = LogLevel::kInfo);

  void Log(LogLevel level, std::string_view component, std::string_view message,
           const nlohmann::json& fields = nlohmann::json::object()) const;
  void Debug(std::string_view c, std::string_view m, const nlohmann::json& f = {}) const {
    Log(LogLevel::kDebug, c, m, f);
  }
  void Info(std::string_view c, std::string_view m, const nlohmann::json& f = {}) const {
    Log(LogLevel::kInfo, c, m, f);
  }
  void Warn(std::string_view c, std::string_view m, const nlohmann::json& f = {}) const {
    Log(LogLevel::kWarn, c, m, f);
  }
  void Error(std::string_view c, std::string_view m, const nlohmann::json& f = {}) const {
    Log(LogLevel::kError, c, m, f);
  }

  // The line Log() would write, without the newline (for tests and other sinks).
  std::string Format(LogLevel level, std::string_view component, std::string_view message,
                     const nlohmann::json& fields) const;

 private:
  int fd_;
  bool json_;
  LogLevel min_level_;
};

std::string_view LogLevelName(LogLevel level);

}  // namespace storevisor
