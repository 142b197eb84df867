//! Reference-image preprocessing on the GPU: the triangle-filter shrink to the analysis size
//! and sRGB → CIELAB, as NVRTC kernels, numerically the same as the CPU path in
//! `features::image` (the tests compare them pixel by pixel).
//!
//! It pays for camera photos: a 12-megapixel frame is 36 MB of pixels that the CPU filter walks
//! twice; the kernels do it in parallel and only the 64-pixel thumbnail comes back. Small images
//! stay on the CPU (`features::image::GPU_SHRINK_MIN_PIXELS`), where the upload would cost
//! more than it saves.

use std::sync::Arc;

use cudarc::driver::{CudaFunction, CudaModule, CudaStream, LaunchConfig, PushKernelArg};
use cudarc::nvrtc::CompileOptions;
use image::RgbImage;

use super::cuda::{CudaError, Device};
use crate::colour::Lab;

const SOURCE: &str = r#"
extern "C" __global__ void add_one(float *values, unsigned int count) {
    unsigned int index = blockIdx.x * blockDim.x + threadIdx.x;
    if (index < count) values[index] += 1.0f;
}

// Weights of image's separable resampling (imageops::resize, FilterType::Triangle), computed
// with the same f32 operations in the same order so results match the CPU bit for bit.
__device__ void span(unsigned int out, unsigned int in_size, unsigned int out_size,
                     int *left, int *right, float *centre, float *sratio) {
    float ratio = (float)in_size / (float)out_size;
    *sratio = ratio < 1.0f ? 1.0f : ratio;
    float support = 1.0f * *sratio;
    float input = ((float)out + 0.5f) * ratio;
    long long l = (long long)floorf(input - support);
    if (l < 0) l = 0;
    if (l > (long long)in_size - 1) l = (long long)in_size - 1;
    long long r = (long long)ceilf(input + support);
    if (r < l + 1) r = l + 1;
    if (r > (long long)in_size) r = (long long)in_size;
    *left = (int)l;
    *right = (int)r;
    *centre = input - 0.5f;
}

__device__ float triangle(float x) {
    float magnitude = fabsf(x);
    return magnitude < 1.0f ? 1.0f - magnitude : 0.0f;
}

// Pass 1: rows. u8 RGB (width x height) -> f32 RGB (width x out_height).
extern "C" __global__ void shrink_rows(const unsigned char *source, unsigned int width,
                                       unsigned int height, float *rows,
                                       unsigned int out_height) {
    unsigned int x = blockIdx.x * blockDim.x + threadIdx.x;
    unsigned int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= width || y >= out_height) return;
    int left, right;
    float centre, sratio;
    span(y, height, out_height, &left, &right, &centre, &sratio);
    float sum = 0.0f;
    for (int i = left; i < right; ++i) sum += triangle(((float)i - centre) / sratio);
    float t0 = 0.0f, t1 = 0.0f, t2 = 0.0f;
    for (int i = left; i < right; ++i) {
        float w = triangle(((float)i - centre) / sratio) / sum;
        const unsigned char *p = source + ((size_t)i * width + x) * 3;
        t0 += (float)p[0] * w;
        t1 += (float)p[1] * w;
        t2 += (float)p[2] * w;
    }
    float *o = rows + ((size_t)y * width + x) * 3;
    o[0] = t0; o[1] = t1; o[2] = t2;
}

__device__ unsigned char to_u8(float value) {
    value = fminf(fmaxf(value, 0.0f), 255.0f);
    return (unsigned char)roundf(value);
}

// Pass 2: columns. f32 RGB (width x out_height) -> u8 RGB (out_width x out_height).
extern "C" __global__ void shrink_columns(const float *rows, unsigned int width,
                                          unsigned int out_height, unsigned char *target,
                                          unsigned int out_width) {
    unsigned int x = blockIdx.x * blockDim.x + threadIdx.x;
    unsigned int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= out_width || y >= out_height) return;
    int left, right;
    float centre, sratio;
    span(x, width, out_width, &left, &right, &centre, &sratio);
    float sum = 0.0f;
    for (int i = left; i < right; ++i) sum += triangle(((float)i - centre) / sratio);
    float t0 = 0.0f, t1 = 0.0f, t2 = 0.0f;
    for (int i = left; i < right; ++i) {
        float w = triangle(((float)i - centre) / sratio) / sum;
        const float *p = rows + ((size_t)y * width + i) * 3;
        t0 += p[0] * w;
        t1 += p[1] * w;
        t2 += p[2] * w;
    }
    unsigned char *o = target + ((size_t)y * out_width + x) * 3;
    o[0] = to_u8(t0); o[1] = to_u8(t1); o[2] = to_u8(t2);
}

