#include "common/error.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace storevisor {

int ExitCodeFor(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return 2;
    case ErrorCode::kNotFound:
      return 3;
    case ErrorCode::kAlreadyExists:
      return 4;
    case ErrorCode::kConflict:
      return 5;
    case ErrorCode::kPermissionDenied:
      return 6;
    case ErrorCode::kResourceExhausted:
      return 7;
    case ErrorCode::kFailedPrecondition:
      return 8;
    case ErrorCode::kUnavailable:
      return 9;
    case ErrorCode::kTimeout:
      return 10;
    case ErrorCode::kIo:
      return 11;
    case ErrorCode::kGuestFault:
      return 12;
    case ErrorCode::kUnsupported:
      return 13;
    case ErrorCode::kCancelled:
      return 14;
    case ErrorCode::kInternal:
      return 70;  // EX_SOFTWARE
  }
  return 1;
}

int HttpStatusFor(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return 400;
    case ErrorCode::kNotFound:
      return 404;
    case ErrorCode::kAlreadyExists:
      return 409;
    case ErrorCode::kConflict:
      return 409;
    case ErrorCode::kPermissionDenied:
      return 403;
    case ErrorCode::kResourceExhausted:
      return 507;
    case ErrorCode::kFailedPrecondition:
      return 412;
    case ErrorCode::kUnavailable:
      return 503;
    case ErrorCode::kTimeout:
      return 504;
    case ErrorCode::kIo:
      return 500;
    case ErrorCode::kGuestFault:
      return 502;
    case ErrorCode::kUnsupported:
      return 501;
    case ErrorCode::kCancelled:
      return 499;
    case ErrorCode::kInternal:
      return 500;
  }
  return 500;
}

std::string_view ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return "invalid-argument";
    case ErrorCode::kNotFound:
      return "not-found";
    case ErrorCode::kAlreadyExists:
      return "already-exists";
    case ErrorCode::kConflict:
      return "conflict";
    case ErrorCode::kPermissionDenied:
      return "permission-denied";
    case ErrorCode::kResourceExhausted:
      return "resource-exhausted";
    case ErrorCode::kFailedPrecondition:
      return "failed-precondition";
    case ErrorCode::kUnavailable:
      return "unavailable";
    case ErrorCode::kTimeout:
      return "timeout";
    case ErrorCode::kIo:
      return "io";
    case ErrorCode::kGuestFault:
      return "guest-fault";
    case ErrorCode::kUnsupported:
      return "unsupported";
    case ErrorCode::kCancelled:
      return "cancelled";
    case ErrorCode::kInternal:
      return "internal";
  }
  return "unknown";
}

Error& Error::Context(std::string_view context) & {
  message_.insert(0, std::string(context) + ": ");
  return *this;
}

Error&& Error::Context(std::string_view context) && {
  message_.insert(0, std::string(context) + ": ");
  return std::move(*this);
}

ErrorCode ErrorCodeForErrno(int err) {
  switch (err) {
    case ENOENT:
    case ENOTDIR:
    case ESRCH:
      return ErrorCode::kNotFound;
    case EEXIST:
      return ErrorCode::kAlreadyExists;
    case EACCES:
    case EPERM:
    case EROFS:
      return ErrorCode::kPermissionDenied;
    case EBUSY:
    case ETXTBSY:
      return ErrorCode::kConflict;
    case ENOMEM:
    case ENOSPC:
    case EMFILE:
    case ENFILE:
    case EDQUOT:
    case EAGAIN:
      return ErrorCode::kResourceExhausted;
    case EINVAL:
    case ENAMETOOLONG:
    case E2BIG:
      return ErrorCode::kInvalidArgument;
    case ETIMEDOUT:
      return ErrorCode::kTimeout;
    case ECONNREFUSED:
    case ECONNRESET:
    case EPIPE:
    case ENOTCONN:
      return ErrorCode::kUnavailable;
    case ENOSYS:
    case EOPNOTSUPP:
      return ErrorCode::kUnsupported;
    case ECANCELED:
    case EINTR:
      return ErrorCode::kCancelled;
    default:
      return ErrorCode::kIo;
  }
}

Error ErrnoError(std::string_view what, int err) {
  std::string message(what);
  message += ": ";
  message += std::strerror(err);
  return Error(ErrorCodeForErrno(err), std::move(message), err);
}

namespace internal {
void CheckFailed(const char* cond, const char* file, int line) {
  std::fprintf(stderr, "storevisor: internal check failed at %s:%d: %s\n", file, line, cond);
  std::abort();
}
}  // namespace internal

}  // namespace storevisor
