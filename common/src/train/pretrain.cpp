// Chapter 5's pretraining run as a library function: data, model, trainer, samples.
#include "llmfs/train/pretrain.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "llmfs/checkpoint/checkpoint.h"
#include "llmfs/core/device.h"
#include "llmfs/core/error.h"
#include "llmfs/core/file_io.h"
#include "llmfs/core/repr.h"
#include "llmfs/generate/generate.h"

namespace fs = std::filesystem;

namespace llmfs {

namespace {

torch::Device model_device(const GPTModel& model) { return model->tok_emb->weight.device(); }

// A fresh run must not overwrite another run's checkpoints.
void prepare_output_dir(const TrainConfig& train, bool overwrite) {
  const fs::path out(train.output_dir);
  const fs::path checkpoints = out / "checkpoints";
  std::error_code ec;
  if (!fs::exists(checkpoints / kLatestFile, ec)) return;
  if (!overwrite) {
    const auto latest = latest_checkpoint(checkpoints);
    fail("{} holds a previous run (latest checkpoint {}): continue it with --resume latest, start "
         "over with --overwrite, or set train.output_dir",
         out.string(), latest ? latest->filename().string() : "?");
  }
  spdlog::info("--overwrite: removing the previous run's checkpoints and metrics in {}", out.string());
  fs::remove_all(checkpoints);
  fs::remove(out / "metrics.jsonl", ec);
  fs::remove(out / "metrics.csv", ec);
}

}  // namespace

std::string generate_sample(GPTModel model, const Tokenizer& tokenizer, std::string_view start_context,
                            int64_t max_new_tokens) {
  const bool was_training = model->is_training();
  model->eval();
  const int64_t context_size = model->pos_emb->weight.size(0);
  const auto ids = tokenizer.encode(start_context, {.allowed_special = {std::string(kEndOfText)}});
  const auto encoded = torch::tensor(ids, torch::kInt64).unsqueeze(0).to(model_device(model));
  torch::Tensor out;
  {
    torch::NoGradGuard no_grad;
    out = generate_text_simple(model, encoded, max_new_tokens, context_size);
  }
  model->train(was_training);
  const auto flat = out.squeeze(0).cpu().contiguous();
  std::string text = tokenizer.decode(std::span<const int64_t>(flat.data_ptr<int64_t>(), flat.numel()));
  std::replace(text.begin(), text.end(), '\n', ' ');
  return text;
}

TrainResult pretrain_gpt(const GPTConfig& model_config, const TrainConfig& train,
                         const PretrainDataConfig& data, const Tokenizer& tokenizer,
                         const PretrainOptions& options, const PretrainCallbacks& callbacks) {
  if (data.max_length > model_config.context_length) {
    fail("train.data.max_length ({}) exceeds model.context_length ({}): the model cannot read "
         "windows that long",
         data.max_length, model_config.context_length);
  }
  if (tokenizer.vocab_size() > model_config.vocab_size) {
    fail("the tokenizer has {} tokens but model.vocab_size is {}", tokenizer.vocab_size(),
         model_config.vocab_size);
  }
  fs::path resume_dir;
  if (!options.resume.empty()) {
    resume_dir = resolve_checkpoint(options.resume, train.output_dir);
  } else {
    prepare_output_dir(train, options.overwrite);
  }

  // Data (book §5.1.3): split by characters, seed, training loader, validation loader.
  const std::string text = read_training_text(data.file);
  const auto split = split_text(text, data.train_ratio);
  const auto loaders = make_pretrain_loaders(split, tokenizer, data, train.batch_size, train.seed);
  spdlog::info("data {}: {} characters ({} train, {} validation); {} + {} tokens; {} training "
               "batches of {} x {}",
               data.file, group_thousands(split.train_chars + split.val_chars),
               group_thousands(split.train_chars), group_thousands(split.val_chars),
               group_thousands(loaders.train_tokens), group_thousands(loaders.val_tokens),
               loaders.train.size(), train.batch_size, data.max_length);

  // Model (book §5.2): seeded again right before it is built.
  torch::manual_seed(static_cast<uint64_t>(train.seed));
  GPTModel model(model_config);
  int64_t parameters = 0;
  for (const auto& p : model->parameters()) parameters += p.numel();
  const auto device = resolve_device(train.device);
  spdlog::info("model: {} parameters, {} layers, context {}; device {}, {}",
               group_thousands(parameters), model_config.n_layers, model_config.context_length,
               device.str(), train.precision);

  TrainHooks<> hooks;
  hooks.loss = [model, device](const Batch& b) mutable {
    return calc_loss_batch(b.input, b.target, model, device);
  };
  hooks.on_eval = callbacks.on_eval;
  if (train.sample.max_new_tokens > 0 && callbacks.on_sample) {
    hooks.on_epoch_end = [&, model](int64_t epoch) {
      callbacks.on_sample(epoch, generate_sample(model, tokenizer, train.sample.start_context,
                                                 train.sample.max_new_tokens));
    };
  }
  model->to(device);
  Trainer<> trainer(model.ptr(), train, batch_source(loaders.train), batch_source(loaders.val),
                    hooks);
  if (!resume_dir.empty()) trainer.resume(resume_dir);
  return trainer.fit();
}

GPTConfig checkpoint_model_config(const fs::path& dir) {
  const fs::path file = dir / "config.yaml";
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) fail("{}: missing (not a training checkpoint?)", file.string());
  const std::string yaml = read_file(file);
  auto document = ConfigDocument::from_string(yaml, file.string());
  GPTConfig config = parse_gpt_config(document.root().child("model"));
  return config;
}

GPTModel load_gpt_checkpoint(const fs::path& dir) {
  const GPTConfig config = checkpoint_model_config(dir);
  GPTModel model(config);
  const fs::path weights = dir / kModelFile;
  load_model_state_dict(*model, read_tensor_file(weights), weights.string());
  model->eval();
  return model;
}

}  // namespace llmfs
