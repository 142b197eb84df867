//! Which of a bundle's TensorRT engines this appliance may deserialize, decided before TensorRT
//! sees a byte: target, TensorRT version, compute capability, DLA cores, SHA-256, plan header.
//!
//! Pure Rust and always compiled, so every refusal is unit-tested on machines without TensorRT.

use std::fmt;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::bundle::manifest::EngineEntry;

/// A TensorRT version (`10.3.0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TensorRtVersion {
    /// The major version; plans never cross it (and `same_release` also needs the minor).
    pub major: u32,
    pub(crate) minor: u32,
    pub(crate) patch: u32,
}

impl TensorRtVersion {
    /// From TensorRT's integer encoding (`major*10000 + minor*100 + patch` since 10.0).
    pub fn from_encoded(encoded: i32) -> TensorRtVersion {
        let encoded = u32::try_from(encoded).unwrap_or(0);
        TensorRtVersion {
            major: encoded / 10000,
            minor: (encoded / 100) % 100,
            patch: encoded % 100,
        }
    }

    /// Parses `10.3`, `10.3.0` or `10.3.0.30` (the build number is ignored).
    pub fn parse(text: &str) -> Option<TensorRtVersion> {
        let mut parts = text.trim().split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        let patch = match parts.next() {
            Some(patch) => patch.parse().ok()?,
            None => 0,
        };
        Some(TensorRtVersion {
            major,
            minor,
            patch,
        })
    }

    /// Plans are only portable between equal major.minor versions.
    pub fn same_release(&self, other: &TensorRtVersion) -> bool {
        self.major == other.major && self.minor == other.minor
    }
}

impl fmt::Display for TensorRtVersion {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// Where an engine runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EngineTarget {
    /// A DLA core (0 or 1 on AGX Orin).
    Dla(u32),
    /// The GPU itself.
    Gpu,
}

impl EngineTarget {
    /// Parses a manifest target: `gpu`, `dla0`, `dla1`.
    pub fn parse(text: &str) -> Option<EngineTarget> {
        match text {
            "gpu" => Some(EngineTarget::Gpu),
            "dla0" => Some(EngineTarget::Dla(0)),
            "dla1" => Some(EngineTarget::Dla(1)),
            _ => None,
        }
    }

    /// The name replies, state and the journal use.
    pub fn backend_name(&self) -> &'static str {
        match self {
            EngineTarget::Gpu => "trt:gpu",
            EngineTarget::Dla(0) => "trt:dla0",
            EngineTarget::Dla(_) => "trt:dla1",
        }
    }
}

/// What this appliance runs, as observed at boot (TensorRT library, CUDA device, DLA count).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceFacts {
    /// The TensorRT library linked at run time.
    pub tensorrt: TensorRtVersion,
    /// `major.minor`, e.g. `8.7` on Orin.
    pub compute_capability: String,
    /// DLA cores present (2 on AGX Orin, 0 elsewhere).
    pub dla_cores: u32,
}

