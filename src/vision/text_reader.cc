// Label text: Tesseract 5 (Debian's libtesseract + tesseract-ocr-eng, LSTM engine). Two kinds of
// pass, chosen per region: the whole grey frame in sparse-text mode (labels and signs are
// scattered words, not a page), then every text line that pass did not read confidently on its
// own, cut out deskewed and scaled to a height Tesseract reads well, in single-line mode (a 16 px
// label or one tilted by 5-15 degrees gives nothing or fragments in the whole-frame pass). Words
// with a confidence of at least min_confidence are reported, each with its box: kind "text",
// label = the word, score = confidence / 100.
#include <tesseract/baseapi.h>
#include <tesseract/resultiterator.h>

#include <algorithm>
#include <array>
#include <opencv2/imgproc.hpp>

#include "vision/vision.h"

namespace storevisor::vision {
namespace {

constexpr const char* kTessdata = "/usr/share/tesseract-ocr/5/tessdata";
// A line is cut out scaled to this height (its strokes' extent plus padding): capitals of
// ~25-30 px, where Tesseract's LSTM reads best.
constexpr double kLineHeight = 40;
// A line the whole-frame pass read with at least this mean confidence, over most of its width,
// is not read again.
constexpr float kConfidentLine = 85;
// A word from a line's own pass needs this confidence (it may be short: see min_line_chars);
// at 60, texture in messi5.jpg gave an "of".
constexpr float kLineWordConfidence = 75;

// Punctuation a word does not start or end with on a label ("NOTICE," was the sign's edge).
std::string TrimPunctuation(std::string word) {
  constexpr std::string_view kStray = ",;:|!?'\"`()[]{}_~";
  while (!word.empty() && kStray.find(word.back()) != std::string_view::npos) word.pop_back();
  size_t start = 0;
  while (start < word.size() && kStray.find(word[start]) != std::string_view::npos) ++start;
  return word.substr(start);
}

int Alnums(const std::string& s) {
  int n = 0;
  for (const char c : s) n += std::isalnum(static_cast<unsigned char>(c)) ? 1 : 0;
  return n;
}

cv::Point2f CentreOf(const cv::Rect2f& r) { return {r.x + r.width / 2, r.y + r.height / 2}; }

// Dark strokes of character size: connected components of the adaptive threshold that are not
// too big, not too long, and do not enclose others (a label's outline or a shelf edge does).
cv::Mat CharacterMask(const cv::Mat& gray, std::vector<int>* heights) {
  cv::Mat bw;
  cv::adaptiveThreshold(gray, bw, 255, cv::ADAPTIVE_THRESH_MEAN_C, cv::THRESH_BINARY_INV, 31, 15);
  cv::Mat labels, stats, centroids;
  const int n = cv::connectedComponentsWithStats(bw, labels, stats, centroids, 8, CV_32S);
  std::vector<int> candidates;
  for (int i = 1; i < n; ++i) {
    const int w = stats.at<int>(i, cv::CC_STAT_WIDTH);
    const int h = stats.at<int>(i, cv::CC_STAT_HEIGHT);
    const int area = stats.at<int>(i, cv::CC_STAT_AREA);
    if (h >= 5 && h <= 120 && w <= 3 * h + 10 && area >= 8) candidates.push_back(i);
  }
  constexpr size_t kMaxComponents = 6000;  // a textured photo: no text lines worth the time
  if (candidates.size() > kMaxComponents) candidates.resize(kMaxComponents);
  std::vector<cv::Point2f> centres;
  centres.reserve(candidates.size());
  for (int i : candidates) {
    centres.emplace_back(static_cast<float>(centroids.at<double>(i, 0)),
                         static_cast<float>(centroids.at<double>(i, 1)));
  }
  std::vector<uchar> keep(static_cast<size_t>(n), 0);
  for (size_t k = 0; k < candidates.size(); ++k) {
    const int i = candidates[k];
    const cv::Rect box(stats.at<int>(i, cv::CC_STAT_LEFT), stats.at<int>(i, cv::CC_STAT_TOP),
                       stats.at<int>(i, cv::CC_STAT_WIDTH), stats.at<int>(i, cv::CC_STAT_HEIGHT));
    int inside = 0;
    for (size_t j = 0; j < centres.size() && inside < 2; ++j) {
      if (j != k && box.contains(centres[j])) ++inside;
    }
    if (inside >= 2) continue;
    keep[static_cast<size_t>(i)] = 255;
    heights->push_back(box.height);
  }
  cv::Mat mask(labels.size(), CV_8U);
  for (int y = 0; y < labels.rows; ++y) {
    const int* l = labels.ptr<int>(y);
    uchar* m = mask.ptr<uchar>(y);
    for (int x = 0; x < labels.cols; ++x) m[x] = keep[static_cast<size_t>(l[x])];
  }
  return mask;
}

// A line cut out of the grey frame: deskewed, scaled to kLineHeight, with the transform back.
struct LineCrop {
  cv::Mat image;
  cv::Mat to_frame;  // 2x3, crop -> frame
};

LineCrop CutLine(const cv::Mat& gray, const cv::RotatedRect& line) {
  const double pad = 0.3 * line.size.height;
  const double scale = kLineHeight / (line.size.height + 2 * pad);
  cv::Mat m = cv::getRotationMatrix2D(line.center, line.angle, scale);
  const cv::Size size(static_cast<int>((line.size.width + 2 * pad) * scale),
                      static_cast<int>(kLineHeight));
  m.at<double>(0, 2) += size.width / 2.0 - line.center.x;
  m.at<double>(1, 2) += size.height / 2.0 - line.center.y;
  LineCrop crop;
  cv::warpAffine(gray, crop.image, m, size, cv::INTER_CUBIC, cv::BORDER_REPLICATE);
  cv::invertAffineTransform(m, crop.to_frame);
  return crop;
}

cv::Rect2f MapBox(const cv::Mat& to_frame, const cv::Rect2f& box) {
  const std::array<cv::Point2f, 4> corners = {box.tl(), cv::Point2f(box.x + box.width, box.y),
                                              box.br(), cv::Point2f(box.x, box.y + box.height)};
  std::vector<cv::Point2f> mapped;
  cv::transform(std::vector<cv::Point2f>(corners.begin(), corners.end()), mapped, to_frame);
  return cv::boundingRect(mapped);
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
    std::vector<Detection> words;
    api_->SetPageSegMode(tesseract::PSM_SPARSE_TEXT);
    SV_TRY(Read(gray, options_.min_chars, options_.min_confidence, &words));
    std::vector<cv::RotatedRect> lines = FindTextLines(gray);
    std::sort(lines.begin(), lines.end(), [](const cv::RotatedRect& a, const cv::RotatedRect& b) {
      return a.size.area() > b.size.area();
    });
    if (lines.size() > static_cast<size_t>(options_.max_lines)) {
      lines.resize(static_cast<size_t>(options_.max_lines));
    }
    api_->SetPageSegMode(tesseract::PSM_SINGLE_LINE);
    for (const cv::RotatedRect& line : lines) SV_TRY(ReadLine(gray, line, &words));
    return words;
  }

