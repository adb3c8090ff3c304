#include "image/tar.h"

#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <vector>

namespace storevisor::image {
namespace {

constexpr size_t kBlock = 512;

Error Corrupt(uint64_t entry, const std::string& what) {
  return Error(ErrorCode::kGuestFault, "tar entry " + std::to_string(entry) + ": " + what +
                                           " (corrupt or not a tar archive)");
}

// Octal (NUL/space terminated) or GNU base-256 numeric field.
std::optional<uint64_t> ParseNumber(const char* field, size_t len) {
  if (static_cast<unsigned char>(field[0]) & 0x80) {
    if (static_cast<unsigned char>(field[0]) != 0x80) return std::nullopt;  // negative/huge
    uint64_t v = 0;
    for (size_t i = 1; i < len; ++i) {
      if (v >> 56) return std::nullopt;
      v = (v << 8) | static_cast<unsigned char>(field[i]);
    }
    return v;
  }
  uint64_t v = 0;
  size_t i = 0;
  while (i < len && field[i] == ' ') ++i;
  bool digits = false;
  for (; i < len && field[i] != 0 && field[i] != ' '; ++i) {
    if (field[i] < '0' || field[i] > '7') return std::nullopt;
    if (v >> 60) return std::nullopt;
    v = v * 8 + static_cast<uint64_t>(field[i] - '0');
    digits = true;
  }
  for (; i < len; ++i) {
    if (field[i] != 0 && field[i] != ' ') return std::nullopt;
  }
  if (!digits) return 0;
  return v;
}

std::string Field(const char* f, size_t len) { return std::string(f, strnlen(f, len)); }

bool ChecksumOk(const char* h) {
  auto stored = ParseNumber(h + 148, 8);
  if (!stored) return false;
  uint64_t sum = 0;
  for (size_t i = 0; i < kBlock; ++i) {
    sum += (i >= 148 && i < 156) ? ' ' : static_cast<unsigned char>(h[i]);
  }
  return sum == *stored;
}

// PAX records: "LEN key=value\n"...
// Which header fields PAX records replaced.
struct PaxSeen {
  bool path = false, link = false, size = false, uid = false, gid = false, mtime = false;
};

// A decimal PAX number; mtime may carry a fraction ("1700000000.5"), which is dropped.
std::optional<uint64_t> PaxNumber(std::string_view v, bool fraction_ok) {
  if (fraction_ok) v = v.substr(0, v.find('.'));
  if (v.empty() || v.size() > 19) return std::nullopt;
  uint64_t dec = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return std::nullopt;
    dec = dec * 10 + static_cast<uint64_t>(c - '0');
  }
  return dec;
}

Status ApplyPax(std::string_view data, TarEntry& e, PaxSeen& seen, uint64_t entry) {
  while (!data.empty()) {
    size_t sp = data.find(' ');
    if (sp == std::string_view::npos || sp == 0 || sp > 10) return Corrupt(entry, "bad PAX record");
    uint64_t len = 0;
    for (size_t i = 0; i < sp; ++i) {
      if (data[i] < '0' || data[i] > '9') return Corrupt(entry, "bad PAX record length");
      len = len * 10 + static_cast<uint64_t>(data[i] - '0');
    }
    if (len <= sp + 1 || len > data.size() || data[len - 1] != '\n') {
      return Corrupt(entry, "bad PAX record length");
    }
    std::string_view rec = data.substr(sp + 1, len - sp - 2);
    size_t eq = rec.find('=');
    if (eq == std::string_view::npos) return Corrupt(entry, "PAX record without '='");
    std::string_view key = rec.substr(0, eq), value = rec.substr(eq + 1);
    if (key == "path") {
      e.path = std::string(value);
      seen.path = true;
    } else if (key == "linkpath") {
      e.linkname = std::string(value);
      seen.link = true;
    } else if (key == "size") {
      auto dec = PaxNumber(value, false);
      if (!dec || *dec > kMaxEntrySize) return Corrupt(entry, "bad PAX size");
      e.size = *dec;
      seen.size = true;
    } else if (key == "uid" || key == "gid") {
      auto dec = PaxNumber(value, false);
      if (!dec || *dec > UINT32_MAX) return Corrupt(entry, "bad PAX " + std::string(key));
      (key == "uid" ? e.uid : e.gid) = static_cast<uint32_t>(*dec);
      (key == "uid" ? seen.uid : seen.gid) = true;
    } else if (key == "mtime") {
      auto dec = PaxNumber(value, true);
      if (!dec) return Corrupt(entry, "bad PAX mtime");
      e.mtime = static_cast<int64_t>(std::min<uint64_t>(*dec, INT64_MAX));
      seen.mtime = true;
    } else if (key.substr(0, 13) == "SCHILY.xattr.") {
      std::string_view name = key.substr(13);
      if (name.empty() || name.size() > 255 || name.find('\0') != std::string_view::npos)
        return Corrupt(entry, "bad PAX xattr name");
      if (value.size() > kMaxXattrValue) return Corrupt(entry, "PAX xattr value too large");
      if (e.xattrs.size() >= kMaxXattrsPerEntry) return Corrupt(entry, "too many PAX xattrs");
      e.xattrs.emplace_back(std::string(name), std::string(value));
    }
    data.remove_prefix(len);
  }
  return Ok();
}

class Gzip : public Source {
 public:
  explicit Gzip(Source& inner) : inner_(inner) {
    z_ = {};
    ok_ = inflateInit2(&z_, 15 + 32) == Z_OK;
  }
  Gzip(const Gzip&) = delete;
  Gzip& operator=(const Gzip&) = delete;
  ~Gzip() override {
    if (ok_) inflateEnd(&z_);
  }
  Result<size_t> Read(char* buf, size_t n) override {
    if (!ok_) return Error(ErrorCode::kInternal, "gzip: inflateInit failed");
    if (done_ || n == 0) return size_t{0};
    z_.next_out = reinterpret_cast<Bytef*>(buf);
    z_.avail_out = static_cast<uInt>(std::min<size_t>(n, 1u << 30));
    while (z_.avail_out == static_cast<uInt>(std::min<size_t>(n, 1u << 30))) {
      if (z_.avail_in == 0) {
        SV_ASSIGN_OR_RETURN(size_t got, inner_.Read(in_, sizeof in_));
        if (got == 0) return Error(ErrorCode::kGuestFault, "gzip: stream truncated");
        z_.next_in = reinterpret_cast<Bytef*>(in_);
        z_.avail_in = static_cast<uInt>(got);
      }
      int rc = inflate(&z_, Z_NO_FLUSH);
      if (rc == Z_STREAM_END) {
        done_ = true;
        break;
      }
      if (rc != Z_OK && rc != Z_BUF_ERROR) {
        return Error(ErrorCode::kGuestFault,
                     std::string("gzip: corrupt data: ") + (z_.msg ? z_.msg : "?"));
      }
    }
    return static_cast<size_t>(std::min<size_t>(n, 1u << 30) - z_.avail_out);
  }

