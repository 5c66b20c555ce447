#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "llmfs/config/config_node.h"

namespace llmfs {

/// The `judge:` section: an LLM that scores responses (book §7.8), reached over HTTP.
struct JudgeConfig {
  /// "ollama": Ollama's /api/chat (the book: streamed JSON lines, options seed / temperature /
  /// num_ctx); "openai": an OpenAI-compatible /v1/chat/completions (OpenAI, vLLM, llama.cpp,
  /// Ollama's own /v1).
  std::string api = "ollama";
  /// The endpoint; empty: http://localhost:11434/api/chat (ollama) or
  /// https://api.openai.com/v1/chat/completions (openai).
  std::string url;
  std::string model = "llama3";
  int64_t seed = 123;
  double temperature = 0.0;
  int64_t num_ctx = 2048;  // ollama only: the context window the server loads the model with
  /// openai: the environment variable holding the API key (none set: no Authorization header).
  std::string api_key_env = "OPENAI_API_KEY";
  /// Connection failures (refused, reset, timed out) are retried this many times, waiting
  /// backoff_s, 2·backoff_s, ... in between; HTTP errors and malformed replies are not.
  int64_t retries = 3;
  double backoff_s = 1.0;
  double timeout_s = 300.0;  // per request (connect 10 s)

  /// The URL used: `url`, or the api's default.
  std::string endpoint() const;
};

/// Reads a `judge:` section (every key optional).
JudgeConfig parse_judge_config(ConfigNode node, const JudgeConfig& defaults = {});

/// The book's scoring prompt (§7.8): one line from the entry's formatted prompt, its reference
/// output and the model's response.
std::string judge_prompt(const std::string& formatted_input, const std::string& output,
                         const std::string& model_response);

/// The score in a reply as the book reads it, Python's int(reply): surrounding whitespace, an
/// optional sign, decimal digits (single underscores between digits allowed). Anything else
/// (words, "85/100", "85.5", an empty reply) is nothing.
std::optional<int64_t> parse_score(const std::string& reply);

/// A client of one judge server. ask() sends one user message and returns the reply's text;
/// llmfs::Error, one line naming the URL, when no server answers (after the retries), on an HTTP
/// error status, or when the reply is not the API's JSON.
class Judge {
 public:
  explicit Judge(JudgeConfig config);
  std::string ask(const std::string& prompt) const;
  const JudgeConfig& config() const { return config_; }

 private:
  JudgeConfig config_;
  std::string api_key_;
};

/// One response to score.
struct JudgeItem {
  std::string formatted_input;  // the entry's prompt, as the model saw it
  std::string output;           // the reference
  std::string model_response;
};

/// Scores per item (nothing where the reply did not parse), the replies, and the book's summary.
struct JudgeScores {
  std::vector<std::optional<int64_t>> scores;
  std::vector<std::string> replies;
  int64_t parsed = 0;
  int64_t unparseable = 0;
  double average = 0.0;  // over the parsed scores (0 when none parsed)
};

/// Asks the judge about every item in order (the book's generate_model_scores); on_item sees
/// each reply as it arrives. Connection failures after the retries end it with llmfs::Error.
JudgeScores judge_responses(
    const Judge& judge, const std::vector<JudgeItem>& items,
    const std::function<void(size_t index, const std::string& reply,
                             const std::optional<int64_t>& score)>& on_item = {});

}  // namespace llmfs
