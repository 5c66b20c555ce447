#pragma once

#include <iosfwd>

#include "llmfs/chat/chat_engine.h"
#include "llmfs/generate/generation_config.h"

namespace llmfs {

/// `ch07 chat`: a conversation in the terminal. Each line read is a user message; the answer is
/// streamed as it is generated, and the history goes with every later message (the oldest
/// turns left out once it no longer fits the context). Commands:
///   /reset                 forget the conversation
///   /quit (/exit, /bye)    end (so does the end of input)
///   /set temperature 0.7   also top_k N (0: off), top_p P (1: off), seed N, max_tokens N,
///                          system TEXT (a new conversation with that system prompt)
///   /show                  the settings
///   /help
/// interactive (a terminal): a banner and a ">>> " prompt; Ctrl-C ends the answer in progress.
/// Not interactive (a pipe): the answers one a line, for scripts (a newline inside an answer is
/// written as the two characters \n), and each command's note in [brackets]. Returns the exit
/// code.
int run_terminal_chat(ChatEngine& engine, GenerationConfig generation, std::istream& in,
                      std::ostream& out, bool interactive);

}  // namespace llmfs
