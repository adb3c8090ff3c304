// Fuzz target: bytes as a reply from storevisord: the HTTP framing (Beast's parser and our
// limits) and then every JSON conversion of a body must refuse or accept, never crash.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "api/client.h"
#include "api/json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace storevisor::api;  // NOLINT(google-build-using-namespace): a fuzz entry
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto reply = ParseResponse(text);
  const std::string_view body = reply ? std::string_view(reply->body) : text;
  if (reply) (void)ReplyError(*reply);
  auto j = ParseJson(body);
  if (!j) return 0;
  (void)WorkloadListFromJson(*j);
  (void)WorkloadStatusFromJson(*j);
  (void)ApplyResponseFromJson(*j);
  (void)GenerationInfoFromJson(*j);
  (void)GenerationListFromJson(*j);
  (void)ImagesInUseFromJson(*j);
  (void)ExecResponseFromJson(*j);
  (void)EventListFromJson(*j);
  (void)EventRecordFromJson(*j);
  (void)VersionInfoFromJson(*j);
  (void)ErrorBodyFromJson(*j);
  return 0;
}
