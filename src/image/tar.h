// A strict tar reader (ustar, GNU long names, PAX path/linkpath/size) over any byte source,
// and a small deterministic writer. Every header is checksummed and every number bounded;
// a truncated archive (EOF inside an entry, or no end-of-archive block) is an error.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/error.h"
#include "common/unique_fd.h"

namespace storevisor::image {

// A byte source: Read returns 0 at EOF.
class Source {
 public:
  virtual ~Source() = default;
  virtual Result<size_t> Read(char* buf, size_t n) = 0;
};

// Reads from an fd (not owned).
class FdSource : public Source {
 public:
  explicit FdSource(int fd) : fd_(fd) {}
  Result<size_t> Read(char* buf, size_t n) override;

 private:
  int fd_;
};

// Reads from memory (fuzzing, tests).
class MemorySource : public Source {
 public:
  explicit MemorySource(std::string_view data) : data_(data) {}
  Result<size_t> Read(char* buf, size_t n) override;

 private:
  std::string_view data_;
};

// Inflates gzip from another source.
std::unique_ptr<Source> GzipSource(Source& inner);
// Wraps a source so that it is a gzip stream when it starts with the gzip magic, else raw.
// Zstd layers are refused with a clear error.
Result<std::unique_ptr<Source>> MaybeDecompress(Source& inner);

struct TarEntry {
  std::string path;      // as in the archive
  std::string linkname;  // symlink target or hard link target
  char type = '0';  // '0' file, '1' hard link, '2' symlink, '3' char, '4' block, '5' dir, '6' fifo
  uint32_t mode = 0;
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint64_t size = 0;
  int64_t mtime = 0;
  uint32_t devmajor = 0;
  uint32_t devminor = 0;
  // PAX SCHILY.xattr.NAME records (name, raw value), as GNU tar and Docker write them.
  std::vector<std::pair<std::string, std::string>> xattrs = {};
};

inline constexpr size_t kMaxXattrsPerEntry = 128;
inline constexpr size_t kMaxXattrValue = 64u << 10;

inline constexpr uint64_t kMaxEntrySize = uint64_t{64} << 30;
inline constexpr size_t kMaxPaxBytes = 1u << 20;

class TarReader {
 public:
  explicit TarReader(Source& src) : src_(src) {}
  // The next entry, or nullopt at the end-of-archive marker. The caller reads the entry's
  // data with ReadData (or leaves it: Next skips what was not read).
  Result<std::optional<TarEntry>> Next();
  // Reads up to n bytes of the current entry's data; 0 at its end.
  Result<size_t> ReadData(char* buf, size_t n);
  // Number of headers seen (for error messages).
  uint64_t entries() const { return entries_; }

 private:
  Status ReadFull(char* buf, size_t n);
  Status Skip(uint64_t n);
  Result<std::string> ReadSmallData(uint64_t size);

  Source& src_;
  uint64_t remaining_ = 0;  // data bytes of the current entry not yet read
  uint64_t padding_ = 0;    // zero padding after the current entry's data
  uint64_t entries_ = 0;
};

// Writes a tar stream to an fd with ustar headers (PAX records for long names).
class TarWriter {
 public:
  explicit TarWriter(int fd) : fd_(fd) {}
  Status Add(const TarEntry& e, const std::function<Result<size_t>(char*, size_t)>& data = {});
  Status Finish();

 private:
  Status Header(const TarEntry& e);
  int fd_;
};

}  // namespace storevisor::image
