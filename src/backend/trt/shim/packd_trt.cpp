// packd's C shim over the TensorRT runtime API; see packd_trt.h for the contract.
//
// Built by build.rs against TensorRT 10.x (JetPack 6) or 11.x (JetPack 7) headers. Only
// source-compatible parts of the API are used: createInferRuntime_INTERNAL, IRuntime,
// ICudaEngine (with getProfileShape), IExecutionContext with setInputShape, getTensorShape,
// setTensorAddress and enqueueV3.

#include "packd_trt.h"

#include <NvInferRuntime.h>

#include <dlfcn.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>
#include <new>
#include <string>

namespace {

// Distinct tags at the start of every handle, so a stale or foreign pointer is refused.
constexpr uint64_t kLibraryTag = 0x70616b6454524c31ULL;  // "packdTRL1"
constexpr uint64_t kRuntimeTag = 0x70616b6454525231ULL;
constexpr uint64_t kEngineTag = 0x70616b6454524531ULL;
constexpr uint64_t kContextTag = 0x70616b6454524331ULL;

thread_local std::string last_error;
// The most recent error TensorRT logged on this thread: TensorRT reports most failures
// (a bad plan, a wrong DLA core) only through the logger and a null return.
thread_local std::string last_logged_error;

void set_error(std::string text) { last_error = std::move(text); }

std::string with_logged_reason(const std::string &what) {
    if (last_logged_error.empty()) {
        return what;
    }
    return what + ": " + last_logged_error;
}

class ForwardingLogger final : public nvinfer1::ILogger {
public:
    ForwardingLogger(PackdTrtLogFn callback, void *user) : callback_(callback), user_(user) {}

    void log(Severity severity, nvinfer1::AsciiChar const *message) noexcept override {
        try {
            const char *text = message != nullptr ? message : "";
            if (severity == Severity::kERROR || severity == Severity::kINTERNAL_ERROR) {
                last_logged_error = text;
            }
            if (callback_ != nullptr) {
                callback_(user_, static_cast<int32_t>(severity), text);
            }
        } catch (...) {
            // A logger must never throw into TensorRT.
        }
    }

private:
    PackdTrtLogFn callback_;
    void *user_;
};

using CreateRuntimeFn = void *(*)(void *logger, int32_t version);
using LibVersionFn = int32_t (*)();
using CuInitFn = int (*)(unsigned int flags);
using CuDeviceGetCountFn = int (*)(int *count);

// True when `length` bytes at `address` can be read: write() copies them into a pipe and
// answers EFAULT instead of crashing when they are not mapped.
bool readable(const void *address, size_t length) {
    if (address == nullptr) {
        return false;
    }
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        return false;
    }
    ssize_t written = write(fds[1], address, length);
    close(fds[0]);
    close(fds[1]);
    return written == static_cast<ssize_t>(length);
}

// The base address of the shared object that holds `address`, or null.
const void *object_base(const void *address) {
    Dl_info info;
    if (dladdr(address, &info) == 0) {
        return nullptr;
    }
    return info.dli_fbase;
}

}  // namespace

struct PackdTrtLibrary {
    uint64_t tag = kLibraryTag;
    void *handle = nullptr;
    std::string path;
    int32_t version = -1;
    CreateRuntimeFn create_runtime = nullptr;
    const void *base = nullptr;
    ForwardingLogger logger;
    PackdTrtLibrary(PackdTrtLogFn callback, void *user) : logger(callback, user) {}
};

struct PackdTrtRuntime {
    uint64_t tag = kRuntimeTag;
    PackdTrtLibrary *library = nullptr;
    nvinfer1::IRuntime *runtime = nullptr;
    // setDLACore changes runtime state read by deserializeCudaEngine: keep the pair atomic.
    std::mutex deserialize_lock;
};

struct PackdTrtEngine {
    uint64_t tag = kEngineTag;
    nvinfer1::ICudaEngine *engine = nullptr;
};

struct PackdTrtContext {
    uint64_t tag = kContextTag;
    nvinfer1::IExecutionContext *context = nullptr;
};

