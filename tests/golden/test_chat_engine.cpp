// The chat engine against chapter 7's generation: the same answers, a KV cache kept between
// turns that changes nothing but the work done, streaming in whole characters.
#include "llmfs/chat/chat_engine.h"

#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <future>
#include <nlohmann/json.hpp>
#include <thread>

#include "catch.h"
#include "llmfs/chat/server.h"
#include "llmfs/chat/text_stream.h"
#include "llmfs/core/utf8.h"
#include "llmfs/finetune/responses.h"
#include "llmfs/model/gpt_config.h"
#include "llmfs/tokenizer/bpe_tokenizer.h"
#include "llmfs/train/interrupt.h"

namespace {

llmfs::InstructModel small_model(int64_t context = 256, uint64_t seed = 123) {
  auto shape = llmfs::gpt2_config("124M");
  shape.context_length = context, shape.emb_dim = 64, shape.n_heads = 4, shape.n_layers = 2;
  shape.drop_rate = 0.0;
  torch::manual_seed(seed);
  llmfs::InstructModel m;
  m.model = llmfs::GPTModel(shape);
  m.model->eval();
  m.tokenizer = std::make_shared<llmfs::BPETokenizer>(llmfs::BPETokenizer::gpt2());
  m.finetuned = true;
  m.source = "random";
  return m;
}

}  // namespace

TEST_CASE("The engine answers an instruction exactly as ch07 generate does", "[golden][chat]") {
  auto model = small_model();
  llmfs::ChatEngine engine(model, llmfs::ChatFormat::kAlpaca);
  for (const double temperature : {0.0, 1.0}) {
    llmfs::GenerationConfig config;
    config.max_new_tokens = 30;
    config.temperature = temperature;
    config.top_k = 50;
    config.seed = 7;
    config.stop_at_eos = true;
    llmfs::InstructionEntry entry;
    entry.instruction = "Name three fruits.";
    const auto expected = llmfs::generate_response(model, entry, config);

    auto request = engine.book_request(entry.instruction);
    request.max_new_tokens = config.max_new_tokens;
    request.sampling = config.sampling();
    request.seed = config.seed;
    std::string pieces;
    const auto result = engine.complete(request, [&](std::string_view p) {
      pieces += p;
      return true;
    });
    INFO("temperature " << temperature);
    CHECK(result.text == expected.response);
    CHECK(pieces == result.text);
    CHECK(result.new_tokens == expected.new_tokens);
  }
}

TEST_CASE("A conversation's next turn reuses the cached prefix with the same answer",
          "[golden][chat]") {
  llmfs::ChatEngine warm(small_model(), llmfs::ChatFormat::kAlpaca);
  llmfs::ChatEngine cold(small_model(), llmfs::ChatFormat::kAlpaca);
  std::vector<llmfs::ChatMessage> history = {{"user", "Say something."}};
  const auto ask = [&](llmfs::ChatEngine& engine, bool fresh) {
    if (fresh) engine.reset();
    const auto prompt = engine.chat_prompt(history, 12);
    llmfs::CompletionRequest request;
    request.prompt_ids = prompt.ids;
    request.max_new_tokens = prompt.max_new_tokens;
    request.stop = llmfs::turn_markers(engine.format());
    request.strip = true;
    return engine.complete(request);
  };
  const auto first = ask(warm, false);
  CHECK(first.reused_tokens == 0);
  history.push_back({"assistant", first.text});
  history.push_back({"user", "And again?"});
  const auto second = ask(warm, false);
  const auto reference = ask(cold, true);
  CHECK(second.reused_tokens > 0);
  CHECK(reference.reused_tokens == 0);
  CHECK(second.text == reference.text);
  CHECK(second.new_tokens == reference.new_tokens);
}

TEST_CASE("The history is trimmed from the oldest turn to fit the context", "[golden][chat]") {
  llmfs::ChatEngine engine(small_model(96), llmfs::ChatFormat::kAlpaca);
  std::vector<llmfs::ChatMessage> history = {{"system", "Be brief."},
                                             {"user", "First question about the weather today?"},
                                             {"assistant", "It is sunny and warm outside."},
                                             {"user", "Second question: and tomorrow?"},
                                             {"assistant", "Rain is expected in the afternoon."},
                                             {"user", "Thanks!"}};
  const auto all = engine.chat_prompt(history, 1);
  CHECK(all.dropped_messages == 0);
  const auto trimmed = engine.chat_prompt(history, 60);
  CHECK(trimmed.dropped_messages >= 2);
  CHECK(trimmed.dropped_messages % 2 == 0);  // whole turns
  CHECK(static_cast<int64_t>(trimmed.ids.size()) + trimmed.max_new_tokens <= 96);
  CHECK(trimmed.text.rfind("Be brief.", 0) == 0);  // the system prompt stays
  CHECK(trimmed.text.find("Thanks!") != std::string::npos);  // so does the last message
  CHECK(trimmed.text.find("First question") == std::string::npos);

  // A message that alone fills the context is refused; one that leaves room caps the answer.
  std::string long_text;
  for (int i = 0; i < 120; ++i) long_text += "word ";
  const std::vector<llmfs::ChatMessage> huge = {{"user", long_text}};
  CHECK_THROWS_AS(engine.chat_prompt(huge, 10), llmfs::ContextOverflow);
  const std::vector<llmfs::ChatMessage> some = {{"user", "word word word"}};
  const auto capped = engine.chat_prompt(some, 1000);
  CHECK(static_cast<int64_t>(capped.ids.size()) + capped.max_new_tokens == 96);
}

