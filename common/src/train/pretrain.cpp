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
#include "llmfs/train/mfu.h"

namespace fs = std::filesystem;

namespace llmfs {

namespace {

torch::Device model_device(const GPTModel& model) { return model->tok_emb->weight.device(); }

}  // namespace

SampleConfig parse_sample_config(ConfigNode node, const SampleConfig& defaults) {
  SampleConfig c = defaults;
  node.read("start_context", c.start_context);
  node.read("max_new_tokens", c.max_new_tokens, at_least(int64_t{0}));
  return c;
}

std::string generate_sample(GPTModel model, const Tokenizer& tokenizer,
                            std::string_view start_context, int64_t max_new_tokens) {
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
  std::string text =
      tokenizer.decode(std::span<const int64_t>(flat.data_ptr<int64_t>(), flat.numel()));
  std::replace(text.begin(), text.end(), '\n', ' ');
  return text;
}

TrainResult pretrain_gpt(const GPTConfig& model_config, const TrainConfig& train,
                         const PretrainDataConfig& data, const Tokenizer& tokenizer,
                         const PretrainOptions& options, const PretrainCallbacks& callbacks) {
  if (data.max_length > model_config.context_length) {
    fail(
        "train.data.max_length ({}) exceeds model.context_length ({}): the model cannot read "
        "windows that long",
        data.max_length, model_config.context_length);
  }
  if (tokenizer.vocab_size() > model_config.vocab_size) {
    fail("the tokenizer has {} tokens but model.vocab_size is {}", tokenizer.vocab_size(),
         model_config.vocab_size);
  }
  fs::path resume_dir;
  if (!options.resume.empty()) resume_dir = resolve_checkpoint(options.resume, train.output_dir);
  TrainConfig run = train;  // under torchrun: this rank's device
  const auto group = join_data_parallel(run);

  // Data (book §5.1.3): split by characters, seed, training loader, validation loader.
  const std::string text = read_training_text(data.file);
  const auto split = split_text(text, data.train_ratio);
  auto loaders = make_pretrain_loaders(split, tokenizer, data, train.batch_size, train.seed);
  if (group) {  // each rank its share of every pass (drawing nothing: the book's order stays)
    loaders.train = loaders.train.sharded(data_shard(*group, run));
    loaders.val = loaders.val.sharded(data_shard(*group, run));
  }
  spdlog::info(
      "data {}: {} characters ({} train, {} validation); {} + {} tokens; {} training "
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
  const auto device = resolve_device(run.device);
  spdlog::info("model: {} parameters, {} layers, context {}; device {}, {}",
               group_thousands(parameters), model_config.n_layers, model_config.context_length,
               device.str(), train.precision);

  TrainHooks<> hooks;
  hooks.loss = [model, device](const Batch& b) mutable {
    return calc_loss_batch(b.input, b.target, model, device);
  };
  hooks.on_eval = callbacks.on_eval;
  const SampleConfig& sample = options.sample;
  if (sample.max_new_tokens > 0 && callbacks.on_sample) {
    hooks.on_epoch_end = [&, model](int64_t epoch) -> std::map<std::string, double> {
      callbacks.on_sample(
          epoch, generate_sample(model, tokenizer, sample.start_context, sample.max_new_tokens));
      return {};
    };
  }
  model->to(device);
  TrainerOptions trainer_options;
  trainer_options.config_yaml = options.config_yaml;
  trainer_options.overwrite = options.overwrite;
  trainer_options.process_group = group;
  trainer_options.flops_per_token = gpt_training_flops_per_token(model_config, data.max_length);
  Trainer<> trainer(model.ptr(), run, batch_source(loaders.train), batch_source(loaders.val),
                    hooks, trainer_options);
  if (!resume_dir.empty()) trainer.resume(resume_dir);
  return trainer.fit();
}

TextLoss evaluate_text_loss(GPTModel& model, const Tokenizer& tokenizer, std::string_view text,
                            int64_t batch_size) {
  TextLoss r;
  const auto token_ids = tokenizer.encode(text, {.allowed_special = {std::string(kEndOfText)}});
  r.tokens = static_cast<int64_t>(token_ids.size());
  if (r.tokens < 2) return r;
  model->eval();
  const auto device = model_device(model);
  r.window = std::min(model->config().context_length, r.tokens - 1);
  const auto tokens = torch::tensor(token_ids, torch::kLong);

  // Windows start every `window` tokens; the inputs of one batch have equal length.
  std::vector<int64_t> starts;
  for (int64_t s = 0; s < r.tokens - 1; s += r.window) starts.push_back(s);
  r.windows = static_cast<int64_t>(starts.size());
  const auto length_at = [&](size_t i) { return std::min(r.window, r.tokens - 1 - starts[i]); };
  torch::NoGradGuard no_grad;
  double total = 0.0;  // summed token losses
  for (size_t i = 0; i < starts.size();) {
    const int64_t len = length_at(i);
    std::vector<torch::Tensor> inputs, targets;
    for (; i < starts.size() && static_cast<int64_t>(inputs.size()) < batch_size &&
           length_at(i) == len;
         ++i) {
      inputs.push_back(tokens.narrow(0, starts[i], len));
      targets.push_back(tokens.narrow(0, starts[i] + 1, len));
    }
    const auto input_batch = torch::stack(inputs).to(device);    // (B, T)
    const auto target_batch = torch::stack(targets).to(device);  // (B, T)
    const auto logits = model(input_batch);                      // (B, T, V)
    total += torch::nn::functional::cross_entropy(
                 logits.flatten(0, 1), target_batch.flatten(),
                 torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                 .item<double>();
    r.evaluated += target_batch.numel();
  }
  r.loss = total / static_cast<double>(r.evaluated);
  return r;
}

}  // namespace llmfs
