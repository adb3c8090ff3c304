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

}  // namespace storevisor::vision::testdata
