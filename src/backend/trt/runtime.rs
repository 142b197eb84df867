//! Safe owners of the shim's handles: library → runtime → engine → execution context.
//!
//! Each child holds an `Arc` of its parent, so TensorRT objects are always destroyed in the
//! order TensorRT requires (context before engine before runtime before the logger).

use std::ffi::{c_char, c_void, CStr, CString};
use std::path::Path;
use std::ptr::NonNull;
use std::sync::Arc;

use super::ffi;
use crate::backend::engines::{EngineTarget, TensorRtVersion};

/// Why TensorRT could not be used; every message names what to fix.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum TrtError {
    /// libnvinfer cannot be loaded; the text says why.
    #[error("TensorRT library unavailable: {0}")]
    Library(String),
    /// TensorRT's runtime cannot be created or queried; the text is TensorRT's last error.
    #[error("TensorRT runtime unavailable: {0}")]
    Runtime(String),
    /// TensorRT refused to deserialize an engine plan.
    #[error("engine for {target} refused by TensorRT: {message}")]
    Deserialize {
        /// The engine's target, e.g. `trt:dla0`.
        target: String,
        /// What TensorRT logged about it.
        message: String,
    },
    /// An engine's tensors are not the names, shapes or types the model has.
    #[error("engine tensor problem: {0}")]
    Tensor(String),
    /// An execution context cannot be created for an engine.
    #[error("execution context: {0}")]
    Context(String),
    /// An inference could not be queued on the CUDA stream.
    #[error("inference enqueue failed: {0}")]
    Enqueue(String),
}

/// The shim's last error text on this thread.
fn last_error() -> String {
    // SAFETY: the shim returns a pointer to a thread-local NUL-terminated string that stays
    // valid until the next shim call on this thread; it is copied out at once.
    let text = unsafe { CStr::from_ptr(ffi::packd_trt_last_error()) };
    let text = text.to_string_lossy().into_owned();
    if text.is_empty() {
        "no reason given".into()
    } else {
        text
    }
}

/// Forwards TensorRT's log into ours under the `tensorrt` target.
extern "C" fn forward_log(_user: *mut c_void, severity: i32, message: *const c_char) {
    // A panic must not unwind into C++.
    let _ = std::panic::catch_unwind(|| {
        if message.is_null() {
            return;
        }
        // SAFETY: TensorRT passes a NUL-terminated message valid for this call.
        let text = unsafe { CStr::from_ptr(message) }.to_string_lossy();
        let level = match severity {
            0 | 1 => log::Level::Error,
            2 => log::Level::Warn,
            3 => log::Level::Info,
            _ => log::Level::Debug,
        };
        log::log!(target: "tensorrt", level, "{text}");
    });
}

/// The TensorRT version of the headers the shim was compiled with.
pub fn header_version() -> TensorRtVersion {
    // SAFETY: a plain function returning a constant.
    TensorRtVersion::from_encoded(unsafe { ffi::packd_trt_header_version() })
}

/// An opened libnvinfer whose major version matches the headers.
pub struct TensorRt {
    raw: NonNull<ffi::PackdTrtLibrary>,
    version: TensorRtVersion,
}

// SAFETY: the library handle is immutable after opening; the shim's functions on it are
// thread-safe (TensorRT's runtime creation is, and the logger forwards to `log`, which is).
unsafe impl Send for TensorRt {}
unsafe impl Sync for TensorRt {}

impl TensorRt {
    /// Opens `path`, or `libnvinfer.so.MAJOR` then `libnvinfer_lean.so.MAJOR` when `None`.
    pub fn open(path: Option<&Path>) -> Result<Arc<TensorRt>, TrtError> {
        let path = path
            .map(|path| {
                CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| {
                    TrtError::Library(format!("library path {} has a NUL byte", path.display()))
                })
            })
            .transpose()?;
        // SAFETY: the path is NUL-terminated or null; the callback is a valid function for
        // the life of the process.
        let raw = unsafe {
            ffi::packd_trt_library_open(
                path.as_ref().map_or(std::ptr::null(), |path| path.as_ptr()),
                Some(forward_log),
                std::ptr::null_mut(),
            )
        };
        let raw = NonNull::new(raw).ok_or_else(|| TrtError::Library(last_error()))?;
        // SAFETY: `raw` is a live library handle.
        let encoded = unsafe { ffi::packd_trt_library_version(raw.as_ptr()) };
        Ok(Arc::new(TensorRt {
            raw,
            version: TensorRtVersion::from_encoded(encoded),
        }))
    }

    /// The version the library reports.
    pub fn version(&self) -> TensorRtVersion {
        self.version
    }
}

impl Drop for TensorRt {
    fn drop(&mut self) {
        // SAFETY: last owner; every runtime holds an Arc to this, so none is left.
        unsafe { ffi::packd_trt_library_close(self.raw.as_ptr()) }
    }
}

/// An `IRuntime` with a verified CUDA driver behind it.
pub struct Runtime {
    raw: NonNull<ffi::PackdTrtRuntime>,
    _library: Arc<TensorRt>,
}

