// Generation for conversations: templates, history trimmed to the context, a KV cache kept
// between turns, text streamed as it is generated.
#include "llmfs/chat/chat_engine.h"

#include <fmt/format.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>

#include "llmfs/chat/text_stream.h"

namespace llmfs {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

torch::Tensor id_tensor(std::span<const int64_t> ids) {
  return torch::tensor(std::vector<int64_t>(ids.begin(), ids.end()), torch::kLong).unsqueeze(0);
}

}  // namespace

ChatFormat resolve_chat_format(const ChatConfig& config, const InstructModel& model) {
  if (config.format != "auto") return parse_chat_format(config.format);
  return model.finetuned ? chat_format_of(model.style) : ChatFormat::kPlain;
}

// One generation's state between steps.
struct Generation::State {
  State(const Tokenizer& tokenizer, const CompletionRequest& r, TextSink s)
      : request(r),
        sink(std::move(s)),
        text(tokenizer),
        filter(request.stop, request.remove, request.strip),
        start(Clock::now()),
        first_token(start) {}

  CompletionRequest request;
  TextSink sink;
  std::optional<at::Generator> generator;
  size_t slot = 0;
  int64_t max_new = 0;
  int64_t next_id = -1;  // sampled, fed at the next step
  TokenTextStream text;
  StreamFilter filter;
  CompletionResult result;
  std::string finish = "length";
  bool cancel_requested = false;
  bool cancelled = false;
  bool finished = false;
  Clock::time_point start, first_token;
  ChatEngine* engine = nullptr;  // whose slot it holds

  // Text for the caller: kept in the result and given to the sink (a refusal cancels).
  void emit(const std::string& piece) {
    if (piece.empty() || cancelled) return;
    result.text += piece;
    if (sink && !sink(piece)) cancelled = true;
  }
};

Generation::Generation(std::unique_ptr<State> state) : state_(std::move(state)) {}
Generation::~Generation() {
  if (state_ && !state_->finished && state_->engine != nullptr) state_->engine->abandon(*state_);
}
bool Generation::finished() const { return state_->finished; }
const CompletionResult& Generation::result() const { return state_->result; }
void Generation::cancel() { state_->cancel_requested = true; }

ChatEngine::ChatEngine(InstructModel model, ChatFormat format, std::string system,
                       int64_t sequences)
    : model_(std::move(model)),
      format_(format),
      system_(std::move(system)),
      eos_id_(model_.tokenizer->special_token_id(kEndOfText)) {
  if (sequences < 1) fail("ChatEngine: sequences must be >= 1, got {}", sequences);
  model_.model->eval();
  for (int64_t i = 0; i < sequences; ++i) slots_.push_back({model_.model->make_kv_cache(), {}});
}

void ChatEngine::set_sequences(int64_t sequences) {
  if (sequences < 1) fail("ChatEngine: sequences must be >= 1, got {}", sequences);
  if (running() > 0) {
    fail("ChatEngine: the number of sequences changes only while none runs ({} running)",
         running());
  }
  if (static_cast<int64_t>(slots_.size()) > sequences) {
    slots_.erase(slots_.begin() + sequences, slots_.end());
  }
  while (static_cast<int64_t>(slots_.size()) < sequences) {
    slots_.push_back({model_.model->make_kv_cache(), {}});
  }
}

ChatEngine::~ChatEngine() = default;
ChatEngine::ChatEngine(ChatEngine&&) noexcept = default;

int64_t ChatEngine::context_length() const { return model_.model->config().context_length; }

std::vector<int64_t> ChatEngine::encode(std::string_view text) const {
  return model_.tokenizer->encode(text, {.allowed_special = {std::string(kEndOfText)}});
}

void ChatEngine::check_fits(const std::vector<int64_t>& ids) const {
  if (ids.empty()) fail("the prompt is empty");
  if (static_cast<int64_t>(ids.size()) >= context_length()) {
    throw ContextOverflow(fmt::format(
        "the prompt has {} tokens; the model reads {} (no room to answer)", ids.size(),
        context_length()));
  }
}

