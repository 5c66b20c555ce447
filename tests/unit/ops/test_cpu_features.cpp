// CPU feature detection: the override tests use to reach the fallbacks, and the one-time warning
// where bf16 units are missing.
#include "llmfs/ops/cpu_features.h"

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <sstream>

#include "catch.h"

namespace {

// Everything the default logger writes while it lives.
class CapturedLog {
 public:
  CapturedLog() : saved_(spdlog::default_logger()) {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out_);
    spdlog::set_default_logger(std::make_shared<spdlog::logger>("captured", sink));
  }
  ~CapturedLog() { spdlog::set_default_logger(saved_); }
  std::string text() const { return out_.str(); }

 private:
  std::ostringstream out_;
  std::shared_ptr<spdlog::logger> saved_;
};

}  // namespace

TEST_CASE("cpu_features reads the CPU, and an override only takes features away", "[unit][model]") {
  const llmfs::CpuFeatures real = llmfs::cpu_features();
  CHECK_FALSE(real.describe().empty());
  if (real.avx512_bf16) CHECK(real.avx512f);  // implied, as detect() enforces
  {
    llmfs::CpuFeaturesOverride none(llmfs::CpuFeatures{});
    CHECK(llmfs::cpu_features().describe() == "none");
    CHECK_FALSE(llmfs::cpu_features().bf16_units());
  }
  {
    llmfs::CpuFeaturesOverride all(llmfs::CpuFeatures{true, true, true, true});
    CHECK(llmfs::cpu_features().describe() == real.describe());  // nothing the CPU lacks
  }
  CHECK(llmfs::cpu_features().describe() == real.describe());  // restored
}

TEST_CASE("Without bf16 units the fallback is said once", "[unit][model]") {
  CapturedLog log;
  llmfs::CpuFeaturesOverride no_bf16(llmfs::CpuFeatures{true, true, false, false});
  CHECK_FALSE(llmfs::check_bf16_units("train.precision=bf16", "training in fp32"));
  CHECK_FALSE(llmfs::check_bf16_units("train.precision=bf16", "training in fp32"));
  const std::string text = log.text();
  INFO(text);
  const auto first = text.find("no bf16 units");
  REQUIRE(first != std::string::npos);
  CHECK(text.find("training in fp32") != std::string::npos);
  CHECK(text.find("no bf16 units", first + 1) == std::string::npos);  // once
}
