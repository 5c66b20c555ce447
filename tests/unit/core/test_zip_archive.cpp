#include <cstring>
#include <filesystem>

#include "catch.h"
#include "llmfs/core/error.h"
#include "llmfs/core/file_io.h"
#include "llmfs/core/zip_archive.h"

namespace fs = std::filesystem;
using llmfs::test::contains_text;

namespace {

fs::path temp_path(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / "llmfs_test_zip";
  fs::create_directories(dir);
  return dir / name;
}

template <typename T>
void put(std::string& out, T v) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  out.append(b, sizeof(T));
}

// A one-entry stored archive written by hand, with every size and offset in zip64 extra fields
// (0xffffffff in the classic fields), as writers do for entries past 4 GiB.
std::string zip64_archive(const std::string& name, const std::string& data, uint16_t method = 0) {
  const uint32_t crc = llmfs::crc32(data.data(), data.size());
  std::string z;
  put<uint32_t>(z, 0x04034b50);
  put<uint16_t>(z, 45);
  put<uint16_t>(z, 0);
  put<uint16_t>(z, method);
  put<uint32_t>(z, 0);
  put<uint32_t>(z, crc);
  put<uint32_t>(z, 0xffffffff);
  put<uint32_t>(z, 0xffffffff);
  put<uint16_t>(z, static_cast<uint16_t>(name.size()));
  put<uint16_t>(z, 20);
  z += name;
  put<uint16_t>(z, 1);
  put<uint16_t>(z, 16);
  put<uint64_t>(z, data.size());
  put<uint64_t>(z, data.size());
  z += data;
  const uint64_t cd_offset = z.size();
  put<uint32_t>(z, 0x02014b50);
  put<uint16_t>(z, 45);
  put<uint16_t>(z, 45);
  put<uint16_t>(z, 0);
  put<uint16_t>(z, method);
  put<uint32_t>(z, 0);
  put<uint32_t>(z, crc);
  put<uint32_t>(z, 0xffffffff);
  put<uint32_t>(z, 0xffffffff);
  put<uint16_t>(z, static_cast<uint16_t>(name.size()));
  put<uint16_t>(z, 28);
  put<uint16_t>(z, 0);
  put<uint16_t>(z, 0);
  put<uint16_t>(z, 0);
  put<uint32_t>(z, 0);
  put<uint32_t>(z, 0xffffffff);
  z += name;
  put<uint16_t>(z, 1);
  put<uint16_t>(z, 24);
  put<uint64_t>(z, data.size());
  put<uint64_t>(z, data.size());
  put<uint64_t>(z, 0);
  const uint64_t z64 = z.size();
  put<uint32_t>(z, 0x06064b50);
  put<uint64_t>(z, 44);
  put<uint16_t>(z, 45);
  put<uint16_t>(z, 45);
  put<uint32_t>(z, 0);
  put<uint32_t>(z, 0);
  put<uint64_t>(z, 1);
  put<uint64_t>(z, 1);
  put<uint64_t>(z, z64 - cd_offset);
  put<uint64_t>(z, cd_offset);
  put<uint32_t>(z, 0x07064b50);
  put<uint32_t>(z, 0);
  put<uint64_t>(z, z64);
  put<uint32_t>(z, 1);
  put<uint32_t>(z, 0x06054b50);
  put<uint16_t>(z, 0);
  put<uint16_t>(z, 0);
  put<uint16_t>(z, 0xffff);
  put<uint16_t>(z, 0xffff);
  put<uint32_t>(z, 0xffffffff);
  put<uint32_t>(z, 0xffffffff);
  put<uint16_t>(z, 0);
  return z;
}

// Archives made by Python's zipfile. zip_fixture.inc: a.txt stored ("stored\n"), b.txt
// deflated ("deflated deflated deflated\n"). zip_streamed_fixture.inc: two deflated entries
// with data descriptors, as zip tools write to a pipe.
std::string fixture_zip() {
  const unsigned char bytes[] = {
#include "zip_fixture.inc"
  };
  return std::string(reinterpret_cast<const char*>(bytes), sizeof(bytes));
}