 private:
  // Tesseract over `gray` (the current page segmentation mode); words at or above the
  // confidence cut with at least `min_chars` letters/digits, boxes in `gray`'s pixels.
  Status Read(const cv::Mat& gray, int min_chars, float min_confidence,
              std::vector<Detection>* out) {
    api_->SetImage(gray.data, gray.cols, gray.rows, 1, static_cast<int>(gray.step));
    api_->SetSourceResolution(300);  // frames carry no DPI; Tesseract warns and guesses otherwise
    if (api_->Recognize(nullptr) != 0) {
      api_->Clear();
      return Error(ErrorCode::kInternal, "text: tesseract could not recognise the frame");
    }
    std::unique_ptr<tesseract::ResultIterator> it(api_->GetIterator());
    constexpr auto kLevel = tesseract::RIL_WORD;
    if (it) {
      do {
        const std::unique_ptr<char[]> text(it->GetUTF8Text(kLevel));
        if (!text) continue;
        const float conf = it->Confidence(kLevel);
        std::string word = TrimPunctuation(text.get());
        if (conf < min_confidence || Alnums(word) < min_chars) continue;
        int x1 = 0, y1 = 0, x2 = 0, y2 = 0;
        if (!it->BoundingBox(kLevel, &x1, &y1, &x2, &y2)) continue;
        Detection d;
        d.kind = "text";
        d.label = std::move(word);
        d.format = "tesseract";
        d.score = conf / 100.0F;
        d.box = cv::Rect2f(static_cast<float>(x1), static_cast<float>(y1),
                           static_cast<float>(x2 - x1), static_cast<float>(y2 - y1));
        out->push_back(std::move(d));
      } while (it->Next(kLevel));
    }
    api_->Clear();
    return Ok();
  }

