// Test-only: frames with a real face placed where the test wants it (Grace Hopper's face from
// facedetect's photo pasted on fruits.jpg, a scene without people), for the tile coverage tests.
#pragma once

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <string>
#include <vector>

#include "vision/test_images.h"

namespace storevisor::vision::testdata {

// Grace Hopper's face in grace_hopper_512x512.jpg, brow to chin and ear to ear, by eye.
inline const cv::Rect kHopperFace(168, 110, 200, 210);

// fruits.jpg resized to `size` with Grace Hopper's face scaled to `side` pixels wide and its
// box's top-left at `at` (the face and 40% of its size around it pasted, clipped to the frame).
// Returns an empty Mat when a photo is missing. `*face` gets the face's box in the frame.
inline cv::Mat FrameWithFace(cv::Size size, int side, cv::Point at, cv::Rect* face) {
  const cv::Mat hopper = cv::imread(kGraceHopper);
  const cv::Mat fruits = cv::imread(std::string(kOpencvData) + "fruits.jpg");
  if (hopper.empty() || fruits.empty()) return {};
  cv::Mat frame;
  cv::resize(fruits, frame, size, 0, 0, cv::INTER_AREA);
  const double scale = side / static_cast<double>(kHopperFace.width);
  cv::Mat scaled;
  cv::resize(hopper, scaled, cv::Size(), scale, scale, cv::INTER_AREA);
  const cv::Rect src_face(
      cv::Point(static_cast<int>(kHopperFace.x * scale), static_cast<int>(kHopperFace.y * scale)),
      cv::Size(side, static_cast<int>(kHopperFace.height * scale)));
  const int margin = side * 2 / 5;
  cv::Rect src = (src_face + cv::Size(2 * margin, 2 * margin)) - cv::Point(margin, margin);
  src &= cv::Rect(0, 0, scaled.cols, scaled.rows);
  const cv::Point shift = at - src_face.tl();
  cv::Rect dst = (src + shift) & cv::Rect(0, 0, frame.cols, frame.rows);
  scaled(dst - shift).copyTo(frame(dst));
  *face = src_face + shift;
  return frame;
}

// Where the tile tests put a face of `side` x `height` pixels: at the right edge, the bottom
// edge and the bottom-right corner (the strips rounded-down tile counts left out), and, as a
// check of the frame itself, the top-left corner.
inline std::vector<cv::Point> EdgePlaces(cv::Size size, int side, int height) {
  const int right = size.width - side - 2;
  const int bottom = size.height - height - 2;
  return {{right, (size.height - height) / 2},
          {(size.width - side) / 2, bottom},
          {right, bottom},
          {2, 2}};
}

}  // namespace storevisor::vision::testdata
