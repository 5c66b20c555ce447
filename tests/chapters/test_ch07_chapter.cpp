// `ch07` run as a user runs it, on a small random GPT and a member's own instruction file (some
// of it Korean) so that it fits in test time: finetuning, responses (written, then resumed),
// offline evaluation, the LLM judge against a stub Ollama server on a free local port, and bad
// input that fails with one line and leaves files alone. Needs the data files (LLMFS_DATA_DIR).
#include <fmt/format.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <sys/wait.h>
#include <vector>

#include "catch.h"
#include "run_chapter.h"
#include "llmfs/checkpoint/checkpoint.h"
#include "llmfs/checkpoint/pth.h"
#include "llmfs/core/file_io.h"
#include "llmfs_test_paths.h"
#include "stub_judge.h"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

using Result = llmfs::test::ChapterRun;

Result ch07(const std::string& args) { return llmfs::test::run_chapter("ch07", args); }

fs::path fresh_dir(const std::string& name) { return llmfs::test::fresh_dir("ch07", name); }

int count(const std::string& text, const std::string& what) {
  int n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// A member's own data: 40 entries, every third with an input, Korean outputs among them.
// The book's split: 34 training, 4 test (entries 34-37), 2 validation entries.
json own_entries() {
  const std::vector<std::pair<std::string, std::string>> words = {
      {"water", "물"}, {"fire", "불"}, {"tree", "나무"}, {"house", "집"}, {"book", "책"}};
  json entries = json::array();
  for (int i = 0; i < 40; ++i) {
    const auto& [en, ko] = words[i % words.size()];
    json e;
    e["instruction"] = i % 2 == 0 ? "Translate the word into Korean." : "Repeat the word.";
    e["input"] = i % 3 == 0 ? en : "";
    e["output"] = i % 2 == 0 ? ko : fmt::format("{} {}", en, i);
    entries.push_back(e);
  }
  return entries;
}

fs::path write_json(const fs::path& path, const json& value) {
  llmfs::write_file_atomic(path, value.dump(2));
  return path;
}

// A small random GPT on the data file given.
std::string small(const fs::path& data) {
  return fmt::format(
      "--log-level=warn base_model=random model.emb_dim=32 model.n_heads=4 model.n_layers=2 "
      "model.context_length=128 train.device=cpu generate.device=cpu data.file={}",
      data.string());
}

}  // namespace

