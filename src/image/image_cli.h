// The `storevisor image ...` entry point (target sv_image_cli); declared in image/image.h,
// this header exists so the main CLI can include only what it calls.
#pragma once

#include "image/image.h"
