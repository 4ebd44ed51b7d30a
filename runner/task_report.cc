#include "runner/task_report.h"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>

#include <cstdio>
#include <sstream>

#include "stages/host_files.h"

namespace ce::runner {

using Poco::JSON::Array;
using Poco::JSON::Object;

const char* report_status(CallState state) { return to_string(state); }

namespace {

Poco::Dynamic::Var text_or_null(const std::string& s) {
  return s.empty() ? Poco::Dynamic::Var() : Poco::Dynamic::Var(s);
}

const TaskNode& first_node(const Task& task, std::size_t call) { return task.nodes[task.calls[call].nodes.front()]; }

// A call's result, with the facts of its computation when it never ran
// (skipped): the report names its computation and commit either way.
CallResult with_facts(const Task& task, std::size_t i, const TaskCallRun& run) {
  CallResult result = run.result;
  const TaskComputation& c = task.computations[task.calls[i].computation];
  auto& f = result.facts;
  if (f.name.empty()) {
    f.name = c.prepared->c.comp.name;
    f.dir = c.prepared->c.comp.dir;
    f.base_image = c.prepared->c.comp.conf.image;
    f.commit = c.prepared->identity.commit;
    f.tree = c.prepared->identity.content_tree;
    f.id = c.prepared->id;
    f.dirty = !c.prepared->identity.dirty_files.empty();
  }
  if (result.outputs.empty())
    for (std::size_t k = 0; k < run.output_paths.size(); ++k)
      result.outputs.push_back({c.contract().outputs[k], run.output_paths[k], OutputStatus::missing, {}});
  return result;
}

std::string xml_escaped(const std::string& text, bool attribute) {
  std::string out;
  for (unsigned char ch : text) {
    switch (ch) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += attribute ? "&quot;" : "\""; break;
      case '\n': out += attribute ? "&#10;" : "\n"; break;
      case '\t': out += attribute ? "&#9;" : "\t"; break;
      case '\r': out += "&#13;"; break;
      default:
        if (ch < 0x20) out += "?";  // not allowed in XML 1.0
        else out += static_cast<char>(ch);
    }
  }
  return out;
}

std::string seconds_text(double seconds) {
  char text[32];
  std::snprintf(text, sizeof text, "%.3f", seconds < 0 ? 0.0 : seconds);
  return text;
}

}  // namespace

std::string task_report_json(const Task& task, const TaskRun& run, int exit_code) {
  Object::Ptr root = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
  root->set("version", 1);
  root->set("kind", "task");
  Object::Ptr t = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
  t->set("dir", task.dir);
  Array::Ptr inputs = new Array;
  for (std::size_t k = 0; k < task.input_names.size(); ++k) {
    Object::Ptr input = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
    input->set("name", task.input_names[k]);
    input->set("path", k < run.inputs.size() ? Poco::Dynamic::Var(run.inputs[k].path) : Poco::Dynamic::Var());
    input->set("sha1", k < run.inputs.size() ? Poco::Dynamic::Var(run.inputs[k].sha1) : Poco::Dynamic::Var());
    input->set("stored", k < run.inputs.size() ? Poco::Dynamic::Var(run.inputs[k].stored) : Poco::Dynamic::Var());
    inputs->add(input);
  }
  t->set("inputs", inputs);
  root->set("task", t);
  Array::Ptr outputs = new Array;
  for (const auto& o : run.outputs) outputs->add(o);
  root->set("outputs", outputs);
  root->set("complete", run.complete);
  root->set("exit_code", exit_code);
  root->set("error", text_or_null(run.error));
  root->set("seconds", run.seconds);
  Object::Ptr counts = new Object(Poco::JSON_PRESERVE_KEY_ORDER);
  for (CallState s : {CallState::reused, CallState::computed, CallState::failed, CallState::skipped,
                      CallState::would_compute, CallState::unknown}) {
    std::size_t n = 0;
    for (const auto& c : run.calls) n += c.state == s;
    if (n || s == CallState::reused || s == CallState::computed || s == CallState::failed ||
        s == CallState::skipped)
      counts->set(report_status(s), n);
  }
  root->set("counts", counts);
  Array::Ptr calls = new Array;
  for (std::size_t i = 0; i < run.calls.size() && i < task.calls.size(); ++i) {
    const TaskCallRun& c = run.calls[i];
    CallResult result = with_facts(task, i, c);
    Object::Ptr call = report_object(result, result.exit_code);
    Array::Ptr nodes = new Array;
    for (std::size_t n : task.calls[i].nodes) nodes->add(task.nodes[n].path);
    call->set("nodes", nodes);
    call->set("status", std::string(report_status(c.state)));
    call->set("skipped_because",
              c.state == CallState::skipped && c.skipped_for != i ? Poco::Dynamic::Var(first_node(task, c.skipped_for).path)
                                                                  : Poco::Dynamic::Var());
    calls->add(call);
  }
  root->set("calls", calls);
  return report_text(root);
}

