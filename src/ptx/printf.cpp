#include "ptx/printf.h"

#include <cstdio>
#include <cstring>
#include <mutex>

namespace tf::ptx {

namespace {

std::mutex& printfMutex() {
  static std::mutex mu;
  return mu;
}

bool readArgBytes(Warp& w, uint32_t lane, uint64_t addr, uint32_t size, const Inst& in,
                  uint64_t* out) {
  *out = 0;
  for (uint32_t k = 0; k < size; ++k) {
    uint8_t* p = genericPtr(w, lane, addr + k, 1, in);
    if (!p) return false;
    *out |= uint64_t(*p) << (8 * k);
  }
  return true;
}

} // namespace

int formatDevicePrintf(Warp& w, uint32_t lane, const std::string& fmt, uint64_t args,
                       const Inst& in, std::string* out) {
  uint64_t off = 0;
  char buf[512];
  size_t i = 0;
  while (i < fmt.size()) {
    char c = fmt[i];
    if (c != '%') {
      out->push_back(c);
      ++i;
      continue;
    }
    if (i + 1 < fmt.size() && fmt[i + 1] == '%') {
      out->push_back('%');
      i += 2;
      continue;
    }
    // %[flags][width][.precision][length]conv
    size_t j = i + 1;
    while (j < fmt.size() && std::strchr("-+ #0", fmt[j])) ++j;
    while (j < fmt.size() && (std::isdigit(static_cast<unsigned char>(fmt[j])))) ++j;
    if (j < fmt.size() && fmt[j] == '.') {
      ++j;
      while (j < fmt.size() && std::isdigit(static_cast<unsigned char>(fmt[j]))) ++j;
    }
    size_t lenStart = j;
    while (j < fmt.size() && std::strchr("hlLqjzt", fmt[j])) ++j;
    if (j >= fmt.size()) {
      out->append(fmt, i, std::string::npos);
      break;
    }
    char conv = fmt[j];
    std::string len = fmt.substr(lenStart, j - lenStart);
    std::string spec = fmt.substr(i, lenStart - i); // without length
    bool wide = len.find('l') != std::string::npos || len == "j" || len == "z" || len == "t" ||
                len == "q" || len == "L";
    ++j;
    switch (conv) {
    case 'd': case 'i': case 'u': case 'x': case 'X': case 'o': case 'c': {
      uint32_t size = (wide && conv != 'c') ? 8 : 4;
      off = (off + size - 1) & ~uint64_t(size - 1);
      uint64_t v;
      if (!readArgBytes(w, lane, args + off, size, in, &v)) return -1;
      off += size;
      std::string f = spec + "ll" + conv;
      if (conv == 'c') {
        f = spec + "c";
        std::snprintf(buf, sizeof buf, f.c_str(), static_cast<int>(v));
      } else if (conv == 'd' || conv == 'i') {
        long long sv = size == 8 ? static_cast<long long>(v) : static_cast<long long>(static_cast<int32_t>(v));
        std::snprintf(buf, sizeof buf, f.c_str(), sv);
      } else {
        unsigned long long uv = size == 8 ? v : static_cast<uint32_t>(v);
        if (len == "h") uv &= 0xffff;
        if (len == "hh") uv &= 0xff;
        std::snprintf(buf, sizeof buf, f.c_str(), uv);
      }
      out->append(buf);
      break;
    }
    case 'f': case 'F': case 'e': case 'E': case 'g': case 'G': case 'a': case 'A': {
      off = (off + 7) & ~uint64_t(7);
      uint64_t v;
      if (!readArgBytes(w, lane, args + off, 8, in, &v)) return -1;
      off += 8;
      double d;
      std::memcpy(&d, &v, 8);
      std::string f = spec + conv;
      std::snprintf(buf, sizeof buf, f.c_str(), d);
      out->append(buf);
      break;
    }
    case 'p': case 's': {
      off = (off + 7) & ~uint64_t(7);
      uint64_t v;
      if (!readArgBytes(w, lane, args + off, 8, in, &v)) return -1;
      off += 8;
      if (conv == 'p') {
        std::snprintf(buf, sizeof buf, "%s", ("0x" + [&] {
                                                char h[32];
                                                std::snprintf(h, sizeof h, "%llx", static_cast<unsigned long long>(v));
                                                return std::string(h);
                                              }()).c_str());
        out->append(buf);
      } else {
        std::string s;
        if (v == 0) {
          s = "(null)";
        } else {
          for (int k = 0; k < 65536; ++k) {
            uint8_t* p = genericPtr(w, lane, v + k, 1, in);
            if (!p) return -1;
            if (*p == 0) break;
            s.push_back(static_cast<char>(*p));
          }
        }
        std::string f = spec + "s";
        int n = std::snprintf(nullptr, 0, f.c_str(), s.c_str());
        std::string tmp(static_cast<size_t>(n > 0 ? n : 0) + 1, '\0');
        std::snprintf(tmp.data(), tmp.size(), f.c_str(), s.c_str());
        tmp.resize(static_cast<size_t>(n > 0 ? n : 0));
        out->append(tmp);
      }
      break;
    }
    default:
      out->append(fmt, i, j - i);
      break;
    }
    i = j;
  }
  return static_cast<int>(out->size());
}

void printfOutput(const std::string& text) {
  std::lock_guard<std::mutex> lock(printfMutex());
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

} // namespace tf::ptx
