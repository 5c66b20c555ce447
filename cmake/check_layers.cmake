# The floors of common/: each folder may include its own headers and those of the folders below
# it, never one above. A new back-arrow (say attention/ including model/) fails the build here.
#
#   cmake -DLLMFS_SOURCE_DIR=<repo> [-DLLMFS_PRINT_GRAPH=ON] -P cmake/check_layers.cmake
#
# With LLMFS_PRINT_GRAPH the folder -> folder arrows found are printed (the include graph).

# Lowest first. A folder not listed here is an error, so a new one gets a floor on purpose.
set(LLMFS_LAYERS
  core        # errors, logging, files, UTF-8, Python reprs, data files, zip
  config      # YAML configs, command-line overrides
  ops         # kernels below the modules: linear (GEMV), fused dropout, kernel options
  tokenizer   # GPT-2 BPE, SentencePiece, trained tokenizers
  data        # datasets and loaders
  attention   # the attention modules and their KV cache
  model       # GPTConfig, layers, GPTModel
  checkpoint  # weight formats (safetensors, .pth, GPT-2 layouts), checkpoint folders, model loading
  generate    # sampling, generation config, generation
  dist        # multi-process training: c10d process groups from torchrun's environment, collectives
  train       # losses, AdamW, schedules, the Trainer, training checkpoints, pretraining
  eval        # response metrics without a judge, LLM judges over HTTP (Ollama, OpenAI)
  finetune    # classification, instruction, LoRA, DPO
  chat        # chat templates, streaming generation, the terminal chat, the HTTP server
)

if(NOT LLMFS_SOURCE_DIR)
  message(FATAL_ERROR "check_layers.cmake: pass -DLLMFS_SOURCE_DIR=<repo>")
endif()
set(_common "${LLMFS_SOURCE_DIR}/common")
file(GLOB_RECURSE _files RELATIVE "${_common}" "${_common}/include/llmfs/*" "${_common}/src/*")

set(_errors "")
set(_arrows "")
foreach(_file IN LISTS _files)
  if(NOT _file MATCHES "^(include/llmfs|src)/([a-z_]+)/")
    continue()
  endif()
  set(_from "${CMAKE_MATCH_2}")
  list(FIND LLMFS_LAYERS "${_from}" _from_rank)
  if(_from_rank LESS 0)
    string(APPEND _errors "  common/${_file}: folder '${_from}' has no floor in cmake/check_layers.cmake\n")
    continue()
  endif()
  file(STRINGS "${_common}/${_file}" _includes REGEX "^[ \t]*#[ \t]*include[ \t]+\"llmfs/")
  foreach(_line IN LISTS _includes)
    if(NOT _line MATCHES "\"llmfs/([a-z_]+)/")
      continue()
    endif()
    set(_to "${CMAKE_MATCH_1}")
    if(_to STREQUAL _from)
      continue()
    endif()
    list(FIND LLMFS_LAYERS "${_to}" _to_rank)
    if(_to_rank LESS 0)
      string(APPEND _errors "  common/${_file}: includes folder '${_to}', which has no floor\n")
    elseif(_to_rank GREATER _from_rank)
      string(APPEND _errors
             "  common/${_file}: ${_from}/ includes ${_to}/, a floor above it (${_line})\n")
    endif()
    list(APPEND _arrows "${_from} -> ${_to}")
  endforeach()
endforeach()

if(LLMFS_PRINT_GRAPH)
  list(REMOVE_DUPLICATES _arrows)
  list(SORT _arrows)
  foreach(_arrow IN LISTS _arrows)
    message("${_arrow}")
  endforeach()
endif()
if(_errors)
  message(FATAL_ERROR "include back-arrows in common/ (floors, lowest first: ${LLMFS_LAYERS}):\n${_errors}")
endif()
