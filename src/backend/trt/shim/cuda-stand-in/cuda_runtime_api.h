/* Stand-in for CUDA's cuda_runtime_api.h, used only when no CUDA toolkit headers are found.
 *
 * TensorRT's runtime headers include cuda_runtime_api.h for two opaque handle types and nothing
 * else the shim uses; the shim never calls the CUDA runtime (streams come from Rust). These are
 * the same declarations as CUDA's driver_types.h, so the ABI is identical. */
#ifndef PACKD_CUDA_RUNTIME_API_STAND_IN_H
#define PACKD_CUDA_RUNTIME_API_STAND_IN_H
typedef struct CUstream_st *cudaStream_t;
typedef struct CUevent_st *cudaEvent_t;
#endif
