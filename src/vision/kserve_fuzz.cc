// Fuzz target over the KServe v2 request and response parsers, binary extension included.
// Input layout: byte 0 selects the mode; in the binary modes bytes 1..4 are the
// Inference-Header-Content-Length (little-endian) and the rest is the body.
#include <cstdint>
#include <cstring>
#include <string_view>

#include "vision/vision.h"

namespace kserve = storevisor::vision::kserve;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const char mode = static_cast<char>(data[0]);
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::optional<size_t> header_length;
  if ((mode == 'B' || mode == 'b') && rest.size() >= 4) {
    uint32_t n = 0;
    std::memcpy(&n, rest.data(), 4);
    header_length = n;
    rest.remove_prefix(4);
  }
  kserve::Limits limits;
  limits.max_elements = 1 << 20;  // keep each run small; the limit logic is what is tested
  if (mode == 'b' || mode == 'r') {
    auto resp = kserve::ParseInferResponse(rest, header_length, limits);
    if (resp) (void)kserve::DetectionsFromTensors(*resp);
    return 0;
  }
  if (mode == 'h') {
    (void)kserve::ParseHeaderLength(rest);
    return 0;
  }
  auto req = kserve::ParseInferRequest(rest, header_length, limits);
  if (!req) return 0;
  for (const auto& t : req->inputs) {
    // Raw UINT8 images only: decoding JPEG/PNG bytes is libjpeg's and libpng's to fuzz.
    if (t.datatype == kserve::DataType::kUint8) (void)kserve::ImageFromTensor(t);
  }
  auto enc = kserve::EncodeInferResponse("m", req->id, req->inputs, req->outputs, req->all_binary);
  auto back = kserve::ParseInferResponse(enc.body, enc.header_length, limits);
  if (!back && !req->inputs.empty()) {
    // What we encode we must be able to parse (FP16 via JSON aside, which we refuse).
    bool fp16 = false;
    for (const auto& t : req->inputs) fp16 |= t.datatype == kserve::DataType::kFp16;
    if (!fp16 && req->outputs.empty() && req->all_binary) __builtin_trap();
  }
  return 0;
}
