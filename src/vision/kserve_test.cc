// The KServe v2 request parser against the spec's cases and against hostile bodies.
#include <gtest/gtest.h>

#include <cstring>

#include "vision/vision.h"

namespace storevisor::vision::kserve {
namespace {

using nlohmann::json;

std::string Le32(uint32_t v) {
  std::string s(4, '\0');
  std::memcpy(s.data(), &v, 4);
  return s;
}

std::string ErrorOf(std::string_view body, std::optional<size_t> hl = std::nullopt) {
  auto r = ParseInferRequest(body, hl);
  EXPECT_FALSE(r.has_value()) << body.substr(0, 200);
  if (r) return "";
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  return r.error().message();
}

TEST(KserveParseTest, JsonTensorsFlatAndNested) {
  auto r = ParseInferRequest(R"({"id":"42","inputs":[
      {"name":"a","datatype":"INT32","shape":[2,2],"data":[[1,-2],[3,4]]},
      {"name":"b","datatype":"FP32","shape":[3],"data":[0.5,1,2.25]},
      {"name":"c","datatype":"BYTES","shape":[2],"data":["x","yz"]},
      {"name":"d","datatype":"BOOL","shape":[1],"data":[true]}],
      "outputs":[{"name":"boxes","parameters":{"binary_data":true}}]})",
                             std::nullopt);
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(r->id, "42");
  ASSERT_EQ(r->inputs.size(), 4U);
  int32_t second = 0;
  std::memcpy(&second, r->inputs[0].raw.data() + 4, 4);
  EXPECT_EQ(second, -2);
  float third = 0;
  std::memcpy(&third, r->inputs[1].raw.data() + 8, 4);
  EXPECT_EQ(third, 2.25F);
  EXPECT_EQ(r->inputs[2].bytes, (std::vector<std::string>{"x", "yz"}));
  EXPECT_EQ(r->inputs[3].raw, std::vector<uint8_t>{1});
  ASSERT_EQ(r->outputs.size(), 1U);
  EXPECT_TRUE(r->outputs[0].binary);
}

