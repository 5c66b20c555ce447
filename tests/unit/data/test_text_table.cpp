// TextTable: the SMS collection reader (book quoting and plain lines), read_csv with RFC 4180
// quoting, write_csv, and every error naming file and line.
#include <filesystem>
#include <string>
#include <vector>

#include "catch.h"
#include "llmfs/core/error.h"
#include "llmfs/core/file_io.h"
#include "llmfs/data/text_table.h"

namespace fs = std::filesystem;
using llmfs::test::contains_text;

namespace {

fs::path scratch() {
  const fs::path dir = fs::temp_directory_path() / "llmfs_test_text_table";
  fs::create_directories(dir);
  return dir;
}

fs::path write(const std::string& name, const std::string& bytes) {
  const fs::path path = scratch() / name;
  llmfs::write_file_atomic(path, bytes);
  return path;
}

using Rows = std::vector<std::vector<std::string>>;

}  // namespace

TEST_CASE("read_sms_collection book mode applies pandas' quoting rule", "[unit][data]") {
  const auto path = write("sms_book",
                          "ham\tGo until jurong\n"
                          "spam\t\"quoted, with \"\"doubled\"\" quote\"\n"
                          "ham\t\"open quote absorbs\n"
                          "ham\tthe next line up to \"the quote\" then the rest\"\n"
                          "ham\tmid \"quote\" is literal\n"
                          "\n"
                          "spam\tlast");
  const auto t = llmfs::read_sms_collection(path, "book");
  CHECK(t.columns == std::vector<std::string>{"Label", "Text"});
  CHECK(t.rows ==
        Rows{{"ham", "Go until jurong"},
             {"spam", "quoted, with \"doubled\" quote"},
             {"ham", "open quote absorbs\nham\tthe next line up to the quote\" then the rest\""},
             {"ham", "mid \"quote\" is literal"},
             {"spam", "last"}});
  CHECK(t.lines == std::vector<int64_t>{1, 2, 3, 5, 7});
  CHECK(t.column("Text") == 1);
  CHECK_THROWS_WITH(t.column("text"), contains_text("no column 'text'") &&
                                          contains_text("'Label', 'Text'") &&
                                          contains_text("sms_book"));
}

TEST_CASE("read_sms_collection plain mode keeps every line", "[unit][data]") {
  const auto path = write("sms_plain", "\xEF\xBB\xBFham\t\"open\r\nspam\ta\tb\n");
  const auto t = llmfs::read_sms_collection(path, "plain");
  CHECK(t.rows == Rows{{"ham", "\"open"}, {"spam", "a\tb"}});
  CHECK(t.lines == std::vector<int64_t>{1, 2});
}

TEST_CASE("read_sms_collection errors name file and line", "[unit][data]") {
  const auto no_tab = write("sms_no_tab", "ham\tok\nno tab here\n");
  for (const char* mode : {"book", "plain"}) {
    CHECK_THROWS_WITH(llmfs::read_sms_collection(no_tab, mode),
                      contains_text("sms_no_tab:2:") && contains_text("no tab"));
  }
  const auto bad_utf8 = write("sms_utf8", "ham\tok\nham\tok\nspam\tbad \xff byte\n");
  for (const char* mode : {"book", "plain"}) {
    CHECK_THROWS_WITH(llmfs::read_sms_collection(bad_utf8, mode),
                      contains_text("sms_utf8:3:") && contains_text("invalid UTF-8"));
  }
  const auto open_quote = write("sms_open", "ham\tok\nham\t\"never closed\nham\tmore\n");
  CHECK_THROWS_WITH(llmfs::read_sms_collection(open_quote, "book"),
                    contains_text("sms_open:2:") && contains_text("unterminated quote"));
  CHECK(llmfs::read_sms_collection(open_quote, "plain").rows.size() == 3);
  const auto three = write("sms_three", "ham\tok\nham\ta\tb\n");
  CHECK_THROWS_WITH(llmfs::read_sms_collection(three, "book"),
                    contains_text("sms_three:2:") && contains_text("found 3"));
  CHECK_THROWS_WITH(llmfs::read_sms_collection(three, "pandas"),
                    contains_text("unknown read mode"));
  CHECK_THROWS_WITH(llmfs::read_sms_collection(scratch() / "missing", "book"),
                    contains_text("missing"));
}

