//! The TensorRT path against real libraries: the shim, cudarc buffers and streams, and the GPU
//! preprocessing kernels.
//!
//! Everywhere (CI included) the error paths run: no TensorRT library, a library of the wrong
//! major version when one is named, no CUDA driver. With `TEST_PACKD_TRT_LIBRARY` pointing at a real
//! libnvinfer (the PyPI lean runtime works) and `TEST_PACKD_REQUIRE_GPU=1` on a machine with an
//! NVIDIA GPU, every test below must find what it needs or fail; without them the GPU checks
//! report that they had nothing to run on.
//! (Not `PACKD_*`: packd reads every `PACKD_*` variable as configuration and refuses unknown
//! keys, and the packd processes other tests start inherit this environment.)
#![cfg(feature = "tensorrt")]
// The test reads and sets its own environment; the ban on reading it outside config is packd's.
#![allow(clippy::disallowed_methods)]

use std::path::{Path, PathBuf};

use image::{Rgb, RgbImage};
use packd::backend::engines::{EngineTarget, TensorRtVersion};
use packd::backend::trt::cuda::{self, Device, TensorBuffer, TransferMode};
use packd::backend::trt::preprocess::GpuPreprocessor;
use packd::backend::trt::runtime::{header_version, Runtime, TensorRt, TrtError};
use packd::features::image::{analysis_size, shrink_on_cpu};

fn gpu_required() -> bool {
    std::env::var("TEST_PACKD_REQUIRE_GPU").is_ok_and(|value| value == "1")
}

fn library_path() -> Option<PathBuf> {
    std::env::var_os("TEST_PACKD_TRT_LIBRARY").map(PathBuf::from)
}

/// The CUDA device, or `None` (a failure when a GPU is required).
fn device() -> Option<Device> {
    match Device::open(0) {
        Ok(device) => Some(device),
        Err(error) if gpu_required() => panic!("TEST_PACKD_REQUIRE_GPU=1 but {error}"),
        Err(error) => {
            eprintln!("no GPU here, nothing to run on: {error}");
            None
        }
    }
}

#[test]
fn headers_are_tensorrt_10_or_11() {
    let headers = header_version();
    assert!(
        headers.major == 10 || headers.major == 11,
        "shim built against {headers}"
    );
}

#[test]
fn a_missing_library_is_a_clear_error() {
    let error = TensorRt::open(Some(Path::new("/nonexistent/libnvinfer.so.11")))
        .err()
        .expect("no library there");
    let TrtError::Library(message) = &error else {
        panic!("{error:?}")
    };
    assert!(
        message.contains("/nonexistent/libnvinfer.so.11"),
        "{message}"
    );
}

#[test]
fn a_library_that_is_not_tensorrt_is_refused() {
    // libc is a real shared object without TensorRT's entry points.
    let error = TensorRt::open(Some(Path::new("libc.so.6")))
        .err()
        .expect("libc is not TensorRT");
    assert!(
        error.to_string().contains("is not a TensorRT runtime"),
        "{error}"
    );
}

#[test]
fn default_search_names_both_candidates_when_absent() {
    if library_path().is_some() {
        return; // a machine with TensorRT installed may find it by name
    }
    match TensorRt::open(None) {
        Err(TrtError::Library(message)) => {
            let major = header_version().major;
            assert!(
                message.contains(&format!("libnvinfer.so.{major}")),
                "{message}"
            );
            assert!(
                message.contains(&format!("libnvinfer_lean.so.{major}")),
                "{message}"
            );
        }
        Err(other) => panic!("{other:?}"),
        Ok(library) => eprintln!("TensorRT {} found on the library path", library.version()),
    }
}

#[test]
fn a_library_of_another_major_version_is_refused() {
    // TEST_PACKD_TRT_OTHER_LIBRARY: a libnvinfer of a major the headers are not (e.g. 10.x lean).
    let Some(path) = std::env::var_os("TEST_PACKD_TRT_OTHER_LIBRARY") else {
        eprintln!("TEST_PACKD_TRT_OTHER_LIBRARY unset: no second TensorRT major to check against");
        return;
    };
    let error = TensorRt::open(Some(Path::new(&path)))
        .err()
        .expect("wrong major");
    let message = error.to_string();
    assert!(
        message.contains("but packd was built against TensorRT"),
        "{message}"
    );
}

