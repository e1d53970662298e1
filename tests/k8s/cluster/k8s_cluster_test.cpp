// The client against a real kube-apiserver (scripts/cluster.sh up --control-plane-only; the
// CTest fixture k8s_cluster brings it up and down, KUBECONFIG points at it).
#include <atomic>
#include <cstdlib>
#include <thread>

#include <gtest/gtest.h>

#include "k8s/builtin.h"
#include "k8s/client.h"
#include "k8s/events.h"
#include "k8s/informer.h"
#include "k8s/leader_election.h"
#include "k8s/retry.h"
#include "k8s_test_crd.h"

namespace tf::k8s {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::kWidgets;

const char* kNs = "k8s-client-test";

class ClusterTest : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    auto cfg = loadDefaultConfig();
    ASSERT_TRUE(cfg) << cfg.status().toString();
    ASSERT_FALSE(cfg->caPem.empty() && !cfg->insecureSkipTlsVerify) << "expected a verified TLS setup";
    auto c = Client::create(*cfg, ClientOptions{.qps = 200, .burst = 400});
    ASSERT_TRUE(c) << c.status().toString();
    client_ = std::move(*c);
    auto ns = client_->create(builtin::kNamespaces, {{"metadata", {{"name", kNs}}}});
    ASSERT_TRUE(ns || ns.error().isAlreadyExists()) << ns.error().toString();
    auto crd = testing::ensureWidgetCrd(*client_);
    ASSERT_TRUE(crd) << crd.error().toString();
  }
  static void TearDownTestSuite() { client_.reset(); }

  static json widget(const std::string& name, json spec = {{"size", 1}}, json labels = json::object()) {
    return {{"apiVersion", kWidgets.apiVersion()}, {"kind", "Widget"},
            {"metadata", {{"name", name}, {"namespace", kNs}, {"labels", labels}}}, {"spec", spec}};
  }
  static Client& client() { return *client_; }

  static std::unique_ptr<Client> client_;
};
std::unique_ptr<Client> ClusterTest::client_;

// Deletes what an earlier, failed run may have left; anything but success or 404 fails.
void deleteIfExists(Client& c, const ResourceRef& ref, std::string_view ns, std::string_view name,
                    const DeleteOptions& o = {}) {
  auto r = c.remove(ref, ns, name, o);
  EXPECT_TRUE(r || r.error().isNotFound()) << r.error().toString();
}

bool eventually(const std::function<bool()>& f, seconds limit = seconds(60)) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (f()) return true;
    std::this_thread::sleep_for(milliseconds(50));
  }
  return f();
}

