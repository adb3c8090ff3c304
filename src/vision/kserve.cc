// KServe v2 inference protocol: request/response bodies, with the binary tensor data
// extension. Every byte here comes from a client or a peer server, so every size is checked
// (overflow-safe) before it is used, and errors name the field that was wrong.
#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>

#include "common/checked.h"
#include "vision/vision.h"

namespace storevisor::vision::kserve {
namespace {

using nlohmann::json;

constexpr std::array<std::pair<DataType, std::string_view>, 13> kTypeNames = {{
    {DataType::kBool, "BOOL"},
    {DataType::kUint8, "UINT8"},
    {DataType::kUint16, "UINT16"},
    {DataType::kUint32, "UINT32"},
    {DataType::kUint64, "UINT64"},
    {DataType::kInt8, "INT8"},
    {DataType::kInt16, "INT16"},
    {DataType::kInt32, "INT32"},
    {DataType::kInt64, "INT64"},
    {DataType::kFp16, "FP16"},
    {DataType::kFp32, "FP32"},
    {DataType::kFp64, "FP64"},
    {DataType::kBytes, "BYTES"},
}};

Error Invalid(const std::string& msg) { return {ErrorCode::kInvalidArgument, msg}; }

// Shape -> element count, refusing negative dims, overflow and counts over the limit.
Result<int64_t> CountElements(const json& shape, const std::string& where, const Limits& limits) {
  if (!shape.is_array()) return Invalid(where + ".shape: must be an array of integers");
  if (shape.size() > limits.max_rank) {
    return Invalid(where + ".shape: rank " + std::to_string(shape.size()) + " exceeds " +
                   std::to_string(limits.max_rank));
  }
  int64_t count = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    const json& d = shape[i];
    if (!d.is_number_integer() || d.get<int64_t>() < 0) {
      return Invalid(where + ".shape[" + std::to_string(i) + "]: must be a non-negative integer");
    }
    const std::optional<int64_t> next = CheckedMul(count, d.get<int64_t>());
    if (!next || *next > limits.max_elements) {
      return Invalid(where + ".shape: more than " + std::to_string(limits.max_elements) +
                     " elements");
    }
    count = *next;
  }
  return count;
}

// Flattens nested JSON arrays (the spec allows both flat and nested "data").
Status Flatten(const json& data, int depth, std::vector<const json*>* out, int64_t max) {
  if (depth > 16) return Invalid("data: nested deeper than 16 levels");
  for (const json& v : data) {
    if (v.is_array()) {
      SV_TRY(Flatten(v, depth + 1, out, max));
    } else {
      out->push_back(&v);
    }
    if (static_cast<int64_t>(out->size()) > max) return Invalid("data: more elements than shape");
  }
  return Ok();
}

template <typename T>
Status PutInteger(const json& v, std::vector<uint8_t>* raw) {
  T value{};
  if (v.is_number_unsigned()) {
    const auto u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<T>::max())) return Invalid("out of range");
    value = static_cast<T>(u);
  } else if (v.is_number_integer()) {
    const auto s = v.get<int64_t>();
    if constexpr (std::is_unsigned_v<T>) {
      if (s < 0 || static_cast<uint64_t>(s) > std::numeric_limits<T>::max()) {
        return Invalid("out of range");
      }
    } else {
      if (s < std::numeric_limits<T>::min() || s > std::numeric_limits<T>::max()) {
        return Invalid("out of range");
      }
    }
    value = static_cast<T>(s);
  } else {
    return Invalid("not an integer");
  }
  const auto* p = reinterpret_cast<const uint8_t*>(&value);
  raw->insert(raw->end(), p, p + sizeof(T));  // x86-64 and aarch64 are little-endian, as KServe
  return Ok();
}

template <typename T>
Status PutFloat(const json& v, std::vector<uint8_t>* raw) {
  if (!v.is_number()) return Invalid("not a number");
  const T value = static_cast<T>(v.get<double>());
  const auto* p = reinterpret_cast<const uint8_t*>(&value);
  raw->insert(raw->end(), p, p + sizeof(T));
  return Ok();
}

