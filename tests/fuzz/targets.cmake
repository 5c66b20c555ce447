# The fuzz targets: tests/fuzz/fuzz_<name>.cpp each, regressions in tests/fuzz/regressions/<name>/.
set(LLMFS_FUZZ_TARGETS bpe config tokenizer_files safetensors pth instruction_data text_table serve_request serve_gate)