TEST_F(ClusterTest, CrudStatusPatchesAndApplyOnACrd) {
  auto& c = client();
  deleteIfExists(c, kWidgets, kNs, "w1");
  auto created = c.create(kWidgets, widget("w1", {{"size", 1}, {"color", "red"}}));
  ASSERT_TRUE(created) << created.error().toString();
  auto again = c.create(kWidgets, widget("w1"));
  ASSERT_FALSE(again);
  EXPECT_TRUE(again.error().isAlreadyExists());

  json w = *created;
  w["spec"]["size"] = 2;
  auto updated = c.update(kWidgets, w);
  ASSERT_TRUE(updated) << updated.error().toString();
  auto stale = c.update(kWidgets, w);  // w still carries the old resourceVersion
  ASSERT_FALSE(stale);
  EXPECT_TRUE(stale.error().isConflict()) << stale.error().toString();

  // Status through its subresource: the spec part of the body is ignored there.
  json st = *updated;
  st["status"] = {{"phase", "Ready"}, {"observedGeneration", (*updated)["metadata"]["generation"]}};
  st["spec"]["size"] = 99;
  auto withStatus = c.updateStatus(kWidgets, st);
  ASSERT_TRUE(withStatus) << withStatus.error().toString();
  EXPECT_EQ((*withStatus)["status"]["phase"], "Ready");
  EXPECT_EQ((*withStatus)["spec"]["size"], 2);

  auto merged = c.patch(kWidgets, kNs, "w1", PatchType::Merge, {{"spec", {{"color", "blue"}}}});
  ASSERT_TRUE(merged) << merged.error().toString();
  EXPECT_EQ((*merged)["spec"]["color"], "blue");
  EXPECT_EQ((*merged)["spec"]["size"], 2);
  auto jsonPatched = c.patch(kWidgets, kNs, "w1", PatchType::Json,
                             json::array({{{"op", "test"}, {"path", "/spec/size"}, {"value", 2}},
                                          {{"op", "replace"}, {"path", "/spec/size"}, {"value", 3}}}));
  ASSERT_TRUE(jsonPatched) << jsonPatched.error().toString();
  EXPECT_EQ((*jsonPatched)["spec"]["size"], 3);
  auto failedTest = c.patch(kWidgets, kNs, "w1", PatchType::Json,
                            json::array({{{"op", "test"}, {"path", "/spec/size"}, {"value", 42}}}));
  EXPECT_FALSE(failedTest);
  auto statusPatch = c.patch(kWidgets, kNs, "w1", PatchType::Merge, {{"status", {{"phase", "Degraded"}}}},
                             PatchOptions{.subresource = "status"});
  ASSERT_TRUE(statusPatch) << statusPatch.error().toString();
  EXPECT_EQ((*statusPatch)["status"]["phase"], "Degraded");

  // Server-side apply: the manager owns what it applied; another manager's conflicting apply
  // is refused unless forced.
  auto applied = c.apply(kWidgets, widget("w2", {{"size", 5}}), "tester-a");
  ASSERT_TRUE(applied) << applied.error().toString();
  auto clash = c.apply(kWidgets, widget("w2", {{"size", 6}}), "tester-b");
  ASSERT_FALSE(clash);
  EXPECT_TRUE(clash.error().isConflict()) << clash.error().toString();
  auto forced = c.apply(kWidgets, widget("w2", {{"size", 6}}), "tester-b", true);
  ASSERT_TRUE(forced) << forced.error().toString();
  EXPECT_EQ((*forced)["spec"]["size"], 6);

  // The schema refuses a bad field and names it.
  auto invalid = c.create(kWidgets, widget("w3", {{"size", "big"}}));
  ASSERT_FALSE(invalid);
  EXPECT_TRUE(invalid.error().isInvalid()) << invalid.error().toString();
  EXPECT_NE(invalid.error().message.find("spec.size"), std::string::npos) << invalid.error().message;

  // Delete with preconditions: a wrong uid is refused (409), the right one deletes.
  DeleteOptions wrong;
  wrong.preconditionUid = "00000000-0000-0000-0000-000000000000";
  auto refused = c.remove(kWidgets, kNs, "w1", wrong);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, 409);
  DeleteOptions right;
  right.preconditionUid = (*created)["metadata"]["uid"].get<std::string>();
  right.propagationPolicy = "Background";
  ASSERT_TRUE(c.remove(kWidgets, kNs, "w1", right));
  auto gone = c.get(kWidgets, kNs, "w1");
  ASSERT_FALSE(gone);
  EXPECT_TRUE(gone.error().isNotFound());
  ASSERT_TRUE(c.remove(kWidgets, kNs, "w2"));
}

