// Store, indexers and the informer's list/watch/re-list logic against a scripted
// ListerWatcher (no apiserver; the cluster tests run the same code against a real one).
#include "k8s/informer.h"

#include <algorithm>
#include <deque>

#include <gtest/gtest.h>

namespace tf::k8s {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

json obj(const std::string& ns, const std::string& name, const std::string& rv,
         json labels = json::object()) {
  return {{"kind", "GPU"}, {"metadata", {{"namespace", ns}, {"name", name}, {"resourceVersion", rv}, {"labels", labels}}}};
}

TEST(StoreTest, KeysAndIndexes) {
  Store s;
  s.addIndexer(kNamespaceIndex, namespaceIndexFunc());
  s.addIndexer("pool", labelIndexFunc("pool"));
  s.upsert(std::make_shared<json>(obj("a", "x", "1", {{"pool", "p1"}})));
  s.upsert(std::make_shared<json>(obj("a", "y", "1", {{"pool", "p2"}})));
  s.upsert(std::make_shared<json>(obj("b", "x", "1")));
  s.upsert(std::make_shared<json>(obj("", "cluster-scoped", "1", {{"pool", "p1"}})));
  EXPECT_EQ(s.size(), 4u);
  ASSERT_TRUE(s.get("a/x"));
  ASSERT_TRUE(s.get("cluster-scoped"));
  EXPECT_EQ(s.byIndex(kNamespaceIndex, "a").size(), 2u);
  EXPECT_EQ(s.byIndex("pool", "p1").size(), 2u);
  // A changed label moves the object between index values.
  auto old = s.upsert(std::make_shared<json>(obj("a", "x", "2", {{"pool", "p2"}})));
  ASSERT_TRUE(old);
  EXPECT_EQ((*old)["metadata"]["resourceVersion"], "1");
  EXPECT_EQ(s.byIndex("pool", "p1").size(), 1u);
  EXPECT_EQ(s.byIndex("pool", "p2").size(), 2u);
  s.remove("a/y");
  EXPECT_EQ(s.byIndex("pool", "p2").size(), 1u);
  EXPECT_TRUE(s.byIndex("unknown", "v").empty());
  // A custom index function added late indexes what is already there.
  s.addIndexer("nameLength", [](const json& o) {
    return std::vector<std::string>{std::to_string(o["metadata"]["name"].get<std::string>().size())};
  });
  EXPECT_EQ(s.byIndex("nameLength", "1").size(), 2u);  // a/x, b/x
}

// A scripted apiserver: lists return `listItems` at `listRv`; each watch call plays the next
// script entry (events, then an ending).
struct Script {
  std::vector<WatchEvent> events;
  ApiStatus ending = apiOk();
};

class FakeLw : public ListerWatcher {
public:
  std::mutex mu;
  std::vector<json> listItems;
  std::string listRv = "100";
  std::deque<Script> scripts;
  std::vector<std::string> watchRvs;  // the resourceVersion each watch started from
  int failLists = 0;