TEST_CASE("ch07 finetunes, answers, resumes and evaluates (offline and with a judge)",
          "[chapter][ch07]") {
  const auto dir = fresh_dir("run");
  const auto data = write_json(dir / "own.json", own_entries());
  const auto run = dir / "run";
  auto r = ch07(fmt::format(
      "finetune {} train.num_epochs=2 train.batch_size=4 train.eval_freq=4 train.eval_iter=1 "
      "train.learning_rate=1e-3 sample_tokens=5 train.output_dir={}",
      small(data), run.string()));
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  CHECK(count(r.out, "Training loss: ") == 1);  // the losses before finetuning (7.6)
  CHECK(count(r.out, "Ep 1 (Step 000000): Train loss") == 1);
  CHECK(count(r.out, "Ep 2 (Step 000012): Train loss") == 1);  // 8 steps per epoch, every 4th
  // The sample after each epoch: validation entry 0's prompt (entry 38), newlines as spaces.
  CHECK(count(r.out, "Below is an instruction that describes a task. Write a response that "
                     "appropriately completes the request.  ### Instruction: Translate the word "
                     "into Korean.") == 2);
  for (const char* file : {"config.yaml", "metrics.jsonl", "train.json", "validation.json",
                           "test.json"}) {
    INFO(file);
    CHECK(fs::exists(run / file));
  }
  CHECK(json::parse(llmfs::read_file(run / "test.json")).size() == 4);
  r = ch07(fmt::format("prepare {} --output {}", small(data), (dir / "split").string()));
  INFO(r.out);
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("train.json (34 entries), validation.json (2), test.json (4)") !=
        std::string::npos);
  CHECK(llmfs::read_file(dir / "split" / "test.json") == llmfs::read_file(run / "test.json"));
  CHECK(json::parse(llmfs::read_file(run / "test.json"))[0]["output"] == "책");  // entry 34

  // One instruction.
  r = ch07(fmt::format("generate --checkpoint {} {} --instruction \"Repeat the word.\" "
                       "--input water --max-new-tokens 5",
                       run.string(), small(data)));
  INFO(r.out);
  CHECK(r.exit_code == 0);
  // --prompt is the instruction (what a member types first), not a flag that does nothing.
  const auto as_prompt = ch07(fmt::format("generate --checkpoint {} {} --prompt \"Repeat the "
                                          "word.\" --input water --max-new-tokens 5",
                                          run.string(), small(data)));
  CHECK(as_prompt.exit_code == 0);
  CHECK(as_prompt.out == r.out);

  // Responses to the test entries, written into the run folder.
  const auto responses = run / "instruction-data-with-response.json";
  r = ch07(fmt::format("respond --checkpoint {} {} generate.max_new_tokens=6 train.output_dir={}",
                       run.string(), small(data), run.string()));
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("4 responses written") != std::string::npos);
  CHECK(count(r.out, "Model response:\n>> ") == 3);  // the book prints the first three
  const auto answered = json::parse(llmfs::read_file(responses));
  REQUIRE(answered.size() == 4);
  for (const auto& e : answered) {
    CHECK(e.size() == 4);  // instruction, input, output, model_response (the book's layout)
    CHECK(e["model_response"].is_string());
  }
  const auto written = llmfs::read_file(responses);
  CHECK(written.find("    {\n        \"instruction\"") != std::string::npos);  // indent=4
  CHECK(written.find("\\ucc45") != std::string::npos);  // 책, escaped as json.dump does

  // Again: every answer is there, nothing is generated, the file is the same.
  r = ch07(fmt::format("respond {} generate.max_new_tokens=6 train.output_dir={}", small(data),
                       run.string()));
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("(0 generated") != std::string::npos);
  CHECK(llmfs::read_file(responses) == written);

  // Offline: exact match, F1, ROUGE-L and the references' loss under the run's model.
  r = ch07(fmt::format("evaluate {} train.output_dir={}", small(data), run.string()));
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("Exact match: ") != std::string::npos);
  CHECK(r.out.find("ROUGE-L: ") != std::string::npos);
  CHECK(r.out.find("Reference loss: ") != std::string::npos);
  auto evaluation = json::parse(llmfs::read_file(run / "evaluation.json"));
  CHECK(evaluation["entries"] == 4);
  CHECK(evaluation["reference_loss"].get<double>() > 0.0);
  CHECK(evaluation["reference_perplexity"].get<double>() ==
        Approx(std::exp(evaluation["reference_loss"].get<double>())));
  CHECK_FALSE(evaluation.contains("judge"));

  // The judge: a stub Ollama answering two scores and two replies the book cannot parse.
  llmfs::test::StubJudge stub({{"85"}, {"not a number"}, {" 40\n"}, {"85/100"}});
  r = ch07(fmt::format("evaluate --responses {} --judge-url {} {} train.output_dir={}",
                       responses.string(), stub.ollama_url(), small(data), run.string()));
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("Could not convert score: not a number") != std::string::npos);
  CHECK(r.out.find("Could not convert score: 85/100") != std::string::npos);
  CHECK(r.out.find("Number of scores: 2 of 4\n") != std::string::npos);
  CHECK(r.out.find("Average score: 62.50\n") != std::string::npos);
  evaluation = json::parse(llmfs::read_file(run / "evaluation.json"));
  CHECK(evaluation["judge"]["parsed"] == 2);
  CHECK(evaluation["judge"]["unparseable"] == 2);
  CHECK(evaluation["judge"]["scores"] == json::parse("[85, null, 40, null]"));
  const auto requests = stub.requests();
  REQUIRE(requests.size() == 4);
  CHECK(requests[0]["model"] == "llama3");
  CHECK(requests[0]["options"]["seed"] == 123);
  CHECK(requests[0]["options"]["num_ctx"] == 2048);
  const std::string prompt = requests[0]["messages"][0]["content"];
  CHECK(prompt.find("and correct output `책`, score the model response `") != std::string::npos);
}

