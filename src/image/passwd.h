// Resolving an image config's `User` ("name", "name:group", "uid:gid", ...) through the
// image's own /etc/passwd and /etc/group, as runc and Docker do. Internal to src/image.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace storevisor::image {

struct ResolvedUser {
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::vector<uint32_t> additional_gids;  // groups listing the user as a member
};

// passwd and group are the files' contents (untrusted: malformed lines are skipped, numbers
// are checked). A numeric user needs no passwd entry; a name that is not there, or a
// group that is not in /etc/group, is an error naming it.
Result<ResolvedUser> ResolveImageUser(std::string_view user, std::string_view passwd,
                                      std::string_view group);

}  // namespace storevisor::image
