//! Compiles the TensorRT shim (`src/backend/trt/shim`) when the `tensorrt` feature is on.
//!
//! Headers: `TENSORRT_INCLUDE_DIR`, else JetPack's `/usr/include/aarch64-linux-gnu`. CUDA's
//! `cuda_runtime_api.h` comes from `CUDA_INCLUDE_DIR` or `/usr/local/cuda/include` when present,
//! else from a stand-in that declares the two opaque stream/event types TensorRT's headers use.
// A build script's inputs are environment variables (TENSORRT_INCLUDE_DIR, Cargo's own);
// the ban on reading them outside config is the daemon's.
#![allow(clippy::disallowed_methods)]

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    #[cfg(feature = "tensorrt")]
    tensorrt::build_shim();
}

#[cfg(feature = "tensorrt")]
mod tensorrt {
    use std::env;
    use std::path::{Path, PathBuf};

    const SHIM_DIR: &str = "src/backend/trt/shim";

    pub fn build_shim() {
        for variable in ["TENSORRT_INCLUDE_DIR", "CUDA_INCLUDE_DIR"] {
            println!("cargo:rerun-if-env-changed={variable}");
        }
        for file in [
            "packd_trt.cpp",
            "packd_trt.h",
            "cuda-stand-in/cuda_runtime_api.h",
        ] {
            println!("cargo:rerun-if-changed={SHIM_DIR}/{file}");
        }
        let tensorrt = tensorrt_include_dir();
        let cuda = cuda_include_dir();
        println!(
            "cargo:warning=TensorRT shim: headers from {} (TensorRT {}), CUDA types from {}",
            tensorrt.display(),
            header_version(&tensorrt),
            cuda.display()
        );
        let mut build = cc::Build::new();
        build
            .cpp(true)
            .std("c++17")
            .file(Path::new(SHIM_DIR).join("packd_trt.cpp"))
            .include(SHIM_DIR)
            // -isystem: warnings inside NVIDIA's headers (deprecations) are not ours to fix.
            .flag(format!("-isystem{}", tensorrt.display()))
            .flag(format!("-isystem{}", cuda.display()))
            .flag_if_supported("-Wall")
            .flag_if_supported("-Wextra")
            .flag_if_supported("-fno-strict-aliasing");
        build.compile("packd_trt");
        println!("cargo:rustc-link-lib=dl");
    }

    fn tensorrt_include_dir() -> PathBuf {
        let candidates: Vec<PathBuf> = match env::var_os("TENSORRT_INCLUDE_DIR") {
            Some(dir) => vec![PathBuf::from(dir)],
            None => vec![PathBuf::from("/usr/include/aarch64-linux-gnu")],
        };
        for dir in &candidates {
            if dir.join("NvInferRuntime.h").is_file() && dir.join("NvInferVersion.h").is_file() {
                return dir.clone();
            }
        }
        panic!(
            "the `tensorrt` feature needs TensorRT's headers (NvInferRuntime.h): not found in {}. \
             Set TENSORRT_INCLUDE_DIR to the folder that holds them (JetPack: \
             /usr/include/aarch64-linux-gnu; CI: .ci/jetson.sh fetches the TensorRT 11.4 set).",
            candidates
                .iter()
                .map(|dir| dir.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }

    fn cuda_include_dir() -> PathBuf {
        let configured = env::var_os("CUDA_INCLUDE_DIR").map(PathBuf::from);
        for dir in configured
            .into_iter()
            .chain([PathBuf::from("/usr/local/cuda/include")])
        {
            if dir.join("cuda_runtime_api.h").is_file() {
                return dir;
            }
        }
        Path::new(SHIM_DIR).join("cuda-stand-in")
    }

    /// `major.minor.patch` read from NvInferVersion.h, for the build log only.
    fn header_version(dir: &Path) -> String {
        let text = std::fs::read_to_string(dir.join("NvInferVersion.h")).unwrap_or_default();
        let find = |names: &[&str]| {
            text.lines()
                .filter_map(|line| {
                    let mut words = line.split_whitespace();
                    (words.next() == Some("#define")).then_some(())?;
                    let name = words.next()?;
                    let value = words.next()?;
                    names.contains(&name).then(|| value.to_string())
                })
                .find(|value| value.chars().all(|c| c.is_ascii_digit()))
                .unwrap_or_else(|| "?".into())
        };
        format!(
            "{}.{}.{}",
            find(&["NV_TENSORRT_MAJOR", "TRT_MAJOR_ENTERPRISE"]),
            find(&["NV_TENSORRT_MINOR", "TRT_MINOR_ENTERPRISE"]),
            find(&["NV_TENSORRT_PATCH", "TRT_PATCH_ENTERPRISE"])
        )
    }
}
