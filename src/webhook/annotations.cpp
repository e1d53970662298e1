#include "webhook/annotations.h"

#include <cctype>
#include <charconv>
#include <algorithm>
#include <cstdlib>

#include "k8s/api/well_known.h"

namespace tf::webhook {
namespace {

using k8s::api::Quantity;

std::string quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }

Status bad(const AnnotationSpec& spec, std::string_view text, const std::string& expected) {
  return invalidArgument(std::string(spec.key) + ": " + quoted(text) + " is not " + expected);
}

std::optional<int64_t> parseInt(std::string_view s) {
  int64_t v = 0;
  if (s.empty()) return std::nullopt;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

std::vector<std::string_view> splitCsv(std::string_view s) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t comma = s.find(',', start);
    std::string_view part = s.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    while (!part.empty() && part.back() == ' ') part.remove_suffix(1);
    out.push_back(part);
    if (comma == std::string_view::npos) return out;
    start = comma + 1;
  }
}

// DNS-1123 subdomain: lower-case alphanumerics, '-' and '.', starting and ending alphanumeric.
bool isObjectName(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!alnum(s.front()) || !alnum(s.back())) return false;
  for (char c : s)
    if (!alnum(c) && c != '-' && c != '.') return false;
  return true;
}

}  // namespace

const std::vector<AnnotationSpec>& annotationTable() {
  using namespace k8s::api;
  static const std::vector<AnnotationSpec> table = {
#define TF_WEBHOOK_SPEC(f, key, kind, min, max, choices, who) \
  {Field::f, key, Kind::kind, min, max, choices, Who::who},
      TF_WEBHOOK_ANNOTATIONS(TF_WEBHOOK_SPEC)
#undef TF_WEBHOOK_SPEC
  };
  return table;
}

const AnnotationSpec& specOf(Field field) { return annotationTable()[static_cast<size_t>(field)]; }

Result<int64_t> parseGoDuration(std::string_view text) {
  // Go's time.ParseDuration: [-+]? ( number unit )+ | "0"; units ns us µs ms s m h.
  std::string_view s = text;
  bool negative = false;
  if (!s.empty() && (s.front() == '-' || s.front() == '+')) {
    negative = s.front() == '-';
    s.remove_prefix(1);
  }
  if (s == "0") return int64_t{0};
  if (s.empty()) return invalidArgument("empty duration");
  long double total = 0;
  while (!s.empty()) {
    size_t i = 0;
    while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
    std::string number(s.substr(0, i));
    if (number.empty() || number == "." || std::count(number.begin(), number.end(), '.') > 1)
      return invalidArgument("expected a number before each unit");
    s.remove_prefix(i);
    size_t j = 0;
    while (j < s.size() && !std::isdigit(static_cast<unsigned char>(s[j])) && s[j] != '.') ++j;
    std::string_view unit = s.substr(0, j);
    s.remove_prefix(j);
    long double scale = 0;
    if (unit == "ns") scale = 1;
    else if (unit == "us" || unit == "\xc2\xb5s" || unit == "\xce\xbcs") scale = 1e3;
    else if (unit == "ms") scale = 1e6;
    else if (unit == "s") scale = 1e9;
    else if (unit == "m") scale = 60e9;
    else if (unit == "h") scale = 3600e9;
    else return invalidArgument(unit.empty() ? "missing unit (ns, us, ms, s, m, h)" : "unknown unit " + quoted(unit));
    total += std::strtold(number.c_str(), nullptr) * scale;
    if (total > 9.2e18L) return invalidArgument("duration out of range");
  }
  return static_cast<int64_t>(negative ? -total : total);
}

