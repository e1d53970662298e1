// Watch events: the apiserver streams one JSON object per line,
//   {"type":"ADDED|MODIFIED|DELETED|BOOKMARK|ERROR","object":{...}}
// WatchDecoder turns bytes, split anywhere, into events; an ERROR event becomes an ApiError
// (code 410 = the resourceVersion expired: re-list), a line that is not an event is a
// decode error naming the byte offset.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "k8s/api_error.h"

namespace tf::k8s {

enum class WatchEventType { Added, Modified, Deleted, Bookmark, Error };
const char* watchEventTypeName(WatchEventType type);

struct WatchEvent {
  WatchEventType type = WatchEventType::Added;
  nlohmann::json object;
  // metadata.resourceVersion of the object ("" for ERROR).
  std::string resourceVersion() const;
};

struct WatchOptions {
  std::string resourceVersion;  // start after this version ("" = from now, with the current state as ADDED)
  std::string labelSelector;
  std::string fieldSelector;
  int timeoutSeconds = 300;  // the server ends the watch after this; the informer starts a new one
  bool allowBookmarks = true;
};

class WatchDecoder {
public:
  // Decodes what `bytes` completes; events go to `out`. Stops at the first bad line and
  // returns its error (every later call returns it too).
  ApiStatus feed(std::string_view bytes, std::vector<WatchEvent>& out);
  // The stream ended: an unfinished last line is an error.
  ApiStatus finish() const;
  size_t bufferedBytes() const { return buffer_.size(); }

private:
  ApiStatus decodeLine(std::string_view line, std::vector<WatchEvent>& out);

  std::string buffer_;
  size_t consumed_ = 0;  // bytes of the stream decoded so far (for error messages)
  bool failed_ = false;
  ApiError error_;
};

}  // namespace tf::k8s
