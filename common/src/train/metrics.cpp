// Evaluation points: the book's log line, metrics.jsonl / metrics.csv.
#include "llmfs/train/metrics.h"

#include <fmt/format.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "llmfs/core/error.h"
#include "llmfs/core/file_io.h"

namespace llmfs {

bool EvalPoint::same_values(const EvalPoint& o) const {
  const auto same = [](double a, double b) { return a == b || (std::isnan(a) && std::isnan(b)); };
  return epoch == o.epoch && step == o.step && tokens_seen == o.tokens_seen &&
         same(train_loss, o.train_loss) && same(val_loss, o.val_loss) && same(lr, o.lr) &&
         extra == o.extra;
}

std::vector<double> TrainHistory::train_losses() const {
  std::vector<double> out;
  for (const auto& p : points) out.push_back(p.train_loss);
  return out;
}

std::vector<double> TrainHistory::val_losses() const {
  std::vector<double> out;
  for (const auto& p : points) out.push_back(p.val_loss);
  return out;
}

std::vector<int64_t> TrainHistory::track_tokens_seen() const {
  std::vector<int64_t> out;
  for (const auto& p : points) out.push_back(p.tokens_seen);
  return out;
}

std::string format_eval_line(const EvalPoint& point, std::string_view label) {
  // Python's f"{x:.3f}" of a float: fmt rounds the same way (correctly rounded, half to even
  // on the exact binary value); nan prints as "nan" in both.
  return fmt::format("Ep {} ({} {:06d}): Train loss {:.3f}, Val loss {:.3f}", point.epoch, label,
                     point.step, point.train_loss, point.val_loss);
}

namespace {

// JSON has no NaN: null stands for it (an empty validation loader gives NaN, as in the book).
nlohmann::json number(double x) {
  if (std::isnan(x)) return nullptr;
  return x;
}

double number_from(const nlohmann::json& j) {
  if (j.is_null()) return std::numeric_limits<double>::quiet_NaN();
  return j.get<double>();
}

std::string csv_number(double x) { return std::isnan(x) ? "nan" : fmt::format("{:.17g}", x); }

}  // namespace

std::string eval_point_to_json(const EvalPoint& p) {
  nlohmann::ordered_json j;
  j["epoch"] = p.epoch;
  j["step"] = p.step;
  j["tokens_seen"] = p.tokens_seen;
  j["train_loss"] = number(p.train_loss);
  j["val_loss"] = number(p.val_loss);
  j["lr"] = p.lr;
  for (const auto& [k, v] : p.extra) j[k] = number(v);
  j["elapsed_s"] = p.elapsed_s;
  j["tokens_per_s"] = p.tokens_per_s;
  if (p.mfu > 0) j["mfu"] = p.mfu;
  return j.dump();
}

EvalPoint eval_point_from_json(std::string_view line) {
  EvalPoint p;
  try {
    const auto j = nlohmann::json::parse(line);
    if (!j.is_object()) fail("expected a JSON object");
    for (const auto& [k, v] : j.items()) {
      if (k == "epoch") {
        p.epoch = v.get<int64_t>();
      } else if (k == "step") {
        p.step = v.get<int64_t>();
      } else if (k == "tokens_seen") {
        p.tokens_seen = v.get<int64_t>();
      } else if (k == "train_loss") {
        p.train_loss = number_from(v);
      } else if (k == "val_loss") {
        p.val_loss = number_from(v);
      } else if (k == "lr") {
        p.lr = v.get<double>();
      } else if (k == "elapsed_s") {
        p.elapsed_s = v.get<double>();
      } else if (k == "tokens_per_s") {
        p.tokens_per_s = v.get<double>();
      } else if (k == "mfu") {
        p.mfu = v.get<double>();
      } else {
        p.extra[k] = number_from(v);
      }
    }
  } catch (const nlohmann::json::exception& e) {
    fail("malformed evaluation record: {}", e.what());
  }
  return p;
}

constexpr std::string_view kEpochEvent = "epoch_end";

std::string epoch_metrics_to_json(const EpochMetrics& e) {
  nlohmann::ordered_json j;
  j["event"] = kEpochEvent;
  j["epoch"] = e.epoch;
  j["step"] = e.step;
  j["tokens_seen"] = e.tokens_seen;
  for (const auto& [k, v] : e.metrics) {
    if (j.contains(k)) fail("epoch metric '{}' has the name of a field of the record; rename it", k);
    j[k] = number(v);
  }
  return j.dump();
}

EpochMetrics epoch_metrics_from_json(std::string_view line) {
  EpochMetrics e;
  try {
    const auto j = nlohmann::json::parse(line);
    if (!j.is_object() || j.value("event", "") != kEpochEvent) fail("expected an epoch_end record");
    for (const auto& [k, v] : j.items()) {
      if (k == "event") continue;
      if (k == "epoch") {
        e.epoch = v.get<int64_t>();
      } else if (k == "step") {
        e.step = v.get<int64_t>();
      } else if (k == "tokens_seen") {
        e.tokens_seen = v.get<int64_t>();
      } else {
        e.metrics[k] = number_from(v);
      }
    }
  } catch (const nlohmann::json::exception& ex) {
    fail("malformed epoch record: {}", ex.what());
  }
  return e;
}

MetricsWriter::MetricsWriter(std::filesystem::path dir)
    : jsonl_(dir / "metrics.jsonl"),
      csv_(dir / "metrics.csv"),
      epoch_csv_(dir / "epoch_metrics.csv") {}

std::string MetricsWriter::epoch_csv_header() const {
  std::string h = "epoch,step,tokens_seen";
  for (const auto& c : epoch_columns_) h += "," + c;
  return h + "\n";
}

std::string MetricsWriter::epoch_csv_row(const EpochMetrics& e) const {
  std::string row = fmt::format("{},{},{}", e.epoch, e.step, e.tokens_seen);
  for (const auto& c : epoch_columns_) {
    const auto it = e.metrics.find(c);
    row += ',';
    if (it != e.metrics.end()) row += csv_number(it->second);
  }
  return row + "\n";
}

std::string MetricsWriter::csv_header() const {
  std::string h = "epoch,step,tokens_seen,train_loss,val_loss,lr,elapsed_s,tokens_per_s";
  for (const auto& c : extra_columns_) h += "," + c;
  return h + "\n";
}

std::string MetricsWriter::csv_row(const EvalPoint& p) const {
  std::string row = fmt::format("{},{},{},{},{},{},{:.3f},{:.1f}", p.epoch, p.step, p.tokens_seen,
                                csv_number(p.train_loss), csv_number(p.val_loss), csv_number(p.lr),
                                p.elapsed_s, p.tokens_per_s);
  for (const auto& c : extra_columns_) {
    const auto it = p.extra.find(c);
    row += ',';
    if (it != p.extra.end()) row += csv_number(it->second);
  }
  return row + "\n";
}

void MetricsWriter::reset(const std::vector<EvalPoint>& points,
                          const std::vector<EpochMetrics>& epochs) {
  extra_columns_.clear();
  if (!points.empty()) {
    for (const auto& [k, v] : points.front().extra) extra_columns_.push_back(k);
  }
  epoch_columns_.clear();
  if (!epochs.empty()) {
    for (const auto& [k, v] : epochs.front().metrics) epoch_columns_.push_back(k);
  }
  // metrics.jsonl in the order things happened: an epoch ends after its last evaluation.
  std::string jsonl, csv = csv_header(), epoch_csv = epoch_csv_header();
  size_t e = 0;
  for (const auto& p : points) {
    for (; e < epochs.size() && epochs[e].step < p.step; ++e) {
      jsonl += epoch_metrics_to_json(epochs[e]) + "\n";
    }
    jsonl += eval_point_to_json(p) + "\n";
    csv += csv_row(p);
  }
  for (; e < epochs.size(); ++e) jsonl += epoch_metrics_to_json(epochs[e]) + "\n";
  for (const auto& epoch : epochs) epoch_csv += epoch_csv_row(epoch);
  write_file_atomic(jsonl_, jsonl);
  write_file_atomic(csv_, csv);
  if (epochs.empty()) {
    std::error_code ec;
    std::filesystem::remove(epoch_csv_, ec);  // written with the first epoch's metrics
  } else {
    write_file_atomic(epoch_csv_, epoch_csv);
  }
}

namespace {

void append_line(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::app | std::ios::binary);
  out << text;
  out.flush();
  if (!out) fail("{}: cannot append", path.string());
}

}  // namespace

