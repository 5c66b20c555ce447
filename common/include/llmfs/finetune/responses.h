#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "llmfs/data/instruction_data.h"
#include "llmfs/eval/judge.h"
#include "llmfs/eval/text_metrics.h"
#include "llmfs/finetune/instruct_run.h"
#include "llmfs/generate/generation_config.h"

namespace llmfs {

/// The key the book stores a generated answer under (§7.7).
inline constexpr std::string_view kModelResponseKey = "model_response";

/// The book's extraction of an answer (§7.7): generated_text[len(prompt):] counted in code points
/// as Python does, every `response_marker(style)` deleted, surrounding whitespace stripped as
/// Python's str.strip() strips it (Unicode white space).
std::string extract_response(std::string_view generated_text, std::string_view prompt,
                             PromptStyle style = PromptStyle::kAlpaca);

/// Python's str.strip(): leading and trailing Unicode white space (str.isspace) removed.
std::string py_strip(std::string_view text);

/// Python's str.isspace for one code point: the Unicode White_Space characters and the ASCII
/// separators 0x1c-0x1f.
bool is_py_space(char32_t c);

/// One answer: the entry's prompt through the model (`config`: the book's greedy 256 tokens,
/// stopping at end-of-text), extracted as the book does. Also the number of new tokens.
struct GeneratedResponse {
  std::string response;
  int64_t new_tokens = 0;
};
GeneratedResponse generate_response(InstructModel& model, const InstructionEntry& entry,
                                    const GenerationConfig& config);

/// How generate_responses writes.
struct ResponsesOptions {
  std::filesystem::path file;  // the book's instruction-data-with-response.json (or .jsonl)
  InstructionDataConfig data;  // field names and the file format for writing
  /// true: entries the file already answers (the same instruction, input and output at the same
  /// position, with a model_response) are kept and not generated again.
  bool resume = true;
};

/// What generate_responses did.
struct ResponsesResult {
  std::vector<InstructionEntry> entries;  // all of them, each with its model_response
  int64_t kept = 0;                       // answers found in the file (resume)
  int64_t generated = 0;
  int64_t new_tokens = 0;
  double seconds = 0.0;  // generating
};

/// The book's loop over the test entries (§7.7): for each entry without an answer, generate it
/// and store it under "model_response"; after every entry the whole file is written again
/// atomically (the answers so far, then the entries not yet answered without one), so a run
/// stopped at any point keeps what it wrote and a later call continues there. Before generating
/// anything every prompt is checked: one that does not fit in the model's context fails with one
/// line naming the entry. A file of other entries (another split or dataset) is refused rather
/// than overwritten. on_entry sees each entry when its answer is there (generated or kept).
ResponsesResult generate_responses(
    InstructModel& model, std::vector<InstructionEntry> entries, const GenerationConfig& config,
    const ResponsesOptions& options,
    const std::function<void(size_t index, const InstructionEntry& entry, bool generated)>&
        on_entry = {});

/// The entries of a responses file, each with its model response; one-line errors naming the
/// file and entry for an entry without a "model_response" string (and read_instruction_entries'
/// errors).
struct ResponseEntry {
  InstructionEntry entry;
  std::string response;
};
std::vector<ResponseEntry> read_responses(const std::filesystem::path& file,
                                          const InstructionDataConfig& data = {});

/// The mean loss of the reference outputs under a model: every entry's training text (prompt +
/// response + end-of-text) with the prompt masked (exercise 7.2's collate), the next-token cross
/// entropy summed over the response tokens of all entries and divided by their number.
struct ReferenceLoss {
  int64_t entries = 0;
  int64_t tokens = 0;  // response tokens scored (the end-of-text of each entry included)
  double loss = 0.0;
  double perplexity() const;
};
ReferenceLoss reference_loss(InstructModel& model, const std::vector<InstructionEntry>& entries,
                             int64_t batch_size = 8, const std::string& device = "cpu");

/// What `ch07 evaluate` measured, for evaluation.json.
struct ResponseEvaluation {
  TextMetrics metrics;
  std::optional<ReferenceLoss> reference;
  std::optional<JudgeScores> judge;
  std::string judge_model, judge_url;
};

/// The judge's items for the responses (the prompt in the style the model was trained with).
std::vector<JudgeItem> judge_items(const std::vector<ResponseEntry>& responses, PromptStyle style);

/// Exact match, word F1 and ROUGE-L of the responses against the references.
TextMetrics response_metrics(const std::vector<ResponseEntry>& responses);

/// evaluation.json: the metrics, the reference loss and perplexity, the judge's scores per entry
/// (null where unparseable), the counts and the average.
std::string evaluation_json(const ResponseEvaluation& evaluation, size_t entries);

}  // namespace llmfs
