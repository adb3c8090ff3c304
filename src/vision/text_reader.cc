// Label text: Tesseract 5 (Debian's libtesseract + tesseract-ocr-eng, LSTM engine) on the grey
// frame in sparse-text mode (labels and signs are scattered words, not a page). Words with a
// confidence of at least min_confidence and min_chars or more letters/digits are reported, each
// with its box: kind "text", label = the word, score = confidence / 100.
#include <tesseract/baseapi.h>
#include <tesseract/resultiterator.h>

#include <opencv2/imgproc.hpp>

#include "vision/vision.h"

namespace storevisor::vision {
namespace {

constexpr const char* kTessdata = "/usr/share/tesseract-ocr/5/tessdata";

int Alnums(const std::string& s) {
  int n = 0;
  for (const char c : s) n += std::isalnum(static_cast<unsigned char>(c)) ? 1 : 0;
  return n;
}

class Reader : public TextReader {
 public:
  Reader(std::unique_ptr<tesseract::TessBaseAPI> api, TextReaderOptions options)
      : api_(std::move(api)), options_(std::move(options)) {}
  ~Reader() override { api_->End(); }
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  Result<std::vector<Detection>> Detect(const cv::Mat& bgr) override {
    if (bgr.empty() || bgr.type() != CV_8UC3) {
      return Error(ErrorCode::kInvalidArgument, "text: need a non-empty BGR image");
    }
    cv::Mat gray;
    cv::cvtColor(bgr, gray, cv::COLOR_BGR2GRAY);
    api_->SetImage(gray.data, gray.cols, gray.rows, 1, static_cast<int>(gray.step));
    api_->SetSourceResolution(300);  // frames carry no DPI; Tesseract warns and guesses otherwise
    if (api_->Recognize(nullptr) != 0) {
      return Error(ErrorCode::kInternal, "text: tesseract could not recognise the frame");
    }
    std::vector<Detection> out;
    std::unique_ptr<tesseract::ResultIterator> it(api_->GetIterator());
    if (!it) return out;
    constexpr auto kLevel = tesseract::RIL_WORD;
    do {
      const std::unique_ptr<char[]> text(it->GetUTF8Text(kLevel));
      if (!text) continue;
      const float conf = it->Confidence(kLevel);
      std::string word(text.get());
      if (conf < options_.min_confidence || Alnums(word) < options_.min_chars) continue;
      int x1 = 0, y1 = 0, x2 = 0, y2 = 0;
      if (!it->BoundingBox(kLevel, &x1, &y1, &x2, &y2)) continue;
      Detection d;
      d.kind = "text";
      d.label = std::move(word);
      d.format = "tesseract";
      d.score = conf / 100.0F;
      d.box = cv::Rect2f(static_cast<float>(x1), static_cast<float>(y1),
                         static_cast<float>(x2 - x1), static_cast<float>(y2 - y1));
      out.push_back(std::move(d));
    } while (it->Next(kLevel));
    api_->Clear();
    return out;
  }

 private:
  std::unique_ptr<tesseract::TessBaseAPI> api_;
  TextReaderOptions options_;
};

}  // namespace

Result<std::unique_ptr<TextReader>> TextReader::Create(const TextReaderOptions& options) {
  auto api = std::make_unique<tesseract::TessBaseAPI>();
  if (api->Init(kTessdata, options.language.c_str(), tesseract::OEM_LSTM_ONLY) != 0) {
    return Error(ErrorCode::kFailedPrecondition,
                 "tesseract: cannot load language '" + options.language + "' from " + kTessdata +
                     ": install tesseract-ocr-" + options.language + " (scripts/setup.sh does)");
  }
  api->SetPageSegMode(tesseract::PSM_SPARSE_TEXT);
  return std::unique_ptr<TextReader>(std::make_unique<Reader>(std::move(api), options));
}

}  // namespace storevisor::vision
