# libcuda.so.1: the soft GPU driver. Implementation objects (tf_sg_* functions) and the
# exports generated from the catalog are linked whole, so that every implemented function is
# found by the weak references in exports.cpp.
file(GLOB TF_SOFTGPU_DRIVER_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/driver/*.cpp)
add_library(tf_softgpu_driver OBJECT ${TF_SOFTGPU_DRIVER_SOURCES})
target_link_libraries(tf_softgpu_driver PUBLIC tf_cuda tf_softgpu_state)
if(TARGET tf_ptx)
  target_link_libraries(tf_softgpu_driver PUBLIC tf_ptx)
  target_compile_definitions(tf_softgpu_driver PRIVATE TF_HAVE_PTX)
endif()
add_dependencies(tf_softgpu_driver tf_cuda_catalog)

add_library(tf_libcuda SHARED $<TARGET_OBJECTS:tf_softgpu_driver>)
target_link_libraries(tf_libcuda PRIVATE tf_softgpu_driver)
set_target_properties(tf_libcuda PROPERTIES
  OUTPUT_NAME cuda
  SOVERSION 1
  LIBRARY_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/lib)
# -Bsymbolic-functions: the driver's own references to its exports stay its own even when an
# interposer (the limiter) is preloaded in front of it.
target_link_options(tf_libcuda PRIVATE -Wl,--no-undefined -Wl,-z,nodelete -Wl,-Bsymbolic-functions)
if(TF_SANITIZE)
  # Enum parameters arrive from C callers and may hold any value; the driver checks them
  # itself (an out-of-range attribute is CUDA_ERROR_INVALID_VALUE), so UBSan's enum check would
  # only flag correct handling of bad input.
  target_compile_options(tf_softgpu_driver PRIVATE -fno-sanitize=enum)
endif()