  ApiResult<ObjectList> list() override {
    std::lock_guard<std::mutex> l(mu);
    if (failLists > 0) {
      --failLists;
      return ApiError::transport("connection refused");
    }
    return ObjectList{listItems, listRv, ""};
  }
  ApiStatus watch(const WatchOptions& o, const std::function<bool(const WatchEvent&)>& onEvent,
                  StopSignal* stop) override {
    Script s;
    {
      std::lock_guard<std::mutex> l(mu);
      watchRvs.push_back(o.resourceVersion);
      if (scripts.empty()) {
        s.ending = apiOk();
      } else {
        s = scripts.front();
        scripts.pop_front();
      }
    }
    if (s.events.empty() && s.ending.isOk()) {  // nothing scripted: hang like an idle watch
      stop->waitFor(seconds(30));
      return apiOk();
    }
    for (auto& ev : s.events)
      if (!onEvent(ev)) return apiOk();
    return s.ending;
  }
};

WatchEvent ev(WatchEventType t, json o) { return {t, std::move(o)}; }

struct Recorder {
  std::mutex mu;
  std::vector<std::string> log;
  ResourceEventHandlers handlers() {
    return {[this](const ObjectPtr& o) { add("add " + objectKey(*o)); },
            [this](const ObjectPtr& a, const ObjectPtr& b) {
              add("update " + objectKey(*b) + " " + (*a)["metadata"]["resourceVersion"].get<std::string>() +
                  "->" + (*b)["metadata"]["resourceVersion"].get<std::string>());
            },
            [this](const ObjectPtr& o) { add("delete " + objectKey(*o)); }};
  }
  void add(std::string s) {
    std::lock_guard<std::mutex> l(mu);
    log.push_back(std::move(s));
  }
  std::vector<std::string> snapshot() {
    std::lock_guard<std::mutex> l(mu);
    return log;
  }
};

bool eventually(const std::function<bool()>& f) {
  for (int i = 0; i < 1000; ++i) {
    if (f()) return true;
    std::this_thread::sleep_for(milliseconds(10));
  }
  return f();
}

InformerOptions fastOptions() {
  InformerOptions o;
  o.backoff = {milliseconds(1), milliseconds(20), 2.0, 0.0};
  return o;
}

TEST(InformerTest, ListThenWatchEventsThenRelistOnGone) {
  auto lw = std::make_unique<FakeLw>();
  FakeLw* fake = lw.get();
  fake->listItems = {obj("ns", "a", "90"), obj("ns", "b", "91")};
  Script first;
  first.events = {ev(WatchEventType::Modified, obj("ns", "a", "101")),
                  ev(WatchEventType::Added, obj("ns", "c", "102")),
                  ev(WatchEventType::Bookmark, {{"metadata", {{"resourceVersion", "150"}}}}),
                  ev(WatchEventType::Deleted, obj("ns", "b", "151"))};
  first.ending = ApiStatus(ApiError{410, "Expired", "too old resource version", {}});
  fake->scripts.push_back(first);

  Informer inf(std::move(lw), fastOptions());
  Recorder rec;
  inf.addHandlers(rec.handlers());
  inf.start();
  ASSERT_TRUE(inf.waitForSync(seconds(10)));
  ASSERT_TRUE(eventually([&] { return inf.lists() == 2; }));  // the 410 forced a second list
  ASSERT_TRUE(eventually([&] { return rec.snapshot().size() >= 8; }));
  inf.stop();

  auto log = rec.snapshot();
  std::vector<std::string> want = {"add ns/a", "add ns/b", "update ns/a 90->101", "add ns/c", "delete ns/b"};
  ASSERT_GE(log.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(log[i], want[i]);
  // The second list (a@90, b@91 again) reconciles the cache: c vanished while we were not
  // watching, b is back, a differs.
  std::vector<std::string> relist(log.begin() + 5, log.end());
  std::sort(relist.begin(), relist.end());
  EXPECT_EQ(relist, (std::vector<std::string>{"add ns/b", "delete ns/c", "update ns/a 101->90"}));
  EXPECT_EQ(inf.store().size(), 2u);
  EXPECT_TRUE(inf.store().get("ns/b"));
  EXPECT_FALSE(inf.store().get("ns/c"));
  std::lock_guard<std::mutex> l(fake->mu);
  ASSERT_GE(fake->watchRvs.size(), 2u);
  EXPECT_EQ(fake->watchRvs[0], "100");  // from the list's version
  EXPECT_EQ(fake->watchRvs[1], "100");  // after the re-list, from its version again
  EXPECT_GE(inf.watchFailures(), 1);
}

TEST(InformerTest, ResumesFromLastVersionAfterTransportErrorsAndRetriesLists) {
  auto lw = std::make_unique<FakeLw>();
  FakeLw* fake = lw.get();
  fake->failLists = 3;  // apiserver down at start: retried with back-off
  fake->listItems = {obj("ns", "a", "90")};
  Script s1;
  s1.events = {ev(WatchEventType::Modified, obj("ns", "a", "120"))};
  s1.ending = ApiStatus(ApiError::transport("connection reset by peer"));
  Script s2;
  s2.events = {ev(WatchEventType::Bookmark, {{"metadata", {{"resourceVersion", "130"}}}})};
  s2.ending = apiOk();  // the server ended the watch (timeoutSeconds)
  fake->scripts = {s1, s2};
  Informer inf(std::move(lw), fastOptions());
  EXPECT_FALSE(inf.hasSynced());
  inf.start();
  ASSERT_TRUE(inf.waitForSync(seconds(10)));
  ASSERT_TRUE(eventually([&] {
    std::lock_guard<std::mutex> l(fake->mu);
    return fake->watchRvs.size() >= 3;
  }));
  inf.stop();
  std::lock_guard<std::mutex> l(fake->mu);
  EXPECT_EQ(fake->watchRvs[0], "100");
  EXPECT_EQ(fake->watchRvs[1], "120");  // resumed, no re-list
  EXPECT_EQ(fake->watchRvs[2], "130");  // the bookmark moved it on
  EXPECT_EQ(inf.lists(), 1);
  EXPECT_EQ((*inf.store().get("ns/a"))["metadata"]["resourceVersion"], "120");
}

TEST(InformerTest, ResyncCallsUpdateWithTheSameObject) {
  auto lw = std::make_unique<FakeLw>();
  lw->listItems = {obj("ns", "a", "1")};
  InformerOptions o = fastOptions();
  o.resyncPeriod = milliseconds(20);
  Informer inf(std::move(lw), o);
  Recorder rec;
  inf.addHandlers(rec.handlers());
  inf.start();
  ASSERT_TRUE(inf.waitForSync(seconds(10)));
  ASSERT_TRUE(eventually([&] {
    for (auto& s : rec.snapshot())
      if (s == "update ns/a 1->1") return true;
    return false;
  }));
  inf.stop();
}

TEST(InformerTest, StopEndsAHangingWatchPromptly) {
  auto lw = std::make_unique<FakeLw>();
  Informer inf(std::move(lw), fastOptions());
  inf.start();
  ASSERT_TRUE(inf.waitForSync(seconds(10)));
  auto t0 = std::chrono::steady_clock::now();
  inf.stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, seconds(10));  // not the 30 s hang
}

}  // namespace
}  // namespace tf::k8s