TEST_F(ClusterTest, ListPagesAndSelectors) {
  auto& c = client();
  ASSERT_TRUE(c.removeCollection(kWidgets, kNs, {.labelSelector = "suite=list"}));
  for (int i = 0; i < 7; ++i)
    ASSERT_TRUE(c.create(kWidgets, widget("l" + std::to_string(i), {{"size", i}},
                                          {{"suite", "list"}, {"parity", i % 2 ? "odd" : "even"}})));
  auto all = c.listAll(kWidgets, kNs, {.labelSelector = "suite=list", .limit = 2});
  ASSERT_TRUE(all) << all.error().toString();
  EXPECT_EQ(all->items.size(), 7u);
  EXPECT_FALSE(all->resourceVersion.empty());
  auto page = c.list(kWidgets, kNs, {.labelSelector = "suite=list", .limit = 2});
  ASSERT_TRUE(page);
  EXPECT_EQ(page->items.size(), 2u);
  EXPECT_FALSE(page->continueToken.empty());
  auto odd = c.listAll(kWidgets, kNs, {.labelSelector = "suite=list,parity!=even"});
  ASSERT_TRUE(odd);
  EXPECT_EQ(odd->items.size(), 3u);
  auto byName = c.listAll(kWidgets, kNs, {.fieldSelector = "metadata.name=l4"});
  ASSERT_TRUE(byName) << byName.error().toString();
  ASSERT_EQ(byName->items.size(), 1u);
  ASSERT_TRUE(c.removeCollection(kWidgets, kNs, {.labelSelector = "suite=list"}));
}

TEST_F(ClusterTest, CoreKindsStrategicMergeAndBinding) {
  auto& c = client();
  const std::string node = "k8s-client-test-node";
  deleteIfExists(c, builtin::kNodes, "", node);
  auto n = c.create(builtin::kNodes, {{"metadata", {{"name", node}, {"labels", {{"a", "1"}}}}}});
  ASSERT_TRUE(n) << n.error().toString();
  auto smp = c.patch(builtin::kNodes, "", node, PatchType::StrategicMerge,
                     {{"metadata", {{"labels", {{"b", "2"}}}}}});
  ASSERT_TRUE(smp) << smp.error().toString();
  EXPECT_EQ((*smp)["metadata"]["labels"]["a"], "1");
  EXPECT_EQ((*smp)["metadata"]["labels"]["b"], "2");
  auto status = c.patch(builtin::kNodes, "", node, PatchType::StrategicMerge,
                        {{"status", {{"capacity", {{"cpu", "4"}, {"pods", "10"}}}}}}, {.subresource = "status"});
  ASSERT_TRUE(status) << status.error().toString();
  EXPECT_EQ((*status)["status"]["capacity"]["cpu"], "4");

  // A pod bound by the binding subresource, as a scheduler (extender) does.
  auto sa = c.create(builtin::kServiceAccounts, {{"metadata", {{"name", "default"}, {"namespace", kNs}}}});
  ASSERT_TRUE(sa || sa.error().isAlreadyExists()) << sa.error().toString();
  deleteIfExists(c, builtin::kPods, kNs, "bind-me", {.gracePeriodSeconds = 0});
  ASSERT_TRUE(eventually([&] { return !c.get(builtin::kPods, kNs, "bind-me"); }));
  json pod = {{"metadata", {{"name", "bind-me"}, {"namespace", kNs}}},
              // A scheduler name nobody serves: in a cluster with a kube-scheduler, the pod must
              // wait for this test's binding, not be placed first.
              {"spec", {{"automountServiceAccountToken", false},
                        {"schedulerName", "k8s-client-test-binds-by-hand"},
                        {"containers", json::array({{{"name", "c"}, {"image", "localhost/none:1"}}})}}}};
  auto p = c.create(builtin::kPods, pod);
  ASSERT_TRUE(p) << p.error().toString();
  json binding = {{"apiVersion", "v1"}, {"kind", "Binding"}, {"metadata", {{"name", "bind-me"}}},
                  {"target", {{"kind", "Node"}, {"name", node}}}};
  auto bound = c.createSubresource(builtin::kPods, kNs, "bind-me", "binding", binding);
  ASSERT_TRUE(bound) << bound.error().toString();
  auto got = c.get(builtin::kPods, kNs, "bind-me");
  ASSERT_TRUE(got);
  EXPECT_EQ((*got)["spec"]["nodeName"], node);
  auto twice = c.createSubresource(builtin::kPods, kNs, "bind-me", "binding", binding);
  ASSERT_FALSE(twice);
  EXPECT_EQ(twice.error().code, 409);
  ASSERT_TRUE(c.remove(builtin::kPods, kNs, "bind-me", {.gracePeriodSeconds = 0}));
  ASSERT_TRUE(c.remove(builtin::kNodes, "", node));
}

