# Runs a command and checks BOTH its exit code and its output (stdout and stderr together),
# which CTest's PASS_REGULAR_EXPRESSION alone does not: with it, a program that prints the
# expected line and then fails still passes.
#
#   cmake -DEXIT=<code> [-DOUTPUT=<regex>] [-DNOT_OUTPUT=<regex>] -P expect_run.cmake -- cmd args...
#
# EXIT is the exact exit code wanted (0 for success). OUTPUT, when given, must match the
# output; NOT_OUTPUT, when given, must not. The output is printed whatever happens. Use it
# through tf_add_checked_test() (tests/CMakeLists.txt).
if(NOT DEFINED EXIT)
  message(FATAL_ERROR "expect_run.cmake: -DEXIT=<code> is required")
endif()

set(cmd)
set(seen_dashes FALSE)
math(EXPR last "${CMAKE_ARGC} - 1")
foreach(i RANGE ${last})
  if(seen_dashes)
    if(CMAKE_ARGV${i} MATCHES ";")
      message(FATAL_ERROR "expect_run.cmake: an argument holds ';' (a CMake list separator): "
                          "'${CMAKE_ARGV${i}}'; wrap the command in a script")
    endif()
    list(APPEND cmd "${CMAKE_ARGV${i}}")
  elseif(CMAKE_ARGV${i} STREQUAL "--")
    set(seen_dashes TRUE)
  endif()
endforeach()
if(NOT cmd)
  message(FATAL_ERROR "expect_run.cmake: no command after --")
endif()

execute_process(COMMAND ${cmd} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
message("${out}")

set(problems)
if(NOT "${rc}" STREQUAL "${EXIT}")
  list(APPEND problems "exit code ${rc}, want ${EXIT}")
endif()
if(DEFINED OUTPUT AND NOT out MATCHES "${OUTPUT}")
  list(APPEND problems "the output does not match '${OUTPUT}'")
endif()
if(DEFINED NOT_OUTPUT AND out MATCHES "${NOT_OUTPUT}")
  list(APPEND problems "the output matches '${NOT_OUTPUT}', which it must not")
endif()
if(problems)
  string(REPLACE ";" "; " problems "${problems}")
  message(FATAL_ERROR "expect_run: ${cmd}: ${problems}")
endif()
message("expect_run: exit code ${rc} and output as expected")
