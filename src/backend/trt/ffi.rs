//! Declarations of the C shim in `shim/packd_trt.h`; only `runtime.rs` calls them.

use std::ffi::{c_char, c_void};

/// Opaque handle types of the shim.
#[repr(C)]
pub(crate) struct PackdTrtLibrary {
    _private: [u8; 0],
}
#[repr(C)]
pub(crate) struct PackdTrtRuntime {
    _private: [u8; 0],
}
#[repr(C)]
pub(crate) struct PackdTrtEngine {
    _private: [u8; 0],
}
#[repr(C)]
pub(crate) struct PackdTrtContext {
    _private: [u8; 0],
}

/// Longest tensor name plus its NUL, as in the header.
pub(crate) const NAME_LEN: usize = 256;
/// Highest tensor rank TensorRT supports.
pub(crate) const MAX_DIMS: usize = 8;

/// `PackdTrtTensorInfo`: one engine tensor.
#[repr(C)]
pub(crate) struct PackdTrtTensorInfo {
    pub name: [c_char; NAME_LEN],
    pub(crate) is_input: i32,
    pub(crate) data_type: i32,
    pub rank: i32,
    pub(crate) dims: [i64; MAX_DIMS],
}

/// `PackdTrtShape`: a tensor shape, -1 for a dimension known only at run time.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub(crate) struct PackdTrtShape {
    pub(crate) rank: i32,
    pub(crate) dims: [i64; MAX_DIMS],
}

/// `PACKD_TRT_PROFILE_MIN` / `_MAX`: which shape of an optimisation profile.
pub(crate) const PROFILE_MIN: i32 = 0;
pub(crate) const PROFILE_MAX: i32 = 2;

/// The log callback type.
pub(crate) type LogFn = extern "C" fn(user: *mut c_void, severity: i32, message: *const c_char);

extern "C" {
    pub(crate) fn packd_trt_header_version() -> i32;
    pub(crate) fn packd_trt_last_error() -> *const c_char;
    pub(crate) fn packd_trt_library_open(
        path: *const c_char,
        log: Option<LogFn>,
        user: *mut c_void,
    ) -> *mut PackdTrtLibrary;
    pub(crate) fn packd_trt_library_version(library: *const PackdTrtLibrary) -> i32;
    pub(crate) fn packd_trt_library_close(library: *mut PackdTrtLibrary);
    pub(crate) fn packd_trt_runtime_create(library: *mut PackdTrtLibrary) -> *mut PackdTrtRuntime;
    pub(crate) fn packd_trt_runtime_dla_cores(runtime: *const PackdTrtRuntime) -> i32;
    pub(crate) fn packd_trt_runtime_destroy(runtime: *mut PackdTrtRuntime);
    pub(crate) fn packd_trt_engine_deserialize(
        runtime: *mut PackdTrtRuntime,
        dla_core: i32,
        plan: *const c_void,
        size: usize,
    ) -> *mut PackdTrtEngine;
    pub(crate) fn packd_trt_engine_io_count(engine: *const PackdTrtEngine) -> i32;
    pub(crate) fn packd_trt_engine_io_describe(
        engine: *const PackdTrtEngine,
        index: i32,
        info: *mut PackdTrtTensorInfo,
    ) -> i32;
    pub(crate) fn packd_trt_engine_profile_shape(
        engine: *const PackdTrtEngine,
        name: *const c_char,
        selector: i32,
        shape: *mut PackdTrtShape,
    ) -> i32;
    pub(crate) fn packd_trt_engine_destroy(engine: *mut PackdTrtEngine);
    pub(crate) fn packd_trt_context_create(engine: *mut PackdTrtEngine) -> *mut PackdTrtContext;
    pub(crate) fn packd_trt_context_set_tensor_address(
        context: *mut PackdTrtContext,
        name: *const c_char,
        address: *mut c_void,
    ) -> i32;
    pub(crate) fn packd_trt_context_set_input_shape(
        context: *mut PackdTrtContext,
        name: *const c_char,
        shape: *const PackdTrtShape,
    ) -> i32;
    pub(crate) fn packd_trt_context_tensor_shape(
        context: *const PackdTrtContext,
        name: *const c_char,
        shape: *mut PackdTrtShape,
    ) -> i32;
    pub(crate) fn packd_trt_context_enqueue(
        context: *mut PackdTrtContext,
        stream: *mut c_void,
    ) -> i32;
    pub(crate) fn packd_trt_context_destroy(context: *mut PackdTrtContext);
}
