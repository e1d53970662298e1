// Commands: the verbs' patches, argument errors, at-most-once per id, deadlines.
#include <gtest/gtest.h>

#include "agent/commands.h"

namespace tf::agent {
namespace {

using nlohmann::json;

TEST(CommandsTest, EachVerbIsOneMergePatchOfDesiredState) {
  auto p = planCommand({"1", "applyPoolSpec", {{"pool", "shared"}, {"spec", {{"capacityConfig", {{"minResources", json::object()}}}}}}, 0});
  ASSERT_TRUE(p) << p.status().toString();
  EXPECT_EQ(p->resource.plural, "gpupools");
  EXPECT_EQ(p->ns, "");
  EXPECT_EQ(p->name, "shared");
  EXPECT_EQ(p->patch, (json{{"spec", {{"capacityConfig", {{"minResources", json::object()}}}}}}));

  p = planCommand({"2", "scaleWorkload", {{"namespace", "ml"}, {"name", "llm"}, {"replicas", 3}}, 0});
  ASSERT_TRUE(p) << p.status().toString();
  EXPECT_EQ(p->resource.plural, "tensorfusionworkloads");
  EXPECT_EQ(p->ns, "ml");
  EXPECT_EQ(p->name, "llm");
  EXPECT_EQ(p->patch, (json{{"spec", {{"replicas", 3}}}}));
  p = planCommand({"3", "scaleWorkload", {{"name", "llm"}, {"replicas", 0}}, 0});
  ASSERT_TRUE(p);
  EXPECT_EQ(p->ns, "default");

  p = planCommand({"4", "cordonGpu", {{"gpu", "gpu-0"}}, 0});
  ASSERT_TRUE(p);
  EXPECT_EQ(p->resource.plural, "gpus");
  EXPECT_EQ(p->patch, (json{{"metadata", {{"labels", {{"tensor-fusion.ai/cordoned", "true"}}}}}}));
  p = planCommand({"5", "cordonGpu", {{"gpu", "gpu-0"}, {"cordon", false}}, 0});
  ASSERT_TRUE(p);
  EXPECT_EQ(p->patch, (json{{"metadata", {{"labels", {{"tensor-fusion.ai/cordoned", nullptr}}}}}}));
}

TEST(CommandsTest, BadArgumentsAreNamed) {
  struct Case {
    protocol::Command c;
    const char* message;
  } cases[] = {
      {{"1", "deleteEverything", json::object(), 0}, "unknown verb \"deleteEverything\""},
      {{"1", "applyPoolSpec", {{"spec", json::object()}}, 0}, "applyPoolSpec: args.pool missing"},
      {{"1", "applyPoolSpec", {{"pool", "p"}}, 0}, "applyPoolSpec: args.spec: expected an object"},
      {{"1", "applyPoolSpec", {{"pool", 5}, {"spec", json::object()}}, 0}, "args.pool: expected an object name"},
      {{"1", "scaleWorkload", {{"name", "w"}}, 0}, "scaleWorkload: args.replicas"},
      {{"1", "scaleWorkload", {{"name", "w"}, {"replicas", -1}}, 0}, "scaleWorkload: args.replicas"},
      {{"1", "scaleWorkload", {{"name", "w"}, {"replicas", "3"}}, 0}, "scaleWorkload: args.replicas"},
      {{"1", "scaleWorkload", {{"replicas", 1}}, 0}, "scaleWorkload: args.name missing"},
      {{"1", "cordonGpu", json::object(), 0}, "cordonGpu: args.gpu missing"},
      {{"1", "cordonGpu", {{"gpu", "g"}, {"cordon", "yes"}}, 0}, "cordonGpu: args.cordon: expected true or false"},
      {{"1", "cordonGpu", json::array(), 0}, "args: expected an object"},
  };
  for (const auto& c : cases) {
    auto p = planCommand(c.c);
    ASSERT_FALSE(p) << c.message;
    EXPECT_EQ(p.status().code(), Code::InvalidArgument);
    EXPECT_NE(p.status().message().find(c.message), std::string::npos) << p.status().message();
  }
}

TEST(CommandsTest, RunsEachIdOnceAndAnswersRepeatsFromMemory) {
  int calls = 0;
  CommandRunner runner([&](const PatchPlan& p) -> Result<json> {
    ++calls;
    return json{{"resourceVersion", std::to_string(100 + calls)}};
  });
  protocol::Command c{"17", "cordonGpu", {{"gpu", "gpu-0"}}, 5000};
  auto r1 = runner.run(c, 1000);
  EXPECT_TRUE(r1.ok) << r1.detail;
  EXPECT_EQ(r1.id, "17");
  EXPECT_EQ(r1.result["resourceVersion"], "101");
  EXPECT_EQ(r1.detail, "GPU gpu-0 patched");
  auto r2 = runner.run(c, 1000);  // delivered again (at least once)
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(r2.result, r1.result);
  EXPECT_EQ(runner.executions(), 1);
  runner.run({"18", "cordonGpu", {{"gpu", "gpu-1"}}, 0}, 1000);  // no deadline
  EXPECT_EQ(calls, 2);
}

TEST(CommandsTest, PastTheDeadlineOrInvalidNothingRuns) {
  int calls = 0;
  CommandRunner runner([&](const PatchPlan&) -> Result<json> {
    ++calls;
    return json::object();
  });
  auto late = runner.run({"1", "cordonGpu", {{"gpu", "g"}}, 5000}, 5001);
  EXPECT_FALSE(late.ok);
  EXPECT_NE(late.detail.find("deadline passed"), std::string::npos);
  auto bad = runner.run({"2", "scaleWorkload", {{"name", "w"}}, 0}, 0);
  EXPECT_FALSE(bad.ok);
  EXPECT_NE(bad.detail.find("args.replicas"), std::string::npos);
  EXPECT_EQ(calls, 0);
  // The deadline is inclusive: at it, the command still runs.
  EXPECT_TRUE(runner.run({"3", "cordonGpu", {{"gpu", "g"}}, 5000}, 5000).ok);
  EXPECT_EQ(calls, 1);
}

TEST(CommandsTest, AFailedPatchIsReportedWithTheApiserversWords) {
  CommandRunner runner([](const PatchPlan&) -> Result<json> {
    return Status{Code::NotFound, "404 NotFound: gpus.tensor-fusion.ai \"nope\" not found"};
  });
  auto r = runner.run({"1", "cordonGpu", {{"gpu", "nope"}}, 0}, 0);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.detail, "404 NotFound: gpus.tensor-fusion.ai \"nope\" not found");
}

TEST(CommandsTest, RemembersABoundedNumberOfIds) {
  int calls = 0;
  CommandRunner runner([&](const PatchPlan&) -> Result<json> {
    ++calls;
    return json::object();
  }, 2);
  for (const char* id : {"a", "b", "c"}) runner.run({id, "cordonGpu", {{"gpu", "g"}}, 0}, 0);
  runner.run({"c", "cordonGpu", {{"gpu", "g"}}, 0}, 0);
  EXPECT_EQ(calls, 3);
  runner.run({"a", "cordonGpu", {{"gpu", "g"}}, 0}, 0);  // forgotten: the oldest of three
  EXPECT_EQ(calls, 4);
}

}  // namespace
}  // namespace tf::agent