TEST(KserveParseTest, BinaryExtension) {
  const std::string header = R"({"inputs":[
      {"name":"image","datatype":"UINT8","shape":[1,2,3],"parameters":{"binary_data_size":6}},
      {"name":"s","datatype":"BYTES","shape":[2],"parameters":{"binary_data_size":11}}]})";
  const std::string body =
      header + std::string("\x01\x02\x03\x04\x05\x06", 6) + Le32(3) + "abc" + Le32(0);
  auto r = ParseInferRequest(body, header.size());
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(r->inputs[0].raw, (std::vector<uint8_t>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(r->inputs[1].bytes, (std::vector<std::string>{"abc", ""}));
  auto img = ImageFromTensor(r->inputs[0]);
  ASSERT_TRUE(img.has_value());
  EXPECT_EQ(img->cols, 2);
  EXPECT_EQ(img->rows, 1);
}

TEST(KserveParseTest, RejectsMalformedJson) {
  EXPECT_NE(ErrorOf("{\"inputs\": [").find("not valid JSON"), std::string::npos);
  EXPECT_NE(ErrorOf("[1,2]").find("JSON object"), std::string::npos);
  EXPECT_NE(ErrorOf("{}").find("inputs"), std::string::npos);
  EXPECT_NE(ErrorOf(R"({"inputs":[]})").find("at least one"), std::string::npos);
  EXPECT_NE(
      ErrorOf(R"({"inputs":[{"datatype":"UINT8","shape":[1],"data":[1]}]})").find("inputs[0].name"),
      std::string::npos);
  EXPECT_NE(ErrorOf(R"({"id":7,"inputs":[]})").find("id"), std::string::npos);
  EXPECT_NE(ErrorOf(R"({"inputs":[{"name":"a","datatype":"UINT8","shape":[1]}]})").find("needs"),
            std::string::npos);
}

TEST(KserveParseTest, RejectsShapeAndDatatypeMismatches) {
  EXPECT_NE(ErrorOf(R"({"inputs":[{"name":"a","datatype":"FP99","shape":[1],"data":[1]}]})")
                .find("unknown 'FP99'"),
            std::string::npos);
  EXPECT_NE(ErrorOf(R"({"inputs":[{"name":"a","datatype":"UINT8","shape":[3],"data":[1,2]}]})")
                .find("has 2 elements but shape says 3"),
            std::string::npos);
  EXPECT_NE(ErrorOf(R"({"inputs":[{"name":"a","datatype":"UINT8","shape":[1],"data":[256]}]})")
                .find("inputs[0].data[0]: out of range"),
            std::string::npos);
  EXPECT_NE(ErrorOf(R"({"inputs":[{"name":"a","datatype":"INT8","shape":[1],"data":["x"]}]})")
                .find("not an integer"),
            std::string::npos);
  EXPECT_NE(ErrorOf(R"({"inputs":[{"name":"a","datatype":"UINT8","shape":[-1],"data":[1]}]})")
                .find("shape[0]"),
            std::string::npos);
  EXPECT_NE(ErrorOf(R"({"inputs":[{"name":"a","datatype":"UINT8","shape":[1],"data":[1,[2]]}]})")
                .find("more elements"),
            std::string::npos);
  EXPECT_NE(ErrorOf(R"({"inputs":[{"name":"a","datatype":"BYTES","shape":[1],"data":[1]}]})")
                .find("not a string"),
            std::string::npos);
}

TEST(KserveParseTest, RejectsSizesThatOverflow) {
  // 2^32 * 2^32 * 16 overflows int64: must be refused, not wrapped.
  EXPECT_NE(ErrorOf(R"({"inputs":[{"name":"a","datatype":"INT64",
                      "shape":[4294967296,4294967296,16],"data":[1]}]})")
                .find("more than"),
            std::string::npos);
  // Within int64 but beyond the element limit.
  EXPECT_NE(ErrorOf(R"({"inputs":[{"name":"a","datatype":"UINT8","shape":[100000,100000],
                      "parameters":{"binary_data_size":1}}]})",
                    std::nullopt)
                .find("more than"),
            std::string::npos);
  const std::string h1 = R"({"inputs":[{"name":"a","datatype":"UINT8","shape":[1],
      "parameters":{"binary_data_size":18446744073709551615}}]})";
  EXPECT_NE(ErrorOf(h1 + "x", h1.size()).find("bytes of binary data are left"), std::string::npos);
  EXPECT_NE(ErrorOf("{}", 1000).find("larger than the body"), std::string::npos);
  EXPECT_FALSE(ParseHeaderLength("99999999999999999999999").has_value());
  EXPECT_FALSE(ParseHeaderLength("-1").has_value());
  EXPECT_FALSE(ParseHeaderLength("12abc").has_value());
  EXPECT_FALSE(ParseHeaderLength("").has_value());
  EXPECT_EQ(*ParseHeaderLength("17"), 17U);
  Limits small;
  small.max_body = 10;
  EXPECT_FALSE(ParseInferRequest(std::string(11, ' '), std::nullopt, small).has_value());
}

TEST(KserveParseTest, RejectsTruncatedAndMismatchedBinaryData) {
  const std::string h = R"({"inputs":[{"name":"a","datatype":"FP32","shape":[4],
      "parameters":{"binary_data_size":16}}]})";
  EXPECT_NE(ErrorOf(h + std::string(10, 'x'), h.size()).find("only 10 bytes"), std::string::npos);
  EXPECT_NE(ErrorOf(h + std::string(20, 'x'), h.size()).find("after the last tensor"),
            std::string::npos);
  const std::string h2 = R"({"inputs":[{"name":"a","datatype":"FP32","shape":[4],
      "parameters":{"binary_data_size":12}}]})";
  EXPECT_NE(ErrorOf(h2 + std::string(12, 'x'), h2.size()).find("need 16"), std::string::npos);
  // BYTES element claiming more than there is.
  const std::string h3 = R"({"inputs":[{"name":"s","datatype":"BYTES","shape":[1],
      "parameters":{"binary_data_size":6}}]})";
  EXPECT_NE(ErrorOf(h3 + Le32(1000) + "ab", h3.size()).find("claims 1000"), std::string::npos);
  EXPECT_NE(ErrorOf(h3 + "ab", h3.size()).find("only 2 bytes"), std::string::npos);
  const std::string h4 = R"({"inputs":[{"name":"s","datatype":"BYTES","shape":[2],
      "parameters":{"binary_data_size":6}}]})";
  EXPECT_NE(ErrorOf(h4 + Le32(2) + "ab", h4.size()).find("truncated"), std::string::npos);
  const std::string h5 = R"({"inputs":[{"name":"a","datatype":"UINT8","shape":[1],"data":[1],
      "parameters":{"binary_data_size":1}}]})";
  EXPECT_NE(ErrorOf(h5 + "x", h5.size()).find("both"), std::string::npos);
}