Status PutElement(DataType t, const json& v, Tensor* tensor) {
  switch (t) {
    case DataType::kBool:
      if (!v.is_boolean()) return Invalid("not a boolean");
      tensor->raw.push_back(v.get<bool>() ? 1 : 0);
      return Ok();
    case DataType::kUint8:
      return PutInteger<uint8_t>(v, &tensor->raw);
    case DataType::kUint16:
      return PutInteger<uint16_t>(v, &tensor->raw);
    case DataType::kUint32:
      return PutInteger<uint32_t>(v, &tensor->raw);
    case DataType::kUint64:
      return PutInteger<uint64_t>(v, &tensor->raw);
    case DataType::kInt8:
      return PutInteger<int8_t>(v, &tensor->raw);
    case DataType::kInt16:
      return PutInteger<int16_t>(v, &tensor->raw);
    case DataType::kInt32:
      return PutInteger<int32_t>(v, &tensor->raw);
    case DataType::kInt64:
      return PutInteger<int64_t>(v, &tensor->raw);
    case DataType::kFp32:
      return PutFloat<float>(v, &tensor->raw);
    case DataType::kFp64:
      return PutFloat<double>(v, &tensor->raw);
    case DataType::kFp16:
      return Invalid("FP16 is accepted only as binary data");
    case DataType::kBytes:
      if (!v.is_string()) return Invalid("not a string");
      tensor->bytes.push_back(v.get<std::string>());
      return Ok();
  }
  return Invalid("unknown datatype");
}

Status FillFromJson(const json& data, const std::string& where, int64_t count, Tensor* t) {
  if (!data.is_array()) return Invalid(where + ".data: must be an array");
  std::vector<const json*> flat;
  SV_TRY_CTX(Flatten(data, 0, &flat, count), where);
  if (static_cast<int64_t>(flat.size()) != count) {
    return Invalid(where + ".data: has " + std::to_string(flat.size()) +
                   " elements but shape says " + std::to_string(count));
  }
  for (size_t i = 0; i < flat.size(); ++i) {
    SV_TRY_CTX(PutElement(t->datatype, *flat[i], t), where + ".data[" + std::to_string(i) + "]");
  }
  return Ok();
}

// BYTES in binary form: each element is a 4-byte little-endian length, then the bytes.
Status SplitBytes(std::string_view blob, const std::string& where, int64_t count, Tensor* t) {
  size_t pos = 0;
  for (int64_t i = 0; i < count; ++i) {
    if (blob.size() - pos < 4)
      return Invalid(where + ": BYTES element " + std::to_string(i) +
                     " truncated (no 4-byte length)");
    uint32_t len = 0;
    std::memcpy(&len, blob.data() + pos, 4);
    pos += 4;
    if (blob.size() - pos < len) {
      return Invalid(where + ": BYTES element " + std::to_string(i) + " claims " +
                     std::to_string(len) + " bytes, only " + std::to_string(blob.size() - pos) +
                     " left");
    }
    t->bytes.emplace_back(blob.substr(pos, len));
    pos += len;
  }
  if (pos != blob.size()) return Invalid(where + ": binary_data_size larger than its elements");
  return Ok();
}

struct BinaryCursor {
  std::string_view data;
  size_t pos = 0;
};

Status FillFromBinary(const json& size_field, const std::string& where, int64_t count,
                      BinaryCursor* cur, Tensor* t) {
  if (!size_field.is_number_unsigned()) {
    return Invalid(where + ".parameters.binary_data_size: must be a non-negative integer");
  }
  const uint64_t size = size_field.get<uint64_t>();
  if (size > cur->data.size() - cur->pos) {
    return Invalid(where + ".parameters.binary_data_size: " + std::to_string(size) +
                   " bytes, but only " + std::to_string(cur->data.size() - cur->pos) +
                   " bytes of binary data are left in the body");
  }
  const std::string_view blob = cur->data.substr(cur->pos, size);
  cur->pos += size;
  if (t->datatype == DataType::kBytes) return SplitBytes(blob, where, count, t);
  const uint64_t want = static_cast<uint64_t>(count) * ElementSize(t->datatype);  // count<=2^26
  if (size != want) {
    return Invalid(where + ".parameters.binary_data_size: " + std::to_string(size) +
                   " bytes, but shape and datatype need " + std::to_string(want));
  }
  t->raw.assign(blob.begin(), blob.end());
  return Ok();
}

Result<Tensor> ParseTensor(const json& j, const std::string& where, BinaryCursor* cur,
                           const Limits& limits) {
  if (!j.is_object()) return Invalid(where + ": must be an object");
  Tensor t;
  if (!j.contains("name") || !j["name"].is_string() || j["name"].get<std::string>().empty()) {
    return Invalid(where + ".name: required non-empty string");
  }
  t.name = j["name"].get<std::string>();
  if (!j.contains("datatype") || !j["datatype"].is_string()) {
    return Invalid(where + ".datatype: required string (BOOL, UINT8, ..., FP32, BYTES)");
  }
  const auto dt = ParseDataType(j["datatype"].get<std::string>());
  if (!dt) return Invalid(where + ".datatype: unknown '" + j["datatype"].get<std::string>() + "'");
  t.datatype = *dt;
  if (!j.contains("shape")) return Invalid(where + ".shape: required");
  SV_ASSIGN_OR_RETURN(const int64_t count, CountElements(j["shape"], where, limits));
  for (const auto& d : j["shape"]) t.shape.push_back(d.get<int64_t>());
  const json* size_field = nullptr;
  if (j.contains("parameters")) {
    if (!j["parameters"].is_object()) return Invalid(where + ".parameters: must be an object");
    if (j["parameters"].contains("binary_data_size"))
      size_field = &j["parameters"]["binary_data_size"];
  }
  const bool has_data = j.contains("data");
  if (size_field != nullptr && has_data) {
    return Invalid(where + ": has both data and parameters.binary_data_size");
  }
  if (size_field != nullptr) {
    SV_TRY(FillFromBinary(*size_field, where, count, cur, &t));
  } else if (has_data) {
    SV_TRY(FillFromJson(j["data"], where, count, &t));
  } else {
    return Invalid(where + ": needs data, or parameters.binary_data_size with binary data");
  }
  return t;
}