TEST_CASE("Generation ends when the sink refuses more text", "[golden][chat]") {
  llmfs::ChatEngine engine(small_model(), llmfs::ChatFormat::kPlain);
  llmfs::CompletionRequest request;
  request.prompt_ids = engine.encode("Once upon a time");
  request.max_new_tokens = 50;
  request.stop_at_eos = false;
  int pieces = 0;
  const auto result = engine.complete(request, [&](std::string_view) { return ++pieces < 3; });
  CHECK(result.finish_reason == "cancelled");
  CHECK(result.new_tokens < 50);
  // The engine is usable afterwards, with the answer a fresh one gives.
  request.max_new_tokens = 5;
  request.seed = 1;
  const auto again = engine.complete(request);
  llmfs::ChatEngine fresh(small_model(), llmfs::ChatFormat::kPlain);
  CHECK(fresh.complete(request).text == again.text);
  CHECK(again.finish_reason == "length");
}

TEST_CASE("Korean streams in whole characters through byte-level tokens", "[golden][chat]") {
  const auto tokenizer = llmfs::BPETokenizer::gpt2();
  const std::string text = "안녕하세요, 만나서 반갑습니다! 😊 한국어 텍스트";
  const auto ids = tokenizer.encode(text);
  llmfs::TokenTextStream stream(tokenizer);
  std::string joined;
  int split_characters = 0;
  for (const auto id : ids) {
    const auto piece = stream.push(id);
    if (piece.empty()) ++split_characters;
    CHECK(llmfs::find_invalid_utf8(piece) == std::string::npos);
    CHECK(piece.find("\xEF\xBF\xBD") == std::string::npos);
    joined += piece;
  }
  joined += stream.finish();
  CHECK(split_characters > 0);  // GPT-2 does split these characters across tokens
  CHECK(joined == text);
}

TEST_CASE("A batched step computes each sequence's next logits as it alone would",
          "[golden][chat]") {
  auto m = small_model();
  auto& model = *m.model;
  const std::vector<std::vector<int64_t>> prompts = {{15496, 11, 995}, {464, 3290}, {40, 588, 262, 1110, 13}};
  std::vector<llmfs::KVCache> alone, together;
  std::vector<int64_t> next;
  torch::NoGradGuard no_grad;
  for (const auto& p : prompts) {  // prompts of different lengths: different positions
    for (auto* caches : {&alone, &together}) {
      caches->push_back(model.make_kv_cache());
      model.forward(torch::tensor(p).unsqueeze(0), &caches->back(), true);
    }
    next.push_back(p.back() + 1);
  }
  std::vector<llmfs::KVCache*> pointers;
  for (auto& c : together) pointers.push_back(&c);
  const auto batched = model.forward_step(torch::tensor(next), pointers);  // (3, V)
  REQUIRE(batched.sizes() == torch::IntArrayRef({3, model.config().vocab_size}));
  for (size_t i = 0; i < prompts.size(); ++i) {
    const auto single = model.forward(torch::tensor({next[i]}).view({1, 1}), &alone[i], true);
    INFO("sequence " << i);
    CHECK(together[i].position() == alone[i].position());
    CHECK(torch::allclose(batched[static_cast<int64_t>(i)], single.view({-1}), 1e-5, 1e-5));
  }
  // One row on caches that hold the same values: exactly the single-sequence forward.
  auto step_cache = model.make_kv_cache(), forward_cache = model.make_kv_cache();
  for (auto* cache : {&step_cache, &forward_cache}) {
    model.forward(torch::tensor(prompts[2]).unsqueeze(0), cache, true);
  }
  llmfs::KVCache* one_row[] = {&step_cache};
  const auto one = model.forward_step(torch::tensor({int64_t{42}}), one_row);
  const auto reference =
      model.forward(torch::tensor({int64_t{42}}).view({1, 1}), &forward_cache, true);
  CHECK(torch::equal(one, reference.view({1, -1})));
}

