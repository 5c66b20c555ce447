// libFuzzer target: the table readers behind chapter 6's data (the SMS Spam Collection in the
// book's and the plain mode, CSV and TSV with a header). Properties: malformed files are an
// llmfs::Error; a table that reads has as many fields in every row as columns, valid UTF-8
// everywhere and rows in file order; written by write_csv, it reads back to the same table.
#include "fuzz_input_file.h"
#include "llmfs/core/error.h"
#include "llmfs/core/utf8.h"
#include "llmfs/data/text_table.h"

// Input: a mode byte (0 sms book, 1 sms plain, 2 csv, 3 tsv; the low two bits), the file.
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using llmfs::fuzz::broken;
  if (size == 0) return 0;
  static const llmfs::fuzz::InputFile sms(".sms"), csv(".csv"), tsv(".tsv"), again(".again.csv");
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  const int mode = data[0] & 3;
  llmfs::TextTable table;
  try {
    if (mode < 2) table = llmfs::read_sms_collection(sms.write(rest), mode == 0 ? "book" : "plain");
    else table = llmfs::read_csv((mode == 2 ? csv : tsv).write(rest));
  } catch (const llmfs::Error&) {
    return 0;
  }
  if (table.rows.size() != table.lines.size()) broken("a line for every row", size);
  for (size_t i = 0; i < table.rows.size(); ++i) {
    if (table.rows[i].size() != table.columns.size()) broken("as many fields as columns", size);
    if (i > 0 && table.lines[i] <= table.lines[i - 1]) broken("rows in file order", size);
    for (const auto& field : table.rows[i]) {
      if (llmfs::find_invalid_utf8(field) != std::string::npos) broken("fields are UTF-8", size);
    }
  }
  llmfs::write_csv(again.path(), table);
  const auto back = llmfs::read_csv(again.path());
  if (back.columns != table.columns || back.rows != table.rows) {
    broken("written by write_csv, read_csv gives the same table", size);
  }
  return 0;
}
