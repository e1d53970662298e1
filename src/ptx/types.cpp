#include "ptx/types.h"

#include <unordered_map>

namespace tf::ptx {

Ty parseTy(const std::string& m) {
  static const std::unordered_map<std::string, Ty> map = {
      {".pred", Ty::Pred}, {".b8", Ty::B8},       {".b16", Ty::B16},     {".b32", Ty::B32},
      {".b64", Ty::B64},   {".b128", Ty::B128},   {".u8", Ty::U8},       {".u16", Ty::U16},
      {".u32", Ty::U32},   {".u64", Ty::U64},     {".s8", Ty::S8},       {".s16", Ty::S16},
      {".s32", Ty::S32},   {".s64", Ty::S64},     {".f16", Ty::F16},     {".f16x2", Ty::F16x2},
      {".bf16", Ty::BF16}, {".bf16x2", Ty::BF16x2}, {".f32", Ty::F32},   {".f64", Ty::F64},
      {".tf32", Ty::TF32},
  };
  auto it = map.find(m);
  return it == map.end() ? Ty::None : it->second;
}

const char* tyName(Ty t) {
  switch (t) {
  case Ty::Pred: return ".pred";
  case Ty::B8: return ".b8";
  case Ty::B16: return ".b16";
  case Ty::B32: return ".b32";
  case Ty::B64: return ".b64";
  case Ty::B128: return ".b128";
  case Ty::U8: return ".u8";
  case Ty::U16: return ".u16";
  case Ty::U32: return ".u32";
  case Ty::U64: return ".u64";
  case Ty::S8: return ".s8";
  case Ty::S16: return ".s16";
  case Ty::S32: return ".s32";
  case Ty::S64: return ".s64";
  case Ty::F16: return ".f16";
  case Ty::F16x2: return ".f16x2";
  case Ty::BF16: return ".bf16";
  case Ty::BF16x2: return ".bf16x2";
  case Ty::F32: return ".f32";
  case Ty::F64: return ".f64";
  case Ty::TF32: return ".tf32";
  default: return "";
  }
}

} // namespace tf::ptx