TEST_CASE("Generations running together answer as each does alone", "[golden][chat]") {
  llmfs::ChatEngine together(small_model(), llmfs::ChatFormat::kPlain, "", 3);
  llmfs::ChatEngine alone(small_model(), llmfs::ChatFormat::kPlain);
  std::vector<llmfs::CompletionRequest> requests(3);
  const char* texts[] = {"Once upon a time", "The quick brown fox jumps over", "Hello"};
  for (size_t i = 0; i < requests.size(); ++i) {
    requests[i].prompt_ids = together.encode(texts[i]);
    requests[i].max_new_tokens = 10 + 5 * static_cast<int64_t>(i);  // they end at different steps
    requests[i].stop_at_eos = false;
    if (i == 1) {  // sampled with its own seed: the others' draws do not disturb it
      requests[i].sampling.temperature = 1.0;
      requests[i].sampling.top_k = 20;
      requests[i].seed = 5;
    }
  }
  std::vector<std::string> streamed(3);
  std::vector<std::unique_ptr<llmfs::Generation>> running;
  for (size_t i = 0; i < requests.size(); ++i) {
    running.push_back(together.start(requests[i], [&streamed, i](std::string_view p) {
      streamed[i] += p;
      return true;
    }));
  }
  CHECK(together.running() == 3);
  CHECK_THROWS_AS(together.start(requests[0]), llmfs::Error);  // every slot is taken
  std::vector<llmfs::Generation*> pointers;
  for (auto& g : running) pointers.push_back(g.get());
  int steps = 0;
  while (std::any_of(running.begin(), running.end(), [](auto& g) { return !g->finished(); })) {
    together.step(pointers);
    ++steps;
  }
  CHECK(steps == 19);  // the longest asks 20 tokens: the first came from start
  CHECK(together.running() == 0);
  for (size_t i = 0; i < requests.size(); ++i) {
    const auto expected = alone.complete(requests[i]);
    INFO("request " << i);
    CHECK(running[i]->result().text == expected.text);
    CHECK(streamed[i] == expected.text);
    CHECK(running[i]->result().new_tokens == requests[i].max_new_tokens);
    CHECK(running[i]->result().finish_reason == "length");
  }
  // A cancelled generation ends at the next step and frees its slot; so does one dropped.
  auto cancelled = together.start(requests[0]);
  auto dropped = together.start(requests[2]);
  cancelled->cancel();
  llmfs::Generation* one[] = {cancelled.get()};
  together.step(one);
  CHECK(cancelled->finished());
  CHECK(cancelled->result().finish_reason == "cancelled");
  dropped.reset();
  CHECK(together.running() == 0);
}

TEST_CASE("serve() runs serve.parallel generations at once, with no chapter code around it",
          "[golden][chat][serve]") {
  // The engine is made with one sequence, as the library's callers make it; serve() gives it
  // serve.parallel (3). Four streaming requests of 200 tokens: the stats must show 3 generating
  // at the same moment (the fourth waits), and every answer completes.
  llmfs::ChatEngine engine(small_model(), llmfs::ChatFormat::kAlpaca);
  llmfs::ServeConfig config;
  config.port = 0;
  config.parallel = 3;
  llmfs::GenerationConfig defaults;
  std::promise<std::string> listening;
  std::thread server([&] {
    llmfs::serve(engine, defaults, config,
                 {.on_listening = [&](const std::string& url) { listening.set_value(url); }});
  });
  const std::string url = listening.get_future().get();
  const auto port = std::stoi(url.substr(url.rfind(':') + 1));
  CHECK(engine.sequences() == 3);

  std::atomic<int> completed{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < 4; ++i) {
    clients.emplace_back([&, i] {
      httplib::Client client("127.0.0.1", port);
      client.set_read_timeout(120, 0);
      const auto body = fmt::format(
          R"({{"model": "llmfs", "prompt": "Client {} asks.", "stream": true,
              "options": {{"temperature": 0, "num_predict": 200}}}})",
          i);
      const auto res = client.Post("/api/generate", body, "application/json");
      if (res && res->status == 200 && res->body.find("\"done\":true") != std::string::npos) {
        ++completed;
      }
    });
  }
  int most_active = 0;
  httplib::Client stats("127.0.0.1", port);
  for (int poll = 0; poll < 4000 && completed < 4; ++poll) {
    if (const auto res = stats.Get("/llmfs/stats"); res && res->status == 200) {
      const auto j = nlohmann::json::parse(res->body);
      most_active = std::max(most_active, j.at("active").get<int>());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  for (auto& c : clients) c.join();
  llmfs::InterruptGuard::simulate(SIGINT);  // what Ctrl-C does: serve() returns
  server.join();
  CHECK(completed == 4);
  CHECK(most_active == 3);
}
