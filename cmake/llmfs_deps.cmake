# Third-party dependencies: LibTorch from the PyPI torch wheel (or Torch_DIR) and Debian's libraries.

# --- LibTorch -----------------------------------------------------------------
# The PyPI wheel is a CUDA build whose CMake files look for a CUDA toolkit and enable the CUDA
# language. We compile no CUDA code ourselves, and the wheel brings the CUDA runtime libraries it
# links (nvidia-* wheels, found through libtorch_cuda's RUNPATH), so we stand in for the two targets
# its cuda.cmake would create: no toolkit is needed, and CUDA still works at run time where there is
# a GPU. Set LLMFS_CUDA_TOOLKIT=ON to let LibTorch find the real toolkit instead.
option(LLMFS_CUDA_TOOLKIT "Let LibTorch's CMake find and enable the CUDA toolkit" OFF)
if(NOT LLMFS_CUDA_TOOLKIT)
  add_library(torch::cudart INTERFACE IMPORTED)
  add_library(torch::nvtoolsext INTERFACE IMPORTED)
endif()
find_package(Torch REQUIRED)
message(STATUS "LibTorch ${Torch_VERSION}: ${TORCH_INSTALL_PREFIX}")

# --- Debian libraries -----------------------------------------------------------
find_package(fmt REQUIRED)
find_package(spdlog REQUIRED)
find_package(yaml-cpp REQUIRED)    # target `yaml-cpp` (0.7); 0.8 adds yaml-cpp::yaml-cpp
find_package(CLI11 REQUIRED)
find_package(nlohmann_json REQUIRED)

find_package(OpenSSL REQUIRED)
find_package(ZLIB REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(SentencePiece REQUIRED IMPORTED_TARGET sentencepiece)   # no CMake config shipped
pkg_check_modules(ICU REQUIRED IMPORTED_TARGET icu-uc)
pkg_check_modules(HTTPLIB REQUIRED IMPORTED_TARGET cpp-httplib)   # Debian builds it as a library
if(TARGET yaml-cpp::yaml-cpp)
  set(LLMFS_YAML_TARGET yaml-cpp::yaml-cpp)
else()
  set(LLMFS_YAML_TARGET yaml-cpp)
endif()

# The torch wheel ships its own fmt headers (a newer major version) in its include folder, which
# comes first on the include path; we link Debian's libfmt, which spdlog is built against. A folder
# holding only a link to the system fmt, put in front of everything, makes <fmt/...> mean Debian's.
get_target_property(_fmt_includes fmt::fmt INTERFACE_INCLUDE_DIRECTORIES)
foreach(_dir IN LISTS _fmt_includes)
  if(EXISTS "${_dir}/fmt/format.h")
    set(_fmt_shadow "${PROJECT_BINARY_DIR}/fmt_shadow")
    file(MAKE_DIRECTORY "${_fmt_shadow}")
    file(CREATE_LINK "${_dir}/fmt" "${_fmt_shadow}/fmt" SYMBOLIC)
    include_directories(BEFORE SYSTEM "${_fmt_shadow}")
    break()
  endif()
endforeach()
