// Barcodes: cv::barcode (opencv_contrib) for the EAN/UPC retail codes and zbar for every other
// symbology it reads (Code 128, Code 39, Code 93, Codabar, Interleaved 2 of 5, GS1 DataBar and
// DataBar Expanded, QR; Debian's OpenCV is built without QUIRC, so cv::QRCodeDetector decodes
// nothing) and as a second reader of EAN/UPC. Never a wrong value: symbologies without a
// mandatory check character must be read on two scan lines that agree, and two readers that
// disagree about one place report neither.
#include <zbar.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <opencv2/barcode.hpp>
#include <opencv2/imgproc.hpp>

#include "vision/vision.h"

namespace storevisor::vision {
namespace {

std::string BarcodeTypeName(cv::barcode::BarcodeType type) {
  switch (type) {
    case cv::barcode::EAN_8:
      return "EAN_8";
    case cv::barcode::EAN_13:
      return "EAN_13";
    case cv::barcode::UPC_A:
      return "UPC_A";
    case cv::barcode::UPC_E:
      return "UPC_E";
    case cv::barcode::UPC_EAN_EXTENSION:
      return "UPC_EAN_EXTENSION";
    default:
      return "NONE";
  }
}

struct Symbology {
  zbar::zbar_symbol_type_t type;
  const char* name;
  // No mandatory check character (or a weak one): zbar must read it on two scan lines.
  bool needs_agreement;
};

// Every symbology zbar decodes, except ISBN (an EAN-13 read twice under another name), the
// EAN-2/5 add-ons and composites (parts of an EAN/UPC), PDF417 (zbar finds it but cannot decode)
// and SQ codes (not a retail code).
constexpr std::array<Symbology, 12> kZbarSymbologies = {{
    {zbar::ZBAR_EAN8, "EAN_8", false},
    {zbar::ZBAR_EAN13, "EAN_13", false},
    {zbar::ZBAR_UPCA, "UPC_A", false},
    {zbar::ZBAR_UPCE, "UPC_E", false},
    {zbar::ZBAR_CODE128, "CODE_128", false},
    {zbar::ZBAR_DATABAR, "DATABAR", false},
    {zbar::ZBAR_DATABAR_EXP, "DATABAR_EXPANDED", false},
    {zbar::ZBAR_CODE93, "CODE_93", false},
    {zbar::ZBAR_CODE39, "CODE_39", true},
    {zbar::ZBAR_I25, "I25", true},
    {zbar::ZBAR_CODABAR, "CODABAR", true},
    {zbar::ZBAR_QRCODE, "QR_CODE", false},
}};

const Symbology* FindSymbology(zbar::zbar_symbol_type_t type) {
  for (const Symbology& s : kZbarSymbologies) {
    if (s.type == type) return &s;
  }
  return nullptr;
}

// A UPC-A is an EAN-13 whose first digit is 0: the two readers may name one code either way.
std::string CanonicalValue(const Detection& d) {
  if (d.format == "UPC_A" && d.label.size() == 12) return "0" + d.label;
  return d.label;
}

bool SamePlace(const cv::Rect2f& a, const cv::Rect2f& b) {
  if (a.area() <= 0 || b.area() <= 0) return false;
  const cv::Point2f ca(a.x + a.width / 2, a.y + a.height / 2);
  const cv::Point2f cb(b.x + b.width / 2, b.y + b.height / 2);
  return b.contains(ca) || a.contains(cb);
}

cv::Rect2f BoundsOf(const std::vector<cv::Point2f>& pts) {
  if (pts.empty()) return {};
  return cv::boundingRect(pts);
}

// Merges the two readers' reads: one detection per code; two different values at one place
// mean one reader misread, and which one is unknown, so neither is reported.
std::vector<Detection> Reconcile(std::vector<Detection> reads) {
  std::vector<Detection> out;
  std::vector<bool> dropped(reads.size(), false);
  for (size_t i = 0; i < reads.size(); ++i) {
    for (size_t j = i + 1; j < reads.size(); ++j) {
      if (reads[i].kind == "barcode" && reads[j].kind == "barcode" &&
          CanonicalValue(reads[i]) != CanonicalValue(reads[j]) &&
          SamePlace(reads[i].box, reads[j].box)) {
        dropped[i] = dropped[j] = true;
      }
    }
  }
  for (size_t i = 0; i < reads.size(); ++i) {
    if (dropped[i]) continue;
    const bool seen = std::any_of(out.begin(), out.end(), [&](const Detection& d) {
      return d.kind == reads[i].kind && CanonicalValue(d) == CanonicalValue(reads[i]);
    });
    if (!seen) out.push_back(std::move(reads[i]));
  }
  return out;
}

// GS1's mod-10 check digit (ITF-14, EAN, UPC): the last digit makes the weighted sum (3, 1, 3,
// ... from the right, check digit excluded) a multiple of 10.
bool Gs1CheckDigitOk(const std::string& digits) {
  if (digits.size() < 2) return false;
  int sum = 0;
  for (size_t i = 0; i + 1 < digits.size(); ++i) {
    const char c = digits[digits.size() - 2 - i];
    if (c < '0' || c > '9') return false;
    sum += (c - '0') * (i % 2 == 0 ? 3 : 1);
  }
  const char check = digits.back();
  return check >= '0' && check <= '9' && (10 - sum % 10) % 10 == check - '0';
}

// zbar reads every symbology (see kZbarSymbologies), the EAN/UPC ones a second time.
std::vector<Detection> ScanZbar(cv::Mat gray, zbar::ImageScanner& scanner) {
  std::vector<Detection> out;
  if (!gray.isContinuous()) gray = gray.clone();
  zbar::Image image(static_cast<unsigned>(gray.cols), static_cast<unsigned>(gray.rows), "Y800",
                    gray.data, static_cast<unsigned long>(gray.total()));
  if (scanner.scan(image) <= 0) return out;
  for (auto sym = image.symbol_begin(); sym != image.symbol_end(); ++sym) {
    const Symbology* symbology = FindSymbology(sym->get_type());
    if (symbology == nullptr) continue;
    // zbar's quality of a 1D code is the number of scan lines that read the same value.
    if (symbology->needs_agreement && sym->get_quality() < 2) continue;
    if (sym->get_type() == zbar::ZBAR_I25 && !Gs1CheckDigitOk(sym->get_data())) continue;
    const bool qr = sym->get_type() == zbar::ZBAR_QRCODE;
    Detection d{qr ? "qrcode" : "barcode", sym->get_data(), symbology->name, 1.0F, {}, {}, {}};
    for (int i = 0; i < sym->get_location_size(); ++i) {
      d.points.emplace_back(static_cast<float>(sym->get_location_x(static_cast<unsigned>(i))),
                            static_cast<float>(sym->get_location_y(static_cast<unsigned>(i))));
    }
    // zbar gives every scan line's crossing for 1D codes: keep the enclosing rectangle.
    if (d.points.size() > 4) {
      std::array<cv::Point2f, 4> corners;
      cv::minAreaRect(d.points).points(corners.data());
      d.points.assign(corners.begin(), corners.end());
    }
    d.box = BoundsOf(d.points);
    out.push_back(std::move(d));
  }
  return out;
}

class Reader : public BarcodeReader {
 public:
  Reader() {
    for (zbar::ImageScanner* scanner : {&zbar_, &check_zbar_}) {
      scanner->set_config(zbar::ZBAR_NONE, zbar::ZBAR_CFG_ENABLE, 0);
      for (const Symbology& s : kZbarSymbologies) {
        scanner->set_config(s.type, zbar::ZBAR_CFG_ENABLE, 1);
      }
      // Interleaved 2 of 5 carries neither its length nor a check character: scan lines that
      // cross it at a slant return a shorter, valid-looking value (a 10-digit code rotated by
      // 60 degrees read "12345678" on two agreeing lines). Only ITF-14, the case code
      // (14 digits, GS1 check digit verified in ScanZbar), is taken.
      scanner->set_config(zbar::ZBAR_I25, zbar::ZBAR_CFG_MIN_LEN, 14);
      scanner->set_config(zbar::ZBAR_I25, zbar::ZBAR_CFG_MAX_LEN, 14);
    }
  }