 private:
  Source& inner_;
  z_stream z_;
  bool ok_ = false;
  bool done_ = false;
  char in_[64 << 10];
};

// Serves already-read bytes, then the rest of the inner source.
class Prefixed : public Source {
 public:
  Prefixed(std::string prefix, Source& inner) : prefix_(std::move(prefix)), inner_(inner) {}
  Result<size_t> Read(char* buf, size_t n) override {
    if (pos_ < prefix_.size()) {
      size_t k = std::min(n, prefix_.size() - pos_);
      std::memcpy(buf, prefix_.data() + pos_, k);
      pos_ += k;
      return k;
    }
    return inner_.Read(buf, n);
  }

 private:
  std::string prefix_;
  size_t pos_ = 0;
  Source& inner_;
};

class Owning : public Source {
 public:
  Owning(std::unique_ptr<Source> a, std::unique_ptr<Source> b)
      : a_(std::move(a)), b_(std::move(b)) {}
  Result<size_t> Read(char* buf, size_t n) override { return b_->Read(buf, n); }

 private:
  std::unique_ptr<Source> a_;
  std::unique_ptr<Source> b_;
};

}  // namespace

Result<size_t> FdSource::Read(char* buf, size_t n) {
  for (;;) {
    ssize_t r = ::read(fd_, buf, n);
    if (r >= 0) return static_cast<size_t>(r);
    if (errno != EINTR) return ErrnoError("read");
  }
}

Result<size_t> MemorySource::Read(char* buf, size_t n) {
  size_t k = std::min(n, data_.size());
  std::memcpy(buf, data_.data(), k);
  data_.remove_prefix(k);
  return k;
}

std::unique_ptr<Source> GzipSource(Source& inner) { return std::make_unique<Gzip>(inner); }

Result<std::unique_ptr<Source>> MaybeDecompress(Source& inner) {
  std::string head(4, '\0');
  size_t got = 0;
  while (got < 4) {
    SV_ASSIGN_OR_RETURN(size_t n, inner.Read(head.data() + got, 4 - got));
    if (n == 0) break;
    got += n;
  }
  head.resize(got);
  auto prefixed = std::make_unique<Prefixed>(head, inner);
  if (got >= 2 && static_cast<unsigned char>(head[0]) == 0x1f &&
      static_cast<unsigned char>(head[1]) == 0x8b) {
    auto gz = std::make_unique<Gzip>(*prefixed);
    return std::unique_ptr<Source>(std::make_unique<Owning>(std::move(prefixed), std::move(gz)));
  }
  if (got == 4 && head == std::string("\x28\xb5\x2f\xfd", 4)) {
    return Error(ErrorCode::kUnsupported,
                 "zstd-compressed layers are not supported (use gzip or none)");
  }
  return std::unique_ptr<Source>(std::move(prefixed));
}

