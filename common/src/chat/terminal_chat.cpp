// `ch07 chat`: a streamed multi-turn conversation in the terminal or through a pipe.
#include "llmfs/chat/terminal_chat.h"

#include <fmt/format.h>
#include <fmt/ostream.h>
#include <torch/torch.h>

#include <istream>
#include <ostream>
#include <sstream>

#include "llmfs/train/interrupt.h"

namespace llmfs {

namespace {

constexpr std::string_view kHelp =
    "Commands: /reset, /quit, /set temperature|top_k|top_p|seed|max_tokens VALUE, "
    "/set system TEXT, /show, /help";

std::string settings(const GenerationConfig& g, const std::string& system) {
  return fmt::format("temperature {}, top_k {}, top_p {}, seed {}, max_tokens {}, system \"{}\"",
                     g.temperature, g.top_k ? std::to_string(*g.top_k) : "off",
                     g.top_p ? fmt::format("{}", *g.top_p) : "off", g.seed, g.max_new_tokens,
                     system);
}

// Applies "/set NAME VALUE"; the message to print (an error or the new setting).
std::string set_option(const std::string& args, GenerationConfig& g, std::string& system,
                       bool& reseed) {
  std::istringstream in(args);
  std::string name;
  in >> name;
  std::string value;
  std::getline(in >> std::ws, value);
  if (name == "system") {
    system = value;
    return fmt::format("system prompt set{}; new conversation", value.empty() ? " to the default" : "");
  }
  if (value.empty()) return fmt::format("/set {}: a value is missing ({})", name, kHelp);
  try {
    size_t used = 0;
    if (name == "temperature") {
      const double t = std::stod(value, &used);
      if (used != value.size() || !(t >= 0.0)) throw std::invalid_argument("");
      g.temperature = t;
    } else if (name == "top_p") {
      const double p = std::stod(value, &used);
      if (used != value.size() || !(p > 0.0 && p <= 1.0)) throw std::invalid_argument("");
      g.top_p = p < 1.0 ? std::optional<double>(p) : std::nullopt;
    } else if (name == "top_k" || name == "seed" || name == "max_tokens") {
      const int64_t n = std::stoll(value, &used);
      if (used != value.size()) throw std::invalid_argument("");
      if (name == "top_k") {
        if (n < 0) throw std::invalid_argument("");
        g.top_k = n > 0 ? std::optional<int64_t>(n) : std::nullopt;
      } else if (name == "seed") {
        g.seed = n;
        reseed = true;
      } else {
        if (n < 1) throw std::invalid_argument("");
        g.max_new_tokens = n;
      }
    } else {
      return fmt::format("/set: unknown setting '{}' ({})", name, kHelp);
    }
  } catch (const std::exception&) {
    return fmt::format("/set {}: '{}' is not a valid value", name, value);
  }
  return fmt::format("{} = {}", name, value);
}

}  // namespace

int run_terminal_chat(ChatEngine& engine, GenerationConfig generation, std::istream& in,
                      std::ostream& out, bool interactive) {
  std::string system = engine.system();
  std::vector<ChatMessage> history;
  bool reseed = true;  // the configured seed before the first answer: a reproducible session
  InterruptGuard interrupt;
  const auto note = [&](const std::string& text) {
    if (interactive) fmt::print(out, "{}\n", text);
    else fmt::print(out, "[{}]\n", text);
    out.flush();
  };
  if (interactive) {
    fmt::print(out, "Chatting with {} ({} format, context {} tokens). {}\n", engine.model().source,
               chat_format_name(engine.format()), engine.context_length(), kHelp);
  }
  std::string line;
  for (;;) {
    if (interactive) {
      out << ">>> " << std::flush;
    }
    if (!std::getline(in, line)) break;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    if (line[0] == '/') {
      const auto space = line.find(' ');
      const std::string command = line.substr(0, space);
      const std::string args = space == std::string::npos ? "" : line.substr(space + 1);
      if (command == "/quit" || command == "/exit" || command == "/bye") break;
      if (command == "/reset") {
        history.clear();
        engine.reset();
        note("conversation reset");
      } else if (command == "/set") {
        const std::string before = system;
        note(set_option(args, generation, system, reseed));
        if (system != before) history.clear();
      } else if (command == "/show") {
        note(settings(generation, system));
      } else if (command == "/help") {
        note(std::string(kHelp));
      } else {
        note(fmt::format("unknown command {} ({})", command, kHelp));
      }
      continue;
    }
    history.push_back({"user", line});
    std::vector<ChatMessage> messages;
    if (!system.empty()) messages.push_back({"system", system});
    messages.insert(messages.end(), history.begin(), history.end());
    try {
      const auto prompt = engine.chat_prompt(messages, generation.max_new_tokens);
      if (prompt.dropped_messages > 0) {
        // Left out for good: the history keeps what the model still sees.
        history.erase(history.begin(), history.begin() + prompt.dropped_messages);
        note(fmt::format("(the oldest {} messages no longer fit the context and were left out)",
                         prompt.dropped_messages));
      }
      CompletionRequest request;
      request.prompt_ids = prompt.ids;
      request.max_new_tokens = prompt.max_new_tokens;
      request.sampling = generation.sampling();
      if (reseed) request.seed = generation.seed;
      reseed = false;
      request.stop = turn_markers(engine.format());
      request.strip = true;
      interrupt.reset();
      const auto result = engine.complete(request, [&](std::string_view piece) {
        if (interactive) {
          out << piece;
        } else {  // one answer a line, for scripts: a newline inside it is written as \n
          for (const char c : piece) {
            if (c == '\n') out << "\\n";
            else out << c;
          }
        }
        out << std::flush;
        return !interrupt.requested();
      });
      out << "\n";
      if (interactive && result.finish_reason == "cancelled") out << "(stopped)\n";
      if (interactive) out << "\n";
      out.flush();
      history.push_back({"assistant", result.text});
    } catch (const Error& e) {
      history.pop_back();
      note(fmt::format("error: {}", e.what()));
    }
  }
  if (interactive) out << "\n";
  return 0;
}

}  // namespace llmfs
