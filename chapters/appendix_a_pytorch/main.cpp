// Appendix A: Introduction to PyTorch.
//
// Narrates sections A.2-A.8 of the book, printing what the notebook code-part1.ipynb prints
// (BOOK.md §10, CA-01 .. CA-14), with the C++ next to the book's Python where the two read
// differently: tensors (A.2), one logistic unit and its gradients by autograd (A.3, A.4), the
// NeuralNetwork multilayer perceptron (A.5), the toy dataset and its shuffled loaders (A.6), the
// training loop (A.7), saving and loading the state dict (A.8) and exercise A.3.
//
//   appA                          all sections
//   appA --section A.5            one section (Ex.A.3: exercise A.3)
//   appA --config configs/appA.yaml [train.lr=0.1 save.output_dir=runs/appA ...]
//   torchrun --nproc_per_node=2 --no-python appA ddp     §A.9.3: the loop data parallel
//
// The network, the toy data and the training loop live in toy.h, for the subcommands to come.
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "llmfs/checkpoint/checkpoint.h"
#include "llmfs/checkpoint/pth.h"
#include "llmfs/config/cli.h"
#include "llmfs/core/device.h"
#include "llmfs/core/repr.h"
#include "llmfs/core/sections.h"
#include "llmfs/core/temp_dir.h"
#include "llmfs/dist/distributed.h"
#include "llmfs/model/parameter_count.h"
#include "toy.h"

namespace fs = std::filesystem;

