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
  r.failedNodes.emplace_back("n2", "no GPU");
  EXPECT_EQ(encodeFilterResult(r, *a), R"({"Nodes":null,"NodeNames":["n1"],"FailedNodes":{"n2":"no GPU"},"Error":""})");
  r.nodeNames.clear();  // none fit: an empty list, not null (null means "not cache capable")
  EXPECT_EQ(nlohmann::json::parse(encodeFilterResult(r, *a))["NodeNames"], nlohmann::json::array());
}

TEST(ExtenderApi, ArgsWithNodeList) {
  auto a = parseExtenderArgs(
      R"({"Pod":{},"Nodes":{"metadata":{},"items":[{"metadata":{"name":"n1"}},{"metadata":{"name":"n2"}}]},"NodeNames":null})");
  ASSERT_TRUE(a) << a.status().toString();
  EXPECT_EQ(a->nodeNames, (std::vector<std::string>{"n1", "n2"}));
  FilterResult r;
  r.nodeNames = {"n2"};
  auto out = nlohmann::json::parse(encodeFilterResult(r, *a));
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
  EXPECT_EQ(encodeHostPriorities({{"n1", 7}, {"n2", 0}}), R"([{"Host":"n1","Score":7},{"Host":"n2","Score":0}])");
  EXPECT_EQ(encodeHostPriorities({}), "[]");
}

// What is written by hand is valid JSON whatever the names and reasons hold.
TEST(ExtenderApi, AnswersEscapeWhatTheyCarry) {
  FilterResult r;
  r.nodeNames = {"quote\"d", "back\\slash"};
  r.failedNodes.emplace_back("ctl\x01\n", "why \"not\"\t");
  r.error = "line\r\nbreak";
  ExtenderArgs a;
  auto out = nlohmann::json::parse(encodeFilterResult(r, a));
  EXPECT_EQ(out["NodeNames"], nlohmann::json({"quote\"d", "back\\slash"}));
  EXPECT_EQ(out["FailedNodes"]["ctl\x01\n"], "why \"not\"\t");
  EXPECT_EQ(out["Error"], "line\r\nbreak");
  EXPECT_EQ(nlohmann::json::parse(encodeHostPriorities({{"a\"b", 3}}))[0]["Host"], "a\"b");
  EXPECT_EQ(nlohmann::json::parse(encodeBindingResult("x\"y"))["Error"], "x\"y");
}

// The reader keeps only what the answer needs, and the same things as a document would.
TEST(ExtenderApi, ArgsReaderSkipsOtherFieldsAndKeepsThePodWhole) {
  auto a = parseExtenderArgs(
      R"({"Extra":{"deep":[1,{"x":[null,true]}]},"NodeNames":["a","b"],"Pod":{"metadata":{"annotations":{"k":"v"}},)"
      R"("spec":{"containers":[{"name":"c","ports":[{"containerPort":80}]}],"priority":1.5}},"More":[[]]})");
  ASSERT_TRUE(a) << a.status().toString();
  EXPECT_EQ(a->nodeNames, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(a->pod, nlohmann::json::parse(R"({"metadata":{"annotations":{"k":"v"}},)"
                                          R"("spec":{"containers":[{"name":"c","ports":[{"containerPort":80}]}],"priority":1.5}})"));
  // Both given: NodeNames wins, as before.
  auto both = parseExtenderArgs(R"({"Pod":{},"Nodes":{"items":[{"metadata":{"name":"x"}}]},"NodeNames":["n"]})");
  ASSERT_TRUE(both);
  EXPECT_EQ(both->nodeNames, std::vector<std::string>{"n"});
  EXPECT_FALSE(both->nodes);
  for (const char* bad : {R"({"Pod":{},"NodeNames":[["n"]]})", R"({"Pod":{},"NodeNames":{}})", R"({"Pod":"p","NodeNames":[]})",
                          R"({"Pod":{},"NodeNames":["n"])", "null", "\"s\"", "",
                          // broken inside a field the reader does not keep: still not JSON
                          R"({"Extra":[1,,2],"Pod":{},"NodeNames":["n"]})", R"({"Pod":{},"NodeNames":["n"],"x":tru})",
                          R"({"Pod":{"a":"\x"},"NodeNames":["n"]})", R"({"Pod":{},"NodeNames":["n"]} trailing)"})
    EXPECT_FALSE(parseExtenderArgs(bad)) << bad;
}

TEST(ExtenderApi, Binding) {
  auto b = parseBindingArgs(R"({"PodName":"p","PodNamespace":"ns","PodUID":"u1","Node":"n1"})");
  ASSERT_TRUE(b) << b.status().toString();
  EXPECT_EQ(b->podName, "p");
  EXPECT_EQ(b->podNamespace, "ns");
  EXPECT_EQ(b->podUid, "u1");
  EXPECT_EQ(b->node, "n1");
  EXPECT_EQ(encodeBindingResult(""), R"({"Error":""})");
  for (const char* bad : {R"({"PodNamespace":"ns","Node":"n"})", R"({"PodName":"p","PodNamespace":"ns","Node":""})",
                          R"({"PodName":1,"PodNamespace":"ns","Node":"n"})", "{", "null"})
    EXPECT_FALSE(parseBindingArgs(bad)) << bad;
  EXPECT_EQ(parseBindingArgs(R"({"PodName":"p","PodNamespace":"ns"})").status().message(),
            "ExtenderBindingArgs: Node is missing");
}

}  // namespace
}  // namespace tf::scheduler
