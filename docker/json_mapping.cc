#include "docker/json_mapping.h"

#include <Poco/Dynamic/Var.h>
#include <Poco/Exception.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include <sstream>

#include "docker/errors.h"

namespace ce::docker::json {

using Poco::JSON::Array;
using Poco::JSON::Object;

namespace {

std::string to_text(const Object& object) {
  std::ostringstream out;
  object.stringify(out);
  return out.str();
}

Poco::Dynamic::Var parse(const std::string& text, const char* what) {
  try {
    Poco::JSON::Parser parser;
    return parser.parse(text);
  } catch (const Poco::Exception& e) {
    throw EngineError(ErrorKind::protocol, std::string("the engine's ") + what +
                                               " is not valid JSON: " + e.displayText());
  }
}

Object::Ptr parse_object(const std::string& text, const char* what) {
  auto value = parse(text, what);
  if (value.type() != typeid(Object::Ptr))
    throw EngineError(ErrorKind::protocol, std::string("the engine's ") + what + " is not a JSON object");
  return value.extract<Object::Ptr>();
}

Array::Ptr parse_array(const std::string& text, const char* what) {
  auto value = parse(text, what);
  if (value.type() != typeid(Array::Ptr))
    throw EngineError(ErrorKind::protocol, std::string("the engine's ") + what + " is not a JSON array");
  return value.extract<Array::Ptr>();
}

Array::Ptr string_array(const std::vector<std::string>& values) {
  Array::Ptr array = new Array;
  for (const auto& v : values) array->add(v);
  return array;
}

Object::Ptr label_object(const Labels& labels) {
  Object::Ptr object = new Object;
  for (const auto& [k, v] : labels) object->set(k, v);
  return object;
}

// Tolerant readers: a missing or null member gives the default.
std::string get_string(const Object::Ptr& o, const std::string& key) {
  if (!o || !o->has(key) || o->isNull(key)) return {};
  try {
    return o->getValue<std::string>(key);
  } catch (const Poco::Exception&) {
    return {};
  }
}

std::int64_t get_int(const Object::Ptr& o, const std::string& key) {
  if (!o || !o->has(key) || o->isNull(key)) return 0;
  try {
    return o->getValue<std::int64_t>(key);
  } catch (const Poco::Exception&) {
    return 0;
  }
}

bool get_bool(const Object::Ptr& o, const std::string& key) {
  if (!o || !o->has(key) || o->isNull(key)) return false;
  try {
    return o->getValue<bool>(key);
  } catch (const Poco::Exception&) {
    return false;
  }
}

Object::Ptr get_object(const Object::Ptr& o, const std::string& key) {
  if (!o || !o->has(key) || o->isNull(key) || !o->isObject(key)) return nullptr;
  return o->getObject(key);
}

std::vector<std::string> get_strings(const Object::Ptr& o, const std::string& key) {
  std::vector<std::string> out;
  if (!o || !o->has(key) || o->isNull(key) || !o->isArray(key)) return out;
  auto array = o->getArray(key);
  for (std::size_t i = 0; i < array->size(); ++i) {
    if (!array->isNull(i)) out.push_back(array->getElement<std::string>(static_cast<unsigned>(i)));
  }
  return out;
}

Labels get_labels(const Object::Ptr& o, const std::string& key) {
  Labels labels;
  auto object = get_object(o, key);
  if (!object) return labels;
  for (const auto& [k, v] : *object) {
    if (!v.isEmpty()) labels[k] = v.convert<std::string>();
  }
  return labels;
}

// Mounts rather than Binds: a path may hold ':' and a missing source is an
// error instead of a directory silently created by the engine.
Array::Ptr mounts_array(const std::vector<Bind>& binds) {
  Array::Ptr mounts = new Array;
  for (const auto& bind : binds) {
    Object::Ptr mount = new Object;
    mount->set("Type", "bind");
    mount->set("Source", bind.host_path);
    mount->set("Target", bind.container_path);
    mount->set("ReadOnly", bind.access == Access::read_only);
    mounts->add(mount);
  }
  return mounts;
}

}  // namespace

std::string container_create_body(const ContainerSpec& spec) {
  Object body;
  body.set("Image", spec.image);
  if (!spec.cmd.empty()) body.set("Cmd", string_array(spec.cmd));
  if (!spec.entrypoint.empty()) body.set("Entrypoint", string_array(spec.entrypoint));
  if (!spec.env.empty()) body.set("Env", string_array(spec.env));
  if (!spec.working_dir.empty()) body.set("WorkingDir", spec.working_dir);
  if (!spec.user.empty()) body.set("User", spec.user);
  body.set("Labels", label_object(spec.labels));
  body.set("Tty", false);
  body.set("AttachStdin", false);
  body.set("AttachStdout", false);
  body.set("AttachStderr", false);
  if (spec.network_mode == "none") body.set("NetworkDisabled", true);

  Object::Ptr host = new Object;
  host->set("Mounts", mounts_array(spec.binds));
  if (!spec.network_mode.empty()) host->set("NetworkMode", spec.network_mode);
  if (spec.nano_cpus > 0) host->set("NanoCpus", spec.nano_cpus);
  if (spec.memory_bytes > 0) host->set("Memory", spec.memory_bytes);
  if (spec.pids_limit > 0) host->set("PidsLimit", spec.pids_limit);
  host->set("Init", spec.init);
  body.set("HostConfig", host);
  return to_text(body);
}

std::string exec_create_body(const ExecSpec& spec) {
  Object body;
  body.set("AttachStdin", spec.attach_stdin);
  body.set("AttachStdout", true);
  body.set("AttachStderr", true);
  body.set("Tty", spec.tty);
  body.set("Cmd", string_array(spec.cmd));
  if (!spec.env.empty()) body.set("Env", string_array(spec.env));
  if (!spec.working_dir.empty()) body.set("WorkingDir", spec.working_dir);
  if (!spec.user.empty()) body.set("User", spec.user);
  return to_text(body);
}

std::string commit_body(const CommitSpec& spec) {
  Object body;
  body.set("Labels", label_object(spec.labels));
  if (spec.cmd) body.set("Cmd", string_array(*spec.cmd));
  if (spec.entrypoint) body.set("Entrypoint", string_array(*spec.entrypoint));
  if (spec.env) body.set("Env", string_array(*spec.env));
  if (spec.working_dir) body.set("WorkingDir", *spec.working_dir);
  return to_text(body);
}

std::string label_filter(const Labels& labels) {
  Object filter;
  Array::Ptr values = new Array;
  for (const auto& [k, v] : labels) values->add(v.empty() ? k : k + "=" + v);
  filter.set("label", values);
  return to_text(filter);
}

ContainerInfo parse_container_info(const std::string& text) {
  auto o = parse_object(text, "container description");
  ContainerInfo info;
  info.id = get_string(o, "Id");
  info.name = get_string(o, "Name");
  if (!info.name.empty() && info.name[0] == '/') info.name.erase(0, 1);
  info.image_id = get_string(o, "Image");
  info.created = get_string(o, "Created");
  info.hosts_path = get_string(o, "HostsPath");
  info.resolv_conf_path = get_string(o, "ResolvConfPath");
  info.hostname_path = get_string(o, "HostnamePath");
  if (auto state = get_object(o, "State")) {
    info.state.status = get_string(state, "Status");
    info.state.running = get_bool(state, "Running");
    info.state.exit_code = static_cast<int>(get_int(state, "ExitCode"));
    info.state.pid = get_int(state, "Pid");
    info.state.started_at = get_string(state, "StartedAt");
    info.state.finished_at = get_string(state, "FinishedAt");
  }
  if (auto config = get_object(o, "Config")) {
    info.labels = get_labels(config, "Labels");
    info.env = get_strings(config, "Env");
    info.working_dir = get_string(config, "WorkingDir");
    info.user = get_string(config, "User");
  }
  if (auto host = get_object(o, "HostConfig")) {
    info.network_mode = get_string(host, "NetworkMode");
    info.nano_cpus = get_int(host, "NanoCpus");
    info.memory_bytes = get_int(host, "Memory");
    info.pids_limit = get_int(host, "PidsLimit");
    info.init = get_bool(host, "Init");
  }
  if (o->has("Mounts") && o->isArray("Mounts")) {
    auto mounts = o->getArray("Mounts");
    for (std::size_t i = 0; i < mounts->size(); ++i) {
      auto m = mounts->getObject(static_cast<unsigned>(i));
      if (!m || get_string(m, "Type") != "bind") continue;
      info.binds.push_back(Bind{get_string(m, "Source"), get_string(m, "Destination"),
                                get_bool(m, "RW") ? Access::read_write : Access::read_only});
    }
  }
  return info;
}

std::vector<ContainerSummary> parse_container_list(const std::string& text) {
  auto array = parse_array(text, "container list");
  std::vector<ContainerSummary> out;
  for (std::size_t i = 0; i < array->size(); ++i) {
    auto o = array->getObject(static_cast<unsigned>(i));
    if (!o) continue;
    ContainerSummary s;
    s.id = get_string(o, "Id");
    for (auto name : get_strings(o, "Names")) {
      if (!name.empty() && name[0] == '/') name.erase(0, 1);
      s.names.push_back(name);
    }
    s.image = get_string(o, "Image");
    s.image_id = get_string(o, "ImageID");
    s.state = get_string(o, "State");
    s.status = get_string(o, "Status");
    s.created = get_int(o, "Created");
    s.labels = get_labels(o, "Labels");
    out.push_back(std::move(s));
  }
  return out;
}

ImageInfo parse_image_info(const std::string& text) {
  auto o = parse_object(text, "image description");
  ImageInfo info;
  info.id = get_string(o, "Id");
  info.repo_tags = get_strings(o, "RepoTags");
  info.parent = get_string(o, "Parent");
  info.created = get_string(o, "Created");
  info.size = get_int(o, "Size");
  if (auto config = get_object(o, "Config")) {
    info.labels = get_labels(config, "Labels");
    info.cmd = get_strings(config, "Cmd");
    info.entrypoint = get_strings(config, "Entrypoint");
    info.env = get_strings(config, "Env");
    info.working_dir = get_string(config, "WorkingDir");
  }
  return info;
}

std::vector<ImageSummary> parse_image_list(const std::string& text) {
  auto array = parse_array(text, "image list");
  std::vector<ImageSummary> out;
  for (std::size_t i = 0; i < array->size(); ++i) {
    auto o = array->getObject(static_cast<unsigned>(i));
    if (!o) continue;
    ImageSummary s;
    s.id = get_string(o, "Id");
    s.repo_tags = get_strings(o, "RepoTags");
    s.created = get_int(o, "Created");
    s.size = get_int(o, "Size");
    s.labels = get_labels(o, "Labels");
    out.push_back(std::move(s));
  }
  return out;
}

std::size_t parse_process_count(const std::string& text) {
  auto o = parse_object(text, "process list");
  if (!o->has("Processes") || o->isNull("Processes")) return 0;
  if (!o->isArray("Processes"))
    throw EngineError(ErrorKind::protocol, "the engine's process list has no Processes array: " + text);
  return o->getArray("Processes")->size();
}

ExecState parse_exec_state(const std::string& text) {
  auto o = parse_object(text, "exec description");
  ExecState state;
  state.running = get_bool(o, "Running");
  state.exit_code = static_cast<int>(get_int(o, "ExitCode"));
  state.pid = get_int(o, "Pid");
  state.container_id = get_string(o, "ContainerID");
  return state;
}

int parse_wait_status(const std::string& text) {
  auto o = parse_object(text, "answer to wait");
  if (!o->has("StatusCode"))
    throw EngineError(ErrorKind::protocol, "the engine's answer to wait has no StatusCode: " + text);
  if (auto error = get_object(o, "Error"); error && !get_string(error, "Message").empty())
    throw EngineError(ErrorKind::other, "waiting for the container failed: " + get_string(error, "Message"));
  return static_cast<int>(get_int(o, "StatusCode"));
}

EngineVersion parse_version(const std::string& text) {
  auto o = parse_object(text, "version");
  EngineVersion v;
  v.version = get_string(o, "Version");
  v.api_version = get_string(o, "ApiVersion");
  v.min_api_version = get_string(o, "MinAPIVersion");
  v.os = get_string(o, "Os");
  v.arch = get_string(o, "Arch");
  return v;
}

std::string parse_id(const std::string& text) {
  auto o = parse_object(text, "answer");
  auto id = get_string(o, "Id");
  if (id.empty()) throw EngineError(ErrorKind::protocol, "the engine's answer has no Id: " + text);
  return id;
}

std::string parse_error_message(const std::string& text) {
  try {
    Poco::JSON::Parser parser;
    auto value = parser.parse(text);
    if (value.type() == typeid(Object::Ptr)) {
      auto message = get_string(value.extract<Object::Ptr>(), "message");
      if (!message.empty()) return message;
    }
  } catch (const Poco::Exception&) {
  }
  std::string trimmed = text;
  while (!trimmed.empty() && (trimmed.back() == '\n' || trimmed.back() == '\r')) trimmed.pop_back();
  return trimmed;
}

bool parse_pull_line(const std::string& line, PullProgress& progress, std::string& error) {
  auto o = parse_object(line, "pull progress");
  if (o->has("error") && !o->isNull("error")) {
    error = get_string(o, "error");
    if (auto detail = get_object(o, "errorDetail"); detail && error.empty())
      error = get_string(detail, "message");
    return false;
  }
  progress.id = get_string(o, "id");
  progress.status = get_string(o, "status");
  progress.progress = get_string(o, "progress");
  return true;
}

std::string job_create_body(const JobSpec& spec) {
  Object::Ptr container = new Object;
  container->set("Image", spec.image);
  container->set("Labels", label_object(spec.labels));
  if (!spec.command.empty()) container->set("Command", string_array(spec.command));
  if (!spec.env.empty()) container->set("Env", string_array(spec.env));
  if (!spec.user.empty()) container->set("User", spec.user);
  if (!spec.working_dir.empty()) container->set("Dir", spec.working_dir);
  Array::Ptr mounts = mounts_array(spec.binds);
  for (const auto& path : spec.masked) {
    Object::Ptr mask = new Object;
    mask->set("Type", "tmpfs");
    mask->set("Target", path);
    mask->set("ReadOnly", true);
    Object::Ptr options = new Object;
    options->set("SizeBytes", 4096);
    mask->set("TmpfsOptions", options);
    mounts->add(mask);
  }
  container->set("Mounts", mounts);
  container->set("Init", spec.init);
  if (!spec.capabilities_add.empty()) {
    Poco::JSON::Array::Ptr caps = new Poco::JSON::Array;
    for (const auto& c : spec.capabilities_add) caps->add(c);
    container->set("CapabilityAdd", caps);
  }

  Object::Ptr limits = new Object, reservations = new Object, resources = new Object;
  if (spec.nano_cpus > 0) limits->set("NanoCPUs", spec.nano_cpus);
  if (spec.memory_bytes > 0) limits->set("MemoryBytes", spec.memory_bytes);
  if (spec.pids_limit > 0) limits->set("Pids", spec.pids_limit);
  if (spec.reserve_nano_cpus > 0) reservations->set("NanoCPUs", spec.reserve_nano_cpus);
  if (spec.reserve_memory_bytes > 0) reservations->set("MemoryBytes", spec.reserve_memory_bytes);
  resources->set("Limits", limits);
  resources->set("Reservations", reservations);

  Object::Ptr restart = new Object;
  restart->set("Condition", "none");
  Object::Ptr placement = new Object;
  placement->set("Constraints", string_array(spec.constraints));

  Object::Ptr task = new Object;
  task->set("ContainerSpec", container);
  task->set("Resources", resources);
  task->set("RestartPolicy", restart);
  task->set("Placement", placement);
  if (!spec.network.empty()) {
    Array::Ptr networks = new Array;
    Object::Ptr network = new Object;
    network->set("Target", spec.network);
    networks->add(network);
    task->set("Networks", networks);
  }

  Object::Ptr replicated = new Object, mode = new Object;
  replicated->set("Replicas", 1);
  mode->set("Replicated", replicated);

  Object body;
  body.set("Name", spec.name);
  body.set("Labels", label_object(spec.labels));
  body.set("TaskTemplate", task);
  body.set("Mode", mode);
  return to_text(body);
}

std::string parse_service_id(const std::string& text) {
  auto o = parse_object(text, "answer to a service's creation");
  std::string id = get_string(o, "ID");
  if (id.empty()) throw EngineError(ErrorKind::protocol, "the engine's answer has no ID: " + text);
  return id;
}

EngineInfo parse_engine_info(const std::string& text) {
  auto info = parse_object(text, "system information");
  EngineInfo e;
  e.name = get_string(info, "Name");
  e.server_version = get_string(info, "ServerVersion");
  e.os = get_string(info, "OperatingSystem");
  e.architecture = get_string(info, "Architecture");
  e.cpus = get_int(info, "NCPU");
  e.memory_bytes = get_int(info, "MemTotal");
  e.containers_running = get_int(info, "ContainersRunning");
  auto o = get_object(info, "Swarm");
  e.swarm.node_id = get_string(o, "NodeID");
  e.swarm.local_node_state = get_string(o, "LocalNodeState");
  e.swarm.control_available = get_bool(o, "ControlAvailable");
  e.swarm.node_address = get_string(o, "NodeAddr");
  return e;
}

std::vector<NodeInfo> parse_node_list(const std::string& text) {
  auto array = parse_array(text, "node list");
  std::vector<NodeInfo> out;
  for (std::size_t i = 0; i < array->size(); ++i) {
    auto o = array->getObject(static_cast<unsigned>(i));
    if (!o) continue;
    NodeInfo n;
    n.id = get_string(o, "ID");
    auto spec = get_object(o, "Spec");
    n.role = get_string(spec, "Role");
    n.availability = get_string(spec, "Availability");
    n.labels = get_labels(spec, "Labels");
    auto description = get_object(o, "Description");
    n.hostname = get_string(description, "Hostname");
    auto resources = get_object(description, "Resources");
    n.nano_cpus = get_int(resources, "NanoCPUs");
    n.memory_bytes = get_int(resources, "MemoryBytes");
    n.engine_version = get_string(get_object(description, "Engine"), "EngineVersion");
    auto status = get_object(o, "Status");
    n.state = get_string(status, "State");
    n.address = get_string(status, "Addr");
    n.message = get_string(status, "Message");
    n.leader = get_bool(get_object(o, "ManagerStatus"), "Leader");
    out.push_back(std::move(n));
  }
  return out;
}

std::vector<TaskInfo> parse_task_list(const std::string& text) {
  auto array = parse_array(text, "task list");
  std::vector<TaskInfo> out;
  for (std::size_t i = 0; i < array->size(); ++i) {
    auto o = array->getObject(static_cast<unsigned>(i));
    if (!o) continue;
    TaskInfo t;
    t.id = get_string(o, "ID");
    t.service_id = get_string(o, "ServiceID");
    t.node_id = get_string(o, "NodeID");
    t.desired_state = get_string(o, "DesiredState");
    auto status = get_object(o, "Status");
    t.state = get_string(status, "State");
    t.message = get_string(status, "Message");
    t.error = get_string(status, "Err");
    t.timestamp = get_string(status, "Timestamp");
    if (auto container = get_object(status, "ContainerStatus")) {
      t.container_id = get_string(container, "ContainerID");
      // (ExitCode is there from the start, 0 while it runs: it counts once
      // the task has ended.)
      if (container->has("ExitCode") && !container->isNull("ExitCode") &&
          (t.state == "complete" || t.state == "failed"))
        t.exit_code = static_cast<int>(get_int(container, "ExitCode"));
    }
    out.push_back(std::move(t));
  }
  return out;
}

std::vector<ServiceSummary> parse_service_list(const std::string& text) {
  auto array = parse_array(text, "service list");
  std::vector<ServiceSummary> out;
  for (std::size_t i = 0; i < array->size(); ++i) {
    auto o = array->getObject(static_cast<unsigned>(i));
    if (!o) continue;
    ServiceSummary s;
    s.id = get_string(o, "ID");
    s.created_at = get_string(o, "CreatedAt");
    auto spec = get_object(o, "Spec");
    s.name = get_string(spec, "Name");
    s.labels = get_labels(spec, "Labels");
    out.push_back(std::move(s));
  }
  return out;
}

std::string parse_push_digest(const std::string& line) {
  Object::Ptr o;
  try {
    o = parse_object(line, "push progress");
  } catch (const EngineError&) {
    return {};
  }
  return get_string(get_object(o, "aux"), "Digest");
}

std::string parse_distribution_digest(const std::string& text) {
  // (An OCI descriptor: its members are lower case.)
  auto descriptor = get_object(parse_object(text, "distribution description"), "Descriptor");
  std::string digest = get_string(descriptor, "digest");
  return digest.empty() ? get_string(descriptor, "Digest") : digest;
}

std::string registry_auth(const std::string& username, const std::string& password, const std::string& server,
                          const std::string& identity_token) {
  Object o;
  if (!identity_token.empty()) {
    o.set("identitytoken", identity_token);
  } else {
    o.set("username", username);
    o.set("password", password);
  }
  if (!server.empty()) o.set("serveraddress", server);
  return to_text(o);
}

}  // namespace ce::docker::json