Status TarReader::ReadFull(char* buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    SV_ASSIGN_OR_RETURN(size_t r, src_.Read(buf + got, n - got));
    if (r == 0) return Corrupt(entries_, "archive truncated");
    got += r;
  }
  return Ok();
}

Status TarReader::Skip(uint64_t n) {
  char buf[8192];
  while (n > 0) {
    size_t k = static_cast<size_t>(std::min<uint64_t>(n, sizeof buf));
    SV_TRY(ReadFull(buf, k));
    n -= k;
  }
  return Ok();
}

Result<std::string> TarReader::ReadSmallData(uint64_t size) {
  if (size > kMaxPaxBytes) return Corrupt(entries_, "extended header larger than 1 MiB");
  std::string s(static_cast<size_t>(size), '\0');
  SV_TRY(ReadFull(s.data(), s.size()));
  remaining_ = 0;
  SV_TRY(Skip(padding_));
  padding_ = 0;
  return s;
}

Result<size_t> TarReader::ReadData(char* buf, size_t n) {
  if (remaining_ == 0) return size_t{0};
  size_t k = static_cast<size_t>(std::min<uint64_t>(n, remaining_));
  SV_TRY(ReadFull(buf, k));
  remaining_ -= k;
  return k;
}

Result<std::optional<TarEntry>> TarReader::Next() {
  SV_TRY(Skip(remaining_ + padding_));
  remaining_ = padding_ = 0;
  TarEntry e;
  PaxSeen seen;
  for (int extended = 0; extended < 8; ++extended) {
    char h[kBlock];
    SV_TRY(ReadFull(h, kBlock));
    ++entries_;
    if (std::all_of(h, h + kBlock, [](char c) { return c == 0; })) return std::optional<TarEntry>();
    if (!ChecksumOk(h)) return Corrupt(entries_, "header checksum mismatch");
    auto size = ParseNumber(h + 124, 12);
    if (!size || *size > kMaxEntrySize) return Corrupt(entries_, "bad size field");
    char type = h[156] == 0 ? '0' : h[156];
    remaining_ = *size;
    padding_ = (kBlock - *size % kBlock) % kBlock;
    if (type == 'x' || type == 'L' || type == 'K' || type == 'g') {
      SV_ASSIGN_OR_RETURN(std::string data, ReadSmallData(*size));
      if (type == 'x') {
        SV_TRY(ApplyPax(data, e, seen, entries_));
      } else if (type == 'L') {
        e.path = data.substr(0, strnlen(data.c_str(), data.size()));
        seen.path = true;
      } else if (type == 'K') {
        e.linkname = data.substr(0, strnlen(data.c_str(), data.size()));
        seen.link = true;
      }
      continue;
    }
    if (std::string_view("0123456789Z7").find(type) == std::string_view::npos &&
        !(type >= 'A' && type <= 'Z')) {
      return Corrupt(entries_, std::string("unknown entry type '") + type + "'");
    }
    e.type = type == '7' ? '0' : type;
    if (!seen.path) {
      std::string name = Field(h, 100);
      std::string prefix = std::memcmp(h + 257, "ustar", 5) == 0 ? Field(h + 345, 155) : "";
      if (!prefix.empty()) name.insert(0, prefix + "/");
      e.path = name;
    }
    if (!seen.link) e.linkname = Field(h + 157, 100);
    auto mode = ParseNumber(h + 100, 8), uid = ParseNumber(h + 108, 8),
         gid = ParseNumber(h + 116, 8), mtime = ParseNumber(h + 136, 12),
         dmaj = ParseNumber(h + 329, 8), dmin = ParseNumber(h + 337, 8);
    // Fields a PAX record replaced may hold anything in the header (tar writes zeros).
    if (!mode || (!uid && !seen.uid) || (!gid && !seen.gid) || (!mtime && !seen.mtime) ||
        (!seen.uid && *uid > UINT32_MAX) || (!seen.gid && *gid > UINT32_MAX)) {
      return Corrupt(entries_, "bad numeric field in " + e.path);
    }
    e.mode = static_cast<uint32_t>(*mode & 07777);
    if (!seen.uid) e.uid = static_cast<uint32_t>(*uid);
    if (!seen.gid) e.gid = static_cast<uint32_t>(*gid);
    if (!seen.mtime) e.mtime = static_cast<int64_t>(std::min<uint64_t>(*mtime, INT64_MAX));
    e.devmajor = static_cast<uint32_t>(dmaj.value_or(0) & 0xfff);
    e.devminor = static_cast<uint32_t>(dmin.value_or(0) & 0xfffff);
    e.size = seen.size ? e.size : *size;
    if (seen.size) {
      remaining_ = e.size;
      padding_ = (kBlock - e.size % kBlock) % kBlock;
    }
    if (e.type != '0') {
      // Only regular files carry data we hand out; skip any other payload.
      SV_TRY(Skip(remaining_ + padding_));
      remaining_ = padding_ = 0;
      e.size = 0;
    }
    if (e.path.empty()) return Corrupt(entries_, "empty path");
    if (e.path.find('\0') != std::string::npos || e.linkname.find('\0') != std::string::npos) {
      return Corrupt(entries_, "NUL byte in a name");
    }
    return std::optional<TarEntry>(std::move(e));
  }
  return Corrupt(entries_, "too many extended headers in a row");
}