/// The configured TensorRT library on a machine without a CUDA driver, or `None`.
fn library_without_driver() -> Option<std::sync::Arc<TensorRt>> {
    let Some(path) = library_path() else {
        eprintln!("TEST_PACKD_TRT_LIBRARY unset: nothing to load");
        return None;
    };
    if cuda::driver_present() {
        eprintln!("a CUDA driver is present; the no-driver path cannot run here");
        return None;
    }
    Some(TensorRt::open(Some(&path)).expect("library loads without a GPU"))
}

#[test]
fn without_a_driver_no_runtime_is_created() {
    let Some(library) = library_without_driver() else {
        return;
    };
    assert_eq!(library.version().major, header_version().major);
    let error = Runtime::new(&library).err().expect("no driver, no runtime");
    assert!(error.to_string().contains("CUDA driver"), "{error}");
}

#[test]
fn without_a_driver_the_bogus_runtime_pointer_is_caught() {
    let Some(library) = library_without_driver() else {
        return;
    };
    // Skip the driver probe so TensorRT itself is asked for a runtime with no driver.
    std::env::set_var("PACKD_TRT_SKIP_DRIVER_PROBE", "1");
    let result = Runtime::new(&library);
    std::env::remove_var("PACKD_TRT_SKIP_DRIVER_PROBE");
    let error = result.err().expect("a runtime without a driver is refused");
    println!("no driver, probe skipped: {error}");
    assert!(matches!(error, TrtError::Runtime(_)), "{error:?}");
}

#[test]
fn the_runtime_loads_and_refuses_bad_plans() {
    let Some(path) = library_path() else {
        assert!(
            !gpu_required(),
            "TEST_PACKD_REQUIRE_GPU=1 needs TEST_PACKD_TRT_LIBRARY"
        );
        eprintln!("TEST_PACKD_TRT_LIBRARY unset: nothing to load");
        return;
    };
    if device().is_none() {
        return;
    }
    let library = TensorRt::open(Some(&path)).expect("TensorRT library");
    println!(
        "TensorRT library {} (headers {})",
        library.version(),
        header_version()
    );
    assert_eq!(library.version().major, header_version().major);
    let runtime = Runtime::new(&library).expect("runtime on a GPU machine");
    let cores = runtime.dla_cores().expect("DLA count");
    println!("DLA cores: {cores}");
    if !Path::new("/dev/nvhost-nvdla0").exists() {
        assert_eq!(cores, 0, "no DLA on this machine");
    }

    let garbage = vec![0x42u8; 4096];
    let error = runtime
        .deserialize(EngineTarget::Gpu, &garbage)
        .err()
        .expect("garbage is no engine");
    println!("garbage plan: {error}");
    assert!(matches!(error, TrtError::Deserialize { .. }), "{error:?}");

    // A well-formed header that claims another TensorRT version.
    let mut other_version = Vec::new();
    other_version.extend_from_slice(b"ftrt");
    other_version.extend_from_slice(&0u32.to_le_bytes());
    other_version.extend_from_slice(&0u64.to_le_bytes());
    other_version.extend_from_slice(&4096i64.to_le_bytes());
    other_version.extend_from_slice(&[10, 3, 0, 30]);
    other_version.extend_from_slice(b"rtrt");
    other_version.resize(4096, 0);
    let error = runtime
        .deserialize(EngineTarget::Gpu, &other_version)
        .err()
        .expect("a 10.3 plan does not load on 11.x");
    println!("wrong-version plan: {error}");
    let refused_before = packd::backend::engines::parse_plan_header(&other_version)
        .map(|header| header.tensorrt != library.version())
        .unwrap_or(true);
    assert!(
        refused_before,
        "our own header check refuses it before TensorRT does"
    );

    let dla = runtime
        .deserialize(EngineTarget::Dla(0), &garbage)
        .err()
        .expect("no DLA core 0 here");
    println!("DLA plan: {dla}");
    if cores == 0 {
        assert!(dla.to_string().contains("DLA core 0 requested"), "{dla}");
    }
    assert_eq!(TensorRtVersion::from_encoded(110400).major, 11);
}

