#include "runner/service/store.h"

#include <Poco/Data/RecordSet.h>
#include <Poco/Data/SQLite/Connector.h>
#include <Poco/Data/Session.h>
#include <Poco/Data/Statement.h>
#include <stdexcept>

namespace ce::runner::service {

using namespace Poco::Data::Keywords;
using Poco::Data::RecordSet;
using Poco::Data::Statement;

namespace {

const char* const run_columns =
    "id, user, kind, repository, path, ref, commit_id, state, request, error, hook, submitted, started, ended, "
    "exit_code, attempts, outputs";

std::string text(RecordSet& rs, std::size_t column) {
  Poco::Dynamic::Var v = rs.value(column);
  return v.isEmpty() ? std::string() : v.convert<std::string>();
}

double number(RecordSet& rs, std::size_t column) {
  Poco::Dynamic::Var v = rs.value(column);
  return v.isEmpty() ? 0.0 : v.convert<double>();
}

std::int64_t integer(RecordSet& rs, std::size_t column) {
  Poco::Dynamic::Var v = rs.value(column);
  return v.isEmpty() ? 0 : v.convert<Poco::Int64>();
}

// The rows of a SELECT of run_columns.
std::vector<RunRecord> runs_of(Statement& select) {
  RecordSet rs(select);
  std::vector<RunRecord> out;
  for (bool more = rs.moveFirst(); more; more = rs.moveNext()) {
    RunRecord r;
    r.id = integer(rs, 0);
    r.user = text(rs, 1);
    r.kind = text(rs, 2);
    r.repository = text(rs, 3);
    r.path = text(rs, 4);
    r.ref = text(rs, 5);
    r.commit = text(rs, 6);
    r.state = text(rs, 7);
    r.request = text(rs, 8);
    r.error = text(rs, 9);
    r.hook = text(rs, 10);
    r.submitted = number(rs, 11);
    r.started = number(rs, 12);
    r.ended = number(rs, 13);
    r.exit_code = static_cast<int>(integer(rs, 14));
    r.attempts = static_cast<int>(integer(rs, 15));
    r.outputs = text(rs, 16);
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace

bool finished_state(const std::string& state) {
  return state == run_state::succeeded || state == run_state::failed || state == run_state::cancelled;
}

Store::Store(const std::string& path) {
  Poco::Data::SQLite::Connector::registerConnector();
  try {
    session_ = std::make_unique<Poco::Data::Session>("SQLite", path);
    auto& s = *session_;
    // WAL: readers do not wait for the writer. NORMAL: a commit survives
    // the service's crash (kill -9), not the machine's; a run's progress
    // lost so is only run again (and answered from the GFS). A new run is
    // written FULL (add_runs): on the disk before the client hears of it.
    s << "PRAGMA journal_mode=WAL", now;
    s << "PRAGMA synchronous=NORMAL", now;
    s << "PRAGMA busy_timeout=10000", now;
    s << "CREATE TABLE IF NOT EXISTS runs (id INTEGER PRIMARY KEY AUTOINCREMENT, user TEXT NOT NULL, "
         "kind TEXT NOT NULL, repository TEXT NOT NULL, path TEXT NOT NULL, ref TEXT NOT NULL, "
         "commit_id TEXT NOT NULL, state TEXT NOT NULL, request TEXT NOT NULL, error TEXT NOT NULL, "
         "hook TEXT NOT NULL, submitted REAL NOT NULL, started REAL NOT NULL, ended REAL NOT NULL, "
         "exit_code INTEGER NOT NULL, attempts INTEGER NOT NULL, outputs TEXT NOT NULL)",
        now;
    s << "CREATE INDEX IF NOT EXISTS runs_state ON runs (state, id)", now;
    s << "CREATE INDEX IF NOT EXISTS runs_repository ON runs (repository, id)", now;
    s << "CREATE TABLE IF NOT EXISTS calls (run INTEGER NOT NULL, idx INTEGER NOT NULL, node TEXT NOT NULL, "
         "computation TEXT NOT NULL, state TEXT NOT NULL, report TEXT NOT NULL, started REAL NOT NULL, "
         "ended REAL NOT NULL, needs TEXT NOT NULL, PRIMARY KEY (run, idx))",
        now;
  } catch (const Poco::Exception& e) {
    throw std::runtime_error("cannot open the service's database " + path + ": " + e.displayText());
  }
}

Store::~Store() = default;

void Store::add_run(RunRecord& run) {
  std::vector<RunRecord> runs{run};
  add_runs(runs);
  run.id = runs[0].id;
}

void Store::add_runs(std::vector<RunRecord>& runs) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto& s = *session_;
  s << "PRAGMA synchronous=FULL", now;
  s.begin();
  try {
    for (auto& r : runs) {
      s << "INSERT INTO runs (user, kind, repository, path, ref, commit_id, state, request, error, hook, submitted, "
           "started, ended, exit_code, attempts, outputs) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
          use(r.user), use(r.kind), use(r.repository), use(r.path), use(r.ref), use(r.commit), use(r.state),
          use(r.request), use(r.error), use(r.hook), use(r.submitted), use(r.started), use(r.ended), use(r.exit_code),
          use(r.attempts), use(r.outputs), now;
      Poco::Int64 id = 0;
      s << "SELECT last_insert_rowid()", into(id), now;
      r.id = id;
    }
    s.commit();
  } catch (...) {
    s.rollback();
    s << "PRAGMA synchronous=NORMAL", now;
    throw;
  }
  s << "PRAGMA synchronous=NORMAL", now;
}

void Store::update_run(const RunRecord& r) {
  std::lock_guard<std::mutex> lock(mutex_);
  *session_ << "UPDATE runs SET kind = ?, commit_id = ?, state = ?, error = ?, started = ?, ended = ?, exit_code = ?, "
               "attempts = ?, outputs = ? WHERE id = ?",
      useRef(r.kind), useRef(r.commit), useRef(r.state), useRef(r.error), useRef(r.started), useRef(r.ended), useRef(r.exit_code), useRef(r.attempts),
      useRef(r.outputs), bind(static_cast<Poco::Int64>(r.id)), now;
}

void Store::put_call(std::int64_t run, const CallRecord& c) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string needs;
  for (int n : c.needs) needs += (needs.empty() ? "" : ",") + std::to_string(n);
  *session_ << "INSERT OR REPLACE INTO calls (run, idx, node, computation, state, report, started, ended, needs) "
               "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
      bind(static_cast<Poco::Int64>(run)), useRef(c.index), useRef(c.node), useRef(c.computation), useRef(c.state),
      useRef(c.report), useRef(c.started), useRef(c.ended), useRef(needs), now;
}

void Store::clear_calls(std::int64_t run) {
  std::lock_guard<std::mutex> lock(mutex_);
  *session_ << "DELETE FROM calls WHERE run = ?", bind(static_cast<Poco::Int64>(run)), now;
}

std::optional<RunRecord> Store::run(std::int64_t id, bool with_calls) {
  std::lock_guard<std::mutex> lock(mutex_);
  Statement select(*session_);
  select << "SELECT " << run_columns << " FROM runs WHERE id = ?", bind(static_cast<Poco::Int64>(id)), now;
  auto found = runs_of(select);
  if (found.empty()) return std::nullopt;
  RunRecord r = std::move(found[0]);
  if (with_calls) {
    Statement calls(*session_);
    calls << "SELECT idx, node, computation, state, report, started, ended, needs FROM calls WHERE run = ? ORDER BY idx",
        bind(static_cast<Poco::Int64>(id)), now;
    RecordSet rs(calls);
    for (bool more = rs.moveFirst(); more; more = rs.moveNext()) {
      CallRecord c;
      c.index = static_cast<int>(integer(rs, 0));
      c.node = text(rs, 1);
      c.computation = text(rs, 2);
      c.state = text(rs, 3);
      c.report = text(rs, 4);
      c.started = number(rs, 5);
      c.ended = number(rs, 6);
      std::string needs = text(rs, 7);
      for (std::size_t at = 0; at < needs.size();) {
        std::size_t comma = needs.find(',', at);
        if (comma == std::string::npos) comma = needs.size();
        c.needs.push_back(std::stoi(needs.substr(at, comma - at)));
        at = comma + 1;
      }
      r.calls.push_back(std::move(c));
    }
  }
  return r;
}

std::vector<RunRecord> Store::runs(const RunFilter& f) {
  std::lock_guard<std::mutex> lock(mutex_);
  Statement select(*session_);
  Poco::Int64 before = f.before > 0 ? f.before : std::numeric_limits<Poco::Int64>::max();
  select << "SELECT " << run_columns
         << " FROM runs WHERE id < ? AND (? = '' OR state = ?) AND (? = '' OR repository = ?) AND "
            "(? = '' OR user = ?) ORDER BY id DESC LIMIT ?",
      bind(before), useRef(f.state), useRef(f.state), useRef(f.repository), useRef(f.repository), useRef(f.user), useRef(f.user),
      useRef(f.limit), now;
  return runs_of(select);
}

std::vector<RunRecord> Store::unfinished() {
  std::lock_guard<std::mutex> lock(mutex_);
  Statement select(*session_);
  select << "SELECT " << run_columns << " FROM runs WHERE state IN ('queued', 'running') ORDER BY id", now;
  return runs_of(select);
}

std::map<std::string, std::int64_t> Store::count_by_state() {
  std::lock_guard<std::mutex> lock(mutex_);
  Statement select(*session_);
  select << "SELECT state, COUNT(*) FROM runs GROUP BY state", now;
  RecordSet rs(select);
  std::map<std::string, std::int64_t> out;
  for (const char* s : run_state::all) out[s] = 0;
  for (bool more = rs.moveFirst(); more; more = rs.moveNext()) out[text(rs, 0)] = integer(rs, 1);
  return out;
}

}  // namespace ce::runner::service