/// Why an engine is not deserialized; the CPU (or another engine) serves instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineRefusal {
    /// The manifest's target is not `gpu`, `dla0` or `dla1`.
    #[error("engine target '{0}' is not gpu, dla0 or dla1")]
    UnknownTarget(String),
    /// The manifest's precision is not `int8`, `fp16` or `fp32`.
    #[error("engine {file} has precision '{precision}', not int8, fp16 or fp32")]
    UnknownPrecision {
        /// The engine's path in the bundle.
        file: String,
        /// The precision the manifest states.
        precision: String,
    },
    /// The engine was built with another TensorRT major.minor than the one running.
    #[error(
        "engine {file} was built with TensorRT {built}; this appliance runs TensorRT {running}"
    )]
    TensorRtVersion {
        /// The engine's path in the bundle.
        file: String,
        /// The TensorRT version the manifest states.
        built: String,
        /// The TensorRT version this appliance runs.
        running: TensorRtVersion,
    },
    /// The engine was built for another compute capability than this device's.
    #[error("engine {file} was built for compute capability {built}; this device has {running}")]
    ComputeCapability {
        /// The engine's path in the bundle.
        file: String,
        /// The compute capability the manifest states.
        built: String,
        /// This device's compute capability.
        running: String,
    },
    /// The engine targets a DLA core this device does not have.
    #[error("engine {file} targets {target} but this device has {cores} DLA cores")]
    NoSuchDlaCore {
        /// The engine's path in the bundle.
        file: String,
        /// The manifest's target, e.g. `dla1`.
        target: String,
        /// DLA cores this device has.
        cores: u32,
    },
    /// The plan file is missing, unreadable, or its path leaves the bundle.
    #[error("engine {file} cannot be read: {reason}")]
    Unreadable {
        /// The engine's path in the bundle.
        file: String,
        /// Why it cannot be read.
        reason: String,
    },
    /// The plan's SHA-256 is not the manifest's.
    #[error("engine {file} has SHA-256 {found}, the manifest says {expected}")]
    Digest {
        /// The engine's path in the bundle.
        file: String,
        /// The SHA-256 the manifest states.
        expected: String,
        /// The SHA-256 of the file read.
        found: String,
    },
    /// The file does not start with a TensorRT plan header.
    #[error("engine {file} is not a TensorRT plan: {reason}")]
    NotAPlan {
        /// The engine's path in the bundle.
        file: String,
        /// What is wrong with the header.
        #[source]
        reason: PlanHeaderError,
    },
    /// The plan header's TensorRT major.minor differs from the manifest's.
    #[error(
        "engine {file}'s plan header says TensorRT {in_plan}; the manifest says {in_manifest}"
    )]
    PlanVersion {
        /// The engine's path in the bundle.
        file: String,
        /// The TensorRT version the plan header states.
        in_plan: String,
        /// The TensorRT version the manifest states.
        in_manifest: String,
    },
}

/// Checks a manifest entry against this device; returns its target.
pub fn check_entry(
    entry: &EngineEntry,
    device: &DeviceFacts,
) -> Result<EngineTarget, EngineRefusal> {
    let target = EngineTarget::parse(&entry.target)
        .ok_or_else(|| EngineRefusal::UnknownTarget(entry.target.clone()))?;
    if !["int8", "fp16", "fp32"].contains(&entry.precision.as_str()) {
        return Err(EngineRefusal::UnknownPrecision {
            file: entry.file.clone(),
            precision: entry.precision.clone(),
        });
    }
    let built = TensorRtVersion::parse(&entry.tensorrt);
    if !built.is_some_and(|built| built.same_release(&device.tensorrt)) {
        return Err(EngineRefusal::TensorRtVersion {
            file: entry.file.clone(),
            built: entry.tensorrt.clone(),
            running: device.tensorrt,
        });
    }
    if entry.compute_capability.trim() != device.compute_capability {
        return Err(EngineRefusal::ComputeCapability {
            file: entry.file.clone(),
            built: entry.compute_capability.clone(),
            running: device.compute_capability.clone(),
        });
    }
    if let EngineTarget::Dla(core) = target {
        if core >= device.dla_cores {
            return Err(EngineRefusal::NoSuchDlaCore {
                file: entry.file.clone(),
                target: entry.target.clone(),
                cores: device.dla_cores,
            });
        }
    }
    Ok(target)
}

/// Reads an engine's plan and checks its digest and header; returns the bytes for TensorRT.
pub fn read_plan(
    bundle_dir: &Path,
    entry: &EngineEntry,
    running: Option<TensorRtVersion>,
) -> Result<Vec<u8>, EngineRefusal> {
    if !crate::bundle::manifest::is_safe_relative_path(&entry.file) {
        return Err(EngineRefusal::Unreadable {
            file: entry.file.clone(),
            reason: "the path leaves the bundle".into(),
        });
    }
    let bytes =
        std::fs::read(bundle_dir.join(&entry.file)).map_err(|error| EngineRefusal::Unreadable {
            file: entry.file.clone(),
            reason: error.to_string(),
        })?;
    let found = hex::encode(Sha256::digest(&bytes));
    if !found.eq_ignore_ascii_case(entry.sha256.trim()) {
        return Err(EngineRefusal::Digest {
            file: entry.file.clone(),
            expected: entry.sha256.clone(),
            found,
        });
    }
    check_plan_header(&bytes, entry, running)?;
    Ok(bytes)
}

