# Flags every target shares. Identical flags are what let chapters and tests reuse the library's PCH.
add_library(llmfs_options INTERFACE)
target_compile_options(llmfs_options INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor
  # Designated initialisers leave the other members at their defaults on purpose.
  -Wno-missing-field-initializers $<$<BOOL:${LLMFS_WERROR}>:-Werror>)

if(LLMFS_CCACHE)
  find_program(CCACHE_PROGRAM ccache)
  if(CCACHE_PROGRAM)
    # Settings ccache needs to cache PCH builds (ccache manual, "Precompiled headers"); the base
    # directory makes hits independent of where the checkout lives.
    set(CMAKE_CXX_COMPILER_LAUNCHER ${CMAKE_COMMAND} -E env
        CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime
        CCACHE_BASEDIR=${PROJECT_SOURCE_DIR} ${CCACHE_PROGRAM})
  endif()
endif()

# Sanitizers (scripts/test.sh --sanitize builds with address,undefined in its own folder): our
# code is instrumented, LibTorch is used as the wheel ships it. A UBSan finding stops the program
# like an ASan one (no recovery), so a test that triggers one fails.
if(LLMFS_SANITIZE)
  target_compile_options(llmfs_options INTERFACE -fsanitize=${LLMFS_SANITIZE}
                         -fno-sanitize-recover=all -fno-omit-frame-pointer)
  target_link_options(llmfs_options INTERFACE -fsanitize=${LLMFS_SANITIZE})
endif()

# Executables and test binaries reuse the library's precompiled header.
function(llmfs_use_pch target)
  if(LLMFS_PCH)
    target_precompile_headers(${target} REUSE_FROM llmfs)
  endif()
endfunction()

# One chapter executable: chapters/<dir>/main.cpp -> build/bin/<name>.
function(llmfs_add_chapter name source)
  add_executable(${name} ${source})
  target_link_libraries(${name} PRIVATE llmfs::llmfs llmfs_options CLI11::CLI11)
  llmfs_use_pch(${name})
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/bin)
endfunction()

# The torch wheel's libtorch.so and libtorch_cpu.so carry and export copies of some libstdc++
# functions (std::filesystem among them) that crash when called from our code. Naming the system
# libstdc++ first on the link line puts it first in the search order, so those calls bind to it.
target_link_options(llmfs_options INTERFACE "SHELL:-Wl,--push-state,--no-as-needed -lstdc++ -Wl,--pop-state")
