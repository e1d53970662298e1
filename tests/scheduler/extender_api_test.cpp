#include <gtest/gtest.h>

#include "scheduler/extender_api.h"

namespace tf::scheduler {
namespace {

// What kube-scheduler 1.20 sends with nodeCacheCapable: true (Go field names, no JSON tags).
const char* kArgs = R"({"Pod":{"metadata":{"name":"p","namespace":"ns","uid":"u1"}},"Nodes":null,"NodeNames":["n1","n2"]})";

TEST(ExtenderApi, ArgsWithNodeNames) {
  auto a = parseExtenderArgs(kArgs);
  ASSERT_TRUE(a) << a.status().toString();
  EXPECT_EQ(a->pod["metadata"]["name"], "p");
  EXPECT_EQ(a->nodeNames, (std::vector<std::string>{"n1", "n2"}));
  EXPECT_FALSE(a->nodes);
  FilterResult r;
  r.nodeNames = {"n1"};
  r.failedNodes["n2"] = "no GPU";
  EXPECT_EQ(encodeFilterResult(r, *a),
            nlohmann::json::parse(R"({"Nodes":null,"NodeNames":["n1"],"FailedNodes":{"n2":"no GPU"},"Error":""})"));
  r.nodeNames.clear();  // none fit: an empty list, not null (null means "not cache capable")
  EXPECT_EQ(encodeFilterResult(r, *a)["NodeNames"], nlohmann::json::array());
}

TEST(ExtenderApi, ArgsWithNodeList) {
  auto a = parseExtenderArgs(
      R"({"Pod":{},"Nodes":{"metadata":{},"items":[{"metadata":{"name":"n1"}},{"metadata":{"name":"n2"}}]},"NodeNames":null})");
  ASSERT_TRUE(a) << a.status().toString();
  EXPECT_EQ(a->nodeNames, (std::vector<std::string>{"n1", "n2"}));
  FilterResult r;
  r.nodeNames = {"n2"};
  auto out = encodeFilterResult(r, *a);
  EXPECT_TRUE(out["NodeNames"].is_null());
  ASSERT_EQ(out["Nodes"]["items"].size(), 1u);
  EXPECT_EQ(out["Nodes"]["items"][0]["metadata"]["name"], "n2");
}

TEST(ExtenderApi, MalformedArgsAreNamed) {
  const std::pair<const char*, const char*> cases[] = {
      {"not json", "the body is not JSON"},
      {"[1]", "not a JSON object"},
      {R"({"NodeNames":["n"]})", "Pod is missing"},
      {R"({"Pod":{}})", "neither NodeNames nor Nodes"},
      {R"({"Pod":{},"NodeNames":"n1"})", "NodeNames is not an array"},
      {R"({"Pod":{},"NodeNames":[1]})", "NodeNames holds a non-string"},
      {R"({"Pod":{},"Nodes":{"items":[{}]}})", "has no metadata.name"},
      {R"({"Pod":{},"Nodes":[]})", "Nodes is not a NodeList"},
  };
  for (auto [body, why] : cases) {
    auto a = parseExtenderArgs(body);
    ASSERT_FALSE(a) << body;
    EXPECT_NE(a.status().message().find(why), std::string::npos) << a.status().message();
  }
}

TEST(ExtenderApi, Priorities) {
  EXPECT_EQ(encodeHostPriorities({{"n1", 7}, {"n2", 0}}),
            nlohmann::json::parse(R"([{"Host":"n1","Score":7},{"Host":"n2","Score":0}])"));
  EXPECT_EQ(encodeHostPriorities({}), nlohmann::json::array());
}

TEST(ExtenderApi, Binding) {
  auto b = parseBindingArgs(R"({"PodName":"p","PodNamespace":"ns","PodUID":"u1","Node":"n1"})");
  ASSERT_TRUE(b) << b.status().toString();
  EXPECT_EQ(b->podName, "p");
  EXPECT_EQ(b->podNamespace, "ns");
  EXPECT_EQ(b->podUid, "u1");
  EXPECT_EQ(b->node, "n1");
  EXPECT_EQ(encodeBindingResult(""), nlohmann::json::parse(R"({"Error":""})"));
  for (const char* bad : {R"({"PodNamespace":"ns","Node":"n"})", R"({"PodName":"p","PodNamespace":"ns","Node":""})",
                          R"({"PodName":1,"PodNamespace":"ns","Node":"n"})", "{", "null"})
    EXPECT_FALSE(parseBindingArgs(bad)) << bad;
  EXPECT_EQ(parseBindingArgs(R"({"PodName":"p","PodNamespace":"ns"})").status().message(),
            "ExtenderBindingArgs: Node is missing");
}

}  // namespace
}  // namespace tf::scheduler
