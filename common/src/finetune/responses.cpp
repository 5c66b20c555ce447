// Chapter 7's answers to the test set (§7.7) and their evaluation without a judge (§7.8's
// offline counterpart): extraction as the book does it, the responses file written after every
// entry and resumed, the loss of the reference outputs, evaluation.json.
#include "llmfs/finetune/responses.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <nlohmann/json.hpp>

#include "llmfs/core/device.h"
#include "llmfs/core/error.h"
#include "llmfs/core/file_io.h"
#include "llmfs/core/utf8.h"
#include "llmfs/generate/generate.h"
#include "llmfs/train/loss.h"

namespace llmfs {

namespace fs = std::filesystem;

namespace {

// The responses file's format by its extension (the data's field names, never its format).
InstructionDataConfig responses_format(InstructionDataConfig data) {
  data.format = "auto";
  return data;
}

bool same_entry(const InstructionEntry& a, const InstructionEntry& b) {
  return a.instruction == b.instruction && a.input == b.input && a.output == b.output;
}

}  // namespace

// Python's str.isspace for one code point (the Unicode White_Space characters Python strips,
// with the ASCII separators 0x1c-0x1f).
bool is_py_space(char32_t c) {
  if (c == U' ' || (c >= U'\t' && c <= U'\r') || (c >= 0x1c && c <= 0x1f)) return true;
  switch (c) {
    case 0x85: case 0xa0: case 0x1680: case 0x2028: case 0x2029: case 0x202f: case 0x205f:
    case 0x3000:
      return true;
    default:
      return c >= 0x2000 && c <= 0x200a;
  }
}

std::string py_strip(std::string_view text) {
  std::size_t begin = 0;
  std::size_t end = text.size();
  while (begin < end) {
    const auto step = utf8_step(text, begin);
    if (!step.valid || !is_py_space(step.code_point)) break;
    begin += step.length;
  }
  // Backwards: find the start of the last code point, test it, drop it.
  while (end > begin) {
    std::size_t start = end - 1;
    while (start > begin && (static_cast<unsigned char>(text[start]) & 0xc0) == 0x80) --start;
    const auto step = utf8_step(text, start);
    if (!step.valid || start + step.length != end || !is_py_space(step.code_point)) break;
    end = start;
  }
  return std::string(text.substr(begin, end - begin));
}

std::string extract_response(std::string_view generated_text, std::string_view prompt,
                             PromptStyle style) {
  const auto rest = utf8_slice(generated_text, utf8_length(prompt), utf8_length(generated_text));
  const auto marker = response_marker(style);
  std::string out;
  std::size_t pos = 0;
  for (auto at = rest.find(marker); at != std::string_view::npos; at = rest.find(marker, pos)) {
    out.append(rest.substr(pos, at - pos));
    pos = at + marker.size();
  }
  out.append(rest.substr(pos));
  return py_strip(out);
}

GeneratedResponse generate_response(InstructModel& model, const InstructionEntry& entry,
                                    const GenerationConfig& config) {
  const auto prompt = format_input(entry, model.style);
  const auto generated = generate_text(model.model, *model.tokenizer, prompt, config, model.source);
  return {extract_response(generated.text, prompt, model.style), generated.new_tokens};
}

ResponsesResult generate_responses(
    InstructModel& model, std::vector<InstructionEntry> entries, const GenerationConfig& config,
    const ResponsesOptions& options,
    const std::function<void(size_t index, const InstructionEntry& entry, bool generated)>&
        on_entry) {
  const auto data = responses_format(options.data);
  const std::string file = options.file.string();
  ResponsesResult result;
  std::vector<bool> answered(entries.size(), false);
  if (options.resume && fs::exists(options.file)) {
    const auto existing = read_instruction_entries(options.file, data);
    for (size_t i = 0; i < existing.size(); ++i) {
      if (i >= entries.size() || !same_entry(existing[i], entries[i])) {
        fail("{}: entry {} is not the entry {} to answer ({}); it holds responses to other data: "
             "move it away or set responses.file",
             file, i, i, i < entries.size() ? "another instruction, input or output" : "more entries");
      }
      if (const auto response = extra_string(existing[i], kModelResponseKey)) {
        set_extra_string(entries[i], kModelResponseKey, *response);
        answered[i] = true;
        ++result.kept;
      }
    }
  }
  // Every prompt must leave the model room to answer: checked before anything is generated.
  const int64_t context = model.model->config().context_length;
  for (const auto& entry : entries) {
    const auto ids = model.tokenizer->encode(format_input(entry, model.style),
                                             {.allowed_special = {std::string(kEndOfText)}});
    if (static_cast<int64_t>(ids.size()) >= context) {
      fail("{}: the prompt of entry {}{} has {} tokens; the model reads {} (no room to answer)",
           options.data.file, entry.index,
           entry.line > 0 ? fmt::format(" (line {})", entry.line) : std::string(), ids.size(),
           context);
    }
  }
  if (!options.file.parent_path().empty()) fs::create_directories(options.file.parent_path());
  const auto start = std::chrono::steady_clock::now();
  for (size_t i = 0; i < entries.size(); ++i) {
    if (answered[i]) {
      if (on_entry) on_entry(i, entries[i], false);
      continue;
    }
    const auto answer = generate_response(model, entries[i], config);
    set_extra_string(entries[i], kModelResponseKey, answer.response);
    answered[i] = true;
    ++result.generated;
    result.new_tokens += answer.new_tokens;
    write_instruction_entries(options.file, entries, data);
    if (on_entry) on_entry(i, entries[i], true);
  }
  if (result.generated == 0 && !fs::exists(options.file)) {
    write_instruction_entries(options.file, entries, data);
  }
  result.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  result.entries = std::move(entries);
  return result;
}

std::vector<ResponseEntry> read_responses(const fs::path& file, const InstructionDataConfig& data) {
  const auto entries = read_instruction_entries(file, responses_format(data));
  std::vector<ResponseEntry> out;
  for (const auto& entry : entries) {
    auto response = extra_string(entry, kModelResponseKey);
    if (!response) {
      fail("{}: entry {}{}: no \"{}\" string (`ch07 respond` writes them)", file.string(),
           entry.index, entry.line > 0 ? fmt::format(" (line {})", entry.line) : std::string(),
           kModelResponseKey);
    }
    out.push_back({entry, std::move(*response)});
  }
  return out;
}

double ReferenceLoss::perplexity() const { return std::exp(loss); }

ReferenceLoss reference_loss(InstructModel& model, const std::vector<InstructionEntry>& entries,
                             int64_t batch_size, const std::string& device_name) {
  if (batch_size < 1) fail("reference loss: batch size {} (at least 1)", batch_size);
  const InstructionDataset dataset(entries, *model.tokenizer, model.style);
  const auto device = resolve_device(device_name);
  model.model->to(device);
  model.model->eval();
  torch::NoGradGuard no_grad;
  const InstructionCollateOptions collate{.pad_token_id = model.pad_token_id,
                                          .ignore_index = kIgnoreIndex,
                                          .allowed_max_length = model.model->config().context_length,
                                          .mask_instruction = true};
  ReferenceLoss out;
  double total = 0.0;
  const auto& examples = dataset.examples();
  for (size_t i = 0; i < examples.size(); i += static_cast<size_t>(batch_size)) {
    const std::vector<InstructionExample> batch(
        examples.begin() + static_cast<std::ptrdiff_t>(i),
        examples.begin() + static_cast<std::ptrdiff_t>(
                               std::min(examples.size(), i + static_cast<size_t>(batch_size))));
    const auto b = instruction_collate(batch, collate);
    const auto logits = model.model->forward(b.input.to(device));
    const auto target = b.target.to(device);
    const auto loss = torch::nn::functional::cross_entropy(
        logits.flatten(0, -2), target.flatten(),
        torch::nn::functional::CrossEntropyFuncOptions().ignore_index(kIgnoreIndex).reduction(
            torch::kSum));
    total += loss.item<double>();
    out.tokens += target.ne(kIgnoreIndex).sum().item<int64_t>();
  }
  out.entries = static_cast<int64_t>(entries.size());
  out.loss = out.tokens > 0 ? total / static_cast<double>(out.tokens) : 0.0;
  return out;
}

std::vector<JudgeItem> judge_items(const std::vector<ResponseEntry>& responses, PromptStyle style) {
  std::vector<JudgeItem> items;
  for (const auto& r : responses) {
    items.push_back({format_input(r.entry, style), r.entry.output, r.response});
  }
  return items;
}

TextMetrics response_metrics(const std::vector<ResponseEntry>& responses) {
  std::vector<std::string> answers, references;
  for (const auto& r : responses) {
    answers.push_back(r.response);
    references.push_back(r.entry.output);
  }
  return text_metrics(answers, references);
}

std::string evaluation_json(const ResponseEvaluation& evaluation, size_t entries) {
  nlohmann::json j;
  j["entries"] = entries;
  j["exact_match"] = evaluation.metrics.exact_match;
  j["token_f1"] = evaluation.metrics.token_f1;
  j["rouge_l"] = evaluation.metrics.rouge_l;
  if (evaluation.reference) {
    j["reference_loss"] = evaluation.reference->loss;
    j["reference_perplexity"] = evaluation.reference->perplexity();
    j["reference_tokens"] = evaluation.reference->tokens;
  }
  if (evaluation.judge) {
    const auto& s = *evaluation.judge;
    nlohmann::json judge;
    judge["model"] = evaluation.judge_model;
    judge["url"] = evaluation.judge_url;
    judge["parsed"] = s.parsed;
    judge["unparseable"] = s.unparseable;
    if (s.parsed > 0) judge["average"] = s.average;
    auto scores = nlohmann::json::array();
    for (const auto& score : s.scores) {
      scores.push_back(score ? nlohmann::json(*score) : nlohmann::json(nullptr));
    }
    judge["scores"] = scores;
    j["judge"] = judge;
  }
  return j.dump(2) + "\n";
}

}  // namespace llmfs
