#include "k8s/watch.h"

namespace tf::k8s {

const char* watchEventTypeName(WatchEventType type) {
  switch (type) {
  case WatchEventType::Added: return "ADDED";
  case WatchEventType::Modified: return "MODIFIED";
  case WatchEventType::Deleted: return "DELETED";
  case WatchEventType::Bookmark: return "BOOKMARK";
  case WatchEventType::Error: return "ERROR";
  }
  return "?";
}

std::string WatchEvent::resourceVersion() const {
  if (!object.is_object()) return {};
  auto md = object.find("metadata");
  if (md == object.end() || !md->is_object()) return {};
  auto rv = md->find("resourceVersion");
  return rv != md->end() && rv->is_string() ? rv->get<std::string>() : std::string();
}

ApiStatus WatchDecoder::decodeLine(std::string_view line, std::vector<WatchEvent>& out) {
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
  if (line.empty()) return apiOk();
  auto fail = [&](const std::string& why) {
    std::string excerpt(line.substr(0, 80));
    return ApiError::decode("watch stream: malformed event at byte " + std::to_string(consumed_) +
                            ": " + why + " (\"" + excerpt + "\")");
  };
  auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return fail("not JSON");
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string() || !j.contains("object") ||
      !j["object"].is_object())
    return fail("not a {type, object} event");
  const std::string& t = j["type"].get_ref<const std::string&>();
  WatchEvent ev;
  if (t == "ADDED") ev.type = WatchEventType::Added;
  else if (t == "MODIFIED") ev.type = WatchEventType::Modified;
  else if (t == "DELETED") ev.type = WatchEventType::Deleted;
  else if (t == "BOOKMARK") ev.type = WatchEventType::Bookmark;
  else if (t == "ERROR") ev.type = WatchEventType::Error;
  else return fail("unknown event type \"" + t + "\"");
  ev.object = std::move(j["object"]);
  out.push_back(std::move(ev));
  return apiOk();
}

ApiStatus WatchDecoder::feed(std::string_view bytes, std::vector<WatchEvent>& out) {
  if (failed_) return error_;
  buffer_.append(bytes);
  size_t start = 0;
  for (size_t nl; (nl = buffer_.find('\n', start)) != std::string::npos; start = nl + 1) {
    auto st = decodeLine(std::string_view(buffer_).substr(start, nl - start), out);
    if (!st) {
      failed_ = true;
      error_ = st.error();
      return st;
    }
    consumed_ += nl + 1 - start;
  }
  buffer_.erase(0, start);
  return apiOk();
}

ApiStatus WatchDecoder::finish() const {
  if (failed_) return error_;
  for (char c : buffer_)
    if (!isspace(static_cast<unsigned char>(c)))
      return ApiError::decode("watch stream: ended inside an event at byte " + std::to_string(consumed_));
  return apiOk();
}

}  // namespace tf::k8s