TEST_CASE("ch07 refuses bad input with one line and leaves files alone", "[chapter][ch07]") {
  const auto dir = fresh_dir("bad");
  auto entries = own_entries();
  const auto good = write_json(dir / "own.json", entries);
  const auto run = dir / "run";

  // A missing field, a field of the wrong type, no entries: the file and the entry, no run.
  auto missing = entries;
  missing[3].erase("output");
  auto r = ch07(fmt::format("finetune {} train.output_dir={}",
                            small(write_json(dir / "missing.json", missing)), run.string()));
  CHECK(r.exit_code == 1);
  CHECK(count(r.out, "\n") == 1);
  CHECK(r.out.find("missing.json: entry 3") != std::string::npos);
  CHECK(r.out.find("output") != std::string::npos);
  auto typed = entries;
  typed[5]["input"] = 5;
  r = ch07(fmt::format("finetune {} train.output_dir={}",
                       small(write_json(dir / "typed.json", typed)), run.string()));
  CHECK(r.exit_code == 1);
  CHECK(r.out.find("typed.json: entry 5") != std::string::npos);
  CHECK(r.out.find("input") != std::string::npos);
  r = ch07(fmt::format("finetune {} train.output_dir={}",
                       small(write_json(dir / "empty.json", json::array())), run.string()));
  CHECK(r.exit_code == 1);
  CHECK(r.out.find("empty.json") != std::string::npos);
  CHECK_FALSE(fs::exists(run));
  // A config value the loss cannot honour names its key.
  r = ch07(fmt::format("finetune {} data.ignore_index=-1", small(good)));
  CHECK(r.exit_code == 2);
  CHECK(r.out.find("data.ignore_index") != std::string::npos);

  // A run to answer with, and a responses file with two answers already.
  r = ch07(fmt::format("finetune {} initial_eval=false sample_tokens=0 train.max_steps=1 "
                       "train.num_epochs=1 train.output_dir={}",
                       small(good), run.string()));
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  auto partial = json::array();
  for (int i = 34; i < 38; ++i) {
    auto e = entries[i];
    if (i < 36) e["model_response"] = "kept";
    partial.push_back(e);
  }
  const auto responses = write_json(run / "instruction-data-with-response.json", partial);
  const auto before = llmfs::read_file(responses);

  // A test prompt longer than the model's 128 positions: refused before anything is generated.
  auto long_prompt = entries;
  std::string words;
  for (int i = 0; i < 150; ++i) words += "very ";
  long_prompt[37]["instruction"] = "Describe a " + words + "long day.";
  partial[3]["instruction"] = long_prompt[37]["instruction"];
  write_json(responses, partial);
  const auto before_long = llmfs::read_file(responses);
  r = ch07(fmt::format("respond {} train.output_dir={}",
                       small(write_json(dir / "long.json", long_prompt)), run.string()));
  CHECK(r.exit_code == 1);
  CHECK(count(r.out, "\n") == 1);
  CHECK(r.out.find("long.json: the prompt of entry 37") != std::string::npos);
  CHECK(llmfs::read_file(responses) == before_long);
  write_json(responses, json::parse(before));

  // Responses to other data are not overwritten.
  auto other = entries;
  other[34]["output"] = "something else";
  r = ch07(fmt::format("respond {} train.output_dir={}",
                       small(write_json(dir / "other.json", other)), run.string()));
  CHECK(r.exit_code == 1);
  CHECK(r.out.find("instruction-data-with-response.json: entry 0") != std::string::npos);
  CHECK(llmfs::read_file(responses) == before);

  // Continuing: the two answers kept, two generated.
  r = ch07(fmt::format("respond {} generate.max_new_tokens=3 train.output_dir={}", small(good),
                       run.string()));
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("4 responses written") != std::string::npos);
  CHECK(r.out.find("(2 generated") != std::string::npos);
  const auto continued = json::parse(llmfs::read_file(responses));
  CHECK(continued[0]["model_response"] == "kept");
  CHECK(continued[1]["model_response"] == "kept");
  CHECK(continued[3].contains("model_response"));
  const auto answered = llmfs::read_file(responses);

  // A judge that refuses connections, and one that answers garbage: one line naming the URL;
  // the responses stay, no evaluation is written.
  fs::remove(run / "evaluation.json");
  const std::string refused = "http://127.0.0.1:9/api/chat";
  r = ch07(fmt::format("evaluate --judge-url {} judge.retries=1 judge.backoff_s=0.01 {} "
                       "train.output_dir={}",
                       refused, small(good), run.string()));
  CHECK(r.exit_code == 1);
  // The metrics first, then the error: one last line naming the URL.
  const auto last_line = [](const std::string& out) {
    return out.substr(out.rfind('\n', out.size() - 2) + 1);
  };
  CHECK(last_line(r.out).rfind("error: ", 0) == 0);
  CHECK(last_line(r.out).find(refused) != std::string::npos);
  CHECK(llmfs::read_file(responses) == answered);
  CHECK_FALSE(fs::exists(run / "evaluation.json"));
  llmfs::test::StubJudge garbage({{"", 200, "<html>not json</html>"}});
  r = ch07(fmt::format("evaluate --judge-url {} {} train.output_dir={}", garbage.ollama_url(),
                       small(good), run.string()));
  CHECK(r.exit_code == 1);
  CHECK(last_line(r.out).rfind("error: ", 0) == 0);
  CHECK(last_line(r.out).find(garbage.ollama_url()) != std::string::npos);
  CHECK(llmfs::read_file(responses) == answered);
  CHECK_FALSE(fs::exists(run / "evaluation.json"));
}

