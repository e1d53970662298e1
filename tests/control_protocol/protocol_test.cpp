// The wire protocol: every message type round-trips; each malformed case gets its close code.
#include <gtest/gtest.h>

#include "control_protocol/crypto.h"
#include "control_protocol/messages.h"

namespace tf::protocol {
namespace {

using nlohmann::json;

template <typename T> T roundTrip(const T& m) {
  auto parsed = parseMessage(serialize(m));
  EXPECT_TRUE(parsed.isOk()) << (parsed ? "" : parsed.error().reason);
  EXPECT_TRUE(std::holds_alternative<T>(*parsed));
  return std::get<T>(*parsed);
}

TEST(Protocol, EveryTypeRoundTrips) {
  auto h = roundTrip(Hello{"acme:prod", "1.2.3", "i-1", EnrollRequest{"tok", "pub"}});
  EXPECT_EQ(h.agentId, "acme:prod");
  ASSERT_TRUE(h.enroll);
  EXPECT_EQ(h.enroll->publicKey, "pub");
  EXPECT_FALSE(roundTrip(Hello{"a", "", "", std::nullopt}).enroll);
  EXPECT_EQ(roundTrip(Challenge{"n", 42, {1}}).portalTimeMs, 42);
  auto a = roundTrip(Auth{"sig", UINT64_MAX, 7});
  EXPECT_EQ(a.epoch, UINT64_MAX);
  EXPECT_EQ(a.lastSeq, 7u);
  auto w = roundTrip(Welcome{"s", false, 8, kMaxMessageBytes, 500, 15});
  EXPECT_FALSE(w.needSnapshot);
  EXPECT_EQ(w.resumeFromSeq, 8u);
  auto s = roundTrip(Snapshot{3, 1, {SyncedObject{"GPU", "", "gpu-0", "17", {{"vram", 80}}}}});
  ASSERT_EQ(s.objects.size(), 1u);
  EXPECT_EQ(s.objects[0].body["vram"], 80);
  auto d = roundTrip(Delta{3, 2, {SyncedObject{"Worker", "ns", "w", "18", json::object()}}, {ObjectKey{"GPU", "", "gpu-1"}}});
  EXPECT_EQ(d.upserts[0].ns, "ns");
  EXPECT_EQ(d.deletes[0].name, "gpu-1");
  EXPECT_EQ(roundTrip(Ack{9}).seq, 9u);
  EXPECT_EQ(roundTrip(Resync{"gap"}).reason, "gap");
  auto m = roundTrip(Metrics{{MetricPoint{"gpu/0/util", 1000, 0.5}}});
  EXPECT_DOUBLE_EQ(m.points[0].value, 0.5);
  EXPECT_EQ(roundTrip(Heartbeat{1, 2, 3}).droppedMetrics, 3u);
  auto c = roundTrip(Command{"5", "cordonGpu", {{"gpu", "gpu-0"}}, 99});
  EXPECT_EQ(c.args["gpu"], "gpu-0");
  auto r = roundTrip(CommandResult{"5", true, "done", json::object()});
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(roundTrip(Error{"x"}).message, "x");
}

TEST(Protocol, SendersFollowTheTable) {
  EXPECT_EQ(senderOf(Hello{}), Sender::Agent);
  EXPECT_EQ(senderOf(Ack{}), Sender::Portal);
  EXPECT_EQ(senderOf(Heartbeat{}), Sender::Both);
  EXPECT_EQ(typeName(CommandResult{}), "commandResult");
}

CloseCode closeOf(const std::string& text) {
  auto p = parseMessage(text);
  EXPECT_FALSE(p.isOk()) << text;
  return p ? CloseCode::Normal : p.error().code;
}

TEST(Protocol, MalformedFramesGetTheirCloseCode) {
  EXPECT_EQ(closeOf("not json"), CloseCode::InvalidPayload);
  EXPECT_EQ(closeOf("[1,2]"), CloseCode::InvalidPayload);
  EXPECT_EQ(closeOf(R"({"type":"ack","body":{"seq":1}})"), CloseCode::InvalidPayload);            // no v
  EXPECT_EQ(closeOf(R"({"v":2,"type":"ack","body":{"seq":1}})"), CloseCode::BadVersion);
  EXPECT_EQ(closeOf(R"({"v":1,"body":{}})"), CloseCode::InvalidPayload);                          // no type
  EXPECT_EQ(closeOf(R"({"v":1,"type":"ack"})"), CloseCode::InvalidPayload);                        // no body
  EXPECT_EQ(closeOf(R"({"v":1,"type":"ack","body":[]})"), CloseCode::InvalidPayload);
  EXPECT_EQ(closeOf(R"({"v":1,"type":"nope","body":{}})"), CloseCode::Policy);                     // unknown type
  EXPECT_EQ(closeOf(R"({"v":1,"type":"ack","body":{}})"), CloseCode::InvalidPayload);              // missing field
  EXPECT_EQ(closeOf(R"({"v":1,"type":"ack","body":{"seq":-1}})"), CloseCode::InvalidPayload);      // wrong sign
  EXPECT_EQ(closeOf(R"({"v":1,"type":"ack","body":{"seq":"1"}})"), CloseCode::InvalidPayload);     // wrong type
  EXPECT_EQ(closeOf(R"({"v":1,"type":"hello","body":{"agentId":""}})"), CloseCode::InvalidPayload);
  EXPECT_EQ(closeOf(R"({"v":1,"type":"hello","body":{"agentId":"a","enroll":{"token":"t"}}})"),
            CloseCode::InvalidPayload);  // enroll without a key
  EXPECT_EQ(closeOf(R"({"v":1,"type":"hello","body":{"agentId":")" + std::string(300, 'a') + R"("}})"),
            CloseCode::InvalidPayload);  // too long
  EXPECT_EQ(closeOf(R"({"v":1,"type":"delta","body":{"epoch":1,"seq":0,"upserts":[],"deletes":[]}})"),
            CloseCode::InvalidPayload);  // seq 0
  EXPECT_EQ(closeOf(R"({"v":1,"type":"delta","body":{"epoch":1,"seq":1,"upserts":[5],"deletes":[]}})"),
            CloseCode::InvalidPayload);
  EXPECT_EQ(closeOf(R"({"v":1,"type":"delta","body":{"epoch":1,"seq":1,"upserts":[{"kind":"G/PU","name":"a",)"
                    R"("resourceVersion":"1","body":{}}],"deletes":[]}})"),
            CloseCode::InvalidPayload);  // kind with a slash
  EXPECT_EQ(closeOf(R"({"v":1,"type":"snapshot","body":{"epoch":1,"seq":1,"objects":[{"kind":"GPU","name":"a",)"
                    R"("resourceVersion":"1","body":3}]}})"),
            CloseCode::InvalidPayload);  // body not an object
  EXPECT_EQ(closeOf(R"({"v":1,"type":"metrics","body":{"points":[{"series":"s","ts":1,"value":"x"}]}})"),
            CloseCode::InvalidPayload);
  EXPECT_EQ(closeOf(R"({"v":1,"type":"command","body":{"id":"1","verb":"rm -rf","args":{},"deadline":1}})"),
            CloseCode::InvalidPayload);  // verb not allowed
  EXPECT_EQ(closeOf(R"({"v":1,"type":"commandResult","body":{"id":"1","ok":"yes"}})"), CloseCode::InvalidPayload);
  EXPECT_EQ(closeOf(std::string(kMaxMessageBytes + 1, ' ')), CloseCode::TooBig);
  EXPECT_EQ(closeOf("{\"v\":1,\"type\":\"ack\",\"body\":{\"seq\":1},\"x\":\"\xff\"}"), CloseCode::InvalidPayload);
}

TEST(Protocol, TooManyObjectsAreRefused) {
  Snapshot s{1, 1, {}};
  s.objects.resize(kMaxObjectsPerMessage + 1, SyncedObject{"GPU", "", "g", "1", json::object()});
  EXPECT_EQ(closeOf(serialize(s)), CloseCode::InvalidPayload);
}

TEST(Crypto, Base64UrlRoundTripsEveryLength) {
  for (size_t n = 0; n < 40; ++n) {
    std::string bytes;
    for (size_t i = 0; i < n; ++i) bytes.push_back(char(i * 37 + 250));
    const std::string enc = base64UrlEncode(bytes);
    EXPECT_EQ(enc.find_first_of("+/="), std::string::npos);
    auto dec = base64UrlDecode(enc);
    ASSERT_TRUE(dec.isOk());
    EXPECT_EQ(*dec, bytes);
  }
  EXPECT_FALSE(base64UrlDecode("a").isOk());
  EXPECT_FALSE(base64UrlDecode("ab$d").isOk());
}

TEST(Crypto, Ed25519ProofOfPossession) {
  auto key = Ed25519Key::generate();
  ASSERT_TRUE(key.isOk());
  const std::string nonce(32, 'n');
  const std::string payload = authPayload(nonce, "acme:prod", "sha256:ab");
  auto sig = key->sign(payload);
  ASSERT_TRUE(sig.isOk());
  EXPECT_TRUE(verifyEd25519(key->publicKeyBase64(), payload, *sig).isOk());
  // The signature binds the nonce, the agent id and the pin.
  EXPECT_EQ(verifyEd25519(key->publicKeyBase64(), authPayload(std::string(32, 'm'), "acme:prod", "sha256:ab"), *sig).code(),
            Code::PermissionDenied);
  EXPECT_EQ(verifyEd25519(key->publicKeyBase64(), authPayload(nonce, "acme:dev", "sha256:ab"), *sig).code(),
            Code::PermissionDenied);
  EXPECT_EQ(verifyEd25519(key->publicKeyBase64(), authPayload(nonce, "acme:prod", "sha256:cd"), *sig).code(),
            Code::PermissionDenied);
  auto other = Ed25519Key::generate();
  EXPECT_EQ(verifyEd25519(other->publicKeyBase64(), payload, *sig).code(), Code::PermissionDenied);
  EXPECT_EQ(verifyEd25519("short", payload, *sig).code(), Code::InvalidArgument);
  EXPECT_EQ(verifyEd25519(key->publicKeyBase64(), payload, "c2ln").code(), Code::InvalidArgument);
  // A key survives PEM (the agent keeps it in a Secret).
  auto again = Ed25519Key::fromPem(key->privateKeyPem());
  ASSERT_TRUE(again.isOk());
  EXPECT_EQ(again->publicKeyBase64(), key->publicKeyBase64());
  EXPECT_FALSE(Ed25519Key::fromPem("junk").isOk());
}

TEST(Crypto, RandomTokensAreDistinct) {
  auto a = randomToken(), b = randomToken();
  ASSERT_TRUE(a.isOk() && b.isOk());
  EXPECT_EQ(a->size(), 43u);  // 32 bytes
  EXPECT_NE(*a, *b);
  EXPECT_EQ(hexEncode(sha256("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

}  // namespace
}  // namespace tf::protocol