ChatPrompt ChatEngine::chat_prompt(const std::vector<ChatMessage>& messages,
                                   int64_t max_new_tokens) const {
  std::vector<ChatMessage> kept = messages;
  ChatPrompt out;
  for (;;) {
    out.text = render_chat(kept, format_, system_);
    out.ids = encode(out.text);
    const auto fits = static_cast<int64_t>(out.ids.size()) + max_new_tokens <= context_length();
    // The first user/assistant message, and how many conversational messages there are.
    auto first = std::find_if(kept.begin(), kept.end(),
                              [](const ChatMessage& m) { return m.role != "system"; });
    const auto turns = std::count_if(kept.begin(), kept.end(),
                                     [](const ChatMessage& m) { return m.role != "system"; });
    if (fits || turns <= 1) break;
    // Leave out the oldest turn: a user message and the assistant's answer after it.
    auto last = std::next(first);
    if (first->role == "user" && last != kept.end() && last->role == "assistant" &&
        std::next(last) != kept.end()) {
      ++last;
    }
    out.dropped_messages += std::distance(first, last);
    kept.erase(first, last);
  }
  if (std::none_of(messages.begin(), messages.end(),
                   [](const ChatMessage& m) { return m.role != "system"; })) {
    fail("the conversation has no user or assistant message");
  }
  check_fits(out.ids);
  out.max_new_tokens =
      std::min(max_new_tokens, context_length() - static_cast<int64_t>(out.ids.size()));
  return out;
}

CompletionRequest ChatEngine::book_request(std::string_view instruction) const {
  CompletionRequest request;
  if (format_ == ChatFormat::kPlain) {
    request.prompt_ids = encode(instruction);
  } else {
    const auto style = format_ == ChatFormat::kPhi3 ? PromptStyle::kPhi3 : PromptStyle::kAlpaca;
    InstructionEntry entry;
    entry.instruction = std::string(instruction);
    request.prompt_ids = encode(format_input(entry, style));
    request.remove = {std::string(response_marker(style))};
    request.strip = true;
  }
  check_fits(request.prompt_ids);
  return request;
}

int64_t ChatEngine::running() const {
  return std::count_if(slots_.begin(), slots_.end(), [](const Slot& s) { return s.busy; });
}

void ChatEngine::reset() {
  for (auto& slot : slots_) {
    if (slot.busy) continue;
    slot.cache.reset();
    slot.ids.clear();
  }
}

void ChatEngine::release_idle_memory() {
  const Slot* keep = nullptr;
  for (const auto& slot : slots_) {
    if (!slot.busy && (keep == nullptr || slot.last_used > keep->last_used)) keep = &slot;
  }
  for (auto& slot : slots_) {
    if (slot.busy || &slot == keep || slot.ids.empty()) continue;
    slot.cache = model_.model->make_kv_cache();
    slot.ids.clear();
  }
}

size_t ChatEngine::take_slot(const std::vector<int64_t>& prompt) {
  // The free slot sharing the longest prefix with the prompt; without one, the least recently
  // used (an empty slot first).
  std::optional<size_t> best;
  size_t best_common = 0;
  for (size_t i = 0; i < slots_.size(); ++i) {
    const Slot& slot = slots_[i];
    if (slot.busy) continue;
    const auto mismatch = std::mismatch(slot.ids.begin(), slot.ids.end(), prompt.begin(),
                                        prompt.end());
    const auto common = static_cast<size_t>(mismatch.first - slot.ids.begin());
    if (!best || common > best_common ||
        (common == best_common && slot.last_used < slots_[*best].last_used)) {
      best = i;
      best_common = common;
    }
  }
  if (!best) fail("ChatEngine: all {} sequences are running", slots_.size());
  return *best;
}