  // The page segmentation chosen for one region: the words the whole-frame pass read on this
  // line stand when they are confident; otherwise the line is read on its own, and its words
  // replace those when their mean confidence is higher.
  Status ReadLine(const cv::Mat& gray, const cv::RotatedRect& line, std::vector<Detection>* words) {
    const cv::Rect2f bounds = line.boundingRect2f();
    std::vector<size_t> on_line;
    float conf_sum = 0;
    float width = 0;
    for (size_t i = 0; i < words->size(); ++i) {
      if (bounds.contains(CentreOf((*words)[i].box))) {
        on_line.push_back(i);
        conf_sum += (*words)[i].score * 100;
        width += (*words)[i].box.width;
      }
    }
    const float old_conf = on_line.empty() ? 0 : conf_sum / static_cast<float>(on_line.size());
    if (old_conf >= kConfidentLine && width >= 0.6F * bounds.width) return Ok();
    const LineCrop crop = CutLine(gray, line);
    if (crop.image.cols < 8) return Ok();
    std::vector<Detection> fresh;
    SV_TRY(Read(crop.image, options_.min_line_chars,
                std::max(options_.min_confidence, kLineWordConfidence), &fresh));
    if (fresh.empty()) return Ok();
    float fresh_sum = 0;
    for (Detection& d : fresh) {
      fresh_sum += d.score * 100;
      d.box = MapBox(crop.to_frame, d.box);
    }
    // The line's own reading wins when it is about as sure as the whole-frame pass's words
    // (which read only part of the line, or it would not have been read again).
    if (fresh_sum / static_cast<float>(fresh.size()) < std::min(old_conf, kConfidentLine)) {
      return Ok();
    }
    for (auto i = on_line.rbegin(); i != on_line.rend(); ++i) {
      words->erase(words->begin() + static_cast<ptrdiff_t>(*i));
    }
    for (Detection& d : fresh) words->push_back(std::move(d));
    return Ok();
  }

  std::unique_ptr<tesseract::TessBaseAPI> api_;
  TextReaderOptions options_;
};

}  // namespace

std::vector<cv::RotatedRect> FindTextLines(const cv::Mat& gray) {
  std::vector<int> heights;
  const cv::Mat chars = CharacterMask(gray, &heights);
  std::vector<cv::RotatedRect> lines;
  if (heights.empty()) return lines;
  std::nth_element(heights.begin(), heights.begin() + static_cast<ptrdiff_t>(heights.size() / 2),
                   heights.end());
  const int ch = heights[heights.size() / 2];
  // Close the gaps between the letters and words of a line (about a character's height), not
  // between lines (a quarter of it).
  const cv::Mat kernel = cv::getStructuringElement(
      cv::MORPH_RECT, cv::Size(std::max(3, ch * 3 / 2), std::max(1, ch / 4)));
  cv::Mat joined;
  cv::morphologyEx(chars, joined, cv::MORPH_CLOSE, kernel);
  std::vector<std::vector<cv::Point>> contours;
  cv::findContours(joined, contours, cv::RETR_EXTERNAL, cv::CHAIN_APPROX_NONE);
  for (const auto& contour : contours) {
    cv::RotatedRect r = cv::minAreaRect(contour);
    if (r.size.width < r.size.height) {
      std::swap(r.size.width, r.size.height);
      r.angle -= 90;
    }
    while (r.angle > 45) r.angle -= 180;
    while (r.angle <= -45) r.angle += 180;
    if (r.size.height < 6 || r.size.width < 1.5F * r.size.height) continue;
    lines.push_back(r);
  }
  return lines;
}

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
