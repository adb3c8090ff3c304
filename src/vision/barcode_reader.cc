// Barcodes: cv::barcode (opencv_contrib) for 1D retail codes, zbar for QR codes, since
// Debian's OpenCV is built without QUIRC and its QRCodeDetector decodes nothing.
#include <zbar.h>

#include <algorithm>
#include <array>
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

std::string ZbarLinearName(zbar::zbar_symbol_type_t type) {
  switch (type) {
    case zbar::ZBAR_EAN8:
      return "EAN_8";
    case zbar::ZBAR_EAN13:
      return "EAN_13";
    case zbar::ZBAR_UPCA:
      return "UPC_A";
    case zbar::ZBAR_UPCE:
      return "UPC_E";
    default:
      return "OTHER";
  }
}

bool AlreadyRead(const std::vector<Detection>& found, const std::string& text) {
  return std::any_of(found.begin(), found.end(),
                     [&](const Detection& d) { return d.kind == "barcode" && d.label == text; });
}

cv::Rect2f BoundsOf(const std::vector<cv::Point2f>& pts) {
  if (pts.empty()) return {};
  return cv::boundingRect(pts);
}

class Reader : public BarcodeReader {
 public:
  Reader() {
    zbar_.set_config(zbar::ZBAR_NONE, zbar::ZBAR_CFG_ENABLE, 0);
    for (auto sym :
         {zbar::ZBAR_QRCODE, zbar::ZBAR_EAN13, zbar::ZBAR_EAN8, zbar::ZBAR_UPCA, zbar::ZBAR_UPCE}) {
      zbar_.set_config(sym, zbar::ZBAR_CFG_ENABLE, 1);
    }
  }

  Result<std::vector<Detection>> Detect(const cv::Mat& bgr) override {
    if (bgr.empty() || bgr.type() != CV_8UC3) {
      return Error(ErrorCode::kInvalidArgument, "barcode reader needs a non-empty 8-bit BGR image");
    }
    std::vector<Detection> out;
    SV_TRY(DetectLinear(bgr, &out));
    DetectZbar(bgr, &out);
    return out;
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
      Detection d{"barcode", texts[i], BarcodeTypeName(types[i]), 1.0F, {}, {}};
      if (corners.size() >= 4 * (i + 1)) {
        d.points.assign(corners.begin() + static_cast<ptrdiff_t>(4 * i),
                        corners.begin() + static_cast<ptrdiff_t>(4 * i + 4));
        d.box = BoundsOf(d.points);
      }
      out->push_back(std::move(d));
    }
    return Ok();
  }

  // zbar reads QR codes (which OpenCV here cannot) and is a second reader for the 1D codes
  // cv::barcode locates but fails to decode; a code both read is reported once.
  void DetectZbar(const cv::Mat& bgr, std::vector<Detection>* out) {
    cv::Mat gray;
    cv::cvtColor(bgr, gray, cv::COLOR_BGR2GRAY);
    if (!gray.isContinuous()) gray = gray.clone();
    zbar::Image image(static_cast<unsigned>(gray.cols), static_cast<unsigned>(gray.rows), "Y800",
                      gray.data, static_cast<unsigned long>(gray.total()));
    if (zbar_.scan(image) <= 0) return;
    for (auto sym = image.symbol_begin(); sym != image.symbol_end(); ++sym) {
      const bool qr = sym->get_type() == zbar::ZBAR_QRCODE;
      std::string format = qr ? "QR_CODE" : ZbarLinearName(sym->get_type());
      if (!qr && AlreadyRead(*out, sym->get_data())) continue;
      Detection d{qr ? "qrcode" : "barcode", sym->get_data(), format, 1.0F, {}, {}};
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
      out->push_back(std::move(d));
    }
  }

  cv::barcode::BarcodeDetector linear_;
  zbar::ImageScanner zbar_;
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
