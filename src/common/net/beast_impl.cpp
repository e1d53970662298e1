// The one translation unit that compiles Asio's, Asio SSL's and Beast's non-template code
// (separate compilation; the macros come from tf_net's CMake target).
#include <boost/asio/impl/src.hpp>
#include <boost/asio/ssl/impl/src.hpp>
#include <boost/beast/src.hpp>
