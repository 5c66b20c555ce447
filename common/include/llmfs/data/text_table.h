#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace llmfs {

/// A small table of text read from a file: named columns and rows of UTF-8 strings, each row with
/// the file line it starts on, so later checks can say "file:line: ...". What pandas' read_csv
/// gives the book, with every value kept as text.
struct TextTable {
  std::string source;                          // the file, for messages
  std::vector<std::string> columns;            // column names
  std::vector<std::vector<std::string>> rows;  // each has columns.size() fields
  std::vector<int64_t> lines;                  // 1-based file line where each row starts

  /// The index of a column; llmfs::Error naming the source and listing the columns when missing.
  int64_t column(std::string_view name) const;
};

/// Reads the UCI SMS Spam Collection (BOOK.md §1.1): lines `label<TAB>text` without a header,
/// into columns {"Label", "Text"}. `mode`:
///   "book"   the book's pd.read_csv(sep="\t", header=None, names=["Label", "Text"]) with
///            pandas' default quoting (BOOK.md §1.4): a field that begins with a double quote runs
///            to the next quote that is not doubled (line breaks and tabs inside belong to it), the
///            quotes are dropped and what follows up to the next tab or line end is appended
///            literally. Blank lines are skipped, as pandas does. 5,572 rows for the UCI file.
///   "plain"  every physical line is one row, split at its first tab (5,574 rows).
/// A UTF-8 byte-order mark is skipped and CRLF accepted. llmfs::Error "file:line: ..." for a line
/// without a tab (or, in book mode, a row of more than two fields), invalid UTF-8, a quote still
/// open at the end of the file, or an unknown mode.
TextTable read_sms_collection(const std::filesystem::path& path, std::string_view mode = "book");

/// Reads a delimited text file with a header row (RFC 4180): fields separated by `delimiter`
/// (0: by extension, tab for .tsv and .tab, comma otherwise); a field that begins with a double
/// quote is quoted and may hold the delimiter, line breaks and doubled quotes ("" for "). A quote
/// inside an unquoted field is literal. A UTF-8 byte-order mark is skipped, CRLF and LF line ends
/// are accepted, blank lines are skipped (as pandas). llmfs::Error "file:line: ..." for an empty
/// file (no header), a row with the wrong number of fields, text after a closing quote, a quote
/// still open at the end of the file, or invalid UTF-8.
///
///   auto table = llmfs::read_csv("train.csv");
///   const auto text = table.column("Text");
TextTable read_csv(const std::filesystem::path& path, char delimiter = 0);

/// Writes a table as comma-separated text with a header row, like pandas' to_csv(index=None):
/// LF line ends, a field quoted (quotes doubled) only when it holds a comma, a quote, CR or LF
/// or begins with a byte-order mark (which read_csv would take for the file's), and a row of one
/// empty field written as "" so it is not a blank line. Written atomically
/// (write_file_atomic). read_csv of the file gives the same columns and rows. llmfs::Error when
/// a row has the wrong number of fields.
void write_csv(const std::filesystem::path& path, const TextTable& table);

}  // namespace llmfs
