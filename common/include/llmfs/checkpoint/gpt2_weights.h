#pragma once

#include <torch/torch.h>

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "llmfs/model/gpt_config.h"
#include "llmfs/model/gpt_model.h"

namespace llmfs {

/// How the tensors of a GPT checkpoint are named and shaped.
///  - Book: the book's GPTModel state dict (`tok_emb.weight`, `trf_blocks.0.att.W_query.weight`,
///    ..., `out_head.weight`, plus the `trf_blocks.N.att.mask` buffers, which loading ignores).
///  - HuggingFace: transformers' GPT2LMHeadModel (`transformer.wte.weight`,
///    `transformer.h.0.attn.c_attn.weight`, ...): Conv1D weights stored (in, out), the query, key
///    and value projections fused in `c_attn`, `lm_head.weight` usually left out (tied to wte).
///    Files converted from OpenAI's release name the same tensors without `transformer.`.
enum class WeightLayout { Book, HuggingFace };

/// The GPTConfig of a Hugging Face GPT-2 `config.json`: n_embd, n_layer, n_head,
/// n_positions (or n_ctx), vocab_size, resid_pdrop as drop_rate; qkv_bias true (an optional
/// "qkv_bias" key, which llmfs writes for models without one, can say false); tie_weights false,
/// as the book copies wte into its separate output head. Refuses (llmfs::Error naming the file
/// and key) what GPTModel cannot reproduce: another model_type, an activation other than
/// gelu_new, layer_norm_epsilon other than 1e-5, n_inner other than 4 * n_embd, attention
/// scaling variants.
GPTConfig read_hf_gpt2_config(const std::filesystem::path& config_json);

/// The tensors of transformers' GPT2LMHeadModel with this shape, in its state_dict order, with
/// their shapes: what load_weights expects of a Hugging Face checkpoint (the names carry the
/// `transformer.` prefix, which files converted from OpenAI's release leave out; `lm_head.weight`,
/// last, is optional).
std::vector<std::pair<std::string, std::vector<int64_t>>> hf_gpt2_shapes(const GPTConfig& config);

/// The config.json transformers needs for GPT2LMHeadModel with this shape.
std::string hf_gpt2_config_json(const GPTConfig& config);

/// A model config file: a Hugging Face config.json (.json) or a YAML file with the GPTConfig keys
/// (at the top level or under `model:`).
GPTConfig read_model_config(const std::filesystem::path& file);

/// The config of the weights at `path` (a weights file or a Hugging Face model folder): the
/// config.json in that folder or beside that file. llmfs::Error when there is none, saying to
/// pass a model config instead.
GPTConfig model_config_for(const std::filesystem::path& path);

/// Loads GPT weights into a model whose config matches them: `path` is a .safetensors file, a
/// .pth / .bin file (torch.save zip format; a dict holding `model_state_dict`, as the book's
/// model_and_optimizer.pth, works too) or a Hugging Face model folder (model.safetensors, a
/// sharded model.safetensors.index.json, or pytorch_model.bin). The layout (book or Hugging Face,
/// with or without the `transformer.` prefix) is detected from the names. Tensors are read one
/// at a time and copied into the parameters (converted to their dtype and device), so a 1558M
/// checkpoint needs no second copy of the model in memory. Every tensor's shape is checked first:
/// a checkpoint for another model size fails with a one-line llmfs::Error naming the tensor and
/// both shapes; a missing tensor, an unexpected one (another layer count) or a non-float dtype
/// fails naming it. Without lm_head the output head gets a copy of the token embedding (or
/// shares it with tie_weights).
void load_weights(GPTModelImpl& model, const std::filesystem::path& path);
inline void load_weights(GPTModel& model, const std::filesystem::path& path) {
  load_weights(*model, path);
}

/// A GPTModel shaped by `config` (when given) or by the config.json beside the weights
/// (model_config_for), with the weights at `path` loaded, in eval mode: what `ch04 generate
/// --weights PATH [--model-config FILE]` and the later chapters start from.
GPTModel load_gpt_model(const std::filesystem::path& path,
                        const std::optional<GPTConfig>& config = std::nullopt);

/// The model's tensors in a layout, in PyTorch state_dict order. Book: the parameters and the
/// attention masks, named as the book's state dict (whose model always has `out_head.weight`: a
/// tied model writes its token embedding there). HuggingFace: the names and shapes
/// transformers' GPT2LMHeadModel saves (with the `transformer.` prefix; `lm_head.weight` only
/// when the head is not tied; zero attention biases for a model without qkv_bias).
std::vector<std::pair<std::string, torch::Tensor>> gpt_state_dict(const GPTModelImpl& model,
                                                                  WeightLayout layout);

/// Writes the model's weights: a .safetensors or .pth file (chosen by the extension) in the given
/// layout. Atomic (tmp + rename). The book's `model.load_state_dict(torch.load(path))` reads the
/// Book-layout .pth; transformers reads the HuggingFace layout.
void save_weights(const GPTModelImpl& model, const std::filesystem::path& path,
                  WeightLayout layout = WeightLayout::Book);

/// Writes a Hugging Face model folder: model.safetensors (HuggingFace layout, metadata
/// format=pt) and config.json, which GPT2LMHeadModel.from_pretrained(folder) loads.
void save_hf_gpt2(const GPTModelImpl& model, const std::filesystem::path& folder);

}  // namespace llmfs
