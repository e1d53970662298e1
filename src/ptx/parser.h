// PTX text -> ast::Module. Errors name the line and the construct.
#pragma once

#include <string_view>

#include "common/status.h"
#include "ptx/ast.h"

namespace tf::ptx {

Result<ast::Module> parseModule(std::string_view text);

// Byte size of a PTX fundamental type name (".f32" -> 4), 0 if it is not one.
uint32_t typeSizeOf(const std::string& type);

} // namespace tf::ptx
