// The apply-time network check of a profile (src/net's CheckProfileNetworks) fed from the
// profile model: what the daemon calls before it touches anything.
#pragma once

#include <set>
#include <string>

#include "daemon/profile/profile.h"
#include "net/check.h"

namespace storevisor::daemon {

// The profile's networks and published ports, with file, line and field path of each.
// `own_bridges`: the bridges this daemon made (their addresses are not a clash);
// `current`: the profile applied now, or nullptr (its ports are this daemon's own).
net::ProfileNetworks ProfileNetworksOf(const Profile& next, const Profile* current,
                                       const std::set<std::string>& own_bridges);

// Ok, or kInvalidArgument (exit status 2) "file:line: field: ..." for the first of: two
// subnets overlapping, a subnet overlapping an address on the host (not on this daemon's
// bridges), a published host port another process holds (TCP or UDP, any address).
Status CheckNetworksAtApply(const Profile& next, const Profile* current,
                            const std::set<std::string>& own_bridges, const net::HostProbe& host);

}  // namespace storevisor::daemon
