// Errors as values: Error, Result<T>, Status, and the SV_TRY family.
//
// Libraries return Result<T>; only main() turns an Error into a message and an exit
// status. An Error carries a project-wide code (which maps to an exit status and an
// HTTP status), the errno if a syscall failed, and a message that grows a prefix of
// context at each layer it passes: "apply store-12: vm pos-1: open disk: No such file".
#pragma once

#include <cerrno>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

namespace storevisor {

enum class ErrorCode {
  kInvalidArgument,     // bad user input: a flag, a manifest field, an API request
  kNotFound,            // a named thing does not exist
  kAlreadyExists,       // creating something that is there
  kConflict,            // the state does not allow it (busy, wrong phase)
  kPermissionDenied,    // the OS or a policy refused
  kResourceExhausted,   // memory, CPUs, disk, a limit
  kFailedPrecondition,  // something needed first is missing (a tool, a kernel feature)
  kUnavailable,         // a peer is not answering (yet)
  kTimeout,             // gave up waiting
  kIo,                  // a read/write/syscall failed
  kGuestFault,          // a guest, image or peer sent something malformed: untrusted input
  kUnsupported,         // valid but not implemented/possible here
  kCancelled,           // stopped on request
  kInternal,            // a bug
};

// Exit statuses shared by every storevisor command (documented in docs/exit-codes.md).
int ExitCodeFor(ErrorCode code);
// HTTP status for the REST API.
int HttpStatusFor(ErrorCode code);
std::string_view ErrorCodeName(ErrorCode code);

class [[nodiscard]] Error {
 public:
  Error(ErrorCode code, std::string message, int sys_errno = 0)
      : code_(code), errno_(sys_errno), message_(std::move(message)) {}

  ErrorCode code() const { return code_; }
  int sys_errno() const { return errno_; }
  const std::string& message() const { return message_; }

  // Prepends "context: " to the message; returns *this so it chains.
  Error& Context(std::string_view context) &;
  Error&& Context(std::string_view context) &&;

  // "message" (the errno text is already part of the message for errno errors).
  std::string ToString() const { return message_; }

 private:
  ErrorCode code_;
  int errno_;
  std::string message_;
};

// An error for a failed syscall: "what: strerror(errno)". Reads errno unless given.
Error ErrnoError(std::string_view what, int err = errno);
// Maps an errno to the closest ErrorCode (ENOENT -> kNotFound, EACCES -> kPermissionDenied...).
ErrorCode ErrorCodeForErrno(int err);

template <typename T>
class [[nodiscard]] Result {
 public:
  using value_type = T;

  Result(const T& value) : v_(value) {}          // NOLINT(google-explicit-constructor)
  Result(T&& value) : v_(std::move(value)) {}    // NOLINT(google-explicit-constructor)
  Result(Error error) : v_(std::move(error)) {}  // NOLINT(google-explicit-constructor)
  // Lets `return SomethingConvertibleToT;` work (a string literal for Result<std::string>...).
  // NOLINTBEGIN(bugprone-forwarding-reference-overload): constrained to exclude T, Error, Result.
  template <typename U>
  requires(std::is_constructible_v<T, U&&> && !std::is_same_v<std::decay_t<U>, T> &&
           !std::is_same_v<std::decay_t<U>, Error> && !std::is_same_v<std::decay_t<U>, Result>)
      Result(U&& value)
      : v_(std::in_place_index<0>, std::forward<U>(value)) {}
  // NOLINTEND(bugprone-forwarding-reference-overload)

  bool has_value() const { return v_.index() == 0; }
  explicit operator bool() const { return has_value(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const& { return std::get<1>(v_); }
  Error& error() & { return std::get<1>(v_); }
  Error&& error() && { return std::get<1>(std::move(v_)); }

  template <typename U>
  T value_or(U&& fallback) const& {
    return has_value() ? value() : static_cast<T>(std::forward<U>(fallback));
  }

 private:
  std::variant<T, Error> v_;
};

// Result<void>: success carries nothing.
template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT

  bool has_value() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const& { return error_; }
  Error& error() & { return error_; }
  Error&& error() && { return std::move(error_); }

 private:
  Error error_{ErrorCode::kInternal, ""};
  bool ok_ = true;
};

using Status = Result<void>;

inline Status Ok() { return {}; }

}  // namespace storevisor

// NOLINTBEGIN(bugprone-macro-parentheses): lhs is a declaration, not an expression.
#define SV_CONCAT_INNER_(a, b) a##b
#define SV_CONCAT_(a, b) SV_CONCAT_INNER_(a, b)

// Returns the error of a Result/Status expression from the enclosing function.
#define SV_TRY(expr)                                                           \
  do {                                                                         \
    auto&& sv_try_result_ = (expr);                                            \
    if (!sv_try_result_.has_value()) return std::move(sv_try_result_).error(); \
  } while (0)

// Like SV_TRY, adding "context: " in front of the error's message.
#define SV_TRY_CTX(expr, context)                                                               \
  do {                                                                                          \
    auto&& sv_try_result_ = (expr);                                                             \
    if (!sv_try_result_.has_value()) return std::move(sv_try_result_).error().Context(context); \
  } while (0)

// SV_ASSIGN_OR_RETURN(auto x, Foo()); declares/assigns x from a Result or returns its error.
#define SV_ASSIGN_OR_RETURN(lhs, expr) \
  SV_ASSIGN_OR_RETURN_IMPL_(SV_CONCAT_(sv_result_, __LINE__), lhs, expr)
#define SV_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr)      \
  auto tmp = (expr);                                   \
  if (!tmp.has_value()) return std::move(tmp).error(); \
  lhs = std::move(tmp).value()

// Aborts with file:line: for broken invariants (bugs), never for user or guest input.
#define SV_CHECK(cond)                                                           \
  do {                                                                           \
    if (!(cond)) ::storevisor::internal::CheckFailed(#cond, __FILE__, __LINE__); \
  } while (0)

// NOLINTEND(bugprone-macro-parentheses)

namespace storevisor::internal {
[[noreturn]] void CheckFailed(const char* cond, const char* file, int line);
}  // namespace storevisor::internal