std::unique_ptr<Generation> ChatEngine::start(const CompletionRequest& request, TextSink sink) {
  const auto& prompt = request.prompt_ids;
  check_fits(prompt);
  check_sampling_options(request.sampling, "sampling");
  const size_t index = take_slot(prompt);
  Slot& slot = slots_[index];

  auto state = std::make_unique<Generation::State>(*model_.tokenizer, request, std::move(sink));
  Generation::State& s = *state;
  s.slot = index;
  s.engine = this;
  const int64_t room = context_length() - static_cast<int64_t>(prompt.size());
  s.max_new = std::min(request.max_new_tokens, room);
  s.result.prompt_tokens = static_cast<int64_t>(prompt.size());
  const auto device = model_.model->tok_emb->weight.device();
  if (request.seed) {
    if (device.is_cpu()) {
      s.generator = at::make_generator<at::CPUGeneratorImpl>(static_cast<uint64_t>(*request.seed));
    } else {
      torch::manual_seed(static_cast<uint64_t>(*request.seed));
    }
  }
  c10::InferenceMode inference;

  // Reuse the cached prefix; at least the prompt's last token is fed again for its logits.
  size_t common = 0;
  while (common < slot.ids.size() && common < prompt.size() && slot.ids[common] == prompt[common]) {
    ++common;
  }
  common = std::min(common, prompt.size() - 1);
  slot.cache.truncate(static_cast<int64_t>(common));
  slot.ids.resize(common);
  s.result.reused_tokens = static_cast<int64_t>(common);
  slot.busy = true;
  slot.last_used = ++clock_;

  auto generation = std::unique_ptr<Generation>(new Generation(std::move(state)));
  try {
    const auto fresh = std::span<const int64_t>(prompt).subspan(common);
    const auto logits =
        model_.model->forward(id_tensor(fresh).to(device), &slot.cache, /*last_only=*/true);
    slot.ids.insert(slot.ids.end(), fresh.begin(), fresh.end());
    if (s.max_new <= 0) {
      end(s);
    } else {
      accept(s, logits.select(1, logits.size(1) - 1));
    }
  } catch (...) {  // the slot's cache may be half written: forget it
    slot.cache.reset();
    slot.ids.clear();
    slot.busy = false;
    throw;
  }
  return generation;
}

void ChatEngine::accept(Generation::State& s, const torch::Tensor& logits) {
  const auto next = sample_next_token(logits, s.request.sampling, s.generator);
  const int64_t id = next.item<int64_t>();
  CompletionResult& result = s.result;
  if (result.new_tokens == 0) {
    s.first_token = Clock::now();
    result.prompt_seconds = seconds_since(s.start);
  }
  if (s.request.stop_at_eos && eos_id_ && id == *eos_id_) {
    s.finish = "stop";
    end(s);
    return;
  }
  ++result.new_tokens;
  s.emit(s.filter.push(s.text.push(id)));
  if (s.filter.stopped()) s.finish = "stop";
  if (s.filter.stopped() || s.cancelled || result.new_tokens >= s.max_new) {
    end(s);
    return;
  }
  s.next_id = id;
}

void ChatEngine::end(Generation::State& s) {
  if (!s.filter.stopped()) s.emit(s.filter.push(s.text.finish()));
  s.emit(s.filter.finish());
  s.result.finish_reason = s.cancelled ? "cancelled" : s.finish;
  if (s.result.new_tokens > 0) s.result.generate_seconds = seconds_since(s.first_token);
  s.finished = true;
  Slot& slot = slots_[s.slot];
  slot.busy = false;
  slot.last_used = ++clock_;
}

void ChatEngine::abandon(Generation::State& s) {
  Slot& slot = slots_[s.slot];
  slot.busy = false;
  slot.last_used = ++clock_;
  s.finished = true;
}

void ChatEngine::step(std::span<Generation* const> running) {
  std::vector<Generation::State*> states;
  for (Generation* g : running) {
    Generation::State& s = *g->state_;
    if (s.finished) continue;
    if (s.cancel_requested) {
      s.cancelled = true;
      end(s);
      continue;
    }
    states.push_back(&s);
  }
  if (states.empty()) return;
  c10::InferenceMode inference;
  std::vector<int64_t> ids;
  std::vector<KVCache*> caches;
  for (auto* s : states) {
    ids.push_back(s->next_id);
    caches.push_back(&slots_[s->slot].cache);
  }
  const auto device = model_.model->tok_emb->weight.device();
  const auto logits =
      model_.model->forward_step(torch::tensor(ids, torch::kLong).to(device), caches);  // (B, V)
  for (size_t i = 0; i < states.size(); ++i) {
    slots_[states[i]->slot].ids.push_back(states[i]->next_id);
    accept(*states[i], logits.narrow(0, static_cast<int64_t>(i), 1));
  }
}

CompletionResult ChatEngine::complete(const CompletionRequest& request, const TextSink& sink) {
  const auto generation = start(request, sink);
  Generation* running[] = {generation.get()};
  while (!generation->finished()) step(running);
  return generation->result();
}

}  // namespace llmfs
