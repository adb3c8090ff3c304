// storevisor-vm: the thin command over the VM engine (src/vm/vm.h).
//   run       boot (or restore) one microvm guest; foreground or --detach
//   status    re-attach to a detached VM through QMP
//   exec      run a command in the guest through the agent
//   stop      clean shutdown (agent, ACPI power button, kill)
//   snapshot  boot to ready, save the state for instant starts
// Exit statuses: docs/exit-codes.md for errors, docs/vm.md for the guest's fate.
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "common/files.h"
#include "vm/cli.h"

int main(int argc, char** argv) {
  using storevisor::vm::cli::Options;
  Options o;
  CLI::App app{"storevisor-vm: QEMU microVMs for Storevisor"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "storevisor-vm " SV_VERSION);
  storevisor::vm::cli::Define(app, &o);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;  // 2: invalid-argument, as in docs/exit-codes.md
  }
  return storevisor::vm::cli::Run(app, o);
}