__device__ double srgb_to_linear(unsigned char channel) {
    double encoded = (double)channel / 255.0;
    return encoded <= 0.04045 ? encoded / 12.92 : pow((encoded + 0.055) / 1.055, 2.4);
}

__device__ double lab_forward(double ratio) {
    const double epsilon = 216.0 / 24389.0;
    const double kappa = 24389.0 / 27.0;
    return ratio > epsilon ? cbrt(ratio) : (kappa * ratio + 16.0) / 116.0;
}

// sRGB (D65) -> CIELAB as colour::Rgb::to_lab: three floats per pixel.
extern "C" __global__ void srgb_to_lab(const unsigned char *pixels, unsigned int count,
                                       float *lab) {
    unsigned int index = blockIdx.x * blockDim.x + threadIdx.x;
    if (index >= count) return;
    const unsigned char *p = pixels + (size_t)index * 3;
    double r = srgb_to_linear(p[0]), g = srgb_to_linear(p[1]), b = srgb_to_linear(p[2]);
    double x = 0.4124564 * r + 0.3575761 * g + 0.1804375 * b;
    double y = 0.2126729 * r + 0.7151522 * g + 0.0721750 * b;
    double z = 0.0193339 * r + 0.1191920 * g + 0.9503041 * b;
    double fx = lab_forward(x / 0.95047), fy = lab_forward(y / 1.0), fz = lab_forward(z / 1.08883);
    lab[(size_t)index * 3 + 0] = (float)(116.0 * fy - 16.0);
    lab[(size_t)index * 3 + 1] = (float)(500.0 * (fx - fy));
    lab[(size_t)index * 3 + 2] = (float)(200.0 * (fy - fz));
}
"#;

/// The compiled kernels.
pub(crate) struct Kernels {
    _module: Arc<CudaModule>,
    add_one: CudaFunction,
    shrink_rows: CudaFunction,
    shrink_columns: CudaFunction,
    srgb_to_lab: CudaFunction,
}

fn launch_error(what: &str) -> impl Fn(cudarc::driver::DriverError) -> CudaError + '_ {
    move |error| CudaError(format!("launching {what}: {error}"))
}

fn grid_2d(width: u32, height: u32) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (width.div_ceil(16), height.div_ceil(16), 1),
        block_dim: (16, 16, 1),
        shared_mem_bytes: 0,
    }
}

fn count_u32(count: usize) -> Result<u32, CudaError> {
    u32::try_from(count).map_err(|_| CudaError(format!("{count} elements exceed one launch")))
}

impl Kernels {
    /// Compiles the kernels with NVRTC and loads them into the device's context.
    pub(crate) fn compile(device: &Device) -> Result<Kernels, CudaError> {
        // SAFETY: only tries to dlopen libnvrtc.
        if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
            return Err(CudaError("NVRTC (libnvrtc.so) is not installed".into()));
        }
        let options = CompileOptions {
            // No fused multiply-add and IEEE division: the same rounding as the CPU code.
            fmad: Some(false),
            prec_div: Some(true),
            prec_sqrt: Some(true),
            ftz: Some(false),
            ..Default::default()
        };
        let ptx = cudarc::nvrtc::compile_ptx_with_opts(SOURCE, options)
            .map_err(|error| CudaError(format!("NVRTC compile: {error:?}")))?;
        let module = device
            .context
            .load_module(ptx)
            .map_err(|error| CudaError(format!("cuModuleLoadData: {error}")))?;
        let function = |name: &str| {
            module
                .load_function(name)
                .map_err(|error| CudaError(format!("kernel {name}: {error}")))
        };
        Ok(Kernels {
            add_one: function("add_one")?,
            shrink_rows: function("shrink_rows")?,
            shrink_columns: function("shrink_columns")?,
            srgb_to_lab: function("srgb_to_lab")?,
            _module: module,
        })
    }

    /// Adds 1 to `len` floats at a raw device address (the transfer measurement's touch).
    pub(crate) fn add_one(
        &self,
        stream: &Arc<CudaStream>,
        address: *mut std::ffi::c_void,
        len: usize,
    ) -> Result<(), CudaError> {
        let count = count_u32(len)?;
        let address = address as u64;
        let mut launch = stream.launch_builder(&self.add_one);
        launch.arg(&address).arg(&count);
        // SAFETY: `address` points to at least `len` floats of device-accessible memory
        // (caller's contract in measure_transfer), and the kernel bounds-checks `count`.
        unsafe { launch.launch(LaunchConfig::for_num_elems(count.max(1))) }
            .map_err(launch_error("add_one"))?;
        Ok(())
    }
}