#[test]
fn cuda_buffers_round_trip_in_both_modes() {
    let Some(device) = device() else { return };
    println!(
        "device {} compute {} integrated {} can map host memory {}",
        device.name, device.compute_capability, device.integrated, device.can_map_host_memory
    );
    let stream = device.stream().expect("stream");
    let values: Vec<f32> = (0..600).map(|index| index as f32 * 0.5).collect();
    let mut modes = vec![TransferMode::Copy];
    if device.can_map_host_memory {
        modes.push(TransferMode::Mapped);
    }
    for mode in modes {
        let mut buffer = TensorBuffer::new(&device, &stream, values.len(), mode).expect("buffer");
        assert!(!buffer.device_address(&stream).is_null());
        buffer.upload(&stream, &values).expect("upload");
        buffer.download(&stream).expect("download");
        stream.synchronize().expect("sync");
        assert_eq!(buffer.read().expect("read"), values, "{mode:?}");
        let error = buffer
            .upload(&stream, &values[..10])
            .expect_err("wrong size");
        assert!(error.to_string().contains("given 10"), "{error}");
    }
    let timings = cuda::measure_transfer(&device, 1024, 200).expect("measure");
    for timing in &timings {
        println!(
            "brief-sized round trip by {}: median {:?}",
            timing.mode.as_str(),
            timing.median
        );
    }
    assert!(!timings.is_empty());
}

fn photo(width: u32, height: u32) -> RgbImage {
    // Gradients plus a deterministic hash pattern: every filter tap matters.
    RgbImage::from_fn(width, height, |x, y| {
        let hash = (x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503)) >> 7;
        Rgb([
            ((x * 255) / width.max(1)) as u8 ^ (hash & 0x1f) as u8,
            ((y * 255) / height.max(1)) as u8,
            (hash & 0xff) as u8,
        ])
    })
}

#[test]
fn gpu_shrink_matches_the_cpu() {
    let Some(device) = device() else { return };
    let preprocessor = GpuPreprocessor::new(&device).expect("NVRTC kernels");
    for (width, height) in [(4032, 3024), (1920, 1080), (333, 2000), (65, 64), (7, 3)] {
        let image = photo(width, height);
        let (small_width, small_height) = analysis_size(width, height);
        let cpu = shrink_on_cpu(&image, small_width, small_height);
        let gpu = preprocessor
            .shrink(&image, small_width, small_height)
            .expect("GPU shrink");
        assert_eq!(gpu.dimensions(), cpu.dimensions());
        let worst = cpu
            .as_raw()
            .iter()
            .zip(gpu.as_raw())
            .map(|(a, b)| a.abs_diff(*b))
            .max()
            .unwrap_or(0);
        let differing = cpu
            .as_raw()
            .iter()
            .zip(gpu.as_raw())
            .filter(|(a, b)| a != b)
            .count();
        println!("{width}x{height} -> {small_width}x{small_height}: {differing} channel values differ, worst by {worst}");
        assert!(worst <= 1, "{width}x{height}: worst difference {worst}");
    }
}

#[test]
fn gpu_lab_matches_the_cpu() {
    let Some(device) = device() else { return };
    let preprocessor = GpuPreprocessor::new(&device).expect("NVRTC kernels");
    // Every 8-bit grey plus a spread of colours.
    let image = RgbImage::from_fn(256, 64, |x, y| {
        Rgb([
            x as u8,
            (x as u8).wrapping_add((y * 37) as u8),
            (y * 4) as u8,
        ])
    });
    let gpu = preprocessor.lab(&image).expect("GPU lab");
    let mut worst = 0.0f32;
    for (pixel, lab) in image.pixels().zip(&gpu) {
        let cpu = packd::colour::Rgb::new(pixel[0], pixel[1], pixel[2]).to_lab();
        worst = worst
            .max((cpu.l - lab.l).abs())
            .max((cpu.a - lab.a).abs())
            .max((cpu.b - lab.b).abs());
    }
    println!("Lab worst difference {worst:e}");
    assert!(worst < 1e-3, "worst {worst}");
}
