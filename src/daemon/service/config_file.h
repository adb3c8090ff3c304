// storevisord's configuration file: the same settings as its flags, one `key = value` line
// each (TOML/INI as CLI11 reads it; keys are the long flag names without "--"). Flags on
// the command line override the file. The package ships /etc/storevisor/storevisord.conf.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

namespace storevisor::daemon {

inline constexpr char kDefaultConfigFile[] = "/etc/storevisor/storevisord.conf";

// Adds `--config FILE` to `app` (default `default_path`). A missing default file is no
// error (a build-tree daemon runs without one); a missing file named by --config is, and so
// is an unknown key (a typo must not be ignored silently). `--config ''` reads none. Add
// it after the other options; the errors are CLI::ParseError from app.parse().
void AddConfigFile(CLI::App& app, const std::string& default_path = kDefaultConfigFile);

}  // namespace storevisor::daemon