TEST_CASE("ch07 without GPT-2 weights narrates what needs none", "[chapter][ch07]") {
  const auto r = ch07("--section 7.5");
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  // C7-17: validation entry 0's prompt.
  CHECK(r.out.find("### Instruction:\nConvert the active sentence to passive: 'The chef cooks the "
                   "meal every day.'\n") != std::string::npos);
}

TEST_CASE("ch07 LoRA runs answer with merged adapters, and export writes the book's state dict",
          "[chapter][ch07]") {
  const auto dir = fresh_dir("lora");
  const auto data = write_json(dir / "own.json", own_entries());
  const auto run = dir / "run";
  auto r = ch07(fmt::format(
      "finetune --config configs/ch07/lora.yaml {} finetune.lora.rank=4 initial_eval=false "
      "sample_tokens=0 train.max_steps=3 train.num_epochs=1 train.eval_freq=2 train.eval_iter=1 "
      "train.batch_size=4 train.learning_rate=0.01 train.output_dir={}",
      small(data), run.string()));
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  // The checkpoint holds the frozen weights and the adapters; answering merges them.
  const auto checkpoint = fs::path(r.out.substr(r.out.find("Model saved in ") + 15,
                                                r.out.find('\n', r.out.find("Model saved in ")) -
                                                    r.out.find("Model saved in ") - 15));
  const auto weights = llmfs::read_tensor_file(checkpoint / "model.safetensors");
  CHECK(weights.count("trf_blocks.0.att.W_query.lora.A") == 1);
  r = ch07(fmt::format("generate --config configs/ch07/lora.yaml {} train.output_dir={} "
                       "--instruction \"Repeat the word.\" --input fire --max-new-tokens 4",
                       small(data), run.string()));
  INFO(r.out);
  CHECK(r.exit_code == 0);

  // The book's torch.save(model.state_dict()): merged, the book's names, masks included.
  const auto pth = dir / "gpt2-sft.pth";
  r = ch07(fmt::format("export --config configs/ch07/lora.yaml {} train.output_dir={} --output {}",
                       small(data), run.string(), pth.string()));
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("Model saved as " + pth.string()) != std::string::npos);
  const auto state = llmfs::load_pth(pth);
  CHECK(state.count("trf_blocks.0.att.mask") == 1);
  CHECK(state.count("trf_blocks.0.att.W_query.lora.A") == 0);
  // Merged: W + scale (A B)^T differs from the frozen W wherever B moved.
  CHECK_FALSE(torch::equal(state.at("trf_blocks.0.att.W_query.weight"),
                           weights.at("trf_blocks.0.att.W_query.weight")));
  CHECK(torch::equal(state.at("tok_emb.weight"), weights.at("tok_emb.weight")));
}

TEST_CASE("ch07 with Hugging Face GPT-2 weights: 7.5, 7.6 and finetuning from them",
          "[chapter][ch07]") {
  // A random GPT-2 with the real vocabulary saved by transformers (fixtures_weights.py); its
  // config.json says dropout 0.1, the run's model.drop_rate (0.0, the book's) applies.
  const auto weights = fs::path(llmfs::test::kFixturesDir) / "weights" / "gpt2_vocab";
  auto r = ch07(fmt::format("--section 7.5 --weights {}", weights.string()));
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("No GPT-2 355M weights") == std::string::npos);
  // C7-18's steps: the prompt, then the model's greedy continuation (35 tokens at most).
  CHECK(count(r.out, "\n") > 8);
  r = ch07(fmt::format("--section 7.6 --weights {}", weights.string()));
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("Training loss: ") != std::string::npos);  // C7-19's steps
  CHECK(r.out.find("Validation loss: ") != std::string::npos);

  const auto dir = fresh_dir("hf");
  const auto run = dir / "run";
  r = ch07(fmt::format("finetune --log-level=warn base_model={} train.device=cpu "
                       "initial_eval=false sample_tokens=0 train.max_steps=2 train.eval_freq=1 "
                       "train.eval_iter=1 train.output_dir={}",
                       weights.string(), run.string()));
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  const auto saved = llmfs::read_file(run / "config.yaml");
  CHECK(saved.find("  emb_dim: 64\n") != std::string::npos);  // the weights' shape
  CHECK(saved.find("  drop_rate: 0\n") != std::string::npos);  // the run's dropout
  CHECK(saved.find("tokenizer:\n  kind: gpt2\n") != std::string::npos);
  r = ch07(fmt::format("generate --log-level=warn train.output_dir={} --instruction \"Say hi.\" "
                       "--max-new-tokens 3 generate.device=cpu",
                       run.string()));
  INFO(r.out);
  CHECK(r.exit_code == 0);
}