Result<Value> parseValue(const AnnotationSpec& spec, std::string_view text) {
  switch (spec.kind) {
    case Kind::Quantity: {
      auto q = Quantity::parse(text);
      if (!q) return bad(spec, text, "a quantity (" + q.status().message() + ")");
      if (q->sign() < 0) return bad(spec, text, "a quantity >= 0");
      return Value(*q);
    }
    case Kind::Percent:
    case Kind::Int: {
      auto v = parseInt(text);
      if (!v) return bad(spec, text, spec.kind == Kind::Percent ? "an integer percentage" : "an integer");
      if (*v < spec.min || *v > spec.max)
        return bad(spec, text, "in " + std::to_string(spec.min) + ".." + std::to_string(spec.max));
      return Value(*v);
    }
    case Kind::Bool:
      if (text == "true") return Value(true);
      if (text == "false") return Value(false);
      return bad(spec, text, "\"true\" or \"false\"");
    case Kind::Enum: {
      std::string_view rest = spec.choices;
      while (true) {
        size_t bar = rest.find('|');
        if (rest.substr(0, bar) == text) return Value(std::string(text));
        if (bar == std::string_view::npos) break;
        rest.remove_prefix(bar + 1);
      }
      std::string one_of(spec.choices);
      for (char& c : one_of)
        if (c == '|') c = ',';
      return bad(spec, text, "one of " + one_of);
    }
    case Kind::Duration: {
      auto d = parseGoDuration(text);
      if (!d) return bad(spec, text, "a Go duration like 30s or 1h30m (" + d.status().message() + ")");
      if (*d < 0) return bad(spec, text, "a duration >= 0");
      return Value(std::string(text));
    }
    case Kind::Name:
      if (!isObjectName(text)) return bad(spec, text, "an object name (lower-case letters, digits, '-', '.')");
      return Value(std::string(text));
    case Kind::Text:
      if (text.empty()) return bad(spec, text, "a non-empty value");
      return Value(std::string(text));
    case Kind::Csv: {
      std::vector<std::string> names;
      for (auto part : splitCsv(text)) {
        if (part.empty()) return bad(spec, text, "a comma-separated list of names");
        names.emplace_back(part);
      }
      return Value(std::move(names));
    }
    case Kind::IntCsv: {
      std::vector<int64_t> ints;
      for (auto part : splitCsv(text)) {
        auto v = parseInt(part);
        if (!v || *v < 0) return bad(spec, text, "a comma-separated list of integers >= 0");
        ints.push_back(*v);
      }
      return Value(std::move(ints));
    }
  }
  return internalError("unknown annotation kind");
}

Result<Values> parseAnnotations(const nlohmann::json& annotations) {
  Values values;
  if (annotations.is_null()) return values;
  if (!annotations.is_object()) return invalidArgument("metadata.annotations is not an object");
  for (const auto& spec : annotationTable()) {
    if (spec.who != Who::User) continue;
    auto it = annotations.find(spec.key);
    if (it == annotations.end()) continue;
    if (!it->is_string()) return invalidArgument(std::string(spec.key) + ": not a string");
    auto v = parseValue(spec, it->get<std::string>());
    if (!v) return v.status();
    values.set(spec.field, std::move(*v));
  }
  return values;
}

std::string formatValue(const Value& value) {
  struct Visitor {
    std::string operator()(const Quantity& q) const { return q.toString(); }
    std::string operator()(int64_t v) const { return std::to_string(v); }
    std::string operator()(bool v) const { return v ? "true" : "false"; }
    std::string operator()(const std::string& v) const { return v; }
    std::string operator()(const std::vector<std::string>& v) const {
      std::string out;
      for (const auto& s : v) out += (out.empty() ? "" : ",") + s;
      return out;
    }
    std::string operator()(const std::vector<int64_t>& v) const {
      std::string out;
      for (auto i : v) out += (out.empty() ? "" : ",") + std::to_string(i);
      return out;
    }
  };
  return std::visit(Visitor{}, value);
}

std::map<std::string, std::string> formatAnnotations(const Values& values) {
  std::map<std::string, std::string> out;
  for (const auto& [field, value] : values.all()) {
    const auto& spec = specOf(field);
    out[spec.key] = formatValue(value);
  }
  return out;
}

}  // namespace tf::webhook
