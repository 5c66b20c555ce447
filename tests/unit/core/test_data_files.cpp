#include "llmfs/core/data_files.h"

#include <httplib.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "catch.h"
#include "llmfs/core/error.h"
#include "llmfs/core/file_io.h"

namespace fs = std::filesystem;

namespace {

// A loopback HTTP server serving one body at /file.txt for the duration of a test.
class LocalServer {
 public:
  explicit LocalServer(std::string body) : body_(std::move(body)) {
    server_.Get("/file.txt", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(body_, "text/plain");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~LocalServer() {
    server_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/file.txt"; }

 private:
  std::string body_;
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
};

fs::path fresh_dir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

}  // namespace

TEST_CASE("sha256_hex matches the known digest", "[unit][data]") {
  CHECK(llmfs::sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_CASE("A data file is downloaded, hash-checked and saved atomically", "[unit][data]") {
  LocalServer server("hello data\n");
  const fs::path dir = fresh_dir("llmfs_test_download");
  const llmfs::DataFileInfo info{"sub/file.txt", server.url(), llmfs::sha256_hex("hello data\n"), ""};
  const fs::path path = llmfs::download_data_file(info, dir);
  CHECK(path == dir / "sub/file.txt");
  CHECK(llmfs::read_file(path) == "hello data\n");
  fs::remove_all(dir);
}

TEST_CASE("A download with the wrong hash is rejected and nothing is saved", "[unit][data]") {
  LocalServer server("tampered\n");
  const fs::path dir = fresh_dir("llmfs_test_download_bad");
  const llmfs::DataFileInfo info{"file.txt", server.url(), llmfs::sha256_hex("original\n"), ""};
  CHECK_THROWS_WITH(llmfs::download_data_file(info, dir), llmfs::test::contains_text("SHA-256 mismatch"));
  CHECK_FALSE(fs::exists(dir / "file.txt"));
  fs::remove_all(dir);
}

TEST_CASE("A missing data file offline says where it looked and how to get it", "[unit][data]") {
  const fs::path dir = fresh_dir("llmfs_test_offline");
  ::setenv("LLMFS_DATA_DIR", dir.c_str(), 1);
  ::setenv("LLMFS_CACHE_DIR", (dir / "cache").c_str(), 1);
  ::setenv("LLMFS_OFFLINE", "1", 1);
  CHECK_THROWS_WITH(llmfs::data_file("the-verdict.txt"),
                    llmfs::test::contains_text("missing data file the-verdict.txt"));
  CHECK_THROWS_WITH(llmfs::data_file("the-verdict.txt"), llmfs::test::contains_text("set LLMFS_DATA_DIR"));
  ::unsetenv("LLMFS_OFFLINE");
  ::unsetenv("LLMFS_CACHE_DIR");
  ::unsetenv("LLMFS_DATA_DIR");
  fs::remove_all(dir);
}

TEST_CASE("A data file in LLMFS_DATA_DIR is found there", "[unit][data]") {
  const fs::path dir = fresh_dir("llmfs_test_datadir");
  llmfs::write_file_atomic(dir / "the-verdict.txt", "text");
  ::setenv("LLMFS_DATA_DIR", dir.c_str(), 1);
  CHECK(llmfs::data_file("the-verdict.txt") == dir / "the-verdict.txt");
  ::unsetenv("LLMFS_DATA_DIR");
  fs::remove_all(dir);
}

TEST_CASE("An unknown data file name is an error listing the known ones", "[unit][data]") {
  CHECK_THROWS_WITH(llmfs::data_file_info("nope.txt"), llmfs::test::contains_text("the-verdict.txt"));
}

TEST_CASE("input_file takes an existing path, else a known data file name", "[unit][data]") {
  const auto dir = std::filesystem::temp_directory_path() / "llmfs_input_file_test";
  std::filesystem::create_directories(dir);
  const auto path = dir / "mine.txt";
  llmfs::write_file_atomic(path, "x");
  CHECK(llmfs::input_file(path.string()) == path);
  CHECK_THROWS_WITH(llmfs::input_file((dir / "nope.txt").string()),
                    llmfs::test::contains_text("nope.txt: no such file (nor a known data file name)"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("A zip member is extracted, stored or deflated, and checked", "[unit][data]") {
  // zip of two members made by Python's zipfile: a.txt stored ("stored\n"), b.txt deflated
  // ("deflated deflated deflated\n").
  const unsigned char bytes[] = {
#include "zip_fixture.inc"
  };
  const std::string zip(reinterpret_cast<const char*>(bytes), sizeof(bytes));
  CHECK(llmfs::extract_zip_member(zip, "a.txt", "t.zip") == "stored\n");
  CHECK(llmfs::extract_zip_member(zip, "b.txt", "t.zip") == "deflated deflated deflated\n");
  CHECK_THROWS_WITH(llmfs::extract_zip_member(zip, "c.txt", "t.zip"),
                    llmfs::test::contains_text("t.zip: the zip archive has no member c.txt"));
  CHECK_THROWS_WITH(llmfs::extract_zip_member("not a zip at all, not at all", "a.txt", "x.zip"),
                    llmfs::test::contains_text("x.zip: not a zip archive"));
  std::string corrupt = zip;
  corrupt[37] ^= 0x55;  // a byte of a.txt's data (offset 35..41): the CRC check fails
  CHECK_THROWS(llmfs::extract_zip_member(corrupt, "a.txt", "t.zip"));
}
