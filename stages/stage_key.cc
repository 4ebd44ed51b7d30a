#include "stages/stage_key.h"

#include <Poco/DigestEngine.h>
#include <Poco/SHA2Engine.h>

#include <stdexcept>

namespace ce::stages {

std::string sha256_hex(const std::string& data) {
  Poco::SHA2Engine engine(Poco::SHA2Engine::SHA_256);
  engine.update(data);
  return Poco::DigestEngine::digestToHex(engine.digest());
}

namespace {
void add_item(std::string& text, const std::string& item) {
  text += std::to_string(item.size()) + ":" + item + "\n";
}
}  // namespace

bool stage_reads_compdir(const SetupScript& script, const Step& step) {
  if (step.reads_compdir || script.context_reads_compdir(step.unit)) return true;
  for (const auto& other : script.steps) {
    if (other.index >= step.index) break;
    if (other.kind == StepKind::everytime && other.reads_compdir) return true;
  }
  return false;
}

std::vector<std::string> stage_keys(const SetupScript& script, const KeyInputs& inputs) {
  if (inputs.base_image_id.empty()) throw std::invalid_argument("stage_keys: no base image ID");
  std::vector<std::string> keys;
  std::string parent = inputs.base_image_id;
  for (const auto& step : script.steps) {
    if (step.kind != StepKind::stage) continue;
    std::string text = "ce-run stage key 1\nparent " + parent + "\n";
    std::vector<const std::string*> context;
    for (auto u : script.context_units)
      if (u < step.unit) context.push_back(&script.parsed.units[u].normalized);
    text += "context " + std::to_string(context.size()) + "\n";
    for (const auto* c : context) add_item(text, *c);
    std::vector<const std::string*> everytime;
    for (const auto& other : script.steps)
      if (other.index < step.index && other.kind == StepKind::everytime) everytime.push_back(&other.text);
    text += "everytime " + std::to_string(everytime.size()) + "\n";
    for (const auto* e : everytime) add_item(text, *e);
    text += "stage ";
    add_item(text, step.text);
    if (stage_reads_compdir(script, step)) {
      if (inputs.compdir_tree.empty())
        throw std::invalid_argument("stage_keys: stage " + std::to_string(step.stage_number) +
                                    " reads COMPDIR but no tree ID was given");
      text += "compdir-tree " + inputs.compdir_tree + "\n";
    }
    parent = sha256_hex(text);
    keys.push_back(parent);
  }
  return keys;
}

}  // namespace ce::stages
