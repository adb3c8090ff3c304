#include "api/json.h"

#include <gtest/gtest.h>

namespace storevisor::api {
namespace {

TEST(ApiJsonTest, WorkloadRoundTripsWithTheDaemonsFieldNames) {
  WorkloadStatus w;
  w.name = "kv";
  w.kind = "container";
  w.state = "running";
  w.pid = 42;
  w.memory_bytes = 1u << 20;
  w.cpu_percent = 2.5;
  w.desired = "running";
  const auto j = ToJson(w);
  EXPECT_EQ(j["uptimeMs"], 0);
  EXPECT_EQ(j["memoryBytes"], 1u << 20);
  EXPECT_EQ(j["exitCode"], -1);
  auto back = WorkloadStatusFromJson(j);
  ASSERT_TRUE(back.has_value()) << back.error().message();
  EXPECT_EQ(back->name, "kv");
  EXPECT_EQ(back->pid, 42);
  EXPECT_EQ(back->cpu_percent, 2.5);
  EXPECT_EQ(back->memory_bytes, 1u << 20);
}

TEST(ApiJsonTest, MissingFieldsKeepTheirDefaults) {
  auto w = WorkloadStatusFromJson(nlohmann::json{{"name", "a"}});
  ASSERT_TRUE(w.has_value());
  EXPECT_EQ(w->exit_code, -1);
  EXPECT_EQ(w->state, "");
  auto v = VersionInfoFromJson(nlohmann::json::object());
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->api, "v1");
}

TEST(ApiJsonTest, WrongTypesAreErrorsNamingTheField) {
  auto w = WorkloadStatusFromJson(nlohmann::json{{"name", 3}});
  ASSERT_FALSE(w.has_value());
  EXPECT_EQ(w.error().code(), ErrorCode::kGuestFault);
  EXPECT_EQ(w.error().message(), "workload.name: expected a string");
  EXPECT_FALSE(WorkloadListFromJson(nlohmann::json{{"a", 1}}).has_value());
  EXPECT_FALSE(WorkloadListFromJson(nlohmann::json::array({1})).has_value());
  auto a = ApplyResponseFromJson(nlohmann::json{{"steps", {{{"action", 1}}}}});
  ASSERT_FALSE(a.has_value());
  EXPECT_EQ(a.error().message(), "apply.steps[].action: expected a string");
  EXPECT_FALSE(ApplyResponseFromJson(nlohmann::json{{"held", {1, 2}}}).has_value());
  EXPECT_FALSE(EventRecordFromJson(nlohmann::json{{"data", "x"}}).has_value());
  EXPECT_FALSE(ParseJson("{").has_value());
  EXPECT_FALSE(ParseJson("").has_value());
}

TEST(ApiJsonTest, ImagesInUseRoundTrips) {
  ImagesInUse in;
  in.image_root = "/var/lib/storevisor/images";
  in.images = {{"storevisor/inventory:1", {"inventory", "till"}}};
  auto back = ImagesInUseFromJson(ParseJson(Dump(ToJson(in))).value());
  ASSERT_TRUE(back.has_value()) << back.error().message();
  EXPECT_EQ(back->image_root, in.image_root);
  EXPECT_EQ(back->image_dir, "");
  ASSERT_EQ(back->images.size(), 1u);
  EXPECT_EQ(back->images[0].image, "storevisor/inventory:1");
  EXPECT_EQ(back->images[0].workloads, (std::vector<std::string>{"inventory", "till"}));
  auto bad = ImagesInUseFromJson(nlohmann::json{{"images", {{{"workloads", "x"}}}}});
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().message(), "images[].workloads: expected a list of strings");
}

TEST(ApiJsonTest, ApplyAndEvents) {
  ApplyResponse a;
  a.generation = 7;
  a.steps.push_back({"create", "kv", "new"});
  a.held = {"pos"};
  auto back = ApplyResponseFromJson(ToJson(a));
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->generation, 7);
  ASSERT_EQ(back->steps.size(), 1u);
  EXPECT_EQ(back->steps[0].reason, "new");
  EXPECT_EQ(back->held, std::vector<std::string>{"pos"});
  ApplyRequest dry;
  dry.dry_run = true;
  EXPECT_EQ(ToJson(dry)["dryRun"], true);

  EventRecord e;
  e.id = 3;
  e.source = "vision";
  e.type = "queue";
  e.data = R"({"n":2})";
  auto j = ToJson(e);
  EXPECT_EQ(j["data"]["n"], 2);
  EXPECT_EQ(j["time_ms"], 0);
  auto eb = EventRecordFromJson(j);
  ASSERT_TRUE(eb.has_value());
  EXPECT_EQ(eb->data, R"({"n":2})");
  EventRecord bad;
  bad.source = "x";
  bad.data = "not json";
  EXPECT_TRUE(ToJson(bad)["data"].is_object());
}

TEST(ApiJsonTest, GenerationsRoundTripWithTheirOutcome) {
  GenerationInfo g;
  g.generation = 5;
  g.profile = "demo";
  g.outcome = "rolled-back";
  g.reason = "kv exited with status 1";
  g.decided_at_ms = 99;
  g.restores = 2;
  g.current = true;
  auto back = GenerationListFromJson(ToJson(std::vector<GenerationInfo>{g, GenerationInfo{}}));
  ASSERT_TRUE(back.has_value()) << back.error().message();
  ASSERT_EQ(back->size(), 2u);
  EXPECT_EQ((*back)[0].outcome, "rolled-back");
  EXPECT_EQ((*back)[0].reason, "kv exited with status 1");
  EXPECT_EQ((*back)[0].decided_at_ms, 99);
  EXPECT_EQ((*back)[0].restores, 2);
  EXPECT_TRUE((*back)[0].current);
  EXPECT_FALSE((*back)[1].current);
  EXPECT_EQ(ToJson(RollbackRequest{3, "k"}), nlohmann::json({{"generation", 3}}));
  auto not_list = GenerationListFromJson(nlohmann::json::object());
  ASSERT_FALSE(not_list.has_value());
  EXPECT_EQ(not_list.error().code(), ErrorCode::kGuestFault);
  auto bad =
      GenerationListFromJson(nlohmann::json::parse(R"([{"generation":1},{"current":"yes"}])"));
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.error().message().find("generations[1]"), std::string::npos)
      << bad.error().message();
}

TEST(ApiJsonTest, ErrorsAndKeys) {
  EXPECT_EQ(ErrorCodeFromName("not-found"), ErrorCode::kNotFound);
  EXPECT_EQ(ErrorCodeFromName("bogus"), ErrorCode::kInternal);
  EXPECT_EQ(ErrorJson(Error(ErrorCode::kConflict, "busy")),
            R"({"code":"conflict","error":"busy"})");
  EXPECT_TRUE(ValidIdempotencyKey("cli-0a.b_c"));
  EXPECT_FALSE(ValidIdempotencyKey(""));
  EXPECT_FALSE(ValidIdempotencyKey("a b"));
  EXPECT_FALSE(ValidIdempotencyKey(std::string(129, 'a')));
  EXPECT_TRUE(ValidIdempotencyKey(std::string(128, 'a')));
}

}  // namespace
}  // namespace storevisor::api