TEST_CASE("read_csv reads RFC 4180 quoting, BOM and CRLF", "[unit][data]") {
  const auto path = write("quoted.csv",
                          "\xEF\xBB\xBFLabel,Text\r\n"
                          "0,plain text\r\n"
                          "1,\"comma, \"\"quote\"\" and\r\nline break\"\r\n"
                          "\r\n"
                          "0,\"\"\r\n"
                          "1,mid \"quote\"");
  const auto t = llmfs::read_csv(path);
  CHECK(t.columns == std::vector<std::string>{"Label", "Text"});
  CHECK(t.rows == Rows{{"0", "plain text"},
                       {"1", "comma, \"quote\" and\r\nline break"},
                       {"0", ""},
                       {"1", "mid \"quote\""}});
  CHECK(t.lines == std::vector<int64_t>{2, 3, 6, 7});
  CHECK(t.source == path.string());

  const auto tsv = write("table.tsv", "a\tb,c\n1\t2,3\n");
  CHECK(llmfs::read_csv(tsv).rows == Rows{{"1", "2,3"}});
  CHECK(llmfs::read_csv(tsv, ',').columns == std::vector<std::string>{"a\tb", "c"});
}

TEST_CASE("read_csv errors name file and line", "[unit][data]") {
  const auto check = [](const std::string& name, const std::string& bytes, const std::string& where,
                        const std::string& what) {
    const auto path = write(name, bytes);
    CHECK_THROWS_AS(llmfs::read_csv(path), llmfs::Error);
    CHECK_THROWS_WITH(llmfs::read_csv(path), contains_text(where) && contains_text(what));
  };
  check("empty.csv", "", "empty.csv:1:", "expected a header row");
  check("blank.csv", "\xEF\xBB\xBF\n\n", "blank.csv:1:", "empty file");
  check("fields.csv", "Label,Text\n0,a\n1,b,c\n",
        "fields.csv:3:", "expected 2 comma-separated fields");
  check("few.csv", "Label,Text\n0,\"two\nlines\"\n1\n", "few.csv:4:", "found 1");
  check("open.csv", "Label,Text\n0,a\n1,\"never\nclosed\n", "open.csv:3:", "unterminated quote");
  check("after.csv", "Label,Text\n0,\"quoted\"tail\n", "after.csv:2:", "after the closing quote");
  check("utf8.csv", "Label,Text\n0,\"a\nb\"\n1,\xc3\x28\n", "utf8.csv:4:", "invalid UTF-8");
  check("dup.csv", "Text,Text\n", "dup.csv:1:", "duplicate column name 'Text'");
}

TEST_CASE("write_csv then read_csv gives the table back", "[unit][data]") {
  llmfs::TextTable t;
  t.columns = {"Label", "Text"};
  t.rows = {{"0", "plain"},
            {"1", "comma, here"},
            {"0", "\"quoted\" and \"\"doubled\"\""},
            {"1", "line\nbreak and\r\nCRLF and lone\rCR"},
            {"0", "운수 좋은 날, \"김첨지\"는\n웃었다"},
            {"1", ""},
            {"0", " spaces \t and tab "},
            {"1", "\""}};
  const auto path = scratch() / "round_trip.csv";
  llmfs::write_csv(path, t);
  CHECK(llmfs::read_file(path).starts_with("Label,Text\n0,plain\n1,\"comma, here\"\n"));
  const auto back = llmfs::read_csv(path);
  CHECK(back.columns == t.columns);
  CHECK(back.rows == t.rows);
  CHECK(back.lines == std::vector<int64_t>{2, 3, 4, 5, 8, 10, 11, 12});

  // One column: an empty field is written as "" so that it is not a blank line.
  llmfs::TextTable one;
  one.columns = {"Text"};
  one.rows = {{"a"}, {""}, {"b"}};
  llmfs::write_csv(path, one);
  CHECK(llmfs::read_file(path) == "Text\na\n\"\"\nb\n");
  CHECK(llmfs::read_csv(path).rows == one.rows);

  one.rows.push_back({"x", "y"});
  CHECK_THROWS_WITH(llmfs::write_csv(path, one), contains_text("row 3 has 2 fields"));
}