namespace {

using llmfs::py_float;
using llmfs::py_repr;
using llmfs::appa::NeuralNetwork;

// §A.7 turns scientific notation off before printing the probabilities (torch.set_printoptions).
const llmfs::PrintOptions kNoSci{.sci_mode = false};

struct AppAConfig {
  uint64_t seed = 123;      // before each model, the random input and the loaders (§A.5-A.7)
  int64_t num_inputs = 50;  // §A.5's NeuralNetwork(50, 3)
  int64_t num_outputs = 3;
  int64_t batch_size = 2;  // the toy loaders (§A.6, A.7)
  double lr = 0.5;         // SGD learning rate (§A.7)
  int64_t num_epochs = 3;  // §A.7
  std::string output_dir;  // §A.8: where model.pth goes; empty: a temporary folder
  // `appA ddp` (§A.9.3): the training loop data parallel under torchrun.
  std::string ddp_device = "cpu";  // cpu (Gloo) | cuda (NCCL, cuda:LOCAL_RANK) | auto
  int64_t sampler_seed = 0;        // DistributedSampler's seed (the book keeps its default, 0)
  llmfs::DistributedConfig dist;
};

AppAConfig parse_appa_config(llmfs::ConfigNode node) {
  AppAConfig c;
  node.read("seed", c.seed);
  auto model = node.child("model");
  model.read("num_inputs", c.num_inputs, llmfs::at_least(int64_t{1}));
  model.read("num_outputs", c.num_outputs, llmfs::at_least(int64_t{1}));
  auto train = node.child("train");
  train.read("batch_size", c.batch_size, llmfs::at_least(int64_t{1}));
  train.read("lr", c.lr, llmfs::greater_than(0.0));
  train.read("num_epochs", c.num_epochs, llmfs::at_least(int64_t{1}));
  node.child("save").read("output_dir", c.output_dir);
  auto ddp = node.child("ddp");
  ddp.read("device", c.ddp_device, llmfs::one_of({"cpu", "cuda", "auto"}));
  ddp.read("sampler_seed", c.sampler_seed);
  c.dist = llmfs::parse_distributed_config(ddp.child("dist"));
  return c;
}

// One line of the book's Python, and the C++ doing the same where it reads differently.
void code(std::string_view python, std::string_view cpp = {}) {
  fmt::print("Python: {}\n", python);
  if (!cpp.empty()) fmt::print("C++:    {}\n", cpp);
}

// Python's repr of a one-element tuple of tensors, as torch.autograd.grad returns.
std::string py_repr_tuple(const std::vector<torch::Tensor>& tensors) {
  std::vector<std::string> items;
  for (const auto& t : tensors) items.push_back(py_repr(t));
  return fmt::format("({}{})", fmt::join(items, ", "), items.size() == 1 ? "," : "");
}

// Python's repr of the dtypes §A.2 shows.
std::string py_repr_dtype(torch::ScalarType dtype) {
  switch (dtype) {
    case torch::kInt64:
      return "torch.int64";
    case torch::kFloat32:
      return "torch.float32";
    default:
      return fmt::format("torch.{}", c10::toString(dtype));
  }
}

// print(model) for a NeuralNetwork, as PyTorch's Module.__repr__ writes it.
std::string py_repr_module(const llmfs::appa::NeuralNetworkImpl& model) {
  std::string out = "NeuralNetwork(\n  (layers): Sequential(\n";
  for (const auto& item : model.layers->named_children()) {
    std::string layer;
    if (const auto* linear = item.value()->as<torch::nn::Linear>()) {
      const auto& o = linear->options;
      layer = fmt::format("Linear(in_features={}, out_features={}, bias={})", o.in_features(),
                          o.out_features(), o.bias() ? "True" : "False");
    } else if (item.value()->as<torch::nn::ReLU>() != nullptr) {
      layer = "ReLU()";
    } else {
      layer = item.value()->name() + "()";
    }
    out += fmt::format("    ({}): {}\n", item.key(), layer);
  }
  return out + "  )\n)";
}

// "Total number of trainable model parameters: 2213" (CA-03, CA-14).
void print_trainable_parameters(const torch::nn::Module& model) {
  fmt::print("Total number of trainable model parameters: {}\n",
             llmfs::count_trainable_parameters(model));
}

// --- A.2 Tensors ---------------------------------------------------------------------------------

void section_a_2() {
  const auto tensor0d = torch::tensor(1, torch::kLong);
  const auto tensor1d = torch::tensor({1, 2, 3}, torch::kLong);
  const auto tensor3d = torch::tensor({{{1, 2}, {3, 4}}, {{5, 6}, {7, 8}}}, torch::kLong);
  code("tensor0d = torch.tensor(1)", "torch::tensor(1, torch::kLong)");
  fmt::print("{}\n", py_repr(tensor0d));
  code("tensor1d = torch.tensor([1, 2, 3])", "torch::tensor({1, 2, 3}, torch::kLong)");
  fmt::print("{}\n", py_repr(tensor1d));
  code("tensor3d = torch.tensor([[[1, 2], [3, 4]], [[5, 6], [7, 8]]])");
  fmt::print("{}\n\n", py_repr(tensor3d));

  // Python's integer literals are int64 and its float literals float32; C++ says so.
  code("tensor1d.dtype", "tensor1d.dtype()");
  fmt::print("{}\n", py_repr_dtype(tensor1d.scalar_type()));
  const auto floatvec = tensor1d.to(torch::kFloat32);
  code("floatvec = tensor1d.to(torch.float32)", "tensor1d.to(torch::kFloat32)");
  fmt::print("{}\n\n", py_repr_dtype(floatvec.scalar_type()));

  const auto tensor2d = torch::tensor({{1, 2, 3}, {4, 5, 6}}, torch::kLong);
  code("tensor2d = torch.tensor([[1, 2, 3], [4, 5, 6]]); tensor2d.shape", "tensor2d.sizes()");
  fmt::print("{}\n", py_repr(tensor2d.sizes()));
  code("tensor2d.view(3, 2)", "tensor2d.view({3, 2})");
  fmt::print("{}\n", py_repr(tensor2d.view({3, 2})));
  code("tensor2d.T", "tensor2d.t()");
  fmt::print("{}\n", py_repr(tensor2d.t()));
  code("tensor2d @ tensor2d.T", "tensor2d.matmul(tensor2d.t())");
  fmt::print("{}\n", py_repr(tensor2d.matmul(tensor2d.t())));
}

// --- A.3, A.4 One logistic unit and its gradients ------------------------------------------------

// The book's one-unit logistic regression: z = x1 * w1 + b, a = sigmoid(z), binary cross entropy
// against the true label y = 1 (§A.3, figure A.7).
torch::Tensor logistic_loss(const torch::Tensor& w1, const torch::Tensor& b) {
  const auto y = torch::tensor({1.0f});   // true label
  const auto x1 = torch::tensor({1.1f});  // input feature
  const auto z = x1 * w1 + b;             // net input
  const auto a = torch::sigmoid(z);       // activation and output
  return torch::nn::functional::binary_cross_entropy(a, y);
}

void section_a_3() {
  const auto w1 = torch::tensor({2.2f});  // weight parameter
  const auto b = torch::tensor({0.0f});   // bias unit
  code("loss = F.binary_cross_entropy(torch.sigmoid(x1 * w1 + b), y)",
       "torch::nn::functional::binary_cross_entropy(torch::sigmoid(x1 * w1 + b), y)");
  fmt::print("{}\n", py_repr(logistic_loss(w1, b)));  // CA-01
}

void section_a_4() {
  const auto w1 = torch::tensor({2.2f}, torch::requires_grad());
  const auto b = torch::tensor({0.0f}, torch::requires_grad());
  const auto loss = logistic_loss(w1, b);

  code("grad_L_w1 = grad(loss, w1, retain_graph=True)",
       "torch::autograd::grad({loss}, {w1}, {}, /*retain_graph=*/true)");
  const auto grad_L_w1 = torch::autograd::grad({loss}, {w1}, {}, /*retain_graph=*/true);
  const auto grad_L_b = torch::autograd::grad({loss}, {b}, {}, /*retain_graph=*/true);
  fmt::print("{}\n{}\n\n", py_repr_tuple(grad_L_w1), py_repr_tuple(grad_L_b));  // CA-02

  code("loss.backward(); print(w1.grad); print(b.grad)", "loss.backward(); w1.grad(); b.grad()");
  loss.backward();
  fmt::print("{}\n{}\n", py_repr(w1.grad()), py_repr(b.grad()));  // CA-02
}

// --- A.5 Multilayer neural networks --------------------------------------------------------------

void section_a_5(const AppAConfig& cfg) {
  code(fmt::format("torch.manual_seed({0}); model = NeuralNetwork({1}, {2})", cfg.seed,
                   cfg.num_inputs, cfg.num_outputs),
       fmt::format("torch::manual_seed({0}); NeuralNetwork model({1}, {2});", cfg.seed,
                   cfg.num_inputs, cfg.num_outputs));
  torch::manual_seed(cfg.seed);
  NeuralNetwork model(cfg.num_inputs, cfg.num_outputs);
  fmt::print("{}\n\n", py_repr_module(*model));

  code("sum(p.numel() for p in model.parameters() if p.requires_grad)",
       "llmfs::count_trainable_parameters(*model)");
  print_trainable_parameters(*model);  // CA-03
  fmt::print("\n");

  const auto& first_weight = model->layers[0]->as<torch::nn::Linear>()->weight;
  code("model.layers[0].weight", "model->layers[0]->as<torch::nn::Linear>()->weight");
  fmt::print("{}\n", llmfs::py_repr_parameter(first_weight));  // CA-04
  code("model.layers[0].weight.shape");
  fmt::print("{}\n\n", py_repr(first_weight.sizes()));  // CA-05

  code(fmt::format("torch.manual_seed({}); X = torch.rand((1, {})); out = model(X)", cfg.seed,
                   cfg.num_inputs));
  torch::manual_seed(cfg.seed);
  const auto X = torch::rand({1, cfg.num_inputs});  // (1, num_inputs)
  fmt::print("{}\n", py_repr(model(X)));            // CA-06

  torch::NoGradGuard no_grad;  // Python's `with torch.no_grad():` for the rest of the section
  code("with torch.no_grad(): out = model(X)", "torch::NoGradGuard no_grad; model(X)");
  fmt::print("{}\n", py_repr(model(X)));  // CA-06
  code("with torch.no_grad(): out = torch.softmax(model(X), dim=1)");
  fmt::print("{}\n", py_repr(torch::softmax(model(X), /*dim=*/1)));  // CA-07
}

// --- A.6 Data loaders ----------------------------------------------------------------------------

// The batches of one pass, as the book's `for idx, (x, y) in enumerate(train_loader)` prints them.
void print_batches(const llmfs::DataLoader<>& loader) {
  int64_t idx = 0;
  for (const auto& [x, y] : loader) fmt::print("Batch {}: {} {}\n", ++idx, py_repr(x), py_repr(y));
}

void section_a_6(const AppAConfig& cfg) {
  const auto train_ds = llmfs::appa::toy_train_dataset();
  code("train_ds = ToyDataset(X_train, y_train); len(train_ds)",
       "auto train_ds = llmfs::appa::toy_train_dataset(); train_ds->size()");
  fmt::print("{}\n\n", train_ds->size());

  // The project's DataLoader draws from the global generator as torch's does (BOOK.md §13.2),
  // so after the seed the first pass visits 3, 1, 0, 2, 4 and the next one 0, 2, 3, 1, 4.
  code(fmt::format("torch.manual_seed({}); train_loader = DataLoader(dataset=train_ds, "
                   "batch_size={}, shuffle=True, num_workers=0)",
                   cfg.seed, cfg.batch_size),
       fmt::format("llmfs::DataLoader<> train_loader(train_ds, "
                   "llmfs::DataLoaderOptions({}).shuffle(true))",
                   cfg.batch_size));
  torch::manual_seed(cfg.seed);
  auto options = llmfs::DataLoaderOptions(cfg.batch_size).shuffle(true);
  print_batches(llmfs::appa::toy_loader(train_ds, options));  // CA-08
  fmt::print("\n");

  code("train_loader = DataLoader(..., drop_last=True)   # no new seed",
       "DataLoaderOptions(...).shuffle(true).drop_last(true)");
  print_batches(llmfs::appa::toy_loader(train_ds, options.drop_last(true)));  // CA-09
}

// --- A.7 A typical training loop -----------------------------------------------------------------

// The model, optimizer and loaders of §A.7, trained as the book does; on_step sees every step.
struct ToyRun {
  NeuralNetwork model{nullptr};
  llmfs::DataLoader<> train_loader;
  llmfs::DataLoader<> test_loader;
};

ToyRun train_toy(const AppAConfig& cfg,
                 const std::function<void(const llmfs::appa::ToyStep&)>& on_step = {}) {
  torch::manual_seed(cfg.seed);
  NeuralNetwork model(2, 2);  // two features, two classes
  torch::optim::SGD optimizer(model->parameters(), torch::optim::SGDOptions(cfg.lr));
  ToyRun run{model,
             llmfs::appa::toy_loader(
                 llmfs::appa::toy_train_dataset(),
                 llmfs::DataLoaderOptions(cfg.batch_size).shuffle(true).drop_last(true)),
             llmfs::appa::toy_loader(llmfs::appa::toy_test_dataset(),
                                     llmfs::DataLoaderOptions(cfg.batch_size))};
  llmfs::appa::train_toy_model(run.model, run.train_loader, optimizer, cfg.num_epochs, on_step);
  return run;
}

void section_a_7(const AppAConfig& cfg) {
  code(fmt::format("torch.manual_seed({}); model = NeuralNetwork(num_inputs=2, num_outputs=2); "
                   "optimizer = torch.optim.SGD(model.parameters(), lr={})",
                   cfg.seed, py_float(cfg.lr)),
       fmt::format("torch::optim::SGD optimizer(model->parameters(), "
                   "torch::optim::SGDOptions({}))",
                   py_float(cfg.lr)));
  code(
      "loss = F.cross_entropy(model(features), labels); optimizer.zero_grad(); "
      "loss.backward(); optimizer.step()");
  auto run = train_toy(cfg, [&](const llmfs::appa::ToyStep& s) {  // CA-10
    fmt::print("Epoch: {:03d}/{:03d} | Batch {:03d}/{:03d} | Train/Val Loss: {:.2f}\n", s.epoch + 1,
               cfg.num_epochs, s.batch_index + 1, s.num_batches, s.loss);
  });
  fmt::print("\n");

  const auto train_ds = llmfs::appa::toy_train_dataset();
  const auto& X_train = train_ds->features();
  const auto& y_train = train_ds->labels();
  torch::Tensor outputs;
  {
    torch::NoGradGuard no_grad;
    outputs = run.model(X_train);  // (5, 2)
  }
  code("model.eval(); with torch.no_grad(): outputs = model(X_train)");
  fmt::print("{}\n", py_repr(outputs));  // CA-11

  code(
      "torch.set_printoptions(sci_mode=False); probas = torch.softmax(outputs, dim=1); "
      "predictions = torch.argmax(probas, dim=1)",
      "py_repr(probas, {.sci_mode = false}); torch::argmax(probas, /*dim=*/1)");
  const auto probas = torch::softmax(outputs, /*dim=*/1);
  const auto predictions = torch::argmax(probas, /*dim=*/1);
  fmt::print("{}\n{}\n", py_repr(probas, kNoSci), py_repr(predictions));  // CA-12
  code("predictions == y_train");
  fmt::print("{}\n", py_repr(predictions == y_train));
  code("torch.sum(predictions == y_train)");
  fmt::print("{}\n\n", py_repr(torch::sum(predictions == y_train)));

  code("compute_accuracy(model, train_loader)",
       "llmfs::appa::compute_accuracy(model, train_loader)");
  fmt::print("{}\n", py_float(llmfs::appa::compute_accuracy(run.model, run.train_loader)));
  code("compute_accuracy(model, test_loader)");
  fmt::print("{}\n", py_float(llmfs::appa::compute_accuracy(run.model, run.test_loader)));
}

// --- A.8 Saving and loading models ---------------------------------------------------------------

void section_a_8(const AppAConfig& cfg) {
  auto run = train_toy(cfg);  // §A.7's trained model, trained again without printing
  std::optional<llmfs::TempDir> scratch;
  fs::path dir = cfg.output_dir;
  if (dir.empty()) {
    scratch.emplace("appA-A.8");
    dir = scratch->path();
  }
  fs::create_directories(dir);
  const auto path = dir / "model.pth";

  // The state dict in registration order (weight before bias), as Python's state_dict().
  std::vector<std::pair<std::string, torch::Tensor>> state;
  for (const auto& item : run.model->named_parameters())
    state.emplace_back(item.key(), item.value());
  code("torch.save(model.state_dict(), \"model.pth\")",
       "llmfs::save_pth(\"model.pth\", state)   // the torch.save format");
  llmfs::save_pth(path, state);
  spdlog::info("wrote {}", path.string());
  for (const auto& [name, tensor] : state)
    fmt::print("  {:<16} {}\n", name, py_repr(tensor.sizes()));
  fmt::print("\n");

  code(
      "model = NeuralNetwork(2, 2); model.load_state_dict(torch.load(\"model.pth\", "
      "weights_only=True))",
      "NeuralNetwork model(2, 2); llmfs::load_model_state_dict(*model, llmfs::load_pth(path), "
      "path)");
  NeuralNetwork reloaded(2, 2);
  // Throws, naming the tensor, on a missing, unknown or misshapen key.
  llmfs::load_model_state_dict(*reloaded, llmfs::load_pth(path), path.string());
  fmt::print("<All keys matched successfully>\n");

  reloaded->eval();
  torch::NoGradGuard no_grad;
  const auto X_train = llmfs::appa::toy_train_dataset()->features();
  fmt::print("Outputs on X_train equal the trained model's: {}\n",
             torch::equal(reloaded(X_train), run.model(X_train)) ? "True" : "False");
}

// --- Exercise A.3 --------------------------------------------------------------------------------

void section_exercise_a_3() {
  code(
      "model = NeuralNetwork(2, 2); sum(p.numel() for p in model.parameters() if p.requires_grad)");
  NeuralNetwork model(2, 2);
  for (const auto& item : model->named_parameters())
    fmt::print("  {:<16} {:>4}\n", item.key(), item.value().numel());
  print_trainable_parameters(*model);  // CA-14
}

// --- appA ddp: §A.9.3 -----------------------------------------------------------------------

// The training loop of §A.7 as the book's DDP-script-torchrun.py runs it: one process per device,
// started by torchrun; every process seeds, builds the network (rank 0's weights are broadcast, as
// DDP's wrapper does), reads its share of each epoch (DistributedSampler, drop_last), averages
// the gradients with the other ranks after each backward pass, and prints its own lines.
int run_ddp(const AppAConfig& cfg) {
  const llmfs::LaunchEnvironment launch = llmfs::read_launch_environment();
  const auto device = llmfs::resolve_device(llmfs::rank_device(cfg.ddp_device, launch));
  const auto group = llmfs::ProcessGroup::from_environment(cfg.dist, device.str());
  const int64_t rank = group ? group->rank() : 0;
  const int64_t world = group ? group->size() : 1;
  const std::string tag = fmt::format("[{}{}]", device.is_cuda() ? "GPU" : "CPU", rank);

  torch::manual_seed(cfg.seed);  // in every process, as the torchrun script does
  const llmfs::DataLoaderOptions train_options =
      llmfs::DataLoaderOptions(cfg.batch_size)
          .shuffle(true)  // the sampler's shuffle; the loader's own is off in the book
          .drop_last(true)
          .shard(llmfs::DataShard{.rank = rank, .world_size = world, .seed = cfg.sampler_seed});
  const auto train_loader = llmfs::appa::toy_loader(llmfs::appa::toy_train_dataset(), train_options);
  const auto test_loader = llmfs::appa::toy_loader(llmfs::appa::toy_test_dataset(),
                                                   llmfs::DataLoaderOptions(cfg.batch_size));
  if (train_loader.size() == 0) {
    llmfs::fail(
        "appA ddp: with {} processes rank {} gets fewer than train.batch_size={} examples, so no "
        "batch (the toy set has 5): use fewer processes",
        world, rank, cfg.batch_size);
  }
  llmfs::appa::NeuralNetwork model(2, 2);
  model->to(device);
  if (group) group->broadcast(model->parameters());
  torch::optim::SGD optimizer(model->parameters(), torch::optim::SGDOptions(cfg.lr));

  llmfs::appa::train_toy_model(
      model, train_loader, optimizer, cfg.num_epochs,
      [&](const llmfs::appa::ToyStep& step) {
        fmt::print("{} Epoch: {:03d}/{:03d} | Batchsize {:03d} | Train/Val Loss: {:.2f}\n", tag,
                   step.epoch + 1, cfg.num_epochs, step.batch_size, step.loss);
        std::fflush(stdout);
      },
      group.get(), device);
  model->eval();
  model->to(torch::kCPU);
  // The sampler stays at the last epoch, as in the book's script after its loop.
  const double train_accuracy =
      llmfs::appa::compute_accuracy(model, train_loader, cfg.num_epochs - 1);
  const double test_accuracy = llmfs::appa::compute_accuracy(model, test_loader);
  fmt::print("{} Training accuracy {}\n", tag, py_float(train_accuracy));
  fmt::print("{} Test accuracy {}\n", tag, py_float(test_accuracy));
  std::fflush(stdout);
  if (group) group->barrier("the end of training");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Appendix A: Introduction to PyTorch"};
  llmfs::CommonOptions common;  // --config, --log-level, --print-config, key.sub=value ...
  llmfs::add_common_options(app, common);
  std::string only_section;
  app.add_option("--section", only_section, "Run one section, e.g. A.5");
  auto* ddp = app.add_subcommand(
      "ddp", "A.9.3: the training loop data parallel, one process per device (torchrun)");
  llmfs::add_common_options(*ddp, common);
  if (const auto code = llmfs::parse_command_line(app, argc, argv)) return *code;

  return llmfs::run_main([&] {
    const auto cfg = llmfs::load_config<AppAConfig>(common, parse_appa_config);
    if (ddp->parsed()) return run_ddp(cfg);
    return llmfs::run_sections(
        {{"A.2", "Understanding tensors", section_a_2},
         {"A.3", "Seeing models as computation graphs", section_a_3},
         {"A.4", "Automatic differentiation made easy", section_a_4},
         {"A.5", "Implementing multilayer neural networks", [&] { section_a_5(cfg); }},
         {"A.6", "Setting up efficient data loaders", [&] { section_a_6(cfg); }},
         {"A.7", "A typical training loop", [&] { section_a_7(cfg); }},
         {"A.8", "Saving and loading models", [&] { section_a_8(cfg); }},
         {"Ex.A.3", "How many parameters has the network of the training loop?",
          section_exercise_a_3}},
        only_section);
  });
}
