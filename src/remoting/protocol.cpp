#include "remoting/protocol.h"

#include <unistd.h>

#include "cuda/catalog.h"

#include "remoting/transport.h"

namespace tf::remoting {

const char* kindName(Kind kind) {
  switch (kind) {
#define TF_X(name, value)                                                                         \
  case Kind::name: return #name;
    TF_REMOTE_MESSAGES(TF_X)
#undef TF_X
  }
  return nullptr;
}

void encodeHeader(const FrameHeader& h, uint8_t out[kHeaderSize]) {
  std::memcpy(out, &h, kHeaderSize); // the layout is little-endian and packed (static_assert)
}

Status decodeHeader(const uint8_t in[kHeaderSize], FrameHeader* h) {
  std::memcpy(h, in, kHeaderSize);
  if (!kindName(static_cast<Kind>(h->kind))) return dataLoss("unknown frame kind");
  if (h->flags & ~kKnownFlags) return dataLoss("unknown frame flags");
  if (h->argsLen > kMaxArgs) return dataLoss("frame args over the limit");
  if (h->bulkLen > kMaxBulk) return dataLoss("frame bulk over the limit");
  return Status::ok();
}

std::string_view Reader::blob(size_t cap) {
  uint32_t n = u32();
  if (!ok_) return {};
  if (n > cap) {
    fail("blob over its limit");
    return {};
  }
  if (n > n_ - at_) {
    fail("blob truncated");
    return {};
  }
  std::string_view v(reinterpret_cast<const char*>(p_ + at_), n);
  at_ += n;
  return v;
}

void encodeCall(Writer& w, const uint64_t* scalars, uint32_t count, const void* blob,
                size_t blobSize) {
  w.u8(static_cast<uint8_t>(count));
  w.bytes(scalars, count * sizeof(uint64_t));
  w.blob(blob, blobSize);
}

Status decodeCall(const void* args, size_t size, CallArgs* out) {
  Reader r(args, size);
  uint32_t n = r.u8();
  if (n > kMaxScalars) return dataLoss("malformed message: too many scalars");
  out->count = n;
  for (uint32_t i = 0; i < n; ++i) out->s[i] = r.u64();
  out->blob = r.blob(kMaxArgs);
  if (r.ok() && r.remaining()) r.fail("trailing bytes");
  return r.status();
}

void encodeLaunch(Writer& w, const ParamSlot* slots, uint32_t count, const void* params,
                  size_t paramsSize, const void* attrs, uint32_t attrCount, size_t attrSize) {
  w.u32(count);
  for (uint32_t i = 0; i < count; ++i) {
    w.u32(slots[i].offset);
    w.u32(slots[i].size);
  }
  w.blob(params, paramsSize);
  w.u32(attrCount);
  w.bytes(attrs, attrCount * attrSize);
}

void encodeMirrorRuns(Writer& w, const std::vector<MirrorRun>& runs) {
  w.u32(static_cast<uint32_t>(runs.size()));
  for (const MirrorRun& r : runs) {
    w.u64(r.addr);
    w.u64(r.len);
  }
}

Status decodeMirrorRuns(std::string_view blob, uint64_t bulkLen, std::vector<MirrorRun>* out) {
  Reader r(blob.data(), blob.size());
  uint32_t n = r.u32();
  if (!r.ok()) return r.status();
  if (n > kMaxMirrorRuns || uint64_t(n) * 16 != r.remaining())
    return dataLoss("malformed message: mirror run count");
  out->clear();
  uint64_t total = 0;
  for (uint32_t i = 0; i < n; ++i) {
    MirrorRun run{r.u64(), r.u64()};
    if (run.len == 0 || run.addr + run.len < run.addr || total + run.len < total)
      return dataLoss("malformed message: mirror run");
    total += run.len;
    out->push_back(run);
  }
  if (total != bulkLen) return dataLoss("malformed message: mirror runs do not match the bulk");
  return Status::ok();
}

Status decodeLaunch(std::string_view blob, size_t attrSize, LaunchBlob* out) {
  Reader r(blob.data(), blob.size());
  uint32_t n = r.u32();
  if (n > kMaxParams) return dataLoss("malformed launch: too many parameters");
  out->slots.resize(r.ok() ? n : 0);
  for (auto& s : out->slots) {
    s.offset = r.u32();
    s.size = r.u32();
  }
  out->params = r.blob(kMaxArgs);
  out->attrCount = r.u32();
  if (out->attrCount > kMaxLaunchAttrs) return dataLoss("malformed launch: too many attributes");
  if (r.ok() && r.remaining() != out->attrCount * attrSize) r.fail("attribute records");
  TF_RETURN_IF_ERROR(r.status());
  out->attrs = blob.substr(blob.size() - r.remaining());
  for (auto& s : out->slots)
    if (s.offset > out->params.size() || s.size > out->params.size() - s.offset)
      return dataLoss("malformed launch: parameter outside its buffer");
  return Status::ok();
}

Hello localHello(const std::string& token, uint32_t role) {
  Hello hello;
  hello.catalogSize = static_cast<uint32_t>(cuda::catalogSize());
  hello.pid = static_cast<uint32_t>(getpid());
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  hello.host = host;
  hello.token = token;
  hello.role = role;
  return hello;
}

Status sayHello(Transport& t, const Hello& hello, int32_t* result, std::vector<uint8_t>* args, CallArgs* ids) {
  Writer w;
  encodeHello(w, hello);
  FrameHeader h;
  h.kind = static_cast<uint16_t>(Kind::Hello);
  h.argsLen = static_cast<uint32_t>(w.size());
  TF_RETURN_IF_ERROR(sendFrame(t, h, w.data(), nullptr, 0));
  FrameHeader r;
  TF_RETURN_IF_ERROR(readHeader(t, &r));
  if (r.kind != static_cast<uint16_t>(Kind::HelloReply)) return dataLoss("no HelloReply");
  TF_RETURN_IF_ERROR(readArgs(t, r, args));
  TF_RETURN_IF_ERROR(decodeReply(args->data(), args->size(), ids));
  *result = r.result;
  return Status::ok();
}

void encodeHello(Writer& w, const Hello& h) {
  w.u32(h.magic);
  w.u32(h.version);
  w.u32(h.catalogSize);
  w.u32(h.pid);
  w.str(h.host);
  w.str(h.token);
  w.u64(h.attachTo);
  w.u32(h.role);
}

Status decodeHello(const void* args, size_t size, Hello* out) {
  Reader r(args, size);
  out->magic = r.u32();
  uint32_t version = r.u32();
  out->catalogSize = r.u32();
  out->pid = r.u32();
  out->host = std::string(r.blob(kMaxHostName));
  out->token = std::string(r.blob(kMaxToken));
  out->attachTo = r.u64();
  out->role = r.u32();
  if (r.ok() && r.remaining()) r.fail("trailing bytes");
  TF_RETURN_IF_ERROR(r.status());
  if (out->magic != kHelloMagic) return dataLoss("not a TensorFusion remoting client");
  if (out->role > kRoleResume) return dataLoss("unknown client role");
  if (version > 0xffff) return dataLoss("bad protocol version");
  out->version = static_cast<uint16_t>(version);
  return Status::ok();
}

Status sendFrame(Transport& t, const FrameHeader& h, const void* args, const iovec* bulk,
                 int bulkCount) {
  uint8_t head[kHeaderSize];
  encodeHeader(h, head);
  iovec v[8];
  int n = 0;
  v[n++] = {head, kHeaderSize};
  if (h.argsLen) v[n++] = {const_cast<void*>(args), h.argsLen};
  if (bulkCount > 8 - n) return invalidArgument("too many bulk pieces");
  for (int i = 0; i < bulkCount; ++i)
    if (bulk[i].iov_len) v[n++] = bulk[i];
  return t.writeV(v, n);
}

Status readHeader(Transport& t, FrameHeader* h) {
  uint8_t head[kHeaderSize];
  TF_RETURN_IF_ERROR(t.readExact(head, kHeaderSize));
  return decodeHeader(head, h);
}

Status readArgs(Transport& t, const FrameHeader& h, std::vector<uint8_t>* args) {
  args->resize(h.argsLen);
  if (!h.argsLen) return Status::ok();
  return t.readExact(args->data(), h.argsLen);
}

Status skipBulk(Transport& t, uint64_t n) {
  uint8_t scratch[64 * 1024];
  while (n) {
    size_t k = n < sizeof(scratch) ? static_cast<size_t>(n) : sizeof(scratch);
    TF_RETURN_IF_ERROR(t.readExact(scratch, k));
    n -= k;
  }
  return Status::ok();
}

uint64_t fnv1a64(const void* data, size_t size) {
  const auto* p = static_cast<const uint8_t*>(data);
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < size; ++i) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

} // namespace tf::remoting
