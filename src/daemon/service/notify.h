// Readiness and stop notices for systemd (a `Type=notify` unit): the datagram protocol of
// sd_notify(3), done here in a few lines instead of linking libsystemd.
#pragma once

#include <string>
#include <string_view>

#include "common/error.h"

namespace storevisor::daemon {

// Sends `state` ("READY=1", "STOPPING=1", ...) to the AF_UNIX datagram socket at
// `socket_path`; a leading '@' names an abstract socket, as in $NOTIFY_SOCKET.
Status Notify(const std::string& socket_path, std::string_view state);

// Notify() to $NOTIFY_SOCKET; does nothing (Ok) when the variable is unset, i.e. when the
// daemon is not started by systemd as a notify service.
Status NotifySystemd(std::string_view state);

}  // namespace storevisor::daemon
