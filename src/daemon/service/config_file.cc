#include "daemon/service/config_file.h"

namespace storevisor::daemon {

void AddConfigFile(CLI::App& app, const std::string& default_path) {
  app.set_config("--config", default_path,
                 "settings file, `key = value` per line with the long flag names as keys "
                 "(flags override it; '' reads none)");
  app.allow_config_extras(CLI::config_extras_mode::error);
}

}  // namespace storevisor::daemon
