#include "llmfs/chat/chat_format.h"

#include "catch.h"
#include "llmfs/core/error.h"

namespace {

llmfs::InstructionEntry entry(std::string instruction, std::string input = "") {
  llmfs::InstructionEntry e;
  e.instruction = std::move(instruction);
  e.input = std::move(input);
  return e;
}

}  // namespace

TEST_CASE("One user message renders as the book's training text up to the response", "[chat]") {
  const std::vector<llmfs::ChatMessage> one = {{"user", "Name a primary color."}};
  CHECK(llmfs::render_chat(one, llmfs::ChatFormat::kAlpaca) ==
        llmfs::format_input(entry("Name a primary color."), llmfs::PromptStyle::kAlpaca) +
            "\n\n### Response:\n");
  CHECK(llmfs::render_chat(one, llmfs::ChatFormat::kPhi3) ==
        llmfs::format_input(entry("Name a primary color."), llmfs::PromptStyle::kPhi3) +
            "\n<|assistant|>:\n");
  CHECK(llmfs::render_chat(one, llmfs::ChatFormat::kPlain) == "User: Name a primary color.\nAssistant:");
}

TEST_CASE("A multi-turn history renders turn by turn with the system prompt first", "[chat]") {
  const std::vector<llmfs::ChatMessage> history = {
      {"system", "Answer briefly."}, {"user", "Hi"}, {"assistant", "Hello."}, {"user", "2+2?"}};
  CHECK(llmfs::render_chat(history, llmfs::ChatFormat::kAlpaca) ==
        "Answer briefly.\n\n### Instruction:\nHi\n\n### Response:\nHello.\n\n"
        "### Instruction:\n2+2?\n\n### Response:\n");
  CHECK(llmfs::render_chat(history, llmfs::ChatFormat::kPhi3) ==
        "<|system|>\nAnswer briefly.\n<|user|>\nHi\n<|assistant|>:\nHello.\n<|user|>\n2+2?\n"
        "<|assistant|>:\n");
  CHECK(llmfs::render_chat(history, llmfs::ChatFormat::kPlain) ==
        "Answer briefly.\nUser: Hi\nAssistant: Hello.\nUser: 2+2?\nAssistant:");
  // The engine's default system prompt applies when the history has none.
  const std::vector<llmfs::ChatMessage> plain = {{"user", "Hi"}};
  CHECK(llmfs::render_chat(plain, llmfs::ChatFormat::kAlpaca, "Be kind.") ==
        "Be kind.\n\n### Instruction:\nHi\n\n### Response:\n");
  // A last assistant message is continued, not closed.
  const std::vector<llmfs::ChatMessage> prefill = {{"user", "Hi"}, {"assistant", "Well,"}};
  CHECK(llmfs::render_chat(prefill, llmfs::ChatFormat::kPlain) == "User: Hi\nAssistant: Well,");
}

TEST_CASE("Chat formats and roles are checked", "[chat]") {
  CHECK(llmfs::parse_chat_format("phi3") == llmfs::ChatFormat::kPhi3);
  CHECK_THROWS_WITH(llmfs::parse_chat_format("chatml"), llmfs::test::contains_text("chatml"));
  const std::vector<llmfs::ChatMessage> tool = {{"tool", "x"}};
  CHECK_THROWS_AS(llmfs::render_chat(tool, llmfs::ChatFormat::kAlpaca), llmfs::Error);
  CHECK(llmfs::turn_markers(llmfs::ChatFormat::kAlpaca).front() == "### Instruction:");
}
