#pragma once

#include <string_view>

namespace llmfs {

/// The chat page `ch07 serve` answers at /: one self-contained HTML file (no CDN, works offline)
/// that streams /api/chat replies, with a stop button and the sampling settings.
std::string_view chat_page_html();

}  // namespace llmfs