namespace {

// len-1 octal digits and a NUL; values that do not fit use GNU base-256.
void PutOctal(char* f, size_t len, uint64_t v) {
  if (len - 1 < 22 && (v >> (3 * (len - 1))) != 0) {
    std::memset(f, 0, len);
    f[0] = static_cast<char>(0x80);
    for (size_t i = len - 1; i > 0 && v != 0; --i, v >>= 8) f[i] = static_cast<char>(v & 0xff);
    return;
  }
  f[len - 1] = 0;
  for (size_t i = len - 1; i > 0; --i, v >>= 3) f[i - 1] = static_cast<char>('0' + (v & 7));
}

std::string PaxRecord(const std::string& key, const std::string& value) {
  std::string body = " " + key + "=" + value + "\n";
  size_t len = body.size() + 1;
  while (std::to_string(len).size() + body.size() != len) ++len;
  return std::to_string(len) + body;
}

}  // namespace

Status TarWriter::Header(const TarEntry& e) {
  char h[kBlock] = {};
  std::strncpy(h, e.path.c_str(), 99);
  PutOctal(h + 100, 8, e.mode);
  PutOctal(h + 108, 8, e.uid);
  PutOctal(h + 116, 8, e.gid);
  PutOctal(h + 124, 12, e.size);
  PutOctal(h + 136, 12, static_cast<uint64_t>(std::max<int64_t>(e.mtime, 0)));
  h[156] = e.type;
  std::strncpy(h + 157, e.linkname.c_str(), 99);
  std::memcpy(h + 257, "ustar", 6);  // magic with its NUL
  h[263] = '0';                      // version "00"
  h[264] = '0';
  PutOctal(h + 329, 8, e.devmajor);
  PutOctal(h + 337, 8, e.devminor);
  std::memset(h + 148, ' ', 8);
  uint64_t sum = 0;
  for (char c : h) sum += static_cast<unsigned char>(c);
  PutOctal(h + 148, 7, sum);
  return WriteAll(fd_, std::string_view(h, kBlock));
}

Status TarWriter::Add(const TarEntry& e, const std::function<Result<size_t>(char*, size_t)>& data) {
  if (e.path.size() > 99 || e.linkname.size() > 99 || !e.xattrs.empty()) {
    std::string pax =
        PaxRecord("path", e.path) + (e.linkname.empty() ? "" : PaxRecord("linkpath", e.linkname));
    for (const auto& [name, value] : e.xattrs) pax += PaxRecord("SCHILY.xattr." + name, value);
    TarEntry x;
    x.path = "PaxHeader";
    x.type = 'x';
    x.mode = 0644;
    x.size = pax.size();
    SV_TRY(Header(x));
    SV_TRY(WriteAll(fd_, pax));
    SV_TRY(WriteAll(fd_, std::string((kBlock - pax.size() % kBlock) % kBlock, '\0')));
  }
  SV_TRY(Header(e));
  if (e.type != '0' || e.size == 0) return Ok();
  uint64_t left = e.size;
  std::vector<char> buf(1 << 16);
  while (left > 0) {
    SV_ASSIGN_OR_RETURN(
        size_t n, data(buf.data(), static_cast<size_t>(std::min<uint64_t>(left, buf.size()))));
    if (n == 0) return Error(ErrorCode::kIo, "tar: " + e.path + " shrank while being archived");
    SV_TRY(WriteAll(fd_, std::string_view(buf.data(), n)));
    left -= n;
  }
  return WriteAll(fd_, std::string((kBlock - e.size % kBlock) % kBlock, '\0'));
}

Status TarWriter::Finish() { return WriteAll(fd_, std::string(2 * kBlock, '\0')); }

}  // namespace storevisor::image