namespace {

template <typename Handle>
bool valid(const Handle *handle, uint64_t tag, const char *kind) {
    if (handle == nullptr || handle->tag != tag) {
        set_error(std::string("invalid ") + kind + " handle");
        return false;
    }
    return true;
}

std::string describe_version(int32_t version) {
    char text[32];
    std::snprintf(text, sizeof text, "%d.%d.%d", version / 10000, (version / 100) % 100,
                  version % 100);
    return text;
}

// The CUDA driver must answer before TensorRT is asked for a runtime: without one the lean
// runtime hands back a non-null pointer that is not a usable object.
bool cuda_driver_ready() {
    void *driver = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (driver == nullptr) {
        const char *reason = dlerror();
        set_error(std::string("no CUDA driver: cannot open libcuda.so.1: ") +
                  (reason != nullptr ? reason : "unknown reason"));
        return false;
    }
    auto cu_init = reinterpret_cast<CuInitFn>(dlsym(driver, "cuInit"));
    auto cu_count = reinterpret_cast<CuDeviceGetCountFn>(dlsym(driver, "cuDeviceGetCount"));
    if (cu_init == nullptr || cu_count == nullptr) {
        set_error("libcuda.so.1 lacks cuInit or cuDeviceGetCount");
        return false;
    }
    int status = cu_init(0);
    if (status != 0) {
        set_error("CUDA driver did not initialise: cuInit returned " + std::to_string(status));
        return false;
    }
    int count = 0;
    status = cu_count(&count);
    if (status != 0 || count <= 0) {
        set_error("CUDA driver reports no device (cuDeviceGetCount returned " +
                  std::to_string(status) + ", count " + std::to_string(count) + ")");
        return false;
    }
    // The driver stays loaded: TensorRT uses it from here on.
    return true;
}

// Whether `object` looks like a live C++ object created by the library at `base`: its memory
// is readable, its vtable pointer points into that library, and so does the vtable of the
// implementation object behind it (IRuntime is { vptr, mImpl }).
bool owned_by_library(const void *object, const void *base) {
    if (!readable(object, 2 * sizeof(void *))) {
        return false;
    }
    void *const *words = static_cast<void *const *>(object);
    const void *vtable = words[0];
    const void *implementation = words[1];
    if (!readable(vtable, sizeof(void *)) || object_base(vtable) != base) {
        return false;
    }
    if (!readable(implementation, sizeof(void *))) {
        return false;
    }
    const void *implementation_vtable = *static_cast<void *const *>(implementation);
    return readable(implementation_vtable, sizeof(void *)) &&
           object_base(implementation_vtable) == base;
}

// Copies TensorRT's dims out; false (with the error set) for Dims{-1, {}}, TensorRT's answer to
// an unknown name or profile.
bool export_shape(const nvinfer1::Dims &dims, PackdTrtShape *shape, const std::string &what) {
    if (dims.nbDims < 0 || dims.nbDims > PACKD_TRT_MAX_DIMS) {
        set_error(with_logged_reason(what + ": no shape (rank " + std::to_string(dims.nbDims) + ")"));
        return false;
    }
    std::memset(shape, 0, sizeof *shape);
    shape->rank = dims.nbDims;
    for (int32_t axis = 0; axis < dims.nbDims; ++axis) {
        shape->dims[axis] = static_cast<int64_t>(dims.d[axis]);
    }
    return true;
}

}  // namespace

