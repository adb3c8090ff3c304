#include "image/passwd.h"

#include <optional>
#include <string>

namespace storevisor::image {
namespace {

std::vector<std::string_view> Fields(std::string_view line) {
  std::vector<std::string_view> out;
  for (size_t pos = 0;;) {
    size_t colon = line.find(':', pos);
    out.push_back(line.substr(pos, colon == std::string_view::npos ? colon : colon - pos));
    if (colon == std::string_view::npos || out.size() > 16) return out;
    pos = colon + 1;
  }
}

std::optional<uint32_t> Id(std::string_view s) {
  if (s.empty() || s.size() > 10 || s.find_first_not_of("0123456789") != std::string_view::npos)
    return std::nullopt;
  uint64_t v = 0;
  for (char c : s) v = v * 10 + static_cast<uint64_t>(c - '0');
  if (v > UINT32_MAX - 1) return std::nullopt;  // (uint32_t)-1 means "no id" to the kernel
  return static_cast<uint32_t>(v);
}

template <typename F>
void ForEachLine(std::string_view text, F f) {
  for (size_t pos = 0; pos < text.size();) {
    size_t nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, nl == std::string_view::npos ? nl : nl - pos);
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    if (line.empty() || line[0] == '#') continue;
    f(Fields(line));
  }
}

}  // namespace

Result<ResolvedUser> ResolveImageUser(std::string_view user, std::string_view passwd,
                                      std::string_view group) {
  if (user.empty() || user.size() > 256)
    return Error(ErrorCode::kGuestFault,
                 "image user '" + std::string(user.substr(0, 64)) + "' is empty or too long");
  size_t colon = user.find(':');
  std::string_view u = user.substr(0, colon);
  std::string_view g =
      colon == std::string_view::npos ? std::string_view() : user.substr(colon + 1);
  if (u.empty() || (colon != std::string_view::npos && g.empty()))
    return Error(ErrorCode::kGuestFault,
                 "image user '" + std::string(user) + "': want USER[:GROUP]");
  ResolvedUser r;
  const std::optional<uint32_t> numeric = Id(u);
  std::optional<uint32_t> uid = numeric;
  std::optional<uint32_t> primary;
  std::string name;
  ForEachLine(passwd, [&](const std::vector<std::string_view>& f) {
    if (!name.empty() || f.size() < 4) return;  // the first matching entry wins
    auto fu = Id(f[2]), fg = Id(f[3]);
    if (!fu || !fg) return;
    if (numeric ? *fu == *numeric : f[0] == u) {
      uid = fu;
      primary = fg;
      name = std::string(f[0]);
    }
  });
  if (!uid)
    return Error(ErrorCode::kGuestFault,
                 "image user '" + std::string(u) + "' is not in the image's /etc/passwd");
  r.uid = *uid;
  r.gid = primary.value_or(0);  // a numeric uid without a passwd entry runs as gid 0
  if (!g.empty()) {
    std::optional<uint32_t> gid = Id(g);
    bool found = gid.has_value();
    ForEachLine(group, [&](const std::vector<std::string_view>& f) {
      if (found || f.size() < 3) return;
      auto fg = Id(f[2]);
      if (fg && f[0] == g) {
        gid = fg;
        found = true;
      }
    });
    if (!gid)
      return Error(ErrorCode::kGuestFault,
                   "image group '" + std::string(g) + "' is not in the image's /etc/group");
    r.gid = *gid;
  }
  // Supplementary groups: those listing the user's name as a member.
  if (!name.empty()) {
    ForEachLine(group, [&](const std::vector<std::string_view>& f) {
      if (f.size() < 4 || r.additional_gids.size() >= 64) return;
      auto fg = Id(f[2]);
      if (!fg || *fg == r.gid) return;
      std::string_view members = f[3];
      for (size_t pos = 0; pos <= members.size();) {
        size_t comma = members.find(',', pos);
        std::string_view m =
            members.substr(pos, comma == std::string_view::npos ? comma : comma - pos);
        if (m == name) {
          r.additional_gids.push_back(*fg);
          break;
        }
        if (comma == std::string_view::npos) break;
        pos = comma + 1;
      }
    });
  }
  return r;
}

}  // namespace storevisor::image