void MetricsWriter::append_epoch(const EpochMetrics& epoch) {
  if (!std::filesystem::exists(epoch_csv_)) {
    epoch_columns_.clear();
    for (const auto& [k, v] : epoch.metrics) epoch_columns_.push_back(k);
    write_file_atomic(epoch_csv_, epoch_csv_header());
  }
  append_line(jsonl_, epoch_metrics_to_json(epoch) + "\n");
  append_line(epoch_csv_, epoch_csv_row(epoch));
}

void MetricsWriter::append(const EvalPoint& point) {
  if (!std::filesystem::exists(csv_)) reset({});
  // The CSV columns follow the first point's extra metrics; a fresh file takes this point's.
  if (extra_columns_.empty() && !point.extra.empty() && std::filesystem::file_size(jsonl_) == 0) {
    for (const auto& [k, v] : point.extra) extra_columns_.push_back(k);
    write_file_atomic(csv_, csv_header());
  }
  append_line(jsonl_, eval_point_to_json(point) + "\n");
  append_line(csv_, csv_row(point));
}

TrainHistory read_metrics_history(const std::filesystem::path& path) {
  const std::string text = read_file(path);
  TrainHistory history;
  size_t start = 0;
  int64_t line_no = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    ++line_no;
    const std::string_view line(text.data() + start, end - start);
    if (!line.empty()) {
      try {
        if (line.find("\"event\"") != std::string_view::npos) {
          history.epochs.push_back(epoch_metrics_from_json(line));
        } else {
          history.points.push_back(eval_point_from_json(line));
        }
      } catch (const Error& e) {
        fail("{}:{}: {}", path.string(), line_no, e.what());
      }
    }
    start = end + 1;
  }
  return history;
}

std::vector<EvalPoint> read_metrics_jsonl(const std::filesystem::path& path) {
  return read_metrics_history(path).points;
}

}  // namespace llmfs