extern "C" {

int32_t packd_trt_header_version(void) { return static_cast<int32_t>(NV_TENSORRT_VERSION); }

const char *packd_trt_last_error(void) { return last_error.c_str(); }

PackdTrtLibrary *packd_trt_library_open(const char *path, PackdTrtLogFn log, void *user) {
    try {
        last_error.clear();
        std::string candidates[2];
        int count = 0;
        if (path != nullptr && path[0] != '\0') {
            candidates[count++] = path;
        } else {
            candidates[count++] = "libnvinfer.so." + std::to_string(NV_TENSORRT_MAJOR);
            candidates[count++] = "libnvinfer_lean.so." + std::to_string(NV_TENSORRT_MAJOR);
        }
        void *handle = nullptr;
        std::string opened;
        std::string reasons;
        for (int index = 0; index < count && handle == nullptr; ++index) {
            handle = dlopen(candidates[index].c_str(), RTLD_NOW | RTLD_LOCAL);
            if (handle != nullptr) {
                opened = candidates[index];
            } else {
                const char *reason = dlerror();
                reasons += (reasons.empty() ? "" : "; ") +
                           std::string(reason != nullptr ? reason : candidates[index]);
            }
        }
        if (handle == nullptr) {
            set_error("cannot load TensorRT: " + reasons);
            return nullptr;
        }
        auto version_fn = reinterpret_cast<LibVersionFn>(dlsym(handle, "getInferLibVersion"));
        auto create_fn =
            reinterpret_cast<CreateRuntimeFn>(dlsym(handle, "createInferRuntime_INTERNAL"));
        if (version_fn == nullptr || create_fn == nullptr) {
            set_error(opened + " is not a TensorRT runtime (no getInferLibVersion or "
                               "createInferRuntime_INTERNAL)");
            dlclose(handle);
            return nullptr;
        }
        int32_t version = version_fn();
        if (version / 10000 != NV_TENSORRT_MAJOR) {
            set_error(opened + " is TensorRT " + describe_version(version) +
                      ", but packd was built against TensorRT " +
                      describe_version(NV_TENSORRT_VERSION) +
                      " headers; rebuild packd with the headers of the installed TensorRT");
            dlclose(handle);
            return nullptr;
        }
        auto *library = new PackdTrtLibrary(log, user);
        library->handle = handle;
        library->path = opened;
        library->version = version;
        library->create_runtime = create_fn;
        library->base = object_base(reinterpret_cast<const void *>(create_fn));
        return library;
    } catch (const std::exception &error) {
        set_error(std::string("cannot load TensorRT: ") + error.what());
    } catch (...) {
        set_error("cannot load TensorRT: unknown C++ exception");
    }
    return nullptr;
}

int32_t packd_trt_library_version(const PackdTrtLibrary *library) {
    if (!valid(library, kLibraryTag, "library")) {
        return -1;
    }
    return library->version;
}

void packd_trt_library_close(PackdTrtLibrary *library) {
    if (library == nullptr || library->tag != kLibraryTag) {
        return;
    }
    library->tag = 0;
    // The handle stays open: TensorRT registers process-wide state (plugins, the logger) that
    // must not be unmapped while anything could still call into it.
    delete library;
}

PackdTrtRuntime *packd_trt_runtime_create(PackdTrtLibrary *library) {
    try {
        last_error.clear();
        last_logged_error.clear();
        if (!valid(library, kLibraryTag, "library")) {
            return nullptr;
        }
        // PACKD_TRT_SKIP_DRIVER_PROBE exists to prove the pointer check below on machines
        // without a driver (tests/trt_device.rs); it never makes a runtime usable.
        if (std::getenv("PACKD_TRT_SKIP_DRIVER_PROBE") == nullptr && !cuda_driver_ready()) {
            return nullptr;
        }
        void *created = library->create_runtime(&library->logger, NV_TENSORRT_VERSION);
        if (created == nullptr) {
            set_error(with_logged_reason("createInferRuntime returned no runtime"));
            return nullptr;
        }
        if (library->base == nullptr || !owned_by_library(created, library->base)) {
            // Not deleted: a bogus pointer cannot be trusted to have a destructor.
            set_error(with_logged_reason(
                "createInferRuntime returned a pointer that is not a live TensorRT runtime "
                "(is a CUDA driver and device present?)"));
            return nullptr;
        }
        auto *runtime = new PackdTrtRuntime();
        runtime->library = library;
        runtime->runtime = static_cast<nvinfer1::IRuntime *>(created);
        return runtime;
    } catch (const std::exception &error) {
        set_error(std::string("createInferRuntime failed: ") + error.what());
    } catch (...) {
        set_error("createInferRuntime failed: unknown C++ exception");
    }
    return nullptr;
}

int32_t packd_trt_runtime_dla_cores(const PackdTrtRuntime *runtime) {
    try {
        if (!valid(runtime, kRuntimeTag, "runtime")) {
            return -1;
        }
        return runtime->runtime->getNbDLACores();
    } catch (...) {
        set_error("getNbDLACores failed: C++ exception");
    }
    return -1;
}

void packd_trt_runtime_destroy(PackdTrtRuntime *runtime) {
    if (runtime == nullptr || runtime->tag != kRuntimeTag) {
        return;
    }
    runtime->tag = 0;
    try {
        delete runtime->runtime;
    } catch (...) {
    }
    delete runtime;
}

PackdTrtEngine *packd_trt_engine_deserialize(PackdTrtRuntime *runtime, int32_t dla_core,
                                             const void *plan, size_t size) {
    try {
        last_error.clear();
        last_logged_error.clear();
        if (!valid(runtime, kRuntimeTag, "runtime")) {
            return nullptr;
        }
        if (plan == nullptr || size == 0) {
            set_error("empty plan");
            return nullptr;
        }
        std::lock_guard<std::mutex> guard(runtime->deserialize_lock);
        if (dla_core >= 0) {
            int32_t cores = runtime->runtime->getNbDLACores();
            if (dla_core >= cores) {
                set_error("DLA core " + std::to_string(dla_core) + " requested but this device has " +
                          std::to_string(cores) + " DLA cores");
                return nullptr;
            }
            runtime->runtime->setDLACore(dla_core);
        }
        nvinfer1::ICudaEngine *engine = runtime->runtime->deserializeCudaEngine(plan, size);
        if (engine == nullptr) {
            set_error(with_logged_reason("deserializeCudaEngine failed"));
            return nullptr;
        }
        auto *handle = new PackdTrtEngine();
        handle->engine = engine;
        return handle;
    } catch (const std::exception &error) {
        set_error(std::string("deserializeCudaEngine failed: ") + error.what());
    } catch (...) {
        set_error("deserializeCudaEngine failed: unknown C++ exception");
    }
    return nullptr;
}

int32_t packd_trt_engine_io_count(const PackdTrtEngine *engine) {
    try {
        if (!valid(engine, kEngineTag, "engine")) {
            return -1;
        }
        return engine->engine->getNbIOTensors();
    } catch (...) {
        set_error("getNbIOTensors failed: C++ exception");
    }
    return -1;
}

int32_t packd_trt_engine_io_describe(const PackdTrtEngine *engine, int32_t index,
                                     PackdTrtTensorInfo *info) {
    try {
        if (!valid(engine, kEngineTag, "engine")) {
            return -1;
        }
        if (info == nullptr) {
            set_error("no tensor info to fill");
            return -1;
        }
        int32_t count = engine->engine->getNbIOTensors();
        if (index < 0 || index >= count) {
            set_error("tensor index " + std::to_string(index) + " out of 0.." +
                      std::to_string(count));
            return -1;
        }
        const char *name = engine->engine->getIOTensorName(index);
        if (name == nullptr || std::strlen(name) >= PACKD_TRT_NAME_LEN) {
            set_error("tensor " + std::to_string(index) + " has no usable name");
            return -1;
        }
        std::memset(info, 0, sizeof *info);
        std::memcpy(info->name, name, std::strlen(name) + 1);
        info->is_input =
            engine->engine->getTensorIOMode(name) == nvinfer1::TensorIOMode::kINPUT ? 1 : 0;
        info->data_type = static_cast<int32_t>(engine->engine->getTensorDataType(name));
        nvinfer1::Dims shape = engine->engine->getTensorShape(name);
        if (shape.nbDims < 0 || shape.nbDims > PACKD_TRT_MAX_DIMS) {
            set_error(std::string("tensor ") + name + " has rank " + std::to_string(shape.nbDims));
            return -1;
        }
        info->rank = shape.nbDims;
        for (int32_t axis = 0; axis < shape.nbDims; ++axis) {
            info->dims[axis] = static_cast<int64_t>(shape.d[axis]);
        }
        return 0;
    } catch (...) {
        set_error("describing an engine tensor failed: C++ exception");
    }
    return -1;
}

int32_t packd_trt_engine_profile_shape(const PackdTrtEngine *engine, const char *name,
                                       int32_t selector, PackdTrtShape *shape) {
    try {
        last_logged_error.clear();
        if (!valid(engine, kEngineTag, "engine")) {
            return -1;
        }
        if (name == nullptr || shape == nullptr) {
            set_error("getProfileShape needs a tensor name and a shape to fill");
            return -1;
        }
        if (selector < PACKD_TRT_PROFILE_MIN || selector > PACKD_TRT_PROFILE_MAX) {
            set_error("profile selector " + std::to_string(selector) + " is not min, opt or max");
            return -1;
        }
        if (engine->engine->getNbOptimizationProfiles() < 1) {
            set_error("the engine has no optimisation profile");
            return -1;
        }
        nvinfer1::Dims dims = engine->engine->getProfileShape(
            name, 0, static_cast<nvinfer1::OptProfileSelector>(selector));
        return export_shape(dims, shape, std::string("getProfileShape(") + name + ")") ? 0 : -1;
    } catch (...) {
        set_error("getProfileShape failed: C++ exception");
    }
    return -1;
}

void packd_trt_engine_destroy(PackdTrtEngine *engine) {
    if (engine == nullptr || engine->tag != kEngineTag) {
        return;
    }
    engine->tag = 0;
    try {
        delete engine->engine;
    } catch (...) {
    }
    delete engine;
}

PackdTrtContext *packd_trt_context_create(PackdTrtEngine *engine) {
    try {
        last_error.clear();
        last_logged_error.clear();
        if (!valid(engine, kEngineTag, "engine")) {
            return nullptr;
        }
        nvinfer1::IExecutionContext *context = engine->engine->createExecutionContext();
        if (context == nullptr) {
            set_error(with_logged_reason("createExecutionContext failed"));
            return nullptr;
        }
        auto *handle = new PackdTrtContext();
        handle->context = context;
        return handle;
    } catch (const std::exception &error) {
        set_error(std::string("createExecutionContext failed: ") + error.what());
    } catch (...) {
        set_error("createExecutionContext failed: unknown C++ exception");
    }
    return nullptr;
}

int32_t packd_trt_context_set_tensor_address(PackdTrtContext *context, const char *name,
                                             void *address) {
    try {
        last_logged_error.clear();
        if (!valid(context, kContextTag, "context")) {
            return -1;
        }
        if (name == nullptr || address == nullptr) {
            set_error("setTensorAddress needs a name and an address");
            return -1;
        }
        if (!context->context->setTensorAddress(name, address)) {
            set_error(with_logged_reason(std::string("setTensorAddress failed for ") + name));
            return -1;
        }
        return 0;
    } catch (...) {
        set_error("setTensorAddress failed: C++ exception");
    }
    return -1;
}

int32_t packd_trt_context_set_input_shape(PackdTrtContext *context, const char *name,
                                          const PackdTrtShape *shape) {
    try {
        last_logged_error.clear();
        if (!valid(context, kContextTag, "context")) {
            return -1;
        }
        if (name == nullptr || shape == nullptr || shape->rank < 0 ||
            shape->rank > PACKD_TRT_MAX_DIMS) {
            set_error("setInputShape needs a name and a shape of rank 0..8");
            return -1;
        }
        nvinfer1::Dims dims{};
        dims.nbDims = shape->rank;
        for (int32_t axis = 0; axis < shape->rank; ++axis) {
            dims.d[axis] = shape->dims[axis];
        }
        if (!context->context->setInputShape(name, dims)) {
            set_error(with_logged_reason(std::string("setInputShape failed for ") + name));
            return -1;
        }
        return 0;
    } catch (...) {
        set_error("setInputShape failed: C++ exception");
    }
    return -1;
}

int32_t packd_trt_context_tensor_shape(const PackdTrtContext *context, const char *name,
                                       PackdTrtShape *shape) {
    try {
        last_logged_error.clear();
        if (!valid(context, kContextTag, "context")) {
            return -1;
        }
        if (name == nullptr || shape == nullptr) {
            set_error("getTensorShape needs a tensor name and a shape to fill");
            return -1;
        }
        nvinfer1::Dims dims = context->context->getTensorShape(name);
        return export_shape(dims, shape, std::string("getTensorShape(") + name + ")") ? 0 : -1;
    } catch (...) {
        set_error("getTensorShape failed: C++ exception");
    }
    return -1;
}

int32_t packd_trt_context_enqueue(PackdTrtContext *context, void *stream) {
    try {
        last_logged_error.clear();
        if (!valid(context, kContextTag, "context")) {
            return -1;
        }
        if (!context->context->enqueueV3(static_cast<cudaStream_t>(stream))) {
            set_error(with_logged_reason("enqueueV3 failed"));
            return -1;
        }
        return 0;
    } catch (...) {
        set_error("enqueueV3 failed: C++ exception");
    }
    return -1;
}

void packd_trt_context_destroy(PackdTrtContext *context) {
    if (context == nullptr || context->tag != kContextTag) {
        return;
    }
    context->tag = 0;
    try {
        delete context->context;
    } catch (...) {
    }
    delete context;
}

}  // extern "C"
