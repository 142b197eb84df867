//! The CUDA side of the TensorRT backend through cudarc: the device, one stream per target, and
//! the host/device buffers a brief's tensors travel in.
//!
//! Two ways to move a brief's few kilobytes: explicit copies between pinned host memory and
//! device memory (`Copy`, right for a discrete GPU), or pinned host memory mapped into the
//! device's address space (`Mapped`: no copy at all, which on Orin's shared DRAM can win).
//! `measure_transfer` times both on the device at hand so the choice is measured, not guessed.

use std::ffi::c_void;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cudarc::driver::sys::{self, CUdevice_attribute};
use cudarc::driver::{CudaContext, CudaSlice, CudaStream, DevicePtr, PinnedHostSlice};

/// A CUDA failure, with the call that failed.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("CUDA: {0}")]
pub struct CudaError(pub String);

fn cuda<T, E: std::fmt::Display>(what: &str, result: Result<T, E>) -> Result<T, CudaError> {
    result.map_err(|error| CudaError(format!("{what}: {error}")))
}

/// Whether libcuda can be loaded at all; cudarc panics on first use when it cannot.
pub fn driver_present() -> bool {
    // SAFETY: only tries to dlopen the driver library.
    unsafe { sys::is_culib_present() }
}

/// The CUDA device and what TensorRT checks need to know about it.
pub struct Device {
    /// The device's primary CUDA context, shared by every engine.
    pub context: Arc<CudaContext>,
    /// The device's name, as the driver reports it.
    pub name: String,
    /// `major.minor`.
    pub compute_capability: String,
    /// An integrated GPU shares DRAM with the CPU (Jetson).
    pub integrated: bool,
    /// Whether host memory can be mapped into the device, as `backend.transfer = "mapped"` needs.
    pub can_map_host_memory: bool,
}

impl Device {
    /// Opens device `ordinal`; a clear error (never a panic) without a driver or device.
    pub fn open(ordinal: usize) -> Result<Device, CudaError> {
        if !driver_present() {
            return Err(CudaError(
                "no CUDA driver (libcuda.so) on this machine".into(),
            ));
        }
        let context = cuda("cuInit/cuDevicePrimaryCtxRetain", CudaContext::new(ordinal))?;
        let attribute = |which| cuda("cuDeviceGetAttribute", context.attribute(which));
        let major = attribute(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR)?;
        let minor = attribute(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR)?;
        let integrated = attribute(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_INTEGRATED)? != 0;
        let can_map_host_memory =
            attribute(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_CAN_MAP_HOST_MEMORY)? != 0;
        Ok(Device {
            name: cuda("cuDeviceGetName", context.name())?,
            compute_capability: format!("{major}.{minor}"),
            integrated,
            can_map_host_memory,
            context,
        })
    }

    /// A new non-default stream (one per target keeps targets from serialising each other).
    pub fn stream(&self) -> Result<Arc<CudaStream>, CudaError> {
        cuda("cuStreamCreate", self.context.new_stream())
    }
}

/// How tensors reach the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferMode {
    /// Tensors are copied between pinned host memory and device memory for each brief.
    Copy,
    /// The engine reads and writes pinned host memory mapped into the device's address space.
    Mapped,
}

impl TransferMode {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            TransferMode::Copy => "copy",
            TransferMode::Mapped => "mapped",
        }
    }
}

/// One tensor's memory: what the host writes or reads, and the address TensorRT binds.
pub enum TensorBuffer {
    /// A host buffer and a device buffer, copied between for each brief.
    Copy {
        /// Pinned host memory the brief's values are written to or read from.
        host: PinnedHostSlice<f32>,
        /// Device memory TensorRT binds.
        device: CudaSlice<f32>,
    },
    /// Pinned host memory mapped into the device, which TensorRT binds directly.
    Mapped {
        /// Pinned, mapped host memory the brief's values are written to or read from.
        host: PinnedHostSlice<f32>,
        /// The device address of `host`, which TensorRT binds.
        device_address: sys::CUdeviceptr,
    },
}