// Forces a real 410: the first watch starts from a long-compacted resourceVersion.
class ExpiringListerWatcher : public ListerWatcher {
public:
  explicit ExpiringListerWatcher(std::unique_ptr<ListerWatcher> inner) : inner_(std::move(inner)) {}
  ApiResult<ObjectList> list() override { return inner_->list(); }
  ApiStatus watch(const WatchOptions& o, const std::function<bool(const WatchEvent&)>& onEvent,
                  StopSignal* stop) override {
    WatchOptions changed = o;
    if (watches_++ == 0) changed.resourceVersion = "1";
    auto st = inner_->watch(changed, onEvent, stop);
    if (!st && st.error().isGone()) gone_++;
    return st;
  }
  std::atomic<int> watches_{0}, gone_{0};

private:
  std::unique_ptr<ListerWatcher> inner_;
};

TEST_F(ClusterTest, ExpiredWatchIsRecoveredByRelist) {
  auto& c = client();
  // A direct watch from a very old version: the apiserver says 410 (HTTP or in-band).
  auto direct = c.watch(kWidgets, kNs, {.resourceVersion = "1", .timeoutSeconds = 5},
                        [](const WatchEvent&) { return true; });
  ASSERT_FALSE(direct);
  EXPECT_TRUE(direct.error().isGone()) << direct.error().toString();

  ASSERT_TRUE(c.removeCollection(kWidgets, kNs, {.labelSelector = "suite=expire"}));
  ASSERT_TRUE(c.create(kWidgets, widget("e1", {{"size", 1}}, {{"suite", "expire"}})));
  auto lw = std::make_unique<ExpiringListerWatcher>(
      makeListerWatcher(c, kWidgets, kNs, {.labelSelector = "suite=expire"}));
  auto* expiring = lw.get();
  Informer inf(std::move(lw));
  inf.addIndexer("color", [](const json& o) {
    return std::vector<std::string>{o["spec"].value("color", "")};
  });
  inf.start();
  ASSERT_TRUE(inf.waitForSync(seconds(30)));
  ASSERT_TRUE(eventually([&] { return inf.lists() >= 2; })) << "no re-list after the 410";
  EXPECT_GE(expiring->gone_.load(), 1);
  // Still live after the re-list: new objects arrive through the watch.
  ASSERT_TRUE(c.create(kWidgets, widget("e2", {{"size", 2}, {"color", "green"}}, {{"suite", "expire"}})));
  ASSERT_TRUE(eventually([&] { return inf.store().get(std::string(kNs) + "/e2") != nullptr; }));
  EXPECT_EQ(inf.store().byIndex("color", "green").size(), 1u);
  inf.stop();
  ASSERT_TRUE(c.removeCollection(kWidgets, kNs, {.labelSelector = "suite=expire"}));
}

