#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "llmfs/config/config_node.h"
#include "llmfs/data/data_loader.h"
#include "llmfs/data/dataset.h"
#include "llmfs/tokenizer/tokenizer.h"

namespace llmfs {

/// Where the texts of a classification task come from and how they are prepared: the `data:`
/// section of configs/ch06/*.yaml. The defaults are the book's spam classifier (chapter 6).
///
///   data:
///     file: SMSSpamCollection    # a data file name (llmfs::input_file) or a path
///     format: sms                # sms (label<TAB>text, no header) | csv | tsv (header row)
///     read_mode: book            # sms only: book (pandas' quoting) | plain (every line a row)
///     text_column: Text
///     label_column: Label
///     classes: [ham, spam]       # label id = index in this list
///     balance: true              # undersample every class to the smallest class's count
///     seed: 123                  # numpy RandomState seed for balancing and splitting
///     train_frac: 0.7
///     validation_frac: 0.1       # test = the rest
///     max_length: null           # padding length; null: the longest training encoding
///     pad_token_id: 50256
///     trim_padding: false        # true: each batch only as long as its longest text
struct ClassificationDataConfig {
  std::string file = "SMSSpamCollection";
  std::string format = "sms";
  std::string read_mode = "book";
  std::string text_column = "Text";
  std::string label_column = "Label";
  std::vector<std::string> classes = {"ham", "spam"};  // the book: ham 0, spam 1
  bool balance = true;                                 // the book's create_balanced_dataset
  int64_t seed = 123;
  double train_frac = 0.7;
  double validation_frac = 0.1;
  std::optional<int64_t> max_length;  // 120 in the book (the longest training encoding)
  int64_t pad_token_id = 50256;
  /// Cut every batch to its longest text (the trailing columns that are padding in every row):
  /// with batch size 1, no padding at all (the book's bonus experiment); with "last" pooling
  /// the classifying position moves onto the text. Off in the book.
  bool trim_padding = false;
};

/// Reads a `data:` section (every key optional; `defaults` are the chapter's). Config errors for
/// an unknown format or read mode, fewer than two classes, duplicate or empty class names,
/// fractions outside (0, 1) or summing to 1 or more, a seed outside 0 … 2^32 − 1, max_length < 1,
/// a negative pad id, and text/label columns other than Text/Label for the sms format.
ClassificationDataConfig parse_classification_data_config(
    ConfigNode node, const ClassificationDataConfig& defaults = {});

/// One labelled text and where it came from.
struct LabeledText {
  std::string text;
  int64_t label = 0;  // index into the classes
  int64_t row = 0;    // 0-based row index in the file as read (pandas' index)
  int64_t line = 0;   // 1-based file line where the row starts
};

/// The three parts of a prepared dataset (the book's train.csv, validation.csv, test.csv) and the
/// class names, index = label id.
struct ClassificationSplits {
  std::vector<LabeledText> train, validation, test;
  std::vector<std::string> classes;
};

/// Reads the labelled texts of config.file in file order. A label is a class name, or the class
/// id written as a decimal number (the split files of write_split_csvs). llmfs::Error
/// "file:line: ..." for a missing column, a label that is not one of the classes, an empty text,
/// and the reading errors of read_sms_collection / read_csv.
std::vector<LabeledText> read_labeled_texts(const ClassificationDataConfig& config);

/// Undersamples every class to the count m of the smallest one (the book's
/// create_balanced_dataset, generalised to N classes): for each class id in order, a class with
/// more than m rows contributes the rows NumpyRandomState(seed).choice(count, m) picks from it
/// (a fresh generator per class, in sampling order), a class with m rows all its rows in input
/// order; the parts are concatenated in class order. llmfs::Error when a class has no rows, a
/// label is outside [0, num_classes), or the seed is outside 0 … 2^32 − 1.
std::vector<LabeledText> balance_classes(const std::vector<LabeledText>& texts, int64_t num_classes,
                                         int64_t seed);

/// The book's random_split: shuffles the rows as pandas' df.sample(frac=1, random_state=seed)
/// (NumpyRandomState(seed).permutation(n)), then train = the first int(n · train_frac) rows,
/// validation = the next int(n · validation_frac), test = the rest. `classes` of the result is
/// left empty. llmfs::Error when a part comes out empty or the fractions are out of range.
ClassificationSplits split_dataset(std::vector<LabeledText> texts, double train_frac,
                                   double validation_frac, int64_t seed);

/// read_labeled_texts, balance_classes (when config.balance), split_dataset; the classes of the
/// config. llmfs::Error naming the class when a class has no rows in the file.
ClassificationSplits prepare_classification_data(const ClassificationDataConfig& config);

/// Writes dir/train.csv, dir/validation.csv and dir/test.csv as the book does: header
/// "Label,Text", the label as its id, the text quoted where needed (write_csv).
void write_split_csvs(const std::filesystem::path& dir, const ClassificationSplits& splits);

/// The book's SpamDataset (§6.3) for any labelled texts: every text encoded with the tokenizer
/// (plain encode, no special tokens allowed, as the book), cut to max_length when one is given,
/// and right-padded with pad_token_id to the padding length: max_length, or the longest encoding
/// when none is given (at most context_length: longer texts are cut to it, with one warning).
/// get(i) is (input ids (T) int64, 0-dim int64 label).
///
///   ClassificationDataset train(splits.train, tokenizer, std::nullopt, 50256);  // T = 120
///   ClassificationDataset val(splits.validation, tokenizer, train.max_length(), 50256);
class ClassificationDataset : public Dataset<Example> {
 public:
  /// Texts longer than max_length are truncated, and one warning per dataset says how many.
  /// llmfs::Error for max_length < 1, no texts without a max_length, a text the tokenizer
  /// refuses (naming its row and line), or a padding length above context_length when given.
  ClassificationDataset(const std::vector<LabeledText>& texts, const Tokenizer& tokenizer,
                        std::optional<int64_t> max_length, int64_t pad_token_id,
                        std::optional<int64_t> context_length = std::nullopt);

  /// The padding length T of every input.
  int64_t max_length() const { return max_length_; }

  int64_t size() const override { return static_cast<int64_t>(labels_.size()); }

  /// (input ids (T) int64, label as a 0-dim int64 tensor) of example index.
  Example get(int64_t index) const override;

  /// How many texts were longer than max_length and cut.
  int64_t truncated() const { return truncated_; }

 private:
  torch::Tensor inputs_;  // (N, T) int64
  std::vector<int64_t> labels_;
  int64_t max_length_ = 0;
  int64_t truncated_ = 0;
};

/// The three loaders of chapter 6 and their padding length.
/// stack_examples, then the trailing columns that are pad_token_id in every row removed (at least
/// one column is kept): dynamic padding.
Batch stack_trimmed(std::vector<Example>&& examples, int64_t pad_token_id);

struct ClassificationLoaders {
  DataLoader<> train, validation, test;
  int64_t max_length = 0;
};

/// The book's order (§6.3): the datasets (training padding length: config.max_length or the
/// longest training encoding; validation and test padded to the same length), then
/// torch::manual_seed(torch_seed), then the loaders: train with shuffling and drop_last,
/// validation and test with neither. llmfs::Error when the padding length exceeds context_length
/// or drop_last leaves the training loader without a batch.
ClassificationLoaders make_classification_loaders(const ClassificationSplits& splits,
                                                  const Tokenizer& tokenizer,
                                                  const ClassificationDataConfig& config,
                                                  int64_t batch_size, int64_t torch_seed,
                                                  std::optional<int64_t> context_length);

}  // namespace llmfs
