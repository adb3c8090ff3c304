// Product recognition against a catalog of reference images: local features, Lowe's ratio
// test, then a RANSAC homography; the reference's corners mapped through it are the outline.
#include <algorithm>
#include <filesystem>
#include <opencv2/calib3d.hpp>
#include <opencv2/features2d.hpp>
#include <opencv2/imgproc.hpp>
#include <set>

#include "common/files.h"
#include "vision/vision.h"

namespace storevisor::vision {
namespace {

struct Reference {
  std::string name;
  std::vector<cv::KeyPoint> keypoints;
  cv::Mat descriptors;
  cv::Size size;
};

Result<cv::Ptr<cv::Feature2D>> MakeFeatures(const std::string& kind) {
  if (kind == "sift") return cv::Ptr<cv::Feature2D>(cv::SIFT::create(1000));
  if (kind == "orb") return cv::Ptr<cv::Feature2D>(cv::ORB::create(2000));
  if (kind == "akaze") return cv::Ptr<cv::Feature2D>(cv::AKAZE::create());
  return Error(ErrorCode::kInvalidArgument,
               "product features '" + kind + "' unknown: use sift, orb or akaze");
}

// A plausible product outline: convex, not tiny, not wildly distorted.
bool PlausibleOutline(const std::vector<cv::Point2f>& quad, const cv::Size& ref) {
  if (!cv::isContourConvex(quad)) return false;
  const double area = cv::contourArea(quad);
  const double ref_area = static_cast<double>(ref.area());
  return area > 100.0 && area > ref_area * 0.01 && area < ref_area * 100.0;
}

class Matcher : public ProductMatcher {
 public:
  Matcher(cv::Ptr<cv::Feature2D> features, ProductMatcherOptions options)
      : features_(std::move(features)), options_(std::move(options)) {
    const bool binary = options_.features != "sift";
    matcher_ = cv::BFMatcher::create(binary ? cv::NORM_HAMMING : cv::NORM_L2);
  }

  Status Add(const CatalogItem& item) {
    SV_ASSIGN_OR_RETURN(cv::Mat img, ReadImageFile(item.image_path));
    Reference ref{item.name, {}, {}, img.size()};
    cv::Mat gray;
    cv::cvtColor(img, gray, cv::COLOR_BGR2GRAY);
    features_->detectAndCompute(gray, cv::noArray(), ref.keypoints, ref.descriptors);
    if (static_cast<int>(ref.keypoints.size()) < options_.min_inliers) {
      return Error(ErrorCode::kInvalidArgument,
                   "catalog item '" + item.name + "' (" + item.image_path + ") has only " +
                       std::to_string(ref.keypoints.size()) +
                       " features: use a sharper, more textured reference image");
    }
    refs_.push_back(std::move(ref));
    return Ok();
  }

  size_t size() const override { return refs_.size(); }

  Result<std::vector<Detection>> Detect(const cv::Mat& bgr) override {
    if (bgr.empty() || bgr.type() != CV_8UC3) {
      return Error(ErrorCode::kInvalidArgument, "product matcher needs a non-empty BGR image");
    }
    cv::Mat gray;
    cv::cvtColor(bgr, gray, cv::COLOR_BGR2GRAY);
    std::vector<cv::KeyPoint> kps;
    cv::Mat desc;
    features_->detectAndCompute(gray, cv::noArray(), kps, desc);
    std::vector<Detection> out;
    if (desc.empty()) return out;
    for (const Reference& ref : refs_) {
      if (auto d = MatchOne(ref, kps, desc)) out.push_back(std::move(*d));
    }
    return out;
  }