  Result<std::vector<Detection>> Detect(const cv::Mat& bgr) override {
    if (bgr.empty() || bgr.type() != CV_8UC3) {
      return Error(ErrorCode::kInvalidArgument, "barcode reader needs a non-empty 8-bit BGR image");
    }
    cv::Mat gray;
    cv::cvtColor(bgr, gray, cv::COLOR_BGR2GRAY);
    std::vector<Detection> linear;
    SV_TRY(DetectLinear(bgr, &linear));
    std::vector<Detection> reads = ScanZbar(gray, zbar_);
    for (Detection& d : linear) {
      if (CheckedByZbar(gray, d, reads)) reads.push_back(std::move(d));
    }
    return Reconcile(std::move(reads));
  }

 private:
  Status DetectLinear(const cv::Mat& bgr, std::vector<Detection>* out) {
    std::vector<std::string> texts;
    std::vector<cv::barcode::BarcodeType> types;
    std::vector<cv::Point2f> corners;
    try {
      linear_.detectAndDecode(bgr, texts, types, corners);
    } catch (const cv::Exception& e) {
      return Error(ErrorCode::kInternal, std::string("cv::barcode failed: ") + e.what());
    }
    for (size_t i = 0; i < texts.size() && i < types.size(); ++i) {
      if (texts[i].empty() || types[i] == cv::barcode::NONE) continue;  // found, not decoded
      Detection d{"barcode", texts[i], BarcodeTypeName(types[i]), 1.0F, {}, {}, {}};
      if (corners.size() >= 4 * (i + 1)) {
        d.points.assign(corners.begin() + static_cast<ptrdiff_t>(4 * i),
                        corners.begin() + static_cast<ptrdiff_t>(4 * i + 4));
        d.box = BoundsOf(d.points);
      }
      out->push_back(std::move(d));
    }
    return Ok();
  }

