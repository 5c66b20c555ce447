// Conversations rendered in the prompt layouts of chapter 7 (Alpaca, Phi-3) and a plain one.
#include "llmfs/chat/chat_format.h"

#include <fmt/format.h>

#include "llmfs/core/error.h"

namespace llmfs {

namespace {

constexpr std::string_view kAlpacaPreamble =
    "Below is an instruction that describes a task. Write a response that appropriately "
    "completes the request.";

// The header of a turn and the text between turns, per format.
struct Layout {
  std::string_view user, assistant, system, separator;
};

Layout layout(ChatFormat format) {
  switch (format) {
    case ChatFormat::kAlpaca:
      return {"### Instruction:\n", "### Response:\n", "", "\n\n"};
    case ChatFormat::kPhi3:
      return {"<|user|>\n", "<|assistant|>:\n", "<|system|>\n", "\n"};
    case ChatFormat::kPlain:
      return {"User: ", "Assistant:", "", "\n"};
  }
  return {};
}

}  // namespace

std::string_view chat_format_name(ChatFormat format) {
  switch (format) {
    case ChatFormat::kAlpaca: return "alpaca";
    case ChatFormat::kPhi3: return "phi3";
    case ChatFormat::kPlain: return "plain";
  }
  return "alpaca";
}

ChatFormat parse_chat_format(std::string_view name) {
  if (name == "alpaca") return ChatFormat::kAlpaca;
  if (name == "phi3") return ChatFormat::kPhi3;
  if (name == "plain") return ChatFormat::kPlain;
  fail("unknown chat format '{}' (alpaca, phi3 or plain)", name);
}

ChatFormat chat_format_of(PromptStyle style) {
  return style == PromptStyle::kPhi3 ? ChatFormat::kPhi3 : ChatFormat::kAlpaca;
}

ChatConfig parse_chat_config(ConfigNode node, const ChatConfig& defaults) {
  ChatConfig c = defaults;
  node.read<std::string>("format", c.format, one_of({"auto", "alpaca", "phi3", "plain"}));
  node.read("system", c.system);
  return c;
}

std::string_view default_system_prompt(ChatFormat format) {
  return format == ChatFormat::kAlpaca ? kAlpacaPreamble : std::string_view{};
}

std::string render_chat(std::span<const ChatMessage> messages, ChatFormat format,
                        std::string_view system) {
  const Layout l = layout(format);
  std::string system_text(system.empty() ? default_system_prompt(format) : system);
  for (const auto& m : messages) {
    if (m.role == "system") system_text = m.content;
  }
  std::vector<std::string> blocks;
  if (!system_text.empty()) blocks.push_back(fmt::format("{}{}", l.system, system_text));
  bool open_answer = false;
  for (const auto& m : messages) {
    if (m.role == "system") continue;
    if (m.role == "user") {
      blocks.push_back(fmt::format("{}{}", l.user, m.content));
      open_answer = false;
    } else if (m.role == "assistant") {
      // Plain: "Assistant:" then the answer with its leading space, as the model writes it.
      const bool space = format == ChatFormat::kPlain && !m.content.empty();
      blocks.push_back(fmt::format("{}{}{}", l.assistant, space ? " " : "", m.content));
      open_answer = true;
    } else {
      fail("unknown message role '{}' (system, user or assistant)", m.role);
    }
  }
  if (!open_answer) blocks.emplace_back(l.assistant);
  std::string text;
  for (size_t i = 0; i < blocks.size(); ++i) {
    if (i > 0) text += l.separator;
    text += blocks[i];
  }
  return text;
}

std::vector<std::string> turn_markers(ChatFormat format) {
  switch (format) {
    case ChatFormat::kAlpaca:
      return {"### Instruction:", "### Response:", "### Input:"};
    case ChatFormat::kPhi3:
      return {"<|user|>", "<|assistant|>", "<|system|>", "<|end|>"};
    case ChatFormat::kPlain:
      return {"\nUser:", "\nAssistant:"};
  }
  return {};
}

}  // namespace llmfs
