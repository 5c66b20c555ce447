#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "llmfs/config/config_node.h"
#include "llmfs/data/instruction_data.h"

namespace llmfs {

/// One message of a conversation: role "system", "user" or "assistant".
struct ChatMessage {
  std::string role;
  std::string content;
};

/// How a conversation becomes the text a model continues.
///   alpaca: the book's chapter 7 layout, one "### Instruction:" / "### Response:" pair a turn
///   phi3:   exercise 7.1's "<|user|>" / "<|assistant|>:" layout
///   plain:  "User: ..." / "Assistant: ..." lines, for models that were only pretrained
enum class ChatFormat { kAlpaca, kPhi3, kPlain };

std::string_view chat_format_name(ChatFormat format);
/// "alpaca" | "phi3" | "plain"; llmfs::Error for anything else.
ChatFormat parse_chat_format(std::string_view name);
/// The chat format of a prompt style a model was finetuned with.
ChatFormat chat_format_of(PromptStyle style);

/// The `chat:` section (ch07 chat and ch07 serve).
///
///   chat:
///     format: auto   # auto: the run's data.prompt_style (plain for a base model) | alpaca | phi3 | plain
///     system: ""     # the system prompt; "": the format's own (Alpaca: the book's preamble)
struct ChatConfig {
  std::string format = "auto";
  std::string system;
};
ChatConfig parse_chat_config(ConfigNode node, const ChatConfig& defaults = {});

/// The system prompt a format uses when the conversation has none: the book's Alpaca preamble,
/// nothing for the others.
std::string_view default_system_prompt(ChatFormat format);

/// The prompt of a conversation: the system prompt (the last "system" message, else
/// `system`, else the format's default), then every user and assistant message in the format's
/// layout, ending where the model's answer begins (after the open assistant header), or, when
/// the last message is the assistant's, inside it (the model continues that answer). For one
/// Alpaca user message this is exactly the book's training text up to the response:
/// format_input({instruction}) + "\n\n### Response:\n". llmfs::Error for an unknown role.
std::string render_chat(std::span<const ChatMessage> messages, ChatFormat format,
                        std::string_view system = {});

/// The markers that open a new turn: an answer ends before any of them (the model would go on
/// writing the user's next message).
std::vector<std::string> turn_markers(ChatFormat format);

}  // namespace llmfs