/// Shrinks and converts reference images on the GPU.
pub struct GpuPreprocessor {
    stream: Arc<CudaStream>,
    kernels: Kernels,
}

impl GpuPreprocessor {
    /// Compiles the kernels for `device` and opens a stream for them.
    pub fn new(device: &Device) -> Result<GpuPreprocessor, CudaError> {
        Ok(GpuPreprocessor {
            stream: device.stream()?,
            kernels: Kernels::compile(device)?,
        })
    }

    /// `image` resampled to `width` × `height` with the triangle filter.
    pub fn shrink(&self, image: &RgbImage, width: u32, height: u32) -> Result<RgbImage, CudaError> {
        let (source_width, source_height) = image.dimensions();
        if width == 0 || height == 0 || source_width == 0 || source_height == 0 {
            return Ok(RgbImage::new(width, height));
        }
        let stream = &self.stream;
        fn upload<T>(
            what: &str,
            result: Result<T, cudarc::driver::DriverError>,
        ) -> Result<T, CudaError> {
            result.map_err(|error| CudaError(format!("{what}: {error}")))
        }
        let source = upload("upload image", stream.clone_htod(image.as_raw().as_slice()))?;
        let rows_len = source_width as usize * height as usize * 3;
        let mut rows = upload("alloc rows", stream.alloc_zeros::<f32>(rows_len))?;
        let mut target = upload(
            "alloc target",
            stream.alloc_zeros::<u8>(width as usize * height as usize * 3),
        )?;
        let mut launch = stream.launch_builder(&self.kernels.shrink_rows);
        launch
            .arg(&source)
            .arg(&source_width)
            .arg(&source_height)
            .arg(&mut rows)
            .arg(&height);
        // SAFETY: buffers are sized for the dimensions passed; the kernel bounds-checks them.
        unsafe { launch.launch(grid_2d(source_width, height)) }
            .map_err(launch_error("shrink_rows"))?;
        let mut launch = stream.launch_builder(&self.kernels.shrink_columns);
        launch
            .arg(&rows)
            .arg(&source_width)
            .arg(&height)
            .arg(&mut target)
            .arg(&width);
        // SAFETY: as above.
        unsafe { launch.launch(grid_2d(width, height)) }.map_err(launch_error("shrink_columns"))?;
        let pixels = upload("download", stream.clone_dtoh(&target))?;
        RgbImage::from_raw(width, height, pixels)
            .ok_or_else(|| CudaError("shrunk image has the wrong size".into()))
    }

    /// CIELAB of every pixel, in row-major order.
    pub fn lab(&self, image: &RgbImage) -> Result<Vec<Lab>, CudaError> {
        let count = image.width() as usize * image.height() as usize;
        if count == 0 {
            return Ok(Vec::new());
        }
        let stream = &self.stream;
        let wrap = |what: &'static str| {
            move |error: cudarc::driver::DriverError| CudaError(format!("{what}: {error}"))
        };
        let pixels = stream
            .clone_htod(image.as_raw().as_slice())
            .map_err(wrap("upload pixels"))?;
        let mut lab = stream
            .alloc_zeros::<f32>(count * 3)
            .map_err(wrap("alloc lab"))?;
        let count_arg = count_u32(count)?;
        let mut launch = stream.launch_builder(&self.kernels.srgb_to_lab);
        launch.arg(&pixels).arg(&count_arg).arg(&mut lab);
        // SAFETY: `pixels` holds 3 × count bytes and `lab` 3 × count floats.
        unsafe { launch.launch(LaunchConfig::for_num_elems(count_arg)) }
            .map_err(launch_error("srgb_to_lab"))?;
        let values = stream.clone_dtoh(&lab).map_err(wrap("download lab"))?;
        Ok(values
            .chunks_exact(3)
            .map(|lab| Lab::new(lab[0], lab[1], lab[2]))
            .collect())
    }
}