struct Split {
  std::string_view json_text;
  BinaryCursor binary;
};

Result<Split> SplitBody(std::string_view body, std::optional<size_t> header_length,
                        const Limits& limits) {
  if (body.size() > limits.max_body) {
    return Invalid("body of " + std::to_string(body.size()) + " bytes exceeds the limit of " +
                   std::to_string(limits.max_body));
  }
  if (!header_length) return Split{body, {}};
  if (*header_length > body.size()) {
    return Invalid("Inference-Header-Content-Length " + std::to_string(*header_length) +
                   " is larger than the body (" + std::to_string(body.size()) + " bytes)");
  }
  return Split{body.substr(0, *header_length), {body.substr(*header_length), 0}};
}

Result<json> ParseJsonObject(std::string_view text) {
  json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Invalid("body is not valid JSON");
  if (!j.is_object()) return Invalid("body must be a JSON object");
  return j;
}

Result<std::vector<Tensor>> ParseTensors(const json& j, const char* field, BinaryCursor* cur,
                                         const Limits& limits) {
  if (!j.contains(field) || !j[field].is_array()) {
    return Invalid(std::string(field) + ": required array of tensors");
  }
  const json& arr = j[field];
  if (arr.size() > limits.max_tensors) {
    return Invalid(std::string(field) + ": more than " + std::to_string(limits.max_tensors) +
                   " tensors");
  }
  std::vector<Tensor> out;
  for (size_t i = 0; i < arr.size(); ++i) {
    SV_ASSIGN_OR_RETURN(
        Tensor t,
        ParseTensor(arr[i], std::string(field) + "[" + std::to_string(i) + "]", cur, limits));
    out.push_back(std::move(t));
  }
  if (cur->pos != cur->data.size()) {
    return Invalid(std::to_string(cur->data.size() - cur->pos) +
                   " bytes of binary data after the last tensor: sizes do not add up");
  }
  return out;
}

