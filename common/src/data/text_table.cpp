#include "llmfs/data/text_table.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <set>
#include <string>
#include <utility>

#include "llmfs/core/error.h"
#include "llmfs/core/file_io.h"
#include "llmfs/core/utf8.h"

namespace llmfs {

namespace {

constexpr std::string_view kBom = "\xEF\xBB\xBF";

/// One record of a delimited file: its fields and the 1-based line it starts on.
struct Record {
  std::vector<std::string> fields;
  int64_t line = 0;
};

/// What follows a closing quote before the next delimiter or line end.
enum class AfterQuote {
  kAppend,  // appended literally (pandas and Python's csv module)
  kError,   // an error (RFC 4180)
};

/// The file's text without a byte-order mark, checked to be UTF-8 ("file:line: ...").
std::string read_text(const std::filesystem::path& path, const std::string& source) {
  std::string text = read_file(path);
  if (std::string_view(text).starts_with(kBom)) text.erase(0, kBom.size());
  const std::size_t bad = find_invalid_utf8(text);
  if (bad != std::string::npos) {
    const auto line =
        1 + std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(bad), '\n');
    fail("{}:{}: invalid UTF-8 (byte {:#04x} at byte offset {} of the text)", source, line,
         static_cast<unsigned char>(text[bad]), bad);
  }
  return text;
}

/// Splits text into records with the quoting rule of read_csv / read_sms_collection's book mode.
/// Blank lines are skipped.
std::vector<Record> split_records(std::string_view text, char delimiter, AfterQuote after_quote,
                                  const std::string& source) {
  std::vector<Record> records;
  std::size_t pos = 0;
  int64_t line = 1;
  const std::size_t n = text.size();
  // A line end at pos: "\n" or "\r\n"; returns its length (0 when none).
  const auto line_end = [&](std::size_t at) -> std::size_t {
    if (at < n && text[at] == '\n') return 1;
    if (at + 1 < n && text[at] == '\r' && text[at + 1] == '\n') return 2;
    return 0;
  };
  while (pos < n) {
    if (const std::size_t blank = line_end(pos)) {  // a blank line
      pos += blank;
      ++line;
      continue;
    }
    Record record;
    record.line = line;
    while (true) {  // one field per iteration
      std::string field;
      if (pos < n && text[pos] == '"') {
        const int64_t open_line = line;
        ++pos;
        while (true) {
          const std::size_t quote = text.find('"', pos);
          if (quote == std::string_view::npos) {
            fail(
                "{}:{}: unterminated quote: the quoted field that opens on this line is not "
                "closed before the end of the file",
                source, open_line);
          }
          const auto part = text.substr(pos, quote - pos);
          line += std::count(part.begin(), part.end(), '\n');
          field.append(part);
          pos = quote + 1;
          if (pos < n && text[pos] == '"') {  // a doubled quote stands for one quote
            field.push_back('"');
            ++pos;
            continue;
          }
          break;
        }
        if (pos < n && text[pos] != delimiter && line_end(pos) == 0) {
          if (after_quote == AfterQuote::kError) {
            fail(
                "{}:{}: unexpected text after the closing quote of a field (a quote inside a "
                "quoted field must be doubled)",
                source, line);
          }
          // Literal up to the next delimiter or line end.
          while (pos < n && text[pos] != delimiter && line_end(pos) == 0)
            field.push_back(text[pos++]);
        }
      } else {
        while (pos < n && text[pos] != delimiter && line_end(pos) == 0)
          field.push_back(text[pos++]);
      }
      record.fields.push_back(std::move(field));
      if (pos < n && text[pos] == delimiter) {
        ++pos;
        continue;
      }
      if (const std::size_t end = line_end(pos)) {
        pos += end;
        ++line;
      }
      break;
    }
    records.push_back(std::move(record));
  }
  return records;
}

std::string join_names(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& name : names) {
    if (!out.empty()) out += ", ";
    out += "'" + name + "'";
  }
  return out;
}

char delimiter_for(const std::filesystem::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext == ".tsv" || ext == ".tab" ? '\t' : ',';
}

std::string delimiter_name(char delimiter) {
  if (delimiter == '\t') return "tab";
  if (delimiter == ',') return "comma";
  return fmt::format("'{}'", delimiter);
}

bool needs_quotes(std::string_view field) {
  return field.find_first_of(",\"\r\n") != std::string_view::npos;
}