std::string streamed_zip() {
  const unsigned char bytes[] = {
#include "zip_streamed_fixture.inc"
  };
  return std::string(reinterpret_cast<const char*>(bytes), sizeof(bytes));
}

}  // namespace

TEST_CASE("crc32 matches the zip check value", "[unit][zip]") {
  CHECK(llmfs::crc32("123456789", 9) == 0xcbf43926u);
  CHECK(llmfs::crc32("", 0) == 0u);
  // Continuing a CRC over a split buffer gives the CRC of the whole.
  const std::string text = "The quick brown fox jumps over the lazy dog";
  CHECK(llmfs::crc32(text.data() + 10, text.size() - 10, llmfs::crc32(text.data(), 10)) ==
        llmfs::crc32(text.data(), text.size()));
  CHECK(llmfs::crc32(text.data(), text.size()) == 0x414fa339u);
}

TEST_CASE("crc32's carry-less-multiplication path equals zlib's crc32", "[unit][zip]") {
  std::string data(5000, '\0');
  uint32_t seed = 12345;
  for (char& c : data) {
    seed = seed * 1103515245u + 12345u;
    c = static_cast<char>(seed >> 16);
  }
  for (size_t length = 0; length < 600; ++length) {
    for (size_t offset : {0, 1, 7}) {
      INFO("length " << length << " offset " << offset);
      REQUIRE(llmfs::crc32(data.data() + offset, length) ==
              llmfs::crc32_portable(data.data() + offset, length));
    }
  }
  CHECK(llmfs::crc32(data.data(), data.size()) == llmfs::crc32_portable(data.data(), data.size()));
  CHECK(llmfs::crc32(data.data() + 100, 4000, 0xdeadbeef) ==
        llmfs::crc32_portable(data.data() + 100, 4000, 0xdeadbeef));
  const std::string zeros(1 << 20, '\0');
  CHECK(llmfs::crc32(zeros.data(), zeros.size()) ==
        llmfs::crc32_portable(zeros.data(), zeros.size()));
}

TEST_CASE("ZipWriter output reads back with aligned data", "[unit][zip]") {
  const fs::path path = temp_path("round.zip");
  {
    llmfs::ZipWriter zip(path);
    zip.add("a/data.pkl", "hello");
    zip.add("a/data/0", std::string(1000, 'x'));
    zip.add("a/empty", "");
    zip.finish();
  }
  llmfs::ZipReader zip(path);
  REQUIRE(zip.entries().size() == 3);
  CHECK(zip.data(*zip.find("a/data.pkl")) == "hello");
  CHECK(zip.data(*zip.find("a/data/0")) == std::string(1000, 'x'));
  CHECK(zip.data(*zip.find("a/empty")).empty());
  for (const auto& e : zip.entries()) CHECK(e.data_offset % 64 == 0);
  CHECK(zip.find("missing") == nullptr);
}

TEST_CASE("ZipReader reads zip64 sizes and offsets", "[unit][zip]") {
  const fs::path path = temp_path("zip64.zip");
  llmfs::write_file_atomic(path, zip64_archive("x/data.pkl", "zip64 payload"));
  llmfs::ZipReader zip(path);
  REQUIRE(zip.entries().size() == 1);
  CHECK(zip.entries()[0].size == 13);
  CHECK(zip.data(zip.entries()[0]) == "zip64 payload");
}

