#include "daemon/store/state_store.h"

#include <algorithm>
#include <chrono>
#include <set>

#include "daemon/profile/profile.h"

namespace storevisor::daemon {

namespace {

// One prepared statement, finalized on every path.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) : db_(db) {
    rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr);
  }
  ~Stmt() { sqlite3_finalize(stmt_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  bool ok() const { return rc_ == SQLITE_OK; }
  Stmt& Bind(int i, const std::string& v) {
    sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& Bind(int i, int64_t v) {
    sqlite3_bind_int64(stmt_, i, v);
    return *this;
  }
  // SQLITE_ROW, SQLITE_DONE or an error code.
  int Step() { return sqlite3_step(stmt_); }
  std::string Text(int col) const {
    const unsigned char* t = sqlite3_column_text(stmt_, col);
    return t == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(t));
  }
  int64_t Int(int col) const { return sqlite3_column_int64(stmt_, col); }
  Error Fail(std::string_view what) const {
    return Error(ErrorCode::kIo, "state store: " + std::string(what) + ": " + sqlite3_errmsg(db_));
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  int rc_;
};

constexpr char kSchema[] = R"sql(
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS workloads(
  name TEXT PRIMARY KEY, kind TEXT, spec_json TEXT, runtime_hash TEXT, spec_hash TEXT,
  desired TEXT, phase TEXT, health TEXT, pid INTEGER, started_at INTEGER, restarts INTEGER,
  exit_code INTEGER, last_error TEXT, address TEXT, driver_state TEXT);
CREATE TABLE IF NOT EXISTS events(id INTEGER PRIMARY KEY AUTOINCREMENT, ts INTEGER,
  workload TEXT, type TEXT, message TEXT);
CREATE TABLE IF NOT EXISTS generations(gen INTEGER PRIMARY KEY, digest TEXT NOT NULL,
  idem_key TEXT NOT NULL, profile_name TEXT NOT NULL, file TEXT NOT NULL, yaml TEXT NOT NULL,
  identity TEXT NOT NULL, applied_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS generations_key ON generations(idem_key);
CREATE INDEX IF NOT EXISTS generations_digest ON generations(digest);
CREATE TABLE IF NOT EXISTS ipam(network TEXT, address INTEGER, owner TEXT,
  PRIMARY KEY(network, address));
)sql";

constexpr char kColumns[] =
    "name, kind, spec_json, runtime_hash, spec_hash, desired, phase, health, pid, started_at, "
    "restarts, exit_code, last_error, address, driver_state";

WorkloadRecord ReadRecord(const Stmt& s) {
  WorkloadRecord r;
  r.name = s.Text(0);
  r.kind = s.Text(1);
  r.spec_json = s.Text(2);
  r.runtime_hash = s.Text(3);
  r.spec_hash = s.Text(4);
  r.desired = s.Text(5);
  r.phase = s.Text(6);
  r.health = s.Text(7);
  r.pid = s.Int(8);
  r.started_at_ms = s.Int(9);
  r.restarts = s.Int(10);
  r.exit_code = s.Int(11);
  r.last_error = s.Text(12);
  r.address = s.Text(13);
  r.driver_state = s.Text(14);
  return r;
}

constexpr char kGenerationColumns[] =
    "gen, digest, idem_key, profile_name, file, yaml, identity, applied_at, outcome, reason, "
    "decided_at, restores";

GenerationRecord ReadGeneration(const Stmt& s) {
  GenerationRecord g;
  g.generation = s.Int(0);
  g.digest = s.Text(1);
  g.idempotency_key = s.Text(2);
  g.profile_name = s.Text(3);
  g.file = s.Text(4);
  g.yaml = s.Text(5);
  g.identity = s.Text(6);
  g.applied_at_ms = s.Int(7);
  g.outcome = s.Text(8);
  g.reason = s.Text(9);
  g.decided_at_ms = s.Int(10);
  g.restores = s.Int(11);
  return g;
}

// One generation (or none) from a query over kGenerationColumns.
Result<std::optional<GenerationRecord>> OneGeneration(Stmt& s, std::string_view what) {
  const int rc = s.Step();
  if (rc == SQLITE_DONE) return std::optional<GenerationRecord>();
  if (rc != SQLITE_ROW) return s.Fail(what);
  return std::optional<GenerationRecord>(ReadGeneration(s));
}

Status SetMetaIn(sqlite3* db, const std::string& key, const std::string& value) {
  Stmt m(db,
         "INSERT INTO meta(key, value) VALUES(?, ?) "
         "ON CONFLICT(key) DO UPDATE SET value = excluded.value");
  if (!m.ok() || m.Bind(1, key).Bind(2, value).Step() != SQLITE_DONE) return m.Fail("set " + key);
  return Ok();
}

Status AddEventIn(sqlite3* db, const Event& e) {
  Stmt s(db,
         "INSERT INTO events(ts, workload, type, message, source, time, data) "
         "VALUES(?, ?, ?, ?, ?, ?, ?)");
  if (!s.ok()) return s.Fail("add event");
  s.Bind(1, e.ts_ms > 0 ? e.ts_ms : NowMs()).Bind(2, e.workload).Bind(3, e.type);
  s.Bind(4, e.message).Bind(5, e.source).Bind(6, e.time).Bind(7, e.data);
  if (s.Step() != SQLITE_DONE) return s.Fail("add event");
  return Ok();
}

}  // namespace

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Result<std::unique_ptr<StateStore>> StateStore::Open(const std::string& path) {
  sqlite3* db = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db != nullptr ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return Error(ErrorCode::kIo, "open state store " + path + ": " + msg);
  }
  std::unique_ptr<StateStore> store(new StateStore(db));  // NOLINT: private constructor
  sqlite3_busy_timeout(db, 5000);
  // WAL: readers never block the writer; synchronous=FULL: a committed record survives
  // a power cut too, not only a crash of the daemon.
  SV_TRY_CTX(store->Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"), path);
  SV_TRY_CTX(store->Exec(kSchema), path);
  // Columns added after the first release: a store made by an older daemon gains them.
  for (const char* column : {"source", "time", "data"}) {
    const std::string sql =
        std::string("ALTER TABLE events ADD COLUMN ") + column + " TEXT NOT NULL DEFAULT ''";
    (void)sqlite3_exec(store->db_, sql.c_str(), nullptr, nullptr, nullptr);  // exists: fine
  }
  // Generations stored before trials existed were enforced as they came: committed.
  for (const char* column :
       {"outcome TEXT NOT NULL DEFAULT 'committed'", "reason TEXT NOT NULL DEFAULT ''",
        "decided_at INTEGER NOT NULL DEFAULT 0", "restores INTEGER NOT NULL DEFAULT 0"}) {
    const std::string sql = std::string("ALTER TABLE generations ADD COLUMN ") + column;
    (void)sqlite3_exec(store->db_, sql.c_str(), nullptr, nullptr, nullptr);  // exists: fine
  }
  return store;
}

StateStore::~StateStore() { sqlite3_close(db_); }

Status StateStore::Exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err != nullptr ? err : "unknown error";
    sqlite3_free(err);
    return Error(ErrorCode::kIo, "state store: " + msg);
  }
  return Ok();
}