TEST_F(ClusterTest, ConflictStormLosesNoUpdate) {
  auto& c = client();
  deleteIfExists(c, kWidgets, kNs, "storm");
  ASSERT_TRUE(eventually([&] { return !c.get(kWidgets, kNs, "storm"); }));
  ASSERT_TRUE(c.create(kWidgets, widget("storm", {{"counter", 0}})));
  constexpr int kPerWriter = 20;
  std::atomic<int> conflicts{0}, failures{0};
  auto writer = [&] {
    for (int i = 0; i < kPerWriter; ++i) {
      auto r = retryOnConflict([&]() -> ApiResult<json> {
        auto w = c.get(kWidgets, kNs, "storm");
        if (!w) return w.error();
        (*w)["spec"]["counter"] = (*w)["spec"]["counter"].get<int>() + 1;
        auto u = c.update(kWidgets, *w);
        if (!u && u.error().isConflict()) conflicts++;
        return u;
      }, RetryPolicy{.attempts = 50});
      if (!r) failures++;
    }
  };
  std::thread a(writer), b(writer);
  a.join();
  b.join();
  EXPECT_EQ(failures.load(), 0);
  auto w = c.get(kWidgets, kNs, "storm");
  ASSERT_TRUE(w);
  EXPECT_EQ((*w)["spec"]["counter"], 2 * kPerWriter);  // no lost update
  std::printf("conflict storm: %d conflicts retried\n", conflicts.load());
  ASSERT_TRUE(c.remove(kWidgets, kNs, "storm"));
}

TEST_F(ClusterTest, InformerSurvivesApiserverRestart) {
  const char* script = std::getenv("TF_CLUSTER_SCRIPT");
  ASSERT_NE(script, nullptr) << "TF_CLUSTER_SCRIPT (scripts/cluster.sh) is not set";
  auto& c = client();
  ASSERT_TRUE(c.removeCollection(builtin::kConfigMaps, kNs, {.labelSelector = "suite=restart"}));
  json cm = {{"metadata", {{"name", "before"}, {"namespace", kNs}, {"labels", {{"suite", "restart"}}}}},
             {"data", {{"k", "v"}}}};
  ASSERT_TRUE(c.create(builtin::kConfigMaps, cm));
  InformerOptions o;
  o.backoff = {milliseconds(100), seconds(2), 2.0, 0.2};
  Informer inf(makeListerWatcher(c, builtin::kConfigMaps, kNs, {.labelSelector = "suite=restart"}), o);
  std::atomic<int> adds{0};
  inf.addHandlers({.onAdd = [&](const ObjectPtr&) { adds++; }});
  inf.start();
  ASSERT_TRUE(inf.waitForSync(seconds(30)));
  ASSERT_EQ(inf.store().size(), 1u);
  ASSERT_EQ(std::system((std::string(script) + " restart-apiserver").c_str()), 0);
  cm["metadata"]["name"] = "after";
  ASSERT_TRUE(eventually([&] {
    auto r = c.create(builtin::kConfigMaps, cm);
    return r || r.error().isAlreadyExists();
  }));
  ASSERT_TRUE(eventually([&] { return inf.store().get(std::string(kNs) + "/after") != nullptr; }))
      << "the informer did not see an object created after the restart";
  EXPECT_GE(inf.watchFailures(), 1);
  EXPECT_EQ(adds.load(), 2);
  inf.stop();
  ASSERT_TRUE(c.removeCollection(builtin::kConfigMaps, kNs, {.labelSelector = "suite=restart"}));
}