TEST_CASE("ZipReader rejects compressed, truncated and corrupt archives", "[unit][zip]") {
  const fs::path path = temp_path("bad.zip");

  llmfs::write_file_atomic(path, zip64_archive("x/data.pkl", "abc", 8));
  CHECK_THROWS_WITH(llmfs::ZipReader(path),
                    contains_text("zip entry 'x/data.pkl': compressed (deflate); only stored"));

  const fs::path good = temp_path("good.zip");
  {
    llmfs::ZipWriter zip(good);
    zip.add("a/data.pkl", std::string(100, 'p'));
    zip.add("a/data/0", std::string(300, 'd'));
    zip.finish();
  }
  const std::string bytes = llmfs::read_file(good);

  llmfs::write_file_atomic(path, bytes.substr(0, bytes.size() - 30));
  CHECK_THROWS_WITH(llmfs::ZipReader(path),
                    contains_text("not a zip archive (no end-of-central-directory"));

  llmfs::write_file_atomic(path, "tiny");
  CHECK_THROWS_WITH(llmfs::ZipReader(path), contains_text("bad.zip: not a zip archive (4 bytes"));

  // Flip one data byte: the CRC check names the entry.
  std::string flipped = bytes;
  flipped[flipped.find(std::string(300, 'd')) + 7] = 'X';
  llmfs::write_file_atomic(path, flipped);
  llmfs::ZipReader zip(path);
  CHECK_THROWS_WITH(zip.data(*zip.find("a/data/0")),
                    contains_text("zip entry 'a/data/0' is corrupt (CRC-32"));
  CHECK(zip.data(*zip.find("a/data/0"), /*verify_crc=*/false).size() == 300);

  // A local header that does not match its central-directory entry.
  std::string renamed = bytes;
  renamed[renamed.find("a/data/0")] = 'b';  // the first occurrence is the local header's name
  llmfs::write_file_atomic(path, renamed);
  CHECK_THROWS_WITH(llmfs::ZipReader(path),
                    contains_text("zip entry 'a/data/0': local header at offset") &&
                        contains_text("does not match the central directory"));

  // A central directory that claims more data than there is before it.
  std::string grown = bytes;
  const auto cd = grown.find("PK\x01\x02", 0);
  const auto second_cd = grown.find("PK\x01\x02", cd + 4);
  const uint32_t big = 5000;
  std::memcpy(&grown[second_cd + 20], &big, 4);
  std::memcpy(&grown[second_cd + 24], &big, 4);
  llmfs::write_file_atomic(path, grown);
  CHECK_THROWS_WITH(llmfs::ZipReader(path),
                    contains_text("zip entry 'a/data/0': 5000 bytes at offset") &&
                        contains_text("run past the central directory"));
}

TEST_CASE("ZipReader rejects duplicate and overlapping entries", "[unit][zip]") {
  const fs::path path = temp_path("dup.zip");
  {
    llmfs::ZipWriter zip(path);
    zip.add("a/x", "1");
    zip.add("a/x", "2");
    zip.finish();
  }
  CHECK_THROWS_WITH(llmfs::ZipReader(path), contains_text("zip entry 'a/x': appears twice"));

  const fs::path good = temp_path("overlap.zip");
  {
    llmfs::ZipWriter zip(good, /*alignment=*/1);
    zip.add("a/x", "11111111");
    zip.add("a/y", "22222222");
    zip.finish();
  }
  // Make the first entry claim 20 bytes: its data then runs into the second entry's header.
  std::string bytes = llmfs::read_file(good);
  const auto cd = bytes.find("PK\x01\x02");
  const uint32_t twenty = 20;
  std::memcpy(&bytes[cd + 20], &twenty, 4);
  std::memcpy(&bytes[cd + 24], &twenty, 4);
  llmfs::write_file_atomic(path, bytes);
  CHECK_THROWS_WITH(llmfs::ZipReader(path),
                    contains_text("zip entry 'a/x' overlaps zip entry 'a/y'"));
}