  // A cv::barcode read that zbar did not make on the frame is checked against zbar on the
  // code's own region, deskewed: cv::barcode's locator has read bars of a rotated Code 39 as a
  // (check-digit-valid) UPC-A. Kept when zbar there reads the same value or nothing (a rotated
  // EAN-13 that only cv::barcode reads), dropped when zbar reads something else.
  bool CheckedByZbar(const cv::Mat& gray, const Detection& d,
                     const std::vector<Detection>& zbar_reads) {
    const std::string value = CanonicalValue(d);
    for (const Detection& z : zbar_reads) {
      if (CanonicalValue(z) == value) return true;
    }
    if (d.points.size() != 4) return true;
    cv::RotatedRect region = cv::minAreaRect(d.points);
    region.size.width *= 1.3F;  // the quiet zones
    region.size.height *= 1.3F;
    cv::Mat m = cv::getRotationMatrix2D(region.center, region.angle, 1.0);
    const cv::Size size(std::max(16, static_cast<int>(region.size.width)),
                        std::max(16, static_cast<int>(region.size.height)));
    m.at<double>(0, 2) += size.width / 2.0 - region.center.x;
    m.at<double>(1, 2) += size.height / 2.0 - region.center.y;
    cv::Mat crop;
    cv::warpAffine(gray, crop, m, size, cv::INTER_LINEAR, cv::BORDER_REPLICATE);
    for (const Detection& z : ScanZbar(crop, check_zbar_)) {
      if (z.kind == "barcode" && CanonicalValue(z) != value) return false;
    }
    return true;
  }

  cv::barcode::BarcodeDetector linear_;
  zbar::ImageScanner zbar_;
  zbar::ImageScanner check_zbar_;
};

}  // namespace

Result<std::unique_ptr<BarcodeReader>> BarcodeReader::Create() {
  try {
    return std::unique_ptr<BarcodeReader>(std::make_unique<Reader>());
  } catch (const cv::Exception& e) {
    return Error(ErrorCode::kFailedPrecondition, std::string("cv::barcode: ") + e.what());
  }
}

}  // namespace storevisor::vision
