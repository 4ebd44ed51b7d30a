#include "runner/report.h"

#include "runner/call.h"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <unistd.h>

namespace ce::runner {

using Poco::JSON::Array;
using Poco::JSON::Object;

namespace {
Poco::Dynamic::Var text_or_null(const std::string& s) {
  return s.empty() ? Poco::Dynamic::Var() : Poco::Dynamic::Var(s);
}
}  // namespace

std::string report_json(const CallResult& result, int exit_code) {
  return report_text(report_object(result, exit_code));
}

std::string report_text(const Poco::JSON::Object::Ptr& report) {
  std::ostringstream out;
  report->stringify(out, 2);
  return out.str() + "\n";
}

Poco::JSON::Object::Ptr report_object(const CallResult& result, int exit_code) {
  const ReportFacts& f = result.facts;
  Object::Ptr root = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
  root->set("version", 1);
  Object::Ptr computation = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
  computation->set("name", f.name);
  computation->set("dir", f.dir);
  computation->set("commit", text_or_null(f.commit));
  computation->set("tree", text_or_null(f.tree));
  computation->set("id", text_or_null(f.id));
  computation->set("dirty", f.dirty);
  root->set("computation", computation);
  Object::Ptr image = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
  image->set("base", text_or_null(f.base_image));
  image->set("base_id", text_or_null(f.base_image_id));
  image->set("final_key", text_or_null(f.final_key));
  root->set("image", image);
  Object::Ptr container = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
  container->set("id", text_or_null(f.container_id));
  container->set("created", f.container_created);
  root->set("container", container);
  if (f.attempts > 0) {
    Object::Ptr fleet = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
    fleet->set("node", text_or_null(f.node));
    fleet->set("image", text_or_null(f.job_image));
    fleet->set("attempts", f.attempts);
    fleet->set("adopted", f.adopted);
    root->set("fleet", fleet);
  }
  Array::Ptr list = new Array;
  for (const auto& s : f.steps) {
    Object::Ptr step = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
    step->set("index", s.index);
    step->set("kind", s.kind);
    step->set("first_line", s.first_line);
    step->set("last_line", s.last_line);
    step->set("key", text_or_null(s.key));
    step->set("status", s.status);
    step->set("seconds", s.seconds);
    list->add(step);
  }
  root->set("steps", list);
  Array::Ptr inputs_list = new Array;
  for (const auto& i : f.inputs) {
    Object::Ptr input = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
    input->set("name", i.name);
    input->set("path", i.path);
    input->set("sha1", i.sha1);
    inputs_list->add(input);
  }
  root->set("inputs", inputs_list);
  Array::Ptr outputs_list = new Array;
  for (const auto& o : result.outputs) {
    Object::Ptr output = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
    output->set("name", o.name);
    output->set("path", o.path);
    // The report's words: a result found (or verified) is "cached".
    output->set("status", std::string(to_string(o.status == OutputStatus::verified ? OutputStatus::cached : o.status)));
    output->set("sha256", text_or_null(o.sha256));
    outputs_list->add(output);
  }
  root->set("outputs", outputs_list);
  root->set("exit_code", exit_code);
  root->set("outcome", std::string(to_string(result.outcome)));
  root->set("error", text_or_null(result.message));
  root->set("seconds", f.seconds);
  Poco::JSON::Object::Ptr timings = new Poco::JSON::Object(Poco::JSON_PRESERVE_KEY_ORDER);
  for (const auto& [phase, phase_seconds] : f.phases) timings->set(phase, phase_seconds);
  root->set("phases", timings);
  Object::Ptr logs = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
  logs->set("stdout", text_or_null(result.stdout_log));
  logs->set("stderr", text_or_null(result.stderr_log));
  root->set("logs", logs);
  return root;
}

void write_report(const std::string& path, const std::string& text, const Invoker& invoker) {
  try {
    as_invoker(invoker, [&] {
      stages::write_atomically(path, text, 0644);
      return -1;
    });
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot write the report " + path + ": " + e.what());
  }
}

int exit_code_for(const CallResult& result) {
  switch (result.outcome) {
    case Outcome::cached:
    case Outcome::computed:
    case Outcome::verified:
      return 0;
    case Outcome::planned:  // -n: the call would run
      return exit_code::out_of_date;
    case Outcome::command_failed:
      return result.exit_code;
    case Outcome::timed_out:
      return exit_code::timed_out;
    case Outcome::cancelled:
      return exit_code::interrupted;
    case Outcome::no_exec:
      return exit_code::not_found;
    case Outcome::not_executable:
      return exit_code::not_executable;
    case Outcome::corrupt:
      return 1;
    case Outcome::engine_lost:
    case Outcome::gfs_full:
    case Outcome::setup_failed:
    case Outcome::failed:
      return exit_code::runner_error;
  }
  return exit_code::runner_error;
}

}  // namespace ce::runner
