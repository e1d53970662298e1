# The driver-API catalog, generated from the toolkit's own headers (see gen_catalog.py).
set(TF_CATALOG_INC ${CMAKE_CURRENT_BINARY_DIR}/generated/cuda/catalog.inc)
add_custom_command(
  OUTPUT ${TF_CATALOG_INC}
  COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_CURRENT_BINARY_DIR}/generated/cuda
  COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/gen_catalog.py
          --typedefs ${TF_CUDA_ROOT}/include/cudaTypedefs.h ${TF_CUDA_ROOT}/include/cudaProfilerTypedefs.h
          --headers ${TF_CUDA_ROOT}/include/cuda.h ${TF_CUDA_ROOT}/include/cudaProfiler.h
          --out ${TF_CATALOG_INC} --cc ${CMAKE_C_COMPILER}
  DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/gen_catalog.py ${TF_CUDA_ROOT}/include/cudaTypedefs.h
          ${TF_CUDA_ROOT}/include/cudaProfilerTypedefs.h ${TF_CUDA_ROOT}/include/cuda.h
          ${TF_CUDA_ROOT}/include/cudaProfiler.h
  COMMENT "Generating the CUDA driver-API catalog"
  VERBATIM)
add_custom_target(tf_cuda_catalog DEPENDS ${TF_CATALOG_INC})
target_sources(tf_cuda PRIVATE catalog.cpp export_table_ids.cpp)
add_dependencies(tf_cuda tf_cuda_catalog)
target_include_directories(tf_cuda PUBLIC ${CMAKE_CURRENT_BINARY_DIR}/generated)
