// Stage identity: the cache key of each setup stage.
//
// The key of stage k is the SHA-256, in lowercase hex, of this text:
//
//   key-text  = "ce-run stage key 1\n"
//               "parent " parent "\n"
//               "context " count "\n" *( item )
//               "everytime " count "\n" *( item )
//               "stage " item
//               [ "compdir-tree " tree-id "\n" ]
//   parent    = key of stage k-1, or for stage 1 the base image's content
//               ID ("sha256:..."), never its tag
//   item      = length ":" normalised-text "\n"   (length in bytes, decimal)
//   context   = every context command before stage k, in order
//   everytime = every everytime step before stage k, in order
//   compdir-tree: present when stage k, a context command before it or an
//               everytime step before it mentions COMPDIR; the Git tree ID
//               of the computation directory (or of its working tree)
//
// Normalised text drops comments and layout (script_parser.h), so editing a
// comment or whitespace changes no key; changing stage k changes key k and,
// through "parent", every key after it; appending a stage changes none
// before it.
#pragma once

#include <string>
#include <vector>

#include "stages/setup_script.h"

namespace ce::stages {

struct KeyInputs {
  std::string base_image_id;  // "sha256:..."
  std::string compdir_tree;   // Git tree ID of COMPDIR; required if a stage reads it
};

// Whether stage `step` (a stage) gets the COMPDIR tree in its key.
bool stage_reads_compdir(const SetupScript& script, const Step& step);

// One key per stage, in order (keys[0] is stage 1's).
std::vector<std::string> stage_keys(const SetupScript& script, const KeyInputs& inputs);

std::string sha256_hex(const std::string& data);

}  // namespace ce::stages
