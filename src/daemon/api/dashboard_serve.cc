// The TCP listener's requests with the dashboard in front of the API (dashboard.h).
#include <unistd.h>

#include "api/json.h"
#include "daemon/api/api.h"
#include "daemon/api/dashboard.h"
#include "daemon/api/dashboard_history.h"
#include "daemon/daemon.h"

namespace storevisor::daemon {

void ServeWithDashboard(Daemon& daemon, Dashboard& dashboard, const UsageHistory& history,
                        const std::string& token, const HttpRequest& request, HttpConnection& conn,
                        const Peer& peer) {
  if (!peer.tcp) return ServeApi(daemon, request, conn, peer);
  constexpr std::string_view kHistory = "/ui/history/";
  if (request.path.rfind(kHistory, 0) == 0) {
    if (auto st = dashboard.CheckSessionRequest(request); !st) {
      conn.SendJson(403, api::ErrorJson(st.error()));
      return;
    }
    auto json = history.Json(request.path.substr(kHistory.size()));
    if (!json) {
      conn.SendJson(404, api::ErrorJson(json.error()));
      return;
    }
    conn.SendJson(200, *json);
    return;
  }
  if (request.path.rfind("/ui/ws/console/", 0) == 0) {
    return ServeConsoleWebSocket(daemon, dashboard, request, conn);
  }
  if (request.path.rfind("/ui/ws/display/", 0) == 0) {
    return ServeDisplayWebSocket(daemon, dashboard, request, conn);
  }
  if (Dashboard::IsDashboardPath(request.path)) return dashboard.Serve(request, conn, peer.Key());
  if (!TokenMatches(token, request)) {
    if (auto st = dashboard.CheckSessionRequest(request); !st) {
      conn.SendJson(403, api::ErrorJson(st.error()));
      return;
    }
  }
  ServeApi(daemon, request, conn, peer);
}

bool IsLongDashboardRequest(const HttpRequest& request) {
  return IsLongRequest(request) || request.path.rfind("/ui/ws/", 0) == 0;
}

std::string DefaultWebDir(const std::string& self_exe) {
  std::string beside = self_exe.substr(0, self_exe.rfind('/') + 1) + "web";
  if (::access((beside + "/index.html").c_str(), R_OK) == 0) return beside;
  return "/usr/share/storevisor/web";
}

}  // namespace storevisor::daemon
