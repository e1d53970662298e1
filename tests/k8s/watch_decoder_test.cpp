#include "k8s/watch.h"

#include <gtest/gtest.h>

namespace tf::k8s {
namespace {

const std::string kStream =
    R"({"type":"ADDED","object":{"kind":"GPU","metadata":{"name":"g1","resourceVersion":"10"}}})" "\n"
    R"({"type":"MODIFIED","object":{"kind":"GPU","metadata":{"name":"g1","resourceVersion":"11"},"status":{"phase":"Running ü"}}})" "\r\n"
    R"({"type":"BOOKMARK","object":{"kind":"GPU","metadata":{"resourceVersion":"15"}}})" "\n"
    R"({"type":"DELETED","object":{"kind":"GPU","metadata":{"name":"g1","resourceVersion":"16"}}})" "\n";

TEST(WatchDecoderTest, SplitAtEveryOffsetGivesTheSameEvents) {
  for (size_t cut = 0; cut <= kStream.size(); ++cut) {
    for (size_t cut2 = cut; cut2 <= kStream.size(); cut2 += 7) {
      WatchDecoder d;
      std::vector<WatchEvent> events;
      ASSERT_TRUE(d.feed(std::string_view(kStream).substr(0, cut), events));
      ASSERT_TRUE(d.feed(std::string_view(kStream).substr(cut, cut2 - cut), events));
      ASSERT_TRUE(d.feed(std::string_view(kStream).substr(cut2), events));
      ASSERT_TRUE(d.finish());
      ASSERT_EQ(events.size(), 4u) << "cut at " << cut << "," << cut2;
      EXPECT_EQ(events[0].type, WatchEventType::Added);
      EXPECT_EQ(events[1].type, WatchEventType::Modified);
      EXPECT_EQ(events[1].object["status"]["phase"], "Running ü");
      EXPECT_EQ(events[2].type, WatchEventType::Bookmark);
      EXPECT_EQ(events[2].resourceVersion(), "15");
      EXPECT_EQ(events[3].type, WatchEventType::Deleted);
      EXPECT_EQ(events[3].resourceVersion(), "16");
    }
  }
}

TEST(WatchDecoderTest, OneByteAtATime) {
  WatchDecoder d;
  std::vector<WatchEvent> events;
  for (char c : kStream) ASSERT_TRUE(d.feed(std::string_view(&c, 1), events));
  EXPECT_EQ(events.size(), 4u);
  EXPECT_EQ(d.bufferedBytes(), 0u);
}

TEST(WatchDecoderTest, InBandExpiredIsAGoneError) {
  WatchDecoder d;
  std::vector<WatchEvent> events;
  ASSERT_TRUE(d.feed(R"({"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","status":"Failure",)"
                     R"J("message":"too old resource version: 5 (100)","reason":"Expired","code":410}})J" "\n",
                     events));
  ASSERT_EQ(events.size(), 1u);
  ASSERT_EQ(events[0].type, WatchEventType::Error);
  ApiError e = ApiError::fromStatusObject(events[0].object, 500);
  EXPECT_TRUE(e.isGone());
  EXPECT_EQ(e.reason, "Expired");
  EXPECT_NE(e.message.find("too old"), std::string::npos);
}

TEST(WatchDecoderTest, GarbageLineIsAClearErrorAndSticks) {
  WatchDecoder d;
  std::vector<WatchEvent> events;
  std::string first = R"({"type":"ADDED","object":{"metadata":{"name":"a"}}})" "\n";
  auto st = d.feed(first + "<html>proxy error</html>\n" + first, events);
  ASSERT_FALSE(st);
  EXPECT_EQ(events.size(), 1u);  // what came before the bad line is kept
  EXPECT_EQ(st.error().reason, "Decode");
  EXPECT_NE(st.error().message.find("byte " + std::to_string(first.size())), std::string::npos)
      << st.error().message;
  EXPECT_NE(st.error().message.find("proxy error"), std::string::npos);
  EXPECT_FALSE(d.feed(first, events));  // stays failed
  EXPECT_EQ(events.size(), 1u);
}

TEST(WatchDecoderTest, WrongShapesAreErrors) {
  for (const char* line : {R"({"type":"ADDED"})", R"({"type":"EXPLODED","object":{}})", R"([1,2])",
                           R"({"type":7,"object":{}})", R"({"type":"ADDED","object":"x"})"}) {
    WatchDecoder d;
    std::vector<WatchEvent> events;
    auto st = d.feed(std::string(line) + "\n", events);
    EXPECT_FALSE(st) << line;
    EXPECT_TRUE(events.empty());
  }
}

TEST(WatchDecoderTest, TruncatedLastEventIsReportedAtFinish) {
  WatchDecoder d;
  std::vector<WatchEvent> events;
  ASSERT_TRUE(d.feed(R"({"type":"ADDED","object":{"metad)", events));
  EXPECT_FALSE(d.finish());
  WatchDecoder blank;
  ASSERT_TRUE(blank.feed("\n\n  ", events));
  EXPECT_TRUE(blank.finish());
}

TEST(ApiErrorTest, FromResponse) {
  auto e = ApiError::fromResponse(409, R"({"kind":"Status","apiVersion":"v1","status":"Failure",)"
                                       R"("message":"gpus \"g\" already exists","reason":"AlreadyExists","code":409})");
  EXPECT_TRUE(e.isAlreadyExists());
  EXPECT_FALSE(e.isConflict());
  EXPECT_EQ(e.toStatus().code(), Code::AlreadyExists);
  auto c = ApiError::fromResponse(409, R"({"kind":"Status","reason":"Conflict","message":"modified"})");
  EXPECT_TRUE(c.isConflict());
  auto inv = ApiError::fromResponse(422, R"({"kind":"Status","reason":"Invalid","message":"spec.x: Invalid",)"
                                         R"("details":{"causes":[{"field":"spec.x"}]}})");
  EXPECT_TRUE(inv.isInvalid());
  EXPECT_EQ(inv.details["causes"][0]["field"], "spec.x");
  auto text = ApiError::fromResponse(503, "upstream gone");
  EXPECT_EQ(text.code, 503);
  EXPECT_EQ(text.message, "upstream gone");
  EXPECT_EQ(text.toStatus().code(), Code::Unavailable);
  EXPECT_TRUE(ApiError::fromResponse(404, "").isNotFound());
  EXPECT_TRUE(ApiError::fromResponse(410, "{}").isGone());
}

}  // namespace
}  // namespace tf::k8s