/// Magic at offset 0 of every serialized TensorRT engine (plan) of TensorRT 8.6 and later.
///
/// Layout (little-endian, 32 bytes; read from trtexec's `printPlanVersion` in NVIDIA/TensorRT
/// `samples/common/sampleEngines.cpp` and checked against the 10.15 and 11.4 runtimes):
/// 0x00 "ftrt", 0x04 u32 header format (0), 0x08 u64 entry count, 0x10 i64 total plan size,
/// 0x18 u8 major, minor, patch, build, 0x1c u32 platform tag.
pub(crate) const PLAN_MAGIC: &[u8; 4] = b"ftrt";
/// Bytes of the plan header.
pub(crate) const PLAN_HEADER_LEN: usize = 32;
const PLAN_FORMAT_OFFSET: usize = 4;
const PLAN_SIZE_OFFSET: usize = 16;
const PLAN_VERSION_OFFSET: usize = 24;

/// What a plan's header says about the TensorRT that built it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanHeader {
    /// The TensorRT version that built the plan.
    pub tensorrt: TensorRtVersion,
    /// The fourth byte of the builder's version (TensorRT's build number).
    pub build: u32,
}

/// Why bytes are not a plan whose header this code can read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanHeaderError {
    /// The file is too short to hold a plan header.
    #[error("{len} bytes, shorter than a plan header ({})", PLAN_HEADER_LEN)]
    Short {
        /// The file's length.
        len: usize,
    },
    /// The file does not start with the plan magic (not a plan, or one older than TensorRT 8.6).
    #[error("starts with {found:02x?}, not the plan magic \"ftrt\" (TensorRT 8.6 or later)")]
    Magic {
        /// The file's first four bytes.
        found: [u8; 4],
    },
    /// The header is of a format newer than the one this code reads.
    #[error("plan header format {format}, only format 0 is known")]
    Format {
        /// The header's format number.
        format: u32,
    },
    /// The plan's size in the header is not the file's.
    #[error("header declares {declared} bytes but the file has {len} (truncated or padded)")]
    Size {
        /// The size the header declares.
        declared: i64,
        /// The file's length.
        len: usize,
    },
}

/// Reads a plan's header without TensorRT: magic, format, size and the builder's version.
pub fn parse_plan_header(bytes: &[u8]) -> Result<PlanHeader, PlanHeaderError> {
    if bytes.len() < PLAN_HEADER_LEN {
        return Err(PlanHeaderError::Short { len: bytes.len() });
    }
    let mut magic = [0u8; 4];
    magic.copy_from_slice(&bytes[..4]);
    if &magic != PLAN_MAGIC {
        return Err(PlanHeaderError::Magic { found: magic });
    }
    let word = |offset: usize| {
        let mut word = [0u8; 4];
        word.copy_from_slice(&bytes[offset..offset + 4]);
        u32::from_le_bytes(word)
    };
    let format = word(PLAN_FORMAT_OFFSET);
    if format != 0 {
        return Err(PlanHeaderError::Format { format });
    }
    let mut size = [0u8; 8];
    size.copy_from_slice(&bytes[PLAN_SIZE_OFFSET..PLAN_SIZE_OFFSET + 8]);
    let declared = i64::from_le_bytes(size);
    if u64::try_from(declared).ok() != u64::try_from(bytes.len()).ok() {
        return Err(PlanHeaderError::Size {
            declared,
            len: bytes.len(),
        });
    }
    let version = &bytes[PLAN_VERSION_OFFSET..PLAN_VERSION_OFFSET + 4];
    Ok(PlanHeader {
        tensorrt: TensorRtVersion {
            major: u32::from(version[0]),
            minor: u32::from(version[1]),
            patch: u32::from(version[2]),
        },
        build: u32::from(version[3]),
    })
}