TEST(KserveParseTest, ImageTensorChecks) {
  Tensor wrong_shape{"image", DataType::kUint8, {2, 2}, std::vector<uint8_t>(4), {}};
  EXPECT_FALSE(ImageFromTensor(wrong_shape).has_value());
  Tensor fp{"image", DataType::kFp32, {1, 1, 3}, std::vector<uint8_t>(12), {}};
  EXPECT_FALSE(ImageFromTensor(fp).has_value());
  Tensor garbage{"image", DataType::kBytes, {1}, {}, {"not an image"}};
  auto e = ImageFromTensor(garbage);
  ASSERT_FALSE(e.has_value());
  EXPECT_NE(e.error().message().find("cannot be decoded"), std::string::npos);
  Tensor two{"image", DataType::kBytes, {2}, {}, {"a", "b"}};
  EXPECT_FALSE(ImageFromTensor(two).has_value());
  Tensor huge{"image", DataType::kUint8, {20000, 20000, 3}, {}, {}};
  EXPECT_FALSE(ImageFromTensor(huge).has_value());
}

TEST(KserveEncodeTest, ResponsesRoundTripJsonAndBinary) {
  std::vector<Detection> ds = {{"face", "face", "blazeface", 0.9F, {1, 2, 3, 4}, {}, {}},
                               {"qrcode", "a:b", "QR_CODE", 1.0F, {5, 6, 7, 8}, {}, {}}};
  const auto tensors = DetectionsToTensors(ds);
  for (bool binary : {false, true}) {
    auto enc = EncodeInferResponse("faces", "id1", tensors, {}, binary);
    EXPECT_EQ(enc.header_length.has_value(), binary);
    auto back = ParseInferResponse(enc.body, enc.header_length);
    ASSERT_TRUE(back.has_value()) << back.error().message();
    auto again = DetectionsFromTensors(*back);
    ASSERT_TRUE(again.has_value());
    ASSERT_EQ(again->size(), 2U);
    EXPECT_EQ((*again)[1].label, "a:b");  // only the first colon separates kind and label
    EXPECT_EQ((*again)[1].kind, "qrcode");
    EXPECT_EQ((*again)[0].box, cv::Rect2f(1, 2, 3, 4));
    EXPECT_FLOAT_EQ((*again)[0].score, 0.9F);
  }
  // Only the requested outputs come back.
  auto only = EncodeInferResponse("faces", "", tensors, {{"scores", false}}, false);
  EXPECT_EQ(json::parse(only.body)["outputs"].size(), 1U);
}

TEST(KserveEncodeTest, GarbageResponsesAreErrorsNotCrashes) {
  EXPECT_FALSE(ParseInferResponse("<html>502</html>", std::nullopt).has_value());
  EXPECT_FALSE(ParseInferResponse(R"({"outputs":[{"name":"boxes"}]})", std::nullopt).has_value());
  auto err = ParseInferResponse(R"({"error":"model busy"})", std::nullopt);
  ASSERT_FALSE(err.has_value());
  EXPECT_NE(err.error().message().find("model busy"), std::string::npos);
  // Well-formed tensors that disagree with each other.
  auto mixed = ParseInferResponse(R"({"outputs":[
      {"name":"boxes","datatype":"FP32","shape":[2,4],"data":[1,2,3,4,5,6,7,8]},
      {"name":"scores","datatype":"FP32","shape":[1],"data":[1]},
      {"name":"labels","datatype":"BYTES","shape":[2],"data":["a","b"]}]})",
                                  std::nullopt);
  ASSERT_TRUE(mixed.has_value());
  EXPECT_FALSE(DetectionsFromTensors(*mixed).has_value());
}

TEST(KserveAttributesTest, FaceAttributesRoundTripJsonAndBinary) {
  Detection face{"face", "face", "blazeface", 0.9F, {1, 2, 3, 4}, {}, {}};
  face.attributes = {{"gender", "female"},
                     {"gender_score", FormatScore(0.75F)},
                     {"emotion", "happy"},
                     {"emotion_score", FormatScore(0.5F)},
                     {"age", FormatAge(37.7F)}};
  const Detection small{"face", "face", "blazeface", 0.8F, {9, 9, 5, 5}, {}, {}};  // no attributes
  const std::vector<Detection> ds = {face, small};
  auto tensors = DetectionsToTensors(ds);
  for (auto& t : AttributesToTensors(ds)) tensors.push_back(std::move(t));
  for (bool binary : {false, true}) {
    auto enc = EncodeInferResponse("face_attributes", "", tensors, {}, binary);
    auto back = ParseInferResponse(enc.body, enc.header_length);
    ASSERT_TRUE(back.has_value()) << back.error().message();
    auto again = DetectionsFromTensors(*back);
    ASSERT_TRUE(again.has_value()) << again.error().message();
    ASSERT_EQ(again->size(), 2U);
    EXPECT_EQ((*again)[0].attributes, face.attributes);  // the same text as the edge writes
    EXPECT_TRUE((*again)[1].attributes.empty());
  }
}