Status StateStore::SetMeta(const std::string& key, const std::string& value) {
  std::lock_guard lock(mu_);
  return SetMetaIn(db_, key, value);
}

Result<std::optional<std::string>> StateStore::GetMeta(const std::string& key) {
  std::lock_guard lock(mu_);
  Stmt s(db_, "SELECT value FROM meta WHERE key = ?");
  if (!s.ok()) return s.Fail("get " + key);
  int rc = s.Bind(1, key).Step();
  if (rc == SQLITE_ROW) return std::optional<std::string>(s.Text(0));
  if (rc == SQLITE_DONE) return std::optional<std::string>();
  return s.Fail("get " + key);
}

Status StateStore::Put(const WorkloadRecord& r) {
  std::lock_guard lock(mu_);
  Stmt s(db_,
         "INSERT OR REPLACE INTO workloads(name, kind, spec_json, runtime_hash, spec_hash, "
         "desired, phase, health, pid, started_at, restarts, exit_code, last_error, address, "
         "driver_state) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
  if (!s.ok()) return s.Fail("put " + r.name);
  s.Bind(1, r.name).Bind(2, r.kind).Bind(3, r.spec_json).Bind(4, r.runtime_hash);
  s.Bind(5, r.spec_hash).Bind(6, r.desired).Bind(7, r.phase).Bind(8, r.health).Bind(9, r.pid);
  s.Bind(10, r.started_at_ms).Bind(11, r.restarts).Bind(12, r.exit_code).Bind(13, r.last_error);
  s.Bind(14, r.address).Bind(15, r.driver_state);
  if (s.Step() != SQLITE_DONE) return s.Fail("put " + r.name);
  return Ok();
}

Result<std::optional<WorkloadRecord>> StateStore::Get(const std::string& name) {
  std::lock_guard lock(mu_);
  Stmt s(db_, (std::string("SELECT ") + kColumns + " FROM workloads WHERE name = ?").c_str());
  if (!s.ok()) return s.Fail("get " + name);
  int rc = s.Bind(1, name).Step();
  if (rc == SQLITE_ROW) return std::optional<WorkloadRecord>(ReadRecord(s));
  if (rc == SQLITE_DONE) return std::optional<WorkloadRecord>();
  return s.Fail("get " + name);
}

Result<std::vector<WorkloadRecord>> StateStore::List() {
  std::lock_guard lock(mu_);
  Stmt s(db_, (std::string("SELECT ") + kColumns + " FROM workloads ORDER BY name").c_str());
  if (!s.ok()) return s.Fail("list");
  std::vector<WorkloadRecord> out;
  int rc = 0;
  while ((rc = s.Step()) == SQLITE_ROW) out.push_back(ReadRecord(s));
  if (rc != SQLITE_DONE) return s.Fail("list");
  return out;
}

Status StateStore::Delete(const std::string& name) {
  std::lock_guard lock(mu_);
  Stmt s(db_, "DELETE FROM workloads WHERE name = ?");
  if (!s.ok() || s.Bind(1, name).Step() != SQLITE_DONE) return s.Fail("delete " + name);
  return Ok();
}

Status StateStore::InTransaction(const std::function<Status()>& body) {
  SV_TRY(Exec("BEGIN IMMEDIATE"));
  if (Status st = body(); !st) {
    (void)Exec("ROLLBACK");  // the transaction's own failure is what the caller needs to see
    return st;
  }
  if (Status st = Exec("COMMIT"); !st) {
    (void)Exec("ROLLBACK");
    return st;
  }
  return Ok();
}

Result<GenerationRecord> StateStore::CommitApply(
    GenerationRecord g, int keep, const std::function<Event(int64_t generation)>& make_event) {
  std::lock_guard lock(mu_);
  Status st = InTransaction([&]() -> Status {
    {
      // The meta "generation" counts on from stores made before the generations table.
      Stmt s(db_,
             "SELECT MAX(COALESCE((SELECT MAX(gen) FROM generations), 0), "
             "COALESCE((SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'generation'), 0))");
      if (!s.ok() || s.Step() != SQLITE_ROW) return s.Fail("next generation");
      g.generation = s.Int(0) + 1;
    }
    {
      Stmt sup(db_,
               "UPDATE generations SET outcome = 'superseded', decided_at = ?1, "
               "reason = 'generation ' || ?2 || ' was applied during its trial' "
               "WHERE outcome = 'trial'");
      if (!sup.ok() || sup.Bind(1, g.applied_at_ms).Bind(2, g.generation).Step() != SQLITE_DONE) {
        return sup.Fail("supersede the generation on trial");
      }
    }
    Stmt ins(db_,
             "INSERT INTO generations(gen, digest, idem_key, profile_name, file, yaml, identity, "
             "applied_at, outcome, reason, decided_at, restores) VALUES(?,?,?,?,?,?,?,?,?,?,?,?)");
    if (!ins.ok()) return ins.Fail("store generation");
    ins.Bind(1, g.generation).Bind(2, g.digest).Bind(3, g.idempotency_key).Bind(4, g.profile_name);
    ins.Bind(5, g.file).Bind(6, g.yaml).Bind(7, g.identity).Bind(8, g.applied_at_ms);
    ins.Bind(9, g.outcome).Bind(10, g.reason).Bind(11, g.decided_at_ms).Bind(12, g.restores);
    if (ins.Step() != SQLITE_DONE) return ins.Fail("store generation");
    for (const auto& [key, value] : {std::pair<std::string, std::string>{"profile", g.yaml},
                                     {"profile_file", g.file},
                                     {"generation", std::to_string(g.generation)}}) {
      SV_TRY(SetMetaIn(db_, key, value));
    }
    {
      // Pruned by count; the last committed generation stays whatever its age: it is what
      // a failed trial rolls back to.
      Stmt prune(db_,
                 "DELETE FROM generations WHERE gen <= ?1 - ?2 AND gen != COALESCE("
                 "(SELECT MAX(gen) FROM generations WHERE outcome = 'committed'), 0)");
      if (!prune.ok() ||
          prune.Bind(1, g.generation).Bind(2, static_cast<int64_t>(std::max(keep, 1))).Step() !=
              SQLITE_DONE) {
        return prune.Fail("prune generations");
      }
    }
    return AddEventIn(db_, make_event(g.generation));
  });
  if (!st) return std::move(st).error();
  return g;
}

Result<std::optional<GenerationRecord>> StateStore::FindGeneration(
    const std::string& key_or_digest) {
  std::lock_guard lock(mu_);
  Stmt s(db_, (std::string("SELECT ") + kGenerationColumns +
               " FROM generations WHERE (idem_key = ?1 AND idem_key != '') OR digest = ?1 "
               "ORDER BY (idem_key = ?1) DESC, gen DESC LIMIT 1")
                  .c_str());
  if (!s.ok()) return s.Fail("find generation");
  s.Bind(1, key_or_digest);
  return OneGeneration(s, "find generation");
}

Result<std::optional<GenerationRecord>> StateStore::GetGeneration(int64_t generation) {
  std::lock_guard lock(mu_);
  Stmt s(db_,
         (std::string("SELECT ") + kGenerationColumns + " FROM generations WHERE gen = ?").c_str());
  if (!s.ok()) return s.Fail("get generation");
  s.Bind(1, generation);
  return OneGeneration(s, "get generation");
}

Result<std::optional<GenerationRecord>> StateStore::LastCommitted(int64_t before) {
  std::lock_guard lock(mu_);
  Stmt s(db_, (std::string("SELECT ") + kGenerationColumns +
               " FROM generations WHERE gen < ? AND outcome = 'committed' "
               "ORDER BY gen DESC LIMIT 1")
                  .c_str());
  if (!s.ok()) return s.Fail("last committed generation");
  s.Bind(1, before);
  return OneGeneration(s, "last committed generation");
}

Result<std::vector<GenerationRecord>> StateStore::ListGenerations(int limit) {
  std::lock_guard lock(mu_);
  Stmt s(db_, (std::string("SELECT ") + kGenerationColumns +
               " FROM generations ORDER BY gen DESC LIMIT ?")
                  .c_str());
  if (!s.ok()) return s.Fail("list generations");
  s.Bind(1, static_cast<int64_t>(limit));
  std::vector<GenerationRecord> out;
  int rc = 0;
  while ((rc = s.Step()) == SQLITE_ROW) out.push_back(ReadGeneration(s));
  if (rc != SQLITE_DONE) return s.Fail("list generations");
  return out;
}

Status StateStore::EndTrial(int64_t generation, const std::string& outcome,
                            const std::string& reason, int64_t at_ms, int64_t restore_to,
                            const Event& event) {
  std::lock_guard lock(mu_);
  return InTransaction([&]() -> Status {
    Stmt up(db_, "UPDATE generations SET outcome = ?, reason = ?, decided_at = ? WHERE gen = ?");
    if (!up.ok() || up.Bind(1, outcome).Bind(2, reason).Bind(3, at_ms).Bind(4, generation).Step() !=
                        SQLITE_DONE) {
      return up.Fail("end the trial of generation " + std::to_string(generation));
    }
    if (restore_to != 0) {
      Stmt s(db_, "SELECT yaml, file FROM generations WHERE gen = ?");
      if (!s.ok()) return s.Fail("read generation " + std::to_string(restore_to));
      const int rc = s.Bind(1, restore_to).Step();
      if (rc != SQLITE_ROW) {
        return rc == SQLITE_DONE
                   ? Error(ErrorCode::kNotFound,
                           "state store: generation " + std::to_string(restore_to) + " is not kept")
                   : s.Fail("read generation " + std::to_string(restore_to));
      }
      SV_TRY(SetMetaIn(db_, "profile", s.Text(0)));
      SV_TRY(SetMetaIn(db_, "profile_file", s.Text(1)));
      SV_TRY(SetMetaIn(db_, "generation", std::to_string(restore_to)));
    }
    return AddEventIn(db_, event);
  });
}

Result<int64_t> StateStore::AddEvent(const Event& e) {
  std::lock_guard lock(mu_);
  SV_TRY(AddEventIn(db_, e));
  return static_cast<int64_t>(sqlite3_last_insert_rowid(db_));
}

Result<std::vector<Event>> StateStore::EventsSince(int64_t after_id, int limit) {
  std::lock_guard lock(mu_);
  Stmt s(db_,
         "SELECT id, ts, workload, type, message, source, time, data FROM events WHERE id > ? "
         "ORDER BY id LIMIT ?");
  if (!s.ok()) return s.Fail("events");
  s.Bind(1, after_id).Bind(2, static_cast<int64_t>(limit));
  std::vector<Event> out;
  int rc = 0;
  while ((rc = s.Step()) == SQLITE_ROW) {
    out.push_back(
        {s.Int(0), s.Int(1), s.Text(2), s.Text(3), s.Text(4), s.Text(5), s.Text(6), s.Text(7)});
  }
  if (rc != SQLITE_DONE) return s.Fail("events");
  return out;
}

Result<std::string> StateStore::AllocateAddress(const std::string& network,
                                                const std::string& subnet,
                                                const std::string& owner) {
  SV_ASSIGN_OR_RETURN(Ipv4Subnet net, ParseSubnet(subnet));
  const uint32_t base = net.base;
  const uint32_t size = 1u << (32 - net.prefix);
  std::lock_guard lock(mu_);
  std::set<int64_t> used;
  {
    Stmt s(db_, "SELECT address, owner FROM ipam WHERE network = ?");
    if (!s.ok()) return s.Fail("ipam");
    s.Bind(1, network);
    while (s.Step() == SQLITE_ROW) {
      if (s.Text(1) == owner) {
        uint32_t addr = static_cast<uint32_t>(s.Int(0));
        return Ipv4ToString(addr);
      }
      used.insert(s.Int(0));
    }
  }
  // .0 is the network, .1 the bridge (gateway), the last the broadcast.
  for (uint32_t i = 2; i + 1 < size; ++i) {
    uint32_t addr = base + i;
    if (used.count(addr) != 0) continue;
    Stmt s(db_, "INSERT INTO ipam(network, address, owner) VALUES(?, ?, ?)");
    if (!s.ok() || s.Bind(1, network).Bind(2, static_cast<int64_t>(addr)).Bind(3, owner).Step() !=
                       SQLITE_DONE) {
      return s.Fail("ipam");
    }
    return Ipv4ToString(addr);
  }
  return Error(ErrorCode::kResourceExhausted,
               "network " + network + " (" + subnet + ") has no free address left");
}

Status StateStore::ReleaseAddresses(const std::string& owner) {
  std::lock_guard lock(mu_);
  Stmt s(db_, "DELETE FROM ipam WHERE owner = ?");
  if (!s.ok() || s.Bind(1, owner).Step() != SQLITE_DONE) return s.Fail("ipam release");
  return Ok();
}

}  // namespace storevisor::daemon