/// Checks a plan's header against its manifest entry and, when known, the running library:
/// TensorRT refuses plans from any other version, so refusing here gives the clearer message.
pub fn check_plan_header(
    bytes: &[u8],
    entry: &EngineEntry,
    running: Option<TensorRtVersion>,
) -> Result<PlanHeader, EngineRefusal> {
    let header = parse_plan_header(bytes).map_err(|reason| EngineRefusal::NotAPlan {
        file: entry.file.clone(),
        reason,
    })?;
    let in_manifest = TensorRtVersion::parse(&entry.tensorrt);
    if !in_manifest.is_some_and(|version| version.same_release(&header.tensorrt)) {
        return Err(EngineRefusal::PlanVersion {
            file: entry.file.clone(),
            in_plan: header.tensorrt.to_string(),
            in_manifest: entry.tensorrt.clone(),
        });
    }
    if let Some(running) = running {
        if header.tensorrt != running {
            return Err(EngineRefusal::TensorRtVersion {
                file: entry.file.clone(),
                built: header.tensorrt.to_string(),
                running,
            });
        }
    }
    Ok(header)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn orin() -> DeviceFacts {
        DeviceFacts {
            tensorrt: TensorRtVersion::parse("10.3.0").unwrap(),
            compute_capability: "8.7".into(),
            dla_cores: 2,
        }
    }

    fn entry(target: &str, tensorrt: &str) -> EngineEntry {
        EngineEntry {
            target: target.into(),
            precision: "int8".into(),
            file: format!("engines/model.{target}.plan"),
            sha256: String::new(),
            tensorrt: tensorrt.into(),
            cuda: "12.6".into(),
            compute_capability: "8.7".into(),
            dla_cores: Some(2),
        }
    }

    /// A plan header as TensorRT 10.x/11.x writes it, followed by `body` bytes.
    fn plan(version: [u8; 4], body: usize) -> Vec<u8> {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(b"ftrt");
        bytes.extend_from_slice(&0u32.to_le_bytes());
        bytes.extend_from_slice(&1u64.to_le_bytes());
        let total = (PLAN_HEADER_LEN + body) as i64;
        bytes.extend_from_slice(&total.to_le_bytes());
        bytes.extend_from_slice(&version);
        bytes.extend_from_slice(b"rtrt");
        bytes.resize(PLAN_HEADER_LEN + body, 0x5a);
        bytes
    }

    #[test]
    fn versions_parse_and_encode() {
        assert_eq!(
            TensorRtVersion::from_encoded(110400),
            TensorRtVersion::parse("11.4.0").unwrap()
        );
        assert_eq!(TensorRtVersion::from_encoded(100300).to_string(), "10.3.0");
        assert_eq!(TensorRtVersion::parse("10.3.0.30").unwrap().patch, 0);
        assert_eq!(TensorRtVersion::parse("10.3").unwrap().minor, 3);
        assert!(TensorRtVersion::parse("ten").is_none());
        assert!(TensorRtVersion::parse("10").is_none());
        assert_eq!(TensorRtVersion::from_encoded(-1).major, 0);
    }

    #[test]
    fn targets_parse_to_backend_names() {
        assert_eq!(
            EngineTarget::parse("dla1").unwrap().backend_name(),
            "trt:dla1"
        );
        assert_eq!(
            EngineTarget::parse("gpu").unwrap().backend_name(),
            "trt:gpu"
        );
        assert!(EngineTarget::parse("dla2").is_none());
        assert!(EngineTarget::parse("GPU").is_none());
    }

    #[test]
    fn matching_entries_are_accepted() {
        assert_eq!(
            check_entry(&entry("dla0", "10.3.0"), &orin()),
            Ok(EngineTarget::Dla(0))
        );
        assert_eq!(
            check_entry(&entry("gpu", "10.3.1"), &orin()),
            Ok(EngineTarget::Gpu)
        );
    }

    #[test]
    fn each_mismatch_is_refused_with_its_reason() {
        assert!(matches!(
            check_entry(&entry("npu", "10.3.0"), &orin()),
            Err(EngineRefusal::UnknownTarget(_))
        ));
        let mut fp64 = entry("gpu", "10.3.0");
        fp64.precision = "fp64".into();
        assert!(matches!(
            check_entry(&fp64, &orin()),
            Err(EngineRefusal::UnknownPrecision { .. })
        ));
        let refused = check_entry(&entry("gpu", "11.4.1"), &orin()).unwrap_err();
        assert!(matches!(refused, EngineRefusal::TensorRtVersion { .. }));
        assert!(refused.to_string().contains("11.4.1"), "{refused}");
        assert!(matches!(
            check_entry(&entry("gpu", "garbage"), &orin()),
            Err(EngineRefusal::TensorRtVersion { .. })
        ));
        let mut thor = entry("gpu", "10.3.0");
        thor.compute_capability = "11.0".into();
        assert!(matches!(
            check_entry(&thor, &orin()),
            Err(EngineRefusal::ComputeCapability { .. })
        ));
        let nano = DeviceFacts {
            dla_cores: 0,
            ..orin()
        };
        assert!(matches!(
            check_entry(&entry("dla0", "10.3.0"), &nano),
            Err(EngineRefusal::NoSuchDlaCore { .. })
        ));
        let one = DeviceFacts {
            dla_cores: 1,
            ..orin()
        };
        assert!(check_entry(&entry("dla0", "10.3.0"), &one).is_ok());
        assert!(check_entry(&entry("dla1", "10.3.0"), &one).is_err());
    }

    #[test]
    fn plan_headers_are_read() {
        let header = parse_plan_header(&plan([11, 4, 0, 106], 64)).unwrap();
        assert_eq!(header.tensorrt.to_string(), "11.4.0");
        assert_eq!(header.build, 106);
        // The bytes TensorRT 10.15.1.29 writes, as trtexec --getPlanVersionOnly reads them.
        let header = parse_plan_header(&plan([0x0a, 0x0f, 0x01, 0x1d], 8)).unwrap();
        assert_eq!(header.tensorrt.to_string(), "10.15.1");
        assert_eq!(header.build, 29);
    }

    #[test]
    fn garbage_and_damaged_plans_are_refused_before_tensorrt() {
        let refusal = |bytes: &[u8]| parse_plan_header(bytes).unwrap_err();
        assert_eq!(refusal(b""), PlanHeaderError::Short { len: 0 });
        assert!(refusal(b"").to_string().contains("shorter"));
        assert_eq!(
            refusal(&[0u8; 64]),
            PlanHeaderError::Magic { found: [0; 4] }
        );
        assert!(refusal(&[0u8; 64]).to_string().contains("magic"));
        let onnx = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/engines/packd-default/model.onnx"
        ))
        .unwrap();
        assert!(refusal(&onnx).to_string().contains("magic"));
        let mut future_format = plan([10, 3, 0, 30], 16);
        future_format[4] = 1;
        assert_eq!(
            refusal(&future_format),
            PlanHeaderError::Format { format: 1 }
        );
        assert!(refusal(&future_format).to_string().contains("format 1"));
        let mut truncated = plan([10, 3, 0, 30], 16);
        truncated.truncate(40);
        assert_eq!(
            refusal(&truncated),
            PlanHeaderError::Size {
                declared: 48,
                len: 40
            }
        );
        assert!(refusal(&truncated).to_string().contains("truncated"));
    }

    #[test]
    fn plan_versions_must_agree_with_manifest_and_library() {
        let bytes = plan([10, 3, 0, 30], 16);
        let ten_three = TensorRtVersion::parse("10.3.0");
        assert!(check_plan_header(&bytes, &entry("gpu", "10.3.0"), ten_three).is_ok());
        assert!(matches!(
            check_plan_header(&bytes, &entry("gpu", "11.4.0"), None),
            Err(EngineRefusal::PlanVersion { .. })
        ));
        assert!(matches!(
            check_plan_header(
                &bytes,
                &entry("gpu", "10.3.0"),
                TensorRtVersion::parse("10.3.1")
            ),
            Err(EngineRefusal::TensorRtVersion { .. })
        ));
    }

    #[test]
    fn read_plan_checks_path_digest_and_header() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("engines")).unwrap();
        let bytes = plan([10, 3, 0, 30], 100);
        std::fs::write(dir.path().join("engines/model.gpu.plan"), &bytes).unwrap();
        let mut good = entry("gpu", "10.3.0");
        good.sha256 = hex::encode(Sha256::digest(&bytes));
        assert_eq!(read_plan(dir.path(), &good, None).unwrap(), bytes);

        let mut tampered = good.clone();
        tampered.sha256 = "0".repeat(64);
        assert!(matches!(
            read_plan(dir.path(), &tampered, None),
            Err(EngineRefusal::Digest { .. })
        ));
        let mut escaping = good.clone();
        escaping.file = "../model.gpu.plan".into();
        assert!(matches!(
            read_plan(dir.path(), &escaping, None),
            Err(EngineRefusal::Unreadable { .. })
        ));
        let mut missing = good.clone();
        missing.file = "engines/model.dla0.plan".into();
        assert!(matches!(
            read_plan(dir.path(), &missing, None),
            Err(EngineRefusal::Unreadable { .. })
        ));
        let garbage = vec![7u8; 100];
        std::fs::write(dir.path().join("engines/model.gpu.plan"), &garbage).unwrap();
        let mut not_a_plan = good;
        not_a_plan.sha256 = hex::encode(Sha256::digest(&garbage));
        assert!(matches!(
            read_plan(dir.path(), &not_a_plan, None),
            Err(EngineRefusal::NotAPlan { .. })
        ));
    }
}
