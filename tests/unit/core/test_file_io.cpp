#include "llmfs/core/file_io.h"

#include <filesystem>

#include "catch.h"
#include "llmfs/core/error.h"

namespace fs = std::filesystem;

TEST_CASE("write_file_atomic writes through a temporary file and leaves none behind", "[unit][io]") {
  const fs::path dir = fs::temp_directory_path() / "llmfs_test_file_io";
  fs::remove_all(dir);
  const fs::path file = dir / "sub" / "out.txt";
  llmfs::write_file_atomic(file, "first");
  llmfs::write_file_atomic(file, "second");
  CHECK(llmfs::read_file(file) == "second");
  CHECK_FALSE(fs::exists(file.string() + ".tmp"));
  fs::remove_all(dir);
}

TEST_CASE("read_file names a missing file", "[unit][io]") {
  CHECK_THROWS_WITH(llmfs::read_file("/nonexistent/file.txt"),
                    llmfs::test::contains_text("/nonexistent/file.txt: cannot open"));
}