// SAFETY: IRuntime is thread-safe for deserialization; the shim serialises setDLACore with
// deserializeCudaEngine under its own lock.
unsafe impl Send for Runtime {}
unsafe impl Sync for Runtime {}

impl Runtime {
    /// Creates a runtime; fails clearly without a CUDA driver and device.
    pub fn new(library: &Arc<TensorRt>) -> Result<Arc<Runtime>, TrtError> {
        // SAFETY: the library handle is live for as long as `library`.
        let raw = unsafe { ffi::packd_trt_runtime_create(library.raw.as_ptr()) };
        let raw = NonNull::new(raw).ok_or_else(|| TrtError::Runtime(last_error()))?;
        Ok(Arc::new(Runtime {
            raw,
            _library: library.clone(),
        }))
    }

    /// DLA cores TensorRT can place engines on (0 off a Jetson).
    pub fn dla_cores(&self) -> Result<u32, TrtError> {
        // SAFETY: live runtime handle.
        let cores = unsafe { ffi::packd_trt_runtime_dla_cores(self.raw.as_ptr()) };
        u32::try_from(cores).map_err(|_| TrtError::Runtime(last_error()))
    }

    /// Deserializes a plan onto its target (setDLACore first for a DLA target).
    pub fn deserialize(
        self: &Arc<Self>,
        target: EngineTarget,
        plan: &[u8],
    ) -> Result<Arc<Engine>, TrtError> {
        let dla_core = match target {
            EngineTarget::Gpu => -1,
            EngineTarget::Dla(core) => i32::try_from(core).unwrap_or(i32::MAX),
        };
        // SAFETY: live runtime; the plan slice is valid for the call (TensorRT copies it).
        let raw = unsafe {
            ffi::packd_trt_engine_deserialize(
                self.raw.as_ptr(),
                dla_core,
                plan.as_ptr().cast(),
                plan.len(),
            )
        };
        let raw = NonNull::new(raw).ok_or_else(|| TrtError::Deserialize {
            target: target.backend_name().to_string(),
            message: last_error(),
        })?;
        Ok(Arc::new(Engine {
            raw,
            _runtime: self.clone(),
        }))
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        // SAFETY: last owner; engines hold an Arc to this runtime.
        unsafe { ffi::packd_trt_runtime_destroy(self.raw.as_ptr()) }
    }
}

/// One input or output tensor of an engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TensorInfo {
    pub name: String,
    pub(crate) is_input: bool,
    /// `nvinfer1::DataType` (0 is float32).
    pub(crate) data_type: i32,
    pub shape: Vec<i64>,
}

/// Which bound of an engine's optimisation profile to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProfileBound {
    /// The smallest shape the profile admits.
    Min,
    /// The largest shape the profile admits.
    Max,
}

/// A shape TensorRT handed back, as a vector of its dimensions.
fn shape_of(shape: &ffi::PackdTrtShape) -> Vec<i64> {
    let rank = usize::try_from(shape.rank).unwrap_or(0).min(ffi::MAX_DIMS);
    shape.dims[..rank].to_vec()
}

fn empty_shape() -> ffi::PackdTrtShape {
    ffi::PackdTrtShape {
        rank: 0,
        dims: [0; ffi::MAX_DIMS],
    }
}

/// `nvinfer1::DataType::kFLOAT`.
pub(crate) const DATA_TYPE_FLOAT: i32 = 0;

/// A deserialized `ICudaEngine`.
pub struct Engine {
    raw: NonNull<ffi::PackdTrtEngine>,
    _runtime: Arc<Runtime>,
}

// SAFETY: ICudaEngine's query methods and createExecutionContext are thread-safe.
unsafe impl Send for Engine {}
unsafe impl Sync for Engine {}

impl Engine {
    /// The engine's IO tensors in TensorRT's order.
    pub(crate) fn tensors(&self) -> Result<Vec<TensorInfo>, TrtError> {
        // SAFETY: live engine handle.
        let count = unsafe { ffi::packd_trt_engine_io_count(self.raw.as_ptr()) };
        let count = u32::try_from(count).map_err(|_| TrtError::Tensor(last_error()))?;
        let mut tensors = Vec::new();
        for index in 0..count {
            let mut info = ffi::PackdTrtTensorInfo {
                name: [0; ffi::NAME_LEN],
                is_input: 0,
                data_type: 0,
                rank: 0,
                dims: [0; ffi::MAX_DIMS],
            };
            // SAFETY: live engine; `info` is a valid, writable struct of the declared layout.
            let status = unsafe {
                ffi::packd_trt_engine_io_describe(
                    self.raw.as_ptr(),
                    i32::try_from(index).unwrap_or(i32::MAX),
                    &mut info,
                )
            };
            if status != 0 {
                return Err(TrtError::Tensor(last_error()));
            }
            // SAFETY: the shim NUL-terminates `name` within NAME_LEN.
            let name = unsafe { CStr::from_ptr(info.name.as_ptr()) }
                .to_string_lossy()
                .into_owned();
            let rank = usize::try_from(info.rank).unwrap_or(0).min(ffi::MAX_DIMS);
            tensors.push(TensorInfo {
                name,
                is_input: info.is_input != 0,
                data_type: info.data_type,
                shape: info.dims[..rank].to_vec(),
            });
        }
        Ok(tensors)
    }

