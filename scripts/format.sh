#!/usr/bin/env bash
# Formats every C++ source in place with the project's .clang-format.
source "$(dirname "$0")/lib.sh"
cd "$SV_ROOT"
git ls-files 'src/*.cc' 'src/*.h' 'bench/*.cc' 'fuzz/*.cc' 'tests/*.cc' | xargs -r clang-format -i
