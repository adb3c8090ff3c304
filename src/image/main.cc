// storevisor-image: the image store's standalone command (the same as `storevisor image`).
#include <string>
#include <vector>

#include "image/image.h"

int main(int argc, char** argv) {
  return storevisor::image::RunImageCli(std::vector<std::string>(argv + 1, argv + argc));
}