namespace {

// The "Train reward margins" of every DPO evaluation line, in order.
std::vector<double> reward_margins(const std::string& out) {
  std::vector<double> margins;
  const std::string key = "Train reward margins ";
  for (size_t at = out.find(key); at != std::string::npos; at = out.find(key, at + 1)) {
    margins.push_back(std::stod(out.substr(at + key.size(), 8)));
  }
  return margins;
}

}  // namespace

TEST_CASE("ch07 dpo aligns a small instruction model, and the reward margin grows from 0",
          "[chapter][ch07][dpo]") {
  const auto dir = fresh_dir("dpo");
  const fs::path pairs = "instruction-data-with-preference.json";  // from LLMFS_DATA_DIR
  const auto sft = dir / "sft";
  auto r = ch07(fmt::format("finetune {} initial_eval=false sample_tokens=0 train.max_steps=3 "
                            "train.num_epochs=1 train.eval_freq=10 train.output_dir={}",
                            small(pairs), sft.string()));
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  const auto dpo = dir / "dpo";
  const std::string common =
      "--log-level=warn train.device=cpu generate.device=cpu train.eval_iter=2 "
      "generate.max_new_tokens=4";
  r = ch07(fmt::format("dpo --config configs/ch07/dpo.yaml --policy {} {} "
                       "train.learning_rate=1e-3 train.max_steps=10 train.eval_freq=3 "
                       "sample_tokens=5 compare_entries=1 train.output_dir={}",
                       sft.string(), common, dpo.string()));
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  CHECK(count(r.out, "Ep 1 (Step 000000): Train loss 0.69") == 1);
  const auto margins = reward_margins(r.out);
  REQUIRE(margins.size() == 4);  // steps 0, 3, 6, 9
  CHECK(std::abs(margins.front()) < 0.05);  // one step from policy == reference
  CHECK(margins.back() > margins.front());
  CHECK(margins.back() > 0.0);
  CHECK(count(r.out, "Reference model response:\n>> ") == 1);
  CHECK(count(r.out, "Policy model response:\n>> ") == 1);
  // The aligned model answers like any ch07 run.
  r = ch07(fmt::format("generate {} train.output_dir={} --instruction \"Say hi.\" "
                       "--max-new-tokens 3",
                       small(pairs), dpo.string()));
  INFO(r.out);
  CHECK(r.exit_code == 0);

  // LoRA: the reference is the policy's own base (adapters off), so the first loss is ln 2.
  r = ch07(fmt::format("dpo --config configs/ch07/dpo.yaml --policy {} {} finetune.trainable=lora "
                       "finetune.lora.rank=2 train.max_steps=2 train.eval_freq=1 sample_tokens=0 "
                       "compare_entries=1 train.output_dir={}",
                       sft.string(), common, (dir / "lora").string()));
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  CHECK(count(r.out, "Train reward margins") == 2);
  CHECK(count(r.out, "Policy model response:") == 1);
}

