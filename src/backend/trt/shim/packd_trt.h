/* packd's C interface over the TensorRT runtime API (TensorRT 10.x and 11.x headers).
 *
 * Why a shim: TensorRT's API is C++ with vtables whose layout changes between majors, so Rust
 * talks to this small C surface, compiled against the headers of the TensorRT on the device.
 * libnvinfer is opened with dlopen at run time: the binary has no link-time TensorRT dependency
 * and starts (on the CPU backend) on machines without it.
 *
 * Every function catches C++ exceptions, validates the handles it is given, and reports failure
 * through its return value plus packd_trt_last_error() (thread-local text).
 */
#ifndef PACKD_TRT_H
#define PACKD_TRT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct PackdTrtLibrary PackdTrtLibrary;
typedef struct PackdTrtRuntime PackdTrtRuntime;
typedef struct PackdTrtEngine PackdTrtEngine;
typedef struct PackdTrtContext PackdTrtContext;

/* Receives TensorRT's log: severity 0 internal error, 1 error, 2 warning, 3 info, 4 verbose. */
typedef void (*PackdTrtLogFn)(void *user, int32_t severity, const char *message);

#define PACKD_TRT_MAX_DIMS 8
#define PACKD_TRT_NAME_LEN 256

/* One input or output tensor of an engine. */
typedef struct PackdTrtTensorInfo {
    char name[PACKD_TRT_NAME_LEN];
    int32_t is_input;
    int32_t data_type; /* nvinfer1::DataType: 0 float, 1 half, 2 int8, 3 int32, ... */
    int32_t rank;
    int64_t dims[PACKD_TRT_MAX_DIMS];
} PackdTrtTensorInfo;

/* A tensor shape; -1 marks a dimension only known at run time (a dynamic batch). */
typedef struct PackdTrtShape {
    int32_t rank;
    int64_t dims[PACKD_TRT_MAX_DIMS];
} PackdTrtShape;

/* Which shape of an optimisation profile (nvinfer1::OptProfileSelector). */
#define PACKD_TRT_PROFILE_MIN 0
#define PACKD_TRT_PROFILE_OPT 1
#define PACKD_TRT_PROFILE_MAX 2

/* NV_TENSORRT_VERSION of the headers this shim was compiled with (major*10000+minor*100+patch). */
int32_t packd_trt_header_version(void);

/* Text of the last failure on this thread; empty when none. Valid until the next call. */
const char *packd_trt_last_error(void);

/* Opens libnvinfer (path, or NULL for libnvinfer.so.MAJOR then libnvinfer_lean.so.MAJOR),
 * checks that its major version matches the headers, and installs the log callback. */
PackdTrtLibrary *packd_trt_library_open(const char *path, PackdTrtLogFn log, void *user);
/* The library's own version (getInferLibVersion), or -1. */
int32_t packd_trt_library_version(const PackdTrtLibrary *library);
void packd_trt_library_close(PackdTrtLibrary *library);

/* Checks that a CUDA driver with at least one device answers, then creates an IRuntime and
 * checks that the pointer TensorRT returned is a live object of that library. */
PackdTrtRuntime *packd_trt_runtime_create(PackdTrtLibrary *library);
/* DLA cores this runtime can use, or -1. */
int32_t packd_trt_runtime_dla_cores(const PackdTrtRuntime *runtime);
void packd_trt_runtime_destroy(PackdTrtRuntime *runtime);

/* Deserializes a plan; dla_core < 0 means the GPU, else setDLACore(dla_core) first. */
PackdTrtEngine *packd_trt_engine_deserialize(PackdTrtRuntime *runtime, int32_t dla_core,
                                             const void *plan, size_t size);
/* Number of IO tensors, or -1. */
int32_t packd_trt_engine_io_count(const PackdTrtEngine *engine);
/* Describes IO tensor `index`; returns 0 on success, -1 on failure. */
int32_t packd_trt_engine_io_describe(const PackdTrtEngine *engine, int32_t index,
                                     PackdTrtTensorInfo *info);
/* Input `name`'s min, opt or max shape (PACKD_TRT_PROFILE_*) in optimisation profile 0, the one
 * every context starts with; 0 on success, -1 on failure. */
int32_t packd_trt_engine_profile_shape(const PackdTrtEngine *engine, const char *name,
                                       int32_t selector, PackdTrtShape *shape);
void packd_trt_engine_destroy(PackdTrtEngine *engine);

PackdTrtContext *packd_trt_context_create(PackdTrtEngine *engine);
/* Binds a device (or mapped host) address to a tensor; 0 on success, -1 on failure. */
int32_t packd_trt_context_set_tensor_address(PackdTrtContext *context, const char *name,
                                             void *address);
/* Sets input `name`'s shape for the enqueues that follow (setInputShape: an engine built with a
 * dynamic batch has none until it is set); 0 on success, -1 on failure. */
int32_t packd_trt_context_set_input_shape(PackdTrtContext *context, const char *name,
                                          const PackdTrtShape *shape);
/* Tensor `name`'s shape in this context: an output's follows from the input shapes set. 0 on
 * success, -1 on failure. */
int32_t packd_trt_context_tensor_shape(const PackdTrtContext *context, const char *name,
                                       PackdTrtShape *shape);
/* Enqueues inference on a CUDA stream (cudaStream_t, may be NULL); 0 on success, -1 on failure. */
int32_t packd_trt_context_enqueue(PackdTrtContext *context, void *stream);
void packd_trt_context_destroy(PackdTrtContext *context);

#ifdef __cplusplus
}
#endif

#endif
