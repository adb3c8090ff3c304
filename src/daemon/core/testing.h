// Test doubles for the core: an in-memory state store that can be made to refuse writes
// (a full disk), and helpers to build profiles. Used by the core's unit tests and the
// deterministic simulation; never linked into storevisord.
#pragma once

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "daemon/profile/profile.h"
#include "daemon/store/store.h"

namespace storevisor::daemon::core {

class MemoryStore : public Store {
 public:
  // While set, every write fails as SQLite does on a full disk (reads go on).
  bool full = false;
  int writes_refused = 0;

  Status SetMeta(const std::string& key, const std::string& value) override {
    SV_TRY(Write());
    meta_[key] = value;
    return Ok();
  }
  Result<std::optional<std::string>> GetMeta(const std::string& key) override {
    auto it = meta_.find(key);
    if (it == meta_.end()) return std::optional<std::string>();
    return std::optional<std::string>(it->second);
  }
  Status Put(const WorkloadRecord& r) override {
    SV_TRY(Write());
    records_[r.name] = r;
    return Ok();
  }
  Result<std::optional<WorkloadRecord>> Get(const std::string& name) override {
    auto it = records_.find(name);
    if (it == records_.end()) return std::optional<WorkloadRecord>();
    return std::optional<WorkloadRecord>(it->second);
  }
  Result<std::vector<WorkloadRecord>> List() override {
    std::vector<WorkloadRecord> out;
    for (const auto& [name, r] : records_) out.push_back(r);
    return out;
  }
  Status Delete(const std::string& name) override {
    SV_TRY(Write());
    records_.erase(name);
    return Ok();
  }
  Result<int64_t> AddEvent(const Event& event) override {
    SV_TRY(Write());
    return AppendEvent(event);
  }
  Result<std::vector<Event>> EventsSince(int64_t after_id, int limit) override {
    std::vector<Event> out;
    for (const auto& e : events_) {
      if (e.id > after_id && static_cast<int>(out.size()) < limit) out.push_back(e);
    }
    return out;
  }
  Result<std::string> AllocateAddress(const std::string& network, const std::string& subnet,
                                      const std::string& owner) override {
    SV_ASSIGN_OR_RETURN(Ipv4Subnet net, ParseSubnet(subnet));
    auto& used = ipam_[network];
    for (const auto& [addr, who] : used) {
      if (who == owner) return Ipv4ToString(addr);
    }
    SV_TRY(Write());
    for (uint32_t i = 2; i + 1 < (1u << (32 - net.prefix)); ++i) {
      if (used.count(net.base + i) == 0) {
        used[net.base + i] = owner;
        return Ipv4ToString(net.base + i);
      }
    }
    return Error(ErrorCode::kResourceExhausted, "network " + network + " is full");
  }
  Status ReleaseAddresses(const std::string& owner) override {
    SV_TRY(Write());
    for (auto& [network, used] : ipam_) {
      for (auto it = used.begin(); it != used.end();) {
        it = it->second == owner ? used.erase(it) : std::next(it);
      }
    }
    return Ok();
  }
  Result<GenerationRecord> CommitApply(
      GenerationRecord g, int keep,
      const std::function<Event(int64_t generation)>& make_event) override {
    SV_TRY(Write());
    g.generation = generations_.empty() ? 1 : generations_.back().generation + 1;
    for (auto& earlier : generations_) {
      if (earlier.outcome == kOutcomeTrial) {
        earlier.outcome = kOutcomeSuperseded;
        earlier.decided_at_ms = g.applied_at_ms;
      }
    }
    generations_.push_back(g);
    int64_t last_committed = 0;
    for (const auto& k : generations_) {
      if (k.outcome == kOutcomeCommitted) last_committed = k.generation;
    }
    std::erase_if(generations_, [&](const GenerationRecord& k) {
      return k.generation <= g.generation - std::max(keep, 1) && k.generation != last_committed;
    });
    meta_["profile"] = g.yaml;
    meta_["profile_file"] = g.file;
    meta_["generation"] = std::to_string(g.generation);
    AppendEvent(make_event(g.generation));
    return g;
  }
  Result<std::optional<GenerationRecord>> FindGeneration(const std::string& key) override {
    for (auto it = generations_.rbegin(); it != generations_.rend(); ++it) {
      if ((!it->idempotency_key.empty() && it->idempotency_key == key) || it->digest == key) {
        return std::optional<GenerationRecord>(*it);
      }
    }
    return std::optional<GenerationRecord>();
  }
  Result<std::optional<GenerationRecord>> GetGeneration(int64_t generation) override {
    for (const auto& g : generations_) {
      if (g.generation == generation) return std::optional<GenerationRecord>(g);
    }
    return std::optional<GenerationRecord>();
  }
  Result<std::vector<GenerationRecord>> ListGenerations(int limit) override {
    std::vector<GenerationRecord> out;
    for (auto it = generations_.rbegin();
         it != generations_.rend() && static_cast<int>(out.size()) < limit; ++it) {
      out.push_back(*it);
    }
    return out;
  }
  Result<std::optional<GenerationRecord>> LastCommitted(int64_t before) override {
    for (auto it = generations_.rbegin(); it != generations_.rend(); ++it) {
      if (it->generation < before && it->outcome == kOutcomeCommitted) {
        return std::optional<GenerationRecord>(*it);
      }
    }
    return std::optional<GenerationRecord>();
  }
  Status EndTrial(int64_t generation, const std::string& outcome, const std::string& reason,
                  int64_t at_ms, int64_t restore_to, const Event& event) override {
    SV_TRY(Write());
    const GenerationRecord* restored = nullptr;
    for (const auto& g : generations_) {
      if (g.generation == restore_to) restored = &g;
    }
    if (restore_to != 0 && restored == nullptr) {
      return Error(ErrorCode::kNotFound,
                   "generation " + std::to_string(restore_to) + " is not kept");
    }
    for (auto& g : generations_) {
      if (g.generation != generation) continue;
      g.outcome = outcome;
      g.reason = reason;
      g.decided_at_ms = at_ms;
    }
    if (restored != nullptr) {
      meta_["profile"] = restored->yaml;
      meta_["profile_file"] = restored->file;
      meta_["generation"] = std::to_string(restore_to);
    }
    AppendEvent(event);
    return Ok();
  }

  const std::vector<GenerationRecord>& generations() const { return generations_; }
  const std::vector<Event>& events() const { return events_; }
  const std::map<std::string, WorkloadRecord>& records() const { return records_; }

 private:
  int64_t AppendEvent(Event e) {
    e.id = static_cast<int64_t>(events_.size()) + 1;
    events_.push_back(e);
    return e.id;
  }
  Status Write() {
    if (!full) return Ok();
    ++writes_refused;
    return Error(ErrorCode::kIo, "database or disk is full");
  }

  std::map<std::string, std::string> meta_;
  std::map<std::string, WorkloadRecord> records_;
  std::vector<Event> events_;
  std::vector<GenerationRecord> generations_;
  std::map<std::string, std::map<uint32_t, std::string>> ipam_;
};

}  // namespace storevisor::daemon::core