 private:
  std::optional<Detection> MatchOne(const Reference& ref, const std::vector<cv::KeyPoint>& kps,
                                    const cv::Mat& desc) const {
    std::vector<std::vector<cv::DMatch>> knn;
    matcher_->knnMatch(ref.descriptors, desc, knn, 2);
    std::vector<cv::Point2f> src;
    std::vector<cv::Point2f> dst;
    for (const auto& m : knn) {
      if (m.size() == 2 && m[0].distance < options_.ratio * m[1].distance) {
        src.push_back(ref.keypoints[m[0].queryIdx].pt);
        dst.push_back(kps[m[0].trainIdx].pt);
      }
    }
    if (static_cast<int>(src.size()) < options_.min_inliers) return std::nullopt;
    std::vector<uint8_t> mask;
    const cv::Mat h = cv::findHomography(src, dst, cv::RANSAC, 5.0, mask);
    if (h.empty()) return std::nullopt;
    const int inliers = cv::countNonZero(mask);
    if (inliers < options_.min_inliers) return std::nullopt;
    const float w = static_cast<float>(ref.size.width);
    const float ht = static_cast<float>(ref.size.height);
    std::vector<cv::Point2f> quad = {{0, 0}, {w, 0}, {w, ht}, {0, ht}};
    cv::perspectiveTransform(quad, quad, h);
    if (!PlausibleOutline(quad, ref.size)) return std::nullopt;
    const float score = static_cast<float>(inliers) / static_cast<float>(src.size());
    return Detection{"product", ref.name, options_.features, score, cv::boundingRect(quad),
                     quad,      {}};
  }

  cv::Ptr<cv::Feature2D> features_;
  ProductMatcherOptions options_;
  cv::Ptr<cv::DescriptorMatcher> matcher_;
  std::vector<Reference> refs_;
};

}  // namespace

Result<std::unique_ptr<ProductMatcher>> ProductMatcher::Create(
    const std::vector<CatalogItem>& catalog, const ProductMatcherOptions& options) {
  SV_ASSIGN_OR_RETURN(auto features, MakeFeatures(options.features));
  auto matcher = std::make_unique<Matcher>(std::move(features), options);
  for (const auto& item : catalog) SV_TRY_CTX(matcher->Add(item), "catalog");
  return std::unique_ptr<ProductMatcher>(std::move(matcher));
}

Result<std::vector<CatalogItem>> LoadCatalog(const std::string& path) {
  SV_ASSIGN_OR_RETURN(std::string text, ReadFile(path, 1u << 20));
  return ParseCatalog(text, path);
}

Result<std::vector<CatalogItem>> ParseCatalog(std::string_view text, const std::string& path) {
  constexpr size_t kMaxItems = 10000;
  const std::string dir = std::filesystem::path(path).parent_path().string();
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object() || !j.contains("items") || !j["items"].is_array()) {
    return Error(ErrorCode::kInvalidArgument,
                 path + ": expected a JSON object {\"items\": [{\"name\": ..., \"image\": ...}]}");
  }
  const auto& list = j["items"];
  if (list.size() > kMaxItems) {
    return Error(ErrorCode::kInvalidArgument,
                 path + ": more than " + std::to_string(kMaxItems) + " items");
  }
  // Names end up in detections, events and logs; paths are opened.
  auto clean = [](const std::string& s) {
    return !s.empty() && std::none_of(s.begin(), s.end(), [](char c) {
      return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
    });
  };
  std::vector<CatalogItem> items;
  std::set<std::string> names;
  for (size_t i = 0; i < list.size(); ++i) {
    const auto& it = list[i];
    const std::string where = path + ": items[" + std::to_string(i) + "]";
    if (!it.is_object() || !it.contains("name") || !it["name"].is_string() ||
        !it.contains("image") || !it["image"].is_string()) {
      return Error(ErrorCode::kInvalidArgument, where + ": needs string fields name and image");
    }
    const std::string name = it["name"].get<std::string>();
    std::string image = it["image"].get<std::string>();
    if (!clean(name) || !clean(image)) {
      return Error(ErrorCode::kInvalidArgument,
                   where + ": name and image must be non-empty, without control characters");
    }
    if (!names.insert(name).second) {
      std::string msg = where;
      msg += ": a second item named '";
      msg += name;
      msg += "'";
      return Error(ErrorCode::kInvalidArgument, msg);
    }
    if (image[0] != '/' && !dir.empty()) image.insert(0, dir + "/");
    items.push_back({name, image});
  }
  return items;
}

}  // namespace storevisor::vision