impl TensorBuffer {
    /// A zeroed buffer of `len` floats.
    pub fn new(
        device: &Device,
        stream: &Arc<CudaStream>,
        len: usize,
        mode: TransferMode,
    ) -> Result<TensorBuffer, CudaError> {
        let flags = match mode {
            TransferMode::Copy => 0,
            TransferMode::Mapped => sys::CU_MEMHOSTALLOC_DEVICEMAP,
        };
        // SAFETY: the memory is zeroed below before anything reads it.
        let mut host = cuda("cuMemHostAlloc", unsafe {
            device.context.alloc_pinned_with_flags::<f32>(len, flags)
        })?;
        cuda("pinned buffer", host.as_mut_slice())?.fill(0.0);
        match mode {
            TransferMode::Copy => Ok(TensorBuffer::Copy {
                host,
                device: cuda("cuMemAlloc", stream.alloc_zeros::<f32>(len))?,
            }),
            TransferMode::Mapped => {
                let mut device_address: sys::CUdeviceptr = 0;
                let pointer = cuda("pinned buffer", host.as_mut_ptr())?;
                // SAFETY: `pointer` was allocated with DEVICEMAP in this context, which is
                // current (alloc_pinned bound it to this thread).
                let status = unsafe {
                    sys::cuMemHostGetDevicePointer_v2(
                        &mut device_address,
                        pointer.cast::<c_void>(),
                        0,
                    )
                };
                if status != sys::CUresult::CUDA_SUCCESS {
                    return Err(CudaError(format!("cuMemHostGetDevicePointer: {status:?}")));
                }
                Ok(TensorBuffer::Mapped {
                    host,
                    device_address,
                })
            }
        }
    }

    /// The address to bind with `setTensorAddress`.
    pub fn device_address(&self, stream: &Arc<CudaStream>) -> *mut c_void {
        match self {
            TensorBuffer::Copy { device, .. } => {
                let (address, _sync) = device.device_ptr(stream);
                address as *mut c_void
            }
            TensorBuffer::Mapped { device_address, .. } => *device_address as *mut c_void,
        }
    }

    /// How many floats the buffer holds.
    pub fn len(&self) -> usize {
        match self {
            TensorBuffer::Copy { host, .. } | TensorBuffer::Mapped { host, .. } => host.len(),
        }
    }

    /// Whether the buffer holds no float.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes `values`, exactly the buffer's length, and, for `Copy`, enqueues the upload.
    pub fn upload(&mut self, stream: &Arc<CudaStream>, values: &[f32]) -> Result<(), CudaError> {
        if values.len() != self.len() {
            return Err(size_error(self.len(), values.len()));
        }
        self.upload_prefix(stream, values)
    }

    /// Writes `values` at the buffer's start (a batch smaller than the largest the buffer was
    /// sized for) and, for `Copy`, enqueues the upload of just those values. The stream must be
    /// synchronised before the host side is written again.
    pub fn upload_prefix(
        &mut self,
        stream: &Arc<CudaStream>,
        values: &[f32],
    ) -> Result<(), CudaError> {
        match self {
            TensorBuffer::Copy { host, device } => {
                let written = write_host(host, values)?;
                let mut target = device.slice_mut(..values.len());
                cuda(
                    "cuMemcpyHtoDAsync",
                    stream.memcpy_htod(written, &mut target),
                )
            }
            TensorBuffer::Mapped { host, .. } => write_host(host, values).map(drop),
        }
    }

    /// For `Copy`, enqueues the download; the values are readable after the stream syncs.
    pub fn download(&mut self, stream: &Arc<CudaStream>) -> Result<(), CudaError> {
        let len = self.len();
        self.download_prefix(stream, len)
    }