std::string task_junit_xml(const Task& task, const TaskRun& run, const std::string& timestamp) {
  std::size_t failures = 0, skipped = 0;
  for (const auto& c : run.calls) {
    failures += c.state == CallState::failed;
    skipped += c.state == CallState::skipped;
  }
  std::ostringstream cases;
  for (std::size_t i = 0; i < run.calls.size() && i < task.calls.size(); ++i) {
    const TaskCallRun& c = run.calls[i];
    const auto& computation = task.computations[task.calls[i].computation];
    std::string name = first_node(task, i).path;
    cases << "    <testcase classname=\"" << xml_escaped(computation.prepared->c.comp.name, true) << "\" name=\""
          << xml_escaped(name, true) << "\" time=\"" << seconds_text(c.result.facts.seconds) << "\">\n";
    std::string also;
    for (std::size_t k = 1; k < task.calls[i].nodes.size(); ++k)
      also += "\nthe same call is also node " + task.nodes[task.calls[i].nodes[k]].path;
    if (c.state == CallState::failed) {
      std::string message = "exit code " + std::to_string(c.result.exit_code) + " (" + to_string(c.result.outcome) + ")";
      std::string text = message + ": " + c.result.message;
      if (!c.log_tail.empty()) text += "\nlast lines of its output:\n" + c.log_tail;
      cases << "      <failure type=\"" << xml_escaped(to_string(c.result.outcome), true) << "\" message=\""
            << xml_escaped(message, true) << "\">" << xml_escaped(text, false) << "</failure>\n";
    } else if (c.state == CallState::skipped) {
      std::string why = c.skipped_for != i ? "not run: it needs " + first_node(task, c.skipped_for).path + ", which failed"
                                           : "not run: the task stopped at the first failure (--fail-fast) or was interrupted";
      cases << "      <skipped message=\"" << xml_escaped(why, true) << "\"/>\n";
    } else {
      std::string out = c.state == CallState::reused     ? "reused: the result was in the GFS"
                        : c.state == CallState::computed ? "computed"
                                                         : std::string("not run (") + report_status(c.state) + ")";
      for (std::size_t k = 0; k < c.output_paths.size(); ++k) out += "\n" + c.output_paths[k];
      cases << "      <system-out>" << xml_escaped(out + also, false) << "</system-out>\n";
    }
    cases << "    </testcase>\n";
  }
  std::string tests = std::to_string(run.calls.size());
  std::ostringstream out;
  out << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      << "<testsuites name=\"ce-run\" tests=\"" << tests << "\" failures=\"" << failures << "\" errors=\"0\" time=\""
      << seconds_text(run.seconds) << "\">\n"
      << "  <testsuite name=\"" << xml_escaped(task.dir, true) << "\" tests=\"" << tests << "\" failures=\""
      << failures << "\" errors=\"0\" skipped=\"" << skipped << "\" time=\"" << seconds_text(run.seconds)
      << "\" timestamp=\"" << xml_escaped(timestamp, true) << "\" hostname=\"" << xml_escaped(stages::host_name(), true)
      << "\">\n"
      << cases.str() << "  </testsuite>\n</testsuites>\n";
  return out.str();
}

std::string task_symbolic(const Task& task) {
  std::string out = "Inputs: ";
  for (std::size_t k = 0; k < task.input_names.size(); ++k)
    out += (k ? ", '" : "'") + task.input_names[k] + "'";
  out += "\n";
  // Iterative, so that a deep tree cannot exhaust the stack.
  struct Item {
    std::size_t node;
    bool close;
  };
  std::vector<Item> stack{{0, false}};
  std::string form;
  while (!stack.empty()) {
    Item item = stack.back();
    stack.pop_back();
    const TaskNode& n = task.nodes[item.node];
    if (item.close) {
      form += ")";
      if (item.node != 0 || n.selected) {
        form += "[";
        for (std::size_t k = 0; k < n.selection.size(); ++k) form += (k ? "," : "") + std::to_string(n.selection[k]);
        form += "]";
      }
      continue;
    }
    if (!form.empty() && form.back() != '(') form += " ";
    switch (n.kind) {
      case NodeKind::input: form += "INPUT('" + n.value + "')"; break;
      case NodeKind::literal: form += "FILE('" + n.value + "')"; break;
      case NodeKind::computation:
        form += "(" + n.value;
        stack.push_back({item.node, true});
        for (auto it = n.children.rbegin(); it != n.children.rend(); ++it) stack.push_back({*it, false});
        break;
    }
  }
  return out + form + "\n";
}

