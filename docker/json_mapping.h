// The Docker Engine API's JSON (v1.41) to and from docker/types.h.
// Readers tolerate missing fields (older or newer engines omit some) and
// throw EngineError(protocol) only when the document is not JSON at all.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "docker/types.h"

namespace ce::docker::json {

std::string container_create_body(const ContainerSpec& spec);
std::string exec_create_body(const ExecSpec& spec);
std::string commit_body(const CommitSpec& spec);
// filters={"label":["k=v",...]} for the list endpoints, URL-encoded by the caller.
std::string label_filter(const Labels& labels);

ContainerInfo parse_container_info(const std::string& text);
std::vector<ContainerSummary> parse_container_list(const std::string& text);
ImageInfo parse_image_info(const std::string& text);
std::vector<ImageSummary> parse_image_list(const std::string& text);
ExecState parse_exec_state(const std::string& text);
// The "StatusCode" of a wait answer.
int parse_wait_status(const std::string& text);
EngineVersion parse_version(const std::string& text);
// The "Id" of a create response.
std::string parse_id(const std::string& text);
// The length of "Processes" in an answer to GET /containers/{id}/top.
std::size_t parse_process_count(const std::string& text);
// The "message" of an error response; the text itself if it is not JSON.
std::string parse_error_message(const std::string& text);

// One line of a pull's progress stream. An "error" member becomes
// `error` (and the return value is then false).
bool parse_pull_line(const std::string& line, PullProgress& progress, std::string& error);

// Swarm (types.h). A job is a replicated service of one replica whose task
// Swarm never restarts: Mode.Replicated {Replicas 1}, RestartPolicy
// "none". (Not Mode.ReplicatedJob: engine 20.10 leaves a deleted job's
// containers on their nodes, running or not, moby/moby#42789; a deleted
// service's are stopped and removed.)
std::string job_create_body(const JobSpec& spec);
std::string parse_service_id(const std::string& text);  // of POST /services/create: "ID"
EngineInfo parse_engine_info(const std::string& info_text);  // GET /info
std::vector<NodeInfo> parse_node_list(const std::string& text);
std::vector<TaskInfo> parse_task_list(const std::string& text);
std::vector<ServiceSummary> parse_service_list(const std::string& text);
// The digest ("sha256:...") of one line of a push's progress stream: its
// "aux" member; empty on other lines.
std::string parse_push_digest(const std::string& line);
// GET /distribution/{name}/json: Descriptor.digest.
std::string parse_distribution_digest(const std::string& text);
// The JSON of an X-Registry-Auth header (before base64url): credentials,
// or an identity token when given.
std::string registry_auth(const std::string& username, const std::string& password, const std::string& server,
                          const std::string& identity_token = {});

}  // namespace ce::docker::json