TEST_CASE("ch07 dpo refuses bad preference data and references with one line",
          "[chapter][ch07][dpo]") {
  const auto dir = fresh_dir("dpo_bad");
  const fs::path pairs = "instruction-data-with-preference.json";
  const std::string random = fmt::format(
      "--log-level=warn policy=random model.emb_dim=32 model.n_heads=4 model.n_layers=2 "
      "model.context_length=128 train.device=cpu sample_tokens=0 compare_entries=0 "
      "train.max_steps=1 train.eval_freq=5 train.output_dir={}",
      (dir / "run").string());
  // A pair without its rejected answer; a rejected answer that is not a string.
  auto entries = json::array();
  for (int i = 0; i < 20; ++i) {
    entries.push_back({{"instruction", "Say a word."}, {"input", ""}, {"output", "word"},
                       {"chosen", "word"}, {"rejected", "WORD!"}});
  }
  auto missing = entries;
  missing[4].erase("rejected");
  auto r = ch07(fmt::format("dpo {} data.file={}", random,
                            write_json(dir / "missing.json", missing).string()));
  CHECK(r.exit_code == 1);
  CHECK(r.out.find("missing.json: entry 4: field 'rejected' is missing") != std::string::npos);
  auto typed = entries;
  typed[6]["chosen"] = json::array({"word"});
  r = ch07(fmt::format("dpo {} data.file={}", random,
                       write_json(dir / "typed.json", typed).string()));
  CHECK(r.exit_code == 1);
  CHECK(r.out.find("typed.json: entry 6: field 'chosen' is not a string") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "run"));

  // chosen == rejected: the book's data has 6 such pairs; kept by default, refused on request.
  r = ch07(fmt::format("dpo {} data.file={} data.identical_pairs=error", random, pairs.string()));
  CHECK(r.exit_code == 1);
  CHECK(r.out.find("the chosen and rejected answers are the same") != std::string::npos);
  CHECK(r.out.find("entry ") != std::string::npos);

  // Answers cut away by allowed_max_length: those pairs are left out and counted.
  r = ch07(fmt::format("dpo {} data.file={} data.allowed_max_length=56 --overwrite", random,
                       pairs.string()));
  INFO(r.out);
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("training pairs left out (0 with chosen == rejected") != std::string::npos);

  // A reference of another shape (emb_dim 64 against the policy's 32).
  const auto weights = fs::path(llmfs::test::kFixturesDir) / "weights" / "gpt2_vocab";
  const auto sft = dir / "sft";
  r = ch07(fmt::format("finetune {} initial_eval=false sample_tokens=0 train.max_steps=1 "
                       "train.num_epochs=1 train.output_dir={}",
                       small(pairs), sft.string()));
  REQUIRE(r.exit_code == 0);
  r = ch07(fmt::format("dpo --policy {} --reference {} --log-level=warn train.device=cpu "
                       "train.output_dir={}",
                       sft.string(), weights.string(), (dir / "ref").string()));
  CHECK(r.exit_code == 1);
  CHECK(r.out.find("emb_dim 64") != std::string::npos);
  CHECK(r.out.find("a reference of another model") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "ref"));
}

TEST_CASE("ch07 finetune and dpo run data parallel under torchrun", "[chapter][ch07][dist]") {
  // Instruction batches are padded to their own longest entry, so ranks average losses over
  // different token counts than one process would: this checks the run, not equal losses.
  const auto dir = fresh_dir("torchrun");
  const auto data = write_json(dir / "own.json", own_entries());
  const auto run = dir / "run";
  auto r = llmfs::test::run_torchrun(
      2, "ch07",
      fmt::format("finetune {} train.num_epochs=1 train.batch_size=2 train.max_steps=4 "
                  "train.eval_freq=2 train.eval_iter=1 sample_tokens=0 train.output_dir={}",
                  small(data), run.string()));
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  CHECK(count(r.out, "Ep 1 (Step 000002): Train loss") == 1);  // rank 0 alone prints
  CHECK(fs::exists(run / "checkpoints" / "step_000003"));
  CHECK(fs::exists(run / "test.json"));
  const auto timing = json::parse(llmfs::read_file(run / "timing.json"));
  CHECK(timing.at("world_size") == 2);
  for (const auto& loss : timing.at("step_losses")) CHECK(std::isfinite(loss.get<double>()));

  // DPO from that model, 2 processes: the first loss is ln 2 (policy == reference) on both.
  const auto dpo = dir / "dpo";
  r = llmfs::test::run_torchrun(
      2, "ch07",
      fmt::format("dpo --config configs/ch07/dpo.yaml --policy {} --log-level=warn "
                  "train.device=cpu generate.device=cpu train.eval_iter=1 train.max_steps=3 "
                  "train.eval_freq=2 sample_tokens=0 compare_entries=0 train.output_dir={}",
                  run.string(), dpo.string()));
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  CHECK(count(r.out, "Ep 1 (Step 000000): Train loss 0.69") == 1);
  CHECK(fs::exists(dpo / "checkpoints" / "step_000002"));
}
