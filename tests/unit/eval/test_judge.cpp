#include "llmfs/eval/judge.h"

#include <httplib.h>
#include <stdlib.h>

#include "catch.h"
#include "llmfs/core/error.h"
#include "stub_judge.h"

using llmfs::test::StubJudge;

namespace {

llmfs::JudgeConfig config_for(const std::string& url, const std::string& api = "ollama") {
  llmfs::JudgeConfig c;
  c.api = api;
  c.url = url;
  c.retries = 0;
  c.timeout_s = 10;
  return c;
}

// A port nobody listens on: bind one, then close it.
int closed_port() {
  httplib::Server s;
  return s.bind_to_any_port("127.0.0.1");
}

}  // namespace

TEST_CASE("judge_prompt is the book's scoring prompt", "[unit][eval]") {
  CHECK(llmfs::judge_prompt("P", "O", "R") ==
        "Given the input `P` and correct output `O`, score the model response `R` on a scale from "
        "0 to 100, where 100 is the best score. Respond with the integer number only.");
}

TEST_CASE("parse_score reads what Python's int() reads, nothing else", "[unit][eval]") {
  CHECK(llmfs::parse_score("85") == 85);
  CHECK(llmfs::parse_score(" 85\n") == 85);
  CHECK(llmfs::parse_score("+7") == 7);
  CHECK(llmfs::parse_score("-3") == -3);
  CHECK(llmfs::parse_score("1_0") == 10);
  CHECK(llmfs::parse_score("007") == 7);
  for (const char* bad : {"", " ", "85.", "85.5", "Score: 85", "85/100", "1__0", "_1", "1_", "+",
                          "eighty", "8 5"}) {
    INFO(bad);
    CHECK_FALSE(llmfs::parse_score(bad).has_value());
  }
}

TEST_CASE("the judge speaks Ollama's /api/chat as the book's query_model", "[unit][eval]") {
  StubJudge stub({{"85"}, {"Score: 40"}, {"95\n"}});
  const llmfs::Judge judge(config_for(stub.ollama_url()));
  std::vector<size_t> seen;
  const auto scores = llmfs::judge_responses(
      judge, {{"P1", "O1", "R1"}, {"P2", "O2", "R2"}, {"P3", "O3", "R3"}},
      [&](size_t i, const std::string&, const std::optional<int64_t>&) { seen.push_back(i); });
  CHECK(seen == std::vector<size_t>{0, 1, 2});
  REQUIRE(scores.scores.size() == 3);
  CHECK(scores.scores[0] == 85);
  CHECK_FALSE(scores.scores[1].has_value());
  CHECK(scores.scores[2] == 95);
  CHECK(scores.replies[1] == "Score: 40");  // the streamed pieces joined
  CHECK(scores.parsed == 2);
  CHECK(scores.unparseable == 1);
  CHECK(scores.average == Approx(90.0));
  const auto requests = stub.requests();
  REQUIRE(requests.size() == 3);
  const auto& r = requests[0];
  CHECK(r["model"] == "llama3");
  CHECK(r["messages"].size() == 1);
  CHECK(r["messages"][0]["role"] == "user");
  CHECK(r["messages"][0]["content"] == llmfs::judge_prompt("P1", "O1", "R1"));
  CHECK(r["options"]["seed"] == 123);
  CHECK(r["options"]["temperature"] == 0.0);
  CHECK(r["options"]["num_ctx"] == 2048);
  CHECK_FALSE(r.contains("stream"));
}

TEST_CASE("the judge speaks OpenAI's chat completions with the key from the environment",
          "[unit][eval]") {
  StubJudge stub({{"72"}});
  ::setenv("LLMFS_TEST_JUDGE_KEY", "sk-test", 1);
  auto c = config_for(stub.openai_url(), "openai");
  c.api_key_env = "LLMFS_TEST_JUDGE_KEY";
  c.model = "gpt-4o-mini";
  const llmfs::Judge judge(c);
  CHECK(judge.ask("hello") == "72");
  ::unsetenv("LLMFS_TEST_JUDGE_KEY");
  CHECK(stub.authorizations().at(0) == "Bearer sk-test");
  const auto r = stub.requests().at(0);
  CHECK(r["model"] == "gpt-4o-mini");
  CHECK(r["seed"] == 123);
  CHECK(r["temperature"] == 0.0);
  CHECK(r["messages"][0]["content"] == "hello");
}

TEST_CASE("a judge that refuses, errs or talks garbage fails with one line naming the URL",
          "[unit][eval]") {
  using llmfs::test::contains_text;
  const auto refused = "http://127.0.0.1:" + std::to_string(closed_port()) + "/api/chat";
  auto c = config_for(refused);
  c.retries = 2;
  c.backoff_s = 0.01;
  CHECK_THROWS_WITH(llmfs::Judge(c).ask("x"),
                    contains_text("judge " + refused + ": no answer after 3 attempt(s)"));
  CHECK_THROWS_WITH(llmfs::Judge(c).ask("x"), contains_text("ollama serve"));

  StubJudge garbage({{"", 200, "<html>not json</html>"}});
  CHECK_THROWS_WITH(llmfs::Judge(config_for(garbage.ollama_url())).ask("x"),
                    contains_text("is not Ollama /api/chat JSON (line 1): <html>not json</html>"));
  StubJudge wrong_shape({{"", 200, "{\"answer\": 5}"}});
  CHECK_THROWS_WITH(llmfs::Judge(config_for(wrong_shape.openai_url(), "openai")).ask("x"),
                    contains_text("no choices[0].message.content"));
  StubJudge http_error({{"", 404, "{\"error\": \"model 'llama3' not found\"}"}});
  CHECK_THROWS_WITH(llmfs::Judge(config_for(http_error.ollama_url())).ask("x"),
                    contains_text("HTTP status 404"));
  StubJudge server_error({{"", 200, "{\"error\": \"out of memory\"}\n"}});
  CHECK_THROWS_WITH(llmfs::Judge(config_for(server_error.ollama_url())).ask("x"),
                    contains_text("the server says: out of memory"));
  CHECK_THROWS_WITH(llmfs::Judge(config_for("localhost:11434")),
                    contains_text("malformed URL 'localhost:11434'"));
}

TEST_CASE("the judge config names its keys", "[unit][eval]") {
  auto doc = llmfs::ConfigDocument::from_string("judge:\n  api: claude\n  url: ftp://x\n", "t.yaml");
  llmfs::parse_judge_config(doc.root().child("judge"));
  try {
    doc.finish();
    FAIL("no error");
  } catch (const llmfs::ConfigError& e) {
    const std::string what = e.what();
    CHECK(what.find("judge.api") != std::string::npos);
    CHECK(what.find("judge.url") != std::string::npos);
  }
  CHECK(llmfs::JudgeConfig{}.endpoint() == "http://localhost:11434/api/chat");
  llmfs::JudgeConfig openai;
  openai.api = "openai";
  CHECK(openai.endpoint() == "https://api.openai.com/v1/chat/completions");
}