void append_field(std::string& out, std::string_view field) {
  // A field that starts with a byte-order mark is quoted: at the start of the file an unquoted
  // one would be read as the file's mark and dropped.
  if (!needs_quotes(field) && !field.starts_with("\xEF\xBB\xBF")) {
    out.append(field);
    return;
  }
  out.push_back('"');
  for (const char c : field) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
}

void append_row(std::string& out, const std::vector<std::string>& fields) {
  if (fields.size() == 1 && fields[0].empty()) {  // not a blank line
    out += "\"\"\n";
    return;
  }
  for (std::size_t i = 0; i < fields.size(); ++i) {
    if (i > 0) out.push_back(',');
    append_field(out, fields[i]);
  }
  out.push_back('\n');
}

}  // namespace

int64_t TextTable::column(std::string_view name) const {
  const auto it = std::find(columns.begin(), columns.end(), name);
  if (it == columns.end()) {
    fail("{}: no column '{}' (columns: {})", source, name, join_names(columns));
  }
  return it - columns.begin();
}

TextTable read_sms_collection(const std::filesystem::path& path, std::string_view mode) {
  TextTable table;
  table.source = path.string();
  table.columns = {"Label", "Text"};
  if (mode != "book" && mode != "plain") {
    fail("{}: unknown read mode '{}' for the SMS collection (book or plain)", table.source, mode);
  }
  const std::string text = read_text(path, table.source);
  if (mode == "book") {
    for (auto& record : split_records(text, '\t', AfterQuote::kAppend, table.source)) {
      if (record.fields.size() != 2) {
        if (record.fields.size() == 1) {
          fail("{}:{}: no tab on this line (expected label<TAB>text)", table.source, record.line);
        }
        fail("{}:{}: expected 2 fields (label<TAB>text), found {}", table.source, record.line,
             record.fields.size());
      }
      table.rows.push_back(std::move(record.fields));
      table.lines.push_back(record.line);
    }
    return table;
  }
  std::size_t pos = 0;
  int64_t line = 1;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view content(text.data() + pos, end - pos);
    if (content.ends_with('\r')) content.remove_suffix(1);
    const std::size_t tab = content.find('\t');
    if (tab == std::string_view::npos) {
      fail("{}:{}: no tab on this line (expected label<TAB>text)", table.source, line);
    }
    table.rows.push_back(
        {std::string(content.substr(0, tab)), std::string(content.substr(tab + 1))});
    table.lines.push_back(line);
    pos = end + 1;
    ++line;
  }
  return table;
}

TextTable read_csv(const std::filesystem::path& path, char delimiter) {
  TextTable table;
  table.source = path.string();
  if (delimiter == 0) delimiter = delimiter_for(path);
  if (delimiter == '"' || delimiter == '\n' || delimiter == '\r') {
    fail("{}: a quote or line break cannot be the delimiter", table.source);
  }
  const std::string text = read_text(path, table.source);
  auto records = split_records(text, delimiter, AfterQuote::kError, table.source);
  if (records.empty()) {
    fail("{}:1: empty file: expected a header row of column names", table.source);
  }
  table.columns = std::move(records.front().fields);
  std::set<std::string> seen;
  for (const auto& name : table.columns) {
    if (!seen.insert(name).second) {
      fail("{}:{}: duplicate column name '{}' in the header", table.source, records.front().line,
           name);
    }
  }
  for (std::size_t i = 1; i < records.size(); ++i) {
    auto& record = records[i];
    if (record.fields.size() != table.columns.size()) {
      fail("{}:{}: expected {} {}-separated fields ({}), found {}", table.source, record.line,
           table.columns.size(), delimiter_name(delimiter), join_names(table.columns),
           record.fields.size());
    }
    table.rows.push_back(std::move(record.fields));
    table.lines.push_back(record.line);
  }
  return table;
}

void write_csv(const std::filesystem::path& path, const TextTable& table) {
  if (table.columns.empty()) fail("write_csv: {}: the table has no columns", path.string());
  std::string out;
  append_row(out, table.columns);
  for (std::size_t i = 0; i < table.rows.size(); ++i) {
    if (table.rows[i].size() != table.columns.size()) {
      fail("write_csv: {}: row {} has {} fields, the table has {} columns", path.string(), i,
           table.rows[i].size(), table.columns.size());
    }
    append_row(out, table.rows[i]);
  }
  write_file_atomic(path, out);
}

}  // namespace llmfs