TEST_F(ClusterTest, LeaderElectionHandover) {
  auto& c = client();
  deleteIfExists(c, builtin::kLeases, kNs, "handover");
  LeaseLock base{kNs, "handover", "", seconds(3), seconds(2), milliseconds(300)};
  std::mutex mu;
  std::vector<std::string> log;
  auto note = [&](const std::string& s) {
    std::lock_guard<std::mutex> l(mu);
    log.push_back(s);
  };
  std::chrono::steady_clock::time_point bStarted;
  LeaseLock la = base, lb = base;
  la.identity = "a";
  lb.identity = "b";
  LeaderElector a(c, la, {[&] { note("a+"); }, [&] { note("a-"); }, nullptr});
  LeaderElector b(c, lb, {[&] { bStarted = std::chrono::steady_clock::now(); note("b+"); },
                          [&] { note("b-"); }, nullptr});
  StopSignal stopA, stopB;
  std::thread ta([&] { a.run(stopA); });
  ASSERT_TRUE(eventually([&] { return a.isLeader(); }, seconds(30)));
  std::thread tb([&] { b.run(stopB); });
  std::this_thread::sleep_for(seconds(4));  // longer than the lease: a renews, so b must wait
  EXPECT_FALSE(b.isLeader());
  EXPECT_TRUE(a.isLeader());

  // a hangs: no renewals. It steps down after its renew deadline; b takes over once the
  // record has not changed for the lease duration by b's clock.
  auto hung = std::chrono::steady_clock::now();
  a.pauseRenewalsForTest(true);
  ASSERT_TRUE(eventually([&] { return b.isLeader(); }, seconds(30)));
  auto handover = bStarted - hung;
  EXPECT_GE(handover, milliseconds(3000 - 300 - 100)) << "took over before the lease expired";
  EXPECT_LE(handover, seconds(3 + 5)) << "lease duration plus retry periods and a busy machine's slack";
  ASSERT_TRUE(eventually([&] { return !a.isLeader(); }, seconds(10)));
  {
    std::lock_guard<std::mutex> l(mu);
    ASSERT_GE(log.size(), 3u);
    EXPECT_EQ(log[0], "a+");
    EXPECT_EQ(log[1], "a-");  // a stopped before b started: never two leaders
    EXPECT_EQ(log[2], "b+");
  }
  stopA.stop();
  ta.join();

  // b leaves cleanly: it releases the lease, so a new candidate leads at once.
  stopB.stop();
  tb.join();
  auto lease = c.get(builtin::kLeases, kNs, "handover");
  ASSERT_TRUE(lease);
  EXPECT_EQ((*lease)["spec"].value("holderIdentity", ""), "");
  LeaseLock lc = base;
  lc.identity = "c";
  LeaderElector cand(c, lc, {});
  StopSignal stopC;
  auto t0 = std::chrono::steady_clock::now();
  std::thread tc([&] { cand.run(stopC); });
  ASSERT_TRUE(eventually([&] { return cand.isLeader(); }, seconds(30)));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, seconds(3)) << "a released lease should not wait out its duration";
  stopC.stop();
  tc.join();
}

TEST_F(ClusterTest, EventsAreVisibleAndAggregated) {
  auto& c = client();
  auto w = c.apply(kWidgets, widget("evented"), "tester", true);
  ASSERT_TRUE(w) << w.error().toString();
  EventRecorder recorder(c, "k8s-client-test", "host-1");
  ASSERT_TRUE(recorder.event(*w, EventType::Warning, "Overheated", "too hot"));
  auto second = recorder.event(*w, EventType::Warning, "Overheated", "too hot");
  ASSERT_TRUE(second) << second.error().toString();
  ASSERT_TRUE(recorder.event(*w, EventType::Normal, "Cooled", "fine again"));
  std::string uid = (*w)["metadata"]["uid"];
  auto events = c.listAll(builtin::kEvents, kNs, {.fieldSelector = "involvedObject.uid=" + uid});
  ASSERT_TRUE(events) << events.error().toString();
  ASSERT_EQ(events->items.size(), 2u);
  for (const auto& ev : events->items) {
    EXPECT_EQ(ev["involvedObject"]["kind"], "Widget");
    EXPECT_EQ(ev["involvedObject"]["name"], "evented");
    EXPECT_EQ(ev["source"]["component"], "k8s-client-test");
    if (ev["reason"] == "Overheated") {
      EXPECT_EQ(ev["count"], 2);
      EXPECT_EQ(ev["type"], "Warning");
      EXPECT_EQ(ev["message"], "too hot");
    } else {
      EXPECT_EQ(ev["count"], 1);
      EXPECT_EQ(ev["type"], "Normal");
    }
  }
  ASSERT_TRUE(c.remove(kWidgets, kNs, "evented"));
}

}  // namespace
}  // namespace tf::k8s