Result<std::vector<RequestedOutput>> ParseOutputs(const json& j) {
  std::vector<RequestedOutput> out;
  if (!j.contains("outputs")) return out;
  if (!j["outputs"].is_array()) return Invalid("outputs: must be an array");
  for (size_t i = 0; i < j["outputs"].size(); ++i) {
    const json& o = j["outputs"][i];
    const std::string where = "outputs[" + std::to_string(i) + "]";
    if (!o.is_object() || !o.contains("name") || !o["name"].is_string()) {
      return Invalid(where + ".name: required string");
    }
    RequestedOutput r{o["name"].get<std::string>(), false};
    if (o.contains("parameters")) {
      const json& p = o["parameters"];
      if (!p.is_object()) return Invalid(where + ".parameters: must be an object");
      if (p.contains("binary_data")) {
        if (!p["binary_data"].is_boolean()) {
          return Invalid(where + ".parameters.binary_data: must be true or false");
        }
        r.binary = p["binary_data"].get<bool>();
      }
    }
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace

std::optional<DataType> ParseDataType(std::string_view name) {
  for (const auto& [t, n] : kTypeNames) {
    if (n == name) return t;
  }
  return std::nullopt;
}

std::string_view DataTypeName(DataType t) {
  for (const auto& [type, n] : kTypeNames) {
    if (type == t) return n;
  }
  return "?";
}

size_t ElementSize(DataType t) {
  switch (t) {
    case DataType::kBool:
    case DataType::kUint8:
    case DataType::kInt8:
      return 1;
    case DataType::kUint16:
    case DataType::kInt16:
    case DataType::kFp16:
      return 2;
    case DataType::kUint32:
    case DataType::kInt32:
    case DataType::kFp32:
      return 4;
    case DataType::kUint64:
    case DataType::kInt64:
    case DataType::kFp64:
      return 8;
    case DataType::kBytes:
      return 0;
  }
  return 0;
}

int64_t Tensor::ElementCount() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

Result<size_t> ParseHeaderLength(std::string_view value) {
  size_t n = 0;
  const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
  if (value.empty() || ec != std::errc() || end != value.data() + value.size()) {
    return Invalid("Inference-Header-Content-Length: '" + std::string(value.substr(0, 32)) +
                   "' is not a non-negative decimal integer");
  }
  return n;
}

Result<InferRequest> ParseInferRequest(std::string_view body, std::optional<size_t> header_length,
                                       const Limits& limits) {
  SV_ASSIGN_OR_RETURN(Split split, SplitBody(body, header_length, limits));
  SV_ASSIGN_OR_RETURN(json j, ParseJsonObject(split.json_text));
  InferRequest req;
  if (j.contains("id")) {
    if (!j["id"].is_string()) return Invalid("id: must be a string");
    req.id = j["id"].get<std::string>();
  }
  if (j.contains("parameters")) {
    const json& p = j["parameters"];
    if (!p.is_object()) return Invalid("parameters: must be an object");
    if (p.contains("binary_data_output")) {
      if (!p["binary_data_output"].is_boolean()) {
        return Invalid("parameters.binary_data_output: must be true or false");
      }
      req.all_binary = p["binary_data_output"].get<bool>();
    }
  }
  SV_ASSIGN_OR_RETURN(req.inputs, ParseTensors(j, "inputs", &split.binary, limits));
  if (req.inputs.empty()) return Invalid("inputs: at least one tensor is required");
  SV_ASSIGN_OR_RETURN(req.outputs, ParseOutputs(j));
  return req;
}

Result<std::vector<Tensor>> ParseInferResponse(std::string_view body,
                                               std::optional<size_t> header_length,
                                               const Limits& limits) {
  SV_ASSIGN_OR_RETURN(Split split, SplitBody(body, header_length, limits));
  SV_ASSIGN_OR_RETURN(json j, ParseJsonObject(split.json_text));
  if (j.contains("error") && j["error"].is_string()) {
    return Error(ErrorCode::kUnavailable, "server error: " + j["error"].get<std::string>());
  }
  return ParseTensors(j, "outputs", &split.binary, limits);
}

namespace {

json TensorData(const Tensor& t) {
  json data = json::array();
  if (t.datatype == DataType::kBytes) {
    for (const auto& b : t.bytes) data.push_back(b);
    return data;
  }
  const size_t es = ElementSize(t.datatype);
  for (size_t off = 0; es != 0 && off + es <= t.raw.size(); off += es) {
    const uint8_t* p = t.raw.data() + off;
    switch (t.datatype) {
      case DataType::kFp32: {
        float f = 0;
        std::memcpy(&f, p, 4);
        data.push_back(std::isfinite(f) ? json(f) : json(nullptr));
        break;
      }
      case DataType::kInt32: {
        int32_t v = 0;
        std::memcpy(&v, p, 4);
        data.push_back(v);
        break;
      }
      case DataType::kInt64: {
        int64_t v = 0;
        std::memcpy(&v, p, 8);
        data.push_back(v);
        break;
      }
      case DataType::kBool:
        data.push_back(*p != 0);
        break;
      default:
        data.push_back(*p);  // UINT8; the service emits no other fixed types
    }
  }
  return data;
}

std::string BinaryOf(const Tensor& t) {
  if (t.datatype != DataType::kBytes) return {t.raw.begin(), t.raw.end()};
  std::string out;
  for (const auto& b : t.bytes) {
    const auto len = static_cast<uint32_t>(b.size());
    out.append(reinterpret_cast<const char*>(&len), 4);
    out += b;
  }
  return out;
}

}  // namespace

EncodedResponse EncodeInferResponse(const std::string& model, const std::string& id,
                                    const std::vector<Tensor>& outputs,
                                    const std::vector<RequestedOutput>& requested,
                                    bool all_binary) {
  json j = {{"model_name", model}, {"model_version", "1"}, {"outputs", json::array()}};
  if (!id.empty()) j["id"] = id;
  std::string binary;
  for (const Tensor& t : outputs) {
    bool binary_out = all_binary;
    if (!requested.empty()) {
      auto it = std::find_if(requested.begin(), requested.end(),
                             [&](const RequestedOutput& r) { return r.name == t.name; });
      if (it == requested.end()) continue;
      binary_out = it->binary || all_binary;
    }
    json o = {{"name", t.name}, {"datatype", DataTypeName(t.datatype)}, {"shape", t.shape}};
    if (binary_out) {
      std::string b = BinaryOf(t);
      o["parameters"] = {{"binary_data_size", b.size()}};
      binary += b;
    } else {
      o["data"] = TensorData(t);
    }
    j["outputs"].push_back(std::move(o));
  }
  EncodedResponse r;
  r.body = j.dump();
  if (!binary.empty()) {
    r.header_length = r.body.size();
    r.body += binary;
    r.content_type = "application/octet-stream";
  } else {
    r.content_type = "application/json";
  }
  return r;
}

}  // namespace storevisor::vision::kserve
