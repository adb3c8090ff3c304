// Real photos from Debian packages (listed in scripts/deps/vision.txt), used by the tests
// and the bench. None are copied into the repository.
#pragma once

namespace storevisor::vision::testdata {

inline constexpr const char* kGraceHopper =
    "/usr/share/doc/facedetect/examples/grace_hopper_512x512.jpg";  // facedetect
inline constexpr const char* kSkimage = "/usr/lib/python3/dist-packages/skimage/data/";
inline constexpr const char* kOpencvData = "/usr/share/doc/opencv-doc/examples/data/";
inline constexpr const char* kFourBarcodes =
    "/usr/share/doc/opencv-doc/opencv4/html/4_barcodes.jpg";  // opencv-doc
// A close-up of an open hand (the histogram back-projection tutorial's photo).
inline constexpr const char* kHand = "/usr/share/doc/opencv-doc/opencv4/html/handSrc.jpg";
// A "DOUBLE PARKING PROHIBITED" street sign (the text module's scene-text samples).
inline constexpr const char* kSignText = "/usr/share/doc/opencv-doc/examples/text/scenetext01.jpg";

}  // namespace storevisor::vision::testdata