// A response with valid boxes/scores/labels for one face plus attribute outputs `extra`.
Result<std::vector<Detection>> WithAttributes(const std::string& extra) {
  auto r = ParseInferResponse(R"({"outputs":[
      {"name":"boxes","datatype":"FP32","shape":[1,4],"data":[1,2,3,4]},
      {"name":"scores","datatype":"FP32","shape":[1],"data":[0.9]},
      {"name":"labels","datatype":"BYTES","shape":[1],"data":["face:face"]})" +
                                  extra + "]}",
                              std::nullopt);
  if (!r) return std::move(r).error();
  return DetectionsFromTensors(*r);
}

std::string Attr(const std::string& gender, const std::string& gscore, const std::string& emotion,
                 const std::string& escore, const std::string& age,
                 const std::string& age_shape = "[1]") {
  return R"(,{"name":"gender","datatype":"BYTES","shape":[1],"data":[)" + gender + "]}" +
         R"(,{"name":"gender_score","datatype":"FP32","shape":[1],"data":[)" + gscore + "]}" +
         R"(,{"name":"emotion","datatype":"BYTES","shape":[1],"data":[)" + emotion + "]}" +
         R"(,{"name":"emotion_score","datatype":"FP32","shape":[1],"data":[)" + escore + "]}" +
         R"(,{"name":"age","datatype":"FP32","shape":)" + age_shape + R"(,"data":[)" + age + "]}";
}

TEST(KserveAttributesTest, NastyAttributeOutputsAreClearErrors) {
  auto good = WithAttributes(Attr(R"("male")", "0.7", R"("sad")", "0.6", "41.25"));
  ASSERT_TRUE(good.has_value()) << good.error().message();
  EXPECT_EQ((*good)[0].attributes.at("age"), "41.2");
  EXPECT_EQ((*good)[0].attributes.at("gender"), "male");
  // Absent values (empty label, -1) leave the attribute out.
  auto absent = WithAttributes(Attr(R"("")", "-1", R"("")", "-1", "-1"));
  ASSERT_TRUE(absent.has_value()) << absent.error().message();
  EXPECT_TRUE((*absent)[0].attributes.empty());
  const std::vector<std::pair<std::string, std::string>> bad = {
      {Attr(R"("robot")", "0.7", R"("sad")", "0.6", "41"), "'gender'[0]: unknown value"},
      {Attr(R"("male")", "0.7", R"("bored\u0000")", "0.6", "41"), "'emotion'[0]: unknown value"},
      {Attr(R"("male")", "1.5", R"("sad")", "0.6", "41"), "'gender_score'[0]"},
      {Attr(R"("male")", "0.7", R"("sad")", "-0.5", "41"), "'emotion_score'[0]"},
      {Attr(R"("male")", "0.7", R"("sad")", "0.6", "1e30"), "'age'[0]"},
      {Attr(R"("male")", "0.7", R"("sad")", "0.6", "151"), "'age'[0]"},
      {Attr(R"("male")", "0.7", R"("sad")", "0.6", "41, 42", "[2]"), "'age' must be FP32 [1]"},
      {R"(,{"name":"gender","datatype":"BYTES","shape":[1],"data":["male"]})", "not all five"},
      {R"(,{"name":"age","datatype":"INT32","shape":[1],"data":[4]})", "not all five"},
  };
  for (const auto& [extra, want] : bad) {
    auto r = WithAttributes(extra);
    ASSERT_FALSE(r.has_value()) << extra;
    EXPECT_NE(r.error().message().find(want), std::string::npos)
        << extra << ": " << r.error().message();
  }
  // Wrong datatypes with all five present.
  std::string int_age = Attr(R"("male")", "0.7", R"("sad")", "0.6", "41");
  int_age.replace(int_age.rfind("FP32"), 4, "INT32");
  auto r = WithAttributes(int_age);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find("'age' must be FP32 [1]"), std::string::npos);
}

}  // namespace
}  // namespace storevisor::vision::kserve