    /// Input `name`'s smallest or largest shape in optimisation profile 0, the one every
    /// context starts with.
    pub(crate) fn profile_shape(
        &self,
        name: &CStr,
        bound: ProfileBound,
    ) -> Result<Vec<i64>, TrtError> {
        let selector = match bound {
            ProfileBound::Min => ffi::PROFILE_MIN,
            ProfileBound::Max => ffi::PROFILE_MAX,
        };
        let mut shape = empty_shape();
        // SAFETY: live engine; `name` is NUL-terminated and `shape` a writable struct of the
        // declared layout, both valid for the call.
        let status = unsafe {
            ffi::packd_trt_engine_profile_shape(
                self.raw.as_ptr(),
                name.as_ptr(),
                selector,
                &mut shape,
            )
        };
        if status != 0 {
            return Err(TrtError::Tensor(last_error()));
        }
        Ok(shape_of(&shape))
    }

    /// A new execution context with its own activation memory.
    pub fn context(self: &Arc<Self>) -> Result<ExecutionContext, TrtError> {
        // SAFETY: live engine handle.
        let raw = unsafe { ffi::packd_trt_context_create(self.raw.as_ptr()) };
        let raw = NonNull::new(raw).ok_or_else(|| TrtError::Context(last_error()))?;
        Ok(ExecutionContext {
            raw,
            _engine: self.clone(),
        })
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // SAFETY: last owner; contexts hold an Arc to this engine.
        unsafe { ffi::packd_trt_engine_destroy(self.raw.as_ptr()) }
    }
}

/// An `IExecutionContext`; one brief at a time (the owner keeps it behind a lock).
pub struct ExecutionContext {
    raw: NonNull<ffi::PackdTrtContext>,
    _engine: Arc<Engine>,
}

// SAFETY: a context may move between threads; `&mut self` methods keep use exclusive.
unsafe impl Send for ExecutionContext {}

impl ExecutionContext {
    /// Binds `address` to the tensor `name`.
    ///
    /// # Safety
    /// `address` must point to device-accessible memory of the tensor's size that outlives
    /// every enqueue that uses it.
    pub(crate) unsafe fn set_tensor_address(
        &mut self,
        name: &CStr,
        address: *mut c_void,
    ) -> Result<(), TrtError> {
        if ffi::packd_trt_context_set_tensor_address(self.raw.as_ptr(), name.as_ptr(), address) != 0
        {
            return Err(TrtError::Context(last_error()));
        }
        Ok(())
    }

    /// Sets input `name`'s shape for the enqueues that follow (a dynamic batch's size).
    pub(crate) fn set_input_shape(&mut self, name: &CStr, dims: &[i64]) -> Result<(), TrtError> {
        let mut shape = empty_shape();
        let Some(target) = shape.dims.get_mut(..dims.len()) else {
            return Err(TrtError::Context(format!(
                "shape {dims:?} has more than {} dimensions",
                ffi::MAX_DIMS
            )));
        };
        target.copy_from_slice(dims);
        shape.rank = i32::try_from(dims.len()).unwrap_or(i32::MAX);
        // SAFETY: live context; `name` is NUL-terminated and `shape` valid for the call
        // (TensorRT copies it). Enqueue's contract covers buffers holding the shapes set here.
        let status = unsafe {
            ffi::packd_trt_context_set_input_shape(self.raw.as_ptr(), name.as_ptr(), &shape)
        };
        if status != 0 {
            return Err(TrtError::Context(last_error()));
        }
        Ok(())
    }

    /// Tensor `name`'s shape in this context; an output's follows from the input shapes set.
    pub(crate) fn tensor_shape(&self, name: &CStr) -> Result<Vec<i64>, TrtError> {
        let mut shape = empty_shape();
        // SAFETY: live context; `name` is NUL-terminated and `shape` a writable struct of the
        // declared layout, both valid for the call.
        let status = unsafe {
            ffi::packd_trt_context_tensor_shape(self.raw.as_ptr(), name.as_ptr(), &mut shape)
        };
        if status != 0 {
            return Err(TrtError::Tensor(last_error()));
        }
        Ok(shape_of(&shape))
    }

    /// Enqueues one inference on `stream`.
    ///
    /// # Safety
    /// `stream` must be a live CUDA stream of the context's device (or null), every bound
    /// address must hold its tensor at the shapes currently set, and stay valid until the
    /// stream has finished the work.
    pub(crate) unsafe fn enqueue(&mut self, stream: *mut c_void) -> Result<(), TrtError> {
        if ffi::packd_trt_context_enqueue(self.raw.as_ptr(), stream) != 0 {
            return Err(TrtError::Enqueue(last_error()));
        }
        Ok(())
    }
}

impl Drop for ExecutionContext {
    fn drop(&mut self) {
        // SAFETY: sole owner of the context handle.
        unsafe { ffi::packd_trt_context_destroy(self.raw.as_ptr()) }
    }
}
