// `storevisor image rm [--force] NAME:TAG`: the image store's rm, guarded by storevisord.
// The CLI removes images itself (src/image), so it first asks the daemon which images its
// workloads use (GET /v1/images/in-use) and refuses those (docs/image.md).
#pragma once

#include <string>
#include <vector>

#include "api/types.h"
#include "common/error.h"

namespace storevisor::cli {

// The workloads that keep `ref` (normalized NAME:TAG) from being removed from the image
// store at `root`: none when the daemon resolves images in another store.
std::vector<std::string> WorkloadsUsing(const api::ImagesInUse& in_use, const std::string& root,
                                        const std::string& ref);

// Runs `image [--root DIR] rm [--force] REF` (args: what follows `image`) against the daemon
// at endpoint; returns the exit status. Without a daemon (kUnavailable) nothing can be
// running on the image: it is removed, with a note saying so.
int ImageRm(const std::string& endpoint, const std::string& bearer,
            const std::vector<std::string>& args);

// Whether args (what follows `image`, after any --root) is an rm this guard handles.
bool IsImageRm(const std::vector<std::string>& args);

}  // namespace storevisor::cli
