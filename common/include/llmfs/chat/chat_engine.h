#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "llmfs/attention/kv_cache.h"
#include "llmfs/chat/chat_format.h"
#include "llmfs/core/error.h"
#include "llmfs/finetune/instruct_run.h"
#include "llmfs/generate/sampling.h"

namespace llmfs {

/// A prompt that does not fit in the model's context (the server's 422).
class ContextOverflow : public Error {
 public:
  using Error::Error;
};

/// One generation, resolved: the prompt's ids and how to answer.
struct CompletionRequest {
  std::vector<int64_t> prompt_ids;  // not empty, shorter than the context
  /// At most this many new tokens; capped so that prompt + answer fit in the context.
  int64_t max_new_tokens = 256;
  SamplingOptions sampling;
  /// torch::manual_seed before generating; nothing: the generator's stream continues.
  std::optional<int64_t> seed;
  bool stop_at_eos = true;           // <|endoftext|> ends the answer (not shown)
  std::vector<std::string> stop;     // the answer ends before any of these
  std::vector<std::string> remove;   // deleted wherever they occur (the book's response marker)
  bool strip = false;                // leading and trailing white space removed (the book's strip)
};

/// What a generation produced.
struct CompletionResult {
  std::string text;  // the pieces given to the sink, joined
  int64_t prompt_tokens = 0;
  int64_t reused_tokens = 0;  // prompt tokens found in the KV cache (not computed again)
  int64_t new_tokens = 0;
  std::string finish_reason;  // "stop" (end-of-text or a stop string), "length", "cancelled"
  double prompt_seconds = 0.0;    // reading the prompt (time to the first token)
  double generate_seconds = 0.0;  // the new tokens after the first
};

/// Receives each piece of text as it is generated (whole UTF-8 characters); returns false to
/// end the generation (a client that went away).
using TextSink = std::function<bool(std::string_view piece)>;

/// A conversation rendered for the model.
struct ChatPrompt {
  std::string text;
  std::vector<int64_t> ids;
  int64_t dropped_messages = 0;  // the oldest turns left out to fit the context
  int64_t max_new_tokens = 0;    // the request's, capped by the room left in the context
};

class ChatEngine;

/// A generation in progress: ChatEngine::start reads the prompt and gives the first token,
/// each ChatEngine::step one more (for every generation running at the same time), until
/// finished(). Belongs to the engine's thread.
class Generation {
 public:
  ~Generation();
  Generation(const Generation&) = delete;
  Generation& operator=(const Generation&) = delete;

  bool finished() const;
  /// Complete once finished(); the counts so far before.
  const CompletionResult& result() const;
  /// Ends the generation at the next step, finish_reason "cancelled" (a client that went away).
  void cancel();

 private:
  friend class ChatEngine;
  struct State;
  explicit Generation(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

/// A model that answers: the chat template, the history trimmed to the context, and generation
/// with KV caches that keep previous prompts and answers, so the next turn of a conversation
/// only computes its new tokens. Up to `sequences` generations run at once, their new tokens
/// computed in one batched forward pass per step (GPTModel::forward_step); each has its own
/// cache slot, the one sharing the longest prefix with its prompt. Preparing prompts (encode,
/// chat_prompt, book_request) is const and may run on any thread; start, step, complete and
/// reset run on one thread.
class ChatEngine {
 public:
  /// `format`: the chat layout; `system`: the default system prompt ("" : the format's);
  /// `sequences`: how many generations may run at once (cache slots).
  ChatEngine(InstructModel model, ChatFormat format, std::string system = {},
             int64_t sequences = 1);
  ~ChatEngine();
  ChatEngine(ChatEngine&&) noexcept;

  const InstructModel& model() const { return model_; }
  ChatFormat format() const { return format_; }
  const std::string& system() const { return system_; }
  int64_t context_length() const;
  /// How many generations may run at once.
  int64_t sequences() const { return static_cast<int64_t>(slots_.size()); }
  /// Sets how many generations may run at once (cache slots added or dropped, the newest
  /// first); llmfs::Error while any runs. serve() sizes its engine with serve.parallel.
  void set_sequences(int64_t sequences);
  /// The model's end-of-text id, if its tokenizer has one.
  std::optional<int64_t> eos_id() const { return eos_id_; }

  /// The ids of a text (<|endoftext|> allowed, as the book's text_to_token_ids).
  std::vector<int64_t> encode(std::string_view text) const;

  /// The conversation rendered (render_chat), its oldest user/assistant turns left out while
  /// the prompt and max_new_tokens do not fit in the context (the system prompt and the last
  /// message always stay), max_new_tokens capped at the room left. ContextOverflow when the
  /// remaining prompt alone fills the context; llmfs::Error for an empty conversation.
  ChatPrompt chat_prompt(const std::vector<ChatMessage>& messages, int64_t max_new_tokens) const;

  /// A single instruction as chapter 7 answers it (`ch07 generate`): the book's format_input
  /// without the response header, which the model writes itself and the book deletes, then
  /// strip. The returned request's ids, remove and strip are set; a plain-format engine
  /// continues the text as it is. ContextOverflow for a prompt that fills the context.
  CompletionRequest book_request(std::string_view instruction) const;

  /// Checks a prompt's length against the context: ContextOverflow naming both when it leaves
  /// no room for one token.
  void check_fits(const std::vector<int64_t>& ids) const;

  /// Starts a generation: takes a free cache slot (llmfs::Error when all `sequences` are
  /// running), reads the part of the prompt the slot does not hold yet and samples the first
  /// token. With a seed, the generation draws from its own generator seeded with it (on the
  /// CPU; elsewhere the global one is seeded), so generations running together do not change
  /// each other's draws. Pieces of text go to sink as soon as they are whole characters.
  std::unique_ptr<Generation> start(const CompletionRequest& request, TextSink sink = {});
  /// One token more for each unfinished generation of `running`, in one batched forward pass.
  void step(std::span<Generation* const> running);
  /// start, then step until finished: the whole answer.
  CompletionResult complete(const CompletionRequest& request, const TextSink& sink = {});
  /// Generations running (started, not finished).
  int64_t running() const;

  /// Forgets the cached conversations of the free slots.
  void reset();
  /// Gives back the cache memory of the free slots but the most recently used one (which keeps
  /// its conversation): for a server that became idle.
  void release_idle_memory();

 private:
  friend class Generation;
  struct Slot {
    KVCache cache;
    std::vector<int64_t> ids;  // the tokens whose keys and values the cache holds
    bool busy = false;
    uint64_t last_used = 0;
  };
  size_t take_slot(const std::vector<int64_t>& prompt);
  void accept(Generation::State& s, const torch::Tensor& logits);
  void end(Generation::State& s);
  void abandon(Generation::State& s);  // a generation dropped unfinished frees its slot

  InstructModel model_;
  ChatFormat format_;
  std::string system_;
  std::optional<int64_t> eos_id_;
  std::vector<Slot> slots_;
  uint64_t clock_ = 0;
};

/// The chat format of a config for a model: chat.format, or with "auto" the prompt style the
/// model was finetuned with (plain for a base model).
ChatFormat resolve_chat_format(const ChatConfig& config, const InstructModel& model);

}  // namespace llmfs