TEST_CASE("ZipReader reads stored and deflated entries when asked to", "[unit][zip]") {
  const auto zip = llmfs::ZipReader::from_bytes(fixture_zip(), "t.zip",
                                                llmfs::ZipCompression::stored_or_deflated);
  REQUIRE(zip.entries().size() == 2);
  const llmfs::ZipEntry& a = *zip.find("a.txt");
  const llmfs::ZipEntry& b = *zip.find("b.txt");
  CHECK(a.stored());
  CHECK(!b.stored());
  CHECK(b.size == 27);
  CHECK(b.compressed_size < b.size);
  CHECK(zip.read(a) == "stored\n");
  CHECK(zip.data(a) == "stored\n");
  CHECK(zip.read(b) == "deflated deflated deflated\n");
  CHECK_THROWS_WITH(zip.data(b), contains_text("t.zip: zip entry 'b.txt' is compressed (deflate)"));
  CHECK(zip.mapped() == nullptr);

  const auto streamed = llmfs::ZipReader::from_bytes(streamed_zip(), "s.zip",
                                                     llmfs::ZipCompression::stored_or_deflated);
  CHECK(streamed.read(*streamed.find("readme")) == "ham and spam\n");
  std::string sms;
  for (int i = 0; i < 3; ++i) sms += "ham\tGo until jurong point\nspam\tFree entry\n";
  CHECK(streamed.read(*streamed.find("SMSSpamCollection")) == sms);

  // The same archive from a file.
  const fs::path path = temp_path("deflated.zip");
  llmfs::write_file_atomic(path, fixture_zip());
  const llmfs::ZipReader from_file(path, llmfs::ZipCompression::stored_or_deflated);
  CHECK(from_file.read(*from_file.find("b.txt")) == "deflated deflated deflated\n");
}

TEST_CASE("ZipReader refuses deflated entries by default and checks what it inflates",
          "[unit][zip]") {
  CHECK_THROWS_WITH(llmfs::ZipReader::from_bytes(fixture_zip(), "t.zip"),
                    contains_text("t.zip: zip entry 'b.txt': compressed (deflate); only stored"));
  CHECK_THROWS_WITH(llmfs::ZipReader::from_bytes("not a zip at all, not at all", "x.zip",
                                                 llmfs::ZipCompression::stored_or_deflated),
                    contains_text("x.zip: not a zip archive (no end-of-central-directory record; "
                                  "truncated, or not a zip file)"));

  // A flipped byte in the deflated stream: zlib or the CRC check catches it, naming the entry.
  std::string flipped = fixture_zip();
  flipped[80] ^= 0x55;  // b.txt's deflated data: offsets 42 + 30 + 5 (name) = 77 to 91
  flipped[85] ^= 0x55;
  const auto zip = llmfs::ZipReader::from_bytes(flipped, "t.zip",
                                                llmfs::ZipCompression::stored_or_deflated);
  CHECK_THROWS_WITH(zip.read(*zip.find("b.txt")), contains_text("t.zip: zip entry 'b.txt'"));

  // A central directory that records the wrong uncompressed size.
  std::string wrong_size = fixture_zip();
  const auto cd = wrong_size.find("PK\x01\x02");
  const auto second_cd = wrong_size.find("PK\x01\x02", cd + 4);
  const uint32_t thirty = 30;
  std::memcpy(&wrong_size[second_cd + 24], &thirty, 4);
  const auto sized = llmfs::ZipReader::from_bytes(wrong_size, "t.zip",
                                                  llmfs::ZipCompression::stored_or_deflated);
  CHECK_THROWS_WITH(sized.read(*sized.find("b.txt")),
                    contains_text("t.zip: zip entry 'b.txt': deflated data inflates to 27 bytes, "
                                  "not the 30 its header records"));

  // A claim deflate cannot encode is refused when the archive is opened.
  const uint32_t huge = 1u << 30;
  std::memcpy(&wrong_size[second_cd + 24], &huge, 4);
  CHECK_THROWS_WITH(llmfs::ZipReader::from_bytes(wrong_size, "t.zip",
                                                 llmfs::ZipCompression::stored_or_deflated),
                    contains_text("zip entry 'b.txt': deflated entry of 15 bytes cannot inflate"));
}