std::string task_dot(const Task& task, const TaskRun* run) {
  auto quoted = [](const std::string& s) {
    std::string out = "\"";
    for (char ch : s) {
      if (ch == '"' || ch == '\\') out += '\\';
      if (ch == '\n') {
        out += "\\n";
        continue;
      }
      out += ch;
    }
    return out + "\"";
  };
  auto source_id = [](const TaskSource& s) {
    switch (s.kind) {
      case TaskSource::Kind::input: return "input" + std::to_string(s.index);
      case TaskSource::Kind::literal: return "literal" + std::to_string(s.index);
      case TaskSource::Kind::output: return "call" + std::to_string(s.index);
    }
    return std::string();
  };
  std::ostringstream out;
  out << "digraph task {\n  rankdir=BT;\n  node [fontname=\"Helvetica\", fontsize=10];\n"
      << "  label=" << quoted(task.dir) << ";\n";
  for (std::size_t k = 0; k < task.input_names.size(); ++k)
    out << "  input" << k << " [shape=box, style=rounded, label=" << quoted("INPUT('" + task.input_names[k] + "')")
        << "];\n";
  for (std::size_t k = 0; k < task.literals.size(); ++k)
    out << "  literal" << k << " [shape=note, label=" << quoted("FILE('" + task.literals[k] + "')") << "];\n";
  for (std::size_t i = 0; i < task.calls.size(); ++i) {
    const auto& call = task.calls[i];
    std::string label = task.computations[call.computation].prepared->c.comp.name + "\n" + first_node(task, i).path;
    if (call.nodes.size() > 1) label += "\n(and " + std::to_string(call.nodes.size() - 1) + " more)";
    std::string colour = "white";
    if (run && i < run->calls.size()) {
      const TaskCallRun& c = run->calls[i];
      std::string state;
      switch (c.state) {
        case CallState::reused:
        case CallState::computed: state = "ok", colour = "palegreen"; break;
        case CallState::failed: state = "failed", colour = "salmon"; break;
        case CallState::skipped: state = "skipped", colour = "lightgrey"; break;
        case CallState::running: state = "running", colour = "lightblue"; break;
        default:
          // Not done: failed if its latest run left a log, else missing.
          if (!c.result.stderr_log.empty())
            state = "failed", colour = "salmon";
          else
            state = "missing", colour = "khaki";
      }
      label += "\n" + state;
    }
    out << "  call" << i << " [shape=box, style=filled, fillcolor=" << colour << ", label=" << quoted(label)
        << "];\n";
    for (std::size_t k = 0; k < call.inputs.size(); ++k) {
      const TaskSource& s = call.inputs[k];
      std::string edge = "slot " + std::to_string(k);
      if (s.kind == TaskSource::Kind::output) edge = "out " + std::to_string(s.output) + " → " + edge;
      out << "  " << source_id(s) << " -> call" << i << " [label=" << quoted(edge) << "];\n";
    }
  }
  out << "  task [shape=doublecircle, label=\"TASK\"];\n";
  for (std::size_t k = 0; k < task.outputs.size(); ++k)
    out << "  " << source_id(task.outputs[k]) << " -> task [label=" << quoted("output " + std::to_string(k)) << "];\n";
  out << "}\n";
  return out.str();
}

int task_exit_code(const TaskRun& run, bool dry_run) {
  if (!run.error.empty()) return exit_code::runner_error;
  if (run.cancelled) return exit_code::interrupted;
  bool failed = false, pending = false, own = false;
  for (const auto& c : run.calls) {
    failed = failed || c.state == CallState::failed || c.state == CallState::skipped;
    pending = pending || c.state == CallState::would_compute || c.state == CallState::unknown;
    // ce-run's own failure (the engine, the GFS, a refused path) rather
    // than the computation's: 125, as for a single call.
    own = own || (c.state == CallState::failed &&
                  (c.result.outcome == Outcome::failed || c.result.outcome == Outcome::engine_lost ||
                   c.result.outcome == Outcome::gfs_full));
  }
  if (failed) return own ? exit_code::runner_error : exit_code::call_failed;
  if (dry_run) return pending ? exit_code::out_of_date : 0;
  return run.complete ? 0 : exit_code::call_failed;
}

}  // namespace ce::runner