    /// For `Copy`, enqueues the download of the first `len` values.
    pub fn download_prefix(
        &mut self,
        stream: &Arc<CudaStream>,
        len: usize,
    ) -> Result<(), CudaError> {
        if len > self.len() {
            return Err(size_error(self.len(), len));
        }
        match self {
            TensorBuffer::Copy { host, device } => {
                let target = &mut cuda("pinned buffer", host.as_mut_slice())?[..len];
                cuda(
                    "cuMemcpyDtoHAsync",
                    stream.memcpy_dtoh(&device.slice(..len), target),
                )
            }
            TensorBuffer::Mapped { .. } => Ok(()),
        }
    }

    /// The host values (call after the stream has synchronised).
    pub fn read(&self) -> Result<Vec<f32>, CudaError> {
        Ok(self.values(self.len())?.to_vec())
    }

    /// The first `len` host values (call after the stream has synchronised).
    pub fn values(&self, len: usize) -> Result<&[f32], CudaError> {
        let host = match self {
            TensorBuffer::Copy { host, .. } | TensorBuffer::Mapped { host, .. } => host,
        };
        let values = cuda("pinned buffer", host.as_slice())?;
        values
            .get(..len)
            .ok_or_else(|| size_error(values.len(), len))
    }
}

fn size_error(capacity: usize, given: usize) -> CudaError {
    CudaError(format!("tensor of {capacity} values given {given}"))
}

/// Copies `values` to the start of `host`; returns the part written.
fn write_host<'a>(
    host: &'a mut PinnedHostSlice<f32>,
    values: &[f32],
) -> Result<&'a [f32], CudaError> {
    let slice = cuda("pinned buffer", host.as_mut_slice())?;
    let capacity = slice.len();
    let target = slice
        .get_mut(..values.len())
        .ok_or_else(|| size_error(capacity, values.len()))?;
    target.copy_from_slice(values);
    Ok(target)
}

/// Median time of one brief-sized round trip per mode.
#[derive(Debug, Clone, PartialEq)]
pub struct TransferTiming {
    /// The mode measured.
    pub mode: TransferMode,
    /// Median time of one round trip (inputs in, outputs back).
    pub median: Duration,
}

/// Times `rounds` upload+touch+download round trips of `len` floats in each mode available
/// and returns them fastest first. The device-side "touch" is a kernel that adds 1 to every
/// value, so mapped memory is really read and written by the GPU.
pub fn measure_transfer(
    device: &Device,
    len: usize,
    rounds: usize,
) -> Result<Vec<TransferTiming>, CudaError> {
    let stream = device.stream()?;
    let touch = super::preprocess::Kernels::compile(device)?;
    let mut modes = vec![TransferMode::Copy];
    if device.can_map_host_memory {
        modes.push(TransferMode::Mapped);
    }
    let values: Vec<f32> = (0..len).map(|index| index as f32).collect();
    let mut timings = Vec::new();
    for mode in modes {
        let mut buffer = TensorBuffer::new(device, &stream, len, mode)?;
        let mut samples = Vec::with_capacity(rounds);
        for round in 0..rounds.max(1) + 1 {
            let started = Instant::now();
            buffer.upload(&stream, &values)?;
            touch.add_one(&stream, buffer.device_address(&stream), len)?;
            buffer.download(&stream)?;
            cuda("cuStreamSynchronize", stream.synchronize())?;
            let back = buffer.read()?;
            // Round 0 warms up (module load, page faults) and is not timed.
            if round > 0 {
                samples.push(started.elapsed());
            }
            if back.first() != Some(&1.0)
                || back.last() != values.last().map(|last| last + 1.0).as_ref()
            {
                return Err(CudaError(format!(
                    "{} round trip returned wrong values",
                    mode.as_str()
                )));
            }
        }
        samples.sort();
        timings.push(TransferTiming {
            mode,
            median: samples[samples.len() / 2],
        });
    }
    timings.sort_by_key(|timing| timing.median);
    Ok(timings)
}
