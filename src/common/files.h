// Whole-file helpers. WriteFileAtomic is the project's crash-safe write: a reader sees
// either the old content or the new, never a torn file, even after a power cut.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

#include "common/error.h"

namespace storevisor {

// Reads a whole file; files larger than max_bytes are refused (untrusted sizes).
Result<std::string> ReadFile(const std::string& path, size_t max_bytes = 64u << 20);

// Writes to "<path>.tmp-<pid>", fsyncs it, renames it over path and fsyncs the directory.
Status WriteFileAtomic(const std::string& path, std::string_view data, mode_t mode = 0644);
// The same without the fsyncs: a reader still sees the old or the new file whole, but a power
// cut may lose the write. For status that is news now and worthless later (a shim's exit
// status, which the daemon reads the moment it appears), where two fsyncs cost milliseconds.
Status WriteFileReplace(const std::string& path, std::string_view data, mode_t mode = 0644);

// mkdir -p with the given mode for the directories it creates.
Status MakeDirs(const std::string& path, mode_t mode = 0755);

// Removes a file or a whole tree; a missing path is not an error.
Status RemoveAll(const std::string& path);

}  // namespace storevisor
